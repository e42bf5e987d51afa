// SPDX-License-Identifier: GPL-2.0
/*
 * The i8254 programmable interval timer of KVM_CREATE_PIT2 (Intel 82C54
 * datasheet): three 16-bit counters at 1.193182 MHz behind ports 0x40-0x43,
 * the PC's port 0x61 for channel 2's gate and output, and channel 0's
 * output as GSI 0, through the routing table.
 *
 * Counters are not stepped: each remembers when its count was loaded, and
 * its value and output are computed from the time since then.  Channel 0
 * also runs an hrtimer for its interrupt, one-shot in modes 0, 1 and 4,
 * periodic in modes 2 and 3; like KVM, only with an in-kernel irqchip, not
 * while KVM_PIT_FLAGS_HPET_LEGACY is set, and not more often than every
 * 200 us.  Port 0x61 is the PIT's only with KVM_PIT_SPEAKER_DUMMY, which is
 * how KVM reads that flag.
 *
 * Each expiry pulses GSI 0.  By default (KVM_REINJECT_CONTROL pit_reinject
 * = 1, as in KVM) no tick is lost: the next one is sent only once the guest
 * has acknowledged the previous one (an EOI at the pin GSI 0 routes to), and
 * ticks that expire meanwhile are counted and sent one per acknowledgement.
 * Unmasking a pin of GSI 0 forgets the backlog, since a masked pin never
 * acknowledges.  With pit_reinject = 0, every expiry pulses the line and
 * ticks that find the previous one still pending merge with it.
 */
#include <linux/hrtimer.h>
#include <linux/math64.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>
#include <minikvm/irq.h>
#include <minikvm/irqchip.h>
#include <minikvm/pit.h>

#define PIT_HZ			1193182
#define PIT_BASE_PORT		0x40
#define PIT_NR_PORTS		4
#define SPEAKER_PORT		0x61
#define PIT_MIN_PERIOD_NS	(200 * NSEC_PER_USEC)	/* KVM's min_timer_period_us */
/* How KVM shows a counter never programmed. */
#define MODE_NONE		0xff

/* Which byte of a 16-bit count is read or written next (82C54 control word RW bits). */
enum { RW_LSB = 1, RW_MSB, RW_WORD0, RW_WORD1 };

struct mkvm_pit {
	struct mkvm_vm *vm;
	struct mutex lock;		/* the state; not the hrtimer's callback */
	struct kvm_pit_state2 s;	/* as KVM_GET_PIT2 shows it; count_load_time in ns */
	bool speaker;			/* KVM_PIT_SPEAKER_DUMMY: port 0x61 is ours */
	struct hrtimer timer;		/* channel 0's output */
	u64 period_ns;			/* channel 0's timer, 0 when it has none */
	bool periodic;
	/* Reinjection (KVM_REINJECT_CONTROL), changed under the lock. */
	bool reinject;
	atomic_t pending;		/* ticks not yet acknowledged, the one sent included */
	atomic_t irq_ack;		/* 1: no tick awaits its acknowledgement */
	struct mkvm_irq_ack_notifier ack;
	struct mkvm_irq_mask_notifier mask;
};

/* Input clocks since the count was loaded (or the gate rose). */
static u64 ticks(struct mkvm_pit *pit, int ch)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];
	s64 ns;

	/* Channel 0 without a timer does not count, as in KVM. */
	if (!ch && !pit->period_ns)
		return 0;
	ns = ktime_get_ns() - c->count_load_time;
	return ns > 0 ? mul_u64_u32_div(ns, PIT_HZ, NSEC_PER_SEC) : 0;
}

static u32 rem(u64 d, u32 count)
{
	return do_div(d, count);
}

/* The counting element (82C54 "Mode definitions"). */
static u32 counter(struct mkvm_pit *pit, int ch)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];
	u64 d = ticks(pit, ch);

	switch (c->mode) {
	case 0: case 1: case 4: case 5:
		/* Counts down through zero and wraps. */
		return (c->count - d) & 0xffff;
	case 3:
		/* Square wave: decrements by two, twice per period. */
		return c->count - rem(2 * d, c->count);
	default:
		/* Rate generator: reloads at the end of each period. */
		return c->count - rem(d, c->count);
	}
}

/* The OUT pin (82C54 figures "Mode 0" to "Mode 5"). */
static int out(struct mkvm_pit *pit, int ch)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];
	u64 d = ticks(pit, ch);

	switch (c->mode) {
	case 1:
		return d < c->count;
	case 2:
		return d && !rem(d, c->count);
	case 3:
		return rem(d, c->count) < (c->count + 1) / 2;
	case 4: case 5:
		return d == c->count;
	default:
		/* Mode 0: high at the terminal count. */
		return d >= c->count;
	}
}

/* OUT rising: an edge on IRQ 0 (GSI 0), unless the last one is still unacknowledged. */
static void send_tick(struct mkvm_pit *pit)
{
	if (READ_ONCE(pit->reinject) && !atomic_xchg(&pit->irq_ack, 0))
		return;
	mkvm_set_irq(pit->vm, MKVM_IRQ_SRC_PIT, 0, 1);
	mkvm_set_irq(pit->vm, MKVM_IRQ_SRC_PIT, 0, 0);
}

static enum hrtimer_restart timer_fn(struct hrtimer *t)
{
	struct mkvm_pit *pit = container_of(t, struct mkvm_pit, timer);
	u64 missed = 0;

	if (pit->periodic)
		missed = hrtimer_forward_now(t, ns_to_ktime(pit->period_ns)) - 1;
	/* With reinjection, ticks a late host missed are owed too. */
	if (READ_ONCE(pit->reinject))
		atomic_add(1 + missed, &pit->pending);
	send_tick(pit);
	return pit->periodic ? HRTIMER_RESTART : HRTIMER_NORESTART;
}

/* The guest acknowledged a tick: send the next one owed. */
static void tick_acked(struct mkvm_irq_ack_notifier *n)
{
	struct mkvm_pit *pit = container_of(n, struct mkvm_pit, ack);

	/* irq_ack is set before pending is read, or a tick could be stranded. */
	atomic_xchg(&pit->irq_ack, 1);
	if (atomic_dec_if_positive(&pit->pending) > 0)
		send_tick(pit);
}

static void reset_reinject(struct mkvm_pit *pit)
{
	atomic_set(&pit->pending, 0);
	atomic_set(&pit->irq_ack, 1);
}

static void pin_masked(struct mkvm_irq_mask_notifier *n, bool masked)
{
	if (!masked)
		reset_reinject(container_of(n, struct mkvm_pit, mask));
}

/* KVM_REINJECT_CONTROL; with pit->lock held.  Only reinjection listens to EOIs. */
static void set_reinject(struct mkvm_pit *pit, bool on)
{
	if (pit->reinject == on)
		return;
	if (on) {
		reset_reinject(pit);
		mkvm_irq_register_ack_notifier(pit->vm, &pit->ack);
		mkvm_irq_register_mask_notifier(pit->vm, &pit->mask);
	} else {
		mkvm_irq_unregister_ack_notifier(pit->vm, &pit->ack);
		mkvm_irq_unregister_mask_notifier(pit->vm, &pit->mask);
	}
	WRITE_ONCE(pit->reinject, on);
}

static void stop_timer(struct mkvm_pit *pit)
{
	hrtimer_cancel(&pit->timer);
	pit->period_ns = 0;
}

static void start_timer(struct mkvm_pit *pit, u32 count, bool periodic)
{
	u64 ns = mul_u64_u32_div(count, NSEC_PER_SEC, PIT_HZ);

	if (!mkvm_irqchip_in_kernel(pit->vm) || (pit->s.flags & KVM_PIT_FLAGS_HPET_LEGACY))
		return;
	hrtimer_cancel(&pit->timer);
	reset_reinject(pit);
	pit->periodic = periodic;
	/* hrtimers are not throttled: a tiny period would swamp the host. */
	pit->period_ns = periodic ? max_t(u64, ns, PIT_MIN_PERIOD_NS) : ns;
	hrtimer_start(&pit->timer, ktime_add_ns(ktime_get(), ns), HRTIMER_MODE_ABS);
}

/* A new count (82C54 "Write operations"); 0 stands for 65536. */
static void load_count(struct mkvm_pit *pit, int ch, u32 val, bool hpet_legacy_start)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];

	if (!val)
		val = 0x10000;
	c->count = val;
	c->count_load_time = ktime_get_ns();
	if (ch)
		return;
	if (hpet_legacy_start) {
		/* The HPET takes over IRQ 0. */
		stop_timer(pit);
		return;
	}
	switch (c->mode) {
	case 0: case 1: case 4:
		start_timer(pit, val, false);
		break;
	case 2: case 3:
		start_timer(pit, val, true);
		break;
	default:
		stop_timer(pit);
	}
}

/* GATE: modes 1, 2, 3 and 5 restart on a rising edge; 0 and 4 would pause (not modelled). */
static void set_gate(struct mkvm_pit *pit, int ch, u8 gate)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];

	if (gate > c->gate && (c->mode == 1 || c->mode == 2 || c->mode == 3 || c->mode == 5))
		c->count_load_time = ktime_get_ns();
	c->gate = gate;
}

static void latch_count(struct mkvm_pit *pit, int ch)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];

	/* A second latch before the first is read is ignored (82C54 "Counter latch command"). */
	if (!c->count_latched) {
		c->latched_count = counter(pit, ch);
		c->count_latched = c->rw_mode;
	}
}

static void latch_status(struct mkvm_pit *pit, int ch)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];

	/* Status byte (82C54 "Read-back command"): OUT, null count (0), RW, mode, BCD. */
	if (!c->status_latched) {
		c->status = out(pit, ch) << 7 | c->rw_mode << 4 | c->mode << 1 | c->bcd;
		c->status_latched = 1;
	}
}

static void control_word(struct mkvm_pit *pit, u8 val)
{
	struct kvm_pit_channel_state *c;
	int ch = val >> 6, access = (val >> 4) & 3;

	if (ch == 3) {
		/* Read-back: bits 3:1 select counters; bit 5 clear latches counts, bit 4 status. */
		for (ch = 0; ch < 3; ch++) {
			if (!(val & (2 << ch)))
				continue;
			if (!(val & 0x20))
				latch_count(pit, ch);
			if (!(val & 0x10))
				latch_status(pit, ch);
		}
		return;
	}
	if (!access) {
		latch_count(pit, ch);
		return;
	}
	c = &pit->s.channels[ch];
	c->rw_mode = access;
	c->read_state = access;
	c->write_state = access;
	/* Modes 6 and 7 are 2 and 3 (82C54 control word format). */
	c->mode = (val >> 1) & 7;
	if (c->mode > 5)
		c->mode -= 4;
	c->bcd = val & 1;
}

static void data_write(struct mkvm_pit *pit, int ch, u8 val)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];

	switch (c->write_state) {
	case RW_MSB:
		load_count(pit, ch, val << 8, false);
		break;
	case RW_WORD0:
		c->write_latch = val;
		c->write_state = RW_WORD1;
		break;
	case RW_WORD1:
		load_count(pit, ch, c->write_latch | val << 8, false);
		c->write_state = RW_WORD0;
		break;
	default:
		load_count(pit, ch, val, false);
	}
}

static u8 data_read(struct mkvm_pit *pit, int ch)
{
	struct kvm_pit_channel_state *c = &pit->s.channels[ch];
	u8 v;

	if (c->status_latched) {
		c->status_latched = 0;
		return c->status;
	}
	if (c->count_latched) {
		if (c->count_latched == RW_MSB) {
			c->count_latched = 0;
			return c->latched_count >> 8;
		}
		/* LSB only, or the first byte of a word, whose MSB comes next. */
		c->count_latched = c->count_latched == RW_WORD0 ? RW_MSB : 0;
		return c->latched_count & 0xff;
	}
	switch (c->read_state) {
	case RW_MSB:
		return counter(pit, ch) >> 8;
	case RW_WORD0:
		c->read_state = RW_WORD1;
		return counter(pit, ch) & 0xff;
	case RW_WORD1:
		v = counter(pit, ch) >> 8;
		c->read_state = RW_WORD0;
		return v;
	default:
		return counter(pit, ch) & 0xff;
	}
}

/* Port 0x61 (PC/AT system control port B): speaker data, channel 2's gate and OUT. */
static u32 speaker_read(struct mkvm_pit *pit)
{
	/* Bit 4 toggles with the DRAM refresh, about every 15 us; 2^14 ns will do. */
	u32 refresh = (ktime_get_ns() >> 14) & 1;

	return !!(pit->s.flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON) << 1 | pit->s.channels[2].gate |
	       out(pit, 2) << 5 | refresh << 4;
}

static void speaker_write(struct mkvm_pit *pit, u32 val)
{
	if (val & 2)
		pit->s.flags |= KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	else
		pit->s.flags &= ~KVM_PIT_FLAGS_SPEAKER_DATA_ON;
	set_gate(pit, 2, val & 1);
}

/**
 * mkvm_pit_pio() - a guest IN or OUT the PIT may take
 * @vm: the VM
 * @port: the port
 * @len: the size; only the low byte of an OUT counts, an IN is zero-extended
 * @in: IN into *@val, or OUT of *@val
 * @val: the data
 *
 * Return: true for ports 0x40-0x43 (an access inside them) and, with
 * KVM_PIT_SPEAKER_DUMMY, port 0x61.
 */
bool mkvm_pit_pio(struct mkvm_vm *vm, u16 port, unsigned int len, bool in, u32 *val)
{
	struct mkvm_pit *pit = smp_load_acquire(&vm->arch.pit);
	bool ours = true;

	if (!pit)
		return false;
	mutex_lock(&pit->lock);
	if (port >= PIT_BASE_PORT && port + len <= PIT_BASE_PORT + PIT_NR_PORTS) {
		port = array_index_nospec(port - PIT_BASE_PORT, PIT_NR_PORTS);
		if (in)
			*val = port == 3 ? 0 : data_read(pit, port);
		else if (port == 3)
			control_word(pit, *val);
		else
			data_write(pit, port, *val);
	} else if (port == SPEAKER_PORT && pit->speaker) {
		if (in)
			*val = speaker_read(pit);
		else
			speaker_write(pit, *val);
	} else {
		ours = false;
	}
	mutex_unlock(&pit->lock);
	return ours;
}

/* Power-on: no mode programmed, counts of 65536, gates of channels 0 and 1 high. */
static void reset(struct mkvm_pit *pit)
{
	pit->s.flags = 0;
	for (int ch = 0; ch < 3; ch++) {
		pit->s.channels[ch].mode = MODE_NONE;
		pit->s.channels[ch].gate = ch != 2;
		load_count(pit, ch, 0, false);
	}
}

static int create_pit(struct mkvm_vm *vm, u32 flags)
{
	struct mkvm_pit *pit;
	int r = 0;

	mutex_lock(&vm->lock);
	if (vm->arch.pit) {
		r = -EEXIST;
		goto out;
	}
	pit = kzalloc(sizeof(*pit), GFP_KERNEL_ACCOUNT);
	if (!pit) {
		r = -ENOMEM;
		goto out;
	}
	pit->vm = vm;
	mutex_init(&pit->lock);
	/* KVM ignores the other flag bits. */
	pit->speaker = flags & KVM_PIT_SPEAKER_DUMMY;
	hrtimer_init(&pit->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	pit->timer.function = timer_fn;
	pit->ack.gsi = 0;
	pit->ack.acked = tick_acked;
	pit->mask.gsi = 0;
	pit->mask.masked = pin_masked;
	reset(pit);
	set_reinject(pit, true);
	smp_store_release(&vm->arch.pit, pit);
out:
	mutex_unlock(&vm->lock);
	return r;
}

/* KVM_SET_PIT(2): the state, and every count loaded again from now on. */
static void set_state(struct mkvm_pit *pit, const struct kvm_pit_state2 *s, bool with_flags)
{
	bool legacy_start = false;

	mutex_lock(&pit->lock);
	if (with_flags) {
		legacy_start = !(pit->s.flags & KVM_PIT_FLAGS_HPET_LEGACY) &&
			       (s->flags & KVM_PIT_FLAGS_HPET_LEGACY);
		pit->s.flags = s->flags;
	}
	memcpy(pit->s.channels, s->channels, sizeof(pit->s.channels));
	for (int ch = 0; ch < 3; ch++)
		load_count(pit, ch, pit->s.channels[ch].count, legacy_start && !ch);
	mutex_unlock(&pit->lock);
}

static long pit_state_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp)
{
	struct mkvm_pit *pit = smp_load_acquire(&vm->arch.pit);
	/* KVM_GET/SET_PIT's struct kvm_pit_state is the first part of this one. */
	struct kvm_pit_state2 s = {};
	size_t size = ioctl == KVM_GET_PIT2 || ioctl == KVM_SET_PIT2 ? sizeof(s) :
		      sizeof(struct kvm_pit_state);

	/* KVM copies the argument in first, except for KVM_GET_PIT2. */
	if (ioctl != KVM_GET_PIT2 && copy_from_user(&s, argp, size))
		return -EFAULT;
	if (!pit)
		return -ENXIO;
	if (ioctl == KVM_SET_PIT || ioctl == KVM_SET_PIT2) {
		set_state(pit, &s, ioctl == KVM_SET_PIT2);
		return 0;
	}
	mutex_lock(&pit->lock);
	memcpy(s.channels, pit->s.channels, sizeof(s.channels));
	s.flags = pit->s.flags;
	mutex_unlock(&pit->lock);
	memset(s.reserved, 0, sizeof(s.reserved));
	return copy_to_user(argp, &s, size) ? -EFAULT : 0;
}

static long reinject_control(struct mkvm_vm *vm, void __user *argp)
{
	struct mkvm_pit *pit = smp_load_acquire(&vm->arch.pit);
	struct kvm_reinject_control c;

	if (copy_from_user(&c, argp, sizeof(c)))
		return -EFAULT;
	if (!pit)
		return -ENXIO;
	mutex_lock(&pit->lock);
	set_reinject(pit, c.pit_reinject);
	mutex_unlock(&pit->lock);
	return 0;
}

/**
 * mkvm_pit_vm_ioctl() - the PIT's VM ioctls
 * @vm: the VM
 * @ioctl: KVM_CREATE_PIT, KVM_CREATE_PIT2, KVM_GET/SET_PIT, KVM_GET/SET_PIT2
 *	   or KVM_REINJECT_CONTROL
 * @argp: the argument
 *
 * Return: 0; -EEXIST for a second PIT, -ENXIO for state without a PIT,
 * -EFAULT, -ENOMEM; -ENOTTY for another ioctl.
 */
long mkvm_pit_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp)
{
	struct kvm_pit_config cfg;

	switch (ioctl) {
	case KVM_CREATE_PIT:
		/* The old ioctl gives the PIT port 0x61. */
		return create_pit(vm, KVM_PIT_SPEAKER_DUMMY);
	case KVM_CREATE_PIT2:
		if (copy_from_user(&cfg, argp, sizeof(cfg)))
			return -EFAULT;
		return create_pit(vm, cfg.flags);
	case KVM_GET_PIT:
	case KVM_SET_PIT:
	case KVM_GET_PIT2:
	case KVM_SET_PIT2:
		return pit_state_ioctl(vm, ioctl, argp);
	case KVM_REINJECT_CONTROL:
		return reinject_control(vm, argp);
	default:
		return -ENOTTY;
	}
}

/**
 * mkvm_pit_destroy() - stop and free the PIT of a dying VM
 * @vm: the VM, which no vCPU runs any more
 */
void mkvm_pit_destroy(struct mkvm_vm *vm)
{
	struct mkvm_pit *pit = vm->arch.pit;

	if (!pit)
		return;
	hrtimer_cancel(&pit->timer);
	set_reinject(pit, false);
	kfree(pit);
	vm->arch.pit = NULL;
}
