// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-net (virtio spec 1.2, 5.1) on a Linux tap device: one receive and
 * one transmit queue, a MAC address, no offloads. The tap speaks the same
 * 12-byte virtio_net_hdr_v1 as the driver (IFF_VNET_HDR), so frames pass
 * through unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>

#include "virtio.h"

#define RX_QUEUE	0
#define TX_QUEUE	1

struct net {
	int tap;
	bool dead;			/* the tap failed: frames are dropped */
	struct virtio_dev *vd;
	struct virtio_net_config config;
};

/* The tap went away (deleted with ip link del, say): the card stays, unplugged. */
static void tap_failed(struct net *n, int err)
{
	if (n->dead)
		return;
	fprintf(stderr, "minikvm: virtio-net: the tap device failed (%s); the card is now "
		"unplugged\n", strerror(err));
	n->dead = true;
	iothread_remove_fd(n->tap);
}

/* Move frames from the tap into receive buffers while both have some. */
static void receive(struct net *n)
{
	struct virtio_net_hdr_v1 *hdr;
	struct vq_elem e;
	bool any = false;

	while (!n->dead) {
		ssize_t r;

		if (!vq_pop(n->vd, RX_QUEUE, &e)) {
			/* No buffers: stop watching the tap until the driver adds some. */
			iothread_watch(n->tap, false);
			break;
		}
		if (e.nin < 1 || e.in[0].iov_len < sizeof(*hdr)) {
			vq_push(n->vd, RX_QUEUE, &e, 0);
			any = true;
			continue;
		}
		r = readv(n->tap, e.in, e.nin);
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			tap_failed(n, errno);
		if (r < (ssize_t)sizeof(*hdr)) {
			/* Nothing to read: give the chain back to the ring, unused. */
			n->vd->vq[RX_QUEUE].last_avail--;
			break;
		}
		/* The tap says how long the frame was, even when it was cut to the buffers. */
		if ((size_t)r > iov_size(e.in, e.nin)) {
			vq_push(n->vd, RX_QUEUE, &e, 0);
			any = true;
			continue;
		}
		hdr = e.in[0].iov_base;
		hdr->num_buffers = 1;	/* the tap leaves this field alone */
		vq_push(n->vd, RX_QUEUE, &e, r);
		any = true;
	}
	if (any)
		virtio_interrupt(n->vd, RX_QUEUE);
}

static void transmit(struct net *n)
{
	struct vq_elem e;
	bool any = false;

	while (vq_pop(n->vd, TX_QUEUE, &e)) {
		struct virtio_net_hdr_v1 *hdr = e.out[0].iov_base;

		/*
		 * No offloads were offered: a header asking for checksum or GSO
		 * work is refused rather than handed to the host's stack.
		 */
		if (e.nout < 1 || e.out[0].iov_len < sizeof(*hdr) ||
		    hdr->flags || hdr->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
			vq_push(n->vd, TX_QUEUE, &e, 0);
			any = true;
			continue;
		}
		/* A full tap queue drops the frame, as a busy wire would. */
		if (writev(n->tap, e.out, e.nout) < 0 && errno != EAGAIN && errno != ENOBUFS)
			tap_failed(n, errno);
		vq_push(n->vd, TX_QUEUE, &e, 0);
		any = true;
	}
	if (any)
		virtio_interrupt(n->vd, TX_QUEUE);
}

static void net_notify(struct virtio_dev *vd, int q)
{
	struct net *n = vd->priv;

	if (q == TX_QUEUE) {
		transmit(n);
	} else if (!n->dead) {
		iothread_watch(n->tap, true);
		receive(n);
	}
}

static void tap_ready(void *opaque, bool error)
{
	struct net *n = opaque;

	pthread_mutex_lock(&dev_lock);
	if (error)
		tap_failed(n, EIO);
	else if (virtio_running(n->vd))
		receive(n);
	else
		iothread_watch(n->tap, false);
	pthread_mutex_unlock(&dev_lock);
}

static const struct virtio_ops net_ops = { .notify = net_notify };

/*
 * TUNSETIFF refused: say why. Making a tap needs CAP_NET_ADMIN; attaching
 * to an existing one needs it only when the tap was made for another user
 * or group (ip tuntap's "user" and "group").
 */
static void __attribute__((noreturn)) tap_refused(const char *name, int err)
{
	unsigned int uid = getuid();

	if (err == EPERM && !if_nametoindex(name))
		vmm_die("there is no tap device '%s', and making one needs CAP_NET_ADMIN: as root, "
			"'ip tuntap add %s mode tap user %u' makes one this user may attach to",
			name, name, uid);
	if (err == EPERM)
		vmm_die("cannot attach to tap device '%s': it was made for another user or group, "
			"and this process lacks CAP_NET_ADMIN (as root, 'ip tuntap add NAME mode tap "
			"user %u' makes a tap for this user)", name, uid);
	if (err == EBUSY)
		vmm_die("tap device '%s' is in use by another process", name);
	if (err == EINVAL)
		vmm_die("cannot attach to '%s': it is not a tap device, or a multiqueue one", name);
	vmm_die("cannot attach to tap device '%s': %s", name, strerror(err));
}

static int open_tap(const char *name)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC), hdr = 12;

	if (fd < 0 && errno == ENOENT)
		vmm_die("no /dev/net/tun for --net tap:%s (modprobe tun)", name);
	if (fd < 0 && errno == EACCES)
		vmm_die("no permission to open /dev/net/tun for --net tap:%s (most systems make it "
			"mode 0666)", name);
	if (fd < 0)
		vmm_die("cannot open /dev/net/tun: %s", strerror(errno));
	if (strlen(name) >= IFNAMSIZ)
		vmm_die("tap name '%s' is too long", name);
	strcpy(ifr.ifr_name, name);
	if (ioctl(fd, TUNSETIFF, &ifr))
		tap_refused(name, errno);
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr))
		vmm_die("tap device '%s': TUNSETVNETHDRSZ: %s", name, strerror(errno));
	return fd;
}

/**
 * virtio_net_add() - a network card from "--net tap:NAME"
 * @spec: the option's argument
 */
void virtio_net_add(const char *spec)
{
	struct net *n = calloc(1, sizeof(*n));
	static int nnics;

	if (!n)
		vmm_die("out of memory");
	if (strncmp(spec, "tap:", 4) || !spec[4])
		vmm_die("--net %s: only tap:NAME is supported", spec);
	n->tap = open_tap(spec + 4);
	/* A locally administered address: 52:54:00 as QEMU and kvmtool use, then our own. */
	memcpy(n->config.mac, (uint8_t[]){ 0x52, 0x54, 0x00, 0x4d, 0x4b, nnics++ }, 6);
	n->vd = virtio_pci_add("virtio-net", VIRTIO_ID_NET, 0x020000, 2, 1ULL << VIRTIO_NET_F_MAC,
			       &n->config, sizeof(n->config), &net_ops, n);
	iothread_add_fd(n->tap, tap_ready, n);
	iothread_watch(n->tap, false);
}
