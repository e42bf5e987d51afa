/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small kselftest-style harness: TEST() cases, each run in its own child
 * process with a time limit, reported as TAP.  A program built from these
 * exits 0 when every case passed, 1 when one failed and 4 (KSFT_SKIP) when
 * every case was skipped.
 */
#ifndef MINIKVM_TEST_HARNESS_H
#define MINIKVM_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

typedef void (*test_fn)(void);

void harness_register(const char *name, test_fn fn, unsigned int timeout_s);

/* Default per-case limit; emulated test machines are slow, so be generous. */
#define TEST_TIMEOUT_DEFAULT 120

#define TEST_TIMEOUT(name, secs)						\
	static void test_##name(void);						\
	__attribute__((constructor)) static void register_##name(void)		\
	{									\
		harness_register(#name, test_##name, secs);			\
	}									\
	static void test_##name(void)

#define TEST(name) TEST_TIMEOUT(name, TEST_TIMEOUT_DEFAULT)

void __attribute__((noreturn, format(printf, 4, 5)))
test_fail(const char *file, int line, const char *cond, const char *fmt, ...);
void __attribute__((noreturn, format(printf, 1, 2))) test_skip(const char *fmt, ...);
void __attribute__((format(printf, 1, 2))) test_log(const char *fmt, ...);

/* Host-side assertions.  They end the current case as failed. */
#define TEST_ASSERT(cond, fmt, ...)						\
	do {									\
		if (!(cond))							\
			test_fail(__FILE__, __LINE__, #cond, fmt, ##__VA_ARGS__); \
	} while (0)

#define TEST_ASSERT_EQ(a, b)							\
	do {									\
		uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);		\
		if (__a != __b)							\
			test_fail(__FILE__, __LINE__, #a " == " #b,		\
				  "%#" PRIx64 " != %#" PRIx64, __a, __b);	\
	} while (0)

/* An ioctl-style call that must fail with a given errno. */
#define TEST_ASSERT_ERRNO(ret, err)						\
	do {									\
		int __r = (ret), __e = errno;					\
		if (__r != -1 || __e != (err))					\
			test_fail(__FILE__, __LINE__, #ret " fails with " #err,	\
				  "returned %d, errno %d (%s), expected -1 and %d (%s)", \
				  __r, __r == -1 ? __e : 0,			\
				  __r == -1 ? strerror(__e) : "none", (err), strerror(err)); \
	} while (0)

#define SKIP(fmt, ...) test_skip(fmt, ##__VA_ARGS__)

#endif
