// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile guests.  Whatever a guest runs, every run must end in a defined
 * way -- a guest exception reported by the guest's own IDT, an exit the VMM
 * answers, a shutdown, an emulation failure, or a budget spent -- and the
 * host must survive it: KVM_RUN fails with nothing but EINTR, no exit reason
 * is one a VMM cannot expect, the test process lives, and the test
 * machine's kernel log stays clean (tools/testvm checks it after the run).
 *
 * random_bytes: a guest at CPL 0 executes random bytes, one fresh VM per
 * seed (FUZZ_SEEDS=N seeds, default 64).
 *
 * The emulator cases throw random but targeted instruction streams at the
 * paths where the hypervisor completes an instruction for the guest: MMIO
 * (a nested page fault on a GPA without a memslot), port I/O and string
 * port I/O (the I/O intercept).  A program is a short straight-line stream
 * of instructions generated for one random machine state:
 *
 * - emulator_mmio: MOV, MOVZX, MOVSX(D), the ALU group, TEST, XCHG, the
 *   string instructions and a tail of instructions minikvm's decoder does
 *   not know (INC, NEG, CMPXCHG, XADD, BT, shifts, SETcc, CMOVcc, SSE
 *   moves, MOVBE, segment loads, SGDT...), with random prefixes (operand
 *   and address size, segment overrides, REP, LOCK, redundant ones), REX
 *   bits, ModRM and SIB forms (RIP-relative, absolute, moffs), to window
 *   pages backed by MMIO or RAM; the VMM answers reads with random data;
 * - emulator_pio: IN and OUT, and INS and OUTS with and without REP, with a
 *   random RCX (page-sized, 2^16 and 2^32 boundaries, huge), RSI and RDI
 *   (page-crossing, non-canonical, the edge of the canonical half and of
 *   the address space), DF and IOPL;
 * - emulator_prot32: both kinds in 32-bit protected mode and in 16-bit code
 *   segments (16-bit ModRM forms), with random segment bases, limits,
 *   types (expand-down, read-only, execute-only, conforming), sizes and
 *   null segments, and without paging, with 32-bit paging and with PAE;
 * - emulator_race: 64-bit programs at CPL 3 while a second vCPU and a host
 *   thread rewrite their instruction bytes and the window's page-table
 *   entries, to race the emulator's fetch and page walk.
 *
 * The paging state is random too: each window page is backed by RAM or by
 * MMIO (below and above 4 GiB, at the top of MAXPHYADDR), user or
 * supervisor, read-only, NX, not present or with a reserved bit, and now
 * and then an entry above the leaf changes (or points at MMIO); CR0.WP,
 * CR0.AM, RFLAGS.AC, and CR4.SMEP, CR4.SMAP and EFER.NXE when the vCPU's
 * CPUID has them.  Programs run at CPL 0 or at CPL 3 (guest_user_call()
 * with or without IOPL 3).  Every exit is checked: an MMIO exit must be
 * for a GPA outside guest RAM, with 1 to 8 bytes; an I/O exit must have a
 * size of 1, 2 or 4 and its data inside the kvm_run mapping.
 *
 * A program that writes at CPL 0 must not write the guest's own page
 * tables, descriptor tables, stacks or code: the generator loads the
 * registers each memory operand uses and refuses accesses (and string
 * counts) that could reach them.  In the emulator cases random bytes run
 * only at CPL 3 (where the race rewrites code): at CPL 0 they could clear
 * CR0.PG under EFER.LME or arm DR7, which crash the test machine's CPU.
 * Documentation/testing.rst says what else the test machine's CPU does
 * differently, and what the cases found.
 *
 * Environment (the emulator cases):
 *   FUZZ_SEED=N          the seed, printed at the start of every case; each
 *                        case derives its own from it and its name
 *   FUZZ_EMUL_SECONDS=N  the budget of each case (default 3 s); without it,
 *                        FUZZ_SECONDS=N is shared by the four cases
 *   FUZZ_PROGRAMS=N      stop before program N (with FUZZ_SEED: replay up to
 *                        the program a failure names)
 *   FUZZ_FIRST=N         start at program N, in a fresh VM
 *   FUZZ_CUT=N           end each program after N instructions (the same
 *                        ones): to shrink a reproducer
 *   FUZZ_TRACE=1         print every program (state, code, outcome); =2
 *                        also the registers and page-table entries after it
 *
 * With one vCPU a seed replays exactly, up to programs cut short by the
 * time budget; emulator_race replays its programs, not their interleaving
 * with the writers.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"

#define CODE_GPA 0x400000ULL		/* identity-mapped, in slot 0 */
#define CODE_BYTES 4096
#define MAX_EXITS 200
#define MAX_SLICES 20			/* 20 ms timer slices before "still running" */

enum outcome { GUEST_EXCEPTION, SHUTDOWN, EMULATION_FAILURE, BUDGET, NR_OUTCOMES };
static const char *const outcome_names[] = { "exception", "shutdown", "emulation failure",
					     "budget spent" };

static sigset_t tick;

static void on_tick(int sig)
{
	(void)sig;
}

/* Take the pending tick, which stays blocked outside KVM_RUN. */
static void consume_tick(void)
{
	struct timespec zero = { 0, 0 };

	while (sigtimedwait(&tick, NULL, &zero) > 0)
		;
}

static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

static enum outcome run_seed(uint64_t seed)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, CODE_GPA);
	struct kvm_run *run = vcpu->run;
	uint8_t *code = gpa2hva(vm, CODE_GPA);
	int exits = 0, slices = 0;
	uint64_t s = seed;
	struct ucall uc;
	enum outcome out = BUDGET;

	struct {
		struct kvm_signal_mask hdr;
		uint64_t set;
	} unblocked = { .hdr.len = 8, .set = 0 };

	/* The tick is blocked in this thread except inside KVM_RUN. */
	vcpu_ioctl(vcpu, KVM_SET_SIGNAL_MASK, &unblocked, "KVM_SET_SIGNAL_MASK");
	for (int i = 0; i < CODE_BYTES; i++)
		code[i] = rnd(&s);
	while (exits < MAX_EXITS && slices < MAX_SLICES) {
		int r = __vcpu_run(vcpu);

		if (r < 0) {
			TEST_ASSERT(errno == EINTR, "seed %llu: KVM_RUN failed: %s",
				    (unsigned long long)seed, strerror(errno));
			consume_tick();
			slices++;
			continue;
		}
		exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (get_ucall(vcpu, &uc) == UCALL_UNHANDLED) {
				out = GUEST_EXCEPTION;
				goto done;
			}
			/* An IN reads whatever the page holds; the guest goes on. */
			break;
		case KVM_EXIT_MMIO:
		case KVM_EXIT_HLT:
			break;
		case KVM_EXIT_SHUTDOWN:
			out = SHUTDOWN;
			goto done;
		case KVM_EXIT_INTERNAL_ERROR:
			out = EMULATION_FAILURE;
			goto done;
		default:
			TEST_ASSERT(0, "seed %llu: undefined exit %u (%s)",
				    (unsigned long long)seed, run->exit_reason,
				    exit_reason_str(run->exit_reason));
		}
	}
done:
	vm_free(vm);
	return out;
}

TEST_TIMEOUT(random_bytes, 600)
{
	const char *env = getenv("FUZZ_SEEDS");
	unsigned int seeds = env ? strtoul(env, NULL, 0) : 64, counts[NR_OUTCOMES] = { 0 };
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { .it_interval.tv_nsec = 20000000, .it_value.tv_nsec = 20000000 };
	struct sigaction sa = { .sa_handler = on_tick };
	timer_t timer;

	/*
	 * A periodic signal bounds each seed in time: KVM_RUN returns EINTR.
	 * It is blocked outside KVM_RUN, or it could interrupt other ioctls
	 * (KVM_CREATE_VM on KVM can fail with EINTR).
	 */
	sigemptyset(&tick);
	sigaddset(&tick, SIGUSR1);
	sigprocmask(SIG_BLOCK, &tick, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	TEST_ASSERT(timer_create(CLOCK_MONOTONIC, &sev, &timer) == 0, "timer_create");
	TEST_ASSERT(timer_settime(timer, 0, &its, NULL) == 0, "timer_settime");
	for (unsigned int seed = 1; seed <= seeds; seed++)
		counts[run_seed(seed)]++;
	timer_delete(timer);
	for (int i = 0; i < NR_OUTCOMES; i++)
		test_log("%-18s %u", outcome_names[i], counts[i]);
	/* Random bytes fault quickly: most seeds must end in an exception. */
	TEST_ASSERT(counts[GUEST_EXCEPTION] > 0, "no seed ended in a guest exception");
}

/* ------------------------------------------------------------------------
 * The emulator cases: configuration, randomness, budgets, exits
 */

#define NR_EMUL_CASES		4
#define EMUL_SECONDS		3	/* the default budget of each case */
#define TICK_NS			20000000ULL	/* a tick interrupts KVM_RUN this often */
#define PROG_MAX_TICKS		10	/* ticks one program may take */
#define PROG_MAX_EXITS		256	/* exits one program may make */
#define PROG_MAX_EMUL_FAILS	8	/* emulation failures one program may make */
#define PROGS_PER_VM		1000	/* then a fresh VM */
#define MAX_ANOMALIES		12	/* printed in full */

#define RFLAGS_DF		(1ULL << 10)
#define RFLAGS_AC		(1ULL << 18)
#define RFLAGS_ARITH		0x8d5ULL	/* CF PF AF ZF SF OF */
#define CR0_WP			(1ULL << 16)
#define CR0_AM			(1ULL << 18)
#define CR4_PSE			(1ULL << 4)
#define CR4_PAE			(1ULL << 5)
#define CR4_OSFXSR		(1ULL << 9)
#define CR4_OSXMMEXCPT		(1ULL << 10)
#define CR4_SMEP		(1ULL << 20)
#define CR4_SMAP		(1ULL << 21)
#define EFER_NXE		(1ULL << 11)

/* FUZZ_CUT: at most this many instructions of each body, to shrink a reproducer. */
static unsigned int body_cut = ~0u;

static unsigned int emul_seconds(void)
{
	const char *e = getenv("FUZZ_EMUL_SECONDS"), *t = getenv("FUZZ_SECONDS");

	if (e && *e)
		return strtoul(e, NULL, 0);
	if (t && *t)
		return strtoul(t, NULL, 0) / NR_EMUL_CASES ?: 1;
	return EMUL_SECONDS;
}

/* The harness's limit: the budget, and time to make VMs and to stop. */
static unsigned int emul_timeout(void)
{
	return emul_seconds() + 120;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static uint64_t r64(struct rng *r)
{
	return splitmix(&r->s);
}

/* Uniform in [0, n). */
static uint64_t rn(struct rng *r, uint64_t n)
{
	return n ? r64(r) % n : 0;
}

/* True @p times in 100. */
static bool pct(struct rng *r, unsigned int p)
{
	return rn(r, 100) < p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* How a program ended. */
enum pout {
	P_DONE,		/* it returned or took an exception, which the guest reported */
	P_STUCK,	/* no end after PROG_MAX_TICKS ticks */
	P_BUDGET,	/* no end after PROG_MAX_EXITS exits */
	P_SHUTDOWN,	/* the vCPU shut down */
	P_LOST,		/* the guest around the program broke */
};

struct estats {
	uint64_t programs, insns, vms, exits, ticks;
	uint64_t mmio_read, mmio_write, pio_in, pio_out, pio_elems, emul_fail, hlt;
	uint64_t returned, vectors[33], stuck, budget, shutdown, lost;
	uint64_t cpl3, paging[3], mutations, vm_ns;
	uint64_t anomalies;
};

/* One emulator case while it runs. */
struct ecase {
	const char *name;
	uint64_t seed;		/* the case's, from FUZZ_SEED and its name */
	uint64_t base_seed;	/* FUZZ_SEED */
	uint64_t prog;		/* the program running, from 0 */
	uint64_t max_programs;
	uint64_t deadline;
	int trace;
	timer_t timer;
	struct estats st;
};

/* A failed check: the case, the program, and how to replay it. */
#define ECHECK(c, cond, fmt, ...)						\
	TEST_ASSERT(cond, "%s, program %" PRIu64 " (FUZZ_SEED=%" PRIu64		\
		    " FUZZ_PROGRAMS=%" PRIu64 " replays the case to it, with FUZZ_FIRST=" \
		    "%" PRIu64 " it alone): " fmt, (c)->name, (c)->prog, (c)->base_seed, \
		    (c)->prog + 1, (c)->prog, ##__VA_ARGS__)

/* Something odd but defined: logged (the first few), counted, not a failure. */
static void __attribute__((format(printf, 2, 3))) anomaly(struct ecase *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (c->st.anomalies++ >= MAX_ANOMALIES)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	test_log("%s: program %" PRIu64 ": %s", c->name, c->prog, buf);
}

static void ecase_start(struct ecase *c, const char *name)
{
	const char *s = getenv("FUZZ_SEED"), *p = getenv("FUZZ_PROGRAMS");
	const char *t = getenv("FUZZ_TRACE"), *f = getenv("FUZZ_FIRST");
	const char *cut = getenv("FUZZ_CUT");
	struct sigaction sa = { .sa_handler = on_tick };
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR1 };
	struct itimerspec its = { .it_interval.tv_nsec = TICK_NS, .it_value.tv_nsec = TICK_NS };
	unsigned int secs = emul_seconds();
	uint64_t h;

	memset(c, 0, sizeof(*c));
	c->name = name;
	if (s && *s) {
		c->base_seed = strtoull(s, NULL, 0);
	} else {
		uint64_t x = now_ns() ^ ((uint64_t)getpid() << 32);

		c->base_seed = splitmix(&x) & 0xffffffffffffULL;
	}
	h = c->base_seed;
	for (const char *q = name; *q; q++)
		h = (h ^ (uint8_t)*q) * 0x100000001b3ULL;
	c->seed = h;
	c->max_programs = p && *p ? strtoull(p, NULL, 0) : 0;
	c->prog = f && *f ? strtoull(f, NULL, 0) : 0;
	body_cut = cut && *cut ? strtoul(cut, NULL, 0) : ~0u;
	c->trace = t ? atoi(t) : 0;
	test_log("%s: seed %" PRIu64 " (FUZZ_SEED=%" PRIu64 " build/tests/fuzz_guest %s "
		 "replays it), %u s", name, c->base_seed, c->base_seed, name, secs);
	kvm_check_cap(KVM_CAP_USER_MEMORY);	/* skips without /dev/kvm */

	/*
	 * The tick ends a KVM_RUN that takes too long (EINTR).  It goes to this
	 * thread only, and is blocked outside KVM_RUN (KVM_SET_SIGNAL_MASK), so
	 * it interrupts no other ioctl.
	 */
	sigemptyset(&tick);
	sigaddset(&tick, SIGUSR1);
	sigprocmask(SIG_BLOCK, &tick, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sev._sigev_un._tid = gettid();
	TEST_ASSERT(timer_create(CLOCK_MONOTONIC, &sev, &c->timer) == 0, "timer_create: %s",
		    strerror(errno));
	TEST_ASSERT(timer_settime(c->timer, 0, &its, NULL) == 0, "timer_settime");
	c->deadline = now_ns() + secs * 1000000000ULL;
}

static bool ecase_more(struct ecase *c)
{
	if (c->max_programs)
		return c->prog < c->max_programs;
	return now_ns() < c->deadline;
}

static void ecase_end(struct ecase *c)
{
	struct estats *s = &c->st;
	static const char *const names[32] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "9", "#TS",
		"#NP", "#SS", "#GP", "#PF", "15", "#MF", "#AC", "#MC", "#XM",
	};
	char vec[512];
	int n = 0;

	timer_delete(c->timer);
	for (int v = 0; v < 33; v++)
		if (s->vectors[v] && n < (int)sizeof(vec) - 32)
			n += snprintf(vec + n, sizeof(vec) - n, " %s %" PRIu64,
				      v == 32 ? "other" : names[v] ? names[v] : "?", s->vectors[v]);
	vec[n] = 0;
	test_log("%s: %" PRIu64 " programs (%" PRIu64 " at CPL 3), %" PRIu64 " instructions, "
		 "%" PRIu64 " VMs (%" PRIu64 " ms making them), %" PRIu64 " exits, %" PRIu64
		 " ticks", c->name, s->programs, s->cpl3, s->insns, s->vms, s->vm_ns / 1000000,
		 s->exits, s->ticks);
	test_log("%s: exits: MMIO %" PRIu64 " reads %" PRIu64 " writes, I/O %" PRIu64 " in %"
		 PRIu64 " out (%" PRIu64 " elements), %" PRIu64 " emulation failures, %" PRIu64
		 " HLT", c->name, s->mmio_read, s->mmio_write, s->pio_in, s->pio_out,
		 s->pio_elems, s->emul_fail, s->hlt);
	test_log("%s: ended: %" PRIu64 " returned, exceptions:%s; %" PRIu64 " stuck, %" PRIu64
		 " over the exit budget, %" PRIu64 " shutdowns, %" PRIu64 " lost guests, %"
		 PRIu64 " anomalies", c->name, s->returned, n ? vec : " none", s->stuck,
		 s->budget, s->shutdown, s->lost, s->anomalies);
	if (s->mutations)
		test_log("%s: %" PRIu64 " code and page-table writes by the racers", c->name,
			 s->mutations);
	if (s->paging[0] + s->paging[1] + s->paging[2])
		test_log("%s: paging off %" PRIu64 ", 32-bit %" PRIu64 ", PAE %" PRIu64, c->name,
			 s->paging[0], s->paging[1], s->paging[2]);
	TEST_ASSERT(s->programs > 0, "%s: no program ran", c->name);
}

struct sigmask8 {
	struct kvm_signal_mask hdr;
	uint64_t set;
};

/* The tick reaches the vCPU's thread inside KVM_RUN only. */
static void unblock_tick_in_run(struct kvm_vcpu *vcpu)
{
	struct sigmask8 m = { .hdr.len = 8, .set = 0 };

	vcpu_ioctl(vcpu, KVM_SET_SIGNAL_MASK, &m, "KVM_SET_SIGNAL_MASK");
}

/* KVM_RUN once: false when a tick (or a stop) interrupted it. */
static bool erun(struct ecase *c, struct kvm_vcpu *vcpu)
{
	int r = __vcpu_run(vcpu);

	if (r < 0) {
		ECHECK(c, errno == EINTR, "KVM_RUN failed: %s", strerror(errno));
		consume_tick();
		c->st.ticks++;
		return false;
	}
	c->st.exits++;
	return true;
}

enum xres { X_GO, X_LOST, X_SHUTDOWN };

/*
 * Check an exit of the program's vCPU and answer it: reads from MMIO and
 * ports get random data.
 */
static enum xres handle_exit(struct ecase *c, struct kvm_vm *vm, struct kvm_vcpu *vcpu,
			     struct rng *ans, unsigned int *fails)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data;
	uint64_t bytes;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		bytes = (uint64_t)run->io.size * run->io.count;
		ECHECK(c, (run->io.size == 1 || run->io.size == 2 || run->io.size == 4) &&
		       run->io.count >= 1 && run->io.direction <= KVM_EXIT_IO_OUT &&
		       run->io.data_offset >= sizeof(*run) &&
		       run->io.data_offset + bytes <= vm->run_size,
		       "I/O exit: port %#x size %u count %u direction %u data at %#llx",
		       run->io.port, run->io.size, run->io.count, run->io.direction,
		       (unsigned long long)run->io.data_offset);
		data = (uint8_t *)run + run->io.data_offset;
		c->st.pio_elems += run->io.count;
		if (run->io.direction == KVM_EXIT_IO_IN) {
			c->st.pio_in++;
			for (uint64_t i = 0; i < bytes; i++)
				data[i] = r64(ans);
		} else {
			c->st.pio_out++;
		}
		return X_GO;
	case KVM_EXIT_MMIO:
		ECHECK(c, run->mmio.len >= 1 && run->mmio.len <= 8,
		       "MMIO exit at %#llx of %u bytes", run->mmio.phys_addr, run->mmio.len);
		ECHECK(c, run->mmio.phys_addr >= vm->mem_size,
		       "MMIO exit at %#llx (%u bytes, %s), which is guest RAM",
		       run->mmio.phys_addr, run->mmio.len, run->mmio.is_write ? "write" : "read");
		if (run->mmio.is_write) {
			c->st.mmio_write++;
		} else {
			c->st.mmio_read++;
			for (unsigned int i = 0; i < run->mmio.len; i++)
				run->mmio.data[i] = r64(ans);
		}
		return X_GO;
	case KVM_EXIT_INTERNAL_ERROR:
		/* An emulation failure queues #UD, which the next KVM_RUN delivers. */
		c->st.emul_fail++;
		if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
			anomaly(c, "internal error, suberror %u", run->internal.suberror);
		return ++*fails > PROG_MAX_EMUL_FAILS ? X_LOST : X_GO;
	case KVM_EXIT_SHUTDOWN:
		return X_SHUTDOWN;
	case KVM_EXIT_HLT:
		c->st.hlt++;
		return X_GO;
	default:
		vcpu_dump(vcpu);
		ECHECK(c, false, "undefined exit %u (%s)", run->exit_reason,
		       exit_reason_str(run->exit_reason));
	}
	return X_LOST;
}

static void count_outcome(struct ecase *c, enum pout out, uint64_t vector, bool returned)
{
	struct estats *s = &c->st;

	/* The guest broke: worth a look (FUZZ_FIRST replays the program alone). */
	if (out == P_SHUTDOWN || out == P_LOST)
		anomaly(c, "%s (FUZZ_SEED=%" PRIu64 " FUZZ_FIRST=%" PRIu64 " FUZZ_PROGRAMS=%"
			PRIu64 " FUZZ_TRACE=2 build/tests/fuzz_guest %s)",
			out == P_SHUTDOWN ? "shutdown" : "the guest broke", c->base_seed, c->prog,
			c->prog + 1, c->name);

	switch (out) {
	case P_DONE:
		if (returned)
			s->returned++;
		else
			s->vectors[vector < 32 ? vector : 32]++;
		break;
	case P_STUCK:
		s->stuck++;
		break;
	case P_BUDGET:
		s->budget++;
		break;
	case P_SHUTDOWN:
		s->shutdown++;
		break;
	case P_LOST:
		s->lost++;
		break;
	}
}

static const char *const pout_names[] = { "done", "stuck", "exit budget", "shutdown", "lost" };

static void trace_code(struct ecase *c, uint64_t la, const uint8_t *code, unsigned int len)
{
	char hex[3 * 512 + 1];
	unsigned int n = 0;

	for (unsigned int i = 0; i < len && n + 3 < sizeof(hex); i++)
		n += snprintf(hex + n, sizeof(hex) - n, "%02x", code[i]);
	hex[n] = 0;
	test_log("%s: program %" PRIu64 " code at %#" PRIx64 ": %s", c->name, c->prog, la, hex);
}

/* ------------------------------------------------------------------------
 * The instruction generator
 *
 * It writes x86 machine code for one mode (64-, 32- or 16-bit code) into a
 * buffer.  For each memory operand it picks a linear address worth touching
 * (the case's pick_la), then a form that reaches it, and loads the base and
 * index registers that form needs just before the instruction; registers it
 * loaded are "known" until something writes them.  bad() refuses accesses
 * the guest must not make (its own tables, stacks and code at CPL 0).
 */

enum { S_ES, S_CS, S_SS, S_DS, S_FS, S_GS, S_NONE };
enum { R_AX, R_CX, R_DX, R_BX, R_SP, R_BP, R_SI, R_DI };

static const uint8_t seg_prefix[6] = { 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 };

struct gen {
	struct rng *r;
	uint8_t *buf;		/* the code; buf[0] is at linear address ip_base */
	unsigned int pos, end;	/* the next byte; no instruction starts past end */
	uint64_t ip_base;
	int mode;		/* 64, 32 or 16 */
	int cpl;
	bool df;		/* RFLAGS.DF when the next instruction runs */
	bool smap;		/* STAC and CLAC exist */
	bool wild;		/* registers of unknown value may address memory */
	uint64_t reg[16];
	uint32_t known;		/* registers whose value is reg[] */
	uint64_t seg_base[6];	/* in 64-bit mode only FS and GS count */
	uint64_t seg_limit[6];
	uint64_t (*pick_la)(struct gen *g, unsigned int size);
	bool (*bad)(struct gen *g, uint64_t la, uint64_t len);
	void *ctx;
	unsigned int insns;
};

static void emit(struct gen *g, uint8_t b)
{
	g->buf[g->pos++] = b;
}

static void emit_imm(struct gen *g, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		emit(g, v >> (8 * i));
}

static uint64_t amask(unsigned int abytes)
{
	return abytes == 8 ? ~0ULL : (1ULL << (8 * abytes)) - 1;
}

/* The linear address of @seg:@ea. */
static uint64_t la_of(struct gen *g, int seg, uint64_t ea)
{
	if (g->mode == 64)
		return (seg == S_FS || seg == S_GS ? g->seg_base[seg] : 0) + ea;
	return (uint32_t)(g->seg_base[seg] + ea);
}

static bool overlaps(uint64_t a, uint64_t n, uint64_t b, uint64_t m)
{
	return a < b + m && b < a + n;
}

/* bad() for @n bytes from @la, which may wrap around the linear address space. */
static bool lin_bad(struct gen *g, uint64_t la, uint64_t n)
{
	uint64_t top = g->mode == 64 ? ~0ULL : 0xffffffffULL, room;

	if (!g->bad || !n)
		return false;
	la &= top;
	room = top - la;	/* bytes after the first, up to the top */
	if (n - 1 > room)
		return g->bad(g, la, room + 1) || g->bad(g, 0, n - 1 - room);
	return g->bad(g, la, n);
}

/*
 * Is any byte of an access of @len bytes at @seg:@off -- downwards from an
 * element of @size at @off when @down -- one the guest must not touch?
 * Offsets wrap at the address size @abytes, but each element is contiguous
 * in linear memory, so up to @size - 1 bytes past the wrap count too.
 */
static bool access_bad(struct gen *g, int seg, uint64_t off, uint64_t len, unsigned int size,
		       bool down, unsigned int abytes)
{
	uint64_t am = amask(abytes), lo;

	if (!g->bad || !len)
		return false;
	if (len > (1ULL << 62))
		return true;
	lo = down ? off + size - len : off;
	if (abytes == 8)
		return lin_bad(g, la_of(g, seg, lo), len);
	if (len > am)
		return lin_bad(g, la_of(g, seg, 0), am + size);
	lo &= am;
	if (len - 1 <= am - lo)
		return lin_bad(g, la_of(g, seg, lo), len + size - 1);
	return lin_bad(g, la_of(g, seg, lo), am - lo + size) ||
	       lin_bad(g, la_of(g, seg, 0), len - (am - lo + 1) + size - 1);
}

static bool known(struct gen *g, int reg)
{
	return g->known & (1u << reg);
}

static void forget(struct gen *g, int reg)
{
	g->known &= ~(1u << reg);
}

/* MOV $v, %reg: all 64 bits in 64-bit code, 32 bits otherwise. */
static void emit_mov_imm(struct gen *g, int reg, uint64_t v)
{
	if (g->mode == 64) {
		if (v <= 0xffffffffULL && pct(g->r, 50)) {
			if (reg & 8)
				emit(g, 0x41);
			emit(g, 0xb8 + (reg & 7));
			emit_imm(g, v, 4);
		} else {
			emit(g, 0x48 | (reg >> 3));
			emit(g, 0xb8 + (reg & 7));
			emit_imm(g, v, 8);
		}
	} else {
		v = (uint32_t)v;
		if (g->mode == 16)
			emit(g, 0x66);
		emit(g, 0xb8 + reg);
		emit_imm(g, v, 4);
	}
	g->reg[reg] = v;
	g->known |= 1u << reg;
}

static const uint64_t interesting[] = {
	0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff,
	0x80000000, 0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL,
	0x8000000000000000ULL, ~0ULL,
};

/* A value for a register that is not an address. */
static uint64_t pool_value(struct gen *g)
{
	switch (rn(g->r, 8)) {
	case 0:
	case 1:
		return g->pick_la(g, 8);
	case 2:
		return rn(g->r, 256);
	case 3:
		return r64(g->r);
	case 4:
		return (uint32_t)r64(g->r);
	case 5:
		return -rn(g->r, 256);
	default:
		return interesting[rn(g->r, sizeof(interesting) / sizeof(interesting[0]))];
	}
}

/*
 * A REP count: none, a few, around a page, the 16- and 32-bit wraps, huge.
 * The long ones are rare: OUTS exits once per element, so they end in the
 * exit budget unless a fault stops them early.
 */
static uint64_t pick_count(struct gen *g)
{
	switch (rn(g->r, 40)) {
	case 0:
	case 1:
		return 0;
	case 2 ... 19:
		return 1 + rn(g->r, 8);
	case 20 ... 25:
		return 9 + rn(g->r, 120);
	case 26:
		return 4095 + rn(g->r, 3);
	case 27:
		return 0xffff + rn(g->r, 3);
	case 28:
		return 0xffffffffULL + rn(g->r, 3);
	case 29:
		return pct(g->r, 50) ? r64(g->r) : 1ULL << 63;
	default:
		return 1 + rn(g->r, 3);
	}
}

static unsigned int pick_abytes(struct gen *g, bool *flip)
{
	*flip = pct(g->r, 18);
	switch (g->mode) {
	case 64:
		return *flip ? 4 : 8;
	case 32:
		return *flip ? 2 : 4;
	default:
		return *flip ? 4 : 2;
	}
}

/* An operand size for an instruction without a fixed one: 2, 4 or 8. */
static unsigned int pick_opsize(struct gen *g)
{
	unsigned int p = rn(g->r, 100);

	switch (g->mode) {
	case 64:
		return p < 20 ? 2 : p < 65 ? 4 : 8;
	case 32:
		return p < 30 ? 2 : 4;
	default:
		return p < 70 ? 2 : 4;
	}
}

/* Does operand size @opsize need the 0x66 prefix? */
static bool opsize_prefix(struct gen *g, unsigned int opsize)
{
	return g->mode == 16 ? opsize == 4 : opsize == 2;
}

/* A register number for ModRM.reg; one the instruction writes is never RSP. */
static int pick_reg(struct gen *g, bool writes)
{
	int n = g->mode == 64 ? 16 : 8, r;

	do
		r = rn(g->r, n);
	while (writes && r == R_SP);
	return r;
}

/* A base or index register for a memory operand: never RSP. */
static int pick_addr_reg(struct gen *g, int other)
{
	int n = g->mode == 64 ? 16 : 8, r;

	do
		r = rn(g->r, n);
	while (r == R_SP || r == other);
	return r;
}

/* How a memory operand is encoded, and what it needs loaded. */
struct mplan {
	unsigned int abytes;
	bool flip;		/* 0x67 */
	int seg;		/* the segment of the access */
	int override;		/* a segment override prefix, or S_NONE */
	bool moffs;		/* A0-A3: an absolute offset instead of ModRM */
	uint8_t mod, rm, sib;
	bool has_sib;
	unsigned int disp_bytes;
	uint64_t disp;
	bool riprel;		/* disp is patched once the length is known */
	unsigned int disp_pos;
	uint64_t ea;		/* the effective address it reaches */
	int base, index;
	uint64_t base_val, index_val;
	bool load_base, load_index;
	uint8_t rex;		/* REX.X and REX.B */
};

static int64_t pick_disp(struct gen *g, uint8_t *mod)
{
	switch (rn(g->r, 3)) {
	case 0:
		*mod = 0;
		return 0;
	case 1:
		*mod = 1;
		return (int8_t)r64(g->r);
	default:
		*mod = 2;
		return pct(g->r, 50) ? (int64_t)rn(g->r, 0x2000) - 0x1000 : (int32_t)r64(g->r);
	}
}

/* 16-bit ModRM forms (SDM vol. 2 table 2-1): BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP, BX. */
static const int8_t rm16_base[8] = { R_BX, R_BX, R_BP, R_BP, R_SI, R_DI, R_BP, R_BX };
static const int8_t rm16_index[8] = { R_SI, R_DI, R_SI, R_DI, -1, -1, -1, -1 };

static void plan16(struct gen *g, struct mplan *p)
{
	int64_t d;

	p->rm = rn(g->r, 8);
	switch (rn(g->r, 3)) {
	case 0:
		p->mod = 0;
		d = 0;
		break;
	case 1:
		p->mod = 1;
		d = (int8_t)r64(g->r);
		break;
	default:
		p->mod = 2;
		d = (int16_t)r64(g->r);
		break;
	}
	p->disp_bytes = p->mod == 1 ? 1 : p->mod == 2 ? 2 : 0;
	p->disp = d;
	if (p->mod == 0 && p->rm == 6) {	/* [disp16] */
		p->disp_bytes = 2;
		p->seg = S_DS;
		return;
	}
	p->base = rm16_base[p->rm];
	p->index = rm16_index[p->rm];
	p->seg = p->base == R_BP ? S_SS : S_DS;
}

/* 32- and 64-bit forms; false when none fits. */
static bool plan3264(struct gen *g, struct mplan *p, uint64_t ea)
{
	uint64_t am = amask(p->abytes), scale;
	int n = g->mode == 64 ? 16 : 8;
	int64_t d;

	p->base = p->index = -1;
	switch (rn(g->r, 10)) {
	case 0 ... 3:	/* [base + disp], or a known register and the distance */
		p->base = pick_addr_reg(g, -1);
		for (int i = 0; i < n && pct(g->r, 40); i++) {
			int r = rn(g->r, n);
			uint64_t dist = (ea - g->reg[r]) & am;

			if (r != R_SP && known(g, r) &&
			    (p->abytes == 4 ? true : dist + 0x80000000ULL <= 0xffffffffULL)) {
				p->base = r;
				p->base_val = g->reg[r];
				p->disp = p->abytes == 4 ? (uint64_t)(int32_t)dist : dist;
				p->mod = 2;
				goto encode_base;
			}
		}
		d = pick_disp(g, &p->mod);
		p->disp = d;
		p->base_val = ea - d;
		p->load_base = true;
encode_base:
		if ((p->base & 7) == 5 && p->mod == 0)
			p->mod = 1;	/* mod 0 there means no base: [base + 0] */
		if ((p->base & 7) == 4) {
			p->has_sib = true;
			p->sib = (4 << 3) | 4;	/* no index */
			p->rm = 4;
		} else {
			p->rm = p->base & 7;
		}
		break;
	case 4 ... 6:	/* [base + index * scale + disp] */
		p->base = pick_addr_reg(g, -1);
		p->index = pick_addr_reg(g, p->base);
		scale = rn(g->r, 4);
		d = pick_disp(g, &p->mod);
		if ((p->base & 7) == 5 && p->mod == 0)
			p->mod = 1;
		p->disp = d;
		p->index_val = pct(g->r, 70) ? rn(g->r, 0x40) - 0x10 : pool_value(g);
		p->base_val = ea - d - (p->index_val << scale);
		p->load_base = p->load_index = true;
		p->has_sib = true;
		p->rm = 4;
		p->sib = (scale << 6) | ((p->index & 7) << 3) | (p->base & 7);
		break;
	case 7:		/* [index * scale + disp32] */
		p->index = pick_addr_reg(g, -1);
		scale = rn(g->r, 4);
		d = rn(g->r, 0x100);
		p->index_val = ((ea - d) & am) >> scale;
		p->disp = (ea - (p->index_val << scale)) & am;
		if (p->abytes == 8 && p->disp + 0x80000000ULL > 0xffffffffULL)
			return false;
		p->load_index = true;
		p->mod = 0;
		p->rm = 4;
		p->has_sib = true;
		p->sib = (scale << 6) | ((p->index & 7) << 3) | 5;
		break;
	case 8:		/* [disp32]: with SIB in 64-bit code, else ModRM 00 101 */
		if (p->abytes == 8 && ea + 0x80000000ULL > 0xffffffffULL)
			return false;
		p->disp = ea;
		p->mod = 0;
		if (g->mode == 64) {
			p->rm = 4;
			p->has_sib = true;
			p->sib = (4 << 3) | 5;
		} else {
			p->rm = 5;
		}
		break;
	default:	/* RIP-relative, 64-bit addressing only */
		if (g->mode != 64 || p->abytes != 8 ||
		    ea - (g->ip_base + g->pos) + 0x7fff0000ULL > 0xfffe0000ULL)
			return false;
		p->riprel = true;
		p->mod = 0;
		p->rm = 5;
		break;
	}
	p->disp_bytes = p->mod == 1 ? 1 : (p->mod == 2 || (p->mod == 0 && (p->rm == 5 ||
			(p->has_sib && (p->sib & 7) == 5)))) ? 4 : 0;
	if (p->disp_bytes == 1 && (int64_t)p->disp != (int8_t)p->disp) {
		p->mod = 2;	/* a known base's distance */
		p->disp_bytes = 4;
	}
	if (p->base >= 0) {
		p->seg = (p->base & 7) == R_BP && g->mode != 64 ? S_SS : S_DS;
		p->rex |= p->base >> 3;
	} else {
		p->seg = S_DS;
	}
	if (p->index >= 0)
		p->rex |= (p->index >> 3) << 1;
	if (p->load_base && p->abytes == 4 && g->mode == 64)
		p->base_val = (p->base_val & 0xffffffffULL) | (r64(g->r) & ~0xffffffffULL);
	return true;
}

/* The offset to reach in segment @seg: near a target, or near its limit. */
static uint64_t pick_ea(struct gen *g, int seg, unsigned int size, unsigned int abytes)
{
	uint64_t am = amask(abytes);

	if (g->mode != 64 && pct(g->r, 30)) {
		switch (rn(g->r, 3)) {
		case 0:
			return (g->seg_limit[seg] + 1 - size + rn(g->r, 9) - 4) & am;
		case 1:
			return (am - rn(g->r, 2 * size)) & am;
		default:
			return rn(g->r, 16);
		}
	}
	return (g->pick_la(g, size) - la_of(g, seg, 0)) & am;
}

/*
 * Plan a memory operand of @size bytes (@span bytes from it may be touched,
 * for the guard).  False when no safe one was found.
 */
static bool plan_mem(struct gen *g, struct mplan *p, unsigned int size, unsigned int span,
		     bool moffs)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t d16;

		memset(p, 0, sizeof(*p));
		p->abytes = pick_abytes(g, &p->flip);
		p->override = pct(g->r, 25) ? (int)rn(g->r, 6) : S_NONE;
		p->base = p->index = -1;
		p->moffs = moffs;
		if (g->wild && !moffs && pct(g->r, 8)) {
			/* Whatever an unknown register holds, e.g. data an MMIO read gave. */
			int r = pick_addr_reg(g, -1);

			if (!known(g, r)) {
				p->base = r;
				p->mod = 1;
				p->disp = (int8_t)r64(g->r);
				p->disp_bytes = 1;
				p->rex = r >> 3;
				p->seg = S_DS;
				if ((r & 7) == 4) {
					p->has_sib = true;
					p->sib = 0x24;
					p->rm = 4;
				} else {
					p->rm = r & 7;
				}
				return true;
			}
		}
		if (moffs) {
			p->seg = p->override != S_NONE ? p->override : S_DS;
			p->ea = pick_ea(g, p->seg, size, p->abytes);
			p->disp = p->ea;
			p->disp_bytes = p->abytes;
		} else if (p->abytes == 2) {
			plan16(g, p);
			if (p->override != S_NONE)
				p->seg = p->override;
			p->ea = pick_ea(g, p->seg, size, 2);
			d16 = p->ea - (p->disp_bytes ? p->disp : 0);
			if (p->base < 0) {
				p->disp = p->ea;
			} else if (p->index < 0) {
				p->base_val = d16;
				p->load_base = true;
			} else {
				p->index_val = r64(g->r) & 0xffff;
				p->base_val = d16 - p->index_val;
				p->load_base = p->load_index = true;
			}
			p->base_val = (p->base_val & 0xffff) | (r64(g->r) & 0xffff0000ULL);
		} else {
			/* The segment depends on the form, the offset on the segment. */
			int seg = p->override != S_NONE ? p->override : S_DS;

			p->ea = pick_ea(g, seg, size, p->abytes);
			if (!plan3264(g, p, p->ea))
				continue;
			if (p->override != S_NONE)
				p->seg = p->override;
			if (p->seg != seg)
				continue;
		}
		if (!access_bad(g, p->seg, p->ea, span, size, false, p->abytes))
			return true;
	}
	return false;
}

static void emit_loads(struct gen *g, struct mplan *p)
{
	if (p->load_base)
		emit_mov_imm(g, p->base, p->base_val);
	if (p->load_index)
		emit_mov_imm(g, p->index, p->index_val);
}

static void emit_modrm(struct gen *g, struct mplan *p, unsigned int reg)
{
	if (p->moffs) {
		emit_imm(g, p->disp, p->disp_bytes);
		return;
	}
	emit(g, (p->mod << 6) | ((reg & 7) << 3) | p->rm);
	if (p->has_sib)
		emit(g, p->sib);
	p->disp_pos = g->pos;
	emit_imm(g, p->disp, p->disp_bytes);
}

/* RIP-relative: the displacement counts from the end of the instruction. */
static void patch_riprel(struct gen *g, struct mplan *p)
{
	uint64_t d = p->ea - (g->ip_base + g->pos);

	if (!p->riprel)
		return;
	for (int i = 0; i < 4; i++)
		g->buf[p->disp_pos + i] = d >> (8 * i);
}

/*
 * Legacy prefixes in random order, then REX.  @extra are further prefix
 * bytes (REP, LOCK, a mandatory prefix goes separately).
 */
static void emit_prefixes(struct gen *g, bool op16, bool flip, int override, const uint8_t *extra,
			  unsigned int nextra, uint8_t rex)
{
	uint8_t pre[12];
	unsigned int n = 0;

	if (op16)
		pre[n++] = 0x66;
	if (flip)
		pre[n++] = 0x67;
	if (override != S_NONE)
		pre[n++] = seg_prefix[override];
	for (unsigned int i = 0; i < nextra && n < 8; i++)
		pre[n++] = extra[i];
	/* Redundant ones: a repeated segment override, or one that does nothing. */
	if (pct(g->r, 6))
		pre[n++] = seg_prefix[override != S_NONE ? override : (int)rn(g->r, 4)];
	for (unsigned int i = n; i > 1; i--) {
		unsigned int j = rn(g->r, i);
		uint8_t t = pre[i - 1];

		pre[i - 1] = pre[j];
		pre[j] = t;
	}
	/* REX before a legacy prefix is ignored by the CPU (SDM vol. 2 2.2.1). */
	if (g->mode == 64 && n && pct(g->r, 3))
		emit(g, 0x40 | rn(g->r, 16));
	for (unsigned int i = 0; i < n; i++)
		emit(g, pre[i]);
	if (g->mode == 64 && (rex || pct(g->r, 8)))
		emit(g, 0x40 | rex);
}

/* Memory-operand instructions. */
#define M_R	0x001	/* reads the memory operand */
#define M_W	0x002	/* writes it */
#define M_WREG	0x004	/* writes the ModRM.reg register */
#define M_LOCK	0x008	/* LOCK is allowed */
#define M_BYTE	0x010	/* 8-bit operand */
#define M_MOFFS	0x020	/* A0-A3: no ModRM, an absolute offset */
#define M_USER	0x040	/* a control transfer: only at CPL 3 */
#define M_NO16	0x080	/* no 16-bit operand size */
#define M_WAX	0x100	/* writes RAX and RDX */
#define M_MAND	0x200	/* op[0] is a mandatory prefix: no other 66/F2/F3 */
#define M_CC	0x400	/* the last opcode byte gets a condition in its low nibble */
#define M_RANGE	0x800	/* digit is the first of a range of 4 */

struct memop {
	uint8_t op[4];
	uint8_t len;
	int8_t digit;		/* ModRM.reg, or -1 for a register */
	uint8_t msize;		/* bytes of the memory operand; 0: the operand size */
	uint8_t imm;		/* 0, 1, or 4: 2 or 4 by operand size */
	uint16_t flags;
};

#define RMW	(M_R | M_W | M_LOCK)

/* What minikvm's decoder knows (arch/x86/kvm/emulator/decode.c), and a few forms of it. */
static const struct memop known_ops[] = {
	{ { 0x88 }, 1, -1, 0, 0, M_W | M_BYTE },
	{ { 0x89 }, 1, -1, 0, 0, M_W },
	{ { 0x8a }, 1, -1, 0, 0, M_R | M_WREG | M_BYTE },
	{ { 0x8b }, 1, -1, 0, 0, M_R | M_WREG },
	{ { 0xc6 }, 1, 0, 0, 1, M_W | M_BYTE },
	{ { 0xc7 }, 1, 0, 0, 4, M_W },
	{ { 0xa0 }, 1, -1, 0, 0, M_R | M_MOFFS | M_BYTE | M_WAX },
	{ { 0xa1 }, 1, -1, 0, 0, M_R | M_MOFFS | M_WAX },
	{ { 0xa2 }, 1, -1, 0, 0, M_W | M_MOFFS | M_BYTE },
	{ { 0xa3 }, 1, -1, 0, 0, M_W | M_MOFFS },
	{ { 0x0f, 0xb6 }, 2, -1, 1, 0, M_R | M_WREG },
	{ { 0x0f, 0xb7 }, 2, -1, 2, 0, M_R | M_WREG },
	{ { 0x0f, 0xbe }, 2, -1, 1, 0, M_R | M_WREG },
	{ { 0x0f, 0xbf }, 2, -1, 2, 0, M_R | M_WREG },
	{ { 0x63 }, 1, -1, 4, 0, M_R | M_WREG },	/* MOVSXD (ARPL outside 64-bit code) */
	{ { 0x80 }, 1, 0, 0, 1, RMW | M_BYTE | M_RANGE },
	{ { 0x81 }, 1, 0, 0, 4, RMW | M_RANGE },
	{ { 0x83 }, 1, 0, 0, 1, RMW | M_RANGE },
	{ { 0x84 }, 1, -1, 0, 0, M_R | M_BYTE },
	{ { 0x85 }, 1, -1, 0, 0, M_R },
	{ { 0xf6 }, 1, 0, 0, 1, M_R | M_BYTE },
	{ { 0xf7 }, 1, 0, 0, 4, M_R },
	{ { 0xf6 }, 1, 1, 0, 1, M_R | M_BYTE },	/* the /1 alias of TEST */
	{ { 0x86 }, 1, -1, 0, 0, RMW | M_WREG | M_BYTE },
	{ { 0x87 }, 1, -1, 0, 0, RMW | M_WREG },
};

/* The ALU rows 00-3B are generated: op * 8 + 0..3. */
#define NR_ALU_OPS	32

/* What it does not know: the emulator must fail cleanly, KVM's often completes them. */
static const struct memop other_ops[] = {
	{ { 0xfe }, 1, 0, 0, 0, RMW | M_BYTE },			/* INC */
	{ { 0xfe }, 1, 1, 0, 0, RMW | M_BYTE },			/* DEC */
	{ { 0xff }, 1, 0, 0, 0, RMW },
	{ { 0xff }, 1, 1, 0, 0, RMW },
	{ { 0xf6 }, 1, 2, 0, 0, RMW | M_BYTE },			/* NOT */
	{ { 0xf7 }, 1, 3, 0, 0, RMW },				/* NEG */
	{ { 0xf6 }, 1, 4, 0, 0, M_R | M_BYTE | M_WAX },		/* MUL */
	{ { 0xf7 }, 1, 5, 0, 0, M_R | M_WAX },			/* IMUL */
	{ { 0xf7 }, 1, 6, 0, 0, M_R | M_WAX },			/* DIV: #DE too */
	{ { 0xf6 }, 1, 7, 0, 0, M_R | M_BYTE | M_WAX },		/* IDIV */
	{ { 0x0f, 0xb0 }, 2, -1, 0, 0, RMW | M_BYTE | M_WAX },	/* CMPXCHG */
	{ { 0x0f, 0xb1 }, 2, -1, 0, 0, RMW | M_WAX },
	{ { 0x0f, 0xc0 }, 2, -1, 0, 0, RMW | M_BYTE | M_WREG },	/* XADD */
	{ { 0x0f, 0xc1 }, 2, -1, 0, 0, RMW | M_WREG },
	{ { 0x0f, 0xba }, 2, 4, 0, 1, RMW | M_RANGE },		/* BT, BTS, BTR, BTC $imm */
	{ { 0xd0 }, 1, 0, 0, 0, M_R | M_W | M_BYTE | M_RANGE },	/* shifts and rotates */
	{ { 0xd1 }, 1, 4, 0, 0, M_R | M_W | M_RANGE },
	{ { 0xd3 }, 1, 0, 0, 0, M_R | M_W | M_RANGE },
	{ { 0xc0 }, 1, 4, 0, 1, M_R | M_W | M_BYTE | M_RANGE },
	{ { 0xc1 }, 1, 0, 0, 1, M_R | M_W | M_RANGE },
	{ { 0x0f, 0x40 }, 2, -1, 0, 0, M_R | M_WREG | M_CC },	/* CMOVcc */
	{ { 0x0f, 0x90 }, 2, 0, 1, 0, M_W | M_CC },		/* SETcc */
	{ { 0x8d }, 1, -1, 0, 0, M_WREG },			/* LEA: no access */
	{ { 0x0f, 0x18 }, 2, 0, 1, 0, M_R | M_RANGE },		/* PREFETCH */
	{ { 0x0f, 0xae }, 2, 7, 1, 0, M_R },			/* CLFLUSH */
	{ { 0x0f, 0x10 }, 2, -1, 16, 0, M_R },			/* MOVUPS */
	{ { 0x0f, 0x11 }, 2, -1, 16, 0, M_W },
	{ { 0x0f, 0x28 }, 2, -1, 16, 0, M_R },			/* MOVAPS: aligned or #GP */
	{ { 0x0f, 0x29 }, 2, -1, 16, 0, M_W },
	{ { 0x66, 0x0f, 0x6f }, 3, -1, 16, 0, M_R | M_MAND },	/* MOVDQA */
	{ { 0xf3, 0x0f, 0x7f }, 3, -1, 16, 0, M_W | M_MAND },	/* MOVDQU */
	{ { 0x66, 0x0f, 0x6e }, 3, -1, 8, 0, M_R | M_MAND },	/* MOVD/MOVQ */
	{ { 0x66, 0x0f, 0x7e }, 3, -1, 8, 0, M_W | M_MAND },
	{ { 0x66, 0x0f, 0xd6 }, 3, -1, 8, 0, M_W | M_MAND },	/* MOVQ */
	{ { 0xf3, 0x0f, 0x7e }, 3, -1, 8, 0, M_R | M_MAND },
	{ { 0x0f, 0xc3 }, 2, -1, 0, 0, M_W | M_NO16 },		/* MOVNTI */
	{ { 0x0f, 0x38, 0xf0 }, 3, -1, 0, 0, M_R | M_WREG },	/* MOVBE */
	{ { 0x0f, 0x38, 0xf1 }, 3, -1, 0, 0, M_W },
	{ { 0x8c }, 1, 0, 2, 0, M_W | M_RANGE },		/* MOV from ES/CS/SS/DS */
	{ { 0x8e }, 1, 3, 2, 0, M_R },				/* MOV to DS */
	{ { 0x8e }, 1, 0, 2, 0, M_R },				/* MOV to ES */
	{ { 0x8e }, 1, 4, 2, 0, M_R },				/* MOV to FS */
	{ { 0x8e }, 1, 2, 2, 0, M_R },				/* MOV to SS */
	{ { 0xd9 }, 1, 0, 4, 0, M_R },				/* FLD m32 */
	{ { 0xdd }, 1, 2, 8, 0, M_W },				/* FST m64 */
	{ { 0x0f, 0x01 }, 2, 0, 10, 0, M_W },			/* SGDT */
	{ { 0x0f, 0x01 }, 2, 1, 10, 0, M_W },			/* SIDT */
	{ { 0x0f, 0x00 }, 2, 0, 2, 0, M_W },			/* SLDT */
	{ { 0x0f, 0x00 }, 2, 1, 2, 0, M_W },			/* STR */
	{ { 0x0f, 0xc7 }, 2, 1, 16, 0, RMW | M_WAX },		/* CMPXCHG8B/16B */
	{ { 0xff }, 1, 4, 0, 0, M_R | M_USER },			/* JMP through memory */
	{ { 0xff }, 1, 2, 0, 0, M_R | M_USER },			/* CALL through memory */
};

/* Emit one memory-operand instruction; false when nothing safe was found. */
static bool emit_memop(struct gen *g, const struct memop *op, const uint8_t *opcode)
{
	unsigned int opsize = op->flags & M_BYTE ? 1 : pick_opsize(g);
	unsigned int msize, span, n = 0;
	int digit = op->digit, reg;
	uint8_t extra[2], rex;
	bool lock = false;
	struct mplan p;

	if ((op->flags & M_USER) && g->cpl != 3)
		return false;
	if ((op->flags & M_NO16) && opsize == 2)
		opsize = 4;
	if (op->flags & M_RANGE)
		digit += rn(g->r, 4);
	if (opcode[0] == 0x8c && digit == 3)
		digit = rn(g->r, 6);	/* MOV from any segment register */
	msize = op->msize ? op->msize : opsize;
	if (opcode[0] == 0x63 && opsize == 2)
		msize = 2;
	if (opcode[0] == 0x0f && opcode[1] == 0xc7)
		msize = opsize == 8 ? 16 : 8;
	span = msize;
	if (!plan_mem(g, &p, msize, span, op->flags & M_MOFFS))
		return false;
	if (op->flags & M_MOFFS)
		reg = R_AX;
	else
		reg = digit >= 0 ? digit : pick_reg(g, op->flags & (M_WREG | M_WAX));
	emit_loads(g, &p);
	if ((op->flags & M_LOCK) && pct(g->r, 12))
		lock = true;
	if (pct(g->r, 2))
		lock = true;	/* #UD where LOCK is not allowed */
	/* CMP and BT read only: LOCK there is #UD too, which is fine. */
	if (lock)
		extra[n++] = 0xf0;
	if (!(op->flags & M_MAND) && pct(g->r, 3))
		extra[n++] = pct(g->r, 50) ? 0xf2 : 0xf3;
	rex = p.rex | (opsize == 8 ? 8 : 0) | (reg >= 8 ? 4 : 0);
	if (op->flags & M_MAND) {
		/* The mandatory prefix comes before REX and after the others. */
		emit_prefixes(g, false, p.flip, p.override, extra, n, 0);
		emit(g, opcode[0]);
		if (g->mode == 64 && rex)
			emit(g, 0x40 | rex);
		for (unsigned int i = 1; i < op->len; i++)
			emit(g, opcode[i]);
	} else {
		emit_prefixes(g, opsize_prefix(g, opsize), p.flip, p.override, extra, n,
			      g->mode == 64 ? rex : 0);
		for (unsigned int i = 0; i < op->len; i++)
			emit(g, opcode[i]);
	}
	emit_modrm(g, &p, reg);
	if (op->imm == 1)
		emit_imm(g, r64(g->r), 1);
	else if (op->imm == 4)
		emit_imm(g, r64(g->r), opsize == 2 ? 2 : 4);
	patch_riprel(g, &p);
	if (op->flags & M_WREG)
		forget(g, reg);
	if (op->flags & M_WAX) {
		forget(g, R_AX);
		forget(g, R_DX);
	}
	if (opcode[0] == 0xff && digit == 2)
		forget(g, R_SP);
	return true;
}

static bool gen_known_op(struct gen *g)
{
	unsigned int i = rn(g->r, sizeof(known_ops) / sizeof(known_ops[0]));

	return emit_memop(g, &known_ops[i], known_ops[i].op);
}

/* ALU op * 8 + 0..3: to r/m (read-modify-write) or from it; CMP (op 7) only reads. */
static bool gen_alu_op(struct gen *g)
{
	unsigned int i = rn(g->r, NR_ALU_OPS);
	struct memop alu;
	uint8_t op;

	op = (i / 4) * 8 + i % 4;
	alu = (struct memop){ { op }, 1, -1, 0, 0, M_R };
	if (i % 4 < 2 && i / 4 != 7)
		alu.flags |= M_W | M_LOCK;
	if (i % 4 >= 2 && i / 4 != 7)
		alu.flags |= M_WREG;
	if (!(i % 2))
		alu.flags |= M_BYTE;
	return emit_memop(g, &alu, alu.op);
}

static bool gen_other_op(struct gen *g)
{
	const struct memop *op = &other_ops[rn(g->r, sizeof(other_ops) / sizeof(other_ops[0]))];
	uint8_t opcode[4];

	memcpy(opcode, op->op, sizeof(opcode));
	if (op->flags & M_CC)
		opcode[op->len - 1] |= rn(g->r, 16);
	return emit_memop(g, op, opcode);
}

/*
 * String instructions: MOVS A4, CMPS A6, STOS AA, LODS AC, SCAS AE; INS 6C,
 * OUTS 6E; +1 for the operand size.  The source is seg:RSI (DS unless
 * overridden), the destination ES:RDI.  Only MOVS, STOS and INS write.
 */
static bool gen_string(struct gen *g, uint8_t opcode)
{
	bool io = opcode == 0x6c || opcode == 0x6e, src, dst, writes, flip;
	bool rep = pct(g->r, 70), repne = rep && pct(g->r, 20);
	int override = pct(g->r, 30) ? (int)rn(g->r, 6) : S_NONE, sseg;
	unsigned int size = 1, abytes, n = 0;
	uint64_t count = 1, am, rsi = 0, rdi = 0;
	uint8_t extra[2], rex = 0;
	int tries;

	src = opcode == 0xa4 || opcode == 0xa6 || opcode == 0xac || opcode == 0x6e;
	dst = opcode == 0xa4 || opcode == 0xa6 || opcode == 0xaa || opcode == 0xae ||
	      opcode == 0x6c;
	writes = opcode == 0xa4 || opcode == 0xaa || opcode == 0x6c;
	if (pct(g->r, 60)) {
		opcode |= 1;
		size = pick_opsize(g);
		if (io && size == 8)
			size = 4;	/* REX.W INS/OUTS move 32 bits */
		else if (size == 8)
			rex = 8;
	}
	if (io && g->mode == 64 && pct(g->r, 10))
		rex |= 8;
	abytes = pick_abytes(g, &flip);
	am = amask(abytes);
	sseg = override != S_NONE ? override : S_DS;
	for (tries = 0; tries < 16; tries++) {
		count = rep ? pick_count(g) : 1;
		/* OUTS exits per element: a long one would only spend the budget. */
		if ((tries > 8 || (opcode | 1) == 0x6f) && count > 300 && pct(g->r, 75))
			count = 1 + rn(g->r, 4);
		if (src)
			rsi = pick_ea(g, sseg, size, abytes);
		if (dst)
			rdi = pick_ea(g, S_ES, size, abytes);
		/* A REP with RCX 0 does nothing; a count is what fits in the address size. */
		if (!writes || !(count & am) ||
		    !access_bad(g, S_ES, rdi, (count & am) * size, size, g->df, abytes))
			break;
	}
	if (tries == 16)
		return false;
	if (src)
		emit_mov_imm(g, R_SI, (rsi & am) | (r64(g->r) & ~am & 0xffffffffffffULL));
	if (dst)
		emit_mov_imm(g, R_DI, (rdi & am) | (r64(g->r) & ~am & 0xffffffffffffULL));
	if (rep || pct(g->r, 20))
		emit_mov_imm(g, R_CX, count);
	if (io && (!known(g, R_DX) || pct(g->r, 70)))
		emit_mov_imm(g, R_DX, r64(g->r));
	if (rep)
		extra[n++] = repne ? 0xf2 : 0xf3;
	if (pct(g->r, 2))
		extra[n++] = 0xf0;	/* LOCK: #UD */
	emit_prefixes(g, opsize_prefix(g, size), flip, override, extra, n,
		      g->mode == 64 ? rex : 0);
	emit(g, opcode);
	forget(g, R_SI);
	forget(g, R_DI);
	forget(g, R_CX);
	if (opcode == 0xac || opcode == 0xad)
		forget(g, R_AX);
	return true;
}

/* IN and OUT: imm8 or DX port, 8, 16 or 32 bits. */
static bool gen_inout(struct gen *g)
{
	bool in = pct(g->r, 50), dx = pct(g->r, 60);
	unsigned int size = pct(g->r, 35) ? 1 : pick_opsize(g);
	uint8_t op = (dx ? 0xec : 0xe4) | (in ? 0 : 2) | (size > 1);

	if (size == 8)
		size = 4;
	if (dx && (!known(g, R_DX) || pct(g->r, 70)))
		emit_mov_imm(g, R_DX, pct(g->r, 80) ? rn(g->r, 0x10000) : r64(g->r));
	if (size > 1 && opsize_prefix(g, size))
		emit(g, 0x66);
	if (g->mode == 64 && pct(g->r, 8))
		emit(g, 0x48);	/* REX.W does not widen them */
	emit(g, op);
	if (!dx)
		emit(g, r64(g->r));
	if (in)
		forget(g, R_AX);
	return true;
}

static void gen_control(struct gen *g)
{
	switch (rn(g->r, 9)) {
	case 0:
		emit(g, 0xfc);		/* CLD */
		g->df = false;
		break;
	case 1:
		emit(g, 0xfd);		/* STD */
		g->df = true;
		break;
	case 2:
	case 3:
		/* STAC/CLAC: #UD at CPL 3 and without SMAP */
		if (g->cpl == 0 && (g->smap || pct(g->r, 20))) {
			emit(g, 0x0f);
			emit(g, 0x01);
			emit(g, pct(g->r, 50) ? 0xcb : 0xca);
		} else {
			emit(g, 0x90);
		}
		break;
	case 4:
		emit(g, 0x0f);		/* LFENCE */
		emit(g, 0xae);
		emit(g, 0xe8);
		break;
	case 5:
		emit(g, 0xf3);		/* PAUSE */
		emit(g, 0x90);
		break;
	default: {
		int r = pick_addr_reg(g, -1);

		emit_mov_imm(g, r, pool_value(g));
		break;
	}
	}
}

/* XLAT: AL = [seg:RBX + AL]. */
static bool gen_xlat(struct gen *g)
{
	bool flip;
	unsigned int abytes = pick_abytes(g, &flip);
	int override = pct(g->r, 30) ? (int)rn(g->r, 6) : S_NONE;
	uint64_t al = rn(g->r, 256);
	uint64_t ea = pick_ea(g, override != S_NONE ? override : S_DS, 1, abytes);

	emit_mov_imm(g, R_BX, (ea - al) & amask(abytes));
	emit_mov_imm(g, R_AX, al | (r64(g->r) & ~0xffULL));
	emit_prefixes(g, false, flip, override, NULL, 0, 0);
	emit(g, 0xd7);
	forget(g, R_AX);
	return true;
}

/* How often each class of instruction comes, in a program. */
struct weights {
	unsigned int known, alu, string_mem, inout, string_io, other, control;
};

static void gen_body(struct gen *g, const struct weights *w, unsigned int count)
{
	unsigned int total = w->known + w->alu + w->string_mem + w->inout + w->string_io +
			     w->other + w->control;

	for (unsigned int i = 0; i < count && i < body_cut && g->pos + 64 < g->end; i++) {
		unsigned int x = rn(g->r, total);
		static const uint8_t smem[] = { 0xa4, 0xa6, 0xaa, 0xac, 0xae, 0xaa, 0xaa };

		if (x < w->known) {
			gen_known_op(g);
		} else if ((x -= w->known) < w->alu) {
			gen_alu_op(g);
		} else if ((x -= w->alu) < w->string_mem) {
			gen_string(g, smem[rn(g->r, sizeof(smem))]);
		} else if ((x -= w->string_mem) < w->inout) {
			gen_inout(g);
		} else if ((x -= w->inout) < w->string_io) {
			gen_string(g, pct(g->r, 50) ? 0x6c : 0x6e);
		} else if ((x -= w->string_io) < w->other) {
			if (pct(g->r, 8))
				gen_xlat(g);
			else
				gen_other_op(g);
		} else {
			gen_control(g);
		}
		g->insns++;
	}
}

/* An offset in a page for an access of @size bytes: the edges above all. */
static uint64_t page_offset(struct rng *r, unsigned int size)
{
	switch (rn(r, 5)) {
	case 0:
		return rn(r, 16);
	case 1:
		return PAGE_SIZE - size - rn(r, 8);
	case 2:
		return PAGE_SIZE - 1 - rn(r, size);	/* crosses into the next page */
	default:
		return rn(r, PAGE_SIZE);
	}
}

/* ------------------------------------------------------------------------
 * 64-bit programs
 *
 * The guest's executor (fz_guest_main) reports to the host with a ucall,
 * which prepares the next program, then runs it at CPL 0 (fz_kernel_call)
 * or CPL 3 (guest_user_call), with CR3 reloaded so that the TLB has none of
 * the window's old translations.  fz_fault takes every exception: from CPL
 * 3 it ends the guest_user_call(), from CPL 0 it returns to fz_kernel_call
 * on the stack it saved.  Programs never write RSP.
 */

#define DATA_GVA	0x00007e0000000000ULL	/* NR_DATA window pages, PML4 entry 252 */
#define CODE_GVA	0x00007e0000200000ULL	/* two code pages, a page table of their own */
#define EDGE_GVA	0x00007fffffffe000ULL	/* the last two canonical lower-half pages */
#define HIGH_GVA	0xffff800000000000ULL	/* the first upper-half page */
#define TOP_GVA		0xfffffffffffff000ULL	/* the last page: accesses wrap to 0 */
#define NONCANON	0x0000800000000000ULL
#define IDENT_MMIO	0xc0000000ULL		/* identity-mapped, and no memslot there */
#define MMIO_GPA	0xd0000000ULL		/* MMIO pages the window maps */
#define LOW_RAM_END	0x100000ULL		/* below: RAM the library does not use */
#define NR_DATA		8
#define NR_WIN		12			/* data, edge, high and top pages */
#define NR_LEAF		(NR_WIN + 2)		/* and the two code pages */
#define NR_RAM		12
#define FZ_STAGE	0xf22
#define FZ_NO_VECTOR	0xffffULL

struct fz_state {
	uint64_t code;		/* the program's entry */
	uint64_t rflags;
	uint64_t user;		/* run it at CPL 3 */
	uint64_t vector;	/* the exception that ended it, or FZ_NO_VECTOR */
	uint64_t error_code, cr2, rip, cs;
	uint64_t rsi, rdi, rcx;	/* for FUZZ_TRACE=2 */
};

struct fz_state fz_state;
uint64_t fz_saved_rsp, fz_in_kernel;	/* fz_kernel_call's */

uint64_t fz_kernel_call(uint64_t code, uint64_t rflags);
extern char fz_kernel_back[];
asm(".pushsection .text\n"
    ".globl fz_kernel_call\n"
    "fz_kernel_call:\n"
    "	push %rbp\n"
    "	push %rbx\n"
    "	push %r12\n"
    "	push %r13\n"
    "	push %r14\n"
    "	push %r15\n"
    "	mov %rsp, fz_saved_rsp(%rip)\n"
    "	movq $1, fz_in_kernel(%rip)\n"
    "	push %rsi\n"
    "	popfq\n"
    "	call *%rdi\n"
    ".globl fz_kernel_back\n"
    "fz_kernel_back:\n"
    "	movq $0, fz_in_kernel(%rip)\n"
    "	mov fz_saved_rsp(%rip), %rsp\n"
    "	pushq $2\n"
    "	popfq\n"
    "	pop %r15\n"
    "	pop %r14\n"
    "	pop %r13\n"
    "	pop %r12\n"
    "	pop %rbx\n"
    "	pop %rbp\n"
    "	ret\n"
    ".popsection\n");

static void fz_fault(struct ex_regs *regs)
{
	uint64_t cr2;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	fz_state.vector = regs->vector;
	fz_state.error_code = regs->error_code;
	fz_state.cr2 = cr2;
	fz_state.rip = regs->rip;
	fz_state.cs = regs->cs;
	fz_state.rsi = regs->rsi;
	fz_state.rdi = regs->rdi;
	fz_state.rcx = regs->rcx;
	if ((regs->cs & 3) == 3) {
		guest_user_abort(regs, GUEST_USER_FAULTED(regs->vector));
		return;
	}
	/* At CPL 0 outside a program: the guest itself broke. */
	if (!fz_in_kernel)
		for (;;)
			ucall(UCALL_UNHANDLED, regs->vector, regs->rip, regs->error_code, cr2, 0,
			      0);
	regs->rip = (uint64_t)fz_kernel_back;
	regs->cs = SEL_CODE64;
	regs->rsp = fz_saved_rsp;
	regs->ss = SEL_DATA;
	regs->rflags = 2;
}

static void fz_guest_main(void)
{
	volatile struct fz_state *s = &fz_state;

	for (;;) {
		GUEST_SYNC_ARGS(FZ_STAGE, 0, 0, 0);
		s->vector = FZ_NO_VECTOR;
		asm volatile("mov %%cr3, %%rax\n\tmov %%rax, %%cr3" ::: "rax", "memory");
		if (s->user)
			guest_user_call((guest_user_fn)s->code, s->rflags, 0, 0, 0, 0);
		else
			fz_kernel_call(s->code, s->rflags);
	}
}

/*
 * The race: a second vCPU and a host thread rewrite the program's bytes and
 * the window's entries.  Both run mutate_once(), on the guest's addresses
 * and on the host's, so it may call nothing outside this file.
 */
struct fz_race {
	uint64_t seed;
	uint64_t code, len;		/* the program's bytes (their identity-mapped GVA) */
	uint64_t pte[NR_LEAF];		/* the leaf entries (identity-mapped GVAs) */
	uint64_t want[NR_LEAF];		/* what the host put there */
	uint64_t upper[3], upper_want[3];
	uint64_t gpa[8];		/* what a rewritten entry may point at */
	uint64_t nr_gpa;
	uint64_t count;
};

struct fz_race fz_race;

static const uint64_t race_bits[] = {
	PTE_P, PTE_RW, PTE_US, PTE_A, PTE_D, PTE_PS, 1ULL << 8, PTE_NX, 1ULL << 51,
};

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void mutate_once(uint64_t *x, volatile uint8_t *code, uint64_t len,
			volatile uint64_t *const *pte, const volatile uint64_t *want,
			volatile uint64_t *const *upper, const volatile uint64_t *upper_want,
			const volatile uint64_t *gpa, uint64_t nr_gpa)
{
	uint64_t v = xorshift(x);
	unsigned int i = (v >> 8) % NR_LEAF, b = (v >> 20) % (sizeof(race_bits) / 8);

	switch (v % 16) {
	case 0 ... 5:
		if (len) {
			if (v & (1ULL << 60))
				code[(v >> 24) % len] = v >> 40;
			else
				code[(v >> 24) % len] ^= 1 << ((v >> 40) & 7);
		}
		break;
	case 6 ... 10:
		*pte[i] ^= race_bits[b];
		break;
	case 11:
	case 12:
		if (nr_gpa)
			*pte[i] = (*pte[i] & ~PTE_ADDR_MASK) | gpa[(v >> 24) % nr_gpa];
		break;
	case 13:
	case 14:
		*pte[i] = want[i];
		break;
	default:
		i = (v >> 8) % 3;
		if (v & (1ULL << 60))
			*upper[i] = upper_want[i];
		else
			*upper[i] ^= race_bits[b];
		break;
	}
}

static void fz_mutator_main(void)
{
	volatile struct fz_race *s = &fz_race;
	uint64_t x = s->seed | 1;

	for (;;) {
		volatile uint64_t *pte[NR_LEAF], *upper[3];

		for (int i = 0; i < NR_LEAF; i++)
			pte[i] = (volatile uint64_t *)s->pte[i];
		for (int i = 0; i < 3; i++)
			upper[i] = (volatile uint64_t *)s->upper[i];
		mutate_once(&x, (volatile uint8_t *)s->code, s->len, pte, s->want, upper,
			    s->upper_want, s->gpa, s->nr_gpa);
		s->count++;
		for (unsigned int d = x & 0x3ff; d; d--)
			asm volatile("pause");
	}
}

/* A long-mode VM of the 64-bit cases. */
struct lm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	struct fz_state *sh;		/* the guest's fz_state */
	uint64_t code_gpa;		/* two pages */
	uint8_t *code;
	uint64_t ram_gpa[NR_RAM];
	uint8_t *ram[NR_RAM];
	uint64_t *pte[NR_LEAF];
	uint64_t *upper[3];		/* PDE, PDPTE and PML4E of the data pages */
	uint64_t upper_val[3];
	uint64_t pt_gpa;		/* the data pages' page table */
	bool smep, smap, nx;
	unsigned int maxphy;
	uint64_t progs;
	/* emulator_race */
	struct fz_race *race;		/* the guest's fz_race */
	struct kvm_vcpu *mutator;
	pthread_t vcpu_thread, host_thread;
	atomic_bool stop;
	atomic_uint_fast64_t host_count;
	uint32_t mutator_exit;
};

struct lm_case {
	const char *name;
	struct weights w;
	unsigned int mmio_pct;		/* window pages backed by MMIO */
	unsigned int max_insns;
	bool race;
};

static uint64_t win_gva(int i)
{
	if (i < NR_DATA)
		return DATA_GVA + i * PAGE_SIZE;
	if (i < NR_DATA + 2)
		return EDGE_GVA + (i - NR_DATA) * PAGE_SIZE;
	if (i == NR_DATA + 2)
		return HIGH_GVA;
	if (i == NR_DATA + 3)
		return TOP_GVA;
	return CODE_GVA + (i - NR_WIN) * PAGE_SIZE;
}

static bool cpuid_bit(struct kvm_vm *vm, uint32_t fn, int reg, int bit)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, fn, 0);
	uint32_t v;

	if (!e)
		return false;
	v = reg == 1 ? e->ebx : reg == 2 ? e->ecx : e->edx;
	return v & (1u << bit);
}

static unsigned int guest_maxphy(struct kvm_vm *vm)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0x80000008, 0);

	return e ? (e->eax & 0xff) : 36;
}

/* The guest-physical address of the entry at @level of @gva's walk. */
static uint64_t pte_gpa(struct kvm_vm *vm, uint64_t gva, int level)
{
	uint64_t table = level == 4 ? vm->pt.root : *virt_pte(vm, gva, level + 1) & PTE_ADDR_MASK;

	return table + ((gva >> (12 + 9 * (level - 1))) & 511) * 8;
}

/* The program's vCPU ran to the executor's report: a SYNC, or the guest broke. */
static bool lm_is_report(struct lm *m)
{
	struct kvm_run *run = m->vcpu->run;
	struct kvm_regs regs;

	if (run->exit_reason != KVM_EXIT_IO || run->io.port != UCALL_PORT ||
	    run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 1 || run->io.count != 1)
		return false;
	/* A program may write to that port too: only ucall()'s OUT is a report. */
	vcpu_regs_get(m->vcpu, &regs);
	return regs.rip > (uint64_t)ucall && regs.rip <= (uint64_t)ucall + 0x40;
}

static enum pout lm_run(struct ecase *c, struct lm *m, struct rng *ans)
{
	unsigned int exits = 0, ticks = 0, fails = 0;
	struct ucall uc;

	for (;;) {
		if (!erun(c, m->vcpu)) {
			if (++ticks > PROG_MAX_TICKS)
				return P_STUCK;
			continue;
		}
		if (lm_is_report(m)) {
			if (get_ucall(m->vcpu, &uc) == UCALL_SYNC && uc.args[0] == FZ_STAGE)
				return P_DONE;
			anomaly(c, "the executor stopped: ucall %" PRIu64 " (%#" PRIx64 " %#" PRIx64
				" %#" PRIx64 " %#" PRIx64 ")", uc.cmd, uc.args[0], uc.args[1],
				uc.args[2], uc.args[3]);
			return P_LOST;
		}
		switch (handle_exit(c, m->vm, m->vcpu, ans, &fails)) {
		case X_GO:
			break;
		case X_LOST:
			return P_LOST;
		case X_SHUTDOWN:
			return P_SHUTDOWN;
		}
		if (++exits > PROG_MAX_EXITS)
			return P_BUDGET;
	}
}

static void *race_vcpu_thread(void *arg)
{
	struct lm *m = arg;

	while (!atomic_load(&m->stop)) {
		if (__vcpu_run(m->mutator) < 0) {
			TEST_ASSERT(errno == EINTR, "the mutator's KVM_RUN failed: %s",
				    strerror(errno));
			consume_tick();
			continue;
		}
		/* It makes no exits of its own: an exception it reported, a shutdown... */
		m->mutator_exit = m->mutator->run->exit_reason;
		break;
	}
	return NULL;
}

static void *race_host_thread(void *arg)
{
	struct lm *m = arg;
	uint64_t x = m->race->seed * 3 + 1;

	while (!atomic_load(&m->stop)) {
		struct fz_race *s = m->race;
		uint64_t len = s->len;
		uint64_t off = s->code - m->code_gpa;

		if (off + len > 2 * PAGE_SIZE)
			len = 0;
		mutate_once(&x, m->code + off, len, (volatile uint64_t *const *)m->pte, s->want,
			    (volatile uint64_t *const *)m->upper, s->upper_want, s->gpa,
			    s->nr_gpa);
		atomic_fetch_add(&m->host_count, 1);
		if (x & 1)
			sched_yield();
		else
			nanosleep(&(struct timespec){ 0, (x >> 8) % 50000 }, NULL);
	}
	return NULL;
}

static void lm_destroy(struct ecase *c, struct lm *m)
{
	if (m->mutator) {
		atomic_store(&m->stop, true);
		pthread_kill(m->vcpu_thread, SIGUSR1);
		pthread_join(m->vcpu_thread, NULL);
		pthread_join(m->host_thread, NULL);
		c->st.mutations += m->race->count + atomic_load(&m->host_count);
		if (m->mutator_exit)
			anomaly(c, "the mutator vCPU exited: %u (%s)", m->mutator_exit,
				exit_reason_str(m->mutator_exit));
	}
	vm_free(m->vm);
	memset(m, 0, sizeof(*m));
}

static void lm_create(struct ecase *c, struct lm *m, const struct lm_case *lc)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct rng r = { c->seed ^ c->prog };
	struct ucall uc;

	memset(m, 0, sizeof(*m));
	m->vm = vm;
	m->vcpu = vm_vcpu_add(vm, 0, fz_guest_main);
	m->code_gpa = vm_alloc_pages(vm, 2);
	m->code = gpa2hva(vm, m->code_gpa);
	for (int i = 0; i < NR_RAM; i++) {
		m->ram_gpa[i] = vm_alloc_pages(vm, 1);
		m->ram[i] = gpa2hva(vm, m->ram_gpa[i]);
	}
	for (int i = 0; i < NR_LEAF; i++) {
		uint64_t gpa = i < NR_WIN ? m->ram_gpa[i % NR_RAM] :
			       m->code_gpa + (i - NR_WIN) * PAGE_SIZE;

		virt_map_flags(vm, win_gva(i), gpa, PAGE_SIZE, PTE_RW | PTE_US);
		m->pte[i] = virt_pte(vm, win_gva(i), 1);
	}
	for (int l = 2; l <= 4; l++) {
		m->upper[l - 2] = virt_pte(vm, DATA_GVA, l);
		m->upper_val[l - 2] = *m->upper[l - 2];
	}
	m->pt_gpa = *m->upper[0] & PTE_ADDR_MASK;
	for (int v = 0; v < 32; v++)
		vm_install_exception_handler(vm, v, fz_fault);
	m->sh = gva2hva(vm, (uint64_t)&fz_state);
	m->smep = cpuid_bit(vm, 7, 1, 7);
	m->smap = cpuid_bit(vm, 7, 1, 20);
	m->nx = cpuid_bit(vm, 0x80000001, 3, 20);
	m->maxphy = guest_maxphy(vm);
	unblock_tick_in_run(m->vcpu);
	c->st.vms++;

	/* To the executor's first report. */
	for (int ticks = 0; !erun(c, m->vcpu); ticks++)
		ECHECK(c, ticks < 500, "the executor of a new VM never reported");
	ECHECK(c, lm_is_report(m) && get_ucall(m->vcpu, &uc) == UCALL_SYNC,
	       "the executor of a new VM: exit %u (%s)", m->vcpu->run->exit_reason,
	       exit_reason_str(m->vcpu->run->exit_reason));

	if (!lc->race)
		return;
	m->race = gva2hva(vm, (uint64_t)&fz_race);
	m->race->seed = r64(&r);
	for (int i = 0; i < NR_LEAF; i++)
		m->race->pte[i] = pte_gpa(vm, win_gva(i), 1);
	for (int l = 2; l <= 4; l++)
		m->race->upper[l - 2] = pte_gpa(vm, DATA_GVA, l);
	m->race->gpa[0] = m->ram_gpa[0];
	m->race->gpa[1] = m->ram_gpa[1];
	m->race->gpa[2] = MMIO_GPA;
	m->race->gpa[3] = MMIO_GPA + PAGE_SIZE;
	m->race->gpa[4] = m->code_gpa;
	m->race->gpa[5] = m->pt_gpa;	/* the window's own page table */
	m->race->gpa[6] = 1ULL << 32;
	m->race->gpa[7] = m->ram_gpa[2];
	m->race->nr_gpa = 8;
	m->mutator = vm_vcpu_add(vm, 1, fz_mutator_main);
	unblock_tick_in_run(m->mutator);
	TEST_ASSERT(pthread_create(&m->vcpu_thread, NULL, race_vcpu_thread, m) == 0,
		    "pthread_create");
	TEST_ASSERT(pthread_create(&m->host_thread, NULL, race_host_thread, m) == 0,
		    "pthread_create");
}

/* A backing for a window page: RAM, MMIO in several places, or the code. */
static uint64_t lm_backing(struct lm *m, struct rng *r, unsigned int mmio_pct, int cpl)
{
	unsigned int p = rn(r, 100);

	if (p < mmio_pct) {
		switch (rn(r, 8)) {
		case 0:
			return 0xfffff000ULL;			/* the last page below 4 GiB */
		case 1:
			return (1ULL << 32) + rn(r, 4) * PAGE_SIZE;	/* above it */
		case 2:
			return (1ULL << m->maxphy) - PAGE_SIZE;	/* the top of MAXPHYADDR */
		case 3:
			return m->vm->mem_size;			/* just past RAM */
		default:
			return MMIO_GPA + rn(r, 16) * PAGE_SIZE;
		}
	}
	if (cpl == 3 && p < mmio_pct + 4)
		return m->code_gpa + rn(r, 2) * PAGE_SIZE;	/* code the program writes */
	return m->ram_gpa[rn(r, NR_RAM)];
}

/* A bit the entries of this guest reserve. */
static uint64_t rsvd_bit(struct lm *m, struct rng *r, bool nxe)
{
	if (!nxe && pct(r, 50))
		return 1ULL << 63;
	if (m->maxphy < 52)
		return 1ULL << (m->maxphy + rn(r, 52 - m->maxphy));
	return nxe ? 0 : 1ULL << 63;
}

static uint64_t lm_leaf(struct lm *m, struct rng *r, uint64_t gpa, int cpl, bool nxe)
{
	uint64_t pte = gpa | PTE_P;

	if (pct(r, 7))
		pte &= ~PTE_P;
	if (pct(r, 75))
		pte |= PTE_RW;
	if (pct(r, cpl == 3 ? 85 : 40))
		pte |= PTE_US;
	if (pct(r, 50))
		pte |= PTE_A;
	if (pct(r, 50))
		pte |= PTE_D;
	if (nxe && pct(r, 15))
		pte |= PTE_NX;
	if (pct(r, 3))
		pte |= rsvd_bit(m, r, nxe);
	return pte;
}

/* A program may write the guest's own tables, stacks and code only at CPL 3. */
static bool lm_bad(struct gen *g, uint64_t la, uint64_t n)
{
	struct lm *m = g->ctx;

	if (g->cpl == 3)
		return false;
	return overlaps(la, n, LOW_RAM_END, m->vm->mem_size - LOW_RAM_END) ||
	       overlaps(la, n, CODE_GVA, 2 * PAGE_SIZE);
}

static uint64_t lm_pick_la(struct gen *g, unsigned int size)
{
	struct rng *r = g->r;

	switch (rn(r, 26)) {
	case 0 ... 9:
		return DATA_GVA + rn(r, NR_DATA) * PAGE_SIZE + page_offset(r, size);
	case 10:
	case 11:
		return EDGE_GVA + rn(r, 2) * PAGE_SIZE + page_offset(r, size);
	case 12:
		return NONCANON - 1 - rn(r, 16);	/* into the hole */
	case 13:
		return IDENT_MMIO + rn(r, 1 << 26);
	case 14:
		return (1ULL << 32) - 1 - rn(r, 32);
	case 15:
		return HIGH_GVA + page_offset(r, size);
	case 16:
		return HIGH_GVA - 1 - rn(r, 16);
	case 17:
		return TOP_GVA + page_offset(r, size);	/* and on to 0 */
	case 18:
		switch (rn(r, 3)) {
		case 0:
			return NONCANON + rn(r, 0x10000);
		case 1:
			return 0x8000000000000000ULL + DATA_GVA + rn(r, NR_DATA * PAGE_SIZE);
		default:
			return r64(r) ^ (1ULL << 47);
		}
	case 19:
		return rn(r, LOW_RAM_END - 16);
	case 20:
		return r64(r);
	case 21:
		if (g->cpl == 3)
			return CODE_GVA + rn(r, 2 * PAGE_SIZE);
		/* fall through */
	default:	/* across two data pages */
		return DATA_GVA + (1 + rn(r, NR_DATA - 1)) * PAGE_SIZE - 1 - rn(r, 15);
	}
}

static uint64_t lm_seg_base(struct rng *r)
{
	switch (rn(r, 8)) {
	case 0:
		return DATA_GVA;
	case 1:
		return NONCANON - PAGE_SIZE + rn(r, 2 * PAGE_SIZE);
	case 2:
		return r64(r);
	case 3:
		return IDENT_MMIO;
	case 4:
		return -rn(r, 0x10000);
	default:
		return 0;
	}
}

struct lm_prog {
	int cpl;
	unsigned int start, len;
	bool wp, smep, smap, nxe;
	uint64_t rflags, fs, gs;
};

static void lm_program(struct ecase *c, struct lm *m, const struct lm_case *lc, struct rng *r,
		       struct lm_prog *p)
{
	struct kvm_sregs sregs;
	struct gen g = {
		.r = r, .buf = m->code, .ip_base = CODE_GVA, .mode = 64,
		.pick_la = lm_pick_la, .bad = lm_bad, .ctx = m,
	};
	uint64_t leaf, fs, gs;
	bool am = pct(r, 70);

	memset(p, 0, sizeof(*p));
	p->cpl = (lc->race || pct(r, 50)) ? 3 : 0;
	p->wp = pct(r, 80);
	p->smep = m->smep && pct(r, 35);
	p->smap = m->smap && pct(r, 35);
	p->nxe = m->nx && pct(r, 50);
	p->rflags = 2 | (r64(r) & RFLAGS_ARITH) | (pct(r, 35) ? RFLAGS_DF : 0) |
		    (pct(r, 30) ? RFLAGS_AC : 0);
	if (pct(r, p->cpl == 3 ? 80 : 20))
		p->rflags |= RFLAGS_IOPL3;
	fs = p->fs = lm_seg_base(r);
	gs = p->gs = lm_seg_base(r);
	/*
	 * VMX refuses to enter with a non-canonical FS or GS base (SDM vol. 3
	 * 26.3.1.2), which only a VMM can set: on Intel KVM fails the entry,
	 * so the bases are made canonical there.
	 */
	if (host_cpu_is_intel()) {
		fs = p->fs = (uint64_t)((int64_t)(fs << 16) >> 16);
		gs = p->gs = (uint64_t)((int64_t)(gs << 16) >> 16);
	}

	/* The window: each page's backing and rights; now and then an entry above. */
	for (int i = 0; i < NR_WIN; i++)
		*m->pte[i] = lm_leaf(m, r, lm_backing(m, r, lc->mmio_pct, p->cpl), p->cpl, p->nxe);
	for (int l = 0; l < 3; l++)
		*m->upper[l] = m->upper_val[l];
	if (pct(r, 6)) {
		uint64_t *e = m->upper[rn(r, 3)];

		switch (rn(r, 6)) {
		case 0:
			*e &= ~PTE_RW;
			break;
		case 1:
			*e &= ~PTE_US;
			break;
		case 2:
			*e |= p->nxe ? PTE_NX : 0;
			break;
		case 3:
			*e &= ~PTE_P;
			break;
		case 4:
			*e |= e == m->upper[2] ? PTE_PS : rsvd_bit(m, r, p->nxe);
			break;
		default:	/* the next table in MMIO */
			*e = (*e & ~PTE_ADDR_MASK) | (MMIO_GPA + rn(r, 16) * PAGE_SIZE);
			break;
		}
	}
	/* The code: its first page as the CPL wants, mostly; its second anything. */
	leaf = m->code_gpa | PTE_P | PTE_RW | PTE_A | (p->cpl == 3 ? PTE_US : 0);
	if (pct(r, 3))
		leaf ^= PTE_US;
	*m->pte[NR_WIN] = leaf;
	leaf += PAGE_SIZE;
	if (pct(r, 25)) {
		switch (rn(r, 4)) {
		case 0:
			leaf &= ~PTE_P;
			break;
		case 1:
			leaf |= p->nxe ? PTE_NX : PTE_P;
			break;
		case 2:
			leaf ^= PTE_US;
			break;
		default:
			leaf = (leaf & ~PTE_ADDR_MASK) | MMIO_GPA;	/* fetch from MMIO */
			break;
		}
	}
	*m->pte[NR_WIN + 1] = leaf;
	for (int i = 0; i < NR_RAM; i++)
		for (unsigned int j = 0; j < PAGE_SIZE; j += 8)
			*(uint64_t *)(m->ram[i] + j) = r64(r);
	memset(m->code, 0xcc, 2 * PAGE_SIZE);

	/* The program: somewhere in the first page, or running on into the second. */
	p->start = pct(r, 30) ? PAGE_SIZE - 16 - rn(r, 240) : rn(r, 1024);
	g.pos = p->start;
	g.end = 2 * PAGE_SIZE - 2;
	g.cpl = p->cpl;
	g.df = p->rflags & RFLAGS_DF;
	g.smap = m->smap;
	g.wild = p->cpl == 3;
	g.seg_base[S_FS] = fs;
	g.seg_base[S_GS] = gs;
	for (int reg = 0; reg < 16; reg++)
		if (reg != R_SP && pct(r, 60))
			emit_mov_imm(&g, reg, pool_value(&g));
	gen_body(&g, &lc->w, 1 + rn(r, lc->max_insns));
	emit(&g, 0xc3);		/* RET */
	p->len = g.pos - p->start;
	c->st.insns += g.insns;

	m->sh->code = CODE_GVA + p->start;
	m->sh->user = p->cpl == 3;
	m->sh->rflags = p->rflags;
	if (m->race) {
		for (int i = 0; i < NR_LEAF; i++)
			m->race->want[i] = *m->pte[i];
		for (int l = 0; l < 3; l++)
			m->race->upper_want[l] = *m->upper[l];
		m->race->code = m->code_gpa + p->start;
		m->race->len = p->len;
	}

	vcpu_sregs_get(m->vcpu, &sregs);
	sregs.cr0 = (sregs.cr0 & ~(CR0_WP | CR0_AM)) | (p->wp ? CR0_WP : 0) | (am ? CR0_AM : 0);
	sregs.cr4 = (sregs.cr4 & ~(CR4_SMEP | CR4_SMAP)) | (p->smep ? CR4_SMEP : 0) |
		    (p->smap ? CR4_SMAP : 0);
	sregs.efer = (sregs.efer & ~EFER_NXE) | (p->nxe ? EFER_NXE : 0);
	sregs.fs.base = fs;
	sregs.gs.base = gs;
	vcpu_sregs_set(m->vcpu, &sregs);
}

static void lm_fuzz(const struct lm_case *lc)
{
	struct ecase c;
	struct lm m = { 0 };

	ecase_start(&c, lc->name);
	for (; ecase_more(&c); c.prog++) {
		struct rng r = { c.seed + c.prog * 0x9e3779b97f4a7c15ULL };
		struct rng ans = { ~r.s };
		struct lm_prog p;
		enum pout out;
		uint64_t vector;

		if (!m.vm) {
			uint64_t t = now_ns();

			lm_create(&c, &m, lc);
			c.st.vm_ns += now_ns() - t;
		}
		lm_program(&c, &m, lc, &r, &p);
		if (c.trace) {
			test_log("%s: program %" PRIu64 " at CPL %d: rflags %#" PRIx64 " wp %d "
				 "smep %d smap %d nxe %d", c.name, c.prog, p.cpl, p.rflags, p.wp,
				 p.smep, p.smap, p.nxe);
			trace_code(&c, CODE_GVA + p.start, m.code + p.start, p.len);
		}
		out = lm_run(&c, &m, &ans);
		vector = m.sh->vector;
		if (c.trace && out != P_DONE) {
			struct kvm_regs regs;

			vcpu_regs_get(m.vcpu, &regs);
			test_log("%s: program %" PRIu64 " %s at rip %#llx rsp %#llx rsi %#llx rdi "
				 "%#llx rcx %#llx rflags %#llx", c.name, c.prog, pout_names[out],
				 regs.rip, regs.rsp, regs.rsi, regs.rdi, regs.rcx, regs.rflags);
		}
		c.st.programs++;
		c.st.cpl3 += p.cpl == 3;
		count_outcome(&c, out, vector, vector == FZ_NO_VECTOR);
		if (c.trace)
			test_log("%s: program %" PRIu64 ": %s, vector %#" PRIx64 " error code %#"
				 PRIx64 " rip %#" PRIx64 " cr2 %#" PRIx64, c.name, c.prog,
				 pout_names[out], vector, m.sh->error_code, m.sh->rip, m.sh->cr2);
		if (c.trace > 1 && m.vm) {
			test_log("  rsi %#" PRIx64 " rdi %#" PRIx64 " rcx %#" PRIx64 " fs %#" PRIx64
				 " gs %#" PRIx64, m.sh->rsi, m.sh->rdi, m.sh->rcx, p.fs, p.gs);
			for (int i = 0; i < NR_LEAF; i++)
				test_log("  %#" PRIx64 ": %#" PRIx64, win_gva(i), *m.pte[i]);
			for (int l = 0; l < 3; l++)
				test_log("  level %d: %#" PRIx64, l + 2, *m.upper[l]);
		}
		if (out != P_DONE || ++m.progs >= PROGS_PER_VM)
			lm_destroy(&c, &m);
	}
	if (m.vm)
		lm_destroy(&c, &m);
	ecase_end(&c);
}

/* ------------------------------------------------------------------------
 * 32-bit protected mode and 16-bit code segments
 *
 * The host sets the whole state of each program: registers, segments
 * (hidden parts as KVM_SET_SREGS takes them), paging.  Programs end with
 * INT $PM_END_VECTOR; every vector goes through a 32-bit interrupt gate to
 * a stub that pushes its number and reports on PM_REPORT.  A program at
 * CPL 3 changes to the kernel stack of the TSS.
 */

#define PM_IDT		0x2000ULL
#define PM_STUBS	0x3000ULL	/* 8 bytes per vector */
#define PM_KSTACK	0x8000ULL	/* the top of the kernel stack, from 0x4000 */
#define PM_PD		0x8000ULL	/* 32-bit paging: the page directory */
#define PM_PDPT		0x9000ULL	/* PAE: the PDPT, and four page directories */
#define PM_PAE_PD	0xa000ULL
#define PM_PT		0xe000ULL	/* the window's page table, 32-bit entries */
#define PM_PAE_PT	0xf000ULL	/* and PAE ones */
#define PM_SCRATCH	0x10000ULL	/* 16 pages of RAM to touch */
#define PM_CODE		0x20000ULL	/* two pages of code */
#define PM_WIN		0x80000000ULL	/* the window, with paging */
#define PM_WIN_CODE	(PM_WIN + 0x20000)	/* its pages 32 and 33: the code */
#define PM_NR_DATA	16
#define PM_REPORT	0xe5
#define PM_END_VECTOR	0x41

enum { PG_NONE, PG_32, PG_PAE };

struct pm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	uint8_t *mem;		/* guest-physical 0 */
	bool smep, smap, nx;
	unsigned int maxphy;
	uint64_t progs;
};

struct pm_prog {
	int cpl, paging, code;	/* code: 16 or 32 */
	unsigned int start, len;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
};

static void pm_create(struct ecase *c, struct pm *m)
{
	uint32_t *idt, *tss;
	uint8_t *stubs;

	memset(m, 0, sizeof(*m));
	m->vm = vm_create(VM_MODE_PROT32);
	m->vcpu = vm_vcpu_add_at(m->vm, 0, PM_CODE);
	m->mem = gpa2hva(m->vm, 0);
	idt = (uint32_t *)(m->mem + PM_IDT);
	stubs = m->mem + PM_STUBS;
	for (int v = 0; v < 256; v++) {
		uint32_t stub = PM_STUBS + 8 * v;
		uint8_t *p = stubs + 8 * v;

		/* push $v; out %al, $PM_REPORT; hlt */
		p[0] = 0x6a;
		p[1] = v;
		p[2] = 0xe6;
		p[3] = PM_REPORT;
		memset(p + 4, 0xf4, 4);
		/* 32-bit interrupt gates (SDM vol. 3 6.11); INT $PM_END_VECTOR from CPL 3 too. */
		idt[2 * v] = (stub & 0xffff) | (SEL_CODE32 << 16);
		idt[2 * v + 1] = (stub & 0xffff0000) | (v == PM_END_VECTOR ? 0xee00 : 0x8e00);
	}
	/* The 32-bit TSS: ESP0 and SS0 for exceptions from CPL 3. */
	tss = (uint32_t *)(m->mem + m->vm->tss_gpa);
	tss[1] = PM_KSTACK;
	tss[2] = SEL_DATA;
	m->smep = cpuid_bit(m->vm, 7, 1, 7);
	m->smap = cpuid_bit(m->vm, 7, 1, 20);
	m->nx = cpuid_bit(m->vm, 0x80000001, 3, 20);
	m->maxphy = guest_maxphy(m->vm);
	unblock_tick_in_run(m->vcpu);
	c->st.vms++;
}

static void pm_destroy(struct pm *m)
{
	vm_free(m->vm);
	memset(m, 0, sizeof(*m));
}

/* The guest's tables, stacks and code: never written (all CPLs, paging may be off). */
static bool pm_bad(struct gen *g, uint64_t la, uint64_t n)
{
	if (overlaps(la, n, 0, PM_SCRATCH) || overlaps(la, n, PM_CODE, 2 * PAGE_SIZE) ||
	    overlaps(la, n, LOW_RAM_END, DEFAULT_GUEST_MEM - LOW_RAM_END))
		return true;
	return g->cpl == 0 && overlaps(la, n, PM_WIN_CODE, 2 * PAGE_SIZE);
}

static uint64_t pm_pick_la(struct gen *g, unsigned int size)
{
	struct pm_prog *p = g->ctx;
	struct rng *r = g->r;

	switch (rn(r, 12)) {
	case 0 ... 4:
		if (p->paging != PG_NONE)
			return PM_WIN + rn(r, PM_NR_DATA) * PAGE_SIZE + page_offset(r, size);
		/* fall through */
	case 5:
		return PM_SCRATCH + rn(r, PM_NR_DATA) * PAGE_SIZE + page_offset(r, size);
	case 6:
		return MMIO_GPA + rn(r, 1 << 20);
	case 7:
		return 0xfec00000ULL + rn(r, 0x2000);
	case 8:
		return DEFAULT_GUEST_MEM - 1 - rn(r, 16);	/* from RAM into MMIO */
	case 9:
		return 0xffffffffULL - rn(r, 16);		/* and on to 0 */
	case 10:
		if (g->cpl == 3 && p->paging != PG_NONE)
			return PM_WIN_CODE + rn(r, 2 * PAGE_SIZE);
		/* fall through */
	default:
		return (uint32_t)r64(r);
	}
}

static void pm_random_seg(struct rng *r, struct kvm_segment *s, uint16_t sel, int dpl)
{
	static const uint64_t bases[] = { 0, 0, 0, PM_SCRATCH, MMIO_GPA, PM_WIN, 0xfffff000ULL };
	uint32_t l;

	*s = (struct kvm_segment){ .selector = sel, .present = 1, .s = 1, .dpl = dpl };
	s->base = pct(r, 85) ? bases[rn(r, sizeof(bases) / 8)] : (uint32_t)r64(r);
	switch (rn(r, 5)) {
	case 0:
	case 1:
		s->limit = 0xffffffff;
		s->g = 1;
		break;
	case 2:
		s->limit = 0xffff;
		break;
	case 3:
		s->limit = rn(r, 0x100000);
		break;
	default:
		l = rn(r, 0x100000);
		s->limit = (l << 12) | 0xfff;
		s->g = 1;
		break;
	}
	s->type = pct(r, 50) ? 3 : rn(r, 16);
	s->db = pct(r, 70);
	if (pct(r, 6)) {
		s->unusable = 1;
		s->present = 0;
		s->selector = 0;
	}
}

static void pm_flat(struct kvm_segment *s, uint16_t sel, int type, int dpl, bool db)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
		.dpl = dpl, .db = db, .s = 1, .g = 1,
	};
}

static uint32_t pm_leaf32(struct rng *r, uint64_t gpa, int cpl)
{
	uint32_t pte = gpa | PTE_P;

	if (pct(r, 7))
		pte &= ~PTE_P;
	if (pct(r, 75))
		pte |= PTE_RW;
	if (pct(r, cpl == 3 ? 85 : 40))
		pte |= PTE_US;
	if (pct(r, 50))
		pte |= PTE_A | PTE_D;
	return pte;
}

static uint64_t pm_backing(struct pm *m, struct rng *r, bool pae)
{
	switch (rn(r, 10)) {
	case 0 ... 4:
		return PM_SCRATCH + rn(r, PM_NR_DATA) * PAGE_SIZE;
	case 5:
		return pae ? (1ULL << 32) + rn(r, 4) * PAGE_SIZE : 0xfffff000ULL;
	case 6:
		return DEFAULT_GUEST_MEM;
	case 7:
		return pae ? (1ULL << m->maxphy) - PAGE_SIZE : MMIO_GPA;
	default:
		return MMIO_GPA + rn(r, 16) * PAGE_SIZE;
	}
}

/* Page tables: the low 4 GiB identity-mapped for the supervisor, but the window. */
static void pm_paging(struct pm *m, struct rng *r, struct pm_prog *p, bool nxe)
{
	uint64_t code_flags = PTE_P | PTE_RW | PTE_A | (p->cpl == 3 ? PTE_US : 0);

	if (pct(r, 3))
		code_flags ^= PTE_US;
	if (p->paging == PG_32) {
		uint32_t *pd = (uint32_t *)(m->mem + PM_PD), *pt = (uint32_t *)(m->mem + PM_PT);

		for (uint32_t i = 0; i < 1024; i++)
			pd[i] = (i << 22) | PTE_P | PTE_RW | PTE_PS;
		pd[PM_WIN >> 22] = PM_PT | PTE_P | PTE_RW | PTE_US;
		if (pct(r, 5))
			pd[PM_WIN >> 22] &= ~(pct(r, 50) ? PTE_RW : PTE_US);
		memset(pt, 0, PAGE_SIZE);
		for (int i = 0; i < PM_NR_DATA; i++)
			pt[i] = pm_leaf32(r, pm_backing(m, r, false), p->cpl);
		pt[32] = PM_CODE | code_flags;
		pt[33] = (PM_CODE + PAGE_SIZE) | code_flags;
		if (pct(r, 20))
			pt[33] = pct(r, 50) ? 0 : MMIO_GPA | code_flags;
		return;
	}
	uint64_t *pdpt = (uint64_t *)(m->mem + PM_PDPT), *pt = (uint64_t *)(m->mem + PM_PAE_PT);

	for (int i = 0; i < 4; i++) {
		uint64_t *pd = (uint64_t *)(m->mem + PM_PAE_PD + i * PAGE_SIZE);

		pdpt[i] = (PM_PAE_PD + i * PAGE_SIZE) | PTE_P;
		for (uint64_t j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i << 30 | j << 21) | PTE_P | PTE_RW | PTE_PS;
	}
	((uint64_t *)(m->mem + PM_PAE_PD + 2 * PAGE_SIZE))[0] =
		PM_PAE_PT | PTE_P | PTE_RW | PTE_US | (nxe && pct(r, 5) ? PTE_NX : 0);
	memset(pt, 0, PAGE_SIZE);
	for (int i = 0; i < PM_NR_DATA; i++) {
		pt[i] = pm_leaf32(r, 0, p->cpl) | pm_backing(m, r, true);
		if (nxe && pct(r, 15))
			pt[i] |= PTE_NX;
		if (pct(r, 3))
			pt[i] |= m->maxphy < 52 ? 1ULL << m->maxphy : 0;
	}
	pt[32] = PM_CODE | code_flags;
	pt[33] = (PM_CODE + PAGE_SIZE) | code_flags;
	if (pct(r, 20))
		pt[33] |= nxe ? PTE_NX : 0;
}

static void pm_program(struct ecase *c, struct pm *m, struct rng *r, struct pm_prog *p)
{
	static const struct weights w = {
		.known = 30, .alu = 14, .string_mem = 8, .inout = 10, .string_io = 20,
		.other = 10, .control = 8,
	};
	struct kvm_sregs *s = &p->sregs;
	struct kvm_regs *regs = &p->regs;
	struct kvm_segment *segs[6] = { &s->es, &s->cs, &s->ss, &s->ds, &s->fs, &s->gs };
	struct gen g = { .r = r, .buf = m->mem + PM_CODE, .pick_la = pm_pick_la, .bad = pm_bad };
	uint64_t code_la, iopl;
	bool nxe;

	memset(p, 0, sizeof(*p));
	p->cpl = pct(r, 50) ? 3 : 0;
	p->code = pct(r, 30) ? 16 : 32;
	p->paging = rn(r, 10) < 4 ? PG_NONE : pct(r, 50) ? PG_32 : PG_PAE;
	nxe = p->paging == PG_PAE && m->nx && pct(r, 50);
	if (p->paging != PG_NONE)
		pm_paging(m, r, p, nxe);
	code_la = p->paging != PG_NONE ? PM_WIN_CODE : PM_CODE;

	vcpu_sregs_get(m->vcpu, s);
	/* Data segments: anything; SS at CPL 0 is where exceptions push. */
	pm_random_seg(r, &s->ds, 0x10 | p->cpl, p->cpl ? 3 : rn(r, 4));
	pm_random_seg(r, &s->es, 0x10 | p->cpl, p->cpl ? 3 : rn(r, 4));
	pm_random_seg(r, &s->fs, 0x10 | p->cpl, rn(r, 4));
	pm_random_seg(r, &s->gs, 0x10 | p->cpl, rn(r, 4));
	if (p->cpl == 0) {
		pm_flat(&s->ss, SEL_DATA, 3, 0, true);
	} else {
		pm_random_seg(r, &s->ss, SEL_UDATA, 3);
		s->ss.unusable = 0;
		s->ss.present = 1;
		s->ss.selector = SEL_UDATA;
		s->ss.type = pct(r, 85) ? 3 : rn(r, 8);
	}
	s->ss.dpl = p->cpl;		/* the CPL */
	pm_flat(&s->cs, p->cpl ? SEL_UCODE32 : SEL_CODE32, 11, p->cpl, p->code == 32);
	if (pct(r, 20))
		s->cs.type = 8 + rn(r, 8);
	if (p->code == 16 || pct(r, 50))
		s->cs.base = code_la;
	/*
	 * TR as an available 32-bit TSS: the test machine's QEMU aborts ("invalid
	 * tss type") on a ring change through a busy one (type 11).
	 */
	vm_segment(m->vm, SEL_TSS, &s->tr);
	s->tr.type = 9;
	s->gdt.base = m->vm->gdt_gpa;
	s->gdt.limit = GDT_ENTRIES * 8 - 1;
	s->idt.base = PM_IDT;
	s->idt.limit = 256 * 8 - 1;
	s->cr0 = 0x33 | (pct(r, 80) ? CR0_WP : 0) | (pct(r, 70) ? CR0_AM : 0) |
		 (p->paging != PG_NONE ? 1ULL << 31 : 0);
	s->cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT;
	if (p->paging == PG_32) {
		s->cr3 = PM_PD;
		s->cr4 |= CR4_PSE;
	} else if (p->paging == PG_PAE) {
		s->cr3 = PM_PDPT;
		s->cr4 |= CR4_PAE;
	}
	if (p->paging != PG_NONE) {
		s->cr4 |= (m->smep && pct(r, 35) ? CR4_SMEP : 0) |
			  (m->smap && pct(r, 35) ? CR4_SMAP : 0);
	}
	s->efer = nxe ? EFER_NXE : 0;
	memset(s->interrupt_bitmap, 0, sizeof(s->interrupt_bitmap));

	/* The code, at an offset in CS below 64 KiB. */
	p->start = pct(r, 30) ? PAGE_SIZE - 16 - rn(r, 200) : rn(r, 1024);
	if (s->cs.limit != 0xffffffff || pct(r, 10)) {
		/* A limit that ends the code somewhere (or before it). */
		s->cs.g = 0;
		s->cs.limit = code_la - s->cs.base + p->start + rn(r, 256);
	}
	/*
	 * VMX refuses to enter with some states SVM takes (SDM vol. 3
	 * 26.3.1.2), which no instruction can load: a data segment register
	 * holding execute-only code, an SS that is not writable data, an
	 * available TSS in TR, a limit that its G bit cannot express.  On Intel KVM fails such entries, so the
	 * random state stays within what VMX runs.
	 */
	if (host_cpu_is_intel()) {
		for (int i = 0; i < 6; i++) {
			struct kvm_segment *sg = segs[i];

			if (sg != &s->cs && sg != &s->ss && (sg->type & 8))
				sg->type |= 2;
			/* VMX's limit is in bytes, but with the G it implies (SDM 26.3.1.2). */
			if (sg->limit > 0xfffff || (sg->g && (sg->limit & 0xfff) != 0xfff)) {
				sg->g = 1;
				sg->limit |= 0xfff;
			}
		}
		if ((s->ss.type & 0xa) != 2)
			s->ss.type = 3;
		s->tr.type = 11;
	}
	for (int i = 0; i < 6; i++) {
		g.seg_base[i] = segs[i]->base;
		g.seg_limit[i] = segs[i]->limit;
	}
	g.mode = p->code;
	g.cpl = p->cpl;
	g.ctx = p;
	g.ip_base = code_la;
	g.smap = m->smap;
	g.pos = p->start;
	g.end = 2 * PAGE_SIZE - 3;
	regs->rflags = 2 | (r64(r) & RFLAGS_ARITH) | (pct(r, 35) ? RFLAGS_DF : 0) |
		       (pct(r, 30) ? RFLAGS_AC : 0);
	iopl = pct(r, p->cpl == 3 ? 70 : 20) ? RFLAGS_IOPL3 : 0;
	regs->rflags |= iopl;
	g.df = regs->rflags & RFLAGS_DF;
	for (int reg = 0; reg < 8; reg++) {
		if (reg == R_SP)
			continue;
		g.reg[reg] = (uint32_t)pool_value(&g);
		g.known |= 1u << reg;
	}
	/* The upper halves are junk: 32-bit code must not use them. */
	regs->rax = g.reg[R_AX] | (r64(r) << 32);
	regs->rbx = g.reg[R_BX] | (r64(r) << 32);
	regs->rcx = g.reg[R_CX] | (r64(r) << 32);
	regs->rdx = g.reg[R_DX] | (r64(r) << 32);
	regs->rsi = g.reg[R_SI] | (r64(r) << 32);
	regs->rdi = g.reg[R_DI] | (r64(r) << 32);
	regs->rbp = g.reg[R_BP] | (r64(r) << 32);
	regs->rsp = p->cpl == 0 ? PM_KSTACK : (uint32_t)r64(r);
	regs->rip = code_la - s->cs.base + p->start;
	memset(m->mem + PM_CODE, 0xcc, 2 * PAGE_SIZE);
	gen_body(&g, &w, 1 + rn(r, 10));
	emit(&g, 0xcd);		/* INT $PM_END_VECTOR */
	emit(&g, PM_END_VECTOR);
	p->len = g.pos - p->start;
	c->st.insns += g.insns;
	/* With PAE the PDPTEs are read at KVM_SET_SREGS: the tables are ready. */
	vcpu_sregs_set(m->vcpu, s);
	vcpu_regs_set(m->vcpu, regs);
}

static bool pm_read32(struct pm *m, uint64_t gpa, uint32_t *v)
{
	if (gpa + 4 > DEFAULT_GUEST_MEM)
		return false;
	memcpy(v, m->mem + gpa, 4);
	return true;
}

/* Run to the report of a vector (PM_END_VECTOR: the program's end). */
static enum pout pm_run(struct ecase *c, struct pm *m, struct rng *ans, uint32_t *frame)
{
	unsigned int exits = 0, ticks = 0, fails = 0;
	struct kvm_run *run = m->vcpu->run;

	for (;;) {
		if (!erun(c, m->vcpu)) {
			if (++ticks > PROG_MAX_TICKS)
				return P_STUCK;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PM_REPORT &&
		    run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1) {
			struct kvm_regs regs;
			uint64_t off;

			/* RIP is at the OUT on KVM, past it on minikvm: either is fine. */
			vcpu_regs_get(m->vcpu, &regs);
			off = regs.rip - PM_STUBS;
			if (off < 256 * 8 && (off % 8 == 2 || off % 8 == 4)) {
				if (pm_read32(m, (uint32_t)regs.rsp, &frame[0]) &&
				    pm_read32(m, (uint32_t)regs.rsp + 4, &frame[1]) &&
				    pm_read32(m, (uint32_t)regs.rsp + 8, &frame[2]))
					return P_DONE;
				anomaly(c, "a report with ESP %#llx", regs.rsp);
				return P_LOST;
			}
		}
		switch (handle_exit(c, m->vm, m->vcpu, ans, &fails)) {
		case X_GO:
			break;
		case X_LOST:
			return P_LOST;
		case X_SHUTDOWN:
			return P_SHUTDOWN;
		}
		if (++exits > PROG_MAX_EXITS)
			return P_BUDGET;
	}
}

/* FUZZ_TRACE=2: the state after the program, and its code's translation. */
static void pm_trace_state(struct pm *m, const struct pm_prog *p)
{
	struct kvm_translation tr = { .linear_address = p->sregs.cs.base + p->regs.rip };
	const uint64_t *pdpt = (const uint64_t *)(m->mem + PM_PDPT);
	struct kvm_sregs s;

	vcpu_sregs_get(m->vcpu, &s);
	vcpu_ioctl(m->vcpu, KVM_TRANSLATE, &tr, "KVM_TRANSLATE");
	test_log("  after: cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx; code at %#llx: gpa %#llx "
		 "valid %u", s.cr0, s.cr3, s.cr4, s.efer, tr.linear_address,
		 tr.physical_address, tr.valid);
	if (p->paging == PG_PAE)
		test_log("  PDPTEs %#" PRIx64 " %#" PRIx64 " %#" PRIx64 " %#" PRIx64, pdpt[0],
			 pdpt[1], pdpt[2], pdpt[3]);
}

static void pm_fuzz(const char *name)
{
	struct ecase c;
	struct pm m = { 0 };

	ecase_start(&c, name);
	for (; ecase_more(&c); c.prog++) {
		struct rng r = { c.seed + c.prog * 0x9e3779b97f4a7c15ULL };
		struct rng ans = { ~r.s };
		struct pm_prog p;
		uint32_t frame[3] = { 0 }, vector;
		enum pout out;

		if (!m.vm) {
			uint64_t t = now_ns();

			pm_create(&c, &m);
			c.st.vm_ns += now_ns() - t;
		}
		pm_program(&c, &m, &r, &p);
		if (c.trace) {
			test_log("%s: program %" PRIu64 " at CPL %d, %d-bit code, paging %d: "
				 "eflags %#llx cr0 %#llx cr4 %#llx efer %#llx", c.name, c.prog,
				 p.cpl, p.code, p.paging, p.regs.rflags, p.sregs.cr0, p.sregs.cr4,
				 p.sregs.efer);
			for (int i = 0; i < 6; i++) {
				struct kvm_segment *sg = &(&p.sregs.cs)[i];

				test_log("  %s base %#llx limit %#x type %u dpl %u db %u %s",
					 (const char *[]){ "cs", "ds", "es", "fs", "gs", "ss" }[i],
					 sg->base, sg->limit, sg->type, sg->dpl, sg->db,
					 sg->unusable ? "unusable" : "");
			}
			trace_code(&c, p.regs.rip, m.mem + PM_CODE + p.start, p.len);
		}
		out = pm_run(&c, &m, &ans, frame);
		vector = frame[0];
		if (c.trace && out != P_DONE) {
			struct kvm_regs regs;

			vcpu_regs_get(m.vcpu, &regs);
			test_log("%s: program %" PRIu64 " %s at eip %#llx esp %#llx esi %#llx edi "
				 "%#llx ecx %#llx eflags %#llx", c.name, c.prog, pout_names[out],
				 regs.rip, regs.rsp, regs.rsi, regs.rdi, regs.rcx, regs.rflags);
		}
		c.st.programs++;
		c.st.cpl3 += p.cpl == 3;
		c.st.paging[p.paging]++;
		count_outcome(&c, out, vector, vector == PM_END_VECTOR);
		if (c.trace)
			test_log("%s: program %" PRIu64 ": %s, vector %#x frame %#x %#x", c.name,
				 c.prog, pout_names[out], vector, frame[1], frame[2]);
		if (c.trace > 1 && out == P_DONE)
			pm_trace_state(&m, &p);
		if (out != P_DONE || ++m.progs >= PROGS_PER_VM)
			pm_destroy(&m);
	}
	if (m.vm)
		pm_destroy(&m);
	ecase_end(&c);
}

/* ------------------------------------------------------------------------
 * The emulator cases
 */

static const struct lm_case mmio_case = {
	.name = "emulator_mmio",
	.w = { .known = 50, .alu = 25, .string_mem = 10, .inout = 2, .string_io = 3,
	       .other = 18, .control = 6 },
	.mmio_pct = 65,
	.max_insns = 12,
};

static const struct lm_case pio_case = {
	.name = "emulator_pio",
	.w = { .known = 8, .alu = 4, .string_mem = 4, .inout = 25, .string_io = 50,
	       .other = 2, .control = 10 },
	.mmio_pct = 30,
	.max_insns = 10,
};

static const struct lm_case race_case = {
	.name = "emulator_race",
	.w = { .known = 30, .alu = 10, .string_mem = 6, .inout = 8, .string_io = 30,
	       .other = 8, .control = 4 },
	.mmio_pct = 45,
	.max_insns = 16,
	.race = true,
};

TEST_TIMEOUT(emulator_mmio, emul_timeout())
{
	lm_fuzz(&mmio_case);
}

TEST_TIMEOUT(emulator_pio, emul_timeout())
{
	lm_fuzz(&pio_case);
}

TEST_TIMEOUT(emulator_prot32, emul_timeout())
{
	pm_fuzz("emulator_prot32");
}

TEST_TIMEOUT(emulator_race, emul_timeout())
{
	lm_fuzz(&race_case);
}
