// SPDX-License-Identifier: GPL-2.0
/*
 * Speculative-execution barriers around the guest that follow the host
 * kernel's own choice of mitigations (its X86_FEATURE_* flags, set at boot
 * from the CPU's bugs and the command line), so that a guest is contained
 * exactly as well as on KVM on the same host:
 *
 * - IBPB when a CPU enters a different vCPU than the one it ran last, so a
 *   guest (or another vCPU of it) cannot steer the next one's indirect
 *   branches, unless the host already has a barrier on every exit;
 * - IBPB before the VMM's userspace runs again after a guest ran, where the
 *   host mitigates VMSCAPE (a guest training the branch predictor against
 *   its own VMM).
 *
 * What must sit next to VMRUN itself (VERW to clear CPU buffers before the
 * entry, the return-stack refill and IBPB after the exit) is in the
 * vendor's entry code, svm/vmenter.S.
 */
#include <linux/atomic.h>
#include <linux/percpu.h>
#include <asm/nospec-branch.h>

#include <minikvm/core.h>

/*
 * Every vCPU gets an id never handed out again, so a vCPU that is freed and
 * another one allocated at the same address are still two vCPUs here.
 */
static atomic64_t last_id = ATOMIC64_INIT(0);
static DEFINE_PER_CPU(u64, last_run_vcpu);

/**
 * mkvm_spec_vcpu_init() - give a new vCPU its id for the barrier on switch
 * @vcpu: the vCPU being created
 */
void mkvm_spec_vcpu_init(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.spec_id = atomic64_inc_return(&last_id);
}

/**
 * mkvm_spec_before_entry() - barriers this CPU needs before it runs @vcpu
 * @vcpu: the vCPU about to enter, with preemption off
 */
void mkvm_spec_before_entry(struct mkvm_vcpu *vcpu)
{
	if (likely(this_cpu_read(last_run_vcpu) == vcpu->arch.spec_id))
		return;
	this_cpu_write(last_run_vcpu, vcpu->arch.spec_id);
	/* A barrier on every exit (the host's SRSO mode) already covers the switch. */
	if (!cpu_feature_enabled(X86_FEATURE_IBPB_ON_VMEXIT))
		indirect_branch_prediction_barrier();
}

/**
 * mkvm_spec_after_exit() - barriers owed once a guest has run on this CPU
 *
 * The host's exit-to-user path does the IBPB that VMSCAPE asks for when
 * this per-CPU flag is set; it costs nothing while the thread stays in the
 * kernel, for example for the next entry.
 */
void mkvm_spec_after_exit(void)
{
	if (cpu_feature_enabled(X86_FEATURE_IBPB_EXIT_TO_USER))
		this_cpu_write(x86_ibpb_exit_to_user, true);
}
