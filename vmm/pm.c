// SPDX-License-Identifier: GPL-2.0
/*
 * How the guest ends the run: the ACPI PM1 registers (soft-off through
 * SLP_TYP/SLP_EN, ACPI 4.8.3) and the i8042's reset line.
 */
#include <string.h>

#include "vmm.h"

#define PM1_SCI_EN	(1u << 0)
#define PM1_SLP_TYP(v)	(((v) >> 10) & 7)
#define PM1_SLP_EN	(1u << 13)
#define SLP_TYP_S5	5	/* what the DSDT's \_S5 says */

#define I8042_DATA	0x60
#define I8042_CMD	0x64
#define I8042_RESET	0xfe	/* pulse the CPU reset line */

static uint16_t pm1_sts, pm1_en;

static uint32_t get(const void *data, unsigned int len)
{
	uint32_t v = 0;

	memcpy(&v, data, len);
	return v;
}

static void pm1_evt(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	uint32_t v = get(data, len) << (off * 8);

	(void)opaque;
	if (!write) {
		v = (pm1_sts | (uint32_t)pm1_en << 16) >> (off * 8);
		memcpy(data, &v, len);
		return;
	}
	for (unsigned int i = off; i < off + len && i < 4; i++) {
		uint8_t b = v >> (i * 8);

		if (i < 2)	/* status bits are write-one-to-clear */
			pm1_sts &= ~((uint16_t)b << (i * 8));
		else		/* only the bytes written change */
			pm1_en = (pm1_en & ~(0xff << ((i - 2) * 8))) | b << ((i - 2) * 8);
	}
}

static void pm1_cnt(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	uint32_t v = get(data, len) << (off * 8);

	(void)opaque;
	if (!write) {
		v = PM1_SCI_EN >> (off * 8);	/* always in ACPI mode */
		memcpy(data, &v, len);
		return;
	}
	if ((v & PM1_SLP_EN) && PM1_SLP_TYP(v) == SLP_TYP_S5)
		vmm_request_exit(0);
}

static void i8042(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	(void)off;
	if (!write) {
		memset(data, 0, len);	/* no data, input buffer empty */
		return;
	}
	if (opaque && *(uint8_t *)data == I8042_RESET)
		vmm_request_exit(0);
}

/**
 * pm_init() - claim the PM1 and i8042 ports
 */
void pm_init(void)
{
	bus_add_pio(PM1_EVT_PORT, 4, pm1_evt, NULL);
	bus_add_pio(PM1_CNT_PORT, 2, pm1_cnt, NULL);
	bus_add_pio(I8042_DATA, 1, i8042, NULL);
	bus_add_pio(I8042_CMD, 1, i8042, (void *)1);	/* non-NULL: the command port */
}
