// SPDX-License-Identifier: GPL-2.0
/*
 * MMIO exits: reads and writes of 1, 2, 4 and 8 bytes through several
 * instruction forms, to a guest physical address with no memslot.
 */
#include "kvm_util.h"

#define MMIO_GPA 0xc0000000ULL		/* no memslot; identity-mapped in the guest */

/* Run to the next exit and check it is MMIO with these fields. */
static void expect_mmio(struct kvm_vcpu *vcpu, uint64_t gpa, uint32_t len, bool write)
{
	struct kvm_run *run = vcpu->run;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(run->mmio.phys_addr, gpa);
	TEST_ASSERT_EQ(run->mmio.len, len);
	TEST_ASSERT_EQ(run->mmio.is_write, write);
}

static uint64_t mmio_data(struct kvm_vcpu *vcpu)
{
	uint64_t v = 0;

	memcpy(&v, vcpu->run->mmio.data, vcpu->run->mmio.len);
	return v;
}

static void guest_mov_writes(void)
{
	volatile uint8_t *p = (volatile uint8_t *)MMIO_GPA;

	*(volatile uint8_t *)(p + 1) = 0x12;
	*(volatile uint16_t *)(p + 2) = 0x3456;
	*(volatile uint32_t *)(p + 4) = 0x789abcde;
	*(volatile uint64_t *)(p + 8) = 0x0fedcba987654321ULL;
}

TEST(mov_write_1_2_4_8)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_mov_writes);

	expect_mmio(vcpu, MMIO_GPA + 1, 1, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x12);
	expect_mmio(vcpu, MMIO_GPA + 2, 2, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x3456);
	expect_mmio(vcpu, MMIO_GPA + 4, 4, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x789abcde);
	expect_mmio(vcpu, MMIO_GPA + 8, 8, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x0fedcba987654321ULL);
	vcpu_run_until_done(vcpu);
	vm_free(vm);
}

static void guest_mov_reads(void)
{
	volatile uint8_t *p = (volatile uint8_t *)MMIO_GPA;
	uint64_t a = *(volatile uint8_t *)(p + 0x10);
	uint64_t b = *(volatile uint16_t *)(p + 0x12);
	uint64_t c = *(volatile uint32_t *)(p + 0x14);
	uint64_t d = *(volatile uint64_t *)(p + 0x18);

	GUEST_SYNC_ARGS(1, a, b, c);
	GUEST_SYNC_ARGS(2, d, 0, 0);
}

TEST(mov_read_1_2_4_8)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_mov_reads);
	struct ucall uc;

	expect_mmio(vcpu, MMIO_GPA + 0x10, 1, false);
	memcpy(vcpu->run->mmio.data, "\xa1", 1);
	expect_mmio(vcpu, MMIO_GPA + 0x12, 2, false);
	memcpy(vcpu->run->mmio.data, "\xb1\xb2", 2);
	expect_mmio(vcpu, MMIO_GPA + 0x14, 4, false);
	memcpy(vcpu->run->mmio.data, "\xc1\xc2\xc3\xc4", 4);
	expect_mmio(vcpu, MMIO_GPA + 0x18, 8, false);
	memcpy(vcpu->run->mmio.data, "\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8", 8);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0xa1);
	TEST_ASSERT_EQ(uc.args[2], 0xb2b1);
	TEST_ASSERT_EQ(uc.args[3], 0xc4c3c2c1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0xd8d7d6d5d4d3d2d1ULL);
	vm_free(vm);
}

static void guest_movzx_movsx(void)
{
	uint64_t a, b, c;

	asm volatile("movzbq (%1), %0" : "=r"(a) : "r"(MMIO_GPA + 0x20));
	asm volatile("movzwl (%1), %k0" : "=r"(b) : "r"(MMIO_GPA + 0x22));
	asm volatile("movsbq (%1), %0" : "=r"(c) : "r"(MMIO_GPA + 0x24));
	GUEST_SYNC_ARGS(1, a, b, c);
}

TEST(movzx_movsx_reads)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_movzx_movsx);
	struct ucall uc;

	expect_mmio(vcpu, MMIO_GPA + 0x20, 1, false);
	vcpu->run->mmio.data[0] = 0xf0;
	expect_mmio(vcpu, MMIO_GPA + 0x22, 2, false);
	memcpy(vcpu->run->mmio.data, "\x01\x80", 2);
	expect_mmio(vcpu, MMIO_GPA + 0x24, 1, false);
	vcpu->run->mmio.data[0] = 0x85;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0xf0);
	TEST_ASSERT_EQ(uc.args[2], 0x8001);
	TEST_ASSERT_EQ(uc.args[3], 0xffffffffffffff85ULL);
	vm_free(vm);
}

static void guest_stos(void)
{
	void *d = (void *)(MMIO_GPA + 0x30);

	asm volatile("cld; stosl" : "+D"(d) : "a"(0x11223344) : "memory");
	asm volatile("stosq" : "+D"(d) : "a"(0x5566778899aabbccULL) : "memory");
	asm volatile("movw $0x7788, (%0)" :: "r"(MMIO_GPA + 0x40) : "memory");
	GUEST_SYNC_ARGS(1, (uint64_t)d, 0, 0);
}

TEST(stos_and_immediate_writes)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_stos);
	struct ucall uc;

	expect_mmio(vcpu, MMIO_GPA + 0x30, 4, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x11223344);
	expect_mmio(vcpu, MMIO_GPA + 0x34, 8, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x5566778899aabbccULL);
	expect_mmio(vcpu, MMIO_GPA + 0x40, 2, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x7788);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], MMIO_GPA + 0x3c);	/* RDI advanced by 4 + 8 */
	vm_free(vm);
}

static void guest_rmw(void)
{
	uint64_t flags;

	asm volatile("addl $5, (%0)" :: "r"(MMIO_GPA + 0x50) : "memory", "cc");
	asm volatile("andq %0, (%1)" :: "r"(0xff00ff00ff00ff00ULL), "r"(MMIO_GPA + 0x58)
		     : "memory", "cc");
	/* OR leaves ZF clear for a non-zero result; the flags come from the emulation. */
	asm volatile("orb $0x80, (%1); pushfq; popq %0" : "=r"(flags) : "r"(MMIO_GPA + 0x61)
		     : "memory", "cc");
	GUEST_SYNC_ARGS(1, flags & 0x8c5, 0, 0);	/* OF SF ZF PF CF */
}

TEST(add_and_or_to_memory)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_rmw);
	struct ucall uc;

	/* Read-modify-write: a read exit, then a write exit of the result. */
	expect_mmio(vcpu, MMIO_GPA + 0x50, 4, false);
	memcpy(vcpu->run->mmio.data, "\x0a\x00\x00\x00", 4);
	expect_mmio(vcpu, MMIO_GPA + 0x50, 4, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 15);

	expect_mmio(vcpu, MMIO_GPA + 0x58, 8, false);
	memcpy(vcpu->run->mmio.data, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	expect_mmio(vcpu, MMIO_GPA + 0x58, 8, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x8800660044002200ULL);

	expect_mmio(vcpu, MMIO_GPA + 0x61, 1, false);
	vcpu->run->mmio.data[0] = 0x01;
	expect_mmio(vcpu, MMIO_GPA + 0x61, 1, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0x81);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x84);	/* SF and PF (0x81 has even parity); not ZF */
	vm_free(vm);
}

/* MMIO in 32-bit protected mode, no paging: "mov %eax, (0xc0000100)". */
extern const char pm_mmio_start[], pm_mmio_end[];
asm(".pushsection .rodata\n"
    ".code32\n"
    "pm_mmio_start:\n"
    "	mov $0xcafef00d, %eax\n"
    "	mov %eax, 0xc0000100\n"
    "	mov 0xc0000104, %ebx\n"
    "	hlt\n"
    "pm_mmio_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(protected_mode_mmio)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_PROT32, pm_mmio_start, pm_mmio_end, &vcpu);
	struct kvm_regs r;

	expect_mmio(vcpu, MMIO_GPA + 0x100, 4, true);
	TEST_ASSERT_EQ(mmio_data(vcpu), 0xcafef00d);
	expect_mmio(vcpu, MMIO_GPA + 0x104, 4, false);
	memcpy(vcpu->run->mmio.data, "\x78\x56\x34\x12", 4);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rbx, 0x12345678);
	vm_free(vm);
}

/*
 * A guest page-table page at a guest physical address with no memslot: the
 * walk cannot read the entry, so the guest takes a not-present #PF at the
 * linear address it used, and userspace sees no MMIO for the table.  The
 * entry read from the hole is at MMIO_GPA + 0x28 (index 5); the operand's
 * page offset differs from it on purpose: when the two match, KVM takes
 * the faulting table address for the operand's (the GPA of the nested page
 * fault, which it reuses when the page offsets agree) and exits with
 * KVM_EXIT_MMIO at the table address instead.  A store and a load.
 */
#define PT_HOLE_GVA 0x500000000000ULL
#define PF_VECTOR 14
#define PF_WRITE 2

/* "mov %esi, (%rdi)" and "mov (%rdi), %eax": the faulting instructions. */
extern char pt_hole_write[], pt_hole_write_end[], pt_hole_read[], pt_hole_read_end[];
asm(".pushsection .text\n"
    "pt_hole_write:\n"
    "	movl %esi, (%rdi)\n"
    "pt_hole_write_end:\n"
    "	ret\n"
    "pt_hole_read:\n"
    "	movl (%rdi), %eax\n"
    "pt_hole_read_end:\n"
    "	ret\n"
    ".popsection\n");

static void guest_pt_hole(uint64_t va, uint64_t read)
{
	((void (*)(uint64_t, uint32_t))(read ? pt_hole_read : pt_hole_write))(va, 0x12345678);
	GUEST_SYNC(1);
}

TEST(page_table_in_hole_pf)
{
	/* The PDE (a page table in the hole), then the PDPTE (a page directory there). */
	static const struct {
		int level;
		uint64_t va;
	} c[] = {
		{ 2, PT_HOLE_GVA + 0x5123 },
		{ 3, PT_HOLE_GVA + (5ULL << 21) + 0x123 },
	};

	for (unsigned int n = 0; n < 2 * sizeof(c) / sizeof(c[0]); n++) {
		unsigned int i = n / 2, read = n % 2;
		struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
		struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_pt_hole);
		uint64_t page = vm_alloc_pages(vm, 1);
		uint8_t *ram = gpa2hva(vm, page);
		struct ucall uc;
		uint64_t *e;

		virt_map(vm, c[i].va & ~(PAGE_SIZE - 1), page, PAGE_SIZE);
		e = virt_pte(vm, c[i].va, c[i].level);
		*e = (*e & ~PTE_ADDR_MASK) | MMIO_GPA;
		vm_install_exception_handler(vm, PF_VECTOR, guest_exception_report);
		vcpu_args_set(vcpu, 2, c[i].va, (uint64_t)read);

		/* KVM_RUN returns with the guest's report, not KVM_EXIT_MMIO. */
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_EXCEPTION);
		TEST_ASSERT_EQ(uc.args[0], PF_VECTOR);
		/* Not present, a supervisor write or read. */
		TEST_ASSERT_EQ(uc.args[1], read ? 0 : PF_WRITE);
		TEST_ASSERT_EQ(uc.args[2], c[i].va);
		TEST_ASSERT_EQ(uc.args[3], (uint64_t)(read ? pt_hole_read : pt_hole_write));
		TEST_ASSERT_EQ(uc.args[4], SEL_CODE64);
		ucall_ex_regs(vcpu, &uc)->rip =
			(uint64_t)(read ? pt_hole_read_end : pt_hole_write_end);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], 1);
		/* The page the leaf was meant to map is untouched. */
		for (int k = 0; k < 4; k++)
			TEST_ASSERT_EQ(ram[(c[i].va & (PAGE_SIZE - 1)) + k], 0);
		vm_free(vm);
	}
}
