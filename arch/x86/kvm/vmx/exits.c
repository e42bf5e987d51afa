// SPDX-License-Identifier: GPL-2.0
/*
 * VMX exit handling: one handler per basic exit reason, in a table indexed
 * by it (SDM vol. 3 appendix C), pointing at the generic helpers wherever
 * the work is not VMX's own.
 *
 * Handlers return >0 to enter the guest again, 0 to exit to userspace with
 * kvm_run filled in, or a negative errno for KVM_RUN.
 */
#include <linux/nospec.h>
#include <linux/percpu.h>
#include <asm/debugreg.h>

#include <minikvm/irqchip.h>

#include "vmx.h"

/* Exit qualification of I/O instructions (SDM vol. 3 table 28-5). */
#define IO_SIZE_MASK	7
#define IO_IN		BIT(3)
#define IO_STRING	BIT(4)
#define IO_PORT_SHIFT	16
/* ... of control-register accesses (table 28-3). */
#define CR_NUM(q)	((q) & 0xf)
#define CR_TYPE(q)	(((q) >> 4) & 3)
#define CR_GPR(q)	(((q) >> 8) & 0xf)
enum { CR_MOV_TO, CR_MOV_FROM, CR_CLTS, CR_LMSW };
/* ... of debug-register accesses (table 28-4). */
#define DR_NUM(q)	((q) & 7)
#define DR_FROM		BIT(4)
/* ... of debug exceptions (table 28-1): B0-B3, BD, BS, and RTM. */
#define DB_QUAL_BITS	(MKVM_DR6_GUEST_BITS | BIT(16))

static int internal_error(struct mkvm_vcpu *vcpu, u32 suberror)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = suberror;
	run->internal.ndata = 3;
	run->internal.data[0] = vmx->exit_reason;
	run->internal.data[1] = vmx->exit_qual;
	run->internal.data[2] = vmx->exit_intr_info;
	return 0;
}

static u64 linear_rip(struct mkvm_vcpu *vcpu)
{
	return vmcs_read(GUEST_CS_BASE) + vcpu->arch.rip;
}

/*
 * #DB exits before DR6 changes; the qualification has its bits (SDM vol. 3
 * 27.1).  The VMM's debugger sees every #DB; the guest gets its own back.
 */
static int handle_db(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 bits = vmx->exit_qual & DB_QUAL_BITS;

	if (vcpu->arch.guest_debug & (KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP)) {
		vmx->dr6 = MKVM_DR6_ACTIVE_LOW ^ bits;
		mkvm_guest_debug_exit(vcpu, DB_VECTOR, linear_rip(vcpu));
		if (vmx->debug_tf)
			vmx->dr6 &= ~DR_STEP;
		return 0;
	}
	/* ICEBP's #DB is a trap of the instruction (SDM vol. 3 25.8.3): return past it. */
	if ((vmx->exit_intr_info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_PRIV_SW_EXCEPTION) {
		unsigned long next = vcpu->arch.rip + vmx->insn_len;
		bool wide = (vcpu->arch.efer & EFER_LMA) && (vmcs_read(GUEST_CS_AR_BYTES) & BIT(13));

		mkvm_rip_past_insn(vcpu, wide ? next : (u32)next);
	}
	mkvm_queue_exception_payload(vcpu, DB_VECTOR, false, 0, bits);
	return 1;
}

/*
 * #UD exits so that two instructions the processor refuses in VMX non-root
 * operation still work as on KVM: RSM, which leaves minikvm's emulated SMM
 * (smm.c), and AMD's VMMCALL, the hypercall of a guest that believes it is
 * on AMD.  Any other #UD goes back to the guest.
 */
static int handle_ud(struct mkvm_vcpu *vcpu)
{
	struct mkvm_insn insn;
	struct kvm_sregs s;

	mkvm_x86->get_sregs(vcpu, &s);
	if (mkvm_insn_at_rip(vcpu, &s, &insn) && !insn.lock) {
		if (insn.kind == INSN_RSM)
			return mkvm_smm_rsm(vcpu);
		if (insn.kind == INSN_VMMCALL) {
			to_vmx(vcpu)->insn_len = insn.len;
			return mkvm_exit_hypercall(vcpu);
		}
	}
	return mkvm_exit_ud(vcpu);
}

static int handle_exception(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 info = vmx->exit_intr_info;

	/* An NMI went to the host's handler in handle_exit_irqoff; the guest goes on. */
	if ((info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_NMI_INTR)
		return 1;
	switch (info & INTR_INFO_VECTOR_MASK) {
	case DB_VECTOR:
		return handle_db(vcpu);
	case UD_VECTOR:
		return handle_ud(vcpu);
	case BP_VECTOR:
		/* With KVM_GUESTDBG_USE_SW_BP, the VMM's breakpoint; else virtual-8086 mode's. */
		if (!(vcpu->arch.guest_debug & KVM_GUESTDBG_USE_SW_BP))
			break;
		vmx->soft_len = vmx->insn_len;
		return mkvm_guest_debug_exit(vcpu, BP_VECTOR, linear_rip(vcpu));
	case AC_VECTOR:
		mkvm_queue_exception(vcpu, AC_VECTOR, true, vmx->exit_intr_error);
		return 1;
	case MC_VECTOR:
		return 1;
	case PF_VECTOR:
		/* Intercepted on the shadow MMU only; the qualification is the address (27.2.1). */
		if (mkvm_tdp_enabled)
			break;
		return mkvm_shadow_page_fault(vcpu, vmx->exit_qual, vmx->exit_intr_error);
	case GP_VECTOR:
		if (vmx->rmode)
			return mkvm_vmx_rmode_gp(vcpu);
		break;
	}
	/* Virtual-8086 mode takes every exception: the others are the guest's. */
	if (vmx->rmode)
		return mkvm_vmx_rmode_exception(vcpu);
	return internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
}

static int handle_io(struct mkvm_vcpu *vcpu)
{
	u64 q = to_vmx(vcpu)->exit_qual;
	u8 size = (q & IO_SIZE_MASK) + 1;

	if (q & IO_STRING)
		return mkvm_emulate_string_pio(vcpu, q >> IO_PORT_SHIFT, size, q & IO_IN);
	return mkvm_exit_pio(vcpu, q >> IO_PORT_SHIFT, size, q & IO_IN,
			     mkvm_vmx_next_rip(vcpu, 0));
}

/*
 * MOV to or from CR0, CR3, CR4 or CR8, CLTS and LMSW.  CLTS and LMSW are
 * decoded by the shared code (no register to name).
 */
static int handle_cr(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 q = vmx->exit_qual;
	int cr = CR_NUM(q), gpr = CR_GPR(q);
	unsigned int len = vmx->insn_len;

	switch (CR_TYPE(q)) {
	case CR_MOV_TO:
		if (cr == 8)
			return mkvm_emulate_cr8_write(vcpu, gpr, len);
		return mkvm_emulate_cr_access(vcpu, cr, true, gpr, len);
	case CR_MOV_FROM:
		if (cr == 8) {
			/* Only 64-bit mode has CR8 (SDM vol. 3 2.5): the whole register. */
			vcpu->arch.regs[gpr] = vmx->cr8;
			mkvm_rip_past_insn(vcpu, vcpu->arch.rip + len);
			return 1;
		}
		return mkvm_emulate_cr_access(vcpu, cr, false, gpr, len);
	default:
		return mkvm_emulate_cr_access(vcpu, 0, true, -1, 0);
	}
}

/* MOV to or from a debug register, intercepted while the VMM's debugger holds them. */
static int handle_dr(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 q = vmx->exit_qual;

	return mkvm_emulate_dr_access(vcpu, DR_NUM(q), !(q & DR_FROM), CR_GPR(q), vmx->insn_len);
}

/*
 * An EPT violation (SDM vol. 3 28.3.3.2): map the page, or emulate the
 * access when it is MMIO.  Bits 7 and 8 of the qualification say whether
 * the guest was walking its own page tables.
 */
static int handle_ept_violation(struct mkvm_vcpu *vcpu)
{
	u64 q = to_vmx(vcpu)->exit_qual;
	u64 gpa = vmcs_read(GUEST_PHYSICAL_ADDRESS);
	bool write = q & EPT_VIOLATION_ACC_WRITE;
	bool table = (q & EPT_VIOLATION_GVA_IS_VALID) && !(q & EPT_VIOLATION_GVA_TRANSLATED);

	return mkvm_exit_tdp_fault(vcpu, gpa, write ? BIT(1) : 0, table);
}

/* minikvm builds no misconfigured EPT entries: one means its tables are broken. */
static int handle_ept_misconfig(struct mkvm_vcpu *vcpu)
{
	return internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
}

/*
 * The guest spins on PAUSE: the exit itself is the point, as the run loop
 * lets the scheduler run whoever the guest waits for before it enters again.
 */
static int handle_pause(struct mkvm_vcpu *vcpu)
{
	return 1;
}

/* INVLPG exits on the shadow MMU only; the qualification is the linear address (27.2.1). */
static int handle_invlpg(struct mkvm_vcpu *vcpu)
{
	return mkvm_emulate_invlpg(vcpu, to_vmx(vcpu)->exit_qual, true);
}

/*
 * A triple fault: KVM_EXIT_SHUTDOWN with the vCPU as it stood, as
 * kvm_intel leaves it (the VMCS stays valid, SDM vol. 3 27.1); SVM resets
 * its vCPU, whose VMCB the shutdown left undefined (mkvm_exit_shutdown()).
 */
static int handle_triple_fault(struct mkvm_vcpu *vcpu)
{
	vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
	return 0;
}

static int handle_task_switch(struct mkvm_vcpu *vcpu)
{
	return mkvm_emulation_failed(vcpu, NULL, 0);
}

/* The LAPIC timer expired while the guest ran (vmx.c, arm_preemption_timer()). */
static int handle_preemption_timer(struct mkvm_vcpu *vcpu)
{
	mkvm_lapic_timer_expire_due(vcpu);
	return 1;
}

static int (*const exit_handlers[])(struct mkvm_vcpu *vcpu) = {
	[EXIT_REASON_EXCEPTION_NMI] = handle_exception,
	[EXIT_REASON_EXTERNAL_INTERRUPT] = mkvm_exit_intr,
	[EXIT_REASON_TRIPLE_FAULT] = handle_triple_fault,
	/* INIT and SIPI to the physical CPU: nothing of the guest's. */
	[EXIT_REASON_INIT_SIGNAL] = mkvm_exit_nothing,
	[EXIT_REASON_SIPI_SIGNAL] = mkvm_exit_nothing,
	[EXIT_REASON_INTERRUPT_WINDOW] = mkvm_vmx_handle_irq_window,
	[EXIT_REASON_NMI_WINDOW] = mkvm_vmx_handle_nmi_window,
	[EXIT_REASON_TASK_SWITCH] = handle_task_switch,
	[EXIT_REASON_CPUID] = mkvm_exit_cpuid,
	[EXIT_REASON_HLT] = mkvm_exit_halt,
	[EXIT_REASON_INVD] = mkvm_exit_invd,
	[EXIT_REASON_INVLPG] = handle_invlpg,
	[EXIT_REASON_RDPMC] = mkvm_exit_rdpmc,
	[EXIT_REASON_VMCALL] = mkvm_exit_hypercall,
	/* The VMX instructions: no nested VMX yet, so #UD as on a CPU without VMX. */
	[EXIT_REASON_VMCLEAR ... EXIT_REASON_VMON] = mkvm_exit_ud,
	[EXIT_REASON_INVEPT] = mkvm_exit_ud,
	[EXIT_REASON_INVVPID] = mkvm_exit_ud,
	[EXIT_REASON_VMFUNC] = mkvm_exit_ud,
	[EXIT_REASON_CR_ACCESS] = handle_cr,
	[EXIT_REASON_DR_ACCESS] = handle_dr,
	[EXIT_REASON_IO_INSTRUCTION] = handle_io,
	[EXIT_REASON_MSR_READ] = mkvm_exit_rdmsr,
	[EXIT_REASON_MSR_WRITE] = mkvm_exit_wrmsr,
	[EXIT_REASON_MWAIT_INSTRUCTION] = mkvm_exit_ud,
	[EXIT_REASON_PAUSE_INSTRUCTION] = handle_pause,
	[EXIT_REASON_MONITOR_INSTRUCTION] = mkvm_exit_ud,
	/* A machine check during entry went to the host's handler (SDM vol. 3 26.9). */
	[EXIT_REASON_MCE_DURING_VMENTRY] = mkvm_exit_nothing,
	[EXIT_REASON_EPT_VIOLATION] = handle_ept_violation,
	[EXIT_REASON_EPT_MISCONFIG] = handle_ept_misconfig,
	[EXIT_REASON_WBINVD] = mkvm_exit_wbinvd,
	[EXIT_REASON_XSETBV] = mkvm_exit_xsetbv,
	[EXIT_REASON_PREEMPTION_TIMER] = handle_preemption_timer,
};

/**
 * mkvm_vmx_handle_exit() - dispatch the last VM exit
 * @vcpu: the vCPU
 *
 * Return: >0 to enter again, 0 to return to userspace, or a negative errno.
 */
int mkvm_vmx_handle_exit(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 reason = vmx->exit_reason;

	if (vmx->fail || (reason & VMX_EXIT_REASONS_FAILED_VMENTRY)) {
		/* VMfail: the error number (SDM vol. 3 31.4); else the failed entry's reason. */
		vcpu->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		vcpu->run->fail_entry.hardware_entry_failure_reason =
			vmx->fail ? vmcs_read(VM_INSTRUCTION_ERROR) : reason;
		vcpu->run->fail_entry.cpu = raw_smp_processor_id();
		/* What KVM's dump of the VMCS would start with, for whoever reads the log. */
		pr_warn_ratelimited("minikvm: VM entry failed: %s %#llx, qualification %#llx, "
				    "interruption %#x, interruptibility %#lx, rip %#lx\n",
				    vmx->fail ? "instruction error" : "exit reason",
				    vcpu->run->fail_entry.hardware_entry_failure_reason,
				    vmx->exit_qual, (u32)vmcs_read(VM_ENTRY_INTR_INFO_FIELD),
				    vmcs_read(GUEST_INTERRUPTIBILITY_INFO), vcpu->arch.rip);
		mkvm_vmx_complete_events(vcpu);
		return 0;
	}
	mkvm_vmx_complete_events(vcpu);
	if (unlikely(reason == MKVM_VMX_EXIT_RMODE))
		return mkvm_vmx_rmode_step(vcpu);
	reason = (u16)reason;
	if (reason >= ARRAY_SIZE(exit_handlers))
		return internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
	reason = array_index_nospec(reason, ARRAY_SIZE(exit_handlers));
	if (!exit_handlers[reason])
		return internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
	return exit_handlers[reason](vcpu);
}
