// SPDX-License-Identifier: GPL-2.0
/*
 * Nested paging for L1: L2 runs on nested page tables of L1's (vmcb12's
 * nested_cr3), which map L2's physical addresses to L1's, and minikvm's own
 * map L1's to the host's.  The hardware walks one set only, so minikvm
 * builds a third (nNPT) from the two, one 4 KiB page at a time, as the
 * shadow MMU does for a guest's page tables (mmu/shadow.c, whose table
 * helpers it uses):
 *
 *  - A nested page fault of L2's walks L1's tables (the shared walker; a
 *    nested walk is a user access, APM 15.25.5), setting their accessed and
 *    dirty bits.  A fault there is L1's #VMEXIT(NPF), with the error code
 *    the walk gives and bit 32 or 33 as the hardware said (APM 15.25.6).
 *    Otherwise the page is mapped with the rights L1's entries give,
 *    writable once dirty, through minikvm's own tables, which hold the
 *    pins and the dirty log.  An address of L1's in no memslot is MMIO,
 *    emulated for L2.
 *  - The nNPT is kept across VMRUNs as a TLB of L1's tables would be: it is
 *    emptied when L1 changes nested_cr3, its ASID or its paging mode, or
 *    asks for a TLB flush in TLB_CONTROL, and whenever minikvm's own tables
 *    change (a memslot, the dirty log: svm_flush_tlb()).  L1 that changes
 *    its nested tables without flushing gets what a processor may give it.
 *  - The emulator reaches L2's memory through the same walk
 *    (mkvm_svm_nested_gpa(), struct mkvm_mmu's nested_gpa).
 */
#include <asm/traps.h>

#include <minikvm/walk.h>

#include "svm.h"

/* Nested page fault error code (APM 15.25.6). */
#define NPF_FINAL	BIT_ULL(32)
#define NPF_TABLE	BIT_ULL(33)

#define SPTE_ADDR	0x000ffffffffff000ULL

/* L1's nested paging, in its paging mode at VMRUN (APM 15.25.3). */
static void l1_npt_paging(struct mkvm_vcpu *vcpu, struct mkvm_paging *p)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	u64 ncr3 = n->vmcb12->control.nested_cr3;

	*p = (struct mkvm_paging){
		.maxphyaddr = mkvm_guest_maxphyaddr(vcpu),
		.nxe = !!(n->l1_efer & EFER_NX),
		.pse = !!(n->l1_cr4 & X86_CR4_PSE),
		.user = true,
		.ad = true,
	};
	if (n->l1_efer & EFER_LMA) {
		p->format = MKVM_PT_4L;
		p->root = ncr3 & GENMASK_ULL(51, 12);
	} else if (n->l1_cr4 & X86_CR4_PAE) {
		p->format = MKVM_PT_PAE;
		p->root = ncr3 & 0xffffffe0;
	} else {
		p->format = MKVM_PT_32;
		p->root = ncr3 & 0xfffff000;
		p->nxe = false;
	}
}

/* L1's tables are in L1's own memory: no nested walk for them. */
static int read_l1_pte(void *opaque, u64 gpa, u64 *pte, unsigned int bytes)
{
	return mkvm_read_phys_pte(opaque, gpa, pte, bytes);
}

static int cmpxchg_l1_pte(void *opaque, u64 gpa, u64 old, u64 new, unsigned int bytes)
{
	return mkvm_cmpxchg_phys_pte(opaque, gpa, old, new, bytes);
}

static int walk_l1_npt(struct mkvm_vcpu *vcpu, u64 l2_gpa, u32 access, struct mkvm_walk *w,
		       struct mkvm_fault *fault)
{
	struct mkvm_walk_env env = {
		.opaque = vcpu, .read_pte = read_l1_pte, .cmpxchg_pte = cmpxchg_l1_pte,
	};
	struct mkvm_paging p;

	l1_npt_paging(vcpu, &p);
	return mkvm_walk(&p, &env, l2_gpa, access, w, fault);
}

/**
 * mkvm_svm_nested_gpa() - L1's physical address of an L2 physical address
 * @vcpu: the vCPU, running L2 on L1's nested paging, with slots_sem held
 * @gpa: L2's physical address
 * @access: MKVM_ACC_WRITE and MKVM_ACC_FETCH bits
 * @table: whether the address is one of L2's page tables
 * @out: L1's physical address
 * @fault: on -EFAULT, L1's nested page fault
 *
 * Return: 0, -EFAULT, or -EAGAIN when L1 kept changing its entries.
 */
int mkvm_svm_nested_gpa(struct mkvm_vcpu *vcpu, u64 gpa, u32 access, bool table, u64 *out,
			struct mkvm_fault *fault)
{
	struct mkvm_walk w;
	int r = walk_l1_npt(vcpu, gpa, access, &w, fault);

	if (r == -EFAULT) {
		fault->vector = table ? MKVM_FAULT_NESTED_TABLE : MKVM_FAULT_NESTED_FINAL;
		fault->address = gpa;
	}
	if (!r)
		*out = w.gpa;
	return r;
}

static void npf_vmexit(struct mkvm_vcpu *vcpu, u64 info1, u64 l2_gpa)
{
	mkvm_svm_nested_vmexit(vcpu, SVM_EXIT_NPF, info1, l2_gpa);
}

/**
 * mkvm_svm_nested_fault() - the #VMEXIT(NPF) for a nested page fault the emulator met
 * @vcpu: the vCPU, running L2, with slots_sem held
 * @fault: a MKVM_FAULT_NESTED_* fault of mkvm_svm_nested_gpa()
 */
void mkvm_svm_nested_fault(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault)
{
	u64 where = fault->vector == MKVM_FAULT_NESTED_TABLE ? NPF_TABLE : NPF_FINAL;

	npf_vmexit(vcpu, where | fault->error_code, fault->address);
}

/**
 * mkvm_svm_nnpt_reset() - forget every translation of the nNPT
 * @vcpu: the vCPU, in process context
 *
 * The caller takes a fresh ASID before L2 runs on it again.
 *
 * Return: the nNPT root's physical address, or 0 on -ENOMEM.
 */
u64 mkvm_svm_nnpt_reset(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;

	n->nnpt_root = mkvm_shadow_tables_reset(&n->nnpt);
	return n->nnpt_root;
}

/**
 * mkvm_svm_nested_npf() - a nested page fault of L2 on the nNPT
 * @vcpu: the vCPU, with slots_sem held
 *
 * Return: 1 to enter again (mapped, or L1's #VMEXIT made), 0 to exit to
 * userspace for MMIO, or a negative errno.
 */
int mkvm_svm_nested_npf(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	u64 l2_gpa = c->exit_info_2, info = c->exit_info_1, hpa, spte, *e;
	bool write = info & MKVM_PF_WRITE, host_writable, host_huge, flush = false;
	u32 access = info & (MKVM_ACC_WRITE | MKVM_ACC_FETCH);
	struct mkvm_fault fault;
	struct mkvm_walk w;
	int r;

	/* An address beyond what L1's tables translate has no entry: not present. */
	if (l2_gpa >> (n->nnpt_mode & EFER_LMA ? 48 : 32)) {
		npf_vmexit(vcpu, (info & (NPF_FINAL | NPF_TABLE | MKVM_PF_WRITE | MKVM_PF_FETCH)) |
			   MKVM_PF_USER, l2_gpa);
		return 1;
	}
	r = walk_l1_npt(vcpu, l2_gpa, access, &w, &fault);
	if (r == -EAGAIN)
		return 1;
	if (r) {
		npf_vmexit(vcpu, (info & (NPF_FINAL | NPF_TABLE)) | fault.error_code, l2_gpa);
		return 1;
	}
	r = mkvm_tdp_translate(vcpu, w.gpa, write ? MKVM_TDP_WRITE : 0, &hpa, &host_writable,
			       &host_huge);
	if (r == 1) {
		vcpu->stat.pf_emulate++;
		return mkvm_emulate_mmio(vcpu, w.gpa, write, info & NPF_TABLE);
	}
	if (r)
		return r;
	if (!n->nnpt_root || n->nnpt.pages >= MKVM_SHADOW_MAX_PAGES) {
		mkvm_svm_nnpt_reset(vcpu);
		if (!n->nnpt_root)
			return -ENOMEM;
		c->nested_cr3 = n->nnpt_root;
		mkvm_svm_new_asid(vcpu);
	}
	e = mkvm_shadow_tables_leaf(&n->nnpt, l2_gpa, &flush);
	if (!e)
		return -ENOMEM;
	/* A nested walk is a user access: every entry has U (APM 15.25.5). */
	spte = (hpa & SPTE_ADDR) | _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;
	if (w.entries_writable && w.dirty && host_writable)
		spte |= _PAGE_RW;
	if (!w.executable)
		spte |= _PAGE_NX;
	/* A translation the processor may hold changes. */
	if (flush || (*e & _PAGE_PRESENT))
		mkvm_svm_new_asid(vcpu);
	*e = spte;
	vcpu->stat.pf_fixed++;
	return 1;
}
