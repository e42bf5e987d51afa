// SPDX-License-Identifier: GPL-2.0
/*
 * Nested SVM: the guest ("L1") enables SVM and runs its own guest ("L2")
 * with VMRUN, so these cases test how the hypervisor under test emulates
 * SVM for its guest (APM vol. 2 chapter 15).  L2 shares L1's page tables,
 * GDT and IDT (lib/svm.c) and runs code of this test on its own stack,
 * ASID 1, without nested paging except in the npt_* cases.
 *
 * L1 checks every #VMEXIT precisely (exit code, EXITINFO1/2, EXITINTINFO,
 * L2's RIP and registers) and acts as a hypervisor: it completes
 * intercepted instructions for L2 and moves its RIP on, by the next RIP
 * the VMCB holds when CPUID Fn8000_000A EDX[3] (NRIP_SAVE) is offered,
 * else by the instruction's known length.
 *
 * Cases: round trips through each intercept class (CPUID, HLT, RDTSC,
 * PAUSE, VMMCALL, MSR and I/O permission maps, exceptions, CR accesses)
 * and 1000 CPUID round trips; VMRUN's consistency checks (15.5.1:
 * VMEXIT_INVALID) and its faults (#GP, #UD); VMLOAD/VMSAVE (15.5.2); GIF
 * and CLGI/STGI holding interrupts and NMIs back (15.17); event injection
 * (15.20) and EXITINTINFO (15.7.2); INVLPGA; a triple fault in L2
 * (SHUTDOWN intercept); virtual interrupts and the VINTR intercept, the
 * INTR and NMI intercepts for events meant for L1 (15.21); and with
 * nested paging, #NPF and its error codes (15.25.6).
 *
 * Events for L1 come from its local APIC (self-IPIs, its timer) and from
 * the host (KVM_NMI, asked for with GUEST_SYNC(SYNC_SEND_NMI) by L1 or L2,
 * whose port I/O L1 does not intercept).
 *
 * What the test machine (QEMU 7.2 TCG, EPYC with svm and npt) and the
 * reference (Debian's 6.1 kvm_amd) do, and how the checks allow for it:
 *
 *  - neither offers NRIP_SAVE nor decode assists to L1: L1 counts
 *    instruction lengths, and EXITINFO1 of the CR intercepts (0 there) is
 *    checked only when decode assists are offered;
 *  - the CPU's IOIO intercept has no address-size bits (9:7) in EXITINFO1,
 *    where the architecture sets the instruction's (A64 here): either is
 *    accepted, the port, size, type and EXITINFO2 are exact;
 *  - its #GP for an IDT limit overrun has the error code vector * 16 + 2
 *    (62h for #UD) instead of vector * 8 + 2 (+ EXT): both are accepted;
 *  - it reports an external or virtual interrupt whose delivery an exit
 *    cut short (say a nested page fault on the IDT or the stack) as an
 *    exception (type 3) in EXITINTINFO.  KVM injects it again as one, and
 *    the CPU's VMRUN refuses an exception vector above 31: L1 would get
 *    VMEXIT_INVALID (as 0000_0000_FFFF_FFFFh, the CPU writing 32 bits).  As
 *    the reference gives L2 memory mappings of its own, an L2 interrupt
 *    delivery through pages L2 has not touched yet always hits this, so
 *    virtual_interrupt_delivery warms them up with an INT from L2 first.
 *    Injections through EVENTINJ are not affected (the CPU keeps their type);
 *  - the CPU delivers an EVENTINJ event a second time now and then
 *    (Documentation/testing.rst); the cases that count deliveries keep the
 *    window for it small, and have not been seen to fail.
 *
 * VMEXIT_INVALID is checked as the 64-bit -1 of APM vol. 2 appendix C, as
 * KVM writes it for its own consistency checks.
 */
#include <sys/ioctl.h>
#include <unistd.h>

#include "apic.h"
#include "svm.h"

#define STR(x)			#x
#define XSTR(x)			STR(x)

#define NMI_VECTOR		2
#define UD_VECTOR		6
#define GP_VECTOR		13
#define PF_VECTOR		14
#define DE_VECTOR		0

#define PF_P			0x1
#define PF_W			0x2
#define PF_U			0x4

#define CR0_PE			(1ULL << 0)
#define CR0_TS			(1ULL << 3)
#define CR0_NW			(1ULL << 29)
#define CR4_TSD			(1ULL << 2)
#define CR4_PAE			(1ULL << 5)
#define RFLAGS_IF		(1ULL << 9)

#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176
#define MSR_MTRR_FIX64K		0x250
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_FS_BASE		0xc0000100
#define MSR_GS_BASE		0xc0000101
#define MSR_KERNEL_GS_BASE	0xc0000102
/* No processor or KVM has this one: RDMSR of it raises #GP(0). */
#define MSR_NONEXISTENT		0xc0ffee00

/* Guest virtual addresses of the test's own mappings; none is in the identity map. */
#define UNMAPPED_VA		0x4000deadb5a8
#define UNMAPPED_IDT		0x4000cafe0000
#define RO_VA			0x500000000000
#define TLB_VA			0x500000200000
#define GPT_VA			0x500000405000

#define VEC_IPI			0x41
#define VEC_TIMER		0x42
#define VEC_INJ			0x43
#define VEC_VIRQ		0x50

/* L2's spin loop: iterations before it gives up and exits with VMMCALL. */
#define SPIN_LIMIT		(1ULL << 28)

/* What the guest's exception and interrupt handlers saw, per vector (L1 and L2 share them). */
static volatile uint64_t ev_count[256], ev_err[256], ev_rip[256], ev_cs[256], ev_cr2[256];
/* Set by L1 around the VMRUNs whose L2 takes events, so the handlers know who did. */
static volatile uint64_t in_l2, ev_in_l2[256];

static void record_event(struct ex_regs *regs)
{
	uint64_t v = regs->vector & 255, cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	ev_count[v]++;
	ev_err[v] = regs->error_code;
	ev_rip[v] = regs->rip;
	ev_cs[v] = regs->cs;
	ev_cr2[v] = cr2;
	ev_in_l2[v] = in_l2;
}

/*
 * A fault at an instruction L1 tries, which it then skips: the SVM
 * instructions (0f 01 d8-df) are 3 bytes, RDMSR and WRMSR 2.
 */
static void record_and_skip(struct ex_regs *regs)
{
	const uint8_t *insn = (const uint8_t *)regs->rip;

	record_event(regs);
	regs->rip += insn[0] == 0x0f && insn[1] == 0x01 ? 3 : 2;
}

static void record_and_eoi(struct ex_regs *regs)
{
	record_event(regs);
	xapic_write(APIC_EOI, 0);
}

static void clear_events(void)
{
	for (int v = 0; v < 256; v++) {
		ev_count[v] = 0;
		ev_err[v] = ev_rip[v] = ev_cs[v] = ev_cr2[v] = ~0ULL;
		ev_in_l2[v] = 0;
	}
}

static void l1_spin(unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		asm volatile("pause" ::: "memory");
}

static uint32_t l1_maxphyaddr(void)
{
	uint32_t a, b, c, d;

	guest_cpuid(0x80000008, 0, &a, &b, &c, &d);
	return a & 0xff;
}

/* The one-line L2 programs: each label starts an instruction the cases exit at. */
extern char l2_insn_cpuid[], l2_insn_hlt[], l2_insn_rdtsc[], l2_insn_pause[],
	l2_insn_vmmcall[];
extern char l2_rdtsc_plain[], l2_rdtsc_plain_end[];
extern char l2_ud[], l2_vmmcall[];
extern char l2_spin[], l2_spin_end[];
extern char l2_vintr[], l2_vintr_nop[];
asm(".pushsection .text\n"
    "l2_insn_cpuid:	cpuid\n"
    "l2_insn_hlt:	hlt\n"
    "l2_insn_rdtsc:	rdtsc\n"
    "l2_insn_pause:	pause\n"
    "l2_insn_vmmcall:	vmmcall\n"
    "	ud2\n"
    "l2_rdtsc_plain:	rdtsc\n"
    "l2_rdtsc_plain_end:	vmmcall\n"
    "	ud2\n"
    "l2_ud:		ud2\n"
    "l2_vmmcall:	vmmcall\n"
    "	ud2\n"
    /* Counts RCX down to 0, then exits: an interrupt or NMI exit must come first. */
    "l2_spin:		dec %rcx\n"
    "	jnz l2_spin\n"
    "l2_spin_end:	vmmcall\n"
    "	ud2\n"
    "l2_vintr:		vmmcall\n"
    "l2_vintr_nop:	nop\n"
    "	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

/* GUEST_SYNC(SYNC_SEND_NMI): the host sends the vCPU an NMI (KVM_NMI) before resuming it. */
#define SYNC_SEND_NMI		50

/* Host side: run L1 to GUEST_DONE, logging the values it reports with GUEST_SYNC_ARGS(LOG_*). */
enum {
	LOG_CPUID_TSC = 100,
	LOG_IOIO_ASIZE,
	LOG_CR_INFO1,
	LOG_EVENTINJ_AFTER,
	LOG_GP_IDT_LIMIT,
	LOG_NPF,
	LOG_BAD_CASE,
};

/* A GUEST_SYNC of L1 or L2: log what it reports, or send the NMI it asks for. */
static void handle_sync(struct kvm_vcpu *vcpu, struct ucall *uc)
{
	switch (uc->args[0]) {
	case SYNC_SEND_NMI:
		vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
		break;
	case LOG_CPUID_TSC:
		test_log("%" PRIu64 " CPUID round trips through L1: %" PRIu64 " TSC ticks each",
			 uc->args[1], uc->args[2] / uc->args[1]);
		break;
	case LOG_IOIO_ASIZE:
		test_log("IOIO EXITINFO1 of OUT imm8: %#" PRIx64, uc->args[1]);
		break;
	case LOG_CR_INFO1:
		test_log("CR0 read/CR0 write/CR4 write EXITINFO1: %#" PRIx64 "/%#" PRIx64 "/%#"
			 PRIx64, uc->args[1], uc->args[2], uc->args[3]);
		break;
	case LOG_EVENTINJ_AFTER:
		test_log("EVENTINJ after the injection's #VMEXIT: %#" PRIx64, uc->args[1]);
		break;
	case LOG_GP_IDT_LIMIT:
		test_log("#GP for an IDT limit overrun at #UD: error code %#" PRIx64, uc->args[1]);
		break;
	case LOG_NPF:
		test_log("#NPF %" PRIu64 ": EXITINFO1 %#" PRIx64 " EXITINFO2 %#" PRIx64,
			 uc->args[1], uc->args[2], uc->args[3]);
		break;
	case LOG_BAD_CASE:
		test_log("case %" PRIu64 ": exit code %#" PRIx64 ", L2 ran: %" PRIu64,
			 uc->args[1], uc->args[2], uc->args[3]);
		break;
	default:
		test_fail(__FILE__, __LINE__, "known sync", "unexpected GUEST_SYNC %" PRIu64,
			  uc->args[0]);
	}
}

static void run_l1(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	while (vcpu_run_ucall(vcpu, &uc) != UCALL_DONE) {
		if (uc.cmd == UCALL_EXCEPTION)
			vcpu_run_ucall_report(vcpu, &uc);
		handle_sync(vcpu, &uc);
	}
}

/*
 * Interrupts and NMIs are recorded (and EOIed); exceptions only where a
 * case installs a handler, so that an unexpected one is reported by the
 * library's default handler.
 */
static void install_recorders(struct kvm_vm *vm)
{
	vm_install_exception_handler(vm, NMI_VECTOR, record_event);
	for (int v = 32; v < 256; v++)
		if (v != GUEST_USER_RETURN_VECTOR)
			vm_install_exception_handler(vm, v, record_and_eoi);
}

/*
 * One case: a VM whose L1 runs @l1 to GUEST_DONE, after @host_setup (which
 * may install exception handlers, map pages or skip the case).
 */
static void run_case(void (*l1)(void), void (*host_setup)(struct kvm_vm *vm))
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = svm_vm_create(l1, &vcpu);

	install_recorders(vm);
	if (host_setup)
		host_setup(vm);
	run_l1(vcpu);
	vm_free(vm);
}

static void l1_start(void)
{
	clear_events();
	svm_l1_enable();
}

/* No exception or interrupt reached L1 or L2 so far. */
static void l1_assert_no_events(void)
{
	for (int v = 0; v < 256; v++)
		GUEST_ASSERT_EQ((uint64_t)v << 32 | ev_count[v], (uint64_t)v << 32);
}

/* ------------------------------------------------------------------------- */

#define CPUID_ROUNDS		1000
#define CPUID_L2_LEAF		0x4fff0000u

static volatile uint64_t l2_cpuid_bad;

/* L2: CPUID_ROUNDS CPUIDs, each answered by L1 with values from its subleaf. */
static void l2_cpuid_loop(void)
{
	for (uint32_t i = 0; i < CPUID_ROUNDS; i++) {
		uint32_t a, b, c, d;

		guest_cpuid(CPUID_L2_LEAF, i, &a, &b, &c, &d);
		if (a != i * 3 || b != ~i || c != i + 7 || d != (0x5a5a0000 | i))
			l2_cpuid_bad++;
	}
}

static void l1_cpuid_round_trips(void)
{
	struct svm_l2 l2;
	uint64_t t0;

	l1_start();
	svm_l2_init(&l2, l2_cpuid_loop);
	l2.vmcb->control.intercept_misc1 |= INTERCEPT_CPUID;
	t0 = guest_rdtsc();
	for (uint32_t i = 0; i < CPUID_ROUNDS; i++) {
		struct vmcb *v = l2.vmcb;

		GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_CPUID);
		/* RIP names the CPUID itself (0f a2), which has not run. */
		GUEST_ASSERT_EQ(*(uint16_t *)v->save.rip, 0xa20f);
		GUEST_ASSERT_EQ(v->save.rax, CPUID_L2_LEAF);
		GUEST_ASSERT_EQ(l2.gprs.rcx, i);
		GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
		v->save.rax = i * 3;
		l2.gprs.rbx = ~i;
		l2.gprs.rcx = i + 7;
		l2.gprs.rdx = 0x5a5a0000 | i;
		svm_skip_insn(&l2, 2);
	}
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_SYNC_ARGS(LOG_CPUID_TSC, CPUID_ROUNDS, guest_rdtsc() - t0, 0);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)svm_l2_returned);
	GUEST_ASSERT_EQ(l2_cpuid_bad, 0);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* 1000 CPUID exits, each completed by L1 with the values L2 then checks. */
TEST(cpuid_round_trips)
{
	run_case(l1_cpuid_round_trips, NULL);
}

/* ------------------------------------------------------------------------- */

static void l1_instruction_intercepts(void)
{
	static const struct {
		const char *rip;
		uint64_t exit;
		unsigned int len;
	} steps[] = {
		{ l2_insn_cpuid, VMEXIT_CPUID, 2 },
		{ l2_insn_hlt, VMEXIT_HLT, 1 },
		{ l2_insn_rdtsc, VMEXIT_RDTSC, 2 },
		{ l2_insn_pause, VMEXIT_PAUSE, 2 },
		{ l2_insn_vmmcall, VMEXIT_VMMCALL, 3 },
	};
	const uint64_t offset = 1ULL << 40;
	struct svm_l2 l2;
	uint64_t t0, t1, tsc;

	l1_start();
	svm_l2_init_at(&l2, (uint64_t)l2_insn_cpuid, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->control.intercept_misc1 |= INTERCEPT_CPUID | INTERCEPT_HLT |
					    INTERCEPT_RDTSC | INTERCEPT_PAUSE;
	for (unsigned int i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		uint64_t code = svm_run(&l2);

		/* The step rides in the upper half, for the message. */
		GUEST_ASSERT_EQ((uint64_t)i << 32 | code, (uint64_t)i << 32 | steps[i].exit);
		GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)steps[i].rip);
		GUEST_ASSERT_EQ(l2.vmcb->control.exit_int_info, 0);
		if (steps[i].exit == VMEXIT_RDTSC) {
			l2.vmcb->save.rax = 0x11111111;
			l2.gprs.rdx = 0x22222222;
		}
		svm_skip_insn(&l2, steps[i].len);
	}
	/* L1's answer to the intercepted RDTSC is what L2 has. */
	GUEST_ASSERT_EQ(l2.vmcb->save.rax, 0x11111111);
	GUEST_ASSERT_EQ(l2.gprs.rdx, 0x22222222);

	/* Without the intercept, L2 reads L1's TSC plus the VMCB's TSC_OFFSET (15.8.1). */
	svm_l2_init_at(&l2, (uint64_t)l2_rdtsc_plain, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->control.tsc_offset = offset;
	t0 = guest_rdtsc();
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	t1 = guest_rdtsc();
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_rdtsc_plain_end);
	tsc = (uint32_t)l2.vmcb->save.rax | l2.gprs.rdx << 32;
	GUEST_ASSERT(tsc - offset > t0 && tsc - offset < t1);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* CPUID, HLT, RDTSC, PAUSE and VMMCALL exit at the instruction; TSC_OFFSET without RDTSC's. */
TEST(instruction_intercepts)
{
	run_case(l1_instruction_intercepts, NULL);
}

/* ------------------------------------------------------------------------- */

extern char l2_msr[], l2_msr_wr_star[], l2_msr_rd_star[], l2_msr_rd_mtrr[],
	l2_msr_rd_hsave[], l2_msr_rd_outside[], l2_msr_done[];
asm(".pushsection .text\n"
    "l2_msr:\n"
    "	mov $" XSTR(MSR_SYSENTER_CS) ", %ecx\n"
    "	rdmsr\n"				/* read not intercepted: L1's value */
    "	mov %rax, %r8\n"
    "	mov $" XSTR(MSR_STAR) ", %ecx\n"
    "	mov $0x11112222, %eax\n"
    "	mov $0x33334444, %edx\n"
    "l2_msr_wr_star:	wrmsr\n"		/* intercepted */
    "l2_msr_rd_star:	rdmsr\n"		/* intercepted: L1 answers */
    "	mov %rax, %r9\n"
    "	mov %rdx, %r10\n"
    "	mov $" XSTR(MSR_MTRR_FIX64K) ", %ecx\n"
    "	mov $0x06060606, %eax\n"
    "	mov $0x06060606, %edx\n"
    "	wrmsr\n"				/* write not intercepted: reaches the MTRR */
    "l2_msr_rd_mtrr:	rdmsr\n"		/* read intercepted */
    "	mov $" XSTR(MSR_VM_HSAVE_PA) ", %ecx\n"
    "l2_msr_rd_hsave:	rdmsr\n"		/* the third range of the map */
    "	mov $" XSTR(MSR_NONEXISTENT) ", %ecx\n"
    "l2_msr_rd_outside:	rdmsr\n"		/* in no range: always intercepted */
    "l2_msr_done:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

static void l1_expect_msr_exit(struct svm_l2 *l2, const char *rip, uint32_t msr, bool write)
{
	GUEST_ASSERT_EQ(svm_run(l2), VMEXIT_MSR);
	GUEST_ASSERT_EQ(l2->vmcb->save.rip, (uint64_t)rip);
	GUEST_ASSERT_EQ(l2->vmcb->control.exit_info_1, write);
	GUEST_ASSERT_EQ(l2->gprs.rcx, msr);
	GUEST_ASSERT_EQ(l2->vmcb->control.exit_int_info, 0);
}

static void l1_msr_intercepts(void)
{
	uint64_t star = guest_rdmsr(MSR_STAR), mtrr = guest_rdmsr(MSR_MTRR_FIX64K);
	struct svm_l2 l2;

	l1_start();
	guest_wrmsr(MSR_SYSENTER_CS, 0x1234);
	svm_l2_init_at(&l2, (uint64_t)l2_msr, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->control.intercept_misc1 |= INTERCEPT_MSR_PROT;
	svm_msrpm_set(MSR_SYSENTER_CS, false, true);
	svm_msrpm_set(MSR_STAR, true, true);
	svm_msrpm_set(MSR_MTRR_FIX64K, true, false);
	svm_msrpm_set(MSR_VM_HSAVE_PA, true, false);

	/* EXITINFO1 is 1 for WRMSR, 0 for RDMSR (15.11); EDX:EAX and ECX are L2's. */
	l1_expect_msr_exit(&l2, l2_msr_wr_star, MSR_STAR, true);
	GUEST_ASSERT_EQ(l2.vmcb->save.rax, 0x11112222);
	GUEST_ASSERT_EQ(l2.gprs.rdx, 0x33334444);
	svm_skip_insn(&l2, 2);
	l1_expect_msr_exit(&l2, l2_msr_rd_star, MSR_STAR, false);
	l2.vmcb->save.rax = 0xaaaa5555;
	l2.gprs.rdx = 0x7777;
	svm_skip_insn(&l2, 2);
	/* The WRMSR before this exit was not intercepted: the MTRR has L2's value. */
	l1_expect_msr_exit(&l2, l2_msr_rd_mtrr, MSR_MTRR_FIX64K, false);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_MTRR_FIX64K), 0x0606060606060606ULL);
	svm_skip_insn(&l2, 2);
	l1_expect_msr_exit(&l2, l2_msr_rd_hsave, MSR_VM_HSAVE_PA, false);
	svm_skip_insn(&l2, 2);
	l1_expect_msr_exit(&l2, l2_msr_rd_outside, MSR_NONEXISTENT, false);
	svm_skip_insn(&l2, 2);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_msr_done);

	GUEST_ASSERT_EQ(l2.gprs.r8, 0x1234);		/* the RDMSR that was not intercepted */
	GUEST_ASSERT_EQ(l2.gprs.r9, 0xaaaa5555);
	GUEST_ASSERT_EQ(l2.gprs.r10, 0x7777);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_STAR), star);	/* L1 dropped L2's write */
	guest_wrmsr(MSR_MTRR_FIX64K, mtrr);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* RDMSR/WRMSR through the MSR permission map: each range, read and write bits, outside. */
TEST(msr_intercepts)
{
	run_case(l1_msr_intercepts, NULL);
}

/* ------------------------------------------------------------------------- */

#define PORT_PASS		0x5e0

extern char l2_io[], l2_io_outb[], l2_io_inw[], l2_io_outl[], l2_io_done[];
asm(".pushsection .text\n"
    "l2_io:\n"
    "	mov $0x5a, %eax\n"
    "l2_io_outb:	outb %al, $0x80\n"		/* e6 80 */
    "	mov $0x1234, %edx\n"
    "l2_io_inw:	inw %dx, %ax\n"			/* 66 ed: ports 1234h-1235h */
    "	mov %rax, %r8\n"
    "	mov $0x12fd, %edx\n"
    "	mov $0xcafef00d, %eax\n"
    "l2_io_outl:	outl %eax, %dx\n"		/* ef: ports 12fdh-1300h */
    "	mov $" XSTR(PORT_PASS) ", %edx\n"
    "	mov $0x77, %eax\n"
    "	outb %al, %dx\n"			/* not intercepted: the host sees these */
    "	inb %dx, %al\n"
    "	movzbl %al, %r9d\n"
    "	mov $0x12fc, %edx\n"
    "	mov $0x0badcafe, %eax\n"
    "	outl %eax, %dx\n"			/* ports 12fch-12ffh: no bit set */
    "l2_io_done:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

/* EXITINFO1 of an IOIO intercept but its address-size bits, which may be 0 or A64. */
static void l1_expect_io_exit(struct svm_l2 *l2, const char *rip, unsigned int len,
			      uint64_t info1)
{
	uint64_t got;

	GUEST_ASSERT_EQ(svm_run(l2), VMEXIT_IOIO);
	got = l2->vmcb->control.exit_info_1;
	GUEST_ASSERT_EQ(l2->vmcb->save.rip, (uint64_t)rip);
	GUEST_ASSERT_EQ(got & ~IOIO_ASIZE_MASK, info1);
	GUEST_ASSERT((got & IOIO_ASIZE_MASK) == 0 || (got & IOIO_ASIZE_MASK) == IOIO_A64);
	/* EXITINFO2 is the next RIP (15.10.2), with or without NRIP_SAVE. */
	GUEST_ASSERT_EQ(l2->vmcb->control.exit_info_2, (uint64_t)rip + len);
	GUEST_ASSERT_EQ(l2->vmcb->control.exit_int_info, 0);
	svm_skip_insn(l2, len);
}

static void l1_io_intercepts(void)
{
	struct svm_l2 l2;

	l1_start();
	svm_l2_init_at(&l2, (uint64_t)l2_io, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->control.intercept_misc1 |= INTERCEPT_IOIO_PROT;
	svm_iopm_set(0x80, true);
	svm_iopm_set(0x1235, true);
	svm_iopm_set(0x1300, true);

	l1_expect_io_exit(&l2, l2_io_outb, 2, IOIO_PORT(0x80) | IOIO_SZ8);
	GUEST_SYNC_ARGS(LOG_IOIO_ASIZE, l2.vmcb->control.exit_info_1, 0, 0);
	GUEST_ASSERT_EQ(l2.vmcb->save.rax, 0x5a);
	/* An access is intercepted when any byte's port has its bit: 1234h-1235h. */
	l1_expect_io_exit(&l2, l2_io_inw, 2, IOIO_PORT(0x1234) | IOIO_SZ16 | IOIO_TYPE_IN);
	l2.vmcb->save.rax = (l2.vmcb->save.rax & ~0xffffULL) | 0xbeef;
	l1_expect_io_exit(&l2, l2_io_outl, 1, IOIO_PORT(0x12fd) | IOIO_SZ32);
	GUEST_ASSERT_EQ(l2.vmcb->save.rax, 0xcafef00d);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_io_done);
	GUEST_ASSERT_EQ(l2.gprs.r8, 0xbeef);
	GUEST_ASSERT_EQ(l2.gprs.r9, 0x99);	/* what the host gave L2's IN */
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

static void expect_host_io(struct kvm_vcpu *vcpu, uint16_t port, uint8_t dir, uint8_t size,
			   uint32_t value)
{
	struct kvm_run *run = vcpu->run;
	struct ucall uc;
	uint32_t data = 0;

	for (;;) {
		vcpu_run(vcpu);
		if (get_ucall(vcpu, &uc) != UCALL_SYNC)
			break;
		handle_sync(vcpu, &uc);
	}
	if (uc.cmd != UCALL_NONE)
		vcpu_run_ucall_report(vcpu, &uc);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.port, port);
	TEST_ASSERT_EQ(run->io.direction, dir);
	TEST_ASSERT_EQ(run->io.size, size);
	TEST_ASSERT_EQ(run->io.count, 1);
	if (dir == KVM_EXIT_IO_OUT) {
		memcpy(&data, (char *)run + run->io.data_offset, size);
		TEST_ASSERT_EQ(data, value);
	} else {
		memcpy((char *)run + run->io.data_offset, &value, size);
	}
}

/*
 * IN/OUT through the I/O permission map: EXITINFO1 (port, size, type),
 * EXITINFO2; accesses whose ports have no bit reach the host from L2.
 */
TEST(io_intercepts)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = svm_vm_create(l1_io_intercepts, &vcpu);

	install_recorders(vm);
	expect_host_io(vcpu, PORT_PASS, KVM_EXIT_IO_OUT, 1, 0x77);
	expect_host_io(vcpu, PORT_PASS, KVM_EXIT_IO_IN, 1, 0x99);
	expect_host_io(vcpu, 0x12fc, KVM_EXIT_IO_OUT, 4, 0x0badcafe);
	run_l1(vcpu);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

extern char l2_exc[], l2_exc_ud[], l2_exc_gp_sel[], l2_exc_gp_msr[], l2_exc_de[],
	l2_exc_pf_read[], l2_exc_pf_write[], l2_exc_pf_ro[], l2_exc_done[];
asm(".pushsection .text\n"
    "l2_exc:\n"
    "l2_exc_ud:	ud2\n"
    "	mov $0x1230, %eax\n"
    "l2_exc_gp_sel:	mov %eax, %ds\n"	/* GDT index 246h is past its limit: #GP(1230h) */
    "	mov $" XSTR(MSR_NONEXISTENT) ", %ecx\n"
    "l2_exc_gp_msr:	rdmsr\n"		/* no MSR_PROT: #GP(0) from the hypervisor */
    "	xor %edx, %edx\n"
    "	mov $1, %eax\n"
    "	xor %ecx, %ecx\n"
    "l2_exc_de:	div %ecx\n"			/* #DE */
    "	movabs $" XSTR(UNMAPPED_VA) ", %rax\n"
    "l2_exc_pf_read:	mov (%rax), %rbx\n"	/* 3 bytes */
    "l2_exc_pf_write:	mov %rbx, (%rax)\n"	/* 3 bytes */
    "	movabs $" XSTR(RO_VA) " + 0x10, %rax\n"
    "l2_exc_pf_ro:	movq $1, (%rax)\n"	/* 7 bytes */
    "l2_exc_done:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

static void l1_expect_exception(struct svm_l2 *l2, const char *rip, unsigned int len,
				uint8_t vector, uint64_t info1, uint64_t info2)
{
	struct vmcb *v = l2->vmcb;

	GUEST_ASSERT_EQ(svm_run(l2), VMEXIT_EXCP(vector));
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)rip);
	if (info1 != ~0ULL)
		GUEST_ASSERT_EQ(v->control.exit_info_1, info1);
	if (info2 != ~0ULL)
		GUEST_ASSERT_EQ(v->control.exit_info_2, info2);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	/* A fault: L1 decides, here by moving past the instruction. */
	v->save.rip += len;
}

static void l1_exception_intercepts(void)
{
	struct svm_l2 l2;

	l1_start();
	svm_l2_init_at(&l2, (uint64_t)l2_exc, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->control.intercept_exceptions = 1u << UD_VECTOR | 1u << GP_VECTOR |
						1u << DE_VECTOR | 1u << PF_VECTOR;
	/* EXITINFO1 is the error code of exceptions that have one (15.12). */
	l1_expect_exception(&l2, l2_exc_ud, 2, UD_VECTOR, ~0ULL, ~0ULL);
	l1_expect_exception(&l2, l2_exc_gp_sel, 2, GP_VECTOR, 0x1230, ~0ULL);
	l1_expect_exception(&l2, l2_exc_gp_msr, 2, GP_VECTOR, 0, ~0ULL);
	l1_expect_exception(&l2, l2_exc_de, 2, DE_VECTOR, ~0ULL, ~0ULL);
	/* #PF: the error code, and the address in EXITINFO2 (15.12). */
	l1_expect_exception(&l2, l2_exc_pf_read, 3, PF_VECTOR, 0, UNMAPPED_VA);
	l1_expect_exception(&l2, l2_exc_pf_write, 3, PF_VECTOR, PF_W, UNMAPPED_VA);
	l1_expect_exception(&l2, l2_exc_pf_ro, 7, PF_VECTOR, PF_P | PF_W, RO_VA + 0x10);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_exc_done);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

static void host_map_ro(struct kvm_vm *vm)
{
	TEST_ASSERT_EQ(pgtable_translate(&vm->pt, UNMAPPED_VA), GVA_INVALID);
	virt_map_flags(vm, RO_VA, vm_alloc_pages(vm, 1), PAGE_SIZE, 0);
}

/* Intercepted #UD, #GP (from the CPU and from the hypervisor), #DE and #PF. */
TEST(exception_intercepts)
{
	run_case(l1_exception_intercepts, host_map_ro);
}

/* ------------------------------------------------------------------------- */

extern char l2_cr[], l2_cr0_read[], l2_cr0_write[], l2_cr4_write[], l2_cr_done[];
asm(".pushsection .text\n"
    "l2_cr:\n"
    "l2_cr0_read:	mov %cr0, %rax\n"		/* 0f 20 c0 */
    "	mov %rax, %r8\n"
    "l2_cr0_write:	mov %rbx, %cr0\n"		/* 0f 22 c3 */
    "l2_cr4_write:	mov %rcx, %cr4\n"		/* 0f 22 e1 */
    "l2_cr_done:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

static void l1_cr_intercepts(void)
{
	struct svm_l2 l2;
	struct vmcb *v;
	uint64_t info[3], cr0, cr4;
	bool assists;

	l1_start();
	svm_l2_init_at(&l2, (uint64_t)l2_cr, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	cr0 = v->save.cr0;
	cr4 = v->save.cr4;
	assists = l2.features & SVM_FEAT_DECODE_ASSISTS;
	v->control.intercept_cr = INTERCEPT_CR_READ(0) | INTERCEPT_CR_WRITE(0) |
				  INTERCEPT_CR_WRITE(4);
	l2.gprs.rbx = cr0 | CR0_TS;
	l2.gprs.rcx = cr4 | CR4_TSD;

	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_CR0_READ);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_cr0_read);
	info[0] = v->control.exit_info_1;
	v->save.rax = 0x12345678;
	svm_skip_insn(&l2, 3);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_CR0_WRITE);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_cr0_write);
	info[1] = v->control.exit_info_1;
	svm_skip_insn(&l2, 3);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_CR4_WRITE);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_cr4_write);
	info[2] = v->control.exit_info_1;
	svm_skip_insn(&l2, 3);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_cr_done);
	GUEST_SYNC_ARGS(LOG_CR_INFO1, info[0], info[1], info[2]);

	GUEST_ASSERT_EQ(l2.gprs.r8, 0x12345678);	/* L1's answer to the read */
	/* L1 completed the writes by dropping them. */
	GUEST_ASSERT_EQ(v->save.cr0, cr0);
	GUEST_ASSERT_EQ(v->save.cr4, cr4);
	/* Decode assists (15.33.1): bit 63 for MOV CRn and the GPR number. */
	if (assists) {
		GUEST_ASSERT_EQ(info[0], 1ULL << 63 | 0);
		GUEST_ASSERT_EQ(info[1], 1ULL << 63 | 3);
		GUEST_ASSERT_EQ(info[2], 1ULL << 63 | 1);
	}
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* MOV from CR0, MOV to CR0 and to CR4 intercepted (exits 00h, 10h, 14h). */
TEST(cr_intercepts)
{
	run_case(l1_cr_intercepts, NULL);
}

/* ------------------------------------------------------------------------- */

static volatile uint64_t l2_ran;

static void l2_set_ran(void)
{
	l2_ran = 1;
}

enum {
	BAD_EFER_SVME, BAD_ASID, BAD_NO_VMRUN_INTERCEPT, BAD_CR0_NW, BAD_EFER_MBZ, BAD_CR0_HIGH,
	BAD_CR4_MBZ, BAD_DR6_HIGH, BAD_DR7_HIGH, BAD_LONG_NO_PAE, BAD_LONG_NO_PE,
	BAD_IOPM_PAST_MAXPHY, BAD_MSRPM_PAST_MAXPHY, NR_BAD,
};

/* Make the VMCB fail one of VMRUN's checks (APM vol. 2 15.5.1). */
static void l1_break_vmcb(struct vmcb *v, int which)
{
	uint64_t top = 1ULL << l1_maxphyaddr();

	switch (which) {
	case BAD_EFER_SVME:
		v->save.efer &= ~EFER_SVME;
		break;
	case BAD_ASID:
		v->control.asid = 0;
		break;
	case BAD_NO_VMRUN_INTERCEPT:
		v->control.intercept_misc2 &= ~INTERCEPT_VMRUN;
		break;
	case BAD_CR0_NW:		/* CR0.CD is clear */
		v->save.cr0 |= CR0_NW;
		break;
	case BAD_EFER_MBZ:
		v->save.efer |= 1ULL << 40;
		break;
	case BAD_CR0_HIGH:
		v->save.cr0 |= 1ULL << 32;
		break;
	case BAD_CR4_MBZ:
		v->save.cr4 |= 1ULL << 63;
		break;
	case BAD_DR6_HIGH:
		v->save.dr6 |= 1ULL << 32;
		break;
	case BAD_DR7_HIGH:
		v->save.dr7 |= 1ULL << 32;
		break;
	case BAD_LONG_NO_PAE:		/* EFER.LME and CR0.PG stay set */
		v->save.cr4 &= ~CR4_PAE;
		break;
	case BAD_LONG_NO_PE:
		v->save.cr0 &= ~CR0_PE;
		break;
	case BAD_IOPM_PAST_MAXPHY:	/* the 12 KiB map ends past the last address */
		v->control.iopm_base_pa = top - PAGE_SIZE;
		break;
	case BAD_MSRPM_PAST_MAXPHY:
		v->control.msrpm_base_pa = top - PAGE_SIZE;
		break;
	}
}

static void l1_vmrun_consistency_checks(void)
{
	struct svm_l2 l2;

	l1_start();
	for (int i = 0; i < NR_BAD; i++) {
		uint64_t code;

		svm_l2_init(&l2, l2_set_ran);
		l1_break_vmcb(l2.vmcb, i);
		l2_ran = 0;
		code = svm_run(&l2);
		if (code != VMEXIT_INVALID || l2_ran)
			GUEST_SYNC_ARGS(LOG_BAD_CASE, i, code, l2_ran);
		/* EXITCODE is 64 bits, VMEXIT_INVALID -1 (APM vol. 2 appendix C). */
		GUEST_ASSERT_EQ(code, VMEXIT_INVALID);
		GUEST_ASSERT_EQ(l2_ran, 0);
	}
	/* The VMCB they started from is good. */
	svm_l2_init(&l2, l2_set_ran);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2_ran, 1);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/*
 * VMRUN of a VMCB that fails a consistency check exits with VMEXIT_INVALID
 * without running L2, and L1 goes on after its VMRUN.
 */
TEST(vmrun_consistency_checks)
{
	run_case(l1_vmrun_consistency_checks, NULL);
}

/* ------------------------------------------------------------------------- */

extern char l1_vmload_insn[], l1_vmsave_insn[], l1_stgi_insn[], l1_clgi_insn[],
	l1_invlpga_insn[];
void l1_vmload_raw(uint64_t gpa);
void l1_vmsave_raw(uint64_t gpa);
void l1_stgi_raw(void);
void l1_clgi_raw(void);
void l1_invlpga_raw(uint64_t va, uint32_t asid);
asm(".pushsection .text\n"
    "l1_vmload_raw:	mov %rdi, %rax\n"
    "l1_vmload_insn:	vmload %rax\n"
    "	ret\n"
    "l1_vmsave_raw:	mov %rdi, %rax\n"
    "l1_vmsave_insn:	vmsave %rax\n"
    "	ret\n"
    "l1_stgi_raw:\n"
    "l1_stgi_insn:	stgi\n"
    "	ret\n"
    "l1_clgi_raw:\n"
    "l1_clgi_insn:	clgi\n"
    "	ret\n"
    "l1_invlpga_raw:	mov %rdi, %rax\n"
    "	mov %esi, %ecx\n"
    "l1_invlpga_insn:	invlpga %rax, %ecx\n"
    "	ret\n"
    ".popsection\n");

static void host_fault_handlers(struct kvm_vm *vm)
{
	vm_install_exception_handler(vm, GP_VECTOR, record_and_skip);
	vm_install_exception_handler(vm, UD_VECTOR, record_and_skip);
}

/* One fault of @vector, with @err, at @rip since the last check; then forget it. */
static void l1_expect_fault(uint8_t vector, const char *rip, uint64_t err)
{
	GUEST_ASSERT_EQ(ev_count[vector], 1);
	GUEST_ASSERT_EQ(ev_rip[vector], (uint64_t)rip);
	if (err != ~0ULL)
		GUEST_ASSERT_EQ(ev_err[vector], err);
	clear_events();
}

static bool l1_wrmsr_faults(uint32_t msr, uint64_t val)
{
	uint64_t before = ev_count[GP_VECTOR];

	guest_wrmsr(msr, val);
	return ev_count[GP_VECTOR] != before;
}

static void l1_svm_insn_faults(void)
{
	uint64_t top = 1ULL << l1_maxphyaddr(), efer;
	uint64_t page = svm_env.scratch_gpa[0];
	struct svm_l2 l2;

	l1_start();
	efer = guest_rdmsr(MSR_EFER);
	svm_l2_init(&l2, l2_set_ran);

	/* #GP(0): RAX past the physical address width (VMRUN, VMLOAD, VMSAVE in APM vol. 3). */
	svm_vmrun_gprs(top, &l2.gprs);
	l1_expect_fault(GP_VECTOR, svm_vmrun_insn, 0);
	l1_vmload_raw(top);
	l1_expect_fault(GP_VECTOR, l1_vmload_insn, 0);
	l1_vmsave_raw(top);
	l1_expect_fault(GP_VECTOR, l1_vmsave_insn, 0);

	/* VM_HSAVE_PA takes page-aligned addresses below the width only (15.30.4). */
	GUEST_ASSERT(l1_wrmsr_faults(MSR_VM_HSAVE_PA, svm_env.hsave_gpa + 8));
	GUEST_ASSERT(l1_wrmsr_faults(MSR_VM_HSAVE_PA, top));
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_VM_HSAVE_PA), svm_env.hsave_gpa);
	clear_events();

	/* With EFER.SVME clear the SVM instructions raise #UD (15.4). */
	guest_wrmsr(MSR_EFER, efer & ~EFER_SVME);
	l2_ran = 0;
	svm_vmrun_gprs((uint64_t)l2.vmcb, &l2.gprs);
	l1_expect_fault(UD_VECTOR, svm_vmrun_insn, ~0ULL);
	GUEST_ASSERT_EQ(l2_ran, 0);
	l1_vmload_raw(page);
	l1_expect_fault(UD_VECTOR, l1_vmload_insn, ~0ULL);
	l1_vmsave_raw(page);
	l1_expect_fault(UD_VECTOR, l1_vmsave_insn, ~0ULL);
	l1_stgi_raw();
	l1_expect_fault(UD_VECTOR, l1_stgi_insn, ~0ULL);
	l1_clgi_raw();
	l1_expect_fault(UD_VECTOR, l1_clgi_insn, ~0ULL);

	/* They work again once it is set. */
	guest_wrmsr(MSR_EFER, efer);
	l1_vmsave_raw(page);
	l1_vmload_raw(page);
	l1_clgi_raw();
	l1_stgi_raw();
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2_ran, 1);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/*
 * #GP for VMRUN/VMLOAD/VMSAVE with RAX past MAXPHYADDR and for a bad
 * VM_HSAVE_PA; #UD for VMRUN, VMLOAD, VMSAVE, STGI and CLGI with EFER.SVME
 * clear (INVLPGA's is in invlpga).
 */
TEST(svm_insn_faults)
{
	run_case(l1_svm_insn_faults, host_fault_handlers);
}

/* ------------------------------------------------------------------------- */

static void l1_vmrun_rax_unaligned(void)
{
	struct svm_l2 l2;

	l1_start();
	svm_l2_init(&l2, l2_set_ran);
	l2_ran = 0;
	/* APM vol. 3 VMRUN, VMLOAD, VMSAVE: #GP(0) when rAX is not 4 KiB aligned. */
	svm_vmrun_gprs((uint64_t)l2.vmcb + 0x10, &l2.gprs);
	l1_expect_fault(GP_VECTOR, svm_vmrun_insn, 0);
	GUEST_ASSERT_EQ(l2_ran, 0);
	/* The page holds what VMSAVE stores, in case VMLOAD loads it anyway. */
	l1_vmsave_raw(svm_env.scratch_gpa[0]);
	l1_vmload_raw(svm_env.scratch_gpa[0] + 0x10);
	l1_expect_fault(GP_VECTOR, l1_vmload_insn, 0);
	l1_vmsave_raw(svm_env.scratch_gpa[0] + 0x10);
	l1_expect_fault(GP_VECTOR, l1_vmsave_insn, 0);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* VMRUN, VMLOAD and VMSAVE with RAX not page-aligned raise #GP(0). */
TEST(vmrun_rax_unaligned_gp)
{
	run_case(l1_vmrun_rax_unaligned, host_fault_handlers);
}

/* ------------------------------------------------------------------------- */

#define L2_KGS_NEW		0xffff88889abcd000ULL

extern char l2_kgs[], l2_kgs_done[];
asm(".pushsection .text\n"
    "l2_kgs:\n"
    "	mov $" XSTR(MSR_KERNEL_GS_BASE) ", %ecx\n"
    "	rdmsr\n"
    "	mov %rax, %r8\n"
    "	mov %rdx, %r9\n"
    "	mov $0x9abcd000, %eax\n"
    "	mov $0xffff8888, %edx\n"
    "	wrmsr\n"
    "l2_kgs_done:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

/* The MSRs VMLOAD and VMSAVE move (APM vol. 2 15.5.2), in this order. */
struct vmload_values {
	uint64_t fs_base, gs_base, kgs_base, star, lstar, cstar, sfmask;
	uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
};

static const uint32_t vmload_msrs[] = {
	MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_STAR, MSR_LSTAR, MSR_CSTAR,
	MSR_SFMASK, MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP,
};

#define NR_VMLOAD_MSRS (sizeof(vmload_msrs) / sizeof(vmload_msrs[0]))
_Static_assert(sizeof(struct vmload_values) == NR_VMLOAD_MSRS * 8, "one value per MSR");

/* SYSENTER_ESP and _EIP hold 32 bits on AMD processors: no more is tried. */
static const struct vmload_values vals_a = {
	0x7f0011110000, 0x7f0022220000, 0xffff888812345000, 0x0023001000000000,
	0xffffffff81000000, 0xffffffff81001000, 0x47700, 0x10, 0x12345678, 0x87654321,
};

static const struct vmload_values vals_b = {
	0x7f00aaaa0000, 0x7f00bbbb0000, 0xffff8888cccc0000, 0x001b000800000000,
	0xffffffff82000000, 0xffffffff82002000, 0x300, 0x18, 0x0badf00d, 0x0defaced,
};

static void l1_wrmsrs(const struct vmload_values *val)
{
	const uint64_t *p = (const uint64_t *)val;

	for (unsigned int i = 0; i < NR_VMLOAD_MSRS; i++)
		guest_wrmsr(vmload_msrs[i], p[i]);
}

static void l1_check_msrs(const struct vmload_values *val)
{
	const uint64_t *p = (const uint64_t *)val;

	for (unsigned int i = 0; i < NR_VMLOAD_MSRS; i++)
		GUEST_ASSERT_EQ(guest_rdmsr(vmload_msrs[i]), p[i]);
}

static uint64_t *saved_field(struct vmcb *v, unsigned int i)
{
	switch (vmload_msrs[i]) {
	case MSR_FS_BASE:		return &v->save.fs.base;
	case MSR_GS_BASE:		return &v->save.gs.base;
	case MSR_KERNEL_GS_BASE:	return &v->save.kernel_gs_base;
	case MSR_STAR:			return &v->save.star;
	case MSR_LSTAR:			return &v->save.lstar;
	case MSR_CSTAR:			return &v->save.cstar;
	case MSR_SFMASK:		return &v->save.sfmask;
	case MSR_SYSENTER_CS:		return &v->save.sysenter_cs;
	case MSR_SYSENTER_ESP:		return &v->save.sysenter_esp;
	default:			return &v->save.sysenter_eip;
	}
}

static void l1_check_saved(struct vmcb *v, const struct vmload_values *val)
{
	const uint64_t *p = (const uint64_t *)val;

	for (unsigned int i = 0; i < NR_VMLOAD_MSRS; i++)
		GUEST_ASSERT_EQ((uint64_t)i << 56 ^ *saved_field(v, i), (uint64_t)i << 56 ^ p[i]);
}

static void l1_fill_saved(struct vmcb *v, const struct vmload_values *val)
{
	const uint64_t *p = (const uint64_t *)val;

	for (unsigned int i = 0; i < NR_VMLOAD_MSRS; i++)
		*saved_field(v, i) = p[i];
}

static uint16_t l1_fs(void)
{
	uint16_t fs;

	asm volatile("mov %%fs, %0" : "=r"(fs));
	return fs;
}

static void l1_vmload_vmsave(void)
{
	struct vmcb *orig = (struct vmcb *)svm_env.scratch_gpa[0];
	struct vmcb *a = (struct vmcb *)svm_env.scratch_gpa[1];
	struct vmcb *b = (struct vmcb *)svm_env.scratch_gpa[2];
	uint16_t fs = l1_fs(), tr;
	struct svm_l2 l2;

	l1_start();
	asm volatile("str %0" : "=r"(tr));
	svm_vmsave((uint64_t)orig);

	/* VMSAVE stores what L1 wrote with WRMSR, and FS, GS, TR and LDTR. */
	l1_wrmsrs(&vals_a);
	svm_vmsave((uint64_t)a);
	l1_check_saved(a, &vals_a);
	GUEST_ASSERT_EQ(a->save.fs.selector, fs);
	GUEST_ASSERT_EQ(a->save.tr.selector, tr);
	GUEST_ASSERT_EQ(a->save.tr.base, svm_env.tss_gpa);
	GUEST_ASSERT_EQ(a->save.tr.limit, 0x67);
	GUEST_ASSERT_EQ(a->save.ldtr.selector, 0);
	/* Nothing else: the rest of the (zeroed) page stays as it was. */
	GUEST_ASSERT_EQ(a->save.rip, 0);
	GUEST_ASSERT_EQ(a->save.cs.selector, 0);
	GUEST_ASSERT_EQ(a->save.cr0, 0);
	GUEST_ASSERT_EQ(a->control.exit_code, 0);

	/* VMLOAD loads them all, and FS's selector. */
	memcpy(b, a, sizeof(*b));
	l1_fill_saved(b, &vals_b);
	b->save.fs.selector = SEL_UDATA;
	svm_vmload((uint64_t)b);
	l1_check_msrs(&vals_b);
	GUEST_ASSERT_EQ(l1_fs(), SEL_UDATA);
	svm_vmload((uint64_t)a);
	l1_check_msrs(&vals_a);
	GUEST_ASSERT_EQ(l1_fs(), fs);

	/*
	 * VMRUN and #VMEXIT do not switch that state (15.5.1, 15.6): L2
	 * reads L1's KernelGSbase, and what L2 writes is L1's afterwards.
	 */
	svm_l2_init_at(&l2, (uint64_t)l2_kgs, (uint64_t)svm_l2_stack + 4096);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_kgs_done);
	GUEST_ASSERT_EQ(l2.gprs.r8 | l2.gprs.r9 << 32, vals_a.kgs_base);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_KERNEL_GS_BASE), L2_KGS_NEW);

	svm_vmload((uint64_t)orig);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_FS_BASE), orig->save.fs.base);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* VMSAVE stores and VMLOAD loads FS/GS/TR/LDTR, KernelGSbase, STAR..SFMASK, SYSENTER_*. */
TEST(vmload_vmsave)
{
	run_case(l1_vmload_vmsave, NULL);
}

/* ------------------------------------------------------------------------- */

static void l1_gif(void)
{
	struct svm_l2 l2;

	l1_start();
	xapic_enable();

	/* CLGI holds a fixed interrupt back even with RFLAGS.IF set; STGI lets it in (15.17). */
	svm_clgi();
	asm volatile("sti");
	xapic_icr(0, ICR_SELF | ICR_FIXED | VEC_IPI);
	l1_spin(1000);
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 0);
	GUEST_ASSERT(apic_vec_set(xapic_read, APIC_IRR, VEC_IPI));
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 1);
	asm volatile("cli");

	/* #VMEXIT clears GIF. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	asm volatile("sti");
	xapic_icr(0, ICR_SELF | ICR_FIXED | VEC_IPI);
	l1_spin(1000);
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 1);
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 2);
	asm volatile("cli");

	/* NMIs too (RFLAGS.IF does not matter to them). */
	svm_clgi();
	GUEST_SYNC(SYNC_SEND_NMI);
	l1_spin(1000);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 0);
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 2);
	GUEST_DONE();
}

/* GIF: CLGI and #VMEXIT hold L1's interrupts and NMIs back until STGI. */
TEST(gif_holds_interrupts_and_nmis)
{
	run_case(l1_gif, NULL);
}

/* ------------------------------------------------------------------------- */

static void l1_event_injection(void)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();
	in_l2 = 1;

	/* An exception with an error code, through L2's IDT before L2's first instruction. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_EXCEPTION | EVENT_ERROR_VALID |
			       EVENT_VECTOR(GP_VECTOR) | EVENT_ERROR_CODE(0xbeef);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(ev_count[GP_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_in_l2[GP_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_err[GP_VECTOR], 0xbeef);
	GUEST_ASSERT_EQ(ev_rip[GP_VECTOR], (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(ev_cs[GP_VECTOR], v->save.cs.selector);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	GUEST_SYNC_ARGS(LOG_EVENTINJ_AFTER, v->control.event_inj, 0, 0);
	GUEST_ASSERT_EQ(v->control.event_inj & EVENT_VALID, 0);

	/* An external interrupt (IF does not matter to injection). */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(ev_count[VEC_INJ], 1);
	GUEST_ASSERT_EQ(ev_in_l2[VEC_INJ], 1);
	GUEST_ASSERT_EQ(ev_rip[VEC_INJ], (uint64_t)l2_vmmcall);

	/* With L2's RFLAGS.IF set, as hypervisors inject: taken once, IF on again after it. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->save.rflags = 2 | RFLAGS_IF;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(ev_count[VEC_INJ], 2);
	GUEST_ASSERT_EQ(ev_in_l2[VEC_INJ], 1);
	GUEST_ASSERT_EQ(ev_rip[VEC_INJ], (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(v->save.rflags & RFLAGS_IF, RFLAGS_IF);
	GUEST_ASSERT_EQ(v->control.int_ctl & V_IRQ, 0);

	/*
	 * And beside L1's own virtual interrupt (as KVM asks for a window with
	 * one): the injected interrupt first, then the virtual one after its
	 * IRET, each once.
	 */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->save.rflags = 2 | RFLAGS_IF;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ);
	v->control.int_ctl |= V_IRQ | V_IGN_TPR | V_INTR_PRIO(15);
	v->control.int_vector = VEC_VIRQ;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(ev_count[VEC_INJ], 3);
	GUEST_ASSERT_EQ(ev_count[VEC_VIRQ], 1);
	GUEST_ASSERT_EQ(ev_in_l2[VEC_VIRQ], 1);
	GUEST_ASSERT_EQ(ev_rip[VEC_VIRQ], (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(v->control.int_ctl & V_IRQ, 0);
	v->control.int_ctl &= ~(V_IRQ | V_IGN_TPR | V_INTR_PRIO(15));

	/* An NMI. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_NMI | EVENT_VECTOR(NMI_VECTOR);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_in_l2[NMI_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_rip[NMI_VECTOR], (uint64_t)l2_vmmcall);

	/* A #PF: VMRUN loads CR2 from the VMCB, which the handler reads. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->save.cr2 = 0x1234000;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_EXCEPTION | EVENT_ERROR_VALID |
			       EVENT_VECTOR(PF_VECTOR) | EVENT_ERROR_CODE(PF_P | PF_W);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(ev_count[PF_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_in_l2[PF_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_err[PF_VECTOR], PF_P | PF_W);
	GUEST_ASSERT_EQ(ev_cr2[PF_VECTOR], 0x1234000);
	GUEST_ASSERT_EQ(v->save.cr2, 0x1234000);
	in_l2 = 0;

	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[GP_VECTOR] + ev_count[VEC_INJ] + ev_count[NMI_VECTOR] +
			ev_count[PF_VECTOR] + ev_count[VEC_VIRQ], 7);
	GUEST_DONE();
}

/* L2 recording injected events; no EOI: none comes from an APIC. */
static void host_event_handlers(struct kvm_vm *vm)
{
	vm_install_exception_handler(vm, GP_VECTOR, record_event);
	vm_install_exception_handler(vm, PF_VECTOR, record_event);
	vm_install_exception_handler(vm, VEC_INJ, record_event);
	vm_install_exception_handler(vm, VEC_VIRQ, record_event);
}

/* EVENTINJ: an exception with error code, an external interrupt, an NMI, a #PF with CR2. */
TEST(event_injection)
{
	run_case(l1_event_injection, host_event_handlers);
}

/* ------------------------------------------------------------------------- */

static uint64_t l1_idt_base(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr;

	asm volatile("sidt %0" : "=m"(idtr));
	return idtr.base;
}

static void l1_exit_int_info(void)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();

	/*
	 * A #UD whose delivery reads an IDT that is not mapped: the #PF
	 * exits, and EXITINTINFO holds the #UD it interrupted (15.7.2).
	 */
	svm_l2_init_at(&l2, (uint64_t)l2_ud, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	v->save.idtr.base = UNMAPPED_IDT;
	v->control.intercept_exceptions = 1u << PF_VECTOR;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_EXCP(PF_VECTOR));
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_ud);
	GUEST_ASSERT_EQ(v->control.exit_info_1, 0);
	GUEST_ASSERT_EQ(v->control.exit_info_2, UNMAPPED_IDT + UD_VECTOR * 16);
	GUEST_ASSERT_EQ(v->control.exit_int_info,
			EVENT_VALID | EVENT_TYPE_EXCEPTION | EVENT_VECTOR(UD_VECTOR));

	/*
	 * An IDT too short for the #UD: #GP with the IDT's error code, the
	 * vector in bits 15:3 and IDT (bit 1) set; EXT (bit 0) is not checked.
	 * QEMU 7.2's CPU puts vector * 16 + 2 there: that is allowed too.
	 */
	svm_l2_init_at(&l2, (uint64_t)l2_ud, (uint64_t)svm_l2_stack + 4096);
	v->save.idtr.limit = UD_VECTOR * 16 - 1;
	v->control.intercept_exceptions = 1u << GP_VECTOR;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_EXCP(GP_VECTOR));
	GUEST_SYNC_ARGS(LOG_GP_IDT_LIMIT, v->control.exit_info_1, 0, 0);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_ud);
	GUEST_ASSERT(v->control.exit_info_1 == UD_VECTOR * 16 + 2 ||
		     (v->control.exit_info_1 & ~1ULL) == UD_VECTOR * 8 + 2);
	GUEST_ASSERT_EQ(v->control.exit_int_info,
			EVENT_VALID | EVENT_TYPE_EXCEPTION | EVENT_VECTOR(UD_VECTOR));

	/* An injected exception that cannot be delivered is in EXITINTINFO, error code too. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->save.idtr.base = UNMAPPED_IDT;
	v->control.intercept_exceptions = 1u << PF_VECTOR;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_EXCEPTION | EVENT_ERROR_VALID |
			       EVENT_VECTOR(GP_VECTOR) | EVENT_ERROR_CODE(0xbeef);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_EXCP(PF_VECTOR));
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(v->control.exit_info_2, UNMAPPED_IDT + GP_VECTOR * 16);
	GUEST_ASSERT_EQ(v->control.exit_int_info,
			EVENT_VALID | EVENT_TYPE_EXCEPTION | EVENT_ERROR_VALID |
			EVENT_VECTOR(GP_VECTOR) | EVENT_ERROR_CODE(0xbeef));

	/* An injected interrupt likewise. */
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall, (uint64_t)svm_l2_stack + 4096);
	v->save.idtr.base = UNMAPPED_IDT;
	v->control.intercept_exceptions = 1u << PF_VECTOR;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_EXCP(PF_VECTOR));
	GUEST_ASSERT_EQ(v->control.exit_info_2, UNMAPPED_IDT + VEC_INJ * 16);
	GUEST_ASSERT_EQ(v->control.exit_int_info,
			EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ));

	/* The same with L2's RFLAGS.IF set: not taken, and no V_IRQ shows. */
	v->save.rflags = 2 | RFLAGS_IF;
	v->control.event_inj = EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_EXCP(PF_VECTOR));
	GUEST_ASSERT_EQ(v->control.exit_info_2, UNMAPPED_IDT + VEC_INJ * 16);
	GUEST_ASSERT_EQ(v->control.exit_int_info,
			EVENT_VALID | EVENT_TYPE_INTR | EVENT_VECTOR(VEC_INJ));
	GUEST_ASSERT_EQ(v->control.int_ctl & V_IRQ, 0);
	GUEST_ASSERT_EQ(v->save.rflags & RFLAGS_IF, RFLAGS_IF);

	/* L1 injects it again, with L2's IDT back: now it arrives, once. */
	v->control.event_inj = v->control.exit_int_info;
	v->control.intercept_exceptions = 0;
	v->save.idtr.base = l1_idt_base();
	in_l2 = 1;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	in_l2 = 0;
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vmmcall);
	GUEST_ASSERT_EQ(ev_count[VEC_INJ], 1);
	GUEST_ASSERT_EQ(ev_in_l2[VEC_INJ], 1);
	svm_stgi();
	GUEST_DONE();
}

/* EXITINTINFO: the event whose delivery an intercepted #PF or #GP interrupted. */
TEST(exit_int_info)
{
	run_case(l1_exit_int_info, host_event_handlers);
}

/* ------------------------------------------------------------------------- */

#define TLB_MARK_A		0xaaaa0000aaaa0000ULL
#define TLB_MARK_B		0xbbbb0000bbbb0000ULL

static uint64_t tlb_pte_gpa, tlb_page_b;
static volatile uint64_t l2_seen;

static void l2_read_tlb_va(void)
{
	l2_seen = *(volatile uint64_t *)TLB_VA;
}

static void l1_invlpga(void)
{
	uint64_t *pte = (uint64_t *)tlb_pte_gpa, efer;
	struct svm_l2 l2;

	l1_start();
	efer = guest_rdmsr(MSR_EFER);
	/* INVLPGA of L2's page in ASID 1, and of a page of ASID 0 (L1's), fault not. */
	svm_invlpga(TLB_VA, 1);
	svm_invlpga(TLB_VA, 0);

	svm_l2_init(&l2, l2_read_tlb_va);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2_seen, TLB_MARK_A);
	/* L2's page now maps another frame; after INVLPGA L2 must see it. */
	*pte = (*pte & ~PTE_ADDR_MASK) | tlb_page_b;
	svm_invlpga(TLB_VA, 1);
	svm_l2_init(&l2, l2_read_tlb_va);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2_seen, TLB_MARK_B);

	/* #UD with EFER.SVME clear (15.4). */
	guest_wrmsr(MSR_EFER, efer & ~EFER_SVME);
	l1_invlpga_raw(TLB_VA, 1);
	l1_expect_fault(UD_VECTOR, l1_invlpga_insn, ~0ULL);
	guest_wrmsr(MSR_EFER, efer);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

static void host_tlb_pages(struct kvm_vm *vm)
{
	uint64_t a = vm_alloc_pages(vm, 1), pde;

	tlb_page_b = vm_alloc_pages(vm, 1);
	*(uint64_t *)gpa2hva(vm, a) = TLB_MARK_A;
	*(uint64_t *)gpa2hva(vm, tlb_page_b) = TLB_MARK_B;
	virt_map(vm, TLB_VA, a, PAGE_SIZE);
	pde = *virt_pte(vm, TLB_VA, 2);
	tlb_pte_gpa = (pde & PTE_ADDR_MASK) + 8 * ((TLB_VA >> 12) & 511);
	TEST_ASSERT_EQ(*(uint64_t *)gpa2hva(vm, tlb_pte_gpa) & PTE_ADDR_MASK, a);
	sync_global_to_guest(vm, tlb_pte_gpa);
	sync_global_to_guest(vm, tlb_page_b);
	host_fault_handlers(vm);
}

/* INVLPGA runs in L1, L2 sees its changed mapping after it; #UD with EFER.SVME clear. */
TEST(invlpga)
{
	run_case(l1_invlpga, host_tlb_pages);
}

/* ------------------------------------------------------------------------- */

static void l1_triple_fault(void)
{
	struct svm_l2 l2;

	l1_start();
	/* #UD, then #GP and #DF for vectors past the IDT's limit: shutdown (APM vol. 2 8.2.9). */
	svm_l2_init_at(&l2, (uint64_t)l2_ud, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->save.idtr.limit = 0;
	l2.vmcb->control.intercept_misc1 |= INTERCEPT_SHUTDOWN;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_SHUTDOWN);

	/* L1 lives on and runs another L2. */
	svm_l2_init(&l2, l2_set_ran);
	l2_ran = 0;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2_ran, 1);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* A triple fault in L2 with the SHUTDOWN intercept is a #VMEXIT(SHUTDOWN) to L1. */
TEST(l2_triple_fault_shutdown)
{
	run_case(l1_triple_fault, NULL);
}

/* ------------------------------------------------------------------------- */

static void l1_vintr_window(void)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();
	svm_l2_init_at(&l2, (uint64_t)l2_vintr, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	v->control.int_ctl = V_IRQ | V_INTR_PRIO(15) | V_IGN_TPR | V_INTR_MASKING;
	v->control.int_vector = VEC_VIRQ;
	v->control.intercept_misc1 |= INTERCEPT_VINTR;
	in_l2 = 1;

	/* L2's RFLAGS.IF is clear: the virtual interrupt waits (15.21.4). */
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vintr);
	GUEST_ASSERT_EQ(v->control.int_ctl & V_IRQ, V_IRQ);
	svm_skip_insn(&l2, 3);

	/* With IF set, the VINTR intercept exits before L2's next instruction. */
	v->save.rflags |= RFLAGS_IF;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VINTR);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vintr_nop);
	GUEST_ASSERT_EQ(v->control.exit_info_1, 0);
	GUEST_ASSERT_EQ(v->control.exit_info_2, 0);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	GUEST_ASSERT_EQ(v->control.int_ctl & V_IRQ, V_IRQ);

	/* L1 takes the request back; L2 goes on. */
	v->control.int_ctl &= ~V_IRQ;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vintr_nop + 1);
	in_l2 = 0;
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* V_IRQ from L1 with the VINTR intercept: held while L2's IF is clear, then #VMEXIT(VINTR). */
TEST(virtual_interrupt_window)
{
	run_case(l1_vintr_window, host_event_handlers);
}

extern char l2_warm_up[], l2_warm_up_done[];
asm(".pushsection .text\n"
    "l2_warm_up:	int $" XSTR(VEC_VIRQ) "\n"
    "l2_warm_up_done:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

/*
 * Have L0 map what delivering VEC_VIRQ in L2 touches (the IDT, the
 * handler's code and data, L2's stack) by an INT from L2 first: the
 * reference KVM maps L2's memory afresh, apart from L1's.  The test
 * machine's CPU reports an external interrupt whose delivery an exit to L0
 * (such as a nested page fault on one of those pages) cut short as an
 * exception (type 3) in EXITINTINFO; KVM injects it again as exception 50h,
 * which the CPU's VMRUN refuses, so L1 would see VMEXIT_INVALID.
 */
static void l1_prefault_delivery(void)
{
	struct svm_l2 l2;

	svm_l2_init_at(&l2, (uint64_t)l2_warm_up, (uint64_t)svm_l2_stack + 4096);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_warm_up_done);
	GUEST_ASSERT_EQ(ev_count[VEC_VIRQ], 1);
	clear_events();
}

static void l1_vintr_delivery(void)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();
	l1_prefault_delivery();
	svm_l2_init_at(&l2, (uint64_t)l2_vintr, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	v->save.rflags |= RFLAGS_IF;
	v->control.int_vector = VEC_VIRQ;
	in_l2 = 1;

	/* Priority 2 against a virtual TPR of 8: held (15.21.4). */
	v->control.int_ctl = V_IRQ | V_INTR_PRIO(2) | 8 | V_INTR_MASKING;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vintr);
	GUEST_ASSERT_EQ(v->control.int_ctl & (V_IRQ | V_TPR_MASK), V_IRQ | 8);
	GUEST_ASSERT_EQ(ev_count[VEC_VIRQ], 0);
	svm_skip_insn(&l2, 3);

	/* Priority 9: taken through L2's IDT before its next instruction, and V_IRQ clears. */
	v->control.int_ctl = V_IRQ | V_INTR_PRIO(9) | 8 | V_INTR_MASKING;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vintr_nop + 1);
	GUEST_ASSERT_EQ(ev_count[VEC_VIRQ], 1);
	GUEST_ASSERT_EQ(ev_in_l2[VEC_VIRQ], 1);
	GUEST_ASSERT_EQ(ev_rip[VEC_VIRQ], (uint64_t)l2_vintr_nop);
	GUEST_ASSERT_EQ(v->control.int_ctl & V_IRQ, 0);
	in_l2 = 0;
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[VEC_VIRQ], 1);
	GUEST_DONE();
}

/* V_IRQ from L1 without the VINTR intercept: the virtual TPR holds it, then L2 takes it. */
TEST(virtual_interrupt_delivery)
{
	run_case(l1_vintr_delivery, host_event_handlers);
}

/* ------------------------------------------------------------------------- */

static void l1_intr(void)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();
	xapic_enable();
	xapic_write(APIC_TDCR, APIC_TDCR_DIV1);
	xapic_write(APIC_LVTT, VEC_TIMER);
	svm_l2_init_at(&l2, (uint64_t)l2_spin, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	l2.gprs.rcx = SPIN_LIMIT;
	v->control.int_ctl = V_INTR_MASKING;
	v->control.intercept_misc1 |= INTERCEPT_INTR;

	/*
	 * L1's timer fires while L2 spins.  With V_INTR_MASKING, L1's
	 * RFLAGS.IF at VMRUN masks physical interrupts (15.21.1), so L1 sets
	 * it, behind GIF.
	 */
	svm_clgi();
	asm volatile("sti");
	xapic_write(APIC_TMICT, 100000);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_INTR);
	GUEST_ASSERT(v->save.rip >= (uint64_t)l2_spin && v->save.rip < (uint64_t)l2_spin_end);
	GUEST_ASSERT(l2.gprs.rcx != 0);
	GUEST_ASSERT_EQ(v->control.exit_info_1, 0);
	GUEST_ASSERT_EQ(v->control.exit_info_2, 0);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	/* The interrupt is L1's, taken after STGI (GIF is clear after #VMEXIT). */
	GUEST_ASSERT_EQ(ev_count[VEC_TIMER], 0);
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[VEC_TIMER], 1);
	GUEST_ASSERT_EQ(ev_in_l2[VEC_TIMER], 0);
	asm volatile("cli");
	GUEST_DONE();
}

/* An interrupt for L1 while L2 runs with the INTR intercept: #VMEXIT(INTR), then L1's handler. */
TEST(intr_exit_for_l1_interrupt)
{
	run_case(l1_intr, NULL);
}

/* ------------------------------------------------------------------------- */

static volatile uint64_t l2_spin_done;

/* L2: ask the host for an NMI, straight through port I/O L1 does not intercept; spin. */
static void l2_nmi_sync_spin(void)
{
	uint64_t before = ev_count[NMI_VECTOR];

	GUEST_SYNC(SYNC_SEND_NMI);
	for (uint64_t i = 0; i < SPIN_LIMIT / 8 && ev_count[NMI_VECTOR] == before; i++)
		asm volatile("pause");
	l2_spin_done = 1;
}

static void l1_nmi(void)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();

	/* An NMI pending at VMRUN exits before L2's first instruction. */
	svm_l2_init_at(&l2, (uint64_t)l2_spin, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	l2.gprs.rcx = SPIN_LIMIT;
	v->control.intercept_misc1 |= INTERCEPT_NMI;
	svm_clgi();
	GUEST_SYNC(SYNC_SEND_NMI);
	l1_spin(1000);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 0);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_NMI);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_spin);
	GUEST_ASSERT_EQ(l2.gprs.rcx, SPIN_LIMIT);
	GUEST_ASSERT_EQ(v->control.exit_info_1, 0);
	GUEST_ASSERT_EQ(v->control.exit_info_2, 0);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	/* It stays L1's, for after STGI. */
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 0);
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_in_l2[NMI_VECTOR], 0);

	/* An NMI that arrives while L2 runs. */
	svm_l2_init(&l2, l2_nmi_sync_spin);
	v->control.intercept_misc1 |= INTERCEPT_NMI;
	l2_spin_done = 0;
	in_l2 = 1;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_NMI);
	in_l2 = 0;
	GUEST_ASSERT_EQ(l2_spin_done, 0);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 1);
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 2);
	GUEST_ASSERT_EQ(ev_in_l2[NMI_VECTOR], 0);

	/* Without the intercept the NMI goes to L2, through its IDT. */
	svm_l2_init(&l2, l2_nmi_sync_spin);
	l2_spin_done = 0;
	in_l2 = 1;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	in_l2 = 0;
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)svm_l2_returned);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 3);
	GUEST_ASSERT_EQ(ev_in_l2[NMI_VECTOR], 1);
	svm_stgi();
	l1_spin(1000);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 3);
	GUEST_DONE();
}

/* NMIs sent with KVM_NMI: the NMI intercept (pending at VMRUN, or while L2 runs), or L2's. */
TEST(nmi_intercept)
{
	run_case(l1_nmi, NULL);
}

/* ------------------------------------------------------------------------- */

static uint64_t npt_root, npt_absent_gpa, npt_ro_gpa, npt_gpt_gpa;

extern char l2_npt_read[], l2_npt_write[];
asm(".pushsection .text\n"
    "l2_npt_read:	mov (%rax), %rbx\n"
    "	vmmcall\n"
    "	ud2\n"
    "l2_npt_write:	mov %rbx, (%rax)\n"
    "	vmmcall\n"
    "	ud2\n"
    ".popsection\n");

static void l2_npt_memory(void)
{
	l2_seen = *(volatile uint64_t *)svm_env.scratch_gpa[0];
	*(volatile uint64_t *)svm_env.scratch_gpa[0] = 0x600d;
}

static void l1_npt_init(struct svm_l2 *l2, const char *rip, uint64_t rax)
{
	svm_l2_init_at(l2, (uint64_t)rip, (uint64_t)svm_l2_stack + 4096);
	l2->vmcb->control.nested_ctl = NESTED_CTL_NP_ENABLE;
	l2->vmcb->control.n_cr3 = npt_root;
	l2->vmcb->save.rax = rax;
}

/* One access of L2 that NPT does not allow: #NPF with @info1 and the address. */
static void l1_expect_npf(int n, const char *rip, uint64_t addr, uint64_t info1)
{
	struct svm_l2 l2;
	struct vmcb *v;

	l1_npt_init(&l2, rip, addr);
	v = l2.vmcb;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_NPF);
	GUEST_SYNC_ARGS(LOG_NPF, n, v->control.exit_info_1, v->control.exit_info_2);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)rip);
	GUEST_ASSERT_EQ(v->control.exit_info_1, info1);
	GUEST_ASSERT_EQ(v->control.exit_info_2, addr);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
}

static void l1_npt(void)
{
	struct svm_l2 l2;

	l1_start();
	/* L2 on L1's page tables through an identity NPT: memory as L1 sees it. */
	*(volatile uint64_t *)svm_env.scratch_gpa[0] = 0x1234;
	svm_l2_init(&l2, l2_npt_memory);
	l2.vmcb->control.nested_ctl = NESTED_CTL_NP_ENABLE;
	l2.vmcb->control.n_cr3 = npt_root;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)svm_l2_returned);
	GUEST_ASSERT_EQ(l2_seen, 0x1234);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)svm_env.scratch_gpa[0], 0x600d);

	/*
	 * The error code of #NPF (15.25.6): NPT walks are user accesses (U),
	 * W for writes, P for present entries; bit 32 when the final
	 * translation faulted, bit 33 when a guest page-table access did.
	 */
	l1_expect_npf(1, l2_npt_read, npt_absent_gpa + 0x18, NPF_FINAL_GPA | PF_U);
	l1_expect_npf(2, l2_npt_write, npt_absent_gpa + 0x20, NPF_FINAL_GPA | PF_U | PF_W);
	l1_expect_npf(3, l2_npt_write, npt_ro_gpa + 0x28, NPF_FINAL_GPA | PF_U | PF_W | PF_P);
	/* A read of the read-only page is fine. */
	l1_npt_init(&l2, l2_npt_read, npt_ro_gpa);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

static void *npt_gpa_to_hva(void *ctx, uint64_t gpa)
{
	return gpa2hva(ctx, gpa);
}

static uint64_t npt_alloc_page(void *ctx)
{
	return vm_alloc_pages(ctx, 1);
}

/*
 * An identity NPT for L2 over all of L1's memory, with 4 KiB pages: one
 * page left out, one read-only, and the page table that maps GPT_VA in
 * L1's tables left out too.
 */
static void host_build_npt(struct kvm_vm *vm)
{
	struct guest_pgtable npt = {
		.gpa_to_hva = npt_gpa_to_hva,
		.alloc_page = npt_alloc_page,
		.ctx = vm,
	};

	if (!(svm_host_features(vm) & SVM_FEAT_NP))
		SKIP("nested paging is not offered to L1 (CPUID 8000_000Ah EDX[0])");
	npt_absent_gpa = vm_alloc_pages(vm, 1);
	npt_ro_gpa = vm_alloc_pages(vm, 1);
	virt_map(vm, GPT_VA, vm_alloc_pages(vm, 1), PAGE_SIZE);
	npt_gpt_gpa = *virt_pte(vm, GPT_VA, 2) & PTE_ADDR_MASK;
	TEST_ASSERT(pgtable_init(&npt) == 0, "allocating the NPT root");
	for (uint64_t gpa = 0; gpa < vm->mem_size; gpa += PAGE_SIZE) {
		uint64_t flags = PTE_US | (gpa == npt_ro_gpa ? 0 : PTE_RW);

		if (gpa == npt_absent_gpa || gpa == npt_gpt_gpa)
			continue;
		TEST_ASSERT(pgtable_map(&npt, gpa, gpa, PG_SIZE_4K, flags) == 0,
			    "NPT mapping of %#" PRIx64, gpa);
	}
	npt_root = npt.root;
	sync_global_to_guest(vm, npt_root);
	sync_global_to_guest(vm, npt_absent_gpa);
	sync_global_to_guest(vm, npt_ro_gpa);
	sync_global_to_guest(vm, npt_gpt_gpa);
}

/* Nested paging for L2: an identity NPT works; #NPF for absent and read-only pages. */
TEST(npt_nested_page_faults)
{
	run_case(l1_npt, host_build_npt);
}

static void l1_npt_guest_table(void)
{
	uint64_t pte_gpa = npt_gpt_gpa + 8 * ((GPT_VA >> 12) & 511);
	struct svm_l2 l2;
	struct vmcb *v;

	l1_start();
	/* L2's walk of its own tables reaches a table NPT does not map: bit 33. */
	l1_npt_init(&l2, l2_npt_read, GPT_VA);
	v = l2.vmcb;
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_NPF);
	GUEST_SYNC_ARGS(LOG_NPF, 4, v->control.exit_info_1, v->control.exit_info_2);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_npt_read);
	GUEST_ASSERT_EQ(v->control.exit_info_1 & (NPF_GUEST_TABLE | NPF_FINAL_GPA),
			NPF_GUEST_TABLE);
	/* A user access to an absent page; KVM reports W too (the walk may set A bits). */
	GUEST_ASSERT_EQ(v->control.exit_info_1 & (PF_U | PF_P), PF_U);
	GUEST_ASSERT_EQ(v->control.exit_info_1 & ~(NPF_GUEST_TABLE | PF_U | PF_P | PF_W), 0);
	GUEST_ASSERT_EQ(v->control.exit_info_2, pte_gpa);
	svm_stgi();
	l1_assert_no_events();
	GUEST_DONE();
}

/* #NPF during L2's own page walk: EXITINFO1 bit 33, EXITINFO2 the table entry's address. */
TEST(npt_fault_in_guest_page_walk)
{
	run_case(l1_npt_guest_table, host_build_npt);
}
