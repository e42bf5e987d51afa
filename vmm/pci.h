/* SPDX-License-Identifier: GPL-2.0 */
/*
 * PCI devices on the VMM's bus 0 (vmm/pci.c).
 */
#ifndef MINIKVM_VMM_PCI_H
#define MINIKVM_VMM_PCI_H

#include <linux/pci_regs.h>

#include "vmm.h"

/* IDs the PCI-SIG assigned to Red Hat for virtual devices; virtio's are its own. */
#define PCI_VENDOR_REDHAT	0x1b36
#define PCI_DEVICE_REDHAT_HOST	0x0008

struct pci_dev {
	uint8_t cfg[256];
	uint8_t wmask[256];		/* which configuration bits the guest may write */
	int slot;
	unsigned int next_cap, last_cap;
	uint32_t bar_size;
	uint64_t bar_address;		/* where BAR 0 decodes now, 0 if nowhere */
	/* Called with dev_lock held after the guest moved or enabled BAR 0. */
	void (*bar_moved)(struct pci_dev *d, uint64_t old, uint64_t now);
	/* Called with dev_lock held after any configuration write. */
	void (*config_written)(struct pci_dev *d, unsigned int off, unsigned int len);
	void *owner;
};

struct pci_dev *pci_add(uint16_t vendor, uint16_t device, uint32_t class, uint8_t revision);
unsigned int pci_add_cap(struct pci_dev *d, const void *cap, unsigned int len);
void pci_set_bar0(struct pci_dev *d, uint32_t size, io_handler_t fn);

#endif
