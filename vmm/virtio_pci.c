// SPDX-License-Identifier: GPL-2.0
/*
 * The virtio PCI transport, modern interface only (virtio spec 1.2, 4.1):
 * vendor capabilities point into one memory BAR that holds the common
 * configuration, the ISR, the device configuration, the queue notify
 * addresses and the MSI-X table. Notifications arrive through ioeventfds
 * (or as MMIO exits where the hypervisor has none); interrupts leave through
 * MSI-X vectors routed to irqfds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <linux/virtio_pci.h>

#include "virtio.h"

/* The BAR's layout. */
#define BAR_SIZE	0x1000
#define OFF_COMMON	0x000
#define OFF_ISR		0x100
#define OFF_DEVICE	0x200
#define OFF_NOTIFY	0x300
#define NOTIFY_MULT	4		/* bytes between queues' notify addresses */
#define OFF_MSIX_TABLE	0x800
#define OFF_MSIX_PBA	0xc00
#define MSIX_ENTRY_SIZE	16

#define PCI_VENDOR_VIRTIO	0x1af4
#define PCI_DEVICE_VIRTIO_BASE	0x1040	/* + the virtio device type (4.1.2.1) */

static bool ioeventfd_ok = true;	/* false after the first refusal: MMIO exits then */

/**
 * virtio_running() - whether the driver finished initialization and the
 * device is usable
 * @vd: the device
 *
 * Return: DRIVER_OK is set and neither FAILED nor NEEDS_RESET.
 */
bool virtio_running(struct virtio_dev *vd)
{
	return (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(vd->status & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET));
}

/**
 * virtio_needs_reset() - the device cannot go on until the driver resets it
 * @vd: the device
 *
 * Sets NEEDS_RESET and, once the driver is running, tells it with a
 * configuration-change interrupt (2.1.2).
 */
void virtio_needs_reset(struct virtio_dev *vd)
{
	bool was_running = virtio_running(vd);

	vd->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (was_running)
		virtio_interrupt(vd, -1);
}

/* --- MSI-X (PCI Local Bus spec 3.0, 6.8.2) --------------------------------- */

static uint16_t msix_control(struct virtio_dev *vd)
{
	uint16_t c;

	memcpy(&c, vd->pci->cfg + vd->msix_cap + PCI_MSIX_FLAGS, 2);
	return c;
}

static bool vector_masked(struct virtio_dev *vd, int v)
{
	uint16_t c = msix_control(vd);

	return !(c & PCI_MSIX_FLAGS_ENABLE) || (c & PCI_MSIX_FLAGS_MASKALL) ||
	       (vd->msix[v].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

static void fire(struct virtio_dev *vd, int v)
{
	uint64_t one = 1;

	if (vector_masked(vd, v)) {
		vd->msix_pending |= 1u << v;
		return;
	}
	if (write(vd->irqfd[v], &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "minikvm: %s: cannot signal its irqfd: %s\n", vd->name,
			strerror(errno));
}

/* After a mask changed: deliver what was held back (6.8.2.9's pending bits). */
static void msix_unmasked(struct virtio_dev *vd)
{
	for (int v = 0; v < vd->nvectors; v++) {
		if ((vd->msix_pending & (1u << v)) && !vector_masked(vd, v)) {
			vd->msix_pending &= ~(1u << v);
			fire(vd, v);
		}
	}
}

static void msix_table_access(struct virtio_dev *vd, uint64_t off, bool write, void *data,
			      unsigned int len)
{
	unsigned int v = off / MSIX_ENTRY_SIZE, word = (off % MSIX_ENTRY_SIZE) / 4;
	uint32_t *entry;

	/* Aligned dword and qword accesses are defined (6.8.2.6); a qword is two dwords. */
	if (len == 8 && !(off & 7)) {
		msix_table_access(vd, off, write, data, 4);
		msix_table_access(vd, off + 4, write, (uint8_t *)data + 4, 4);
		return;
	}
	if (v >= (unsigned int)vd->nvectors || len != 4 || (off & 3)) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	entry = &vd->msix[v].addr_lo + word;
	if (!write) {
		memcpy(data, entry, 4);
		return;
	}
	memcpy(entry, data, 4);
	if (word == 3) {
		vd->msix[v].ctrl &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
		msix_unmasked(vd);
	} else {
		irq_set_msi(vd->gsi[v], (uint64_t)vd->msix[v].addr_hi << 32 | vd->msix[v].addr_lo,
			    vd->msix[v].data);
		irq_commit();
	}
}

static void msix_config_written(struct pci_dev *d, unsigned int off, unsigned int len)
{
	struct virtio_dev *vd = d->owner;

	if (off <= vd->msix_cap + PCI_MSIX_FLAGS + 1 && off + len > vd->msix_cap + PCI_MSIX_FLAGS)
		msix_unmasked(vd);
}

/**
 * virtio_interrupt() - tell the driver that queue @q has used buffers
 * @vd: the device
 * @q: the queue, or -1 for a configuration change
 */
void virtio_interrupt(struct virtio_dev *vd, int q)
{
	uint16_t v = q < 0 ? vd->msix_config : vd->vq[q].msix_vector;

	if (q >= 0 && !vd->vq[q].enabled)
		return;
	/*
	 * The used index was published before the flag is read, and the driver
	 * clears the flag before it rechecks the used index: a full barrier on
	 * each side, or both can miss each other (2.7.10).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* The driver asked for no interrupt; without EVENT_IDX that is only a hint (2.7.7). */
	if (q >= 0 && (__atomic_load_n(&vd->vq[q].avail->flags, __ATOMIC_RELAXED) &
		       VRING_AVAIL_F_NO_INTERRUPT))
		return;
	vd->isr |= q < 0 ? VIRTIO_PCI_ISR_CONFIG : 1;
	if (v < vd->nvectors)
		fire(vd, v);
}

/* --- Notifications ------------------------------------------------------- */

static void set_ioeventfd(struct virtio_dev *vd, int q, uint64_t bar, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = bar + OFF_NOTIFY + q * NOTIFY_MULT, .len = 2, .fd = vd->vq[q].notify_fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	/* A queue's ioeventfd is removed exactly where it was registered. */
	if (!assign) {
		if (vd->vq[q].notify_registered)
			ioctl(vm.vm_fd, KVM_IOEVENTFD, &io);
		vd->vq[q].notify_registered = false;
		return;
	}
	if (!ioeventfd_ok)
		return;
	if (ioctl(vm.vm_fd, KVM_IOEVENTFD, &io) == 0) {
		vd->vq[q].notify_registered = true;
		return;
	}
	/* Without ioeventfds the notify writes exit to the VMM, which works, only slower. */
	fprintf(stderr, "minikvm: KVM_IOEVENTFD failed (%s): queue notifications will exit "
		"to the VMM\n", strerror(errno));
	ioeventfd_ok = false;
}

static void bar_moved(struct pci_dev *d, uint64_t old, uint64_t now)
{
	struct virtio_dev *vd = d->owner;

	for (int q = 0; q < vd->nqueues; q++) {
		if (old)
			set_ioeventfd(vd, q, old, false);
		if (now)
			set_ioeventfd(vd, q, now, true);
	}
}

static void notify_ready(void *opaque, bool error)
{
	struct virtqueue *vq = opaque;
	uint64_t count;

	(void)error;		/* an eventfd does not fail */
	if (read(vq->notify_fd, &count, sizeof(count)) != sizeof(count))
		return;
	pthread_mutex_lock(&dev_lock);
	if (virtio_running(vq->vd))
		vq->vd->ops->notify(vq->vd, vq->index);
	pthread_mutex_unlock(&dev_lock);
}

/* --- The common configuration (4.1.4.3) ----------------------------------- */

static void reset(struct virtio_dev *vd)
{
	vd->status = 0;
	vd->isr = 0;
	vd->driver_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->queue_select = 0;
	vd->msix_config = VIRTIO_NO_VECTOR;
	for (int q = 0; q < vd->nqueues; q++) {
		struct virtqueue *vq = &vd->vq[q];
		int fd = vq->notify_fd;
		bool registered = vq->notify_registered;

		memset(vq, 0, sizeof(*vq));
		vq->notify_fd = fd;
		vq->notify_registered = registered;
		vq->vd = vd;
		vq->index = q;
		vq->size = VIRTIO_QUEUE_MAX;
		vq->msix_vector = VIRTIO_NO_VECTOR;
	}
	if (vd->ops->reset)
		vd->ops->reset(vd);
}

static bool queue_map(struct virtqueue *vq)
{
	size_t n = vq->size;

	vq->desc = gpa_to_hva(vq->desc_gpa, n * sizeof(struct vring_desc));
	vq->avail = gpa_to_hva(vq->avail_gpa, sizeof(struct vring_avail) + (n + 1) * 2);
	vq->used = gpa_to_hva(vq->used_gpa, sizeof(struct vring_used) +
			      n * sizeof(struct vring_used_elem) + 2);
	return vq->desc && vq->avail && vq->used && vq->size && !(vq->size & (vq->size - 1));
}

static void set_status(struct virtio_dev *vd, uint8_t s)
{
	if (!s) {
		reset(vd);
		return;
	}
	/* FEATURES_OK sticks only for a subset of ours that includes VERSION_1 (3.1.1). */
	if ((s & VIRTIO_CONFIG_S_FEATURES_OK) && !(vd->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    ((vd->driver_features & ~vd->features) ||
	     !(vd->driver_features & (1ULL << VIRTIO_F_VERSION_1))))
		s &= ~VIRTIO_CONFIG_S_FEATURES_OK;
	vd->status = s | (vd->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static uint32_t common_read(struct virtio_dev *vd, unsigned int off)
{
	struct virtqueue *vq = vd->queue_select < vd->nqueues ? &vd->vq[vd->queue_select] : NULL;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: return vd->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return vd->dfselect < 2 ? vd->features >> (32 * vd->dfselect) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return vd->gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vd->gfselect < 2 ? vd->driver_features >> (32 * vd->gfselect) : 0;
	case VIRTIO_PCI_COMMON_MSIX: return vd->msix_config;
	case VIRTIO_PCI_COMMON_NUMQ: return vd->nqueues;
	case VIRTIO_PCI_COMMON_STATUS: return vd->status;
	case VIRTIO_PCI_COMMON_CFGGENERATION: return 0;	/* the configuration never changes */
	case VIRTIO_PCI_COMMON_Q_SELECT: return vd->queue_select;
	}
	if (!vq)		/* a queue that does not exist has size 0 (4.1.4.3.2) */
		return 0;
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE: return vq->size;
	case VIRTIO_PCI_COMMON_Q_MSIX: return vq->msix_vector;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return vq->enabled;
	case VIRTIO_PCI_COMMON_Q_NOFF: return vd->queue_select;
	case VIRTIO_PCI_COMMON_Q_DESCLO: return vq->desc_gpa;
	case VIRTIO_PCI_COMMON_Q_DESCHI: return vq->desc_gpa >> 32;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: return vq->avail_gpa;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: return vq->avail_gpa >> 32;
	case VIRTIO_PCI_COMMON_Q_USEDLO: return vq->used_gpa;
	case VIRTIO_PCI_COMMON_Q_USEDHI: return vq->used_gpa >> 32;
	}
	return 0;
}

static void set_half(uint64_t *reg, bool high, uint32_t v)
{
	*reg = high ? (*reg & 0xffffffffULL) | (uint64_t)v << 32 : (*reg & ~0xffffffffULL) | v;
}

static void common_write(struct virtio_dev *vd, unsigned int off, uint32_t v)
{
	struct virtqueue *vq = vd->queue_select < vd->nqueues ? &vd->vq[vd->queue_select] : NULL;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: vd->dfselect = v; return;
	case VIRTIO_PCI_COMMON_GFSELECT: vd->gfselect = v; return;
	case VIRTIO_PCI_COMMON_GF:
		if (vd->gfselect < 2 && !(vd->status & VIRTIO_CONFIG_S_FEATURES_OK))
			set_half(&vd->driver_features, vd->gfselect, v);
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		vd->msix_config = v < (uint32_t)vd->nvectors ? v : VIRTIO_NO_VECTOR;
		return;
	case VIRTIO_PCI_COMMON_STATUS: set_status(vd, v); return;
	case VIRTIO_PCI_COMMON_Q_SELECT: vd->queue_select = v; return;
	}
	/* A queue's setup is frozen while it is enabled (4.1.4.3.2). */
	if (!vq || (vq->enabled && off != VIRTIO_PCI_COMMON_Q_MSIX))
		return;
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		vq->size = v <= VIRTIO_QUEUE_MAX ? v : VIRTIO_QUEUE_MAX;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		vq->msix_vector = v < (uint32_t)vd->nvectors ? v : VIRTIO_NO_VECTOR;
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (v == 1 && queue_map(vq))
			vq->enabled = true;
		else if (v == 1)
			virtio_needs_reset(vd);
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO: set_half(&vq->desc_gpa, false, v); break;
	case VIRTIO_PCI_COMMON_Q_DESCHI: set_half(&vq->desc_gpa, true, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: set_half(&vq->avail_gpa, false, v); break;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: set_half(&vq->avail_gpa, true, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDLO: set_half(&vq->used_gpa, false, v); break;
	case VIRTIO_PCI_COMMON_Q_USEDHI: set_half(&vq->used_gpa, true, v); break;
	}
}

/* --- The BAR --------------------------------------------------------------- */

static void bar_access(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	struct pci_dev *d = opaque;
	struct virtio_dev *vd = d->owner;
	uint32_t v = 0;

	if (write)
		memcpy(&v, data, len < 4 ? len : 4);
	else
		memset(data, 0, len);	/* bytes a handler does not fill read as 0 */
	if (off >= OFF_MSIX_TABLE && off < OFF_MSIX_PBA) {
		msix_table_access(vd, off - OFF_MSIX_TABLE, write, data, len);
	} else if (off >= OFF_MSIX_PBA && off + len <= OFF_MSIX_PBA + 8) {
		uint64_t pending = vd->msix_pending;

		if (!write)	/* the pending bits are read-only (6.8.2.7) */
			memcpy(data, (uint8_t *)&pending + (off - OFF_MSIX_PBA), len);
	} else if (off >= OFF_NOTIFY && off < OFF_NOTIFY + (uint64_t)vd->nqueues * NOTIFY_MULT) {
		/* Only reached without an ioeventfd. */
		if (write && virtio_running(vd))
			vd->ops->notify(vd, (off - OFF_NOTIFY) / NOTIFY_MULT);
		else if (!write)
			memset(data, 0, len);
	} else if (off >= OFF_DEVICE && off + len <= OFF_DEVICE + vd->config_len) {
		if (!write)
			memcpy(data, (uint8_t *)vd->config + off - OFF_DEVICE, len);
		/* The devices here have no writable configuration fields. */
	} else if (off == OFF_ISR) {
		if (!write) {
			memset(data, 0, len);
			*(uint8_t *)data = vd->isr;	/* reading clears it (4.1.4.5) */
			vd->isr = 0;
		}
	} else if (off < OFF_COMMON + VIRTIO_PCI_COMMON_Q_NDATA) {
		if (write)
			common_write(vd, off, v);
		else {
			v = common_read(vd, off);
			memcpy(data, &v, len < 4 ? len : 4);
		}
	} else if (!write) {
		memset(data, 0, len);
	}
}

static void add_vendor_cap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len)
{
	struct virtio_pci_notify_cap c = {
		.cap = { .cap_vndr = PCI_CAP_ID_VNDR, .cfg_type = type, .bar = 0,
			 .offset = off, .length = len },
		.notify_off_multiplier = NOTIFY_MULT,
	};
	unsigned int size = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? sizeof(c) : sizeof(c.cap);

	c.cap.cap_len = size;
	pci_add_cap(d, &c, size);
}

/**
 * virtio_pci_add() - a virtio device on the PCI bus
 * @name: for messages, e.g. "virtio-blk"
 * @type: virtio device id (5)
 * @class: PCI class code
 * @nqueues: number of virtqueues
 * @features: device feature bits; VIRTIO_F_VERSION_1 is added
 * @config: the device-specific configuration, kept up to date by the caller
 * @config_len: its size
 * @ops: the device's callbacks
 * @priv: the device's own state
 *
 * Return: the device.
 */
struct virtio_dev *virtio_pci_add(const char *name, int type, uint32_t class, int nqueues,
				  uint64_t features, void *config, unsigned int config_len,
				  const struct virtio_ops *ops, void *priv)
{
	struct virtio_dev *vd = calloc(1, sizeof(*vd));
	uint8_t msix[12] = { PCI_CAP_ID_MSIX };
	uint16_t ctrl;
	uint32_t table = OFF_MSIX_TABLE, pba = OFF_MSIX_PBA;

	if (!vd)
		vmm_die("out of memory");
	vd->name = name;
	vd->ops = ops;
	vd->priv = priv;
	vd->nqueues = nqueues;
	vd->features = features | 1ULL << VIRTIO_F_VERSION_1;
	vd->config = config;
	vd->config_len = config_len;
	vd->nvectors = nqueues + 1;
	/* Revision 1: a modern-only device (4.1.2.1). No INTx: MSI-X only. */
	vd->pci = pci_add(PCI_VENDOR_VIRTIO, PCI_DEVICE_VIRTIO_BASE + type, class, 1);
	vd->pci->owner = vd;
	vd->pci->bar_moved = bar_moved;
	vd->pci->config_written = msix_config_written;
	add_vendor_cap(vd->pci, VIRTIO_PCI_CAP_COMMON_CFG, OFF_COMMON, VIRTIO_PCI_COMMON_Q_NDATA);
	add_vendor_cap(vd->pci, VIRTIO_PCI_CAP_ISR_CFG, OFF_ISR, 4);
	if (config_len)		/* a zero-length capability is refused (4.1.4.6) */
		add_vendor_cap(vd->pci, VIRTIO_PCI_CAP_DEVICE_CFG, OFF_DEVICE, config_len);
	add_vendor_cap(vd->pci, VIRTIO_PCI_CAP_NOTIFY_CFG, OFF_NOTIFY, nqueues * NOTIFY_MULT);
	ctrl = vd->nvectors - 1;
	memcpy(msix + 2, &ctrl, 2);
	memcpy(msix + 4, &table, 4);
	memcpy(msix + 8, &pba, 4);
	vd->msix_cap = pci_add_cap(vd->pci, msix, sizeof(msix));
	/* Only MSI-X enable and function mask are writable in Message Control. */
	vd->pci->wmask[vd->msix_cap + PCI_MSIX_FLAGS + 1] =
		(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8;
	pci_set_bar0(vd->pci, BAR_SIZE, bar_access);
	for (int v = 0; v < vd->nvectors; v++) {
		vd->msix[v].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
		vd->gsi[v] = irq_alloc_msi(&vd->irqfd[v]);
	}
	for (int q = 0; q < nqueues; q++) {
		vd->vq[q].notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vd->vq[q].notify_fd < 0)
			vmm_die("eventfd: %s", strerror(errno));
		iothread_add_fd(vd->vq[q].notify_fd, notify_ready, &vd->vq[q]);
	}
	reset(vd);
	return vd;
}
