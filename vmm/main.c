// SPDX-License-Identifier: GPL-2.0
/*
 * minikvm: the command-line VMM.
 *
 *   minikvm run        boot a Linux bzImage (vmm/run.c)
 *   minikvm check      report /dev/kvm's API version and the capabilities
 *                      that real VMMs (QEMU, kvmtool, Firecracker) check at start
 *   minikvm --version
 *   minikvm --help
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "vmm.h"

#define MINIKVM_VERSION "0.1"

static const struct {
	long cap;
	const char *name;
} vmm_caps[] = {
#define CAP(x) { KVM_CAP_##x, #x }
	CAP(USER_MEMORY), CAP(DESTROY_MEMORY_REGION_WORKS), CAP(JOIN_MEMORY_REGIONS_WORKS),
	CAP(INTERNAL_ERROR_DATA), CAP(IOEVENTFD), CAP(IOEVENTFD_ANY_LENGTH), CAP(IRQFD),
	CAP(PIT2), CAP(PIT_STATE2), CAP(SET_TSS_ADDR), CAP(EXT_CPUID), CAP(MP_STATE),
	CAP(SIGNAL_MSI), CAP(IRQ_ROUTING), CAP(DEBUGREGS), CAP(XSAVE), CAP(XCRS),
	CAP(VCPU_EVENTS), CAP(X86_ROBUST_SINGLESTEP), CAP(MCE), CAP(ADJUST_CLOCK),
	CAP(SET_IDENTITY_MAP_ADDR), CAP(COALESCED_MMIO), CAP(IRQCHIP), CAP(HLT),
	CAP(IRQ_INJECT_STATUS), CAP(IMMEDIATE_EXIT), CAP(READONLY_MEM),
	CAP(NR_VCPUS), CAP(MAX_VCPUS), CAP(NR_MEMSLOTS),
#undef CAP
};

static void usage(FILE *f)
{
	fprintf(f, "usage: minikvm COMMAND [OPTIONS]\n\n"
		"Commands:\n"
		"  run         boot a Linux bzImage (minikvm run --help)\n"
		"  check       show /dev/kvm's API version and the capabilities VMMs need\n\n"
		"Options:\n"
		"  --help      this text\n"
		"  --version   print the version\n");
}

static int cmd_check(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC), api, missing = 0;

	if (fd < 0) {
		fprintf(stderr, "minikvm: cannot open /dev/kvm: %s%s\n", strerror(errno),
			errno == ENOENT ? " (load minikvm.ko or kvm_amd/kvm_intel)" :
			errno == EACCES ? " (no permission: be root or in group kvm)" : "");
		return 1;
	}
	api = ioctl(fd, KVM_GET_API_VERSION, 0);
	printf("KVM API version: %d\n", api);
	if (api != KVM_API_VERSION) {
		fprintf(stderr, "minikvm: API version %d, expected %d\n", api, KVM_API_VERSION);
		close(fd);
		return 1;
	}
	for (unsigned int i = 0; i < sizeof(vmm_caps) / sizeof(vmm_caps[0]); i++) {
		int r = ioctl(fd, KVM_CHECK_EXTENSION, vmm_caps[i].cap);

		printf("  %-28s %s", vmm_caps[i].name, r > 0 ? "yes" : "NO");
		if (r > 1)
			printf(" (%d)", r);
		printf("\n");
		missing += r <= 0;
	}
	printf("%d of %zu capabilities missing\n", missing,
	       sizeof(vmm_caps) / sizeof(vmm_caps[0]));
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("minikvm %s\n", MINIKVM_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "check")) {
		if (argc > 2) {
			fprintf(stderr, "minikvm: check takes no arguments, not '%s'\n", argv[2]);
			return 2;
		}
		return cmd_check();
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	fprintf(stderr, "minikvm: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
