/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The page-table walker: one walk for every format (arch/x86/kvm/mmu/walk.c,
 * also built in userspace for tests/unit/walk_test.c), and the vCPU's use
 * of it for guest linear addresses (mmu/walk_guest.c).
 */
#ifndef MINIKVM_WALK_H
#define MINIKVM_WALK_H

#include <minikvm/types.h>

/* The table formats (SDM vol. 3 4.3-4.5 and 28.3.2, APM vol. 2 5.2-5.3). */
enum mkvm_pt_format {
	MKVM_PT_32,		/* 32-bit paging, 4 MiB pages with PSE (and PSE-36) */
	MKVM_PT_PAE,		/* PAE: a 4-entry PDPT, then 2 levels; 2 MiB pages */
	MKVM_PT_4L,		/* 4-level: 2 MiB and 1 GiB pages */
	MKVM_PT_5L,		/* 5-level */
	MKVM_PT_EPT4,		/* Intel EPT, 4 levels */
	MKVM_PT_EPT5,		/* Intel EPT, 5 levels */
};

/* What an access is, in #PF error-code bits (SDM vol. 3 4.7). */
#define MKVM_ACC_WRITE		BIT(1)
#define MKVM_ACC_FETCH		BIT(4)
/* No rights checked, no accessed bits set: a look for debugging. */
#define MKVM_ACC_NO_CHECK	BIT(31)

/* #PF error-code bits (SDM vol. 3 4.7). */
#define MKVM_PF_PROT		BIT(0)
#define MKVM_PF_WRITE		BIT(1)
#define MKVM_PF_USER		BIT(2)
#define MKVM_PF_RSVD		BIT(3)
#define MKVM_PF_FETCH		BIT(4)

/*
 * EPT failures are not exceptions: "vector" values no exception has.  The
 * error code of a violation is the exit qualification's bits 0-5 (SDM vol. 3
 * 28.3.3.2): the access (read, write, fetch) and what the entries allowed.
 */
#define MKVM_FAULT_EPT_VIOLATION	0xfe
#define MKVM_FAULT_EPT_MISCONFIG	0xff
/*
 * A guest hypervisor's nested paging refused a guest-physical address of
 * its guest (struct mkvm_mmu's nested_gpa): for the final address, or for
 * one of the guest's own tables.  The error code has #PF bits.
 */
#define MKVM_FAULT_NESTED_FINAL		0xfc
#define MKVM_FAULT_NESTED_TABLE		0xfd

/**
 * struct mkvm_paging - the state a walk depends on
 * @format: the table format
 * @root: the top table's address (CR3 or EPTP without its flags)
 * @maxphyaddr: physical address bits; entry bits above are reserved
 * @nxe: EFER.NXE: the XD bit exists (x86 formats)
 * @wp: CR0.WP: read-only pages are read-only for the kernel too
 * @smep: CR4.SMEP: the kernel may not fetch from user pages
 * @smap: CR4.SMAP: the kernel may not touch user pages ...
 * @ac: ... unless RFLAGS.AC is set
 * @pse: CR4.PSE: 4 MiB pages in 32-bit paging
 * @user: a user-mode access (CPL 3); NPT walks are always user accesses
 * @ad: set accessed and dirty bits (always for x86 formats; EPT with EPTP[6])
 * @ept_xonly: EPT entries may be execute-only
 */
struct mkvm_paging {
	enum mkvm_pt_format format;
	u64 root;
	unsigned int maxphyaddr;
	bool nxe, wp, smep, smap, ac, pse, user, ad, ept_xonly;
};

/**
 * struct mkvm_walk_env - where the tables live
 * @opaque: the callbacks' own
 * @read_pte: read the @bytes-byte entry at table address @gpa: 0 or an errno
 * @cmpxchg_pte: replace @old with @new at @gpa if it still holds @old:
 *	0, -EAGAIN when it no longer does, -EROFS when the table is in memory
 *	the guest cannot write (the bits are then left alone), another errno
 *	when it cannot
 *
 * A nested walk translates each table address here through another walk.
 */
struct mkvm_walk_env {
	void *opaque;
	int (*read_pte)(void *opaque, u64 gpa, u64 *pte, unsigned int bytes);
	int (*cmpxchg_pte)(void *opaque, u64 gpa, u64 old, u64 new, unsigned int bytes);
};

/**
 * struct mkvm_fault - what the access raises instead of completing
 * @vector: PF_VECTOR, GP_VECTOR, SS_VECTOR, or an MKVM_FAULT_EPT_* value
 * @error_code: its error code (for EPT, the qualification bits)
 * @address: the address that faulted (CR2 for a #PF)
 */
struct mkvm_fault {
	u8 vector;
	u32 error_code;
	u64 address;
};

/**
 * struct mkvm_walk - what a walk found
 * @gpa: the translation
 * @level: the level of the leaf: 1 for a 4 KiB page, 2 for 2 or 4 MiB, 3 for 1 GiB
 * @writable: the access's mode may write: the entries allow it, or CR0.WP
 *	is clear and the access is the kernel's
 * @entries_writable: the entries themselves allow a write
 * @user: the entries allow a user-mode access
 * @executable: the entries allow a fetch
 * @dirty: the leaf's dirty bit is set (by this walk if it was a write)
 * @global: the leaf's G bit (x86 formats; it counts only with CR4.PGE)
 */
struct mkvm_walk {
	u64 gpa;
	int level;
	bool writable, entries_writable, user, executable, dirty, global;
};

int mkvm_walk(const struct mkvm_paging *p, const struct mkvm_walk_env *env, u64 addr,
	      u32 access, struct mkvm_walk *w, struct mkvm_fault *fault);

#ifdef __KERNEL__
#include <linux/kvm.h>

struct mkvm_vcpu;

int mkvm_walk_gva(struct mkvm_vcpu *vcpu, u64 la, u32 access, struct mkvm_walk *w,
		  struct mkvm_fault *fault);
int mkvm_walk_gva_fault(struct mkvm_vcpu *vcpu, u64 la, u32 error_code, struct mkvm_walk *w,
			struct mkvm_fault *fault);
int mkvm_translate_ioctl(struct mkvm_vcpu *vcpu, void __user *argp);
int mkvm_read_phys_pte(struct mkvm_vcpu *vcpu, u64 gpa, u64 *pte, unsigned int bytes);
int mkvm_cmpxchg_phys_pte(struct mkvm_vcpu *vcpu, u64 gpa, u64 old, u64 new, unsigned int bytes);
void mkvm_inject_fault(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault);
#endif

#endif
