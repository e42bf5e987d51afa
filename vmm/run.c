// SPDX-License-Identifier: GPL-2.0
/*
 * minikvm run: build a PC-like machine on the in-kernel irqchip and boot a
 * Linux bzImage on it. The main thread sets everything up, starts one
 * thread per vCPU and the I/O thread, then waits for the end: a guest
 * power-off or reboot, a fatal vCPU error, Ctrl-A x, or a signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "virtio.h"

struct vmm vm;
pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;

static int exit_pipe[2] = { -1, -1 };
static int exit_status;
static int exiting;

/*
 * The threads wait for the seccomp filter before they touch the guest, and
 * the filter waits for the threads: a thread's start in the C library
 * (rseq, the robust futex list) must be over before it is confined.
 */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t start_cond = PTHREAD_COND_INITIALIZER;
static int arrived;
static bool started;
/* MINIKVM_SECCOMP_TEST: the thread ("main", "vcpu" or "io") that breaks the filter. */
static const char *seccomp_test;

void vmm_die(const char *fmt, ...)
{
	va_list ap;

	term_restore();
	fputs("minikvm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/**
 * gpa_to_hva() - where a guest-physical range is in the VMM
 * @gpa: start
 * @len: length (the whole range must be RAM, in one block)
 *
 * Return: the pointer, or NULL when the range is not all RAM.
 */
void *gpa_to_hva(uint64_t gpa, uint64_t len)
{
	uint64_t high = vm.ram_size - vm.ram_below_4g;

	if (gpa < vm.ram_below_4g && len <= vm.ram_below_4g - gpa)
		return vm.ram + gpa;
	if (gpa >= (1ULL << 32) && gpa - (1ULL << 32) < high && len <= high - (gpa - (1ULL << 32)))
		return vm.ram + vm.ram_below_4g + (gpa - (1ULL << 32));
	return NULL;
}

/**
 * vmm_request_exit() - end the run; the first caller's status wins
 * @status: the process's exit status
 *
 * Async-signal-safe.
 */
void vmm_request_exit(int status)
{
	char c = 0;

	/* Atomic: two threads (or a thread and a signal) may end the run at once. */
	if (__atomic_exchange_n(&exiting, 1, __ATOMIC_SEQ_CST))
		return;
	exit_status = status;
	if (write(exit_pipe[1], &c, 1) < 0)
		_exit(status);
}

/**
 * vmm_exiting() - whether the run is ending
 *
 * Return: true once vmm_request_exit() was called.
 */
bool vmm_exiting(void)
{
	return __atomic_load_n(&exiting, __ATOMIC_SEQ_CST);
}

static void on_signal(int sig)
{
	static const char msg[] = "\r\nminikvm: terminating on a signal\n";
	ssize_t unused = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)unused;
	(void)sig;
	vmm_request_exit(0);
}

static uint64_t parse_size(const char *s)
{
	unsigned int shift = 0;
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (end == s || *s == '-' || errno)
		vmm_die("bad size '%s' (use e.g. 512M or 2G)", s);
	switch (*end) {
	case 'G': case 'g': shift = 30; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'K': case 'k': shift = 10; end++; break;
	}
	if (*end || !v || v > (~0ULL >> shift))
		vmm_die("bad size '%s' (use e.g. 512M or 2G)", s);
	v <<= shift;
	if (v & 0xfff)
		vmm_die("--mem %s is not a whole number of 4 KiB pages", s);
	return v;
}

static void need_cap(int kvm, long cap, const char *name)
{
	if (ioctl(kvm, KVM_CHECK_EXTENSION, cap) <= 0)
		vmm_die("/dev/kvm lacks the capability KVM_CAP_%s", name);
}

/* Whether the group database lists this process's user in @g. */
static bool listed_in(const struct group *g)
{
	struct passwd *pw = getpwuid(getuid());

	for (char **m = g->gr_mem; pw && *m; m++)
		if (!strcmp(*m, pw->pw_name))
			return true;
	return false;
}

/* Say who may open /dev/kvm: its group, if it gives that group read and write. */
static void __attribute__((noreturn)) no_kvm_permission(void)
{
	struct stat st;
	struct group *g;

	if (stat("/dev/kvm", &st))
		vmm_die("no permission to open /dev/kvm (be root or in group kvm)");
	if ((st.st_mode & (S_IRGRP | S_IWGRP)) != (S_IRGRP | S_IWGRP))
		vmm_die("no permission to open /dev/kvm: its mode %04o lets only its owner in; "
			"most systems give it to group kvm (chgrp kvm /dev/kvm; chmod 660 /dev/kvm)",
			st.st_mode & 07777);
	g = getgrgid(st.st_gid);
	if (g && listed_in(g))
		vmm_die("no permission to open /dev/kvm: this user was added to group %s, but "
			"this session does not have it yet (log in again, or newgrp %s)",
			g->gr_name, g->gr_name);
	if (g)
		vmm_die("no permission to open /dev/kvm (be root or in group %s, which owns it)",
			g->gr_name);
	vmm_die("no permission to open /dev/kvm (be root or in group %u, which owns it)",
		(unsigned int)st.st_gid);
}

static int open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		vmm_die("no /dev/kvm: load kvm_amd, kvm_intel or minikvm");
	if (fd < 0 && errno == EACCES)
		no_kvm_permission();
	if (fd < 0 && errno == EPERM)
		vmm_die("cannot open /dev/kvm: %s (not its file mode: a container's device rules "
			"or a security module refuse it)", strerror(errno));
	if (fd < 0)
		vmm_die("cannot open /dev/kvm: %s", strerror(errno));
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		vmm_die("/dev/kvm speaks API %d, not %d", ioctl(fd, KVM_GET_API_VERSION, 0),
			KVM_API_VERSION);
	need_cap(fd, KVM_CAP_USER_MEMORY, "USER_MEMORY");
	need_cap(fd, KVM_CAP_IRQCHIP, "IRQCHIP");
	need_cap(fd, KVM_CAP_PIT2, "PIT2");
	need_cap(fd, KVM_CAP_EXT_CPUID, "EXT_CPUID");
	need_cap(fd, KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING");
	need_cap(fd, KVM_CAP_IRQFD, "IRQFD");
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: minikvm run --kernel bzImage [options]\n\n"
		"  --kernel FILE        the Linux bzImage to boot\n"
		"  --initrd FILE        an initramfs\n"
		"  --cmdline STR        the kernel command line (default \"console=ttyS0\")\n"
		"  --mem SIZE           guest RAM, e.g. 512M or 2G (default 512M)\n"
		"  --cpus N             vCPUs, 1 to %d (default 1)\n"
		"  --disk FILE[,ro]     a virtio-blk disk on a raw image (repeatable)\n"
		"  --net tap:NAME       a virtio-net card on a tap device (repeatable)\n"
		"  --console serial|virtio\n"
		"                       where the terminal's input goes: ttyS0 (default) or hvc0\n"
		"  --rng                a virtio-rng entropy source (on by default; --no-rng)\n"
		"  --nested             show the guest SVM/VMX when /dev/kvm offers them\n"
		"  --no-seccomp         run without the system call filter (for debugging)\n"
		"\nCtrl-A x quits. A guest power-off or reboot ends the run with status 0.\n",
		MAX_VCPUS);
}

#define HUGE_PAGE_SIZE (2ULL << 20)

/*
 * Guest RAM aligned to 2 MiB, as QEMU does, so that the host's transparent
 * huge pages line up with the guest's 2 MiB frames and the hypervisor can
 * map each with one nested-paging entry.  NULL when there is no memory.
 */
static uint8_t *map_guest_ram(uint64_t size)
{
	uint8_t *p = mmap(NULL, size + HUGE_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t lead;

	if (p == MAP_FAILED)
		return NULL;
	lead = -(uintptr_t)p & (HUGE_PAGE_SIZE - 1);
	if (lead)
		munmap(p, lead);
	munmap(p + lead + size, HUGE_PAGE_SIZE - lead);
	/* Hosts with THP in "madvise" mode need asking; an error only costs speed. */
	madvise(p + lead, size, MADV_HUGEPAGE);
	/* A core dump (the seccomp filter's SIGSYS, say) leaves the guest's memory out. */
	madvise(p + lead, size, MADV_DONTDUMP);
	return p + lead;
}

static void map_ram(struct vmm *v)
{
	struct kvm_userspace_memory_region low = { .slot = 0 }, high = { .slot = 1 };
	struct sysinfo si;

	if (!sysinfo(&si) && v->ram_size / si.mem_unit > si.totalram + si.totalswap)
		vmm_die("not enough memory: --mem %llu MiB, but the host has %llu MiB",
			(unsigned long long)(v->ram_size >> 20),
			(unsigned long long)((si.totalram + si.totalswap) * si.mem_unit >> 20));
	v->ram = map_guest_ram(v->ram_size);
	if (!v->ram)
		vmm_die("not enough memory for %llu MiB of guest RAM",
			(unsigned long long)(v->ram_size >> 20));
	/* RAM up to the PCI hole, the rest from 4 GiB on. */
	v->ram_below_4g = v->ram_size < RAM_BELOW_4G_MAX ? v->ram_size : RAM_BELOW_4G_MAX;
	low.memory_size = v->ram_below_4g;
	low.userspace_addr = (uint64_t)v->ram;
	if (ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &low))
		vmm_die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	if (v->ram_size > v->ram_below_4g) {
		high.guest_phys_addr = 1ULL << 32;
		high.memory_size = v->ram_size - v->ram_below_4g;
		high.userspace_addr = (uint64_t)v->ram + v->ram_below_4g;
		if (ioctl(v->vm_fd, KVM_SET_USER_MEMORY_REGION, &high))
			vmm_die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	}
}

static void create_vm(struct vmm *v)
{
	struct kvm_pit_config pit = { 0 };

	v->kvm_fd = open_kvm();
	v->vm_fd = ioctl(v->kvm_fd, KVM_CREATE_VM, 0);
	if (v->vm_fd < 0)
		vmm_die("KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS) < v->ncpus)
		vmm_die("--cpus %d: /dev/kvm allows at most %d vCPUs", v->ncpus,
			ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	/* SVM ignores it; VMX needs three pages for real mode, below the IOAPIC. */
	if (ioctl(v->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000))
		vmm_die("KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (ioctl(v->vm_fd, KVM_CREATE_IRQCHIP, 0))
		vmm_die("KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(v->vm_fd, KVM_CREATE_PIT2, &pit))
		vmm_die("KVM_CREATE_PIT2: %s", strerror(errno));
	map_ram(v);
	irq_init(v);
}

/* MINIKVM_SECCOMP_TEST=@who: make a call the filter forbids, to show it kills. */
static void seccomp_test_call(const char *who)
{
	int fd;

	if (!seccomp_test || strcmp(seccomp_test, who))
		return;
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fprintf(stderr, "minikvm: MINIKVM_SECCOMP_TEST: the %s thread opened / (%s)\n", who,
		fd >= 0 ? "there is no filter" : strerror(errno));
	if (fd >= 0)
		close(fd);
}

/**
 * vmm_wait_for_start() - hold a new thread until the process is confined
 * @who: "vcpu" or "io", the thread MINIKVM_SECCOMP_TEST may name
 */
void vmm_wait_for_start(const char *who)
{
	pthread_mutex_lock(&start_lock);
	arrived++;
	pthread_cond_broadcast(&start_cond);
	while (!started)
		pthread_cond_wait(&start_cond, &start_lock);
	pthread_mutex_unlock(&start_lock);
	seccomp_test_call(who);
}

/*
 * Everything the run needs exists now: the files, the memory, the
 * descriptors and the @nthreads threads. Once they all wait in
 * vmm_wait_for_start(), install the filter on all of them, then let them go.
 */
static void start(int nthreads, bool filter)
{
	pthread_mutex_lock(&start_lock);
	while (arrived < nthreads)
		pthread_cond_wait(&start_cond, &start_lock);
	pthread_mutex_unlock(&start_lock);
	if (filter && seccomp_confine())
		vmm_die("cannot install the seccomp filter: %s (--no-seccomp runs without it)",
			strerror(errno));
	seccomp_test_call("main");
	pthread_mutex_lock(&start_lock);
	started = true;
	pthread_cond_broadcast(&start_cond);
	pthread_mutex_unlock(&start_lock);
}

/* Wait for the end, then stop the vCPUs before anything is torn down. */
static int wait_for_exit(struct vmm *v)
{
	char c;

	while (read(exit_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	/*
	 * Kick until every vCPU thread is out: a kick can land just before a
	 * thread blocks on a device (a full stdout, say); after ten seconds,
	 * leave anyway.
	 */
	for (int i = 0; i < v->ncpus; i++) {
		struct timespec t;

		for (int tries = 0; tries < 100; tries++) {
			vcpu_kick(&v->vcpus[i]);
			clock_gettime(CLOCK_REALTIME, &t);
			t.tv_nsec += 100 * 1000 * 1000;
			if (t.tv_nsec >= 1000000000) {
				t.tv_sec++;
				t.tv_nsec -= 1000000000;
			}
			if (!pthread_timedjoin_np(v->vcpus[i].thread, NULL, &t))
				break;
		}
	}
	term_restore();
	return exit_status;
}

/**
 * cmd_run() - minikvm run
 * @argc: argument count, "run" included
 * @argv: arguments
 *
 * Return: the process exit status.
 */
int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'p' },
		{ "disk", required_argument, NULL, 'd' },
		{ "net", required_argument, NULL, 'n' },
		{ "console", required_argument, NULL, 'C' },
		{ "rng", no_argument, NULL, 'r' },
		{ "no-rng", no_argument, NULL, 'R' },
		{ "nested", no_argument, NULL, 'N' },
		{ "no-seccomp", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct boot_config cfg = { .cmdline = "console=ttyS0" };
	const char *disks[8], *nets[4];
	int ndisks = 0, nnets = 0, c;
	bool virtio_console = false, rng = true, filter = true;
	struct sigaction sa = { .sa_handler = on_signal };
	struct vmm *v = &vm;
	uint64_t entry;
	char *end;

	v->ram_size = 512ULL << 20;
	v->ncpus = 1;
	opterr = 0;		/* our own messages, one line each */
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'm': v->ram_size = parse_size(optarg); break;
		case 'p': {
			long n = strtol(optarg, &end, 10);

			if (*end || end == optarg || n < 1 || n > MAX_VCPUS)
				vmm_die("--cpus must be 1 to %d, not '%s'", MAX_VCPUS, optarg);
			v->ncpus = n;
			break;
		}
		case 'd':
			if (ndisks == 8)
				vmm_die("at most 8 --disk options");
			disks[ndisks++] = optarg;
			break;
		case 'n':
			if (nnets == 4)
				vmm_die("at most 4 --net options");
			nets[nnets++] = optarg;
			break;
		case 'C':
			if (strcmp(optarg, "serial") && strcmp(optarg, "virtio"))
				vmm_die("--console must be serial or virtio, not '%s'", optarg);
			virtio_console = !strcmp(optarg, "virtio");
			break;
		case 'r': rng = true; break;
		case 'R': rng = false; break;
		case 'N': v->nested = true; break;
		case 'S': filter = false; break;
		case 'h': usage(stdout); return 0;
		case ':': vmm_die("option '%s' needs a value", argv[optind - 1]);
		default: vmm_die("unknown option '%s' (see minikvm run --help)", argv[optind - 1]);
		}
	}
	if (optind < argc)
		vmm_die("unexpected argument '%s' (see minikvm run --help)", argv[optind]);
	if (!cfg.kernel)
		vmm_die("--kernel is required (see minikvm run --help)");
	/* Name a missing file before anything else can go wrong. */
	if (access(cfg.kernel, R_OK))
		vmm_die("cannot read kernel '%s': %s", cfg.kernel, strerror(errno));
	if (cfg.initrd && access(cfg.initrd, R_OK))
		vmm_die("cannot read initrd '%s': %s", cfg.initrd, strerror(errno));
	if (v->ram_size < (128ULL << 20))
		vmm_die("--mem must be at least 128M");
	seccomp_test = getenv("MINIKVM_SECCOMP_TEST");
	if (seccomp_test && strcmp(seccomp_test, "main") && strcmp(seccomp_test, "vcpu") &&
	    strcmp(seccomp_test, "io"))
		vmm_die("MINIKVM_SECCOMP_TEST must be main, vcpu or io, not '%s'", seccomp_test);
	boot_read_kernel(&cfg);

	if (pipe2(exit_pipe, O_CLOEXEC))
		vmm_die("pipe: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	create_vm(v);
	entry = boot_load_linux(v, &cfg);
	free(cfg.image);
	boot_setup_page_tables(v);
	acpi_build_tables(v);

	pm_init();
	rtc_init();
	serial_init(!virtio_console);
	pci_init();
	for (int i = 0; i < ndisks; i++)
		virtio_blk_add(disks[i]);
	for (int i = 0; i < nnets; i++)
		virtio_net_add(nets[i]);
	if (rng)
		virtio_rng_add();
	if (virtio_console)
		virtio_console_add();

	for (int i = 0; i < v->ncpus; i++)
		vcpu_create(v, i, entry);
	term_init();
	iothread_start();
	vcpu_start_all(v);
	start(v->ncpus + 1, filter);	/* the vCPUs and the I/O thread */
	return wait_for_exit(v);
}
