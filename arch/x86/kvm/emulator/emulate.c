// SPDX-License-Identifier: GPL-2.0
/*
 * The instruction emulator, shared by SVM and VMX: port I/O exits (plain and
 * string), and MMIO accesses (a nested page fault or EPT violation on a GPA
 * without memory, or a write to a read-only slot).
 *
 * The instruction is fetched through the guest's page tables and decoded by
 * decode.c.  Reads from MMIO exit to userspace and finish on the next
 * KVM_RUN; read-modify-write instructions then exit again with the write,
 * as KVM does.
 */
#include <linux/uaccess.h>

#include <minikvm/alu.h>
#include <minikvm/core.h>
#include <minikvm/guest_mem.h>
#include <minikvm/irqchip.h>
#include <minikvm/walk.h>

#define RFLAGS_DF BIT(10)

static u64 size_mask(unsigned int bytes)
{
	return bytes == 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
}

static s64 sign_extend(u64 v, unsigned int bytes)
{
	unsigned int shift = 64 - 8 * bytes;

	return (s64)(v << shift) >> shift;
}

/* Byte registers 4-7 are AH, CH, DH, BH unless there is a REX prefix (SDM vol. 1 3.4.1.1). */
static bool high_byte_reg(const struct mkvm_insn *insn, unsigned int reg, unsigned int bytes)
{
	return bytes == 1 && !insn->rex && reg >= 4 && reg < 8;
}

static u64 reg_read(struct mkvm_vcpu *vcpu, const struct mkvm_insn *insn, unsigned int reg,
		    unsigned int bytes)
{
	if (high_byte_reg(insn, reg, bytes))
		return (vcpu->arch.regs[reg - 4] >> 8) & 0xff;
	return vcpu->arch.regs[reg] & size_mask(bytes);
}

static void reg_write(struct mkvm_vcpu *vcpu, const struct mkvm_insn *insn, unsigned int reg,
		      unsigned int bytes, u64 v)
{
	unsigned long *r;

	if (high_byte_reg(insn, reg, bytes)) {
		r = &vcpu->arch.regs[reg - 4];
		*r = (*r & ~0xff00UL) | (v & 0xff) << 8;
		return;
	}
	r = &vcpu->arch.regs[reg];
	if (bytes == 4)		/* 32-bit results zero-extend (SDM vol. 1 3.4.1.1) */
		*r = (u32)v;
	else
		*r = (*r & ~size_mask(bytes)) | (v & size_mask(bytes));
}

static unsigned int cpu_mode(const struct kvm_sregs *s)
{
	if ((s->efer & EFER_LMA) && s->cs.l)
		return 64;
	return s->cs.db ? 32 : 16;
}

static const struct kvm_segment *seg_of(const struct kvm_sregs *s, unsigned int seg)
{
	const struct kvm_segment *segs[] = { &s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs };

	return segs[seg];
}

static u64 seg_base(const struct kvm_sregs *s, unsigned int seg)
{
	/* In 64-bit mode only FS and GS have a base (SDM vol. 1 3.3.7.1). */
	if (cpu_mode(s) == 64 && seg != SEG_FS && seg != SEG_GS)
		return 0;
	return seg_of(s, seg)->base;
}

/* 48 bits, or 57 with 5-level paging, sign-extended (SDM vol. 1 3.3.7.1). */
static bool canonical(const struct kvm_sregs *s, u64 la)
{
	unsigned int bits = (s->cr4 & X86_CR4_LA57) ? 57 : 48;

	return (s64)(la << (64 - bits)) >> (64 - bits) == (s64)la;
}

/*
 * The linear address of @size bytes at @seg:@off for a data access, with the
 * checks the processor makes before it (SDM vol. 3 5.3-5.5, APM vol. 2
 * 4.11-4.12): canonical form in 64-bit mode; otherwise a usable segment of
 * the right type, and the limit, expand-down included.  A failure is #SS
 * for the stack segment and #GP(0) otherwise.
 */
static int linearize(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, unsigned int seg,
		     u64 off, unsigned int size, bool write, u64 *la, struct mkvm_fault *fault)
{
	const struct kvm_segment *sg = seg_of(s, seg);
	bool protected = (s->cr0 & X86_CR0_PE) && !(vcpu->arch.rflags & X86_EFLAGS_VM);
	u64 last = off + size - 1, upper;

	*fault = (struct mkvm_fault){ .vector = seg == SEG_SS ? SS_VECTOR : GP_VECTOR };
	if (cpu_mode(s) == 64) {
		*la = seg_base(s, seg) + off;
		return canonical(s, *la) && canonical(s, *la + size - 1) ? 0 : -EFAULT;
	}
	*la = (u32)(sg->base + off);
	if (protected) {
		if (sg->unusable || !sg->present)
			return -EFAULT;
		/* Code segments are never writable, and readable only with bit 1. */
		if ((sg->type & 8) ? write || !(sg->type & 2) : write && !(sg->type & 2))
			return -EFAULT;
	}
	if (!(sg->type & 8) && (sg->type & 4)) {
		/* Expand-down: the valid offsets are above the limit (SDM vol. 3 3.4.5.1). */
		upper = sg->db ? 0xffffffff : 0xffff;
		return off > sg->limit && last <= upper ? 0 : -EFAULT;
	}
	return last <= sg->limit ? 0 : -EFAULT;
}

/**
 * mkvm_emulation_failed() - an instruction minikvm cannot complete
 * @vcpu: the vCPU
 * @bytes: the instruction's bytes, or NULL when they could not be read
 * @n: how many
 *
 * As KVM does: the guest gets #UD, and only at CPL 0 does userspace hear of
 * it too, so that a guest program cannot stop the whole VM with an
 * instruction the emulator does not know.  A VMM that resumes the guest
 * (QEMU does in protected mode) delivers the #UD.
 *
 * Return: 1 to enter the guest again (CPL > 0); 0 to exit to userspace with
 * KVM_EXIT_INTERNAL_ERROR.
 */
int mkvm_emulation_failed(struct mkvm_vcpu *vcpu, const u8 *bytes, unsigned int n)
{
	struct kvm_run *run = vcpu->run;

	vcpu->stat.insn_emulation_fail++;
	vcpu->arch.emul.wait = EMUL_NONE;
	mkvm_queue_exception(vcpu, UD_VECTOR, false, 0);
	if (mkvm_x86->get_cpl(vcpu) > 0)
		return 1;
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	/* The instruction bytes, as KVM gives them, for the VMM's error message. */
	run->internal.ndata = 2;
	run->internal.data[0] = 0;
	run->internal.data[1] = 0;
	if (bytes)
		memcpy(run->internal.data, bytes, min(n, 16u));
	return 0;
}

/**
 * mkvm_fetch_insn() - read the bytes of the instruction at RIP
 * @vcpu: the vCPU, with slots_sem held
 * @s: its special registers
 * @bytes: room for MKVM_MAX_INSN_LEN bytes
 * @fault: on -EFAULT, what the fetch of the missing bytes raises
 * @err: why the bytes end early: 0 when all were read, -EFAULT when the
 *	guest may not fetch them (@fault), -EAGAIN when the guest kept
 *	changing its page tables, another errno when they are not memory
 *
 * The instruction may end before a page the guest cannot fetch from: then
 * only the bytes up to that page are read.
 *
 * Return: how many bytes were read; 0 when not even the first page is.
 */
unsigned int mkvm_fetch_insn(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u8 *bytes,
			     struct mkvm_fault *fault, int *err)
{
	u64 la = seg_base(s, SEG_CS) + vcpu->arch.rip;
	unsigned int first;

	if (cpu_mode(s) != 64)
		la &= 0xffffffff;
	first = min_t(unsigned int, MKVM_MAX_INSN_LEN, PAGE_SIZE - (la & ~PAGE_MASK));
	*err = mkvm_read_guest_virt(vcpu, s, la, bytes, first, MKVM_ACC_FETCH, fault);
	if (*err)
		return 0;
	if (first == MKVM_MAX_INSN_LEN)
		return first;
	/* Running on into non-canonical addresses is #GP(0) (SDM vol. 1 3.3.7.1). */
	if (cpu_mode(s) == 64 && !canonical(s, la + first)) {
		*fault = (struct mkvm_fault){ .vector = GP_VECTOR };
		*err = -EFAULT;
		return first;
	}
	*err = mkvm_read_guest_virt(vcpu, s, la + first, bytes + first,
				    MKVM_MAX_INSN_LEN - first, MKVM_ACC_FETCH, fault);
	return *err ? first : MKVM_MAX_INSN_LEN;
}

/**
 * mkvm_insn_at_rip() - decode the instruction at RIP, changing no vCPU state
 * @vcpu: the vCPU, with slots_sem held
 * @s: its special registers
 * @insn: the instruction
 *
 * Return: true when it could be read and decoded.
 */
bool mkvm_insn_at_rip(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, struct mkvm_insn *insn)
{
	u8 bytes[MKVM_MAX_INSN_LEN];
	struct mkvm_fault fault;
	int err;
	unsigned int n = mkvm_fetch_insn(vcpu, s, bytes, &fault, &err);

	return n && !mkvm_decode(insn, bytes, n, cpu_mode(s));
}

/**
 * mkvm_fetch_decode() - decode the guest's instruction at RIP
 * @vcpu: the vCPU, with slots_sem held
 * @s: filled with the vCPU's special registers
 * @insn: the decoded instruction
 * @r: when it cannot be decoded, what the exit handler returns: 1 when the
 *	guest takes a #PF for the fetch instead, 0 when kvm_run reports an
 *	emulation failure
 *
 * Return: true when @insn is decoded.
 */
bool mkvm_fetch_decode(struct mkvm_vcpu *vcpu, struct kvm_sregs *s, struct mkvm_insn *insn,
		       int *r)
{
	u8 bytes[MKVM_MAX_INSN_LEN];
	struct mkvm_fault fault;
	unsigned int n;
	int err, derr;

	mkvm_x86->get_sregs(vcpu, s);
	n = mkvm_x86->get_insn_bytes ? mkvm_x86->get_insn_bytes(vcpu, bytes) : 0;
	if (n && !mkvm_decode(insn, bytes, n, cpu_mode(s)))
		return true;
	n = mkvm_fetch_insn(vcpu, s, bytes, &fault, &err);
	derr = n ? mkvm_decode(insn, bytes, n, cpu_mode(s)) : -EFAULT;
	if (!derr)
		return true;
	/* The instruction runs on into bytes the guest may not fetch, or that changed. */
	if (derr == -EFAULT && (err == -EFAULT || err == -EAGAIN)) {
		if (err == -EFAULT)
			mkvm_inject_fault(vcpu, &fault);
		*r = 1;
		return false;
	}
	*r = mkvm_emulation_failed(vcpu, n ? bytes : NULL, n);
	return false;
}

/**
 * mkvm_decode_intercepted() - what an intercept did not say about its instruction
 * @vcpu: the vCPU, with slots_sem held
 * @s: filled with the vCPU's special registers
 * @insn: decoded when the instruction had to be read, else kind INSN_UNKNOWN
 * @gpr: the general register the hardware named (decode assists), or -1
 * @len: the instruction's length the hardware gave (nRIP), or 0
 * @r: when it cannot be decoded, what the exit handler returns
 *
 * MOV to or from a control or debug register: without decode assists and
 * nRIP the instruction is read and decoded, and the caller checks that it
 * is one the exit could come from (another vCPU may have changed it).
 *
 * Return: true with @gpr and @len known.
 */
bool mkvm_decode_intercepted(struct mkvm_vcpu *vcpu, struct kvm_sregs *s, struct mkvm_insn *insn,
			     int *gpr, unsigned int *len, int *r)
{
	insn->kind = INSN_UNKNOWN;
	if (*gpr >= 0 && *len) {
		mkvm_x86->get_sregs(vcpu, s);
		return true;
	}
	if (!mkvm_fetch_decode(vcpu, s, insn, r))
		return false;
	*gpr = insn->rm;
	*len = insn->len;
	return true;
}

static int finish_mmio_read(struct mkvm_vcpu *vcpu, u64 data);
static int emulate_operand(struct mkvm_vcpu *vcpu, u64 gpa);

/*
 * For mkvm_emulate_ram_operand(): the operand in RAM, read or written
 * here.  -ENOENT when it is not RAM (no memslot, or a write to a read-only
 * one): then it is MMIO after all.
 */
static int ram_access(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, bool write, u64 *data)
{
	if (likely(!vcpu->arch.emul.ram))
		return -ENOENT;
	return write ? mkvm_write_guest_phys(vcpu, gpa, data, len) :
		       mkvm_read_guest_phys(vcpu, gpa, data, len);
}

static int mmio_exit(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, bool write, u64 data)
{
	struct kvm_run *run = vcpu->run;
	int r;

	if (!write) {
		r = ram_access(vcpu, gpa, len, false, &data);
		if (r != -ENOENT)
			return r ? r : finish_mmio_read(vcpu, data);
	}

	/* The in-kernel irqchip's registers complete without userspace. */
	if (mkvm_irqchip_mmio(vcpu, gpa, len, write, &data)) {
		if (!write)
			return finish_mmio_read(vcpu, data);
		return 1;
	}
	/* A write into a coalesced zone waits in the ring for the VMM's next exit. */
	if (write && mkvm_coalesced_write(vcpu->vm, false, gpa, len, &data))
		return 1;
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = len;
	run->mmio.is_write = write;
	memset(run->mmio.data, 0, sizeof(run->mmio.data));
	if (write)
		memcpy(run->mmio.data, &data, len);
	return 0;
}

/* An MMIO write goes to a matching ioeventfd if there is one, else to userspace. */
static int mmio_write(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, u64 data)
{
	int r = ram_access(vcpu, gpa, len, true, &data);

	if (r != -ENOENT)
		return r ? r : 1;
	if (mkvm_ioeventfd_write(vcpu->vm, false, gpa, len, &data))
		return 1;
	return mmio_exit(vcpu, gpa, len, true, data);
}

/* STOS/LODS/MOVS/INS/OUTS step: the index registers move, REP counts down. */
static void string_step(struct mkvm_vcpu *vcpu, const struct mkvm_insn *insn, int reg,
			unsigned int elems, unsigned long next_rip)
{
	u64 amask = size_mask(insn->addr_bytes);
	/* 16-bit writes keep the register's rest, 32-bit ones zero-extend (SDM vol. 1 3.4.1.1). */
	u64 keep = insn->addr_bytes == 2 ? ~amask : 0;
	unsigned long *r = vcpu->arch.regs;
	long delta = (long)elems * insn->op_bytes;

	if (vcpu->arch.rflags & RFLAGS_DF)
		delta = -delta;
	r[reg] = (r[reg] & keep) | ((r[reg] + delta) & amask);
	if (insn->rep) {
		r[REG_RCX] = (r[REG_RCX] & keep) | ((r[REG_RCX] - elems) & amask);
		/* Not done yet: run the same instruction again for the rest. */
		if (r[REG_RCX] & amask)
			return;
	}
	mkvm_rip_past_insn(vcpu, next_rip);
}

/*
 * Is @insn the access the hardware faulted on?  Without decode assists the
 * bytes are read again after the exit, and another vCPU may have changed
 * them meanwhile: the guest's page tables allowed the faulting access, a
 * read or a write, not whatever is there now.  A memory operand is needed,
 * of the same direction (read-modify-write instructions fault either way);
 * check_operand() then checks its address.  Kinds the MMIO emulator does
 * not handle pass, to fail as such.  A fault in the guest's own table walk
 * (@table) says nothing of the operand's direction: the walk's access.
 * *@writes_out says whether the instruction writes its operand.
 */
static bool is_faulting_access(const struct mkvm_insn *insn, bool write, bool table,
			       bool *writes_out)
{
	bool writes, reads;

	switch (insn->kind) {
	case INSN_MOV_TO_RM:
	case INSN_STOS:
		writes = true, reads = false;
		break;
	case INSN_ALU_TO_RM:
		writes = insn->alu != ALU_CMP, reads = true;
		break;
	case INSN_XCHG:
		writes = reads = true;
		break;
	case INSN_MOV_FROM_RM:
	case INSN_MOVZX:
	case INSN_MOVSX:
	case INSN_ALU_FROM_RM:
	case INSN_TEST:
		writes = false, reads = true;
		break;
	default:
		*writes_out = false;
		return true;
	}
	*writes_out = writes;
	if (!insn->mem && insn->kind != INSN_STOS)
		return false;
	return table || (write ? writes : reads);
}

/* The memory operand's segment and offset (SDM vol. 1 3.7.5); ES:RDI for STOS. */
static u64 operand_offset(struct mkvm_vcpu *vcpu, const struct mkvm_insn *insn,
			  unsigned long next_rip, unsigned int *seg)
{
	const unsigned long *r = vcpu->arch.regs;
	u64 off = insn->disp;

	*seg = insn->seg == SEG_NONE ? SEG_DS : insn->seg;
	if (insn->kind == INSN_STOS) {
		*seg = SEG_ES;
		return r[REG_RDI] & size_mask(insn->addr_bytes);
	}
	if (insn->base >= 0)
		off += r[insn->base];
	if (insn->index >= 0)
		off += r[insn->index] * insn->scale;
	if (insn->rip_relative)
		off += next_rip;
	return off & size_mask(insn->addr_bytes);
}

/* The linear address of the memory operand, without the segment checks. */
static u64 operand_la(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
		      const struct mkvm_insn *insn, unsigned long next_rip)
{
	unsigned int seg;
	u64 la = operand_offset(vcpu, insn, next_rip, &seg);

	la += seg_base(s, seg);
	return cpu_mode(s) == 64 ? la : (u32)la;
}

/**
 * mkvm_operand_la() - the linear address of the instruction's memory operand
 * @vcpu: the vCPU
 * @s: its special registers
 * @insn: the instruction at RIP, with a memory operand
 *
 * For instructions that name an address without accessing it (INVLPG):
 * no segment checks.
 *
 * Return: the linear address.
 */
u64 mkvm_operand_la(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
		    const struct mkvm_insn *insn)
{
	return operand_la(vcpu, s, insn, vcpu->arch.rip + insn->len);
}

/**
 * mkvm_access_mem_operand() - read or write an instruction's memory operand in RAM
 * @vcpu: the vCPU, with slots_sem held
 * @s: its special registers
 * @insn: the instruction at RIP, with a memory operand
 * @val: filled with the operand, or what to write
 * @size: its size in bytes, at most 8
 * @write: a write
 *
 * For the few instructions minikvm completes that touch ordinary memory
 * (LMSW m16, SMSW m16): the segment checks, then the guest's page tables at
 * its CPL.
 *
 * Return: 0 when done; 1 with the guest's #GP, #SS or #PF queued, or to
 * run the instruction again after the guest changed its tables meanwhile;
 * a negative errno when the operand is not in a memslot (the caller
 * reports an emulation failure).
 */
int mkvm_access_mem_operand(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
			    const struct mkvm_insn *insn, void *val, unsigned int size, bool write)
{
	unsigned int seg;
	u64 off = operand_offset(vcpu, insn, vcpu->arch.rip + insn->len, &seg), la;
	struct mkvm_fault fault;
	int err;

	err = linearize(vcpu, s, seg, off, size, write, &la, &fault);
	if (!err)
		err = write ? mkvm_write_guest_virt(vcpu, s, la, val, size, &fault) :
			      mkvm_read_guest_virt(vcpu, s, la, val, size, 0, &fault);
	if (err == -EFAULT)
		mkvm_inject_fault(vcpu, &fault);
	if (err == -EFAULT || err == -EAGAIN)
		return 1;
	return err;
}

/*
 * Does the decoded operand really reach @gpa?  As KVM does, a page offset
 * that matches the fault's is taken as yes.  Otherwise the operand is
 * walked through the guest's page tables, which also covers a fault in the
 * guest's own table walk (@table: the tables are not in guest memory): a
 * fault there is the guest's, as on KVM; another address, or an access
 * into the next page, is not emulated.
 *
 * Return: 0 to emulate; 1 with a fault queued; <0 to fail the emulation.
 */
static int check_operand(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
			 const struct mkvm_insn *insn, unsigned long next_rip, u64 gpa,
			 bool write, bool table)
{
	unsigned int size = insn->kind == INSN_MOVZX || insn->kind == INSN_MOVSX ?
			    insn->src_bytes : insn->op_bytes;
	u64 la = operand_la(vcpu, s, insn, next_rip);
	struct mkvm_fault fault;
	struct mkvm_walk w;
	int err;

	if ((la & ~PAGE_MASK) + size > PAGE_SIZE)
		return -EINVAL;		/* KVM splits it in two */
	if (!table && (la & ~PAGE_MASK) == (gpa & ~PAGE_MASK))
		return 0;
	err = vcpu->arch.mmu.gva_to_gpa(vcpu, la, write ? MKVM_ACC_WRITE : 0, &w, &fault);
	if (err == -EFAULT) {
		mkvm_inject_fault(vcpu, &fault);
		return 1;
	}
	if (err == -EAGAIN)
		return 1;
	return !err && w.gpa == gpa ? 0 : -EINVAL;
}

/**
 * mkvm_emulate_mmio() - emulate the instruction that touched MMIO
 * @vcpu: the vCPU, with slots_sem held
 * @gpa: the guest physical address it touched
 * @write: the fault was a write
 * @table: the fault was in the guest's own page-table walk
 *
 * Return: 0 to exit to userspace (KVM_EXIT_MMIO, or an emulation failure
 * as KVM_EXIT_INTERNAL_ERROR), 1 to enter the guest again.
 */
int mkvm_emulate_mmio(struct mkvm_vcpu *vcpu, u64 gpa, bool write, bool table)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	struct mkvm_insn *insn = &e->insn;
	struct kvm_sregs s;
	bool writes;
	int r;

	e->ram = false;
	if (!mkvm_fetch_decode(vcpu, &s, insn, &r))
		return r;
	e->next_rip = vcpu->arch.rip + insn->len;
	if (cpu_mode(&s) != 64)
		e->next_rip &= 0xffffffff;
	/* Not the access that faulted (the bytes changed): not emulated. */
	if (!is_faulting_access(insn, write, table, &writes))
		return mkvm_emulation_failed(vcpu, NULL, 0);
	r = check_operand(vcpu, &s, insn, e->next_rip, gpa, writes, table);
	if (r)
		return r > 0 ? r : mkvm_emulation_failed(vcpu, NULL, 0);
	return emulate_operand(vcpu, gpa);
}

/**
 * mkvm_emulate_ram_operand() - emulate an instruction the hardware refused its operand
 * @vcpu: the vCPU, with slots_sem held, without paging
 *
 * VMX's virtual-8086 mode runs real mode with 64 KiB segment limits
 * (vmx/rmode.c): an access beyond them that the guest's own limits allow
 * is done here, on RAM or MMIO, with the guest's segments.  The same
 * instructions as for MMIO.
 *
 * Return: as mkvm_emulate_mmio().
 */
int mkvm_emulate_ram_operand(struct mkvm_vcpu *vcpu)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	struct mkvm_insn *insn = &e->insn;
	struct mkvm_fault fault;
	unsigned int seg, size;
	struct kvm_sregs s;
	bool writes;
	u64 off, la;
	int r;

	e->ram = true;
	if (!mkvm_fetch_decode(vcpu, &s, insn, &r))
		return r;
	if (WARN_ON_ONCE(s.cr0 & X86_CR0_PG))
		return mkvm_emulation_failed(vcpu, NULL, 0);
	e->next_rip = (u32)(vcpu->arch.rip + insn->len);
	/* Not atomic here, and not split across pages: KVM's emulator does both. */
	if (!is_faulting_access(insn, false, true, &writes) || !insn->mem || insn->lock)
		return mkvm_emulation_failed(vcpu, NULL, 0);
	size = insn->kind == INSN_MOVZX || insn->kind == INSN_MOVSX ? insn->src_bytes :
	       insn->op_bytes;
	off = operand_offset(vcpu, insn, e->next_rip, &seg);
	r = linearize(vcpu, &s, seg, off, size, writes, &la, &fault);
	if (r) {
		mkvm_inject_fault(vcpu, &fault);
		return 1;
	}
	if ((la & ~PAGE_MASK) + size > PAGE_SIZE)
		return mkvm_emulation_failed(vcpu, NULL, 0);
	/* Without paging the linear address is the physical one. */
	return emulate_operand(vcpu, la);
}

/* The instruction in vcpu->arch.emul, its operand at @gpa. */
static int emulate_operand(struct mkvm_vcpu *vcpu, u64 gpa)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	struct mkvm_insn *insn = &e->insn;
	u64 val;
	int r;

	vcpu->stat.insn_emulation++;
	switch (insn->kind) {
	case INSN_MOV_TO_RM:
		val = insn->has_imm ? insn->imm : reg_read(vcpu, insn, insn->reg, insn->op_bytes);
		/* RIP moves on after the write: a TPR access report (vapic.c) names the store. */
		r = mmio_write(vcpu, gpa, insn->op_bytes, val);
		mkvm_rip_past_insn(vcpu, e->next_rip);
		return r;
	case INSN_STOS:
		val = vcpu->arch.regs[REG_RAX];
		if (insn->rep && !(vcpu->arch.regs[REG_RCX] & size_mask(insn->addr_bytes))) {
			/* REP with RCX=0 does nothing. */
			mkvm_rip_past_insn(vcpu, e->next_rip);
			return 1;
		}
		r = mmio_write(vcpu, gpa, insn->op_bytes, val);
		string_step(vcpu, insn, REG_RDI, 1, e->next_rip);
		return r;
	case INSN_MOV_FROM_RM:
	case INSN_MOVZX:
	case INSN_MOVSX:
		e->wait = EMUL_MMIO_READ;
		e->gpa = gpa;
		e->len = insn->src_bytes;
		return mmio_exit(vcpu, gpa, e->len, false, 0);
	case INSN_ALU_TO_RM:
	case INSN_ALU_FROM_RM:
	case INSN_TEST:
	case INSN_XCHG:
		e->wait = EMUL_MMIO_READ;
		e->gpa = gpa;
		e->len = insn->op_bytes;
		return mmio_exit(vcpu, gpa, e->len, false, 0);
	default:
		return mkvm_emulation_failed(vcpu, NULL, 0);
	}
}

/* Finish an MMIO read with the data that was read. */
static int finish_mmio_read(struct mkvm_vcpu *vcpu, u64 data)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	struct mkvm_insn *insn = &e->insn;
	u64 src, res;
	int r;

	if (e->len < 8)
		data &= (1ULL << (8 * e->len)) - 1;
	e->wait = EMUL_NONE;
	/* A write-back moves RIP on after it, as MOV does (see mkvm_emulate_mmio). */
	if (insn->kind != INSN_XCHG && (insn->kind != INSN_ALU_TO_RM || insn->alu == ALU_CMP))
		mkvm_rip_past_insn(vcpu, e->next_rip);
	switch (insn->kind) {
	case INSN_MOV_FROM_RM:
	case INSN_MOVZX:
		reg_write(vcpu, insn, insn->reg, insn->op_bytes, data);
		return 1;
	case INSN_MOVSX:
		reg_write(vcpu, insn, insn->reg, insn->op_bytes,
			  sign_extend(data, insn->src_bytes));
		return 1;
	case INSN_ALU_TO_RM:
		src = insn->has_imm ? insn->imm : reg_read(vcpu, insn, insn->reg, insn->op_bytes);
		res = mkvm_alu(insn->alu, data, src, insn->op_bytes, (u64 *)&vcpu->arch.rflags);
		if (insn->alu == ALU_CMP)
			return 1;
		r = mmio_write(vcpu, e->gpa, insn->op_bytes, res);
		mkvm_rip_past_insn(vcpu, e->next_rip);
		return r;
	case INSN_ALU_FROM_RM:
		src = reg_read(vcpu, insn, insn->reg, insn->op_bytes);
		res = mkvm_alu(insn->alu, src, data, insn->op_bytes, (u64 *)&vcpu->arch.rflags);
		if (insn->alu != ALU_CMP)
			reg_write(vcpu, insn, insn->reg, insn->op_bytes, res);
		return 1;
	case INSN_TEST:
		src = insn->has_imm ? insn->imm : reg_read(vcpu, insn, insn->reg, insn->op_bytes);
		mkvm_alu(ALU_AND, data, src, insn->op_bytes, (u64 *)&vcpu->arch.rflags);
		return 1;
	case INSN_XCHG:
		src = reg_read(vcpu, insn, insn->reg, insn->op_bytes);
		reg_write(vcpu, insn, insn->reg, insn->op_bytes, data);
		r = mmio_write(vcpu, e->gpa, insn->op_bytes, src);
		mkvm_rip_past_insn(vcpu, e->next_rip);
		return r;
	default:
		return mkvm_emulation_failed(vcpu, NULL, 0);
	}
}

/* Finish an MMIO read with the data userspace put in kvm_run. */
static int complete_mmio_read(struct mkvm_vcpu *vcpu)
{
	u64 data = 0;

	/* Only the data is userspace's: the size and address are what the exit said. */
	memcpy(&data, vcpu->run->mmio.data,
	       min_t(unsigned int, vcpu->arch.emul.len, sizeof(data)));
	return finish_mmio_read(vcpu, data);
}

/* KVM_EXIT_IO of @count elements; the data lives in the page at KVM_PIO_PAGE_OFFSET. */
static void pio_exit(struct mkvm_vcpu *vcpu, u16 port, u8 size, bool in, u32 count)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.port = port;
	run->io.count = count;
	run->io.data_offset = KVM_PIO_PAGE_OFFSET * PAGE_SIZE;
}

/**
 * mkvm_exit_pio() - hand a non-string IN or OUT to userspace (KVM_EXIT_IO)
 * @vcpu: the vCPU
 * @port: I/O port
 * @size: 1, 2 or 4 bytes
 * @in: IN (userspace supplies the data, taken on the next KVM_RUN) or OUT
 * @next_rip: the instruction after the IN/OUT
 *
 * RIP moves on at once, so a signal before the next KVM_RUN cannot make the
 * guest repeat the I/O.  An OUT that an ioeventfd takes does not exit.
 *
 * Return: 0, "exit to userspace"; 1 when an ioeventfd completed the OUT.
 */
int mkvm_exit_pio(struct mkvm_vcpu *vcpu, u16 port, u8 size, bool in, unsigned long next_rip)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	u32 data = vcpu->arch.regs[REG_RAX];

	if (!in && mkvm_ioeventfd_write(vcpu->vm, true, port, size, &vcpu->arch.regs[REG_RAX])) {
		mkvm_rip_past_insn(vcpu, next_rip);
		return 1;
	}
	/* The in-kernel PICs' ports complete without userspace. */
	if (mkvm_irqchip_pio(vcpu, port, size, in, &data)) {
		u64 rax = vcpu->arch.regs[REG_RAX];

		/* A 32-bit IN zero-extends; narrower ones keep RAX's other bytes. */
		if (in)
			vcpu->arch.regs[REG_RAX] = size == 4 ? data :
				(rax & ~size_mask(size)) | (data & size_mask(size));
		mkvm_rip_past_insn(vcpu, next_rip);
		return 1;
	}
	if (!in && mkvm_coalesced_write(vcpu->vm, true, port, size, &vcpu->arch.regs[REG_RAX])) {
		mkvm_rip_past_insn(vcpu, next_rip);
		return 1;
	}
	pio_exit(vcpu, port, size, in, 1);
	if (in) {
		e->wait = EMUL_PIO_IN;
		e->len = size;
	} else {
		memcpy(vcpu->pio_data, &vcpu->arch.regs[REG_RAX], size);
	}
	mkvm_rip_past_insn(vcpu, next_rip);
	return 0;
}

/* The data of an IN goes to AL, AX or EAX (SDM vol. 2 IN). */
static int complete_pio_in(struct mkvm_vcpu *vcpu)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	u64 data = 0;

	memcpy(&data, vcpu->pio_data, e->len);
	e->wait = EMUL_NONE;
	/* A 32-bit destination zero-extends into RAX; 8 and 16 bits merge. */
	if (e->len == 4)
		vcpu->arch.regs[REG_RAX] = (u32)data;
	else
		vcpu->arch.regs[REG_RAX] = (vcpu->arch.regs[REG_RAX] & ~size_mask(e->len)) | data;
	return 1;
}

/*
 * A fault the guest takes in place of the access (1: enter the guest,
 * which delivers it), a retry after the guest changed its page tables under
 * the walk (1: the same instruction runs again), or memory that is not in a
 * memslot (0: an emulation failure for userspace, as on KVM).
 */
static int access_failed(struct mkvm_vcpu *vcpu, int err, const struct mkvm_fault *fault)
{
	if (err == -EFAULT)
		mkvm_inject_fault(vcpu, fault);
	if (err == -EFAULT || err == -EAGAIN)
		return 1;
	return mkvm_emulation_failed(vcpu, NULL, 0);
}

/*
 * How many INS elements one exit takes: up to 1 KiB, within the page, the
 * address size and the segment.  The first element is known to be allowed.
 */
static unsigned int ins_batch(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 off,
			      u64 la, u64 count, u64 amask)
{
	unsigned int size = vcpu->arch.emul.insn.op_bytes;
	struct mkvm_fault fault;
	u64 n, la2;

	/* Backwards (DF=1), one element at a time, as KVM does. */
	if (vcpu->arch.rflags & RFLAGS_DF)
		return 1;
	n = min3((u64)(PAGE_SIZE - (la & ~PAGE_MASK)) / size, 1024ull / size, count);
	/* Not past the end of the address size, where the offset would wrap. */
	if ((amask - off) / size < n)
		n = (amask - off) / size + 1;
	if (n <= 1 || linearize(vcpu, s, SEG_ES, off, n * size, true, &la2, &fault))
		return 1;
	return n;
}

/**
 * mkvm_emulate_string_pio() - INS or OUTS, with or without REP
 * @vcpu: the vCPU, with slots_sem held
 * @port: I/O port
 * @size: element size
 * @in: INS
 *
 * Like KVM: OUTS leaves with one element per exit; INS reads ahead, one exit
 * for up to the rest of the page (at most 1 KiB) of elements.
 *
 * The memory operand is checked as the processor would check it, which
 * the I/O intercept came before (APM vol. 2 15.10.2): segment, canonical
 * form, and the guest's page tables for the CPL's rights.  A failing check
 * raises #GP, #SS or #PF instead of the I/O.
 *
 * Return: 0 to exit to userspace, 1 to enter the guest again.
 */
int mkvm_emulate_string_pio(struct mkvm_vcpu *vcpu, u16 port, u8 size, bool in)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	struct mkvm_insn *insn = &e->insn;
	unsigned long *r = vcpu->arch.regs;
	/* All of RCX in 64-bit addressing: a count of 2^32 is not 0. */
	u64 count = 1, amask, la, off;
	struct mkvm_fault fault;
	struct mkvm_walk w;
	struct kvm_sregs s;
	unsigned int n;
	int err;

	if (!mkvm_fetch_decode(vcpu, &s, insn, &err))
		return err;
	if (insn->kind != (in ? INSN_INS : INSN_OUTS) || insn->op_bytes != size)
		return mkvm_emulation_failed(vcpu, NULL, 0);
	vcpu->stat.insn_emulation++;
	e->next_rip = vcpu->arch.rip + insn->len;
	if (cpu_mode(&s) != 64)
		e->next_rip &= 0xffffffff;
	amask = size_mask(insn->addr_bytes);
	if (insn->rep) {
		count = r[REG_RCX] & amask;
		if (!count) {
			mkvm_rip_past_insn(vcpu, e->next_rip);
			return 1;
		}
	}
	if (!in) {
		off = r[REG_RSI] & amask;
		err = linearize(vcpu, &s, insn->seg == SEG_NONE ? SEG_DS : insn->seg, off, size,
				false, &la, &fault);
		if (!err)
			err = mkvm_read_guest_virt(vcpu, &s, la, vcpu->pio_data, size, 0, &fault);
		if (err)
			return access_failed(vcpu, err, &fault);
		string_step(vcpu, insn, REG_RSI, 1, e->next_rip);
		if (mkvm_ioeventfd_write(vcpu->vm, true, port, size, vcpu->pio_data) ||
		    mkvm_coalesced_write(vcpu->vm, true, port, size, vcpu->pio_data))
			return 1;	/* REP goes on with the next element at the same RIP */
		pio_exit(vcpu, port, size, false, 1);
		return 0;
	}
	/*
	 * INS always writes ES:RDI (SDM vol. 2 INS).  Checked before the port
	 * is read, so a write the guest may not make costs no I/O; checked
	 * again when the data is written, in case the tables changed.
	 */
	off = r[REG_RDI] & amask;
	err = linearize(vcpu, &s, SEG_ES, off, size, true, &la, &fault);
	if (!err)
		err = vcpu->arch.mmu.gva_to_gpa(vcpu, la, MKVM_ACC_WRITE, &w, &fault);
	/* An element across two pages needs both. */
	if (!err && ((la ^ (la + size - 1)) & PAGE_MASK))
		err = vcpu->arch.mmu.gva_to_gpa(vcpu, (la + size - 1) & PAGE_MASK,
						MKVM_ACC_WRITE, &w, &fault);
	if (err)
		return access_failed(vcpu, err, &fault);
	n = ins_batch(vcpu, &s, off, la, count, amask);
	pio_exit(vcpu, port, size, true, n);
	e->wait = EMUL_INS;
	e->la = la;
	e->count = n;
	return 0;
}

static int complete_ins(struct mkvm_vcpu *vcpu)
{
	struct mkvm_emul *e = &vcpu->arch.emul;
	struct mkvm_fault fault;
	struct kvm_sregs s;
	int err;

	e->wait = EMUL_NONE;
	mkvm_x86->get_sregs(vcpu, &s);
	err = mkvm_write_guest_virt(vcpu, &s, e->la, vcpu->pio_data, e->count * e->insn.op_bytes,
				    &fault);
	if (err)
		return access_failed(vcpu, err, &fault);
	string_step(vcpu, &e->insn, REG_RDI, e->count, e->next_rip);
	return 1;
}

/**
 * mkvm_emulate_complete() - finish an I/O that waited for userspace
 * @vcpu: the vCPU, at the start of KVM_RUN
 *
 * Return: 1 to go on into the guest, 0 to return to userspace at once with
 * a new exit (the write half of a read-modify-write).
 */
int mkvm_emulate_complete(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vm *vm = vcpu->vm;
	int r = 1;

	down_read(&vm->slots_sem);
	switch (vcpu->arch.emul.wait) {
	case EMUL_PIO_IN:
		r = complete_pio_in(vcpu);
		break;
	case EMUL_MMIO_READ:
		r = complete_mmio_read(vcpu);
		break;
	case EMUL_INS:
		r = complete_ins(vcpu);
		break;
	case EMUL_RDMSR:
	case EMUL_WRMSR:
		mkvm_complete_msr_access(vcpu);
		break;
	case EMUL_NONE:
		break;
	}
	up_read(&vm->slots_sem);
	return r;
}
