/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-to-host messages ("ucalls") and guest-side helpers.
 *
 * The guest builds a struct ucall on its stack, puts its address in RDI and
 * writes one byte to UCALL_PORT; the host sees KVM_EXIT_IO on that port,
 * reads RDI and the struct through the guest's page tables.
 */
#ifndef MINIKVM_TEST_UCALL_H
#define MINIKVM_TEST_UCALL_H

#include <stdbool.h>
#include <stdint.h>

#define UCALL_PORT 0x7f0
#define UCALL_MAX_ARGS 6

enum {
	UCALL_NONE,
	UCALL_SYNC,		/* args[0]: stage, args[1..]: values */
	UCALL_DONE,
	UCALL_ABORT,		/* args: file, line, expr, a, b, has_values */
	UCALL_UNHANDLED,	/* args: vector, rip, error code, cr2 */
	UCALL_EXCEPTION,	/* args: vector, error code, cr2, rip, cs, &struct ex_regs */
};

struct ucall {
	uint64_t cmd;
	uint64_t args[UCALL_MAX_ARGS];
};

/* Registers saved by the guest's exception entry (lib/guest_entry.S). */
struct ex_regs {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};

void ucall(uint64_t cmd, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
	   uint64_t a5);

#define GUEST_SYNC(stage) ucall(UCALL_SYNC, (stage), 0, 0, 0, 0, 0)
#define GUEST_SYNC_ARGS(stage, a, b, c) ucall(UCALL_SYNC, (stage), (a), (b), (c), 0, 0)
#define GUEST_DONE() ucall(UCALL_DONE, 0, 0, 0, 0, 0, 0)

#define GUEST_ASSERT(cond)							\
	do {									\
		if (!(cond))							\
			ucall(UCALL_ABORT, (uint64_t)__FILE__, __LINE__,	\
			      (uint64_t)#cond, 0, 0, 0);			\
	} while (0)

#define GUEST_ASSERT_EQ(a, b)							\
	do {									\
		uint64_t __ga = (uint64_t)(a), __gb = (uint64_t)(b);		\
		if (__ga != __gb)						\
			ucall(UCALL_ABORT, (uint64_t)__FILE__, __LINE__,	\
			      (uint64_t)(#a " == " #b), __ga, __gb, 1);		\
	} while (0)

/* Small guest-side wrappers for instructions tests use often. */
static inline void guest_cpuid(uint32_t fn, uint32_t idx, uint32_t *a, uint32_t *b,
			       uint32_t *c, uint32_t *d)
{
	asm volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(fn), "c"(idx));
}

/* MOV from CR0, CR3 or CR4. */
#define GUEST_READ_CR(n)							\
static inline uint64_t guest_read_cr##n(void)					\
{										\
	uint64_t v;								\
										\
	asm volatile("mov %%cr" #n ", %0" : "=r"(v));				\
	return v;								\
}
GUEST_READ_CR(0)
GUEST_READ_CR(3)
GUEST_READ_CR(4)

static inline uint64_t guest_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | ((uint64_t)hi << 32);
}

static inline void guest_wrmsr(uint32_t msr, uint64_t val)
{
	asm volatile("wrmsr" :: "c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)));
}

/* lib/guest.c: RDMSR/WRMSR that may raise #GP, with its counting handler. */
extern volatile uint64_t guest_msr_gp_count;
void guest_msr_gp_handler(struct ex_regs *regs);
bool guest_wrmsr_faults(uint32_t msr, uint64_t value);
bool guest_rdmsr_faults(uint32_t msr);

/*
 * lib/guest.c: ring 3 (long mode).  guest_user_call() runs @fn at CPL 3
 * with @rflags (IOPL 3 lets it use IN and OUT) and its four arguments, on
 * the library's user stack, and returns what @fn returned.  The VM's pages
 * @fn touches need the U bit (virt_set_user()); the user stack and the
 * return path have it.  Exceptions from ring 3 land on the kernel stack of
 * the call (TSS.RSP0).  One vCPU at a time may run user code: the TSS and
 * the user stack are the VM's.
 */
typedef uint64_t (*guest_user_fn)(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3);

#define RFLAGS_IOPL3 (3ULL << 12)
/* What guest_user_call() returns when guest_exception_report() ended it. */
#define GUEST_USER_FAULTED(vector) (0xfa17ed0000000000ULL | (vector))

/* The user stack: whole pages of their own, which get the U bit at VM creation. */
#define GUEST_USER_STACK_SIZE (4 * 4096)
extern uint8_t guest_user_stack[GUEST_USER_STACK_SIZE];

uint64_t guest_user_call(guest_user_fn fn, uint64_t rflags, uint64_t a0, uint64_t a1,
			 uint64_t a2, uint64_t a3);
void guest_user_abort(struct ex_regs *regs, uint64_t ret);
void guest_exception_report(struct ex_regs *regs);

static inline void guest_outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" :: "a"(v), "Nd"(port));
}

static inline void guest_outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" :: "a"(v), "Nd"(port));
}

static inline void guest_outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" :: "a"(v), "Nd"(port));
}

static inline uint8_t guest_inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t guest_inw(uint16_t port)
{
	uint16_t v;

	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t guest_inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void guest_hlt(void)
{
	asm volatile("hlt");
}

#endif
