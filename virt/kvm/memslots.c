// SPDX-License-Identifier: GPL-2.0
/*
 * Memslots: KVM_SET_USER_MEMORY_REGION.
 *
 * The checks and their order follow KVM's, so that a request with several
 * faults gets the same errno (api.rst 4.35): first the flags, then sizes and
 * alignment, then the slot id, then what the change would do to existing
 * slots.
 */
#include <linux/bitmap.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>

/* The flags minikvm implements. */
#define MKVM_MEMSLOT_VALID_FLAGS (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)

static unsigned long dirty_bitmap_bytes(const struct mkvm_memslot *s)
{
	return ALIGN(s->npages, BITS_PER_LONG) / 8;
}

static void free_memslot(struct mkvm_memslot *s)
{
	if (s)
		kvfree(s->dirty_bitmap);
	kfree(s);
}

/* Bits 16 and up of a slot id from userspace name its address space. */
static bool slot_id_valid(u32 slot)
{
	return (slot >> 16) < MKVM_ADDRESS_SPACES && (u16)slot < MKVM_USER_MEM_SLOTS;
}

/* The slots of the address space in a slot id that slot_id_valid() accepted. */
static struct xarray *slots_of(struct mkvm_vm *vm, u32 slot)
{
	return &vm->memslots[array_index_nospec(slot >> 16, MKVM_ADDRESS_SPACES)];
}

/* Slots overlap only within one address space: SMM's may alias the normal ones. */
static bool memslots_overlap(struct xarray *slots, u16 id, u64 base, u64 npages)
{
	struct mkvm_memslot *s;
	unsigned long i;

	xa_for_each(slots, i, s)
		if (s->id != id && base < s->base_gfn + s->npages && s->base_gfn < base + npages)
			return true;
	return false;
}

static int memslot_check(const struct kvm_userspace_memory_region *mem)
{
	if (mem->flags & ~MKVM_MEMSLOT_VALID_FLAGS)
		return -EINVAL;
	if ((mem->memory_size & (PAGE_SIZE - 1)) ||
	    mem->memory_size != (unsigned long)mem->memory_size)
		return -EINVAL;
	if (mem->guest_phys_addr & (PAGE_SIZE - 1))
		return -EINVAL;
	/* The memory must be page aligned and in the user half of the address space. */
	if ((mem->userspace_addr & (PAGE_SIZE - 1)) ||
	    !access_ok((void __user *)(unsigned long)mem->userspace_addr, mem->memory_size))
		return -EINVAL;
	if (!slot_id_valid(mem->slot))
		return -EINVAL;
	if (mem->guest_phys_addr + mem->memory_size < mem->guest_phys_addr)
		return -EINVAL;
	if ((mem->memory_size >> PAGE_SHIFT) > MKVM_MEM_MAX_NR_PAGES)
		return -EINVAL;
	return 0;
}

/**
 * mkvm_set_memory_region() - create, move, change or delete a memslot
 * @vm: the VM
 * @mem: the request, already copied from userspace; bits 16 and up of its
 *	 slot id name the address space (1: SMM), as in KVM
 *
 * Return: 0; -EINVAL for bad flags, sizes, alignment or ids, for deleting a
 * slot that does not exist and for changing an existing slot's size, host
 * address or read-only flag; -EEXIST for an overlap; -ENOMEM.
 */
int mkvm_set_memory_region(struct mkvm_vm *vm, const struct kvm_userspace_memory_region *mem)
{
	u64 base_gfn = mem->guest_phys_addr >> PAGE_SHIFT;
	u64 npages = mem->memory_size >> PAGE_SHIFT;
	struct mkvm_memslot *old, *new;
	struct xarray *slots;
	u16 id = mem->slot;
	int r;

	r = memslot_check(mem);
	if (r)
		return r;
	slots = slots_of(vm, mem->slot);

	mutex_lock(&vm->slots_lock);
	/* No vCPU is in the guest or holds a slot pointer from here on. */
	down_write(&vm->slots_sem);
	old = xa_load(slots, id);
	if (!npages) {
		r = -EINVAL;
		if (old) {
			xa_erase(slots, id);
			free_memslot(old);
			mkvm_arch_memslots_changed(vm);
			r = 0;
		}
		goto out;
	}
	if (old) {
		/* Only the GPA and the flags other than read-only may change. */
		r = -EINVAL;
		if (mem->userspace_addr != old->userspace_addr || npages != old->npages ||
		    ((mem->flags ^ old->flags) & KVM_MEM_READONLY))
			goto out;
		r = 0;
		if (base_gfn == old->base_gfn && mem->flags == old->flags)
			goto out;
	}
	r = -EEXIST;
	if ((!old || base_gfn != old->base_gfn) &&
	    memslots_overlap(slots, id, base_gfn, npages))
		goto out;

	r = -ENOMEM;
	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		goto out;
	*new = (struct mkvm_memslot){
		.id = id,
		.flags = mem->flags,
		.base_gfn = base_gfn,
		.npages = npages,
		.userspace_addr = mem->userspace_addr,
	};
	if (new->flags & KVM_MEM_LOG_DIRTY_PAGES) {
		/* Logging goes on: keep what was logged so far, or start clean. */
		if (old && old->dirty_bitmap) {
			new->dirty_bitmap = old->dirty_bitmap;
			old->dirty_bitmap = NULL;
		} else {
			new->dirty_bitmap = kvzalloc(dirty_bitmap_bytes(new), GFP_KERNEL_ACCOUNT);
			if (!new->dirty_bitmap) {
				kfree(new);
				goto out;
			}
			/* KVM_DIRTY_LOG_INITIALLY_SET: every page counts as dirty until cleared. */
			if (vm->manual_dirty_log & KVM_DIRTY_LOG_INITIALLY_SET)
				bitmap_set(new->dirty_bitmap, 0, npages);
		}
	}
	old = xa_store(slots, id, new, GFP_KERNEL_ACCOUNT);
	if (xa_is_err(old)) {
		r = xa_err(old);
		free_memslot(new);
		goto out;
	}
	vm->had_memslots = true;
	/*
	 * A moved slot's old guest-physical range must not stay mapped, and a
	 * slot that starts logging must have its pages write-protected.
	 */
	if (old && (old->base_gfn != base_gfn ||
		    ((old->flags ^ new->flags) & KVM_MEM_LOG_DIRTY_PAGES)))
		mkvm_arch_memslots_changed(vm);
	free_memslot(old);
	r = 0;
out:
	up_write(&vm->slots_sem);
	mutex_unlock(&vm->slots_lock);
	return r;
}

/**
 * mkvm_gfn_to_memslot() - the memslot holding a guest frame
 * @vm: the VM; the caller holds slots_sem for read
 * @as: the address space, 0 or 1 (SMM)
 * @gfn: guest frame number
 *
 * Return: the slot, or NULL when @gfn is in none (MMIO).
 */
struct mkvm_memslot *mkvm_gfn_to_memslot(struct mkvm_vm *vm, int as, u64 gfn)
{
	struct mkvm_memslot *s;
	unsigned long i;

	xa_for_each(&vm->memslots[as], i, s)
		if (gfn >= s->base_gfn && gfn - s->base_gfn < s->npages)
			return s;
	return NULL;
}

/**
 * mkvm_free_memslots() - free every memslot of a dying VM
 * @vm: the VM, with no users left
 */
void mkvm_free_memslots(struct mkvm_vm *vm)
{
	struct mkvm_memslot *s;
	unsigned long i;

	for (int as = 0; as < MKVM_ADDRESS_SPACES; as++) {
		xa_for_each(&vm->memslots[as], i, s)
			free_memslot(s);
		xa_destroy(&vm->memslots[as]);
	}
}

/**
 * mkvm_mark_page_dirty() - record a guest write for KVM_GET_DIRTY_LOG
 * @slot: the slot holding @gfn, looked up under slots_sem
 * @gfn: the guest frame written
 */
void mkvm_mark_page_dirty(struct mkvm_memslot *slot, u64 gfn)
{
	if (slot->dirty_bitmap)
		set_bit(gfn - slot->base_gfn, slot->dirty_bitmap);
}

/**
 * mkvm_get_dirty_log() - KVM_GET_DIRTY_LOG
 * @vm: the VM
 * @log: the request, copied from userspace
 *
 * Copies the slot's bitmap out, clears it and write-protects the slot again
 * so that the next write to each page is seen.  Unlike KVM, the bits are
 * only cleared once the copy succeeded, so an -EFAULT loses nothing.  With
 * KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE the bitmap is only copied:
 * KVM_CLEAR_DIRTY_LOG clears and protects.
 *
 * Return: 0; -EINVAL for a slot id (or address space) out of range; -ENOENT for a slot that
 * does not exist or does not log; -EFAULT.
 */
int mkvm_get_dirty_log(struct mkvm_vm *vm, const struct kvm_dirty_log *log)
{
	struct mkvm_memslot *s;
	int r = -ENOENT;

	if (!slot_id_valid(log->slot))
		return -EINVAL;
	mutex_lock(&vm->slots_lock);
	down_write(&vm->slots_sem);
	s = xa_load(slots_of(vm, log->slot), (u16)log->slot);
	if (!s || !s->dirty_bitmap)
		goto out;
	r = -EFAULT;
	if (copy_to_user(log->dirty_bitmap, s->dirty_bitmap, dirty_bitmap_bytes(s)))
		goto out;
	r = 0;
	if (!(vm->manual_dirty_log & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) &&
	    !bitmap_empty(s->dirty_bitmap, s->npages)) {
		bitmap_zero(s->dirty_bitmap, s->npages);
		mkvm_arch_memslots_changed(vm);
	}
out:
	up_write(&vm->slots_sem);
	mutex_unlock(&vm->slots_lock);
	return r;
}

/**
 * mkvm_enable_manual_dirty_log() - KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
 * @vm: the VM
 * @cap: args[0] is KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE and/or _INITIALLY_SET
 *
 * As in KVM, it may be changed at any time; INITIALLY_SET applies to slots
 * that start logging afterwards.
 *
 * Return: 0, or -EINVAL for flags, unknown bits, or INITIALLY_SET alone.
 */
int mkvm_enable_manual_dirty_log(struct mkvm_vm *vm, const struct kvm_enable_cap *cap)
{
	/* INITIALLY_SET only comes with MANUAL_PROTECT_ENABLE, as in KVM. */
	u64 ok = (cap->args[0] & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) ? MKVM_DIRTY_LOG_MANUAL_CAPS :
		 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;

	if (cap->flags || cap->args[0] & ~ok)
		return -EINVAL;
	mutex_lock(&vm->slots_lock);
	vm->manual_dirty_log = cap->args[0];
	mutex_unlock(&vm->slots_lock);
	return 0;
}

/**
 * mkvm_clear_dirty_log() - KVM_CLEAR_DIRTY_LOG
 * @vm: the VM
 * @log: the request, copied from userspace
 *
 * Clears the bits set in the user's bitmap, which covers num_pages pages from
 * first_page (a multiple of 64; num_pages too unless it reaches the slot's
 * end), and write-protects again so that the next write to each is seen.
 *
 * Return: 0; -EINVAL for a slot id (or address space) out of range or a bad range; -ENOENT for
 * a slot that does not exist or does not log; -EFAULT; -ENOMEM.
 */
int mkvm_clear_dirty_log(struct mkvm_vm *vm, const struct kvm_clear_dirty_log *log)
{
	unsigned long *mask, *dirty;
	bool cleared = false;
	struct mkvm_memslot *s;
	u64 i, words;
	int r;

	if (!slot_id_valid(log->slot) || log->first_page & 63)
		return -EINVAL;
	/* slots_lock keeps the slot; vCPUs run on until the bits are cleared. */
	mutex_lock(&vm->slots_lock);
	s = xa_load(slots_of(vm, log->slot), (u16)log->slot);
	mask = NULL;
	r = -ENOENT;
	if (!s || !s->dirty_bitmap)
		goto out;
	r = -EINVAL;
	if (log->first_page > s->npages || log->num_pages > s->npages - log->first_page ||
	    (log->num_pages < s->npages - log->first_page && (log->num_pages & 63)))
		goto out;
	/* Only now is the size known to be the slot's at most. */
	words = DIV_ROUND_UP((u64)log->num_pages, BITS_PER_LONG);
	r = -ENOMEM;
	mask = kvmalloc_array(max_t(u64, words, 1), sizeof(*mask), GFP_KERNEL_ACCOUNT);
	if (!mask)
		goto out;
	r = -EFAULT;
	if (copy_from_user(mask, log->dirty_bitmap, words * sizeof(*mask)))
		goto out;
	down_write(&vm->slots_sem);
	r = 0;
	/* first_page is a multiple of 64, so whole words line up; the last may overhang. */
	dirty = s->dirty_bitmap + log->first_page / BITS_PER_LONG;
	if (log->num_pages % BITS_PER_LONG)
		mask[words - 1] &= BITMAP_LAST_WORD_MASK(log->num_pages);
	for (i = 0; i < words; i++) {
		if (dirty[i] & mask[i])
			cleared = true;
		dirty[i] &= ~mask[i];
	}
	if (cleared)
		mkvm_arch_memslots_changed(vm);
	up_write(&vm->slots_sem);
out:
	mutex_unlock(&vm->slots_lock);
	kvfree(mask);
	return r;
}
