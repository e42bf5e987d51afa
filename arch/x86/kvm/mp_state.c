// SPDX-License-Identifier: GPL-2.0
/*
 * The local APIC's INIT, SIPI and SMI messages to a vCPU with an in-kernel
 * APIC: the multiprocessor start-up protocol (SDM vol. 3 9.4), INIT latched
 * in SMM, and KVM_GET/SET_MP_STATE.
 */
#include <linux/sched/signal.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/**
 * mkvm_apic_takeable_events() - the INIT, SIPI and SMI messages the vCPU can take now
 * @vcpu: the vCPU, which has a local APIC
 *
 * In SMM an INIT is latched until RSM (SDM vol. 3 ch. 34, APM vol. 2 10.3.3),
 * and the vendor may hold it too (SVM's GIF, APM 15.17).
 *
 * Return: the MKVM_APIC_* bits.
 */
unsigned long mkvm_apic_takeable_events(struct mkvm_vcpu *vcpu)
{
	unsigned long ev = READ_ONCE(vcpu->arch.lapic->pending_events);

	if (vcpu->arch.smm.active || (mkvm_x86->init_blocked && mkvm_x86->init_blocked(vcpu)))
		return ev & ~BIT(MKVM_APIC_INIT);
	return ev;
}

/**
 * mkvm_lapic_init_pending() - an INIT waits (latched in SMM, or not taken yet)
 * @vcpu: the vCPU, which has a local APIC
 *
 * Return: true if so; KVM_GET_VCPU_EVENTS reports it as smi.latched_init.
 */
bool mkvm_lapic_init_pending(struct mkvm_vcpu *vcpu)
{
	return READ_ONCE(vcpu->arch.lapic->pending_events) & BIT(MKVM_APIC_INIT);
}

/**
 * mkvm_lapic_fold_smi() - an SMI message the APIC took becomes the vCPU's pending SMI
 * @vcpu: the vCPU, in its own thread
 *
 * So that KVM_GET/SET_VCPU_EVENTS see and replace it, as KVM's do.
 */
void mkvm_lapic_fold_smi(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	bool smi;

	if (!apic || !(READ_ONCE(apic->pending_events) & BIT(MKVM_APIC_SMI)))
		return;
	spin_lock_irqsave(&apic->lock, flags);
	smi = apic->pending_events & BIT(MKVM_APIC_SMI);
	apic->pending_events &= ~BIT(MKVM_APIC_SMI);
	spin_unlock_irqrestore(&apic->lock, flags);
	if (smi)
		vcpu->arch.smm.pending = true;
}

/**
 * mkvm_lapic_set_init_pending() - KVM_SET_VCPU_EVENTS's smi.latched_init
 * @vcpu: the vCPU, which has a local APIC
 * @pending: whether an INIT waits
 */
void mkvm_lapic_set_init_pending(struct mkvm_vcpu *vcpu, bool pending)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;

	spin_lock_irqsave(&apic->lock, flags);
	if (pending)
		apic->pending_events |= BIT(MKVM_APIC_INIT);
	else
		apic->pending_events &= ~BIT(MKVM_APIC_INIT);
	spin_unlock_irqrestore(&apic->lock, flags);
}

/* SIPI (SDM 9.4.4): real mode at vector << 12, CS selector vector << 8, IP 0. */
static void deliver_sipi(struct mkvm_vcpu *vcpu, u8 vector)
{
	struct kvm_sregs s;

	mkvm_x86->get_sregs(vcpu, &s);
	s.cs.selector = vector << 8;
	s.cs.base = (u64)vector << 12;
	mkvm_x86->set_sregs(vcpu, &s);
	vcpu->arch.rip = 0;
}

/* INIT resets all but the APIC base, the APIC id, the TSC and the FPU (SDM 9.1). */
static void init_vcpu(struct mkvm_vcpu *vcpu)
{
	mkvm_x86->init_event(vcpu);
	mkvm_vcpu_reset(vcpu, true);
	mkvm_lapic_reset(vcpu, true);
}

/**
 * mkvm_apic_accept_events() - take in a pending INIT, SIPI and SMI
 * @vcpu: the vCPU, in its own thread, which has a local APIC
 *
 * A SIPI outside wait-for-SIPI is dropped; in SMM the INIT stays latched
 * and a SIPI is dropped, as in KVM.
 */
void mkvm_apic_accept_events(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags, ev;
	u8 sipi;

	if (!mkvm_apic_takeable_events(vcpu))
		return;
	spin_lock_irqsave(&apic->lock, flags);
	ev = apic->pending_events;
	apic->pending_events = 0;
	if (vcpu->arch.smm.active) {
		apic->pending_events = ev & BIT(MKVM_APIC_INIT);
		ev &= ~(BIT(MKVM_APIC_INIT) | BIT(MKVM_APIC_SIPI));
	}
	sipi = apic->sipi_vector;
	spin_unlock_irqrestore(&apic->lock, flags);
	if (ev & BIT(MKVM_APIC_SMI))
		vcpu->arch.smm.pending = true;
	if (ev & BIT(MKVM_APIC_INIT)) {
		init_vcpu(vcpu);
		/* The BSP, by its APIC base flag, runs on; the others wait for SIPI. */
		vcpu->arch.mp_state = (vcpu->arch.apic_base & MSR_IA32_APICBASE_BSP) ?
				      KVM_MP_STATE_RUNNABLE : KVM_MP_STATE_INIT_RECEIVED;
	}
	if ((ev & BIT(MKVM_APIC_SIPI)) && vcpu->arch.mp_state == KVM_MP_STATE_INIT_RECEIVED) {
		deliver_sipi(vcpu, sipi);
		vcpu->arch.mp_state = KVM_MP_STATE_RUNNABLE;
	}
}

/**
 * mkvm_vcpu_wait_uninit() - KVM_RUN of a vCPU that has not had its INIT yet
 * @vcpu: the vCPU, in KVM_MP_STATE_UNINITIALIZED
 *
 * As in KVM, the ioctl waits for an event and then returns, so that the
 * VMM looks at the new MP state before running it.
 *
 * Return: -EAGAIN, or -EINTR (with KVM_EXIT_INTR) for a signal or immediate_exit.
 */
int mkvm_vcpu_wait_uninit(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	if (READ_ONCE(vcpu->run->immediate_exit))
		return -EINTR;
	rcuwait_wait_event(&apic->wait, mkvm_apic_takeable_events(vcpu), TASK_INTERRUPTIBLE);
	mkvm_apic_accept_events(vcpu);
	if (signal_pending(current)) {
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		return -EINTR;
	}
	return -EAGAIN;
}

/**
 * mkvm_mp_state_get() - KVM_GET_MP_STATE with an in-kernel APIC
 * @vcpu: the vCPU
 * @mp: the state; a pending INIT or SIPI is taken in first, as in KVM
 *
 * Return: 0.
 */
int mkvm_mp_state_get(struct mkvm_vcpu *vcpu, struct kvm_mp_state *mp)
{
	mkvm_apic_accept_events(vcpu);
	mp->mp_state = vcpu->arch.mp_state;
	return 0;
}

/**
 * mkvm_mp_state_set() - KVM_SET_MP_STATE with an in-kernel APIC
 * @vcpu: the vCPU
 * @mp: the state; SIPI_RECEIVED means "INIT received, a SIPI pending"
 *
 * Return: 0, or -EINVAL for a state x86 does not have, or for INIT_RECEIVED
 * and SIPI_RECEIVED in SMM or with an SMI pending.
 */
int mkvm_mp_state_set(struct mkvm_vcpu *vcpu, const struct kvm_mp_state *mp)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;

	/* As in KVM: an INIT cannot have been taken in SMM, or with an SMI on its way. */
	if ((vcpu->arch.smm.active || vcpu->arch.smm.pending) &&
	    (mp->mp_state == KVM_MP_STATE_INIT_RECEIVED ||
	     mp->mp_state == KVM_MP_STATE_SIPI_RECEIVED))
		return -EINVAL;
	switch (mp->mp_state) {
	case KVM_MP_STATE_RUNNABLE:
	case KVM_MP_STATE_UNINITIALIZED:
	case KVM_MP_STATE_HALTED:
	case KVM_MP_STATE_AP_RESET_HOLD:
	case KVM_MP_STATE_INIT_RECEIVED:
		vcpu->arch.mp_state = mp->mp_state;
		return 0;
	case KVM_MP_STATE_SIPI_RECEIVED:
		vcpu->arch.mp_state = KVM_MP_STATE_INIT_RECEIVED;
		spin_lock_irqsave(&apic->lock, flags);
		apic->pending_events |= BIT(MKVM_APIC_SIPI);
		spin_unlock_irqrestore(&apic->lock, flags);
		return 0;
	default:
		return -EINVAL;
	}
}

