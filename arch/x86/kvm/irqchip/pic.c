// SPDX-License-Identifier: GPL-2.0
/*
 * The two cascaded 8259A PICs of an in-kernel irqchip (Intel 8259A
 * datasheet; the PIIX edge/level control registers at 0x4d0/0x4d1): the
 * initialization and operation command words, priorities with rotation,
 * the interrupt acknowledge cycle, and the master's INT, which reaches the
 * BSP's LINT0 in ExtINT mode.  The slave hangs on the master's IR2.
 *
 * Like KVM: single mode and the ICW1 level-trigger bit are not supported
 * (the ELCR decides), and reads or writes wider than a byte do nothing.
 */
#include <linux/nospec.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/* Which inputs may be level-triggered: not IRQ 0-2, 8 and 13 (PIIX ELCR). */
#define ELCR_MASK_MASTER	0xf8
#define ELCR_MASK_SLAVE		0xde

/**
 * mkvm_pic_init() - both PICs at power-on
 * @pic: the PIC pair
 */
void mkvm_pic_init(struct mkvm_pic *pic)
{
	spin_lock_init(&pic->lock);
	pic->chip[0].elcr_mask = ELCR_MASK_MASTER;
	pic->chip[1].elcr_mask = ELCR_MASK_SLAVE;
}

/*
 * An input changes level.  Edge inputs latch on a rising edge, level inputs
 * follow the line (8259A "Edge and level triggered modes", ELCR).  Returns
 * -1 when masked, 0 when the request was already latched, 1 otherwise.
 */
static int set_input(struct mkvm_pic_chip *c, int irq, int level)
{
	u8 bit = BIT(irq);
	int r = 1;

	if (c->elcr & bit) {
		if (level) {
			r = !(c->irr & bit);
			c->irr |= bit;
			c->last_irr |= bit;
		} else {
			c->irr &= ~bit;
			c->last_irr &= ~bit;
		}
	} else if (level) {
		if (!(c->last_irr & bit)) {
			r = !(c->irr & bit);
			c->irr |= bit;
		}
		c->last_irr |= bit;
	} else {
		c->last_irr &= ~bit;
	}
	return c->imr & bit ? -1 : r;
}

/* The priority (0 highest) of the best bit in @mask given the rotation, 8 if none. */
static int priority(struct mkvm_pic_chip *c, u8 mask)
{
	int p = 0;

	if (!mask)
		return 8;
	while (!(mask & BIT((p + c->priority_add) & 7)))
		p++;
	return p;
}

/* The input to raise INT for: requested, unmasked, above anything in service. */
static int best_irq(struct mkvm_pic_chip *c, bool master)
{
	int p = priority(c, c->irr & ~c->imr), cur;
	u8 in_service = c->isr;

	if (p == 8)
		return -1;
	/* Special fully nested mode: the slave's own requests nest (8259A ICW4 SFNM). */
	if (master && c->special_fully_nested_mode)
		in_service &= ~BIT(2);
	if (c->special_mask)
		in_service &= ~c->imr;
	cur = priority(c, in_service);
	return p < cur ? (p + c->priority_add) & 7 : -1;
}

/* Recompute the cascade and the master's INT; true when INT just rose. */
static bool update(struct mkvm_pic *pic)
{
	bool old = pic->output;

	if (best_irq(&pic->chip[1], false) >= 0) {
		set_input(&pic->chip[0], 2, 1);
		set_input(&pic->chip[0], 2, 0);
	}
	WRITE_ONCE(pic->output, best_irq(&pic->chip[0], true) >= 0);
	return pic->output && !old;
}

/* INT rose: wake the vCPUs whose LINT0 listens (normally the BSP). */
static void kick_receivers(struct mkvm_irqchip *chip)
{
	struct mkvm_vcpu *vcpu;
	unsigned long i;

	xa_for_each(&chip->vm->vcpus, i, vcpu)
		if (vcpu->arch.lapic && mkvm_lapic_accepts_pic(vcpu))
			mkvm_vcpu_kick(vcpu);
}

/**
 * mkvm_pic_set_irq() - drive IRQ 0-15
 * @chip: the irqchip
 * @pin: 0-7 on the master, 8-15 on the slave
 * @level: the new level
 *
 * Return: KVM_IRQ_LINE_STATUS's value: -1 when masked, 0 when the request
 * was already pending, 1 otherwise.
 */
int mkvm_pic_set_irq(struct mkvm_irqchip *chip, unsigned int pin, int level)
{
	struct mkvm_pic *pic = &chip->pic;
	unsigned long flags;
	bool rose;
	int r;

	spin_lock_irqsave(&pic->lock, flags);
	r = set_input(&pic->chip[pin >> 3], pin & 7, level);
	rose = update(pic);
	spin_unlock_irqrestore(&pic->lock, flags);
	if (rose)
		kick_receivers(chip);
	return r;
}

/*
 * ISR and IMR before and after a guest access, so that the GSIs' notifiers
 * hear of EOIs and (un)masking once the lock is dropped.
 */
struct pic_snap {
	u8 isr[2], imr[2];
};

static void snap(struct mkvm_pic *pic, struct pic_snap *s)
{
	for (int n = 0; n < 2; n++) {
		s->isr[n] = pic->chip[n].isr;
		s->imr[n] = pic->chip[n].imr;
	}
}

/* @auto_acked: inputs acknowledged in auto-EOI mode, which never showed in ISR. */
static void notify(struct mkvm_irqchip *chip, const struct pic_snap *before,
		   const struct pic_snap *after, const u8 *auto_acked)
{
	for (int n = 0; n < 2; n++) {
		unsigned long acked = (before->isr[n] & ~after->isr[n]) | auto_acked[n];
		unsigned long changed = before->imr[n] ^ after->imr[n];
		int irq;

		for_each_set_bit(irq, &acked, 8)
			mkvm_irq_notify_ack(chip, n, irq);
		for_each_set_bit(irq, &changed, 8)
			mkvm_irq_notify_mask(chip, n, irq, after->imr[n] & BIT(irq));
	}
}

/* Interrupt acknowledge: in service unless auto-EOI; an edge request is consumed. */
static void intack(struct mkvm_pic_chip *c, int irq, u8 *auto_acked)
{
	if (c->auto_eoi) {
		*auto_acked |= BIT(irq);
		if (c->rotate_on_auto_eoi)
			c->priority_add = (irq + 1) & 7;
	} else {
		c->isr |= BIT(irq);
	}
	if (!(c->elcr & BIT(irq)))
		c->irr &= ~BIT(irq);
}

/**
 * mkvm_pic_read_irq() - the INTA cycle: the vector the PICs put on the bus
 * @chip: the irqchip
 *
 * With nothing to deliver any more, the spurious IRQ 7 of the chip asked
 * (8259A "Interrupt sequence").
 *
 * Return: the vector.
 */
int mkvm_pic_read_irq(struct mkvm_irqchip *chip)
{
	struct mkvm_pic *pic = &chip->pic;
	struct mkvm_pic_chip *m = &pic->chip[0], *s = &pic->chip[1];
	struct pic_snap before, after;
	u8 auto_acked[2] = {};
	unsigned long flags;
	int irq, irq2, v;

	spin_lock_irqsave(&pic->lock, flags);
	snap(pic, &before);
	irq = best_irq(m, true);
	if (irq < 0) {
		v = m->irq_base + 7;
	} else {
		intack(m, irq, &auto_acked[0]);
		if (irq == 2) {
			irq2 = best_irq(s, false);
			if (irq2 >= 0)
				intack(s, irq2, &auto_acked[1]);
			else
				irq2 = 7;
			v = s->irq_base + irq2;
		} else {
			v = m->irq_base + irq;
		}
	}
	update(pic);
	snap(pic, &after);
	spin_unlock_irqrestore(&pic->lock, flags);
	notify(chip, &before, &after, auto_acked);
	return v;
}

/* ICW1 restarts the initialization sequence and clears the chip's state. */
static void icw1(struct mkvm_pic_chip *c, u8 val)
{
	u8 edge = c->irr & ~c->elcr;

	c->last_irr = 0;
	c->irr &= c->elcr;	/* a level input still asserted stays requested */
	c->isr &= ~edge;	/* as KVM: in-service edge requests are forgotten */
	c->imr = 0;
	c->priority_add = 0;
	c->special_mask = 0;
	c->read_reg_select = 0;
	if (!c->init4) {
		c->special_fully_nested_mode = 0;
		c->auto_eoi = 0;
	}
	c->init4 = val & 1;
	c->init_state = 1;
}

/* OCW2 (8259A table "Operation command word 2"): EOIs and rotation. */
static void ocw2(struct mkvm_pic_chip *c, u8 val)
{
	int cmd = val >> 5, irq;

	switch (cmd) {
	case 0:		/* rotate in auto-EOI mode: clear */
	case 4:		/* rotate in auto-EOI mode: set */
		c->rotate_on_auto_eoi = cmd >> 2;
		break;
	case 1:		/* non-specific EOI */
	case 5:		/* rotate on non-specific EOI */
		irq = priority(c, c->isr);
		if (irq == 8)
			break;
		irq = (irq + c->priority_add) & 7;
		c->isr &= ~BIT(irq);
		if (cmd == 5)
			c->priority_add = (irq + 1) & 7;
		break;
	case 3:		/* specific EOI */
		c->isr &= ~BIT(val & 7);
		break;
	case 6:		/* set priority */
		c->priority_add = ((val & 7) + 1) & 7;
		break;
	case 7:		/* rotate on specific EOI */
		c->isr &= ~BIT(val & 7);
		c->priority_add = ((val & 7) + 1) & 7;
		break;
	default:	/* 2: no operation */
		break;
	}
}

static void port_write(struct mkvm_pic_chip *c, bool a0, u8 val)
{
	if (!a0) {
		if (val & 0x10) {
			icw1(c, val);
		} else if (val & 0x08) {	/* OCW3 */
			if (val & 0x04)
				c->poll = 1;
			if (val & 0x02)
				c->read_reg_select = val & 1;
			if (val & 0x40)
				c->special_mask = (val >> 5) & 1;
		} else {
			ocw2(c, val);
		}
		return;
	}
	switch (c->init_state) {
	case 0:		/* OCW1: the mask */
		c->imr = val;
		break;
	case 1:		/* ICW2: the vector base */
		c->irq_base = val & 0xf8;
		c->init_state = 2;
		break;
	case 2:		/* ICW3: the cascade wiring, fixed here */
		c->init_state = c->init4 ? 3 : 0;
		break;
	case 3:		/* ICW4 */
		c->special_fully_nested_mode = (val >> 4) & 1;
		c->auto_eoi = (val >> 1) & 1;
		c->init_state = 0;
		break;
	}
}

/* Poll command (8259A OCW3 P): acknowledge by reading, without INTA. */
static u8 poll_read(struct mkvm_pic *pic, struct mkvm_pic_chip *c)
{
	bool slave = c == &pic->chip[1];
	int irq = best_irq(c, !slave);

	if (irq < 0)
		return 7;
	if (slave) {
		pic->chip[0].isr &= ~BIT(2);
		pic->chip[0].irr &= ~BIT(2);
	}
	c->irr &= ~BIT(irq);
	c->isr &= ~BIT(irq);
	return irq;
}

/**
 * mkvm_pic_pio_write() - OUT to 0x20/0x21, 0xa0/0xa1 or the ELCRs 0x4d0/0x4d1
 * @chip: the irqchip
 * @port: the port
 * @val: the byte
 */
void mkvm_pic_pio_write(struct mkvm_irqchip *chip, u16 port, u32 val)
{
	struct mkvm_pic *pic = &chip->pic;
	struct pic_snap before, after;
	const u8 none[2] = {};
	unsigned long flags;
	bool rose;

	spin_lock_irqsave(&pic->lock, flags);
	snap(pic, &before);
	if (port == 0x4d0 || port == 0x4d1) {
		struct mkvm_pic_chip *c = &pic->chip[port & 1];

		c->elcr = val & c->elcr_mask;
	} else {
		port_write(&pic->chip[array_index_nospec(port >> 7, ARRAY_SIZE(pic->chip))],
			   port & 1, val);
	}
	rose = update(pic);
	snap(pic, &after);
	spin_unlock_irqrestore(&pic->lock, flags);
	notify(chip, &before, &after, none);
	if (rose)
		kick_receivers(chip);
}

/**
 * mkvm_pic_pio_read() - IN from 0x20/0x21, 0xa0/0xa1 or the ELCRs
 * @chip: the irqchip
 * @port: the port
 *
 * Return: IRR or ISR (OCW3), the mask, the poll result, or the ELCR.
 */
u32 mkvm_pic_pio_read(struct mkvm_irqchip *chip, u16 port)
{
	struct mkvm_pic *pic = &chip->pic;
	struct pic_snap before, after;
	const u8 none[2] = {};
	struct mkvm_pic_chip *c;
	unsigned long flags;
	u32 v;

	spin_lock_irqsave(&pic->lock, flags);
	snap(pic, &before);
	if (port == 0x4d0 || port == 0x4d1) {
		v = pic->chip[port & 1].elcr;
	} else {
		c = &pic->chip[array_index_nospec(port >> 7, ARRAY_SIZE(pic->chip))];
		if (c->poll) {
			v = poll_read(pic, c);
			c->poll = 0;
			update(pic);
		} else if (port & 1) {
			v = c->imr;
		} else {
			v = c->read_reg_select ? c->isr : c->irr;
		}
	}
	snap(pic, &after);
	spin_unlock_irqrestore(&pic->lock, flags);
	/* A poll acknowledges and retires the interrupt it reports. */
	notify(chip, &before, &after, none);
	return v;
}

/**
 * mkvm_pic_get_state() - KVM_GET_IRQCHIP for one PIC
 * @pic: the PIC pair
 * @n: 0 for the master, 1 for the slave
 * @s: filled in
 */
void mkvm_pic_get_state(struct mkvm_pic *pic, int n, struct kvm_pic_state *s)
{
	struct mkvm_pic_chip *c = &pic->chip[array_index_nospec(n, ARRAY_SIZE(pic->chip))];
	unsigned long flags;

	BUILD_BUG_ON(sizeof(*c) != sizeof(*s));
	spin_lock_irqsave(&pic->lock, flags);
	*s = (struct kvm_pic_state){
		.last_irr = c->last_irr, .irr = c->irr, .imr = c->imr, .isr = c->isr,
		.priority_add = c->priority_add, .irq_base = c->irq_base,
		.read_reg_select = c->read_reg_select, .poll = c->poll,
		.special_mask = c->special_mask, .init_state = c->init_state,
		.auto_eoi = c->auto_eoi, .rotate_on_auto_eoi = c->rotate_on_auto_eoi,
		.special_fully_nested_mode = c->special_fully_nested_mode,
		.init4 = c->init4, .elcr = c->elcr, .elcr_mask = c->elcr_mask,
	};
	spin_unlock_irqrestore(&pic->lock, flags);
}

/**
 * mkvm_pic_set_state() - KVM_SET_IRQCHIP for one PIC
 * @chip: the irqchip
 * @n: 0 for the master, 1 for the slave
 * @s: the state, taken as it is
 */
void mkvm_pic_set_state(struct mkvm_irqchip *chip, int n, const struct kvm_pic_state *s)
{
	struct mkvm_pic *pic = &chip->pic;
	struct mkvm_pic_chip *c = &pic->chip[array_index_nospec(n, ARRAY_SIZE(pic->chip))];
	unsigned long flags;
	bool rose;

	spin_lock_irqsave(&pic->lock, flags);
	*c = (struct mkvm_pic_chip){
		.last_irr = s->last_irr, .irr = s->irr, .imr = s->imr, .isr = s->isr,
		.priority_add = s->priority_add, .irq_base = s->irq_base,
		.read_reg_select = s->read_reg_select, .poll = s->poll,
		.special_mask = s->special_mask, .init_state = s->init_state,
		.auto_eoi = s->auto_eoi, .rotate_on_auto_eoi = s->rotate_on_auto_eoi,
		.special_fully_nested_mode = s->special_fully_nested_mode,
		.init4 = s->init4, .elcr = s->elcr, .elcr_mask = s->elcr_mask,
	};
	rose = update(pic);
	spin_unlock_irqrestore(&pic->lock, flags);
	if (rose)
		kick_receivers(chip);
}
