// SPDX-License-Identifier: GPL-2.0
/*
 * Machine-check architecture (SDM vol. 3 chapter 15, APM vol. 2 chapter 9):
 * the global MCG MSRs, the error-reporting banks (MCi_CTL, _STATUS, _ADDR,
 * _MISC), KVM_X86_SETUP_MCE to choose how many banks a vCPU has and
 * KVM_X86_SET_MCE to report an error, as a VMM does when the host's memory
 * under the guest fails.  No error ever arises inside minikvm itself.
 */
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/mce.h>
#include <asm/msr-index.h>
#include <asm/trapnr.h>

#include <minikvm/core.h>

/* The MCG_CAP bits a VMM may ask for besides the bank count: KVM's on AMD. */
#define MCG_CAP_SUPPORTED (MCG_CTL_P | MCG_SER_P)
/* MCG_CAP bits 16-23 (extended register count) are accepted and mean nothing. */
#define MCG_CAP_IGNORED 0xff0000ULL
/* HWCR.McStatusWrEn (APM vol. 2 9.3.4): non-zero MCi_STATUS writes allowed. */
#define HWCR_MC_STATUS_WR_EN BIT_ULL(18)

/**
 * mkvm_mce_reset() - the machine-check state of a new vCPU
 * @vcpu: the vCPU
 *
 * As in KVM, every bank exists until KVM_X86_SETUP_MCE says otherwise, with
 * reporting off (MCi_CTL zero) and no MCG_CTL.
 */
void mkvm_mce_reset(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.mce.cap = MKVM_MCE_BANKS;
}

static unsigned int nr_banks(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.mce.cap & 0xff;
}

/**
 * mkvm_mce_get_msr() - read a machine-check MSR
 * @vcpu: the vCPU
 * @msr: MSR number
 * @data: the value
 * @host: read by KVM_GET_MSRS
 *
 * Return: 0, MKVM_MSR_UNKNOWN for an MSR that is not the machine-check
 * architecture's, 1 for a bank the vCPU does not have.
 */
int mkvm_mce_get_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 *data, bool host)
{
	struct mkvm_mce *m = &vcpu->arch.mce;
	u32 end = MSR_IA32_MCx_CTL(nr_banks(vcpu));

	switch (msr) {
	/* The Pentium's machine-check MSRs read as zero (SDM 15.10.2). */
	case MSR_IA32_P5_MC_ADDR:
	case MSR_IA32_P5_MC_TYPE:
		*data = 0;
		return 0;
	case MSR_IA32_MCG_CAP:
		*data = m->cap;
		return 0;
	case MSR_IA32_MCG_CTL:
		if (!(m->cap & MCG_CTL_P) && !host)
			return 1;
		*data = m->ctl;
		return 0;
	case MSR_IA32_MCG_STATUS:
		*data = m->status;
		return 0;
	case MSR_IA32_MC0_CTL ... MSR_IA32_MCx_CTL(MKVM_MCE_BANKS) - 1:
		if (msr >= end)
			return 1;
		*data = m->banks[array_index_nospec(msr - MSR_IA32_MC0_CTL,
						    end - MSR_IA32_MC0_CTL)];
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_mce_set_msr() - write a machine-check MSR
 * @vcpu: the vCPU
 * @msr: MSR number
 * @data: the value
 * @host: written by KVM_SET_MSRS
 *
 * MCG_CAP is read-only (KVM_X86_SETUP_MCE sets it).  MCi_CTL takes 0 or all
 * ones, less bit 10 (Linux clears it in bank 4 on K8) or bit 0; a guest
 * writes a non-zero MCi_STATUS only with HWCR.McStatusWrEn on an AMD CPU.
 *
 * Return: 0, MKVM_MSR_UNKNOWN for another MSR, 1 for a refused value.
 */
int mkvm_mce_set_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 data, bool host)
{
	struct mkvm_mce *m = &vcpu->arch.mce;
	u32 end = MSR_IA32_MCx_CTL(nr_banks(vcpu));
	u32 off;

	switch (msr) {
	case MSR_IA32_MCG_STATUS:
		m->status = data;
		return 0;
	case MSR_IA32_MCG_CTL:
		if (!(m->cap & MCG_CTL_P) && (data || !host))
			return 1;
		if (data && data != ~0ULL)
			return 1;
		m->ctl = data;
		return 0;
	case MSR_IA32_MC0_CTL ... MSR_IA32_MCx_CTL(MKVM_MCE_BANKS) - 1:
		if (msr >= end)
			return 1;
		off = msr - MSR_IA32_MC0_CTL;
		if (off % 4 == 0 && data && (data | BIT_ULL(10) | 1) != ~0ULL)
			return 1;
		if (off % 4 == 1 && data && !host &&
		    !(vcpu->arch.amd_guest && (vcpu->arch.hwcr & HWCR_MC_STATUS_WR_EN)))
			return 1;
		m->banks[array_index_nospec(off, end - MSR_IA32_MC0_CTL)] = data;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_dev_get_mce_cap_supported() - KVM_X86_GET_MCE_CAP_SUPPORTED
 * @arg: where the u64 goes
 *
 * Return: 0 or -EFAULT.
 */
int mkvm_dev_get_mce_cap_supported(u64 __user *arg)
{
	u64 cap = MCG_CAP_SUPPORTED;

	return copy_to_user(arg, &cap, sizeof(cap)) ? -EFAULT : 0;
}

static int setup_mce(struct mkvm_vcpu *vcpu, u64 __user *arg)
{
	struct mkvm_mce *m = &vcpu->arch.mce;
	unsigned int n, i;
	u64 cap;

	if (copy_from_user(&cap, arg, sizeof(cap)))
		return -EFAULT;
	n = cap & 0xff;
	if (!n || n > MKVM_MCE_BANKS || cap & ~(MCG_CAP_SUPPORTED | MCG_CAP_IGNORED | 0xff))
		return -EINVAL;
	m->cap = cap;
	/* Reporting on: MCG_CTL and every MCi_CTL all ones (SDM 15.8). */
	if (cap & MCG_CTL_P)
		m->ctl = ~0ULL;
	for (i = 0; i < n; i++)
		m->banks[4 * i] = ~0ULL;
	return 0;
}

/*
 * Report an error in a bank (SDM 15.3.2.2): an uncorrected one raises #MC
 * if reporting is on, or shuts the CPU down when a machine check is already
 * in progress or CR4.MCE is clear (SDM 15.10.1); a corrected one only fills
 * the bank, and marks an overflow when the bank already held an error.
 */
static int set_mce(struct mkvm_vcpu *vcpu, struct kvm_x86_mce __user *arg)
{
	struct mkvm_mce *m = &vcpu->arch.mce;
	struct kvm_x86_mce e;
	struct kvm_sregs s;
	u64 *bank;

	if (copy_from_user(&e, arg, sizeof(e)))
		return -EFAULT;
	if (e.bank >= nr_banks(vcpu) || !(e.status & MCI_STATUS_VAL))
		return -EINVAL;
	bank = &m->banks[array_index_nospec(4 * e.bank, 4 * nr_banks(vcpu))];
	if (e.status & MCI_STATUS_UC) {
		if (((m->cap & MCG_CTL_P) && m->ctl != ~0ULL) || bank[0] != ~0ULL)
			return 0;	/* reporting of uncorrected errors is off */
		mkvm_x86->get_sregs(vcpu, &s);
		if ((m->status & MCG_STATUS_MCIP) || !(s.cr4 & X86_CR4_MCE)) {
			vcpu->arch.shutdown_pending = true;
			return 0;
		}
		if (bank[1] & MCI_STATUS_VAL)
			e.status |= MCI_STATUS_OVER;
		bank[2] = e.addr;
		bank[3] = e.misc;
		m->status = e.mcg_status;
		bank[1] = e.status;
		mkvm_queue_exception(vcpu, X86_TRAP_MC, false, 0);
	} else if (!(bank[1] & MCI_STATUS_VAL) || !(bank[1] & MCI_STATUS_UC)) {
		/* A corrected error never overwrites an uncorrected one. */
		if (bank[1] & MCI_STATUS_VAL)
			e.status |= MCI_STATUS_OVER;
		bank[2] = e.addr;
		bank[3] = e.misc;
		bank[1] = e.status;
	} else {
		bank[1] |= MCI_STATUS_OVER;
	}
	return 0;
}

/**
 * mkvm_mce_vcpu_ioctl() - KVM_X86_SETUP_MCE and KVM_X86_SET_MCE
 * @vcpu: the vCPU
 * @ioctl: which
 * @argp: the user's argument
 *
 * Return: 0, -EINVAL for a bank count or MCG_CAP bits minikvm does not
 * support or an invalid error, -EFAULT.
 */
long mkvm_mce_vcpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp)
{
	return ioctl == KVM_X86_SETUP_MCE ? setup_mce(vcpu, argp) : set_mce(vcpu, argp);
}
