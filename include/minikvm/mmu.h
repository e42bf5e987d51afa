/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The vCPU's MMU context (arch/x86/kvm/mmu/mmu.c): the tables it runs on,
 * what builds them, and the requests that make it reload or flush.
 */
#ifndef MINIKVM_MMU_H
#define MINIKVM_MMU_H

#include <linux/kvm.h>
#include <linux/types.h>

struct mkvm_vcpu;
struct mkvm_vm;
struct mkvm_walk;
struct mkvm_fault;

/* The entry formats of the tables minikvm builds (not the guest's). */
enum mkvm_spte_format {
	MKVM_SPTE_NPT,		/* AMD nested paging: x86 4-level entries (APM vol. 2 15.25.5) */
	MKVM_SPTE_EPT,		/* Intel EPT (SDM vol. 3 29.3.2) */
};

/**
 * struct mkvm_mmu_role - what kind of tables a context runs on
 * @format: their entry format
 * @as: the memslot address space they map (1 in SMM)
 * @tdp: two-dimensional: they map guest-physical addresses
 * @levels: shadow tables (x86 format): 4 in long mode, 3 (PAE) otherwise
 */
struct mkvm_mmu_role {
	u8 format;
	u8 as;
	bool tdp;
	u8 levels;
};

/* The most pages a shadow maps for the vendor in place of the guest's. */
#define MKVM_SHADOW_PRIV_PAGES 3

/**
 * struct mkvm_shadow - a vCPU's shadow tables (mmu/shadow.c)
 * @root: the top table: a PML4, or PAE's PDPT
 * @pae_pd: PAE's four page directories, fixed while the vCPU lives
 * @levels: 4 or 3
 * @pages: tables allocated below the fixed ones
 * @inv_shift: log2 of the largest guest page shadowed, at least 2 MiB
 * @priv_la: the first linear address of @priv_hpa's pages
 * @priv_n: how many pages from @priv_la map minikvm's own pages, 0 for none
 * @priv_hpa: those pages (VMX's real-mode TSS, vmx/rmode.c)
 */
struct mkvm_shadow {
	u64 *root;
	u64 *pae_pd[4];
	int levels;
	unsigned int pages;
	unsigned int inv_shift;
	u64 priv_la;
	unsigned int priv_n;
	u64 priv_hpa[MKVM_SHADOW_PRIV_PAGES];
};

/**
 * struct mkvm_mmu - a vCPU's MMU context
 * @role: the kind of tables
 * @root_pa: the physical address of the top table, which the vendor loads
 *	(nested CR3, the EPT pointer, or the shadow CR3)
 * @page_fault: map what a nested page fault needs: 0 when mapped, 1 when
 *	it is MMIO for the emulator, or a negative errno
 * @gva_to_gpa: translate the guest's linear address as its access would
 * @invlpg: the guest invalidated one linear address
 * @shadow: the shadow tables, with npt=0
 */
struct mkvm_mmu {
	struct mkvm_mmu_role role;
	u64 root_pa;
	struct mkvm_shadow shadow;
	int (*page_fault)(struct mkvm_vcpu *vcpu, u64 addr, u32 error_code);
	int (*gva_to_gpa)(struct mkvm_vcpu *vcpu, u64 la, u32 access, struct mkvm_walk *w,
			  struct mkvm_fault *fault);
	void (*invlpg)(struct mkvm_vcpu *vcpu, u64 gva);
	/*
	 * While a guest hypervisor's guest runs on nested paging of the guest
	 * hypervisor's (svm/nested_npt.c): the guest hypervisor's physical
	 * address of the running guest's @gpa, or -EFAULT with the nested
	 * page fault in @fault.  NULL otherwise: the guest's physical
	 * addresses are the VM's.
	 */
	int (*nested_gpa)(struct mkvm_vcpu *vcpu, u64 gpa, u32 access, bool table, u64 *out,
			  struct mkvm_fault *fault);
	/* ... and the guest hypervisor's exit for such a fault. */
	void (*nested_fault)(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault);
};

/* Requests to a vCPU, handled before its next entry (mkvm_mmu_prepare_entry()). */
enum mkvm_request {
	MKVM_REQ_TLB_FLUSH,	/* translations it may hold are stale */
	MKVM_REQ_MMU_RELOAD,	/* its root or role changed: SMM came or went */
	MKVM_REQ_TLB_FLUSH_NONGLOBAL,	/* the guest loaded CR3: all but global pages */
};

/* Two-dimensional paging (NPT, EPT) in use; false: the shadow MMU.  Set at load. */
extern bool mkvm_tdp_enabled;

void mkvm_make_request(struct mkvm_vcpu *vcpu, enum mkvm_request req);
void mkvm_make_all_request(struct mkvm_vm *vm, enum mkvm_request req);
int mkvm_mmu_init(struct mkvm_vcpu *vcpu);
void mkvm_mmu_destroy(struct mkvm_vcpu *vcpu);
void mkvm_mmu_prepare_entry(struct mkvm_vcpu *vcpu);
int mkvm_emulate_invlpg(struct mkvm_vcpu *vcpu, u64 gva, bool known);

/* mmu/shadow.c; a hostile guest could map a page at every address: cap each set of tables. */
#define MKVM_SHADOW_MAX_PAGES 2048
int mkvm_shadow_create(struct mkvm_vcpu *vcpu);
void mkvm_shadow_destroy(struct mkvm_vcpu *vcpu);
u64 mkvm_shadow_reset(struct mkvm_vcpu *vcpu, int levels);
void mkvm_shadow_zap_nonglobal(struct mkvm_vcpu *vcpu);
void mkvm_shadow_invlpg(struct mkvm_vcpu *vcpu, u64 gva);
int mkvm_shadow_page_fault(struct mkvm_vcpu *vcpu, u64 gva, u32 error_code);
void mkvm_shadow_set_private(struct mkvm_vcpu *vcpu, u64 la, const u64 *hpa, unsigned int n);
u64 mkvm_shadow_tables_reset(struct mkvm_shadow *sh);
void mkvm_shadow_tables_free(struct mkvm_shadow *sh);
u64 *mkvm_shadow_tables_leaf(struct mkvm_shadow *sh, u64 addr, bool *flush);

#endif
