// SPDX-License-Identifier: GPL-2.0
/*
 * Port I/O exits: KVM_EXIT_IO fields and the data area for IN and OUT of 1,
 * 2 and 4 bytes, and for REP INSB/OUTSB.
 */
#include "kvm_util.h"

static void *io_data(struct kvm_vcpu *vcpu)
{
	return (char *)vcpu->run + vcpu->run->io.data_offset;
}

/* Run to the next exit and check it is port I/O with these fields. */
static void expect_io(struct kvm_vcpu *vcpu, uint8_t dir, uint16_t port, uint8_t size,
		      uint32_t count)
{
	struct kvm_run *run = vcpu->run;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.direction, dir);
	TEST_ASSERT_EQ(run->io.port, port);
	TEST_ASSERT_EQ(run->io.size, size);
	TEST_ASSERT_EQ(run->io.count, count);
	TEST_ASSERT(run->io.data_offset >= sizeof(*run) &&
		    run->io.data_offset + (uint64_t)size * count <= vcpu->vm->run_size,
		    "data_offset %#llx", (unsigned long long)run->io.data_offset);
}

static void guest_out(void)
{
	guest_outb(0x80, 0x11);
	guest_outw(0x82, 0x2233);
	guest_outl(0x84, 0x44556677);
	guest_outb(0x3f8, 0x99);	/* port above 255: the DX form */
}

TEST(out_1_2_4_bytes)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_out);

	expect_io(vcpu, KVM_EXIT_IO_OUT, 0x80, 1, 1);
	TEST_ASSERT_EQ(*(uint8_t *)io_data(vcpu), 0x11);
	expect_io(vcpu, KVM_EXIT_IO_OUT, 0x82, 2, 1);
	TEST_ASSERT_EQ(*(uint16_t *)io_data(vcpu), 0x2233);
	expect_io(vcpu, KVM_EXIT_IO_OUT, 0x84, 4, 1);
	TEST_ASSERT_EQ(*(uint32_t *)io_data(vcpu), 0x44556677);
	expect_io(vcpu, KVM_EXIT_IO_OUT, 0x3f8, 1, 1);
	TEST_ASSERT_EQ(*(uint8_t *)io_data(vcpu), 0x99);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_in(void)
{
	uint64_t a = 0xffffffffffffff00ULL, b, c;

	/* IN of one byte replaces AL only; the rest of RAX is preserved. */
	asm volatile("inb $0x90, %%al" : "+a"(a));
	b = guest_inw(0x92);
	c = guest_inl(0x394);
	GUEST_SYNC_ARGS(1, a, b, c);
}

TEST(in_1_2_4_bytes)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_in);
	struct ucall uc;

	expect_io(vcpu, KVM_EXIT_IO_IN, 0x90, 1, 1);
	*(uint8_t *)io_data(vcpu) = 0xab;
	expect_io(vcpu, KVM_EXIT_IO_IN, 0x92, 2, 1);
	*(uint16_t *)io_data(vcpu) = 0xcdef;
	expect_io(vcpu, KVM_EXIT_IO_IN, 0x394, 4, 1);
	*(uint32_t *)io_data(vcpu) = 0x01234567;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0xffffffffffffffabULL);
	TEST_ASSERT_EQ(uc.args[2], 0xcdef);
	TEST_ASSERT_EQ(uc.args[3], 0x01234567);
	vm_free(vm);
}

static uint8_t guest_buf[64];

static void guest_rep_insb(void)
{
	void *dst = guest_buf;
	uint64_t count = 16;

	asm volatile("cld; rep insb" : "+D"(dst), "+c"(count) : "d"(0x98) : "memory");
	GUEST_SYNC_ARGS(1, *(uint64_t *)&guest_buf[0], *(uint64_t *)&guest_buf[8], count);
	GUEST_SYNC_ARGS(2, (uint64_t)dst - (uint64_t)guest_buf, guest_buf[16], 0);
}

/* KVM reads ahead for REP INS: one exit fills the whole count (up to a page). */
TEST(rep_insb_count_16)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_rep_insb);
	struct ucall uc;

	expect_io(vcpu, KVM_EXIT_IO_IN, 0x98, 1, 16);
	for (int i = 0; i < 16; i++)
		((uint8_t *)io_data(vcpu))[i] = 0xa0 + i;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0xa7a6a5a4a3a2a1a0ULL);
	TEST_ASSERT_EQ(uc.args[2], 0xafaeadacabaaa9a8ULL);
	TEST_ASSERT_EQ(uc.args[3], 0);		/* RCX counted down */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 16);		/* RDI advanced */
	TEST_ASSERT_EQ(uc.args[2], 0);		/* nothing past the count */
	vm_free(vm);
}

static const char out_msg[] = "minikvm rep outs";

static void guest_rep_outsb(void)
{
	const void *src = out_msg;
	uint64_t count = 16;

	asm volatile("cld; rep outsb" : "+S"(src), "+c"(count) : "d"(0x9a) : "memory");
	GUEST_SYNC_ARGS(1, count, (uint64_t)src - (uint64_t)out_msg, 0);
}

/* KVM emulates REP OUTS one element per exit, each with count 1. */
TEST(rep_outsb_count_16)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_rep_outsb);
	struct ucall uc;
	struct kvm_regs r;

	for (int i = 0; i < 16; i++) {
		expect_io(vcpu, KVM_EXIT_IO_OUT, 0x9a, 1, 1);
		TEST_ASSERT(*(char *)io_data(vcpu) == out_msg[i], "byte %d: %#x", i,
			    *(uint8_t *)io_data(vcpu));
		if (i == 3) {
			/* RCX already counts the element this exit is for. */
			vcpu_regs_get(vcpu, &r);
			TEST_ASSERT_EQ(r.rcx, 12);
		}
	}
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0);
	TEST_ASSERT_EQ(uc.args[2], 16);
	vm_free(vm);
}

static void guest_rep_outsw(void)
{
	static const uint16_t words[3] = { 0x1122, 0x3344, 0x5566 };
	const void *src = words;
	uint64_t count = 3;

	asm volatile("cld; rep outsw" : "+S"(src), "+c"(count) : "d"(0x9c) : "memory");
}

TEST(rep_outsw_count_3)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_rep_outsw);
	static const uint16_t expect[3] = { 0x1122, 0x3344, 0x5566 };

	for (int i = 0; i < 3; i++) {
		expect_io(vcpu, KVM_EXIT_IO_OUT, 0x9c, 2, 1);
		TEST_ASSERT_EQ(*(uint16_t *)io_data(vcpu), expect[i]);
	}
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}
