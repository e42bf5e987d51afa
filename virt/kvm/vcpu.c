// SPDX-License-Identifier: GPL-2.0
/*
 * vCPUs: KVM_CREATE_VCPU, the vCPU file descriptor, its mmap (kvm_run and
 * the port I/O data page) and the vendor-neutral vCPU ioctls.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <minikvm/core.h>

/**
 * mkvm_vcpu_destroy() - free a vCPU; only the dying VM calls this
 * @vcpu: the vCPU, no longer reachable from any fd
 */
void mkvm_vcpu_destroy(struct mkvm_vcpu *vcpu)
{
	mkvm_arch_vcpu_destroy(vcpu);
	free_page((unsigned long)vcpu->pio_data);
	free_page((unsigned long)vcpu->run);
	kfree(vcpu);
}

static vm_fault_t vcpu_fault(struct vm_fault *vmf)
{
	struct mkvm_vcpu *vcpu = vmf->vma->vm_file->private_data;
	struct page *page;

	switch (vmf->pgoff) {
	case 0:
		page = virt_to_page(vcpu->run);
		break;
	case KVM_PIO_PAGE_OFFSET:
		page = virt_to_page(vcpu->pio_data);
		break;
	case KVM_COALESCED_MMIO_PAGE_OFFSET:
		page = virt_to_page(vcpu->vm->coalesced_ring);
		break;
	default:
		return VM_FAULT_SIGBUS;
	}
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct vcpu_vm_ops = {
	.fault = vcpu_fault,
};

static int vcpu_mmap(struct file *filp, struct vm_area_struct *vma)
{
	vma->vm_ops = &vcpu_vm_ops;
	return 0;
}

static int vcpu_release(struct inode *inode, struct file *filp)
{
	struct mkvm_vcpu *vcpu = filp->private_data;

	mkvm_vm_put(vcpu->vm);
	return 0;
}

static long vcpu_set_signal_mask(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_signal_mask hdr;
	sigset_t set;

	if (!argp) {
		vcpu->sigset_active = false;
		return 0;
	}
	if (copy_from_user(&hdr, argp, sizeof(hdr)))
		return -EFAULT;
	if (hdr.len != sizeof(set))
		return -EINVAL;
	if (copy_from_user(&set, argp + sizeof(hdr), sizeof(set)))
		return -EFAULT;
	/* SIGKILL and SIGSTOP can never be blocked. */
	sigdelsetmask(&set, sigmask(SIGKILL) | sigmask(SIGSTOP));
	vcpu->sigset = set;
	vcpu->sigset_active = true;
	return 0;
}

static long vcpu_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct mkvm_vcpu *vcpu = filp->private_data;
	void __user *argp = (void __user *)arg;
	long r;

	if (vcpu->vm->mm != current->mm)
		return -EIO;
	/* Not a KVM ioctl at all: KVM answers EINVAL here too. */
	if (_IOC_TYPE(ioctl) != KVMIO)
		return -EINVAL;
	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	switch (ioctl) {
	case KVM_SET_SIGNAL_MASK:
		r = vcpu_set_signal_mask(vcpu, argp);
		break;
	case KVM_GET_STATS_FD:
		r = mkvm_vcpu_stats_fd(vcpu);
		break;
	default:
		/* The x86 layer answers EINVAL for an unknown one, as KVM does. */
		mkvm_vcpu_load(vcpu);
		r = mkvm_arch_vcpu_ioctl(vcpu, ioctl, arg);
		mkvm_vcpu_put(vcpu);
	}
	mutex_unlock(&vcpu->mutex);
	return r;
}

static const struct file_operations vcpu_fops = {
	.owner = THIS_MODULE,
	.release = vcpu_release,
	.unlocked_ioctl = vcpu_ioctl,
	.mmap = vcpu_mmap,
	.llseek = noop_llseek,
};

static struct mkvm_vcpu *vcpu_alloc(struct mkvm_vm *vm, u32 id)
{
	struct mkvm_vcpu *vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);

	if (!vcpu)
		return NULL;
	vcpu->vm = vm;
	vcpu->vcpu_id = id;
	mutex_init(&vcpu->mutex);
	vcpu->run = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	vcpu->pio_data = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vcpu->run || !vcpu->pio_data || mkvm_arch_vcpu_create(vcpu)) {
		free_page((unsigned long)vcpu->pio_data);
		free_page((unsigned long)vcpu->run);
		kfree(vcpu);
		return NULL;
	}
	return vcpu;
}

/**
 * mkvm_vm_create_vcpu() - KVM_CREATE_VCPU
 * @vm: the VM
 * @id: the vCPU id (the APIC id on x86)
 *
 * Return: the vCPU's fd; -EINVAL for an id out of range or when the VM has
 * its maximum of vCPUs; -EEXIST for an id in use; -ENOMEM.
 */
int mkvm_vm_create_vcpu(struct mkvm_vm *vm, unsigned long id)
{
	struct mkvm_vcpu *vcpu;
	struct file *file;
	char name[24];
	int r, fd;

	if (id >= MKVM_MAX_VCPU_IDS)
		return -EINVAL;
	mutex_lock(&vm->lock);
	if (vm->created_vcpus >= MKVM_MAX_VCPUS || (vm->max_vcpu_ids && id >= vm->max_vcpu_ids)) {
		mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	/* As in KVM, the first vCPU fixes the id limit if KVM_CAP_MAX_VCPU_ID did not. */
	if (!vm->max_vcpu_ids)
		vm->max_vcpu_ids = MKVM_MAX_VCPU_IDS;
	vm->created_vcpus++;	/* reserve the place while allocating */
	mutex_unlock(&vm->lock);

	r = -ENOMEM;
	vcpu = vcpu_alloc(vm, id);
	if (!vcpu)
		goto unreserve;

	/*
	 * Everything that can fail is done before the vCPU is published: once it
	 * is in vm->vcpus, interrupt delivery may reach it at any time, and it is
	 * freed only with the VM.  The slot is reserved so that storing into it
	 * cannot fail, and the fd is installed last, when nothing can fail.
	 */
	mutex_lock(&vm->lock);
	r = -EEXIST;
	if (xa_load(&vm->vcpus, id))
		goto unlock;
	r = xa_reserve(&vm->vcpus, id, GFP_KERNEL_ACCOUNT);
	if (r)
		goto unlock;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto release_slot;
	}
	snprintf(name, sizeof(name), "kvm-vcpu:%lu", id);
	file = anon_inode_getfile(name, &vcpu_fops, vcpu, O_RDWR);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		r = PTR_ERR(file);
		goto release_slot;
	}
	/* The fd's reference on the VM, dropped by vcpu_release(). */
	mkvm_vm_get(vm);
	xa_store(&vm->vcpus, id, vcpu, GFP_KERNEL_ACCOUNT);
	mutex_unlock(&vm->lock);
	fd_install(fd, file);
	return fd;

release_slot:
	xa_release(&vm->vcpus, id);
unlock:
	mutex_unlock(&vm->lock);
	mkvm_vcpu_destroy(vcpu);
unreserve:
	mutex_lock(&vm->lock);
	vm->created_vcpus--;
	mutex_unlock(&vm->lock);
	return r;
}
