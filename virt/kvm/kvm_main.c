// SPDX-License-Identifier: GPL-2.0
/*
 * minikvm core: module entry and exit.
 *
 * This is the vendor-neutral core's entry point.  It does not yet register
 * /dev/kvm; that arrives with the core/SVM work.  Until then the module only
 * proves that the build against Debian's headers and the test machine's
 * insmod/rmmod cycle work.
 */
#include <linux/module.h>
#include <linux/init.h>

static bool nested;
module_param(nested, bool, 0444);
MODULE_PARM_DESC(nested, "Expose SVM/VMX to guests (not implemented yet)");

static int __init minikvm_init(void)
{
	pr_info("minikvm: loaded (no /dev/kvm yet)\n");
	return 0;
}

static void __exit minikvm_exit(void)
{
	pr_info("minikvm: unloaded\n");
}

module_init(minikvm_init);
module_exit(minikvm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("minikvm: a small hypervisor with the KVM ABI");
