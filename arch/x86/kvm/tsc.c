// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's time-stamp counter, shared by SVM and VMX.
 *
 * The guest reads the host's TSC plus a per-vCPU offset that the vendor
 * loads into its control block (no TSC scaling: the guest's rate is the
 * host's).  A new vCPU starts from 0, and the vCPUs of one VM share one
 * offset: userspace TSC writes that land within a second of where the last
 * one would be by now are taken as "synchronize with the others", the rule
 * KVM applies so that VMMs writing each vCPU's TSC in turn keep them equal.
 * Guest writes to IA32_TSC move IA32_TSC_ADJUST by the same amount and
 * writes to IA32_TSC_ADJUST move the TSC (SDM vol. 3 17.17.3).
 */
#include <linux/math64.h>
#include <asm/msr-index.h>
#include <asm/tsc.h>

#include <minikvm/core.h>

/* Rates within this of the host's need no scaling, as in KVM (parts per million). */
#define TSC_KHZ_TOLERANCE_PPM 250
/* CPUID.(EAX=7,ECX=0):EBX[1], IA32_TSC_ADJUST (SDM vol. 2A CPUID). */
#define CPUID_7_EBX_TSC_ADJUST BIT(1)

/**
 * mkvm_tsc_vm_init() - TSC state of a new VM
 * @vm: the VM
 */
void mkvm_tsc_vm_init(struct mkvm_vm *vm)
{
	raw_spin_lock_init(&vm->arch.time.tsc_lock);
}

static u64 ns_to_cycles(u32 khz, u64 ns)
{
	return mul_u64_u32_div(ns, khz, USEC_PER_SEC);
}

static void write_offset(struct mkvm_vcpu *vcpu, u64 offset)
{
	vcpu->arch.time.tsc_offset = offset;
	mkvm_x86->set_tsc_offset(vcpu, offset);
	/* kvmclock's TSC timestamp is in guest TSC units: it must be redone. */
	mkvm_kvmclock_request_update(vcpu);
}

/*
 * A TSC write from userspace (or a vCPU's creation, which writes 0).  A
 * write close to where the previous one would be by now matches it: the
 * vCPU gets the same offset, so vCPUs written one after the other agree
 * exactly.  On a host whose TSCs are not synchronized the offset cannot be
 * shared, so the elapsed time is added to the value instead.
 */
static void tsc_host_write(struct mkvm_vcpu *vcpu, u64 data)
{
	struct mkvm_vm_time *t = &vcpu->vm->arch.time;
	u32 khz = vcpu->arch.time.tsc_khz;
	unsigned long flags;
	bool match = false;
	u64 ns, offset;

	raw_spin_lock_irqsave(&t->tsc_lock, flags);
	ns = mkvm_clock_base_ns();
	offset = data - rdtsc();
	if (khz && khz == t->last_tsc_khz) {
		u64 expect = t->last_tsc_write + ns_to_cycles(khz, ns - t->last_tsc_ns);
		s64 hz = khz * 1000LL;

		match = !data || abs((s64)(data - expect)) < hz;
	}
	if (match && !check_tsc_unstable()) {
		offset = t->cur_tsc_offset;
	} else if (match) {
		data += ns_to_cycles(khz, ns - t->last_tsc_ns);
		offset = data - rdtsc();
	} else {
		t->cur_tsc_offset = offset;
	}
	t->last_tsc_write = data;
	t->last_tsc_ns = ns;
	t->last_tsc_khz = khz;
	raw_spin_unlock_irqrestore(&t->tsc_lock, flags);
	write_offset(vcpu, offset);
}

/**
 * mkvm_tsc_vcpu_init() - a new vCPU's TSC: the host's rate, synchronized
 * @vcpu: the vCPU, after the vendor created its control block
 */
void mkvm_tsc_vcpu_init(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.time.tsc_khz = tsc_khz;
	tsc_host_write(vcpu, 0);
}

/**
 * mkvm_read_guest_tsc() - the guest's TSC at a given host TSC
 * @vcpu: the vCPU
 * @host_tsc: a value read with rdtsc()
 *
 * Return: the TSC the guest would have read at that moment.
 */
u64 mkvm_read_guest_tsc(struct mkvm_vcpu *vcpu, u64 host_tsc)
{
	return host_tsc + vcpu->arch.time.tsc_offset;
}

static bool guest_has_tsc_adjust(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = mkvm_find_cpuid_entry(vcpu, 7, 0);

	return e && (e->ebx & CPUID_7_EBX_TSC_ADJUST);
}

/**
 * mkvm_tsc_get_msr() - IA32_TSC and IA32_TSC_ADJUST
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 * @host: read by KVM_GET_MSRS rather than the guest
 *
 * Return: 0, or MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_tsc_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	switch (index) {
	case MSR_IA32_TSC:
		*data = mkvm_read_guest_tsc(vcpu, rdtsc());
		return 0;
	case MSR_IA32_TSC_ADJUST:
		*data = vcpu->arch.time.tsc_adjust;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_tsc_set_msr() - IA32_TSC and IA32_TSC_ADJUST
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 * @host: written by KVM_SET_MSRS rather than the guest
 *
 * Userspace writes to the TSC synchronize (see tsc_host_write()) and leave
 * TSC_ADJUST alone; its writes to TSC_ADJUST only set the MSR, so that a
 * restore in any order reproduces the saved state.  As in KVM, TSC_ADJUST
 * writes are ignored, not refused, when the guest's CPUID lacks it.
 *
 * Return: 0, or MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_tsc_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host)
{
	struct mkvm_vcpu_time *t = &vcpu->arch.time;
	s64 adj;

	switch (index) {
	case MSR_IA32_TSC:
		if (host) {
			tsc_host_write(vcpu, data);
			return 0;
		}
		adj = data - mkvm_read_guest_tsc(vcpu, rdtsc());
		write_offset(vcpu, t->tsc_offset + adj);
		t->tsc_adjust += adj;
		return 0;
	case MSR_IA32_TSC_ADJUST:
		if (!guest_has_tsc_adjust(vcpu))
			return 0;
		if (!host)
			write_offset(vcpu, t->tsc_offset + (data - t->tsc_adjust));
		t->tsc_adjust = data;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_tsc_vcpu_ioctl() - KVM_GET_TSC_KHZ and KVM_SET_TSC_KHZ on a vCPU
 * @vcpu: the vCPU
 * @ioctl: the ioctl
 * @arg: KVM_SET_TSC_KHZ: the rate in kHz, 0 for the host's
 *
 * Without TSC scaling only the host's rate (within KVM's tolerance) can be
 * given to a guest.
 *
 * Return: the rate for KVM_GET_TSC_KHZ; 0 or -EINVAL for KVM_SET_TSC_KHZ.
 */
long mkvm_tsc_vcpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, unsigned long arg)
{
	u32 khz = (u32)arg ?: tsc_khz;	/* only 32 bits count, as in KVM */
	u64 tolerance = div_u64((u64)tsc_khz * TSC_KHZ_TOLERANCE_PPM, USEC_PER_SEC);

	if (ioctl == KVM_GET_TSC_KHZ)
		return vcpu->arch.time.tsc_khz;
	if (!khz || khz < tsc_khz - tolerance || khz > tsc_khz + tolerance)
		return -EINVAL;
	vcpu->arch.time.tsc_khz = khz;
	return 0;
}
