// SPDX-License-Identifier: GPL-2.0
/*
 * GSI routing, MSIs and irqfds (api.rst 4.52 KVM_SET_GSI_ROUTING, 4.70
 * KVM_SIGNAL_MSI, 4.75 KVM_IRQFD): MSIs from KVM_SIGNAL_MSI and from an
 * irqfd on an MSI route reach the right vCPU's handler with the right
 * vector in physical, logical, lowest-priority, NMI and broadcast modes;
 * re-routing a GSI moves an irqfd that already exists; KVM_IRQ_LINE goes
 * through the table; a resampling irqfd holds a level IOAPIC pin high until
 * the guest's EOI and then signals its resamplefd; and the errnos are KVM's.
 */
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "apic.h"

#define MSI_ADDR	0xfee00000u
#define MSI_LOGICAL	(1u << 2)
#define MSI_RH		(1u << 3)
#define MSI_DEST(d)	((uint32_t)(d) << 12)
#define MSI_DM_LOWEST	(1u << 8)
#define MSI_DM_NMI	(4u << 8)
#define MSI_LEVEL	(1u << 15)
#define VEC_A		0x41
#define VEC_B		0x42
#define VEC_C		0x43
#define VEC_WAKE	0x44
#define VEC_LEVEL	0x65
#define VEC_WAKE_HI	0x81		/* above VEC_LEVEL's class while it is in service */
#define MSI_GSI		40
#define LEVEL_PIN	5

static volatile uint64_t irqs[2], nmis[2], last_vec[2], ready[2], done;
static volatile uint64_t level_irqs, eoi_now;

static void irq_handler(struct ex_regs *regs)
{
	uint32_t id = xapic_id();

	last_vec[id] = regs->vector;
	irqs[id]++;
	xapic_write(APIC_EOI, 0);
}

static void nmi_handler(struct ex_regs *regs)
{
	(void)regs;
	nmis[xapic_id()]++;
}

static struct kvm_msi msi(uint32_t addr_lo, uint32_t data)
{
	return (struct kvm_msi){ .address_lo = addr_lo, .data = data };
}

static int signal_msi(struct kvm_vm *vm, uint32_t addr_lo, uint32_t data)
{
	struct kvm_msi m = msi(addr_lo, data);

	return ioctl(vm->fd, KVM_SIGNAL_MSI, &m);
}

/* Wait (10 s at most) until a guest counter reaches a value. */
static void wait_for(struct kvm_vm *vm, volatile uint64_t *g, uint64_t want, const char *what)
{
	volatile uint64_t *p = gva2hva(vm, (uint64_t)g);
	struct timespec ts = { 0, 1000000 };

	for (int i = 0; i < 10000 && *p < want; i++)
		nanosleep(&ts, NULL);
	TEST_ASSERT(*p >= want, "%s: %" PRIu64 ", expected %" PRIu64, what, *p, want);
}

static uint64_t guest_val(struct kvm_vm *vm, volatile uint64_t *g)
{
	return *(volatile uint64_t *)gva2hva(vm, (uint64_t)g);
}

/* Both vCPUs: logical id 1 << id, then halt until the host says done. */
static void guest_wait(void)
{
	uint32_t id = xapic_id();

	xapic_enable();
	xapic_write(APIC_LDR, (1u << id) << 24);
	asm volatile("sti");
	ready[id] = 1;
	while (!done)
		asm volatile("hlt");
	GUEST_DONE();
}

static struct kvm_vm *two_vcpus(struct vcpu_thread *t)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;

	for (int v = VEC_A; v <= VEC_WAKE; v++)
		vm_install_exception_handler(vm, v, irq_handler);
	vm_install_exception_handler(vm, 2, nmi_handler);
	for (int i = 0; i < 2; i++) {
		vcpu = vm_vcpu_add(vm, i, guest_wait);
		if (i)
			vcpu_set_mp_state(vcpu, KVM_MP_STATE_RUNNABLE);
		vcpu_thread_start(&t[i], vcpu);
	}
	wait_for(vm, &ready[0], 1, "vCPU 0 ready");
	wait_for(vm, &ready[1], 1, "vCPU 1 ready");
	return vm;
}

static void finish(struct kvm_vm *vm, struct vcpu_thread *t)
{
	*(volatile uint64_t *)gva2hva(vm, (uint64_t)&done) = 1;
	/* A physical broadcast wakes both: KVM_SIGNAL_MSI counts the APICs reached. */
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR | MSI_DEST(0xff), VEC_WAKE), 2);
	for (int i = 0; i < 2; i++)
		vcpu_thread_join(&t[i]);
	vm_free(vm);
}

TEST(signal_msi_modes)
{
	struct vcpu_thread t[2];
	struct kvm_vm *vm = two_vcpus(t);
	uint64_t sum;
	int r;

	/* Physical destination 1, fixed. */
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR | MSI_DEST(1), VEC_A), 1);
	wait_for(vm, &irqs[1], 1, "vCPU 1 MSI");
	TEST_ASSERT_EQ(guest_val(vm, &last_vec[1]), VEC_A);
	TEST_ASSERT_EQ(guest_val(vm, &irqs[0]), 0);
	/* Logical flat 0x1: vCPU 0. */
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR | MSI_LOGICAL | MSI_DEST(1), VEC_B), 1);
	wait_for(vm, &irqs[0], 1, "vCPU 0 logical MSI");
	TEST_ASSERT_EQ(guest_val(vm, &last_vec[0]), VEC_B);
	/* Logical 0x3, lowest priority: exactly one of the two. */
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR | MSI_LOGICAL | MSI_DEST(3),
				  MSI_DM_LOWEST | VEC_C), 1);
	for (int i = 0; i < 1000; i++) {
		sum = guest_val(vm, &irqs[0]) + guest_val(vm, &irqs[1]);
		if (sum == 3)
			break;
		usleep(1000);
	}
	usleep(20000);
	TEST_ASSERT_EQ(guest_val(vm, &irqs[0]) + guest_val(vm, &irqs[1]), 3);
	/* NMI delivery mode, physical 1. */
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR | MSI_DEST(1), MSI_DM_NMI), 1);
	wait_for(vm, &nmis[1], 1, "vCPU 1 NMI");
	TEST_ASSERT_EQ(guest_val(vm, &nmis[0]), 0);
	/* Nobody has APIC id 7: KVM counts 0 APICs, not -1, once the VM has APICs. */
	r = signal_msi(vm, MSI_ADDR | MSI_DEST(7), VEC_A);
	TEST_ASSERT_EQ(r, 0);
	finish(vm, t);
}

static int set_routing(struct kvm_vm *vm, const struct kvm_irq_routing_entry *e, uint32_t nr)
{
	struct {
		struct kvm_irq_routing hdr;
		struct kvm_irq_routing_entry e[8];
	} r = { .hdr.nr = nr };

	memcpy(r.e, e, nr * sizeof(*e));
	return ioctl(vm->fd, KVM_SET_GSI_ROUTING, &r);
}

static struct kvm_irq_routing_entry msi_route(uint32_t gsi, uint32_t addr_lo, uint32_t data)
{
	return (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = addr_lo, .data = data },
	};
}

static struct kvm_irq_routing_entry chip_route(uint32_t gsi, uint32_t chip, uint32_t pin)
{
	return (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
		.u.irqchip = { .irqchip = chip, .pin = pin },
	};
}

static int irqfd(struct kvm_vm *vm, int fd, uint32_t gsi, uint32_t flags, int resamplefd)
{
	struct kvm_irqfd a = { .fd = fd, .gsi = gsi, .flags = flags, .resamplefd = resamplefd };

	return ioctl(vm->fd, KVM_IRQFD, &a);
}

static void kick(int fd)
{
	uint64_t one = 1;

	TEST_ASSERT_EQ(write(fd, &one, sizeof(one)), sizeof(one));
}

TEST(irqfd_msi_follows_rerouting)
{
	struct vcpu_thread t[2];
	struct kvm_vm *vm = two_vcpus(t);
	struct kvm_irq_routing_entry e = msi_route(MSI_GSI, MSI_ADDR | MSI_DEST(0), VEC_A);
	struct kvm_irq_level line = { .irq = MSI_GSI, .level = 1 };
	int fd = eventfd(0, EFD_NONBLOCK);

	TEST_ASSERT_EQ(set_routing(vm, &e, 1), 0);
	TEST_ASSERT_EQ(irqfd(vm, fd, MSI_GSI, 0, 0), 0);
	kick(fd);
	wait_for(vm, &irqs[0], 1, "irqfd MSI on vCPU 0");
	TEST_ASSERT_EQ(guest_val(vm, &last_vec[0]), VEC_A);
	/* The irqfd consumed the count. */
	TEST_ASSERT(read(fd, &(uint64_t){0}, 8) == -1 && errno == EAGAIN, "eventfd not drained");
	/* The same GSI now sends another vector to vCPU 1: the irqfd follows. */
	e = msi_route(MSI_GSI, MSI_ADDR | MSI_DEST(1), VEC_B);
	TEST_ASSERT_EQ(set_routing(vm, &e, 1), 0);
	kick(fd);
	wait_for(vm, &irqs[1], 1, "irqfd MSI on vCPU 1");
	TEST_ASSERT_EQ(guest_val(vm, &last_vec[1]), VEC_B);
	TEST_ASSERT_EQ(guest_val(vm, &irqs[0]), 1);
	/* KVM_IRQ_LINE on an MSI route sends on 1 only. */
	vm_ioctl(vm, KVM_IRQ_LINE_STATUS, &line, "KVM_IRQ_LINE_STATUS");
	TEST_ASSERT_EQ(line.status, 1);
	wait_for(vm, &irqs[1], 2, "KVM_IRQ_LINE on an MSI route");
	line.level = 0;
	vm_ioctl(vm, KVM_IRQ_LINE_STATUS, &line, "KVM_IRQ_LINE_STATUS");
	TEST_ASSERT_EQ(line.status, -1);
	/* Without a route the GSI goes nowhere. */
	TEST_ASSERT_EQ(set_routing(vm, NULL, 0), 0);
	line.level = 1;
	vm_ioctl(vm, KVM_IRQ_LINE_STATUS, &line, "KVM_IRQ_LINE_STATUS");
	TEST_ASSERT_EQ(line.status, -1);
	/* Deassigned: a write raises nothing. */
	e = msi_route(MSI_GSI, MSI_ADDR | MSI_DEST(0), VEC_A);
	TEST_ASSERT_EQ(set_routing(vm, &e, 1), 0);
	TEST_ASSERT_EQ(irqfd(vm, fd, MSI_GSI, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
	kick(fd);
	usleep(50000);
	TEST_ASSERT_EQ(guest_val(vm, &irqs[0]), 1);
	/* A count written before KVM_IRQFD is delivered when it is assigned. */
	TEST_ASSERT_EQ(irqfd(vm, fd, MSI_GSI, 0, 0), 0);
	wait_for(vm, &irqs[0], 2, "pending count at assignment");
	close(fd);
	finish(vm, t);
}

/* One vCPU, IOAPIC pin LEVEL_PIN level-triggered; EOIs only when told. */
static void level_handler(struct ex_regs *regs)
{
	(void)regs;
	level_irqs++;
}

static void guest_level(void)
{
	xapic_enable();
	/* GSI 5 is PIC IRQ 5 too: keep the 8259's ExtINT away from LINT0. */
	xapic_write(APIC_LVT0, APIC_LVT_MASKED);
	ioapic_set_rte(LEVEL_PIN, RTE_LEVEL | VEC_LEVEL);
	asm volatile("sti");
	GUEST_SYNC(1);
	while (!done) {
		asm volatile("hlt");
		if (eoi_now) {
			eoi_now = 0;
			xapic_write(APIC_EOI, 0);
		}
	}
	GUEST_DONE();
}

static uint32_t ioapic_irr(struct kvm_vm *vm)
{
	struct kvm_irqchip c = { .chip_id = KVM_IRQCHIP_IOAPIC };

	vm_ioctl(vm, KVM_GET_IRQCHIP, &c, "KVM_GET_IRQCHIP");
	return c.chip.ioapic.irr;
}

static uint64_t rte(struct kvm_vm *vm, int pin)
{
	struct kvm_irqchip c = { .chip_id = KVM_IRQCHIP_IOAPIC };

	vm_ioctl(vm, KVM_GET_IRQCHIP, &c, "KVM_GET_IRQCHIP");
	return c.chip.ioapic.redirtbl[pin].bits;
}

static void guest_eoi(struct kvm_vm *vm)
{
	*(volatile uint64_t *)gva2hva(vm, (uint64_t)&eoi_now) = 1;
	/* Wake the halted vCPU with a vector that VEC_LEVEL in service does not block. */
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR, VEC_WAKE_HI), 1);
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

TEST(resample_irqfd_holds_level_until_eoi)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;
	struct vcpu_thread t;
	struct ucall uc;
	int fd = eventfd(0, EFD_NONBLOCK), rfd = eventfd(0, EFD_NONBLOCK);
	uint64_t n;

	vm_install_exception_handler(vm, VEC_LEVEL, level_handler);
	vm_install_exception_handler(vm, VEC_WAKE_HI, irq_handler);
	vcpu = vm_vcpu_add(vm, 0, guest_level);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	/* The default routing: GSI 5 is IOAPIC pin 5 (and PIC IRQ 5). */
	TEST_ASSERT_EQ(irqfd(vm, fd, LEVEL_PIN, KVM_IRQFD_FLAG_RESAMPLE, rfd), 0);
	vcpu_thread_start(&t, vcpu);
	kick(fd);
	wait_for(vm, &level_irqs, 1, "level interrupt");
	/* The line stays up and remote IRR is set until the EOI. */
	TEST_ASSERT(ioapic_irr(vm) & (1u << LEVEL_PIN), "pin %d not high", LEVEL_PIN);
	TEST_ASSERT(rte(vm, LEVEL_PIN) & RTE_REMOTE_IRR, "no remote IRR");
	TEST_ASSERT(!readable(rfd, 50), "resamplefd signalled before the EOI");
	/* Another write before the EOI adds nothing: the pin waits for it. */
	kick(fd);
	usleep(50000);
	TEST_ASSERT_EQ(guest_val(vm, &level_irqs), 1);
	guest_eoi(vm);
	/* The EOI lowered the line and told the device, which is not sent again. */
	TEST_ASSERT(readable(rfd, 10000), "no resample after the EOI");
	TEST_ASSERT_EQ(read(rfd, &n, 8), 8);
	TEST_ASSERT_EQ(n, 1);
	TEST_ASSERT_EQ(ioapic_irr(vm) & (1u << LEVEL_PIN), 0);
	/*
	 * The resample comes before the EOI clears remote IRR (on KVM too: the
	 * ack notifiers run first), so the vCPU's thread may still be between
	 * the two: give it a second.
	 */
	for (int i = 0; i < 1000 && (rte(vm, LEVEL_PIN) & RTE_REMOTE_IRR); i++)
		usleep(1000);
	TEST_ASSERT_EQ(rte(vm, LEVEL_PIN) & RTE_REMOTE_IRR, 0);
	usleep(50000);
	TEST_ASSERT_EQ(guest_val(vm, &level_irqs), 1);
	/* The device still wants service: it raises the line again. */
	kick(fd);
	wait_for(vm, &level_irqs, 2, "level interrupt after resample");
	/* KVM_IRQ_LINE on the same pin is another source: lowering it leaves the irqfd's level. */
	vm_irq_line(vm, LEVEL_PIN, 0);
	TEST_ASSERT(ioapic_irr(vm) & (1u << LEVEL_PIN), "KVM_IRQ_LINE 0 lowered the irqfd's level");
	guest_eoi(vm);
	TEST_ASSERT(readable(rfd, 10000), "no resample after the second EOI");
	/* Deassigned with the line low. */
	TEST_ASSERT_EQ(irqfd(vm, fd, LEVEL_PIN, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
	TEST_ASSERT_EQ(ioapic_irr(vm) & (1u << LEVEL_PIN), 0);
	*(volatile uint64_t *)gva2hva(vm, (uint64_t)&done) = 1;
	TEST_ASSERT_EQ(signal_msi(vm, MSI_ADDR, VEC_WAKE_HI), 1);
	vcpu_thread_join(&t);
	close(fd);
	close(rfd);
	vm_free(vm);
}

TEST(routing_errnos)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_irq_routing_entry e[3];
	struct kvm_msi m = msi(MSI_ADDR, VEC_A);
	struct {
		struct kvm_irq_routing hdr;
		struct kvm_irq_routing_entry e[1];
	} big = { .hdr.nr = 4097 };

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IRQ_ROUTING), 4096);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_SIGNAL_MSI), 1);
	/* Without an in-kernel irqchip. */
	e[0] = msi_route(1, MSI_ADDR, VEC_A);
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "routing: %d", errno);
	TEST_ASSERT(ioctl(vm->fd, KVM_SIGNAL_MSI, &m) == -1 && errno == EINVAL, "msi: %d", errno);
	vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	TEST_ASSERT_EQ(set_routing(vm, e, 1), 0);
	TEST_ASSERT(ioctl(vm->fd, KVM_SET_GSI_ROUTING, &big) == -1 && errno == EINVAL, "nr");
	big.hdr.nr = 1;
	big.hdr.flags = 1;
	big.e[0] = e[0];
	TEST_ASSERT(ioctl(vm->fd, KVM_SET_GSI_ROUTING, &big) == -1 && errno == EINVAL, "flags");
	/* GSIs below 4096; 4095 is fine. */
	e[0] = msi_route(4095, MSI_ADDR, VEC_A);
	TEST_ASSERT_EQ(set_routing(vm, e, 1), 0);
	e[0].gsi = 4096;
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "gsi 4096");
	/* Pins: 8 per PIC, 24 on the IOAPIC; irqchip ids 0-2. */
	e[0] = chip_route(1, KVM_IRQCHIP_PIC_SLAVE, 8);
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "PIC pin 8");
	e[0] = chip_route(1, KVM_IRQCHIP_IOAPIC, 24);
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "IOAPIC pin 24");
	e[0] = chip_route(1, 3, 0);
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "irqchip 3");
	/* One GSI may feed each irqchip once, but an MSI route stands alone. */
	e[0] = chip_route(1, KVM_IRQCHIP_IOAPIC, 1);
	e[1] = chip_route(1, KVM_IRQCHIP_PIC_MASTER, 1);
	e[2] = chip_route(1, KVM_IRQCHIP_PIC_SLAVE, 1);
	TEST_ASSERT_EQ(set_routing(vm, e, 3), 0);
	e[1] = chip_route(1, KVM_IRQCHIP_IOAPIC, 2);
	TEST_ASSERT(set_routing(vm, e, 2) == -1 && errno == EINVAL, "same irqchip twice");
	e[1] = msi_route(1, MSI_ADDR, VEC_A);
	TEST_ASSERT(set_routing(vm, e, 2) == -1 && errno == EINVAL, "irqchip and MSI");
	/* Two GSIs may share a pin. */
	e[1] = chip_route(2, KVM_IRQCHIP_IOAPIC, 1);
	TEST_ASSERT_EQ(set_routing(vm, e, 2), 0);
	/* Entry flags: none for irqchip routes, only KVM_MSI_VALID_DEVID for MSI. */
	e[0] = chip_route(1, KVM_IRQCHIP_IOAPIC, 1);
	e[0].flags = KVM_MSI_VALID_DEVID;
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "irqchip flags");
	e[0] = msi_route(1, MSI_ADDR, VEC_A);
	e[0].flags = KVM_MSI_VALID_DEVID;
	TEST_ASSERT_EQ(set_routing(vm, e, 1), 0);
	e[0].flags = 2;
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "MSI flags");
	/* Unknown route types. */
	e[0] = msi_route(1, MSI_ADDR, VEC_A);
	e[0].type = 99;
	TEST_ASSERT(set_routing(vm, e, 1) == -1 && errno == EINVAL, "type 99");
	/* KVM_SIGNAL_MSI flags; nobody to deliver to (no vCPU) is -1, EPERM. */
	m.flags = 2;
	TEST_ASSERT(ioctl(vm->fd, KVM_SIGNAL_MSI, &m) == -1 && errno == EINVAL, "msi flags");
	m.flags = KVM_MSI_VALID_DEVID;
	TEST_ASSERT(ioctl(vm->fd, KVM_SIGNAL_MSI, &m) == -1 && errno == EPERM, "msi devid");
	/* An empty table: every GSI goes nowhere, even 0. */
	TEST_ASSERT_EQ(set_routing(vm, NULL, 0), 0);
	TEST_ASSERT_EQ(vm_irq_line(vm, 0, 1), -1);
	vm_free(vm);
}

TEST(irqfd_errnos)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int fd = eventfd(0, EFD_NONBLOCK), fd2 = eventfd(0, EFD_NONBLOCK), p[2];
	int fd3 = eventfd(0, EFD_NONBLOCK), rfd = eventfd(0, EFD_NONBLOCK);

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IRQFD), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IRQFD_RESAMPLE), 1);
	TEST_ASSERT_EQ(pipe(p), 0);
	/* Without an in-kernel irqchip. */
	TEST_ASSERT(irqfd(vm, fd, 1, 0, 0) == -1 && errno == EINVAL, "no irqchip: %d", errno);
	vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	TEST_ASSERT(irqfd(vm, fd, 1, 4, 0) == -1 && errno == EINVAL, "flags: %d", errno);
	TEST_ASSERT(irqfd(vm, -1, 1, 0, 0) == -1 && errno == EBADF, "fd -1: %d", errno);
	TEST_ASSERT(irqfd(vm, p[0], 1, 0, 0) == -1 && errno == EINVAL, "pipe: %d", errno);
	TEST_ASSERT(irqfd(vm, fd, 1, KVM_IRQFD_FLAG_RESAMPLE, -1) == -1 && errno == EBADF,
		    "resamplefd -1: %d", errno);
	TEST_ASSERT(irqfd(vm, fd, 1, KVM_IRQFD_FLAG_RESAMPLE, p[0]) == -1 && errno == EINVAL,
		    "resamplefd pipe: %d", errno);
	/* Any GSI number is accepted: it is looked up when the eventfd fires. */
	TEST_ASSERT_EQ(irqfd(vm, fd, 100000, 0, 0), 0);
	/* One eventfd raises one GSI. */
	TEST_ASSERT(irqfd(vm, fd, 2, 0, 0) == -1 && errno == EBUSY, "twice: %d", errno);
	TEST_ASSERT(irqfd(vm, fd, 100000, 0, 0) == -1 && errno == EBUSY, "same: %d", errno);
	/* Deassigning what is not assigned succeeds; a bad fd does not. */
	TEST_ASSERT_EQ(irqfd(vm, fd2, 3, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
	TEST_ASSERT_EQ(irqfd(vm, fd, 3, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
	TEST_ASSERT(irqfd(vm, -1, 3, KVM_IRQFD_FLAG_DEASSIGN, 0) == -1 && errno == EBADF,
		    "deassign -1: %d", errno);
	TEST_ASSERT(irqfd(vm, p[0], 3, KVM_IRQFD_FLAG_DEASSIGN, 0) == -1 && errno == EINVAL,
		    "deassign pipe: %d", errno);
	TEST_ASSERT_EQ(irqfd(vm, fd, 100000, KVM_IRQFD_FLAG_DEASSIGN, 0), 0);
	TEST_ASSERT_EQ(irqfd(vm, fd, 2, 0, 0), 0);
	/* Two resampling irqfds on one GSI, sharing a resamplefd. */
	TEST_ASSERT_EQ(irqfd(vm, fd2, 9, KVM_IRQFD_FLAG_RESAMPLE, rfd), 0);
	TEST_ASSERT_EQ(irqfd(vm, fd3, 9, KVM_IRQFD_FLAG_RESAMPLE, rfd), 0);
	/* Eventfds closed under live irqfds (EPOLLHUP), then the VM with one still attached. */
	close(fd);
	close(fd2);
	close(rfd);
	vm_free(vm);
	close(fd3);
	close(p[0]);
	close(p[1]);
}
