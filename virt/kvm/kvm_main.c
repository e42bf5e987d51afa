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

/* Set once the hardware is set up: /dev/kvm exists a little before that. */
static bool ready;

static int dev_open(struct inode *inode, struct file *filp)
{
	return smp_load_acquire(&ready) ? 0 : -ENODEV;
}

static const struct file_operations dev_fops = {
	.owner = THIS_MODULE,
	.open = dev_open,
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
	int r = mkvm_irqfd_module_init();

	if (r)
		return r;
	/*
	 * /dev/kvm first: where KVM holds it, nothing of the hardware is
	 * touched (KVM may also hold the kernel's one emergency-reboot
	 * callback).  No one can open it before the hardware is ready.
	 */
	r = misc_register(&kvm_dev);
	if (r == -EBUSY)
		pr_err("minikvm: /dev/kvm (misc minor %d) is taken, probably by kvm.ko: "
		       "unload kvm_amd/kvm_intel and kvm first\n", KVM_MINOR);
	else if (r)
		pr_err("minikvm: cannot register /dev/kvm: %d\n", r);
	if (r)
		goto irqfd;
	r = mkvm_arch_init();
	if (r == -EOPNOTSUPP)
		pr_err("minikvm: this CPU has no usable SVM or VMX\n");
	if (r)
		goto misc;
	/* Pairs with the acquire in dev_open(). */
	smp_store_release(&ready, true);
	pr_info("minikvm: /dev/kvm registered, using %s\n", mkvm_x86->name);
	return 0;

misc:
	misc_deregister(&kvm_dev);
irqfd:
	mkvm_irqfd_module_exit();
	return r;
}

static void __exit minikvm_exit(void)
{
	/* Open fds hold the module: none is left, and none can be made after this. */
	misc_deregister(&kvm_dev);
	mkvm_irqfd_module_exit();
	mkvm_arch_exit();
}

module_init(minikvm_init);
module_exit(minikvm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("minikvm: a small hypervisor with the KVM ABI");
