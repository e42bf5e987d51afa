// SPDX-License-Identifier: GPL-2.0
/*
 * The x86 layer's ioctls and lifetimes: what the core hands to the
 * architecture, routed to generic x86 code or, through mkvm_x86, to the
 * vendor.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include <asm/fpu/xstate.h>
#include <asm/reboot.h>
#include <asm/tsc.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>
#include <minikvm/pit.h>
#include <minikvm/walk.h>

const struct mkvm_x86_ops *mkvm_x86;

/**
 * mkvm_arch_init() - pick the vendor backend and set up the hardware
 *
 * Return: 0, or -EOPNOTSUPP when the CPU has neither SVM nor VMX, or the backend's error.
 */
int mkvm_arch_init(void)
{
	int r;

	if (boot_cpu_has(X86_FEATURE_SVM))
		mkvm_x86 = &mkvm_svm_ops;
	else if (boot_cpu_has(X86_FEATURE_VMX))
		mkvm_x86 = &mkvm_vmx_ops;
	else
		return -EOPNOTSUPP;
	mkvm_params_pick(mkvm_x86 == &mkvm_svm_ops);
	mkvm_fpu_init();
	/*
	 * Before any CPU turns virtualization on, and after the last turned it
	 * off: a crash or kexec in between would leave a CPU that blocks INIT.
	 */
	cpu_emergency_register_virt_callback(mkvm_x86->emergency_disable);
	r = mkvm_x86->hardware_setup();
	if (r) {
		cpu_emergency_unregister_virt_callback(mkvm_x86->emergency_disable);
		return r;
	}
	/* After the vendor: it says what nesting it can offer. */
	mkvm_cpuid_init();
	return 0;
}

void mkvm_arch_exit(void)
{
	/* No CPU may keep a guest's TSC_AUX, nor a notifier in this module. */
	mkvm_tsc_aux_exit();
	mkvm_x86->hardware_unsetup();
	cpu_emergency_unregister_virt_callback(mkvm_x86->emergency_disable);
}

/**
 * mkvm_arch_check_extension() - the x86 capabilities minikvm implements
 * @vm: the VM, or NULL on /dev/kvm
 * @cap: a KVM_CAP_* number
 *
 * Return: the value, or 0.
 */
long mkvm_arch_check_extension(struct mkvm_vm *vm, long cap)
{
	switch (cap) {
	case KVM_CAP_SET_TSS_ADDR:
	case KVM_CAP_SET_IDENTITY_MAP_ADDR:
	case KVM_CAP_EXT_CPUID:
	case KVM_CAP_IMMEDIATE_EXIT:
	case KVM_CAP_HLT:
	case KVM_CAP_READONLY_MEM:
	case KVM_CAP_USER_NMI:
	case KVM_CAP_VCPU_EVENTS:
	case KVM_CAP_MP_STATE:
	case KVM_CAP_DEBUGREGS:
	case KVM_CAP_XSAVE:
		return 1;
	case KVM_CAP_XCRS:
		return boot_cpu_has(X86_FEATURE_XSAVE);
	case KVM_CAP_XSAVE2:
		return mkvm_xsave2_size();
	case KVM_CAP_SYNC_REGS:
		return KVM_SYNC_X86_VALID_FIELDS;
	case KVM_CAP_GET_TSC_KHZ:
	case KVM_CAP_GET_MSR_FEATURES:
		return 1;
	case KVM_CAP_MCE:
		return MKVM_MCE_BANKS;
	case KVM_CAP_VAPIC:
	case KVM_CAP_X86_TRIPLE_FAULT_EVENT:
	case KVM_CAP_SET_GUEST_DEBUG:
	case KVM_CAP_SET_BOOT_CPU_ID:
	case KVM_CAP_MMU_SHADOW_CACHE_CONTROL:
	case KVM_CAP_X86_USER_SPACE_MSR:
	case KVM_CAP_X86_MSR_FILTER:
	case KVM_CAP_EXCEPTION_PAYLOAD:
	case KVM_CAP_X86_SMM:
		return 1;
	case KVM_CAP_SET_GUEST_DEBUG2:
		return mkvm_guest_debug_supported();
	case KVM_CAP_NESTED_STATE:
		return mkvm_x86->nested_state_size ? mkvm_x86->nested_state_size() : 0;
	case KVM_CAP_ADJUST_CLOCK:
		/* The flags KVM_SET_CLOCK accepts (kvmclock.c). */
		return KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
	default:
		return mkvm_irqchip_check_extension(cap);
	}
}

long mkvm_arch_dev_ioctl(unsigned int ioctl, unsigned long arg)
{
	switch (ioctl) {
	case KVM_GET_SUPPORTED_CPUID:
		return mkvm_dev_get_supported_cpuid((void __user *)arg);
	case KVM_GET_MSR_INDEX_LIST:
		return mkvm_dev_get_msr_index_list((void __user *)arg);
	case KVM_GET_MSR_FEATURE_INDEX_LIST:
		return mkvm_dev_get_msr_feature_index_list((void __user *)arg);
	case KVM_X86_GET_MCE_CAP_SUPPORTED:
		return mkvm_dev_get_mce_cap_supported((void __user *)arg);
	case KVM_GET_MSRS:
		return mkvm_dev_get_feature_msrs((void __user *)arg);
	default:
		return -EINVAL;
	}
}

/*
 * KVM's default page budget until userspace sets one: 2% of guest memory,
 * at least 64 once a slot has existed, 0 before.
 */
static unsigned long default_mmu_pages(struct mkvm_vm *vm)
{
	struct mkvm_memslot *s;
	unsigned long i;
	u64 pages = 0;

	mutex_lock(&vm->slots_lock);
	for (int as = 0; as < MKVM_ADDRESS_SPACES; as++)
		xa_for_each(&vm->memslots[as], i, s)
			pages += s->npages;
	mutex_unlock(&vm->slots_lock);
	return vm->had_memslots ? max_t(u64, pages * 20 / 1000, 64) : 0;
}

/**
 * mkvm_arch_vm_enable_cap() - KVM_ENABLE_CAP on the VM for x86 capabilities
 * @vm: the VM
 * @cap: the user's request
 *
 * Return: 0; -EINVAL for flags or a capability that cannot be enabled.
 */
int mkvm_arch_vm_enable_cap(struct mkvm_vm *vm, const struct kvm_enable_cap *cap)
{
	if (cap->flags)
		return -EINVAL;
	switch (cap->cap) {
	case KVM_CAP_X86_TRIPLE_FAULT_EVENT:
		/* KVM_GET/SET_VCPU_EVENTS carry a pending triple fault (events.c). */
		WRITE_ONCE(vm->arch.triple_fault_event, !!cap->args[0]);
		return 0;
	case KVM_CAP_X86_USER_SPACE_MSR:
		return mkvm_enable_user_space_msr(vm, cap->args[0]);
	case KVM_CAP_EXCEPTION_PAYLOAD:
		/* Pending exceptions and their CR2/DR6 payloads in KVM_GET/SET_VCPU_EVENTS. */
		WRITE_ONCE(vm->arch.exception_payload, !!cap->args[0]);
		return 0;
	default:
		return -EINVAL;
	}
}

long mkvm_arch_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, unsigned long arg)
{
	long r;

	switch (ioctl) {
	case KVM_SET_TSS_ADDR:
		/*
		 * Three pages below 4 GiB, as KVM checks on both vendors; only VMX
		 * without unrestricted guest uses them (vmx/rmode.c).
		 */
		if (arg > (u32)(-3 * PAGE_SIZE))
			return -EINVAL;
		WRITE_ONCE(vm->arch.tss_addr, arg);
		return 0;
	case KVM_SET_IDENTITY_MAP_ADDR: {
		u64 addr;

		/*
		 * Also only for VMX without unrestricted guest; SVM has no use for
		 * the address, but the checks are KVM's.
		 */
		mutex_lock(&vm->lock);
		r = vm->created_vcpus ? -EINVAL :
		    copy_from_user(&addr, (void __user *)arg, sizeof(addr)) ? -EFAULT : 0;
		mutex_unlock(&vm->lock);
		return r;
	}
	case KVM_GET_CLOCK:
	case KVM_SET_CLOCK:
		return mkvm_kvmclock_vm_ioctl(vm, ioctl, (void __user *)arg);
	case KVM_GET_TSC_KHZ:
		/* The rate new vCPUs get; there is no TSC scaling to choose another. */
		return tsc_khz;
	case KVM_SET_BOOT_CPU_ID:
		/* As KVM 6.1: any id, but only before the first vCPU. */
		mutex_lock(&vm->lock);
		r = vm->created_vcpus ? -EBUSY : 0;
		if (!r)
			WRITE_ONCE(vm->arch.bsp_vcpu_id, arg);
		mutex_unlock(&vm->lock);
		return r;
	case KVM_SET_NR_MMU_PAGES:
		/* KVM's floor; nested paging has no page budget to apply it to. */
		if (arg < 64)
			return -EINVAL;
		WRITE_ONCE(vm->arch.nr_mmu_pages, arg);
		return 0;
	case KVM_GET_NR_MMU_PAGES:
		return READ_ONCE(vm->arch.nr_mmu_pages) ?: default_mmu_pages(vm);
	case KVM_X86_SET_MSR_FILTER:
		return mkvm_vm_set_msr_filter(vm, (void __user *)arg);
	default:
		/* The in-kernel irqchip's, or ENOTTY. */
		return mkvm_irqchip_vm_ioctl(vm, ioctl, (void __user *)arg);
	}
}

/**
 * mkvm_get_regs() - KVM_GET_REGS, and kvm_run's copy with KVM_SYNC_X86_REGS
 * @vcpu: the vCPU, not running
 * @r: filled in
 */
void mkvm_get_regs(struct mkvm_vcpu *vcpu, struct kvm_regs *r)
{
	unsigned long *g = vcpu->arch.regs;

	*r = (struct kvm_regs){
		.rax = g[REG_RAX], .rbx = g[REG_RBX], .rcx = g[REG_RCX], .rdx = g[REG_RDX],
		.rsi = g[REG_RSI], .rdi = g[REG_RDI], .rsp = g[REG_RSP], .rbp = g[REG_RBP],
		.r8 = g[REG_R8], .r9 = g[REG_R9], .r10 = g[REG_R10], .r11 = g[REG_R11],
		.r12 = g[REG_R12], .r13 = g[REG_R13], .r14 = g[REG_R14], .r15 = g[REG_R15],
		.rip = vcpu->arch.rip, .rflags = vcpu->arch.rflags,
	};
}

/**
 * mkvm_set_regs() - KVM_SET_REGS, and kvm_run's copy with KVM_SYNC_X86_REGS
 * @vcpu: the vCPU, not running
 * @r: the registers
 */
void mkvm_set_regs(struct mkvm_vcpu *vcpu, const struct kvm_regs *r)
{
	unsigned long *g = vcpu->arch.regs;

	g[REG_RAX] = r->rax; g[REG_RBX] = r->rbx; g[REG_RCX] = r->rcx; g[REG_RDX] = r->rdx;
	g[REG_RSI] = r->rsi; g[REG_RDI] = r->rdi; g[REG_RSP] = r->rsp; g[REG_RBP] = r->rbp;
	g[REG_R8] = r->r8; g[REG_R9] = r->r9; g[REG_R10] = r->r10; g[REG_R11] = r->r11;
	g[REG_R12] = r->r12; g[REG_R13] = r->r13; g[REG_R14] = r->r14; g[REG_R15] = r->r15;
	vcpu->arch.rip = r->rip;
	/* Bit 1 is always set in RFLAGS (SDM vol. 1 3.4.3). */
	vcpu->arch.rflags = r->rflags | 2;
}

/**
 * mkvm_get_sregs() - KVM_GET_SREGS, and kvm_run's copy with KVM_SYNC_X86_SREGS
 * @vcpu: the vCPU, not running
 * @s: filled in
 */
void mkvm_get_sregs(struct mkvm_vcpu *vcpu, struct kvm_sregs *s)
{
	struct mkvm_events *ev = &vcpu->arch.events;

	memset(s, 0, sizeof(*s));
	mkvm_x86->get_sregs(vcpu, s);
	s->apic_base = vcpu->arch.apic_base;
	/* An interrupt whose delivery is under way, as KVM shows it (api.rst 4.13). */
	if (ev->irq.injected)
		__set_bit(ev->irq.vector, (unsigned long *)s->interrupt_bitmap);
}

/**
 * mkvm_set_sregs() - KVM_SET_SREGS, and kvm_run's copy with KVM_SYNC_X86_SREGS
 * @vcpu: the vCPU, not running
 * @s: the registers
 *
 * Return: 0, or -EINVAL for a state KVM refuses.
 */
int mkvm_set_sregs(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s)
{
	unsigned long irq;

	if (!mkvm_sregs_valid(vcpu, s) || mkvm_lapic_set_base(vcpu, s->apic_base, true))
		return -EINVAL;
	mkvm_x86->set_sregs(vcpu, s);
	/* As in KVM, the lowest vector in the bitmap is delivered next; none leaves it be. */
	irq = find_first_bit((const unsigned long *)s->interrupt_bitmap, 256);
	if (irq < 256) {
		vcpu->arch.events.irq.injected = true;
		vcpu->arch.events.irq.vector = irq;
	}
	/* With an in-kernel APIC, CR8 is its TPR. */
	if (vcpu->arch.lapic)
		mkvm_lapic_sync_tpr_from_guest(vcpu);
	return 0;
}

long mkvm_arch_vcpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	switch (ioctl) {
	case KVM_RUN:
		if (arg)
			return -EINVAL;
		return mkvm_vcpu_run(vcpu);
	case KVM_GET_REGS:
		mkvm_get_regs(vcpu, &regs);
		return copy_to_user(argp, &regs, sizeof(regs)) ? -EFAULT : 0;
	case KVM_SET_REGS:
		if (copy_from_user(&regs, argp, sizeof(regs)))
			return -EFAULT;
		mkvm_set_regs(vcpu, &regs);
		return 0;
	case KVM_GET_SREGS:
		mkvm_get_sregs(vcpu, &sregs);
		return copy_to_user(argp, &sregs, sizeof(sregs)) ? -EFAULT : 0;
	case KVM_SET_SREGS:
		if (copy_from_user(&sregs, argp, sizeof(sregs)))
			return -EFAULT;
		return mkvm_set_sregs(vcpu, &sregs);
	case KVM_SET_CPUID2:
		return mkvm_vcpu_set_cpuid2(vcpu, argp);
	case KVM_GET_CPUID2:
		return mkvm_vcpu_get_cpuid2(vcpu, argp);
	case KVM_GET_MSRS:
		return mkvm_vcpu_msrs_ioctl(vcpu, argp, false);
	case KVM_SET_MSRS:
		return mkvm_vcpu_msrs_ioctl(vcpu, argp, true);
	case KVM_SET_GUEST_DEBUG:
		return mkvm_set_guest_debug(vcpu, argp);
	case KVM_SET_VAPIC_ADDR:
	case KVM_TPR_ACCESS_REPORTING:
		return mkvm_vapic_ioctl(vcpu, ioctl, argp);
	case KVM_X86_SETUP_MCE:
	case KVM_X86_SET_MCE:
		return mkvm_mce_vcpu_ioctl(vcpu, ioctl, argp);
	case KVM_GET_DEBUGREGS:
	case KVM_SET_DEBUGREGS:
		return mkvm_debugregs_ioctl(vcpu, argp, ioctl == KVM_SET_DEBUGREGS);
	case KVM_GET_FPU:
	case KVM_SET_FPU:
	case KVM_GET_XSAVE:
	case KVM_GET_XSAVE2:
	case KVM_SET_XSAVE:
	case KVM_GET_XCRS:
	case KVM_SET_XCRS:
		return mkvm_fpu_ioctl(vcpu, ioctl, argp);
	case KVM_INTERRUPT:
	case KVM_NMI:
	case KVM_GET_VCPU_EVENTS:
	case KVM_SET_VCPU_EVENTS:
	case KVM_GET_MP_STATE:
	case KVM_SET_MP_STATE:
		return mkvm_events_ioctl(vcpu, ioctl, argp);
	case KVM_GET_TSC_KHZ:
	case KVM_SET_TSC_KHZ:
		return mkvm_tsc_vcpu_ioctl(vcpu, ioctl, arg);
	case KVM_GET_LAPIC:
	case KVM_SET_LAPIC:
		return mkvm_lapic_ioctl(vcpu, ioctl, argp);
	case KVM_TRANSLATE:
		return mkvm_translate_ioctl(vcpu, argp);
	case KVM_GET_NESTED_STATE:
	case KVM_SET_NESTED_STATE:
		if (!mkvm_x86->nested_state_ioctl)
			return -EINVAL;
		return mkvm_x86->nested_state_ioctl(vcpu, ioctl == KVM_SET_NESTED_STATE, argp);
	case KVM_SMI:
		/* Taken at the next entry that can (smm.c). */
		vcpu->arch.smm.pending = true;
		return 0;
	default:
		return -EINVAL;
	}
}

int mkvm_arch_vm_init(struct mkvm_vm *vm)
{
	INIT_HLIST_HEAD(&vm->arch.irq_ack_notifiers);
	INIT_HLIST_HEAD(&vm->arch.irq_mask_notifiers);
	mutex_init(&vm->arch.irq_notifiers_lock);
	mkvm_tsc_vm_init(vm);
	mkvm_kvmclock_vm_init(vm);
	return mkvm_tdp_init(vm);
}

/**
 * mkvm_arch_vm_shutdown() - stop the VM's own interrupt sources
 * @vm: the dying VM, whose vCPUs still exist
 */
void mkvm_arch_vm_shutdown(struct mkvm_vm *vm)
{
	mkvm_pit_destroy(vm);
}

void mkvm_arch_vm_destroy(struct mkvm_vm *vm)
{
	mkvm_irqchip_destroy(vm);
	mkvm_tdp_destroy(vm);
	mkvm_msr_filter_destroy(vm);
}

/**
 * mkvm_vcpu_reset() - the generic registers at power-on, after a shutdown, or at INIT
 * @vcpu: the vCPU; the vendor resets its own state (VMCB, VMCS) separately
 * @init: an INIT, which leaves SMBASE as it is
 *
 * SDM vol. 3 table 10-1, APM vol. 2 table 14-1.  Any I/O or emulation that
 * was waiting for userspace is dropped.
 */
void mkvm_vcpu_reset(struct mkvm_vcpu *vcpu, bool init)
{
	memset(vcpu->arch.regs, 0, sizeof(vcpu->arch.regs));
	memset(vcpu->arch.dr, 0, sizeof(vcpu->arch.dr));
	/* DR6 and DR7 at reset, for when the debugger holds the hardware's (debugregs.c). */
	vcpu->arch.guest_dr6 = MKVM_DR6_ACTIVE_LOW;
	vcpu->arch.guest_dr7 = MKVM_DR7_RESET;
	vcpu->arch.xcr0 = XFEATURE_MASK_FP;	/* SDM vol. 1 13.3 */
	vcpu->arch.regs[REG_RDX] = boot_cpu_data.x86 << 8 | boot_cpu_data.x86_model << 4 |
				   boot_cpu_data.x86_stepping;
	vcpu->arch.rip = 0xfff0;
	vcpu->arch.rflags = 2;
	vcpu->arch.emul.wait = EMUL_NONE;
	memset(&vcpu->arch.events, 0, sizeof(vcpu->arch.events));
	mkvm_smm_reset(vcpu, init);
	vcpu->arch.time.system_time_msr = 0;	/* kvmclock off; the TSC keeps counting */
}

/**
 * mkvm_vcpu_shutdown() - a triple fault: KVM_EXIT_SHUTDOWN, the vCPU as after RESET
 * @vcpu: the vCPU
 *
 * The vendor's state is undefined after a shutdown (APM 15.12), so the vCPU
 * starts over from its reset state, registers and all; its TSC runs on.
 */
void mkvm_vcpu_shutdown(struct mkvm_vcpu *vcpu)
{
	mkvm_x86->init_event(vcpu);
	mkvm_vcpu_reset(vcpu, false);
	vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
}

/**
 * mkvm_vcpu_is_reset_bsp() - whether the vCPU starts as the bootstrap processor
 * @vcpu: the vCPU
 *
 * Return: true for the id KVM_SET_BOOT_CPU_ID chose (0 by default).
 */
bool mkvm_vcpu_is_reset_bsp(struct mkvm_vcpu *vcpu)
{
	return vcpu->vcpu_id == READ_ONCE(vcpu->vm->arch.bsp_vcpu_id);
}

/**
 * mkvm_arch_vcpu_create() - x86 and vendor state of a new vCPU, at reset
 * @vcpu: the vCPU, with its id set
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_arch_vcpu_create(struct mkvm_vcpu *vcpu)
{
	int r;

	mkvm_vcpu_reset(vcpu, false);
	vcpu->arch.apic_base = APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE |
			       (mkvm_vcpu_is_reset_bsp(vcpu) ? MSR_IA32_APICBASE_BSP : 0);
	vcpu->arch.amd_guest = true;
	if (!fpu_alloc_guest_fpstate(&vcpu->arch.fpu))
		return -ENOMEM;
	vcpu->arch.mp_state = KVM_MP_STATE_RUNNABLE;
	r = mkvm_x86->vcpu_create(vcpu);
	if (!r) {
		r = mkvm_mmu_init(vcpu);
		if (r)
			mkvm_x86->vcpu_free(vcpu);
	}
	/* vm->lock ordered this after any KVM_CREATE_IRQCHIP. */
	if (!r && mkvm_irqchip_in_kernel(vcpu->vm)) {
		r = mkvm_lapic_create(vcpu);
		if (r) {
			mkvm_mmu_destroy(vcpu);
			mkvm_x86->vcpu_free(vcpu);
		}
	}
	if (r) {
		fpu_free_guest_fpstate(&vcpu->arch.fpu);
		return r;
	}
	mkvm_tsc_vcpu_init(vcpu);
	mkvm_spec_vcpu_init(vcpu);
	mkvm_model_msrs_reset(vcpu);
	mkvm_mce_reset(vcpu);
	return 0;
}

void mkvm_arch_vcpu_destroy(struct mkvm_vcpu *vcpu)
{
	mkvm_lapic_free(vcpu);
	mkvm_mmu_destroy(vcpu);
	mkvm_x86->vcpu_free(vcpu);
	fpu_free_guest_fpstate(&vcpu->arch.fpu);
	kfree(vcpu->arch.cpuid);
}

/**
 * mkvm_arch_memslots_changed() - drop every nested-paging mapping
 * @vm: the VM, whose memslots were just deleted or moved
 *
 * Called with no vCPU inside the guest (the caller holds slots_sem for write),
 * so no CPU walks the tables while they are freed.
 */
void mkvm_arch_memslots_changed(struct mkvm_vm *vm)
{
	mkvm_tdp_zap_all(vm);
}
