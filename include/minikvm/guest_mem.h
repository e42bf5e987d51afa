/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest memory for the emulator (arch/x86/kvm/emulator/guest_mem.c).
 */
#ifndef MINIKVM_GUEST_MEM_H
#define MINIKVM_GUEST_MEM_H

#include <linux/kvm.h>
#include <linux/types.h>

struct mkvm_vcpu;
struct mkvm_fault;

int mkvm_guest_phys_as(struct mkvm_vcpu *vcpu, int as, u64 gpa, void *buf, unsigned int len,
		       bool write);
int mkvm_read_guest_phys(struct mkvm_vcpu *vcpu, u64 gpa, void *buf, unsigned int len);
int mkvm_write_guest_phys(struct mkvm_vcpu *vcpu, u64 gpa, const void *buf, unsigned int len);
void __user *mkvm_gpa_hva(struct mkvm_vcpu *vcpu, int as, u64 gpa, bool write);
int mkvm_read_guest_virt(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la, void *buf,
			 unsigned int len, u32 access, struct mkvm_fault *fault);
int mkvm_write_guest_virt(struct mkvm_vcpu *vcpu, const struct kvm_sregs *s, u64 la,
			  const void *buf, unsigned int len, struct mkvm_fault *fault);

#endif
