// SPDX-License-Identifier: GPL-2.0
/*
 * The vCPU thread moving between physical CPUs, and CPUs going offline and
 * online while a VM exists: the guest must go on unharmed, and its FPU state
 * and the host's must never leak into each other.
 */
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"

#define GUEST_XMM 0x1122334455667788ULL
#define HOST_XMM 0xdeadbeefcafef00dULL
#define ROUNDS 16

/*
 * Keeps a value in XMM15 across many exits and checks it each time, also
 * while spinning long enough for the host to preempt the vCPU thread
 * inside KVM_RUN.
 */
static void guest_fpu_loop(void)
{
	uint64_t v = GUEST_XMM;

	asm volatile("movq %0, %%xmm15" :: "r"(v) : "xmm15");
	for (;;) {
		GUEST_SYNC(1);
		for (int i = 0; i < 200000; i++) {
			asm volatile("movq %%xmm15, %0" : "=r"(v));
			GUEST_ASSERT_EQ(v, GUEST_XMM);
		}
	}
}

/* A process that competes for the CPUs, so the vCPU thread gets preempted. */
static pid_t start_spinner(void)
{
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (pid == 0) {
		uint64_t x = 0;

		/* Its own FPU state too, so a mix-up shows. */
		asm volatile("movq %0, %%xmm15" :: "r"(0x5555555555555555ULL) : "xmm15");
		for (;;)
			asm volatile("addq $1, %0; pause" : "+r"(x));
	}
	return pid;
}

static void run_round(struct kvm_vcpu *vcpu)
{
	struct ucall uc;
	uint64_t host = HOST_XMM;

	/* Host FPU state of our own: KVM_RUN must give it back untouched. */
	asm volatile("movq %0, %%xmm15" :: "r"(host) : "xmm15");
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	asm volatile("movq %%xmm15, %0" : "=r"(host));
	TEST_ASSERT_EQ(host, HOST_XMM);
}

TEST(vcpu_thread_moves_between_cpus)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_fpu_loop);
	int ncpus = sysconf(_SC_NPROCESSORS_ONLN);

	pid_t spinners[2];

	if (ncpus < 2)
		SKIP("needs two CPUs");
	/* More runnable tasks than CPUs: the scheduler must preempt KVM_RUN. */
	spinners[0] = start_spinner();
	spinners[1] = start_spinner();
	for (int i = 0; i < ROUNDS; i++) {
		pin_to_cpu(i % 2);
		run_round(vcpu);
	}
	for (int i = 0; i < 2; i++) {
		kill(spinners[i], SIGKILL);
		waitpid(spinners[i], NULL, 0);
	}
	vm_free(vm);
}

static int set_online(int cpu, int on)
{
	char path[64];
	int fd, r;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	r = write(fd, on ? "1" : "0", 1) == 1 ? 0 : -1;
	close(fd);
	return r;
}

/* A CPU that goes offline and comes back must be able to run guests again. */
TEST(cpu_offline_and_back)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_fpu_loop);

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 ||
	    access("/sys/devices/system/cpu/cpu1/online", W_OK))
		SKIP("needs a second CPU that can go offline");
	pin_to_cpu(1);
	run_round(vcpu);
	pin_to_cpu(0);
	TEST_ASSERT(set_online(1, 0) == 0, "offlining CPU 1: %s", strerror(errno));
	run_round(vcpu);
	TEST_ASSERT(set_online(1, 1) == 0, "onlining CPU 1: %s", strerror(errno));
	pin_to_cpu(1);
	run_round(vcpu);
	run_round(vcpu);
	vm_free(vm);
}
