// SPDX-License-Identifier: GPL-2.0
/*
 * VMX on the host: what the capability MSRs allow (SDM vol. 3 appendix A),
 * VMXON and VMXOFF on each CPU as it comes and goes and on an emergency
 * reboot, and the VPIDs handed to vCPUs.
 */
#include <linux/bitmap.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/io.h>
#include <asm/perf_event.h>
#include <asm/msr.h>
#include <asm/reboot.h>
#include <asm/tlbflush.h>

#include "vmx.h"

#include <asm/virtext.h>

struct mkvm_vmx_caps mkvm_vmx_caps;
bool mkvm_vmx_l1d_flush;

/*
 * L1 terminal fault: a guest's non-present PTE can name any host physical
 * address, and the CPU may then forward L1D data to it speculatively.  Where
 * the CPU has the bug, its L1D is flushed before every entry (KVM's
 * l1tf=flush), unless it says entries need not (ARCH_CAPABILITIES).
 */
static void setup_l1d_flush(void)
{
	u64 cap = 0;

	if (!boot_cpu_has_bug(X86_BUG_L1TF))
		return;
	if (boot_cpu_has(X86_FEATURE_ARCH_CAPABILITIES))
		rdmsrl_safe(MSR_IA32_ARCH_CAPABILITIES, &cap);
	if (cap & ARCH_CAP_SKIP_VMENTRY_L1DFLUSH)
		return;
	if (boot_cpu_has(X86_FEATURE_FLUSH_L1D))
		mkvm_vmx_l1d_flush = true;
	else
		pr_warn("minikvm: L1TF: this CPU cannot flush its L1D cache before guest entry, so "
			"a guest may read host data from it\n");
}

static struct page * __percpu *vmxon_pages;
static int vmx_cpuhp_state;
/* VPIDs in use; 0 is the host's (SDM vol. 3 28.1). */
static unsigned long *vpid_bitmap;
static DEFINE_SPINLOCK(vpid_lock);
#define NR_VPIDS 65536

/**
 * mkvm_vmx_alloc_vpid() - a VPID of its own for a new vCPU
 *
 * Return: the VPID, or 0 (untagged, flushed at every entry and exit) with
 * vpid=0 or when all are taken.
 */
int mkvm_vmx_alloc_vpid(void)
{
	int id;

	if (!mkvm_param_vpid)
		return 0;
	spin_lock(&vpid_lock);
	id = find_first_zero_bit(vpid_bitmap, NR_VPIDS);
	if (id < NR_VPIDS)
		__set_bit(id, vpid_bitmap);
	else
		id = 0;		/* none left: run untagged, flushed at every entry and exit */
	spin_unlock(&vpid_lock);
	return id;
}

/**
 * mkvm_vmx_free_vpid() - give a VPID back
 * @id: what mkvm_vmx_alloc_vpid() returned
 */
void mkvm_vmx_free_vpid(int id)
{
	if (!id)
		return;
	spin_lock(&vpid_lock);
	__clear_bit(id, vpid_bitmap);
	spin_unlock(&vpid_lock);
}

static u32 controls(u32 required, u32 optional, u32 allowed)
{
	return (required | optional) & allowed;
}

static int vmx_cpu_online(unsigned int cpu)
{
	u64 pa = page_to_phys(*per_cpu_ptr(vmxon_pages, cpu));
	unsigned long flags;
	int r = 0;

	local_irq_save(flags);
	if (cr4_read_shadow() & X86_CR4_VMXE) {
		pr_err("minikvm: VMX is already on on CPU %u, by someone else\n", cpu);
		r = -EBUSY;
		goto out;
	}
	/* VMXON needs CR4.VMXE and the fixed CR0/CR4 bits (SDM vol. 3 24.7, 24.8). */
	cr4_set_bits_irqsoff(X86_CR4_VMXE);
	/* Intel PT may not trace in VMX operation on every CPU (SDM vol. 3 32.3). */
	intel_pt_handle_vmx(1);
	/* A #GP (VMX locked off after all) is a failure too, not an oops. */
	asm volatile goto("1: vmxon %[pa]\n\t"
			  "jna %l[fail]\n\t"
			  _ASM_EXTABLE(1b, %l[fail])
			  : : [pa] "m" (pa) : "cc", "memory" : fail);
	/* Whatever another hypervisor left cached under any EPTP or VPID goes. */
	if (mkvm_vmx_caps.ept_vpid & VMX_EPT_EXTENT_GLOBAL_BIT)
		invept(VMX_EPT_EXTENT_GLOBAL, 0);
	goto out;
fail:
	intel_pt_handle_vmx(0);
	cr4_clear_bits_irqsoff(X86_CR4_VMXE);
	pr_err("minikvm: VMXON failed on CPU %u\n", cpu);
	r = -EIO;
out:
	local_irq_restore(flags);
	return r;
}

static void vmx_off(void)
{
	if (cr4_read_shadow() & X86_CR4_VMXE) {
		cpu_vmxoff();
		intel_pt_handle_vmx(0);
	}
}

static int vmx_cpu_offline(unsigned int cpu)
{
	unsigned long flags;

	local_irq_save(flags);
	mkvm_tsc_aux_cpu_offline();
	vmx_off();
	local_irq_restore(flags);
	return 0;
}

/**
 * mkvm_vmx_emergency_disable() - VMX off on this CPU, for an emergency reboot or kexec
 *
 * INIT is blocked in VMX operation: the next kernel would hang.  Intel PT is
 * left alone: nothing should start tracing again on the way down.
 */
void mkvm_vmx_emergency_disable(void)
{
	if (cr4_read_shadow() & X86_CR4_VMXE)
		cpu_vmxoff();
}

static void free_vmxon_pages(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct page *p = *per_cpu_ptr(vmxon_pages, cpu);

		if (p)
			__free_page(p);
	}
	free_percpu(vmxon_pages);
}

/*
 * The MSR bitmap (SDM vol. 3 25.6.9), one for every vCPU: each MSR access
 * exits but for the guest's segment bases and SYSENTER MSRs, which live in
 * the VMCS, and KERNEL_GS_BASE, which is the guest's on the CPU while its
 * VMCS is current and is read back when it stops being so (vmcs.c).  A VM
 * with an MSR filter runs without it (vmx_run()).
 */
unsigned long *mkvm_vmx_msr_bitmap;
static const u32 passthrough_msrs[] = {
	MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE,
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
};

/* Four 1 KiB quarters: reads of 0-0x1fff, of 0xc0000000-0xc0001fff, then writes of each. */
static int setup_msr_bitmap(void)
{
	mkvm_vmx_msr_bitmap = (unsigned long *)__get_free_page(GFP_KERNEL);
	if (!mkvm_vmx_msr_bitmap)
		return -ENOMEM;
	memset(mkvm_vmx_msr_bitmap, 0xff, PAGE_SIZE);
	for (int i = 0; i < ARRAY_SIZE(passthrough_msrs); i++) {
		u32 msr = passthrough_msrs[i];
		unsigned int bit = (msr >= 0xc0000000 ? 1024 * 8 : 0) + (msr & 0x1fff);

		__clear_bit(bit, mkvm_vmx_msr_bitmap);
		__clear_bit(2048 * 8 + bit, mkvm_vmx_msr_bitmap);
	}
	return 0;
}

/*
 * One control MSR (SDM vol. 3 A.3-A.5): the low half has the bits that
 * must be 1, the high half those that may be.  Required bits that may not
 * be 1 make the CPU unusable.
 */
static int adjust(u32 msr, u32 required, u32 optional, u32 *out)
{
	u64 v;

	rdmsrl(msr, v);
	if (required & ~(u32)(v >> 32)) {
		pr_err("minikvm: VMX control MSR %#x lacks %#x\n", msr,
		       required & ~(u32)(v >> 32));
		return -EOPNOTSUPP;
	}
	*out = controls(required, optional, v >> 32) | (u32)v;
	return 0;
}

static int setup_controls(void)
{
	struct mkvm_vmx_caps *c = &mkvm_vmx_caps;
	u64 basic, misc;
	bool true_ctls;
	u32 proc2_opt = 0, proc_msr;
	u32 proc_req = CPU_BASED_HLT_EXITING | CPU_BASED_MWAIT_EXITING | CPU_BASED_RDPMC_EXITING |
		       CPU_BASED_CR8_LOAD_EXITING | CPU_BASED_CR8_STORE_EXITING |
		       CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_MONITOR_EXITING |
		       CPU_BASED_USE_TSC_OFFSETTING | CPU_BASED_ACTIVATE_SECONDARY_CONTROLS;
	int r;

	rdmsrl(MSR_IA32_VMX_BASIC, basic);
	c->revision = basic & 0x7fffffff;
	true_ctls = basic & VMX_BASIC_TRUE_CTLS;
	proc_msr = true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS;
	/* The "true" MSRs let default-1 controls such as CR3 exiting be cleared (SDM A.2). */
	r = adjust(true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS,
		   PIN_BASED_EXT_INTR_MASK | PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS,
		   mkvm_param_preemption_timer ? PIN_BASED_VMX_PREEMPTION_TIMER : 0, &c->pin);
	r = r ?: adjust(proc_msr, proc_req, CPU_BASED_USE_MSR_BITMAPS, &c->proc);
	r = r ?: adjust(true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS,
			VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_ACK_INTR_ON_EXIT |
			VM_EXIT_SAVE_IA32_EFER | VM_EXIT_LOAD_IA32_EFER | VM_EXIT_SAVE_IA32_PAT |
			VM_EXIT_LOAD_IA32_PAT | VM_EXIT_SAVE_DEBUG_CONTROLS, 0, &c->exit);
	r = r ?: adjust(true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS,
			VM_ENTRY_LOAD_IA32_EFER | VM_ENTRY_LOAD_IA32_PAT |
			VM_ENTRY_LOAD_DEBUG_CONTROLS, 0, &c->entry);
	if (r)
		return r;
	/* Made 1 by must-be-1 bits in some MSRs, though minikvm sets it per entry. */
	c->entry &= ~VM_ENTRY_IA32E_MODE;
	/*
	 * The VMX-preemption timer, armed per entry while a LAPIC timer is
	 * (vmx.c); its rate is IA32_VMX_MISC bits 4:0 (SDM vol. 3 A.6).  It
	 * counts the TSC, whose rate the host must know.
	 */
	mkvm_param_preemption_timer = (c->pin & PIN_BASED_VMX_PREEMPTION_TIMER) && tsc_khz &&
				      boot_cpu_has(X86_FEATURE_CONSTANT_TSC);
	c->pin &= ~PIN_BASED_VMX_PREEMPTION_TIMER;
	rdmsrl(MSR_IA32_VMX_MISC, misc);
	c->preemption_rate = misc & VMX_MISC_PREEMPTION_TIMER_RATE_MASK;

	rdmsrl(MSR_IA32_VMX_EPT_VPID_CAP, c->ept_vpid);
	if (!(c->ept_vpid & VMX_EPT_PAGE_WALK_4_BIT) || !(c->ept_vpid & VMX_EPTP_WB_BIT) ||
	    !(c->ept_vpid & VMX_EPT_INVEPT_BIT))
		mkvm_param_ept = false;
	/* The VPID capabilities are the MSR's upper half (SDM vol. 3 A.10). */
	if (!((c->ept_vpid >> 32) & VMX_VPID_INVVPID_BIT) ||
	    !((c->ept_vpid >> 32) & VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT))
		mkvm_param_vpid = false;
	if (mkvm_param_ept)
		proc2_opt |= SECONDARY_EXEC_ENABLE_EPT;
	if (mkvm_param_vpid)
		proc2_opt |= SECONDARY_EXEC_ENABLE_VPID;
	if (mkvm_param_ept && mkvm_param_unrestricted_guest)
		proc2_opt |= SECONDARY_EXEC_UNRESTRICTED_GUEST;
	/*
	 * Without these, RDTSCP and INVPCID raise #UD in the guest (SDM 25.6.2);
	 * XSAVES does.  On the shadow MMU INVPCID raises #UD, as on SVM: with
	 * INVLPG exiting it would exit, and it would leave the shadow as it is.
	 */
	proc2_opt |= SECONDARY_EXEC_ENABLE_RDTSCP;
	if (mkvm_param_ept)
		proc2_opt |= SECONDARY_EXEC_ENABLE_INVPCID;
	/* WBINVD would flush the host's caches, shared ones too, at the guest's will. */
	proc2_opt |= SECONDARY_EXEC_WBINVD_EXITING;
	/* A vCPU spinning on a lock held by a vCPU that is not running gives its CPU up. */
	proc2_opt |= SECONDARY_EXEC_PAUSE_LOOP_EXITING;
	r = adjust(MSR_IA32_VMX_PROCBASED_CTLS2, 0, proc2_opt, &c->proc2);
	if (r)
		return r;
	mkvm_param_ept = c->proc2 & SECONDARY_EXEC_ENABLE_EPT;
	mkvm_param_vpid = c->proc2 & SECONDARY_EXEC_ENABLE_VPID;
	mkvm_param_unrestricted_guest = c->proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST;
	/*
	 * Unrestricted guest needs EPT (SDM vol. 3 26.2.1.1).  Without it VM
	 * entry wants CR0.PE and PG set: paging off is the shadow MMU's
	 * identity map, and real mode runs in virtual-8086 mode (rmode.c).  With EPT,
	 * paging off without unrestricted guest would need an identity table in
	 * guest memory, which minikvm does not build: refused at load.
	 */
	if (mkvm_param_ept && !mkvm_param_unrestricted_guest) {
		pr_err("minikvm: EPT without unrestricted guest is not supported: use ept=0\n");
		return -EOPNOTSUPP;
	}
	/* The shadow MMU's: the guest's CR3 and INVLPG, and its own #PF (vmx.c). */
	if (!mkvm_param_ept) {
		r = adjust(proc_msr, proc_req | CPU_BASED_CR3_LOAD_EXITING |
			   CPU_BASED_CR3_STORE_EXITING | CPU_BASED_INVLPG_EXITING,
			   CPU_BASED_USE_MSR_BITMAPS, &c->proc);
		if (r)
			return r;
	}
	rdmsrl(MSR_IA32_VMX_CR0_FIXED0, c->cr0_fixed0);
	rdmsrl(MSR_IA32_VMX_CR0_FIXED1, c->cr0_fixed1);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED0, c->cr4_fixed0);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED1, c->cr4_fixed1);
	return 0;
}

/**
 * mkvm_vmx_hardware_setup() - check the CPU, pick the controls, VMXON on every CPU
 *
 * Return: 0, -EOPNOTSUPP for a CPU minikvm cannot run guests on, or -ENOMEM.
 */
int mkvm_vmx_hardware_setup(void)
{
	int cpu, r;

	if (!boot_cpu_has(X86_FEATURE_VMX))
		return -EOPNOTSUPP;
	r = setup_controls();
	if (r)
		return r;
	setup_l1d_flush();
	mkvm_tdp_enabled = mkvm_param_ept;
	if (mkvm_nested) {
		pr_info("minikvm: nested VMX is not supported yet: nested=0\n");
		mkvm_nested = false;
	}
	vpid_bitmap = bitmap_zalloc(NR_VPIDS, GFP_KERNEL);
	vmxon_pages = alloc_percpu(struct page *);
	if (!vpid_bitmap || !vmxon_pages || setup_msr_bitmap()) {
		r = -ENOMEM;
		goto free;
	}
	__set_bit(0, vpid_bitmap);
	for_each_possible_cpu(cpu) {
		struct page *p = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);

		if (!p) {
			r = -ENOMEM;
			goto free;
		}
		*(u32 *)page_address(p) = mkvm_vmx_caps.revision;
		*per_cpu_ptr(vmxon_pages, cpu) = p;
	}
	preempt_notifier_inc();
	r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "minikvm/vmx:online", vmx_cpu_online,
			      vmx_cpu_offline);
	if (r < 0) {
		preempt_notifier_dec();
		goto free;
	}
	vmx_cpuhp_state = r;
	if (mkvm_param_ept)
		pr_info("minikvm: VMX with EPT, VPID %s, unrestricted guest\n",
			mkvm_param_vpid ? "on" : "off");
	else
		pr_info("minikvm: VMX on the shadow MMU, VPID %s; real mode in virtual-8086 mode\n",
			mkvm_param_vpid ? "on" : "off");
	return 0;

free:
	if (vmxon_pages)
		free_vmxon_pages();
	bitmap_free(vpid_bitmap);
	free_page((unsigned long)mkvm_vmx_msr_bitmap);
	return r;
}

/**
 * mkvm_vmx_hardware_unsetup() - VMXOFF on every CPU, and free what setup took
 */
void mkvm_vmx_hardware_unsetup(void)
{
	cpuhp_remove_state(vmx_cpuhp_state);
	preempt_notifier_dec();
	free_vmxon_pages();
	bitmap_free(vpid_bitmap);
	free_page((unsigned long)mkvm_vmx_msr_bitmap);
}
