/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's fixed-width types, for the code that also builds in userspace
 * for the unit tests (the decoder, the ALU, the page-table walker).
 */
#ifndef MINIKVM_TYPES_H
#define MINIKVM_TYPES_H

#ifdef __KERNEL__
#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/types.h>
#else
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int32_t s32;
typedef int64_t s64;
#define BIT(n)			(1UL << (n))
#define BIT_ULL(n)		(1ULL << (n))
#define GENMASK_ULL(h, l)	((~0ULL >> (63 - (h))) & (~0ULL << (l)))
#endif

#endif
