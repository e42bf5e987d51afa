// SPDX-License-Identifier: GPL-2.0
/*
 * Kicking a vCPU with an in-kernel local APIC out of the guest, or out of
 * its wait, when an event is posted to it.
 *
 * A kick pairs with mkvm_vcpu_enter_guest(): the sender posts the event,
 * then (full barrier) looks at guest_mode; the vCPU sets guest_mode, then
 * (full barrier) looks for events.  Either the vCPU sees the event before
 * entering, or the sender sees it in the guest and interrupts its CPU,
 * which makes VMRUN exit at once.
 */
#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/**
 * mkvm_vcpu_kick() - make a vCPU notice a new event
 * @vcpu: the vCPU, which has a local APIC
 *
 * Wakes it if it is blocked, and sends a reschedule IPI to its CPU if it is
 * in the guest.  Any context.
 */
void mkvm_vcpu_kick(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	int me, cpu;

	rcuwait_wake_up(&apic->wait);
	me = get_cpu();
	if (cmpxchg(&apic->guest_mode, MKVM_IN_GUEST, MKVM_EXITING_GUEST) == MKVM_IN_GUEST) {
		cpu = READ_ONCE(apic->cpu);
		if (cpu != me && cpu_online(cpu))
			smp_send_reschedule(cpu);
	}
	put_cpu();
}

/**
 * mkvm_vcpu_enter_guest() - the vCPU is about to choose events and enter
 * @vcpu: the vCPU, with interrupts disabled
 *
 * Return: false when an INIT, SIPI or SMI waits, which must be handled first.
 */
bool mkvm_vcpu_enter_guest(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	if (!apic)
		return true;
	WRITE_ONCE(apic->cpu, smp_processor_id());
	smp_store_mb(apic->guest_mode, MKVM_IN_GUEST);
	if (mkvm_apic_takeable_events(vcpu)) {
		WRITE_ONCE(apic->guest_mode, MKVM_OUTSIDE_GUEST);
		return false;
	}
	return true;
}

/**
 * mkvm_vcpu_exit_guest() - the vCPU left the guest
 * @vcpu: the vCPU, with interrupts still disabled
 */
void mkvm_vcpu_exit_guest(struct mkvm_vcpu *vcpu)
{
	if (vcpu->arch.lapic) {
		WRITE_ONCE(vcpu->arch.lapic->guest_mode, MKVM_OUTSIDE_GUEST);
		/* Only where the guest changes CR8 without an exit (mkvm_x86_ops). */
		if (mkvm_x86->cr8_unintercepted)
			mkvm_lapic_sync_tpr_from_guest(vcpu);
	}
}
