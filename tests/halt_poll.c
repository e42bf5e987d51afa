// SPDX-License-Identifier: GPL-2.0
/*
 * Halt polling: KVM_CAP_HALT_POLL on the VM fd and its errors, and halts
 * that end correctly whether the vCPU spins or sleeps: woken by the APIC
 * timer with polling off and with a long maximum, and a halt that nothing
 * ends interrupted by a signal after polling had grown.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "apic.h"

#define VEC		0x50
#define HALTS		50
/* 20 us at KVM's 1 GHz APIC bus, divide by 1. */
#define TIMER_COUNT	20000

static volatile uint64_t irqs;

static void irq_handler(struct ex_regs *regs)
{
	(void)regs;
	irqs++;
	xapic_write(APIC_EOI, 0);
}

static int set_max_poll(struct kvm_vm *vm, uint64_t ns, uint32_t flags)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_HALT_POLL,
		.flags = flags,
		.args = { ns },
	};

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

TEST(halt_poll_cap_reported)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);

	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_CHECK_EXTENSION, (void *)KVM_CAP_HALT_POLL), 1);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_CHECK_EXTENSION, (void *)KVM_CAP_ENABLE_CAP_VM), 1);
	vm_free(vm);
}

TEST(enable_cap_errors)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_enable_cap other = { .cap = KVM_CAP_USER_MEMORY };

	TEST_ASSERT_EQ(set_max_poll(vm, 0, 0), 0);
	TEST_ASSERT_EQ(set_max_poll(vm, 1000000, 0), 0);
	TEST_ASSERT_EQ(set_max_poll(vm, 0xffffffffull, 0), 0);
	TEST_ASSERT_ERRNO(set_max_poll(vm, 1ull << 32, 0), EINVAL);
	TEST_ASSERT_ERRNO(set_max_poll(vm, 1000, 1), EINVAL);
	/* A capability that is not one to enable. */
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_ENABLE_CAP, &other), EINVAL);
	vm_free(vm);
}

/* HALTS one-shot timers, each waited for in HLT; then a halt nothing ends. */
static void guest_timer_halts(void)
{
	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	xapic_write(APIC_LVTT, VEC);
	for (uint64_t i = 1; i <= HALTS; i++) {
		xapic_write(APIC_TMICT, TIMER_COUNT);
		/* STI's shadow covers HLT: a timer firing in between is not missed. */
		asm volatile("cli");
		while (irqs < i)
			asm volatile("sti; hlt; cli");
		asm volatile("sti");
	}
	GUEST_SYNC_ARGS(1, irqs, 0, 0);
	asm volatile("cli; hlt");
	GUEST_SYNC_ARGS(2, irqs, 0, 0);
}

static void on_signal(int sig)
{
	(void)sig;
}

static void timer_halts(uint64_t max_ns)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	irqs = 0;
	vm_install_exception_handler(vm, VEC, irq_handler);
	vcpu = vm_vcpu_add(vm, 0, guest_timer_halts);
	TEST_ASSERT_EQ(set_max_poll(vm, max_ns, 0), 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	TEST_ASSERT_EQ(uc.args[1], HALTS);

	/* The vCPU may poll now, for up to max_ns; the signal still ends KVM_RUN. */
	signal(SIGUSR1, on_signal);
	if (fork() == 0) {
		usleep(300000);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_INTR);
	TEST_ASSERT_EQ(vcpu_get_mp_state(vcpu), KVM_MP_STATE_HALTED);
	vm_free(vm);
}

TEST(timer_wakes_halt_without_polling)
{
	timer_halts(0);
}

TEST(timer_wakes_halt_with_polling)
{
	timer_halts(10000000);
}
