/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Intel VMX backend's private state, and VMREAD/VMWRITE.
 */
#ifndef MINIKVM_VMX_H
#define MINIKVM_VMX_H

#include <linux/preempt.h>

#include <minikvm/core.h>
#include <minikvm/decode.h>

#include <asm/vmx.h>
/* asm/vmx.h names the GPRs of its instruction information; minikvm's are enum mkvm_reg. */
#undef REG_R8
#undef REG_R9
#undef REG_R10
#undef REG_R11
#undef REG_R12
#undef REG_R13
#undef REG_R14
#undef REG_R15

/* A VMCS region (SDM vol. 3 25.2): the revision identifier, then the CPU's own layout. */
struct mkvm_vmcs {
	u32 revision;
	u32 abort;
	u8 data[PAGE_SIZE - 8];
};

/*
 * The MSRs that the guest uses without an exit but the VMCS does not
 * switch: SYSCALL's and SWAPGS's (vmcs.c).  KERNEL_GS_BASE is the last.
 */
#define MKVM_VMX_GUEST_MSRS 5
extern const u32 mkvm_vmx_guest_msrs[MKVM_VMX_GUEST_MSRS];

/* The segment registers as the decoder numbers them (SEG_ES to SEG_GS), then these two. */
enum { SEG_TR = SEG_GS + 1, SEG_LDTR };

/* The TSS of virtual-8086 mode, mapped by the shadow MMU (rmode.c). */
#define MKVM_VMX_TSS_PAGES 3

/* What kind of event mkvm_vmx_rmode_queue_event() takes, to requeue it. */
enum { RM_EVENT_EXCEPTION, RM_EVENT_NMI, RM_EVENT_IRQ };

/* An exit minikvm makes up: no VM entry, for a step of real mode in software (rmode.c). */
#define MKVM_VMX_EXIT_RMODE 0xffff

struct mkvm_vmx_vcpu {
	struct mkvm_vcpu *vcpu;
	struct mkvm_vmcs *vmcs;
	u64 vmcs_pa;
	/*
	 * The VMCS is current on a CPU only while the vCPU's thread runs
	 * there in one of its ioctls: loaded at the start and whenever the
	 * thread is scheduled in, cleared whenever it is scheduled out and at
	 * the end (vmx.c).  So no other CPU ever holds it in its cache.
	 */
	int cpu;			/* where it is current (and guest_msr[] live), or -1 */
	int last_cpu;			/* where the guest last ran: another means a TLB flush */
	bool launched;			/* VMLAUNCH done since the last VMCLEAR */
	struct preempt_notifier pn;
	u16 vpid;
	/* Controls as last written, to change them without a VMREAD. */
	u32 pin, proc, proc2, entry, exc_bitmap;
	bool flush;			/* flush_tlb: INVEPT before the next entry */
	bool pdptr_dirty;		/* PAE paging's PDPTEs to load from guest memory */
	u64 tsc_offset, tsc_offset_written;
	u64 eptp, eptp_written;
	unsigned long host_cr3, host_cr4;
	unsigned long cr8;		/* CR8 exits both ways: the TPR lives here */
	unsigned long cr2;		/* neither is CR2 */
	unsigned long dr6;		/* DR6 is no VMCS field: switched by hand */
	/* The MSRs in mkvm_vmx_guest_msrs[]: the guest's, and the host's while they are loaded. */
	u64 guest_msr[MKVM_VMX_GUEST_MSRS], host_msr[MKVM_VMX_GUEST_MSRS];
	/* What a VM exit clears or nulls of the host's (vmcs.c restores them). */
	u64 host_debugctl;
	u16 host_ds, host_es, host_fs, host_gs, host_ldt;
	u64 host_fs_base;
	bool debug_tf;			/* KVM_GUESTDBG_SINGLESTEP set TF for this entry */
	bool fail;			/* VMLAUNCH/VMRESUME failed (VMfail) */
	/* The guest's PAT on the shadow MMU, where the hardware runs with the host's (vmx.c). */
	u64 pat;
	/* The length of the last software exception or interrupt an exit reported (events.c). */
	u8 soft_len;
	/* The last exit, read right after it. */
	u32 exit_reason;
	u64 exit_qual;
	u32 exit_intr_info, exit_intr_error;
	u32 idt_info, idt_error;
	u32 insn_len;
	/* Real mode in virtual-8086 mode, without unrestricted guest (rmode.c). */
	bool rmode;
	struct kvm_segment rm_seg[SEG_LDTR + 1];	/* the guest's, where the VMCS has vm86's */
	struct page *rm_tss[MKVM_VMX_TSS_PAGES];
	struct {
		bool pending;
		u8 kind;		/* RM_EVENT_* */
		u8 vector;
		unsigned long ret_ip;
	} rm_event;			/* to deliver through the vector table */
	bool sregs_loading;		/* in KVM_SET_SREGS: its segments are the VMM's */
};

static inline struct mkvm_vmx_vcpu *to_vmx(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.vendor;
}

/* VMREAD of the current VMCS; a failure means a bug here (SDM vol. 3 31.4 VMREAD). */
static __always_inline unsigned long vmcs_read(unsigned long field)
{
	unsigned long value;

	asm volatile goto("vmread %[field], %[value]\n\t"
			  "jna %l[fail]"
			  : [value] "=rm" (value) : [field] "r" (field) : "cc" : fail);
	return value;
fail:
	WARN_ONCE(1, "minikvm: vmread %#lx failed\n", field);
	return 0;
}

static __always_inline void vmcs_write(unsigned long field, unsigned long value)
{
	asm volatile goto("vmwrite %[value], %[field]\n\t"
			  "jna %l[fail]"
			  : : [value] "rm" (value), [field] "r" (field) : "cc" : fail);
	return;
fail:
	WARN_ONCE(1, "minikvm: vmwrite %#lx = %#lx failed\n", field, value);
}

static inline void vmcs_set_bits(unsigned long field, u32 mask)
{
	vmcs_write(field, vmcs_read(field) | mask);
}

static inline void vmcs_clear_bits(unsigned long field, u32 mask)
{
	vmcs_write(field, vmcs_read(field) & ~mask);
}

/* What the capability MSRs let minikvm run with (SDM vol. 3 appendix A). */
struct mkvm_vmx_caps {
	u32 revision;
	u32 pin, proc, proc2, exit, entry;
	u8 preemption_rate;	/* the preemption timer counts every 2^rate TSC ticks */
	u64 ept_vpid;
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};
extern struct mkvm_vmx_caps mkvm_vmx_caps;
/* The MSR bitmap of every vCPU (cpu.c). */
extern unsigned long *mkvm_vmx_msr_bitmap;
/* Flush the L1D before each entry (cpu.c). */
extern bool mkvm_vmx_l1d_flush;

/* INVEPT and INVVPID take a 128-bit descriptor in memory (SDM vol. 3 31.3). */
static inline void invept(unsigned long type, u64 eptp)
{
	struct { u64 eptp, zero; } d = { eptp, 0 };

	asm volatile("invept %[d], %[type]" : : [d] "m" (d), [type] "r" (type) : "cc", "memory");
}

static inline void invvpid(unsigned long type, u16 id)
{
	struct { u64 vpid, la; } d = { id, 0 };

	asm volatile("invvpid %[d], %[type]" : : [d] "m" (d), [type] "r" (type) : "cc", "memory");
}

/* cpu.c */
int mkvm_vmx_hardware_setup(void);
void mkvm_vmx_hardware_unsetup(void);
void mkvm_vmx_emergency_disable(void);
int mkvm_vmx_alloc_vpid(void);
void mkvm_vmx_free_vpid(int id);

/* vmcs.c */
void mkvm_vmx_vmclear(u64 pa);
void mkvm_vmx_vmcs_init(struct mkvm_vcpu *vcpu);
void mkvm_vmx_vcpu_load(struct mkvm_vcpu *vcpu);
void mkvm_vmx_vcpu_put(struct mkvm_vcpu *vcpu);

/* vmx.c */
void mkvm_vmx_set_proc(struct mkvm_vcpu *vcpu, u32 bits, bool on);
void mkvm_vmx_set_exc_intercept(struct mkvm_vcpu *vcpu, int vector, bool on);
unsigned long mkvm_vmx_next_rip(struct mkvm_vcpu *vcpu, unsigned int len);

void mkvm_vmx_get_seg(struct kvm_segment *s, int seg);
void mkvm_vmx_set_seg(const struct kvm_segment *s, int seg);

/* rmode.c */
int mkvm_vmx_rmode_create(struct mkvm_vcpu *vcpu);
void mkvm_vmx_rmode_free(struct mkvm_vcpu *vcpu);
void mkvm_vmx_rmode_update(struct mkvm_vcpu *vcpu);
void mkvm_vmx_rmode_get_seg(struct mkvm_vcpu *vcpu, struct kvm_segment *s, int seg);
void mkvm_vmx_rmode_set_seg(struct mkvm_vcpu *vcpu, const struct kvm_segment *s, int seg);
bool mkvm_vmx_rmode_can_enter(struct mkvm_vcpu *vcpu);
void mkvm_vmx_rmode_queue_event(struct mkvm_vcpu *vcpu, int kind, u8 vector,
				unsigned long ret_ip);
int mkvm_vmx_rmode_step(struct mkvm_vcpu *vcpu);
int mkvm_vmx_rmode_gp(struct mkvm_vcpu *vcpu);
int mkvm_vmx_rmode_exception(struct mkvm_vcpu *vcpu);

/* exits.c */
int mkvm_vmx_handle_exit(struct mkvm_vcpu *vcpu);

/* events.c */
void mkvm_vmx_inject_exception(struct mkvm_vcpu *vcpu);
void mkvm_vmx_inject_nmi(struct mkvm_vcpu *vcpu);
void mkvm_vmx_inject_irq(struct mkvm_vcpu *vcpu);
bool mkvm_vmx_interrupt_blocked(struct mkvm_vcpu *vcpu);
bool mkvm_vmx_nmi_blocked(struct mkvm_vcpu *vcpu);
void mkvm_vmx_enable_irq_window(struct mkvm_vcpu *vcpu);
void mkvm_vmx_enable_nmi_window(struct mkvm_vcpu *vcpu);
u8 mkvm_vmx_get_interrupt_shadow(struct mkvm_vcpu *vcpu);
void mkvm_vmx_set_interrupt_shadow(struct mkvm_vcpu *vcpu, u8 shadow);
void mkvm_vmx_update_nmi_mask(struct mkvm_vcpu *vcpu);
void mkvm_vmx_update_cr8_intercept(struct mkvm_vcpu *vcpu, bool intercept);
void mkvm_vmx_before_entry(struct mkvm_vcpu *vcpu);
void mkvm_vmx_complete_events(struct mkvm_vcpu *vcpu);
int mkvm_vmx_handle_irq_window(struct mkvm_vcpu *vcpu);
int mkvm_vmx_handle_nmi_window(struct mkvm_vcpu *vcpu);

/* vmenter.S: 1 when VMLAUNCH or VMRESUME failed, 0 after a VM exit. */
int mkvm_vmx_vmenter(unsigned long *regs, bool launched);

#endif
