// SPDX-License-Identifier: GPL-2.0
/*
 * Memory type range registers (SDM vol. 3 11.11): MTRRcap, MTRRdefType, the
 * eleven fixed-range MSRs and eight variable pairs.  With nested paging the
 * memory type comes from the host's tables and the guest's PAT, so the
 * guest's MTRRs only need to hold what it writes and refuse what the
 * hardware refuses: firmware and Linux program them, and a VMM saves and
 * restores them (QEMU does so whenever CPUID has MTRR).
 */
#include <linux/kernel.h>
#include <linux/nospec.h>
#include <asm/msr-index.h>
#include <asm/mtrr.h>

#include <minikvm/core.h>

/* MTRRcap (SDM 11.11.1): VCNT variable pairs, FIX (bit 8), WC (bit 10), no SMRR. */
#define MTRR_CAP (BIT_ULL(10) | BIT_ULL(8) | MKVM_NR_VAR_MTRR)
/* MTRRdefType: type in bits 0-7, FE (bit 10), E (bit 11); the rest is reserved. */
#define MTRR_DEF_TYPE_OK 0xcffULL

/* UC, WC, WT, WP and WB; 2, 3 and 7 and up are reserved (SDM table 11-8). */
static bool type_valid(u64 t)
{
	return t < 8 && (BIT(t) & 0x73);
}

/**
 * mkvm_pat_valid() - a PAT value the processor accepts (SDM vol. 3 11.12.2)
 * @pat: the value
 *
 * Return: true when each of its eight bytes is a memory type.
 */
bool mkvm_pat_valid(u64 pat)
{
	/* The MTRRs' types and UC- (7), which only PAT has. */
	for (int i = 0; i < 8; i++) {
		u8 t = pat >> (8 * i);

		if (t != 7 && !type_valid(t))
			return false;
	}
	return true;
}

/* Index into mtrr.fixed[] of a fixed-range MSR, or -1 (SDM table 11-9). */
static int fixed_index(u32 msr)
{
	switch (msr) {
	case MSR_MTRRfix64K_00000:
		return 0;
	case MSR_MTRRfix16K_80000:
	case MSR_MTRRfix16K_A0000:
		return 1 + msr - MSR_MTRRfix16K_80000;
	case MSR_MTRRfix4K_C0000 ... MSR_MTRRfix4K_F8000:
		return 3 + msr - MSR_MTRRfix4K_C0000;
	default:
		return -1;
	}
}

static bool is_var(u32 msr)
{
	return msr >= MTRRphysBase_MSR(0) && msr < MTRRphysBase_MSR(MKVM_NR_VAR_MTRR);
}

/**
 * mkvm_mtrr_is_msr() - whether an MSR is one this file handles
 * @msr: MSR number
 *
 * Return: true for MTRRcap, MTRRdefType, a fixed range or a variable pair.
 */
bool mkvm_mtrr_is_msr(u32 msr)
{
	return msr == MSR_MTRRcap || msr == MSR_MTRRdefType || fixed_index(msr) >= 0 ||
	       is_var(msr);
}

static bool valid(struct mkvm_vcpu *vcpu, u32 msr, u64 data)
{
	u64 reserved = GENMASK_ULL(63, mkvm_guest_maxphyaddr(vcpu));
	int i;

	if (msr == MSR_MTRRdefType)
		return !(data & ~MTRR_DEF_TYPE_OK) && type_valid(data & 0xff);
	if (fixed_index(msr) >= 0) {
		/* Eight one-byte types, each for its own sub-range. */
		for (i = 0; i < 64; i += 8)
			if (!type_valid((data >> i) & 0xff))
				return false;
		return true;
	}
	/* PhysBase: type in 0-7, 8-11 reserved; PhysMask: 0-10 reserved, V in bit 11. */
	if (!(msr & 1))
		return type_valid(data & 0xff) && !(data & (reserved | 0xf00));
	return !(data & (reserved | 0x7ff));
}

/**
 * mkvm_mtrr_get_msr() - read an MTRR
 * @vcpu: the vCPU
 * @msr: MSR number
 * @data: the value
 *
 * Return: 0, or 1 when @msr is not an MTRR.
 */
int mkvm_mtrr_get_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 *data)
{
	struct mkvm_mtrr *m = &vcpu->arch.mtrr;
	int i = fixed_index(msr);

	if (msr == MSR_MTRRcap)
		*data = MTRR_CAP;
	else if (msr == MSR_MTRRdefType)
		*data = m->def_type;
	else if (i >= 0)
		*data = m->fixed[array_index_nospec(i, ARRAY_SIZE(m->fixed))];
	else if (is_var(msr))
		*data = m->var[array_index_nospec(msr - MTRRphysBase_MSR(0), ARRAY_SIZE(m->var))];
	else
		return 1;
	return 0;
}

/**
 * mkvm_mtrr_set_msr() - write an MTRR
 * @vcpu: the vCPU
 * @msr: MSR number
 * @data: the value
 *
 * MTRRcap is read-only, for the guest and for userspace alike, as in KVM.
 *
 * Return: 0; 1 when @msr is not a writable MTRR or @data sets reserved bits
 * or a reserved memory type (a #GP for the guest).
 */
int mkvm_mtrr_set_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 data)
{
	struct mkvm_mtrr *m = &vcpu->arch.mtrr;
	int i = fixed_index(msr);

	if (msr == MSR_MTRRcap || !mkvm_mtrr_is_msr(msr) || !valid(vcpu, msr, data))
		return 1;
	if (msr == MSR_MTRRdefType)
		m->def_type = data;
	else if (i >= 0)
		m->fixed[array_index_nospec(i, ARRAY_SIZE(m->fixed))] = data;
	else
		m->var[array_index_nospec(msr - MTRRphysBase_MSR(0), ARRAY_SIZE(m->var))] = data;
	return 0;
}
