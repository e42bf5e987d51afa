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

/*
 * Nested SVM (nested.c): the guest's own hypervisor (L1) runs its guest (L2)
 * on a second VMCB that minikvm builds from L1's (vmcb12) and its own.
 */
struct mkvm_svm_nested {
	struct vmcb *vmcb02;		/* what the hardware runs L2 on */
	u64 vmcb02_pa;
	struct vmcb *vmcb12;		/* L1's VMCB as read at VMRUN, written back at #VMEXIT */
	u64 vmcb12_gpa;
	u64 hsave_pa;			/* MSR_VM_HSAVE_PA: kept for L1, minikvm saves elsewhere */
	u64 vm_cr;			/* MSR_VM_CR */
	bool guest_mode;		/* L2 runs */
	bool run_pending;		/* VMRUN was emulated; L2 has not been entered yet */
	u32 l1_event;			/* EVENTINJ of L1's that the last entry made, or 0 */
	/* L1's control registers at VMRUN (its RIP, RSP, RAX and RFLAGS are in vmcb01). */
	unsigned long l1_cr0, l1_cr3, l1_cr4;
	u64 l1_efer;
	/* L2 runs on L1's nested paging (nested_npt.c): the nNPT and what it was built for. */
	bool npt;
	struct mkvm_shadow nnpt;
	u64 nnpt_root;
	u64 nnpt_ncr3;
	u32 nnpt_asid;
	u64 nnpt_mode;			/* L1's EFER.LMA, CR4.PAE and CR4.PSE */
	bool l1_nmi_masked;		/* L1's NMI blocking, while nmi_masked is L2's */
	/* An interrupt L1 injected, in V_IRQ for one entry, and what V_IRQ held (nested.c). */
	bool vintr_irq;
	u8 vintr_vector;
	u8 vintr_saved_vector;
	u32 vintr_saved_bits;
	bool vintr_saved_intercept;
};

struct mkvm_svm_vcpu {
	struct vmcb *vmcb;		/* the VMCB the hardware runs: vmcb01, or vmcb02 for L2 */
	u64 vmcb_pa;
	struct vmcb *vmcb01;		/* L1's, or the only guest's */
	u64 vmcb01_pa;
	/* GIF as the guest sees it (APM 15.17): 0 holds interrupts and NMIs back. */
	bool gif;
	struct mkvm_svm_nested nested;
	u32 asid;
	u64 asid_generation;
	int last_cpu;
	u32 sysenter_esp_hi, sysenter_eip_hi;	/* kept only for Intel guests */
	/* NMI window (events.c): the handler's IRET was seen at iret_rip. */
	bool iret_seen;
	unsigned long iret_rip;
	/* Single-stepping the guest to the NMI window; its own TF and RF. */
	bool nmi_singlestep;
	unsigned long nmi_singlestep_flags;
	/* KVM_GUESTDBG_SINGLESTEP set TF for this entry; the guest's had none. */
	bool debug_tf;
	/* The local APIC vector in V_IRQ for this entry, or -1 (events.c). */
	int offered_irq;
};

static inline struct mkvm_svm_vcpu *to_svm(struct mkvm_vcpu *vcpu)
{
	return vcpu->arch.vendor;
}

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
extern bool mkvm_svm_decode_assists;	/* CPUID 8000_000A EDX[7] */

void mkvm_svm_init_vmcb(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_exit(struct mkvm_vcpu *vcpu);
unsigned long mkvm_svm_next_rip(struct mkvm_vcpu *vcpu, unsigned int len);
void mkvm_svm_set_intercept(struct vmcb *vmcb, int bit);
void mkvm_svm_clr_intercept(struct vmcb *vmcb, int bit);

/* svm/events.c */
void mkvm_svm_complete_events(struct mkvm_vcpu *vcpu);
void mkvm_svm_events_reset(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_iret(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_vintr(struct mkvm_vcpu *vcpu);
bool mkvm_svm_nmi_singlestep_done(struct mkvm_vcpu *vcpu);
unsigned long mkvm_svm_entry_rflags(struct mkvm_vcpu *vcpu);
unsigned long mkvm_svm_exit_rflags(struct mkvm_vcpu *vcpu);
void mkvm_svm_inject_exception(struct mkvm_vcpu *vcpu);
void mkvm_svm_inject_nmi(struct mkvm_vcpu *vcpu);
void mkvm_svm_inject_irq(struct mkvm_vcpu *vcpu);
bool mkvm_svm_interrupt_blocked(struct mkvm_vcpu *vcpu);
bool mkvm_svm_nmi_blocked(struct mkvm_vcpu *vcpu);
void mkvm_svm_enable_irq_window(struct mkvm_vcpu *vcpu);
bool mkvm_svm_offer_irq(struct mkvm_vcpu *vcpu, int vector);
void mkvm_svm_enable_nmi_window(struct mkvm_vcpu *vcpu);
void mkvm_svm_update_cr8_intercept(struct mkvm_vcpu *vcpu, bool intercept);
u8 mkvm_svm_get_interrupt_shadow(struct mkvm_vcpu *vcpu);
void mkvm_svm_set_interrupt_shadow(struct mkvm_vcpu *vcpu, u8 shadow);
void mkvm_svm_update_nmi_mask(struct mkvm_vcpu *vcpu);

/* svm/nested.c */
extern bool mkvm_svm_nested_on;
int mkvm_svm_nested_alloc(struct mkvm_vcpu *vcpu);
void mkvm_svm_nested_free(struct mkvm_vcpu *vcpu);
void mkvm_svm_leave_nested(struct mkvm_vcpu *vcpu);
bool mkvm_svm_vmcb12_valid(struct mkvm_vcpu *vcpu, const struct vmcb *v12);
void mkvm_svm_copy_vmload_state(struct vmcb_save_area *to, const struct vmcb_save_area *from);
void mkvm_svm_enter_saved_l2(struct mkvm_vcpu *vcpu, const struct vmcb *l1, u64 gpa,
			     bool run_pending);

void mkvm_svm_nested_vmexit(struct mkvm_vcpu *vcpu, u64 code, u64 info1, u64 info2);
void mkvm_svm_new_asid(struct mkvm_vcpu *vcpu);

/* svm/nested_npt.c */
int mkvm_svm_nested_gpa(struct mkvm_vcpu *vcpu, u64 gpa, u32 access, bool table, u64 *out,
			struct mkvm_fault *fault);
void mkvm_svm_nested_fault(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault);
u64 mkvm_svm_nnpt_reset(struct mkvm_vcpu *vcpu);
int mkvm_svm_nested_npf(struct mkvm_vcpu *vcpu);

/* svm/nested_state.c */
int mkvm_svm_nested_state_size(void);
long mkvm_svm_nested_state_ioctl(struct mkvm_vcpu *vcpu, bool set, void __user *argp);
int mkvm_svm_nested_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data);
int mkvm_svm_nested_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data);
void mkvm_svm_nested_setup(bool npt, bool nrips);
bool mkvm_svm_nested_reflect(struct mkvm_vcpu *vcpu, u32 exit_int_info, u32 exit_int_info_err);
void mkvm_svm_nested_check_events(struct mkvm_vcpu *vcpu);
u32 mkvm_svm_nested_exit_int_info(struct mkvm_vcpu *vcpu);
void mkvm_svm_nested_irq_to_vintr(struct mkvm_vcpu *vcpu);
void mkvm_svm_nested_irq_from_vintr(struct mkvm_vcpu *vcpu);
bool mkvm_svm_nested_intercepts(struct mkvm_vcpu *vcpu, int bit);
bool mkvm_svm_smi_blocked(struct mkvm_vcpu *vcpu);
bool mkvm_svm_init_blocked(struct mkvm_vcpu *vcpu);
bool mkvm_svm_nested_intr_unmasked(struct mkvm_vcpu *vcpu);
struct vmcb *mkvm_svm_tpr_vmcb(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_vmrun(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_vmload(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_vmsave(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_stgi(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_clgi(struct mkvm_vcpu *vcpu);
int mkvm_svm_handle_invlpga(struct mkvm_vcpu *vcpu);

/* svm/vmenter.S */
void mkvm_svm_vmrun(u64 vmcb_pa, unsigned long *regs, u64 host_save_pa);

#endif
