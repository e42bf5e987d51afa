/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Local APIC, IOAPIC and 8259 helpers for selftests with an in-kernel
 * irqchip: register offsets (SDM vol. 3 ch. 10, 82093AA), guest-side
 * accessors, and host-side helpers for VMs with several vCPUs, each run by
 * its own thread.
 */
#ifndef MINIKVM_TEST_APIC_H
#define MINIKVM_TEST_APIC_H

#include <pthread.h>
#include <stdint.h>

#include "kvm_util.h"

#define APIC_GPA		0xfee00000ULL
#define IOAPIC_GPA		0xfec00000ULL
#define MSR_APIC_BASE		0x1b
#define MSR_TSC_DEADLINE	0x6e0
#define X2APIC_MSR(reg)		(0x800 + ((reg) >> 4))

/* Register offsets in the xAPIC page and in struct kvm_lapic_state. */
enum {
	APIC_ID = 0x20, APIC_LVR = 0x30, APIC_TPR = 0x80, APIC_PPR = 0xa0, APIC_EOI = 0xb0,
	APIC_LDR = 0xd0, APIC_DFR = 0xe0, APIC_SVR = 0xf0, APIC_ISR = 0x100,
	APIC_TMR = 0x180, APIC_IRR = 0x200, APIC_ICR = 0x300, APIC_ICR2 = 0x310,
	APIC_LVTT = 0x320, APIC_LVT0 = 0x350, APIC_LVT1 = 0x360, APIC_LVTERR = 0x370,
	APIC_TMICT = 0x380, APIC_TMCCT = 0x390, APIC_TDCR = 0x3e0, APIC_SELF_IPI = 0x3f0,
};

#define APIC_SVR_ENABLE		(1u << 8)
#define APIC_LVT_MASKED		(1u << 16)
#define APIC_TIMER_PERIODIC	(1u << 17)
#define APIC_TIMER_DEADLINE	(2u << 17)
#define APIC_TDCR_DIV1		0xb
/* ICR fields (SDM figure 10-12). */
#define ICR_FIXED		0x000
#define ICR_LOWEST		0x100
#define ICR_NMI			0x400
#define ICR_INIT		0x500
#define ICR_SIPI		0x600
#define ICR_LOGICAL		(1u << 11)
#define ICR_ASSERT		(1u << 14)
#define ICR_LEVEL		(1u << 15)
#define ICR_SELF		(1u << 18)
#define ICR_ALL			(2u << 18)
#define ICR_ALL_BUT_SELF	(3u << 18)
/* IOAPIC redirection entries (82093AA 3.2.4). */
#define RTE_LEVEL		(1ull << 15)
#define RTE_REMOTE_IRR		(1ull << 14)
#define RTE_MASKED		(1ull << 16)

/* Guest side: the xAPIC page and the IOAPIC are identity-mapped MMIO. */
static inline uint32_t xapic_read(uint32_t reg)
{
	return *(volatile uint32_t *)(APIC_GPA + reg);
}

static inline void xapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(APIC_GPA + reg) = v;
}

/* This vCPU's xAPIC id (SDM 10.4.6). */
static inline uint32_t xapic_id(void)
{
	return xapic_read(APIC_ID) >> 24;
}

/* Software-enable the APIC with spurious vector 0xff (SDM 10.9). */
static inline void xapic_enable(void)
{
	xapic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
}

static inline void xapic_icr(uint32_t dest, uint32_t low)
{
	xapic_write(APIC_ICR2, dest << 24);
	xapic_write(APIC_ICR, low);
}

static inline bool apic_vec_set(uint32_t (*rd)(uint32_t), uint32_t base, uint8_t v)
{
	return rd(base + (v >> 5) * 0x10) & (1u << (v & 31));
}

static inline uint32_t ioapic_read(uint32_t reg)
{
	*(volatile uint32_t *)IOAPIC_GPA = reg;
	return *(volatile uint32_t *)(IOAPIC_GPA + 0x10);
}

static inline void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)IOAPIC_GPA = reg;
	*(volatile uint32_t *)(IOAPIC_GPA + 0x10) = v;
}

static inline void ioapic_set_rte(int pin, uint64_t rte)
{
	ioapic_write(0x11 + 2 * pin, rte >> 32);
	ioapic_write(0x10 + 2 * pin, (uint32_t)rte);
}

static inline uint64_t ioapic_get_rte(int pin)
{
	return ioapic_read(0x10 + 2 * pin) | (uint64_t)ioapic_read(0x11 + 2 * pin) << 32;
}

static inline uint64_t guest_rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

/* Host side (lib/irqchip.c). */
struct kvm_vm *vm_create_irqchip(void);
void vcpu_set_mp_state(struct kvm_vcpu *vcpu, uint32_t state);
uint32_t vcpu_get_mp_state(struct kvm_vcpu *vcpu);
void vcpu_get_lapic(struct kvm_vcpu *vcpu, struct kvm_lapic_state *s);
void vcpu_set_lapic(struct kvm_vcpu *vcpu, struct kvm_lapic_state *s);
uint32_t lapic_reg(const struct kvm_lapic_state *s, uint32_t reg);
void lapic_set_reg(struct kvm_lapic_state *s, uint32_t reg, uint32_t v);
int vm_irq_line(struct kvm_vm *vm, uint32_t gsi, int level);
uint64_t host_tsc_hz(void);
void check_tsc_time(const char *what, uint64_t got, uint64_t want, unsigned int max_pct);

/* A vCPU run to UCALL_DONE by its own thread; a failure ends the whole test. */
struct vcpu_thread {
	pthread_t thread;
	struct kvm_vcpu *vcpu;
};

void vcpu_thread_start(struct vcpu_thread *t, struct kvm_vcpu *vcpu);
void vcpu_thread_join(struct vcpu_thread *t);

#endif
