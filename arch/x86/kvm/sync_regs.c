// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CAP_SYNC_REGS (api.rst 5, kvm_valid_regs and kvm_dirty_regs): the
 * registers, special registers and events travel in kvm_run on each
 * KVM_RUN, saving the VMM the ioctls around every exit.
 */
#include <minikvm/core.h>

/**
 * mkvm_sync_regs_from_run() - take in what userspace changed in kvm_run
 * @vcpu: the vCPU, at the start of KVM_RUN
 *
 * Each part named in kvm_dirty_regs is set as its own ioctl would set it,
 * and its bit cleared.  kvm_run is userspace's page: every part is copied
 * out before it is checked.
 *
 * Return: 0, or -EINVAL for an unknown bit or a state the ioctl refuses.
 */
int mkvm_sync_regs_from_run(struct mkvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	u64 dirty = READ_ONCE(run->kvm_dirty_regs);
	struct kvm_vcpu_events events;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if ((READ_ONCE(run->kvm_valid_regs) | dirty) & ~(u64)KVM_SYNC_X86_VALID_FIELDS)
		return -EINVAL;
	if (dirty & KVM_SYNC_X86_REGS) {
		memcpy(&regs, &run->s.regs.regs, sizeof(regs));
		mkvm_set_regs(vcpu, &regs);
		run->kvm_dirty_regs &= ~(u64)KVM_SYNC_X86_REGS;
	}
	if (dirty & KVM_SYNC_X86_SREGS) {
		memcpy(&sregs, &run->s.regs.sregs, sizeof(sregs));
		if (mkvm_set_sregs(vcpu, &sregs))
			return -EINVAL;
		run->kvm_dirty_regs &= ~(u64)KVM_SYNC_X86_SREGS;
	}
	if (dirty & KVM_SYNC_X86_EVENTS) {
		memcpy(&events, &run->s.regs.events, sizeof(events));
		if (mkvm_set_vcpu_events(vcpu, &events))
			return -EINVAL;
		run->kvm_dirty_regs &= ~(u64)KVM_SYNC_X86_EVENTS;
	}
	return 0;
}

/**
 * mkvm_sync_regs_to_run() - hand userspace the parts it asked for
 * @vcpu: the vCPU, at the end of KVM_RUN
 */
void mkvm_sync_regs_to_run(struct mkvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	u64 valid = READ_ONCE(run->kvm_valid_regs);

	if (valid & KVM_SYNC_X86_REGS)
		mkvm_get_regs(vcpu, &run->s.regs.regs);
	if (valid & KVM_SYNC_X86_SREGS)
		mkvm_get_sregs(vcpu, &run->s.regs.sregs);
	if (valid & KVM_SYNC_X86_EVENTS)
		mkvm_get_vcpu_events(vcpu, &run->s.regs.events);
}
