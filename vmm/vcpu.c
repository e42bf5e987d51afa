// SPDX-License-Identifier: GPL-2.0
/*
 * vCPUs: CPUID with a topology, the boot CPU's 64-bit entry state, and one
 * thread per vCPU running KVM_RUN and dispatching its exits.
 */
#include <cpuid.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include <asm/kvm_para.h>

#include "vmm.h"

static int order_base_2(int n)
{
	int b = 0;

	while ((1 << b) < n)
		b++;
	return b;
}

/*
 * One package with one core per vCPU and one thread per core. The APIC id
 * is the vCPU id, and each leaf that reports it says so (SDM vol. 2 CPUID
 * leaves 1 and 0BH; AMD APM vol. 3, E.4: 8000_0008H and 8000_001EH).
 */
static void set_topology(struct kvm_cpuid2 *cpuid, int id, int n)
{
	int shift = order_base_2(n);

	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			/* KVM leaves the hypervisor bit to the VMM; Linux needs it for kvmclock. */
			e->ecx |= 1u << 31;
			e->ebx = (e->ebx & 0xffff) | (uint32_t)id << 24 | (uint32_t)n << 16;
			if (n > 1)
				e->edx |= 1u << 28;	/* HTT: the count above is valid */
			break;
		case 0xb:
		case 0x1f:
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1 << 8;		/* level 0: SMT */
			} else if (e->index == 1) {
				e->eax = shift;
				e->ebx = n;
				e->ecx = 2 << 8 | 1;		/* level 1: core */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index;
			}
			e->edx = id;
			break;
		case KVM_CPUID_FEATURES:
			/*
			 * Of the paravirtual features, only the clock and the
			 * I/O-delay hint. With all that KVM offers (PV EOI, PV
			 * spinlocks, async page faults...), 2-vCPU guests in the
			 * test machine deadlocked on timer interrupts nested in
			 * IRQ-off code; see Documentation/vmm.rst.
			 */
			e->eax &= 1u << KVM_FEATURE_CLOCKSOURCE | 1u << KVM_FEATURE_NOP_IO_DELAY |
				  1u << KVM_FEATURE_CLOCKSOURCE2 |
				  1u << KVM_FEATURE_CLOCKSOURCE_STABLE_BIT;
			break;
		case 0x80000001:
			if (n > 1)
				e->ecx |= 1u << 1;	/* CmpLegacy: HTT counts cores */
			break;
		case 0x80000008:
			e->ecx = (uint32_t)shift << 12 | (n - 1);
			break;
		case 0x8000001e:
			e->eax = id;			/* extended APIC id */
			e->ebx = id;			/* core id; one thread per core */
			e->ecx = 0;			/* node 0, one node */
			break;
		}
	}
}

/*
 * Without --nested the guest sees no SVM or VMX, as with QEMU's default
 * CPU models: a hypervisor loaded with nested=1 offers them to every VMM.
 */
static void hide_virtualization(struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 1:
			e->ecx &= ~(1u << 5);		/* VMX */
			break;
		case 0x80000001:
			e->ecx &= ~(1u << 2);		/* SVM */
			break;
		case 0x8000000a:			/* SVM features */
			e->eax = e->ebx = e->ecx = e->edx = 0;
			break;
		}
	}
}

/* The processor's name (leaves 0x80000002-4), the host's when KVM leaves it empty. */
static void set_brand(struct kvm_cpuid2 *cpuid)
{
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		switch (e->function) {
		case 0x80000002 ... 0x80000004:
			if (!(e->eax | e->ebx | e->ecx | e->edx))
				__cpuid(e->function, e->eax, e->ebx, e->ecx, e->edx);
		}
	}
}

/*
 * The TSC-deadline timer (CPUID.1:ECX[24], SDM 10.5.4.1) is not in
 * KVM_GET_SUPPORTED_CPUID: a hypervisor that emulates it says so with
 * KVM_CAP_TSC_DEADLINE_TIMER (api.rst 4.46), and the VMM sets the bit.
 */
static void set_tsc_deadline(struct vmm *v, struct kvm_cpuid2 *cpuid)
{
	if (ioctl(v->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return;
	for (uint32_t i = 0; i < cpuid->nent; i++)
		if (cpuid->entries[i].function == 1)
			cpuid->entries[i].ecx |= 1u << 24;
}

static void set_cpuid(struct vmm *v, struct vcpu *c)
{
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));

	if (!cpuid)
		vmm_die("out of memory");
	cpuid->nent = 256;
	if (ioctl(v->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid))
		vmm_die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	set_topology(cpuid, c->id, v->ncpus);
	if (!v->nested)
		hide_virtualization(cpuid);
	set_brand(cpuid);
	set_tsc_deadline(v, cpuid);
	if (ioctl(c->fd, KVM_SET_CPUID2, cpuid))
		vmm_die("KVM_SET_CPUID2: %s", strerror(errno));
	free(cpuid);
}

/* The 64-bit boot protocol's entry state (boot.rst, "64-bit BOOT PROTOCOL"). */
static void set_boot_state(struct vcpu *c, uint64_t entry)
{
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11, .present = 1,
		.s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment data = code;
	struct kvm_sregs s;
	struct kvm_regs r = { .rip = entry, .rsi = BOOT_PARAMS_GPA, .rflags = 2 };

	if (ioctl(c->fd, KVM_GET_SREGS, &s))
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
	if (ioctl(c->fd, KVM_SET_SREGS, &s) || ioctl(c->fd, KVM_SET_REGS, &r))
		vmm_die("setting the vCPU's registers: %s", strerror(errno));
}

/**
 * vcpu_create() - create a vCPU and give it its CPUID
 * @v: the VM
 * @id: vCPU and APIC id
 * @entry: the kernel's 64-bit entry for the boot CPU; the others wait for
 *	INIT and SIPI in the in-kernel local APIC
 */
void vcpu_create(struct vmm *v, int id, uint64_t entry)
{
	struct vcpu *c = &v->vcpus[id];
	int size = ioctl(v->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);

	c->id = id;
	c->fd = ioctl(v->vm_fd, KVM_CREATE_VCPU, id);
	if (c->fd < 0 || size <= 0)
		vmm_die("creating vCPU %d: %s", id, strerror(errno));
	c->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED)
		vmm_die("mapping kvm_run of vCPU %d: %s", id, strerror(errno));
	set_cpuid(v, c);
	if (id == 0)
		set_boot_state(c, entry);
}

/**
 * vcpu_dump() - print a vCPU's registers to stderr
 * @c: the vCPU
 */
void vcpu_dump(struct vcpu *c)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(c->fd, KVM_GET_REGS, &r) || ioctl(c->fd, KVM_GET_SREGS, &s)) {
		fprintf(stderr, "minikvm: vCPU %d: cannot read its registers: %s\n", c->id,
			strerror(errno));
		return;
	}
	fprintf(stderr,
		"minikvm: vCPU %d registers:\n"
		"  rip %016llx rsp %016llx rflags %08llx\n"
		"  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
		"  rsi %016llx rdi %016llx rbp %016llx\n"
		"  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
		"  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
		"  cs %04x ss %04x cr0 %llx cr2 %llx cr3 %llx cr4 %llx efer %llx\n",
		c->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
		r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector,
		s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

static void __attribute__((format(printf, 2, 3))) fail(struct vcpu *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "minikvm: vCPU %d: ", c->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	vcpu_dump(c);
	vmm_request_exit(1);
}

static void handle_io(struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool write = run->io.direction == KVM_EXIT_IO_OUT;

	pthread_mutex_lock(&dev_lock);
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_pio(run->io.port, write, data, run->io.size);
	pthread_mutex_unlock(&dev_lock);
}

static void handle_system_event(struct vcpu *c)
{
	switch (c->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
	case KVM_SYSTEM_EVENT_RESET:
		vmm_request_exit(0);
		break;
	default:
		fail(c, "system event %u", c->run->system_event.type);
	}
}

static void handle_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(run);
		break;
	case KVM_EXIT_MMIO:
		pthread_mutex_lock(&dev_lock);
		bus_mmio(run->mmio.phys_addr, run->mmio.is_write, run->mmio.data, run->mmio.len);
		pthread_mutex_unlock(&dev_lock);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(c);
		break;
	case KVM_EXIT_SHUTDOWN:
		fail(c, "the guest triple-faulted");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		fail(c, "KVM internal error, suberror %u", run->internal.suberror);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		fail(c, "entering the guest failed, hardware reason %#llx",
		     run->fail_entry.hardware_entry_failure_reason);
		break;
	default:
		fail(c, "unexpected exit reason %u", run->exit_reason);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* No guest code runs before the process is confined. */
	vmm_wait_for_start("vcpu");
	while (!vmm_exiting()) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				c->run->immediate_exit = 0;
				continue;
			}
			fail(c, "KVM_RUN: %s", strerror(errno));
			break;
		}
		handle_exit(c);
	}
	return NULL;
}

static void kick_handler(int sig)
{
	(void)sig;
}

/**
 * vcpu_start_all() - start a thread per vCPU
 * @v: the VM
 *
 * The kick signal is blocked everywhere but in the vCPU threads, so it can
 * only interrupt KVM_RUN.
 */
void vcpu_start_all(struct vmm *v)
{
	struct sigaction sa = { .sa_handler = kick_handler };

	sigaction(SIG_KICK, &sa, NULL);
	for (int i = 0; i < v->ncpus; i++)
		if (pthread_create(&v->vcpus[i].thread, NULL, vcpu_thread, &v->vcpus[i]))
			vmm_die("cannot start the thread of vCPU %d", i);
}

/**
 * vcpu_kick() - make a vCPU's thread leave KVM_RUN (or a blocking write) soon
 * @c: the vCPU, whose thread has not been joined yet
 *
 * immediate_exit covers a thread about to enter KVM_RUN; the signal one
 * already inside.
 */
void vcpu_kick(struct vcpu *c)
{
	c->run->immediate_exit = 1;
	pthread_kill(c->thread, SIG_KICK);
}
