// SPDX-License-Identifier: GPL-2.0
/*
 * IA32_TSC_AUX, which RDTSCP and RDPID return in the guest without an exit.
 *
 * VMRUN does not switch it (APM vol. 2 15.5.1), so without this the guest
 * would read the host's value, which Linux sets to the CPU and node number.
 * The guest's value is loaded before each entry, only when it differs from
 * what the CPU holds, and the host's is put back when the thread returns to
 * userspace (a user-return notifier, as KVM does): the host kernel itself
 * never reads TSC_AUX, only its userspace does (vgetcpu).
 */
#include <linux/cpu.h>
#include <linux/percpu.h>
#include <linux/smp.h>
#include <linux/user-return-notifier.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>

#include <minikvm/core.h>

struct tsc_aux_cpu {
	struct user_return_notifier urn;
	bool registered;	/* the host's value is to be put back */
	u64 host;		/* the host's value on this CPU */
	u64 cur;		/* what the MSR holds while registered */
};

static DEFINE_PER_CPU(struct tsc_aux_cpu, tsc_aux_cpus);

/**
 * mkvm_tsc_aux_supported() - the host has IA32_TSC_AUX (RDTSCP or RDPID)
 *
 * Return: true if so; the guest then gets RDTSCP and RDPID in CPUID and
 * the MSR in KVM_GET_MSR_INDEX_LIST.
 */
bool mkvm_tsc_aux_supported(void)
{
	return boot_cpu_has(X86_FEATURE_RDTSCP) || boot_cpu_has(X86_FEATURE_RDPID);
}

/* Runs with interrupts off: on the way to userspace, or in an IPI at unload. */
static void restore_host(struct tsc_aux_cpu *c)
{
	if (!c->registered)
		return;
	user_return_notifier_unregister(&c->urn);
	c->registered = false;
	if (c->cur != c->host)
		wrmsrl(MSR_TSC_AUX, c->host);
}

static void on_user_return(struct user_return_notifier *urn)
{
	unsigned long flags;

	local_irq_save(flags);
	restore_host(container_of(urn, struct tsc_aux_cpu, urn));
	local_irq_restore(flags);
}

/**
 * mkvm_tsc_aux_load() - put the guest's TSC_AUX in the CPU for the next entry
 * @vcpu: the vCPU, about to enter, with interrupts disabled
 */
void mkvm_tsc_aux_load(struct mkvm_vcpu *vcpu)
{
	struct tsc_aux_cpu *c = this_cpu_ptr(&tsc_aux_cpus);
	u64 guest = vcpu->arch.tsc_aux;

	if (!mkvm_tsc_aux_supported())
		return;
	if (!c->registered) {
		rdmsrl(MSR_TSC_AUX, c->host);
		c->cur = c->host;
		c->urn.on_user_return = on_user_return;
		user_return_notifier_register(&c->urn);
		c->registered = true;
	}
	if (c->cur != guest) {
		wrmsrl(MSR_TSC_AUX, guest);
		c->cur = guest;
	}
}

static void restore_this_cpu(void *unused)
{
	restore_host(this_cpu_ptr(&tsc_aux_cpus));
}

/**
 * mkvm_tsc_aux_cpu_offline() - this CPU goes offline: the host's value back, no notifier
 *
 * Called with interrupts off on the CPU itself, by the vendor's CPU-hotplug
 * teardown, which also runs on every online CPU at unload.  A CPU that only
 * ran kernel threads since the last entry would otherwise keep the
 * notifier (pointing into this module) and a stale idea of its MSR.
 */
void mkvm_tsc_aux_cpu_offline(void)
{
	restore_this_cpu(NULL);
}

/**
 * mkvm_tsc_aux_exit() - at unload: every CPU has the host's value, no notifier left
 */
void mkvm_tsc_aux_exit(void)
{
	cpus_read_lock();
	on_each_cpu(restore_this_cpu, NULL, 1);
	cpus_read_unlock();
}

/* CPUID leaf 0's vendor is "GenuineIntel". */
static bool intel_guest(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = mkvm_find_cpuid_entry(vcpu, 0, 0);

	return e && e->ebx == 0x756e6547 && e->edx == 0x49656e69 && e->ecx == 0x6c65746e;
}

static bool guest_may_use(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *ext = mkvm_find_cpuid_entry(vcpu, 0x80000001, 0);
	struct kvm_cpuid_entry2 *l7 = mkvm_find_cpuid_entry(vcpu, 7, 0);

	return (ext && (ext->edx & BIT(27))) || (l7 && (l7->ecx & BIT(22)));
}

/**
 * mkvm_tsc_aux_get_msr() - RDMSR and KVM_GET_MSRS of IA32_TSC_AUX
 * @vcpu: the vCPU
 * @index: the MSR
 * @data: its value
 * @host: userspace's access
 *
 * Return: 0; MKVM_MSR_INVALID for a guest whose CPUID has neither RDTSCP
 * nor RDPID, or a host without the MSR; MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_tsc_aux_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	if (index != MSR_TSC_AUX)
		return MKVM_MSR_UNKNOWN;
	if (!mkvm_tsc_aux_supported() || (!host && !guest_may_use(vcpu)))
		return MKVM_MSR_INVALID;
	*data = vcpu->arch.tsc_aux;
	return 0;
}

/**
 * mkvm_tsc_aux_set_msr() - WRMSR and KVM_SET_MSRS of IA32_TSC_AUX
 * @vcpu: the vCPU
 * @index: the MSR
 * @data: the value
 * @host: userspace's access
 *
 * As in KVM: bits 63:32 are reserved for a guest whose CPUID vendor is
 * Intel (SDM) and dropped for any other, as AMD CPUs ignore them.
 *
 * Return: 0; MKVM_MSR_INVALID as for RDMSR or for reserved bits;
 * MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_tsc_aux_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host)
{
	if (index != MSR_TSC_AUX)
		return MKVM_MSR_UNKNOWN;
	if (!mkvm_tsc_aux_supported() || (!host && !guest_may_use(vcpu)))
		return MKVM_MSR_INVALID;
	if (intel_guest(vcpu) && data >> 32)
		return MKVM_MSR_INVALID;
	vcpu->arch.tsc_aux = (u32)data;
	return 0;
}
