// SPDX-License-Identifier: GPL-2.0
/*
 * Real mode as a guest runs it: events through the vector table, the
 * privileged instructions of CPL 0, accesses beyond 64 KiB with a larger
 * segment limit ("unreal" mode), and the reset vector's CS, whose base is
 * not its selector << 4.  With unrestricted guest and on AMD the hardware
 * runs all of it; VMX without (ept=0) runs it in virtual-8086 mode and
 * completes the rest in software (Documentation/vmx.rst).
 */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_util.h"

/* The address of a label of a blob loaded at GUEST_CODE16_GPA, CS 0. */
#define AT(start, label) (GUEST_CODE16_GPA + ((label) - (start)))

static uint16_t *ivt(struct kvm_vm *vm)
{
	return gpa2hva(vm, 0);
}

static void set_vector(struct kvm_vm *vm, unsigned int v, uint16_t ip)
{
	ivt(vm)[2 * v] = ip;
	ivt(vm)[2 * v + 1] = 0;
}

static void expect_out(struct kvm_vcpu *vcpu, uint16_t port, struct kvm_regs *r)
{
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(vcpu->run->io.port, port);
	vcpu_regs_get(vcpu, r);
}

/*
 * An interrupt from KVM_INTERRUPT while the guest halts with IF set; the
 * handler reports the frame and its own FLAGS, then returns.
 */
extern const char irq_start[], irq_resume[], irq_handler[], irq_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "irq_start:\n"
    "	sti\n"
    "	hlt\n"
    "irq_resume:\n"
    "	pushf\n"
    "	pop %dx\n"
    "	out %al, $0x12\n"
    "	hlt\n"
    "irq_handler:\n"
    "	pushf\n"
    "	pop %dx\n"
    "	mov %sp, %bp\n"
    "	mov (%bp), %ax\n"
    "	mov 2(%bp), %bx\n"
    "	mov 4(%bp), %cx\n"
    "	out %al, $0x11\n"
    "	iret\n"
    "irq_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(interrupt_through_vector_table)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, irq_start, irq_end, &vcpu);
	struct kvm_interrupt irq = { .irq = 0x40 };
	struct kvm_regs r;

	set_vector(vm, 0x40, AT(irq_start, irq_handler));
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	TEST_ASSERT(vcpu->run->ready_for_interrupt_injection, "IF is set: ready for an interrupt");
	vcpu_ioctl(vcpu, KVM_INTERRUPT, &irq, "KVM_INTERRUPT");
	expect_out(vcpu, 0x11, &r);
	/* FLAGS, CS and IP pushed; IF clear in the handler (SDM vol. 3 21.1.4). */
	TEST_ASSERT_EQ(r.rax & 0xffff, AT(irq_start, irq_resume));
	TEST_ASSERT_EQ(r.rbx & 0xffff, 0);
	TEST_ASSERT_EQ(r.rcx & 0x0200, 0x0200);
	TEST_ASSERT_EQ(r.rdx & 0x0200, 0);
	TEST_ASSERT_EQ(r.rsp & 0xffff, 0xfff0 - 6);
	TEST_ASSERT_EQ(r.rflags & 0x0200, 0);
	expect_out(vcpu, 0x12, &r);
	TEST_ASSERT_EQ(r.rdx & 0x0200, 0x0200);
	TEST_ASSERT_EQ(r.rsp & 0xffff, 0xfff0);
	vm_free(vm);
}

/* #DE (a fault: IP of the DIV), INT3 (a trap: IP past it) and INT n. */
extern const char exc_start[], exc_div[], exc_int3_next[], exc_int_next[], exc_de[], exc_bp[],
	exc_soft[], exc_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "exc_start:\n"
    "	xor %cx, %cx\n"
    "	mov $1, %ax\n"
    "exc_div:\n"
    "	div %cx\n"
    "	int3\n"
    "exc_int3_next:\n"
    "	int $0x42\n"
    "exc_int_next:\n"
    "	out %al, $0x24\n"
    "	hlt\n"
    "exc_de:\n"			/* report the IP, then skip the 2-byte DIV */
    "	mov %sp, %bp\n"
    "	mov (%bp), %ax\n"
    "	out %al, $0x20\n"
    "	addw $2, (%bp)\n"
    "	iret\n"
    "exc_bp:\n"
    "	mov %sp, %bp\n"
    "	mov (%bp), %ax\n"
    "	out %al, $0x21\n"
    "	iret\n"
    "exc_soft:\n"
    "	mov %sp, %bp\n"
    "	mov (%bp), %ax\n"
    "	out %al, $0x22\n"
    "	iret\n"
    "exc_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(exceptions_through_vector_table)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, exc_start, exc_end, &vcpu);
	struct kvm_regs r;

	set_vector(vm, 0, AT(exc_start, exc_de));
	set_vector(vm, 3, AT(exc_start, exc_bp));
	set_vector(vm, 0x42, AT(exc_start, exc_soft));
	expect_out(vcpu, 0x20, &r);
	TEST_ASSERT_EQ(r.rax & 0xffff, AT(exc_start, exc_div));
	expect_out(vcpu, 0x21, &r);
	TEST_ASSERT_EQ(r.rax & 0xffff, AT(exc_start, exc_int3_next));
	expect_out(vcpu, 0x22, &r);
	TEST_ASSERT_EQ(r.rax & 0xffff, AT(exc_start, exc_int_next));
	expect_out(vcpu, 0x24, &r);
	TEST_ASSERT_EQ(r.rsp & 0xffff, 0xfff0);
	vm_free(vm);
}

/* The instructions that only CPL 0 may run, which real mode is. */
extern const char priv_start[], priv_gdtr[], priv_idtr[], priv_out[], priv_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "priv_start:\n"
    "	lgdt priv_gdtr - priv_start + 0x1000\n"
    "	sgdt priv_out - priv_start + 0x1000\n"
    "	lidt priv_idtr - priv_start + 0x1000\n"
    "	sidt priv_out - priv_start + 0x1006\n"
    "	mov %cr0, %eax\n"
    "	or $8, %eax\n"
    "	mov %eax, %cr0\n"
    "	mov %cr0, %esi\n"
    "	clts\n"
    "	mov %cr0, %edi\n"
    "	mov $0x277, %ecx\n"
    "	rdmsr\n"
    "	wbinvd\n"
    "	mov %eax, %ebp\n"
    "	out %al, $0x30\n"
    "	hlt\n"
    "priv_gdtr:\n"
    "	.word 0x1234\n"
    "	.long 0xab567800\n"		/* a 16-bit LGDT takes 24 bits of it */
    "priv_idtr:\n"
    "	.word 0x03ff\n"
    "	.long 0\n"
    "priv_out:\n"
    "	.fill 12, 1, 0xcc\n"
    "priv_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(privileged_instructions)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, priv_start, priv_end, &vcpu);
	uint8_t *out = gpa2hva(vm, AT(priv_start, priv_out));
	struct kvm_sregs s;
	struct kvm_regs r;
	uint32_t base;

	expect_out(vcpu, 0x30, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.gdt.base, 0x567800);
	TEST_ASSERT_EQ(s.gdt.limit, 0x1234);
	TEST_ASSERT_EQ(s.idt.base, 0);
	TEST_ASSERT_EQ(s.idt.limit, 0x3ff);
	/* SGDT with a 16-bit operand stores the base's low 24 bits and a zero byte. */
	TEST_ASSERT_EQ(out[0] | out[1] << 8, 0x1234);
	memcpy(&base, out + 2, 4);
	TEST_ASSERT_EQ(base & 0xffffff, 0x567800);
	TEST_ASSERT_EQ(out[6] | out[7] << 8, 0x3ff);
	TEST_ASSERT_EQ(r.rsi & 8, 8);		/* CR0.TS set by MOV */
	TEST_ASSERT_EQ(r.rdi & 8, 0);		/* and cleared by CLTS */
	TEST_ASSERT_EQ(r.rdi & 1, 0);
	TEST_ASSERT_EQ((uint32_t)r.rbp, 0x00070406);	/* PAT's reset value, low half */
	TEST_ASSERT_EQ((uint32_t)r.rdx, 0x00070406);
	TEST_ASSERT_EQ(s.cr0 & 9, 0);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vm_free(vm);
}

/* DS with a 4 GiB limit in real mode: 32-bit offsets reach past 64 KiB. */
#define UNREAL_GPA 0x30000
extern const char unreal_start[], unreal_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "unreal_start:\n"
    "	mov $0x30000, %ebx\n"
    "	movl $0x12345678, (%ebx)\n"
    "	mov (%ebx), %eax\n"
    "	addl $1, (%ebx)\n"
    "	movzbl 1(%ebx), %ecx\n"
    "	out %al, $0x40\n"
    "	hlt\n"
    "unreal_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(unreal_mode_beyond_64k)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, unreal_start, unreal_end, &vcpu);
	struct kvm_sregs s;
	struct kvm_regs r;

	vcpu_sregs_get(vcpu, &s);
	s.ds.limit = 0xffffffff;
	s.ds.g = 1;
	vcpu_sregs_set(vcpu, &s);
	expect_out(vcpu, 0x40, &r);
	TEST_ASSERT_EQ((uint32_t)r.rax, 0x12345678);
	TEST_ASSERT_EQ((uint32_t)r.rcx, 0x56);
	TEST_ASSERT_EQ(*(uint32_t *)gpa2hva(vm, UNREAL_GPA), 0x12345679);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.ds.limit, 0xffffffff);
	TEST_ASSERT_EQ(s.cr0 & 1, 0);
	vm_free(vm);
}

/*
 * kvm_intel without unrestricted guest delivers a real-mode NMI in software
 * and does not block NMIs until its handler's IRET, as the processor does
 * and minikvm does (Documentation/vmx.rst).
 */
static bool kvm_intel_without_nmi_blocking_in_real_mode(void)
{
	FILE *f = fopen("/sys/module/kvm_intel/parameters/unrestricted_guest", "r");
	char c = 0;

	if (!f)
		return false;
	if (fread(&c, 1, 1, f) != 1)
		c = 0;
	fclose(f);
	return c == 'N';
}

/* An NMI while IF is clear, and NMIs blocked until its handler's IRET. */
extern const char nmi_start[], nmi_resume[], nmi_handler[], nmi_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "nmi_start:\n"
    "	cli\n"
    "	hlt\n"
    "nmi_resume:\n"
    "	out %al, $0x51\n"
    "	hlt\n"
    "nmi_handler:\n"
    "	mov %sp, %bp\n"
    "	mov (%bp), %ax\n"
    "	out %al, $0x50\n"
    "	iret\n"
    "nmi_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(nmi_through_vector_table)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, nmi_start, nmi_end, &vcpu);
	struct kvm_vcpu_events ev;
	struct kvm_regs r;

	set_vector(vm, 2, AT(nmi_start, nmi_handler));
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	expect_out(vcpu, 0x50, &r);
	TEST_ASSERT_EQ(r.rax & 0xffff, AT(nmi_start, nmi_resume));
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	if (!kvm_intel_without_nmi_blocking_in_real_mode())
		TEST_ASSERT_EQ(ev.nmi.masked, 1);
	TEST_ASSERT_EQ(ev.nmi.pending, 0);
	expect_out(vcpu, 0x51, &r);
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT_EQ(ev.nmi.masked, 0);
	TEST_ASSERT_EQ(r.rflags & 0x0200, 0);
	vm_free(vm);
}

/* The reset vector: CS 0xf000 based at 0xffff0000, then a far JMP to normal real mode. */
extern const char reset_start[], reset_end[], target_start[], target_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "reset_start:\n"
    "	out %al, $0x60\n"
    "	ljmp $0x0100, $0x0000\n"
    "reset_end:\n"
    "target_start:\n"
    "	mov %cs, %ax\n"
    "	out %ax, $0x61\n"
    "	hlt\n"
    "target_end:\n"
    ".code64\n"
    ".popsection\n");

TEST(reset_vector_far_jump)
{
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm = vm_create_blob(VM_MODE_REAL, target_start, target_end, &vcpu);
	uint8_t *top = vm_add_memslot(vm, 2, 0, 0xffff0000, 0x10000);
	struct kvm_sregs s;
	struct kvm_regs r;

	memcpy(top + 0xfff0, reset_start, reset_end - reset_start);
	vcpu_sregs_get(vcpu, &s);
	s.cs = (struct kvm_segment){ .selector = 0xf000, .base = 0xffff0000, .limit = 0xffff,
				     .type = 0xb, .s = 1, .present = 1 };
	vcpu_sregs_set(vcpu, &s);
	vcpu_regs_get(vcpu, &r);
	r.rip = 0xfff0;
	vcpu_regs_set(vcpu, &r);
	expect_out(vcpu, 0x60, &r);
	expect_out(vcpu, 0x61, &r);
	TEST_ASSERT_EQ(*(uint16_t *)((char *)vcpu->run + vcpu->run->io.data_offset), 0x100);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cs.selector, 0x100);
	TEST_ASSERT_EQ(s.cs.base, 0x1000);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vm_free(vm);
}

