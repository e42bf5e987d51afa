// SPDX-License-Identifier: GPL-2.0
/*
 * mkpvh: write the two disks the Intel test machine boots from (their
 * layout is in pvh-boot.h), so that no emulated code has to decompress or
 * copy the kernel.
 *
 *   mkpvh kernel VMLINUX BOOT STAGE2 DISK
 *	The kernel disk: the boot sector BOOT, stage 2 STAGE2 and the memory
 *	image of an uncompressed vmlinux (its PT_LOAD segments at their
 *	physical addresses, zeros in between).  Prints "START END ENTRY" in
 *	hex: where the kernel's memory starts and ends, and its PVH entry
 *	(the XEN_ELFNOTE_PHYS32_ENTRY note, there with CONFIG_PVH).
 *
 *   mkpvh run INITRD_ADDR CMDLINE INITRD DISK
 *	The run disk: the kernel's start info with the command line and the
 *	initramfs INITRD, which stage 2 puts at INITRD_ADDR.
 */
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "pvh-boot.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("mkpvh: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint64_t number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end)
		die("'%s' is not a number", s);
	return v;
}

/* The note's value, or 0: notes are (namesz, descsz, type, name, desc), 4-aligned. */
static uint32_t pvh_entry(const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off + 12 <= len) {
		uint32_t namesz, descsz, type;
		size_t name, desc;

		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		memcpy(&type, p + off + 8, 4);
		name = off + 12;
		desc = name + ((namesz + 3) & ~3u);
		if (desc + descsz > len)
			break;
		if (namesz == 4 && !memcmp(p + name, "Xen", 4) &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) {
			uint32_t v;

			memcpy(&v, p + desc, 4);
			return v;
		}
		off = desc + ((descsz + 3) & ~3u);
	}
	return 0;
}

/*
 * Bochs takes the geometry of a flat disk image from its size with 16 heads
 * and 63 sectors a track, and cannot reach a partial cylinder.
 */
#define CYLINDER	(16 * 63 * PVH_SECTOR_SIZE)

static void write_at(int fd, const char *path, uint64_t off, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n <= 0)
			die("%s: %s", path, n ? strerror(errno) : "short write");
		p += n;
		off += n;
		len -= n;
	}
}

static void *read_file(const char *path, size_t *len)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die("%s: %s", path, strerror(errno));
	*len = st.st_size;
	p = st.st_size ? mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : (void *)"";
	if (p == MAP_FAILED)
		die("%s: %s", path, strerror(errno));
	close(fd);
	return p;
}

static int create_disk(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	return fd;
}

static void finish_disk(int fd, const char *path, uint64_t used)
{
	uint64_t size = (used + CYLINDER - 1) / CYLINDER * CYLINDER;

	if (ftruncate(fd, size) || close(fd))
		die("%s: %s", path, strerror(errno));
}

static int make_kernel(char **argv)
{
	const char *vmlinux = argv[0], *disk = argv[3];
	uint64_t start = UINT64_MAX, end = 0, image = 0;
	struct pvh_kernel hdr;
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	size_t len, boot_len, stage2_len;
	const uint8_t *elf, *boot, *stage2;
	uint32_t entry = 0;
	int fd, i;

	elf = read_file(vmlinux, &len);
	boot = read_file(argv[1], &boot_len);
	stage2 = read_file(argv[2], &stage2_len);
	if (boot_len != PVH_SECTOR_SIZE)
		die("%s: a boot sector is %d bytes", argv[1], PVH_SECTOR_SIZE);
	if (stage2_len > PVH_STAGE2_SECTORS * PVH_SECTOR_SIZE)
		die("%s: stage 2 is larger than %d sectors", argv[2], PVH_STAGE2_SECTORS);

	eh = (const Elf64_Ehdr *)elf;
	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(*ph) ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(*ph) > len)
		die("%s: not an x86-64 ELF file (an uncompressed vmlinux)", vmlinux);
	ph = (const Elf64_Phdr *)(elf + eh->e_phoff);

	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_offset + ph[i].p_filesz > len || ph[i].p_filesz > ph[i].p_memsz)
			die("%s: program header %d is out of the file", vmlinux, i);
		if (ph[i].p_type == PT_LOAD && ph[i].p_memsz) {
			if (ph[i].p_paddr < start)
				start = ph[i].p_paddr;
			if (ph[i].p_paddr + ph[i].p_memsz > end)
				end = ph[i].p_paddr + ph[i].p_memsz;
		} else if (ph[i].p_type == PT_NOTE && !entry) {
			entry = pvh_entry(elf + ph[i].p_offset, ph[i].p_filesz);
		}
	}
	if (!entry)
		die("%s: no PVH entry note (a kernel without CONFIG_PVH?)", vmlinux);
	/* Below 1 MiB are the BIOS, boot.S's data and stage 2. */
	if (start >= end || start < 0x100000 || end > 0xffffffffull)
		die("%s: segments at %#llx-%#llx are not between 1 MiB and 4 GiB", vmlinux,
		    (unsigned long long)start, (unsigned long long)end);

	fd = create_disk(disk);
	write_at(fd, disk, 0, boot, boot_len);
	write_at(fd, disk, PVH_STAGE2_LBA * PVH_SECTOR_SIZE, stage2, stage2_len);
	for (i = 0; i < eh->e_phnum; i++) {
		const uint8_t *data = elf + ph[i].p_offset;
		uint64_t n = ph[i].p_filesz;

		if (ph[i].p_type != PT_LOAD || !ph[i].p_memsz)
			continue;
		/* The trailing zeros (.bss) cost disk reads; stage 2 clears them. */
		while (n && !data[n - 1])
			n--;
		write_at(fd, disk, PVH_KERNEL_LBA * PVH_SECTOR_SIZE + (ph[i].p_paddr - start),
			 data, n);
		if (n && ph[i].p_paddr + n - start > image)
			image = ph[i].p_paddr + n - start;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.magic = PVH_KERNEL_MAGIC;
	hdr.entry = entry;
	hdr.start = start;
	hdr.image_size = image;
	hdr.mem_size = end - start;
	write_at(fd, disk, PVH_KERNEL_HDR_LBA * PVH_SECTOR_SIZE, &hdr, sizeof(hdr));
	finish_disk(fd, disk, PVH_KERNEL_LBA * PVH_SECTOR_SIZE + image);
	printf("%#llx %#llx %#x\n", (unsigned long long)start, (unsigned long long)end, entry);
	return 0;
}

static int make_run(char **argv)
{
	uint64_t initrd_addr = number(argv[0]);
	const char *cmdline = argv[1], *disk = argv[3];
	struct pvh_params p;
	const void *initrd;
	size_t initrd_len;
	int fd;

	initrd = read_file(argv[2], &initrd_len);
	if (initrd_addr < 0x100000 || initrd_addr + initrd_len > 0xffffffffull)
		die("the initramfs at %#llx does not fit below 4 GiB",
		    (unsigned long long)initrd_addr);
	memset(&p, 0, sizeof(p));
	p.magic = PVH_PARAMS_MAGIC;
	if (strlen(cmdline) >= sizeof(p.cmdline))
		die("the command line is longer than %zu bytes", sizeof(p.cmdline) - 1);
	strcpy(p.cmdline, cmdline);

	p.start_info.magic = HVM_START_MAGIC;
	p.start_info.version = 1;
	p.start_info.cmdline_paddr = PVH_PARAMS_ADDR + offsetof(struct pvh_params, cmdline);
	p.start_info.memmap_paddr = PVH_MEMMAP_ADDR;
	/* memmap_entries: stage 2's, from the BIOS. */
	/* rsdp_paddr 0: Linux looks for the RSDP in the BIOS area itself. */
	if (initrd_len) {
		p.initrd.paddr = initrd_addr;
		p.initrd.size = initrd_len;
		p.start_info.nr_modules = 1;
		p.start_info.modlist_paddr = PVH_PARAMS_ADDR + offsetof(struct pvh_params, initrd);
	}

	fd = create_disk(disk);
	write_at(fd, disk, 0, &p, sizeof(p));
	write_at(fd, disk, PVH_INITRD_LBA * PVH_SECTOR_SIZE, initrd, initrd_len);
	finish_disk(fd, disk, PVH_INITRD_LBA * PVH_SECTOR_SIZE + initrd_len);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "kernel"))
		return make_kernel(argv + 2);
	if (argc == 6 && !strcmp(argv[1], "run"))
		return make_run(argv + 2);
	fprintf(stderr, "usage: mkpvh kernel VMLINUX BOOT STAGE2 DISK\n"
			"       mkpvh run INITRD_ADDR CMDLINE INITRD DISK\n");
	return 2;
}
