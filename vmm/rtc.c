// SPDX-License-Identifier: GPL-2.0
/*
 * The CMOS RTC (MC146818) at ports 0x70/0x71: the host's UTC time in BCD,
 * 24-hour mode, and 128 bytes of CMOS RAM. No alarm or periodic interrupt.
 */
#include <string.h>
#include <time.h>

#include "vmm.h"

#define RTC_INDEX	0x70
#define REG_SECONDS	0x00
#define REG_MINUTES	0x02
#define REG_HOURS	0x04
#define REG_WEEKDAY	0x06
#define REG_DAY		0x07
#define REG_MONTH	0x08
#define REG_YEAR	0x09
#define REG_A		0x0a
#define REG_B		0x0b
#define REG_C		0x0c
#define REG_D		0x0d
#define REG_CENTURY	0x32
#define REG_B_24H	0x02
#define REG_D_VRT	0x80	/* the battery is fine */

static uint8_t index_reg, cmos[128];

static uint8_t bcd(int v)
{
	return (v / 10) << 4 | (v % 10);
}

static uint8_t read_reg(uint8_t reg)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	switch (reg) {
	case REG_SECONDS: return bcd(tm.tm_sec);
	case REG_MINUTES: return bcd(tm.tm_min);
	case REG_HOURS: return bcd(tm.tm_hour);
	case REG_WEEKDAY: return bcd(tm.tm_wday + 1);
	case REG_DAY: return bcd(tm.tm_mday);
	case REG_MONTH: return bcd(tm.tm_mon + 1);
	case REG_YEAR: return bcd(tm.tm_year % 100);
	case REG_CENTURY: return bcd((tm.tm_year + 1900) / 100);
	case REG_A: return 0x26;	/* 32.768 kHz base, no update in progress */
	case REG_B: return REG_B_24H;	/* BCD, 24 hours */
	case REG_C: return 0;		/* no interrupt flags */
	case REG_D: return REG_D_VRT;
	default: return cmos[reg];
	}
}

static void rtc_io(void *opaque, uint64_t off, bool write, void *data, unsigned int len)
{
	uint8_t *b = data;

	(void)opaque;
	if (len != 1) {
		if (!write)
			memset(data, 0xff, len);
		return;
	}
	if (off == 0) {
		if (write)
			index_reg = *b & 0x7f;	/* bit 7 is the NMI mask */
		else
			*b = 0xff;
	} else if (write) {
		if (index_reg > REG_D && index_reg != REG_CENTURY)
			cmos[index_reg] = *b;	/* the clock itself cannot be set */
	} else {
		*b = read_reg(index_reg);
	}
}

/**
 * rtc_init() - claim the RTC's ports
 */
void rtc_init(void)
{
	time_t now = time(NULL);
	struct tm tm;

	/*
	 * glibc's gmtime_r() loads the time zone (it opens /etc/localtime) on
	 * its first call: make that call now, before the seccomp filter
	 * forbids opening files.
	 */
	gmtime_r(&now, &tm);
	bus_add_pio(RTC_INDEX, 2, rtc_io, NULL);
}
