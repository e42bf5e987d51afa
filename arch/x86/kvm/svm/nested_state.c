// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_GET_NESTED_STATE and KVM_SET_NESTED_STATE in KVM's SVM format
 * (api.rst 4.114, 4.115): what a vCPU that runs a guest hypervisor keeps
 * beyond its registers, so that it can be saved and moved at any instant,
 * also while L2 runs.
 *
 * The vCPU's registers (KVM_GET_REGS, _SREGS, _MSRS ...) are those of the
 * level that runs: L2's while in guest mode.  The nested state adds GIF
 * and, in guest mode, vmcb12's address and a VMCB whose control area is
 * L1's vmcb12 controls and whose save area is L1's state for #VMEXIT (its
 * RIP past VMRUN, RSP, RAX, RFLAGS, CR0, CR3, CR4, EFER, segments and
 * descriptor tables), as KVM exports them.  Userspace sets the registers
 * first (EFER.SVME with them), then the nested state, as QEMU does.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "svm.h"

#define NESTED_STATE_SIZE (sizeof(struct kvm_nested_state) + KVM_STATE_NESTED_SVM_VMCB_SIZE)

/**
 * mkvm_svm_nested_state_size() - KVM_CAP_NESTED_STATE
 *
 * Return: the largest state, or 0 without nesting.
 */
int mkvm_svm_nested_state_size(void)
{
	return mkvm_svm_nested_on ? NESTED_STATE_SIZE : 0;
}

/* The VMCB of the state: L1's controls, and L1's state as #VMEXIT restores it. */
static void export_vmcb(struct mkvm_vcpu *vcpu, struct vmcb *out)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	u32 vbits = V_TPR_MASK | V_IRQ_MASK;

	out->control = n->vmcb12->control;
	/* L2's V_TPR and V_IRQ as they are now, as the next #VMEXIT would write them. */
	out->control.int_ctl = (out->control.int_ctl & ~vbits) |
			       (svm->vmcb->control.int_ctl & vbits);
	out->save = svm->vmcb01->save;
	/* FS, GS, TR, LDTR and the syscall MSRs are the running ones, L1's at #VMEXIT. */
	mkvm_svm_copy_vmload_state(&out->save, &svm->vmcb->save);
	out->save.cr0 = n->l1_cr0;
	out->save.cr3 = n->l1_cr3;
	out->save.cr4 = n->l1_cr4;
	out->save.efer = n->l1_efer;
}

static long get_nested_state(struct mkvm_vcpu *vcpu, struct kvm_nested_state __user *u)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct kvm_nested_state hdr;
	struct vmcb *vmcb;
	u32 user_size;
	long r = 0;

	/* Every byte of the header goes to userspace. */
	memset(&hdr, 0, sizeof(hdr));
	hdr.format = KVM_STATE_NESTED_FORMAT_SVM;
	hdr.size = sizeof(hdr);
	if (get_user(user_size, &u->size))
		return -EFAULT;
	if (svm->nested.guest_mode) {
		hdr.flags |= KVM_STATE_NESTED_GUEST_MODE;
		if (svm->nested.run_pending)
			hdr.flags |= KVM_STATE_NESTED_RUN_PENDING;
		hdr.hdr.svm.vmcb_pa = svm->nested.vmcb12_gpa;
		hdr.size += KVM_STATE_NESTED_SVM_VMCB_SIZE;
	}
	if (svm->gif)
		hdr.flags |= KVM_STATE_NESTED_GIF_SET;
	/* api.rst 4.114: too small a buffer gets E2BIG and the size it needs. */
	if (user_size < hdr.size)
		return put_user(hdr.size, &u->size) ? -EFAULT : -E2BIG;
	if (copy_to_user(u, &hdr, sizeof(hdr)))
		return -EFAULT;
	if (!svm->nested.guest_mode)
		return 0;
	vmcb = kzalloc(KVM_STATE_NESTED_SVM_VMCB_SIZE, GFP_KERNEL_ACCOUNT);
	if (!vmcb)
		return -ENOMEM;
	export_vmcb(vcpu, vmcb);
	if (copy_to_user(u->data.svm, vmcb, KVM_STATE_NESTED_SVM_VMCB_SIZE))
		r = -EFAULT;
	kfree(vmcb);
	return r;
}

/* The state can be one L1 was in at a VMRUN: what VMRUN checks, in protected mode with paging. */
static bool l1_state_valid(struct mkvm_vcpu *vcpu, const struct vmcb *v)
{
	const struct vmcb_save_area *s = &v->save;

	if (!(s->cr0 & X86_CR0_PG) || !(s->cr0 & X86_CR0_PE) || (s->rflags & X86_EFLAGS_VM))
		return false;
	return mkvm_svm_vmcb12_valid(vcpu, v);
}

static long set_nested_state(struct mkvm_vcpu *vcpu, struct kvm_nested_state __user *u)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	u32 known = KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING |
		    KVM_STATE_NESTED_GIF_SET;
	struct kvm_nested_state hdr;
	struct vmcb *vmcb;
	long r = 0;

	if (copy_from_user(&hdr, u, sizeof(hdr)))
		return -EFAULT;
	if (hdr.size < sizeof(hdr) || hdr.format != KVM_STATE_NESTED_FORMAT_SVM ||
	    (hdr.flags & ~known))
		return -EINVAL;
	if ((hdr.flags & KVM_STATE_NESTED_RUN_PENDING) &&
	    !(hdr.flags & KVM_STATE_NESTED_GUEST_MODE))
		return -EINVAL;
	/* Without EFER.SVME the only state is GIF set, as on KVM; SMM runs without SVM. */
	if (!(vcpu->arch.efer & EFER_SVME) && hdr.flags != KVM_STATE_NESTED_GIF_SET)
		return -EINVAL;
	if (vcpu->arch.smm.active && (hdr.flags & KVM_STATE_NESTED_GUEST_MODE))
		return -EINVAL;
	if (!(hdr.flags & KVM_STATE_NESTED_GUEST_MODE)) {
		mkvm_svm_leave_nested(vcpu);
		svm->gif = hdr.flags & KVM_STATE_NESTED_GIF_SET;
		return 0;
	}
	if ((hdr.hdr.svm.vmcb_pa & ~PAGE_MASK) ||
	    (hdr.hdr.svm.vmcb_pa >> mkvm_guest_maxphyaddr(vcpu)) || hdr.size < NESTED_STATE_SIZE)
		return -EINVAL;
	vmcb = kmalloc(KVM_STATE_NESTED_SVM_VMCB_SIZE, GFP_KERNEL_ACCOUNT);
	if (!vmcb)
		return -ENOMEM;
	if (copy_from_user(vmcb, u->data.svm, KVM_STATE_NESTED_SVM_VMCB_SIZE)) {
		r = -EFAULT;
		goto out;
	}
	if (!l1_state_valid(vcpu, vmcb)) {
		r = -EINVAL;
		goto out;
	}
	mkvm_svm_leave_nested(vcpu);
	mkvm_svm_enter_saved_l2(vcpu, vmcb, hdr.hdr.svm.vmcb_pa,
				hdr.flags & KVM_STATE_NESTED_RUN_PENDING);
	svm->gif = hdr.flags & KVM_STATE_NESTED_GIF_SET;
out:
	kfree(vmcb);
	return r;
}

/**
 * mkvm_svm_nested_state_ioctl() - KVM_GET_NESTED_STATE and KVM_SET_NESTED_STATE
 * @vcpu: the vCPU, not running
 * @set: KVM_SET_NESTED_STATE
 * @argp: the user's struct kvm_nested_state
 *
 * Return: 0; -E2BIG with the needed size when the buffer is too small;
 * -EINVAL for a state KVM would refuse, or without nesting; -EFAULT.
 */
long mkvm_svm_nested_state_ioctl(struct mkvm_vcpu *vcpu, bool set, void __user *argp)
{
	if (!mkvm_svm_nested_on)
		return -EINVAL;
	return set ? set_nested_state(vcpu, argp) : get_nested_state(vcpu, argp);
}
