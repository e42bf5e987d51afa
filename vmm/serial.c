// SPDX-License-Identifier: GPL-2.0
/*
 * An 8250 UART at COM1 (0x3f8, IRQ 4), transmit side: what the guest
 * writes goes to stdout.  The transmitter is always empty, so with the
 * THRE interrupt enabled it interrupts after every byte, which Linux's tty
 * layer waits for.
 */
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "vmm.h"

#define COM1		0x3f8
#define COM1_IRQ	4
#define UART_IER	1
#define UART_IIR	2
#define UART_LCR	3
#define UART_LSR	5
#define IER_THRI	0x02	/* interrupt when the transmit register is empty */
#define IIR_NONE	0x01
#define IIR_THRI	0x02
#define LCR_DLAB	0x80
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

static uint8_t regs[8], dll, dlm;
static bool thre_pending;	/* the THRE interrupt has not been acknowledged */
static int irq_level;
static int vm_fd = -1;

/**
 * serial_init() - connect the UART's interrupt to the VM's irqchip
 * @fd: the VM fd
 */
void serial_init(int fd)
{
	vm_fd = fd;
}

static void update_irq(void)
{
	int level = (regs[UART_IER] & IER_THRI) && thre_pending;
	struct kvm_irq_level irq = { .irq = COM1_IRQ, .level = level };

	if (level == irq_level || vm_fd < 0)
		return;
	irq_level = level;
	if (ioctl(vm_fd, KVM_IRQ_LINE, &irq))
		vmm_die("KVM_IRQ_LINE: the in-kernel irqchip refused IRQ %d", COM1_IRQ);
}

/**
 * serial_io() - handle one byte of port I/O if it is COM1's
 * @port: I/O port
 * @in: a read
 * @data: the byte read or written
 *
 * Return: whether the port was COM1's.
 */
bool serial_io(uint16_t port, bool in, uint8_t *data)
{
	unsigned int reg = port - COM1;
	bool dlab;

	if (port < COM1 || port > COM1 + 7)
		return false;
	dlab = regs[UART_LCR] & LCR_DLAB;
	if (in) {
		if (dlab && reg <= 1)
			*data = reg ? dlm : dll;
		else if (reg == UART_LSR)
			*data = LSR_THRE | LSR_TEMT;
		else if (reg == UART_IIR) {
			/* Reading IIR acknowledges a THRE interrupt (it is the only source). */
			*data = (regs[UART_IER] & IER_THRI) && thre_pending ? IIR_THRI : IIR_NONE;
			thre_pending = false;
		} else
			*data = reg ? regs[reg] : 0;
	} else if (dlab && reg <= 1) {
		*(reg ? &dlm : &dll) = *data;
	} else if (reg == 0) {
		/* If stdout is gone the byte is lost and the guest keeps running. */
		ssize_t unused = write(STDOUT_FILENO, data, 1);

		(void)unused;
		thre_pending = true;	/* sent at once: empty again */
	} else {
		if (reg == UART_IER && (*data & IER_THRI) && !(regs[UART_IER] & IER_THRI))
			thre_pending = true;
		if (reg != UART_IIR)	/* the FCR: no FIFO is emulated */
			regs[reg] = *data;
	}
	update_irq();
	return true;
}
