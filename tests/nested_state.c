// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_GET_NESTED_STATE and KVM_SET_NESTED_STATE in the SVM format
 * (api.rst 4.114 and 4.115, KVM_CAP_NESTED_STATE; <asm/kvm.h> struct
 * kvm_nested_state, kvm_svm_nested_state_hdr and kvm_svm_nested_state_data).
 *
 * The state of a vCPU whose guest ("L1") uses SVM is what KVM_GET_SREGS,
 * KVM_GET_REGS, KVM_GET_MSRS... give plus this: a 128-byte header (flags,
 * format, size, the guest physical address of L1's VMCB) and, while the
 * vCPU runs L1's guest ("L2"), one page in VMCB layout (APM vol. 2 appendix
 * B) called vmcb12.  Its control area is the one L1 gave VMRUN; its
 * state-save area holds L1's own state, the "host" state that #VMEXIT
 * returns to (15.5.1), while the vCPU's registers are L2's.
 *
 * Cases: the capability and the header outside L2; the refusals of
 * KVM_SET_NESTED_STATE; a made-up guest-mode state that runs; and migration:
 * the whole vCPU state is saved at an exit to the host and restored, in the
 * order QEMU uses, into a fresh vCPU of a new VM over the same guest memory
 * (the old VM is destroyed), in the middle of L2 (twice in one run), at L2's
 * first instruction, between L1's VMRUN and L2's first instruction (with
 * RUN_PENDING), and with L1's GIF clear.
 *
 * What the reference (Debian's 6.1 kvm_amd, nested=1, on QEMU TCG EPYC)
 * does, and these cases check:
 *
 *  - KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE) is 128 + 4096 = 4224 on
 *    /dev/kvm and on a VM (with nested=0 too, where CPUID has no SVM);
 *  - GET outside L2: format 1 (SVM), size 128, flags GIF_SET (0x100) or 0
 *    while GIF is clear (CLGI, or after a #VMEXIT until STGI); the rest of
 *    the header is zero and nothing past the header is written.  A size
 *    field below 128 gives E2BIG with 128 written to size, nothing else;
 *  - GET in L2: flags GUEST_MODE | GIF_SET (0x101), size 4224,
 *    hdr.svm.vmcb_pa = the VMCB address L1 gave VMRUN.  A size field of
 *    128 gives E2BIG and 4224 in size.  RUN_PENDING (0x2) is set only
 *    between the emulated VMRUN and the first entry into L2, which a
 *    single-step over VMRUN (KVM_GUESTDBG_SINGLESTEP) stops at; at an exit
 *    from L2's first instruction it is clear;
 *  - vmcb12's control area is L1's as of VMRUN: intercepts, IOPM/MSRPM
 *    bases, TSC_OFFSET, ASID, int_ctl, nested_ctl, and also the exit fields
 *    (EXITCODE, EXITINFO1/2, EXITINTINFO) and EVENTINJ as L1 left them
 *    before VMRUN; KVM does not update them while L2 runs.  The state-save
 *    area is L1's: RIP just after its VMRUN, its RSP and RAX (the VMCB
 *    address) at VMRUN, RFLAGS, CR0, CR3, CR4, EFER, ES/CS/SS/DS, GDTR,
 *    IDTR, CPL 0, and besides L1's VMLOAD state (FS, GS, TR, LDTR, STAR,
 *    LSTAR, CSTAR, SFMASK, KernelGsBase, SYSENTER_*), G_PAT (L1's PAT), DR6
 *    (0xffff0ff0) and DR7 (0x400) - these are logged, not checked.  After
 *    SET the fields round-trip: GET gives back the control area byte for
 *    byte and the save fields VMRUN saves; the others come from the new
 *    vCPU (its DR6 there reads 0);
 *  - SET refuses with EINVAL: size below 128; flags outside GUEST_MODE,
 *    RUN_PENDING, GIF_SET (EVMCS and MTF_PENDING too, which are VMX's);
 *    RUN_PENDING without GUEST_MODE; format 0 (VMX); anything but exactly
 *    GIF_SET while the vCPU's EFER.SVME is clear (so GIF cannot be cleared
 *    then); with GUEST_MODE, a vmcb_pa not page-aligned or beyond MAXPHYADDR,
 *    size below 4224, a control area without the VMRUN intercept or with
 *    ASID 0, a save area with CR0.PG clear or EFER.SVME clear.  An
 *    unreadable data page gives EFAULT.  SET without GUEST_MODE sets GIF
 *    from GIF_SET;
 *  - restored before KVM_SET_REGS and after KVM_SET_SREGS (QEMU's order, as
 *    SET with GUEST_MODE needs EFER.SVME), the state runs on: L2 continues
 *    where it was, its #VMEXIT returns L1 to its VMRUN with its registers,
 *    MSRs, debug registers and TSC; a pending self-IPI and an NMI stay held
 *    by a GIF that was clear at the save until L1's STGI.
 *
 * At a KVM_EXIT_IO the OUT completes only when userspace enters KVM_RUN
 * again, and that pending completion is in no state userspace can save
 * (api.rst 5, the note after the exit reasons of struct kvm_run): KVM still
 * has RIP at the OUT, minikvm past it.  So the state is taken after a
 * KVM_RUN with immediate_exit, which completes the OUT and returns EINTR
 * without running the guest, as QEMU does before it saves a vCPU.
 *
 * L2's OUT is 4 bytes wide: an IOPM bit of any of its ports intercepts it
 * (APM vol. 2 15.10.1), so the port L1 does intercept is well away.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "apic.h"
#include "svm.h"

#define STR(x)			#x
#define XSTR(x)			STR(x)
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define NMI_VECTOR		2
#define UD_VECTOR		6
#define VEC_IPI			0x41

#define CR0_PG			(1ULL << 31)
#define CR4_OSXMMEXCPT		(1ULL << 10)
#define EFER_NXE		(1ULL << 11)
#define RFLAGS_ARITH		0x8d5ULL	/* CF, PF, AF, ZF, SF, OF */

#define MSR_IA32_TSC		0x10
#define MSR_SYSENTER_CS		0x174
#define MSR_SYSENTER_ESP	0x175
#define MSR_SYSENTER_EIP	0x176
#define MSR_PAT			0x277
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SFMASK		0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102

/* What L1 writes to the MSRs that VMRUN and #VMEXIT leave alone (VMLOAD state, 15.5.2). */
#define L1_STAR			0x0023001000000000ULL
#define L1_LSTAR		0xffffffff81234560ULL
#define L1_CSTAR		0xffffffff81234570ULL
#define L1_SFMASK		0x47700ULL
#define L1_KERNEL_GS_BASE	0xffff888012345000ULL
#define L1_SYSENTER_CS		0x10ULL
/* 32 bits: KVM keeps only those of SYSENTER_ESP/EIP for an AMD guest. */
#define L1_SYSENTER_ESP		0x12345678ULL
#define L1_SYSENTER_EIP		0x9abcdef0ULL
/* WB, WT, UC-, UC, WB, WT, WC, UC: all valid types, not the reset value. */
#define L1_PAT			0x0007010600070106ULL
#define L1_DR(n)		(0x10000ULL * ((n) + 1) + 0x40 * (n))

/* Header and header plus vmcb12. */
#define NS_HDR_SIZE		sizeof(struct kvm_nested_state)
#define NS_FULL_SIZE		(NS_HDR_SIZE + KVM_STATE_NESTED_SVM_VMCB_SIZE)

#define NS_GUEST_MODE		KVM_STATE_NESTED_GUEST_MODE
#define NS_RUN_PENDING		KVM_STATE_NESTED_RUN_PENDING
#define NS_GIF_SET		KVM_STATE_NESTED_GIF_SET

/* The port L2 writes to: L1 intercepts I/O but not this one, so KVM hands it to the host. */
#define L2_PORT			0x5e1
/* One L1 does intercept, to show the IOPM is in force. */
#define L1_PORT			0x5f0
/* L2's counting loop: an OUT of the counter every L2_OUT_EVERY iterations, L2_OUTS in all. */
#define L2_OUT_EVERY		64
#define L2_OUTS			12
#define L2_ITERS		768
_Static_assert(L2_ITERS == L2_OUT_EVERY * L2_OUTS, "L2_ITERS");
/* The OUTs after which the host moves the vCPU to a new VM. */
#define MIGRATE_AT_1		3
#define MIGRATE_AT_2		8
#define L2_TSC_OFFSET		(1ULL << 36)

/* What L1 leaves in the VMCB's exit fields before VMRUN: are they exported? */
#define L1_EXIT_INFO_1		0x1111ULL
#define L1_EXIT_INFO_2		0x2222ULL

/* GUEST_SYNC stages. */
enum {
	SYNC_L1_READY = 1,	/* args[1]: &l2.gprs; L1 runs L2 next */
	SYNC_SVME_ON,		/* EFER.SVME set, GIF set */
	SYNC_GIF_CLEAR,		/* after CLGI */
	SYNC_GIF_SET,		/* after STGI */
	SYNC_AFTER_VMEXIT,	/* after an L2 round trip, before STGI */
};

/* ------------------------------------------------------------------------- */
/* The nested state buffer and the vCPU's whole state. */

union nested_buf {
	struct kvm_nested_state s;
	uint8_t raw[NS_FULL_SIZE];
};

static struct vmcb *ns_vmcb(union nested_buf *n)
{
	return (struct vmcb *)n->s.data.svm[0].vmcb12;
}

static int get_nested(struct kvm_vcpu *vcpu, union nested_buf *n, uint32_t size)
{
	n->s.size = size;
	return __vcpu_ioctl(vcpu, KVM_GET_NESTED_STATE, &n->s);
}

static int set_nested(struct kvm_vcpu *vcpu, union nested_buf *n)
{
	return __vcpu_ioctl(vcpu, KVM_SET_NESTED_STATE, &n->s);
}

/* The header GET gives outside L2: format SVM, size 128, @flags, the rest zero. */
static void assert_hdr_outside_l2(struct kvm_vcpu *vcpu, uint16_t flags)
{
	union nested_buf n;

	memset(&n, 0xa5, sizeof(n));
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags, flags);
	TEST_ASSERT_EQ(n.s.format, KVM_STATE_NESTED_FORMAT_SVM);
	TEST_ASSERT_EQ(n.s.size, NS_HDR_SIZE);
	for (size_t i = 0; i < sizeof(n.s.hdr.pad); i++)
		TEST_ASSERT_EQ((uint64_t)i << 8 | n.s.hdr.pad[i], (uint64_t)i << 8);
	/* Nothing is written past the header. */
	for (size_t i = NS_HDR_SIZE; i < sizeof(n); i++)
		TEST_ASSERT_EQ((uint64_t)i << 8 | n.raw[i], (uint64_t)i << 8 | 0xa5);
}

static const uint32_t saved_msrs[] = {
	MSR_EFER, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SFMASK, MSR_KERNEL_GS_BASE,
	MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, MSR_IA32_TSC, MSR_VM_HSAVE_PA,
	MSR_PAT,
};

#define CPUID_MAX_ENTRIES	256

struct vcpu_state {
	union {
		struct kvm_cpuid2 cpuid;
		uint8_t cpuid_raw[sizeof(struct kvm_cpuid2) +
				  CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2)];
	};
	struct kvm_sregs sregs;
	union nested_buf nested;
	struct kvm_regs regs;
	struct kvm_xcrs xcrs;
	union {
		struct kvm_msrs msrs;
		uint8_t msrs_raw[sizeof(struct kvm_msrs) +
				 ARRAY_SIZE(saved_msrs) * sizeof(struct kvm_msr_entry)];
	};
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp_state;
	union {
		struct kvm_xsave xsave;
		uint8_t xsave_raw[4096];
	};
};

static uint64_t state_msr(struct vcpu_state *st, uint32_t index)
{
	for (uint32_t i = 0; i < st->msrs.nmsrs; i++)
		if (st->msrs.entries[i].index == index)
			return st->msrs.entries[i].data;
	test_fail(__FILE__, __LINE__, "MSR saved", "MSR %#x is not in the saved state", index);
}

/*
 * Finish what the last exit left for the next KVM_RUN (the OUT of a
 * KVM_EXIT_IO): KVM_RUN with immediate_exit completes it and returns EINTR
 * without entering the guest.
 */
static void complete_pending_io(struct kvm_vcpu *vcpu)
{
	int r;

	vcpu->run->immediate_exit = 1;
	r = __vcpu_run(vcpu);
	vcpu->run->immediate_exit = 0;
	TEST_ASSERT_ERRNO(r, EINTR);
}

static void save_vcpu_state(struct kvm_vcpu *vcpu, struct vcpu_state *st)
{
	memset(st, 0, sizeof(*st));
	complete_pending_io(vcpu);
	st->cpuid.nent = CPUID_MAX_ENTRIES;
	vcpu_ioctl(vcpu, KVM_GET_CPUID2, &st->cpuid, "KVM_GET_CPUID2");
	vcpu_sregs_get(vcpu, &st->sregs);
	TEST_ASSERT_EQ(get_nested(vcpu, &st->nested, sizeof(st->nested)), 0);
	vcpu_regs_get(vcpu, &st->regs);
	vcpu_ioctl(vcpu, KVM_GET_XSAVE, &st->xsave, "KVM_GET_XSAVE");
	vcpu_ioctl(vcpu, KVM_GET_XCRS, &st->xcrs, "KVM_GET_XCRS");
	st->msrs.nmsrs = ARRAY_SIZE(saved_msrs);
	for (size_t i = 0; i < ARRAY_SIZE(saved_msrs); i++)
		st->msrs.entries[i].index = saved_msrs[i];
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_GET_MSRS, &st->msrs), ARRAY_SIZE(saved_msrs));
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &st->events, "KVM_GET_VCPU_EVENTS");
	vcpu_ioctl(vcpu, KVM_GET_DEBUGREGS, &st->debugregs, "KVM_GET_DEBUGREGS");
	vcpu_get_lapic(vcpu, &st->lapic);
	vcpu_ioctl(vcpu, KVM_GET_MP_STATE, &st->mp_state, "KVM_GET_MP_STATE");
}

/*
 * QEMU's order: CPUID first (QEMU sets it when it creates the vCPU; it
 * decides what the rest may hold), then as kvm_arch_put_registers() does,
 * the special registers before the nested state so that EFER.SVME is
 * already set, the registers, FPU, MSRs, events, debug registers and MP
 * state.  The local APIC comes here after the MSRs; its base address came
 * with the special registers.
 */
static void restore_vcpu_state(struct kvm_vcpu *vcpu, struct vcpu_state *st)
{
	vcpu_set_cpuid(vcpu, &st->cpuid);
	vcpu_sregs_set(vcpu, &st->sregs);
	TEST_ASSERT_EQ(set_nested(vcpu, &st->nested), 0);
	vcpu_regs_set(vcpu, &st->regs);
	vcpu_ioctl(vcpu, KVM_SET_XSAVE, &st->xsave, "KVM_SET_XSAVE");
	vcpu_ioctl(vcpu, KVM_SET_XCRS, &st->xcrs, "KVM_SET_XCRS");
	TEST_ASSERT_EQ(__vcpu_ioctl(vcpu, KVM_SET_MSRS, &st->msrs), ARRAY_SIZE(saved_msrs));
	vcpu_set_lapic(vcpu, &st->lapic);
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &st->events, "KVM_SET_VCPU_EVENTS");
	vcpu_ioctl(vcpu, KVM_SET_DEBUGREGS, &st->debugregs, "KVM_SET_DEBUGREGS");
	vcpu_ioctl(vcpu, KVM_SET_MP_STATE, &st->mp_state, "KVM_SET_MP_STATE");
}

static void assert_seg_eq(const struct vmcb_seg *a, const struct vmcb_seg *b)
{
	TEST_ASSERT_EQ(a->selector, b->selector);
	TEST_ASSERT_EQ(a->attrib, b->attrib);
	TEST_ASSERT_EQ(a->limit, b->limit);
	TEST_ASSERT_EQ(a->base, b->base);
}

/*
 * The restored vCPU gives back what was put in: the nested header, vmcb12's
 * whole control area and the save fields VMRUN saves (15.5.1), the
 * registers and the special registers that matter here.
 */
static void assert_restored(struct kvm_vcpu *vcpu, struct vcpu_state *st)
{
	struct vmcb *want = ns_vmcb(&st->nested), *got;
	union nested_buf n;
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	memset(&n, 0, sizeof(n));
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags, st->nested.s.flags);
	TEST_ASSERT_EQ(n.s.format, KVM_STATE_NESTED_FORMAT_SVM);
	TEST_ASSERT_EQ(n.s.size, st->nested.s.size);
	TEST_ASSERT_EQ(n.s.hdr.svm.vmcb_pa, st->nested.s.hdr.svm.vmcb_pa);
	if (n.s.flags & NS_GUEST_MODE) {
		got = ns_vmcb(&n);
		TEST_ASSERT(!memcmp(&got->control, &want->control, sizeof(got->control)),
			    "vmcb12's control area round-trips");
		assert_seg_eq(&got->save.es, &want->save.es);
		assert_seg_eq(&got->save.cs, &want->save.cs);
		assert_seg_eq(&got->save.ss, &want->save.ss);
		assert_seg_eq(&got->save.ds, &want->save.ds);
		TEST_ASSERT_EQ(got->save.gdtr.base, want->save.gdtr.base);
		TEST_ASSERT_EQ(got->save.gdtr.limit, want->save.gdtr.limit);
		TEST_ASSERT_EQ(got->save.idtr.base, want->save.idtr.base);
		TEST_ASSERT_EQ(got->save.idtr.limit, want->save.idtr.limit);
		TEST_ASSERT_EQ(got->save.efer, want->save.efer);
		TEST_ASSERT_EQ(got->save.cr0, want->save.cr0);
		TEST_ASSERT_EQ(got->save.cr3, want->save.cr3);
		TEST_ASSERT_EQ(got->save.cr4, want->save.cr4);
		TEST_ASSERT_EQ(got->save.rflags, want->save.rflags);
		TEST_ASSERT_EQ(got->save.rip, want->save.rip);
		TEST_ASSERT_EQ(got->save.rsp, want->save.rsp);
		TEST_ASSERT_EQ(got->save.rax, want->save.rax);
	}
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT(!memcmp(&regs, &st->regs, sizeof(regs)),
		    "KVM_GET_REGS gives back the registers");
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT_EQ(sregs.cr0, st->sregs.cr0);
	TEST_ASSERT_EQ(sregs.cr3, st->sregs.cr3);
	TEST_ASSERT_EQ(sregs.cr4, st->sregs.cr4);
	TEST_ASSERT_EQ(sregs.efer, st->sregs.efer);
	TEST_ASSERT_EQ(sregs.cs.selector, st->sregs.cs.selector);
	TEST_ASSERT_EQ(sregs.apic_base, st->sregs.apic_base);
}

/* ------------------------------------------------------------------------- */
/* A second VM over the same guest memory: the target of a migration. */

static struct kvm_vm *vm_clone_memory(struct kvm_vm *src)
{
	struct kvm_vm *vm = malloc(sizeof(*vm));
	size_t cpuid_size = sizeof(*src->cpuid) + src->cpuid->nent * sizeof(src->cpuid->entries[0]);

	TEST_ASSERT(vm, "out of memory");
	*vm = *src;
	memset(vm->vcpus, 0, sizeof(vm->vcpus));
	vm->pt.ctx = vm;
	vm->cpuid = malloc(cpuid_size);
	TEST_ASSERT(vm->cpuid, "out of memory");
	memcpy(vm->cpuid, src->cpuid, cpuid_size);
	vm->kvm_fd = open_kvm();
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	TEST_ASSERT(vm->fd >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_SET_TSS_ADDR, GUEST_TSS_ADDR), 0);
	for (int i = 0; i < vm->nr_slots; i++) {
		struct lib_slot *s = &vm->slots[i];

		TEST_ASSERT(__vm_set_memslot(vm, s->slot, s->flags, s->gpa, s->size, s->hva) == 0,
			    "memslot %u in the new VM: %s", s->slot, strerror(errno));
	}
	vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	return vm;
}

/* A vCPU with nothing set up: the restore gives it everything. */
static struct kvm_vcpu *vcpu_create_bare(struct kvm_vm *vm, uint32_t id, uint64_t stack_top)
{
	struct kvm_vcpu *vcpu = calloc(1, sizeof(*vcpu));

	TEST_ASSERT(vcpu, "out of memory");
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->stack_top = stack_top;
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	TEST_ASSERT(vcpu->fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	vcpu->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	TEST_ASSERT(vcpu->run != MAP_FAILED, "mmap kvm_run: %s", strerror(errno));
	vm->vcpus[id] = vcpu;
	return vcpu;
}

/*
 * Save vCPU 0 of *@vm, restore it into vCPU 0 of a new VM over the same
 * memory, check what the new vCPU gives back and destroy the old VM.
 * Return: the saved state (valid until the next call).
 */
static struct vcpu_state *migrate(struct kvm_vm **vm, struct kvm_vcpu **vcpu)
{
	static struct vcpu_state st;
	struct kvm_vm *new_vm = vm_clone_memory(*vm);
	struct kvm_vcpu *new_vcpu = vcpu_create_bare(new_vm, 0, (*vcpu)->stack_top);

	save_vcpu_state(*vcpu, &st);
	restore_vcpu_state(new_vcpu, &st);
	assert_restored(new_vcpu, &st);
	vm_release(*vm);
	*vm = new_vm;
	*vcpu = new_vcpu;
	return &st;
}

/* ------------------------------------------------------------------------- */
/* Guest side. */

/* What L1's handlers saw, per vector. */
static volatile uint64_t ev_count[256];

static void record_event(struct ex_regs *regs)
{
	ev_count[regs->vector & 255]++;
}

static void record_and_eoi(struct ex_regs *regs)
{
	record_event(regs);
	xapic_write(APIC_EOI, 0);
}

static void l1_spin(unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		asm volatile("pause" ::: "memory");
}

static void l1_write_dr(int n, uint64_t v)
{
	switch (n) {
	case 0:
		asm volatile("mov %0, %%dr0" :: "r"(v));
		break;
	case 1:
		asm volatile("mov %0, %%dr1" :: "r"(v));
		break;
	case 2:
		asm volatile("mov %0, %%dr2" :: "r"(v));
		break;
	default:
		asm volatile("mov %0, %%dr3" :: "r"(v));
		break;
	}
}

static uint64_t l1_read_dr(int n)
{
	uint64_t v;

	switch (n) {
	case 0:
		asm volatile("mov %%dr0, %0" : "=r"(v));
		break;
	case 1:
		asm volatile("mov %%dr1, %0" : "=r"(v));
		break;
	case 2:
		asm volatile("mov %%dr2, %0" : "=r"(v));
		break;
	default:
		asm volatile("mov %%dr3, %0" : "=r"(v));
		break;
	}
	return v;
}

/* State that VMRUN and #VMEXIT do not switch, so L1 finds it again after L2 (15.5). */
static void l1_set_unswitched_state(void)
{
	guest_wrmsr(MSR_STAR, L1_STAR);
	guest_wrmsr(MSR_LSTAR, L1_LSTAR);
	guest_wrmsr(MSR_CSTAR, L1_CSTAR);
	guest_wrmsr(MSR_SFMASK, L1_SFMASK);
	guest_wrmsr(MSR_KERNEL_GS_BASE, L1_KERNEL_GS_BASE);
	guest_wrmsr(MSR_SYSENTER_CS, L1_SYSENTER_CS);
	guest_wrmsr(MSR_SYSENTER_ESP, L1_SYSENTER_ESP);
	guest_wrmsr(MSR_SYSENTER_EIP, L1_SYSENTER_EIP);
	guest_wrmsr(MSR_PAT, L1_PAT);
	for (int n = 0; n < 4; n++)
		l1_write_dr(n, L1_DR(n));
}

static void l1_assert_unswitched_state(void)
{
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_STAR), L1_STAR);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_LSTAR), L1_LSTAR);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_CSTAR), L1_CSTAR);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_SFMASK), L1_SFMASK);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_KERNEL_GS_BASE), L1_KERNEL_GS_BASE);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_SYSENTER_CS), L1_SYSENTER_CS);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_SYSENTER_ESP), L1_SYSENTER_ESP);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_SYSENTER_EIP), L1_SYSENTER_EIP);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_PAT), L1_PAT);
	for (int n = 0; n < 4; n++)
		GUEST_ASSERT_EQ(l1_read_dr(n), L1_DR(n));
}

/*
 * L2's counting loop, all in registers and one memory word so that the
 * host knows where it stands at every OUT: l2_counter in memory and R12
 * count iterations, XMM5 adds XMM6 (1) once per iteration (FPU state), and
 * every L2_OUT_EVERY iterations the counter goes out on L2_PORT.  At the end
 * L2 reads the TSC (R14), LSTAR (RDX) and the XMM5 sum (RBX), puts R12 in
 * RAX and exits with VMMCALL.
 */
volatile uint64_t l2_counter;

extern char l2_count[], l2_count_out[], l2_count_end[];
asm(".pushsection .text\n"
    "l2_count:\n"
    "	xor %r12d, %r12d\n"
    "	mov $1, %eax\n"
    "	movq %rax, %xmm6\n"
    "	pxor %xmm5, %xmm5\n"
    "	mov $" XSTR(L2_PORT) ", %edx\n"
    "1:	incq l2_counter(%rip)\n"
    "	inc %r12\n"
    "	paddq %xmm6, %xmm5\n"
    "	mov l2_counter(%rip), %rax\n"
    "	test $" XSTR(L2_OUT_EVERY) " - 1, %eax\n"
    "	jnz 2f\n"
    "l2_count_out:	out %eax, %dx\n"		/* ef: one byte */
    "2:	cmp $" XSTR(L2_ITERS) ", %rax\n"
    "	jb 1b\n"
    "	movq %xmm5, %rbx\n"
    "	rdtsc\n"
    "	shl $32, %rdx\n"
    "	or %rax, %rdx\n"
    "	mov %rdx, %r14\n"
    "	mov $" XSTR(MSR_LSTAR) ", %ecx\n"
    "	rdmsr\n"
    "	shl $32, %rdx\n"
    "	or %rax, %rdx\n"
    "	mov %r12, %rax\n"
    "l2_count_end:	vmmcall\n"
    "	ud2\n"
    /* An OUT on the port in DX first, then VMMCALL. */
    "l2_out_first:	out %al, %dx\n"
    "l2_out_first_end:	vmmcall\n"
    "	ud2\n"
    "l2_vmmcall_only:	vmmcall\n"
    "	ud2\n"
    ".popsection\n");
extern char l2_out_first[], l2_out_first_end[], l2_vmmcall_only[];

/* ------------------------------------------------------------------------- */
/* Host side helpers. */

/* A VM whose vCPU may use SVM, or a skip when KVM offers no nested state or no SVM. */
static struct kvm_vm *nested_vm_create(void (*l1)(void), struct kvm_vcpu **vcpu)
{
	struct kvm_vm *vm;

	if (!kvm_check_cap(KVM_CAP_NESTED_STATE))
		SKIP("KVM_CAP_NESTED_STATE is 0");
	vm = svm_vm_create(l1, vcpu);
	vm_install_exception_handler(vm, NMI_VECTOR, record_event);
	vm_install_exception_handler(vm, VEC_IPI, record_and_eoi);
	return vm;
}

/* Run to the next ucall; it must be GUEST_SYNC(@stage). */
static void expect_sync(struct kvm_vcpu *vcpu, struct ucall *uc, uint64_t stage)
{
	uint64_t cmd = vcpu_run_ucall(vcpu, uc);

	if (cmd == UCALL_EXCEPTION)
		vcpu_run_ucall_report(vcpu, uc);
	TEST_ASSERT_EQ(cmd, UCALL_SYNC);
	TEST_ASSERT_EQ(uc->args[0], stage);
}

static void expect_done(struct kvm_vcpu *vcpu)
{
	struct ucall uc;
	uint64_t cmd = vcpu_run_ucall(vcpu, &uc);

	if (cmd == UCALL_EXCEPTION)
		vcpu_run_ucall_report(vcpu, &uc);
	TEST_ASSERT(cmd == UCALL_DONE, "L1 done, got ucall %" PRIu64 " stage %" PRIu64, cmd,
		    uc.args[0]);
}

/* Run to the next exit, which must be L2's OUT of a 32-bit value on L2_PORT; return the value. */
static uint32_t expect_l2_out(struct kvm_vcpu *vcpu, uint32_t size)
{
	struct kvm_run *run = vcpu->run;
	uint32_t v = 0;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	if (run->io.port == UCALL_PORT) {
		struct ucall uc;

		/* A guest assertion or exception explains more than the port. */
		get_ucall(vcpu, &uc);
		vcpu_run_ucall_report(vcpu, &uc);
	}
	TEST_ASSERT_EQ(run->io.port, L2_PORT);
	TEST_ASSERT_EQ(run->io.direction, KVM_EXIT_IO_OUT);
	TEST_ASSERT_EQ(run->io.size, size);
	TEST_ASSERT_EQ(run->io.count, 1);
	memcpy(&v, (uint8_t *)run + run->io.data_offset, size);
	return v;
}

static void vmcb_seg_from_kvm(struct vmcb_seg *v, const struct kvm_segment *s)
{
	v->selector = s->selector;
	v->attrib = s->type | s->s << 4 | s->dpl << 5 | s->present << 7 | s->avl << 8 |
		    s->l << 9 | s->db << 10 | s->g << 11;
	v->limit = s->limit;
	v->base = s->base;
}

/* Log the fields of vmcb12 that the cases do not check, for the record. */
static void log_vmcb12(const char *who, union nested_buf *n)
{
	struct vmcb *v = ns_vmcb(n);

	test_log("%s vmcb12 control: exit_code %#" PRIx64 " exit_info_1 %#" PRIx64
		 " exit_info_2 %#" PRIx64 " exit_int_info %#" PRIx64 " event_inj %#" PRIx64
		 " next_rip %#" PRIx64 " int_ctl %#x int_state %#" PRIx64 " tlb_control %u"
		 " clean %#x virt_ext %#" PRIx64, who, v->control.exit_code, v->control.exit_info_1,
		 v->control.exit_info_2, v->control.exit_int_info, v->control.event_inj,
		 v->control.next_rip, v->control.int_ctl, v->control.int_state,
		 v->control.tlb_control, v->control.clean, v->control.virt_ext);
	test_log("%s vmcb12 save: cpl %u dr6 %#" PRIx64 " dr7 %#" PRIx64 " cr2 %#" PRIx64
		 " g_pat %#" PRIx64 " star %#" PRIx64 " lstar %#" PRIx64 " cstar %#" PRIx64
		 " sfmask %#" PRIx64 " kgsbase %#" PRIx64, who, v->save.cpl, v->save.dr6,
		 v->save.dr7, v->save.cr2, v->save.g_pat, v->save.star, v->save.lstar,
		 v->save.cstar, v->save.sfmask, v->save.kernel_gs_base);
	test_log("%s vmcb12 save: sysenter cs/esp/eip %#" PRIx64 "/%#" PRIx64 "/%#" PRIx64
		 " fs %#x/%#" PRIx64 " gs %#x/%#" PRIx64 " tr %#x/%#" PRIx64 " ldtr %#x",
		 who, v->save.sysenter_cs, v->save.sysenter_esp, v->save.sysenter_eip,
		 v->save.fs.selector, v->save.fs.base, v->save.gs.selector, v->save.gs.base,
		 v->save.tr.selector, v->save.tr.base, v->save.ldtr.selector);
}

/* ------------------------------------------------------------------------- */

static void l1_gif_states(void)
{
	struct svm_l2 l2;

	svm_l1_enable();
	GUEST_SYNC(SYNC_SVME_ON);
	svm_clgi();
	GUEST_SYNC(SYNC_GIF_CLEAR);
	svm_stgi();
	GUEST_SYNC(SYNC_GIF_SET);
	svm_l2_init_at(&l2, (uint64_t)l2_vmmcall_only, (uint64_t)svm_l2_stack + 4096);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	/* #VMEXIT clears GIF (15.17). */
	GUEST_SYNC(SYNC_AFTER_VMEXIT);
	svm_stgi();
	GUEST_DONE();
}

/*
 * KVM_CAP_NESTED_STATE on /dev/kvm and on the VM; the header outside L2 as
 * GIF changes; E2BIG for a size field below the header, with the size needed.
 */
TEST(cap_and_header_outside_l2)
{
	int cap = kvm_check_cap(KVM_CAP_NESTED_STATE);
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_gif_states, &vcpu);
	static const uint32_t small[] = { 0, 64, NS_HDR_SIZE - 1 };
	union nested_buf n;
	struct ucall uc;

	TEST_ASSERT_EQ(cap, NS_FULL_SIZE);
	TEST_ASSERT_EQ(ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE), NS_FULL_SIZE);

	/* A vCPU that never ran: GIF is set (it is at reset, 15.17). */
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);
	for (size_t i = 0; i < ARRAY_SIZE(small); i++) {
		memset(&n, 0xa5, sizeof(n));
		TEST_ASSERT_ERRNO(get_nested(vcpu, &n, small[i]), E2BIG);
		TEST_ASSERT_EQ(n.s.size, NS_HDR_SIZE);
		/* Only the size is written. */
		TEST_ASSERT_EQ(n.s.flags, 0xa5a5);
		TEST_ASSERT_EQ(n.s.format, 0xa5a5);
		TEST_ASSERT_EQ(n.s.hdr.svm.vmcb_pa, 0xa5a5a5a5a5a5a5a5ULL);
	}
	/* Exactly the header is enough. */
	TEST_ASSERT_EQ(get_nested(vcpu, &n, NS_HDR_SIZE), 0);
	TEST_ASSERT_EQ(n.s.size, NS_HDR_SIZE);

	expect_sync(vcpu, &uc, SYNC_SVME_ON);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);
	expect_sync(vcpu, &uc, SYNC_GIF_CLEAR);
	assert_hdr_outside_l2(vcpu, 0);
	expect_sync(vcpu, &uc, SYNC_GIF_SET);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);
	expect_sync(vcpu, &uc, SYNC_AFTER_VMEXIT);
	assert_hdr_outside_l2(vcpu, 0);
	expect_done(vcpu);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

/*
 * A guest-mode state the host makes up for vCPU @vcpu, whose special
 * registers it reads: L1 is that state at @l1_rip with @l1_rsp, its VMCB
 * (svm_env.vmcb_gpa) intercepts VMRUN and VMMCALL, ASID 1.
 */
static void make_guest_mode_state(struct kvm_vcpu *vcpu, union nested_buf *n, uint64_t l1_rip,
				  uint64_t l1_rsp)
{
	struct vmcb *v = ns_vmcb(n);
	struct kvm_sregs s;

	vcpu_sregs_get(vcpu, &s);
	memset(n, 0, sizeof(*n));
	n->s.flags = NS_GUEST_MODE | NS_GIF_SET;
	n->s.format = KVM_STATE_NESTED_FORMAT_SVM;
	n->s.size = NS_FULL_SIZE;
	n->s.hdr.svm.vmcb_pa = svm_env.vmcb_gpa;

	v->control.intercept_misc2 = INTERCEPT_VMRUN | INTERCEPT_VMMCALL;
	v->control.asid = 1;
	v->control.iopm_base_pa = svm_env.iopm_gpa;
	v->control.msrpm_base_pa = svm_env.msrpm_gpa;

	vmcb_seg_from_kvm(&v->save.es, &s.es);
	vmcb_seg_from_kvm(&v->save.cs, &s.cs);
	vmcb_seg_from_kvm(&v->save.ss, &s.ss);
	vmcb_seg_from_kvm(&v->save.ds, &s.ds);
	v->save.gdtr.base = s.gdt.base;
	v->save.gdtr.limit = s.gdt.limit;
	v->save.idtr.base = s.idt.base;
	v->save.idtr.limit = s.idt.limit;
	v->save.efer = s.efer | EFER_SVME;
	v->save.cr0 = s.cr0;
	v->save.cr3 = s.cr3;
	v->save.cr4 = s.cr4;
	v->save.dr6 = 0xffff0ff0;
	v->save.dr7 = 0x400;
	v->save.rflags = 2;
	v->save.rip = l1_rip;
	v->save.rsp = l1_rsp;
	v->save.rax = svm_env.vmcb_gpa;
}

static void set_efer_svme(struct kvm_vcpu *vcpu, bool on)
{
	struct kvm_sregs s;

	vcpu_sregs_get(vcpu, &s);
	s.efer = on ? s.efer | EFER_SVME : s.efer & ~EFER_SVME;
	vcpu_sregs_set(vcpu, &s);
}

static void expect_set_einval(struct kvm_vcpu *vcpu, union nested_buf *n, const char *what)
{
	int r = set_nested(vcpu, n), e = errno;

	TEST_ASSERT(r == -1 && e == EINVAL, "SET with %s: returned %d errno %d (%s), want EINVAL",
		    what, r, r == -1 ? e : 0, r == -1 ? strerror(e) : "none");
}

static void l1_unused(void)
{
	GUEST_DONE();
}

/*
 * KVM_SET_NESTED_STATE's refusals, each of a state that differs from a
 * valid one in one thing; the valid one is accepted last.  And without
 * GUEST_MODE, SET sets and clears GIF.
 */
TEST(set_refusals)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_unused, &vcpu);
	union nested_buf good, n;
	uint8_t *pages;
	struct kvm_nested_state *edge;

	make_guest_mode_state(vcpu, &good, (uint64_t)l1_unused, vcpu->stack_top - 8);

	/* EFER.SVME clear: only exactly GIF_SET, no guest mode. */
	n = good;
	expect_set_einval(vcpu, &n, "GUEST_MODE while EFER.SVME is clear");
	n.s.flags = 0;
	expect_set_einval(vcpu, &n, "flags 0 (GIF clear) while EFER.SVME is clear");
	n.s.flags = NS_GIF_SET;
	TEST_ASSERT_EQ(set_nested(vcpu, &n), 0);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);

	set_efer_svme(vcpu, true);

	/* The generic checks: size and flags. */
	n = good;
	n.s.flags = NS_GIF_SET;
	n.s.size = 0;
	expect_set_einval(vcpu, &n, "size 0");
	n.s.size = NS_HDR_SIZE - 1;
	expect_set_einval(vcpu, &n, "size 127");
	n.s.size = NS_HDR_SIZE;
	n.s.flags = NS_GIF_SET | 0x8000;
	expect_set_einval(vcpu, &n, "an unknown flag");
	n.s.flags = NS_GIF_SET | KVM_STATE_NESTED_EVMCS;
	expect_set_einval(vcpu, &n, "EVMCS");
	n.s.flags = NS_GIF_SET | KVM_STATE_NESTED_MTF_PENDING;
	expect_set_einval(vcpu, &n, "MTF_PENDING");
	n.s.flags = NS_GIF_SET | NS_RUN_PENDING;
	expect_set_einval(vcpu, &n, "RUN_PENDING without GUEST_MODE");
	n.s.flags = NS_GIF_SET;
	n.s.format = KVM_STATE_NESTED_FORMAT_VMX;
	expect_set_einval(vcpu, &n, "format VMX");

	/* Guest mode: the header. */
	n = good;
	n.s.size = NS_HDR_SIZE;
	expect_set_einval(vcpu, &n, "GUEST_MODE and a header-only size");
	n.s.size = NS_FULL_SIZE - 1;
	expect_set_einval(vcpu, &n, "GUEST_MODE and size 4223");
	n = good;
	n.s.hdr.svm.vmcb_pa += 8;
	expect_set_einval(vcpu, &n, "vmcb_pa not page-aligned");
	n.s.hdr.svm.vmcb_pa = 1ULL << 52;
	expect_set_einval(vcpu, &n, "vmcb_pa beyond MAXPHYADDR");

	/* Guest mode: vmcb12's control area fails VMRUN's checks (15.5.1). */
	n = good;
	ns_vmcb(&n)->control.intercept_misc2 &= ~INTERCEPT_VMRUN;
	expect_set_einval(vcpu, &n, "no VMRUN intercept");
	n = good;
	ns_vmcb(&n)->control.asid = 0;
	expect_set_einval(vcpu, &n, "ASID 0");

	/* Guest mode: L1's save area is not one VMRUN could have saved. */
	n = good;
	ns_vmcb(&n)->save.cr0 &= ~CR0_PG;
	expect_set_einval(vcpu, &n, "L1 CR0.PG clear");
	n = good;
	ns_vmcb(&n)->save.efer &= ~EFER_SVME;
	expect_set_einval(vcpu, &n, "L1 EFER.SVME clear");

	/* vmcb12 on a page the kernel cannot read: EFAULT. */
	pages = mmap(NULL, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		     0);
	TEST_ASSERT(pages != MAP_FAILED, "mmap: %s", strerror(errno));
	TEST_ASSERT_EQ(mprotect(pages + PAGE_SIZE, PAGE_SIZE, PROT_NONE), 0);
	edge = (struct kvm_nested_state *)(pages + PAGE_SIZE - NS_HDR_SIZE);
	memcpy(edge, &good.s, NS_HDR_SIZE);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_NESTED_STATE, edge), EFAULT);
	munmap(pages, 2 * PAGE_SIZE);

	/* None of that changed anything. */
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);

	/* Without GUEST_MODE, SET clears and sets GIF. */
	n = good;
	n.s.flags = 0;
	n.s.size = NS_HDR_SIZE;
	TEST_ASSERT_EQ(set_nested(vcpu, &n), 0);
	assert_hdr_outside_l2(vcpu, 0);
	n.s.flags = NS_GIF_SET;
	TEST_ASSERT_EQ(set_nested(vcpu, &n), 0);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);

	/* The state the refusals started from is accepted. */
	TEST_ASSERT_EQ(set_nested(vcpu, &good), 0);
	memset(&n, 0, sizeof(n));
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags, NS_GUEST_MODE | NS_GIF_SET);
	TEST_ASSERT_EQ(n.s.size, NS_FULL_SIZE);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

#define MADE_UP_L2_RSP		((uint64_t)svm_l2_stack + 4096)

/* Where the made-up state's L1 starts: the #VMEXIT of L2's VMMCALL. */
static void l1_after_made_up_vmexit(void)
{
	struct vmcb *v = (struct vmcb *)svm_env.vmcb_gpa;

	GUEST_ASSERT_EQ(v->control.exit_code, VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_vmmcall_only);
	GUEST_ASSERT_EQ(v->save.rsp, MADE_UP_L2_RSP);
	GUEST_ASSERT_EQ(v->save.rax, 0x1234);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	svm_stgi();
	GUEST_DONE();
	for (;;)
		guest_hlt();
}

/*
 * A guest-mode state made up by the host, never saved from a vCPU, is
 * accepted and runs: L2 starts at the registers KVM_SET_REGS gives it, its
 * VMMCALL exits to L1 at the RIP and RSP of vmcb12's save area.
 */
TEST(set_made_up_guest_mode)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_after_made_up_vmexit, &vcpu);
	struct kvm_regs regs;
	union nested_buf n, got;

	set_efer_svme(vcpu, true);
	vcpu_set_msr(vcpu, MSR_VM_HSAVE_PA, svm_env.hsave_gpa);
	make_guest_mode_state(vcpu, &n, (uint64_t)l1_after_made_up_vmexit, vcpu->stack_top - 8);
	TEST_ASSERT_EQ(set_nested(vcpu, &n), 0);
	memset(&got, 0, sizeof(got));
	TEST_ASSERT_EQ(get_nested(vcpu, &got, sizeof(got)), 0);
	TEST_ASSERT_EQ(got.s.flags, NS_GUEST_MODE | NS_GIF_SET);
	TEST_ASSERT_EQ(got.s.size, NS_FULL_SIZE);
	TEST_ASSERT_EQ(got.s.hdr.svm.vmcb_pa, svm_env.vmcb_gpa);
	TEST_ASSERT(!memcmp(&ns_vmcb(&got)->control, &ns_vmcb(&n)->control,
			    sizeof(struct vmcb_control)), "the control area round-trips");
	TEST_ASSERT_EQ(ns_vmcb(&got)->save.rip, (uint64_t)l1_after_made_up_vmexit);
	TEST_ASSERT_EQ(ns_vmcb(&got)->save.rsp, vcpu->stack_top - 8);
	TEST_ASSERT_EQ(ns_vmcb(&got)->save.cr3, ns_vmcb(&n)->save.cr3);

	vcpu_regs_get(vcpu, &regs);
	regs.rip = (uint64_t)l2_vmmcall_only;
	regs.rsp = MADE_UP_L2_RSP;
	regs.rax = 0x1234;
	regs.rflags = 2;
	vcpu_regs_set(vcpu, &regs);
	expect_done(vcpu);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

static uint64_t l1_efer_nxe(void)
{
	uint32_t a, b, c, d;

	guest_cpuid(0x80000001, 0, &a, &b, &c, &d);
	return d & (1u << 20) ? EFER_NXE : 0;
}

/*
 * L1 for the migration in L2: L2 is the counting loop with CR3 (a copy of
 * L1's top-level table), CR4 and EFER of its own, intercepts that do not
 * fire (IOIO and MSR through maps without its port and MSR, CPUID, #UD,
 * CR3 writes, SHUTDOWN) and a TSC offset.
 */
static void l1_migrate_in_l2(void)
{
	uint64_t cr0 = guest_read_cr0(), cr3 = guest_read_cr3(), cr4 = guest_read_cr4(), efer;
	uint64_t *l2_pml4 = (uint64_t *)svm_env.scratch_gpa[0];
	uint64_t t0, t1, l2_tsc;
	struct svm_l2 l2;
	struct vmcb *v;

	svm_l1_enable();
	l1_set_unswitched_state();
	efer = guest_rdmsr(MSR_EFER);
	svm_l2_init_at(&l2, (uint64_t)l2_count, (uint64_t)svm_l2_stack + 4096);
	v = l2.vmcb;
	memcpy(l2_pml4, (void *)cr3, PAGE_SIZE);
	v->save.cr3 = (uint64_t)l2_pml4;
	v->save.cr4 = cr4 & ~CR4_OSXMMEXCPT;
	v->save.efer = efer | l1_efer_nxe();
	v->control.intercept_cr = INTERCEPT_CR_WRITE(3);
	v->control.intercept_exceptions = 1u << UD_VECTOR;
	v->control.intercept_misc1 = INTERCEPT_IOIO_PROT | INTERCEPT_MSR_PROT | INTERCEPT_CPUID |
				     INTERCEPT_SHUTDOWN;
	v->control.tsc_offset = L2_TSC_OFFSET;
	v->control.int_ctl = V_INTR_MASKING;
	v->control.exit_info_1 = L1_EXIT_INFO_1;
	v->control.exit_info_2 = L1_EXIT_INFO_2;
	svm_iopm_set(L1_PORT, true);
	svm_msrpm_set(MSR_STAR, true, true);

	GUEST_SYNC_ARGS(SYNC_L1_READY, (uint64_t)&l2.gprs, 0, 0);
	t0 = guest_rdtsc();
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	t1 = guest_rdtsc();

	/* L2 went through every iteration once, with its registers and FPU state. */
	GUEST_ASSERT_EQ(v->save.rip, (uint64_t)l2_count_end);
	GUEST_ASSERT_EQ(v->save.rsp, (uint64_t)svm_l2_stack + 4096);
	GUEST_ASSERT_EQ(v->save.rax, L2_ITERS);
	GUEST_ASSERT_EQ(v->save.cr3, (uint64_t)l2_pml4);
	GUEST_ASSERT_EQ(v->save.efer, efer | l1_efer_nxe());
	GUEST_ASSERT_EQ(v->save.cr4, cr4 & ~CR4_OSXMMEXCPT);
	GUEST_ASSERT_EQ(v->control.exit_int_info, 0);
	GUEST_ASSERT_EQ(l2.gprs.r12, L2_ITERS);
	GUEST_ASSERT_EQ(l2.gprs.rbx, L2_ITERS);
	GUEST_ASSERT_EQ(l2.gprs.rdx, L1_LSTAR);
	GUEST_ASSERT_EQ(l2_counter, L2_ITERS);
	/* L2's TSC is L1's plus TSC_OFFSET (15.8.1), across the moves. */
	l2_tsc = l2.gprs.r14 - L2_TSC_OFFSET;
	GUEST_ASSERT(l2_tsc > t0 && l2_tsc < t1);

	/* L1 is back with its own state. */
	GUEST_ASSERT_EQ(guest_read_cr0(), cr0);
	GUEST_ASSERT_EQ(guest_read_cr3(), cr3);
	GUEST_ASSERT_EQ(guest_read_cr4(), cr4);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_EFER), efer);
	GUEST_ASSERT_EQ(guest_rdmsr(MSR_VM_HSAVE_PA), svm_env.hsave_gpa);
	l1_assert_unswitched_state();
	svm_stgi();
	GUEST_DONE();
}

/*
 * The state of a vCPU in L2, as GET gives it at an exit from L2 to the
 * host; @l1 holds L1's special registers from before its VMRUN.
 */
static void assert_state_in_l2(struct kvm_vcpu *vcpu, const struct kvm_sregs *l1,
			       uint64_t gprs_gva, uint32_t count, const char *who)
{
	struct kvm_vm *vm = vcpu->vm;
	union nested_buf n;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct vmcb *v = ns_vmcb(&n);

	/* The registers are L2's: RIP past the completed OUT. */
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)l2_count_out + 1);
	TEST_ASSERT_EQ(regs.rsp, (uint64_t)svm_l2_stack + 4096);
	TEST_ASSERT_EQ(regs.rax, count);
	TEST_ASSERT_EQ(regs.r12, count);
	vcpu_sregs_get(vcpu, &sregs);
	TEST_ASSERT_EQ(sregs.cr3, svm_env.scratch_gpa[0]);
	TEST_ASSERT_EQ(sregs.cr4, l1->cr4 & ~CR4_OSXMMEXCPT);
	TEST_ASSERT_EQ(sregs.efer & ~EFER_NXE, l1->efer);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_LSTAR), L1_LSTAR);

	/* A size field of the header alone is short now. */
	memset(&n, 0, sizeof(n));
	TEST_ASSERT_ERRNO(get_nested(vcpu, &n, NS_HDR_SIZE), E2BIG);
	TEST_ASSERT_EQ(n.s.size, NS_FULL_SIZE);

	memset(&n, 0xa5, sizeof(n));
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags, NS_GUEST_MODE | NS_GIF_SET);
	TEST_ASSERT_EQ(n.s.format, KVM_STATE_NESTED_FORMAT_SVM);
	TEST_ASSERT_EQ(n.s.size, NS_FULL_SIZE);
	TEST_ASSERT_EQ(n.s.hdr.svm.vmcb_pa, svm_env.vmcb_gpa);

	/* vmcb12's control area is L1's. */
	TEST_ASSERT_EQ(v->control.intercept_cr, INTERCEPT_CR_WRITE(3));
	TEST_ASSERT_EQ(v->control.intercept_dr, 0);
	TEST_ASSERT_EQ(v->control.intercept_exceptions, 1u << UD_VECTOR);
	TEST_ASSERT_EQ(v->control.intercept_misc1, INTERCEPT_IOIO_PROT | INTERCEPT_MSR_PROT |
						   INTERCEPT_CPUID | INTERCEPT_SHUTDOWN);
	TEST_ASSERT_EQ(v->control.intercept_misc2, INTERCEPT_VMRUN | INTERCEPT_VMMCALL);
	TEST_ASSERT_EQ(v->control.iopm_base_pa, svm_env.iopm_gpa);
	TEST_ASSERT_EQ(v->control.msrpm_base_pa, svm_env.msrpm_gpa);
	TEST_ASSERT_EQ(v->control.tsc_offset, L2_TSC_OFFSET);
	TEST_ASSERT_EQ(v->control.asid, 1);
	TEST_ASSERT_EQ(v->control.int_ctl, V_INTR_MASKING);
	TEST_ASSERT_EQ(v->control.nested_ctl, 0);
	TEST_ASSERT_EQ(v->control.event_inj, 0);

	/* Its save area is L1's, as of VMRUN. */
	TEST_ASSERT_EQ(v->save.rip, (uint64_t)svm_vmrun_insn + 3);
	TEST_ASSERT_EQ(v->save.rax, svm_env.vmcb_gpa);
	/* svm_vmrun_gprs() pushed its gprs pointer last: the word at L1's RSP. */
	TEST_ASSERT_EQ(*(uint64_t *)gva2hva(vm, v->save.rsp), gprs_gva);
	TEST_ASSERT_EQ(v->save.rflags & ~RFLAGS_ARITH, 2);
	TEST_ASSERT_EQ(v->save.cr0, l1->cr0);
	TEST_ASSERT_EQ(v->save.cr3, l1->cr3);
	TEST_ASSERT_EQ(v->save.cr4, l1->cr4);
	TEST_ASSERT_EQ(v->save.efer, l1->efer);
	TEST_ASSERT_EQ(v->save.cs.selector, l1->cs.selector);
	TEST_ASSERT_EQ(v->save.cs.base, l1->cs.base);
	TEST_ASSERT_EQ(v->save.ss.selector, l1->ss.selector);
	TEST_ASSERT_EQ(v->save.ds.selector, l1->ds.selector);
	TEST_ASSERT_EQ(v->save.es.selector, l1->es.selector);
	TEST_ASSERT_EQ(v->save.gdtr.base, l1->gdt.base);
	TEST_ASSERT_EQ(v->save.gdtr.limit, l1->gdt.limit);
	TEST_ASSERT_EQ(v->save.idtr.base, l1->idt.base);
	TEST_ASSERT_EQ(v->save.idtr.limit, l1->idt.limit);
	if (count == MIGRATE_AT_1 * L2_OUT_EVERY)
		log_vmcb12(who, &n);
}

/*
 * The main case: L2 counts, and at two of its OUTs to the host the vCPU
 * moves, with every piece of its state, to a fresh vCPU of a new VM over
 * the same memory.  L2 goes on where it was, no iteration lost or done
 * twice; its #VMEXIT brings L1 back with its registers, MSRs, debug
 * registers and TSC.
 */
TEST(migrate_in_l2)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_migrate_in_l2, &vcpu);
	struct kvm_sregs l1_sregs;
	struct vcpu_state *st;
	uint64_t gprs_gva;
	struct ucall uc;
	int moves = 0;

	expect_sync(vcpu, &uc, SYNC_L1_READY);
	gprs_gva = uc.args[1];
	vcpu_sregs_get(vcpu, &l1_sregs);
	TEST_ASSERT(l1_sregs.efer & EFER_SVME, "L1 set EFER.SVME");
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);

	for (uint32_t outs = 1; outs <= L2_OUTS; outs++) {
		uint32_t v = expect_l2_out(vcpu, 4);

		TEST_ASSERT_EQ(v, outs * L2_OUT_EVERY);
		TEST_ASSERT_EQ(*(volatile uint64_t *)gva2hva(vm, (uint64_t)&l2_counter), v);
		if (outs != MIGRATE_AT_1 && outs != MIGRATE_AT_2)
			continue;
		complete_pending_io(vcpu);
		assert_state_in_l2(vcpu, &l1_sregs, gprs_gva, v, "saved");
		st = migrate(&vm, &vcpu);
		moves++;
		/* What L1 set is what was saved, in L2 too. */
		TEST_ASSERT_EQ(state_msr(st, MSR_VM_HSAVE_PA), svm_env.hsave_gpa);
		TEST_ASSERT_EQ(state_msr(st, MSR_STAR), L1_STAR);
		TEST_ASSERT_EQ(state_msr(st, MSR_KERNEL_GS_BASE), L1_KERNEL_GS_BASE);
		TEST_ASSERT_EQ(state_msr(st, MSR_SYSENTER_EIP), L1_SYSENTER_EIP);
		TEST_ASSERT_EQ(state_msr(st, MSR_PAT), L1_PAT);
		TEST_ASSERT_EQ(st->debugregs.db[0], L1_DR(0));
		TEST_ASSERT_EQ(st->debugregs.db[3], L1_DR(3));
		/* The new vCPU, not yet run, is in L2 just as the old one was. */
		assert_state_in_l2(vcpu, &l1_sregs, gprs_gva, v, "restored");
	}
	expect_done(vcpu);
	TEST_ASSERT_EQ(moves, 2);
	TEST_ASSERT_EQ(*(volatile uint64_t *)gva2hva(vm, (uint64_t)&l2_counter), L2_ITERS);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

/* L1 runs an L2 whose first instruction is an OUT to the host, on L2_PORT in DX. */
static void l1_l2_out_first(void)
{
	struct svm_l2 l2;

	svm_l1_enable();
	l1_set_unswitched_state();
	svm_l2_init_at(&l2, (uint64_t)l2_out_first, (uint64_t)svm_l2_stack + 4096);
	l2.vmcb->control.intercept_misc1 = INTERCEPT_IOIO_PROT;
	l2.vmcb->save.rax = 0x5a;
	l2.gprs.rdx = L2_PORT;
	GUEST_SYNC_ARGS(SYNC_L1_READY, (uint64_t)&l2.gprs, 0, 0);
	GUEST_ASSERT_EQ(svm_run(&l2), VMEXIT_VMMCALL);
	GUEST_ASSERT_EQ(l2.vmcb->save.rip, (uint64_t)l2_out_first_end);
	GUEST_ASSERT_EQ(l2.vmcb->save.rax, 0x5a);
	GUEST_ASSERT_EQ(l2.gprs.rdx, L2_PORT);
	l1_assert_unswitched_state();
	svm_stgi();
	GUEST_DONE();
}

/*
 * Saved at the exit of L2's first instruction (an OUT to the host): KVM has
 * entered L2 by then, so RUN_PENDING is clear.  Restored, L2 goes on with
 * its next instruction.
 */
TEST(migrate_at_l2_first_insn)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_l2_out_first, &vcpu);
	struct vcpu_state *st;
	struct ucall uc;

	expect_sync(vcpu, &uc, SYNC_L1_READY);
	TEST_ASSERT_EQ(expect_l2_out(vcpu, 1), 0x5a);
	st = migrate(&vm, &vcpu);
	TEST_ASSERT_EQ(st->nested.s.flags, NS_GUEST_MODE | NS_GIF_SET);
	TEST_ASSERT_EQ(st->nested.s.hdr.svm.vmcb_pa, svm_env.vmcb_gpa);
	TEST_ASSERT_EQ(st->regs.rip, (uint64_t)l2_out_first_end);
	TEST_ASSERT_EQ(ns_vmcb(&st->nested)->save.rip, (uint64_t)svm_vmrun_insn + 3);
	expect_done(vcpu);
	vm_free(vm);
}

static void set_guest_debug(struct kvm_vcpu *vcpu, uint32_t control)
{
	struct kvm_guest_debug dbg = { .control = control };

	vcpu_ioctl(vcpu, KVM_SET_GUEST_DEBUG, &dbg, "KVM_SET_GUEST_DEBUG");
}

/*
 * Saved between L1's VMRUN and L2's first instruction: single-stepping L1
 * (KVM_GUESTDBG_SINGLESTEP) stops after the VMRUN, in guest mode at L2's
 * first instruction, with RUN_PENDING set.  Restored into a fresh vCPU with
 * RUN_PENDING, L2 runs from its first instruction: its OUT reaches the host
 * once.
 */
TEST(migrate_run_pending)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_l2_out_first, &vcpu);
	struct vcpu_state *st;
	struct kvm_regs regs;
	struct ucall uc;
	int steps = 0;

	if (!kvm_check_cap(KVM_CAP_SET_GUEST_DEBUG))
		SKIP("no KVM_CAP_SET_GUEST_DEBUG");
	expect_sync(vcpu, &uc, SYNC_L1_READY);
	set_guest_debug(vcpu, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
	do {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_DEBUG);
		vcpu_regs_get(vcpu, &regs);
		TEST_ASSERT(++steps < 500, "L1 reaches VMRUN within 500 steps");
	} while (regs.rip != (uint64_t)svm_vmrun_insn);
	/* One step more runs the VMRUN. */
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_DEBUG);
	set_guest_debug(vcpu, 0);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT_EQ(regs.rip, (uint64_t)l2_out_first);

	st = migrate(&vm, &vcpu);
	TEST_ASSERT_EQ(st->nested.s.flags, NS_GUEST_MODE | NS_RUN_PENDING | NS_GIF_SET);
	TEST_ASSERT_EQ(st->nested.s.size, NS_FULL_SIZE);
	TEST_ASSERT_EQ(st->nested.s.hdr.svm.vmcb_pa, svm_env.vmcb_gpa);
	TEST_ASSERT_EQ(ns_vmcb(&st->nested)->save.rip, (uint64_t)svm_vmrun_insn + 3);
	TEST_ASSERT_EQ(st->regs.rip, (uint64_t)l2_out_first);

	TEST_ASSERT_EQ(expect_l2_out(vcpu, 1), 0x5a);
	/* Entering L2 ended the pending VMRUN. */
	complete_pending_io(vcpu);
	memset(&st->nested, 0, sizeof(st->nested));
	TEST_ASSERT_EQ(get_nested(vcpu, &st->nested, sizeof(st->nested)), 0);
	TEST_ASSERT_EQ(st->nested.s.flags, NS_GUEST_MODE | NS_GIF_SET);
	expect_done(vcpu);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

static void l1_gif_clear_across_move(void)
{
	svm_l1_enable();
	l1_set_unswitched_state();
	xapic_enable();
	svm_clgi();
	asm volatile("sti");
	xapic_icr(0, ICR_SELF | ICR_FIXED | VEC_IPI);
	l1_spin(100);
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 0);
	/* The host moves the vCPU here and sends the new one an NMI. */
	GUEST_SYNC(SYNC_GIF_CLEAR);
	l1_spin(1000);
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 0);
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 0);
	GUEST_ASSERT(apic_vec_set(xapic_read, APIC_IRR, VEC_IPI));
	svm_stgi();
	GUEST_ASSERT_EQ(ev_count[NMI_VECTOR], 1);
	GUEST_ASSERT_EQ(ev_count[VEC_IPI], 1);
	asm volatile("cli");
	l1_assert_unswitched_state();
	GUEST_DONE();
}

/*
 * Saved while L1 runs with GIF clear (CLGI, 15.17): flags 0.  In the fresh
 * vCPU GIF is still clear: a self-IPI pending from before the move and an
 * NMI sent after it stay held until L1's STGI.
 */
TEST(migrate_with_gif_clear)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = nested_vm_create(l1_gif_clear_across_move, &vcpu);
	struct vcpu_state *st;
	struct ucall uc;

	expect_sync(vcpu, &uc, SYNC_GIF_CLEAR);
	complete_pending_io(vcpu);
	assert_hdr_outside_l2(vcpu, 0);
	st = migrate(&vm, &vcpu);
	TEST_ASSERT_EQ(st->nested.s.flags, 0);
	TEST_ASSERT_EQ(st->nested.s.size, NS_HDR_SIZE);
	assert_hdr_outside_l2(vcpu, 0);
	vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	expect_done(vcpu);
	assert_hdr_outside_l2(vcpu, NS_GIF_SET);
	vm_free(vm);
}

/* ------------------------------------------------------------------------- */

/*
 * KVM_SET_VCPU_EVENTS moving the vCPU into SMM, or out of it, ends guest
 * mode without an exit to L1: L2 never runs in SMM (KVM's rule, as a VMM
 * restoring an SMM snapshot over a vCPU that was running L2 relies on).
 * Setting the same SMM state as before leaves L2 alone.
 */
TEST(smm_change_ends_guest_mode)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vcpu_events ev;
	union nested_buf n;
	struct ucall uc;
	struct kvm_vm *vm;

	if (!kvm_check_cap(KVM_CAP_X86_SMM))
		SKIP("KVM_CAP_X86_SMM is 0");
	vm = nested_vm_create(l1_l2_out_first, &vcpu);
	expect_sync(vcpu, &uc, SYNC_L1_READY);
	TEST_ASSERT_EQ(expect_l2_out(vcpu, 1), 0x5a);
	complete_pending_io(vcpu);

	/* The same SMM state: still in L2. */
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.smi.smm, 0);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags & NS_GUEST_MODE, NS_GUEST_MODE);

	/* Into SMM: guest mode is over, and stays over on the way out. */
	ev.smi.smm = 1;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags & NS_GUEST_MODE, 0);
	TEST_ASSERT_EQ(n.s.size, NS_HDR_SIZE);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.smm = 0;
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");
	TEST_ASSERT_EQ(get_nested(vcpu, &n, sizeof(n)), 0);
	TEST_ASSERT_EQ(n.s.flags & NS_GUEST_MODE, 0);
	vm_free(vm);
}
