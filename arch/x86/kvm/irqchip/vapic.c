// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's TPR-patching helpers for guests that reach the xAPIC TPR through
 * MMIO many times a second (32-bit Windows): QEMU's "kvmvapic" option ROM
 * patches those instructions to use a word in guest memory instead.
 *
 * - KVM_TPR_ACCESS_REPORTING: each TPR access through the APIC's registers
 *   ends KVM_RUN with KVM_EXIT_TPR_ACCESS, so the VMM can find the instruction.
 * - KVM_SET_VAPIC_ADDR: the guest-physical address of that word; before each
 *   entry minikvm writes TPR, the highest in-service class and the highest
 *   requested vector there, and after each exit takes the guest's TPR from it.
 *
 * QEMU sets both on every vCPU reset, so a VMM cannot start without them.
 */
#include <linux/uaccess.h>
#include <asm/apicdef.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>
#include <minikvm/irqchip.h>

/* The word is 4 bytes: it must lie in one writable memslot (of the normal space, as in KVM). */
static bool vapic_addr_valid(struct mkvm_vcpu *vcpu, u64 gpa)
{
	struct mkvm_memslot *slot;
	bool ok;

	down_read(&vcpu->vm->slots_sem);
	slot = mkvm_gfn_to_memslot(vcpu->vm, 0, gpa >> PAGE_SHIFT);
	ok = slot && !(slot->flags & KVM_MEM_READONLY) &&
	     mkvm_gfn_to_memslot(vcpu->vm, 0, (gpa + 3) >> PAGE_SHIFT) == slot;
	up_read(&vcpu->vm->slots_sem);
	return ok;
}

static int set_vapic_addr(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_vapic_addr va;

	if (!vcpu->arch.lapic)
		return -EINVAL;
	if (copy_from_user(&va, argp, sizeof(va)))
		return -EFAULT;
	if (va.vapic_addr && (va.vapic_addr + 3 < va.vapic_addr ||
			      !vapic_addr_valid(vcpu, va.vapic_addr)))
		return -EINVAL;
	vcpu->arch.vapic_addr = va.vapic_addr;
	return 0;
}

static int tpr_access_reporting(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_tpr_access_ctl tac;

	if (copy_from_user(&tac, argp, sizeof(tac)))
		return -EFAULT;
	if (tac.flags)
		return -EINVAL;
	vcpu->arch.tpr_access_reporting = !!tac.enabled;
	/* KVM copies the structure back unchanged. */
	return copy_to_user(argp, &tac, sizeof(tac)) ? -EFAULT : 0;
}

/**
 * mkvm_vapic_ioctl() - KVM_SET_VAPIC_ADDR and KVM_TPR_ACCESS_REPORTING
 * @vcpu: the vCPU
 * @ioctl: which
 * @argp: the user's argument
 *
 * Return: 0; -EINVAL without an in-kernel local APIC (KVM_SET_VAPIC_ADDR),
 * for an address outside writable guest memory, or for unknown flags; -EFAULT.
 */
long mkvm_vapic_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp)
{
	return ioctl == KVM_SET_VAPIC_ADDR ? set_vapic_addr(vcpu, argp) :
					     tpr_access_reporting(vcpu, argp);
}

/**
 * mkvm_vapic_report_tpr() - the guest read or wrote the TPR register
 * @vcpu: the vCPU, in its exit handling (RIP still at the instruction)
 * @write: a write
 *
 * With reporting on, the next KVM_RUN iteration returns KVM_EXIT_TPR_ACCESS.
 */
void mkvm_vapic_report_tpr(struct mkvm_vcpu *vcpu, bool write)
{
	if (!vcpu->arch.tpr_access_reporting)
		return;
	vcpu->run->tpr_access.rip = vcpu->arch.rip;
	vcpu->run->tpr_access.is_write = write;
	vcpu->arch.tpr_report_pending = true;
}

/**
 * mkvm_vapic_sync_to_guest() - write the vAPIC word before an entry
 * @vcpu: the vCPU, with slots_sem held and interrupts enabled
 *
 * Bits 7-0 TPR, 15-12 the highest in-service vector's class, 31-24 the
 * highest requested vector (0 when none), KVM's layout.
 */
void mkvm_vapic_sync_to_guest(struct mkvm_vcpu *vcpu)
{
	u32 word;

	if (likely(!vcpu->arch.vapic_addr) || !vcpu->arch.lapic)
		return;
	word = mkvm_lapic_vapic_word(vcpu);
	mkvm_guest_phys_as(vcpu, 0, vcpu->arch.vapic_addr, &word, sizeof(word), true);
}

/**
 * mkvm_vapic_sync_from_guest() - take the guest's TPR from the vAPIC word
 * @vcpu: the vCPU, after an exit, with slots_sem held
 */
void mkvm_vapic_sync_from_guest(struct mkvm_vcpu *vcpu)
{
	u32 word;

	if (likely(!vcpu->arch.vapic_addr) || !vcpu->arch.lapic)
		return;
	if (!mkvm_guest_phys_as(vcpu, 0, vcpu->arch.vapic_addr, &word, sizeof(word), false))
		mkvm_lapic_set_tpr(vcpu, word & 0xff);
}
