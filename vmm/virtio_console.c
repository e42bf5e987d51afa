// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-console (virtio spec 1.2, 5.3) with one port and no features: the
 * guest's hvc0. Transmitted bytes go to the terminal; typed ones wait in a
 * small buffer for the driver's receive buffers.
 */
#include <string.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "virtio.h"

#define RX_QUEUE	0
#define TX_QUEUE	1

static struct virtio_dev *console;
static uint8_t pending[4096];
static size_t npending;

static void deliver(struct virtio_dev *vd)
{
	struct vq_elem e;
	bool any = false;

	while (npending && vq_pop(vd, RX_QUEUE, &e)) {
		size_t n = iov_copy_to(e.in, e.nin, pending, npending);

		memmove(pending, pending + n, npending - n);
		npending -= n;
		vq_push(vd, RX_QUEUE, &e, n);
		any = true;
	}
	if (any)
		virtio_interrupt(vd, RX_QUEUE);
}

static void console_notify(struct virtio_dev *vd, int q)
{
	struct vq_elem e;
	bool any = false;

	if (q == RX_QUEUE) {
		deliver(vd);
		return;
	}
	while (vq_pop(vd, TX_QUEUE, &e)) {
		for (int i = 0; i < e.nout; i++)
			term_write(e.out[i].iov_base, e.out[i].iov_len);
		vq_push(vd, TX_QUEUE, &e, 0);
		any = true;
	}
	if (any)
		virtio_interrupt(vd, TX_QUEUE);
}

static void console_reset(struct virtio_dev *vd)
{
	(void)vd;
	npending = 0;
}

/* Typed input (dev_lock held); what does not fit is dropped, like a UART overrun. */
static void console_input(const uint8_t *buf, size_t len)
{
	if (len > sizeof(pending) - npending)
		len = sizeof(pending) - npending;
	memcpy(pending + npending, buf, len);
	npending += len;
	deliver(console);
}

static const struct virtio_ops console_ops = {
	.notify = console_notify,
	.reset = console_reset,
};

/**
 * virtio_console_add() - the virtio console, connected to the terminal
 */
void virtio_console_add(void)
{
	static struct virtio_console_config config;

	console = virtio_pci_add("virtio-console", VIRTIO_ID_CONSOLE, 0x078000, 2, 0, &config,
				 sizeof(config), &console_ops, NULL);
	stdin_set_sink(console_input);
}
