/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest time: the TSC each vCPU sees (arch/x86/kvm/tsc.c) and the KVM
 * paravirtual clock, kvmclock (arch/x86/kvm/kvmclock.c).  Shared by SVM and
 * VMX; the vendor only loads the TSC offset into its control block.
 */
#ifndef MINIKVM_TIME_H
#define MINIKVM_TIME_H

#include <linux/kvm.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct mkvm_vm;
struct mkvm_vcpu;

/* Per VM: the TSC writes that vCPUs match, and the kvmclock epoch. */
struct mkvm_vm_time {
	raw_spinlock_t tsc_lock;	/* the last_* and cur_* fields */
	u64 last_tsc_write;		/* value of the last host-initiated TSC write */
	u64 last_tsc_ns;		/* when it happened (mkvm_clock_base_ns()) */
	u32 last_tsc_khz;
	u64 cur_tsc_offset;		/* offset of the writes that matched each other */
	/* kvmclock = mkvm_clock_base_ns() + kvmclock_offset; written under clock_lock. */
	struct mutex clock_lock;
	s64 kvmclock_offset;
	u64 wall_clock_msr;		/* MSR_KVM_WALL_CLOCK(_NEW): a guest-physical address */
};

/* Per vCPU. */
struct mkvm_vcpu_time {
	u64 tsc_offset;			/* guest TSC = host TSC + tsc_offset */
	s64 tsc_adjust;			/* MSR_IA32_TSC_ADJUST */
	u32 tsc_khz;			/* the guest's TSC rate (KVM_GET_TSC_KHZ) */
	u32 tsc_mul;			/* pvclock scale from tsc_khz */
	s8 tsc_shift;
	u64 system_time_msr;		/* MSR_KVM_SYSTEM_TIME(_NEW): GPA | enable bit */
	bool clock_dirty;		/* pvclock must be rewritten before the next entry */
	int clock_cpu;			/* physical CPU of the last pvclock write */
};

/* arch/x86/kvm/tsc.c */
void mkvm_tsc_vm_init(struct mkvm_vm *vm);
void mkvm_tsc_vcpu_init(struct mkvm_vcpu *vcpu);
u64 mkvm_read_guest_tsc(struct mkvm_vcpu *vcpu, u64 host_tsc);
int mkvm_tsc_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data, bool host);
int mkvm_tsc_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host);
long mkvm_tsc_vcpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, unsigned long arg);

/* arch/x86/kvm/kvmclock.c */
u64 mkvm_clock_base_ns(void);
void mkvm_kvmclock_vm_init(struct mkvm_vm *vm);
int mkvm_kvmclock_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data);
int mkvm_kvmclock_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host);
void mkvm_kvmclock_request_update(struct mkvm_vcpu *vcpu);
void mkvm_kvmclock_pre_entry(struct mkvm_vcpu *vcpu);
bool mkvm_kvmclock_cpu_changed(struct mkvm_vcpu *vcpu);
long mkvm_kvmclock_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp);
int mkvm_kvmclock_cpuid(struct kvm_cpuid_entry2 *e);

#endif
