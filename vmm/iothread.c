// SPDX-License-Identifier: GPL-2.0
/*
 * The I/O thread: one epoll loop over standard input, the virtqueues'
 * ioeventfds and the tap devices. Handlers take dev_lock themselves.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "vmm.h"

#define MAX_WATCHES 64

struct watch {
	int fd;
	io_ready_t fn;
	void *opaque;
};

static struct watch watches[MAX_WATCHES];
static int nwatches;
static int epfd = -1;
static void (*sink)(const uint8_t *buf, size_t len);

static int epoll(void)
{
	if (epfd < 0)
		epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		vmm_die("epoll_create1: %s", strerror(errno));
	return epfd;
}

/**
 * iothread_add_fd() - call @fn in the I/O thread whenever @fd is readable
 * @fd: the file descriptor
 * @fn: the handler
 * @opaque: passed to @fn
 */
void iothread_add_fd(int fd, io_ready_t fn, void *opaque)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (nwatches == MAX_WATCHES)
		vmm_die("too many devices");
	watches[nwatches] = (struct watch){ .fd = fd, .fn = fn, .opaque = opaque };
	ev.data.ptr = &watches[nwatches++];
	if (epoll_ctl(epoll(), EPOLL_CTL_ADD, fd, &ev))
		vmm_die("epoll_ctl: %s", strerror(errno));
}

/**
 * iothread_watch() - stop or resume watching a file descriptor
 * @fd: one given to iothread_add_fd()
 * @on: whether to call its handler when it is readable
 */
void iothread_watch(int fd, bool on)
{
	for (int i = 0; i < nwatches; i++) {
		struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &watches[i] };

		if (watches[i].fd == fd)
			epoll_ctl(epoll(), EPOLL_CTL_MOD, fd, &ev);
	}
}

/**
 * iothread_remove_fd() - stop watching a file descriptor for good
 * @fd: one given to iothread_add_fd()
 */
void iothread_remove_fd(int fd)
{
	epoll_ctl(epoll(), EPOLL_CTL_DEL, fd, NULL);
}

/**
 * stdin_set_sink() - which device gets what is typed
 * @fn: called with dev_lock held
 */
void stdin_set_sink(void (*fn)(const uint8_t *buf, size_t len))
{
	sink = fn;
}

static void stdin_ready(void *opaque, bool error)
{
	uint8_t buf[256];
	ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
	size_t n;

	(void)opaque;
	(void)error;		/* a hang-up still reads what is left, then 0 */
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		/* End of input: stop reading; the guest keeps running. */
		epoll_ctl(epoll(), EPOLL_CTL_DEL, STDIN_FILENO, NULL);
		return;
	}
	n = term_filter_input(buf, r);
	pthread_mutex_lock(&dev_lock);
	if (sink && n)
		sink(buf, n);
	pthread_mutex_unlock(&dev_lock);
}

static void *iothread(void *arg)
{
	(void)arg;
	/* Nothing the guest or the terminal sends is read before the process is confined. */
	vmm_wait_for_start("io");
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(epoll(), ev, 16, -1);

		for (int i = 0; i < n; i++) {
			struct watch *w = ev[i].data.ptr;

			/* Errors come even with no events asked for: each handler must act. */
			w->fn(w->opaque, ev[i].events & (EPOLLERR | EPOLLHUP));
		}
	}
	return NULL;
}

/**
 * iothread_start() - watch standard input and start the thread
 */
void iothread_start(void)
{
	pthread_t t;
	struct epoll_event ev = { .events = EPOLLIN };

	/* Standard input may be /dev/null or a regular file, which epoll refuses. */
	if (nwatches < MAX_WATCHES) {
		watches[nwatches] = (struct watch){ .fd = STDIN_FILENO, .fn = stdin_ready };
		ev.data.ptr = &watches[nwatches];
		if (epoll_ctl(epoll(), EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0)
			nwatches++;
	}
	if (pthread_create(&t, NULL, iothread, NULL))
		vmm_die("cannot start the I/O thread");
}
