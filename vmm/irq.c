// SPDX-License-Identifier: GPL-2.0
/*
 * Interrupt routing on the in-kernel irqchip. KVM_SET_GSI_ROUTING replaces
 * the whole table, so the VMM owns it: GSIs 0-23 go to the IOAPIC pins (and
 * 0-15 to the 8259s as well), then one GSI per MSI-X vector, each fed by an
 * irqfd so that the I/O thread raises it without entering KVM_RUN's path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "vmm.h"

#define MAX_MSI		256
#define FIRST_MSI_GSI	IOAPIC_PINS

static struct {
	struct kvm_irq_routing hdr;
	struct kvm_irq_routing_entry e[2 * 16 + IOAPIC_PINS + MAX_MSI];
} table;
static int nlegacy, nmsi;
static struct {
	bool valid;
	uint64_t addr;
	uint32_t data;
} msi[MAX_MSI];
static int vm_fd = -1;

static void add_chip(int gsi, int chip, int pin)
{
	table.e[nlegacy++] = (struct kvm_irq_routing_entry){
		.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
		.u.irqchip = { .irqchip = chip, .pin = pin },
	};
}

/**
 * irq_init() - route the legacy lines like a PC
 * @v: the VM, with its in-kernel irqchip created
 *
 * ISA IRQ 0 (the PIT) goes to IOAPIC pin 2, as the MADT says; the other ISA
 * IRQs to the pin of the same number. The slave 8259's cascade line (IRQ 2)
 * has no route.
 */
void irq_init(struct vmm *v)
{
	vm_fd = v->vm_fd;
	for (int gsi = 0; gsi < 16; gsi++)
		if (gsi != 2)
			add_chip(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				 gsi & 7);
	for (int gsi = 0; gsi < IOAPIC_PINS; gsi++)
		if (gsi != 2)
			add_chip(gsi, KVM_IRQCHIP_IOAPIC, gsi ? gsi : 2);
	irq_commit();
}

/**
 * irq_line() - set the level of a legacy interrupt line
 * @irq: ISA IRQ / GSI number
 * @level: 0 or 1
 */
void irq_line(int irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	if (ioctl(vm_fd, KVM_IRQ_LINE, &l))
		vmm_die("KVM_IRQ_LINE %d: %s", irq, strerror(errno));
}

/**
 * irq_alloc_msi() - a GSI for one MSI-X vector, with an irqfd on it
 * @efd: set to the eventfd that raises the interrupt when written
 *
 * The route itself comes with irq_set_msi(), when the guest programs the vector.
 *
 * Return: the GSI.
 */
int irq_alloc_msi(int *efd)
{
	struct kvm_irqfd irqfd = { 0 };

	if (nmsi == MAX_MSI)
		vmm_die("too many MSI-X vectors");
	*efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (*efd < 0)
		vmm_die("eventfd: %s", strerror(errno));
	irqfd.fd = *efd;
	irqfd.gsi = FIRST_MSI_GSI + nmsi;
	if (ioctl(vm_fd, KVM_IRQFD, &irqfd))
		vmm_die("KVM_IRQFD: %s", strerror(errno));
	return FIRST_MSI_GSI + nmsi++;
}

/**
 * irq_set_msi() - the message a vector's GSI delivers
 * @gsi: from irq_alloc_msi()
 * @addr: MSI address (0: no route)
 * @data: MSI data
 *
 * Takes effect at the next irq_commit().
 */
void irq_set_msi(int gsi, uint64_t addr, uint32_t data)
{
	int i = gsi - FIRST_MSI_GSI;

	msi[i].valid = addr != 0;
	msi[i].addr = addr;
	msi[i].data = data;
}

/**
 * irq_commit() - hand the routing table to KVM
 */
void irq_commit(void)
{
	int n = nlegacy;

	for (int i = 0; i < nmsi; i++) {
		if (!msi[i].valid)
			continue;
		table.e[n++] = (struct kvm_irq_routing_entry){
			.gsi = FIRST_MSI_GSI + i, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)msi[i].addr,
				   .address_hi = msi[i].addr >> 32, .data = msi[i].data },
		};
	}
	table.hdr.nr = n;
	if (ioctl(vm_fd, KVM_SET_GSI_ROUTING, &table))
		vmm_die("KVM_SET_GSI_ROUTING: %s", strerror(errno));
}
