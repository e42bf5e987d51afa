// SPDX-License-Identifier: GPL-2.0
/*
 * Coalesced MMIO and PIO (KVM_CAP_COALESCED_MMIO, KVM_CAP_COALESCED_PIO):
 * guest writes into a zone that userspace registered do not exit; they are
 * appended to a ring that the VMM maps at page KVM_COALESCED_MMIO_PAGE_OFFSET
 * of any vCPU fd and drains at its next exit, in order.  Device registers
 * whose writes have no immediate effect (a framebuffer, an RTC index port)
 * then cost no exit each.
 *
 * The ring page is shared with userspace, which may write anything into it:
 * minikvm owns "last" and userspace "first", and both are read once and
 * checked before use.  A full ring makes the write exit as usual.
 */
#include <linux/gfp.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include <minikvm/core.h>

/* Zones per VM: KVM's limit is its I/O bus size, shared with ioeventfds. */
#define MAX_ZONES 1000

struct coalesced_zone {
	struct list_head list;
	struct kvm_coalesced_mmio_zone zone;
};

/**
 * mkvm_coalesced_init() - a new VM's empty ring and zone list
 * @vm: the VM
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_coalesced_init(struct mkvm_vm *vm)
{
	INIT_LIST_HEAD(&vm->coalesced_zones);
	spin_lock_init(&vm->coalesced_lock);
	vm->coalesced_ring = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	return vm->coalesced_ring ? 0 : -ENOMEM;
}

/**
 * mkvm_coalesced_destroy() - free the zones and the ring of a dying VM
 * @vm: the VM, with no vCPU left and no mapping of the ring (each holds a page reference)
 */
void mkvm_coalesced_destroy(struct mkvm_vm *vm)
{
	struct coalesced_zone *z, *tmp;

	list_for_each_entry_safe(z, tmp, &vm->coalesced_zones, list)
		kfree(z);
	free_page((unsigned long)vm->coalesced_ring);
}

/* Whether [addr, addr + len) lies inside the zone; a range that wraps never does. */
static bool in_zone(const struct kvm_coalesced_mmio_zone *z, u64 addr, u64 len)
{
	return addr + len >= addr && addr >= z->addr && addr + len <= z->addr + z->size;
}

/**
 * mkvm_coalesced_ioctl() - KVM_REGISTER_COALESCED_MMIO and KVM_UNREGISTER_COALESCED_MMIO
 * @vm: the VM
 * @reg: register rather than unregister
 * @zone: the user's zone
 *
 * As in KVM, any address and size may be registered, also overlapping ones;
 * unregistering removes every zone of that kind that contains the range.
 *
 * Return: 0; -EINVAL when pio is neither 0 nor 1; -ENOSPC with 1000 zones;
 * -ENOMEM.
 */
int mkvm_coalesced_ioctl(struct mkvm_vm *vm, bool reg, const struct kvm_coalesced_mmio_zone *zone)
{
	struct coalesced_zone *z, *tmp;
	LIST_HEAD(dead);

	if (zone->pio > 1)
		return -EINVAL;
	if (reg) {
		z = kzalloc(sizeof(*z), GFP_KERNEL_ACCOUNT);
		if (!z)
			return -ENOMEM;
		z->zone = *zone;
		spin_lock(&vm->coalesced_lock);
		if (vm->nr_coalesced_zones >= MAX_ZONES) {
			spin_unlock(&vm->coalesced_lock);
			kfree(z);
			return -ENOSPC;
		}
		list_add_tail(&z->list, &vm->coalesced_zones);
		vm->nr_coalesced_zones++;
		spin_unlock(&vm->coalesced_lock);
		return 0;
	}
	spin_lock(&vm->coalesced_lock);
	list_for_each_entry_safe(z, tmp, &vm->coalesced_zones, list) {
		if (z->zone.pio == zone->pio && in_zone(&z->zone, zone->addr, zone->size)) {
			list_move(&z->list, &dead);
			vm->nr_coalesced_zones--;
		}
	}
	spin_unlock(&vm->coalesced_lock);
	list_for_each_entry_safe(z, tmp, &dead, list)
		kfree(z);
	return 0;
}

/**
 * mkvm_coalesced_write() - append a guest write to the ring if a zone takes it
 * @vm: the VM
 * @pio: a port write rather than MMIO
 * @addr: the port or guest-physical address
 * @len: 1 to 8 bytes
 * @data: the value, little-endian
 *
 * Return: true when the write is in the ring (no exit); false when no zone
 * covers it or the ring is full, so that it exits to userspace.
 */
bool mkvm_coalesced_write(struct mkvm_vm *vm, bool pio, u64 addr, unsigned int len,
			  const void *data)
{
	struct kvm_coalesced_mmio_ring *ring = vm->coalesced_ring;
	struct kvm_coalesced_mmio *e;
	struct coalesced_zone *z;
	bool done = false;
	u32 last, first;

	if (likely(list_empty_careful(&vm->coalesced_zones)) || len > sizeof(e->data))
		return false;
	spin_lock(&vm->coalesced_lock);
	list_for_each_entry(z, &vm->coalesced_zones, list)
		if (z->zone.pio == pio && in_zone(&z->zone, addr, len))
			break;
	if (list_entry_is_head(z, &vm->coalesced_zones, list))
		goto out;
	last = READ_ONCE(ring->last);
	first = READ_ONCE(ring->first);
	/* One slot stays empty, so that first == last means an empty ring. */
	if (last >= KVM_COALESCED_MMIO_MAX || (last + 1) % KVM_COALESCED_MMIO_MAX == first)
		goto out;
	e = &ring->coalesced_mmio[array_index_nospec(last, KVM_COALESCED_MMIO_MAX)];
	e->phys_addr = addr;
	e->len = len;
	e->pio = pio;
	memset(e->data, 0, sizeof(e->data));
	memcpy(e->data, data, len);
	/* The entry is complete before userspace can see it. */
	smp_wmb();
	WRITE_ONCE(ring->last, (last + 1) % KVM_COALESCED_MMIO_MAX);
	done = true;
out:
	spin_unlock(&vm->coalesced_lock);
	return done;
}
