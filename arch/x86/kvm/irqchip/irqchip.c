// SPDX-License-Identifier: GPL-2.0
/*
 * The in-kernel irqchip as a whole: KVM_CREATE_IRQCHIP, KVM_IRQ_LINE(_STATUS)
 * through the GSI routing table (irq_routing.c), KVM_GET/SET_IRQCHIP, and
 * which guest MMIO and port accesses the irqchip (or the PIT) takes instead
 * of userspace.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>
#include <minikvm/irq.h>
#include <minikvm/irqchip.h>
#include <minikvm/pit.h>

#define IOAPIC_MMIO_SIZE 0x100

static int create_irqchip(struct mkvm_vm *vm)
{
	struct mkvm_irqchip *chip;
	int r = 0;

	mutex_lock(&vm->lock);
	if (vm->arch.irqchip) {
		r = -EEXIST;
		goto out;
	}
	/* The local APICs come with the vCPUs: none may exist yet. */
	if (vm->created_vcpus) {
		r = -EINVAL;
		goto out;
	}
	chip = kzalloc(sizeof(*chip), GFP_KERNEL_ACCOUNT);
	if (!chip) {
		r = -ENOMEM;
		goto out;
	}
	chip->vm = vm;
	mkvm_pic_init(&chip->pic);
	mkvm_ioapic_init(&chip->ioapic);
	r = mkvm_irq_routing_init(chip);
	if (r) {
		kfree(chip);
		goto out;
	}
	smp_store_release(&vm->arch.irqchip, chip);
out:
	mutex_unlock(&vm->lock);
	return r;
}

static int irq_line(struct mkvm_vm *vm, void __user *argp, bool status)
{
	struct mkvm_irqchip *chip = READ_ONCE(vm->arch.irqchip);
	struct kvm_irq_level irq;

	if (copy_from_user(&irq, argp, sizeof(irq)))
		return -EFAULT;
	if (!chip)
		return -ENXIO;
	irq.status = mkvm_set_irq(vm, MKVM_IRQ_SRC_USER, irq.irq, !!irq.level);
	if (status && copy_to_user(argp, &irq, sizeof(irq)))
		return -EFAULT;
	return 0;
}

static int get_irqchip(struct mkvm_irqchip *chip, struct kvm_irqchip *c)
{
	switch (c->chip_id) {
	case KVM_IRQCHIP_PIC_MASTER:
	case KVM_IRQCHIP_PIC_SLAVE:
		mkvm_pic_get_state(&chip->pic, c->chip_id, &c->chip.pic);
		return 0;
	case KVM_IRQCHIP_IOAPIC:
		mkvm_ioapic_get_state(chip, &c->chip.ioapic);
		return 0;
	default:
		return -EINVAL;
	}
}

static int set_irqchip(struct mkvm_irqchip *chip, const struct kvm_irqchip *c)
{
	switch (c->chip_id) {
	case KVM_IRQCHIP_PIC_MASTER:
	case KVM_IRQCHIP_PIC_SLAVE:
		mkvm_pic_set_state(chip, c->chip_id, &c->chip.pic);
		return 0;
	case KVM_IRQCHIP_IOAPIC:
		mkvm_ioapic_set_state(chip, &c->chip.ioapic);
		return 0;
	default:
		return -EINVAL;
	}
}

static int irqchip_state(struct mkvm_vm *vm, void __user *argp, bool set)
{
	struct mkvm_irqchip *chip = READ_ONCE(vm->arch.irqchip);
	struct kvm_irqchip *c = memdup_user(argp, sizeof(*c));
	int r;

	if (IS_ERR(c))
		return PTR_ERR(c);
	if (!chip)
		r = -ENXIO;
	else if (set)
		r = set_irqchip(chip, c);
	else
		r = get_irqchip(chip, c);
	if (!r && !set && copy_to_user(argp, c, sizeof(*c)))
		r = -EFAULT;
	kfree(c);
	return r;
}

/**
 * mkvm_irqchip_vm_ioctl() - the irqchip's VM ioctls
 * @vm: the VM
 * @ioctl: KVM_CREATE_IRQCHIP, KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS,
 *	   KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, or one of the routing's or the PIT's
 * @argp: the argument
 *
 * Return: 0; -EEXIST for a second irqchip, -EINVAL for one after the first
 * vCPU or an unknown chip id, -ENXIO without an irqchip, -EFAULT, -ENOMEM;
 * -ENOTTY for another ioctl.
 */
long mkvm_irqchip_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp)
{
	switch (ioctl) {
	case KVM_CREATE_IRQCHIP:
		return create_irqchip(vm);
	case KVM_IRQ_LINE:
	case KVM_IRQ_LINE_STATUS:
		return irq_line(vm, argp, ioctl == KVM_IRQ_LINE_STATUS);
	case KVM_GET_IRQCHIP:
	case KVM_SET_IRQCHIP:
		return irqchip_state(vm, argp, ioctl == KVM_SET_IRQCHIP);
	case KVM_SET_GSI_ROUTING:
	case KVM_SIGNAL_MSI:
		return mkvm_irq_routing_ioctl(vm, ioctl, argp);
	default:
		return mkvm_pit_vm_ioctl(vm, ioctl, argp);
	}
}

/**
 * mkvm_irqchip_destroy() - free the irqchip of a dying VM
 * @vm: the VM, whose vCPUs (and their APICs) are gone already
 */
void mkvm_irqchip_destroy(struct mkvm_vm *vm)
{
	if (vm->arch.irqchip)
		mkvm_irq_routing_free(vm->arch.irqchip);
	kfree(vm->arch.irqchip);
	vm->arch.irqchip = NULL;
}

/**
 * mkvm_irqchip_mmio() - a guest MMIO access the irqchip may take
 * @vcpu: the vCPU
 * @gpa: the address
 * @len: 1, 2, 4 or 8 bytes
 * @write: a write of *@val, or a read into *@val
 * @val: the data
 *
 * Return: true when the vCPU's local APIC page or the IOAPIC took it.
 */
bool mkvm_irqchip_mmio(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, bool write, u64 *val)
{
	struct mkvm_irqchip *chip = vcpu->vm->arch.irqchip;
	u64 base;

	if (!chip)
		return false;
	if (mkvm_lapic_mmio(vcpu, gpa, len, write, val))
		return true;
	base = READ_ONCE(chip->ioapic.base);
	if (gpa < base || gpa - base >= IOAPIC_MMIO_SIZE)
		return false;
	if (write)
		mkvm_ioapic_mmio_write(chip, gpa - base, *val);
	else
		*val = mkvm_ioapic_mmio_read(chip, gpa - base);
	return true;
}

/**
 * mkvm_irqchip_pio() - a guest IN or OUT the PICs or the PIT may take
 * @vcpu: the vCPU
 * @port: the port
 * @len: the size
 * @in: IN into *@val, or OUT of *@val
 * @val: the data
 *
 * Return: true for the PIT's ports, and the PICs' ports and ELCRs, which
 * only take bytes.
 */
bool mkvm_irqchip_pio(struct mkvm_vcpu *vcpu, u16 port, unsigned int len, bool in, u32 *val)
{
	struct mkvm_irqchip *chip = vcpu->vm->arch.irqchip;

	/* The PIT's ports work without an irqchip, as in KVM. */
	if (mkvm_pit_pio(vcpu->vm, port, len, in, val))
		return true;
	if (!chip)
		return false;
	switch (port) {
	case 0x20: case 0x21: case 0xa0: case 0xa1: case 0x4d0: case 0x4d1:
		break;
	default:
		return false;
	}
	if (in)
		*val = len == 1 ? mkvm_pic_pio_read(chip, port) : 0;
	else if (len == 1)
		mkvm_pic_pio_write(chip, port, *val & 0xff);
	return true;
}

/**
 * mkvm_irqchip_check_extension() - the irqchip's capabilities
 * @cap: a KVM_CAP_* number
 *
 * Return: 1 for those it implements, as KVM reports them; 0 otherwise.
 */
int mkvm_irqchip_check_extension(long cap)
{
	switch (cap) {
	case KVM_CAP_IRQCHIP:
	case KVM_CAP_IRQ_INJECT_STATUS:
	case KVM_CAP_TSC_DEADLINE_TIMER:
	case KVM_CAP_IOAPIC_POLARITY_IGNORED:
	case KVM_CAP_SIGNAL_MSI:
	case KVM_CAP_IRQFD:
	case KVM_CAP_IRQFD_RESAMPLE:
	case KVM_CAP_PIT:
	case KVM_CAP_PIT2:
	case KVM_CAP_PIT_STATE2:
	case KVM_CAP_REINJECT_CONTROL:
		return 1;
	case KVM_CAP_IRQ_ROUTING:
		return MKVM_MAX_IRQ_ROUTES;
	default:
		return 0;
	}
}
