// SPDX-License-Identifier: GPL-2.0
/*
 * A fuzzer of the /dev/kvm ioctl ABI, from one thread and from several at
 * once: system, VM and vCPU ioctls with random and mutated-valid arguments,
 * KVM_RUN on vCPUs with random registers and code, interrupt lines, MSIs,
 * irqfds, ioeventfds, GSI routing, dirty logs, memslots and the memory behind
 * them changing while vCPUs run, kvm_run scribbled on, and file descriptors
 * closed while other threads use them.  The host must survive all of it:
 * every ioctl returns a result or a real errno, never a kernel-internal one,
 * nothing hangs, and the process gets no unexpected signal.  The test
 * machine's kernel log is checked after the run, and a watchdog reads it
 * during the run too, to name the operations in flight at a WARNING.
 *
 * Environment:
 *   FUZZ_SEED=N     the seed (printed at the start of every case); without it
 *                   a random one, but a fixed one for the default budget
 *   FUZZ_SECONDS=N  the budget of each case (default: a few seconds)
 *   FUZZ_TRACE=1    print every ioctl before it is made (slow); 2: also the code
 *                   and registers every vCPU starts from
 *   FUZZ_VERBOSE=1  print the results of each ioctl, by errno, at the end
 *   FUZZ_SKIP=a,b   leave out these operations (names in opdefs[], spaces as _)
 *
 * The one-thread case replays exactly from its seed, up to what timing
 * changes (signals ending KVM_RUN); the multi-threaded ones replay each
 * thread's choices, not their interleaving.
 *
 * Safety of the fuzzer itself: the kernel may write only where this file
 * allows, and the fuzzer's own state is never there.  Random pointers point
 * into a per-thread argument buffer, a scratch arena, or at addresses that
 * are invalid (NULL, 1, -1, unmapped, kernel, non-canonical); memslots are
 * backed only by the arena and a zone whose mappings change under them
 * (anonymous, read-only, none, a memfd), between guard areas.  Inputs that
 * crash the test machine's emulated CPU under the reference KVM are left
 * out, since the suite runs on both (see testing.rst): a VMCB with EFER.LME
 * and CR0.PG clear, which KVM loads when the guest leaves long mode by
 * clearing CR0.PG from compatibility mode, after an RSM from a state save
 * map that says so, or after an SMI to a long-mode vCPU whose CPUID has no
 * LM (minikvm never puts LME in the VMCB without long mode active); and
 * guest MOVs to DR7.  So guest code has no RSM and no MOV to CR0 that
 * clears PG, a long-mode guest has no 32-bit code segment, and every vCPU's
 * CPUID keeps LM.  A guest's MOV to CR8
 * while a virtual interrupt is pending aborts QEMU 7.2 (a TCG assertion), so
 * guest code has no MOV to CR8 either.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"

#define NSEC_PER_SEC	1000000000ULL
#define NSEC_PER_MSEC	1000000ULL

/* What the fuzzer keeps track of; everything else is made and dropped at once. */
#define MAX_VMS		3
#define MAX_VCPUS	6		/* tracked per VM */
#define MAX_SLOTS	8		/* tracked per VM */
#define MAX_EFDS	8
#define MAX_MISC	6
#define MAX_WORKERS	6
#define MAX_RETIRED	256
#define VCPUS_PER_VM	24		/* KVM never frees a vCPU before its VM */

/* Memory the kernel and the guests may write: [guard | arena | remap zone | guard]. */
#define HOME_SIZE	(4ULL << 20)	/* one per VM, at the start of the arena */
#define SHARED_SIZE	(8ULL << 20)
#define ARENA_SIZE	(MAX_VMS * HOME_SIZE + SHARED_SIZE)
#define REMAP_SIZE	(8ULL << 20)
#define GUARD_SIZE	(16ULL << 20)
#define RESERVE_SIZE	(2 * GUARD_SIZE + ARENA_SIZE + REMAP_SIZE)
/* Per thread: argument structs are built at the start, output buffers in the top half. */
#define ARGBUF_SIZE	(256ULL << 10)

/* Guest-physical layout of a VM's home memory (slot 0 at GPA 0). */
#define HOME_PML4	0x1000ULL
#define HOME_PDPT	0x2000ULL
#define HOME_PD		0x3000ULL	/* four pages: 4 GiB in 2 MiB pages */
#define HOME_GDT	0x7000ULL
#define HOME_CODE	0x10000ULL
#define HOME_CODE_END	0xf0000ULL
#define HOME_STACK	0x3f0000ULL

#define HANG_NS		(60 * NSEC_PER_SEC)	/* one ioctl this long is a hang */
#define KICK_MIN_NS	(5 * NSEC_PER_MSEC)
#define KICK_MAX_NS	(25 * NSEC_PER_MSEC)
/* EHWPOISON is 133; anything above is a kernel-internal code. */
#define MAX_ERRNO_SEEN	134

/* Not a KVM_EXIT_*: what kvm_run->exit_reason holds before KVM_RUN fills it. */
#define NO_EXIT_REASON	0xdead

#define EFER_LME	(1ULL << 8)
#define EFER_LMA	(1ULL << 10)
#define CR0_PE		1ULL
#define CR0_PG		(1ULL << 31)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { ns / NSEC_PER_SEC, ns % NSEC_PER_SEC };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------------
 * Configuration, randomness
 */

static struct {
	uint64_t seed;
	unsigned int seconds;	/* 0: the case's default */
	unsigned int trace;	/* 1: every ioctl; 2: also each guest's code and registers */
	bool verbose;
	const char *skip;	/* operations left out, for triage */
} cfg;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void read_config(void)
{
	const char *s = getenv("FUZZ_SEED"), *t = getenv("FUZZ_SECONDS");

	cfg.seconds = t && *t ? strtoul(t, NULL, 0) : 0;
	if (s && *s) {
		cfg.seed = strtoull(s, NULL, 0);
	} else if (!cfg.seconds) {
		/*
		 * The short run in make check: a fixed seed, so that a run of
		 * the suite does not depend on luck.  New random inputs also
		 * find ways to hang the test machine's emulated CPU under the
		 * reference KVM (testing.rst); make fuzz explores.
		 */
		cfg.seed = 0x6d6b766d;
	} else {
		uint64_t x = now_ns() ^ ((uint64_t)getpid() << 32);

		cfg.seed = splitmix(&x) & 0xffffffffffffULL;
	}
	cfg.trace = getenv("FUZZ_TRACE") ? atoi(getenv("FUZZ_TRACE")) : 0;
	cfg.verbose = getenv("FUZZ_VERBOSE") && atoi(getenv("FUZZ_VERBOSE"));
	cfg.skip = getenv("FUZZ_SKIP");
}

/* ------------------------------------------------------------------------
 * Threads and what they are doing, for the watchdog
 */

enum role { ROLE_ALL, ROLE_LIFECYCLE, ROLE_RUNNER, ROLE_IOCTL };

struct recent {
	const char *what;
	int fd;
	unsigned long cmd, arg;
	long ret;
	int err;
};

#define NR_RECENT 16

struct ctx {
	int idx;
	enum role role;
	uint64_t rng;
	uint8_t *arg;			/* ARGBUF_SIZE bytes, then a PROT_NONE page */
	pthread_t thread;
	_Atomic pid_t tid;
	_Atomic uint64_t op_start;	/* 0 when not in an ioctl */
	const char *_Atomic op_name;
	_Atomic int op_fd;
	_Atomic unsigned long op_cmd, op_arg;
	_Atomic uint64_t epoch;		/* last epoch seen; UINT64_MAX once done */
	_Atomic bool done;
	struct recent recent[NR_RECENT];
	unsigned int nr_recent;
	uint64_t ops, runs;
	sigjmp_buf probe_jmp;
	volatile sig_atomic_t probing;
};

static struct ctx workers[MAX_WORKERS];
static int nr_workers;
static _Atomic bool stop_workers, monitor_done;
static __thread struct ctx *self;

static uint64_t rnd(struct ctx *c)
{
	return splitmix(&c->rng);
}

static uint64_t rndn(struct ctx *c, uint64_t n)
{
	return n ? rnd(c) % n : 0;
}

static bool chance(struct ctx *c, unsigned int percent)
{
	return rndn(c, 100) < percent;
}

static const uint64_t interesting[] = {
	0, 1, 2, 3, 4, 7, 8, 0xf, 0x10, 0x1f, 0x20, 0x3f, 0x40, 0x7f, 0x80, 0xff, 0x100, 0x200,
	0x3ff, 0x400, 0xfff, 0x1000, 0x7fff, 0x8000, 0xffff, 0x10000, 0xfffff, 0x100000,
	0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x100000000ULL, 0xfee00000, 0xfec00000,
	0xfffbd000, 0xc0000000, 0xd0000000, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
	0xfffffffffffffffeULL, 0xffffffffffffffffULL, 0x000fffffffffffffULL, 0x0000800000000000ULL,
	0xffff800000000000ULL,
};

static uint64_t rnd_value(struct ctx *c)
{
	switch (rndn(c, 6)) {
	case 0:
	case 1:
		return interesting[rndn(c, ARRAY_SIZE(interesting))];
	case 2:
		return rndn(c, 256);
	case 3:
		return interesting[rndn(c, ARRAY_SIZE(interesting))] + rndn(c, 16) - 8;
	default:
		return rnd(c);
	}
}

/*
 * 0F 22 (MOV to a control register), 0F 23 (to a debug register) and 0F AA
 * (RSM) break the test machine from a guest (see the file's comment); random
 * bytes lose them, in case a guest runs them as code.
 */
static void scrub_code(uint8_t *b, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (b[i] == 0x0f && (b[i + 1] == 0x22 || b[i + 1] == 0x23 || b[i + 1] == 0xaa))
			b[i + 1] = 0x90;
}

static void fill_random(struct ctx *c, void *p, size_t n)
{
	uint8_t *b = p;

	if (chance(c, 20)) {
		memset(b, chance(c, 50) ? 0 : 0xff, n);
		return;
	}
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd(c);

		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
	scrub_code(b, n);
}

/* A few random changes to a valid struct: bits, bytes, words, interesting values. */
static void mutate(struct ctx *c, void *p, size_t n)
{
	uint8_t *b = p;

	if (!n)
		return;
	for (int k = 1 + rndn(c, 4); k > 0; k--) {
		size_t off = rndn(c, n);
		uint64_t v;

		switch (rndn(c, 5)) {
		case 0:
			b[off] ^= 1 << rndn(c, 8);
			break;
		case 1:
			b[off] = rnd(c);
			break;
		case 2:
			v = rnd_value(c);
			off &= ~(size_t)3;
			memcpy(b + off, &v, n - off < 4 ? n - off : 4);
			break;
		case 3:
			v = rnd_value(c);
			off &= ~(size_t)7;
			memcpy(b + off, &v, n - off < 8 ? n - off : 8);
			break;
		default:
			memset(b + off, rnd(c), rndn(c, n - off) + 1);
			break;
		}
	}
}

/* ------------------------------------------------------------------------
 * Where the kernel may write
 */

static uint8_t *reserve, *arena, *remap_zone;
static int remap_memfd = -1;

static uint8_t *home_of(int vmi)
{
	return arena + vmi * HOME_SIZE;
}

static uint8_t *shared_area(void)
{
	return arena + MAX_VMS * HOME_SIZE;
}

static const uint64_t bad_pointers[] = {
	0, 1, 0xfff, 0xffffffffffffffffULL, 0xfffffffffffff000ULL, 0x0000800000000000ULL,
	0x8000000000000000ULL, 0xffff888000000000ULL, 0xffffffff81000000ULL,
};

static void *bad_pointer(struct ctx *c)
{
	/* The guard areas are mapped PROT_NONE: valid user addresses that fault. */
	if (chance(c, 30))
		return reserve + rndn(c, GUARD_SIZE);
	return (void *)bad_pointers[rndn(c, ARRAY_SIZE(bad_pointers))];
}

/*
 * Where to put an ioctl's argument struct of @size bytes, built at c->arg:
 * mostly there, else misaligned, across the end of the buffer into its guard
 * page, somewhere in the arena, or at a bad address.
 */
static void *place_arg(struct ctx *c, size_t size, bool anywhere)
{
	uint8_t *dst;
	size_t n = size;

	switch (rndn(c, anywhere ? 100 : 92)) {
	case 0 ... 79:
		return c->arg;
	case 80 ... 83:
		dst = c->arg + 1 + rndn(c, 63);
		break;
	case 84 ... 87:
		if (size < 2)
			return c->arg;
		n = 1 + rndn(c, size - 1);
		dst = c->arg + ARGBUF_SIZE - n;
		break;
	case 88 ... 91:
		return bad_pointer(c);
	default:
		/* Not for structs whose content must stay safe: the arena is shared. */
		dst = shared_area() + rndn(c, SHARED_SIZE - size);
		break;
	}
	memmove(dst, c->arg, n);
	return dst;
}

/* A buffer the kernel writes through a pointer inside an argument (dirty bitmaps...). */
static void *out_buffer(struct ctx *c)
{
	switch (rndn(c, 10)) {
	case 0:
		return shared_area() + (rndn(c, SHARED_SIZE) & ~7ULL);
	case 1:
	case 2:
		return bad_pointer(c);
	default:
		return c->arg + ARGBUF_SIZE / 2;
	}
}

/* ------------------------------------------------------------------------
 * The world: VMs, vCPUs, memslots, eventfds, and the fds other threads close
 */

struct fvcpu {
	_Atomic int fd;
	struct kvm_run *_Atomic run;
	uint32_t id;
};

struct fslot {
	bool used;
	uint32_t slot, flags;
	uint64_t gpa, size, uaddr;
};

struct fvm {
	_Atomic int fd;
	struct fvcpu vcpu[MAX_VCPUS];
	struct fslot slots[MAX_SLOTS];	/* best effort: other threads race with it */
	_Atomic int created;		/* vCPUs made in this VM */
};

static struct {
	_Atomic int kvm;
	struct fvm vm[MAX_VMS];
	_Atomic int efd[MAX_EFDS];
	_Atomic int misc[MAX_MISC];
	size_t run_size;
	struct kvm_cpuid2 *cpuid;
	uint32_t *msrs;
	unsigned int nr_msrs;
	uint32_t *feature_msrs;
	unsigned int nr_feature_msrs;
} w;

/* kvm_run mappings no longer published, unmapped once every worker moved on. */
static struct {
	void *p;
	uint64_t epoch;
} retired[MAX_RETIRED];
static unsigned int nr_retired;
static pthread_mutex_t retire_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t global_epoch = 1;

static void retire_run(struct kvm_run *run)
{
	if (!run)
		return;
	pthread_mutex_lock(&retire_lock);
	if (nr_retired == MAX_RETIRED) {
		/* Full: keep the mapping (a small leak) rather than risk a fault. */
		pthread_mutex_unlock(&retire_lock);
		return;
	}
	retired[nr_retired].p = run;
	retired[nr_retired].epoch = atomic_fetch_add(&global_epoch, 1) + 1;
	nr_retired++;
	pthread_mutex_unlock(&retire_lock);
}

static void reclaim_runs(bool all)
{
	uint64_t oldest = UINT64_MAX;

	for (int i = 0; i < nr_workers; i++) {
		uint64_t e = atomic_load(&workers[i].epoch);

		oldest = e < oldest ? e : oldest;
	}
	pthread_mutex_lock(&retire_lock);
	for (unsigned int i = 0; i < nr_retired;) {
		if (all || retired[i].epoch <= oldest) {
			munmap(retired[i].p, w.run_size);
			retired[i] = retired[--nr_retired];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&retire_lock);
}

/* Take an fd out of its slot and close it; only the taker closes. */
static void close_slot(_Atomic int *slot)
{
	int fd = atomic_exchange(slot, -1);

	if (fd >= 0)
		close(fd);
}

static int pick_vm(struct ctx *c)
{
	int start = rndn(c, MAX_VMS);

	for (int i = 0; i < MAX_VMS; i++) {
		int v = (start + i) % MAX_VMS;

		if (atomic_load(&w.vm[v].fd) >= 0)
			return v;
	}
	return -1;
}

/* A vCPU with a kvm_run mapping (its fd may be closed already). */
static struct fvcpu *pick_vcpu(struct ctx *c, int *vmi)
{
	int vstart = rndn(c, MAX_VMS), cstart = rndn(c, MAX_VCPUS);

	for (int i = 0; i < MAX_VMS; i++) {
		struct fvm *vm = &w.vm[(vstart + i) % MAX_VMS];

		for (int j = 0; j < MAX_VCPUS; j++) {
			struct fvcpu *v = &vm->vcpu[(cstart + j) % MAX_VCPUS];

			if (atomic_load(&v->run)) {
				if (vmi)
					*vmi = (vstart + i) % MAX_VMS;
				return v;
			}
		}
	}
	return NULL;
}

enum fdkind { FD_SYS, FD_VM, FD_VCPU, FD_OTHER, NR_FDKINDS };

/* Mostly an fd of the kind asked for; sometimes another, a closed one or none. */
static int pick_fd(struct ctx *c, enum fdkind want, enum fdkind *got)
{
	struct fvcpu *v;
	int vmi, fd;

	*got = want;
	if (chance(c, 8)) {
		*got = FD_OTHER;
		switch (rndn(c, 6)) {
		case 0:
			return -1;
		case 1:
			return 1000 + rndn(c, 24);	/* nothing there */
		case 2:
			return atomic_load(&w.efd[rndn(c, MAX_EFDS)]);
		case 3:
			return atomic_load(&w.misc[rndn(c, MAX_MISC)]);
		default:
			want = rndn(c, 3);
			break;
		}
	}
	switch (want) {
	case FD_SYS:
		return atomic_load(&w.kvm);
	case FD_VM:
		vmi = pick_vm(c);
		return vmi < 0 ? -1 : atomic_load(&w.vm[vmi].fd);
	default:
		v = pick_vcpu(c, NULL);
		fd = v ? atomic_load(&v->fd) : -1;
		return fd;
	}
}

/* ------------------------------------------------------------------------
 * Making ioctls, and what they may return
 */

#define IOC(x) { x, #x }
static const struct {
	unsigned long cmd;
	const char *name;
} iocs[] = {
	{ 0, "(other)" },
	IOC(KVM_GET_API_VERSION), IOC(KVM_CREATE_VM), IOC(KVM_CHECK_EXTENSION),
	IOC(KVM_GET_VCPU_MMAP_SIZE), IOC(KVM_GET_SUPPORTED_CPUID), IOC(KVM_GET_EMULATED_CPUID),
	IOC(KVM_GET_MSR_INDEX_LIST), IOC(KVM_GET_MSR_FEATURE_INDEX_LIST),
	IOC(KVM_X86_GET_MCE_CAP_SUPPORTED), IOC(KVM_GET_SUPPORTED_HV_CPUID),
	IOC(KVM_GET_DEVICE_ATTR), IOC(KVM_HAS_DEVICE_ATTR), IOC(KVM_SET_DEVICE_ATTR),
	IOC(KVM_CREATE_VCPU), IOC(KVM_SET_USER_MEMORY_REGION), IOC(KVM_GET_DIRTY_LOG),
	IOC(KVM_CLEAR_DIRTY_LOG), IOC(KVM_SET_TSS_ADDR), IOC(KVM_SET_IDENTITY_MAP_ADDR),
	IOC(KVM_SET_NR_MMU_PAGES), IOC(KVM_GET_NR_MMU_PAGES), IOC(KVM_ENABLE_CAP),
	IOC(KVM_X86_SET_MSR_FILTER), IOC(KVM_GET_STATS_FD), IOC(KVM_IOEVENTFD), IOC(KVM_IRQFD),
	IOC(KVM_REGISTER_COALESCED_MMIO), IOC(KVM_UNREGISTER_COALESCED_MMIO),
	IOC(KVM_GET_CLOCK), IOC(KVM_SET_CLOCK), IOC(KVM_GET_TSC_KHZ), IOC(KVM_SET_TSC_KHZ),
	IOC(KVM_CREATE_IRQCHIP), IOC(KVM_IRQ_LINE), IOC(KVM_IRQ_LINE_STATUS),
	IOC(KVM_SET_GSI_ROUTING), IOC(KVM_SIGNAL_MSI), IOC(KVM_CREATE_PIT), IOC(KVM_CREATE_PIT2),
	IOC(KVM_GET_PIT), IOC(KVM_SET_PIT), IOC(KVM_GET_PIT2), IOC(KVM_SET_PIT2),
	IOC(KVM_REINJECT_CONTROL), IOC(KVM_GET_IRQCHIP), IOC(KVM_SET_IRQCHIP),
	IOC(KVM_SET_BOOT_CPU_ID), IOC(KVM_CREATE_DEVICE), IOC(KVM_RESET_DIRTY_RINGS),
	IOC(KVM_RUN), IOC(KVM_GET_REGS), IOC(KVM_SET_REGS), IOC(KVM_GET_SREGS),
	IOC(KVM_SET_SREGS), IOC(KVM_GET_SREGS2), IOC(KVM_SET_SREGS2), IOC(KVM_GET_MSRS),
	IOC(KVM_SET_MSRS), IOC(KVM_SET_CPUID), IOC(KVM_SET_CPUID2), IOC(KVM_GET_CPUID2),
	IOC(KVM_SET_SIGNAL_MASK), IOC(KVM_INTERRUPT), IOC(KVM_NMI), IOC(KVM_SMI),
	IOC(KVM_GET_VCPU_EVENTS), IOC(KVM_SET_VCPU_EVENTS), IOC(KVM_GET_DEBUGREGS),
	IOC(KVM_SET_DEBUGREGS), IOC(KVM_GET_FPU), IOC(KVM_SET_FPU), IOC(KVM_GET_XSAVE),
	IOC(KVM_SET_XSAVE), IOC(KVM_GET_XSAVE2), IOC(KVM_GET_XCRS), IOC(KVM_SET_XCRS),
	IOC(KVM_GET_MP_STATE), IOC(KVM_SET_MP_STATE), IOC(KVM_GET_LAPIC), IOC(KVM_SET_LAPIC),
	IOC(KVM_X86_SETUP_MCE), IOC(KVM_X86_SET_MCE), IOC(KVM_SET_VAPIC_ADDR),
	IOC(KVM_TPR_ACCESS_REPORTING), IOC(KVM_SET_GUEST_DEBUG), IOC(KVM_TRANSLATE),
	IOC(KVM_KVMCLOCK_CTRL), IOC(KVM_GET_NESTED_STATE),
};

/*
 * Exact commands the random-number path must not send with random content:
 * they write through pointers inside their argument, back memslots with
 * whatever memory the pointer names, block the kick signal, put the CPU in
 * the state that hangs the test machine, or make fds.  Their own generators
 * send them safely.
 */
static const unsigned long denied[] = {
	KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG, KVM_SET_SIGNAL_MASK,
	KVM_SET_SREGS, KVM_SET_SREGS2, KVM_SET_MSRS, KVM_SET_NESTED_STATE, KVM_GET_DEVICE_ATTR,
	KVM_SET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR, KVM_CREATE_VM, KVM_CREATE_VCPU,
	KVM_GET_STATS_FD, KVM_CREATE_DEVICE, KVM_MEMORY_ENCRYPT_OP, KVM_XEN_HVM_CONFIG,
	KVM_RUN, KVM_SET_CPUID, KVM_SET_CPUID2,
};

#define NR_IOCS ARRAY_SIZE(iocs)

/* Results per ioctl and fd kind: [0] successes, [e] errno e, the last: errno above. */
static _Atomic uint32_t results[NR_IOCS][NR_FDKINDS][MAX_ERRNO_SEEN + 1];
static _Atomic uint32_t exit_reasons[65];

static unsigned int ioc_index(unsigned long cmd)
{
	for (unsigned int i = 1; i < NR_IOCS; i++)
		if (iocs[i].cmd == cmd)
			return i;
	return 0;
}

/* What a success may return: 0, a new fd (closed at once, or kept), a count, anything. */
enum ret { RET_ZERO, RET_FD, RET_NEWFD, RET_COUNT, RET_ANY };

static void dump_recent(void);

static void __attribute__((noreturn, format(printf, 1, 2))) fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	flockfile(stdout);
	printf("# FAIL (seed %" PRIu64 "): ", cfg.seed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	funlockfile(stdout);
	dump_recent();
	fflush(stdout);
	_exit(KSFT_FAIL);
}

/**
 * xioctl() - one ioctl, watched and checked
 * @c: the calling thread
 * @fd: the file
 * @kind: what the fd is meant to be
 * @cmd: the ioctl
 * @arg: its argument
 * @rk: what it may return on success
 * @max: for RET_COUNT, the largest count
 *
 * Return: the ioctl's result; errno as it left it.
 */
static long xioctl(struct ctx *c, int fd, enum fdkind kind, unsigned long cmd,
		   unsigned long arg, enum ret rk, long max)
{
	unsigned int i = ioc_index(cmd);
	struct recent *rec;
	long r;
	int e;

	if (cfg.trace)
		printf("# t%d %s fd %d arg %#lx\n", c->idx, iocs[i].name, fd, arg);
	atomic_store(&c->op_name, iocs[i].name);
	atomic_store(&c->op_fd, fd);
	atomic_store(&c->op_cmd, cmd);
	atomic_store(&c->op_arg, arg);
	atomic_store(&c->op_start, now_ns());
	/* The raw syscall: glibc's ioctl() cuts a long result to int. */
	r = syscall(SYS_ioctl, fd, cmd, arg);
	e = errno;
	atomic_store(&c->op_start, 0);

	rec = &c->recent[c->nr_recent++ % NR_RECENT];
	*rec = (struct recent){ iocs[i].name, fd, cmd, arg, r, r == -1 ? e : 0 };
	c->ops++;
	/*
	 * -1 is an error; any other value a result (a large unsigned one, such
	 * as KVM_GET_NR_MMU_PAGES may return, reads as negative).
	 */
	if (r == -1) {
		if (e <= 0 || e >= MAX_ERRNO_SEEN) {
			atomic_fetch_add(&results[i][kind][MAX_ERRNO_SEEN], 1);
			fuzz_fail("%s (cmd %#lx) on fd %d failed with errno %d: not an errno "
				  "userspace may see", iocs[i].name, cmd, fd, e);
		}
		atomic_fetch_add(&results[i][kind][e], 1);
	} else {
		atomic_fetch_add(&results[i][kind][0], 1);
		if ((rk == RET_ZERO && r != 0) || (rk == RET_COUNT && (r < 0 || r > max)) ||
		    ((rk == RET_FD || rk == RET_NEWFD) && r < 0))
			fuzz_fail("%s (cmd %#lx) on fd %d (%s fd) succeeded with %ld, expected %s",
				  iocs[i].name, cmd, fd,
				  (const char *[]){ "system", "VM", "vCPU", "other" }[kind], r,
				  rk == RET_ZERO ? "0" :
				  rk == RET_COUNT ? "a count within the request" : "an fd");
		if (rk == RET_FD)
			close(r);
	}
	errno = e;
	return r;
}

/* ------------------------------------------------------------------------
 * Values that must stay away from the test machine's known crashes
 */

/*
 * QEMU 7.2's SVM hangs at VMRUN with EFER.LME and paging off (testing.rst),
 * under either hypervisor.  So LME comes only with paging, and with a 64-bit
 * CS: in compatibility mode a guest may clear CR0.PG itself and keep LME.
 */
static void sanitize_cr0_efer(uint64_t *cr0, uint64_t *efer, struct kvm_segment *cs)
{
	if (!(*cr0 & CR0_PG))
		*efer &= ~(EFER_LME | EFER_LMA);
	if ((*efer & EFER_LME) && !(*cr0 & CR0_PE))
		*cr0 |= CR0_PE;
	if (*efer & (EFER_LME | EFER_LMA)) {
		cs->l = 1;
		cs->db = 0;
	}
}

static void sanitize_sregs(struct kvm_sregs *s)
{
	uint64_t cr0 = s->cr0, efer = s->efer;

	sanitize_cr0_efer(&cr0, &efer, &s->cs);
	s->cr0 = cr0;
	s->efer = efer;
}

static void sanitize_sregs2(struct kvm_sregs2 *s)
{
	uint64_t cr0 = s->cr0, efer = s->efer;

	sanitize_cr0_efer(&cr0, &efer, &s->cs);
	s->cr0 = cr0;
	s->efer = efer;
}

static void sanitize_msrs(struct kvm_msrs *m, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (m->entries[i].index == 0xc0000080)
			m->entries[i].data &= ~(EFER_LME | EFER_LMA);
}

/* ------------------------------------------------------------------------
 * Guest code: snippets that reach the exits and emulated paths, and noise
 */

static const uint16_t ports[] = {
	0x20, 0x21, 0x40, 0x41, 0x42, 0x43, 0x61, 0x70, 0x71, 0x80, 0xa0, 0xa1, 0xb2, 0x3f8,
	0x3fd, 0x4d0, 0x4d1, 0x7f0, 0xcf8, 0xcfc, 0x510, 0xffff,
};

static const uint64_t mmio_addrs[] = {
	0xfee00020, 0xfee00080, 0xfee000b0, 0xfee000f0, 0xfee00300, 0xfee00310, 0xfee00320,
	0xfee00350, 0xfee00380, 0xfee003e0, 0xfec00000, 0xfec00010, 0xd0000000, 0xc0000000,
	0xfed00000, 0xfffffff0, 0xa0000, 0x1000,
};

/* Never EFER: see sanitize_cr0_efer(). */
static const uint32_t msr_pool[] = {
	0x10, 0x1b, 0x3a, 0x3b, 0x8b, 0x9e, 0x174, 0x175, 0x176, 0x179, 0x17a, 0x17b, 0x1a0,
	0x1d9, 0x200, 0x201, 0x20f, 0x250, 0x258, 0x277, 0x2ff, 0x400, 0x401, 0x402, 0x403,
	0x47f, 0x6e0, 0x800, 0x802, 0x803, 0x808, 0x80b, 0x80f, 0x830, 0x832, 0x838, 0x83e,
	0x83f, 0x8ff, 0x11, 0x12, 0x4b564d00, 0x4b564d01, 0x4b564d02, 0x4b564d03, 0x4b564d04,
	0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102,
	0xc0000103, 0xc0010010, 0xc0010015, 0xc001001f, 0xc0010114, 0xc0010117, 0xc0010140,
	0xc0011029, 0xc0010058, 0x40000000, 0x40000001, 0xffffffff,
};

static uint32_t rnd_msr(struct ctx *c)
{
	uint32_t m;

	switch (rndn(c, 8)) {
	case 0:
		m = rnd(c);
		break;
	case 1:
	case 2:
	case 3:
		m = w.nr_msrs ? w.msrs[rndn(c, w.nr_msrs)] : 0x10;
		break;
	default:
		m = msr_pool[rndn(c, ARRAY_SIZE(msr_pool))];
		break;
	}
	return m == 0xc0000080 ? 0xc0000081 : m;
}

struct code {
	uint8_t *p;
	size_t n, room;
	size_t cr_writes[16];		/* where the MOVs to CR0 and CR4 meant to be are */
	unsigned int nr_cr_writes;
};

static void emit(struct code *k, const void *bytes, size_t n)
{
	if (k->n + n <= k->room) {
		memcpy(k->p + k->n, bytes, n);
		k->n += n;
	}
}

static void emit1(struct code *k, uint8_t b)
{
	emit(k, &b, 1);
}

static void emit_imm(struct code *k, uint64_t v, size_t n)
{
	emit(k, &v, n);
}

/* mov $v, %reg (B8+r imm32, or REX.W B8+r imm64) */
static void emit_mov(struct code *k, int reg, uint64_t v, bool wide)
{
	if (wide) {
		emit1(k, reg >= 8 ? 0x49 : 0x48);
		emit1(k, 0xb8 + (reg & 7));
		emit_imm(k, v, 8);
	} else {
		if (reg >= 8)
			emit1(k, 0x41);
		emit1(k, 0xb8 + (reg & 7));
		emit_imm(k, v, 4);
	}
}

static void emit_snippet(struct ctx *c, struct code *k)
{
	static const uint8_t mem_ops[][5] = {
		{ 2, 0x89, 0x03 },		/* mov %eax,(%rbx) */
		{ 2, 0x8b, 0x03 },		/* mov (%rbx),%eax */
		{ 2, 0x01, 0x03 },		/* add %eax,(%rbx) */
		{ 2, 0x87, 0x03 },		/* xchg %eax,(%rbx) */
		{ 2, 0x85, 0x03 },		/* test %eax,(%rbx) */
		{ 2, 0x3b, 0x03 },		/* cmp (%rbx),%eax */
		{ 3, 0x0f, 0xb6, 0x03 },	/* movzbl (%rbx),%eax */
		{ 3, 0x48, 0x63, 0x03 },	/* movslq (%rbx),%rax */
		{ 3, 0x80, 0x0b, 0x55 },	/* orb $0x55,(%rbx) */
		{ 3, 0xf6, 0x03, 0x01 },	/* testb $1,(%rbx) */
		{ 3, 0x66, 0x89, 0x03 },	/* mov %ax,(%rbx) */
		{ 3, 0xf0, 0x01, 0x03 },	/* lock add %eax,(%rbx) */
		{ 1, 0xab },			/* stos %eax,(%rdi) */
		{ 2, 0xf3, 0xab },		/* rep stos */
		{ 1, 0xa5 },			/* movs */
		{ 1, 0xac },			/* lods */
	};
	static const uint8_t fixed[][5] = {
		{ 1, 0xf4 },			/* hlt */
		{ 2, 0xfb, 0xf4 },		/* sti; hlt */
		{ 1, 0xfa },			/* cli */
		{ 1, 0xfb },			/* sti */
		{ 2, 0xf3, 0x90 },		/* pause */
		{ 1, 0xcc },			/* int3 */
		{ 2, 0x0f, 0x0b },		/* ud2 */
		{ 2, 0x0f, 0xa2 },		/* cpuid */
		{ 2, 0x0f, 0x31 },		/* rdtsc */
		{ 3, 0x0f, 0x01, 0xf9 },	/* rdtscp */
		{ 3, 0x0f, 0x01, 0xd9 },	/* vmmcall */
		{ 3, 0x0f, 0x01, 0xc1 },	/* vmcall */
		{ 3, 0x0f, 0x01, 0xd0 },	/* xgetbv */
		{ 3, 0x0f, 0x01, 0xd1 },	/* xsetbv */
		{ 2, 0x0f, 0x09 },		/* wbinvd */
		{ 3, 0x0f, 0x20, 0xc0 },	/* mov %cr0,%rax */
		{ 3, 0x0f, 0x21, 0xc0 },	/* mov %dr0,%rax (reads only: no DR7 writes) */
		{ 2, 0x8e, 0xd0 },		/* mov %eax,%ss */
		{ 2, 0x48, 0xcf },		/* iretq */
		{ 2, 0xeb, 0xfe },		/* jmp . */
		{ 2, 0x0f, 0x05 },		/* syscall */
		{ 3, 0x0f, 0x01, 0xf8 },	/* swapgs */
		{ 2, 0x0f, 0x30 },		/* wrmsr */
		{ 2, 0x0f, 0x32 },		/* rdmsr */
		{ 3, 0x0f, 0xc7, 0xf8 },	/* rdpid %rax */
		{ 2, 0xcd, 0x80 },		/* int $0x80 */
	};
	uint16_t port = chance(c, 80) ? ports[rndn(c, ARRAY_SIZE(ports))] : rnd(c);
	uint64_t addr = chance(c, 80) ? mmio_addrs[rndn(c, ARRAY_SIZE(mmio_addrs))] :
			rndn(c, 1ULL << 32);
	const uint8_t *s;

	switch (rndn(c, 11)) {
	case 0:		/* port I/O, all sizes, immediate and DX forms, strings */
		emit_mov(k, 2, port, false);
		emit_mov(k, 0, rnd_value(c), false);
		if (chance(c, 30))
			emit1(k, 0x66);
		if (chance(c, 30)) {
			emit_mov(k, 1, rndn(c, 4) ? rndn(c, 64) : rnd_value(c), false);
			emit_mov(k, rndn(c, 2) ? 6 : 7, rndn(c, HOME_SIZE), true);
			emit1(k, 0xf3);
			emit1(k, 0x6c + rndn(c, 4));	/* ins/outs */
		} else {
			emit1(k, (uint8_t[]){ 0xec, 0xed, 0xee, 0xef }[rndn(c, 4)]);
		}
		break;
	case 1:
	case 2:		/* MMIO through (%rbx), and string ops through %rdi/%rsi */
		emit_mov(k, 3, addr + rndn(c, 16), true);
		emit_mov(k, 7, addr, true);
		emit_mov(k, 6, addr, true);
		emit_mov(k, 1, rndn(c, 8), false);
		emit_mov(k, 0, rnd_value(c), false);
		s = mem_ops[rndn(c, ARRAY_SIZE(mem_ops))];
		emit(k, s + 1, s[0]);
		break;
	case 3:		/* MSRs */
		emit_mov(k, 1, rnd_msr(c), false);
		emit_mov(k, 0, rnd_value(c), false);
		emit_mov(k, 2, rnd_value(c), false);
		emit(k, rndn(c, 2) ? "\x0f\x30" : "\x0f\x32", 2);
		break;
	case 4:		/* CPUID leaves and XSETBV values */
		emit_mov(k, 0, (uint32_t[]){ 0, 1, 7, 0xd, 0x40000000, 0x40000001, 0x80000000,
					     0x80000001, 0x80000008, 3, 7 }[rndn(c, 11)],
			 false);
		emit_mov(k, 1, rndn(c, 3), false);
		emit_mov(k, 2, 0, false);
		if (rndn(c, 2))
			emit(k, "\x0f\xa2", 2);
		else
			emit(k, "\x0f\x01\xd1", 3);
		break;
	case 5:		/* random bytes (gen_code() scrubs them) */
		for (int i = 1 + rndn(c, 8); i > 0; i--)
			emit1(k, rnd(c));
		break;
	case 6:
		/*
		 * MOV to CR0 and CR4, keeping paging and PAE: QEMU does not #GP
		 * a 64-bit guest that clears CR0.PG, and the test machine's CPU
		 * then hangs at the next VMRUN (see the file's comment).
		 */
		if (k->nr_cr_writes == ARRAY_SIZE(k->cr_writes))
			break;
		/*
		 * The byte before 0F is the value's top byte: never a prefix
		 * (LOCK makes CR0 CR8 on AMD, REX.R too), wherever decoding starts.
		 */
		if (rndn(c, 2))
			emit_mov(k, 0, (rnd(c) & 0xfffffe) | (0x80 + rndn(c, 0x70)) << 24 | 1,
				 false);
		else
			emit_mov(k, 0, (rnd(c) & 0x3fffff) | 0x20, false);
		if (k->n + 3 > k->room)
			break;
		k->cr_writes[k->nr_cr_writes++] = k->n;
		emit(k, k->p[k->n - 1] & 0x80 ? "\x0f\x22\xc0" : "\x0f\x22\xe0", 3);
		break;
	default:
		if (chance(c, 50))
			emit_mov(k, 0, rnd_value(c), chance(c, 30));
		s = fixed[rndn(c, ARRAY_SIZE(fixed))];
		emit(k, s + 1, s[0]);
		break;
	}
}

static void gen_code(struct ctx *c, uint8_t *p, size_t room)
{
	struct code k = { .p = p, .room = room };
	unsigned int w = 0;

	for (int i = 1 + rndn(c, 12); i > 0; i--)
		emit_snippet(c, &k);
	/* Immediates and noise may hold 0F 22 and the like too: all but the meant ones go. */
	for (size_t i = 0; i + 1 < k.n; i++) {
		if (w < k.nr_cr_writes && k.cr_writes[w] == i) {
			w++;
			i++;
			continue;
		}
		scrub_code(k.p + i, 2);
	}
	switch (rndn(c, 3)) {
	case 0:
		emit1(&k, 0xf4);
		break;
	case 1:
		/* jmp back to the start */
		emit1(&k, 0xe9);
		emit_imm(&k, (uint32_t)(-(int64_t)k.n - 4), 4);
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------------
 * VMs and vCPUs
 */

/* Identity page tables of the low 4 GiB, and a GDT, in a VM's home memory. */
static void init_home(uint8_t *home)
{
	uint64_t *pml4 = (uint64_t *)(home + HOME_PML4), *pdpt = (uint64_t *)(home + HOME_PDPT);
	uint64_t *gdt = (uint64_t *)(home + HOME_GDT);

	memset(home, 0, HOME_CODE);
	pml4[0] = HOME_PDPT | 7;
	for (int i = 0; i < 4; i++) {
		uint64_t *pd = (uint64_t *)(home + HOME_PD + i * 0x1000);

		pdpt[i] = (HOME_PD + i * 0x1000) | 7;
		for (int j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i << 30) + ((uint64_t)j << 21) + 0x87;
	}
	/* No 32-bit code segment: a long-mode guest must not reach compatibility mode. */
	gdt[1] = 0x00af9b000000ffffULL;		/* 0x08: 64-bit code */
	gdt[2] = 0x00cf93000000ffffULL;		/* 0x10: data */
}

static void track_slot(int vmi, const struct kvm_userspace_memory_region *m)
{
	struct fslot *s = w.vm[vmi].slots, *free = NULL;

	for (int i = 0; i < MAX_SLOTS; i++) {
		if (s[i].used && s[i].slot == m->slot) {
			if (!m->memory_size)
				s[i].used = false;
			else
				s[i] = (struct fslot){ true, m->slot, m->flags, m->guest_phys_addr,
						       m->memory_size, m->userspace_addr };
			return;
		}
		if (!s[i].used && !free)
			free = &s[i];
	}
	if (free && m->memory_size)
		*free = (struct fslot){ true, m->slot, m->flags, m->guest_phys_addr,
					m->memory_size, m->userspace_addr };
}

static int set_memslot(struct ctx *c, int vmi, struct kvm_userspace_memory_region *m)
{
	int fd = atomic_load(&w.vm[vmi].fd);
	struct kvm_userspace_memory_region *a = (void *)c->arg;
	long r;

	*a = *m;
	/* Never the arena: its content could change before the kernel reads it. */
	r = xioctl(c, fd, FD_VM, KVM_SET_USER_MEMORY_REGION,
		   (unsigned long)place_arg(c, sizeof(*m), false), RET_ZERO, 0);
	if (r == 0 && atomic_load(&w.vm[vmi].fd) == fd)
		track_slot(vmi, m);
	return r;
}

/* A new vCPU of VM @vmi with id @id, kept if there is room. */
static void add_vcpu(struct ctx *c, int vmi, uint32_t id)
{
	struct fvm *vm = &w.vm[vmi];
	int vmfd = atomic_load(&vm->fd), fd;
	struct kvm_run *run;

	if (vmfd < 0 || atomic_load(&vm->created) >= VCPUS_PER_VM)
		return;
	fd = xioctl(c, vmfd, FD_VM, KVM_CREATE_VCPU, id, RET_NEWFD, 0);
	if (fd < 0)
		return;
	atomic_fetch_add(&vm->created, 1);
	/* The supported CPUID, as a VMM gives it; it has LM (see the file's comment). */
	memcpy(c->arg, w.cpuid, sizeof(*w.cpuid) + w.cpuid->nent * sizeof(w.cpuid->entries[0]));
	xioctl(c, fd, FD_VCPU, KVM_SET_CPUID2, (unsigned long)c->arg, RET_ZERO, 0);
	for (int i = 0; i < MAX_VCPUS; i++) {
		struct fvcpu *v = &vm->vcpu[i];

		if (atomic_load(&v->run) || atomic_load(&v->fd) >= 0)
			continue;
		run = mmap(NULL, w.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (run == MAP_FAILED)
			break;
		v->id = id;
		atomic_store(&v->fd, fd);
		atomic_store(&v->run, run);
		return;
	}
	close(fd);
}

static void create_vm(struct ctx *c)
{
	struct kvm_userspace_memory_region m;
	int vmi = -1, fd;

	for (int i = 0; i < MAX_VMS; i++)
		if (atomic_load(&w.vm[i].fd) < 0) {
			vmi = i;
			break;
		}
	if (vmi < 0)
		return;
	/* The VM's kvm_run mappings from before must be gone first. */
	for (int i = 0; i < MAX_VCPUS; i++) {
		close_slot(&w.vm[vmi].vcpu[i].fd);
		retire_run(atomic_exchange(&w.vm[vmi].vcpu[i].run, NULL));
	}
	fd = xioctl(c, atomic_load(&w.kvm), FD_SYS, KVM_CREATE_VM, 0, RET_NEWFD, 0);
	if (fd < 0)
		return;
	memset(w.vm[vmi].slots, 0, sizeof(w.vm[vmi].slots));
	atomic_store(&w.vm[vmi].created, 0);
	init_home(home_of(vmi));
	atomic_store(&w.vm[vmi].fd, fd);
	m = (struct kvm_userspace_memory_region){ .slot = 0, .memory_size = HOME_SIZE,
		.userspace_addr = (uint64_t)home_of(vmi) };
	set_memslot(c, vmi, &m);
	if (chance(c, 60))
		xioctl(c, fd, FD_VM, KVM_CREATE_IRQCHIP, 0, RET_ZERO, 0);
	if (chance(c, 30)) {
		struct kvm_pit_config *pc = (void *)c->arg;

		*pc = (struct kvm_pit_config){ .flags = rndn(c, 2) };
		xioctl(c, fd, FD_VM, KVM_CREATE_PIT2, (unsigned long)c->arg, RET_ZERO, 0);
	}
	for (int i = rndn(c, 4); i > 0; i--)
		add_vcpu(c, vmi, rndn(c, MAX_VCPUS));
}

static void destroy_vm(struct ctx *c)
{
	int vmi = pick_vm(c);

	if (vmi < 0)
		return;
	close_slot(&w.vm[vmi].fd);
	for (int i = 0; i < MAX_VCPUS; i++) {
		if (chance(c, 80))
			close_slot(&w.vm[vmi].vcpu[i].fd);
		retire_run(atomic_exchange(&w.vm[vmi].vcpu[i].run, NULL));
		close_slot(&w.vm[vmi].vcpu[i].fd);
	}
}

/* ------------------------------------------------------------------------
 * Operations
 */

typedef void (*op_fn)(struct ctx *c);

/* The VM-fd value ioctls and their arguments. */
static void op_vm_value(struct ctx *c)
{
	static const unsigned long cmds[] = {
		KVM_CREATE_IRQCHIP, KVM_SET_TSS_ADDR, KVM_SET_NR_MMU_PAGES, KVM_GET_NR_MMU_PAGES,
		KVM_CHECK_EXTENSION, KVM_SET_BOOT_CPU_ID, KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ,
		KVM_RESET_DIRTY_RINGS, KVM_CREATE_PIT,
	};
	unsigned long cmd = cmds[rndn(c, ARRAY_SIZE(cmds))];
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	unsigned long arg = rnd_value(c);
	enum ret rk = RET_ZERO;

	switch (cmd) {
	case KVM_SET_BOOT_CPU_ID:
		arg = rndn(c, 4) ? rndn(c, MAX_VCPUS) : arg;
		break;
	case KVM_CHECK_EXTENSION:
		arg = rndn(c, 4) ? rndn(c, 240) : arg;
		/* fall through */
	case KVM_GET_NR_MMU_PAGES:
	case KVM_GET_TSC_KHZ:
	case KVM_RESET_DIRTY_RINGS:
		rk = RET_ANY;
		break;
	}
	xioctl(c, fd, k, cmd, arg, rk, 0);
}

static void op_sys(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_SYS, &k);
	uint32_t n = chance(c, 70) ? rndn(c, 300) : rnd(c);

	switch (rndn(c, 9)) {
	case 0:
		xioctl(c, fd, k, KVM_GET_API_VERSION, rndn(c, 4) ? 0 : rnd(c), RET_ANY, 0);
		break;
	case 1:
		xioctl(c, fd, k, KVM_CHECK_EXTENSION, rndn(c, 4) ? rndn(c, 240) : rnd(c),
		       RET_ANY, 0);
		break;
	case 2:
		xioctl(c, fd, k, KVM_GET_VCPU_MMAP_SIZE, 0, RET_ANY, 0);
		break;
	case 3:
	case 4: {
		static const unsigned long cmds[] = {
			KVM_GET_SUPPORTED_CPUID, KVM_GET_EMULATED_CPUID, KVM_GET_SUPPORTED_HV_CPUID,
		};
		struct kvm_cpuid2 *cp = (void *)c->arg;

		cp->nent = n;
		cp->padding = chance(c, 90) ? 0 : rnd(c);
		xioctl(c, fd, k, cmds[rndn(c, 3)],
		       (unsigned long)place_arg(c, sizeof(*cp), true), RET_ZERO, 0);
		break;
	}
	case 5:
	case 6: {
		struct kvm_msr_list *l = (void *)c->arg;

		l->nmsrs = n;
		xioctl(c, fd, k, rndn(c, 2) ? KVM_GET_MSR_INDEX_LIST :
		       KVM_GET_MSR_FEATURE_INDEX_LIST,
		       (unsigned long)place_arg(c, sizeof(*l), true), RET_ZERO, 0);
		break;
	}
	case 7: {
		/* The feature MSRs' values, on the system fd. */
		struct kvm_msrs *m = (void *)c->arg;
		unsigned int nm = rndn(c, 8);

		m->nmsrs = chance(c, 95) ? nm : rnd(c);
		m->pad = 0;
		for (unsigned int i = 0; i < nm; i++)
			m->entries[i] = (struct kvm_msr_entry){
				.index = w.nr_feature_msrs && chance(c, 80) ?
					 w.feature_msrs[rndn(c, w.nr_feature_msrs)] : rnd_msr(c),
			};
		xioctl(c, fd, k, KVM_GET_MSRS,
		       (unsigned long)place_arg(c, sizeof(*m) + nm * sizeof(m->entries[0]), true),
		       RET_COUNT, m->nmsrs);
		break;
	}
	default: {
		uint64_t *cap = (void *)c->arg;

		*cap = 0;
		xioctl(c, fd, k, KVM_X86_GET_MCE_CAP_SUPPORTED,
		       (unsigned long)place_arg(c, 8, true), RET_ZERO, 0);
		break;
	}
	}
}

/* A new VM made and dropped at once, of any type. */
static void op_create_vm(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_SYS, &k);

	xioctl(c, fd, k, KVM_CREATE_VM, rndn(c, 4) ? 0 : rnd_value(c), RET_FD, 0);
}

static void op_memslot(struct ctx *c)
{
	int vmi = pick_vm(c);
	struct kvm_userspace_memory_region m = { 0 };
	struct fslot *s;
	uint64_t start, top = (uint64_t)reserve + RESERVE_SIZE;

	if (vmi < 0)
		return;
	s = &w.vm[vmi].slots[rndn(c, MAX_SLOTS)];
	if (s->used && chance(c, 50)) {
		/* A change to a slot that exists: moved, logging on or off, deleted... */
		m = (struct kvm_userspace_memory_region){ s->slot, s->flags, s->gpa, s->size,
							  s->uaddr };
		switch (rndn(c, 6)) {
		case 0:
		case 1:
			m.guest_phys_addr = rndn(c, 1ULL << 20) << 12;
			break;
		case 2:
			m.flags ^= KVM_MEM_LOG_DIRTY_PAGES;
			break;
		case 3:
			m.memory_size = 0;
			break;
		case 4:
			m.flags ^= KVM_MEM_READONLY;
			break;
		default:
			mutate(c, &m, sizeof(m));
			if (m.userspace_addr != s->uaddr)
				m.userspace_addr = s->uaddr;	/* only slots the rules allow */
			if (m.memory_size != s->size && m.memory_size)
				m.memory_size = rndn(c, 2) ? s->size : s->size + 0x1000;
			break;
		}
		if (m.userspace_addr < (uint64_t)reserve || m.memory_size > top - m.userspace_addr)
			m.memory_size = m.memory_size ? s->size : 0;
		set_memslot(c, vmi, &m);
		return;
	}
	m.slot = rndn(c, 10);
	if (chance(c, 10))
		m.slot |= 1 << 16;		/* SMM's address space */
	if (chance(c, 3))
		m.slot = rnd(c);
	switch (rndn(c, 20)) {
	case 0 ... 9:
		break;
	case 10 ... 14:
		m.flags = KVM_MEM_LOG_DIRTY_PAGES;
		break;
	case 15 ... 17:
		m.flags = KVM_MEM_READONLY;
		break;
	case 18:
		m.flags = KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES;
		break;
	default:
		m.flags = rnd(c);
		break;
	}
	switch (rndn(c, 10)) {
	case 0 ... 5:
		m.guest_phys_addr = rndn(c, 1ULL << 20) << 12;
		break;
	case 6 ... 8:
		m.guest_phys_addr = interesting[rndn(c, ARRAY_SIZE(interesting))] & ~0xfffULL;
		break;
	default:
		m.guest_phys_addr = rnd_value(c);
		break;
	}
	/* Backed by the arena or the remap zone, never beyond the reservation... */
	switch (rndn(c, 20)) {
	case 0 ... 6:
		start = (uint64_t)remap_zone + (rndn(c, REMAP_SIZE) & ~0xfffULL);
		break;
	case 7 ... 12:
		start = (uint64_t)shared_area() + (rndn(c, SHARED_SIZE) & ~0xfffULL);
		break;
	case 13 ... 15:
		start = (uint64_t)home_of(rndn(c, MAX_VMS)) + (rndn(c, HOME_SIZE) & ~0xfffULL);
		break;
	case 16:
		start = (uint64_t)reserve + (rndn(c, RESERVE_SIZE) & ~0xfffULL);
		break;
	case 17:
		/* ...or at addresses that no process can map. */
		m.userspace_addr = (uint64_t[]){ 0xffff888000000000ULL, 0x0000800000000000ULL,
						 0x8000000000000000ULL }[rndn(c, 3)];
		m.memory_size = (rndn(c, 1ULL << 18) + 1) << 12;
		set_memslot(c, vmi, &m);
		return;
	case 18:
		m.userspace_addr = 0;
		m.memory_size = (rndn(c, 16) + 1) << 12;	/* below mmap_min_addr */
		set_memslot(c, vmi, &m);
		return;
	default:
		start = (uint64_t)arena + 1 + rndn(c, 0xffe);	/* misaligned */
		break;
	}
	m.userspace_addr = start;
	switch (rndn(c, 10)) {
	case 0:
		m.memory_size = 0;
		break;
	case 1:
		m.memory_size = rndn(c, top - start) + 1;	/* likely not page-sized */
		break;
	case 2:
		m.memory_size = (top - start) & ~0xfffULL;
		break;
	case 3:
		/* Past the end of user space (refused), never into the rest of this process. */
		m.memory_size = (uint64_t[]){ 1ULL << 47, 1ULL << 63, 0xfffffffffffff000ULL,
					      0x1000 }[rndn(c, 4)];
		break;
	default:
		m.memory_size = (rndn(c, 512) + 1) << 12;
		if (m.memory_size > top - start)
			m.memory_size = (top - start) & ~0xfffULL;
		break;
	}
	set_memslot(c, vmi, &m);
}

static uint32_t rnd_slot(struct ctx *c, int vmi, uint64_t *pages)
{
	struct fslot *s = &w.vm[vmi].slots[rndn(c, MAX_SLOTS)];

	*pages = s->used ? s->size >> 12 : rndn(c, 1024);
	if (s->used && chance(c, 80))
		return s->slot;
	return chance(c, 70) ? rndn(c, 10) : rnd(c);
}

static void op_dirty_log(struct ctx *c)
{
	int vmi = pick_vm(c);
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	uint64_t pages;

	if (vmi < 0)
		return;
	if (chance(c, 50)) {
		struct kvm_dirty_log *d = (void *)c->arg;

		memset(d, 0, sizeof(*d));
		d->slot = rnd_slot(c, vmi, &pages);
		d->dirty_bitmap = out_buffer(c);
		xioctl(c, fd, k, KVM_GET_DIRTY_LOG,
		       (unsigned long)place_arg(c, sizeof(*d), false), RET_ZERO, 0);
	} else {
		struct kvm_clear_dirty_log *d = (void *)c->arg;
		uint8_t *bitmap = out_buffer(c);

		memset(d, 0, sizeof(*d));
		d->slot = rnd_slot(c, vmi, &pages);
		switch (rndn(c, 3)) {
		case 0:
			d->first_page = 0;
			break;
		case 1:
			d->first_page = rndn(c, pages / 64 + 1) * 64;
			break;
		default:
			d->first_page = rnd_value(c);
			break;
		}
		d->num_pages = rndn(c, 3) ? pages - (d->first_page < pages ? d->first_page : 0) :
			       rnd_value(c);
		if (bitmap == c->arg + ARGBUF_SIZE / 2)
			fill_random(c, bitmap, 4096);
		d->dirty_bitmap = bitmap;
		xioctl(c, fd, k, KVM_CLEAR_DIRTY_LOG,
		       (unsigned long)place_arg(c, sizeof(*d), false), RET_ZERO, 0);
	}
}

static void op_enable_cap(struct ctx *c)
{
	static const uint32_t vm_caps[] = {
		KVM_CAP_MAX_VCPU_ID, KVM_CAP_HALT_POLL, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		KVM_CAP_X86_USER_SPACE_MSR, KVM_CAP_EXCEPTION_PAYLOAD,
		KVM_CAP_X86_TRIPLE_FAULT_EVENT, KVM_CAP_SPLIT_IRQCHIP, KVM_CAP_X2APIC_API,
		KVM_CAP_X86_DISABLE_EXITS, KVM_CAP_X86_BUS_LOCK_EXIT, KVM_CAP_EXIT_HYPERCALL,
		KVM_CAP_DIRTY_LOG_RING, KVM_CAP_PMU_CAPABILITY, KVM_CAP_MSR_PLATFORM_INFO,
		KVM_CAP_EXIT_ON_EMULATION_FAILURE, KVM_CAP_VM_DISABLE_NX_HUGE_PAGES,
	};
	static const uint32_t vcpu_caps[] = {
		KVM_CAP_HYPERV_SYNIC, KVM_CAP_HYPERV_SYNIC2, KVM_CAP_HYPERV_ENFORCE_CPUID,
		KVM_CAP_HYPERV_DIRECT_TLBFLUSH, KVM_CAP_ENFORCE_PV_FEATURE_CPUID,
	};
	bool on_vcpu = chance(c, 25);
	enum fdkind k;
	int fd = pick_fd(c, on_vcpu ? FD_VCPU : FD_VM, &k);
	struct kvm_enable_cap *e = (void *)c->arg;

	memset(e, 0, sizeof(*e));
	if (chance(c, 10))
		e->cap = rndn(c, 240);
	else if (on_vcpu)
		e->cap = vcpu_caps[rndn(c, ARRAY_SIZE(vcpu_caps))];
	else
		e->cap = vm_caps[rndn(c, ARRAY_SIZE(vm_caps))];
	for (int i = 0; i < 4; i++)
		e->args[i] = chance(c, 50) ? rndn(c, 16) : rnd_value(c);
	/* A sane ring size (bytes) now and then; any other is refused. */
	if (e->cap == KVM_CAP_DIRTY_LOG_RING && chance(c, 50))
		e->args[0] = 4096ULL << rndn(c, 6);
	e->flags = chance(c, 90) ? 0 : rnd(c);
	xioctl(c, fd, k, KVM_ENABLE_CAP, (unsigned long)place_arg(c, sizeof(*e), true), RET_ANY,
	       0);
}

static void rnd_msi(struct ctx *c, uint32_t *lo, uint32_t *hi, uint32_t *data)
{
	uint32_t dest = chance(c, 70) ? rndn(c, MAX_VCPUS) : chance(c, 50) ? 0xff : rnd(c);

	*lo = 0xfee00000 | (dest & 0xff) << 12 | (rndn(c, 4) << 2);
	*hi = chance(c, 90) ? 0 : rnd(c);
	*data = (0x20 + rndn(c, 0xe0)) | rndn(c, 8) << 8 | (chance(c, 20) ? 0xc000 : 0);
	if (chance(c, 10))
		*lo = rnd(c);
	if (chance(c, 10))
		*data = rnd(c);
}

static void op_irq(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);

	switch (rndn(c, 3)) {
	case 0:
	case 1: {
		struct kvm_irq_level *l = (void *)c->arg;

		l->irq = chance(c, 85) ? rndn(c, 24) : rnd_value(c);
		l->level = chance(c, 90) ? rndn(c, 2) : rnd(c);
		xioctl(c, fd, k, rndn(c, 2) ? KVM_IRQ_LINE : KVM_IRQ_LINE_STATUS,
		       (unsigned long)place_arg(c, sizeof(*l), true), RET_ZERO, 0);
		break;
	}
	default: {
		struct kvm_msi *m = (void *)c->arg;

		memset(m, 0, sizeof(*m));
		rnd_msi(c, &m->address_lo, &m->address_hi, &m->data);
		m->flags = chance(c, 85) ? 0 : chance(c, 50) ? KVM_MSI_VALID_DEVID : rnd(c);
		m->devid = rnd(c);
		/* The delivery status: how many APICs took it. */
		xioctl(c, fd, k, KVM_SIGNAL_MSI, (unsigned long)place_arg(c, sizeof(*m), true),
		       RET_ANY, 0);
		break;
	}
	}
}

static void op_gsi_routing(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	struct kvm_irq_routing *rt = (void *)c->arg;
	unsigned int n, max = (ARGBUF_SIZE - sizeof(*rt)) / sizeof(rt->entries[0]);

	switch (rndn(c, 10)) {
	case 0:
		n = 0;
		break;
	case 1:
		n = 4096 + rndn(c, 2);
		break;
	default:
		n = 1 + rndn(c, 40);
		break;
	}
	if (n > max)
		n = max;
	rt->nr = chance(c, 97) ? n : rnd(c);
	rt->flags = chance(c, 95) ? 0 : rnd(c);
	for (unsigned int i = 0; i < n; i++) {
		struct kvm_irq_routing_entry *e = &rt->entries[i];

		memset(e, 0, sizeof(*e));
		e->gsi = chance(c, 70) ? rndn(c, 24) : chance(c, 70) ? rndn(c, 4096) : rnd(c);
		switch (rndn(c, 20)) {
		case 0 ... 9:
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = chance(c, 90) ? rndn(c, 3) : rnd(c);
			e->u.irqchip.pin = chance(c, 90) ? rndn(c, 24) : rnd(c);
			break;
		case 10 ... 17:
			e->type = KVM_IRQ_ROUTING_MSI;
			rnd_msi(c, &e->u.msi.address_lo, &e->u.msi.address_hi, &e->u.msi.data);
			break;
		default:
			e->type = rndn(c, 8);
			fill_random(c, &e->u, sizeof(e->u));
			break;
		}
		if (chance(c, 5))
			e->flags = chance(c, 50) ? KVM_MSI_VALID_DEVID : rnd(c);
	}
	xioctl(c, fd, k, KVM_SET_GSI_ROUTING,
	       (unsigned long)place_arg(c, sizeof(*rt) + n * sizeof(rt->entries[0]), true),
	       RET_ZERO, 0);
}

static int rnd_eventfd(struct ctx *c)
{
	switch (rndn(c, 12)) {
	case 0:
		return -1;
	case 1:
		return atomic_load(&w.kvm);
	case 2:
		return 1000;
	default:
		return atomic_load(&w.efd[rndn(c, MAX_EFDS)]);
	}
}

static uint64_t rnd_io_addr(struct ctx *c, bool pio)
{
	if (chance(c, 10))
		return rnd_value(c);
	if (pio)
		return chance(c, 80) ? ports[rndn(c, ARRAY_SIZE(ports))] : rndn(c, 0x10000);
	return chance(c, 70) ? mmio_addrs[rndn(c, ARRAY_SIZE(mmio_addrs))] :
	       rndn(c, 1ULL << 32);
}

static void op_irqfd(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	struct kvm_irqfd *f = (void *)c->arg;

	memset(f, 0, sizeof(*f));
	f->fd = rnd_eventfd(c);
	f->gsi = chance(c, 80) ? rndn(c, 32) : rnd_value(c);
	switch (rndn(c, 20)) {
	case 0 ... 9:
		break;
	case 10 ... 14:
		f->flags = KVM_IRQFD_FLAG_DEASSIGN;
		break;
	case 15 ... 18:
		f->flags = KVM_IRQFD_FLAG_RESAMPLE;
		f->resamplefd = rnd_eventfd(c);
		break;
	default:
		f->flags = rnd(c);
		f->resamplefd = rnd_eventfd(c);
		break;
	}
	xioctl(c, fd, k, KVM_IRQFD, (unsigned long)place_arg(c, sizeof(*f), true), RET_ZERO, 0);
}

static void op_ioeventfd(struct ctx *c)
{
	static const uint32_t lens[] = { 0, 1, 2, 4, 8, 3, 16 };
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	struct kvm_ioeventfd *e = (void *)c->arg;

	memset(e, 0, sizeof(*e));
	e->flags = rndn(c, 16);
	if (chance(c, 5))
		e->flags = rnd(c);
	e->addr = rnd_io_addr(c, e->flags & KVM_IOEVENTFD_FLAG_PIO);
	e->len = chance(c, 95) ? lens[rndn(c, ARRAY_SIZE(lens))] : rnd(c);
	e->datamatch = rnd_value(c);
	e->fd = rnd_eventfd(c);
	xioctl(c, fd, k, KVM_IOEVENTFD, (unsigned long)place_arg(c, sizeof(*e), true), RET_ZERO,
	       0);
}

static void op_coalesced(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	struct kvm_coalesced_mmio_zone *z = (void *)c->arg;
	bool pio = chance(c, 40);

	memset(z, 0, sizeof(*z));
	z->addr = rnd_io_addr(c, pio);
	z->size = chance(c, 80) ? rndn(c, 0x2000) : rnd(c);
	z->pio = chance(c, 95) ? pio : rnd(c);
	xioctl(c, fd, k, rndn(c, 3) ? KVM_REGISTER_COALESCED_MMIO : KVM_UNREGISTER_COALESCED_MMIO,
	       (unsigned long)place_arg(c, sizeof(*z), true), RET_ZERO, 0);
}

static void op_clock(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	struct kvm_clock_data *d = (void *)c->arg;

	memset(d, 0, sizeof(*d));
	if (chance(c, 40)) {
		xioctl(c, fd, k, KVM_GET_CLOCK, (unsigned long)place_arg(c, sizeof(*d), true),
		       RET_ZERO, 0);
		return;
	}
	if (xioctl(c, fd, k, KVM_GET_CLOCK, (unsigned long)c->arg, RET_ZERO, 0) == 0 &&
	    chance(c, 60))
		d->clock += rndn(c, 2 * NSEC_PER_SEC) - NSEC_PER_SEC;
	else
		d->clock = rnd_value(c);
	d->flags = chance(c, 70) ? rndn(c, 16) & ~1U : rnd(c);
	if (chance(c, 30))
		d->realtime = rnd_value(c);
	xioctl(c, fd, k, KVM_SET_CLOCK, (unsigned long)place_arg(c, sizeof(*d), true), RET_ZERO,
	       0);
}

/* Get a state, change a few bits (or not) and set it again. */
struct pair {
	unsigned long get, set;
	size_t size;
	enum fdkind kind;
	void (*sanitize)(void *p);
	void (*prepare)(struct ctx *c, void *p);	/* fields GET reads */
};

static void sanitize_sregs_p(void *p)
{
	sanitize_sregs(p);
}

static void sanitize_sregs2_p(void *p)
{
	sanitize_sregs2(p);
}

static void prepare_irqchip(struct ctx *c, void *p)
{
	struct kvm_irqchip *ic = p;

	ic->chip_id = chance(c, 90) ? rndn(c, 3) : rnd(c);
}

static void prepare_xcrs(struct ctx *c, void *p)
{
	(void)c;
	memset(p, 0, sizeof(struct kvm_xcrs));
}

static void prepare_nested(struct ctx *c, void *p)
{
	struct kvm_nested_state *n = p;

	memset(n, 0, sizeof(*n));
	n->size = chance(c, 70) ? 0x5000 : rnd_value(c) & 0xffff;
}

static const struct pair pairs[] = {
	{ KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), FD_VCPU, NULL, NULL },
	{ KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), FD_VCPU, sanitize_sregs_p,
	  NULL },
	{ KVM_GET_SREGS2, KVM_SET_SREGS2, sizeof(struct kvm_sregs2), FD_VCPU, sanitize_sregs2_p,
	  NULL },
	{ KVM_GET_FPU, KVM_SET_FPU, sizeof(struct kvm_fpu), FD_VCPU, NULL, NULL },
	{ KVM_GET_XSAVE, KVM_SET_XSAVE, 0x1000, FD_VCPU, NULL, NULL },
	{ KVM_GET_XSAVE2, KVM_SET_XSAVE, 0x3000, FD_VCPU, NULL, NULL },
	{ KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), FD_VCPU, NULL, prepare_xcrs },
	{ KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), FD_VCPU, NULL, NULL },
	{ KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, sizeof(struct kvm_vcpu_events), FD_VCPU,
	  NULL, NULL },
	{ KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs), FD_VCPU, NULL,
	  NULL },
	{ KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state), FD_VCPU, NULL, NULL },
	{ KVM_GET_PIT2, KVM_SET_PIT2, sizeof(struct kvm_pit_state2), FD_VM, NULL, NULL },
	{ KVM_GET_PIT, KVM_SET_PIT, sizeof(struct kvm_pit_state), FD_VM, NULL, NULL },
	{ KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, sizeof(struct kvm_irqchip), FD_VM, NULL,
	  prepare_irqchip },
	{ KVM_GET_NESTED_STATE, 0, 0x5000, FD_VCPU, NULL, prepare_nested },
};

static void op_get_set(struct ctx *c)
{
	const struct pair *p = &pairs[rndn(c, ARRAY_SIZE(pairs))];
	enum fdkind k;
	int fd = pick_fd(c, p->kind, &k);
	long r;

	memset(c->arg, 0, p->size);
	if (p->prepare)
		p->prepare(c, c->arg);
	if (chance(c, 15) || !p->set) {
		xioctl(c, fd, k, p->get, (unsigned long)place_arg(c, p->size, true), RET_ZERO, 0);
		return;
	}
	r = xioctl(c, fd, k, p->get, (unsigned long)c->arg, RET_ZERO, 0);
	if (r < 0 || chance(c, 10))
		fill_random(c, c->arg, p->size);
	else if (chance(c, 80))
		mutate(c, c->arg, p->size);
	if (p->sanitize)
		p->sanitize(c->arg);
	/* Anywhere but the arena: SREGS must reach the kernel as sanitized. */
	xioctl(c, fd, k, p->set, (unsigned long)place_arg(c, p->size, !p->sanitize), RET_ZERO,
	       0);
}

static void op_msrs(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VCPU, &k);
	struct kvm_msrs *m = (void *)c->arg;
	unsigned int n = chance(c, 90) ? 1 + rndn(c, 8) : rndn(c, 260);
	bool set = chance(c, 50);

	m->nmsrs = chance(c, 97) ? n : rnd(c);
	m->pad = 0;
	for (unsigned int i = 0; i < n; i++)
		m->entries[i] = (struct kvm_msr_entry){ .index = rnd_msr(c),
							.data = rnd_value(c) };
	if (set)
		sanitize_msrs(m, n);
	xioctl(c, fd, k, set ? KVM_SET_MSRS : KVM_GET_MSRS,
	       (unsigned long)place_arg(c, sizeof(*m) + n * sizeof(m->entries[0]), !set),
	       RET_COUNT, m->nmsrs);
}

/*
 * CPUID.80000001H:EDX.LM stays (see the file's comment), in every entry of
 * that leaf, found as subleaf 0 too; false when the leaf is gone.
 */
static bool keep_lm(uint32_t function, uint32_t *edx, uint32_t *index, uint32_t *flags)
{
	if (function != 0x80000001)
		return false;
	*edx |= 1U << 29;
	if (index)
		*index = 0;
	if (flags)
		*flags &= ~KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	return true;
}

static void op_cpuid(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VCPU, &k);
	struct kvm_cpuid2 *cp = (void *)c->arg;
	unsigned int n = w.cpuid->nent;
	bool lm = false;

	switch (rndn(c, 5)) {
	case 0: {
		struct kvm_cpuid *old = (void *)c->arg;

		old->nent = rndn(c, 40);
		old->padding = 0;
		for (unsigned int i = 0; i < old->nent; i++) {
			struct kvm_cpuid2 *s = w.cpuid;

			old->entries[i] = (struct kvm_cpuid_entry){
				.function = s->entries[i % s->nent].function,
				.eax = s->entries[i % s->nent].eax,
				.ebx = s->entries[i % s->nent].ebx,
				.ecx = s->entries[i % s->nent].ecx,
				.edx = s->entries[i % s->nent].edx,
			};
		}
		mutate(c, old->entries, old->nent * sizeof(old->entries[0]));
		for (unsigned int i = 0; i < old->nent; i++)
			lm |= keep_lm(old->entries[i].function, &old->entries[i].edx, NULL, NULL);
		if (!lm)
			return;
		xioctl(c, fd, k, KVM_SET_CPUID, (unsigned long)place_arg(c, sizeof(*old) +
		       old->nent * sizeof(old->entries[0]), false), RET_ZERO, 0);
		return;
	}
	case 1:
		cp->nent = chance(c, 70) ? rndn(c, 300) : rnd(c);
		xioctl(c, fd, k, KVM_GET_CPUID2, (unsigned long)place_arg(c, sizeof(*cp), true),
		       RET_ZERO, 0);
		return;
	default:
		memcpy(cp, w.cpuid, sizeof(*cp) + n * sizeof(cp->entries[0]));
		if (chance(c, 20))
			n = rndn(c, n + 1);
		if (chance(c, 5))
			n = 257;
		cp->nent = n;
		if (chance(c, 70))
			mutate(c, cp->entries, w.cpuid->nent * sizeof(cp->entries[0]));
		for (unsigned int i = 0; i < n && i < w.cpuid->nent; i++)
			lm |= keep_lm(cp->entries[i].function, &cp->entries[i].edx,
				      &cp->entries[i].index, &cp->entries[i].flags);
		if (!lm && n <= 256)
			return;
		xioctl(c, fd, k, KVM_SET_CPUID2, (unsigned long)place_arg(c, sizeof(*cp) +
		       n * sizeof(cp->entries[0]), false), RET_ZERO, 0);
		return;
	}
}

/* The signal mask in KVM_RUN: anything, but the kick and the case's alarm get through. */
static void op_signal_mask(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VCPU, &k);
	struct kvm_signal_mask *m = (void *)c->arg;
	uint64_t set = rnd_value(c) & ~((1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGALRM - 1)));
	uint8_t *safe = c->arg + ARGBUF_SIZE / 4;

	m->len = chance(c, 85) ? 8 : rnd_value(c);
	memcpy(m->sigset, &set, 8);
	switch (rndn(c, 10)) {
	case 0:
		xioctl(c, fd, k, KVM_SET_SIGNAL_MASK, 0, RET_ZERO, 0);
		break;
	case 1:
		xioctl(c, fd, k, KVM_SET_SIGNAL_MASK, (unsigned long)bad_pointer(c), RET_ZERO, 0);
		break;
	case 2:
		/* Cut by the guard page: the kernel can read only part of it. */
		memmove(c->arg + ARGBUF_SIZE - 6, m, 6);
		xioctl(c, fd, k, KVM_SET_SIGNAL_MASK, (unsigned long)(c->arg + ARGBUF_SIZE - 6),
		       RET_ZERO, 0);
		break;
	default:
		memmove(safe, m, sizeof(*m) + 8);
		xioctl(c, fd, k, KVM_SET_SIGNAL_MASK, (unsigned long)safe, RET_ZERO, 0);
		break;
	}
}

static void op_vcpu_misc(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VCPU, &k);
	uint8_t *a = c->arg;

	memset(a, 0, 512);
	switch (rndn(c, 14)) {
	case 0: {
		struct kvm_interrupt *i = (void *)a;

		i->irq = chance(c, 90) ? rndn(c, 256) : rnd(c);
		xioctl(c, fd, k, KVM_INTERRUPT, (unsigned long)place_arg(c, sizeof(*i), true),
		       RET_ZERO, 0);
		break;
	}
	case 1:
		xioctl(c, fd, k, KVM_NMI, 0, RET_ZERO, 0);
		break;
	case 2:
		xioctl(c, fd, k, KVM_SMI, 0, RET_ZERO, 0);
		break;
	case 3:
		xioctl(c, fd, k, KVM_GET_TSC_KHZ, 0, RET_ANY, 0);
		break;
	case 4:
		xioctl(c, fd, k, KVM_SET_TSC_KHZ, chance(c, 50) ? 0 : rnd_value(c), RET_ZERO, 0);
		break;
	case 5: {
		uint64_t *cap = (void *)a;

		*cap = chance(c, 70) ? (rndn(c, 34) | (rndn(c, 4) << 8) | (rndn(c, 2) << 24)) :
		       rnd_value(c);
		xioctl(c, fd, k, KVM_X86_SETUP_MCE, (unsigned long)place_arg(c, 8, true),
		       RET_ZERO, 0);
		break;
	}
	case 6: {
		struct kvm_x86_mce *m = (void *)a;

		m->status = chance(c, 70) ? (1ULL << 63) | (rnd(c) & ((1ULL << 63) - 1)) :
			    rnd_value(c);
		m->addr = rnd_value(c);
		m->misc = rnd_value(c);
		m->mcg_status = rndn(c, 8);
		m->bank = chance(c, 90) ? rndn(c, 34) : rnd(c);
		xioctl(c, fd, k, KVM_X86_SET_MCE, (unsigned long)place_arg(c, sizeof(*m), true),
		       RET_ZERO, 0);
		break;
	}
	case 7: {
		struct kvm_vapic_addr *v = (void *)a;

		v->vapic_addr = chance(c, 60) ? rndn(c, HOME_SIZE) & ~0xfULL : rnd_value(c);
		xioctl(c, fd, k, KVM_SET_VAPIC_ADDR, (unsigned long)place_arg(c, sizeof(*v), true),
		       RET_ZERO, 0);
		break;
	}
	case 8: {
		struct kvm_tpr_access_ctl *t = (void *)a;

		t->enabled = chance(c, 90) ? rndn(c, 2) : rnd(c);
		t->flags = chance(c, 90) ? 0 : rnd(c);
		xioctl(c, fd, k, KVM_TPR_ACCESS_REPORTING,
		       (unsigned long)place_arg(c, sizeof(*t), true), RET_ZERO, 0);
		break;
	}
	case 9: {
		struct kvm_guest_debug *g = (void *)a;

		g->control = chance(c, 70) ? rndn(c, 16) | (rndn(c, 8) << 16) : rnd(c);
		for (int i = 0; i < 8; i++)
			g->arch.debugreg[i] = chance(c, 50) ? rndn(c, HOME_SIZE) : rnd_value(c);
		xioctl(c, fd, k, KVM_SET_GUEST_DEBUG,
		       (unsigned long)place_arg(c, sizeof(*g), true), RET_ZERO, 0);
		break;
	}
	case 10: {
		struct kvm_translation *t = (void *)a;

		t->linear_address = rnd_value(c);
		xioctl(c, fd, k, KVM_TRANSLATE, (unsigned long)place_arg(c, sizeof(*t), true),
		       RET_ZERO, 0);
		break;
	}
	case 11:
		xioctl(c, fd, k, KVM_KVMCLOCK_CTRL, 0, RET_ZERO, 0);
		break;
	case 12: {
		struct kvm_mp_state *s = (void *)a;

		s->mp_state = chance(c, 90) ? rndn(c, 10) : rnd(c);
		xioctl(c, fd, k, KVM_SET_MP_STATE, (unsigned long)place_arg(c, sizeof(*s), true),
		       RET_ZERO, 0);
		break;
	}
	default: {
		struct kvm_cpuid2 *cp = (void *)a;

		cp->nent = rndn(c, 100);
		xioctl(c, fd, k, KVM_GET_SUPPORTED_HV_CPUID,
		       (unsigned long)place_arg(c, sizeof(*cp), true), RET_ZERO, 0);
		break;
	}
	}
}

static void op_msr_filter(struct ctx *c)
{
	static const uint32_t bases[] = {
		0, 0x10, 0x174, 0x800, 0xc0000000, 0xc0000080, 0xc0010000, 0x4b564d00,
		0xffffffff, 0xfffff000,
	};
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);
	struct kvm_msr_filter *f = (void *)c->arg;
	uint8_t *bitmaps = c->arg + ARGBUF_SIZE / 2;
	unsigned int n = rndn(c, 17);

	memset(f, 0, sizeof(*f));
	fill_random(c, bitmaps, 0x600 * 16);
	f->flags = chance(c, 80) ? rndn(c, 2) : rnd(c);
	for (unsigned int i = 0; i < n && i < KVM_MSR_FILTER_MAX_RANGES; i++) {
		struct kvm_msr_filter_range *r = &f->ranges[i];

		r->flags = chance(c, 85) ? rndn(c, 4) : rnd(c);
		r->base = chance(c, 80) ? bases[rndn(c, ARRAY_SIZE(bases))] : rnd(c);
		r->nmsrs = chance(c, 80) ? rndn(c, 0x600 * 8 + 2) : rnd(c);
		r->bitmap = chance(c, 90) ? bitmaps + i * 0x600 : bad_pointer(c);
	}
	xioctl(c, fd, k, KVM_X86_SET_MSR_FILTER, (unsigned long)place_arg(c, sizeof(*f), true),
	       RET_ZERO, 0);
}

static void op_pit(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, FD_VM, &k);

	if (chance(c, 50)) {
		struct kvm_reinject_control *r = (void *)c->arg;

		memset(r, 0, sizeof(*r));
		r->pit_reinject = chance(c, 90) ? rndn(c, 2) : rnd(c);
		xioctl(c, fd, k, KVM_REINJECT_CONTROL,
		       (unsigned long)place_arg(c, sizeof(*r), true), RET_ZERO, 0);
	} else {
		struct kvm_pit_config *p = (void *)c->arg;

		memset(p, 0, sizeof(*p));
		p->flags = chance(c, 80) ? rndn(c, 2) : rnd(c);
		xioctl(c, fd, k, KVM_CREATE_PIT2, (unsigned long)place_arg(c, sizeof(*p), true),
		       RET_ZERO, 0);
	}
}

/* Device attributes on every kind of fd, and KVM_CREATE_DEVICE. */
static void op_device(struct ctx *c)
{
	static const unsigned long cmds[] = {
		KVM_GET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR, KVM_SET_DEVICE_ATTR,
	};
	enum fdkind k;
	int fd = pick_fd(c, (enum fdkind)rndn(c, 3), &k);

	if (chance(c, 25)) {
		struct kvm_create_device *d = (void *)c->arg;

		memset(d, 0, sizeof(*d));
		d->type = chance(c, 80) ? rndn(c, 10) : rnd(c);
		d->flags = chance(c, 70) ? rndn(c, 2) : rnd(c);
		if (xioctl(c, fd, k, KVM_CREATE_DEVICE, (unsigned long)c->arg, RET_ZERO, 0) == 0 &&
		    !(d->flags & KVM_CREATE_DEVICE_TEST) && d->fd > 2)
			close(d->fd);
	} else {
		struct kvm_device_attr *a = (void *)c->arg;
		uint64_t *val = (void *)(c->arg + ARGBUF_SIZE / 2);

		memset(a, 0, sizeof(*a));
		*val = rnd_value(c);
		a->flags = chance(c, 90) ? 0 : rnd(c);
		a->group = chance(c, 80) ? rndn(c, 4) : rnd(c);
		a->attr = chance(c, 80) ? rndn(c, 4) : rnd(c);
		a->addr = chance(c, 80) ? (uint64_t)val : (uint64_t)out_buffer(c);
		xioctl(c, fd, k, cmds[rndn(c, 3)], (unsigned long)c->arg, RET_ZERO, 0);
	}
}

/* Any number in KVM's ioctl space, with random arguments; never the denied ones. */
static void op_random_ioctl(struct ctx *c)
{
	static const unsigned int sizes[] = { 0, 1, 4, 8, 16, 24, 32, 64, 128, 256, 1024, 4096 };
	unsigned int dir = rndn(c, 4), nr = rndn(c, 256);
	unsigned int size = chance(c, 80) ? sizes[rndn(c, ARRAY_SIZE(sizes))] : rndn(c, 8192);
	unsigned long cmd, arg;
	enum fdkind k;
	int fd = pick_fd(c, (enum fdkind)rndn(c, 3), &k);

	/* Sometimes a known command with the size its struct has: worth more. */
	if (chance(c, 40)) {
		cmd = iocs[1 + rndn(c, NR_IOCS - 1)].cmd;
	} else {
		cmd = _IOC(dir, KVMIO, nr, size);
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(denied); i++)
		if (cmd == denied[i])
			return;
	if (_IOC_SIZE(cmd) || chance(c, 50)) {
		fill_random(c, c->arg, 8192);
		arg = (unsigned long)place_arg(c, _IOC_SIZE(cmd) ? _IOC_SIZE(cmd) : 64, true);
	} else {
		arg = rnd_value(c);
	}
	/* The known commands that make fds are all denied: any result is fine. */
	xioctl(c, fd, k, cmd, arg, RET_ANY, 0);
}

static void op_stats(struct ctx *c)
{
	enum fdkind k;
	int fd = pick_fd(c, chance(c, 50) ? FD_VM : FD_VCPU, &k);
	int sfd = xioctl(c, fd, k, KVM_GET_STATS_FD, 0, RET_NEWFD, 0);

	if (sfd < 0)
		return;
	for (int i = rndn(c, 4); i > 0; i--) {
		size_t n = chance(c, 80) ? rndn(c, 4096) : ARGBUF_SIZE / 2;

		if (pread(sfd, c->arg + ARGBUF_SIZE / 2, n,
			  chance(c, 80) ? rndn(c, 8192) : rnd_value(c) & 0x7fffffffffffffffULL) < 0)
			(void)0;
	}
	if (chance(c, 50)) {
		/* Kept for a while: it holds the VM. */
		int slot = rndn(c, MAX_MISC);

		sfd = atomic_exchange(&w.misc[slot], sfd);
	}
	if (sfd >= 0)
		close(sfd);
}

static void on_probe_fault(int sig, siginfo_t *si, void *uc);

/* A vCPU's mmap at an offset and length of any size, touched where it should fault. */
static void op_vcpu_mmap(struct ctx *c)
{
	static const unsigned long pgoffs[] = {
		0, 1, 2, 3, KVM_DIRTY_LOG_PAGE_OFFSET, 4, 0x100,
	};
	enum fdkind k;
	int fd = pick_fd(c, FD_VCPU, &k);
	size_t len = (1 + rndn(c, 4)) * PAGE_SIZE;
	unsigned long off = chance(c, 90) ? pgoffs[rndn(c, ARRAY_SIZE(pgoffs))] : rndn(c, 1 << 20);
	int prot = chance(c, 80) ? PROT_READ | PROT_WRITE : PROT_READ;
	uint8_t *p;

	(void)k;
	p = mmap(NULL, len, prot, chance(c, 90) ? MAP_SHARED : MAP_PRIVATE, fd, off * PAGE_SIZE);
	if (p == MAP_FAILED)
		return;
	/* Pages beyond what the vCPU offers raise SIGBUS; the probe catches that. */
	for (size_t o = 0; o < len; o += PAGE_SIZE) {
		if (!sigsetjmp(c->probe_jmp, 1)) {
			c->probing = 1;
			(void)*(volatile uint8_t *)(p + o);
			c->probing = 0;
		} else {
			c->probing = 0;
		}
	}
	munmap(p, len);
}

static void op_eventfd(struct ctx *c)
{
	int slot = rndn(c, MAX_EFDS), fd;
	uint64_t v = chance(c, 90) ? 1 : rnd_value(c);

	switch (rndn(c, 6)) {
	case 0:
		fd = eventfd(rndn(c, 2), EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd >= 0) {
			fd = atomic_exchange(&w.efd[slot], fd);
			if (fd >= 0)
				close(fd);
		}
		break;
	case 1:
		close_slot(&w.efd[slot]);
		break;
	case 2:
		fd = atomic_load(&w.efd[slot]);
		if (fd >= 0 && read(fd, &v, 8) < 0)
			(void)0;
		break;
	default:
		/* Fires an irqfd, or sits there until one is assigned. */
		fd = atomic_load(&w.efd[slot]);
		if (fd >= 0 && v != ~0ULL && write(fd, &v, 8) < 0)
			(void)0;
		break;
	}
}

/* Close a VM's or vCPU's fd that other threads may be using right now. */
static void op_close(struct ctx *c)
{
	int vmi;
	struct fvcpu *v;

	switch (rndn(c, 6)) {
	case 0:
		vmi = pick_vm(c);
		if (vmi >= 0)
			close_slot(&w.vm[vmi].fd);
		break;
	case 1:
		close_slot(&w.misc[rndn(c, MAX_MISC)]);
		break;
	default:
		v = pick_vcpu(c, NULL);
		if (v)
			close_slot(&v->fd);
		break;
	}
}

/* Change the mappings behind memslots in the remap zone while vCPUs use them. */
static void op_remap(struct ctx *c)
{
	uint64_t off = rndn(c, REMAP_SIZE / PAGE_SIZE) * PAGE_SIZE;
	uint64_t len = (1 + rndn(c, 64)) * PAGE_SIZE;
	uint8_t *p = remap_zone + off;
	void *r;

	if (off + len > REMAP_SIZE)
		len = REMAP_SIZE - off;
	switch (rndn(c, 8)) {
	case 0:
		r = mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case 1:
		r = mmap(p, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case 2:
		r = mmap(p, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, remap_memfd, off);
		break;
	case 3:
		r = mmap(p, len, PROT_READ, MAP_SHARED | MAP_FIXED, remap_memfd, off);
		break;
	case 4:
		r = p;
		madvise(p, len, MADV_DONTNEED);
		break;
	case 5:
		r = p;
		madvise(p, len, rndn(c, 2) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		break;
	default:
		r = mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			 -1, 0);
		break;
	}
	TEST_ASSERT(r == p, "remapping the remap zone: %s", strerror(errno));
}

/* Random bytes into a vCPU's kvm_run, PIO page or coalesced ring, never its sync'd SREGS. */
static void op_scribble(struct ctx *c)
{
	struct fvcpu *v = pick_vcpu(c, NULL);
	struct kvm_run *run = v ? atomic_load(&v->run) : NULL;
	size_t skip_lo = offsetof(struct kvm_run, s.regs.sregs);
	size_t skip_hi = skip_lo + sizeof(struct kvm_sregs);
	uint8_t *b = (uint8_t *)run;
	size_t off, n;

	if (!run)
		return;
	switch (rndn(c, 6)) {
	case 0:
		run->immediate_exit = rndn(c, 2);
		return;
	case 1:
		run->request_interrupt_window = rndn(c, 2);
		run->cr8 = chance(c, 90) ? rndn(c, 16) : rnd(c);
		return;
	case 2:
		run->kvm_valid_regs = chance(c, 90) ? rndn(c, 8) : rnd(c);
		run->kvm_dirty_regs = chance(c, 90) ? rndn(c, 8) & ~KVM_SYNC_X86_SREGS : rnd(c);
		if (run->kvm_dirty_regs & KVM_SYNC_X86_SREGS)
			run->kvm_dirty_regs &= ~KVM_SYNC_X86_SREGS;
		return;
	case 3:
		if (w.run_size > KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE) {
			struct kvm_coalesced_mmio_ring *ring =
				(void *)(b + KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE);

			if (rndn(c, 2))
				ring->first = chance(c, 70) ? rndn(c, KVM_COALESCED_MMIO_MAX) :
					      rnd(c);
			else
				ring->last = chance(c, 70) ? rndn(c, KVM_COALESCED_MMIO_MAX) :
					     rnd(c);
		}
		return;
	default:
		off = rndn(c, w.run_size);
		n = 1 + rndn(c, 64);
		if (off + n > w.run_size)
			n = w.run_size - off;
		for (size_t i = off; i < off + n; i++)
			if (i < skip_lo || i >= skip_hi)
				b[i] = rnd(c);
		return;
	}
}

/* A child process may not use this process's VM: EIO for every VM and vCPU ioctl. */
static void op_fork_eio(struct ctx *c)
{
	int vmi = pick_vm(c), vmfd, vcpufd, status;
	struct fvcpu *v = pick_vcpu(c, NULL);
	pid_t pid;

	if (vmi < 0)
		return;
	vmfd = atomic_load(&w.vm[vmi].fd);
	vcpufd = v ? atomic_load(&v->fd) : -1;
	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		static const unsigned long vm_cmds[] = {
			KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_GET_CLOCK, KVM_CREATE_IRQCHIP,
		};
		static const unsigned long vcpu_cmds[] = { KVM_RUN, KVM_GET_REGS, KVM_NMI };
		int bad = 0;

		for (unsigned int i = 0; i < ARRAY_SIZE(vm_cmds); i++)
			if (ioctl(vmfd, vm_cmds[i], c->arg) != -1 || errno != EIO)
				bad = 1 + i;
		for (unsigned int i = 0; vcpufd >= 0 && i < ARRAY_SIZE(vcpu_cmds); i++)
			if (ioctl(vcpufd, vcpu_cmds[i], 0) != -1 || errno != EIO)
				bad = 10 + i;
		_exit(bad);
	}
	/* The kick interrupts the wait too. */
	while (waitpid(pid, &status, 0) != pid)
		TEST_ASSERT(errno == EINTR, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fuzz_fail("a child process's ioctl on the parent's %s fd did not fail with EIO "
			  "(status %#x)", WEXITSTATUS(status) >= 10 ? "vCPU" : "VM", status);
}

/* ------------------------------------------------------------------------
 * Running vCPUs
 */

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
	*s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				   .present = 1, .s = 1, .g = 1, .db = db, .l = code64 };
}

/* Registers and code for a fresh start in real, protected or long mode, or just noise. */
static void setup_vcpu(struct ctx *c, int vmi, int fd)
{
	struct kvm_sregs *s = (void *)c->arg;
	struct kvm_regs *r = (void *)(c->arg + 4096);
	uint64_t code = HOME_CODE + rndn(c, (HOME_CODE_END - HOME_CODE - 0x1000) / 16) * 16;
	int mode = rndn(c, 4);

	if (xioctl(c, fd, FD_VCPU, KVM_GET_SREGS, (unsigned long)s, RET_ZERO, 0) < 0)
		return;
	memset(r, 0, sizeof(*r));
	switch (mode) {
	case 0:		/* real mode, CS based at the code's 64 KiB */
		s->cr0 &= ~(CR0_PE | CR0_PG);
		s->efer = 0;
		s->cs = (struct kvm_segment){ .base = code & ~0xffffULL, .limit = 0xffff,
			.selector = (code & ~0xffffULL) >> 4, .type = 11, .present = 1, .s = 1 };
		r->rip = code & 0xffff;
		break;
	case 1:		/* flat 32-bit protected mode */
		s->cr0 = 0x11;
		s->efer = 0;
		set_seg(&s->cs, 0x18, 11, false, true);
		set_seg(&s->ds, 0x10, 3, false, true);
		s->es = s->fs = s->gs = s->ss = s->ds;
		r->rip = code;
		break;
	default:	/* 64-bit, identity-mapped low 4 GiB */
		s->cr0 = 0x80050033;
		s->cr3 = HOME_PML4;
		s->cr4 = 0x20 | (chance(c, 50) ? 0x600 : 0);
		s->efer = 0x500 | (chance(c, 50) ? 1 : 0);
		set_seg(&s->cs, 0x08, 11, true, false);
		set_seg(&s->ds, 0x10, 3, false, true);
		s->es = s->fs = s->gs = s->ss = s->ds;
		s->gdt.base = HOME_GDT;
		s->gdt.limit = 0x17;
		r->rip = code;
		break;
	}
	if (chance(c, 20))
		mutate(c, s, sizeof(*s));
	sanitize_sregs(s);
	xioctl(c, fd, FD_VCPU, KVM_SET_SREGS, (unsigned long)s, RET_ZERO, 0);

	r->rflags = 2 | (chance(c, 50) ? 0x200 : 0) | (chance(c, 3) ? 0x100 : 0);
	r->rsp = HOME_STACK - rndn(c, 0x1000);
	r->rax = rnd_value(c);
	r->rbx = rnd_value(c);
	r->rcx = rnd_value(c);
	r->rdx = rnd_value(c);
	r->rsi = rnd_value(c);
	r->rdi = rnd_value(c);
	r->rbp = rnd_value(c);
	r->r8 = rnd_value(c);
	r->r9 = rnd_value(c);
	r->r10 = rnd_value(c);
	r->r11 = rnd_value(c);
	r->r12 = rnd_value(c);
	r->r13 = rnd_value(c);
	r->r14 = rnd_value(c);
	r->r15 = rnd_value(c);
	if (chance(c, 10))
		mutate(c, r, sizeof(*r));
	xioctl(c, fd, FD_VCPU, KVM_SET_REGS, (unsigned long)r, RET_ZERO, 0);

	/* The code, where the VM's home memory backs it (whatever slot 0 is now). */
	gen_code(c, home_of(vmi) + code, 0x800);
	if (cfg.trace >= 2) {
		char hex[3 * 64 + 1];

		for (int i = 0; i < 64; i++)
			snprintf(hex + 3 * i, 4, " %02x", home_of(vmi)[code + i]);
		printf("# t%d vCPU fd %d: mode %d cr0 %#llx efer %#llx rip %#llx rflags %#llx "
		       "code at %#llx:%s\n", c->idx, fd, mode, (unsigned long long)s->cr0,
		       (unsigned long long)s->efer, (unsigned long long)r->rip,
		       (unsigned long long)r->rflags, (unsigned long long)code, hex);
	}
}

/* The answer to an exit: data for reads, an error or not for MSRs. */
static void answer_exit(struct ctx *c, struct kvm_run *run)
{
	uint32_t reason = run->exit_reason;

	atomic_fetch_add(&exit_reasons[reason < 64 ? reason : 64], 1);
	switch (reason) {
	case KVM_EXIT_IO: {
		uint64_t off = run->io.data_offset, n = (uint64_t)run->io.size * run->io.count;

		if (run->io.direction == KVM_EXIT_IO_IN && off < w.run_size &&
		    n <= w.run_size - off)
			fill_random(c, (uint8_t *)run + off, n);
		break;
	}
	case KVM_EXIT_MMIO:
		if (!run->mmio.is_write)
			fill_random(c, run->mmio.data, sizeof(run->mmio.data));
		break;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		run->msr.error = chance(c, 30);
		run->msr.data = rnd_value(c);
		break;
	default:
		break;
	}
	/* Take what the coalesced ring holds. */
	if (w.run_size > KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE && chance(c, 50)) {
		struct kvm_coalesced_mmio_ring *ring =
			(void *)((uint8_t *)run + KVM_COALESCED_MMIO_PAGE_OFFSET * PAGE_SIZE);
		uint32_t last = ring->last;

		if (last < KVM_COALESCED_MMIO_MAX)
			ring->first = last;
	}
}

/* Sync'd registers for KVM_RUN to take in; SREGS written as sanitized, EFER first. */
static void set_sync_regs(struct ctx *c, struct kvm_run *run)
{
	uint64_t valid = rndn(c, 8), dirty = 0;

	if (chance(c, 3))
		valid = rnd(c);
	if (chance(c, 30)) {
		struct kvm_regs r = run->s.regs.regs;

		mutate(c, &r, sizeof(r));
		run->s.regs.regs = r;
		dirty |= KVM_SYNC_X86_REGS;
	}
	if (chance(c, 20)) {
		mutate(c, &run->s.regs.events, sizeof(run->s.regs.events));
		dirty |= KVM_SYNC_X86_EVENTS;
	}
	if (chance(c, 20)) {
		struct kvm_sregs s = run->s.regs.sregs;

		mutate(c, &s, sizeof(s));
		sanitize_sregs(&s);
		/* Whatever another KVM_RUN reads in between must still be sane. */
		if (!(s.cr0 & CR0_PG))
			__atomic_store_n(&run->s.regs.sregs.efer, s.efer, __ATOMIC_SEQ_CST);
		else
			__atomic_store_n(&run->s.regs.sregs.cr0, s.cr0, __ATOMIC_SEQ_CST);
		run->s.regs.sregs = s;
		dirty |= KVM_SYNC_X86_SREGS;
	}
	if (chance(c, 2))
		dirty |= rnd(c) & ~KVM_SYNC_X86_SREGS;
	run->kvm_valid_regs = valid;
	run->kvm_dirty_regs = dirty;
}

static void op_run(struct ctx *c)
{
	int vmi, fd;
	struct fvcpu *v = pick_vcpu(c, &vmi);
	struct kvm_run *run = v ? atomic_load(&v->run) : NULL;

	if (!run)
		return;
	fd = atomic_load(&v->fd);
	if (fd < 0)
		return;
	if (chance(c, 40))
		setup_vcpu(c, vmi, fd);
	for (int i = 1 + rndn(c, 16); i > 0; i--) {
		long r;

		run->immediate_exit = chance(c, 5);
		run->request_interrupt_window = chance(c, 10);
		if (chance(c, 3))
			run->cr8 = chance(c, 90) ? rndn(c, 16) : rnd(c);
		if (chance(c, 10))
			set_sync_regs(c, run);
		else
			run->kvm_dirty_regs = 0;
		/* Alone, nothing else writes kvm_run: a success must say why it returned. */
		if (c->role == ROLE_ALL)
			run->exit_reason = NO_EXIT_REASON;
		r = xioctl(c, fd, FD_VCPU, KVM_RUN, chance(c, 98) ? 0 : rnd_value(c), RET_ZERO, 0);
		c->runs++;
		if (r == 0 && c->role == ROLE_ALL && run->exit_reason == NO_EXIT_REASON)
			fuzz_fail("KVM_RUN on fd %d succeeded without setting kvm_run->exit_reason",
				  fd);
		if (r < 0) {
			/* A kick: the guest spins or halts; move on, mostly. */
			if ((errno != EINTR && errno != EAGAIN) || chance(c, 70))
				break;
			continue;
		}
		answer_exit(c, run);
		switch (run->exit_reason) {
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_FAIL_ENTRY:
		case KVM_EXIT_INTERNAL_ERROR:
			if (chance(c, 50))
				setup_vcpu(c, vmi, fd);
			break;
		case KVM_EXIT_HLT:
		case KVM_EXIT_IRQ_WINDOW_OPEN:
			if (chance(c, 50)) {
				struct kvm_interrupt *irq = (void *)c->arg;

				irq->irq = 0x20 + rndn(c, 0xe0);
				xioctl(c, fd, FD_VCPU, KVM_INTERRUPT, (unsigned long)irq,
				       RET_ZERO, 0);
			}
			break;
		}
	}
	run->immediate_exit = 0;
}

/* ------------------------------------------------------------------------
 * The lifecycle thread's own operations
 */

static void op_create_vm_world(struct ctx *c)
{
	create_vm(c);
}

static void op_destroy_vm(struct ctx *c)
{
	destroy_vm(c);
}

static void op_vcpu_lifecycle(struct ctx *c)
{
	int vmi = pick_vm(c);
	struct fvm *vm;

	if (vmi < 0)
		return;
	vm = &w.vm[vmi];
	if (chance(c, 60)) {
		uint32_t id = chance(c, 90) ? rndn(c, 2 * MAX_VCPUS) : rnd_value(c);

		add_vcpu(c, vmi, id);
		return;
	}
	/* Drop one: its fd, and its kvm_run once no thread can be using it. */
	for (int i = 0; i < MAX_VCPUS; i++) {
		struct fvcpu *v = &vm->vcpu[rndn(c, MAX_VCPUS)];

		if (!atomic_load(&v->run))
			continue;
		close_slot(&v->fd);
		retire_run(atomic_exchange(&v->run, NULL));
		break;
	}
	reclaim_runs(false);
}

/* Also tidy up: published kvm_runs whose fd another thread closed are retired. */
static void op_tidy(struct ctx *c)
{
	(void)c;
	for (int i = 0; i < MAX_VMS; i++) {
		struct fvm *vm = &w.vm[i];
		bool vm_gone = atomic_load(&vm->fd) < 0;

		for (int j = 0; j < MAX_VCPUS; j++) {
			struct fvcpu *v = &vm->vcpu[j];

			if (atomic_load(&v->run) && (vm_gone || atomic_load(&v->fd) < 0)) {
				close_slot(&v->fd);
				retire_run(atomic_exchange(&v->run, NULL));
			}
		}
	}
	reclaim_runs(false);
}

/* ------------------------------------------------------------------------
 * The operation table, with weights per role
 */

struct opdef {
	const char *name;
	op_fn fn;
	/* ROLE_ALL, ROLE_LIFECYCLE, ROLE_RUNNER, ROLE_IOCTL */
	unsigned int weight[4];
};

static const struct opdef opdefs[] = {
	{ "run", op_run, { 14, 2, 60, 0 } },
	{ "get/set state", op_get_set, { 12, 4, 10, 12 } },
	{ "msrs", op_msrs, { 5, 1, 5, 5 } },
	{ "cpuid", op_cpuid, { 3, 1, 2, 3 } },
	{ "vcpu misc", op_vcpu_misc, { 8, 2, 8, 8 } },
	{ "signal mask", op_signal_mask, { 1, 0, 1, 1 } },
	{ "vm value", op_vm_value, { 4, 2, 0, 5 } },
	{ "system", op_sys, { 3, 1, 0, 4 } },
	{ "create vm", op_create_vm, { 1, 1, 0, 1 } },
	{ "memslot", op_memslot, { 6, 20, 0, 2 } },
	{ "dirty log", op_dirty_log, { 3, 2, 0, 4 } },
	{ "enable cap", op_enable_cap, { 2, 2, 0, 2 } },
	{ "irq", op_irq, { 5, 2, 2, 8 } },
	{ "gsi routing", op_gsi_routing, { 2, 4, 0, 2 } },
	{ "irqfd", op_irqfd, { 3, 6, 0, 2 } },
	{ "ioeventfd", op_ioeventfd, { 3, 6, 0, 2 } },
	{ "coalesced", op_coalesced, { 2, 3, 0, 2 } },
	{ "clock", op_clock, { 2, 1, 0, 2 } },
	{ "msr filter", op_msr_filter, { 1, 2, 0, 1 } },
	{ "pit", op_pit, { 1, 1, 0, 1 } },
	{ "device", op_device, { 1, 1, 0, 1 } },
	{ "random ioctl", op_random_ioctl, { 6, 2, 0, 8 } },
	{ "stats", op_stats, { 1, 1, 0, 1 } },
	{ "vcpu mmap", op_vcpu_mmap, { 1, 0, 0, 1 } },
	{ "eventfd", op_eventfd, { 3, 4, 0, 6 } },
	{ "scribble", op_scribble, { 3, 0, 0, 6 } },
	{ "close", op_close, { 1, 2, 0, 1 } },
	{ "remap", op_remap, { 2, 6, 0, 0 } },
	{ "vm create", op_create_vm_world, { 2, 8, 0, 0 } },
	{ "vm destroy", op_destroy_vm, { 1, 4, 0, 0 } },
	{ "vcpu lifecycle", op_vcpu_lifecycle, { 3, 10, 0, 0 } },
	{ "tidy", op_tidy, { 1, 4, 0, 0 } },
	{ "fork", op_fork_eio, { 1, 0, 0, 0 } },
};

/* Whether FUZZ_SKIP names the operation (with '_' for its spaces). */
static bool skipped(const char *name)
{
	size_t n = strlen(name);
	const char *p = cfg.skip;

	while (p && *p) {
		size_t len = strcspn(p, ","), i = 0;

		while (i < n && i < len && (p[i] == name[i] || (p[i] == '_' && name[i] == ' ')))
			i++;
		if (i == n && len == n)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

static unsigned int weight(const struct opdef *op, enum role role)
{
	return skipped(op->name) ? 0 : op->weight[role];
}

static const struct opdef *pick_op(struct ctx *c)
{
	unsigned int total = 0, x;

	for (unsigned int i = 0; i < ARRAY_SIZE(opdefs); i++)
		total += weight(&opdefs[i], c->role);
	if (!total)
		return NULL;
	x = rndn(c, total);
	for (unsigned int i = 0; i < ARRAY_SIZE(opdefs); i++) {
		if (x < weight(&opdefs[i], c->role))
			return &opdefs[i];
		x -= weight(&opdefs[i], c->role);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Signals: the kick that ends KVM_RUN, and faults
 */

static void on_kick(int sig)
{
	(void)sig;
}

static void on_probe_fault(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (self && self->probing)
		siglongjmp(self->probe_jmp, 1);
	/* Not a probe: report what this thread was doing, then die of the signal. */
	signal(sig, SIG_DFL);
	if (self) {
		char line[256];
		int n = snprintf(line, sizeof(line),
				 "# unexpected signal %d in thread %d (last ioctl %s)\n", sig,
				 self->idx, atomic_load(&self->op_name) ?
				 atomic_load(&self->op_name) : "none");

		if (write(1, line, n) < 0)
			(void)0;
	}
	raise(sig);
}

static void install_signals(void)
{
	struct sigaction kick = { .sa_handler = on_kick };
	struct sigaction fault = { .sa_sigaction = on_probe_fault, .sa_flags = SA_SIGINFO };

	/* No SA_RESTART: a kick ends any blocking ioctl with EINTR, which is an answer too. */
	sigaction(SIGUSR1, &kick, NULL);
	sigaction(SIGBUS, &fault, NULL);
	sigaction(SIGSEGV, &fault, NULL);
}

/* ------------------------------------------------------------------------
 * The watchdog: kicks, hangs, and the kernel log
 */

static void dump_recent(void)
{
	for (int i = 0; i < nr_workers; i++) {
		struct ctx *c = &workers[i];
		unsigned int n = c->nr_recent < NR_RECENT ? c->nr_recent : NR_RECENT;
		uint64_t start = atomic_load(&c->op_start);

		printf("# thread %d (role %d, tid %d): %" PRIu64 " ioctls, %" PRIu64 " KVM_RUNs; ",
		       i, c->role, atomic_load(&c->tid), c->ops, c->runs);
		if (start)
			printf("in %s fd %d arg %#lx for %" PRIu64 " ms\n",
			       atomic_load(&c->op_name), atomic_load(&c->op_fd),
			       atomic_load(&c->op_arg),
			       (uint64_t)((now_ns() - start) / NSEC_PER_MSEC));
		else
			printf("not in an ioctl\n");
		for (unsigned int j = c->nr_recent - n; j < c->nr_recent; j++) {
			struct recent *r = &c->recent[j % NR_RECENT];

			printf("#   %s fd %d arg %#lx -> %ld%s%s\n", r->what, r->fd, r->arg, r->ret,
			       r->ret < 0 ? " " : "", r->ret < 0 ? strerror(r->err) : "");
		}
	}
	fflush(stdout);
}

/* What the kernel says a stuck thread is doing: its state, signals and stack. */
static void dump_kernel_stack(pid_t tid)
{
	char path[64], buf[4096];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = 0;
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			if (!strncmp(line, "State", 5) || !strncmp(line, "Sig", 3) ||
			    !strncmp(line, "ShdPnd", 6))
				printf("# thread %d: %s\n", tid, line);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/stack", tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	printf("# kernel stack of thread %d:\n", tid);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		printf("#   %s\n", line);
}

/*
 * A thread running in the kernel has no stack in /proc: ask the kernel for
 * every CPU's backtrace and the blocked tasks' (SysRq l and w, root only),
 * and copy what it logs.
 */
static void dump_kernel_backtraces(int kmsg)
{
	int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
	uint64_t end = now_ns() + 2 * NSEC_PER_SEC;
	char rec[2048];

	if (fd < 0)
		return;
	if (write(fd, "l", 1) < 0 || write(fd, "w", 1) < 0)
		(void)0;
	close(fd);
	while (kmsg >= 0 && now_ns() < end) {
		ssize_t n = read(kmsg, rec, sizeof(rec) - 1);
		char *msg;

		if (n <= 0) {
			sleep_ns(20 * NSEC_PER_MSEC);
			continue;
		}
		rec[n] = 0;
		msg = strchr(rec, ';');
		printf("# kernel: %s", msg ? msg + 1 : rec);
	}
}

static const char *const bad_kmsg[] = {
	"BUG:", "WARNING:", "Oops", "general protection", "soft lockup", "hung task",
	"UBSAN:", "KASAN:", "refcount_t:", "list_add corruption", "list_del corruption",
	"Kernel panic", "kernel BUG",
};

/* The one boot notice that matches, as tools/testvm knows too. */
#define BENIGN_KMSG "Speculative Return Stack Overflow: WARNING: See https://kernel.org/doc/"

static bool kmsg_check(int fd)
{
	char rec[2048];
	bool bad = false;

	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);

		if (n < 0 && errno == EPIPE)
			continue;	/* records lost to the ring's wrap: read on */
		if (n <= 0)
			return bad;
		rec[n] = 0;
		if (strstr(rec, BENIGN_KMSG))
			continue;
		/*
		 * Not a failure (tools/testvm does not fail on it either, and an
		 * overloaded emulated machine starves RCU's own thread), but worth
		 * seeing next to the ioctls: a CPU that stopped taking interrupts.
		 */
		if (!bad && strstr(rec, "rcu: INFO: ")) {
			char *msg = strchr(rec, ';');

			printf("# kernel (noted): %s", msg ? msg + 1 : rec);
		}
		for (unsigned int i = 0; i < ARRAY_SIZE(bad_kmsg); i++)
			if (strstr(rec, bad_kmsg[i]))
				bad = true;
		if (bad) {
			char *msg = strchr(rec, ';');

			printf("# kernel: %s", msg ? msg + 1 : rec);
		}
	}
}

static void *monitor(void *arg)
{
	int kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	uint64_t next_kick = 0, next_check = 0, rng = (uint64_t)(uintptr_t)arg;

	if (kmsg >= 0)
		lseek(kmsg, 0, SEEK_END);
	while (!atomic_load(&monitor_done)) {
		uint64_t now = now_ns();

		if (now >= next_kick) {
			for (int i = 0; i < nr_workers; i++)
				if (!atomic_load(&workers[i].done) && atomic_load(&workers[i].tid))
					syscall(SYS_tgkill, getpid(), atomic_load(&workers[i].tid),
						SIGUSR1);
			next_kick = now + KICK_MIN_NS +
				    splitmix(&rng) % (KICK_MAX_NS - KICK_MIN_NS);
		}
		if (now >= next_check) {
			for (int i = 0; i < nr_workers; i++) {
				uint64_t start = atomic_load(&workers[i].op_start);

				/* A start after @now is an ioctl made since: not a hang. */
				if (!start || start > now || now - start < HANG_NS)
					continue;
				printf("# thread %d: %s (cmd %#lx) on fd %d has not returned in "
				       "%llu s\n", i, atomic_load(&workers[i].op_name),
				       atomic_load(&workers[i].op_cmd),
				       atomic_load(&workers[i].op_fd),
				       (unsigned long long)(HANG_NS / NSEC_PER_SEC));
				for (int j = 0; j < nr_workers; j++)
					dump_kernel_stack(atomic_load(&workers[j].tid));
				dump_kernel_backtraces(kmsg);
				fuzz_fail("an ioctl hangs");
			}
			if (kmsg >= 0 && kmsg_check(kmsg)) {
				/* Let the rest of the report reach the log, then the ioctls. */
				sleep_ns(500 * NSEC_PER_MSEC);
				kmsg_check(kmsg);
				fuzz_fail("the kernel log reports a problem (above)");
			}
			next_check = now + 100 * NSEC_PER_MSEC;
		}
		sleep_ns(2 * NSEC_PER_MSEC);
	}
	if (kmsg >= 0) {
		if (kmsg_check(kmsg))
			fuzz_fail("the kernel log reports a problem (above)");
		close(kmsg);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Setting up, running and tearing down one fuzzing session
 */

static void setup_memory(void)
{
	reserve = mmap(NULL, RESERVE_SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TEST_ASSERT(reserve != MAP_FAILED, "reserving %llu MiB: %s", RESERVE_SIZE >> 20,
		    strerror(errno));
	arena = reserve + GUARD_SIZE;
	remap_zone = arena + ARENA_SIZE;
	TEST_ASSERT(mprotect(arena, ARENA_SIZE + REMAP_SIZE, PROT_READ | PROT_WRITE) == 0,
		    "mprotect: %s", strerror(errno));
	remap_memfd = memfd_create("fuzz_ioctl", MFD_CLOEXEC);
	TEST_ASSERT(remap_memfd >= 0 && ftruncate(remap_memfd, REMAP_SIZE) == 0, "memfd: %s",
		    strerror(errno));
}

static void setup_world(void)
{
	int kvm = open_kvm(), r;
	struct kvm_msr_list *l;

	memset(&w, 0, sizeof(w));
	atomic_store(&w.kvm, kvm);
	for (int i = 0; i < MAX_VMS; i++) {
		atomic_store(&w.vm[i].fd, -1);
		for (int j = 0; j < MAX_VCPUS; j++)
			atomic_store(&w.vm[i].vcpu[j].fd, -1);
	}
	for (int i = 0; i < MAX_EFDS; i++)
		atomic_store(&w.efd[i], eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
	for (int i = 0; i < MAX_MISC; i++)
		atomic_store(&w.misc[i], -1);
	r = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	TEST_ASSERT(r > 0, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	w.run_size = r;
	w.cpuid = kvm_get_supported_cpuid(kvm);
	l = kvm_get_msr_list(kvm, KVM_GET_MSR_INDEX_LIST);
	w.nr_msrs = l->nmsrs;
	w.msrs = malloc(l->nmsrs * sizeof(uint32_t) + 1);
	memcpy(w.msrs, l->indices, l->nmsrs * sizeof(uint32_t));
	free(l);
	l = kvm_get_msr_list(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST);
	w.nr_feature_msrs = l->nmsrs;
	w.feature_msrs = malloc(l->nmsrs * sizeof(uint32_t) + 1);
	memcpy(w.feature_msrs, l->indices, l->nmsrs * sizeof(uint32_t));
	free(l);
	nr_retired = 0;
}

static void teardown_world(void)
{
	for (int i = 0; i < MAX_VMS; i++) {
		close_slot(&w.vm[i].fd);
		for (int j = 0; j < MAX_VCPUS; j++) {
			close_slot(&w.vm[i].vcpu[j].fd);
			retire_run(atomic_exchange(&w.vm[i].vcpu[j].run, NULL));
		}
	}
	reclaim_runs(true);
	for (int i = 0; i < MAX_EFDS; i++)
		close_slot(&w.efd[i]);
	for (int i = 0; i < MAX_MISC; i++)
		close_slot(&w.misc[i]);
	close_slot(&w.kvm);
	free(w.cpuid);
	free(w.msrs);
	free(w.feature_msrs);
}

static void *worker(void *arg)
{
	struct ctx *c = arg;
	sigset_t usr1;

	self = c;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	atomic_store(&c->tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load(&stop_workers)) {
		const struct opdef *op;

		atomic_store(&c->epoch, atomic_load(&global_epoch));
		op = pick_op(c);
		if (!op)
			break;
		op->fn(c);
	}
	atomic_store(&c->epoch, UINT64_MAX);
	atomic_store(&c->done, true);
	return NULL;
}

static uint8_t *alloc_argbuf(void)
{
	uint8_t *p = mmap(NULL, ARGBUF_SIZE + PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap: %s", strerror(errno));
	TEST_ASSERT(mprotect(p + ARGBUF_SIZE, PAGE_SIZE, PROT_NONE) == 0, "mprotect");
	return p;
}

/**
 * fuzz_session() - fuzz with one thread per role for @seconds
 * @roles: the threads' roles
 * @n: how many
 * @seed: the session's seed; thread i uses a seed derived from it
 * @seconds: the budget
 */
static void fuzz_session(const enum role *roles, int n, uint64_t seed, unsigned int seconds)
{
	pthread_t mon;
	uint64_t end;
	sigset_t usr1;

	/* Only the workers take the kick; the main thread and the monitor never block it. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	install_signals();
	setup_memory();
	setup_world();
	memset(results, 0, sizeof(results));
	memset(exit_reasons, 0, sizeof(exit_reasons));
	nr_workers = n;
	atomic_store(&stop_workers, false);
	atomic_store(&monitor_done, false);
	for (int i = 0; i < n; i++) {
		struct ctx *c = &workers[i];

		memset(c, 0, sizeof(*c));
		c->idx = i;
		c->role = roles[i];
		c->rng = seed + 0x1000 * (i + 1);
		splitmix(&c->rng);
		c->arg = alloc_argbuf();
		atomic_store(&c->epoch, 0);
	}
	/* The world starts with a VM or two, so that the first operations have targets. */
	self = &workers[0];
	create_vm(&workers[0]);
	create_vm(&workers[0]);
	self = NULL;
	TEST_ASSERT(pthread_create(&mon, NULL, monitor, (void *)(uintptr_t)seed) == 0,
		    "pthread_create");
	for (int i = 0; i < n; i++)
		TEST_ASSERT(pthread_create(&workers[i].thread, NULL, worker, &workers[i]) == 0,
			    "pthread_create");
	end = now_ns() + seconds * NSEC_PER_SEC;
	while (now_ns() < end)
		sleep_ns(50 * NSEC_PER_MSEC);
	atomic_store(&stop_workers, true);
	for (int i = 0; i < n; i++)
		pthread_join(workers[i].thread, NULL);
	atomic_store(&monitor_done, true);
	pthread_join(mon, NULL);
	teardown_world();
}

static void print_summary(const char *what, unsigned int seconds)
{
	uint64_t ops = 0, runs = 0, exits = 0;
	char line[1024];
	int len = 0;

	for (int i = 0; i < nr_workers; i++) {
		ops += workers[i].ops;
		runs += workers[i].runs;
	}
	for (int i = 0; i <= 64; i++)
		exits += atomic_load(&exit_reasons[i]);
	test_log("%s: %" PRIu64 " ioctls (%" PRIu64 " KVM_RUN, %" PRIu64 " exits) in %u s", what,
		 ops, runs, exits, seconds);
	for (int i = 0; i <= 64; i++) {
		uint32_t n = atomic_load(&exit_reasons[i]);

		if (n && len < (int)sizeof(line) - 64)
			len += snprintf(line + len, sizeof(line) - len, " %s:%u",
					i < 64 ? exit_reason_str(i) : "other", n);
	}
	if (len)
		test_log("exits:%s", line);
	if (!cfg.verbose)
		return;
	for (unsigned int i = 0; i < NR_IOCS; i++)
		for (int k = 0; k < NR_FDKINDS; k++) {
			uint32_t ok = atomic_load(&results[i][k][0]);
			bool any = ok;

			len = snprintf(line, sizeof(line), "%-32s %-6s ok %u", iocs[i].name,
				       (const char *[]){ "system", "VM", "vCPU", "other" }[k], ok);
			for (int e = 1; e <= MAX_ERRNO_SEEN; e++) {
				uint32_t n = atomic_load(&results[i][k][e]);

				if (n && len < (int)sizeof(line) - 40) {
					len += snprintf(line + len, sizeof(line) - len, ", %s %u",
							e < MAX_ERRNO_SEEN ? strerrorname_np(e) :
							"internal", n);
					any = true;
				}
			}
			if (any)
				test_log("%s", line);
		}
}

/* After fuzzing, the hypervisor still runs a guest: real mode, one HLT. */
static void check_still_works(void)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	struct kvm_vcpu *vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);

	*(uint8_t *)gpa2hva(vm, GUEST_CODE16_GPA) = 0xf4;
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	vm_free(vm);
}

static unsigned int budget(unsigned int dflt)
{
	unsigned int s = cfg.seconds ? cfg.seconds : dflt;

	/* The harness's limit is for the default; a longer budget brings its own. */
	alarm(s + 300);
	return s;
}

static uint64_t case_seed(const char *name)
{
	uint64_t h = cfg.seed;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
	return h;
}

static void start_case(const char *name)
{
	read_config();
	test_log("%s: seed %" PRIu64 " (FUZZ_SEED=%" PRIu64 " %s reproduces it)", name, cfg.seed,
		 cfg.seed, name);
	kvm_check_cap(KVM_CAP_USER_MEMORY);	/* skips without /dev/kvm */
}

/* Everything from one thread: the sequence follows from the seed. */
TEST_TIMEOUT(one_thread, 300)
{
	static const enum role roles[] = { ROLE_ALL };
	unsigned int s;

	start_case("one_thread");
	s = budget(6);
	fuzz_session(roles, 1, case_seed("one_thread"), s);
	print_summary("one_thread", s);
	check_still_works();
}

/*
 * One thread makes and destroys VMs, vCPUs, memslots and the memory behind
 * them, two run vCPUs, two make any other ioctl, on the same fds at once.
 */
TEST_TIMEOUT(threads, 300)
{
	static const enum role roles[] = {
		ROLE_LIFECYCLE, ROLE_RUNNER, ROLE_RUNNER, ROLE_IOCTL, ROLE_IOCTL,
	};
	unsigned int s;

	start_case("threads");
	s = budget(10);
	fuzz_session(roles, ARRAY_SIZE(roles), case_seed("threads"), s);
	print_summary("threads", s);
	check_still_works();
}

/*
 * The multi-threaded session in a child process killed at a random moment,
 * over and over: every teardown path from wherever the ioctls are.
 */
TEST_TIMEOUT(killed_anywhere, 300)
{
	static const enum role roles[] = {
		ROLE_LIFECYCLE, ROLE_RUNNER, ROLE_RUNNER, ROLE_IOCTL,
	};
	uint64_t seed, end, rng;
	unsigned int s, rounds = 0;

	start_case("killed_anywhere");
	s = budget(6);
	seed = case_seed("killed_anywhere");
	rng = seed;
	end = now_ns() + s * NSEC_PER_SEC;
	while (now_ns() < end) {
		uint64_t delay = 20 * NSEC_PER_MSEC + splitmix(&rng) % NSEC_PER_SEC, t;
		int status;
		pid_t pid;

		fflush(stdout);
		pid = fork();
		TEST_ASSERT(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			fuzz_session(roles, ARRAY_SIZE(roles), seed + rounds, 3600);
			_exit(0);
		}
		sleep_ns(delay);
		kill(pid, SIGKILL);
		/* A process that will not die is stuck in the kernel. */
		for (t = now_ns(); waitpid(pid, &status, WNOHANG) == 0; sleep_ns(NSEC_PER_MSEC)) {
			if (now_ns() - t > HANG_NS) {
				char path[64];

				snprintf(path, sizeof(path), "cat /proc/%d/task/*/stack", pid);
				printf("# round %u: the killed child %d is still there after "
				       "%llu s; its kernel stacks:\n", rounds, pid,
				       (unsigned long long)(HANG_NS / NSEC_PER_SEC));
				fflush(stdout);
				if (system(path) < 0)
					(void)0;
				fuzz_fail("a killed process does not exit");
			}
		}
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "round %u: the child ended by itself (status %#x)", rounds, status);
		rounds++;
	}
	test_log("killed_anywhere: %u processes killed at random moments in %u s", rounds, s);
	check_still_works();
}
