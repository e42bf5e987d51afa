// SPDX-License-Identifier: GPL-2.0
/*
 * vCPUs: creation in each mode, registers, CPUID, MSRs, and running them
 * until a ucall or another exit.
 */
#include <cpuid.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"

extern char guest_return_trampoline[];

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "UNKNOWN", [KVM_EXIT_EXCEPTION] = "EXCEPTION",
	[KVM_EXIT_IO] = "IO", [KVM_EXIT_HYPERCALL] = "HYPERCALL",
	[KVM_EXIT_DEBUG] = "DEBUG", [KVM_EXIT_HLT] = "HLT", [KVM_EXIT_MMIO] = "MMIO",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN", [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
	[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY", [KVM_EXIT_INTR] = "INTR",
	[KVM_EXIT_SET_TPR] = "SET_TPR", [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
	[KVM_EXIT_NMI] = "NMI", [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
	[KVM_EXIT_OSI] = "OSI", [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
	[KVM_EXIT_X86_RDMSR] = "X86_RDMSR", [KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
};

/**
 * exit_reason_str() - the name of a KVM_EXIT_* value
 * @reason: kvm_run->exit_reason
 *
 * Return: a static string.
 */
const char *exit_reason_str(uint32_t reason)
{
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	return "(unnamed)";
}

int __vcpu_ioctl(struct kvm_vcpu *vcpu, unsigned long cmd, void *arg)
{
	return ioctl(vcpu->fd, cmd, arg);
}

/**
 * vcpu_ioctl() - an ioctl on the vCPU fd that must succeed
 * @vcpu: the vCPU
 * @cmd: ioctl number
 * @arg: its argument
 * @name: the ioctl's name, for the failure message
 */
void vcpu_ioctl(struct kvm_vcpu *vcpu, unsigned long cmd, void *arg, const char *name)
{
	int r = __vcpu_ioctl(vcpu, cmd, arg);

	TEST_ASSERT(r >= 0, "%s on vCPU %u failed: %s", name, vcpu->id, strerror(errno));
}

void vcpu_regs_get(struct kvm_vcpu *vcpu, struct kvm_regs *regs)
{
	vcpu_ioctl(vcpu, KVM_GET_REGS, regs, "KVM_GET_REGS");
}

void vcpu_regs_set(struct kvm_vcpu *vcpu, struct kvm_regs *regs)
{
	vcpu_ioctl(vcpu, KVM_SET_REGS, regs, "KVM_SET_REGS");
}

void vcpu_sregs_get(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs)
{
	vcpu_ioctl(vcpu, KVM_GET_SREGS, sregs, "KVM_GET_SREGS");
}

void vcpu_sregs_set(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs)
{
	vcpu_ioctl(vcpu, KVM_SET_SREGS, sregs, "KVM_SET_SREGS");
}

/**
 * kvm_get_supported_cpuid() - KVM_GET_SUPPORTED_CPUID, sized as needed
 * @kvm_fd: /dev/kvm
 *
 * Return: a malloc'd table.
 */
struct kvm_cpuid2 *kvm_get_supported_cpuid(int kvm_fd)
{
	for (int nent = 64;; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));

		TEST_ASSERT(c, "out of memory");
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		TEST_ASSERT(errno == E2BIG && nent < 4096,
			    "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(c);
	}
}

/**
 * cpuid_find() - an entry of a CPUID table
 * @cpuid: the table
 * @fn: leaf (EAX)
 * @index: subleaf (ECX), ignored for leaves without subleaves
 *
 * Return: the entry, or NULL.
 */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *cpuid, uint32_t fn, uint32_t index)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

void vcpu_set_cpuid(struct kvm_vcpu *vcpu, struct kvm_cpuid2 *cpuid)
{
	vcpu_ioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
}

/**
 * vcpu_get_msr() - read one MSR with KVM_GET_MSRS
 * @vcpu: the vCPU
 * @index: MSR number
 *
 * Return: its value; the test fails when KVM does not know the MSR.
 */
uint64_t vcpu_get_msr(struct kvm_vcpu *vcpu, uint32_t index)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = index };
	int r = __vcpu_ioctl(vcpu, KVM_GET_MSRS, &m);

	TEST_ASSERT(r == 1, "KVM_GET_MSRS %#x returned %d (%s)", index, r,
		    r < 0 ? strerror(errno) : "MSR not read");
	return m.e.data;
}

/**
 * vcpu_set_msr() - write one MSR with KVM_SET_MSRS
 * @vcpu: the vCPU
 * @index: MSR number
 * @value: value
 */
int __vcpu_set_msr(struct kvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m = { .hdr.nmsrs = 1, .e.index = index, .e.data = value };

	return __vcpu_ioctl(vcpu, KVM_SET_MSRS, &m);
}

struct kvm_msr_list *kvm_get_msr_list(int kvm, unsigned long ioctl_nr)
{
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;

	TEST_ASSERT_ERRNO(ioctl(kvm, ioctl_nr, &probe), E2BIG);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	TEST_ASSERT(list, "out of memory");
	list->nmsrs = probe.nmsrs;
	TEST_ASSERT_EQ(ioctl(kvm, ioctl_nr, list), 0);
	return list;
}

bool host_cpu_is_intel(void)
{
	unsigned int eax, ebx, ecx, edx;

	__cpuid(0, eax, ebx, ecx, edx);
	return ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e;	/* GenuineIntel */
}

void vcpu_set_if_on_intel(struct kvm_vcpu *vcpu)
{
	struct kvm_regs regs;

	if (!host_cpu_is_intel())
		return;
	vcpu_regs_get(vcpu, &regs);
	regs.rflags |= 0x200;
	vcpu_regs_set(vcpu, &regs);
}

void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	TEST_ASSERT(sched_setaffinity(0, sizeof(set), &set) == 0, "pin to CPU %d: %s", cpu,
		    strerror(errno));
	TEST_ASSERT_EQ(sched_getcpu(), cpu);
}

void vcpu_set_msr(struct kvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	int r = __vcpu_set_msr(vcpu, index, value);

	TEST_ASSERT(r == 1, "KVM_SET_MSRS %#x = %#" PRIx64 " returned %d (%s)", index, value, r,
		    r < 0 ? strerror(errno) : "MSR not written");
}

static void vcpu_setup_mode(struct kvm_vcpu *vcpu, uint64_t rip)
{
	struct kvm_vm *vm = vcpu->vm;
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rflags = 2, .rip = rip };
	struct kvm_segment data;

	vcpu_sregs_get(vcpu, &sregs);
	switch (vm->mode) {
	case VM_MODE_REAL:
		sregs.cs.selector = 0;
		sregs.cs.base = 0;
		regs.rsp = 0xfff0;
		break;
	case VM_MODE_PROT32:
		sregs.cr0 |= 1;		/* PE */
		vm_segment(vm, SEL_CODE32, &sregs.cs);
		goto flat_data;
	case VM_MODE_LONG64:
		/* PE, MP, ET, NE, WP, PG; PAE, OSFXSR, OSXMMEXCPT; LME, LMA. */
		sregs.cr0 = 0x80050033;
		sregs.cr3 = vm->pt.root;
		sregs.cr4 = (1 << 5) | (1 << 9) | (1 << 10);
		sregs.efer = (1 << 8) | (1 << 10);
		vm_segment(vm, SEL_CODE64, &sregs.cs);
		vm_segment(vm, SEL_TSS, &sregs.tr);
		sregs.idt.base = vm->idt_gpa;
		sregs.idt.limit = 256 * 16 - 1;
		/* Entry functions return to the trampoline, which reports "done". */
		regs.rsp = vcpu->stack_top - 8;
		*(uint64_t *)gva2hva(vm, regs.rsp) = (uint64_t)guest_return_trampoline;
flat_data:
		vm_segment(vm, SEL_DATA, &data);
		sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
		sregs.gdt.base = vm->gdt_gpa;
		sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
		if (vm->mode == VM_MODE_PROT32)
			regs.rsp = vcpu->stack_top;
		break;
	}
	vcpu_sregs_set(vcpu, &sregs);
	vcpu_regs_set(vcpu, &regs);
}

/**
 * vm_vcpu_add_at() - create a vCPU that starts at @rip in the VM's mode
 * @vm: the VM
 * @id: vCPU id
 * @rip: entry point (a GVA in long mode, CS-relative in real mode)
 *
 * The vCPU gets the supported CPUID (with its APIC id), a stack, and the
 * segment, control and descriptor-table registers of the VM's mode.
 *
 * Return: the vCPU.
 */
struct kvm_vcpu *vm_vcpu_add_at(struct kvm_vm *vm, uint32_t id, uint64_t rip)
{
	struct kvm_vcpu *vcpu = calloc(1, sizeof(*vcpu));
	struct kvm_cpuid_entry2 *leaf1;

	TEST_ASSERT(vcpu && id < sizeof(vm->vcpus) / sizeof(vm->vcpus[0]),
		    "vCPU id %u too large for the library", id);
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	TEST_ASSERT(vcpu->fd >= 0, "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	TEST_ASSERT(vcpu->run != MAP_FAILED, "mmap kvm_run: %s", strerror(errno));
	vm->vcpus[id] = vcpu;

	leaf1 = cpuid_find(vm->cpuid, 1, 0);
	if (leaf1)
		leaf1->ebx = (leaf1->ebx & 0x00ffffff) | (id << 24);
	vcpu_set_cpuid(vcpu, vm->cpuid);

	if (vm->mode != VM_MODE_REAL)
		vcpu->stack_top = vm_alloc_pages(vm, GUEST_STACK_SIZE / PAGE_SIZE) +
				  GUEST_STACK_SIZE;
	vcpu_setup_mode(vcpu, rip);
	return vcpu;
}

struct kvm_vcpu *vm_vcpu_add(struct kvm_vm *vm, uint32_t id, void (*guest_code)(void))
{
	return vm_vcpu_add_at(vm, id, (uint64_t)guest_code);
}

/**
 * vcpu_restart() - start a 64-bit guest function again from its entry
 * @vcpu: the vCPU
 * @guest_code: the function; its arguments are set with vcpu_args_set()
 *
 * The stack starts empty again, with the "done" trampoline as return address.
 */
void vcpu_restart(struct kvm_vcpu *vcpu, void (*guest_code)(void))
{
	struct kvm_regs regs;

	vcpu_regs_get(vcpu, &regs);
	regs.rip = (uint64_t)guest_code;
	regs.rsp = vcpu->stack_top - 8;
	*(uint64_t *)gva2hva(vcpu->vm, regs.rsp) = (uint64_t)guest_return_trampoline;
	vcpu_regs_set(vcpu, &regs);
}

/**
 * vcpu_args_set() - pass up to six integer arguments to a 64-bit entry function
 * @vcpu: the vCPU
 * @n: number of arguments
 * @...: uint64_t values, in RDI, RSI, RDX, RCX, R8, R9 order
 */
void vcpu_args_set(struct kvm_vcpu *vcpu, int n, ...)
{
	struct kvm_regs regs;
	__u64 *slots[] = { &regs.rdi, &regs.rsi, &regs.rdx, &regs.rcx, &regs.r8, &regs.r9 };
	va_list ap;

	TEST_ASSERT(n >= 0 && n <= 6, "at most 6 register arguments");
	vcpu_regs_get(vcpu, &regs);
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		*slots[i] = va_arg(ap, uint64_t);
	va_end(ap);
	vcpu_regs_set(vcpu, &regs);
}

int __vcpu_run(struct kvm_vcpu *vcpu)
{
	return ioctl(vcpu->fd, KVM_RUN, NULL);
}

/**
 * vcpu_run() - KVM_RUN that must return 0
 * @vcpu: the vCPU
 */
void vcpu_run(struct kvm_vcpu *vcpu)
{
	int r = __vcpu_run(vcpu);

	if (r) {
		vcpu_dump(vcpu);
		test_fail(__FILE__, __LINE__, "KVM_RUN succeeds", "KVM_RUN returned %d: %s "
			  "(exit reason %u %s)", r, strerror(errno), vcpu->run->exit_reason,
			  exit_reason_str(vcpu->run->exit_reason));
	}
}

/**
 * vcpu_dump() - print the vCPU's main registers as TAP comments
 * @vcpu: the vCPU
 */
void vcpu_dump(struct kvm_vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (__vcpu_ioctl(vcpu, KVM_GET_REGS, &r) || __vcpu_ioctl(vcpu, KVM_GET_SREGS, &s))
		return;
	test_log("vCPU %u: rip %#llx rsp %#llx rflags %#llx rax %#llx rdi %#llx",
		 vcpu->id, r.rip, r.rsp, r.rflags, r.rax, r.rdi);
	test_log("  cs %#x base %#llx l %u db %u  cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx",
		 s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.cr0, s.cr3, s.cr4, s.efer);
}

/**
 * vcpu_expect_mmio() - run to an MMIO exit and check it; a read gets @value
 * @vcpu: the vCPU
 * @gpa: the address the exit must name
 * @len: its length
 * @write: whether it must be a write
 * @value: what a write must carry, or the data a read returns
 */
void vcpu_expect_mmio(struct kvm_vcpu *vcpu, uint64_t gpa, uint32_t len, bool write,
		      uint64_t value)
{
	struct kvm_run *run = vcpu->run;
	uint64_t data = 0;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_MMIO);
	TEST_ASSERT_EQ(run->mmio.phys_addr, gpa);
	TEST_ASSERT_EQ(run->mmio.len, len);
	TEST_ASSERT_EQ(run->mmio.is_write, write);
	if (write) {
		memcpy(&data, run->mmio.data, len);
		TEST_ASSERT_EQ(data, value);
	} else {
		memcpy(run->mmio.data, &value, len);
	}
}

/**
 * vcpu_assert_exit() - fail unless the last exit has reason @reason
 * @vcpu: the vCPU
 * @reason: KVM_EXIT_*
 */
void vcpu_assert_exit(struct kvm_vcpu *vcpu, uint32_t reason)
{
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	if (run->exit_reason == reason)
		return;
	/* A guest assertion or exception explains more than the exit reason does. */
	if (get_ucall(vcpu, &uc) == UCALL_ABORT || uc.cmd == UCALL_UNHANDLED ||
	    uc.cmd == UCALL_EXCEPTION)
		vcpu_run_ucall_report(vcpu, &uc);
	vcpu_dump(vcpu);
	if (run->exit_reason == KVM_EXIT_IO)
		test_log("io: port %#x size %u dir %s count %u", run->io.port, run->io.size,
			 run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.count);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
		test_log("internal error: suberror %u", run->internal.suberror);
	if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
		test_log("failed entry: reason %#llx",
			 run->fail_entry.hardware_entry_failure_reason);
	test_fail(__FILE__, __LINE__, "exit reason", "expected exit %u (%s), got %u (%s)",
		  reason, exit_reason_str(reason), run->exit_reason,
		  exit_reason_str(run->exit_reason));
}

/**
 * get_ucall() - decode the ucall behind the last exit, if it was one
 * @vcpu: the vCPU
 * @uc: filled in (cmd UCALL_NONE when the exit was not a ucall)
 *
 * Return: uc->cmd.
 */
uint64_t get_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;

	memset(uc, 0, sizeof(*uc));
	if (run->exit_reason != KVM_EXIT_IO || run->io.port != UCALL_PORT ||
	    run->io.direction != KVM_EXIT_IO_OUT)
		return UCALL_NONE;
	vcpu_regs_get(vcpu, &regs);
	memcpy(uc, gva2hva(vcpu->vm, regs.rdi), sizeof(*uc));
	return uc->cmd;
}

static const char *const vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF(old)",
	"#TS", "#NP", "#SS", "#GP", "#PF", "(15)", "#MF", "#AC", "#MC", "#XM",
	"#VE", "#CP",
};

/**
 * vcpu_run_ucall_report() - fail the test with a guest abort or exception
 * @vcpu: the vCPU
 * @uc: a UCALL_ABORT or UCALL_UNHANDLED message
 */
void vcpu_run_ucall_report(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	struct kvm_vm *vm = vcpu->vm;

	if (uc->cmd == UCALL_ABORT) {
		const char *file = gva2hva(vm, uc->args[0]);
		const char *expr = gva2hva(vm, uc->args[2]);

		if (uc->args[5])
			test_fail(file, (int)uc->args[1], expr,
				  "guest assertion failed on vCPU %u: %#" PRIx64 " != %#" PRIx64,
				  vcpu->id, uc->args[3], uc->args[4]);
		test_fail(file, (int)uc->args[1], expr, "guest assertion failed on vCPU %u",
			  vcpu->id);
	}
	if (uc->cmd == UCALL_UNHANDLED) {
		uint64_t v = uc->args[0];

		test_fail(__FILE__, __LINE__, "no unexpected guest exception",
			  "vCPU %u: unexpected exception %s (vector %" PRIu64 ") at rip %#" PRIx64
			  ", error code %#" PRIx64 ", cr2 %#" PRIx64, vcpu->id,
			  v < 32 && vector_names[v] ? vector_names[v] : "interrupt", v,
			  uc->args[1], uc->args[2], uc->args[3]);
	}
	if (uc->cmd == UCALL_EXCEPTION) {
		uint64_t v = uc->args[0];

		test_fail(__FILE__, __LINE__, "no unexpected guest exception",
			  "vCPU %u: exception %s (vector %" PRIu64 ") at rip %#" PRIx64 " cs %#"
			  PRIx64 ", error code %#" PRIx64 ", cr2 %#" PRIx64, vcpu->id,
			  v < 32 && vector_names[v] ? vector_names[v] : "interrupt", v,
			  uc->args[3], uc->args[4], uc->args[1], uc->args[2]);
	}
}

/**
 * ucall_ex_regs() - the guest's saved registers of a UCALL_EXCEPTION
 * @vcpu: the vCPU
 * @uc: the message (guest_exception_report())
 *
 * Return: a host pointer to them in guest memory: changes reach the guest
 * when the handler returns.
 */
struct ex_regs *ucall_ex_regs(struct kvm_vcpu *vcpu, const struct ucall *uc)
{
	TEST_ASSERT_EQ(uc->cmd, UCALL_EXCEPTION);
	return gva2hva(vcpu->vm, uc->args[5]);
}

/**
 * vcpu_run_ucall() - run until the next exit, which must be a ucall
 * @vcpu: the vCPU
 * @uc: the message received
 *
 * Guest assertion failures and unexpected guest exceptions fail the test
 * with their file, line and values.
 *
 * Return: UCALL_SYNC, UCALL_DONE, or UCALL_EXCEPTION from a handler that
 * reports (guest_exception_report()).
 */
uint64_t vcpu_run_ucall(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	vcpu_run(vcpu);
	vcpu_assert_exit(vcpu, KVM_EXIT_IO);
	switch (get_ucall(vcpu, uc)) {
	case UCALL_SYNC:
	case UCALL_DONE:
	case UCALL_EXCEPTION:
		return uc->cmd;
	case UCALL_ABORT:
	case UCALL_UNHANDLED:
		vcpu_run_ucall_report(vcpu, uc);
		break;
	}
	vcpu_dump(vcpu);
	test_fail(__FILE__, __LINE__, "ucall", "port I/O exit on port %#x is not a ucall",
		  vcpu->run->io.port);
}

/**
 * vcpu_run_until_done() - run through SYNC ucalls until the guest is done
 * @vcpu: the vCPU
 */
void vcpu_run_until_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	while (vcpu_run_ucall(vcpu, &uc) != UCALL_DONE)
		if (uc.cmd == UCALL_EXCEPTION)
			vcpu_run_ucall_report(vcpu, &uc);
}

/**
 * vm_create_blob() - a VM whose one vCPU runs a code blob (real or 32-bit mode)
 * @mode: the mode, usually VM_MODE_REAL or VM_MODE_PROT32
 * @start: first byte of the code, e.g. assembled with .code16 in a top-level asm()
 * @end: one past its last byte
 * @vcpu: set to vCPU 0, which starts at the blob (GUEST_CODE16_GPA)
 *
 * Return: the VM.
 */
struct kvm_vm *vm_create_blob(enum vm_mode mode, const void *start, const void *end,
			      struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm = vm_create(mode);

	vm_load_blob(vm, GUEST_CODE16_GPA, start, end);
	*vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	return vm;
}
