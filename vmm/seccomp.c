// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's seccomp filter (Documentation/vmm.rst, "Confinement"). Once the
 * VM, its devices and its threads exist, every thread of the process may
 * make only the system calls that running the guest needs: ioctl only with
 * the requests of the run loop, the interrupt lines and the terminal, mmap
 * and mprotect never executable, tgkill only the vCPU kick to this process.
 * Any other call, and any call through another system call ABI (i386's
 * int 0x80, x32), kills the whole process with SIGSYS.
 *
 * The program is classic BPF written by hand (the kernel's
 * Documentation/userspace-api/seccomp_filter.rst); the VMM does not use
 * libseccomp. x86-64 only, like the rest of the VMM.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>

#include "vmm.h"

#if !defined(__x86_64__)
#error "the seccomp filter knows only the x86-64 system call ABI"
#endif

/* Where the filter reads a system call's number, ABI and arguments. */
#define DATA_NR		offsetof(struct seccomp_data, nr)
#define DATA_ARCH	offsetof(struct seccomp_data, arch)
/* The low 32 bits of an argument (x86-64 is little-endian). */
#define DATA_ARG_LO(i)	offsetof(struct seccomp_data, args[i])

#define KILL		SECCOMP_RET_KILL_PROCESS

/*
 * System calls allowed whatever their arguments, and why. The numbers are
 * compared exactly, so the x32 ABI's (__X32_SYSCALL_BIT set, same audit
 * arch) never match.
 */
static const int plain_calls[] = {
	SYS_read,		/* stdin, eventfds, the exit pipe */
	SYS_write,		/* guest output, stderr, irqfds, the exit pipe */
	SYS_readv,		/* tap: received frames */
	SYS_writev,		/* tap: transmitted frames */
	SYS_preadv,		/* virtio-blk reads */
	SYS_pwritev,		/* virtio-blk writes */
	SYS_fdatasync,		/* virtio-blk flush */
	SYS_epoll_wait,		/* the I/O thread */
	SYS_epoll_pwait,	/* ... as some C libraries implement epoll_wait() */
	SYS_epoll_ctl,		/* the I/O thread watches taps and stdin on and off */
	SYS_futex,		/* dev_lock, stdio locks, pthread_join */
	SYS_getrandom,		/* virtio-rng */
	SYS_clock_gettime,	/* when the vDSO falls back: the end's join timeout */
	SYS_time,		/* the RTC, when the vDSO falls back */
	SYS_getpid,		/* pthread_kill() names the process to tgkill */
	SYS_rt_sigprocmask,	/* pthread_kill(), thread exit */
	SYS_rt_sigreturn,	/* return from the kick and SIGTERM/SIGINT/SIGHUP handlers */
	SYS_restart_syscall,	/* a timed futex wait interrupted by a signal */
	SYS_munmap,		/* malloc, thread stacks after a join */
	SYS_madvise,		/* malloc and thread exit give memory back */
	SYS_brk,		/* malloc */
	SYS_exit,		/* a vCPU thread ends */
	SYS_exit_group,		/* the process ends */
};

/*
 * ioctl requests allowed on any descriptor: none of them means anything on
 * /dev/kvm itself, and those that create VMs, vCPUs, memory slots or taps
 * are not here.
 */
static const uint32_t ioctl_requests[] = {
	KVM_RUN,		/* the vCPU threads */
	KVM_GET_REGS,		/* the register dump after a fatal exit */
	KVM_GET_SREGS,		/* ... */
	KVM_IRQ_LINE,		/* the UART's and the other legacy lines */
	KVM_SET_GSI_ROUTING,	/* the guest programs an MSI-X vector */
	KVM_IOEVENTFD,		/* the guest moves a virtio BAR */
	TCSETS,			/* the terminal restored: tcsetattr(TCSANOW)... */
	TCGETS,			/* ... which reads it back to check (glibc) */
};

struct bpf {
	struct sock_filter *insn;
	unsigned int n, max;
};

/* Append one instruction; returns its index (an overflow is caught at the end). */
static unsigned int emit(struct bpf *b, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (b->n < b->max)
		b->insn[b->n] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
	return b->n++;
}

static void load(struct bpf *b, uint32_t off)
{
	emit(b, BPF_LD | BPF_W | BPF_ABS, off, 0, 0);
}

static void ret(struct bpf *b, uint32_t action)
{
	emit(b, BPF_RET | BPF_K, action, 0, 0);
}

/* "If A == k, return ALLOW" (falls through otherwise). */
static void allow_if(struct bpf *b, uint32_t k)
{
	emit(b, BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1);
	ret(b, SECCOMP_RET_ALLOW);
}

/*
 * A block for system call @nr that checks its arguments: it starts with
 * "if the number is not @nr, skip the block", and the block always returns.
 * block_end() fills in the skip.
 */
static unsigned int block_start(struct bpf *b, int nr)
{
	return emit(b, BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 0);
}

static void block_end(struct bpf *b, unsigned int start)
{
	unsigned int skip = b->n - start - 1;

	if (start < b->max)
		b->insn[start].jf = skip <= 255 ? skip : 0;
	if (skip > 255)		/* too long to jump over: fail the build */
		b->n = b->max + 1;
}

/* mmap and mprotect: anything but executable memory. */
static void no_exec_block(struct bpf *b, int nr)
{
	unsigned int start = block_start(b, nr);

	load(b, DATA_ARG_LO(2));
	emit(b, BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 1, 0);
	ret(b, SECCOMP_RET_ALLOW);
	ret(b, KILL);
	block_end(b, start);
}

/**
 * seccomp_build_filter() - the VMM's filter program
 * @prog: where to write it
 * @max: room in @prog, in instructions (SECCOMP_MAX_INSNS is enough)
 * @pid: the VMM's process id, the only one tgkill may signal
 *
 * Return: the number of instructions, or 0 when @max is too small.
 */
unsigned int seccomp_build_filter(struct sock_filter *prog, unsigned int max, pid_t pid)
{
	struct bpf b = { .insn = prog, .max = max };
	unsigned int start;

	/* Another ABI's system call numbers mean other calls: refuse them all. */
	load(&b, DATA_ARCH);
	emit(&b, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	ret(&b, KILL);

	load(&b, DATA_NR);
	for (size_t i = 0; i < sizeof(plain_calls) / sizeof(plain_calls[0]); i++)
		allow_if(&b, plain_calls[i]);

	/* ioctl: the kernel reads the request as 32 bits, and so does the filter. */
	start = block_start(&b, SYS_ioctl);
	load(&b, DATA_ARG_LO(1));
	for (size_t i = 0; i < sizeof(ioctl_requests) / sizeof(ioctl_requests[0]); i++)
		allow_if(&b, ioctl_requests[i]);
	ret(&b, KILL);
	block_end(&b, start);

	/* malloc's arenas and thread stacks; never code. */
	no_exec_block(&b, SYS_mmap);
	no_exec_block(&b, SYS_mprotect);

	/* tgkill(pid, tid, SIG_KICK): vcpu_kick(), to this process only. */
	start = block_start(&b, SYS_tgkill);
	load(&b, DATA_ARG_LO(0));
	emit(&b, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)pid, 0, 3);
	load(&b, DATA_ARG_LO(2));
	allow_if(&b, SIG_KICK);
	ret(&b, KILL);
	block_end(&b, start);

	ret(&b, KILL);
	return b.n <= max ? b.n : 0;
}

/**
 * seccomp_confine() - the filter on every thread of the process
 *
 * Sets no_new_privs (which an unprivileged process needs for a filter)
 * and installs the filter with SECCOMP_FILTER_FLAG_TSYNC, so that the
 * threads already running get it too, atomically.
 *
 * Return: 0, or -1 with errno set.
 */
int seccomp_confine(void)
{
	struct sock_filter insn[SECCOMP_MAX_INSNS];
	struct sock_fprog prog = { .filter = insn };
	long r;

	prog.len = seccomp_build_filter(insn, SECCOMP_MAX_INSNS, getpid());
	if (!prog.len) {
		errno = E2BIG;
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog);
	if (r > 0) {
		/* The id of a thread that has a filter of its own: none of ours does. */
		errno = ESRCH;
		return -1;
	}
	return r ? -1 : 0;
}
