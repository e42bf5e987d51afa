// SPDX-License-Identifier: GPL-2.0
/*
 * The emulator's ALU against the real CPU: every operation, size and a
 * spread of operands, compared with what this machine's own instructions give.
 */
#include "kvm_util.h"
#include <minikvm/alu.h>

#define HW_OP(insn, suffix, type, reg)						\
	static u64 hw_##insn##suffix(u64 a, u64 b, u64 *fl)			\
	{									\
		type x = a, y = b;						\
		u64 f = *fl;							\
		asm("push %[f]; popfq; " #insn #suffix " %[y], %[x]; pushfq; pop %[f]" \
		    : [x] "+" reg (x), [f] "+r" (f) : [y] reg (y) : "cc");	\
		*fl = f;							\
		return x;							\
	}
#define HW_ALL(insn)								\
	HW_OP(insn, b, uint8_t, "q") HW_OP(insn, w, uint16_t, "r")		\
	HW_OP(insn, l, uint32_t, "r") HW_OP(insn, q, uint64_t, "r")
HW_ALL(add) HW_ALL(or) HW_ALL(adc) HW_ALL(sbb) HW_ALL(and) HW_ALL(sub) HW_ALL(xor) HW_ALL(cmp)

typedef u64 (*hw_fn)(u64, u64, u64 *);
static const hw_fn hw[8][4] = {
#define ROW(i) { hw_##i##b, hw_##i##w, hw_##i##l, hw_##i##q }
	ROW(add), ROW(or), ROW(adc), ROW(sbb), ROW(and), ROW(sub), ROW(xor), ROW(cmp),
};

static const u64 samples[] = {
	0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
	0x7fffffffffffffffULL, 0x8000000000000000ULL, ~0ULL, 0x123456789abcdef0ULL, 0x0f, 0x10,
};

TEST(alu_matches_cpu)
{
	const unsigned int sizes[4] = { 1, 2, 4, 8 };
	unsigned int n = sizeof(samples) / sizeof(samples[0]);

	for (int op = 0; op < 8; op++)
		for (int s = 0; s < 4; s++)
			for (unsigned int i = 0; i < n; i++)
				for (unsigned int j = 0; j < n; j++)
					for (u64 cf = 0; cf < 2; cf++) {
		u64 mask = s == 3 ? ~0ULL : (1ULL << (8 * sizes[s])) - 1;
		u64 fl_hw = 0x202 | cf, fl_emu = 0x202 | cf;
		u64 r_hw = hw[op][s](samples[i], samples[j], &fl_hw) & mask;
		u64 r_emu = mkvm_alu(op, samples[i], samples[j], sizes[s], &fl_emu);
		/* AF is undefined after AND/OR/XOR: compare it only for arithmetic. */
		u64 cmp = (op == ALU_AND || op == ALU_OR || op == ALU_XOR) ?
			  ALU_FLAGS_MASK & ~0x10ULL : ALU_FLAGS_MASK;

		if (op != ALU_CMP)
			TEST_ASSERT(r_hw == r_emu, "op %d size %u %#llx,%#llx: %#llx != %#llx", op,
				    sizes[s], (unsigned long long)samples[i],
				    (unsigned long long)samples[j], (unsigned long long)r_emu,
				    (unsigned long long)r_hw);
		TEST_ASSERT((fl_hw & cmp) == (fl_emu & cmp),
			    "op %d size %u %#llx,%#llx cf %llu: flags %#llx != cpu %#llx", op,
			    sizes[s], (unsigned long long)samples[i],
			    (unsigned long long)samples[j], (unsigned long long)cf,
			    (unsigned long long)(fl_emu & cmp), (unsigned long long)(fl_hw & cmp));
	}
}
