// SPDX-License-Identifier: GPL-2.0
/*
 * VMs: creation, the VM file descriptor and its ioctls, and lifetime.
 *
 * A VM is referenced by its fd and by every vCPU fd, so the fds may be
 * closed in any order; the last one frees the VM and its vCPUs.  The module
 * cannot be unloaded while any of them is open (the fds' fops own it).
 */
#include <linux/anon_inodes.h>
#include <linux/cpumask.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>
#include <minikvm/irq.h>

void mkvm_vm_get(struct mkvm_vm *vm)
{
	refcount_inc(&vm->users);
}

static void vm_destroy(struct mkvm_vm *vm)
{
	struct mkvm_vcpu *vcpu;
	unsigned long i;

	/* Stop what raises interrupts before the vCPUs it reaches go away. */
	mkvm_irqfd_destroy(vm);
	mkvm_arch_vm_shutdown(vm);
	xa_for_each(&vm->vcpus, i, vcpu)
		mkvm_vcpu_destroy(vcpu);
	xa_destroy(&vm->vcpus);
	mkvm_ioeventfd_destroy(vm);
	mkvm_coalesced_destroy(vm);
	mkvm_arch_vm_destroy(vm);
	mkvm_free_memslots(vm);
	mmdrop(vm->mm);
	kfree(vm);
}

/**
 * mkvm_vm_put() - drop a reference; the last one destroys the VM
 * @vm: the VM
 */
void mkvm_vm_put(struct mkvm_vm *vm)
{
	if (refcount_dec_and_test(&vm->users))
		vm_destroy(vm);
}

/*
 * KVM_ENABLE_CAP(KVM_CAP_MAX_VCPU_ID): a lower bound on vCPU ids, set once
 * (setting the same value again succeeds), as in KVM.
 */
static int set_max_vcpu_id(struct mkvm_vm *vm, const struct kvm_enable_cap *cap)
{
	int r = -EINVAL;

	if (cap->flags || cap->args[0] > MKVM_MAX_VCPU_IDS)
		return -EINVAL;
	mutex_lock(&vm->lock);
	if (vm->max_vcpu_ids == cap->args[0]) {
		r = 0;
	} else if (!vm->max_vcpu_ids) {
		vm->max_vcpu_ids = cap->args[0];
		r = 0;
	}
	mutex_unlock(&vm->lock);
	return r;
}

/**
 * mkvm_check_extension() - KVM_CHECK_EXTENSION on /dev/kvm or a VM fd
 * @vm: the VM, or NULL on /dev/kvm
 * @cap: a KVM_CAP_* number
 *
 * Only what minikvm implements is reported; everything else is 0.
 *
 * Return: the capability's value.
 */
long mkvm_check_extension(struct mkvm_vm *vm, long cap)
{
	switch (cap) {
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
	case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
	case KVM_CAP_CHECK_EXTENSION_VM:
	case KVM_CAP_IOEVENTFD:
	case KVM_CAP_IOEVENTFD_NO_LENGTH:
	case KVM_CAP_IOEVENTFD_ANY_LENGTH:
	case KVM_CAP_ENABLE_CAP_VM:
	case KVM_CAP_HALT_POLL:
	case KVM_CAP_COALESCED_PIO:
	case KVM_CAP_BINARY_STATS_FD:
		return 1;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		return MKVM_DIRTY_LOG_MANUAL_CAPS;
	case KVM_CAP_COALESCED_MMIO:
		/* The ring's page in the vCPU mapping, as KVM answers. */
		return KVM_COALESCED_MMIO_PAGE_OFFSET;
	case KVM_CAP_NR_VCPUS:
		return min_t(unsigned int, num_online_cpus(), MKVM_MAX_VCPUS);
	case KVM_CAP_MAX_VCPUS:
		return MKVM_MAX_VCPUS;
	case KVM_CAP_MAX_VCPU_ID:
		return MKVM_MAX_VCPU_IDS;
	case KVM_CAP_NR_MEMSLOTS:
		return MKVM_USER_MEM_SLOTS;
	case KVM_CAP_MULTI_ADDRESS_SPACE:
		return MKVM_ADDRESS_SPACES;
	default:
		return mkvm_arch_check_extension(vm, cap);
	}
}

static long vm_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct mkvm_vm *vm = filp->private_data;
	void __user *argp = (void __user *)arg;

	/* A VM belongs to the process that created it (api.rst 3). */
	if (vm->mm != current->mm)
		return -EIO;

	switch (ioctl) {
	case KVM_CREATE_VCPU:
		return mkvm_vm_create_vcpu(vm, arg);
	case KVM_SET_USER_MEMORY_REGION: {
		struct kvm_userspace_memory_region mem;

		if (copy_from_user(&mem, argp, sizeof(mem)))
			return -EFAULT;
		return mkvm_set_memory_region(vm, &mem);
	}
	case KVM_GET_DIRTY_LOG: {
		struct kvm_dirty_log log;

		if (copy_from_user(&log, argp, sizeof(log)))
			return -EFAULT;
		return mkvm_get_dirty_log(vm, &log);
	}
	case KVM_CLEAR_DIRTY_LOG: {
		struct kvm_clear_dirty_log log;

		if (copy_from_user(&log, argp, sizeof(log)))
			return -EFAULT;
		return mkvm_clear_dirty_log(vm, &log);
	}
	case KVM_CHECK_EXTENSION:
		return mkvm_check_extension(vm, arg);
	case KVM_GET_STATS_FD:
		return mkvm_vm_stats_fd(vm);
	case KVM_ENABLE_CAP: {
		struct kvm_enable_cap cap;

		if (copy_from_user(&cap, argp, sizeof(cap)))
			return -EFAULT;
		switch (cap.cap) {
		case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
			return mkvm_enable_manual_dirty_log(vm, &cap);
		case KVM_CAP_MAX_VCPU_ID:
			return set_max_vcpu_id(vm, &cap);
		case KVM_CAP_HALT_POLL:
			return mkvm_halt_poll_set_max(vm, &cap);
		default:
			/* The architecture's, or -EINVAL as KVM answers for the rest. */
			return mkvm_arch_vm_enable_cap(vm, &cap);
		}
	}
	case KVM_IOEVENTFD: {
		struct kvm_ioeventfd args;

		if (copy_from_user(&args, argp, sizeof(args)))
			return -EFAULT;
		return mkvm_ioeventfd(vm, &args);
	}
	case KVM_REGISTER_COALESCED_MMIO:
	case KVM_UNREGISTER_COALESCED_MMIO: {
		struct kvm_coalesced_mmio_zone zone;

		if (copy_from_user(&zone, argp, sizeof(zone)))
			return -EFAULT;
		return mkvm_coalesced_ioctl(vm, ioctl == KVM_REGISTER_COALESCED_MMIO, &zone);
	}
	case KVM_IRQFD: {
		struct kvm_irqfd args;

		if (copy_from_user(&args, argp, sizeof(args)))
			return -EFAULT;
		return mkvm_irqfd(vm, &args);
	}
	default:
		/* The x86 layer answers ENOTTY for an unknown one, as KVM does. */
		return mkvm_arch_vm_ioctl(vm, ioctl, arg);
	}
}

static int vm_release(struct inode *inode, struct file *filp)
{
	mkvm_vm_put(filp->private_data);
	return 0;
}

static const struct file_operations vm_fops = {
	.owner = THIS_MODULE,
	.release = vm_release,
	.unlocked_ioctl = vm_ioctl,
	.llseek = noop_llseek,
};

/**
 * mkvm_dev_create_vm() - KVM_CREATE_VM
 * @type: the machine type; x86 has only type 0
 *
 * Return: the new VM's fd, -EINVAL for another type, -ENOMEM, or the error
 * of allocating the fd.
 */
int mkvm_dev_create_vm(unsigned long type)
{
	struct mkvm_vm *vm;
	int fd;

	if (type)
		return -EINVAL;
	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;
	refcount_set(&vm->users, 1);
	mutex_init(&vm->lock);
	mutex_init(&vm->slots_lock);
	init_rwsem(&vm->slots_sem);
	for (int as = 0; as < MKVM_ADDRESS_SPACES; as++)
		xa_init(&vm->memslots[as]);
	xa_init(&vm->vcpus);
	mkvm_ioeventfd_init(vm);
	mkvm_irqfd_init(vm);
	mmgrab(current->mm);
	vm->mm = current->mm;
	snprintf(vm->stats_id, sizeof(vm->stats_id), "kvm-%d", task_pid_nr(current));
	if (mkvm_coalesced_init(vm) || mkvm_arch_vm_init(vm)) {
		mkvm_vm_put(vm);
		return -ENOMEM;
	}

	fd = anon_inode_getfd("kvm-vm", &vm_fops, vm, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		mkvm_vm_put(vm);
	return fd;
}
