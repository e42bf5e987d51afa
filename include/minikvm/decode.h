/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The x86 instruction decoder, shared by SVM, VMX and the userspace unit
 * tests.  It only decodes: it reads bytes, never guest state.
 */
#ifndef MINIKVM_DECODE_H
#define MINIKVM_DECODE_H

#include <minikvm/types.h>

#define MKVM_MAX_INSN_LEN 15	/* SDM vol. 2 2.3.11 */

/* What an instruction does, as far as the emulator needs to know. */
enum mkvm_insn_kind {
	INSN_UNKNOWN,
	INSN_MOV_TO_RM,		/* 88/89 /r, C6/C7 /0 (imm): r/m = src */
	INSN_MOV_FROM_RM,	/* 8A/8B /r: reg = r/m */
	INSN_MOVZX,		/* 0F B6/B7: reg = zero-extended r/m8/16 */
	INSN_MOVSX,		/* 0F BE/BF, 63 (MOVSXD): reg = sign-extended r/m */
	INSN_ALU_TO_RM,		/* 00-39 even forms, 80/81/83: r/m = r/m op src */
	INSN_ALU_FROM_RM,	/* 02-3B odd-direction forms: reg = reg op r/m */
	INSN_TEST,		/* 84/85, F6/F7 /0: flags of r/m & src */
	INSN_XCHG,		/* 86/87: swap reg and r/m */
	INSN_STOS,		/* AA/AB */
	INSN_LODS,		/* AC/AD */
	INSN_MOVS,		/* A4/A5 */
	INSN_INS,		/* 6C/6D */
	INSN_OUTS,		/* 6E/6F */
	INSN_MOV_FROM_CR,	/* 0F 20: r/m (a GPR) = CR[reg] */
	INSN_MOV_FROM_DR,	/* 0F 21: r/m (a GPR) = DR[reg] */
	INSN_MOV_TO_CR,		/* 0F 22: CR[reg] = r/m (a GPR) */
	INSN_MOV_TO_DR,		/* 0F 23: DR[reg] = r/m (a GPR) */
	INSN_HLT,		/* F4 */
	INSN_INT3,		/* CC */
	INSN_INTO,		/* CE (not in 64-bit mode) */
	INSN_LMSW,		/* 0F 01 /6: CR0[3:0] = r/m16, PE never cleared */
	INSN_CLTS,		/* 0F 06: CR0.TS = 0 */
	INSN_INVLPG,		/* 0F 01 /7, memory only: drop the TLB entry for m */
	INSN_SMSW,		/* 0F 01 /4: r/m = CR0 (m16, or a register of operand size) */
	INSN_RSM,		/* 0F AA */
	INSN_VMCALL,		/* 0F 01 C1 */
	INSN_VMMCALL,		/* 0F 01 D9 */
	INSN_LGDT,		/* 0F 01 /2, memory only: GDTR = m16&32 (m16&64) */
	INSN_LIDT,		/* 0F 01 /3, memory only: IDTR = m16&32 (m16&64) */
	INSN_RDMSR,		/* 0F 32 */
	INSN_WRMSR,		/* 0F 30 */
	INSN_WBINVD,		/* 0F 09 WBINVD, 0F 08 INVD */
	INSN_IN,		/* E4/E5 (port in imm), EC/ED (port in DX) */
	INSN_OUT,		/* E6/E7 (port in imm), EE/EF (port in DX) */
	INSN_JMP_FAR,		/* EA, not in 64-bit mode: imm = offset | selector << 32 */
};

/* ALU operations in the order of their opcode rows and ModRM.reg of group 1. */
enum mkvm_alu_op { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* Segment registers in encoding order (SDM vol. 2 3.1.1.3). */
enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_NONE = 7 };

struct mkvm_insn {
	u8 len;
	u8 map;			/* 1: one-byte opcodes, 2: 0F xx */
	u8 opcode;
	enum mkvm_insn_kind kind;
	enum mkvm_alu_op alu;	/* for INSN_ALU_* */
	u8 op_bytes;		/* operand size of this instruction: 1, 2, 4 or 8 */
	u8 src_bytes;		/* MOVZX/MOVSX source size */
	u8 addr_bytes;		/* 2, 4 or 8 */
	u8 rex;
	u8 seg;			/* segment override, or SEG_NONE */
	bool rep, repne, lock;
	bool has_modrm;
	u8 mod, reg, rm;	/* reg and rm include REX.R and REX.B */
	bool mem;		/* the r/m operand is memory */
	bool rip_relative;
	int base, index;	/* GPR numbers, -1 for none */
	u8 scale;		/* 1, 2, 4, 8 */
	s64 disp;
	bool has_imm;
	u64 imm;		/* sign-extended to the operand size */
};

int mkvm_decode(struct mkvm_insn *insn, const u8 *bytes, unsigned int avail, unsigned int mode);

#endif
