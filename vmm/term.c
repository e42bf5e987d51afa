// SPDX-License-Identifier: GPL-2.0
/*
 * The host terminal: raw mode while the guest runs (when standard input is
 * a terminal), restored on every way out, and the Ctrl-A x escape to quit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmm.h"

#define CTRL_A	0x01

static struct termios saved;
static bool raw;
static bool escape;

/**
 * term_restore() - put the terminal back as it was; safe to call twice
 */
void term_restore(void)
{
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	raw = false;
}

/**
 * term_init() - raw mode if standard input is a terminal
 *
 * Keys then go to the guest as typed (Ctrl-C included); only Ctrl-A x is ours.
 */
void term_init(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved))
		return;
	t = saved;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t))
		return;
	raw = true;
	atexit(term_restore);
}

/**
 * term_filter_input() - take out the escape sequences
 * @buf: typed bytes, edited in place
 * @len: how many
 *
 * Ctrl-A x ends the run; Ctrl-A Ctrl-A sends one Ctrl-A; Ctrl-A and any
 * other key sends that key.
 *
 * Return: how many bytes are left for the guest.
 */
size_t term_filter_input(uint8_t *buf, size_t len)
{
	size_t out = 0;

	for (size_t i = 0; i < len; i++) {
		if (escape) {
			escape = false;
			if (buf[i] == 'x') {
				term_restore();
				fprintf(stderr, "\r\nminikvm: Ctrl-A x: quitting\n");
				vmm_request_exit(0);
				return out;
			}
			buf[out++] = buf[i];
		} else if (buf[i] == CTRL_A) {
			escape = true;
		} else {
			buf[out++] = buf[i];
		}
	}
	return out;
}

/**
 * term_write() - guest output to standard output
 * @buf: bytes
 * @len: how many
 *
 * If standard output is gone the bytes are lost and the guest keeps running.
 */
void term_write(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = write(STDOUT_FILENO, p, len);

		/* A kick at the end interrupts a write to a stuck reader: give up then. */
		if (r < 0 && errno == EINTR && !vmm_exiting())
			continue;
		if (r <= 0)
			return;
		p += r;
		len -= r;
	}
}
