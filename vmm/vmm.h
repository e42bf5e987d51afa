/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The minikvm VMM: shared definitions.
 */
#ifndef MINIKVM_VMM_H
#define MINIKVM_VMM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct vmm {
	int kvm_fd;
	int vm_fd;
	uint8_t *ram;
	uint64_t ram_size;
};

struct boot_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
};

/* Guest-physical layout used for booting (the low 1 MiB is ours). */
#define BOOT_GDT_GPA	0x500ULL
#define BOOT_PARAMS_GPA	0x7000ULL
#define BOOT_PML4_GPA	0x9000ULL
#define BOOT_PDPT_GPA	0xa000ULL
#define BOOT_PD_GPA	0xb000ULL	/* four pages: 4 GiB of 2 MiB pages */
#define BOOT_CMDLINE_GPA 0x20000ULL
#define BOOT_CMDLINE_MAX 2048

void vmm_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* boot.c */
uint64_t boot_load_linux(struct vmm *v, const struct boot_config *cfg);
void boot_setup_page_tables(struct vmm *v);

/* serial.c */
void serial_init(int vm_fd);
bool serial_io(uint16_t port, bool in, uint8_t *data);

/* run.c */
int cmd_run(int argc, char **argv);

#endif
