// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_IOEVENTFD: a guest write to a chosen port or MMIO address signals an
 * eventfd in the kernel instead of exiting to userspace (api.rst 4.59).
 *
 * A registration matches a write at exactly its address: with length 0 of
 * any size and value, otherwise of its size and, with DATAMATCH, only of
 * its value.  The checks, their order and the errnos are KVM's.  The list is
 * read under RCU by vCPUs handling an exit and changed under a mutex.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/rculist.h>
#include <linux/slab.h>

#include <minikvm/core.h>

/* Which address space a registration is on; the CCW bus is s390's, never written on x86. */
enum ioeventfd_bus { BUS_MMIO, BUS_PIO, BUS_VIRTIO_CCW };

struct mkvm_ioeventfd {
	struct list_head list;
	struct rcu_head rcu;
	enum ioeventfd_bus bus;
	u64 addr;
	u32 len;			/* 0: any access at addr */
	bool wildcard;			/* no DATAMATCH: any value */
	u64 datamatch;
	struct eventfd_ctx *eventfd;
};

static enum ioeventfd_bus bus_of(u32 flags)
{
	if (flags & KVM_IOEVENTFD_FLAG_PIO)
		return BUS_PIO;
	if (flags & KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY)
		return BUS_VIRTIO_CCW;
	return BUS_MMIO;
}

/**
 * mkvm_ioeventfd_init() - a new VM has no ioeventfds
 * @vm: the VM
 */
void mkvm_ioeventfd_init(struct mkvm_vm *vm)
{
	INIT_LIST_HEAD(&vm->ioeventfds);
	mutex_init(&vm->ioeventfds_lock);
}

static void free_ioeventfd(struct mkvm_ioeventfd *p)
{
	eventfd_ctx_put(p->eventfd);
	kfree(p);
}

/**
 * mkvm_ioeventfd_destroy() - drop every ioeventfd of a dying VM
 * @vm: the VM, with no vCPU left to look at the list
 */
void mkvm_ioeventfd_destroy(struct mkvm_vm *vm)
{
	struct mkvm_ioeventfd *p, *tmp;

	list_for_each_entry_safe(p, tmp, &vm->ioeventfds, list)
		free_ioeventfd(p);
}

/* Two registrations that a single write could both match may not coexist. */
static bool collides(struct mkvm_vm *vm, const struct mkvm_ioeventfd *n)
{
	struct mkvm_ioeventfd *p;

	list_for_each_entry(p, &vm->ioeventfds, list)
		if (p->bus == n->bus && p->addr == n->addr &&
		    (!p->len || !n->len ||
		     (p->len == n->len &&
		      (p->wildcard || n->wildcard || p->datamatch == n->datamatch))))
			return true;
	return false;
}

static int assign(struct mkvm_vm *vm, const struct kvm_ioeventfd *args)
{
	struct mkvm_ioeventfd *p;
	struct eventfd_ctx *ctx;
	int r;

	switch (args->len) {
	case 0: case 1: case 2: case 4: case 8:
		break;
	default:
		return -EINVAL;
	}
	if (args->addr + args->len < args->addr)
		return -EINVAL;
	if (args->flags & ~KVM_IOEVENTFD_VALID_FLAG_MASK)
		return -EINVAL;
	/* "Any length" cannot compare a value. */
	if (!args->len && (args->flags & KVM_IOEVENTFD_FLAG_DATAMATCH))
		return -EINVAL;

	ctx = eventfd_ctx_fdget(args->fd);
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	p = kzalloc(sizeof(*p), GFP_KERNEL_ACCOUNT);
	if (!p) {
		eventfd_ctx_put(ctx);
		return -ENOMEM;
	}
	p->bus = bus_of(args->flags);
	p->addr = args->addr;
	p->len = args->len;
	p->eventfd = ctx;
	p->wildcard = !(args->flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
	if (!p->wildcard)
		p->datamatch = args->datamatch;

	mutex_lock(&vm->ioeventfds_lock);
	r = -EEXIST;
	if (!collides(vm, p)) {
		list_add_tail_rcu(&p->list, &vm->ioeventfds);
		r = 0;
	}
	mutex_unlock(&vm->ioeventfds_lock);
	if (r)
		free_ioeventfd(p);
	return r;
}

/* KVM checks neither the length nor the flags here: only an exact match is removed. */
static int deassign(struct mkvm_vm *vm, const struct kvm_ioeventfd *args)
{
	bool wildcard = !(args->flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
	enum ioeventfd_bus bus = bus_of(args->flags);
	struct mkvm_ioeventfd *p, *found = NULL;
	struct eventfd_ctx *ctx;

	ctx = eventfd_ctx_fdget(args->fd);
	if (IS_ERR(ctx))
		return PTR_ERR(ctx);
	mutex_lock(&vm->ioeventfds_lock);
	list_for_each_entry(p, &vm->ioeventfds, list) {
		if (p->bus == bus && p->eventfd == ctx && p->addr == args->addr &&
		    p->len == args->len && p->wildcard == wildcard &&
		    (wildcard || p->datamatch == args->datamatch)) {
			list_del_rcu(&p->list);
			found = p;
			break;
		}
	}
	mutex_unlock(&vm->ioeventfds_lock);
	eventfd_ctx_put(ctx);
	if (!found)
		return -ENOENT;
	/* A vCPU may be signalling it right now. */
	synchronize_rcu();
	free_ioeventfd(found);
	return 0;
}

/**
 * mkvm_ioeventfd() - KVM_IOEVENTFD
 * @vm: the VM
 * @args: the request, copied from userspace
 *
 * Return: 0; -EINVAL for a bad length, flags, an address range that wraps,
 * or DATAMATCH with length 0, or for an fd that is no eventfd; -EBADF;
 * -EEXIST when a write could match an existing registration too; -ENOENT
 * for deassigning what is not registered; -ENOMEM.
 */
int mkvm_ioeventfd(struct mkvm_vm *vm, const struct kvm_ioeventfd *args)
{
	if (args->flags & KVM_IOEVENTFD_FLAG_DEASSIGN)
		return deassign(vm, args);
	return assign(vm, args);
}

static bool matches(const struct mkvm_ioeventfd *p, unsigned int len, const void *val)
{
	u64 v = 0;

	if (!p->len)
		return true;
	if (len != p->len)
		return false;
	if (p->wildcard)
		return true;
	memcpy(&v, val, len);	/* little-endian, as the guest wrote it */
	return v == p->datamatch;
}

/**
 * mkvm_ioeventfd_write() - hand a guest write to a matching ioeventfd
 * @vm: the VM
 * @pio: a port write (OUT, OUTS) rather than an MMIO write
 * @addr: port or guest-physical address
 * @len: bytes written
 * @val: the data
 *
 * Return: true when an eventfd was signalled and the write is complete;
 * false when userspace must see it.
 */
bool mkvm_ioeventfd_write(struct mkvm_vm *vm, bool pio, u64 addr, unsigned int len,
			  const void *val)
{
	enum ioeventfd_bus bus = pio ? BUS_PIO : BUS_MMIO;
	struct mkvm_ioeventfd *p;
	bool hit = false;

	rcu_read_lock();
	list_for_each_entry_rcu(p, &vm->ioeventfds, list) {
		if (p->bus == bus && p->addr == addr && matches(p, len, val)) {
			eventfd_signal(p->eventfd, 1);
			hit = true;
			break;
		}
	}
	rcu_read_unlock();
	return hit;
}
