/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The x86 layer: per-VM and per-vCPU state, the vendor ops table through
 * which generic code reaches SVM (or VMX), and the entry points the core
 * calls.
 */
#ifndef MINIKVM_X86_H
#define MINIKVM_X86_H

#include <linux/kvm.h>
#include <linux/types.h>
#include <linux/xarray.h>
#include <asm/fpu/api.h>

#include <minikvm/mmu.h>
#include <minikvm/decode.h>
#include <minikvm/time.h>

/* DR6 bits that read as 1 while no debug condition clears them (SDM vol. 3 17.2.3). */
#define MKVM_DR6_ACTIVE_LOW 0xffff0ff0UL
/* DR6 bits a guest without RTM or bus-lock detection can change: B0-B3, BD, BS, BT. */
#define MKVM_DR6_GUEST_BITS 0xe00fUL
/* DR7's bit 10 reads as 1, and DR7 is only that at reset (SDM vol. 3 17.2.4). */
#define MKVM_DR7_RESET 0x400UL

struct mkvm_vm;
struct mkvm_vcpu;
struct mkvm_fault;
struct mkvm_irqchip;
struct mkvm_lapic;
struct mkvm_pit;
struct mkvm_msr_filter;

#define MKVM_MAX_CPUID_ENTRIES	256	/* as KVM_MAX_CPUID_ENTRIES */
#define MKVM_MAX_IO_MSRS	256	/* KVM_GET/SET_MSRS batches are smaller than this */

/* x86 GPR numbers in instruction-encoding order. */
enum mkvm_reg {
	REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
	REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
	NR_GPRS
};

/*
 * Memslot address spaces, as on KVM for x86: 0 is what the guest sees
 * normally, 1 what it sees in SMM.  A slot's id carries its space in bits 16+.
 */
#define MKVM_ADDRESS_SPACES	2

/* Two-dimensional paging tables (NPT or EPT) built lazily from memslots. */
struct mkvm_tdp_space {
	u64 *root;			/* top-level table, kernel virtual */
	struct xarray pages;		/* gfn -> struct page pinned for the guest */
};

struct mkvm_tdp {
	struct mutex lock;
	struct mkvm_tdp_space space[MKVM_ADDRESS_SPACES];
};

struct mkvm_vm_arch {
	struct mkvm_tdp tdp;
	u32 bsp_vcpu_id;		/* KVM_SET_BOOT_CPU_ID: the vCPU that starts as BSP */
	bool triple_fault_event;	/* KVM_CAP_X86_TRIPLE_FAULT_EVENT enabled */
	unsigned long nr_mmu_pages;	/* KVM_SET_NR_MMU_PAGES, only kept (see api.rst) */
	struct mkvm_vm_time time;
	struct mkvm_irqchip *irqchip;	/* KVM_CREATE_IRQCHIP, or NULL */
	struct mkvm_pit *pit;		/* KVM_CREATE_PIT(2), or NULL */
	/* irq_routing.c: told of EOIs and (un)masking of a GSI's pins; RCU lists. */
	struct hlist_head irq_ack_notifiers;
	struct hlist_head irq_mask_notifiers;
	struct mutex irq_notifiers_lock;
	struct mkvm_msr_filter __rcu *msr_filter;	/* KVM_X86_SET_MSR_FILTER */
	u32 user_space_msr;		/* KVM_CAP_X86_USER_SPACE_MSR's exit reasons */
	bool exception_payload;		/* KVM_CAP_EXCEPTION_PAYLOAD enabled */
	/* KVM_SET_TSS_ADDR: where VMX without unrestricted guest puts its TSS (vmx/rmode.c) */
	u32 tss_addr;
};

/* An instruction the emulator is in the middle of, waiting for userspace. */
enum mkvm_emul_wait {
	EMUL_NONE,
	EMUL_PIO_IN,		/* the data of a plain IN */
	EMUL_MMIO_READ,		/* the data of an MMIO read */
	EMUL_INS,		/* the data of a (REP) INS */
	EMUL_RDMSR,		/* userspace's answer to an RDMSR (msr_exits.c) */
	EMUL_WRMSR,		/* ... to a WRMSR */
};

struct mkvm_emul {
	enum mkvm_emul_wait wait;
	struct mkvm_insn insn;
	unsigned long next_rip;
	u64 la;			/* INS: where the data goes */
	u64 gpa;		/* MMIO read: the address */
	/* IN or MMIO read: its size; kvm_run's copy is userspace's. */
	u8 len;
	unsigned int count;	/* INS: elements read ahead */
	/* The operand may be RAM, which the hardware refused for another reason (vmx/rmode.c). */
	bool ram;
};

/*
 * Events on their way into the guest (SDM vol. 3 6, APM vol. 2 8 and 15.20).
 * "Injected" means handed to the hardware once already: delivery was cut
 * short by an exit (EXITINTINFO) and must be completed before anything else.
 */
struct mkvm_events {
	struct {
		bool queued;		/* raised or interrupted, to be injected */
		bool injected;		/* ... interrupted: KVM's "injected", not "pending" */
		bool skipped;		/* a VMM's #BP/#OF: RIP was moved past INT3/INTO */
		/* What a #PF puts in CR2 or a #DB in DR6, when it is delivered. */
		bool has_payload;
		u64 payload;
		u8 vector;
		bool has_error;
		u32 error;
	} exc;
	struct {
		bool injected;		/* KVM_INTERRUPT, or interrupted delivery */
		u8 vector;
	} irq;
	bool nmi_injected;
	u8 nmi_pending;			/* at most 2: one running, one latched */
	bool nmi_masked;		/* an NMI handler runs until its IRET */
};

/* System management mode (smm.c; SDM vol. 3 34, APM vol. 2 10). */
struct mkvm_smm {
	bool active;			/* in SMM: memory is memslot address space 1 */
	bool inside_nmi;		/* NMIs were blocked at the SMI: still so after RSM */
	bool pending;			/* an SMI to take once the guest can */
	u64 smbase;			/* IA32_SMBASE: the handler and its state save map */
};

/* The guest's MTRRs (mtrr.c): only stored, nested paging takes no type from them. */
#define MKVM_NR_VAR_MTRR 8
struct mkvm_mtrr {
	u64 def_type;
	u64 fixed[11];			/* 64K_00000, 16K_80000/A0000, 4K_C0000..F8000 */
	u64 var[2 * MKVM_NR_VAR_MTRR];	/* PhysBase0, PhysMask0, PhysBase1, ... */
};

/* Machine-check banks (mce.c): KVM's count, each MCi_CTL, _STATUS, _ADDR, _MISC. */
#define MKVM_MCE_BANKS 32
struct mkvm_mce {
	u64 cap, ctl, status;		/* MCG_CAP, MCG_CTL, MCG_STATUS */
	u64 banks[4 * MKVM_MCE_BANKS];
};

struct mkvm_vcpu_arch {
	unsigned long regs[NR_GPRS];
	unsigned long rip;
	unsigned long rflags;
	unsigned long dr[4];		/* DR0-3: not switched by the hardware */
	/*
	 * cr.c: CR0, CR3, CR4 and EFER as the guest sees them.  The vendor
	 * derives the hardware's from them (update_crs) and copies back what
	 * the guest can change without an exit.
	 */
	unsigned long cr0, cr3, cr4;
	u64 efer;
	struct kvm_cpuid_entry2 *cpuid;
	int cpuid_nent;
	bool amd_guest;			/* guest CPUID vendor is AMD (or Hygon) */
	u64 apic_base;
	struct fpu_guest fpu;
	u64 xcr0;			/* the guest's; the host's is loaded outside the guest */
	u64 guest_xcr0_mask;		/* XCR0 bits the guest's CPUID leaf 0xD offers */
	struct mkvm_events events;
	struct mkvm_smm smm;
	struct mkvm_emul emul;
	struct mkvm_mmu mmu;		/* mmu/mmu.c: the tables it runs on */
	unsigned long requests;		/* ... MKVM_REQ_* to handle before the next entry */
	struct mkvm_vcpu_time time;
	u64 ucode_rev, de_cfg, hwcr, misc_enable;	/* model_msrs.c */
	u64 tsc_aux;			/* tsc_aux.c: what RDTSCP and RDPID return */
	u32 host_pkru;			/* fpu.c: the VMM thread's, while the guest runs */
	u64 spec_id;			/* speculation.c: never reused, for IBPB on switch */
	struct mkvm_mtrr mtrr;
	struct mkvm_mce mce;
	bool shutdown_pending;		/* a triple fault to report at the next KVM_RUN */
	bool entered;			/* run.c: the guest ran once (its CPUID is fixed) */
	u64 vapic_addr;			/* vapic.c: KVM_SET_VAPIC_ADDR, 0 when off */
	bool tpr_access_reporting;	/* vapic.c: KVM_TPR_ACCESS_REPORTING */
	bool tpr_report_pending;	/* ... a TPR access to report: KVM_EXIT_TPR_ACCESS */
	u32 guest_debug;		/* guest_debug.c: KVM_GUESTDBG_*, 0 when off */
	u64 debug_db[4], debug_dr7;	/* ... the debugger's breakpoints (USE_HW_BP) */
	u64 guest_dr6, guest_dr7;	/* ... meanwhile the guest's own (debugregs.c) */
	bool debug_step_done;		/* ... minikvm completed a stepped instruction */
	struct mkvm_lapic *lapic;	/* with an in-kernel irqchip, else NULL */
	u32 mp_state;			/* KVM_MP_STATE_*, with a local APIC */
	void *vendor;			/* struct mkvm_svm_vcpu or the VMX equivalent */
};

/**
 * struct mkvm_x86_ops - what generic x86 code needs from SVM or VMX
 *
 * Filled once at load by the vendor that the CPU supports.
 */
struct mkvm_x86_ops {
	const char *name;
	int (*hardware_setup)(void);
	void (*hardware_unsetup)(void);
	/*
	 * On an emergency reboot or kexec: virtualization off on this CPU.
	 * Registered around hardware_setup/unsetup, once /dev/kvm is minikvm's:
	 * the kernel holds one such callback, which a loaded KVM may have.
	 */
	void (*emergency_disable)(void);
	int (*vcpu_create)(struct mkvm_vcpu *vcpu);
	void (*vcpu_free)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional: around each vCPU ioctl, in the calling thread; the vendor
	 * may keep state on the CPU meanwhile (VMX's current VMCS).
	 */
	void (*vcpu_load)(struct mkvm_vcpu *vcpu);
	void (*vcpu_put)(struct mkvm_vcpu *vcpu);
	void (*get_sregs)(struct mkvm_vcpu *vcpu, struct kvm_sregs *sregs);
	void (*set_sregs)(struct mkvm_vcpu *vcpu, const struct kvm_sregs *sregs);
	/* Vendor-held MSRs; MKVM_MSR_UNKNOWN means "not mine", so generic code may try. */
	int (*get_msr)(struct mkvm_vcpu *vcpu, u32 index, u64 *data);
	int (*set_msr)(struct mkvm_vcpu *vcpu, u32 index, u64 data);
	/*
	 * Optional: before each entry and before any event is injected for it,
	 * slots_sem held, interrupts still on.  Returns >0 to enter, or 0 with
	 * kvm_run filled to return to userspace instead.
	 */
	int (*prepare_entry)(struct mkvm_vcpu *vcpu);
	/* One guest entry and exit, with interrupts disabled by the caller. */
	void (*run)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional: right after the exit, interrupts still off and the host's
	 * PKRU and XCR0 back (a machine check goes to the host's handler here).
	 */
	void (*handle_exit_irqoff)(struct mkvm_vcpu *vcpu);
	/* >0: enter again; 0: exit to userspace with kvm_run filled; <0: errno. */
	int (*handle_exit)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional: the bytes of the instruction behind the last exit if the hardware
	 * gave them (SVM decode assists); returns how many, 0 if none.
	 */
	unsigned int (*get_insn_bytes)(struct mkvm_vcpu *vcpu, u8 *buf);
	/* DR6 and DR7, which the control block holds (DR0-3 are in vcpu->arch.dr). */
	void (*get_dr67)(struct mkvm_vcpu *vcpu, u64 *dr6, u64 *dr7);
	void (*set_dr67)(struct mkvm_vcpu *vcpu, u64 dr6, u64 dr7);
	void (*set_cr2)(struct mkvm_vcpu *vcpu, unsigned long cr2);
	/* The current privilege level, 0-3. */
	int (*get_cpl)(struct mkvm_vcpu *vcpu);
	/*
	 * vcpu->arch.cr0, cr3, cr4 or efer changed: load what the hardware
	 * runs the guest with from the next entry on, and the intercepts.
	 */
	void (*update_crs)(struct mkvm_vcpu *vcpu);
	/*
	 * Where the intercepted instruction ends: from the hardware where it
	 * says, else RIP + @len, the length the generic handler knows.
	 */
	unsigned long (*next_rip)(struct mkvm_vcpu *vcpu, unsigned int len);
	/* The task priority the guest sees in CR8 (and the VMCB's V_TPR). */
	unsigned long (*get_cr8)(struct mkvm_vcpu *vcpu);
	void (*set_cr8)(struct mkvm_vcpu *vcpu, unsigned long cr8);
	/*
	 * Event injection.  Generic code (events.c) decides what to inject and
	 * when; the vendor puts it in its control block for the next entry,
	 * says whether the guest can take it now, and asks the hardware for an
	 * exit when it can (the "window").  The exception, NMI or interrupt is
	 * the one in vcpu->arch.events.
	 */
	void (*inject_exception)(struct mkvm_vcpu *vcpu);
	void (*inject_nmi)(struct mkvm_vcpu *vcpu);
	void (*inject_irq)(struct mkvm_vcpu *vcpu);
	bool (*interrupt_blocked)(struct mkvm_vcpu *vcpu);
	bool (*nmi_blocked)(struct mkvm_vcpu *vcpu);
	void (*enable_irq_window)(struct mkvm_vcpu *vcpu);
	void (*enable_nmi_window)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional: hand a local APIC vector to the hardware, which delivers
	 * it itself once RFLAGS.IF, the interrupt shadow and the TPR let it.
	 * The vector stays in IRR; after the exit the vendor calls
	 * mkvm_lapic_irq_taken() if the guest took it.  False: not now.
	 * A vector of -1 is the 8259's, which only a nested guest's
	 * hypervisor can be offered (as a #VMEXIT).
	 */
	bool (*offer_irq)(struct mkvm_vcpu *vcpu, int vector);
	/* KVM_X86_SHADOW_INT_* bits; the hardware may only know "some shadow". */
	u8 (*get_interrupt_shadow)(struct mkvm_vcpu *vcpu);
	void (*set_interrupt_shadow)(struct mkvm_vcpu *vcpu, u8 shadow);
	/* events.nmi_masked changed: the vendor watches for the handler's IRET. */
	void (*update_nmi_mask)(struct mkvm_vcpu *vcpu);
	/* Guest TSC = host TSC + offset, from the next entry on (time.h). */
	void (*set_tsc_offset)(struct mkvm_vcpu *vcpu, u64 offset);
	/*
	 * Intercept the guest's MOV to CR8 or not: wanted while the in-kernel
	 * local APIC holds an interrupt back only because of the TPR.
	 */
	void (*update_cr8_intercept)(struct mkvm_vcpu *vcpu, bool intercept);
	/* INIT (SDM vol. 3 9.1.1): the vendor's state as after RESET, but the TSC runs on. */
	void (*init_event)(struct mkvm_vcpu *vcpu);
	/*
	 * vcpu->arch.guest_debug changed (guest_debug.c): intercept #BP or
	 * not; with USE_HW_BP, intercept the debug registers and put the
	 * debugger's DR7 in force.
	 */
	void (*update_guest_debug)(struct mkvm_vcpu *vcpu);
	/* The entry format of the vendor's two-dimensional tables (enum mkvm_spte_format). */
	u8 tdp_format;
	/*
	 * Where KVM's two vendor modules differ in what the guest or the VMM
	 * sees, each as the reference KVM on that vendor behaves:
	 *  - amd_model_msrs: DE_CFG exists (model_msrs.c); kvm_intel has none.
	 *  - ucode_rev_reset: MSR_IA32_UCODE_REV of a new vCPU.
	 *  - cr8_unintercepted: the guest writes CR8 without an exit (SVM's
	 *    V_TPR), so the TPR is CR8 << 4 again after every exit and TPR[3:0]
	 *    do not last; on VMX every MOV to CR8 exits and the TPR keeps them.
	 *  - vmm_bp_skips_int3: a #BP or #OF the VMM injects returns past the
	 *    INT3 or INTO at RIP (events.c); kvm_intel injects it as it is,
	 *    to return by the length of the last #BP exit (vmx/events.c).
	 */
	bool amd_model_msrs;
	u64 ucode_rev_reset;
	bool cr8_unintercepted;
	bool vmm_bp_skips_int3;
	/* Run on the tables at @root_pa from the next entry on (mmu/mmu.c). */
	void (*load_mmu_root)(struct mkvm_vcpu *vcpu, u64 root_pa);
	/* Forget every translation the vCPU's TLB may hold, before the next entry. */
	void (*flush_tlb)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional, nested virtualization: before each entry, outside any
	 * lock, make the #VMEXIT (or VM exit) to the guest's own hypervisor
	 * that a pending event calls for while its guest runs.
	 */
	void (*nested_check_events)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional: end guest mode without an exit to the guest hypervisor,
	 * for the VMM's changes that its guest cannot survive.
	 */
	void (*leave_nested)(struct mkvm_vcpu *vcpu);
	/*
	 * Optional: an SMI or INIT must wait (SVM's GIF is clear, or L2 runs
	 * and the guest hypervisor is to see it first).
	 */
	bool (*smi_blocked)(struct mkvm_vcpu *vcpu);
	bool (*init_blocked)(struct mkvm_vcpu *vcpu);
	/* Optional: KVM_CAP_NESTED_STATE's size, and KVM_GET/SET_NESTED_STATE. */
	int (*nested_state_size)(void);
	long (*nested_state_ioctl)(struct mkvm_vcpu *vcpu, bool set, void __user *argp);
};

/* The nested module parameter (virt/kvm/kvm_main.c), cleared by a vendor that cannot nest. */
extern bool mkvm_nested;
/* CPUID 8000_000A EDX: the SVM features offered to a guest hypervisor (svm/nested.c). */
extern u32 mkvm_nested_svm_features;

/* arch/x86/kvm/params.c: the vendors' module parameters. */
extern bool mkvm_param_npt, mkvm_param_ept, mkvm_param_vpid, mkvm_param_unrestricted_guest;
extern bool mkvm_param_preemption_timer;
void mkvm_params_pick(bool svm);

extern const struct mkvm_x86_ops *mkvm_x86;
extern const struct mkvm_x86_ops mkvm_svm_ops;
extern const struct mkvm_x86_ops mkvm_vmx_ops;

static inline void mkvm_vcpu_load(struct mkvm_vcpu *vcpu)
{
	if (mkvm_x86->vcpu_load)
		mkvm_x86->vcpu_load(vcpu);
}

static inline void mkvm_vcpu_put(struct mkvm_vcpu *vcpu)
{
	if (mkvm_x86->vcpu_put)
		mkvm_x86->vcpu_put(vcpu);
}

/* arch/x86/kvm/x86.c: entry points from the core */
int mkvm_arch_init(void);
void mkvm_arch_exit(void);
long mkvm_arch_check_extension(struct mkvm_vm *vm, long cap);
long mkvm_arch_dev_ioctl(unsigned int ioctl, unsigned long arg);
long mkvm_arch_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, unsigned long arg);
long mkvm_arch_vcpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, unsigned long arg);
int mkvm_arch_vm_init(struct mkvm_vm *vm);
void mkvm_arch_vm_shutdown(struct mkvm_vm *vm);
void mkvm_arch_vm_destroy(struct mkvm_vm *vm);
int mkvm_arch_vcpu_create(struct mkvm_vcpu *vcpu);
void mkvm_arch_vcpu_destroy(struct mkvm_vcpu *vcpu);
void mkvm_arch_memslots_changed(struct mkvm_vm *vm);
void mkvm_vcpu_reset(struct mkvm_vcpu *vcpu, bool init);
void mkvm_vcpu_shutdown(struct mkvm_vcpu *vcpu);
bool mkvm_vcpu_is_reset_bsp(struct mkvm_vcpu *vcpu);
int mkvm_arch_vm_enable_cap(struct mkvm_vm *vm, const struct kvm_enable_cap *cap);

/* arch/x86/kvm/run.c */
int mkvm_vcpu_run(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/emulator/emulate.c */
int mkvm_exit_pio(struct mkvm_vcpu *vcpu, u16 port, u8 size, bool in, unsigned long next_rip);
int mkvm_emulate_mmio(struct mkvm_vcpu *vcpu, u64 gpa, bool write, bool table);
int mkvm_emulate_string_pio(struct mkvm_vcpu *vcpu, u16 port, u8 size, bool in);
int mkvm_emulate_complete(struct mkvm_vcpu *vcpu);
unsigned int mkvm_fetch_insn(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u8 *bytes,
			     struct mkvm_fault *fault, int *err);
bool mkvm_insn_at_rip(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, struct mkvm_insn *insn);
bool mkvm_fetch_decode(struct mkvm_vcpu *vcpu, struct kvm_sregs *s, struct mkvm_insn *insn,
		       int *r);
int mkvm_emulation_failed(struct mkvm_vcpu *vcpu, const u8 *bytes, unsigned int n);
int mkvm_emulate_ram_operand(struct mkvm_vcpu *vcpu);
bool mkvm_decode_intercepted(struct mkvm_vcpu *vcpu, struct kvm_sregs *s, struct mkvm_insn *insn,
			     int *gpr, unsigned int *len, int *r);
int mkvm_access_mem_operand(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
			    const struct mkvm_insn *insn, void *val, unsigned int size, bool write);
u64 mkvm_operand_la(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s,
		    const struct mkvm_insn *insn);

/* arch/x86/kvm/events.c */
void mkvm_rip_past_insn(struct mkvm_vcpu *vcpu, unsigned long next_rip);
void mkvm_vmm_soft_exception(struct mkvm_vcpu *vcpu);
void mkvm_vmm_soft_exception(struct mkvm_vcpu *vcpu);
void mkvm_queue_exception(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error);
void mkvm_queue_exception_payload(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error,
				  u64 payload);
void mkvm_events_exited(struct mkvm_vcpu *vcpu);
void mkvm_requeue_exception(struct mkvm_vcpu *vcpu, u8 vector, bool has_error, u32 error);
void mkvm_requeue_nmi(struct mkvm_vcpu *vcpu);
void mkvm_requeue_irq(struct mkvm_vcpu *vcpu, u8 vector);
void mkvm_inject_events(struct mkvm_vcpu *vcpu);
bool mkvm_irq_window_exit(struct mkvm_vcpu *vcpu);
void mkvm_post_run_save(struct mkvm_vcpu *vcpu);
long mkvm_events_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp);

/* arch/x86/kvm/cr.c */
int mkvm_set_cr0(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, unsigned long cr0);
int mkvm_set_cr4(struct mkvm_vcpu *vcpu, unsigned long cr4);
int mkvm_set_efer(struct mkvm_vcpu *vcpu, u64 efer, bool host);
int mkvm_set_cr3(struct mkvm_vcpu *vcpu, unsigned long cr3);
u64 mkvm_cr4_allowed(struct mkvm_vcpu *vcpu);
bool mkvm_sregs_valid(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s);
int mkvm_emulate_cr_access(struct mkvm_vcpu *vcpu, int cr, bool write, int gpr, unsigned int len);
void mkvm_load_sregs_crs(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s);

/* arch/x86/kvm/irqchip/cr8.c */
int mkvm_emulate_cr8_write(struct mkvm_vcpu *vcpu, int gpr, unsigned int len);

/* arch/x86/kvm/fpu.c */
void mkvm_fpu_init(void);
u64 mkvm_supported_xcr0(void);
u32 mkvm_xsave_size(u64 xcr0);
int mkvm_set_xcr(struct mkvm_vcpu *vcpu, u32 index, u64 value);
void mkvm_load_guest_xcr0(struct mkvm_vcpu *vcpu);
void mkvm_load_host_xcr0(struct mkvm_vcpu *vcpu);
void mkvm_save_host_pkru(struct mkvm_vcpu *vcpu);
void mkvm_load_host_pkru(struct mkvm_vcpu *vcpu);
long mkvm_fpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp);
long mkvm_xsave2_size(void);

/* arch/x86/kvm/cpuid.c */
void mkvm_cpuid_init(void);
int mkvm_dev_get_supported_cpuid(struct kvm_cpuid2 __user *arg);
int mkvm_vcpu_set_cpuid2(struct mkvm_vcpu *vcpu, struct kvm_cpuid2 __user *arg);
int mkvm_vcpu_get_cpuid2(struct mkvm_vcpu *vcpu, struct kvm_cpuid2 __user *arg);
void mkvm_emulate_cpuid(struct mkvm_vcpu *vcpu);
struct kvm_cpuid_entry2 *mkvm_find_cpuid_entry(struct mkvm_vcpu *vcpu, u32 fn, u32 index);
unsigned int mkvm_guest_maxphyaddr(struct mkvm_vcpu *vcpu);
void mkvm_cpuid_apic_changed(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/msrs.c */
int mkvm_copy_msr_list(struct kvm_msr_list __user *arg, const u32 *list, u32 n);
int mkvm_dev_get_msr_index_list(struct kvm_msr_list __user *arg);
int mkvm_vcpu_msrs_ioctl(struct mkvm_vcpu *vcpu, struct kvm_msrs __user *arg, bool set);
/* An MSR access minikvm refuses: a bad value (or not allowed), or an MSR it does not know. */
#define MKVM_MSR_INVALID 1
#define MKVM_MSR_UNKNOWN 2
int mkvm_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data);
void mkvm_get_regs(struct mkvm_vcpu *vcpu, struct kvm_regs *r);
void mkvm_set_regs(struct mkvm_vcpu *vcpu, const struct kvm_regs *r);
void mkvm_get_sregs(struct mkvm_vcpu *vcpu, struct kvm_sregs *s);
int mkvm_set_sregs(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s);
void mkvm_get_vcpu_events(struct mkvm_vcpu *vcpu, struct kvm_vcpu_events *e);
int mkvm_set_vcpu_events(struct mkvm_vcpu *vcpu, const struct kvm_vcpu_events *e);
int mkvm_sync_regs_from_run(struct mkvm_vcpu *vcpu);
void mkvm_sync_regs_to_run(struct mkvm_vcpu *vcpu);
int mkvm_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data);
int mkvm_vm_set_msr_filter(struct mkvm_vm *vm, void __user *arg);
void mkvm_msr_filter_destroy(struct mkvm_vm *vm);
int mkvm_enable_user_space_msr(struct mkvm_vm *vm, u64 reasons);
int mkvm_emulate_msr_access(struct mkvm_vcpu *vcpu, bool write, unsigned long next_rip);
void mkvm_complete_msr_access(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/model_msrs.c */
void mkvm_model_msrs_reset(struct mkvm_vcpu *vcpu);
int mkvm_dev_get_msr_feature_index_list(struct kvm_msr_list __user *arg);
int mkvm_dev_get_feature_msrs(struct kvm_msrs __user *arg);
int mkvm_model_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data);
int mkvm_model_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host);
/* arch/x86/kvm/mce.c */
void mkvm_mce_reset(struct mkvm_vcpu *vcpu);
int mkvm_mce_get_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 *data, bool host);
int mkvm_mce_set_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 data, bool host);
int mkvm_dev_get_mce_cap_supported(u64 __user *arg);
long mkvm_mce_vcpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp);
/* arch/x86/kvm/debugregs.c */
void mkvm_load_guest_drs(struct mkvm_vcpu *vcpu);
void mkvm_save_guest_drs(struct mkvm_vcpu *vcpu);
void mkvm_get_guest_dr67(struct mkvm_vcpu *vcpu, u64 *dr6, u64 *dr7);
void mkvm_set_guest_dr67(struct mkvm_vcpu *vcpu, u64 dr6, u64 dr7);
int mkvm_debugregs_ioctl(struct mkvm_vcpu *vcpu, void __user *argp, bool set);
int mkvm_emulate_dr_access(struct mkvm_vcpu *vcpu, int dr, bool write, int gpr, unsigned int len);

/* arch/x86/kvm/smm.c */
void mkvm_smm_reset(struct mkvm_vcpu *vcpu, bool init);
void mkvm_smm_inject(struct mkvm_vcpu *vcpu);
int mkvm_smm_rsm(struct mkvm_vcpu *vcpu);
int mkvm_smm_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host);
int mkvm_smm_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host);

/* arch/x86/kvm/exits.c: exit handlers for the vendors' tables */
int mkvm_exit_nothing(struct mkvm_vcpu *vcpu);
int mkvm_exit_intr(struct mkvm_vcpu *vcpu);
int mkvm_exit_ud(struct mkvm_vcpu *vcpu);
int mkvm_exit_cpuid(struct mkvm_vcpu *vcpu);
int mkvm_exit_xsetbv(struct mkvm_vcpu *vcpu);
int mkvm_exit_halt(struct mkvm_vcpu *vcpu);
int mkvm_complete_halt(struct mkvm_vcpu *vcpu, unsigned long next_rip);
int mkvm_exit_invd(struct mkvm_vcpu *vcpu);
int mkvm_exit_wbinvd(struct mkvm_vcpu *vcpu);
int mkvm_exit_rdpmc(struct mkvm_vcpu *vcpu);
int mkvm_exit_hypercall(struct mkvm_vcpu *vcpu);
int mkvm_exit_rdmsr(struct mkvm_vcpu *vcpu);
int mkvm_exit_wrmsr(struct mkvm_vcpu *vcpu);
int mkvm_exit_shutdown(struct mkvm_vcpu *vcpu);
int mkvm_exit_tdp_fault(struct mkvm_vcpu *vcpu, u64 gpa, u32 error_code, bool table);

/* arch/x86/kvm/speculation.c */
void mkvm_spec_vcpu_init(struct mkvm_vcpu *vcpu);
void mkvm_spec_before_entry(struct mkvm_vcpu *vcpu);
void mkvm_spec_after_exit(void);

/* arch/x86/kvm/tsc_aux.c */
bool mkvm_tsc_aux_supported(void);
void mkvm_tsc_aux_load(struct mkvm_vcpu *vcpu);
void mkvm_tsc_aux_exit(void);
void mkvm_tsc_aux_cpu_offline(void);
int mkvm_tsc_aux_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host);
int mkvm_tsc_aux_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host);

/* arch/x86/kvm/guest_debug.c */
u32 mkvm_guest_debug_supported(void);
int mkvm_set_guest_debug(struct mkvm_vcpu *vcpu, void __user *argp);
int mkvm_guest_debug_exit(struct mkvm_vcpu *vcpu, u8 vector, u64 pc);
int mkvm_guest_debug_step_exit(struct mkvm_vcpu *vcpu);
/* arch/x86/kvm/mtrr.c */
bool mkvm_mtrr_is_msr(u32 msr);
bool mkvm_pat_valid(u64 pat);
int mkvm_mtrr_get_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 *data);
int mkvm_mtrr_set_msr(struct mkvm_vcpu *vcpu, u32 msr, u64 data);

/* arch/x86/kvm/mmu/tdp.c */
int mkvm_tdp_init(struct mkvm_vm *vm);
void mkvm_tdp_destroy(struct mkvm_vm *vm);
void mkvm_tdp_zap_all(struct mkvm_vm *vm);
int mkvm_tdp_page_fault(struct mkvm_vcpu *vcpu, u64 gpa, u32 error_code);
#define MKVM_TDP_WRITE		BIT(0)
#define MKVM_TDP_PRESENT_ONLY	BIT(1)
int mkvm_tdp_translate(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int flags, u64 *hpa,
		       bool *writable, bool *huge);
u64 mkvm_tdp_root_pa(struct mkvm_vm *vm, int as);

#endif
