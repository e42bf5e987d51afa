// SPDX-License-Identifier: GPL-2.0
/*
 * The fuzz targets of tests/fuzz (decoder and ALU) over a fixed set of
 * inputs, built with the ordinary compiler: a cheap, deterministic share of
 * what `make fuzz` runs under libFuzzer with sanitizers for minutes.  A
 * property that breaks prints the input and aborts, which fails the case.
 */
#include "kvm_util.h"
#include "../fuzz/fuzz.h"

/* splitmix64: a fixed sequence, the same on every run. */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
	uint64_t z = (rnd_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const uint8_t prefixes[] = {
	0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65,
};
static const uint8_t one_byte_ops[] = {
	0x00, 0x01, 0x02, 0x03, 0x08, 0x0b, 0x10, 0x13, 0x18, 0x1b, 0x20, 0x23, 0x28, 0x2b,
	0x30, 0x33, 0x38, 0x3b, 0x63, 0x6c, 0x6d, 0x6e, 0x6f, 0x80, 0x81, 0x83, 0x84, 0x85,
	0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xaa, 0xab,
	0xac, 0xad, 0xc6, 0xc7, 0xf6, 0xf7, 0x90, 0xcc,
};
static const uint8_t two_byte_ops[] = {
	0x20, 0x21, 0x22, 0x23, 0xb6, 0xb7, 0xbe, 0xbf, 0x01, 0xa2,
};

/* Prefixes, REX, an opcode the decoder knows (mostly), then random bytes. */
static size_t shaped_insn(uint8_t *buf, size_t room)
{
	size_t n = 1, len;

	buf[0] = rnd() % 3;
	for (int p = rnd() % 4; p > 0 && n < room; p--)
		buf[n++] = prefixes[rnd() % sizeof(prefixes)];
	if (rnd() % 2 && n < room)
		buf[n++] = 0x40 | (rnd() & 15);
	if (rnd() % 4 == 0 && n + 1 < room) {
		buf[n++] = 0x0f;
		buf[n++] = two_byte_ops[rnd() % sizeof(two_byte_ops)];
	} else if (n < room) {
		buf[n++] = one_byte_ops[rnd() % sizeof(one_byte_ops)];
	}
	while (n < room)
		buf[n++] = rnd();
	/* Cut anywhere, also inside the instruction. */
	len = 1 + rnd() % (room - 1);
	return len < n ? len : n;
}

TEST(decoder_properties)
{
	uint8_t buf[1 + 20];
	unsigned int inputs = 0;

	rnd_state = 1;
	/* Every first two bytes in every mode, with a random rest. */
	for (unsigned int mode = 0; mode < 3; mode++)
		for (unsigned int w = 0; w < 0x10000; w++) {
			buf[0] = mode;
			buf[1] = w;
			buf[2] = w >> 8;
			for (unsigned int i = 3; i < 1 + 15; i++)
				buf[i] = rnd();
			fuzz_decode_one(buf, 1 + 15);
			inputs++;
		}
	for (unsigned int i = 0; i < 300000; i++) {
		fuzz_decode_one(buf, shaped_insn(buf, sizeof(buf)));
		inputs++;
	}
	test_log("%u inputs", inputs);
}

TEST(alu_properties)
{
	static const uint64_t edges[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff,
		0x80000000, 0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL,
		0x8000000000000000ULL, 0xffffffffffffffffULL, 0x0f, 0x10, 0xf0,
		0x5555555555555555ULL,
	};
	const unsigned int n = sizeof(edges) / sizeof(edges[0]);
	uint8_t in[25];
	unsigned int inputs = 0;

	rnd_state = 2;
	for (unsigned int sel = 0; sel < 64; sel++)
		for (unsigned int i = 0; i < n; i++)
			for (unsigned int j = 0; j < n; j++) {
				uint64_t fl = rnd();

				in[0] = sel;
				memcpy(in + 1, &edges[i], 8);
				memcpy(in + 9, &edges[j], 8);
				memcpy(in + 17, &fl, 8);
				fuzz_alu_one(in, sizeof(in));
				inputs++;
			}
	for (unsigned int k = 0; k < 500000; k++) {
		for (unsigned int i = 0; i < sizeof(in); i++)
			in[i] = rnd();
		fuzz_alu_one(in, 1 + rnd() % sizeof(in));
		inputs++;
	}
	test_log("%u inputs", inputs);
}
