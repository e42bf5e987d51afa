// SPDX-License-Identifier: GPL-2.0
/*
 * IA32_TSC_AUX (MSR 0xc0000103), what RDTSCP returns in ECX and RDPID in
 * its register.  Neither instruction exits, so the hypervisor must put the
 * guest's value in the CPU before each entry and give the host's back
 * before the vCPU thread returns to userspace: Linux keeps (node << 12) |
 * cpu there for its own RDTSCP/RDPID users.  The guest's RDMSR/WRMSR of
 * it need RDTSCP or RDPID in its CPUID; userspace may always read and
 * write it; bits 63:32 are dropped, or #GP for a guest whose CPUID vendor
 * is Intel (KVM 6.1, __kvm_set_msr()).
 */
#include <cpuid.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"

#define MSR_TSC_AUX		0xc0000103
#define GP_VECTOR		13
#define EXT1_EDX_RDTSCP		(1u << 27)	/* CPUID 0x80000001 EDX */
#define LEAF7_ECX_RDPID		(1u << 22)	/* CPUID 7.0 ECX */

/* RDTSCP: ECX is TSC_AUX.  Used by the guest and by the test process alike. */
static inline uint32_t rdtscp_aux(void)
{
	uint32_t lo, hi, aux;

	asm volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	return aux;
}

/* RDPID %rax (F3 0F C7 /7), spelled out for older assemblers. */
static inline uint64_t rdpid(void)
{
	uint64_t v;

	asm volatile(".byte 0xf3, 0x0f, 0xc7, 0xf8" : "=a"(v));
	return v;
}

static bool host_cpuid_bit(uint32_t leaf, uint32_t sub, int reg, uint32_t bit)
{
	uint32_t r[4];

	if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3]))
		return false;
	return r[reg] & bit;
}

static bool host_has_rdtscp(void)
{
	return host_cpuid_bit(0x80000001, 0, 3, EXT1_EDX_RDTSCP);
}

static bool host_has_rdpid(void)
{
	return host_cpuid_bit(7, 0, 2, LEAF7_ECX_RDPID);
}

static void need_rdtscp(void)
{
	if (!host_has_rdtscp())
		SKIP("the test machine's CPU has no RDTSCP (CPUID 0x80000001:EDX[27])");
}

static int ncpus(void)
{
	return sysconf(_SC_NPROCESSORS_ONLN);
}

static void unpin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (int i = 0; i < ncpus(); i++)
		CPU_SET(i, &set);
	TEST_ASSERT(sched_setaffinity(0, sizeof(set), &set) == 0, "unpin: %s", strerror(errno));
}

/*
 * The test process's own view, pinned to @cpu: Linux's value, (node << 12)
 * | cpu, with node 0 here; sched_getcpu() does not use TSC_AUX (the vDSO
 * reads the CPU number with LSL where there is no RDPID), so it is an
 * independent witness.
 */
static void assert_host_aux(int cpu)
{
	uint32_t aux = rdtscp_aux();

	TEST_ASSERT_EQ(sched_getcpu(), cpu);
	TEST_ASSERT(aux == (uint32_t)cpu,
		    "the test process's RDTSCP on CPU %d gave ECX %#x: a guest's TSC_AUX "
		    "was left in the CPU on return to userspace", cpu, aux);
}

/* Set (or clear) RDTSCP and RDPID in the vCPU's CPUID. */
static void set_guest_features(struct kvm_vcpu *vcpu, bool rdtscp, bool rdpid)
{
	struct kvm_cpuid_entry2 *ext = cpuid_find(vcpu->vm->cpuid, 0x80000001, 0);
	struct kvm_cpuid_entry2 *l7 = cpuid_find(vcpu->vm->cpuid, 7, 0);

	TEST_ASSERT(ext, "no CPUID leaf 0x80000001");
	ext->edx = rdtscp ? ext->edx | EXT1_EDX_RDTSCP : ext->edx & ~EXT1_EDX_RDTSCP;
	if (l7)
		l7->ecx = rdpid ? l7->ecx | LEAF7_ECX_RDPID : l7->ecx & ~LEAF7_ECX_RDPID;
	else
		TEST_ASSERT(!rdpid, "no CPUID leaf 7 to offer RDPID in");
	vcpu_set_cpuid(vcpu, vcpu->vm->cpuid);
}

/* Leaf 0's vendor string, 12 characters. */
static void set_guest_vendor(struct kvm_vcpu *vcpu, const char *vendor)
{
	struct kvm_cpuid_entry2 *l0 = cpuid_find(vcpu->vm->cpuid, 0, 0);

	TEST_ASSERT(l0, "no CPUID leaf 0");
	memcpy(&l0->ebx, vendor, 4);
	memcpy(&l0->edx, vendor + 4, 4);
	memcpy(&l0->ecx, vendor + 8, 4);
	vcpu_set_cpuid(vcpu, vcpu->vm->cpuid);
}

TEST(supported_cpuid_and_msr_list)
{
	int kvm = open_kvm();
	struct kvm_cpuid2 *cpuid = kvm_get_supported_cpuid(kvm);
	struct kvm_cpuid_entry2 *ext = cpuid_find(cpuid, 0x80000001, 0);
	struct kvm_cpuid_entry2 *l7 = cpuid_find(cpuid, 7, 0);
	struct kvm_msr_list *list = kvm_get_msr_list(kvm, KVM_GET_MSR_INDEX_LIST);
	bool listed = false;

	if (!host_has_rdtscp() && !host_has_rdpid())
		SKIP("the test machine's CPU has neither RDTSCP nor RDPID");
	TEST_ASSERT(ext, "no CPUID leaf 0x80000001");
	if (host_has_rdtscp())
		TEST_ASSERT(ext->edx & EXT1_EDX_RDTSCP,
			    "RDTSCP (0x80000001:EDX[27]) offered, edx %#x", ext->edx);
	if (host_has_rdpid())
		TEST_ASSERT(l7 && (l7->ecx & LEAF7_ECX_RDPID), "RDPID (7.0:ECX[22]) offered");
	for (uint32_t i = 0; i < list->nmsrs; i++)
		listed |= list->indices[i] == MSR_TSC_AUX;
	TEST_ASSERT(listed, "MSR_TSC_AUX is in KVM_GET_MSR_INDEX_LIST (%u MSRs)", list->nmsrs);
	free(list);
	free(cpuid);
}

static void guest_rdtscp_once(void)
{
	GUEST_SYNC_ARGS(1, rdtscp_aux(), 0, 0);
}

/*
 * A new vCPU's TSC_AUX is 0, and that is what its RDTSCP returns even on
 * CPU 1, where the host's own value is 1: RDTSCP does not exit, so a
 * hypervisor that leaves TSC_AUX alone shows the guest the host's.
 */
TEST(fresh_vcpu_rdtscp_is_not_the_hosts)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_rdtscp_once);
	int cpu = ncpus() >= 2 ? 1 : 0;
	struct ucall uc;

	need_rdtscp();
	pin_to_cpu(cpu);
	assert_host_aux(cpu);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] == 0, "a new vCPU's RDTSCP on CPU %d gave ECX %#" PRIx64
		    ", expected 0", cpu, uc.args[1]);
	assert_host_aux(cpu);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0);
	vm_free(vm);
}

/* Report what RDTSCP and RDMSR say, for ever. */
static void guest_report_aux(void)
{
	for (;;)
		GUEST_SYNC_ARGS(1, rdtscp_aux(), guest_rdmsr(MSR_TSC_AUX), 0);
}

/*
 * The value userspace sets is what the guest's RDTSCP returns, on either
 * CPU.  On CPU 1 the host's own value is 1, so a guest that saw the host's
 * TSC_AUX would report 1; 0 there checks that "same as the host's" is not
 * taken for "nothing to load".
 */
TEST(host_value_seen_by_guest_rdtscp)
{
	static const uint64_t values[] = { 0x1234, 0, 0xffffffff, 0x1234 };
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_report_aux);
	int n = ncpus() >= 2 ? 2 : 1;
	struct ucall uc;

	need_rdtscp();
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0);
	for (int cpu = n - 1; cpu >= 0; cpu--) {
		pin_to_cpu(cpu);
		for (unsigned int i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
			vcpu_set_msr(vcpu, MSR_TSC_AUX, values[i]);
			TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), values[i]);
			TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
			TEST_ASSERT(uc.args[1] == values[i],
				    "guest RDTSCP on CPU %d gave ECX %#" PRIx64 ", expected %#" PRIx64,
				    cpu, uc.args[1], values[i]);
			TEST_ASSERT_EQ(uc.args[2], values[i]);
			assert_host_aux(cpu);
		}
	}
	if (n < 2)
		test_log("only one CPU: the host's value was 0 like the guest's first");
	vm_free(vm);
}

static void guest_write_aux(uint64_t value)
{
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_TSC_AUX, value));
	GUEST_SYNC_ARGS(1, rdtscp_aux(), guest_rdmsr(MSR_TSC_AUX), 0);
	GUEST_SYNC_ARGS(2, rdtscp_aux(), guest_rdmsr(MSR_TSC_AUX), 0);
}

/* The guest's own WRMSR: RDTSCP and RDMSR in the guest, and KVM_GET_MSRS, see it. */
TEST(guest_wrmsr_then_rdtscp)
{
	int n = ncpus() >= 2 ? 2 : 1;

	need_rdtscp();
	for (int cpu = n - 1; cpu >= 0; cpu--) {
		struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
		struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_write_aux);
		struct ucall uc;

		vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
		vcpu_args_set(vcpu, 1, 0x5678);
		pin_to_cpu(cpu);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], 0x5678);
		TEST_ASSERT_EQ(uc.args[2], 0x5678);
		assert_host_aux(cpu);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0x5678);
		/* Again after the host ran its own RDTSCP in between. */
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], 0x5678);
		TEST_ASSERT_EQ(uc.args[2], 0x5678);
		assert_host_aux(cpu);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
		TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0x5678);
		vm_free(vm);
		assert_host_aux(cpu);
	}
}

/* Set by the host (and synced into the guest) before each run. */
static uint64_t expected_aux;

/*
 * Check RDTSCP many times per run, with exits the kernel handles itself
 * (CPUID) in between, then report with a PIO exit to userspace.
 */
static void guest_aux_loop(uint64_t spins)
{
	uint32_t a, b, c, d;

	for (;;) {
		uint64_t want = *(volatile uint64_t *)&expected_aux;

		for (uint64_t i = 0; i < spins; i++) {
			uint32_t aux = rdtscp_aux();

			if (aux != want)
				GUEST_ASSERT_EQ(aux, want);
			if (!(i & 255))
				guest_cpuid(0, 0, &a, &b, &c, &d);
		}
		GUEST_SYNC_ARGS(1, rdtscp_aux(), guest_rdmsr(MSR_TSC_AUX), 0);
	}
}

/* Many exits to userspace and back: the guest's value each time, the host's in between. */
TEST(survives_many_exits)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_aux_loop);
	int cpu = ncpus() >= 2 ? 1 : 0;
	struct ucall uc;

	need_rdtscp();
	pin_to_cpu(cpu);
	vcpu_args_set(vcpu, 1, 16);
	for (int i = 0; i < 600; i++) {
		if (i % 100 == 0) {
			expected_aux = 0x10000 + i;
			sync_global_to_guest(vm, expected_aux);
			vcpu_set_msr(vcpu, MSR_TSC_AUX, expected_aux);
		}
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], expected_aux);
		TEST_ASSERT_EQ(uc.args[2], expected_aux);
		assert_host_aux(cpu);
	}
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), expected_aux);
	vm_free(vm);
}

/* What a checker process saw, in memory shared with the test. */
struct checker_report {
	volatile uint64_t loops;
	volatile uint64_t bad;
	volatile uint32_t bad_value;
};

/*
 * A process pinned to @cpu that executes RDTSCP without end and counts the
 * answers that are not @cpu.  It competes with the vCPU thread, so that
 * thread is preempted inside KVM_RUN and this process returns to userspace
 * right after it on the same CPU: it must find the host's value there.
 */
static pid_t start_checker(int cpu, struct checker_report *rep)
{
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		cpu_set_t set;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			_exit(1);
		for (;;) {
			uint32_t aux = rdtscp_aux();

			rep->loops++;
			if (aux != (uint32_t)cpu) {
				rep->bad++;
				rep->bad_value = aux;
			}
		}
	}
	return pid;
}

/* How often the test was preempted (inside KVM_RUN, mostly), for the log. */
static void log_context_switches(void)
{
	char line[128];
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "ctxt_switches"))
			test_log("%.*s", (int)strcspn(line, "\n"), line);
	fclose(f);
}

/*
 * The vCPU thread moves between the two CPUs: pinned alternately, and now
 * and then free to be moved by the scheduler inside KVM_RUN, with a process
 * on each CPU that competes with it and checks the host's value.
 */
TEST_TIMEOUT(survives_cpu_migration, 240)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_aux_loop);
	struct checker_report *rep;
	pid_t checkers[2];
	struct ucall uc;

	need_rdtscp();
	if (ncpus() < 2)
		SKIP("needs two CPUs");
	rep = mmap(NULL, 2 * sizeof(*rep), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		   -1, 0);
	TEST_ASSERT(rep != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(rep, 0, 2 * sizeof(*rep));
	for (int c = 0; c < 2; c++)
		checkers[c] = start_checker(c, &rep[c]);
	vcpu_args_set(vcpu, 1, 200000);
	for (int i = 0; i < 30; i++) {
		bool free_run = i % 3 == 2;
		uint32_t aux;

		if (i % 10 == 0) {
			expected_aux = 0xabc000 + i;
			sync_global_to_guest(vm, expected_aux);
			vcpu_set_msr(vcpu, MSR_TSC_AUX, expected_aux);
		}
		if (free_run)
			unpin();
		else
			pin_to_cpu(i % 2);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], expected_aux);
		TEST_ASSERT_EQ(uc.args[2], expected_aux);
		if (free_run) {
			aux = rdtscp_aux();
			TEST_ASSERT(aux < 2, "the test process's RDTSCP gave ECX %#x", aux);
		} else {
			assert_host_aux(i % 2);
		}
	}
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), expected_aux);
	vm_free(vm);
	log_context_switches();
	for (int c = 0; c < 2; c++) {
		kill(checkers[c], SIGKILL);
		waitpid(checkers[c], NULL, 0);
		test_log("checker on CPU %d: %" PRIu64 " RDTSCPs", c, rep[c].loops);
		TEST_ASSERT(rep[c].loops > 0, "the checker on CPU %d never ran", c);
		TEST_ASSERT(!rep[c].bad, "a process on CPU %d read TSC_AUX %#x (%" PRIu64
			    " times): a guest's value in userspace", c, rep[c].bad_value, rep[c].bad);
	}
}

static void guest_rdpid(void)
{
	GUEST_SYNC_ARGS(1, rdpid(), rdtscp_aux(), 0);
	GUEST_ASSERT(!guest_wrmsr_faults(MSR_TSC_AUX, 0x8765));
	GUEST_SYNC_ARGS(2, rdpid(), rdtscp_aux(), 0);
}

TEST(rdpid)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int cpu = ncpus() >= 2 ? 1 : 0;
	struct ucall uc;

	if (!host_has_rdpid())
		SKIP("the test machine's CPU has no RDPID (CPUID 7.0:ECX[22])");
	vm = vm_create(VM_MODE_LONG64);
	vcpu = vm_vcpu_add(vm, 0, guest_rdpid);
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	set_guest_features(vcpu, host_has_rdtscp(), true);
	pin_to_cpu(cpu);
	vcpu_set_msr(vcpu, MSR_TSC_AUX, 0x4321);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x4321);
	if (host_has_rdtscp())
		TEST_ASSERT_EQ(uc.args[2], 0x4321);
	assert_host_aux(cpu);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0x8765);
	assert_host_aux(cpu);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0x8765);
	vm_free(vm);
}

static void guest_msr_access(void)
{
	bool rd = guest_rdmsr_faults(MSR_TSC_AUX);
	bool wr = guest_wrmsr_faults(MSR_TSC_AUX, 0x2222);

	GUEST_SYNC_ARGS(1, rd, wr, 0);
}

/* Without RDTSCP or RDPID in its CPUID the guest may not touch the MSR; userspace may. */
TEST(gp_without_rdtscp_and_rdpid)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_msr_access);
	struct ucall uc;

	need_rdtscp();
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	set_guest_features(vcpu, false, false);
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_TSC_AUX, 0x1111), 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0x1111);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1], "RDMSR TSC_AUX without RDTSCP/RDPID in CPUID #GPs");
	TEST_ASSERT(uc.args[2], "WRMSR TSC_AUX without RDTSCP/RDPID in CPUID #GPs");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0x1111);
	vm_free(vm);
}

/* Either feature is enough: RDPID alone (even on a CPU without it) allows the MSR. */
TEST(msr_allowed_with_rdpid_alone)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_msr_access);
	struct ucall uc;

	need_rdtscp();
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	set_guest_features(vcpu, false, true);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(!uc.args[1], "RDMSR TSC_AUX with RDPID in CPUID does not #GP");
	TEST_ASSERT(!uc.args[2], "WRMSR TSC_AUX with RDPID in CPUID does not #GP");
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), 0x2222);
	vm_free(vm);
}

static void guest_high_bits(uint64_t value)
{
	bool faulted = guest_wrmsr_faults(MSR_TSC_AUX, value);

	GUEST_SYNC_ARGS(1, faulted, guest_rdmsr(MSR_TSC_AUX), rdtscp_aux());
}

/*
 * Run guest_high_bits() with @vendor (NULL: the host's) after userspace set
 * 0x77: the WRMSR of a value with bits 63:32 set must #GP (@gp) or be
 * taken as its low 32 bits, and KVM_SET_MSRS follows the same rule.
 */
static void high_bits_case(const char *vendor, bool gp)
{
	const uint64_t value = 0xabcd000000005678ULL;
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_high_bits);
	uint64_t left = gp ? 0x77 : 0x5678;
	struct ucall uc;

	need_rdtscp();
	vm_install_exception_handler(vm, GP_VECTOR, guest_msr_gp_handler);
	if (vendor)
		set_guest_vendor(vcpu, vendor);
	vcpu_set_msr(vcpu, MSR_TSC_AUX, 0x77);
	vcpu_args_set(vcpu, 1, value);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] == gp, "WRMSR TSC_AUX %#" PRIx64 " with vendor %s: #GP %d, "
		    "expected %d", value, vendor ? vendor : "(host's)", (int)uc.args[1], gp);
	TEST_ASSERT_EQ(uc.args[2], left);
	TEST_ASSERT_EQ(uc.args[3], left);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), left);
	/* Userspace is held to the same rule. */
	TEST_ASSERT_EQ(__vcpu_set_msr(vcpu, MSR_TSC_AUX, 0xffffffff00000009ULL), !gp);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_TSC_AUX), gp ? left : 9);
	vm_free(vm);
}

/*
 * An AMD guest's bits 63:32 are dropped, as AMD CPUs ignore them: with the
 * supported CPUID on an AMD host, and on an Intel host for a guest whose
 * CPUID says AMD (KVM goes by the guest's vendor).
 */
TEST(amd_guest_high_bits_dropped)
{
	int kvm = open_kvm();
	struct kvm_cpuid2 *cpuid = kvm_get_supported_cpuid(kvm);
	struct kvm_cpuid_entry2 *l0 = cpuid_find(cpuid, 0, 0);

	if (host_cpu_is_intel()) {
		high_bits_case("AuthenticAMD", false);
	} else {
		TEST_ASSERT(l0 && !memcmp(&l0->ebx, "Auth", 4), "the supported CPUID is AMD's");
		high_bits_case(NULL, false);
	}
	free(cpuid);
	close(kvm);
}

/* For a guest whose vendor is Intel, bits 63:32 are reserved (SDM). */
TEST(intel_guest_high_bits_gp)
{
	high_bits_case("GenuineIntel", true);
}

/* KVM 6.1 reserves them only for Intel: any other vendor drops them like AMD. */
TEST(other_vendor_high_bits_dropped)
{
	high_bits_case("CentaurHauls", false);
}
