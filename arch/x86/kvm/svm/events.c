// SPDX-License-Identifier: GPL-2.0
/*
 * SVM event injection: EVENTINJ, EXITINTINFO, the interrupt shadow, and the
 * exits that open the interrupt and NMI windows (APM vol. 2 15.20, 15.21).
 *
 * What to inject and when is decided by arch/x86/kvm/events.c.
 */
#include <asm/traps.h>

#include <minikvm/irqchip.h>

#include "svm.h"

/**
 * mkvm_svm_inject_exception() - put the queued exception in EVENTINJ
 * @vcpu: the vCPU
 */
void mkvm_svm_inject_exception(struct mkvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct mkvm_events *ev = &vcpu->arch.events;
	/* Real mode pushes no error code (SDM vol. 3 20.1.4). */
	bool err = ev->exc.has_error && (vcpu->arch.cr0 & X86_CR0_PE);

	vmcb->control.event_inj = ev->exc.vector | SVM_EVTINJ_TYPE_EXEPT | SVM_EVTINJ_VALID |
				  (err ? SVM_EVTINJ_VALID_ERR : 0);
	vmcb->control.event_inj_err = ev->exc.error;
}

/**
 * mkvm_svm_inject_nmi() - put an NMI in EVENTINJ and watch for its handler's IRET
 * @vcpu: the vCPU
 *
 * SVM does not track NMI blocking for the guest (without vNMI): the IRET
 * intercept tells when the handler returns (APM 15.21.4).
 */
void mkvm_svm_inject_nmi(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->vmcb->control.event_inj = SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_NMI;
	svm->iret_seen = false;
	mkvm_svm_set_intercept(svm->vmcb, INTERCEPT_IRET);
}

/**
 * mkvm_svm_inject_irq() - put the external interrupt in EVENTINJ
 * @vcpu: the vCPU
 *
 * EVENTINJ delivers it whatever the guest's RFLAGS.IF (APM 15.20).
 */
void mkvm_svm_inject_irq(struct mkvm_vcpu *vcpu)
{
	to_svm(vcpu)->vmcb->control.event_inj = vcpu->arch.events.irq.vector |
						SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_INTR;
}

static bool in_shadow(struct mkvm_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK;
}

/**
 * mkvm_svm_interrupt_blocked() - RFLAGS.IF is clear or an STI/MOV SS shadow is on
 * @vcpu: the vCPU
 *
 * Return: true when the guest cannot take an external interrupt now.
 */
bool mkvm_svm_interrupt_blocked(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	if (!svm->gif)
		return true;
	/* L1's interrupt ends L2 as a #VMEXIT (nested.c), which L2's own IF does not stop. */
	if (mkvm_svm_nested_intercepts(vcpu, INTERCEPT_INTR))
		return !mkvm_svm_nested_intr_unmasked(vcpu);
	return !(vcpu->arch.rflags & X86_EFLAGS_IF) || in_shadow(vcpu) || svm->nested.run_pending;
}

/**
 * mkvm_svm_nmi_blocked() - an NMI handler runs or a shadow is on
 * @vcpu: the vCPU
 *
 * Return: true when the guest cannot take an NMI now.
 */
bool mkvm_svm_nmi_blocked(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	/* An NMI L1 intercepts is never L2's: it waits for the #VMEXIT (nested.c). */
	if (!svm->gif || svm->nested.run_pending || mkvm_svm_nested_intercepts(vcpu, INTERCEPT_NMI))
		return true;
	return vcpu->arch.events.nmi_masked || in_shadow(vcpu);
}

/* Leave L2 at once: the run loop then makes the #VMEXIT the pending event calls for. */
static void nested_exit_now(struct mkvm_vcpu *vcpu)
{
	smp_send_reschedule(smp_processor_id());
}

/**
 * mkvm_svm_enable_irq_window() - exit as soon as the guest can take an interrupt
 * @vcpu: the vCPU
 *
 * A virtual interrupt (V_IRQ) is taken only when RFLAGS.IF is set and no
 * shadow is on (APM 15.21.4); intercepting it (VINTR) gives the exit.  Its
 * priority 15 is above any TPR but 15.  The vector is never delivered.
 */
void mkvm_svm_enable_irq_window(struct mkvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	/*
	 * With GIF clear, STGI's exit is the window.  While L2 runs, V_IRQ is
	 * L1's to give L2, so an L1 that does not intercept INTR gets its
	 * interrupts at its next exit (Documentation/nested.rst).
	 */
	if (!to_svm(vcpu)->gif || to_svm(vcpu)->nested.guest_mode)
		return;

	vmcb->control.int_vector = 0;
	vmcb->control.int_ctl = (vmcb->control.int_ctl & ~V_INTR_PRIO_MASK) | V_IRQ_MASK |
				(0xf << V_INTR_PRIO_SHIFT);
	mkvm_svm_set_intercept(vmcb, INTERCEPT_VINTR);
}

/**
 * mkvm_svm_offer_irq() - let the guest take a local APIC vector when it can
 * @vcpu: the vCPU, about to enter
 * @vector: the highest vector the APIC would deliver now
 *
 * A virtual interrupt (V_IRQ with V_INTR_VECTOR) is taken by the CPU
 * itself once RFLAGS.IF is set, no interrupt shadow is on and its priority
 * is above V_TPR (APM vol. 2 15.21.4), so a guest that is in a CLI section
 * needs no window exit.  The vector stays in IRR until the exit shows that
 * the CPU cleared V_IRQ (mkvm_svm_complete_events()).  This also keeps
 * APIC interrupts out of EVENTINJ, whose interrupts QEMU 7.2's emulated
 * SVM now and then delivers twice: the guest's handler runs a second time
 * with nothing injected again (QEMU keeps the vector as its pending
 * exception after delivering it at VMRUN, and a kick of the CPU before the
 * next intercept delivers it again).
 *
 * Not while single-stepping to an NMI window: the interrupt's frame would
 * keep our TF (see mkvm_svm_enable_nmi_window()).
 *
 * Return: true when offered.
 */
bool mkvm_svm_offer_irq(struct mkvm_vcpu *vcpu, int vector)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_control_area *c = &svm->vmcb->control;

	/* GIF clear: the interrupt waits for STGI, which exits. */
	if (!svm->gif)
		return false;
	/*
	 * While L2 runs, an interrupt L1 intercepts is a #VMEXIT, not L2's:
	 * leave L2 for it, right after the first entry if VMRUN was just
	 * emulated (the #VMEXIT waits for that).
	 */
	if (mkvm_svm_nested_intercepts(vcpu, INTERCEPT_INTR)) {
		if (mkvm_svm_nested_intr_unmasked(vcpu))
			nested_exit_now(vcpu);
		return true;
	}
	if (vector < 0 || svm->nmi_singlestep || svm->nested.guest_mode)
		return false;
	c->int_vector = vector;
	c->int_ctl = (c->int_ctl & ~V_IRQ_INJECTION_BITS_MASK) | V_IRQ_MASK |
		     ((vector >> 4) << V_INTR_PRIO_SHIFT);
	/* An interrupt window asked for earlier would only exit instead. */
	mkvm_svm_clr_intercept(svm->vmcb, INTERCEPT_VINTR);
	svm->offered_irq = vector;
	return true;
}

/*
 * After an exit: did the guest take the vector offered in V_IRQ?  The CPU
 * clears V_IRQ when it does; a delivery that the exit cut short shows in
 * EXITINTINFO (APM vol. 2 15.7.2) and counts as not taken, so that the
 * next entry offers the APIC's highest vector again.  V_IRQ is withdrawn
 * either way: the next entry decides afresh.  QEMU's emulated SVM reports
 * such a delivery as an exception; no exception has a vector above 31
 * (SDM vol. 3 6.3.1), so that type with the offered vector means the same.
 *
 * Return: true when EXITINTINFO describes the offered vector, which then
 * must not be queued for EVENTINJ.
 */
static bool complete_offered_irq(struct mkvm_vcpu *vcpu, u32 info)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_control_area *c = &svm->vmcb->control;
	u32 type = info & SVM_EXITINTINFO_TYPE_MASK;
	int v = svm->offered_irq;
	bool cut_short, taken;

	if (v < 0)
		return false;
	svm->offered_irq = -1;
	cut_short = (info & SVM_EXITINTINFO_VALID) && (info & SVM_EXITINTINFO_VEC_MASK) == v &&
		    (type == SVM_EXITINTINFO_TYPE_INTR ||
		     (type == SVM_EXITINTINFO_TYPE_EXEPT && v > 31));
	taken = !(c->int_ctl & V_IRQ_MASK) && !cut_short;
	c->int_ctl &= ~V_IRQ_INJECTION_BITS_MASK;
	if (taken)
		mkvm_lapic_irq_taken(vcpu, v);
	return cut_short;
}

/**
 * mkvm_svm_update_cr8_intercept() - make the guest's MOV to CR8 exit, or not
 * @vcpu: the vCPU
 * @intercept: whether it should (APM 15.9; the write then does not happen)
 */
void mkvm_svm_update_cr8_intercept(struct mkvm_vcpu *vcpu, bool intercept)
{
	/* Where L1's CR8 is written: in L1, or in L2 without V_INTR_MASKING. */
	struct vmcb *vmcb = mkvm_svm_tpr_vmcb(vcpu);

	if (intercept)
		mkvm_svm_set_intercept(vmcb, INTERCEPT_CR8_WRITE);
	else
		mkvm_svm_clr_intercept(vmcb, INTERCEPT_CR8_WRITE);
}

/**
 * mkvm_svm_handle_vintr() - the interrupt window is open
 * @vcpu: the vCPU
 *
 * Return: 1; the run loop decides whether userspace wanted this window.
 */
int mkvm_svm_handle_vintr(struct mkvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	vcpu->stat.irq_window_exits++;
	vmcb->control.int_ctl &= ~V_IRQ_INJECTION_BITS_MASK;
	mkvm_svm_clr_intercept(vmcb, INTERCEPT_VINTR);
	return 1;
}

/**
 * mkvm_svm_enable_nmi_window() - exit as soon as the guest can take an NMI
 * @vcpu: the vCPU
 *
 * While the handler of the last NMI runs, its IRET exits.  Once that IRET
 * was seen, or while an interrupt shadow is on, the guest is single-stepped
 * (RFLAGS.TF, #DB intercepted) over the one instruction in the way.  Not
 * while an event is being injected: its frame would keep our TF.  The NMI
 * then waits for the next exit.
 */
void mkvm_svm_enable_nmi_window(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	/* GIF clear: STGI's exit is the window.  An NMI that L1 intercepts ends L2. */
	if (!svm->gif)
		return;
	if (mkvm_svm_nested_intercepts(vcpu, INTERCEPT_NMI)) {
		nested_exit_now(vcpu);
		return;
	}

	if (vcpu->arch.events.nmi_masked && !svm->iret_seen)
		return;
	if ((svm->vmcb->control.event_inj & SVM_EVTINJ_VALID) || svm->nmi_singlestep)
		return;
	svm->nmi_singlestep = true;
	svm->nmi_singlestep_flags = vcpu->arch.rflags & (X86_EFLAGS_TF | X86_EFLAGS_RF);
}

/**
 * mkvm_svm_entry_rflags() - the guest's RFLAGS for VMRUN
 * @vcpu: the vCPU, with EVENTINJ written
 *
 * Return: RFLAGS, with TF and RF added while single-stepping to an NMI window.
 */
unsigned long mkvm_svm_entry_rflags(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	unsigned long rflags = vcpu->arch.rflags;

	if (svm->vmcb->control.event_inj & SVM_EVTINJ_VALID)
		svm->nmi_singlestep = false;
	if (svm->nmi_singlestep)
		rflags |= X86_EFLAGS_TF | X86_EFLAGS_RF;
	/* The VMM's debugger single-steps: a #DB after one instruction (guest_debug.c). */
	svm->debug_tf = (vcpu->arch.guest_debug & KVM_GUESTDBG_SINGLESTEP) &&
			!(vcpu->arch.rflags & X86_EFLAGS_TF);
	if (svm->debug_tf)
		rflags |= X86_EFLAGS_TF;
	return rflags;
}

/**
 * mkvm_svm_exit_rflags() - the guest's RFLAGS after #VMEXIT
 * @vcpu: the vCPU
 *
 * Return: RFLAGS without the TF and RF that single-stepping added.
 */
unsigned long mkvm_svm_exit_rflags(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	unsigned long rflags = svm->vmcb->save.rflags;

	if (svm->nmi_singlestep)
		rflags &= ~((X86_EFLAGS_TF | X86_EFLAGS_RF) & ~svm->nmi_singlestep_flags);
	if (svm->debug_tf)
		rflags &= ~X86_EFLAGS_TF;
	return rflags;
}

/**
 * mkvm_svm_nmi_singlestep_done() - a #DB exit ends single-stepping
 * @vcpu: the vCPU
 *
 * Return: true when the #DB was ours alone and must not reach the guest.
 */
bool mkvm_svm_nmi_singlestep_done(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	if (!svm->nmi_singlestep)
		return false;
	svm->nmi_singlestep = false;
	return !(svm->nmi_singlestep_flags & X86_EFLAGS_TF);
}

/**
 * mkvm_svm_handle_iret() - the NMI handler's IRET is about to run
 * @vcpu: the vCPU
 *
 * The intercept comes before the instruction (APM 15.9): NMIs stay blocked
 * until RIP has moved past it, which mkvm_svm_complete_events() watches.
 *
 * Return: 1.
 */
int mkvm_svm_handle_iret(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	vcpu->stat.nmi_window_exits++;
	mkvm_svm_clr_intercept(svm->vmcb, INTERCEPT_IRET);
	svm->iret_seen = true;
	svm->iret_rip = vcpu->arch.rip;
	return 1;
}

/**
 * mkvm_svm_update_nmi_mask() - events.nmi_masked was set from outside the guest
 * @vcpu: the vCPU
 *
 * By userspace, or by SMM's entry and RSM: a single step towards the old
 * NMI window is called off, so that it does not run on into new code.
 */
void mkvm_svm_update_nmi_mask(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->iret_seen = false;
	svm->nmi_singlestep = false;
	if (vcpu->arch.events.nmi_masked)
		mkvm_svm_set_intercept(svm->vmcb, INTERCEPT_IRET);
	else
		mkvm_svm_clr_intercept(svm->vmcb, INTERCEPT_IRET);
}

/**
 * mkvm_svm_get_interrupt_shadow() - the STI/MOV SS shadow as KVM reports it
 * @vcpu: the vCPU
 *
 * Return: both KVM_X86_SHADOW_INT_* bits or none: SVM has one bit for both.
 */
u8 mkvm_svm_get_interrupt_shadow(struct mkvm_vcpu *vcpu)
{
	return in_shadow(vcpu) ? KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS : 0;
}

/**
 * mkvm_svm_set_interrupt_shadow() - set or end the interrupt shadow
 * @vcpu: the vCPU
 * @shadow: KVM_X86_SHADOW_INT_* bits; any of them sets the one SVM bit
 */
void mkvm_svm_set_interrupt_shadow(struct mkvm_vcpu *vcpu, u8 shadow)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;

	if (shadow)
		c->int_state |= SVM_INTERRUPT_SHADOW_MASK;
	else
		c->int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
}

/**
 * mkvm_svm_complete_events() - account for what the last entry delivered
 * @vcpu: the vCPU, just after #VMEXIT
 *
 * An event whose delivery the exit interrupted (EXITINTINFO, APM 15.7.2)
 * is queued again.  INTn, INT3 and INTO are not: RIP still points at their
 * instruction, and running it again raises them again with the right
 * return address, where injecting them would push a wrong one.  A #BP or
 * #OF the VMM injected is, since RIP was moved past its instruction.
 */
void mkvm_svm_complete_events(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_control_area *c = &svm->vmcb->control;
	u32 info = c->exit_int_info, type = info & SVM_EXITINTINFO_TYPE_MASK;
	u8 vector = info & SVM_EXITINTINFO_VEC_MASK;
	bool skipped;

	/* The NMI handler's IRET has run once RIP is elsewhere. */
	if (svm->iret_seen && vcpu->arch.rip != svm->iret_rip) {
		svm->iret_seen = false;
		vcpu->arch.events.nmi_masked = false;
	}
	c->event_inj = 0;
	/* Only the entry that injected a VMM's #BP/#OF may see it cut short. */
	skipped = vcpu->arch.events.exc.skipped;
	vcpu->arch.events.exc.skipped = false;
	mkvm_events_exited(vcpu);
	if (complete_offered_irq(vcpu, info) || !(info & SVM_EXITINTINFO_VALID))
		return;
	switch (type) {
	case SVM_EXITINTINFO_TYPE_NMI:
		mkvm_requeue_nmi(vcpu);
		break;
	case SVM_EXITINTINFO_TYPE_INTR:
		mkvm_requeue_irq(vcpu, vector);
		break;
	case SVM_EXITINTINFO_TYPE_EXEPT:
		if ((vector == X86_TRAP_BP || vector == X86_TRAP_OF) && !skipped)
			break;
		mkvm_requeue_exception(vcpu, vector, info & SVM_EXITINTINFO_VALID_ERR,
				       c->exit_int_info_err);
		vcpu->arch.events.exc.skipped = skipped;
		break;
	default:
		break;
	}
}

/**
 * mkvm_svm_events_reset() - no NMI window is being watched for
 * @vcpu: the vCPU, whose VMCB was just reset
 */
void mkvm_svm_events_reset(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->iret_seen = false;
	svm->nmi_singlestep = false;
	svm->offered_irq = -1;
}
