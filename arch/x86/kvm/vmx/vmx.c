// SPDX-License-Identifier: GPL-2.0
/*
 * Intel VMX backend: the VMCS of each vCPU, its register state, and guest
 * entry.  cpu.c has VMX on the host, vmcs.c where a VMCS is current.
 */
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/io.h>
#include <linux/math64.h>
#include <linux/slab.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#include <asm/mce.h>
#include <asm/msr.h>
#include <asm/tlbflush.h>

#include <minikvm/guest_mem.h>
#include <minikvm/irqchip.h>

#include "vmx.h"

/* CR0 bits the guest changes without an exit (the guest/host mask, SDM vol. 3 25.6.6). */
#define CR0_GUEST_OWNED (X86_CR0_TS | X86_CR0_MP)

extern void mkvm_vmx_vmexit(void);
void mkvm_vmx_call_handler(unsigned long entry);
/* The NMI handler for a normal stack (the IST one expects its own). */
void asm_exc_nmi_noist(void);

/* The VMCS fields of a segment register, in KVM's order (enum in kvm_sregs). */
struct seg_fields {
	u16 sel, base, limit, ar;
};

#define SEG(s) { GUEST_##s##_SELECTOR, GUEST_##s##_BASE, GUEST_##s##_LIMIT, GUEST_##s##_AR_BYTES }
static const struct seg_fields segs[] = {
	[SEG_ES] = SEG(ES), [SEG_CS] = SEG(CS), [SEG_SS] = SEG(SS), [SEG_DS] = SEG(DS),
	[SEG_FS] = SEG(FS), [SEG_GS] = SEG(GS), [SEG_TR] = SEG(TR), [SEG_LDTR] = SEG(LDTR),
};

/* Access rights (SDM vol. 3 25.4.1 table 25-2): as a descriptor's, bit 16 "unusable". */
#define AR_UNUSABLE BIT(16)

/**
 * mkvm_vmx_get_seg() - a segment register as the VMCS holds it
 * @s: filled in
 * @seg: SEG_ES to SEG_LDTR
 */
void mkvm_vmx_get_seg(struct kvm_segment *s, int seg)
{
	const struct seg_fields *f = &segs[seg];
	u32 ar = vmcs_read(f->ar);

	*s = (struct kvm_segment){
		.base = vmcs_read(f->base), .limit = vmcs_read(f->limit),
		.selector = vmcs_read(f->sel),
		.type = ar & 0xf, .s = (ar >> 4) & 1, .dpl = (ar >> 5) & 3,
		.present = (ar >> 7) & 1, .avl = (ar >> 12) & 1, .l = (ar >> 13) & 1,
		.db = (ar >> 14) & 1, .g = (ar >> 15) & 1, .unusable = !!(ar & AR_UNUSABLE),
	};
	/* An unusable segment is not present, as KVM reports it. */
	if (s->unusable)
		s->present = 0;
}

/**
 * mkvm_vmx_set_seg() - write a segment register to the VMCS
 * @s: the segment
 * @seg: SEG_ES to SEG_LDTR
 */
void mkvm_vmx_set_seg(const struct kvm_segment *s, int seg)
{
	const struct seg_fields *f = &segs[seg];
	u32 ar, type = s->type;

	if (s->unusable || !s->present) {
		ar = AR_UNUSABLE;
	} else {
		/*
		 * A usable code or data segment must be accessed at VM entry
		 * (SDM vol. 3 26.3.1.2); the CPU would set the bit on its first
		 * load anyway.  KVM sets it too, for VMMs that leave it clear.
		 */
		if (seg != SEG_TR && seg != SEG_LDTR && s->s)
			type |= 1;
		ar = type | s->s << 4 | (s->dpl & 3) << 5 | s->present << 7 | s->avl << 12 |
		     s->l << 13 | s->db << 14 | s->g << 15;
	}
	vmcs_write(f->sel, s->selector);
	vmcs_write(f->base, s->base);
	vmcs_write(f->limit, s->limit);
	vmcs_write(f->ar, ar);
}

static unsigned long vmx_get_cr8(struct mkvm_vcpu *vcpu)
{
	return to_vmx(vcpu)->cr8;
}

static void vmx_set_cr8(struct mkvm_vcpu *vcpu, unsigned long cr8)
{
	to_vmx(vcpu)->cr8 = cr8 & 0xf;
}

/* The guest's segment register, which virtual-8086 mode keeps apart (rmode.c). */
static void get_seg(struct mkvm_vcpu *vcpu, struct kvm_segment *s, int seg)
{
	if (to_vmx(vcpu)->rmode)
		mkvm_vmx_rmode_get_seg(vcpu, s, seg);
	else
		mkvm_vmx_get_seg(s, seg);
}

static void set_seg(struct mkvm_vcpu *vcpu, const struct kvm_segment *s, int seg)
{
	if (to_vmx(vcpu)->rmode)
		mkvm_vmx_rmode_set_seg(vcpu, s, seg);
	else
		mkvm_vmx_set_seg(s, seg);
}

static void vmx_get_sregs(struct mkvm_vcpu *vcpu, struct kvm_sregs *s)
{
	get_seg(vcpu, &s->es, SEG_ES);
	get_seg(vcpu, &s->cs, SEG_CS);
	get_seg(vcpu, &s->ss, SEG_SS);
	get_seg(vcpu, &s->ds, SEG_DS);
	get_seg(vcpu, &s->fs, SEG_FS);
	get_seg(vcpu, &s->gs, SEG_GS);
	get_seg(vcpu, &s->tr, SEG_TR);
	get_seg(vcpu, &s->ldt, SEG_LDTR);
	s->gdt.base = vmcs_read(GUEST_GDTR_BASE);
	s->gdt.limit = vmcs_read(GUEST_GDTR_LIMIT);
	s->idt.base = vmcs_read(GUEST_IDTR_BASE);
	s->idt.limit = vmcs_read(GUEST_IDTR_LIMIT);
	s->cr0 = vcpu->arch.cr0;
	s->cr2 = to_vmx(vcpu)->cr2;
	s->cr3 = vcpu->arch.cr3;
	s->cr4 = vcpu->arch.cr4;
	s->cr8 = vmx_get_cr8(vcpu);
	s->efer = vcpu->arch.efer;
}

/*
 * The registers VM entry loads, from the guest's (cr.c).
 *  - CR0.NE and CR4.VMXE must be set in VMX operation (SDM vol. 3 24.8,
 *    the FIXED0 MSRs); with unrestricted guest PE and PG may be clear.
 *    CD and NW stay clear, as on KVM: caching is the host's business.
 *    The read shadows show the guest its own values, and writes to the
 *    bits minikvm owns exit (SDM vol. 3 25.6.6).
 *  - EFER is loaded by VM entry; LME only with paging on, and LMA is the
 *    "IA-32e mode guest" entry control (SDM vol. 3 26.3.1.1).
 *  - PAE paging without long mode takes its PDPTEs from the VMCS at VM
 *    entry with EPT (SDM vol. 3 26.3.2.4): they are read before the next
 *    entry.  Without EPT the processor reads them from the shadow's root.
 *  - On the shadow MMU (ept=0, mmu/shadow.c) paging is on in PAE form, on
 *    the shadow's root, with CR0.WP set and NX on, as on SVM; PE and PG
 *    must be set then (no unrestricted guest): paging off is the shadow's
 *    identity map, and real mode runs in virtual-8086 mode (rmode.c).
 *    GUEST_CR3 is then the shadow's root, written at each entry (vmx_run()).
 *  - Virtual-8086 mode is CPL 3: CR4.VME makes INT n use the real-mode
 *    vector table; TSD, UMIP and CR0.AM, which only matter outside CPL 0,
 *    would make it fault where real mode does not.
 */
static void vmx_update_crs(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned long cr0 = vcpu->arch.cr0, cr4 = vcpu->arch.cr4;
	u64 efer = vcpu->arch.efer;
	u64 fixed0 = mkvm_vmx_caps.cr0_fixed0;
	bool lma;

	mkvm_vmx_rmode_update(vcpu);
	if (mkvm_param_unrestricted_guest)
		fixed0 &= ~(X86_CR0_PE | X86_CR0_PG);

	if (!(cr0 & X86_CR0_PG) || !(efer & EFER_LMA))
		efer &= ~(EFER_LME | EFER_LMA);
	else
		efer |= EFER_LME;
	lma = efer & EFER_LMA;
	/* Intel has no FFXSR or SVME: VM entry refuses reserved EFER bits (SDM 26.3.1.1). */
	efer &= EFER_SCE | EFER_LME | EFER_LMA | EFER_NX;
	cr0 = ((cr0 & ~(X86_CR0_CD | X86_CR0_NW)) | fixed0) & mkvm_vmx_caps.cr0_fixed1;
	/* CR4.MCE stays the host's: a machine check in the guest must exit, not shut down. */
	cr4 = (cr4 & ~X86_CR4_MCE) | (cr4_read_shadow() & X86_CR4_MCE);
	if (!mkvm_param_ept) {
		/* Without the guest's paging, the shadow's user pages are all of memory. */
		if (!(vcpu->arch.cr0 & X86_CR0_PG))
			cr4 &= ~(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
		cr0 |= X86_CR0_WP;
		cr4 = (cr4 | X86_CR4_PAE) & ~(X86_CR4_PGE | X86_CR4_PSE);
		efer |= EFER_NX;
	}
	if (vmx->rmode) {
		cr4 = (cr4 | X86_CR4_VME) & ~(X86_CR4_TSD | X86_CR4_UMIP);
		cr0 &= ~X86_CR0_AM;
	}
	cr4 = (cr4 | mkvm_vmx_caps.cr4_fixed0) & mkvm_vmx_caps.cr4_fixed1;
	vmcs_write(GUEST_CR0, cr0);
	vmcs_write(CR0_READ_SHADOW, vcpu->arch.cr0);
	vmcs_write(GUEST_CR4, cr4);
	vmcs_write(CR4_READ_SHADOW, vcpu->arch.cr4);
	if (mkvm_param_ept)
		vmcs_write(GUEST_CR3, vcpu->arch.cr3);
	vmcs_write(GUEST_IA32_EFER, efer);
	vmx->entry = lma ? vmx->entry | VM_ENTRY_IA32E_MODE : vmx->entry & ~VM_ENTRY_IA32E_MODE;
	vmcs_write(VM_ENTRY_CONTROLS, vmx->entry);
	vmx->pdptr_dirty = mkvm_param_ept && (vcpu->arch.cr0 & X86_CR0_PG) &&
			   (vcpu->arch.cr4 & X86_CR4_PAE) && !lma;
}

static void vmx_set_sregs(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s)
{
	set_seg(vcpu, &s->es, SEG_ES);
	set_seg(vcpu, &s->cs, SEG_CS);
	set_seg(vcpu, &s->ss, SEG_SS);
	set_seg(vcpu, &s->ds, SEG_DS);
	set_seg(vcpu, &s->fs, SEG_FS);
	set_seg(vcpu, &s->gs, SEG_GS);
	set_seg(vcpu, &s->tr, SEG_TR);
	set_seg(vcpu, &s->ldt, SEG_LDTR);
	vmcs_write(GUEST_GDTR_BASE, s->gdt.base);
	vmcs_write(GUEST_GDTR_LIMIT, s->gdt.limit);
	vmcs_write(GUEST_IDTR_BASE, s->idt.base);
	vmcs_write(GUEST_IDTR_LIMIT, s->idt.limit);
	to_vmx(vcpu)->cr2 = s->cr2;
	to_vmx(vcpu)->sregs_loading = true;
	mkvm_load_sregs_crs(vcpu, s);
	to_vmx(vcpu)->sregs_loading = false;
}

/* DR6 is the processor's own register while the guest runs; DR7 is a VMCS field. */
static void vmx_get_dr67(struct mkvm_vcpu *vcpu, u64 *dr6, u64 *dr7)
{
	*dr6 = to_vmx(vcpu)->dr6;
	*dr7 = vmcs_read(GUEST_DR7);
}

static void vmx_set_dr67(struct mkvm_vcpu *vcpu, u64 dr6, u64 dr7)
{
	to_vmx(vcpu)->dr6 = dr6;
	vmcs_write(GUEST_DR7, dr7);
}

static void vmx_set_cr2(struct mkvm_vcpu *vcpu, unsigned long cr2)
{
	to_vmx(vcpu)->cr2 = cr2;
}

/* The CPL is SS.DPL in the VMCS, 0 in real mode (SDM vol. 3 26.3.1.2). */
static int vmx_get_cpl(struct mkvm_vcpu *vcpu)
{
	if (!(vcpu->arch.cr0 & X86_CR0_PE))
		return 0;
	return (vmcs_read(GUEST_SS_AR_BYTES) >> 5) & 3;
}

/* Write one of the guest's syscall MSRs, also to the processor while it holds the guest's. */
static void set_guest_msr(struct mkvm_vmx_vcpu *vmx, u64 *slot, u32 index, u64 data)
{
	*slot = data;
	preempt_disable();
	if (vmx->cpu >= 0)
		wrmsrl(index, data);
	preempt_enable();
}

static u64 get_guest_msr(struct mkvm_vmx_vcpu *vmx, u64 *slot, u32 index)
{
	u64 v = *slot;

	preempt_disable();
	if (vmx->cpu >= 0)
		rdmsrl(index, v);
	preempt_enable();
	return v;
}

static u64 *syscall_msr(struct mkvm_vmx_vcpu *vmx, u32 index)
{
	for (int i = 0; i < MKVM_VMX_GUEST_MSRS; i++)
		if (mkvm_vmx_guest_msrs[i] == index)
			return &vmx->guest_msr[i];
	return NULL;
}

static int vmx_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 *slot = syscall_msr(vmx, index);

	if (slot) {
		*data = get_guest_msr(vmx, slot, index);
		return 0;
	}
	switch (index) {
	case MSR_FS_BASE:	*data = vmcs_read(GUEST_FS_BASE); break;
	case MSR_GS_BASE:	*data = vmcs_read(GUEST_GS_BASE); break;
	case MSR_IA32_SYSENTER_CS: *data = vmcs_read(GUEST_SYSENTER_CS); break;
	case MSR_IA32_SYSENTER_ESP: *data = vmcs_read(GUEST_SYSENTER_ESP); break;
	case MSR_IA32_SYSENTER_EIP: *data = vmcs_read(GUEST_SYSENTER_EIP); break;
	case MSR_IA32_CR_PAT:
		*data = mkvm_param_ept ? vmcs_read(GUEST_IA32_PAT) : vmx->pat;
		break;
	/* No LBR virtualization: DEBUGCTL reads 0, as on KVM without it. */
	case MSR_IA32_DEBUGCTLMSR: *data = 0; break;
	default:
		return MKVM_MSR_UNKNOWN;
	}
	return 0;
}

static u64 canonical(u64 v)
{
	return __canonical_address(v, pgtable_l5_enabled() ? 57 : 48);
}

static int vmx_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 *slot = syscall_msr(vmx, index);

	/* IA32_FMASK's upper half is reserved (SDM vol. 4): the processor's WRMSR would fault. */
	if (index == MSR_SYSCALL_MASK && data >> 32)
		return 1;
	if (slot) {
		set_guest_msr(vmx, slot, index, data);
		return 0;
	}
	switch (index) {
	case MSR_FS_BASE:	vmcs_write(GUEST_FS_BASE, data); break;
	case MSR_GS_BASE:	vmcs_write(GUEST_GS_BASE, data); break;
	case MSR_IA32_SYSENTER_CS: vmcs_write(GUEST_SYSENTER_CS, (u32)data); break;
	/* VM entry wants them canonical (SDM 26.3.1.1); KVM makes them so, as a CPU stores them. */
	case MSR_IA32_SYSENTER_ESP: vmcs_write(GUEST_SYSENTER_ESP, canonical(data)); break;
	case MSR_IA32_SYSENTER_EIP: vmcs_write(GUEST_SYSENTER_EIP, canonical(data)); break;
	case MSR_IA32_CR_PAT:
		if (!mkvm_pat_valid(data))
			return 1;
		if (mkvm_param_ept)
			vmcs_write(GUEST_IA32_PAT, data);
		else
			vmx->pat = data;
		break;
	case MSR_IA32_DEBUGCTLMSR:
		/* LBR, BTF and the like are accepted and ignored, as on KVM. */
		if (data & ~0x3fULL)
			return 1;
		break;
	default:
		return MKVM_MSR_UNKNOWN;
	}
	return 0;
}

/* TSC_OFFSET (SDM vol. 3 25.6.5): written at the next entry, as this may come from another vCPU. */
static void vmx_set_tsc_offset(struct mkvm_vcpu *vcpu, u64 offset)
{
	WRITE_ONCE(to_vmx(vcpu)->tsc_offset, offset);
}

/**
 * mkvm_vmx_set_proc() - set or clear primary processor-based controls
 * @vcpu: the vCPU, its VMCS current
 * @bits: CPU_BASED_* bits
 * @on: set or clear them
 */
void mkvm_vmx_set_proc(struct mkvm_vcpu *vcpu, u32 bits, bool on)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 proc = on ? vmx->proc | bits : vmx->proc & ~bits;

	if (proc != vmx->proc) {
		vmx->proc = proc;
		vmcs_write(CPU_BASED_VM_EXEC_CONTROL, proc);
	}
}

/**
 * mkvm_vmx_set_exc_intercept() - make an exception exit, or let the guest take it
 * @vcpu: the vCPU, its VMCS current
 * @vector: 0-31
 * @on: exit or not (the exception bitmap, SDM vol. 3 25.6.3)
 */
void mkvm_vmx_set_exc_intercept(struct mkvm_vcpu *vcpu, int vector, bool on)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 bitmap = on ? vmx->exc_bitmap | BIT(vector) : vmx->exc_bitmap & ~BIT(vector);

	if (bitmap != vmx->exc_bitmap) {
		vmx->exc_bitmap = bitmap;
		/* Virtual-8086 mode takes every exception (rmode.c). */
		if (!vmx->rmode)
			vmcs_write(EXCEPTION_BITMAP, bitmap);
	}
}

static void vmx_update_guest_debug(struct mkvm_vcpu *vcpu)
{
	bool hw_bp = vcpu->arch.guest_debug & KVM_GUESTDBG_USE_HW_BP;

	mkvm_vmx_set_exc_intercept(vcpu, BP_VECTOR,
				   vcpu->arch.guest_debug & KVM_GUESTDBG_USE_SW_BP);
	/* The guest's MOV to or from DR0-7 must not reach the debugger's (SDM vol. 3 25.6.2). */
	mkvm_vmx_set_proc(vcpu, CPU_BASED_MOV_DR_EXITING, hw_bp);
	if (hw_bp)
		vmcs_write(GUEST_DR7, vcpu->arch.debug_dr7);
}

/**
 * mkvm_vmx_next_rip() - where the instruction behind the exit ends
 * @vcpu: the vCPU
 * @len: unused: VM exits caused by instructions give their length (SDM vol. 3 28.2.5)
 *
 * Return: the address of the next instruction.
 */
unsigned long mkvm_vmx_next_rip(struct mkvm_vcpu *vcpu, unsigned int len)
{
	return vcpu->arch.rip + to_vmx(vcpu)->insn_len;
}

/* The VMCS of a vCPU at power-on, and after a shutdown or INIT. */
static void init_vmcs(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	struct kvm_sregs s = {};
	u64 v;

	/* The segments below go to the VMCS, and into virtual-8086 mode from there. */
	vmx->rmode = false;
	vmx->rm_event.pending = false;
	vmx->pin = mkvm_vmx_caps.pin;
	vmcs_write(PIN_BASED_VM_EXEC_CONTROL, vmx->pin);
	vmx->proc = mkvm_vmx_caps.proc;
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx->proc);
	vmx->proc2 = mkvm_vmx_caps.proc2;
	/* Out of VPIDs: VPID 0 is not allowed with the control set (SDM 26.2.1.1). */
	if (!vmx->vpid)
		vmx->proc2 &= ~SECONDARY_EXEC_ENABLE_VPID;
	if (mkvm_vmx_caps.proc & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS)
		vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmx->proc2);
	vmcs_write(VM_EXIT_CONTROLS, mkvm_vmx_caps.exit);
	vmx->entry = mkvm_vmx_caps.entry;
	vmcs_write(VM_ENTRY_CONTROLS, vmx->entry);
	/*
	 * #DB and #AC must exit: a guest can otherwise make the CPU deliver
	 * them forever without ever taking an interrupt (CVE-2015-8104,
	 * CVE-2015-5307).  A machine check is the host's (handle_exit_irqoff).
	 * #UD is looked at for RSM and VMMCALL (exits.c).  The shadow MMU
	 * takes every #PF (the error-code mask and match below say all).
	 */
	vmx->exc_bitmap = BIT(DB_VECTOR) | BIT(AC_VECTOR) | BIT(MC_VECTOR) | BIT(UD_VECTOR);
	if (!mkvm_param_ept)
		vmx->exc_bitmap |= BIT(PF_VECTOR);
	vmcs_write(EXCEPTION_BITMAP, vmx->exc_bitmap);
	vmcs_write(PAGE_FAULT_ERROR_CODE_MASK, 0);
	vmcs_write(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write(CR3_TARGET_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);
	/*
	 * Pause-loop exiting (SDM vol. 3 25.6.13): PAUSEs less than PLE_GAP
	 * TSC cycles apart for longer than PLE_WINDOW exit; KVM's defaults.
	 */
	if (vmx->proc2 & SECONDARY_EXEC_PAUSE_LOOP_EXITING) {
		vmcs_write(PLE_GAP, 128);
		vmcs_write(PLE_WINDOW, 4096);
	}
	vmcs_write(CR0_GUEST_HOST_MASK, ~(unsigned long)CR0_GUEST_OWNED);
	vmcs_write(CR4_GUEST_HOST_MASK, ~0UL);
	vmcs_write(VMCS_LINK_POINTER, ~0ULL);
	if (vmx->proc & CPU_BASED_USE_MSR_BITMAPS)
		vmcs_write(MSR_BITMAP, __pa(mkvm_vmx_msr_bitmap));
	if (vmx->vpid)
		vmcs_write(VIRTUAL_PROCESSOR_ID, vmx->vpid);
	vmx->tsc_offset_written = ~vmx->tsc_offset;
	vmx->eptp_written = 0;

	/* Host state that is the same on every CPU (SDM vol. 3 26.2.3). */
	vmcs_write(HOST_CR0, read_cr0());
	vmcs_write(HOST_CS_SELECTOR, __KERNEL_CS);
	vmcs_write(HOST_SS_SELECTOR, __KERNEL_DS);
	vmcs_write(HOST_DS_SELECTOR, 0);
	vmcs_write(HOST_ES_SELECTOR, 0);
	vmcs_write(HOST_FS_SELECTOR, 0);
	vmcs_write(HOST_GS_SELECTOR, 0);
	vmcs_write(HOST_TR_SELECTOR, GDT_ENTRY_TSS * 8);
	vmcs_write(HOST_RIP, (unsigned long)mkvm_vmx_vmexit);
	rdmsrl(MSR_IA32_SYSENTER_CS, v);
	vmcs_write(HOST_IA32_SYSENTER_CS, v);
	rdmsrl(MSR_IA32_SYSENTER_EIP, v);
	vmcs_write(HOST_IA32_SYSENTER_EIP, v);
	rdmsrl(MSR_EFER, v);
	vmcs_write(HOST_IA32_EFER, v);
	rdmsrl(MSR_IA32_CR_PAT, v);
	vmcs_write(HOST_IA32_PAT, v);
	vmx->host_cr3 = vmx->host_cr4 = 0;

	/* Power-on state (SDM vol. 3 table 10-1). */
	s.cs = (struct kvm_segment){ .selector = 0xf000, .base = 0xffff0000, .limit = 0xffff,
				     .type = 0xb, .s = 1, .present = 1 };
	s.ds = s.es = s.fs = s.gs = s.ss =
		(struct kvm_segment){ .limit = 0xffff, .type = 3, .s = 1, .present = 1 };
	s.ldt = (struct kvm_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	s.tr = (struct kvm_segment){ .limit = 0xffff, .type = 0xb, .present = 1 };
	s.gdt.limit = s.idt.limit = 0xffff;
	s.cr0 = X86_CR0_CD | X86_CR0_NW | X86_CR0_ET;
	vmx_set_sregs(vcpu, &s);
	vmcs_write(GUEST_RFLAGS, X86_EFLAGS_FIXED);
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
	vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write(GUEST_SYSENTER_CS, 0);
	vmcs_write(GUEST_SYSENTER_ESP, 0);
	vmcs_write(GUEST_SYSENTER_EIP, 0);
	vmcs_write(GUEST_IA32_DEBUGCTL, 0);
	/*
	 * On the shadow MMU the guest's PAT stays in software and the hardware
	 * runs with the host's: the shadow's entries select PAT entry 0, which
	 * the guest could otherwise make UC or WC for pages the host maps
	 * write-back, an aliasing the SDM (vol. 3 11.12.4) does not support.
	 * With EPT, its ignore-PAT bit does the same (mmu/tdp.c).
	 */
	vmx->pat = 0x0007040600070406ULL;
	if (mkvm_param_ept)
		vmcs_write(GUEST_IA32_PAT, vmx->pat);
	else
		vmcs_write(GUEST_IA32_PAT, vmcs_read(HOST_IA32_PAT));
	vmx->dr6 = MKVM_DR6_ACTIVE_LOW;
	vmcs_write(GUEST_DR7, MKVM_DR7_RESET);
	for (int i = 0; i < MKVM_VMX_GUEST_MSRS; i++)
		set_guest_msr(vmx, &vmx->guest_msr[i], mkvm_vmx_guest_msrs[i], 0);
	vmx->cr8 = 0;
	vmx->soft_len = 0;
	mkvm_vmx_update_nmi_mask(vcpu);
	vmx_update_guest_debug(vcpu);
}

static int vmx_vcpu_create(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = kzalloc(sizeof(*vmx), GFP_KERNEL_ACCOUNT);
	struct page *page;

	if (!vmx)
		return -ENOMEM;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page) {
		kfree(vmx);
		return -ENOMEM;
	}
	vmx->vcpu = vcpu;
	vmx->vmcs = page_address(page);
	vmx->vmcs->revision = mkvm_vmx_caps.revision;
	vmx->vmcs_pa = page_to_phys(page);
	vmx->cpu = vmx->last_cpu = -1;
	vmx->vpid = mkvm_vmx_alloc_vpid();
	vcpu->arch.vendor = vmx;
	if (mkvm_vmx_rmode_create(vcpu)) {
		mkvm_vmx_rmode_free(vcpu);
		mkvm_vmx_free_vpid(vmx->vpid);
		vcpu->arch.vendor = NULL;
		__free_page(page);
		kfree(vmx);
		return -ENOMEM;
	}
	mkvm_vmx_vmcs_init(vcpu);
	mkvm_vcpu_load(vcpu);
	init_vmcs(vcpu);
	mkvm_vcpu_put(vcpu);
	return 0;
}

static void vmx_vcpu_free(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	if (!vmx)
		return;
	WARN_ON_ONCE(vmx->cpu >= 0);
	mkvm_vmx_free_vpid(vmx->vpid);
	mkvm_vmx_rmode_free(vcpu);
	free_page((unsigned long)vmx->vmcs);
	kfree(vmx);
}

/*
 * The EPT pointer (SDM vol. 3 25.6.11): write-back tables of four levels,
 * with accessed and dirty flags where the CPU has them.  Those make the
 * processor's own updates of the guest's A/D flags writes to the page
 * tables' pages (SDM vol. 3 29.3.5), so that dirty logging sees them, as
 * nested paging does on AMD; minikvm reads no EPT A/D flag itself.
 */
static void vmx_load_mmu_root(struct mkvm_vcpu *vcpu, u64 root_pa)
{
	u64 ad;

	/* The shadow's root is the guest's CR3 at every entry (vmx_run()). */
	if (!mkvm_param_ept)
		return;
	ad = mkvm_vmx_caps.ept_vpid & VMX_EPT_AD_BIT ? VMX_EPTP_AD_ENABLE_BIT : 0;
	to_vmx(vcpu)->eptp = root_pa | VMX_EPTP_MT_WB | VMX_EPTP_PWL_4 | ad;
}

/*
 * Forget the guest's translations before the next entry: INVEPT drops
 * everything cached for its EPT pointer, on all VPIDs (SDM vol. 3 28.4.3).
 */
static void vmx_flush_tlb(struct mkvm_vcpu *vcpu)
{
	to_vmx(vcpu)->flush = true;
}

/*
 * Before an entry, with slots_sem held and interrupts still on: PAE
 * paging's PDPTEs, which the guest's MOV to CR3 loads itself but which
 * minikvm's own changes of CR0, CR3 or CR4 leave to it (SDM vol. 3 4.4.1).
 * A PDPTE that cannot be read is left 0 (not present), as a VMM's
 * KVM_SET_SREGS with a CR3 outside memory gets on KVM.
 */
static int vmx_prepare_entry(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 pdpte[4] = {};

	if (!vmx->pdptr_dirty)
		return 1;
	vmx->pdptr_dirty = false;
	if (mkvm_read_guest_phys(vcpu, vcpu->arch.cr3 & ~0x1fULL, pdpte, sizeof(pdpte)))
		memset(pdpte, 0, sizeof(pdpte));
	vmcs_write(GUEST_PDPTR0, pdpte[0]);
	vmcs_write(GUEST_PDPTR1, pdpte[1]);
	vmcs_write(GUEST_PDPTR2, pdpte[2]);
	vmcs_write(GUEST_PDPTR3, pdpte[3]);
	return 1;
}

/*
 * A host interrupt, NMI or machine check in the guest exits instead of
 * reaching the host's handler: hand it over before anything else runs on
 * this CPU.  The interrupt was acknowledged on the exit (its vector is in
 * the exit information), as KVM does, so it goes straight to its IDT entry.
 */
static void vmx_handle_exit_irqoff(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 info = vmx->exit_intr_info;
	struct desc_ptr idt;

	if (vmx->fail || !(info & INTR_INFO_VALID_MASK))
		return;
	switch ((u16)vmx->exit_reason) {
	case EXIT_REASON_EXTERNAL_INTERRUPT:
		store_idt(&idt);
		mkvm_vmx_call_handler(gate_offset((gate_desc *)idt.address +
						  (info & INTR_INFO_VECTOR_MASK)));
		return;
	case EXIT_REASON_EXCEPTION_NMI:
		break;
	default:
		return;
	}
	if ((info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_NMI_INTR) {
		mkvm_vmx_call_handler((unsigned long)asm_exc_nmi_noist);
		return;
	}
#ifdef CONFIG_X86_MCE
	if ((info & INTR_INFO_VECTOR_MASK) == MC_VECTOR) {
		struct pt_regs regs = { .cs = 3, .flags = X86_EFLAGS_IF };

		do_machine_check(&regs);
	}
#endif
}

/*
 * A LAPIC timer that expires while the guest runs ends the entry by the
 * VMX-preemption timer (SDM vol. 3 25.5.1), set to the expiry in TSC ticks
 * at the CPU's rate, rather than by the host's hrtimer interrupt, which
 * costs a host interrupt and a kick (in Bochs the two are as prompt,
 * performance.rst).  The hrtimer stays armed: it wakes a halted vCPU, and
 * is the timer.
 */
static void arm_preemption_timer(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	s64 ns = vcpu->arch.lapic ? mkvm_lapic_timer_ns_left(vcpu) : -1;
	u32 pin = mkvm_vmx_caps.pin;
	u64 ticks;

	if (ns >= 0) {
		/*
		 * Rounded up, not to end the entry before the expiry; 0 only when
		 * due (an exit before any instruction, SDM vol. 3 26.7.4).  A
		 * longer wait than the 32 bits hold ends early and is set again.
		 */
		ns = min_t(s64, ns, 1000 * NSEC_PER_SEC);
		ticks = mul_u64_u32_div(ns, tsc_khz, NSEC_PER_MSEC) >> mkvm_vmx_caps.preemption_rate;
		vmcs_write(VMX_PREEMPTION_TIMER_VALUE, ns ? min_t(u64, ticks + 1, U32_MAX) : 0);
		pin |= PIN_BASED_VMX_PREEMPTION_TIMER;
	}
	if (pin != vmx->pin) {
		vmx->pin = pin;
		vmcs_write(PIN_BASED_VM_EXEC_CONTROL, pin);
	}
}

static void vmx_run(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	int cpu = smp_processor_id();
	unsigned long cr3, cr4, rflags;

	if (WARN_ON_ONCE(vmx->cpu != cpu)) {
		vmx->fail = true;
		vmx->rm_event.pending = false;
		return;
	}
	/*
	 * An event for the real-mode vector table, or real mode that
	 * virtual-8086 mode cannot run: no entry, the exit handler takes the
	 * step (rmode.c).
	 */
	if (unlikely(vmx->rmode) &&
	    (vmx->rm_event.pending || !mkvm_vmx_rmode_can_enter(vcpu))) {
		/* Only NMI blocking: complete_events() reads it back. */
		vmcs_write(GUEST_INTERRUPTIBILITY_INFO,
			   (vmcs_read(GUEST_INTERRUPTIBILITY_INFO) & ~GUEST_INTR_STATE_NMI) |
			   (vcpu->arch.events.nmi_masked ? GUEST_INTR_STATE_NMI : 0));
		vmx->fail = false;
		vmx->exit_reason = MKVM_VMX_EXIT_RMODE;
		vmx->exit_qual = 0;
		vmx->exit_intr_info = vmx->exit_intr_error = 0;
		vmx->idt_info = vmx->idt_error = 0;
		vmx->insn_len = 0;
		return;
	}
	/* Another CPU's TLB may hold what this vCPU cached before it last ran there. */
	if (vmx->last_cpu != cpu || vmx->flush) {
		vmx->last_cpu = cpu;
		vmx->flush = false;
		if (mkvm_param_ept && vmx->eptp)
			invept(mkvm_vmx_caps.ept_vpid & VMX_EPT_EXTENT_CONTEXT_BIT ? VMX_EPT_EXTENT_CONTEXT :
			       VMX_EPT_EXTENT_GLOBAL, vmx->eptp);
		if (vmx->vpid)
			invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT, vmx->vpid);
	}
	if (vmx->eptp != vmx->eptp_written) {
		vmcs_write(EPT_POINTER, vmx->eptp);
		vmx->eptp_written = vmx->eptp;
	}
	if (READ_ONCE(vmx->tsc_offset) != vmx->tsc_offset_written) {
		vmx->tsc_offset_written = READ_ONCE(vmx->tsc_offset);
		vmcs_write(TSC_OFFSET, vmx->tsc_offset_written);
	}
	/* The host's CR3 and CR4 may change under a running thread (PCID, a CR4 bit). */
	cr3 = __read_cr3();
	if (cr3 != vmx->host_cr3) {
		vmcs_write(HOST_CR3, cr3);
		vmx->host_cr3 = cr3;
	}
	cr4 = cr4_read_shadow();
	if (cr4 != vmx->host_cr4) {
		vmcs_write(HOST_CR4, cr4);
		vmx->host_cr4 = cr4;
	}
	/* The VMM's MSR filter sees every access (api.rst KVM_X86_SET_MSR_FILTER). */
	if (mkvm_vmx_caps.proc & CPU_BASED_USE_MSR_BITMAPS)
		mkvm_vmx_set_proc(vcpu, CPU_BASED_USE_MSR_BITMAPS,
				  !rcu_access_pointer(vcpu->vm->arch.msr_filter));
	/* Whatever the last exit or update left there, the shadow MMU runs on its own root. */
	if (!mkvm_param_ept)
		vmcs_write(GUEST_CR3, vcpu->arch.mmu.root_pa);
	vmcs_write(GUEST_RIP, vcpu->arch.rip);
	vmcs_write(GUEST_RSP, vcpu->arch.regs[REG_RSP]);
	rflags = vcpu->arch.rflags;
	/* The VMM's debugger single-steps: a #DB after one instruction (guest_debug.c). */
	vmx->debug_tf = (vcpu->arch.guest_debug & KVM_GUESTDBG_SINGLESTEP) &&
			!(rflags & X86_EFLAGS_TF);
	if (vmx->debug_tf)
		rflags |= X86_EFLAGS_TF;
	if (vmx->rmode)
		rflags |= X86_EFLAGS_VM | X86_EFLAGS_IOPL;
	vmcs_write(GUEST_RFLAGS, rflags);
	mkvm_vmx_before_entry(vcpu);
	if (mkvm_param_preemption_timer)
		arm_preemption_timer(vcpu);

	mkvm_save_host_pkru(vcpu);
	mkvm_load_guest_drs(vcpu);
	if (vcpu->arch.guest_debug & KVM_GUESTDBG_USE_HW_BP)
		vmx->dr6 = MKVM_DR6_ACTIVE_LOW;
	native_set_debugreg(6, vmx->dr6);
	if (native_read_cr2() != vmx->cr2)
		native_write_cr2(vmx->cr2);

	/* Now, interrupts off: host perf may change it at any time before. */
	rdmsrl(MSR_IA32_DEBUGCTLMSR, vmx->host_debugctl);
	if (mkvm_vmx_l1d_flush)
		native_wrmsrl(MSR_IA32_FLUSH_CMD, L1D_FLUSH);
	vmx->fail = mkvm_vmx_vmenter(vcpu->arch.regs, vmx->launched);
	/* A VM exit clears DEBUGCTL (SDM vol. 3 27.5.1): the host's bus-lock detection, LBRs. */
	if (vmx->host_debugctl)
		wrmsrl(MSR_IA32_DEBUGCTLMSR, vmx->host_debugctl);

	vmx->cr2 = native_read_cr2();
	mkvm_load_host_pkru(vcpu);
	vmx->dr6 = native_get_debugreg(6);
	native_set_debugreg(6, MKVM_DR6_ACTIVE_LOW);
	mkvm_save_guest_drs(vcpu);
	/* The exit set TR's limit to 0x67: the host reloads it before it needs the I/O bitmap. */
	invalidate_tss_limit();
	if (vmx->fail) {
		/* Nothing of the last exit's information stands. */
		vmx->exit_reason = 0;
		vmx->exit_qual = 0;
		vmx->exit_intr_info = vmx->exit_intr_error = 0;
		vmx->idt_info = vmx->idt_error = 0;
		vmx->insn_len = 0;
		return;
	}
	vmx->exit_reason = vmcs_read(VM_EXIT_REASON);
	vmx->exit_qual = vmcs_read(EXIT_QUALIFICATION);
	vmx->exit_intr_info = vmcs_read(VM_EXIT_INTR_INFO);
	vmx->exit_intr_error = vmcs_read(VM_EXIT_INTR_ERROR_CODE);
	vmx->idt_info = vmcs_read(IDT_VECTORING_INFO_FIELD);
	vmx->idt_error = vmcs_read(IDT_VECTORING_ERROR_CODE);
	vmx->insn_len = vmcs_read(VM_EXIT_INSTRUCTION_LEN);
	/*
	 * A failed entry loaded no guest state and did not launch (SDM vol. 3
	 * 26.8), as on KVM; its event fields mean nothing either.
	 */
	if (vmx->exit_reason & VMX_EXIT_REASONS_FAILED_VMENTRY) {
		vmx->exit_intr_info = vmx->exit_intr_error = 0;
		vmx->idt_info = vmx->idt_error = 0;
		vmx->insn_len = 0;
		return;
	}
	vmx->launched = true;

	vcpu->arch.regs[REG_RSP] = vmcs_read(GUEST_RSP);
	vcpu->arch.rip = vmcs_read(GUEST_RIP);
	rflags = vmcs_read(GUEST_RFLAGS);
	if (vmx->debug_tf)
		rflags &= ~X86_EFLAGS_TF;
	/* Virtual-8086 mode cannot change IOPL: the guest's own stays in software. */
	if (vmx->rmode)
		rflags = (rflags & ~(X86_EFLAGS_VM | X86_EFLAGS_IOPL)) |
			 (vcpu->arch.rflags & X86_EFLAGS_IOPL);
	vcpu->arch.rflags = rflags;
	vcpu->arch.cr0 = (vcpu->arch.cr0 & ~CR0_GUEST_OWNED) |
			 (vmcs_read(GUEST_CR0) & CR0_GUEST_OWNED);
	/* On the shadow MMU the guest's MOV to CR3 exits: the VMCS holds the shadow's root. */
	if (mkvm_param_ept)
		vcpu->arch.cr3 = vmcs_read(GUEST_CR3);
}

const struct mkvm_x86_ops mkvm_vmx_ops = {
	.name = "Intel VMX",
	.hardware_setup = mkvm_vmx_hardware_setup,
	.hardware_unsetup = mkvm_vmx_hardware_unsetup,
	.emergency_disable = mkvm_vmx_emergency_disable,
	.vcpu_create = vmx_vcpu_create,
	.vcpu_free = vmx_vcpu_free,
	.vcpu_load = mkvm_vmx_vcpu_load,
	.vcpu_put = mkvm_vmx_vcpu_put,
	.get_sregs = vmx_get_sregs,
	.set_sregs = vmx_set_sregs,
	.get_msr = vmx_get_msr,
	.set_msr = vmx_set_msr,
	.prepare_entry = vmx_prepare_entry,
	.run = vmx_run,
	.handle_exit_irqoff = vmx_handle_exit_irqoff,
	.handle_exit = mkvm_vmx_handle_exit,
	.get_dr67 = vmx_get_dr67,
	.set_dr67 = vmx_set_dr67,
	.set_cr2 = vmx_set_cr2,
	.get_cpl = vmx_get_cpl,
	.update_crs = vmx_update_crs,
	.next_rip = mkvm_vmx_next_rip,
	.get_cr8 = vmx_get_cr8,
	.set_cr8 = vmx_set_cr8,
	.inject_exception = mkvm_vmx_inject_exception,
	.inject_nmi = mkvm_vmx_inject_nmi,
	.inject_irq = mkvm_vmx_inject_irq,
	.interrupt_blocked = mkvm_vmx_interrupt_blocked,
	.nmi_blocked = mkvm_vmx_nmi_blocked,
	.enable_irq_window = mkvm_vmx_enable_irq_window,
	.enable_nmi_window = mkvm_vmx_enable_nmi_window,
	.get_interrupt_shadow = mkvm_vmx_get_interrupt_shadow,
	.set_interrupt_shadow = mkvm_vmx_set_interrupt_shadow,
	.update_nmi_mask = mkvm_vmx_update_nmi_mask,
	.set_tsc_offset = vmx_set_tsc_offset,
	.update_cr8_intercept = mkvm_vmx_update_cr8_intercept,
	.init_event = init_vmcs,	/* INIT: the TSC offset is kept in software */
	.update_guest_debug = vmx_update_guest_debug,
	/* EPT entries (SDM vol. 3 29.3.2); guest accesses are checked by their R/W/X. */
	.tdp_format = MKVM_SPTE_EPT,
	.ucode_rev_reset = 0x100000000ULL,
	.load_mmu_root = vmx_load_mmu_root,
	.flush_tlb = vmx_flush_tlb,
};
