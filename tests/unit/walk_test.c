// SPDX-License-Identifier: GPL-2.0
/*
 * The page-table walker (arch/x86/kvm/mmu/walk.c) against the SDM and the
 * APM, in userspace: every table format, its reserved bits, the access
 * rights and their #PF error codes (SDM vol. 3 4.3-4.8), the EPT violation
 * qualification and misconfigurations (SDM 28.3.2-28.3.5), the accessed and
 * dirty bits and the compare-and-exchange that sets them.
 *
 * The tables live in a small fake physical memory that the walker reads and
 * updates through its callbacks; the fake can refuse a read, refuse a write
 * (a read-only table) or play a guest that changes an entry under the walk.
 *
 * The cases named sdm_* check rules where walk.c disagrees with the SDM: they
 * assert what the SDM says (the section is in each one's comment), so they
 * fail until walk.c is fixed.
 */
#include <stdarg.h>
#include <string.h>

#include "harness.h"
#include <minikvm/walk.h>

#define PF_VEC		14		/* #PF */
#define PAGE		4096ULL
#define MEM_PAGES	64
#define OUTSIDE		0x40000000ULL	/* a table address beyond the fake memory */

/* x86 entries (SDM vol. 3 4.3-4.5). */
#define X_P		BIT_ULL(0)
#define X_RW		BIT_ULL(1)
#define X_US		BIT_ULL(2)
#define X_A		BIT_ULL(5)
#define X_D		BIT_ULL(6)
#define X_PS		BIT_ULL(7)
#define X_XD		BIT_ULL(63)
#define X_URW		(X_P | X_RW | X_US)
#define X_RIGHTS	(X_P | X_RW | X_US | X_XD)

/* EPT entries (SDM vol. 3 28.3.2). */
#define E_R		BIT_ULL(0)
#define E_W		BIT_ULL(1)
#define E_X		BIT_ULL(2)
#define E_RWX		(E_R | E_W | E_X)
#define E_MT(t)		((u64)(t) << 3)
#define E_IPAT		BIT_ULL(6)
#define E_PS		BIT_ULL(7)
#define E_A		BIT_ULL(8)
#define E_D		BIT_ULL(9)

/* #PF error-code bits (SDM 4.7). */
#define EC_P		MKVM_PF_PROT
#define EC_W		MKVM_PF_WRITE
#define EC_U		MKVM_PF_USER
#define EC_RSVD		MKVM_PF_RSVD
#define EC_I		MKVM_PF_FETCH
#define ANY_EC		(~0u)

/* EPT violation qualification: the access in bits 0-2 (SDM 28.3.3.2). */
#define Q_READ		BIT(0)
#define Q_WRITE		BIT(1)
#define Q_FETCH		BIT(2)
#define Q_RIGHTS(rwx)	((u32)(rwx) << 3)

/* The accesses. */
#define RD		0u
#define WR		MKVM_ACC_WRITE
#define FE		MKVM_ACC_FETCH
#define NOCHK		MKVM_ACC_NO_CHECK

/* Where the tests map things: 1 GiB-aligned, and below 4 GiB for every format. */
#define ADDR		0x40201234ULL
#define HPA		0xc0000000ULL

/* Each format as the SDM describes it: levels, entry size, index bits. */
struct fmt {
	const char *name;
	int levels;
	unsigned int bytes;
	unsigned int shift[6];	/* level L is indexed by the address bits from shift[L] */
	unsigned int width[6];	/* ... width[L] of them */
	int max_leaf;		/* the largest page's level */
	bool ept;
};

static const struct fmt fmts[] = {
	[MKVM_PT_32] = { "32-bit", 2, 4, { 0, 12, 22 }, { 0, 10, 10 }, 2, false },
	[MKVM_PT_PAE] = { "PAE", 3, 8, { 0, 12, 21, 30 }, { 0, 9, 9, 2 }, 2, false },
	[MKVM_PT_4L] = { "4-level", 4, 8, { 0, 12, 21, 30, 39 }, { 0, 9, 9, 9, 9 }, 3, false },
	[MKVM_PT_5L] = { "5-level", 5, 8, { 0, 12, 21, 30, 39, 48 }, { 0, 9, 9, 9, 9, 9 }, 3,
			 false },
	[MKVM_PT_EPT4] = { "EPT4", 4, 8, { 0, 12, 21, 30, 39 }, { 0, 9, 9, 9, 9 }, 3, true },
	[MKVM_PT_EPT5] = { "EPT5", 5, 8, { 0, 12, 21, 30, 39, 48 }, { 0, 9, 9, 9, 9, 9 }, 3,
			   true },
};

/* ---- The fake physical memory and the walker's callbacks over it ---- */

static u8 mem[MEM_PAGES * PAGE] __attribute__((aligned(4096)));
static unsigned int pages_used;
static u64 ad_bits;		/* the only bits the walker may ever set: A and D */

/*
 * How the fake's compare-and-exchange behaves.  A racing guest changes the
 * entry (XOR @race_flip) just before the exchange, which then finds the old
 * value gone and fails with -EAGAIN; @races is how often (-1: always).
 */
static struct {
	unsigned int calls;
	int races;
	u64 race_gpa;		/* the entry the guest races on; ~0: any */
	u64 race_flip;
	u64 ro_page;		/* a page that cannot be written: -EFAULT */
} cx;

static u64 ld(u64 gpa, unsigned int bytes)
{
	u64 v = 0;

	memcpy(&v, mem + gpa, bytes);	/* little-endian, as the tables */
	return v;
}

static void st(u64 gpa, u64 v, unsigned int bytes)
{
	memcpy(mem + gpa, &v, bytes);
}

static bool in_mem(u64 gpa, unsigned int bytes)
{
	return gpa < sizeof(mem) && bytes <= sizeof(mem) - gpa && gpa % bytes == 0;
}

static int fake_read(void *opaque, u64 gpa, u64 *pte, unsigned int bytes)
{
	TEST_ASSERT(opaque == &cx, "read_pte: opaque %p", opaque);
	if (!in_mem(gpa, bytes))
		return -EFAULT;
	*pte = ld(gpa, bytes);
	return 0;
}

static int fake_cmpxchg(void *opaque, u64 gpa, u64 old, u64 new, unsigned int bytes)
{
	TEST_ASSERT(opaque == &cx, "cmpxchg_pte: opaque %p", opaque);
	/* The walker only ever sets accessed and dirty bits. */
	TEST_ASSERT((old & ~new) == 0 && ((new & ~old) & ~ad_bits) == 0,
		    "cmpxchg at %#" PRIx64 ": %#" PRIx64 " -> %#" PRIx64, gpa, old, new);
	cx.calls++;
	if (!in_mem(gpa, bytes) || gpa / PAGE == cx.ro_page)
		return -EFAULT;
	if (cx.races && (cx.race_gpa == ~0ULL || cx.race_gpa == gpa)) {
		if (cx.races > 0)
			cx.races--;
		st(gpa, ld(gpa, bytes) ^ cx.race_flip, bytes);
	}
	if (ld(gpa, bytes) != old)
		return -EAGAIN;
	st(gpa, new, bytes);
	return 0;
}

static const struct mkvm_walk_env env = {
	.opaque = &cx, .read_pte = fake_read, .cmpxchg_pte = fake_cmpxchg,
};

/* ---- Building tables ---- */

static u64 new_table(void)
{
	TEST_ASSERT(pages_used < MEM_PAGES, "fake memory full");
	return pages_used++ * PAGE;
}

/* Empty memory, a root table, every control off, MAXPHYADDR 46. */
static struct mkvm_paging reset(enum mkvm_pt_format format)
{
	struct mkvm_paging p = { .format = format, .maxphyaddr = 46 };

	memset(mem, 0, sizeof(mem));
	memset(&cx, 0, sizeof(cx));
	cx.race_gpa = ~0ULL;
	cx.ro_page = ~0ULL;
	pages_used = 1;		/* page 0 stays empty */
	ad_bits = fmts[format].ept ? E_A | E_D : X_A | X_D;
	p.root = new_table();
	/* CR3 gives PAE a 32-byte-aligned PDPT (SDM 4.4.1): not at a page start. */
	if (format == MKVM_PT_PAE)
		p.root += 0x40;
	return p;
}

/* Where map() put each level's entry, to read and change them. */
struct chain {
	u64 gpa[6];
	unsigned int bytes;
};

/* What map() gives the table entries it makes: every right. */
static u64 table_rights(const struct mkvm_paging *p, int level)
{
	if (fmts[p->format].ept)
		return E_RWX;
	/* A PAE PDPTE has P and no rights (SDM 4.4.1). */
	return p->format == MKVM_PT_PAE && level == 3 ? X_P : X_URW;
}

/* A leaf with every right mapping @gpa at @level (PS above level 1; EPT: write-back). */
static u64 leaf(const struct mkvm_paging *p, u64 gpa, int level)
{
	u64 e = gpa | (fmts[p->format].ept ? E_RWX | E_MT(6) : X_URW);

	return level > 1 ? e | X_PS : e;
}

/* Map @addr with @leaf_pte at @leaf_level, making the tables above as needed. */
static struct chain map(const struct mkvm_paging *p, u64 addr, int leaf_level, u64 leaf_pte)
{
	const struct fmt *f = &fmts[p->format];
	struct chain c = { .bytes = f->bytes };
	u64 table = p->root;
	int level;

	for (level = f->levels; level > leaf_level; level--) {
		u64 idx = (addr >> f->shift[level]) & ((1ULL << f->width[level]) - 1);
		u64 e;

		c.gpa[level] = table + idx * f->bytes;
		e = ld(c.gpa[level], f->bytes);
		if (!e) {
			e = new_table() | table_rights(p, level);
			st(c.gpa[level], e, f->bytes);
		}
		table = e & GENMASK_ULL(51, 12);
	}
	c.gpa[level] = table + ((addr >> f->shift[level]) & ((1ULL << f->width[level]) - 1)) *
		       f->bytes;
	st(c.gpa[level], leaf_pte, f->bytes);
	return c;
}

static u64 get(const struct chain *c, int level)
{
	return ld(c->gpa[level], c->bytes);
}

static void put(const struct chain *c, int level, u64 v)
{
	st(c->gpa[level], v, c->bytes);
}

/* The page offset of @addr in a page at @level, added to @base. */
static u64 at(const struct mkvm_paging *p, u64 base, u64 addr, int level)
{
	return base | (addr & ((1ULL << fmts[p->format].shift[level]) - 1));
}

/* ---- Walking and checking ---- */

static struct mkvm_walk out;
static struct mkvm_fault fault;

static int walk(const struct mkvm_paging *p, u64 addr, u32 access)
{
	memset(&out, 0xa5, sizeof(out));
	memset(&fault, 0xa5, sizeof(fault));
	return mkvm_walk(p, &env, addr, access, &out, &fault);
}

/* A description of the case for the failure messages. */
static const char *say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *say(const char *fmt, ...)
{
	static char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

/* The access completes, at @gpa through a leaf at @level. */
static void check_ok(const char *what, const struct mkvm_paging *p, u64 addr, u32 access,
		     u64 gpa, int level)
{
	int r = walk(p, addr, access);

	TEST_ASSERT(r == 0, "%s: %s: returned %d (vector %#x error code %#x), expected success",
		    fmts[p->format].name, what, r, fault.vector, fault.error_code);
	TEST_ASSERT(out.gpa == gpa && out.level == level,
		    "%s: %s: gpa %#" PRIx64 " level %d, expected %#" PRIx64 " level %d",
		    fmts[p->format].name, what, out.gpa, out.level, gpa, level);
}

/* The access raises @vector with error code @ec (ANY_EC: not checked) for @addr. */
static void check_fault(const char *what, const struct mkvm_paging *p, u64 addr, u32 access,
			u8 vector, u32 ec)
{
	/* 32-bit and PAE paging have 32-bit linear addresses (SDM 4.3, 4.4). */
	u64 cr2 = p->format == MKVM_PT_32 || p->format == MKVM_PT_PAE ? (u32)addr : addr;
	int r = walk(p, addr, access);

	TEST_ASSERT(r == -EFAULT, "%s: %s: returned %d (gpa %#" PRIx64 "), expected a fault",
		    fmts[p->format].name, what, r, out.gpa);
	TEST_ASSERT(fault.vector == vector && (ec == ANY_EC || fault.error_code == ec),
		    "%s: %s: vector %#x error code %#x, expected vector %#x error code %#x",
		    fmts[p->format].name, what, fault.vector, fault.error_code, vector, ec);
	TEST_ASSERT(fault.address == cr2, "%s: %s: address %#" PRIx64 ", expected %#" PRIx64,
		    fmts[p->format].name, what, fault.address, cr2);
}

/* The #PF error code of @access in @p's mode, with @cause: 0, P, or P|RSVD (SDM 4.7). */
static u32 pf_ec(const struct mkvm_paging *p, u32 access, u32 cause)
{
	u32 ec = cause | (access & WR ? EC_W : 0) | (p->user ? EC_U : 0);

	/* I/D: a fetch, with CR4.SMEP, or with EFER.NXE under CR4.PAE (PAE, 4- and 5-level). */
	if ((access & FE) && (p->smep || (p->nxe && p->format != MKVM_PT_32)))
		ec |= EC_I;
	return ec;
}

static void check_pf(const char *what, const struct mkvm_paging *p, u64 addr, u32 access,
		     u32 ec)
{
	check_fault(what, p, addr, access, PF_VEC, ec);
}

static void check_rsvd(const char *what, const struct mkvm_paging *p, u64 addr, u32 access)
{
	check_pf(what, p, addr, access, pf_ec(p, access, EC_P | EC_RSVD));
}

static u32 q_access(u32 access)
{
	return access & FE ? Q_FETCH : access & WR ? Q_WRITE : Q_READ;
}

static void check_violation(const char *what, const struct mkvm_paging *p, u64 addr,
			    u32 access, u64 rights)
{
	check_fault(what, p, addr, access, MKVM_FAULT_EPT_VIOLATION,
		    q_access(access) | Q_RIGHTS(rights));
}

static void check_misconfig(const char *what, const struct mkvm_paging *p, u64 addr,
			    u32 access)
{
	check_fault(what, p, addr, access, MKVM_FAULT_EPT_MISCONFIG, ANY_EC);
}

/* ---- 32-bit paging (SDM 4.3) ---- */

TEST(pt32_4k_pages)
{
	struct mkvm_paging p = reset(MKVM_PT_32);
	struct chain c = map(&p, 0x12345000, 1, 0xabcde000 | X_URW);
	u64 pde = get(&c, 2), pte = get(&c, 1);

	/* A neighbour in both tables: a wrong index or entry size would land on it. */
	map(&p, 0x12346000, 1, 0x11111000 | X_URW);
	map(&p, 0x12745000, 1, 0x22222000 | X_URW);

	check_ok("read", &p, 0x12345678, RD, 0xabcde678, 1);
	TEST_ASSERT_EQ(get(&c, 2), pde | X_A);
	TEST_ASSERT_EQ(get(&c, 1), pte | X_A);
	check_ok("write", &p, 0x12345678, WR, 0xabcde678, 1);
	/* Dirty only in the entry that maps the page (SDM 4.8); bit 6 of a PDE is ignored. */
	TEST_ASSERT_EQ(get(&c, 2), pde | X_A);
	TEST_ASSERT_EQ(get(&c, 1), pte | X_A | X_D);
	check_ok("neighbour PTE", &p, 0x12346000, RD, 0x11111000, 1);
	check_ok("neighbour PDE", &p, 0x12745fff, RD, 0x22222fff, 1);

	/* Linear addresses are 32 bits: the upper half of the address is not used. */
	check_ok("address bits 63:32 ignored", &p, 0xffffffff12345678ULL, RD, 0xabcde678, 1);
	check_pf("unmapped, address bits 63:32 dropped from CR2", &p, 0xdead000000001000ULL, RD,
		 0);
	TEST_ASSERT_EQ(fault.address, 0x1000);

	/* CR4.PSE with PS=0: still a page table. */
	p.pse = true;
	check_ok("PSE, PS=0", &p, 0x12345678, RD, 0xabcde678, 1);
}

/* 4 MiB pages need CR4.PSE; their bits 20:13 are address bits 39:32 (PSE-36). */
TEST(pt32_4m_pages)
{
	struct mkvm_paging p = reset(MKVM_PT_32);
	u64 pde = 0xc0000000 | (0x12ULL << 13) | BIT_ULL(12) /* PAT */ | X_PS | X_URW;
	struct chain c;

	p.pse = true;
	c = map(&p, 0xc0000000, 2, pde);
	check_ok("4 MiB page, PSE-36 bits 39:32 = 0x12, PAT set", &p, 0xc0123456, RD,
		 0x12c0123456ULL, 2);
	check_ok("write", &p, 0xc0123456, WR, 0x12c0123456ULL, 2);
	TEST_ASSERT_EQ(get(&c, 2), pde | X_A | X_D);

	put(&c, 2, 0x00400000 | (0xffULL << 13) | X_PS | X_URW);
	check_ok("bits 20:13 all set", &p, 0xc03fffff, RD, 0xff007fffffULL, 2);
}

/* Without CR4.PSE, PS in a PDE is ignored: the PDE still points to a page table. */
TEST(pt32_ps_ignored_without_pse)
{
	struct mkvm_paging p = reset(MKVM_PT_32);
	struct chain c = map(&p, 0x00801000, 1, 0x5000 | X_URW);
	u64 pde = get(&c, 2) | X_PS;

	put(&c, 2, pde);
	/* The page table's address is 0x2000: bit 13 set, not PSE-36 address bits. */
	TEST_ASSERT((pde & GENMASK_ULL(20, 13)) != 0, "PDE %#" PRIx64, pde);
	check_ok("PS without PSE", &p, 0x00801abc, WR, 0x5abc, 1);
	TEST_ASSERT_EQ(get(&c, 2), pde | X_A);
	TEST_ASSERT_EQ(get(&c, 1), 0x5000 | X_URW | X_A | X_D);
}

/*
 * A 4 MiB page's reserved bits (SDM 4.3, table 4-4): bit 21, and bits
 * 20:(M-19) with M = MIN(MAXPHYADDR, 40), those beyond PSE-36's address bits.
 */
TEST(pt32_4m_reserved_bits)
{
	static const unsigned int maxphy[] = { 32, 36, 39, 40, 46, 52 };
	unsigned int i, bit;

	for (i = 0; i < sizeof(maxphy) / sizeof(maxphy[0]); i++) {
		unsigned int m = maxphy[i] < 40 ? maxphy[i] : 40;

		for (bit = 13; bit <= 21; bit++) {
			struct mkvm_paging p = reset(MKVM_PT_32);
			u64 pde = 0xc0000000 | BIT_ULL(bit) | X_PS | X_URW;

			p.pse = true;
			p.maxphyaddr = maxphy[i];
			map(&p, 0xc0000000, 2, pde);
			if (bit == 21 || bit - 13 + 32 >= m)
				check_rsvd(say("MAXPHYADDR %u, bit %u", maxphy[i], bit), &p,
					   0xc0000123, RD);
			else
				check_ok(say("MAXPHYADDR %u, bit %u", maxphy[i], bit), &p,
					 0xc0000123, RD, 0xc0000123 | BIT_ULL(bit - 13 + 32), 2);
		}
	}
}

/* ---- PAE paging (SDM 4.4) ---- */

TEST(pae_translate)
{
	struct mkvm_paging p = reset(MKVM_PT_PAE);
	struct chain c4k = map(&p, 0xc0345000, 1, 0x987654000ULL | X_URW);
	struct chain c2m = map(&p, 0x40200000, 2, 0x1234600000ULL | BIT_ULL(12) | X_PS | X_URW);
	u64 pdpte = get(&c4k, 3), pde = get(&c4k, 2), pte = get(&c4k, 1);

	check_ok("4 KiB page", &p, 0xc0345abc, RD, 0x987654abcULL, 1);
	check_ok("2 MiB page, PAT set", &p, 0x40212345, RD, 0x1234612345ULL, 2);
	check_ok("address bits 63:32 ignored", &p, 0x12345678c0345abcULL, RD, 0x987654abcULL, 1);
	check_pf("PDPTE not present", &p, 0x80000000, WR, EC_W);
	check_pf("PDPTE not present, upper address bits dropped", &p, 0xffffffff80000000ULL, RD,
		 0);

	/* PDPTEs have no accessed bit (SDM 4.4.1): only the PDE and the PTE change. */
	check_ok("4 KiB write", &p, 0xc0345abc, WR, 0x987654abcULL, 1);
	TEST_ASSERT_EQ(get(&c4k, 3), pdpte);
	TEST_ASSERT_EQ(get(&c4k, 2), pde | X_A);
	TEST_ASSERT_EQ(get(&c4k, 1), pte | X_A | X_D);
	check_ok("2 MiB write", &p, 0x40212345, WR, 0x1234612345ULL, 2);
	TEST_ASSERT_EQ(get(&c2m, 2), 0x1234600000ULL | BIT_ULL(12) | X_PS | X_URW | X_A | X_D);
}

/*
 * PDPTE (SDM 4.4.1 table 4-8): bits 2:1, 8:6, 63 and 51:M reserved; 4:3 and
 * 11:9 not.  Bit 5 too by the SDM, but the walker leaves it alone: the
 * accessed bit, which QEMU's emulated AMD CPU sets there (walk.c).
 */
TEST(pae_pdpte_reserved_bits)
{
	unsigned int bit;

	for (bit = 1; bit < 64; bit++) {
		struct mkvm_paging p = reset(MKVM_PT_PAE);
		struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
		bool rsvd = bit <= 2 || (bit >= 6 && bit <= 8) || bit == 63 ||
			    (bit >= p.maxphyaddr && bit <= 51);

		if (bit >= 12 && bit < p.maxphyaddr)
			continue;	/* the page directory's address */
		if (bit >= 52 && bit <= 62)
			continue;	/* see sdm_pae_bits_62_52_reserved */
		p.nxe = true;		/* bit 63 is reserved in a PDPTE even with NXE */
		put(&c, 3, get(&c, 3) | BIT_ULL(bit));
		if (rsvd)
			check_rsvd(say("PDPTE bit %u", bit), &p, ADDR, RD);
		else
			check_ok(say("PDPTE bit %u", bit), &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	}
}

/* PDE and PTE (SDM 4.4.2): 51:M (and 62:52, below), XD without NXE, 20:13 of a 2 MiB page. */
TEST(pae_reserved_bits)
{
	int leaf_level, level;
	unsigned int bit;

	for (leaf_level = 1; leaf_level <= 2; leaf_level++) {
		for (level = 2; level >= leaf_level; level--) {
			for (bit = 46; bit <= 51; bit++) {
				struct mkvm_paging p = reset(MKVM_PT_PAE);
				struct chain c = map(&p, ADDR, leaf_level,
						     leaf(&p, HPA, leaf_level));

				put(&c, level, get(&c, level) | BIT_ULL(bit));
				check_rsvd(say("%d leaf, level %d, bit %u", leaf_level, level, bit),
					   &p, ADDR, RD);
			}
		}
	}
	for (bit = 12; bit <= 21; bit++) {
		struct mkvm_paging p = reset(MKVM_PT_PAE);

		map(&p, ADDR, 2, leaf(&p, HPA, 2) | BIT_ULL(bit));
		if (bit >= 13 && bit <= 20)
			check_rsvd(say("2 MiB page, bit %u", bit), &p, ADDR, RD);
		else
			check_ok(say("2 MiB page, bit %u", bit), &p, ADDR, RD,
				 at(&p, HPA | (BIT_ULL(bit) & ~BIT_ULL(12)), ADDR, 2), 2);
	}
}

/* ---- 4-level and 5-level paging (SDM 4.5) ---- */

TEST(l4_translate)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);

	map(&p, 0x00007f1234567000ULL, 1, 0x300001000ULL | X_URW);
	map(&p, 0x0000012345600000ULL, 2, 0x3fe00000ULL | X_PS | X_URW);
	map(&p, 0x0000008040000000ULL, 3, 0x240000000ULL | BIT_ULL(12) | X_PS | X_URW);
	map(&p, 0x0000000100000000ULL, 1, 0x7000 | X_URW);

	check_ok("4 KiB page", &p, 0x00007f1234567abcULL, RD, 0x300001abcULL, 1);
	check_ok("2 MiB page", &p, 0x00000123456fffffULL, RD, 0x3fefffffULL, 2);
	check_ok("1 GiB page, PAT set", &p, 0x0000008041234567ULL, RD, 0x241234567ULL, 3);
	/* 64-bit addresses are not truncated to 32 bits. */
	check_ok("above 4 GiB", &p, 0x0000000100000123ULL, RD, 0x7123, 1);
	check_pf("its low 32 bits are not mapped", &p, 0x123, RD, 0);
}

TEST(l5_translate)
{
	struct mkvm_paging p = reset(MKVM_PT_5L);
	struct chain c;

	map(&p, 0x01abcdef12345000ULL, 1, 0x300001000ULL | X_URW);
	map(&p, 0x0000008040000000ULL, 3, 0x240000000ULL | X_PS | X_URW);
	map(&p, 0x0100000000200000ULL, 2, 0x3fe00000ULL | X_PS | X_URW);
	check_ok("4 KiB page, address bits 56:48 = 0x1ab", &p, 0x01abcdef12345678ULL, RD,
		 0x300001678ULL, 1);
	check_ok("1 GiB page", &p, 0x0000008041234567ULL, RD, 0x241234567ULL, 3);
	check_ok("2 MiB page", &p, 0x0100000000212345ULL, RD, 0x3fe12345ULL, 2);
	check_pf("PML5E 0 maps nothing at 56:48 = 0x1ac", &p, 0x01ac000000000000ULL, RD, 0);

	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	check_ok("write", &p, ADDR, WR, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT_EQ(get(&c, 5) & (X_A | X_D), X_A);
	TEST_ASSERT_EQ(get(&c, 4) & (X_A | X_D), X_A);
	TEST_ASSERT_EQ(get(&c, 1) & (X_A | X_D), X_A | X_D);
}

/* Bit @bit set in the entry at @level, MAXPHYADDR @maxphy: reserved up to 51, then ignored. */
static void check_long_mode_high_bit(enum mkvm_pt_format format, int leaf_level, int level,
				     unsigned int maxphy, unsigned int bit)
{
	struct mkvm_paging p = reset(format);
	struct chain c = map(&p, ADDR, leaf_level, leaf(&p, HPA, leaf_level));
	const char *what = say("%d leaf, level %d, MAXPHYADDR %u, bit %u", leaf_level, level,
			       maxphy, bit);

	p.maxphyaddr = maxphy;
	put(&c, level, get(&c, level) | BIT_ULL(bit));
	if (bit <= 51)
		check_rsvd(what, &p, ADDR, RD);
	else
		check_ok(what, &p, ADDR, RD, at(&p, HPA, ADDR, leaf_level), leaf_level);
}

/*
 * SDM 4.5 (tables 4-15 to 4-20): 51:M reserved everywhere, 62:52 ignored,
 * XD reserved without NXE, PS reserved in a PML4E and a PML5E, bits 29:13 of a
 * 1 GiB page and 20:13 of a 2 MiB page reserved (bit 12 is PAT).
 */
static void check_long_mode_reserved(enum mkvm_pt_format format)
{
	static const unsigned int maxphy[] = { 36, 46, 52 };
	int levels = fmts[format].levels, leaf_level, level;
	unsigned int i, bit;

	for (leaf_level = 1; leaf_level <= 3; leaf_level++) {
		for (level = levels; level >= leaf_level; level--) {
			for (i = 0; i < sizeof(maxphy) / sizeof(maxphy[0]); i++)
				for (bit = maxphy[i]; bit <= 62; bit++)
					check_long_mode_high_bit(format, leaf_level, level,
								 maxphy[i], bit);
			{
				struct mkvm_paging p = reset(format);
				struct chain c = map(&p, ADDR, leaf_level,
						     leaf(&p, HPA, leaf_level));

				put(&c, level, get(&c, level) | X_XD);
				check_rsvd(say("XD without NXE at level %d", level), &p, ADDR, RD);
				p.nxe = true;
				check_ok(say("XD with NXE at level %d", level), &p, ADDR, RD,
					 at(&p, HPA, ADDR, leaf_level), leaf_level);
			}
		}
	}
	/* The address bit just below MAXPHYADDR is an address bit. */
	for (leaf_level = 1; leaf_level <= 3; leaf_level++) {
		struct mkvm_paging p = reset(format);

		map(&p, ADDR, leaf_level, leaf(&p, HPA | BIT_ULL(45), leaf_level));
		check_ok(say("%d leaf, bit 45", leaf_level), &p, ADDR, RD,
			 at(&p, HPA | BIT_ULL(45), ADDR, leaf_level), leaf_level);
	}
	/* Large pages: everything between PAT and the page's own address bits. */
	for (leaf_level = 2; leaf_level <= 3; leaf_level++) {
		for (bit = 12; bit < fmts[format].shift[leaf_level]; bit++) {
			struct mkvm_paging p = reset(format);

			map(&p, ADDR, leaf_level, leaf(&p, HPA, leaf_level) | BIT_ULL(bit));
			if (bit >= 13)
				check_rsvd(say("%d leaf, bit %u", leaf_level, bit), &p, ADDR, RD);
			else
				check_ok(say("%d leaf, PAT", leaf_level), &p, ADDR, RD,
					 at(&p, HPA, ADDR, leaf_level), leaf_level);
		}
	}
	/* No large pages from a PML4E or a PML5E. */
	for (level = 4; level <= levels; level++) {
		struct mkvm_paging p = reset(format);
		struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));

		put(&c, level, get(&c, level) | X_PS);
		check_rsvd(say("PS at level %d", level), &p, ADDR, RD);
	}
}

TEST(l4_reserved_bits)
{
	check_long_mode_reserved(MKVM_PT_4L);
}

TEST(l5_reserved_bits)
{
	check_long_mode_reserved(MKVM_PT_5L);
}

/* RSVD comes with the access's W/R, U/S and I/D bits (SDM 4.7). */
TEST(x86_rsvd_error_code)
{
	static const struct {
		u32 access;
		bool user, nxe, smep;
		u32 ec;
	} rows[] = {
		{ RD, false, false, false, EC_P | EC_RSVD },
		{ WR, true, false, false, EC_P | EC_RSVD | EC_W | EC_U },
		{ FE, false, false, false, EC_P | EC_RSVD },
		{ FE, false, true, false, EC_P | EC_RSVD | EC_I },
		{ FE, true, false, true, EC_P | EC_RSVD | EC_U | EC_I },
	};
	unsigned int i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct mkvm_paging p = reset(MKVM_PT_4L);

		p.user = rows[i].user;
		p.nxe = rows[i].nxe;
		p.smep = rows[i].smep;
		map(&p, ADDR, 1, leaf(&p, HPA, 1) | BIT_ULL(50));
		check_pf(say("row %u", i), &p, ADDR, rows[i].access, rows[i].ec);
	}
}

/* ---- Access rights (SDM 4.6.1) and the #PF error code (SDM 4.7) ---- */

/* The mode of a row: CPL 3, and the controls. */
#define S_USER		BIT(0)
#define S_WP		BIT(1)
#define S_NXE		BIT(2)
#define S_SMEP		BIT(3)
#define S_SMAP		BIT(4)
#define S_AC		BIT(5)
#define ALLOWED		(-1)

/*
 * One entry of the walk gets @entry's P, R/W, U/S and XD (each level in
 * turn); every other entry allows everything.
 */
struct rights_row {
	const char *what;
	u64 entry;
	unsigned int mode;
	u32 access;
	int ec;			/* the #PF error code, or ALLOWED */
};

static const struct rights_row rights_rows[] = {
	/* User accesses: user pages only; writes need R/W whatever CR0.WP says. */
	{ "user read", X_URW, S_USER, RD, ALLOWED },
	{ "user write", X_URW, S_USER, WR, ALLOWED },
	{ "user fetch", X_URW, S_USER, FE, ALLOWED },
	{ "user read, supervisor page", X_P | X_RW, S_USER, RD, EC_P | EC_U },
	{ "user write, supervisor page", X_P | X_RW, S_USER, WR, EC_P | EC_W | EC_U },
	{ "user fetch, supervisor page", X_P | X_RW, S_USER, FE, EC_P | EC_U },
	{ "user fetch, supervisor page, NXE", X_P | X_RW, S_USER | S_NXE, FE,
	  EC_P | EC_U | EC_I },
	{ "user read, read-only page", X_P | X_US, S_USER | S_WP, RD, ALLOWED },
	{ "user write, read-only page, WP=0", X_P | X_US, S_USER, WR, EC_P | EC_W | EC_U },
	{ "user write, read-only page, WP=1", X_P | X_US, S_USER | S_WP, WR, EC_P | EC_W | EC_U },
	{ "user fetch, SMEP (for the kernel only)", X_URW, S_USER | S_SMEP, FE, ALLOWED },
	{ "user read, SMAP (for the kernel only)", X_URW, S_USER | S_SMAP, RD, ALLOWED },
	{ "user write, SMAP (for the kernel only)", X_URW, S_USER | S_SMAP, WR, ALLOWED },
	/* Kernel writes: read-only pages are read-only for the kernel with CR0.WP only. */
	{ "kernel write, read-only page, WP=0", X_P, 0, WR, ALLOWED },
	{ "kernel write, read-only page, WP=1", X_P, S_WP, WR, EC_P | EC_W },
	{ "kernel write, read-only user page, WP=0", X_P | X_US, 0, WR, ALLOWED },
	{ "kernel write, read-only user page, WP=1", X_P | X_US, S_WP, WR, EC_P | EC_W },
	{ "kernel read, supervisor page, everything on", X_P | X_RW,
	  S_WP | S_NXE | S_SMEP | S_SMAP, RD, ALLOWED },
	{ "kernel write, supervisor page, WP=1", X_P | X_RW, S_WP | S_SMAP, WR, ALLOWED },
	/* SMAP: the kernel reads and writes user pages only with RFLAGS.AC set. */
	{ "kernel read, user page, SMAP=0", X_URW, 0, RD, ALLOWED },
	{ "kernel read, user page, SMAP, AC=0", X_URW, S_SMAP, RD, EC_P },
	{ "kernel read, user page, SMAP, AC=1", X_URW, S_SMAP | S_AC, RD, ALLOWED },
	{ "kernel write, user page, SMAP, AC=0", X_URW, S_SMAP, WR, EC_P | EC_W },
	{ "kernel write, user page, SMAP, AC=1", X_URW, S_SMAP | S_AC, WR, ALLOWED },
	{ "kernel write, read-only user page, SMAP, AC=1, WP=0", X_P | X_US, S_SMAP | S_AC, WR,
	  ALLOWED },
	{ "kernel write, read-only user page, SMAP, AC=1, WP=1", X_P | X_US,
	  S_SMAP | S_AC | S_WP, WR, EC_P | EC_W },
	{ "kernel fetch, user page, SMAP, AC=0 (SMAP is for data)", X_URW, S_SMAP, FE, ALLOWED },
	/* SMEP: the kernel fetches from no user page, whatever RFLAGS.AC. */
	{ "kernel fetch, user page, SMEP=0", X_URW, 0, FE, ALLOWED },
	{ "kernel fetch, user page, SMEP", X_URW, S_SMEP, FE, EC_P | EC_I },
	{ "kernel fetch, user page, SMEP, AC=1", X_URW, S_SMEP | S_AC, FE, EC_P | EC_I },
	{ "kernel fetch, supervisor page, SMEP", X_P | X_RW, S_SMEP, FE, ALLOWED },
	{ "kernel read, user page, SMEP", X_URW, S_SMEP, RD, ALLOWED },
	/* XD: with NXE, no fetch; without, a reserved bit. */
	{ "kernel fetch, XD, NXE", X_URW | X_XD, S_NXE, FE, EC_P | EC_I },
	{ "user fetch, XD, NXE", X_URW | X_XD, S_USER | S_NXE, FE, EC_P | EC_U | EC_I },
	{ "kernel read, XD, NXE", X_URW | X_XD, S_NXE, RD, ALLOWED },
	{ "user write, XD, NXE", X_URW | X_XD, S_USER | S_NXE, WR, ALLOWED },
	{ "kernel fetch, NXE, no XD", X_URW, S_NXE, FE, ALLOWED },
	{ "kernel fetch, supervisor XD page, NXE, SMEP", X_P | X_RW | X_XD, S_NXE | S_SMEP, FE,
	  EC_P | EC_I },
	{ "kernel read, XD without NXE", X_URW | X_XD, 0, RD, EC_P | EC_RSVD },
	{ "kernel fetch, XD without NXE: no I/D", X_URW | X_XD, 0, FE, EC_P | EC_RSVD },
	{ "kernel fetch, XD without NXE, SMEP: I/D", X_P | X_RW | X_XD, S_SMEP, FE,
	  EC_P | EC_RSVD | EC_I },
	/* Not present: P=0; W/R, U/S and I/D still describe the access. */
	{ "kernel read, not present", X_RW | X_US, 0, RD, 0 },
	{ "user write, not present", X_RW | X_US, S_USER, WR, EC_W | EC_U },
	{ "user write, not present, WP", 0, S_USER | S_WP, WR, EC_W | EC_U },
	{ "kernel fetch, not present", X_RW | X_US, 0, FE, 0 },
	{ "kernel fetch, not present, NXE", X_RW | X_US, S_NXE, FE, EC_I },
	{ "user fetch, not present, SMEP", X_RW | X_US, S_USER | S_SMEP, FE, EC_U | EC_I },
	{ "not present: XD without NXE is not checked", X_XD, 0, RD, 0 },
};

static void set_mode(struct mkvm_paging *p, unsigned int mode)
{
	p->user = mode & S_USER;
	p->wp = mode & S_WP;
	p->nxe = mode & S_NXE;
	p->smep = mode & S_SMEP;
	p->smap = mode & S_SMAP;
	p->ac = mode & S_AC;
}

static void check_rights_row(enum mkvm_pt_format format, const struct rights_row *row,
			     int leaf_level, int level)
{
	struct mkvm_paging p = reset(format);
	struct chain c = map(&p, ADDR, leaf_level, leaf(&p, HPA, leaf_level));
	const char *what = say("%s, %d leaf, entry at level %d", row->what, leaf_level, level);

	p.pse = true;
	set_mode(&p, row->mode);
	put(&c, level, (get(&c, level) & ~X_RIGHTS) | row->entry);
	if (row->ec == ALLOWED)
		check_ok(what, &p, ADDR, row->access, at(&p, HPA, ADDR, leaf_level), leaf_level);
	else
		check_pf(what, &p, ADDR, row->access, row->ec);
}

/* Every rule, at every level of every x86 format, for every page size. */
TEST(x86_rights)
{
	static const enum mkvm_pt_format formats[] = { MKVM_PT_32, MKVM_PT_PAE, MKVM_PT_4L };
	unsigned int i, r;
	int leaf_level, level;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		const struct fmt *f = &fmts[formats[i]];

		for (r = 0; r < sizeof(rights_rows) / sizeof(rights_rows[0]); r++) {
			const struct rights_row *row = &rights_rows[r];

			/* No XD in 32-bit entries; NXE: see sdm_id_flag_32bit_ignores_nxe. */
			if (formats[i] == MKVM_PT_32 &&
			    ((row->entry & X_XD) || (row->mode & S_NXE)))
				continue;
			for (leaf_level = 1; leaf_level <= f->max_leaf; leaf_level++) {
				for (level = f->levels; level >= leaf_level; level--) {
					/* PAE PDPTEs have no rights (SDM 4.4.1). */
					if (formats[i] == MKVM_PT_PAE && level == 3)
						continue;
					check_rights_row(formats[i], row, leaf_level, level);
				}
			}
		}
	}
}

/* Rights of different levels combine; a failed translation beats a rights check (SDM 4.7). */
TEST(x86_rights_combine)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));

	/* A supervisor PDPTE over a read-only PDE over a user PTE. */
	put(&c, 3, (get(&c, 3) & ~X_US));
	put(&c, 2, (get(&c, 2) & ~X_RW));
	p.wp = true;
	check_ok("kernel read", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.user && !out.writable && out.executable, "user %d writable %d exec %d",
		    out.user, out.writable, out.executable);
	check_pf("kernel write", &p, ADDR, WR, EC_P | EC_W);
	p.user = true;
	check_pf("user read", &p, ADDR, RD, EC_P | EC_U);

	/* Reserved bit in the PTE under a supervisor PDPTE: RSVD, not a rights fault. */
	put(&c, 1, get(&c, 1) | BIT_ULL(51));
	check_pf("user read, reserved PTE", &p, ADDR, RD, EC_P | EC_RSVD | EC_U);
	/* Not-present PTE under a supervisor PDPTE: P=0. */
	put(&c, 1, 0);
	check_pf("user write, PTE not present", &p, ADDR, WR, EC_W | EC_U);
	/* The walk stops at the first bad entry: a reserved PDE over a missing PTE. */
	put(&c, 2, get(&c, 2) | X_XD);
	check_pf("user write, reserved PDE", &p, ADDR, WR, EC_P | EC_RSVD | EC_W | EC_U);
}

/* The walk's outputs: what the entries allow, for KVM_TRANSLATE. */
TEST(x86_outputs)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));

	check_ok("all allowed", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(out.writable && out.user && out.executable, "w %d u %d x %d", out.writable,
		    out.user, out.executable);
	/* A read leaves the leaf clean; a write makes it dirty, and the next read says so. */
	TEST_ASSERT(out.entries_writable && !out.dirty, "entries w %d dirty %d",
		    out.entries_writable, out.dirty);
	check_ok("all allowed, write", &p, ADDR, WR, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(out.dirty, "dirty %d", out.dirty);
	check_ok("all allowed, read after the write", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(out.dirty, "dirty %d", out.dirty);

	put(&c, 2, get(&c, 2) & ~X_RW);
	p.wp = true;
	check_ok("read-only PDE, WP", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.writable && out.user, "w %d u %d", out.writable, out.user);
	p.user = true;
	check_ok("read-only PDE, user", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.writable, "w %d", out.writable);
	p.user = false;
	p.wp = false;
	/* The kernel may write any page without CR0.WP. */
	check_ok("read-only PDE, kernel, WP=0", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(out.writable, "w %d", out.writable);
	/* ... though the entries themselves do not allow it (the shadow MMU asks). */
	TEST_ASSERT(!out.entries_writable, "entries w %d", out.entries_writable);

	put(&c, 4, get(&c, 4) & ~X_US);
	check_ok("supervisor PML4E", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.user && out.executable, "u %d x %d", out.user, out.executable);

	put(&c, 3, get(&c, 3) | X_XD);
	p.nxe = true;
	check_ok("XD PDPTE, NXE", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.executable, "x %d", out.executable);

	/* KVM_TRANSLATE: no rights checked, no accessed bits set; missing entries still fault. */
	p = reset(MKVM_PT_4L);
	c = map(&p, ADDR, 1, (leaf(&p, HPA, 1) & ~(X_US | X_RW)) | X_XD);
	p.user = p.wp = p.nxe = p.smap = true;
	check_ok("translate, user, supervisor read-only XD page", &p, ADDR, NOCHK | WR | FE,
		 at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.user && !out.writable && !out.executable, "u %d w %d x %d", out.user,
		    out.writable, out.executable);
	TEST_ASSERT_EQ(get(&c, 1), (leaf(&p, HPA, 1) & ~(X_US | X_RW)) | X_XD);
	TEST_ASSERT_EQ(get(&c, 4) & X_A, 0);
	p.user = false;
	check_pf("translate, not mapped", &p, 0x1000, NOCHK, 0);
	put(&c, 1, get(&c, 1) | BIT_ULL(50));
	check_pf("translate, reserved bit", &p, ADDR, NOCHK, EC_P | EC_RSVD);
}

/* ---- Accessed and dirty bits (SDM 4.8) ---- */

static void check_x86_ad(enum mkvm_pt_format format, int leaf_level)
{
	static const u32 accesses[] = { RD, WR, FE, NOCHK | RD, NOCHK | WR };
	const struct fmt *f = &fmts[format];
	unsigned int i;
	int level;

	for (i = 0; i < sizeof(accesses) / sizeof(accesses[0]); i++) {
		struct mkvm_paging p = reset(format);
		struct chain c = map(&p, ADDR, leaf_level, leaf(&p, HPA, leaf_level));
		u32 acc = accesses[i];
		u64 before[6];

		p.pse = true;
		p.nxe = format != MKVM_PT_32;
		for (level = f->levels; level >= leaf_level; level--)
			before[level] = get(&c, level);
		check_ok(say("A/D, %d leaf, access %#x", leaf_level, acc), &p, ADDR, acc,
			 at(&p, HPA, ADDR, leaf_level), leaf_level);
		for (level = f->levels; level >= leaf_level; level--) {
			u64 want = before[level];

			/* A on every entry used (not PAE PDPTEs: no A bit); D on a write's leaf. */
			if (!(acc & NOCHK) && !(format == MKVM_PT_PAE && level == 3))
				want |= X_A;
			if (!(acc & NOCHK) && (acc & WR) && level == leaf_level)
				want |= X_D;
			TEST_ASSERT(get(&c, level) == want,
				    "%s, %d leaf, access %#x: level %d is %#" PRIx64 ", expected %#"
				    PRIx64, f->name, leaf_level, acc, level, get(&c, level), want);
		}
	}

	/* Bits already set are not written again ("if it is not already set"). */
	{
		struct mkvm_paging p = reset(format);
		struct chain c = map(&p, ADDR, leaf_level,
				     leaf(&p, HPA, leaf_level) | X_A | X_D);

		p.pse = true;
		for (level = f->levels; level > leaf_level; level--)
			if (!(format == MKVM_PT_PAE && level == 3))
				put(&c, level, get(&c, level) | X_A);
		check_ok("A/D already set", &p, ADDR, WR, at(&p, HPA, ADDR, leaf_level),
			 leaf_level);
		TEST_ASSERT_EQ(cx.calls, 0);
	}

	/*
	 * A faulting access neither accesses nor writes the page: the leaf keeps
	 * its A and D, and no table entry gets D.  (Whether the processor sets
	 * the A bits of the tables above on a walk that faults, the SDM leaves
	 * open; not checked.)
	 */
	{
		struct mkvm_paging p = reset(format);
		u64 pte = leaf(&p, HPA, leaf_level) & ~X_RW;
		struct chain c = map(&p, ADDR, leaf_level, pte);

		p.pse = true;
		p.wp = true;
		check_pf("write to a read-only page", &p, ADDR, WR, EC_P | EC_W);
		TEST_ASSERT_EQ(get(&c, leaf_level), pte);
		for (level = f->levels; level > leaf_level; level--)
			TEST_ASSERT_EQ(get(&c, level) & ~X_A, table_rights(&p, level) |
				       (get(&c, level) & GENMASK_ULL(51, 12)));
	}
}

TEST(x86_accessed_dirty)
{
	static const enum mkvm_pt_format formats[] = {
		MKVM_PT_32, MKVM_PT_PAE, MKVM_PT_4L, MKVM_PT_5L,
	};
	unsigned int i;
	int leaf_level;

	for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		for (leaf_level = 1; leaf_level <= fmts[formats[i]].max_leaf; leaf_level++)
			check_x86_ad(formats[i], leaf_level);
}

/* ---- EPT (SDM 28.3) ---- */

TEST(ept_translate)
{
	struct mkvm_paging p = reset(MKVM_PT_EPT4);

	map(&p, 0x00007f1234567000ULL, 1, 0x300001000ULL | E_RWX | E_MT(6));
	map(&p, 0x0000012345600000ULL, 2, 0x3fe00000ULL | E_PS | E_RWX | E_MT(0));
	map(&p, 0x0000008040000000ULL, 3, 0x240000000ULL | E_PS | E_RWX | E_MT(6) | E_IPAT);
	check_ok("4 KiB page", &p, 0x00007f1234567abcULL, RD, 0x300001abcULL, 1);
	check_ok("2 MiB page", &p, 0x00000123456fffffULL, WR, 0x3fefffffULL, 2);
	check_ok("1 GiB page", &p, 0x0000008041234567ULL, FE, 0x241234567ULL, 3);
	check_violation("not mapped", &p, 0x0000000100000000ULL, WR, 0);
	TEST_ASSERT_EQ(fault.address, 0x0000000100000000ULL);

	p = reset(MKVM_PT_EPT5);
	map(&p, 0x01abcdef12345000ULL, 1, 0x300001000ULL | E_RWX | E_MT(6));
	map(&p, 0x0000008040000000ULL, 3, 0x240000000ULL | E_PS | E_RWX | E_MT(6));
	check_ok("EPT5 4 KiB page", &p, 0x01abcdef12345678ULL, RD, 0x300001678ULL, 1);
	check_ok("EPT5 1 GiB page", &p, 0x0000008041234567ULL, RD, 0x241234567ULL, 3);
	check_violation("EPT5 not mapped", &p, 0x01ac000000000000ULL, FE, 0);
}

/*
 * R, W and X of one entry (each level in turn, the others RWX), for each
 * access: a misconfiguration for W without R and for X alone without
 * execute-only support (28.3.3.1); else a violation for a missing right or
 * entry, with the access in qualification bits 0-2 and what the entries
 * allow (their AND; 0 for a missing entry) in bits 3-5 (28.3.3.2).
 */
static void check_ept_rights(bool xonly, int level, u64 rwx, u32 access)
{
	struct mkvm_paging p = reset(MKVM_PT_EPT4);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	const char *what = say("xonly %d, level %d, RWX %u, access %#x", xonly, level,
			       (unsigned int)rwx, access);
	u64 need = access & FE ? E_X : access & WR ? E_W : E_R;

	p.ept_xonly = xonly;
	put(&c, level, (get(&c, level) & ~E_RWX) | rwx);
	if (!rwx) {
		check_violation(what, &p, ADDR, access, 0);
	} else if ((rwx & (E_R | E_W)) == E_W || (rwx == E_X && !xonly)) {
		check_misconfig(what, &p, ADDR, access);
	} else if (rwx & need) {
		check_ok(what, &p, ADDR, access, at(&p, HPA, ADDR, 1), 1);
		TEST_ASSERT(out.writable == !!(rwx & E_W) && out.executable == !!(rwx & E_X),
			    "%s: writable %d executable %d", what, out.writable, out.executable);
	} else {
		check_violation(what, &p, ADDR, access, rwx);
	}
}

TEST(ept_rights)
{
	static const u32 accesses[] = { RD, WR, FE };
	int xonly, level;
	unsigned int rwx, i;

	for (xonly = 0; xonly <= 1; xonly++)
		for (level = 4; level >= 1; level--)
			for (rwx = 0; rwx <= 7; rwx++)
				for (i = 0; i < 3; i++)
					check_ept_rights(xonly, level, rwx, accesses[i]);
}

/* The qualification's bits 3-5 are the AND over every level. */
TEST(ept_rights_combine)
{
	struct mkvm_paging p = reset(MKVM_PT_EPT4);
	struct chain c = map(&p, ADDR, 1, (leaf(&p, HPA, 1) & ~E_RWX) | E_R | E_W);

	put(&c, 4, (get(&c, 4) & ~E_RWX) | E_R | E_X);
	check_ok("read", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(!out.writable && !out.executable, "w %d x %d", out.writable, out.executable);
	check_violation("write", &p, ADDR, WR, E_R);
	check_violation("fetch", &p, ADDR, FE, E_R);

	/* A PDE that is not present: bits 3-5 are 0, whatever the levels above allowed. */
	put(&c, 2, 0);
	check_violation("read, PDE not present", &p, ADDR, RD, 0);
}

/* Memory types 2, 3 and 7 are reserved in the entry that maps the page (28.3.3.1). */
TEST(ept_memory_types)
{
	unsigned int mt;
	int leaf_level;

	for (leaf_level = 1; leaf_level <= 3; leaf_level++) {
		for (mt = 0; mt <= 7; mt++) {
			struct mkvm_paging p = reset(MKVM_PT_EPT4);
			const char *what = say("%d leaf, memory type %u", leaf_level, mt);

			map(&p, ADDR, leaf_level,
			    (leaf(&p, HPA, leaf_level) & ~E_MT(7)) | E_MT(mt) | E_IPAT);
			if (mt == 2 || mt == 3 || mt == 7)
				check_misconfig(what, &p, ADDR, RD);
			else
				check_ok(what, &p, ADDR, RD, at(&p, HPA, ADDR, leaf_level),
					 leaf_level);
		}
	}
}

/*
 * Reserved bits (28.3.2): 7:3 of a PML4E and PML5E, 6:3 of a PDPTE or PDE
 * that points to a table (bit 7 there is the page size), 51:M everywhere,
 * 29:12 of a 1 GiB page and 20:12 of a 2 MiB page (bit 12: see
 * sdm_ept_large_page_bit12_reserved); ignored: 63:52, bit 7 of a PTE, 11:10
 * (no mode-based execute), 9 above the leaf.
 */
static void check_ept_reserved(enum mkvm_pt_format format)
{
	int levels = fmts[format].levels, leaf_level, level;
	unsigned int bit;

	for (leaf_level = 1; leaf_level <= 3; leaf_level++) {
		for (level = levels; level >= leaf_level; level--) {
			for (bit = 3; bit <= 63; bit++) {
				struct mkvm_paging p = reset(format);
				struct chain c = map(&p, ADDR, leaf_level,
						     leaf(&p, HPA, leaf_level));
				const char *what = say("%d leaf, level %d, bit %u", leaf_level,
						       level, bit);
				bool is_leaf = level == leaf_level, rsvd;

				/* Not the entry's memory type, PS or address bits. */
				if ((is_leaf && bit <= 7) || (level > 1 && bit == 7) ||
				    (bit >= fmts[format].shift[is_leaf ? level : 1] && bit < 46) ||
				    (is_leaf && level > 1 && bit == 12) || bit == 8)
					continue;
				if (bit >= 3 && bit <= 7)
					rsvd = true;	/* a table pointer's 6:3 or 7:3 */
				else if (bit >= 46 && bit <= 51)
					rsvd = true;
				else
					rsvd = is_leaf && level > 1 && bit >= 13 &&
					       bit < fmts[format].shift[level];
				put(&c, level, get(&c, level) | BIT_ULL(bit));
				if (rsvd)
					check_misconfig(what, &p, ADDR, RD);
				else
					check_ok(what, &p, ADDR, RD,
						 at(&p, HPA, ADDR, leaf_level), leaf_level);
			}
		}
	}
	/* Bit 7 of a PTE is ignored. */
	{
		struct mkvm_paging p = reset(format);

		map(&p, ADDR, 1, leaf(&p, HPA, 1) | E_PS);
		check_ok("PTE bit 7", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	}
	/* Bit 7 of a PML4E and a PML5E is reserved: no 512 GiB pages. */
	for (level = 4; level <= levels; level++) {
		struct mkvm_paging p = reset(format);
		struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));

		put(&c, level, get(&c, level) | E_PS);
		check_misconfig(say("PS at level %d", level), &p, ADDR, RD);
	}
}

TEST(ept4_reserved_bits)
{
	check_ept_reserved(MKVM_PT_EPT4);
}

TEST(ept5_reserved_bits)
{
	check_ept_reserved(MKVM_PT_EPT5);
}

/* A misconfigured entry is a misconfiguration even where the rights would not allow the access. */
TEST(ept_misconfig_before_violation)
{
	struct mkvm_paging p = reset(MKVM_PT_EPT4);
	struct chain c = map(&p, ADDR, 1, (leaf(&p, HPA, 1) & ~E_MT(7)) | E_MT(2));

	put(&c, 3, (get(&c, 3) & ~E_RWX) | E_R);
	check_misconfig("write, read-only PDPTE, memory type 2", &p, ADDR, WR);
	put(&c, 1, (leaf(&p, HPA, 1) & ~E_RWX) | E_W);
	check_misconfig("fetch, read-only PDPTE, write-only PTE", &p, ADDR, FE);
}

static void check_ept_ad(enum mkvm_pt_format format, bool ad, int leaf_level, u32 acc)
{
	const struct fmt *f = &fmts[format];
	struct mkvm_paging p = reset(format);
	struct chain c = map(&p, ADDR, leaf_level, leaf(&p, HPA, leaf_level));
	bool set = ad && !(acc & NOCHK);
	u64 before[6];
	int level;

	p.ad = ad;
	for (level = f->levels; level >= leaf_level; level--)
		before[level] = get(&c, level);
	check_ok(say("ad %d, %d leaf, access %#x", ad, leaf_level, acc), &p, ADDR, acc,
		 at(&p, HPA, ADDR, leaf_level), leaf_level);
	for (level = f->levels; level >= leaf_level; level--) {
		u64 want = before[level] | (set ? E_A : 0) |
			   (set && (acc & WR) && level == leaf_level ? E_D : 0);

		TEST_ASSERT(get(&c, level) == want,
			    "%s, ad %d, %d leaf, access %#x: level %d is %#" PRIx64 ", expected %#"
			    PRIx64, f->name, ad, leaf_level, acc, level, get(&c, level), want);
	}
}

/* With EPTP bit 6: A on every entry used, D on the leaf of a write (28.3.5). */
TEST(ept_accessed_dirty)
{
	static const u32 accesses[] = { RD, WR, FE, NOCHK | WR };
	unsigned int a;
	int ad, leaf_level;

	for (ad = 0; ad <= 1; ad++) {
		for (leaf_level = 1; leaf_level <= 3; leaf_level++) {
			for (a = 0; a < sizeof(accesses) / sizeof(accesses[0]); a++) {
				check_ept_ad(MKVM_PT_EPT4, ad, leaf_level, accesses[a]);
				check_ept_ad(MKVM_PT_EPT5, ad, leaf_level, accesses[a]);
			}
		}
	}

	/* A violation leaves the leaf's A and D alone. */
	{
		struct mkvm_paging p = reset(MKVM_PT_EPT4);
		u64 pte = (leaf(&p, HPA, 1) & ~E_RWX) | E_R;
		struct chain c = map(&p, ADDR, 1, pte);

		p.ad = true;
		check_violation("write to a read-only page", &p, ADDR, WR, E_R);
		TEST_ASSERT_EQ(get(&c, 1), pte);
	}
}

/* ---- Tables that cannot be read or written, and guests that race ---- */

/* A table outside memory reads as a missing entry. */
TEST(table_read_failure)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));

	put(&c, 3, OUTSIDE | X_URW);
	check_pf("PDPTE points outside memory", &p, ADDR, RD, 0);
	p.user = true;
	p.nxe = true;
	check_pf("PDPTE points outside memory, user write", &p, ADDR, WR, EC_W | EC_U);
	check_pf("PDPTE points outside memory, user fetch", &p, ADDR, FE, EC_U | EC_I);
	p.root = OUTSIDE;
	check_pf("root outside memory", &p, ADDR, WR, EC_W | EC_U);

	p = reset(MKVM_PT_32);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	put(&c, 2, OUTSIDE | X_URW);
	check_pf("32-bit PDE points outside memory", &p, ADDR, WR, EC_W);

	p = reset(MKVM_PT_PAE);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	put(&c, 3, OUTSIDE | X_P);
	check_pf("PAE PDPTE points outside memory", &p, ADDR, RD, 0);

	p = reset(MKVM_PT_EPT4);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	put(&c, 2, OUTSIDE | E_RWX);
	check_violation("EPT PDE points outside memory", &p, ADDR, WR, 0);
}

/* A guest changes an entry while the walker sets its A or D bit: the walk starts again. */
TEST(ad_race_retried)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	u64 pte = get(&c, 1);

	/* The guest sets a bit of its own (bit 9 is ignored by the processor). */
	cx.races = 1;
	cx.race_gpa = c.gpa[1];
	cx.race_flip = BIT_ULL(9);
	check_ok("write, PTE changed once", &p, ADDR, WR, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT_EQ(cx.races, 0);
	TEST_ASSERT_EQ(get(&c, 1), pte | BIT_ULL(9) | X_A | X_D);
	TEST_ASSERT_EQ(get(&c, 4) & X_A, X_A);

	/* The same at the top level. */
	p = reset(MKVM_PT_4L);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	cx.races = 1;
	cx.race_gpa = c.gpa[4];
	cx.race_flip = BIT_ULL(10);
	check_ok("read, PML4E changed once", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT_EQ(get(&c, 4) & (BIT_ULL(10) | X_A), BIT_ULL(10) | X_A);

	/* The guest makes the page read-only: the new walk sees it, and faults. */
	p = reset(MKVM_PT_4L);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	pte = get(&c, 1);
	p.wp = true;
	cx.races = 1;
	cx.race_gpa = c.gpa[1];
	cx.race_flip = X_RW;
	check_pf("write, PTE made read-only under the walk", &p, ADDR, WR, EC_P | EC_W);
	TEST_ASSERT_EQ(get(&c, 1), pte & ~X_RW);

	/* The guest removes the page: not present. */
	p = reset(MKVM_PT_32);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	cx.races = 1;
	cx.race_gpa = c.gpa[1];
	cx.race_flip = X_P;
	check_pf("32-bit read, PTE removed under the walk", &p, ADDR, RD, 0);

	/* EPT with A/D the same. */
	p = reset(MKVM_PT_EPT4);
	p.ad = true;
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	pte = get(&c, 1);
	cx.races = 1;
	cx.race_gpa = c.gpa[1];
	cx.race_flip = BIT_ULL(11);
	check_ok("EPT write, PTE changed once", &p, ADDR, WR, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT_EQ(get(&c, 1), pte | BIT_ULL(11) | E_A | E_D);
}

/* A guest that never stops changing the entry: the walker gives up with -EAGAIN. */
TEST(ad_race_forever)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	int r;

	cx.races = -1;
	cx.race_gpa = c.gpa[1];
	cx.race_flip = BIT_ULL(9);
	r = walk(&p, ADDR, WR);
	TEST_ASSERT(r == -EAGAIN, "returned %d, expected -EAGAIN", r);
	TEST_ASSERT(cx.calls > 1, "%u exchanges: no retry", cx.calls);
	TEST_ASSERT_EQ(get(&c, 1) & X_D, 0);

	p = reset(MKVM_PT_PAE);
	map(&p, ADDR, 1, leaf(&p, HPA, 1));
	cx.races = -1;
	cx.race_flip = BIT_ULL(9);
	r = walk(&p, ADDR, RD);
	TEST_ASSERT(r == -EAGAIN, "PAE: returned %d, expected -EAGAIN", r);
}

/*
 * An entry that cannot be written (a table in read-only memory): a #PF as
 * for a table outside memory (no SDM rule: the processor's A/D writes do not
 * fail), and for EPT a violation.
 */
TEST(ad_cmpxchg_efault)
{
	struct mkvm_paging p = reset(MKVM_PT_4L);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	u64 pte = get(&c, 1);

	cx.ro_page = c.gpa[1] / PAGE;
	p.user = true;
	check_pf("user write, read-only page table", &p, ADDR, WR, EC_W | EC_U);
	TEST_ASSERT_EQ(get(&c, 1), pte);

	p = reset(MKVM_PT_4L);
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	cx.ro_page = c.gpa[4] / PAGE;
	check_pf("kernel read, read-only PML4", &p, ADDR, RD, 0);

	/* Nothing to write: nothing to fail. */
	put(&c, 4, get(&c, 4) | X_A);
	check_ok("kernel read, read-only PML4 with A set", &p, ADDR, RD, at(&p, HPA, ADDR, 1), 1);

	p = reset(MKVM_PT_EPT4);
	p.ad = true;
	c = map(&p, ADDR, 1, leaf(&p, HPA, 1));
	cx.ro_page = c.gpa[1] / PAGE;
	check_fault("EPT write, read-only EPT page table", &p, ADDR, WR,
		    MKVM_FAULT_EPT_VIOLATION, ANY_EC);
}

/* ---- Where walk.c disagrees with the SDM: these assert the SDM ---- */

/*
 * SDM vol. 3 4.4.2 ("If the P flag of a PDE or a PTE is 1, bits
 * 62:MAXPHYADDR are reserved") and tables 4-8 to 4-11: with PAE paging, bits
 * 62:52 are reserved in PDEs and PTEs, and 63:M in PDPTEs; only 4-level
 * paging ignores 62:52.  walk.c reserves only 51:MAXPHYADDR there.
 */
TEST(sdm_pae_bits_62_52_reserved)
{
	unsigned int bit;
	int leaf_level, level;

	for (leaf_level = 1; leaf_level <= 2; leaf_level++) {
		for (level = 3; level >= leaf_level; level--) {
			for (bit = 52; bit <= 62; bit++) {
				struct mkvm_paging p = reset(MKVM_PT_PAE);
				struct chain c = map(&p, ADDR, leaf_level,
						     leaf(&p, HPA, leaf_level));

				p.nxe = true;
				put(&c, level, get(&c, level) | BIT_ULL(bit));
				check_rsvd(say("%d leaf, level %d, bit %u", leaf_level, level, bit),
					   &p, ADDR, RD);
			}
		}
	}
}

/*
 * SDM vol. 3 28.3.2, "EPT PDPTE that maps a 1-GByte page" (bits 29:12
 * reserved) and "EPT PDE that maps a 2-MByte page" (bits 20:12 reserved):
 * EPT has no PAT bit, so bit 12 of a large EPT page is reserved, an EPT
 * misconfiguration (28.3.3.1).  walk.c reserves 29:13 and 20:13 as for x86
 * entries, where bit 12 is PAT.
 */
TEST(sdm_ept_large_page_bit12_reserved)
{
	static const enum mkvm_pt_format formats[] = { MKVM_PT_EPT4, MKVM_PT_EPT5 };
	unsigned int i;
	int leaf_level;

	for (i = 0; i < 2; i++) {
		for (leaf_level = 2; leaf_level <= 3; leaf_level++) {
			struct mkvm_paging p = reset(formats[i]);

			map(&p, ADDR, leaf_level, leaf(&p, HPA, leaf_level) | BIT_ULL(12));
			check_misconfig(say("%d leaf, bit 12", leaf_level), &p, ADDR, RD);
		}
	}
}

/*
 * SDM vol. 3 4.7, I/D flag: set for an instruction fetch "if either
 * (a) CR4.SMEP = 1; or (b) both (i) CR4.PAE = 1 (PAE or 4-level paging) and
 * (ii) IA32_EFER.NXE = 1".  32-bit paging has CR4.PAE = 0: EFER.NXE alone
 * does not set it (nor does it allow XD there, 4.6.1).  walk.c sets I/D on
 * @nxe in every format.  (walk_guest.c passes nxe = false for 32-bit paging,
 * so only direct callers of mkvm_walk() see it.)
 */
TEST(sdm_id_flag_32bit_ignores_nxe)
{
	struct mkvm_paging p = reset(MKVM_PT_32);
	struct chain c = map(&p, ADDR, 1, leaf(&p, HPA, 1));

	p.nxe = true;
	check_ok("fetch, NXE has no effect", &p, ADDR, FE, at(&p, HPA, ADDR, 1), 1);
	TEST_ASSERT(out.executable, "executable %d", out.executable);
	put(&c, 1, 0);
	check_pf("kernel fetch, not present, NXE, no SMEP", &p, ADDR, FE, 0);
	p.user = true;
	put(&c, 1, leaf(&p, HPA, 1) & ~X_US);
	check_pf("user fetch, supervisor page, NXE, no SMEP", &p, ADDR, FE, EC_P | EC_U);
	p.smep = true;
	check_pf("user fetch, supervisor page, NXE, SMEP", &p, ADDR, FE, EC_P | EC_U | EC_I);
}
