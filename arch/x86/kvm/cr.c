// SPDX-License-Identifier: GPL-2.0
/*
 * CR0, CR3, CR4 and EFER as the guest sees them: the one place that checks
 * what goes in them, from KVM_SET_SREGS and from the guest's writes that
 * exit (SDM vol. 2 MOV-Control Registers, LMSW, CLTS; SDM vol. 3 2.5; APM
 * vol. 2 3.1), with the switch into and out of long mode that MOV to CR0
 * makes (SDM vol. 3 10.8.5, APM vol. 2 14.6).  The vendor derives the
 * hardware's registers from the guest's (update_crs): what the hardware
 * runs with need not be what the guest wrote.  Each change that alters
 * translations asks for a TLB flush.
 */
#include <asm/traps.h>

#include <minikvm/core.h>
#include <minikvm/mmu.h>

/* The CR0 bits that exist; MOV to CR0 ignores writes to the others below 32 (SDM vol. 3 2.5). */
#define CR0_DEFINED (X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_ET | \
		     X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG)
/* The EFER bits a guest may have; SVME only with the nested parameter (efer_defined()). */
#define EFER_DEFINED (EFER_SCE | EFER_LME | EFER_LMA | EFER_NX | EFER_FFXSR)

static u64 efer_defined(void)
{
	return EFER_DEFINED | (mkvm_nested ? EFER_SVME : 0);
}
/* Changing these changes what a linear address translates to: the TLB is stale. */
#define CR0_PAGING (X86_CR0_PG | X86_CR0_WP | X86_CR0_PE)
#define CR4_PAGING (X86_CR4_PSE | X86_CR4_PAE | X86_CR4_PGE | X86_CR4_PCIDE | X86_CR4_SMEP | \
		    X86_CR4_SMAP | X86_CR4_LA57 | X86_CR4_PKE)

/**
 * mkvm_cr4_allowed() - the CR4 bits the guest's CPUID lets it set
 * @vcpu: the vCPU
 *
 * Only features the host has too; CR4 bits the host kernel turned off
 * (nosmep, ...) stay reserved for the guest, as in KVM.
 *
 * Return: the mask of allowed bits.
 */
u64 mkvm_cr4_allowed(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *l1 = mkvm_find_cpuid_entry(vcpu, 1, 0);
	struct kvm_cpuid_entry2 *l7 = mkvm_find_cpuid_entry(vcpu, 7, 0);
	u64 ok = X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE |
		 X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR |
		 X86_CR4_OSXMMEXCPT;

	if (l1 && (l1->ecx & BIT(26)) && boot_cpu_has(X86_FEATURE_XSAVE))
		ok |= X86_CR4_OSXSAVE;
	if (l1 && (l1->ecx & BIT(17)) && boot_cpu_has(X86_FEATURE_PCID))
		ok |= X86_CR4_PCIDE;
	if (!l7)
		return ok;
	if ((l7->ebx & BIT(0)) && boot_cpu_has(X86_FEATURE_FSGSBASE))
		ok |= X86_CR4_FSGSBASE;
	if ((l7->ebx & BIT(7)) && boot_cpu_has(X86_FEATURE_SMEP))
		ok |= X86_CR4_SMEP;
	if ((l7->ebx & BIT(20)) && boot_cpu_has(X86_FEATURE_SMAP))
		ok |= X86_CR4_SMAP;
	if ((l7->ecx & BIT(2)) && boot_cpu_has(X86_FEATURE_UMIP))
		ok |= X86_CR4_UMIP;
	return ok;
}

/**
 * mkvm_sregs_valid() - the checks KVM makes before accepting KVM_SET_SREGS
 * @vcpu: the vCPU, whose CPUID says which CR4 bits exist
 * @s: the registers
 *
 * SDM vol. 3 2.5, APM vol. 2 3.1.  RSM (smm.c) loads through them too.
 *
 * Return: true when the control registers and EFER make a state the CPU can hold.
 */
bool mkvm_sregs_valid(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s)
{
	if (s->efer & ~efer_defined() || s->cr4 & ~mkvm_cr4_allowed(vcpu) || s->cr0 >> 32)
		return false;
	if ((s->cr0 & X86_CR0_PG) && !(s->cr0 & X86_CR0_PE))
		return false;
	if ((s->cr0 & X86_CR0_NW) && !(s->cr0 & X86_CR0_CD))
		return false;
	if ((s->efer & EFER_LME) && (s->cr0 & X86_CR0_PG)) {
		if (!(s->cr4 & X86_CR4_PAE) || !(s->efer & EFER_LMA))
			return false;
	} else if ((s->efer & EFER_LMA) || s->cs.l) {
		return false;
	}
	/* PCIDE only in long mode (SDM 4.10.1). */
	if ((s->cr4 & X86_CR4_PCIDE) && !(s->efer & EFER_LMA))
		return false;
	return true;
}

/**
 * mkvm_set_cr0() - the guest's MOV to CR0, LMSW or CLTS
 * @vcpu: the vCPU
 * @s: its special registers (CS.L is checked)
 * @cr0: the new value
 *
 * Return: 0, or 1 when the write is #GP(0) and nothing changed.
 */
int mkvm_set_cr0(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, unsigned long cr0)
{
	unsigned long old = vcpu->arch.cr0;
	u64 efer = vcpu->arch.efer;

	if ((u64)cr0 >> 32)
		return 1;
	/* ET is fixed at 1 on every CPU with long mode (SDM vol. 3 2.5). */
	cr0 = (cr0 & CR0_DEFINED) | X86_CR0_ET;
	if ((cr0 & X86_CR0_PG) && !(cr0 & X86_CR0_PE))
		return 1;
	if ((cr0 & X86_CR0_NW) && !(cr0 & X86_CR0_CD))
		return 1;
	if ((cr0 & X86_CR0_PG) && !(old & X86_CR0_PG) && (efer & EFER_LME)) {
		/* Long mode needs PAE, and starts in compatibility mode (SDM vol. 3 10.8.5). */
		if (!(vcpu->arch.cr4 & X86_CR4_PAE) || s->cs.l)
			return 1;
		efer |= EFER_LMA;
	}
	if (!(cr0 & X86_CR0_PG) && (old & X86_CR0_PG)) {
		/* Paging goes off only from compatibility mode, and without PCIDs. */
		if (((efer & EFER_LMA) && s->cs.l) || (vcpu->arch.cr4 & X86_CR4_PCIDE))
			return 1;
		efer &= ~EFER_LMA;
	}
	vcpu->arch.cr0 = cr0;
	vcpu->arch.efer = efer;
	mkvm_x86->update_crs(vcpu);
	if ((cr0 ^ old) & CR0_PAGING)
		mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH);
	return 0;
}

/**
 * mkvm_set_cr4() - the guest's MOV to CR4
 * @vcpu: the vCPU
 * @cr4: the new value
 *
 * Return: 0, or 1 when the write is #GP(0) and nothing changed.
 */
int mkvm_set_cr4(struct mkvm_vcpu *vcpu, unsigned long cr4)
{
	unsigned long old = vcpu->arch.cr4;
	bool lma = vcpu->arch.efer & EFER_LMA;

	if (cr4 & ~mkvm_cr4_allowed(vcpu))
		return 1;
	/* In long mode PAE stays on and the paging depth stays (SDM vol. 3 4.1.1). */
	if (lma && (!(cr4 & X86_CR4_PAE) || ((cr4 ^ old) & X86_CR4_LA57)))
		return 1;
	/* PCIDs only in long mode, and only with PCID 0 current (SDM vol. 3 4.10.1). */
	if ((cr4 & X86_CR4_PCIDE) && !(old & X86_CR4_PCIDE) &&
	    (!lma || (vcpu->arch.cr3 & X86_CR3_PCID_MASK)))
		return 1;
	vcpu->arch.cr4 = cr4;
	mkvm_x86->update_crs(vcpu);
	if ((cr4 ^ old) & CR4_PAGING)
		mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH);
	return 0;
}

/**
 * mkvm_set_cr3() - the guest's MOV to CR3, which exits only on the shadow MMU
 * @vcpu: the vCPU
 * @cr3: the new value
 *
 * Every MOV to CR3 drops the shadow's translations but those of global
 * pages, also with PCIDs and bit 63 set: flushing more than the guest asked
 * is always allowed, and bit 63 itself is not kept (SDM vol. 3 4.10.4.1).
 *
 * Return: 0, or 1 when the write is #GP(0) and nothing changed.
 */
int mkvm_set_cr3(struct mkvm_vcpu *vcpu, unsigned long cr3)
{
	if (vcpu->arch.cr4 & X86_CR4_PCIDE)
		cr3 &= ~(1UL << 63);
	/* In long mode, an address beyond MAXPHYADDR is #GP (SDM vol. 2 MOV-Control Registers). */
	if ((vcpu->arch.efer & EFER_LMA) && ((u64)cr3 >> mkvm_guest_maxphyaddr(vcpu)))
		return 1;
	vcpu->arch.cr3 = cr3;
	mkvm_x86->update_crs(vcpu);
	/* Global pages survive it (SDM vol. 3 4.10.4.1). */
	mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH_NONGLOBAL);
	return 0;
}

/**
 * mkvm_set_efer() - WRMSR of EFER, by the guest or by KVM_SET_MSRS
 * @vcpu: the vCPU
 * @efer: the new value
 * @host: written by userspace, which may set what the CPUID does not offer
 *
 * LMA is the CPU's to set (APM vol. 2 3.1.7, SDM vol. 3 2.2.1), so it keeps
 * its value, also for userspace (KVM_SET_SREGS sets it), as in KVM.  The
 * guest may set SVME, LME, NX and FFXSR only if its CPUID offers them (not SCE,
 * as in KVM), and not change LME while paging is on.
 *
 * Return: 0, or MKVM_MSR_INVALID (#GP for the guest, an error for userspace).
 */
int mkvm_set_efer(struct mkvm_vcpu *vcpu, u64 efer, bool host)
{
	struct kvm_cpuid_entry2 *e = mkvm_find_cpuid_entry(vcpu, 0x80000001, 0);
	u32 edx = e ? e->edx : 0, ecx = e ? e->ecx : 0;
	u64 old = vcpu->arch.efer;

	if (efer & ~efer_defined())
		return MKVM_MSR_INVALID;
	if (!host) {
		if (((efer & EFER_SVME) && !(ecx & BIT(2))) ||
		    ((efer & EFER_LME) && !(edx & BIT(29))) ||
		    ((efer & EFER_NX) && !(edx & BIT(20))) ||
		    ((efer & EFER_FFXSR) && !(edx & BIT(25))))
			return MKVM_MSR_INVALID;
		if ((vcpu->arch.cr0 & X86_CR0_PG) && ((efer ^ old) & EFER_LME))
			return MKVM_MSR_INVALID;
	}
	vcpu->arch.efer = (efer & ~EFER_LMA) | (old & EFER_LMA);
	mkvm_x86->update_crs(vcpu);
	/* NX changes what a translation allows. */
	if ((efer ^ old) & EFER_NX)
		mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH);
	return 0;
}

/* Which instruction may have made the exit: the hardware only names the register. */
static bool insn_matches(const struct mkvm_insn *insn, int cr, bool write)
{
	if (insn->lock)		/* LOCK MOV CR0 is CR8 on AMD (APM vol. 3 MOV CRn) */
		return false;
	/* The CR0 read intercept covers SMSW too (APM 15.9). */
	if (!write)
		return (insn->kind == INSN_MOV_FROM_CR && insn->reg == cr) ||
		       (cr == 0 && insn->kind == INSN_SMSW);
	if (insn->kind == INSN_MOV_TO_CR)
		return insn->reg == cr;
	return cr == 0 && (insn->kind == INSN_LMSW || insn->kind == INSN_CLTS);
}

/*
 * SMSW: CR0's low 16 bits to memory; to a register, as much of CR0 as the
 * operand size holds, a 16-bit one keeping its upper bits (SDM vol. 2 SMSW).
 */
static int smsw(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, const struct mkvm_insn *insn,
		bool wide)
{
	unsigned long *reg = &vcpu->arch.regs[insn->rm], next = vcpu->arch.rip + insn->len;
	u16 msw = vcpu->arch.cr0;
	int r;

	/* UMIP keeps SMSW from CPL > 0 (SDM vol. 2 SMSW). */
	if ((vcpu->arch.cr4 & X86_CR4_UMIP) && mkvm_x86->get_cpl(vcpu)) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
	if (insn->mem) {
		r = mkvm_access_mem_operand(vcpu, s, insn, &msw, sizeof(msw), true);
		if (r)
			return r > 0 ? r : mkvm_emulation_failed(vcpu, NULL, 0);
	} else if (insn->op_bytes == 2) {
		*reg = (*reg & ~0xffffUL) | msw;
	} else {
		*reg = insn->op_bytes == 8 ? vcpu->arch.cr0 : (u32)vcpu->arch.cr0;
	}
	mkvm_rip_past_insn(vcpu, wide ? next : (u32)next);
	return 1;
}

/**
 * mkvm_emulate_cr_access() - complete an intercepted access to CR0, CR3 or CR4
 * @vcpu: the vCPU, with slots_sem held
 * @cr: 0, 3 or 4, the register the exit names
 * @write: a write (MOV to CR, LMSW, CLTS) rather than MOV from CR
 * @gpr: the general register if the hardware said, else -1
 * @len: the instruction's length if known, else 0
 *
 * The hardware checked the CPL before the intercept; the instruction may
 * have changed since (another vCPU), so one that does not match the exit is
 * not run.
 *
 * Return: 1 to enter again, 0 with kvm_run reporting an emulation failure.
 */
int mkvm_emulate_cr_access(struct mkvm_vcpu *vcpu, int cr, bool write, int gpr, unsigned int len)
{
	unsigned long *regs = vcpu->arch.regs, val, next;
	struct mkvm_insn insn;
	struct kvm_sregs s;
	bool wide;
	u16 msw;
	int r;

	if (cr != 0 && cr != 3 && cr != 4)
		return mkvm_emulation_failed(vcpu, NULL, 0);

	if (!mkvm_decode_intercepted(vcpu, &s, &insn, &gpr, &len, &r))
		return r;
	if (insn.kind == INSN_UNKNOWN)
		insn.kind = write ? INSN_MOV_TO_CR : INSN_MOV_FROM_CR;
	else if (!insn_matches(&insn, cr, write))
		return mkvm_emulation_failed(vcpu, NULL, 0);
	/* MOV CR's operand is 64 bits in 64-bit mode, else 32. */
	wide = (s.efer & EFER_LMA) && s.cs.l;
	if (insn.kind == INSN_SMSW)
		return smsw(vcpu, &s, &insn, wide);
	if (!write) {
		val = cr == 0 ? vcpu->arch.cr0 : cr == 3 ? vcpu->arch.cr3 : vcpu->arch.cr4;
		regs[gpr] = wide ? val : (u32)val;
		goto done;
	}
	switch (insn.kind) {
	case INSN_LMSW:
		/* CR0[3:0] from the operand, except that PE stays set (SDM vol. 2 LMSW). */
		if (insn.mem) {
			r = mkvm_access_mem_operand(vcpu, &s, &insn, &msw, sizeof(msw), false);
			if (r)
				return r > 0 ? r : mkvm_emulation_failed(vcpu, NULL, 0);
		} else {
			msw = regs[gpr];
		}
		val = (vcpu->arch.cr0 & ~0xfUL) | (msw & 0xf) | (vcpu->arch.cr0 & X86_CR0_PE);
		break;
	case INSN_CLTS:
		val = vcpu->arch.cr0 & ~X86_CR0_TS;
		break;
	default:
		val = wide ? regs[gpr] : (u32)regs[gpr];
		break;
	}
	if (cr == 0)
		r = mkvm_set_cr0(vcpu, &s, val);
	else if (cr == 3)
		r = mkvm_set_cr3(vcpu, val);
	else
		r = mkvm_set_cr4(vcpu, val);
	if (r) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
done:
	next = vcpu->arch.rip + len;
	mkvm_rip_past_insn(vcpu, wide ? next : (u32)next);
	return 1;
}

/**
 * mkvm_load_sregs_crs() - the control registers and EFER of KVM_SET_SREGS
 * @vcpu: the vCPU, whose vendor's set_sregs has loaded the rest
 * @s: the registers, checked by the caller
 *
 * The vendor derives what the hardware runs with (update_crs); cached
 * translations made under the old paging state must not be used.
 */
void mkvm_load_sregs_crs(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s)
{
	vcpu->arch.cr0 = s->cr0;
	vcpu->arch.cr3 = s->cr3;
	vcpu->arch.cr4 = s->cr4;
	vcpu->arch.efer = s->efer;
	mkvm_x86->update_crs(vcpu);
	mkvm_x86->set_cr8(vcpu, s->cr8);
	mkvm_make_request(vcpu, MKVM_REQ_TLB_FLUSH);
}
