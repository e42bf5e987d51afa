// SPDX-License-Identifier: GPL-2.0
/*
 * Events from a userspace interrupt controller: KVM_INTERRUPT, KVM_NMI,
 * request_interrupt_window and KVM_EXIT_IRQ_WINDOW_OPEN, the interrupt
 * shadow, and the state KVM_RUN reports on exit (if_flag, cr8, apic_base,
 * ready_for_interrupt_injection).
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define IRQ_VECTOR 0x40
#define NMI_VECTOR 2

static volatile uint64_t irq_count, irq_vector, nmi_count, progress;

static void guest_irq_handler(struct ex_regs *regs)
{
	irq_count++;
	irq_vector = regs->vector;
}

static void vcpu_interrupt(struct kvm_vcpu *vcpu, uint32_t vector)
{
	struct kvm_interrupt irq = { .irq = vector };

	vcpu_ioctl(vcpu, KVM_INTERRUPT, &irq, "KVM_INTERRUPT");
}

static struct kvm_vcpu *irq_vcpu(struct kvm_vm **vm, void (*guest)(void))
{
	struct kvm_vcpu *vcpu;

	*vm = vm_create(VM_MODE_LONG64);
	vcpu = vm_vcpu_add(*vm, 0, guest);
	for (int v = IRQ_VECTOR; v < IRQ_VECTOR + 4; v++)
		vm_install_exception_handler(*vm, v, guest_irq_handler);
	return vcpu;
}

static void guest_wait_for_irq(void)
{
	asm volatile("sti");
	GUEST_SYNC(1);
	GUEST_SYNC_ARGS(2, irq_count, irq_vector, 0);
}

TEST(interrupt_reaches_idt_handler)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = irq_vcpu(&vm, guest_wait_for_irq);
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	TEST_ASSERT_EQ(vcpu->run->if_flag, 1);
	TEST_ASSERT_EQ(vcpu->run->ready_for_interrupt_injection, 1);
	vcpu_interrupt(vcpu, IRQ_VECTOR + 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], IRQ_VECTOR + 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_DONE);
	vm_free(vm);
}

static void guest_if_clear(void)
{
	asm volatile("cli");
	GUEST_SYNC(1);
	GUEST_SYNC_ARGS(2, irq_count, irq_vector, 0);
}

/*
 * KVM_INTERRUPT does not wait for RFLAGS.IF: userspace is expected to look
 * at ready_for_interrupt_injection first.  KVM injects it regardless.
 */
TEST(interrupt_injected_even_with_if_clear)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = irq_vcpu(&vm, guest_if_clear);
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vcpu->run->if_flag, 0);
	TEST_ASSERT_EQ(vcpu->run->ready_for_interrupt_injection, 0);
	vcpu_interrupt(vcpu, IRQ_VECTOR + 2);
	/* VMX's entry check refuses it (SDM vol. 3 26.3.1.4): KVM reports the failed entry. */
	if (host_cpu_is_intel()) {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_FAIL_ENTRY);
		TEST_ASSERT_EQ(vcpu->run->fail_entry.hardware_entry_failure_reason, 0x80000021);
		vm_free(vm);
		return;
	}
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], IRQ_VECTOR + 2);
	vm_free(vm);
}

/* sti; nop: the nop is in the STI shadow, the window opens at guest_after_shadow. */
void guest_sti_nop(void);
extern char guest_after_shadow[];
asm(".text\n"
    ".global guest_sti_nop\n"
    "guest_sti_nop:\n"
    "	sti\n"
    "	nop\n"
    ".global guest_after_shadow\n"
    "guest_after_shadow:\n"
    "	nop\n"
    "	ret\n");

static void guest_window(void)
{
	asm volatile("cli");
	GUEST_SYNC(1);
	/* Still IF=0: this exit is not the window. */
	GUEST_SYNC(2);
	guest_sti_nop();
	GUEST_SYNC_ARGS(3, irq_count, irq_vector, 0);
}

TEST(irq_window_opens_after_sti_shadow)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = irq_vcpu(&vm, guest_window);
	struct kvm_run *run = vcpu->run;
	struct kvm_regs regs;
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	run->request_interrupt_window = 1;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(run->if_flag, 0);
	TEST_ASSERT_EQ(run->ready_for_interrupt_injection, 0);

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IRQ_WINDOW_OPEN);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)guest_after_shadow);
	TEST_ASSERT_EQ(run->if_flag, 1);
	TEST_ASSERT_EQ(run->ready_for_interrupt_injection, 1);

	run->request_interrupt_window = 0;
	vcpu_interrupt(vcpu, IRQ_VECTOR + 3);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 3);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], IRQ_VECTOR + 3);
	vm_free(vm);
}

static void guest_progress(void)
{
	asm volatile("sti");
	GUEST_SYNC(1);
	progress = 1;
	GUEST_SYNC(2);
}

TEST(irq_window_open_at_once_with_if_set)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = irq_vcpu(&vm, guest_progress);
	struct ucall uc;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	vcpu->run->request_interrupt_window = 1;
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IRQ_WINDOW_OPEN);
	TEST_ASSERT_EQ(*(uint64_t *)gva2hva(vm, (uint64_t)&progress), 0);
	/* Without the request the guest goes on. */
	vcpu->run->request_interrupt_window = 0;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	vm_free(vm);
}

/* sti; hlt, the idle loop. */
void guest_sti_hlt(void);
extern char guest_after_hlt[];
asm(".text\n"
    ".global guest_sti_hlt\n"
    "guest_sti_hlt:\n"
    "	sti\n"
    "	hlt\n"
    ".global guest_after_hlt\n"
    "guest_after_hlt:\n"
    "	ret\n");

static void guest_halt(void)
{
	guest_sti_hlt();
	GUEST_SYNC_ARGS(1, irq_count, irq_vector, 0);
}

/* The idle loop of a guest: HLT ends the STI shadow, so the interrupt can go in. */
TEST(sti_hlt_exit_is_ready_for_injection)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = irq_vcpu(&vm, guest_halt);
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)guest_after_hlt);
	TEST_ASSERT_EQ(vcpu->run->ready_for_interrupt_injection, 1);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.interrupt.shadow, 0);
	/* Without an in-kernel irqchip HLT leaves the vCPU runnable. */
	vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	TEST_ASSERT_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	vcpu_interrupt(vcpu, IRQ_VECTOR);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], IRQ_VECTOR);
	vm_free(vm);
}

/*
 * The interrupt shadow round-trips through the events; SVM has one bit for
 * both kinds, so KVM on AMD reports STI and MOV SS together.  (Whether the
 * shadow then delays the window is the CPU's business: QEMU's TCG opens it
 * at once, on KVM as on minikvm.)
 */
TEST(shadow_round_trips)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = irq_vcpu(&vm, guest_halt);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
	ev.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	memset(&ev, 0, sizeof(ev));
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	/*
	 * KVM reports what the hardware holds: VMX keeps STI and MOV SS
	 * blocking apart (SDM vol. 3 25.4.2), SVM has one bit for both
	 * (APM vol. 2 15.21.5).
	 */
	TEST_ASSERT_EQ(ev.interrupt.shadow, host_cpu_is_intel() ? KVM_X86_SHADOW_INT_STI :
					    KVM_X86_SHADOW_INT_STI | KVM_X86_SHADOW_INT_MOV_SS);
	/* Without VALID_SHADOW the shadow is left alone. */
	ev.flags = 0;
	ev.interrupt.shadow = 0;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT(ev.interrupt.shadow, "shadow dropped without KVM_VCPUEVENT_VALID_SHADOW");
	ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
	ev.interrupt.shadow = 0;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.interrupt.shadow, 0);
	/* The guest goes on from after its HLT. */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 0);
	vm_free(vm);
}

static void guest_nmi_handler(struct ex_regs *regs)
{
	(void)regs;
	nmi_count++;
	if (nmi_count == 1) {
		GUEST_SYNC(10);
		/* The NMIs queued meanwhile wait for this handler's IRET. */
		GUEST_ASSERT_EQ(nmi_count, 1);
	}
}

static void guest_wait_for_nmis(void)
{
	uint64_t at_once;

	GUEST_SYNC(1);
	/* Both NMIs ran before the code the first one interrupted went on. */
	at_once = nmi_count;
	for (uint64_t i = 0; nmi_count < 2 && i < 1000000; i++)
		asm volatile("pause");
	/* Let an extra NMI, if wrongly queued, arrive before reporting. */
	for (int i = 0; i < 1000; i++)
		asm volatile("pause");
	GUEST_SYNC_ARGS(2, nmi_count, at_once, 0);
}

TEST(nmi_reaches_handler_and_next_waits_for_iret)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_wait_for_nmis);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	vm_install_exception_handler(vm, NMI_VECTOR, guest_nmi_handler);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.nmi.pending, 1);
	TEST_ASSERT_EQ(ev.nmi.masked, 0);

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 10);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.nmi.masked, 1);
	TEST_ASSERT_EQ(ev.nmi.pending, 0);
	/* Three more while the handler runs: only one can be latched. */
	for (int i = 0; i < 3; i++)
		vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.nmi.pending, 1);

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 2);
	TEST_ASSERT_EQ(uc.args[2], 2);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.nmi.masked, 0);
	TEST_ASSERT_EQ(ev.nmi.pending, 0);
	vm_free(vm);
}

static void guest_read_cr8(void)
{
	uint64_t cr8;

	asm volatile("mov %%cr8, %0" : "=r"(cr8));
	GUEST_SYNC_ARGS(1, cr8, 0, 0);
	/* Raising the TPR needs no exit, even with a userspace APIC. */
	asm volatile("mov %0, %%cr8" :: "r"(9ULL));
	GUEST_SYNC(2);
}

TEST(run_reports_cr8_apic_base_and_takes_cr8)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_read_cr8);
	struct kvm_run *run = vcpu->run;
	struct kvm_sregs sregs;
	struct ucall uc;

	run->cr8 = 5;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 5);
	TEST_ASSERT_EQ(run->cr8, 5);
	TEST_ASSERT_EQ(run->apic_base, vcpu_get_msr(vcpu, 0x1b));
	TEST_ASSERT_EQ(run->apic_base & 0xfffff900, 0xfee00900);	/* enabled BSP */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(run->cr8, 9);
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT_EQ(sregs.cr8, 9);
	/* Bits above the 4 of the TPR are refused, before anything runs. */
	run->cr8 = 16;
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINVAL);
	vm_free(vm);
}

TEST(bad_interrupt_and_mp_state_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_wait_for_irq);
	struct kvm_interrupt irq = { .irq = 256 };
	struct kvm_mp_state mp;

	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_INTERRUPT, &irq), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_INTERRUPT, (void *)8), EFAULT);
	/* Every state but RUNNABLE needs an in-kernel local APIC. */
	for (uint32_t s = KVM_MP_STATE_UNINITIALIZED; s <= KVM_MP_STATE_AP_RESET_HOLD + 1; s++) {
		mp.mp_state = s;
		if (s == KVM_MP_STATE_RUNNABLE)
			vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
		else
			TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &mp), EINVAL);
	}
	vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	TEST_ASSERT_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	vm_free(vm);
}

TEST(capabilities)
{
	int kvm = open_kvm();

	TEST_ASSERT_EQ(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_NMI), 1);
	TEST_ASSERT_EQ(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS), 1);
	TEST_ASSERT_EQ(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_MP_STATE), 1);
}
