/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The selftest library: VMs, memory and vCPUs through the KVM ioctl ABI.
 *
 * A VM gets one memslot (slot 0) at guest physical 0.  In long mode the test
 * binary's own loaded image is copied into guest memory and mapped at the
 * same virtual addresses it has in the host process, so guest code is plain
 * C functions of the test, and pointers to its globals mean the same thing on
 * both sides.  Guest physical memory below 4 GiB is also identity-mapped, so
 * a GPA outside any memslot can be touched at the same GVA to cause MMIO.
 */
#ifndef MINIKVM_TEST_KVM_UTIL_H
#define MINIKVM_TEST_KVM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

#include "harness.h"
#include "pgtable.h"
#include "ucall.h"

#define PAGE_SIZE 4096ULL
#define DEFAULT_GUEST_MEM (64ULL << 20)
#define GUEST_STACK_SIZE (32ULL << 10)
#define MAX_LIB_SLOTS 128

/* Physical layout used by the library in slot 0. */
#define GUEST_CODE16_GPA 0x1000ULL	/* real-mode and 32-bit code blobs */
#define GUEST_ALLOC_GPA 0x100000ULL	/* page allocator starts at 1 MiB */
/* The KVM_SET_TSS_ADDR value QEMU uses: three pages just below the BIOS. */
#define GUEST_TSS_ADDR 0xfffbd000ULL

/*
 * GDT selectors built by the library.  The user segments (DPL 3, selectors
 * with RPL 3) follow the order SYSCALL/SYSRET expect with STAR[47:32] =
 * SEL_CODE64 and STAR[63:48] = SEL_UCODE32 (SDM vol. 3 5.8.8).
 */
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define SEL_TSS 0x20		/* 16 bytes: 0x20 and 0x28 */
#define SEL_UCODE32 0x33
#define SEL_UDATA 0x3b
#define SEL_UCODE64 0x43
#define GDT_ENTRIES 9

/*
 * Ring 3 in long mode (lib/guest.c: guest_user_call()): user code returns
 * to the kernel with INT to this vector, whose gate alone has DPL 3.
 */
#define GUEST_USER_RETURN_VECTOR 0xee

enum vm_mode {
	VM_MODE_REAL,		/* 16-bit real mode, CS.base 0 */
	VM_MODE_PROT32,		/* flat 32-bit protected mode, no paging */
	VM_MODE_LONG64,		/* 64-bit long mode, 4-level paging, test image mapped */
};

struct lib_slot {
	uint32_t slot;
	uint32_t flags;
	uint64_t gpa;
	uint64_t size;
	void *hva;
};

struct kvm_vcpu;

struct kvm_vm {
	int kvm_fd;
	int fd;
	enum vm_mode mode;
	size_t run_size;
	struct lib_slot slots[MAX_LIB_SLOTS];
	int nr_slots;
	uint64_t mem_size;
	uint64_t next_page;	/* bump allocator in slot 0 */
	struct guest_pgtable pt;
	uint64_t gdt_gpa, idt_gpa, tss_gpa;
	struct kvm_cpuid2 *cpuid;
	struct kvm_vcpu *vcpus[64];
};

struct kvm_vcpu {
	struct kvm_vm *vm;
	uint32_t id;
	int fd;
	struct kvm_run *run;
	uint64_t stack_top;
};

/* /dev/kvm */
int open_kvm(void);
int kvm_check_cap(long cap);
const char *exit_reason_str(uint32_t reason);

/* VMs and memory */
struct kvm_vm *vm_create(enum vm_mode mode);
struct kvm_vm *vm_create_with_mem(enum vm_mode mode, uint64_t mem_size);
struct kvm_vm *vm_create_blob(enum vm_mode mode, const void *start, const void *end,
			      struct kvm_vcpu **vcpu);
void vm_free(struct kvm_vm *vm);
void vm_release(struct kvm_vm *vm);
int __vm_ioctl(struct kvm_vm *vm, unsigned long cmd, void *arg);
void vm_ioctl(struct kvm_vm *vm, unsigned long cmd, void *arg, const char *name);
int __vm_set_memslot(struct kvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		     uint64_t size, void *hva);
void *vm_add_memslot(struct kvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		     uint64_t size);
void vm_move_memslot(struct kvm_vm *vm, uint32_t slot, uint64_t new_gpa);
void vm_delete_memslot(struct kvm_vm *vm, uint32_t slot);
uint64_t vm_alloc_pages(struct kvm_vm *vm, uint64_t npages);
void *vm_add_memslot_huge(struct kvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
			  uint64_t size);
long host_huge_kb(const void *addr);
void *gpa2hva(struct kvm_vm *vm, uint64_t gpa);
uint64_t gva2gpa(struct kvm_vm *vm, uint64_t gva);
void *gva2hva(struct kvm_vm *vm, uint64_t gva);
void vm_load_blob(struct kvm_vm *vm, uint64_t gpa, const void *start, const void *end);
void virt_map(struct kvm_vm *vm, uint64_t gva, uint64_t gpa, uint64_t size);
void virt_map_flags(struct kvm_vm *vm, uint64_t gva, uint64_t gpa, uint64_t size,
		    uint64_t flags);
void virt_set_pte_flags(struct kvm_vm *vm, uint64_t gva, uint64_t size, uint64_t set,
			uint64_t clear);
void virt_set_user(struct kvm_vm *vm, uint64_t gva, uint64_t size);
uint64_t *virt_pte(struct kvm_vm *vm, uint64_t gva, int level);
void vm_segment(struct kvm_vm *vm, uint16_t sel, struct kvm_segment *seg);
void vm_install_exception_handler(struct kvm_vm *vm, int vector,
				  void (*handler)(struct ex_regs *regs));

/* Copy a host global into the guest's copy of the test image. */
#define sync_global_to_guest(vm, g) memcpy(gva2hva(vm, (uint64_t)&(g)), &(g), sizeof(g))
#define sync_global_from_guest(vm, g) memcpy(&(g), gva2hva(vm, (uint64_t)&(g)), sizeof(g))

/* vCPUs */
struct kvm_vcpu *vm_vcpu_add(struct kvm_vm *vm, uint32_t id, void (*guest_code)(void));
struct kvm_vcpu *vm_vcpu_add_at(struct kvm_vm *vm, uint32_t id, uint64_t rip);
int __vcpu_ioctl(struct kvm_vcpu *vcpu, unsigned long cmd, void *arg);
void vcpu_ioctl(struct kvm_vcpu *vcpu, unsigned long cmd, void *arg, const char *name);
void vcpu_args_set(struct kvm_vcpu *vcpu, int n, ...);
void vcpu_restart(struct kvm_vcpu *vcpu, void (*guest_code)(void));
void vcpu_regs_get(struct kvm_vcpu *vcpu, struct kvm_regs *regs);
void vcpu_regs_set(struct kvm_vcpu *vcpu, struct kvm_regs *regs);
void vcpu_sregs_get(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs);
void vcpu_sregs_set(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs);
void vcpu_set_cpuid(struct kvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid);
uint64_t vcpu_get_msr(struct kvm_vcpu *vcpu, uint32_t index);
void vcpu_set_msr(struct kvm_vcpu *vcpu, uint32_t index, uint64_t value);
/* KVM_SET_MSRS of one MSR: 1 when written, 0 when refused, -1 with errno. */
int __vcpu_set_msr(struct kvm_vcpu *vcpu, uint32_t index, uint64_t value);
/* KVM_GET_MSR_INDEX_LIST or KVM_GET_MSR_FEATURE_INDEX_LIST on @kvm, sized by probing; free() it. */
struct kvm_msr_list *kvm_get_msr_list(int kvm, unsigned long ioctl_nr);
/*
 * The test machine's CPU is Intel's (VMX), not AMD's (SVM): for the few
 * cases where KVM itself behaves as the hardware under it does.
 */
bool host_cpu_is_intel(void);
/*
 * VM entry refuses to inject an external interrupt while RFLAGS.IF is clear
 * (SDM vol. 3 26.3.1.4), so on Intel KVM fails the entry where AMD takes
 * it: on Intel, set the guest's IF for a test whose point is elsewhere.
 */
void vcpu_set_if_on_intel(struct kvm_vcpu *vcpu);
/* Pin the calling thread to @cpu (and check it runs there). */
void pin_to_cpu(int cpu);
struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd);
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t fn, uint32_t index);

/* Running */
int __vcpu_run(struct kvm_vcpu *vcpu);
void vcpu_run(struct kvm_vcpu *vcpu);
void vcpu_assert_exit(struct kvm_vcpu *vcpu, uint32_t reason);
void vcpu_expect_mmio(struct kvm_vcpu *vcpu, uint64_t gpa, uint32_t len, bool write,
		      uint64_t value);
uint64_t get_ucall(struct kvm_vcpu *vcpu, struct ucall *uc);
uint64_t vcpu_run_ucall(struct kvm_vcpu *vcpu, struct ucall *uc);
void vcpu_run_until_done(struct kvm_vcpu *vcpu);
void vcpu_run_ucall_report(struct kvm_vcpu *vcpu, struct ucall *uc);
struct ex_regs *ucall_ex_regs(struct kvm_vcpu *vcpu, const struct ucall *uc);
void vcpu_dump(struct kvm_vcpu *vcpu);

#define TEST_ASSERT_EXIT(vcpu, reason) vcpu_assert_exit(vcpu, reason)

#endif
