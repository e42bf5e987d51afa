/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Fuzz targets for the kernel code that also builds in userspace (the
 * Makefile's SHARED_SRCS): the instruction decoder and the ALU.
 *
 * Each target takes one input of any length and checks properties that
 * must hold for every input; a violation prints what broke and aborts, so
 * that libFuzzer (make fuzz) saves the input and the unit test
 * (tests/unit/fuzz_targets_test.c) fails.  Built with clang's libFuzzer,
 * each file also defines LLVMFuzzerTestOneInput (FUZZ_LIBFUZZER).
 */
#ifndef MINIKVM_TESTS_FUZZ_H
#define MINIKVM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void fuzz_decode_one(const uint8_t *data, size_t size);
void fuzz_alu_one(const uint8_t *data, size_t size);

/* Print the input in hex, for a report that reproduces without the file. */
static inline void fuzz_dump_input(const uint8_t *data, size_t size)
{
	fprintf(stderr, "input (%zu bytes):", size);
	for (size_t i = 0; i < size && i < 64; i++)
		fprintf(stderr, " %02x", data[i]);
	fprintf(stderr, "%s\n", size > 64 ? " ..." : "");
}

#define FUZZ_CHECK(cond, data, size, fmt, ...)					\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: property violated: %s\n" fmt "\n", \
				__FILE__, __LINE__, #cond, ##__VA_ARGS__);	\
			fuzz_dump_input(data, size);				\
			abort();						\
		}								\
	} while (0)

#endif
