// SPDX-License-Identifier: GPL-2.0
/*
 * An 8250 UART at COM1 (0x3f8, IRQ 4), without FIFOs: what the guest writes
 * goes to the terminal, what is typed waits in a buffer for the guest to
 * read. The transmitter is always empty, so with the THRE interrupt enabled
 * it interrupts after every byte, which Linux's tty layer waits for.
 */
#include <string.h>

#include "vmm.h"

#define COM1		0x3f8
#define UART_RBR	0	/* receive buffer (read), transmit holding (write) */
#define UART_IER	1
#define UART_IIR	2
#define UART_LCR	3
#define UART_LSR	5
#define IER_RDI		0x01	/* interrupt when data is available */
#define IER_THRI	0x02	/* interrupt when the transmit register is empty */
#define IIR_NONE	0x01
#define IIR_THRI	0x02
#define IIR_RDI		0x04
#define LCR_DLAB	0x80
#define LSR_DR		0x01
#define LSR_THRE	0x20
#define LSR_TEMT	0x40

static uint8_t regs[8], dll, dlm;
static bool thre_pending;	/* the THRE interrupt has not been acknowledged */
static int irq_level = -1;
static uint8_t rx[1024];
static size_t rx_head, rx_len;

/* The interrupt identification, highest priority first (8250 data sheet: RDA, THRE). */
static uint8_t iir(void)
{
	if ((regs[UART_IER] & IER_RDI) && rx_len)
		return IIR_RDI;
	if ((regs[UART_IER] & IER_THRI) && thre_pending)
		return IIR_THRI;
	return IIR_NONE;
}

static void update_irq(void)
{
	int level = iir() != IIR_NONE;

	if (level != irq_level) {
		irq_level = level;
		irq_line(IRQ_COM1, level);
	}
}

static uint8_t read_reg(unsigned int reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RBR:
		if (!rx_len)
			return 0;
		v = rx[rx_head];
		rx_head = (rx_head + 1) % sizeof(rx);
		rx_len--;
		return v;
	case UART_IIR:
		v = iir();
		/* Reading IIR acknowledges a THRE interrupt, if that is what it reports. */
		if (v == IIR_THRI)
			thre_pending = false;
		return v;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (rx_len ? LSR_DR : 0);
	default:
		return regs[reg];
	}
}

static void write_reg(unsigned int reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR:
		term_write(&v, 1);
		thre_pending = true;	/* sent at once: empty again */
		break;
	case UART_IER:
		/* Enabling THRI with the transmitter empty interrupts at once. */
		if ((v & IER_THRI) && !(regs[UART_IER] & IER_THRI))
			thre_pending = true;
		regs[reg] = v & 0x0f;
		break;
	case UART_IIR:		/* the FCR: no FIFO is emulated */
	case UART_LSR:		/* read-only */
		break;
	default:
		regs[reg] = v;
	}
}

static void serial_io(void *opaque, uint64_t reg, bool write, void *data, unsigned int len)
{
	uint8_t *b = data;
	bool dlab = regs[UART_LCR] & LCR_DLAB;

	(void)opaque;
	if (len != 1) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	if (dlab && reg <= 1) {		/* the divisor latch */
		if (write)
			*(reg ? &dlm : &dll) = *b;
		else
			*b = reg ? dlm : dll;
		return;
	}
	if (write)
		write_reg(reg, *b);
	else
		*b = read_reg(reg);
	update_irq();
}

/* Typed input (dev_lock held); what does not fit is dropped, like an overrun. */
static void serial_input(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len && rx_len < sizeof(rx); i++, rx_len++)
		rx[(rx_head + rx_len) % sizeof(rx)] = buf[i];
	update_irq();
}

/**
 * serial_init() - claim COM1's ports
 * @console: take the terminal's input (else the virtio console has it)
 */
void serial_init(bool console)
{
	bus_add_pio(COM1, 8, serial_io, NULL);
	if (console)
		stdin_set_sink(serial_input);
}
