// SPDX-License-Identifier: GPL-2.0
/*
 * System ioctls on /dev/kvm: API version, capabilities, sizes, the supported
 * CPUID and MSR lists, and unknown ioctls.
 */
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_util.h"

TEST(api_version_is_12)
{
	int kvm = open_kvm();

	TEST_ASSERT_EQ(ioctl(kvm, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	TEST_ASSERT_EQ(KVM_API_VERSION, 12);
	close(kvm);
}

/* Every capability the suite and the library rely on. */
static const struct {
	long cap;
	const char *name;
} needed_caps[] = {
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
	{ KVM_CAP_DESTROY_MEMORY_REGION_WORKS, "DESTROY_MEMORY_REGION_WORKS" },
	{ KVM_CAP_JOIN_MEMORY_REGIONS_WORKS, "JOIN_MEMORY_REGIONS_WORKS" },
	{ KVM_CAP_READONLY_MEM, "READONLY_MEM" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR" },
	{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
	{ KVM_CAP_NR_VCPUS, "NR_VCPUS" },
	{ KVM_CAP_MAX_VCPUS, "MAX_VCPUS" },
	{ KVM_CAP_MAX_VCPU_ID, "MAX_VCPU_ID" },
	{ KVM_CAP_NR_MEMSLOTS, "NR_MEMSLOTS" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
	{ KVM_CAP_HLT, "HLT" },
	{ KVM_CAP_CHECK_EXTENSION_VM, "CHECK_EXTENSION_VM" },
};

TEST(check_extension_needed_caps)
{
	int kvm = open_kvm();

	for (unsigned int i = 0; i < sizeof(needed_caps) / sizeof(needed_caps[0]); i++) {
		int r = ioctl(kvm, KVM_CHECK_EXTENSION, needed_caps[i].cap);

		TEST_ASSERT(r > 0, "KVM_CAP_%s: KVM_CHECK_EXTENSION returned %d",
			    needed_caps[i].name, r);
	}
	close(kvm);
}

TEST(check_extension_limits)
{
	int kvm = open_kvm();
	int nr_vcpus = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	int max_vcpus = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	int max_id = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);
	int slots = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS);

	/* api.rst 4.4: NR_VCPUS is the recommended and MAX_VCPUS the hard limit. */
	TEST_ASSERT(nr_vcpus >= 1 && nr_vcpus <= max_vcpus, "NR_VCPUS %d MAX_VCPUS %d",
		    nr_vcpus, max_vcpus);
	TEST_ASSERT(max_id >= max_vcpus, "MAX_VCPU_ID %d < MAX_VCPUS %d", max_id, max_vcpus);
	/* QEMU needs well over 32 slots for a PC with option ROMs and PCI BARs. */
	TEST_ASSERT(slots >= 32, "NR_MEMSLOTS %d", slots);
	close(kvm);
}

TEST(check_extension_unknown_is_zero)
{
	int kvm = open_kvm();

	TEST_ASSERT_EQ(ioctl(kvm, KVM_CHECK_EXTENSION, 0x7fffffff), 0);
	TEST_ASSERT_EQ(ioctl(kvm, KVM_CHECK_EXTENSION, -1L), 0);
	close(kvm);
}

TEST(check_extension_on_vm_fd_matches)
{
	int kvm = open_kvm();
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);

	TEST_ASSERT(vm >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	for (unsigned int i = 0; i < sizeof(needed_caps) / sizeof(needed_caps[0]); i++)
		TEST_ASSERT_EQ(ioctl(vm, KVM_CHECK_EXTENSION, needed_caps[i].cap),
			       ioctl(kvm, KVM_CHECK_EXTENSION, needed_caps[i].cap));
	close(vm);
	close(kvm);
}

TEST(vcpu_mmap_size)
{
	int kvm = open_kvm();
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);

	/* kvm_run, then the PIO data page at KVM_PIO_PAGE_OFFSET. */
	TEST_ASSERT(size >= (int)((KVM_PIO_PAGE_OFFSET + 1) * PAGE_SIZE),
		    "mmap size %d", size);
	TEST_ASSERT(size % PAGE_SIZE == 0, "mmap size %d not page-sized", size);
	TEST_ASSERT(sizeof(struct kvm_run) <= PAGE_SIZE, "kvm_run fits a page");
	close(kvm);
}

static void host_cpuid(uint32_t fn, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(fn), "c"(0));
}

TEST(supported_cpuid)
{
	int kvm = open_kvm();
	struct kvm_cpuid2 *small = calloc(1, sizeof(*small) + sizeof(small->entries[0]));
	struct kvm_cpuid2 *c;
	struct kvm_cpuid_entry2 *leaf0, *ext0, *leaf1;

	uint32_t a, b, cx, d;

	small->nent = 1;
	TEST_ASSERT_ERRNO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, small), E2BIG);

	c = kvm_get_supported_cpuid(kvm);
	TEST_ASSERT(c->nent > 1 && c->nent <= 256, "nent %u", c->nent);
	leaf0 = cpuid_find(c, 0, 0);
	ext0 = cpuid_find(c, 0x80000000, 0);
	leaf1 = cpuid_find(c, 1, 0);
	TEST_ASSERT(leaf0 && ext0 && leaf1, "leaves 0, 1 and 0x80000000 are present");
	TEST_ASSERT(leaf0->eax >= 1, "max basic leaf %#x", leaf0->eax);
	TEST_ASSERT(ext0->eax >= 0x80000001, "max extended leaf %#x", ext0->eax);
	/* The vendor is the host's: guests run on the real CPU. */
	host_cpuid(0, &a, &b, &cx, &d);
	TEST_ASSERT_EQ(leaf0->ebx, b);
	TEST_ASSERT_EQ(leaf0->ecx, cx);
	TEST_ASSERT_EQ(leaf0->edx, d);
	/* Long mode (CPUID.80000001:EDX[29]) is offered, the library needs it. */
	TEST_ASSERT(cpuid_find(c, 0x80000001, 0)->edx & (1u << 29), "long mode offered");
	free(small);
	free(c);
	close(kvm);
}

TEST(msr_index_list)
{
	int kvm = open_kvm();
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	bool star = false, lstar = false, sysenter_cs = false;

	TEST_ASSERT_ERRNO(ioctl(kvm, KVM_GET_MSR_INDEX_LIST, &probe), E2BIG);
	TEST_ASSERT(probe.nmsrs > 0, "the needed count is reported back");
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	list->nmsrs = probe.nmsrs;
	TEST_ASSERT_EQ(ioctl(kvm, KVM_GET_MSR_INDEX_LIST, list), 0);
	TEST_ASSERT_EQ(list->nmsrs, probe.nmsrs);
	for (uint32_t i = 0; i < list->nmsrs; i++) {
		star |= list->indices[i] == 0xc0000081;
		lstar |= list->indices[i] == 0xc0000082;
		sysenter_cs |= list->indices[i] == 0x174;
	}
	TEST_ASSERT(star && lstar && sysenter_cs, "STAR %d LSTAR %d SYSENTER_CS %d listed",
		    star, lstar, sysenter_cs);
	free(list);
	close(kvm);
}

/*
 * An ioctl KVM does not know.  api.rst says ENOTTY in general, but 6.1's x86
 * code answers EINVAL on the system and vCPU fds (their arch fallbacks) and
 * ENOTTY on the VM fd; minikvm matches what KVM does.
 */
TEST(unknown_ioctl)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	unsigned long bogus = _IO(KVMIO, 0xfe);

	TEST_ASSERT_ERRNO(ioctl(vm->kvm_fd, bogus, 0), EINVAL);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, bogus, 0), ENOTTY);
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, bogus, 0), EINVAL);
	/* Not even KVM's ioctl type: a terminal ioctl on the vCPU fd. */
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, _IO('T', 0x01), 0), EINVAL);
	vm_free(vm);
}

TEST(create_vm_bad_type)
{
	int kvm = open_kvm();

	TEST_ASSERT_ERRNO(ioctl(kvm, KVM_CREATE_VM, 0x1234), EINVAL);
	close(kvm);
}
