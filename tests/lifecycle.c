// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetimes: VM and vCPU fds closed in any order, a process killed while its
 * vCPU runs, and a VM used from another process.  Nothing may leak or crash;
 * the test machine's kernel log is checked after the run.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm_util.h"

static int create_vm(int kvm)
{
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);

	TEST_ASSERT(vm >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	return vm;
}

TEST(close_vm_before_vcpus)
{
	int kvm = open_kvm(), vm = create_vm(kvm), size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	int v0 = ioctl(vm, KVM_CREATE_VCPU, 0), v1 = ioctl(vm, KVM_CREATE_VCPU, 1);
	struct kvm_run *run;

	TEST_ASSERT(v0 >= 0 && v1 >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v0, 0);
	TEST_ASSERT(run != MAP_FAILED, "mmap: %s", strerror(errno));
	close(vm);
	/* The vCPU fds keep the VM alive: their mapping and ioctls still work. */
	run->immediate_exit = 1;
	TEST_ASSERT_ERRNO(ioctl(v0, KVM_RUN, 0), EINTR);
	close(v0);
	TEST_ASSERT_EQ(run->immediate_exit, 1);	/* the mapping outlives the fd */
	munmap(run, size);
	close(v1);
	close(kvm);
}

TEST(close_kvm_fd_first)
{
	int kvm = open_kvm(), vm = create_vm(kvm), v;

	close(kvm);
	v = ioctl(vm, KVM_CREATE_VCPU, 0);
	TEST_ASSERT(v >= 0, "KVM_CREATE_VCPU after closing /dev/kvm: %s", strerror(errno));
	close(v);
	close(vm);
}

TEST(many_vms_interleaved)
{
	int kvm = open_kvm(), vms[16], vcpus[16];

	for (int i = 0; i < 16; i++) {
		vms[i] = create_vm(kvm);
		vcpus[i] = ioctl(vms[i], KVM_CREATE_VCPU, i);
		TEST_ASSERT(vcpus[i] >= 0, "vCPU: %s", strerror(errno));
	}
	/* Close every other VM first, then the rest in reverse. */
	for (int i = 0; i < 16; i += 2)
		close(vms[i]);
	for (int i = 15; i >= 0; i--) {
		close(vcpus[i]);
		if (i & 1)
			close(vms[i]);
	}
	close(kvm);
}

static void guest_spin(void)
{
	for (;;)
		asm volatile("pause");
}

/* A process killed while its vCPU is inside KVM_RUN leaves nothing behind. */
TEST(kill_process_mid_run)
{
	for (int round = 0; round < 3; round++) {
		int status, pipefd[2];
		pid_t pid;
		char c;

		TEST_ASSERT(pipe(pipefd) == 0, "pipe");
		pid = fork();
		TEST_ASSERT(pid >= 0, "fork");
		if (pid == 0) {
			struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
			struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_spin);

			TEST_ASSERT(write(pipefd[1], "r", 1) == 1, "write");
			__vcpu_run(vcpu);
			_exit(3);	/* only a signal ends KVM_RUN here */
		}
		close(pipefd[1]);
		TEST_ASSERT(read(pipefd[0], &c, 1) == 1, "child is about to run");
		usleep(100 * 1000 * (round + 1));
		kill(pid, SIGKILL);
		TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "child status %#x", status);
		close(pipefd[0]);
	}
}

/* A VM fd inherited by another process answers EIO there (api.rst 3). */
TEST(vm_used_from_other_process_eio)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	int status;
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (pid == 0) {
		struct kvm_regs r;
		int a = ioctl(vm->fd, KVM_CREATE_VCPU, 5), ea = errno;
		int b = ioctl(vcpu->fd, KVM_GET_REGS, &r), eb = errno;

		_exit(a == -1 && ea == EIO && b == -1 && eb == EIO ? 0 : 1);
	}
	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "the child could use the parent's VM (status %#x)", status);
	vm_free(vm);
}
