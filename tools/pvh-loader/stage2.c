// SPDX-License-Identifier: GPL-2.0
/*
 * stage2.c: read the kernel and the initramfs from the two disks straight
 * to their physical addresses (ATA PIO, the fastest path through Bochs's
 * emulated string I/O), then enter the kernel at its PVH entry.
 *
 * boot.S calls stage2_main() in 32-bit flat protected mode with the number
 * of memory map entries it wrote at PVH_MEMMAP_ADDR.  Messages go to COM1,
 * the test machine's console.
 */
#include "pvh-boot.h"

#include <stddef.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define COM1		0x3f8

/* The primary ATA channel: the kernel disk is its master, the run disk its slave. */
#define ATA_DATA	0x1f0
#define ATA_COUNT	0x1f2
#define ATA_LBA_LOW	0x1f3
#define ATA_LBA_MID	0x1f4
#define ATA_LBA_HIGH	0x1f5
#define ATA_DEVICE	0x1f6
#define ATA_STATUS	0x1f7
#define ATA_COMMAND	0x1f7
#define ATA_CONTROL	0x3f6

#define ATA_BSY		0x80
#define ATA_DRQ		0x08
#define ATA_ERR		0x01
#define ATA_READ_SECTORS 0x20
#define ATA_NIEN	0x02

#define KERNEL_DISK	0
#define RUN_DISK	1

void stage2_main(u32 memmap_entries);

static inline void outb(u16 port, u8 v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void putc(char c)
{
	int i;

	if (c == '\n')
		putc('\r');
	for (i = 0; i < 1000000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, c);
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void puthex(u64 v)
{
	int shift;

	puts("0x");
	for (shift = 60; shift > 0 && !(v >> shift); shift -= 4)
		;
	for (; shift >= 0; shift -= 4)
		putc("0123456789abcdef"[(v >> shift) & 0xf]);
}

static void __attribute__((noreturn)) fail(const char *why)
{
	puts("pvh-boot: ");
	puts(why);
	puts("\n");
	for (;;)
		asm volatile("cli; hlt");
}

/* gcc may call this for structure clears; rep stos is fast in Bochs. */
void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

static void ata_wait(u8 mask, u8 want)
{
	u32 i;
	u8 s;

	for (i = 0; i < 100000000; i++) {
		s = inb(ATA_STATUS);
		if (s & ATA_ERR)
			fail("disk read error");
		if (!(s & ATA_BSY) && (s & mask) == want)
			return;
	}
	fail("disk timeout");
}

/*
 * Read count sectors from lba on one disk to buf, 256 per command (LBA28
 * is plenty for these disks).  rep insw is what Bochs moves in bulk.
 */
static void ata_read(int disk, u32 lba, u32 count, void *buf)
{
	u32 n, i;

	outb(ATA_CONTROL, ATA_NIEN);
	while (count) {
		n = count > 256 ? 256 : count;
		ata_wait(ATA_BSY, 0);
		outb(ATA_DEVICE, 0xe0 | (disk << 4) | ((lba >> 24) & 0x0f));
		outb(ATA_COUNT, n & 0xff);	/* 0 means 256 */
		outb(ATA_LBA_LOW, lba);
		outb(ATA_LBA_MID, lba >> 8);
		outb(ATA_LBA_HIGH, lba >> 16);
		outb(ATA_COMMAND, ATA_READ_SECTORS);
		for (i = 0; i < n; i++) {
			u32 words = PVH_SECTOR_SIZE / 2;

			ata_wait(ATA_DRQ, ATA_DRQ);
			asm volatile("rep insw"
				     : "+D"(buf), "+c"(words) : "d"(ATA_DATA) : "memory");
		}
		lba += n;
		count -= n;
	}
}

static u32 sectors(u64 bytes)
{
	return (bytes + PVH_SECTOR_SIZE - 1) / PVH_SECTOR_SIZE;
}

void __attribute__((section(".text.entry"))) stage2_main(u32 memmap_entries)
{
	static u8 sector[PVH_SECTOR_SIZE] __attribute__((aligned(16)));
	struct pvh_params *params = (void *)PVH_PARAMS_ADDR;
	struct pvh_kernel k;

	ata_read(KERNEL_DISK, PVH_KERNEL_HDR_LBA, 1, sector);
	k = *(struct pvh_kernel *)sector;
	if (k.magic != PVH_KERNEL_MAGIC)
		fail("no kernel on the kernel disk (ATA primary master)");
	if (k.start + k.mem_size > 0xffffffffull || k.image_size > k.mem_size)
		fail("bad kernel header");
	ata_read(RUN_DISK, 0, sectors(sizeof(*params)), params);
	if (params->magic != PVH_PARAMS_MAGIC)
		fail("no parameters on the run disk (ATA primary slave)");

	puts("pvh-boot: kernel ");
	puthex(k.start);
	puts("-");
	puthex(k.start + k.mem_size);
	puts(", initramfs ");
	puthex(params->initrd.paddr);
	puts(" (");
	puthex(params->initrd.size);
	puts(" bytes)\n");

	/* Whole sectors: the image and the initramfs are padded with zeros. */
	ata_read(KERNEL_DISK, PVH_KERNEL_LBA, sectors(k.image_size), (void *)(u32)k.start);
	memset((void *)(u32)(k.start + k.image_size), 0, k.mem_size - k.image_size);
	if (params->start_info.nr_modules)
		ata_read(RUN_DISK, PVH_INITRD_LBA, sectors(params->initrd.size),
			 (void *)(u32)params->initrd.paddr);

	params->start_info.memmap_entries = memmap_entries;
	puts("pvh-boot: entering Linux\n");
	/* PVH: flat 32-bit segments (boot.S's), paging off, EBX = start info. */
	asm volatile("jmp *%0"
		     : : "r"(k.entry), "b"(&params->start_info), "S"(0), "D"(0)
		     : "memory");
	__builtin_unreachable();
}
