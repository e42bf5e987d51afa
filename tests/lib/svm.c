// SPDX-License-Identifier: GPL-2.0
/*
 * Nested SVM for the selftests: the guest ("L1") side that enables SVM,
 * fills a VMCB for an L2 that is a copy of L1's own state and runs it, and
 * the host side that offers SVM to L1 and gives it the pages it needs.
 *
 * Everything under "Guest side" runs in L1 (and the trampolines in L2),
 * where the C library is not mapped.
 */
#include "apic.h"
#include "svm.h"

struct svm_env svm_env;

/* Pages of their own: L2's stack never shares a page with L1's data. */
uint8_t svm_l2_stack[SVM_L2_STACK_SIZE] __attribute__((aligned(4096)));

/*
 * void svm_vmrun_gprs(uint64_t vmcb_gpa, struct svm_gprs *gprs)
 *
 * VMRUN switches only RAX, RSP, RIP and RFLAGS (APM vol. 2 15.5.1): the
 * other registers L2 starts with are whatever L1 holds at VMRUN, and L1
 * finds L2's in them after #VMEXIT.  So this loads *gprs, runs L2 and
 * stores L2's registers back, keeping L1's callee-saved ones on the stack,
 * which #VMEXIT gives back with L1's RSP.  The struct's address is taken
 * from the stack afterwards: #VMEXIT restores RAX too, but from the host
 * save area, whose format is the implementation's (15.30.4).
 *
 * A VMRUN that fails its checks (VMEXIT_INVALID) continues after the
 * instruction with the loaded registers, which are stored back unchanged;
 * a handler of a #GP or #UD at svm_vmrun_insn skips its 3 bytes.
 */
asm(".pushsection .text\n"
    ".globl svm_vmrun_gprs\n"
    ".type svm_vmrun_gprs, @function\n"
    "svm_vmrun_gprs:\n"
    "	push %rbp\n"
    "	push %rbx\n"
    "	push %r12\n"
    "	push %r13\n"
    "	push %r14\n"
    "	push %r15\n"
    "	push %rsi\n"
    "	mov %rdi, %rax\n"
    "	mov 0x00(%rsi), %rbx\n"
    "	mov 0x08(%rsi), %rcx\n"
    "	mov 0x10(%rsi), %rdx\n"
    "	mov 0x20(%rsi), %rdi\n"
    "	mov 0x28(%rsi), %rbp\n"
    "	mov 0x30(%rsi), %r8\n"
    "	mov 0x38(%rsi), %r9\n"
    "	mov 0x40(%rsi), %r10\n"
    "	mov 0x48(%rsi), %r11\n"
    "	mov 0x50(%rsi), %r12\n"
    "	mov 0x58(%rsi), %r13\n"
    "	mov 0x60(%rsi), %r14\n"
    "	mov 0x68(%rsi), %r15\n"
    "	mov 0x18(%rsi), %rsi\n"
    ".globl svm_vmrun_insn\n"
    "svm_vmrun_insn:\n"
    "	vmrun %rax\n"
    "	mov (%rsp), %rax\n"
    "	mov %rbx, 0x00(%rax)\n"
    "	mov %rcx, 0x08(%rax)\n"
    "	mov %rdx, 0x10(%rax)\n"
    "	mov %rsi, 0x18(%rax)\n"
    "	mov %rdi, 0x20(%rax)\n"
    "	mov %rbp, 0x28(%rax)\n"
    "	mov %r8, 0x30(%rax)\n"
    "	mov %r9, 0x38(%rax)\n"
    "	mov %r10, 0x40(%rax)\n"
    "	mov %r11, 0x48(%rax)\n"
    "	mov %r12, 0x50(%rax)\n"
    "	mov %r13, 0x58(%rax)\n"
    "	mov %r14, 0x60(%rax)\n"
    "	mov %r15, 0x68(%rax)\n"
    "	pop %rsi\n"
    "	pop %r15\n"
    "	pop %r14\n"
    "	pop %r13\n"
    "	pop %r12\n"
    "	pop %rbx\n"
    "	pop %rbp\n"
    "	ret\n"
    ".size svm_vmrun_gprs, . - svm_vmrun_gprs\n"
    /* The return address at the top of L2's stack: an L2 function that returns exits. */
    ".globl svm_l2_returned\n"
    "svm_l2_returned:\n"
    "	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

_Static_assert(offsetof(struct svm_gprs, rsi) == 0x18 && offsetof(struct svm_gprs, r15) == 0x68,
	       "svm_vmrun_gprs knows the layout");

/* Guest side. */

static uint32_t svm_cpuid_edx(uint32_t leaf)
{
	uint32_t a, b, c, d;

	guest_cpuid(leaf, 0, &a, &b, &c, &d);
	return d;
}

/**
 * svm_l1_enable() - let L1 use SVM: EFER.SVME and the host save area
 *
 * APM vol. 2 15.4: SVM instructions raise #UD until EFER.SVME is set;
 * 15.30.4: VMRUN saves the host state to the page VM_HSAVE_PA names.
 */
void svm_l1_enable(void)
{
	guest_wrmsr(MSR_EFER, guest_rdmsr(MSR_EFER) | EFER_SVME);
	guest_wrmsr(MSR_VM_HSAVE_PA, svm_env.hsave_gpa);
}

/**
 * svm_seg_from_gdt() - a state-save segment from the descriptor L1's GDT has
 * @seg: filled in
 * @sel: the selector; its descriptor must be an ordinary (8-byte) one
 */
void svm_seg_from_gdt(struct vmcb_seg *seg, uint16_t sel)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr;
	uint64_t d, limit;

	asm volatile("sgdt %0" : "=m"(gdtr));
	d = *(const uint64_t *)(gdtr.base + (sel & ~7));
	limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
	if (d & (1ULL << 55))		/* G: 4 KiB granularity */
		limit = (limit << 12) | 0xfff;
	seg->selector = sel;
	seg->attrib = ((d >> 40) & 0xff) | (((d >> 52) & 0xf) << 8);
	seg->limit = limit;
	seg->base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
}

/**
 * svm_l2_init_at() - a fresh VMCB whose L2 is a copy of L1 starting at @rip
 * @l2: L1's record of L2; its VMCB is svm_env.vmcb_gpa
 * @rip: where L2 starts
 * @rsp: its stack pointer
 *
 * L2 gets L1's control registers, EFER (with SVME, which VMRUN requires of
 * the guest's EFER: APM vol. 2 15.5.1), code and data segments, GDTR and
 * IDTR, RFLAGS with IF clear, ASID 1, and intercepts of VMRUN (required by
 * the same checks) and VMMCALL, which L2 code uses to finish.  The
 * permission maps are cleared, so MSR_PROT and IOIO_PROT intercept nothing
 * until svm_msrpm_set() and svm_iopm_set() say so.  Its GPRs are zero.
 */
void svm_l2_init_at(struct svm_l2 *l2, uint64_t rip, uint64_t rsp)
{
	struct vmcb *v = (struct vmcb *)svm_env.vmcb_gpa;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) dtr;
	uint16_t cs, ds;

	memset(v, 0, sizeof(*v));
	memset((void *)svm_env.msrpm_gpa, 0, SVM_MSRPM_PAGES * PAGE_SIZE);
	memset((void *)svm_env.iopm_gpa, 0, SVM_IOPM_PAGES * PAGE_SIZE);
	memset(&l2->gprs, 0, sizeof(l2->gprs));
	l2->vmcb = v;
	l2->features = svm_cpuid_edx(0x8000000a);

	v->control.intercept_misc2 = INTERCEPT_VMRUN | INTERCEPT_VMMCALL;
	v->control.asid = 1;
	v->control.iopm_base_pa = svm_env.iopm_gpa;
	v->control.msrpm_base_pa = svm_env.msrpm_gpa;

	asm volatile("mov %%cs, %0; mov %%ds, %1" : "=r"(cs), "=r"(ds));
	svm_seg_from_gdt(&v->save.cs, cs);
	svm_seg_from_gdt(&v->save.ds, ds);
	v->save.es = v->save.ds;
	v->save.ss = v->save.ds;
	asm volatile("sgdt %0" : "=m"(dtr));
	v->save.gdtr.base = dtr.base;
	v->save.gdtr.limit = dtr.limit;
	asm volatile("sidt %0" : "=m"(dtr));
	v->save.idtr.base = dtr.base;
	v->save.idtr.limit = dtr.limit;
	v->save.cpl = 0;
	v->save.efer = guest_rdmsr(MSR_EFER);
	v->save.cr0 = guest_read_cr0();
	v->save.cr3 = guest_read_cr3();
	v->save.cr4 = guest_read_cr4();
	v->save.dr6 = 0xffff0ff0;
	v->save.dr7 = 0x400;
	v->save.g_pat = guest_rdmsr(0x277);
	v->save.rflags = 2;
	v->save.rip = rip;
	v->save.rsp = rsp;
}

/**
 * svm_l2_init() - svm_l2_init_at() for a C function on svm_l2_stack
 * @l2: L1's record of L2
 * @rip: the function; when it returns, L2 exits with VMMCALL at svm_l2_returned
 */
void svm_l2_init(struct svm_l2 *l2, void (*rip)(void))
{
	uint64_t rsp = (uint64_t)svm_l2_stack + sizeof(svm_l2_stack) - 8;

	*(uint64_t *)rsp = (uint64_t)svm_l2_returned;
	svm_l2_init_at(l2, (uint64_t)rip, rsp);
}

/**
 * svm_run() - run L2 until its next #VMEXIT
 * @l2: L1's record of L2
 *
 * Return: the VMCB's exit code.  GIF is clear afterwards (#VMEXIT clears
 * it: APM vol. 2 15.17); L1 sets it again with STGI when it wants its
 * interrupts.
 */
uint64_t svm_run(struct svm_l2 *l2)
{
	svm_vmrun_gprs((uint64_t)l2->vmcb, &l2->gprs);
	return l2->vmcb->control.exit_code;
}

/**
 * svm_skip_insn() - move L2 past the instruction an instruction intercept named
 * @l2: L1's record of L2
 * @len: the instruction's length
 *
 * With NRIP_SAVE (CPUID Fn8000_000A EDX[3]) the processor writes the next
 * RIP to the VMCB for instruction intercepts (APM vol. 2 15.7.1), and it
 * must be @len bytes on; without it L1 counts, as hypervisors must.
 */
void svm_skip_insn(struct svm_l2 *l2, unsigned int len)
{
	struct vmcb *v = l2->vmcb;

	if (l2->features & SVM_FEAT_NRIPS)
		GUEST_ASSERT_EQ(v->control.next_rip, v->save.rip + len);
	v->save.rip += len;
}

/**
 * svm_msrpm_set() - intercept RDMSR and/or WRMSR of one MSR
 * @msr: the MSR; it must be in one of the map's three ranges
 * @read: intercept RDMSR
 * @write: intercept WRMSR
 *
 * APM vol. 2 15.11: two bits per MSR (read, then write), 2 KiB per range:
 * 0000_0000h-0000_1FFFh at offset 0, C000_0000h-C000_1FFFh at 800h and
 * C001_0000h-C001_1FFFh at 1000h.
 */
void svm_msrpm_set(uint32_t msr, bool read, bool write)
{
	uint8_t *map = (uint8_t *)svm_env.msrpm_gpa;
	uint32_t base, bit;

	if (msr < 0x2000)
		base = 0;
	else if (msr >= 0xc0000000 && msr < 0xc0002000)
		base = 0x800 * 8;
	else if (msr >= 0xc0010000 && msr < 0xc0012000)
		base = 0x1000 * 8;
	else
		for (;;)
			GUEST_ASSERT(!"MSR outside the permission map");
	bit = base + 2 * (msr & 0x1fff);
	map[bit / 8] &= ~(3u << (bit % 8));
	map[bit / 8] |= (read ? 1u : 0) << (bit % 8) | (write ? 2u : 0) << (bit % 8);
}

/**
 * svm_iopm_set() - intercept IN and OUT that touch one port
 * @port: the port
 * @intercept: set or clear its bit
 *
 * APM vol. 2 15.10.1: one bit per port; an access of several bytes is
 * intercepted when any of its ports' bits is set.
 */
void svm_iopm_set(uint16_t port, bool intercept)
{
	uint8_t *map = (uint8_t *)svm_env.iopm_gpa;

	if (intercept)
		map[port / 8] |= 1u << (port % 8);
	else
		map[port / 8] &= ~(1u << (port % 8));
}

/* Host side. */

/**
 * svm_host_features() - CPUID Fn8000_000A EDX as the VM's vCPUs get it
 * @vm: a VM from svm_vm_create()
 *
 * Return: the SVM_FEAT_* bits offered to L1.
 */
uint32_t svm_host_features(struct kvm_vm *vm)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0x8000000a, 0);

	return e ? e->edx : 0;
}

/**
 * svm_vm_create() - a long-mode VM with an in-kernel irqchip whose vCPU may use SVM
 * @l1_code: L1's entry function
 * @vcpu: set to vCPU 0
 *
 * The vCPU gets KVM_GET_SUPPORTED_CPUID, which offers SVM (Fn8000_0001
 * ECX[2] and leaf 8000_000Ah) exactly when the hypervisor supports nested
 * SVM (KVM: kvm_amd nested=1); without it the test is skipped.  The pages
 * SVM needs are allocated and their addresses put in svm_env.
 *
 * Return: the VM.
 */
struct kvm_vm *svm_vm_create(void (*l1_code)(void), struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_cpuid_entry2 *ext1 = cpuid_find(vm->cpuid, 0x80000001, 0);
	struct kvm_cpuid_entry2 *ext0 = cpuid_find(vm->cpuid, 0x80000000, 0);

	if (!ext1 || !(ext1->ecx & CPUID_EXT1_ECX_SVM))
		SKIP("no SVM in KVM_GET_SUPPORTED_CPUID: nested SVM is off (kvm_amd nested=0?)");
	if (!ext0 || ext0->eax < 0x8000000a || !cpuid_find(vm->cpuid, 0x8000000a, 0))
		SKIP("SVM offered without CPUID leaf 8000_000Ah");

	svm_env.hsave_gpa = vm_alloc_pages(vm, 1);
	svm_env.vmcb_gpa = vm_alloc_pages(vm, 1);
	svm_env.msrpm_gpa = vm_alloc_pages(vm, SVM_MSRPM_PAGES);
	svm_env.iopm_gpa = vm_alloc_pages(vm, SVM_IOPM_PAGES);
	for (int i = 0; i < SVM_SCRATCH_PAGES; i++)
		svm_env.scratch_gpa[i] = vm_alloc_pages(vm, 1);
	svm_env.tss_gpa = vm->tss_gpa;
	sync_global_to_guest(vm, svm_env);
	*vcpu = vm_vcpu_add(vm, 0, l1_code);
	return vm;
}
