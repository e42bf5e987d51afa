// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_IOEVENTFD (api.rst 4.59): guest port and MMIO writes that signal an
 * eventfd in the kernel without exiting to userspace, the length and
 * datamatch rules, deassignment, and KVM's errnos.  "No exit" is checked by
 * running to the next ucall: vcpu_run_ucall() fails on any other exit.
 */
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_util.h"

#define PORT 0xe0
#define MMIO_GPA 0xc0000000ULL		/* no memslot; identity-mapped in the guest */

static int ioeventfd(struct kvm_vm *vm, uint64_t addr, uint32_t len, int fd, uint32_t flags,
		     uint64_t datamatch)
{
	struct kvm_ioeventfd a = {
		.datamatch = datamatch, .addr = addr, .len = len, .fd = fd, .flags = flags,
	};

	return __vm_ioctl(vm, KVM_IOEVENTFD, &a);
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK);

	TEST_ASSERT(fd >= 0, "eventfd: %s", strerror(errno));
	return fd;
}

/* How many times the eventfd was signalled since the last call. */
static uint64_t signals(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		TEST_ASSERT(errno == EAGAIN, "read eventfd: %s", strerror(errno));
	return n;
}

static void expect_pio_out(struct kvm_vcpu *vcpu, uint16_t port, uint8_t size, uint32_t value)
{
	struct kvm_run *run = vcpu->run;
	uint32_t data = 0;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(run->io.direction, KVM_EXIT_IO_OUT);
	TEST_ASSERT_EQ(run->io.port, port);
	TEST_ASSERT_EQ(run->io.size, size);
	memcpy(&data, (uint8_t *)run + run->io.data_offset, size);
	TEST_ASSERT_EQ(data, value);
}

TEST(capabilities)
{
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IOEVENTFD), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IOEVENTFD_NO_LENGTH), 1);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_IOEVENTFD_ANY_LENGTH), 1);
}

static void guest_pio(void)
{
	const char bytes[4] = { 1, 2, 3, 4 };

	guest_outb(PORT, 0x11);
	guest_outb(PORT, 0x22);
	guest_outb(PORT, 0x33);
	GUEST_SYNC(1);
	guest_outw(PORT, 0x4455);		/* another length: userspace sees it */
	GUEST_ASSERT_EQ(guest_inb(PORT), 0x66);	/* reads always exit */
	asm volatile("rep outsb" :: "S"(bytes), "c"(4), "d"(PORT) : "memory");
	GUEST_SYNC(2);
	guest_outb(PORT, 0x77);			/* deassigned by now */
	GUEST_SYNC(3);
}

TEST(pio_write_signals_without_exit)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_pio);
	int efd = new_eventfd();
	struct ucall uc;

	TEST_ASSERT_EQ(ioeventfd(vm, PORT, 1, efd, KVM_IOEVENTFD_FLAG_PIO, 0), 0);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	TEST_ASSERT_EQ(signals(efd), 3);

	expect_pio_out(vcpu, PORT, 2, 0x4455);
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(vcpu->run->io.direction, KVM_EXIT_IO_IN);
	*((uint8_t *)vcpu->run + vcpu->run->io.data_offset) = 0x66;
	/* Each element of a REP OUTS is a write of its own. */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(signals(efd), 4);

	TEST_ASSERT_EQ(ioeventfd(vm, PORT, 1, efd, KVM_IOEVENTFD_FLAG_PIO |
				 KVM_IOEVENTFD_FLAG_DEASSIGN, 0), 0);
	expect_pio_out(vcpu, PORT, 1, 0x77);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(signals(efd), 0);
	close(efd);
	vm_free(vm);
}

static void guest_mmio(void)
{
	volatile uint32_t *p32 = (volatile uint32_t *)MMIO_GPA;
	volatile uint64_t *p64 = (volatile uint64_t *)(MMIO_GPA + 0x10);
	volatile uint8_t *any = (volatile uint8_t *)(MMIO_GPA + 0x20);

	*p32 = 0x1234;				/* datamatch: signalled */
	*p32 = 0x5678;				/* another value: exits */
	*(volatile uint16_t *)p32 = 0x1234;	/* another length: exits */
	GUEST_ASSERT_EQ(*p32, 0xabcd);		/* reads exit */
	*p64 = 0x1122334455667788ULL;		/* the second registration at 0x10 */
	*p64 = 0x8877665544332211ULL;		/* the first */
	*any = 1;				/* length 0: any size, any value */
	*(volatile uint16_t *)any = 2;
	*(volatile uint32_t *)any = 3;
	*(volatile uint64_t *)any = 4;
	any[1] = 5;				/* not the exact address: exits */
	GUEST_SYNC(1);
}

TEST(mmio_write_signals_without_exit)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_mmio);
	int e32 = new_eventfd(), e64a = new_eventfd(), e64b = new_eventfd(), eany = new_eventfd();
	struct ucall uc;

	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 4, e32, KVM_IOEVENTFD_FLAG_DATAMATCH, 0x1234), 0);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA + 0x10, 8, e64a, KVM_IOEVENTFD_FLAG_DATAMATCH,
				 0x8877665544332211ULL), 0);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA + 0x10, 8, e64b, KVM_IOEVENTFD_FLAG_DATAMATCH,
				 0x1122334455667788ULL), 0);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA + 0x20, 0, eany, 0, 0), 0);

	vcpu_expect_mmio(vcpu, MMIO_GPA, 4, true, 0x5678);
	TEST_ASSERT_EQ(signals(e32), 1);
	vcpu_expect_mmio(vcpu, MMIO_GPA, 2, true, 0x1234);
	vcpu_expect_mmio(vcpu, MMIO_GPA, 4, false, 0xabcd);
	vcpu_expect_mmio(vcpu, MMIO_GPA + 0x21, 1, true, 5);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(signals(e32), 0);
	TEST_ASSERT_EQ(signals(e64a), 1);
	TEST_ASSERT_EQ(signals(e64b), 1);
	TEST_ASSERT_EQ(signals(eany), 4);
	vm_free(vm);
	close(e32);
	close(e64a);
	close(e64b);
	close(eany);
}

TEST(assign_errnos)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int efd = new_eventfd(), other = new_eventfd();
	const uint32_t dm = KVM_IOEVENTFD_FLAG_DATAMATCH, pio = KVM_IOEVENTFD_FLAG_PIO;

	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 3, efd, 0, 0), EINVAL);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 16, efd, 0, 0), EINVAL);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, efd, 1u << 5, 0), EINVAL);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 0, efd, dm, 0), EINVAL);
	TEST_ASSERT_ERRNO(ioeventfd(vm, ~0ULL - 1, 4, efd, 0, 0), EINVAL);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, -1, 0, 0), EBADF);
	/* An fd that is not an eventfd. */
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, vm->fd, 0, 0), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_IOEVENTFD, (void *)8), EFAULT);

	/* Registrations one write could both match collide, whatever the eventfd. */
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 4, efd, dm, 1), 0);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, other, dm, 1), EEXIST);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, other, 0, 0), EEXIST);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 0, other, 0, 0), EEXIST);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 4, other, dm, 2), 0);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 2, other, 0, 0), 0);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 4, other, pio, 0), 0);	/* ports apart */
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA + 4, 0, efd, 0, 0), 0);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA + 4, 8, other, dm, 9), EEXIST);
	/* Accepted on x86 as in KVM: the flags of other architectures' buses. */
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA + 0x100, 4, efd,
				 KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY, 0), 0);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA + 0x200, 4, efd, 1u << 4, 0), 0);
	close(other);
	close(efd);
	/* The VM holds the eventfds: freeing it with registrations left is clean. */
	vm_free(vm);
}

TEST(deassign_errnos)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	int efd = new_eventfd(), other = new_eventfd();
	const uint32_t dm = KVM_IOEVENTFD_FLAG_DATAMATCH, de = KVM_IOEVENTFD_FLAG_DEASSIGN;

	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 4, efd, dm, 7), 0);
	/* Only the exact registration goes: address, length, eventfd, datamatch. */
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, efd, de | dm, 8), ENOENT);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, efd, de, 0), ENOENT);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 2, efd, de | dm, 7), ENOENT);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, other, de | dm, 7), ENOENT);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, efd, de | dm | KVM_IOEVENTFD_FLAG_PIO, 7),
			  ENOENT);
	/* KVM checks neither length nor flags on deassignment: no match, not EINVAL. */
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 3, efd, de | dm | (1u << 6), 7), ENOENT);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, -1, de | dm, 7), EBADF);
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 4, efd, de | dm, 7), 0);
	TEST_ASSERT_ERRNO(ioeventfd(vm, MMIO_GPA, 4, efd, de | dm, 7), ENOENT);
	/* The place is free again. */
	TEST_ASSERT_EQ(ioeventfd(vm, MMIO_GPA, 0, other, 0, 0), 0);
	close(efd);
	close(other);
	vm_free(vm);
}

static void guest_two_writes(void)
{
	guest_outl(PORT, 1);
	GUEST_SYNC(1);
	guest_outl(PORT, 2);
	GUEST_SYNC(2);
}

/* Closing the eventfd's fd does not unregister it: the VM holds the eventfd. */
TEST(registration_outlives_the_fd)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_two_writes);
	int efd = new_eventfd(), dup_fd = dup(efd);
	struct ucall uc;

	TEST_ASSERT_EQ(ioeventfd(vm, PORT, 4, efd, KVM_IOEVENTFD_FLAG_PIO, 0), 0);
	close(efd);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(signals(dup_fd), 1);
	/* Deassigning needs an fd of the same eventfd: the duplicate does it. */
	TEST_ASSERT_EQ(ioeventfd(vm, PORT, 4, dup_fd, KVM_IOEVENTFD_FLAG_PIO |
				 KVM_IOEVENTFD_FLAG_DEASSIGN, 0), 0);
	expect_pio_out(vcpu, PORT, 4, 2);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	close(dup_fd);
	vm_free(vm);
}
