// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's split-virtqueue walker against well-formed and malicious
 * descriptor chains: a bad chain must mark the device NEEDS_RESET and never
 * reach memory outside the guest.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "virtio.h"

#define RAM_SIZE	0x10000
#define DESC_GPA	0x1000
#define AVAIL_GPA	0x2000
#define USED_GPA	0x3000
#define QSIZE		8

struct vmm vm;
pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t ram[RAM_SIZE];
static struct virtio_dev dev;

void *gpa_to_hva(uint64_t gpa, uint64_t len)
{
	return gpa < RAM_SIZE && len <= RAM_SIZE - gpa ? ram + gpa : NULL;
}

bool virtio_running(struct virtio_dev *vd)
{
	return (vd->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(vd->status & VIRTIO_CONFIG_S_NEEDS_RESET);
}

void virtio_needs_reset(struct virtio_dev *vd)
{
	vd->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
}

void vmm_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	exit(1);
}

static struct vring_desc *desc = (struct vring_desc *)(ram + DESC_GPA);
static struct vring_avail *avail = (struct vring_avail *)(ram + AVAIL_GPA);
static struct vring_used *used = (struct vring_used *)(ram + USED_GPA);

static void setup(void)
{
	struct virtqueue *vq = &dev.vq[0];

	memset(ram, 0, sizeof(ram));
	memset(&dev, 0, sizeof(dev));
	dev.name = "test";
	dev.nqueues = 1;
	dev.status = VIRTIO_CONFIG_S_DRIVER_OK;
	vq->size = QSIZE;
	vq->enabled = true;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
}

static void set_desc(int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc[i] = (struct vring_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void offer(uint16_t head)
{
	avail->ring[avail->idx % QSIZE] = head;
	avail->idx++;
}

TEST(readable_then_writable_chain)
{
	struct vq_elem e;

	setup();
	set_desc(3, 0x4000, 16, VRING_DESC_F_NEXT, 5);
	set_desc(5, 0x5000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 6);
	set_desc(6, 0x6000, 1, VRING_DESC_F_WRITE, 0);
	offer(3);
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 1);
	TEST_ASSERT_EQ(e.head, 3);
	TEST_ASSERT_EQ(e.nout, 1);
	TEST_ASSERT_EQ(e.nin, 2);
	TEST_ASSERT(e.out[0].iov_base == ram + 0x4000 && e.out[0].iov_len == 16, "out[0]");
	TEST_ASSERT(e.in[1].iov_base == ram + 0x6000 && e.in[1].iov_len == 1, "in[1]");
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 0);		/* nothing more */
	vq_push(&dev, 0, &e, 513);
	TEST_ASSERT_EQ(used->idx, 1);
	TEST_ASSERT_EQ(used->ring[0].id, 3);
	TEST_ASSERT_EQ(used->ring[0].len, 513);
	TEST_ASSERT_EQ(dev.status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
}

TEST(ring_wraps)
{
	struct vq_elem e;

	setup();
	set_desc(0, 0x4000, 8, 0, 0);
	for (int i = 0; i < 3 * QSIZE; i++) {
		offer(0);
		TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 1);
		vq_push(&dev, 0, &e, 0);
	}
	TEST_ASSERT_EQ(used->idx, 3 * QSIZE);
}

static void expect_broken(void)
{
	struct vq_elem e;

	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 0);
	TEST_ASSERT(dev.status & VIRTIO_CONFIG_S_NEEDS_RESET, "the device was not marked broken");
	/* Once broken, nothing more is taken, even a good chain. */
	set_desc(1, 0x4000, 8, 0, 0);
	offer(1);
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 0);
}

TEST(loop_is_refused)
{
	setup();
	set_desc(0, 0x4000, 8, VRING_DESC_F_NEXT, 1);
	set_desc(1, 0x4000, 8, VRING_DESC_F_NEXT, 0);
	offer(0);
	expect_broken();
}

TEST(index_out_of_range_is_refused)
{
	setup();
	set_desc(0, 0x4000, 8, VRING_DESC_F_NEXT, QSIZE);
	offer(0);
	expect_broken();
}

TEST(head_out_of_range_is_refused)
{
	setup();
	offer(QSIZE + 3);
	expect_broken();
}

TEST(buffer_outside_ram_is_refused)
{
	setup();
	set_desc(0, RAM_SIZE - 8, 16, 0, 0);
	offer(0);
	expect_broken();
}

TEST(huge_length_is_refused)
{
	setup();
	set_desc(0, 0x4000, 0xffffffff, VRING_DESC_F_WRITE, 0);
	offer(0);
	expect_broken();
}

TEST(readable_after_writable_is_refused)
{
	setup();
	set_desc(0, 0x4000, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(1, 0x5000, 8, 0, 0);
	offer(0);
	expect_broken();
}

TEST(indirect_is_refused)
{
	setup();
	set_desc(0, 0x4000, 16, VRING_DESC_F_INDIRECT, 0);
	offer(0);
	expect_broken();
}

TEST(avail_index_too_far_ahead_is_refused)
{
	setup();
	set_desc(0, 0x4000, 8, 0, 0);
	avail->idx = QSIZE + 1;
	expect_broken();
}

TEST(stopped_device_takes_nothing)
{
	struct vq_elem e;

	setup();
	set_desc(0, 0x4000, 8, 0, 0);
	offer(0);
	dev.status = 0;
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 0);
	dev.status = VIRTIO_CONFIG_S_DRIVER_OK;
	dev.vq[0].enabled = false;
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 0);
}

/* The device's used index is its own: a guest rewriting the ring's cannot steer writes. */
TEST(used_index_is_private)
{
	struct vq_elem e;

	setup();
	set_desc(0, 0x4000, 8, 0, 0);
	offer(0);
	offer(0);
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 1);
	vq_push(&dev, 0, &e, 1);
	used->idx = 5;		/* the guest scribbles */
	TEST_ASSERT_EQ(vq_pop(&dev, 0, &e), 1);
	vq_push(&dev, 0, &e, 2);
	TEST_ASSERT_EQ(used->idx, 2);
	TEST_ASSERT_EQ(used->ring[1].len, 2);
}

TEST(iov_helpers)
{
	uint8_t a[3], b[5], out[8];
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };

	TEST_ASSERT_EQ(iov_size(iov, 2), 8);
	TEST_ASSERT_EQ(iov_copy_to(iov, 2, "abcdefghij", 10), 8);
	TEST_ASSERT(!memcmp(a, "abc", 3) && !memcmp(b, "defgh", 5), "scattered wrong");
	TEST_ASSERT_EQ(iov_copy_from(iov, 2, out, 6), 6);
	TEST_ASSERT(!memcmp(out, "abcdef", 6), "gathered wrong");
}
