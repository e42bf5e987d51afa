// SPDX-License-Identifier: GPL-2.0
/*
 * The shadow MMU (npt=0): the guest runs on tables minikvm builds from its
 * own, one translation at a time.  Each vCPU's shadow is a software TLB:
 *
 *  - A #PF exit walks the guest's tables (walk.c) as the faulting access
 *    would, setting their accessed and dirty bits.  A fault there is the
 *    guest's; otherwise the page is mapped, 4 KiB at a time, with the rights
 *    the walk gave, and writable only once the guest's dirty bit is set, so
 *    that the first write comes back to set it (SDM vol. 3 4.8).
 *  - It forgets translations when the processor's TLB would: INVLPG, MOV
 *    to CR3 (all but global pages), paging-mode changes in CR0, CR4 and
 *    EFER (cr.c), and when the host side changes (memslots, dirty logging:
 *    the MMU requests).  A guest
 *    that changes its tables without invalidating gets what a processor may
 *    give it, the old translation, so guest tables need no write protection.
 *
 * The hardware runs with paging always on (paged real mode, APM 15.19) in
 * PAE form, 4 levels in long mode and 3 otherwise: 32-bit linear addresses
 * fit the four page directories of a PAE table, which stay fixed while the
 * vCPU lives, so the PDPTEs never change under the processor.  Guest pages
 * are found through the two-dimensional tables (tdp.c), which hold the pins
 * and the dirty-log state; the hardware does not use them in this mode.
 */
#include <linux/mm.h>
#include <linux/nospec.h>
#include <asm/io.h>

#include <minikvm/core.h>
#include <minikvm/mmu.h>
#include <minikvm/walk.h>

#define SPTE_P		_PAGE_PRESENT
#define SPTE_TABLE	(_PAGE_PRESENT | _PAGE_RW | _PAGE_USER)
#define SPTE_ADDR	0x000ffffffffff000ULL
/* An available bit (SDM vol. 3 4.5): the translation is of a global page. */
#define SPTE_GLOBAL	BIT_ULL(9)
/* A level-2 entry that maps 2 MiB itself (SDM vol. 3 4.5). */
#define SPTE_PS		_PAGE_PSE
/* Pages of a large guest page mapped ahead on one fault (prefetch_large()). */
#define PREFETCH	16

static unsigned int index_at(u64 gva, int level)
{
	return (gva >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

/* Does the entry at @level point to a table (rather than map a page)? */
static bool is_table(u64 e, int level)
{
	return (e & SPTE_P) && level > 1 && !(level == 2 && (e & SPTE_PS));
}

/* Free the tables below the entries of @table, a table of @level, and clear them. */
static void free_below(struct mkvm_shadow *sh, u64 *table, int level)
{
	for (int i = 0; i < 512; i++) {
		u64 *child;

		if (!is_table(table[i], level)) {
			table[i] = 0;
			continue;
		}
		child = __va(table[i] & SPTE_ADDR);
		free_below(sh, child, level - 1);
		free_page((unsigned long)child);
		sh->pages--;
		table[i] = 0;
	}
}

static void zap(struct mkvm_shadow *sh)
{
	if (sh->levels == 4) {
		free_below(sh, sh->root, 4);
		return;
	}
	for (int i = 0; i < 4; i++)
		free_below(sh, sh->pae_pd[i], 2);
}

/*
 * Clear the leaves below @table, a table of @level, that are not global,
 * freeing the tables left empty.  Return: whether @table is now empty.
 */
static bool zap_nonglobal(struct mkvm_shadow *sh, u64 *table, int level)
{
	bool empty = true;

	for (int i = 0; i < 512; i++) {
		u64 *child;

		if (!(table[i] & SPTE_P))
			continue;
		if (!is_table(table[i], level)) {
			if (table[i] & SPTE_GLOBAL)
				empty = false;
			else
				table[i] = 0;
			continue;
		}
		child = __va(table[i] & SPTE_ADDR);
		if (!zap_nonglobal(sh, child, level - 1)) {
			empty = false;
			continue;
		}
		free_page((unsigned long)child);
		sh->pages--;
		table[i] = 0;
	}
	return empty;
}

/**
 * mkvm_shadow_zap_nonglobal() - forget all translations but those of global pages
 * @vcpu: the vCPU, not in the guest
 *
 * What a MOV to CR3 does to a TLB.  The caller flushes the processor's TLB
 * before the next entry.
 */
void mkvm_shadow_zap_nonglobal(struct mkvm_vcpu *vcpu)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;

	if (sh->levels == 4) {
		zap_nonglobal(sh, sh->root, 4);
		return;
	}
	for (int i = 0; i < 4; i++)
		zap_nonglobal(sh, sh->pae_pd[i], 2);
}

/**
 * mkvm_shadow_create() - the fixed tables of a vCPU's shadow
 * @vcpu: the vCPU
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_shadow_create(struct mkvm_vcpu *vcpu)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;

	/* Outside long mode CR3 has 32 bits (SDM vol. 3 4.4.1). */
	sh->root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT | GFP_DMA32);
	if (!sh->root)
		return -ENOMEM;
	sh->levels = 4;		/* so that a failure below frees only the root */
	for (int i = 0; i < 4; i++) {
		sh->pae_pd[i] = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!sh->pae_pd[i])
			return -ENOMEM;
	}
	return 0;
}

/**
 * mkvm_shadow_destroy() - free a vCPU's shadow
 * @vcpu: the vCPU, which no CPU runs
 */
void mkvm_shadow_destroy(struct mkvm_vcpu *vcpu)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;

	if (!sh->root)
		return;
	zap(sh);
	for (int i = 0; i < 4; i++)
		free_page((unsigned long)sh->pae_pd[i]);	/* 0 when never allocated */
	free_page((unsigned long)sh->root);
	sh->root = NULL;
}

/**
 * mkvm_shadow_reset() - forget every translation, for tables of @levels
 * @vcpu: the vCPU, not in the guest
 * @levels: 4 for long mode, 3 (PAE) otherwise
 *
 * The caller flushes the processor's TLB before the next entry.
 *
 * Return: the root's physical address, the hardware's CR3.
 */
u64 mkvm_shadow_reset(struct mkvm_vcpu *vcpu, int levels)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;

	zap(sh);
	sh->levels = levels;
	sh->inv_shift = PMD_SHIFT;
	memset(sh->root, 0, PAGE_SIZE);
	/* PAE's PDPTEs have only P and the address (SDM vol. 3 4.4.1). */
	if (levels == 3)
		for (int i = 0; i < 4; i++)
			sh->root[i] = __pa(sh->pae_pd[i]) | SPTE_P;
	return __pa(sh->root);
}

/* The page directory for @gva, allocating the levels above it in long mode. */
static u64 *pd_of(struct mkvm_shadow *sh, u64 gva, bool alloc)
{
	u64 *table = sh->root;

	if (sh->levels == 3)
		return sh->pae_pd[(gva >> 30) & 3];
	for (int level = 4; level > 2; level--) {
		u64 *e = &table[index_at(gva, level)];

		if (!(*e & SPTE_P)) {
			u64 *child;

			if (!alloc)
				return NULL;
			child = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
			if (!child)
				return NULL;
			sh->pages++;
			*e = __pa(child) | SPTE_TABLE;
		}
		table = __va(*e & SPTE_ADDR);
	}
	return table;
}

/*
 * The entry for @gva at @level (1, or 2 for a 2 MiB leaf), allocating the
 * tables on the way, or dropping what is in the way: a 2 MiB leaf where a
 * page table must go, or a page table where a 2 MiB leaf goes (@flush is
 * then set: the processor may hold what was dropped).  NULL on -ENOMEM.
 */
static u64 *leaf_of(struct mkvm_shadow *sh, u64 gva, int level, bool *flush)
{
	u64 *pd = pd_of(sh, gva, true), *e;
	u64 *pt;

	if (!pd)
		return NULL;
	e = &pd[index_at(gva, 2)];
	if (level == 2) {
		if (is_table(*e, 2)) {
			free_page((unsigned long)__va(*e & SPTE_ADDR));
			sh->pages--;
			*e = 0;
			*flush = true;
		}
		return e;
	}
	if ((*e & SPTE_P) && !is_table(*e, 2)) {
		*e = 0;
		*flush = true;
	}
	if (!(*e & SPTE_P)) {
		pt = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!pt)
			return NULL;
		sh->pages++;
		*e = __pa(pt) | SPTE_TABLE;
	}
	pt = __va(*e & SPTE_ADDR);
	return &pt[index_at(gva, 1)];
}

/* Forget the translations of the 2 MiB around @gva: free its page table. */
static void zap_2m(struct mkvm_shadow *sh, u64 gva)
{
	u64 *pd = pd_of(sh, gva, false), *e;

	if (!pd)
		return;
	e = &pd[index_at(gva, 2)];
	if (is_table(*e, 2)) {
		free_page((unsigned long)__va(*e & SPTE_ADDR));
		sh->pages--;
	}
	*e = 0;
}

/**
 * mkvm_shadow_tables_reset() - empty 4-level tables of another shadow
 * @sh: the tables (for a guest hypervisor's nested page tables, svm/nested_npt.c)
 *
 * The top table is allocated on first use.  The caller flushes the
 * processor's TLB before the tables are used again.
 *
 * Return: the top table's physical address, or 0 on -ENOMEM.
 */
u64 mkvm_shadow_tables_reset(struct mkvm_shadow *sh)
{
	if (!sh->root) {
		sh->root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!sh->root)
			return 0;
	}
	sh->levels = 4;
	zap(sh);
	return __pa(sh->root);
}

/**
 * mkvm_shadow_tables_free() - free tables of mkvm_shadow_tables_reset()
 * @sh: the tables, which no CPU uses
 */
void mkvm_shadow_tables_free(struct mkvm_shadow *sh)
{
	if (!sh->root)
		return;
	zap(sh);
	free_page((unsigned long)sh->root);
	sh->root = NULL;
}

/**
 * mkvm_shadow_tables_leaf() - the 4 KiB entry for @addr, allocating tables on the way
 * @sh: tables of mkvm_shadow_tables_reset()
 * @addr: the address they translate
 * @flush: set when a 2 MiB entry in the way was dropped
 *
 * Return: the entry, or NULL on -ENOMEM.
 */
u64 *mkvm_shadow_tables_leaf(struct mkvm_shadow *sh, u64 addr, bool *flush)
{
	return leaf_of(sh, addr, 1, flush);
}

/**
 * mkvm_shadow_invlpg() - the guest's INVLPG
 * @vcpu: the vCPU
 * @gva: the linear address
 *
 * The guest page that holds @gva may be larger than what a shadow page
 * table covers: every translation of the largest guest page shadowed so
 * far, around @gva, goes.
 */
void mkvm_shadow_invlpg(struct mkvm_vcpu *vcpu, u64 gva)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;
	u64 size = 1ULL << sh->inv_shift, start = gva & ~(size - 1);

	if (sh->levels == 3)
		start = (u32)start;
	if (sh->levels == 4 && sh->inv_shift == PUD_SHIFT) {
		u64 *pml4e = &sh->root[index_at(gva, 4)], *pdpte;

		if (*pml4e & SPTE_P) {
			pdpte = &((u64 *)__va(*pml4e & SPTE_ADDR))[index_at(gva, 3)];
			if (*pdpte & SPTE_P) {
				free_below(sh, __va(*pdpte & SPTE_ADDR), 2);
				free_page((unsigned long)__va(*pdpte & SPTE_ADDR));
				sh->pages--;
				*pdpte = 0;
			}
		}
	} else {
		/* By count: the top 2 MiB of the address space would wrap. */
		for (u64 n = size >> PMD_SHIFT, a = start; n--; a += PMD_SIZE)
			zap_2m(sh, a);
	}
	/* The processor may hold translations, and table entries, of what was freed. */
	mkvm_x86->flush_tlb(vcpu);
}

/*
 * The guest page the walk found may be larger than 2 MiB (4 MiB in 32-bit
 * paging, 1 GiB in long mode): INVLPG must then forget more.
 */
static void note_page_size(struct mkvm_vcpu *vcpu, struct mkvm_shadow *sh, int level)
{
	bool pse32 = !(vcpu->arch.cr4 & X86_CR4_PAE);
	unsigned int shift = level == 3 ? PUD_SHIFT : level == 2 && pse32 ? 22 : PMD_SHIFT;

	if (shift > sh->inv_shift)
		sh->inv_shift = shift;
}

/*
 * The rights of a translation the walk @w found, as the guest's entries give
 * them: kernel or user, executable or not, writable once dirty.
 */
static u64 spte_rights(struct mkvm_vcpu *vcpu, const struct mkvm_walk *w, bool host_writable)
{
	u64 spte = SPTE_P | _PAGE_ACCESSED | _PAGE_DIRTY;

	if (w->entries_writable && w->dirty && host_writable)
		spte |= _PAGE_RW;
	if (w->user)
		spte |= _PAGE_USER;
	if (!w->executable)
		spte |= _PAGE_NX;
	if (w->global && (vcpu->arch.cr4 & X86_CR4_PGE))
		spte |= SPTE_GLOBAL;
	return spte;
}

/* Does [@la, @la + @len) meet the vendor's private pages? */
static bool meets_private(const struct mkvm_shadow *sh, u64 la, u64 len)
{
	return sh->priv_n && la < sh->priv_la + sh->priv_n * PAGE_SIZE &&
	       sh->priv_la < la + len;
}

/*
 * The next small pages of a guest page larger than 4 KiB, which the same
 * guest entry maps with the same rights, in the same shadow page table: a
 * guest touching its large page in order then exits once per PREFETCH
 * pages, not for each.  Only pages the host already has are taken (no
 * memory is allocated or brought back for them); what is MMIO or missing
 * ends it.
 */
static void prefetch_large(struct mkvm_vcpu *vcpu, u64 *e, u64 gva, const struct mkvm_walk *w)
{
	unsigned int first = index_at(gva, 1);
	bool host_writable, host_huge;
	u64 hpa;

	for (unsigned int n = 1; n < PREFETCH && first + n < 512; n++) {
		u64 gpa = (w->gpa & PAGE_MASK) + n * PAGE_SIZE;

		if (meets_private(&vcpu->arch.mmu.shadow, (gva & PAGE_MASK) + n * PAGE_SIZE,
				  PAGE_SIZE))
			return;
		if (e[n] & SPTE_P)
			continue;
		if (mkvm_tdp_translate(vcpu, gpa, MKVM_TDP_PRESENT_ONLY, &hpa, &host_writable,
				       &host_huge))
			return;
		e[n] = hpa | spte_rights(vcpu, w, host_writable);
	}
}

/**
 * mkvm_shadow_set_private() - map pages of minikvm's at linear addresses of the guest's
 * @vcpu: the vCPU, with slots_sem held (the change is made at the next entry)
 * @la: the first linear address, page-aligned
 * @hpa: the pages' physical addresses
 * @n: how many, at most MKVM_SHADOW_PRIV_PAGES; 0 to map the guest's again
 *
 * For structures the processor reads while the guest runs that are not the
 * guest's: VMX's virtual-8086 mode needs a TSS (vmx/rmode.c), as KVM keeps
 * one in a private memslot.  They are mapped writable and for all, as the
 * guest's memory is without paging; a guest that reaches them only harms
 * its own real-mode emulation.
 */
void mkvm_shadow_set_private(struct mkvm_vcpu *vcpu, u64 la, const u64 *hpa, unsigned int n)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;

	if (WARN_ON_ONCE(n > MKVM_SHADOW_PRIV_PAGES))
		n = 0;
	sh->priv_la = la;
	sh->priv_n = n;
	memcpy(sh->priv_hpa, hpa, n * sizeof(*hpa));
	/* The shadow forgets what it mapped there before. */
	mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH);
}

/*
 * Write @spte as the leaf for @gva at @level; a translation the processor
 * may have cached changes.  Return: the entry, or NULL without memory.
 */
static u64 *set_leaf(struct mkvm_vcpu *vcpu, struct mkvm_shadow *sh, u64 gva, int level,
		     u64 spte)
{
	bool flush = false;
	u64 *e = leaf_of(sh, gva, level, &flush);

	if (flush || (e && (*e & SPTE_P)))
		mkvm_x86->flush_tlb(vcpu);
	if (e)
		*e = spte;
	return e;
}

/* A fault on the vendor's private pages: map the one at @gva. */
static int map_private(struct mkvm_vcpu *vcpu, struct mkvm_shadow *sh, u64 gva)
{
	unsigned int i = array_index_nospec((gva - sh->priv_la) >> PAGE_SHIFT, sh->priv_n);
	u64 spte = sh->priv_hpa[i] | SPTE_P | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED |
		   _PAGE_DIRTY | _PAGE_NX;

	return set_leaf(vcpu, sh, gva, 1, spte) ? 1 : -ENOMEM;
}

/**
 * mkvm_shadow_page_fault() - a #PF exit on the shadow MMU
 * @vcpu: the vCPU, with slots_sem held for read
 * @gva: the faulting linear address
 * @error_code: the hardware's #PF error code
 *
 * Return: 1 to enter the guest again (mapped, or the guest's own #PF
 * queued); 0 to exit to userspace for MMIO; a negative errno.
 */
int mkvm_shadow_page_fault(struct mkvm_vcpu *vcpu, u64 gva, u32 error_code)
{
	struct mkvm_shadow *sh = &vcpu->arch.mmu.shadow;
	bool write = error_code & MKVM_PF_WRITE, host_writable, host_huge;
	struct mkvm_fault fault;
	struct mkvm_walk w;
	u64 hpa, spte, *e;
	int r, level;

	if (sh->levels == 3)
		gva = (u32)gva;
	if (sh->pages >= MKVM_SHADOW_MAX_PAGES) {
		mkvm_shadow_reset(vcpu, sh->levels);
		mkvm_x86->flush_tlb(vcpu);
	}
	if (unlikely(meets_private(sh, gva, 1)))
		return map_private(vcpu, sh, gva);
	r = mkvm_walk_gva_fault(vcpu, gva, error_code, &w, &fault);
	if (r == -EFAULT) {
		mkvm_inject_fault(vcpu, &fault);
		return 1;
	}
	if (r)
		return 1;		/* the guest kept changing its tables: again */
	r = mkvm_tdp_translate(vcpu, w.gpa, write ? MKVM_TDP_WRITE : 0, &hpa, &host_writable,
			       &host_huge);
	if (r == 1) {
		vcpu->stat.pf_emulate++;
		return mkvm_emulate_mmio(vcpu, w.gpa, write, false);
	}
	if (r)
		return r;
	/*
	 * A guest page of 2 MiB or more that the host backs with one huge page
	 * gets a 2 MiB entry, as a processor's TLB may hold: the 2 MiB around
	 * @gva then map the 2 MiB around the guest-physical address.
	 */
	level = w.level >= 2 && host_huge && !meets_private(sh, gva & PMD_MASK, PMD_SIZE) ? 2 : 1;
	if (level == 2)
		hpa &= PMD_MASK;
	spte = hpa | spte_rights(vcpu, &w, host_writable) | (level == 2 ? SPTE_PS : 0);
	/*
	 * A kernel write that only CR0.WP = 0 allows: the hardware runs with
	 * WP set, so the page is mapped writable for the kernel alone, and a
	 * user access faults and maps it again.  Under SMEP the kernel may not
	 * fetch from the guest's user page.
	 */
	if (write && !w.entries_writable) {
		if ((spte & _PAGE_USER) && (vcpu->arch.cr4 & X86_CR4_SMEP))
			spte |= _PAGE_NX;
		spte = (spte & ~_PAGE_USER) | _PAGE_RW;
	}
	e = set_leaf(vcpu, sh, gva, level, spte);
	if (!e)
		return -ENOMEM;
	if (level == 1 && w.level >= 2 && !(write && !w.entries_writable))
		prefetch_large(vcpu, e, gva, &w);
	note_page_size(vcpu, sh, w.level);
	vcpu->stat.pf_fixed++;
	return 1;
}
