// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel irqchip's ioctls without a guest running: capabilities and
 * CPUID, KVM_CREATE_IRQCHIP's ordering rules, the errnos of the irqchip,
 * LAPIC and MP-state ioctls, the state right after creation, and the
 * statuses of KVM_IRQ_LINE_STATUS.
 */
#include <sys/ioctl.h>

#include "apic.h"

static void guest_nothing(void)
{
}

TEST(capabilities_and_cpuid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_cpuid_entry2 *leaf1 = cpuid_find(vm->cpuid, 1, 0);

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IRQCHIP), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IRQ_INJECT_STATUS), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_TSC_DEADLINE_TIMER), 1);
	TEST_ASSERT(kvm_check_cap(KVM_CAP_MAX_VCPUS) >= 16, "fewer than 16 vCPUs");
	TEST_ASSERT(leaf1, "no CPUID leaf 1");
	/* APIC and x2APIC are offered; TSC-deadline only through the capability. */
	TEST_ASSERT_EQ(leaf1->edx >> 9 & 1, 1);
	TEST_ASSERT_EQ(leaf1->ecx >> 21 & 1, 1);
	TEST_ASSERT_EQ(leaf1->ecx >> 24 & 1, 0);
	vm_free(vm);
}

TEST(create_irqchip_ordering)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL), EEXIST);
	vm_free(vm);

	vm = vm_create(VM_MODE_LONG64);
	vm_vcpu_add(vm, 0, guest_nothing);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL), EINVAL);
	vm_free(vm);
}

TEST(errnos_without_irqchip)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_nothing);
	struct kvm_irq_level irq = { .irq = 4, .level = 1 };
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_HALTED };

	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_IRQ_LINE, &irq), ENXIO);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_IRQ_LINE_STATUS, &irq), ENXIO);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_IRQCHIP, &chip), ENXIO);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_IRQCHIP, &chip), ENXIO);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_GET_LAPIC, &lapic), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_LAPIC, &lapic), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp), EINVAL);
	/* The bad pointer is found before the missing irqchip. */
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_IRQ_LINE, (void *)8), EFAULT);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_IRQCHIP, (void *)8), EFAULT);
	vm_free(vm);
}

TEST(errnos_with_irqchip)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_nothing);
	struct kvm_irqchip chip = { .chip_id = 3 };
	struct kvm_interrupt intr = { .irq = 0x30 };
	struct kvm_mp_state mp = { .mp_state = 5 };	/* KVM_MP_STATE_STOPPED is s390's */

	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_IRQCHIP, &chip), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_IRQCHIP, &chip), EINVAL);
	/* Interrupts belong to the in-kernel PIC now. */
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_INTERRUPT, &intr), ENXIO);
	intr.irq = 256;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_INTERRUPT, &intr), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_GET_LAPIC, (void *)8), EFAULT);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_LAPIC, (void *)8), EFAULT);
	vm_free(vm);
}

TEST(state_after_creation)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *bsp = vm_vcpu_add(vm, 0, guest_nothing);
	struct kvm_vcpu *ap = vm_vcpu_add(vm, 1, guest_nothing);
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	struct kvm_lapic_state s;

	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	TEST_ASSERT_EQ(chip.chip.ioapic.base_address, IOAPIC_GPA);
	TEST_ASSERT_EQ(chip.chip.ioapic.irr, 0);
	for (int i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		TEST_ASSERT_EQ(chip.chip.ioapic.redirtbl[i].bits, RTE_MASKED);
	chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	TEST_ASSERT_EQ(chip.chip.pic.elcr_mask, 0xf8);
	TEST_ASSERT_EQ(chip.chip.pic.imr, 0);
	chip.chip_id = KVM_IRQCHIP_PIC_SLAVE;
	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	TEST_ASSERT_EQ(chip.chip.pic.elcr_mask, 0xde);

	TEST_ASSERT_EQ(vcpu_get_mp_state(bsp), KVM_MP_STATE_RUNNABLE);
	TEST_ASSERT_EQ(vcpu_get_mp_state(ap), KVM_MP_STATE_UNINITIALIZED);
	vcpu_get_lapic(bsp, &s);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_ID), 0);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LVR), 0x50014);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_SVR), 0xff);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_DFR), 0xffffffff);
	/* The BSP's LINT0 takes the PIC through ExtINT; every other LVT is masked. */
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LVT0), 0x700);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LVTT), APIC_LVT_MASKED);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LVT1), APIC_LVT_MASKED);
	vcpu_get_lapic(ap, &s);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_ID), 1 << 24);
	TEST_ASSERT_EQ(lapic_reg(&s, APIC_LVT0), APIC_LVT_MASKED);
	vm_free(vm);
}

TEST(irq_line_status)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	vm_vcpu_add(vm, 0, guest_nothing);
	/* GSI 16: IOAPIC only, masked at reset. */
	TEST_ASSERT_EQ(vm_irq_line(vm, 16, 1), -1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 16, 0), 1);
	/* No route at all beyond the IOAPIC's 24 pins. */
	TEST_ASSERT_EQ(vm_irq_line(vm, 24, 1), -1);
	/*
	 * GSI 3: the PIC (unmasked at creation) takes it, the masked IOAPIC pin
	 * does not.  Raised again, the edge-triggered PIC input still reports 1
	 * and the IOAPIC 0 ("coalesced"); lowering counts 1 for each chip.
	 */
	TEST_ASSERT_EQ(vm_irq_line(vm, 3, 1), 1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 3, 1), 1);
	TEST_ASSERT_EQ(vm_irq_line(vm, 3, 0), 2);

	/* Unmask IOAPIC pin 17, edge, to APIC 0: the software-disabled APIC refuses it. */
	vm_ioctl(vm, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP");
	chip.chip.ioapic.redirtbl[17].bits = 0x41;
	vm_ioctl(vm, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP");
	TEST_ASSERT_EQ(vm_irq_line(vm, 17, 1), 0);
	TEST_ASSERT_EQ(vm_irq_line(vm, 17, 1), 0);
	TEST_ASSERT_EQ(vm_irq_line(vm, 17, 0), 1);
	vm_free(vm);
}
