/* SPDX-License-Identifier: GPL-2.0 */
/*
 * 64-bit guest exception entry: 256 IDT stubs of 16 bytes each, so that the
 * host computes stub addresses as guest_idt_stubs + 16 * vector, and a common
 * path that saves the GPRs in struct ex_regs order and calls the C dispatcher.
 */
	.text
	.globl guest_idt_stubs
	.p2align 4
guest_idt_stubs:
	vector = 0
	.rept 256
	.p2align 4
	/* Vectors that push an error code (SDM vol. 3 6.15, APM vol. 2 8.2). */
	.if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || \
	    (vector == 21) || (vector == 29) || (vector == 30)
	.else
	pushq $0
	.endif
	pushq $vector
	jmp guest_exception_common
	vector = vector + 1
	.endr
	.globl guest_idt_stubs_end
guest_idt_stubs_end:

guest_exception_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call guest_exception_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp		/* vector and error code */
	iretq

	/* Pushed as the return address of every guest entry function. */
	.globl guest_return_trampoline
guest_return_trampoline:
	call guest_code_returned
	hlt

	/*
	 * uint64_t guest_user_enter(const struct guest_user_entry *e): IRETQ to
	 * CPL 3 at guest_user_trampoline (lib/guest.c has the layout of *e).
	 * The callee-saved registers, DS, ES and RFLAGS stay on this stack, whose
	 * top goes to TSS.RSP0: exceptions from ring 3 push their frames below
	 * it, and guest_user_abort() returns to guest_user_resume with RSP there.
	 */
	.text
	.globl guest_user_enter
guest_user_enter:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movl %ds, %eax
	pushq %rax
	movl %es, %eax
	pushq %rax
	pushfq			/* 9 pushes after the return address: RSP is 16-byte aligned */
	movq 48(%rdi), %rax
	movq %rsp, 4(%rax)	/* TSS.RSP0 */
	movq 64(%rdi), %rax
	movl %eax, %ds
	movl %eax, %es
	pushq %rax		/* SS */
	pushq 72(%rdi)		/* RSP */
	pushq 8(%rdi)		/* RFLAGS */
	pushq 56(%rdi)		/* CS */
	leaq guest_user_trampoline(%rip), %rax
	pushq %rax		/* RIP */
	movq 0(%rdi), %rax
	movq 24(%rdi), %rsi
	movq 32(%rdi), %rdx
	movq 40(%rdi), %rcx
	movq 16(%rdi), %rdi
	iretq

	.globl guest_user_resume
guest_user_resume:
	popfq
	popq %rcx
	movl %ecx, %es
	popq %rcx
	movl %ecx, %ds
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret

	/*
	 * Where user code starts and returns: a page of its own, which the host
	 * gives the U bit at VM creation.  RAX is the function.
	 */
	.section .text.guest_user, "ax", @progbits
	.p2align 12
	.globl guest_user_trampoline
guest_user_trampoline:
	call *%rax
	int $0xee		/* GUEST_USER_RETURN_VECTOR */
	ud2
	.p2align 12
	.globl guest_user_trampoline_end
guest_user_trampoline_end:

	.section .note.GNU-stack, "", @progbits
