/* SPDX-License-Identifier: GPL-2.0 */
/*
 * boot.S: the boot sector of the kernel disk (see pvh-boot.h).
 *
 * What needs the BIOS is done here, in real mode: load stage 2 from the
 * disk and ask for the memory map (INT 15h, E820h), written straight in
 * the PVH memory map format.  Then switch to 32-bit flat protected mode,
 * the mode the PVH entry wants, and call stage 2 with the map's length.
 */
#include "pvh-boot.h"

#define COM1		0x3f8
#define SMAP		0x534d4150

	.code16
	.text
	.globl start
start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	ljmp	$0, $1f			/* some BIOSes enter at 07c0:0000 */
1:	cld
	movb	%dl, boot_drive

	/* 115200 8N1; the line "pvh-boot" also tells the host a boot began. */
	movw	$COM1 + 3, %dx
	movb	$0x80, %al
	outb	%al, %dx
	movw	$COM1, %dx
	movb	$1, %al
	outb	%al, %dx
	incw	%dx
	xorb	%al, %al
	outb	%al, %dx
	movw	$COM1 + 3, %dx
	movb	$3, %al
	outb	%al, %dx
	movw	$msg_boot, %si
	call	print

	movw	$dap, %si
	movb	boot_drive, %dl
	movb	$0x42, %ah
	int	$0x13
	movw	$msg_disk, %si
	jc	fail

	/*
	 * E820 entries are 20 bytes, the PVH ones 24 with a reserved word
	 * that must be 0: ask for 24 and clear that word after each call.
	 */
	movw	$PVH_MEMMAP_ADDR, %di
	xorl	%ebx, %ebx
	xorw	%bp, %bp
2:	movl	$0xe820, %eax
	movl	$PVH_MEMMAP_ENTRY_SIZE, %ecx
	movl	$SMAP, %edx
	movl	$1, 20(%di)		/* ACPI 3 attributes: "valid" if unset */
	int	$0x15
	jc	3f
	cmpl	$SMAP, %eax
	jne	3f
	movl	$0, 20(%di)
	addw	$PVH_MEMMAP_ENTRY_SIZE, %di
	incw	%bp
	cmpw	$PVH_MEMMAP_MAX, %bp
	jae	3f
	testl	%ebx, %ebx
	jnz	2b
3:	movw	$msg_e820, %si
	testw	%bp, %bp
	jz	fail

	inb	$0x92, %al		/* A20 on (fast gate), no reset */
	orb	$2, %al
	andb	$0xfe, %al
	outb	%al, $0x92

	lgdtl	gdt_desc
	movl	%cr0, %eax
	orb	$1, %al
	movl	%eax, %cr0
	ljmpl	$0x08, $pm32

fail:
	call	print
1:	hlt
	jmp	1b

/* Print the string at %si on COM1, waiting for the transmitter each time. */
print:
	lodsb
	testb	%al, %al
	jz	2f
	movb	%al, %cl
	movw	$COM1 + 5, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	movw	$COM1, %dx
	movb	%cl, %al
	outb	%al, %dx
	jmp	print
2:	ret

	.code32
pm32:
	movl	$0x10, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$PVH_MEMMAP_ADDR, %esp	/* the stack grows down from the map */
	movzwl	%bp, %eax
	pushl	%eax
	movl	$PVH_STAGE2_ADDR, %eax
	call	*%eax
1:	hlt
	jmp	1b

msg_boot:
	.asciz	"pvh-boot: starting\r\n"
msg_disk:
	.asciz	"pvh-boot: cannot read stage 2\r\n"
msg_e820:
	.asciz	"pvh-boot: no BIOS memory map\r\n"
boot_drive:
	.byte	0

	.p2align 2
dap:					/* INT 13h AH=42h disk address packet */
	.byte	16, 0
	.word	PVH_STAGE2_SECTORS
	.word	PVH_STAGE2_ADDR, 0	/* offset, segment */
	.quad	PVH_STAGE2_LBA

	.p2align 3
gdt:
	.quad	0
	.quad	0x00cf9b000000ffff	/* 0x08: code, base 0, limit 4G, 32-bit */
	.quad	0x00cf93000000ffff	/* 0x10: data, base 0, limit 4G */
gdt_desc:
	.word	gdt_desc - gdt - 1
	.long	gdt

	.org	510
	.byte	0x55, 0xaa
