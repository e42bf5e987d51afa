/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What boot.S, stage2.c and mkpvh.c agree on: the layout of the two disks
 * the Intel test machine boots from (see tools/testvm-intel).
 *
 * The kernel disk (ATA primary master, built once per kernel):
 *   sector 0                     boot.S, the boot sector the BIOS starts
 *   sectors 1 .. 15              stage2.c, loaded at PVH_STAGE2_ADDR
 *   sector PVH_KERNEL_HDR_LBA    struct pvh_kernel
 *   from PVH_KERNEL_LBA          the kernel's memory image from its lowest
 *                                physical address, trailing zeros left out
 * The run disk (ATA primary slave, built for each run):
 *   sector 0                     struct pvh_params
 *   from PVH_INITRD_LBA          the initramfs
 *
 * stage2 reads both straight to where they belong and enters the kernel at
 * its PVH entry, so nothing is decompressed or copied by emulated code.
 */
#ifndef PVH_BOOT_H
#define PVH_BOOT_H

#define PVH_STAGE2_ADDR		0x8000
#define PVH_STAGE2_LBA		1
#define PVH_STAGE2_SECTORS	15
#define PVH_KERNEL_HDR_LBA	16
#define PVH_KERNEL_LBA		17
#define PVH_INITRD_LBA		8
#define PVH_SECTOR_SIZE		512

#define PVH_MEMMAP_ADDR		0x6000		/* real mode must reach it */
#define PVH_MEMMAP_MAX		64
#define PVH_MEMMAP_ENTRY_SIZE	24
#define PVH_PARAMS_ADDR		0x7000		/* start info and command line */

#define PVH_KERNEL_MAGIC	0x4e524b50	/* "PKRN" */
#define PVH_PARAMS_MAGIC	0x50485650	/* "PVHP" */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* The PVH boot ABI (Xen's public/arch-x86/hvm/start_info.h), version 1. */
#define HVM_START_MAGIC		0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct pvh_kernel {
	uint32_t magic;
	uint32_t entry;			/* physical PVH entry point */
	uint64_t start;			/* where the image goes */
	uint64_t image_size;		/* bytes of it on the disk */
	uint64_t mem_size;		/* bytes of memory it covers, zeros after the image */
};

#define PVH_CMDLINE_SIZE	2048	/* the kernel's COMMAND_LINE_SIZE */

/* Everything here is ready for the kernel, but for memmap_entries. */
struct pvh_params {
	uint32_t magic;
	uint32_t reserved;
	struct hvm_start_info start_info;
	struct hvm_modlist_entry initrd;
	char cmdline[PVH_CMDLINE_SIZE];
};

_Static_assert(sizeof(struct pvh_kernel) <= PVH_SECTOR_SIZE, "pvh_kernel");
_Static_assert(sizeof(struct pvh_params) <= PVH_INITRD_LBA * PVH_SECTOR_SIZE, "pvh_params");
_Static_assert(PVH_PARAMS_ADDR + sizeof(struct pvh_params) <= 0x7c00, "pvh_params address");
#endif

#endif
