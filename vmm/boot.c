// SPDX-License-Identifier: GPL-2.0
/*
 * The Linux x86 boot protocol (Documentation/x86/boot.rst in the kernel
 * source), 64-bit entry: load a bzImage's protected-mode kernel, an initrd
 * and a command line, and fill in the zero page with an e820 map.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm.h"

/* Offsets in the setup header and the zero page (boot.rst, "THE REAL-MODE KERNEL HEADER"). */
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_MAGIC		0x202	/* "HdrS" */
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_HEAP_END_PTR	0x224
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_XLOADFLAGS		0x236
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define ZP_ACPI_RSDP_ADDR	0x070
#define ZP_E820_ENTRIES		0x1e8
#define ZP_E820_TABLE		0x2d0
#define LOADED_HIGH		0x01
#define CAN_USE_HEAP		0x80
#define XLF_KERNEL_64		0x01
#define E820_RAM		1
#define E820_RESERVED		2

static uint8_t *read_file(const char *path, size_t *size, const char *what)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		vmm_die("cannot open %s '%s': %s", what, path, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		vmm_die("%s '%s' is not a regular file", what, path);
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf || read(fd, buf, st.st_size) != st.st_size)
		vmm_die("cannot read %s '%s'", what, path);
	close(fd);
	*size = st.st_size;
	return buf;
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, 4);
	return v;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static void add_e820(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t n = zp[ZP_E820_ENTRIES];
	uint8_t *e = zp + ZP_E820_TABLE + 20 * n;

	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	memcpy(e + 16, &type, 4);
	zp[ZP_E820_ENTRIES] = n + 1;
}

/**
 * boot_read_kernel() - read a bzImage and check its boot header
 * @cfg: what to boot; the image is kept in it
 *
 * Called before /dev/kvm is opened, so that a wrong file is named first.
 */
void boot_read_kernel(struct boot_config *cfg)
{
	size_t ksize;
	uint8_t *k = read_file(cfg->kernel, &ksize, "kernel");
	uint16_t version;
	uint64_t load;

	if (ksize < 0x1000 || get32(k, HDR_MAGIC) != 0x53726448 ||
	    k[HDR_BOOT_FLAG] != 0x55 || k[HDR_BOOT_FLAG + 1] != 0xaa)
		vmm_die("'%s' is not a bzImage (no Linux boot header)", cfg->kernel);
	memcpy(&version, k + HDR_VERSION, 2);
	if (version < 0x20c || !(k[HDR_XLOADFLAGS] & XLF_KERNEL_64))
		vmm_die("'%s' has no 64-bit entry point (boot protocol %x.%02x)", cfg->kernel,
			version >> 8, version & 0xff);
	cfg->setup = ((k[HDR_SETUP_SECTS] ? k[HDR_SETUP_SECTS] : 4) + 1) * 512;
	if (cfg->setup >= ksize)
		vmm_die("'%s' is not a bzImage (no kernel after the setup code)", cfg->kernel);
	/* The header comes from a file and may hold anything. */
	memcpy(&load, k + HDR_PREF_ADDRESS, 8);
	if (load < 0x100000 || load & 0xfff || load >= RAM_BELOW_4G_MAX)
		vmm_die("'%s' wants to load at %#llx, which is not a kernel address", cfg->kernel,
			(unsigned long long)load);
	cfg->image = k;
	cfg->image_size = ksize;
}

/**
 * boot_load_linux() - put kernel, initrd, command line and zero page in RAM
 * @v: the VM, with its RAM
 * @cfg: what to boot, read by boot_read_kernel()
 *
 * Return: the 64-bit entry point (the loaded kernel's address + 0x200).
 */
uint64_t boot_load_linux(struct vmm *v, const struct boot_config *cfg)
{
	size_t ksize = cfg->image_size, isize = 0, setup = cfg->setup;
	const uint8_t *k = cfg->image;
	uint8_t *zp = v->ram + BOOT_PARAMS_GPA;
	uint64_t load, init_size, initrd_gpa = 0;
	uint64_t rsdp = ACPI_TABLES_GPA;

	memcpy(&load, k + HDR_PREF_ADDRESS, 8);
	init_size = get32(k, HDR_INIT_SIZE);
	if (init_size < ksize - setup)
		init_size = ksize - setup;
	if (load >= v->ram_below_4g || init_size > v->ram_below_4g - load)
		vmm_die("not enough memory: the kernel needs %llu MiB from %llu MiB on; use --mem",
			(unsigned long long)(init_size >> 20), (unsigned long long)(load >> 20));
	memcpy(v->ram + load, k + setup, ksize - setup);

	/* The zero page starts as a copy of the setup header (boot.rst, 64-bit boot). */
	memset(zp, 0, 4096);
	memcpy(zp + 0x1f1, k + 0x1f1, 0x202 + k[0x201] - 0x1f1);
	zp[HDR_TYPE_OF_LOADER] = 0xff;
	zp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	put32(zp, HDR_HEAP_END_PTR, 0xfe00);

	if (strlen(cfg->cmdline) >= BOOT_CMDLINE_MAX ||
	    strlen(cfg->cmdline) > get32(k, HDR_CMDLINE_SIZE))
		vmm_die("the command line is longer than the kernel accepts (%u bytes)",
			get32(k, HDR_CMDLINE_SIZE));
	strcpy((char *)v->ram + BOOT_CMDLINE_GPA, cfg->cmdline);
	put32(zp, HDR_CMD_LINE_PTR, BOOT_CMDLINE_GPA);

	if (cfg->initrd) {
		uint8_t *i = read_file(cfg->initrd, &isize, "initrd");
		uint64_t top = v->ram_below_4g < 0x80000000ULL ? v->ram_below_4g : 0x80000000ULL;

		if (get32(k, HDR_INITRD_ADDR_MAX) + 1ULL < top)
			top = get32(k, HDR_INITRD_ADDR_MAX) + 1ULL;
		if (isize > top || ((top - isize) & ~0xfffULL) < load + init_size)
			vmm_die("not enough memory for the initrd (%zu MiB); use --mem",
				isize >> 20);
		initrd_gpa = (top - isize) & ~0xfffULL;
		memcpy(v->ram + initrd_gpa, i, isize);
		put32(zp, HDR_RAMDISK_IMAGE, initrd_gpa);
		put32(zp, HDR_RAMDISK_SIZE, isize);
		free(i);
	}

	/*
	 * The usual PC map: conventional memory, the EBDA, the BIOS area (our
	 * ACPI tables), RAM up to the PCI hole, and the rest above 4 GiB.
	 */
	add_e820(zp, 0, 0x9fc00, E820_RAM);
	add_e820(zp, 0x9fc00, 0x400, E820_RESERVED);
	add_e820(zp, ACPI_TABLES_GPA, ACPI_TABLES_END - ACPI_TABLES_GPA, E820_RESERVED);
	add_e820(zp, 0x100000, v->ram_below_4g - 0x100000, E820_RAM);
	if (v->ram_size > v->ram_below_4g)
		add_e820(zp, 1ULL << 32, v->ram_size - v->ram_below_4g, E820_RAM);
	memcpy(zp + ZP_ACPI_RSDP_ADDR, &rsdp, 8);
	return load + 0x200;
}

/**
 * boot_setup_page_tables() - identity-map 4 GiB with 2 MiB pages, and a GDT
 * @v: the VM
 *
 * The 64-bit entry wants paging on, a flat 64-bit code segment at selector
 * 0x10 and data at 0x18 (boot.rst, "64-bit BOOT PROTOCOL").
 */
void boot_setup_page_tables(struct vmm *v)
{
	uint64_t *pml4 = (uint64_t *)(v->ram + BOOT_PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(v->ram + BOOT_PDPT_GPA);
	uint64_t *pd = (uint64_t *)(v->ram + BOOT_PD_GPA);
	uint64_t *gdt = (uint64_t *)(v->ram + BOOT_GDT_GPA);

	memset(pml4, 0, 4096);
	pml4[0] = BOOT_PDPT_GPA | 3;
	for (int i = 0; i < 4; i++)
		pdpt[i] = (BOOT_PD_GPA + i * 4096) | 3;
	for (int i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83;	/* present, writable, 2 MiB */
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9b000000ffffULL;		/* 0x10: code, 64-bit */
	gdt[3] = 0x00cf93000000ffffULL;		/* 0x18: data */
}
