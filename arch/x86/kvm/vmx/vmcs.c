// SPDX-License-Identifier: GPL-2.0
/*
 * Where a vCPU's VMCS is current.  Only while the vCPU's thread runs in
 * one of its ioctls: made current (VMPTRLD) at the start and whenever the
 * thread is scheduled in, written back and made inactive (VMCLEAR) when
 * it is scheduled out and at the end.  So a VMCS is never active on a CPU
 * other than the one its thread runs on (SDM vol. 3 25.11.1), no CPU needs
 * to be asked to clear one, and a CPU that goes offline holds none.
 */
#include <linux/percpu.h>
#include <linux/preempt.h>
#include <asm/desc.h>
#include <asm/msr.h>

#include "vmx.h"

const u32 mkvm_vmx_guest_msrs[MKVM_VMX_GUEST_MSRS] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
};

/**
 * mkvm_vmx_vmclear() - write a VMCS back to memory and make it inactive
 * @pa: its physical address
 */
void mkvm_vmx_vmclear(u64 pa)
{
	asm volatile goto("vmclear %[pa]\n\tjna %l[fail]" : : [pa] "m" (pa) : "cc" : fail);
	return;
fail:
	WARN_ONCE(1, "minikvm: vmclear %#llx failed\n", pa);
}

static void vmptrld(u64 pa)
{
	asm volatile goto("vmptrld %[pa]\n\tjna %l[fail]" : : [pa] "m" (pa) : "cc" : fail);
	return;
fail:
	WARN_ONCE(1, "minikvm: vmptrld %#llx failed\n", pa);
}


/*
 * Make the VMCS current on @cpu, with the host state that is per CPU
 * (SDM vol. 3 26.2.3): TR, GDTR and IDTR bases, SYSENTER_ESP and GS's base.
 * The syscall MSRs and KERNEL_GS_BASE, which the guest uses without an
 * exit (SYSCALL, SWAPGS), are the guest's from here to vmx_put_cpu().
 */
static void vmx_load_cpu(struct mkvm_vcpu *vcpu, int cpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	struct desc_ptr idt;
	u64 v;

	vmptrld(vmx->vmcs_pa);
	vmx->cpu = cpu;
	vmcs_write(HOST_TR_BASE, (unsigned long)&get_cpu_entry_area(cpu)->tss.x86_tss);
	vmcs_write(HOST_GDTR_BASE, (unsigned long)get_current_gdt_ro());
	store_idt(&idt);
	vmcs_write(HOST_IDTR_BASE, idt.address);
	rdmsrl(MSR_IA32_SYSENTER_ESP, v);
	vmcs_write(HOST_IA32_SYSENTER_ESP, v);
	rdmsrl(MSR_GS_BASE, v);
	vmcs_write(HOST_GS_BASE, v);
	rdmsrl(MSR_FS_BASE, vmx->host_fs_base);
	vmcs_write(HOST_FS_BASE, vmx->host_fs_base);
	/* A VM exit nulls these (SDM vol. 3 27.5.2): kept for the way back. */
	savesegment(ds, vmx->host_ds);
	savesegment(es, vmx->host_es);
	savesegment(fs, vmx->host_fs);
	savesegment(gs, vmx->host_gs);
	store_ldt(vmx->host_ldt);

	for (int i = 0; i < MKVM_VMX_GUEST_MSRS; i++) {
		rdmsrl(mkvm_vmx_guest_msrs[i], vmx->host_msr[i]);
		wrmsrl(mkvm_vmx_guest_msrs[i], vmx->guest_msr[i]);
	}
}

/*
 * Write the VMCS back to memory and make it inactive (VMCLEAR), so that
 * the next CPU may load it; give the host its MSRs back, the selectors and
 * LDT that a VM exit nulls (a 32-bit VMM's, say) and the GDT limit that it
 * sets to 64 KiB (SDM vol. 3 27.5.2).  Before a task switch saves them.
 */
static void vmx_put_cpu(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	if (vmx->cpu < 0)
		return;
	mkvm_vmx_vmclear(vmx->vmcs_pa);
	vmx->cpu = -1;
	vmx->launched = false;
	if (vmx->host_ldt)
		asm volatile("lldt %0" : : "rm" (vmx->host_ldt));
	if (vmx->host_ds | vmx->host_es) {
		loadsegment(ds, vmx->host_ds);
		loadsegment(es, vmx->host_es);
	}
	if (vmx->host_fs) {
		loadsegment(fs, vmx->host_fs);
		wrmsrl(MSR_FS_BASE, vmx->host_fs_base);
	}
	/* SWAPGS is the only one the guest changes without an exit. */
	rdmsrl(MSR_KERNEL_GS_BASE, vmx->guest_msr[MKVM_VMX_GUEST_MSRS - 1]);
	/*
	 * The user's GS selector goes through SWAPGS into the base restored
	 * below; meanwhile KERNEL_GS_BASE must not be the guest's, which an
	 * NMI between the SWAPGSes could take for the kernel's GS base.
	 */
	if (vmx->host_gs) {
		wrmsrl(MSR_KERNEL_GS_BASE, vmx->host_msr[MKVM_VMX_GUEST_MSRS - 1]);
		load_gs_index(vmx->host_gs);
	}
	for (int i = 0; i < MKVM_VMX_GUEST_MSRS; i++)
		wrmsrl(mkvm_vmx_guest_msrs[i], vmx->host_msr[i]);
	load_fixmap_gdt(smp_processor_id());
}

static void vmx_sched_in(struct preempt_notifier *pn, int cpu)
{
	struct mkvm_vmx_vcpu *vmx = container_of(pn, struct mkvm_vmx_vcpu, pn);

	vmx_load_cpu(vmx->vcpu, cpu);
}

static void vmx_sched_out(struct preempt_notifier *pn, struct task_struct *next)
{
	struct mkvm_vmx_vcpu *vmx = container_of(pn, struct mkvm_vmx_vcpu, pn);

	vmx_put_cpu(vmx->vcpu);
}

static struct preempt_ops vmx_preempt_ops = {
	.sched_in = vmx_sched_in,
	.sched_out = vmx_sched_out,
};

/**
 * mkvm_vmx_vcpu_load() - make the vCPU's VMCS current for an ioctl in this thread
 * @vcpu: the vCPU
 */
void mkvm_vmx_vcpu_load(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);
	int cpu = get_cpu();

	preempt_notifier_register(&vmx->pn);
	vmx_load_cpu(vcpu, cpu);
	put_cpu();
}

/**
 * mkvm_vmx_vcpu_put() - the ioctl is over: clear the VMCS, the host's MSRs back
 * @vcpu: the vCPU
 */
void mkvm_vmx_vcpu_put(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	preempt_disable();
	vmx_put_cpu(vcpu);
	preempt_notifier_unregister(&vmx->pn);
	preempt_enable();
}

/**
 * mkvm_vmx_vmcs_init() - a new vCPU's VMCS, cleared, and its scheduling hooks
 * @vcpu: the vCPU
 */
void mkvm_vmx_vmcs_init(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vmx_vcpu *vmx = to_vmx(vcpu);

	preempt_notifier_init(&vmx->pn, &vmx_preempt_ops);
	/* A new VMCS must be cleared once before its first VMPTRLD (SDM vol. 3 25.11.3). */
	preempt_disable();
	mkvm_vmx_vmclear(vmx->vmcs_pa);
	preempt_enable();
}
