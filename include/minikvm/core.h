/* SPDX-License-Identifier: GPL-2.0 */
/*
 * minikvm's vendor-neutral core: VMs, vCPUs and memslots.
 *
 * The ioctl ABI is KVM's (<linux/kvm.h>); these are minikvm's own internal
 * structures behind it.
 */
#ifndef MINIKVM_CORE_H
#define MINIKVM_CORE_H

#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/signal.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include <minikvm/x86.h>

/* Limits, the same as KVM's on x86 so that VMMs see familiar numbers. */
#define MKVM_MAX_VCPUS		1024
#define MKVM_MAX_VCPU_IDS	(MKVM_MAX_VCPUS * 4)	/* sparse x2APIC ids */
#define MKVM_USER_MEM_SLOTS	32764
/* A slot covers at most 2^31 - 1 pages (8 TiB), like KVM's KVM_MEM_MAX_NR_PAGES. */
#define MKVM_MEM_MAX_NR_PAGES	((1UL << 31) - 1)
/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: what KVM_ENABLE_CAP may set. */
#define MKVM_DIRTY_LOG_MANUAL_CAPS (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | \
				    KVM_DIRTY_LOG_INITIALLY_SET)
/* kvm_run, the port I/O data page, the coalesced MMIO ring (the VM's). */
#define MKVM_VCPU_MMAP_PAGES	(KVM_COALESCED_MMIO_PAGE_OFFSET + 1)

struct mkvm_memslot {
	u16 id;
	u32 flags;
	u64 base_gfn;
	u64 npages;
	unsigned long userspace_addr;
	unsigned long *dirty_bitmap;	/* with KVM_MEM_LOG_DIRTY_PAGES: a bit per page */
};

struct mkvm_vcpu;

/* Room for each name in the stats file; userspace reads it from the header. KVM's is 48. */
#define MKVM_STATS_NAME_SIZE 48

/*
 * Counters read through KVM_GET_STATS_FD (stats.c), under KVM's names.
 * Only u64s, in the order of stats.c's descriptors.
 */
struct mkvm_vm_stat {
	u64 remote_tlb_flush;		/* every nested-paging mapping dropped */
	u64 pages_4k;			/* nested-paging leaves mapping 4 KiB */
	u64 pages_2m;			/* ... and 2 MiB */
};

struct mkvm_vcpu_stat {
	u64 halt_successful_poll;	/* halts that polling ended */
	u64 halt_attempted_poll;	/* halts that polled */
	u64 halt_wakeup;		/* halts that ended by an event, not a signal */
	u64 halt_wait_ns;		/* time halted, polling or asleep */
	u64 blocking;			/* asleep in a halt right now */
	u64 exits;			/* every exit from the guest */
	u64 irq_exits;			/* ... for a host interrupt */
	u64 io_exits;			/* KVM_EXIT_IO */
	u64 mmio_exits;			/* KVM_EXIT_MMIO */
	u64 signal_exits;		/* KVM_RUN ended by a signal */
	u64 halt_exits;			/* HLT */
	u64 irq_window_exits;		/* the guest can take an interrupt again */
	u64 nmi_window_exits;		/* ... an NMI */
	u64 request_irq_exits;		/* KVM_EXIT_IRQ_WINDOW_OPEN */
	u64 insn_emulation;		/* instructions the emulator completed */
	u64 insn_emulation_fail;	/* ... and those it could not */
	u64 hypercalls;			/* VMMCALL */
	u64 nmi_injections;		/* NMIs handed to the guest */
	u64 pf_fixed;			/* nested page faults that mapped guest memory */
	u64 pf_emulate;			/* ... that were MMIO for the emulator */
};

struct mkvm_vm {
	refcount_t users;		/* the VM fd and every vCPU fd */
	struct mm_struct *mm;		/* only this process may use the VM */
	struct mutex lock;		/* vCPU creation */
	struct mutex slots_lock;	/* memslot changes */
	/*
	 * vCPUs hold this for read while they are in a run iteration (guest
	 * entry, exit handling, faults); memslot changes hold it for write, so
	 * no vCPU is in the guest or looking at a slot while one changes.
	 */
	struct rw_semaphore slots_sem;
	struct xarray memslots[MKVM_ADDRESS_SPACES];	/* per space: id -> mkvm_memslot */
	struct xarray vcpus;		/* vcpu_id -> struct mkvm_vcpu */
	unsigned int created_vcpus;
	u32 max_vcpu_ids;		/* KVM_CAP_MAX_VCPU_ID, or the maximum once a vCPU exists */
	bool had_memslots;		/* a memslot was ever created (KVM_GET_NR_MMU_PAGES) */
	struct kvm_coalesced_mmio_ring *coalesced_ring;	/* coalesced_mmio.c */
	struct list_head coalesced_zones;	/* ... under coalesced_lock */
	unsigned int nr_coalesced_zones;
	spinlock_t coalesced_lock;
	struct list_head ioeventfds;	/* ioeventfd.c: RCU for vCPUs, changed under the lock */
	struct mutex ioeventfds_lock;
	struct list_head irqfds;	/* irqfd.c: changed under irqfds_lock */
	spinlock_t irqfds_lock;
	struct mutex irqfds_mutex;	/* one KVM_IRQFD at a time */
	struct list_head resamplers;	/* irqfd.c: one per GSI with resampling irqfds */
	struct mutex resamplers_lock;
	unsigned int max_halt_poll_ns;	/* KVM_CAP_HALT_POLL's value, once set */
	bool halt_poll_override;	/* ... which then replaces the module parameter */
	u64 manual_dirty_log;		/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2's value */
	struct mkvm_vm_stat stat;
	char stats_id[MKVM_STATS_NAME_SIZE];	/* "kvm-<creator's pid>" */
	struct mkvm_vm_arch arch;
};

struct mkvm_vcpu {
	struct mkvm_vm *vm;
	u32 vcpu_id;
	struct mutex mutex;		/* one ioctl at a time, like KVM */
	struct kvm_run *run;		/* page 0 of the mmap */
	void *pio_data;			/* page KVM_PIO_PAGE_OFFSET of the mmap */
	bool sigset_active;
	sigset_t sigset;		/* KVM_SET_SIGNAL_MASK: the mask inside KVM_RUN */
	unsigned int halt_poll_ns;	/* halt_poll.c: how long the next halt spins */
	struct mkvm_vcpu_stat stat;
	struct mkvm_vcpu_arch arch;
};

/* The memslot address space the vCPU's accesses go to: 1 in SMM, else 0. */
static inline int mkvm_vcpu_as(const struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.smm.active ? 1 : 0;
}

/* virt/kvm/halt_poll.c */
int mkvm_halt_poll_set_max(struct mkvm_vm *vm, const struct kvm_enable_cap *cap);
bool mkvm_halt_poll(struct mkvm_vcpu *vcpu, bool (*wakes)(struct mkvm_vcpu *vcpu));
void mkvm_halt_poll_adapt(struct mkvm_vcpu *vcpu, ktime_t start);

/* virt/kvm/stats.c */
int mkvm_vm_stats_fd(struct mkvm_vm *vm);
int mkvm_vcpu_stats_fd(struct mkvm_vcpu *vcpu);

/* virt/kvm/vm.c */
int mkvm_dev_create_vm(unsigned long type);
void mkvm_vm_get(struct mkvm_vm *vm);
void mkvm_vm_put(struct mkvm_vm *vm);
long mkvm_check_extension(struct mkvm_vm *vm, long cap);

/* virt/kvm/memslots.c */
int mkvm_set_memory_region(struct mkvm_vm *vm, const struct kvm_userspace_memory_region *mem);
struct mkvm_memslot *mkvm_gfn_to_memslot(struct mkvm_vm *vm, int as, u64 gfn);
void mkvm_mark_page_dirty(struct mkvm_memslot *slot, u64 gfn);
int mkvm_enable_manual_dirty_log(struct mkvm_vm *vm, const struct kvm_enable_cap *cap);
int mkvm_clear_dirty_log(struct mkvm_vm *vm, const struct kvm_clear_dirty_log *log);
int mkvm_get_dirty_log(struct mkvm_vm *vm, const struct kvm_dirty_log *log);
void mkvm_free_memslots(struct mkvm_vm *vm);

/* virt/kvm/coalesced_mmio.c */
int mkvm_coalesced_init(struct mkvm_vm *vm);
void mkvm_coalesced_destroy(struct mkvm_vm *vm);
int mkvm_coalesced_ioctl(struct mkvm_vm *vm, bool reg, const struct kvm_coalesced_mmio_zone *zone);
bool mkvm_coalesced_write(struct mkvm_vm *vm, bool pio, u64 addr, unsigned int len,
			  const void *data);

/* virt/kvm/ioeventfd.c */
void mkvm_ioeventfd_init(struct mkvm_vm *vm);
void mkvm_ioeventfd_destroy(struct mkvm_vm *vm);
int mkvm_ioeventfd(struct mkvm_vm *vm, const struct kvm_ioeventfd *args);
bool mkvm_ioeventfd_write(struct mkvm_vm *vm, bool pio, u64 addr, unsigned int len,
			  const void *val);

/* virt/kvm/vcpu.c */
int mkvm_vm_create_vcpu(struct mkvm_vm *vm, unsigned long id);
void mkvm_vcpu_destroy(struct mkvm_vcpu *vcpu);

#endif
