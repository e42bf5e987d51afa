// SPDX-License-Identifier: GPL-2.0
/*
 * The local APIC of each vCPU of a VM with an in-kernel irqchip (SDM vol. 3
 * chapter 10): its registers through the xAPIC MMIO page and the x2APIC
 * MSRs, the APIC base MSR, priorities (TPR, PPR), IRR/ISR/TMR and EOI,
 * interprocessor interrupts and their destinations, and KVM_GET/SET_LAPIC.
 *
 * The timer lives in lapic_timer.c; blocking, kicks and INIT/SIPI in
 * ../halt.c, ../kick.c and ../mp_state.c.  The register page is struct kvm_lapic_state's layout.
 * Other CPUs (IPIs, the IOAPIC, the timer) only set IRR/TMR bits and
 * pending events, under apic->lock; everything else belongs to the vCPU's
 * own thread.
 */
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

/* Version 0x14 with six LVT entries (no CMCI), which is what KVM reports on AMD. */
#define APIC_VERSION_VALUE	(0x14 | (5 << 16))
#define APIC_MMIO_SIZE		0x1000
#define X2APIC_BROADCAST	0xffffffffu
#define XAPIC_BROADCAST		0xffu

/* Writable LVT bits (SDM 10.5.1, figure 10-8). */
#define LVT_BITS	(APIC_LVT_MASKED | APIC_SEND_PENDING | APIC_VECTOR_MASK)
#define LINT_BITS	(LVT_BITS | APIC_MODE_MASK | APIC_INPUT_POLARITY | APIC_LVT_REMOTE_IRR | \
			 APIC_LVT_LEVEL_TRIGGER)

/**
 * mkvm_lapic_get_reg() - a 32-bit register of the page, as stored
 * @apic: the APIC
 * @reg: its offset (SDM table 10-1)
 *
 * Return: the value.
 */
u32 mkvm_lapic_get_reg(struct mkvm_lapic *apic, unsigned int reg)
{
	return *(u32 *)(apic->regs + reg);
}

/**
 * mkvm_lapic_set_reg() - store a 32-bit register of the page, without side effects
 * @apic: the APIC
 * @reg: its offset
 * @val: the value
 */
void mkvm_lapic_set_reg(struct mkvm_lapic *apic, unsigned int reg, u32 val)
{
	*(u32 *)(apic->regs + reg) = val;
}

/* IRR, ISR and TMR are 256 bits in eight registers 16 bytes apart (SDM 10.8.4). */
static u32 *vec_word(struct mkvm_lapic *apic, unsigned int base, u8 vector)
{
	return (u32 *)(apic->regs + base + (vector >> 5) * 0x10);
}

static void vec_set(struct mkvm_lapic *apic, unsigned int base, u8 vector)
{
	*vec_word(apic, base, vector) |= BIT(vector & 31);
}

static void vec_clear(struct mkvm_lapic *apic, unsigned int base, u8 vector)
{
	*vec_word(apic, base, vector) &= ~BIT(vector & 31);
}

static bool vec_test(struct mkvm_lapic *apic, unsigned int base, u8 vector)
{
	return *vec_word(apic, base, vector) & BIT(vector & 31);
}

static int vec_highest(struct mkvm_lapic *apic, unsigned int base)
{
	for (int i = 7; i >= 0; i--) {
		u32 w = mkvm_lapic_get_reg(apic, base + i * 0x10);

		if (w)
			return i * 32 + fls(w) - 1;
	}
	return -1;
}

static bool hw_enabled(struct mkvm_vcpu *vcpu)
{
	return READ_ONCE(vcpu->arch.apic_base) & MSR_IA32_APICBASE_ENABLE;
}

static bool sw_enabled(struct mkvm_lapic *apic)
{
	return mkvm_lapic_get_reg(apic, APIC_SPIV) & APIC_SPIV_APIC_ENABLED;
}

/**
 * mkvm_lapic_x2apic_mode() - the APIC is enabled in x2APIC mode (SDM 10.12.1)
 * @vcpu: the vCPU
 *
 * Return: true in x2APIC mode.
 */
bool mkvm_lapic_x2apic_mode(struct mkvm_vcpu *vcpu)
{
	u64 mode = MSR_IA32_APICBASE_ENABLE | X2APIC_ENABLE;

	return (READ_ONCE(vcpu->arch.apic_base) & mode) == mode;
}

/* The x2APIC logical id derives from the x2APIC id (SDM 10.12.10.2). */
static u32 x2apic_ldr(u32 id)
{
	return ((id >> 4) << 16) | BIT(id & 0xf);
}

/* PPR (SDM 10.8.3.1): the TPR, or the class of the highest in-service vector if higher. */
static u32 apic_ppr(struct mkvm_lapic *apic)
{
	u32 tpr = mkvm_lapic_get_reg(apic, APIC_TASKPRI);
	int isr = vec_highest(apic, APIC_ISR);
	u32 isr_class = isr < 0 ? 0 : isr & 0xf0;

	return (tpr & 0xf0) >= isr_class ? tpr & 0xff : isr_class;
}

/* The highest IRR vector whose class is above the PPR's, or -1 (SDM 10.8.3.1). */
static int deliverable(struct mkvm_lapic *apic)
{
	int irr = vec_highest(apic, APIC_IRR);

	if (irr < 0 || (u32)(irr & 0xf0) <= apic_ppr(apic))
		return -1;
	return irr;
}

/**
 * mkvm_lapic_pending_irq() - the vector the APIC would hand to the CPU now
 * @vcpu: the vCPU
 *
 * Return: the vector, or -1.
 */
int mkvm_lapic_pending_irq(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	int v;

	if (!hw_enabled(vcpu))
		return -1;
	spin_lock_irqsave(&apic->lock, flags);
	v = deliverable(apic);
	spin_unlock_irqrestore(&apic->lock, flags);
	return v;
}

/**
 * mkvm_lapic_masked_irq() - the class of an IRR vector held back by the TPR alone
 * @vcpu: the vCPU
 *
 * Return: the priority class (vector >> 4) of the highest requested vector
 * when the TPR, and not an in-service vector, keeps it waiting; -1 otherwise.
 */
int mkvm_lapic_masked_irq(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	int irr, isr, r = -1;

	if (!hw_enabled(vcpu))
		return -1;
	spin_lock_irqsave(&apic->lock, flags);
	irr = vec_highest(apic, APIC_IRR);
	isr = vec_highest(apic, APIC_ISR);
	if (irr >= 0 && (isr < 0 || (irr & 0xf0) > (isr & 0xf0)) && deliverable(apic) < 0)
		r = irr >> 4;
	spin_unlock_irqrestore(&apic->lock, flags);
	return r;
}

/**
 * mkvm_lapic_ack_irq() - the CPU takes the highest deliverable vector
 * @vcpu: the vCPU, about to inject it
 *
 * The vector moves from IRR to ISR (SDM 10.8.4), which raises the PPR.
 *
 * Return: the vector, or -1 when none is deliverable any more.
 */
int mkvm_lapic_ack_irq(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	int v;

	spin_lock_irqsave(&apic->lock, flags);
	v = deliverable(apic);
	if (v >= 0) {
		vec_clear(apic, APIC_IRR, v);
		vec_set(apic, APIC_ISR, v);
	}
	spin_unlock_irqrestore(&apic->lock, flags);
	return v;
}

/**
 * mkvm_lapic_irq_taken() - the CPU took @vector, offered to it before the entry
 * @vcpu: the vCPU, after the exit
 * @vector: the vector
 *
 * The vector moves from IRR to ISR (SDM 10.8.4), as mkvm_lapic_ack_irq()
 * does for an interrupt injected at once.  It is set in ISR even if IRR
 * lost it meanwhile, so that the guest's EOI finds it.
 */
void mkvm_lapic_irq_taken(struct mkvm_vcpu *vcpu, u8 vector)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;

	spin_lock_irqsave(&apic->lock, flags);
	vec_clear(apic, APIC_IRR, vector);
	vec_set(apic, APIC_ISR, vector);
	spin_unlock_irqrestore(&apic->lock, flags);
}

/**
 * mkvm_lapic_accepts_pic() - the 8259's INTR reaches this vCPU
 * @vcpu: the vCPU
 *
 * It does through LINT0 in ExtINT mode, unmasked, or when the APIC is
 * disabled in the base MSR and INTR goes straight to the CPU (SDM 10.4.3).
 *
 * Return: true when it does.
 */
bool mkvm_lapic_accepts_pic(struct mkvm_vcpu *vcpu)
{
	u32 lvt0 = READ_ONCE(*(u32 *)(vcpu->arch.lapic->regs + APIC_LVT0));

	if (!hw_enabled(vcpu))
		return true;
	return !(lvt0 & APIC_LVT_MASKED) && GET_APIC_DELIVERY_MODE(lvt0) == APIC_MODE_EXTINT;
}

/**
 * mkvm_lapic_set_irr() - request a vector
 * @apic: the APIC, with its lock held
 * @vector: the vector
 * @level: level-triggered, which the TMR remembers for the EOI (SDM 10.8.4)
 */
void mkvm_lapic_set_irr(struct mkvm_lapic *apic, u8 vector, bool level)
{
	if (level)
		vec_set(apic, APIC_TMR, vector);
	else
		vec_clear(apic, APIC_TMR, vector);
	vec_set(apic, APIC_IRR, vector);
}

/* Accept one interrupt message (SDM 10.6.1 delivery modes); 1 when taken. */
static int accept_irq(struct mkvm_vcpu *vcpu, const struct mkvm_apic_irq *irq)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	int r = 0;

	spin_lock_irqsave(&apic->lock, flags);
	switch (irq->delivery_mode << 8) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		/* A software-disabled APIC takes no interrupts (SDM 10.4.7.2). */
		if (hw_enabled(vcpu) && sw_enabled(apic)) {
			mkvm_lapic_set_irr(apic, irq->vector, irq->trig_level);
			r = 1;
		}
		break;
	case APIC_DM_NMI:
		atomic_inc(&apic->nmi_queued);
		r = 1;
		break;
	case APIC_DM_INIT:
		/* The level-triggered de-assert message only resets arbitration ids. */
		if (irq->trig_level && !irq->level)
			break;
		/* INIT cancels a SIPI not yet taken; taking it cancels an SMI too, as in KVM. */
		apic->pending_events = (apic->pending_events & BIT(MKVM_APIC_SMI)) |
				       BIT(MKVM_APIC_INIT);
		r = 1;
		break;
	case APIC_DM_SMI:
		apic->pending_events |= BIT(MKVM_APIC_SMI);
		r = 1;
		break;
	case APIC_DM_STARTUP:
		apic->sipi_vector = irq->vector;
		apic->pending_events |= BIT(MKVM_APIC_SIPI);
		r = 1;
		break;
	default:
		/* ExtINT and the reserved modes. */
		break;
	}
	spin_unlock_irqrestore(&apic->lock, flags);
	if (r)
		mkvm_vcpu_kick(vcpu);
	return r;
}

static u32 apic_id(struct mkvm_vcpu *vcpu)
{
	u32 id = READ_ONCE(*(u32 *)(vcpu->arch.lapic->regs + APIC_ID));

	return mkvm_lapic_x2apic_mode(vcpu) ? id : id >> 24;
}

/*
 * Physical and logical destinations (SDM 10.6.2, 10.12.9).  An 8-bit
 * broadcast from the IOAPIC reaches x2APIC targets too; an IPI's does not.
 */
static bool match_dest(struct mkvm_vcpu *target, const struct mkvm_apic_irq *irq)
{
	struct mkvm_lapic *apic = target->arch.lapic;
	bool x2 = mkvm_lapic_x2apic_mode(target);
	u32 dest = irq->dest, ldr, dfr;

	if (x2 && irq->from_ioapic && dest == XAPIC_BROADCAST)
		dest = X2APIC_BROADCAST;
	if (dest == (x2 ? X2APIC_BROADCAST : XAPIC_BROADCAST))
		return true;
	if (!irq->logical)
		return dest == apic_id(target);
	ldr = READ_ONCE(*(u32 *)(apic->regs + APIC_LDR));
	if (x2)
		return (ldr >> 16) == (dest >> 16) && (ldr & dest & 0xffff);
	ldr >>= 24;
	dfr = READ_ONCE(*(u32 *)(apic->regs + APIC_DFR));
	if (dfr == APIC_DFR_FLAT)
		return ldr & dest;
	if (dfr == APIC_DFR_CLUSTER)
		return (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf);
	return false;
}

static bool match(struct mkvm_vcpu *target, struct mkvm_vcpu *src,
		  const struct mkvm_apic_irq *irq)
{
	switch (irq->shorthand << 18) {
	case APIC_DEST_SELF:
		return target == src;
	case APIC_DEST_ALLINC:
		return true;
	case APIC_DEST_ALLBUT:
		return target != src;
	default:
		return match_dest(target, irq);
	}
}

/**
 * mkvm_lapic_deliver() - send an interrupt message to the local APICs it names
 * @vm: the VM
 * @src: the sending vCPU for an IPI, NULL for the IOAPIC
 * @irq: the message
 *
 * Lowest-priority messages go to one of the matching enabled APICs, picked
 * from the vector as KVM does (its "vector hashing"); a physical broadcast
 * in that mode goes to all as a fixed interrupt.  Only APICs enabled in the
 * base MSR take part.  The caller may hold the IOAPIC lock, no APIC lock.
 *
 * Return: how many APICs took it, or -1 when none matched.  Like KVM, a
 * message to one destination that no APIC has counts 0, not -1, once the VM
 * has local APICs: only broadcasts and shorthands report -1 for nobody.
 */
int mkvm_lapic_deliver(struct mkvm_vm *vm, struct mkvm_vcpu *src, const struct mkvm_apic_irq *irq)
{
	struct mkvm_apic_irq msg = *irq;
	bool lowest = irq->delivery_mode == APIC_DM_LOWEST >> 8;
	bool unicast = !irq->shorthand && irq->dest != XAPIC_BROADCAST;
	struct mkvm_vcpu *vcpu;
	unsigned int n = 0, pick;
	unsigned long i;
	int r = -1;

	if (lowest && !irq->logical && !irq->shorthand && irq->dest == XAPIC_BROADCAST) {
		lowest = false;
		msg.delivery_mode = APIC_DM_FIXED >> 8;
	}
	xa_for_each(&vm->vcpus, i, vcpu) {
		if (unicast && vcpu->arch.lapic)
			r = max(r, 0);
		if (!vcpu->arch.lapic || !hw_enabled(vcpu) || !match(vcpu, src, &msg))
			continue;
		if (lowest) {
			n += sw_enabled(vcpu->arch.lapic);
			continue;
		}
		r = max(r, 0) + accept_irq(vcpu, &msg);
	}
	if (!lowest || !n)
		return r;
	pick = msg.vector % n;
	xa_for_each(&vm->vcpus, i, vcpu) {
		if (!vcpu->arch.lapic || !hw_enabled(vcpu) || !match(vcpu, src, &msg) ||
		    !sw_enabled(vcpu->arch.lapic))
			continue;
		if (!pick--)
			return accept_irq(vcpu, &msg);
	}
	return r;
}

/* ICR (SDM 10.6.1): the destination is ICR2[31:24], or all 32 bits in x2APIC mode. */
static void send_ipi(struct mkvm_vcpu *vcpu, u32 low, u32 high)
{
	struct mkvm_apic_irq irq = {
		.vector = low & APIC_VECTOR_MASK,
		.delivery_mode = (low & APIC_DM_FIXED_MASK) >> 8,
		.logical = low & APIC_DEST_LOGICAL,
		.level = low & APIC_INT_ASSERT,
		.trig_level = low & APIC_INT_LEVELTRIG,
		.shorthand = (low >> 18) & 3,
		.dest = mkvm_lapic_x2apic_mode(vcpu) ? high : high >> 24,
	};

	mkvm_lapic_deliver(vcpu->vm, vcpu, &irq);
}

/* EOI (SDM 10.8.5): retire the highest in-service vector; a level one goes to the IOAPIC. */
static void apic_eoi(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	struct mkvm_irqchip *chip = vcpu->vm->arch.irqchip;
	unsigned long flags;
	bool level;
	int v;

	spin_lock_irqsave(&apic->lock, flags);
	v = vec_highest(apic, APIC_ISR);
	if (v >= 0)
		vec_clear(apic, APIC_ISR, v);
	level = v >= 0 && vec_test(apic, APIC_TMR, v);
	spin_unlock_irqrestore(&apic->lock, flags);
	/* Edge EOIs matter too while a source waits for them (the PIT's reinjection). */
	if (level || (v >= 0 && mkvm_irq_has_ack_notifiers(vcpu->vm)))
		mkvm_ioapic_eoi(chip, v);
}

static void set_tpr(struct mkvm_vcpu *vcpu, u32 tpr)
{
	mkvm_lapic_set_reg(vcpu->arch.lapic, APIC_TASKPRI, tpr & 0xff);
	/* CR8 is TPR[7:4] (SDM 10.8.6.1); SVM keeps it as V_TPR. */
	mkvm_x86->set_cr8(vcpu, (tpr & 0xff) >> 4);
}

/**
 * mkvm_lapic_set_tpr() - set the TPR, and CR8 with it
 * @vcpu: the vCPU, with an in-kernel local APIC
 * @tpr: the new TPR (bits 7-0)
 */
void mkvm_lapic_set_tpr(struct mkvm_vcpu *vcpu, u32 tpr)
{
	set_tpr(vcpu, tpr);
}

/**
 * mkvm_lapic_vapic_word() - the vAPIC word (vapic.c) for the current state
 * @vcpu: the vCPU, with an in-kernel local APIC
 *
 * Return: TPR in bits 7-0, the highest in-service class in 15-12, the
 * highest requested vector in 31-24.
 */
u32 mkvm_lapic_vapic_word(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	int irr, isr;
	u32 tpr;

	spin_lock_irqsave(&apic->lock, flags);
	tpr = mkvm_lapic_get_reg(apic, APIC_TASKPRI) & 0xff;
	irr = max(vec_highest(apic, APIC_IRR), 0);
	isr = max(vec_highest(apic, APIC_ISR), 0);
	spin_unlock_irqrestore(&apic->lock, flags);
	return tpr | (isr & 0xf0) << 8 | (u32)irr << 24;
}

/**
 * mkvm_lapic_sync_tpr_from_guest() - the guest may have written CR8
 * @vcpu: the vCPU, just after an exit
 *
 * The TPR becomes CR8 << 4 (SDM 10.8.6.1).  Like KVM on AMD, this happens
 * after every exit on SVM, so TPR[3:0] written through the xAPIC page do
 * not last there (mkvm_x86_ops.cr8_unintercepted).
 */
void mkvm_lapic_sync_tpr_from_guest(struct mkvm_vcpu *vcpu)
{
	mkvm_lapic_set_reg(vcpu->arch.lapic, APIC_TASKPRI, mkvm_x86->get_cr8(vcpu) << 4);
}

/**
 * mkvm_lapic_sync_tpr_to_guest() - CR8 for the next entry is TPR[7:4]
 * @vcpu: the vCPU
 */
void mkvm_lapic_sync_tpr_to_guest(struct mkvm_vcpu *vcpu)
{
	mkvm_x86->set_cr8(vcpu, mkvm_lapic_get_reg(vcpu->arch.lapic, APIC_TASKPRI) >> 4);
}

static void set_lvt(struct mkvm_lapic *apic, unsigned int reg, u32 val, u32 bits)
{
	unsigned long flags;

	/* While software-disabled, LVT mask bits stay set (SDM 10.4.7.2). */
	if (!sw_enabled(apic))
		val |= APIC_LVT_MASKED;
	spin_lock_irqsave(&apic->lock, flags);
	/* @reg is the guest's, checked only by reg_write()'s switch. */
	mkvm_lapic_set_reg(apic, array_index_nospec(reg, KVM_APIC_REG_SIZE), val & bits);
	spin_unlock_irqrestore(&apic->lock, flags);
}

static void set_svr(struct mkvm_lapic *apic, u32 val)
{
	static const unsigned int lvts[] = {
		APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR,
	};
	unsigned long flags;

	spin_lock_irqsave(&apic->lock, flags);
	mkvm_lapic_set_reg(apic, APIC_SPIV, val & 0x3ff);
	/* Software-disabling masks every LVT entry (SDM 10.4.7.2). */
	if (!(val & APIC_SPIV_APIC_ENABLED))
		for (int i = 0; i < ARRAY_SIZE(lvts); i++)
			mkvm_lapic_set_reg(apic, lvts[i],
					   mkvm_lapic_get_reg(apic, lvts[i]) | APIC_LVT_MASKED);
	spin_unlock_irqrestore(&apic->lock, flags);
}

/* A 32-bit register write; 1 for a register that does not exist or is read-only here. */
static int reg_write(struct mkvm_vcpu *vcpu, unsigned int reg, u32 val)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	bool x2 = mkvm_lapic_x2apic_mode(vcpu);
	u32 old;

	switch (reg) {
	case APIC_ID:
		if (x2)
			return 1;
		mkvm_lapic_set_reg(apic, APIC_ID, val & 0xff000000);
		return 0;
	case APIC_TASKPRI:
		mkvm_vapic_report_tpr(vcpu, true);
		set_tpr(vcpu, val);
		return 0;
	case APIC_EOI:
		apic_eoi(vcpu);
		return 0;
	case APIC_LDR:
		if (x2)
			return 1;
		mkvm_lapic_set_reg(apic, APIC_LDR, val & APIC_LDR_MASK);
		return 0;
	case APIC_DFR:
		if (x2)
			return 1;
		mkvm_lapic_set_reg(apic, APIC_DFR, val | 0x0fffffff);
		return 0;
	case APIC_SPIV:
		set_svr(apic, val);
		return 0;
	case APIC_ICR:
		/* Delivery is immediate: the status bit never reads busy. */
		val &= ~APIC_ICR_BUSY;
		mkvm_lapic_set_reg(apic, APIC_ICR, val);
		send_ipi(vcpu, val, mkvm_lapic_get_reg(apic, APIC_ICR2));
		return 0;
	case APIC_ICR2:
		if (x2)
			return 1;
		mkvm_lapic_set_reg(apic, APIC_ICR2, val & 0xff000000);
		return 0;
	case APIC_LVT0:
	case APIC_LVT1:
		set_lvt(apic, reg, val, LINT_BITS);
		return 0;
	case APIC_LVTTHMR:
	case APIC_LVTPC:
		set_lvt(apic, reg, val, LVT_BITS | APIC_MODE_MASK);
		return 0;
	case APIC_LVTERR:
		set_lvt(apic, reg, val, LVT_BITS);
		return 0;
	case APIC_LVTT:
		old = mkvm_lapic_get_reg(apic, APIC_LVTT);
		set_lvt(apic, reg, val, LVT_BITS | mkvm_lapic_timer_mode_mask(vcpu));
		mkvm_lapic_timer_lvtt_written(apic, old);
		return 0;
	case APIC_TMICT:
		mkvm_lapic_timer_tmict_written(apic, val);
		return 0;
	case APIC_TDCR:
		mkvm_lapic_set_reg(apic, APIC_TDCR, val & 0xb);
		mkvm_lapic_timer_tdcr_written(apic);
		return 0;
	case APIC_ESR:
		/* Errors are never recorded; x2APIC wants the write to be 0 (SDM 10.12.1.2). */
		return x2 && val;
	case APIC_SELF_IPI:
		if (!x2 || val & ~APIC_VECTOR_MASK)
			return 1;
		send_ipi(vcpu, APIC_DEST_SELF | val, 0);
		return 0;
	default:
		return 1;
	}
}

/* Which registers read back (SDM table 10-1, 10-6); the rest are reserved. */
static bool reg_readable(struct mkvm_vcpu *vcpu, unsigned int reg)
{
	bool x2 = mkvm_lapic_x2apic_mode(vcpu);

	if (reg >= APIC_ISR && reg < APIC_IRR + 0x80)
		return true;
	switch (reg) {
	case APIC_ID: case APIC_LVR: case APIC_TASKPRI: case APIC_PROCPRI: case APIC_LDR:
	case APIC_DFR: case APIC_SPIV: case APIC_ESR: case APIC_ICR: case APIC_LVTT:
	case APIC_LVTTHMR: case APIC_LVTPC: case APIC_LVT0: case APIC_LVT1: case APIC_LVTERR:
	case APIC_TMICT: case APIC_TMCCT: case APIC_TDCR:
		return true;
	case APIC_ARBPRI:
	case APIC_ICR2:
		return !x2;
	default:
		return false;
	}
}

static u32 reg_read(struct mkvm_vcpu *vcpu, unsigned int reg)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;
	u32 v;

	switch (reg) {
	case APIC_ARBPRI:
		return 0;
	case APIC_TMCCT:
		return mkvm_lapic_timer_tmcct(apic);
	case APIC_TASKPRI:
		mkvm_vapic_report_tpr(vcpu, false);
		fallthrough;
	default:
		spin_lock_irqsave(&apic->lock, flags);
		/* The register page is 4 KiB, the register file only KVM_APIC_REG_SIZE. */
		v = reg == APIC_PROCPRI ? apic_ppr(apic) :
		    mkvm_lapic_get_reg(apic, array_index_nospec(reg, KVM_APIC_REG_SIZE));
		spin_unlock_irqrestore(&apic->lock, flags);
		return v;
	}
}

/**
 * mkvm_lapic_mmio() - an access to this vCPU's xAPIC page
 * @vcpu: the vCPU
 * @gpa: the guest-physical address
 * @len: 1 to 8 bytes
 * @write: a write of *@val, or a read into *@val
 * @val: the data
 *
 * Registers are 32 bits wide on 16-byte boundaries; other writes are
 * dropped (SDM 10.4.1).  While the APIC is disabled or in x2APIC mode the
 * page reads as all ones and ignores writes, as in KVM.
 *
 * Return: true when @gpa is in the page, which handled the access.
 */
bool mkvm_lapic_mmio(struct mkvm_vcpu *vcpu, u64 gpa, unsigned int len, bool write, u64 *val)
{
	u64 base = READ_ONCE(vcpu->arch.apic_base) & MSR_IA32_APICBASE_BASE;
	unsigned int off = gpa - base, align = off & 0xf;
	u32 data;

	if (gpa < base || gpa - base >= APIC_MMIO_SIZE)
		return false;
	if (!hw_enabled(vcpu) || mkvm_lapic_x2apic_mode(vcpu)) {
		if (!write)
			*val = ~0ULL;
		return true;
	}
	if (write) {
		if (len == 4 && !align)
			reg_write(vcpu, off, *val);
		return true;
	}
	*val = 0;
	if (align + len > 4 || !reg_readable(vcpu, off & ~0xf))
		return true;
	data = reg_read(vcpu, off & ~0xf);
	*val = (data >> (8 * align)) & (len == 4 ? ~0u : (1u << (8 * len)) - 1);
	return true;
}

/**
 * mkvm_x2apic_msr_read() - RDMSR of 0x800-0x8ff (SDM 10.12.1.2)
 * @vcpu: the vCPU
 * @msr: the MSR
 * @data: the value
 *
 * Return: 0, or 1 (#GP) outside x2APIC mode or for a register x2APIC lacks.
 */
int mkvm_x2apic_msr_read(struct mkvm_vcpu *vcpu, u32 msr, u64 *data)
{
	unsigned int reg = (msr - APIC_BASE_MSR) << 4;
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	if (!apic || !mkvm_lapic_x2apic_mode(vcpu) || reg == APIC_DFR || !reg_readable(vcpu, reg))
		return 1;
	if (reg == APIC_ICR) {
		*data = mkvm_lapic_get_reg(apic, APIC_ICR) |
			(u64)mkvm_lapic_get_reg(apic, APIC_ICR2) << 32;
		return 0;
	}
	*data = reg_read(vcpu, reg);
	return 0;
}

/**
 * mkvm_x2apic_msr_write() - WRMSR of 0x800-0x8ff (SDM 10.12.1.2)
 * @vcpu: the vCPU
 * @msr: the MSR
 * @data: the value; only the ICR takes 64 bits
 *
 * Return: 0, or 1 (#GP).
 */
int mkvm_x2apic_msr_write(struct mkvm_vcpu *vcpu, u32 msr, u64 data)
{
	unsigned int reg = (msr - APIC_BASE_MSR) << 4;
	struct mkvm_lapic *apic = vcpu->arch.lapic;

	if (!apic || !mkvm_lapic_x2apic_mode(vcpu))
		return 1;
	if (reg == APIC_ICR) {
		data &= ~(u64)APIC_ICR_BUSY;
		mkvm_lapic_set_reg(apic, APIC_ICR, data);
		mkvm_lapic_set_reg(apic, APIC_ICR2, data >> 32);
		send_ipi(vcpu, data, data >> 32);
		return 0;
	}
	if (data >> 32)
		return 1;
	return reg_write(vcpu, reg, data);
}

/**
 * mkvm_lapic_set_base() - write IA32_APIC_BASE (SDM 10.4.4, 10.12.5)
 * @vcpu: the vCPU
 * @value: the new value
 * @host: from KVM_SET_MSRS or KVM_SET_SREGS rather than the guest
 *
 * Reserved bits, x2APIC without the CPUID bit, and x2APIC without the
 * global enable are refused; so are, for the guest, x2APIC to xAPIC and
 * disabled to x2APIC (SDM figure 10-27).  Enabling sets the xAPIC id
 * from the vCPU id; entering x2APIC mode sets the x2APIC id and LDR.
 *
 * Return: 0, or 1 for a refused value.
 */
int mkvm_lapic_set_base(struct mkvm_vcpu *vcpu, u64 value, bool host)
{
	const u64 en = MSR_IA32_APICBASE_ENABLE, x2 = X2APIC_ENABLE;
	struct kvm_cpuid_entry2 *leaf1 = mkvm_find_cpuid_entry(vcpu, 1, 0);
	u64 old = vcpu->arch.apic_base;
	u64 reserved = 0x2ff | GENMASK_ULL(63, mkvm_guest_maxphyaddr(vcpu));
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	unsigned long flags;

	if (!leaf1 || !(leaf1->ecx & BIT(21)))
		reserved |= x2;
	if ((value & reserved) || (value & (en | x2)) == x2)
		return 1;
	if (!host && (old & (en | x2)) == (en | x2) && (value & (en | x2)) == en)
		return 1;
	if (!host && !(old & en) && (value & (en | x2)) == (en | x2))
		return 1;
	if ((old ^ value) & en) {
		WRITE_ONCE(vcpu->arch.apic_base, value);
		mkvm_cpuid_apic_changed(vcpu);
	}
	if (!apic) {
		WRITE_ONCE(vcpu->arch.apic_base, value);
		return 0;
	}
	spin_lock_irqsave(&apic->lock, flags);
	WRITE_ONCE(vcpu->arch.apic_base, value);
	if ((value & en) && !(old & en))
		mkvm_lapic_set_reg(apic, APIC_ID, vcpu->vcpu_id << 24);
	if ((value & x2) && !(old & x2)) {
		mkvm_lapic_set_reg(apic, APIC_ID, vcpu->vcpu_id);
		mkvm_lapic_set_reg(apic, APIC_LDR, x2apic_ldr(vcpu->vcpu_id));
	}
	spin_unlock_irqrestore(&apic->lock, flags);
	return 0;
}

/**
 * mkvm_lapic_reset() - the APIC's registers at power-on or INIT (SDM 10.4.7.1)
 * @vcpu: the vCPU
 * @init: INIT, which keeps the APIC id (and in x2APIC mode the LDR)
 *
 * All LVT entries are masked, except that the BSP's LINT0 takes the 8259's
 * INTR in ExtINT mode, as KVM sets it up for a PC.
 */
void mkvm_lapic_reset(struct mkvm_vcpu *vcpu, bool init)
{
	static const unsigned int lvts[] = {
		APIC_LVTT, APIC_LVTTHMR, APIC_LVTPC, APIC_LVT0, APIC_LVT1, APIC_LVTERR,
	};
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	u32 id = mkvm_lapic_get_reg(apic, APIC_ID), ldr = mkvm_lapic_get_reg(apic, APIC_LDR);
	unsigned long flags;

	mkvm_lapic_timer_cancel(apic);
	spin_lock_irqsave(&apic->lock, flags);
	memset(apic->regs, 0, sizeof(apic->regs));
	mkvm_lapic_set_reg(apic, APIC_ID, init ? id : vcpu->vcpu_id << 24);
	if (init && mkvm_lapic_x2apic_mode(vcpu))
		mkvm_lapic_set_reg(apic, APIC_LDR, ldr);
	mkvm_lapic_set_reg(apic, APIC_LVR, APIC_VERSION_VALUE);
	for (int i = 0; i < ARRAY_SIZE(lvts); i++)
		mkvm_lapic_set_reg(apic, lvts[i], APIC_LVT_MASKED);
	if (mkvm_vcpu_is_reset_bsp(vcpu))
		mkvm_lapic_set_reg(apic, APIC_LVT0, APIC_MODE_EXTINT << 8);
	mkvm_lapic_set_reg(apic, APIC_DFR, APIC_DFR_FLAT);
	mkvm_lapic_set_reg(apic, APIC_SPIV, 0xff);
	apic->divide = 2;
	apic->period_ns = 0;
	apic->tsc_deadline = 0;
	spin_unlock_irqrestore(&apic->lock, flags);
	mkvm_x86->set_cr8(vcpu, 0);
}

/**
 * mkvm_lapic_create() - the local APIC of a vCPU created after KVM_CREATE_IRQCHIP
 * @vcpu: the vCPU
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_lapic_create(struct mkvm_vcpu *vcpu)
{
	struct mkvm_lapic *apic = kzalloc(sizeof(*apic), GFP_KERNEL_ACCOUNT);

	if (!apic)
		return -ENOMEM;
	apic->vcpu = vcpu;
	spin_lock_init(&apic->lock);
	rcuwait_init(&apic->wait);
	mkvm_lapic_timer_init(apic);
	vcpu->arch.lapic = apic;
	mkvm_lapic_reset(vcpu, false);
	/* Only the BSP runs; APs wait for INIT and SIPI (SDM 9.4). */
	vcpu->arch.mp_state = mkvm_vcpu_is_reset_bsp(vcpu) ? KVM_MP_STATE_RUNNABLE :
						   KVM_MP_STATE_UNINITIALIZED;
	return 0;
}

/**
 * mkvm_lapic_free() - stop the timer and free the APIC
 * @vcpu: the vCPU, which nothing can reach any more
 */
void mkvm_lapic_free(struct mkvm_vcpu *vcpu)
{
	if (!vcpu->arch.lapic)
		return;
	mkvm_lapic_timer_cancel(vcpu->arch.lapic);
	kfree(vcpu->arch.lapic);
	vcpu->arch.lapic = NULL;
}

static int get_lapic(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	struct kvm_lapic_state *s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	u32 tmcct = mkvm_lapic_timer_tmcct(apic);
	unsigned long flags;
	int r;

	if (!s)
		return -ENOMEM;
	spin_lock_irqsave(&apic->lock, flags);
	memcpy(s->regs, apic->regs, sizeof(s->regs));
	*(u32 *)(s->regs + APIC_PROCPRI) = apic_ppr(apic);
	spin_unlock_irqrestore(&apic->lock, flags);
	*(u32 *)(s->regs + APIC_TMCCT) = tmcct;
	/* Without KVM_CAP_X2APIC_API, an x2APIC id is reported in the xAPIC place. */
	if (mkvm_lapic_x2apic_mode(vcpu))
		*(u32 *)(s->regs + APIC_ID) <<= 24;
	r = copy_to_user(argp, s, sizeof(*s)) ? -EFAULT : 0;
	kfree(s);
	return r;
}

static int set_lapic(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct mkvm_lapic *apic = vcpu->arch.lapic;
	struct kvm_lapic_state *s = memdup_user(argp, sizeof(*s));
	unsigned long flags;
	u32 tmcct;

	if (IS_ERR(s))
		return PTR_ERR(s);
	if (mkvm_lapic_x2apic_mode(vcpu)) {
		u32 *id = (u32 *)(s->regs + APIC_ID);

		*id >>= 24;
		*(u32 *)(s->regs + APIC_LDR) = x2apic_ldr(*id);
	}
	tmcct = *(u32 *)(s->regs + APIC_TMCCT);
	mkvm_lapic_timer_cancel(apic);
	spin_lock_irqsave(&apic->lock, flags);
	memcpy(apic->regs, s->regs, sizeof(apic->regs));
	mkvm_lapic_set_reg(apic, APIC_LVR, APIC_VERSION_VALUE);
	mkvm_lapic_set_reg(apic, APIC_TMCCT, 0);
	spin_unlock_irqrestore(&apic->lock, flags);
	kfree(s);
	mkvm_lapic_sync_tpr_to_guest(vcpu);
	mkvm_lapic_timer_restore(apic, tmcct);
	return 0;
}

/**
 * mkvm_lapic_ioctl() - KVM_GET_LAPIC and KVM_SET_LAPIC
 * @vcpu: the vCPU, with its mutex held
 * @ioctl: the ioctl
 * @argp: the user's struct kvm_lapic_state
 *
 * Return: 0, -EINVAL without an in-kernel local APIC, -EFAULT, -ENOMEM.
 */
long mkvm_lapic_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp)
{
	if (!vcpu->arch.lapic)
		return -EINVAL;
	return ioctl == KVM_GET_LAPIC ? get_lapic(vcpu, argp) : set_lapic(vcpu, argp);
}
