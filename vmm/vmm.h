/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The minikvm VMM: shared definitions.
 */
#ifndef MINIKVM_VMM_H
#define MINIKVM_VMM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define MAX_VCPUS	64

/* The signal that kicks a vCPU thread out of KVM_RUN (vcpu_kick()). */
#define SIG_KICK	SIGUSR1

struct kvm_run;

struct vcpu {
	int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
};

struct vmm {
	int kvm_fd;
	int vm_fd;
	uint8_t *ram;
	uint64_t ram_size;
	uint64_t ram_below_4g;		/* RAM from 0; the rest starts at 4 GiB */
	int ncpus;
	bool nested;			/* --nested: show SVM/VMX if /dev/kvm has them */
	struct vcpu vcpus[MAX_VCPUS];
};

struct boot_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint8_t *image;			/* the bzImage, read by boot_read_kernel() */
	size_t image_size, setup;
};

/* The one VM of this process. */
extern struct vmm vm;

/*
 * Device state is touched by the vCPU threads (port I/O and MMIO exits) and
 * by the I/O thread (stdin, queue notifications, tap); one lock keeps it simple.
 */
extern pthread_mutex_t dev_lock;

/* Guest-physical layout used for booting (the low 1 MiB is ours). */
#define BOOT_GDT_GPA	0x500ULL
#define BOOT_PARAMS_GPA	0x7000ULL
#define BOOT_PML4_GPA	0x9000ULL
#define BOOT_PDPT_GPA	0xa000ULL
#define BOOT_PD_GPA	0xb000ULL	/* four pages: 4 GiB of 2 MiB pages */
#define BOOT_CMDLINE_GPA 0x20000ULL
#define BOOT_CMDLINE_MAX 2048
#define ACPI_TABLES_GPA	0xe0000ULL	/* the RSDP first: Linux also scans here for it */
#define ACPI_TABLES_END	0x100000ULL

/* Above RAM below 4 GiB: the PCI window, then the IOAPIC and local APICs. */
#define PCI_MMIO_START	0xc0000000ULL
#define PCI_MMIO_END	0xfec00000ULL
#define IOAPIC_GPA	0xfec00000ULL
#define LAPIC_GPA	0xfee00000ULL
#define RAM_BELOW_4G_MAX PCI_MMIO_START

/* Legacy interrupt lines (ISA IRQs, routed to the same IOAPIC pins, except 0 -> 2). */
#define IRQ_COM1	4
#define IRQ_SCI		9
#define IOAPIC_PINS	24

/* ACPI fixed-hardware registers (vmm/pm.c). */
#define PM1_EVT_PORT	0x600
#define PM1_CNT_PORT	0x604

void vmm_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void *gpa_to_hva(uint64_t gpa, uint64_t len);

/* How the run ends: set once, by whichever thread sees the end first. */
void vmm_request_exit(int status);
bool vmm_exiting(void);

/* boot.c */
void boot_read_kernel(struct boot_config *cfg);
uint64_t boot_load_linux(struct vmm *v, const struct boot_config *cfg);
void boot_setup_page_tables(struct vmm *v);

/* acpi.c */
void acpi_build_tables(struct vmm *v);

/* bus.c: port I/O and MMIO dispatch (called with dev_lock held) */
typedef void (*io_handler_t)(void *opaque, uint64_t addr, bool write, void *data,
			     unsigned int len);
void bus_add_pio(uint16_t base, uint16_t len, io_handler_t fn, void *opaque);
void bus_add_mmio(uint64_t base, uint64_t len, io_handler_t fn, void *opaque);
void bus_move_mmio(void *opaque, uint64_t base);
bool bus_pio(uint16_t port, bool write, void *data, unsigned int len);
bool bus_mmio(uint64_t addr, bool write, void *data, unsigned int len);

/* vcpu.c */
void vcpu_create(struct vmm *v, int id, uint64_t entry);
void vcpu_start_all(struct vmm *v);
void vcpu_kick(struct vcpu *c);
void vcpu_dump(struct vcpu *c);

/* irq.c: GSI routing, legacy lines and MSIs through irqfds */
void irq_init(struct vmm *v);
void irq_line(int irq, int level);
int irq_alloc_msi(int *efd);
void irq_set_msi(int gsi, uint64_t addr, uint32_t data);
void irq_commit(void);

/* Legacy devices: pm.c, rtc.c, serial.c */
void pm_init(void);
void rtc_init(void);
void serial_init(bool console);

/* term.c: the host terminal */
void term_init(void);
void term_restore(void);
size_t term_filter_input(uint8_t *buf, size_t len);
void term_write(const void *buf, size_t len);

/* iothread.c */
typedef void (*io_ready_t)(void *opaque, bool error);
void iothread_add_fd(int fd, io_ready_t fn, void *opaque);
void iothread_watch(int fd, bool on);
void iothread_remove_fd(int fd);
void iothread_start(void);
void stdin_set_sink(void (*sink)(const uint8_t *buf, size_t len));

/* pci.c */
struct pci_dev;
void pci_init(void);

/* run.c */
int cmd_run(int argc, char **argv);
void vmm_wait_for_start(const char *who);

/* seccomp.c: the run-time system call filter */
#define SECCOMP_MAX_INSNS 128
struct sock_filter;
unsigned int seccomp_build_filter(struct sock_filter *prog, unsigned int max, pid_t pid);
int seccomp_confine(void);

#endif
