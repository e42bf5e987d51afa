// SPDX-License-Identifier: GPL-2.0
/*
 * Host-side helpers for VMs with an in-kernel irqchip: creation, MP state,
 * KVM_GET/SET_LAPIC, KVM_IRQ_LINE_STATUS, vCPU threads, and the TSC rate
 * that guest timer measurements are checked against.
 */
#include <inttypes.h>
#include <sys/ioctl.h>
#include <time.h>
#include <x86intrin.h>

#include "apic.h"

/**
 * vm_create_irqchip() - a long-mode VM with KVM_CREATE_IRQCHIP done
 *
 * vCPUs added afterwards get local APICs; all but vCPU 0 start
 * KVM_MP_STATE_UNINITIALIZED.
 *
 * Return: the VM.
 */
struct kvm_vm *vm_create_irqchip(void)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	return vm;
}

void vcpu_set_mp_state(struct kvm_vcpu *vcpu, uint32_t state)
{
	struct kvm_mp_state mp = { .mp_state = state };

	vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
}

uint32_t vcpu_get_mp_state(struct kvm_vcpu *vcpu)
{
	struct kvm_mp_state mp;

	vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	return mp.mp_state;
}

void vcpu_get_lapic(struct kvm_vcpu *vcpu, struct kvm_lapic_state *s)
{
	vcpu_ioctl(vcpu, KVM_GET_LAPIC, s, "KVM_GET_LAPIC");
}

void vcpu_set_lapic(struct kvm_vcpu *vcpu, struct kvm_lapic_state *s)
{
	vcpu_ioctl(vcpu, KVM_SET_LAPIC, s, "KVM_SET_LAPIC");
}

uint32_t lapic_reg(const struct kvm_lapic_state *s, uint32_t reg)
{
	uint32_t v;

	memcpy(&v, s->regs + reg, sizeof(v));
	return v;
}

void lapic_set_reg(struct kvm_lapic_state *s, uint32_t reg, uint32_t v)
{
	memcpy(s->regs + reg, &v, sizeof(v));
}

/**
 * vm_irq_line() - KVM_IRQ_LINE_STATUS
 * @vm: the VM
 * @gsi: the GSI
 * @level: the line's new level
 *
 * Return: the status KVM reports: APICs reached, 0 coalesced, -1 masked.
 */
int vm_irq_line(struct kvm_vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	vm_ioctl(vm, KVM_IRQ_LINE_STATUS, &irq, "KVM_IRQ_LINE_STATUS");
	return irq.status;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/**
 * host_tsc_hz() - the TSC rate, measured against CLOCK_MONOTONIC over 200 ms
 *
 * Guests see the host's TSC plus an offset, so this is their rate too.
 *
 * Return: ticks per second.
 */
uint64_t host_tsc_hz(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc(), t1, c1;

	do {
		t1 = now_ns();
	} while (t1 - t0 < 200000000ULL);
	c1 = __rdtsc();
	return (c1 - c0) * 1000000000ULL / (t1 - t0);
}

/**
 * check_tsc_time() - a time the guest measured in TSC ticks is near the programmed one
 * @what: the timer, for the messages
 * @got: the measured ticks
 * @want: the programmed ticks
 * @max_pct: the most @got may be, in percent of @want; the least is always 50%
 *
 * Emulated machines are slow and noisy, so the window is wide; a wrong
 * divider or clock is off by far more.
 */
void check_tsc_time(const char *what, uint64_t got, uint64_t want, unsigned int max_pct)
{
	test_log("%s: %" PRIu64 " TSC ticks, %" PRIu64 " expected", what, got, want);
	TEST_ASSERT(got >= want / 2 && got <= want * max_pct / 100,
		    "%s: %" PRIu64 " TSC ticks, expected %" PRIu64 " (50%% to %u%%)", what, got,
		    want, max_pct);
}

static void *vcpu_thread_fn(void *arg)
{
	struct vcpu_thread *t = arg;

	vcpu_run_until_done(t->vcpu);
	return NULL;
}

/**
 * vcpu_thread_start() - run a vCPU to UCALL_DONE in a new thread
 * @t: the thread's state
 * @vcpu: the vCPU, runnable
 */
void vcpu_thread_start(struct vcpu_thread *t, struct kvm_vcpu *vcpu)
{
	t->vcpu = vcpu;
	TEST_ASSERT(pthread_create(&t->thread, NULL, vcpu_thread_fn, t) == 0,
		    "pthread_create: %s", strerror(errno));
}

void vcpu_thread_join(struct vcpu_thread *t)
{
	pthread_join(t->thread, NULL);
}
