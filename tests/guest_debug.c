// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_SET_GUEST_DEBUG (api.rst 4.59): the capabilities, control bits KVM
 * accepts, INT3 with and without KVM_GUESTDBG_USE_SW_BP, single-stepping
 * with KVM_GUESTDBG_SINGLESTEP (KVM_EXIT_DEBUG after each instruction),
 * #DB/#BP handed to the guest with KVM_GUESTDBG_INJECT_DB/INJECT_BP, and
 * the debugger's hardware breakpoints (KVM_GUESTDBG_USE_HW_BP) beside the
 * guest's own debug registers.
 *
 * The guest's ucalls that stop just before the code under test are written
 * out here (an OUT to UCALL_PORT with the message in RDI), so that the
 * instructions after the OUT have labels the host can compare with.
 */
#include <sys/ioctl.h>

#include "apic.h"
#include "kvm_util.h"

#define DB_VECTOR		1
#define BP_VECTOR		3
#define UD_VECTOR		6
#define X86_EFLAGS_TF		(1ULL << 8)
#define DR6_RESET		0xffff0ff0ULL
#define DR6_BS			(1ULL << 14)
#define GUESTDBG_REQUIRED	(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | \
				 KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW_BP | \
				 KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP | \
				 KVM_GUESTDBG_BLOCKIRQ)

static volatile uint64_t bp_count, bp_rip, db_count, db_rip, db_dr6, ud_count;

/* Labels in the guest's inline assembly below. */
extern char after_out[], bp_insn[], bp_next[];
extern char ss_out_next[], ss_0[], ss_1[], ss_2[], ss_3[], ss_4[];

static void guest_bp_handler(struct ex_regs *regs)
{
	bp_count++;
	bp_rip = regs->rip;
}

static void guest_db_handler(struct ex_regs *regs)
{
	uint64_t dr6;

	asm volatile("mov %%dr6, %0" : "=r"(dr6));
	db_count++;
	db_rip = regs->rip;
	db_dr6 = dr6;
}

static void guest_ud_handler(struct ex_regs *regs)
{
	(void)regs;
	ud_count++;
}

/* SYNC 1, then a NOP and an INT3; then what the handlers saw. */
static void guest_int3(void)
{
	struct ucall uc = { .cmd = UCALL_SYNC, .args = { 1 } };

	asm volatile("outb %%al, %%dx\n\t"
		     "after_out: nop\n\t"
		     "bp_insn: int3\n\t"
		     "bp_next: nop"
		     :: "a"(0), "d"(UCALL_PORT), "D"(&uc) : "memory");
	GUEST_SYNC_ARGS(2, bp_count, bp_rip, db_count);
	GUEST_SYNC_ARGS(3, db_rip, db_dr6, ud_count);
}

/* SYNC 1, then straight-line code that reads RFLAGS; then the results. */
static void guest_step(void)
{
	struct ucall uc = { .cmd = UCALL_SYNC, .args = { 1 } };
	uint64_t count = 0, flags;

	asm volatile("outb %%al, %%dx\n\t"
		     "ss_out_next: nop\n\t"
		     "ss_0: inc %[count]\n\t"
		     "ss_1: pushfq\n\t"
		     "ss_2: popq %[flags]\n\t"
		     "ss_3: inc %[count]\n\t"
		     "ss_4: nop"
		     : [count] "+&r"(count), [flags] "=&r"(flags)
		     : "a"(0), "d"(UCALL_PORT), "D"(&uc) : "memory");
	GUEST_SYNC_ARGS(2, count, flags, db_count);
}

static struct kvm_vcpu *debug_vcpu(struct kvm_vm **vm, void (*guest)(void))
{
	struct kvm_vcpu *vcpu;

	*vm = vm_create(VM_MODE_LONG64);
	vcpu = vm_vcpu_add(*vm, 0, guest);
	vm_install_exception_handler(*vm, BP_VECTOR, guest_bp_handler);
	vm_install_exception_handler(*vm, DB_VECTOR, guest_db_handler);
	vm_install_exception_handler(*vm, UD_VECTOR, guest_ud_handler);
	return vcpu;
}

static int __set_guest_debug(struct kvm_vcpu *vcpu, uint32_t control)
{
	struct kvm_guest_debug dbg;

	memset(&dbg, 0, sizeof(dbg));
	dbg.control = control;
	return __vcpu_ioctl(vcpu, KVM_SET_GUEST_DEBUG, &dbg);
}

static void set_guest_debug(struct kvm_vcpu *vcpu, uint32_t control)
{
	TEST_ASSERT(!__set_guest_debug(vcpu, control), "KVM_SET_GUEST_DEBUG(%#x): %s",
		    control, strerror(errno));
}

static void run_to_sync1(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
}

/*
 * guest_int3 runs on to its SYNC 2: the guest's #BP handler ran @bp_count
 * times, the last returning to bp_next, and no #DB reached the guest.
 */
static void run_to_sync2_bp(struct kvm_vcpu *vcpu, uint64_t bp_count)
{
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], bp_count);
	TEST_ASSERT_EQ(uc.args[2], (uint64_t)bp_next);
	TEST_ASSERT_EQ(uc.args[3], 0);
}

/* One KVM_RUN that ends with KVM_EXIT_DEBUG for a single step; returns pc. */
static uint64_t run_step(struct kvm_vcpu *vcpu)
{
	struct kvm_debug_exit_arch *d = &vcpu->run->debug.arch;
	struct kvm_regs regs;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_DEBUG);
	TEST_ASSERT_EQ(d->exception, DB_VECTOR);
	TEST_ASSERT_EQ(d->dr6, DR6_RESET | DR6_BS);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, d->pc);
	TEST_ASSERT_EQ(regs.rflags & X86_EFLAGS_TF, 0);
	return d->pc;
}

static void assert_step(struct kvm_vcpu *vcpu, void *pc)
{
	TEST_ASSERT_EQ(run_step(vcpu), (uint64_t)pc);
}

/* Single-steps until the vCPU stops at @pc, in at most @max steps. */
static void step_to(struct kvm_vcpu *vcpu, void *pc, int max)
{
	for (int i = 0; i < max; i++)
		if (run_step(vcpu) == (uint64_t)pc)
			return;
	TEST_ASSERT_EQ(vcpu->run->debug.arch.pc, (uint64_t)pc);
}

TEST(caps)
{
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_SET_GUEST_DEBUG), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_SET_GUEST_DEBUG2) & GUESTDBG_REQUIRED,
		       GUESTDBG_REQUIRED);
}

/*
 * x86 KVM does not check the control bits against KVM_CAP_SET_GUEST_DEBUG2
 * (only arm64 and LoongArch answer EINVAL): an unknown bit is accepted and
 * ignored.
 */
TEST(unknown_control_bit_accepted)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
	struct ucall uc;

	TEST_ASSERT_EQ(__set_guest_debug(vcpu, 1u << 30), 0);
	TEST_ASSERT_EQ(__set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | 1u << 30), 0);
	run_to_sync1(vcpu);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	vm_free(vm);
}

/*
 * USE_SW_BP: the guest's INT3 ends KVM_RUN with RIP and pc at the INT3
 * (the #BP intercept is fault-like), and the guest never sees it.
 *
 * The test machine's emulated SVM (QEMU TCG) treats INT3 as a software
 * interrupt and checks only the INTn intercept, never the #BP exception
 * intercept, so there the INT3 reaches the guest's own handler under KVM as
 * well: the case then checks that much and is skipped.
 */
TEST(sw_bp_exits_at_int3)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
	struct kvm_debug_exit_arch *d = &vcpu->run->debug.arch;
	struct kvm_regs regs;
	struct ucall uc;

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP);
	vcpu_run(vcpu);
	if (vcpu->run->exit_reason != KVM_EXIT_DEBUG) {
		TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], 2);
		TEST_ASSERT_EQ(uc.args[1], 1);
		TEST_ASSERT_EQ(uc.args[2], (uint64_t)bp_next);
		SKIP("INT3 is not intercepted as #BP by this machine's SVM");
	}
	TEST_ASSERT_EQ(d->exception, BP_VECTOR);
	TEST_ASSERT_EQ(d->pc, (uint64_t)bp_insn);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)bp_insn);
	/* The debugger steps over its breakpoint. */
	regs.rip = (uint64_t)bp_next;
	vcpu_regs_set(vcpu, &regs);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 0);
	TEST_ASSERT_EQ(uc.args[3], 0);
	vm_free(vm);
}

/*
 * A debugger that stopped at the guest's own INT3 (USE_SW_BP) passes it
 * back with INJECT_BP: the guest's handler runs once and returns past the
 * INT3, on both vendors' KVM (kvm_intel injects a software exception of
 * the #BP exit's instruction length; KVM on AMD decodes the INT3).
 */
TEST(inject_bp_after_sw_bp_exit)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP);
	vcpu_run(vcpu);
	if (vcpu->run->exit_reason != KVM_EXIT_DEBUG)
		SKIP("INT3 is not intercepted as #BP by this machine's SVM");
	TEST_ASSERT_EQ(vcpu->run->debug.arch.exception, BP_VECTOR);
	set_guest_debug(vcpu, KVM_GUESTDBG_INJECT_BP);
	run_to_sync2_bp(vcpu, 1);
	vm_free(vm);
}

/* Without USE_SW_BP (or without ENABLE) the INT3 is the guest's, a trap. */
TEST(int3_without_sw_bp_reaches_guest)
{
	uint32_t controls[] = { 0, KVM_GUESTDBG_USE_SW_BP };

	for (unsigned int i = 0; i < 2; i++) {
		struct kvm_vm *vm;
		struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
		struct ucall uc;

		set_guest_debug(vcpu, controls[i]);
		run_to_sync1(vcpu);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], 2);
		TEST_ASSERT_EQ(uc.args[1], 1);
		TEST_ASSERT_EQ(uc.args[2], (uint64_t)bp_next);
		TEST_ASSERT_EQ(uc.args[3], 0);
		vm_free(vm);
	}
}

/*
 * SINGLESTEP: one KVM_EXIT_DEBUG per instruction, pc (and RIP) at the next
 * one, DR6 with only BS added.  KVM sets TF in the guest's RFLAGS and hides
 * it from KVM_GET_REGS, but the guest's PUSHF sees it.  The guest's #DB
 * handler never runs.
 */
TEST(single_step)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_step);
	struct kvm_regs regs;
	struct ucall uc;

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rflags & X86_EFLAGS_TF, 0);
	step_to(vcpu, ss_0, 2);
	assert_step(vcpu, ss_1);
	assert_step(vcpu, ss_2);
	assert_step(vcpu, ss_3);
	assert_step(vcpu, ss_4);
	set_guest_debug(vcpu, 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 2);
	TEST_ASSERT_EQ(uc.args[2] & X86_EFLAGS_TF, X86_EFLAGS_TF);
	TEST_ASSERT_EQ(uc.args[3], 0);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rflags & X86_EFLAGS_TF, 0);
	vm_free(vm);
}

/*
 * Single-stepping from a KVM_EXIT_IO: KVM completes the OUT the vCPU
 * stopped at and counts it as a step, so the first KVM_RUN exits at the
 * instruction after the OUT without running the guest.
 */
TEST(single_step_counts_the_out)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_step);

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
	assert_step(vcpu, ss_out_next);
	assert_step(vcpu, ss_0);
	vm_free(vm);
}

/*
 * INJECT_BP with the vCPU stopped at an INT3 (here by single steps; a
 * debugger handing its guest an INT3 it does not own): the guest's #BP
 * handler runs once, returning after the INT3, as if the guest had
 * executed it.  ENABLE is not needed, and without it debugging stops.
 * KVM on SVM finds the return address by decoding the instruction at RIP:
 * stopped elsewhere (at the instruction after a ucall's OUT) the reference
 * KVM in the test machine (no NRIPS) dropped the #BP, so the case stops at
 * an INT3.  kvm_intel delivers the #BP at RIP, as it is: the handler returns
 * to the INT3, which runs and raises the #BP again, so the handler runs twice.
 */
TEST(inject_bp_at_int3)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
	step_to(vcpu, bp_insn, 2);
	set_guest_debug(vcpu, KVM_GUESTDBG_INJECT_BP);
	run_to_sync2_bp(vcpu, host_cpu_is_intel() ? 2 : 1);
	vm_free(vm);
}

/*
 * INJECT_DB: the guest's #DB handler runs at the next entry, at the
 * instruction after the OUT, with DR6 untouched (KVM queues the #DB without
 * a payload).  Then the guest's own INT3 goes on as usual.
 */
TEST(inject_db)
{
	uint32_t controls[] = { KVM_GUESTDBG_INJECT_DB,
				KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_DB };

	for (unsigned int i = 0; i < 2; i++) {
		struct kvm_vm *vm;
		struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
		struct ucall uc;

		run_to_sync1(vcpu);
		set_guest_debug(vcpu, controls[i]);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], 2);
		TEST_ASSERT_EQ(uc.args[1], 1);
		TEST_ASSERT_EQ(uc.args[2], (uint64_t)bp_next);
		TEST_ASSERT_EQ(uc.args[3], 1);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], 3);
		TEST_ASSERT_EQ(uc.args[1], (uint64_t)after_out);
		TEST_ASSERT_EQ(uc.args[2], DR6_RESET);
		vm_free(vm);
	}
}

/*
 * A second INJECT_* while the first one's exception is still pending is
 * EBUSY; a call without INJECT_* is not.  One #DB reaches the guest.
 */
TEST(inject_while_pending_ebusy)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
	struct ucall uc;

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_INJECT_DB);
	TEST_ASSERT_ERRNO(__set_guest_debug(vcpu, KVM_GUESTDBG_INJECT_BP), EBUSY);
	TEST_ASSERT_ERRNO(__set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_INJECT_DB),
			  EBUSY);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[3], 1);
	vm_free(vm);
}

/*
 * KVM_GET_VCPU_EVENTS after INJECT_DB: without KVM_CAP_EXCEPTION_PAYLOAD
 * KVM reports its pending #DB as injected, and sets pending too.
 */
TEST(inject_db_in_vcpu_events)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
	struct kvm_vcpu_events ev;

	run_to_sync1(vcpu);
	set_guest_debug(vcpu, KVM_GUESTDBG_INJECT_DB);
	memset(&ev, 0xaa, sizeof(ev));
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.exception.injected, 1);
	TEST_ASSERT_EQ(ev.exception.nr, DB_VECTOR);
	TEST_ASSERT_EQ(ev.exception.has_error_code, 0);
	TEST_ASSERT_EQ(ev.exception.pending, 1);
	vm_free(vm);
}

/*
 * Only a pending exception makes INJECT_* EBUSY, not an injected one such
 * as KVM_SET_VCPU_EVENTS sets without KVM_CAP_EXCEPTION_PAYLOAD.  KVM then
 * queues the #DB in its place (two benign exceptions: the second wins), and
 * the guest never sees the #UD.
 */
TEST(inject_replaces_injected_exception)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_int3);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	run_to_sync1(vcpu);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	ev.exception.injected = 1;
	ev.exception.nr = UD_VECTOR;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	TEST_ASSERT_EQ(__set_guest_debug(vcpu, KVM_GUESTDBG_INJECT_DB), 0);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.exception.injected, 1);
	TEST_ASSERT_EQ(ev.exception.nr, DB_VECTOR);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[3], 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 3);
	TEST_ASSERT_EQ(uc.args[1], (uint64_t)after_out);
	TEST_ASSERT_EQ(uc.args[3], 0);
	vm_free(vm);
}

extern char hw_target[];

/*
 * SYNC 1; the guest then sets its own DR0 and DR7 and reads them back
 * (SYNC 2), runs past hw_target (SYNC 3), and reports what its #DB handler
 * saw (SYNC 4).  Its DR7 describes a breakpoint without enabling it: a
 * guest-armed DR7 breakpoint crashes the test machine's QEMU (7.2 TCG) once
 * a later DR7 changes the slot's type.
 */
static void guest_own_drs(void)
{
	uint64_t dr0, dr7;

	GUEST_SYNC(1);
	asm volatile("mov %0, %%dr0" :: "r"(0x1234000ULL));
	asm volatile("mov %0, %%dr7" :: "r"(0x50000ULL));	/* RW0 write, LEN0 2 bytes */
	asm volatile("mov %%dr0, %0" : "=r"(dr0));
	asm volatile("mov %%dr7, %0" : "=r"(dr7));
	GUEST_SYNC_ARGS(2, dr0, dr7, 0);
	asm volatile("hw_target: nop");
	GUEST_SYNC(3);
	GUEST_SYNC_ARGS(4, db_count, 0, 0);
}

static void set_hw_bp(struct kvm_vcpu *vcpu, uint64_t addr)
{
	struct kvm_guest_debug dbg;

	memset(&dbg, 0, sizeof(dbg));
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	dbg.arch.debugreg[0] = addr;
	dbg.arch.debugreg[7] = 0x1;	/* L0: execution breakpoint at DR0 */
	vcpu_ioctl(vcpu, KVM_SET_GUEST_DEBUG, &dbg, "KVM_SET_GUEST_DEBUG");
}

static void sync_stage(struct kvm_vcpu *vcpu, struct ucall *uc, uint64_t stage)
{
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc->args[0], stage);
}

/*
 * USE_HW_BP: the debugger's execution breakpoint ends KVM_RUN with
 * KVM_EXIT_DEBUG at its address, DR6 showing B0, and the guest never sees
 * the #DB.  Meanwhile the guest's MOV to and from its debug registers work
 * on its own values, which KVM_GET_DEBUGREGS reports and which are in force
 * again once the debugger lets go.
 *
 * The test machine's emulated SVM (QEMU TCG) does not arm the DR7 that
 * VMRUN loads, so there the breakpoint never fires, under KVM as well: the
 * case then checks the guest's own registers and is skipped.
 */
TEST(hw_bp_beside_guest_drs)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_own_drs);
	struct kvm_debug_exit_arch *d = &vcpu->run->debug.arch;
	struct kvm_debugregs dr;
	struct kvm_regs regs;
	struct ucall uc;
	bool fired;

	sync_stage(vcpu, &uc, 1);
	set_hw_bp(vcpu, (uint64_t)hw_target);
	sync_stage(vcpu, &uc, 2);
	TEST_ASSERT_EQ(uc.args[1], 0x1234000);
	TEST_ASSERT_EQ(uc.args[2], 0x50400);	/* and bit 10, which reads as 1 */

	vcpu_run(vcpu);
	fired = vcpu->run->exit_reason == KVM_EXIT_DEBUG;
	if (fired) {
		TEST_ASSERT_EQ(d->exception, DB_VECTOR);
		TEST_ASSERT_EQ(d->pc, (uint64_t)hw_target);
		TEST_ASSERT(d->dr6 & 1, "dr6 %#llx without B0", (unsigned long long)d->dr6);
		TEST_ASSERT_EQ(d->dr7 & 0xff, 1);
		vcpu_regs_get(vcpu, &regs);
		TEST_ASSERT_EQ(regs.rip, (uint64_t)hw_target);
	} else {
		TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[0], 3);
	}
	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &dr, "KVM_GET_DEBUGREGS");
	TEST_ASSERT_EQ(dr.db[0], 0x1234000);
	TEST_ASSERT_EQ(dr.dr7, 0x50400);

	/* The debugger lets go: the guest runs on past the breakpoint, its DR7 kept. */
	set_guest_debug(vcpu, 0);
	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &dr, "KVM_GET_DEBUGREGS");
	TEST_ASSERT_EQ(dr.dr7, 0x50400);
	if (fired)
		sync_stage(vcpu, &uc, 3);
	sync_stage(vcpu, &uc, 4);
	TEST_ASSERT_EQ(uc.args[1], 0);		/* no #DB reached the guest */
	vm_free(vm);
	if (!fired)
		SKIP("DR7 breakpoints never fire in this machine's SVM guests");
}

/* A breakpoint set before the guest gets there fires on every pass; cleared, never. */
TEST(hw_bp_cleared_does_not_fire)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = debug_vcpu(&vm, guest_own_drs);
	struct ucall uc;

	sync_stage(vcpu, &uc, 1);
	set_hw_bp(vcpu, (uint64_t)hw_target);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE);
	sync_stage(vcpu, &uc, 2);
	sync_stage(vcpu, &uc, 3);
	sync_stage(vcpu, &uc, 4);
	TEST_ASSERT_EQ(uc.args[1], 0);
	vm_free(vm);
}

#define BLOCKED_VECTOR 0x40

static volatile uint64_t irq_count;

static void guest_irq_handler(struct ex_regs *regs)
{
	(void)regs;
	irq_count++;
	xapic_write(APIC_EOI, 0);
}

/* SYNC 1 with interrupts on, then spin until an interrupt has come. */
static void guest_wait_irq(void)
{
	xapic_enable();
	asm volatile("sti");
	GUEST_SYNC(1);
	asm volatile("1: cmpq $0, %0\n\t"
		     "je 1b" :: "m"(irq_count) : "memory");
	GUEST_SYNC_ARGS(2, irq_count, 0, 0);
}

/*
 * BLOCKIRQ: while the debugger single-steps, an interrupt waiting in the
 * in-kernel local APIC is not delivered; once it lets go, it is.
 */
TEST(blockirq_holds_interrupts_while_stepping)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_wait_irq);
	struct kvm_msi msi = { .address_lo = 0xfee00000, .data = BLOCKED_VECTOR };
	volatile uint64_t *count = gva2hva(vm, (uint64_t)&irq_count);
	struct ucall uc;

	vm_install_exception_handler(vm, BLOCKED_VECTOR, guest_irq_handler);
	sync_stage(vcpu, &uc, 1);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP |
			      KVM_GUESTDBG_BLOCKIRQ);
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_SIGNAL_MSI, &msi), 1);
	for (int i = 0; i < 20; i++) {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_DEBUG);
	}
	TEST_ASSERT_EQ(*count, 0);
	set_guest_debug(vcpu, 0);
	sync_stage(vcpu, &uc, 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	vm_free(vm);
}
