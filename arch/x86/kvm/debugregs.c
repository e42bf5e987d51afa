// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's debug registers as the guest and KVM_GET/SET_DEBUGREGS see
 * them.  Normally they are the hardware's: DR0-3 loaded around each entry,
 * DR6 and DR7 in the vendor's control block.  While the VMM's debugger uses
 * hardware breakpoints (KVM_GUESTDBG_USE_HW_BP) the hardware holds the
 * debugger's, the guest's own are kept here, and the guest's MOV to or from
 * a debug register exits and is completed here against its own.
 */
#include <linux/nospec.h>
#include <linux/uaccess.h>
#include <asm/debugreg.h>
#include <asm/hw_breakpoint.h>
#include <asm/traps.h>

#include <minikvm/core.h>

/* DR7's bits 11, 12, 14 and 15 read as 0, bit 10 as 1 (SDM vol. 3 17.2.4). */
#define DR7_GUEST_BITS 0xffff2bffUL

static bool debugger_owns_drs(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.guest_debug & KVM_GUESTDBG_USE_HW_BP;
}

/**
 * mkvm_load_guest_drs() - DR0-3 for the guest, just before the entry
 * @vcpu: the vCPU, interrupts off
 *
 * Neither VMRUN nor VM entry switches DR0-3 (APM 15.5.1): the guest's are
 * ours to load, or the VMM debugger's.  The host's own breakpoints are
 * disarmed first, or they would fire on the guest's addresses in the host
 * until the entry; mkvm_save_guest_drs() puts them back.
 */
void mkvm_load_guest_drs(struct mkvm_vcpu *vcpu)
{
	bool debugger = debugger_owns_drs(vcpu);
	int i;

	if (hw_breakpoint_active())
		native_set_debugreg(7, 0);
	for (i = 0; i < 4; i++)
		native_set_debugreg(i, debugger ? vcpu->arch.debug_db[i] : vcpu->arch.dr[i]);
}

/**
 * mkvm_save_guest_drs() - DR0-3 back from the guest, just after the exit
 * @vcpu: the vCPU, interrupts off
 *
 * The guest writes its DR0-3 without an exit, unless the debugger holds
 * them.  The exit leaves the host's breakpoints disabled: those in use are
 * armed again.
 */
void mkvm_save_guest_drs(struct mkvm_vcpu *vcpu)
{
	int i;

	if (!debugger_owns_drs(vcpu))
		for (i = 0; i < 4; i++)
			vcpu->arch.dr[i] = native_get_debugreg(i);
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
}

/**
 * mkvm_get_guest_dr67() - the guest's own DR6 and DR7
 * @vcpu: the vCPU, not running
 * @dr6: filled in
 * @dr7: filled in
 */
void mkvm_get_guest_dr67(struct mkvm_vcpu *vcpu, u64 *dr6, u64 *dr7)
{
	if (debugger_owns_drs(vcpu)) {
		*dr6 = vcpu->arch.guest_dr6;
		*dr7 = vcpu->arch.guest_dr7;
	} else {
		mkvm_x86->get_dr67(vcpu, dr6, dr7);
	}
}

/**
 * mkvm_set_guest_dr67() - set the guest's own DR6 and DR7
 * @vcpu: the vCPU, not running
 * @dr6: the value
 * @dr7: the value
 */
void mkvm_set_guest_dr67(struct mkvm_vcpu *vcpu, u64 dr6, u64 dr7)
{
	if (debugger_owns_drs(vcpu)) {
		vcpu->arch.guest_dr6 = dr6;
		vcpu->arch.guest_dr7 = dr7;
	} else {
		mkvm_x86->set_dr67(vcpu, dr6, dr7);
	}
}

/**
 * mkvm_debugregs_ioctl() - KVM_GET_DEBUGREGS and KVM_SET_DEBUGREGS
 * @vcpu: the vCPU, not running
 * @argp: the user's struct kvm_debugregs
 * @set: KVM_SET_DEBUGREGS
 *
 * Return: 0; -EINVAL for flags or set bits in the upper halves of DR6 and
 * DR7 (SDM vol. 3 18.2.3, 18.2.4); -EFAULT.
 */
int mkvm_debugregs_ioctl(struct mkvm_vcpu *vcpu, void __user *argp, bool set)
{
	struct kvm_debugregs d = {};

	if (!set) {
		memcpy(d.db, vcpu->arch.dr, sizeof(d.db));
		mkvm_get_guest_dr67(vcpu, &d.dr6, &d.dr7);
		return copy_to_user(argp, &d, sizeof(d)) ? -EFAULT : 0;
	}
	if (copy_from_user(&d, argp, sizeof(d)))
		return -EFAULT;
	if (d.flags || d.dr6 >> 32 || d.dr7 >> 32)
		return -EINVAL;
	memcpy(vcpu->arch.dr, d.db, sizeof(d.db));
	mkvm_set_guest_dr67(vcpu, d.dr6, d.dr7);
	return 0;
}

/**
 * mkvm_emulate_dr_access() - complete an intercepted MOV to or from DR0-7
 * @vcpu: the vCPU, with slots_sem held
 * @dr: the debug register the exit names
 * @write: MOV to the debug register
 * @gpr: the general register if the hardware said, else -1
 * @len: the instruction's length if known, else 0
 *
 * Return: 1 to enter again, 0 with kvm_run reporting an emulation failure.
 */
int mkvm_emulate_dr_access(struct mkvm_vcpu *vcpu, int dr, bool write, int gpr, unsigned int len)
{
	unsigned long *regs = vcpu->arch.regs;
	struct mkvm_insn insn;
	struct kvm_sregs s;
	unsigned long next;
	u64 val, dr6, dr7;
	bool wide;
	int r;

	if (!mkvm_decode_intercepted(vcpu, &s, &insn, &gpr, &len, &r))
		return r;
	if (insn.kind != INSN_UNKNOWN &&
	    (insn.kind != (write ? INSN_MOV_TO_DR : INSN_MOV_FROM_DR) || insn.reg != dr))
		return mkvm_emulation_failed(vcpu, NULL, 0);
	/* The operand is 64 bits in 64-bit mode, else 32 (SDM vol. 2 MOV-Debug Registers). */
	wide = (s.efer & EFER_LMA) && s.cs.l;
	if ((s.cr0 & X86_CR0_PE) && (s.cs.dpl || (vcpu->arch.rflags & X86_EFLAGS_VM))) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
	/* DR4 and DR5 are DR6 and DR7 unless CR4.DE makes them #UD (SDM vol. 3 17.2.2). */
	if (dr == 4 || dr == 5) {
		if (s.cr4 & X86_CR4_DE) {
			mkvm_queue_exception(vcpu, X86_TRAP_UD, false, 0);
			return 1;
		}
		dr += 2;
	}
	mkvm_get_guest_dr67(vcpu, &dr6, &dr7);
	if (!write) {
		val = dr < 4 ? vcpu->arch.dr[array_index_nospec(dr, 4)] : dr == 6 ? dr6 : dr7;
		/* A 32-bit destination zero-extends. */
		regs[gpr] = wide ? val : (u32)val;
	} else {
		val = wide ? regs[gpr] : (u32)regs[gpr];
		if (dr < 4) {
			vcpu->arch.dr[array_index_nospec(dr, 4)] = val;
		} else if (val >> 32) {
			/* DR6's and DR7's upper halves must be zero (SDM vol. 3 17.2.3, 17.2.4). */
			mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
			return 1;
		} else if (dr == 6) {
			dr6 = (val & MKVM_DR6_GUEST_BITS) | MKVM_DR6_ACTIVE_LOW;
			mkvm_set_guest_dr67(vcpu, dr6, dr7);
		} else {
			dr7 = (val & DR7_GUEST_BITS) | MKVM_DR7_RESET;
			mkvm_set_guest_dr67(vcpu, dr6, dr7);
		}
	}
	next = vcpu->arch.rip + len;
	mkvm_rip_past_insn(vcpu, wide ? next : (u32)next);
	return 1;
}
