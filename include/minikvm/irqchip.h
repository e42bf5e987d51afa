/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The in-kernel interrupt controllers of KVM_CREATE_IRQCHIP: a local APIC
 * per vCPU, the IOAPIC and the pair of 8259A PICs, and what the run loop
 * needs from them (blocking in HLT, kicking a vCPU out of the guest).
 *
 * Lock order: pic.lock, then ioapic.lock, then one lapic.lock at a time.
 * Nothing takes an IOAPIC or PIC lock with a local APIC's lock held.
 */
#ifndef MINIKVM_IRQCHIP_H
#define MINIKVM_IRQCHIP_H

#include <linux/hrtimer.h>
#include <linux/kvm.h>
#include <linux/mutex.h>
#include <linux/rcuwait.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct mkvm_vm;
struct mkvm_vcpu;

#define MKVM_IOAPIC_BASE	0xfec00000ULL
#define MKVM_IOAPIC_PINS	KVM_IOAPIC_NUM_PINS
#define MKVM_PIC_PINS		16			/* master 0-7, slave 8-15 */

/* Where a vCPU is, for kicks (mkvm_vcpu_kick()). */
enum mkvm_guest_mode { MKVM_OUTSIDE_GUEST, MKVM_IN_GUEST, MKVM_EXITING_GUEST };

/* lapic.pending_events bits: INIT, SIPI and SMI wait for the vCPU's thread. */
#define MKVM_APIC_INIT	0
#define MKVM_APIC_SIPI	1
#define MKVM_APIC_SMI	2

struct mkvm_lapic {
	struct mkvm_vcpu *vcpu;
	/* The register page and the timer; the hrtimer callback takes it too. */
	spinlock_t lock;
	u8 regs[KVM_APIC_REG_SIZE];	/* the layout of struct kvm_lapic_state */
	/* Timer (lapic_timer.c). */
	struct hrtimer timer;
	u32 divide;			/* TDCR as a divisor: 1 to 128 */
	u64 period_ns;			/* one-shot or periodic length, 0 when stopped */
	ktime_t target;			/* next expiry */
	u64 tsc_deadline;		/* IA32_TSC_DEADLINE, 0 when disarmed */
	/* Events from other CPUs, taken in by the vCPU's thread. */
	atomic_t nmi_queued;
	unsigned long pending_events;	/* MKVM_APIC_INIT, _SIPI, _SMI */
	u8 sipi_vector;
	/* Blocking (HLT, wait-for-SIPI) and kicks. */
	struct rcuwait wait;
	int guest_mode;			/* enum mkvm_guest_mode */
	int cpu;			/* where the vCPU last entered the guest */
};

/* One 8259A (datasheet, "Programming the 8259A"): the fields of kvm_pic_state. */
struct mkvm_pic_chip {
	u8 last_irr, irr, imr, isr, priority_add, irq_base, read_reg_select, poll;
	u8 special_mask, init_state, auto_eoi, rotate_on_auto_eoi;
	u8 special_fully_nested_mode, init4, elcr, elcr_mask;
};

struct mkvm_pic {
	spinlock_t lock;
	struct mkvm_pic_chip chip[2];	/* master, slave on the master's IR2 */
	bool output;			/* INT of the master, to the BSP's LINT0 */
};

struct mkvm_ioapic {
	spinlock_t lock;
	u64 base;
	u32 ioregsel;
	u32 id;
	u32 irr;			/* the pins' input levels as last raised */
	u32 irr_delivered;		/* edge pins delivered since they rose */
	u64 redirtbl[MKVM_IOAPIC_PINS];
};

struct mkvm_irq_routing;

struct mkvm_irqchip {
	struct mkvm_vm *vm;
	struct mkvm_pic pic;
	struct mkvm_ioapic ioapic;
	/* GSI routing (irq_routing.c): the table is read under RCU, replaced under the mutex. */
	struct mkvm_irq_routing __rcu *routing;
	struct mutex routing_lock;	/* table updates */
	/* Each irqchip input's level per source (bit enum mkvm_irq_source). */
	spinlock_t lines_lock;		/* taken before pic.lock and ioapic.lock */
	unsigned long pic_lines[MKVM_PIC_PINS];
	unsigned long ioapic_lines[MKVM_IOAPIC_PINS];
};

/* An interrupt message to local APICs (SDM 10.6.1, 82093AA 3.2.4). */
struct mkvm_apic_irq {
	u32 dest;
	u8 vector;
	u8 delivery_mode;		/* APIC_DM_* >> 8 */
	bool logical;
	bool level;			/* the ICR's level bit: INIT assert or de-assert */
	bool trig_level;		/* level-triggered: TMR is set */
	u8 shorthand;			/* APIC_DEST_* >> 18 */
	bool from_ioapic;		/* 8-bit destination, 0xff broadcast */
};

/* KVM_CREATE_IRQCHIP was done: set once, before any vCPU exists. */
#define mkvm_irqchip_in_kernel(vm) (READ_ONCE((vm)->arch.irqchip) != NULL)

/* arch/x86/kvm/irqchip/irqchip.c */
long mkvm_irqchip_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp);
void mkvm_irqchip_destroy(struct mkvm_vm *vm);
bool mkvm_irqchip_mmio(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, bool write, u64 *val);
bool mkvm_irqchip_pio(struct mkvm_vcpu *vcpu, u16 port, unsigned int len, bool in, u32 *val);
int mkvm_irqchip_check_extension(long cap);

/* arch/x86/kvm/irqchip/irq_routing.c */
int mkvm_irq_routing_init(struct mkvm_irqchip *chip);
void mkvm_irq_routing_free(struct mkvm_irqchip *chip);
long mkvm_irq_routing_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp);
void mkvm_irq_notify_ack(struct mkvm_irqchip *chip, unsigned int irqchip, unsigned int pin);
void mkvm_irq_notify_mask(struct mkvm_irqchip *chip, unsigned int irqchip, unsigned int pin,
			  bool masked);
bool mkvm_irq_has_ack_notifiers(struct mkvm_vm *vm);

/* arch/x86/kvm/irqchip/pic.c */
void mkvm_pic_init(struct mkvm_pic *pic);
int mkvm_pic_set_irq(struct mkvm_irqchip *chip, unsigned int pin, int level);
int mkvm_pic_read_irq(struct mkvm_irqchip *chip);
u32 mkvm_pic_pio_read(struct mkvm_irqchip *chip, u16 port);
void mkvm_pic_pio_write(struct mkvm_irqchip *chip, u16 port, u32 val);
void mkvm_pic_get_state(struct mkvm_pic *pic, int n, struct kvm_pic_state *s);
void mkvm_pic_set_state(struct mkvm_irqchip *chip, int n, const struct kvm_pic_state *s);

/* arch/x86/kvm/irqchip/ioapic.c */
void mkvm_ioapic_init(struct mkvm_ioapic *ioapic);
int mkvm_ioapic_set_irq(struct mkvm_irqchip *chip, unsigned int pin, int level);
void mkvm_ioapic_eoi(struct mkvm_irqchip *chip, u8 vector);
u32 mkvm_ioapic_mmio_read(struct mkvm_irqchip *chip, u64 off);
void mkvm_ioapic_mmio_write(struct mkvm_irqchip *chip, u64 off, u32 val);
void mkvm_ioapic_get_state(struct mkvm_irqchip *chip, struct kvm_ioapic_state *s);
void mkvm_ioapic_set_state(struct mkvm_irqchip *chip, const struct kvm_ioapic_state *s);

/* arch/x86/kvm/irqchip/lapic.c */
int mkvm_lapic_create(struct mkvm_vcpu *vcpu);
void mkvm_lapic_free(struct mkvm_vcpu *vcpu);
void mkvm_lapic_reset(struct mkvm_vcpu *vcpu, bool init);
int mkvm_lapic_set_base(struct mkvm_vcpu *vcpu, u64 value, bool host);
bool mkvm_lapic_x2apic_mode(struct mkvm_vcpu *vcpu);
int mkvm_lapic_deliver(struct mkvm_vm *vm, struct mkvm_vcpu *src, const struct mkvm_apic_irq *irq);
int mkvm_lapic_pending_irq(struct mkvm_vcpu *vcpu);
int mkvm_lapic_masked_irq(struct mkvm_vcpu *vcpu);
int mkvm_lapic_ack_irq(struct mkvm_vcpu *vcpu);
void mkvm_lapic_irq_taken(struct mkvm_vcpu *vcpu, u8 vector);
bool mkvm_lapic_accepts_pic(struct mkvm_vcpu *vcpu);
void mkvm_lapic_sync_tpr_from_guest(struct mkvm_vcpu *vcpu);
void mkvm_lapic_sync_tpr_to_guest(struct mkvm_vcpu *vcpu);
void mkvm_lapic_set_tpr(struct mkvm_vcpu *vcpu, u32 tpr);
u32 mkvm_lapic_vapic_word(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/irqchip/vapic.c */
long mkvm_vapic_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp);
void mkvm_vapic_report_tpr(struct mkvm_vcpu *vcpu, bool write);
void mkvm_vapic_sync_to_guest(struct mkvm_vcpu *vcpu);
void mkvm_vapic_sync_from_guest(struct mkvm_vcpu *vcpu);
bool mkvm_lapic_mmio(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, bool write, u64 *val);
int mkvm_x2apic_msr_read(struct mkvm_vcpu *vcpu, u32 msr, u64 *data);
int mkvm_x2apic_msr_write(struct mkvm_vcpu *vcpu, u32 msr, u64 data);
long mkvm_lapic_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp);
u32 mkvm_lapic_get_reg(struct mkvm_lapic *apic, unsigned int reg);
void mkvm_lapic_set_reg(struct mkvm_lapic *apic, unsigned int reg, u32 val);
void mkvm_lapic_set_irr(struct mkvm_lapic *apic, u8 vector, bool level);

/* arch/x86/kvm/irqchip/lapic_timer.c */
void mkvm_lapic_timer_init(struct mkvm_lapic *apic);
void mkvm_lapic_timer_cancel(struct mkvm_lapic *apic);
void mkvm_lapic_timer_lvtt_written(struct mkvm_lapic *apic, u32 old_lvtt);
void mkvm_lapic_timer_tmict_written(struct mkvm_lapic *apic, u32 tmict);
void mkvm_lapic_timer_tdcr_written(struct mkvm_lapic *apic);
void mkvm_lapic_timer_restore(struct mkvm_lapic *apic, u32 tmcct);
u32 mkvm_lapic_timer_tmcct(struct mkvm_lapic *apic);
u32 mkvm_lapic_timer_mode_mask(struct mkvm_vcpu *vcpu);
int mkvm_lapic_tsc_deadline_read(struct mkvm_vcpu *vcpu, u64 *data);
int mkvm_lapic_tsc_deadline_write(struct mkvm_vcpu *vcpu, u64 data);
void mkvm_lapic_timer_expire_due(struct mkvm_vcpu *vcpu);
s64 mkvm_lapic_timer_ns_left(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/kick.c */
void mkvm_vcpu_kick(struct mkvm_vcpu *vcpu);
bool mkvm_vcpu_enter_guest(struct mkvm_vcpu *vcpu);
void mkvm_vcpu_exit_guest(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/halt.c */
int mkvm_vcpu_block(struct mkvm_vcpu *vcpu);
void mkvm_vcpu_halt(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/events.c: choosing the interrupt */
int mkvm_irqchip_inject(struct mkvm_vcpu *vcpu);
void mkvm_lapic_fold_nmis(struct mkvm_vcpu *vcpu);
bool mkvm_extint_pending(struct mkvm_vcpu *vcpu);

/* arch/x86/kvm/mp_state.c */
unsigned long mkvm_apic_takeable_events(struct mkvm_vcpu *vcpu);
void mkvm_apic_accept_events(struct mkvm_vcpu *vcpu);
int mkvm_vcpu_wait_uninit(struct mkvm_vcpu *vcpu);
bool mkvm_lapic_init_pending(struct mkvm_vcpu *vcpu);
void mkvm_lapic_fold_smi(struct mkvm_vcpu *vcpu);
void mkvm_lapic_set_init_pending(struct mkvm_vcpu *vcpu, bool pending);
int mkvm_mp_state_get(struct mkvm_vcpu *vcpu, struct kvm_mp_state *mp);
int mkvm_mp_state_set(struct mkvm_vcpu *vcpu, const struct kvm_mp_state *mp);

#endif
