// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory backed by the host's transparent huge pages, which the
 * hypervisor may map with 2 MiB nested-paging entries: the guest sees each
 * 4 KiB page at its own address, writes are seen both ways, dirty logging
 * switched on afterwards reports single 4 KiB pages, and a moved slot keeps
 * its contents.
 */
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kvm_util.h"

#define SLOT		1
#define SLOT_GPA	0x40000000ULL	/* 1 GiB: 2 MiB-aligned, identity-mapped */
#define MOVED_GPA	0x80000000ULL
#define HUGE		(2ULL << 20)
#define SLOT_SIZE	(4 * HUGE)
#define SLOT_PAGES	(SLOT_SIZE / PAGE_SIZE)

/* Checks word 0 of each page is its own address, writes word 1, reports mismatches. */
static void guest_walk(uint64_t gpa)
{
	for (;;) {
		uint64_t bad = 0;

		for (uint64_t i = 0; i < SLOT_PAGES; i++) {
			volatile uint64_t *p = (volatile uint64_t *)(gpa + i * PAGE_SIZE);

			bad += p[0] != SLOT_GPA + i * PAGE_SIZE;
			p[1] = ~(SLOT_GPA + i * PAGE_SIZE);
		}
		GUEST_SYNC_ARGS(1, bad, 0, 0);
	}
}

/* Writes word 2 of the pages listed at @list, @n of them. */
static void guest_write_some(uint64_t list, uint64_t n)
{
	const uint64_t *pages = (const uint64_t *)list;

	for (;;) {
		for (uint64_t i = 0; i < n; i++)
			*(volatile uint64_t *)(SLOT_GPA + pages[i] * PAGE_SIZE + 16) = i;
		GUEST_SYNC(2);
	}
}

TEST(guest_sees_each_small_page)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_walk);
	uint64_t *mem;
	uint64_t *list, list_gpa, bitmap[SLOT_PAGES / 64];
	static const uint64_t written[] = { 1, 512, 513, SLOT_PAGES - 1 };
	struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = bitmap };
	struct ucall uc;

	mem = vm_add_memslot_huge(vm, SLOT, 0, SLOT_GPA, SLOT_SIZE);
	for (uint64_t i = 0; i < SLOT_PAGES; i++)
		mem[i * PAGE_SIZE / 8] = SLOT_GPA + i * PAGE_SIZE;
	if (host_huge_kb(mem) <= 0)
		SKIP("the host backed none of the slot with huge pages");

	vcpu_args_set(vcpu, 1, SLOT_GPA);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0);
	for (uint64_t i = 0; i < SLOT_PAGES; i++)
		TEST_ASSERT_EQ(mem[i * PAGE_SIZE / 8 + 1], ~(SLOT_GPA + i * PAGE_SIZE));

	/* A host write is seen by the guest at once. */
	mem[700 * PAGE_SIZE / 8] = 0;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	mem[700 * PAGE_SIZE / 8] = SLOT_GPA + 700 * PAGE_SIZE;

	/* Logging switched on: single 4 KiB pages are reported, not 2 MiB. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES, SLOT_GPA, SLOT_SIZE,
					mem), 0);
	list_gpa = vm_alloc_pages(vm, 1);
	list = gpa2hva(vm, list_gpa);
	memcpy(list, written, sizeof(written));
	vcpu_restart(vcpu, (void (*)(void))guest_write_some);
	vcpu_args_set(vcpu, 2, list_gpa, 4);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
	for (uint64_t w = 0; w < SLOT_PAGES / 64; w++) {
		uint64_t want = 0;

		for (int i = 0; i < 4; i++)
			if (written[i] / 64 == w)
				want |= 1ULL << (written[i] % 64);
		TEST_ASSERT(bitmap[w] == want, "dirty word %lu: %#lx, want %#lx",
			    (unsigned long)w, (unsigned long)bitmap[w], (unsigned long)want);
	}
	for (int i = 0; i < 4; i++)
		TEST_ASSERT_EQ(mem[written[i] * PAGE_SIZE / 8 + 2], (uint64_t)i);

	/* Moved, logging off again: the same contents at the new address. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, SLOT, 0, MOVED_GPA, SLOT_SIZE, mem), 0);
	vcpu_restart(vcpu, (void (*)(void))guest_walk);
	vcpu_args_set(vcpu, 1, MOVED_GPA);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0);
	vm_free(vm);
}
