// SPDX-License-Identifier: GPL-2.0
/*
 * AMD SVM backend: enabling SVM on each CPU, the VMCB of each vCPU, its
 * register state, and guest entry.
 */
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/slab.h>
#include <asm/io.h>
#include <asm/mce.h>
#include <asm/msr.h>
#include <asm/reboot.h>
#include <asm/svm.h>
#include <asm/tlbflush.h>

#include "svm.h"


bool mkvm_svm_nrips;
bool mkvm_svm_decode_assists;
/* The host's CR4.MCE, kept in the guest's (svm_update_crs). */
static unsigned long host_cr4_mce;
static u32 svm_max_asid;
static int svm_cpuhp_state;
static struct mkvm_svm_cpu __percpu *svm_cpus;
/* One I/O and one MSR permission map for all vCPUs: intercept everything. */
static void *iopm, *msrpm;
#define IOPM_ORDER 2	/* 12 KiB used (APM 15.10.1) */
#define MSRPM_ORDER 1	/* 8 KiB (APM 15.11) */

/* SVM's 12-bit segment attributes (APM 15.5.1): type, S, DPL, P, AVL, L, DB, G. */
static u16 seg_to_attrib(const struct kvm_segment *s)
{
	if (s->unusable)
		return 0;
	return (s->type & 0xf) | s->s << 4 | (s->dpl & 3) << 5 | s->present << 7 |
	       s->avl << 8 | s->l << 9 | s->db << 10 | s->g << 11;
}

static void seg_to_vmcb(struct vmcb_seg *v, const struct kvm_segment *s)
{
	v->selector = s->selector;
	v->base = s->base;
	v->limit = s->limit;
	v->attrib = seg_to_attrib(s);
}

static void seg_from_vmcb(struct kvm_segment *s, const struct vmcb_seg *v)
{
	*s = (struct kvm_segment){
		.base = v->base, .limit = v->limit, .selector = v->selector,
		.type = v->attrib & 0xf, .s = (v->attrib >> 4) & 1, .dpl = (v->attrib >> 5) & 3,
		.present = (v->attrib >> 7) & 1, .avl = (v->attrib >> 8) & 1,
		.l = (v->attrib >> 9) & 1, .db = (v->attrib >> 10) & 1,
		.g = (v->attrib >> 11) & 1,
	};
	s->unusable = !s->present;
}

/* CR8 is the VMCB's V_TPR: guest writes to it are not intercepted (APM 15.21.3). */
static unsigned long svm_get_cr8(struct mkvm_vcpu *vcpu)
{
	return mkvm_svm_tpr_vmcb(vcpu)->control.int_ctl & V_TPR_MASK;
}

/* The local APIC's TPR is L1's, also while L2 runs (mkvm_svm_tpr_vmcb()). */
static void svm_set_cr8(struct mkvm_vcpu *vcpu, unsigned long cr8)
{
	struct vmcb_control_area *c = &mkvm_svm_tpr_vmcb(vcpu)->control;

	c->int_ctl = (c->int_ctl & ~V_TPR_MASK) | (cr8 & V_TPR_MASK);
}

static void svm_get_sregs(struct mkvm_vcpu *vcpu, struct kvm_sregs *s)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	seg_from_vmcb(&s->cs, &save->cs);
	seg_from_vmcb(&s->ds, &save->ds);
	seg_from_vmcb(&s->es, &save->es);
	seg_from_vmcb(&s->fs, &save->fs);
	seg_from_vmcb(&s->gs, &save->gs);
	seg_from_vmcb(&s->ss, &save->ss);
	/* The CPL is the VMCB's; SS's DPL in the VMCB need not follow it (APM 15.5.1). */
	s->ss.dpl = save->cpl;
	seg_from_vmcb(&s->tr, &save->tr);
	seg_from_vmcb(&s->ldt, &save->ldtr);
	s->gdt.base = save->gdtr.base;
	s->gdt.limit = save->gdtr.limit;
	s->idt.base = save->idtr.base;
	s->idt.limit = save->idtr.limit;
	s->cr0 = vcpu->arch.cr0;
	s->cr2 = save->cr2;
	s->cr3 = vcpu->arch.cr3;
	s->cr4 = vcpu->arch.cr4;
	s->cr8 = svm_get_cr8(vcpu);
	s->efer = vcpu->arch.efer;
}

/* CR0 bits the guest changes without an exit: the selective intercept lets them by (APM 15.9.1). */
#define CR0_GUEST_OWNED (X86_CR0_TS | X86_CR0_MP)

/*
 * The registers VMRUN loads, from the guest's (cr.c).
 *  - CR4.MCE stays the host's, as in KVM: a machine check in the guest must
 *    exit, not shut the CPU down (APM vol. 2 9.3.3).  Reads of CR4 are
 *    intercepted so the guest sees its own.
 *  - EFER.SVME is the host's business: VMRUN needs it set (APM 15.5.1).
 *  - EFER.LME goes in only with long mode active, so that the VMCB never
 *    holds LME with LMA clear and CR0.PG set, or LMA with paging off,
 *    whatever order userspace, SMM entry or RSM load them in.  The hardware
 *    does not look at LME while paging is off (APM vol. 2 14.6.1).
 *  - On the shadow MMU (mmu/shadow.c) paging is always on, in PAE form, on
 *    the shadow's root, with CR0.WP set and NX on whatever the guest's: PE
 *    may be clear (paged real mode, APM 15.19).  CR0 and CR3 are then
 *    intercepted too, so the guest sees its own.
 */
static void svm_update_crs(struct mkvm_vcpu *vcpu)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;
	unsigned long cr0 = vcpu->arch.cr0, cr4 = vcpu->arch.cr4 | host_cr4_mce;
	u64 efer = vcpu->arch.efer;

	/* LMA and LME together or neither: a CPU may recompute LMA from LME at VMRUN. */
	if (!(cr0 & X86_CR0_PG) || !(efer & EFER_LMA))
		efer &= ~(EFER_LME | EFER_LMA);
	else
		efer |= EFER_LME;
	save->cr3 = vcpu->arch.cr3;
	if (!mkvm_param_npt) {
		/* Without the guest's paging, the shadow's user pages are all of memory. */
		if (!(cr0 & X86_CR0_PG))
			cr4 &= ~(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
		cr0 |= X86_CR0_PG | X86_CR0_WP;
		cr4 = (cr4 | X86_CR4_PAE) & ~(X86_CR4_PGE | X86_CR4_PSE);
		efer |= EFER_NX;
		save->cr3 = vcpu->arch.mmu.root_pa;
	}
	save->efer = efer | EFER_SVME;
	save->cr0 = cr0;
	save->cr4 = cr4;
	/* L1 that turns SVM off has GIF set again, as on KVM (APM 15.17 leaves it open). */
	if (!(vcpu->arch.efer & EFER_SVME) && !to_svm(vcpu)->nested.guest_mode)
		to_svm(vcpu)->gif = true;
}

static void svm_set_sregs(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s)
{
	struct vmcb *vmcb;
	struct vmcb_save_area *save;

	/*
	 * Registers without SVM (a VMM's reset) end guest mode, as on KVM;
	 * L2 clearing its own EFER.SVME does not (vmcb02 keeps it set).
	 */
	if (!(s->efer & EFER_SVME)) {
		mkvm_svm_leave_nested(vcpu);
		to_svm(vcpu)->gif = true;
	}
	vmcb = to_svm(vcpu)->vmcb;
	save = &vmcb->save;

	seg_to_vmcb(&save->cs, &s->cs);
	seg_to_vmcb(&save->ds, &s->ds);
	seg_to_vmcb(&save->es, &s->es);
	seg_to_vmcb(&save->fs, &s->fs);
	seg_to_vmcb(&save->gs, &s->gs);
	seg_to_vmcb(&save->ss, &s->ss);
	seg_to_vmcb(&save->tr, &s->tr);
	seg_to_vmcb(&save->ldtr, &s->ldt);
	/* The CPL is SS.DPL, or 0 in real mode (APM 15.5.1). */
	save->cpl = (s->cr0 & X86_CR0_PE) ? s->ss.dpl : 0;
	save->gdtr.base = s->gdt.base;
	save->gdtr.limit = s->gdt.limit;
	save->idtr.base = s->idt.base;
	save->idtr.limit = s->idt.limit;
	save->cr2 = s->cr2;
	mkvm_load_sregs_crs(vcpu, s);
}

static void svm_get_dr67(struct mkvm_vcpu *vcpu, u64 *dr6, u64 *dr7)
{
	*dr6 = to_svm(vcpu)->vmcb->save.dr6;
	*dr7 = to_svm(vcpu)->vmcb->save.dr7;
}

static void svm_set_dr67(struct mkvm_vcpu *vcpu, u64 dr6, u64 dr7)
{
	to_svm(vcpu)->vmcb->save.dr6 = dr6;
	to_svm(vcpu)->vmcb->save.dr7 = dr7;
}

static int svm_get_cpl(struct mkvm_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.cpl;
}

static void svm_set_cr2(struct mkvm_vcpu *vcpu, unsigned long cr2)
{
	to_svm(vcpu)->vmcb->save.cr2 = cr2;
}

static int svm_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_save_area *save = &svm->vmcb->save;
	bool intel = !vcpu->arch.amd_guest;

	switch (index) {
	case MSR_STAR:		*data = save->star; break;
	case MSR_LSTAR:		*data = save->lstar; break;
	case MSR_CSTAR:		*data = save->cstar; break;
	case MSR_SYSCALL_MASK:	*data = save->sfmask; break;
	case MSR_KERNEL_GS_BASE: *data = save->kernel_gs_base; break;
	case MSR_FS_BASE:	*data = save->fs.base; break;
	case MSR_GS_BASE:	*data = save->gs.base; break;
	case MSR_IA32_SYSENTER_CS: *data = save->sysenter_cs; break;
	case MSR_IA32_SYSENTER_ESP:
		*data = save->sysenter_esp | (intel ? (u64)svm->sysenter_esp_hi << 32 : 0);
		break;
	case MSR_IA32_SYSENTER_EIP:
		*data = save->sysenter_eip | (intel ? (u64)svm->sysenter_eip_hi << 32 : 0);
		break;
	/*
	 * PAT is L1's, as on KVM, in vmcb01; L2 runs with it too unless L1
	 * gives it nested paging and a gPAT of its own (nested.c).
	 */
	case MSR_IA32_CR_PAT:	*data = svm->vmcb01->save.g_pat; break;
	/* No LBR virtualization: DEBUGCTL reads 0, as on KVM without it. */
	case MSR_IA32_DEBUGCTLMSR: *data = 0; break;
	default:
		return mkvm_svm_nested_get_msr(vcpu, index, data);
	}
	return 0;
}

static int svm_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_save_area *save = &svm->vmcb->save;

	switch (index) {
	case MSR_STAR:		save->star = data; break;
	case MSR_LSTAR:		save->lstar = data; break;
	case MSR_CSTAR:		save->cstar = data; break;
	case MSR_SYSCALL_MASK:	save->sfmask = data; break;
	case MSR_KERNEL_GS_BASE: save->kernel_gs_base = data; break;
	case MSR_FS_BASE:	save->fs.base = data; break;
	case MSR_GS_BASE:	save->gs.base = data; break;
	case MSR_IA32_SYSENTER_CS: save->sysenter_cs = (u32)data; break;
	/*
	 * AMD CPUs keep 32 bits of SYSENTER_ESP/EIP (APM vol. 2 6.1.1); a guest
	 * that believes it is on Intel gets all 64, as KVM does for migration.
	 */
	case MSR_IA32_SYSENTER_ESP:
		save->sysenter_esp = (u32)data;
		svm->sysenter_esp_hi = vcpu->arch.amd_guest ? 0 : data >> 32;
		break;
	case MSR_IA32_SYSENTER_EIP:
		save->sysenter_eip = (u32)data;
		svm->sysenter_eip_hi = vcpu->arch.amd_guest ? 0 : data >> 32;
		break;
	case MSR_IA32_CR_PAT:
		if (!mkvm_pat_valid(data))
			return 1;
		svm->vmcb01->save.g_pat = data;
		if (!svm->nested.npt)
			save->g_pat = data;
		break;
	case MSR_IA32_DEBUGCTLMSR:
		/* LBR, BTF and PB0-3 exist (APM vol. 2 13.1.1.6), and are ignored as on KVM. */
		if (data & ~0x3fULL)
			return 1;
		break;
	default:
		return mkvm_svm_nested_set_msr(vcpu, index, data);
	}
	return 0;
}

/*
 * TSC_OFFSET (VMCB offset 50h, APM vol. 2 table B-1): guest RDTSC reads host
 * TSC plus this.  @offset is L1's; L2's adds L1's offset for it.
 */
static void svm_set_tsc_offset(struct mkvm_vcpu *vcpu, u64 offset)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->vmcb01->control.tsc_offset = offset;
	if (svm->nested.guest_mode)
		svm->vmcb->control.tsc_offset = offset + svm->nested.vmcb12->control.tsc_offset;
}

/*
 * With decode assists, a nested page fault comes with up to 15 bytes fetched
 * at the guest's RIP (APM 15.33.4), which saves walking the guest's page
 * tables.  Fewer bytes arrive when the fetch crossed into an unmapped page;
 * the emulator then fetches itself.
 */
static unsigned int svm_get_insn_bytes(struct mkvm_vcpu *vcpu, u8 *buf)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;
	unsigned int n;

	if (!mkvm_svm_decode_assists || c->exit_code != SVM_EXIT_NPF)
		return 0;
	n = min_t(unsigned int, c->insn_len, sizeof(c->insn_bytes));
	memcpy(buf, c->insn_bytes, n);
	return n;
}

/**
 * mkvm_svm_set_intercept() - make an instruction or event exit (APM 15.9)
 * @vmcb: the VMCB
 * @bit: an INTERCEPT_* number
 */
void mkvm_svm_set_intercept(struct vmcb *vmcb, int bit)
{
	vmcb->control.intercepts[bit / 32] |= BIT(bit % 32);
}

/**
 * mkvm_svm_clr_intercept() - let the guest run an instruction or take an event
 * @vmcb: the VMCB
 * @bit: an INTERCEPT_* number
 */
void mkvm_svm_clr_intercept(struct vmcb *vmcb, int bit)
{
	vmcb->control.intercepts[bit / 32] &= ~BIT(bit % 32);
}

static void svm_update_guest_debug(struct mkvm_vcpu *vcpu)
{
	/* L1's VMCB: L2's takes its intercepts from it at the next VMRUN. */
	struct vmcb *vmcb = to_svm(vcpu)->vmcb01;
	bool hw_bp = vcpu->arch.guest_debug & KVM_GUESTDBG_USE_HW_BP;
	void (*intercept)(struct vmcb *vmcb, int bit);

	intercept = vcpu->arch.guest_debug & KVM_GUESTDBG_USE_SW_BP ? mkvm_svm_set_intercept :
								      mkvm_svm_clr_intercept;
	intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + BP_VECTOR);
	/* The guest's MOV to or from DR0-7 must not reach the debugger's (APM 15.11). */
	intercept = hw_bp ? mkvm_svm_set_intercept : mkvm_svm_clr_intercept;
	for (int i = 0; i < 8; i++) {
		intercept(vmcb, INTERCEPT_DR0_READ + i);
		intercept(vmcb, INTERCEPT_DR0_WRITE + i);
	}
	if (hw_bp)
		vmcb->save.dr7 = vcpu->arch.debug_dr7;
}

/**
 * mkvm_svm_init_vmcb() - the VMCB of a vCPU at power-on
 * @vcpu: the vCPU
 *
 * Also used after a shutdown intercept, which leaves the VMCB undefined
 * (APM 15.12).
 */
void mkvm_svm_init_vmcb(struct mkvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;
	struct vmcb_control_area *c = &vmcb->control;
	struct vmcb_save_area *s = &vmcb->save;
	static const int intercepts[] = {
		INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_SMI, INTERCEPT_CPUID, INTERCEPT_INVD,
		INTERCEPT_HLT, INTERCEPT_INVLPGA, INTERCEPT_IOIO_PROT, INTERCEPT_MSR_PROT,
		INTERCEPT_SHUTDOWN, INTERCEPT_VMRUN, INTERCEPT_VMMCALL, INTERCEPT_VMLOAD,
		INTERCEPT_VMSAVE, INTERCEPT_STGI, INTERCEPT_CLGI, INTERCEPT_SKINIT,
		INTERCEPT_MONITOR, INTERCEPT_MWAIT, INTERCEPT_XSETBV, INTERCEPT_RDPRU,
		INTERCEPT_RDPMC, INTERCEPT_WBINVD, INTERCEPT_RSM,
		/* CR0 and CR4 writes that matter, and CR4 reads (svm_update_crs). */
		INTERCEPT_SELECTIVE_CR0, INTERCEPT_CR4_READ, INTERCEPT_CR4_WRITE,
	};

	memset(vmcb, 0, PAGE_SIZE);
	for (int i = 0; i < ARRAY_SIZE(intercepts); i++)
		mkvm_svm_set_intercept(vmcb, intercepts[i]);
	/*
	 * #DB and #AC must exit: a guest can otherwise make the CPU deliver
	 * them forever without ever taking an interrupt (CVE-2015-8104,
	 * CVE-2015-5307).  They are reflected back into the guest.
	 */
	mkvm_svm_set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + DB_VECTOR);
	mkvm_svm_set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + AC_VECTOR);
	/* A machine check is the host's to handle (svm_run). */
	mkvm_svm_set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + MC_VECTOR);
	c->iopm_base_pa = __pa(iopm);
	c->msrpm_base_pa = __pa(msrpm);
	/* Physical interrupts exit to the host whatever the guest's RFLAGS.IF (APM 15.21.1). */
	c->int_ctl = V_INTR_MASKING_MASK;
	if (mkvm_param_npt) {
		c->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
	} else {
		/* The shadow MMU's: paging state, INVLPG and the guest's own #PF. */
		mkvm_svm_set_intercept(vmcb, INTERCEPT_CR0_READ);
		mkvm_svm_set_intercept(vmcb, INTERCEPT_CR0_WRITE);
		mkvm_svm_set_intercept(vmcb, INTERCEPT_CR3_READ);
		mkvm_svm_set_intercept(vmcb, INTERCEPT_CR3_WRITE);
		mkvm_svm_set_intercept(vmcb, INTERCEPT_INVLPG);
		mkvm_svm_set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + PF_VECTOR);
		/*
		 * A hardware task switch would load the guest's CR3, a
		 * guest-physical address, as the real one (APM 15.14.1); and
		 * INVPCID, which minikvm does not offer, would leave the shadow
		 * as it is.  Neither may run in the guest.
		 */
		mkvm_svm_set_intercept(vmcb, INTERCEPT_TASK_SWITCH);
		mkvm_svm_set_intercept(vmcb, INTERCEPT_INVPCID);
	}
	/* The MMU context's tables outlive a reset of the VMCB (0 before the first load). */
	if (mkvm_param_npt)
		c->nested_cr3 = vcpu->arch.mmu.root_pa;
	/* The TSC is not reset with the VMCB: it goes on (tsc.c). */
	c->tsc_offset = vcpu->arch.time.tsc_offset;

	/* Power-on state (APM vol. 2 table 14-1). */
	s->cs = (struct vmcb_seg){ .selector = 0xf000, .base = 0xffff0000, .limit = 0xffff,
				   .attrib = 0x9b };
	s->ds = s->es = s->fs = s->gs = s->ss =
		(struct vmcb_seg){ .limit = 0xffff, .attrib = 0x93 };
	s->gdtr.limit = s->idtr.limit = 0xffff;
	s->ldtr = (struct vmcb_seg){ .limit = 0xffff, .attrib = 0x82 };
	s->tr = (struct vmcb_seg){ .limit = 0xffff, .attrib = 0x8b };
	vcpu->arch.cr0 = X86_CR0_CD | X86_CR0_NW | X86_CR0_ET;
	vcpu->arch.cr3 = vcpu->arch.cr4 = vcpu->arch.efer = 0;
	svm_update_crs(vcpu);
	mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH);
	s->dr6 = MKVM_DR6_ACTIVE_LOW;
	s->dr7 = MKVM_DR7_RESET;
	s->g_pat = 0x0007040600070406ULL;
	mkvm_svm_events_reset(vcpu);
	/* The VMM's debugger (guest_debug.c) keeps its breakpoints across INIT and shutdown. */
	svm_update_guest_debug(vcpu);
}

/* INIT: the VMCB as at power-on, with the guest's TSC left running; L2 is gone. */
static void svm_init_event(struct mkvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb01;
	u64 tsc_offset = vmcb->control.tsc_offset;

	mkvm_svm_leave_nested(vcpu);
	to_svm(vcpu)->gif = true;
	mkvm_svm_init_vmcb(vcpu);
	vmcb->control.tsc_offset = tsc_offset;
	to_svm(vcpu)->asid_generation = 0;
}

static int svm_vcpu_create(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = kzalloc(sizeof(*svm), GFP_KERNEL_ACCOUNT);
	struct page *page;

	if (!svm)
		return -ENOMEM;
	page = alloc_page(GFP_KERNEL_ACCOUNT);
	if (!page) {
		kfree(svm);
		return -ENOMEM;
	}
	svm->vmcb = svm->vmcb01 = page_address(page);
	svm->vmcb_pa = svm->vmcb01_pa = page_to_phys(page);
	svm->last_cpu = -1;
	svm->gif = true;
	vcpu->arch.vendor = svm;
	if (mkvm_svm_nested_alloc(vcpu)) {
		vcpu->arch.vendor = NULL;
		__free_page(page);
		kfree(svm);
		return -ENOMEM;
	}
	mkvm_svm_init_vmcb(vcpu);
	return 0;
}

static void svm_vcpu_free(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	if (!svm)
		return;
	mkvm_svm_nested_free(vcpu);
	free_page((unsigned long)svm->vmcb01);
	kfree(svm);
}

/*
 * ASIDs are handed out per physical CPU; when a CPU runs out it starts a new
 * generation and flushes every ASID (APM 15.16).  A vCPU that moved, or
 * that was asked to flush (svm_flush_tlb()), takes a fresh ASID so no stale
 * translation can be used.
 */
static void svm_pick_asid(struct mkvm_vcpu *vcpu, struct mkvm_svm_cpu *sd, int cpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->vmcb->control.tlb_ctl = TLB_CONTROL_DO_NOTHING;
	if (svm->last_cpu == cpu && svm->asid_generation == sd->asid_generation)
		return;
	if (sd->next_asid > svm_max_asid) {
		sd->asid_generation++;
		sd->next_asid = 1;
		svm->vmcb->control.tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
	}
	svm->asid = sd->next_asid++;
	svm->asid_generation = sd->asid_generation;
	svm->last_cpu = cpu;
}

/*
 * The MMU context's root: the nested page tables (APM 15.25.4), or the
 * shadow's CR3.  L2 runs on L1's nested page tables.
 */
static void svm_load_mmu_root(struct mkvm_vcpu *vcpu, u64 root_pa)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	if (mkvm_param_npt) {
		svm->vmcb01->control.nested_cr3 = root_pa;
		/* L2 on L1's nested paging runs on the nNPT, built from this tree. */
		if (!svm->nested.npt)
			svm->vmcb->control.nested_cr3 = root_pa;
	} else
		svm_update_crs(vcpu);
}

/*
 * A fresh ASID at the next entry has no translations (APM 15.16.1).  The
 * nNPT (nested_npt.c) is built from minikvm's own tables, which a flush
 * request says have changed (a memslot, the dirty log): it is emptied too.
 */
static void svm_flush_tlb(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);

	svm->asid_generation = 0;
	if (svm->nested.nnpt_root)
		mkvm_svm_nnpt_reset(vcpu);
}

/*
 * A machine check in the guest exits (the #MC intercept) instead of
 * reaching the host's handler: hand it over before anything else runs on
 * this CPU, as from user mode, as KVM does.  Its SIGBUS for the VMM is task
 * work, which the run loop leaves the ioctl for.
 */
static void svm_handle_exit_irqoff(struct mkvm_vcpu *vcpu)
{
#ifdef CONFIG_X86_MCE
	struct pt_regs regs = { .cs = 3, .flags = X86_EFLAGS_IF };

	if (unlikely(to_svm(vcpu)->vmcb->control.exit_code == SVM_EXIT_EXCP_BASE + MC_VECTOR))
		do_machine_check(&regs);
#endif
}

static void svm_run(struct mkvm_vcpu *vcpu)
{
	struct mkvm_svm_vcpu *svm = to_svm(vcpu);
	struct vmcb *vmcb = svm->vmcb;
	int cpu = smp_processor_id();
	struct mkvm_svm_cpu *sd = per_cpu_ptr(svm_cpus, cpu);

	svm_pick_asid(vcpu, sd, cpu);
	vmcb->control.asid = svm->asid;
	/* Whatever the last exit left there, the shadow MMU runs on its own root. */
	if (!mkvm_param_npt)
		vmcb->save.cr3 = vcpu->arch.mmu.root_pa;
	vmcb->control.clean = 0;	/* no VMCB state is cached across entries */
	vmcb->save.rax = vcpu->arch.regs[REG_RAX];
	vmcb->save.rsp = vcpu->arch.regs[REG_RSP];
	vmcb->save.rip = vcpu->arch.rip;
	vmcb->save.rflags = mkvm_svm_entry_rflags(vcpu);
	/* Only the entry right after VMRUN (or a re-injection) carries L1's event (nested.c). */
	if (!svm->nested.run_pending)
		svm->nested.l1_event = 0;
	if (svm->nested.guest_mode)
		mkvm_svm_nested_irq_to_vintr(vcpu);

	mkvm_save_host_pkru(vcpu);
	mkvm_load_guest_drs(vcpu);
	/* The VMM's debugger starts each entry with a clean DR6 for its KVM_EXIT_DEBUG. */
	if (vcpu->arch.guest_debug & KVM_GUESTDBG_USE_HW_BP)
		vmcb->save.dr6 = MKVM_DR6_ACTIVE_LOW;

	/*
	 * With V_INTR_MASKING, whether a physical interrupt exits the guest
	 * follows the host's RFLAGS.IF saved by VMRUN (APM 15.21.1), so IF must
	 * be set at VMRUN.  GIF=0 keeps the host itself from taking interrupts
	 * in between; they wait until STGI and the caller's irq enable.
	 */
	clgi();
	raw_local_irq_enable();
	mkvm_svm_vmrun(svm->vmcb_pa, vcpu->arch.regs, page_to_phys(sd->host_save));
	raw_local_irq_disable();
	if (unlikely(svm->nested.run_pending)) {
		svm->nested.run_pending = false;
		/* vmcb12's EVENTINJ went in with this entry (APM 15.20). */
		svm->nested.vmcb12->control.event_inj = 0;
	}
	/* The host's PKRU before anything of the host's can run (an NMI after STGI). */
	mkvm_load_host_pkru(vcpu);
	stgi();
	if (svm->nested.vintr_irq)
		mkvm_svm_nested_irq_from_vintr(vcpu);


	/* A VMRUN that failed did not flush: the next one on this CPU must. */
	if (vmcb->control.exit_code == SVM_EXIT_ERR &&
	    vmcb->control.tlb_ctl == TLB_CONTROL_FLUSH_ALL_ASID) {
		sd->next_asid = svm_max_asid + 1;
		svm->asid_generation = 0;
	}

	mkvm_save_guest_drs(vcpu);

	vcpu->arch.regs[REG_RAX] = vmcb->save.rax;
	vcpu->arch.regs[REG_RSP] = vmcb->save.rsp;
	vcpu->arch.rip = vmcb->save.rip;
	vcpu->arch.rflags = mkvm_svm_exit_rflags(vcpu);
	/* What the guest may change without an exit (a task switch sets TS too). */
	vcpu->arch.cr0 = (vcpu->arch.cr0 & ~CR0_GUEST_OWNED) | (vmcb->save.cr0 & CR0_GUEST_OWNED);
	if (mkvm_param_npt)
		vcpu->arch.cr3 = vmcb->save.cr3;
}

static int svm_cpu_online(unsigned int cpu)
{
	struct mkvm_svm_cpu *sd = per_cpu_ptr(svm_cpus, cpu);
	u64 efer;

	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		pr_err("minikvm: SVM is already enabled on CPU %u by someone else\n", cpu);
		return -EBUSY;
	}
	/*
	 * Whatever ran on this CPU before (another hypervisor, an earlier load
	 * of minikvm, a vCPU before the CPU went offline) may have left TLB
	 * entries: the first ASID handed out starts a new generation, which
	 * flushes them all.  The generation only ever grows.
	 */
	sd->asid_generation++;
	sd->next_asid = svm_max_asid + 1;
	wrmsrl(MSR_EFER, efer | EFER_SVME);
	wrmsrl(MSR_VM_HSAVE_PA, page_to_phys(sd->hsave));
	return 0;
}

static void svm_disable(void)
{
	u64 efer;

	wrmsrl(MSR_VM_HSAVE_PA, 0);
	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		/* GIF must be set before SVM goes off, or interrupts stay blocked. */
		stgi();
		wrmsrl(MSR_EFER, efer & ~EFER_SVME);
	}
}

static int svm_cpu_offline(unsigned int cpu)
{
	unsigned long flags;

	/* A CPU going away keeps no guest's TSC_AUX, nor a notifier of ours. */
	local_irq_save(flags);
	mkvm_tsc_aux_cpu_offline();
	local_irq_restore(flags);
	svm_disable();
	return 0;
}

/* On an emergency reboot or kexec, SVM must be off or the next kernel may hang. */
static void svm_emergency_disable(void)
{
	svm_disable();
}

static void free_cpu_pages(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct mkvm_svm_cpu *sd = per_cpu_ptr(svm_cpus, cpu);

		if (sd->hsave)
			__free_page(sd->hsave);
		if (sd->host_save)
			__free_page(sd->host_save);
	}
	free_percpu(svm_cpus);
}

static int svm_hardware_setup(void)
{
	u32 eax, ebx, ecx, edx;
	u64 vm_cr;
	int cpu, r;

	if (cpuid_eax(0x80000000) < SVM_CPUID_FUNC)
		return -EOPNOTSUPP;
	rdmsrl(MSR_VM_CR, vm_cr);
	if (vm_cr & BIT(SVM_VM_CR_SVM_DISABLE)) {
		pr_err("minikvm: SVM is disabled by the firmware\n");
		return -EOPNOTSUPP;
	}
	cpuid(SVM_CPUID_FUNC, &eax, &ebx, &ecx, &edx);
	if (!(edx & BIT(0)))
		mkvm_param_npt = false;
	/*
	 * With CR4.LA57 on the host, nested page tables have five levels
	 * (APM 15.25.3); tdp.c builds four, which the CPU would read one
	 * level off, letting a guest's page act as a table.  Until five
	 * levels are built, such a host runs guests on the shadow MMU.
	 */
	if (mkvm_param_npt && pgtable_l5_enabled()) {
		pr_warn("minikvm: 5-level paging on the host: using the shadow MMU\n");
		mkvm_param_npt = false;
	}
	mkvm_tdp_enabled = mkvm_param_npt;
	mkvm_svm_nrips = edx & BIT(3);
	mkvm_svm_decode_assists = edx & BIT(7);
	host_cr4_mce = cr4_read_shadow() & X86_CR4_MCE;
	mkvm_svm_nested_setup(mkvm_param_npt, mkvm_svm_nrips);
	svm_max_asid = ebx - 1;
	if (!svm_max_asid)
		return -EOPNOTSUPP;

	svm_cpus = alloc_percpu(struct mkvm_svm_cpu);
	if (!svm_cpus)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct mkvm_svm_cpu *sd = per_cpu_ptr(svm_cpus, cpu);

		sd->hsave = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);
		sd->host_save = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);
		if (!sd->hsave || !sd->host_save) {
			free_cpu_pages();
			return -ENOMEM;
		}
	}
	iopm = (void *)__get_free_pages(GFP_KERNEL, IOPM_ORDER);
	msrpm = (void *)__get_free_pages(GFP_KERNEL, MSRPM_ORDER);
	if (!iopm || !msrpm) {
		r = -ENOMEM;
		goto free_maps;
	}
	memset(iopm, 0xff, PAGE_SIZE << IOPM_ORDER);
	memset(msrpm, 0xff, PAGE_SIZE << MSRPM_ORDER);

	r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "minikvm/svm:online", svm_cpu_online,
			      svm_cpu_offline);
	if (r < 0)
		goto free_maps;
	svm_cpuhp_state = r;
	pr_info("minikvm: SVM with %s, %u ASIDs, nrips %s, decode assists %s, nested %s\n",
		mkvm_param_npt ? "NPT" : "the shadow MMU", svm_max_asid, mkvm_svm_nrips ? "yes" : "no",
		mkvm_svm_decode_assists ? "yes" : "no", mkvm_svm_nested_on ? "on" : "off");
	return 0;

free_maps:
	free_pages((unsigned long)iopm, IOPM_ORDER);
	free_pages((unsigned long)msrpm, MSRPM_ORDER);
	free_cpu_pages();
	return r;
}

static void svm_hardware_unsetup(void)
{
	cpuhp_remove_state(svm_cpuhp_state);
	free_pages((unsigned long)iopm, IOPM_ORDER);
	free_pages((unsigned long)msrpm, MSRPM_ORDER);
	free_cpu_pages();
}

const struct mkvm_x86_ops mkvm_svm_ops = {
	.name = "AMD SVM",
	.hardware_setup = svm_hardware_setup,
	.hardware_unsetup = svm_hardware_unsetup,
	.emergency_disable = svm_emergency_disable,
	.vcpu_create = svm_vcpu_create,
	.vcpu_free = svm_vcpu_free,
	.get_sregs = svm_get_sregs,
	.set_sregs = svm_set_sregs,
	.get_msr = svm_get_msr,
	.set_msr = svm_set_msr,
	.run = svm_run,
	.handle_exit_irqoff = svm_handle_exit_irqoff,
	.handle_exit = mkvm_svm_handle_exit,
	.get_insn_bytes = svm_get_insn_bytes,
	.get_dr67 = svm_get_dr67,
	.set_dr67 = svm_set_dr67,
	.set_cr2 = svm_set_cr2,
	.get_cpl = svm_get_cpl,
	.update_crs = svm_update_crs,
	.next_rip = mkvm_svm_next_rip,
	.get_cr8 = svm_get_cr8,
	.set_cr8 = svm_set_cr8,
	.inject_exception = mkvm_svm_inject_exception,
	.inject_nmi = mkvm_svm_inject_nmi,
	.inject_irq = mkvm_svm_inject_irq,
	.interrupt_blocked = mkvm_svm_interrupt_blocked,
	.nmi_blocked = mkvm_svm_nmi_blocked,
	.enable_irq_window = mkvm_svm_enable_irq_window,
	.offer_irq = mkvm_svm_offer_irq,
	.enable_nmi_window = mkvm_svm_enable_nmi_window,
	.get_interrupt_shadow = mkvm_svm_get_interrupt_shadow,
	.set_interrupt_shadow = mkvm_svm_set_interrupt_shadow,
	.update_nmi_mask = mkvm_svm_update_nmi_mask,
	.set_tsc_offset = svm_set_tsc_offset,
	.update_cr8_intercept = mkvm_svm_update_cr8_intercept,
	.init_event = svm_init_event,
	.update_guest_debug = svm_update_guest_debug,
	/* NPT entries are ordinary long-mode PTEs; guest accesses count as user (APM 15.25.5). */
	.tdp_format = MKVM_SPTE_NPT,
	.amd_model_msrs = true,
	.ucode_rev_reset = 0x01000065ULL,
	.cr8_unintercepted = true,
	.vmm_bp_skips_int3 = true,
	.load_mmu_root = svm_load_mmu_root,
	.flush_tlb = svm_flush_tlb,
	.nested_check_events = mkvm_svm_nested_check_events,
	.leave_nested = mkvm_svm_leave_nested,
	.smi_blocked = mkvm_svm_smi_blocked,
	.init_blocked = mkvm_svm_init_blocked,
	.nested_state_size = mkvm_svm_nested_state_size,
	.nested_state_ioctl = mkvm_svm_nested_state_ioctl,
};
