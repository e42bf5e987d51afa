// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_SET_GUEST_DEBUG: a debugger in the VMM (QEMU's gdbstub) single-steps
 * the guest and catches its INT3 breakpoints, each as KVM_EXIT_DEBUG; it
 * can also hand a #DB or #BP to the guest.  The vendor sets RFLAGS.TF
 * behind the guest's back and intercepts #BP; this file keeps the
 * userspace side.  With KVM_GUESTDBG_USE_HW_BP the debugger's breakpoints
 * take the hardware's debug registers, and the guest keeps its own in
 * debugregs.c.  KVM_GUESTDBG_BLOCKIRQ holds new interrupts back.
 */
#include <linux/percpu.h>
#include <linux/uaccess.h>
#include <asm/debugreg.h>

#include <minikvm/core.h>

/**
 * mkvm_guest_debug_supported() - KVM_CAP_SET_GUEST_DEBUG2
 *
 * Return: the KVM_GUESTDBG_* flags KVM_SET_GUEST_DEBUG accepts.
 */
u32 mkvm_guest_debug_supported(void)
{
	return KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP |
	       KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP |
	       KVM_GUESTDBG_BLOCKIRQ;
}

/**
 * mkvm_set_guest_debug() - KVM_SET_GUEST_DEBUG
 * @vcpu: the vCPU
 * @argp: the user's struct kvm_guest_debug
 *
 * INJECT_DB and INJECT_BP queue the exception for the next entry, as KVM
 * does, whatever ENABLE says; without ENABLE debugging is off.
 *
 * Return: 0; -EINVAL for a debugger's DR7 with bits set in its upper half
 * (the hardware would refuse to enter the guest); -EBUSY to inject while
 * an exception is already queued; -EFAULT.  As in KVM, unknown bits in
 * @control are ignored.
 */
int mkvm_set_guest_debug(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_guest_debug dbg;
	struct mkvm_events *ev = &vcpu->arch.events;
	u64 dr6, dr7;

	if (copy_from_user(&dbg, argp, sizeof(dbg)))
		return -EFAULT;
	if ((dbg.control & KVM_GUESTDBG_ENABLE) && (dbg.control & KVM_GUESTDBG_USE_HW_BP) &&
	    dbg.arch.debugreg[7] >> 32)
		return -EINVAL;
	/* Busy only with an exception not yet delivered; an interrupted one is replaced. */
	if (dbg.control & (KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)) {
		if (ev->exc.queued && !ev->exc.injected)
			return -EBUSY;
		mkvm_queue_exception(vcpu, (dbg.control & KVM_GUESTDBG_INJECT_DB) ? DB_VECTOR :
					   BP_VECTOR, false, 0);
		mkvm_vmm_soft_exception(vcpu);
	}
	/* The guest's DR6 and DR7 move to wherever they live under the new flags. */
	mkvm_get_guest_dr67(vcpu, &dr6, &dr7);
	vcpu->arch.guest_debug = (dbg.control & KVM_GUESTDBG_ENABLE) ? dbg.control : 0;
	if (vcpu->arch.guest_debug & KVM_GUESTDBG_USE_HW_BP) {
		memcpy(vcpu->arch.debug_db, dbg.arch.debugreg, sizeof(vcpu->arch.debug_db));
		vcpu->arch.debug_dr7 = dbg.arch.debugreg[7];
	}
	mkvm_set_guest_dr67(vcpu, dr6, dr7);
	/*
	 * KVM completes the I/O or MMIO instruction of the last exit at the next
	 * KVM_RUN, which then counts as the step; minikvm moved RIP past it at
	 * the exit already, so the step is due now.
	 */
	vcpu->arch.debug_step_done = (vcpu->arch.guest_debug & KVM_GUESTDBG_SINGLESTEP) &&
				     (vcpu->run->exit_reason == KVM_EXIT_IO ||
				      vcpu->run->exit_reason == KVM_EXIT_MMIO);
	mkvm_x86->update_guest_debug(vcpu);
	return 0;
}

/**
 * mkvm_guest_debug_step_exit() - the step over an instruction minikvm completed
 * @vcpu: the vCPU, at the top of the run loop
 *
 * As KVM reports a step over an emulated instruction: DR6 with only BS
 * (SDM vol. 3 17.2.3) and the linear RIP of the next instruction.
 *
 * Return: 0, to exit to userspace.
 */
int mkvm_guest_debug_step_exit(struct mkvm_vcpu *vcpu)
{
	struct kvm_sregs s;

	vcpu->arch.debug_step_done = false;
	mkvm_x86->get_sregs(vcpu, &s);
	mkvm_guest_debug_exit(vcpu, DB_VECTOR, s.cs.base + vcpu->arch.rip);
	vcpu->run->debug.arch.dr6 = MKVM_DR6_ACTIVE_LOW | DR_STEP;
	return 0;
}

/**
 * mkvm_guest_debug_exit() - end KVM_RUN with KVM_EXIT_DEBUG
 * @vcpu: the vCPU, just after the exit
 * @vector: DB_VECTOR or BP_VECTOR
 * @pc: the linear address of the instruction (CS base plus RIP)
 *
 * Return: 0, to exit to userspace.
 */
int mkvm_guest_debug_exit(struct mkvm_vcpu *vcpu, u8 vector, u64 pc)
{
	struct kvm_debug_exit_arch *d = &vcpu->run->debug.arch;

	vcpu->run->exit_reason = KVM_EXIT_DEBUG;
	d->exception = vector;
	d->pc = pc;
	mkvm_x86->get_dr67(vcpu, &d->dr6, &d->dr7);
	return 0;
}
