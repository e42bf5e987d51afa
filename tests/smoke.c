// SPDX-License-Identifier: GPL-2.0
#include "kvm_util.h"

static volatile uint64_t counter = 5;

static void guest_main(void)
{
	GUEST_SYNC(1);
	counter++;
	GUEST_ASSERT_EQ(counter, 6);
	GUEST_SYNC_ARGS(2, counter, 0, 0);
}

TEST(long_mode_ucall)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_main);
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 6);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}
