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

	.section .note.GNU-stack, "", @progbits
