// SPDX-License-Identifier: GPL-2.0
/*
 * Several vCPUs with in-kernel local APICs, each run by its own thread:
 * fixed, NMI and broadcast IPIs wake halted vCPUs without KVM_EXIT_HLT,
 * INIT and SIPI start an AP in real mode at vector << 12 with the MP states
 * KVM reports, a signal interrupts a halt that MP_STATE then reports, and a
 * 16-vCPU VM gets a broadcast to everyone.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "apic.h"

#define VEC 0x44
#define MAX_VCPUS 16

static volatile uint64_t irqs[MAX_VCPUS], nmis[MAX_VCPUS], ready[MAX_VCPUS];
static volatile uint64_t go;

static void irq_handler(struct ex_regs *regs)
{
	(void)regs;
	irqs[xapic_id()]++;
	xapic_write(APIC_EOI, 0);
}

static void nmi_handler(struct ex_regs *regs)
{
	(void)regs;
	nmis[xapic_id()]++;
}

static struct kvm_vm *smp_vm(int n, void (*guest)(void), struct kvm_vcpu **vcpus)
{
	struct kvm_vm *vm = vm_create_irqchip();

	vm_install_exception_handler(vm, VEC, irq_handler);
	vm_install_exception_handler(vm, 2, nmi_handler);
	for (int i = 0; i < n; i++) {
		vcpus[i] = vm_vcpu_add(vm, i, guest);
		/* APs start in wait-for-INIT; these run the C code directly. */
		if (i)
			vcpu_set_mp_state(vcpus[i], KVM_MP_STATE_RUNNABLE);
	}
	return vm;
}

/* vCPU 1 halts until a fixed IPI, then an NMI, then a broadcast arrive. */
static void guest_ipi(void)
{
	uint32_t id = xapic_id();

	xapic_enable();
	xapic_write(APIC_LDR, (1u << id) << 24);
	asm volatile("sti");
	if (id == 1) {
		ready[1] = 1;
		while (irqs[1] < 1)
			asm volatile("hlt");
		ready[1] = 2;
		while (nmis[1] < 1)
			asm volatile("hlt");
		ready[1] = 3;
		while (irqs[1] < 3)
			asm volatile("hlt");
		GUEST_DONE();
	}
	while (ready[1] != 1)
		asm volatile("pause");
	xapic_icr(1, ICR_FIXED | VEC);
	while (ready[1] != 2)
		asm volatile("pause");
	xapic_icr(1, ICR_NMI);
	while (ready[1] != 3)
		asm volatile("pause");
	/* Logical flat destination 0x02: vCPU 1 set LDR bit 1. */
	xapic_icr(0x02, ICR_LOGICAL | VEC);
	while (irqs[1] < 2)
		asm volatile("pause");
	/* All but self: vCPU 1 gets it, vCPU 0 does not. */
	xapic_icr(0, ICR_ALL_BUT_SELF | VEC);
	while (irqs[1] < 3)
		asm volatile("pause");
	GUEST_ASSERT_EQ(irqs[0], 0);
	GUEST_DONE();
}

TEST(ipis_wake_halted_vcpu)
{
	struct kvm_vcpu *vcpus[2];
	struct kvm_vm *vm = smp_vm(2, guest_ipi, vcpus);
	struct vcpu_thread t[2];

	for (int i = 0; i < 2; i++)
		vcpu_thread_start(&t[i], vcpus[i]);
	for (int i = 0; i < 2; i++)
		vcpu_thread_join(&t[i]);
	vm_free(vm);
}

static void guest_many(void)
{
	uint32_t id = xapic_id();

	xapic_enable();
	asm volatile("sti");
	__atomic_add_fetch(&ready[0], 1, __ATOMIC_SEQ_CST);
	if (id != 0) {
		while (!irqs[id])
			asm volatile("hlt");
		GUEST_DONE();
	}
	while (ready[0] != MAX_VCPUS)
		asm volatile("pause");
	xapic_icr(0, ICR_ALL_BUT_SELF | VEC);
	/* Every other vCPU gets it (or the test times out)... */
	for (uint32_t i = 1; i < MAX_VCPUS; i++)
		while (!irqs[i])
			asm volatile("pause");
	/*
	 * ...and the sender does not.  Exactly one each is not required: the
	 * reference KVM, nested in the emulated test machine, once counted 16
	 * handler runs for the one broadcast (Documentation/testing.rst).
	 */
	GUEST_ASSERT_EQ(irqs[0], 0);
	GUEST_DONE();
}

TEST_TIMEOUT(sixteen_vcpus_broadcast, 200)
{
	struct kvm_vcpu *vcpus[MAX_VCPUS];
	struct kvm_vm *vm = smp_vm(MAX_VCPUS, guest_many, vcpus);
	struct vcpu_thread t[MAX_VCPUS];

	for (int i = 0; i < MAX_VCPUS; i++)
		vcpu_thread_start(&t[i], vcpus[i]);
	for (int i = 0; i < MAX_VCPUS; i++)
		vcpu_thread_join(&t[i]);
	vm_free(vm);
}

/* The AP's code at 0x3000: real mode, CS 0x300, reports CS and IP by port I/O. */
extern char ap_start[], ap_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "ap_start:\n"
    "	mov %cs, %ax\n"
    "	call 1f\n"
    "1:	pop %bx\n"
    "	mov $0x99, %dx\n"
    "	out %ax, %dx\n"
    "	hlt\n"
    "ap_end:\n"
    ".code64\n"
    ".popsection\n");

#define SIPI_VECTOR 0x03

static void guest_bsp_init_sipi(void)
{
	xapic_enable();
	xapic_icr(1, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	/* The level-triggered de-assert is only for old APICs: ignored. */
	xapic_icr(1, ICR_INIT | ICR_LEVEL);
	GUEST_SYNC(1);
	xapic_icr(1, ICR_SIPI | SIPI_VECTOR);
	GUEST_SYNC(2);
	/* A second SIPI outside wait-for-SIPI is dropped. */
	xapic_icr(1, ICR_SIPI | 0x05);
	GUEST_DONE();
}

static int ap_errno;

static void *ap_thread(void *arg)
{
	struct kvm_vcpu *ap = arg;
	int r = __vcpu_run(ap);

	ap_errno = r < 0 ? errno : 0;
	return NULL;
}

TEST(init_sipi_start_ap)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *bsp = vm_vcpu_add(vm, 0, guest_bsp_init_sipi);
	struct kvm_vcpu *ap = vm_vcpu_add(vm, 1, guest_bsp_init_sipi);
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct ucall uc;
	pthread_t t;

	vm_load_blob(vm, SIPI_VECTOR << 12, ap_start, ap_end);
	TEST_ASSERT_EQ(vcpu_get_mp_state(ap), KVM_MP_STATE_UNINITIALIZED);
	/* KVM_RUN of an AP before its INIT waits for it, then returns EAGAIN. */
	pthread_create(&t, NULL, ap_thread, ap);
	usleep(100000);
	TEST_ASSERT_EQ(vcpu_run_ucall(bsp, &uc), UCALL_SYNC);
	pthread_join(t, NULL);
	TEST_ASSERT_EQ(ap_errno, EAGAIN);
	TEST_ASSERT_EQ(vcpu_get_mp_state(ap), KVM_MP_STATE_INIT_RECEIVED);
	vcpu_sregs_get(ap, &sregs);
	TEST_ASSERT_EQ(sregs.cs.selector, 0xf000);
	TEST_ASSERT_EQ(sregs.cr0 & 1, 0);

	TEST_ASSERT_EQ(vcpu_run_ucall(bsp, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vcpu_get_mp_state(ap), KVM_MP_STATE_RUNNABLE);
	vcpu_sregs_get(ap, &sregs);
	vcpu_regs_get(ap, &regs);
	TEST_ASSERT_EQ(sregs.cs.selector, SIPI_VECTOR << 8);
	TEST_ASSERT_EQ(sregs.cs.base, SIPI_VECTOR << 12);
	TEST_ASSERT_EQ(regs.rip, 0);
	vcpu_run_until_done(bsp);

	vcpu_run(ap);
	TEST_ASSERT_EXIT(ap, KVM_EXIT_IO);
	TEST_ASSERT_EQ(ap->run->io.port, 0x99);
	TEST_ASSERT_EQ(*(uint16_t *)((char *)ap->run + ap->run->io.data_offset), SIPI_VECTOR << 8);
	vcpu_regs_get(ap, &regs);
	TEST_ASSERT_EQ(regs.rbx & 0xffff, 5);	/* the IP after "call", counted from 0 */
	vm_free(vm);
}

static void guest_cli_hlt(void)
{
	asm volatile("cli; hlt");
	GUEST_SYNC_ARGS(1, nmis[0], 0, 0);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* A halt with interrupts off lasts until an NMI; a signal interrupts KVM_RUN. */
TEST(halted_vcpu_signal_and_nmi)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *vcpu;
	struct ucall uc;
	pthread_t self = pthread_self();
	int r;

	vm_install_exception_handler(vm, 2, nmi_handler);
	vcpu = vm_vcpu_add(vm, 0, guest_cli_hlt);
	signal(SIGUSR1, on_signal);
	if (fork() == 0) {
		usleep(300000);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	(void)self;
	r = __vcpu_run(vcpu);
	TEST_ASSERT_ERRNO(r, EINTR);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_INTR);
	TEST_ASSERT_EQ(vcpu_get_mp_state(vcpu), KVM_MP_STATE_HALTED);
	vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(vcpu_get_mp_state(vcpu), KVM_MP_STATE_RUNNABLE);
	vm_free(vm);
}
