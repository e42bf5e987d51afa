/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Integer ALU results and flags for the emulator; kernel and userspace.
 */
#ifndef MINIKVM_ALU_H
#define MINIKVM_ALU_H

#include <minikvm/decode.h>

/* The arithmetic flags in RFLAGS: CF, PF, AF, ZF, SF, OF (SDM vol. 1 3.4.3.1). */
#define ALU_FLAGS_MASK 0x8d5ULL

u64 mkvm_alu(enum mkvm_alu_op op, u64 a, u64 b, unsigned int bytes, u64 *rflags);

#endif
