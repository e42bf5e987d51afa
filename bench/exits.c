// SPDX-License-Identifier: GPL-2.0
/*
 * Exit round trips, for make bench.  Each case prints "# BENCH metric unit
 * value" lines; tools/bench runs this binary on minikvm and on the reference
 * KVM in turn and compares.  Absolute numbers mean nothing under emulation.
 */
#include <time.h>

#include "kvm_util.h"

#define ITERS 2000
#define MMIO_GPA 0xc0000000ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static inline uint64_t guest_rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

/* Exits handled in the kernel: the guest times a loop of them with RDTSC. */
static void guest_in_kernel(uint64_t kind)
{
	uint64_t t0 = guest_rdtsc();

	for (int i = 0; i < ITERS; i++) {
		if (kind == 0) {
			uint32_t a, b, c, d;

			guest_cpuid(0, 0, &a, &b, &c, &d);
		} else if (kind == 1) {
			uint64_t rax = 0x7fffffff;	/* no such hypercall */

			asm volatile("vmmcall" : "+a"(rax) :: "memory");
		} else {
			uint64_t rax = 0x7fffffff;

			asm volatile("vmcall" : "+a"(rax) :: "memory");
		}
	}
	GUEST_SYNC_ARGS(1, (guest_rdtsc() - t0) / ITERS, 0, 0);
}

static void bench_in_kernel(const char *metric, uint64_t kind)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_in_kernel);
	struct ucall uc;

	vcpu_args_set(vcpu, 1, kind);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	test_log("BENCH %s tsc_cycles %llu", metric, (unsigned long long)uc.args[1]);
	vm_free(vm);
}

TEST(cpuid_exit)
{
	bench_in_kernel("cpuid_exit", 0);
}

/*
 * The hypercall of the host's vendor: VMMCALL on AMD, VMCALL on Intel, where
 * VMMCALL is a #UD that KVM and minikvm emulate (KVM then patches it).
 */
TEST(vmmcall_exit)
{
	if (host_cpu_is_intel())
		bench_in_kernel("vmcall_exit", 2);
	else
		bench_in_kernel("vmmcall_exit", 1);
}

/* Exits to userspace: the host times KVM_RUN round trips, the guest its loop. */
static void guest_to_user(uint64_t kind)
{
	uint64_t t0 = guest_rdtsc();

	for (int i = 0; i < ITERS; i++) {
		if (kind == 0)
			guest_outb(0x80, i);
		else
			*(volatile uint32_t *)MMIO_GPA = i;
	}
	GUEST_SYNC_ARGS(1, (guest_rdtsc() - t0) / ITERS, 0, 0);
}

static void bench_to_user(const char *metric, uint64_t kind)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_to_user);
	uint32_t want = kind == 0 ? KVM_EXIT_IO : KVM_EXIT_MMIO;
	struct ucall uc;
	uint64_t t0;

	vcpu_args_set(vcpu, 1, kind);
	t0 = now_ns();
	for (int i = 0; i < ITERS; i++) {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, want);
	}
	t0 = now_ns() - t0;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	test_log("BENCH %s_guest tsc_cycles %llu", metric, (unsigned long long)uc.args[1]);
	test_log("BENCH %s_host ns %llu", metric, (unsigned long long)(t0 / ITERS));
	vm_free(vm);
}

TEST(pio_exit_to_user)
{
	bench_to_user("pio_exit", 0);
}

TEST(mmio_exit_to_user)
{
	bench_to_user("mmio_exit", 1);
}
