// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-rng (virtio spec 1.2, 5.4): the host's getrandom() into every
 * buffer the driver offers.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <linux/virtio_ids.h>

#include "virtio.h"

static void rng_notify(struct virtio_dev *vd, int q)
{
	struct vq_elem e;
	bool any = false;

	while (vq_pop(vd, q, &e)) {
		uint32_t done = 0;

		for (int i = 0; i < e.nin; i++) {
			ssize_t r = getrandom(e.in[i].iov_base, e.in[i].iov_len, 0);

			if (r < 0) {
				fprintf(stderr, "minikvm: virtio-rng: getrandom: %s\n",
					strerror(errno));
				break;
			}
			done += r;
			if ((size_t)r < e.in[i].iov_len)
				break;
		}
		vq_push(vd, q, &e, done);
		any = true;
	}
	if (any)
		virtio_interrupt(vd, q);
}

static const struct virtio_ops rng_ops = { .notify = rng_notify };

/**
 * virtio_rng_add() - an entropy source
 */
void virtio_rng_add(void)
{
	static uint8_t no_config;

	virtio_pci_add("virtio-rng", VIRTIO_ID_RNG, 0x00ff00, 1, 0, &no_config, 0, &rng_ops,
		       NULL);
}
