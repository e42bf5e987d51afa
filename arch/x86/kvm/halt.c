// SPDX-License-Identifier: GPL-2.0
/*
 * A vCPU with an in-kernel local APIC waits in the kernel: halted until an
 * event ends the halt (polling first, halt_poll.c), or until INIT and SIPI
 * for one that waits for them.
 */
#include <linux/sched/signal.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/*
 * What ends a halt: an NMI, INIT/SIPI, an SMI outside SMM, a queued
 * exception (a machine check from KVM_X86_SET_MCE), or an interrupt the
 * guest can take now.
 */
static bool halt_wakes(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	if (mkvm_apic_takeable_events(vcpu) || atomic_read(&apic->nmi_queued) ||
	    vcpu->arch.events.nmi_pending || vcpu->arch.events.exc.queued ||
	    (vcpu->arch.smm.pending && !vcpu->arch.smm.active))
		return true;
	if (mkvm_x86->interrupt_blocked(vcpu))
		return false;
	return mkvm_extint_pending(vcpu) || mkvm_lapic_pending_irq(vcpu) >= 0;
}

static bool halted(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.mp_state == KVM_MP_STATE_HALTED ||
	       vcpu->arch.mp_state == KVM_MP_STATE_AP_RESET_HOLD;
}

static bool block_wakes(struct mkvm_vcpu *vcpu)
{
	return mkvm_apic_takeable_events(vcpu) || (halted(vcpu) && halt_wakes(vcpu));
}

/* While a halted vCPU spins: its own timer may be due before its interrupt comes. */
static bool halt_poll_wakes(struct mkvm_vcpu *vcpu)
{
	mkvm_lapic_timer_expire_due(vcpu);
	return block_wakes(vcpu);
}

/**
 * mkvm_vcpu_block() - wait, outside the guest, until the vCPU may run
 * @vcpu: the vCPU, in KVM_RUN, holding no lock
 *
 * A halted vCPU runs again on an event that ends the halt; one waiting for
 * INIT or SIPI when it gets them.
 *
 * Return: 1 to enter the guest, -EINTR (with KVM_EXIT_INTR) for a signal.
 */
int mkvm_vcpu_block(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	bool halt = vcpu->arch.mp_state == KVM_MP_STATE_HALTED;
	ktime_t start = 0;
	int r = 1;

	/* Only HLT polls: INIT and SIPI come at the pace of the guest's boot code. */
	if (halt) {
		start = ktime_get();
		if (!halt_poll_wakes(vcpu) && mkvm_halt_poll(vcpu, halt_poll_wakes))
			vcpu->stat.halt_successful_poll++;
	}
	for (;;) {
		mkvm_apic_accept_events(vcpu);
		if (halted(vcpu) && halt_wakes(vcpu))
			vcpu->arch.mp_state = KVM_MP_STATE_RUNNABLE;
		if (vcpu->arch.mp_state == KVM_MP_STATE_RUNNABLE)
			break;
		WRITE_ONCE(vcpu->stat.blocking, 1);
		r = rcuwait_wait_event(&apic->wait, block_wakes(vcpu), TASK_INTERRUPTIBLE);
		WRITE_ONCE(vcpu->stat.blocking, 0);
		if (r) {
			vcpu->run->exit_reason = KVM_EXIT_INTR;
			vcpu->stat.signal_exits++;
			r = -EINTR;
			break;
		}
		r = 1;
	}
	if (halt) {
		vcpu->stat.halt_wait_ns += ktime_to_ns(ktime_sub(ktime_get(), start));
		if (r > 0)
			vcpu->stat.halt_wakeup++;
		mkvm_halt_poll_adapt(vcpu, start);
	}
	return r;
}

/**
 * mkvm_vcpu_halt() - HLT with an in-kernel APIC: wait in the kernel
 * @vcpu: the vCPU, with RIP past the HLT
 */
void mkvm_vcpu_halt(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.mp_state = KVM_MP_STATE_HALTED;
}
