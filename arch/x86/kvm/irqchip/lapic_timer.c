// SPDX-License-Identifier: GPL-2.0
/*
 * The local APIC timer (SDM vol. 3 10.5.4): one-shot, periodic and
 * TSC-deadline modes on a host hrtimer.
 *
 * As in KVM, the APIC bus clock runs at 1 GHz (one count per nanosecond
 * before the divider), and a periodic timer is never faster than 200 us, so
 * that a guest cannot flood the host with timer interrupts.  The deadline
 * is converted from guest TSC ticks to host time with the host's tsc_khz
 * (the guest TSC runs at the host's rate, offset only).
 *
 * Only the vCPU's own thread arms or cancels the timer; the callback runs
 * in hard interrupt context and takes apic->lock.
 */
#include <linux/math64.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>
#include <asm/tsc.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

#define TIMER_MODE_MASK		(3 << 17)
#define MIN_PERIOD_NS		200000ULL
#define LEAF1_ECX_TSC_DEADLINE	BIT(24)

static u32 timer_mode(struct mkvm_lapic *apic)
{
	return mkvm_lapic_get_reg(apic, APIC_LVTT) & TIMER_MODE_MASK;
}

static bool periodic(struct mkvm_lapic *apic)
{
	return timer_mode(apic) == APIC_LVT_TIMER_PERIODIC;
}

static bool deadline_mode(struct mkvm_lapic *apic)
{
	return timer_mode(apic) == APIC_LVT_TIMER_TSCDEADLINE;
}

/* The timer interrupt, through LVTT (SDM 10.5.1); apic->lock is held. */
static bool timer_irq(struct mkvm_lapic *apic)
{
	u32 lvtt = mkvm_lapic_get_reg(apic, APIC_LVTT);

	if ((lvtt & APIC_LVT_MASKED) ||
	    !(READ_ONCE(apic->vcpu->arch.apic_base) & MSR_IA32_APICBASE_ENABLE) ||
	    !(mkvm_lapic_get_reg(apic, APIC_SPIV) & APIC_SPIV_APIC_ENABLED))
		return false;
	mkvm_lapic_set_irr(apic, lvtt & APIC_VECTOR_MASK, false);
	return true;
}

static enum hrtimer_restart timer_fired(struct hrtimer *t)
{
	struct mkvm_lapic *apic = container_of(t, struct mkvm_lapic, timer);
	enum hrtimer_restart r = HRTIMER_NORESTART;
	unsigned long flags;
	bool kick;

	spin_lock_irqsave(&apic->lock, flags);
	if (periodic(apic) && apic->period_ns) {
		/* Periods missed while the host was busy collapse into this one. */
		hrtimer_forward_now(t, ns_to_ktime(apic->period_ns));
		apic->target = hrtimer_get_expires(t);
		r = HRTIMER_RESTART;
	} else if (deadline_mode(apic)) {
		apic->tsc_deadline = 0;	/* the MSR reads 0 once it fired (SDM 10.5.4.1) */
	}
	kick = timer_irq(apic);
	spin_unlock_irqrestore(&apic->lock, flags);
	if (kick)
		mkvm_vcpu_kick(apic->vcpu);
	return r;
}

/**
 * mkvm_lapic_timer_expire_due() - fire a timer that is due, not waiting for its interrupt
 * @vcpu: the vCPU, in its own thread, about to halt or after a VMX-preemption timer exit
 *
 * The host's timer interrupt comes some time after the expiry; under
 * emulation, much later.  A halted vCPU that finds its timer due fires it
 * itself and runs on, rather than spinning or sleeping until the interrupt;
 * so does a running one that VMX's preemption timer stopped at the expiry.
 * A callback already running does the work instead.
 */
void mkvm_lapic_timer_expire_due(struct mkvm_vcpu *vcpu)
{
	struct hrtimer *t = &vcpu->arch.lapic->timer;

	if (!hrtimer_is_queued(t) || ktime_before(ktime_get(), hrtimer_get_expires(t)))
		return;
	if (hrtimer_try_to_cancel(t) != 1)
		return;
	if (timer_fired(t) == HRTIMER_RESTART)
		hrtimer_start_expires(t, HRTIMER_MODE_ABS_HARD);
}

/**
 * mkvm_lapic_timer_ns_left() - how long until the LAPIC timer expires
 * @vcpu: the vCPU, with an in-kernel APIC, in its own thread
 *
 * Read without the APIC's lock, for a hint: the VMM and the guest change
 * the timer in this thread, before the next entry; a periodic timer's
 * callback on another CPU may move the expiry on meanwhile, which costs one
 * more exit at most.
 *
 * Return: nanoseconds, 0 when it is due, -1 when it is not armed.
 */
s64 mkvm_lapic_timer_ns_left(struct mkvm_vcpu *vcpu)
{
	struct hrtimer *t = &vcpu->arch.lapic->timer;
	s64 ns;

	if (!hrtimer_is_queued(t))
		return -1;
	ns = ktime_to_ns(ktime_sub(hrtimer_get_expires(t), ktime_get()));
	return ns > 0 ? ns : 0;
}

/**
 * mkvm_lapic_timer_init() - set up the hrtimer of a new APIC
 * @apic: the APIC
 */
void mkvm_lapic_timer_init(struct mkvm_lapic *apic)
{
	hrtimer_init(&apic->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS_HARD);
	apic->timer.function = timer_fired;
	apic->divide = 2;
}

/**
 * mkvm_lapic_timer_cancel() - stop the timer and wait for a running callback
 * @apic: the APIC; its lock must not be held
 */
void mkvm_lapic_timer_cancel(struct mkvm_lapic *apic)
{
	hrtimer_cancel(&apic->timer);
}

/* TDCR bits 3, 1:0 select divide by 2, 4, ... 128, or 1 for 111b (SDM figure 10-10). */
static u32 tdcr_divisor(u32 tdcr)
{
	u32 v = (tdcr & 3) | ((tdcr & 8) >> 1);

	return 1u << ((v + 1) & 7);
}

static void start(struct mkvm_lapic *apic, u64 ns)
{
	apic->target = ktime_add_ns(ktime_get(), ns);
	hrtimer_start(&apic->timer, apic->target, HRTIMER_MODE_ABS_HARD);
}

/* The period from TMICT and the divider; apic->lock is held. */
static void set_period(struct mkvm_lapic *apic)
{
	apic->period_ns = (u64)mkvm_lapic_get_reg(apic, APIC_TMICT) * apic->divide;
	if (periodic(apic) && apic->period_ns && apic->period_ns < MIN_PERIOD_NS)
		apic->period_ns = MIN_PERIOD_NS;
}

static u32 tmcct_locked(struct mkvm_lapic *apic)
{
	s64 left;
	u64 rem;

	if (deadline_mode(apic) || !mkvm_lapic_get_reg(apic, APIC_TMICT) || !apic->period_ns)
		return 0;
	left = ktime_to_ns(ktime_sub(apic->target, ktime_get()));
	if (left <= 0)
		return 0;
	div64_u64_rem(left, apic->period_ns, &rem);
	return div_u64(rem, apic->divide);
}

/**
 * mkvm_lapic_timer_tmcct() - the current count (SDM 10.5.4)
 * @apic: the APIC
 *
 * Return: the count left in this period, 0 once a one-shot count ran out
 * and always in TSC-deadline mode.
 */
u32 mkvm_lapic_timer_tmcct(struct mkvm_lapic *apic)
{
	unsigned long flags;
	u32 v;

	spin_lock_irqsave(&apic->lock, flags);
	v = tmcct_locked(apic);
	spin_unlock_irqrestore(&apic->lock, flags);
	return v;
}

/**
 * mkvm_lapic_timer_tmict_written() - a write to the initial count starts the count
 * @apic: the APIC
 * @tmict: the value; 0 stops the timer.  Ignored in TSC-deadline mode.
 */
void mkvm_lapic_timer_tmict_written(struct mkvm_lapic *apic, u32 tmict)
{
	unsigned long flags;

	if (deadline_mode(apic))
		return;
	hrtimer_cancel(&apic->timer);
	spin_lock_irqsave(&apic->lock, flags);
	mkvm_lapic_set_reg(apic, APIC_TMICT, tmict);
	set_period(apic);
	if (apic->period_ns)
		start(apic, apic->period_ns);
	spin_unlock_irqrestore(&apic->lock, flags);
}

/**
 * mkvm_lapic_timer_tdcr_written() - a new divider applies to the count left
 * @apic: the APIC, with TDCR already written
 */
void mkvm_lapic_timer_tdcr_written(struct mkvm_lapic *apic)
{
	unsigned long flags;
	u32 left;

	hrtimer_cancel(&apic->timer);
	spin_lock_irqsave(&apic->lock, flags);
	left = tmcct_locked(apic);
	apic->divide = tdcr_divisor(mkvm_lapic_get_reg(apic, APIC_TDCR));
	if (apic->period_ns) {
		set_period(apic);
		start(apic, left ? (u64)left * apic->divide : apic->period_ns);
	}
	spin_unlock_irqrestore(&apic->lock, flags);
}

/**
 * mkvm_lapic_timer_lvtt_written() - LVTT changed
 * @apic: the APIC
 * @old_lvtt: its previous value
 *
 * Entering or leaving TSC-deadline mode stops the timer and clears both
 * the initial count and the deadline, as KVM does; between one-shot and
 * periodic the count goes on in the new mode.
 */
void mkvm_lapic_timer_lvtt_written(struct mkvm_lapic *apic, u32 old_lvtt)
{
	bool was_deadline = (old_lvtt & TIMER_MODE_MASK) == APIC_LVT_TIMER_TSCDEADLINE;
	unsigned long flags;

	if (was_deadline != deadline_mode(apic)) {
		hrtimer_cancel(&apic->timer);
		spin_lock_irqsave(&apic->lock, flags);
		mkvm_lapic_set_reg(apic, APIC_TMICT, 0);
		apic->period_ns = 0;
		apic->tsc_deadline = 0;
		spin_unlock_irqrestore(&apic->lock, flags);
		return;
	}
	spin_lock_irqsave(&apic->lock, flags);
	if (periodic(apic) && apic->period_ns && apic->period_ns < MIN_PERIOD_NS)
		apic->period_ns = MIN_PERIOD_NS;
	spin_unlock_irqrestore(&apic->lock, flags);
}

/**
 * mkvm_lapic_timer_mode_mask() - the LVTT timer-mode bits this vCPU may set
 * @vcpu: the vCPU
 *
 * Return: periodic, plus TSC-deadline when the guest's CPUID offers it.
 */
u32 mkvm_lapic_timer_mode_mask(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = mkvm_find_cpuid_entry(vcpu, 1, 0);

	return e && (e->ecx & LEAF1_ECX_TSC_DEADLINE) ? TIMER_MODE_MASK : APIC_LVT_TIMER_PERIODIC;
}

/* Arm for apic->tsc_deadline, given the guest's TSC now; apic->lock is held. */
static bool arm_deadline(struct mkvm_lapic *apic, u64 tsc)
{
	u64 ns, delta;

	if (!apic->tsc_deadline)
		return false;
	if (apic->tsc_deadline <= tsc) {
		apic->tsc_deadline = 0;
		return timer_irq(apic);
	}
	/* A host that never learned its TSC rate cannot time it: not armed, as in KVM. */
	if (unlikely(!tsc_khz))
		return false;
	/*
	 * A deadline centuries away must not wrap around into the past, nor
	 * overflow the division (a divide error on x86-64): bounded first.
	 */
	delta = apic->tsc_deadline - tsc;
	if (delta / tsc_khz >= (KTIME_MAX / 4) / USEC_PER_SEC)
		ns = KTIME_MAX / 4;
	else
		ns = mul_u64_u32_div(delta, USEC_PER_SEC, tsc_khz);
	start(apic, ns);
	return false;
}

static u64 guest_tsc(struct mkvm_vcpu *vcpu)
{
	u64 tsc = 0;

	mkvm_get_msr(vcpu, MSR_IA32_TSC, &tsc);
	return tsc;
}

/**
 * mkvm_lapic_timer_restore() - restart the timer after KVM_SET_LAPIC
 * @apic: the APIC, with its new registers and the timer stopped
 * @tmcct: the current count given by userspace: the first expiry comes
 *	   after it, or after a whole period when it is 0 or too large
 */
void mkvm_lapic_timer_restore(struct mkvm_lapic *apic, u32 tmcct)
{
	u64 tsc = guest_tsc(apic->vcpu), first;
	unsigned long flags;
	bool kick = false;

	spin_lock_irqsave(&apic->lock, flags);
	apic->divide = tdcr_divisor(mkvm_lapic_get_reg(apic, APIC_TDCR));
	if (deadline_mode(apic)) {
		apic->period_ns = 0;
		kick = arm_deadline(apic, tsc);
	} else {
		apic->tsc_deadline = 0;
		set_period(apic);
		first = (u64)tmcct * apic->divide;
		if (!first || first > apic->period_ns)
			first = apic->period_ns;
		if (apic->period_ns)
			start(apic, first);
	}
	spin_unlock_irqrestore(&apic->lock, flags);
	if (kick)
		mkvm_vcpu_kick(apic->vcpu);
}

/**
 * mkvm_lapic_tsc_deadline_read() - RDMSR IA32_TSC_DEADLINE
 * @vcpu: the vCPU
 * @data: the deadline, or 0 outside TSC-deadline mode or without an
 *	  in-kernel APIC (as in KVM: never a #GP)
 *
 * Return: 0.
 */
int mkvm_lapic_tsc_deadline_read(struct mkvm_vcpu *vcpu, u64 *data)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	*data = apic && deadline_mode(apic) ? READ_ONCE(apic->tsc_deadline) : 0;
	return 0;
}

/**
 * mkvm_lapic_tsc_deadline_write() - WRMSR IA32_TSC_DEADLINE (SDM 10.5.4.1)
 * @vcpu: the vCPU
 * @data: the deadline in guest TSC ticks; 0 disarms the timer.  Ignored
 *	  outside TSC-deadline mode, as on hardware.
 *
 * Return: 0.
 */
int mkvm_lapic_tsc_deadline_write(struct mkvm_vcpu *vcpu, u64 data)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	bool kick;
	u64 tsc;

	if (!apic || !(vcpu->arch.apic_base & MSR_IA32_APICBASE_ENABLE) || !deadline_mode(apic))
		return 0;
	hrtimer_cancel(&apic->timer);
	tsc = guest_tsc(vcpu);
	spin_lock_irqsave(&apic->lock, flags);
	apic->tsc_deadline = data;
	kick = arm_deadline(apic, tsc);
	spin_unlock_irqrestore(&apic->lock, flags);
	if (kick)
		mkvm_vcpu_kick(vcpu);
	return 0;
}
