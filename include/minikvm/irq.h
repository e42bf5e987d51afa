/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raising GSIs: the interface between the sources of interrupts (KVM_IRQ_LINE,
 * irqfds, the PIT) and the architecture's routing table (KVM_SET_GSI_ROUTING),
 * and the acknowledgements that level-triggered sources wait for.
 */
#ifndef MINIKVM_IRQ_H
#define MINIKVM_IRQ_H

#include <linux/kvm.h>
#include <linux/list.h>
#include <linux/types.h>

struct mkvm_vm;

/* KVM's KVM_MAX_IRQ_ROUTES: GSIs are below this, and a table has at most this many entries. */
#define MKVM_MAX_IRQ_ROUTES	4096

/*
 * Who drives a line.  An irqchip input is the OR of what every source says,
 * so the PIT or a resampling irqfd and KVM_IRQ_LINE on one pin do not undo
 * each other's level.
 */
enum mkvm_irq_source {
	MKVM_IRQ_SRC_USER,		/* KVM_IRQ_LINE, and irqfds without resampling */
	MKVM_IRQ_SRC_RESAMPLE,		/* irqfds with KVM_IRQFD_FLAG_RESAMPLE */
	MKVM_IRQ_SRC_PIT,
	MKVM_NR_IRQ_SRCS
};

/*
 * Told when the guest acknowledges an interrupt of @gsi: an EOI at the
 * IOAPIC pin or 8259 input that @gsi routes to (for an edge-triggered
 * IOAPIC pin, only while such notifiers exist: the local APICs then pass
 * every EOI on).  Called under rcu_read_lock(), without irqchip locks,
 * from the vCPU that wrote the EOI.
 */
struct mkvm_irq_ack_notifier {
	struct hlist_node link;
	u32 gsi;
	void (*acked)(struct mkvm_irq_ack_notifier *n);
};

/*
 * Told when the guest masks or unmasks a pin that @gsi routes to (IOAPIC
 * redirection entry, 8259 IMR).  Called under rcu_read_lock() and possibly
 * an irqchip lock: it must not raise interrupts.
 */
struct mkvm_irq_mask_notifier {
	struct hlist_node link;
	u32 gsi;
	void (*masked)(struct mkvm_irq_mask_notifier *n, bool masked);
};

/* arch/x86/kvm/irqchip/irq_routing.c */
int mkvm_set_irq(struct mkvm_vm *vm, enum mkvm_irq_source src, u32 gsi, int level);
void mkvm_irq_register_ack_notifier(struct mkvm_vm *vm, struct mkvm_irq_ack_notifier *n);
void mkvm_irq_unregister_ack_notifier(struct mkvm_vm *vm, struct mkvm_irq_ack_notifier *n);
void mkvm_irq_register_mask_notifier(struct mkvm_vm *vm, struct mkvm_irq_mask_notifier *n);
void mkvm_irq_unregister_mask_notifier(struct mkvm_vm *vm, struct mkvm_irq_mask_notifier *n);
bool mkvm_irqfd_allowed(struct mkvm_vm *vm, bool resample);

/* virt/kvm/irqfd.c */
int mkvm_irqfd_module_init(void);
void mkvm_irqfd_module_exit(void);
void mkvm_irqfd_init(struct mkvm_vm *vm);
void mkvm_irqfd_destroy(struct mkvm_vm *vm);
int mkvm_irqfd(struct mkvm_vm *vm, const struct kvm_irqfd *args);

#endif
