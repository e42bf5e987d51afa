// SPDX-License-Identifier: GPL-2.0
/*
 * Model-specific MSRs that a Linux guest touches on AMD, the feature MSRs
 * of /dev/kvm, and the save list: each MSR as the guest sees it (value,
 * #GP or ignored write) and as userspace saves and restores it.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define MSR_IA32_TSC_ADJUST 0x3b
#define MSR_IA32_UCODE_REV 0x8b
#define MSR_K8_SYSCFG 0xc0010010
#define MSR_K7_HWCR 0xc0010015
#define MSR_AMD64_NB_CFG 0xc001001f
#define MSR_K8_INT_PENDING_MSG 0xc0010055
#define MSR_FAM10H_MMIO_CONF_BASE 0xc0010058
#define MSR_AMD64_DE_CFG 0xc0011029
#define MSR_AMD64_BU_CFG2 0xc001102a
#define MSR_KVM_WALL_CLOCK 0x11
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define GP_VECTOR 13
/* KVM's microcode revision for a new vCPU: kvm_amd's, kvm_intel's. */
#define UCODE_REV_DEFAULT_AMD 0x01000065ULL
#define UCODE_REV_DEFAULT_INTEL 0x100000000ULL

/* KVM_GET_MSRS on /dev/kvm for one MSR: returns how many were read (0 or 1). */
static int get_feature_msr(int kvm, uint32_t index, uint64_t *value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = index };
	int r = ioctl(kvm, KVM_GET_MSRS, &m);

	*value = m.e.data;
	return r;
}

static bool listed(struct kvm_msr_list *list, uint32_t index)
{
	for (uint32_t i = 0; i < list->nmsrs; i++)
		if (list->indices[i] == index)
			return true;
	return false;
}

TEST(feature_msrs)
{
	int kvm = open_kvm();
	struct kvm_msr_list *list;
	uint64_t v;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_GET_MSR_FEATURES), 1);
	list = kvm_get_msr_list(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST);
	TEST_ASSERT(listed(list, MSR_IA32_UCODE_REV), "UCODE_REV is a feature MSR");
	if (host_cpu_is_intel()) {
		/* AMD's DE_CFG does not exist for kvm_intel. */
		TEST_ASSERT(!listed(list, MSR_AMD64_DE_CFG), "DE_CFG is a feature MSR on Intel");
		TEST_ASSERT_EQ(get_feature_msr(kvm, MSR_AMD64_DE_CFG, &v), 0);
	} else {
		TEST_ASSERT(listed(list, MSR_AMD64_DE_CFG), "DE_CFG is a feature MSR");
		TEST_ASSERT_EQ(get_feature_msr(kvm, MSR_AMD64_DE_CFG, &v), 1);
		/* Only LFENCE-serializing (bit 1) is ever offered. */
		TEST_ASSERT_EQ(v & ~2ULL, 0);
	}
	TEST_ASSERT_EQ(get_feature_msr(kvm, MSR_IA32_UCODE_REV, &v), 1);
	/* An MSR that is not a feature MSR stops the batch at once. */
	TEST_ASSERT_EQ(get_feature_msr(kvm, 0x10, &v), 0);
	free(list);
}

/* What userspace must save is listed, and restores with its own value. */
TEST(saved_msrs_round_trip)
{
	static const uint32_t msrs[] = {
		MSR_IA32_TSC_ADJUST, MSR_IA32_UCODE_REV, MSR_K7_HWCR, MSR_KVM_WALL_CLOCK,
		MSR_KVM_SYSTEM_TIME, MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_SYSTEM_TIME_NEW,
	};
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	struct kvm_msr_list *list = kvm_get_msr_list(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST);

	for (unsigned int i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
		uint64_t v = vcpu_get_msr(vcpu, msrs[i]);

		TEST_ASSERT(listed(list, msrs[i]), "MSR %#x is in KVM_GET_MSR_INDEX_LIST", msrs[i]);
		vcpu_set_msr(vcpu, msrs[i], v);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, msrs[i]), v);
	}
	free(list);
	vm_free(vm);
}

static void guest_ucode_rev(void)
{
	GUEST_SYNC_ARGS(1, guest_rdmsr(MSR_IA32_UCODE_REV), 0, 0);
	/* A request to load microcode: ignored, no #GP. */
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_IA32_UCODE_REV, 0));
	GUEST_SYNC_ARGS(2, guest_rdmsr(MSR_IA32_UCODE_REV), 0, 0);
}

TEST(ucode_rev)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_ucode_rev);
	struct ucall uc;

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_UCODE_REV),
		       host_cpu_is_intel() ? UCODE_REV_DEFAULT_INTEL : UCODE_REV_DEFAULT_AMD);
	vcpu_set_msr(vcpu, MSR_IA32_UCODE_REV, 0x0a001234);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x0a001234);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x0a001234);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_UCODE_REV), 0x0a001234);
	vm_free(vm);
}

/* What a Linux guest does at boot on AMD: set DE_CFG's LFENCE bit, read-modify-write. */
static void guest_de_cfg(uint64_t offered)
{
	uint64_t v = guest_rdmsr(MSR_AMD64_DE_CFG);

	GUEST_ASSERT_EQ(v, 0);
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_AMD64_DE_CFG, offered));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_AMD64_DE_CFG), offered);
	/* The guest may not take a bit back, nor set one not offered. */
	GUEST_ASSERT_EQ(guest_wrmsr_faults(MSR_AMD64_DE_CFG, 0), offered != 0);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_AMD64_DE_CFG, offered | (1ULL << 9)));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_AMD64_DE_CFG), offered);
}

/* On Intel, DE_CFG is an MSR KVM does not know: #GP in the guest, refused to userspace. */
static void guest_de_cfg_intel(void)
{
	GUEST_ASSERT(guest_rdmsr_faults(MSR_AMD64_DE_CFG));
	GUEST_ASSERT(guest_wrmsr_faults(MSR_AMD64_DE_CFG, 2));
}

TEST(de_cfg)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu;
	struct kvm_msr_list *list;
	uint64_t offered;

	if (host_cpu_is_intel()) {
		list = kvm_get_msr_list(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST);
		TEST_ASSERT(!listed(list, MSR_AMD64_DE_CFG), "DE_CFG is to be saved on Intel");
		free(list);
		vcpu = vm_vcpu_add(vm, 0, guest_de_cfg_intel);
		vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
		vcpu_run_until_done(vcpu);
		TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_AMD64_DE_CFG, 0), 0);
		vm_free(vm);
		return;
	}
	vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_de_cfg);

	TEST_ASSERT_EQ(get_feature_msr(vm->kvm_fd, MSR_AMD64_DE_CFG, &offered), 1);
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	vcpu_args_set(vcpu, 1, offered);
	vcpu_run_until_done(vcpu);
	/* Userspace may clear it, not set what is not offered. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_AMD64_DE_CFG, 0), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_AMD64_DE_CFG), 0);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_AMD64_DE_CFG, 1ULL << 9), 0);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_AMD64_DE_CFG, offered), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_AMD64_DE_CFG), offered);
	vm_free(vm);
}

static void guest_hwcr(void)
{
	const uint64_t mc_status_wr_en = 1ULL << 18;

	GUEST_ASSERT_EQ(guest_rdmsr(MSR_K7_HWCR), 0);
	/* TLB-cache, flush-filter and IGNNE bits are accepted and dropped. */
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_K7_HWCR, (1 << 3) | (1 << 6) | (1 << 8)));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_K7_HWCR), 0);
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_K7_HWCR, mc_status_wr_en | (1 << 3)));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_K7_HWCR), mc_status_wr_en);
	/* KVM keeps McStatusWrEn when 0 is written. */
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_K7_HWCR, 0));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_K7_HWCR), mc_status_wr_en);
	GUEST_ASSERT(guest_wrmsr_faults(MSR_K7_HWCR, 1));
	GUEST_ASSERT(guest_wrmsr_faults(MSR_K7_HWCR, mc_status_wr_en | (1 << 24)));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_K7_HWCR), mc_status_wr_en);
}

TEST(hwcr)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_hwcr);

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	vcpu_run_until_done(vcpu);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_K7_HWCR), 1ULL << 18);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_K7_HWCR, 1ULL << 24), 0);
	vm_free(vm);
}

/* Northbridge and system configuration MSRs: zero, with KVM's mix of ignored and #GP writes. */
static void guest_zero_msrs(void)
{
	static const uint32_t zero[] = {
		MSR_K8_SYSCFG, MSR_AMD64_NB_CFG, MSR_K8_INT_PENDING_MSG,
		MSR_FAM10H_MMIO_CONF_BASE, MSR_AMD64_BU_CFG2,
	};

	for (unsigned int i = 0; i < sizeof(zero) / sizeof(zero[0]); i++)
		GUEST_ASSERT_EQ(guest_rdmsr(zero[i]), 0);
	GUEST_ASSERT_EQ(guest_msr_gp_count, 0);
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_AMD64_NB_CFG, 1ULL << 46));
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_AMD64_BU_CFG2, 1ULL << 50));
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_FAM10H_MMIO_CONF_BASE, 0));
	GUEST_ASSERT(guest_wrmsr_faults(MSR_FAM10H_MMIO_CONF_BASE, 0xe0000001));
	GUEST_ASSERT(guest_wrmsr_faults(MSR_K8_SYSCFG, 1ULL << 18));
	GUEST_ASSERT(guest_wrmsr_faults(MSR_K8_INT_PENDING_MSG, 1));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_AMD64_NB_CFG), 0);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_AMD64_BU_CFG2), 0);
}

TEST(read_as_zero_msrs)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_zero_msrs);

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	vcpu_run_until_done(vcpu);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_K8_SYSCFG), 0);
	vm_free(vm);
}

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_PMU_RO 0x1800	/* BTS and PEBS unavailable */

static void guest_misc_enable(void)
{
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_MISC_ENABLE), MISC_ENABLE_PMU_RO);
	/* Fast strings may be set; EMON (bit 7) is read-only and the write to it dropped. */
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_IA32_MISC_ENABLE, MISC_ENABLE_PMU_RO | 0x81));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_MISC_ENABLE), MISC_ENABLE_PMU_RO | 1);
	/* The PMU bits cannot change. */
	GUEST_ASSERT(guest_wrmsr_faults(MSR_IA32_MISC_ENABLE, 1));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_MISC_ENABLE), MISC_ENABLE_PMU_RO | 1);
}

TEST(misc_enable)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_misc_enable);

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_MISC_ENABLE), MISC_ENABLE_PMU_RO);
	vcpu_run_until_done(vcpu);
	/* Userspace restores whatever was saved. */
	vcpu_set_msr(vcpu, MSR_IA32_MISC_ENABLE, 0x80);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_MISC_ENABLE), 0x80);
	vm_free(vm);
}
