/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest page-table walker (arch/x86/kvm/mmu/walk.c) and the faults the
 * emulator raises with it.
 */
#ifndef MINIKVM_WALK_H
#define MINIKVM_WALK_H

#include <linux/kvm.h>
#include <linux/types.h>
#include <asm/trap_pf.h>

struct mkvm_vcpu;

/* What an access is, in #PF error-code bits (SDM vol. 3 4.7). */
#define MKVM_ACC_WRITE		X86_PF_WRITE
#define MKVM_ACC_FETCH		X86_PF_INSTR
/* No rights checked: KVM_TRANSLATE, and physical-address debugging. */
#define MKVM_ACC_NO_CHECK	BIT(31)

/**
 * struct mkvm_fault - an exception the emulator raises instead of the access
 * @vector: PF_VECTOR, GP_VECTOR or SS_VECTOR
 * @error_code: its error code
 * @address: for #PF, the linear address (CR2)
 */
struct mkvm_fault {
	u8 vector;
	u32 error_code;
	u64 address;
};

/**
 * struct mkvm_walk - what a walk found
 * @gpa: the guest-physical address
 * @writable: a write would be allowed (for KVM_TRANSLATE)
 * @user: a user-mode access would be allowed (for KVM_TRANSLATE)
 */
struct mkvm_walk {
	u64 gpa;
	bool writable, user;
};

int mkvm_walk_gva(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, u32 access,
		  struct mkvm_walk *w, struct mkvm_fault *fault);
int mkvm_translate_ioctl(struct mkvm_vcpu *vcpu, void __user *argp);
void mkvm_inject_fault(struct mkvm_vcpu *vcpu, const struct mkvm_fault *fault);

#endif
