// SPDX-License-Identifier: GPL-2.0
/*
 * Real mode without unrestricted guest (ept=0): VM entry needs CR0.PE and
 * CR0.PG (SDM vol. 3 26.3.1.1), so the guest's real-mode code runs in
 * virtual-8086 mode, on the shadow MMU's identity map, as KVM does.
 *
 *  - The segment registers hold what virtual-8086 mode needs (base =
 *    selector << 4, limit 0xffff, access rights 0xf3, SDM vol. 3 26.3.1.2);
 *    the guest's own limits and attributes wait in rm_seg[], with TR and
 *    LDTR, and come back when it leaves real mode.  A selector and base that
 *    do not match (the reset vector's CS, a protected-mode segment kept
 *    across the switch) cannot run: KVM emulates them, minikvm reports an
 *    emulation failure.
 *  - RFLAGS.VM and IOPL 3 are set for the hardware only.  With IOPL 3 and
 *    CR4.VME, CLI, STI, PUSHF, POPF and IRET work on the real IF, and INT n
 *    goes through the real-mode vector table at linear 0 (SDM vol. 3
 *    20.3.3.4, method 5, with the TSS's redirection bitmap all clear).
 *  - TR is a TSS of minikvm's own at the VMM's KVM_SET_TSS_ADDR, mapped by
 *    the shadow MMU: its I/O bitmap is clear, so IN and OUT reach their VM
 *    exits instead of #GP (SDM vol. 3 20.2.8.1).
 *  - Every exception exits.  What CPL 3 may not do and real mode may (HLT,
 *    MOV CR and DR, LMSW, CLTS, LGDT, LIDT, INVLPG, RDMSR, WRMSR, WBINVD,
 *    INVD) raises #GP, and is completed here; other exceptions go back to
 *    the guest.
 *  - Events are delivered through the guest's vector table in software,
 *    as real mode does (SDM vol. 3 20.1.4): VM entry would deliver them
 *    through a protected-mode IDT.  The entry that would have injected one
 *    ends at once instead (vmx_run()), and the exit handler delivers it.
 */
#include <linux/mm.h>
#include <asm/io.h>

#include <minikvm/decode.h>
#include <minikvm/guest_mem.h>
#include <minikvm/mmu.h>

#include "vmx.h"

/* A TSS's 104 bytes, the 32-byte redirection bitmap, one bit per port, and a last 0xff byte. */
#define TSS_IOMAP_BASE	0x88
#define TSS_LIMIT	(TSS_IOMAP_BASE + 65536 / 8)	/* the 0xff byte: SDM vol. 1 19.5.2 */
/*
 * Where the TSS goes when the VMM never said, or said an address that
 * virtual-8086 mode reaches (below 1 MiB + 64 KiB): one it cannot.
 */
#define TSS_DEFAULT	0xfffbd000U
#define VM86_REACH	0x110000U

/* Present, DPL 3, read/write data, accessed: virtual-8086 mode's segments (SDM vol. 3 26.3.1.2). */
static const struct kvm_segment vm86_seg = {
	.limit = 0xffff, .type = 3, .s = 1, .dpl = 3, .present = 1,
};

/**
 * mkvm_vmx_rmode_create() - a new vCPU's TSS for virtual-8086 mode
 * @vcpu: the vCPU
 *
 * Only without unrestricted guest.  Each vCPU has its own TSS: the
 * processor only reads it, and no other vCPU's shadow maps it.
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_vmx_rmode_create(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	if (mkvm_param_unrestricted_guest)
		return 0;
	for (int i = 0; i < MKVM_VMX_TSS_PAGES; i++) {
		vmx->rm_tss[i] = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
		if (!vmx->rm_tss[i])
			return -ENOMEM;
	}
	/* The I/O map base (offset 0x66); the redirection bitmap is the 32 bytes below it. */
	*(u16 *)((u8 *)page_address(vmx->rm_tss[0]) + 0x66) = TSS_IOMAP_BASE;
	((u8 *)page_address(vmx->rm_tss[TSS_LIMIT / PAGE_SIZE]))[TSS_LIMIT % PAGE_SIZE] = 0xff;
	return 0;
}

/**
 * mkvm_vmx_rmode_free() - free what mkvm_vmx_rmode_create() allocated
 * @vcpu: the vCPU, which no CPU runs
 */
void mkvm_vmx_rmode_free(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	for (int i = 0; i < MKVM_VMX_TSS_PAGES; i++)
		if (vmx->rm_tss[i])
			__free_page(vmx->rm_tss[i]);
}

/*
 * The selector virtual-8086 mode runs a segment with: the guest's, or one
 * that gives its base where the selector does not (a protected-mode segment
 * kept across the switch to real mode, as firmware does), as kvm_intel did
 * before it emulated such state.  A base that no selector gives is kept: the
 * state is stepped in software (emulate_step()).
 */
static u16 vm86_selector(const struct kvm_segment *guest)
{
	if (guest->base == (u32)guest->selector << 4 || (guest->base & 0xf) ||
	    guest->base > 0xffff0)
		return guest->selector;
	return guest->base >> 4;
}

/* A segment as virtual-8086 mode runs with it. */
static void write_vm86_seg(const struct kvm_segment *guest, int seg)
{
	struct kvm_segment s = vm86_seg;

	s.selector = vm86_selector(guest);
	s.base = guest->base;
	mkvm_vmx_set_seg(&s, seg);
}

static void enter_rmode(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u64 la = READ_ONCE(vcpu->vm->arch.tss_addr) & PAGE_MASK, hpa[MKVM_VMX_TSS_PAGES];
	struct kvm_segment tr = { .limit = TSS_LIMIT, .type = 11, .present = 1 };
	struct kvm_segment ldt = { .unusable = 1 };

	BUILD_BUG_ON(MKVM_VMX_TSS_PAGES > MKVM_SHADOW_PRIV_PAGES);
	for (int i = 0; i <= SEG_LDTR; i++)
		mkvm_vmx_get_seg(&vmx->rm_seg[i], i);
	vmx->rmode = true;
	for (int i = 0; i < SEG_TR; i++)
		write_vm86_seg(&vmx->rm_seg[i], i);
	if (la < VM86_REACH)
		la = TSS_DEFAULT;
	tr.base = la;
	mkvm_vmx_set_seg(&tr, SEG_TR);
	mkvm_vmx_set_seg(&ldt, SEG_LDTR);
	vmcs_write(EXCEPTION_BITMAP, ~0U);
	for (int i = 0; i < MKVM_VMX_TSS_PAGES; i++)
		hpa[i] = page_to_phys(vmx->rm_tss[i]);
	mkvm_shadow_set_private(vcpu, la, hpa, MKVM_VMX_TSS_PAGES);
}

/*
 * The guest set CR0.PE: until its far JMP, CS and SS hold real-mode
 * selectors, whose RPL VM entry wants equal to each other and to SS.DPL,
 * and data selectors whose RPL may be above their DPL (SDM vol. 3
 * 26.3.1.2).  As kvm_intel did before it emulated that state, the
 * selectors of CS and SS lose their RPL and every DPL becomes its RPL.
 */
static void fix_for_protected_mode(struct kvm_segment *s, int seg)
{
	if (seg == SEG_CS || seg == SEG_SS)
		s->selector &= ~3;
	s->dpl = s->selector & 3;
	s->s = 1;
}

static void leave_rmode(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	for (int i = 0; i <= SEG_LDTR; i++) {
		mkvm_vmx_rmode_get_seg(vcpu, &vmx->rm_seg[i], i);
		/* The VMM's KVM_SET_SREGS means its segments as they are. */
		if (i < SEG_TR && !vmx->sregs_loading)
			fix_for_protected_mode(&vmx->rm_seg[i], i);
	}
	vmx->rmode = false;
	for (int i = 0; i <= SEG_LDTR; i++)
		mkvm_vmx_set_seg(&vmx->rm_seg[i], i);
	vmcs_write(EXCEPTION_BITMAP, vmx->exc_bitmap);
	mkvm_shadow_set_private(vcpu, 0, NULL, 0);
}

/**
 * mkvm_vmx_rmode_update() - go into or out of virtual-8086 mode as CR0.PE says
 * @vcpu: the vCPU, its VMCS current, CR0 just changed
 */
void mkvm_vmx_rmode_update(struct mkvm_vcpu *vcpu)
{
	bool want = !mkvm_param_unrestricted_guest && !(vcpu->arch.cr0 & X86_CR0_PE);

	if (want && !to_vmx(vcpu)->rmode)
		enter_rmode(vcpu);
	else if (!want && to_vmx(vcpu)->rmode)
		leave_rmode(vcpu);
}

/**
 * mkvm_vmx_rmode_get_seg() - a segment register as the real-mode guest has it
 * @vcpu: the vCPU, in virtual-8086 mode
 * @s: filled in
 * @seg: SEG_ES to SEG_LDTR
 *
 * The selector and base are the processor's, which loads them in
 * virtual-8086 mode as real mode does; the rest is the guest's, which real
 * mode keeps whatever is loaded (SDM vol. 3 20.1.1).
 */
void mkvm_vmx_rmode_get_seg(struct mkvm_vcpu *vcpu, struct kvm_segment *s, int seg)
{
	struct kvm_segment hw;

	*s = to_vmx(vcpu)->rm_seg[seg];
	if (seg >= SEG_TR)
		return;
	mkvm_vmx_get_seg(&hw, seg);
	if (hw.selector == vm86_selector(s) && hw.base == s->base)
		return;
	/* The guest loaded it, which makes it usable (SDM vol. 3 20.1.1). */
	s->selector = hw.selector;
	s->base = hw.base;
	s->unusable = 0;
	s->present = 1;
}

/**
 * mkvm_vmx_rmode_set_seg() - load a segment register of the real-mode guest
 * @vcpu: the vCPU, in virtual-8086 mode
 * @s: the guest's segment
 * @seg: SEG_ES to SEG_LDTR
 */
void mkvm_vmx_rmode_set_seg(struct mkvm_vcpu *vcpu, const struct kvm_segment *s, int seg)
{
	to_vmx(vcpu)->rm_seg[seg] = *s;
	if (seg < SEG_TR)
		write_vm86_seg(s, seg);
}

/**
 * mkvm_vmx_rmode_can_enter() - whether virtual-8086 mode runs the guest's state
 * @vcpu: the vCPU, in virtual-8086 mode
 *
 * Return: false when a segment's base is not its selector << 4.
 */
bool mkvm_vmx_rmode_can_enter(struct mkvm_vcpu *vcpu)
{
	struct kvm_segment s;

	for (int i = 0; i < SEG_TR; i++) {
		mkvm_vmx_get_seg(&s, i);
		if (s.base != (u32)s.selector << 4)
			return false;
	}
	return true;
}

/**
 * mkvm_vmx_rmode_queue_event() - an event to deliver through the vector table
 * @vcpu: the vCPU, in virtual-8086 mode, about to enter
 * @kind: RM_EVENT_*
 * @vector: the vector
 * @ret_ip: where the handler's IRET returns to
 */
void mkvm_vmx_rmode_queue_event(struct mkvm_vcpu *vcpu, int kind, u8 vector,
				unsigned long ret_ip)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	vmx->rm_event.pending = true;
	vmx->rm_event.kind = kind;
	vmx->rm_event.vector = vector;
	vmx->rm_event.ret_ip = ret_ip;
}

/* The event deliver() could not deliver goes back to the queue it came from. */
static void requeue(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u8 vector = vmx->rm_event.vector;

	switch (vmx->rm_event.kind) {
	case RM_EVENT_EXCEPTION:
		mkvm_requeue_exception(vcpu, vector, false, 0);
		break;
	case RM_EVENT_NMI:
		mkvm_requeue_nmi(vcpu);
		break;
	case RM_EVENT_IRQ:
		mkvm_requeue_irq(vcpu, vector);
		break;
	}
}

static int write16(struct mkvm_vcpu *vcpu, u64 base, u16 off, u16 v)
{
	return mkvm_write_guest_phys(vcpu, base + off, &v, sizeof(v));
}

/*
 * Deliver the event mkvm_vmx_rmode_queue_event() took.  Real mode pushes
 * FLAGS, CS and IP, clears IF, TF and AC, and jumps to the vector table's
 * entry (SDM vol. 3 20.1.4); no error code.  A vector beyond the table's
 * limit would be a #GP and then a double fault: the vCPU shuts down, as
 * real mode's triple fault.
 */
static int deliver(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned int vector = vmx->rm_event.vector;
	u64 ss = vmcs_read(GUEST_SS_BASE);
	u16 sp = vcpu->arch.regs[REG_RSP], cs = vmcs_read(GUEST_CS_SELECTOR);
	u16 entry[2];

	vmx->rm_event.pending = false;
	/* A vector beyond the table is a #GP, then #DF, then a triple fault. */
	if (vector * 4 + 3 > vmcs_read(GUEST_IDTR_LIMIT)) {
		vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
		return 0;
	}
	if (mkvm_read_guest_phys(vcpu, vmcs_read(GUEST_IDTR_BASE) + vector * 4, entry,
				 sizeof(entry)) ||
	    write16(vcpu, ss, sp - 2, vcpu->arch.rflags) || write16(vcpu, ss, sp - 4, cs) ||
	    write16(vcpu, ss, sp - 6, vmx->rm_event.ret_ip)) {
		/* Not delivered: the VMM still sees it in KVM_GET_VCPU_EVENTS. */
		requeue(vcpu);
		return mkvm_emulation_failed(vcpu, NULL, 0);
	}
	vcpu->arch.regs[REG_RSP] = (vcpu->arch.regs[REG_RSP] & ~0xffffUL) | (u16)(sp - 6);
	vcpu->arch.rflags &= ~(X86_EFLAGS_IF | X86_EFLAGS_TF | X86_EFLAGS_AC);
	vcpu->arch.rip = entry[0];
	vmcs_write(GUEST_CS_SELECTOR, entry[1]);
	vmcs_write(GUEST_CS_BASE, (u32)entry[1] << 4);
	/* The handler's first instruction runs under no STI or MOV SS shadow. */
	mkvm_vmx_set_interrupt_shadow(vcpu, 0);
	return 1;
}

/*
 * Real mode that virtual-8086 mode cannot run: a segment base that is not
 * its selector << 4, as at the reset vector, CS 0xf000 based at 0xffff0000
 * (SDM vol. 3 10.1.4).  KVM emulates until the state is one the hardware
 * runs; minikvm takes what runs there first: port I/O, HLT and the far JMP
 * that reloads CS.  Anything else is an emulation failure.
 */
static int emulate_step(struct mkvm_vcpu *vcpu)
{
	unsigned long next;
	struct mkvm_insn insn;
	struct kvm_sregs s;
	u16 port;
	int r;

	if (!mkvm_fetch_decode(vcpu, &s, &insn, &r))
		return r;
	to_vmx(vcpu)->insn_len = insn.len;
	next = (u32)(vcpu->arch.rip + insn.len);
	switch (insn.kind) {
	case INSN_HLT:
		return mkvm_exit_halt(vcpu);
	case INSN_IN:
	case INSN_OUT:
		port = insn.has_imm ? (u8)insn.imm : (u16)vcpu->arch.regs[REG_RDX];
		return mkvm_exit_pio(vcpu, port, insn.op_bytes, insn.kind == INSN_IN, next);
	case INSN_JMP_FAR:
		s.cs.selector = insn.imm >> 32;
		s.cs.base = (u32)s.cs.selector << 4;
		mkvm_vmx_rmode_set_seg(vcpu, &s.cs, SEG_CS);
		mkvm_rip_past_insn(vcpu, (u32)insn.imm);
		return 1;
	default:
		pr_warn_ratelimited("minikvm: real mode with a base not selector << 4 needs ept=1\n");
		return mkvm_emulation_failed(vcpu, NULL, 0);
	}
}

/**
 * mkvm_vmx_rmode_step() - the exit of an entry vmx_run() did not make
 * @vcpu: the vCPU, in virtual-8086 mode, with slots_sem held
 *
 * Return: 1 to enter again; 0 with kvm_run telling why not.
 */
int mkvm_vmx_rmode_step(struct mkvm_vcpu *vcpu)
{
	if (to_vmx(vcpu)->rm_event.pending)
		return deliver(vcpu);
	return emulate_step(vcpu);
}

/*
 * A #GP that real mode would raise too, or not: with 64 KiB limits, as
 * virtual-8086 mode runs, it is the guest's; with a bigger one ("unreal"
 * mode, SMM's 4 GiB) it is an access beyond 64 KiB, emulated.
 */
static int guest_gp(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	for (int i = 0; i < SEG_TR; i++)
		if (vmx->rm_seg[i].limit != 0xffff)
			return mkvm_emulate_ram_operand(vcpu);
	mkvm_queue_exception(vcpu, GP_VECTOR, true, 0);
	return 1;
}

/* LGDT and LIDT: a 16-bit limit, then a base of 24 or 32 bits (SDM vol. 2 LGDT/LIDT). */
static int load_dtr(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
		    const struct mkvm_insn *insn)
{
	bool gdt = insn->kind == INSN_LGDT;
	u8 buf[6];
	u32 base;
	int r;

	r = mkvm_access_mem_operand(vcpu, s, insn, buf, sizeof(buf), false);
	if (r)
		return r > 0 ? r : mkvm_emulation_failed(vcpu, NULL, 0);
	base = buf[2] | buf[3] << 8 | buf[4] << 16 | (u32)buf[5] << 24;
	if (insn->op_bytes == 2)
		base &= 0xffffff;
	vmcs_write(gdt ? GUEST_GDTR_BASE : GUEST_IDTR_BASE, base);
	vmcs_write(gdt ? GUEST_GDTR_LIMIT : GUEST_IDTR_LIMIT, buf[0] | buf[1] << 8);
	mkvm_rip_past_insn(vcpu, vcpu->arch.rip + insn->len);
	return 1;
}

/* MOV to or from CR2, which has no intercept of its own: 32 bits outside long mode. */
static int cr2_access(struct mkvm_vcpu *vcpu, const struct mkvm_insn *insn)
{
	unsigned long *reg = &vcpu->arch.regs[insn->rm];

	if (insn->kind == INSN_MOV_TO_CR)
		to_vmx(vcpu)->cr2 = (u32)*reg;
	else
		*reg = (u32)to_vmx(vcpu)->cr2;
	mkvm_rip_past_insn(vcpu, vcpu->arch.rip + insn->len);
	return 1;
}

/**
 * mkvm_vmx_rmode_gp() - a #GP in virtual-8086 mode
 * @vcpu: the vCPU, with slots_sem held
 *
 * Return: 1 to enter again; 0 with kvm_run set for userspace.
 */
int mkvm_vmx_rmode_gp(struct mkvm_vcpu *vcpu)
{
	unsigned long next;
	struct mkvm_insn insn;
	struct kvm_sregs s;

	mkvm_x86->get_sregs(vcpu, &s);
	if (!mkvm_insn_at_rip(vcpu, &s, &insn) || insn.lock)
		return guest_gp(vcpu);
	/* The exit gave no length: the helpers below take the decoded one. */
	to_vmx(vcpu)->insn_len = insn.len;
	next = vcpu->arch.rip + insn.len;
	switch (insn.kind) {
	case INSN_HLT:
		return mkvm_exit_halt(vcpu);
	case INSN_MOV_TO_CR:
	case INSN_MOV_FROM_CR:
		if (insn.reg == 2)
			return cr2_access(vcpu, &insn);
		return mkvm_emulate_cr_access(vcpu, insn.reg, insn.kind == INSN_MOV_TO_CR, insn.rm,
					      insn.len);
	case INSN_LMSW:
	case INSN_CLTS:
		return mkvm_emulate_cr_access(vcpu, 0, true, -1, 0);
	case INSN_MOV_TO_DR:
	case INSN_MOV_FROM_DR:
		return mkvm_emulate_dr_access(vcpu, insn.reg, insn.kind == INSN_MOV_TO_DR, insn.rm,
					      insn.len);
	case INSN_INVLPG:
		return mkvm_emulate_invlpg(vcpu, 0, false);
	case INSN_LGDT:
	case INSN_LIDT:
		return load_dtr(vcpu, &s, &insn);
	case INSN_RDMSR:
	case INSN_WRMSR:
		return mkvm_emulate_msr_access(vcpu, insn.kind == INSN_WRMSR, next);
	case INSN_WBINVD:
		mkvm_rip_past_insn(vcpu, next);
		return 1;
	default:
		return guest_gp(vcpu);
	}
}

/**
 * mkvm_vmx_rmode_exception() - give an exception of virtual-8086 mode back to the guest
 * @vcpu: the vCPU
 *
 * INT3 and INTO return past themselves (their exits give the length).
 *
 * Return: 1.
 */
int mkvm_vmx_rmode_exception(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	u32 info = vmx->exit_intr_info;

	if ((info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_SOFT_EXCEPTION)
		vmx->soft_len = vmx->insn_len;
	mkvm_queue_exception(vcpu, info & INTR_INFO_VECTOR_MASK, false, 0);
	return 1;
}

