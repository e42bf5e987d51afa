// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_MEM_LOG_DIRTY_PAGES and KVM_GET_DIRTY_LOG: exactly the pages the guest
 * wrote are reported, reading the log clears it, and bad requests get KVM's
 * errno.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kvm_util.h"

#define SLOT 1
#define SLOT_GPA 0x10000000ULL
#define SLOT_PAGES 128

/* Writes one byte to each page listed (page numbers in the slot), then reads page 5. */
static void guest_write_pages(uint64_t list, uint64_t n)
{
	for (;;) {
		for (uint64_t i = 0; i < n; i++) {
			uint64_t page = ((volatile uint64_t *)list)[i];

			*(volatile uint8_t *)(SLOT_GPA + page * 4096 + 8) = (uint8_t)(page + 1);
		}
		(void)*(volatile uint64_t *)(SLOT_GPA + 5 * 4096);
		GUEST_SYNC(1);
	}
}

static uint64_t *page_list;	/* host view of a guest page */
static uint64_t page_list_gpa;	/* ... and its guest address (identity-mapped) */

static void get_log(struct kvm_vm *vm, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = bitmap };

	memset(bitmap, 0xaa, SLOT_PAGES / 8);
	vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
}

static void run_writes(struct kvm_vcpu *vcpu, const uint64_t *pages, int n)
{
	struct ucall uc;

	memcpy(page_list, pages, n * sizeof(*pages));
	vcpu_args_set(vcpu, 2, page_list_gpa, n);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
}

static struct kvm_vcpu *setup(struct kvm_vm **vmp, uint8_t **mem, uint32_t flags)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_write_pages);

	*mem = vm_add_memslot(vm, SLOT, flags, SLOT_GPA, SLOT_PAGES * PAGE_SIZE);
	page_list_gpa = vm_alloc_pages(vm, 1);
	page_list = gpa2hva(vm, page_list_gpa);
	*vmp = vm;
	return vcpu;
}

TEST(exact_pages_then_cleared)
{
	static const uint64_t first[] = { 3, 10, 64, 127 };
	static const uint64_t second[] = { 10 };
	uint64_t bitmap[SLOT_PAGES / 64];
	struct kvm_vm *vm;
	uint8_t *mem;
	struct kvm_vcpu *vcpu = setup(&vm, &mem, KVM_MEM_LOG_DIRTY_PAGES);

	run_writes(vcpu, first, 4);
	get_log(vm, bitmap);
	TEST_ASSERT_EQ(bitmap[0], (1ULL << 3) | (1ULL << 10));
	TEST_ASSERT_EQ(bitmap[1], 1ULL | (1ULL << 63));
	TEST_ASSERT_EQ(mem[64 * 4096 + 8], 65);
	/* Reading the log cleared it; nothing was written since. */
	get_log(vm, bitmap);
	TEST_ASSERT_EQ(bitmap[0], 0);
	TEST_ASSERT_EQ(bitmap[1], 0);
	/* A page written again is reported again. */
	vcpu_restart(vcpu, (void (*)(void))guest_write_pages);
	run_writes(vcpu, second, 1);
	get_log(vm, bitmap);
	TEST_ASSERT_EQ(bitmap[0], 1ULL << 10);
	TEST_ASSERT_EQ(bitmap[1], 0);
	vm_free(vm);
}

TEST(logging_switched_on_later)
{
	static const uint64_t pages[] = { 1, 2 };
	uint64_t bitmap[SLOT_PAGES / 64];
	struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = bitmap };
	struct kvm_vm *vm;
	uint8_t *mem;
	struct kvm_vcpu *vcpu = setup(&vm, &mem, 0);

	/* Without logging there is no log to get. */
	run_writes(vcpu, pages, 2);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), ENOENT);
	/* Turning it on: pages already mapped writable must be caught too. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES, SLOT_GPA,
					SLOT_PAGES * PAGE_SIZE, mem), 0);
	vcpu_restart(vcpu, (void (*)(void))guest_write_pages);
	run_writes(vcpu, pages + 1, 1);
	get_log(vm, bitmap);
	TEST_ASSERT_EQ(bitmap[0], 1ULL << 2);
	TEST_ASSERT_EQ(bitmap[1], 0);
	vm_free(vm);
}

TEST(get_dirty_log_errors)
{
	uint64_t bitmap[SLOT_PAGES / 64];
	struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = bitmap };
	int nr = kvm_check_cap(KVM_CAP_NR_MEMSLOTS);
	struct kvm_vm *vm;
	uint8_t *mem;

	setup(&vm, &mem, KVM_MEM_LOG_DIRTY_PAGES);
	log.slot = 7;		/* no such slot */
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), ENOENT);
	log.slot = nr;		/* beyond the slot ids */
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), EINVAL);
	log.slot = SLOT;
	log.dirty_bitmap = NULL;
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), EFAULT);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, NULL), EFAULT);
	vm_free(vm);
}
