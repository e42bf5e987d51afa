// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's RDMSR and WRMSR, shared by the vendors, with the two ways
 * userspace can take part (api.rst 4.97 KVM_X86_SET_MSR_FILTER and 7.21
 * KVM_CAP_X86_USER_SPACE_MSR): a filter that denies MSRs to the guest, and
 * KVM_EXIT_X86_RDMSR/WRMSR for accesses minikvm would answer with #GP.
 */
#include <linux/nospec.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/apicdef.h>
#include <asm/traps.h>

#include <minikvm/core.h>

#define USER_MSR_REASONS \
	(KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER)

struct msr_filter_range {
	u32 flags;
	u32 base;
	u32 nmsrs;
	unsigned long *bitmap;		/* a set bit allows the access */
};

struct mkvm_msr_filter {
	bool default_allow;
	u32 count;
	struct msr_filter_range ranges[KVM_MSR_FILTER_MAX_RANGES];
};

static void filter_free(struct mkvm_msr_filter *f)
{
	u32 i;

	if (!f)
		return;
	for (i = 0; i < f->count; i++)
		kfree(f->ranges[i].bitmap);
	kfree(f);
}

static int filter_add_range(struct mkvm_msr_filter *f, const struct kvm_msr_filter_range *u)
{
	struct msr_filter_range *r;
	size_t bytes;

	/* An empty range is no range at all, whatever else it says. */
	if (!u->nmsrs)
		return 0;
	if (!u->flags || (u->flags & ~(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)))
		return -EINVAL;
	if (u->nmsrs > KVM_MSR_FILTER_MAX_BITMAP_SIZE * BITS_PER_BYTE)
		return -EINVAL;
	bytes = BITS_TO_LONGS(u->nmsrs) * sizeof(long);
	if (bytes > KVM_MSR_FILTER_MAX_BITMAP_SIZE)
		return -EINVAL;
	r = &f->ranges[f->count];
	r->bitmap = memdup_user((void __user *)(unsigned long)u->bitmap, bytes);
	if (IS_ERR(r->bitmap)) {
		int err = PTR_ERR(r->bitmap);

		r->bitmap = NULL;
		return err;
	}
	r->flags = u->flags;
	r->base = u->base;
	r->nmsrs = u->nmsrs;
	f->count++;
	return 0;
}

/**
 * mkvm_vm_set_msr_filter() - KVM_X86_SET_MSR_FILTER
 * @vm: the VM
 * @arg: the user's struct kvm_msr_filter
 *
 * The new filter replaces the old one whole; vCPUs see one or the other.
 *
 * Return: 0; -EINVAL for bad flags, a bad range, or DEFAULT_DENY with no
 * range; -EFAULT; -ENOMEM.
 */
int mkvm_vm_set_msr_filter(struct mkvm_vm *vm, void __user *arg)
{
	struct mkvm_msr_filter *f, *old;
	struct kvm_msr_filter u;
	bool empty = true;
	int r = 0;
	u32 i;

	if (copy_from_user(&u, arg, sizeof(u)))
		return -EFAULT;
	if (u.flags & ~KVM_MSR_FILTER_DEFAULT_DENY)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(u.ranges); i++)
		empty &= !u.ranges[i].nmsrs;
	/* Denying everything with no range to allow anything is refused, as in KVM. */
	if (empty && (u.flags & KVM_MSR_FILTER_DEFAULT_DENY))
		return -EINVAL;
	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f)
		return -ENOMEM;
	f->default_allow = !(u.flags & KVM_MSR_FILTER_DEFAULT_DENY);
	for (i = 0; i < ARRAY_SIZE(u.ranges) && !r; i++)
		r = filter_add_range(f, &u.ranges[i]);
	if (r) {
		filter_free(f);
		return r;
	}
	mutex_lock(&vm->lock);
	old = rcu_replace_pointer(vm->arch.msr_filter, f, lockdep_is_held(&vm->lock));
	mutex_unlock(&vm->lock);
	/* Waited for here, not queued: no callback may outlive the module. */
	synchronize_rcu();
	filter_free(old);
	return 0;
}

/**
 * mkvm_msr_filter_destroy() - free the VM's MSR filter
 * @vm: the dying VM, which no vCPU runs any more
 */
void mkvm_msr_filter_destroy(struct mkvm_vm *vm)
{
	filter_free(rcu_dereference_protected(vm->arch.msr_filter, true));
	RCU_INIT_POINTER(vm->arch.msr_filter, NULL);
}

/* Whether the filter lets the guest read (or write) the MSR. */
static bool msr_allowed(struct mkvm_vm *vm, u32 index, bool write)
{
	u32 type = write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ;
	const struct mkvm_msr_filter *f;
	bool allowed = true;
	u32 i;

	/* The x2APIC's MSRs are never filtered (api.rst 4.97). */
	if (index >= APIC_BASE_MSR && index <= APIC_BASE_MSR + 0xff)
		return true;
	rcu_read_lock();
	f = rcu_dereference(vm->arch.msr_filter);
	if (f) {
		allowed = f->default_allow;
		/* The first range that covers the MSR for this kind of access decides. */
		for (i = 0; i < f->count; i++) {
			const struct msr_filter_range *r = &f->ranges[i];

			/* KVM ends a range in 32 bits: one that wraps past 4G covers nothing. */
			if (index >= r->base && index < r->base + r->nmsrs && (r->flags & type)) {
				allowed = test_bit(array_index_nospec(index - r->base, r->nmsrs),
						   r->bitmap);
				break;
			}
		}
	}
	rcu_read_unlock();
	return allowed;
}

/**
 * mkvm_enable_user_space_msr() - KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)
 * @vm: the VM
 * @reasons: KVM_MSR_EXIT_REASON_* for which the guest's access exits to userspace
 *
 * Return: 0, or -EINVAL for an unknown reason bit.
 */
int mkvm_enable_user_space_msr(struct mkvm_vm *vm, u64 reasons)
{
	if (reasons & ~(u64)USER_MSR_REASONS)
		return -EINVAL;
	WRITE_ONCE(vm->arch.user_space_msr, reasons);
	return 0;
}

static void msr_done(struct mkvm_vcpu *vcpu, bool write, u64 data, unsigned long next_rip)
{
	if (!write) {
		vcpu->arch.regs[REG_RAX] = (u32)data;
		vcpu->arch.regs[REG_RDX] = data >> 32;
	}
	mkvm_rip_past_insn(vcpu, next_rip);
}

/**
 * mkvm_emulate_msr_access() - the guest's RDMSR or WRMSR
 * @vcpu: the vCPU, with slots_sem held
 * @write: WRMSR (EDX:EAX into the MSR in ECX) rather than RDMSR
 * @next_rip: where the guest goes on after the instruction
 *
 * An access the filter denies, or one minikvm does not know or refuses,
 * is a #GP, unless userspace asked to see accesses for that reason.
 *
 * Return: 1 to enter the guest again, 0 for KVM_EXIT_X86_RDMSR/WRMSR.
 */
int mkvm_emulate_msr_access(struct mkvm_vcpu *vcpu, bool write, unsigned long next_rip)
{
	unsigned long *regs = vcpu->arch.regs;
	struct kvm_run *run = vcpu->run;
	u32 index = regs[REG_RCX];
	u64 data = (u32)regs[REG_RAX] | ((u64)(u32)regs[REG_RDX] << 32);
	u32 reason;
	int r;

	if (!msr_allowed(vcpu->vm, index, write)) {
		reason = KVM_MSR_EXIT_REASON_FILTER;
	} else {
		r = write ? mkvm_set_msr(vcpu, index, data) : mkvm_get_msr(vcpu, index, &data);
		if (!r) {
			msr_done(vcpu, write, data, next_rip);
			return 1;
		}
		reason = r == MKVM_MSR_UNKNOWN ? KVM_MSR_EXIT_REASON_UNKNOWN :
						 KVM_MSR_EXIT_REASON_INVAL;
	}
	if (!(READ_ONCE(vcpu->vm->arch.user_space_msr) & reason)) {
		mkvm_queue_exception(vcpu, GP_VECTOR, true, 0);
		return 1;
	}
	run->exit_reason = write ? KVM_EXIT_X86_WRMSR : KVM_EXIT_X86_RDMSR;
	memset(&run->msr, 0, sizeof(run->msr));
	run->msr.reason = reason;
	run->msr.index = index;
	run->msr.data = write ? data : 0;
	vcpu->arch.emul.wait = write ? EMUL_WRMSR : EMUL_RDMSR;
	vcpu->arch.emul.next_rip = next_rip;
	return 0;
}

/**
 * mkvm_complete_msr_access() - finish an RDMSR or WRMSR that userspace handled
 * @vcpu: the vCPU, at the start of KVM_RUN
 *
 * A non-zero kvm_run->msr.error makes the instruction raise #GP; otherwise
 * RDMSR returns msr.data in EDX:EAX and the guest goes on after it.
 */
void mkvm_complete_msr_access(struct mkvm_vcpu *vcpu)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	bool write = e->wait == EMUL_WRMSR;

	e->wait = EMUL_NONE;
	if (READ_ONCE(vcpu->run->msr.error))
		mkvm_queue_exception(vcpu, GP_VECTOR, true, 0);
	else
		msr_done(vcpu, write, READ_ONCE(vcpu->run->msr.data), e->next_rip);
}
