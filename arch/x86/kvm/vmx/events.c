// SPDX-License-Identifier: GPL-2.0
/*
 * VMX event injection: the VM-entry interruption-information field, IDT
 * vectoring information, interruptibility state, and the interrupt- and
 * NMI-window exits (SDM vol. 3 26.6, 27.2.4, 25.4.2).
 *
 * What to inject and when is decided by arch/x86/kvm/events.c.  NMI
 * blocking is the processor's own with virtual NMIs (SDM vol. 3 25.6.1):
 * events.nmi_masked is copied into the VMCS before each entry and back
 * after each exit.
 */
#include <asm/traps.h>

#include "vmx.h"

/* The interruptibility bits that hold an interrupt or NMI off for one instruction. */
#define SHADOW (GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS)
/* Pending debug exceptions: BS, a single step to report after the shadow (SDM 25.4.2). */
#define PENDING_DBG_BS BIT(14)

static void inject(struct mkvm_vcpu *vcpu, u32 info)
{
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, info | INTR_INFO_VALID_MASK);
}

/**
 * mkvm_vmx_inject_exception() - put the queued exception in the entry's interruption field
 * @vcpu: the vCPU
 *
 * #BP and #OF, which only the VMM queues on VMX (KVM_SET_GUEST_DEBUG's
 * INJECT_BP, KVM_SET_VCPU_EVENTS), return where kvm_intel's do: at RIP
 * plus the length of the last software exception or interrupt an exit
 * reported, so that a debugger passing back the guest's own INT3 after a
 * #BP exit returns past it; at RIP before any.  The first is a software
 * exception of that length (SDM vol. 3 26.6.1.1), the second a hardware
 * exception at RIP: a zero-length software exception needs the CPU's leave
 * (IA32_VMX_MISC bit 30), and Bochs, which gives it, still returned past
 * the INT3, where kvm_intel in the same machine returned to it.
 */
void mkvm_vmx_inject_exception(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	/*
	 * VM entry takes an error code only for the exceptions that push one,
	 * outside real mode, and of 16 bits (SDM vol. 3 26.2.1.3): a VMM's
	 * KVM_SET_VCPU_EVENTS may say otherwise, which must not make every
	 * entry fail.
	 */
	bool err = ev->exc.has_error && (vcpu->arch.cr0 & X86_CR0_PE) &&
		   (ev->exc.vector == X86_TRAP_DF || (ev->exc.vector >= X86_TRAP_TS &&
		    ev->exc.vector <= X86_TRAP_PF) || ev->exc.vector == X86_TRAP_AC ||
		    ev->exc.vector == X86_TRAP_CP);

	bool soft = (ev->exc.vector == X86_TRAP_BP || ev->exc.vector == X86_TRAP_OF) &&
		    to_vmx(vcpu)->soft_len;

	if (to_vmx(vcpu)->rmode) {
		mkvm_vmx_rmode_queue_event(vcpu, RM_EVENT_EXCEPTION, ev->exc.vector,
					   vcpu->arch.rip + (soft ? to_vmx(vcpu)->soft_len : 0));
		return;
	}
	if (soft) {
		vmcs_write(VM_ENTRY_INSTRUCTION_LEN, to_vmx(vcpu)->soft_len);
		inject(vcpu, ev->exc.vector | INTR_TYPE_SOFT_EXCEPTION);
		return;
	}
	if (err)
		vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, (u16)ev->exc.error);
	inject(vcpu, ev->exc.vector | INTR_TYPE_HARD_EXCEPTION |
		     (err ? INTR_INFO_DELIVER_CODE_MASK : 0));
}

/**
 * mkvm_vmx_inject_nmi() - put an NMI in the entry's interruption field
 * @vcpu: the vCPU
 */
void mkvm_vmx_inject_nmi(struct mkvm_vcpu *vcpu)
{
	if (to_vmx(vcpu)->rmode)
		mkvm_vmx_rmode_queue_event(vcpu, RM_EVENT_NMI, NMI_VECTOR, vcpu->arch.rip);
	else
		inject(vcpu, NMI_VECTOR | INTR_TYPE_NMI_INTR);
}

/**
 * mkvm_vmx_inject_irq() - put the external interrupt in the entry's interruption field
 * @vcpu: the vCPU
 */
void mkvm_vmx_inject_irq(struct mkvm_vcpu *vcpu)
{
	if (to_vmx(vcpu)->rmode)
		mkvm_vmx_rmode_queue_event(vcpu, RM_EVENT_IRQ, vcpu->arch.events.irq.vector,
					   vcpu->arch.rip);
	else
		inject(vcpu, vcpu->arch.events.irq.vector | INTR_TYPE_EXT_INTR);
}

static u32 intr_state(void)
{
	return vmcs_read(GUEST_INTERRUPTIBILITY_INFO);
}

/**
 * mkvm_vmx_interrupt_blocked() - RFLAGS.IF is clear or an STI/MOV SS shadow is on
 * @vcpu: the vCPU
 *
 * Return: true when the guest cannot take an external interrupt now.
 */
bool mkvm_vmx_interrupt_blocked(struct mkvm_vcpu *vcpu)
{
	return !(vcpu->arch.rflags & X86_EFLAGS_IF) || (intr_state() & SHADOW);
}

/**
 * mkvm_vmx_nmi_blocked() - an NMI handler runs or a shadow is on
 * @vcpu: the vCPU
 *
 * Return: true when the guest cannot take an NMI now.
 */
bool mkvm_vmx_nmi_blocked(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.events.nmi_masked || (intr_state() & SHADOW);
}

/**
 * mkvm_vmx_enable_irq_window() - exit as soon as the guest can take an interrupt
 * @vcpu: the vCPU
 */
void mkvm_vmx_enable_irq_window(struct mkvm_vcpu *vcpu)
{
	mkvm_vmx_set_proc(vcpu, CPU_BASED_INTR_WINDOW_EXITING, true);
}

/**
 * mkvm_vmx_enable_nmi_window() - exit as soon as the guest can take an NMI
 * @vcpu: the vCPU
 *
 * The processor knows when the NMI handler's IRET ran (virtual NMIs).
 */
void mkvm_vmx_enable_nmi_window(struct mkvm_vcpu *vcpu)
{
	mkvm_vmx_set_proc(vcpu, CPU_BASED_NMI_WINDOW_EXITING, true);
}

/**
 * mkvm_vmx_handle_irq_window() - the interrupt window is open
 * @vcpu: the vCPU
 *
 * Return: 1; the run loop decides whether userspace wanted this window.
 */
int mkvm_vmx_handle_irq_window(struct mkvm_vcpu *vcpu)
{
	vcpu->stat.irq_window_exits++;
	mkvm_vmx_set_proc(vcpu, CPU_BASED_INTR_WINDOW_EXITING, false);
	return 1;
}

/**
 * mkvm_vmx_handle_nmi_window() - the NMI window is open
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_vmx_handle_nmi_window(struct mkvm_vcpu *vcpu)
{
	vcpu->stat.nmi_window_exits++;
	mkvm_vmx_set_proc(vcpu, CPU_BASED_NMI_WINDOW_EXITING, false);
	return 1;
}

/**
 * mkvm_vmx_update_cr8_intercept() - nothing to do: every MOV to CR8 exits on VMX
 * @vcpu: the vCPU
 * @intercept: unused
 */
void mkvm_vmx_update_cr8_intercept(struct mkvm_vcpu *vcpu, bool intercept)
{
}

/**
 * mkvm_vmx_update_nmi_mask() - events.nmi_masked was set from outside the guest
 * @vcpu: the vCPU
 *
 * Written to the VMCS at the next entry (mkvm_vmx_before_entry()).
 */
void mkvm_vmx_update_nmi_mask(struct mkvm_vcpu *vcpu)
{
}

/**
 * mkvm_vmx_get_interrupt_shadow() - the STI/MOV SS shadow as KVM reports it
 * @vcpu: the vCPU
 *
 * Return: KVM_X86_SHADOW_INT_* bits, which VMX keeps apart as KVM does.
 */
u8 mkvm_vmx_get_interrupt_shadow(struct mkvm_vcpu *vcpu)
{
	u32 st = intr_state();

	return (st & GUEST_INTR_STATE_STI ? KVM_X86_SHADOW_INT_STI : 0) |
	       (st & GUEST_INTR_STATE_MOV_SS ? KVM_X86_SHADOW_INT_MOV_SS : 0);
}

/**
 * mkvm_vmx_set_interrupt_shadow() - set or end the interrupt shadow
 * @vcpu: the vCPU
 * @shadow: KVM_X86_SHADOW_INT_* bits; both (as SVM reports any shadow) mean MOV SS
 */
void mkvm_vmx_set_interrupt_shadow(struct mkvm_vcpu *vcpu, u8 shadow)
{
	u32 st = intr_state() & ~SHADOW;

	/* Not both: VM entry refuses that (SDM vol. 3 26.3.1.5); MOV SS blocks more. */
	if (shadow & KVM_X86_SHADOW_INT_MOV_SS)
		st |= GUEST_INTR_STATE_MOV_SS;
	else if (shadow & KVM_X86_SHADOW_INT_STI)
		st |= GUEST_INTR_STATE_STI;
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, st);
}

/**
 * mkvm_vmx_before_entry() - make the interruptibility state one VM entry accepts
 * @vcpu: the vCPU, with GUEST_RFLAGS and the event to inject written
 *
 * SDM vol. 3 26.3.1.5: NMI blocking must be clear while an NMI is
 * injected; STI blocking needs RFLAGS.IF (MOV SS blocking holds the same
 * events off); and with TF set under a shadow, the single step is pending
 * as BS.
 */
void mkvm_vmx_before_entry(struct mkvm_vcpu *vcpu)
{
	u32 info = vmcs_read(VM_ENTRY_INTR_INFO_FIELD);
	unsigned long rflags = vmcs_read(GUEST_RFLAGS);
	u32 st = intr_state() & ~GUEST_INTR_STATE_NMI;
	bool nmi = (info & INTR_INFO_VALID_MASK) &&
		   (info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_NMI_INTR;

	if (vcpu->arch.events.nmi_masked && !nmi)
		st |= GUEST_INTR_STATE_NMI;
	if ((st & GUEST_INTR_STATE_STI) && !(rflags & X86_EFLAGS_IF))
		st = (st & ~GUEST_INTR_STATE_STI) | GUEST_INTR_STATE_MOV_SS;
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, st);
	if (st & SHADOW) {
		u64 dbg = vmcs_read(GUEST_PENDING_DBG_EXCEPTIONS) & ~PENDING_DBG_BS;

		if (rflags & X86_EFLAGS_TF)
			dbg |= PENDING_DBG_BS;
		vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, dbg);
	}
}

/*
 * An exit from a fault in IRET that had unblocked NMIs: the IRET runs
 * again, so NMIs are blocked until then (SDM vol. 3 27.2.3).
 */
static bool iret_unblocked_nmi(struct mkvm_vmx_vcpu *vmx)
{
	switch ((u16)vmx->exit_reason) {
	case EXIT_REASON_EXCEPTION_NMI:
		return (vmx->exit_intr_info & INTR_INFO_VALID_MASK) &&
		       (vmx->exit_intr_info & INTR_INFO_UNBLOCK_NMI);
	case EXIT_REASON_EPT_VIOLATION:
		return vmx->exit_qual & INTR_INFO_UNBLOCK_NMI;
	}
	return false;
}

/**
 * mkvm_vmx_complete_events() - account for what the last entry delivered
 * @vcpu: the vCPU, just after the VM exit
 *
 * An event whose delivery the exit cut short (IDT-vectoring information,
 * SDM vol. 3 27.2.4) is queued again.  Software interrupts and INT3/INTO
 * are not: RIP still points at their instruction, which raises them again.
 */
void mkvm_vmx_complete_events(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 info = vmx->idt_info;
	u8 vector = info & VECTORING_INFO_VECTOR_MASK;
	bool skipped;

	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);
	/*
	 * Virtual-NMI blocking starts with the injection of an NMI, which set
	 * nmi_masked, and the guest can only end it, by IRET (SDM vol. 3
	 * 25.3): it is read back only while set, as KVM does.  Bochs reports
	 * it set after exits where nothing could have set it.
	 */
	if (!vmx->fail && !(vmx->exit_reason & VMX_EXIT_REASONS_FAILED_VMENTRY) &&
	    vcpu->arch.events.nmi_masked)
		vcpu->arch.events.nmi_masked = intr_state() & GUEST_INTR_STATE_NMI;
	if (!(info & VECTORING_INFO_VALID_MASK) && iret_unblocked_nmi(vmx))
		vcpu->arch.events.nmi_masked = true;
	skipped = vcpu->arch.events.exc.skipped;
	vcpu->arch.events.exc.skipped = false;
	mkvm_events_exited(vcpu);
	if (!(info & VECTORING_INFO_VALID_MASK))
		return;
	switch (info & VECTORING_INFO_TYPE_MASK) {
	case INTR_TYPE_NMI_INTR:
		mkvm_requeue_nmi(vcpu);
		break;
	case INTR_TYPE_EXT_INTR:
		mkvm_requeue_irq(vcpu, vector);
		break;
	case INTR_TYPE_HARD_EXCEPTION:
		mkvm_requeue_exception(vcpu, vector, info & VECTORING_INFO_DELIVER_CODE_MASK,
				       vmx->idt_error);
		vcpu->arch.events.exc.skipped = skipped;
		break;
	default:
		/* A software event: the exit reports its instruction's length (SDM 27.2.5). */
		vmx->soft_len = vmx->insn_len;
		break;
	}
}
