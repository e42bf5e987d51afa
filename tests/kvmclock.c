// SPDX-License-Identifier: GPL-2.0
/*
 * kvmclock (Documentation/virt/kvm/x86/msr.rst) and the VM clock:
 * the paravirtual CPUID leaves, the guest enabling the clock and reading it,
 * the wall clock, KVM_GET_CLOCK and KVM_SET_CLOCK.  Times are only compared
 * with each other (guest clock, guest TSC, KVM_GET_CLOCK, the host's
 * clocks) with wide margins: absolute times mean nothing under emulation.
 */
#include <sched.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"

#define MSR_KVM_WALL_CLOCK 0x11
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 3
#define KVM_FEATURE_CLOCKSOURCE_STABLE_BIT 24
#define NSEC 1000000000ULL

/* The guest ABI (arch/x86/include/asm/pvclock-abi.h). */
struct pvclock_vcpu_time_info {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed));

struct pvclock_wall_clock {
	uint32_t version;
	uint32_t sec;
	uint32_t nsec;
} __attribute__((packed));

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

/*
 * One kvmclock reading by the guest, as its protocol says: read the
 * version, the fields, and the version again, and start over when it
 * changed, which an update between two exits does (KVM updates the clock
 * of a vCPU before any entry, for instance at its periodic resync).  The
 * hypervisor writes the structure from the vCPU's own thread, so the guest
 * must never see an odd version (an update in progress).
 */
static uint64_t guest_kvmclock(volatile struct pvclock_vcpu_time_info *pv, uint64_t *tsc)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t version = pv->version;
		uint64_t delta, ns;

		GUEST_ASSERT(version && !(version & 1));
		asm volatile("lfence" ::: "memory");
		*tsc = rdtsc();
		delta = *tsc - pv->tsc_timestamp;
		if (pv->tsc_shift < 0)
			delta >>= -pv->tsc_shift;
		else
			delta <<= pv->tsc_shift;
		ns = pv->system_time +
		     (uint64_t)(((unsigned __int128)delta * pv->tsc_to_system_mul) >> 32);
		asm volatile("" ::: "memory");
		if (pv->version == version)
			return ns;
	}
	GUEST_ASSERT(!"kvmclock changed under 100 readings in a row");
	return 0;
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * NSEC + ts.tv_nsec;
}

static uint64_t vm_clock(struct kvm_vm *vm)
{
	struct kvm_clock_data data;

	memset(&data, 0xa5, sizeof(data));
	vm_ioctl(vm, KVM_GET_CLOCK, &data, "KVM_GET_CLOCK");
	return data.clock;
}

static void vm_set_clock(struct kvm_vm *vm, uint64_t clock, uint32_t flags, uint64_t realtime)
{
	struct kvm_clock_data data = { .clock = clock, .flags = flags, .realtime = realtime };

	vm_ioctl(vm, KVM_SET_CLOCK, &data, "KVM_SET_CLOCK");
}

static void guest_cpuid_leaves(void)
{
	uint32_t a, b, c, d;

	guest_cpuid(0x40000000, 0, &a, &b, &c, &d);
	GUEST_SYNC_ARGS(1, a, b | (uint64_t)c << 32, d);
	guest_cpuid(0x40000001, 0, &a, &b, &c, &d);
	GUEST_SYNC_ARGS(2, a, 0, 0);
}

TEST(paravirt_cpuid_leaves)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_cpuid_leaves);
	struct kvm_cpuid_entry2 *sig = cpuid_find(vm->cpuid, 0x40000000, 0);
	struct kvm_cpuid_entry2 *feat = cpuid_find(vm->cpuid, 0x40000001, 0);
	char name[13] = {};
	struct ucall uc;

	TEST_ASSERT(sig && feat, "KVM_GET_SUPPORTED_CPUID has 0x40000000 and 0x40000001");
	memcpy(name, &sig->ebx, 4);
	memcpy(name + 4, &sig->ecx, 4);
	memcpy(name + 8, &sig->edx, 4);
	TEST_ASSERT(!memcmp(name, "KVMKVMKVM\0\0\0", 12), "signature '%s'", name);
	TEST_ASSERT(sig->eax >= 0x40000001, "max leaf %#x", sig->eax);
	TEST_ASSERT(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE2), "CLOCKSOURCE2 %#x", feat->eax);
	TEST_ASSERT(feat->eax & (1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT), "STABLE_BIT");

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], sig->eax);
	TEST_ASSERT_EQ(uc.args[2], sig->ebx | (uint64_t)sig->ecx << 32);
	TEST_ASSERT_EQ(uc.args[3], sig->edx);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], feat->eax);
	vm_free(vm);
}

/*
 * Enables kvmclock, then reports (clock, TSC) after each run of monotonic
 * reads.  Only within a run: userspace may set the clock back in between.
 */
static void guest_clock_loop(uint64_t gpa)
{
	volatile struct pvclock_vcpu_time_info *pv = (void *)gpa;
	uint64_t prev, now, tsc;

	guest_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, gpa | 1);
	for (int stage = 1;; stage++) {
		prev = guest_kvmclock(pv, &tsc);
		for (int i = 0; i < 2000; i++) {
			now = guest_kvmclock(pv, &tsc);
			GUEST_ASSERT(now >= prev);
			prev = now;
		}
		GUEST_SYNC_ARGS(stage, now, tsc, 0);
	}
}

static struct kvm_vcpu *clock_vcpu(struct kvm_vm *vm)
{
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_clock_loop);

	vcpu_args_set(vcpu, 1, vm_alloc_pages(vm, 1));
	return vcpu;
}

static int64_t diff(uint64_t a, uint64_t b)
{
	return (int64_t)(a - b);
}

TEST(clock_is_monotonic_and_keeps_time)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = clock_vcpu(vm);
	uint64_t khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL), k1, t1, c1, k2, t2, c2;
	struct ucall uc;

	/* On one CPU, nothing makes the hypervisor rewrite the structure meanwhile. */
	pin_to_cpu(0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	c1 = vm_clock(vm);
	k1 = uc.args[1];
	t1 = uc.args[2];
	usleep(300000);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	c2 = vm_clock(vm);
	k2 = uc.args[1];
	t2 = uc.args[2];

	/* The guest's clock is the VM clock: same value, same rate. */
	TEST_ASSERT(llabs(diff(k1, c1)) < 200000000 && llabs(diff(k2, c2)) < 200000000,
		    "kvmclock %" PRIu64 " / %" PRIu64 ", KVM_GET_CLOCK %" PRIu64 " / %" PRIu64,
		    k1, k2, c1, c2);
	TEST_ASSERT(k2 - k1 > (c2 - c1) * 4 / 5 && k2 - k1 < (c2 - c1) * 5 / 4,
		    "kvmclock advanced %" PRIu64 " ns, the VM clock %" PRIu64, k2 - k1, c2 - c1);
	/* And it runs at the guest TSC's rate. */
	TEST_ASSERT(k2 - k1 > (t2 - t1) * 1000000 / khz * 9 / 10 &&
		    k2 - k1 < (t2 - t1) * 1000000 / khz * 11 / 10,
		    "kvmclock advanced %" PRIu64 " ns, TSC %" PRIu64 " cycles at %" PRIu64 " kHz",
		    k2 - k1, t2 - t1, khz);
	vm_free(vm);
}

TEST(set_clock_moves_the_guest_clock)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = clock_vcpu(vm);
	uint64_t k1, k2, k3;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	k1 = uc.args[1];
	vm_set_clock(vm, vm_clock(vm) + 1000 * NSEC, 0, 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	k2 = uc.args[1];
	TEST_ASSERT(k2 >= k1 + 1000 * NSEC && k2 < k1 + 1010 * NSEC,
		    "kvmclock %" PRIu64 ", then %" PRIu64 " after a step of 1000 s", k1, k2);
	/* Backwards too: userspace may restore an earlier clock. */
	vm_set_clock(vm, 3 * NSEC, 0, 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	k3 = uc.args[1];
	TEST_ASSERT(k3 >= 3 * NSEC && k3 < 13 * NSEC, "kvmclock %" PRIu64 " set to 3 s", k3);
	vm_free(vm);
}

TEST(get_set_clock)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	const uint32_t valid = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;
	struct kvm_clock_data data = {};
	uint64_t c, x = 5000 * NSEC;

	/* KVM_CAP_ADJUST_CLOCK is the set of flags KVM_SET_CLOCK takes. */
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_ADJUST_CLOCK), valid);
	c = vm_clock(vm);
	TEST_ASSERT(c < 60 * NSEC, "a new VM's clock is %" PRIu64 " ns", c);
	vm_ioctl(vm, KVM_GET_CLOCK, &data, "KVM_GET_CLOCK");
	TEST_ASSERT(!(data.flags & ~valid), "flags %#x", data.flags);
	if (data.flags & KVM_CLOCK_REALTIME)
		TEST_ASSERT(llabs(diff(data.realtime, now_ns(CLOCK_REALTIME))) < 5 * NSEC,
			    "realtime %" PRIu64, (uint64_t)data.realtime);
	/* What KVM_GET_CLOCK returned is accepted back. */
	vm_ioctl(vm, KVM_SET_CLOCK, &data, "KVM_SET_CLOCK");

	vm_set_clock(vm, x, 0, 0);
	c = vm_clock(vm);
	TEST_ASSERT(c >= x && c < x + 2 * NSEC, "clock %" PRIu64 " after setting 5000 s", c);
	/* REALTIME: the time since userspace read the clock is added... */
	vm_set_clock(vm, x, KVM_CLOCK_REALTIME, now_ns(CLOCK_REALTIME) - 3 * NSEC);
	c = vm_clock(vm);
	TEST_ASSERT(c >= x + 3 * NSEC && c < x + 5 * NSEC, "clock %" PRIu64, c);
	/* ...but a realtime in the future never steps it back. */
	vm_set_clock(vm, x, KVM_CLOCK_REALTIME, now_ns(CLOCK_REALTIME) + 100 * NSEC);
	c = vm_clock(vm);
	TEST_ASSERT(c >= x && c < x + 2 * NSEC, "clock %" PRIu64, c);

	data = (struct kvm_clock_data){ .clock = x, .flags = 1 };
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_CLOCK, &data), EINVAL);
	data.flags = 0x10;
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_CLOCK, &data), EINVAL);
	data.flags = 0x80000000;
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_CLOCK, &data), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_SET_CLOCK, (void *)8), EFAULT);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_CLOCK, (void *)8), EFAULT);
	/* The refused calls changed nothing. */
	c = vm_clock(vm);
	TEST_ASSERT(c >= x && c < x + 4 * NSEC, "clock %" PRIu64, c);
	vm_free(vm);
}

static void guest_wall_clock(uint64_t wc_gpa, uint64_t pv_gpa)
{
	volatile struct pvclock_wall_clock *wc = (void *)wc_gpa;
	uint64_t tsc, k;

	guest_wrmsr(MSR_KVM_WALL_CLOCK_NEW, wc_gpa);
	GUEST_ASSERT(wc->version && !(wc->version & 1));
	guest_wrmsr(MSR_KVM_SYSTEM_TIME_NEW, pv_gpa | 1);
	k = guest_kvmclock((void *)pv_gpa, &tsc);
	GUEST_SYNC_ARGS(1, wc->sec, wc->nsec, k);
}

/* The wall clock at VM clock 0, plus the guest's clock, is the time of day. */
TEST(wall_clock)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_wall_clock);
	uint64_t wc_gpa = vm_alloc_pages(vm, 1) + 0x100, pv_gpa = vm_alloc_pages(vm, 1), wall;
	struct ucall uc;

	/* Time since the VM's creation counts: start the clock far from 0 to see it. */
	vm_set_clock(vm, 100000 * NSEC, 0, 0);
	vcpu_args_set(vcpu, 2, wc_gpa, pv_gpa);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[2] < NSEC, "nsec %" PRIu64, uc.args[2]);
	wall = uc.args[1] * NSEC + uc.args[2] + uc.args[3];
	TEST_ASSERT(llabs(diff(wall, now_ns(CLOCK_REALTIME))) < 10 * NSEC,
		    "guest wall clock %" PRIu64 ", host %" PRIu64, wall, now_ns(CLOCK_REALTIME));
	/* One wall-clock address per VM, under both MSR numbers. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_WALL_CLOCK_NEW), wc_gpa);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_WALL_CLOCK), wc_gpa);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_SYSTEM_TIME_NEW), pv_gpa | 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_SYSTEM_TIME), pv_gpa | 1);
	vm_free(vm);
}

static void guest_read_only(uint64_t gpa)
{
	volatile struct pvclock_vcpu_time_info *pv = (void *)gpa;
	uint64_t tsc;

	GUEST_SYNC_ARGS(1, guest_kvmclock(pv, &tsc), 0, 0);
}

/* Userspace restores the MSR (as after a migration): the guest's clock runs at once. */
TEST(system_time_set_by_userspace)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, (void (*)(void))guest_read_only);
	uint64_t gpa = vm_alloc_pages(vm, 1);
	struct ucall uc;

	vcpu_set_msr(vcpu, MSR_KVM_SYSTEM_TIME, gpa | 1);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_SYSTEM_TIME_NEW), gpa | 1);
	vm_set_clock(vm, 7000 * NSEC, 0, 0);
	vcpu_args_set(vcpu, 1, gpa);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT(uc.args[1] >= 7000 * NSEC && uc.args[1] < 7010 * NSEC,
		    "kvmclock %" PRIu64, uc.args[1]);
	vm_free(vm);
}

/* A structure that would cross into the next page is never written, as in KVM. */
TEST(structure_across_pages_is_not_written)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_cpuid_leaves);
	uint64_t page = vm_alloc_pages(vm, 2), gpa = page + PAGE_SIZE - 16;
	uint8_t *hva = gpa2hva(vm, page);
	struct ucall uc;

	vcpu_set_msr(vcpu, MSR_KVM_SYSTEM_TIME_NEW, gpa | 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	for (unsigned int i = 0; i < 2 * PAGE_SIZE; i++)
		TEST_ASSERT(!hva[i], "byte %u of the pages is %#x", i, hva[i]);
	vm_free(vm);
}

/*
 * The vCPU thread moves between physical CPUs: the clock the guest reads
 * goes on following the VM clock, and both vCPUs of the VM agree.
 */
TEST(vcpus_moving_between_cpus_agree)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *v[2];
	uint64_t prev = 0, c;
	struct ucall uc;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP("needs two CPUs");
	for (int i = 0; i < 2; i++) {
		v[i] = vm_vcpu_add(vm, i, (void (*)(void))guest_clock_loop);
		vcpu_args_set(v[i], 1, vm_alloc_pages(vm, 1));
	}
	for (int round = 0; round < 8; round++) {
		pin_to_cpu(round % 2);
		for (int i = 0; i < 2; i++) {
			TEST_ASSERT_EQ(vcpu_run_ucall(v[i], &uc), UCALL_SYNC);
			c = vm_clock(vm);
			/* One reading after the other, from either vCPU: they only grow. */
			TEST_ASSERT(uc.args[1] + 10000000 > prev,
				    "round %d vCPU %d: kvmclock %" PRIu64 " after %" PRIu64,
				    round, i, uc.args[1], prev);
			TEST_ASSERT(llabs(diff(uc.args[1], c)) < 200000000,
				    "kvmclock %" PRIu64 ", KVM_GET_CLOCK %" PRIu64, uc.args[1], c);
			prev = uc.args[1];
		}
	}
	vm_free(vm);
}
