// SPDX-License-Identifier: GPL-2.0
/*
 * minikvm core: the /dev/kvm device, its system ioctls, and module load.
 */
#include <linux/fs.h>
#include <linux/init.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

#include <minikvm/core.h>
#include <minikvm/irq.h>

/* Read by the vendor at load; it clears it when it cannot nest (svm/nested.c). */
bool mkvm_nested;
module_param_named(nested, mkvm_nested, bool, 0444);
MODULE_PARM_DESC(nested, "Let guests use SVM to run their own guests (Documentation/nested.rst); not on VMX yet");

static long dev_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	switch (ioctl) {
	case KVM_GET_API_VERSION:
		if (arg)
			return -EINVAL;
		return KVM_API_VERSION;
	case KVM_CREATE_VM:
		return mkvm_dev_create_vm(arg);
	case KVM_CHECK_EXTENSION:
		return mkvm_check_extension(NULL, arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		if (arg)
			return -EINVAL;
		return MKVM_VCPU_MMAP_PAGES * PAGE_SIZE;
	default:
		/* The x86 layer answers EINVAL for an unknown one, as KVM does. */
		return mkvm_arch_dev_ioctl(ioctl, arg);
	}
}

static const struct file_operations dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kvm_dev = {
	.minor = KVM_MINOR,
	.name = "kvm",
	.fops = &dev_fops,
	.mode = 0660,
};

static int __init minikvm_init(void)
{
	int r = mkvm_arch_init();

	if (r == -EOPNOTSUPP) {
		pr_err("minikvm: this CPU has no usable SVM or VMX\n");
		return r;
	}
	if (r)
		return r;
	r = mkvm_irqfd_module_init();
	if (r) {
		mkvm_arch_exit();
		return r;
	}
	r = misc_register(&kvm_dev);
	if (r) {
		mkvm_irqfd_module_exit();
		mkvm_arch_exit();
	}
	if (r == -EBUSY) {
		pr_err("minikvm: /dev/kvm (misc minor %d) is taken, probably by kvm.ko: "
		       "unload kvm_amd/kvm_intel and kvm first\n", KVM_MINOR);
		return r;
	}
	if (r) {
		pr_err("minikvm: cannot register /dev/kvm: %d\n", r);
		return r;
	}
	mkvm_arch_emergency(true);
	pr_info("minikvm: /dev/kvm registered, using %s\n", mkvm_x86->name);
	return 0;
}

static void __exit minikvm_exit(void)
{
	misc_deregister(&kvm_dev);
	mkvm_arch_emergency(false);
	mkvm_irqfd_module_exit();
	mkvm_arch_exit();
}

module_init(minikvm_init);
module_exit(minikvm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("minikvm: a small hypervisor with the KVM ABI");
