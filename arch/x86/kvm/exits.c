// SPDX-License-Identifier: GPL-2.0
/*
 * The exits whose handling does not depend on the vendor.  Each vendor's
 * exit table (svm/exits.c, vmx/exits.c) points straight at these
 * wherever the work is generic, so SVM and VMX share it; the vendor only
 * says where the instruction ends (the next_rip op) and what its exit
 * information holds.
 *
 * Handlers return >0 to enter the guest again, 0 to exit to userspace with
 * kvm_run filled in, or a negative errno for KVM_RUN.
 */
#include <asm/processor-flags.h>
#include <asm/traps.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/* KVM's hypercall ABI: an unknown hypercall number returns -KVM_ENOSYS in RAX. */
#define MKVM_HC_ENOSYS 1000

/* Go on after the intercepted instruction, of @len bytes when the vendor cannot tell. */
static void skip_insn(struct mkvm_vcpu *vcpu, unsigned int len)
{
	mkvm_rip_past_insn(vcpu, mkvm_x86->next_rip(vcpu, len));
}

/**
 * mkvm_exit_nothing() - an exit for the host: an interrupt, NMI or SMI
 * @vcpu: the vCPU
 *
 * The host takes it once interrupts are enabled again.
 *
 * Return: 1.
 */
int mkvm_exit_nothing(struct mkvm_vcpu *vcpu)
{
	return 1;
}

/**
 * mkvm_exit_intr() - a host interrupt ended the guest's run
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_exit_intr(struct mkvm_vcpu *vcpu)
{
	vcpu->stat.irq_exits++;
	return 1;
}

/**
 * mkvm_exit_ud() - an instruction the guest is not offered raises #UD
 * @vcpu: the vCPU
 *
 * The virtualization instructions, MONITOR/MWAIT, RDPRU.
 *
 * Return: 1.
 */
int mkvm_exit_ud(struct mkvm_vcpu *vcpu)
{
	mkvm_queue_exception(vcpu, UD_VECTOR, false, 0);
	return 1;
}

/**
 * mkvm_exit_cpuid() - CPUID, from the table the VMM set
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_exit_cpuid(struct mkvm_vcpu *vcpu)
{
	mkvm_emulate_cpuid(vcpu);
	skip_insn(vcpu, 2);
	return 1;
}

/**
 * mkvm_exit_xsetbv() - XSETBV, checked as the SDM says (vol. 2 XSETBV)
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_exit_xsetbv(struct mkvm_vcpu *vcpu)
{
	unsigned long *r = vcpu->arch.regs;
	u64 value = (u32)r[REG_RAX] | (u64)(u32)r[REG_RDX] << 32;
	struct kvm_sregs s;

	/*
	 * CR4 writes are not intercepted, so a guest whose CPUID has no XSAVE
	 * may still have set CR4.OSXSAVE: #UD as if it could not.
	 */
	mkvm_x86->get_sregs(vcpu, &s);
	if (!(s.cr4 & X86_CR4_OSXSAVE) || !vcpu->arch.guest_xcr0_mask) {
		mkvm_queue_exception(vcpu, UD_VECTOR, false, 0);
		return 1;
	}
	if (mkvm_x86->get_cpl(vcpu) || mkvm_set_xcr(vcpu, r[REG_RCX], value)) {
		mkvm_queue_exception(vcpu, GP_VECTOR, true, 0);
		return 1;
	}
	skip_insn(vcpu, 3);
	return 1;
}

/**
 * mkvm_exit_halt() - HLT: wait in the kernel, or exit with KVM_EXIT_HLT
 * @vcpu: the vCPU
 *
 * Return: as mkvm_complete_halt().
 */
int mkvm_exit_halt(struct mkvm_vcpu *vcpu)
{
	return mkvm_complete_halt(vcpu, mkvm_x86->next_rip(vcpu, 1));
}

/**
 * mkvm_complete_halt() - the guest halts, RIP past the HLT
 * @vcpu: the vCPU
 * @next_rip: the instruction after the HLT
 *
 * Return: 1 with an in-kernel local APIC, which wakes the vCPU; 0 without,
 * when only userspace can.
 */
int mkvm_complete_halt(struct mkvm_vcpu *vcpu, unsigned long next_rip)
{
	vcpu->stat.halt_exits++;
	mkvm_rip_past_insn(vcpu, next_rip);
	if (vcpu->arch.lapic) {
		mkvm_vcpu_halt(vcpu);
		return 1;
	}
	vcpu->run->exit_reason = KVM_EXIT_HLT;
	return 0;
}

/**
 * mkvm_exit_invd() - INVD: a no-op
 * @vcpu: the vCPU
 *
 * Discarding the host's caches is not the guest's to do; as WBINVD.
 *
 * Return: 1.
 */
int mkvm_exit_invd(struct mkvm_vcpu *vcpu)
{
	skip_insn(vcpu, 2);
	return 1;
}

/**
 * mkvm_exit_wbinvd() - WBINVD: a no-op
 * @vcpu: the vCPU
 *
 * No device memory is passed through, so there is nothing to write back.
 *
 * Return: 1.
 */
int mkvm_exit_wbinvd(struct mkvm_vcpu *vcpu)
{
	skip_insn(vcpu, 2);
	return 1;
}

/**
 * mkvm_exit_rdpmc() - RDPMC: no performance counters are offered, so #GP
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_exit_rdpmc(struct mkvm_vcpu *vcpu)
{
	mkvm_queue_exception(vcpu, GP_VECTOR, true, 0);
	return 1;
}

/**
 * mkvm_exit_hypercall() - VMMCALL or VMCALL: no hypercall is implemented
 * @vcpu: the vCPU
 *
 * Return: 1, with -KVM_ENOSYS in RAX as KVM gives for an unknown one.
 */
int mkvm_exit_hypercall(struct mkvm_vcpu *vcpu)
{
	vcpu->stat.hypercalls++;
	vcpu->arch.regs[REG_RAX] = -MKVM_HC_ENOSYS;
	skip_insn(vcpu, 3);
	return 1;
}

/**
 * mkvm_exit_rdmsr() - RDMSR, in the kernel or through userspace
 * @vcpu: the vCPU
 *
 * Return: as mkvm_emulate_msr_access().
 */
int mkvm_exit_rdmsr(struct mkvm_vcpu *vcpu)
{
	return mkvm_emulate_msr_access(vcpu, false, mkvm_x86->next_rip(vcpu, 2));
}

/**
 * mkvm_exit_wrmsr() - WRMSR, in the kernel or through userspace
 * @vcpu: the vCPU
 *
 * Return: as mkvm_emulate_msr_access().
 */
int mkvm_exit_wrmsr(struct mkvm_vcpu *vcpu)
{
	return mkvm_emulate_msr_access(vcpu, true, mkvm_x86->next_rip(vcpu, 2));
}

/**
 * mkvm_exit_shutdown() - the guest shut down (a triple fault)
 * @vcpu: the vCPU
 *
 * Return: 0, with KVM_EXIT_SHUTDOWN.
 */
int mkvm_exit_shutdown(struct mkvm_vcpu *vcpu)
{
	mkvm_vcpu_shutdown(vcpu);
	return 0;
}

/**
 * mkvm_exit_tdp_fault() - a nested page fault or EPT violation
 * @vcpu: the vCPU, slots_sem held
 * @gpa: the guest-physical address
 * @error_code: for the MMU's page_fault(): bit 1 set for a write
 * @table: the guest was walking its own page tables
 *
 * The page is mapped, or the access is emulated when it is MMIO (no
 * memslot, or a write to a read-only one).
 *
 * Return: >0 to enter again, 0 with kvm_run filled, or a negative errno.
 */
int mkvm_exit_tdp_fault(struct mkvm_vcpu *vcpu, u64 gpa, u32 error_code, bool table)
{
	int r = vcpu->arch.mmu.page_fault(vcpu, gpa, error_code);

	if (r == 1) {
		vcpu->stat.pf_emulate++;
		return mkvm_emulate_mmio(vcpu, gpa, error_code & BIT(1), table);
	}
	if (!r)
		vcpu->stat.pf_fixed++;
	return r ? r : 1;
}
