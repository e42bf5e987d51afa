// SPDX-License-Identifier: GPL-2.0
/*
 * Table-driven tests of the x86 decoder (arch/x86/kvm/emulator/decode.c), in userspace.
 * Each row is an encoding as the CPU would fetch it and what it must decode to.
 */
#include "kvm_util.h"
#include <minikvm/decode.h>

struct row {
	const char *what;
	unsigned int mode;
	unsigned int n;
	u8 bytes[15];
	int ret;
	u8 len, kind, op_bytes, src_bytes, addr_bytes;
	int base, index;
	u8 scale;
	s64 disp;
	u64 imm;
	u8 alu, reg, seg, rm;
	bool rep, rip_relative, mem;
};

#define NOIDX .index = -1
static const struct row rows[] = {
	{ "mov %eax,(%rdi)", 64, 2, { 0x89, 0x07 }, 0, 2, INSN_MOV_TO_RM, 4, 4, 8,
	  .base = 7, NOIDX, .scale = 1, .reg = 0, .seg = SEG_NONE, .mem = true },
	{ "mov %rax,0x8(%rdx)", 64, 4, { 0x48, 0x89, 0x42, 0x08 }, 0, 4, INSN_MOV_TO_RM, 8, 8, 8,
	  .base = 2, NOIDX, .scale = 1, .disp = 8, .seg = SEG_NONE, .mem = true },
	{ "mov %r9b,(%r12,%rcx,4)", 64, 4, { 0x45, 0x88, 0x0c, 0x8c }, 0, 4, INSN_MOV_TO_RM, 1, 1,
	  8, .base = 12, .index = 1, .scale = 4, .reg = 9, .seg = SEG_NONE, .mem = true },
	{ "mov %ax,-0x10(%rbp)", 64, 4, { 0x66, 0x89, 0x45, 0xf0 }, 0, 4, INSN_MOV_TO_RM, 2, 2, 8,
	  .base = 5, NOIDX, .scale = 1, .disp = -16, .seg = SEG_SS, .mem = true },
	{ "mov 0x100(%rip),%ecx", 64, 6, { 0x8b, 0x0d, 0x00, 0x01, 0x00, 0x00 }, 0, 6,
	  INSN_MOV_FROM_RM, 4, 4, 8, .base = -1, NOIDX, .scale = 1, .disp = 0x100, .reg = 1,
	  .seg = SEG_NONE, .rip_relative = true, .mem = true },
	{ "movl $0x12345678,(%rax)", 64, 6, { 0xc7, 0x00, 0x78, 0x56, 0x34, 0x12 }, 0, 6,
	  INSN_MOV_TO_RM, 4, 4, 8, .base = 0, NOIDX, .scale = 1, .imm = 0x12345678,
	  .seg = SEG_NONE, .mem = true },
	{ "movq $-1,(%rax)", 64, 7, { 0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff }, 0, 7,
	  INSN_MOV_TO_RM, 8, 8, 8, .base = 0, NOIDX, .scale = 1, .imm = ~0ULL,
	  .seg = SEG_NONE, .mem = true },
	{ "movw $0x7788,(%rax)", 64, 5, { 0x66, 0xc7, 0x00, 0x88, 0x77 }, 0, 5, INSN_MOV_TO_RM,
	  2, 2, 8, .base = 0, NOIDX, .scale = 1, .imm = 0x7788, .seg = SEG_NONE, .mem = true },
	{ "movzbq (%rsi),%rax", 64, 4, { 0x48, 0x0f, 0xb6, 0x06 }, 0, 4, INSN_MOVZX, 8, 1, 8,
	  .base = 6, NOIDX, .scale = 1, .seg = SEG_NONE, .mem = true },
	{ "movzwl (%rsi),%eax", 64, 3, { 0x0f, 0xb7, 0x06 }, 0, 3, INSN_MOVZX, 4, 2, 8,
	  .base = 6, NOIDX, .scale = 1, .seg = SEG_NONE, .mem = true },
	{ "movsbq (%rsi),%rax", 64, 4, { 0x48, 0x0f, 0xbe, 0x06 }, 0, 4, INSN_MOVSX, 8, 1, 8,
	  .base = 6, NOIDX, .scale = 1, .seg = SEG_NONE, .mem = true },
	{ "movslq (%rsi),%rax", 64, 3, { 0x48, 0x63, 0x06 }, 0, 3, INSN_MOVSX, 8, 4, 8,
	  .base = 6, NOIDX, .scale = 1, .seg = SEG_NONE, .mem = true },
	{ "addl $5,(%rax)", 64, 3, { 0x83, 0x00, 0x05 }, 0, 3, INSN_ALU_TO_RM, 4, 4, 8,
	  .base = 0, NOIDX, .scale = 1, .imm = 5, .alu = ALU_ADD, .seg = SEG_NONE, .mem = true },
	{ "subl $-1,(%rax) (imm8 sign-extends)", 64, 3, { 0x83, 0x28, 0xff }, 0, 3,
	  INSN_ALU_TO_RM, 4, 4, 8, .base = 0, NOIDX, .scale = 1, .imm = 0xffffffff,
	  .alu = ALU_SUB, .reg = 5, .seg = SEG_NONE, .mem = true },
	{ "andq %rax,(%rdx)", 64, 3, { 0x48, 0x21, 0x02 }, 0, 3, INSN_ALU_TO_RM, 8, 8, 8,
	  .base = 2, NOIDX, .scale = 1, .alu = ALU_AND, .seg = SEG_NONE, .mem = true },
	{ "orb $0x80,(%rcx)", 64, 3, { 0x80, 0x09, 0x80 }, 0, 3, INSN_ALU_TO_RM, 1, 1, 8,
	  .base = 1, NOIDX, .scale = 1, .imm = 0x80, .alu = ALU_OR, .reg = 1, .seg = SEG_NONE,
	  .mem = true },
	{ "cmp (%rbx),%edx", 64, 2, { 0x3b, 0x13 }, 0, 2, INSN_ALU_FROM_RM, 4, 4, 8,
	  .base = 3, NOIDX, .scale = 1, .alu = ALU_CMP, .reg = 2, .seg = SEG_NONE, .mem = true },
	{ "testb $1,(%rax)", 64, 3, { 0xf6, 0x00, 0x01 }, 0, 3, INSN_TEST, 1, 1, 8,
	  .base = 0, NOIDX, .scale = 1, .imm = 1, .seg = SEG_NONE, .mem = true },
	{ "stosl", 64, 1, { 0xab }, 0, 1, INSN_STOS, 4, 4, 8, .seg = SEG_NONE },
	{ "rep stosq", 64, 3, { 0xf3, 0x48, 0xab }, 0, 3, INSN_STOS, 8, 8, 8, .seg = SEG_NONE,
	  .rep = true },
	{ "rep insb", 64, 2, { 0xf3, 0x6c }, 0, 2, INSN_INS, 1, 1, 8, .seg = SEG_NONE,
	  .rep = true },
	{ "rep outsw", 64, 3, { 0x66, 0xf3, 0x6f }, 0, 3, INSN_OUTS, 2, 2, 8, .seg = SEG_NONE,
	  .rep = true },
	{ "mov %fs:0x28,%rax (absolute SIB)", 64, 9,
	  { 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00 }, 0, 9, INSN_MOV_FROM_RM, 8, 8,
	  8, .base = -1, NOIDX, .scale = 1, .disp = 0x28, .seg = SEG_FS, .mem = true },
	{ "32-bit: mov %eax,0xc0000100 (moffs)", 32, 5, { 0xa3, 0x00, 0x01, 0x00, 0xc0 }, 0, 5,
	  INSN_MOV_TO_RM, 4, 4, 4, .base = -1, NOIDX, .scale = 1, .disp = 0xc0000100,
	  .seg = SEG_NONE, .mem = true },
	{ "moffs cut short", 32, 3, { 0xa3, 0x00, 0x01 }, -EFAULT, .len = 0 },
	{ "64-bit: movabs 0x1122334455667788,%al", 64, 9,
	  { 0xa0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }, 0, 9, INSN_MOV_FROM_RM, 1, 1,
	  8, .base = -1, NOIDX, .scale = 1, .disp = 0x1122334455667788, .seg = SEG_NONE,
	  .mem = true },
	{ "32-bit: mov %eax,0xc0000100 (ModRM)", 32, 6, { 0x89, 0x05, 0x00, 0x01, 0x00, 0xc0 }, 0,
	  6, INSN_MOV_TO_RM, 4, 4, 4, .base = -1, NOIDX, .scale = 1, .disp = (s32)0xc0000100,
	  .seg = SEG_NONE, .mem = true },
	{ "16-bit: mov %ax,(%bx,%si)", 16, 2, { 0x89, 0x00 }, 0, 2, INSN_MOV_TO_RM, 2, 2, 2,
	  .base = 3, .index = 6, .scale = 1, .seg = SEG_NONE, .mem = true },
	{ "16-bit: mov 0x600,%cx", 16, 4, { 0x8b, 0x0e, 0x00, 0x06 }, 0, 4, INSN_MOV_FROM_RM, 2, 2,
	  2, .base = -1, NOIDX, .scale = 1, .disp = 0x600, .reg = 1, .seg = SEG_NONE,
	  .mem = true },
	{ "16-bit: 66 prefix, mov %eax,-2(%bp)", 16, 4, { 0x66, 0x89, 0x46, 0xfe }, 0, 4,
	  INSN_MOV_TO_RM, 4, 4, 2, .base = 5, NOIDX, .scale = 1, .disp = -2, .seg = SEG_SS,
	  .mem = true },
	{ "mov %dr7,%rax", 64, 3, { 0x0f, 0x21, 0xf8 }, 0, 3, INSN_MOV_FROM_DR, 8, 8, 8,
	  .reg = 7, .rm = 0, .seg = SEG_NONE },
	{ "mov %r9,%dr1", 64, 4, { 0x49, 0x0f, 0x23, 0xc9 }, 0, 4, INSN_MOV_TO_DR, 8, 8, 8,
	  .reg = 1, .rm = 9, .seg = SEG_NONE },
	{ "32-bit: mov %edi,%dr0 with mod 0 (ignored: still registers)", 32, 3,
	  { 0x0f, 0x23, 0x07 }, 0, 3, INSN_MOV_TO_DR, 4, 4, 4, .reg = 0, .rm = 7,
	  .seg = SEG_NONE },
	{ "16-bit: 66 prefix ignored, mov %dr6,%ecx", 16, 4, { 0x66, 0x0f, 0x21, 0xf1 }, 0, 4,
	  INSN_MOV_FROM_DR, 4, 4, 2, .reg = 6, .rm = 1, .seg = SEG_NONE },
	{ "mov %cr8,%rax (REX.R)", 64, 4, { 0x44, 0x0f, 0x20, 0xc0 }, 0, 4, INSN_MOV_FROM_CR, 8,
	  8, 8, .reg = 8, .rm = 0, .seg = SEG_NONE },
	{ "32-bit: lock mov %eax,%cr0 (AMD's CR8)", 32, 4, { 0xf0, 0x0f, 0x22, 0xc0 }, 0, 4,
	  INSN_MOV_TO_CR, 4, 4, 4, .reg = 0, .rm = 0, .seg = SEG_NONE },
	{ "truncated: ModRM missing", 64, 1, { 0x89 }, -EFAULT, .len = 0 },
	{ "truncated: imm32 cut", 64, 4, { 0xc7, 0x00, 0x78, 0x56 }, -EFAULT, .len = 0 },
	{ "rex.w outsl: still 32-bit", 64, 2, { 0x48, 0x6f }, 0, 2, INSN_OUTS, 4, 4, 8,
	  .seg = SEG_NONE },
	{ "data16 rep rex.w insl: REX.W wins, 32-bit", 64, 4, { 0x66, 0xf3, 0x48, 0x6d }, 0, 4,
	  INSN_INS, 4, 4, 8, .seg = SEG_NONE, .rep = true },
	{ "repnz outsl repeats", 64, 2, { 0xf2, 0x6f }, 0, 2, INSN_OUTS, 4, 4, 8,
	  .seg = SEG_NONE, .rep = true },
	{ "rex before repnz is ignored", 64, 3, { 0x47, 0xf2, 0x6f }, 0, 3, INSN_OUTS, 4, 4, 8,
	  .seg = SEG_NONE, .rep = true },
	{ "hlt", 64, 1, { 0xf4 }, 0, 1, INSN_HLT, 4, 4, 8, .seg = SEG_NONE },
	{ "data16 hlt (16-bit)", 16, 2, { 0x66, 0xf4 }, 0, 2, INSN_HLT, 4, 4, 2, .seg = SEG_NONE },
	{ "int3", 32, 1, { 0xcc }, 0, 1, INSN_INT3, 4, 4, 4, .seg = SEG_NONE },
	{ "into (32-bit)", 32, 1, { 0xce }, 0, 1, INSN_INTO, 4, 4, 4, .seg = SEG_NONE },
	{ "no into in 64-bit mode", 64, 1, { 0xce }, -EINVAL, .len = 0 },
	{ "lmsw %ax", 64, 3, { 0x0f, 0x01, 0xf0 }, 0, 3, INSN_LMSW, 2, 2, 8, .base = -1, NOIDX,
	  .scale = 1, .reg = 6, .rm = 0, .seg = SEG_NONE },
	{ "lmsw (%bx) (16-bit)", 16, 3, { 0x0f, 0x01, 0x37 }, 0, 3, INSN_LMSW, 2, 2, 2, .base = 3,
	  NOIDX, .scale = 1, .reg = 6, .rm = 7, .seg = SEG_NONE, .mem = true },
	{ "66 lmsw 0x10(%rbp)", 64, 5, { 0x66, 0x0f, 0x01, 0x75, 0x10 }, 0, 5, INSN_LMSW, 2, 2, 8,
	  .base = 5, NOIDX, .scale = 1, .disp = 0x10, .reg = 6, .rm = 5, .seg = SEG_SS,
	  .mem = true },
	{ "smsw %eax", 64, 3, { 0x0f, 0x01, 0xe0 }, 0, 3, INSN_SMSW, 4, 4, 8, .base = -1, NOIDX,
	  .scale = 1, .reg = 4, .rm = 0, .seg = SEG_NONE },
	{ "smsw %r9 (rex.wb)", 64, 4, { 0x49, 0x0f, 0x01, 0xe1 }, 0, 4, INSN_SMSW, 8, 8, 8,
	  .base = -1, NOIDX, .scale = 1, .reg = 4, .rm = 9, .seg = SEG_NONE },
	{ "smsw %ax (16-bit)", 16, 3, { 0x0f, 0x01, 0xe0 }, 0, 3, INSN_SMSW, 2, 2, 2, .base = -1,
	  NOIDX, .scale = 1, .reg = 4, .rm = 0, .seg = SEG_NONE },
	{ "smsw (%rdi) is 16 bits", 64, 4, { 0x48, 0x0f, 0x01, 0x27 }, 0, 4, INSN_SMSW, 2, 2, 8,
	  .base = 7, NOIDX, .scale = 1, .reg = 4, .rm = 7, .seg = SEG_NONE, .mem = true },
	{ "not lmsw: sgdt (0f 01 /0)", 64, 3, { 0x0f, 0x01, 0x00 }, -EINVAL, .len = 0 },
	{ "not lmsw: swapgs (0f 01 f8)", 64, 3, { 0x0f, 0x01, 0xf8 }, -EINVAL, .len = 0 },
	{ "invlpg (%rax)", 64, 3, { 0x0f, 0x01, 0x38 }, 0, 3, INSN_INVLPG, 2, 2, 8, .base = 0,
	  NOIDX, .scale = 1, .reg = 7, .rm = 0, .seg = SEG_NONE, .mem = true },
	{ "invlpg 0x10(%ebx,%esi,2) (32-bit)", 32, 5, { 0x0f, 0x01, 0x7c, 0x73, 0x10 }, 0, 5,
	  INSN_INVLPG, 2, 2, 4, .base = 3, .index = 6, .scale = 2, .disp = 0x10, .reg = 7,
	  .rm = 4, .seg = SEG_NONE, .mem = true },
	{ "clts", 32, 2, { 0x0f, 0x06 }, 0, 2, INSN_CLTS, 4, 4, 4, .seg = SEG_NONE },
	{ "rsm", 32, 2, { 0x0f, 0xaa }, 0, 2, INSN_RSM, 4, 4, 4, .seg = SEG_NONE },
	{ "vmcall", 64, 3, { 0x0f, 0x01, 0xc1 }, 0, 3, INSN_VMCALL, 2, 2, 8, .base = -1, NOIDX,
	  .scale = 1, .reg = 0, .rm = 1, .seg = SEG_NONE },
	{ "vmmcall", 64, 3, { 0x0f, 0x01, 0xd9 }, 0, 3, INSN_VMMCALL, 2, 2, 8, .base = -1, NOIDX,
	  .scale = 1, .reg = 3, .rm = 1, .seg = SEG_NONE },
	{ "not vmcall: vmlaunch (0f 01 c2)", 64, 3, { 0x0f, 0x01, 0xc2 }, -EINVAL, .len = 0 },
	{ "lgdt (%si) (16-bit): a 24-bit base", 16, 3, { 0x0f, 0x01, 0x14 }, 0, 3, INSN_LGDT, 2, 2,
	  2, .base = 6, NOIDX, .scale = 1, .reg = 2, .rm = 4, .seg = SEG_NONE, .mem = true },
	{ "66 lidt 0x10(%bx) (16-bit)", 16, 5, { 0x66, 0x0f, 0x01, 0x5f, 0x10 }, 0, 5, INSN_LIDT,
	  4, 4, 2, .base = 3, NOIDX, .scale = 1, .disp = 0x10, .reg = 3, .rm = 7, .seg = SEG_NONE,
	  .mem = true },
	{ "66 lgdt (%rax) is 64 bits", 64, 4, { 0x66, 0x0f, 0x01, 0x10 }, 0, 4, INSN_LGDT, 8, 8, 8,
	  .base = 0, NOIDX, .scale = 1, .reg = 2, .rm = 0, .seg = SEG_NONE, .mem = true },
	{ "not lgdt: xsetbv (0f 01 d1)", 64, 3, { 0x0f, 0x01, 0xd1 }, -EINVAL, .len = 0 },
	{ "rdmsr", 16, 2, { 0x0f, 0x32 }, 0, 2, INSN_RDMSR, 2, 2, 2, .seg = SEG_NONE },
	{ "wrmsr", 32, 2, { 0x0f, 0x30 }, 0, 2, INSN_WRMSR, 4, 4, 4, .seg = SEG_NONE },
	{ "wbinvd", 32, 2, { 0x0f, 0x09 }, 0, 2, INSN_WBINVD, 4, 4, 4, .seg = SEG_NONE },
	{ "out %al,$0xe3 (16-bit)", 16, 2, { 0xe6, 0xe3 }, 0, 2, INSN_OUT, 1, 1, 2,
	  .imm = 0xe3, .seg = SEG_NONE },
	{ "in $0x80,%ax (16-bit)", 16, 2, { 0xe5, 0x80 }, 0, 2, INSN_IN, 2, 2, 2,
	  .imm = 0xff80, .seg = SEG_NONE },
	{ "out %eax,(%dx) (rex.w: still 32)", 64, 2, { 0x48, 0xef }, 0, 2, INSN_OUT, 4, 4, 8,
	  .seg = SEG_NONE },
	{ "ljmp $0xf000,$0xe05b (16-bit)", 16, 5, { 0xea, 0x5b, 0xe0, 0x00, 0xf0 }, 0, 5,
	  INSN_JMP_FAR, 2, 2, 2, .imm = 0xf0000000e05bULL, .seg = SEG_NONE },
	{ "66 ljmp $0x8,$0x12345678 (16-bit)", 16, 8,
	  { 0x66, 0xea, 0x78, 0x56, 0x34, 0x12, 0x08, 0x00 }, 0, 8, INSN_JMP_FAR, 4, 4, 2,
	  .imm = 0x812345678ULL, .seg = SEG_NONE },
	{ "ljmp does not exist in 64-bit mode", 64, 7, { 0xea, 0, 0, 0, 0, 0, 0 }, -EINVAL,
	  .len = 0 },
	{ "ljmp cut short", 16, 4, { 0xea, 0x5b, 0xe0, 0x00 }, -EFAULT, .len = 0 },
	{ "invd", 32, 2, { 0x0f, 0x08 }, 0, 2, INSN_WBINVD, 4, 4, 4, .seg = SEG_NONE },
	{ "63 is arpl in 32-bit mode", 32, 2, { 0x63, 0x00 }, -EINVAL, .len = 0 },
	{ "unknown: nop", 64, 1, { 0x90 }, -EINVAL, .len = 0 },
	{ "not MOV: c7 /1", 64, 6, { 0xc7, 0x08, 0, 0, 0, 0 }, -EINVAL, .len = 0 },
	{ "not TEST: f7 /3 (neg)", 64, 2, { 0xf7, 0x18 }, -EINVAL, .len = 0 },
	{ "16 prefixes: longer than 15 bytes", 64, 15,
	  { 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
	    0x66 }, -EFAULT, .len = 0 },
};

TEST(decoder_table)
{
	for (unsigned int i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *t = &rows[i];
		struct mkvm_insn in;
		int r = mkvm_decode(&in, t->bytes, t->n, t->mode);

		TEST_ASSERT(r == t->ret, "%s: returned %d, expected %d", t->what, r, t->ret);
		if (r)
			continue;
		TEST_ASSERT(in.len == t->len && in.kind == t->kind && in.op_bytes == t->op_bytes &&
			    in.src_bytes == t->src_bytes && in.addr_bytes == t->addr_bytes,
			    "%s: len %u kind %u op %u src %u addr %u", t->what, in.len, in.kind,
			    in.op_bytes, in.src_bytes, in.addr_bytes);
		TEST_ASSERT(in.mem == t->mem && in.rep == t->rep &&
			    in.rip_relative == t->rip_relative && in.seg == t->seg,
			    "%s: mem %d rep %d rip %d seg %u", t->what, in.mem, in.rep,
			    in.rip_relative, in.seg);
		if (in.mem)
			TEST_ASSERT(in.base == t->base && in.index == t->index &&
				    in.scale == t->scale && in.disp == t->disp,
				    "%s: base %d index %d scale %u disp %lld", t->what, in.base,
				    in.index, in.scale, (long long)in.disp);
		if (in.has_modrm)
			TEST_ASSERT(in.reg == t->reg, "%s: reg %u", t->what, in.reg);
		if (in.has_modrm && !in.mem)
			TEST_ASSERT(in.rm == t->rm, "%s: rm %u", t->what, in.rm);
		TEST_ASSERT(in.imm == t->imm, "%s: imm %#llx", t->what, (unsigned long long)in.imm);
		if (in.kind == INSN_ALU_TO_RM || in.kind == INSN_ALU_FROM_RM)
			TEST_ASSERT(in.alu == t->alu, "%s: alu %u", t->what, in.alu);
	}
}

/* Every one-byte prefix run that fits must never read past the bytes given. */
TEST(decoder_never_overreads)
{
	u8 buf[MKVM_MAX_INSN_LEN];
	struct mkvm_insn in;

	for (unsigned int seed = 1; seed < 20000; seed++) {
		unsigned int n = seed % MKVM_MAX_INSN_LEN + 1, x = seed * 2654435761u;

		for (unsigned int i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245 + 12345;
			buf[i] = x >> 16;
		}
		if (mkvm_decode(&in, buf, n, (seed % 3) == 0 ? 16 : (seed % 3) == 1 ? 32 : 64) == 0)
			TEST_ASSERT(in.len <= n, "seed %u: len %u > %u", seed, in.len, n);
	}
}
