// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetimes under stress: a process running many vCPUs of several VMs killed
 * at any moment, hundreds of times; KVM_CREATE_VCPU failing at the fd limit,
 * alone and while interrupts are delivered to every vCPU of the VM; and
 * signals that must end KVM_RUN on every vCPU of a big VM, one at a time and
 * all at once.  Nothing may leak or crash: the test machine's kernel log is
 * checked after the run, and minikvm is unloaded after it in make check.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apic.h"

#define NSEC_PER_SEC 1000000000ULL
/* How long a vCPU may take to answer (emulated machines are slow): a hang, not a delay. */
#define ANSWER_NS (10 * NSEC_PER_SEC)

/* MSI address and data (SDM vol. 3 10.11): physical destination, delivery mode, vector. */
#define MSI_ADDR(dest)		(0xfee00000u | (dest) << 12)
#define MSI_DATA_FIXED(vec)	(vec)
#define MSI_DATA_NMI		(4u << 8)
#define BROADCAST		0xff

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, us % 1000000 * 1000 };

	nanosleep(&ts, NULL);
}

/* xorshift64: random enough for the kill delays. */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static void rnd_seed(void)
{
	rnd_state = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
}

/* Wait until a counter differs from @old, at most ANSWER_NS; returns whether it did. */
static bool wait_change(volatile _Atomic uint64_t *p, uint64_t old)
{
	uint64_t end = now_ns() + ANSWER_NS;

	while (atomic_load(p) == old) {
		if (now_ns() > end)
			return false;
		sleep_us(100);
	}
	return true;
}

static bool wait_guest_change(volatile uint64_t *p, uint64_t old)
{
	uint64_t end = now_ns() + ANSWER_NS;

	while (*p == old) {
		if (now_ns() > end)
			return false;
		sleep_us(100);
	}
	return true;
}

/*
 * kill_many_vms_many_vcpus: a child process runs KILL_VMS VMs of KILL_VCPUS
 * vCPUs, one thread each, and is killed with SIGKILL after a random delay.
 * The vCPUs do different things so that the kill finds them in different
 * places: spinning in the guest, halted (in the kernel with an in-kernel
 * irqchip, in and out of KVM_RUN without), in and out of KVM_RUN for port
 * I/O, and sending IPIs to the others (or exiting for MMIO without irqchip).
 */
#define KILL_VMS	3
#define KILL_VCPUS	4
#define KILL_ROUNDS	300
#define KILL_MAX_DELAY_US 20000
#define KILL_VEC	0x50
#define KILL_PORT	0x500
#define KILL_MMIO_GPA	0xd0000000ULL	/* in no memslot */

enum kill_role { ROLE_SPIN, ROLE_HLT, ROLE_PIO, ROLE_IPI_OR_MMIO, NR_ROLES };

static void kill_irq_handler(struct ex_regs *regs)
{
	(void)regs;
	xapic_write(APIC_EOI, 0);
}

static void guest_kill_role(uint64_t role, uint64_t irqchip)
{
	if (irqchip) {
		xapic_enable();
		asm volatile("sti");
	}
	switch (role) {
	case ROLE_SPIN:
		for (;;)
			asm volatile("pause");
	case ROLE_HLT:
		for (;;)
			guest_hlt();
	case ROLE_PIO:
		for (uint8_t i = 0;; i++)
			guest_outb(KILL_PORT, i);
	default:
		for (;;) {
			if (irqchip)
				xapic_icr(0, ICR_ALL_BUT_SELF | ICR_FIXED | KILL_VEC);
			else
				*(volatile uint32_t *)KILL_MMIO_GPA = 1;
			for (int i = 0; i < 1000; i++)
				asm volatile("pause");
		}
	}
}

static atomic_int kill_threads_running;

/* Runs until the process is killed; any other end of KVM_RUN fails the child. */
static void *kill_vcpu_thread(void *arg)
{
	struct kvm_vcpu *vcpu = arg;
	struct kvm_run *run = vcpu->run;
	struct ucall uc;

	atomic_fetch_add(&kill_threads_running, 1);
	for (;;) {
		vcpu_run(vcpu);
		if (run->exit_reason == KVM_EXIT_HLT ||
		    (run->exit_reason == KVM_EXIT_IO && run->io.port == KILL_PORT) ||
		    (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == KILL_MMIO_GPA))
			continue;
		if (get_ucall(vcpu, &uc) == UCALL_ABORT || uc.cmd == UCALL_UNHANDLED)
			vcpu_run_ucall_report(vcpu, &uc);
		vcpu_dump(vcpu);
		test_fail(__FILE__, __LINE__, "an expected exit", "vCPU %u: exit %u (%s)",
			  vcpu->id, run->exit_reason, exit_reason_str(run->exit_reason));
	}
	return NULL;
}

/* The child: set everything up, say so on @ready_fd, and wait for SIGKILL. */
static void __attribute__((noreturn)) kill_child(int ready_fd)
{
	pthread_t threads[KILL_VMS * KILL_VCPUS];
	int n = 0;

	/* Never outlive the test case, even when it fails. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int v = 0; v < KILL_VMS; v++) {
		/* VMs with and without an in-kernel irqchip tear down differently. */
		bool irqchip = v != 1;
		struct kvm_vm *vm = irqchip ? vm_create_irqchip() : vm_create(VM_MODE_LONG64);

		vm_install_exception_handler(vm, KILL_VEC, kill_irq_handler);
		for (int i = 0; i < KILL_VCPUS; i++) {
			struct kvm_vcpu *vcpu = vm_vcpu_add(vm, i, (void (*)(void))guest_kill_role);

			vcpu_args_set(vcpu, 2, (uint64_t)(i + v) % NR_ROLES, (uint64_t)irqchip);
			/* APs of an in-kernel irqchip wait for INIT; these run at once. */
			if (irqchip && i)
				vcpu_set_mp_state(vcpu, KVM_MP_STATE_RUNNABLE);
			TEST_ASSERT(!pthread_create(&threads[n++], NULL, kill_vcpu_thread, vcpu),
				    "pthread_create");
		}
	}
	while (atomic_load(&kill_threads_running) < n)
		sleep_us(100);
	TEST_ASSERT(write(ready_fd, "r", 1) == 1, "write");
	for (;;)
		pause();
}

static void guest_sync_once(void)
{
	GUEST_SYNC(1);
}

/*
 * Killed during setup or while every vCPU runs, alternately.  In the setup
 * rounds the delay counts from fork and spans the time the last full setup
 * took, so that the kill lands anywhere in KVM_CREATE_VM, KVM_CREATE_IRQCHIP,
 * the memslot, KVM_CREATE_VCPU and the vCPU ioctls, or in the first KVM_RUN;
 * in the others it counts from when all the vCPU threads run.
 */
TEST_TIMEOUT(kill_many_vms_many_vcpus, 600)
{
	int killed_running = 0, killed_in_setup = 0;
	uint64_t start = now_ns(), setup_us = KILL_MAX_DELAY_US;
	struct kvm_vm *vm;
	struct ucall uc;

	rnd_seed();
	for (int round = 0; round < KILL_ROUNDS; round++) {
		bool during_run = round & 1;
		uint64_t forked = now_ns();
		int status, pipefd[2];
		pid_t pid;
		char c;

		TEST_ASSERT(pipe(pipefd) == 0, "pipe");
		pid = fork();
		TEST_ASSERT(pid >= 0, "fork");
		if (pid == 0) {
			close(pipefd[0]);
			kill_child(pipefd[1]);
		}
		close(pipefd[1]);
		/* EOF instead of "r": the child died by itself, waitpid tells how. */
		if (during_run && read(pipefd[0], &c, 1) == 1) {
			killed_running++;
			setup_us = (now_ns() - forked) / 1000;
		}
		sleep_us(rnd() % ((during_run ? KILL_MAX_DELAY_US : setup_us) + 1));
		kill(pid, SIGKILL);
		TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "round %d: the child ended by itself (status %#x)", round, status);
		/* No "r" left in the pipe: the kill came before every vCPU ran. */
		if (!during_run && read(pipefd[0], &c, 1) != 1)
			killed_in_setup++;
		close(pipefd[0]);
	}
	test_log("%d rounds in %" PRIu64 " ms: %d killed in setup (the last took %" PRIu64
		 " ms), %d while all vCPUs ran", KILL_ROUNDS, (now_ns() - start) / 1000000,
		 killed_in_setup, setup_us / 1000, killed_running);
	/* The hypervisor still works. */
	vm = vm_create(VM_MODE_LONG64);
	vm_vcpu_add(vm, 0, guest_sync_once);
	TEST_ASSERT_EQ(vcpu_run_ucall(vm->vcpus[0], &uc), UCALL_SYNC);
	vm_free(vm);
}

/*
 * RLIMIT_NOFILE lowered to the lowest free fd: every fd allocation fails with
 * EMFILE, even with fds open above it.
 */
static void fd_limit_lower(struct rlimit *saved)
{
	struct rlimit r;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	TEST_ASSERT(fd >= 0, "open /dev/null: %s", strerror(errno));
	close(fd);
	TEST_ASSERT(getrlimit(RLIMIT_NOFILE, saved) == 0, "getrlimit: %s", strerror(errno));
	r = *saved;
	r.rlim_cur = fd;
	TEST_ASSERT(setrlimit(RLIMIT_NOFILE, &r) == 0, "setrlimit: %s", strerror(errno));
	TEST_ASSERT_ERRNO(open("/dev/null", O_RDONLY | O_CLOEXEC), EMFILE);
}

static void fd_limit_restore(const struct rlimit *saved)
{
	TEST_ASSERT(setrlimit(RLIMIT_NOFILE, saved) == 0, "setrlimit: %s", strerror(errno));
}

static void guest_report(uint64_t v)
{
	GUEST_SYNC_ARGS(1, v, 0, 0);
}

/*
 * KVM_CREATE_VCPU fails at its last step, the vCPU's fd, with EMFILE: it must
 * undo everything.  More failures than the VM may have vCPUs show that each
 * one gives its place back (else EINVAL); the id stays free (else EEXIST);
 * and the VM runs its vCPUs afterwards.  First for the VM's first vCPU, then
 * with a vCPU in the VM (where KVM fails much faster, so the long run is there).
 */
TEST(create_vcpu_at_fd_limit_emfile)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int max = kvm_check_cap(KVM_CAP_MAX_VCPUS);
	struct kvm_vcpu *vcpu[2];
	struct rlimit saved;
	struct ucall uc;

	TEST_ASSERT(max > 0, "KVM_CAP_MAX_VCPUS %d", max);
	fd_limit_lower(&saved);
	for (int i = 0; i < 16; i++)
		TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 0), EMFILE);
	fd_limit_restore(&saved);
	vcpu[0] = vm_vcpu_add(vm, 0, (void (*)(void))guest_report);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 0), EEXIST);

	fd_limit_lower(&saved);
	for (int i = 0; i <= max; i++)
		TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 1), EMFILE);
	/* An id in use is refused before the fd is made. */
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 0), EEXIST);
	fd_limit_restore(&saved);
	vcpu[1] = vm_vcpu_add(vm, 1, (void (*)(void))guest_report);
	TEST_ASSERT_ERRNO(ioctl(vm->fd, KVM_CREATE_VCPU, 1), EEXIST);

	for (int i = 0; i < 2; i++) {
		vcpu_args_set(vcpu[i], 1, 0x100 + i);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu[i], &uc), UCALL_SYNC);
		TEST_ASSERT_EQ(uc.args[1], 0x100 + i);
		TEST_ASSERT_EQ(vcpu_run_ucall(vcpu[i], &uc), UCALL_DONE);
	}
	vm_free(vm);
}

/*
 * create_vcpu_emfile_races_irq_delivery: vCPUs 0 and 1 halt with interrupts
 * on while one thread makes KVM_CREATE_VCPU of id 2 fail at the fd limit over
 * and over, and another delivers interrupts to every APIC of the VM: NMI and
 * fixed MSI broadcasts, and an IOAPIC pin routed to all.  A vCPU whose
 * creation fails must never be seen by delivery, which counts exactly the
 * two live APICs every time (a half-made vCPU that delivery reached would
 * be used after it is freed).
 */
#define RACE_VCPUS	3	/* two live, the third created after the race */
#define RACE_ID		2
#define RACE_VEC	0x60
#define RACE_PIN	16	/* IOAPIC only, no 8259 input */
#define RACE_NS		(5 * NSEC_PER_SEC)

static volatile uint64_t race_ready[RACE_VCPUS], race_irqs[RACE_VCPUS], race_nmis[RACE_VCPUS];
static volatile uint64_t race_stop;

static void race_irq_handler(struct ex_regs *regs)
{
	(void)regs;
	race_irqs[xapic_id()]++;
	xapic_write(APIC_EOI, 0);
}

static void race_nmi_handler(struct ex_regs *regs)
{
	(void)regs;
	race_nmis[xapic_id()]++;
}

static void guest_race(void)
{
	uint32_t id = xapic_id();

	/* Edge, fixed, physical destination 0xff: every APIC. */
	if (id == 0)
		ioapic_set_rte(RACE_PIN, RACE_VEC | (uint64_t)BROADCAST << 56);
	xapic_enable();
	race_ready[id] = 1;
	/* STI's shadow covers the HLT: no wake-up is lost between the test and the halt. */
	asm volatile("cli");
	while (!race_stop)
		asm volatile("sti; hlt; cli");
	asm volatile("sti");
}

struct race {
	struct kvm_vm *vm;
	atomic_int stop;
	uint64_t creates, deliveries, wrong;
	int live, first_wrong;
};

struct race_vcpu {
	pthread_t thread;
	struct kvm_vcpu *vcpu;
	atomic_int done;
};

static void *race_vcpu_thread(void *arg)
{
	struct race_vcpu *t = arg;

	vcpu_run_until_done(t->vcpu);
	atomic_store(&t->done, 1);
	return NULL;
}

static int signal_msi(struct kvm_vm *vm, uint32_t addr, uint32_t data)
{
	struct kvm_msi msi = { .address_lo = addr, .data = data };

	return ioctl(vm->fd, KVM_SIGNAL_MSI, &msi);
}

/* One interrupt to every APIC, in turn each way; returns how many APICs it reached. */
static int race_deliver_one(struct race *r, uint64_t n)
{
	int reached;

	switch (n % 3) {
	case 0:
		return signal_msi(r->vm, MSI_ADDR(BROADCAST), MSI_DATA_NMI);
	case 1:
		return signal_msi(r->vm, MSI_ADDR(BROADCAST), MSI_DATA_FIXED(RACE_VEC));
	default:
		reached = vm_irq_line(r->vm, RACE_PIN, 1);
		TEST_ASSERT_EQ(vm_irq_line(r->vm, RACE_PIN, 0), 1);
		return reached;
	}
}

static void *race_create_thread(void *arg)
{
	struct race *r = arg;
	uint64_t end = now_ns() + RACE_NS;

	while (now_ns() < end) {
		TEST_ASSERT_ERRNO(ioctl(r->vm->fd, KVM_CREATE_VCPU, RACE_ID), EMFILE);
		r->creates++;
	}
	atomic_store(&r->stop, 1);
	return NULL;
}

static void *race_deliver_thread(void *arg)
{
	struct race *r = arg;

	/*
	 * A wrong count is counted, not asserted at once: the race goes on for
	 * its whole time, so that a half-made vCPU that delivery reached gets
	 * every chance to be used after it is freed (which a debug kernel would report).
	 */
	while (!atomic_load(&r->stop)) {
		int reached = race_deliver_one(r, r->deliveries);

		if (reached != r->live && !r->wrong++)
			r->first_wrong = reached;
		r->deliveries++;
	}
	return NULL;
}

static volatile uint64_t *race_hva(struct kvm_vm *vm, volatile uint64_t *g)
{
	return gva2hva(vm, (uint64_t)g);
}

static void race_start_vcpu(struct kvm_vm *vm, struct race_vcpu *t, uint32_t id)
{
	t->vcpu = vm_vcpu_add(vm, id, guest_race);
	if (id)
		vcpu_set_mp_state(t->vcpu, KVM_MP_STATE_RUNNABLE);
	TEST_ASSERT(pthread_create(&t->thread, NULL, race_vcpu_thread, t) == 0, "pthread_create");
	TEST_ASSERT(wait_guest_change(race_hva(vm, &race_ready[id]), 0),
		    "vCPU %u did not start", id);
}

TEST(create_vcpu_emfile_races_irq_delivery)
{
	struct race_vcpu vcpus[RACE_VCPUS] = {};
	struct race r = { .vm = vm_create_irqchip() };
	pthread_t creator, deliverer;
	struct rlimit saved;
	uint64_t end;

	vm_install_exception_handler(r.vm, RACE_VEC, race_irq_handler);
	vm_install_exception_handler(r.vm, 2, race_nmi_handler);
	for (int i = 0; i < RACE_ID; i++)
		race_start_vcpu(r.vm, &vcpus[i], i);
	r.live = RACE_ID;

	/* Only the creating thread allocates fds from here on. */
	fd_limit_lower(&saved);
	TEST_ASSERT(pthread_create(&deliverer, NULL, race_deliver_thread, &r) == 0, "pthread");
	TEST_ASSERT(pthread_create(&creator, NULL, race_create_thread, &r) == 0, "pthread");
	pthread_join(creator, NULL);
	pthread_join(deliverer, NULL);
	fd_limit_restore(&saved);
	test_log("%" PRIu64 " failed KVM_CREATE_VCPU, %" PRIu64 " deliveries", r.creates,
		 r.deliveries);
	TEST_ASSERT(r.creates > 0 && r.deliveries > 0, "the race did not run");
	TEST_ASSERT(!r.wrong, "%" PRIu64 " deliveries reached a vCPU whose creation failed "
		    "(the first reached %d APICs, %d live)", r.wrong, r.first_wrong, r.live);

	/* Nothing was left behind: the id is free, and a vCPU made with it gets interrupts. */
	race_start_vcpu(r.vm, &vcpus[RACE_ID], RACE_ID);
	r.live = RACE_VCPUS;
	for (int i = 0; i < 3; i++)
		TEST_ASSERT_EQ(race_deliver_one(&r, i), RACE_VCPUS);
	for (int i = 0; i < RACE_VCPUS; i++) {
		TEST_ASSERT(wait_guest_change(race_hva(r.vm, &race_nmis[i]), 0),
			    "vCPU %d got no NMI", i);
		TEST_ASSERT(wait_guest_change(race_hva(r.vm, &race_irqs[i]), 0),
			    "vCPU %d got no interrupt", i);
	}

	/* Stop: every vCPU returns once an interrupt wakes it after race_stop is set. */
	*race_hva(r.vm, &race_stop) = 1;
	end = now_ns() + ANSWER_NS;
	for (int i = 0; i < RACE_VCPUS; i++) {
		while (!atomic_load(&vcpus[i].done)) {
			TEST_ASSERT(now_ns() < end, "vCPU %d did not stop", i);
			signal_msi(r.vm, MSI_ADDR(BROADCAST), MSI_DATA_FIXED(RACE_VEC));
			sleep_us(1000);
		}
		pthread_join(vcpus[i].thread, NULL);
	}
	vm_free(r.vm);
}

/*
 * signal_ends_run_big_vm: KICK_VCPUS vCPUs and a 1 GiB memslot, of which
 * the guest touches one page per vCPU.  Even vCPUs spin in the guest, odd
 * ones halt with interrupts off (in the kernel, with the in-kernel irqchip).
 * SIGUSR1 is sent to each vCPU thread in turn and then to all at once, many
 * times: every signal must end KVM_RUN with EINTR and KVM_EXIT_INTR, and the
 * vCPU must enter the guest again afterwards.  No time is asserted but a
 * generous limit per kick; only a lost kick or a vCPU that never comes back
 * fails.
 */
#define KICK_VCPUS	64
#define KICK_ROUNDS	10
#define KICK_ALL_ROUNDS	50
#define BIG_GPA		(1ULL << 30)
#define BIG_SIZE	(1ULL << 30)

static void guest_kick(uint64_t id)
{
	volatile uint64_t *mine = (volatile uint64_t *)(BIG_GPA + id * (BIG_SIZE / KICK_VCPUS));

	if (id & 1) {
		*mine = 1;
		for (;;)
			asm volatile("cli; hlt");
	}
	for (;;) {
		(*mine)++;
		asm volatile("pause");
	}
}

struct kicked {
	pthread_t thread;
	struct kvm_vcpu *vcpu;
	_Atomic uint64_t eintr;
	atomic_int stop;
};

static void on_sigusr1(int sig)
{
	(void)sig;
}

static void *kick_thread(void *arg)
{
	struct kicked *k = arg;
	struct kvm_run *run = k->vcpu->run;
	struct {
		struct kvm_signal_mask hdr;
		uint64_t set;
	} mask = { .hdr.len = 8 };
	struct timespec zero = { 0, 0 };
	sigset_t set, usr1;

	/*
	 * SIGUSR1 is blocked in this thread (inherited) but not inside KVM_RUN:
	 * a kick that comes between two KVM_RUNs stays pending and ends the
	 * next one, so none is lost however the thread is caught.
	 */
	pthread_sigmask(SIG_BLOCK, NULL, &set);
	sigdelset(&set, SIGUSR1);
	memcpy(&mask.set, &set, sizeof(mask.set));	/* the kernel's sigset: 64 bits */
	vcpu_ioctl(k->vcpu, KVM_SET_SIGNAL_MASK, &mask, "KVM_SET_SIGNAL_MASK");
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	for (;;) {
		int r = __vcpu_run(k->vcpu), e = errno;

		if (r != -1 || e != EINTR) {
			vcpu_dump(k->vcpu);
			test_fail(__FILE__, __LINE__, "KVM_RUN ends only by a signal",
				  "vCPU %u: KVM_RUN returned %d (%s), exit %u (%s)", k->vcpu->id,
				  r, r ? strerror(e) : "no error", run->exit_reason,
				  exit_reason_str(run->exit_reason));
		}
		TEST_ASSERT_EQ(run->exit_reason, KVM_EXIT_INTR);
		/* As in KVM, the thread's mask is back on return: the kick is pending again. */
		TEST_ASSERT_EQ(sigtimedwait(&usr1, NULL, &zero), SIGUSR1);
		atomic_fetch_add(&k->eintr, 1);
		if (atomic_load(&k->stop))
			return NULL;
	}
}

static volatile uint64_t *kick_page(struct kvm_vm *vm, int id)
{
	return gpa2hva(vm, BIG_GPA + id * (BIG_SIZE / KICK_VCPUS));
}

/* The spinning vCPUs are back in the guest: their counters move again. */
static void kick_check_spinning(struct kvm_vm *vm)
{
	for (int i = 0; i < KICK_VCPUS; i += 2) {
		volatile uint64_t *p = kick_page(vm, i);

		TEST_ASSERT(wait_guest_change(p, *p), "vCPU %d does not run its guest any more", i);
	}
}

TEST_TIMEOUT(signal_ends_run_big_vm, 600)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	struct kicked k[KICK_VCPUS] = {};
	struct kvm_vm *vm = vm_create_irqchip();
	uint64_t start, sent = 0, got = 0, slowest = 0, t;
	sigset_t usr1;

	vm_add_memslot(vm, 1, 0, BIG_GPA, BIG_SIZE);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int i = 0; i < KICK_VCPUS; i++) {
		k[i].vcpu = vm_vcpu_add(vm, i, (void (*)(void))guest_kick);
		vcpu_args_set(k[i].vcpu, 1, (uint64_t)i);
		if (i)
			vcpu_set_mp_state(k[i].vcpu, KVM_MP_STATE_RUNNABLE);
		TEST_ASSERT(pthread_create(&k[i].thread, NULL, kick_thread, &k[i]) == 0,
			    "pthread_create");
	}
	for (int i = 0; i < KICK_VCPUS; i++)
		TEST_ASSERT(wait_guest_change(kick_page(vm, i), 0), "vCPU %d did not start", i);

	start = now_ns();
	for (int round = 0; round < KICK_ROUNDS; round++) {
		for (int i = 0; i < KICK_VCPUS; i++) {
			uint64_t old = atomic_load(&k[i].eintr);

			t = now_ns();
			TEST_ASSERT(pthread_kill(k[i].thread, SIGUSR1) == 0, "pthread_kill");
			sent++;
			TEST_ASSERT(wait_change(&k[i].eintr, old),
				    "round %d: vCPU %d is still in KVM_RUN 10 s after a signal",
				    round, i);
			t = now_ns() - t;
			slowest = t > slowest ? t : slowest;
		}
	}
	kick_check_spinning(vm);
	test_log("%" PRIu64 " kicks one by one in %" PRIu64 " ms, slowest %" PRIu64 " ms", sent,
		 (now_ns() - start) / 1000000, slowest / 1000000);

	start = now_ns();
	for (int round = 0; round < KICK_ALL_ROUNDS; round++) {
		uint64_t old[KICK_VCPUS];

		for (int i = 0; i < KICK_VCPUS; i++)
			old[i] = atomic_load(&k[i].eintr);
		for (int i = 0; i < KICK_VCPUS; i++)
			TEST_ASSERT(pthread_kill(k[i].thread, SIGUSR1) == 0, "pthread_kill");
		sent += KICK_VCPUS;
		for (int i = 0; i < KICK_VCPUS; i++)
			TEST_ASSERT(wait_change(&k[i].eintr, old[i]),
				    "round %d: vCPU %d still in KVM_RUN 10 s after a signal to all",
				    round, i);
	}
	kick_check_spinning(vm);
	test_log("%d kicks of all %d vCPUs in %" PRIu64 " ms", KICK_ALL_ROUNDS, KICK_VCPUS,
		 (now_ns() - start) / 1000000);

	for (int i = 0; i < KICK_VCPUS; i++) {
		uint64_t old = atomic_load(&k[i].eintr);

		atomic_store(&k[i].stop, 1);
		pthread_kill(k[i].thread, SIGUSR1);
		sent++;
		TEST_ASSERT(wait_change(&k[i].eintr, old), "vCPU %d did not stop", i);
		pthread_join(k[i].thread, NULL);
	}
	/* One EINTR per signal: none lost, none made up. */
	for (int i = 0; i < KICK_VCPUS; i++)
		got += atomic_load(&k[i].eintr);
	TEST_ASSERT_EQ(got, sent);
	vm_free(vm);
}
