// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 and KVM_CLEAR_DIRTY_LOG (api.rst 4.117
 * and 7.18): with MANUAL_PROTECT_ENABLE, KVM_GET_DIRTY_LOG only reads the
 * log and KVM_CLEAR_DIRTY_LOG clears the given bits and write-protects
 * those pages again; INITIALLY_SET starts a slot's log with every page
 * dirty.  The slot has 200 pages, so its last bitmap word is partial and a
 * range of 8 or 72 pages can end exactly at the slot's end.
 */
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "kvm_util.h"

#define SLOT 1
#define SLOT_GPA 0x10000000ULL
#define SLOT_PAGES 200
#define WORDS ((SLOT_PAGES + 63) / 64)
#define READ_PAGE 5		/* read by the guest each round, never written */
#define MANUAL KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
#define INIT_SET KVM_DIRTY_LOG_INITIALLY_SET

/*
 * Each round: writes one byte to each page listed in list[1..list[0]]
 * (page numbers in the slot), reads READ_PAGE, and reports.
 */
static void guest_code(uint64_t list)
{
	for (;;) {
		volatile uint64_t *l = (volatile uint64_t *)list;

		for (uint64_t i = 1; i <= l[0]; i++)
			*(volatile uint8_t *)(SLOT_GPA + l[i] * PAGE_SIZE + 8) += 1;
		(void)*(volatile uint64_t *)(SLOT_GPA + READ_PAGE * PAGE_SIZE);
		GUEST_SYNC(1);
	}
}

struct ctx {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	uint8_t *mem;		/* the slot's host memory */
	uint64_t *list;		/* host view of the guest's page list */
};

static int enable_manual(struct kvm_vm *vm, uint64_t flags, uint64_t args0)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		.flags = flags,
		.args = { args0 },
	};

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

/* A VM with one vCPU running guest_code; @caps enabled first unless -1. */
static void setup(struct ctx *t, int64_t caps, uint32_t slot_flags)
{
	uint64_t list_gpa;

	t->vm = vm_create(VM_MODE_LONG64);
	if (caps >= 0)
		TEST_ASSERT_EQ(enable_manual(t->vm, 0, caps), 0);
	t->vcpu = vm_vcpu_add(t->vm, 0, (void (*)(void))guest_code);
	t->mem = vm_add_memslot(t->vm, SLOT, slot_flags, SLOT_GPA, SLOT_PAGES * PAGE_SIZE);
	list_gpa = vm_alloc_pages(t->vm, 1);
	t->list = gpa2hva(t->vm, list_gpa);
	vcpu_args_set(t->vcpu, 1, list_gpa);
}

/* One guest round writing the @n pages given. */
static void guest_write(struct ctx *t, int n, ...)
{
	struct ucall uc;
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		t->list[1 + i] = va_arg(ap, int);
	va_end(ap);
	t->list[0] = n;
	TEST_ASSERT_EQ(vcpu_run_ucall(t->vcpu, &uc), UCALL_SYNC);
}

static void set_bit64(uint64_t *bm, unsigned int bit)
{
	bm[bit / 64] |= 1ULL << (bit % 64);
}

/* KVM_GET_DIRTY_LOG must show exactly the @n pages given. */
static void expect_dirty(struct ctx *t, int n, ...)
{
	uint64_t got[WORDS], want[WORDS] = { 0 };
	struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = got };
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		set_bit64(want, va_arg(ap, int));
	va_end(ap);
	memset(got, 0xaa, sizeof(got));
	vm_ioctl(t->vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
	for (int w = 0; w < WORDS; w++)
		TEST_ASSERT(got[w] == want[w], "dirty word %d: %#" PRIx64 ", want %#" PRIx64,
			    w, got[w], want[w]);
}

static int clear_log(struct kvm_vm *vm, uint32_t slot, uint64_t first, uint32_t num,
		     void *bitmap)
{
	struct kvm_clear_dirty_log c = {
		.slot = slot, .first_page = first, .num_pages = num, .dirty_bitmap = bitmap,
	};

	return __vm_ioctl(vm, KVM_CLEAR_DIRTY_LOG, &c);
}

TEST(cap_value_and_enable_errors)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2), MANUAL | INIT_SET);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_CHECK_EXTENSION,
				  (void *)(long)KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2),
		       MANUAL | INIT_SET);
	/* The first version of the capability is not offered any more. */
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT), 0);

	TEST_ASSERT_ERRNO(enable_manual(vm, 1, MANUAL), EINVAL);
	TEST_ASSERT_ERRNO(enable_manual(vm, 0, 4), EINVAL);
	TEST_ASSERT_ERRNO(enable_manual(vm, 0, MANUAL | 4), EINVAL);
	/* INITIALLY_SET is allowed only together with MANUAL_PROTECT_ENABLE. */
	TEST_ASSERT_ERRNO(enable_manual(vm, 0, INIT_SET), EINVAL);
	TEST_ASSERT_EQ(enable_manual(vm, 0, MANUAL), 0);
	TEST_ASSERT_EQ(enable_manual(vm, 0, MANUAL | INIT_SET), 0);
	TEST_ASSERT_EQ(enable_manual(vm, 0, 0), 0);
	vm_free(vm);
}

TEST(manual_protect_clear_rearms)
{
	enum { A = 3, B = 70, UNTOUCHED = 130 };
	uint64_t bm[WORDS] = { 0 };
	struct ctx t;

	setup(&t, MANUAL, KVM_MEM_LOG_DIRTY_PAGES);
	guest_write(&t, 2, A, B);
	TEST_ASSERT_EQ(t.mem[A * PAGE_SIZE + 8], 1);
	expect_dirty(&t, 2, A, B);
	/* Getting the log no longer clears it. */
	expect_dirty(&t, 2, A, B);
	set_bit64(bm, A);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, SLOT_PAGES, bm), 0);
	expect_dirty(&t, 1, B);
	/* The clear write-protected A again: the next write is caught. */
	guest_write(&t, 1, A);
	expect_dirty(&t, 2, A, B);
	/* Clearing everything, then writing B only. */
	memset(bm, 0xff, sizeof(bm));
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, SLOT_PAGES, bm), 0);
	expect_dirty(&t, 0);
	guest_write(&t, 1, B);
	expect_dirty(&t, 1, B);
	TEST_ASSERT_EQ(t.mem[UNTOUCHED * PAGE_SIZE + 8], 0);
	vm_free(t.vm);
}

/* The bitmap's bit 0 is first_page; pages outside the range are left alone. */
TEST(clear_range_is_relative)
{
	uint64_t bm[WORDS] = { 0 };
	struct ctx t;

	setup(&t, MANUAL, KVM_MEM_LOG_DIRTY_PAGES);
	guest_write(&t, 4, 10, 70, 130, 195);
	expect_dirty(&t, 4, 10, 70, 130, 195);
	memset(bm, 0xff, sizeof(bm));
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 64, 64, bm), 0);
	expect_dirty(&t, 3, 10, 130, 195);
	/* 72 pages from 128 end exactly at the slot's end. */
	memset(bm, 0, sizeof(bm));
	set_bit64(bm, 130 - 128);
	set_bit64(bm, 195 - 128);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 128, 72, bm), 0);
	expect_dirty(&t, 1, 10);
	guest_write(&t, 2, 70, 195);
	expect_dirty(&t, 3, 10, 70, 195);
	vm_free(t.vm);
}

TEST(initially_set)
{
	enum { A = 1, B = 150 };
	uint64_t bm[WORDS];
	struct ctx t;

	setup(&t, MANUAL | INIT_SET, 0);
	/* A is mapped writable before logging starts. */
	guest_write(&t, 1, A);
	TEST_ASSERT_EQ(__vm_set_memslot(t.vm, SLOT, KVM_MEM_LOG_DIRTY_PAGES, SLOT_GPA,
					SLOT_PAGES * PAGE_SIZE, t.mem), 0);
	/* Every page of the slot, and nothing past its end. */
	memset(bm, 0, sizeof(bm));
	{
		struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = bm };

		vm_ioctl(t.vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
		for (int w = 0; w < SLOT_PAGES / 64; w++)
			TEST_ASSERT_EQ(bm[w], ~0ULL);
		TEST_ASSERT_EQ(bm[WORDS - 1], (1ULL << (SLOT_PAGES % 64)) - 1);
	}
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, SLOT_PAGES, bm), 0);
	expect_dirty(&t, 0);
	/* The clear write-protected A, mapped writable before. */
	guest_write(&t, 2, A, B);
	expect_dirty(&t, 2, A, B);
	/* A slot created with logging on starts all dirty too. */
	vm_add_memslot(t.vm, 2, KVM_MEM_LOG_DIRTY_PAGES, 0x20000000, 64 * PAGE_SIZE);
	{
		struct kvm_dirty_log log = { .slot = 2, .dirty_bitmap = bm };

		bm[0] = 0;
		vm_ioctl(t.vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
		TEST_ASSERT_EQ(bm[0], ~0ULL);
	}
	vm_free(t.vm);
}

TEST(clear_errors)
{
	uint64_t bm[WORDS];
	struct ctx t;
	void *gone;

	setup(&t, MANUAL, KVM_MEM_LOG_DIRTY_PAGES);
	vm_add_memslot(t.vm, 2, 0, 0x20000000, SLOT_PAGES * PAGE_SIZE);
	memset(bm, 0, sizeof(bm));

	/* first_page must be a multiple of 64, whatever the slot. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 1, 64, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 32, 64, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, 7, 1, 64, bm), EINVAL);
	/* The range must lie inside the slot. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 0, SLOT_PAGES + 1, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 64, SLOT_PAGES, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 256, 0, bm), EINVAL);
	/* num_pages a multiple of 64 unless the range reaches the slot's end. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 0, 63, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 64, 100, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 128, 8, bm), EINVAL);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 192, 8, bm), 0);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 128, 72, bm), 0);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, SLOT_PAGES, bm), 0);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, 128, bm), 0);
	/* An empty range reads no bitmap, even at the slot's end. */
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, 0, NULL), 0);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 192, 0, NULL), 0);
	/* No log: a slot that does not log, or no slot at all. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, 2, 0, 64, bm), ENOENT);
	TEST_ASSERT_ERRNO(clear_log(t.vm, 7, 0, 64, bm), ENOENT);
	TEST_ASSERT_ERRNO(clear_log(t.vm, 32763, 0, 64, bm), ENOENT);
	/* Slot ids from KVM_USER_MEM_SLOTS (32764 on x86) on. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, 32764, 0, 64, bm), EINVAL);
	TEST_ASSERT_ERRNO(clear_log(t.vm, 0xffff, 0, 64, bm), EINVAL);
	/* The bitmap and the argument must be readable. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 0, SLOT_PAGES, NULL), EFAULT);
	gone = mmap(NULL, PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(gone != MAP_FAILED, "mmap: %s", strerror(errno));
	munmap(gone, PAGE_SIZE);
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 64, 64, gone), EFAULT);
	/* A bad range is found before the bitmap is read. */
	TEST_ASSERT_ERRNO(clear_log(t.vm, SLOT, 0, 63, NULL), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(t.vm, KVM_CLEAR_DIRTY_LOG, NULL), EFAULT);
	vm_free(t.vm);
}

/* Without the capability, KVM_GET_DIRTY_LOG clears, and KVM_CLEAR_DIRTY_LOG works too. */
TEST(without_cap)
{
	enum { A = 20, B = 100 };
	uint64_t bm[WORDS] = { 0 };
	struct ctx t;

	setup(&t, -1, KVM_MEM_LOG_DIRTY_PAGES);
	guest_write(&t, 2, A, B);
	expect_dirty(&t, 2, A, B);
	expect_dirty(&t, 0);
	guest_write(&t, 2, A, B);
	set_bit64(bm, A);
	TEST_ASSERT_EQ(clear_log(t.vm, SLOT, 0, SLOT_PAGES, bm), 0);
	expect_dirty(&t, 1, B);
	guest_write(&t, 1, A);
	expect_dirty(&t, 1, A);
	vm_free(t.vm);
}

/* args[0] = 0 turns manual protection off again: getting the log clears it. */
TEST(cap_disabled_again)
{
	enum { A = 40 };
	struct ctx t;

	setup(&t, MANUAL, KVM_MEM_LOG_DIRTY_PAGES);
	guest_write(&t, 1, A);
	expect_dirty(&t, 1, A);
	expect_dirty(&t, 1, A);
	TEST_ASSERT_EQ(enable_manual(t.vm, 0, 0), 0);
	expect_dirty(&t, 1, A);
	expect_dirty(&t, 0);
	guest_write(&t, 1, A);
	expect_dirty(&t, 1, A);
	vm_free(t.vm);
}
