// SPDX-License-Identifier: GPL-2.0
/*
 * minikvm run: boot a Linux bzImage.
 *
 * So far: one vCPU, the in-kernel irqchip and PIT, a COM1 UART for output,
 * and the i8042 reset line to end the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "vmm.h"

void vmm_die(const char *fmt, ...)
{
	va_list ap;

	fputs("minikvm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (end == s)
		vmm_die("bad size '%s' (use e.g. 512M or 2G)", s);
	switch (*end) {
	case 'G': case 'g': v <<= 30; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'K': case 'k': v <<= 10; end++; break;
	}
	if (*end || !v)
		vmm_die("bad size '%s' (use e.g. 512M or 2G)", s);
	return v;
}

static void need_cap(int kvm, long cap, const char *name)
{
	if (ioctl(kvm, KVM_CHECK_EXTENSION, cap) <= 0)
		vmm_die("/dev/kvm lacks the capability KVM_CAP_%s", name);
}

static int open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		vmm_die("no /dev/kvm: load kvm_amd, kvm_intel or minikvm");
	if (fd < 0 && errno == EACCES)
		vmm_die("no permission to open /dev/kvm (be root or in group kvm)");
	if (fd < 0)
		vmm_die("cannot open /dev/kvm: %s", strerror(errno));
	if (ioctl(fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		vmm_die("/dev/kvm speaks API %d, not %d", ioctl(fd, KVM_GET_API_VERSION, 0),
			KVM_API_VERSION);
	need_cap(fd, KVM_CAP_USER_MEMORY, "USER_MEMORY");
	need_cap(fd, KVM_CAP_IRQCHIP, "IRQCHIP");
	need_cap(fd, KVM_CAP_PIT2, "PIT2");
	need_cap(fd, KVM_CAP_EXT_CPUID, "EXT_CPUID");
	return fd;
}

static void setup_vcpu(struct vmm *v, int vcpu, uint64_t entry)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11, .present = 1,
		.s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = entry, .rsi = BOOT_PARAMS_GPA, .rflags = 2 };

	cpuid->nent = 256;
	if (ioctl(v->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid))
		vmm_die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	/*
	 * KVM leaves the "hypervisor present" bit (CPUID.1:ECX[31]) to the VMM;
	 * without it Linux never reads the paravirtual leaves (kvmclock).
	 */
	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 1)
			cpuid->entries[i].ecx |= 1u << 31;
	if (ioctl(vcpu, KVM_SET_CPUID2, cpuid))
		vmm_die("KVM_SET_CPUID2: %s", strerror(errno));
	free(cpuid);
	if (ioctl(vcpu, KVM_GET_SREGS, &s))
		vmm_die("KVM_GET_SREGS: %s", strerror(errno));
	data.selector = 0x18;
	data.type = 3;
	data.l = 0;
	data.db = 1;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.gdt.base = BOOT_GDT_GPA;
	s.gdt.limit = 4 * 8 - 1;
	s.cr0 = 0x80050033;		/* PE, MP, ET, NE, WP, PG */
	s.cr3 = BOOT_PML4_GPA;
	s.cr4 = 0x20;			/* PAE */
	s.efer = 0x500;			/* LME, LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &s) || ioctl(vcpu, KVM_SET_REGS, &r))
		vmm_die("setting the vCPU's registers: %s", strerror(errno));
}

static void dump_vcpu(int vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu, KVM_GET_REGS, &r) || ioctl(vcpu, KVM_GET_SREGS, &s))
		return;
	fprintf(stderr, "minikvm: rip %#llx rsp %#llx rflags %#llx cr0 %#llx cr3 %#llx cr4 %#llx "
		"efer %#llx\n", r.rip, r.rsp, r.rflags, s.cr0, s.cr3, s.cr4, s.efer);
}

static int run_vcpu(int vcpu, struct kvm_run *run)
{
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vmm_die("KVM_RUN: %s", strerror(errno));
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;

			for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
				bool in = run->io.direction == KVM_EXIT_IO_IN;

				if (run->io.size == 1 && serial_io(run->io.port, in, data))
					continue;
				/* i8042: pulsing the reset line ends the run (reboot). */
				if (!in && run->io.port == 0x64 && *data == 0xfe)
					return 0;
				if (in)
					memset(data, 0xff, run->io.size);	/* no device */
			}
			break;
		}
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_SYSTEM_EVENT:
			return 0;
		case KVM_EXIT_SHUTDOWN:
			fprintf(stderr, "minikvm: the guest triple-faulted\n");
			dump_vcpu(vcpu);
			return 1;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "minikvm: KVM internal error, suberror %u\n",
				run->internal.suberror);
			dump_vcpu(vcpu);
			return 1;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "minikvm: entering the guest failed, reason %#llx\n",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			dump_vcpu(vcpu);
			return 1;
		default:
			fprintf(stderr, "minikvm: unexpected exit %u\n", run->exit_reason);
			dump_vcpu(vcpu);
			return 1;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: minikvm run --kernel bzImage [--initrd FILE] [--cmdline STR] "
		"[--mem SIZE]\n");
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
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct boot_config cfg = { .cmdline = "console=ttyS0" };
	struct vmm v = { .ram_size = 512ULL << 20 };
	struct kvm_pit_config pit = { 0 };
	struct kvm_userspace_memory_region mem;
	struct kvm_run *run;
	int c, vcpu, size;
	uint64_t entry;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'm': v.ram_size = parse_size(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg.kernel) {
		usage(stderr);
		vmm_die("--kernel is required");
	}
	/* Name a missing file before anything else can go wrong. */
	if (access(cfg.kernel, R_OK))
		vmm_die("cannot read kernel '%s': %s", cfg.kernel, strerror(errno));
	if (cfg.initrd && access(cfg.initrd, R_OK))
		vmm_die("cannot read initrd '%s': %s", cfg.initrd, strerror(errno));
	/* One RAM block below the 3 GiB PCI hole, until the e820 map has a hole. */
	if (v.ram_size < (128ULL << 20) || v.ram_size > (3ULL << 30))
		vmm_die("--mem must be between 128M and 3G");

	v.kvm_fd = open_kvm();
	v.vm_fd = ioctl(v.kvm_fd, KVM_CREATE_VM, 0);
	if (v.vm_fd < 0)
		vmm_die("KVM_CREATE_VM: %s", strerror(errno));
	if (ioctl(v.vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000) || ioctl(v.vm_fd, KVM_CREATE_IRQCHIP, 0) ||
	    ioctl(v.vm_fd, KVM_CREATE_PIT2, &pit))
		vmm_die("setting up the VM: %s", strerror(errno));
	v.ram = mmap(NULL, v.ram_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (v.ram == MAP_FAILED)
		vmm_die("not enough memory for %llu MiB of guest RAM",
			(unsigned long long)(v.ram_size >> 20));
	mem = (struct kvm_userspace_memory_region){
		.slot = 0, .memory_size = v.ram_size, .userspace_addr = (uint64_t)v.ram,
	};
	if (ioctl(v.vm_fd, KVM_SET_USER_MEMORY_REGION, &mem))
		vmm_die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

	serial_init(v.vm_fd);
	entry = boot_load_linux(&v, &cfg);
	boot_setup_page_tables(&v);

	vcpu = ioctl(v.vm_fd, KVM_CREATE_VCPU, 0);
	size = ioctl(v.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || size <= 0)
		vmm_die("creating the vCPU: %s", strerror(errno));
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		vmm_die("mapping kvm_run: %s", strerror(errno));
	setup_vcpu(&v, vcpu, entry);
	return run_vcpu(vcpu, run);
}
