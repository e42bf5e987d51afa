// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's accesses to CR0 and CR4 that the hypervisor completes: MOV to
 * CR0 and LMSW (the selective CR0-write intercept, APM vol. 2 15.9 and its
 * Table 15-7; the test machine's CPU exits for LMSW, too, only when it
 * changes a bit other than TS and MP, so every LMSW here changes EM), MOV
 * to and from CR4 (always intercepted), in 64-bit mode, in flat 32-bit
 * protected mode and in real mode.  The test machine offers no decode
 * assists: the hypervisor decodes each instruction itself.
 *
 * The processor's checks (SDM vol. 2A "MOV-Move to/from Control Registers"
 * and "LMSW-Load Machine Status Word"; SDM vol. 3A 2.5 "Control Registers";
 * APM vol. 2 3.1.1 and 3.1.3): #GP(0) for a CR0 with NW without CD, PG
 * without PE, or PG cleared in 64-bit mode (SDM vol. 3A 10.8.5: long mode
 * is left from compatibility mode); for a CR4 with a reserved bit, a bit
 * the CPUID does not offer, PAE cleared or LA57 changed in long mode (SDM
 * vol. 3A 4.1.1), PCIDE set outside long mode (SDM vol. 3A 4.10.1).  The
 * reserved CR0 bits below 32 are ignored, and ET reads as 1 (SDM vol. 3A
 * 2.5).  LMSW loads CR0[3:0] only, and cannot clear PE.  Not tested: bits
 * 63:32 of CR0 and CR4, #GP(0) in the manuals and in minikvm; KVM without
 * decode assists (the test machine's) drops them, as its emulator keeps
 * only the low 32 bits, and the test machine's CPU ignores CR0's alone.
 *
 * The hardware's CR4 keeps the host's MCE bit, yet the guest reads back
 * exactly the CR4 it wrote, and KVM_GET_SREGS shows the same.
 *
 * Each write is checked in the guest (a #GP, its error code and RIP, the
 * register read back) and through KVM_GET_SREGS.  Not tested: setting
 * CR0.PG with EFER.LME and CR4.PAE clear, which needs EFER.LME with paging
 * off, and a 32-bit guest with that hangs the test machine's CPU at its next
 * VMRUN under either hypervisor (Documentation/testing.rst); and PCIDE with
 * CR3[11:0] != 0 or outside long mode with PCID offered: the test machine's
 * CPU has no PCID to offer, so PCIDE is a bit the CPUID does not offer.
 */
#include <unistd.h>

#include "kvm_util.h"

#define GP_VECTOR	13

#define CR0_PE		(1ULL << 0)
#define CR0_MP		(1ULL << 1)
#define CR0_ET		(1ULL << 4)
#define CR0_NE		(1ULL << 5)
#define CR0_WP		(1ULL << 16)
#define CR0_AM		(1ULL << 18)
#define CR0_NW		(1ULL << 29)
#define CR0_CD		(1ULL << 30)
#define CR0_PG		(1ULL << 31)

#define CR4_VME		(1ULL << 0)
#define CR4_TSD		(1ULL << 2)
#define CR4_DE		(1ULL << 3)
#define CR4_PAE		(1ULL << 5)
#define CR4_MCE		(1ULL << 6)
#define CR4_PGE		(1ULL << 7)
#define CR4_PCE		(1ULL << 8)
#define CR4_OSFXSR	(1ULL << 9)
#define CR4_OSXMMEXCPT	(1ULL << 10)
#define CR4_UMIP	(1ULL << 11)
#define CR4_LA57	(1ULL << 12)
#define CR4_VMXE	(1ULL << 13)
#define CR4_FSGSBASE	(1ULL << 16)
#define CR4_PCIDE	(1ULL << 17)

#define EFER_LME	(1ULL << 8)
#define EFER_LMA	(1ULL << 10)

/* Ports the blobs and the LMSW sequences report on. */
#define PORT_REPORT	0x6e
#define PORT_GP		0x6f

/*
 * MOV to CR0 and to CR4 of RDI (through RAX: three bytes, 0f 22 c0 and
 * 0f 22 e0, which the #GP handler skips).
 */
void cr_write_cr0(uint64_t val);
void cr_write_cr4(uint64_t val);
extern const char cr_write_cr0_insn[], cr_write_cr4_insn[];
asm(".pushsection .text\n"
    ".code64\n"
    "cr_write_cr0:\n"
    "	mov %rdi, %rax\n"
    "cr_write_cr0_insn:\n"
    "	mov %rax, %cr0\n"
    "	ret\n"
    "cr_write_cr4:\n"
    "	mov %rdi, %rax\n"
    "cr_write_cr4_insn:\n"
    "	mov %rax, %cr4\n"
    "	ret\n"
    ".popsection\n");

static volatile uint64_t gp_count, gp_error, gp_rip;

static void guest_gp_handler(struct ex_regs *regs)
{
	gp_count++;
	gp_error = regs->error_code;
	gp_rip = regs->rip;
	regs->rip += 3;
}

/*
 * One MOV to CR0 or CR4 in 64-bit mode: the current value with @set set and
 * @clear cleared.  @gp: it raises #GP(0) and changes nothing.  Otherwise
 * the register reads back as the current value with @rset set and @rclear
 * cleared (ignored bits are in @set or @clear but not in these).
 */
struct cr_write {
	const char *what;
	int cr;
	uint64_t set, clear;
	bool gp;
	uint64_t rset, rclear;
};

#define CR_GP(w, c, s, cl) { .what = (w), .cr = (c), .set = (s), .clear = (cl), .gp = true }
#define CR_OK(w, c, s, cl, rs, rc)						\
	{ .what = (w), .cr = (c), .set = (s), .clear = (cl), .rset = (rs), .rclear = (rc) }

/*
 * Each write of @w, reported (its index, the number of #GPs, their error
 * code and RIP, CR0 and CR4 after it), then undone with a write that must
 * not fault.
 */
static void guest_cr_writes(const struct cr_write *w, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t cur = w[i].cr ? guest_read_cr4() : guest_read_cr0();
		uint64_t val = (cur | w[i].set) & ~w[i].clear, before = gp_count, after;

		gp_error = ~0ULL;
		gp_rip = 0;
		if (w[i].cr)
			cr_write_cr4(val);
		else
			cr_write_cr0(val);
		after = w[i].cr ? guest_read_cr4() : guest_read_cr0();
		ucall(UCALL_SYNC, i, gp_count - before, gp_error, gp_rip, guest_read_cr0(), guest_read_cr4());
		if (after != cur) {
			before = gp_count;
			if (w[i].cr)
				cr_write_cr4(cur);
			else
				cr_write_cr0(cur);
			GUEST_ASSERT_EQ(gp_count, before);
		}
		GUEST_ASSERT_EQ(w[i].cr ? guest_read_cr4() : guest_read_cr0(), cur);
	}
}

/* Run the writes of @w on a fresh 64-bit vCPU of @vm and check each. */
static void run_cr_writes(struct kvm_vm *vm, const struct cr_write *w, int n)
{
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_cr_writes);
	struct kvm_sregs s0, s;
	struct ucall uc;

	vm_install_exception_handler(vm, GP_VECTOR, guest_gp_handler);
	vcpu_args_set(vcpu, 2, (uint64_t)w, (uint64_t)n);
	vcpu_sregs_get(vcpu, &s0);
	for (int i = 0; i < n; i++) {
		uint64_t cur = w[i].cr ? s0.cr4 : s0.cr0;
		uint64_t want = w[i].gp ? cur : (cur | w[i].rset) & ~w[i].rclear;
		uint64_t got, other, other0;

		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], i);
		got = w[i].cr ? uc.args[5] : uc.args[4];
		other = w[i].cr ? uc.args[4] : uc.args[5];
		other0 = w[i].cr ? s0.cr0 : s0.cr4;
		TEST_ASSERT(uc.args[1] == w[i].gp, "%s (CR%d %#" PRIx64 "): %" PRIu64 " #GP, "
			    "expected %d", w[i].what, w[i].cr,
			    (cur | w[i].set) & ~w[i].clear, uc.args[1], w[i].gp);
		if (w[i].gp) {
			TEST_ASSERT(uc.args[2] == 0, "%s: #GP error code %#" PRIx64 ", expected 0",
				    w[i].what, uc.args[2]);
			TEST_ASSERT(uc.args[3] == (uint64_t)(w[i].cr ? cr_write_cr4_insn :
							     cr_write_cr0_insn),
				    "%s: #GP at RIP %#" PRIx64 ", not at the MOV", w[i].what,
				    uc.args[3]);
		}
		TEST_ASSERT(got == want, "%s: CR%d reads %#" PRIx64 " after the write, expected %#"
			    PRIx64, w[i].what, w[i].cr, got, want);
		TEST_ASSERT(other == other0, "%s: CR%d changed to %#" PRIx64 " from %#" PRIx64,
			    w[i].what, w[i].cr ? 0 : 4, other, other0);
		vcpu_sregs_get(vcpu, &s);
		TEST_ASSERT(s.cr0 == uc.args[4] && s.cr4 == uc.args[5], "%s: KVM_GET_SREGS has "
			    "CR0 %#llx CR4 %#llx, the guest read CR0 %#" PRIx64 " CR4 %#" PRIx64,
			    w[i].what, s.cr0, s.cr4, uc.args[4], uc.args[5]);
		TEST_ASSERT(s.efer == s0.efer, "%s: EFER %#llx, was %#llx", w[i].what, s.efer,
			    s0.efer);
	}
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cr0, s0.cr0);
	TEST_ASSERT_EQ(s.cr4, s0.cr4);
}

#define NR(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void cr_writes(const struct cr_write *w, int n)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	run_cr_writes(vm, w, n);
	vm_free(vm);
}

/* The library's 64-bit state, which the tables below start from. */
static void expect_long_mode_start(void)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, NULL);
	struct kvm_sregs s;

	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cr0, CR0_PG | CR0_AM | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE);
	TEST_ASSERT_EQ(s.cr4, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT);
	TEST_ASSERT_EQ(s.efer, EFER_LME | EFER_LMA);
	vm_free(vm);
}

static const struct cr_write clear_pg[] = {
	CR_GP("clear PG", 0, 0, CR0_PG),
	CR_GP("clear PG and PE", 0, 0, CR0_PG | CR0_PE),
	CR_GP("clear PG, set CD", 0, CR0_CD, CR0_PG),
};

TEST(mov_cr0_clear_pg_in_64bit_mode_gp)
{
	expect_long_mode_start();
	cr_writes(clear_pg, NR(clear_pg));
}

static const struct cr_write cr0_combos[] = {
	CR_GP("NW without CD", 0, CR0_NW, 0),
	CR_GP("PG without PE", 0, 0, CR0_PE),
	/* The allowed combinations, for contrast. */
	CR_OK("CD", 0, CR0_CD, 0, CR0_CD, 0),
	CR_OK("CD and NW", 0, CR0_CD | CR0_NW, 0, CR0_CD | CR0_NW, 0),
};

TEST(mov_cr0_nw_without_cd_and_pg_without_pe_gp)
{
	cr_writes(cr0_combos, NR(cr0_combos));
}

/* KVM (kvm_set_cr0) drops reserved bits below 32 without #GP, as the processor does. */
static const struct cr_write cr0_ignored[] = {
	CR_OK("CR0 bit 6", 0, 1ULL << 6, 0, 0, 0),
	CR_OK("CR0 bit 17", 0, 1ULL << 17, 0, 0, 0),
	CR_OK("CR0 bits 28:19", 0, 0x1ff80000ULL, 0, 0, 0),
	CR_OK("CR0 bits 15:6", 0, 0xffc0ULL, 0, 0, 0),
	CR_OK("clear ET", 0, 0, CR0_ET, 0, 0),
	CR_OK("clear WP", 0, 0, CR0_WP, 0, CR0_WP),
	CR_OK("clear AM and NE, bit 6", 0, 1ULL << 6, CR0_AM | CR0_NE, 0, CR0_AM | CR0_NE),
};

TEST(mov_cr0_reserved_low_bits_ignored)
{
	cr_writes(cr0_ignored, NR(cr0_ignored));
}

static const struct cr_write cr4_bad[] = {
	CR_GP("CR4 bit 15", 4, 1ULL << 15, 0),
	CR_GP("CR4 bit 15 with an allowed change", 4, (1ULL << 15) | CR4_PGE, 0),
};

/* Reserved while the guest's CPUID has no VMX: kvm_intel offers it with nested=1. */
static const struct cr_write cr4_vmxe[] = {
	CR_GP("VMXE without VMX in CPUID", 4, CR4_VMXE, 0),
};

TEST(mov_cr4_reserved_bits_gp)
{
	int kvm = open_kvm();
	struct kvm_cpuid2 *cpuid = kvm_get_supported_cpuid(kvm);
	struct kvm_cpuid_entry2 *leaf1 = cpuid_find(cpuid, 1, 0);

	cr_writes(cr4_bad, NR(cr4_bad));
	if (!leaf1 || !(leaf1->ecx & (1u << 5)))
		cr_writes(cr4_vmxe, NR(cr4_vmxe));
	free(cpuid);
	close(kvm);
}

/* LA57 is #GP either way: changed in long mode, and not offered by the test machine. */
static const struct cr_write cr4_long[] = {
	CR_GP("clear PAE", 4, 0, CR4_PAE),
	CR_GP("clear PAE, set PGE", 4, CR4_PGE, CR4_PAE),
	CR_GP("set LA57", 4, CR4_LA57, 0),
};

TEST(mov_cr4_clear_pae_in_long_mode_gp)
{
	cr_writes(cr4_long, NR(cr4_long));
}

static const struct cr_write cr4_ok[] = {
	CR_OK("set MCE", 4, CR4_MCE, 0, CR4_MCE, 0),
	CR_OK("set PGE", 4, CR4_PGE, 0, CR4_PGE, 0),
	CR_OK("clear OSXMMEXCPT", 4, 0, CR4_OSXMMEXCPT, 0, CR4_OSXMMEXCPT),
	CR_OK("set TSD, DE and PCE", 4, CR4_TSD | CR4_DE | CR4_PCE, 0,
	      CR4_TSD | CR4_DE | CR4_PCE, 0),
	CR_OK("set VME, MCE and PGE", 4, CR4_VME | CR4_MCE | CR4_PGE, 0,
	      CR4_VME | CR4_MCE | CR4_PGE, 0),
};

TEST(mov_cr4_valid_changes_read_back)
{
	cr_writes(cr4_ok, NR(cr4_ok));
}

/* CR4 bits that need a CPUID feature, and where the CPUID says so. */
static const struct {
	const char *name;
	uint64_t cr4;
	uint32_t leaf;
	int reg;	/* 2: ECX, 1: EBX */
	uint32_t bit;
} cr4_features[] = {
	{ "FSGSBASE", CR4_FSGSBASE, 7, 1, 1u << 0 },
	{ "UMIP", CR4_UMIP, 7, 2, 1u << 2 },
	{ "PCIDE", CR4_PCIDE, 1, 2, 1u << 17 },
};

static struct cr_write feature_writes[8];

static uint32_t *feature_reg(struct kvm_cpuid_entry2 *e, int reg)
{
	return reg == 1 ? &e->ebx : &e->ecx;
}

/*
 * Each feature bit with the supported CPUID (allowed where it is offered)
 * and with the feature taken out of the guest's CPUID (#GP).
 */
TEST(mov_cr4_bits_follow_cpuid)
{
	int n = NR(cr4_features), offered = 0;

	for (int pass = 0; pass < 2; pass++) {
		struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

		for (int i = 0; i < n; i++) {
			struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, cr4_features[i].leaf, 0);
			bool has = e && (*feature_reg(e, cr4_features[i].reg) &
					 cr4_features[i].bit);

			if (pass && e)
				*feature_reg(e, cr4_features[i].reg) &= ~cr4_features[i].bit;
			else if (!pass)
				offered += has;
			has = has && !pass;
			feature_writes[i] = (struct cr_write){
				.what = cr4_features[i].name, .cr = 4, .set = cr4_features[i].cr4,
				.gp = !has, .rset = has ? cr4_features[i].cr4 : 0 };
			if (!pass)
				test_log("%s %s by KVM_GET_SUPPORTED_CPUID", cr4_features[i].name,
					 has ? "offered" : "not offered");
		}
		sync_global_to_guest(vm, feature_writes);
		run_cr_writes(vm, feature_writes, n);
		vm_free(vm);
	}
	TEST_ASSERT(offered, "none of the CR4 features is offered: only #GP was seen");
}

/*
 * The guest's CR4 without MCE, while the hardware's keeps the host's MCE:
 * the guest reads what it (or KVM_SET_SREGS) wrote.
 */
static void guest_cr4_mce(uint64_t cr4)
{
	GUEST_SYNC_ARGS(1, guest_read_cr4(), 0, 0);
	/* The host set MCE with KVM_SET_SREGS. */
	GUEST_SYNC_ARGS(2, guest_read_cr4(), 0, 0);
	cr_write_cr4(guest_read_cr4() & ~CR4_MCE);
	GUEST_SYNC_ARGS(3, guest_read_cr4(), gp_count, 0);
	cr_write_cr4(guest_read_cr4() | CR4_MCE);
	GUEST_SYNC_ARGS(4, guest_read_cr4(), gp_count, 0);
	cr_write_cr4(cr4);
	GUEST_SYNC_ARGS(5, guest_read_cr4(), gp_count, 0);
}

static void expect_cr4(struct kvm_vcpu *vcpu, uint64_t stage, uint64_t cr4)
{
	struct kvm_sregs s;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], stage);
	TEST_ASSERT(uc.args[1] == cr4, "stage %" PRIu64 ": the guest reads CR4 %#" PRIx64
		    ", expected %#" PRIx64, stage, uc.args[1], cr4);
	TEST_ASSERT_EQ(uc.args[2], 0);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT(s.cr4 == cr4, "stage %" PRIu64 ": KVM_GET_SREGS has CR4 %#llx, expected %#"
		    PRIx64, stage, s.cr4, cr4);
}

TEST(cr4_mce_reads_back_the_guests_own)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_cr4_mce);
	struct kvm_sregs s;
	struct ucall uc;
	uint64_t cr4;

	vm_install_exception_handler(vm, GP_VECTOR, guest_gp_handler);
	vcpu_sregs_get(vcpu, &s);
	cr4 = s.cr4;
	TEST_ASSERT(!(cr4 & CR4_MCE), "the library's CR4 %#" PRIx64 " has MCE", cr4);
	vcpu_args_set(vcpu, 1, cr4);
	expect_cr4(vcpu, 1, cr4);
	vcpu_sregs_get(vcpu, &s);
	s.cr4 |= CR4_MCE;
	vcpu_sregs_set(vcpu, &s);
	expect_cr4(vcpu, 2, cr4 | CR4_MCE);
	expect_cr4(vcpu, 3, cr4);
	expect_cr4(vcpu, 4, cr4 | CR4_MCE);
	expect_cr4(vcpu, 5, cr4);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

/*
 * LMSW in 64-bit mode, with a register and with a memory operand: CR0[3:0]
 * from the operand's low four bits, PE never cleared.  EM = 1 makes SSE
 * instructions fault, so CR0 is read, reported on PORT_REPORT (where the
 * host reads KVM_GET_SREGS) and restored in the same asm block.
 */
static uint64_t lmsw_reg(uint64_t msw, uint64_t cr0)
{
	uint64_t mid;

	asm volatile("lmsw %w1\n\t"
		     "mov %%cr0, %0\n\t"
		     "outb %%al, %3\n\t"
		     "mov %2, %%cr0"
		     : "=&r"(mid) : "r"(msw), "r"(cr0), "i"(PORT_REPORT) : "rax", "memory");
	return mid;
}

static uint64_t lmsw_mem(uint64_t msw, uint64_t cr0)
{
	volatile uint16_t m = msw;
	uint64_t mid;

	asm volatile("lmsw %1\n\t"
		     "mov %%cr0, %0\n\t"
		     "outb %%al, %3\n\t"
		     "mov %2, %%cr0"
		     : "=&r"(mid) : "m"(m), "r"(cr0), "i"(PORT_REPORT) : "rax", "memory");
	return mid;
}

static const uint16_t lmsw_values[] = { 0x0004, 0xfffe, 0x000c, 0xfff6 };

static void guest_lmsw(void)
{
	uint64_t cr0 = guest_read_cr0();

	for (int mem = 0; mem < 2; mem++) {
		for (int i = 0; i < NR(lmsw_values); i++) {
			uint64_t mid = mem ? lmsw_mem(lmsw_values[i], cr0) :
					     lmsw_reg(lmsw_values[i], cr0);

			GUEST_SYNC_ARGS(i, mid, guest_read_cr0(), mem);
		}
	}
}

TEST(lmsw_64bit_register_and_memory)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_lmsw);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs s0, s;
	struct ucall uc;

	vcpu_sregs_get(vcpu, &s0);
	TEST_ASSERT_EQ(s0.cr0 & 0xf, CR0_PE | CR0_MP);
	for (int mem = 0; mem < 2; mem++) {
		for (int i = 0; i < NR(lmsw_values); i++) {
			uint64_t want = (s0.cr0 & ~0xfULL) | (lmsw_values[i] & 0xf) | CR0_PE;

			vcpu_run(vcpu);
			TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
			TEST_ASSERT_EQ(run->io.port, PORT_REPORT);
			vcpu_sregs_get(vcpu, &s);
			TEST_ASSERT(s.cr0 == want, "LMSW %s %#x: KVM_GET_SREGS has CR0 %#llx, "
				    "expected %#" PRIx64, mem ? "memory" : "register",
				    lmsw_values[i], s.cr0, want);
			TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
			TEST_ASSERT_EQ(uc.args[0], i);
			TEST_ASSERT_EQ(uc.args[3], mem);
			TEST_ASSERT(uc.args[1] == want, "LMSW %s %#x: the guest reads CR0 %#"
				    PRIx64 ", expected %#" PRIx64, mem ? "memory" : "register",
				    lmsw_values[i], uc.args[1], want);
			TEST_ASSERT_EQ(uc.args[2], s0.cr0);
		}
	}
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cr0, s0.cr0);
	vm_free(vm);
}

/*
 * SMSW (SDM vol. 2 SMSW): CR0's low 16 bits to memory; to a register as
 * much of CR0 as the operand size holds, a 16-bit one keeping its upper
 * bits.  With npt=0 the hypervisor intercepts CR0 reads, SMSW among them
 * (APM 15.9), and completes it; with npt=1 the CPU runs it.
 */
static void guest_smsw(void)
{
	uint64_t r16 = 0x1122334455667788ULL, r32 = ~0ULL, r64 = 0;
	volatile uint16_t m = 0xabcd;

	asm volatile("smsw %w0" : "+r"(r16));
	asm volatile("smsw %k0" : "+r"(r32));
	asm volatile("smsw %q0" : "+r"(r64));
	asm volatile("smsw %0" : "=m"(m) : : "memory");
	GUEST_SYNC_ARGS(guest_read_cr0(), r16, r32, r64);
	GUEST_SYNC_ARGS(m, 0, 0, 0);
}

TEST(smsw_register_and_memory)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_smsw);
	struct ucall uc;
	uint64_t cr0;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	cr0 = uc.args[0];
	TEST_ASSERT_EQ(cr0 & 0xffffffff, 0x80050033);
	TEST_ASSERT_EQ(uc.args[1], 0x1122334455660000ULL | (cr0 & 0xffff));
	TEST_ASSERT_EQ(uc.args[2], (uint32_t)cr0);
	TEST_ASSERT_EQ(uc.args[3], cr0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], cr0 & 0xffff);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

/*
 * Real mode (CR0 0x60000010 after reset: CD, NW, ET): LMSW sets PE, and a
 * later LMSW without PE (in 16-bit protected mode now) leaves it set.  EBX,
 * ECX, EDX: CR0 before, after the first LMSW, after the second.
 */
extern const char rm_lmsw[], rm_lmsw_end[];
extern const char rm_lmsw_mem[], rm_lmsw_mem_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "rm_lmsw:\n"
    "	mov %cr0, %ebx\n"
    "	mov $1, %ax\n"
    "	lmsw %ax\n"
    "	mov %cr0, %ecx\n"
    "	mov $0xfff4, %ax\n"
    "	lmsw %ax\n"
    "	mov %cr0, %edx\n"
    "	hlt\n"
    "rm_lmsw_end:\n"
    "rm_lmsw_mem:\n"
    "	mov %cr0, %ebx\n"
    "	lmsw (0x600)\n"
    "	mov %cr0, %ecx\n"
    "	lmsw (0x602)\n"
    "	mov %cr0, %edx\n"
    "	hlt\n"
    "rm_lmsw_mem_end:\n"
    ".code64\n"
    ".popsection\n");

static void real_mode_lmsw(const char *start, const char *end, uint64_t first, uint64_t second)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, start, end, &vcpu);
	uint64_t cr0_reset = CR0_CD | CR0_NW | CR0_ET;
	uint64_t want1 = (cr0_reset & ~0xfULL) | (first & 0xf);
	uint64_t want2 = (want1 & ~0xfULL) | (second & 0xf) | CR0_PE;
	struct kvm_sregs s;
	struct kvm_regs r;

	*(uint16_t *)gpa2hva(vm, 0x600) = first;
	*(uint16_t *)gpa2hva(vm, 0x602) = second;
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cr0, cr0_reset);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(r.rip, GUEST_CODE16_GPA + (end - start));
	TEST_ASSERT_EQ(r.rbx & 0xffffffff, cr0_reset);
	TEST_ASSERT(want1 & CR0_PE, "the first LMSW sets PE");
	TEST_ASSERT((r.rcx & 0xffffffff) == want1, "CR0 after LMSW %#" PRIx64 ": %#llx, "
		    "expected %#" PRIx64, first, r.rcx & 0xffffffff, want1);
	TEST_ASSERT((r.rdx & 0xffffffff) == want2, "CR0 after LMSW %#" PRIx64 ": %#llx, "
		    "expected %#" PRIx64, second, r.rdx & 0xffffffff, want2);
	TEST_ASSERT(s.cr0 == want2, "KVM_GET_SREGS: CR0 %#llx, expected %#" PRIx64, s.cr0,
		    want2);
	TEST_ASSERT_EQ(s.efer, 0);
	vm_free(vm);
}

TEST(real_mode_lmsw_register_sets_pe)
{
	/* 0xfff4: EM; PE clear; bits 15:4 ignored. */
	real_mode_lmsw(rm_lmsw, rm_lmsw_end, 0x0001, 0xfff4);
}

TEST(real_mode_lmsw_memory_sets_pe)
{
	real_mode_lmsw(rm_lmsw_mem, rm_lmsw_mem_end, 0xfff3, 0x000c);
}

/*
 * Flat 32-bit protected mode without paging, CR0 0x60000011 (CD, NW, ET,
 * PE).  Clears CD and NW (allowed: reported on PORT_REPORT with the CR0
 * read back in EBX), then tries NW without CD, PG without PE and PCIDE
 * outside long mode (which the test machine's CPUID does not offer
 * either), each a #GP whose handler reports the error code on PORT_GP with
 * the faulting EIP in EDX and skips the 3-byte MOV.  Ends with CR0 in EBX
 * and CR4 in ECX at HLT.
 */
extern const char pm_cr[], pm_cr_nw[], pm_cr_pg[], pm_cr_pcide[], pm_cr_gp[], pm_cr_end[];
asm(".pushsection .rodata\n"
    ".code32\n"
    "pm_cr:\n"
    "	mov %cr0, %eax\n"
    "	and $0x9fffffff, %eax\n"
    "	mov %eax, %cr0\n"
    "	mov %cr0, %ebx\n"
    "	out %al, $0x6e\n"
    "	mov %ebx, %eax\n"
    "	or $0x20000000, %eax\n"
    "pm_cr_nw:\n"
    "	mov %eax, %cr0\n"
    "	mov %ebx, %eax\n"
    "	and $0xfffffffe, %eax\n"
    "	or $0x80000000, %eax\n"
    "pm_cr_pg:\n"
    "	mov %eax, %cr0\n"
    "	mov %cr4, %eax\n"
    "	or $0x20000, %eax\n"
    "pm_cr_pcide:\n"
    "	mov %eax, %cr4\n"
    "	mov %cr0, %ebx\n"
    "	mov %cr4, %ecx\n"
    "	hlt\n"
    "pm_cr_gp:\n"
    "	pop %eax\n"
    "	mov (%esp), %edx\n"
    "	out %eax, $0x6f\n"
    "	addl $3, (%esp)\n"
    "	iret\n"
    "pm_cr_end:\n"
    ".code64\n"
    ".popsection\n");

#define PM_GPA(sym) ((uint64_t)(GUEST_CODE16_GPA + ((sym) - pm_cr)))

TEST(prot32_cr0_cr4_checks_gp)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_PROT32, pm_cr, pm_cr_end, &vcpu);
	const char *const faults[] = { pm_cr_nw, pm_cr_pg, pm_cr_pcide };
	const char *const names[] = { "NW without CD", "PG without PE", "PCIDE without LMA" };
	uint64_t idt = vm_alloc_pages(vm, 1), handler = PM_GPA(pm_cr_gp), cr0;
	uint32_t *gate = (uint32_t *)gpa2hva(vm, idt) + 2 * GP_VECTOR;
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs s0, s;
	struct kvm_regs r;

	/* A 32-bit interrupt gate (SDM vol. 3A 6.11), DPL 0, present. */
	gate[0] = (handler & 0xffff) | (SEL_CODE32 << 16);
	gate[1] = (handler & 0xffff0000) | 0x8e00;
	vcpu_sregs_get(vcpu, &s0);
	TEST_ASSERT_EQ(s0.cr0, CR0_CD | CR0_NW | CR0_ET | CR0_PE);
	s0.idt.base = idt;
	s0.idt.limit = 256 * 8 - 1;
	vcpu_sregs_set(vcpu, &s0);
	cr0 = s0.cr0 & ~(CR0_CD | CR0_NW);

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, PORT_REPORT);
	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(r.rbx, cr0);
	TEST_ASSERT_EQ(s.cr0, cr0);
	for (int i = 0; i < NR(faults); i++) {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
		TEST_ASSERT(run->io.port == PORT_GP, "%s: no #GP, port %#x", names[i],
			    run->io.port);
		vcpu_regs_get(vcpu, &r);
		vcpu_sregs_get(vcpu, &s);
		TEST_ASSERT(*(uint32_t *)((char *)run + run->io.data_offset) == 0,
			    "%s: error code %#x", names[i],
			    *(uint32_t *)((char *)run + run->io.data_offset));
		TEST_ASSERT(r.rdx == PM_GPA(faults[i]), "%s: #GP at EIP %#llx, expected %#"
			    PRIx64, names[i], r.rdx, PM_GPA(faults[i]));
		TEST_ASSERT(s.cr0 == cr0 && s.cr4 == s0.cr4, "%s: CR0 %#llx CR4 %#llx after "
			    "the #GP, expected %#" PRIx64 " and %#llx", names[i], s.cr0, s.cr4,
			    cr0, s0.cr4);
	}
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(r.rbx, cr0);
	TEST_ASSERT_EQ(r.rcx, s0.cr4);
	TEST_ASSERT_EQ(s.cr0, cr0);
	TEST_ASSERT_EQ(s.cr4, s0.cr4);
	TEST_ASSERT_EQ(s.efer, s0.efer);
	vm_free(vm);
}
