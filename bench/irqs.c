// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupt round trips with the in-kernel irqchip, for make bench: an HLT
 * woken by the local APIC timer, the same timer ending a busy loop, and
 * IPIs between two halted vCPUs in their own threads. Each case prints
 * "# BENCH metric unit value";
 * tools/bench compares minikvm with the reference KVM. Absolute numbers
 * mean nothing under emulation.
 */
#include "apic.h"

#define ITERS		500
#define VEC		0x50
/* 1 us at KVM's 1 GHz APIC bus: both modules wait the same. */
#define TIMER_COUNT	1000
/*
 * 100 us for the busy loop: long enough that the guest runs when the timer
 * expires, rather than the host still handling the TMICT write's exit.
 */
#define BUSY_TIMER_COUNT 100000

static volatile uint64_t irqs[2];

/*
 * Halt until @count interrupts arrived. The check runs with interrupts off
 * and STI's shadow covers HLT, so one arriving in between is not missed.
 */
static void wait_irqs(uint32_t id, uint64_t count)
{
	asm volatile("cli");
	while (irqs[id] < count)
		asm volatile("sti; hlt; cli");
	asm volatile("sti");
}

static void irq_handler(struct ex_regs *regs)
{
	(void)regs;
	irqs[xapic_id()]++;
	xapic_write(APIC_EOI, 0);
}

/* One-shot timer armed, then HLT until its interrupt: the whole wake-up path. */
static void guest_hlt_timer(void)
{
	uint64_t t0;

	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	xapic_write(APIC_LVTT, VEC);
	t0 = guest_rdtsc();
	for (int i = 1; i <= ITERS; i++) {
		xapic_write(APIC_TMICT, TIMER_COUNT);
		wait_irqs(0, i);
	}
	GUEST_SYNC_ARGS(1, (guest_rdtsc() - t0) / ITERS, 0, 0);
	GUEST_DONE();
}

/* One vCPU runs @guest, which reports its cycles per round; logged as @metric. */
static void one_vcpu_bench(void (*guest)(void), const char *metric)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	vm_install_exception_handler(vm, VEC, irq_handler);
	vcpu = vm_vcpu_add(vm, 0, guest);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	test_log("BENCH %s tsc_cycles %llu", metric, (unsigned long long)uc.args[1]);
	vm_free(vm);
}

TEST(hlt_timer_wake)
{
	one_vcpu_bench(guest_hlt_timer, "hlt_timer_wake");
}

/*
 * One-shot timer armed, then a busy loop with interrupts on until its
 * interrupt: the vCPU never halts, so the expiry must end a running entry
 * (VMX's preemption timer, or the host's timer interrupt).
 */
static void guest_busy_timer(void)
{
	uint64_t t0;

	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	xapic_write(APIC_LVTT, VEC);
	asm volatile("sti");
	t0 = guest_rdtsc();
	for (int i = 1; i <= ITERS; i++) {
		xapic_write(APIC_TMICT, BUSY_TIMER_COUNT);
		while (irqs[0] < (uint64_t)i)
			asm volatile("" ::: "memory");
	}
	GUEST_SYNC_ARGS(1, (guest_rdtsc() - t0) / ITERS, 0, 0);
	GUEST_DONE();
}

TEST(busy_timer_wake)
{
	one_vcpu_bench(guest_busy_timer, "busy_timer_wake");
}

static uint64_t result;			/* written by vCPU 0 once, before GUEST_DONE */
static volatile uint64_t apic_on;	/* vCPU 0's APIC takes interrupts */

/* vCPU 0 and 1 take turns: each IPIs the other and halts until it is IPIed back. */
static void guest_ping_pong(void)
{
	uint64_t t0;

	xapic_enable();
	asm volatile("sti");
	if (xapic_id() == 1) {
		/* A software-disabled APIC drops fixed IPIs (SDM 10.4.7.2). */
		while (!apic_on)
			asm volatile("pause");
		xapic_icr(0, ICR_FIXED | VEC);		/* "ready" */
		for (uint64_t i = 1; i <= ITERS; i++) {
			wait_irqs(1, i);
			xapic_icr(0, ICR_FIXED | VEC);
		}
		GUEST_DONE();
	}
	apic_on = 1;
	wait_irqs(0, 1);
	t0 = guest_rdtsc();
	for (uint64_t i = 1; i <= ITERS; i++) {
		xapic_icr(1, ICR_FIXED | VEC);
		wait_irqs(0, i + 1);
	}
	result = (guest_rdtsc() - t0) / ITERS;
	GUEST_DONE();
}

TEST(ipi_ping_pong)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpus[2];
	struct vcpu_thread t[2];

	vm_install_exception_handler(vm, VEC, irq_handler);
	for (int i = 0; i < 2; i++)
		vcpus[i] = vm_vcpu_add(vm, i, guest_ping_pong);
	/* The library's AP starts where the BSP does, not in wait-for-SIPI. */
	vcpu_set_mp_state(vcpus[1], KVM_MP_STATE_RUNNABLE);
	for (int i = 0; i < 2; i++)
		vcpu_thread_start(&t[i], vcpus[i]);
	for (int i = 0; i < 2; i++)
		vcpu_thread_join(&t[i]);
	sync_global_from_guest(vm, result);
	TEST_ASSERT(result > 0, "the ping-pong measured nothing");
	test_log("BENCH ipi_round_trip tsc_cycles %llu", (unsigned long long)result);
	vm_free(vm);
}
