# SPDX-License-Identifier: GPL-2.0
#
# minikvm top-level Makefile.
#
#   make               build minikvm.ko, the VMM and the tests
#   make install       put minikvm.ko in /lib/modules/RELEASE/extra and run depmod
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

# Which hypervisors the selftests run against: minikvm, minikvm-shadow (npt=0), kvm (the
# reference), kvm-shadow (KVM with npt=0, the MMU tests), and in the Intel test machine
# (Bochs) minikvm-vmx (minikvm's VMX backend) and kvm-intel (the reference kvm_intel), and
# both with ept=0 (minikvm-vmx-shadow, kvm-intel-shadow: the shadow MMU on VMX).
MODULE ?= minikvm minikvm-shadow kvm kvm-shadow minikvm-vmx kvm-intel minikvm-vmx-shadow \
	kvm-intel-shadow
# The selftests `make check` runs on Intel, where Bochs is slow (make check-intel: all).
INTEL_TESTS ?= system pio mmio memslots paging emul_access irq_injection vcpu_events \
	debugregs lifecycle msr_checks real_mode
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

.PHONY: check-intel all module install user tests unit deps check check-unit check-selftests check-testvm \
	bench demo clean help

all: module user tools/testvm-fault/testvm_fault.ko

help:
	@sed -n '3,13p' Makefile

module:
	@test -n "$(KDIR)" -a -d "$(KDIR)" || \
		{ echo "no kernel headers found: run 'make deps' or set KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# The release the module was built for, from its vermagic; DESTDIR for a staging root.
install: module
	@rel=$$(modinfo -F vermagic minikvm.ko | cut -d' ' -f1) && \
	install -D -m 644 minikvm.ko $(DESTDIR)/lib/modules/$$rel/extra/minikvm.ko && \
	depmod $(if $(DESTDIR),-b $(DESTDIR)) $$rel && \
	echo "installed $(DESTDIR)/lib/modules/$$rel/extra/minikvm.ko" && \
	echo "load it with: modprobe minikvm nested=1"

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
	@UNIT_TESTS="$(UNIT_BINS)" SELFTESTS="$(SELECTED_TESTS)" \
		INTEL_SELFTESTS="$(if $(TESTS),$(SELECTED_TESTS),$(addprefix $(BUILD)/tests/,$(INTEL_TESTS)))" \
		tools/check "$(MODULE)"

# Everything on Intel: the whole selftest suite on minikvm's VMX backend and on kvm_intel,
# but the programs whose guests spin with interrupts off, which stop the one-CPU Bochs
# machine on either hypervisor (Documentation/testing.rst).
INTEL_UNPROVABLE := lifecycle_stress fuzz_ioctl
check-intel: all
	@UNIT_TESTS="$(UNIT_BINS)" SELFTESTS="$(SELECTED_TESTS)" \
		INTEL_SELFTESTS="$(filter-out $(addprefix $(BUILD)/tests/,$(INTEL_UNPROVABLE)),$(SELECTED_TESTS))" \
		tools/check "minikvm-vmx kvm-intel minikvm-vmx-shadow kvm-intel-shadow"

# The main job: `minikvm run` boots Linux with 2 vCPUs and a disk in the test machine.
demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all >/dev/null
	@tools/demo

# Side-by-side benchmark of minikvm and the reference KVM (not part of check).
bench: all
	@BENCH_PROGRAMS="$(BENCH_BINS)" tools/bench

# Fuzzing (check runs fuzz-lib for 20 s): libFuzzer with ASan and UBSan on the decoder
# and the ALU (tests/fuzz), FUZZ_TIME seconds each, then tests/fuzz_ioctl
# (FUZZ_SECONDS per case) and tests/fuzz_guest (FUZZ_SECONDS for its emulator
# cases, FUZZ_SEEDS random-byte guests) inside the test machine on
# FUZZ_MODULE.  FUZZ_SEED=N replays a case's seed.  tests/unit/fuzz_targets_test
# runs the libFuzzer targets on fixed inputs in check.
FUZZ_CC ?= clang
FUZZ_TIME ?= 300
FUZZ_SECONDS ?= 300
FUZZ_SEEDS ?= 1000
FUZZ_MODULE ?= minikvm
FUZZ_SEED ?=
FUZZ_TARGETS := decode alu
FUZZ_BINS := $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
FUZZ_TARGET_SRCS := $(addprefix tests/fuzz/,$(addsuffix .c,$(FUZZ_TARGETS)))
FUZZ_CFLAGS := -g -O1 -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DFUZZ_LIBFUZZER \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude
# libFuzzer options per target: the longest input worth trying.
FUZZ_OPTS_decode := -max_len=24 -dict=tests/fuzz/decode.dict
FUZZ_OPTS_alu := -max_len=25
# fuzz_ioctl's 3 cases take FUZZ_SECONDS each, fuzz_guest's emulator cases FUZZ_SECONDS
# together and its random bytes up to 600 s; then setup, checks and the boot.
FUZZ_VM_TIMEOUT = $(shell echo $$((4 * $(FUZZ_SECONDS) + 1500)))

.PHONY: fuzz fuzz-build fuzz-lib fuzz-vm

fuzz: fuzz-lib fuzz-vm

fuzz-build: $(FUZZ_BINS)

$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(SHARED_SRCS) $(wildcard include/minikvm/*.h)
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { echo "make fuzz: '$(FUZZ_CC)' not found;" \
		"it needs clang with libFuzzer and the sanitizers (Debian: apt-get install" \
		"clang libclang-rt-14-dev), or FUZZ_CC=<a clang>" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(SHARED_SRCS) || { echo "make fuzz: $(FUZZ_CC)" \
		"cannot build a libFuzzer program; is libclang-rt-14-dev (libFuzzer and the" \
		"sanitizer runtimes) installed?" >&2; exit 1; }

# The corpus grows in build/fuzz/corpus/TARGET from run to run; an input that
# breaks a property is saved as build/fuzz/crashes/TARGET-crash-*: replay it
# with build/fuzz/TARGET FILE.
fuzz-lib: $(FUZZ_BINS)
	@failed=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$t $(BUILD)/fuzz/crashes || exit 1; \
		echo "# libFuzzer: $$t for $(FUZZ_TIME) s"; \
		opts=; \
		case $$t in \
		decode) opts="$(FUZZ_OPTS_decode)" ;; \
		alu) opts="$(FUZZ_OPTS_alu)" ;; \
		esac; \
		if $(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 $$opts \
			-artifact_prefix=$(BUILD)/fuzz/crashes/$$t- $(BUILD)/fuzz/corpus/$$t; then \
			echo "ok - libFuzzer $$t"; \
		else \
			echo "not ok - libFuzzer $$t: the input is saved above"; failed=1; \
		fi; \
	done; exit $$failed

fuzz-vm: all
	@tools/testvm --module $(FUZZ_MODULE) --timeout $(FUZZ_VM_TIMEOUT) $(TESTVM_OPTS) -- \
		env FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEEDS=$(FUZZ_SEEDS) \
		$(if $(FUZZ_SEED),FUZZ_SEED=$(FUZZ_SEED)) \
		tools/run-tests --label fuzz-$(FUZZ_MODULE) --timeout $(FUZZ_VM_TIMEOUT) \
		$(BUILD)/tests/fuzz_ioctl $(BUILD)/tests/fuzz_guest

# The unit test runs the fuzz targets on fixed inputs, without libFuzzer.
$(BUILD)/unit/fuzz_targets_test: tests/unit/fuzz_targets_test.c $(FUZZ_TARGET_SRCS) \
		tests/fuzz/fuzz.h $(TEST_LIB_OBJS) $(SHARED_OBJS) $(TEST_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) -Iinclude -o $@ $< $(FUZZ_TARGET_SRCS) $(TEST_LIB_OBJS) $(SHARED_OBJS)

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/tools/testvm-fault clean 2>/dev/null
	rm -rf $(BUILD) vmm/minikvm

# The runner self-test's deliberately faulting module.
tools/testvm-fault/testvm_fault.ko: tools/testvm-fault/testvm_fault.c
	$(MAKE) -C $(KDIR) M=$(CURDIR)/tools/testvm-fault modules
