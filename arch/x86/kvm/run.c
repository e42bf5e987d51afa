// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_RUN: the loop around guest entries, shared by SVM and VMX.
 *
 * Each iteration checks for signals and rescheduling, enters the guest with
 * interrupts disabled, and lets the vendor handle the exit.  The guest's FPU
 * state is loaded for the whole ioctl; the kernel's context switch saves and
 * restores it if the thread is preempted.
 */
#include <linux/sched/signal.h>
#include <linux/signal.h>
#include <asm/fpu/api.h>

#include <minikvm/core.h>

/**
 * mkvm_exit_pio() - hand a non-string IN or OUT to userspace (KVM_EXIT_IO)
 * @vcpu: the vCPU
 * @port: I/O port
 * @size: 1, 2 or 4 bytes
 * @in: IN (userspace supplies the data) or OUT
 * @next_rip: the instruction after the IN/OUT
 *
 * Return: 0, "exit to userspace".
 */
int mkvm_exit_pio(struct mkvm_vcpu *vcpu, u16 port, u8 size, bool in, unsigned long next_rip)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.port = port;
	run->io.count = 1;
	run->io.data_offset = KVM_PIO_PAGE_OFFSET * PAGE_SIZE;
	if (!in)
		memcpy(vcpu->pio_data, &vcpu->arch.regs[REG_RAX], size);
	vcpu->arch.pio_in_pending = in;
	vcpu->arch.pio_size = size;
	/* RIP moves on now: a signal before the next KVM_RUN must not redo the I/O. */
	vcpu->arch.rip = next_rip;
	return 0;
}

/* The data of an IN arrives with the next KVM_RUN (api.rst 5, KVM_EXIT_IO). */
static void complete_pio_in(struct mkvm_vcpu *vcpu)
{
	unsigned long *rax = &vcpu->arch.regs[REG_RAX];

	switch (vcpu->arch.pio_size) {
	case 1:
		*rax = (*rax & ~0xffUL) | *(u8 *)vcpu->pio_data;
		break;
	case 2:
		*rax = (*rax & ~0xffffUL) | *(u16 *)vcpu->pio_data;
		break;
	case 4:
		/* A 32-bit destination zero-extends into RAX (SDM vol. 1 3.4.1.1). */
		*rax = *(u32 *)vcpu->pio_data;
		break;
	}
	vcpu->arch.pio_in_pending = false;
}

static int run_loop(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vm *vm = vcpu->vm;
	int r;

	for (;;) {
		if (signal_pending(current)) {
			vcpu->run->exit_reason = KVM_EXIT_INTR;
			return -EINTR;
		}
		cond_resched();

		down_read(&vm->slots_sem);
		local_irq_disable();
		if (need_resched() || signal_pending(current)) {
			local_irq_enable();
			up_read(&vm->slots_sem);
			continue;
		}
		/*
		 * If the thread was preempted since the guest's FPU state was
		 * loaded, the context switch saved it and left the registers to
		 * be reloaded on the way to user space; the guest needs them now.
		 */
		if (test_thread_flag(TIF_NEED_FPU_LOAD))
			switch_fpu_return();
		mkvm_x86->run(vcpu);
		local_irq_enable();
		r = mkvm_x86->handle_exit(vcpu);
		up_read(&vm->slots_sem);
		if (r <= 0)
			return r;
	}
}

/**
 * mkvm_vcpu_run() - KVM_RUN
 * @vcpu: the vCPU, with its mutex held
 *
 * Return: 0 with kvm_run describing the exit; -EINTR for a signal or
 * immediate_exit; another errno for a failure (e.g. -EFAULT for guest
 * memory whose host pages are gone).
 */
int mkvm_vcpu_run(struct mkvm_vcpu *vcpu)
{
	sigset_t saved;
	int r;

	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &vcpu->sigset, &saved);
	if (vcpu->arch.pio_in_pending)
		complete_pio_in(vcpu);
	r = mkvm_emulate_complete(vcpu);
	if (r <= 0)
		goto out;
	/* api.rst 5: immediate_exit makes KVM_RUN return at once, after completing I/O. */
	if (READ_ONCE(vcpu->run->immediate_exit)) {
		r = -EINTR;
		goto out;
	}
	fpu_swap_kvm_fpstate(&vcpu->arch.fpu, true);
	r = run_loop(vcpu);
	fpu_swap_kvm_fpstate(&vcpu->arch.fpu, false);
out:
	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &saved, NULL);
	return r;
}
