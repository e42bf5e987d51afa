// SPDX-License-Identifier: GPL-2.0
/*
 * Binary statistics (api.rst 4.133 KVM_GET_STATS_FD): a read-only file per
 * VM or vCPU laid out as header, id string, descriptors and data, whose
 * data are the live counters at the time of each read.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>

#include <minikvm/core.h>

/* A descriptor as userspace reads it: the fixed part, then the name. */
struct mkvm_stats_desc {
	struct kvm_stats_desc desc;
	char name[MKVM_STATS_NAME_SIZE];
};

#define STAT(st, field, kind, unit, exp) {					\
	.desc = {								\
		.flags = (kind) | (unit) | KVM_STATS_BASE_POW10,		\
		.exponent = (exp),						\
		.size = 1,							\
		.offset = offsetof(st, field),					\
	},									\
	.name = #field,								\
}
/* The three shapes KVM's counters take: a count, a level, a time in ns. */
#define COUNTER(st, f) STAT(st, f, KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_UNIT_NONE, 0)
#define LEVEL(st, f) STAT(st, f, KVM_STATS_TYPE_INSTANT, KVM_STATS_UNIT_NONE, 0)
#define FLAG(st, f) STAT(st, f, KVM_STATS_TYPE_INSTANT, KVM_STATS_UNIT_BOOLEAN, 0)
#define NSECS(st, f) STAT(st, f, KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_UNIT_SECONDS, -9)

static const struct mkvm_stats_desc vm_descs[] = {
	COUNTER(struct mkvm_vm_stat, remote_tlb_flush),
	LEVEL(struct mkvm_vm_stat, pages_4k),
	LEVEL(struct mkvm_vm_stat, pages_2m),
};

static const struct mkvm_stats_desc vcpu_descs[] = {
	COUNTER(struct mkvm_vcpu_stat, halt_successful_poll),
	COUNTER(struct mkvm_vcpu_stat, halt_attempted_poll),
	COUNTER(struct mkvm_vcpu_stat, halt_wakeup),
	NSECS(struct mkvm_vcpu_stat, halt_wait_ns),
	FLAG(struct mkvm_vcpu_stat, blocking),
	COUNTER(struct mkvm_vcpu_stat, exits),
	COUNTER(struct mkvm_vcpu_stat, irq_exits),
	COUNTER(struct mkvm_vcpu_stat, io_exits),
	COUNTER(struct mkvm_vcpu_stat, mmio_exits),
	COUNTER(struct mkvm_vcpu_stat, signal_exits),
	COUNTER(struct mkvm_vcpu_stat, halt_exits),
	COUNTER(struct mkvm_vcpu_stat, irq_window_exits),
	COUNTER(struct mkvm_vcpu_stat, nmi_window_exits),
	COUNTER(struct mkvm_vcpu_stat, request_irq_exits),
	COUNTER(struct mkvm_vcpu_stat, insn_emulation),
	COUNTER(struct mkvm_vcpu_stat, insn_emulation_fail),
	COUNTER(struct mkvm_vcpu_stat, hypercalls),
	COUNTER(struct mkvm_vcpu_stat, nmi_injections),
	COUNTER(struct mkvm_vcpu_stat, pf_fixed),
	COUNTER(struct mkvm_vcpu_stat, pf_emulate),
};

struct stats_file {
	struct mkvm_vm *vm;		/* held: the counters live as long as it */
	const struct mkvm_stats_desc *descs;
	unsigned int n;
	const u64 *data;		/* the live counters, in descriptor order */
	char id[MKVM_STATS_NAME_SIZE];
};

static ssize_t stats_read(struct file *file, char __user *ubuf, size_t size, loff_t *pos)
{
	const struct stats_file *sf = file->private_data;
	size_t desc_bytes = sf->n * sizeof(*sf->descs);
	struct kvm_stats_header h = {
		.name_size = MKVM_STATS_NAME_SIZE,
		.num_desc = sf->n,
		.id_offset = sizeof(h),
		.desc_offset = sizeof(h) + MKVM_STATS_NAME_SIZE,
		.data_offset = sizeof(h) + MKVM_STATS_NAME_SIZE + desc_bytes,
	};
	size_t total = h.data_offset + sf->n * sizeof(u64);
	u64 *data;
	ssize_t r;
	char *buf;
	u32 i;

	/* Small (a few KiB): the whole file is built for each read. */
	buf = kzalloc(total, GFP_KERNEL_ACCOUNT);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + h.id_offset, sf->id, MKVM_STATS_NAME_SIZE);
	memcpy(buf + h.desc_offset, sf->descs, desc_bytes);
	data = (u64 *)(buf + h.data_offset);
	/* Each counter is one aligned u64, written by its owner alone: no lock. */
	for (i = 0; i < sf->n; i++)
		data[i] = READ_ONCE(sf->data[i]);
	r = simple_read_from_buffer(ubuf, size, pos, buf, total);
	kfree(buf);
	return r;
}

static int stats_release(struct inode *inode, struct file *file)
{
	struct stats_file *sf = file->private_data;

	mkvm_vm_put(sf->vm);
	kfree(sf);
	return 0;
}

static const struct file_operations stats_fops = {
	.owner = THIS_MODULE,
	.read = stats_read,
	.release = stats_release,
	.llseek = noop_llseek,
};

static int stats_fd(struct mkvm_vm *vm, const struct mkvm_stats_desc *descs, unsigned int n,
		    const u64 *data, const char *id)
{
	struct stats_file *sf;
	struct file *file;
	int fd;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	if (!sf)
		return -ENOMEM;
	sf->vm = vm;
	sf->descs = descs;
	sf->n = n;
	sf->data = data;
	strscpy(sf->id, id, sizeof(sf->id));
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		kfree(sf);
		return fd;
	}
	file = anon_inode_getfile("kvm-stats", &stats_fops, sf, O_RDONLY);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		kfree(sf);
		return PTR_ERR(file);
	}
	/* Readers use pread(); an anonymous inode's file does not allow it by default. */
	file->f_mode |= FMODE_PREAD;
	mkvm_vm_get(vm);
	fd_install(fd, file);
	return fd;
}

/**
 * mkvm_vm_stats_fd() - KVM_GET_STATS_FD on a VM
 * @vm: the VM
 *
 * Return: the new fd, or -ENOMEM, -EMFILE, ...
 */
int mkvm_vm_stats_fd(struct mkvm_vm *vm)
{
	BUILD_BUG_ON(ARRAY_SIZE(vm_descs) * sizeof(u64) != sizeof(struct mkvm_vm_stat));
	return stats_fd(vm, vm_descs, ARRAY_SIZE(vm_descs), (const u64 *)&vm->stat,
			vm->stats_id);
}

/**
 * mkvm_vcpu_stats_fd() - KVM_GET_STATS_FD on a vCPU
 * @vcpu: the vCPU, freed only with its VM, which the fd holds
 *
 * Return: the new fd, or -ENOMEM, -EMFILE, ...
 */
int mkvm_vcpu_stats_fd(struct mkvm_vcpu *vcpu)
{
	char id[MKVM_STATS_NAME_SIZE];

	BUILD_BUG_ON(ARRAY_SIZE(vcpu_descs) * sizeof(u64) != sizeof(struct mkvm_vcpu_stat));
	snprintf(id, sizeof(id), "%s/vcpu-%u", vcpu->vm->stats_id, vcpu->vcpu_id);
	return stats_fd(vcpu->vm, vcpu_descs, ARRAY_SIZE(vcpu_descs),
			(const u64 *)&vcpu->stat, id);
}
