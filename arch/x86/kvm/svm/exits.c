// SPDX-License-Identifier: GPL-2.0
/*
 * SVM exit handling: one handler per exit code, in a table indexed by the
 * code (APM vol. 2 appendix C).
 *
 * Handlers return >0 to enter the guest again, 0 to exit to userspace with
 * kvm_run filled in, or a negative errno for KVM_RUN.
 */
#include <linux/nospec.h>
#include <linux/percpu.h>
#include <asm/debugreg.h>
#include <asm/msr-index.h>

#include <minikvm/irqchip.h>

#include "svm.h"

/* IOIO EXITINFO1 (APM 15.10.2): bit 0 IN, 2 string, 3 REP, 4-6 size, 31:16 port. */
#define IOIO_PORT_SHIFT 16
/* Nested page fault error code (APM 15.25.6): bit 33 is a guest table walk. */
#define NPF_GUEST_TABLE BIT_ULL(33)

/**
 * mkvm_svm_next_rip() - where the intercepted instruction ends (APM 15.7.1 nRIP)
 * @vcpu: the vCPU
 * @len: the instruction's length, for CPUs without nrip-save (QEMU's TCG):
 *	the generic handlers know it for the fixed-length instructions
 *
 * Return: the address of the next instruction.
 */
unsigned long mkvm_svm_next_rip(struct mkvm_vcpu *vcpu, unsigned int len)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	if (mkvm_svm_nrips && vmcb->control.next_rip)
		return vmcb->control.next_rip;
	return vcpu->arch.rip + len;
}

static int internal_error(struct mkvm_vcpu *vcpu, u32 suberror)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = suberror;
	run->internal.ndata = 3;
	run->internal.data[0] = c->exit_code;
	run->internal.data[1] = c->exit_info_1;
	run->internal.data[2] = c->exit_info_2;
	return 0;
}

/*
 * The exit came between an STI or MOV SS and a HLT in its shadow (a host
 * interrupt, a nested page fault on the fetch), with no event on its way
 * in.  The HLT runs before any interrupt is recognized (SDM vol. 3 6.8.3),
 * and an interrupt that then ends the halt returns past it (SDM vol. 2
 * HLT), so completing the HLT here is what the guest would see anyway.
 * Entering again with INTERRUPT_SHADOW set would do on hardware, which
 * loads the shadow at VMRUN (APM vol. 2 15.21.5), but QEMU's emulated SVM
 * does not: the interrupt window would open before the HLT, the interrupt
 * that should end the halt would be taken first, and the guest would
 * then halt with nothing left to wake it.
 */
static bool hlt_in_shadow(struct mkvm_vcpu *vcpu, unsigned long *next_rip)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct mkvm_events *ev = &vcpu->arch.events;
	struct mkvm_insn insn;
	struct kvm_sregs s;

	if (!(vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK))
		return false;
	/* At CPL > 0 HLT raises #GP instead (SDM vol. 2 HLT): let the guest run it. */
	if (vmcb->save.cpl || ev->exc.queued || ev->nmi_injected || ev->irq.injected)
		return false;
	/* L1's EVENTINJ goes in before L2's HLT runs (APM 15.20). */
	if (to_svm(vcpu)->nested.run_pending)
		return false;
	mkvm_x86->get_sregs(vcpu, &s);
	/* With a LOCK prefix it is #UD, the guest's to take. */
	if (!mkvm_insn_at_rip(vcpu, &s, &insn) || insn.kind != INSN_HLT || insn.lock)
		return false;
	/* Past any prefixes; this is no HLT exit, so nRIP does not say. */
	*next_rip = vcpu->arch.rip + insn.len;
	if (!(s.efer & EFER_LMA) || !s.cs.l)
		*next_rip &= 0xffffffff;
	return true;
}

/*
 * What the hardware says of an intercepted MOV to or from a CR or DR: its
 * GPR with decode assists (EXITINFO1, APM 15.33.1), else -1; its length
 * with nRIP, else 0.  The generic code decodes what is missing.
 */
static void mov_crdr_info(struct mkvm_vcpu *vcpu, int *gpr, unsigned int *len)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;

	*gpr = c->exit_info_1 & BIT_ULL(63) ? c->exit_info_1 & 0xf : -1;
	*len = mkvm_svm_nrips && c->next_rip ? c->next_rip - vcpu->arch.rip : 0;
}

static int handle_cr8_write(struct mkvm_vcpu *vcpu)
{
	unsigned int len;
	int gpr;

	mov_crdr_info(vcpu, &gpr, &len);
	return mkvm_emulate_cr8_write(vcpu, gpr, len);
}

/* MOV to or from CR0, CR3 or CR4, LMSW, CLTS: intercepted as svm_update_crs() says. */
static int handle_cr(struct mkvm_vcpu *vcpu)
{
	u32 code = to_svm(vcpu)->vmcb->control.exit_code;
	bool write = code >= SVM_EXIT_WRITE_CR0;
	unsigned int len;
	int gpr;

	mov_crdr_info(vcpu, &gpr, &len);
	if (code == SVM_EXIT_CR0_SEL_WRITE)
		return mkvm_emulate_cr_access(vcpu, 0, true, gpr, len);
	return mkvm_emulate_cr_access(vcpu, code - (write ? SVM_EXIT_WRITE_CR0 : SVM_EXIT_READ_CR0),
				      write, gpr, len);
}

/* The linear address of the guest's instruction, for KVM_EXIT_DEBUG. */
static u64 linear_rip(struct mkvm_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.cs.base + vcpu->arch.rip;
}

/*
 * #DB and #AC are intercepted for the host's safety and given back, but a
 * #DB from the VMM debugger's single step is its own.
 */
static int handle_db(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	/* Single-stepping to an NMI window (events.c) is not the guest's business. */
	bool ours = mkvm_svm_nmi_singlestep_done(vcpu);

	/* As in KVM, the debugger with hardware breakpoints sees every #DB. */
	if (vcpu->arch.guest_debug & (KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP)) {
		mkvm_guest_debug_exit(vcpu, DB_VECTOR, linear_rip(vcpu));
		/* The guest's DR6 must not keep the step that was not its own. */
		if (svm->debug_tf)
			svm->vmcb->save.dr6 &= ~DR_STEP;
		return 0;
	}
	if (ours)
		return 1;
	/* The #DB's DR6 bits, as KVM_CAP_EXCEPTION_PAYLOAD shows them while it is pending. */
	mkvm_queue_exception_payload(vcpu, DB_VECTOR, false, 0,
				     svm->vmcb->save.dr6 ^ MKVM_DR6_ACTIVE_LOW);
	return 1;
}

/* Intercepted only with KVM_GUESTDBG_USE_SW_BP: the VMM's breakpoint (RIP at the INT3). */
static int handle_bp(struct mkvm_vcpu *vcpu)
{
	return mkvm_guest_debug_exit(vcpu, BP_VECTOR, linear_rip(vcpu));
}

/* Intercepted on the shadow MMU only: EXITINFO1 is the error code, EXITINFO2 the address. */
static int handle_pf(struct mkvm_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;

	return mkvm_shadow_page_fault(vcpu, c->exit_info_2, c->exit_info_1);
}

/* With decode assists EXITINFO1 holds the linear address (APM 15.33.2). */
static int handle_invlpg(struct mkvm_vcpu *vcpu)
{
	return mkvm_emulate_invlpg(vcpu, to_svm(vcpu)->vmcb->control.exit_info_1,
				   mkvm_svm_decode_assists);
}

/* A hardware task switch: an emulation failure, as for any instruction minikvm cannot complete. */
static int handle_task_switch(struct mkvm_vcpu *vcpu)
{
	return mkvm_emulation_failed(vcpu, NULL, 0);
}

static int handle_ac(struct mkvm_vcpu *vcpu)
{
	mkvm_queue_exception(vcpu, AC_VECTOR, true, 0);
	return 1;
}

static int handle_msr(struct mkvm_vcpu *vcpu)
{
	/* EXITINFO1 is 1 for WRMSR, 0 for RDMSR (APM 15.11). */
	if (to_svm(vcpu)->vmcb->control.exit_info_1)
		return mkvm_exit_wrmsr(vcpu);
	return mkvm_exit_rdmsr(vcpu);
}

static int handle_ioio(struct mkvm_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	u32 info = c->exit_info_1;

	if (info & SVM_IOIO_STR_MASK)
		return mkvm_emulate_string_pio(vcpu, info >> IOIO_PORT_SHIFT,
					       (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT,
					       info & SVM_IOIO_TYPE_MASK);
	/* EXITINFO2 holds the next RIP for IOIO even without nrip-save (APM 15.10.2). */
	return mkvm_exit_pio(vcpu, info >> IOIO_PORT_SHIFT,
			     (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT,
			     info & SVM_IOIO_TYPE_MASK, c->exit_info_2);
}

static int handle_npf(struct mkvm_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;

	/* L2 on L1's nested paging faults on the nNPT (nested_npt.c). */
	if (to_svm(vcpu)->nested.npt)
		return mkvm_svm_nested_npf(vcpu);
	return mkvm_exit_tdp_fault(vcpu, c->exit_info_2, c->exit_info_1,
				   c->exit_info_1 & NPF_GUEST_TABLE);
}

/* MOV to or from a debug register, intercepted while the VMM's debugger holds them. */
static int handle_dr(struct mkvm_vcpu *vcpu)
{
	u32 code = to_svm(vcpu)->vmcb->control.exit_code;
	bool write = code >= SVM_EXIT_WRITE_DR0;
	int dr = code - (write ? SVM_EXIT_WRITE_DR0 : SVM_EXIT_READ_DR0);
	unsigned int len;
	int gpr;

	mov_crdr_info(vcpu, &gpr, &len);
	return mkvm_emulate_dr_access(vcpu, dr, write, gpr, len);
}

static int (*const exit_handlers[])(struct mkvm_vcpu *vcpu) = {
	[SVM_EXIT_EXCP_BASE + DB_VECTOR] = handle_db,
	[SVM_EXIT_EXCP_BASE + BP_VECTOR] = handle_bp,
	[SVM_EXIT_EXCP_BASE + PF_VECTOR] = handle_pf,
	[SVM_EXIT_EXCP_BASE + AC_VECTOR] = handle_ac,
	/* Handed to the host's handler in svm_run(); the guest goes on. */
	[SVM_EXIT_EXCP_BASE + MC_VECTOR] = mkvm_exit_nothing,
	[SVM_EXIT_RDPMC] = mkvm_exit_rdpmc,
	[SVM_EXIT_WBINVD] = mkvm_exit_wbinvd,
	[SVM_EXIT_READ_DR0 ... SVM_EXIT_READ_DR7] = handle_dr,
	[SVM_EXIT_WRITE_DR0 ... SVM_EXIT_WRITE_DR7] = handle_dr,
	[SVM_EXIT_INTR] = mkvm_exit_intr,
	[SVM_EXIT_NMI] = mkvm_exit_nothing,
	[SVM_EXIT_SMI] = mkvm_exit_nothing,
	[SVM_EXIT_FERR_FREEZE] = mkvm_exit_nothing,
	[SVM_EXIT_VINTR] = mkvm_svm_handle_vintr,
	[SVM_EXIT_READ_CR0] = handle_cr,
	[SVM_EXIT_READ_CR3] = handle_cr,
	[SVM_EXIT_READ_CR4] = handle_cr,
	[SVM_EXIT_WRITE_CR0] = handle_cr,
	[SVM_EXIT_WRITE_CR3] = handle_cr,
	[SVM_EXIT_WRITE_CR4] = handle_cr,
	[SVM_EXIT_CR0_SEL_WRITE] = handle_cr,
	[SVM_EXIT_WRITE_CR8] = handle_cr8_write,
	[SVM_EXIT_CPUID] = mkvm_exit_cpuid,
	[SVM_EXIT_IRET] = mkvm_svm_handle_iret,
	[SVM_EXIT_INVD] = mkvm_exit_invd,
	[SVM_EXIT_HLT] = mkvm_exit_halt,
	[SVM_EXIT_INVLPG] = handle_invlpg,
	/* Intercepted on the shadow MMU only (svm.c): not emulated yet. */
	[SVM_EXIT_TASK_SWITCH] = handle_task_switch,
	[SVM_EXIT_INVPCID] = mkvm_exit_ud,
	/* The SVM instructions: L1's, with nested=1 (nested.c); else #UD. */
	[SVM_EXIT_INVLPGA] = mkvm_svm_handle_invlpga,
	[SVM_EXIT_IOIO] = handle_ioio,
	[SVM_EXIT_MSR] = handle_msr,
	[SVM_EXIT_SHUTDOWN] = mkvm_exit_shutdown,
	[SVM_EXIT_VMRUN] = mkvm_svm_handle_vmrun,
	[SVM_EXIT_VMMCALL] = mkvm_exit_hypercall,
	[SVM_EXIT_VMLOAD] = mkvm_svm_handle_vmload,
	[SVM_EXIT_VMSAVE] = mkvm_svm_handle_vmsave,
	[SVM_EXIT_STGI] = mkvm_svm_handle_stgi,
	[SVM_EXIT_CLGI] = mkvm_svm_handle_clgi,
	[SVM_EXIT_SKINIT] = mkvm_exit_ud,
	[SVM_EXIT_MONITOR] = mkvm_exit_ud,
	[SVM_EXIT_MWAIT] = mkvm_exit_ud,
	[SVM_EXIT_XSETBV] = mkvm_exit_xsetbv,
	[SVM_EXIT_RDPRU] = mkvm_exit_ud,
	[SVM_EXIT_NPF] = handle_npf,
	/* The guest's SMM is minikvm's: RSM reads its state save map (smm.c). */
	[SVM_EXIT_RSM] = mkvm_smm_rsm,
};

/**
 * mkvm_svm_handle_exit() - dispatch the last #VMEXIT
 * @vcpu: the vCPU
 *
 * Return: >0 to enter again, 0 to return to userspace, or a negative errno.
 */
int mkvm_svm_handle_exit(struct mkvm_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	/*
	 * Every exit code fits in the low half.  VMRUN's failure is -1 in all
	 * 64 bits on hardware (APM 15.5.1) but only in the low 32 under QEMU.
	 */
	u32 code = c->exit_code;
	bool l2 = to_svm(vcpu)->nested.guest_mode;
	/* For L1, if the exit is its: the events complete_events() takes back. */
	u32 eii = l2 ? mkvm_svm_nested_exit_int_info(vcpu) : c->exit_int_info;
	u32 eii_err = c->exit_int_info_err;
	unsigned long next;
	int r;

	mkvm_svm_complete_events(vcpu);
	if (l2 && mkvm_svm_nested_reflect(vcpu, eii, eii_err))
		return 1;
	if (code == (u32)SVM_EXIT_ERR) {
		/* VMRUN refused the VMCB's state (APM 15.5.1). */
		vcpu->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		vcpu->run->fail_entry.hardware_entry_failure_reason = code;
		vcpu->run->fail_entry.cpu = smp_processor_id();
		return 0;
	}
	if (code >= ARRAY_SIZE(exit_handlers))
		return internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
	code = array_index_nospec(code, ARRAY_SIZE(exit_handlers));
	if (!exit_handlers[code])
		return internal_error(vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON);
	r = exit_handlers[code](vcpu);
	/* Not for an L2 whose HLT L1 intercepts: that exit is L1's. */
	if (r > 0 && !mkvm_svm_nested_intercepts(vcpu, INTERCEPT_HLT) && hlt_in_shadow(vcpu, &next))
		r = mkvm_complete_halt(vcpu, next);
	return r;
}
