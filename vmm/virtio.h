/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virtio 1.x devices over the modern PCI transport (virtio spec 1.2, 4.1)
 * with split virtqueues (2.7).
 */
#ifndef MINIKVM_VMM_VIRTIO_H
#define MINIKVM_VMM_VIRTIO_H

#include <sys/uio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "pci.h"

#define VIRTIO_MAX_QUEUES	4
#define VIRTIO_QUEUE_MAX	256	/* the largest ring we offer */
#define VIRTIO_NO_VECTOR	0xffff

struct virtqueue {
	uint16_t size;
	uint16_t msix_vector;
	bool enabled;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;	/* host views, valid while enabled */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;
	uint16_t used_idx;		/* the next used-ring slot, kept here, not in the guest */
	int notify_fd;			/* the ioeventfd behind this queue's notify address */
	bool notify_registered;		/* ...registered with KVM at the BAR's address */
	struct virtio_dev *vd;		/* back pointers, for the I/O thread */
	int index;
};

/* One popped descriptor chain: device-readable buffers first, then writable ones. */
struct vq_elem {
	uint16_t head;
	int nout, nin;
	struct iovec out[VIRTIO_QUEUE_MAX];	/* the driver's data, for the device to read */
	struct iovec in[VIRTIO_QUEUE_MAX];	/* for the device to fill */
};

struct virtio_dev;

struct virtio_ops {
	/* The driver made buffers available on queue @q (dev_lock held). */
	void (*notify)(struct virtio_dev *vd, int q);
	/* The driver reset the device (dev_lock held); optional. */
	void (*reset)(struct virtio_dev *vd);
};

struct virtio_dev {
	struct pci_dev *pci;
	const char *name;
	const struct virtio_ops *ops;
	void *priv;
	uint64_t features, driver_features;
	uint32_t dfselect, gfselect;
	uint8_t status, isr;
	uint16_t msix_config, queue_select;
	int nqueues;
	struct virtqueue vq[VIRTIO_MAX_QUEUES];
	void *config;			/* device-specific configuration, little endian */
	unsigned int config_len;
	/* MSI-X: one vector per queue plus one for configuration changes. */
	unsigned int msix_cap;
	int nvectors;
	struct { uint32_t addr_lo, addr_hi, data, ctrl; } msix[VIRTIO_MAX_QUEUES + 1];
	uint32_t msix_pending;
	int gsi[VIRTIO_MAX_QUEUES + 1], irqfd[VIRTIO_MAX_QUEUES + 1];
};

struct virtio_dev *virtio_pci_add(const char *name, int type, uint32_t class, int nqueues,
				  uint64_t features, void *config, unsigned int config_len,
				  const struct virtio_ops *ops, void *priv);
void virtio_interrupt(struct virtio_dev *vd, int q);
bool virtio_running(struct virtio_dev *vd);
void virtio_needs_reset(struct virtio_dev *vd);

int vq_pop(struct virtio_dev *vd, int q, struct vq_elem *e);
void vq_push(struct virtio_dev *vd, int q, const struct vq_elem *e, uint32_t len);
size_t iov_copy_to(const struct iovec *iov, int n, const void *buf, size_t len);
size_t iov_copy_from(const struct iovec *iov, int n, void *buf, size_t len);
size_t iov_size(const struct iovec *iov, int n);

/* The devices. */
void virtio_blk_add(const char *spec);
void virtio_rng_add(void);
void virtio_console_add(void);
void virtio_net_add(const char *spec);

#endif
