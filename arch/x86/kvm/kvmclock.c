// SPDX-License-Identifier: GPL-2.0
/*
 * kvmclock, KVM's paravirtual clock (Linux Documentation/virt/kvm/x86/msr.rst),
 * and the VM clock behind it (KVM_GET_CLOCK, KVM_SET_CLOCK).
 *
 * The VM clock counts nanoseconds from the VM's creation: the host's raw
 * monotonic time, with suspend, plus a per-VM offset that KVM_SET_CLOCK
 * moves.  A guest that enables kvmclock on a vCPU gets a struct
 * pvclock_vcpu_time_info in its memory: a (guest TSC, VM clock) pair and
 * the TSC rate, from which it extrapolates.  The pair is rewritten before
 * the vCPU next enters the guest whenever it may no longer hold: the MSR
 * was written, the TSC offset or the VM clock changed, or the vCPU moved to
 * another physical CPU (whose TSC may differ).
 *
 * There is no "master clock" shared by all vCPUs: each vCPU's pair is its
 * own, so PVCLOCK_TSC_STABLE_BIT is never set and the guest keeps the
 * readings of its vCPUs monotonic itself, as it does on KVM whenever the
 * host's clocksource is not the TSC.
 */
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <asm/kvm_para.h>
#include <asm/pvclock-abi.h>
#include <asm/tsc.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>

#define MKVM_CLOCK_VALID_FLAGS (KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC)
/* MSR_KVM_SYSTEM_TIME(_NEW) bit 0: the structure is enabled (msr.rst). */
#define SYSTEM_TIME_ENABLE 1ULL
/* The paravirtual features minikvm implements (Documentation/virt/kvm/x86/cpuid.rst). */
#define MKVM_PV_FEATURES (BIT(KVM_FEATURE_CLOCKSOURCE) | BIT(KVM_FEATURE_NOP_IO_DELAY) | \
			  BIT(KVM_FEATURE_CLOCKSOURCE2) | BIT(KVM_FEATURE_CLOCKSOURCE_STABLE_BIT))

/**
 * mkvm_clock_base_ns() - the host time that VM clocks follow
 *
 * Raw monotonic time runs at the hardware's rate, not slewed by NTP, so it
 * agrees with the TSC the guest extrapolates with; boot-time offset added,
 * so that it goes on across a host suspend.
 *
 * Return: nanoseconds.
 */
u64 mkvm_clock_base_ns(void)
{
	return ktime_to_ns(ktime_mono_to_any(ktime_get_raw(), TK_OFFS_BOOT));
}

static u64 vm_clock_ns(struct mkvm_vm *vm)
{
	return mkvm_clock_base_ns() + READ_ONCE(vm->arch.time.kvmclock_offset);
}

/**
 * mkvm_kvmclock_vm_init() - a new VM's clock starts at 0
 * @vm: the VM
 */
void mkvm_kvmclock_vm_init(struct mkvm_vm *vm)
{
	mutex_init(&vm->arch.time.clock_lock);
	vm->arch.time.kvmclock_offset = -(s64)mkvm_clock_base_ns();
}

/*
 * The pvclock scale: ns = ((delta << shift) * mul) >> 32, shifting right
 * for a negative shift (msr.rst).  The shift brings the rate into
 * (1 GHz, 2 GHz], so that mul is below 2^32 with 31 bits of precision.
 */
static void time_scale(u64 hz, s8 *shift, u32 *mul)
{
	s8 s = 0;

	/* An uncalibrated TSC (tsc_khz 0): a clock that stands still, not a hang. */
	if (!hz) {
		*shift = 0;
		*mul = 0;
		return;
	}

	while (hz > 2 * NSEC_PER_SEC) {
		hz >>= 1;
		s--;
	}
	while (hz <= NSEC_PER_SEC) {
		hz <<= 1;
		s++;
	}
	*shift = s;
	*mul = div64_u64((u64)NSEC_PER_SEC << 32, hz);
}

/*
 * The version protocol (pvclock-abi.h): odd while the hypervisor writes,
 * even when done.  It goes on from the guest's value, so that a guest that
 * remembers a version never sees it repeat.
 */
static int begin_update(struct mkvm_vcpu *vcpu, u64 gpa, u32 *version)
{
	if (mkvm_guest_phys_as(vcpu, 0, gpa, version, sizeof(*version), false))
		return -EFAULT;
	*version = (*version + 1) | 1;
	return mkvm_guest_phys_as(vcpu, 0, gpa, version, sizeof(*version), true);
}

static void end_update(struct mkvm_vcpu *vcpu, u64 gpa, u32 version)
{
	smp_wmb();
	version++;
	mkvm_guest_phys_as(vcpu, 0, gpa, &version, sizeof(version), true);
}

static void write_pvclock(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vcpu_time *t = &vcpu->arch.time;
	u64 gpa = t->system_time_msr & ~SYSTEM_TIME_ENABLE;
	struct pvclock_vcpu_time_info pv = {};
	unsigned long flags;
	u64 host_tsc, ns;

	/* Like KVM, a structure that crosses a page boundary is never written. */
	if (offset_in_page(gpa) + sizeof(pv) > PAGE_SIZE)
		return;
	if (begin_update(vcpu, gpa, &pv.version))
		return;
	/* The pair is read with interrupts off, so both describe one instant. */
	local_irq_save(flags);
	t->clock_cpu = smp_processor_id();
	host_tsc = rdtsc();
	ns = mkvm_clock_base_ns();
	local_irq_restore(flags);
	pv.tsc_timestamp = mkvm_read_guest_tsc(vcpu, host_tsc);
	pv.system_time = ns + READ_ONCE(vcpu->vm->arch.time.kvmclock_offset);
	/* No TSC scaling: the guest's TSC runs at the host's rate. */
	time_scale(tsc_khz * 1000ULL, &pv.tsc_shift, &pv.tsc_to_system_mul);
	smp_wmb();
	mkvm_guest_phys_as(vcpu, 0, gpa, &pv, sizeof(pv), true);
	end_update(vcpu, gpa, pv.version);
}

/*
 * pvclock_wall_clock holds the wall-clock time at which the VM clock was 0;
 * the guest adds its kvmclock reading.  Written once per MSR write (msr.rst).
 */
static void write_wall_clock(struct mkvm_vcpu *vcpu, u64 gpa)
{
	struct pvclock_wall_clock wc;
	u64 wall;

	if (!gpa || begin_update(vcpu, gpa, &wc.version))
		return;
	wall = ktime_get_real_ns() - vm_clock_ns(vcpu->vm);
	wc.nsec = do_div(wall, NSEC_PER_SEC);
	wc.sec = (u32)wall;	/* the ABI's 32 bits of seconds run out in 2106 */
	smp_wmb();
	mkvm_guest_phys_as(vcpu, 0, gpa, &wc, sizeof(wc), true);
	end_update(vcpu, gpa, wc.version);
}

/**
 * mkvm_kvmclock_request_update() - rewrite the vCPU's pvclock before it next runs
 * @vcpu: the vCPU
 */
void mkvm_kvmclock_request_update(struct mkvm_vcpu *vcpu)
{
	/* Pairs with the xchg() in mkvm_kvmclock_pre_entry(): new values first. */
	smp_wmb();
	WRITE_ONCE(vcpu->arch.time.clock_dirty, true);
}

/**
 * mkvm_kvmclock_pre_entry() - write a pending pvclock update
 * @vcpu: the vCPU, in KVM_RUN with slots_sem held for read, interrupts on
 */
void mkvm_kvmclock_pre_entry(struct mkvm_vcpu *vcpu)
{
	if (!xchg(&vcpu->arch.time.clock_dirty, false))
		return;
	/* Even if the write fails: mkvm_kvmclock_cpu_changed() must not ask again. */
	vcpu->arch.time.clock_cpu = raw_smp_processor_id();
	if (vcpu->arch.time.system_time_msr & SYSTEM_TIME_ENABLE)
		write_pvclock(vcpu);
}

/**
 * mkvm_kvmclock_cpu_changed() - the vCPU is about to run on another CPU
 * @vcpu: the vCPU, with interrupts disabled just before guest entry
 *
 * Return: true when the pvclock was written on another physical CPU; an
 * update is then pending and the caller must go round again.
 */
bool mkvm_kvmclock_cpu_changed(struct mkvm_vcpu *vcpu)
{
	struct mkvm_vcpu_time *t = &vcpu->arch.time;

	if (!(t->system_time_msr & SYSTEM_TIME_ENABLE) || t->clock_cpu == smp_processor_id())
		return false;
	WRITE_ONCE(t->clock_dirty, true);
	return true;
}

/**
 * mkvm_kvmclock_get_msr() - the kvmclock MSRs
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 *
 * Return: 0, or MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_kvmclock_get_msr(struct mkvm_vcpu *vcpu, u32 index, u64 *data)
{
	switch (index) {
	case MSR_KVM_WALL_CLOCK:
	case MSR_KVM_WALL_CLOCK_NEW:
		*data = READ_ONCE(vcpu->vm->arch.time.wall_clock_msr);
		return 0;
	case MSR_KVM_SYSTEM_TIME:
	case MSR_KVM_SYSTEM_TIME_NEW:
		*data = vcpu->arch.time.system_time_msr;
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

/**
 * mkvm_kvmclock_set_msr() - the kvmclock MSRs
 * @vcpu: the vCPU
 * @index: MSR number
 * @data: the value
 * @host: written by KVM_SET_MSRS; the guest's writes come with slots_sem held
 *
 * The old (0x11, 0x12) and new numbers behave the same, as in KVM.  The
 * wall clock is written at once; the vCPU's pvclock before its next entry.
 *
 * Return: 0, or MKVM_MSR_UNKNOWN for another MSR.
 */
int mkvm_kvmclock_set_msr(struct mkvm_vcpu *vcpu, u32 index, u64 data, bool host)
{
	struct mkvm_vm *vm = vcpu->vm;

	switch (index) {
	case MSR_KVM_WALL_CLOCK:
	case MSR_KVM_WALL_CLOCK_NEW:
		WRITE_ONCE(vm->arch.time.wall_clock_msr, data);
		if (host)
			down_read(&vm->slots_sem);
		write_wall_clock(vcpu, data);
		if (host)
			up_read(&vm->slots_sem);
		return 0;
	case MSR_KVM_SYSTEM_TIME:
	case MSR_KVM_SYSTEM_TIME_NEW:
		vcpu->arch.time.system_time_msr = data;
		mkvm_kvmclock_request_update(vcpu);
		return 0;
	default:
		return MKVM_MSR_UNKNOWN;
	}
}

static int set_clock(struct mkvm_vm *vm, struct kvm_clock_data *data)
{
	struct mkvm_vcpu *vcpu;
	unsigned long i;
	u64 now;

	/* The flags KVM_GET_CLOCK may return are accepted back; only REALTIME is used. */
	if (data->flags & ~MKVM_CLOCK_VALID_FLAGS)
		return -EINVAL;
	mutex_lock(&vm->arch.time.clock_lock);
	if (data->flags & KVM_CLOCK_REALTIME) {
		/* Count the time since userspace read the clock, but never step back. */
		now = ktime_get_real_ns();
		if (now > data->realtime)
			data->clock += now - data->realtime;
	}
	WRITE_ONCE(vm->arch.time.kvmclock_offset, data->clock - mkvm_clock_base_ns());
	xa_for_each(&vm->vcpus, i, vcpu)
		mkvm_kvmclock_request_update(vcpu);
	mutex_unlock(&vm->arch.time.clock_lock);
	return 0;
}

/**
 * mkvm_kvmclock_vm_ioctl() - KVM_GET_CLOCK and KVM_SET_CLOCK
 * @vm: the VM
 * @ioctl: the ioctl
 * @argp: the user's struct kvm_clock_data
 *
 * KVM_GET_CLOCK returns no flags: without a master clock, KVM does the same.
 *
 * Return: 0, -EFAULT, or -EINVAL for unknown flags to KVM_SET_CLOCK.
 */
long mkvm_kvmclock_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp)
{
	struct kvm_clock_data data = {};

	if (ioctl == KVM_GET_CLOCK) {
		data.clock = vm_clock_ns(vm);
		return copy_to_user(argp, &data, sizeof(data)) ? -EFAULT : 0;
	}
	if (copy_from_user(&data, argp, sizeof(data)))
		return -EFAULT;
	return set_clock(vm, &data);
}

/**
 * mkvm_kvmclock_cpuid() - KVM's paravirtual CPUID leaves for KVM_GET_SUPPORTED_CPUID
 * @e: room for two entries
 *
 * Return: the number of entries filled, 2.
 */
int mkvm_kvmclock_cpuid(struct kvm_cpuid_entry2 *e)
{
	/* "KVMKVMKVM\0\0\0" in EBX, ECX, EDX (Documentation/virt/kvm/x86/cpuid.rst). */
	e[0] = (struct kvm_cpuid_entry2){ .function = KVM_CPUID_SIGNATURE,
					  .eax = KVM_CPUID_FEATURES, .ebx = 0x4b4d564b,
					  .ecx = 0x564b4d56, .edx = 0x4d };
	e[1] = (struct kvm_cpuid_entry2){ .function = KVM_CPUID_FEATURES,
					  .eax = MKVM_PV_FEATURES };
	return 2;
}
