// SPDX-License-Identifier: GPL-2.0
/*
 * Events with a userspace interrupt controller: the queue of exceptions,
 * NMIs and external interrupts, its injection before each guest entry, the
 * interrupt window that KVM_RUN's request_interrupt_window asks for, and the
 * ioctls that feed and save it (KVM_INTERRUPT, KVM_NMI,
 * KVM_GET/SET_VCPU_EVENTS, KVM_GET/SET_MP_STATE).
 *
 * Shared by SVM and VMX: the vendor only says whether the guest can take an
 * event now, writes it to its control block, and arms the hardware exit
 * that tells when the guest can (mkvm_x86->inject_*, *_blocked, *_window).
 */
#include <linux/uaccess.h>
#include <asm/debugreg.h>
#include <asm/traps.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/**
 * mkvm_rip_past_insn() - the instruction at RIP is done; go on at @next_rip
 * @vcpu: the vCPU
 * @next_rip: the next instruction
 *
 * An STI or MOV SS shadow covers only the instruction after it (SDM vol. 3
 * 6.8.3): whatever instruction completes here, the shadow is over.
 */
void mkvm_rip_past_insn(struct mkvm_vcpu *vcpu, unsigned long next_rip)
{
	vcpu->arch.rip = next_rip;
	mkvm_x86->set_interrupt_shadow(vcpu, 0);
	/* The VMM's debugger steps over an instruction minikvm completed itself. */
	if (vcpu->arch.guest_debug & KVM_GUESTDBG_SINGLESTEP)
		vcpu->arch.debug_step_done = true;
}

/**
 * mkvm_vmm_soft_exception() - a #BP or #OF the VMM queued stands for INT3 or INTO
 * @vcpu: the vCPU, in an ioctl (process context), its exception just queued
 *
 * #BP and #OF are traps raised by INT3 and INTO: their handler returns
 * after the instruction (SDM vol. 3 6.5).  As KVM does, one that the VMM
 * hands to the guest (KVM_SET_GUEST_DEBUG's INJECT_BP, KVM_SET_VCPU_EVENTS)
 * is taken as raised by the INT3 or INTO at RIP, so RIP moves past it here,
 * where guest memory can be read.  A debugger that passes the guest's own
 * INT3 back then does not loop on it.  With no INT3 or INTO at RIP the
 * exception is dropped, as KVM drops it.  That is KVM on AMD; kvm_intel
 * injects it as it is (vmx/events.c; mkvm_x86_ops.vmm_bp_skips_int3).
 */
void mkvm_vmm_soft_exception(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	enum mkvm_insn_kind want = ev->exc.vector == X86_TRAP_BP ? INSN_INT3 : INSN_INTO;
	struct mkvm_insn insn;
	struct kvm_sregs s;

	if (!ev->exc.queued || (ev->exc.vector != X86_TRAP_BP && ev->exc.vector != X86_TRAP_OF) ||
	    !mkvm_x86->vmm_bp_skips_int3)
		return;
	mkvm_x86->get_sregs(vcpu, &s);
	down_read(&vcpu->vm->slots_sem);
	if (mkvm_insn_at_rip(vcpu, &s, &insn) && insn.kind == want && !insn.lock) {
		vcpu->arch.rip += insn.len;
		if (!(s.efer & EFER_LMA) || !s.cs.l)
			vcpu->arch.rip &= 0xffffffff;
		ev->exc.skipped = true;
	} else {
		ev->exc.queued = false;
	}
	up_read(&vcpu->vm->slots_sem);
}

enum exc_class { EXC_BENIGN, EXC_CONTRIBUTORY, EXC_PAGE_FAULT };

/* Which pairs of exceptions make a double fault (SDM vol. 3 table 6-5, APM vol. 2 8.2.9). */
static enum exc_class exc_class(u8 vector)
{
	switch (vector) {
	case X86_TRAP_PF:
		return EXC_PAGE_FAULT;
	case X86_TRAP_DE:
	case X86_TRAP_TS:
	case X86_TRAP_NP:
	case X86_TRAP_SS:
	case X86_TRAP_GP:
		return EXC_CONTRIBUTORY;
	default:
		return EXC_BENIGN;
	}
}

/**
 * mkvm_queue_exception() - raise an exception in the guest at the next entry
 * @vcpu: the vCPU
 * @vector: 0-31
 * @has_error: whether it pushes an error code (dropped in real mode)
 * @error: the error code
 *
 * When an exception interrupted on its way in is still queued, the pair
 * may make a #DF; otherwise the new one replaces it, and the instruction
 * behind the first raises it again when it runs again.
 */
void mkvm_queue_exception(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	if (ev->exc.queued) {
		enum exc_class first = exc_class(ev->exc.vector), second = exc_class(vector);

		/* An exception while delivering a #DF shuts the CPU down (SDM vol. 3 6.15). */
		if (ev->exc.vector == X86_TRAP_DF) {
			ev->exc.queued = false;
			vcpu->arch.shutdown_pending = true;
			return;
		}

		if ((first == EXC_CONTRIBUTORY && second == EXC_CONTRIBUTORY) ||
		    (first == EXC_PAGE_FAULT && second != EXC_BENIGN)) {
			vector = X86_TRAP_DF;
			has_error = true;
			error = 0;
		}
	}
	ev->exc.queued = true;
	ev->exc.injected = false;
	ev->exc.skipped = false;
	ev->exc.has_payload = false;
	ev->exc.vector = vector;
	ev->exc.has_error = has_error;
	ev->exc.error = error;
}

/**
 * mkvm_queue_exception_payload() - raise a #PF or #DB that updates CR2 or DR6
 * @vcpu: the vCPU
 * @vector: X86_TRAP_PF or X86_TRAP_DB
 * @has_error: whether it pushes an error code
 * @error: the error code
 * @payload: the faulting address for #PF; for #DB the DR6 bits of its
 *	     conditions, each active-low bit inverted so that 1 means "happened"
 *
 * CR2 and DR6 change only when the exception is delivered, so that userspace
 * with KVM_CAP_EXCEPTION_PAYLOAD sees them unchanged while it is pending.
 */
void mkvm_queue_exception_payload(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error,
				  u64 payload)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	mkvm_queue_exception(vcpu, vector, has_error, error);
	/* Not when the pair made a #DF (or a shutdown): the #DF has no payload. */
	if (ev->exc.queued && ev->exc.vector == vector) {
		ev->exc.has_payload = true;
		ev->exc.payload = payload;
	}
}

/* What delivering the pending exception does to CR2 or DR6 (SDM vol. 3 6.15, 17.2.3). */
static void deliver_exception_payload(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	u64 p = ev->exc.payload, dr6, dr7;

	if (!ev->exc.has_payload)
		return;
	ev->exc.has_payload = false;
	/* Gone once delivered, as in KVM. */
	ev->exc.payload = 0;
	switch (ev->exc.vector) {
	case X86_TRAP_PF:
		mkvm_x86->set_cr2(vcpu, p);
		break;
	case X86_TRAP_DB:
		/* Only the conditions an AMD guest's DR6 has: DR6[63:32] must stay 0. */
		p &= MKVM_DR6_GUEST_BITS;
		/* B0-B3 describe this #DB alone; the sticky and active-low bits accumulate. */
		mkvm_get_guest_dr67(vcpu, &dr6, &dr7);
		dr6 = ((dr6 & ~(u64)DR_TRAP_BITS) | MKVM_DR6_ACTIVE_LOW | p) ^
		      (p & MKVM_DR6_ACTIVE_LOW);
		/* Bit 12 is reserved and reads as 0. */
		mkvm_set_guest_dr67(vcpu, dr6 & ~BIT_ULL(12), dr7);
		break;
	}
}

/**
 * mkvm_events_exited() - forget what the last entry injected
 * @vcpu: the vCPU, just after an exit
 *
 * The vendor calls this first and then mkvm_requeue_*() for an event whose
 * delivery the exit cut short (EXITINTINFO, IDT-vectoring information).
 */
void mkvm_events_exited(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	ev->exc.queued = false;
	ev->irq.injected = false;
	ev->nmi_injected = false;
}

/**
 * mkvm_requeue_exception() - an exception was being delivered at the exit
 * @vcpu: the vCPU
 * @vector: its vector
 * @has_error: whether it had an error code
 * @error: the error code
 */
void mkvm_requeue_exception(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	ev->exc.queued = true;
	ev->exc.injected = true;
	/* Its payload was delivered when it was first injected. */
	ev->exc.has_payload = false;
	ev->exc.vector = vector;
	ev->exc.has_error = has_error;
	ev->exc.error = error;
}

/**
 * mkvm_requeue_nmi() - an NMI was being delivered at the exit
 * @vcpu: the vCPU
 */
void mkvm_requeue_nmi(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.events.nmi_injected = true;
}

/**
 * mkvm_requeue_irq() - an external interrupt was being delivered at the exit
 * @vcpu: the vCPU
 * @vector: its vector
 */
void mkvm_requeue_irq(struct mkvm_vcpu *vcpu, u8 vector)
{
	vcpu->arch.events.irq.injected = true;
	vcpu->arch.events.irq.vector = vector;
}

static void inject_nmi(struct mkvm_vcpu *vcpu)
{
	/* The NMI blocks further NMIs until its handler's IRET (SDM vol. 3 6.7.1). */
	vcpu->arch.events.nmi_masked = true;
	vcpu->stat.nmi_injections++;
	mkvm_x86->inject_nmi(vcpu);
}

/**
 * mkvm_inject_events() - hand the next event to the hardware
 * @vcpu: the vCPU, about to enter the guest with interrupts disabled
 *
 * An event whose delivery was cut short goes first, then a queued
 * exception (both have "happened" already), then a new NMI if the guest
 * can take one.  What cannot be injected now arms the matching window
 * exit.  The interrupt from KVM_INTERRUPT is injected whatever the guest's
 * RFLAGS.IF, as in KVM: userspace checks ready_for_interrupt_injection.
 */
void mkvm_inject_events(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	bool busy = true;

	mkvm_lapic_fold_nmis(vcpu);
	if (ev->exc.queued) {
		deliver_exception_payload(vcpu);
		mkvm_x86->inject_exception(vcpu);
	} else if (ev->nmi_injected) {
		inject_nmi(vcpu);
	} else if (ev->irq.injected) {
		mkvm_x86->inject_irq(vcpu);
	} else {
		busy = false;
	}
	/*
	 * An SMI held back by the event above (mkvm_smm_inject()): the entry
	 * ends as soon as that is delivered, by a self-IPI as in KVM.
	 */
	if (unlikely(vcpu->arch.smm.pending) && busy && !vcpu->arch.smm.active)
		smp_send_reschedule(smp_processor_id());

	/*
	 * The VMM's debugger can hold new NMIs and the in-kernel irqchip's
	 * interrupts back while it steps (BLOCKIRQ), as KVM does; what was
	 * already under way above still goes in.
	 */
	if (vcpu->arch.guest_debug & KVM_GUESTDBG_BLOCKIRQ)
		goto user_window;
	if (ev->nmi_pending) {
		if (!busy && !mkvm_x86->nmi_blocked(vcpu)) {
			ev->nmi_pending--;
			ev->nmi_injected = true;
			inject_nmi(vcpu);
		}
		if (ev->nmi_pending)
			mkvm_x86->enable_nmi_window(vcpu);
	}
	/* With an in-kernel irqchip the interrupts are its own, not userspace's. */
	if (vcpu->arch.lapic)
		mkvm_irqchip_inject(vcpu);
user_window:
	if (!vcpu->arch.lapic && READ_ONCE(vcpu->run->request_interrupt_window) &&
	    !ev->irq.injected)
		mkvm_x86->enable_irq_window(vcpu);
}

/* KVM's condition for ready_for_interrupt_injection and KVM_EXIT_IRQ_WINDOW_OPEN. */
static bool ready_for_interrupt(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	return !mkvm_x86->interrupt_blocked(vcpu) && !ev->irq.injected && !ev->exc.queued &&
	       !ev->nmi_injected;
}

/**
 * mkvm_irq_window_exit() - exit with KVM_EXIT_IRQ_WINDOW_OPEN if asked and open
 * @vcpu: the vCPU, after an exit handled in the kernel
 *
 * Return: true when kvm_run now describes that exit.
 */
bool mkvm_irq_window_exit(struct mkvm_vcpu *vcpu)
{
	if (vcpu->arch.lapic)
		return false;
	if (!READ_ONCE(vcpu->run->request_interrupt_window) || !ready_for_interrupt(vcpu))
		return false;
	vcpu->run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
	return true;
}

/**
 * mkvm_post_run_save() - the state KVM_RUN reports on every return
 * @vcpu: the vCPU
 *
 * api.rst 5: if_flag, cr8, apic_base, ready_for_interrupt_injection and flags.
 */
void mkvm_post_run_save(struct mkvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->if_flag = !!(vcpu->arch.rflags & X86_EFLAGS_IF);
	run->cr8 = mkvm_x86->get_cr8(vcpu);
	run->apic_base = vcpu->arch.apic_base;
	/* With the PIC in the kernel KVM always says 1: userspace injects nothing. */
	run->ready_for_interrupt_injection = vcpu->arch.lapic || ready_for_interrupt(vcpu);
	/* QEMU routes the vCPU's MMIO to the SMM view with it. */
	run->flags = vcpu->arch.smm.active ? KVM_RUN_X86_SMM : 0;
}

/* At most one NMI runs and one more waits (SDM vol. 3 6.7.1). */
static u8 nmi_limit(struct mkvm_events *ev)
{
	return ev->nmi_masked || ev->nmi_injected ? 1 : 2;
}

static void get_vcpu_events(struct mkvm_vcpu *vcpu, struct kvm_vcpu_events *e)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	bool payload_cap = READ_ONCE(vcpu->vm->arch.exception_payload);
	u8 v = ev->exc.vector;

	memset(e, 0, sizeof(*e));
	/* Userspace that cannot carry a payload gets CR2 or DR6 updated now, as in KVM. */
	if (!payload_cap && ev->exc.queued && !ev->exc.injected)
		deliver_exception_payload(vcpu);
	/*
	 * Without KVM_CAP_EXCEPTION_PAYLOAD every queued exception reads as
	 * "injected", and one not yet delivered also as "pending", as in KVM.
	 * #BP and #OF are left out as KVM does: the INT3 or INTO at RIP raises
	 * them again.
	 */
	if (v != X86_TRAP_BP && v != X86_TRAP_OF) {
		e->exception.injected = ev->exc.queued && (ev->exc.injected || !payload_cap);
		e->exception.pending = ev->exc.queued && !ev->exc.injected;
	}
	e->exception.nr = v;
	e->exception.has_error_code = ev->exc.has_error;
	e->exception.error_code = ev->exc.error;
	e->exception_has_payload = ev->exc.has_payload;
	e->exception_payload = ev->exc.payload;
	e->interrupt.injected = ev->irq.injected;
	e->interrupt.nr = ev->irq.vector;
	e->interrupt.shadow = mkvm_x86->get_interrupt_shadow(vcpu);
	e->nmi.injected = ev->nmi_injected;
	e->nmi.pending = ev->nmi_pending != 0;
	e->nmi.masked = ev->nmi_masked;
	e->flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
		   KVM_VCPUEVENT_VALID_SMM;
	if (payload_cap)
		e->flags |= KVM_VCPUEVENT_VALID_PAYLOAD;
	e->smi.smm = vcpu->arch.smm.active;
	e->smi.pending = vcpu->arch.smm.pending;
	e->smi.smm_inside_nmi = vcpu->arch.smm.inside_nmi;
	e->smi.latched_init = vcpu->arch.lapic && mkvm_lapic_init_pending(vcpu);
	if (READ_ONCE(vcpu->vm->arch.triple_fault_event)) {
		e->triple_fault.pending = vcpu->arch.shutdown_pending;
		e->flags |= KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	}
}

static int set_vcpu_events(struct mkvm_vcpu *vcpu, const struct kvm_vcpu_events *e)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	bool injected = e->exception.injected, pending = false, has_payload = false;

	if (e->flags & ~(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			 KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
			 KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT))
		return -EINVAL;
	/* Payloads and triple faults each need their capability. */
	if (((e->flags & KVM_VCPUEVENT_VALID_PAYLOAD) &&
	     !READ_ONCE(vcpu->vm->arch.exception_payload)) ||
	    ((e->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT) &&
	     !READ_ONCE(vcpu->vm->arch.triple_fault_event)))
		return -EINVAL;
	/*
	 * Without a payload, "pending" is ignored, as in KVM.  With one, a
	 * pending exception is not also injected, and only a pending one can
	 * still have its payload to deliver.
	 */
	if (e->flags & KVM_VCPUEVENT_VALID_PAYLOAD) {
		pending = e->exception.pending;
		injected = injected && !pending;
		has_payload = pending && e->exception_has_payload;
	}
	if ((injected || pending) && (e->exception.nr > 31 || e->exception.nr == X86_TRAP_NMI))
		return -EINVAL;
	/* A vCPU waiting for SIPI has just taken an INIT: it cannot be in SMM or have an SMI. */
	if ((e->flags & KVM_VCPUEVENT_VALID_SMM) && (e->smi.smm || e->smi.pending) &&
	    vcpu->arch.lapic && vcpu->arch.mp_state == KVM_MP_STATE_INIT_RECEIVED)
		return -EINVAL;

	/*
	 * Into or out of SMM, L2 cannot go on: SMM belongs to L1, and L2 was
	 * never entered from it.  As KVM does, guest mode ends, before the
	 * NMI mask below lands on L1's VMCB.
	 */
	if ((e->flags & KVM_VCPUEVENT_VALID_SMM) && !!e->smi.smm != vcpu->arch.smm.active &&
	    mkvm_x86->leave_nested)
		mkvm_x86->leave_nested(vcpu);

	ev->exc.queued = injected || pending;
	ev->exc.injected = injected;
	ev->exc.skipped = false;
	ev->exc.has_payload = has_payload;
	ev->exc.payload = has_payload ? e->exception_payload : 0;
	ev->exc.vector = e->exception.nr;
	ev->exc.has_error = e->exception.has_error_code;
	ev->exc.error = e->exception.error_code;
	/*
	 * A software interrupt (INTn) is never reported by GET, since running
	 * the instruction again raises it again: drop one that is set.
	 */
	ev->irq.injected = e->interrupt.injected && !e->interrupt.soft;
	ev->irq.vector = e->interrupt.nr;
	if (e->flags & KVM_VCPUEVENT_VALID_SHADOW)
		mkvm_x86->set_interrupt_shadow(vcpu, e->interrupt.shadow);
	ev->nmi_injected = e->nmi.injected;
	ev->nmi_masked = e->nmi.masked;
	mkvm_x86->update_nmi_mask(vcpu);
	if (e->flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
		ev->nmi_pending = min(e->nmi.pending, nmi_limit(ev));
	if (e->flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
		vcpu->arch.shutdown_pending = e->triple_fault.pending;
	if (e->flags & KVM_VCPUEVENT_VALID_SMM) {
		/* The next entry runs on the address space this selects. */
		vcpu->arch.smm.active = e->smi.smm;
		vcpu->arch.smm.pending = e->smi.pending;
		vcpu->arch.smm.inside_nmi = e->smi.smm && e->smi.smm_inside_nmi;
		if (vcpu->arch.lapic)
			mkvm_lapic_set_init_pending(vcpu, e->smi.latched_init);
	}
	/* The SIPI vector belongs to an in-kernel local APIC: there is none. */
	return 0;
}

/**
 * mkvm_get_vcpu_events() - KVM_GET_VCPU_EVENTS, and kvm_run's copy with KVM_SYNC_X86_EVENTS
 * @vcpu: the vCPU, not running
 * @e: filled in
 */
void mkvm_get_vcpu_events(struct mkvm_vcpu *vcpu, struct kvm_vcpu_events *e)
{
	mkvm_lapic_fold_nmis(vcpu);
	mkvm_lapic_fold_smi(vcpu);
	get_vcpu_events(vcpu, e);
}

/**
 * mkvm_set_vcpu_events() - KVM_SET_VCPU_EVENTS, and kvm_run's copy with KVM_SYNC_X86_EVENTS
 * @vcpu: the vCPU, not running
 * @e: the events
 *
 * Return: 0, or -EINVAL for events KVM refuses.
 */
int mkvm_set_vcpu_events(struct mkvm_vcpu *vcpu, const struct kvm_vcpu_events *e)
{
	int r;

	/* An SMI the APIC holds is the one smi.pending replaces. */
	mkvm_lapic_fold_smi(vcpu);
	r = set_vcpu_events(vcpu, e);

	if (!r)
		mkvm_vmm_soft_exception(vcpu);
	return r;
}

/**
 * mkvm_events_ioctl() - KVM_INTERRUPT, KVM_NMI, KVM_GET/SET_VCPU_EVENTS and _MP_STATE
 * @vcpu: the vCPU, with its mutex held (so it is not running)
 * @ioctl: the ioctl
 * @argp: its argument
 *
 * Return: 0, -EINVAL for an interrupt vector above 255, bad events or an MP
 * state other than RUNNABLE (there is no in-kernel local APIC), -EFAULT.
 */
long mkvm_events_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	struct kvm_vcpu_events events;
	struct kvm_interrupt irq;
	struct kvm_mp_state mp;

	switch (ioctl) {
	case KVM_INTERRUPT:
		if (copy_from_user(&irq, argp, sizeof(irq)))
			return -EFAULT;
		if (irq.irq > 255)
			return -EINVAL;
		if (vcpu->arch.lapic)
			return -ENXIO;
		/* As in KVM, a second one replaces the first if it was not taken yet. */
		ev->irq.injected = true;
		ev->irq.vector = irq.irq;
		return 0;
	case KVM_NMI:
		ev->nmi_pending = min_t(u8, ev->nmi_pending + 1, nmi_limit(ev));
		return 0;
	case KVM_GET_VCPU_EVENTS:
		mkvm_get_vcpu_events(vcpu, &events);
		return copy_to_user(argp, &events, sizeof(events)) ? -EFAULT : 0;
	case KVM_SET_VCPU_EVENTS:
		if (copy_from_user(&events, argp, sizeof(events)))
			return -EFAULT;
		return mkvm_set_vcpu_events(vcpu, &events);
	case KVM_GET_MP_STATE:
		if (vcpu->arch.lapic) {
			mkvm_mp_state_get(vcpu, &mp);
			return copy_to_user(argp, &mp, sizeof(mp)) ? -EFAULT : 0;
		}
		/* HLT exits to userspace without an in-kernel irqchip: always runnable. */
		mp.mp_state = KVM_MP_STATE_RUNNABLE;
		return copy_to_user(argp, &mp, sizeof(mp)) ? -EFAULT : 0;
	case KVM_SET_MP_STATE:
		if (copy_from_user(&mp, argp, sizeof(mp)))
			return -EFAULT;
		if (vcpu->arch.lapic)
			return mkvm_mp_state_set(vcpu, &mp);
		return mp.mp_state == KVM_MP_STATE_RUNNABLE ? 0 : -EINVAL;
	default:
		return -EINVAL;
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

/**
 * mkvm_extint_pending() - the 8259 has an interrupt for this vCPU's LINT0
 * @vcpu: the vCPU, which has a local APIC
 *
 * Return: true if so.
 */
bool mkvm_extint_pending(struct mkvm_vcpu *vcpu)
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
	bool extint = mkvm_extint_pending(vcpu);
	int v = extint ? -1 : mkvm_lapic_pending_irq(vcpu);
	bool pending = extint || v >= 0;

	mkvm_lapic_sync_tpr_to_guest(vcpu);
	/* Held back by the TPR alone: the guest lowering CR8 must exit. */
	mkvm_x86->update_cr8_intercept(vcpu, !pending && mkvm_lapic_masked_irq(vcpu) >= 0);
	if (!pending)
		return 0;
	/* An 8259 vector is offered too: a nested guest's hypervisor takes it as a #VMEXIT. */
	if (!ev->irq.injected && mkvm_x86->offer_irq && mkvm_x86->offer_irq(vcpu, v))
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
