// SPDX-License-Identifier: GPL-2.0
/*
 * The vCPU's MMU context: which tables the vCPU runs on (its role: entry
 * format, memslot address space, two-dimensional or shadow), their root,
 * and the operations that build and search them.  Generic code asks the
 * context; the vendor only loads the root it is given and flushes the TLB
 * when asked, so a second kind of tables (the shadow MMU) is a second
 * context, not a second code path in every caller.
 *
 * Changes that other threads make (tables zapped after a memslot change)
 * and changes of mode (SMM entered or left) arrive as requests, handled in
 * one place just before the next entry.
 */
#include <linux/bitops.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>
#include <minikvm/mmu.h>
#include <minikvm/walk.h>

/**
 * mkvm_make_request() - ask a vCPU to do something before its next entry
 * @vcpu: the vCPU
 * @req: what
 *
 * A vCPU in the guest is kicked out when it has an in-kernel APIC to kick;
 * requests to others come from its own thread, or while no vCPU can be in
 * the guest (slots_sem held for writing).
 */
void mkvm_make_request(struct mkvm_vcpu *vcpu, enum mkvm_request req)
{
	set_bit(req, &vcpu->arch.requests);
	if (vcpu->arch.lapic)
		mkvm_vcpu_kick(vcpu);
}

/**
 * mkvm_make_all_request() - the same request to every vCPU of a VM
 * @vm: the VM, with slots_sem held for writing, so no vCPU is in the guest
 * @req: what
 */
void mkvm_make_all_request(struct mkvm_vm *vm, enum mkvm_request req)
{
	struct mkvm_vcpu *vcpu;
	unsigned long i;

	/* Only vCPUs with a local APIC can be kicked: the others must be outside. */
	lockdep_assert_held_write(&vm->slots_sem);
	xa_for_each(&vm->vcpus, i, vcpu)
		mkvm_make_request(vcpu, req);
}

static bool same_role(const struct mkvm_mmu_role *a, const struct mkvm_mmu_role *b)
{
	return a->format == b->format && a->as == b->as && a->tdp == b->tdp;
}

/* The role the vCPU needs now. */
static struct mkvm_mmu_role current_role(struct mkvm_vcpu *vcpu)
{
	return (struct mkvm_mmu_role){
		.format = mkvm_x86->tdp_format, .as = mkvm_vcpu_as(vcpu), .tdp = true,
	};
}

static void load(struct mkvm_vcpu *vcpu)
{
	struct mkvm_mmu *mmu = &vcpu->arch.mmu;

	mmu->role = current_role(vcpu);
	mmu->root_pa = mkvm_tdp_root_pa(vcpu->vm, mmu->role.as);
	mmu->page_fault = mkvm_tdp_page_fault;
	mmu->gva_to_gpa = mkvm_walk_gva;
	mmu->invlpg = NULL;	/* the hardware invalidates the guest's own TLB entries */
	mkvm_x86->load_mmu_root(vcpu, mmu->root_pa);
}

/**
 * mkvm_mmu_init() - the context of a new vCPU, on two-dimensional paging
 * @vcpu: the vCPU, its vendor state created
 */
void mkvm_mmu_init(struct mkvm_vcpu *vcpu)
{
	load(vcpu);
}

/**
 * mkvm_mmu_prepare_entry() - handle the MMU requests before an entry
 * @vcpu: the vCPU, interrupts off, about to enter
 *
 * A new role (SMM came or went) means a new root, whose translations the
 * vendor must not mix with the old one's: that is a flush too.
 */
void mkvm_mmu_prepare_entry(struct mkvm_vcpu *vcpu)
{
	struct mkvm_mmu_role role = current_role(vcpu);
	bool flush = false;

	if (!same_role(&role, &vcpu->arch.mmu.role))
		set_bit(MKVM_REQ_MMU_RELOAD, &vcpu->arch.requests);
	if (likely(!READ_ONCE(vcpu->arch.requests)))
		return;
	if (test_and_clear_bit(MKVM_REQ_MMU_RELOAD, &vcpu->arch.requests)) {
		load(vcpu);
		flush = true;
	}
	if (test_and_clear_bit(MKVM_REQ_TLB_FLUSH, &vcpu->arch.requests))
		flush = true;
	if (flush)
		mkvm_x86->flush_tlb(vcpu);
}
