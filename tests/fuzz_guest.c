// SPDX-License-Identifier: GPL-2.0
/*
 * A guest that executes random bytes.  For every seed the run must end in a
 * defined way within a bounded number of exits: a guest exception reported
 * by the library's IDT, a shutdown, an emulation failure, or still running
 * when the budget is spent.  Port I/O and MMIO exits are answered and the
 * guest goes on.  The host must survive every seed (the test machine's
 * kernel log is checked after the run).
 *
 * FUZZ_SEEDS=N in the environment runs more seeds (default 64).
 */
#include <signal.h>
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
