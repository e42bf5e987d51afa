// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_CAP_SYNC_REGS (api.rst 5, kvm_valid_regs, kvm_dirty_regs and s.regs
 * of struct kvm_run): KVM copies the registers, special registers and vCPU
 * events named in kvm_valid_regs into kvm_run at the end of every KVM_RUN,
 * and takes in the parts named in kvm_dirty_regs at its start, as
 * KVM_SET_REGS, KVM_SET_SREGS and KVM_SET_VCPU_EVENTS would, clearing
 * their bits.  Checked: the capability's value, unknown bits, that the
 * copies match the ioctls after every kind of exit and after an EINTR
 * from immediate_exit, that dirty parts reach the guest, what a refused
 * part leaves behind, and that a change without its dirty bit is ignored.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define ALL_SYNC		(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)
/* The next bit after the three KVM defines for x86: unknown to both. */
#define UNKNOWN_SYNC_BIT	(1ULL << 3)

#define NMI_VECTOR		2
#define UD_VECTOR		6
#define GP_VECTOR		13
#define IRQ_VECTOR		0x42

#define MSR_EFER		0xc0000080
#define MSR_FS_BASE		0xc0000100
#define EFER_SCE		(1ULL << 0)
/* Reserved in CR4 on every CPU: KVM_SET_SREGS refuses it. */
#define CR4_RESERVED_BIT63	(1ULL << 63)

/* Port of the plain OUT in guest_gpr_probe: not the ucall port. */
#define PROBE_PORT		0x80
/* A GPA outside every memslot (identity-mapped): touching it exits with MMIO. */
#define MMIO_GPA		0xd0000000ULL

extern char guest_return_trampoline[];

/* What guest_gpr_probe found in each GPR and RFLAGS, in struct kvm_regs order (no RIP). */
uint64_t seen_gprs[18];

static volatile uint64_t exc_count, exc_vector, exc_error, nmi_count;
/* Where a guest FS base set through s.regs.sregs points. */
static volatile uint64_t fs_target = 0x600dcafe0000f500ULL;

void guest_gpr_report(void);
void guest_gpr_report(void)
{
	GUEST_SYNC_ARGS(2, exc_count, exc_vector, exc_error);
}

/*
 * Exits with a plain OUT, then records every GPR and RFLAGS as it found
 * them after the exit, before any compiled code can touch them, and
 * reports through C.  Entered with the library's stack, whose return
 * address is the "done" trampoline, so the tail jump is a proper call.
 */
void guest_gpr_probe(void);
asm(".pushsection .text\n"
    ".globl guest_gpr_probe\n"
    "guest_gpr_probe:\n"
    "	outb %al, $0x80\n"
    "	pushfq\n"
    "	popq seen_gprs+136(%rip)\n"
    "	movq %rax, seen_gprs+0(%rip)\n"
    "	movq %rbx, seen_gprs+8(%rip)\n"
    "	movq %rcx, seen_gprs+16(%rip)\n"
    "	movq %rdx, seen_gprs+24(%rip)\n"
    "	movq %rsi, seen_gprs+32(%rip)\n"
    "	movq %rdi, seen_gprs+40(%rip)\n"
    "	movq %rsp, seen_gprs+48(%rip)\n"
    "	movq %rbp, seen_gprs+56(%rip)\n"
    "	movq %r8, seen_gprs+64(%rip)\n"
    "	movq %r9, seen_gprs+72(%rip)\n"
    "	movq %r10, seen_gprs+80(%rip)\n"
    "	movq %r11, seen_gprs+88(%rip)\n"
    "	movq %r12, seen_gprs+96(%rip)\n"
    "	movq %r13, seen_gprs+104(%rip)\n"
    "	movq %r14, seen_gprs+112(%rip)\n"
    "	movq %r15, seen_gprs+120(%rip)\n"
    "	jmp guest_gpr_report\n"
    ".popsection\n");

static void guest_exc_handler(struct ex_regs *regs)
{
	exc_count++;
	exc_vector = regs->vector;
	exc_error = regs->error_code;
}

/* Exits inside the handler, where NMIs are blocked, for the events to show it. */
static void guest_nmi_handler(struct ex_regs *regs)
{
	(void)regs;
	nmi_count++;
	GUEST_SYNC(100);
}

static struct kvm_vcpu *sync_vcpu(struct kvm_vm **vm, void (*fn)(void))
{
	struct kvm_vcpu *vcpu;

	*vm = vm_create(VM_MODE_LONG64);
	vcpu = vm_vcpu_add(*vm, 0, fn);
	vm_install_exception_handler(*vm, UD_VECTOR, guest_exc_handler);
	vm_install_exception_handler(*vm, GP_VECTOR, guest_exc_handler);
	vm_install_exception_handler(*vm, IRQ_VECTOR, guest_exc_handler);
	vm_install_exception_handler(*vm, NMI_VECTOR, guest_nmi_handler);
	return vcpu;
}

/* The guest's copy of one of its counters. */
static uint64_t guest_u64(struct kvm_vm *vm, volatile uint64_t *g)
{
	return *(volatile uint64_t *)gva2hva(vm, (uint64_t)g);
}

static void get_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, ev, "KVM_GET_VCPU_EVENTS");
}

/*
 * Bytes KVM must overwrite: a copy that is not refreshed shows up.  Two
 * fields are zeroed instead, as KVM's copy leaves them alone where its
 * ioctls hand out zeroes: sregs.interrupt_bitmap, in which it only sets
 * the bit of an injected interrupt, and events.triple_fault.pending, which
 * it writes only with KVM_CAP_X86_TRIPLE_FAULT_EVENT enabled.  The padding
 * of segments and descriptor tables is not compared at all.
 */
static void poison(struct kvm_sync_regs *s)
{
	memset(s, 0xa5, sizeof(*s));
	memset(s->sregs.interrupt_bitmap, 0, sizeof(s->sregs.interrupt_bitmap));
	s->events.triple_fault.pending = 0;
}

static void poison_sync_regs(struct kvm_run *run)
{
	poison(&run->s.regs);
}

#define CHECK_FIELD(a, b, f, what)						\
	TEST_ASSERT((a)->f == (b)->f, "%s: s.regs " #f " %#llx, ioctl %#llx", what,	\
		    (unsigned long long)(a)->f, (unsigned long long)(b)->f)

/* Every field but the padding, which KVM_GET_SREGS zeroes and the sync copy need not. */
static void check_segment(const struct kvm_segment *a, const struct kvm_segment *b,
			  const char *what)
{
	CHECK_FIELD(a, b, base, what);
	CHECK_FIELD(a, b, limit, what);
	CHECK_FIELD(a, b, selector, what);
	CHECK_FIELD(a, b, type, what);
	CHECK_FIELD(a, b, present, what);
	CHECK_FIELD(a, b, dpl, what);
	CHECK_FIELD(a, b, db, what);
	CHECK_FIELD(a, b, s, what);
	CHECK_FIELD(a, b, l, what);
	CHECK_FIELD(a, b, g, what);
	CHECK_FIELD(a, b, avl, what);
	CHECK_FIELD(a, b, unusable, what);
}

static void check_sregs(const struct kvm_sregs *a, const struct kvm_sregs *b, const char *when)
{
	static const char *const names[] = { "cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt" };
	const struct kvm_segment *sa[] = { &a->cs, &a->ds, &a->es, &a->fs, &a->gs, &a->ss,
					   &a->tr, &a->ldt };
	const struct kvm_segment *sb[] = { &b->cs, &b->ds, &b->es, &b->fs, &b->gs, &b->ss,
					   &b->tr, &b->ldt };
	char what[96];

	for (int i = 0; i < 8; i++) {
		snprintf(what, sizeof(what), "%s, %s", when, names[i]);
		check_segment(sa[i], sb[i], what);
	}
	CHECK_FIELD(a, b, gdt.base, when);
	CHECK_FIELD(a, b, gdt.limit, when);
	CHECK_FIELD(a, b, idt.base, when);
	CHECK_FIELD(a, b, idt.limit, when);
	CHECK_FIELD(a, b, cr0, when);
	CHECK_FIELD(a, b, cr2, when);
	CHECK_FIELD(a, b, cr3, when);
	CHECK_FIELD(a, b, cr4, when);
	CHECK_FIELD(a, b, cr8, when);
	CHECK_FIELD(a, b, efer, when);
	CHECK_FIELD(a, b, apic_base, when);
	for (int i = 0; i < 4; i++)
		CHECK_FIELD(a, b, interrupt_bitmap[i], when);
}

/*
 * kvm_vcpu_events has no implicit padding, and KVM writes its pad and
 * reserved bytes for KVM_GET_VCPU_EVENTS and the sync copy alike: all of
 * it must match.  The fields are compared first for a readable failure.
 */
static void check_events(const struct kvm_vcpu_events *a, const struct kvm_vcpu_events *b,
			 const char *when)
{
	CHECK_FIELD(a, b, exception.injected, when);
	CHECK_FIELD(a, b, exception.nr, when);
	CHECK_FIELD(a, b, exception.has_error_code, when);
	CHECK_FIELD(a, b, exception.pending, when);
	CHECK_FIELD(a, b, exception.error_code, when);
	CHECK_FIELD(a, b, interrupt.injected, when);
	CHECK_FIELD(a, b, interrupt.nr, when);
	CHECK_FIELD(a, b, interrupt.soft, when);
	CHECK_FIELD(a, b, interrupt.shadow, when);
	CHECK_FIELD(a, b, nmi.injected, when);
	CHECK_FIELD(a, b, nmi.pending, when);
	CHECK_FIELD(a, b, nmi.masked, when);
	CHECK_FIELD(a, b, sipi_vector, when);
	CHECK_FIELD(a, b, flags, when);
	CHECK_FIELD(a, b, smi.smm, when);
	CHECK_FIELD(a, b, smi.pending, when);
	CHECK_FIELD(a, b, smi.smm_inside_nmi, when);
	CHECK_FIELD(a, b, smi.latched_init, when);
	CHECK_FIELD(a, b, triple_fault.pending, when);
	CHECK_FIELD(a, b, exception_has_payload, when);
	CHECK_FIELD(a, b, exception_payload, when);
	TEST_ASSERT(!memcmp(a, b, sizeof(*a)), "%s: events differ in padding or reserved bytes",
		    when);
}

/* kvm_regs is 18 u64s without padding: compared whole, reported by index. */
static void check_regs(const struct kvm_regs *got, const struct kvm_regs *want,
		       const char *when)
{
	const uint64_t *g = (const uint64_t *)got, *w = (const uint64_t *)want;

	for (size_t i = 0; i < sizeof(*got) / 8; i++)
		TEST_ASSERT(g[i] == w[i], "%s: kvm_regs word %zu is %#" PRIx64 ", expected %#"
			    PRIx64, when, i, g[i], w[i]);
}

/* After a KVM_RUN with kvm_valid_regs = all three: s.regs is what the ioctls say. */
static void check_sync_matches(struct kvm_vcpu *vcpu, const char *when)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_vcpu_events ev;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	vcpu_regs_get(vcpu, &regs);
	vcpu_sregs_get(vcpu, &sregs);
	get_events(vcpu, &ev);
	check_regs(&run->s.regs.regs, &regs, when);
	check_sregs(&run->s.regs.sregs, &sregs, when);
	check_events(&run->s.regs.events, &ev, when);
}

/* Runs to a ucall of @stage with nothing dirty left. */
static void run_to_sync(struct kvm_vcpu *vcpu, uint64_t stage, struct ucall *uc)
{
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc->args[0], stage);
	TEST_ASSERT_EQ(vcpu->run->kvm_dirty_regs, 0);
}

/* Runs guest_gpr_probe to its OUT. */
static void run_to_probe_out(struct kvm_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, PROBE_PORT);
	TEST_ASSERT_EQ(run->io.direction, KVM_EXIT_IO_OUT);
}

/* Distinct values for every GPR but RSP, which the reporting code needs. */
static void set_magic_gprs(struct kvm_regs *r)
{
	__u64 *gprs[] = { &r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rbp,
			  &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14,
			  &r->r15 };

	for (unsigned int i = 0; i < sizeof(gprs) / sizeof(gprs[0]); i++)
		*gprs[i] = 0x5eed000000000000ULL | (uint64_t)(i + 1) << 8 | (i + 1);
}

/* What guest_gpr_probe recorded must be @want, RIP aside. */
static void check_seen_gprs(struct kvm_vm *vm, const struct kvm_regs *want)
{
	const uint64_t *w = (const uint64_t *)want;

	sync_global_from_guest(vm, seen_gprs);
	for (int i = 0; i < 16; i++)
		TEST_ASSERT(seen_gprs[i] == w[i], "guest GPR %d: %#" PRIx64 ", expected %#" PRIx64,
			    i, seen_gprs[i], w[i]);
	TEST_ASSERT_EQ(seen_gprs[17], want->rflags);
}

TEST(cap_value)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);

	/* The reference answers KVM_SYNC_X86_VALID_FIELDS, on /dev/kvm and the VM alike. */
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_SYNC_REGS), 7);
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS), 7);
	vm_free(vm);
}

static void guest_two_syncs(void)
{
	GUEST_SYNC(1);
	GUEST_SYNC(2);
}

/*
 * An unknown bit in either word fails KVM_RUN before anything else: before
 * immediate_exit is looked at, before a dirty part is taken in, and
 * without entering the guest.  The bits stay as userspace left them.
 */
TEST(unknown_bits_einval)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_two_syncs);
	struct kvm_run *run = vcpu->run;
	struct kvm_regs before, after;
	struct ucall uc;

	run_to_sync(vcpu, 1, &uc);
	vcpu_regs_get(vcpu, &before);

	run->kvm_valid_regs = UNKNOWN_SYNC_BIT;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	run->kvm_valid_regs = 1ULL << 63;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	run->kvm_valid_regs = 0;
	run->kvm_dirty_regs = UNKNOWN_SYNC_BIT;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	TEST_ASSERT_EQ(run->kvm_dirty_regs, UNKNOWN_SYNC_BIT);

	/* EINVAL wins over immediate_exit's EINTR. */
	run->immediate_exit = 1;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	run->immediate_exit = 0;

	/* A known dirty part next to an unknown bit is not taken in. */
	run->s.regs.regs = before;
	run->s.regs.regs.rbx = 0xbadbadbadULL;
	run->kvm_dirty_regs = KVM_SYNC_X86_REGS | UNKNOWN_SYNC_BIT;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	TEST_ASSERT_EQ(run->kvm_dirty_regs, KVM_SYNC_X86_REGS | UNKNOWN_SYNC_BIT);

	/* The guest did not run, and nothing was set. */
	vcpu_regs_get(vcpu, &after);
	check_regs(&after, &before, "after the EINVALs");

	/* Known valid bits next to an unknown one are still filled on the way out. */
	run->kvm_dirty_regs = 0;
	poison_sync_regs(run);
	run->kvm_valid_regs = ALL_SYNC | UNKNOWN_SYNC_BIT;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	check_sync_matches(vcpu, "EINVAL from an unknown valid bit");

	run->kvm_valid_regs = 0;
	run_to_sync(vcpu, 2, &uc);
	vm_free(vm);
}

static void guest_many_exits(void)
{
	GUEST_SYNC(1);
	guest_outb(PROBE_PORT, 0x11);
	GUEST_SYNC(2);
	(void)*(volatile uint32_t *)MMIO_GPA;
	GUEST_SYNC(3);
	guest_hlt();
	GUEST_SYNC(4);
}

/*
 * After each kind of exit (ucall, plain OUT, MMIO read, HLT, and a ucall
 * from an NMI handler, with NMIs blocked) s.regs holds exactly what the
 * three ioctls return.  The copy is poisoned before each run, so a stale
 * or partial copy fails.
 */
TEST(valid_regs_match_ioctls)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_many_exits);
	struct kvm_run *run = vcpu->run;
	struct kvm_sync_regs poisoned;
	struct kvm_regs regs;
	struct ucall uc;

	run->kvm_valid_regs = ALL_SYNC;

	poison_sync_regs(run);
	run_to_sync(vcpu, 1, &uc);
	check_sync_matches(vcpu, "ucall exit");
	TEST_ASSERT_EQ(run->kvm_valid_regs, ALL_SYNC);

	poison_sync_regs(run);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, PROBE_PORT);
	check_sync_matches(vcpu, "OUT exit");

	poison_sync_regs(run);
	run_to_sync(vcpu, 2, &uc);
	check_sync_matches(vcpu, "second ucall exit");

	poison_sync_regs(run);
	vcpu_expect_mmio(vcpu, MMIO_GPA, 4, false, 0);
	check_sync_matches(vcpu, "MMIO exit");

	poison_sync_regs(run);
	run_to_sync(vcpu, 3, &uc);
	check_sync_matches(vcpu, "ucall after MMIO");

	poison_sync_regs(run);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	check_sync_matches(vcpu, "HLT exit");

	/* An NMI from userspace; its handler exits with NMIs blocked. */
	vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	poison_sync_regs(run);
	run_to_sync(vcpu, 100, &uc);
	check_sync_matches(vcpu, "ucall from the NMI handler");
	TEST_ASSERT_EQ(run->s.regs.events.nmi.masked, 1);

	poison_sync_regs(run);
	run_to_sync(vcpu, 4, &uc);
	check_sync_matches(vcpu, "ucall after the NMI");
	TEST_ASSERT_EQ(run->s.regs.events.nmi.masked, 0);

	/* A part left out of kvm_valid_regs is not written. */
	run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	poison_sync_regs(run);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vcpu_regs_get(vcpu, &regs);
	check_regs(&run->s.regs.regs, &regs, "REGS only");
	poison(&poisoned);
	TEST_ASSERT(!memcmp(&run->s.regs.sregs, &poisoned.sregs, sizeof(poisoned.sregs)),
		    "sregs written without KVM_SYNC_X86_SREGS");
	TEST_ASSERT(!memcmp(&run->s.regs.events, &poisoned.events, sizeof(poisoned.events)),
		    "events written without KVM_SYNC_X86_EVENTS");
	vm_free(vm);
}

/*
 * KVM_RUN that returns EINTR for immediate_exit still fills s.regs: on a
 * new vCPU (the entry state the library set) and after a ucall, here with
 * events set from userspace that are still waiting for the guest.
 */
TEST(immediate_exit_fills_valid_regs)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_two_syncs);
	struct kvm_run *run = vcpu->run;
	struct kvm_vcpu_events ev;
	struct ucall uc;

	run->kvm_valid_regs = ALL_SYNC;
	run->immediate_exit = 1;
	poison_sync_regs(run);
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	check_sync_matches(vcpu, "EINTR before the first entry");
	TEST_ASSERT_EQ(run->s.regs.regs.rip, (uint64_t)guest_two_syncs);

	run->immediate_exit = 0;
	run_to_sync(vcpu, 1, &uc);

	/* An interrupt and an NMI, both masked from the guest until it runs. */
	get_events(vcpu, &ev);
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
	ev.interrupt.injected = 1;
	ev.interrupt.nr = IRQ_VECTOR;
	ev.nmi.pending = 1;
	ev.nmi.masked = 1;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");

	run->immediate_exit = 1;
	poison_sync_regs(run);
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	check_sync_matches(vcpu, "EINTR after a ucall");
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.injected, 1);
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.nr, IRQ_VECTOR);
	TEST_ASSERT_EQ(run->s.regs.events.nmi.pending, 1);
	TEST_ASSERT_EQ(run->s.regs.events.nmi.masked, 1);

	/* Drop them again, through s.regs this time, and let the guest finish. */
	ev = run->s.regs.events;
	ev.interrupt.injected = 0;
	ev.nmi.pending = 0;
	ev.nmi.masked = 0;
	run->s.regs.events = ev;
	run->kvm_dirty_regs = KVM_SYNC_X86_EVENTS;
	run->kvm_valid_regs = 0;
	run->immediate_exit = 0;
	run_to_sync(vcpu, 2, &uc);
	TEST_ASSERT_EQ(guest_u64(vm, &exc_count), 0);
	TEST_ASSERT_EQ(guest_u64(vm, &nmi_count), 0);
	vm_free(vm);
}

static void guest_events_report(void)
{
	GUEST_SYNC(1);
	GUEST_SYNC_ARGS(2, exc_count, exc_vector, exc_error);
	GUEST_SYNC_ARGS(3, nmi_count, 0, 0);
}

/*
 * sregs.interrupt_bitmap is the injected hardware interrupt, as in
 * KVM_GET_SREGS and KVM_SET_SREGS: a bit set through s.regs with dirty
 * SREGS becomes the events' injected interrupt, shows in both copies, and
 * reaches the guest's handler with its interrupts disabled.
 */
TEST(sregs_interrupt_bitmap_is_injected_irq)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_events_report);
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	run->kvm_valid_regs = ALL_SYNC;
	run_to_sync(vcpu, 1, &uc);
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.injected, 0);
	TEST_ASSERT_EQ(run->s.regs.regs.rflags & 0x200, 0);	/* IF clear */
	run->s.regs.sregs.interrupt_bitmap[IRQ_VECTOR / 64] = 1ULL << (IRQ_VECTOR % 64);
	run->kvm_dirty_regs = KVM_SYNC_X86_SREGS;
	run->immediate_exit = 1;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	TEST_ASSERT_EQ(run->kvm_dirty_regs, 0);
	check_sync_matches(vcpu, "EINTR after setting the bitmap");
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.injected, 1);
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.nr, IRQ_VECTOR);
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.soft, 0);
	TEST_ASSERT_EQ(run->s.regs.sregs.interrupt_bitmap[IRQ_VECTOR / 64],
		       1ULL << (IRQ_VECTOR % 64));

	run->immediate_exit = 0;
	vcpu_set_if_on_intel(vcpu);
	poison_sync_regs(run);
	run_to_sync(vcpu, 2, &uc);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], IRQ_VECTOR);
	check_sync_matches(vcpu, "after the interrupt");
	TEST_ASSERT_EQ(run->s.regs.events.interrupt.injected, 0);
	TEST_ASSERT_EQ(run->s.regs.sregs.interrupt_bitmap[IRQ_VECTOR / 64], 0);
	vm_free(vm);
}

/*
 * Every GPR and RFLAGS set through s.regs at an OUT exit, RIP unchanged:
 * the OUT completes and the guest finds the values after it.
 */
TEST(dirty_regs_gprs_reach_guest)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_gpr_probe);
	struct kvm_run *run = vcpu->run;
	struct kvm_regs want;
	struct ucall uc;

	run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	run_to_probe_out(vcpu);
	want = run->s.regs.regs;
	set_magic_gprs(&want);
	/* CF, PF, ZF, SF, OF and the fixed bit 1. */
	want.rflags = 0x8c7;
	run->s.regs.regs = want;
	run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	run_to_sync(vcpu, 2, &uc);
	check_seen_gprs(vm, &want);
	TEST_ASSERT_EQ(uc.args[1], 0);	/* no exception on the way */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

static void guest_redirected(uint64_t a, uint64_t b)
{
	GUEST_SYNC_ARGS(3, a, b, 0);
}

static void guest_redirect_me(void)
{
	GUEST_SYNC(1);
	/* Never reached: userspace moves RIP elsewhere at the ucall before. */
	GUEST_SYNC(99);
}

/* RIP, RSP and argument registers through s.regs: the guest runs another function. */
TEST(dirty_regs_rip_redirects_guest)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_redirect_me);
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	run_to_sync(vcpu, 1, &uc);
	/* A fresh stack whose return address is the library's "done" trampoline. */
	run->s.regs.regs.rsp = vcpu->stack_top - 8;
	*(uint64_t *)gva2hva(vm, vcpu->stack_top - 8) = (uint64_t)guest_return_trampoline;
	run->s.regs.regs.rip = (uint64_t)guest_redirected;
	run->s.regs.regs.rdi = 0x1111222233334444ULL;
	run->s.regs.regs.rsi = 0x5555666677778888ULL;
	run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
	run_to_sync(vcpu, 3, &uc);
	TEST_ASSERT_EQ(uc.args[1], 0x1111222233334444ULL);
	TEST_ASSERT_EQ(uc.args[2], 0x5555666677778888ULL);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

static void guest_sregs_report(void)
{
	uint64_t fs_word;

	GUEST_SYNC(1);
	asm volatile("movq %%fs:0, %0" : "=r"(fs_word));
	GUEST_SYNC_ARGS(2, guest_rdmsr(MSR_EFER), guest_rdmsr(MSR_FS_BASE), fs_word);
}

/* EFER.SCE and the FS base through s.regs.sregs: the guest's RDMSR and FS see them. */
TEST(dirty_sregs_reach_guest)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_sregs_report);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs sregs;
	struct ucall uc;
	uint64_t efer;

	run->kvm_valid_regs = KVM_SYNC_X86_SREGS;
	run_to_sync(vcpu, 1, &uc);
	efer = run->s.regs.sregs.efer;
	TEST_ASSERT_EQ(efer & EFER_SCE, 0);
	run->s.regs.sregs.efer = efer | EFER_SCE;
	run->s.regs.sregs.fs.base = (uint64_t)&fs_target;
	run->kvm_dirty_regs = KVM_SYNC_X86_SREGS;
	run_to_sync(vcpu, 2, &uc);
	TEST_ASSERT_EQ(uc.args[1], efer | EFER_SCE);
	TEST_ASSERT_EQ(uc.args[2], (uint64_t)&fs_target);
	TEST_ASSERT_EQ(uc.args[3], fs_target);
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT_EQ(sregs.efer, efer | EFER_SCE);
	TEST_ASSERT_EQ(sregs.fs.base, (uint64_t)&fs_target);
	vm_free(vm);
}

/*
 * An exception and then an NMI set through s.regs.events: the guest's
 * handlers run before its next instruction.
 */
TEST(dirty_events_reach_guest)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_events_report);
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	run->kvm_valid_regs = KVM_SYNC_X86_EVENTS;
	run_to_sync(vcpu, 1, &uc);
	TEST_ASSERT_EQ(run->s.regs.events.exception.injected, 0);
	run->s.regs.events.exception.injected = 1;
	run->s.regs.events.exception.nr = GP_VECTOR;
	run->s.regs.events.exception.has_error_code = 1;
	run->s.regs.events.exception.error_code = 0x5a58;
	run->kvm_dirty_regs = KVM_SYNC_X86_EVENTS;
	run_to_sync(vcpu, 2, &uc);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], GP_VECTOR);
	TEST_ASSERT_EQ(uc.args[3], 0x5a58);
	TEST_ASSERT_EQ(run->s.regs.events.exception.injected, 0);

	/* The NMI handler reports from inside; the guest then goes on. */
	TEST_ASSERT(run->s.regs.events.flags & KVM_VCPUEVENT_VALID_NMI_PENDING,
		    "flags %#x", run->s.regs.events.flags);
	run->s.regs.events.nmi.pending = 1;
	run->kvm_dirty_regs = KVM_SYNC_X86_EVENTS;
	run_to_sync(vcpu, 100, &uc);
	TEST_ASSERT_EQ(run->s.regs.events.nmi.masked, 1);
	TEST_ASSERT_EQ(run->s.regs.events.nmi.pending, 0);
	run_to_sync(vcpu, 3, &uc);
	TEST_ASSERT_EQ(uc.args[1], 1);
	vm_free(vm);
}

/* Sets all three parts in s.regs, with SREGS invalid (a reserved CR4 bit), all dirty. */
static void dirty_with_bad_sregs(struct kvm_vcpu *vcpu, struct kvm_regs *want,
				 struct kvm_sregs *good)
{
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs bad;

	vcpu_sregs_get(vcpu, good);
	/* What both refuse through KVM_SET_SREGS too. */
	bad = *good;
	bad.cr4 |= CR4_RESERVED_BIT63;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_SREGS, &bad), EINVAL);

	vcpu_regs_get(vcpu, want);
	set_magic_gprs(want);
	run->s.regs.regs = *want;
	run->s.regs.sregs = bad;
	get_events(vcpu, &run->s.regs.events);
	run->s.regs.events.exception.injected = 1;
	run->s.regs.events.exception.nr = UD_VECTOR;
	run->s.regs.events.exception.has_error_code = 0;
	run->kvm_dirty_regs = ALL_SYNC;
}

/*
 * Refused SREGS: KVM_RUN fails with EINVAL without entering the guest.
 * KVM takes the parts in the order REGS, SREGS, EVENTS and stops at the
 * refused one, so the registers are already set and their bit cleared,
 * while the SREGS and EVENTS bits stay and the events are not set.  With
 * kvm_valid_regs 0, s.regs is left as userspace wrote it; once SREGS is
 * fixed, the next KVM_RUN takes in the rest.
 */
TEST(bad_sregs_einval_regs_taken)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_gpr_probe);
	struct kvm_run *run = vcpu->run;
	struct kvm_vcpu_events ev;
	struct kvm_sregs good, now;
	struct kvm_regs want, regs;
	struct ucall uc;

	run_to_probe_out(vcpu);
	dirty_with_bad_sregs(vcpu, &want, &good);
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	TEST_ASSERT_EQ(run->kvm_dirty_regs, KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS);
	vcpu_regs_get(vcpu, &regs);
	check_regs(&regs, &want, "registers after the refused SREGS");
	vcpu_sregs_get(vcpu, &now);
	check_sregs(&now, &good, "sregs after the refused SREGS");
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.exception.injected, 0);
	/* Nothing was copied back: the bad CR4 is still userspace's. */
	TEST_ASSERT_EQ(run->s.regs.sregs.cr4, good.cr4 | CR4_RESERVED_BIT63);
	TEST_ASSERT_EQ(run->s.regs.events.exception.injected, 1);

	/* Again, the same. */
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	TEST_ASSERT_EQ(run->kvm_dirty_regs, KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS);

	/* Fixed: SREGS and the #UD are taken in, the guest starts after its OUT. */
	run->s.regs.sregs.cr4 = good.cr4;
	run_to_sync(vcpu, 2, &uc);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], UD_VECTOR);
	check_seen_gprs(vm, &want);
	vm_free(vm);
}

/*
 * The same with kvm_valid_regs = all three: the failed KVM_RUN still
 * copies the state out, so userspace's bad SREGS and unapplied events in
 * s.regs are replaced by the vCPU's, while their dirty bits stay.  The
 * next KVM_RUN then sets what it copied, which changes nothing.
 */
TEST(bad_sregs_einval_valid_regs_refreshed)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_gpr_probe);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs good;
	struct kvm_regs want;
	struct ucall uc;

	run_to_probe_out(vcpu);
	dirty_with_bad_sregs(vcpu, &want, &good);
	run->kvm_valid_regs = ALL_SYNC;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	TEST_ASSERT_EQ(run->kvm_dirty_regs, KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS);
	check_sync_matches(vcpu, "after the refused SREGS");
	check_regs(&run->s.regs.regs, &want, "s.regs.regs after the refused SREGS");
	TEST_ASSERT_EQ(run->s.regs.sregs.cr4, good.cr4);
	TEST_ASSERT_EQ(run->s.regs.events.exception.injected, 0);

	run_to_sync(vcpu, 2, &uc);
	TEST_ASSERT_EQ(uc.args[1], 0);	/* the #UD was dropped with the copy */
	check_seen_gprs(vm, &want);
	vm_free(vm);
}

/*
 * s.regs changed without a dirty bit: nothing reaches the vCPU, and the
 * next exit's copy replaces userspace's changes.  With kvm_valid_regs 0
 * KVM does not touch s.regs at all.
 */
TEST(changes_without_dirty_bit_ignored)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = sync_vcpu(&vm, guest_gpr_probe);
	struct kvm_run *run = vcpu->run;
	struct kvm_sync_regs mine;
	struct kvm_sregs sregs_before, sregs;
	struct kvm_regs before;
	struct ucall uc;

	run->kvm_valid_regs = ALL_SYNC;
	run_to_probe_out(vcpu);
	vcpu_regs_get(vcpu, &before);
	vcpu_sregs_get(vcpu, &sregs_before);

	set_magic_gprs(&run->s.regs.regs);
	run->s.regs.regs.rip = (uint64_t)guest_two_syncs;
	run->s.regs.regs.rflags = 0x8c7;
	run->s.regs.sregs.efer |= EFER_SCE;
	run->s.regs.sregs.fs.base = (uint64_t)&fs_target;
	run->s.regs.events.exception.injected = 1;
	run->s.regs.events.exception.nr = UD_VECTOR;
	run->kvm_dirty_regs = 0;
	run_to_sync(vcpu, 2, &uc);
	/* The guest went on after its OUT with its own registers, and no #UD. */
	TEST_ASSERT_EQ(uc.args[1], 0);
	check_seen_gprs(vm, &before);
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT_EQ(sregs.efer, sregs_before.efer);
	TEST_ASSERT_EQ(sregs.fs.base, sregs_before.fs.base);
	check_sync_matches(vcpu, "after ignored changes");

	/* Without kvm_valid_regs, what userspace wrote stays. */
	run->kvm_valid_regs = 0;
	memset(&mine, 0x3c, sizeof(mine));
	run->s.regs = mine;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	TEST_ASSERT(!memcmp(&run->s.regs, &mine, sizeof(mine)),
		    "s.regs written with kvm_valid_regs 0");
	vm_free(vm);
}
