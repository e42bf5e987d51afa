// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the selftest library's guest page-table builder and walker,
 * against a plain buffer standing in for guest memory (no KVM needed).
 */
#include "kvm_util.h"

#define FAKE_PAGES 64

struct fake_mem {
	uint8_t pages[FAKE_PAGES][4096] __attribute__((aligned(4096)));
	unsigned int used;
};

static void *fake_hva(void *ctx, uint64_t gpa)
{
	struct fake_mem *m = ctx;

	return gpa / 4096 < FAKE_PAGES ? m->pages[gpa / 4096] + gpa % 4096 : NULL;
}

static uint64_t fake_alloc(void *ctx)
{
	struct fake_mem *m = ctx;

	if (m->used == FAKE_PAGES)
		return 0;
	memset(m->pages[m->used], 0, 4096);
	return (uint64_t)m->used++ * 4096;
}

static struct fake_mem mem;

static struct guest_pgtable new_table(void)
{
	struct guest_pgtable pt = { .gpa_to_hva = fake_hva, .alloc_page = fake_alloc,
				    .ctx = &mem };

	mem.used = 1;	/* GPA 0 means "allocation failed": keep page 0 unused */
	TEST_ASSERT_EQ(pgtable_init(&pt), 0);
	return pt;
}

TEST(map_4k_and_translate)
{
	struct guest_pgtable pt = new_table();

	TEST_ASSERT_EQ(pgtable_map(&pt, 0x555555554000ULL, 0x7000, PG_SIZE_4K, PTE_RW), 0);
	TEST_ASSERT_EQ(pgtable_translate(&pt, 0x555555554000ULL), 0x7000);
	TEST_ASSERT_EQ(pgtable_translate(&pt, 0x555555554abcULL), 0x7abc);
	TEST_ASSERT_EQ(pgtable_translate(&pt, 0x555555555000ULL), GVA_INVALID);
	/* PML4, PDPT, PD and PT: four tables. */
	TEST_ASSERT_EQ(mem.used, 1 + 4);
}

TEST(map_2m_and_1g_pages)
{
	struct guest_pgtable pt = new_table();

	TEST_ASSERT_EQ(pgtable_map(&pt, 0x40000000, 0x80000000, PG_SIZE_1G, PTE_RW), 0);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x200000, 0x600000, PG_SIZE_2M, PTE_RW), 0);
	TEST_ASSERT_EQ(pgtable_translate(&pt, 0x40000000 + 0x3456789), 0x83456789);
	TEST_ASSERT_EQ(pgtable_translate(&pt, 0x2fffff), 0x6fffff);
	TEST_ASSERT_EQ(pgtable_translate(&pt, 0x1fffff), GVA_INVALID);
}

TEST(map_rejects_bad_requests)
{
	struct guest_pgtable pt = new_table();

	TEST_ASSERT_EQ(pgtable_map(&pt, 0x1001, 0x2000, PG_SIZE_4K, 0), -EINVAL);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x200000, 0x1000, PG_SIZE_2M, 0), -EINVAL);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x1000, 0x1000, 8192, 0), -EINVAL);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x800000000000ULL, 0x1000, PG_SIZE_4K, 0), -EINVAL);
	/* A 4K page inside an existing 2M page, and a remap to another GPA. */
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x200000, 0x200000, PG_SIZE_2M, PTE_RW), 0);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x201000, 0x5000, PG_SIZE_4K, PTE_RW), -EEXIST);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x200000, 0x400000, PG_SIZE_2M, PTE_RW), -EEXIST);
	/* The same mapping again is fine. */
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x200000, 0x200000, PG_SIZE_2M, PTE_RW), 0);
}

TEST(canonical_addresses)
{
	TEST_ASSERT(pgtable_gva_canonical(0x00007fffffffffffULL), "top of the lower half");
	TEST_ASSERT(pgtable_gva_canonical(0xffff800000000000ULL), "bottom of the upper half");
	TEST_ASSERT(!pgtable_gva_canonical(0x0000800000000000ULL), "hole");
	TEST_ASSERT(!pgtable_gva_canonical(0xfff0000000000000ULL), "hole");
}

TEST(out_of_table_memory)
{
	struct guest_pgtable pt = new_table();
	int r = 0;

	/* Each new 512 GiB region costs three tables; the fake memory runs out. */
	for (uint64_t i = 0; i < 64 && r == 0; i++)
		r = pgtable_map(&pt, i << 39, 0x1000, PG_SIZE_4K, 0);
	TEST_ASSERT_EQ(r, -ENOMEM);
}

TEST(entries_of_a_walk)
{
	struct guest_pgtable pt = new_table();
	const uint64_t gva = 0x555555554000ULL;
	uint64_t *pml4e, *pte;
	int level;

	TEST_ASSERT_EQ(pgtable_map(&pt, gva, 0x7000, PG_SIZE_4K, PTE_RW | PTE_US), 0);
	TEST_ASSERT_EQ(pgtable_map(&pt, 0x200000, 0x600000, PG_SIZE_2M, PTE_RW), 0);
	/* Every level of a 4 KiB page; the tables above allow everything. */
	pml4e = pgtable_entry(&pt, gva, 4);
	TEST_ASSERT(pml4e, "no PML4 entry");
	TEST_ASSERT_EQ(*pml4e & ~PTE_ADDR_MASK, PTE_P | PTE_RW | PTE_US);
	TEST_ASSERT(pgtable_entry(&pt, gva, 3) && pgtable_entry(&pt, gva, 2), "no PDPTE or PDE");
	pte = pgtable_entry(&pt, gva, 1);
	TEST_ASSERT_EQ(*pte, 0x7000 | PTE_P | PTE_RW | PTE_US);
	TEST_ASSERT(pgtable_leaf(&pt, gva + 0xfff, &level) == pte, "leaf of the 4 KiB page");
	TEST_ASSERT_EQ(level, 1);
	/* A 2 MiB page ends the walk at level 2. */
	TEST_ASSERT(pgtable_entry(&pt, 0x2abcde, 1) == NULL, "a PTE under a 2 MiB page");
	TEST_ASSERT(pgtable_leaf(&pt, 0x2abcde, &level) == pgtable_entry(&pt, 0x2abcde, 2),
		    "leaf of the 2 MiB page");
	TEST_ASSERT_EQ(level, 2);
	/* A not-present entry is returned at its level, but is no leaf. */
	*pte &= ~PTE_P;
	TEST_ASSERT(pgtable_entry(&pt, gva, 1) == pte, "the not-present PTE");
	TEST_ASSERT(pgtable_leaf(&pt, gva, &level) == NULL, "a leaf that is not present");
	TEST_ASSERT(pgtable_entry(&pt, 0x800000000000ULL, 4) == NULL, "non-canonical");
	TEST_ASSERT(pgtable_entry(&pt, gva, 5) == NULL, "level 5");
}
