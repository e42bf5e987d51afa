// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_GET/SET_DEBUGREGS: the reset values, the host's values seen by the
 * guest, the guest's seen by the host, and KVM's checks.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define DR6_RESET 0xffff0ff0ULL
#define DR7_RESET 0x400ULL

static void guest_debugregs(void)
{
	uint64_t d0, d1, d2, d3, d6, d7;

	asm volatile("mov %%dr0, %0; mov %%dr1, %1; mov %%dr2, %2; mov %%dr3, %3"
		     : "=r"(d0), "=r"(d1), "=r"(d2), "=r"(d3));
	asm volatile("mov %%dr6, %0; mov %%dr7, %1" : "=r"(d6), "=r"(d7));
	GUEST_SYNC_ARGS(1, d0, d1, d2);
	GUEST_SYNC_ARGS(2, d3, d6, d7);
	/* Breakpoint addresses and conditions, none enabled. */
	asm volatile("mov %0, %%dr0; mov %1, %%dr1; mov %2, %%dr2; mov %3, %%dr3"
		     :: "r"(0x1000ULL), "r"(0x2000ULL), "r"(0x3000ULL), "r"(0x4000ULL));
	asm volatile("mov %0, %%dr7" :: "r"(0x00f00400ULL));
	GUEST_SYNC(3);
}

TEST(debugregs_round_trip_with_guest)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_debugregs);
	struct kvm_debugregs d;
	struct ucall uc;

	memset(&d, 0xaa, sizeof(d));
	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &d, "KVM_GET_DEBUGREGS");
	TEST_ASSERT_EQ(d.db[0] | d.db[1] | d.db[2] | d.db[3], 0);
	TEST_ASSERT_EQ(d.dr6, DR6_RESET);
	TEST_ASSERT_EQ(d.dr7, DR7_RESET);
	TEST_ASSERT_EQ(d.flags, 0);

	memset(&d, 0, sizeof(d));
	d.db[0] = 0xffffffff81000000ULL;
	d.db[1] = 0x7fff00001000ULL;
	d.db[2] = 0x12345678;
	d.db[3] = 0x9abcdef0;
	d.dr6 = DR6_RESET | 1;			/* B0 */
	d.dr7 = DR7_RESET | 0x00050000;		/* RW0 and LEN0, not enabled */
	vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &d, "KVM_SET_DEBUGREGS");
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], d.db[0]);
	TEST_ASSERT_EQ(uc.args[2], d.db[1]);
	TEST_ASSERT_EQ(uc.args[3], d.db[2]);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], d.db[3]);
	TEST_ASSERT_EQ(uc.args[2], d.dr6);
	TEST_ASSERT_EQ(uc.args[3], d.dr7);

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 3);
	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &d, "KVM_GET_DEBUGREGS");
	TEST_ASSERT_EQ(d.db[0], 0x1000);
	TEST_ASSERT_EQ(d.db[1], 0x2000);
	TEST_ASSERT_EQ(d.db[2], 0x3000);
	TEST_ASSERT_EQ(d.db[3], 0x4000);
	TEST_ASSERT_EQ(d.dr7, 0x00f00400);
	vm_free(vm);
}

TEST(bad_debugregs_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_debugregs);
	struct kvm_debugregs d, good;

	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &good, "KVM_GET_DEBUGREGS");
	d = good;
	d.flags = 1;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &d), EINVAL);
	d = good;
	d.dr6 |= 1ULL << 32;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &d), EINVAL);
	d = good;
	d.dr7 |= 1ULL << 32;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &d), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, (void *)8), EFAULT);
	/* Nothing was changed by the refusals. */
	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &d, "KVM_GET_DEBUGREGS");
	TEST_ASSERT(!memcmp(&d, &good, sizeof(d)), "refused KVM_SET_DEBUGREGS changed state");
	TEST_ASSERT_EQ(ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS), 1);
	vm_free(vm);
}
