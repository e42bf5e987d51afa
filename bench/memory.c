// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory costs, for make bench: first-touch fault-in of 1 GiB, touching
 * it again after the slot was deleted and added back, and the host memory a
 * VM and a vCPU cost.  Prints "# BENCH metric unit value" lines.
 */
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"

#define BIG_GPA (1ULL << 32)		/* above the identity map's 4 GiB */
#define BIG_SIZE (1ULL << 30)
#define BIG_GVA 0x200000000ULL

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Writes one byte in every 4 KiB page of the big slot. */
static void guest_touch_all(void)
{
	for (;;) {
		for (uint64_t off = 0; off < BIG_SIZE; off += 4096)
			*(volatile uint8_t *)(BIG_GVA + off) = 1;
		GUEST_SYNC(1);
	}
}

static uint64_t timed_pass(struct kvm_vcpu *vcpu)
{
	struct ucall uc;
	uint64_t t0 = now_ns();

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	return now_ns() - t0;
}

TEST_TIMEOUT(fault_in_1g, 900)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_touch_all);
	void *mem;

	/* The guest reaches the slot through 1 GiB of its own 2 MiB pages. */
	for (uint64_t off = 0; off < BIG_SIZE; off += PG_SIZE_2M)
		TEST_ASSERT_EQ(pgtable_map(&vm->pt, BIG_GVA + off, BIG_GPA + off, PG_SIZE_2M,
					   PTE_RW), 0);
	mem = vm_add_memslot(vm, 1, 0, BIG_GPA, BIG_SIZE);
	test_log("BENCH fault_in_1g ms %llu", (unsigned long long)(timed_pass(vcpu) / 1000000));
	/* Delete and re-add the same memory: host pages exist, guest mappings do not. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, 0, BIG_GPA, 0, mem), 0);
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, 0, BIG_GPA, BIG_SIZE, mem), 0);
	test_log("BENCH retouch_1g_after_readd ms %llu",
		 (unsigned long long)(timed_pass(vcpu) / 1000000));
	vm_free(vm);
}

/*
 * Memory in use, from MemFree after dropping clean caches, so that page-cache
 * growth (binaries read over 9p) does not count.
 */
static long mem_used_kb(void)
{
	char line[128];
	long total = 0, free_kb = 0;
	FILE *f = fopen("/proc/sys/vm/drop_caches", "w");

	if (f) {
		fputs("3\n", f);
		fclose(f);
	}
	f = fopen("/proc/meminfo", "r");
	TEST_ASSERT(f, "/proc/meminfo");
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "MemTotal: %ld kB", &total);
		sscanf(line, "MemFree: %ld kB", &free_kb);
	}
	fclose(f);
	return total - free_kb;
}

TEST(host_memory_per_vm_and_vcpu)
{
	enum { N = 1024 };	/* many, so per-CPU page caches do not hide the cost */
	int kvm = open_kvm(), vms[N], vm, vcpus[N];
	struct rlimit rl = { 2 * N + 64, 2 * N + 64 };

	setrlimit(RLIMIT_NOFILE, &rl);
	long before, after;

	before = mem_used_kb();
	for (int i = 0; i < N; i++) {
		vms[i] = ioctl(kvm, KVM_CREATE_VM, 0);
		TEST_ASSERT(vms[i] >= 0, "KVM_CREATE_VM");
	}
	after = mem_used_kb();
	test_log("BENCH host_mem_per_vm KiB %ld", (after - before) / N);
	for (int i = 0; i < N; i++)
		close(vms[i]);

	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	before = mem_used_kb();
	for (int i = 0; i < N; i++) {
		vcpus[i] = ioctl(vm, KVM_CREATE_VCPU, i);
		TEST_ASSERT(vcpus[i] >= 0, "KVM_CREATE_VCPU");
	}
	after = mem_used_kb();
	test_log("BENCH host_mem_per_vcpu KiB %ld", (after - before) / N);
	for (int i = 0; i < N; i++)
		close(vcpus[i]);
	close(vm);
	close(kvm);
}
