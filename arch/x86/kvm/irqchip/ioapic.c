// SPDX-License-Identifier: GPL-2.0
/*
 * The IOAPIC of an in-kernel irqchip (Intel 82093AA datasheet): 24 pins,
 * the indirect register window at 0xfec00000, interrupt messages to the
 * local APICs, and remote IRR for level-triggered pins, cleared by the
 * EOI the local APICs broadcast.
 *
 * As in KVM: version 0x11, pin polarity is ignored (KVM_IRQ_LINE gives the
 * logical level), and the 0x40 EOI register of later IOAPICs is accepted.
 */
#include <linux/nospec.h>
#include <asm/apicdef.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

#define IOAPIC_MMIO_SIZE	0x100
#define IOREGSEL		0x00
#define IOWIN			0x10
#define IOEOI			0x40
#define IOAPIC_VERSION		0x11

/* Redirection table entry bits (82093AA 3.2.4). */
#define RTE_VECTOR		0xffULL
#define RTE_DELMODE_SHIFT	8
#define RTE_LOGICAL		BIT_ULL(11)
#define RTE_DELIVS		BIT_ULL(12)
#define RTE_REMOTE_IRR		BIT_ULL(14)
#define RTE_LEVEL		BIT_ULL(15)
#define RTE_MASKED		BIT_ULL(16)
#define RTE_DEST_SHIFT		56

/**
 * mkvm_ioapic_init() - the IOAPIC after reset: every pin masked
 * @ioapic: the IOAPIC
 */
void mkvm_ioapic_init(struct mkvm_ioapic *ioapic)
{
	spin_lock_init(&ioapic->lock);
	ioapic->base = MKVM_IOAPIC_BASE;
	for (int i = 0; i < MKVM_IOAPIC_PINS; i++)
		ioapic->redirtbl[i] = RTE_MASKED;
}

/*
 * Send the pin's message (82093AA 3.2.4); a level-triggered pin then waits
 * for the EOI with remote IRR set.  With ioapic->lock held.
 */
static int service(struct mkvm_irqchip *chip, unsigned int pin)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	u64 e = ioapic->redirtbl[pin];
	struct mkvm_apic_irq irq = {
		.vector = e & RTE_VECTOR,
		.delivery_mode = (e >> RTE_DELMODE_SHIFT) & 7,
		.logical = e & RTE_LOGICAL,
		.level = true,
		.trig_level = e & RTE_LEVEL,
		.dest = e >> RTE_DEST_SHIFT,
		.from_ioapic = true,
	};
	int r;

	if ((e & RTE_MASKED) || ((e & RTE_LEVEL) && (e & RTE_REMOTE_IRR)))
		return -1;
	if (!(e & RTE_LEVEL))
		ioapic->irr_delivered |= BIT(pin);
	r = mkvm_lapic_deliver(chip->vm, NULL, &irq);
	if (e & RTE_LEVEL)
		ioapic->redirtbl[pin] |= RTE_REMOTE_IRR;
	return r;
}

/**
 * mkvm_ioapic_set_irq() - drive an input pin
 * @chip: the irqchip
 * @pin: 0-23
 * @level: the new level
 *
 * An edge pin sends a message when it rises; a level pin whenever it is
 * high and no EOI is outstanding.
 *
 * Return: KVM_IRQ_LINE_STATUS's value: how many APICs took the message,
 * 0 when it merged with one not yet delivered, -1 when masked or unsent.
 */
int mkvm_ioapic_set_irq(struct mkvm_irqchip *chip, unsigned int pin, int level)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	u32 bit = BIT(pin), old;
	unsigned long flags;
	int r = 1;

	spin_lock_irqsave(&ioapic->lock, flags);
	if (!level) {
		ioapic->irr &= ~bit;
		goto out;
	}
	old = ioapic->irr;
	ioapic->irr |= bit;
	if (!(ioapic->redirtbl[pin] & RTE_LEVEL)) {
		ioapic->irr_delivered &= ~bit;
		if (old & bit) {
			r = 0;
			goto out;
		}
	}
	r = service(chip, pin);
out:
	spin_unlock_irqrestore(&ioapic->lock, flags);
	return r;
}

/**
 * mkvm_ioapic_eoi() - a local APIC retired a vector the IOAPIC may have sent
 * @chip: the irqchip
 * @vector: the vector
 *
 * Every level pin with that vector drops remote IRR and, if its line is
 * still high, sends again (82093AA 3.2.4, remote IRR).  The ack notifiers
 * of every pin with the vector (a resampling irqfd, the PIT) run first,
 * without the lock, so that a source that lowers its line on the EOI is
 * not sent again.
 */
void mkvm_ioapic_eoi(struct mkvm_irqchip *chip, u8 vector)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	unsigned long flags, pins = 0;
	int pin;

	spin_lock_irqsave(&ioapic->lock, flags);
	for (pin = 0; pin < MKVM_IOAPIC_PINS; pin++) {
		u64 e = ioapic->redirtbl[pin];

		if ((e & RTE_VECTOR) == vector)
			__set_bit(pin, &pins);
	}
	spin_unlock_irqrestore(&ioapic->lock, flags);
	for_each_set_bit(pin, &pins, MKVM_IOAPIC_PINS)
		mkvm_irq_notify_ack(chip, KVM_IRQCHIP_IOAPIC, pin);
	spin_lock_irqsave(&ioapic->lock, flags);
	for_each_set_bit(pin, &pins, MKVM_IOAPIC_PINS) {
		u64 *e = &ioapic->redirtbl[pin];

		if ((*e & RTE_VECTOR) != vector || !(*e & RTE_LEVEL))
			continue;
		*e &= ~RTE_REMOTE_IRR;
		if (!(*e & RTE_MASKED) && (ioapic->irr & BIT(pin)))
			service(chip, pin);
	}
	spin_unlock_irqrestore(&ioapic->lock, flags);
}

static u32 read_indirect(struct mkvm_ioapic *ioapic)
{
	u32 sel = ioapic->ioregsel, pin;
	u64 e = ~0ULL;

	switch (sel) {
	case 0x00:	/* IOAPICID */
	case 0x02:	/* IOAPICARB */
		return (ioapic->id & 0xf) << 24;
	case 0x01:	/* IOAPICVER: the highest entry in bits 23:16 */
		return (MKVM_IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	default:
		pin = (sel - 0x10) >> 1;
		if (sel >= 0x10 && pin < MKVM_IOAPIC_PINS)
			e = ioapic->redirtbl[array_index_nospec(pin, MKVM_IOAPIC_PINS)];
		return sel & 1 ? e >> 32 : (u32)e;
	}
}

static void write_rte(struct mkvm_irqchip *chip, unsigned int pin, bool high, u32 val)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	u64 *e = &ioapic->redirtbl[pin];
	u64 ro = *e & (RTE_REMOTE_IRR | RTE_DELIVS), old = *e;

	if (high)
		*e = (*e & 0xffffffffULL) | (u64)val << 32;
	else
		*e = (*e & ~0xffffffffULL) | val;
	/* Delivery status and remote IRR are read-only ... */
	*e = (*e & ~(RTE_REMOTE_IRR | RTE_DELIVS)) | ro;
	/* ... but an edge pin has no EOI to wait for; Linux relies on this. */
	if (!(*e & RTE_LEVEL))
		*e &= ~RTE_REMOTE_IRR;
	if ((old ^ *e) & RTE_MASKED)
		mkvm_irq_notify_mask(chip, KVM_IRQCHIP_IOAPIC, pin, *e & RTE_MASKED);
	if ((*e & RTE_LEVEL) && (ioapic->irr & BIT(pin)) && !(*e & RTE_MASKED) &&
	    !(*e & RTE_REMOTE_IRR))
		service(chip, pin);
}

static void write_indirect(struct mkvm_irqchip *chip, u32 val)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	u32 sel = ioapic->ioregsel, pin = (sel - 0x10) >> 1;

	switch (sel) {
	case 0x00:
		ioapic->id = (val >> 24) & 0xf;
		return;
	case 0x01:
	case 0x02:
		return;		/* read-only */
	default:
		if (sel >= 0x10 && pin < MKVM_IOAPIC_PINS)
			write_rte(chip, array_index_nospec(pin, MKVM_IOAPIC_PINS), sel & 1, val);
	}
}

/**
 * mkvm_ioapic_mmio_read() - read IOREGSEL or IOWIN
 * @chip: the irqchip
 * @off: offset in the IOAPIC's page
 *
 * Return: the register; other offsets read 0.
 */
u32 mkvm_ioapic_mmio_read(struct mkvm_irqchip *chip, u64 off)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	unsigned long flags;
	u32 v = 0;

	spin_lock_irqsave(&ioapic->lock, flags);
	if ((off & ~0xfULL) == IOREGSEL)
		v = ioapic->ioregsel;
	else if ((off & ~0xfULL) == IOWIN)
		v = read_indirect(ioapic);
	spin_unlock_irqrestore(&ioapic->lock, flags);
	return v;
}

/**
 * mkvm_ioapic_mmio_write() - write IOREGSEL, IOWIN or the EOI register
 * @chip: the irqchip
 * @off: offset in the IOAPIC's page
 * @val: the value
 */
void mkvm_ioapic_mmio_write(struct mkvm_irqchip *chip, u64 off, u32 val)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	unsigned long flags;

	if ((off & ~0xfULL) == IOEOI) {
		mkvm_ioapic_eoi(chip, val & 0xff);
		return;
	}
	spin_lock_irqsave(&ioapic->lock, flags);
	if ((off & ~0xfULL) == IOREGSEL)
		ioapic->ioregsel = val & 0xff;
	else if ((off & ~0xfULL) == IOWIN)
		write_indirect(chip, val);
	spin_unlock_irqrestore(&ioapic->lock, flags);
}

/**
 * mkvm_ioapic_get_state() - KVM_GET_IRQCHIP for the IOAPIC
 * @chip: the irqchip
 * @s: filled in; edge pins already delivered do not show in irr, as in KVM
 */
void mkvm_ioapic_get_state(struct mkvm_irqchip *chip, struct kvm_ioapic_state *s)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	unsigned long flags;

	memset(s, 0, sizeof(*s));
	spin_lock_irqsave(&ioapic->lock, flags);
	s->base_address = ioapic->base;
	s->ioregsel = ioapic->ioregsel;
	s->id = ioapic->id;
	s->irr = ioapic->irr & ~ioapic->irr_delivered;
	for (int i = 0; i < MKVM_IOAPIC_PINS; i++)
		s->redirtbl[i].bits = ioapic->redirtbl[i];
	spin_unlock_irqrestore(&ioapic->lock, flags);
}

/**
 * mkvm_ioapic_set_state() - KVM_SET_IRQCHIP for the IOAPIC
 * @chip: the irqchip
 * @s: the state; its irr bits are raised again as pin levels, as in KVM
 */
void mkvm_ioapic_set_state(struct mkvm_irqchip *chip, const struct kvm_ioapic_state *s)
{
	struct mkvm_ioapic *ioapic = &chip->ioapic;
	unsigned long flags;

	spin_lock_irqsave(&ioapic->lock, flags);
	ioapic->base = s->base_address;
	ioapic->ioregsel = s->ioregsel;
	ioapic->id = s->id;
	ioapic->irr = 0;
	ioapic->irr_delivered = 0;
	for (int i = 0; i < MKVM_IOAPIC_PINS; i++)
		ioapic->redirtbl[i] = s->redirtbl[i].bits;
	spin_unlock_irqrestore(&ioapic->lock, flags);
	for (int i = 0; i < MKVM_IOAPIC_PINS; i++)
		if (s->irr & BIT(i))
			mkvm_ioapic_set_irq(chip, i, 1);
}
