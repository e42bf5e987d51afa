/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VMRUN with the guest's general-purpose registers.
 *
 * void mkvm_svm_vmrun(u64 vmcb_pa, unsigned long *regs, u64 host_save_pa)
 *
 * VMRUN itself switches RAX, RSP, RIP, RFLAGS, the segment and control
 * registers (APM 15.5); the other GPRs are ours to load and store, from
 * regs[] in instruction-encoding order.  FS, GS, TR, LDTR and the syscall
 * MSRs are switched with VMLOAD/VMSAVE (APM 15.5.2): the host's into
 * host_save_pa before, and back after, so nothing may touch per-CPU data
 * (GS) between VMRUN and the last VMLOAD.  The caller runs with GIF clear.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>
#include "../guest_gprs.h"

	.section .noinstr.text, "ax"

SYM_FUNC_START(mkvm_svm_vmrun)
	MKVM_PUSH_CALLEE_SAVED
	push %rdx		/* 16(%rsp): host save area */
	push %rsi		/* 8(%rsp): regs */
	push %rdi		/* 0(%rsp): guest VMCB */

	mov %rdx, %rax
	vmsave %rax

	mov %rsi, %rax
	MKVM_LOAD_GUEST_GPRS %rax

	mov (%rsp), %rax
	vmload %rax
	/*
	 * Where the host clears CPU buffers for guests (MDS, TSA), do it as
	 * the last thing before the guest runs, so that nothing the host
	 * touched on the way here can be sampled by it.
	 */
	VM_CLEAR_CPU_BUFFERS
	vmrun %rax
	vmsave %rax

	mov 8(%rsp), %rax
	MKVM_SAVE_GUEST_GPRS %rax

	mov 16(%rsp), %rax
	vmload %rax

	/*
	 * The guest may have filled the return stack buffer and trained the
	 * return predictor: refill and untrain before the host's first RET,
	 * as the host's own entry code does (SpectreRSB, Retbleed, SRSO).
	 */
	FILL_RETURN_BUFFER %rax, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT
	UNTRAIN_RET
	/* The host's SRSO mode may ask for a full barrier on every exit instead. */
	ALTERNATIVE "", "call entry_ibpb", X86_FEATURE_IBPB_ON_VMEXIT

	MKVM_CLEAR_GUEST_GPRS

	add $24, %rsp
	MKVM_POP_CALLEE_SAVED
	RET
SYM_FUNC_END(mkvm_svm_vmrun)
