// SPDX-License-Identifier: GPL-2.0
/*
 * VMs, memslots, guest memory and the guest's descriptor and page tables.
 */
#include <fcntl.h>
#include <stdio.h>
#include <link.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"

extern char guest_idt_stubs[];
extern char guest_user_trampoline[], guest_user_trampoline_end[];
void guest_user_return_handler(struct ex_regs *regs);

/**
 * open_kvm() - open /dev/kvm, or skip the test when there is none
 *
 * Return: the file descriptor.
 */
int open_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENODEV))
		SKIP("/dev/kvm is not available: %s", strerror(errno));
	TEST_ASSERT(fd >= 0, "open /dev/kvm: %s", strerror(errno));
	return fd;
}

/**
 * kvm_check_cap() - KVM_CHECK_EXTENSION on /dev/kvm
 * @cap: a KVM_CAP_* number
 *
 * Return: the extension's value (0 when absent).
 */
int kvm_check_cap(long cap)
{
	int fd = open_kvm(), r;

	r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
	TEST_ASSERT(r >= 0, "KVM_CHECK_EXTENSION(%ld): %s", cap, strerror(errno));
	close(fd);
	return r;
}

int __vm_ioctl(struct kvm_vm *vm, unsigned long cmd, void *arg)
{
	return ioctl(vm->fd, cmd, arg);
}

/**
 * vm_ioctl() - an ioctl on the VM fd that must succeed
 * @vm: the VM
 * @cmd: ioctl number
 * @arg: its argument
 * @name: the ioctl's name, for the failure message
 */
void vm_ioctl(struct kvm_vm *vm, unsigned long cmd, void *arg, const char *name)
{
	int r = __vm_ioctl(vm, cmd, arg);

	TEST_ASSERT(r >= 0, "%s failed: %s", name, strerror(errno));
}

static struct lib_slot *find_slot(struct kvm_vm *vm, uint32_t slot)
{
	for (int i = 0; i < vm->nr_slots; i++)
		if (vm->slots[i].slot == slot)
			return &vm->slots[i];
	return NULL;
}

/**
 * __vm_set_memslot() - raw KVM_SET_USER_MEMORY_REGION
 * @vm: the VM
 * @slot: slot id
 * @flags: KVM_MEM_* flags
 * @gpa: guest physical address
 * @size: size in bytes (0 deletes)
 * @hva: host address backing it
 *
 * Return: the ioctl's return value; errno is set on failure.
 */
int __vm_set_memslot(struct kvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		     uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)hva,
	};

	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r);
}

/**
 * vm_add_memslot() - back a new slot with fresh anonymous memory
 * @vm: the VM
 * @slot: slot id
 * @flags: KVM_MEM_* flags
 * @gpa: guest physical address
 * @size: size in bytes
 *
 * Return: the host address of the slot's memory.
 */
void *vm_add_memslot(struct kvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
		     uint64_t size)
{
	void *hva;

	TEST_ASSERT(vm->nr_slots < MAX_LIB_SLOTS, "too many library slots");
	hva = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TEST_ASSERT(hva != MAP_FAILED, "mmap %" PRIu64 " bytes: %s", size, strerror(errno));
	TEST_ASSERT(__vm_set_memslot(vm, slot, flags, gpa, size, hva) == 0,
		    "KVM_SET_USER_MEMORY_REGION slot %u gpa %#" PRIx64 " size %#" PRIx64 ": %s",
		    slot, gpa, size, strerror(errno));
	vm->slots[vm->nr_slots++] = (struct lib_slot){ slot, flags, gpa, size, hva };
	return hva;
}

/**
 * vm_add_memslot_huge() - a new slot in 2 MiB-aligned memory that asks for huge pages
 * @vm: the VM
 * @slot: slot id
 * @flags: KVM_MEM_* flags
 * @gpa: guest physical address, 2 MiB-aligned
 * @size: size in bytes, a multiple of 2 MiB
 *
 * The memory is touched, so that the host backs what it can with
 * transparent huge pages now; host_huge_kb() says how much it did.
 *
 * Return: the host address of the slot's memory.
 */
void *vm_add_memslot_huge(struct kvm_vm *vm, uint32_t slot, uint32_t flags, uint64_t gpa,
			  uint64_t size)
{
	uint8_t *p;

	TEST_ASSERT(vm->nr_slots < MAX_LIB_SLOTS, "too many library slots");
	p = mmap(NULL, size + PG_SIZE_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap %" PRIu64 " bytes: %s", size, strerror(errno));
	/* The slack below the aligned start stays mapped until the process ends. */
	p += -(uintptr_t)p & (PG_SIZE_2M - 1);
	madvise(p, size, MADV_HUGEPAGE);
	memset(p, 0, size);
	TEST_ASSERT(__vm_set_memslot(vm, slot, flags, gpa, size, p) == 0,
		    "KVM_SET_USER_MEMORY_REGION slot %u gpa %#" PRIx64 " size %#" PRIx64 ": %s",
		    slot, gpa, size, strerror(errno));
	vm->slots[vm->nr_slots++] = (struct lib_slot){ slot, flags, gpa, size, p };
	return p;
}

/**
 * host_huge_kb() - how much of a mapping the host backs with huge pages
 * @addr: an address in the mapping
 *
 * Return: its AnonHugePages from /proc/self/smaps, in KiB; -1 if not found.
 */
long host_huge_kb(const void *addr)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256];
	bool in = false;
	long kb = -1;
	unsigned long lo, hi;

	TEST_ASSERT(f, "/proc/self/smaps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
		else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/**
 * vm_move_memslot() - change a slot's guest physical address
 * @vm: the VM
 * @slot: slot id, added with vm_add_memslot()
 * @new_gpa: the new guest physical address
 */
void vm_move_memslot(struct kvm_vm *vm, uint32_t slot, uint64_t new_gpa)
{
	struct lib_slot *s = find_slot(vm, slot);

	TEST_ASSERT(s, "slot %u is not known to the library", slot);
	TEST_ASSERT(__vm_set_memslot(vm, slot, s->flags, new_gpa, s->size, s->hva) == 0,
		    "moving slot %u to %#" PRIx64 ": %s", slot, new_gpa, strerror(errno));
	s->gpa = new_gpa;
}

/**
 * vm_delete_memslot() - delete a slot and free its memory
 * @vm: the VM
 * @slot: slot id, added with vm_add_memslot()
 */
void vm_delete_memslot(struct kvm_vm *vm, uint32_t slot)
{
	struct lib_slot *s = find_slot(vm, slot);

	TEST_ASSERT(s, "slot %u is not known to the library", slot);
	TEST_ASSERT(__vm_set_memslot(vm, slot, s->flags, s->gpa, 0, s->hva) == 0,
		    "deleting slot %u: %s", slot, strerror(errno));
	munmap(s->hva, s->size);
	*s = vm->slots[--vm->nr_slots];
}

/**
 * gpa2hva() - host address of guest physical memory the library added
 * @vm: the VM
 * @gpa: guest physical address
 *
 * Return: the host pointer; the test fails when @gpa is in no slot.
 */
void *gpa2hva(struct kvm_vm *vm, uint64_t gpa)
{
	for (int i = 0; i < vm->nr_slots; i++) {
		struct lib_slot *s = &vm->slots[i];

		if (gpa >= s->gpa && gpa - s->gpa < s->size)
			return (char *)s->hva + (gpa - s->gpa);
	}
	test_fail(__FILE__, __LINE__, "gpa in a memslot", "no memslot holds gpa %#" PRIx64, gpa);
}

/**
 * gva2gpa() - translate through the guest's page tables (long mode only)
 * @vm: the VM
 * @gva: guest virtual address
 *
 * Return: the guest physical address; the test fails when it is unmapped.
 */
uint64_t gva2gpa(struct kvm_vm *vm, uint64_t gva)
{
	uint64_t gpa;

	if (vm->mode != VM_MODE_LONG64)
		return gva;
	gpa = pgtable_translate(&vm->pt, gva);
	TEST_ASSERT(gpa != GVA_INVALID, "gva %#" PRIx64 " is not mapped in the guest", gva);
	return gpa;
}

void *gva2hva(struct kvm_vm *vm, uint64_t gva)
{
	return gpa2hva(vm, gva2gpa(vm, gva));
}

/**
 * vm_alloc_pages() - allocate zeroed guest physical pages in slot 0
 * @vm: the VM
 * @npages: number of 4 KiB pages
 *
 * Return: the guest physical address; in long mode it is also identity-mapped.
 */
uint64_t vm_alloc_pages(struct kvm_vm *vm, uint64_t npages)
{
	uint64_t gpa = vm->next_page;

	TEST_ASSERT(gpa + npages * PAGE_SIZE <= vm->mem_size,
		    "guest memory exhausted (%" PRIu64 " MiB)", vm->mem_size >> 20);
	vm->next_page += npages * PAGE_SIZE;
	memset(gpa2hva(vm, gpa), 0, npages * PAGE_SIZE);
	return gpa;
}

static void *pt_gpa_to_hva(void *ctx, uint64_t gpa)
{
	return gpa2hva(ctx, gpa);
}

static uint64_t pt_alloc_page(void *ctx)
{
	return vm_alloc_pages(ctx, 1);
}

/**
 * virt_map() - map guest virtual to guest physical addresses with 4 KiB pages
 * @vm: a long-mode VM
 * @gva: start, page aligned
 * @gpa: start, page aligned; need not be in a memslot (MMIO)
 * @size: bytes, rounded up to pages
 */
void virt_map(struct kvm_vm *vm, uint64_t gva, uint64_t gpa, uint64_t size)
{
	virt_map_flags(vm, gva, gpa, size, PTE_RW);
}

/**
 * virt_map_flags() - virt_map() with the leaf entries' flags chosen
 * @vm: a long-mode VM
 * @gva: start, page aligned
 * @gpa: start, page aligned
 * @size: bytes, rounded up to pages
 * @flags: PTE_RW, PTE_US, PTE_NX or 0 (P is implied)
 */
void virt_map_flags(struct kvm_vm *vm, uint64_t gva, uint64_t gpa, uint64_t size,
		    uint64_t flags)
{
	TEST_ASSERT(vm->mode == VM_MODE_LONG64, "virt_map needs a long-mode VM");
	for (uint64_t off = 0; off < size; off += PAGE_SIZE) {
		int r = pgtable_map(&vm->pt, gva + off, gpa + off, PG_SIZE_4K, flags);

		TEST_ASSERT(r == 0, "mapping gva %#" PRIx64 ": %s", gva + off, strerror(-r));
	}
}

/**
 * virt_pte() - the guest's page-table entry at one level of a walk
 * @vm: a long-mode VM
 * @gva: guest virtual address
 * @level: 4 (PML4E) down to 1 (PTE)
 *
 * Return: a host pointer to the entry, which the test may read (accessed
 * and dirty bits) or change; the test fails when the walk does not reach
 * @level.
 */
uint64_t *virt_pte(struct kvm_vm *vm, uint64_t gva, int level)
{
	uint64_t *pte = pgtable_entry(&vm->pt, gva, level);

	TEST_ASSERT(pte, "gva %#" PRIx64 " has no level-%d entry", gva, level);
	return pte;
}

/**
 * virt_set_pte_flags() - change the leaf entries that map a range
 * @vm: a long-mode VM
 * @gva: start
 * @size: bytes; every page (of whatever size) that holds one of them changes
 * @set: PTE bits to set
 * @clear: PTE bits to clear
 *
 * The tables above the leaves already allow everything (pgtable_map()).
 * A large page changes whole: map what needs its own rights with 4 KiB
 * pages.  The guest's TLB is not flushed: change mappings it has not used
 * since, or before it runs.
 */
void virt_set_pte_flags(struct kvm_vm *vm, uint64_t gva, uint64_t size, uint64_t set,
			uint64_t clear)
{
	uint64_t end = gva + size;

	TEST_ASSERT(vm->mode == VM_MODE_LONG64, "virt_set_pte_flags needs a long-mode VM");
	while (gva < end) {
		int level;
		uint64_t *pte = pgtable_leaf(&vm->pt, gva, &level);
		uint64_t page = 1ULL << (12 + 9 * (level - 1));

		TEST_ASSERT(pte, "gva %#" PRIx64 " is not mapped in the guest", gva);
		*pte = (*pte & ~clear) | set;
		gva = (gva & ~(page - 1)) + page;
	}
}

/**
 * virt_set_user() - give the pages of a range the U bit (ring 3 may use them)
 * @vm: a long-mode VM
 * @gva: start
 * @size: bytes
 */
void virt_set_user(struct kvm_vm *vm, uint64_t gva, uint64_t size)
{
	virt_set_pte_flags(vm, gva, size, PTE_US, 0);
}

/**
 * vm_load_blob() - copy code or data into guest physical memory
 * @vm: the VM
 * @gpa: destination
 * @start: first byte
 * @end: one past the last byte
 */
void vm_load_blob(struct kvm_vm *vm, uint64_t gpa, const void *start, const void *end)
{
	memcpy(gpa2hva(vm, gpa), start, (const char *)end - (const char *)start);
}

/* Copy each loaded segment of the test binary into the guest, same addresses. */
static int map_image_segment(struct dl_phdr_info *info, size_t size, void *data)
{
	struct kvm_vm *vm = data;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t start, end;

		if (ph->p_type != PT_LOAD)
			continue;
		start = (info->dlpi_addr + ph->p_vaddr) & ~(PAGE_SIZE - 1);
		end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + PAGE_SIZE - 1) &
		      ~(PAGE_SIZE - 1);
		for (uint64_t va = start; va < end; va += PAGE_SIZE) {
			uint64_t gpa;

			if (pgtable_translate(&vm->pt, va) != GVA_INVALID)
				continue;	/* page shared with the previous segment */
			gpa = vm_alloc_pages(vm, 1);
			memcpy(gpa2hva(vm, gpa), (void *)va, PAGE_SIZE);
			TEST_ASSERT(pgtable_map(&vm->pt, va, gpa, PG_SIZE_4K, PTE_RW) == 0,
				    "mapping the test image at %#" PRIx64, va);
		}
	}
	return 1;	/* the first object is the executable: stop there */
}

/* A segment descriptor (SDM vol. 3 3.4.5) from a struct kvm_segment. */
static uint64_t gdt_entry(const struct kvm_segment *s)
{
	uint64_t limit = s->g ? s->limit >> 12 : s->limit;

	return (limit & 0xffff) | ((uint64_t)(s->base & 0xffffff) << 16) |
	       ((uint64_t)s->type << 40) | ((uint64_t)s->s << 44) |
	       ((uint64_t)s->dpl << 45) | ((uint64_t)s->present << 47) |
	       (((limit >> 16) & 0xfULL) << 48) | ((uint64_t)s->l << 53) |
	       ((uint64_t)s->db << 54) | ((uint64_t)s->g << 55) |
	       ((uint64_t)(s->base >> 24 & 0xff) << 56);
}

/**
 * vm_segment() - the flat segments the library's GDT holds
 * @vm: the VM
 * @sel: SEL_CODE64, SEL_DATA, SEL_CODE32, SEL_TSS, or a user segment (SEL_UCODE64,
 *	SEL_UDATA, SEL_UCODE32: DPL 3)
 * @seg: filled in, ready for KVM_SET_SREGS
 */
void vm_segment(struct kvm_vm *vm, uint16_t sel, struct kvm_segment *seg)
{
	*seg = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel,
		.present = 1, .s = 1, .g = 1, .db = 1,
	};
	switch (sel) {
	case SEL_CODE64:
		seg->type = 11;		/* execute/read, accessed */
		seg->l = 1;
		seg->db = 0;
		break;
	case SEL_CODE32:
		seg->type = 11;
		break;
	case SEL_DATA:
		seg->type = 3;		/* read/write, accessed */
		break;
	case SEL_UCODE64:
		seg->type = 11;
		seg->l = 1;
		seg->db = 0;
		seg->dpl = 3;
		break;
	case SEL_UCODE32:
		seg->type = 11;
		seg->dpl = 3;
		break;
	case SEL_UDATA:
		seg->type = 3;
		seg->dpl = 3;
		break;
	case SEL_TSS:
		seg->base = vm->tss_gpa;
		seg->limit = 0x67;
		seg->type = 11;		/* busy 64-bit TSS (32-bit TSS outside long mode) */
		seg->s = 0;
		seg->g = 0;
		seg->db = 0;
		break;
	}
}

static void setup_descriptor_tables(struct kvm_vm *vm)
{
	static const uint16_t segs[] = {
		SEL_CODE64, SEL_DATA, SEL_CODE32, SEL_UCODE32, SEL_UDATA, SEL_UCODE64,
	};
	uint64_t *gdt, *idt;
	struct kvm_segment seg;

	vm->gdt_gpa = vm_alloc_pages(vm, 1);
	vm->tss_gpa = vm_alloc_pages(vm, 1);
	gdt = gpa2hva(vm, vm->gdt_gpa);
	for (unsigned int i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
		vm_segment(vm, segs[i], &seg);
		gdt[segs[i] / 8] = gdt_entry(&seg);
	}
	vm_segment(vm, SEL_TSS, &seg);
	gdt[SEL_TSS / 8] = gdt_entry(&seg);
	gdt[SEL_TSS / 8 + 1] = vm->tss_gpa >> 32;	/* upper half of a 16-byte descriptor */
	/*
	 * No I/O permission bitmap: its offset, the word at TSS + 0x66, is past
	 * the limit, so IN and OUT above IOPL fault (SDM vol. 1, "I/O
	 * Permission Bit Map").
	 */
	*(uint16_t *)((char *)gpa2hva(vm, vm->tss_gpa) + 0x66) = 0x68;

	if (vm->mode != VM_MODE_LONG64)
		return;
	/*
	 * 64-bit interrupt gates (SDM vol. 3 6.14.1) to the stubs in guest_entry.S;
	 * only GUEST_USER_RETURN_VECTOR's has DPL 3, for INT from ring 3.
	 */
	vm->idt_gpa = vm_alloc_pages(vm, 1);
	idt = gpa2hva(vm, vm->idt_gpa);
	for (int v = 0; v < 256; v++) {
		uint64_t handler = (uint64_t)guest_idt_stubs + 16 * v;
		uint64_t type = v == GUEST_USER_RETURN_VECTOR ? 0xee : 0x8e;

		idt[2 * v] = (handler & 0xffff) | ((uint64_t)SEL_CODE64 << 16) |
			     (type << 40) | ((handler >> 16 & 0xffff) << 48);
		idt[2 * v + 1] = handler >> 32;
	}
}

/*
 * Ring 3: the user stack and the trampoline user code starts from and
 * returns through get the U bit, and the return vector its handler.
 */
static void setup_user_mode(struct kvm_vm *vm)
{
	const uint8_t *tramp = (const uint8_t *)guest_user_trampoline;

	/* call *%rax; int $GUEST_USER_RETURN_VECTOR */
	TEST_ASSERT(tramp[2] == 0xcd && tramp[3] == GUEST_USER_RETURN_VECTOR,
		    "guest_user_trampoline does not raise GUEST_USER_RETURN_VECTOR");
	virt_set_user(vm, (uint64_t)guest_user_trampoline,
		      guest_user_trampoline_end - guest_user_trampoline);
	virt_set_user(vm, (uint64_t)guest_user_stack, sizeof(guest_user_stack));
	vm_install_exception_handler(vm, GUEST_USER_RETURN_VECTOR, guest_user_return_handler);
}

static void setup_long_mode(struct kvm_vm *vm)
{
	vm->pt = (struct guest_pgtable){
		.gpa_to_hva = pt_gpa_to_hva,
		.alloc_page = pt_alloc_page,
		.ctx = vm,
	};
	TEST_ASSERT(pgtable_init(&vm->pt) == 0, "allocating the PML4");
	/* Identity map of the low 4 GiB, memslot or not, so MMIO is one pointer away. */
	for (uint64_t a = 0; a < (4ULL << 30); a += PG_SIZE_2M)
		TEST_ASSERT(pgtable_map(&vm->pt, a, a, PG_SIZE_2M, PTE_RW) == 0,
			    "identity map at %#" PRIx64, a);
	dl_iterate_phdr(map_image_segment, vm);
}

/**
 * vm_create_with_mem() - a VM with slot 0 of @mem_size bytes at GPA 0
 * @mode: the mode vCPUs added to it start in
 * @mem_size: bytes of guest memory in slot 0
 *
 * Return: the VM.  The test is skipped when /dev/kvm does not exist.
 */
struct kvm_vm *vm_create_with_mem(enum vm_mode mode, uint64_t mem_size)
{
	struct kvm_vm *vm = calloc(1, sizeof(*vm));
	int r;

	TEST_ASSERT(vm, "out of memory");
	vm->mode = mode;
	vm->kvm_fd = open_kvm();
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	TEST_ASSERT(vm->fd >= 0, "KVM_CREATE_VM: %s", strerror(errno));
	r = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	TEST_ASSERT(r > 0, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	vm->run_size = r;
	/* Needed for real mode on VMX without unrestricted guest; harmless elsewhere. */
	r = ioctl(vm->fd, KVM_SET_TSS_ADDR, GUEST_TSS_ADDR);
	TEST_ASSERT(r == 0, "KVM_SET_TSS_ADDR: %s", strerror(errno));

	vm->mem_size = mem_size;
	vm_add_memslot(vm, 0, 0, 0, mem_size);
	vm->next_page = GUEST_ALLOC_GPA;
	vm->cpuid = kvm_get_supported_cpuid(vm->kvm_fd);
	if (mode == VM_MODE_LONG64)
		setup_long_mode(vm);
	setup_descriptor_tables(vm);
	if (mode == VM_MODE_LONG64)
		setup_user_mode(vm);
	return vm;
}

struct kvm_vm *vm_create(enum vm_mode mode)
{
	return vm_create_with_mem(mode, DEFAULT_GUEST_MEM);
}

/**
 * vm_install_exception_handler() - route a guest vector to a guest C function
 * @vm: a long-mode VM
 * @vector: 0..255
 * @handler: guest function, or NULL to report the exception to the host again
 */
void vm_install_exception_handler(struct kvm_vm *vm, int vector,
				  void (*handler)(struct ex_regs *regs))
{
	extern void (*guest_exception_handlers[256])(struct ex_regs *regs);
	void (**slot)(struct ex_regs *regs) =
		gva2hva(vm, (uint64_t)&guest_exception_handlers[vector]);

	*slot = handler;
}

/**
 * vm_release() - close the VM's vCPUs and the VM, leaving its memory mapped
 * @vm: the VM; its guest memory lives on (another VM over the same memory)
 */
void vm_release(struct kvm_vm *vm)
{
	for (unsigned int i = 0; i < sizeof(vm->vcpus) / sizeof(vm->vcpus[0]); i++) {
		struct kvm_vcpu *v = vm->vcpus[i];

		if (!v)
			continue;
		munmap(v->run, vm->run_size);
		close(v->fd);
		free(v);
	}
	close(vm->fd);
	close(vm->kvm_fd);
	free(vm->cpuid);
	free(vm);
}

/**
 * vm_free() - close the VM's vCPUs and the VM, and free its memory
 * @vm: the VM
 */
void vm_free(struct kvm_vm *vm)
{
	for (int i = 0; i < vm->nr_slots; i++)
		munmap(vm->slots[i].hva, vm->slots[i].size);
	vm_release(vm);
}
