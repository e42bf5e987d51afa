// SPDX-License-Identifier: GPL-2.0
/*
 * vCPUs with an in-kernel local APIC: halting in the kernel until an event
 * arrives, kicking a vCPU out of the guest when one is posted to it, the
 * INIT and SIPI of the multiprocessor start-up protocol (SDM vol. 3 9.4),
 * KVM_GET/SET_MP_STATE, and choosing the interrupt to inject (the 8259
 * through ExtINT first, then the APIC's highest request above its PPR).
 *
 * A kick pairs with mkvm_vcpu_enter_guest(): the sender posts the event,
 * then (full barrier) looks at guest_mode; the vCPU sets guest_mode, then
 * (full barrier) looks for events.  Either the vCPU sees the event before
 * entering, or the sender sees it in the guest and interrupts its CPU,
 * which makes VMRUN exit at once.
 */
#include <linux/sched/signal.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>

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

/*
 * The APIC's INIT, SIPI and SMI messages the vCPU can take now.  In SMM an
 * INIT is latched until RSM (SDM vol. 3 ch. 34, APM vol. 2 10.3.3).
 */
static unsigned long takeable_events(struct mkvm_vcpu *vcpu)
{
	unsigned long ev = READ_ONCE(vcpu->arch.lapic->pending_events);

	return vcpu->arch.smm.active ? ev & ~BIT(MKVM_APIC_INIT) : ev;
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
	if (takeable_events(vcpu)) {
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
		mkvm_lapic_sync_tpr_from_guest(vcpu);
	}
}

/**
 * mkvm_lapic_fold_nmis() - take in NMIs that other CPUs sent
 * @vcpu: the vCPU, in its own thread
 *
 * At most one NMI runs and one waits (SDM 6.7.1); more are dropped.
 */
void mkvm_lapic_fold_nmis(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	int n;

	if (!apic || !atomic_read(&apic->nmi_queued))
		return;
	n = atomic_xchg(&apic->nmi_queued, 0);
	ev->nmi_pending = min_t(int, ev->nmi_pending + n,
				ev->nmi_masked || ev->nmi_injected ? 1 : 2);
}

static bool extint_pending(struct mkvm_vcpu *vcpu)
{
	struct mkvm_irqchip *chip = vcpu->vm->arch.irqchip;

	return READ_ONCE(chip->pic.output) && mkvm_lapic_accepts_pic(vcpu);
}

/**
 * mkvm_irqchip_inject() - inject the next external interrupt, or ask for a window
 * @vcpu: the vCPU, about to enter with interrupts disabled
 *
 * Called after exceptions and NMIs had their turn.  The TPR is handed to
 * the guest as CR8 first.  A local APIC vector goes to the vendor's
 * offer_irq() when it has one, unless a re-injected interrupt is in the
 * way; otherwise it is acknowledged and injected now, when the guest can
 * take it.
 *
 * Return: 1 when an interrupt was injected or offered, else 0.
 */
int mkvm_irqchip_inject(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	bool busy = ev->exc.queued || ev->nmi_injected || ev->irq.injected;
	struct mkvm_irqchip *chip = vcpu->vm->arch.irqchip;
	bool extint = extint_pending(vcpu);
	int v = extint ? -1 : mkvm_lapic_pending_irq(vcpu);
	bool pending = extint || v >= 0;

	mkvm_lapic_sync_tpr_to_guest(vcpu);
	/* Held back by the TPR alone: the guest lowering CR8 must exit. */
	mkvm_x86->update_cr8_intercept(vcpu, !pending && mkvm_lapic_masked_irq(vcpu) >= 0);
	if (!pending)
		return 0;
	if (v >= 0 && !ev->irq.injected && mkvm_x86->offer_irq && mkvm_x86->offer_irq(vcpu, v))
		return 1;
	if (busy || mkvm_x86->interrupt_blocked(vcpu)) {
		mkvm_x86->enable_irq_window(vcpu);
		return 0;
	}
	v = extint ? mkvm_pic_read_irq(chip) : mkvm_lapic_ack_irq(vcpu);
	if (v < 0)
		return 0;
	ev->irq.injected = true;
	ev->irq.vector = v;
	mkvm_x86->inject_irq(vcpu);
	return 1;
}

/*
 * What ends a halt: an NMI, INIT/SIPI, an SMI outside SMM, a queued
 * exception (a machine check from KVM_X86_SET_MCE), or an interrupt the
 * guest can take now.
 */
static bool halt_wakes(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	if (takeable_events(vcpu) || atomic_read(&apic->nmi_queued) ||
	    vcpu->arch.events.nmi_pending || vcpu->arch.events.exc.queued ||
	    (vcpu->arch.smm.pending && !vcpu->arch.smm.active))
		return true;
	if (mkvm_x86->interrupt_blocked(vcpu))
		return false;
	return extint_pending(vcpu) || mkvm_lapic_pending_irq(vcpu) >= 0;
}

static bool halted(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.mp_state == KVM_MP_STATE_HALTED ||
	       vcpu->arch.mp_state == KVM_MP_STATE_AP_RESET_HOLD;
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

/*
 * Take in a pending INIT, SIPI and SMI.  A SIPI outside wait-for-SIPI is
 * dropped; in SMM the INIT stays latched and a SIPI is dropped, as in KVM.
 */
static void accept_events(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags, ev;
	u8 sipi;

	if (!takeable_events(vcpu))
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

static bool block_wakes(struct mkvm_vcpu *vcpu)
{
	return takeable_events(vcpu) || (halted(vcpu) && halt_wakes(vcpu));
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
		accept_events(vcpu);
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
	rcuwait_wait_event(&apic->wait, takeable_events(vcpu), TASK_INTERRUPTIBLE);
	accept_events(vcpu);
	if (signal_pending(current)) {
		vcpu->run->exit_reason = KVM_EXIT_INTR;
		return -EINTR;
	}
	return -EAGAIN;
}

/**
 * mkvm_vcpu_halt() - HLT with an in-kernel APIC: wait in the kernel
 * @vcpu: the vCPU, with RIP past the HLT
 */
void mkvm_vcpu_halt(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.mp_state = KVM_MP_STATE_HALTED;
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
	accept_events(vcpu);
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
