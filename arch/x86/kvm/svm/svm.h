/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The AMD SVM backend's private state.
 */
#ifndef MINIKVM_SVM_H
#define MINIKVM_SVM_H

#include <asm/svm.h>

#include <minikvm/core.h>

/* Per physical CPU: VMRUN's host save area, the VMSAVE area, ASID allocation. */
struct mkvm_svm_cpu {
	struct page *hsave;		/* MSR_VM_HSAVE_PA (APM 15.30.4) */
	struct page *host_save;		/* host FS/GS/TR/LDTR/syscall MSRs, via VMSAVE */
	u64 asid_generation;
	u32 next_asid;
};

struct mkvm_svm_vcpu {
	struct vmcb *vmcb;
	u64 vmcb_pa;
	u32 asid;
	u64 asid_generation;
	int last_cpu;
	u32 sysenter_esp_hi, sysenter_eip_hi;	/* kept only for Intel guests */
};

static inline struct mkvm_svm_vcpu *to_svm(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.vendor;
}

/* DR6 and DR7 at reset (APM vol. 2 13.1.1). */
#define DR6_RESET 0xffff0ff0UL
#define DR7_RESET 0x400UL

/* GIF: while clear, no interrupt or NMI is taken, not even by the host (APM 15.17). */
static __always_inline void clgi(void)
{
	asm volatile("clgi" ::: "memory");
}

static __always_inline void stgi(void)
{
	asm volatile("stgi" ::: "memory");
}

extern bool mkvm_svm_nrips;

void mkvm_svm_init_vmcb(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_exit(struct mkvm_vcpu *vcpu);
void mkvm_svm_queue_exception(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error);

/* svm/vmenter.S */
void mkvm_svm_vmrun(u64 vmcb_pa, unsigned long *regs, u64 host_save_pa);

#endif
