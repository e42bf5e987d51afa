// SPDX-License-Identifier: GPL-2.0
/*
 * One vCPU and its in-kernel local APIC: self-IPIs through the xAPIC page
 * and the x2APIC MSRs, ISR/EOI, TPR and CR8 holding interrupts back, the
 * timer's one-shot, periodic and TSC-deadline modes measured against the
 * guest's TSC, HLT waking in the kernel, and KVM_GET/SET_LAPIC on a
 * running guest.
 */
#include <sys/ioctl.h>

#include "apic.h"

#define VEC_A 0x40
#define VEC_B 0x51
#define VEC_TIMER 0x60

static volatile uint64_t irq_count, last_vector, isr_seen, tsc_at_irq;

static void irq_handler(struct ex_regs *regs)
{
	irq_count++;
	last_vector = regs->vector;
	isr_seen = apic_vec_set(xapic_read, APIC_ISR, regs->vector);
	tsc_at_irq = guest_rdtsc();
	xapic_write(APIC_EOI, 0);
}

static void x2apic_irq_handler(struct ex_regs *regs)
{
	irq_count++;
	last_vector = regs->vector;
	tsc_at_irq = guest_rdtsc();
	guest_wrmsr(X2APIC_MSR(APIC_EOI), 0);
}

static struct kvm_vcpu *one_vcpu(struct kvm_vm **vm, void (*guest)(void), bool tsc_deadline)
{
	struct kvm_cpuid_entry2 *leaf1;

	*vm = vm_create_irqchip();
	leaf1 = cpuid_find((*vm)->cpuid, 1, 0);
	if (tsc_deadline)
		leaf1->ecx |= 1u << 24;
	for (int v = 0x20; v < 0x100; v++)
		vm_install_exception_handler(*vm, v, irq_handler);
	return vm_vcpu_add(*vm, 0, guest);
}

static void guest_registers(uint64_t tpr_kept)
{
	GUEST_ASSERT_EQ(xapic_read(APIC_ID), 0);
	GUEST_ASSERT_EQ(xapic_read(APIC_LVR), 0x50014);
	GUEST_ASSERT_EQ(xapic_read(APIC_SVR), 0xff);
	/* Software-disabled: LVT entries cannot be unmasked (SDM 10.4.7.2). */
	xapic_write(APIC_LVTERR, 0x33);
	GUEST_ASSERT_EQ(xapic_read(APIC_LVTERR), APIC_LVT_MASKED | 0x33);
	xapic_enable();
	GUEST_ASSERT_EQ(xapic_read(APIC_SVR), 0x1ff);
	xapic_write(APIC_LVTERR, 0x33);
	GUEST_ASSERT_EQ(xapic_read(APIC_LVTERR), 0x33);
	/* Only the top byte of LDR and the model nibble of DFR are writable. */
	xapic_write(APIC_LDR, 0x12345678);
	GUEST_ASSERT_EQ(xapic_read(APIC_LDR), 0x12000000);
	xapic_write(APIC_DFR, 0);
	GUEST_ASSERT_EQ(xapic_read(APIC_DFR), 0x0fffffff);
	/*
	 * KVM on AMD keeps the TPR as CR8 (V_TPR) and copies it back on every
	 * exit, so TPR[3:0] read back as 0 once the guest exited in between.
	 * On Intel every MOV to CR8 exits and the TPR keeps its 8 bits; with
	 * nothing in service the PPR is the TPR (SDM 10.8.3.1).
	 */
	xapic_write(APIC_TPR, 0x1234);
	GUEST_ASSERT_EQ(xapic_read(APIC_TPR), tpr_kept);
	GUEST_ASSERT_EQ(xapic_read(APIC_PPR), tpr_kept);
	/* CR8 is TPR[7:4] both ways. */
	uint64_t cr8;
	asm volatile("mov %%cr8, %0" : "=r"(cr8));
	GUEST_ASSERT_EQ(cr8, 3);
	asm volatile("mov %0, %%cr8" :: "r"(9ULL));
	GUEST_ASSERT_EQ(xapic_read(APIC_TPR), 0x90);
	xapic_write(APIC_TPR, 0);
	/* The current count is read-only; the divider keeps bits 3, 1:0. */
	xapic_write(APIC_TDCR, 0xff);
	GUEST_ASSERT_EQ(xapic_read(APIC_TDCR), 0xb);
	GUEST_DONE();
}

TEST(xapic_registers)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, (void (*)(void))guest_registers, false);

	/* What TPR[7:0] = 0x34 reads back as (guest_registers()). */
	vcpu_args_set(vcpu, 1, host_cpu_is_intel() ? 0x34ULL : 0x30ULL);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_self_ipi(void)
{
	xapic_enable();
	asm volatile("sti");
	xapic_icr(0, ICR_SELF | ICR_FIXED | VEC_A);
	asm volatile("nop");
	GUEST_ASSERT_EQ(irq_count, 1);
	GUEST_ASSERT_EQ(last_vector, VEC_A);
	GUEST_ASSERT_EQ(isr_seen, 1);
	GUEST_ASSERT_EQ(apic_vec_set(xapic_read, APIC_ISR, VEC_A), 0);
	/* Physical destination 0 is this APIC; logical flat needs the LDR bit. */
	xapic_icr(0, ICR_FIXED | VEC_B);
	GUEST_ASSERT_EQ(irq_count, 2);
	GUEST_ASSERT_EQ(last_vector, VEC_B);
	xapic_write(APIC_LDR, 0x04000000);
	xapic_icr(0x02, ICR_LOGICAL | VEC_A);
	GUEST_ASSERT_EQ(irq_count, 2);
	xapic_icr(0x06, ICR_LOGICAL | VEC_A);
	GUEST_ASSERT_EQ(irq_count, 3);
	/* With IF clear the interrupt waits in IRR until STI. */
	asm volatile("cli");
	xapic_icr(0, ICR_SELF | VEC_B);
	GUEST_ASSERT_EQ(irq_count, 3);
	GUEST_ASSERT_EQ(apic_vec_set(xapic_read, APIC_IRR, VEC_B), 1);
	asm volatile("sti; nop");
	GUEST_ASSERT_EQ(irq_count, 4);
	GUEST_DONE();
}

TEST(self_ipi_isr_eoi)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, guest_self_ipi, false);

	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_tpr(void)
{
	xapic_enable();
	asm volatile("sti");
	/* TPR class 5 holds back class 5 and below (SDM 10.8.3.1). */
	xapic_write(APIC_TPR, 0x50);
	xapic_icr(0, ICR_SELF | 0x45);
	GUEST_ASSERT_EQ(irq_count, 0);
	GUEST_ASSERT_EQ(xapic_read(APIC_PPR), 0x50);
	xapic_write(APIC_TPR, 0x40);
	GUEST_ASSERT_EQ(irq_count, 0);
	xapic_write(APIC_TPR, 0x30);
	GUEST_ASSERT_EQ(irq_count, 1);
	/* The same through CR8, which the guest writes without an exit. */
	asm volatile("mov %0, %%cr8" :: "r"(6ULL));
	xapic_icr(0, ICR_SELF | 0x55);
	GUEST_ASSERT_EQ(irq_count, 1);
	asm volatile("mov %0, %%cr8" :: "r"(4ULL));
	for (int i = 0; i < 1000 && irq_count == 1; i++)
		asm volatile("pause");
	GUEST_ASSERT_EQ(irq_count, 2);
	GUEST_ASSERT_EQ(last_vector, 0x55);
	GUEST_DONE();
}

TEST(tpr_and_cr8_hold_back_interrupts)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, guest_tpr, false);

	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static uint64_t tsc_hz;

/* Periodic and one-shot at 1 GHz / divide 1: TMICT counts nanoseconds on KVM. */
static void guest_timer(uint64_t hz)
{
	uint64_t t0, ticks;

	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	/* One-shot, 20 ms: one interrupt, not earlier than programmed. */
	xapic_write(APIC_LVTT, VEC_TIMER);
	asm volatile("sti");
	t0 = guest_rdtsc();
	xapic_write(APIC_TMICT, 20000000);
	GUEST_ASSERT(xapic_read(APIC_TMCCT) <= 20000000);
	while (!irq_count)
		asm volatile("hlt");
	ticks = tsc_at_irq - t0;
	GUEST_ASSERT_EQ(last_vector, VEC_TIMER);
	GUEST_SYNC_ARGS(1, ticks, hz / 50, 0);
	GUEST_ASSERT_EQ(xapic_read(APIC_TMCCT), 0);
	for (int i = 0; i < 100; i++)
		asm volatile("pause");
	GUEST_ASSERT_EQ(irq_count, 1);

	/* Periodic, 5 ms: 10 interrupts take about 50 ms of TSC. */
	irq_count = 0;
	xapic_write(APIC_LVTT, APIC_TIMER_PERIODIC | VEC_TIMER);
	xapic_write(APIC_TMICT, 5000000);
	while (!irq_count)
		asm volatile("hlt");
	t0 = tsc_at_irq;
	while (irq_count < 11)
		asm volatile("hlt");
	ticks = tsc_at_irq - t0;
	xapic_write(APIC_TMICT, 0);
	GUEST_SYNC_ARGS(2, ticks, hz / 20, 0);

	/* Masked: the count runs, no interrupt. */
	irq_count = 0;
	xapic_write(APIC_LVTT, APIC_LVT_MASKED | VEC_TIMER);
	xapic_write(APIC_TMICT, 1000000);
	t0 = guest_rdtsc();
	while (guest_rdtsc() - t0 < hz / 100)
		asm volatile("pause");
	GUEST_ASSERT_EQ(irq_count, 0);
	GUEST_DONE();
}

/*
 * A loaded test machine delivers timers late (+60% was seen on the
 * reference KVM with three machines on two host cores): up to three times.
 */
static void check_ratio(uint64_t got, uint64_t want)
{
	check_tsc_time("timer", got, want, 300);
}

TEST(timer_oneshot_periodic_rates)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, (void (*)(void))guest_timer, false);
	struct ucall uc;

	tsc_hz = host_tsc_hz();
	vcpu_args_set(vcpu, 1, tsc_hz);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	check_ratio(uc.args[1], uc.args[2]);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	check_ratio(uc.args[1], uc.args[2]);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

static void guest_deadline(uint64_t hz)
{
	uint64_t deadline;

	xapic_enable();
	xapic_write(APIC_LVTT, APIC_TIMER_DEADLINE | VEC_TIMER);
	/* In deadline mode TMICT is ignored. */
	xapic_write(APIC_TMICT, 1000);
	GUEST_ASSERT_EQ(xapic_read(APIC_TMICT), 0);
	asm volatile("sti");
	for (int n = 1; n <= 5; n++) {
		deadline = guest_rdtsc() + hz / 100;
		guest_wrmsr(MSR_TSC_DEADLINE, deadline);
		GUEST_ASSERT_EQ(guest_rdmsr(MSR_TSC_DEADLINE), deadline);
		while (irq_count < (uint64_t)n)
			asm volatile("hlt");
		/* Never before the deadline (SDM 10.5.4.1), and the MSR reads 0 after. */
		GUEST_ASSERT(tsc_at_irq >= deadline);
		GUEST_ASSERT_EQ(guest_rdmsr(MSR_TSC_DEADLINE), 0);
		GUEST_SYNC_ARGS(1, tsc_at_irq - deadline + hz / 100, hz / 100, 0);
	}
	/* A deadline in the past fires at once; 0 disarms. */
	guest_wrmsr(MSR_TSC_DEADLINE, 1);
	while (irq_count < 6)
		asm volatile("hlt");
	guest_wrmsr(MSR_TSC_DEADLINE, guest_rdtsc() + hz / 100);
	guest_wrmsr(MSR_TSC_DEADLINE, 0);
	deadline = guest_rdtsc();
	while (guest_rdtsc() - deadline < hz / 50)
		asm volatile("pause");
	GUEST_ASSERT_EQ(irq_count, 6);
	/* Leaving deadline mode clears the deadline. */
	guest_wrmsr(MSR_TSC_DEADLINE, guest_rdtsc() + hz);
	xapic_write(APIC_LVTT, VEC_TIMER);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_TSC_DEADLINE), 0);
	GUEST_DONE();
}

TEST(timer_tsc_deadline)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, (void (*)(void))guest_deadline, true);
	struct ucall uc;
	uint64_t total = 0, want = 0;

	vcpu_args_set(vcpu, 1, host_tsc_hz());
	while (vcpu_run_ucall(vcpu, &uc) == UCALL_SYNC) {
		total += uc.args[1];
		want += uc.args[2];
	}
	check_ratio(total, want);
	vm_free(vm);
}

/*
 * The timer expires while the guest runs and never halts: one-shot, then a
 * TSC deadline, each ending the busy loop with its interrupt (on VMX by the
 * preemption timer, Documentation/vmx.rst), not before its time.  A second
 * of TSC bounds each wait.
 */
static void guest_timer_while_spinning(uint64_t hz)
{
	uint64_t t0;

	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	xapic_write(APIC_LVTT, VEC_TIMER);
	asm volatile("sti");
	t0 = guest_rdtsc();
	xapic_write(APIC_TMICT, 2000000);
	/* No PAUSE: pause-loop exiting would end the entries by itself. */
	while (!irq_count && guest_rdtsc() - t0 < hz)
		;
	GUEST_ASSERT_EQ(irq_count, 1);
	GUEST_ASSERT_EQ(last_vector, VEC_TIMER);
	GUEST_SYNC_ARGS(1, tsc_at_irq - t0, hz / 500, 0);

	xapic_write(APIC_LVTT, APIC_TIMER_DEADLINE | VEC_TIMER);
	t0 = guest_rdtsc();
	guest_wrmsr(MSR_TSC_DEADLINE, t0 + hz / 500);
	while (irq_count < 2 && guest_rdtsc() - t0 < hz)
		;
	GUEST_ASSERT_EQ(irq_count, 2);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_TSC_DEADLINE), 0);
	GUEST_SYNC_ARGS(2, tsc_at_irq - t0, hz / 500, 0);
	GUEST_DONE();
}

TEST(timer_fires_while_guest_spins)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, (void (*)(void))guest_timer_while_spinning, true);
	struct ucall uc;

	vcpu_args_set(vcpu, 1, host_tsc_hz());
	for (uint64_t n = 1; n <= 2; n++) {
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], n);
		/* Not early (SDM vol. 3 10.5.4); how late is the loaded host's business. */
		TEST_ASSERT(uc.args[1] >= uc.args[2] * 99 / 100, "timer %llu fired after %llu TSC "
			    "ticks, before %llu", (unsigned long long)n,
			    (unsigned long long)uc.args[1], (unsigned long long)uc.args[2]);
	}
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

/*
 * A deadline as far away as the MSR holds: armed, never due.  Its distance
 * in nanoseconds does not fit in 64 bits on a host whose TSC runs below
 * 1 GHz, which must not trip up the host's arithmetic.
 */
static void guest_far_deadline(uint64_t hz)
{
	uint64_t t0;

	xapic_enable();
	xapic_write(APIC_LVTT, APIC_TIMER_DEADLINE | VEC_TIMER);
	asm volatile("sti");
	guest_wrmsr(MSR_TSC_DEADLINE, ~0ULL);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_TSC_DEADLINE), ~0ULL);
	t0 = guest_rdtsc();
	while (guest_rdtsc() - t0 < hz / 100)
		asm volatile("pause");
	GUEST_ASSERT_EQ(irq_count, 0);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_TSC_DEADLINE), ~0ULL);
	GUEST_DONE();
}

TEST(timer_tsc_deadline_far_future)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, (void (*)(void))guest_far_deadline, true);
	struct ucall uc;

	vcpu_args_set(vcpu, 1, host_tsc_hz());
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

/* Without the CPUID bit, LVTT cannot select deadline mode. */
static void guest_no_deadline(void)
{
	xapic_enable();
	xapic_write(APIC_LVTT, APIC_TIMER_DEADLINE | VEC_TIMER);
	GUEST_ASSERT_EQ(xapic_read(APIC_LVTT), VEC_TIMER);
	GUEST_DONE();
}

TEST(timer_deadline_needs_cpuid)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, guest_no_deadline, false);

	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_x2apic(void)
{
	uint64_t base = guest_rdmsr(MSR_APIC_BASE);

	guest_wrmsr(MSR_APIC_BASE, base | (1 << 10));
	GUEST_ASSERT_EQ(guest_rdmsr(X2APIC_MSR(APIC_ID)), 3);
	GUEST_ASSERT_EQ(guest_rdmsr(X2APIC_MSR(APIC_LDR)), 1 << 3);
	/* The xAPIC page is gone: it reads all ones. */
	GUEST_ASSERT_EQ(*(volatile uint32_t *)(APIC_GPA + APIC_LVR), 0xffffffff);
	GUEST_SYNC(1);
	guest_wrmsr(X2APIC_MSR(APIC_SVR), 0x1ff);
	asm volatile("sti");
	guest_wrmsr(X2APIC_MSR(APIC_SELF_IPI), VEC_A);
	GUEST_ASSERT_EQ(irq_count, 1);
	GUEST_ASSERT_EQ(last_vector, VEC_A);
	/* The ICR is one 64-bit MSR with a 32-bit destination. */
	guest_wrmsr(X2APIC_MSR(APIC_ICR), (3ULL << 32) | VEC_B);
	GUEST_ASSERT_EQ(irq_count, 2);
	GUEST_ASSERT_EQ(last_vector, VEC_B);
	GUEST_ASSERT_EQ(guest_rdmsr(X2APIC_MSR(APIC_ICR)), (3ULL << 32) | VEC_B);
	guest_wrmsr(X2APIC_MSR(APIC_ICR), (4ULL << 32) | VEC_B);
	GUEST_ASSERT_EQ(irq_count, 2);
	GUEST_DONE();
}

static volatile uint64_t gp_count;

static void gp_handler(struct ex_regs *regs)
{
	gp_count++;
	regs->rip += 2;		/* RDMSR and WRMSR are two bytes */
}

static void guest_x2apic_faults(void)
{
	uint64_t base = guest_rdmsr(MSR_APIC_BASE);

	/* x2APIC MSRs fault in xAPIC mode. */
	guest_rdmsr(X2APIC_MSR(APIC_ID));
	GUEST_ASSERT_EQ(gp_count, 1);
	guest_wrmsr(MSR_APIC_BASE, base | (1 << 10));
	/* DFR and ICR2 do not exist in x2APIC mode; the SELF IPI vector is 8 bits. */
	guest_rdmsr(X2APIC_MSR(APIC_DFR));
	guest_rdmsr(X2APIC_MSR(APIC_ICR2));
	guest_wrmsr(X2APIC_MSR(APIC_SELF_IPI), 0x100);
	guest_wrmsr(X2APIC_MSR(APIC_ID), 0);
	GUEST_ASSERT_EQ(gp_count, 5);
	/* x2APIC straight back to xAPIC is illegal (SDM 10.12.5). */
	guest_wrmsr(MSR_APIC_BASE, base);
	GUEST_ASSERT_EQ(gp_count, 6);
	guest_wrmsr(MSR_APIC_BASE, base & ~(3ULL << 10));
	guest_wrmsr(MSR_APIC_BASE, base);
	GUEST_ASSERT_EQ(gp_count, 6);
	GUEST_ASSERT_EQ(xapic_read(APIC_ID), 3 << 24);
	GUEST_DONE();
}

static struct kvm_vcpu *x2apic_vcpu(struct kvm_vm **vm, void (*guest)(void))
{
	struct kvm_vcpu *vcpu;

	*vm = vm_create_irqchip();
	for (int v = 0x20; v < 0x100; v++)
		vm_install_exception_handler(*vm, v, x2apic_irq_handler);
	vm_install_exception_handler(*vm, 13, gp_handler);
	/* An AP (id 3) made runnable by hand, so the ids are not all zero. */
	vcpu = vm_vcpu_add(*vm, 3, guest);
	vcpu_set_mp_state(vcpu, KVM_MP_STATE_RUNNABLE);
	return vcpu;
}

TEST(x2apic_mode)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = x2apic_vcpu(&vm, guest_x2apic);
	struct kvm_lapic_state s;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	/* Without KVM_CAP_X2APIC_API, GET_LAPIC shows the x2APIC id shifted as an xAPIC id. */
	vcpu_get_lapic(vcpu, &s);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_ID), 3 << 24);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LDR), 1 << 3);
	vcpu_set_lapic(vcpu, &s);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

TEST(x2apic_faults)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = x2apic_vcpu(&vm, guest_x2apic_faults);

	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_get_set(void)
{
	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	xapic_write(APIC_LVTT, APIC_TIMER_PERIODIC | VEC_TIMER);
	xapic_write(APIC_TMICT, 2000000);
	xapic_write(APIC_TPR, 0x20);
	asm volatile("sti");
	while (irq_count < 3)
		asm volatile("hlt");
	GUEST_SYNC(1);
	/* The host changed the TPR and the timer's vector. */
	GUEST_ASSERT_EQ(xapic_read(APIC_TPR), 0x30);
	irq_count = 0;
	while (irq_count < 3)
		asm volatile("hlt");
	GUEST_ASSERT_EQ(last_vector, VEC_TIMER + 1);
	GUEST_DONE();
}

TEST(get_set_lapic_while_running)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, guest_get_set, false);
	struct kvm_lapic_state s, s2;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vcpu_get_lapic(vcpu, &s);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_SVR), 0x1ff);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_TPR), 0x20);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LVTT), APIC_TIMER_PERIODIC | VEC_TIMER);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_TMICT), 2000000);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_TDCR), APIC_TDCR_DIV1);
	TEST_ASSERT(lapic_reg(&s, APIC_TMCCT) <= 2000000, "TMCCT %u", lapic_reg(&s, APIC_TMCCT));
	lapic_set_reg(&s, APIC_TPR, 0x30);
	lapic_set_reg(&s, APIC_LVTT, APIC_TIMER_PERIODIC | (VEC_TIMER + 1));
	vcpu_set_lapic(vcpu, &s);
	vcpu_get_lapic(vcpu, &s2);
	TEST_ASSERT_EQ(lapic_reg(&s2, APIC_TPR), 0x30);
	TEST_ASSERT_EQ(lapic_reg(&s2, APIC_LVTT), APIC_TIMER_PERIODIC | (VEC_TIMER + 1));
	TEST_ASSERT_EQ(lapic_reg(&s2, APIC_LVR), 0x50014);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_relocate(void)
{
	uint64_t base = guest_rdmsr(MSR_APIC_BASE);

	GUEST_ASSERT_EQ(base, APIC_GPA | 0x900);
	guest_wrmsr(MSR_APIC_BASE, 0xfed00000 | 0x900);
	GUEST_ASSERT_EQ(*(volatile uint32_t *)(0xfed00000 + APIC_LVR), 0x50014);
	/* Globally disabled: the page reads all ones. */
	guest_wrmsr(MSR_APIC_BASE, 0xfed00000 | 0x100);
	GUEST_ASSERT_EQ(*(volatile uint32_t *)(0xfed00000 + APIC_LVR), 0xffffffff);
	guest_wrmsr(MSR_APIC_BASE, base);
	GUEST_ASSERT_EQ(xapic_read(APIC_LVR), 0x50014);
	GUEST_DONE();
}

TEST(apic_base_relocate_and_disable)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = one_vcpu(&vm, guest_relocate, false);

	vcpu_run_until_done(vcpu);
	vm_free(vm);
}
