/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VMLAUNCH/VMRESUME with the guest's general-purpose registers.
 *
 * int mkvm_vmx_vmenter(unsigned long *regs, bool launched)
 *
 * The VMCS switches RSP, RIP, RFLAGS, the segment and control registers
 * (SDM vol. 3 26.3.2, 27.5); the other GPRs are ours to load and store,
 * from regs[] in instruction-encoding order.  A VM exit lands at
 * mkvm_vmx_vmexit (HOST_RIP) with RSP at HOST_RSP, which is written here
 * before each entry: the stack then holds what the exit path needs.
 * Returns 0 after a VM exit, 1 when the instruction itself failed (VMfail,
 * SDM vol. 3 31.2): the error is in VM_INSTRUCTION_ERROR.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/msr-index.h>
#include <asm/nospec-branch.h>
#include <asm/percpu.h>
#include "../guest_gprs.h"
#include <asm/segment.h>
#include <asm/unwind_hints.h>

/* The host-state RSP field's encoding (SDM vol. 3 appendix B.4.4). */
#define HOST_RSP_FIELD 0x6c14


	.section .noinstr.text, "ax"

SYM_FUNC_START(mkvm_vmx_vmenter)
	MKVM_PUSH_CALLEE_SAVED
	push %rdi		/* 8(%rsp): regs */
	movzbl %sil, %esi
	push %rsi		/* 0(%rsp): launched */

	mov $HOST_RSP_FIELD, %eax
	vmwrite %rsp, %rax
	jna .Lfail

	mov %rdi, %rax
	MKVM_LOAD_GUEST_GPRS %rax
	mov MKVM_GPR(0)(%rax), %rax

	/*
	 * Where the host clears CPU buffers for guests (MDS), do it as the
	 * last thing before the guest runs.  VERW changes ZF, so the launch
	 * state is tested from memory after it.
	 */
	VM_CLEAR_CPU_BUFFERS
	cmpb $0, (%rsp)
	/* The exit path below is reached by VM exit only, with this stack. */
	UNWIND_HINT_SAVE
	je .Llaunch
	vmresume
	jmp .Lfail_guest_regs
.Llaunch:
	vmlaunch
.Lfail_guest_regs:
	/* VMfail: the guest's values are in the registers; drop them. */
	mov $1, %eax
	jmp .Lclear

SYM_INNER_LABEL(mkvm_vmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	push %rax
	mov 16(%rsp), %rax	/* regs, above the guest's RAX and launched */
	MKVM_SAVE_GUEST_GPRS %rax
	popq MKVM_GPR(0)(%rax)

	/*
	 * Legacy IBRS only restricts the predictions made before it was
	 * written: the host's SPEC_CTRL is written again after the guest ran,
	 * before the first RET, where the host uses IBRS in the kernel.
	 */
	ALTERNATIVE "jmp .Lspec_ctrl_done", "", X86_FEATURE_KERNEL_IBRS
	mov $MSR_IA32_SPEC_CTRL, %ecx
	mov PER_CPU_VAR(x86_spec_ctrl_current), %eax
	mov PER_CPU_VAR(x86_spec_ctrl_current + 4), %edx
	wrmsr
.Lspec_ctrl_done:
	/*
	 * The guest may have filled the return stack buffer (or, with eIBRS,
	 * left its last entries to be underflowed into): refill it before the
	 * host's first RET, as the host's own entry code does, and clear the
	 * branch history where the host asks (BHI).
	 */
	FILL_RETURN_BUFFER %rax, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT, \
		X86_FEATURE_RSB_VMEXIT_LITE
	CLEAR_BRANCH_HISTORY_VMEXIT
	xor %eax, %eax

.Lclear:
	MKVM_CLEAR_GUEST_GPRS
	jmp .Lout

.Lfail:
	mov $1, %eax
.Lout:
	add $16, %rsp
	MKVM_POP_CALLEE_SAVED
	RET
SYM_FUNC_END(mkvm_vmx_vmenter)

/*
 * void mkvm_vmx_call_handler(unsigned long entry)
 *
 * An interrupt or NMI that arrived while the guest ran made a VM exit
 * instead of reaching the host (SDM vol. 3 25.2, 27.2.2: the interrupt was
 * acknowledged on the exit): give it to the host's handler at @entry as
 * the CPU would have, with an interrupt frame on this stack, so that the
 * handler's IRET comes back here.  Interrupts stay disabled: the frame's
 * RFLAGS are the current ones.
 */
SYM_FUNC_START(mkvm_vmx_call_handler)
	push %rbp
	mov %rsp, %rbp
	and $-16, %rsp
	push $__KERNEL_DS
	push %rbp
	pushf
	push $__KERNEL_CS
	CALL_NOSPEC rdi
	leave
	RET
SYM_FUNC_END(mkvm_vmx_call_handler)
