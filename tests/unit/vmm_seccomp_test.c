// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's seccomp filter (vmm/seccomp.c), installed for real in a child
 * process: the calls the VMM makes at run time go through, and every other
 * call, a forbidden ioctl request or mmap protection, a signal other than
 * the kick, another ABI, and a call from a thread that existed before the
 * filter, kills the process with SIGSYS.
 */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/kvm.h>

#include "harness.h"
#include "vmm.h"

static int pipefd[2];
static pid_t parent_pid, self_tid;
static volatile sig_atomic_t kicked;

static void on_kick(int sig)
{
	(void)sig;
	kicked = 1;
}

/* Run @fn in a child under the filter; return the child's wait status. */
static int confined(void (*fn)(void))
{
	struct rlimit no_core = { 0, 0 };
	int status;
	pid_t pid;

	TEST_ASSERT(!pipe(pipefd), "pipe: %s", strerror(errno));
	parent_pid = getpid();
	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		setrlimit(RLIMIT_CORE, &no_core);	/* SIGSYS would dump core */
		signal(SIG_KICK, on_kick);
		self_tid = gettid();
		if (seccomp_confine())
			_exit(100);
		fn();
		_exit(0);
	}
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	TEST_ASSERT(!(WIFEXITED(status) && WEXITSTATUS(status) == 100),
		    "seccomp_confine() failed in the child");
	return status;
}

static void assert_killed(int status)
{
	TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
		    "wait status %#x: expected death by SIGSYS", status);
}

static void assert_exited_0(int status)
{
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "wait status %#x: expected exit status 0%s", status,
		    WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS ?
		    " (killed by the filter)" : "");
}

/* What the VMM does while the guest runs, on descriptors it already has. */
static void runtime_calls(void)
{
	struct timespec ts;
	uint8_t buf[64];
	uint32_t word = 0;
	void *p;
	char *m;

	if (write(pipefd[1], "x", 1) != 1 || read(pipefd[0], buf, 1) != 1)
		_exit(1);
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) || syscall(SYS_time, NULL) < 0)
		_exit(2);
	if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0)
		_exit(3);
	if (getrandom(buf, sizeof(buf), 0) != sizeof(buf))
		_exit(4);
	p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p, 4096, PROT_READ) ||
	    madvise(p, 1 << 20, MADV_DONTNEED) || munmap(p, 1 << 20))
		_exit(5);
	m = malloc(8 << 20);		/* mmap underneath */
	if (!m)
		_exit(6);
	memset(m, 1, 8 << 20);
	free(m);
	/* Allowed requests reach the kernel, which refuses them on a pipe. */
	if (ioctl(pipefd[0], KVM_RUN, 0) != -1 || ioctl(pipefd[0], KVM_IRQ_LINE, buf) != -1 ||
	    ioctl(pipefd[0], TCGETS, buf) != -1)
		_exit(7);
	/* The kick, as pthread_kill() sends it, and the return from its handler. */
	if (syscall(SYS_tgkill, getpid(), self_tid, SIG_KICK) || !kicked)
		_exit(8);
}

TEST(runtime_calls_are_allowed)
{
	assert_exited_0(confined(runtime_calls));
}

static void open_root(void)
{
	open("/", O_RDONLY);
}

TEST(open_kills)
{
	assert_killed(confined(open_root));
}

static void create_vm(void)
{
	ioctl(pipefd[0], KVM_CREATE_VM, 0);
}

TEST(other_ioctl_request_kills)
{
	assert_killed(confined(create_vm));
}

static void set_memory_region(void)
{
	struct kvm_userspace_memory_region r = { 0 };

	ioctl(pipefd[0], KVM_SET_USER_MEMORY_REGION, &r);
}

TEST(memslot_ioctl_kills)
{
	assert_killed(confined(set_memory_region));
}

static void map_exec(void)
{
	mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

TEST(executable_mmap_kills)
{
	assert_killed(confined(map_exec));
}

static void protect_exec(void)
{
	static uint8_t page[4096] __attribute__((aligned(4096)));

	mprotect(page, sizeof(page), PROT_READ | PROT_WRITE | PROT_EXEC);
}

TEST(executable_mprotect_kills)
{
	assert_killed(confined(protect_exec));
}

static void signal_other(void)
{
	syscall(SYS_tgkill, getpid(), self_tid, SIGTERM);
}

TEST(tgkill_other_signal_kills)
{
	assert_killed(confined(signal_other));
}

static void kick_parent(void)
{
	syscall(SYS_tgkill, parent_pid, parent_pid, SIG_KICK);
}

TEST(tgkill_other_process_kills)
{
	assert_killed(confined(kick_parent));
}

/* The x32 ABI: same audit arch, number with __X32_SYSCALL_BIT (getpid here). */
static void x32_call(void)
{
	syscall(0x40000000 | SYS_getpid);
}

TEST(x32_abi_kills)
{
	assert_killed(confined(x32_call));
}

/*
 * The i386 ABI through int 0x80: its 20 is getpid, but 20 is also x86-64's
 * writev, which the filter allows; only the architecture check stops it.
 */
static void i386_call(void)
{
	long ret;

	asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "rcx", "r8", "r9", "r10", "r11",
		     "memory");
	(void)ret;
}

TEST(i386_abi_kills)
{
	int status = confined(i386_call);

	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV)
		SKIP("this kernel has no i386 system call entry (IA32_EMULATION)");
	assert_killed(status);
}

static void *late_opener(void *arg)
{
	char c;

	(void)arg;
	if (read(pipefd[0], &c, 1) == 1)
		open("/", O_RDONLY);
	return NULL;
}

/* A thread that exists before the filter gets it too (SECCOMP_FILTER_FLAG_TSYNC). */
TEST(threads_started_before_are_covered)
{
	struct rlimit no_core = { 0, 0 };
	int status;
	pid_t pid;

	TEST_ASSERT(!pipe(pipefd), "pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		pthread_t t;

		setrlimit(RLIMIT_CORE, &no_core);
		if (pthread_create(&t, NULL, late_opener, NULL))
			_exit(101);
		if (seccomp_confine())
			_exit(100);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(102);
		pthread_join(t, NULL);
		_exit(0);
	}
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	assert_killed(status);
}

/* The filter comes with no_new_privs, and it is the process's only one. */
TEST(no_new_privs_and_one_filter)
{
	char path[64], line[128];
	int nnp = -1, mode = -1, filters = -1, status;
	pid_t pid;
	FILE *f;

	TEST_ASSERT(!pipe(pipefd), "pipe: %s", strerror(errno));
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		char c;

		close(pipefd[1]);
		if (seccomp_confine())
			_exit(100);
		if (read(pipefd[0], &c, 1) != 0)
			_exit(1);	/* waits for the parent's close */
		_exit(0);
	}
	close(pipefd[0]);
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	for (int tries = 0; tries < 1000 && filters != 1; tries++) {
		f = fopen(path, "r");
		TEST_ASSERT(f, "%s: %s", path, strerror(errno));
		while (fgets(line, sizeof(line), f)) {
			sscanf(line, "NoNewPrivs: %d", &nnp);
			sscanf(line, "Seccomp: %d", &mode);
			sscanf(line, "Seccomp_filters: %d", &filters);
		}
		fclose(f);
		usleep(1000);
	}
	close(pipefd[1]);
	TEST_ASSERT_EQ(waitpid(pid, &status, 0), pid);
	assert_exited_0(status);
	TEST_ASSERT_EQ(nnp, 1);
	TEST_ASSERT_EQ(mode, 2);		/* SECCOMP_MODE_FILTER */
	TEST_ASSERT_EQ(filters, 1);
}

/* Every jump lands inside the program, which ends in a return. */
TEST(program_is_well_formed)
{
	struct sock_filter insn[SECCOMP_MAX_INSNS];
	unsigned int n = seccomp_build_filter(insn, SECCOMP_MAX_INSNS, 1234);

	TEST_ASSERT(n > 0 && n <= SECCOMP_MAX_INSNS, "%u instructions", n);
	test_log("%u instructions", n);
	for (unsigned int i = 0; i < n; i++) {
		if (BPF_CLASS(insn[i].code) != BPF_JMP)
			continue;
		TEST_ASSERT(i + 1 + insn[i].jt < n && i + 1 + insn[i].jf < n,
			    "instruction %u jumps out (jt %u, jf %u of %u)", i, insn[i].jt,
			    insn[i].jf, n);
	}
	TEST_ASSERT_EQ(BPF_CLASS(insn[n - 1].code), BPF_RET);
	TEST_ASSERT_EQ(seccomp_build_filter(insn, 10, 1234), 0);
}
