// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page-table walker.  It translates a linear address through the
 * guest's own page tables as the processor would for the same access:
 *
 * - every paging format is one description (levels, entry size, index width
 *   per level, where a PS bit maps a large page): 32-bit, PAE, 4-level and
 *   5-level (SDM vol. 3 4.3-4.5, APM vol. 2 5.2-5.3);
 * - entries with reserved bits set fault with RSVD (SDM 4.7);
 * - the rights of all levels combine (SDM 4.6, APM 5.6): U/S and R/W must
 *   allow the access at every level, CR0.WP makes read-only pages read-only
 *   for the kernel too, XD forbids fetches, SMEP forbids the kernel to fetch
 *   from user pages and SMAP to read or write them unless RFLAGS.AC is set;
 * - the accessed bit of every entry used and the dirty bit of the leaf are
 *   set as the processor sets them (SDM 4.8, APM 5.4.2), atomically, so a
 *   guest changing an entry at the same time loses nothing;
 * - a failure says which #PF to raise, with its error code.
 *
 * The hardware checked all of this for the access behind a nested page
 * fault, but not for the instructions minikvm completes from an intercept
 * (INS and OUTS): the APM checks intercepts before memory faults.  Those
 * accesses must not let a guest user reach what the guest kernel protects
 * (CVE-2010-0298's class).
 */
#include <linux/uaccess.h>
#include <asm/processor-flags.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>
#include <minikvm/walk.h>

struct walk_format {
	u8 levels;
	u8 pte_bytes;
	u8 index_bits[6];	/* per level, 1-based; PAE's level 3 is the 2-bit PDPT index */
	u8 large_levels;	/* BIT(level): a PS bit there maps a large page */
};

static const struct walk_format fmt_32 = { 2, 4, { 0, 10, 10 }, BIT(2) };
static const struct walk_format fmt_pae = { 3, 8, { 0, 9, 9, 2 }, BIT(2) };
static const struct walk_format fmt_4l = { 4, 8, { 0, 9, 9, 9, 9 }, BIT(2) | BIT(3) };
static const struct walk_format fmt_5l = { 5, 8, { 0, 9, 9, 9, 9, 9 }, BIT(2) | BIT(3) };

#define PTE_ADDR_8	GENMASK_ULL(51, 12)
#define PTE_ADDR_4	GENMASK_ULL(31, 12)
/* PAE PDPTEs have no rights, no accessed bit and no PS (SDM 4.4.1). */
#define PDPTE_RSVD	(GENMASK_ULL(8, 5) | GENMASK_ULL(2, 1) | BIT_ULL(63))
/* Retries when the guest changes an entry under the accessed/dirty update. */
#define AD_RETRIES	4

struct walk_ctx {
	const struct walk_format *f;
	u64 above_maxphy;	/* address bits the guest cannot have */
	bool nxe, wp, smep, smap, pse, ac, user;
	int as;
	u64 pte_gpa[6];
	u64 pte[6];
};

static bool is_pae_pdpte(const struct walk_ctx *c, int level)
{
	return c->f == &fmt_pae && level == 3;
}

static bool is_leaf(const struct walk_ctx *c, int level, u64 pte)
{
	if (level == 1)
		return true;
	if (!(c->f->large_levels & BIT(level)) || !(pte & _PAGE_PSE))
		return false;
	return c->f != &fmt_32 || c->pse;	/* 4 MiB pages need CR4.PSE */
}

/* Bits that must be 0 in an entry at @level (SDM 4.3-4.5, "reserved"). */
static u64 reserved_bits(const struct walk_ctx *c, int level, u64 pte)
{
	unsigned int shift = PAGE_SHIFT;
	u64 rsvd;
	int l;

	if (c->f == &fmt_32) {
		if (level != 2 || !is_leaf(c, level, pte))
			return 0;
		/* A 4 MiB page: bit 21 and the high address bits 13-20 beyond MAXPHYADDR. */
		return BIT_ULL(21) | ((c->above_maxphy >> 32 << 13) & GENMASK_ULL(20, 13));
	}
	if (is_pae_pdpte(c, level))
		return PDPTE_RSVD | (c->above_maxphy & PTE_ADDR_8);
	rsvd = c->above_maxphy & PTE_ADDR_8;
	if (!c->nxe)
		rsvd |= BIT_ULL(63);
	/* PML4 and PML5 entries have no PS bit. */
	if (level >= 4)
		rsvd |= _PAGE_PSE;
	else if (level > 1 && is_leaf(c, level, pte)) {
		for (l = 1; l < level; l++)
			shift += c->f->index_bits[l];
		/* Between the PAT bit (12) and the page's own address bits. */
		rsvd |= GENMASK_ULL(shift - 1, 13);
	}
	return rsvd;
}

static u64 leaf_gpa(const struct walk_ctx *c, int level, u64 pte, u64 la)
{
	unsigned int shift = PAGE_SHIFT;
	u64 size;
	int l;

	for (l = 1; l < level; l++)
		shift += c->f->index_bits[l];
	size = 1ULL << shift;
	if (c->f == &fmt_32) {
		u64 base = pte & PTE_ADDR_4 & ~(size - 1);

		/* PSE-36: bits 13-20 of a 4 MiB entry are address bits 32-39. */
		if (level == 2)
			base |= ((pte >> 13) & 0xff) << 32;
		return base | (la & (size - 1));
	}
	return (pte & PTE_ADDR_8 & ~(size - 1)) | (la & (size - 1));
}

static int read_pte(struct mkvm_vcpu *vcpu, struct walk_ctx *c, u64 gpa, u64 *pte)
{
	*pte = 0;
	return mkvm_guest_phys_as(vcpu, c->as, gpa, pte, c->f->pte_bytes, false);
}

/*
 * Set @bits in the entry at @gpa if it still holds @old: 0 when done or not
 * needed, -EAGAIN when the guest changed it meanwhile, another errno when
 * the table is not writable guest memory.
 */
static int set_pte_bits(struct mkvm_vcpu *vcpu, struct walk_ctx *c, u64 gpa, u64 old, u64 bits)
{
	void __user *hva;
	int r;

	if ((old & bits) == bits)
		return 0;
	hva = mkvm_gpa_hva(vcpu, c->as, gpa, true);
	if (!hva || !access_ok(hva, c->f->pte_bytes))
		return -EFAULT;
	if (c->f->pte_bytes == 4) {
		u32 o = old;

		r = __try_cmpxchg_user((u32 __user *)hva, &o, (u32)(old | bits), ad32_fault);
	} else {
		r = __try_cmpxchg_user((u64 __user *)hva, &old, old | bits, ad64_fault);
	}
	return r < 0 ? r : r ? -EAGAIN : 0;
}

static void pf(struct mkvm_fault *fault, u64 la, u32 error_code)
{
	*fault = (struct mkvm_fault){ .vector = PF_VECTOR, .error_code = error_code,
				      .address = la };
}

/* Would the rights the levels gave allow @access?  (SDM 4.6.1, APM 5.6) */
static bool allowed(const struct walk_ctx *c, u32 access, bool user_page, bool writable, bool nx)
{
	if (c->user && !user_page)
		return false;
	if (access & MKVM_ACC_WRITE && !writable && (c->user || c->wp))
		return false;
	if (access & MKVM_ACC_FETCH)
		return !nx && (c->user || !user_page || !c->smep);
	/* SMAP: the kernel touches user pages only with RFLAGS.AC set. */
	return c->user || !user_page || !c->smap || c->ac;
}

static int walk_once(struct mkvm_vcpu *vcpu, struct walk_ctx *c, u64 table, u64 la,
		     u32 access, struct mkvm_walk *w, struct mkvm_fault *fault)
{
	const struct walk_format *f = c->f;
	bool user_page = true, writable = true, nx = false;
	u32 ec = (access & (MKVM_ACC_WRITE | MKVM_ACC_FETCH)) | (c->user ? X86_PF_USER : 0);
	unsigned int shift = PAGE_SHIFT;
	int level, leaf = 1, r;
	u64 pte = 0;

	/* The I/D bit is only reported where fetches can fault (SDM 4.7). */
	if (!c->nxe && !c->smep)
		ec &= ~X86_PF_INSTR;
	for (level = 1; level < f->levels; level++)
		shift += f->index_bits[level];
	for (level = f->levels; level >= 1; level--) {
		u64 idx = (la >> shift) & ((1ULL << f->index_bits[level]) - 1);
		u64 gpa = table + idx * f->pte_bytes;

		/* A table outside guest memory reads as not present, as on KVM. */
		if (read_pte(vcpu, c, gpa, &pte) || !(pte & _PAGE_PRESENT)) {
			pf(fault, la, ec);
			return -EFAULT;
		}
		if (pte & reserved_bits(c, level, pte)) {
			pf(fault, la, ec | X86_PF_PROT | X86_PF_RSVD);
			return -EFAULT;
		}
		c->pte_gpa[level] = gpa;
		c->pte[level] = pte;
		if (!is_pae_pdpte(c, level)) {
			user_page &= !!(pte & _PAGE_USER);
			writable &= !!(pte & _PAGE_RW);
			nx |= c->nxe && (pte & _PAGE_NX);
		}
		if (is_leaf(c, level, pte)) {
			leaf = level;
			break;
		}
		table = pte & (f->pte_bytes == 4 ? PTE_ADDR_4 : PTE_ADDR_8);
		if (level > 1)
			shift -= f->index_bits[level - 1];
	}

	if (!(access & MKVM_ACC_NO_CHECK) && !allowed(c, access, user_page, writable, nx)) {
		pf(fault, la, ec | X86_PF_PROT);
		return -EFAULT;
	}
	w->gpa = leaf_gpa(c, leaf, pte, la);
	w->user = user_page;
	w->writable = writable || (!c->wp && !c->user);
	if (access & MKVM_ACC_NO_CHECK)
		return 0;

	/* Accessed on every level used, top down; dirty on the leaf of a write. */
	for (level = f->levels; level >= leaf; level--) {
		u64 bits = _PAGE_ACCESSED;

		if (is_pae_pdpte(c, level))
			continue;
		if (level == leaf && (access & MKVM_ACC_WRITE))
			bits |= _PAGE_DIRTY;
		r = set_pte_bits(vcpu, c, c->pte_gpa[level], c->pte[level], bits);
		if (r == -EFAULT) {
			/* A table in read-only or no memory: as for a missing one. */
			pf(fault, la, ec);
			return -EFAULT;
		}
		if (r)
			return r;
	}
	return 0;
}

/**
 * mkvm_walk_gva() - translate a linear address as the guest's access would
 * @vcpu: the vCPU, with slots_sem held
 * @s: its special registers (CR0, CR3, CR4, EFER, SS for the CPL)
 * @la: the linear address (truncated to 32 bits outside long mode)
 * @access: MKVM_ACC_* bits; the CPL says whether it is a user access
 * @w: the translation
 * @fault: on -EFAULT, the #PF to raise
 *
 * Return: 0; -EFAULT when the guest must take @fault; -EAGAIN when the
 * guest kept changing the entries: leave the instruction to run again.
 */
int mkvm_walk_gva(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, u32 access,
		  struct mkvm_walk *w, struct mkvm_fault *fault)
{
	struct walk_ctx c = {
		.as = mkvm_vcpu_as(vcpu),
		.above_maxphy = GENMASK_ULL(63, mkvm_guest_maxphyaddr(vcpu)),
		.nxe = !!(s->efer & EFER_NX),
		.wp = !!(s->cr0 & X86_CR0_WP),
		.smep = !!(s->cr4 & X86_CR4_SMEP),
		.smap = !!(s->cr4 & X86_CR4_SMAP),
		.pse = !!(s->cr4 & X86_CR4_PSE),
		.ac = !!(vcpu->arch.rflags & X86_EFLAGS_AC),
		.user = mkvm_x86->get_cpl(vcpu) == 3,
	};
	u64 table;
	int i, r;

	if (!(s->cr0 & X86_CR0_PG)) {
		*w = (struct mkvm_walk){ .gpa = la, .writable = true, .user = true };
		return 0;
	}
	if (s->efer & EFER_LMA) {
		c.f = (s->cr4 & X86_CR4_LA57) ? &fmt_5l : &fmt_4l;
		table = s->cr3 & PTE_ADDR_8;
	} else if (s->cr4 & X86_CR4_PAE) {
		c.f = &fmt_pae;
		table = s->cr3 & 0xffffffe0;	/* the PDPT is 32-byte aligned */
		la = (u32)la;
	} else {
		c.f = &fmt_32;
		table = s->cr3 & PTE_ADDR_4;
		la = (u32)la;
		c.nxe = false;		/* 32-bit entries have no XD bit */
	}
	for (i = 0; i < AD_RETRIES; i++) {
		r = walk_once(vcpu, &c, table, la, access, w, fault);
		if (r != -EAGAIN)
			return r;
	}
	return -EAGAIN;
}

/**
 * mkvm_translate_ioctl() - KVM_TRANSLATE: a linear address of the vCPU, for debuggers
 * @vcpu: the vCPU
 * @argp: struct kvm_translation
 *
 * As on KVM: the translation a kernel read would use, with "writeable" set
 * and "usermode" clear whatever the entries say, and an invalid address
 * for "valid" = 0.  Nothing in the guest's tables is changed.
 *
 * Return: 0, or -EFAULT for @argp.
 */
int mkvm_translate_ioctl(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_translation tr;
	struct mkvm_fault fault;
	struct kvm_sregs s;
	struct mkvm_walk w;
	int r;

	if (copy_from_user(&tr, argp, sizeof(tr)))
		return -EFAULT;
	mkvm_x86->get_sregs(vcpu, &s);
	down_read(&vcpu->vm->slots_sem);
	r = mkvm_walk_gva(vcpu, &s, tr.linear_address, MKVM_ACC_NO_CHECK, &w, &fault);
	up_read(&vcpu->vm->slots_sem);
	tr.physical_address = r ? ~0ULL : w.gpa;
	tr.valid = !r;
	tr.writeable = 1;
	tr.usermode = 0;
	return copy_to_user(argp, &tr, sizeof(tr)) ? -EFAULT : 0;
}

/**
 * mkvm_inject_fault() - raise the exception an emulated access ran into
 * @vcpu: the vCPU
 * @fault: the fault, a #PF with its address or a #GP/#SS with its error code
 */
void mkvm_inject_fault(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault)
{
	if (fault->vector == PF_VECTOR)
		mkvm_queue_exception_payload(vcpu, PF_VECTOR, true, fault->error_code,
					     fault->address);
	else
		mkvm_queue_exception(vcpu, fault->vector, true, fault->error_code);
}
