// SPDX-License-Identifier: GPL-2.0
/*
 * The vCPU's own linear addresses through the walker (walk.c): its paging
 * state from CR0, CR3, CR4, EFER, RFLAGS and the CPL, its tables read and
 * updated in guest memory of the vCPU's address space, and what a failed
 * access raises.
 *
 * The hardware checked all of this for the access behind a nested page
 * fault, but not for the instructions minikvm completes from an intercept
 * (INS and OUTS): the APM checks intercepts before memory faults.  Those
 * accesses must not let a guest user reach what the guest kernel protects
 * (CVE-2010-0298's class).
 */
#include <linux/uaccess.h>
#include <asm/processor-flags.h>

#include <minikvm/core.h>
#include <minikvm/guest_mem.h>
#include <minikvm/walk.h>

/* A walk of the vCPU's tables, and a nested page fault on the way (nested_gpa). */
struct walk_ctx {
	struct mkvm_vcpu *vcpu;
	bool nested_faulted, nested_again;
	struct mkvm_fault nested_fault;
};

/*
 * A table's address, through the guest hypervisor's nested paging while its
 * guest runs on that (struct mkvm_mmu's nested_gpa).
 */
static int table_gpa(struct walk_ctx *c, u64 gpa, bool write, u64 *out)
{
	struct mkvm_vcpu *vcpu = c->vcpu;

	int r;

	*out = gpa;
	if (!vcpu->arch.mmu.nested_gpa)
		return 0;
	r = vcpu->arch.mmu.nested_gpa(vcpu, gpa, write ? MKVM_ACC_WRITE : 0, true, out,
				      &c->nested_fault);
	/* The walk reads any failure as a missing table; the context says which. */
	if (r == -EFAULT)
		c->nested_faulted = true;
	else if (r)
		c->nested_again = true;
	return r;
}

/**
 * mkvm_read_phys_pte() - read a page-table entry in the vCPU's physical memory
 * @vcpu: the vCPU, with slots_sem held
 * @gpa: the entry's address, naturally aligned
 * @pte: the entry
 * @bytes: 4 or 8
 *
 * One load of the whole entry: a copy in pieces could mix the rights of one
 * value with the address of another that the guest wrote meanwhile.
 *
 * Return: 0, -ENOENT outside memslots, or -EFAULT.
 */
int mkvm_read_phys_pte(struct mkvm_vcpu *vcpu, u64 gpa, u64 *pte, unsigned int bytes)
{
	void __user *hva = mkvm_gpa_hva(vcpu, mkvm_vcpu_as(vcpu), gpa, false);
	u32 v;

	if (!hva)
		return -ENOENT;
	if (bytes == 8)
		return get_user(*pte, (u64 __user *)hva);
	if (get_user(v, (u32 __user *)hva))
		return -EFAULT;
	*pte = v;
	return 0;
}

static int read_guest_pte(void *opaque, u64 gpa, u64 *pte, unsigned int bytes)
{
	struct walk_ctx *c = opaque;

	if (table_gpa(c, gpa, false, &gpa))
		return -EFAULT;
	return mkvm_read_phys_pte(c->vcpu, gpa, pte, bytes);
}

/**
 * mkvm_cmpxchg_phys_pte() - set bits of a page-table entry in the vCPU's physical memory
 * @vcpu: the vCPU, with slots_sem held
 * @gpa: the entry's address, naturally aligned
 * @old: what the walk read
 * @new: what to write if the entry still holds @old
 * @bytes: 4 or 8
 *
 * Return: 0; -EAGAIN when the entry changed; -EROFS for a read-only slot;
 * -EFAULT outside memslots.
 */
int mkvm_cmpxchg_phys_pte(struct mkvm_vcpu *vcpu, u64 gpa, u64 old, u64 new, unsigned int bytes)
{
	int as = mkvm_vcpu_as(vcpu);
	void __user *hva = mkvm_gpa_hva(vcpu, as, gpa, true);
	int r;

	if (!hva)
		return mkvm_gpa_hva(vcpu, as, gpa, false) ? -EROFS : -EFAULT;
	if (!access_ok(hva, bytes))
		return -EFAULT;
	if (bytes == 4) {
		u32 o = old;

		r = __try_cmpxchg_user((u32 __user *)hva, &o, (u32)new, pte32_fault);
	} else {
		r = __try_cmpxchg_user((u64 __user *)hva, &old, new, pte64_fault);
	}
	return r < 0 ? r : r ? -EAGAIN : 0;
}

static int cmpxchg_guest_pte(void *opaque, u64 gpa, u64 old, u64 new, unsigned int bytes)
{
	struct walk_ctx *c = opaque;

	if (table_gpa(c, gpa, true, &gpa))
		return -EFAULT;
	return mkvm_cmpxchg_phys_pte(c->vcpu, gpa, old, new, bytes);
}

static const struct mkvm_walk_env guest_env = {
	.read_pte = read_guest_pte, .cmpxchg_pte = cmpxchg_guest_pte,
};

/*
 * The vCPU's paging state, from its CR0, CR3, CR4 and EFER (cr.c), for an
 * access of the kernel or of user mode; false without paging.
 */
static bool guest_paging(struct mkvm_vcpu *vcpu, bool user, struct mkvm_paging *p)
{
	const struct mkvm_vcpu_arch *a = &vcpu->arch;

	*p = (struct mkvm_paging){
		.maxphyaddr = mkvm_guest_maxphyaddr(vcpu),
		.nxe = !!(a->efer & EFER_NX),
		.wp = !!(a->cr0 & X86_CR0_WP),
		.smep = !!(a->cr4 & X86_CR4_SMEP),
		.smap = !!(a->cr4 & X86_CR4_SMAP),
		.ac = !!(a->rflags & X86_EFLAGS_AC),
		.pse = !!(a->cr4 & X86_CR4_PSE),
		.user = user,
		.ad = true,
	};
	if (!(a->cr0 & X86_CR0_PG))
		return false;
	if (a->efer & EFER_LMA) {
		p->format = (a->cr4 & X86_CR4_LA57) ? MKVM_PT_5L : MKVM_PT_4L;
		p->root = a->cr3 & GENMASK_ULL(51, 12);
	} else if (a->cr4 & X86_CR4_PAE) {
		p->format = MKVM_PT_PAE;
		p->root = a->cr3 & 0xffffffe0;	/* the PDPT is 32-byte aligned */
	} else {
		p->format = MKVM_PT_32;
		p->root = a->cr3 & 0xfffff000;
		p->nxe = false;		/* 32-bit entries have no XD bit */
	}
	return true;
}

static int walk(struct mkvm_vcpu *vcpu, const struct mkvm_paging *p, bool paging, u64 la,
		u32 access, struct mkvm_walk *w, struct mkvm_fault *fault)
{
	struct mkvm_walk_env env = guest_env;
	struct walk_ctx c = { .vcpu = vcpu };
	int r;

	/* Without paging the linear address is the physical one, 32 bits wide. */
	if (!paging) {
		*w = (struct mkvm_walk){ .gpa = (u32)la, .level = 1, .writable = true,
					 .entries_writable = true, .dirty = true,
					 .user = true, .executable = true };
	} else {
		env.opaque = &c;
		r = mkvm_walk(p, &env, la, access, w, fault);
		/* L1 kept changing its nested tables: the instruction runs again. */
		if (r && c.nested_again)
			return -EAGAIN;
		if (r == -EFAULT && c.nested_faulted)
			*fault = c.nested_fault;
		if (r)
			return r;
	}
	/* The guest hypervisor's nested paging maps the address the guest's tables gave. */
	if (vcpu->arch.mmu.nested_gpa)
		return vcpu->arch.mmu.nested_gpa(vcpu, w->gpa, access, false, &w->gpa, fault);
	return 0;
}

/**
 * mkvm_walk_gva() - translate a linear address as the guest's access would
 * @vcpu: the vCPU, with slots_sem held
 * @la: the linear address
 * @access: MKVM_ACC_* bits; the CPL says whether it is a user access
 * @w: the translation
 * @fault: on -EFAULT, the #PF to raise
 *
 * Return: 0; -EFAULT when the guest must take @fault; -EAGAIN when the
 * guest kept changing the entries: leave the instruction to run again.
 */
int mkvm_walk_gva(struct mkvm_vcpu *vcpu, u64 la, u32 access, struct mkvm_walk *w,
		  struct mkvm_fault *fault)
{
	struct mkvm_paging p;
	bool paging = guest_paging(vcpu, mkvm_x86->get_cpl(vcpu) == 3, &p);

	return walk(vcpu, &p, paging, la, access, w, fault);
}

/**
 * mkvm_walk_gva_fault() - walk for the access behind a #PF the hardware raised
 * @vcpu: the vCPU, with slots_sem held
 * @la: the faulting linear address (CR2)
 * @error_code: the #PF's error code, which says whether it was a write, a
 *	fetch, and made in user mode (implicit kernel accesses at CPL 3 are not)
 * @w: the translation
 * @fault: on -EFAULT, the #PF the guest's own tables raise
 *
 * Return: as mkvm_walk_gva().
 */
int mkvm_walk_gva_fault(struct mkvm_vcpu *vcpu, u64 la, u32 error_code, struct mkvm_walk *w,
			struct mkvm_fault *fault)
{
	struct mkvm_paging p;
	bool paging = guest_paging(vcpu, error_code & MKVM_PF_USER, &p);

	/* A kernel access at CPL 3 is implicit (a descriptor table): SMAP ignores AC (SDM 4.6.1). */
	if (!p.user && mkvm_x86->get_cpl(vcpu) == 3)
		p.ac = false;
	return walk(vcpu, &p, paging, la, error_code & (MKVM_ACC_WRITE | MKVM_ACC_FETCH), w,
		    fault);
}

/**
 * mkvm_translate_ioctl() - KVM_TRANSLATE: a linear address of the vCPU, for debuggers
 * @vcpu: the vCPU
 * @argp: struct kvm_translation
 *
 * As on KVM: the translation a kernel read at the vCPU's CPL would use, so
 * SMAP hides user pages unless the CPL is below 3 and RFLAGS.AC is set, and
 * accessed bits are set as for that read; "writeable" is 1 and "usermode"
 * 0 whatever the entries say, and the address is all ones when "valid" is 0.
 *
 * Return: 0, or -EFAULT for @argp.
 */
int mkvm_translate_ioctl(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_translation tr;
	struct mkvm_paging p;
	struct mkvm_fault fault;
	struct mkvm_walk w;
	bool paging;
	int r;

	if (copy_from_user(&tr, argp, sizeof(tr)))
		return -EFAULT;
	paging = guest_paging(vcpu, mkvm_x86->get_cpl(vcpu) == 3, &p);
	p.ac = p.ac && !p.user;
	p.user = false;
	down_read(&vcpu->vm->slots_sem);
	r = walk(vcpu, &p, paging, tr.linear_address, 0, &w, &fault);
	up_read(&vcpu->vm->slots_sem);
	/* Without paging KVM gives the address back whole (the emulator wraps it at 4 GiB). */
	if (!paging)
		w.gpa = tr.linear_address;
	tr.physical_address = r ? ~0ULL : w.gpa;
	tr.valid = !r;
	tr.writeable = 1;
	tr.usermode = 0;
	return copy_to_user(argp, &tr, sizeof(tr)) ? -EFAULT : 0;
}

/**
 * mkvm_inject_fault() - raise the exception an emulated access ran into
 * @vcpu: the vCPU
 * @fault: the fault, a #PF with its address or a #GP/#SS with its error code,
 *	or a guest hypervisor's nested page fault, which is its exit
 */
void mkvm_inject_fault(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault)
{
	bool nested = fault->vector == MKVM_FAULT_NESTED_FINAL ||
		      fault->vector == MKVM_FAULT_NESTED_TABLE;

	if (nested && vcpu->arch.mmu.nested_fault)
		vcpu->arch.mmu.nested_fault(vcpu, fault);
	else if (fault->vector == PF_VECTOR)
		mkvm_queue_exception_payload(vcpu, PF_VECTOR, true, fault->error_code,
					     fault->address);
	else
		mkvm_queue_exception(vcpu, fault->vector, true, fault->error_code);
}
