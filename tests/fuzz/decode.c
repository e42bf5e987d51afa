// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the instruction decoder (arch/x86/kvm/decode.c).
 *
 * Input: byte 0 picks the mode (16, 32 or 64-bit code), the rest are the
 * bytes fetched at RIP.  The decoder gets an exactly sized heap copy, so
 * AddressSanitizer reports any read past the bytes it was given.  For every
 * input:
 *
 * - it returns 0, -EFAULT or -EINVAL, and the same again for the same bytes;
 * - a decoded instruction is 1 to 15 bytes long and no longer than the
 *   input, and every field has a value the emulator can use as an index or
 *   a size (registers below 16, sizes 1/2/4/8, ...), consistent with the
 *   mode (no REX outside 64-bit code, no 8-byte operands either);
 * - the bytes after the instruction do not matter: the instruction alone
 *   decodes the same, and every shorter prefix of it is -EFAULT;
 * - in 64-bit code, an ES/CS/SS/DS override in front (which the CPU
 *   ignores there) changes only the length;
 * - opcode 0x63 outside 64-bit mode is ARPL, not MOVSXD.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <minikvm/decode.h>

#include "fuzz.h"

static const unsigned int modes[3] = { 16, 32, 64 };

/* Every field but len, which the metamorphic checks change on purpose. */
static bool same_insn(const struct mkvm_insn *a, const struct mkvm_insn *b, bool with_len)
{
	return (!with_len || a->len == b->len) && a->map == b->map && a->opcode == b->opcode &&
	       a->kind == b->kind && a->alu == b->alu && a->op_bytes == b->op_bytes &&
	       a->src_bytes == b->src_bytes && a->addr_bytes == b->addr_bytes &&
	       a->rex == b->rex && a->seg == b->seg && a->rep == b->rep &&
	       a->repne == b->repne && a->lock == b->lock && a->has_modrm == b->has_modrm &&
	       a->mod == b->mod && a->reg == b->reg && a->rm == b->rm && a->mem == b->mem &&
	       a->rip_relative == b->rip_relative && a->base == b->base &&
	       a->index == b->index && a->scale == b->scale && a->disp == b->disp &&
	       a->has_imm == b->has_imm && a->imm == b->imm;
}

static bool is_size(unsigned int n)
{
	return n == 1 || n == 2 || n == 4 || n == 8;
}

static u64 size_mask(unsigned int bytes)
{
	return bytes >= 8 ? ~0ULL : (1ULL << (8 * bytes)) - 1;
}

/* Decode @n bytes from an exactly sized heap copy of @bytes. */
static int decode_exact(struct mkvm_insn *insn, const u8 *bytes, unsigned int n,
			unsigned int mode)
{
	u8 *copy = malloc(n ? n : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, bytes, n);
	r = mkvm_decode(insn, copy, n, mode);
	free(copy);
	return r;
}

static bool moffs_form(const struct mkvm_insn *in)
{
	return in->map == 1 && in->opcode >= 0xa0 && in->opcode <= 0xa3;
}

/* The fields of a decoded instruction, one by one. */
static void check_fields(const struct mkvm_insn *in, unsigned int mode, unsigned int avail,
			 const uint8_t *data, size_t size)
{
	bool string = in->kind == INSN_STOS || in->kind == INSN_LODS || in->kind == INSN_MOVS ||
		      in->kind == INSN_INS || in->kind == INSN_OUTS;
	bool sysreg = in->kind >= INSN_MOV_FROM_CR && in->kind <= INSN_MOV_TO_DR;
	bool imm_form = in->map == 1 &&
			(in->opcode == 0x80 || in->opcode == 0x81 || in->opcode == 0x83 ||
			 in->opcode == 0xc6 || in->opcode == 0xc7 || in->opcode == 0xf6 ||
			 in->opcode == 0xf7 || (in->opcode >= 0xe4 && in->opcode <= 0xe7) ||
			 in->opcode == 0xea);
	/* A far pointer's selector sits above its offset. */
	u64 imm_mask = size_mask(in->op_bytes) | (in->kind == INSN_JMP_FAR ? 0xffffULL << 32 : 0);

	FUZZ_CHECK(in->len >= 1 && in->len <= MKVM_MAX_INSN_LEN && in->len <= avail, data, size,
		   "len %u, %u bytes given", in->len, avail);
	FUZZ_CHECK(in->kind > INSN_UNKNOWN && in->kind < 256, data, size, "kind %d", in->kind);
	FUZZ_CHECK(in->map == 1 || in->map == 2, data, size, "map %u", in->map);
	FUZZ_CHECK(is_size(in->op_bytes) && (in->op_bytes < 8 || mode == 64), data, size,
		   "op_bytes %u in %u-bit code", in->op_bytes, mode);
	FUZZ_CHECK(is_size(in->src_bytes), data, size, "src_bytes %u", in->src_bytes);
	if (in->kind == INSN_MOVZX || (in->kind == INSN_MOVSX && in->map == 2))
		FUZZ_CHECK(in->src_bytes <= in->op_bytes, data, size, "src %u > op %u",
			   in->src_bytes, in->op_bytes);
	else if (in->kind != INSN_MOVSX)
		FUZZ_CHECK(in->src_bytes == in->op_bytes, data, size, "src %u != op %u",
			   in->src_bytes, in->op_bytes);
	FUZZ_CHECK(mode == 64 ? in->addr_bytes == 4 || in->addr_bytes == 8 :
		   in->addr_bytes == 2 || in->addr_bytes == 4, data, size,
		   "addr_bytes %u in %u-bit code", in->addr_bytes, mode);
	FUZZ_CHECK(in->seg <= SEG_GS || in->seg == SEG_NONE, data, size, "seg %u", in->seg);
	/* ES, CS, SS and DS overrides are ignored in 64-bit code; SS may be the default. */
	FUZZ_CHECK(mode != 64 || in->seg == SEG_NONE || in->seg == SEG_SS || in->seg == SEG_FS ||
		   in->seg == SEG_GS, data, size, "seg %u in 64-bit code", in->seg);
	FUZZ_CHECK(!in->rex || (mode == 64 && (in->rex & 0xf0) == 0x40), data, size,
		   "rex %#x in %u-bit code", in->rex, mode);
	FUZZ_CHECK(in->reg < (mode == 64 ? 16 : 8) && in->rm < (mode == 64 ? 16 : 8), data,
		   size, "reg %u rm %u in %u-bit code", in->reg, in->rm, mode);
	FUZZ_CHECK(in->mod <= 3, data, size, "mod %u", in->mod);

	/* Memory operands: the registers and scale an address is computed from. */
	FUZZ_CHECK(!in->mem || (in->has_modrm && in->mod != 3) || moffs_form(in), data, size,
		   "memory operand without ModRM or moffs");
	if (in->mem) {
		int top = mode == 64 ? 15 : 7;

		FUZZ_CHECK(in->base >= -1 && in->base <= top && in->index >= -1 &&
			   in->index <= top && in->index != 4, data, size, "base %d index %d",
			   in->base, in->index);
		FUZZ_CHECK(in->scale == 1 || in->scale == 2 || in->scale == 4 || in->scale == 8,
			   data, size, "scale %u", in->scale);
		if (moffs_form(in))
			FUZZ_CHECK(in->base == -1 && in->index == -1 &&
				   ((u64)in->disp & ~size_mask(in->addr_bytes)) == 0, data, size,
				   "moffs: base %d index %d disp %#llx", in->base, in->index,
				   (unsigned long long)in->disp);
		else
			FUZZ_CHECK(in->disp >= -(1LL << 31) && in->disp < (1LL << 31), data, size,
				   "disp %lld", (long long)in->disp);
		if (in->addr_bytes == 2 && !moffs_form(in))
			FUZZ_CHECK((in->base == -1 || in->base == 3 || in->base == 5 ||
				    in->base == 6 || in->base == 7) &&
				   (in->index == -1 || in->index == 6 || in->index == 7) &&
				   in->scale == 1 && in->disp >= -32768 && in->disp <= 32767, data,
				   size, "16-bit address: base %d index %d scale %u disp %lld",
				   in->base, in->index, in->scale, (long long)in->disp);
	}
	FUZZ_CHECK(!in->rip_relative || (mode == 64 && in->mem && in->base == -1 &&
					 in->index == -1 && in->mod == 0 && (in->rm & 7) == 5),
		   data, size, "RIP-relative with base %d index %d mod %u rm %u", in->base,
		   in->index, in->mod, in->rm);

	/* Immediates: only the forms that have one, within the operand size. */
	FUZZ_CHECK(in->has_imm == imm_form, data, size, "has_imm %d for opcode %#x", in->has_imm,
		   in->opcode);
	FUZZ_CHECK(in->has_imm || !in->imm, data, size, "imm %#llx without an immediate",
		   (unsigned long long)in->imm);
	FUZZ_CHECK((in->imm & ~imm_mask) == 0, data, size,
		   "imm %#llx wider than %u bytes", (unsigned long long)in->imm, in->op_bytes);

	if (in->kind == INSN_ALU_TO_RM || in->kind == INSN_ALU_FROM_RM)
		FUZZ_CHECK(in->alu <= ALU_CMP, data, size, "alu %d", in->alu);
	if (string)
		FUZZ_CHECK(!in->has_modrm && !in->mem, data, size, "string op with an operand");
	if (sysreg)
		FUZZ_CHECK(in->map == 2 && in->has_modrm && !in->mem &&
			   in->op_bytes == (mode == 64 ? 8 : 4), data, size,
			   "MOV CR/DR: map %u modrm %d mem %d op %u", in->map, in->has_modrm,
			   in->mem, in->op_bytes);
	/* Group opcodes whose other ModRM.reg values are other instructions. */
	if (in->map == 1 && (in->opcode == 0xc6 || in->opcode == 0xc7))
		FUZZ_CHECK((in->reg & 7) == 0, data, size, "C6/C7 /%u is not MOV", in->reg & 7);
	if (in->map == 1 && (in->opcode == 0xf6 || in->opcode == 0xf7))
		FUZZ_CHECK((in->reg & 7) <= 1, data, size, "F6/F7 /%u is not TEST", in->reg & 7);
	/* No operands to HLT, INT3 and INTO; INTO does not exist in 64-bit mode. */
	if (in->kind == INSN_HLT || in->kind == INSN_INT3 || in->kind == INSN_INTO)
		FUZZ_CHECK(!in->has_modrm && !in->mem && !in->has_imm, data, size,
			   "kind %d with an operand", in->kind);
	FUZZ_CHECK(in->kind != INSN_INTO || mode != 64, data, size, "INTO in 64-bit code");
	/* SDM vol. 2 ARPL and MOVSXD: 63 /r is ARPL outside 64-bit mode. */
	FUZZ_CHECK(mode == 64 || in->map != 1 || in->opcode != 0x63, data, size,
		   "63 /r in %u-bit code decoded as %s, but it is ARPL there", mode,
		   in->kind == INSN_MOVSX ? "MOVSXD" : "something else");
}

void fuzz_decode_one(const uint8_t *data, size_t size)
{
	struct mkvm_insn a, b;
	unsigned int mode, avail;
	int r;

	if (size < 1 || size > 4096)
		return;
	mode = modes[data[0] % 3];
	avail = size - 1;
	r = decode_exact(&a, data + 1, avail, mode);
	FUZZ_CHECK(r == 0 || r == -EFAULT || r == -EINVAL, data, size, "returned %d", r);
	FUZZ_CHECK(decode_exact(&b, data + 1, avail, mode) == r && (r || same_insn(&a, &b, true)),
		   data, size, "a second decode of the same bytes differs");
	if (r)
		return;
	check_fields(&a, mode, avail, data, size);

	/* The instruction's own bytes, and nothing after them, decide it. */
	FUZZ_CHECK(decode_exact(&b, data + 1, a.len, mode) == 0 && same_insn(&a, &b, true), data,
		   size, "the %u bytes of the instruction alone decode differently", a.len);
	for (unsigned int n = 0; n < a.len; n++) {
		r = decode_exact(&b, data + 1, n, mode);
		FUZZ_CHECK(r == -EFAULT, data, size, "cut to %u of its %u bytes: returned %d", n,
			   a.len, r);
	}

	/* In 64-bit code the CPU ignores an ES/CS/SS/DS override. */
	if (mode == 64 && a.len < MKVM_MAX_INSN_LEN) {
		static const u8 ignored[4] = { 0x26, 0x2e, 0x36, 0x3e };
		u8 longer[MKVM_MAX_INSN_LEN];

		longer[0] = ignored[data[0] / 3 % 4];
		memcpy(longer + 1, data + 1, a.len);
		r = decode_exact(&b, longer, a.len + 1, mode);
		FUZZ_CHECK(r == 0 && b.len == a.len + 1 && same_insn(&a, &b, false), data, size,
			   "prefix %#x in front: returned %d, len %u (was %u)", longer[0], r, b.len,
			   a.len);
	}
}

#ifdef FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode_one(data, size);
	return 0;
}
#endif
