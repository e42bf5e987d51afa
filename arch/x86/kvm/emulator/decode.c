// SPDX-License-Identifier: GPL-2.0
/*
 * x86 instruction decoder (SDM vol. 2 chapter 2, APM vol. 3 chapter 1).
 *
 * Decodes the instructions that can touch MMIO or do string I/O, and MOV
 * to and from control and debug registers, LMSW, SMSW, CLTS and INVLPG, in
 * 16-, 32- and 64-bit code; also the privileged instructions that VMX's
 * virtual-8086 mode refuses to a real-mode guest (LGDT, LIDT, RDMSR,
 * WRMSR, WBINVD, INVD):
 * prefixes, REX, one- and two-byte opcodes, ModRM, SIB, displacement and
 * immediate.  It is plain C without kernel dependencies so
 * that tests/unit/decode_test.c runs it in userspace.
 */
#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/string.h>
#else
#include <errno.h>
#include <string.h>
#endif

#include <minikvm/decode.h>

/* Operand-encoding flags of an opcode. */
#define F_MODRM	0x01	/* a ModRM byte follows */
#define F_BYTE	0x02	/* 8-bit operands */
#define F_IMM8	0x04	/* 8-bit immediate, sign-extended */
#define F_IMMZ	0x08	/* 16- or 32-bit immediate by operand size, sign-extended */
#define F_GRP	0x10	/* ModRM.reg selects the operation */
#define F_SRC16	0x20	/* MOVZX/MOVSX from 16 bits (else 8) */
#define F_SRC32	0x40	/* MOVSXD from 32 bits */
/* An absolute address of address size, no ModRM; the register is (R)AX. */
#define F_MOFFS	0x80
/*
 * MOV to or from a control or debug register: ModRM names two registers
 * whatever its mod field says, and the GPR is 64 bits in 64-bit mode, else
 * 32 (SDM vol. 2 MOV-Control Registers, MOV-Debug Registers).
 */
#define F_SYSREG 0x100
/* At most 32-bit operands: REX.W does not make them 64 (INS, OUTS). */
#define F_OP32	0x200
/* A 16-bit operand whatever the prefixes say (LMSW). */
#define F_OP16	0x400
/* A far pointer follows: an offset of operand size, then a selector (JMP ptr16:16/32). */
#define F_FARPTR 0x800

struct opcode {
	u8 kind;	/* enum mkvm_insn_kind */
	u16 flags;
};

#define ALU_ROW(r)								\
	[(r) * 8 + 0] = { INSN_ALU_TO_RM, F_MODRM | F_BYTE },			\
	[(r) * 8 + 1] = { INSN_ALU_TO_RM, F_MODRM },				\
	[(r) * 8 + 2] = { INSN_ALU_FROM_RM, F_MODRM | F_BYTE },			\
	[(r) * 8 + 3] = { INSN_ALU_FROM_RM, F_MODRM }

static const struct opcode one_byte[256] = {
	ALU_ROW(0), ALU_ROW(1), ALU_ROW(2), ALU_ROW(3),
	ALU_ROW(4), ALU_ROW(5), ALU_ROW(6), ALU_ROW(7),
	[0x63] = { INSN_MOVSX, F_MODRM | F_SRC32 },
	[0x6c] = { INSN_INS, F_BYTE }, [0x6d] = { INSN_INS, F_OP32 },
	[0x6e] = { INSN_OUTS, F_BYTE }, [0x6f] = { INSN_OUTS, F_OP32 },
	[0x80] = { INSN_ALU_TO_RM, F_MODRM | F_BYTE | F_IMM8 | F_GRP },
	[0x81] = { INSN_ALU_TO_RM, F_MODRM | F_IMMZ | F_GRP },
	[0x83] = { INSN_ALU_TO_RM, F_MODRM | F_IMM8 | F_GRP },
	[0x84] = { INSN_TEST, F_MODRM | F_BYTE }, [0x85] = { INSN_TEST, F_MODRM },
	[0x86] = { INSN_XCHG, F_MODRM | F_BYTE }, [0x87] = { INSN_XCHG, F_MODRM },
	[0x88] = { INSN_MOV_TO_RM, F_MODRM | F_BYTE }, [0x89] = { INSN_MOV_TO_RM, F_MODRM },
	[0x8a] = { INSN_MOV_FROM_RM, F_MODRM | F_BYTE }, [0x8b] = { INSN_MOV_FROM_RM, F_MODRM },
	[0xa0] = { INSN_MOV_FROM_RM, F_MOFFS | F_BYTE }, [0xa1] = { INSN_MOV_FROM_RM, F_MOFFS },
	[0xa2] = { INSN_MOV_TO_RM, F_MOFFS | F_BYTE }, [0xa3] = { INSN_MOV_TO_RM, F_MOFFS },
	[0xa4] = { INSN_MOVS, F_BYTE }, [0xa5] = { INSN_MOVS, 0 },
	[0xaa] = { INSN_STOS, F_BYTE }, [0xab] = { INSN_STOS, 0 },
	[0xac] = { INSN_LODS, F_BYTE }, [0xad] = { INSN_LODS, 0 },
	[0xc6] = { INSN_MOV_TO_RM, F_MODRM | F_BYTE | F_IMM8 | F_GRP },
	[0xc7] = { INSN_MOV_TO_RM, F_MODRM | F_IMMZ | F_GRP },
	[0xcc] = { INSN_INT3, 0 }, [0xce] = { INSN_INTO, 0 },
	[0xe4] = { INSN_IN, F_BYTE | F_IMM8 }, [0xe5] = { INSN_IN, F_OP32 | F_IMM8 },
	[0xe6] = { INSN_OUT, F_BYTE | F_IMM8 }, [0xe7] = { INSN_OUT, F_OP32 | F_IMM8 },
	[0xea] = { INSN_JMP_FAR, F_FARPTR },
	[0xec] = { INSN_IN, F_BYTE }, [0xed] = { INSN_IN, F_OP32 },
	[0xee] = { INSN_OUT, F_BYTE }, [0xef] = { INSN_OUT, F_OP32 },
	[0xf4] = { INSN_HLT, 0 },
	[0xf6] = { INSN_TEST, F_MODRM | F_BYTE | F_IMM8 | F_GRP },
	[0xf7] = { INSN_TEST, F_MODRM | F_IMMZ | F_GRP },
};

static const struct opcode two_byte[256] = {
	[0x01] = { INSN_LMSW, F_MODRM | F_GRP | F_OP16 },
	[0x06] = { INSN_CLTS, 0 },
	[0x08] = { INSN_WBINVD, 0 }, [0x09] = { INSN_WBINVD, 0 },
	[0x20] = { INSN_MOV_FROM_CR, F_MODRM | F_SYSREG },
	[0x21] = { INSN_MOV_FROM_DR, F_MODRM | F_SYSREG },
	[0x22] = { INSN_MOV_TO_CR, F_MODRM | F_SYSREG },
	[0x23] = { INSN_MOV_TO_DR, F_MODRM | F_SYSREG },
	[0x30] = { INSN_WRMSR, 0 }, [0x32] = { INSN_RDMSR, 0 },
	[0xaa] = { INSN_RSM, 0 },
	[0xb6] = { INSN_MOVZX, F_MODRM }, [0xb7] = { INSN_MOVZX, F_MODRM | F_SRC16 },
	[0xbe] = { INSN_MOVSX, F_MODRM }, [0xbf] = { INSN_MOVSX, F_MODRM | F_SRC16 },
};

struct cursor {
	const u8 *p;
	unsigned int pos, avail;
};

static int next(struct cursor *c, u64 *v, unsigned int bytes)
{
	if (c->pos + bytes > c->avail || c->pos + bytes > MKVM_MAX_INSN_LEN)
		return -EFAULT;
	*v = 0;
	for (unsigned int i = 0; i < bytes; i++)
		*v |= (u64)c->p[c->pos + i] << (8 * i);
	c->pos += bytes;
	return 0;
}

static s64 sign_extend(u64 v, unsigned int bytes)
{
	unsigned int shift = 64 - 8 * bytes;

	return (s64)(v << shift) >> shift;
}

static int decode_prefixes(struct mkvm_insn *insn, struct cursor *c, unsigned int mode,
			   bool *opsize, bool *adsize)
{
	u64 b;

	for (;;) {
		if (next(c, &b, 1))
			return -EFAULT;
		switch (b) {
		case 0x66: *opsize = true; break;
		case 0x67: *adsize = true; break;
		case 0xf0: insn->lock = true; break;
		case 0xf2: insn->repne = true; insn->rep = false; break;
		case 0xf3: insn->rep = true; insn->repne = false; break;
		/* ES, CS, SS, DS overrides do nothing in 64-bit mode (SDM vol. 1 3.3.7.1). */
		case 0x26: insn->seg = mode == 64 ? insn->seg : SEG_ES; break;
		case 0x2e: insn->seg = mode == 64 ? insn->seg : SEG_CS; break;
		case 0x36: insn->seg = mode == 64 ? insn->seg : SEG_SS; break;
		case 0x3e: insn->seg = mode == 64 ? insn->seg : SEG_DS; break;
		case 0x64: insn->seg = SEG_FS; break;
		case 0x65: insn->seg = SEG_GS; break;
		default:
			/*
			 * REX counts only right before the opcode (SDM vol. 2
			 * 2.2.1): one that another prefix follows is ignored.
			 */
			if (mode == 64 && (b & 0xf0) == 0x40) {
				insn->rex = b;
				continue;
			}
			insn->opcode = b;
			return 0;
		}
		insn->rex = 0;
	}
}

/* 16-bit ModRM memory forms (SDM vol. 2 table 2-1). */
static const s8 rm16_base[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };	/* BX BX BP BP SI DI BP BX */
static const s8 rm16_index[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };	/* SI DI SI DI - - - - */

static int decode_modrm(struct mkvm_insn *insn, struct cursor *c, unsigned int mode,
			bool regs_only)
{
	u64 modrm, sib, disp = 0;
	unsigned int disp_bytes = 0;
	u8 rex_r = insn->rex & 4 ? 8 : 0, rex_x = insn->rex & 2 ? 8 : 0;
	u8 rex_b = insn->rex & 1 ? 8 : 0;

	if (next(c, &modrm, 1))
		return -EFAULT;
	insn->has_modrm = true;
	insn->mod = modrm >> 6;
	insn->reg = ((modrm >> 3) & 7) | rex_r;
	insn->rm = modrm & 7;
	insn->base = insn->index = -1;
	insn->scale = 1;
	if (insn->mod == 3 || regs_only) {
		insn->rm |= rex_b;
		return 0;
	}
	insn->mem = true;

	if (insn->addr_bytes == 2) {
		if (insn->mod == 0 && insn->rm == 6) {
			disp_bytes = 2;
		} else {
			insn->base = rm16_base[insn->rm];
			insn->index = rm16_index[insn->rm];
			disp_bytes = insn->mod == 1 ? 1 : insn->mod == 2 ? 2 : 0;
		}
	} else {
		if (insn->rm == 4) {
			if (next(c, &sib, 1))
				return -EFAULT;
			insn->scale = 1 << (sib >> 6);
			insn->index = ((sib >> 3) & 7) | rex_x;
			if (insn->index == 4)
				insn->index = -1;	/* no index (RSP cannot be one) */
			insn->base = (sib & 7) | rex_b;
			if ((sib & 7) == 5 && insn->mod == 0) {
				insn->base = -1;
				disp_bytes = 4;
			}
		} else if (insn->rm == 5 && insn->mod == 0) {
			/* disp32: RIP-relative in 64-bit mode (SDM vol. 2 2.2.1.6). */
			insn->rip_relative = mode == 64;
			disp_bytes = 4;
		} else {
			insn->base = insn->rm | rex_b;
		}
		if (insn->mod == 1)
			disp_bytes = 1;
		else if (insn->mod == 2)
			disp_bytes = 4;
	}
	if (disp_bytes && next(c, &disp, disp_bytes))
		return -EFAULT;
	insn->disp = sign_extend(disp, disp_bytes ? disp_bytes : 8);
	/* Stack-based addressing defaults to SS (SDM vol. 1 3.7.4). */
	if (insn->seg == SEG_NONE && (insn->base == 4 || insn->base == 5))
		insn->seg = SEG_SS;
	return 0;
}

/*
 * SMSW stores 16 bits to memory, a register of the operand size (SDM vol. 2
 * SMSW): group 7's 16-bit default does not hold for it.
 */
static void decode_smsw(struct mkvm_insn *insn, unsigned int mode, bool opsize)
{
	insn->kind = INSN_SMSW;
	if (insn->mem)
		return;
	if (mode == 64)
		insn->op_bytes = insn->rex & 8 ? 8 : opsize ? 2 : 4;
	else
		insn->op_bytes = (mode == 16) != opsize ? 2 : 4;
	insn->src_bytes = insn->op_bytes;
}

/*
 * LGDT and LIDT read a limit and a base: 24 bits of it with a 16-bit
 * operand, 32 with a 32-bit one, 64 in 64-bit mode whatever the prefixes
 * (SDM vol. 2 LGDT/LIDT).  op_bytes is that operand size.
 */
static void decode_descriptor_table(struct mkvm_insn *insn, unsigned int mode, bool opsize,
				    bool gdt)
{
	insn->kind = gdt ? INSN_LGDT : INSN_LIDT;
	if (mode == 64)
		insn->op_bytes = 8;
	else
		insn->op_bytes = (mode == 16) != opsize ? 2 : 4;
	insn->src_bytes = insn->op_bytes;
}

/**
 * mkvm_decode() - decode one instruction
 * @insn: filled in
 * @bytes: the instruction's bytes
 * @avail: how many of them are valid
 * @mode: 16, 32 or 64: the code segment's default size or long mode
 *
 * Return: 0; -EFAULT when @avail ends inside the instruction; -EINVAL for an
 * instruction the decoder does not know (the caller reports an emulation
 * failure).
 */
int mkvm_decode(struct mkvm_insn *insn, const u8 *bytes, unsigned int avail, unsigned int mode)
{
	struct cursor c = { .p = bytes, .avail = avail };
	bool opsize = false, adsize = false;
	const struct opcode *op;
	u64 b, imm;
	int r;

	memset(insn, 0, sizeof(*insn));
	insn->seg = SEG_NONE;
	r = decode_prefixes(insn, &c, mode, &opsize, &adsize);
	if (r)
		return r;
	insn->map = 1;
	op = &one_byte[insn->opcode];
	if (insn->opcode == 0x0f) {
		if (next(&c, &b, 1))
			return -EFAULT;
		insn->map = 2;
		insn->opcode = b;
		op = &two_byte[b];
	}
	/*
	 * INTO does not exist in 64-bit mode, and 63 is MOVSXD only there: ARPL
	 * elsewhere (SDM vol. 2 INT n/INTO/INT3/INT1, ARPL).
	 */
	if (op->kind == INSN_UNKNOWN || ((op->kind == INSN_INTO || op->kind == INSN_JMP_FAR) &&
					 mode == 64) ||
	    (insn->map == 1 && insn->opcode == 0x63 && mode != 64))
		return -EINVAL;
	insn->kind = op->kind;
	/* F2 repeats these as F3 does; only CMPS and SCAS tell them apart (SDM vol. 2 REP). */
	if (insn->repne && (insn->kind == INSN_INS || insn->kind == INSN_OUTS ||
			    insn->kind == INSN_STOS || insn->kind == INSN_LODS ||
			    insn->kind == INSN_MOVS))
		insn->rep = true;

	/* Operand and address sizes (SDM vol. 1 3.6, table 3-4). */
	if (op->flags & F_BYTE)
		insn->op_bytes = 1;
	else if (op->flags & F_OP16)
		insn->op_bytes = 2;
	else if (op->flags & F_SYSREG)
		insn->op_bytes = mode == 64 ? 8 : 4;
	else if (mode == 64)
		insn->op_bytes = insn->rex & 8 ? (op->flags & F_OP32 ? 4 : 8) : opsize ? 2 : 4;
	else
		insn->op_bytes = (mode == 16) != opsize ? 2 : 4;
	if (mode == 64)
		insn->addr_bytes = adsize ? 4 : 8;
	else
		insn->addr_bytes = (mode == 16) != adsize ? 2 : 4;
	insn->src_bytes = op->flags & F_SRC32 ? 4 : op->flags & F_SRC16 ? 2 :
			  insn->kind == INSN_MOVZX || insn->kind == INSN_MOVSX ? 1 : insn->op_bytes;

	if (op->flags & F_MODRM) {
		r = decode_modrm(insn, &c, mode, op->flags & F_SYSREG);
		if (r)
			return r;
	} else if (op->flags & F_MOFFS) {
		/* MOV AL/AX/EAX/RAX to or from an absolute offset (SDM vol. 2 MOV, A0-A3). */
		if (next(&c, &b, insn->addr_bytes))
			return -EFAULT;
		insn->mem = true;
		insn->base = insn->index = -1;
		insn->scale = 1;
		insn->disp = b;
		insn->reg = 0;
	}
	if (op->flags & F_GRP) {
		u8 sub = insn->reg & 7;

		if (insn->kind == INSN_ALU_TO_RM)
			insn->alu = sub;
		else if (insn->kind == INSN_MOV_TO_RM && sub != 0)
			return -EINVAL;		/* C6/C7 /1-/7 are not MOV */
		else if (insn->kind == INSN_TEST && sub > 1)
			return -EINVAL;		/* F6/F7 /2-/7: NOT, NEG, MUL, DIV... */
		else if (insn->kind == INSN_LMSW && sub == 7 && insn->mem)
			insn->kind = INSN_INVLPG;	/* group 7 (SDM vol. 2 table A-6) */
		else if (insn->kind == INSN_LMSW && sub == 4)
			decode_smsw(insn, mode, opsize);
		else if (insn->kind == INSN_LMSW && insn->mem && (sub == 2 || sub == 3))
			decode_descriptor_table(insn, mode, opsize, sub == 2);
		else if (insn->kind == INSN_LMSW && !insn->mem && (insn->rm & 7) == 1 &&
			 (sub == 0 || sub == 3))
			/* 0F 01 C1 and D9: Intel's and AMD's hypercall (SDM, APM vol. 3). */
			insn->kind = sub == 0 ? INSN_VMCALL : INSN_VMMCALL;
		else if (insn->kind == INSN_LMSW && sub != 6)
			return -EINVAL;		/* 0F 01 /0, /1, /5, 11B forms: SGDT, SWAPGS... */
	} else if (insn->kind == INSN_ALU_TO_RM || insn->kind == INSN_ALU_FROM_RM) {
		insn->alu = insn->opcode >> 3;
	}

	if (op->flags & (F_IMM8 | F_IMMZ)) {
		unsigned int n = op->flags & F_IMM8 ? 1 : insn->op_bytes == 2 ? 2 : 4;

		if (next(&c, &imm, n))
			return -EFAULT;
		insn->has_imm = true;
		insn->imm = sign_extend(imm, n);
		if (insn->op_bytes < 8)
			insn->imm &= (1ULL << (8 * insn->op_bytes)) - 1;
	} else if (op->flags & F_FARPTR) {
		if (next(&c, &imm, insn->op_bytes) || next(&c, &b, 2))
			return -EFAULT;
		insn->has_imm = true;
		insn->imm = imm | b << 32;
	}
	insn->len = c.pos;
	return 0;
}
