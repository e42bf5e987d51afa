// SPDX-License-Identifier: GPL-2.0
/*
 * Two-dimensional paging (AMD NPT, Intel EPT): guest-physical to
 * host-physical tables, built lazily on nested page faults from the
 * memslots.
 *
 * Both formats are 4-level radix trees indexed by GPA bits 47:39, 38:30,
 * 29:21 and 20:12 (APM vol. 2 15.25.5, SDM vol. 3 29.3.2); only the
 * permission and memory-type bits differ, and the MMU context's role says
 * which (spte_bits[]).  Every page mapped is one the memslot's userspace mapping really
 * backs, pinned while mapped; nothing else is ever mapped.
 *
 * Each memslot address space (api.rst 4.35: 0 normally, 1 in SMM) has its
 * own tree and its own set of pinned pages, since one guest-physical
 * address may be backed differently in each; a vCPU runs on the tree of the
 * space it is in.
 *
 * Where the host backs a whole aligned 2 MiB of a slot with one transparent
 * huge page, the guest gets one 2 MiB leaf for it (bit 7 of a level-2 entry
 * in both formats: APM vol. 2 5.3.4, SDM vol. 3 29.3.2), as KVM does: one
 * nested fault instead of 512, and fewer TLB entries.
 */
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <asm/io.h>

#include <minikvm/core.h>

#define TDP_LEVELS 4
#define TDP_PA_MASK 0x000ffffffffff000ULL
#define TDP_HUGE BIT_ULL(7)		/* a level-2 entry that maps 2 MiB */
#define TDP_HUGE_PAGES 512

/*
 * The bits of a table entry, of a readable leaf, the write bit, and a bit
 * the hardware ignores that minikvm uses for "the host page is writable" on
 * pages kept read-only for dirty logging.
 */
struct spte_bits {
	u64 table, leaf_read, leaf_write, host_writable;
};

static const struct spte_bits spte_bits[] = {
	/* NPT: user-mode entries, as the walk of nested tables is a user access (APM 15.25.5). */
	[MKVM_SPTE_NPT] = {
		.table = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER,
		.leaf_read = _PAGE_PRESENT | _PAGE_USER,
		.leaf_write = _PAGE_RW,
		.host_writable = BIT_ULL(11),	/* an AVL bit (APM vol. 2 5.4.1) */
	},
	/*
	 * EPT: read and execute, write-back memory that ignores the guest's
	 * PAT (SDM vol. 3 29.3.2, 29.3.7): a guest must not make the host's
	 * write-back pages uncached or write-combined behind its back.
	 */
	[MKVM_SPTE_EPT] = {
		.table = BIT_ULL(0) | BIT_ULL(1) | BIT_ULL(2),
		.leaf_read = BIT_ULL(0) | BIT_ULL(2) | (6ULL << 3) | BIT_ULL(6),
		.leaf_write = BIT_ULL(1),
		.host_writable = BIT_ULL(57),	/* ignored by the processor */
	},
};

static const struct spte_bits *bits_of(struct mkvm_vcpu *vcpu)
{
	return &spte_bits[vcpu->arch.mmu.role.format == MKVM_SPTE_EPT];
}

static unsigned int tdp_index(u64 gpa, int level)
{
	return (gpa >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

/**
 * mkvm_tdp_init() - an empty root table for a new VM
 * @vm: the VM
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_tdp_init(struct mkvm_vm *vm)
{
	struct mkvm_tdp *tdp = &vm->arch.tdp;

	mutex_init(&tdp->lock);
	for (int as = 0; as < MKVM_ADDRESS_SPACES; as++) {
		xa_init(&tdp->space[as].pages);
		tdp->space[as].root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!tdp->space[as].root)
			return -ENOMEM;
	}
	return 0;
}

/**
 * mkvm_tdp_root_pa() - the physical address of an address space's root table
 * @vm: the VM
 * @as: the address space, 0 or 1 (SMM)
 *
 * Return: what goes in the nested CR3 (or EPT pointer).
 */
u64 mkvm_tdp_root_pa(struct mkvm_vm *vm, int as)
{
	return __pa(vm->arch.tdp.space[as].root);
}

/* Free the tables below @table (not @table itself). */
static void free_tables(u64 *table, int level)
{
	for (int i = 0; i < 512; i++) {
		u64 *child;

		if (!table[i] || level == 1 || (level == 2 && (table[i] & TDP_HUGE)))
			continue;
		child = __va(table[i] & TDP_PA_MASK);
		free_tables(child, level - 1);
		free_page((unsigned long)child);
	}
}

/* Pages mapped writable are marked: the guest may have dirtied them. */
#define TDP_MAPPED_WRITABLE XA_MARK_0

static void unpin_all(struct mkvm_tdp_space *sp)
{
	struct page *page;
	unsigned long gfn;

	xa_for_each(&sp->pages, gfn, page) {
		if (xa_get_mark(&sp->pages, gfn, TDP_MAPPED_WRITABLE))
			unpin_user_pages_dirty_lock(&page, 1, true);
		else
			unpin_user_page(page);
	}
	xa_destroy(&sp->pages);
}

/**
 * mkvm_tdp_zap_all() - remove every mapping and unpin every page
 * @vm: the VM; no vCPU may be in the guest (slots_sem held for write)
 */
void mkvm_tdp_zap_all(struct mkvm_vm *vm)
{
	struct mkvm_tdp *tdp = &vm->arch.tdp;

	mutex_lock(&tdp->lock);
	for (int as = 0; as < MKVM_ADDRESS_SPACES; as++) {
		free_tables(tdp->space[as].root, TDP_LEVELS);
		memset(tdp->space[as].root, 0, PAGE_SIZE);
		unpin_all(&tdp->space[as]);
	}
	/* Each vCPU flushes its TLB before its next entry. */
	mkvm_make_all_request(vm, MKVM_REQ_TLB_FLUSH);
	WRITE_ONCE(vm->stat.remote_tlb_flush, vm->stat.remote_tlb_flush + 1);
	WRITE_ONCE(vm->stat.pages_4k, 0);
	WRITE_ONCE(vm->stat.pages_2m, 0);
	mutex_unlock(&tdp->lock);
}

void mkvm_tdp_destroy(struct mkvm_vm *vm)
{
	for (int as = 0; as < MKVM_ADDRESS_SPACES; as++) {
		struct mkvm_tdp_space *sp = &vm->arch.tdp.space[as];

		if (!sp->root)
			continue;
		free_tables(sp->root, TDP_LEVELS);
		free_page((unsigned long)sp->root);
		unpin_all(sp);
	}
}

/*
 * The entry for @gpa at @level (1 for a 4 KiB leaf, 2 for a 2 MiB one),
 * allocating the tables on the way, or the 2 MiB leaf above it that already
 * maps @gpa; NULL on -ENOMEM.
 */
static u64 *walk_alloc(const struct spte_bits *b, struct mkvm_tdp_space *sp, u64 gpa, int level)
{
	u64 *table = sp->root;

	for (int l = TDP_LEVELS; l > level; l--) {
		u64 *e = &table[tdp_index(gpa, l)];

		if (!*e) {
			u64 *child = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);

			if (!child)
				return NULL;
			*e = __pa(child) | b->table;
		} else if (l == 2 && (*e & TDP_HUGE)) {
			return e;
		}
		table = __va(*e & TDP_PA_MASK);
	}
	return &table[tdp_index(gpa, level)];
}

/*
 * Map the 2 MiB around @gfn with one leaf when the host backs all of it
 * with one huge page.  @page is @gfn's page, pinned already; the caller
 * keeps that pin.  Return: true when mapped (or found mapped already).
 */
static bool map_huge(struct mkvm_vcpu *vcpu, struct mkvm_memslot *slot, u64 gfn,
		     unsigned long hva, struct page *page, u64 bits)
{
	struct mkvm_tdp *tdp = &vcpu->vm->arch.tdp;
	struct mkvm_tdp_space *sp = &tdp->space[vcpu->arch.mmu.role.as];
	u64 first = gfn & ~(u64)(TDP_HUGE_PAGES - 1), *e;
	unsigned long first_hva = hva - ((gfn - first) << PAGE_SHIFT);
	struct page **pages;
	bool mapped = false;
	int n, i;

	/* The 2 MiB must lie in the slot, aligned alike in both address spaces. */
	if (first < slot->base_gfn || first + TDP_HUGE_PAGES > slot->base_gfn + slot->npages ||
	    (first_hva & (PMD_SIZE - 1)))
		return false;
	/* Only a page already huge: pinning 512 small ones would allocate them all. */
	if (!PageCompound(page) || compound_order(compound_head(page)) < PMD_SHIFT - PAGE_SHIFT)
		return false;
	pages = kmalloc_array(TDP_HUGE_PAGES, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return false;
	n = pin_user_pages_fast(first_hva, TDP_HUGE_PAGES, FOLL_WRITE | FOLL_LONGTERM, pages);
	if (n != TDP_HUGE_PAGES)
		goto unpin;
	/* Still one huge page now that all of it is pinned: contiguous and aligned. */
	if (page_to_pfn(pages[0]) & (TDP_HUGE_PAGES - 1))
		goto unpin;
	for (i = 1; i < TDP_HUGE_PAGES; i++)
		if (page_to_pfn(pages[i]) != page_to_pfn(pages[0]) + i)
			goto unpin;

	mutex_lock(&tdp->lock);
	e = walk_alloc(bits_of(vcpu), sp, first << PAGE_SHIFT, 2);
	if (e && *e & TDP_HUGE) {
		mapped = true;		/* another vCPU was first */
	} else if (e && !*e) {
		for (i = 0; i < TDP_HUGE_PAGES; i++) {
			if (xa_is_err(xa_store(&sp->pages, first + i, pages[i],
					       GFP_KERNEL_ACCOUNT)))
				break;
			xa_set_mark(&sp->pages, first + i, TDP_MAPPED_WRITABLE);
		}
		if (i == TDP_HUGE_PAGES) {
			*e = page_to_phys(pages[0]) | bits | TDP_HUGE;
			WRITE_ONCE(vcpu->vm->stat.pages_2m, vcpu->vm->stat.pages_2m + 1);
			mutex_unlock(&tdp->lock);
			kfree(pages);
			return true;
		}
		while (i--)
			xa_erase(&sp->pages, first + i);
	}
	mutex_unlock(&tdp->lock);
unpin:
	if (n > 0)
		unpin_user_pages(pages, n);
	kfree(pages);
	return mapped;
}

/*
 * Map the page at @gpa for a read or a write.  The host page is found
 * through the memslot's userspace mapping and pinned.  A writable host
 * mapping is mapped writable at once, so a later write does not fault
 * again, except in a dirty-logging slot, where the first write to each page
 * must be seen.
 */
static int tdp_map(struct mkvm_vcpu *vcpu, u64 gpa, bool write, bool present_only)
{
	const struct spte_bits *x = bits_of(vcpu);
	struct mkvm_tdp *tdp = &vcpu->vm->arch.tdp;
	int as = vcpu->arch.mmu.role.as;
	struct mkvm_tdp_space *sp = &tdp->space[as];
	u64 gfn = gpa >> PAGE_SHIFT, bits, *leaf;
	struct mkvm_memslot *slot;
	bool host_writable = false;
	struct page *page;
	unsigned long hva;
	int r;

	/* Beyond the 4-level tables' reach (bit 48 and up) nothing can be mapped: MMIO. */
	if (gpa >> 48)
		return 1;
	slot = mkvm_gfn_to_memslot(vcpu->vm, as, gfn);
	if (!slot || (write && (slot->flags & KVM_MEM_READONLY)))
		return 1;
	/* As KVM does: the guest must not steer even speculative loads outside its slots. */
	hva = slot->userspace_addr + (array_index_nospec(gfn - slot->base_gfn, slot->npages) <<
				      PAGE_SHIFT);
	/*
	 * Long-term: the page stays pinned while mapped, so it must not be
	 * movable.  A page the guest did not ask for (@present_only) is taken
	 * only if the host has it already, writable where the slot is: never
	 * faulted in, so a page the VMM gave back stays given back.
	 */
	if (present_only) {
		unsigned int flags = FOLL_LONGTERM |
				     (slot->flags & KVM_MEM_READONLY ? 0 : FOLL_WRITE);

		if (pin_user_pages_fast_only(hva, 1, flags, &page) != 1)
			return -EAGAIN;
		host_writable = !(slot->flags & KVM_MEM_READONLY);
	} else {
		if (!(slot->flags & KVM_MEM_READONLY))
			host_writable = pin_user_pages_fast(hva, 1, FOLL_WRITE | FOLL_LONGTERM,
							    &page) == 1;
		if (!host_writable &&
		    (write || pin_user_pages_fast(hva, 1, FOLL_LONGTERM, &page) != 1))
			return -EFAULT;
	}

	bits = x->leaf_read;
	if (host_writable) {
		bits |= x->host_writable;
		/* A logging slot stays read-only until each page's first write. */
		if (write || !slot->dirty_bitmap)
			bits |= x->leaf_write;
	}

	/* A logging slot needs each 4 KiB page's first write to fault. */
	if (!present_only && !slot->dirty_bitmap && (bits & x->leaf_write) &&
	    map_huge(vcpu, slot, gfn, hva, page, bits)) {
		unpin_user_page(page);
		return 0;
	}

	mutex_lock(&tdp->lock);
	r = -ENOMEM;
	leaf = walk_alloc(x, sp, gpa, 1);
	if (!leaf)
		goto unpin;
	if (*leaf) {
		/*
		 * Mapped already (perhaps by a 2 MiB leaf, always writable): a
		 * read raced with another vCPU, or a logged page's first write.
		 */
		r = 0;
		if (write && !(*leaf & x->leaf_write)) {
			if (*leaf & x->host_writable) {
				*leaf |= x->leaf_write;
				xa_set_mark(&sp->pages, gfn, TDP_MAPPED_WRITABLE);
			} else
				r = (slot->flags & KVM_MEM_READONLY) ? 1 : -EFAULT;
		}
		if (!r && write)
			mkvm_mark_page_dirty(slot, gfn);
		goto unpin;
	}
	r = xa_err(xa_store(&sp->pages, gfn, page, GFP_KERNEL_ACCOUNT));
	if (r)
		goto unpin;
	*leaf = page_to_phys(page) | bits;
	WRITE_ONCE(vcpu->vm->stat.pages_4k, vcpu->vm->stat.pages_4k + 1);
	if (bits & x->leaf_write)
		xa_set_mark(&sp->pages, gfn, TDP_MAPPED_WRITABLE);
	if (write)
		mkvm_mark_page_dirty(slot, gfn);
	mutex_unlock(&tdp->lock);
	return 0;
unpin:
	mutex_unlock(&tdp->lock);
	unpin_user_page(page);
	return r;
}

/* The leaf that maps @gpa, and its level (1, or 2 for 2 MiB); 0 when none. */
static u64 tdp_leaf(struct mkvm_tdp_space *sp, u64 gpa, int *level)
{
	u64 *table = sp->root, e = 0;

	for (int l = TDP_LEVELS; l >= 1; l--) {
		e = table[tdp_index(gpa, l)];
		*level = l;
		if (!e || l == 1 || (l == 2 && (e & TDP_HUGE)))
			return e;
		table = __va(e & TDP_PA_MASK);
	}
	return e;
}

/**
 * mkvm_tdp_page_fault() - map the page behind a nested page fault
 * @vcpu: the faulting vCPU, in the VM's process, with slots_sem held for read
 * @gpa: the guest physical address, in the address space of the vCPU's MMU role
 * @error_code: the fault's; bit 1 is a write in both NPT and EPT terms
 *
 * Return: 0 when mapped; 1 when no memslot covers @gpa or this is a write to
 * a read-only slot (both are MMIO for the emulator); -EFAULT when
 * the host has no page there, or only a read-only one and this is a write;
 * -ENOMEM.
 */
int mkvm_tdp_page_fault(struct mkvm_vcpu *vcpu, u64 gpa, u32 error_code)
{
	return tdp_map(vcpu, gpa, error_code & BIT(1), false);
}

/**
 * mkvm_tdp_translate() - the host page behind a guest-physical address
 * @vcpu: the vCPU, in the VM's process, with slots_sem held for read
 * @gpa: the guest physical address, in the address space of the vCPU's MMU role
 * @flags: MKVM_TDP_WRITE for a write: the page is mapped writable and
 *	marked dirty; MKVM_TDP_PRESENT_ONLY for a page the guest did not ask
 *	for yet: only if the host has it already (-EAGAIN otherwise)
 * @hpa: the host physical address of @gpa's page
 * @writable: the page may be written without another call with @write
 * @huge: one 2 MiB entry maps the aligned 2 MiB around @gpa (a host huge
 *	page: never in a slot that logs dirty pages)
 *
 * The shadow MMU's guest-physical map: the two-dimensional tables, which
 * the hardware does not use then, hold the pins and the dirty-log state,
 * and are zapped on the same memslot changes.
 *
 * Return: as mkvm_tdp_page_fault().
 */
int mkvm_tdp_translate(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int flags, u64 *hpa,
		       bool *writable, bool *huge)
{
	struct mkvm_tdp *tdp = &vcpu->vm->arch.tdp;
	u64 e, mask;
	int level, r = tdp_map(vcpu, gpa, flags & MKVM_TDP_WRITE, flags & MKVM_TDP_PRESENT_ONLY);

	if (r)
		return r;
	mutex_lock(&tdp->lock);
	e = tdp_leaf(&tdp->space[vcpu->arch.mmu.role.as], gpa, &level);
	mutex_unlock(&tdp->lock);
	/* Nothing zaps the tables while slots_sem is held: tdp_map() left the leaf there. */
	if (WARN_ON_ONCE(!e))
		return -EFAULT;
	mask = level == 2 ? PMD_SIZE - 1 : PAGE_SIZE - 1;
	*hpa = ((e & TDP_PA_MASK & ~mask) | (gpa & mask)) & PAGE_MASK;
	*writable = e & bits_of(vcpu)->leaf_write;
	*huge = level == 2;
	return 0;
}
