// SPDX-License-Identifier: GPL-2.0
/*
 * VM setup ioctls without a guest running: KVM_SET_BOOT_CPU_ID (which vCPU
 * is reset as the BSP), KVM_ENABLE_CAP(KVM_CAP_MAX_VCPU_ID) (a lower limit
 * on vCPU ids) and KVM_SET/GET_NR_MMU_PAGES (the MMU page budget and its
 * default, which follows the memslots' size).
 */
#include <sys/ioctl.h>
#include <unistd.h>

#include "apic.h"

#define APIC_BASE_BSP	(1ull << 8)

/* vCPUs here are bare fds: nothing runs, and the library's setup would only
 * add state on top of what KVM_CREATE_VCPU leaves.
 */
static int create_vcpu(struct kvm_vm *vm, unsigned long id)
{
	int fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);

	TEST_ASSERT(fd >= 0, "KVM_CREATE_VCPU %lu: %s", id, strerror(errno));
	return fd;
}

static uint64_t fd_get_msr(int fd, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry entry;
	} msrs = { .hdr.nmsrs = 1, .entry.index = index };
	int r = ioctl(fd, KVM_GET_MSRS, &msrs);

	TEST_ASSERT(r == 1, "KVM_GET_MSRS %#x returned %d: %s", index, r, strerror(errno));
	return msrs.entry.data;
}

static uint32_t fd_mp_state(int fd)
{
	struct kvm_mp_state mp;

	TEST_ASSERT(ioctl(fd, KVM_GET_MP_STATE, &mp) == 0, "KVM_GET_MP_STATE: %s",
		    strerror(errno));
	return mp.mp_state;
}

static uint32_t fd_lvt0(int fd)
{
	struct kvm_lapic_state lapic;

	TEST_ASSERT(ioctl(fd, KVM_GET_LAPIC, &lapic) == 0, "KVM_GET_LAPIC: %s",
		    strerror(errno));
	return lapic_reg(&lapic, APIC_LVT0);
}

static uint64_t fd_sregs_apic_base(int fd)
{
	struct kvm_sregs sregs;

	TEST_ASSERT(ioctl(fd, KVM_GET_SREGS, &sregs) == 0, "KVM_GET_SREGS: %s",
		    strerror(errno));
	return sregs.apic_base;
}

static int enable_max_vcpu_id(struct kvm_vm *vm, uint64_t ids, uint32_t flags)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MAX_VCPU_ID, .flags = flags, .args = { ids },
	};

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

static int nr_mmu_pages(struct kvm_vm *vm)
{
	int r = __vm_ioctl(vm, KVM_GET_NR_MMU_PAGES, NULL);

	TEST_ASSERT(r >= 0, "KVM_GET_NR_MMU_PAGES: %s", strerror(errno));
	return r;
}

TEST(boot_cpu_id)
{
	struct kvm_vm *vm = vm_create_irqchip();
	int fd[3];

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_SET_BOOT_CPU_ID), 1);
	vm_ioctl(vm, KVM_SET_BOOT_CPU_ID, (void *)2ul, "KVM_SET_BOOT_CPU_ID");
	/* Until the first vCPU it may change again. */
	vm_ioctl(vm, KVM_SET_BOOT_CPU_ID, (void *)1ul, "KVM_SET_BOOT_CPU_ID");
	vm_ioctl(vm, KVM_SET_BOOT_CPU_ID, (void *)2ul, "KVM_SET_BOOT_CPU_ID");
	for (int i = 0; i < 3; i++)
		fd[i] = create_vcpu(vm, i);

	/* vCPU 2 is reset as the BSP: APIC_BASE.BSP, runnable, LINT0 ExtINT. */
	TEST_ASSERT_EQ(fd_get_msr(fd[2], MSR_APIC_BASE), APIC_GPA | 1u << 11 | APIC_BASE_BSP);
	TEST_ASSERT_EQ(fd_sregs_apic_base(fd[2]), APIC_GPA | 1u << 11 | APIC_BASE_BSP);
	TEST_ASSERT_EQ(fd_mp_state(fd[2]), KVM_MP_STATE_RUNNABLE);
	TEST_ASSERT_EQ(fd_lvt0(fd[2]), 7u << 8);
	/* vCPUs 0 and 1 are APs waiting for INIT, LINT0 masked. */
	for (int i = 0; i < 2; i++) {
		TEST_ASSERT_EQ(fd_get_msr(fd[i], MSR_APIC_BASE), APIC_GPA | 1u << 11);
		TEST_ASSERT_EQ(fd_sregs_apic_base(fd[i]), APIC_GPA | 1u << 11);
		TEST_ASSERT_EQ(fd_mp_state(fd[i]), KVM_MP_STATE_UNINITIALIZED);
		TEST_ASSERT_EQ(fd_lvt0(fd[i]), APIC_LVT_MASKED);
	}

	/* Once a vCPU exists the BSP is fixed, even to the same id. */
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_BOOT_CPU_ID, (void *)0ul), EBUSY);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_BOOT_CPU_ID, (void *)2ul), EBUSY);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
	vm_free(vm);
}

TEST(boot_cpu_id_ebusy_after_one_vcpu)
{
	struct kvm_vm *vm = vm_create_irqchip();
	int fd = create_vcpu(vm, 5);

	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_BOOT_CPU_ID, (void *)5ul), EBUSY);
	/* The default BSP is id 0, so vCPU 5 is an AP. */
	TEST_ASSERT_EQ(fd_get_msr(fd, MSR_APIC_BASE) & APIC_BASE_BSP, 0);
	TEST_ASSERT_EQ(fd_mp_state(fd), KVM_MP_STATE_UNINITIALIZED);
	close(fd);
	vm_free(vm);
}

TEST(max_vcpu_id)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int max = kvm_check_cap(KVM_CAP_MAX_VCPU_ID), fd;

	/* KVM_MAX_VCPU_IDS on 6.1 x86: 1024 vCPUs times 4. */
	TEST_ASSERT_EQ(max, 4096);
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID), 4096);
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, 8, 1), EINVAL);
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, max + 1, 0), EINVAL);
	TEST_ASSERT_EQ(enable_max_vcpu_id(vm, 8, 0), 0);
	/* Set once: the same value again is fine, another is not. */
	TEST_ASSERT_EQ(enable_max_vcpu_id(vm, 8, 0), 0);
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, 16, 0), EINVAL);
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, 4, 0), EINVAL);

	fd = create_vcpu(vm, 7);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 8), EINVAL);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 100), EINVAL);
	/* After vCPUs exist, the same rules. */
	TEST_ASSERT_EQ(enable_max_vcpu_id(vm, 8, 0), 0);
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, 16, 0), EINVAL);
	close(fd);
	vm_free(vm);
}

TEST(max_vcpu_id_zero_and_full)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int fd;

	/* 0 is the "not set" value: accepted, and the limit stays open. */
	TEST_ASSERT_EQ(enable_max_vcpu_id(vm, 0, 0), 0);
	TEST_ASSERT_EQ(enable_max_vcpu_id(vm, 4096, 0), 0);
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, 8, 0), EINVAL);
	fd = create_vcpu(vm, 4095);
	close(fd);
	vm_free(vm);
}

TEST(max_vcpu_id_after_vcpu)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int fd = create_vcpu(vm, 3);

	/*
	 * The first vCPU fixes an unset limit at KVM_MAX_VCPU_IDS (6.1's
	 * kvm_arch_vcpu_precreate()), so only that value is accepted after it.
	 */
	TEST_ASSERT_ERRNO(enable_max_vcpu_id(vm, 8, 0), EINVAL);
	TEST_ASSERT_EQ(enable_max_vcpu_id(vm, 4096, 0), 0);
	close(fd);
	vm_free(vm);
}

TEST(nr_mmu_pages_set_get)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_MMU_SHADOW_CACHE_CONTROL), 1);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_NR_MMU_PAGES, (void *)63ul), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_NR_MMU_PAGES, (void *)0ul), EINVAL);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_SET_NR_MMU_PAGES, (void *)64ul), 0);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 64);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_SET_NR_MMU_PAGES, (void *)1000ul), 0);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 1000);
	/* A value userspace chose survives memslot changes. */
	vm_add_memslot(vm, 1, 0, 0x10000000, 64 << 20);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 1000);
	vm_delete_memslot(vm, 1);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 1000);
	vm_free(vm);
}

TEST(nr_mmu_pages_default)
{
	struct kvm_vm *vm = calloc(1, sizeof(*vm));

	TEST_ASSERT(vm, "out of memory");
	vm->kvm_fd = open_kvm();
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	TEST_ASSERT(vm->fd >= 0, "KVM_CREATE_VM: %s", strerror(errno));

	/* No memslot yet: no budget. */
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 0);
	/* Then 20 pages per 1000 of guest memory (16384 pages: 327), at least 64. */
	vm_add_memslot(vm, 0, 0, 0, 64 << 20);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 327);
	vm_add_memslot(vm, 1, 0, 0x10000000, 64 << 20);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 655);
	/* Moving a slot changes nothing. */
	vm_move_memslot(vm, 1, 0x20000000);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 655);
	vm_delete_memslot(vm, 1);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 327);
	/*
	 * KVM recomputes the default when a slot is created or deleted and
	 * never returns to "no budget": with no slot left it is the minimum.
	 */
	vm_delete_memslot(vm, 0);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 64);
	vm_add_memslot(vm, 2, 0, 0, 1 << 20);
	TEST_ASSERT_EQ(nr_mmu_pages(vm), 64);
	vm_free(vm);
}
