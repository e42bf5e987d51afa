// SPDX-License-Identifier: GPL-2.0
/*
 * Guest memory for the emulator: guest-physical reads and writes through the
 * memslots of the vCPU's address space (SMM has its own), and guest-virtual
 * addresses translated by walking the guest's own page tables.
 *
 * One walker serves every paging format: each is described by its number of
 * levels, entry size and index width (SDM vol. 3 4.3-4.5, APM vol. 2 5.2-5.3).
 * Only translation is done; the access rights were already checked by the
 * hardware for the faulting access.
 */
#include <linux/nospec.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>

struct paging_format {
	int levels;
	int pte_bytes;
	int index_bits[5];	/* per level, 1-based; level 4 of PAE is the 2-bit PDPT index */
	bool large_ok[5];	/* a PS bit at this level maps a large page */
};

/* 32-bit paging: 2 levels of 1024 4-byte entries, 4 MiB pages with CR4.PSE. */
static const struct paging_format fmt_32 = { 2, 4, { 0, 10, 10 }, { false, false, true } };
/* PAE: a 4-entry PDPT, then 512-entry tables; 2 MiB pages. */
static const struct paging_format fmt_pae = { 3, 8, { 0, 9, 9, 2 }, { false, false, true } };
/* 4-level (IA-32e / long mode): 2 MiB and 1 GiB pages. */
static const struct paging_format fmt_4l = { 4, 8, { 0, 9, 9, 9, 9 },
					     { false, false, true, true } };

static void *hva_of(struct mkvm_vcpu *vcpu, int as, u64 gpa, bool write)
{
	struct mkvm_memslot *slot = mkvm_gfn_to_memslot(vcpu->vm, as, gpa >> PAGE_SHIFT);

	if (!slot || (write && (slot->flags & KVM_MEM_READONLY)))
		return NULL;
	if (write)
		mkvm_mark_page_dirty(slot, gpa >> PAGE_SHIFT);
	/* As KVM does: the guest must not steer even speculative loads outside its slots. */
	return (void *)(slot->userspace_addr +
			array_index_nospec((gpa >> PAGE_SHIFT) - slot->base_gfn, slot->npages) *
			PAGE_SIZE + (gpa & ~PAGE_MASK));
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
		void __user *hva = (void __user *)hva_of(vcpu, as, gpa, write);

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

/**
 * mkvm_gva_to_gpa() - translate through the guest's page tables
 * @vcpu: the vCPU
 * @s: its special registers (CR0, CR3, CR4, EFER)
 * @la: linear address
 * @gpa: the translation
 *
 * Return: 0; -EFAULT when a level is not present or a table is not in
 * guest memory.
 */
int mkvm_gva_to_gpa(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, u64 *gpa)
{
	const struct paging_format *f;
	u64 table, pte = 0;
	int shift, level;

	if (!(s->cr0 & X86_CR0_PG)) {
		*gpa = la;
		return 0;
	}
	if (s->efer & EFER_LMA) {
		f = &fmt_4l;
		table = s->cr3 & 0x000ffffffffff000ULL;
	} else if (s->cr4 & X86_CR4_PAE) {
		f = &fmt_pae;
		table = s->cr3 & 0xffffffe0;	/* the PDPT is 32-byte aligned */
		la &= 0xffffffff;
	} else {
		f = &fmt_32;
		table = s->cr3 & 0xfffff000;
		la &= 0xffffffff;
	}

	shift = PAGE_SHIFT;
	for (level = 1; level < f->levels; level++)
		shift += f->index_bits[level];
	for (level = f->levels; level >= 1; level--) {
		u64 idx = (la >> shift) & ((1ULL << f->index_bits[level]) - 1);
		u64 addr_mask = f->pte_bytes == 4 ? 0xfffff000ULL : 0x000ffffffffff000ULL;

		pte = 0;
		if (mkvm_read_guest_phys(vcpu, table + idx * f->pte_bytes, &pte, f->pte_bytes))
			return -EFAULT;
		if (!(pte & _PAGE_PRESENT))
			return -EFAULT;
		/* The PAE PDPT has no PS bit; 32-bit paging needs CR4.PSE for 4 MiB pages. */
		if (level > 1 && f->large_ok[level] && (pte & _PAGE_PSE) &&
		    (f != &fmt_32 || (s->cr4 & X86_CR4_PSE))) {
			u64 size = 1ULL << shift;

			*gpa = ((pte & addr_mask) & ~(size - 1)) | (la & (size - 1));
			return 0;
		}
		table = pte & addr_mask;
		if (level > 1)
			shift -= f->index_bits[level - 1];
	}
	*gpa = table | (la & ~PAGE_MASK);
	return 0;
}

static int virt_access(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, void *buf,
		       unsigned int len, bool write)
{
	while (len) {
		unsigned int chunk = min_t(unsigned int, len, PAGE_SIZE - (la & ~PAGE_MASK));
		u64 gpa;

		if (mkvm_gva_to_gpa(vcpu, s, la, &gpa) ||
		    mkvm_guest_phys_as(vcpu, mkvm_vcpu_as(vcpu), gpa, buf, chunk, write))
			return -EFAULT;
		la += chunk;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

/**
 * mkvm_read_guest_virt() - read guest memory at a linear address
 * @vcpu: the vCPU
 * @s: its special registers
 * @la: linear address
 * @buf: destination
 * @len: bytes; the range may cross pages
 *
 * Return: 0, or -EFAULT when a page is unmapped or not guest memory.
 */
int mkvm_read_guest_virt(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, void *buf,
			 unsigned int len)
{
	return virt_access(vcpu, s, la, buf, len, false);
}

int mkvm_write_guest_virt(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la,
			  const void *buf, unsigned int len)
{
	return virt_access(vcpu, s, la, (void *)buf, len, true);
}
