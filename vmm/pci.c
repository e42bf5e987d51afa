// SPDX-License-Identifier: GPL-2.0
/*
 * PCI bus 0 behind configuration mechanism 1 (ports 0xcf8/0xcfc, PCI Local
 * Bus spec 3.0, 3.2.2.3.2): a host bridge at 00:00.0 and the devices added
 * with pci_add(). Each device has one 32-bit memory BAR, placed in the PCI
 * window like firmware would; the guest may move it.
 */
#include <stdlib.h>
#include <string.h>

#include "pci.h"

#define CONFIG_ADDRESS	0xcf8
#define CONFIG_DATA	0xcfc
#define MAX_SLOTS	32

static struct pci_dev *slots[MAX_SLOTS];
static int nslots;
static uint32_t config_address;
static uint64_t next_bar = PCI_MMIO_START;

static void put(uint8_t *space, unsigned int off, uint32_t v, unsigned int len)
{
	memcpy(space + off, &v, len);
}

/**
 * pci_add() - a new function 0 on the next free slot of bus 0
 * @vendor: vendor id
 * @device: device id
 * @class: class code, subclass and programming interface (24 bits)
 * @revision: revision id
 *
 * Return: the device, to add capabilities and a BAR to.
 */
struct pci_dev *pci_add(uint16_t vendor, uint16_t device, uint32_t class, uint8_t revision)
{
	struct pci_dev *d = calloc(1, sizeof(*d));

	if (!d || nslots == MAX_SLOTS)
		vmm_die("too many PCI devices");
	put(d->cfg, PCI_VENDOR_ID, vendor, 2);
	put(d->cfg, PCI_DEVICE_ID, device, 2);
	put(d->cfg, PCI_REVISION_ID, revision | class << 8, 4);
	put(d->cfg, PCI_SUBSYSTEM_VENDOR_ID, vendor, 2);
	put(d->cfg, PCI_SUBSYSTEM_ID, device, 2);
	/* Memory space, bus master and INTx disable are all the command bits we have. */
	put(d->wmask, PCI_COMMAND,
	    PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE, 2);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;	/* scratch for software (PCI 3.0, 6.2.4) */
	d->slot = nslots;
	d->next_cap = 0x40;
	slots[nslots++] = d;
	return d;
}

/**
 * pci_add_cap() - append a capability to the device's list
 * @d: the device
 * @cap: the capability, from its id byte on; the next pointer is filled in
 * @len: its length
 *
 * Return: its offset in configuration space.
 */
unsigned int pci_add_cap(struct pci_dev *d, const void *cap, unsigned int len)
{
	unsigned int off = d->next_cap;

	if (off + len > sizeof(d->cfg))
		vmm_die("PCI capabilities overflow configuration space");
	memcpy(d->cfg + off, cap, len);
	d->cfg[off + PCI_CAP_LIST_NEXT] = 0;
	d->cfg[d->last_cap ? d->last_cap + PCI_CAP_LIST_NEXT : PCI_CAPABILITY_LIST] = off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->last_cap = off;
	d->next_cap = (off + len + 3) & ~3u;
	return off;
}

/**
 * pci_set_bar0() - give the device its memory BAR, placed in the PCI window
 * @d: the device
 * @size: a power of two, at least 4 KiB
 * @fn: MMIO handler for accesses inside the BAR
 */
void pci_set_bar0(struct pci_dev *d, uint32_t size, io_handler_t fn)
{
	next_bar = (next_bar + size - 1) & ~(uint64_t)(size - 1);
	if (next_bar + size > PCI_MMIO_END)
		vmm_die("the PCI window is full");
	d->bar_size = size;
	put(d->cfg, PCI_BASE_ADDRESS_0, next_bar, 4);
	put(d->wmask, PCI_BASE_ADDRESS_0, ~(size - 1), 4);
	next_bar += size;
	bus_add_mmio(0, size, fn, d);
}

/* Where BAR 0 decodes now: nowhere unless memory space is enabled. */
static uint64_t bar0_address(struct pci_dev *d)
{
	uint32_t bar;
	uint16_t cmd;

	memcpy(&bar, d->cfg + PCI_BASE_ADDRESS_0, 4);
	memcpy(&cmd, d->cfg + PCI_COMMAND, 2);
	if (!d->bar_size || !(cmd & PCI_COMMAND_MEMORY))
		return 0;
	return bar & ~0xfu;
}

static void config_write(struct pci_dev *d, unsigned int off, uint32_t v, unsigned int len)
{
	uint64_t old = d->bar_address;

	for (unsigned int i = 0; i < len; i++, v >>= 8)
		d->cfg[off + i] = (d->cfg[off + i] & ~d->wmask[off + i]) | (v & d->wmask[off + i]);
	if (bar0_address(d) != old) {
		d->bar_address = bar0_address(d);
		bus_move_mmio(d, d->bar_address);
		if (d->bar_moved)
			d->bar_moved(d, old, d->bar_address);
	}
	if (d->config_written)
		d->config_written(d, off, len);
}

static void config_data(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	unsigned int slot = (config_address >> 11) & 0x1f, reg = (config_address & 0xfc) + off;
	struct pci_dev *d = slot < (unsigned int)nslots ? slots[slot] : NULL;
	uint32_t v = 0;

	(void)opaque;
	/* Only bus 0, function 0 of each slot, and only when the enable bit is set. */
	if (!(config_address & 0x80000000u) || (config_address & 0x00ff0700u) || !d ||
	    reg + len > 256) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	if (write) {
		memcpy(&v, data, len);
		config_write(d, reg, v, len);
	} else {
		memcpy(data, d->cfg + reg, len);
	}
}

static void config_addr(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	(void)opaque;
	/* Only a 32-bit access at 0xcf8 is CONFIG_ADDRESS; bytes there are other chipset ports. */
	if (off || len != 4) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	if (write)
		memcpy(&config_address, data, 4);
	else
		memcpy(data, &config_address, 4);
}

/**
 * pci_init() - the configuration ports and the host bridge
 */
void pci_init(void)
{
	/* A generic host bridge: class 06/00/00, no BARs. */
	pci_add(PCI_VENDOR_REDHAT, PCI_DEVICE_REDHAT_HOST, 0x060000, 0);
	bus_add_pio(CONFIG_ADDRESS, 4, config_addr, NULL);
	bus_add_pio(CONFIG_DATA, 4, config_data, NULL);
}
