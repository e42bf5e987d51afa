// SPDX-License-Identifier: GPL-2.0
/*
 * Memory types, machine checks and the TPR reporting interfaces: the MTRRs
 * and PAT as userspace and the guest see them, the MCE banks set up with
 * KVM_X86_SETUP_MCE and filled with KVM_X86_SET_MCE (corrected errors, and
 * an uncorrected one that raises #MC in the guest), KVM_SET_VAPIC_ADDR, and
 * KVM_TPR_ACCESS_REPORTING with its KVM_EXIT_TPR_ACCESS exits.
 */
#include <sys/ioctl.h>

#include "apic.h"

#define MSR_MTRRCAP		0xfe
#define MSR_MTRR_PHYSBASE(n)	(0x200 + 2 * (n))
#define MSR_MTRR_PHYSMASK(n)	(0x201 + 2 * (n))
#define MSR_MTRR_FIX64K_00000	0x250
#define MSR_MTRR_FIX16K_80000	0x258
#define MSR_MTRR_FIX4K_F8000	0x26f
#define MSR_IA32_CR_PAT		0x277
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_MCG_CAP		0x179
#define MSR_MCG_STATUS		0x17a
#define MSR_MCG_CTL		0x17b
#define MSR_MC_CTL(i)		(0x400 + 4 * (i))
#define MSR_MC_STATUS(i)	(0x401 + 4 * (i))
#define MSR_MC_ADDR(i)		(0x402 + 4 * (i))
#define MSR_MC_MISC(i)		(0x403 + 4 * (i))

/* KVM's MTRRcap: 8 variable ranges, fixed ranges (bit 8), WC (bit 10). */
#define KVM_MTRRCAP		0x508ULL
#define PAT_DEFAULT		0x0007040600070406ULL
#define MTRR_WB_ALL		0x0606060606060606ULL

#define MCG_CTL_P		(1ULL << 8)
#define MCG_EXT_P		(1ULL << 9)
#define MCG_STATUS_RIPV		(1ULL << 0)
#define MCG_STATUS_EIPV		(1ULL << 1)
#define MCG_STATUS_MCIP		(1ULL << 2)
#define MCI_STATUS_VAL		(1ULL << 63)
#define MCI_STATUS_OVER		(1ULL << 62)
#define MCI_STATUS_UC		(1ULL << 61)
#define MCI_STATUS_EN		(1ULL << 60)
#define MCI_STATUS_MISCV	(1ULL << 59)
#define MCI_STATUS_ADDRV	(1ULL << 58)
#define KVM_MAX_MCE_BANKS	32

#define GP_VECTOR		13
#define MC_VECTOR		18
#define X86_CR4_MCE		(1ULL << 6)

/* The 11 fixed-range MTRRs. */
static const uint32_t fixed_mtrrs[] = {
	0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
};

#define NR_FIXED_MTRRS (sizeof(fixed_mtrrs) / sizeof(fixed_mtrrs[0]))

static int get_msr(struct kvm_vcpu *vcpu, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = index };
	int r = __vcpu_ioctl(vcpu, KVM_GET_MSRS, &m);

	*value = m.e.data;
	return r;
}

/* A refused write leaves the MSR as it was. */
static void assert_refused(struct kvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	uint64_t before = vcpu_get_msr(vcpu, index);
	int r = __vcpu_set_msr(vcpu, index, value);

	TEST_ASSERT(r == 0, "KVM_SET_MSRS %#x = %#" PRIx64 " returned %d, expected 0",
		    index, value, r);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, index), before);
}

static void assert_round_trip(struct kvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	vcpu_set_msr(vcpu, index, value);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, index), value);
}

TEST(supported_cpuid_bits)
{
	int kvm = open_kvm();
	struct kvm_cpuid2 *cpuid = kvm_get_supported_cpuid(kvm);
	struct kvm_cpuid_entry2 *leaf1 = cpuid_find(cpuid, 1, 0);

	TEST_ASSERT(leaf1, "no CPUID leaf 1");
	TEST_ASSERT(leaf1->edx & (1u << 7), "MCE in CPUID.1:EDX");
	TEST_ASSERT(leaf1->edx & (1u << 12), "MTRR in CPUID.1:EDX");
	TEST_ASSERT(leaf1->edx & (1u << 14), "MCA in CPUID.1:EDX");
	TEST_ASSERT(leaf1->edx & (1u << 16), "PAT in CPUID.1:EDX");
	free(cpuid);
}

TEST(mtrrcap_and_def_type)
{
	static const uint64_t bad[] = {
		0x1000, 0xc02, 0xc03, 0xc07, 0xc08, 0x106, 1ULL << 32,
	};
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);

	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRRCAP), KVM_MTRRCAP);
	/* MTRRcap is read-only, even to userspace. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_MTRRCAP, KVM_MTRRCAP), 0);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_MTRRCAP, 0), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRRCAP), KVM_MTRRCAP);

	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_DEF_TYPE), 0);
	assert_round_trip(vcpu, MSR_MTRR_DEF_TYPE, 0xc06);	/* E, FE, WB */
	assert_round_trip(vcpu, MSR_MTRR_DEF_TYPE, 0x800);	/* E, UC */
	assert_round_trip(vcpu, MSR_MTRR_DEF_TYPE, 0xc06);
	/* Reserved bits (bit 10, bit 12, bit 32), types 2, 3, 7 and 8. */
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_refused(vcpu, MSR_MTRR_DEF_TYPE, bad[i]);
	vm_free(vm);
}

TEST(mtrr_fixed_ranges)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);

	for (unsigned int i = 0; i < NR_FIXED_MTRRS; i++) {
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, fixed_mtrrs[i]), 0);
		assert_round_trip(vcpu, fixed_mtrrs[i], MTRR_WB_ALL);
		/* One byte with type 2 (reserved) spoils the write. */
		assert_refused(vcpu, fixed_mtrrs[i], 0x0606060206060606ULL);
		assert_refused(vcpu, fixed_mtrrs[i], 0x0706060606060606ULL);
		assert_round_trip(vcpu, fixed_mtrrs[i], 0x0001040506000105ULL);
	}
	/* Between the fixed ranges and beyond the 8 variable pairs. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, 0x251, 0), 0);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, 0x210, 0), 0);
	{
		uint64_t v;

		TEST_ASSERT_EQ(get_msr(vcpu, 0x210, &v), 0);
		TEST_ASSERT_EQ(get_msr(vcpu, 0x251, &v), 0);
	}
	vm_free(vm);
}

TEST(mtrr_variable_ranges)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0x80000008, 0);
	unsigned int maxphy;
	uint64_t phys_mask, base, mask;

	TEST_ASSERT(e, "no CPUID leaf 0x80000008");
	maxphy = e->eax & 0xff;
	TEST_ASSERT(maxphy > 32 && maxphy < 64, "MAXPHYADDR %u", maxphy);
	phys_mask = (1ULL << maxphy) - 1;
	for (int n = 0; n < 8; n++) {
		base = (0x80000000ULL + ((uint64_t)n << 28)) | 6;	/* WB */
		mask = (phys_mask & ~0xfffffffULL) | 0x800;		/* 256 MiB, valid */

		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_PHYSBASE(n)), 0);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_PHYSMASK(n)), 0);
		assert_round_trip(vcpu, MSR_MTRR_PHYSBASE(n), base);
		assert_round_trip(vcpu, MSR_MTRR_PHYSMASK(n), mask);
		/* The highest base MAXPHYADDR allows, each valid type. */
		assert_round_trip(vcpu, MSR_MTRR_PHYSBASE(n), (phys_mask & ~0xfffULL) | 1);
		assert_round_trip(vcpu, MSR_MTRR_PHYSBASE(n), base & ~0xffULL);	/* UC */
		assert_round_trip(vcpu, MSR_MTRR_PHYSBASE(n), (base & ~0xffULL) | 4);
		assert_round_trip(vcpu, MSR_MTRR_PHYSBASE(n), (base & ~0xffULL) | 5);
		assert_round_trip(vcpu, MSR_MTRR_PHYSBASE(n), base);

		/* Base: reserved bits 8-11 and above MAXPHYADDR, types 2, 3, 7, 8. */
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), base | 0x100);
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), base | 0x800);
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), base | (1ULL << maxphy));
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), base | (1ULL << 63));
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), (base & ~0xffULL) | 2);
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), (base & ~0xffULL) | 3);
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), (base & ~0xffULL) | 7);
		assert_refused(vcpu, MSR_MTRR_PHYSBASE(n), (base & ~0xffULL) | 8);
		/* Mask: reserved bits 0-10 and above MAXPHYADDR. */
		assert_refused(vcpu, MSR_MTRR_PHYSMASK(n), mask | 1);
		assert_refused(vcpu, MSR_MTRR_PHYSMASK(n), mask | 0x400);
		assert_refused(vcpu, MSR_MTRR_PHYSMASK(n), mask | (1ULL << maxphy));
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_PHYSBASE(n)), base);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_PHYSMASK(n)), mask);
	}
	/* Only 8 pairs: 0x210 is not an MTRR. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, 0x210, 6), 0);
	TEST_ASSERT_EQ(get_msr(vcpu, 0x210, &base), 0);
	vm_free(vm);
}

TEST(pat)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);

	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), PAT_DEFAULT);
	assert_round_trip(vcpu, MSR_IA32_CR_PAT, 0x0001050406070000ULL);
	assert_round_trip(vcpu, MSR_IA32_CR_PAT, PAT_DEFAULT);
	/* Types 2 and 3 are reserved, and so are bits 3-7 of each entry. */
	assert_refused(vcpu, MSR_IA32_CR_PAT, 0x0007040600070402ULL);
	assert_refused(vcpu, MSR_IA32_CR_PAT, 0x0307040600070406ULL);
	assert_refused(vcpu, MSR_IA32_CR_PAT, 0x0007040600070408ULL);
	assert_refused(vcpu, MSR_IA32_CR_PAT, 0x0007040600870406ULL);
	assert_refused(vcpu, MSR_IA32_CR_PAT, 0x1007040600070406ULL);
	vm_free(vm);
}

static void guest_mtrr_pat(void)
{
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRRCAP), KVM_MTRRCAP);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_MTRRCAP, KVM_MTRRCAP));

	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_DEF_TYPE), 0);
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_MTRR_DEF_TYPE, 0xc06));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_DEF_TYPE), 0xc06);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_MTRR_DEF_TYPE, 0xc02));
	GUEST_ASSERT(guest_wrmsr_faults(MSR_MTRR_DEF_TYPE, 0x1c06));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_DEF_TYPE), 0xc06);

	GUEST_ASSERT(!guest_wrmsr_faults(MSR_MTRR_FIX4K_F8000, MTRR_WB_ALL));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_FIX4K_F8000), MTRR_WB_ALL);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_MTRR_FIX4K_F8000, 0x0206060606060606ULL));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_FIX4K_F8000), MTRR_WB_ALL);

	GUEST_ASSERT(!guest_wrmsr_faults(MSR_MTRR_PHYSBASE(7), 0x80000006));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_PHYSBASE(7)), 0x80000006);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_MTRR_PHYSMASK(7), 0x801));
	GUEST_ASSERT(guest_rdmsr_faults(0x210));
	GUEST_ASSERT(guest_wrmsr_faults(0x210, 0));

	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_CR_PAT), PAT_DEFAULT);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_IA32_CR_PAT, 0x0007040600070403ULL));
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_IA32_CR_PAT, 0x0006040600070406ULL));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_CR_PAT), 0x0006040600070406ULL);
	GUEST_ASSERT_EQ(guest_msr_gp_count, 8);
}

TEST(mtrr_pat_guest)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_mtrr_pat);

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	vcpu_run_until_done(vcpu);
	/* What the guest wrote is what userspace saves. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_DEF_TYPE), 0xc06);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_FIX4K_F8000), MTRR_WB_ALL);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MTRR_PHYSBASE(7)), 0x80000006);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), 0x0006040600070406ULL);
	vm_free(vm);
}

static int setup_mce(struct kvm_vcpu *vcpu, uint64_t mcg_cap)
{
	return __vcpu_ioctl(vcpu, KVM_X86_SETUP_MCE, &mcg_cap);
}

static int set_mce(struct kvm_vcpu *vcpu, uint8_t bank, uint64_t status, uint64_t addr,
		   uint64_t misc, uint64_t mcg_status)
{
	struct kvm_x86_mce mce = {
		.status = status, .addr = addr, .misc = misc, .mcg_status = mcg_status,
		.bank = bank,
	};

	return __vcpu_ioctl(vcpu, KVM_X86_SET_MCE, &mce);
}

TEST(mce_capabilities)
{
	int kvm = open_kvm();
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	uint64_t supported = 0;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_MCE), KVM_MAX_MCE_BANKS);
	TEST_ASSERT_EQ(ioctl(kvm, KVM_X86_GET_MCE_CAP_SUPPORTED, &supported), 0);
	TEST_ASSERT(supported & MCG_CTL_P, "MCG_CTL_P supported: %#" PRIx64, supported);
	/* Before KVM_X86_SETUP_MCE: 32 banks, no MCG_CTL. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_CAP), KVM_MAX_MCE_BANKS);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_STATUS), 0);

	TEST_ASSERT_ERRNO(setup_mce(vcpu, MCG_CTL_P | 0), EINVAL);
	TEST_ASSERT_ERRNO(setup_mce(vcpu, MCG_CTL_P | (KVM_MAX_MCE_BANKS + 1)), EINVAL);
	TEST_ASSERT_ERRNO(setup_mce(vcpu, MCG_EXT_P | 10), EINVAL);
	TEST_ASSERT_ERRNO(setup_mce(vcpu, (1ULL << 32) | 10), EINVAL);
	/* Nothing changed. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_CAP), KVM_MAX_MCE_BANKS);
	TEST_ASSERT_EQ(setup_mce(vcpu, KVM_MAX_MCE_BANKS), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_CAP), KVM_MAX_MCE_BANKS);
	vm_free(vm);
}

TEST(mce_banks)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	uint64_t v;

	TEST_ASSERT_EQ(setup_mce(vcpu, MCG_CTL_P | 10), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_CAP), MCG_CTL_P | 10);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_CTL), ~0ULL);
	for (int i = 0; i < 10; i++) {
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_CTL(i)), ~0ULL);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(i)), 0);
	}
	TEST_ASSERT_EQ(get_msr(vcpu, MSR_MC_CTL(10), &v), 0);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_MC_CTL(10), ~0ULL), 0);

	/* MCi_CTL: 0 or all ones, where bits 10 and 0 may be clear (old guests' workarounds). */
	assert_round_trip(vcpu, MSR_MC_CTL(4), 0);
	assert_round_trip(vcpu, MSR_MC_CTL(4), ~(1ULL << 10));
	assert_round_trip(vcpu, MSR_MC_CTL(4), ~1ULL);
	assert_round_trip(vcpu, MSR_MC_CTL(4), ~0ULL);
	assert_refused(vcpu, MSR_MC_CTL(4), 0x1234);
	assert_refused(vcpu, MSR_MC_CTL(4), ~(1ULL << 11));
	/* MCG_CTL: 0 or all ones. */
	assert_refused(vcpu, MSR_MCG_CTL, 5);
	assert_round_trip(vcpu, MSR_MCG_CTL, 0);
	assert_round_trip(vcpu, MSR_MCG_CTL, ~0ULL);
	/* Userspace restores the status registers as saved. */
	assert_round_trip(vcpu, MSR_MC_STATUS(9), MCI_STATUS_VAL | 0x17);
	assert_round_trip(vcpu, MSR_MC_ADDR(9), 0x12345000);
	assert_round_trip(vcpu, MSR_MC_MISC(9), 0x86);
	vm_free(vm);
}

TEST(set_mce_corrected)
{
	const uint64_t status = MCI_STATUS_VAL | MCI_STATUS_EN | MCI_STATUS_ADDRV |
				MCI_STATUS_MISCV | 0x9a;
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);

	TEST_ASSERT_EQ(setup_mce(vcpu, MCG_CTL_P | 10), 0);
	TEST_ASSERT_ERRNO(set_mce(vcpu, 10, status, 0, 0, 0), EINVAL);
	TEST_ASSERT_ERRNO(set_mce(vcpu, 200, status, 0, 0, 0), EINVAL);
	TEST_ASSERT_ERRNO(set_mce(vcpu, 2, status & ~MCI_STATUS_VAL, 0, 0, 0), EINVAL);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(2)), 0);

	TEST_ASSERT_EQ(set_mce(vcpu, 2, status, 0x1000, 0x1234, 0), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(2)), status);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_ADDR(2)), 0x1000);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_MISC(2)), 0x1234);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_STATUS), 0);
	/* A second corrected error overwrites the first and says so. */
	TEST_ASSERT_EQ(set_mce(vcpu, 2, status, 0x2000, 0x1034, 0), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(2)), status | MCI_STATUS_OVER);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_ADDR(2)), 0x2000);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_MISC(2)), 0x1034);
	/* Other banks are untouched. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(1)), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(3)), 0);
	vm_free(vm);
}

static volatile uint64_t mc_count, mc_rip, mc_mcg_status, mc_bank_status;

static void mc_handler(struct ex_regs *regs)
{
	mc_count++;
	mc_rip = regs->rip;
	mc_mcg_status = guest_rdmsr(MSR_MCG_STATUS);
	mc_bank_status = guest_rdmsr(MSR_MC_STATUS(2));
}

static void guest_machine_check(void)
{
	uint64_t cr4;

	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	asm volatile("mov %0, %%cr4" :: "r"(cr4 | X86_CR4_MCE));
	GUEST_SYNC(1);
	/* The #MC was taken right after the ucall's exit. */
	GUEST_ASSERT_EQ(mc_count, 1);
	GUEST_SYNC_ARGS(2, mc_mcg_status, mc_bank_status, 0);
}

TEST(set_mce_uncorrected_raises_mc)
{
	const uint64_t status = MCI_STATUS_VAL | MCI_STATUS_UC | MCI_STATUS_EN |
				MCI_STATUS_ADDRV | 0x134;
	const uint64_t mcg_status = MCG_STATUS_MCIP | MCG_STATUS_EIPV | MCG_STATUS_RIPV;
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_machine_check);
	struct kvm_sregs sregs;
	struct ucall uc;

	vm_install_exception_handler(vm, MC_VECTOR, mc_handler);
	TEST_ASSERT_EQ(setup_mce(vcpu, MCG_CTL_P | 10), 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT(sregs.cr4 & X86_CR4_MCE, "guest set CR4.MCE: cr4 %#llx", sregs.cr4);

	TEST_ASSERT_EQ(set_mce(vcpu, 2, status, 0x3000, 0, mcg_status), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_STATUS), mcg_status);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_STATUS(2)), status);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MC_ADDR(2)), 0x3000);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], mcg_status);
	TEST_ASSERT_EQ(uc.args[2], status);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_MCG_STATUS), mcg_status);
	vm_free(vm);
}

TEST(vapic_addr)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	struct kvm_vapic_addr va = { .vapic_addr = 0x10000 };

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_VAPIC), 1);
	/* Without an in-kernel local APIC there is nothing to sync the TPR with. */
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VAPIC_ADDR, &va), EINVAL);
	vm_free(vm);

	vm = vm_create_irqchip();
	vcpu = vm_vcpu_add(vm, 0, NULL);
	va.vapic_addr = 0;
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_SET_VAPIC_ADDR, &va), 0);
	va.vapic_addr = 0x10000;
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_SET_VAPIC_ADDR, &va), 0);
	va.vapic_addr = 0x80000000;	/* beyond the 64 MiB of slot 0 */
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VAPIC_ADDR, &va), EINVAL);
	va.vapic_addr = 0;
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_SET_VAPIC_ADDR, &va), 0);
	vm_free(vm);
}

/* The TPR accesses, at addresses the host compares with run->tpr_access.rip. */
extern char tpr_write_insn[], tpr_read_insn[];

static void __attribute__((noinline)) guest_tpr_access(void)
{
	uint32_t v;

	asm volatile(".globl tpr_write_insn\n"
		     "tpr_write_insn: movl %1, (%0)"
		     :: "r"(APIC_GPA + APIC_TPR), "r"(0x50) : "memory");
	asm volatile(".globl tpr_read_insn\n"
		     "tpr_read_insn: movl (%1), %0"
		     : "=r"(v) : "r"(APIC_GPA + APIC_TPR) : "memory");
	GUEST_SYNC_ARGS(1, v, 0, 0);
}

TEST(tpr_access_reporting)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_tpr_access);
	struct kvm_tpr_access_ctl tac = { .enabled = 1, .flags = 1 };
	struct ucall uc;

	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_TPR_ACCESS_REPORTING, &tac), EINVAL);
	tac.flags = 0;
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_TPR_ACCESS_REPORTING, &tac), 0);

	/* The write is done, then KVM_RUN returns before the next instruction. */
	TEST_ASSERT_EQ(__vcpu_run(vcpu), 0);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_TPR_ACCESS);
	TEST_ASSERT_EQ(vcpu->run->tpr_access.is_write, 1);
	TEST_ASSERT_EQ(vcpu->run->tpr_access.rip, (uint64_t)tpr_write_insn);
	TEST_ASSERT_EQ(__vcpu_run(vcpu), 0);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_TPR_ACCESS);
	TEST_ASSERT_EQ(vcpu->run->tpr_access.is_write, 0);
	TEST_ASSERT_EQ(vcpu->run->tpr_access.rip, (uint64_t)tpr_read_insn);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x50);

	/* Disabled again: no more exits. */
	tac.enabled = 0;
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_TPR_ACCESS_REPORTING, &tac), 0);
	vcpu_restart(vcpu, guest_tpr_access);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x50);
	vm_free(vm);
}
