/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The in-kernel i8254 PIT of KVM_CREATE_PIT2 (arch/x86/kvm/irqchip/pit.c).
 */
#ifndef MINIKVM_PIT_H
#define MINIKVM_PIT_H

#include <linux/types.h>

struct mkvm_vm;

long mkvm_pit_vm_ioctl(struct mkvm_vm *vm, unsigned int ioctl, void __user *argp);
bool mkvm_pit_pio(struct mkvm_vm *vm, u16 port, unsigned int len, bool in, u32 *val);
void mkvm_pit_destroy(struct mkvm_vm *vm);

#endif
