// SPDX-License-Identifier: GPL-2.0
/*
 * Bad user pointers and sizes get an errno, never a crash.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"

/* An address that is certainly not mapped in this process. */
static void *unmapped_page(void)
{
	void *p = mmap(NULL, PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap");
	munmap(p, PAGE_SIZE);
	return p;
}

TEST(system_ioctls_bad_pointer_efault)
{
	int kvm = open_kvm();
	void *bad = unmapped_page();

	TEST_ASSERT_ERRNO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, bad), EFAULT);
	TEST_ASSERT_ERRNO(ioctl(kvm, KVM_GET_MSR_INDEX_LIST, bad), EFAULT);
	close(kvm);
}

TEST(vm_ioctls_bad_pointer_efault)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	void *bad = unmapped_page();

	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, bad), EFAULT);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, bad), EFAULT);
	vm_free(vm);
}

TEST(vcpu_ioctls_bad_pointer_efault)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	void *bad = unmapped_page();
	const unsigned long cmds[] = {
		KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS,
		KVM_GET_MSRS, KVM_SET_MSRS, KVM_SET_CPUID2, KVM_GET_CPUID2,
	};

	for (unsigned int i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int r = ioctl(vcpu->fd, cmds[i], bad);

		TEST_ASSERT(r == -1 && errno == EFAULT, "ioctl %#lx: returned %d errno %d",
			    cmds[i], r, errno);
	}
	vm_free(vm);
}

/* A struct whose header is readable but whose array runs into a hole. */
TEST(cpuid_entries_past_mapping_efault)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	char *two = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_cpuid2 *c = (struct kvm_cpuid2 *)(two + PAGE_SIZE - sizeof(*c));

	TEST_ASSERT(two != MAP_FAILED, "mmap");
	munmap(two + PAGE_SIZE, PAGE_SIZE);
	c->nent = 4;
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_CPUID2, c), EFAULT);
	vm_free(vm);
}

TEST(too_many_entries_e2big)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 300 * sizeof(c->entries[0]));
	struct kvm_msrs *m = calloc(1, sizeof(*m) + 300 * sizeof(m->entries[0]));

	/* KVM_MAX_CPUID_ENTRIES is 256 and MAX_IO_MSRS 256 in KVM. */
	c->nent = 257;
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_CPUID2, c), E2BIG);
	m->nmsrs = 256;
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_GET_MSRS, m), E2BIG);
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_MSRS, m), E2BIG);
	free(c);
	free(m);
	vm_free(vm);
}

TEST(unknown_msr_stops_the_batch)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[3];
	} m = {
		.hdr.nmsrs = 3,
		.e = { { .index = 0x174, .data = 0x10 },	/* SYSENTER_CS */
		       { .index = 0xdeadbeef, .data = 1 },
		       { .index = 0x175, .data = 0x20 } },	/* SYSENTER_ESP */
	};

	/* KVM_SET/GET_MSRS return how many MSRs were processed before the first failure. */
	TEST_ASSERT_EQ(ioctl(vcpu->fd, KVM_SET_MSRS, &m), 1);
	TEST_ASSERT_EQ(ioctl(vcpu->fd, KVM_GET_MSRS, &m), 1);
	TEST_ASSERT_EQ(m.e[0].data, 0x10);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, 0x175), 0);
	vm_free(vm);
}

static void guest_touch(void)
{
	*(volatile uint64_t *)0x20000000 = 1;
}

/* A slot whose host memory was unmapped: KVM_RUN fails with EFAULT, not a crash. */
TEST(slot_backed_by_nothing_efault)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_touch);
	void *hva = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);

	TEST_ASSERT(hva != MAP_FAILED, "mmap");
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, 0, 0x20000000, 2 << 20, hva), 0);
	munmap(hva, 2 << 20);
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EFAULT);
	vm_free(vm);
}

/* KVM_RUN takes no argument; a non-zero one is refused. */
TEST(kvm_run_with_argument_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);

	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_RUN, 1), EINVAL);
	vm_free(vm);
}

TEST(signal_mask_bad_length_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	struct {
		struct kvm_signal_mask hdr;
		uint64_t set[2];
	} mask = { .hdr.len = 16 };

	/* The kernel's sigset is 8 bytes on x86-64: any other length is refused. */
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, &mask), EINVAL);
	mask.hdr.len = 4;
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, &mask), EINVAL);
	mask.hdr.len = 8;
	TEST_ASSERT_EQ(ioctl(vcpu->fd, KVM_SET_SIGNAL_MASK, &mask), 0);
	vm_free(vm);
}

static void guest_mmio_read(void)
{
	uint64_t v = *(volatile uint16_t *)0xc0000000ULL;

	GUEST_SYNC_ARGS(1, v, 0, 0);
}

/*
 * kvm_run is shared with userspace, which may scribble on the MMIO exit's
 * length and address before resuming: only the data may be taken from it.
 */
TEST(mmio_exit_fields_tampered)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_mmio_read);
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(run->mmio.len, 2);
	memset(run->mmio.data, 0x5a, sizeof(run->mmio.data));
	run->mmio.len = 0xff;
	run->mmio.phys_addr = 0x1000;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x5a5a);
	vm_free(vm);
}
