// SPDX-License-Identifier: GPL-2.0
/*
 * GSI routing (api.rst 4.52 KVM_SET_GSI_ROUTING, 4.70 KVM_SIGNAL_MSI): which
 * irqchip inputs and MSI messages a GSI raises, and the acknowledgements a
 * level-triggered source waits for.
 *
 * The table is replaced whole and read under RCU, so the paths that raise
 * interrupts (a vCPU's KVM_IRQ_LINE, an eventfd's wakeup, the PIT's hrtimer)
 * never sleep or take a mutex.  KVM_CREATE_IRQCHIP installs KVM's default:
 * GSI n is IOAPIC pin n and, below 16, input n of the 8259s.
 *
 * MSI messages are decoded as KVM does without KVM_CAP_X2APIC_API: an 8-bit
 * destination from address bits 19:12, so address_hi is ignored (Intel SDM
 * vol. 3 10.11.1 and 10.11.2).
 */
#include <linux/nospec.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/apicdef.h>

#include <minikvm/core.h>
#include <minikvm/irq.h>
#include <minikvm/irqchip.h>

#define NR_IRQCHIPS		3	/* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */

/* MSI address and data fields (SDM vol. 3 figures 10-24 and 10-25). */
#define MSI_ADDR_DEST_LOGICAL	BIT(2)
#define MSI_ADDR_REDIR_HINT	BIT(3)
#define MSI_ADDR_DEST_SHIFT	12
#define MSI_DATA_VECTOR		0xff
#define MSI_DATA_DELMODE_SHIFT	8
#define MSI_DATA_LEVEL		BIT(15)

struct route {
	u32 type;			/* KVM_IRQ_ROUTING_IRQCHIP or _MSI */
	u32 chip;			/* irqchip: KVM_IRQCHIP_* */
	u32 pin;			/* irqchip: 0-15 for the PICs (slave 8-15), 0-23 */
	u32 addr_lo, data;		/* MSI */
};

struct mkvm_irq_routing {
	struct rcu_head rcu;
	u32 nr_gsis;			/* highest GSI + 1 */
	int chip_gsi[NR_IRQCHIPS][MKVM_IOAPIC_PINS];	/* the GSI routed to a pin, or -1 */
	u32 *first;			/* routes of GSI g: [first[g], first[g + 1]) */
	struct route routes[];		/* sorted by GSI */
};

static struct mkvm_irq_routing *alloc_table(u32 nr, u32 nr_gsis)
{
	struct mkvm_irq_routing *rt;
	size_t size = struct_size(rt, routes, nr);

	rt = kvzalloc(size + (nr_gsis + 1) * sizeof(u32), GFP_KERNEL_ACCOUNT);
	if (!rt)
		return NULL;
	rt->nr_gsis = nr_gsis;
	rt->first = (u32 *)((char *)rt + size);
	memset(rt->chip_gsi, 0xff, sizeof(rt->chip_gsi));
	return rt;
}

/* One user entry, checked as KVM checks it; 0 or -EINVAL. */
static int parse_entry(const struct kvm_irq_routing_entry *ue, struct route *r)
{
	r->type = ue->type;
	switch (ue->type) {
	case KVM_IRQ_ROUTING_IRQCHIP:
		if (ue->flags)
			return -EINVAL;
		r->chip = ue->u.irqchip.irqchip;
		r->pin = ue->u.irqchip.pin;
		switch (r->chip) {
		case KVM_IRQCHIP_PIC_MASTER:
		case KVM_IRQCHIP_PIC_SLAVE:
			if (r->pin >= MKVM_PIC_PINS / 2)
				return -EINVAL;
			if (r->chip == KVM_IRQCHIP_PIC_SLAVE)
				r->pin += MKVM_PIC_PINS / 2;
			return 0;
		case KVM_IRQCHIP_IOAPIC:
			return r->pin < MKVM_IOAPIC_PINS ? 0 : -EINVAL;
		default:
			return -EINVAL;
		}
	case KVM_IRQ_ROUTING_MSI:
		/* A device id is accepted and unused: x86 has no ITS. */
		if (ue->flags & ~KVM_MSI_VALID_DEVID)
			return -EINVAL;
		r->addr_lo = ue->u.msi.address_lo;
		r->data = ue->u.msi.data;
		return 0;
	default:
		/* Hyper-V SynIC and Xen event channel routes: no such devices here. */
		return -EINVAL;
	}
}

/*
 * Build a table from @nr user entries.  A GSI may feed each irqchip once,
 * or be a single route of another type (KVM's rule).
 */
static struct mkvm_irq_routing *build_table(const struct kvm_irq_routing_entry *ue, u32 nr)
{
	struct mkvm_irq_routing *rt;
	u32 nr_gsis = 0, i, *next;
	u8 *seen;
	int r = -EINVAL;

	for (i = 0; i < nr; i++) {
		if (ue[i].gsi >= MKVM_MAX_IRQ_ROUTES)
			return ERR_PTR(-EINVAL);
		nr_gsis = max(nr_gsis, ue[i].gsi + 1);
	}
	rt = alloc_table(nr, nr_gsis);
	/* Per GSI: bit n for a route to irqchip n, bit 7 for one of another type. */
	seen = kcalloc(nr_gsis + 1, 1, GFP_KERNEL_ACCOUNT);
	next = kcalloc(nr_gsis + 1, sizeof(*next), GFP_KERNEL_ACCOUNT);
	if (!rt || !seen || !next) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < nr; i++) {
		struct route tmp;
		u8 bit, *s = &seen[ue[i].gsi];

		if (parse_entry(&ue[i], &tmp))
			goto fail;
		bit = tmp.type == KVM_IRQ_ROUTING_IRQCHIP ? BIT(tmp.chip) : BIT(7);
		if ((*s && bit == BIT(7)) || (*s & (bit | BIT(7))))
			goto fail;
		*s |= bit;
		rt->first[ue[i].gsi + 1]++;
	}
	for (i = 0; i < nr_gsis; i++)
		rt->first[i + 1] += rt->first[i];
	memcpy(next, rt->first, nr_gsis * sizeof(*next));
	for (i = 0; i < nr; i++) {
		struct route *e = &rt->routes[next[ue[i].gsi]++];

		parse_entry(&ue[i], e);
		if (e->type == KVM_IRQ_ROUTING_IRQCHIP) {
			/* Checked by the first parse_entry(): not on this path, so clamp here. */
			u32 c = array_index_nospec(ue[i].u.irqchip.irqchip, NR_IRQCHIPS);
			u32 pin = array_index_nospec(ue[i].u.irqchip.pin, MKVM_IOAPIC_PINS);

			rt->chip_gsi[c][pin] = ue[i].gsi;
		}
	}
	kfree(seen);
	kfree(next);
	return rt;
fail:
	kfree(seen);
	kfree(next);
	kvfree(rt);
	return ERR_PTR(r);
}

static void replace_table(struct mkvm_irqchip *chip, struct mkvm_irq_routing *rt)
{
	struct mkvm_irq_routing *old;

	mutex_lock(&chip->routing_lock);
	old = rcu_replace_pointer(chip->routing, rt, lockdep_is_held(&chip->routing_lock));
	mutex_unlock(&chip->routing_lock);
	/* Raisers may still be reading the old table: free it after them. */
	if (old)
		kvfree_rcu(old, rcu);
}

/**
 * mkvm_irq_routing_init() - KVM's default routing, at KVM_CREATE_IRQCHIP
 * @chip: the new irqchip
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_irq_routing_init(struct mkvm_irqchip *chip)
{
	struct kvm_irq_routing_entry def[MKVM_IOAPIC_PINS + MKVM_PIC_PINS] = {}, *e = def;
	struct mkvm_irq_routing *rt;

	mutex_init(&chip->routing_lock);
	spin_lock_init(&chip->lines_lock);
	for (u32 gsi = 0; gsi < MKVM_IOAPIC_PINS; gsi++) {
		*e++ = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi >= MKVM_PIC_PINS)
			continue;
		*e++ = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
				       KVM_IRQCHIP_PIC_SLAVE, .pin = gsi & 7 },
		};
	}
	rt = build_table(def, e - def);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	RCU_INIT_POINTER(chip->routing, rt);
	return 0;
}

/**
 * mkvm_irq_routing_free() - free the table of a dying VM
 * @chip: the irqchip, which nothing raises interrupts on any more
 */
void mkvm_irq_routing_free(struct mkvm_irqchip *chip)
{
	kvfree(rcu_dereference_protected(chip->routing, 1));
}

static int set_gsi_routing(struct mkvm_vm *vm, struct kvm_irq_routing __user *arg)
{
	struct mkvm_irqchip *chip = READ_ONCE(vm->arch.irqchip);
	struct kvm_irq_routing_entry *entries = NULL;
	struct mkvm_irq_routing *rt;
	struct kvm_irq_routing hdr;

	if (copy_from_user(&hdr, arg, sizeof(hdr)))
		return -EFAULT;
	if (!chip || hdr.nr > MKVM_MAX_IRQ_ROUTES || hdr.flags)
		return -EINVAL;
	if (hdr.nr) {
		entries = vmemdup_user(arg->entries, array_size(sizeof(*entries), hdr.nr));
		if (IS_ERR(entries))
			return PTR_ERR(entries);
	}
	rt = build_table(entries, hdr.nr);
	kvfree(entries);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	replace_table(chip, rt);
	return 0;
}

/* Deliver an MSI message to the local APICs it names; KVM_IRQ_LINE_STATUS's value. */
static int deliver_msi(struct mkvm_vm *vm, u32 addr_lo, u32 data)
{
	struct mkvm_apic_irq irq = {
		.dest = (addr_lo >> MSI_ADDR_DEST_SHIFT) & 0xff,
		.vector = data & MSI_DATA_VECTOR,
		.delivery_mode = (data >> MSI_DATA_DELMODE_SHIFT) & 7,
		.logical = addr_lo & MSI_ADDR_DEST_LOGICAL,
		.level = true,
		.trig_level = data & MSI_DATA_LEVEL,
		/* An 8-bit destination, whose 0xff is a broadcast to x2APICs too. */
		.from_ioapic = true,
	};

	/* The redirection hint asks for lowest-priority delivery among the destinations. */
	if ((addr_lo & MSI_ADDR_REDIR_HINT) && irq.delivery_mode == APIC_DM_FIXED >> 8)
		irq.delivery_mode = APIC_DM_LOWEST >> 8;
	return mkvm_lapic_deliver(vm, NULL, &irq);
}

static int set_chip_input(struct mkvm_irqchip *chip, const struct route *e,
			  enum mkvm_irq_source src, int level)
{
	unsigned long *line = e->chip == KVM_IRQCHIP_IOAPIC ? &chip->ioapic_lines[e->pin] :
			      &chip->pic_lines[e->pin];
	unsigned long flags;
	int r;

	spin_lock_irqsave(&chip->lines_lock, flags);
	if (level)
		__set_bit(src, line);
	else
		__clear_bit(src, line);
	if (e->chip == KVM_IRQCHIP_IOAPIC)
		r = mkvm_ioapic_set_irq(chip, e->pin, *line != 0);
	else
		r = mkvm_pic_set_irq(chip, e->pin, *line != 0);
	spin_unlock_irqrestore(&chip->lines_lock, flags);
	return r;
}

/**
 * mkvm_set_irq() - a source sets the level of a GSI
 * @vm: the VM
 * @src: who drives it
 * @gsi: the GSI
 * @level: the new level; an MSI route sends its message on 1 only
 *
 * Every route of the GSI is raised; callable in any context.
 *
 * Return: KVM_IRQ_LINE_STATUS's value: the sum of what the routes report
 * (APICs reached, 0 when coalesced), or -1 when none took it.
 */
int mkvm_set_irq(struct mkvm_vm *vm, enum mkvm_irq_source src, u32 gsi, int level)
{
	struct mkvm_irqchip *chip = READ_ONCE(vm->arch.irqchip);
	struct mkvm_irq_routing *rt;
	int r = -1, one;

	if (!chip)
		return -1;
	rcu_read_lock();
	rt = rcu_dereference(chip->routing);
	/* A GSI past the table, even speculatively, is nr_gsis: no routes there. */
	gsi = array_index_nospec(min(gsi, rt->nr_gsis), rt->nr_gsis + 1);
	for (u32 i = rt->first[gsi]; gsi < rt->nr_gsis && i < rt->first[gsi + 1]; i++) {
		const struct route *e = &rt->routes[i];

		if (e->type == KVM_IRQ_ROUTING_MSI)
			one = level ? deliver_msi(vm, e->addr_lo, e->data) : -1;
		else
			one = set_chip_input(chip, e, src, level);
		if (one >= 0)
			r = max(r, 0) + one;
	}
	rcu_read_unlock();
	return r;
}

static int signal_msi(struct mkvm_vm *vm, struct kvm_msi __user *arg)
{
	struct kvm_msi msi;

	if (copy_from_user(&msi, arg, sizeof(msi)))
		return -EFAULT;
	if (!mkvm_irqchip_in_kernel(vm) || (msi.flags & ~KVM_MSI_VALID_DEVID))
		return -EINVAL;
	return deliver_msi(vm, msi.address_lo, msi.data);
}

/**
 * mkvm_irq_routing_ioctl() - KVM_SET_GSI_ROUTING and KVM_SIGNAL_MSI
 * @vm: the VM
 * @ioctl: the ioctl
 * @argp: its argument
 *
 * Return: KVM_SIGNAL_MSI: how many APICs took the message, 0 when it
 * coalesced, -1 when none did (the ioctl's return value, as in KVM);
 * -EINVAL without an in-kernel irqchip or for a bad table or flags;
 * -EFAULT, -ENOMEM; -ENOTTY for another ioctl.
 */
long mkvm_irq_routing_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp)
{
	switch (ioctl) {
	case KVM_SET_GSI_ROUTING:
		return set_gsi_routing(vm, argp);
	case KVM_SIGNAL_MSI:
		return signal_msi(vm, argp);
	default:
		return -ENOTTY;
	}
}

static void add_notifier(struct mkvm_vm *vm, struct hlist_node *link, struct hlist_head *list)
{
	mutex_lock(&vm->arch.irq_notifiers_lock);
	hlist_add_head_rcu(link, list);
	mutex_unlock(&vm->arch.irq_notifiers_lock);
}

static void del_notifier(struct mkvm_vm *vm, struct hlist_node *link)
{
	mutex_lock(&vm->arch.irq_notifiers_lock);
	hlist_del_init_rcu(link);
	mutex_unlock(&vm->arch.irq_notifiers_lock);
	/* No callback runs on it any more. */
	synchronize_rcu();
}

/**
 * mkvm_irq_register_ack_notifier() - be told of EOIs of a GSI's interrupts
 * @vm: the VM
 * @n: the notifier, with gsi and acked set
 */
void mkvm_irq_register_ack_notifier(struct mkvm_vm *vm, struct mkvm_irq_ack_notifier *n)
{
	add_notifier(vm, &n->link, &vm->arch.irq_ack_notifiers);
}

/**
 * mkvm_irq_unregister_ack_notifier() - stop the notifications
 * @vm: the VM
 * @n: a registered notifier; its callback is not running when this returns
 */
void mkvm_irq_unregister_ack_notifier(struct mkvm_vm *vm, struct mkvm_irq_ack_notifier *n)
{
	del_notifier(vm, &n->link);
}

/**
 * mkvm_irq_register_mask_notifier() - be told when a GSI's pins are (un)masked
 * @vm: the VM
 * @n: the notifier, with gsi and masked set
 */
void mkvm_irq_register_mask_notifier(struct mkvm_vm *vm, struct mkvm_irq_mask_notifier *n)
{
	add_notifier(vm, &n->link, &vm->arch.irq_mask_notifiers);
}

/**
 * mkvm_irq_unregister_mask_notifier() - stop the notifications
 * @vm: the VM
 * @n: a registered notifier; its callback is not running when this returns
 */
void mkvm_irq_unregister_mask_notifier(struct mkvm_vm *vm, struct mkvm_irq_mask_notifier *n)
{
	del_notifier(vm, &n->link);
}

/**
 * mkvm_irq_has_ack_notifiers() - whether EOIs of edge interrupts matter
 * @vm: the VM
 *
 * Return: true while some source waits for acknowledgements.
 */
bool mkvm_irq_has_ack_notifiers(struct mkvm_vm *vm)
{
	return !hlist_empty(&vm->arch.irq_ack_notifiers);
}

/* The GSI routed to an irqchip input, or -1; under rcu_read_lock(). */
static int pin_gsi(struct mkvm_irqchip *chip, unsigned int irqchip, unsigned int pin)
{
	return rcu_dereference(chip->routing)->chip_gsi[irqchip][pin];
}

/**
 * mkvm_irq_notify_ack() - the guest acknowledged an irqchip input's interrupt
 * @chip: the irqchip
 * @irqchip: KVM_IRQCHIP_*
 * @pin: the input on that chip (0-7 on a PIC)
 *
 * Called without irqchip locks: a notifier may lower or raise the line.
 */
void mkvm_irq_notify_ack(struct mkvm_irqchip *chip, unsigned int irqchip, unsigned int pin)
{
	struct hlist_head *list = &chip->vm->arch.irq_ack_notifiers;
	struct mkvm_irq_ack_notifier *n;
	int gsi;

	if (hlist_empty(list))
		return;
	rcu_read_lock();
	gsi = pin_gsi(chip, irqchip, pin);
	if (gsi >= 0)
		hlist_for_each_entry_rcu(n, list, link)
			if (n->gsi == gsi)
				n->acked(n);
	rcu_read_unlock();
}

/**
 * mkvm_irq_notify_mask() - the guest masked or unmasked an irqchip input
 * @chip: the irqchip
 * @irqchip: KVM_IRQCHIP_*
 * @pin: the input on that chip (0-7 on a PIC)
 * @masked: its new state
 */
void mkvm_irq_notify_mask(struct mkvm_irqchip *chip, unsigned int irqchip, unsigned int pin,
			  bool masked)
{
	struct hlist_head *list = &chip->vm->arch.irq_mask_notifiers;
	struct mkvm_irq_mask_notifier *n;
	int gsi;

	if (hlist_empty(list))
		return;
	rcu_read_lock();
	gsi = pin_gsi(chip, irqchip, pin);
	if (gsi >= 0)
		hlist_for_each_entry_rcu(n, list, link)
			if (n->gsi == gsi)
				n->masked(n, masked);
	rcu_read_unlock();
}

/**
 * mkvm_irqfd_allowed() - whether KVM_IRQFD may attach to this VM
 * @vm: the VM
 * @resample: with KVM_IRQFD_FLAG_RESAMPLE
 *
 * Return: true with an in-kernel irqchip (KVM's rule; a split irqchip,
 * which minikvm has not, could not resample).
 */
bool mkvm_irqfd_allowed(struct mkvm_vm *vm, bool resample)
{
	return mkvm_irqchip_in_kernel(vm);
}
