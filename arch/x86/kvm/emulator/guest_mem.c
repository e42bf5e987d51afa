// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory for the emulator: guest-physical reads and writes through the
 * memslots of the vCPU's address space (SMM has its own), and linear
 * addresses, translated and checked by the page-table walker (mmu/walk.c)
 * as the guest's own access would be.
 */
#include <linux/nospec.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>
#include <minikvm/walk.h>

/**
 * mkvm_gpa_hva() - where a guest-physical address lives in the VMM
 * @vcpu: a vCPU of the VM, in its process, with slots_sem held
 * @as: the memslot address space
 * @gpa: guest physical address
 * @write: for a write: refuse read-only slots, and log the page dirty
 *
 * Return: the user address, or NULL when @gpa is in no (writable) slot.
 */
void __user *mkvm_gpa_hva(struct mkvm_vcpu *vcpu, int as, u64 gpa, bool write)
{
	struct mkvm_memslot *slot = mkvm_gfn_to_memslot(vcpu->vm, as, gpa >> PAGE_SHIFT);

	if (!slot || (write && (slot->flags & KVM_MEM_READONLY)))
		return NULL;
	if (write)
		mkvm_mark_page_dirty(slot, gpa >> PAGE_SHIFT);
	/* As KVM does: the guest must not steer even speculative loads outside its slots. */
	return (void __user *)(slot->userspace_addr +
			       array_index_nospec((gpa >> PAGE_SHIFT) - slot->base_gfn,
						  slot->npages) * PAGE_SIZE + (gpa & ~PAGE_MASK));
}

/**
 * mkvm_guest_phys_as() - read or write guest-physical memory of one address space
 * @vcpu: a vCPU of the VM, in its process, with slots_sem held
 * @as: the memslot address space, 0 or 1 (SMM)
 * @gpa: guest physical address
 * @buf: source or destination
 * @len: bytes
 * @write: write @buf to the guest, logging it dirty
 *
 * The device models that KVM backs with the normal address space whatever
 * mode the vCPU is in (kvmclock, the vAPIC word) pass 0.
 *
 * Return: 0; -ENOENT when part of the range is in no memslot (or, for a
 * write, a read-only one); -EFAULT.
 */
int mkvm_guest_phys_as(struct mkvm_vcpu *vcpu, int as, u64 gpa, void *buf, unsigned int len,
		       bool write)
{
	while (len) {
		unsigned int chunk = min_t(unsigned int, len, PAGE_SIZE - (gpa & ~PAGE_MASK));
		void __user *hva = mkvm_gpa_hva(vcpu, as, gpa, write);

		if (!hva)
			return -ENOENT;
		if (write ? copy_to_user(hva, buf, chunk) : copy_from_user(buf, hva, chunk))
			return -EFAULT;
		gpa += chunk;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

/**
 * mkvm_read_guest_phys() - read guest-physical memory in the vCPU's address space
 * @vcpu: a vCPU of the VM, in its process, with slots_sem held
 * @gpa: guest physical address
 * @buf: destination
 * @len: bytes
 *
 * Return: 0; -ENOENT when part of the range is in no memslot; -EFAULT.
 */
int mkvm_read_guest_phys(struct mkvm_vcpu *vcpu, u64 gpa, void *buf, unsigned int len)
{
	return mkvm_guest_phys_as(vcpu, mkvm_vcpu_as(vcpu), gpa, buf, len, false);
}

/**
 * mkvm_write_guest_phys() - write guest-physical memory in the vCPU's address space
 * @vcpu: a vCPU of the VM, in its process, with slots_sem held
 * @gpa: guest physical address
 * @buf: source
 * @len: bytes
 *
 * Return: 0; -ENOENT when part of the range is in no memslot or read-only; -EFAULT.
 */
int mkvm_write_guest_phys(struct mkvm_vcpu *vcpu, u64 gpa, const void *buf, unsigned int len)
{
	return mkvm_guest_phys_as(vcpu, mkvm_vcpu_as(vcpu), gpa, (void *)buf, len, true);
}

/*
 * Check and translate every page of [@la, @la + @len) before any byte
 * moves, so an access that faults on its second page changes nothing.
 */
static int virt_access(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, void *buf,
		       unsigned int len, u32 access, struct mkvm_fault *fault)
{
	u64 gpa[2], end = la + len - 1;
	unsigned int first = min_t(unsigned int, len, PAGE_SIZE - (la & ~PAGE_MASK));
	bool write = access & MKVM_ACC_WRITE;
	struct mkvm_walk w;
	int i, r;

	if (!len || len > PAGE_SIZE)
		return -EINVAL;
	for (i = 0; i < 2; i++) {
		r = vcpu->arch.mmu.gva_to_gpa(vcpu, i ? end & PAGE_MASK : la, access, &w, fault);
		if (r)
			return r;
		gpa[i] = w.gpa;
		if (first == len)
			break;
	}
	if (mkvm_guest_phys_as(vcpu, mkvm_vcpu_as(vcpu), gpa[0], buf, first, write) ||
	    (first < len &&
	     mkvm_guest_phys_as(vcpu, mkvm_vcpu_as(vcpu), gpa[1], buf + first, len - first, write)))
		return -ENOENT;
	return 0;
}

/**
 * mkvm_read_guest_virt() - read guest memory at a linear address
 * @vcpu: the vCPU, with slots_sem held
 * @s: its special registers
 * @la: linear address
 * @buf: destination
 * @len: bytes, at most a page; the range may cross into the next page
 * @access: 0 for a data read, MKVM_ACC_FETCH for an instruction fetch
 * @fault: on -EFAULT, the #PF the guest takes instead
 *
 * Return: 0; -EFAULT when the guest's page tables forbid the read; -EAGAIN
 * when the guest kept changing them (run the instruction again); -ENOENT
 * when the memory is not in a memslot or the VMM unmapped it.
 */
int mkvm_read_guest_virt(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, void *buf,
			 unsigned int len, u32 access, struct mkvm_fault *fault)
{
	return virt_access(vcpu, s, la, buf, len, access & ~MKVM_ACC_WRITE, fault);
}

/**
 * mkvm_write_guest_virt() - write guest memory at a linear address
 * @vcpu: the vCPU, with slots_sem held
 * @s: its special registers
 * @la: linear address
 * @buf: source
 * @len: bytes, at most a page; the range may cross into the next page
 * @fault: on -EFAULT, the #PF the guest takes instead
 *
 * Nothing is written unless all of the range may be.
 *
 * Return: as mkvm_read_guest_virt(); -ENOENT also for a read-only slot.
 */
int mkvm_write_guest_virt(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la,
			  const void *buf, unsigned int len, struct mkvm_fault *fault)
{
	return virt_access(vcpu, s, la, (void *)buf, len, MKVM_ACC_WRITE, fault);
}
