// SPDX-License-Identifier: GPL-2.0
/*
 * Port I/O and MMIO dispatch: a short list of ranges per address space.
 * Unclaimed reads return all ones, as on a PC bus with nothing behind it.
 */
#include <string.h>

#include "vmm.h"

#define MAX_RANGES 64

struct range {
	uint64_t base, len;
	io_handler_t fn;
	void *opaque;
};

static struct range pio[MAX_RANGES], mmio[MAX_RANGES];
static int npio, nmmio;

static void add(struct range *r, int *n, uint64_t base, uint64_t len, io_handler_t fn,
		void *opaque)
{
	if (*n == MAX_RANGES)
		vmm_die("too many devices");
	r[(*n)++] = (struct range){ .base = base, .len = len, .fn = fn, .opaque = opaque };
}

/**
 * bus_add_pio() - claim a range of I/O ports
 * @base: first port
 * @len: number of ports
 * @fn: called for each access inside the range, with the offset from @base
 * @opaque: passed to @fn
 */
void bus_add_pio(uint16_t base, uint16_t len, io_handler_t fn, void *opaque)
{
	add(pio, &npio, base, len, fn, opaque);
}

/**
 * bus_add_mmio() - claim a range of guest-physical addresses
 * @base: first address (0: not mapped yet, see bus_move_mmio())
 * @len: length in bytes
 * @fn: called for each access inside the range, with the offset from @base
 * @opaque: passed to @fn, and the key for bus_move_mmio()
 */
void bus_add_mmio(uint64_t base, uint64_t len, io_handler_t fn, void *opaque)
{
	add(mmio, &nmmio, base, len, fn, opaque);
}

/**
 * bus_move_mmio() - move an MMIO range, as when the guest programs a BAR
 * @opaque: the range's opaque pointer
 * @base: its new address, or 0 to unmap it
 */
void bus_move_mmio(void *opaque, uint64_t base)
{
	for (int i = 0; i < nmmio; i++)
		if (mmio[i].opaque == opaque)
			mmio[i].base = base;
}

static bool dispatch(struct range *r, int n, uint64_t addr, bool write, void *data,
		     unsigned int len)
{
	for (int i = 0; i < n; i++) {
		if (!r[i].base && r == mmio)
			continue;
		if (addr >= r[i].base && addr + len <= r[i].base + r[i].len) {
			r[i].fn(r[i].opaque, addr - r[i].base, write, data, len);
			return true;
		}
	}
	if (!write)
		memset(data, 0xff, len);
	return false;
}

/**
 * bus_pio() - one port I/O access
 * @port: the port
 * @write: an OUT
 * @data: the data, read or written
 * @len: 1, 2 or 4
 *
 * Return: whether a device claimed it.
 */
bool bus_pio(uint16_t port, bool write, void *data, unsigned int len)
{
	return dispatch(pio, npio, port, write, data, len);
}

/**
 * bus_mmio() - one MMIO access
 * @addr: guest-physical address
 * @write: a store
 * @data: the data, read or written
 * @len: 1 to 8
 *
 * Return: whether a device claimed it.
 */
bool bus_mmio(uint64_t addr, bool write, void *data, unsigned int len)
{
	return dispatch(mmio, nmmio, addr, write, data, len);
}
