// SPDX-License-Identifier: GPL-2.0
/*
 * The values KVM refuses for architectural MSRs (KVM 6.1, __kvm_set_msr()
 * and set_efer()): a non-canonical FS/GS base, KERNEL_GS_BASE, LSTAR or
 * CSTAR, from the guest (#GP) and from userspace (KVM_SET_MSRS stops
 * there); the guest's EFER writes, which may set only the bits its CPUID
 * offers, may not change LME while paging is on, and never change LMA.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
#define GP_VECTOR		13

#define EFER_SCE		(1ULL << 0)
#define EFER_LME		(1ULL << 8)
#define EFER_LMA		(1ULL << 10)
#define EFER_NX			(1ULL << 11)
#define EFER_SVME		(1ULL << 12)
#define EFER_FFXSR		(1ULL << 14)

/* CPUID 0x80000001 EDX */
#define EXT1_SYSCALL		(1u << 11)
#define EXT1_NX			(1u << 20)
#define EXT1_FFXSR		(1u << 25)
#define EXT1_LM			(1u << 29)
/* CPUID 0x80000001 ECX */
#define EXT1_SVM		(1u << 2)

static const uint32_t base_msrs[] = {
	MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_CSTAR,
};

#define NR_BASE_MSRS (sizeof(base_msrs) / sizeof(base_msrs[0]))

/* Bits 63:47 not all equal, with 48-bit linear addresses (no LA57 here). */
static const uint64_t noncanonical[] = {
	0x0000800000000000ULL, 0x8000000000000000ULL, 0xfffe7ffffffff000ULL,
	0x00ff000000001000ULL,
};

#define NR_NONCANONICAL (sizeof(noncanonical) / sizeof(noncanonical[0]))

/* The edges of the canonical halves. */
static const uint64_t canonical[] = {
	0x00007fffffffffffULL, 0xffff800000000000ULL, 0xffffffff81000000ULL,
};

#define NR_CANONICAL (sizeof(canonical) / sizeof(canonical[0]))

/* KVM_SET_MSRS of two MSRs: how many were written before the first refusal. */
static int set_msr_pair(struct kvm_vcpu *vcpu, uint32_t i0, uint64_t v0, uint32_t i1,
			uint64_t v1)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[2];
	} m = {
		.hdr.nmsrs = 2,
		.e = { { .index = i0, .data = v0 }, { .index = i1, .data = v1 } },
	};

	return __vcpu_ioctl(vcpu, KVM_SET_MSRS, &m);
}

/* The base as the vCPU's state has it: segment bases through KVM_GET_SREGS. */
static uint64_t base_of(struct kvm_vcpu *vcpu, uint32_t index)
{
	struct kvm_sregs s;

	vcpu_sregs_get(vcpu, &s);
	if (index == MSR_FS_BASE)
		return s.fs.base;
	if (index == MSR_GS_BASE)
		return s.gs.base;
	return vcpu_get_msr(vcpu, index);
}

/*
 * Userspace: KVM_SET_MSRS stops at a non-canonical base and reports the
 * entries before it; the MSR keeps its value (FS and GS bases also as
 * KVM_GET_SREGS shows them).
 */
TEST(noncanonical_bases_from_userspace)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);

	for (unsigned int i = 0; i < NR_BASE_MSRS; i++) {
		uint64_t before = base_of(vcpu, base_msrs[i]);

		for (unsigned int j = 0; j < NR_NONCANONICAL; j++) {
			int r = set_msr_pair(vcpu, MSR_STAR, 0x0023001000000000ULL + j,
					     base_msrs[i], noncanonical[j]);

			TEST_ASSERT(r == 1, "KVM_SET_MSRS {STAR, %#x = %#" PRIx64 "} returned %d, "
				    "expected 1", base_msrs[i], noncanonical[j], r);
			TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x0023001000000000ULL + j);
			TEST_ASSERT_EQ(base_of(vcpu, base_msrs[i]), before);
		}
	}
	/* Canonical values, the edges of both halves, are taken. */
	for (unsigned int i = 0; i < NR_BASE_MSRS; i++)
		for (unsigned int j = 0; j < NR_CANONICAL; j++) {
			TEST_ASSERT_EQ(set_msr_pair(vcpu, MSR_STAR, 0, base_msrs[i], canonical[j]), 2);
			TEST_ASSERT_EQ(vcpu_get_msr(vcpu, base_msrs[i]), canonical[j]);
			TEST_ASSERT_EQ(base_of(vcpu, base_msrs[i]), canonical[j]);
		}
	vm_free(vm);
}

/* Write @value to @msr: SYNC with whether it faulted and what RDMSR reads after. */
static void guest_base_write(uint32_t msr, uint64_t value)
{
	for (;;) {
		bool faulted = guest_wrmsr_faults(msr, value);

		GUEST_SYNC_ARGS(1, faulted, guest_rdmsr(msr), 0);
	}
}

/*
 * The guest: #GP for a non-canonical value, and the MSR keeps its value.
 *
 * KVM passes these five MSRs through to the guest on SVM, so there the
 * check is the CPU's; the test machine's emulated CPU (QEMU 7.2 TCG,
 * helper_wrmsr()) takes any value.  When a write is taken whole, as that
 * CPU does, the case checks that it was taken exactly and is skipped; a
 * hypervisor that intercepts the MSRs (minikvm) must give the #GP.
 */
TEST(noncanonical_bases_from_guest)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	unsigned int taken = 0, refused = 0;
	struct ucall uc;

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	for (unsigned int i = 0; i < NR_BASE_MSRS; i++) {
		const uint64_t good = 0xffff800000001000ULL + (i << 12);

		for (unsigned int j = 0; j < NR_NONCANONICAL; j++) {
			/* A canonical value first: accepted, and the one to keep. */
			vcpu_restart(vcpu, (void (*)(void))guest_base_write);
			vcpu_args_set(vcpu, 2, base_msrs[i], good);
			TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
			TEST_ASSERT(!uc.args[1], "WRMSR %#x = %#" PRIx64 " does not #GP",
				    base_msrs[i], good);
			TEST_ASSERT_EQ(uc.args[2], good);

			vcpu_restart(vcpu, (void (*)(void))guest_base_write);
			vcpu_args_set(vcpu, 2, base_msrs[i], noncanonical[j]);
			TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
			if (uc.args[1]) {
				TEST_ASSERT_EQ(uc.args[2], good);
				TEST_ASSERT_EQ(base_of(vcpu, base_msrs[i]), good);
				refused++;
				continue;
			}
			TEST_ASSERT(uc.args[2] == noncanonical[j], "WRMSR %#x = %#" PRIx64
				    " neither #GPs nor is taken: reads %#" PRIx64, base_msrs[i],
				    noncanonical[j], uc.args[2]);
			test_log("WRMSR %#x = %#" PRIx64 " taken without #GP", base_msrs[i],
				 noncanonical[j]);
			taken++;
		}
	}
	vm_free(vm);
	if (taken)
		SKIP("%u of %u non-canonical WRMSRs were taken whole (%u #GP): the MSRs are "
		     "passed through and this machine's CPU does not check them", taken,
		     taken + refused, refused);
}

/*
 * The guest's EFER write: SYNC 1 with whether WRMSR EFER = @value faulted,
 * then what RDMSR EFER reads.
 */
static void guest_efer_write(uint64_t value)
{
	bool faulted = guest_wrmsr_faults(MSR_EFER, value);

	GUEST_SYNC_ARGS(1, faulted, guest_rdmsr(MSR_EFER), 0);
}

/* A long-mode vCPU with 0x80000001 EDX/ECX changed as asked. */
static struct kvm_vcpu *efer_vcpu(struct kvm_vm *vm, uint32_t edx_clear, uint32_t edx_set,
				  uint32_t ecx_clear)
{
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_efer_write);
	struct kvm_cpuid_entry2 *ext = cpuid_find(vm->cpuid, 0x80000001, 0);

	TEST_ASSERT(ext, "no CPUID leaf 0x80000001");
	ext->edx = (ext->edx & ~edx_clear) | edx_set;
	ext->ecx &= ~ecx_clear;
	vcpu_set_cpuid(vcpu, vm->cpuid);
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	return vcpu;
}

/* Run the guest's write of @value; assert #GP or not, and what EFER reads after. */
static void efer_case(struct kvm_vcpu *vcpu, uint64_t value, bool gp, uint64_t after)
{
	struct kvm_sregs s;
	struct ucall uc;

	vcpu_restart(vcpu, (void (*)(void))guest_efer_write);
	vcpu_args_set(vcpu, 1, value);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] == gp, "WRMSR EFER = %#" PRIx64 ": #GP %d, expected %d (EFER "
		    "now %#" PRIx64 ")", value, (int)uc.args[1], gp, uc.args[2]);
	TEST_ASSERT_EQ(uc.args[2], after);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.efer, after);
}

static uint64_t initial_efer(struct kvm_vcpu *vcpu)
{
	struct kvm_sregs s;

	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
	return s.efer;
}

static bool supported_ext1_edx(int kvm_fd, uint32_t bit)
{
	struct kvm_cpuid2 *cpuid = kvm_get_supported_cpuid(kvm_fd);
	struct kvm_cpuid_entry2 *ext = cpuid_find(cpuid, 0x80000001, 0);
	bool r = ext && (ext->edx & bit);

	free(cpuid);
	return r;
}

/* NX needs CPUID 0x80000001:EDX[20]. */
TEST(efer_nx_needs_cpuid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu;
	uint64_t efer;

	if (!supported_ext1_edx(vm->kvm_fd, EXT1_NX))
		SKIP("NX is not in KVM_GET_SUPPORTED_CPUID");
	vcpu = efer_vcpu(vm, EXT1_NX, 0, 0);
	efer = initial_efer(vcpu);
	TEST_ASSERT_EQ(efer & EFER_NX, 0);
	efer_case(vcpu, efer | EFER_NX, true, efer);
	/* The same value again is fine. */
	efer_case(vcpu, efer, false, efer);
	vm_free(vm);

	vm = vm_create(VM_MODE_LONG64);
	vcpu = efer_vcpu(vm, 0, EXT1_NX, 0);
	efer = initial_efer(vcpu);
	efer_case(vcpu, efer | EFER_NX, false, efer | EFER_NX);
	efer_case(vcpu, efer, false, efer);
	vm_free(vm);
}

/* LME (and LMA) need long mode, 0x80000001:EDX[29]: even rewriting the current value #GPs. */
TEST(efer_lme_needs_lm)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = efer_vcpu(vm, EXT1_LM, 0, 0);
	uint64_t efer = initial_efer(vcpu);

	efer_case(vcpu, efer, true, efer);
	efer_case(vcpu, efer & ~EFER_LMA, true, efer);
	vm_free(vm);
}

/* FFXSR needs 0x80000001:EDX[25], where KVM offers it at all. */
TEST(efer_ffxsr_needs_cpuid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu;
	uint64_t efer;

	if (!supported_ext1_edx(vm->kvm_fd, EXT1_FFXSR))
		SKIP("FFXSR is not in KVM_GET_SUPPORTED_CPUID");
	vcpu = efer_vcpu(vm, EXT1_FFXSR, 0, 0);
	efer = initial_efer(vcpu);
	efer_case(vcpu, efer | EFER_FFXSR, true, efer);
	vm_free(vm);

	vm = vm_create(VM_MODE_LONG64);
	vcpu = efer_vcpu(vm, 0, EXT1_FFXSR, 0);
	efer = initial_efer(vcpu);
	efer_case(vcpu, efer | EFER_FFXSR, false, efer | EFER_FFXSR);
	efer_case(vcpu, efer, false, efer);
	vm_free(vm);
}

/*
 * SCE is not checked against CPUID in KVM 6.1 (__kvm_valid_efer() looks at
 * FFXSR, SVME, LME/LMA and NX only): a guest without SYSCALL in its CPUID
 * may still set it.
 */
TEST(efer_sce_without_syscall_cpuid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = efer_vcpu(vm, EXT1_SYSCALL, 0, 0);
	uint64_t efer = initial_efer(vcpu) & ~EFER_SCE;

	efer_case(vcpu, efer, false, efer);
	efer_case(vcpu, efer | EFER_SCE, false, efer | EFER_SCE);
	efer_case(vcpu, efer, false, efer);
	vm_free(vm);
}

/* SVME: without SVM in CPUID (and without nested) the guest may not set it. */
TEST(efer_svme_without_svm_cpuid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = efer_vcpu(vm, 0, 0, EXT1_SVM);
	uint64_t efer = initial_efer(vcpu);

	efer_case(vcpu, efer | EFER_SVME, true, efer);
	vm_free(vm);
}

/* With CR0.PG set, LME may not change: clearing it in long mode #GPs. */
TEST(efer_lme_change_with_paging)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = efer_vcpu(vm, 0, 0, 0);
	uint64_t efer = initial_efer(vcpu);

	efer_case(vcpu, efer & ~EFER_LME, true, efer);
	efer_case(vcpu, efer & ~(EFER_LME | EFER_LMA), true, efer);
	vm_free(vm);
}

/* LMA is the CPU's: a write that toggles it leaves it as it was, without #GP. */
TEST(efer_lma_write_ignored)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = efer_vcpu(vm, 0, 0, 0);
	uint64_t efer = initial_efer(vcpu);

	efer_case(vcpu, efer & ~EFER_LMA, false, efer);
	efer_case(vcpu, (efer & ~EFER_LMA) | EFER_SCE, false, efer | EFER_SCE);
	efer_case(vcpu, efer, false, efer);
	vm_free(vm);
}

/*
 * Flat 32-bit protected mode, paging off: an LMA in the written value is
 * dropped there too, without #GP.  Writes EFER | LMA, reports EFER on port
 * 0x20, then the same with SCE, reports, halts.  (A #GP here has no IDT and
 * ends in a shutdown.)  Setting LME with paging off is not tried: the
 * guest's next entry hangs the test machine's CPU, under the reference
 * KVM as under minikvm (QEMU 7.2 TCG), until the machine is killed.
 */
extern const char pm_efer_start[], pm_efer_end[];
asm(".pushsection .rodata\n"
    ".code32\n"
    "pm_efer_start:\n"
    "	mov $0xc0000080, %ecx\n"
    "	rdmsr\n"
    "	or $0x400, %eax\n"
    "	wrmsr\n"
    "	rdmsr\n"
    "	out %eax, $0x20\n"
    "	or $0x401, %eax\n"
    "	wrmsr\n"
    "	rdmsr\n"
    "	out %eax, $0x20\n"
    "	hlt\n"
    "pm_efer_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(efer_lma_write_ignored_without_paging)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_PROT32, pm_efer_start, pm_efer_end, &vcpu);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs s;
	uint64_t efer;

	vcpu_sregs_get(vcpu, &s);
	efer = s.efer;
	TEST_ASSERT_EQ(efer & (EFER_SCE | EFER_LME | EFER_LMA), 0);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, 0x20);
	TEST_ASSERT_EQ(*(uint32_t *)((char *)run + run->io.data_offset), efer);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.efer, efer);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(*(uint32_t *)((char *)run + run->io.data_offset), efer | EFER_SCE);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.efer, efer | EFER_SCE);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vm_free(vm);
}

/*
 * Userspace is not held to the guest's CPUID nor to the paging rule: it
 * restores state.
 */
TEST(efer_from_userspace_unchecked)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = efer_vcpu(vm, EXT1_NX | EXT1_SYSCALL, 0, 0);
	uint64_t efer = initial_efer(vcpu);

	if (supported_ext1_edx(vm->kvm_fd, EXT1_NX)) {
		TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_EFER, efer | EFER_NX), 1);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), efer | EFER_NX);
	}
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_EFER, efer | EFER_SCE), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), efer | EFER_SCE);
	/* LME cleared with paging on. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_EFER, efer & ~EFER_LME), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), efer & ~EFER_LME);
	vcpu_set_msr(vcpu, MSR_EFER, efer);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), efer);
	/* A reserved bit is refused all the same. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_EFER, efer | (1ULL << 2)), 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), efer);
	vm_free(vm);
}

/*
 * KVM 6.1's set_efer() keeps LMA as the vCPU has it for userspace's
 * KVM_SET_MSRS too (only KVM_SET_SREGS sets it): long mode keeps it when
 * the value lacks it, paging off does not take it.
 */
TEST(efer_from_userspace_keeps_lma)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	uint64_t efer = initial_efer(vcpu);
	struct kvm_sregs s;

	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_EFER, efer & ~EFER_LMA), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), efer);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.efer, efer);
	vm_free(vm);

	vm = vm_create(VM_MODE_PROT32);
	vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER) & (EFER_LME | EFER_LMA), 0);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_EFER, EFER_LME | EFER_LMA), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_EFER), EFER_LME);
	vm_free(vm);
}
