/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86-64 4-level guest page tables, built and walked by the host.
 *
 * The tables live in guest memory; the code reaches it through a callback
 * that turns a guest physical address into a host pointer, so the same code
 * runs against a VM or, in the unit tests, against a plain buffer.
 */
#ifndef MINIKVM_TEST_PGTABLE_H
#define MINIKVM_TEST_PGTABLE_H

#include <stdbool.h>
#include <stdint.h>

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR_MASK 0x000ffffffffff000ULL

#define PG_SIZE_4K (1ULL << 12)
#define PG_SIZE_2M (1ULL << 21)
#define PG_SIZE_1G (1ULL << 30)

#define GVA_INVALID (~0ULL)

struct guest_pgtable {
	uint64_t root;				/* GPA of the PML4 */
	void *(*gpa_to_hva)(void *ctx, uint64_t gpa);
	uint64_t (*alloc_page)(void *ctx);	/* returns a zeroed page's GPA */
	void *ctx;
};

int pgtable_init(struct guest_pgtable *pt);
int pgtable_map(struct guest_pgtable *pt, uint64_t gva, uint64_t gpa, uint64_t page_size,
		uint64_t flags);
uint64_t pgtable_translate(struct guest_pgtable *pt, uint64_t gva);
uint64_t *pgtable_entry(struct guest_pgtable *pt, uint64_t gva, int level);
uint64_t *pgtable_leaf(struct guest_pgtable *pt, uint64_t gva, int *level);
bool pgtable_gva_canonical(uint64_t gva);

#endif
