// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU creation limits, the kvm_run mapping, register state round trips,
 * CPUID as the guest sees it, MSRs, and the x86 VM address ioctls.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kvm_util.h"

TEST_TIMEOUT(create_up_to_max_vcpus, 300)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	struct rlimit rl = { max + 64, max + 64 };
	int fd;

	TEST_ASSERT(max > 0, "MAX_VCPUS %d", max);
	TEST_ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0, "raising RLIMIT_NOFILE: %s",
		    strerror(errno));
	for (int id = 0; id < max; id++) {
		fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
		TEST_ASSERT(fd >= 0, "vCPU %d of %d: %s", id, max, strerror(errno));
	}
	/* One more is refused, whatever its id. */
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, max), EINVAL);
	vm_free(vm);
}

TEST(duplicate_vcpu_id_eexist)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);

	vm_vcpu_add_at(vm, 3, GUEST_CODE16_GPA);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 3), EEXIST);
	/* A failed creation leaves the VM usable. */
	vm_vcpu_add_at(vm, 4, GUEST_CODE16_GPA);
	vm_free(vm);
}

TEST(vcpu_id_out_of_range_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	int max_id = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPU_ID);
	int fd;

	/* KVM_CAP_MAX_VCPU_ID is the number of ids: the largest is one less. */
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, max_id), EINVAL);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, -1), EINVAL);
	fd = ioctl(vm->fd, KVM_CREATE_VCPU, max_id - 1);
	TEST_ASSERT(fd >= 0, "vCPU id %d: %s", max_id - 1, strerror(errno));
	close(fd);
	vm_free(vm);
}

TEST(kvm_run_mmap)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	struct kvm_run *second;
	static const uint8_t out_al[] = { 0xb0, 0x5a, 0xe6, 0x44, 0xf4 };	/* out 0x5a,0x44 */

	vm_load_blob(vm, GUEST_CODE16_GPA, out_al, out_al + sizeof(out_al));
	/* A second mapping of the same fd shows the same page. */
	second = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	TEST_ASSERT(second != MAP_FAILED, "second mmap: %s", strerror(errno));
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(second->exit_reason, KVM_EXIT_IO);
	TEST_ASSERT_EQ(second->io.port, 0x44);
	/* The I/O data lives inside the mapping (api.rst 5: data_offset). */
	TEST_ASSERT(vcpu->run->io.data_offset + 1 <= vm->run_size, "data_offset %#llx",
		    (unsigned long long)vcpu->run->io.data_offset);
	TEST_ASSERT_EQ(*((uint8_t *)second + second->io.data_offset), 0x5a);
	munmap(second, vm->run_size);
	vm_free(vm);
}

TEST(regs_round_trip)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, 0x1000);
	struct kvm_regs set, get;
	__u64 *p = (__u64 *)&set;

	for (unsigned int i = 0; i < sizeof(set) / 8; i++)
		p[i] = 0x1111111111111111ULL * (i + 1) ^ 0x0102030405060708ULL;
	set.rflags = 0x246;	/* reserved bit 1 set, IF, ZF, PF */
	vcpu_regs_set(vcpu, &set);
	vcpu_regs_get(vcpu, &get);
	TEST_ASSERT(!memcmp(&set, &get, sizeof(set)), "regs differ after a round trip");
	vm_free(vm);
}

TEST(sregs_round_trip)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, 0x1000);
	struct kvm_sregs set, get;

	vcpu_sregs_get(vcpu, &set);
	set.fs.base = 0x7fff12345000ULL;
	set.gs.base = 0xffff888012340000ULL;
	set.fs.selector = 0x10;
	set.gdt.base = 0x12345000;
	set.gdt.limit = 0x3f;
	set.idt.base = 0xffffffff81000000ULL;
	set.idt.limit = 0xfff;
	set.cr2 = 0xdeadb000;
	set.cr3 = vm->pt.root;
	vcpu_sregs_set(vcpu, &set);
	vcpu_sregs_get(vcpu, &get);
	TEST_ASSERT_EQ(get.cr0, set.cr0);
	TEST_ASSERT_EQ(get.cr2, set.cr2);
	TEST_ASSERT_EQ(get.cr3, set.cr3);
	TEST_ASSERT_EQ(get.cr4, set.cr4);
	TEST_ASSERT_EQ(get.efer, set.efer);
	TEST_ASSERT_EQ(get.fs.base, set.fs.base);
	TEST_ASSERT_EQ(get.fs.selector, set.fs.selector);
	TEST_ASSERT_EQ(get.gs.base, set.gs.base);
	TEST_ASSERT_EQ(get.cs.l, 1);
	TEST_ASSERT_EQ(get.cs.selector, SEL_CODE64);
	TEST_ASSERT_EQ(get.tr.base, set.tr.base);
	TEST_ASSERT_EQ(get.tr.type, 11);
	TEST_ASSERT_EQ(get.gdt.base, set.gdt.base);
	TEST_ASSERT_EQ(get.gdt.limit, set.gdt.limit);
	TEST_ASSERT_EQ(get.idt.base, set.idt.base);
	TEST_ASSERT_EQ(get.idt.limit, set.idt.limit);
	TEST_ASSERT_EQ(get.apic_base, set.apic_base);
	vm_free(vm);
}

TEST(reset_state_is_architectural)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	int fd = ioctl(vm->fd, KVM_CREATE_VCPU, 1);
	struct kvm_sregs s;
	struct kvm_regs r;

	TEST_ASSERT(fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	TEST_ASSERT_EQ(ioctl(fd, KVM_GET_SREGS, &s), 0);
	TEST_ASSERT_EQ(ioctl(fd, KVM_GET_REGS, &r), 0);
	/* Power-on state: SDM vol. 3 table 10-1, APM vol. 2 table 14-1. */
	TEST_ASSERT_EQ(r.rip, 0xfff0);
	TEST_ASSERT_EQ(r.rflags, 2);
	TEST_ASSERT_EQ(s.cs.selector, 0xf000);
	TEST_ASSERT_EQ(s.cs.base, 0xffff0000);
	TEST_ASSERT_EQ(s.cr0, 0x60000010);
	TEST_ASSERT_EQ(s.efer, 0);
	close(fd);
	vm_free(vm);
}

static void guest_cpuid_brand(void)
{
	uint32_t v[12];

	for (int i = 0; i < 3; i++)
		guest_cpuid(0x80000002 + i, 0, &v[4 * i], &v[4 * i + 1], &v[4 * i + 2],
			    &v[4 * i + 3]);
	GUEST_SYNC_ARGS(1, v[0] | (uint64_t)v[1] << 32, v[2] | (uint64_t)v[3] << 32,
			v[8] | (uint64_t)v[11] << 32);
	guest_cpuid(1, 0, &v[0], &v[1], &v[2], &v[3]);
	GUEST_SYNC_ARGS(2, v[1], v[2], v[3]);
}

TEST(set_cpuid2_is_what_guest_sees)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_cpuid_entry2 *e;
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	/* A brand string of our own, set before the vCPU exists. */
	for (int i = 0; i < 3; i++) {
		e = cpuid_find(vm->cpuid, 0x80000002 + i, 0);
		TEST_ASSERT(e, "leaf %#x supported", 0x80000002 + i);
		e->eax = 0x61000000 + i;
		e->ebx = 0x62000000 + i;
		e->ecx = 0x63000000 + i;
		e->edx = 0x64000000 + i;
	}
	vcpu = vm_vcpu_add(vm, 0, guest_cpuid_brand);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x6200000061000000ULL);
	TEST_ASSERT_EQ(uc.args[2], 0x6400000063000000ULL);
	TEST_ASSERT_EQ(uc.args[3], 0x6400000261000002ULL);
	/* Leaf 1: the APIC id byte the library set, the other bits as given. */
	e = cpuid_find(vm->cpuid, 1, 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1] >> 24, 0);
	TEST_ASSERT_EQ(uc.args[1] & 0xffff, e->ebx & 0xffff);
	/* OSXSAVE (ECX[27]) follows the guest's CR4, so compare without it. */
	TEST_ASSERT_EQ(uc.args[2] & ~(1u << 27), e->ecx & ~(1u << 27));
	TEST_ASSERT_EQ(uc.args[3], e->edx);
	vm_free(vm);
}

/*
 * After KVM_RUN the CPU model is fixed: KVM 6.1 accepts KVM_SET_CPUID2 only
 * with the table the vCPU has (VMMs set it again when they reuse a vCPU),
 * where the bits that follow the vCPU's state do not count.
 */
TEST(set_cpuid2_after_run_only_the_same)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_cpuid_brand);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 256 * sizeof(c->entries[0]));
	struct kvm_cpuid_entry2 *e;
	struct ucall uc;

	c->nent = 256;
	vcpu_ioctl(vcpu, KVM_GET_CPUID2, c, "KVM_GET_CPUID2");
	/* Before the first entry, any table goes. */
	e = cpuid_find(c, 0x80000002, 0);
	TEST_ASSERT(e, "leaf 0x80000002 supported");
	e->eax ^= 0x01010101;
	vcpu_set_cpuid(vcpu, c);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);

	c->nent = 256;
	vcpu_ioctl(vcpu, KVM_GET_CPUID2, c, "KVM_GET_CPUID2");
	vcpu_set_cpuid(vcpu, c);
	/* The APIC bit follows APIC_BASE: a table that differs there is the same. */
	e = cpuid_find(c, 1, 0);
	e->edx ^= 1u << 9;
	vcpu_set_cpuid(vcpu, c);
	e->edx ^= 1u << 9;
	e = cpuid_find(c, 0x80000002, 0);
	e->eax ^= 0x02020202;
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_CPUID2, c), EINVAL);
	e->eax ^= 0x02020202;
	c->nent--;
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_SET_CPUID2, c), EINVAL);
	/* The guest goes on with the table it had. */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	free(c);
	vm_free(vm);
}

static void guest_cpuid_out_of_range(void)
{
	uint32_t v[4];

	/* Above the highest basic leaf, and above the highest extended one. */
	guest_cpuid(0x4fff, 0, &v[0], &v[1], &v[2], &v[3]);
	GUEST_SYNC_ARGS(1, v[0], v[2], v[3]);
	guest_cpuid(0x8000ffff, 0, &v[0], &v[1], &v[2], &v[3]);
	GUEST_SYNC_ARGS(2, v[0], v[2], v[3]);
}

/*
 * A leaf beyond its range's maximum reads as zeros for an AMD guest and as
 * the highest basic leaf for an Intel one (SDM vol. 2A CPUID), as in KVM.
 * EBX is left out: with leaf 0xD last it follows the guest's XCR0.
 */
TEST(cpuid_out_of_range_follows_vendor)
{
	/* "AuthenticAMD" and "GenuineIntel" as EBX, EDX, ECX. */
	static const uint32_t vendor[2][3] = {
		{ 0x68747541, 0x69746e65, 0x444d4163 },
		{ 0x756e6547, 0x49656e69, 0x6c65746e },
	};

	for (int intel = 0; intel < 2; intel++) {
		struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
		struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0, 0), top;
		struct kvm_vcpu *vcpu;
		struct ucall uc;

		e->ebx = vendor[intel][0];
		e->edx = vendor[intel][1];
		e->ecx = vendor[intel][2];
		top = *cpuid_find(vm->cpuid, e->eax, 0);
		vcpu = vm_vcpu_add(vm, 0, guest_cpuid_out_of_range);
		for (uint64_t step = 1; step <= 2; step++) {
			TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
			TEST_ASSERT_EQ(uc.args[0], step);
			TEST_ASSERT_EQ(uc.args[1], intel ? top.eax : 0);
			TEST_ASSERT_EQ(uc.args[2], intel ? top.ecx : 0);
			TEST_ASSERT_EQ(uc.args[3], intel ? top.edx : 0);
		}
		vm_free(vm);
	}
}

TEST(get_cpuid2_returns_what_was_set)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	struct kvm_cpuid2 *got = calloc(1, sizeof(*got) + 256 * sizeof(got->entries[0]));
	struct kvm_cpuid2 small = { .nent = 1 };

	got->nent = 256;
	vcpu_ioctl(vcpu, KVM_GET_CPUID2, got, "KVM_GET_CPUID2");
	/* On success KVM leaves nent as given. */
	TEST_ASSERT_EQ(got->nent, 256);
	for (uint32_t i = 0; i < vm->cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *a = &got->entries[i];
		struct kvm_cpuid_entry2 *b = cpuid_find(vm->cpuid, a->function, a->index);

		uint32_t ebx_mask = ~0u, ecx_mask = ~0u, edx_mask = ~0u;

		TEST_ASSERT(b, "leaf %#x.%u came back but was not set", a->function, a->index);
		/*
		 * Fields that follow the vCPU's state rather than the table: the
		 * XSAVE area sizes in 0xD.0/0xD.1 EBX (XCR0, XSS) and OSXSAVE and
		 * APIC in leaf 1 (CR4, APIC_BASE).
		 */
		if (a->function == 0xd && a->index <= 1)
			ebx_mask = 0;
		if (a->function == 1) {
			ecx_mask = ~(1u << 27);
			edx_mask = ~(1u << 9);
		}
		TEST_ASSERT(a->eax == b->eax && (a->ebx & ebx_mask) == (b->ebx & ebx_mask) &&
			    (a->ecx & ecx_mask) == (b->ecx & ecx_mask) &&
			    (a->edx & edx_mask) == (b->edx & edx_mask),
			    "leaf %#x.%u differs: %08x %08x %08x %08x, set %08x %08x %08x %08x",
			    a->function, a->index, a->eax, a->ebx, a->ecx, a->edx,
			    b->eax, b->ebx, b->ecx, b->edx);
	}
	TEST_ASSERT_EQ(got->entries[vm->cpuid->nent].function, 0);
	TEST_ASSERT_ERRNO(ioctl(vcpu->fd, KVM_GET_CPUID2, &small), E2BIG);
	/* The x86 ioctl returns before copying nent back, so it stays as given. */
	TEST_ASSERT_EQ(small.nent, 1);
	free(got);
	vm_free(vm);
}

static const struct {
	uint32_t index;
	uint64_t value;
} arch_msrs[] = {
	{ 0x174, 0x10 },			/* IA32_SYSENTER_CS */
	{ 0x175, 0x81234000 },			/* IA32_SYSENTER_ESP (see below) */
	{ 0x176, 0x81235000 },			/* IA32_SYSENTER_EIP */
	{ 0x277, 0x0007040600070406ULL },	/* IA32_PAT, reset value */
	{ 0xc0000081, 0x0023001000000000ULL },	/* STAR */
	{ 0xc0000082, 0xffffffff81600000ULL },	/* LSTAR */
	{ 0xc0000083, 0xffffffff81600100ULL },	/* CSTAR */
	{ 0xc0000084, 0x47700 },		/* SFMASK */
	{ 0xc0000102, 0xffff888077770000ULL },	/* KERNEL_GS_BASE */
	{ 0xc0000100, 0x7f0012340000ULL },	/* FS_BASE */
	{ 0xc0000101, 0xffff888011110000ULL },	/* GS_BASE */
};

#define NR_ARCH_MSRS (sizeof(arch_msrs) / sizeof(arch_msrs[0]))

static void guest_read_msrs(void)
{
	for (unsigned int i = 0; i < NR_ARCH_MSRS; i++)
		GUEST_ASSERT_EQ(guest_rdmsr(arch_msrs[i].index), arch_msrs[i].value);
	guest_wrmsr(0xc0000082, 0xffffffff81700000ULL);
	guest_wrmsr(0x175, 0x81999000);
}

TEST(msrs_round_trip_and_guest_view)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_read_msrs);

	for (unsigned int i = 0; i < NR_ARCH_MSRS; i++)
		vcpu_set_msr(vcpu, arch_msrs[i].index, arch_msrs[i].value);
	for (unsigned int i = 0; i < NR_ARCH_MSRS; i++)
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, arch_msrs[i].index), arch_msrs[i].value);
	vcpu_run_until_done(vcpu);
	/* What the guest wrote is what the host reads. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, 0xc0000082), 0xffffffff81700000ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, 0x175), 0x81999000);
	vm_free(vm);
}

static bool cpuid_vendor_is(struct kvm_cpuid2 *c, const char *v12)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 0, 0);

	return e && !memcmp(&e->ebx, v12, 4) && !memcmp(&e->edx, v12 + 4, 4) &&
	       !memcmp(&e->ecx, v12 + 8, 4);
}

static void set_cpuid_vendor(struct kvm_cpuid2 *c, const char *v12)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(c, 0, 0);

	memcpy(&e->ebx, v12, 4);
	memcpy(&e->edx, v12 + 4, 4);
	memcpy(&e->ecx, v12 + 8, 4);
}

/*
 * AMD CPUs keep only 32 bits of SYSENTER_ESP/EIP (APM vol. 2 6.1.1), so on an
 * AMD host KVM drops the upper half unless the guest's CPUID vendor is Intel,
 * which cross-vendor migration needs.  Intel hosts keep all 64 bits.
 */
TEST(sysenter_msr_width_follows_vendor)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	bool amd_host = cpuid_vendor_is(vm->cpuid, "AuthenticAMD");
	struct kvm_vcpu *amd, *intel;

	amd = vm_vcpu_add_at(vm, 0, 0x1000);
	set_cpuid_vendor(vm->cpuid, "GenuineIntel");
	intel = vm_vcpu_add_at(vm, 1, 0x1000);
	vcpu_set_msr(amd, 0x175, 0xffffffff81234000ULL);
	vcpu_set_msr(intel, 0x175, 0xffffffff81234000ULL);
	vcpu_set_msr(amd, 0x176, 0x1234567890ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(amd, 0x175), amd_host ? 0x81234000 : 0xffffffff81234000ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(amd, 0x176), amd_host ? 0x34567890 : 0x1234567890ULL);
	TEST_ASSERT_EQ(vcpu_get_msr(intel, 0x175), 0xffffffff81234000ULL);
	vm_free(vm);
}

TEST(efer_msr_matches_sregs)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, 0x1000);
	struct kvm_sregs s;

	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, 0xc0000080), s.efer);
	TEST_ASSERT_EQ(s.efer & 0x500, 0x500);	/* LME, LMA */
	vm_free(vm);
}

TEST(set_tss_and_identity_map_addr)
{
	int kvm = open_kvm();
	int vm = ioctl(kvm, KVM_CREATE_VM, 0), vcpu;
	__u64 ident = 0xfeffc000;

	TEST_ASSERT(vm >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	TEST_ASSERT_EQ(ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &ident), 0);
	/* The TSS's three pages end at 4 GiB at the latest, on both vendors. */
	TEST_ASSERT_ERRNO(ioctl(vm, KVM_SET_TSS_ADDR, 0xffffe000UL), EINVAL);
	TEST_ASSERT_ERRNO(ioctl(vm, KVM_SET_TSS_ADDR, 1UL << 32), EINVAL);
	TEST_ASSERT_EQ(ioctl(vm, KVM_SET_TSS_ADDR, 0xfeffd000), 0);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	TEST_ASSERT(vcpu >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	/* The identity map cannot move once vCPUs exist. */
	TEST_ASSERT_ERRNO(ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &ident), EINVAL);
	close(vcpu);
	close(vm);
	close(kvm);
}

/*
 * KVM_TRANSLATE walks the guest's own page tables: a mapped address gives
 * its physical address (writeable set, usermode clear, as KVM reports them),
 * an unmapped one valid = 0, and without paging the address is its own.
 */
TEST(translate_walks_guest_page_tables)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, 0x1000);
	uint64_t gpa = vm_alloc_pages(vm, 1);
	uint64_t gva = 0x7f1234567000ULL;
	struct kvm_translation tr = { .linear_address = gva + 0x123 };
	struct kvm_vm *flat;

	virt_map(vm, gva, gpa, 4096);
	vcpu_ioctl(vcpu, KVM_TRANSLATE, &tr, "KVM_TRANSLATE");
	TEST_ASSERT_EQ(tr.valid, 1);
	TEST_ASSERT_EQ(tr.physical_address, gpa + 0x123);
	TEST_ASSERT_EQ(tr.writeable, 1);
	TEST_ASSERT_EQ(tr.usermode, 0);

	tr = (struct kvm_translation){ .linear_address = gva + 0x200000 };
	vcpu_ioctl(vcpu, KVM_TRANSLATE, &tr, "KVM_TRANSLATE");
	TEST_ASSERT_EQ(tr.valid, 0);
	TEST_ASSERT_EQ(tr.physical_address, ~0ULL);

	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_TRANSLATE, (void *)1), EFAULT);
	vm_free(vm);

	flat = vm_create(VM_MODE_PROT32);
	vcpu = vm_vcpu_add_at(flat, 0, 0x1000);
	tr = (struct kvm_translation){ .linear_address = 0x12345678 };
	vcpu_ioctl(vcpu, KVM_TRANSLATE, &tr, "KVM_TRANSLATE");
	TEST_ASSERT_EQ(tr.valid, 1);
	TEST_ASSERT_EQ(tr.physical_address, 0x12345678);
	vm_free(flat);
}

/*
 * A vCPU at reset has paging off: KVM_TRANSLATE gives the linear address
 * back as the physical one, all 64 bits of it.
 */
TEST(translate_at_reset_is_identity)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	int fd = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	struct kvm_translation tr = { .linear_address = 0x123456789ULL };
	struct kvm_sregs s;

	TEST_ASSERT(fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	TEST_ASSERT_EQ(ioctl(fd, KVM_GET_SREGS, &s), 0);
	TEST_ASSERT_EQ(s.cr0 & (1ULL << 31), 0);	/* CR0.PG */
	TEST_ASSERT_EQ(ioctl(fd, KVM_TRANSLATE, &tr), 0);
	TEST_ASSERT_EQ(tr.valid, 1);
	TEST_ASSERT_EQ(tr.physical_address, 0x123456789ULL);
	TEST_ASSERT_EQ(tr.writeable, 1);
	TEST_ASSERT_EQ(tr.usermode, 0);
	close(fd);
	vm_free(vm);
}

#define CR4_SMAP (1ULL << 21)
#define RFLAGS_AC (1ULL << 18)

static struct kvm_translation translate(struct kvm_vcpu *vcpu, uint64_t la)
{
	struct kvm_translation tr = { .linear_address = la };

	vcpu_ioctl(vcpu, KVM_TRANSLATE, &tr, "KVM_TRANSLATE");
	return tr;
}

/*
 * KVM_TRANSLATE is a supervisor read at the vCPU's CPL and RFLAGS.AC: with
 * CR4.SMAP at CPL 0 and AC clear a user page does not translate, a
 * supervisor page does; with AC set the user page translates again.
 */
TEST(translate_honours_smap)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 7, 0);
	uint64_t user_gva = 0x7f1234567000ULL, sup_gva = 0x7f1234569000ULL;
	uint64_t user_gpa, sup_gpa;
	struct kvm_translation tr;
	struct kvm_vcpu *vcpu;
	struct kvm_sregs s;
	struct kvm_regs r;

	if (!e || !(e->ebx & (1u << 20)))
		SKIP("no SMAP in KVM_GET_SUPPORTED_CPUID (7.EBX bit 20)");
	vcpu = vm_vcpu_add_at(vm, 0, 0x1000);
	user_gpa = vm_alloc_pages(vm, 1);
	sup_gpa = vm_alloc_pages(vm, 1);
	virt_map_flags(vm, user_gva, user_gpa, PAGE_SIZE, PTE_RW | PTE_US);
	virt_map(vm, sup_gva, sup_gpa, PAGE_SIZE);

	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rflags & RFLAGS_AC, 0);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cs.dpl, 0);
	TEST_ASSERT_EQ(s.ss.dpl, 0);
	TEST_ASSERT_EQ(s.cr4 & CR4_SMAP, 0);

	/* Without SMAP both pages translate. */
	tr = translate(vcpu, user_gva + 0x10);
	TEST_ASSERT_EQ(tr.valid, 1);
	TEST_ASSERT_EQ(tr.physical_address, user_gpa + 0x10);

	s.cr4 |= CR4_SMAP;
	vcpu_sregs_set(vcpu, &s);
	tr = translate(vcpu, user_gva + 0x10);
	TEST_ASSERT_EQ(tr.valid, 0);
	TEST_ASSERT_EQ(tr.physical_address, ~0ULL);
	tr = translate(vcpu, sup_gva + 0x20);
	TEST_ASSERT_EQ(tr.valid, 1);
	TEST_ASSERT_EQ(tr.physical_address, sup_gpa + 0x20);
	TEST_ASSERT_EQ(tr.writeable, 1);
	TEST_ASSERT_EQ(tr.usermode, 0);

	/* RFLAGS.AC at CPL 0 lifts SMAP for explicit accesses. */
	r.rflags |= RFLAGS_AC;
	vcpu_regs_set(vcpu, &r);
	tr = translate(vcpu, user_gva + 0x10);
	TEST_ASSERT_EQ(tr.valid, 1);
	TEST_ASSERT_EQ(tr.physical_address, user_gpa + 0x10);
	vm_free(vm);
}
