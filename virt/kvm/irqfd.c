// SPDX-License-Identifier: GPL-2.0
/*
 * KVM_IRQFD (api.rst 4.75): a write to an eventfd raises a GSI from the
 * kernel, without a trip through userspace's KVM_IRQ_LINE.
 *
 * The eventfd's wait queue calls back into minikvm when it is written, and
 * the GSI is raised right there, in atomic context, through whatever the
 * routing table says at that moment: a route changed by KVM_SET_GSI_ROUTING
 * applies to the irqfds already attached to its GSI.  Without resampling a
 * write is an edge (the line goes up and down); with KVM_IRQFD_FLAG_RESAMPLE
 * the line stays up until the guest EOIs the interrupt at the IOAPIC, which
 * lowers it and signals the resamplefd so that the device can raise it again
 * if it still needs service.
 *
 * An irqfd ends on KVM_IRQFD_FLAG_DEASSIGN, when its eventfd is closed
 * (EPOLLHUP) or with its VM.  Unhooking from the wait queue cannot happen
 * inside the queue's own callback, so it is deferred to a workqueue, which
 * deassignment and VM destruction flush.  The checks and errnos are KVM's.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/poll.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include <minikvm/core.h>
#include <minikvm/irq.h>

/* The irqfds of one GSI with resampling share one EOI notification. */
struct resampler {
	struct mkvm_vm *vm;
	struct list_head link;		/* vm->resamplers */
	struct list_head irqfds;	/* RCU, for the ack callback */
	struct mkvm_irq_ack_notifier ack;
};

struct irqfd {
	struct mkvm_vm *vm;
	struct list_head list;		/* vm->irqfds; empty once deactivated */
	u32 gsi;
	struct eventfd_ctx *eventfd;
	wait_queue_entry_t wait;
	poll_table pt;
	struct work_struct shutdown;
	struct resampler *resampler;
	struct eventfd_ctx *resamplefd;
	struct list_head resampler_link;
};

static struct workqueue_struct *cleanup_wq;

/* The eventfd was written: raise the GSI. */
static void inject(struct irqfd *irqfd)
{
	if (irqfd->resampler) {
		mkvm_set_irq(irqfd->vm, MKVM_IRQ_SRC_RESAMPLE, irqfd->gsi, 1);
	} else {
		mkvm_set_irq(irqfd->vm, MKVM_IRQ_SRC_USER, irqfd->gsi, 1);
		mkvm_set_irq(irqfd->vm, MKVM_IRQ_SRC_USER, irqfd->gsi, 0);
	}
}

/* The guest EOIed the GSI's interrupt: lower the line, tell the devices. */
static void resampler_acked(struct mkvm_irq_ack_notifier *n)
{
	struct resampler *rs = container_of(n, struct resampler, ack);
	struct irqfd *irqfd;

	mkvm_set_irq(rs->vm, MKVM_IRQ_SRC_RESAMPLE, n->gsi, 0);
	list_for_each_entry_rcu(irqfd, &rs->irqfds, resampler_link)
		eventfd_signal(irqfd->resamplefd, 1);
}

static int resampler_attach(struct irqfd *irqfd)
{
	struct mkvm_vm *vm = irqfd->vm;
	struct resampler *rs;
	int r = 0;

	mutex_lock(&vm->resamplers_lock);
	list_for_each_entry(rs, &vm->resamplers, link)
		if (rs->ack.gsi == irqfd->gsi)
			goto found;
	rs = kzalloc(sizeof(*rs), GFP_KERNEL_ACCOUNT);
	if (!rs) {
		r = -ENOMEM;
		goto out;
	}
	rs->vm = vm;
	INIT_LIST_HEAD(&rs->irqfds);
	rs->ack.gsi = irqfd->gsi;
	rs->ack.acked = resampler_acked;
	list_add(&rs->link, &vm->resamplers);
	mkvm_irq_register_ack_notifier(vm, &rs->ack);
found:
	list_add_rcu(&irqfd->resampler_link, &rs->irqfds);
	irqfd->resampler = rs;
out:
	mutex_unlock(&vm->resamplers_lock);
	return r;
}

/* The last irqfd of a resampler leaves with the line low. */
static void resampler_detach(struct irqfd *irqfd)
{
	struct resampler *rs = irqfd->resampler;
	struct mkvm_vm *vm = irqfd->vm;

	mutex_lock(&vm->resamplers_lock);
	list_del_rcu(&irqfd->resampler_link);
	synchronize_rcu();
	if (list_empty(&rs->irqfds)) {
		list_del(&rs->link);
		mkvm_irq_unregister_ack_notifier(vm, &rs->ack);
		mkvm_set_irq(vm, MKVM_IRQ_SRC_RESAMPLE, rs->ack.gsi, 0);
		kfree(rs);
	}
	mutex_unlock(&vm->resamplers_lock);
	irqfd->resampler = NULL;
}

static void irqfd_shutdown(struct work_struct *work)
{
	struct irqfd *irqfd = container_of(work, struct irqfd, shutdown);
	u64 cnt;

	/* After this the eventfd calls back no more. */
	eventfd_ctx_remove_wait_queue(irqfd->eventfd, &irqfd->wait, &cnt);
	if (irqfd->resampler)
		resampler_detach(irqfd);
	if (irqfd->resamplefd)
		eventfd_ctx_put(irqfd->resamplefd);
	eventfd_ctx_put(irqfd->eventfd);
	kfree(irqfd);
}

/* With vm->irqfds_lock held. */
static void deactivate(struct irqfd *irqfd)
{
	list_del_init(&irqfd->list);
	queue_work(cleanup_wq, &irqfd->shutdown);
}

static int irqfd_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync, void *key)
{
	struct irqfd *irqfd = container_of(wait, struct irqfd, wait);
	__poll_t events = key_to_poll(key);
	struct mkvm_vm *vm = irqfd->vm;
	unsigned long flags;
	u64 cnt;

	if (events & EPOLLIN) {
		/* Consume the count: the next write is the next interrupt. */
		eventfd_ctx_do_read(irqfd->eventfd, &cnt);
		inject(irqfd);
	}
	if (events & EPOLLHUP) {
		/* The eventfd is being released: detach, unless already on the way out. */
		spin_lock_irqsave(&vm->irqfds_lock, flags);
		if (!list_empty(&irqfd->list))
			deactivate(irqfd);
		spin_unlock_irqrestore(&vm->irqfds_lock, flags);
	}
	return 0;
}

static void irqfd_queue_proc(struct file *file, wait_queue_head_t *wqh, poll_table *pt)
{
	struct irqfd *irqfd = container_of(pt, struct irqfd, pt);

	add_wait_queue(wqh, &irqfd->wait);
}

static int irqfd_assign(struct mkvm_vm *vm, const struct kvm_irqfd *args)
{
	bool resample = args->flags & KVM_IRQFD_FLAG_RESAMPLE;
	struct eventfd_ctx *eventfd;
	struct irqfd *irqfd, *tmp;
	__poll_t events;
	struct fd f;
	int r;

	if (!mkvm_irqfd_allowed(vm, resample))
		return -EINVAL;
	irqfd = kzalloc(sizeof(*irqfd), GFP_KERNEL_ACCOUNT);
	if (!irqfd)
		return -ENOMEM;
	irqfd->vm = vm;
	irqfd->gsi = args->gsi;
	INIT_LIST_HEAD(&irqfd->list);
	INIT_LIST_HEAD(&irqfd->resampler_link);
	INIT_WORK(&irqfd->shutdown, irqfd_shutdown);
	f = fdget(args->fd);
	if (!f.file) {
		kfree(irqfd);
		return -EBADF;
	}
	eventfd = eventfd_ctx_fileget(f.file);
	if (IS_ERR(eventfd)) {
		r = PTR_ERR(eventfd);
		goto fail;
	}
	irqfd->eventfd = eventfd;
	if (resample) {
		irqfd->resamplefd = eventfd_ctx_fdget(args->resamplefd);
		if (IS_ERR(irqfd->resamplefd)) {
			r = PTR_ERR(irqfd->resamplefd);
			irqfd->resamplefd = NULL;
			goto fail;
		}
		r = resampler_attach(irqfd);
		if (r)
			goto fail;
	}
	init_waitqueue_func_entry(&irqfd->wait, irqfd_wakeup);
	init_poll_funcptr(&irqfd->pt, irqfd_queue_proc);

	spin_lock_irq(&vm->irqfds_lock);
	list_for_each_entry(tmp, &vm->irqfds, list) {
		if (tmp->eventfd == eventfd) {
			/* One eventfd raises one GSI. */
			spin_unlock_irq(&vm->irqfds_lock);
			r = -EBUSY;
			goto fail;
		}
	}
	list_add_tail(&irqfd->list, &vm->irqfds);
	spin_unlock_irq(&vm->irqfds_lock);

	/* A write that came before the irqfd existed counts too. */
	events = vfs_poll(f.file, &irqfd->pt);
	if (events & EPOLLIN)
		inject(irqfd);
	fdput(f);
	return 0;

fail:
	if (irqfd->resampler)
		resampler_detach(irqfd);
	if (irqfd->resamplefd)
		eventfd_ctx_put(irqfd->resamplefd);
	if (irqfd->eventfd)
		eventfd_ctx_put(irqfd->eventfd);
	fdput(f);
	kfree(irqfd);
	return r;
}

static int irqfd_deassign(struct mkvm_vm *vm, const struct kvm_irqfd *args)
{
	struct eventfd_ctx *eventfd = eventfd_ctx_fdget(args->fd);
	struct irqfd *irqfd, *tmp;

	if (IS_ERR(eventfd))
		return PTR_ERR(eventfd);
	spin_lock_irq(&vm->irqfds_lock);
	list_for_each_entry_safe(irqfd, tmp, &vm->irqfds, list)
		if (irqfd->eventfd == eventfd && irqfd->gsi == args->gsi)
			deactivate(irqfd);
	spin_unlock_irq(&vm->irqfds_lock);
	eventfd_ctx_put(eventfd);
	/* No interrupt from it once this returns. */
	flush_workqueue(cleanup_wq);
	return 0;
}

/**
 * mkvm_irqfd() - KVM_IRQFD
 * @vm: the VM
 * @args: the ioctl's argument
 *
 * Return: 0; -EINVAL for unknown flags, without an in-kernel irqchip, or
 * when a file is not an eventfd; -EBADF for a bad fd; -EBUSY when the
 * eventfd already raises a GSI; -ENOMEM.  Deassigning what is not assigned
 * succeeds, as in KVM.
 */
int mkvm_irqfd(struct mkvm_vm *vm, const struct kvm_irqfd *args)
{
	int r;

	if (args->flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE))
		return -EINVAL;
	/*
	 * An irqfd is listed before it is on the eventfd's wait queue: a
	 * deassignment racing with its assignment must not unhook it in between.
	 */
	mutex_lock(&vm->irqfds_mutex);
	if (args->flags & KVM_IRQFD_FLAG_DEASSIGN)
		r = irqfd_deassign(vm, args);
	else
		r = irqfd_assign(vm, args);
	mutex_unlock(&vm->irqfds_mutex);
	return r;
}

/**
 * mkvm_irqfd_init() - a new VM has no irqfds
 * @vm: the VM
 */
void mkvm_irqfd_init(struct mkvm_vm *vm)
{
	INIT_LIST_HEAD(&vm->irqfds);
	spin_lock_init(&vm->irqfds_lock);
	mutex_init(&vm->irqfds_mutex);
	INIT_LIST_HEAD(&vm->resamplers);
	mutex_init(&vm->resamplers_lock);
}

/**
 * mkvm_irqfd_destroy() - detach every irqfd of a dying VM
 * @vm: the VM, whose vCPUs and irqchip still exist
 */
void mkvm_irqfd_destroy(struct mkvm_vm *vm)
{
	struct irqfd *irqfd, *tmp;

	spin_lock_irq(&vm->irqfds_lock);
	list_for_each_entry_safe(irqfd, tmp, &vm->irqfds, list)
		deactivate(irqfd);
	spin_unlock_irq(&vm->irqfds_lock);
	flush_workqueue(cleanup_wq);
}

/**
 * mkvm_irqfd_module_init() - the workqueue that detaches irqfds
 *
 * Return: 0 or -ENOMEM.
 */
int mkvm_irqfd_module_init(void)
{
	cleanup_wq = alloc_workqueue("mkvm-irqfd-cleanup", 0, 0);
	return cleanup_wq ? 0 : -ENOMEM;
}

/**
 * mkvm_irqfd_module_exit() - at module unload, when no VM is left
 */
void mkvm_irqfd_module_exit(void)
{
	destroy_workqueue(cleanup_wq);
}
