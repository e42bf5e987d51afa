// SPDX-License-Identifier: GPL-2.0
/*
 * MSRs: the list userspace saves and restores (KVM_GET_MSR_INDEX_LIST),
 * KVM_GET/SET_MSRS, and the guest's RDMSR/WRMSR.  MSRs the vendor keeps in
 * its control block (VMCB, VMCS) go through mkvm_x86; the rest live here.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/apicdef.h>
#include <asm/kvm_para.h>
#include <asm/msr-index.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/* Everything a guest can change that userspace must save for migration. */
static const u32 msrs_to_save[] = {
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
	MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_CR_PAT, MSR_EFER, MSR_IA32_TSC,
	MSR_IA32_APICBASE, MSR_IA32_MISC_ENABLE, MSR_IA32_TSC_DEADLINE,
	/* tsc.c, kvmclock.c, model_msrs.c */
	MSR_IA32_TSC_ADJUST, MSR_KVM_SYSTEM_TIME, MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME_NEW,
	MSR_KVM_WALL_CLOCK_NEW, MSR_IA32_UCODE_REV, MSR_K7_HWCR,
	/* mce.c */
	MSR_IA32_MCG_STATUS, MSR_IA32_MCG_CTL,
	/* smm.c: userspace's only, as in KVM */
	MSR_IA32_SMBASE,
	/*
	 * The last three only where they exist: model_msrs.c on AMD,
	 * svm/nested.c with nesting, tsc_aux.c on its host.
	 */
	MSR_AMD64_DE_CFG, MSR_VM_HSAVE_PA, MSR_TSC_AUX,
};

/**
 * mkvm_copy_msr_list() - hand a list of MSR numbers to userspace, KVM's way
 * @arg: the user's struct kvm_msr_list
 * @list: the MSR numbers
 * @n: how many
 *
 * Return: 0, or -E2BIG with the needed count written back, or -EFAULT.
 */
int mkvm_copy_msr_list(struct kvm_msr_list __user *arg, const u32 *list, u32 n)
{
	struct kvm_msr_list hdr;
	u32 room;

	if (copy_from_user(&hdr, arg, sizeof(hdr)))
		return -EFAULT;
	room = hdr.nmsrs;
	hdr.nmsrs = n;
	if (copy_to_user(arg, &hdr, sizeof(hdr)))
		return -EFAULT;
	if (room < n)
		return -E2BIG;
	return copy_to_user(arg->indices, list, n * sizeof(*list)) ? -EFAULT : 0;
}

/**
 * mkvm_dev_get_msr_index_list() - KVM_GET_MSR_INDEX_LIST
 * @arg: the user's struct kvm_msr_list
 *
 * Return: 0, or -E2BIG with the needed count written back, or -EFAULT.
 */
int mkvm_dev_get_msr_index_list(struct kvm_msr_list __user *arg)
{
	u32 list[ARRAY_SIZE(msrs_to_save)], n = ARRAY_SIZE(msrs_to_save) - 3;

	memcpy(list, msrs_to_save, n * sizeof(list[0]));
	if (mkvm_x86->amd_model_msrs)
		list[n++] = MSR_AMD64_DE_CFG;
	if (mkvm_nested)
		list[n++] = MSR_VM_HSAVE_PA;
	if (mkvm_tsc_aux_supported())
		list[n++] = MSR_TSC_AUX;
	return mkvm_copy_msr_list(arg, list, n);
}

static int get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	int r = mkvm_x86->get_msr(vcpu, index, data);

	if (r != MKVM_MSR_UNKNOWN)
		return r;
	switch (index) {
	case MSR_EFER:
		*data = vcpu->arch.efer;
		return 0;
	case MSR_IA32_APICBASE:
		*data = vcpu->arch.apic_base;
		return 0;
	case MSR_IA32_TSC_DEADLINE:
		return mkvm_lapic_tsc_deadline_read(vcpu, data);
	case APIC_BASE_MSR ... APIC_BASE_MSR + 0xff:
		return mkvm_x2apic_msr_read(vcpu, index, data);
	}
	if (mkvm_mtrr_is_msr(index))
		return mkvm_mtrr_get_msr(vcpu, index, data);
	/* The other files' MSRs: each answers MKVM_MSR_UNKNOWN for "not mine". */
	r = mkvm_mce_get_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_tsc_get_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_kvmclock_get_msr(vcpu, index, data);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_model_get_msr(vcpu, index, data);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_smm_get_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_tsc_aux_get_msr(vcpu, index, data, host);
	return r;
}

/**
 * mkvm_get_msr() - the guest's RDMSR
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 *
 * Return: 0; MKVM_MSR_UNKNOWN when minikvm does not implement the MSR,
 * MKVM_MSR_INVALID when it refuses the access (both a #GP for the guest).
 */
int mkvm_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data)
{
	return get_msr(vcpu, index, data, false);
}

/* Linear addresses are 48 bits wide, 57 with CR4.LA57 (SDM vol. 3 4.1.1). */
static bool canonical(struct mkvm_vcpu *vcpu, u64 la)
{
	struct kvm_sregs s;
	int bits;

	mkvm_x86->get_sregs(vcpu, &s);
	bits = (s.cr4 & X86_CR4_LA57) ? 57 : 48;
	return (u64)((s64)(la << (64 - bits)) >> (64 - bits)) == la;
}

static int set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host)
{
	int r;

	/* As KVM checks them, for the guest and for userspace alike. */
	switch (index) {
	case MSR_FS_BASE:
	case MSR_GS_BASE:
	case MSR_KERNEL_GS_BASE:
	case MSR_LSTAR:
	case MSR_CSTAR:
		/* A non-canonical base or entry point is #GP (SDM vol. 4, APM vol. 2 6.1.1). */
		if (!canonical(vcpu, data))
			return MKVM_MSR_INVALID;
		break;
	case MSR_EFER:
		return mkvm_set_efer(vcpu, data, host);
	}
	r = mkvm_x86->set_msr(vcpu, index, data);
	if (r != MKVM_MSR_UNKNOWN)
		return r;
	switch (index) {
	case MSR_IA32_APICBASE:
		return mkvm_lapic_set_base(vcpu, data, host);
	case MSR_IA32_TSC_DEADLINE:
		return mkvm_lapic_tsc_deadline_write(vcpu, data);
	case APIC_BASE_MSR ... APIC_BASE_MSR + 0xff:
		return mkvm_x2apic_msr_write(vcpu, index, data);
	}
	if (mkvm_mtrr_is_msr(index))
		return mkvm_mtrr_set_msr(vcpu, index, data);
	r = mkvm_mce_set_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_tsc_set_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_kvmclock_set_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_model_set_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_smm_set_msr(vcpu, index, data, host);
	if (r == MKVM_MSR_UNKNOWN)
		r = mkvm_tsc_aux_set_msr(vcpu, index, data, host);
	return r;
}

/**
 * mkvm_set_msr() - the guest's WRMSR
 * @vcpu: the vCPU, with slots_sem held (kvmclock writes guest memory)
 * @index: MSR number
 * @data: the value
 *
 * Return: 0; MKVM_MSR_UNKNOWN for an MSR minikvm does not implement,
 * MKVM_MSR_INVALID for a value it refuses (both a #GP for the guest).
 */
int mkvm_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data)
{
	return set_msr(vcpu, index, data, false);
}

/**
 * mkvm_vcpu_msrs_ioctl() - KVM_GET_MSRS and KVM_SET_MSRS
 * @vcpu: the vCPU
 * @arg: the user's struct kvm_msrs
 * @set: KVM_SET_MSRS
 *
 * Return: how many entries were processed before the first unknown MSR or
 * bad value; -E2BIG for 256 or more entries; -EFAULT; -ENOMEM.
 */
int mkvm_vcpu_msrs_ioctl(struct mkvm_vcpu *vcpu, struct kvm_msrs __user *arg, bool set)
{
	struct kvm_msr_entry *e;
	struct kvm_msrs hdr;
	u32 i;
	int r;

	if (copy_from_user(&hdr, arg, sizeof(hdr)))
		return -EFAULT;
	if (hdr.nmsrs >= MKVM_MAX_IO_MSRS)
		return -E2BIG;
	e = memdup_user(arg->entries, hdr.nmsrs * sizeof(*e));
	if (IS_ERR(e))
		return PTR_ERR(e);
	for (i = 0; i < hdr.nmsrs; i++)
		if (set ? set_msr(vcpu, e[i].index, e[i].data, true) :
			  get_msr(vcpu, e[i].index, &e[i].data, true))
			break;
	r = i;
	if (!set && copy_to_user(arg->entries, e, hdr.nmsrs * sizeof(*e)))
		r = -EFAULT;
	kfree(e);
	return r;
}
