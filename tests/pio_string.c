// SPDX-License-Identifier: GPL-2.0
/*
 * String port I/O that reaches userspace: REP INS and REP OUTS in every
 * address size of real, 32-bit protected and 64-bit mode, with DF clear and
 * set, elements of 1, 2 and 4 bytes, a count of 0, elements that straddle a
 * page boundary, and segment overrides.  Each must end in KVM_EXIT_IO, never
 * in an emulation failure.
 *
 * Each case runs a blob of three instructions, CLD or STD, the REP INS/OUTS
 * with the prefixes it needs, and HLT, with every register set by the host.
 * The host answers port exits until the HLT, accepting any number of
 * elements per exit: the reference KVM reads ahead for REP INS (one exit for
 * up to the rest of the page, at most 1 KiB) and exits once per element for
 * REP OUTS (Documentation/testing.rst); another hypervisor may batch
 * differently.  A test line gives the number of exits of each case.
 * It then checks the data, in order, the memory around it, and every register.
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "kvm_util.h"

#define CODE_GPA	GUEST_CODE16_GPA
#define PORT		0x6b0

/*
 * Long mode: two pages at a GVA above 4 GiB, mapped to guest-physical pages
 * in the opposite order, so that an access crossing from one to the other
 * must be split by guest page.
 */
#define HI_GVA		0x7f0000000000ULL
#define HI_GPA0		0x9000ULL
#define HI_GPA1		0x7000ULL

/* In the other modes, and in long mode with a 32-bit address size. */
#define BUF		0x4000ULL

/* INS stores what the host provides; the bytes around must keep this value. */
#define CANARY		0xff

enum { SEG_NONE, SEG_ES = 0x26, SEG_FS = 0x64, SEG_GS = 0x65 };

struct str_case {
	enum vm_mode mode;
	bool out;		/* OUTS (from DS:rSI) or INS (to ES:rDI) */
	uint8_t size;		/* element size: 1, 2 or 4 */
	uint8_t asize;		/* address size: 16, 32 or 64 */
	bool df;
	uint8_t seg;		/* segment-override prefix, or SEG_NONE */
	uint64_t ptr;		/* rDI for INS, rSI for OUTS */
	uint64_t rcx;
	/* Segment bases loaded with KVM_SET_SREGS (selector = base >> 4 in real mode). */
	uint64_t es_base, ds_base, fs_base, gs_base;
	/*
	 * rCX, rSI and rDI after a 32-bit-address REP with ECX = 0 in 64-bit
	 * mode depend on the vendor (KVM's emulator clears RCX then, for a
	 * guest whose CPUID says Intel only): check that nothing was
	 * transferred, not them.
	 */
	bool count_regs_unchecked;
};

static const char *const mode_names[] = {
	[VM_MODE_REAL] = "real", [VM_MODE_PROT32] = "prot32", [VM_MODE_LONG64] = "long64",
};

static void describe(const struct str_case *c, char *buf, size_t len)
{
	static const char sfx[] = { 0, 'b', 'w', 0, 'd' };

	snprintf(buf, len, "%s a%u rep %s%c df=%d%s rcx=%#" PRIx64 " ptr=%#" PRIx64,
		 mode_names[c->mode], c->asize, c->out ? "outs" : "ins", sfx[c->size], c->df,
		 c->seg == SEG_ES ? " es:" : c->seg == SEG_FS ? " fs:" : c->seg == SEG_GS ?
		 " gs:" : "", c->rcx, c->ptr);
}

static uint64_t addr_mask(const struct str_case *c)
{
	return c->asize == 64 ? ~0ULL : (1ULL << c->asize) - 1;
}

/*
 * The base of the segment the string operand is in.  INS always stores to
 * ES, whatever the prefixes; OUTS reads DS unless overridden (SDM vol. 2,
 * INS and OUTS).  In 64-bit mode only FS and GS have a base (SDM vol. 1
 * 3.4.2.1).
 */
static uint64_t seg_base(const struct str_case *c)
{
	if (c->out && c->seg == SEG_FS)
		return c->fs_base;
	if (c->out && c->seg == SEG_GS)
		return c->gs_base;
	if (c->mode == VM_MODE_LONG64)
		return 0;
	if (!c->out || c->seg == SEG_ES)
		return c->es_base;
	return c->ds_base;
}

/*
 * The linear address of element @i (negative: before the first).  The offset
 * is computed in the address size, so a 16-bit rDI wraps within the segment.
 */
static uint64_t elem_la(const struct str_case *c, int64_t i)
{
	int64_t step = c->df ? -(int64_t)c->size : c->size;
	uint64_t la = seg_base(c) + ((c->ptr + i * step) & addr_mask(c));

	return c->mode == VM_MODE_LONG64 ? la : la & 0xffffffffULL;
}

static uint8_t *guest_byte(struct kvm_vm *vm, uint64_t la)
{
	return gva2hva(vm, la);
}

/* Stream byte @j, as the port sees it; never CANARY. */
static uint8_t pattern(uint64_t j)
{
	return 1 + j % 251;
}

/* CLD/STD, prefixes, REP INS/OUTS, HLT. */
static size_t build_code(uint8_t *p, const struct str_case *c)
{
	uint8_t def_asize = c->mode == VM_MODE_REAL ? 16 : c->mode == VM_MODE_PROT32 ? 32 : 64;
	uint8_t def_osize = c->mode == VM_MODE_REAL ? 16 : 32;
	size_t n = 0;

	p[n++] = c->df ? 0xfd : 0xfc;
	if (c->seg)
		p[n++] = c->seg;
	/* 66 selects the other of 16 and 32 bits for INSW/INSD, OUTSW/OUTSD. */
	if (c->size > 1 && c->size * 8 != def_osize)
		p[n++] = 0x66;
	/* 67: 16 <-> 32 outside long mode, 64 -> 32 in it (SDM vol. 1 3.6). */
	if (c->asize != def_asize)
		p[n++] = 0x67;
	p[n++] = 0xf3;
	p[n++] = (c->out ? 0x6e : 0x6c) | (c->size > 1);
	p[n++] = 0xf4;
	return n;
}

static void set_seg_base(struct kvm_vm *vm, struct kvm_segment *s, uint64_t base)
{
	s->base = base;
	if (vm->mode == VM_MODE_REAL)
		s->selector = base >> 4;
}

/*
 * Run to the HLT, answering the port exits of the string instruction:
 * OUTS data is appended to @stream, INS data taken from it.
 *
 * Return: the number of exits.
 */
static unsigned int run_to_hlt(struct kvm_vcpu *vcpu, const struct str_case *c,
			       uint8_t *stream, uint64_t n, const char *what)
{
	struct kvm_run *run = vcpu->run;
	unsigned int exits = 0;
	uint64_t done = 0;

	for (;;) {
		uint64_t bytes;
		void *data;

		vcpu_run(vcpu);
		if (run->exit_reason != KVM_EXIT_IO || run->io.port != PORT)
			break;
		exits++;
		TEST_ASSERT(run->io.direction == (c->out ? KVM_EXIT_IO_OUT : KVM_EXIT_IO_IN) &&
			    run->io.size == c->size,
			    "%s: exit %u: direction %u size %u", what, exits, run->io.direction,
			    run->io.size);
		TEST_ASSERT(run->io.count >= 1 && done + run->io.count <= n,
			    "%s: exit %u: count %u after %" PRIu64 " of %" PRIu64 " elements",
			    what, exits, run->io.count, done, n);
		bytes = (uint64_t)run->io.count * c->size;
		TEST_ASSERT(run->io.data_offset >= sizeof(*run) &&
			    run->io.data_offset + bytes <= vcpu->vm->run_size,
			    "%s: exit %u: data_offset %#llx", what, exits,
			    (unsigned long long)run->io.data_offset);
		data = (char *)run + run->io.data_offset;
		if (c->out)
			memcpy(stream + done * c->size, data, bytes);
		else
			memcpy(data, stream + done * c->size, bytes);
		done += run->io.count;
	}
	if (run->exit_reason != KVM_EXIT_HLT)
		test_log("%s: %" PRIu64 " of %" PRIu64 " elements done", what, done, n);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	TEST_ASSERT(done == n, "%s: %" PRIu64 " elements through port exits, expected %" PRIu64,
		    what, done, n);
	return exits;
}

/* Log every register that differs, so that one failure shows them all. */
#define CHECK_REG(what, got, want, reg, bad)					\
	do {									\
		if ((got).reg != (want).reg) {					\
			test_log("%s: " #reg " %#llx, expected %#llx", what,	\
				 (unsigned long long)(got).reg,			\
				 (unsigned long long)(want).reg);		\
			(bad)++;						\
		}								\
	} while (0)

/*
 * Final rSI/rDI and rCX (SDM vol. 2, REP and INS/OUTS): the count and the
 * pointer are the registers of the address size.  A 16-bit address size
 * leaves the upper bits of ECX/EDI alone (the offset wraps within 16 bits);
 * in 64-bit mode a 32-bit one writes ECX/EDI, which zero-extends into
 * RCX/RDI (SDM vol. 1 3.4.1.1).  A count of 0 transfers nothing and changes
 * nothing.
 */
static void expected_count_regs(const struct str_case *c, __u64 *ptr, __u64 *rcx)
{
	uint64_t n = c->rcx & addr_mask(c);
	int64_t step = c->df ? -(int64_t)c->size : c->size;
	uint64_t end = c->ptr + n * step;

	if (!n) {
		*ptr = c->ptr;
		*rcx = c->rcx;
	} else if (c->asize == 16) {
		*ptr = (c->ptr & ~0xffffULL) | (end & 0xffff);
		*rcx = c->rcx & ~0xffffULL;
	} else if (c->asize == 32) {
		*ptr = end & 0xffffffffULL;
		*rcx = 0;
	} else {
		*ptr = end;
		*rcx = 0;
	}
}

/* One case in a fresh VM; returns the number of port exits it took. */
static unsigned int run_case(const struct str_case *c)
{
	struct kvm_vm *vm = vm_create(c->mode);
	uint64_t n = c->rcx & addr_mask(c);
	uint64_t gprs = c->mode == VM_MODE_LONG64 ? ~0ULL : 0xffffffffULL;
	struct kvm_regs regs, want, got;
	struct kvm_vcpu *vcpu;
	struct kvm_sregs sregs;
	unsigned int exits;
	uint8_t code[16], *stream;
	int bad = 0;
	char what[160];
	size_t len;

	describe(c, what, sizeof(what));
	len = build_code(code, c);
	vm_load_blob(vm, CODE_GPA, code, code + len);
	vcpu = vm_vcpu_add_at(vm, 0, CODE_GPA);
	if (c->mode == VM_MODE_LONG64) {
		virt_map(vm, HI_GVA, HI_GPA0, PAGE_SIZE);
		virt_map(vm, HI_GVA + PAGE_SIZE, HI_GPA1, PAGE_SIZE);
	}

	vcpu_sregs_get(vcpu, &sregs);
	set_seg_base(vm, &sregs.es, c->es_base);
	set_seg_base(vm, &sregs.ds, c->ds_base);
	set_seg_base(vm, &sregs.fs, c->fs_base);
	set_seg_base(vm, &sregs.gs, c->gs_base);
	vcpu_sregs_set(vcpu, &sregs);

	/*
	 * Every register distinct, so that one written by mistake shows.  Outside
	 * long mode the upper halves are not the guest's to keep: zero them.
	 */
	vcpu_regs_get(vcpu, &regs);
	regs.rax = 0x1111111111111111ULL & gprs;
	regs.rbx = 0x2222222222222222ULL & gprs;
	regs.rdx = PORT | (0x4444444444440000ULL & gprs);
	regs.rsi = 0x5555555555555555ULL & gprs;
	regs.rdi = 0x6666666666666666ULL & gprs;
	regs.rbp = 0x7777777777777777ULL & gprs;
	regs.r8 = 0x8888888888888888ULL & gprs;
	regs.r9 = 0x9999999999999999ULL & gprs;
	regs.r10 = 0xaaaaaaaaaaaaaaaaULL & gprs;
	regs.r11 = 0xbbbbbbbbbbbbbbbbULL & gprs;
	regs.r12 = 0xccccccccccccccccULL & gprs;
	regs.r13 = 0xddddddddddddddddULL & gprs;
	regs.r14 = 0xeeeeeeeeeeeeeeeeULL & gprs;
	regs.r15 = 0x0f0f0f0f0f0f0f0fULL & gprs;
	regs.rcx = c->rcx;
	if (c->out)
		regs.rsi = c->ptr;
	else
		regs.rdi = c->ptr;
	/* DF starts the other way, so that the blob's CLD/STD matters. */
	regs.rflags = 0x2 | (c->df ? 0 : 0x400);
	vcpu_regs_set(vcpu, &regs);

	/*
	 * OUTS: the elements in memory, in the order the port must see them.
	 * INS: the elements and one element's worth on either side hold CANARY;
	 * the host's bytes must land in order and the neighbours stay.
	 */
	stream = calloc(n ? n : 1, c->size);
	TEST_ASSERT(stream, "out of memory");
	for (int64_t i = -1; i <= (int64_t)n; i++) {
		uint64_t la = elem_la(c, i);
		bool elem = i >= 0 && i < (int64_t)n;

		/* A neighbour that wraps out of guest memory is not checked. */
		if (!elem && c->mode != VM_MODE_LONG64 && la + c->size > vm->mem_size)
			continue;
		for (unsigned int k = 0; k < c->size; k++)
			*guest_byte(vm, la + k) = elem && c->out ? pattern(i * c->size + k) :
							  CANARY;
	}
	if (!c->out)
		for (uint64_t j = 0; j < n * c->size; j++)
			stream[j] = pattern(j);

	exits = run_to_hlt(vcpu, c, stream, n, what);

	if (c->out) {
		for (uint64_t j = 0; j < n * c->size; j++)
			TEST_ASSERT(stream[j] == pattern(j),
				    "%s: byte %" PRIu64 " at the port was %#x, expected %#x", what,
				    j, stream[j], pattern(j));
	}
	for (int64_t i = -1; i <= (int64_t)n; i++) {
		uint64_t la = elem_la(c, i);
		bool elem = i >= 0 && i < (int64_t)n;

		if (!elem && c->mode != VM_MODE_LONG64 && la + c->size > vm->mem_size)
			continue;
		for (unsigned int k = 0; k < c->size; k++) {
			uint8_t want_b = elem ? pattern(i * c->size + k) : CANARY;
			uint8_t got_b = *guest_byte(vm, la + k);

			TEST_ASSERT(got_b == want_b, "%s: element %" PRId64 " byte %u at %#" PRIx64
				    " is %#x, expected %#x", what, i, k, la + k, got_b, want_b);
		}
	}

	want = regs;
	want.rflags = 0x2 | (c->df ? 0x400 : 0);
	want.rip = CODE_GPA + len;
	expected_count_regs(c, c->out ? &want.rsi : &want.rdi, &want.rcx);
	vcpu_regs_get(vcpu, &got);
	if (c->count_regs_unchecked) {
		got.rcx = want.rcx;
		got.rsi = want.rsi;
		got.rdi = want.rdi;
	}
	CHECK_REG(what, got, want, rax, bad);
	CHECK_REG(what, got, want, rbx, bad);
	CHECK_REG(what, got, want, rcx, bad);
	CHECK_REG(what, got, want, rdx, bad);
	CHECK_REG(what, got, want, rsi, bad);
	CHECK_REG(what, got, want, rdi, bad);
	CHECK_REG(what, got, want, rsp, bad);
	CHECK_REG(what, got, want, rbp, bad);
	CHECK_REG(what, got, want, r8, bad);
	CHECK_REG(what, got, want, r9, bad);
	CHECK_REG(what, got, want, r10, bad);
	CHECK_REG(what, got, want, r11, bad);
	CHECK_REG(what, got, want, r12, bad);
	CHECK_REG(what, got, want, r13, bad);
	CHECK_REG(what, got, want, r14, bad);
	CHECK_REG(what, got, want, r15, bad);
	CHECK_REG(what, got, want, rip, bad);
	CHECK_REG(what, got, want, rflags, bad);
	TEST_ASSERT(!bad, "%s: %d registers differ", what, bad);

	free(stream);
	vm_free(vm);
	return exits;
}

/*
 * Each case in turn, as INS and as OUTS when @both_directions (else as its
 * .out says), and one line with how many port exits each took.
 */
static void run_cases(const struct str_case *cases, size_t nr, bool both_directions)
{
	char log[512];
	size_t pos = 0;

	pos += snprintf(log, sizeof(log), "port exits per case:");
	for (size_t i = 0; i < nr; i++) {
		for (int dir = 0; dir < (both_directions ? 2 : 1); dir++) {
			struct str_case c = cases[i];

			if (both_directions)
				c.out = dir;
			if (pos < sizeof(log))
				pos += snprintf(log + pos, sizeof(log) - pos, " %u", run_case(&c));
		}
	}
	test_log("%s", log);
}

#define RUN_BOTH(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]), true)
#define RUN_AS_LISTED(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]), false)

/* 64-bit mode, 64-bit addresses: RDI/RSI and RCX in full, above 4 GiB. */
TEST(long64_a64)
{
	static const struct str_case cases[] = {
		{ VM_MODE_LONG64, .size = 1, .asize = 64, .ptr = HI_GVA + 0x100, .rcx = 16 },
		{ VM_MODE_LONG64, .size = 2, .asize = 64, .ptr = HI_GVA + 0x201, .rcx = 9 },
		{ VM_MODE_LONG64, .size = 4, .asize = 64, .ptr = HI_GVA + 0x300, .rcx = 5 },
		{ VM_MODE_LONG64, .size = 1, .asize = 64, .ptr = HI_GVA + 0x400, .rcx = 1 },
	};

	RUN_BOTH(cases);
}

/* DF=1: the pointer moves down by the element size, element 0 at the start. */
TEST(long64_a64_df1)
{
	static const struct str_case cases[] = {
		{ VM_MODE_LONG64, .size = 1, .asize = 64, .df = true, .ptr = HI_GVA + 0x800,
		  .rcx = 16 },
		{ VM_MODE_LONG64, .size = 2, .asize = 64, .df = true, .ptr = HI_GVA + 0x901,
		  .rcx = 9 },
		{ VM_MODE_LONG64, .size = 4, .asize = 64, .df = true, .ptr = HI_GVA + 0xa00,
		  .rcx = 5 },
	};

	RUN_BOTH(cases);
}

/*
 * 0x67 in 64-bit mode: the address is EDI/ESI and the count ECX (SDM vol. 2,
 * REP: "the count register is ECX if the address size is 32 bits"), whatever
 * the upper halves hold; both registers end zero-extended.
 */
TEST(long64_a32)
{
	static const struct str_case cases[] = {
		{ VM_MODE_LONG64, .size = 1, .asize = 32, .ptr = 0xffffffff00000000ULL | BUF,
		  .rcx = 0xdeadbeef00000000ULL | 7 },
		{ VM_MODE_LONG64, .size = 2, .asize = 32, .ptr = 0x1234567800000000ULL | BUF,
		  .rcx = 0x0000000100000000ULL | 6 },
		{ VM_MODE_LONG64, .size = 4, .asize = 32, .ptr = 0x8000000000000000ULL | BUF,
		  .rcx = 0xffffffff00000000ULL | 5 },
		{ VM_MODE_LONG64, .size = 1, .asize = 32, .df = true,
		  .ptr = 0xffffffff00000000ULL | (BUF + 0x800), .rcx = 0xdeadbeef00000000ULL | 7 },
		{ VM_MODE_LONG64, .size = 2, .asize = 32, .df = true,
		  .ptr = 0x0000000100000000ULL | (BUF + 0x901), .rcx = 0x1234567800000000ULL | 6 },
		{ VM_MODE_LONG64, .size = 4, .asize = 32, .df = true,
		  .ptr = 0x7fffffff00000000ULL | (BUF + 0xa00), .rcx = 0x8000000000000000ULL | 5 },
	};

	RUN_BOTH(cases);
}

/*
 * A count of 0 transfers nothing (SDM vol. 2, REP): no port exit, and the
 * guest goes on to the HLT.  With 0x67 the count is ECX, so RCX = 2^32 is a
 * count of 0 too; what that leaves in the upper halves is the vendor's.
 */
TEST(long64_count_zero)
{
	static const struct str_case cases[] = {
		{ VM_MODE_LONG64, .size = 1, .asize = 64, .ptr = HI_GVA + 0x100 },
		{ VM_MODE_LONG64, .size = 4, .asize = 64, .df = true, .ptr = HI_GVA + 0x100 },
		{ VM_MODE_LONG64, .size = 2, .asize = 32, .ptr = BUF },
		{ VM_MODE_LONG64, .size = 1, .asize = 32, .ptr = 0xffffffff00000000ULL | BUF,
		  .rcx = 0x100000000ULL, .count_regs_unchecked = true },
	};

	RUN_BOTH(cases);
}

/*
 * Elements across a page boundary, one of them straddling it, between guest
 * pages whose physical pages are in the opposite order; up and down.
 */
TEST(long64_page_cross)
{
	static const struct str_case cases[] = {
		{ VM_MODE_LONG64, .size = 4, .asize = 64, .ptr = HI_GVA + 0xffa, .rcx = 4 },
		{ VM_MODE_LONG64, .size = 4, .asize = 64, .df = true, .ptr = HI_GVA + 0x1002,
		  .rcx = 4 },
		{ VM_MODE_LONG64, .size = 2, .asize = 64, .ptr = HI_GVA + 0xff9, .rcx = 5 },
		{ VM_MODE_LONG64, .size = 1, .asize = 64, .ptr = HI_GVA + 0xff8, .rcx = 16 },
		{ VM_MODE_LONG64, .size = 1, .asize = 64, .df = true, .ptr = HI_GVA + 0x1007,
		  .rcx = 16 },
	};

	RUN_BOTH(cases);
}

/*
 * Segments in 64-bit mode: OUTS with an FS or GS override reads at that
 * base plus rSI; ES and DS bases are ignored (SDM vol. 1 3.4.2.1), and INS
 * stores to ES:rDI even after an override prefix (SDM vol. 2, INS).
 */
TEST(long64_segments)
{
	static const struct str_case cases[] = {
		{ VM_MODE_LONG64, .out = true, .size = 1, .asize = 64, .seg = SEG_FS,
		  .ptr = 0x100, .rcx = 8, .fs_base = HI_GVA, .ds_base = 0x10000 },
		{ VM_MODE_LONG64, .out = true, .size = 2, .asize = 32, .seg = SEG_GS,
		  .ptr = 0xffffffff00000200ULL, .rcx = 5, .gs_base = HI_GVA },
		{ VM_MODE_LONG64, .out = true, .size = 4, .asize = 64, .ptr = HI_GVA + 0x300,
		  .rcx = 3, .ds_base = 0x10000 },
		{ VM_MODE_LONG64, .out = false, .size = 1, .asize = 64, .seg = SEG_FS,
		  .ptr = HI_GVA + 0x400, .rcx = 8, .fs_base = 0x1000, .es_base = 0x10000 },
		{ VM_MODE_LONG64, .out = false, .size = 4, .asize = 32, .seg = SEG_GS,
		  .ptr = BUF, .rcx = 3, .gs_base = 0x1000 },
	};

	RUN_AS_LISTED(cases);
}

/* Flat 32-bit protected mode, 32-bit addresses, DF clear and set. */
TEST(prot32_a32)
{
	static const struct str_case cases[] = {
		{ VM_MODE_PROT32, .size = 1, .asize = 32, .ptr = BUF, .rcx = 16 },
		{ VM_MODE_PROT32, .size = 2, .asize = 32, .ptr = BUF + 0x101, .rcx = 9 },
		{ VM_MODE_PROT32, .size = 4, .asize = 32, .ptr = BUF + 0x200, .rcx = 5 },
		{ VM_MODE_PROT32, .size = 1, .asize = 32, .df = true, .ptr = BUF + 0x800,
		  .rcx = 16 },
		{ VM_MODE_PROT32, .size = 2, .asize = 32, .df = true, .ptr = BUF + 0x901,
		  .rcx = 9 },
		{ VM_MODE_PROT32, .size = 4, .asize = 32, .df = true, .ptr = BUF + 0xa00,
		  .rcx = 5 },
	};

	RUN_BOTH(cases);
}

/*
 * 0x67 in 32-bit mode: 16-bit addresses, so DI/SI and CX; the upper halves
 * of EDI/ESI and ECX are neither used nor changed.
 */
TEST(prot32_a16)
{
	static const struct str_case cases[] = {
		{ VM_MODE_PROT32, .size = 1, .asize = 16, .ptr = 0xabcd0000 | BUF,
		  .rcx = 0x12340000 | 7 },
		{ VM_MODE_PROT32, .size = 2, .asize = 16, .ptr = 0x00010000 | (BUF + 0x101),
		  .rcx = 0xffff0000 | 6 },
		{ VM_MODE_PROT32, .size = 4, .asize = 16, .ptr = 0xffff0000 | (BUF + 0x200),
		  .rcx = 0x00010000 | 5 },
		{ VM_MODE_PROT32, .size = 1, .asize = 16, .df = true,
		  .ptr = 0xabcd0000 | (BUF + 0x800), .rcx = 0x12340000 | 7 },
		{ VM_MODE_PROT32, .size = 2, .asize = 16, .df = true,
		  .ptr = 0x00010000 | (BUF + 0x901), .rcx = 0xffff0000 | 6 },
		{ VM_MODE_PROT32, .size = 4, .asize = 16, .df = true,
		  .ptr = 0xffff0000 | (BUF + 0xa00), .rcx = 0x00010000 | 5 },
	};

	RUN_BOTH(cases);
}

/*
 * A 16-bit offset wraps from 0xffff to 0 and back, without carrying into
 * EDI.  Not INSW/INSD upward across the wrap: the reference KVM (Debian 6.1)
 * reads ahead as many elements as there are bytes left in the page and
 * stores them as one block, so REP INSW at DI = 0xfffc with CX = 4 writes
 * 0xfffc-0x10003 instead of wrapping to 0 for its last two elements.  Bytes
 * upward, and every size downward, are stored one element at a time.
 */
TEST(prot32_a16_wrap)
{
	static const struct str_case cases[] = {
		{ VM_MODE_PROT32, .out = false, .size = 1, .asize = 16, .ptr = 0x00abfffe,
		  .rcx = 4 },
		{ VM_MODE_PROT32, .out = true, .size = 1, .asize = 16, .ptr = 0x00abfffe,
		  .rcx = 4 },
		{ VM_MODE_PROT32, .out = true, .size = 2, .asize = 16, .ptr = 0x00abfffc,
		  .rcx = 4 },
		{ VM_MODE_PROT32, .out = true, .size = 4, .asize = 16, .ptr = 0x00abfff8,
		  .rcx = 4 },
		{ VM_MODE_PROT32, .out = false, .size = 1, .asize = 16, .df = true,
		  .ptr = 0x00ab0001, .rcx = 4 },
		{ VM_MODE_PROT32, .out = true, .size = 1, .asize = 16, .df = true,
		  .ptr = 0x00ab0001, .rcx = 4 },
		{ VM_MODE_PROT32, .out = false, .size = 4, .asize = 16, .df = true,
		  .ptr = 0x00ab0004, .rcx = 4 },
		{ VM_MODE_PROT32, .out = true, .size = 4, .asize = 16, .df = true,
		  .ptr = 0x00ab0004, .rcx = 4 },
	};

	RUN_AS_LISTED(cases);
}

/* No exit for a count of 0; with 0x67 that is CX = 0 whatever ECX holds above. */
TEST(prot32_count_zero)
{
	static const struct str_case cases[] = {
		{ VM_MODE_PROT32, .size = 4, .asize = 32, .ptr = BUF },
		{ VM_MODE_PROT32, .size = 1, .asize = 16, .ptr = 0x00ab0000 | BUF,
		  .rcx = 0x00070000 },
		{ VM_MODE_PROT32, .size = 2, .asize = 16, .df = true, .ptr = BUF,
		  .rcx = 0xffff0000 },
	};

	RUN_BOTH(cases);
}

TEST(prot32_page_cross)
{
	static const struct str_case cases[] = {
		{ VM_MODE_PROT32, .size = 4, .asize = 32, .ptr = BUF + 0xffa, .rcx = 4 },
		{ VM_MODE_PROT32, .size = 4, .asize = 32, .df = true, .ptr = BUF + 0x1002,
		  .rcx = 4 },
		{ VM_MODE_PROT32, .size = 2, .asize = 16, .ptr = BUF + 0xff9, .rcx = 5 },
		{ VM_MODE_PROT32, .size = 1, .asize = 32, .df = true, .ptr = BUF + 0x1007,
		  .rcx = 16 },
	};

	RUN_BOTH(cases);
}

/* OUTS from an overriding segment's base; INS to ES whatever the prefix. */
TEST(prot32_segments)
{
	static const struct str_case cases[] = {
		{ VM_MODE_PROT32, .out = true, .size = 1, .asize = 32, .seg = SEG_FS,
		  .ptr = 0x1000, .rcx = 8, .fs_base = 0x3000 },
		{ VM_MODE_PROT32, .out = true, .size = 2, .asize = 16, .seg = SEG_ES,
		  .ptr = 0x1000, .rcx = 5, .es_base = 0x3000, .ds_base = 0x5000 },
		{ VM_MODE_PROT32, .out = true, .size = 4, .asize = 32, .ptr = 0x1000, .rcx = 3,
		  .ds_base = 0x3000, .es_base = 0x5000 },
		{ VM_MODE_PROT32, .out = false, .size = 1, .asize = 32, .seg = SEG_FS,
		  .ptr = 0x1000, .rcx = 8, .es_base = 0x3000, .fs_base = 0x5000 },
		{ VM_MODE_PROT32, .out = false, .size = 2, .asize = 16, .ptr = 0x1000, .rcx = 5,
		  .es_base = 0x3000, .ds_base = 0x5000 },
	};

	RUN_AS_LISTED(cases);
}

/*
 * Real mode, 16-bit addresses: DI/SI and CX, upper halves untouched; 0x66
 * makes the 4-byte form.
 */
TEST(real_a16)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .size = 1, .asize = 16, .ptr = 0x77770000 | BUF,
		  .rcx = 0x33330000 | 16 },
		{ VM_MODE_REAL, .size = 2, .asize = 16, .ptr = 0x77770000 | (BUF + 0x101),
		  .rcx = 0x33330000 | 9 },
		{ VM_MODE_REAL, .size = 4, .asize = 16, .ptr = 0x77770000 | (BUF + 0x200),
		  .rcx = 0x33330000 | 5 },
		{ VM_MODE_REAL, .size = 1, .asize = 16, .df = true,
		  .ptr = 0x77770000 | (BUF + 0x800), .rcx = 0x33330000 | 16 },
		{ VM_MODE_REAL, .size = 2, .asize = 16, .df = true,
		  .ptr = 0x77770000 | (BUF + 0x901), .rcx = 0x33330000 | 9 },
		{ VM_MODE_REAL, .size = 4, .asize = 16, .df = true,
		  .ptr = 0x77770000 | (BUF + 0xa00), .rcx = 0x33330000 | 5 },
	};

	RUN_BOTH(cases);
}

/*
 * 0x67 in real mode: EDI/ESI and ECX.  Offsets stay within the 64 KiB
 * limit, but EDI counts past 0xffff where DI would wrap.
 */
TEST(real_a32)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .size = 1, .asize = 32, .ptr = BUF, .rcx = 16 },
		{ VM_MODE_REAL, .size = 2, .asize = 32, .ptr = BUF + 0x101, .rcx = 9 },
		{ VM_MODE_REAL, .size = 4, .asize = 32, .ptr = BUF + 0x200, .rcx = 5 },
		{ VM_MODE_REAL, .size = 1, .asize = 32, .df = true, .ptr = BUF + 0x800,
		  .rcx = 16 },
		{ VM_MODE_REAL, .size = 2, .asize = 32, .df = true, .ptr = BUF + 0x901,
		  .rcx = 9 },
		{ VM_MODE_REAL, .size = 4, .asize = 32, .df = true, .ptr = BUF + 0xa00,
		  .rcx = 5 },
		{ VM_MODE_REAL, .size = 1, .asize = 32, .ptr = 0xfffc, .rcx = 4 },
	};

	RUN_BOTH(cases);
}

TEST(real_a16_wrap)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .size = 1, .asize = 16, .ptr = 0x0009fffe, .rcx = 0x00090004 },
		{ VM_MODE_REAL, .size = 2, .asize = 16, .df = true, .ptr = 0x00090002,
		  .rcx = 0x00090004 },
	};

	RUN_BOTH(cases);
}

TEST(real_count_zero)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .size = 1, .asize = 16, .ptr = BUF, .rcx = 0x00010000 },
		{ VM_MODE_REAL, .size = 2, .asize = 32, .df = true, .ptr = BUF },
	};

	RUN_BOTH(cases);
}

TEST(real_page_cross)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .size = 4, .asize = 16, .ptr = BUF + 0xffa, .rcx = 4 },
		{ VM_MODE_REAL, .size = 4, .asize = 32, .df = true, .ptr = BUF + 0x1002,
		  .rcx = 4 },
		{ VM_MODE_REAL, .size = 2, .asize = 16, .df = true, .ptr = BUF + 0x1003,
		  .rcx = 5 },
	};

	RUN_BOTH(cases);
}

/* Real-mode segments: base = selector * 16. */
TEST(real_segments)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .out = true, .size = 1, .asize = 16, .seg = SEG_FS, .ptr = BUF,
		  .rcx = 8, .fs_base = 0x20000 },
		{ VM_MODE_REAL, .out = true, .size = 2, .asize = 32, .ptr = BUF, .rcx = 5,
		  .ds_base = 0x20000, .es_base = 0x30000 },
		{ VM_MODE_REAL, .out = false, .size = 4, .asize = 16, .seg = SEG_FS, .ptr = BUF,
		  .rcx = 3, .es_base = 0x20000, .fs_base = 0x30000 },
		{ VM_MODE_REAL, .out = false, .size = 1, .asize = 32, .ptr = BUF, .rcx = 8,
		  .es_base = 0x20000, .ds_base = 0x30000 },
	};

	RUN_AS_LISTED(cases);
}

/*
 * With 0x67 the real-mode count is ECX: 0x10000 is 65536 bytes, where CX
 * would be a count of 0.  INS only: KVM's read-ahead needs about 64 exits,
 * OUTS would take 65536.
 */
TEST_TIMEOUT(real_a32_count_above_64k, 300)
{
	static const struct str_case cases[] = {
		{ VM_MODE_REAL, .out = false, .size = 1, .asize = 32, .ptr = 0,
		  .rcx = 0x10000, .es_base = 0x10000 },
	};

	RUN_AS_LISTED(cases);
}

/*
 * With a 64-bit address size the count is all of RCX: 2^32 + 16 is not a
 * count of 16 (nor 2^32 a count of 0).  The first batch is checked, then
 * the VM is dropped: the whole count would take too long.
 */
TEST(long64_count_above_4g)
{
	static const uint64_t counts[] = { 0x100000000ULL, 0x100000010ULL };

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct str_case c = { VM_MODE_LONG64, .size = 1, .asize = 64,
				      .ptr = HI_GVA, .rcx = counts[i] };
		struct kvm_vm *vm = vm_create(c.mode);
		struct kvm_vcpu *vcpu;
		struct kvm_regs regs;
		uint8_t code[16];
		size_t len = build_code(code, &c);
		unsigned int n;

		vm_load_blob(vm, CODE_GPA, code, code + len);
		vcpu = vm_vcpu_add_at(vm, 0, CODE_GPA);
		virt_map(vm, HI_GVA, HI_GPA0, PAGE_SIZE);
		virt_map(vm, HI_GVA + PAGE_SIZE, HI_GPA1, PAGE_SIZE);
		vcpu_regs_get(vcpu, &regs);
		regs.rcx = c.rcx;
		regs.rdi = c.ptr;
		regs.rdx = PORT;
		vcpu_regs_set(vcpu, &regs);

		vcpu_run(vcpu);
		TEST_ASSERT(vcpu->run->exit_reason == KVM_EXIT_IO &&
			    vcpu->run->io.direction == KVM_EXIT_IO_IN && vcpu->run->io.port == PORT,
			    "RCX %#" PRIx64 ": exit reason %u, not an IN from port %#x", counts[i],
			    vcpu->run->exit_reason, PORT);
		n = vcpu->run->io.count;
		TEST_ASSERT(n >= 1 && n <= PAGE_SIZE, "RCX %#" PRIx64 ": a batch of %u",
			    counts[i], n);
		/* Complete the batch: RCX counts down from all 64 bits. */
		vcpu->run->immediate_exit = 1;
		TEST_ASSERT(ioctl(vcpu->fd, KVM_RUN, NULL) == -1 && errno == EINTR,
			    "KVM_RUN with immediate_exit did not return EINTR");
		vcpu->run->immediate_exit = 0;
		vcpu_regs_get(vcpu, &regs);
		TEST_ASSERT(regs.rcx == counts[i] - n && regs.rdi == c.ptr + n,
			    "RCX %#" PRIx64 " after a batch of %u: RCX %#llx RDI %#llx",
			    counts[i], n, regs.rcx, regs.rdi);
		vm_free(vm);
	}
}
