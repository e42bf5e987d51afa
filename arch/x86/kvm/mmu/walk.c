// SPDX-License-Identifier: GPL-2.0
/*
 * The page-table walker: one walk for every table format the hypervisor
 * meets, as the processor would do it for the same access:
 *
 * - each format is a description: levels, entry size, index width per
 *   level, where a PS bit maps a large page, and whether the entries are
 *   x86 ones (P, R/W, U/S, XD) or EPT ones (R, W, X) (SDM vol. 3 4.3-4.5,
 *   28.3.2; APM vol. 2 5.2-5.3);
 * - entries with reserved bits set fault with RSVD, or are EPT
 *   misconfigurations (SDM 4.7, 28.3.3.1);
 * - the rights of all levels combine (SDM 4.6, APM 5.6): U/S and R/W must
 *   allow the access at every level, CR0.WP makes read-only pages read-only
 *   for the kernel too, XD forbids fetches, SMEP forbids the kernel to fetch
 *   from user pages and SMAP to read or write them unless RFLAGS.AC is set;
 *   EPT's R, W and X combine the same way (SDM 28.3.3.2);
 * - the accessed bit of every entry used and the dirty bit of the leaf are
 *   set as the processor sets them (SDM 4.8, 28.3.5; APM 5.4.2), with a
 *   compare-and-exchange so that a concurrent change of the entry is never
 *   lost: the walk starts again instead;
 * - a failure says what to raise: the #PF and its error code, or the EPT
 *   violation's qualification bits.
 *
 * It knows nothing of vCPUs: the caller says the paging state and gives
 * the callbacks that read and update entries, so a nested walk can
 * translate every table address through another walk, and the unit tests
 * build it in userspace (tests/unit/walk_test.c).
 */
#include <minikvm/walk.h>

#define PF_VEC		14	/* #PF */
#define AD_RETRIES	4	/* walks again when an entry changed under the A/D update */

/* x86 entries (SDM vol. 3 4.3-4.5). */
#define PTE_P		BIT_ULL(0)
#define PTE_RW		BIT_ULL(1)
#define PTE_US		BIT_ULL(2)
#define PTE_A		BIT_ULL(5)
#define PTE_D		BIT_ULL(6)
#define PTE_PS		BIT_ULL(7)
#define PTE_G		BIT_ULL(8)
#define PTE_XD		BIT_ULL(63)
#define PTE_ADDR_8	GENMASK_ULL(51, 12)
#define PTE_ADDR_4	GENMASK_ULL(31, 12)
/*
 * PAE PDPTEs have no rights and no PS (SDM 4.4.1).  Bit 5 is reserved too in
 * the SDM, but QEMU's emulated AMD CPU sets it as an accessed bit when it
 * walks them, and a processor that loads PDPTEs with CR3 never looks again:
 * a guest's own walk never faults on it, so neither does this one.
 */
#define PDPTE_RSVD	(GENMASK_ULL(8, 6) | GENMASK_ULL(2, 1) | BIT_ULL(63))

/* EPT entries (SDM vol. 3 28.3.2). */
#define EPT_R		BIT_ULL(0)
#define EPT_W		BIT_ULL(1)
#define EPT_X		BIT_ULL(2)
#define EPT_RWX		(EPT_R | EPT_W | EPT_X)
#define EPT_MEMTYPE	GENMASK_ULL(5, 3)
#define EPT_A		BIT_ULL(8)
#define EPT_D		BIT_ULL(9)
/* EPT violation qualification (SDM 28.3.3.2, table 28-7): access, then rights. */
#define EPTQ_READ	BIT(0)
#define EPTQ_WRITE	BIT(1)
#define EPTQ_FETCH	BIT(2)
#define EPTQ_RIGHTS_SHIFT 3

struct walk_format {
	u8 levels;
	u8 pte_bytes;
	u8 index_bits[6];	/* per level, 1-based; PAE's level 3 is the 2-bit PDPT index */
	u8 large_levels;	/* BIT(level): a PS bit there maps a large page */
	bool ept;
};

static const struct walk_format formats[] = {
	[MKVM_PT_32] = { 2, 4, { 0, 10, 10 }, BIT(2), false },
	[MKVM_PT_PAE] = { 3, 8, { 0, 9, 9, 2 }, BIT(2), false },
	[MKVM_PT_4L] = { 4, 8, { 0, 9, 9, 9, 9 }, BIT(2) | BIT(3), false },
	[MKVM_PT_5L] = { 5, 8, { 0, 9, 9, 9, 9, 9 }, BIT(2) | BIT(3), false },
	[MKVM_PT_EPT4] = { 4, 8, { 0, 9, 9, 9, 9 }, BIT(2) | BIT(3), true },
	[MKVM_PT_EPT5] = { 5, 8, { 0, 9, 9, 9, 9, 9 }, BIT(2) | BIT(3), true },
};

/* The walk of one address: the state, and the entries it used. */
struct walk {
	const struct mkvm_paging *p;
	const struct walk_format *f;
	const struct mkvm_walk_env *env;
	u64 addr;
	u32 access;
	u64 pte_gpa[6], pte[6];
	int leaf;
	/* The rights all levels so far allow. */
	bool user, writable, executable, readable;
};

static unsigned int level_shift(const struct walk_format *f, int level)
{
	unsigned int shift = 12;
	int l;

	for (l = 1; l < level; l++)
		shift += f->index_bits[l];
	return shift;
}

static bool is_pae_pdpte(const struct walk *w, int level)
{
	return w->p->format == MKVM_PT_PAE && level == 3;
}

static bool present(const struct walk *w, u64 pte)
{
	return w->f->ept ? pte & EPT_RWX : pte & PTE_P;
}

static bool is_leaf(const struct walk *w, int level, u64 pte)
{
	if (level == 1)
		return true;
	if (!(w->f->large_levels & BIT(level)) || !(pte & PTE_PS))
		return false;
	return w->p->format != MKVM_PT_32 || w->p->pse;	/* 4 MiB pages need CR4.PSE */
}

/*
 * Address bits the entries may not have: up to bit 51 in 4- and 5-level
 * paging and EPT, which leave 62:52 to software; up to bit 62 in PAE
 * (SDM vol. 3 4.4.2, tables 4-8 to 4-11).
 */
static u64 above_maxphy(const struct walk *w)
{
	unsigned int top = w->p->format == MKVM_PT_PAE ? 62 : 51;

	return w->p->maxphyaddr > top ? 0 : GENMASK_ULL(top, w->p->maxphyaddr);
}

/* Bits that must be 0 in a present entry at @level (SDM 4.3-4.5, "reserved"). */
static u64 reserved_bits(const struct walk *w, int level, u64 pte)
{
	bool leaf = is_leaf(w, level, pte);
	u64 rsvd = above_maxphy(w);

	if (w->p->format == MKVM_PT_32) {
		if (level != 2 || !leaf)
			return 0;
		/* A 4 MiB page: bit 21, and the PSE-36 address bits 13-20 beyond MAXPHYADDR. */
		return BIT_ULL(21) | ((rsvd >> 32 << 13) & GENMASK_ULL(20, 13));
	}
	if (is_pae_pdpte(w, level))
		return PDPTE_RSVD | rsvd;
	if (w->f->ept) {
		/* PML4E and PML5E: 7:3; other tables: 6:3 (SDM 28.3.2, tables 28-1 to 28-6). */
		if (level >= 4)
			rsvd |= GENMASK_ULL(7, 3);
		else if (!leaf)
			rsvd |= GENMASK_ULL(6, 3);
	} else {
		if (!w->p->nxe)
			rsvd |= PTE_XD;
		/* PML4 and PML5 entries have no PS bit. */
		if (level >= 4)
			rsvd |= PTE_PS;
	}
	/*
	 * Between the PAT bit (12) and the large page's own address bits; EPT
	 * has no PAT bit, so bit 12 too (SDM 28.3.2).
	 */
	if (level > 1 && leaf)
		rsvd |= GENMASK_ULL(level_shift(w->f, level) - 1, w->f->ept ? 12 : 13);
	return rsvd;
}

/* An EPT entry the processor cannot use at all (SDM 28.3.3.1). */
static bool ept_misconfigured(const struct walk *w, int level, u64 pte)
{
	u64 mt = (pte & EPT_MEMTYPE) >> 3;

	if ((pte & (EPT_R | EPT_W)) == EPT_W)
		return true;
	if ((pte & EPT_RWX) == EPT_X && !w->p->ept_xonly)
		return true;
	/* Memory types 2, 3 and 7 are reserved, in a leaf. */
	return is_leaf(w, level, pte) && (mt == 2 || mt == 3 || mt == 7);
}

static u64 leaf_gpa(const struct walk *w, int level, u64 pte)
{
	u64 size = 1ULL << level_shift(w->f, level);
	u64 base;

	if (w->p->format == MKVM_PT_32) {
		base = pte & PTE_ADDR_4 & ~(size - 1);
		/* PSE-36: bits 13-20 of a 4 MiB entry are address bits 32-39. */
		if (level == 2)
			base |= ((pte >> 13) & 0xff) << 32;
	} else {
		base = pte & PTE_ADDR_8 & ~(size - 1);
	}
	return base | (w->addr & (size - 1));
}

static void take_rights(struct walk *w, int level, u64 pte)
{
	if (w->f->ept) {
		w->readable &= !!(pte & EPT_R);
		w->writable &= !!(pte & EPT_W);
		w->executable &= !!(pte & EPT_X);
	} else if (!is_pae_pdpte(w, level)) {
		w->user &= !!(pte & PTE_US);
		w->writable &= !!(pte & PTE_RW);
		w->executable &= !(w->p->nxe && (pte & PTE_XD));
	}
}

/* Do the rights the levels gave allow the access?  (SDM 4.6.1, APM 5.6) */
static bool allowed(const struct walk *w)
{
	const struct mkvm_paging *p = w->p;
	bool write = w->access & MKVM_ACC_WRITE, fetch = w->access & MKVM_ACC_FETCH;

	if (w->f->ept)
		return fetch ? w->executable : write ? w->writable : w->readable;
	if (p->user && !w->user)
		return false;
	if (write && !w->writable && (p->user || p->wp))
		return false;
	if (fetch)
		return w->executable && (p->user || !w->user || !p->smep);
	/* SMAP: the kernel touches user pages only with RFLAGS.AC set. */
	return p->user || !w->user || !p->smap || p->ac;
}

static int fail(const struct walk *w, struct mkvm_fault *fault, bool prot, bool rsvd)
{
	const struct mkvm_paging *p = w->p;
	u32 ec;

	fault->address = w->addr;
	if (w->f->ept) {
		ec = w->access & MKVM_ACC_FETCH ? EPTQ_FETCH :
		     w->access & MKVM_ACC_WRITE ? EPTQ_WRITE : EPTQ_READ;
		ec |= (w->readable ? EPT_R : 0) << EPTQ_RIGHTS_SHIFT |
		      (w->writable ? EPT_W : 0) << EPTQ_RIGHTS_SHIFT |
		      (w->executable ? EPT_X : 0) << EPTQ_RIGHTS_SHIFT;
		fault->vector = rsvd ? MKVM_FAULT_EPT_MISCONFIG : MKVM_FAULT_EPT_VIOLATION;
		fault->error_code = rsvd ? 0 : ec;
		return -EFAULT;
	}
	ec = (w->access & MKVM_ACC_WRITE) | (p->user ? MKVM_PF_USER : 0);
	/* The I/D bit: with SMEP, or where entries have XD and NXE is on (SDM 4.7). */
	if ((w->access & MKVM_ACC_FETCH) &&
	    (p->smep || (p->nxe && p->format != MKVM_PT_32)))
		ec |= MKVM_PF_FETCH;
	if (prot || rsvd)
		ec |= MKVM_PF_PROT;
	if (rsvd)
		ec |= MKVM_PF_RSVD;
	fault->vector = PF_VEC;
	fault->error_code = ec;
	return -EFAULT;
}

/* Accessed on every level used, top down; dirty on the leaf of a write. */
static int set_accessed_dirty(struct walk *w, struct mkvm_fault *fault)
{
	u64 a = w->f->ept ? EPT_A : PTE_A, d = w->f->ept ? EPT_D : PTE_D;
	int level, r;

	for (level = w->f->levels; level >= w->leaf; level--) {
		u64 bits = a, old = w->pte[level];

		if (is_pae_pdpte(w, level))
			continue;
		if (level == w->leaf && (w->access & MKVM_ACC_WRITE))
			bits |= d;
		if ((old & bits) == bits)
			continue;
		r = w->env->cmpxchg_pte(w->env->opaque, w->pte_gpa[level], old, old | bits,
					w->f->pte_bytes);
		/* Tables in read-only memory (a ROM) keep their bits, as on KVM. */
		if (r == -EROFS)
			continue;
		if (r == -EAGAIN)
			return r;
		/* A table in read-only or no memory: as for a missing one. */
		if (r)
			return fail(w, fault, false, false);
	}
	return 0;
}

static int walk_once(struct walk *w, struct mkvm_walk *out, struct mkvm_fault *fault)
{
	const struct walk_format *f = w->f;
	u64 table = w->p->root, pte = 0;
	int level;

	w->user = w->writable = w->executable = w->readable = true;
	for (level = f->levels; level >= 1; level--) {
		unsigned int shift = level_shift(f, level);
		u64 idx = (w->addr >> shift) & ((1ULL << f->index_bits[level]) - 1);
		u64 gpa = table + idx * f->pte_bytes;

		pte = 0;
		/* A table outside guest memory reads as not present, as on KVM. */
		if (w->env->read_pte(w->env->opaque, gpa, &pte, f->pte_bytes) ||
		    !present(w, pte)) {
			take_rights(w, level, 0);
			return fail(w, fault, false, false);
		}
		if ((pte & reserved_bits(w, level, pte)) ||
		    (f->ept && ept_misconfigured(w, level, pte)))
			return fail(w, fault, false, true);
		w->pte_gpa[level] = gpa;
		w->pte[level] = pte;
		take_rights(w, level, pte);
		if (is_leaf(w, level, pte))
			break;
		table = pte & (f->pte_bytes == 4 ? PTE_ADDR_4 : PTE_ADDR_8);
	}
	w->leaf = level;

	if (!(w->access & MKVM_ACC_NO_CHECK) && !allowed(w))
		return fail(w, fault, true, false);
	*out = (struct mkvm_walk){
		.gpa = leaf_gpa(w, level, pte), .level = level,
		.user = w->user, .executable = w->executable,
		.writable = w->writable || (!f->ept && !w->p->wp && !w->p->user),
		.entries_writable = w->writable,
		.dirty = (pte & (f->ept ? EPT_D : PTE_D)) || (w->access & MKVM_ACC_WRITE),
		.global = !f->ept && (pte & PTE_G),
	};
	if ((w->access & MKVM_ACC_NO_CHECK) || (f->ept && !w->p->ad))
		return 0;
	return set_accessed_dirty(w, fault);
}

/**
 * mkvm_walk() - translate an address through one format's tables
 * @p: the paging state
 * @env: where the tables are read and updated
 * @addr: the address (linear, or guest-physical for NPT and EPT); outside
 *	4-level and 5-level paging only its low 32 bits count
 * @access: MKVM_ACC_* bits; @p says whether it is a user access
 * @w: the translation
 * @fault: on -EFAULT, what to raise instead
 *
 * Return: 0; -EFAULT when the access must take @fault; -EAGAIN when the
 * entries kept changing under the walk: let the access be tried again.
 */
int mkvm_walk(const struct mkvm_paging *p, const struct mkvm_walk_env *env, u64 addr,
	      u32 access, struct mkvm_walk *w, struct mkvm_fault *fault)
{
	struct walk wk = { .p = p, .env = env, .addr = addr, .access = access };
	int i, r = -EAGAIN;

	if ((unsigned int)p->format >= sizeof(formats) / sizeof(formats[0]))
		return -EINVAL;
	wk.f = &formats[p->format];
	if (p->format == MKVM_PT_32 || p->format == MKVM_PT_PAE)
		wk.addr = (u32)addr;
	for (i = 0; i < AD_RETRIES && r == -EAGAIN; i++)
		r = walk_once(&wk, w, fault);
	return r;
}
