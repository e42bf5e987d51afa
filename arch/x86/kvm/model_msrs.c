// SPDX-License-Identifier: GPL-2.0
/*
 * Model-specific MSRs that a Linux guest reads or writes while booting on
 * an AMD CPU, and the feature MSRs userspace reads from /dev/kvm
 * (KVM_GET_MSR_FEATURE_INDEX_LIST).  Each behaves as in KVM: some hold a
 * value, some read as zero, and writes the hardware would take but that
 * mean nothing to a guest are ignored rather than refused.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/msr-index.h>

#include <minikvm/core.h>

/* HWCR bits a guest may write without effect: TLB cache, flush filter, IGNNE (APM vol. 2 A.2). */
#define HWCR_IGNORED (BIT_ULL(3) | BIT_ULL(6) | BIT_ULL(8))
/* MISC_ENABLE bits that report missing PMU features: fixed for the guest (SDM vol. 4 2.1). */
#define MISC_ENABLE_PMU_RO (MSR_IA32_MISC_ENABLE_BTS_UNAVAIL | MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL)
/* HWCR.McStatusWrEn: the one bit that is kept. */
#define HWCR_MC_STATUS_WR_EN BIT_ULL(18)

/* DE_CFG last: AMD's only (mkvm_x86_ops.amd_model_msrs). */
static const u32 feature_msrs[] = { MSR_IA32_UCODE_REV, MSR_AMD64_DE_CFG };

/**
 * mkvm_model_msrs_reset() - the model-specific MSRs of a new vCPU
 * @vcpu: the vCPU
 */
void mkvm_model_msrs_reset(struct mkvm_vcpu *vcpu)
{
	/* The microcode revision a vCPU reports until userspace sets another, KVM's. */
	vcpu->arch.ucode_rev = mkvm_x86->ucode_rev_reset;
	/* No branch trace store, no PEBS: there is no PMU. */
	vcpu->arch.misc_enable = MISC_ENABLE_PMU_RO;
}

/* DE_CFG bits offered: LFENCE is dispatch serializing when the host's is. */
static u64 de_cfg_supported(void)
{
	return boot_cpu_has(X86_FEATURE_LFENCE_RDTSC) ? MSR_AMD64_DE_CFG_LFENCE_SERIALIZE : 0;
}

static int get_feature_msr(u32 index, u64 *data)
{
	if (index == MSR_AMD64_DE_CFG && !mkvm_x86->amd_model_msrs)
		return 1;
	switch (index) {
	case MSR_AMD64_DE_CFG:
		*data = de_cfg_supported();
		return 0;
	case MSR_IA32_UCODE_REV:
		*data = 0;
		rdmsrl_safe(MSR_IA32_UCODE_REV, data);
		return 0;
	default:
		return 1;
	}
}

/**
 * mkvm_dev_get_msr_feature_index_list() - KVM_GET_MSR_FEATURE_INDEX_LIST
 * @arg: the user's struct kvm_msr_list
 *
 * Return: 0, or -E2BIG with the needed count written back, or -EFAULT.
 */
int mkvm_dev_get_msr_feature_index_list(struct kvm_msr_list __user *arg)
{
	return mkvm_copy_msr_list(arg, feature_msrs,
				  ARRAY_SIZE(feature_msrs) - !mkvm_x86->amd_model_msrs);
}

/**
 * mkvm_dev_get_feature_msrs() - KVM_GET_MSRS on /dev/kvm
 * @arg: the user's struct kvm_msrs
 *
 * Return: how many entries were read before the first MSR that is not a
 * feature MSR; -E2BIG for 256 or more entries; -EFAULT; -ENOMEM.
 */
int mkvm_dev_get_feature_msrs(struct kvm_msrs __user *arg)
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
		if (get_feature_msr(e[i].index, &e[i].data))
			break;
	r = copy_to_user(arg->entries, e, hdr.nmsrs * sizeof(*e)) ? -EFAULT : i;
	kfree(e);
	return r;
}

/**
 * mkvm_model_get_msr() - read a model-specific MSR
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 *
 * Return: 0, or MKVM_MSR_UNKNOWN for an MSR this file does not know.
 */
int mkvm_model_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data)
{
	if (index == MSR_AMD64_DE_CFG && !mkvm_x86->amd_model_msrs)
		return MKVM_MSR_UNKNOWN;
	switch (index) {
	case MSR_IA32_UCODE_REV:
		*data = vcpu->arch.ucode_rev;
		return 0;
	case MSR_IA32_MISC_ENABLE:
		*data = vcpu->arch.misc_enable;
		return 0;
	case MSR_AMD64_DE_CFG:
		*data = vcpu->arch.de_cfg;
		return 0;
	case MSR_K7_HWCR:
		*data = vcpu->arch.hwcr;
		return 0;
	/* Northbridge and system configuration: nothing a guest can use; zero, as in KVM. */
	case MSR_AMD64_SYSCFG:
	case MSR_K8_INT_PENDING_MSG:
	case MSR_AMD64_NB_CFG:
	case MSR_FAM10H_MMIO_CONF_BASE:
	case MSR_AMD64_BU_CFG2:
		*data = 0;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_model_set_msr() - write a model-specific MSR
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 * @host: written by KVM_SET_MSRS rather than the guest
 *
 * Return: 0; MKVM_MSR_UNKNOWN for another MSR, 1 for a value KVM refuses.
 */
int mkvm_model_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host)
{
	if (index == MSR_AMD64_DE_CFG && !mkvm_x86->amd_model_msrs)
		return MKVM_MSR_UNKNOWN;
	switch (index) {
	case MSR_IA32_UCODE_REV:
		/* The guest's write asks to load microcode (SDM vol. 3 9.11.6): ignored. */
		if (host)
			vcpu->arch.ucode_rev = data;
		return 0;
	case MSR_IA32_MISC_ENABLE:
		/* Userspace restores any value; the guest may not flip the PMU bits. */
		if (!host && ((data ^ vcpu->arch.misc_enable) & MISC_ENABLE_PMU_RO))
			return 1;
		/* EMON (performance monitoring available) is read-only: the write is dropped. */
		if (!host)
			data = (data & ~MSR_IA32_MISC_ENABLE_EMON) |
			       (vcpu->arch.misc_enable & MSR_IA32_MISC_ENABLE_EMON);
		vcpu->arch.misc_enable = data;
		return 0;
	case MSR_AMD64_DE_CFG:
		if (data & ~de_cfg_supported())
			return 1;
		/* The guest may only write what the host has set; userspace may clear it. */
		if (!host && data != de_cfg_supported())
			return 1;
		vcpu->arch.de_cfg = data;
		return 0;
	case MSR_K7_HWCR:
		data &= ~HWCR_IGNORED;
		/* As in KVM, writing 0 leaves McStatusWrEn as it was. */
		if (data == HWCR_MC_STATUS_WR_EN)
			vcpu->arch.hwcr = data;
		return data && data != HWCR_MC_STATUS_WR_EN;
	case MSR_AMD64_NB_CFG:
	case MSR_AMD64_BU_CFG2:
		return 0;
	case MSR_FAM10H_MMIO_CONF_BASE:
		return data != 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}
