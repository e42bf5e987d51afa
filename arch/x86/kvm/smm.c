// SPDX-License-Identifier: GPL-2.0
/*
 * System management mode: the SMI, the state save map, and RSM.
 *
 * An SMI (KVM_SMI, or an SMI message to the local APIC) is taken at the
 * next entry that carries no other event: the vCPU's state is written to
 * the save map at SMBASE + 0xFE00 and it starts over in "big real mode" at
 * SMBASE + 0x8000 with NMIs blocked (SDM vol. 3 34.4-34.5, APM vol. 2
 * 10.2-10.3).  Its memory is then memslot address space 1, which the VMM
 * fills with what the chipset shows in SMM (SMRAM over the normal RAM).
 * RSM, intercepted, reads the map back; a state the CPU could not hold
 * shuts the vCPU down, as the hardware does (SDM vol. 3 34.13).
 *
 * The map is KVM's, so that a guest saved in SMM on either hypervisor
 * resumes on the other: the AMD64 layout (APM vol. 2 table 10-2, revision
 * 0x00020064) for a guest whose CPUID has long mode, else KVM's 32-bit one
 * (revision 0x00020000).  Segment attributes are packed as in bits 8-23
 * of a descriptor's high word.
 */
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <asm/traps.h>
#include <asm/unaligned.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>
#include <minikvm/irqchip.h>

#define SMM_MAP_OFFSET	0xfe00		/* the map's place above SMBASE */
#define SMM_MAP_SIZE	512
#define SMM_ENTRY_IP	0x8000		/* the handler's first instruction above SMBASE */
#define SMM_RESET_BASE	0x30000		/* SMBASE at RESET; INIT keeps it */
#define SMM_REV_64	0x00020064
#define SMM_REV_32	0x00020000

/*
 * Offsets in the map are given as the architecture manuals give them,
 * relative to SMBASE + 0x8000, so the map starts at 0x7e00.
 */
#define MAP(off) ((off) - 0x7e00)

/* The RFLAGS bits that exist (SDM vol. 1 3.4.3): a map cannot set the reserved ones. */
#define RFLAGS_DEFINED	0x3f7fd5UL

struct smm_map {
	u8 b[SMM_MAP_SIZE];
};

static u32 get32(const struct smm_map *m, unsigned int off)
{
	return get_unaligned((u32 *)&m->b[MAP(off)]);
}

static u64 get64(const struct smm_map *m, unsigned int off)
{
	return get_unaligned((u64 *)&m->b[MAP(off)]);
}

static void put16(struct smm_map *m, unsigned int off, u16 v)
{
	put_unaligned(v, (u16 *)&m->b[MAP(off)]);
}

static void put32(struct smm_map *m, unsigned int off, u32 v)
{
	put_unaligned(v, (u32 *)&m->b[MAP(off)]);
}

static void put64(struct smm_map *m, unsigned int off, u64 v)
{
	put_unaligned(v, (u64 *)&m->b[MAP(off)]);
}

/* Attributes as bits 8-23 of a descriptor's high word, shifted down by 8. */
static u16 seg_attr(const struct kvm_segment *s)
{
	return s->type | s->s << 4 | s->dpl << 5 | s->present << 7 | s->avl << 12 | s->l << 13 |
	       s->db << 14 | s->g << 15;
}

static void seg_load(struct kvm_segment *s, u16 sel, u16 attr, u32 limit, u64 base)
{
	*s = (struct kvm_segment){
		.selector = sel, .base = base, .limit = limit,
		.type = attr & 15, .s = (attr >> 4) & 1, .dpl = (attr >> 5) & 3,
		.present = (attr >> 7) & 1, .avl = (attr >> 12) & 1, .l = (attr >> 13) & 1,
		.db = (attr >> 14) & 1, .g = (attr >> 15) & 1,
	};
	s->unusable = !s->present;
}

/* ES, CS, SS, DS, FS, GS: the order of segment registers in the maps. */
static struct kvm_segment *map_seg(struct kvm_sregs *s, int n)
{
	struct kvm_segment *segs[] = { &s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs };

	return segs[n];
}

/* The 32-bit map keeps ES, CS and SS apart from DS, FS and GS. */
static unsigned int map32_seg_off(int n)
{
	return n < 3 ? 0x7f84 + n * 12 : 0x7f2c + (n - 3) * 12;
}

static bool guest_has_lm(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = mkvm_find_cpuid_entry(vcpu, 0x80000001, 0);

	return e && (e->edx & BIT(29));
}

/* A segment in the AMD64 map: selector, attributes, limit, base. */
static void put_seg64(struct smm_map *m, unsigned int off, const struct kvm_segment *seg)
{
	put16(m, off, seg->selector);
	put16(m, off + 2, seg_attr(seg));
	put32(m, off + 4, seg->limit);
	put64(m, off + 8, seg->base);
}

static void get_seg64(const struct smm_map *m, unsigned int off, struct kvm_segment *seg)
{
	seg_load(seg, get32(m, off) & 0xffff, get32(m, off) >> 16, get32(m, off + 4),
		 get64(m, off + 8));
}

static void save_64(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 dr6, u64 dr7,
		    struct smm_map *m)
{
	int i;

	for (i = 0; i < 6; i++)
		put_seg64(m, 0x7e00 + i * 16, map_seg((struct kvm_sregs *)s, i));
	put32(m, 0x7e64, s->gdt.limit);
	put64(m, 0x7e68, s->gdt.base);
	put_seg64(m, 0x7e70, &s->ldt);
	put32(m, 0x7e84, s->idt.limit);
	put64(m, 0x7e88, s->idt.base);
	put_seg64(m, 0x7e90, &s->tr);
	put64(m, 0x7ed0, s->efer);
	put32(m, 0x7efc, SMM_REV_64);
	put32(m, 0x7f00, vcpu->arch.smm.smbase);
	put64(m, 0x7f48, s->cr4);
	put64(m, 0x7f50, s->cr3);
	put64(m, 0x7f58, s->cr0);
	put64(m, 0x7f60, dr7);
	put64(m, 0x7f68, dr6);
	put64(m, 0x7f70, vcpu->arch.rflags);
	put64(m, 0x7f78, vcpu->arch.rip);
	/* RAX at the top, then RCX, RDX, ... R15 downwards. */
	for (i = 0; i < NR_GPRS; i++)
		put64(m, 0x7ff8 - i * 8, vcpu->arch.regs[i]);
}

static void save_32(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 dr6, u64 dr7,
		    struct smm_map *m)
{
	int i;

	put32(m, 0x7ffc, s->cr0);
	put32(m, 0x7ff8, s->cr3);
	put32(m, 0x7ff4, vcpu->arch.rflags);
	put32(m, 0x7ff0, vcpu->arch.rip);
	for (i = 0; i < 8; i++)
		put32(m, 0x7fd0 + i * 4, vcpu->arch.regs[i]);
	put32(m, 0x7fcc, dr6);
	put32(m, 0x7fc8, dr7);
	put32(m, 0x7fc4, s->tr.selector);
	put32(m, 0x7f64, s->tr.base);
	put32(m, 0x7f60, s->tr.limit);
	put32(m, 0x7f5c, seg_attr(&s->tr) << 8);
	put32(m, 0x7fc0, s->ldt.selector);
	put32(m, 0x7f80, s->ldt.base);
	put32(m, 0x7f7c, s->ldt.limit);
	put32(m, 0x7f78, seg_attr(&s->ldt) << 8);
	put32(m, 0x7f74, s->gdt.base);
	put32(m, 0x7f70, s->gdt.limit);
	put32(m, 0x7f58, s->idt.base);
	put32(m, 0x7f54, s->idt.limit);
	for (i = 0; i < 6; i++) {
		const struct kvm_segment *seg = map_seg((struct kvm_sregs *)s, i);
		unsigned int off = map32_seg_off(i);

		put32(m, 0x7fa8 + i * 4, seg->selector);
		put32(m, off, seg_attr(seg) << 8);
		put32(m, off + 4, seg->limit);
		put32(m, off + 8, seg->base);
	}
	put32(m, 0x7f14, s->cr4);
	put32(m, 0x7efc, SMM_REV_32);
	put32(m, 0x7ef8, vcpu->arch.smm.smbase);
}

/* Block NMIs for the handler; remember whether they were blocked already. */
static void smm_block_nmis(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	vcpu->arch.smm.inside_nmi = ev->nmi_masked;
	ev->nmi_masked = true;
	/* Also when they were: the vendor's watch for an NMI window starts over. */
	mkvm_x86->update_nmi_mask(vcpu);
}

/* The processor state the SMM handler starts in (SDM vol. 3 table 34-4, APM vol. 2 10.3.4). */
static void smm_entry_state(struct mkvm_vcpu *vcpu, struct kvm_sregs *s, bool lm)
{
	u64 smbase = vcpu->arch.smm.smbase;
	struct kvm_segment flat = {
		.limit = 0xffffffff, .type = 3, .s = 1, .present = 1, .g = 1,
	};
	u64 dr6, dr7;

	vcpu->arch.rflags = X86_EFLAGS_FIXED;
	vcpu->arch.rip = SMM_ENTRY_IP;
	s->cr0 &= ~(X86_CR0_PE | X86_CR0_EM | X86_CR0_TS | X86_CR0_PG);
	s->cr4 = 0;
	/* Without long mode in the CPUID EFER stays, but paging off leaves long mode. */
	if (lm)
		s->efer = 0;
	else
		s->efer &= ~EFER_LMA;
	/* The IDT limit is 0 too, as on KVM: an exception before the handler sets one is fatal. */
	s->idt.base = 0;
	s->idt.limit = 0;
	s->cs = flat;
	s->cs.selector = (smbase >> 4) & 0xffff;
	s->cs.base = smbase;
	s->ds = s->es = s->fs = s->gs = s->ss = flat;
	mkvm_get_guest_dr67(vcpu, &dr6, &dr7);
	mkvm_set_guest_dr67(vcpu, dr6, MKVM_DR7_RESET);
	mkvm_x86->set_sregs(vcpu, s);
	mkvm_x86->set_interrupt_shadow(vcpu, 0);
	smm_block_nmis(vcpu);
}

static void enter_smm(struct mkvm_vcpu *vcpu)
{
	bool lm = guest_has_lm(vcpu);
	struct smm_map m = {};
	struct kvm_sregs s;
	u64 dr6, dr7;

	memset(&s, 0, sizeof(s));
	mkvm_x86->get_sregs(vcpu, &s);
	mkvm_get_guest_dr67(vcpu, &dr6, &dr7);
	if (lm)
		save_64(vcpu, &s, dr6, dr7, &m);
	else
		save_32(vcpu, &s, dr6, dr7, &m);
	/* The map is in SMRAM, which only SMM's address space may show. */
	vcpu->arch.smm.active = true;
	/* With no memory there the map is lost, as on hardware; RSM then shuts down. */
	mkvm_write_guest_phys(vcpu, vcpu->arch.smm.smbase + SMM_MAP_OFFSET, &m, sizeof(m));
	smm_entry_state(vcpu, &s, lm);
}

/**
 * mkvm_smm_inject() - take a pending SMI if nothing is in the way
 * @vcpu: the vCPU, before choosing the events of an entry, with slots_sem held
 *
 * An SMI waits while the vCPU is in SMM, and while an event is under way
 * into the guest: that is delivered first, and mkvm_inject_events() makes
 * the entry end at once so that the SMI comes next, as in KVM.
 */
void mkvm_smm_inject(struct mkvm_vcpu *vcpu)
{
	struct mkvm_events *ev = &vcpu->arch.events;
	struct mkvm_smm *smm = &vcpu->arch.smm;

	if (!smm->pending || smm->active || ev->exc.queued || ev->nmi_injected ||
	    ev->irq.injected || (mkvm_x86->smi_blocked && mkvm_x86->smi_blocked(vcpu)))
		return;
	smm->pending = false;
	enter_smm(vcpu);
}

static void load_64(struct mkvm_vcpu *vcpu, const struct smm_map *m, struct kvm_sregs *s,
		    u64 *dr6, u64 *dr7, unsigned long *regs, unsigned long *rip,
		    unsigned long *rflags)
{
	int i;

	for (i = 0; i < 6; i++)
		get_seg64(m, 0x7e00 + i * 16, map_seg(s, i));
	s->gdt.limit = get32(m, 0x7e64);
	s->gdt.base = get64(m, 0x7e68);
	get_seg64(m, 0x7e70, &s->ldt);
	s->idt.limit = get32(m, 0x7e84);
	s->idt.base = get64(m, 0x7e88);
	get_seg64(m, 0x7e90, &s->tr);
	s->efer = get64(m, 0x7ed0) & ~EFER_LMA;
	vcpu->arch.smm.smbase = get32(m, 0x7f00);
	s->cr4 = get64(m, 0x7f48);
	s->cr3 = get64(m, 0x7f50);
	s->cr0 = get64(m, 0x7f58);
	*dr7 = get64(m, 0x7f60);
	*dr6 = get64(m, 0x7f68);
	*rflags = get64(m, 0x7f70);
	*rip = get64(m, 0x7f78);
	for (i = 0; i < NR_GPRS; i++)
		regs[i] = get64(m, 0x7ff8 - i * 8);
	/* LMA follows from LME and CR0.PG, as when the CPU loads them (APM vol. 2 14.6). */
	if ((s->efer & EFER_LME) && (s->cr0 & X86_CR0_PG))
		s->efer |= EFER_LMA;
}

static void load_32(struct mkvm_vcpu *vcpu, const struct smm_map *m, struct kvm_sregs *s,
		    u64 *dr6, u64 *dr7, unsigned long *regs, unsigned long *rip,
		    unsigned long *rflags)
{
	int i;

	s->cr0 = get32(m, 0x7ffc);
	s->cr3 = get32(m, 0x7ff8);
	*rflags = get32(m, 0x7ff4);
	*rip = get32(m, 0x7ff0);
	for (i = 0; i < 8; i++)
		regs[i] = get32(m, 0x7fd0 + i * 4);
	*dr6 = get32(m, 0x7fcc);
	*dr7 = get32(m, 0x7fc8);
	seg_load(&s->tr, get32(m, 0x7fc4), get32(m, 0x7f5c) >> 8, get32(m, 0x7f60),
		 get32(m, 0x7f64));
	seg_load(&s->ldt, get32(m, 0x7fc0), get32(m, 0x7f78) >> 8, get32(m, 0x7f7c),
		 get32(m, 0x7f80));
	s->gdt.base = get32(m, 0x7f74);
	s->gdt.limit = get32(m, 0x7f70);
	s->idt.base = get32(m, 0x7f58);
	s->idt.limit = get32(m, 0x7f54);
	for (i = 0; i < 6; i++) {
		unsigned int off = map32_seg_off(i);

		seg_load(map_seg(s, i), get32(m, 0x7fa8 + i * 4), get32(m, off) >> 8,
			 get32(m, off + 4), get32(m, off + 8));
	}
	s->cr4 = get32(m, 0x7f14);
	vcpu->arch.smm.smbase = get32(m, 0x7ef8);
	/* A guest without long mode cannot have had it: no long-mode state comes back. */
	s->efer &= ~(EFER_LME | EFER_LMA);
}

/*
 * What the CPU would refuse to load: the checks of KVM_SET_SREGS, the
 * upper halves of DR6 and DR7, CR3 bits beyond the guest's physical
 * address width (as KVM checks at RSM), and a 64-bit CS with D set, which
 * VMRUN refuses (APM vol. 2 15.5.1) and RSM must not hand it.
 */
static bool state_valid(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 dr6, u64 dr7)
{
	if (dr6 >> 32 || dr7 >> 32 || s->cr3 >> mkvm_guest_maxphyaddr(vcpu))
		return false;
	if ((s->efer & EFER_LMA) && s->cs.l && s->cs.db)
		return false;
	return mkvm_sregs_valid(vcpu, s);
}

/**
 * mkvm_smm_rsm() - the guest ran RSM
 * @vcpu: the vCPU, with slots_sem held
 *
 * Outside SMM, RSM is #UD.  In SMM, the state comes back from the map and
 * the vCPU leaves SMM: NMIs are unblocked unless they were blocked at the
 * SMI, and an INIT latched meanwhile is taken.
 *
 * Return: 1 to enter the guest again; 0 with KVM_EXIT_SHUTDOWN when the
 * map holds a state the CPU cannot load.
 */
int mkvm_smm_rsm(struct mkvm_vcpu *vcpu)
{
	unsigned long regs[NR_GPRS], rip, rflags;
	struct mkvm_events *ev = &vcpu->arch.events;
	struct mkvm_smm *smm = &vcpu->arch.smm;
	u64 smbase = smm->smbase, dr6, dr7;
	struct smm_map m;
	struct kvm_sregs s;

	if (!smm->active) {
		mkvm_queue_exception(vcpu, X86_TRAP_UD, false, 0);
		return 1;
	}
	memset(&s, 0, sizeof(s));
	mkvm_x86->get_sregs(vcpu, &s);
	/* The 32-bit map has no R8-R15: they keep their values. */
	memcpy(regs, vcpu->arch.regs, sizeof(regs));
	if (mkvm_read_guest_phys(vcpu, smbase + SMM_MAP_OFFSET, &m, sizeof(m)))
		goto shutdown;
	if (guest_has_lm(vcpu))
		load_64(vcpu, &m, &s, &dr6, &dr7, regs, &rip, &rflags);
	else
		load_32(vcpu, &m, &s, &dr6, &dr7, regs, &rip, &rflags);
	if (!state_valid(vcpu, &s, dr6, dr7)) {
shutdown:
		/* SDM vol. 3 34.13: an invalid state in the map shuts the processor down. */
		mkvm_vcpu_shutdown(vcpu);
		return 0;
	}
	memcpy(vcpu->arch.regs, regs, sizeof(regs));
	vcpu->arch.rip = rip;
	vcpu->arch.rflags = (rflags & RFLAGS_DEFINED) | X86_EFLAGS_FIXED;
	mkvm_set_guest_dr67(vcpu, dr6, dr7);
	mkvm_x86->set_sregs(vcpu, &s);
	mkvm_x86->set_interrupt_shadow(vcpu, 0);
	smm->active = false;
	if (!smm->inside_nmi)
		ev->nmi_masked = false;
	mkvm_x86->update_nmi_mask(vcpu);
	smm->inside_nmi = false;
	/* The VMM's debugger steps over RSM as over any instruction. */
	if (vcpu->arch.guest_debug & KVM_GUESTDBG_SINGLESTEP)
		vcpu->arch.debug_step_done = true;
	return 1;
}

/**
 * mkvm_smm_reset() - SMM state at RESET and INIT: not in SMM, no SMI pending
 * @vcpu: the vCPU
 * @init: an INIT, which keeps SMBASE (as in KVM): firmware relocates each
 *	  CPU's SMBASE into SMRAM once, and the OS starts its APs with INIT
 *
 * SMBASE is 0x30000 after RESET.
 */
void mkvm_smm_reset(struct mkvm_vcpu *vcpu, bool init)
{
	u64 smbase = init ? vcpu->arch.smm.smbase : SMM_RESET_BASE;

	vcpu->arch.smm = (struct mkvm_smm){ .smbase = smbase };
}

/**
 * mkvm_smm_get_msr() - IA32_SMBASE, which only userspace may read, as in KVM
 * @vcpu: the vCPU
 * @index: the MSR
 * @data: its value
 * @host: the access is userspace's
 *
 * Return: 0; MKVM_MSR_INVALID for the guest's access; MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_smm_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	if (index != MSR_IA32_SMBASE)
		return MKVM_MSR_UNKNOWN;
	if (!host)
		return MKVM_MSR_INVALID;
	*data = vcpu->arch.smm.smbase;
	return 0;
}

/**
 * mkvm_smm_set_msr() - IA32_SMBASE, which only userspace may write, as in KVM
 * @vcpu: the vCPU
 * @index: the MSR
 * @data: the new SMBASE
 * @host: the access is userspace's
 *
 * Return: 0; MKVM_MSR_INVALID for the guest's access; MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_smm_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host)
{
	if (index != MSR_IA32_SMBASE)
		return MKVM_MSR_UNKNOWN;
	if (!host)
		return MKVM_MSR_INVALID;
	vcpu->arch.smm.smbase = data;
	return 0;
}
