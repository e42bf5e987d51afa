// SPDX-License-Identifier: GPL-2.0
/*
 * Split virtqueues (virtio spec 1.2, 2.7): take descriptor chains from the
 * available ring, give them back on the used ring. Every guest address is
 * checked against RAM; a malformed chain marks the device NEEDS_RESET
 * (2.1.2) instead of touching anything outside the guest.
 */
#include <string.h>

#include "virtio.h"

static void broken(struct virtio_dev *vd, const char *why)
{
	if (!(vd->status & VIRTIO_CONFIG_S_NEEDS_RESET))
		fprintf(stderr, "minikvm: %s: the driver gave a bad descriptor chain (%s)\n",
			vd->name, why);
	virtio_needs_reset(vd);
}

/**
 * vq_pop() - take the next available descriptor chain
 * @vd: the device
 * @q: queue index
 * @e: filled with the chain's buffers, mapped into the VMM
 *
 * Return: 1 with a chain, 0 when the ring is empty or the queue cannot be used.
 */
int vq_pop(struct virtio_dev *vd, int q, struct vq_elem *e)
{
	struct virtqueue *vq = &vd->vq[q];
	struct vring_desc d;
	uint16_t avail_idx, i;
	int steps = 0;

	if (!virtio_running(vd) || !vq->enabled)
		return 0;
	avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size) {
		broken(vd, "available index ran ahead");
		return 0;
	}
	e->head = __atomic_load_n(&vq->avail->ring[vq->last_avail % vq->size], __ATOMIC_RELAXED);
	e->nout = e->nin = 0;
	for (i = e->head;; i = d.next) {
		void *p;

		if (i >= vq->size || ++steps > vq->size) {
			broken(vd, i >= vq->size ? "index out of range" : "loop");
			return 0;
		}
		/*
		 * One copy, read once: another vCPU may rewrite the descriptor,
		 * and what was checked must be what is used.
		 */
		d.addr = __atomic_load_n(&vq->desc[i].addr, __ATOMIC_RELAXED);
		d.len = __atomic_load_n(&vq->desc[i].len, __ATOMIC_RELAXED);
		d.flags = __atomic_load_n(&vq->desc[i].flags, __ATOMIC_RELAXED);
		d.next = __atomic_load_n(&vq->desc[i].next, __ATOMIC_RELAXED);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			broken(vd, "indirect descriptor, which was not offered");
			return 0;
		}
		p = gpa_to_hva(d.addr, d.len);
		if (!p) {
			broken(vd, "buffer outside RAM");
			return 0;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			e->in[e->nin++] = (struct iovec){ p, d.len };
		} else if (e->nin) {
			broken(vd, "readable buffer after a writable one");
			return 0;
		} else {
			e->out[e->nout++] = (struct iovec){ p, d.len };
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
	}
	vq->last_avail++;
	return 1;
}

/**
 * vq_push() - return a chain on the used ring
 * @vd: the device
 * @q: queue index
 * @e: the chain from vq_pop()
 * @len: how many bytes the device wrote into its writable buffers
 *
 * The caller raises the interrupt with virtio_interrupt() once it is done
 * with a batch.
 */
void vq_push(struct virtio_dev *vd, int q, const struct vq_elem *e, uint32_t len)
{
	struct virtqueue *vq = &vd->vq[q];
	/* Our own copy of the index: the guest could rewrite the ring's. */
	uint16_t idx = vq->used_idx++;

	vq->used->ring[idx % vq->size].id = e->head;
	vq->used->ring[idx % vq->size].len = len;
	/* The element must be visible before the index that publishes it (2.7.8). */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

/**
 * iov_copy_to() - copy into a list of buffers
 * @iov: the buffers
 * @n: how many
 * @buf: source
 * @len: bytes to copy
 *
 * Return: bytes copied, less than @len if the buffers are shorter.
 */
size_t iov_copy_to(const struct iovec *iov, int n, const void *buf, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy(iov[i].iov_base, (const uint8_t *)buf + done, c);
		done += c;
	}
	return done;
}

/**
 * iov_copy_from() - copy out of a list of buffers
 * @iov: the buffers
 * @n: how many
 * @buf: destination
 * @len: bytes to copy
 *
 * Return: bytes copied, less than @len if the buffers are shorter.
 */
size_t iov_copy_from(const struct iovec *iov, int n, void *buf, size_t len)
{
	size_t done = 0;

	for (int i = 0; i < n && done < len; i++) {
		size_t c = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		memcpy((uint8_t *)buf + done, iov[i].iov_base, c);
		done += c;
	}
	return done;
}

/**
 * iov_size() - total length of a list of buffers
 * @iov: the buffers
 * @n: how many
 *
 * Return: the sum of their lengths.
 */
size_t iov_size(const struct iovec *iov, int n)
{
	size_t s = 0;

	for (int i = 0; i < n; i++)
		s += iov[i].iov_len;
	return s;
}
