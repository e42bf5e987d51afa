// SPDX-License-Identifier: GPL-2.0
/*
 * The library's ring 3 (lib/guest.c: guest_user_call()): user code runs at
 * CPL 3 with the user segments, returns its value, and comes back after an
 * exception, which is taken on the kernel stack TSS.RSP0 names (SDM vol. 3
 * 6.12.1) and reported to the host by guest_exception_report().  The checks
 * of an access from ring 3 are the CPU's here, not the hypervisor's: the
 * test image is supervisor-only, and without IOPL 3 there is no I/O
 * permission bitmap to allow a port.
 */
#include "kvm_util.h"

#define UD_VECTOR	6
#define GP_VECTOR	13
#define PF_VECTOR	14
#define PORT		0x6b1

/*
 * User code, in pages of its own: um_info returns CS in bits 15:0, SS in
 * bits 31:16, and the sum of its four arguments above; um_read returns the
 * quadword at its first argument; um_out writes its first to the port in
 * its second; um_ud2 faults.
 */
extern const char um_start[], um_end[];
extern const char um_info[], um_ud2[], um_read[], um_read_insn[], um_out[], um_out_insn[];
asm(".pushsection .text.user_mode_test, \"ax\", @progbits\n"
    ".p2align 12\n"
    "um_start:\n"
    "um_info:\n"
    "	lea (%rdi, %rsi), %rax\n"
    "	add %rdx, %rax\n"
    "	add %rcx, %rax\n"
    "	shl $32, %rax\n"
    "	mov %ss, %edx\n"
    "	shl $16, %edx\n"
    "	or %rdx, %rax\n"
    "	mov %cs, %edx\n"
    "	or %rdx, %rax\n"
    "	ret\n"
    "um_ud2:\n"
    "	ud2\n"
    "um_read:\n"
    "um_read_insn:\n"
    "	mov (%rdi), %rax\n"
    "	ret\n"
    "um_out:\n"
    "	mov %edi, %eax\n"
    "	mov %esi, %edx\n"
    "um_out_insn:\n"
    "	outb %al, %dx\n"
    "	ret\n"
    ".p2align 12\n"
    "um_end:\n"
    ".popsection\n");

static volatile uint64_t kernel_secret = 0x5ec7e75ec7e7ULL;

static void guest_main(uint64_t fn, uint64_t rflags, uint64_t a0, uint64_t a1)
{
	uint64_t r;

	r = guest_user_call((guest_user_fn)fn, rflags, a0, a1, 3, 4);
	GUEST_SYNC_ARGS(1, r, 0, 0);
	/* Ring 3 again after the first call, whatever it did. */
	r = guest_user_call((guest_user_fn)um_info, 0, 10, 20, 30, 40);
	GUEST_ASSERT_EQ(r, (100ULL << 32) | ((uint64_t)SEL_UDATA << 16) | SEL_UCODE64);
}

static struct kvm_vcpu *setup(struct kvm_vm *vm, const char *fn, uint64_t rflags, uint64_t a0,
			      uint64_t a1)
{
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_main);

	virt_set_user(vm, (uint64_t)um_start, um_end - um_start);
	vm_install_exception_handler(vm, UD_VECTOR, guest_exception_report);
	vm_install_exception_handler(vm, GP_VECTOR, guest_exception_report);
	vm_install_exception_handler(vm, PF_VECTOR, guest_exception_report);
	vcpu_args_set(vcpu, 4, (uint64_t)fn, rflags, a0, a1);
	return vcpu;
}

/* The exception the guest reports: from ring 3 at @rip, on the kernel stack. */
static struct ex_regs *expect_exception(struct kvm_vcpu *vcpu, uint64_t vector,
					uint64_t error_code, const char *rip)
{
	struct ucall uc;
	struct ex_regs *ex;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_EXCEPTION);
	ex = ucall_ex_regs(vcpu, &uc);
	TEST_ASSERT_EQ(uc.args[0], vector);
	TEST_ASSERT_EQ(uc.args[1], error_code);
	TEST_ASSERT_EQ(uc.args[3], (uint64_t)rip);
	TEST_ASSERT_EQ(uc.args[4], SEL_UCODE64);
	TEST_ASSERT_EQ(ex->ss, SEL_UDATA);
	/* The handler ran on the vCPU's stack, below the frame guest_user_call() left. */
	TEST_ASSERT(uc.args[5] < vcpu->stack_top && uc.args[5] >= vcpu->stack_top -
		    GUEST_STACK_SIZE, "the exception's frame at %#" PRIx64 " is not on the "
		    "kernel stack (top %#" PRIx64 ")", uc.args[5], vcpu->stack_top);
	return ex;
}

static void expect_return(struct kvm_vcpu *vcpu, uint64_t value)
{
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], value);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
}

/* A call runs at CPL 3 with the user segments and returns its value, twice. */
TEST(call_returns_value)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = setup(vm, um_info, 0, 1, 2);
	struct kvm_sregs s;

	expect_return(vcpu, (10ULL << 32) | ((uint64_t)SEL_UDATA << 16) | SEL_UCODE64);
	/* Back at CPL 0 with the kernel's segments. */
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cs.selector, SEL_CODE64);
	TEST_ASSERT_EQ(s.ds.selector, SEL_DATA);
	TEST_ASSERT_EQ(s.es.selector, SEL_DATA);
	vm_free(vm);
}

/* An exception in ring 3 is reported and ends the call. */
TEST(exception_ends_call)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = setup(vm, um_ud2, 0, 0, 0);
	struct ex_regs *ex = expect_exception(vcpu, UD_VECTOR, 0, um_ud2);

	/* On the user stack, below the return address of the call into um_ud2. */
	TEST_ASSERT_EQ(ex->rsp, (uint64_t)guest_user_stack + GUEST_USER_STACK_SIZE - 8);
	expect_return(vcpu, GUEST_USER_FAULTED(UD_VECTOR));
	vm_free(vm);
}

/* The test image is supervisor-only: a user read of it is #PF U|P. */
TEST(kernel_page_is_not_user)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = setup(vm, um_read, 0, (uint64_t)&kernel_secret, 0);
	struct ucall uc;

	expect_exception(vcpu, PF_VECTOR, 0x5, um_read_insn);
	/* A user page reads fine: the pages of the user code. */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], GUEST_USER_FAULTED(PF_VECTOR));
	vcpu_run_until_done(vcpu);
	vcpu_restart(vcpu, (void (*)(void))guest_main);
	vcpu_args_set(vcpu, 4, (uint64_t)um_read, 0, (uint64_t)um_info, 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], *(const uint64_t *)um_info);
	vm_free(vm);
}

/* IN and OUT at CPL 3 need IOPL 3: the library's TSS has no I/O bitmap. */
TEST(port_io_needs_iopl)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = setup(vm, um_out, 0, 0x42, PORT);
	struct ucall uc;

	expect_exception(vcpu, GP_VECTOR, 0, um_out_insn);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], GUEST_USER_FAULTED(GP_VECTOR));
	vcpu_run_until_done(vcpu);

	vcpu_restart(vcpu, (void (*)(void))guest_main);
	vcpu_args_set(vcpu, 4, (uint64_t)um_out, RFLAGS_IOPL3, 0x42, PORT);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT(vcpu->run->io.port == PORT && vcpu->run->io.direction == KVM_EXIT_IO_OUT &&
		    *((uint8_t *)vcpu->run + vcpu->run->io.data_offset) == 0x42,
		    "port exit on %#x", vcpu->run->io.port);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vm_free(vm);
}
