// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the emulator's ALU (arch/x86/kvm/alu.c) against this
 * machine's CPU.
 *
 * Input: byte 0 holds the operation (bits 2:0), the operand size (bits
 * 4:3) and the carry in (bit 5); then the two operands and the RFLAGS the
 * emulator starts from, 8 bytes each, little endian (missing bytes are 0).
 * The result, truncated to the size, and CF, PF, AF, ZF, SF and OF must be
 * what the CPU's own instruction gives (AF only for arithmetic: it is
 * undefined after AND, OR and XOR), and every other RFLAGS bit must stay
 * as it was.
 */
#include <string.h>

#include <minikvm/alu.h>

#include "fuzz.h"

/*
 * The CPU's answer.  CF goes in with BT and the flags come out with LAHF
 * (SF, ZF, AF, PF, CF) and SETO: no stack, so no red zone to care about.
 */
#define CPU_OP(name, insn, type)						\
	static u64 cpu_##name(u64 a, u64 b, unsigned int cf, u64 *flags)	\
	{									\
		type x = (type)a, y = (type)b;					\
		unsigned char of;						\
		unsigned long ah;						\
										\
		asm("bt $0, %k[cf]\n\t"						\
		    insn " %[y], %[x]\n\t"					\
		    "lahf\n\t"							\
		    "seto %[of]"						\
		    : [x] "+q" (x), "=&a" (ah), [of] "=&q" (of)			\
		    : [y] "q" (y), [cf] "r" (cf)				\
		    : "cc");							\
		*flags = ((ah >> 8) & 0xd5) | ((u64)of << 11);			\
		return x;							\
	}

#define CPU_SIZES(op)								\
	CPU_OP(op##b, #op "b", u8) CPU_OP(op##w, #op "w", u16)			\
	CPU_OP(op##l, #op "l", u32) CPU_OP(op##q, #op "q", u64)

CPU_SIZES(add) CPU_SIZES(or) CPU_SIZES(adc) CPU_SIZES(sbb)
CPU_SIZES(and) CPU_SIZES(sub) CPU_SIZES(xor) CPU_SIZES(cmp)

typedef u64 (*cpu_fn)(u64 a, u64 b, unsigned int cf, u64 *flags);

/* In the order of enum mkvm_alu_op, then by size 1, 2, 4, 8. */
static const cpu_fn cpu_ops[8][4] = {
#define SIZES(op) { cpu_##op##b, cpu_##op##w, cpu_##op##l, cpu_##op##q }
	SIZES(add), SIZES(or), SIZES(adc), SIZES(sbb),
	SIZES(and), SIZES(sub), SIZES(xor), SIZES(cmp),
#undef SIZES
};

static u64 load64(const uint8_t *data, size_t size, size_t off)
{
	uint8_t b[8] = { 0 };

	if (off < size)
		memcpy(b, data + off, size - off < 8 ? size - off : 8);
	return (u64)b[0] | (u64)b[1] << 8 | (u64)b[2] << 16 | (u64)b[3] << 24 |
	       (u64)b[4] << 32 | (u64)b[5] << 40 | (u64)b[6] << 48 | (u64)b[7] << 56;
}

void fuzz_alu_one(const uint8_t *data, size_t size)
{
	static const unsigned int sizes[4] = { 1, 2, 4, 8 };
	enum mkvm_alu_op op;
	unsigned int s, bytes, cf;
	u64 a, b, rflags_in, rflags, cpu_flags, mask, compared, res, cpu_res;

	if (size < 1)
		return;
	op = (enum mkvm_alu_op)(data[0] & 7);
	s = (data[0] >> 3) & 3;
	cf = (data[0] >> 5) & 1;
	bytes = sizes[s];
	mask = bytes == 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
	a = load64(data, size, 1);
	b = load64(data, size, 9);
	rflags_in = (load64(data, size, 17) & ~1ULL) | cf;

	rflags = rflags_in;
	res = mkvm_alu(op, a, b, bytes, &rflags);
	/* CMP's result is the subtraction; the CPU leaves the operand alone. */
	cpu_res = cpu_ops[op == ALU_CMP ? ALU_SUB : op][s](a, b, cf, &cpu_flags) & mask;
	cpu_ops[op][s](a, b, cf, &cpu_flags);

	FUZZ_CHECK((res & ~mask) == 0, data, size, "op %d size %u: result %#llx wider than %u",
		   op, bytes, (unsigned long long)res, bytes);
	FUZZ_CHECK(res == cpu_res, data, size, "op %d size %u %#llx,%#llx cf %u: %#llx, cpu %#llx",
		   op, bytes, (unsigned long long)a, (unsigned long long)b, cf,
		   (unsigned long long)res, (unsigned long long)cpu_res);
	compared = op == ALU_AND || op == ALU_OR || op == ALU_XOR ? ALU_FLAGS_MASK & ~0x10ULL :
		   ALU_FLAGS_MASK;
	FUZZ_CHECK((rflags & compared) == (cpu_flags & compared), data, size,
		   "op %d size %u %#llx,%#llx cf %u: flags %#llx, cpu %#llx", op, bytes,
		   (unsigned long long)a, (unsigned long long)b, cf,
		   (unsigned long long)(rflags & compared),
		   (unsigned long long)(cpu_flags & compared));
	FUZZ_CHECK((rflags & ~ALU_FLAGS_MASK) == (rflags_in & ~ALU_FLAGS_MASK), data, size,
		   "op %d: RFLAGS %#llx -> %#llx outside the arithmetic flags", op,
		   (unsigned long long)rflags_in, (unsigned long long)rflags);
}

#ifdef FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_alu_one(data, size);
	return 0;
}
#endif
