// SPDX-License-Identifier: GPL-2.0
/*
 * The eight classic ALU operations (ADD, OR, ADC, SBB, AND, SUB, XOR, CMP)
 * with their effect on CF, PF, AF, ZF, SF and OF (SDM vol. 2, each
 * instruction's "Flags Affected").  Plain C for the kernel and the unit tests.
 */
#include <minikvm/alu.h>

#define CF 0x001
#define PF 0x004
#define AF 0x010
#define ZF 0x040
#define SF 0x080
#define OF 0x800

static bool even_parity(u8 v)
{
	v ^= v >> 4;
	v ^= v >> 2;
	v ^= v >> 1;
	return !(v & 1);
}

/**
 * mkvm_alu() - compute "a op b" at an operand size, like the CPU
 * @op: the operation
 * @a: destination operand
 * @b: source operand
 * @bytes: operand size, 1, 2, 4 or 8
 * @rflags: in: CF for ADC/SBB; out: the six arithmetic flags replaced
 *
 * AF is left clear after the logical operations, where the SDM calls it
 * undefined.
 *
 * Return: the result, truncated to @bytes (CMP's result is the subtraction).
 */
u64 mkvm_alu(enum mkvm_alu_op op, u64 a, u64 b, unsigned int bytes, u64 *rflags)
{
	u64 mask = bytes == 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
	u64 msb = 1ULL << (8 * bytes - 1), carry_in = *rflags & CF ? 1 : 0;
	u64 res, flags = 0;

	a &= mask;
	b &= mask;
	switch (op) {
	case ALU_ADD:
	case ALU_ADC:
		if (op == ALU_ADD)
			carry_in = 0;
		res = (a + b + carry_in) & mask;
		if (res < a || (carry_in && res == a))
			flags |= CF;
		if ((a ^ res) & (b ^ res) & msb)
			flags |= OF;
		flags |= (a ^ b ^ res) & AF;
		break;
	case ALU_SUB:
	case ALU_SBB:
	case ALU_CMP:
		if (op != ALU_SBB)
			carry_in = 0;
		res = (a - b - carry_in) & mask;
		if (a < b || (carry_in && a == b))
			flags |= CF;
		if ((a ^ b) & (a ^ res) & msb)
			flags |= OF;
		flags |= (a ^ b ^ res) & AF;
		break;
	case ALU_OR:
		res = a | b;
		break;
	case ALU_AND:
		res = a & b;
		break;
	default:	/* ALU_XOR */
		res = a ^ b;
		break;
	}
	if (!res)
		flags |= ZF;
	if (res & msb)
		flags |= SF;
	if (even_parity(res))
		flags |= PF;
	*rflags = (*rflags & ~ALU_FLAGS_MASK) | flags;
	return res;
}
