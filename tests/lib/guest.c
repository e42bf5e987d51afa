// SPDX-License-Identifier: GPL-2.0
/*
 * Code that runs inside 64-bit guests: ucalls and exception dispatch.
 *
 * Everything here is called from guest context, where the C library is not
 * mapped, so it must not call into libc.
 */
#include "kvm_util.h"

/* Written by the host through vm_install_exception_handler(). */
void (*guest_exception_handlers[256])(struct ex_regs *regs);

/**
 * ucall() - send a message to the host and wait until it resumes the vCPU
 * @cmd: UCALL_SYNC, UCALL_DONE, UCALL_ABORT or UCALL_UNHANDLED
 * @a0: first argument; @a1..@a5 likewise
 */
void ucall(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
	   uint64_t a5)
{
	struct ucall uc = { .cmd = cmd, .args = { a0, a1, a2, a3, a4, a5 } };

	asm volatile("outb %%al, %%dx"
		     :: "a"(0), "d"(UCALL_PORT), "D"(&uc) : "memory");
}

/* Called by the common stub in guest_entry.S with the saved registers. */
void guest_exception_dispatch(struct ex_regs *regs);
void guest_exception_dispatch(struct ex_regs *regs)
{
	void (*handler)(struct ex_regs *regs) = guest_exception_handlers[regs->vector & 255];
	uint64_t cr2;

	if (handler) {
		handler(regs);
		return;
	}
	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	for (;;)
		ucall(UCALL_UNHANDLED, regs->vector, regs->rip, regs->error_code, cr2, 0, 0);
}

/* The return address of every 64-bit guest entry function: returning is "done". */
void guest_code_returned(void);
void guest_code_returned(void)
{
	for (;;)
		GUEST_DONE();
}

/* Counted by guest_msr_gp_handler(): #GPs from the guest's RDMSR/WRMSR. */
volatile uint64_t guest_msr_gp_count;

/**
 * guest_msr_gp_handler() - count a #GP from RDMSR or WRMSR and skip the instruction
 * @regs: the guest's registers at the fault; RDMSR and WRMSR are 2 bytes
 *
 * Install it with vm_install_exception_handler(vm, 13, guest_msr_gp_handler).
 */
void guest_msr_gp_handler(struct ex_regs *regs)
{
	guest_msr_gp_count++;
	regs->rip += 2;
}

/**
 * guest_wrmsr_faults() - WRMSR that may fault
 * @msr: MSR number
 * @value: the value
 *
 * Return: whether it raised #GP (needs guest_msr_gp_handler()).
 */
bool guest_wrmsr_faults(uint32_t msr, uint64_t value)
{
	uint64_t before = guest_msr_gp_count;

	guest_wrmsr(msr, value);
	return guest_msr_gp_count != before;
}

/**
 * guest_rdmsr_faults() - RDMSR that may fault
 * @msr: MSR number
 *
 * Return: whether it raised #GP (needs guest_msr_gp_handler()).
 */
bool guest_rdmsr_faults(uint32_t msr)
{
	uint64_t before = guest_msr_gp_count;

	(void)guest_rdmsr(msr);
	return guest_msr_gp_count != before;
}
