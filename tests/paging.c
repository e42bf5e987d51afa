// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's own paging, on two-dimensional paging (npt=1) and on the
 * shadow MMU (npt=0), where the hypervisor translates from the guest's
 * tables and must forget translations when the processor would.  Guests
 * build and change their own tables and check what their accesses reach;
 * the host checks guest physical memory and the tables:
 *
 *  - each paging mode: 32-bit paging with 4 KiB pages and, with CR4.PSE,
 *    4 MiB pages and PSE-36 addresses (SDM vol. 3 4.3); PAE paging with
 *    4 KiB and 2 MiB pages, the PDPTEs loaded at MOV to CR3 (4.4); 4-level
 *    paging with 4 KiB, 2 MiB and 1 GiB pages (4.5); and memory in real
 *    mode and in protected mode without paging, also with paging switched
 *    on and off (4.1.2);
 *  - access rights (4.6) and the #PF error code and CR2 (4.7): U/S and R/W
 *    at every level, CR0.WP, XD with EFER.NXE and bit 63 reserved without
 *    it (the entry formats of 4.4.2 and 4.5.4), SMEP, SMAP with RFLAGS.AC;
 *  - accessed and dirty flags (4.8);
 *  - invalidation (4.10.4): INVLPG after a change of a PTE, of a PDE, and
 *    of a large page through any address in it (4.10.4.1: it invalidates
 *    every TLB entry of the page); MOV to CR3 between two roots, with PCIDs
 *    and bit 63 (4.10.1, 4.10.4.1); global pages with CR4.PGE (4.10.2.4);
 *  - tables the guest edits through its own mappings: a page table mapped
 *    by one of its own entries, and a PML4 entry that points at the PML4;
 *  - dirty logging (KVM_GET_DIRTY_LOG) of the guest physical pages written
 *    through the guest's mappings, aliases and changed PTEs, and of a page
 *    table whose accessed and dirty flags the processor sets.
 *
 * The guests follow the TLB rules: after changing a present entry they
 * INVLPG or reload CR3 before relying on the change (4.10.4.2); an entry
 * that was not present needs nothing (4.10.4.3), nor does the address of a
 * #PF (4.10.4.1).  No case asserts that a stale translation survives, only
 * that the right one is seen after the invalidation the architecture asks
 * for.  A change of CR4.PSE is no invalidation (4.10.4.1 lists PGE, PCIDE,
 * PAE and SMEP), so the guest reloads CR3 after one.
 *
 * 64-bit guests are C functions of the test; their #PF handler records the
 * error code, CR2 and RIP and ends the access that faulted (a load, a store
 * or a call), or the ring-3 call (lib/guest.c).  32-bit and PAE guests run
 * a small interpreter of commands the host writes (load, store, INVLPG,
 * MOV to CRn, call): it records what each load or call gave and, for a
 * #PF, a marker, the error code, CR2 and EIP, for the host to compare.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define STR(x)		#x
#define XSTR(x)		STR(x)

#define PF_VECTOR	14
#define PF_P		0x1
#define PF_W		0x2
#define PF_U		0x4
#define PF_RSVD		0x8
#define PF_I		0x10

#define CR0_PE		(1ULL << 0)
#define CR0_ET		(1ULL << 4)
#define CR0_NE		(1ULL << 5)
#define CR0_WP		(1ULL << 16)
#define CR0_PG		(1ULL << 31)
#define CR4_PSE		(1ULL << 4)
#define CR4_PAE		(1ULL << 5)
#define CR4_PGE		(1ULL << 7)
#define CR4_PCIDE	(1ULL << 17)
#define CR4_SMEP	(1ULL << 20)
#define CR4_SMAP	(1ULL << 21)
#define CR3_NOFLUSH	(1ULL << 63)
#define MSR_EFER	0xc0000080
#define EFER_NXE	(1ULL << 11)

#define PTE_G		(1ULL << 8)
#define PTE_PRW		(PTE_P | PTE_RW)

/* The linear address the cases map and remap: PML4 entry 2, 1 GiB-aligned. */
#define WIN		0x0000010000000000ULL
/* No memslot there; the guest reaches it through its own mappings. */
#define MMIO_GPA	0xc0000000ULL
#define MMIO_VALUE	0x0123456789abcdefULL
/* What an access that faulted returns. */
#define FAULTED		0xfa17fa17fa17fa17ULL

/*
 * Every page a case reads holds MARK(its address) in each quadword, so that
 * a read through a wrong translation shows.  32-bit guests read the halves.
 */
#define MARK(gpa)	(((gpa) * 0x9e3779b97f4a7c15ULL) ^ 0x6d61726b6d61726bULL)

/* "mov $0x600d, %eax; ret", copied into pages the guest calls. */
#define CODE_RET	0x600d
#define CODE_QWORD	0x0000c30000600db8ULL
static const uint8_t code_bytes[] = { 0xb8, 0x0d, 0x60, 0x00, 0x00, 0xc3 };

/* CPUID bits (SDM vol. 2A CPUID; APM vol. 3 E.4.2 for 8000_0001h). */
enum { R_EBX, R_ECX, R_EDX };

static bool cpu_has(struct kvm_vm *vm, uint32_t fn, uint32_t idx, int reg, int bit)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, fn, idx);
	uint32_t v;

	if (!e)
		return false;
	v = reg == R_EBX ? e->ebx : reg == R_ECX ? e->ecx : e->edx;
	return v & (1u << bit);
}

#define HAS_PGE(vm)	cpu_has(vm, 1, 0, R_EDX, 13)
#define HAS_PSE36(vm)	cpu_has(vm, 1, 0, R_EDX, 17)
#define HAS_PCID(vm)	cpu_has(vm, 1, 0, R_ECX, 17)
#define HAS_SMEP(vm)	cpu_has(vm, 7, 0, R_EBX, 7)
#define HAS_SMAP(vm)	cpu_has(vm, 7, 0, R_EBX, 20)
#define HAS_NX(vm)	cpu_has(vm, 0x80000001, 0, R_EDX, 20)
#define HAS_1G(vm)	cpu_has(vm, 0x80000001, 0, R_EDX, 26)

/*
 * With two-dimensional paging the test machine's CPU (QEMU 7.2) walks the
 * guest's tables and raises #PF itself, and it leaves P out of the error
 * code of a reserved-bit fault, which the SDM (vol. 3 4.7) has as 1: a
 * reserved bit counts only in a present entry.  On the shadow MMU the
 * hypervisor's walker makes the error code, which must have P.  The module
 * parameter says which: PF_P when P may be missing, 0 when it must be there.
 */
static uint32_t rsvd_p_optional(void)
{
	static const char *const params[] = {
		"/sys/module/minikvm/parameters/npt", "/sys/module/kvm_amd/parameters/npt",
	};

	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(params[i], "r");
		int c;

		if (!f)
			continue;
		c = fgetc(f);
		fclose(f);
		return c == 'N' || c == '0' ? 0 : PF_P;
	}
	return PF_P;
}

/* ------------------------------------------------------------------------
 * Host side: guest memory and the 4-level tables
 */

static void fill_marks(struct kvm_vm *vm, uint64_t gpa, uint64_t size)
{
	uint64_t *p = gpa2hva(vm, gpa);

	for (uint64_t i = 0; i < size / 8; i++)
		p[i] = MARK(gpa + 8 * i);
}

/* The dword a 32-bit guest reads at @gpa of a page fill_marks() filled. */
static uint32_t mark32(uint64_t gpa)
{
	uint64_t q = MARK(gpa & ~7ULL);

	return gpa & 4 ? q >> 32 : (uint32_t)q;
}

static uint64_t *hpte(struct kvm_vm *vm, uint64_t gpa)
{
	return gpa2hva(vm, gpa);
}

static uint32_t *hpte32(struct kvm_vm *vm, uint64_t gpa)
{
	return gpa2hva(vm, gpa);
}

static uint64_t page(struct kvm_vm *vm)
{
	return vm_alloc_pages(vm, 1);
}

/* A fresh page in slot 0 full of marks. */
static uint64_t marked_page(struct kvm_vm *vm)
{
	uint64_t gpa = page(vm);

	fill_marks(vm, gpa, PAGE_SIZE);
	return gpa;
}

/* A fresh page in slot 0 with code_bytes at its start. */
static uint64_t code_page(struct kvm_vm *vm)
{
	uint64_t gpa = page(vm);

	memcpy(gpa2hva(vm, gpa), code_bytes, sizeof(code_bytes));
	return gpa;
}

static unsigned int pt_idx(uint64_t va, int level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}

/*
 * The GPA of the entry at @level that translates @gva under @root, making
 * the tables above it (P, R/W, U/S: the leaf decides the rights).  The
 * guest reaches it at the same address: the library identity-maps the low
 * 4 GiB, and the library allocates tables in slot 0.
 */
static uint64_t entry_gpa(struct kvm_vm *vm, uint64_t root, uint64_t gva, int level)
{
	uint64_t table = root;

	for (int l = 4; l > level; l--) {
		uint64_t *e = hpte(vm, table + 8 * pt_idx(gva, l));

		if (!(*e & PTE_P))
			*e = page(vm) | PTE_P | PTE_RW | PTE_US;
		TEST_ASSERT(!(*e & PTE_PS), "gva %#" PRIx64 " has a large page at level %d",
			    gva, l);
		table = *e & PTE_ADDR_MASK;
	}
	return table + 8 * pt_idx(gva, level);
}

/* The GPA of the PTE (level 1) of @gva, which the library mapped. */
static uint64_t pte_gpa(struct kvm_vm *vm, uint64_t gva, int level)
{
	return (uint8_t *)virt_pte(vm, gva, level) - (uint8_t *)gpa2hva(vm, 0);
}

/* ------------------------------------------------------------------------
 * Guest side (64-bit)
 */

static inline uint64_t rd(uint64_t va)
{
	return *(volatile uint64_t *)va;
}

static inline void wr(uint64_t va, uint64_t v)
{
	*(volatile uint64_t *)va = v;
}

static inline void invlpg(uint64_t va)
{
	asm volatile("invlpg (%0)" :: "r"(va) : "memory");
}

#define DEFINE_CR(n)								\
static inline uint64_t get_cr##n(void)						\
{										\
	uint64_t v;								\
										\
	asm volatile("mov %%cr" #n ", %0" : "=r"(v));				\
	return v;								\
}										\
static inline void set_cr##n(uint64_t v)					\
{										\
	asm volatile("mov %0, %%cr" #n :: "r"(v) : "memory");			\
}
DEFINE_CR(0)
DEFINE_CR(3)
DEFINE_CR(4)

/*
 * Kernel accesses that may fault: the #PF handler makes them return
 * FAULTED.  pk_call calls its argument; a fetch that faults returns to it.
 * The _stac forms run with RFLAGS.AC set (SMAP allows them); a fault in
 * them is unexpected.
 */
uint64_t pk_read(uint64_t va);
uint64_t pk_write(uint64_t va, uint64_t v);
uint64_t pk_call(uint64_t va);
uint64_t pk_read_stac(uint64_t va);
uint64_t pk_write_stac(uint64_t va, uint64_t v);
extern const char pk_read_insn[], pk_write_insn[], pk_fixup[];
asm(".pushsection .text\n"
    "pk_read:\n"
    "pk_read_insn:\n"
    "	mov (%rdi), %rax\n"
    "pk_fixup:\n"
    "	ret\n"
    "pk_write:\n"
    "	xor %eax, %eax\n"
    "pk_write_insn:\n"
    "	mov %rsi, (%rdi)\n"
    "	ret\n"
    "pk_call:\n"
    "	call *%rdi\n"
    "	ret\n"
    "pk_read_stac:\n"
    "	stac\n"
    "	mov (%rdi), %rax\n"
    "	clac\n"
    "	ret\n"
    "pk_write_stac:\n"
    "	stac\n"
    "	mov %rsi, (%rdi)\n"
    "	clac\n"
    "	xor %eax, %eax\n"
    "	ret\n"
    ".popsection\n");

/* User accesses, in pages of their own that get the U bit. */
extern const char pu_start[], pu_end[], pu_read[], pu_write[], pu_write_insn[];
asm(".pushsection .text.paging_user, \"ax\", @progbits\n"
    ".p2align 12\n"
    "pu_start:\n"
    "pu_read:\n"
    "	mov (%rdi), %rax\n"
    "	ret\n"
    "pu_write:\n"
    "	xor %eax, %eax\n"
    "pu_write_insn:\n"
    "	mov %rsi, (%rdi)\n"
    "	ret\n"
    ".p2align 12\n"
    "pu_end:\n"
    ".popsection\n");

static uint64_t user_read(uint64_t va)
{
	return guest_user_call((guest_user_fn)(uint64_t)pu_read, 0, va, 0, 0, 0);
}

static uint64_t user_write(uint64_t va, uint64_t v)
{
	return guest_user_call((guest_user_fn)(uint64_t)pu_write, 0, va, v, 0, 0);
}

static uint64_t user_call(uint64_t va)
{
	return guest_user_call((guest_user_fn)va, 0, 0, 0, 0, 0);
}

/* The last #PF, and how many there were. */
static volatile struct {
	uint64_t count, error_code, cr2, rip;
} pf;

static void pf_handler(struct ex_regs *regs)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	pf.count++;
	pf.error_code = regs->error_code;
	pf.cr2 = cr2;
	pf.rip = regs->rip;
	if ((regs->cs & 3) == 3) {
		guest_user_abort(regs, FAULTED);
		return;
	}
	if (regs->rip == (uint64_t)pk_read_insn || regs->rip == (uint64_t)pk_write_insn) {
		regs->rax = FAULTED;
		regs->rip = (uint64_t)pk_fixup;
		return;
	}
	if (regs->rip == cr2) {
		/* A fetch: back to the caller, pk_call() or the user trampoline. */
		regs->rax = FAULTED;
		regs->rip = *(uint64_t *)regs->rsp;
		regs->rsp += 8;
		return;
	}
	for (;;)
		ucall(UCALL_UNHANDLED, regs->vector, regs->rip, regs->error_code, cr2, 0, 0);
}

/* @access faulted once, with this error code, CR2 and RIP. */
#define GUEST_ASSERT_PF(access, err, addr, ip)					\
	do {									\
		uint64_t __n = pf.count;					\
										\
		GUEST_ASSERT_EQ(access, FAULTED);				\
		GUEST_ASSERT_EQ(pf.count, __n + 1);				\
		GUEST_ASSERT_EQ(pf.error_code, err);				\
		GUEST_ASSERT_EQ(pf.cr2, addr);					\
		GUEST_ASSERT_EQ(pf.rip, (uint64_t)(ip));			\
	} while (0)

/*
 * A reserved-bit #PF: as GUEST_ASSERT_PF, but P may be missing when
 * @p_optional is PF_P (rsvd_p_optional()); rsvd_without_p counts those.
 */
static uint64_t rsvd_without_p;

#define GUEST_ASSERT_RSVD_PF(access, err, addr, ip, p_optional)		\
	do {									\
		uint64_t __n = pf.count;					\
										\
		GUEST_ASSERT_EQ(access, FAULTED);				\
		GUEST_ASSERT_EQ(pf.count, __n + 1);				\
		GUEST_ASSERT_EQ(pf.error_code | (p_optional), err);		\
		rsvd_without_p += !(pf.error_code & PF_P);			\
		GUEST_ASSERT_EQ(pf.cr2, addr);					\
		GUEST_ASSERT_EQ(pf.rip, (uint64_t)(ip));			\
	} while (0)

static struct kvm_vcpu *lm_create(struct kvm_vm **vmp, void (*fn)(void))
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, fn);

	virt_set_user(vm, (uint64_t)pu_start, pu_end - pu_start);
	vm_install_exception_handler(vm, PF_VECTOR, pf_handler);
	*vmp = vm;
	return vcpu;
}

static void expect_sync(struct kvm_vcpu *vcpu, uint64_t stage)
{
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], stage);
}

static void expect_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
}

/* ------------------------------------------------------------------------
 * 4-level paging: 4 KiB, 2 MiB and 1 GiB pages
 */

static void guest_4k_remap(uint64_t pte, uint64_t a, uint64_t b)
{
	volatile uint64_t *e = (volatile uint64_t *)pte;

	*e = a | PTE_PRW;	/* not present before: nothing to invalidate */
	GUEST_ASSERT_EQ(rd(WIN + 0x10), MARK(a + 0x10));
	wr(WIN + 8, 0x1111);
	*e = b | PTE_PRW;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN + 0x10), MARK(b + 0x10));
	wr(WIN + 8, 0x2222);
	*e = a | PTE_PRW;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN + 8), 0x1111);
	/* A guest physical address without a memslot: MMIO at that address. */
	*e = MMIO_GPA | PTE_PRW;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN + 0x10), MMIO_VALUE);
	wr(WIN + 0x18, 0x5678);
	/* Not present: #PF without P, W for the write. */
	*e = 0;
	invlpg(WIN);
	GUEST_ASSERT_PF(pk_read(WIN + 0x20), 0, WIN + 0x20, pk_read_insn);
	GUEST_ASSERT_PF(pk_write(WIN + 0x28, 1), PF_W, WIN + 0x28, pk_write_insn);
	*e = b | PTE_PRW;
	GUEST_ASSERT_EQ(rd(WIN + 8), 0x2222);
	GUEST_ASSERT_EQ(rd(WIN + 0x28), MARK(b + 0x28));
}

/* One linear page remapped between two physical pages, RAM without a memslot. */
TEST(long_mode_4k_remap)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_4k_remap);
	uint64_t pte = entry_gpa(vm, vm->pt.root, WIN, 1);
	uint64_t a = marked_page(vm), b = marked_page(vm);
	uint64_t *pa = gpa2hva(vm, a), *pb = gpa2hva(vm, b);

	vcpu_args_set(vcpu, 3, pte, a, b);
	vcpu_expect_mmio(vcpu, MMIO_GPA + 0x10, 8, false, MMIO_VALUE);
	vcpu_expect_mmio(vcpu, MMIO_GPA + 0x18, 8, true, 0x5678);
	expect_done(vcpu);
	TEST_ASSERT_EQ(pa[1], 0x1111);
	TEST_ASSERT_EQ(pb[1], 0x2222);
	/* Nothing else was written: not the faulting writes, not the MMIO one. */
	for (int i = 2; i < 512; i++) {
		TEST_ASSERT_EQ(pa[i], MARK(a + 8 * i));
		TEST_ASSERT_EQ(pb[i], MARK(b + 8 * i));
	}
	TEST_ASSERT_EQ(*hpte(vm, pte), b | PTE_PRW | PTE_A);
	vm_free(vm);
}

/*
 * One physical page at 3000 linear addresses, each in its own 2 MiB: more
 * translations (and on the shadow MMU more tables) than a TLB or minikvm's
 * per-vCPU cap of 2048 shadow tables holds, read twice, then written
 * through every alias.
 */
#define SPARSE_GVA	0x100000000000ULL
#define SPARSE_N	3000
#define PMD_BYTES	(2ULL << 20)

static void guest_sparse(uint64_t base)
{
	for (int round = 0; round < 2; round++)
		for (uint64_t i = 0; i < SPARSE_N; i++)
			GUEST_ASSERT_EQ(rd(base + i * PMD_BYTES + 8 * (i % 512)),
					MARK(8 * (i % 512)));
	for (uint64_t i = 0; i < SPARSE_N; i++)
		wr(base + i * PMD_BYTES + 8 * (i % 512), i);
}

TEST(many_sparse_mappings)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_sparse);
	uint64_t a = page(vm), *pa = gpa2hva(vm, a);

	/* MARK of the offset, not of the address: the same page everywhere. */
	for (int i = 0; i < 512; i++)
		pa[i] = MARK(8 * i);
	for (uint64_t i = 0; i < SPARSE_N; i++)
		virt_map(vm, SPARSE_GVA + i * PMD_BYTES, a, PAGE_SIZE);
	vcpu_args_set(vcpu, 1, SPARSE_GVA);
	expect_done(vcpu);
	/* The last write to each offset wins: i, i + 512, ... below SPARSE_N. */
	for (uint64_t off = 0; off < 512; off++) {
		uint64_t last = off + (SPARSE_N - 1 - off) / 512 * 512;

		TEST_ASSERT_EQ(pa[off], last);
	}
	vm_free(vm);
}

#define LM2M_A		0x2000000ULL	/* 2 MiB-aligned, in slot 0, beyond the library's pages */
#define LM2M_B		0x2200000ULL

static void guest_2m(uint64_t pde, uint64_t a, uint64_t b, uint64_t pt, uint64_t c)
{
	static const uint64_t offs[] = { 0, 0x123450, 0x1ffff8 };
	volatile uint64_t *e = (volatile uint64_t *)pde;

	*e = a | PTE_PRW | PTE_PS;
	for (int i = 0; i < 3; i++)
		GUEST_ASSERT_EQ(rd(WIN + offs[i]), MARK(a + offs[i]));
	GUEST_ASSERT_EQ(*e, a | PTE_PRW | PTE_PS | PTE_A);
	wr(WIN + 0x100000, 0x2001);
	GUEST_ASSERT_EQ(*e, a | PTE_PRW | PTE_PS | PTE_A | PTE_D);
	/* INVLPG of any address in the page invalidates all of it. */
	*e = b | PTE_PRW | PTE_PS;
	invlpg(WIN + 0x1ff000);
	for (int i = 0; i < 3; i++)
		GUEST_ASSERT_EQ(rd(WIN + offs[i]), MARK(b + offs[i]));
	GUEST_ASSERT_EQ(*e, b | PTE_PRW | PTE_PS | PTE_A);
	wr(WIN + 0x100008, 0x2002);
	GUEST_ASSERT_EQ(rd(WIN + 0x100008), 0x2002);
	/* A page table under the same PDE, then the large page again (CR3 reloads). */
	*e = pt | PTE_PRW;
	set_cr3(get_cr3());
	GUEST_ASSERT_EQ(rd(WIN + 0x123450), MARK(c + 0x450));
	GUEST_ASSERT_PF(pk_read(WIN + 0x124000), 0, WIN + 0x124000, pk_read_insn);
	*e = a | PTE_PRW | PTE_PS;
	set_cr3(get_cr3());
	GUEST_ASSERT_EQ(rd(WIN + 0x100000), 0x2001);
	GUEST_ASSERT_EQ(rd(WIN + 0x124000), MARK(a + 0x124000));
	/* Not present. */
	*e = 0;
	invlpg(WIN + 0x80000);
	GUEST_ASSERT_PF(pk_read(WIN + 0x123450), 0, WIN + 0x123450, pk_read_insn);
}

TEST(long_mode_2m_pages)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_2m);
	uint64_t pde = entry_gpa(vm, vm->pt.root, WIN, 2);
	uint64_t pt = page(vm), c = marked_page(vm);
	uint64_t *pa = gpa2hva(vm, LM2M_A), *pb = gpa2hva(vm, LM2M_B);

	TEST_ASSERT(vm->next_page <= LM2M_A, "the library's pages reach %#" PRIx64,
		    vm->next_page);
	fill_marks(vm, LM2M_A, 2 * PG_SIZE_2M);
	*hpte(vm, pt + 8 * 0x123) = c | PTE_PRW;
	vcpu_args_set(vcpu, 5, pde, LM2M_A, LM2M_B, pt, c);
	expect_done(vcpu);
	TEST_ASSERT_EQ(pa[0x100000 / 8], 0x2001);
	TEST_ASSERT_EQ(pa[0x100008 / 8], MARK(LM2M_A + 0x100008));
	TEST_ASSERT_EQ(pb[0x100008 / 8], 0x2002);
	TEST_ASSERT_EQ(pb[0x100000 / 8], MARK(LM2M_B + 0x100000));
	TEST_ASSERT_EQ(*hpte(vm, pde), 0);
	vm_free(vm);
}

/*
 * The same on memory the host backs with huge pages: a hypervisor may then
 * map the guest's 2 MiB pages with 2 MiB entries of its own (the shadow
 * MMU does), and must still follow each change of the guest's.
 */
#define HUGE_SLOT	1
#define HUGE_GPA	0x40000000ULL

TEST(long_mode_2m_pages_on_host_huge_pages)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_2m);
	uint64_t pde = entry_gpa(vm, vm->pt.root, WIN, 2);
	uint64_t pt = page(vm), c = marked_page(vm), a = HUGE_GPA, b = HUGE_GPA + PG_SIZE_2M;
	uint64_t *mem = vm_add_memslot_huge(vm, HUGE_SLOT, 0, HUGE_GPA, 2 * PG_SIZE_2M);
	uint64_t *pa = mem, *pb = mem + PG_SIZE_2M / 8;

	if (host_huge_kb(mem) <= 0)
		SKIP("the host backed none of the slot with huge pages");
	for (uint64_t off = 0; off < 2 * PG_SIZE_2M; off += 8)
		mem[off / 8] = MARK(HUGE_GPA + off);
	*hpte(vm, pt + 8 * 0x123) = c | PTE_PRW;
	vcpu_args_set(vcpu, 5, pde, a, b, pt, c);
	expect_done(vcpu);
	TEST_ASSERT_EQ(pa[0x100000 / 8], 0x2001);
	TEST_ASSERT_EQ(pa[0x100008 / 8], MARK(a + 0x100008));
	TEST_ASSERT_EQ(pb[0x100008 / 8], 0x2002);
	TEST_ASSERT_EQ(pb[0x100000 / 8], MARK(b + 0x100000));
	TEST_ASSERT_EQ(*hpte(vm, pde), 0);
	vm_free(vm);
}

#define LM1G_HIGH	(4ULL << 30)		/* the second 1 GiB page: a slot at 4 GiB */
#define LM1G_OFF_A	0x3000000ULL		/* offsets in the page backed by RAM */
#define LM1G_OFF_B	0x3ff0ff8ULL
#define LM1G_OFF_MMIO	0x30000000ULL		/* and one that is not */

static void guest_1g(uint64_t pdpte, uint64_t p1, uint64_t p2)
{
	volatile uint64_t *e = (volatile uint64_t *)pdpte;

	*e = p1 | PTE_PRW | PTE_PS;
	GUEST_ASSERT_EQ(rd(WIN + LM1G_OFF_A), MARK(p1 + LM1G_OFF_A));
	GUEST_ASSERT_EQ(rd(WIN + LM1G_OFF_B), MARK(p1 + LM1G_OFF_B));
	GUEST_ASSERT_EQ(*e, p1 | PTE_PRW | PTE_PS | PTE_A);
	wr(WIN + LM1G_OFF_A + 8, 0x1001);
	GUEST_ASSERT_EQ(*e, p1 | PTE_PRW | PTE_PS | PTE_A | PTE_D);
	GUEST_ASSERT_EQ(rd(WIN + LM1G_OFF_MMIO), MMIO_VALUE);
	*e = p2 | PTE_PRW | PTE_PS;
	invlpg(WIN + PG_SIZE_1G - PAGE_SIZE);
	GUEST_ASSERT_EQ(rd(WIN + LM1G_OFF_A), MARK(p2 + LM1G_OFF_A));
	GUEST_ASSERT_EQ(rd(WIN + LM1G_OFF_B), MARK(p2 + LM1G_OFF_B));
	GUEST_ASSERT_EQ(*e, p2 | PTE_PRW | PTE_PS | PTE_A);
	wr(WIN + LM1G_OFF_A + 16, 0x1002);
	GUEST_ASSERT_EQ(rd(WIN + LM1G_OFF_MMIO), MMIO_VALUE + 1);
}

/* A 1 GiB page at guest physical 0, then at 4 GiB; both run past RAM into MMIO. */
TEST(long_mode_1g_pages)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_1g);
	uint64_t pdpte = entry_gpa(vm, vm->pt.root, WIN, 3);
	uint64_t *low, *high;

	if (!HAS_1G(vm))
		SKIP("no 1 GiB pages in KVM_GET_SUPPORTED_CPUID (8000_0001h.EDX bit 26)");
	vm_add_memslot(vm, 2, 0, LM1G_HIGH, DEFAULT_GUEST_MEM);
	TEST_ASSERT(vm->next_page <= LM1G_OFF_A, "the library's pages reach %#" PRIx64,
		    vm->next_page);
	for (uint64_t base = 0; base <= LM1G_HIGH; base += LM1G_HIGH) {
		fill_marks(vm, base + LM1G_OFF_A, PAGE_SIZE);
		fill_marks(vm, base + (LM1G_OFF_B & ~(PAGE_SIZE - 1)), PAGE_SIZE);
	}
	low = gpa2hva(vm, LM1G_OFF_A);
	high = gpa2hva(vm, LM1G_HIGH + LM1G_OFF_A);
	vcpu_args_set(vcpu, 3, pdpte, 0, LM1G_HIGH);
	vcpu_expect_mmio(vcpu, LM1G_OFF_MMIO, 8, false, MMIO_VALUE);
	vcpu_expect_mmio(vcpu, LM1G_HIGH + LM1G_OFF_MMIO, 8, false, MMIO_VALUE + 1);
	expect_done(vcpu);
	TEST_ASSERT_EQ(low[1], 0x1001);
	TEST_ASSERT_EQ(low[2], MARK(LM1G_OFF_A + 16));
	TEST_ASSERT_EQ(high[1], MARK(LM1G_HIGH + LM1G_OFF_A + 8));
	TEST_ASSERT_EQ(high[2], 0x1002);
	TEST_ASSERT_EQ(*hpte(vm, pdpte), LM1G_HIGH | PTE_PRW | PTE_PS | PTE_A | PTE_D);
	vm_free(vm);
}

/* ------------------------------------------------------------------------
 * Access rights and #PF error codes
 */

static void guest_user_supervisor(uint64_t a, uint64_t b, uint64_t c, uint64_t pde)
{
	volatile uint64_t *e = (volatile uint64_t *)pde;
	uint64_t win2 = WIN + PG_SIZE_2M;

	GUEST_ASSERT_PF(user_read(WIN + 0x10), PF_U | PF_P, WIN + 0x10, pu_read);
	GUEST_ASSERT_PF(user_write(WIN + 0x18, 1), PF_U | PF_W | PF_P, WIN + 0x18,
			pu_write_insn);
	GUEST_ASSERT_EQ(pk_read(WIN + 0x10), MARK(a + 0x10));
	GUEST_ASSERT_EQ(user_read(WIN + PAGE_SIZE + 0x10), MARK(b + 0x10));
	GUEST_ASSERT_EQ(user_write(WIN + PAGE_SIZE + 0x18, 0x77), 0);
	/* U/S of each level counts: a PDE without it makes its user pages the kernel's. */
	GUEST_ASSERT_EQ(user_read(win2 + 0x20), MARK(c + 0x20));
	*e &= ~PTE_US;
	invlpg(win2);
	GUEST_ASSERT_PF(user_read(win2 + 0x20), PF_U | PF_P, win2 + 0x20, pu_read);
	GUEST_ASSERT_EQ(pk_read(win2 + 0x20), MARK(c + 0x20));
	*e |= PTE_US;
	invlpg(win2);
	GUEST_ASSERT_EQ(user_read(win2 + 0x20), MARK(c + 0x20));
}

TEST(user_access_to_supervisor_page)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_user_supervisor);
	uint64_t a = marked_page(vm), b = marked_page(vm), c = marked_page(vm);

	virt_map_flags(vm, WIN, a, PAGE_SIZE, PTE_RW);
	virt_map_flags(vm, WIN + PAGE_SIZE, b, PAGE_SIZE, PTE_RW | PTE_US);
	virt_map_flags(vm, WIN + PG_SIZE_2M, c, PAGE_SIZE, PTE_RW | PTE_US);
	vcpu_args_set(vcpu, 4, a, b, c, pte_gpa(vm, WIN + PG_SIZE_2M, 2));
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, a + 0x18), MARK(a + 0x18));
	TEST_ASSERT_EQ(*hpte(vm, b + 0x18), 0x77);
	vm_free(vm);
}

static void guest_user_read_only(uint64_t a, uint64_t pte, uint64_t pde)
{
	volatile uint64_t *e = (volatile uint64_t *)pte, *d = (volatile uint64_t *)pde;
	uint64_t rw = WIN + PAGE_SIZE;

	GUEST_ASSERT_EQ(user_read(WIN + 8), MARK(a + 8));
	GUEST_ASSERT_PF(user_write(WIN + 8, 1), PF_U | PF_W | PF_P, WIN + 8, pu_write_insn);
	/* The kernel with CR0.WP = 1 may not write it either. */
	GUEST_ASSERT_PF(pk_write(WIN + 8, 2), PF_W | PF_P, WIN + 8, pk_write_insn);
	GUEST_ASSERT_EQ(user_write(rw + 8, 0x77), 0);
	GUEST_ASSERT_EQ(pk_read(rw + 8), 0x77);
	/* R/W of each level counts: the PDE. */
	*d &= ~PTE_RW;
	invlpg(rw);
	GUEST_ASSERT_PF(user_write(rw + 8, 3), PF_U | PF_W | PF_P, rw + 8, pu_write_insn);
	GUEST_ASSERT_EQ(user_read(rw + 8), 0x77);
	*d |= PTE_RW;
	invlpg(rw);
	GUEST_ASSERT_EQ(user_write(rw + 8, 0x78), 0);
	/* Made writable: the write that faulted before goes through. */
	*e |= PTE_RW;
	invlpg(WIN);
	GUEST_ASSERT_EQ(user_write(WIN + 8, 0x99), 0);
	GUEST_ASSERT_EQ(pk_read(WIN + 8), 0x99);
}

TEST(user_write_to_read_only_page)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_user_read_only);
	uint64_t a = marked_page(vm), b = marked_page(vm);

	virt_map_flags(vm, WIN, a, PAGE_SIZE, PTE_US);
	virt_map_flags(vm, WIN + PAGE_SIZE, b, PAGE_SIZE, PTE_RW | PTE_US);
	vcpu_args_set(vcpu, 3, a, pte_gpa(vm, WIN, 1), pte_gpa(vm, WIN, 2));
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 0x99);
	TEST_ASSERT_EQ(*hpte(vm, b + 8), 0x78);
	vm_free(vm);
}

/*
 * CR0.WP = 0 lets the kernel write read-only pages (SDM vol. 3 4.6.1), user
 * ones too, which stay read-only for the user; WP applies at each access.
 */
static void guest_wp(uint64_t a, uint64_t b)
{
	uint64_t cr0 = get_cr0(), ro = WIN + PAGE_SIZE;

	/* WIN: a user read-only page (a); WIN + 4 KiB: a kernel read-only page (b). */
	GUEST_ASSERT_PF(pk_write(ro, 1), PF_W | PF_P, ro, pk_write_insn);
	GUEST_ASSERT_PF(pk_write(WIN, 1), PF_W | PF_P, WIN, pk_write_insn);
	set_cr0(cr0 & ~CR0_WP);
	GUEST_ASSERT_EQ(pk_write(ro, 0x3333), 0);
	GUEST_ASSERT_EQ(rd(ro), 0x3333);
	GUEST_ASSERT_EQ(pk_write(WIN, 0x4444), 0);
	GUEST_ASSERT_EQ(user_read(WIN), 0x4444);
	GUEST_ASSERT_PF(user_write(WIN, 5), PF_U | PF_W | PF_P, WIN, pu_write_insn);
	GUEST_ASSERT_EQ(pk_write(WIN, 0x5555), 0);
	set_cr0(cr0);
	GUEST_ASSERT_PF(pk_write(WIN, 6), PF_W | PF_P, WIN, pk_write_insn);
	GUEST_ASSERT_PF(pk_write(ro, 6), PF_W | PF_P, ro, pk_write_insn);
	GUEST_ASSERT_EQ(rd(WIN), 0x5555);
	GUEST_ASSERT_EQ(rd(ro), 0x3333);
	GUEST_ASSERT_EQ(user_read(WIN + 8), MARK(a + 8));
	GUEST_ASSERT_EQ(rd(ro + 8), MARK(b + 8));
}

TEST(kernel_write_to_read_only_page_cr0_wp)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_wp);
	uint64_t a = marked_page(vm), b = marked_page(vm);

	virt_map_flags(vm, WIN, a, PAGE_SIZE, PTE_US);
	virt_map_flags(vm, WIN + PAGE_SIZE, b, PAGE_SIZE, 0);
	vcpu_args_set(vcpu, 2, a, b);
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, a), 0x5555);
	TEST_ASSERT_EQ(*hpte(vm, b), 0x3333);
	/* The writes CR0.WP = 0 allowed set the dirty flags of the read-only PTEs. */
	TEST_ASSERT_EQ(*virt_pte(vm, WIN, 1), a | PTE_P | PTE_US | PTE_A | PTE_D);
	TEST_ASSERT_EQ(*virt_pte(vm, WIN + PAGE_SIZE, 1), b | PTE_P | PTE_A | PTE_D);
	vm_free(vm);
}

/*
 * NX: a fetch from a page with XD is #PF with I/D (SDM vol. 3 4.6.1, 4.7),
 * at either CPL; data accesses are fine.  Without EFER.NXE bit 63 is
 * reserved (RSVD), and I/D stays clear for a fetch without NXE and SMEP.
 */
static void guest_nx(uint64_t pte, uint64_t upte, uint64_t p_opt)
{
	volatile uint64_t *e = (volatile uint64_t *)pte, *ue = (volatile uint64_t *)upte;
	uint64_t efer = guest_rdmsr(MSR_EFER), u = WIN + PAGE_SIZE, k = WIN + 2 * PAGE_SIZE;

	/* WIN: kernel code with XD; u: user code with XD; k: kernel code. */
	GUEST_ASSERT_RSVD_PF(pk_read(WIN), PF_RSVD | PF_P, WIN, pk_read_insn, p_opt);
	GUEST_ASSERT_RSVD_PF(pk_call(WIN), PF_RSVD | PF_P, WIN, WIN, p_opt);
	GUEST_ASSERT_RSVD_PF(user_read(u), PF_RSVD | PF_U | PF_P, u, pu_read, p_opt);
	guest_wrmsr(MSR_EFER, efer | EFER_NXE);
	GUEST_ASSERT_EQ(pk_read(WIN), CODE_QWORD);
	GUEST_ASSERT_PF(pk_call(WIN), PF_I | PF_P, WIN, WIN);
	GUEST_ASSERT_EQ(user_read(u), CODE_QWORD);
	GUEST_ASSERT_PF(user_call(u), PF_I | PF_U | PF_P, u, u);
	GUEST_ASSERT_EQ(pk_call(k), CODE_RET);
	GUEST_ASSERT_PF(user_call(k), PF_I | PF_U | PF_P, k, k);
	*e &= ~PTE_NX;
	invlpg(WIN);
	GUEST_ASSERT_EQ(pk_call(WIN), CODE_RET);
	*ue &= ~PTE_NX;
	invlpg(u);
	GUEST_ASSERT_EQ(user_call(u), CODE_RET);
	*e |= PTE_NX;
	invlpg(WIN);
	GUEST_ASSERT_PF(pk_call(WIN), PF_I | PF_P, WIN, WIN);
	/* NXE off again: after a CR3 reload bit 63 is reserved again. */
	guest_wrmsr(MSR_EFER, efer);
	set_cr3(get_cr3());
	GUEST_ASSERT_RSVD_PF(pk_read(WIN + 8), PF_RSVD | PF_P, WIN + 8, pk_read_insn, p_opt);
	GUEST_ASSERT_EQ(pk_call(k), CODE_RET);
}

TEST(nx_fetch)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_nx);

	if (!HAS_NX(vm))
		SKIP("no NX in KVM_GET_SUPPORTED_CPUID (8000_0001h.EDX bit 20)");
	virt_map_flags(vm, WIN, code_page(vm), PAGE_SIZE, PTE_RW | PTE_NX);
	virt_map_flags(vm, WIN + PAGE_SIZE, code_page(vm), PAGE_SIZE,
		       PTE_RW | PTE_US | PTE_NX);
	virt_map_flags(vm, WIN + 2 * PAGE_SIZE, code_page(vm), PAGE_SIZE, PTE_RW);
	vcpu_args_set(vcpu, 3, pte_gpa(vm, WIN, 1), pte_gpa(vm, WIN + PAGE_SIZE, 1),
		      rsvd_p_optional());
	expect_done(vcpu);
	sync_global_from_guest(vm, rsvd_without_p);
	if (rsvd_without_p)
		test_log("%" PRIu64 " reserved-bit #PF without P (the test machine's CPU)",
			 rsvd_without_p);
	vm_free(vm);
}

/* SMEP: the kernel may not fetch from a user page (SDM vol. 3 4.6.1). */
static void guest_smep(uint64_t upte)
{
	volatile uint64_t *ue = (volatile uint64_t *)upte;
	uint64_t cr0 = get_cr0(), cr4 = get_cr4(), k = WIN + PAGE_SIZE;

	/* WIN: user code; k: kernel code. */
	GUEST_ASSERT_EQ(pk_call(WIN), CODE_RET);
	set_cr4(cr4 | CR4_SMEP);
	GUEST_ASSERT_PF(pk_call(WIN), PF_I | PF_P, WIN, WIN);
	GUEST_ASSERT_EQ(pk_call(k), CODE_RET);
	GUEST_ASSERT_EQ(user_call(WIN), CODE_RET);
	GUEST_ASSERT_EQ(pk_read(WIN), CODE_QWORD);
	/* A kernel write that only CR0.WP = 0 allows leaves it a user page. */
	*ue &= ~PTE_RW;
	invlpg(WIN);
	set_cr0(cr0 & ~CR0_WP);
	GUEST_ASSERT_EQ(pk_write(WIN + 0x800, 0x1234), 0);
	GUEST_ASSERT_PF(pk_call(WIN), PF_I | PF_P, WIN, WIN);
	GUEST_ASSERT_EQ(user_call(WIN), CODE_RET);
	GUEST_ASSERT_PF(pk_call(WIN), PF_I | PF_P, WIN, WIN);
	GUEST_ASSERT_EQ(pk_read(WIN + 0x800), 0x1234);
	set_cr0(cr0);
	set_cr4(cr4);
	GUEST_ASSERT_EQ(pk_call(WIN), CODE_RET);
}

TEST(smep_kernel_fetch_from_user_page)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_smep);

	if (!HAS_SMEP(vm))
		SKIP("no SMEP in KVM_GET_SUPPORTED_CPUID (7.EBX bit 7)");
	virt_map_flags(vm, WIN, code_page(vm), PAGE_SIZE, PTE_RW | PTE_US);
	virt_map_flags(vm, WIN + PAGE_SIZE, code_page(vm), PAGE_SIZE, PTE_RW);
	vcpu_args_set(vcpu, 1, pte_gpa(vm, WIN, 1));
	expect_done(vcpu);
	vm_free(vm);
}

/* SMAP: the kernel may access user pages only with RFLAGS.AC (SDM vol. 3 4.6.1). */
static void guest_smap(uint64_t a, uint64_t b)
{
	uint64_t cr4 = get_cr4(), k = WIN + PAGE_SIZE;

	/* WIN: a user page (a); k: a kernel page (b). */
	GUEST_ASSERT_EQ(pk_read(WIN), MARK(a));
	set_cr4(cr4 | CR4_SMAP);
	GUEST_ASSERT_PF(pk_read(WIN), PF_P, WIN, pk_read_insn);
	GUEST_ASSERT_PF(pk_write(WIN + 8, 1), PF_W | PF_P, WIN + 8, pk_write_insn);
	GUEST_ASSERT_EQ(pk_read(k), MARK(b));
	GUEST_ASSERT_EQ(pk_read_stac(WIN), MARK(a));
	GUEST_ASSERT_EQ(pk_write_stac(WIN + 8, 0x5a), 0);
	GUEST_ASSERT_PF(pk_read(WIN + 8), PF_P, WIN + 8, pk_read_insn);
	GUEST_ASSERT_EQ(user_read(WIN + 8), 0x5a);
	GUEST_ASSERT_PF(pk_read(WIN + 8), PF_P, WIN + 8, pk_read_insn);
	set_cr4(cr4);
	GUEST_ASSERT_EQ(pk_read(WIN + 8), 0x5a);
}

TEST(smap_kernel_access_to_user_page)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_smap);
	uint64_t a = marked_page(vm), b = marked_page(vm);

	if (!HAS_SMAP(vm))
		SKIP("no SMAP in KVM_GET_SUPPORTED_CPUID (7.EBX bit 20)");
	virt_map_flags(vm, WIN, a, PAGE_SIZE, PTE_RW | PTE_US);
	virt_map_flags(vm, WIN + PAGE_SIZE, b, PAGE_SIZE, PTE_RW);
	vcpu_args_set(vcpu, 2, a, b);
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 0x5a);
	vm_free(vm);
}

/*
 * SMAP with CR0.WP = 0: without AC the kernel may neither read nor write a
 * user page; with AC it may write a read-only one, which stays read-only
 * for the user (SDM vol. 3 4.6.1).
 *
 * Only logged: a kernel read without AC right after such a write, which
 * the architecture faults (the page is still a user page) but the
 * reference KVM's shadow MMU (npt=0) lets through, having mapped the page
 * for the kernel alone to allow the write (KVM's Documentation/virt/kvm/
 * mmu.rst, "smap_andnot_wp").
 */
static uint64_t smap_read_after_write;

static void guest_smap_wp(uint64_t a)
{
	uint64_t cr0 = get_cr0(), cr4 = get_cr4();

	set_cr4(cr4 | CR4_SMAP);
	set_cr0(cr0 & ~CR0_WP);
	GUEST_ASSERT_PF(pk_write(WIN + 8, 1), PF_W | PF_P, WIN + 8, pk_write_insn);
	GUEST_ASSERT_PF(pk_read(WIN + 8), PF_P, WIN + 8, pk_read_insn);
	GUEST_ASSERT_EQ(pk_write_stac(WIN + 8, 0x77), 0);
	smap_read_after_write = pk_read(WIN + 0x10);
	GUEST_ASSERT_EQ(pk_read_stac(WIN + 8), 0x77);
	GUEST_ASSERT_EQ(user_read(WIN + 8), 0x77);
	GUEST_ASSERT_PF(user_write(WIN + 8, 2), PF_U | PF_W | PF_P, WIN + 8, pu_write_insn);
	GUEST_ASSERT_PF(pk_read(WIN + 0x10), PF_P, WIN + 0x10, pk_read_insn);
	GUEST_ASSERT_EQ(pk_read_stac(WIN + 0x10), MARK(a + 0x10));
	set_cr0(cr0);
	set_cr4(cr4);
}

TEST(smap_kernel_write_to_read_only_user_page_wp_off)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_smap_wp);
	uint64_t a = marked_page(vm);

	if (!HAS_SMAP(vm))
		SKIP("no SMAP in KVM_GET_SUPPORTED_CPUID (7.EBX bit 20)");
	virt_map_flags(vm, WIN, a, PAGE_SIZE, PTE_US);
	vcpu_args_set(vcpu, 1, a);
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 0x77);
	sync_global_from_guest(vm, smap_read_after_write);
	TEST_ASSERT(smap_read_after_write == FAULTED || smap_read_after_write == MARK(a + 0x10),
		    "read %#" PRIx64, smap_read_after_write);
	test_log("a kernel read without AC after a write with AC and CR0.WP = 0 %s",
		 smap_read_after_write == FAULTED ? "faulted" :
		 "did not fault (the architecture's #PF is missing)");
	vm_free(vm);
}

/* ------------------------------------------------------------------------
 * Invalidation: INVLPG, MOV to CR3, PCIDs, global pages
 */

static void guest_pde_change(uint64_t pde, uint64_t pt2, uint64_t a, uint64_t b, uint64_t c,
			     uint64_t d)
{
	uint64_t far = WIN + 5 * PAGE_SIZE;

	GUEST_ASSERT_EQ(rd(WIN), MARK(a));
	GUEST_ASSERT_EQ(rd(far), MARK(b));
	*(volatile uint64_t *)pde = pt2 | PTE_PRW | PTE_US;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN), MARK(c));
	invlpg(far);
	GUEST_ASSERT_EQ(rd(far + 8), MARK(d + 8));
}

/* A PDE changed to another page table: INVLPG of each page used. */
TEST(invlpg_after_pde_change)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_pde_change);
	uint64_t a = marked_page(vm), b = marked_page(vm), c = marked_page(vm);
	uint64_t d = marked_page(vm), pt2 = page(vm);

	virt_map(vm, WIN, a, PAGE_SIZE);
	virt_map(vm, WIN + 5 * PAGE_SIZE, b, PAGE_SIZE);
	*hpte(vm, pt2) = c | PTE_PRW;
	*hpte(vm, pt2 + 5 * 8) = d | PTE_PRW;
	vcpu_args_set(vcpu, 6, pte_gpa(vm, WIN, 2), pt2, a, b, c, d);
	expect_done(vcpu);
	vm_free(vm);
}

static void guest_two_roots(uint64_t root_b, uint64_t pte_b, uint64_t x, uint64_t y,
			    uint64_t z)
{
	uint64_t root_a = get_cr3();

	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
	set_cr3(root_b);
	GUEST_ASSERT_EQ(rd(WIN), MARK(y));
	wr(WIN + 8, 0xb);
	set_cr3(root_a);
	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
	GUEST_ASSERT_EQ(rd(WIN + 8), MARK(x + 8));
	/* The other root's table changes while it is not in use. */
	*(volatile uint64_t *)pte_b = z | PTE_PRW;
	set_cr3(root_b);
	GUEST_ASSERT_EQ(rd(WIN), MARK(z));
	set_cr3(root_a);
	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
}

/* Two PML4s that share everything but the tables of WIN. */
static uint64_t second_root(struct kvm_vm *vm)
{
	uint64_t root_b = page(vm);

	memcpy(gpa2hva(vm, root_b), gpa2hva(vm, vm->pt.root), PAGE_SIZE);
	*hpte(vm, root_b + 8 * pt_idx(WIN, 4)) = 0;
	return root_b;
}

TEST(cr3_switch_between_two_roots)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_two_roots);
	uint64_t x = marked_page(vm), y = marked_page(vm), z = marked_page(vm);
	uint64_t root_b, pte_b;

	virt_map(vm, WIN, x, PAGE_SIZE);
	root_b = second_root(vm);
	pte_b = entry_gpa(vm, root_b, WIN, 1);
	*hpte(vm, pte_b) = y | PTE_PRW;
	vcpu_args_set(vcpu, 5, root_b, pte_b, x, y, z);
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, y + 8), 0xb);
	TEST_ASSERT_EQ(*hpte(vm, x + 8), MARK(x + 8));
	vm_free(vm);
}

/*
 * PCIDs (SDM vol. 3 4.10.1): each load of CR3 gives the translations of the
 * tables it names; bit 63 only allows keeping the PCID's old ones, which
 * here are still right, and a load without it drops them.
 */
static void guest_pcid(uint64_t root_b, uint64_t pte_b, uint64_t x, uint64_t y, uint64_t z)
{
	volatile uint64_t *e = (volatile uint64_t *)pte_b;
	uint64_t root_a = get_cr3(), cr4 = get_cr4();

	set_cr4(cr4 | CR4_PCIDE);
	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
	set_cr3(root_b | 1);
	GUEST_ASSERT_EQ(rd(WIN), MARK(y));
	set_cr3(root_a | CR3_NOFLUSH);
	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
	set_cr3(root_b | 1 | CR3_NOFLUSH);
	GUEST_ASSERT_EQ(get_cr3(), root_b | 1);
	GUEST_ASSERT_EQ(rd(WIN), MARK(y));
	set_cr3(root_a);
	*e = z | PTE_PRW;
	set_cr3(root_b | 1);
	GUEST_ASSERT_EQ(rd(WIN), MARK(z));
	*e = y | PTE_PRW;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN), MARK(y));
	set_cr3(root_a | CR3_NOFLUSH);
	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
	set_cr4(cr4);
	GUEST_ASSERT_EQ(rd(WIN), MARK(x));
}

TEST(pcid_cr3_loads)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_pcid);
	uint64_t x = marked_page(vm), y = marked_page(vm), z = marked_page(vm);
	uint64_t root_b, pte_b;

	if (!HAS_PCID(vm))
		SKIP("no PCID in KVM_GET_SUPPORTED_CPUID (1.ECX bit 17)");
	virt_map(vm, WIN, x, PAGE_SIZE);
	root_b = second_root(vm);
	pte_b = entry_gpa(vm, root_b, WIN, 1);
	*hpte(vm, pte_b) = y | PTE_PRW;
	vcpu_args_set(vcpu, 5, root_b, pte_b, x, y, z);
	expect_done(vcpu);
	vm_free(vm);
}

/* Global pages: INVLPG and a change of CR4.PGE invalidate them (SDM vol. 3 4.10.4.1). */
static void guest_global(uint64_t pte, uint64_t a, uint64_t b, uint64_t c)
{
	volatile uint64_t *e = (volatile uint64_t *)pte;
	uint64_t cr4 = get_cr4();

	set_cr4(cr4 | CR4_PGE);
	*e = a | PTE_PRW | PTE_G;
	GUEST_ASSERT_EQ(rd(WIN), MARK(a));
	set_cr3(get_cr3());
	GUEST_ASSERT_EQ(rd(WIN), MARK(a));
	*e = b | PTE_PRW | PTE_G;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN), MARK(b));
	*e = c | PTE_PRW | PTE_G;
	set_cr4(cr4);
	GUEST_ASSERT_EQ(rd(WIN), MARK(c));
	set_cr4(cr4 | CR4_PGE);
	GUEST_ASSERT_EQ(rd(WIN + 8), MARK(c + 8));
	*e = a | PTE_PRW;
	set_cr4(cr4);
	GUEST_ASSERT_EQ(rd(WIN + 8), MARK(a + 8));
}

TEST(global_pages)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_global);
	uint64_t a = marked_page(vm), b = marked_page(vm), c = marked_page(vm);

	if (!HAS_PGE(vm))
		SKIP("no PGE in KVM_GET_SUPPORTED_CPUID (1.EDX bit 13)");
	vcpu_args_set(vcpu, 4, entry_gpa(vm, vm->pt.root, WIN, 1), a, b, c);
	expect_done(vcpu);
	vm_free(vm);
}

/* ------------------------------------------------------------------------
 * Accessed and dirty flags (SDM vol. 3 4.8)
 */

static void guest_ad(uint64_t pte, uint64_t pde, uint64_t pdpte, uint64_t pml4e)
{
	volatile uint64_t *e = (volatile uint64_t *)pte;

	(void)rd(WIN);
	GUEST_ASSERT_EQ(*e & (PTE_A | PTE_D), PTE_A);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)pde & (PTE_A | PTE_D), PTE_A);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)pdpte & (PTE_A | PTE_D), PTE_A);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)pml4e & (PTE_A | PTE_D), PTE_A);
	GUEST_SYNC(1);
	wr(WIN + 8, 1);
	GUEST_ASSERT_EQ(*e & (PTE_A | PTE_D), PTE_A | PTE_D);
	GUEST_SYNC(2);
	*e &= ~PTE_D;
	invlpg(WIN);
	(void)rd(WIN);
	GUEST_ASSERT_EQ(*e & (PTE_A | PTE_D), PTE_A);
	GUEST_SYNC(3);
	wr(WIN + 8, 2);
	GUEST_ASSERT_EQ(*e & (PTE_A | PTE_D), PTE_A | PTE_D);
	GUEST_SYNC(4);
	*e &= ~(PTE_A | PTE_D);
	invlpg(WIN);
	wr(WIN + 8, 3);
	GUEST_ASSERT_EQ(*e & (PTE_A | PTE_D), PTE_A | PTE_D);
	GUEST_SYNC(5);
	/* A write that faults sets no dirty flag. */
	*e &= ~(PTE_A | PTE_D | PTE_RW);
	invlpg(WIN);
	GUEST_ASSERT_PF(pk_write(WIN + 8, 4), PF_W | PF_P, WIN + 8, pk_write_insn);
	GUEST_ASSERT_EQ(*e & PTE_D, 0);
	GUEST_ASSERT_EQ(rd(WIN + 8), 3);
	GUEST_SYNC(6);
}

static void check_ad(struct kvm_vm *vm, uint64_t a, int stage, uint64_t want)
{
	uint64_t pte = *virt_pte(vm, WIN, 1);

	TEST_ASSERT(pte == (a | want), "stage %d: PTE %#" PRIx64 ", expected %#" PRIx64,
		    stage, pte, a | want);
	for (int level = 2; level <= 4; level++) {
		uint64_t e = *virt_pte(vm, WIN, level);

		/* Accessed, and never dirty above the leaf. */
		TEST_ASSERT((e & (PTE_A | PTE_D)) == PTE_A, "stage %d: level-%d entry %#"
			    PRIx64 ", expected A without D", stage, level, e);
	}
}

TEST(accessed_and_dirty_flags)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_ad);
	uint64_t a = marked_page(vm);

	virt_map(vm, WIN, a, PAGE_SIZE);
	for (int level = 1; level <= 4; level++)
		TEST_ASSERT_EQ(*virt_pte(vm, WIN, level) & (PTE_A | PTE_D), 0);
	vcpu_args_set(vcpu, 4, pte_gpa(vm, WIN, 1), pte_gpa(vm, WIN, 2), pte_gpa(vm, WIN, 3),
		      pte_gpa(vm, WIN, 4));
	expect_sync(vcpu, 1);
	check_ad(vm, a, 1, PTE_PRW | PTE_A);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), MARK(a + 8));
	expect_sync(vcpu, 2);
	check_ad(vm, a, 2, PTE_PRW | PTE_A | PTE_D);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 1);
	expect_sync(vcpu, 3);
	check_ad(vm, a, 3, PTE_PRW | PTE_A);
	expect_sync(vcpu, 4);
	check_ad(vm, a, 4, PTE_PRW | PTE_A | PTE_D);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 2);
	expect_sync(vcpu, 5);
	check_ad(vm, a, 5, PTE_PRW | PTE_A | PTE_D);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 3);
	expect_sync(vcpu, 6);
	TEST_ASSERT_EQ(*virt_pte(vm, WIN, 1) & (PTE_D | PTE_RW), 0);
	TEST_ASSERT_EQ(*hpte(vm, a + 8), 3);
	expect_done(vcpu);
	vm_free(vm);
}

/* ------------------------------------------------------------------------
 * Tables the guest edits through its own mappings
 */

static void guest_pt_self(uint64_t pt, uint64_t a, uint64_t b, uint64_t c)
{
	/* WIN + 4 KiB maps the page table of WIN through its entry 1. */
	volatile uint64_t *tv = (volatile uint64_t *)(WIN + PAGE_SIZE);
	volatile uint64_t *ti = (volatile uint64_t *)pt;

	GUEST_ASSERT_EQ(rd(WIN), MARK(a));
	GUEST_ASSERT_EQ(tv[0], a | PTE_PRW | PTE_A);
	GUEST_ASSERT_EQ(tv[1], pt | PTE_PRW | PTE_A);
	tv[0] = b | PTE_PRW;
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN), MARK(b));
	GUEST_ASSERT_EQ(ti[0], b | PTE_PRW | PTE_A);
	/* The write through entry 1 set its own dirty flag. */
	GUEST_ASSERT_EQ(ti[1], pt | PTE_PRW | PTE_A | PTE_D);
	/* The table makes its own mapping read-only, through it. */
	tv[1] = pt | PTE_P | PTE_A | PTE_D;
	invlpg(WIN + PAGE_SIZE);
	GUEST_ASSERT_PF(pk_write(WIN + PAGE_SIZE + 16, c | PTE_PRW), PF_W | PF_P,
			WIN + PAGE_SIZE + 16, pk_write_insn);
	GUEST_ASSERT_EQ(tv[0], b | PTE_PRW | PTE_A);
	GUEST_ASSERT_EQ(ti[2], 0);
	ti[1] |= PTE_RW;
	invlpg(WIN + PAGE_SIZE);
	tv[2] = c | PTE_PRW;
	GUEST_ASSERT_EQ(rd(WIN + 2 * PAGE_SIZE + 8), MARK(c + 8));
	/* And removes it, through it. */
	tv[1] = 0;
	invlpg(WIN + PAGE_SIZE);
	GUEST_ASSERT_PF(pk_read(WIN + PAGE_SIZE), 0, WIN + PAGE_SIZE, pk_read_insn);
	GUEST_ASSERT_EQ(rd(WIN + 0x10), MARK(b + 0x10));
}

TEST(page_table_mapped_by_its_own_entry)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_pt_self);
	uint64_t a = marked_page(vm), b = marked_page(vm), c = marked_page(vm), pt;

	virt_map(vm, WIN, a, PAGE_SIZE);
	pt = pte_gpa(vm, WIN, 1) & ~(PAGE_SIZE - 1);
	virt_map(vm, WIN + PAGE_SIZE, pt, PAGE_SIZE);
	vcpu_args_set(vcpu, 4, pt, a, b, c);
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, pt), b | PTE_PRW | PTE_A);
	TEST_ASSERT_EQ(*hpte(vm, pt + 8), 0);
	TEST_ASSERT_EQ(*hpte(vm, pt + 16), c | PTE_PRW | PTE_A);
	vm_free(vm);
}

#define REC		510ULL	/* the PML4 entry that points at the PML4 */

static uint64_t rec_va(uint64_t i4, uint64_t i3, uint64_t i2, uint64_t i1)
{
	uint64_t va = i4 << 39 | i3 << 30 | i2 << 21 | i1 << 12;

	return va & (1ULL << 47) ? va | 0xffff000000000000ULL : va;
}

#define IDX(va, level)	(((va) >> (12 + 9 * ((level) - 1))) & 511)

static void guest_recursive(uint64_t pml4, uint64_t pt, uint64_t a, uint64_t b, uint64_t pt2,
			    uint64_t c)
{
	volatile uint64_t *self = (volatile uint64_t *)(pml4 + 8 * REC);
	uint64_t pte_va = rec_va(REC, IDX(WIN, 4), IDX(WIN, 3), IDX(WIN, 2)) + 8 * IDX(WIN, 1);
	uint64_t pde_va = rec_va(REC, REC, IDX(WIN, 4), IDX(WIN, 3)) + 8 * IDX(WIN, 2);
	uint64_t self_va = rec_va(REC, REC, REC, REC) + 8 * REC;

	*self = pml4 | PTE_PRW;
	GUEST_ASSERT_EQ(rd(WIN), MARK(a));
	GUEST_ASSERT_EQ(rd(pte_va), a | PTE_PRW | PTE_A);
	GUEST_ASSERT_EQ(rd(self_va), pml4 | PTE_PRW | PTE_A);
	wr(pte_va, b | PTE_PRW);
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN), MARK(b));
	/* The PDE is the leaf of pte_va's walk: the write above made it dirty. */
	GUEST_ASSERT_EQ(rd(pde_va), pt | PTE_PRW | PTE_US | PTE_A | PTE_D);
	wr(pde_va, pt2 | PTE_PRW);
	invlpg(WIN);
	GUEST_ASSERT_EQ(rd(WIN), MARK(c));
	invlpg(pte_va);
	GUEST_ASSERT_EQ(rd(pte_va), c | PTE_PRW | PTE_A);
	*self = 0;
	set_cr3(get_cr3());
	GUEST_ASSERT_PF(pk_read(pte_va), 0, pte_va, pk_read_insn);
	GUEST_ASSERT_EQ(rd(WIN + 8), MARK(c + 8));
}

TEST(recursive_pml4_entry)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, (void (*)(void))guest_recursive);
	uint64_t a = marked_page(vm), b = marked_page(vm), c = marked_page(vm);
	uint64_t pt2 = page(vm), pt;

	virt_map(vm, WIN, a, PAGE_SIZE);
	pt = pte_gpa(vm, WIN, 1) & ~(PAGE_SIZE - 1);
	*hpte(vm, pt2 + 8 * pt_idx(WIN, 1)) = c | PTE_PRW;
	TEST_ASSERT_EQ(*hpte(vm, vm->pt.root + 8 * REC), 0);
	vcpu_args_set(vcpu, 6, vm->pt.root, pt, a, b, pt2, c);
	expect_done(vcpu);
	TEST_ASSERT_EQ(*hpte(vm, pt), b | PTE_PRW | PTE_A);
	TEST_ASSERT_EQ(*virt_pte(vm, WIN, 2), pt2 | PTE_PRW | PTE_A);
	vm_free(vm);
}

/* ------------------------------------------------------------------------
 * Dirty logging through the guest's mappings
 */

#define DSLOT		1
#define DSLOT_GPA	0x10000000ULL
#define DSLOT_PAGES	64
#define DLINEAR		32	/* WIN + i pages maps slot page dperm(i) */
#define DALIAS		40	/* another linear page for dperm(0) */
#define DSPARE		4	/* a slot page no linear page maps at first */

static uint64_t dperm(uint64_t i)
{
	return (i * 7 + 3) % DSLOT_PAGES;
}

/* One round of the guest's accesses: a PTE to change first, writes, reads. */
static struct dirty_round {
	uint64_t pte, value, invlpg;	/* pte: GPA of the entry, 0 for none */
	uint64_t nr_writes, writes[8];	/* linear page numbers in WIN */
	uint64_t nr_reads, reads[8];
	uint64_t round;
} dround;

static void guest_dirty(void)
{
	volatile struct dirty_round *r = &dround;

	for (;;) {
		uint64_t sum = 0;

		if (r->pte) {
			*(volatile uint64_t *)r->pte = r->value;
			invlpg(r->invlpg);
		}
		for (uint64_t i = 0; i < r->nr_writes; i++)
			wr(WIN + r->writes[i] * PAGE_SIZE + 8, r->round << 32 | r->writes[i]);
		for (uint64_t i = 0; i < r->nr_reads; i++)
			sum += rd(WIN + r->reads[i] * PAGE_SIZE);
		GUEST_SYNC_ARGS(r->round, sum, 0, 0);
	}
}

static uint64_t get_dirty_log(struct kvm_vm *vm)
{
	uint64_t bitmap = 0xaaaaaaaaaaaaaaaaULL;
	struct kvm_dirty_log log = { .slot = DSLOT, .dirty_bitmap = &bitmap };

	vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
	return bitmap;
}

static void dirty_round(struct kvm_vm *vm, struct kvm_vcpu *vcpu, const struct dirty_round *r)
{
	dround = *r;
	sync_global_to_guest(vm, dround);
	expect_sync(vcpu, r->round);
}

#define BIT(n)		(1ULL << (n))

TEST(dirty_log_through_guest_mappings)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, guest_dirty);
	uint64_t *slot = vm_add_memslot(vm, DSLOT, KVM_MEM_LOG_DIRTY_PAGES, DSLOT_GPA,
					DSLOT_PAGES * PAGE_SIZE);
	uint64_t log, pte5 = 0, spare = DSLOT_GPA + DSPARE * PAGE_SIZE;
	struct dirty_round r;

	for (uint64_t i = 0; i < DLINEAR; i++) {
		virt_map(vm, WIN + i * PAGE_SIZE, DSLOT_GPA + dperm(i) * PAGE_SIZE, PAGE_SIZE);
		TEST_ASSERT(dperm(i) != DSPARE, "page %d is mapped", DSPARE);
	}
	virt_map(vm, WIN + DALIAS * PAGE_SIZE, DSLOT_GPA + dperm(0) * PAGE_SIZE, PAGE_SIZE);
	pte5 = pte_gpa(vm, WIN + 5 * PAGE_SIZE, 1);

	/* Exactly the pages written; not the one read through a clean PTE. */
	r = (struct dirty_round){ .nr_writes = 4, .writes = { 0, 3, 5, 31 }, .nr_reads = 1,
				  .reads = { 7 }, .round = 1 };
	dirty_round(vm, vcpu, &r);
	log = get_dirty_log(vm);
	TEST_ASSERT(log == (BIT(dperm(0)) | BIT(dperm(3)) | BIT(dperm(5)) | BIT(dperm(31))),
		    "round 1: dirty %#" PRIx64, log);
	TEST_ASSERT_EQ(slot[dperm(5) * 512 + 1], 1ULL << 32 | 5);

	/*
	 * Written again, one through an alias, and one remapped by the guest to
	 * a page nothing mapped: the new page is dirty, not the old one.
	 */
	r = (struct dirty_round){ .pte = pte5, .value = spare | PTE_PRW,
				  .invlpg = WIN + 5 * PAGE_SIZE, .nr_writes = 4,
				  .writes = { 3, 31, DALIAS, 5 }, .round = 2 };
	dirty_round(vm, vcpu, &r);
	log = get_dirty_log(vm);
	TEST_ASSERT(log == (BIT(dperm(3)) | BIT(dperm(31)) | BIT(dperm(0)) | BIT(DSPARE)),
		    "round 2: dirty %#" PRIx64, log);
	TEST_ASSERT_EQ(slot[dperm(0) * 512 + 1], 2ULL << 32 | DALIAS);
	TEST_ASSERT_EQ(slot[DSPARE * 512 + 1], 2ULL << 32 | 5);
	TEST_ASSERT_EQ(slot[dperm(5) * 512 + 1], 1ULL << 32 | 5);

	r = (struct dirty_round){ .nr_writes = 2, .writes = { 0, 5 }, .nr_reads = 2,
				  .reads = { 7, 1 }, .round = 3 };
	dirty_round(vm, vcpu, &r);
	log = get_dirty_log(vm);
	TEST_ASSERT(log == (BIT(dperm(0)) | BIT(DSPARE)), "round 3: dirty %#" PRIx64, log);

	/* Nothing written: nothing dirty. */
	r = (struct dirty_round){ .nr_reads = 2, .reads = { 7, 1 }, .round = 4 };
	dirty_round(vm, vcpu, &r);
	log = get_dirty_log(vm);
	TEST_ASSERT(log == 0, "round 4: dirty %#" PRIx64, log);
	vm_free(vm);
}

/*
 * The processor's writes of accessed and dirty flags are writes to the
 * page table: in a logging slot the page is reported.
 */
TEST(dirty_log_page_table_in_logged_slot)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = lm_create(&vm, guest_dirty);
	uint64_t *slot = vm_add_memslot(vm, DSLOT, KVM_MEM_LOG_DIRTY_PAGES, DSLOT_GPA,
					DSLOT_PAGES * PAGE_SIZE);
	uint64_t pt_page = DSLOT_PAGES - 1, pt = DSLOT_GPA + pt_page * PAGE_SIZE, log;
	struct dirty_round r;

	*hpte(vm, entry_gpa(vm, vm->pt.root, WIN, 2)) = pt | PTE_PRW | PTE_US;
	for (uint64_t i = 0; i < 8; i++)
		slot[pt_page * 512 + i] = (DSLOT_GPA + i * PAGE_SIZE) | PTE_PRW;

	/* A read through a fresh PTE sets its accessed flag. */
	r = (struct dirty_round){ .nr_reads = 1, .reads = { 1 }, .round = 1 };
	dirty_round(vm, vcpu, &r);
	log = get_dirty_log(vm);
	TEST_ASSERT(log == BIT(pt_page), "round 1: dirty %#" PRIx64, log);
	TEST_ASSERT_EQ(slot[pt_page * 512 + 1], (DSLOT_GPA + PAGE_SIZE) | PTE_PRW | PTE_A);

	/* A write through a fresh PTE sets both flags. */
	r = (struct dirty_round){ .nr_writes = 1, .writes = { 2 }, .round = 2 };
	dirty_round(vm, vcpu, &r);
	log = get_dirty_log(vm);
	TEST_ASSERT(log == (BIT(pt_page) | BIT(2)), "round 2: dirty %#" PRIx64, log);
	TEST_ASSERT_EQ(slot[pt_page * 512 + 2],
		       (DSLOT_GPA + 2 * PAGE_SIZE) | PTE_PRW | PTE_A | PTE_D);
	TEST_ASSERT_EQ(slot[2 * 512 + 1], 2ULL << 32 | 2);
	vm_free(vm);
}

/* ------------------------------------------------------------------------
 * 32-bit guests: the interpreter
 *
 * Commands of four dwords (op, address, low value, high value) from
 * I32_CMDS; results, a dword each, from I32_RESULTS.  A #PF writes four:
 * I32_PF_MARK, the error code, CR2 and EIP, and the next command runs.
 * Any other exception reports its vector on I32_REPORT.  OP_END halts.
 */
#define I32_IDT		0x2000
#define I32_STUBS	0x3000
#define I32_CMDS	0x4000
#define I32_MAX_CMDS	256
#define I32_RESULTS	0x8000
#define I32_MAX_RESULTS	1024
#define I32_REPORT	0xe5
#define I32_PF_MARK	0xfa17000eU

#define OP_END		0
#define OP_STORE	1	/* [addr] = lo */
#define OP_LOAD		2	/* result: [addr] */
#define OP_INVLPG	3	/* invlpg [addr] */
#define OP_CR3		4	/* cr3 = lo */
#define OP_CR0		5	/* cr0 = lo */
#define OP_CR4		6	/* cr4 = lo */
#define OP_STORE64	7	/* [addr] = lo, [addr + 4] = hi */
#define OP_CALL		8	/* result: eax of call addr */

extern const char i32_start[], i32_end[], i32_load_insn[], i32_store_insn[], i32_pf[];
extern const char i32_halt[];
asm(".pushsection .rodata\n"
    ".code32\n"
    "i32_start:\n"
    "	mov $" XSTR(I32_CMDS) ", %esi\n"
    "	mov $" XSTR(I32_RESULTS) ", %edi\n"
    "	cld\n"
    "i32_next:\n"
    "	mov (%esi), %eax\n"
    "	mov 4(%esi), %ebx\n"
    "	mov 8(%esi), %ecx\n"
    "	mov 12(%esi), %edx\n"
    "	add $16, %esi\n"
    "	cmp $" XSTR(OP_STORE) ", %eax\n"
    "	jne 1f\n"
    "i32_store_insn:\n"
    "	mov %ecx, (%ebx)\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_LOAD) ", %eax\n"
    "	jne 1f\n"
    "i32_load_insn:\n"
    "	mov (%ebx), %eax\n"
    "	stosl\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_INVLPG) ", %eax\n"
    "	jne 1f\n"
    "	invlpg (%ebx)\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_CR3) ", %eax\n"
    "	jne 1f\n"
    "	mov %ecx, %cr3\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_CR0) ", %eax\n"
    "	jne 1f\n"
    "	mov %ecx, %cr0\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_CR4) ", %eax\n"
    "	jne 1f\n"
    "	mov %ecx, %cr4\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_STORE64) ", %eax\n"
    "	jne 1f\n"
    "	mov %ecx, (%ebx)\n"
    "	mov %edx, 4(%ebx)\n"
    "	jmp i32_next\n"
    "1:	cmp $" XSTR(OP_CALL) ", %eax\n"
    "	jne 1f\n"
    "	call *%ebx\n"
    "	stosl\n"
    "	jmp i32_next\n"
    "1:\n"
    "i32_halt:\n"
    "	hlt\n"
    "	jmp i32_halt\n"
    /* #PF: record it, drop the error code, go on with the next command. */
    "i32_pf:\n"
    "	mov $" XSTR(I32_PF_MARK) ", %eax\n"
    "	stosl\n"
    "	mov (%esp), %eax\n"
    "	stosl\n"
    "	mov %cr2, %eax\n"
    "	stosl\n"
    "	mov 4(%esp), %eax\n"
    "	stosl\n"
    "	add $4, %esp\n"
    "	movl $(i32_next - i32_start + " XSTR(GUEST_CODE16_GPA) "), (%esp)\n"
    "	iret\n"
    "i32_end:\n"
    ".code64\n"
    ".popsection\n");

#define I32_EIP(label)	((uint32_t)(GUEST_CODE16_GPA + ((label) - i32_start)))

enum { W_VALUE, W_PF_MARK, W_PF_ERR, W_PF_CR2, W_PF_EIP };

struct i32 {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int ncmds, nwant;
	uint32_t want[I32_MAX_RESULTS];
	uint32_t ignore[I32_MAX_RESULTS];	/* bits of the result not compared */
	uint8_t kind[I32_MAX_RESULTS];
	uint32_t rsvd_p_opt;			/* rsvd_p_optional() */
	const char *what[I32_MAX_RESULTS];
};

/* A PROT32 VM whose vCPU runs the interpreter; tables come next, then i32_regs(). */
static void i32_create(struct i32 *p)
{
	uint32_t *idt;
	uint8_t *stubs;

	memset(p, 0, sizeof(*p));
	p->vm = vm_create(VM_MODE_PROT32);
	TEST_ASSERT((uint64_t)(i32_end - i32_start) <= I32_IDT - GUEST_CODE16_GPA,
		    "interpreter too long");
	vm_load_blob(p->vm, GUEST_CODE16_GPA, i32_start, i32_end);
	idt = gpa2hva(p->vm, I32_IDT);
	stubs = gpa2hva(p->vm, I32_STUBS);
	for (int v = 0; v < 32; v++) {
		uint32_t handler = v == PF_VECTOR ? I32_EIP(i32_pf) : (uint32_t)(I32_STUBS + 8 * v);
		uint8_t *s = stubs + 8 * v;

		/* push $v; out %al, $I32_REPORT; hlt */
		s[0] = 0x6a;
		s[1] = v;
		s[2] = 0xe6;
		s[3] = I32_REPORT;
		s[4] = 0xf4;
		/* 32-bit interrupt gates (SDM vol. 3 6.11). */
		idt[2 * v] = (handler & 0xffff) | (SEL_CODE32 << 16);
		idt[2 * v + 1] = (handler & 0xffff0000) | 0x8e00;
	}
	p->vcpu = vm_vcpu_add_at(p->vm, 0, GUEST_CODE16_GPA);
	p->rsvd_p_opt = rsvd_p_optional();
}

#define CR0_32		(CR0_PE | CR0_ET | CR0_NE)

/* The control registers the interpreter starts with (PAE: the tables must be ready). */
static void i32_regs(struct i32 *p, uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer)
{
	struct kvm_sregs s;

	TEST_ASSERT(p->vm->next_page <= 0x400000, "tables beyond the identity map: %#"
		    PRIx64, p->vm->next_page);
	vcpu_sregs_get(p->vcpu, &s);
	s.cr0 = cr0;
	s.cr3 = cr3;
	s.cr4 = cr4;
	s.efer = efer;
	s.idt.base = I32_IDT;
	s.idt.limit = 32 * 8 - 1;
	vcpu_sregs_set(p->vcpu, &s);
}

static void i32_cmd(struct i32 *p, uint32_t op, uint32_t addr, uint32_t lo, uint32_t hi)
{
	uint32_t *c = (uint32_t *)gpa2hva(p->vm, I32_CMDS) + 4 * p->ncmds;

	TEST_ASSERT(p->ncmds < I32_MAX_CMDS, "too many commands");
	c[0] = op;
	c[1] = addr;
	c[2] = lo;
	c[3] = hi;
	p->ncmds++;
}

static void i32_want(struct i32 *p, uint32_t v, int kind, const char *what)
{
	TEST_ASSERT(p->nwant < I32_MAX_RESULTS, "too many results");
	p->ignore[p->nwant] = 0;
	p->want[p->nwant] = v;
	p->kind[p->nwant] = kind;
	p->what[p->nwant++] = what;
}

static void i32_want_pf(struct i32 *p, uint32_t err, uint32_t cr2, uint32_t eip,
			const char *what)
{
	i32_want(p, I32_PF_MARK, W_PF_MARK, what);
	i32_want(p, err, W_PF_ERR, what);
	i32_want(p, cr2, W_PF_CR2, what);
	i32_want(p, eip, W_PF_EIP, what);
}

/* A reserved-bit #PF: P in its error code may be missing (rsvd_p_optional()). */
static void i32_rsvd_pf(struct i32 *p, bool store, uint32_t addr, uint32_t err,
			const char *what)
{
	i32_cmd(p, store ? OP_STORE : OP_LOAD, addr, 0, 0);
	i32_want_pf(p, err, addr, I32_EIP(store ? i32_store_insn : i32_load_insn), what);
	p->ignore[p->nwant - 3] = p->rsvd_p_opt;
}

static void i32_load(struct i32 *p, uint32_t addr, uint32_t want, const char *what)
{
	i32_cmd(p, OP_LOAD, addr, 0, 0);
	i32_want(p, want, W_VALUE, what);
}

/* Both halves of a 64-bit entry. */
static void i32_load64(struct i32 *p, uint32_t addr, uint64_t want, const char *what)
{
	i32_load(p, addr, (uint32_t)want, what);
	i32_load(p, addr + 4, want >> 32, what);
}

static void i32_load_pf(struct i32 *p, uint32_t addr, uint32_t err, const char *what)
{
	i32_cmd(p, OP_LOAD, addr, 0, 0);
	i32_want_pf(p, err, addr, I32_EIP(i32_load_insn), what);
}

static void i32_store(struct i32 *p, uint32_t addr, uint32_t v)
{
	i32_cmd(p, OP_STORE, addr, v, 0);
}

static void i32_store64(struct i32 *p, uint32_t addr, uint64_t v)
{
	i32_cmd(p, OP_STORE64, addr, (uint32_t)v, v >> 32);
}

static void i32_store_pf(struct i32 *p, uint32_t addr, uint32_t v, uint32_t err,
			 const char *what)
{
	i32_cmd(p, OP_STORE, addr, v, 0);
	i32_want_pf(p, err, addr, I32_EIP(i32_store_insn), what);
}

static void i32_invlpg(struct i32 *p, uint32_t addr)
{
	i32_cmd(p, OP_INVLPG, addr, 0, 0);
}

static void i32_mov_cr(struct i32 *p, int cr, uint32_t v)
{
	i32_cmd(p, cr == 0 ? OP_CR0 : cr == 3 ? OP_CR3 : OP_CR4, 0, v, 0);
}

static void i32_call(struct i32 *p, uint32_t addr, uint32_t want, const char *what)
{
	i32_cmd(p, OP_CALL, addr, 0, 0);
	i32_want(p, want, W_VALUE, what);
}

static void i32_call_pf(struct i32 *p, uint32_t addr, uint32_t err, const char *what)
{
	i32_cmd(p, OP_CALL, addr, 0, 0);
	i32_want_pf(p, err, addr, addr, what);
}

/* Run the commands to their end and compare every result. */
static void i32_run(struct i32 *p)
{
	static const char *const kinds[] = { "value", "#PF marker", "#PF error code",
					     "#PF CR2", "#PF EIP" };
	const uint32_t *res = gpa2hva(p->vm, I32_RESULTS);
	struct kvm_run *run = p->vcpu->run;
	struct kvm_regs regs;
	int got, ignored = 0;

	i32_cmd(p, OP_END, 0, 0, 0);
	memset(gpa2hva(p->vm, I32_RESULTS), 0xee, 4 * I32_MAX_RESULTS);
	vcpu_run(p->vcpu);
	vcpu_regs_get(p->vcpu, &regs);
	if (run->exit_reason == KVM_EXIT_IO && run->io.port == I32_REPORT) {
		const uint32_t *frame = gpa2hva(p->vm, (uint32_t)regs.rsp);

		TEST_ASSERT(false, "exception %u in the interpreter (then on the stack: %#x %#x %#x), "
			    "%u commands and %u results done", frame[0],
			    frame[1], frame[2], frame[3], ((uint32_t)regs.rsi - I32_CMDS) / 16,
			    ((uint32_t)regs.rdi - I32_RESULTS) / 4);
	}
	TEST_ASSERT_EXIT(p->vcpu, KVM_EXIT_HLT);
	got = ((uint32_t)regs.rdi - I32_RESULTS) / 4;
	for (int i = 0; i < p->nwant && i < got; i++) {
		TEST_ASSERT(!((res[i] ^ p->want[i]) & ~p->ignore[i]), "result %d (%s: %s): %#x, "
			    "expected %#x", i, p->what[i], kinds[p->kind[i]], res[i], p->want[i]);
		ignored += res[i] != p->want[i];
	}
	if (ignored)
		test_log("%d reserved-bit #PF without P (the test machine's CPU)", ignored);
	TEST_ASSERT(got == p->nwant, "%d results, expected %d (the next: %s)", got, p->nwant,
		    got < p->nwant ? p->what[got] : "none");
	TEST_ASSERT_EQ(regs.rip, I32_EIP(i32_halt) + 1);
	TEST_ASSERT_EQ((uint32_t)regs.rsi, I32_CMDS + 16 * p->ncmds);
}

static uint32_t rd32(struct kvm_vm *vm, uint64_t gpa)
{
	return *(uint32_t *)gpa2hva(vm, gpa);
}

/* ------------------------------------------------------------------------
 * 32-bit paging (SDM vol. 3 4.3)
 */

#define W32		0x40000000U	/* PDE 256 */
#define PDE32(va)	(4 * ((va) >> 22))
#define PTE32_A		0x20U
#define PTE32_D		0x40U
#define PTE32_PS	0x80U

/* A page directory whose first 4 MiB are identity-mapped with 4 KiB pages. */
static uint32_t pd32_create(struct kvm_vm *vm)
{
	uint32_t pd = page(vm), pt = page(vm);
	uint32_t *t = hpte32(vm, pt);

	for (uint32_t i = 0; i < 1024; i++)
		t[i] = (i << 12) | PTE_PRW;
	*hpte32(vm, pd) = pt | PTE_PRW;
	return pd;
}

TEST(paging32_4k)
{
	const uint32_t a = 0x800000, b = 0x801000, c = 0x802000;
	const uint64_t cr0 = CR0_32 | CR0_WP | CR0_PG;
	uint32_t pd, pd2, ptw, ptw2, ptw3;
	struct i32 p;

	i32_create(&p);
	pd = pd32_create(p.vm);
	ptw = page(p.vm);
	ptw2 = page(p.vm);
	ptw3 = page(p.vm);
	pd2 = page(p.vm);
	fill_marks(p.vm, a, 3 * PAGE_SIZE);
	*hpte32(p.vm, pd + PDE32(W32)) = ptw | PTE_PRW | PTE_US;
	*hpte32(p.vm, ptw) = a | PTE_PRW;
	*hpte32(p.vm, ptw2) = c | PTE_PRW;
	memcpy(gpa2hva(p.vm, pd2), gpa2hva(p.vm, pd), PAGE_SIZE);
	*hpte32(p.vm, pd2 + PDE32(W32)) = ptw3 | PTE_PRW | PTE_US;
	*hpte32(p.vm, ptw3) = b | PTE_PRW;
	i32_regs(&p, cr0, pd, 0, 0);

	i32_load(&p, W32, mark32(a), "a read through the host's PTE");
	i32_load(&p, ptw, a | PTE_PRW | PTE32_A, "the PTE after a read");
	i32_load(&p, pd + PDE32(W32), ptw | PTE_PRW | PTE_US | PTE32_A, "the PDE after a read");
	i32_store(&p, W32 + 4, 0x11111111);
	i32_load(&p, ptw, a | PTE_PRW | PTE32_A | PTE32_D, "the PTE after a write");
	i32_store(&p, ptw, b | PTE_PRW);
	i32_invlpg(&p, W32);
	i32_load(&p, W32, mark32(b), "remapped to b, INVLPG");
	i32_store(&p, W32 + 4, 0x22222222);
	i32_load(&p, ptw, b | PTE_PRW | PTE32_A | PTE32_D, "the PTE of b after a write");
	i32_store(&p, ptw + 4, c | PTE_PRW);
	i32_load(&p, W32 + 0x1008, mark32(c + 8), "a PTE that was not present");
	i32_store(&p, ptw, 0);
	i32_invlpg(&p, W32);
	i32_load_pf(&p, W32 + 0x10, 0, "a read of a page not present");
	i32_store_pf(&p, W32 + 0x14, 1, PF_W, "a write to a page not present");
	/* Read-only, with CR0.WP and without. */
	i32_store(&p, ptw, a | PTE_P);
	i32_load(&p, W32 + 4, 0x11111111, "a read-only page");
	i32_store_pf(&p, W32 + 8, 0x33333333, PF_W | PF_P, "a write to it, CR0.WP = 1");
	i32_mov_cr(&p, 0, cr0 & ~CR0_WP);
	i32_store(&p, W32 + 8, 0x33333333);
	i32_load(&p, W32 + 8, 0x33333333, "a write to it with CR0.WP = 0");
	i32_mov_cr(&p, 0, cr0);
	i32_store_pf(&p, W32 + 8, 0x44444444, PF_W | PF_P, "a write to it, CR0.WP = 1 again");
	i32_load(&p, ptw, a | PTE_P | PTE32_A | PTE32_D, "the read-only PTE");
	/* Another page table under the PDE. */
	i32_store(&p, pd + PDE32(W32), ptw2 | PTE_PRW | PTE_US);
	i32_invlpg(&p, W32);
	i32_load(&p, W32 + 0xc, mark32(c + 0xc), "another page table under the PDE");
	/* Another page directory. */
	i32_mov_cr(&p, 3, pd2);
	i32_load(&p, W32, mark32(b), "the other page directory");
	i32_mov_cr(&p, 3, pd);
	i32_load(&p, W32 + 0xc, mark32(c + 0xc), "the first page directory again");
	i32_run(&p);

	TEST_ASSERT_EQ(rd32(p.vm, a + 4), 0x11111111);
	TEST_ASSERT_EQ(rd32(p.vm, a + 8), 0x33333333);
	TEST_ASSERT_EQ(rd32(p.vm, a + 0x14), mark32(a + 0x14));
	TEST_ASSERT_EQ(rd32(p.vm, b + 4), 0x22222222);
	TEST_ASSERT_EQ(rd32(p.vm, c + 4), mark32(c + 4));
	vm_free(p.vm);
}

#define PSE_SLOT_GPA	(4ULL << 30)
/* Bits 13 and up of a 4 MiB PDE are physical address bits 32 and up (PSE-36). */
#define PDE32_4M(gpa)	((uint32_t)(((uint64_t)(gpa) & 0xffc00000U) |		\
				    (((uint64_t)(gpa) >> 32) << 13)) | PTE_PRW | PTE32_PS)

TEST(paging32_pse_4m)
{
	/* a, b: 4 MiB pages; x: a page table without PSE, the first page of one with it. */
	const uint32_t a = 0x800000, b = 0xc00000, x = 0x1000000, c = 0x1400000;
	const uint32_t w2 = W32 + 0x400000, w3 = W32 + 0x800000;
	static const uint32_t offs[] = { 0x123450, 0x3ffffc, 0x200000 };
	uint32_t pd, pd_b;
	bool pse36;
	struct i32 p;

	i32_create(&p);
	pse36 = HAS_PSE36(p.vm);
	pd = pd32_create(p.vm);
	for (int i = 0; i < 3; i++) {
		fill_marks(p.vm, a + (offs[i] & ~0xfffU), PAGE_SIZE);
		fill_marks(p.vm, b + (offs[i] & ~0xfffU), PAGE_SIZE);
	}
	fill_marks(p.vm, c, PAGE_SIZE);
	*hpte32(p.vm, pd + PDE32(W32)) = PDE32_4M(a);
	*hpte32(p.vm, pd + PDE32(w2)) = PDE32_4M(x);
	*hpte32(p.vm, x) = c | PTE_PRW;
	if (pse36) {
		vm_add_memslot(p.vm, 2, 0, PSE_SLOT_GPA, 4 << 20);
		fill_marks(p.vm, PSE_SLOT_GPA + 0x246000, PAGE_SIZE);
		*hpte32(p.vm, pd + PDE32(w3)) = PDE32_4M(PSE_SLOT_GPA);
	}
	pd_b = page(p.vm);
	memcpy(gpa2hva(p.vm, pd_b), gpa2hva(p.vm, pd), PAGE_SIZE);
	i32_regs(&p, CR0_32 | CR0_WP | CR0_PG, pd, CR4_PSE, 0);

	i32_load(&p, W32 + offs[0], mark32(a + offs[0]), "a 4 MiB page");
	i32_load(&p, W32 + offs[1], mark32(a + offs[1]), "its last dword");
	i32_store(&p, W32 + offs[2], 0x44444444);
	i32_load(&p, pd + PDE32(W32), PDE32_4M(a) | PTE32_A | PTE32_D, "its PDE");
	i32_store(&p, pd + PDE32(W32), PDE32_4M(b));
	i32_invlpg(&p, W32 + 0x3ff000);
	for (int i = 0; i < 3; i++)
		i32_load(&p, W32 + offs[i], mark32(b + offs[i]),
			 "remapped, INVLPG of another address in the page");
	i32_load(&p, pd + PDE32(W32), PDE32_4M(b) | PTE32_A, "the new PDE");
	/*
	 * PS makes a 4 MiB page only with CR4.PSE; without, x is a page table.
	 * Not tested: the same page directory on both sides of the change (a
	 * CR3 reload after it), where the reference KVM's shadow MMU (npt=0)
	 * keeps using its translation of the 4 MiB page: CR4.PSE is no part
	 * of its shadow pages' role.  A copy of the directory is loaded instead.
	 */
	i32_load(&p, w2, c | PTE_PRW, "x as a 4 MiB page");
	i32_mov_cr(&p, 4, 0);
	i32_mov_cr(&p, 3, pd_b);
	i32_load(&p, w2 + 0x10, mark32(c + 0x10), "x as a page table, CR4.PSE = 0");
	i32_mov_cr(&p, 4, CR4_PSE);
	i32_mov_cr(&p, 3, pd);
	i32_load(&p, w2, c | PTE_PRW | PTE32_A, "x as a 4 MiB page again: its PTE 0, used");
	if (pse36) {
		i32_load(&p, w3 + 0x246450, mark32(PSE_SLOT_GPA + 0x246450),
			 "a 4 MiB page at 4 GiB (PSE-36)");
		i32_store(&p, w3 + 0x10, 0x55555555);
		i32_load(&p, pd + PDE32(w3), PDE32_4M(PSE_SLOT_GPA) | PTE32_A | PTE32_D,
			 "its PDE");
	}
	i32_run(&p);

	TEST_ASSERT_EQ(rd32(p.vm, a + offs[2]), 0x44444444);
	TEST_ASSERT_EQ(rd32(p.vm, b + offs[2]), mark32(b + offs[2]));
	if (pse36)
		TEST_ASSERT_EQ(rd32(p.vm, PSE_SLOT_GPA + 0x10), 0x55555555);
	else
		test_log("no PSE-36 in KVM_GET_SUPPORTED_CPUID: not tested");
	vm_free(p.vm);
}

/* ------------------------------------------------------------------------
 * PAE paging (SDM vol. 3 4.4)
 */

#define PAE_HIGH	(4ULL << 30)	/* a slot above 4 GiB */
#define PAE_NX		(1ULL << 63)

/* A PDPT whose first 4 MiB are identity-mapped with 4 KiB pages (PDPTE 0). */
static uint32_t pae_create(struct kvm_vm *vm)
{
	uint32_t pdpt = page(vm), pd = page(vm);

	*hpte(vm, pdpt) = pd | PTE_P;
	for (int j = 0; j < 2; j++) {
		uint32_t pt = page(vm);

		for (uint64_t i = 0; i < 512; i++)
			*hpte(vm, pt + 8 * i) = ((j * 512 + i) << 12) | PTE_PRW;
		*hpte(vm, pd + 8 * j) = pt | PTE_PRW;
	}
	return pdpt;
}

TEST(pae_4k)
{
	const uint64_t a = 0x800000, b = PAE_HIGH, c = 0x802000;
	uint32_t pdpt, pd1, ptw, pd1b, ptwb;
	struct i32 p;

	i32_create(&p);
	vm_add_memslot(p.vm, 2, 0, PAE_HIGH, 2 << 20);
	pdpt = pae_create(p.vm);
	pd1 = page(p.vm);
	ptw = page(p.vm);
	pd1b = page(p.vm);
	ptwb = page(p.vm);
	fill_marks(p.vm, a, PAGE_SIZE);
	fill_marks(p.vm, b, PAGE_SIZE);
	fill_marks(p.vm, c, PAGE_SIZE);
	*hpte(p.vm, pdpt + 8) = pd1 | PTE_P;		/* W32: PDPTE 1, PDE 0, PTE 0 */
	*hpte(p.vm, pd1) = ptw | PTE_PRW | PTE_US;
	*hpte(p.vm, ptw) = a | PTE_PRW;
	*hpte(p.vm, pd1b) = ptwb | PTE_PRW | PTE_US;
	*hpte(p.vm, ptwb) = c | PTE_PRW;
	i32_regs(&p, CR0_32 | CR0_WP | CR0_PG, pdpt, CR4_PAE, 0);

	i32_load(&p, W32, mark32(a), "a read through the host's PTE");
	i32_load64(&p, ptw, a | PTE_PRW | PTE_A, "the PTE after a read");
	i32_load64(&p, pd1, ptw | PTE_PRW | PTE_US | PTE_A, "the PDE after a read");
	i32_store(&p, W32 + 4, 0x11111111);
	i32_load64(&p, ptw, a | PTE_PRW | PTE_A | PTE_D, "the PTE after a write");
	i32_store64(&p, ptw, b | PTE_PRW);
	i32_invlpg(&p, W32);
	i32_load(&p, W32, mark32(b), "remapped above 4 GiB, INVLPG");
	i32_store(&p, W32 + 4, 0x22222222);
	i32_load64(&p, ptw, b | PTE_PRW | PTE_A | PTE_D, "its PTE after a write");
	i32_store64(&p, ptw, 0);
	i32_invlpg(&p, W32);
	i32_load_pf(&p, W32 + 0x10, 0, "a read of a page not present");
	/* Without EFER.NXE, bit 63 is reserved. */
	i32_store64(&p, ptw, a | PTE_PRW | PAE_NX);
	i32_rsvd_pf(&p, false, W32 + 0x10, PF_RSVD | PF_P, "a PTE with bit 63, no NXE");
	i32_rsvd_pf(&p, true, W32 + 0x14, PF_RSVD | PF_W | PF_P, "a write through it");
	i32_store64(&p, ptw, a | PTE_PRW);
	i32_invlpg(&p, W32);
	i32_load(&p, W32 + 4, 0x11111111, "bit 63 clear again");
	/* A PDPTE is loaded at MOV to CR3. */
	i32_store64(&p, pdpt + 8, pd1b | PTE_P);
	i32_mov_cr(&p, 3, pdpt);
	i32_load(&p, W32 + 0x18, mark32(c + 0x18), "another PDPTE, CR3 reloaded");
	i32_load_pf(&p, W32 + 0x1000, 0, "a PTE the new tables do not have");
	i32_run(&p);

	TEST_ASSERT_EQ(rd32(p.vm, a + 4), 0x11111111);
	TEST_ASSERT_EQ(rd32(p.vm, a + 0x14), mark32(a + 0x14));
	TEST_ASSERT_EQ(rd32(p.vm, b + 4), 0x22222222);
	TEST_ASSERT_EQ(rd32(p.vm, c + 4), mark32(c + 4));
	vm_free(p.vm);
}

TEST(pae_2m)
{
	const uint64_t a = 0x800000, b = PAE_HIGH + PG_SIZE_2M, c = 0x802000;
	static const uint32_t offs[] = { 0x123450, 0x1ffffc, 0x100000 };
	uint32_t pdpt, pd1, ptw;
	struct i32 p;

	i32_create(&p);
	vm_add_memslot(p.vm, 2, 0, PAE_HIGH, 4 << 20);
	pdpt = pae_create(p.vm);
	pd1 = page(p.vm);
	ptw = page(p.vm);
	for (int i = 0; i < 3; i++) {
		fill_marks(p.vm, a + (offs[i] & ~0xfffU), PAGE_SIZE);
		fill_marks(p.vm, b + (offs[i] & ~0xfffU), PAGE_SIZE);
	}
	fill_marks(p.vm, c, PAGE_SIZE);
	*hpte(p.vm, pdpt + 8) = pd1 | PTE_P;
	*hpte(p.vm, pd1) = a | PTE_PRW | PTE_PS;
	*hpte(p.vm, ptw + 8 * 0x123) = c | PTE_PRW;
	i32_regs(&p, CR0_32 | CR0_WP | CR0_PG, pdpt, CR4_PAE, 0);

	i32_load(&p, W32 + offs[0], mark32(a + offs[0]), "a 2 MiB page");
	i32_load(&p, W32 + offs[1], mark32(a + offs[1]), "its last dword");
	i32_store(&p, W32 + offs[2], 0x66666666);
	i32_load64(&p, pd1, a | PTE_PRW | PTE_PS | PTE_A | PTE_D, "its PDE");
	i32_store64(&p, pd1, b | PTE_PRW | PTE_PS);
	i32_invlpg(&p, W32 + 0x1ff000);
	i32_load(&p, W32 + offs[0], mark32(b + offs[0]), "remapped above 4 GiB, INVLPG "
		 "of another address in the page");
	i32_load(&p, W32 + offs[1], mark32(b + offs[1]), "remapped, its last dword");
	i32_store(&p, W32 + offs[2] + 4, 0x77777777);
	i32_load64(&p, pd1, b | PTE_PRW | PTE_PS | PTE_A | PTE_D, "the new PDE");
	/* A page table under the same PDE (CR3 reloaded). */
	i32_store64(&p, pd1, ptw | PTE_PRW);
	i32_mov_cr(&p, 3, pdpt);
	i32_load(&p, W32 + 0x123450, mark32(c + 0x450), "a page table instead");
	i32_load_pf(&p, W32 + 0x1ffffc, 0, "a PTE it does not have");
	i32_run(&p);

	TEST_ASSERT_EQ(rd32(p.vm, a + offs[2]), 0x66666666);
	TEST_ASSERT_EQ(rd32(p.vm, a + offs[2] + 4), mark32(a + offs[2] + 4));
	TEST_ASSERT_EQ(rd32(p.vm, b + offs[2] + 4), 0x77777777);
	vm_free(p.vm);
}

/* PAE with EFER.NXE: XD in the PTE or in the PDE forbids fetches (SDM vol. 3 4.6.1). */
TEST(pae_nx)
{
	uint32_t pdpt, pd1, ptw, code;
	struct i32 p;

	i32_create(&p);
	if (!HAS_NX(p.vm))
		SKIP("no NX in KVM_GET_SUPPORTED_CPUID (8000_0001h.EDX bit 20)");
	pdpt = pae_create(p.vm);
	pd1 = page(p.vm);
	ptw = page(p.vm);
	code = code_page(p.vm);
	*hpte(p.vm, pdpt + 8) = pd1 | PTE_P;
	*hpte(p.vm, pd1) = ptw | PTE_PRW;
	*hpte(p.vm, ptw) = code | PTE_PRW | PAE_NX;
	i32_regs(&p, CR0_32 | CR0_WP | CR0_PG, pdpt, CR4_PAE, EFER_NXE);

	i32_call_pf(&p, W32, PF_I | PF_P, "a call into an XD page");
	i32_load(&p, W32, (uint32_t)CODE_QWORD, "a read of it");
	i32_store64(&p, ptw, code | PTE_PRW);
	i32_invlpg(&p, W32);
	i32_call(&p, W32, CODE_RET, "XD cleared");
	i32_store64(&p, ptw, code | PTE_PRW | PAE_NX);
	i32_invlpg(&p, W32);
	i32_call_pf(&p, W32, PF_I | PF_P, "XD set again");
	i32_store64(&p, ptw, code | PTE_PRW);
	i32_store64(&p, pd1, ptw | PTE_PRW | PAE_NX);
	i32_invlpg(&p, W32);
	i32_call_pf(&p, W32, PF_I | PF_P, "XD in the PDE");
	i32_store64(&p, pd1, ptw | PTE_PRW);
	i32_invlpg(&p, W32);
	i32_call(&p, W32, CODE_RET, "XD in neither");
	i32_run(&p);
	vm_free(p.vm);
}

/* ------------------------------------------------------------------------
 * Without paging: protected mode and real mode
 */

#define HIGH32_SLOT	0xd0000000U

TEST(prot32_without_paging)
{
	struct i32 p;

	i32_create(&p);
	vm_add_memslot(p.vm, 2, 0, HIGH32_SLOT, 1 << 20);
	fill_marks(p.vm, 0x900000, PAGE_SIZE);
	fill_marks(p.vm, HIGH32_SLOT + 0x5000, PAGE_SIZE);
	i32_regs(&p, CR0_32, 0, 0, 0);

	i32_store(&p, 0x800000, 0x12345678);
	i32_load(&p, 0x800000, 0x12345678, "a write read back");
	i32_load(&p, 0x900010, mark32(0x900010), "what the host wrote");
	i32_store(&p, DEFAULT_GUEST_MEM - 4, 0x9abcdef0);
	i32_load(&p, DEFAULT_GUEST_MEM - 4, 0x9abcdef0, "the last dword of slot 0");
	i32_load(&p, HIGH32_SLOT + 0x5ff8, mark32(HIGH32_SLOT + 0x5ff8), "another slot");
	i32_store(&p, HIGH32_SLOT + 0x5ffc, 0x0badcafe);
	i32_load(&p, HIGH32_SLOT + 0x5ffc, 0x0badcafe, "a write there read back");
	i32_run(&p);

	TEST_ASSERT_EQ(rd32(p.vm, 0x800000), 0x12345678);
	TEST_ASSERT_EQ(rd32(p.vm, DEFAULT_GUEST_MEM - 4), 0x9abcdef0);
	TEST_ASSERT_EQ(rd32(p.vm, HIGH32_SLOT + 0x5ffc), 0x0badcafe);
	TEST_ASSERT_EQ(rd32(p.vm, HIGH32_SLOT + 0x5ff8), mark32(HIGH32_SLOT + 0x5ff8));
	vm_free(p.vm);
}

/* CR0.PG on and off: the same linear address is physical, translated, physical. */
TEST(prot32_paging_switched_on_and_off)
{
	const uint32_t la = 0x800000, b = 0x900000;
	uint32_t pd, ptx;
	struct i32 p;

	i32_create(&p);
	pd = pd32_create(p.vm);
	ptx = page(p.vm);
	fill_marks(p.vm, la, PAGE_SIZE);
	fill_marks(p.vm, b, PAGE_SIZE);
	*hpte32(p.vm, pd + PDE32(la)) = ptx | PTE_PRW;
	*hpte32(p.vm, ptx) = b | PTE_PRW;
	i32_regs(&p, CR0_32, 0, 0, 0);

	i32_load(&p, la, mark32(la), "paging off");
	i32_mov_cr(&p, 3, pd);
	i32_mov_cr(&p, 0, CR0_32 | CR0_WP | CR0_PG);
	i32_load(&p, la, mark32(b), "paging on");
	i32_store(&p, la + 4, 0x77777777);
	i32_mov_cr(&p, 0, CR0_32);
	i32_load(&p, la + 4, mark32(la + 4), "paging off again");
	i32_store(&p, la + 8, 0x88888888);
	i32_mov_cr(&p, 0, CR0_32 | CR0_WP | CR0_PG);
	i32_load(&p, la + 8, mark32(b + 8), "paging on again");
	i32_load(&p, la + 4, 0x77777777, "paging on again, the write");
	i32_run(&p);

	TEST_ASSERT_EQ(rd32(p.vm, b + 4), 0x77777777);
	TEST_ASSERT_EQ(rd32(p.vm, la + 8), 0x88888888);
	TEST_ASSERT_EQ(rd32(p.vm, la + 4), mark32(la + 4));
	TEST_ASSERT_EQ(rd32(p.vm, b + 8), mark32(b + 8));
	vm_free(p.vm);
}

/*
 * Real mode: a REP MOVSW over three pages, and accesses through DS and
 * through ES = 0xffff above 1 MiB (A20 on).
 */
extern const char pg_rm_start[], pg_rm_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "pg_rm_start:\n"
    "	mov $0x1000, %ax\n"
    "	mov %ax, %ds\n"
    "	mov $0x2000, %ax\n"
    "	mov %ax, %es\n"
    "	xor %si, %si\n"
    "	xor %di, %di\n"
    "	mov $0xc00, %cx\n"
    "	cld\n"
    "	rep movsw\n"
    "	mov $0x3000, %ax\n"
    "	mov %ax, %ds\n"
    "	mov (0x234), %bx\n"
    "	movw $0x5a5a, (0x236)\n"
    "	mov $0xffff, %ax\n"
    "	mov %ax, %es\n"
    "	mov %es:(0x5010), %cx\n"
    "	movw $0x1234, %es:(0x5012)\n"
    "	mov %es:(0x5012), %dx\n"
    "	hlt\n"
    "pg_rm_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(real_mode_memory)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, pg_rm_start, pg_rm_end, &vcpu);
	uint8_t *mem = gpa2hva(vm, 0);
	struct kvm_regs r;

	for (int i = 0; i < 0x1800; i++)
		mem[0x10000 + i] = i * 7 + 1;
	memset(mem + 0x20000, 0xcc, 0x2000);
	*(uint16_t *)(mem + 0x30234) = 0xbeef;
	*(uint16_t *)(mem + 0x105000) = 0xcafe;
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rip, GUEST_CODE16_GPA + (pg_rm_end - pg_rm_start));
	TEST_ASSERT_EQ(r.rbx & 0xffff, 0xbeef);
	TEST_ASSERT_EQ(r.rcx & 0xffff, 0xcafe);
	TEST_ASSERT_EQ(r.rdx & 0xffff, 0x1234);
	TEST_ASSERT(!memcmp(mem + 0x20000, mem + 0x10000, 0x1800), "REP MOVSW copied wrong");
	TEST_ASSERT_EQ(mem[0x21800], 0xcc);
	TEST_ASSERT_EQ(*(uint16_t *)(mem + 0x30236), 0x5a5a);
	TEST_ASSERT_EQ(*(uint16_t *)(mem + 0x105002), 0x1234);
	TEST_ASSERT_EQ(*(uint16_t *)(mem + 0x5002), 0);		/* no wrap at 1 MiB */
	vm_free(vm);
}
