// SPDX-License-Identifier: GPL-2.0
/*
 * Halt polling: a halted vCPU spins a short while before it sleeps.
 *
 * Sleeping and waking again costs two context switches and, on an idle
 * host CPU, the way into and out of the idle loop.  When the event that
 * ends a halt comes within microseconds (a short timer, an IPI answered at
 * once), spinning is cheaper.  The spin adapts per vCPU as in KVM
 * (Documentation/virt/kvm/halt-polling.rst): it starts at 0, grows while
 * halts end within the VM's maximum, and drops back to 0 after a halt that
 * lasted longer.  The maximum is the module parameter halt_poll_ns, or what
 * the VMM set with KVM_CAP_HALT_POLL.  The parameters have KVM's names and
 * defaults.
 */
#include <linux/ktime.h>
#include <linux/moduleparam.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>

#include <minikvm/core.h>

static unsigned int halt_poll_ns = 200000;
module_param(halt_poll_ns, uint, 0644);
MODULE_PARM_DESC(halt_poll_ns, "longest a halted vCPU spins before it sleeps (ns)");

static unsigned int halt_poll_ns_grow = 2;
module_param(halt_poll_ns_grow, uint, 0644);
MODULE_PARM_DESC(halt_poll_ns_grow, "factor of growth of a vCPU's spin (0: never grows)");

static unsigned int halt_poll_ns_grow_start = 10000;
module_param(halt_poll_ns_grow_start, uint, 0644);
MODULE_PARM_DESC(halt_poll_ns_grow_start, "first spin after none (ns)");

static unsigned int halt_poll_ns_shrink;
module_param(halt_poll_ns_shrink, uint, 0644);
MODULE_PARM_DESC(halt_poll_ns_shrink, "divisor of a vCPU's spin after a long halt (0: to none)");

static unsigned int max_poll_ns(struct mkvm_vm *vm)
{
	/* Pairs with the release in mkvm_halt_poll_set_max(). */
	if (smp_load_acquire(&vm->halt_poll_override))
		return READ_ONCE(vm->max_halt_poll_ns);
	return READ_ONCE(halt_poll_ns);
}

/**
 * mkvm_halt_poll_set_max() - KVM_ENABLE_CAP(KVM_CAP_HALT_POLL)
 * @vm: the VM
 * @cap: args[0] is the VM's new maximum in ns; no flags
 *
 * Return: 0, or -EINVAL for flags or a maximum that does not fit 32 bits,
 * as in KVM.
 */
int mkvm_halt_poll_set_max(struct mkvm_vm *vm, const struct kvm_enable_cap *cap)
{
	if (cap->flags || cap->args[0] > U32_MAX)
		return -EINVAL;
	WRITE_ONCE(vm->max_halt_poll_ns, cap->args[0]);
	smp_store_release(&vm->halt_poll_override, true);
	return 0;
}

/**
 * mkvm_halt_poll() - spin while a halted vCPU may soon be woken
 * @vcpu: the vCPU, in its own thread, halted
 * @wakes: whether the halt has ended
 *
 * Spins for at most the vCPU's current poll time, and stops early for a
 * signal, for another task wanting this CPU, or when @wakes says so.  The
 * caller checks @wakes again before it sleeps.
 *
 * Return: true when @wakes ended the spin.
 */
bool mkvm_halt_poll(struct mkvm_vcpu *vcpu, bool (*wakes)(struct mkvm_vcpu *vcpu))
{
	unsigned int max = max_poll_ns(vcpu->vm);
	ktime_t stop;

	if (vcpu->halt_poll_ns > max)
		vcpu->halt_poll_ns = max;
	if (!vcpu->halt_poll_ns)
		return false;
	vcpu->stat.halt_attempted_poll++;
	stop = ktime_add_ns(ktime_get(), vcpu->halt_poll_ns);
	do {
		if (wakes(vcpu))
			return true;
		if (signal_pending(current))
			return false;
		cpu_relax();
	} while (single_task_running() && !need_resched() && ktime_before(ktime_get(), stop));
	return false;
}

/**
 * mkvm_halt_poll_adapt() - fit a vCPU's poll time to the halt that just ended
 * @vcpu: the vCPU
 * @start: when the halt began, before any polling
 *
 * A halt shorter than the VM's maximum that polling did not cover makes
 * the next poll longer; one longer than the maximum ends polling until
 * short halts come back.
 */
void mkvm_halt_poll_adapt(struct mkvm_vcpu *vcpu, ktime_t start)
{
	u64 halted = ktime_to_ns(ktime_sub(ktime_get(), start));
	unsigned int max = max_poll_ns(vcpu->vm);
	unsigned int cur = vcpu->halt_poll_ns;
	unsigned int shrink = READ_ONCE(halt_poll_ns_shrink);
	unsigned int grow = READ_ONCE(halt_poll_ns_grow);
	unsigned int grow_start = READ_ONCE(halt_poll_ns_grow_start);

	if (!max) {
		cur = 0;
	} else if (halted <= cur) {
		/* Polling caught it: keep the poll time. */
	} else if (halted > max) {
		cur = shrink ? cur / shrink : 0;
		if (cur < grow_start)
			cur = 0;
	} else if (grow && cur < max) {
		cur = min_t(u64, max_t(u64, (u64)cur * grow, grow_start), max);
	}
	vcpu->halt_poll_ns = cur;
}
