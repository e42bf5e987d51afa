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

bool mkvm_tdp_enabled = true;

static bool same_role(const struct mkvm_mmu_role *a, const struct mkvm_mmu_role *b)
{
	return a->format == b->format && a->as == b->as && a->tdp == b->tdp &&
	       a->levels == b->levels;
}

/* The role the vCPU needs now. */
static struct mkvm_mmu_role current_role(struct mkvm_vcpu *vcpu)
{
	if (mkvm_tdp_enabled)
		return (struct mkvm_mmu_role){
			.format = mkvm_x86->tdp_format, .as = mkvm_vcpu_as(vcpu), .tdp = true,
			.levels = 4,
		};
	return (struct mkvm_mmu_role){
		.format = MKVM_SPTE_NPT, .as = mkvm_vcpu_as(vcpu),
		.levels = vcpu->arch.efer & EFER_LMA ? 4 : 3,
	};
}

static void load(struct mkvm_vcpu *vcpu)
{
	struct mkvm_mmu *mmu = &vcpu->arch.mmu;

	mmu->role = current_role(vcpu);
	mmu->gva_to_gpa = mkvm_walk_gva;
	if (mmu->role.tdp) {
		mmu->root_pa = mkvm_tdp_root_pa(vcpu->vm, mmu->role.as);
		mmu->page_fault = mkvm_tdp_page_fault;
		mmu->invlpg = NULL;	/* the hardware invalidates the guest's own TLB entries */
	} else {
		mmu->root_pa = mkvm_shadow_reset(vcpu, mmu->role.levels);
		mmu->page_fault = NULL;	/* #PF exits go to mkvm_shadow_page_fault() */
		mmu->invlpg = mkvm_shadow_invlpg;
	}
	mkvm_x86->load_mmu_root(vcpu, mmu->root_pa);
}

/**
 * mkvm_mmu_init() - the context of a new vCPU
 * @vcpu: the vCPU, its vendor state created
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_mmu_init(struct mkvm_vcpu *vcpu)
{
	if (!mkvm_tdp_enabled) {
		int r = mkvm_shadow_create(vcpu);

		if (r) {
			mkvm_shadow_destroy(vcpu);
			return r;
		}
	}
	load(vcpu);
	return 0;
}

/**
 * mkvm_mmu_destroy() - free what the vCPU's context owns
 * @vcpu: the vCPU, which no CPU runs
 */
void mkvm_mmu_destroy(struct mkvm_vcpu *vcpu)
{
	mkvm_shadow_destroy(vcpu);
}

/**
 * mkvm_mmu_prepare_entry() - handle the MMU requests before an entry
 * @vcpu: the vCPU, with slots_sem held for read, interrupts still on
 *
 * A new role (SMM came or went, long mode on the shadow MMU) means a new
 * root, whose translations the vendor must not mix with the old one's: that
 * is a flush too.  On the shadow MMU a flush also empties the shadow, which
 * may free many pages: hence before interrupts go off.  No request can come
 * in between: other threads make them only with slots_sem held for writing.
 */
void mkvm_mmu_prepare_entry(struct mkvm_vcpu *vcpu)
{
	struct mkvm_mmu *mmu = &vcpu->arch.mmu;
	struct mkvm_mmu_role role = current_role(vcpu);
	bool flush = false;

	if (!same_role(&role, &mmu->role))
		set_bit(MKVM_REQ_MMU_RELOAD, &vcpu->arch.requests);
	if (likely(!READ_ONCE(vcpu->arch.requests)))
		return;
	if (test_and_clear_bit(MKVM_REQ_MMU_RELOAD, &vcpu->arch.requests)) {
		clear_bit(MKVM_REQ_TLB_FLUSH, &vcpu->arch.requests);
		clear_bit(MKVM_REQ_TLB_FLUSH_NONGLOBAL, &vcpu->arch.requests);
		load(vcpu);
		flush = true;
	}
	if (test_and_clear_bit(MKVM_REQ_TLB_FLUSH, &vcpu->arch.requests)) {
		clear_bit(MKVM_REQ_TLB_FLUSH_NONGLOBAL, &vcpu->arch.requests);
		if (!mmu->role.tdp)
			mkvm_shadow_reset(vcpu, mmu->role.levels);
		flush = true;
	}
	if (test_and_clear_bit(MKVM_REQ_TLB_FLUSH_NONGLOBAL, &vcpu->arch.requests)) {
		if (!mmu->role.tdp)
			mkvm_shadow_zap_nonglobal(vcpu);
		flush = true;
	}
	if (flush)
		mkvm_x86->flush_tlb(vcpu);
}

/**
 * mkvm_emulate_invlpg() - complete an intercepted INVLPG (shadow MMU only)
 * @vcpu: the vCPU, with slots_sem held
 * @gva: the linear address, when the hardware gave it
 * @known: whether it did; otherwise the instruction is decoded
 *
 * Return: 1 to enter again, 0 with kvm_run reporting an emulation failure.
 */
int mkvm_emulate_invlpg(struct mkvm_vcpu *vcpu, u64 gva, bool known)
{
	struct mkvm_insn insn;
	struct kvm_sregs s;
	unsigned long next;
	int r;

	if (!mkvm_fetch_decode(vcpu, &s, &insn, &r))
		return r;
	if (insn.kind != INSN_INVLPG)
		return mkvm_emulation_failed(vcpu, NULL, 0);
	if (!known)
		gva = mkvm_operand_la(vcpu, &s, &insn);
	if (vcpu->arch.mmu.invlpg)
		vcpu->arch.mmu.invlpg(vcpu, gva);
	next = vcpu->arch.rip + insn.len;
	mkvm_rip_past_insn(vcpu, (s.efer & EFER_LMA) && s.cs.l ? next : (u32)next);
	return 1;
}
