// SPDX-License-Identifier: GPL-2.0
/*
 * The nested CPUID round trip, for make bench: L2 runs CPUID, which L1
 * intercepts; L1 moves L2's RIP past it and runs L2 again.  One round trip
 * is L2 -> L0 -> L1 (a #VMEXIT emulated by L0) and L1 -> L0 -> L2 (L1's
 * VMRUN emulated by L0).  L1 times the loop with RDTSC.  It needs the
 * hypervisor loaded with nesting on (kvm_amd's default, minikvm nested=1)
 * and prints nothing without it.  Absolute numbers mean nothing under
 * emulation; tools/bench compares the two hypervisors.
 */
#include "apic.h"
#include "kvm_util.h"
#include "svm.h"

#define ROUNDS 1000

static void l2_cpuid_loop(void)
{
	for (int i = 0; i < ROUNDS; i++) {
		uint32_t a, b, c, d;

		guest_cpuid(0, 0, &a, &b, &c, &d);
	}
}

static void l1_round_trips(void)
{
	struct svm_l2 l2;
	uint64_t t0;

	svm_l1_enable();
	svm_l2_init(&l2, l2_cpuid_loop);
	l2.vmcb->control.intercept_misc1 |= INTERCEPT_CPUID;
	t0 = guest_rdtsc();
	for (int i = 0; i < ROUNDS; i++) {
		GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_CPUID);
		svm_skip_insn(&l2, 2);
	}
	GUEST_SYNC_ARGS(1, (guest_rdtsc() - t0) / ROUNDS, 0, 0);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	svm_stgi();
	GUEST_DONE();
}

TEST(nested_cpuid_round_trip)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = svm_vm_create(l1_round_trips, &vcpu);
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	test_log("BENCH nested_cpuid_round_trip tsc_cycles %llu", (unsigned long long)uc.args[1]);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}
