/* SPDX-License-Identifier: GPL-2.0 */
/*
 * For the vendors' entry code (svm/vmenter.S, vmx/vmenter.S): the guest's
 * general-purpose registers to and from regs[], in instruction-encoding
 * order, through a base register that is not among them.  RAX and RSP are
 * the vendor's business: SVM's VMRUN switches both, VMX's VMCS only RSP.
 * Also the C caller's callee-saved registers around it, and clearing what
 * the guest left in the others.
 */
#ifndef MINIKVM_GUEST_GPRS_H
#define MINIKVM_GUEST_GPRS_H

#define MKVM_GPR(n) ((n) * 8)

/* regs[] into RCX, RDX, RBX, RBP, RSI, RDI, R8-R15, from \base (RAX). */
.macro MKVM_LOAD_GUEST_GPRS base
	mov MKVM_GPR(1)(\base), %rcx
	mov MKVM_GPR(2)(\base), %rdx
	mov MKVM_GPR(3)(\base), %rbx
	mov MKVM_GPR(5)(\base), %rbp
	mov MKVM_GPR(6)(\base), %rsi
	mov MKVM_GPR(7)(\base), %rdi
	mov MKVM_GPR(8)(\base), %r8
	mov MKVM_GPR(9)(\base), %r9
	mov MKVM_GPR(10)(\base), %r10
	mov MKVM_GPR(11)(\base), %r11
	mov MKVM_GPR(12)(\base), %r12
	mov MKVM_GPR(13)(\base), %r13
	mov MKVM_GPR(14)(\base), %r14
	mov MKVM_GPR(15)(\base), %r15
.endm

/* The C caller's registers that an entry function must keep (the x86-64 psABI), and a frame. */
.macro MKVM_PUSH_CALLEE_SAVED
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
.endm

.macro MKVM_POP_CALLEE_SAVED
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
.endm

/*
 * After the guest ran: no guest value left in a register for speculation
 * to use, even in those popped right after (RAX, RSP and RBP are the
 * vendor's).
 */
.macro MKVM_CLEAR_GUEST_GPRS
	xor %ecx, %ecx
	xor %edx, %edx
	xor %ebx, %ebx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
.endm

/* The same registers back into regs[] at \base. */
.macro MKVM_SAVE_GUEST_GPRS base
	mov %rcx, MKVM_GPR(1)(\base)
	mov %rdx, MKVM_GPR(2)(\base)
	mov %rbx, MKVM_GPR(3)(\base)
	mov %rbp, MKVM_GPR(5)(\base)
	mov %rsi, MKVM_GPR(6)(\base)
	mov %rdi, MKVM_GPR(7)(\base)
	mov %r8, MKVM_GPR(8)(\base)
	mov %r9, MKVM_GPR(9)(\base)
	mov %r10, MKVM_GPR(10)(\base)
	mov %r11, MKVM_GPR(11)(\base)
	mov %r12, MKVM_GPR(12)(\base)
	mov %r13, MKVM_GPR(13)(\base)
	mov %r14, MKVM_GPR(14)(\base)
	mov %r15, MKVM_GPR(15)(\base)
.endm

#endif
