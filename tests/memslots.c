// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_SET_USER_MEMORY_REGION: adding, moving, deleting and resizing slots,
 * the errno of bad requests, and what the guest sees through them.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"

#define SLOT1_GPA 0x10000000ULL		/* 256 MiB, identity-mapped in the guest */
#define SLOT1_SIZE (2ULL << 20)
#define MOVED_GPA 0x20000000ULL

/* Reads the word at @addr, reports it, then writes @addr+8. */
static void guest_read_write(uint64_t addr)
{
	volatile uint64_t *p = (volatile uint64_t *)addr;

	GUEST_SYNC_ARGS(1, p[0], 0, 0);
	p[1] = 0xfeedface12345678ULL;
	GUEST_SYNC(2);
}

TEST(guest_and_host_share_data)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_write);
	uint64_t *mem = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	struct ucall uc;

	mem[0] = 0x0123456789abcdefULL;
	vcpu_args_set(vcpu, 1, SLOT1_GPA);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x0123456789abcdefULL);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(mem[1], 0xfeedface12345678ULL);
	vm_free(vm);
}

/* Reads @a, then @b, reporting each; an access outside memory exits as MMIO. */
static void guest_read_two(uint64_t a, uint64_t b)
{
	GUEST_SYNC_ARGS(1, *(volatile uint64_t *)a, 0, 0);
	GUEST_SYNC_ARGS(2, *(volatile uint64_t *)b, 0, 0);
}

TEST(move_slot)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_two);
	uint64_t *mem = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	struct ucall uc;

	mem[0] = 0x1111;
	vcpu_args_set(vcpu, 2, SLOT1_GPA, MOVED_GPA);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x1111);

	/* After the move the same host memory appears at the new address. */
	mem[0] = 0x2222;
	vm_move_memslot(vm, 1, MOVED_GPA);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x2222);
	vm_free(vm);
}

TEST(old_address_after_move_is_mmio)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_two);
	struct ucall uc;

	vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	vcpu_args_set(vcpu, 2, SLOT1_GPA, SLOT1_GPA);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vm_move_memslot(vm, 1, MOVED_GPA);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(vcpu->run->mmio.phys_addr, SLOT1_GPA);
	TEST_ASSERT_EQ(vcpu->run->mmio.is_write, 0);
	TEST_ASSERT_EQ(vcpu->run->mmio.len, 8);
	vm_free(vm);
}

TEST(delete_slot_then_access_is_mmio)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_two);
	uint64_t *mem = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	struct ucall uc;

	mem[0x100] = 0x3333;
	vcpu_args_set(vcpu, 2, SLOT1_GPA + 0x800, SLOT1_GPA + 0x800);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x3333);
	vm_delete_memslot(vm, 1);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(vcpu->run->mmio.phys_addr, SLOT1_GPA + 0x800);
	/* Complete the read with a value of our own: the guest must see it. */
	*(uint64_t *)vcpu->run->mmio.data = 0x4444;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x4444);
	vm_free(vm);
}

TEST(resize_existing_slot_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	char *mem = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);

	/* An existing slot keeps its size and host address (api.rst 4.35). */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE * 2, mem), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE / 2, mem), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE / 2, mem + PAGE_SIZE),
			  EINVAL);
	/* Setting it again unchanged is a no-op. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE, mem), 0);
	vm_free(vm);
}

TEST(resize_by_delete_and_recreate)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_two);
	uint64_t *big;
	struct ucall uc;

	vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	vm_delete_memslot(vm, 1);
	big = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE * 2);
	/* The last word of the larger slot is guest memory now. */
	big[SLOT1_SIZE * 2 / 8 - 1] = 0x5555;
	vcpu_args_set(vcpu, 2, SLOT1_GPA + 2 * SLOT1_SIZE - 8, SLOT1_GPA + 2 * SLOT1_SIZE - 8);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x5555);
	vm_free(vm);
}

TEST(overlap_eexist)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	char *mem = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	char *other = vm_add_memslot(vm, 2, 0, MOVED_GPA, SLOT1_SIZE);

	/* New slots overlapping slot 0 (at 0) or slot 1, partially or fully. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 3, 0, 0, PAGE_SIZE, other), EEXIST);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 3, 0, SLOT1_GPA + SLOT1_SIZE - PAGE_SIZE,
					   2 * PAGE_SIZE, other), EEXIST);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 3, 0, SLOT1_GPA - PAGE_SIZE, 2 * PAGE_SIZE,
					   other), EEXIST);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 3, 0, SLOT1_GPA - PAGE_SIZE, 4 * SLOT1_SIZE,
					   other), EEXIST);
	/* Moving slot 2 onto slot 1. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 2, 0, SLOT1_GPA + PAGE_SIZE, SLOT1_SIZE, other),
			  EEXIST);
	/* Adjacent is fine. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 3, 0, SLOT1_GPA + SLOT1_SIZE, PAGE_SIZE, mem), 0);
	vm_free(vm);
}

TEST(misaligned_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	char *mem = mmap(NULL, SLOT1_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);

	TEST_ASSERT(mem != MAP_FAILED, "mmap");
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA + 0x10, SLOT1_SIZE, mem), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE - 1, mem), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE, mem + 8), EINVAL);
	/* A GPA range that wraps around. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, ~0ULL & ~(PAGE_SIZE - 1), SLOT1_SIZE, mem),
			  EINVAL);
	/* Host memory in the kernel's half of the address space. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE,
					   (void *)0xffff888000000000ULL), EINVAL);
	munmap(mem, SLOT1_SIZE);
	vm_free(vm);
}

TEST(bad_flags_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	char *mem = vm_add_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE);
	char *ro = vm_add_memslot(vm, 2, KVM_MEM_READONLY, MOVED_GPA, SLOT1_SIZE);

	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 3, 1u << 7, 0x30000000, PAGE_SIZE, mem), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 3, 0x80000000, 0x30000000, PAGE_SIZE, mem),
			  EINVAL);
	/* The read-only flag of an existing slot cannot change, either way. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, KVM_MEM_READONLY, SLOT1_GPA, SLOT1_SIZE, mem),
			  EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 2, 0, MOVED_GPA, SLOT1_SIZE, ro), EINVAL);
	/* Dirty logging can be switched on and off. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, KVM_MEM_LOG_DIRTY_PAGES, SLOT1_GPA, SLOT1_SIZE,
					mem), 0);
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, 0, SLOT1_GPA, SLOT1_SIZE, mem), 0);
	vm_free(vm);
}

TEST(slot_id_limit)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	int nr = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);
	char *mem = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(mem != MAP_FAILED && nr > 0, "mmap, NR_MEMSLOTS %d", nr);
	/* Ids count from 0: NR_MEMSLOTS - 1 is the last usable one. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, nr - 1, 0, 0x40000000, PAGE_SIZE, mem), 0);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, nr, 0, 0x40001000, PAGE_SIZE, mem), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 0xffff, 0, 0x40001000, PAGE_SIZE, mem), EINVAL);
	TEST_ASSERT_EQ(__vm_set_memslot(vm, nr - 1, 0, 0x40000000, 0, mem), 0);
	munmap(mem, 2 * PAGE_SIZE);
	vm_free(vm);
}

TEST(many_slots_each_visible)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_two);
	struct ucall uc;
	enum { N = 64 };

	for (int i = 0; i < N; i++) {
		uint64_t *p = vm_add_memslot(vm, 10 + i, 0, 0x50000000 + i * 2 * PAGE_SIZE,
					     PAGE_SIZE);
		p[0] = 0xabc0000 + i;
	}
	for (int i = 0; i < N; i += 9) {
		/* Start guest_read_two afresh on a pair of slots, first and last inwards. */
		vcpu_restart(vcpu, (void (*)(void))guest_read_two);
		vcpu_args_set(vcpu, 2, 0x50000000 + i * 2 * PAGE_SIZE,
			      0x50000000 + (N - 1 - i) * 2 * PAGE_SIZE);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], 0xabc0000 + i);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], 0xabc0000 + N - 1 - i);
	}
	vm_free(vm);
}

TEST(delete_nonexistent_slot_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);

	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 7, 0, SLOT1_GPA, 0, NULL), EINVAL);
	vm_free(vm);
}

/* Reads the first word, then writes it; reports the value read each time. */
static void guest_readonly(uint64_t addr)
{
	volatile uint64_t *p = (volatile uint64_t *)addr;

	GUEST_SYNC_ARGS(1, p[0], 0, 0);
	p[0] = 0x7777;
	GUEST_SYNC_ARGS(2, p[0], 0, 0);
}

TEST(readonly_slot_write_is_mmio)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_readonly);
	uint64_t *mem = vm_add_memslot(vm, 1, KVM_MEM_READONLY, SLOT1_GPA, SLOT1_SIZE);
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	mem[4] = 0x6666;
	vcpu_args_set(vcpu, 1, SLOT1_GPA + 32);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x6666);
	/* The write leaves as MMIO with its data; memory is unchanged. */
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(run->mmio.phys_addr, SLOT1_GPA + 32);
	TEST_ASSERT_EQ(run->mmio.is_write, 1);
	TEST_ASSERT_EQ(run->mmio.len, 8);
	TEST_ASSERT_EQ(*(uint64_t *)run->mmio.data, 0x7777);
	TEST_ASSERT_EQ(mem[4], 0x6666);
	/* The guest goes on and still reads the old value. */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x6666);
	vm_free(vm);
}
