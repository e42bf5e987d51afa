// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel i8254 PIT (api.rst 4.62 KVM_CREATE_PIT2, 4.63/4.64
 * KVM_GET/SET_PIT2): channel 0 interrupts at the programmed rate in mode 2
 * and once in mode 0, measured against the guest's TSC, through GSI 0 and
 * whatever IOAPIC pin the routing gives it; counter latch, read-back and
 * port 0x61, which is the PIT's only with KVM_PIT_SPEAKER_DUMMY; the state
 * KVM shows after creation and KVM_GET/SET_PIT2 on a running guest; errnos.
 */
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "apic.h"

#define PIT_HZ		1193182u
#define VEC_PIT		0x50
#define VEC_WAKE	0x80
#define COUNT_10MS	11932u
#define COUNT_20MS	23864u

static volatile uint64_t ticks, first_tsc, last_tsc, done, hold, held;

static void pit_handler(struct ex_regs *regs)
{
	(void)regs;
	last_tsc = guest_rdtsc();
	if (!ticks)
		first_tsc = last_tsc;
	ticks++;
	/* Asked to hold a tick: leave it in service, unacknowledged. */
	if (hold) {
		hold = 0;
		held = 1;
		return;
	}
	xapic_write(APIC_EOI, 0);
}

static void wake_handler(struct ex_regs *regs)
{
	(void)regs;
	xapic_write(APIC_EOI, 0);
}

/* Control word (82C54): channel, LSB then MSB, mode, binary; then the count. */
static void pit_program(int ch, int mode, uint32_t count)
{
	guest_outb(0x43, ch << 6 | 3 << 4 | mode << 1);
	guest_outb(0x40 + ch, count & 0xff);
	guest_outb(0x40 + ch, count >> 8);
}

static uint32_t pit_latch_read(int ch)
{
	guest_outb(0x43, ch << 6);
	return guest_inb(0x40 + ch) | guest_inb(0x40 + ch) << 8;
}

/* Interrupts at pin: the APIC on, the 8259's ExtINT off LINT0 (GSI 0 is its IRQ 0 too). */
static void guest_irq_setup(int pin)
{
	xapic_enable();
	xapic_write(APIC_LVT0, APIC_LVT_MASKED);
	ioapic_set_rte(pin, VEC_PIT);
	asm volatile("sti");
}

static void spin_tsc(uint64_t n)
{
	uint64_t t0 = guest_rdtsc();

	while (guest_rdtsc() - t0 < n)
		asm volatile("pause");
}

static void guest_rate(uint64_t hz)
{
	uint64_t t0;
	uint32_t c;

	guest_irq_setup(0);
	pit_program(0, 2, COUNT_10MS);
	/* Mode 2 counts down from the count and reloads. */
	c = pit_latch_read(0);
	GUEST_ASSERT(c >= 1 && c <= COUNT_10MS);
	while (ticks < 11)
		asm volatile("hlt");
	GUEST_SYNC_ARGS(1, last_tsc - first_tsc, hz / 10, 0);
	/*
	 * Mode 0, 20 ms: one interrupt, no earlier than programmed, then none.
	 * The mode 2 ticks stop with the new count; one already on its way
	 * is drained with the pin masked first.  The drain lasts 2 ms, not
	 * one instruction: a tick waiting in the local APIC goes in only at
	 * the vCPU's next entry, which a single NOP after STI may not see.
	 */
	asm volatile("cli");
	ioapic_set_rte(0, RTE_MASKED | VEC_PIT);
	asm volatile("sti");
	spin_tsc(hz / 500);
	asm volatile("cli");
	pit_program(0, 0, COUNT_20MS);
	t0 = guest_rdtsc();
	ticks = 0;
	ioapic_set_rte(0, VEC_PIT);
	asm volatile("sti");
	while (!ticks)
		asm volatile("hlt");
	GUEST_ASSERT(last_tsc - t0 >= hz / 50 - hz / 500);
	GUEST_SYNC_ARGS(2, last_tsc - t0, hz / 50, 0);
	spin_tsc(hz / 10);
	GUEST_ASSERT_EQ(ticks, 1);
	/* Read-back status of channel 0: OUT high after the terminal count, mode 0, LSB/MSB. */
	guest_outb(0x43, 0xc0 | 0x20 | 1 << 1);
	GUEST_ASSERT_EQ(guest_inb(0x40), 0x80 | 3 << 4 | 0 << 1);
	GUEST_DONE();
}

static void check_ratio(uint64_t got, uint64_t want)
{
	check_tsc_time("PIT", got, want, 150);
}

static struct kvm_vm *vm_with_pit(uint32_t flags, bool irqchip)
{
	struct kvm_vm *vm = irqchip ? vm_create_irqchip() : vm_create(VM_MODE_LONG64);
	struct kvm_pit_config cfg = { .flags = flags };

	vm_ioctl(vm, KVM_CREATE_PIT2, &cfg, "KVM_CREATE_PIT2");
	vm_install_exception_handler(vm, VEC_PIT, pit_handler);
	vm_install_exception_handler(vm, VEC_WAKE, wake_handler);
	return vm;
}

TEST(mode2_rate_and_mode0_oneshot)
{
	struct kvm_vm *vm = vm_with_pit(0, true);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_rate);
	uint64_t hz = host_tsc_hz();
	struct ucall uc;

	vcpu_args_set(vcpu, 1, hz);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	check_ratio(uc.args[1], uc.args[2]);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	check_ratio(uc.args[1], uc.args[2]);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

/* The VMM's routing: ISA IRQ 0 to IOAPIC pin 2 (the MADT override), and nowhere else. */
static void guest_pin2(void)
{
	guest_irq_setup(2);
	pit_program(0, 2, COUNT_10MS);
	while (ticks < 3)
		asm volatile("hlt");
	/* Pin 0 is free now: nothing arrives there. */
	GUEST_ASSERT_EQ(ioapic_get_rte(0) & RTE_REMOTE_IRR, 0);
	GUEST_DONE();
}

TEST(irq0_follows_routing)
{
	struct kvm_vm *vm = vm_with_pit(0, true);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_pin2);
	struct {
		struct kvm_irq_routing hdr;
		struct kvm_irq_routing_entry e[1];
	} r = {
		.hdr.nr = 1,
		.e[0] = { .gsi = 0, .type = KVM_IRQ_ROUTING_IRQCHIP,
			  .u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = 2 } },
	};

	vm_ioctl(vm, KVM_SET_GSI_ROUTING, &r, "KVM_SET_GSI_ROUTING");
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

/* Channel 2 through port 0x61; without an irqchip, nothing interrupts. */
static void guest_ports(void)
{
	uint32_t a, b, c;

	/* Port 0x61: gate and speaker data read back; gate 2 starts low. */
	GUEST_ASSERT_EQ(guest_inb(0x61) & 3, 0);
	guest_outb(0x61, 3);
	GUEST_ASSERT_EQ(guest_inb(0x61) & 3, 3);
	/* Mode 0 with a large count: OUT low until the terminal count. */
	pit_program(2, 0, 0xffff);
	GUEST_ASSERT_EQ(guest_inb(0x61) & 0x20, 0);
	a = pit_latch_read(2);
	spin_tsc(1000000);
	b = pit_latch_read(2);
	GUEST_ASSERT(b < a);
	/* Read-back of status only (count bit set): mode 0, LSB/MSB, OUT low. */
	guest_outb(0x43, 0xc0 | 0x20 | 1 << 3);
	GUEST_ASSERT_EQ(guest_inb(0x42), 3 << 4);
	/* Count and status together: status first, then the latched count. */
	guest_outb(0x43, 0xc0 | 1 << 3);
	GUEST_ASSERT_EQ(guest_inb(0x42), 3 << 4);
	a = guest_inb(0x42) | guest_inb(0x42) << 8;
	GUEST_ASSERT(a < b);
	/* A latched count holds still while the counter runs on (1M TSC cycles: > 100 ticks). */
	guest_outb(0x43, 0x80);
	spin_tsc(1000000);
	b = guest_inb(0x42) | guest_inb(0x42) << 8;
	c = guest_inb(0x42) | guest_inb(0x42) << 8;
	GUEST_ASSERT(b < a && c + 100 < b);
	/* A short count: OUT goes high (bit 5 of port 0x61). */
	pit_program(2, 0, 100);
	spin_tsc(1000000);
	GUEST_ASSERT_EQ(guest_inb(0x61) & 0x20, 0x20);
	/* LSB-only access, mode 2: one byte loads the count, one byte reads it. */
	guest_outb(0x43, 0x80 | 1 << 4 | 2 << 1);
	guest_outb(0x42, 200);
	GUEST_ASSERT(guest_inb(0x42) <= 200);
	guest_outb(0x61, 0);
	GUEST_ASSERT_EQ(guest_inb(0x61) & 3, 0);
	GUEST_DONE();
}

TEST(latch_readback_and_speaker_port)
{
	struct kvm_vm *vm = vm_with_pit(KVM_PIT_SPEAKER_DUMMY, false);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_ports);
	struct kvm_pit_state2 s;

	vcpu_run_until_done(vcpu);
	vm_ioctl(vm, KVM_GET_PIT2, &s, "KVM_GET_PIT2");
	TEST_ASSERT_EQ(s.channels[2].mode, 2);
	TEST_ASSERT_EQ(s.channels[2].count, 200);
	TEST_ASSERT_EQ(s.channels[2].rw_mode, 1);
	TEST_ASSERT_EQ(s.channels[2].gate, 0);
	TEST_ASSERT_EQ(s.flags, 0);
	vm_free(vm);
}

static void guest_speaker_exit(void)
{
	guest_outb(0x61, 3);
	GUEST_DONE();
}

TEST(speaker_port_needs_dummy_flag)
{
	struct kvm_vm *vm = vm_with_pit(0, false);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_speaker_exit);

	/* Without KVM_PIT_SPEAKER_DUMMY, port 0x61 is userspace's. */
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(vcpu->run->io.port, 0x61);
	TEST_ASSERT_EQ(vcpu->run->io.direction, KVM_EXIT_IO_OUT);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

/*
 * Hold one tick in service for 100 ms, then EOI it and count the ticks of
 * the next 20 ms: with reinjection the ten missed ones come at once.
 */
static void guest_reinject(uint64_t hz)
{
	uint64_t n;

	guest_irq_setup(0);
	pit_program(0, 2, COUNT_10MS);
	for (int round = 1; round <= 2; round++) {
		n = ticks;
		while (ticks < n + 2)
			asm volatile("hlt");
		held = 0;
		hold = 1;
		while (!held)
			asm volatile("hlt");
		spin_tsc(hz / 10);
		n = ticks;
		xapic_write(APIC_EOI, 0);
		spin_tsc(hz / 50);
		GUEST_SYNC_ARGS(round, ticks - n, 0, 0);
	}
	GUEST_DONE();
}

TEST(reinject_control)
{
	struct kvm_vm *vm = vm_with_pit(0, true);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_reinject);
	struct kvm_reinject_control rc = { .pit_reinject = 0 };
	struct ucall uc;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_REINJECT_CONTROL), 1);
	vcpu_args_set(vcpu, 1, host_tsc_hz());
	/* The default reinjects: about ten owed ticks, one per EOI, right away. */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	test_log("reinject on: %" PRIu64 " ticks in the 20 ms after the EOI", uc.args[1]);
	TEST_ASSERT(uc.args[1] >= 6, "%" PRIu64 " ticks after a 100 ms hold", uc.args[1]);
	/* Without: the missed ticks merged into the one pending in IRR. */
	vm_ioctl(vm, KVM_REINJECT_CONTROL, &rc, "KVM_REINJECT_CONTROL");
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	test_log("reinject off: %" PRIu64 " ticks in the 20 ms after the EOI", uc.args[1]);
	TEST_ASSERT(uc.args[1] <= 5, "%" PRIu64 " ticks after a 100 ms hold", uc.args[1]);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_count_forever(void)
{
	guest_irq_setup(0);
	pit_program(0, 2, COUNT_10MS);
	while (!done)
		asm volatile("hlt");
	GUEST_DONE();
}

static uint64_t guest_ticks(struct kvm_vm *vm)
{
	return *(volatile uint64_t *)gva2hva(vm, (uint64_t)&ticks);
}

static void wait_ticks(struct kvm_vm *vm, uint64_t want)
{
	for (int i = 0; i < 10000 && guest_ticks(vm) < want; i++)
		usleep(1000);
	TEST_ASSERT(guest_ticks(vm) >= want, "%" PRIu64 " PIT interrupts, expected %" PRIu64,
		    guest_ticks(vm), want);
}

TEST(get_set_pit2_while_running)
{
	struct kvm_vm *vm = vm_with_pit(0, true);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_count_forever);
	struct kvm_msi wake = { .address_lo = 0xfee00000, .data = VEC_WAKE };
	struct kvm_pit_state2 s, saved;
	struct vcpu_thread t;
	uint64_t n;

	vcpu_thread_start(&t, vcpu);
	wait_ticks(vm, 3);
	vm_ioctl(vm, KVM_GET_PIT2, &saved, "KVM_GET_PIT2");
	TEST_ASSERT_EQ(saved.channels[0].mode, 2);
	TEST_ASSERT_EQ(saved.channels[0].count, COUNT_10MS);
	TEST_ASSERT_EQ(saved.channels[0].rw_mode, 3);
	TEST_ASSERT_EQ(saved.channels[0].write_state, 3);
	TEST_ASSERT_EQ(saved.channels[0].gate, 1);
	TEST_ASSERT_EQ(saved.flags, 0);
	/* A new count takes effect at once; the guest keeps getting interrupts. */
	s = saved;
	s.channels[0].count = COUNT_10MS / 2;
	vm_ioctl(vm, KVM_SET_PIT2, &s, "KVM_SET_PIT2");
	vm_ioctl(vm, KVM_GET_PIT2, &s, "KVM_GET_PIT2");
	TEST_ASSERT_EQ(s.channels[0].count, COUNT_10MS / 2);
	wait_ticks(vm, guest_ticks(vm) + 3);
	/* The HPET legacy flag takes IRQ 0 away from the PIT. */
	s.flags = KVM_PIT_FLAGS_HPET_LEGACY;
	vm_ioctl(vm, KVM_SET_PIT2, &s, "KVM_SET_PIT2");
	usleep(50000);
	n = guest_ticks(vm);
	usleep(200000);
	TEST_ASSERT_EQ(guest_ticks(vm), n);
	vm_ioctl(vm, KVM_GET_PIT2, &s, "KVM_GET_PIT2");
	TEST_ASSERT_EQ(s.flags, KVM_PIT_FLAGS_HPET_LEGACY);
	/* Back to the saved state: the interrupts resume. */
	vm_ioctl(vm, KVM_SET_PIT2, &saved, "KVM_SET_PIT2");
	wait_ticks(vm, n + 3);
	*(volatile uint64_t *)gva2hva(vm, (uint64_t)&done) = 1;
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_SIGNAL_MSI, &wake), 1);
	vcpu_thread_join(&t);
	vm_free(vm);
}

TEST(creation_state_and_errnos)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_pit_config cfg = { .flags = 0 };
	struct kvm_pit_state2 s2;
	struct kvm_pit_state s;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_PIT), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_PIT2), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_PIT_STATE2), 1);
	TEST_ASSERT(ioctl(vm->fd, KVM_GET_PIT2, &s2) == -1 && errno == ENXIO, "get2: %d", errno);
	TEST_ASSERT(ioctl(vm->fd, KVM_SET_PIT2, &s2) == -1 && errno == ENXIO, "set2: %d", errno);
	TEST_ASSERT(ioctl(vm->fd, KVM_GET_PIT, &s) == -1 && errno == ENXIO, "get: %d", errno);
	TEST_ASSERT(ioctl(vm->fd, KVM_SET_PIT, &s) == -1 && errno == ENXIO, "set: %d", errno);
	TEST_ASSERT(ioctl(vm->fd, KVM_REINJECT_CONTROL, &(struct kvm_reinject_control){}) == -1 &&
		    errno == ENXIO, "reinject: %d", errno);
	/* Bad pointers fault before the PIT is looked for, except for KVM_GET_PIT2. */
	TEST_ASSERT(ioctl(vm->fd, KVM_SET_PIT2, NULL) == -1 && errno == EFAULT, "set2 NULL");
	TEST_ASSERT(ioctl(vm->fd, KVM_GET_PIT2, NULL) == -1 && errno == ENXIO, "get2 NULL");
	TEST_ASSERT(ioctl(vm->fd, KVM_CREATE_PIT2, NULL) == -1 && errno == EFAULT, "create NULL");
	/* No irqchip needed; one PIT per VM, whichever ioctl made it; other flag bits ignored. */
	cfg.flags = 0x80000000u;
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_CREATE_PIT2, &cfg), 0);
	TEST_ASSERT(ioctl(vm->fd, KVM_CREATE_PIT2, &cfg) == -1 && errno == EEXIST, "twice");
	TEST_ASSERT(ioctl(vm->fd, KVM_CREATE_PIT) == -1 && errno == EEXIST, "old ioctl");
	/* Power-on: no mode (0xff), counts of 65536, gates of channels 0 and 1 high. */
	vm_ioctl(vm, KVM_GET_PIT2, &s2, "KVM_GET_PIT2");
	for (int ch = 0; ch < 3; ch++) {
		TEST_ASSERT_EQ(s2.channels[ch].mode, 0xff);
		TEST_ASSERT_EQ(s2.channels[ch].count, 0x10000);
		TEST_ASSERT_EQ(s2.channels[ch].gate, ch != 2);
		TEST_ASSERT_EQ(s2.channels[ch].rw_mode, 0);
	}
	TEST_ASSERT_EQ(s2.flags, 0);
	/* KVM_SET_PIT: a count of 0 is 65536, and the old struct keeps the flags. */
	vm_ioctl(vm, KVM_GET_PIT, &s, "KVM_GET_PIT");
	s.channels[1].count = 0;
	s.channels[1].mode = 3;
	vm_ioctl(vm, KVM_SET_PIT, &s, "KVM_SET_PIT");
	vm_ioctl(vm, KVM_GET_PIT2, &s2, "KVM_GET_PIT2");
	TEST_ASSERT_EQ(s2.channels[1].count, 0x10000);
	TEST_ASSERT_EQ(s2.channels[1].mode, 3);
	vm_free(vm);

	/* The old KVM_CREATE_PIT takes port 0x61, like KVM_PIT_SPEAKER_DUMMY. */
	vm = vm_create(VM_MODE_LONG64);
	vm_ioctl(vm, KVM_CREATE_PIT, NULL, "KVM_CREATE_PIT");
	vcpu_run_until_done(vm_vcpu_add(vm, 0, guest_speaker_exit));
	vm_free(vm);
}
