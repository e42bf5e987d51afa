// SPDX-License-Identifier: GPL-2.0
/*
 * The library's IDT points vector N at guest_idt_stubs + 16 * N.  Check that
 * every stub fits its 16 bytes and pushes its own vector number, after a
 * dummy error code exactly for the vectors that have none.
 */
#include "kvm_util.h"

extern uint8_t guest_idt_stubs[], guest_idt_stubs_end[];

static bool has_error_code(int v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

TEST(stubs_fit_in_16_bytes)
{
	TEST_ASSERT(guest_idt_stubs_end - guest_idt_stubs <= 256 * 16, "stubs take %td bytes",
		    guest_idt_stubs_end - guest_idt_stubs);
	TEST_ASSERT(((uintptr_t)guest_idt_stubs & 15) == 0, "stubs are 16-byte aligned");
}

TEST(each_stub_pushes_its_vector)
{
	for (int v = 0; v < 256; v++) {
		const uint8_t *p = guest_idt_stubs + 16 * v;
		int64_t pushed;

		if (!has_error_code(v)) {
			/* push $0: 6a 00 */
			TEST_ASSERT(p[0] == 0x6a && p[1] == 0, "vector %d: no dummy error code", v);
			p += 2;
		}
		if (p[0] == 0x6a) {		/* push imm8, sign-extended */
			pushed = (int8_t)p[1];
		} else {
			TEST_ASSERT(p[0] == 0x68, "vector %d: opcode %#x is no push", v, p[0]);
			pushed = (int32_t)(p[1] | p[2] << 8 | p[3] << 16 | (uint32_t)p[4] << 24);
		}
		TEST_ASSERT_EQ(pushed, v);
	}
}
