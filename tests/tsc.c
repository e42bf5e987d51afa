// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's TSC: where it starts, vCPUs of one VM agreeing, IA32_TSC and
 * IA32_TSC_ADJUST written by the guest and by userspace, and the TSC rate
 * ioctls.  Absolute times mean nothing under emulation: bounds are wide and
 * only catch gross errors (a guest TSC that is the host's, a vCPU that
 * starts from its own zero).
 */
#include <sched.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"

#define MSR_IA32_TSC 0x10
#define MSR_IA32_TSC_ADJUST 0x3b
/* CPUID.(EAX=7,ECX=0):EBX[1] */
#define CPUID_7_EBX_TSC_ADJUST (1u << 1)
/* A jump no TSC takes on its own in a test: about seven minutes at 2.6 GHz. */
#define BIG_STEP (1ULL << 40)

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static bool near(uint64_t a, uint64_t b, uint64_t slack)
{
	return a - b < slack || b - a < slack;
}

static uint64_t tsc_khz_of(struct kvm_vcpu *vcpu)
{
	int khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);

	TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ: %d (%s)", khz, strerror(errno));
	return khz;
}

static void guest_report_tsc(void)
{
	GUEST_SYNC_ARGS(1, rdtsc(), 0, 0);
}

TEST(tsc_khz_is_the_hosts_rate)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_report_tsc);
	uint64_t khz = tsc_khz_of(vcpu), t0, t1, n0, n1, measured;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_GET_TSC_KHZ), 1);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_GET_TSC_KHZ, NULL), khz);
	/* Side by side with the clock the host's TSC is measured against. */
	n0 = now_ns(CLOCK_MONOTONIC_RAW);
	t0 = rdtsc();
	usleep(300000);
	n1 = now_ns(CLOCK_MONOTONIC_RAW);
	t1 = rdtsc();
	measured = (t1 - t0) * 1000000 / (n1 - n0);
	TEST_ASSERT(measured > khz * 4 / 5 && measured < khz * 5 / 4,
		    "KVM_GET_TSC_KHZ %" PRIu64 " but the host TSC runs at %" PRIu64 " kHz",
		    khz, measured);

	/* 0 means the host's rate; the host's own rate is always accepted. */
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_SET_TSC_KHZ, (void *)0), 0);
	TEST_ASSERT_EQ(tsc_khz_of(vcpu), khz);
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_SET_TSC_KHZ, (void *)khz), 0);
	TEST_ASSERT_EQ(tsc_khz_of(vcpu), khz);
	/* Without TSC scaling a slower guest TSC cannot be had (KVM 6.1's set_tsc_khz). */
	if (!kvm_check_cap(KVM_CAP_TSC_CONTROL))
		TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_TSC_KHZ, (void *)(khz / 2)), EINVAL);
	vm_free(vm);
}

TEST(guest_tsc_starts_near_zero)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_report_tsc);
	uint64_t ten_s = tsc_khz_of(vcpu) * 1000 * 10, before = vcpu_get_msr(vcpu, MSR_IA32_TSC);
	struct ucall uc;

	TEST_ASSERT(before < ten_s, "a new vCPU's TSC is %#" PRIx64, before);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] >= before && uc.args[1] < ten_s,
		    "guest TSC %#" PRIx64 ", %#" PRIx64 " before the run", uc.args[1], before);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_TSC_ADJUST), 0);
	vm_free(vm);
}

/*
 * vCPUs created apart in time still share one TSC: creation writes 0, which
 * KVM matches with the first vCPU's.  Only what the guest reads is compared:
 * on a host whose TSC the kernel marked unstable (the test machine's), KVM
 * holds a vCPU's TSC still while it is not loaded and catches it up at the
 * next entry, so userspace reads between runs can lag.
 */
TEST(vcpus_created_apart_agree)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *v0 = vm_vcpu_add(vm, 0, guest_report_tsc), *v1;
	uint64_t khz = tsc_khz_of(v0), g0, g1;
	struct ucall uc;

	usleep(1000000);
	v1 = vm_vcpu_add(vm, 1, guest_report_tsc);
	TEST_ASSERT_EQ(vcpu_run_ucall(v0, &uc), UCALL_SYNC);
	g0 = uc.args[1];
	TEST_ASSERT_EQ(vcpu_run_ucall(v1, &uc), UCALL_SYNC);
	g1 = uc.args[1];
	/* vCPU 1 counts from vCPU 0's start, not its own: it has the second too. */
	TEST_ASSERT(g0 > khz * 800 && near(g1, g0, khz * 500),
		    "guest TSCs: vCPU 0 %#" PRIx64 ", then vCPU 1 %#" PRIx64, g0, g1);
	vm_free(vm);
}

/*
 * The guest moves its TSC forward: IA32_TSC_ADJUST follows by the same
 * amount; then it moves TSC_ADJUST and the TSC follows (SDM vol. 3 17.17.3).
 */
static void guest_tsc_writes(uint64_t slack)
{
	uint64_t t, t2, adj;

	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_TSC_ADJUST), 0);
	t = rdtsc();
	guest_wrmsr(MSR_IA32_TSC, t + BIG_STEP);
	t2 = rdtsc();
	GUEST_ASSERT(t2 >= t + BIG_STEP && t2 < t + BIG_STEP + slack);
	adj = guest_rdmsr(MSR_IA32_TSC_ADJUST);
	/* The TSC moved by the step less the cycles between the RDTSC and the WRMSR. */
	GUEST_ASSERT(adj <= BIG_STEP && adj > BIG_STEP - slack);
	GUEST_SYNC_ARGS(1, adj, t2, 0);

	/* Userspace set TSC_ADJUST to 5 meanwhile, which left the TSC alone. */
	adj = guest_rdmsr(MSR_IA32_TSC_ADJUST);
	GUEST_ASSERT_EQ(adj, 5);
	t = rdtsc();
	guest_wrmsr(MSR_IA32_TSC_ADJUST, adj + BIG_STEP);
	t2 = rdtsc();
	GUEST_ASSERT(t2 >= t + BIG_STEP && t2 < t + BIG_STEP + slack);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_TSC_ADJUST), 5 + BIG_STEP);
}

TEST(tsc_and_tsc_adjust_writes)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_tsc_writes);
	uint64_t khz = tsc_khz_of(vcpu), slack = khz * 1000, adj, tsc, t;
	struct ucall uc;

	vcpu_args_set(vcpu, 1, slack);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	adj = uc.args[1];
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_TSC_ADJUST), adj);
	tsc = vcpu_get_msr(vcpu, MSR_IA32_TSC);
	TEST_ASSERT(near(tsc, uc.args[2], slack), "host reads %#" PRIx64, tsc);

	/*
	 * Userspace's TSC_ADJUST write is a restore: the TSC does not jump.
	 * (It may stand still between ioctls on KVM with an unstable host TSC.)
	 */
	vcpu_set_msr(vcpu, MSR_IA32_TSC_ADJUST, 5);
	t = vcpu_get_msr(vcpu, MSR_IA32_TSC);
	TEST_ASSERT(near(t, tsc, slack), "TSC %#" PRIx64 " after %#" PRIx64, t, tsc);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);

	/* Userspace's TSC write sets the TSC, far from its value, and not TSC_ADJUST. */
	vcpu_set_msr(vcpu, MSR_IA32_TSC, 1ULL << 50);
	t = vcpu_get_msr(vcpu, MSR_IA32_TSC);
	TEST_ASSERT(near(t, 1ULL << 50, slack), "TSC %#" PRIx64, t);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_TSC_ADJUST), 5 + BIG_STEP);
	vm_free(vm);
}

/*
 * Without TSC_ADJUST in its CPUID, the guest's writes to it are ignored, not
 * refused, yet the MSR still reads back what TSC writes added to it: KVM
 * keeps the count whatever the CPUID says.
 */
static void guest_no_tsc_adjust(uint64_t slack)
{
	uint64_t adj;

	guest_wrmsr(MSR_IA32_TSC, rdtsc() + BIG_STEP);
	adj = guest_rdmsr(MSR_IA32_TSC_ADJUST);
	GUEST_ASSERT(adj <= BIG_STEP && adj > BIG_STEP - slack);
	guest_wrmsr(MSR_IA32_TSC_ADJUST, 0);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_IA32_TSC_ADJUST), adj);
	GUEST_SYNC_ARGS(1, adj, 0, 0);
}

TEST(tsc_adjust_without_cpuid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_no_tsc_adjust);
	uint64_t slack = tsc_khz_of(vcpu) * 1000;
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 7, 0);
	struct ucall uc;

	TEST_ASSERT(e && (e->ebx & CPUID_7_EBX_TSC_ADJUST), "TSC_ADJUST is supported");
	e->ebx &= ~CPUID_7_EBX_TSC_ADJUST;
	vcpu_set_cpuid(vcpu, vm->cpuid);
	vcpu_args_set(vcpu, 1, slack);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	/* Userspace's write is ignored the same way. */
	vcpu_set_msr(vcpu, MSR_IA32_TSC_ADJUST, 7);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_TSC_ADJUST), uc.args[1]);
	vm_free(vm);
}
