// SPDX-License-Identifier: GPL-2.0
/*
 * Nested SVM: a guest (L1) that runs its own hypervisor, which runs its own
 * guest (L2) with VMRUN.
 *
 * minikvm emulates L1's SVM instructions.  VMRUN reads L1's VMCB (vmcb12),
 * checks it as the processor would, and builds vmcb02, on which the
 * hardware runs L2: L2's state from vmcb12, and the intercepts of both
 * hypervisors.  L1's own state stays in vmcb01.  Each exit from L2 goes to
 * L1 as a #VMEXIT when L1 asked for it, and is handled here otherwise;
 * interrupts and NMIs for L1 end L2 the same way when L1 intercepts them.
 *
 * L2 runs on L1's nested paging when L1 asks for it (nested_npt.c), or on
 * L1's own shadow tables, its addresses then being L1's.  Each VMRUN and
 * #VMEXIT takes a fresh ASID (mkvm_svm_new_asid()), so L2 never sees a
 * translation of L1's or of an earlier run in the processor's TLB, and
 * INVLPGA has nothing left to flush there.
 */
#include <linux/slab.h>
#include <asm/io.h>
#include <asm/traps.h>

#include <minikvm/guest_mem.h>
#include <minikvm/irqchip.h>

#include "svm.h"

bool mkvm_svm_nested_on;
u32 mkvm_nested_svm_features;

/* CPUID 8000_000A EDX (APM vol. 3 E.4.9). */
#define SVM_FEATURE_NPT BIT(0)
#define SVM_FEATURE_NRIPS BIT(3)
#define SVM_FEATURE_VMCB_CLEAN BIT(5)
#define SVM_FEATURE_FLUSH_BY_ASID BIT(6)


/* The permission maps' sizes (APM 15.10.1, 15.11): 12 KiB and 8 KiB. */
#define IOPM_SIZE (3 * PAGE_SIZE)
#define MSRPM_SIZE (2 * PAGE_SIZE)

/* Intercepts that minikvm turns on and off for L1 alone (events.c, cr8.c). */
static bool l1_only_intercept(int bit)
{
	return bit == INTERCEPT_VINTR || bit == INTERCEPT_IRET || bit == INTERCEPT_CR8_WRITE;
}

/**
 * mkvm_svm_nested_setup() - decide, at load, what nesting to offer
 * @npt: whether minikvm runs guests on nested paging
 * @nrips: whether the CPU saves the next RIP on intercepts
 */
void mkvm_svm_nested_setup(bool npt, bool nrips)
{
	/* A guest hypervisor's guest runs on L1's nested-paging tree: none on the shadow MMU. */
	if (mkvm_nested && !npt) {
		pr_warn("minikvm: nested=1 needs nested paging (npt=1); nesting is off\n");
		mkvm_nested = false;
	}
	mkvm_svm_nested_on = mkvm_nested;
	/*
	 * Clean bits are only a hint (APM 15.15): minikvm reads all of vmcb12
	 * at every VMRUN.  Flush-by-ASID asks less than the fresh ASID of
	 * every VMRUN gives.  The next RIP comes from the CPU's own.  Nested
	 * paging for L1 is a shadow of its tables (nested_npt.c).
	 */
	mkvm_nested_svm_features = SVM_FEATURE_NPT | SVM_FEATURE_VMCB_CLEAN |
				   SVM_FEATURE_FLUSH_BY_ASID | (nrips ? SVM_FEATURE_NRIPS : 0);
}

/**
 * mkvm_svm_nested_alloc() - the pages a vCPU needs to run a guest hypervisor
 * @vcpu: the vCPU being created
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_svm_nested_alloc(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	struct page *p;

	if (!mkvm_svm_nested_on)
		return 0;
	p = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!p)
		return -ENOMEM;
	n->vmcb02 = page_address(p);
	n->vmcb02_pa = page_to_phys(p);
	n->vmcb12 = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	/* The nNPT's root now, so that L1's nested paging never lacks it later. */
	if (!n->vmcb12 || !mkvm_shadow_tables_reset(&n->nnpt)) {
		mkvm_svm_nested_free(vcpu);
		return -ENOMEM;
	}
	return 0;
}

/**
 * mkvm_svm_nested_free() - free what mkvm_svm_nested_alloc() took
 * @vcpu: the vCPU
 */
void mkvm_svm_nested_free(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;

	if (n->vmcb02)
		free_page((unsigned long)n->vmcb02);
	free_page((unsigned long)n->vmcb12);
	mkvm_shadow_tables_free(&n->nnpt);
	n->vmcb02 = NULL;
	n->vmcb12 = NULL;
}

static bool vmcb12_intercepts(struct mkvm_svm_nested *n, unsigned int bit)
{
	return bit < 32 * MAX_INTERCEPT &&
	       (n->vmcb12->control.intercepts[bit / 32] & BIT(bit % 32));
}

/**
 * mkvm_svm_nested_intercepts() - L2 runs and L1 intercepts @bit
 * @vcpu: the vCPU
 * @bit: an INTERCEPT_* number
 *
 * Return: true if so.
 */
bool mkvm_svm_nested_intercepts(struct mkvm_vcpu *vcpu, int bit)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;

	return n->guest_mode && vmcb12_intercepts(n, bit);
}

/**
 * mkvm_svm_tpr_vmcb() - the VMCB whose V_TPR is L1's task priority
 * @vcpu: the vCPU
 *
 * With V_INTR_MASKING in vmcb12, L2's CR8 is its own and L1's stays in
 * vmcb01 (APM 15.21.1); without it, L2 writes L1's.
 *
 * Return: vmcb02 while L2 runs without V_INTR_MASKING, else vmcb01.
 */
struct vmcb *mkvm_svm_tpr_vmcb(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	if (svm->nested.guest_mode && !(svm->nested.vmcb12->control.int_ctl & V_INTR_MASKING_MASK))
		return svm->vmcb;
	return svm->vmcb01;
}

/**
 * mkvm_svm_nested_intr_unmasked() - an interrupt for L1 would end L2
 * @vcpu: the vCPU, with L2 running and L1 intercepting INTR
 *
 * With V_INTR_MASKING, L1's RFLAGS.IF at VMRUN decides; without it, L2's
 * IF and interrupt shadow (APM 15.21.1).  GIF is always set while L2 runs.
 * The #VMEXIT itself waits until L2 was entered once (run_pending).
 *
 * Return: true when a pending interrupt makes the #VMEXIT.
 */
bool mkvm_svm_nested_intr_unmasked(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	if (svm->nested.vmcb12->control.int_ctl & V_INTR_MASKING_MASK)
		return svm->vmcb01->save.rflags & X86_EFLAGS_IF;
	return (vcpu->arch.rflags & X86_EFLAGS_IF) &&
	       !(svm->vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK);
}

/**
 * mkvm_svm_smi_blocked() - an SMI waits
 * @vcpu: the vCPU
 *
 * GIF holds SMIs back (APM 15.17).  While L2 runs, an SMI that L1
 * intercepts is its #VMEXIT first (nested.c), and one it does not waits
 * until L2 exits to L1: minikvm does not enter SMM from L2.
 *
 * Return: true if so.
 */
bool mkvm_svm_smi_blocked(struct mkvm_vcpu *vcpu)
{
	return !to_svm(vcpu)->gif || to_svm(vcpu)->nested.guest_mode;
}

/**
 * mkvm_svm_init_blocked() - an INIT waits
 * @vcpu: the vCPU
 *
 * GIF holds INIT back (APM 15.17), and while L2 runs an INIT that L1
 * intercepts is its #VMEXIT instead.
 *
 * Return: true if so.
 */
bool mkvm_svm_init_blocked(struct mkvm_vcpu *vcpu)
{
	return !to_svm(vcpu)->gif || mkvm_svm_nested_intercepts(vcpu, INTERCEPT_INIT);
}

/* What every SVM instruction checks first (APM vol. 3, VMRUN and the others). */
static bool svm_insn_allowed(struct mkvm_vcpu *vcpu)
{
	/*
	 * #UD without nesting (no vmcb12 copy: as without SVM), without
	 * EFER.SVME, in real or virtual-8086 mode, and in L2 when
	 * L1 did not intercept the instruction: minikvm runs no third level
	 * on its own.  Nor in SMM: minikvm does not run L2 from SMM, whose RSM
	 * would otherwise be L2's (Documentation/nested.rst).
	 */
	if (!to_svm(vcpu)->nested.vmcb12 || !(vcpu->arch.efer & EFER_SVME) ||
	    !(vcpu->arch.cr0 & X86_CR0_PE) ||
	    (vcpu->arch.rflags & X86_EFLAGS_VM) || to_svm(vcpu)->nested.guest_mode ||
	    vcpu->arch.smm.active) {
		mkvm_queue_exception(vcpu, X86_TRAP_UD, false, 0);
		return false;
	}
	if (mkvm_x86->get_cpl(vcpu)) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return false;
	}
	return true;
}

/* rAX as a VMCB address: page-aligned and a guest-physical address, or #GP(0). */
static bool svm_insn_vmcb_gpa(struct mkvm_vcpu *vcpu, u64 *gpa)
{
	struct vmcb_seg *cs = &to_svm(vcpu)->vmcb->save.cs;
	u64 rax = vcpu->arch.regs[REG_RAX];

	/* The address size is the mode's: 64 bits only in 64-bit mode (CS.L, APM 15.5.1). */
	if (!(vcpu->arch.efer & EFER_LMA) || !(cs->attrib & SVM_SELECTOR_L_MASK))
		rax = (u32)rax;
	if ((rax & ~PAGE_MASK) || (rax >> mkvm_guest_maxphyaddr(vcpu))) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return false;
	}
	*gpa = rax;
	return true;
}

/*
 * The checks of VMRUN and VMLOAD, then their VMCB read into the vmcb12 copy,
 * which is free while L1 runs.  A VMCB outside guest memory is an address
 * they cannot use: #GP(0), as on KVM.  Return: false with an exception queued.
 */
static bool svm_insn_read_vmcb(struct mkvm_vcpu *vcpu, u64 *gpa)
{
	if (!svm_insn_allowed(vcpu) || !svm_insn_vmcb_gpa(vcpu, gpa))
		return false;
	if (mkvm_read_guest_phys(vcpu, *gpa, to_svm(vcpu)->nested.vmcb12, PAGE_SIZE)) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return false;
	}
	return true;
}

/* The SVM instructions are 3 bytes (0f 01 d8-df): without nRIP, RIP moves past them. */
static void svm_insn_done(struct mkvm_vcpu *vcpu)
{
	mkvm_rip_past_insn(vcpu, mkvm_svm_next_rip(vcpu, 3));
}

static bool valid_event_inj(u32 inj)
{
	u32 type = inj & SVM_EVTINJ_TYPE_MASK;
	u8 vector = inj & SVM_EVTINJ_VEC_MASK;

	if (!(inj & SVM_EVTINJ_VALID))
		return true;
	/* Types 1, 5, 6 and 7 are reserved; an exception is a vector below 32, not NMI's. */
	switch (type) {
	case SVM_EVTINJ_TYPE_INTR:
	case SVM_EVTINJ_TYPE_NMI:
	case SVM_EVTINJ_TYPE_SOFT:
		return true;
	case SVM_EVTINJ_TYPE_EXEPT:
		return vector < 32 && vector != X86_TRAP_NMI;
	default:
		return false;
	}
}

/**
 * mkvm_svm_vmcb12_valid() - the consistency checks of VMRUN (APM 15.5.1)
 * @vcpu: the vCPU, whose CPUID says which CR4 bits and addresses exist
 * @v12: the VMCB
 *
 * Return: true when VMRUN may run it; false when it ends with VMEXIT_INVALID.
 */
bool mkvm_svm_vmcb12_valid(struct mkvm_vcpu *vcpu, const struct vmcb *v12)
{
	const struct vmcb_save_area *s = &v12->save;
	const struct vmcb_control_area *c = &v12->control;
	unsigned int maxphy = mkvm_guest_maxphyaddr(vcpu);
	u64 efer_ok = EFER_SCE | EFER_LME | EFER_LMA | EFER_NX | EFER_SVME | EFER_FFXSR;

	if (!(s->efer & EFER_SVME) || (s->efer & ~efer_ok))
		return false;
	if (!(s->cr0 & X86_CR0_CD) && (s->cr0 & X86_CR0_NW))
		return false;
	if ((s->cr0 >> 32) || (s->dr6 >> 32) || (s->dr7 >> 32))
		return false;
	if (s->cr4 & ~mkvm_cr4_allowed(vcpu))
		return false;
	if ((s->efer & EFER_LME) && (s->cr0 & X86_CR0_PG)) {
		if (!(s->cr4 & X86_CR4_PAE) || !(s->cr0 & X86_CR0_PE))
			return false;
		if ((s->cs.attrib & SVM_SELECTOR_L_MASK) && (s->cs.attrib & SVM_SELECTOR_DB_MASK))
			return false;
		if (s->cr3 >> maxphy)
			return false;
	}
	if (!(c->intercepts[INTERCEPT_VMRUN / 32] & BIT(INTERCEPT_VMRUN % 32)) || !c->asid)
		return false;
	if (((c->iopm_base_pa & PAGE_MASK) + IOPM_SIZE - 1) >> maxphy ||
	    ((c->msrpm_base_pa & PAGE_MASK) + MSRPM_SIZE - 1) >> maxphy)
		return false;
	/* With nested paging, L2's gPAT is loaded too (APM 15.25.8). */
	if ((c->nested_ctl & SVM_NESTED_CTL_NP_ENABLE) &&
	    ((c->nested_cr3 >> maxphy) || !mkvm_pat_valid(s->g_pat)))
		return false;
	return valid_event_inj(c->event_inj);
}

/**
 * mkvm_svm_copy_vmload_state() - copy what VMLOAD and VMSAVE move (APM vol. 3 VMLOAD)
 * @to: the save area written
 * @from: the save area read
 *
 * FS, GS, TR, LDTR and the syscall MSRs, which VMRUN and #VMEXIT leave alone.
 */
void mkvm_svm_copy_vmload_state(struct vmcb_save_area *to, const struct vmcb_save_area *from)
{
	to->fs = from->fs;
	to->gs = from->gs;
	to->tr = from->tr;
	to->ldtr = from->ldtr;
	to->kernel_gs_base = from->kernel_gs_base;
	to->star = from->star;
	to->lstar = from->lstar;
	to->cstar = from->cstar;
	to->sfmask = from->sfmask;
	to->sysenter_cs = from->sysenter_cs;
	to->sysenter_esp = from->sysenter_esp;
	to->sysenter_eip = from->sysenter_eip;
}

/* vmcb02's controls: both hypervisors' intercepts, L1's events for L2, L0's paging and maps. */
static void prepare_vmcb02_control(struct mkvm_svm_vcpu *svm)
{
	struct vmcb_control_area *c02 = &svm->nested.vmcb02->control;
	const struct vmcb_control_area *c01 = &svm->vmcb01->control;
	const struct vmcb_control_area *c12 = &svm->nested.vmcb12->control;
	u32 vintr = V_TPR_MASK | V_IRQ_MASK | V_INTR_PRIO_MASK | V_IGN_TPR_MASK;

	memset(c02, 0, sizeof(*c02));
	for (int i = 0; i < MAX_INTERCEPT; i++) {
		u32 mine = c01->intercepts[i];

		for (int b = 0; b < 32; b++)
			if (l1_only_intercept(32 * i + b))
				mine &= ~BIT(b);
		c02->intercepts[i] = mine | c12->intercepts[i];
	}
	/* Every I/O port and MSR of L2 exits; L1's own maps decide whose exit it is. */
	c02->iopm_base_pa = c01->iopm_base_pa;
	c02->msrpm_base_pa = c01->msrpm_base_pa;
	/* L2's TSC is L1's plus L1's offset for it (APM 15.30.5). */
	c02->tsc_offset = c01->tsc_offset + c12->tsc_offset;
	/*
	 * L1's virtual interrupt for L2 is delivered by the hardware.  Physical
	 * interrupts always exit to minikvm, so V_INTR_MASKING is always set;
	 * without L1's, L2's CR8 is L1's TPR.
	 */
	c02->int_ctl = (c12->int_ctl & vintr) | V_INTR_MASKING_MASK;
	if (!(c12->int_ctl & V_INTR_MASKING_MASK))
		c02->int_ctl = (c02->int_ctl & ~V_TPR_MASK) | (c01->int_ctl & V_TPR_MASK);
	c02->int_vector = c12->int_vector;
	c02->int_state = c12->int_state & SVM_INTERRUPT_SHADOW_MASK;
	c02->event_inj = c12->event_inj;
	c02->event_inj_err = c12->event_inj_err;
	/* With NRIPS, an injected INTn, INT3 or INTO returns there (APM 15.20). */
	c02->next_rip = c12->next_rip;
	c02->nested_ctl = c01->nested_ctl;
	c02->nested_cr3 = svm->nested.npt ? svm->nested.nnpt_root : c01->nested_cr3;
}

/*
 * The hardware runs L1 on vmcb01 from the next entry on, on L1's own
 * paging: guest-physical addresses are the VM's again.
 */
static void use_vmcb01(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->vmcb = svm->vmcb01;
	svm->vmcb_pa = svm->vmcb01_pa;
	svm->nested.guest_mode = false;
	svm->nested.run_pending = false;
	svm->iret_seen = false;
	svm->nmi_singlestep = false;
	svm->nested.npt = false;
	vcpu->arch.mmu.nested_gpa = NULL;
	vcpu->arch.mmu.nested_fault = NULL;
}

/**
 * mkvm_svm_new_asid() - a fresh ASID, so no translation of before is used
 * @vcpu: the vCPU
 *
 * At VMRUN and #VMEXIT L1's and L2's translations must not mix (APM 15.16).
 */
void mkvm_svm_new_asid(struct mkvm_vcpu *vcpu)
{
	to_svm(vcpu)->asid_generation = 0;
}

/*
 * L2 on L1's nested paging or not, from vmcb12: the nNPT is kept if it was
 * built for the same tables, ASID and paging mode of L1's and L1 asks for
 * no TLB flush (APM 15.16.1), else emptied.  Without memory for it, L2 runs
 * without (and L1 sees its guest-physical addresses taken as its own).
 */
static void setup_l2_paging(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	const struct vmcb_control_area *c12 = &n->vmcb12->control;
	u64 mode = (n->l1_efer & EFER_LMA) | (n->l1_cr4 & (X86_CR4_PAE | X86_CR4_PSE));

	n->npt = c12->nested_ctl & SVM_NESTED_CTL_NP_ENABLE;
	vcpu->arch.mmu.nested_gpa = NULL;
	vcpu->arch.mmu.nested_fault = NULL;
	if (!n->npt)
		return;
	if (!n->nnpt_root || c12->tlb_ctl != TLB_CONTROL_DO_NOTHING ||
	    c12->nested_cr3 != n->nnpt_ncr3 || c12->asid != n->nnpt_asid || mode != n->nnpt_mode) {
		/* Cannot fail: the root was allocated with the vCPU. */
		mkvm_svm_nnpt_reset(vcpu);
		n->nnpt_ncr3 = c12->nested_cr3;
		n->nnpt_asid = c12->asid;
		n->nnpt_mode = mode;
	}
	vcpu->arch.mmu.nested_gpa = mkvm_svm_nested_gpa;
	vcpu->arch.mmu.nested_fault = mkvm_svm_nested_fault;
}

/*
 * The hardware runs L2 on vmcb02 from the next entry on; no NMI window of
 * L1's is being watched there.
 */
static void use_vmcb02(struct mkvm_svm_vcpu *svm, bool run_pending)
{
	svm->vmcb = svm->nested.vmcb02;
	svm->vmcb_pa = svm->nested.vmcb02_pa;
	svm->nested.guest_mode = true;
	svm->nested.run_pending = run_pending;
	/* Recorded here, not at entry, where the VMM may have put an event of its own. */
	svm->nested.l1_event = run_pending ? svm->nested.vmcb12->control.event_inj : 0;
	svm->iret_seen = false;
	svm->nmi_singlestep = false;
}

/* Enter L2: vmcb12 passed its checks; L1 goes on at RIP (past VMRUN) at its #VMEXIT. */
static void enter_l2(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	const struct vmcb_save_area *s12 = &n->vmcb12->save;
	struct vmcb_save_area *s01 = &svm->vmcb01->save, *s02 = &n->vmcb02->save;

	/* What #VMEXIT reloads (APM 15.5.1); the rest of L1's state is in vmcb01 already. */
	s01->rip = vcpu->arch.rip;
	s01->rsp = vcpu->arch.regs[REG_RSP];
	s01->rax = vcpu->arch.regs[REG_RAX];
	s01->rflags = vcpu->arch.rflags;
	n->l1_cr0 = vcpu->arch.cr0;
	n->l1_cr3 = vcpu->arch.cr3;
	n->l1_cr4 = vcpu->arch.cr4;
	n->l1_efer = vcpu->arch.efer;
	/* L2 starts with NMIs unblocked; L1's blocking waits for its #VMEXIT. */
	n->l1_nmi_masked = vcpu->arch.events.nmi_masked;
	vcpu->arch.events.nmi_masked = false;

	/* VMRUN loads these from vmcb12; FS, GS, TR, LDTR and the MSRs stay L1's. */
	*s02 = *s01;
	s02->es = s12->es;
	s02->cs = s12->cs;
	s02->ss = s12->ss;
	s02->ds = s12->ds;
	s02->gdtr = s12->gdtr;
	s02->idtr = s12->idtr;
	s02->cpl = s12->cpl;
	s02->cr2 = s12->cr2;
	s02->dr6 = s12->dr6;
	s02->dr7 = s12->dr7;
	setup_l2_paging(vcpu);
	/* With nested paging L2 has a PAT of its own (APM 15.25.8). */
	if (n->npt)
		s02->g_pat = s12->g_pat;
	prepare_vmcb02_control(svm);
	use_vmcb02(svm, true);
	/* VMRUN sets GIF (APM 15.17). */
	svm->gif = true;

	vcpu->arch.cr0 = s12->cr0;
	vcpu->arch.cr3 = s12->cr3;
	vcpu->arch.cr4 = s12->cr4;
	/* The CPU makes LMA follow LME and paging (APM vol. 2 14.6). */
	vcpu->arch.efer = s12->efer & ~EFER_LMA;
	if ((s12->efer & EFER_LME) && (s12->cr0 & X86_CR0_PG))
		vcpu->arch.efer |= EFER_LMA;
	vcpu->arch.rip = s12->rip;
	vcpu->arch.regs[REG_RSP] = s12->rsp;
	vcpu->arch.regs[REG_RAX] = s12->rax;
	vcpu->arch.rflags = s12->rflags | X86_EFLAGS_FIXED;
	mkvm_x86->update_crs(vcpu);
	mkvm_svm_new_asid(vcpu);
}

/**
 * mkvm_svm_handle_vmrun() - L1's VMRUN (APM 15.5)
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_svm_handle_vmrun(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	struct vmcb *v12 = n->vmcb12;
	u64 gpa;

	if (!svm_insn_read_vmcb(vcpu, &gpa))
		return 1;
	svm_insn_done(vcpu);
	if (!mkvm_svm_vmcb12_valid(vcpu, v12)) {
		struct vmcb_control_area *c = &v12->control;

		/* VMEXIT_INVALID is -1 in all 64 bits of EXITCODE (APM 15.6). */
		c->exit_code = SVM_EXIT_ERR;
		c->exit_code_hi = -1u;
		c->exit_info_1 = 0;
		c->exit_info_2 = 0;
		if (mkvm_write_guest_phys(vcpu, gpa + offsetof(struct vmcb, control.exit_code),
					  &c->exit_code, offsetof(struct vmcb_control_area,
								  exit_int_info) -
					  offsetof(struct vmcb_control_area, exit_code)))
			mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
	n->vmcb12_gpa = gpa;
	enter_l2(vcpu);
	return 1;
}

/* Write bytes [@off, @off + @len) of the vmcb12 copy back to L1's VMCB. */
static int put_vmcb12(struct mkvm_vcpu *vcpu, size_t off, size_t len)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;

	return mkvm_write_guest_phys(vcpu, n->vmcb12_gpa + off, (u8 *)n->vmcb12 + off, len);
}

#define PUT_FIELDS(vcpu, first, last) \
	put_vmcb12(vcpu, offsetof(struct vmcb, first), \
		   offsetofend(struct vmcb, last) - offsetof(struct vmcb, first))

/* What #VMEXIT writes to vmcb12 (APM 15.6): L2's state and the exit's description. */
static int save_l2(struct mkvm_vcpu *vcpu, u64 code, u64 info1, u64 info2, u32 eii, u32 eii_err)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb *v02 = svm->vmcb, *v12 = svm->nested.vmcb12;
	struct vmcb_save_area *s12 = &v12->save;
	struct vmcb_control_area *c12 = &v12->control;
	u32 vbits = V_TPR_MASK | V_IRQ_MASK;
	u64 dr6, dr7;
	int r;

	s12->es = v02->save.es;
	s12->cs = v02->save.cs;
	s12->ss = v02->save.ss;
	s12->ds = v02->save.ds;
	s12->gdtr = v02->save.gdtr;
	s12->idtr = v02->save.idtr;
	s12->cpl = v02->save.cpl;
	s12->efer = vcpu->arch.efer;
	s12->cr0 = vcpu->arch.cr0;
	s12->cr2 = v02->save.cr2;
	s12->cr3 = vcpu->arch.cr3;
	s12->cr4 = vcpu->arch.cr4;
	mkvm_get_guest_dr67(vcpu, &dr6, &dr7);
	s12->dr6 = dr6;
	s12->dr7 = dr7;
	s12->rflags = vcpu->arch.rflags;
	s12->rip = vcpu->arch.rip;
	s12->rsp = vcpu->arch.regs[REG_RSP];
	s12->rax = vcpu->arch.regs[REG_RAX];

	/* V_IRQ is clear once L2 took L1's virtual interrupt; V_TPR is L2's CR8. */
	c12->int_ctl = (c12->int_ctl & ~vbits) | (v02->control.int_ctl & vbits);
	c12->int_state = v02->control.int_state & SVM_INTERRUPT_SHADOW_MASK;
	c12->exit_code = code;
	c12->exit_code_hi = code >> 32;
	c12->exit_info_1 = info1;
	c12->exit_info_2 = info2;
	c12->exit_int_info = eii;
	c12->exit_int_info_err = eii_err;
	/* EVENTINJ was taken in at VMRUN (APM 15.20): it reads clear, as on KVM. */
	c12->event_inj = 0;
	c12->next_rip = (mkvm_nested_svm_features & SVM_FEATURE_NRIPS) ? v02->control.next_rip : 0;

	r = PUT_FIELDS(vcpu, save.es, save.ds);
	r = r ?: PUT_FIELDS(vcpu, save.gdtr, save.gdtr);
	r = r ?: PUT_FIELDS(vcpu, save.idtr, save.idtr);
	r = r ?: PUT_FIELDS(vcpu, save.cpl, save.cpl);
	r = r ?: PUT_FIELDS(vcpu, save.efer, save.efer);
	r = r ?: PUT_FIELDS(vcpu, save.cr4, save.rip);
	r = r ?: PUT_FIELDS(vcpu, save.rsp, save.rsp);
	r = r ?: PUT_FIELDS(vcpu, save.rax, save.rax);
	r = r ?: PUT_FIELDS(vcpu, save.cr2, save.cr2);
	r = r ?: PUT_FIELDS(vcpu, control.int_ctl, control.int_ctl);
	r = r ?: PUT_FIELDS(vcpu, control.int_state, control.int_state);
	r = r ?: PUT_FIELDS(vcpu, control.exit_code, control.exit_int_info_err);
	r = r ?: PUT_FIELDS(vcpu, control.event_inj, control.event_inj);
	return r ?: PUT_FIELDS(vcpu, control.next_rip, control.next_rip);
}

/* Back to L1 as #VMEXIT leaves it (APM 15.6): host state from vmcb01, GIF clear. */
static void leave_l2(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	struct vmcb *v01 = svm->vmcb01, *v02 = n->vmcb02;

	/* What L2 left in FS, GS, TR, LDTR, the syscall MSRs and CR2 is L1's now. */
	mkvm_svm_copy_vmload_state(&v01->save, &v02->save);
	v01->save.cr2 = v02->save.cr2;
	if (!(n->vmcb12->control.int_ctl & V_INTR_MASKING_MASK))
		v01->control.int_ctl = (v01->control.int_ctl & ~V_TPR_MASK) |
				       (v02->control.int_ctl & V_TPR_MASK);
	/* Breakpoints off, CPL 0, no interrupt shadow. */
	v01->save.dr7 = MKVM_DR7_RESET;
	v01->save.cpl = 0;
	v01->control.int_state = 0;
	v01->control.event_inj = 0;

	use_vmcb01(vcpu);
	vcpu->arch.cr0 = n->l1_cr0;
	vcpu->arch.cr3 = n->l1_cr3;
	vcpu->arch.cr4 = n->l1_cr4;
	vcpu->arch.efer = n->l1_efer;
	vcpu->arch.rip = v01->save.rip;
	vcpu->arch.regs[REG_RSP] = v01->save.rsp;
	vcpu->arch.regs[REG_RAX] = v01->save.rax;
	vcpu->arch.rflags = v01->save.rflags | X86_EFLAGS_FIXED;
	/* What was on its way into L2 is in EXITINTINFO now, not L1's to take. */
	mkvm_events_exited(vcpu);
	vcpu->arch.events.nmi_masked = n->l1_nmi_masked;
	mkvm_x86->update_nmi_mask(vcpu);
	mkvm_x86->update_crs(vcpu);
	mkvm_svm_new_asid(vcpu);
}

/*
 * #VMEXIT from L2 to L1 with the given exit code and information.  If
 * L1's VMCB cannot be written any more (L1 took its memory away), L1 is
 * left as the processor would leave it with a bad host save area: shut
 * down.
 */
static void nested_vmexit(struct mkvm_vcpu *vcpu, u64 code, u64 info1, u64 info2, u32 eii,
			  u32 eii_err)
{
	int r = save_l2(vcpu, code, info1, info2, eii, eii_err);

	leave_l2(vcpu);
	to_svm(vcpu)->gif = false;
	if (r)
		vcpu->arch.shutdown_pending = true;
}

static u32 l2_event_info(struct mkvm_vcpu *vcpu, u32 *err);

/**
 * mkvm_svm_nested_vmexit() - #VMEXIT to L1 for an exit minikvm made for it
 * @vcpu: the vCPU, running L2, with slots_sem held
 * @code: the exit code
 * @info1: EXITINFO1
 * @info2: EXITINFO2
 *
 * An event on its way into L2 goes to L1 in EXITINTINFO.
 */
void mkvm_svm_nested_vmexit(struct mkvm_vcpu *vcpu, u64 code, u64 info1, u64 info2)
{
	u32 eii, eii_err;

	eii = l2_event_info(vcpu, &eii_err);
	nested_vmexit(vcpu, code, info1, info2, eii, eii_err);
}

/**
 * mkvm_svm_leave_nested() - forget L2 without a #VMEXIT
 * @vcpu: the vCPU
 *
 * For RESET, INIT, a shutdown that L1 did not intercept, and
 * KVM_SET_NESTED_STATE: the vCPU keeps the registers it has, now on
 * vmcb01, and vmcb12 is left as it is.
 */
void mkvm_svm_leave_nested(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	struct vmcb *v01 = svm->vmcb01, *v02 = n->vmcb02;

	if (!n->guest_mode)
		return;
	v01->save = v02->save;
	v01->control.int_state = v02->control.int_state & SVM_INTERRUPT_SHADOW_MASK;
	if (!(n->vmcb12->control.int_ctl & V_INTR_MASKING_MASK))
		v01->control.int_ctl = (v01->control.int_ctl & ~V_TPR_MASK) |
				       (v02->control.int_ctl & V_TPR_MASK);
	use_vmcb01(vcpu);
	mkvm_x86->update_crs(vcpu);
	mkvm_svm_new_asid(vcpu);
}

/**
 * mkvm_svm_enter_saved_l2() - guest mode as KVM_SET_NESTED_STATE describes it
 * @vcpu: the vCPU, not in guest mode, with L2's registers already set
 * @l1: L1's vmcb12 controls and its state for #VMEXIT, checked
 * @gpa: vmcb12's address
 * @run_pending: VMRUN was emulated and L2 not entered yet: EVENTINJ still goes in
 */
void mkvm_svm_enter_saved_l2(struct mkvm_vcpu *vcpu, const struct vmcb *l1, u64 gpa,
			     bool run_pending)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	struct vmcb_save_area *s01 = &svm->vmcb01->save;
	const struct vmcb_save_area *ls = &l1->save;

	/* The registers userspace set are L2's; L1's are those VMRUN saved (APM 15.5.1). */
	n->vmcb02->save = *s01;
	s01->es = ls->es;
	s01->cs = ls->cs;
	s01->ss = ls->ss;
	s01->ds = ls->ds;
	s01->gdtr = ls->gdtr;
	s01->idtr = ls->idtr;
	s01->rip = ls->rip;
	s01->rsp = ls->rsp;
	s01->rax = ls->rax;
	s01->rflags = ls->rflags;
	n->l1_cr0 = ls->cr0;
	n->l1_cr3 = ls->cr3;
	n->l1_cr4 = ls->cr4;
	/* As the CPU keeps them: LMA with LME and paging (APM vol. 2 14.6). */
	n->l1_efer = ls->efer & ~EFER_LMA;
	if ((ls->efer & EFER_LME) && (ls->cr0 & X86_CR0_PG))
		n->l1_efer |= EFER_LMA;
	n->l1_nmi_masked = false;
	/* L1's PAT, which the MSRs restored after this set as L2's run on (svm.c). */
	if (mkvm_pat_valid(ls->g_pat))
		s01->g_pat = ls->g_pat;
	n->vmcb12->control = l1->control;
	/* An event injected at the VMRUN is gone once L2 ran. */
	if (!run_pending)
		n->vmcb12->control.event_inj = 0;
	n->vmcb12_gpa = gpa;
	/* L1's nested paging: the nNPT starts empty, as after a TLB flush. */
	n->nnpt_root = 0;
	setup_l2_paging(vcpu);
	prepare_vmcb02_control(svm);
	use_vmcb02(svm, run_pending);
	mkvm_x86->update_crs(vcpu);
	mkvm_svm_new_asid(vcpu);
}

/* L1's I/O permission map covers the port and the size of the access (APM 15.10.1). */
static bool l1_intercepts_io(struct mkvm_vcpu *vcpu, u32 info)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	u16 port = info >> 16;
	unsigned int size = (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
	u16 bits, mask = ((1u << size) - 1) << (port % 8);

	if (!vmcb12_intercepts(n, INTERCEPT_IOIO_PROT))
		return false;
	/* A map L1 cannot be read from is all ones, as the hardware would find nothing. */
	if (mkvm_read_guest_phys(vcpu, (n->vmcb12->control.iopm_base_pa & PAGE_MASK) + port / 8,
				 &bits, sizeof(bits)))
		return true;
	return bits & mask;
}

/* L1's MSR permission map: two bits per MSR in three ranges, others always exit (APM 15.11). */
static bool l1_intercepts_msr(struct mkvm_vcpu *vcpu, bool write)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	u32 msr = vcpu->arch.regs[REG_RCX];
	static const u32 base[] = { 0, 0xc0000000, 0xc0010000 };
	u64 off = ~0ull;
	u8 byte;

	if (!vmcb12_intercepts(n, INTERCEPT_MSR_PROT))
		return false;
	for (int i = 0; i < ARRAY_SIZE(base); i++)
		if (msr - base[i] < 0x2000)
			off = i * 0x800 + (msr - base[i]) / 4;
	if (off == ~0ull)
		return true;
	if (mkvm_read_guest_phys(vcpu, (n->vmcb12->control.msrpm_base_pa & PAGE_MASK) + off,
				 &byte, 1))
		return true;
	return byte & BIT(2 * (msr % 4) + write);
}

/* Whether L1 takes this exit from L2 (APM 15.9: an intercept bit per exit code). */
static bool l1_wants_exit(struct mkvm_vcpu *vcpu, u32 code)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_control_area *c = &svm->vmcb->control;

	switch (code) {
	case (u32)SVM_EXIT_ERR:
		/* The hardware refused what L1 gave: L1's VMRUN failed after all. */
		return true;
	case SVM_EXIT_INTR:
	case SVM_EXIT_NMI:
	case SVM_EXIT_SMI:
	case SVM_EXIT_NPF:
	case SVM_EXIT_EXCP_BASE + MC_VECTOR:
		/* The host's interrupt, NMI or machine check, or minikvm's own paging. */
		return false;
	case SVM_EXIT_IOIO:
		return l1_intercepts_io(vcpu, c->exit_info_1);
	case SVM_EXIT_MSR:
		return l1_intercepts_msr(vcpu, c->exit_info_1);
	default:
		/* Exit codes below the VMCB's intercept vectors' end are their bit numbers. */
		return vmcb12_intercepts(&svm->nested, code);
	}
}

/*
 * An INTn, INT3 or INTO that L1 injected into L2, cut short by an exit of
 * minikvm's own.  mkvm_svm_complete_events() leaves such events to the
 * instruction at RIP, which is right for L2's own INTn, but L1 moved L2's
 * RIP past it when it injected them: they go in again as they were, with
 * their return address (next_rip), on an entry of their own.
 */
static void reinject_soft_event(struct mkvm_vcpu *vcpu, u32 eii, u32 err)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	u32 type = eii & SVM_EXITINTINFO_TYPE_MASK, what = SVM_EVTINJ_VALID |
		   SVM_EVTINJ_TYPE_MASK | SVM_EVTINJ_VEC_MASK;
	u8 vector = eii & SVM_EXITINTINFO_VEC_MASK;

	if (!(eii & SVM_EXITINTINFO_VALID) || (eii & what) != (svm->nested.l1_event & what))
		return;
	if (type != SVM_EXITINTINFO_TYPE_SOFT &&
	    !(type == SVM_EXITINTINFO_TYPE_EXEPT &&
	      (vector == X86_TRAP_BP || vector == X86_TRAP_OF)))
		return;
	svm->vmcb->control.event_inj = eii;
	svm->vmcb->control.event_inj_err = err;
	/* The exit left its own nRIP (0 for most, APM 15.7.1); the return address is L1's. */
	svm->vmcb->control.next_rip = svm->nested.vmcb12->control.next_rip;
	svm->nested.run_pending = true;
	svm->nested.l1_event = eii;
	/*
	 * KVM_GET_NESTED_STATE before that entry saves RUN_PENDING with
	 * vmcb12's EVENTINJ, which the restore injects again with vmcb12's
	 * next_rip: the event must be there, as it was at VMRUN.
	 */
	svm->nested.vmcb12->control.event_inj = eii;
	svm->nested.vmcb12->control.event_inj_err = err;
}

/**
 * mkvm_svm_nested_reflect() - give an exit from L2 to L1 if L1 intercepts it
 * @vcpu: the vCPU, just after an exit from L2
 * @exit_int_info: EXITINTINFO as the hardware wrote it
 * @exit_int_info_err: its error code
 *
 * Return: true when the exit is dealt with (given to L1, or made #UD in L2
 * for an instruction L2 may not run without L1's intercept); false when
 * minikvm handles it for L2.
 */
bool mkvm_svm_nested_reflect(struct mkvm_vcpu *vcpu, u32 exit_int_info, u32 exit_int_info_err)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	u32 code = c->exit_code;

	if (l1_wants_exit(vcpu, code)) {
		u64 full = code == (u32)SVM_EXIT_ERR ? ~0ull : (u64)c->exit_code_hi << 32 | code;

		/* The error code means something only with its valid bits (APM 15.7.2). */
		if (!(exit_int_info & SVM_EXITINTINFO_VALID_ERR))
			exit_int_info_err = 0;
		nested_vmexit(vcpu, full, c->exit_info_1, c->exit_info_2, exit_int_info,
			      exit_int_info_err);
		return true;
	}
	/* Without L1's intercept VMMCALL is #UD (APM vol. 3 VMMCALL): L2 has no hypercalls. */
	if (code == SVM_EXIT_VMMCALL) {
		mkvm_queue_exception(vcpu, X86_TRAP_UD, false, 0);
		return true;
	}
	reinject_soft_event(vcpu, exit_int_info, exit_int_info_err);
	return false;
}

/**
 * mkvm_svm_nested_exit_int_info() - EXITINTINFO of an exit from L2, made sane
 * @vcpu: the vCPU, just after an exit from L2
 *
 * QEMU's emulated SVM reports a virtual interrupt (L1's V_IRQ for L2) whose
 * delivery an exit cut short as an exception with its vector, above 31,
 * which no exception has (SDM vol. 3 6.3.1), and which VMRUN then refuses
 * to inject.  It is an interrupt: still in V_IRQ if that is set, so taken
 * again without injecting it; else injected as the interrupt it was.
 *
 * Return: the EXITINTINFO to use, also written back to the VMCB.
 */
u32 mkvm_svm_nested_exit_int_info(struct mkvm_vcpu *vcpu)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	u32 eii = c->exit_int_info;

	if ((eii & SVM_EXITINTINFO_VALID) &&
	    (eii & SVM_EXITINTINFO_TYPE_MASK) == SVM_EXITINTINFO_TYPE_EXEPT &&
	    (eii & SVM_EXITINTINFO_VEC_MASK) > 31) {
		if (c->int_ctl & V_IRQ_MASK)
			eii = 0;
		else
			eii = (eii & SVM_EXITINTINFO_VEC_MASK) | SVM_EXITINTINFO_TYPE_INTR |
			      SVM_EXITINTINFO_VALID;
		c->exit_int_info = eii;
	}
	return eii;
}

/* An interrupt for L1 is pending in its local APIC or 8259. */
static bool l1_irq_pending(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.lapic &&
	       (mkvm_extint_pending(vcpu) || mkvm_lapic_pending_irq(vcpu) >= 0);
}

/* An interrupt, NMI, SMI or INIT for L1 waits, which may end L2's next entry at once. */
static bool l1_event_waits(struct mkvm_vcpu *vcpu)
{
	return l1_irq_pending(vcpu) || vcpu->arch.events.nmi_pending || vcpu->arch.smm.pending ||
	       (vcpu->arch.lapic && mkvm_lapic_init_pending(vcpu));
}

/**
 * mkvm_svm_nested_irq_to_vintr() - give L2 an interrupt of L1's as a virtual one
 * @vcpu: the vCPU, about to enter L2
 *
 * QEMU 7.2's emulated SVM now and then delivers an interrupt from EVENTINJ
 * a second time, ignoring RFLAGS.IF, wherever the guest then is (see
 * mkvm_svm_offer_irq()): an L2 kernel holding a spinlock with interrupts
 * off takes the handler again and deadlocks.  L1's KVM injects L2's every
 * interrupt that way.  When L2 can take the interrupt at the entry itself
 * (RFLAGS.IF set, no interrupt shadow), a virtual interrupt of the highest
 * priority that ignores V_TPR is taken at the same instruction boundary
 * (APM vol. 2 15.21.4), like EVENTINJ's, and QEMU delivers it once.  V_IRQ
 * must be free for it (L1 does not offer one of its own) and no VINTR
 * intercept may turn it into an exit; both come back after the entry.
 *
 * Not while an event for L1 waits: its exit (a self-IPI, as KVM uses to
 * inject one interrupt after another) would come before a virtual
 * interrupt is taken, while EVENTINJ's goes in first (APM 15.20).  L1's
 * KVM would inject the same interrupt again and again with nothing taken.
 */
void mkvm_svm_nested_irq_to_vintr(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	struct vmcb *v02 = svm->vmcb;
	struct vmcb_control_area *c = &v02->control;
	u32 inj = c->event_inj;

	/*
	 * Vectors below 32 stay in EVENTINJ: QEMU reports a virtual interrupt
	 * cut short as an exception, which is told apart by its vector only.
	 */
	if ((inj & (SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_MASK | SVM_EVTINJ_VALID_ERR)) !=
	    (SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_INTR) || (inj & SVM_EVTINJ_VEC_MASK) < 32 ||
	    (c->int_ctl & V_IRQ_MASK) || (c->int_state & SVM_INTERRUPT_SHADOW_MASK) ||
	    (v02->save.rflags & (X86_EFLAGS_IF | X86_EFLAGS_TF)) != X86_EFLAGS_IF ||
	    l1_event_waits(vcpu))
		return;
	n->vintr_irq = true;
	n->vintr_vector = inj & SVM_EVTINJ_VEC_MASK;
	n->vintr_saved_vector = c->int_vector;
	n->vintr_saved_bits = c->int_ctl & V_IRQ_INJECTION_BITS_MASK;
	n->vintr_saved_intercept = c->intercepts[INTERCEPT_VINTR / 32] & BIT(INTERCEPT_VINTR % 32);
	c->event_inj = 0;
	c->int_vector = n->vintr_vector;
	c->int_ctl = (c->int_ctl & ~V_IRQ_INJECTION_BITS_MASK) | V_IRQ_MASK | V_IGN_TPR_MASK |
		     (0xf << V_INTR_PRIO_SHIFT);
	mkvm_svm_clr_intercept(v02, INTERCEPT_VINTR);
}

/**
 * mkvm_svm_nested_irq_from_vintr() - the exit after mkvm_svm_nested_irq_to_vintr()
 * @vcpu: the vCPU, just after the entry that offered L1's interrupt in V_IRQ
 *
 * V_IRQ gets back what it held.  An interrupt not taken, or taken and cut
 * short (which QEMU reports as an exception with the vector), is described
 * in EXITINTINFO as the injected interrupt it was (APM 15.7.2), so that
 * the exit's handling treats it as after an EVENTINJ: reported to L1 with
 * its #VMEXIT, or injected again (and offered this way again) by minikvm.
 * An interrupt not taken cannot normally come with another event in
 * EXITINTINFO (it is taken before L2's first instruction); if one is
 * there, it stays, and the interrupt is lost as with any emulator's fault.
 */
void mkvm_svm_nested_irq_from_vintr(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_svm_nested *n = &svm->nested;
	struct vmcb *v02 = svm->vmcb;
	struct vmcb_control_area *c = &v02->control;
	u32 eii = c->exit_int_info, type = eii & SVM_EXITINTINFO_TYPE_MASK;
	u8 v = n->vintr_vector;
	bool cut_short, pending = c->int_ctl & V_IRQ_MASK;

	n->vintr_irq = false;
	cut_short = (eii & SVM_EXITINTINFO_VALID) && (eii & SVM_EXITINTINFO_VEC_MASK) == v &&
		    (type == SVM_EXITINTINFO_TYPE_INTR ||
		     (type == SVM_EXITINTINFO_TYPE_EXEPT && v > 31));
	c->int_ctl = (c->int_ctl & ~V_IRQ_INJECTION_BITS_MASK) | n->vintr_saved_bits;
	c->int_vector = n->vintr_saved_vector;
	if (n->vintr_saved_intercept)
		mkvm_svm_set_intercept(v02, INTERCEPT_VINTR);
	/* Not for a VMRUN that failed: nothing went in, and L1 gets VMEXIT_INVALID. */
	if (c->exit_code != SVM_EXIT_ERR &&
	    (cut_short || (pending && !(eii & SVM_EXITINTINFO_VALID)))) {
		c->exit_int_info = v | SVM_EXITINTINFO_TYPE_INTR | SVM_EXITINTINFO_VALID;
		c->exit_int_info_err = 0;
	}
}

/* An event cut short on its way into L2, as EXITINTINFO describes it (APM 15.7.2). */
static u32 l2_event_info(struct mkvm_vcpu *vcpu, u32 *err)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	const struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;

	*err = 0;
	/* L1's event still to go in, or an INTn of its going in again (reinject_soft_event()). */
	if (to_svm(vcpu)->nested.run_pending && (c->event_inj & SVM_EVTINJ_VALID)) {
		if (c->event_inj & SVM_EVTINJ_VALID_ERR)
			*err = c->event_inj_err;
		return c->event_inj;
	}
	if (ev->exc.queued && ev->exc.injected) {
		*err = ev->exc.error;
		return ev->exc.vector | SVM_EXITINTINFO_TYPE_EXEPT | SVM_EXITINTINFO_VALID |
		       (ev->exc.has_error ? SVM_EXITINTINFO_VALID_ERR : 0);
	}
	if (ev->nmi_injected)
		return X86_TRAP_NMI | SVM_EXITINTINFO_TYPE_NMI | SVM_EXITINTINFO_VALID;
	if (ev->irq.injected)
		return ev->irq.vector | SVM_EXITINTINFO_TYPE_INTR | SVM_EXITINTINFO_VALID;
	return 0;
}


/* The exit an event for L1 makes while L2 runs, or 0 for none (APM 15.9, 15.12). */
static u32 event_exit_code(struct mkvm_vcpu *vcpu, u64 *info1, u64 *info2)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct mkvm_events *ev = &vcpu->arch.events;
	struct mkvm_svm_nested *n = &svm->nested;

	*info1 = *info2 = 0;
	if (vcpu->arch.shutdown_pending && vmcb12_intercepts(n, INTERCEPT_SHUTDOWN)) {
		vcpu->arch.shutdown_pending = false;
		return SVM_EXIT_SHUTDOWN;
	}
	/* An exception minikvm raised for L2 (not one it re-injects) goes where L1 says. */
	if (ev->exc.queued && !ev->exc.injected &&
	    vmcb12_intercepts(n, INTERCEPT_EXCEPTION_OFFSET + ev->exc.vector)) {
		u8 vector = ev->exc.vector;

		if (ev->exc.has_error)
			*info1 = ev->exc.error;
		/* A #PF's address goes in EXITINFO2; CR2 is not written (APM 15.12). */
		if (vector == X86_TRAP_PF)
			*info2 = ev->exc.has_payload ? ev->exc.payload : svm->vmcb->save.cr2;
		ev->exc.queued = false;
		ev->exc.has_payload = false;
		return SVM_EXIT_EXCP_BASE + vector;
	}
	if (n->run_pending)
		return 0;
	/* SMI and INIT wait for L1 when it intercepts them (mkvm_svm_smi_blocked()). */
	if (vcpu->arch.smm.pending && vmcb12_intercepts(n, INTERCEPT_SMI))
		return SVM_EXIT_SMI;
	if (vcpu->arch.lapic && mkvm_lapic_init_pending(vcpu) &&
	    vmcb12_intercepts(n, INTERCEPT_INIT))
		return SVM_EXIT_INIT;
	mkvm_lapic_fold_nmis(vcpu);
	if (ev->nmi_pending && vmcb12_intercepts(n, INTERCEPT_NMI))
		return SVM_EXIT_NMI;
	if (l1_irq_pending(vcpu) && vmcb12_intercepts(n, INTERCEPT_INTR) &&
	    mkvm_svm_nested_intr_unmasked(vcpu))
		return SVM_EXIT_INTR;
	return 0;
}

/**
 * mkvm_svm_nested_check_events() - end L2 for what L1 intercepts
 * @vcpu: the vCPU, before an entry, in process context
 *
 * A shutdown, an exception L1 intercepts, an NMI or an interrupt for L1:
 * each makes the #VMEXIT it would make on the processor.  What L2 had on
 * its way in goes to L1 in EXITINTINFO.  The NMI or interrupt stays
 * pending for L1, which takes it once it sets GIF again.
 */
void mkvm_svm_nested_check_events(struct mkvm_vcpu *vcpu)
{
	u64 info1, info2;
	u32 code, eii, eii_err;

	if (likely(!to_svm(vcpu)->nested.guest_mode))
		return;
	down_read(&vcpu->vm->slots_sem);
	code = event_exit_code(vcpu, &info1, &info2);
	if (code) {
		eii = l2_event_info(vcpu, &eii_err);
		nested_vmexit(vcpu, code, info1, info2, eii, eii_err);
	}
	up_read(&vcpu->vm->slots_sem);
}

/**
 * mkvm_svm_handle_vmload() - L1's VMLOAD: FS, GS, TR, LDTR and the syscall MSRs from a VMCB
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_svm_handle_vmload(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	u64 gpa;

	if (!svm_insn_read_vmcb(vcpu, &gpa))
		return 1;
	mkvm_svm_copy_vmload_state(&svm->vmcb->save, &svm->nested.vmcb12->save);
	svm_insn_done(vcpu);
	return 1;
}

/**
 * mkvm_svm_handle_vmsave() - L1's VMSAVE: the state VMLOAD loads, to a VMCB
 * @vcpu: the vCPU
 *
 * Only those fields of the VMCB are written.
 *
 * Return: 1.
 */
int mkvm_svm_handle_vmsave(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb *buf = svm->nested.vmcb12;
	u64 gpa;
	int r;

	if (!svm_insn_allowed(vcpu) || !svm_insn_vmcb_gpa(vcpu, &gpa))
		return 1;
	mkvm_svm_copy_vmload_state(&buf->save, &svm->vmcb->save);
	svm->nested.vmcb12_gpa = gpa;
	r = PUT_FIELDS(vcpu, save.fs, save.gs);
	r = r ?: PUT_FIELDS(vcpu, save.ldtr, save.ldtr);
	r = r ?: PUT_FIELDS(vcpu, save.tr, save.tr);
	r = r ?: PUT_FIELDS(vcpu, save.star, save.sysenter_eip);
	if (r) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
	svm_insn_done(vcpu);
	return 1;
}

static int set_gif(struct mkvm_vcpu *vcpu, bool gif)
{
	if (!svm_insn_allowed(vcpu))
		return 1;
	to_svm(vcpu)->gif = gif;
	svm_insn_done(vcpu);
	return 1;
}

/**
 * mkvm_svm_handle_stgi() - L1's STGI: interrupts and NMIs held back are taken now
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_svm_handle_stgi(struct mkvm_vcpu *vcpu)
{
	return set_gif(vcpu, true);
}

/**
 * mkvm_svm_handle_clgi() - L1's CLGI: hold interrupts and NMIs back (APM 15.17)
 * @vcpu: the vCPU
 *
 * Return: 1.
 */
int mkvm_svm_handle_clgi(struct mkvm_vcpu *vcpu)
{
	return set_gif(vcpu, false);
}

/**
 * mkvm_svm_handle_invlpga() - L1's INVLPGA
 * @vcpu: the vCPU
 *
 * L2 gets a fresh, empty ASID at every VMRUN, so no translation of it
 * outlives its run: after the checks there is nothing to invalidate.
 *
 * Return: 1.
 */
int mkvm_svm_handle_invlpga(struct mkvm_vcpu *vcpu)
{
	if (svm_insn_allowed(vcpu))
		svm_insn_done(vcpu);
	return 1;
}

/**
 * mkvm_svm_nested_get_msr() - MSR_VM_HSAVE_PA and MSR_VM_CR with nesting on
 * @vcpu: the vCPU
 * @index: the MSR
 * @data: its value
 *
 * Return: 0, or MKVM_MSR_UNKNOWN for another MSR or with nesting off.
 */
int mkvm_svm_nested_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;

	if (!mkvm_svm_nested_on)
		return MKVM_MSR_UNKNOWN;
	switch (index) {
	case MSR_VM_HSAVE_PA:
		*data = n->hsave_pa;
		return 0;
	case MSR_VM_CR:
		*data = n->vm_cr;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_svm_nested_set_msr() - write MSR_VM_HSAVE_PA or MSR_VM_CR
 * @vcpu: the vCPU
 * @index: the MSR
 * @data: the value
 *
 * The host save area must be a page-aligned guest-physical address
 * (APM 15.30.4).  VM_CR's LOCK keeps LOCK and SVMDIS as they are, and
 * SVMDIS cannot be set while EFER.SVME is (APM 15.30.1).
 *
 * Return: 0, MKVM_MSR_INVALID, or MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_svm_nested_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data)
{
	struct mkvm_svm_nested *n = &to_svm(vcpu)->nested;
	u64 locked = SVM_VM_CR_SVM_LOCK_MASK | SVM_VM_CR_SVM_DIS_MASK;

	if (!mkvm_svm_nested_on)
		return MKVM_MSR_UNKNOWN;
	switch (index) {
	case MSR_VM_HSAVE_PA:
		if ((data & ~PAGE_MASK) || (data >> mkvm_guest_maxphyaddr(vcpu)))
			return MKVM_MSR_INVALID;
		n->hsave_pa = data;
		return 0;
	case MSR_VM_CR:
		/* DPD, R_INIT, DIS_A20M, LOCK and SVMDIS (APM vol. 2 15.30.1). */
		if (data & ~SVM_VM_CR_VALID_MASK)
			return MKVM_MSR_INVALID;
		if ((n->vm_cr & SVM_VM_CR_SVM_LOCK_MASK) && ((data ^ n->vm_cr) & locked))
			return MKVM_MSR_INVALID;
		if ((data & SVM_VM_CR_SVM_DIS_MASK) && (vcpu->arch.efer & EFER_SVME))
			return MKVM_MSR_INVALID;
		n->vm_cr = data;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}
