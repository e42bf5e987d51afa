// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side builder and walker for x86-64 4-level guest page tables
 * (SDM vol. 3 4.5, APM vol. 2 5.3).
 */
#include <errno.h>
#include <stddef.h>

#include "pgtable.h"

/* Bits 47:39, 38:30, 29:21 and 20:12 index the four levels. */
static unsigned int pt_index(uint64_t gva, int level)
{
	return (gva >> (12 + 9 * (level - 1))) & 511;
}

static uint64_t level_size(int level)
{
	return 1ULL << (12 + 9 * (level - 1));
}

bool pgtable_gva_canonical(uint64_t gva)
{
	/* Bits 63:47 must all equal bit 47 (no LA57). */
	uint64_t top = gva >> 47;

	return top == 0 || top == 0x1ffff;
}

/**
 * pgtable_init() - allocate an empty PML4
 * @pt: the table, with gpa_to_hva, alloc_page and ctx filled in
 *
 * Return: 0, or -ENOMEM when no page could be allocated.
 */
int pgtable_init(struct guest_pgtable *pt)
{
	pt->root = pt->alloc_page(pt->ctx);
	return pt->root ? 0 : -ENOMEM;
}

/**
 * pgtable_map() - map one page of 4 KiB, 2 MiB or 1 GiB
 * @pt: the table
 * @gva: guest virtual address, aligned to @page_size
 * @gpa: guest physical address, aligned to @page_size
 * @page_size: PG_SIZE_4K, PG_SIZE_2M or PG_SIZE_1G
 * @flags: PTE bits besides P and PS (PTE_RW, PTE_US, PTE_NX)
 *
 * Intermediate tables are allocated as needed and are always writable and
 * supervisor+user, so the leaf alone decides the access rights.
 *
 * Return: 0, -EINVAL for a bad size or alignment or a non-canonical @gva,
 * -EEXIST when part of the range is already mapped differently, -ENOMEM.
 */
int pgtable_map(struct guest_pgtable *pt, uint64_t gva, uint64_t gpa, uint64_t page_size,
		uint64_t flags)
{
	int leaf_level;
	uint64_t *table;

	switch (page_size) {
	case PG_SIZE_4K: leaf_level = 1; break;
	case PG_SIZE_2M: leaf_level = 2; break;
	case PG_SIZE_1G: leaf_level = 3; break;
	default: return -EINVAL;
	}
	if ((gva | gpa) & (page_size - 1) || !pgtable_gva_canonical(gva) ||
	    gpa & ~PTE_ADDR_MASK)
		return -EINVAL;

	table = pt->gpa_to_hva(pt->ctx, pt->root);
	for (int level = 4; level > leaf_level; level--) {
		uint64_t *pte = &table[pt_index(gva, level)];

		if (!(*pte & PTE_P)) {
			uint64_t page = pt->alloc_page(pt->ctx);

			if (!page)
				return -ENOMEM;
			*pte = page | PTE_P | PTE_RW | PTE_US;
		} else if (*pte & PTE_PS) {
			return -EEXIST;
		}
		table = pt->gpa_to_hva(pt->ctx, *pte & PTE_ADDR_MASK);
	}
	table += pt_index(gva, leaf_level);
	flags |= PTE_P | (leaf_level > 1 ? PTE_PS : 0);
	if (*table & PTE_P)
		return ((*table & ~PTE_ADDR_MASK) == flags && (*table & PTE_ADDR_MASK) == gpa) ?
			0 : -EEXIST;
	*table = gpa | flags;
	return 0;
}

/**
 * pgtable_translate() - walk the tables like the CPU would
 * @pt: the table
 * @gva: guest virtual address
 *
 * Return: the guest physical address, or GVA_INVALID when @gva is not
 * canonical or not mapped.
 */
uint64_t pgtable_translate(struct guest_pgtable *pt, uint64_t gva)
{
	uint64_t *table, pte = 0;
	int level;

	if (!pgtable_gva_canonical(gva))
		return GVA_INVALID;
	table = pt->gpa_to_hva(pt->ctx, pt->root);
	for (level = 4; level >= 1; level--) {
		pte = table[pt_index(gva, level)];
		if (!(pte & PTE_P))
			return GVA_INVALID;
		if (level == 1 || (level <= 3 && (pte & PTE_PS)))
			break;
		table = pt->gpa_to_hva(pt->ctx, pte & PTE_ADDR_MASK);
		if (!table)
			return GVA_INVALID;
	}
	return (pte & PTE_ADDR_MASK & ~(level_size(level) - 1)) | (gva & (level_size(level) - 1));
}

/**
 * pgtable_entry() - the entry at one level of a walk
 * @pt: the table
 * @gva: guest virtual address
 * @level: 4 (PML4E), 3 (PDPTE), 2 (PDE) or 1 (PTE)
 *
 * Return: a host pointer to the entry that translates @gva at @level, or
 * NULL when @gva is not canonical, a level above is not present, or a
 * large page ends the walk above @level.
 */
uint64_t *pgtable_entry(struct guest_pgtable *pt, uint64_t gva, int level)
{
	uint64_t *table;

	if (!pgtable_gva_canonical(gva) || level < 1 || level > 4)
		return NULL;
	table = pt->gpa_to_hva(pt->ctx, pt->root);
	for (int l = 4; table; l--) {
		uint64_t *pte = &table[pt_index(gva, l)];

		if (l == level)
			return pte;
		if (!(*pte & PTE_P) || (l <= 3 && (*pte & PTE_PS)))
			return NULL;
		table = pt->gpa_to_hva(pt->ctx, *pte & PTE_ADDR_MASK);
	}
	return NULL;
}

/**
 * pgtable_leaf() - the entry that maps a page
 * @pt: the table
 * @gva: guest virtual address
 * @level: set to the entry's level: 1 for 4 KiB, 2 for 2 MiB, 3 for 1 GiB
 *
 * Return: a host pointer to the present leaf entry for @gva, or NULL when
 * @gva is not mapped.
 */
uint64_t *pgtable_leaf(struct guest_pgtable *pt, uint64_t gva, int *level)
{
	for (int l = 4; l >= 1; l--) {
		uint64_t *pte = pgtable_entry(pt, gva, l);

		if (!pte || !(*pte & PTE_P))
			return NULL;
		if (l == 1 || (l <= 3 && (*pte & PTE_PS))) {
			*level = l;
			return pte;
		}
	}
	return NULL;
}
