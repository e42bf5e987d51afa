// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel IOAPIC and 8259 PICs: KVM_IRQ_LINE reaches the guest's
 * handler through an IOAPIC pin programmed by the guest (edge, and level
 * with remote IRR cleared by the EOI), through the PIC and the BSP's LINT0
 * in ExtINT mode, and KVM_GET/SET_IRQCHIP round-trip while a guest runs.
 */
#include <sys/ioctl.h>

#include "apic.h"

#define VEC_EDGE 0x50
#define VEC_LEVEL 0x60
#define PIC_BASE 0x20

static volatile uint64_t count, vector, rte_in_handler;
static volatile bool eoi_in_handler;

static void handler(struct ex_regs *regs)
{
	count++;
	vector = regs->vector;
	if (regs->vector == VEC_LEVEL)
		rte_in_handler = ioapic_get_rte(20);
	if (eoi_in_handler)
		xapic_write(APIC_EOI, 0);
}

static void guest_ioapic(void)
{
	xapic_enable();
	GUEST_ASSERT_EQ(ioapic_read(1), 0x170011);
	/* Pins 16-23 have no PIC input beside them. */
	ioapic_set_rte(18, VEC_EDGE);
	ioapic_set_rte(20, RTE_LEVEL | VEC_LEVEL);
	GUEST_ASSERT_EQ(ioapic_get_rte(20), RTE_LEVEL | VEC_LEVEL);
	eoi_in_handler = true;
	asm volatile("sti");
	GUEST_SYNC(1);		/* host raises and lowers GSI 18 */
	GUEST_ASSERT_EQ(count, 1);
	GUEST_ASSERT_EQ(vector, VEC_EDGE);
	eoi_in_handler = false;
	GUEST_SYNC(2);		/* host raises GSI 20 and keeps it high */
	GUEST_ASSERT_EQ(count, 2);
	GUEST_ASSERT_EQ(vector, VEC_LEVEL);
	GUEST_ASSERT(rte_in_handler & RTE_REMOTE_IRR);
	GUEST_ASSERT(ioapic_get_rte(20) & RTE_REMOTE_IRR);
	/* EOI with the line still high: remote IRR drops and the pin sends again. */
	xapic_write(APIC_EOI, 0);
	GUEST_ASSERT_EQ(count, 3);
	GUEST_SYNC(3);		/* host lowers GSI 20 */
	xapic_write(APIC_EOI, 0);
	GUEST_ASSERT_EQ(ioapic_get_rte(20) & RTE_REMOTE_IRR, 0);
	GUEST_ASSERT_EQ(count, 3);
	GUEST_DONE();
}

TEST(ioapic_edge_and_level)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	vm_install_exception_handler(vm, VEC_EDGE, handler);
	vm_install_exception_handler(vm, VEC_LEVEL, handler);
	vcpu = vm_vcpu_add(vm, 0, guest_ioapic);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vm_irq_line(vm, 18, 1), 1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 18, 0), 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vm_irq_line(vm, 20, 1), 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 3);
	TEST_ASSERT_EQ(vm_irq_line(vm, 20, 0), 1);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void pic_eoi(void)
{
	guest_outb(0x20, 0x20);
}

static void pic_handler(struct ex_regs *regs)
{
	count++;
	vector = regs->vector;
	/* OCW3: read the ISR, then a non-specific EOI. */
	guest_outb(0x20, 0x0b);
	rte_in_handler = guest_inb(0x20);
	pic_eoi();
}

static void guest_pic(void)
{
	/* ICW1-4: edge, cascade, vectors 0x20-0x27, slave on IR2, 8086 mode. */
	guest_outb(0x20, 0x11);
	guest_outb(0x21, PIC_BASE);
	guest_outb(0x21, 0x04);
	guest_outb(0x21, 0x01);
	guest_outb(0x21, ~(1u << 3) & 0xff);
	GUEST_ASSERT_EQ(guest_inb(0x21), 0xf7);
	asm volatile("sti");
	GUEST_SYNC(1);		/* host pulses IRQ 3 */
	GUEST_ASSERT_EQ(count, 1);
	GUEST_ASSERT_EQ(vector, PIC_BASE + 3);
	GUEST_ASSERT_EQ(rte_in_handler, 1 << 3);
	/* OCW3 back to IRR: nothing requested. */
	guest_outb(0x20, 0x0a);
	GUEST_ASSERT_EQ(guest_inb(0x20), 0);
	/* A masked input is latched but not delivered. */
	GUEST_SYNC(2);		/* host pulses IRQ 4 */
	GUEST_ASSERT_EQ(count, 1);
	GUEST_ASSERT_EQ(guest_inb(0x20), 1 << 4);
	GUEST_DONE();
}

TEST(pic_through_extint)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_PIC_MASTER };
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	for (int v = PIC_BASE; v < PIC_BASE + 8; v++)
		vm_install_exception_handler(vm, v, pic_handler);
	vcpu = vm_vcpu_add(vm, 0, guest_pic);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	TEST_ASSERT_EQ(chip.chip.pic.irq_base, PIC_BASE);
	TEST_ASSERT_EQ(chip.chip.pic.imr, 0xf7);
	TEST_ASSERT_EQ(chip.chip.pic.init4, 1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 3, 1), 1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 3, 0), 2);	/* both chips count a lowering */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vm_irq_line(vm, 4, 1), -1);	/* masked in both chips */
	vm_irq_line(vm, 4, 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

static void guest_roundtrip(void)
{
	xapic_enable();
	GUEST_SYNC(1);
	/* The host set pin 19 through KVM_SET_IRQCHIP. */
	GUEST_ASSERT_EQ(ioapic_get_rte(19), VEC_EDGE);
	eoi_in_handler = true;
	asm volatile("sti");
	GUEST_SYNC(2);		/* host pulses GSI 19 */
	GUEST_ASSERT_EQ(count, 1);
	GUEST_ASSERT_EQ(vector, VEC_EDGE);
	GUEST_DONE();
}

TEST(get_set_irqchip_while_running)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC }, again;
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	vm_install_exception_handler(vm, VEC_EDGE, handler);
	vcpu = vm_vcpu_add(vm, 0, guest_roundtrip);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	chip.chip.ioapic.redirtbl[19].bits = VEC_EDGE;
	chip.chip.ioapic.id = 2;
	vm_ioctl(vm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP");
	again = (struct kvm_irqchip){ .chip_id = KVM_IRQCHIP_IOAPIC };
	vm_ioctl(vm, KVM_GET_IRQCHIP, &again, "KVM_GET_IRQCHIP");
	TEST_ASSERT_EQ(memcmp(&again.chip.ioapic, &chip.chip.ioapic, sizeof(chip.chip.ioapic)), 0);

	chip = (struct kvm_irqchip){ .chip_id = KVM_IRQCHIP_PIC_SLAVE };
	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	chip.chip.pic.imr = 0xff;
	chip.chip.pic.elcr = 0x02;
	vm_ioctl(vm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP");
	again = (struct kvm_irqchip){ .chip_id = KVM_IRQCHIP_PIC_SLAVE };
	vm_ioctl(vm, KVM_GET_IRQCHIP, &again, "KVM_GET_IRQCHIP");
	TEST_ASSERT_EQ(memcmp(&again.chip.pic, &chip.chip.pic, sizeof(chip.chip.pic)), 0);

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vm_irq_line(vm, 19, 1), 1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 19, 0), 1);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}
