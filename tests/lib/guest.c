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

/**
 * guest_exception_report() - an exception handler that reports to the host
 * @regs: the guest's registers at the exception
 *
 * Sends UCALL_EXCEPTION with the vector, error code, CR2, RIP, CS and the
 * address of @regs, which the host may read and change in guest memory
 * (ucall_ex_regs()).  When the host resumes the vCPU, an exception from
 * CPL 3 ends the guest_user_call() that ran the code, which returns
 * GUEST_USER_FAULTED(vector); one from CPL 0 returns to regs->rip, so the
 * host moves it on unless the instruction is to run again.
 *
 * Install it with vm_install_exception_handler(vm, vector, guest_exception_report).
 */
void guest_exception_report(struct ex_regs *regs)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	ucall(UCALL_EXCEPTION, regs->vector, regs->error_code, cr2, regs->rip, regs->cs,
	      (uint64_t)regs);
	if ((regs->cs & 3) == 3)
		guest_user_abort(regs, GUEST_USER_FAULTED(regs->vector));
}

/* The 64-bit TSS (SDM vol. 3 7.7), without the I/O bitmap. */
struct tss64 {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

/* What guest_user_enter() (guest_entry.S) takes; the offsets are its. */
struct guest_user_entry {
	uint64_t fn;		/* 0 */
	uint64_t rflags;	/* 8 */
	uint64_t args[4];	/* 16: RDI, RSI, RDX, RCX at CPL 3 */
	uint64_t tss;		/* 48: where RSP0 goes, at +4 */
	uint64_t cs, ss;	/* 56, 64 */
	uint64_t rsp;		/* 72 */
};

uint64_t guest_user_enter(const struct guest_user_entry *e);
extern char guest_user_trampoline[], guest_user_resume[];

_Static_assert(GUEST_USER_STACK_SIZE % 4096 == 0, "the user stack shares no page");
uint8_t guest_user_stack[GUEST_USER_STACK_SIZE] __attribute__((aligned(4096)));

/* The TSS the vCPU's TR names, found from its descriptor in the GDT (SDM vol. 3 7.2.3). */
static struct tss64 *guest_tss(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr;
	const uint64_t *desc;
	uint16_t tr;

	asm volatile("sgdt %0; str %1" : "=m"(gdtr), "=r"(tr));
	desc = (const uint64_t *)(gdtr.base + (tr & ~7));
	return (struct tss64 *)(((desc[0] >> 16) & 0xffffff) | ((desc[0] >> 56) << 24) |
				(desc[1] << 32));
}

/**
 * guest_user_call() - run a function at CPL 3 and come back
 * @fn: the function, in pages with the U bit
 * @rflags: its RFLAGS (bit 1 is added); RFLAGS_IOPL3 allows IN and OUT
 * @a0: its first argument (RDI); @a1..@a3 likewise (RSI, RDX, RCX)
 *
 * @fn runs with CS = SEL_UCODE64, SS, DS and ES = SEL_UDATA, and RSP at the
 * top of guest_user_stack.  It returns to a trampoline that raises
 * GUEST_USER_RETURN_VECTOR; that handler (installed at VM creation) comes
 * back here.  The caller's RFLAGS, DS and ES are restored.
 *
 * Return: what @fn returned, or GUEST_USER_FAULTED(vector) when an exception
 * handler ended the call with guest_user_abort().
 */
uint64_t guest_user_call(guest_user_fn fn, uint64_t rflags, uint64_t a0, uint64_t a1,
			 uint64_t a2, uint64_t a3)
{
	struct guest_user_entry e = {
		.fn = (uint64_t)fn,
		.rflags = rflags | 2,
		.args = { a0, a1, a2, a3 },
		.tss = (uint64_t)guest_tss(),
		.cs = SEL_UCODE64,
		.ss = SEL_UDATA,
		.rsp = (uint64_t)guest_user_stack + sizeof(guest_user_stack),
	};

	return guest_user_enter(&e);
}

/**
 * guest_user_abort() - end the guest_user_call() whose code took an exception
 * @regs: the registers the exception saved; it must have come from CPL 3
 * @ret: what guest_user_call() returns
 *
 * The exception handler's return then goes to the kernel stack the call
 * left in TSS.RSP0, where guest_user_enter() saved the caller's registers.
 */
void guest_user_abort(struct ex_regs *regs, uint64_t ret)
{
	if ((regs->cs & 3) != 3)
		for (;;)
			ucall(UCALL_UNHANDLED, regs->vector, regs->rip, regs->error_code, 0, 0, 0);
	regs->rax = ret;
	regs->rip = (uint64_t)guest_user_resume;
	regs->cs = SEL_CODE64;
	regs->ss = SEL_DATA;
	regs->rsp = guest_tss()->rsp0;
	regs->rflags = 2;	/* guest_user_resume restores the caller's */
}

/* GUEST_USER_RETURN_VECTOR: the user function returned its value in RAX. */
void guest_user_return_handler(struct ex_regs *regs);
void guest_user_return_handler(struct ex_regs *regs)
{
	guest_user_abort(regs, regs->rax);
}
