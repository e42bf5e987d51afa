// SPDX-License-Identifier: GPL-2.0
/*
 * Userspace's part in the guest's RDMSR and WRMSR (api.rst 4.97
 * KVM_X86_SET_MSR_FILTER, 7.21 KVM_CAP_X86_USER_SPACE_MSR): the filter's
 * argument checks, which accesses a filter denies (bitmap layout, the first
 * matching range, read and write ranges, default deny, the x2APIC MSRs that
 * are never filtered), the #GP the guest gets for a denied access, and the
 * KVM_EXIT_X86_RDMSR/WRMSR exits with reasons FILTER, UNKNOWN and INVAL
 * that userspace completes with data or with an error.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "apic.h"

#define MSR_EFER		0xc0000080
#define MSR_STAR		0xc0000081
#define MSR_SYSENTER_CS		0x174
#define MSR_IA32_CR_PAT		0x277
#define MSR_MTRR_PHYSBASE0	0x200
#define MSR_MTRR_FIX4K_D0000	0x26a
#define MSR_MTRR_FIX4K_D8000	0x26b
#define MSR_MTRR_FIX4K_E0000	0x26c
/* An index no x86 CPU or hypervisor implements: unknown to both. */
#define MSR_NONEXISTENT		0x12345678

#define PAT_DEFAULT		0x0007040600070406ULL
/* Memory type 2 in entry 0 is reserved: a value PAT refuses. */
#define PAT_BAD_TYPE		0x0007040600070402ULL
#define EFER_RESERVED_BIT2	(1ULL << 2)
#define X2APIC_ENABLE		(1ULL << 10)

#define GP_VECTOR		13
#define ALL_REASONS		(KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | \
				 KVM_MSR_EXIT_REASON_FILTER)
#define RW			(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)

/* What the guest's RAX and RDX hold before its access: the access must change or keep them. */
#define RAX_POISON		0xaaaaaaaa5555deadULL
#define RDX_POISON		0xbbbbbbbb6666beefULL

#define STAGE_READ		1
#define STAGE_WRITE		2

/* Bitmaps for the ranges: a set bit allows the access. */
static uint64_t allow_bits[KVM_MSR_FILTER_MAX_BITMAP_SIZE / 8] = {
	[0 ... KVM_MSR_FILTER_MAX_BITMAP_SIZE / 8 - 1] = ~0ULL,
};
static uint64_t deny_bits[KVM_MSR_FILTER_MAX_BITMAP_SIZE / 8];

/* The guest's RDMSR and WRMSR, at addresses the host compares RIP with. */
extern char rdmsr_insn[], wrmsr_insn[];

static void __attribute__((noinline)) guest_read(uint32_t msr)
{
	uint64_t gp = guest_msr_gp_count;
	uint64_t rax = RAX_POISON, rdx = RDX_POISON;

	asm volatile(".globl rdmsr_insn\n"
		     "rdmsr_insn: rdmsr"
		     : "+a"(rax), "+d"(rdx) : "c"(msr) : "memory");
	GUEST_SYNC_ARGS(STAGE_READ, guest_msr_gp_count - gp, rax, rdx);
}

static void __attribute__((noinline)) guest_write(uint32_t msr, uint64_t rax, uint64_t rdx)
{
	uint64_t gp = guest_msr_gp_count;

	asm volatile(".globl wrmsr_insn\n"
		     "wrmsr_insn: wrmsr"
		     :: "a"(rax), "d"(rdx), "c"(msr) : "memory");
	GUEST_SYNC_ARGS(STAGE_WRITE, guest_msr_gp_count - gp, 0, 0);
}

/* A long-mode VM whose vCPU counts and skips the #GPs of its RDMSR/WRMSR. */
static struct kvm_vm *msr_vm(struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	*vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read);
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	return vm;
}

static void start_read(struct kvm_vcpu *vcpu, uint32_t msr)
{
	vcpu_restart(vcpu, (void (*)(void))guest_read);
	vcpu_args_set(vcpu, 1, (uint64_t)msr);
}

/* The upper halves of RAX and RDX are junk that WRMSR must ignore. */
static void start_write(struct kvm_vcpu *vcpu, uint32_t msr, uint64_t value)
{
	vcpu_restart(vcpu, (void (*)(void))guest_write);
	vcpu_args_set(vcpu, 3, (uint64_t)msr, (RAX_POISON & ~0xffffffffULL) | (uint32_t)value,
		      (RDX_POISON & ~0xffffffffULL) | (value >> 32));
}

/*
 * Run a started access to its ucall.  Return whether it raised #GP; a read
 * that did not left EDX:EAX in *value, zero-extended to RDX and RAX, and one
 * that did left both registers alone.
 */
static bool finish_access(struct kvm_vcpu *vcpu, uint64_t *value)
{
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	vcpu_run(vcpu);
	/* An exit to userspace the test did not expect: say what it was for. */
	TEST_ASSERT(run->exit_reason != KVM_EXIT_X86_RDMSR &&
		    run->exit_reason != KVM_EXIT_X86_WRMSR,
		    "unexpected %s exit: reason %#x index %#x data %#llx",
		    exit_reason_str(run->exit_reason), run->msr.reason, run->msr.index,
		    (unsigned long long)run->msr.data);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	if (get_ucall(vcpu, &uc) != UCALL_SYNC)
		vcpu_run_ucall_report(vcpu, &uc);
	TEST_ASSERT_EQ(uc.cmd, UCALL_SYNC);
	TEST_ASSERT(uc.args[1] <= 1, "%" PRIu64 " #GPs from one instruction", uc.args[1]);
	if (uc.args[0] == STAGE_READ) {
		if (uc.args[1]) {
			TEST_ASSERT_EQ(uc.args[2], RAX_POISON);
			TEST_ASSERT_EQ(uc.args[3], RDX_POISON);
		} else {
			TEST_ASSERT_EQ(uc.args[2] >> 32, 0);
			TEST_ASSERT_EQ(uc.args[3] >> 32, 0);
		}
		if (value)
			*value = uc.args[2] | uc.args[3] << 32;
	} else {
		TEST_ASSERT_EQ(uc.args[0], STAGE_WRITE);
	}
	return uc.args[1];
}

/* The guest's RDMSR of @msr: whether it faulted; the value otherwise. */
static bool read_faults(struct kvm_vcpu *vcpu, uint32_t msr, uint64_t *value)
{
	start_read(vcpu, msr);
	return finish_access(vcpu, value);
}

static bool write_faults(struct kvm_vcpu *vcpu, uint32_t msr, uint64_t value)
{
	start_write(vcpu, msr, value);
	return finish_access(vcpu, NULL);
}

/*
 * Run a started access to its KVM_EXIT_X86_RDMSR/WRMSR and check what the
 * kernel reports: it must fill every field, whatever was there before.
 */
static void expect_msr_exit(struct kvm_vcpu *vcpu, uint32_t exit, uint32_t reason, uint32_t msr,
			    uint64_t data)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;

	memset(&run->msr, 0xcc, sizeof(run->msr));
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, exit);
	TEST_ASSERT_EQ(run->msr.error, 0);
	for (unsigned int i = 0; i < sizeof(run->msr.pad); i++)
		TEST_ASSERT_EQ(run->msr.pad[i], 0);
	TEST_ASSERT_EQ(run->msr.reason, reason);
	TEST_ASSERT_EQ(run->msr.index, msr);
	TEST_ASSERT_EQ(run->msr.data, data);
	/* Userspace has yet to finish the instruction: RIP is still at it. */
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)(exit == KVM_EXIT_X86_RDMSR ? rdmsr_insn : wrmsr_insn));
}

static void complete_msr(struct kvm_vcpu *vcpu, uint8_t error, uint64_t data)
{
	vcpu->run->msr.error = error;
	vcpu->run->msr.data = data;
}

static int enable_user_msr(struct kvm_vm *vm, uint64_t reasons)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_USER_SPACE_MSR, .args = { reasons } };

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

static void range(struct kvm_msr_filter *f, int i, uint32_t flags, uint32_t base,
		  uint32_t nmsrs, void *bitmap)
{
	f->ranges[i] = (struct kvm_msr_filter_range) {
		.flags = flags, .base = base, .nmsrs = nmsrs, .bitmap = bitmap,
	};
}

static int set_filter(struct kvm_vm *vm, struct kvm_msr_filter *f)
{
	return __vm_ioctl(vm, KVM_X86_SET_MSR_FILTER, f);
}

/* A default-allow filter with one range denying @msr to the accesses in @flags. */
static void deny_one(struct kvm_vm *vm, uint32_t flags, uint32_t msr)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };

	range(&f, 0, flags, msr, 1, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
}

static void clear_filter(struct kvm_vm *vm)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };

	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
}

TEST(capabilities)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	/* KVM 6.1 answers 1 for both, on /dev/kvm and on the VM alike. */
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_X86_USER_SPACE_MSR), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_X86_MSR_FILTER), 1);
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_USER_SPACE_MSR), 1);
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER), 1);
	vm_free(vm);
}

TEST(enable_cap_reasons)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_USER_SPACE_MSR, .flags = 1, .args = { ALL_REASONS },
	};

	TEST_ASSERT_ERRNO(enable_user_msr(vm, 1 << 3), EINVAL);
	TEST_ASSERT_ERRNO(enable_user_msr(vm, ALL_REASONS | 1 << 3), EINVAL);
	TEST_ASSERT_ERRNO(enable_user_msr(vm, 1ULL << 32), EINVAL);
	TEST_ASSERT_ERRNO(enable_user_msr(vm, ~0ULL), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_ENABLE_CAP, &cap), EINVAL);
	for (uint64_t m = 0; m <= ALL_REASONS; m++)
		TEST_ASSERT_EQ(enable_user_msr(vm, m), 0);
	/* Also once a vCPU exists: userspace may change its mind at any time. */
	vm_vcpu_add(vm, 0, NULL);
	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_FILTER), 0);
	TEST_ASSERT_EQ(enable_user_msr(vm, 0), 0);
	vm_free(vm);
}

TEST(set_filter_errors)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	long page = sysconf(_SC_PAGESIZE);
	struct kvm_msr_filter f;
	uint8_t *pages;

	/* Two pages, the second inaccessible, for bitmaps that end at or cross its start. */
	pages = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(pages != MAP_FAILED, "mmap: %s", strerror(errno));
	TEST_ASSERT_EQ(mprotect(pages + page, page, PROT_NONE), 0);

	memset(&f, 0, sizeof(f));
	f.flags = 1 << 1;
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	f.flags = 1u << 31;
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	/* Denying everything with nothing allowed is refused... */
	f.flags = KVM_MSR_FILTER_DEFAULT_DENY;
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	/* ...and a range without MSRs does not count, whatever its other fields say. */
	range(&f, 3, RW, MSR_STAR, 0, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	TEST_ASSERT_ERRNO(set_filter(vm, NULL), EFAULT);

	/* A range with MSRs needs READ and/or WRITE and no other flag. */
	memset(&f, 0, sizeof(f));
	range(&f, 0, 0, MSR_STAR, 1, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	range(&f, 0, 1 << 2, MSR_STAR, 1, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	range(&f, 0, RW | 1 << 2, MSR_STAR, 1, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	/* Also in the last slot, behind a good range. */
	range(&f, 0, RW, MSR_STAR, 1, allow_bits);
	range(&f, KVM_MSR_FILTER_MAX_RANGES - 1, 1u << 31, MSR_STAR, 1, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	/* Flags and a NULL bitmap in a range without MSRs are ignored. */
	range(&f, KVM_MSR_FILTER_MAX_RANGES - 1, 0xff, MSR_STAR, 0, NULL);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);

	/* The bitmap is at most KVM_MSR_FILTER_MAX_BITMAP_SIZE bytes. */
	memset(&f, 0, sizeof(f));
	range(&f, 0, RW, 0, KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8, allow_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	range(&f, 0, RW, 0, KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8 + 1, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	range(&f, 0, RW, 0, ~0u, allow_bits);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);

	/* The bitmap is read in whole longs: 8 bytes even for one MSR. */
	range(&f, 0, RW, MSR_STAR, 1, NULL);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EFAULT);
	range(&f, 0, RW, MSR_STAR, 1, pages + page);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EFAULT);
	range(&f, 0, RW, MSR_STAR, 1, pages + page - 1);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EFAULT);
	range(&f, 0, RW, MSR_STAR, 1, pages + page - 8);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	range(&f, 0, RW, MSR_STAR, 65, pages + page - 8);
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EFAULT);
	range(&f, 0, RW, MSR_STAR, 65, pages + page - 16);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);

	/* No ranges and default allow: no filter at all. */
	memset(&f, 0, sizeof(f));
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	munmap(pages, 2 * page);
	vm_free(vm);
}

TEST(read_denied_gp)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	TEST_ASSERT(!read_faults(vcpu, MSR_IA32_CR_PAT, &v), "PAT readable without a filter");
	TEST_ASSERT_EQ(v, PAT_DEFAULT);
	deny_one(vm, KVM_MSR_FILTER_READ, MSR_IA32_CR_PAT);
	TEST_ASSERT(read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "denied read of PAT #GPs");
	/* Only reads are denied: the write happens, and userspace sees its value. */
	TEST_ASSERT(!write_faults(vcpu, MSR_IA32_CR_PAT, 0x0006040600070406ULL),
		    "write of read-denied PAT");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), 0x0006040600070406ULL);
	TEST_ASSERT(read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "denied read of PAT #GPs");
	/* Other MSRs are untouched. */
	vcpu_set_msr(vcpu, MSR_SYSENTER_CS, 0x10);
	TEST_ASSERT(!read_faults(vcpu, MSR_SYSENTER_CS, &v), "SYSENTER_CS readable");
	TEST_ASSERT_EQ(v, 0x10);
	/* Without a user-space MSR reason for it, FILTER being off means #GP. */
	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_INVAL |
				       KVM_MSR_EXIT_REASON_UNKNOWN), 0);
	TEST_ASSERT(read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "denied read of PAT #GPs");
	vm_free(vm);
}

TEST(write_denied_gp)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	vcpu_set_msr(vcpu, MSR_STAR, 0x0023001000000000ULL);
	deny_one(vm, KVM_MSR_FILTER_WRITE, MSR_STAR);
	TEST_ASSERT(write_faults(vcpu, MSR_STAR, 0x001b000800000000ULL), "denied write #GPs");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x0023001000000000ULL);
	TEST_ASSERT(!read_faults(vcpu, MSR_STAR, &v), "write-denied STAR readable");
	TEST_ASSERT_EQ(v, 0x0023001000000000ULL);
	vm_free(vm);
}

TEST(filter_exit_rdmsr)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	vcpu_set_msr(vcpu, MSR_STAR, 0x0023001000000000ULL);
	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_FILTER), 0);
	deny_one(vm, KVM_MSR_FILTER_READ, MSR_STAR);

	/* Userspace answers: the guest reads its value and goes on. */
	start_read(vcpu, MSR_STAR);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_STAR, 0);
	complete_msr(vcpu, 0, 0x1122334455667788ULL);
	TEST_ASSERT(!finish_access(vcpu, &v), "answered RDMSR does not fault");
	TEST_ASSERT_EQ(v, 0x1122334455667788ULL);
	/* What userspace answered never reached the MSR. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x0023001000000000ULL);

	/* Userspace refuses: #GP, and EDX:EAX keep what they held. */
	start_read(vcpu, MSR_STAR);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_STAR, 0);
	complete_msr(vcpu, 1, 0x1122334455667788ULL);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused RDMSR #GPs");

	/* Writes are not filtered, so they never exit. */
	TEST_ASSERT(!write_faults(vcpu, MSR_STAR, 0x001b000800000000ULL), "STAR write");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x001b000800000000ULL);
	vm_free(vm);
}

TEST(filter_exit_wrmsr)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	vcpu_set_msr(vcpu, MSR_STAR, 0x0023001000000000ULL);
	TEST_ASSERT_EQ(enable_user_msr(vm, ALL_REASONS), 0);
	deny_one(vm, KVM_MSR_FILTER_WRITE, MSR_STAR);

	/* The data is EDX:EAX, the upper halves of RDX and RAX ignored. */
	start_write(vcpu, MSR_STAR, 0x5566778811223344ULL);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_STAR,
			0x5566778811223344ULL);
	/* Userspace took the write: the guest goes on and the MSR stays as it was. */
	complete_msr(vcpu, 0, 0);
	TEST_ASSERT(!finish_access(vcpu, NULL), "accepted WRMSR does not fault");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x0023001000000000ULL);

	start_write(vcpu, MSR_STAR, 0x001b000800000000ULL);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_STAR,
			0x001b000800000000ULL);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused WRMSR #GPs");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x0023001000000000ULL);

	/* Reads are not filtered. */
	TEST_ASSERT(!read_faults(vcpu, MSR_STAR, &v), "STAR read");
	TEST_ASSERT_EQ(v, 0x0023001000000000ULL);
	vm_free(vm);
}

TEST(completion_with_immediate_exit)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	struct kvm_regs regs;
	uint64_t v;

	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_FILTER), 0);
	deny_one(vm, KVM_MSR_FILTER_READ, MSR_STAR);
	start_read(vcpu, MSR_STAR);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_STAR, 0);
	complete_msr(vcpu, 0, 0x8877665544332211ULL);
	/*
	 * KVM_RUN with immediate_exit finishes the instruction without running
	 * the guest, so a VMM can save consistent state (api.rst 5).
	 */
	vcpu->run->immediate_exit = 1;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)rdmsr_insn + 2);
	TEST_ASSERT_EQ(regs.rax, 0x44332211);
	TEST_ASSERT_EQ(regs.rdx, 0x88776655);
	vcpu->run->immediate_exit = 0;
	TEST_ASSERT(!finish_access(vcpu, &v), "answered RDMSR does not fault");
	TEST_ASSERT_EQ(v, 0x8877665544332211ULL);
	vm_free(vm);
}

TEST(default_deny_allows_one)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
	uint64_t one = 1;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	range(&f, 0, RW, MSR_SYSENTER_CS, 1, &one);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(!write_faults(vcpu, MSR_SYSENTER_CS, 0x18), "SYSENTER_CS write");
	TEST_ASSERT(!read_faults(vcpu, MSR_SYSENTER_CS, &v), "SYSENTER_CS read");
	TEST_ASSERT_EQ(v, 0x18);
	TEST_ASSERT(read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "PAT read denied");
	TEST_ASSERT(write_faults(vcpu, MSR_IA32_CR_PAT, PAT_DEFAULT), "PAT write denied");
	TEST_ASSERT(read_faults(vcpu, MSR_STAR, NULL), "STAR read denied");
	TEST_ASSERT(write_faults(vcpu, MSR_STAR, 0), "STAR write denied");
	/* Bit 0 of the bitmap is the range's base; the MSR after it is outside. */
	TEST_ASSERT(read_faults(vcpu, MSR_SYSENTER_CS + 1, NULL), "SYSENTER_ESP read denied");

	/* An exit for a denied MSR says FILTER, even for one the kernel does not know. */
	TEST_ASSERT_EQ(enable_user_msr(vm, ALL_REASONS), 0);
	start_read(vcpu, MSR_IA32_CR_PAT);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_IA32_CR_PAT, 0);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused RDMSR #GPs");
	start_write(vcpu, MSR_NONEXISTENT, 7);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_FILTER, MSR_NONEXISTENT, 7);
	complete_msr(vcpu, 0, 0);
	TEST_ASSERT(!finish_access(vcpu, NULL), "accepted WRMSR does not fault");
	vm_free(vm);
}

TEST(bitmap_layout)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
	uint8_t bits[16];
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	/*
	 * 128 MSRs from 0x200 over two longs: bit n of byte b is MSR
	 * 0x200 + 8 * b + n.  Deny 0x26b (byte 0xd, bit 3) and PAT (byte 0xe, bit 7).
	 */
	memset(bits, 0xff, sizeof(bits));
	bits[0xd] &= ~(1 << 3);
	bits[0xe] &= ~(1 << 7);
	range(&f, 0, KVM_MSR_FILTER_READ, 0x200, 128, bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(!read_faults(vcpu, MSR_MTRR_PHYSBASE0, &v), "PHYSBASE0 read");
	TEST_ASSERT(!read_faults(vcpu, MSR_MTRR_FIX4K_D0000, &v), "FIX4K_D0000 read");
	TEST_ASSERT(read_faults(vcpu, MSR_MTRR_FIX4K_D8000, NULL), "FIX4K_D8000 read denied");
	TEST_ASSERT(!read_faults(vcpu, MSR_MTRR_FIX4K_E0000, &v), "FIX4K_E0000 read");
	TEST_ASSERT(read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "PAT read denied");
	vm_free(vm);
}

TEST(first_range_decides)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
	uint64_t one = 1;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);

	/* Allowed first, denied second: allowed. */
	range(&f, 0, RW, MSR_IA32_CR_PAT, 1, &one);
	range(&f, 1, RW, MSR_IA32_CR_PAT, 1, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(!read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "PAT read");
	TEST_ASSERT(!write_faults(vcpu, MSR_IA32_CR_PAT, PAT_DEFAULT), "PAT write");

	/* The other way round: denied, though a later range allows it. */
	range(&f, 0, RW, MSR_IA32_CR_PAT, 1, deny_bits);
	range(&f, 1, RW, MSR_IA32_CR_PAT, 1, &one);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "PAT read denied");
	TEST_ASSERT(write_faults(vcpu, MSR_IA32_CR_PAT, PAT_DEFAULT), "PAT write denied");

	/* A wide range that allows PAT, before one that denies the rest of it. */
	range(&f, 0, RW, 0x270, 16, allow_bits);
	range(&f, 1, RW, 0, 0x3000, deny_bits);
	range(&f, 2, RW, MSR_STAR, 1, &one);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(!read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "PAT read");
	TEST_ASSERT(read_faults(vcpu, MSR_SYSENTER_CS, NULL), "SYSENTER_CS read denied");
	TEST_ASSERT(!read_faults(vcpu, MSR_STAR, NULL), "STAR read");
	vm_free(vm);
}

TEST(read_ranges_ignore_writes)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
	uint64_t one = 1;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);

	/*
	 * The first range decides reads only; writes fall through to the
	 * second, and a write-only range after it cannot change reads.
	 */
	range(&f, 0, KVM_MSR_FILTER_READ, MSR_IA32_CR_PAT, 1, &one);
	range(&f, 1, RW, MSR_IA32_CR_PAT, 1, deny_bits);
	range(&f, 2, KVM_MSR_FILTER_WRITE, MSR_SYSENTER_CS, 1, deny_bits);
	range(&f, 3, RW, MSR_SYSENTER_CS, 1, &one);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(!read_faults(vcpu, MSR_IA32_CR_PAT, NULL), "PAT read");
	TEST_ASSERT(write_faults(vcpu, MSR_IA32_CR_PAT, PAT_DEFAULT), "PAT write denied");
	TEST_ASSERT(!read_faults(vcpu, MSR_SYSENTER_CS, NULL), "SYSENTER_CS read");
	TEST_ASSERT(write_faults(vcpu, MSR_SYSENTER_CS, 0x10), "SYSENTER_CS write denied");
	vm_free(vm);
}

TEST(filter_change_between_runs)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	/*
	 * STAR and SYSENTER_CS are MSRs a hypervisor may let the guest access
	 * without an exit; a new filter must take that back for a running vCPU.
	 */
	vcpu_set_msr(vcpu, MSR_STAR, 0x0023001000000000ULL);
	TEST_ASSERT(!read_faults(vcpu, MSR_STAR, &v), "STAR read");
	TEST_ASSERT_EQ(v, 0x0023001000000000ULL);
	TEST_ASSERT(!write_faults(vcpu, MSR_SYSENTER_CS, 0x10), "SYSENTER_CS write");

	range(&f, 0, KVM_MSR_FILTER_READ, MSR_STAR, 1, deny_bits);
	range(&f, 1, KVM_MSR_FILTER_WRITE, MSR_SYSENTER_CS, 1, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(read_faults(vcpu, MSR_STAR, NULL), "STAR read denied");
	TEST_ASSERT(write_faults(vcpu, MSR_SYSENTER_CS, 0x18), "SYSENTER_CS write denied");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_SYSENTER_CS), 0x10);
	TEST_ASSERT(!write_faults(vcpu, MSR_STAR, 0x001b000800000000ULL), "STAR write");
	TEST_ASSERT(!read_faults(vcpu, MSR_SYSENTER_CS, &v), "SYSENTER_CS read");
	TEST_ASSERT_EQ(v, 0x10);

	/* A failed KVM_X86_SET_MSR_FILTER leaves the filter as it was. */
	f.flags = 1 << 1;
	TEST_ASSERT_ERRNO(set_filter(vm, &f), EINVAL);
	TEST_ASSERT(read_faults(vcpu, MSR_STAR, NULL), "STAR read still denied");

	/* Swap which access is denied, then clear the filter. */
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	range(&f, 0, KVM_MSR_FILTER_WRITE, MSR_STAR, 1, deny_bits);
	range(&f, 1, KVM_MSR_FILTER_READ, MSR_SYSENTER_CS, 1, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(!read_faults(vcpu, MSR_STAR, &v), "STAR read");
	TEST_ASSERT_EQ(v, 0x001b000800000000ULL);
	TEST_ASSERT(write_faults(vcpu, MSR_STAR, 0), "STAR write denied");
	TEST_ASSERT(read_faults(vcpu, MSR_SYSENTER_CS, NULL), "SYSENTER_CS read denied");
	TEST_ASSERT(!write_faults(vcpu, MSR_SYSENTER_CS, 0x18), "SYSENTER_CS write");

	clear_filter(vm);
	TEST_ASSERT(!write_faults(vcpu, MSR_STAR, 0x0023001000000000ULL), "STAR write");
	TEST_ASSERT(!read_faults(vcpu, MSR_STAR, &v), "STAR read");
	TEST_ASSERT_EQ(v, 0x0023001000000000ULL);
	TEST_ASSERT(!read_faults(vcpu, MSR_SYSENTER_CS, &v), "SYSENTER_CS read");
	TEST_ASSERT_EQ(v, 0x18);
	vm_free(vm);
}

TEST(host_accesses_unfiltered)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);

	/* Deny every MSR the filter can name, in both directions. */
	range(&f, 0, RW, 0, 0x3000, deny_bits);
	range(&f, 1, RW, 0xc0000000, 0x3000, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT(read_faults(vcpu, MSR_STAR, NULL), "STAR read denied");
	TEST_ASSERT(write_faults(vcpu, MSR_IA32_CR_PAT, PAT_DEFAULT), "PAT write denied");

	/* KVM_GET_MSRS/KVM_SET_MSRS are the VMM's own accesses: never filtered. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), PAT_DEFAULT);
	vcpu_set_msr(vcpu, MSR_IA32_CR_PAT, 0x0006040600070406ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), 0x0006040600070406ULL);
	vcpu_set_msr(vcpu, MSR_STAR, 0x0023001000000000ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x0023001000000000ULL);
	vcpu_set_msr(vcpu, MSR_SYSENTER_CS, 0x10);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_SYSENTER_CS), 0x10);

	/* Nor with exits to userspace enabled: the ioctls never see one. */
	TEST_ASSERT_EQ(enable_user_msr(vm, ALL_REASONS), 0);
	vcpu_set_msr(vcpu, MSR_STAR, 0x001b000800000000ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_STAR), 0x001b000800000000ULL);
	vm_free(vm);
}

static void guest_x2apic(void)
{
	uint64_t base = guest_rdmsr(MSR_APIC_BASE);

	guest_wrmsr(MSR_APIC_BASE, base | X2APIC_ENABLE);
	GUEST_ASSERT_EQ(guest_rdmsr(X2APIC_MSR(APIC_ID)), 5);
	guest_wrmsr(X2APIC_MSR(APIC_TPR), 0x20);
	GUEST_ASSERT_EQ(guest_rdmsr(X2APIC_MSR(APIC_TPR)), 0x20);
	GUEST_ASSERT_EQ(guest_msr_gp_count, 0);
	/* The filter is there: it denies PAT. */
	GUEST_ASSERT(guest_rdmsr_faults(MSR_IA32_CR_PAT));
	GUEST_ASSERT_EQ(guest_msr_gp_count, 1);
}

TEST(x2apic_msrs_never_filtered)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_DENY };
	uint64_t one = 1;
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;

	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	/* An AP made runnable by hand, so that its x2APIC id is not 0. */
	vcpu = vm_vcpu_add(vm, 5, guest_x2apic);
	vcpu_set_mp_state(vcpu, KVM_MP_STATE_RUNNABLE);
	/* The filter accepts a range over the x2APIC MSRs, but ignores it. */
	range(&f, 0, RW, MSR_APIC_BASE, 1, &one);
	range(&f, 1, RW, 0x800, 0x100, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

TEST(unknown_msr_exit)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	uint64_t v;

	TEST_ASSERT(read_faults(vcpu, MSR_NONEXISTENT, NULL), "unknown MSR read #GPs");
	TEST_ASSERT(write_faults(vcpu, MSR_NONEXISTENT, 1), "unknown MSR write #GPs");
	/* The other reasons do not cover an unknown MSR. */
	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_INVAL |
				       KVM_MSR_EXIT_REASON_FILTER), 0);
	TEST_ASSERT(read_faults(vcpu, MSR_NONEXISTENT, NULL), "unknown MSR read #GPs");
	TEST_ASSERT(write_faults(vcpu, MSR_NONEXISTENT, 1), "unknown MSR write #GPs");

	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_UNKNOWN), 0);
	start_read(vcpu, MSR_NONEXISTENT);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_UNKNOWN, MSR_NONEXISTENT, 0);
	complete_msr(vcpu, 0, 0xfeedface00c0ffeeULL);
	TEST_ASSERT(!finish_access(vcpu, &v), "answered RDMSR does not fault");
	TEST_ASSERT_EQ(v, 0xfeedface00c0ffeeULL);

	start_write(vcpu, MSR_NONEXISTENT, 0xabcdef0123456789ULL);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_UNKNOWN, MSR_NONEXISTENT,
			0xabcdef0123456789ULL);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused WRMSR #GPs");

	/* Known MSRs still go on without an exit. */
	TEST_ASSERT(!read_faults(vcpu, MSR_IA32_CR_PAT, &v), "PAT read");
	TEST_ASSERT_EQ(v, PAT_DEFAULT);
	vm_free(vm);
}

TEST(invalid_pat_exit)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);

	TEST_ASSERT(write_faults(vcpu, MSR_IA32_CR_PAT, PAT_BAD_TYPE), "bad PAT #GPs");
	/* A known MSR refusing a value is not UNKNOWN: no exit for that reason. */
	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_UNKNOWN |
				       KVM_MSR_EXIT_REASON_FILTER), 0);
	TEST_ASSERT(write_faults(vcpu, MSR_IA32_CR_PAT, PAT_BAD_TYPE), "bad PAT #GPs");

	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_INVAL), 0);
	start_write(vcpu, MSR_IA32_CR_PAT, PAT_BAD_TYPE);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_INVAL, MSR_IA32_CR_PAT,
			PAT_BAD_TYPE);
	/* Userspace took it: the guest goes on, PAT as it was. */
	complete_msr(vcpu, 0, 0);
	TEST_ASSERT(!finish_access(vcpu, NULL), "accepted WRMSR does not fault");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), PAT_DEFAULT);

	/* A good value is written without an exit. */
	TEST_ASSERT(!write_faults(vcpu, MSR_IA32_CR_PAT, 0x0006040600070406ULL), "PAT write");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_CR_PAT), 0x0006040600070406ULL);
	vm_free(vm);
}

TEST(invalid_efer_exit)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);
	struct kvm_sregs sregs;
	uint64_t efer;

	vcpu_sregs_get(vcpu, &sregs);
	efer = sregs.efer;
	TEST_ASSERT(write_faults(vcpu, MSR_EFER, efer | EFER_RESERVED_BIT2), "bad EFER #GPs");
	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_UNKNOWN |
				       KVM_MSR_EXIT_REASON_FILTER), 0);
	TEST_ASSERT(write_faults(vcpu, MSR_EFER, efer | EFER_RESERVED_BIT2), "bad EFER #GPs");

	TEST_ASSERT_EQ(enable_user_msr(vm, KVM_MSR_EXIT_REASON_INVAL), 0);
	start_write(vcpu, MSR_EFER, efer | EFER_RESERVED_BIT2);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_INVAL, MSR_EFER,
			efer | EFER_RESERVED_BIT2);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused WRMSR #GPs");
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT_EQ(sregs.efer, efer);
	vm_free(vm);
}

TEST(x2apic_msr_without_x2apic_exit)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);

	/*
	 * Without an x2APIC the x2APIC MSRs are known but refused: reason
	 * INVAL, not UNKNOWN, on KVM 6.1.
	 */
	TEST_ASSERT_EQ(enable_user_msr(vm, ALL_REASONS), 0);
	start_read(vcpu, X2APIC_MSR(APIC_ID));
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_INVAL, X2APIC_MSR(APIC_ID),
			0);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused RDMSR #GPs");
	vm_free(vm);
}

TEST(range_wrapping_past_4g)
{
	struct kvm_msr_filter f = { .flags = KVM_MSR_FILTER_DEFAULT_ALLOW };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = msr_vm(&vcpu);

	/*
	 * KVM 6.1 takes a range whose end wraps past 0xffffffff, but computes
	 * that end in 32 bits, so the range covers no MSR at all: neither its
	 * base nor the wrapped part is denied, and the unknown MSRs there exit
	 * as UNKNOWN rather than FILTER.
	 */
	range(&f, 0, RW, 0xfffffff0, 0x20, deny_bits);
	TEST_ASSERT_EQ(set_filter(vm, &f), 0);
	TEST_ASSERT_EQ(enable_user_msr(vm, ALL_REASONS), 0);
	start_read(vcpu, 0xfffffff0);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_UNKNOWN, 0xfffffff0, 0);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused RDMSR #GPs");
	start_write(vcpu, 0xfffffff8, 3);
	expect_msr_exit(vcpu, KVM_EXIT_X86_WRMSR, KVM_MSR_EXIT_REASON_UNKNOWN, 0xfffffff8, 3);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused WRMSR #GPs");
	start_read(vcpu, 0x8);
	expect_msr_exit(vcpu, KVM_EXIT_X86_RDMSR, KVM_MSR_EXIT_REASON_UNKNOWN, 0x8, 0);
	complete_msr(vcpu, 1, 0);
	TEST_ASSERT(finish_access(vcpu, NULL), "refused RDMSR #GPs");
	vm_free(vm);
}
