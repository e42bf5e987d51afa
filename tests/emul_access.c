// SPDX-License-Identifier: GPL-2.0
/*
 * The memory checks of string port I/O completed by the hypervisor.  INS
 * and OUTS exit on the I/O intercept before the CPU checks their memory
 * operand (APM vol. 2 15.10.2), so the hypervisor must check it as the CPU
 * would: in 64-bit mode the canonical form (#GP(0)); in protected mode the
 * segment's type and limit (#GP(0), #SS(0) for SS; SDM vol. 3 5.3-5.5); then
 * the guest's page tables at the CPL (SDM vol. 3 4.6-4.7, APM vol. 2 5.6):
 * U/S, R/W with CR0.WP, SMAP with RFLAGS.AC, reserved bits, each a #PF with
 * its error code and CR2.  A user process with IOPL 3 must not write or read
 * kernel memory through them (CVE-2010-0298's class).
 *
 * Each case runs in a fresh VM: one string instruction, at CPL 3 through
 * guest_user_call() or at CPL 0, on two pages of their own at TARGET_GVA
 * with the rights the case gives.  guest_exception_report() brings the
 * exception to the host, which checks the vector, the error code, CR2, that
 * RIP is the string instruction and that RDI/RSI and RCX moved only past
 * the elements done before the fault; then the memory, the port traffic,
 * and the accessed and dirty bits.
 *
 * OUTS reads its element before the port sees it: a forbidden OUTS must
 * never reach KVM_EXIT_IO.  INS: the reference KVM (Debian 6.1) exits to
 * userspace for the port first and checks the memory only when it writes
 * the data (x86_emulate_insn() writes back after em_in()), where minikvm
 * checks before the exit and again at the write; both end in the same
 * exception with nothing written, so the cases accept port exits for an
 * INS that faults, answer them, and log how many elements were read that
 * way.  minikvm sets the dirty bit at its check before the exit, so a page
 * made read-only during the exit ends dirty there and clean on KVM: the
 * case logs it.
 *
 * Not tested, because KVM (6.1) is not the architecture there: a REP INS
 * whose read-ahead batch runs past ES's limit, or (INSW/INSD) into a page
 * the guest may not write, faults with RDI and RCX as before the batch on
 * KVM (having stored the part in the first page, for the page case) where
 * the processor and minikvm do the elements before the fault; and an SS
 * override, which 64-bit mode ignores: #GP(0) for a non-canonical RSI on
 * the processor and minikvm, #SS(0) on KVM (Documentation/testing.rst).
 */
#include "kvm_util.h"

#define PORT		0x6b0
#define SS_VECTOR	12
#define GP_VECTOR	13
#define PF_VECTOR	14

/* #PF error code (SDM vol. 3 4.7) */
#define PF_P		0x1
#define PF_W		0x2
#define PF_U		0x4
#define PF_RSVD		0x8

#define CR0_WP		(1ULL << 16)
#define CR4_SMAP	(1ULL << 21)
#define EFER_NXE	(1ULL << 11)

/*
 * Two pages of the target, with tables of their own (PML4 entry 252).  EDGE:
 * the last two pages below the non-canonical hole (PML4 entry 255).
 */
#define TARGET_GVA	0x00007e0000000000ULL
#define EDGE_GVA	0x00007fffffffe000ULL
#define NONCANON	0x0000800000000000ULL

#define CANARY		0x5a
/* What the ops below return when the string instruction is done or skipped. */
#define OPS_DONE	0x600d

/*
 * The string instructions, in a page of their own that user cases give the
 * U bit.  Called with RDI, RSI, RDX (the port) and RCX set as the SysV ABI
 * passes the first four arguments.
 */
extern const char ea_user_start[], ea_user_end[];
extern const char ea_insb[], ea_rep_insb[], ea_outsb[], ea_rep_outsb[];
extern const char ea_fs_outsb[];
extern const char ea_stac_insb[], ea_stac_insb_insn[], ea_stac_outsb[], ea_stac_outsb_insn[];
extern const char ea_std_rep_insb[], ea_std_rep_insb_insn[];
extern const char ea_std_rep_outsb[], ea_std_rep_outsb_insn[];
asm(".pushsection .text.emul_access_user, \"ax\", @progbits\n"
    ".p2align 12\n"
    "ea_user_start:\n"
    "ea_insb:\n"
    "	insb\n"
    "	jmp ea_done\n"
    "ea_rep_insb:\n"
    "	rep insb\n"
    "	jmp ea_done\n"
    "ea_outsb:\n"
    "	outsb\n"
    "	jmp ea_done\n"
    "ea_rep_outsb:\n"
    "	rep outsb\n"
    "	jmp ea_done\n"
    "ea_fs_outsb:\n"
    "	fs outsb\n"
    "	jmp ea_done\n"
    "ea_stac_insb:\n"
    "	stac\n"
    "ea_stac_insb_insn:\n"
    "	insb\n"
    "	clac\n"
    "	jmp ea_done\n"
    "ea_stac_outsb:\n"
    "	stac\n"
    "ea_stac_outsb_insn:\n"
    "	outsb\n"
    "	clac\n"
    "	jmp ea_done\n"
    "ea_std_rep_insb:\n"
    "	std\n"
    "ea_std_rep_insb_insn:\n"
    "	rep insb\n"
    "	cld\n"
    "	jmp ea_done\n"
    "ea_std_rep_outsb:\n"
    "	std\n"
    "ea_std_rep_outsb_insn:\n"
    "	rep outsb\n"
    "	cld\n"
    "ea_done:\n"
    "	mov $0x600d, %eax\n"
    "	ret\n"
    ".p2align 12\n"
    "ea_user_end:\n"
    ".popsection\n");

struct op {
	const char *entry;	/* the function */
	const char *insn;	/* the string instruction in it */
	uint8_t len;		/* its length */
	bool out;		/* OUTS (reads memory) or INS (writes it) */
	bool rep;
	bool df;		/* run with RFLAGS.DF set: downwards */
};

static const struct op op_insb = { ea_insb, ea_insb, 1, false, false, false };
static const struct op op_rep_insb = { ea_rep_insb, ea_rep_insb, 2, false, true, false };
static const struct op op_outsb = { ea_outsb, ea_outsb, 1, true, false, false };
static const struct op op_rep_outsb = { ea_rep_outsb, ea_rep_outsb, 2, true, true, false };
static const struct op op_fs_outsb = { ea_fs_outsb, ea_fs_outsb, 2, true, false, false };
static const struct op op_stac_insb = { ea_stac_insb, ea_stac_insb_insn, 1, false, false,
					false };
static const struct op op_stac_outsb = { ea_stac_outsb, ea_stac_outsb_insn, 1, true, false,
					 false };
static const struct op op_std_rep_insb = { ea_std_rep_insb, ea_std_rep_insb_insn, 2, false,
					   true, true };
static const struct op op_std_rep_outsb = { ea_std_rep_outsb, ea_std_rep_outsb_insn, 2, true,
					    true, true };

struct access_case {
	const char *what;
	bool user;		/* at CPL 3 with IOPL 3, else CPL 0 */
	const struct op *op;
	uint64_t base;		/* the two pages; 0: TARGET_GVA */
	uint64_t flags[2];	/* their leaf entries' PTE_RW/PTE_US (P is implied) */
	uint64_t ptr;		/* RDI or RSI */
	uint64_t count;		/* RCX (the count of a REP) */
	uint64_t fs_base;
	bool wp_off;		/* CR0.WP = 0 */
	bool smap;		/* CR4.SMAP = 1 */
	/* Change the entry at this level of the first page's walk. */
	int pte_level;
	uint64_t pte_set, pte_clear;
	bool revoke_at_io;	/* clear the first page's R/W at the first port exit */
	/* The outcome: an exception (vector 0: none) after @done elements. */
	int vector;
	uint32_t error_code;
	uint64_t done;
};

/* The byte the port gives as the @j-th INS element; never CANARY. */
static uint8_t port_byte(uint64_t j)
{
	return 0xa0 + j % 0x3f;
}

/* What OUTS cases keep at offset @off of target page @page; never CANARY. */
static uint8_t page_byte(int page, uint64_t off)
{
	return (page ? 0x81 : 0x01) + off % 0x3f;
}

static void guest_main(uint64_t user, uint64_t fn, uint64_t ptr, uint64_t count)
{
	guest_user_fn f = (guest_user_fn)fn;
	uint64_t r;

	if (user)
		r = guest_user_call(f, RFLAGS_IOPL3, ptr, ptr, PORT, count);
	else
		r = f(ptr, ptr, PORT, count);
	GUEST_SYNC_ARGS(1, r, 0, 0);
}

static bool smap_supported(struct kvm_vm *vm)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 7, 0);

	return e && (e->ebx & (1u << 20));
}

static unsigned int maxphyaddr(struct kvm_vm *vm)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0x80000008, 0);

	TEST_ASSERT(e, "no CPUID leaf 0x80000008");
	return e->eax & 0xff;
}

/* Element @j's offset from the first: DF says which way. */
static int64_t elem(const struct access_case *c, uint64_t j)
{
	return c->op->df ? -(int64_t)j : (int64_t)j;
}

/* Check an exception the guest reported against what @c expects. */
static void check_exception(const struct access_case *c, const struct ucall *uc,
			    const struct ex_regs *ex)
{
	uint64_t ptr = c->ptr + elem(c, c->done);
	uint64_t rcx = c->op->rep ? c->count - c->done : c->count;
	uint64_t la = c->fs_base + ptr;

	TEST_ASSERT(c->vector, "%s: exception %" PRIu64 " error code %#" PRIx64 " at rip %#"
		    PRIx64 ", cr2 %#" PRIx64 ", expected none", c->what, uc->args[0],
		    uc->args[1], uc->args[3], uc->args[2]);
	TEST_ASSERT(uc->args[0] == (uint64_t)c->vector && uc->args[1] == c->error_code,
		    "%s: vector %" PRIu64 " error code %#" PRIx64 " (cr2 %#" PRIx64 "), expected "
		    "vector %d error code %#x", c->what, uc->args[0], uc->args[1], uc->args[2],
		    c->vector, c->error_code);
	if (c->vector == PF_VECTOR)
		TEST_ASSERT(uc->args[2] == la, "%s: CR2 %#" PRIx64 ", expected %#" PRIx64,
			    c->what, uc->args[2], la);
	TEST_ASSERT(ex->rip == (uint64_t)c->op->insn, "%s: RIP %#" PRIx64 ", expected the "
		    "string instruction at %#" PRIx64, c->what, ex->rip, (uint64_t)c->op->insn);
	TEST_ASSERT_EQ(ex->cs & 3, c->user ? 3 : 0);
	TEST_ASSERT(ex->rcx == rcx, "%s: RCX %#" PRIx64 " at the fault, expected %#" PRIx64,
		    c->what, ex->rcx, rcx);
	if (c->op->out)
		TEST_ASSERT(ex->rsi == ptr, "%s: RSI %#" PRIx64 " at the fault, expected %#"
			    PRIx64, c->what, ex->rsi, ptr);
	else
		TEST_ASSERT(ex->rdi == ptr, "%s: RDI %#" PRIx64 " at the fault, expected %#"
			    PRIx64, c->what, ex->rdi, ptr);
}

/*
 * The accessed bit of every entry a successful access used, and the dirty
 * bit of the leaf it wrote (SDM vol. 3 4.8); no dirty bit for a write that
 * faulted.
 */
static void check_ad_bits(struct kvm_vm *vm, const struct access_case *c, uint64_t la,
			  bool done)
{
	uint64_t *leaf = pgtable_entry(&vm->pt, la, 1);

	if (!done) {
		TEST_ASSERT(!leaf || !(*leaf & PTE_D), "%s: the PTE %#" PRIx64 " of %#" PRIx64
			    " is dirty after a write that faulted", c->what, *leaf, la);
		return;
	}
	TEST_ASSERT(leaf, "%s: %#" PRIx64 " has no PTE", c->what, la);
	TEST_ASSERT(*leaf & PTE_A, "%s: the PTE %#" PRIx64 " of %#" PRIx64 " has no accessed "
		    "bit", c->what, *leaf, la);
	TEST_ASSERT(!!(*leaf & PTE_D) == !c->op->out, "%s: the PTE %#" PRIx64 " of %#" PRIx64
		    " is %s", c->what, *leaf, la, *leaf & PTE_D ? "dirty after a read" :
		    "not dirty after a write");
	for (int level = 2; level <= 4; level++)
		TEST_ASSERT(*virt_pte(vm, la, level) & PTE_A, "%s: the level-%d entry %#" PRIx64
			    " has no accessed bit", c->what, level, *virt_pte(vm, la, level));
}

static void run_access_case(const struct access_case *c)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_main);
	uint64_t base = c->base ? c->base : TARGET_GVA, la0 = c->fs_base + c->ptr;
	uint64_t n = c->op->rep ? c->count : 1, done = c->vector ? c->done : n;
	uint64_t in_elems = 0, out_elems = 0;
	unsigned int port_exits = 0;
	struct kvm_run *run = vcpu->run;
	uint8_t *page[2], out_data[64];
	bool faulted = false;
	struct kvm_sregs sregs;
	struct ucall uc;

	if (c->smap && !smap_supported(vm))
		SKIP("no SMAP in KVM_GET_SUPPORTED_CPUID (7.EBX bit 20)");
	if (c->pte_set & PTE_ADDR_MASK & ((1ULL << maxphyaddr(vm)) - 1))
		SKIP("MAXPHYADDR %u: bits %#" PRIx64 " are not reserved", maxphyaddr(vm),
		     c->pte_set);
	for (int i = 0; i < 2; i++) {
		uint64_t gpa = vm_alloc_pages(vm, 1);

		virt_map_flags(vm, base + i * PAGE_SIZE, gpa, PAGE_SIZE, c->flags[i]);
		page[i] = gpa2hva(vm, gpa);
		for (uint64_t off = 0; off < PAGE_SIZE; off++)
			page[i][off] = c->op->out ? page_byte(i, off) : CANARY;
	}
	if (c->user)
		virt_set_user(vm, (uint64_t)ea_user_start, ea_user_end - ea_user_start);
	if (c->pte_level) {
		uint64_t *pte = virt_pte(vm, base, c->pte_level);

		*pte = (*pte & ~c->pte_clear) | c->pte_set;
	}
	vm_install_exception_handler(vm, PF_VECTOR, guest_exception_report);
	vm_install_exception_handler(vm, GP_VECTOR, guest_exception_report);
	vm_install_exception_handler(vm, SS_VECTOR, guest_exception_report);

	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT(!(sregs.efer & EFER_NXE), "the library's EFER has NXE");
	if (c->wp_off)
		sregs.cr0 &= ~CR0_WP;
	if (c->smap)
		sregs.cr4 |= CR4_SMAP;
	sregs.fs.base = c->fs_base;
	vcpu_sregs_set(vcpu, &sregs);
	vcpu_args_set(vcpu, 4, c->user, (uint64_t)c->op->entry, c->ptr, c->count);

	for (;;) {
		vcpu_run(vcpu);
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PORT) {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;

			port_exits++;
			TEST_ASSERT(run->io.size == 1 && run->io.count >= 1 &&
				    run->io.direction == (c->op->out ? KVM_EXIT_IO_OUT :
							  KVM_EXIT_IO_IN),
				    "%s: port exit %u: size %u count %u direction %u", c->what,
				    port_exits, run->io.size, run->io.count, run->io.direction);
			if (c->op->out) {
				for (uint32_t k = 0; k < run->io.count; k++, out_elems++)
					if (out_elems < sizeof(out_data))
						out_data[out_elems] = data[k];
				continue;
			}
			TEST_ASSERT(in_elems + run->io.count <= n, "%s: %" PRIu64 " elements "
				    "read, then %u more for a count of %" PRIu64, c->what,
				    in_elems, run->io.count, n);
			for (uint32_t k = 0; k < run->io.count; k++)
				data[k] = port_byte(in_elems + k);
			in_elems += run->io.count;
			if (c->revoke_at_io && port_exits == 1)
				virt_set_pte_flags(vm, base, PAGE_SIZE, 0, PTE_RW);
			continue;
		}
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_EXCEPTION: {
			struct ex_regs *ex = ucall_ex_regs(vcpu, &uc);

			TEST_ASSERT(!faulted, "%s: a second exception, vector %" PRIu64 " at %#"
				    PRIx64, c->what, uc.args[0], uc.args[3]);
			faulted = true;
			check_exception(c, &uc, ex);
			/* At CPL 0 go on after the instruction; CPL 3 returns by itself. */
			if (!c->user)
				ex->rip += c->op->len;
			continue;
		}
		case UCALL_SYNC:
			break;
		default:
			vcpu_run_ucall_report(vcpu, &uc);
			TEST_ASSERT(false, "%s: port I/O exit on port %#x", c->what, run->io.port);
		}
		break;
	}

	TEST_ASSERT(faulted || !c->vector, "%s: no exception, expected vector %d error code "
		    "%#x", c->what, c->vector, c->error_code);
	TEST_ASSERT_EQ(uc.args[1], c->user && c->vector ? GUEST_USER_FAULTED(c->vector) :
		       OPS_DONE);

	/*
	 * OUTS: the port saw exactly the elements done, in order; nothing of
	 * the element that faulted or after it.
	 */
	if (c->op->out) {
		TEST_ASSERT(out_elems == done, "%s: %" PRIu64 " elements reached the port, "
			    "expected %" PRIu64 " (the first %#x)", c->what, out_elems, done,
			    out_elems ? out_data[0] : 0);
		for (uint64_t j = 0; j < out_elems && j < sizeof(out_data); j++) {
			uint64_t la = la0 + elem(c, j);
			uint8_t want = page_byte((la - base) / PAGE_SIZE, la % PAGE_SIZE);

			TEST_ASSERT(out_data[j] == want, "%s: element %" PRIu64 " at the port "
				    "was %#x, expected %#x", c->what, j, out_data[j], want);
		}
	}
	/*
	 * INS: every element done came through the port; the one that faulted
	 * may have too (the reference KVM reads the port first).
	 */
	if (!c->op->out) {
		TEST_ASSERT(c->vector ? in_elems >= done : in_elems == n, "%s: %" PRIu64
			    " elements read from the port for %" PRIu64 " done", c->what,
			    in_elems, done);
		if (c->vector)
			test_log("%s: %s(%#x) after %u port exits, %" PRIu64 " elements read "
				 "for %" PRIu64 " done", c->what, c->vector == PF_VECTOR ? "#PF" :
				 "#GP", c->error_code, port_exits, in_elems, done);
	}

	/* Memory: the elements done hold the port's bytes, everything else is as it was. */
	for (int i = 0; i < 2; i++) {
		for (uint64_t off = 0; off < PAGE_SIZE; off++) {
			uint64_t la = base + i * PAGE_SIZE + off;
			int64_t j = c->op->df ? (int64_t)(la0 - la) : (int64_t)(la - la0);
			bool written = !c->op->out && j >= 0 && j < (int64_t)done;
			uint8_t want = written ? port_byte(j) :
				       c->op->out ? page_byte(i, off) : CANARY;

			TEST_ASSERT(page[i][off] == want, "%s: byte at %#" PRIx64 " is %#x, "
				    "expected %#x", c->what, la, page[i][off], want);
		}
	}

	if (done) {
		check_ad_bits(vm, c, la0, true);
		check_ad_bits(vm, c, la0 + elem(c, done - 1), true);
	}
	if (c->vector == PF_VECTOR && !c->op->out) {
		uint64_t la = la0 + elem(c, done);

		/*
		 * minikvm sets the dirty bit when it checks the page before the
		 * port exit; KVM walks only for the write, which then faults.
		 */
		if (c->revoke_at_io)
			test_log("%s: the PTE is %s after the write that faulted", c->what,
				 *virt_pte(vm, la, 1) & PTE_D ? "dirty" : "clean");
		else
			check_ad_bits(vm, c, la, false);
	}
	vm_free(vm);
}

#define ACCESS_TEST(name, ...)							\
	TEST(name)								\
	{									\
		static const struct access_case c = { #name, __VA_ARGS__ };	\
										\
		run_access_case(&c);						\
	}

#define T		TARGET_GVA
#define RW		PTE_RW
#define US		PTE_US
#define PF_UWP		(PF_U | PF_W | PF_P)

/*
 * CPL 3 INS: #PF U|W|P into a kernel page or a read-only user page (CR0.WP
 * does not matter at CPL 3), or when an upper level lacks U or R/W; into
 * a writable user page it works.
 */
ACCESS_TEST(user_insb_supervisor_page, .user = true, .op = &op_insb, .flags = { RW, RW },
	    .ptr = T + 0x123, .count = 5, .vector = PF_VECTOR, .error_code = PF_UWP)
ACCESS_TEST(user_rep_insb_supervisor_page, .user = true, .op = &op_rep_insb,
	    .flags = { RW, RW }, .ptr = T + 0x200, .count = 16, .vector = PF_VECTOR,
	    .error_code = PF_UWP)
ACCESS_TEST(user_rep_insb_supervisor_read_only_page, .user = true, .op = &op_rep_insb,
	    .flags = { 0, 0 }, .ptr = T + 0x200, .count = 16, .vector = PF_VECTOR,
	    .error_code = PF_UWP)
ACCESS_TEST(user_insb_user_read_only_page, .user = true, .op = &op_insb, .flags = { US, US },
	    .ptr = T + 0x40, .vector = PF_VECTOR, .error_code = PF_UWP)
ACCESS_TEST(user_rep_insb_user_read_only_page, .user = true, .op = &op_rep_insb,
	    .flags = { US, US }, .ptr = T + 0x40, .count = 8, .vector = PF_VECTOR,
	    .error_code = PF_UWP)
ACCESS_TEST(user_insb_user_read_only_page_wp_off, .user = true, .op = &op_insb,
	    .flags = { US, US }, .ptr = T + 0x40, .wp_off = true, .vector = PF_VECTOR,
	    .error_code = PF_UWP)
ACCESS_TEST(user_insb_pde_without_us, .user = true, .op = &op_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x40, .pte_level = 2, .pte_clear = US,
	    .vector = PF_VECTOR, .error_code = PF_UWP)
ACCESS_TEST(user_insb_pdpte_read_only, .user = true, .op = &op_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x40, .pte_level = 3, .pte_clear = RW,
	    .vector = PF_VECTOR, .error_code = PF_UWP)
ACCESS_TEST(user_insb_user_page, .user = true, .op = &op_insb, .flags = { US | RW, US | RW },
	    .ptr = T + 0x40, .count = 3)
ACCESS_TEST(user_rep_insb_user_page, .user = true, .op = &op_rep_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x40, .count = 24)

/*
 * CPL 3 OUTS from a kernel page: #PF U|P, and the port never sees a byte of
 * it; from a user page, even a read-only one, it works, and with an FS
 * override the check is at FS.base + RSI.
 */
ACCESS_TEST(user_outsb_supervisor_page, .user = true, .op = &op_outsb, .flags = { RW, RW },
	    .ptr = T + 0x10, .vector = PF_VECTOR, .error_code = PF_U | PF_P)
ACCESS_TEST(user_rep_outsb_supervisor_page, .user = true, .op = &op_rep_outsb,
	    .flags = { 0, 0 }, .ptr = T + 0x10, .count = 8, .vector = PF_VECTOR,
	    .error_code = PF_U | PF_P)
ACCESS_TEST(user_outsb_pml4e_without_us, .user = true, .op = &op_outsb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x10, .pte_level = 4, .pte_clear = US,
	    .vector = PF_VECTOR, .error_code = PF_U | PF_P)
ACCESS_TEST(user_fs_outsb_supervisor_page, .user = true, .op = &op_fs_outsb,
	    .flags = { US, RW }, .fs_base = T + PAGE_SIZE, .ptr = 0x10, .vector = PF_VECTOR,
	    .error_code = PF_U | PF_P)
ACCESS_TEST(user_outsb_user_read_only_page, .user = true, .op = &op_outsb,
	    .flags = { US, US }, .ptr = T + 0x10)
ACCESS_TEST(user_rep_outsb_user_page, .user = true, .op = &op_rep_outsb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x10, .count = 4)
ACCESS_TEST(user_fs_outsb_user_page, .user = true, .op = &op_fs_outsb, .flags = { US, RW },
	    .fs_base = T, .ptr = 0x10)

/*
 * REP from a user page into a kernel one, upwards and (DF=1) downwards:
 * the elements in the user page are done, then #PF at the first byte of the
 * other page, with RDI/RSI there and RCX counting what is left.
 */
ACCESS_TEST(user_rep_insb_into_supervisor_page, .user = true, .op = &op_rep_insb,
	    .flags = { US | RW, RW }, .ptr = T + PAGE_SIZE - 4, .count = 8,
	    .vector = PF_VECTOR, .error_code = PF_UWP, .done = 4)
ACCESS_TEST(user_rep_outsb_into_supervisor_page, .user = true, .op = &op_rep_outsb,
	    .flags = { US | RW, RW }, .ptr = T + PAGE_SIZE - 4, .count = 8,
	    .vector = PF_VECTOR, .error_code = PF_U | PF_P, .done = 4)
ACCESS_TEST(user_std_rep_insb_into_supervisor_page, .user = true, .op = &op_std_rep_insb,
	    .flags = { RW, US | RW }, .ptr = T + PAGE_SIZE + 3, .count = 8,
	    .vector = PF_VECTOR, .error_code = PF_UWP, .done = 4)
ACCESS_TEST(user_std_rep_outsb_into_supervisor_page, .user = true, .op = &op_std_rep_outsb,
	    .flags = { RW, US | RW }, .ptr = T + PAGE_SIZE + 3, .count = 8,
	    .vector = PF_VECTOR, .error_code = PF_U | PF_P, .done = 4)

/*
 * INS is checked again when its data is written: a page made read-only
 * while the port exit is in userspace takes nothing.
 */
ACCESS_TEST(user_insb_page_revoked_during_exit, .user = true, .op = &op_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x80, .revoke_at_io = true,
	    .vector = PF_VECTOR, .error_code = PF_UWP)
ACCESS_TEST(user_rep_insb_page_revoked_during_exit, .user = true, .op = &op_rep_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x80, .count = 16, .revoke_at_io = true,
	    .vector = PF_VECTOR, .error_code = PF_UWP)

/*
 * A page or a table that is not present: #PF without P, at either CPL; the
 * reserved bits of an entry that is not present do not matter.
 */
ACCESS_TEST(user_insb_not_present_page, .user = true, .op = &op_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x60, .pte_level = 1, .pte_clear = PTE_P,
	    .vector = PF_VECTOR, .error_code = PF_U | PF_W)
ACCESS_TEST(user_outsb_not_present_pdpte, .user = true, .op = &op_outsb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x60, .pte_level = 3, .pte_clear = PTE_P,
	    .vector = PF_VECTOR, .error_code = PF_U)
ACCESS_TEST(kernel_rep_outsb_not_present_page, .op = &op_rep_outsb, .flags = { RW, RW },
	    .ptr = T + 0x60, .count = 4, .pte_level = 1, .pte_clear = PTE_P,
	    .vector = PF_VECTOR, .error_code = 0)
ACCESS_TEST(kernel_insb_not_present_pte_reserved_bit, .op = &op_insb, .flags = { RW, RW },
	    .ptr = T + 0x60, .pte_level = 1, .pte_clear = PTE_P, .pte_set = 1ULL << 63,
	    .vector = PF_VECTOR, .error_code = PF_W)

/*
 * CPL 0 INS into a read-only page (or under a read-only PDE): #PF W|P with
 * CR0.WP, written without.  Reading it is no fault.
 */
ACCESS_TEST(kernel_insb_read_only_wp, .op = &op_insb, .flags = { 0, 0 }, .ptr = T + 0x300,
	    .vector = PF_VECTOR, .error_code = PF_W | PF_P)
ACCESS_TEST(kernel_rep_insb_read_only_wp, .op = &op_rep_insb, .flags = { 0, 0 },
	    .ptr = T + 0x300, .count = 12, .vector = PF_VECTOR, .error_code = PF_W | PF_P)
ACCESS_TEST(kernel_insb_pde_read_only_wp, .op = &op_insb, .flags = { RW, RW },
	    .ptr = T + 0x300, .pte_level = 2, .pte_clear = RW, .vector = PF_VECTOR,
	    .error_code = PF_W | PF_P)
ACCESS_TEST(kernel_insb_read_only_wp_off, .op = &op_insb, .flags = { 0, 0 },
	    .ptr = T + 0x300, .wp_off = true)
ACCESS_TEST(kernel_rep_insb_read_only_wp_off, .op = &op_rep_insb, .flags = { 0, 0 },
	    .ptr = T + 0x300, .count = 12, .wp_off = true)
ACCESS_TEST(kernel_outsb_read_only, .op = &op_outsb, .flags = { 0, 0 }, .ptr = T + 0x300)

/*
 * SMAP: at CPL 0 with CR4.SMAP and RFLAGS.AC clear, a user page can be
 * neither written (#PF W|P) nor read (#PF P); after STAC both work.  A
 * kernel page is no SMAP business.
 */
ACCESS_TEST(smap_insb_user_page, .op = &op_insb, .flags = { US | RW, US | RW },
	    .ptr = T + 0x500, .smap = true, .vector = PF_VECTOR, .error_code = PF_W | PF_P)
ACCESS_TEST(smap_rep_insb_user_page, .op = &op_rep_insb, .flags = { US | RW, US | RW },
	    .ptr = T + 0x500, .count = 6, .smap = true, .vector = PF_VECTOR,
	    .error_code = PF_W | PF_P)
ACCESS_TEST(smap_outsb_user_page, .op = &op_outsb, .flags = { US | RW, US | RW },
	    .ptr = T + 0x500, .smap = true, .vector = PF_VECTOR, .error_code = PF_P)
ACCESS_TEST(smap_stac_insb_user_page, .op = &op_stac_insb, .flags = { US | RW, US | RW },
	    .ptr = T + 0x500, .smap = true)
ACCESS_TEST(smap_stac_outsb_user_page, .op = &op_stac_outsb, .flags = { US | RW, US | RW },
	    .ptr = T + 0x500, .smap = true)
ACCESS_TEST(smap_insb_supervisor_page, .op = &op_insb, .flags = { RW, RW }, .ptr = T + 0x500,
	    .smap = true)

/*
 * A non-canonical RDI or RSI in 64-bit mode: #GP(0), at either CPL.  A REP
 * that runs off the last canonical page does the bytes below the hole.
 */
ACCESS_TEST(noncanonical_insb, .op = &op_insb, .flags = { RW, RW }, .ptr = NONCANON,
	    .vector = GP_VECTOR)
ACCESS_TEST(noncanonical_outsb, .op = &op_outsb, .flags = { RW, RW },
	    .ptr = 0x8000000000000000ULL, .vector = GP_VECTOR)
ACCESS_TEST(noncanonical_rep_insb, .op = &op_rep_insb, .flags = { RW, RW },
	    .ptr = 0xfffe000000000100ULL, .count = 4, .vector = GP_VECTOR)
ACCESS_TEST(noncanonical_user_rep_insb, .user = true, .op = &op_rep_insb,
	    .flags = { RW, RW }, .ptr = NONCANON + 0x1000, .count = 4, .vector = GP_VECTOR)
ACCESS_TEST(noncanonical_user_outsb, .user = true, .op = &op_outsb, .flags = { RW, RW },
	    .ptr = 0xffff7ffffffff000ULL, .vector = GP_VECTOR)
/*
 * With FS, FS.base + RSI is what must be canonical.  Not tested: an SS
 * override, which 64-bit mode ignores (SDM vol. 1 3.3.7.1), so that the
 * processor raises #GP(0) for a non-canonical RSI as without it (as minikvm
 * does); the reference KVM honours the prefix and raises #SS(0).
 */
ACCESS_TEST(noncanonical_fs_outsb, .op = &op_fs_outsb, .flags = { RW, RW },
	    .fs_base = NONCANON - 0x1000, .ptr = 0x1000, .vector = GP_VECTOR)
ACCESS_TEST(noncanonical_rep_insb_off_the_edge, .op = &op_rep_insb, .base = EDGE_GVA,
	    .flags = { RW, RW }, .ptr = NONCANON - 4, .count = 8, .vector = GP_VECTOR,
	    .done = 4)
ACCESS_TEST(noncanonical_rep_outsb_off_the_edge, .op = &op_rep_outsb, .base = EDGE_GVA,
	    .flags = { RW, RW }, .ptr = NONCANON - 3, .count = 8, .vector = GP_VECTOR,
	    .done = 3)

/*
 * A reserved bit in an entry of the walk: #PF with RSVD and P, and W and U
 * as the access was, before any rights check.  Bit 63 is reserved at every
 * level while EFER.NXE is clear (as the library leaves it), bit 7 (PS) in a
 * PML4 entry, and the address bits from MAXPHYADDR to 51.
 */
#define BIT63		(1ULL << 63)
ACCESS_TEST(rsvd_outsb_pte_bit63, .op = &op_outsb, .flags = { RW, RW }, .ptr = T + 0x20,
	    .pte_level = 1, .pte_set = BIT63, .vector = PF_VECTOR,
	    .error_code = PF_RSVD | PF_P)
ACCESS_TEST(rsvd_insb_pte_bit63, .op = &op_insb, .flags = { RW, RW }, .ptr = T + 0x20,
	    .pte_level = 1, .pte_set = BIT63, .vector = PF_VECTOR,
	    .error_code = PF_RSVD | PF_W | PF_P)
ACCESS_TEST(rsvd_user_insb_pte_bit63, .user = true, .op = &op_insb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x20, .pte_level = 1, .pte_set = BIT63,
	    .vector = PF_VECTOR, .error_code = PF_RSVD | PF_UWP)
ACCESS_TEST(rsvd_user_rep_outsb_pte_bit63, .user = true, .op = &op_rep_outsb,
	    .flags = { US | RW, US | RW }, .ptr = T + 0x20, .count = 4, .pte_level = 1,
	    .pte_set = BIT63, .vector = PF_VECTOR, .error_code = PF_RSVD | PF_U | PF_P)
ACCESS_TEST(rsvd_rep_insb_pml4e_ps, .op = &op_rep_insb, .flags = { RW, RW },
	    .ptr = T + 0x20, .count = 4, .pte_level = 4, .pte_set = PTE_PS,
	    .vector = PF_VECTOR, .error_code = PF_RSVD | PF_W | PF_P)
ACCESS_TEST(rsvd_user_outsb_pde_bit63_supervisor_page, .user = true, .op = &op_outsb,
	    .flags = { RW, RW }, .ptr = T + 0x20, .pte_level = 2, .pte_set = BIT63,
	    .vector = PF_VECTOR, .error_code = PF_RSVD | PF_U | PF_P)
ACCESS_TEST(rsvd_outsb_pde_bit51, .op = &op_outsb, .flags = { RW, RW }, .ptr = T + 0x20,
	    .pte_level = 2, .pte_set = 1ULL << 51, .vector = PF_VECTOR,
	    .error_code = PF_RSVD | PF_P)

/*
 * 32-bit protected mode, flat and without paging: the segment checks.  The
 * blob is the string instruction and HLT; exceptions go through 32-bit
 * interrupt gates to stubs that push their vector and report on
 * REPORT_PORT, leaving the frame (vector, error code, EIP, CS, EFLAGS) on
 * the stack for the host to read.
 */
#define CODE32_GPA	GUEST_CODE16_GPA
#define IDT32_GPA	0x2000ULL
#define STUBS32_GPA	0x3000ULL
#define BUF32		0x8000ULL
#define REPORT_PORT	0xe5

enum { SEG_ES, SEG_DS, SEG_SS };

struct seg_case {
	const char *what;
	bool out, rep;
	uint8_t size;		/* 1 or 2 */
	uint8_t prefix;		/* a segment override, or 0 */
	int seg;		/* the segment register the case changes */
	uint8_t type;		/* its descriptor type */
	uint32_t limit;		/* in bytes */
	bool g, db, unusable;
	uint32_t ptr, count;
	int vector;		/* 0: none */
	uint32_t done;		/* elements done before the exception */
	/*
	 * A state that no instruction can load and that VMX's entry checks
	 * refuse (SDM vol. 3 26.3.1.2), where SVM takes it as it is: on Intel,
	 * KVM reports KVM_EXIT_FAIL_ENTRY with "invalid guest state" (33).
	 */
	bool vmx_refuses;
};

static void build_idt32(struct kvm_vm *vm)
{
	uint32_t *idt = gpa2hva(vm, IDT32_GPA);
	uint8_t *stubs = gpa2hva(vm, STUBS32_GPA);

	for (int v = 0; v < 32; v++) {
		uint32_t stub = STUBS32_GPA + 8 * v;
		uint8_t *p = stubs + 8 * v;

		/* push $v; out %al, $REPORT_PORT; hlt */
		p[0] = 0x6a;
		p[1] = v;
		p[2] = 0xe6;
		p[3] = REPORT_PORT;
		p[4] = 0xf4;
		/* A 32-bit interrupt gate, DPL 0 (SDM vol. 3 6.11). */
		idt[2 * v] = (stub & 0xffff) | (SEL_CODE32 << 16);
		idt[2 * v + 1] = (stub & 0xffff0000) | 0x8e00;
	}
}

static void run_seg_case(const struct seg_case *c)
{
	struct kvm_vm *vm = vm_create(VM_MODE_PROT32);
	uint8_t code[8], *buf = gpa2hva(vm, BUF32), *mem = gpa2hva(vm, 0);
	uint32_t n = c->rep ? c->count : 1, in_elems = 0, out_elems = 0;
	uint32_t done = c->vector ? c->done : n, bytes = done * c->size;
	struct kvm_run *run;
	struct kvm_vcpu *vcpu;
	struct kvm_sregs sregs;
	struct kvm_regs regs, got, want;
	struct kvm_segment *s;
	size_t len = 0;

	if (c->prefix)
		code[len++] = c->prefix;
	if (c->size == 2)
		code[len++] = 0x66;
	if (c->rep)
		code[len++] = 0xf3;
	code[len++] = (c->out ? 0x6e : 0x6c) | (c->size > 1);
	code[len++] = 0xf4;
	vm_load_blob(vm, CODE32_GPA, code, code + len);
	build_idt32(vm);
	for (uint32_t i = 0; i < 0x2000; i++)
		buf[i] = c->out ? page_byte(0, i) : CANARY;

	vcpu = vm_vcpu_add_at(vm, 0, CODE32_GPA);
	run = vcpu->run;
	vcpu_sregs_get(vcpu, &sregs);
	sregs.idt.base = IDT32_GPA;
	sregs.idt.limit = 32 * 8 - 1;
	s = c->seg == SEG_ES ? &sregs.es : c->seg == SEG_DS ? &sregs.ds : &sregs.ss;
	s->type = c->type;
	s->limit = c->limit;
	s->g = c->g;
	s->db = c->db;
	if (c->unusable) {
		s->unusable = 1;
		s->present = 0;
		s->selector = 0;
	}
	vcpu_sregs_set(vcpu, &sregs);
	vcpu_regs_get(vcpu, &regs);
	regs.rdx = PORT;
	regs.rcx = c->count;
	regs.rdi = c->ptr;
	regs.rsi = c->ptr;
	regs.rax = 0x11111111;
	vcpu_regs_set(vcpu, &regs);

	if (c->vmx_refuses && host_cpu_is_intel()) {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_FAIL_ENTRY);
		TEST_ASSERT(run->fail_entry.hardware_entry_failure_reason == 0x80000021,
			    "%s: entry failure reason %#llx, expected 0x80000021", c->what,
			    run->fail_entry.hardware_entry_failure_reason);
		vm_free(vm);
		return;
	}
	for (;;) {
		uint8_t *data;

		vcpu_run(vcpu);
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != PORT)
			break;
		data = (uint8_t *)run + run->io.data_offset;
		TEST_ASSERT(run->io.size == c->size && run->io.direction ==
			    (c->out ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN),
			    "%s: port exit of size %u direction %u", c->what, run->io.size,
			    run->io.direction);
		if (c->out) {
			for (uint32_t k = 0; k < run->io.count * c->size; k++)
				TEST_ASSERT(data[k] == page_byte(0, c->ptr - BUF32 +
								 out_elems * c->size + k),
					    "%s: byte %u at the port is %#x", c->what, k, data[k]);
			out_elems += run->io.count;
			TEST_ASSERT(out_elems <= done, "%s: %u elements reached the port, "
				    "expected %u", c->what, out_elems, done);
		} else {
			for (uint32_t k = 0; k < run->io.count * c->size; k++)
				data[k] = port_byte(in_elems * c->size + k);
			in_elems += run->io.count;
			TEST_ASSERT(in_elems <= n, "%s: %u elements read from the port",
				    c->what, in_elems);
		}
	}
	vcpu_regs_get(vcpu, &got);
	if (c->vector) {
		uint32_t *frame;

		if (run->exit_reason != KVM_EXIT_IO || run->io.port != REPORT_PORT) {
			vcpu_dump(vcpu);
			TEST_ASSERT(false, "%s: exit %u (%s), expected the exception's report",
				    c->what, run->exit_reason, exit_reason_str(run->exit_reason));
		}
		frame = (uint32_t *)(mem + (uint32_t)got.rsp);
		TEST_ASSERT(frame[0] == (uint32_t)c->vector && frame[1] == 0,
			    "%s: vector %u error code %#x, expected %d error code 0", c->what,
			    frame[0], frame[1], c->vector);
		TEST_ASSERT(frame[2] == CODE32_GPA && frame[3] == SEL_CODE32,
			    "%s: the exception came from %#x:%#x, expected the string "
			    "instruction at %#x:%#llx", c->what, frame[3], frame[2], SEL_CODE32,
			    CODE32_GPA);
		want = regs;
		*(c->out ? &want.rsi : &want.rdi) += bytes;
		want.rcx -= c->rep ? done : 0;
		TEST_ASSERT(got.rdi == want.rdi && got.rsi == want.rsi && got.rcx == want.rcx,
			    "%s: EDI %#llx ESI %#llx ECX %#llx at the fault, expected %#llx %#llx "
			    "%#llx", c->what, got.rdi, got.rsi, got.rcx, want.rdi, want.rsi,
			    want.rcx);
		TEST_ASSERT(c->out ? out_elems == done : in_elems >= done, "%s: %u elements "
			    "through the port for %u done", c->what, in_elems + out_elems, done);
		if (!c->out)
			test_log("%s: %s(0) after %u elements read from the port", c->what,
				 c->vector == GP_VECTOR ? "#GP" : "#SS", in_elems);
	} else {
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
		TEST_ASSERT(in_elems + out_elems == n, "%s: %u elements through the port, "
			    "expected %u", c->what, in_elems + out_elems, n);
		TEST_ASSERT_EQ(got.rip, CODE32_GPA + len);
		TEST_ASSERT_EQ(c->out ? got.rsi : got.rdi, c->ptr + bytes);
		TEST_ASSERT_EQ(got.rcx, c->rep ? 0 : c->count);
	}
	for (uint32_t i = 0; i < 0x2000; i++) {
		uint32_t a = BUF32 + i;
		bool written = !c->out && a >= c->ptr && a < c->ptr + bytes;
		uint8_t want = written ? port_byte(a - c->ptr) : c->out ? page_byte(0, i) : CANARY;

		TEST_ASSERT(buf[i] == want, "%s: byte at %#x is %#x, expected %#x", c->what, a,
			    buf[i], want);
	}
	vm_free(vm);
}

#define SEG_TEST(name, ...)							\
	TEST(name)								\
	{									\
		static const struct seg_case c = { #name, __VA_ARGS__ };	\
										\
		run_seg_case(&c);						\
	}

/* ES's limit: an element past it, or straddling it, is #GP(0). */
SEG_TEST(prot32_rep_insb_past_es_limit, .size = 1, .rep = true, .seg = SEG_ES, .type = 3,
	 .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0x1000, .count = 4,
	 .vector = GP_VECTOR)
SEG_TEST(prot32_insw_across_es_limit, .size = 2, .seg = SEG_ES, .type = 3,
	 .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0xfff, .count = 1,
	 .vector = GP_VECTOR)
SEG_TEST(prot32_rep_insb_below_es_limit, .size = 1, .rep = true, .seg = SEG_ES, .type = 3,
	 .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0xff0, .count = 16)

/* Expand-down: the offsets at and below the limit are outside. */
SEG_TEST(prot32_rep_insb_below_expand_down_es, .size = 1, .rep = true, .seg = SEG_ES,
	 .type = 7, .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0x800, .count = 4,
	 .vector = GP_VECTOR)
SEG_TEST(prot32_insb_at_expand_down_es_limit, .size = 1, .seg = SEG_ES, .type = 7,
	 .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0xfff, .count = 1,
	 .vector = GP_VECTOR)
SEG_TEST(prot32_rep_insb_above_expand_down_es, .size = 1, .rep = true, .seg = SEG_ES,
	 .type = 7, .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0x1000, .count = 8)

/* Segments INS cannot write: read-only data, code, null. */
SEG_TEST(prot32_insb_read_only_es, .size = 1, .seg = SEG_ES, .type = 1, .limit = 0xffffffff,
	 .g = true, .db = true, .ptr = BUF32 + 0x10, .count = 1, .vector = GP_VECTOR)
SEG_TEST(prot32_rep_insb_code_es, .size = 1, .rep = true, .seg = SEG_ES, .type = 11,
	 .limit = 0xffffffff, .g = true, .db = true, .ptr = BUF32 + 0x10, .count = 2,
	 .vector = GP_VECTOR)
SEG_TEST(prot32_insb_null_es, .size = 1, .seg = SEG_ES, .type = 3, .limit = 0xffffffff,
	 .g = true, .db = true, .unusable = true, .ptr = BUF32 + 0x10, .count = 1,
	 .vector = GP_VECTOR)

/*
 * OUTS: DS's limit and type (execute-only code, null; read-only is fine).
 * An execute-only DS is what no MOV can load: VMX refuses to enter with it.
 */
SEG_TEST(prot32_outsb_past_ds_limit, .out = true, .size = 1, .seg = SEG_DS, .type = 3,
	 .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0x1000, .count = 1,
	 .vector = GP_VECTOR)
SEG_TEST(prot32_rep_outsw_across_ds_limit, .out = true, .size = 2, .rep = true,
	 .seg = SEG_DS, .type = 3, .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0xfff,
	 .count = 2, .vector = GP_VECTOR)
SEG_TEST(prot32_rep_outsb_up_to_ds_limit, .out = true, .size = 1, .rep = true,
	 .seg = SEG_DS, .type = 3, .limit = BUF32 + 0xfff, .db = true, .ptr = BUF32 + 0xffd,
	 .count = 6, .vector = GP_VECTOR, .done = 3)
SEG_TEST(prot32_outsb_execute_only_ds, .out = true, .size = 1, .seg = SEG_DS, .type = 9,
	 .limit = 0xffffffff, .g = true, .db = true, .ptr = BUF32 + 0x10, .count = 1,
	 .vector = GP_VECTOR, .vmx_refuses = true)
SEG_TEST(prot32_outsb_null_ds, .out = true, .size = 1, .seg = SEG_DS, .type = 3,
	 .limit = 0xffffffff, .g = true, .db = true, .unusable = true, .ptr = BUF32 + 0x10,
	 .count = 1, .vector = GP_VECTOR)
SEG_TEST(prot32_outsb_read_only_ds, .out = true, .size = 1, .seg = SEG_DS, .type = 1,
	 .limit = 0xffffffff, .g = true, .db = true, .ptr = BUF32 + 0x10, .count = 1)

/* Through SS, past its limit: #SS(0).  The stack itself stays below it. */
SEG_TEST(prot32_ss_outsb_past_ss_limit, .out = true, .size = 1, .prefix = 0x36,
	 .seg = SEG_SS, .type = 3, .limit = 0xffffff, .g = true, .db = true,
	 .ptr = 0x1000000, .count = 1, .vector = SS_VECTOR)
