/* SPDX-License-Identifier: GPL-2.0 */
/*
 * AMD SVM inside a 64-bit test guest: the guest ("L1") runs a nested guest
 * ("L2") with VMRUN, so tests check the nested SVM of the hypervisor under
 * test.
 *
 * The VMCB layout is that of APM vol. 2 appendix B (Table B-1, the control
 * area, and Table B-2, the state-save area).  L2 shares L1's page tables,
 * GDT and IDT and runs C functions or assembly of the test binary on a stack
 * of its own; the pages SVM needs (host save area, VMCB, MSR and I/O
 * permission maps) are guest physical pages that the host allocates and
 * L1 reaches through the identity map of the low 4 GiB.
 */
#ifndef MINIKVM_TEST_SVM_H
#define MINIKVM_TEST_SVM_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_util.h"

/* MSRs (APM vol. 2 15.30). */
#define MSR_EFER			0xc0000080
#define MSR_VM_CR			0xc0010114
#define MSR_VM_HSAVE_PA			0xc0010117
#define EFER_SVME			(1ULL << 12)

/* CPUID Fn8000_0001 ECX and Fn8000_000A EDX (APM vol. 3 appendix E). */
#define CPUID_EXT1_ECX_SVM		(1u << 2)
#define SVM_FEAT_NP			(1u << 0)
#define SVM_FEAT_LBRV			(1u << 1)
#define SVM_FEAT_SVML			(1u << 2)
#define SVM_FEAT_NRIPS			(1u << 3)
#define SVM_FEAT_TSC_RATE		(1u << 4)
#define SVM_FEAT_VMCB_CLEAN		(1u << 5)
#define SVM_FEAT_FLUSH_BY_ASID		(1u << 6)
#define SVM_FEAT_DECODE_ASSISTS		(1u << 7)
#define SVM_FEAT_PAUSE_FILTER		(1u << 10)
#define SVM_FEAT_VGIF			(1u << 16)

/* A segment register in the state-save area (APM vol. 2 15.5.2 and B-2). */
struct vmcb_seg {
	uint16_t selector;
	uint16_t attrib;	/* descriptor bits 47:40 in 7:0, bits 55:52 in 11:8 */
	uint32_t limit;
	uint64_t base;
};

/* The control area, offsets 0x000-0x3ff (APM vol. 2 Table B-1). */
struct vmcb_control {
	uint32_t intercept_cr;		/* 0x000: 15:0 reads of CRn, 31:16 writes */
	uint32_t intercept_dr;		/* 0x004: 15:0 reads of DRn, 31:16 writes */
	uint32_t intercept_exceptions;	/* 0x008: bit n is vector n */
	uint32_t intercept_misc1;	/* 0x00c: INTERCEPT_INTR... */
	uint32_t intercept_misc2;	/* 0x010: INTERCEPT_VMRUN... */
	uint32_t intercept_misc3;	/* 0x014 */
	uint8_t reserved_018[0x03c - 0x018];
	uint16_t pause_filter_thresh;	/* 0x03c */
	uint16_t pause_filter_count;	/* 0x03e */
	uint64_t iopm_base_pa;		/* 0x040 */
	uint64_t msrpm_base_pa;		/* 0x048 */
	uint64_t tsc_offset;		/* 0x050 */
	uint32_t asid;			/* 0x058 */
	uint8_t tlb_control;		/* 0x05c */
	uint8_t reserved_05d[3];
	uint32_t int_ctl;		/* 0x060: V_TPR, V_IRQ, V_INTR_PRIO, ... */
	uint32_t int_vector;		/* 0x064: V_INTR_VECTOR in 7:0 */
	uint64_t int_state;		/* 0x068: interrupt shadow in bit 0 */
	uint64_t exit_code;		/* 0x070 */
	uint64_t exit_info_1;		/* 0x078 */
	uint64_t exit_info_2;		/* 0x080 */
	uint64_t exit_int_info;		/* 0x088: EVENTINJ format */
	uint64_t nested_ctl;		/* 0x090: NP_ENABLE in bit 0 */
	uint64_t avic_apic_bar;		/* 0x098 */
	uint64_t ghcb_pa;		/* 0x0a0 */
	uint64_t event_inj;		/* 0x0a8 */
	uint64_t n_cr3;			/* 0x0b0 */
	uint64_t virt_ext;		/* 0x0b8: LBR virtualization, VMLOAD/VMSAVE virt. */
	uint32_t clean;			/* 0x0c0 */
	uint32_t reserved_0c4;
	uint64_t next_rip;		/* 0x0c8 */
	uint8_t insn_len;		/* 0x0d0 */
	uint8_t insn_bytes[15];		/* 0x0d1 */
	uint8_t reserved_0e0[0x400 - 0x0e0];
};

/* The state-save area, offsets 0x400 on (APM vol. 2 Table B-2, relative here). */
struct vmcb_save {
	struct vmcb_seg es, cs, ss, ds, fs, gs;	/* 0x000-0x05f */
	struct vmcb_seg gdtr, ldtr, idtr, tr;	/* 0x060-0x09f */
	uint8_t reserved_0a0[0x0cb - 0x0a0];
	uint8_t cpl;			/* 0x0cb */
	uint32_t reserved_0cc;
	uint64_t efer;			/* 0x0d0 */
	uint8_t reserved_0d8[0x148 - 0x0d8];
	uint64_t cr4;			/* 0x148 */
	uint64_t cr3;			/* 0x150 */
	uint64_t cr0;			/* 0x158 */
	uint64_t dr7;			/* 0x160 */
	uint64_t dr6;			/* 0x168 */
	uint64_t rflags;		/* 0x170 */
	uint64_t rip;			/* 0x178 */
	uint8_t reserved_180[0x1d8 - 0x180];
	uint64_t rsp;			/* 0x1d8 */
	uint64_t s_cet, ssp, isst_addr;	/* 0x1e0 */
	uint64_t rax;			/* 0x1f8 */
	uint64_t star;			/* 0x200 */
	uint64_t lstar;			/* 0x208 */
	uint64_t cstar;			/* 0x210 */
	uint64_t sfmask;		/* 0x218 */
	uint64_t kernel_gs_base;	/* 0x220 */
	uint64_t sysenter_cs;		/* 0x228 */
	uint64_t sysenter_esp;		/* 0x230 */
	uint64_t sysenter_eip;		/* 0x238 */
	uint64_t cr2;			/* 0x240 */
	uint8_t reserved_248[0x268 - 0x248];
	uint64_t g_pat;			/* 0x268 */
	uint64_t dbgctl;		/* 0x270 */
	uint64_t br_from, br_to;	/* 0x278 */
	uint64_t last_excp_from;	/* 0x288 */
	uint64_t last_excp_to;		/* 0x290 */
	uint8_t reserved_298[0xc00 - 0x298];
};

/* Every field is naturally aligned, so the compiler adds no padding: checked below. */
struct vmcb {
	struct vmcb_control control;
	struct vmcb_save save;
};

_Static_assert(sizeof(struct vmcb) == 4096, "a VMCB is one page");
_Static_assert(sizeof(struct vmcb_seg) == 16, "a segment is 16 bytes");
_Static_assert(offsetof(struct vmcb, control.pause_filter_count) == 0x03e, "PAUSE count");
_Static_assert(offsetof(struct vmcb, control.iopm_base_pa) == 0x040, "IOPM_BASE_PA");
_Static_assert(offsetof(struct vmcb, control.asid) == 0x058, "ASID");
_Static_assert(offsetof(struct vmcb, control.int_ctl) == 0x060, "V_TPR...");
_Static_assert(offsetof(struct vmcb, control.exit_code) == 0x070, "EXITCODE");
_Static_assert(offsetof(struct vmcb, control.exit_int_info) == 0x088, "EXITINTINFO");
_Static_assert(offsetof(struct vmcb, control.n_cr3) == 0x0b0, "N_CR3");
_Static_assert(offsetof(struct vmcb, control.event_inj) == 0x0a8, "EVENTINJ");
_Static_assert(offsetof(struct vmcb, control.next_rip) == 0x0c8, "nRIP");
_Static_assert(offsetof(struct vmcb, control.insn_bytes) == 0x0d1, "guest instruction bytes");
_Static_assert(offsetof(struct vmcb, save.gdtr) == 0x460, "GDTR");
_Static_assert(offsetof(struct vmcb, save.idtr) == 0x480, "IDTR");
_Static_assert(offsetof(struct vmcb, save.tr) == 0x490, "TR");
_Static_assert(offsetof(struct vmcb, save.cpl) == 0x4cb, "CPL");
_Static_assert(offsetof(struct vmcb, save.efer) == 0x4d0, "EFER");
_Static_assert(offsetof(struct vmcb, save.cr4) == 0x548, "CR4");
_Static_assert(offsetof(struct vmcb, save.rsp) == 0x5d8, "RSP");
_Static_assert(offsetof(struct vmcb, save.rip) == 0x578, "RIP");
_Static_assert(offsetof(struct vmcb, save.rax) == 0x5f8, "RAX");
_Static_assert(offsetof(struct vmcb, save.kernel_gs_base) == 0x620, "KernelGsBase");
_Static_assert(offsetof(struct vmcb, save.sysenter_eip) == 0x638, "SYSENTER_EIP");
_Static_assert(offsetof(struct vmcb, save.cr2) == 0x640, "CR2");
_Static_assert(offsetof(struct vmcb, save.g_pat) == 0x668, "G_PAT");

/* intercept_cr */
#define INTERCEPT_CR_READ(n)		(1u << (n))
#define INTERCEPT_CR_WRITE(n)		(1u << (16 + (n)))
/* intercept_misc1 (APM vol. 2 Table B-1, offset 0x00c) */
#define INTERCEPT_INTR			(1u << 0)
#define INTERCEPT_NMI			(1u << 1)
#define INTERCEPT_SMI			(1u << 2)
#define INTERCEPT_INIT			(1u << 3)
#define INTERCEPT_VINTR			(1u << 4)
#define INTERCEPT_CR0_SEL_WRITE		(1u << 5)
#define INTERCEPT_RDTSC			(1u << 14)
#define INTERCEPT_RDPMC			(1u << 15)
#define INTERCEPT_CPUID			(1u << 18)
#define INTERCEPT_IRET			(1u << 20)
#define INTERCEPT_INTN			(1u << 21)
#define INTERCEPT_PAUSE			(1u << 23)
#define INTERCEPT_HLT			(1u << 24)
#define INTERCEPT_INVLPG		(1u << 25)
#define INTERCEPT_INVLPGA		(1u << 26)
#define INTERCEPT_IOIO_PROT		(1u << 27)
#define INTERCEPT_MSR_PROT		(1u << 28)
#define INTERCEPT_SHUTDOWN		(1u << 31)
/* intercept_misc2 (offset 0x010) */
#define INTERCEPT_VMRUN			(1u << 0)
#define INTERCEPT_VMMCALL		(1u << 1)
#define INTERCEPT_VMLOAD		(1u << 2)
#define INTERCEPT_VMSAVE		(1u << 3)
#define INTERCEPT_STGI			(1u << 4)
#define INTERCEPT_CLGI			(1u << 5)
#define INTERCEPT_RDTSCP		(1u << 7)

/* int_ctl (offset 0x060, bits 31:0) */
#define V_TPR_MASK			0xffu
#define V_IRQ				(1u << 8)
#define V_GIF				(1u << 9)
#define V_INTR_PRIO(p)			((uint32_t)(p) << 16)
#define V_IGN_TPR			(1u << 20)
#define V_INTR_MASKING			(1u << 24)

/* nested_ctl (offset 0x090) */
#define NESTED_CTL_NP_ENABLE		(1ULL << 0)

/* EVENTINJ and EXITINTINFO (APM vol. 2 15.20) */
#define EVENT_VECTOR(v)			((uint64_t)(v) & 0xff)
#define EVENT_TYPE_INTR			(0ULL << 8)
#define EVENT_TYPE_NMI			(2ULL << 8)
#define EVENT_TYPE_EXCEPTION		(3ULL << 8)
#define EVENT_TYPE_SOFT_INT		(4ULL << 8)
#define EVENT_ERROR_VALID		(1ULL << 11)
#define EVENT_VALID			(1ULL << 31)
#define EVENT_ERROR_CODE(e)		((uint64_t)(uint32_t)(e) << 32)

/* EXITINFO1 of an IOIO intercept (APM vol. 2 15.10.2) */
#define IOIO_TYPE_IN			(1ULL << 0)
#define IOIO_STR			(1ULL << 2)
#define IOIO_REP			(1ULL << 3)
#define IOIO_SZ8			(1ULL << 4)
#define IOIO_SZ16			(1ULL << 5)
#define IOIO_SZ32			(1ULL << 6)
#define IOIO_A16			(1ULL << 7)
#define IOIO_A32			(1ULL << 8)
#define IOIO_A64			(1ULL << 9)
#define IOIO_ASIZE_MASK			(7ULL << 7)
#define IOIO_PORT(p)			((uint64_t)(p) << 16)

/* EXITINFO1 of a nested page fault (APM vol. 2 15.25.6): a #PF error code and */
#define NPF_FINAL_GPA			(1ULL << 32)	/* the final translation faulted */
#define NPF_GUEST_TABLE			(1ULL << 33)	/* a guest page-table access did */

/* Exit codes (APM vol. 2 appendix C) */
#define VMEXIT_CR0_READ			0x000
#define VMEXIT_CR0_WRITE		0x010
#define VMEXIT_CR4_WRITE		0x014
#define VMEXIT_EXCP(v)			(0x040 + (v))
#define VMEXIT_INTR			0x060
#define VMEXIT_NMI			0x061
#define VMEXIT_VINTR			0x064
#define VMEXIT_RDTSC			0x06e
#define VMEXIT_CPUID			0x072
#define VMEXIT_PAUSE			0x077
#define VMEXIT_HLT			0x078
#define VMEXIT_INVLPGA			0x07a
#define VMEXIT_IOIO			0x07b
#define VMEXIT_MSR			0x07c
#define VMEXIT_SHUTDOWN			0x07f
#define VMEXIT_VMRUN			0x080
#define VMEXIT_VMMCALL			0x081
#define VMEXIT_NPF			0x400
#define VMEXIT_INVALID			(~0ULL)

/* Sizes of the permission maps (APM vol. 2 15.10.1 and 15.11). */
#define SVM_IOPM_PAGES			3
#define SVM_MSRPM_PAGES			2

/*
 * What the host set up for L1, in the guest's copy of the test image
 * (svm_vm_create()): guest physical addresses, identity-mapped in L1.
 */
#define SVM_SCRATCH_PAGES		4
struct svm_env {
	uint64_t hsave_gpa;
	uint64_t vmcb_gpa;
	uint64_t msrpm_gpa;
	uint64_t iopm_gpa;
	uint64_t scratch_gpa[SVM_SCRATCH_PAGES];	/* zeroed pages for the test */
	uint64_t tss_gpa;				/* the TSS that L1's TR names */
};

extern struct svm_env svm_env;

/* L2's general-purpose registers besides RAX and RSP, which are in the VMCB. */
struct svm_gprs {
	uint64_t rbx, rcx, rdx, rsi, rdi, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

/* What L1 keeps of its L2. */
struct svm_l2 {
	struct vmcb *vmcb;	/* == its guest physical address (identity map) */
	struct svm_gprs gprs;
	uint32_t features;	/* CPUID Fn8000_000A EDX as L1 sees it */
};

/* The top of L2's stack, whose return address leads to VMMCALL (svm_l2_returned). */
#define SVM_L2_STACK_SIZE		(16 * 1024)
extern uint8_t svm_l2_stack[SVM_L2_STACK_SIZE];
/* Where an L2 function returns to: VMMCALL, then UD2. */
extern char svm_l2_returned[];
/* The VMRUN instruction of svm_vmrun_gprs(), for handlers of faults at VMRUN. */
extern char svm_vmrun_insn[];

/* Guest (L1) side. */
void svm_l1_enable(void);
void svm_l2_init(struct svm_l2 *l2, void (*rip)(void));
void svm_l2_init_at(struct svm_l2 *l2, uint64_t rip, uint64_t rsp);
uint64_t svm_run(struct svm_l2 *l2);
void svm_vmrun_gprs(uint64_t vmcb_gpa, struct svm_gprs *gprs);
void svm_skip_insn(struct svm_l2 *l2, unsigned int len);
void svm_msrpm_set(uint32_t msr, bool read, bool write);
void svm_iopm_set(uint16_t port, bool intercept);
void svm_seg_from_gdt(struct vmcb_seg *seg, uint16_t sel);

static inline void svm_clgi(void)
{
	asm volatile("clgi" ::: "memory");
}

static inline void svm_stgi(void)
{
	asm volatile("stgi" ::: "memory");
}

static inline void svm_vmload(uint64_t gpa)
{
	asm volatile("vmload %%rax" :: "a"(gpa) : "memory");
}

static inline void svm_vmsave(uint64_t gpa)
{
	asm volatile("vmsave %%rax" :: "a"(gpa) : "memory");
}

static inline void svm_invlpga(uint64_t va, uint32_t asid)
{
	asm volatile("invlpga %%rax, %%ecx" :: "a"(va), "c"(asid) : "memory");
}

/* Host side. */
struct kvm_vm *svm_vm_create(void (*l1_code)(void), struct kvm_vcpu **vcpu);
uint32_t svm_host_features(struct kvm_vm *vm);

#endif
