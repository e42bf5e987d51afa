// SPDX-License-Identifier: GPL-2.0
/*
 * Running guests: real, 32-bit and 64-bit mode; HLT; triple fault; signals
 * and immediate_exit; guest exceptions reported to the host.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"

/* Real mode: arithmetic, a memory round trip, then "out %ax" and hlt. */
extern const char rm_start[], rm_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "rm_start:\n"
    "	mov $0x1234, %ax\n"
    "	add $0x1111, %ax\n"
    "	mov %ax, %bx\n"
    "	movw $0xbeef, (0x600)\n"
    "	mov (0x600), %cx\n"
    "	mov %cs, %dx\n"
    "	out %ax, $0x10\n"
    "	hlt\n"
    "rm_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(real_mode_guest)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, rm_start, rm_end, &vcpu);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs s;
	struct kvm_regs r;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, 0x10);
	TEST_ASSERT_EQ(run->io.size, 2);
	TEST_ASSERT_EQ(*(uint16_t *)((char *)run + run->io.data_offset), 0x2345);
	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(r.rbx & 0xffff, 0x2345);
	TEST_ASSERT_EQ(r.rcx & 0xffff, 0xbeef);
	TEST_ASSERT_EQ(r.rdx & 0xffff, 0);
	TEST_ASSERT_EQ(*(uint16_t *)gpa2hva(vm, 0x600), 0xbeef);
	TEST_ASSERT_EQ(s.cr0 & 1, 0);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rip, GUEST_CODE16_GPA + (rm_end - rm_start));
	vm_free(vm);
}

/* Flat 32-bit protected mode: 32-bit arithmetic, memory, selector check. */
extern const char pm_start[], pm_end[];
asm(".pushsection .rodata\n"
    ".code32\n"
    "pm_start:\n"
    "	mov $0x12345678, %eax\n"
    "	mov %eax, 0x600000\n"
    "	mov 0x600000, %ebx\n"
    "	shl $4, %ebx\n"
    "	mov %cs, %ecx\n"
    "	out %eax, $0x20\n"
    "	hlt\n"
    "pm_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(protected_mode_32bit_guest)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_PROT32, pm_start, pm_end, &vcpu);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs s;
	struct kvm_regs r;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, 0x20);
	TEST_ASSERT_EQ(run->io.size, 4);
	TEST_ASSERT_EQ(*(uint32_t *)((char *)run + run->io.data_offset), 0x12345678);
	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(r.rbx, 0x23456780);
	TEST_ASSERT_EQ(r.rcx & 0xffff, SEL_CODE32);
	TEST_ASSERT_EQ(*(uint32_t *)gpa2hva(vm, 0x600000), 0x12345678);
	TEST_ASSERT_EQ(s.cr0 & 0x80000001, 1);	/* PE, no paging */
	TEST_ASSERT_EQ(s.cs.db, 1);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vm_free(vm);
}

static uint64_t fib(uint64_t n)
{
	uint64_t a = 0, b = 1;

	while (n--) {
		uint64_t t = a + b;

		a = b;
		b = t;
	}
	return a;
}

static void guest_long_mode(void)
{
	uint64_t efer = guest_rdmsr(0xc0000080);
	uint64_t cr0, cr4;

	asm volatile("mov %%cr0, %0; mov %%cr4, %1" : "=r"(cr0), "=r"(cr4));
	GUEST_ASSERT(efer & (1 << 10));		/* LMA */
	GUEST_ASSERT(cr0 & (1ULL << 31));	/* PG */
	GUEST_SYNC_ARGS(1, fib(90), cr4, 0);
}

TEST(long_mode_guest)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_long_mode);
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 2880067194370816120ULL);
	TEST_ASSERT_EQ(uc.args[2] & (1 << 5), 1 << 5);	/* PAE */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

static void guest_hlt_then_sync(void)
{
	asm volatile("hlt; hlt_done: nop");
	GUEST_SYNC(7);
}

TEST(hlt_without_irqchip_exits)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_hlt_then_sync);
	extern char hlt_done[];
	struct kvm_regs r;
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	/* RIP is past the HLT, so running again continues the guest. */
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rip, (uint64_t)hlt_done);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 7);
	vm_free(vm);
}

static void guest_triple_fault(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty_idt = { 0, 0 };

	/* #UD cannot be delivered through an empty IDT: #GP, #DF, then shutdown. */
	asm volatile("lidt %0; ud2" :: "m"(empty_idt));
}

TEST(triple_fault_is_shutdown)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_triple_fault);

	struct kvm_sregs s;
	struct kvm_regs r;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_SHUTDOWN);
	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	if (host_cpu_is_intel()) {
		/* kvm_intel leaves the vCPU as the shutdown found it: in long mode. */
		TEST_ASSERT(r.rip != 0xfff0 && (s.cr0 & 0x80000001) == 0x80000001 &&
			    (s.efer & (1 << 10)), "vCPU reset at a shutdown on Intel: rip %#llx "
			    "cr0 %#llx efer %#llx", r.rip, s.cr0, s.efer);
	} else {
		/* KVM on AMD resets the vCPU as after INIT: at the reset vector, in real mode. */
		TEST_ASSERT_EQ(r.rip, 0xfff0);
		TEST_ASSERT_EQ(s.cs.base, 0xffff0000);
		TEST_ASSERT_EQ(s.cr0 & 1, 0);
	}
	vm_free(vm);
}

static void guest_spin(void)
{
	for (;;)
		asm volatile("pause");
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal++;
}

/* A signal already pending and unblocked for KVM_RUN stops it before entry. */
TEST(pending_signal_eintr)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_spin);
	struct {
		struct kvm_signal_mask hdr;
		uint64_t set;
	} mask = { .hdr.len = 8, .set = 0 };
	sigset_t block;

	signal(SIGUSR1, on_signal);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	TEST_ASSERT_EQ(got_signal, 0);
	/* Inside KVM_RUN nothing is blocked, so the pending signal interrupts it. */
	vcpu_ioctl(vcpu, KVM_SET_SIGNAL_MASK, &mask, "KVM_SET_SIGNAL_MASK");
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_INTR);
	/* The thread's own mask is back: the signal is still pending, not lost. */
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	TEST_ASSERT_EQ(got_signal, 1);
	vm_free(vm);
}

/* A signal that arrives while the guest spins kicks it out with EINTR. */
TEST(signal_during_guest_eintr)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_spin);
	struct sigaction sa = { .sa_handler = on_signal };
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR2 };
	struct itimerspec its = { .it_value.tv_nsec = 200 * 1000 * 1000 };
	timer_t timer;
	struct kvm_regs r;

	sigaction(SIGUSR2, &sa, NULL);
	TEST_ASSERT(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0, "timer_create");
	TEST_ASSERT(timer_settime(timer, 0, &its, NULL) == 0, "timer_settime");
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_INTR);
	TEST_ASSERT_EQ(got_signal, 1);
	/* The guest made progress and is still in its loop. */
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT(r.rip >= (uint64_t)guest_spin && r.rip < (uint64_t)guest_spin + 32,
		    "rip %#llx outside guest_spin", r.rip);
	timer_delete(timer);
	vm_free(vm);
}

static void guest_sync_once(void)
{
	GUEST_SYNC(1);
}

TEST(immediate_exit_honoured)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_sync_once);
	struct kvm_regs before, after;
	struct ucall uc;

	vcpu_regs_get(vcpu, &before);
	vcpu->run->immediate_exit = 1;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	/* The guest did not run a single instruction. */
	vcpu_regs_get(vcpu, &after);
	TEST_ASSERT_EQ(after.rip, before.rip);
	vcpu->run->immediate_exit = 0;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vm_free(vm);
}

static void guest_ud2(void)
{
	asm volatile("ud2; ud2_done:");
}

TEST(guest_exception_reported_to_host)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_ud2);
	extern char ud2_done[];
	struct ucall uc;

	/* Without a handler the library reports vector, RIP and error code. */
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_UNHANDLED);
	TEST_ASSERT_EQ(uc.args[0], 6);
	TEST_ASSERT_EQ(uc.args[1], (uint64_t)ud2_done - 2);
	TEST_ASSERT_EQ(uc.args[2], 0);
	vm_free(vm);
}

static void guest_ud_handler(struct ex_regs *regs)
{
	regs->rip += 2;		/* skip the ud2 */
	regs->rax = 0xabcd;
}

static void guest_ud2_handled(void)
{
	uint64_t rax = 0;

	asm volatile("ud2" : "+a"(rax));
	GUEST_ASSERT_EQ(rax, 0xabcd);
	/* A page fault with an error code and CR2 goes through the same path. */
	*(volatile uint64_t *)0x800000000000ULL = 0;
}

TEST(guest_exception_handler_and_page_fault)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_ud2_handled);
	struct ucall uc;

	vm_install_exception_handler(vm, 6, guest_ud_handler);
	vcpu_run(vcpu);
	/* 0x800000000000 is not canonical: #GP(0), not #PF. */
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_UNHANDLED);
	TEST_ASSERT_EQ(uc.args[0], 13);
	TEST_ASSERT_EQ(uc.args[2], 0);
	vm_free(vm);
}

static void guest_page_fault(void)
{
	*(volatile uint64_t *)0x7f0000000008ULL = 1;	/* canonical, not mapped */
}

TEST(guest_page_fault_reported)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_page_fault);
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_UNHANDLED);
	TEST_ASSERT_EQ(uc.args[0], 14);
	TEST_ASSERT_EQ(uc.args[2], 2);			/* write, not present, supervisor */
	TEST_ASSERT_EQ(uc.args[3], 0x7f0000000008ULL);	/* CR2 */
	vm_free(vm);
}

static volatile int db_count;

static void guest_db_handler(struct ex_regs *regs)
{
	/* Three single steps, then clear TF. */
	if (++db_count == 3)
		regs->rflags &= ~(1UL << 8);
}

static void guest_single_step(void)
{
	asm volatile("pushfq; orq $0x100, (%%rsp); popfq; nop; nop; nop; nop; nop" ::: "memory");
	GUEST_SYNC_ARGS(1, db_count, 0, 0);
}

/* Single-step #DB traps reach the guest's own handler, one per instruction. */
TEST(single_step_db_reaches_guest)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_single_step);
	struct ucall uc;

	vm_install_exception_handler(vm, 1, guest_db_handler);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 3);
	vm_free(vm);
}
