// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_GET_STATS_FD: the binary statistics of a VM and of a vCPU.  The file
 * must be laid out as api.rst describes, name KVM's counters, and count the
 * exits a guest makes.
 */
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_util.h"

struct stats {
	int fd;
	struct kvm_stats_header h;
	char id[256];
	char *descs;			/* num_desc entries of desc_size bytes */
	size_t desc_size;
};

static void stats_open(struct stats *st, int fd)
{
	size_t bytes;

	st->fd = fd;
	TEST_ASSERT(fd >= 0, "KVM_GET_STATS_FD: %s", strerror(errno));
	TEST_ASSERT_EQ(pread(fd, &st->h, sizeof(st->h), 0), sizeof(st->h));
	TEST_ASSERT_EQ(st->h.flags, 0);
	TEST_ASSERT(st->h.name_size > 0 && st->h.name_size < sizeof(st->id),
		    "name_size %u", st->h.name_size);
	TEST_ASSERT(st->h.num_desc > 0, "no descriptors");
	st->desc_size = sizeof(struct kvm_stats_desc) + st->h.name_size;
	/* api.rst: the id, the descriptors and the data follow each other. */
	TEST_ASSERT_EQ(st->h.id_offset, sizeof(st->h));
	TEST_ASSERT_EQ(st->h.desc_offset, st->h.id_offset + st->h.name_size);
	TEST_ASSERT_EQ(st->h.data_offset, st->h.desc_offset + st->h.num_desc * st->desc_size);
	memset(st->id, 0, sizeof(st->id));
	TEST_ASSERT_EQ(pread(fd, st->id, st->h.name_size, st->h.id_offset), st->h.name_size);
	bytes = st->h.num_desc * st->desc_size;
	st->descs = malloc(bytes);
	TEST_ASSERT(st->descs, "malloc");
	TEST_ASSERT_EQ(pread(fd, st->descs, bytes, st->h.desc_offset), (ssize_t)bytes);
}

static struct kvm_stats_desc *stats_desc(struct stats *st, uint32_t i)
{
	return (struct kvm_stats_desc *)(st->descs + i * st->desc_size);
}

/* The first value of the counter called @name; -1 when there is none. */
static int64_t stats_value(struct stats *st, const char *name)
{
	for (uint32_t i = 0; i < st->h.num_desc; i++) {
		struct kvm_stats_desc *d = stats_desc(st, i);
		uint64_t v;

		if (strcmp(d->name, name))
			continue;
		TEST_ASSERT_EQ(pread(st->fd, &v, sizeof(v), st->h.data_offset + d->offset),
			       sizeof(v));
		return v;
	}
	return -1;
}

static void stats_close(struct stats *st)
{
	free(st->descs);
	close(st->fd);
}

/* Every descriptor is well formed and its data lies inside the file. */
static void check_descs(struct stats *st)
{
	off_t end = lseek(st->fd, 0, SEEK_END);
	uint64_t data_bytes = 0;

	(void)end;
	for (uint32_t i = 0; i < st->h.num_desc; i++) {
		struct kvm_stats_desc *d = stats_desc(st, i);
		uint32_t type = d->flags & KVM_STATS_TYPE_MASK;
		uint32_t unit = d->flags & KVM_STATS_UNIT_MASK;

		TEST_ASSERT(d->name[0] && strnlen(d->name, st->h.name_size) < st->h.name_size,
			    "descriptor %u has no name", i);
		TEST_ASSERT(type <= KVM_STATS_TYPE_MAX, "%s: type %#x", d->name, type);
		TEST_ASSERT(unit <= KVM_STATS_UNIT_MAX, "%s: unit %#x", d->name, unit);
		TEST_ASSERT(d->size >= 1, "%s: size 0", d->name);
		if (d->offset + d->size * 8ULL > data_bytes)
			data_bytes = d->offset + d->size * 8ULL;
	}
	/* Reading the last value works; one byte past the data reads nothing. */
	{
		char c;

		TEST_ASSERT_EQ(pread(st->fd, &c, 1, st->h.data_offset + data_bytes - 1), 1);
		TEST_ASSERT_EQ(pread(st->fd, &c, 1, st->h.data_offset + data_bytes), 0);
	}
}

TEST(vm_stats_layout)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct stats st;
	char want[64];
	char c = 0;

	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_BINARY_STATS_FD), 1);
	stats_open(&st, ioctl(vm->fd, KVM_GET_STATS_FD, 0));
	snprintf(want, sizeof(want), "kvm-%d", getpid());
	TEST_ASSERT(!strcmp(st.id, want), "id \"%s\", not \"%s\"", st.id, want);
	check_descs(&st);
	TEST_ASSERT(stats_value(&st, "remote_tlb_flush") >= 0, "no remote_tlb_flush");
	TEST_ASSERT(stats_value(&st, "pages_4k") >= 0, "no pages_4k");
	/* Read-only. */
	TEST_ASSERT_ERRNO(write(st.fd, &c, 1), EBADF);
	/* The fd keeps what it reads alive after the VM's own fds are gone. */
	vm_free(vm);
	TEST_ASSERT(stats_value(&st, "remote_tlb_flush") >= 0, "stats gone with the VM fd");
	stats_close(&st);
}

static void guest_exits(void)
{
	for (int i = 0; i < 5; i++)
		guest_outb(0x80, i);
	asm volatile("hlt");
	GUEST_SYNC(1);
}

/* The vCPU's counters move with the exits its guest makes. */
TEST(vcpu_stats_count_exits)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_exits);
	int64_t exits, io, halts, pages;
	struct stats st, vst;
	struct ucall uc;
	char want[64];

	stats_open(&st, ioctl(vcpu->fd, KVM_GET_STATS_FD, 0));
	snprintf(want, sizeof(want), "kvm-%d/vcpu-0", getpid());
	TEST_ASSERT(!strcmp(st.id, want), "id \"%s\", not \"%s\"", st.id, want);
	check_descs(&st);
	exits = stats_value(&st, "exits");
	io = stats_value(&st, "io_exits");
	halts = stats_value(&st, "halt_exits");
	TEST_ASSERT(exits >= 0 && io >= 0 && halts >= 0, "exits %ld io_exits %ld halt_exits %ld",
		    (long)exits, (long)io, (long)halts);
	for (int i = 0; i < 5; i++) {
		vcpu_run(vcpu);
		TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
		TEST_ASSERT_EQ(vcpu->run->io.port, 0x80);
	}
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	/* Five OUTs and the ucall's, one HLT; nested page faults may add exits. */
	TEST_ASSERT_EQ(stats_value(&st, "io_exits") - io, 6);
	TEST_ASSERT_EQ(stats_value(&st, "halt_exits") - halts, 1);
	TEST_ASSERT(stats_value(&st, "exits") - exits >= 7, "exits %ld -> %ld", (long)exits,
		    (long)stats_value(&st, "exits"));

	/* The guest's memory is mapped now. */
	stats_open(&vst, ioctl(vm->fd, KVM_GET_STATS_FD, 0));
	pages = stats_value(&vst, "pages_4k") + stats_value(&vst, "pages_2m");
	TEST_ASSERT(pages > 0, "pages_4k + pages_2m = %ld", (long)pages);
	stats_close(&vst);
	stats_close(&st);
	vm_free(vm);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* KVM_RUN ended by a signal counts as a signal exit. */
TEST(vcpu_stats_count_signal_exit)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_exits);
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigset_t block, old;
	int64_t before;
	struct stats st;

	stats_open(&st, ioctl(vcpu->fd, KVM_GET_STATS_FD, 0));
	before = stats_value(&st, "signal_exits");
	TEST_ASSERT(before >= 0, "no signal_exits");
	sigaction(SIGUSR1, &sa, NULL);
	/* Blocked here, pending when KVM_RUN starts: the run ends at once. */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	kill(getpid(), SIGUSR1);
	{
		struct {
			struct kvm_signal_mask hdr;
			uint64_t set;
		} mask = { .hdr.len = 8, .set = 0 };

		vcpu_ioctl(vcpu, KVM_SET_SIGNAL_MASK, &mask, "KVM_SET_SIGNAL_MASK");
	}
	TEST_ASSERT_ERRNO(__vcpu_run(vcpu), EINTR);
	TEST_ASSERT_EQ(vcpu->run->exit_reason, KVM_EXIT_INTR);
	sigprocmask(SIG_SETMASK, &old, NULL);
	TEST_ASSERT_EQ(stats_value(&st, "signal_exits") - before, 1);
	stats_close(&st);
	vm_free(vm);
}
