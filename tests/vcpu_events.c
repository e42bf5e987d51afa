// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_GET/SET_VCPU_EVENTS: what a new vCPU reports, round trips, events
 * set from userspace reaching the guest, and KVM's errors for bad input.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define GP_VECTOR 13
#define UD_VECTOR 6
#define IRQ_VECTOR 0x42

static volatile uint64_t exc_count, exc_vector, exc_error;

static void guest_exc_handler(struct ex_regs *regs)
{
	exc_count++;
	exc_vector = regs->vector;
	exc_error = regs->error_code;
}

static void guest_report(void)
{
	GUEST_SYNC(1);
	GUEST_SYNC_ARGS(2, exc_count, exc_vector, exc_error);
}

static struct kvm_vcpu *events_vcpu(struct kvm_vm **vm)
{
	struct kvm_vcpu *vcpu;

	*vm = vm_create(VM_MODE_LONG64);
	vcpu = vm_vcpu_add(*vm, 0, guest_report);
	vm_install_exception_handler(*vm, GP_VECTOR, guest_exc_handler);
	vm_install_exception_handler(*vm, UD_VECTOR, guest_exc_handler);
	vm_install_exception_handler(*vm, IRQ_VECTOR, guest_exc_handler);
	return vcpu;
}

static void get_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	memset(ev, 0xaa, sizeof(*ev));
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, ev, "KVM_GET_VCPU_EVENTS");
}

static void set_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, ev, "KVM_SET_VCPU_EVENTS");
}

TEST(new_vcpu_has_no_events)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = events_vcpu(&vm);
	struct kvm_vcpu_events ev, zero;

	get_events(vcpu, &ev);
	/* What KVM reports on AMD without the payload or triple-fault capabilities. */
	TEST_ASSERT_EQ(ev.flags, KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW |
				 KVM_VCPUEVENT_VALID_SMM);
	memset(&zero, 0, sizeof(zero));
	zero.flags = ev.flags;
	TEST_ASSERT(!memcmp(&ev, &zero, sizeof(ev)), "a new vCPU reports events");
	vm_free(vm);
}

TEST(exception_from_userspace_is_delivered)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = events_vcpu(&vm);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	get_events(vcpu, &ev);
	ev.exception.injected = 1;
	ev.exception.nr = GP_VECTOR;
	ev.exception.has_error_code = 1;
	ev.exception.error_code = 0x1234;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.exception.injected, 1);
	TEST_ASSERT_EQ(ev.exception.pending, 0);
	TEST_ASSERT_EQ(ev.exception.nr, GP_VECTOR);
	TEST_ASSERT_EQ(ev.exception.has_error_code, 1);
	TEST_ASSERT_EQ(ev.exception.error_code, 0x1234);

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], GP_VECTOR);
	TEST_ASSERT_EQ(uc.args[3], 0x1234);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.exception.injected, 0);
	vm_free(vm);
}

TEST(exception_without_error_code_is_delivered)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = events_vcpu(&vm);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	get_events(vcpu, &ev);
	ev.exception.injected = 1;
	ev.exception.nr = UD_VECTOR;
	ev.exception.has_error_code = 0;
	set_events(vcpu, &ev);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], UD_VECTOR);
	TEST_ASSERT_EQ(uc.args[3], 0);	/* the stub's own zero */
	vm_free(vm);
}

TEST(interrupt_and_nmi_state_round_trip)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = events_vcpu(&vm);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	get_events(vcpu, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	ev.interrupt.injected = 1;
	ev.interrupt.nr = IRQ_VECTOR;
	ev.nmi.masked = 1;
	ev.nmi.pending = 1;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.interrupt.injected, 1);
	TEST_ASSERT_EQ(ev.interrupt.nr, IRQ_VECTOR);
	TEST_ASSERT_EQ(ev.interrupt.soft, 0);
	TEST_ASSERT_EQ(ev.nmi.masked, 1);
	TEST_ASSERT_EQ(ev.nmi.pending, 1);
	TEST_ASSERT_EQ(ev.nmi.injected, 0);
	/* Without VALID_NMI_PENDING the pending NMI is kept; unmasking is not. */
	ev.flags = 0;
	ev.nmi.pending = 0;
	ev.nmi.masked = 0;
	ev.interrupt.injected = 0;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.nmi.pending, 1);
	TEST_ASSERT_EQ(ev.nmi.masked, 0);
	TEST_ASSERT_EQ(ev.interrupt.injected, 0);
	/* Clear the NMI, queue the interrupt again: the guest takes it. */
	ev.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	ev.nmi.pending = 0;
	ev.interrupt.injected = 1;
	set_events(vcpu, &ev);
	vcpu_set_if_on_intel(vcpu);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], IRQ_VECTOR);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.interrupt.injected, 0);
	vm_free(vm);
}

TEST(bad_events_einval)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = events_vcpu(&vm);
	struct kvm_vcpu_events ev, good;

	get_events(vcpu, &good);
	ev = good;
	ev.flags = 0x80;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	/* Both need a capability that is not enabled. */
	ev.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	ev = good;
	ev.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	/* Exceptions are vectors 0-31, and 2 is the NMI. */
	ev = good;
	ev.exception.injected = 1;
	ev.exception.nr = 32;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	ev.exception.nr = 2;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	/* Without VALID_PAYLOAD, "pending" is ignored, bad vector or not. */
	ev = good;
	ev.exception.pending = 1;
	ev.exception.nr = 40;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.exception.injected, 0);
	TEST_ASSERT_EQ(ev.exception.pending, 0);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, (void *)8), EFAULT);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, (void *)8), EFAULT);
	vm_free(vm);
}

static int enable_triple_fault_event(struct kvm_vm *vm, uint32_t flags)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_X86_TRIPLE_FAULT_EVENT, .flags = flags, .args = { 1 },
	};

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

/*
 * KVM_CAP_X86_TRIPLE_FAULT_EVENT: the events carry a pending triple fault,
 * and one set there ends the next KVM_RUN with KVM_EXIT_SHUTDOWN.
 */
TEST(triple_fault_event)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = events_vcpu(&vm);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_X86_TRIPLE_FAULT_EVENT), 1);
	TEST_ASSERT_ERRNO(enable_triple_fault_event(vm, 1), EINVAL);
	TEST_ASSERT_EQ(enable_triple_fault_event(vm, 0), 0);
	get_events(vcpu, &ev);
	TEST_ASSERT(ev.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT, "flags %#x", ev.flags);
	TEST_ASSERT_EQ(ev.triple_fault.pending, 0);
	/* Cleared again: the guest runs to its report. */
	ev.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	ev.triple_fault.pending = 0;
	set_events(vcpu, &ev);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	/* Set: the next run shuts down without entering the guest. */
	get_events(vcpu, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	ev.triple_fault.pending = 1;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.triple_fault.pending, 1);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_SHUTDOWN);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.triple_fault.pending, 0);
	vm_free(vm);
}

#define DB_VECTOR 1
#define PF_VECTOR 14
#define DR6_ACTIVE_LOW 0xffff0ff0ULL

static volatile uint64_t pf_cr2, db_dr6;

/* What the #PF and #DB handlers found in CR2 and DR6 when they ran. */
static void guest_payload_handler(struct ex_regs *regs)
{
	uint64_t v;

	exc_count++;
	exc_vector = regs->vector;
	exc_error = regs->error_code;
	if (regs->vector == PF_VECTOR) {
		asm volatile("mov %%cr2, %0" : "=r"(v));
		pf_cr2 = v;
	} else {
		asm volatile("mov %%dr6, %0" : "=r"(v));
		db_dr6 = v;
	}
}

static void guest_payload_report(void)
{
	GUEST_SYNC(1);
	GUEST_SYNC_ARGS(2, exc_vector, exc_error, pf_cr2);
	GUEST_SYNC_ARGS(3, exc_vector, db_dr6, 0);
}

static int enable_exception_payload(struct kvm_vm *vm, uint64_t on)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_EXCEPTION_PAYLOAD, .args = { on } };

	return __vm_ioctl(vm, KVM_ENABLE_CAP, &cap);
}

static struct kvm_vcpu *payload_vcpu(struct kvm_vm **vm)
{
	struct kvm_vcpu *vcpu;
	struct ucall uc;

	*vm = vm_create(VM_MODE_LONG64);
	vcpu = vm_vcpu_add(*vm, 0, guest_payload_report);
	vm_install_exception_handler(*vm, PF_VECTOR, guest_payload_handler);
	vm_install_exception_handler(*vm, DB_VECTOR, guest_payload_handler);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	return vcpu;
}

static void set_pending(struct kvm_vcpu *vcpu, uint8_t nr, bool has_error, uint64_t payload)
{
	struct kvm_vcpu_events ev;

	get_events(vcpu, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
	ev.exception.injected = 1;	/* ignored: a pending exception is not injected */
	ev.exception.pending = 1;
	ev.exception.nr = nr;
	ev.exception.has_error_code = has_error;
	ev.exception.error_code = has_error ? 2 : 0;
	ev.exception_has_payload = 1;
	ev.exception_payload = payload;
	set_events(vcpu, &ev);
}

/*
 * KVM_CAP_EXCEPTION_PAYLOAD: a pending #PF or #DB carries what it puts in
 * CR2 or DR6, and those change only when the guest takes the exception.
 */
TEST(exception_payload_defers_cr2_and_dr6)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct kvm_vcpu_events ev;
	struct kvm_sregs s;
	struct ucall uc;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_EXCEPTION_PAYLOAD), 1);
	vcpu = payload_vcpu(&vm);
	TEST_ASSERT_EQ(enable_exception_payload(vm, 1), 0);
	get_events(vcpu, &ev);
	TEST_ASSERT(ev.flags & KVM_VCPUEVENT_VALID_PAYLOAD, "flags %#x", ev.flags);

	set_pending(vcpu, PF_VECTOR, true, 0xdead5000);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.exception.pending, 1);
	TEST_ASSERT_EQ(ev.exception.injected, 0);
	TEST_ASSERT_EQ(ev.exception.nr, PF_VECTOR);
	TEST_ASSERT_EQ(ev.exception_has_payload, 1);
	TEST_ASSERT_EQ(ev.exception_payload, 0xdead5000);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT(s.cr2 != 0xdead5000, "CR2 written before the #PF was delivered");
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], PF_VECTOR);
	TEST_ASSERT_EQ(uc.args[2], 2);
	TEST_ASSERT_EQ(uc.args[3], 0xdead5000);

	/* B1 and BS happened: DR6 gets them over its fixed ones when the #DB arrives. */
	set_pending(vcpu, DB_VECTOR, false, (1 << 1) | (1 << 14));
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 3);
	TEST_ASSERT_EQ(uc.args[1], DB_VECTOR);
	TEST_ASSERT_EQ(uc.args[2], DR6_ACTIVE_LOW | (1 << 1) | (1 << 14));
	vm_free(vm);
}

/* Userspace that turns the capability off reads the payload already delivered. */
TEST(exception_payload_delivered_when_read_without_cap)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct kvm_vcpu_events ev;
	struct kvm_sregs s;

	vcpu = payload_vcpu(&vm);
	TEST_ASSERT_EQ(enable_exception_payload(vm, 1), 0);
	set_pending(vcpu, PF_VECTOR, true, 0xbeef7000);
	TEST_ASSERT_EQ(enable_exception_payload(vm, 0), 0);
	get_events(vcpu, &ev);
	TEST_ASSERT(!(ev.flags & KVM_VCPUEVENT_VALID_PAYLOAD), "flags %#x", ev.flags);
	TEST_ASSERT_EQ(ev.exception.injected, 1);
	TEST_ASSERT_EQ(ev.exception.pending, 1);
	TEST_ASSERT_EQ(ev.exception_has_payload, 0);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cr2, 0xbeef7000);
	/* Only "injected" without a payload: a pending one with a bad vector is ignored. */
	ev.flags = 0;
	ev.exception.injected = 0;
	ev.exception.pending = 1;
	ev.exception.nr = 40;
	set_events(vcpu, &ev);
	/* With the capability, the same is refused. */
	TEST_ASSERT_EQ(enable_exception_payload(vm, 1), 0);
	ev.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev), EINVAL);
	vm_free(vm);
}
