// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-blk (virtio spec 1.2, 5.2) on a raw image file: read, write,
 * flush, get-id, and read-only disks. The image is locked so that two
 * VMMs cannot write the same file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "virtio.h"

#define SECTOR 512

struct blk {
	int fd;
	bool ro;
	uint64_t sectors;
	char id[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;
};

/* Read or write the data buffers at @sector; false on an I/O error or past the end. */
static bool transfer(struct blk *b, const struct iovec *iov, int n, uint64_t sector, bool write)
{
	struct iovec v[VIRTIO_QUEUE_MAX];
	size_t len = iov_size(iov, n);
	off_t pos = sector * SECTOR;
	struct iovec *p = v;

	if (sector > b->sectors || len > (b->sectors - sector) * SECTOR)
		return false;
	if (!len)
		return true;
	memcpy(v, iov, n * sizeof(*iov));
	while (n > 0) {
		ssize_t r = write ? pwritev(b->fd, p, n, pos) : preadv(b->fd, p, n, pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		/* A short transfer: go on after what was done. */
		pos += r;
		while (n > 0 && (size_t)r >= p->iov_len) {
			r -= p->iov_len;
			p++;
			n--;
		}
		if (n > 0) {
			p->iov_base = (uint8_t *)p->iov_base + r;
			p->iov_len -= r;
		}
	}
	return true;
}

/* One request (5.2.6): a header the device reads, data, and a status byte it writes. */
static uint32_t request(struct blk *b, struct vq_elem *e)
{
	struct virtio_blk_outhdr hdr;
	struct iovec *data_in = e->in;
	uint8_t status = VIRTIO_BLK_S_OK;
	uint8_t *status_p;
	uint32_t written = 0;
	int nin = e->nin - 1;

	if (e->nin < 1 || e->in[e->nin - 1].iov_len < 1 ||
	    iov_copy_from(e->out, e->nout, &hdr, sizeof(hdr)) != sizeof(hdr))
		return 0;	/* no room for a status: nothing to report it with */
	status_p = (uint8_t *)e->in[nin].iov_base + e->in[nin].iov_len - 1;
	if (e->in[nin].iov_len > 1) {	/* the status byte shares the last buffer */
		e->in[nin].iov_len--;
		nin++;
	}
	switch (hdr.type) {
	case VIRTIO_BLK_T_IN:
		if (!transfer(b, data_in, nin, hdr.sector, false))
			status = VIRTIO_BLK_S_IOERR;
		else
			written = iov_size(data_in, nin);
		break;
	case VIRTIO_BLK_T_OUT: {
		/* The data follow the header in the readable buffers. */
		struct iovec out[VIRTIO_QUEUE_MAX];
		int n = 0;
		size_t skip = sizeof(hdr);

		for (int i = 0; i < e->nout; i++) {
			if (e->out[i].iov_len <= skip) {
				skip -= e->out[i].iov_len;
				continue;
			}
			out[n++] = (struct iovec){ (uint8_t *)e->out[i].iov_base + skip,
						   e->out[i].iov_len - skip };
			skip = 0;
		}
		if (b->ro || !transfer(b, out, n, hdr.sector, true))
			status = VIRTIO_BLK_S_IOERR;
		break;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (fdatasync(b->fd))
			status = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_GET_ID:
		written = iov_copy_to(data_in, nin, b->id, sizeof(b->id));
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
	}
	*status_p = status;
	return written + 1;
}

static void blk_notify(struct virtio_dev *vd, int q)
{
	struct blk *b = vd->priv;
	struct vq_elem e;
	bool any = false;

	while (vq_pop(vd, q, &e)) {
		vq_push(vd, q, &e, request(b, &e));
		any = true;
	}
	if (any)
		virtio_interrupt(vd, q);
}

static const struct virtio_ops blk_ops = { .notify = blk_notify };

/**
 * virtio_blk_add() - a disk from "--disk FILE[,ro]"
 * @spec: the option's argument
 */
void virtio_blk_add(const char *spec)
{
	struct blk *b = calloc(1, sizeof(*b));
	char *path = strdup(spec), *comma = strchr(path, ',');
	uint64_t features = 1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_SEG_MAX;
	static int ndisks;
	struct stat st;

	if (!b || !path)
		vmm_die("out of memory");
	if (comma) {
		*comma = 0;
		if (strcmp(comma + 1, "ro"))
			vmm_die("--disk %s: unknown option '%s' (only 'ro')", spec, comma + 1);
		b->ro = true;
	}
	b->fd = open(path, (b->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		vmm_die("cannot open disk image '%s': %s", path, strerror(errno));
	if (fstat(b->fd, &st) || !S_ISREG(st.st_mode))
		vmm_die("disk image '%s' is not a regular file", path);
	if (flock(b->fd, (b->ro ? LOCK_SH : LOCK_EX) | LOCK_NB))
		vmm_die("disk image '%s' is in use by another process", path);
	b->sectors = st.st_size / SECTOR;
	b->config.capacity = b->sectors;
	b->config.seg_max = VIRTIO_QUEUE_MAX - 2;
	snprintf(b->id, sizeof(b->id), "minikvm-disk%d", ndisks++);
	if (b->ro)
		features |= 1ULL << VIRTIO_BLK_F_RO;
	virtio_pci_add("virtio-blk", VIRTIO_ID_BLOCK, 0x018000, 1, features, &b->config,
		       sizeof(b->config), &blk_ops, b);
	free(path);
}
