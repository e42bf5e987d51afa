# SPDX-License-Identifier: GPL-2.0
#
# minikvm top-level Makefile.
#
#   make               build minikvm.ko, the VMM and the tests
#   make deps          install the Debian packages the build and test machine need
#   make demo          boot Linux with the minikvm VMM inside the test machine
#   make check         unit tests, then the selftests inside the test machine
#   make check MODULE=kvm      only against the distro's KVM (default: minikvm, then kvm)
#
# The module is built out of tree through Kbuild against KDIR.

# KDIR: the running kernel's build tree if it has one, else the newest Debian
# amd64 headers (the test machine boots the matching /boot/vmlinuz).
KDIR ?= $(shell d=/lib/modules/$$(uname -r)/build; if [ -d $$d ]; then echo $$d; \
	else ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1; fi)

# Which hypervisors the selftests run against: minikvm, kvm (the reference), or both.
MODULE ?= minikvm kvm
# Extra options for tools/testvm, e.g. TESTVM_OPTS="--cpus 4".
TESTVM_OPTS ?=
# Selftest binaries to run (default: all); e.g. TESTS="system memslots".
TESTS ?=

CC ?= cc
BUILD := build
USER_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
# Guest code is compiled into the test binaries: it must not use the red zone
# (exceptions push onto the guest stack) nor the TLS stack canary (the guest has no TLS).
TEST_CFLAGS := $(USER_CFLAGS) -fno-stack-protector -mno-red-zone -fno-omit-frame-pointer \
	-Itests/lib

TEST_LIB_SRCS := $(wildcard tests/lib/*.c)
TEST_LIB_OBJS := $(patsubst tests/lib/%.c,$(BUILD)/tests/lib/%.o,$(TEST_LIB_SRCS))
TEST_LIB_ASMS := $(wildcard tests/lib/*.S)
TEST_LIB_OBJS += $(patsubst tests/lib/%.S,$(BUILD)/tests/lib/%.o,$(TEST_LIB_ASMS))
TEST_SRCS := $(wildcard tests/*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))
TEST_HDRS := $(wildcard tests/lib/*.h)

VMM_SRCS := $(wildcard vmm/*.c)
VMM_HDRS := $(wildcard vmm/*.h)

.PHONY: all module user tests unit deps check check-unit check-selftests check-testvm bench \
	demo clean help

all: module user tools/testvm-fault/testvm_fault.ko

help:
	@sed -n '3,12p' Makefile

module:
	@test -n "$(KDIR)" -a -d "$(KDIR)" || \
		{ echo "no kernel headers found: run 'make deps' or set KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

user: vmm/minikvm tests unit $(BENCH_BINS)

vmm/minikvm: $(VMM_SRCS) $(VMM_HDRS)
	$(CC) $(USER_CFLAGS) -pthread -Ivmm -o $@ $(VMM_SRCS)

tests: $(TEST_BINS)
unit: $(UNIT_BINS)

$(BUILD)/tests/lib/%.o: tests/lib/%.c $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/tests/lib/%.o: tests/lib/%.S
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(TEST_LIB_OBJS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIB_OBJS)

# Kernel code that also builds in userspace, for the unit tests.
SHARED_SRCS := arch/x86/kvm/emulator/decode.c arch/x86/kvm/emulator/alu.c arch/x86/kvm/mmu/walk.c
SHARED_OBJS := $(patsubst %.c,$(BUILD)/shared/%.o,$(SHARED_SRCS))

# Objects shared by several programs are not intermediate files: keep them.
.SECONDARY: $(TEST_LIB_OBJS) $(SHARED_OBJS)

$(BUILD)/shared/%.o: %.c $(wildcard include/minikvm/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(USER_CFLAGS) -Iinclude -c -o $@ $<

$(BUILD)/bench/%: bench/%.c $(TEST_LIB_OBJS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -o $@ $< $(TEST_LIB_OBJS)

$(BUILD)/unit/%: tests/unit/%.c $(TEST_LIB_OBJS) $(SHARED_OBJS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Iinclude -o $@ $< $(TEST_LIB_OBJS) $(SHARED_OBJS)

# Unit tests of the VMM: tests/unit/vmm_NAME_test.c with vmm/NAME.c.
$(BUILD)/unit/vmm_%_test: tests/unit/vmm_%_test.c vmm/%.c $(VMM_HDRS) $(TEST_LIB_OBJS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Ivmm -o $@ $< vmm/$*.c $(TEST_LIB_OBJS)

deps:
	@tools/install-deps

check-unit: unit
	@tools/run-tests --label unit $(UNIT_BINS)

check-selftests: all
	@tools/testvm --module $(firstword $(MODULE)) --timeout 900 $(TESTVM_OPTS) -- \
		tools/run-tests --label $(firstword $(MODULE)) $(SELECTED_TESTS)

# Proves that the runner catches a broken kernel and a hung guest.
check-testvm: all
	@tools/testvm-selftest

# The whole suite: one summary line at the end, for humans and for CI.
SELECTED_TESTS = $(if $(TESTS),$(addprefix $(BUILD)/tests/,$(TESTS)),$(TEST_BINS))

check: all
	@UNIT_TESTS="$(UNIT_BINS)" SELFTESTS="$(SELECTED_TESTS)" tools/check "$(MODULE)"

# The main job: `minikvm run` boots Linux with 2 vCPUs and a disk in the test machine.
demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all >/dev/null
	@tools/demo

# Side-by-side benchmark of minikvm and the reference KVM (not part of check).
bench: all
	@BENCH_PROGRAMS="$(BENCH_BINS)" tools/bench

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/tools/testvm-fault clean 2>/dev/null
	rm -rf $(BUILD) vmm/minikvm

# The runner self-test's deliberately faulting module.
tools/testvm-fault/testvm_fault.ko: tools/testvm-fault/testvm_fault.c
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tools/testvm-fault modules
