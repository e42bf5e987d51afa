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
 */
struct mkvm_mmu_role {
	u8 format;
	u8 as;
	bool tdp;
};

/**
 * struct mkvm_mmu - a vCPU's MMU context
 * @role: the kind of tables
 * @root_pa: the physical address of the top table, which the vendor loads
 *	(nested CR3, the EPT pointer, or the shadow CR3)
 * @page_fault: map what a fault (nested or shadow) needs: 0 when mapped,
 *	1 when it is MMIO for the emulator, or a negative errno
 * @gva_to_gpa: translate the guest's linear address as its access would
 * @invlpg: the guest invalidated one linear address
 */
struct mkvm_mmu {
	struct mkvm_mmu_role role;
	u64 root_pa;
	int (*page_fault)(struct mkvm_vcpu *vcpu, u64 addr, u32 error_code);
	int (*gva_to_gpa)(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, u32 access,
			  struct mkvm_walk *w, struct mkvm_fault *fault);
	void (*invlpg)(struct mkvm_vcpu *vcpu, u64 gva);
};

/* Requests to a vCPU, handled before its next entry (mkvm_mmu_prepare_entry()). */
enum mkvm_request {
	MKVM_REQ_TLB_FLUSH,	/* translations it may hold are stale */
	MKVM_REQ_MMU_RELOAD,	/* its root or role changed: SMM came or went */
};

void mkvm_make_request(struct mkvm_vcpu *vcpu, enum mkvm_request req);
void mkvm_make_all_request(struct mkvm_vm *vm, enum mkvm_request req);
void mkvm_mmu_init(struct mkvm_vcpu *vcpu);
void mkvm_mmu_prepare_entry(struct mkvm_vcpu *vcpu);

#endif
