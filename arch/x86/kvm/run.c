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
#include <linux/task_work.h>
#include <asm/fpu/api.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

static int run_loop(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vm *vm = vcpu->vm;
	int r;

	for (;;) {
		/*
		 * Work queued for this thread's return to userspace (task work),
		 * such as the SIGBUS of a machine check the guest took: it runs
		 * there, so go there.  Entering again would take the same #MC
		 * until the host's handler panics (KVM runs the work in place).
		 */
		if (signal_pending(current) || unlikely(task_work_pending(current))) {
			vcpu->run->exit_reason = KVM_EXIT_INTR;
			vcpu->stat.signal_exits++;
			return -EINTR;
		}
		cond_resched();
		/* Events for a guest hypervisor while its guest runs: its #VMEXIT first. */
		if (mkvm_x86->nested_check_events)
			mkvm_x86->nested_check_events(vcpu);
		/*
		 * A machine check while one was in progress (mce.c), or a triple
		 * fault restored with KVM_SET_VCPU_EVENTS: reported as KVM reports
		 * its KVM_REQ_TRIPLE_FAULT, registers left as they are.
		 */
		if (unlikely(vcpu->arch.shutdown_pending)) {
			vcpu->arch.shutdown_pending = false;
			vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
			return 0;
		}
		/* The VMM's debugger stepped over an instruction minikvm completed. */
		if (unlikely(vcpu->arch.debug_step_done))
			return mkvm_guest_debug_step_exit(vcpu);
		/* The last exit touched the TPR and the VMM asked to hear of it (vapic.c). */
		if (unlikely(vcpu->arch.tpr_report_pending)) {
			vcpu->arch.tpr_report_pending = false;
			vcpu->run->exit_reason = KVM_EXIT_TPR_ACCESS;
			return 0;
		}
		/* INIT/SIPI to take in, HLT, or waiting for SIPI, with an in-kernel APIC. */
		if (vcpu->arch.lapic) {
			r = mkvm_vcpu_block(vcpu);
			if (r <= 0)
				return r;
		}

		down_read(&vm->slots_sem);
		/* Before interrupts go off: entering SMM writes the state save map. */
		if (unlikely(vcpu->arch.smm.pending))
			mkvm_smm_inject(vcpu);
		mkvm_kvmclock_pre_entry(vcpu);
		mkvm_vapic_sync_to_guest(vcpu);
		mkvm_mmu_prepare_entry(vcpu);
		if (mkvm_x86->prepare_entry) {
			r = mkvm_x86->prepare_entry(vcpu);
			if (r <= 0) {
				up_read(&vm->slots_sem);
				return r;
			}
		}
		local_irq_disable();
		if (need_resched() || signal_pending(current) || mkvm_kvmclock_cpu_changed(vcpu) ||
		    !mkvm_vcpu_enter_guest(vcpu)) {
			mkvm_vcpu_exit_guest(vcpu);
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
		/* Nothing between here and the entry can change what to inject. */
		mkvm_inject_events(vcpu);
		mkvm_load_guest_xcr0(vcpu);
		mkvm_tsc_aux_load(vcpu);
		mkvm_spec_before_entry(vcpu);
		mkvm_x86->run(vcpu);
		vcpu->arch.entered = true;
		mkvm_spec_after_exit();
		vcpu->stat.exits++;
		mkvm_vcpu_exit_guest(vcpu);
		mkvm_load_host_xcr0(vcpu);
		/* What must happen before anything else can run on this CPU (a #MC). */
		if (mkvm_x86->handle_exit_irqoff)
			mkvm_x86->handle_exit_irqoff(vcpu);
		local_irq_enable();
		/* Before the exit's own TPR changes, which the stale word must not undo. */
		mkvm_vapic_sync_from_guest(vcpu);
		r = mkvm_x86->handle_exit(vcpu);
		up_read(&vm->slots_sem);
		if (r <= 0)
			return r;
		if (mkvm_irq_window_exit(vcpu))
			return 0;
	}
}

/* The exits to userspace that KVM counts by kind (KVM_GET_STATS_FD). */
static void count_user_exit(struct mkvm_vcpu *vcpu)
{
	switch (vcpu->run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu->stat.io_exits++;
		break;
	case KVM_EXIT_MMIO:
		vcpu->stat.mmio_exits++;
		break;
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		vcpu->stat.request_irq_exits++;
		break;
	}
}

/**
 * mkvm_vcpu_run() - KVM_RUN
 * @vcpu: the vCPU, with its mutex held
 *
 * Return: 0 with kvm_run describing the exit; -EINTR for a signal or
 * immediate_exit; -EINVAL for a kvm_run->cr8 above 15; another errno for
 * a failure (e.g. -EFAULT for guest memory whose host pages are gone).
 */
int mkvm_vcpu_run(struct mkvm_vcpu *vcpu)
{
	sigset_t saved;
	int r;

	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &vcpu->sigset, &saved);
	/* An AP before its INIT: KVM waits for it and returns EAGAIN. */
	if (vcpu->arch.lapic && vcpu->arch.mp_state == KVM_MP_STATE_UNINITIALIZED) {
		r = mkvm_vcpu_wait_uninit(vcpu);
		goto out;
	}
	/* KVM_CAP_SYNC_REGS: what userspace changed in kvm_run->s.regs, first of all. */
	r = mkvm_sync_regs_from_run(vcpu);
	if (r)
		goto out;
	/* Without an in-kernel local APIC, userspace owns the TPR (api.rst 5: cr8). */
	if (!vcpu->arch.lapic) {
		if (READ_ONCE(vcpu->run->cr8) & ~0xfULL) {
			r = -EINVAL;
			goto out;
		}
		mkvm_x86->set_cr8(vcpu, READ_ONCE(vcpu->run->cr8));
	}
	/* An IN, MMIO read or INS that exited finishes with userspace's data first. */
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
	if (!r)
		count_user_exit(vcpu);
out:
	mkvm_sync_regs_to_run(vcpu);
	mkvm_post_run_save(vcpu);
	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &saved, NULL);
	return r;
}
