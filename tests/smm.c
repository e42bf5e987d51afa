// SPDX-License-Identifier: GPL-2.0
/*
 * System management mode (api.rst: KVM_CAP_X86_SMM, KVM_SMI,
 * KVM_CAP_MULTI_ADDRESS_SPACE, KVM_RUN_X86_SMM, the smi fields of
 * struct kvm_vcpu_events, MSR_IA32_SMBASE): memslot address space 1, the
 * SMI and the state save map, RSM, SMBASE relocation, SMIs and INITs from
 * the local APIC.
 *
 * The SMM view is built as QEMU builds it: address space 1 shows SMRAM
 * (its own memory, SMRAM_GPA..SMRAM_END) over the normal RAM of slot 0,
 * which is registered there again around it.  The SMI handlers are 16-bit
 * blobs copied to SMBASE + 0x8000 that report through HLT and port I/O;
 * guest code outside SMM is 64-bit (or flat 32-bit) assembly that stops at
 * HLT, so the registers it holds at the SMI are known exactly.
 *
 * RIP is only checked at KVM_EXIT_HLT, where KVM and minikvm agree that it
 * is past the HLT.  At the KVM_EXIT_IO of an OUT they do not: KVM leaves RIP
 * at the OUT until the next KVM_RUN completes it, minikvm moves it past the
 * OUT before the exit; that is port I/O's business, not SMM's.
 *
 * Offsets in the save map are those of the manuals (and KVM's), relative to
 * SMBASE + 0x8000: the map itself is SMBASE + 0xfe00 .. SMBASE + 0xffff.
 */
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "apic.h"

#define MSR_IA32_SMBASE		0x9e
#define SMBASE_RESET		0x30000ULL
#define SMRAM_GPA		0x30000ULL
#define SMRAM_SIZE		0x40000ULL
#define SMRAM_END		(SMRAM_GPA + SMRAM_SIZE)
#define SMBASE_RELOC		0x50000ULL	/* also inside SMRAM */
#define SMBASE_HOST		0x60000ULL

#define AS1(id)			((1u << 16) | (id))
#define AS2(id)			((2u << 16) | (id))

#define PORT_SMM1		0xe0	/* handler, first report */
#define PORT_SMM2		0xe1	/* handler, second report */
#define PORT_RESET		0xe3	/* code at the reset vector */

#define SMM_REV_64		0x00020064
#define SMM_REV_32		0x00020000

#define CR0_PE			(1ULL << 0)
#define CR0_TS			(1ULL << 3)
#define CR0_EM			(1ULL << 2)
#define CR0_PG			(1ULL << 31)
#define EFER_LME		(1ULL << 8)
#define EFER_LMA		(1ULL << 10)
#define ICR_SMI			0x200

#define MARKER_SMRAM		0x5a5aa5a5u
#define MARKER_RAM		0xc0ffee11u
#define CLOBBER			0xdeadbeefu

/*
 * 16-bit SMI handlers.  In SMM, CS.base is SMBASE and DS.base 0, both with
 * 4 GiB limits, so %cs:X is SMBASE + X and (%ebx) is physical %ebx.
 *
 * smm_main: HLT, writes a marker into SMRAM (SMBASE + 0x7000) and another
 * into normal RAM at the address the host left at SMBASE + 0x7008,
 * overwrites general registers, reports on PORT_SMM2, RSM.
 */
extern const char smm_main[], smm_main_end[];
/* smm_hlt: HLT, reports on PORT_SMM2, overwrites every general register, RSM. */
extern const char smm_hlt[], smm_hlt_end[];
/* smm_plain: as smm_hlt with a report on PORT_SMM1 for the HLT (for an in-kernel APIC). */
extern const char smm_plain[], smm_plain_end[];
/* smm_reloc: copies the dword at SMBASE + 0x7000 to the map's SMBASE field, reports, RSM. */
extern const char smm_reloc[], smm_reloc_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "smm_main:\n"
    "	hlt\n"
    "	movl $0x5a5aa5a5, %cs:0x7000\n"
    "	movl %cs:0x7008, %ebx\n"
    "	movl $0xc0ffee11, (%ebx)\n"
    "	movl $0xdeadbeef, %eax\n"
    "	movl %eax, %ebx\n"
    "	movl %eax, %ecx\n"
    "	movl %eax, %edx\n"
    "	outb %al, $0xe1\n"
    "	rsm\n"
    "smm_main_end:\n"
    "smm_hlt:\n"
    "	hlt\n"
    "	outb %al, $0xe1\n"
    "	movl $0xdeadbeef, %eax\n"
    "	movl %eax, %ebx\n"
    "	movl %eax, %ecx\n"
    "	movl %eax, %edx\n"
    "	movl %eax, %esi\n"
    "	movl %eax, %edi\n"
    "	movl %eax, %ebp\n"
    "	movl %eax, %esp\n"
    "	rsm\n"
    "smm_hlt_end:\n"
    "smm_plain:\n"
    "	outb %al, $0xe0\n"
    "	outb %al, $0xe1\n"
    "	movl $0xdeadbeef, %eax\n"
    "	movl %eax, %ebx\n"
    "	movl %eax, %ecx\n"
    "	movl %eax, %edx\n"
    "	movl %eax, %esi\n"
    "	movl %eax, %edi\n"
    "	movl %eax, %ebp\n"
    "	movl %eax, %esp\n"
    "	rsm\n"
    "smm_plain_end:\n"
    "smm_reloc:\n"
    "	movl %cs:0x7000, %eax\n"
    "	movl %eax, %cs:0xff00\n"
    "	outb %al, $0xe0\n"
    "	rsm\n"
    "smm_reloc_end:\n"
    ".code64\n"
    ".popsection\n");

/*
 * 64-bit guest code.  smm_guest_regs loads every general register but RSP
 * with a known value and halts twice: the SMI comes between the two.
 * smm_guest_loop halts again and again.
 */
extern const char smm_guest_regs[], smm_guest_regs_resume[];
extern const char smm_guest_loop[], smm_guest_loop_next[];
asm(".pushsection .text\n"
    ".code64\n"
    "smm_guest_regs:\n"
    "	movabs $0x1111111111111111, %rax\n"
    "	movabs $0x3333333333333333, %rcx\n"
    "	movabs $0x2222222222222222, %rdx\n"
    "	movabs $0x4444444444444444, %rbx\n"
    "	movabs $0x5555555555555555, %rbp\n"
    "	movabs $0x6666666666666666, %rsi\n"
    "	movabs $0x7777777777777777, %rdi\n"
    "	movabs $0x8888888888888888, %r8\n"
    "	movabs $0x9999999999999999, %r9\n"
    "	movabs $0xaaaaaaaaaaaaaaaa, %r10\n"
    "	movabs $0xbbbbbbbbbbbbbbbb, %r11\n"
    "	movabs $0xcccccccccccccccc, %r12\n"
    "	movabs $0xdddddddddddddddd, %r13\n"
    "	movabs $0xeeeeeeeeeeeeeeee, %r14\n"
    "	movabs $0xf0f0f0f0f0f0f0f0, %r15\n"
    "	hlt\n"
    "smm_guest_regs_resume:\n"
    "	hlt\n"
    "	jmp smm_guest_regs_resume\n"
    "smm_guest_loop:\n"
    "	hlt\n"
    "smm_guest_loop_next:\n"
    "	jmp smm_guest_loop\n"
    ".popsection\n");

/* The same as smm_guest_regs for a flat 32-bit guest, loaded as a blob. */
extern const char smm_guest32[], smm_guest32_resume[], smm_guest32_end[];
asm(".pushsection .rodata\n"
    ".code32\n"
    "smm_guest32:\n"
    "	movl $0x11111111, %eax\n"
    "	movl $0x33333333, %ecx\n"
    "	movl $0x22222222, %edx\n"
    "	movl $0x44444444, %ebx\n"
    "	movl $0x55555555, %ebp\n"
    "	movl $0x66666666, %esi\n"
    "	movl $0x77777777, %edi\n"
    "	hlt\n"
    "smm_guest32_resume:\n"
    "	hlt\n"
    "	hlt\n"
    "smm_guest32_end:\n"
    ".code64\n"
    ".popsection\n");

/* Real-mode code put at the reset vector (0xfffffff0). */
extern const char reset_code[], reset_code_end[];
asm(".pushsection .rodata\n"
    ".code16\n"
    "reset_code:\n"
    "	outb %al, $0xe3\n"
    "	hlt\n"
    "reset_code_end:\n"
    ".code64\n"
    ".popsection\n");

/*
 * Address space 1 of @vm: slot 0's RAM below and above SMRAM, and SMRAM,
 * fresh memory with @smram_flags, in between.  SMRAM is filled with HLT,
 * so that a handler entered anywhere but at its first byte stops at once
 * with another RIP.
 *
 * Return: SMRAM's host memory.
 */
static uint8_t *smm_setup(struct kvm_vm *vm, uint32_t smram_flags)
{
	uint8_t *ram = vm->slots[0].hva;
	uint8_t *smram = mmap(NULL, SMRAM_SIZE, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(vm->slots[0].slot == 0 && vm->slots[0].gpa == 0, "slot 0 first");
	TEST_ASSERT(smram != MAP_FAILED, "mmap SMRAM: %s", strerror(errno));
	memset(smram, 0xf4, SMRAM_SIZE);
	TEST_ASSERT(__vm_set_memslot(vm, AS1(0), 0, 0, SMRAM_GPA, ram) == 0,
		    "RAM below SMRAM in address space 1: %s", strerror(errno));
	TEST_ASSERT(__vm_set_memslot(vm, AS1(1), smram_flags, SMRAM_GPA, SMRAM_SIZE, smram) == 0,
		    "SMRAM in address space 1: %s", strerror(errno));
	TEST_ASSERT(__vm_set_memslot(vm, AS1(2), 0, SMRAM_END, vm->mem_size - SMRAM_END,
				     ram + SMRAM_END) == 0,
		    "RAM above SMRAM in address space 1: %s", strerror(errno));
	return smram;
}

/* Copy a handler to @smbase + 0x8000. */
static void load_handler(uint8_t *smram, uint64_t smbase, const char *start, const char *end)
{
	memcpy(smram + (smbase - SMRAM_GPA) + 0x8000, start, end - start);
}

/* A value of the save map of @smbase, at its manual offset @off (0x7e00..0x7fff). */
static uint64_t map_get(const uint8_t *smram, uint64_t smbase, unsigned int off, int size)
{
	uint64_t v = 0;

	memcpy(&v, smram + (smbase - SMRAM_GPA) + 0x8000 + off, size);
	return v;
}

#define MAP32(smram, smbase, off) map_get(smram, smbase, off, 4)
#define MAP64(smram, smbase, off) map_get(smram, smbase, off, 8)

/* Run to an OUT to @port; check whether the exit says the vCPU is in SMM. */
static void expect_out(struct kvm_vcpu *vcpu, uint16_t port, bool smm)
{
	struct kvm_run *run = vcpu->run;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT(run->io.port == port && run->io.direction == KVM_EXIT_IO_OUT,
		    "OUT to port %#x expected, got %s port %#x", port,
		    run->io.direction == KVM_EXIT_IO_OUT ? "OUT" : "IN", run->io.port);
	TEST_ASSERT(!!(run->flags & KVM_RUN_X86_SMM) == smm,
		    "exit at port %#x: kvm_run->flags %#x, expected KVM_RUN_X86_SMM %s",
		    port, run->flags, smm ? "set" : "clear");
}

/* Run to a HLT (no in-kernel APIC); check whether the exit says the vCPU is in SMM. */
static void expect_hlt(struct kvm_vcpu *vcpu, bool smm)
{
	struct kvm_run *run = vcpu->run;

	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_HLT);
	TEST_ASSERT(!!(run->flags & KVM_RUN_X86_SMM) == smm,
		    "HLT exit: kvm_run->flags %#x, expected KVM_RUN_X86_SMM %s",
		    run->flags, smm ? "set" : "clear");
}

static void get_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	memset(ev, 0xaa, sizeof(*ev));
	vcpu_ioctl(vcpu, KVM_GET_VCPU_EVENTS, ev, "KVM_GET_VCPU_EVENTS");
	TEST_ASSERT(ev->flags & KVM_VCPUEVENT_VALID_SMM, "events flags %#x lack VALID_SMM",
		    ev->flags);
}

static void set_events(struct kvm_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	vcpu_ioctl(vcpu, KVM_SET_VCPU_EVENTS, ev, "KVM_SET_VCPU_EVENTS");
}

/* KVM_GET_VCPU_EVENTS must report these SMM states. */
static void expect_smi_state(struct kvm_vcpu *vcpu, int smm, int pending)
{
	struct kvm_vcpu_events ev;

	get_events(vcpu, &ev);
	TEST_ASSERT(ev.smi.smm == smm && ev.smi.pending == pending,
		    "smi.smm %u smi.pending %u, expected %d and %d",
		    ev.smi.smm, ev.smi.pending, smm, pending);
}

/*
 * The vCPU has run only the handler's first instruction, at @smbase + 0x8000:
 * a HLT (@hlt: RIP is then 0x8001) or an OUT (RIP not checked).
 */
static void expect_smm_entry_state(struct kvm_vcpu *vcpu, uint64_t smbase, uint64_t cr0_before,
				   bool hlt)
{
	struct kvm_sregs s;
	struct kvm_regs r;

	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	if (hlt)
		TEST_ASSERT_EQ(r.rip, 0x8001);
	TEST_ASSERT_EQ(r.rflags, 2);
	TEST_ASSERT_EQ(s.cs.base, smbase);
	TEST_ASSERT_EQ(s.cs.selector, (smbase >> 4) & 0xffff);
	TEST_ASSERT_EQ(s.cs.limit, 0xffffffff);
	TEST_ASSERT_EQ(s.ds.base, 0);
	TEST_ASSERT_EQ(s.ds.limit, 0xffffffff);
	TEST_ASSERT_EQ(s.cr0, cr0_before & ~(CR0_PE | CR0_EM | CR0_TS | CR0_PG));
	TEST_ASSERT_EQ(s.cr4, 0);
	TEST_ASSERT_EQ(s.idt.limit, 0);
}

static struct kvm_vcpu *smm_vm(enum vm_mode mode, const char *guest, struct kvm_vm **vm,
			       uint8_t **smram, uint32_t smram_flags)
{
	*vm = vm_create(mode);
	*smram = smm_setup(*vm, smram_flags);
	return vm_vcpu_add_at(*vm, 0, (uint64_t)guest);
}

TEST(caps_x86_smm_and_two_address_spaces)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);

	TEST_ASSERT(__vm_ioctl(vm, KVM_CHECK_EXTENSION, (void *)(long)KVM_CAP_X86_SMM) > 0,
		    "KVM_CAP_X86_SMM on the VM");
	TEST_ASSERT(kvm_check_cap(KVM_CAP_X86_SMM) > 0, "KVM_CAP_X86_SMM on /dev/kvm");
	TEST_ASSERT_EQ(__vm_ioctl(vm, KVM_CHECK_EXTENSION,
				  (void *)(long)KVM_CAP_MULTI_ADDRESS_SPACE), 2);
	TEST_ASSERT_EQ(kvm_check_cap(KVM_CAP_MULTI_ADDRESS_SPACE), 2);
	vm_free(vm);
}

TEST(memslots_address_space_1)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	size_t sz = 2 << 20;
	char *a = mmap(NULL, 4 * sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(a != MAP_FAILED, "mmap");
	/* Over slot 0 of address space 0: a different space, no overlap. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, AS1(0), 0, 0, sz, a), 0);
	/* Within space 1 an overlap is EEXIST, whatever the id. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, AS1(1), 0, sz / 2, sz, a + sz), EEXIST);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, AS1(7), 0, 0, PAGE_SIZE, a + sz), EEXIST);
	/* Within space 0 it still is, next to the space-1 slot. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 1, 0, sz / 2, sz, a + sz), EEXIST);
	/* The same id number in both spaces: two slots. */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, 1, 0, 0x10000000, sz, a + sz), 0);
	TEST_ASSERT_EQ(__vm_set_memslot(vm, AS1(1), 0, 0x10000000, sz, a + 2 * sz), 0);
	/* Deleting the space-1 slot leaves space 0's slot 1 in place (still EEXIST there). */
	TEST_ASSERT_EQ(__vm_set_memslot(vm, AS1(1), 0, 0x10000000, 0, a + 2 * sz), 0);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 2, 0, 0x10000000, sz, a + 3 * sz), EEXIST);
	TEST_ASSERT_EQ(__vm_set_memslot(vm, AS1(2), 0, 0x10000000, sz, a + 3 * sz), 0);
	/* There is no address space 2. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, AS2(0), 0, 0x20000000, sz, a + 3 * sz), EINVAL);
	vm_free(vm);
	munmap(a, 4 * sz);
}

TEST(bad_address_space_einval)
{
	struct kvm_vm *vm = vm_create(VM_MODE_REAL);
	int nr = kvm_check_cap(KVM_CAP_NR_MEMSLOTS);
	uint64_t bitmap[8] = { 0 };
	struct kvm_dirty_log log = { .slot = AS2(0), .dirty_bitmap = bitmap };
	struct kvm_clear_dirty_log clr = { .slot = AS2(0), .num_pages = 64,
					   .dirty_bitmap = bitmap };
	void *a = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	TEST_ASSERT(a != MAP_FAILED, "mmap");
	TEST_ASSERT(nr > 2, "KVM_CAP_NR_MEMSLOTS %d", nr);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, AS2(0), 0, 0x10000000, 1 << 20, a), EINVAL);
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, 0xffffu << 16, 0, 0x10000000, 1 << 20, a), EINVAL);
	/* The per-space id limit holds in space 1 too. */
	TEST_ASSERT_ERRNO(__vm_set_memslot(vm, AS1(nr), 0, 0x10000000, 1 << 20, a), EINVAL);
	TEST_ASSERT_EQ(__vm_set_memslot(vm, AS1(nr - 1), 0, 0x10000000, 1 << 20, a), 0);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), EINVAL);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_CLEAR_DIRTY_LOG, &clr), EINVAL);
	/* A space-1 slot that does not exist, or does not log. */
	log.slot = AS1(5);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), ENOENT);
	log.slot = AS1(nr - 1);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log), ENOENT);
	vm_free(vm);
}

/* The dirty bitmap of a slot of 64 pages or fewer. */
static uint64_t get_bitmap(struct kvm_vm *vm, uint32_t slot)
{
	uint64_t got[2];
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = got };

	memset(got, 0xaa, sizeof(got));
	vm_ioctl(vm, KVM_GET_DIRTY_LOG, &log, "KVM_GET_DIRTY_LOG");
	return got[0];
}

static void expect_bitmap(struct kvm_vm *vm, uint32_t slot, uint64_t want)
{
	uint64_t got = get_bitmap(vm, slot);

	TEST_ASSERT(got == want, "slot %#x: dirty bitmap %#" PRIx64 ", expected %#" PRIx64,
		    slot, got, want);
}

TEST(dirty_log_address_space_1)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE },
	};
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	uint8_t *smram;
	struct kvm_vcpu *vcpu;
	uint64_t ram_page = vm_alloc_pages(vm, 1), ones = ~0ULL;
	struct kvm_clear_dirty_log clr = { .slot = AS1(1), .num_pages = SMRAM_SIZE / PAGE_SIZE,
					   .dirty_bitmap = &ones };
	/* The map's page and the marker's page of SMRAM. */
	uint64_t want = 1ULL << ((SMBASE_RESET - SMRAM_GPA + 0xfe00) / PAGE_SIZE) |
			1ULL << ((SMBASE_RESET - SMRAM_GPA + 0x7000) / PAGE_SIZE);
	/*
	 * The handler's code page may be logged too: KVM maps a page of a
	 * logging slot writable at the guest's first access, a fetch
	 * included, and logs it then.
	 */
	uint64_t code = 1ULL << ((SMBASE_RESET - SMRAM_GPA + 0x8000) / PAGE_SIZE), got;

	vm_ioctl(vm, KVM_ENABLE_CAP, &cap, "KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2)");
	smram = smm_setup(vm, KVM_MEM_LOG_DIRTY_PAGES);
	vcpu = vm_vcpu_add_at(vm, 0, (uint64_t)smm_guest_loop);
	/* Space 0 has a logging slot with the same id number. */
	vm_add_memslot(vm, 1, KVM_MEM_LOG_DIRTY_PAGES, 0x10000000, SMRAM_SIZE);
	load_handler(smram, SMBASE_RESET, smm_main, smm_main_end);
	memcpy(smram + SMBASE_RESET - SMRAM_GPA + 0x7008, &ram_page, 4);

	expect_bitmap(vm, AS1(1), 0);
	expect_hlt(vcpu, false);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	expect_out(vcpu, PORT_SMM2, true);
	expect_hlt(vcpu, false);
	TEST_ASSERT_EQ(*(uint32_t *)(smram + SMBASE_RESET - SMRAM_GPA + 0x7000), MARKER_SMRAM);
	got = get_bitmap(vm, AS1(1));
	TEST_ASSERT((got & ~code) == want, "SMRAM's dirty bitmap %#" PRIx64 ", expected %#"
		    PRIx64 " (with or without %#" PRIx64 ")", got, want, code);
	expect_bitmap(vm, 1, 0);
	/* Manual protection: the log stays until cleared, through the space-1 id. */
	expect_bitmap(vm, AS1(1), got);
	vm_ioctl(vm, KVM_CLEAR_DIRTY_LOG, &clr, "KVM_CLEAR_DIRTY_LOG");
	expect_bitmap(vm, AS1(1), 0);
	clr.slot = AS2(1);
	TEST_ASSERT_ERRNO(__vm_ioctl(vm, KVM_CLEAR_DIRTY_LOG, &clr), EINVAL);
	vm_free(vm);
}

static const char *const gpr_names[16] = {
	"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
};

/* The registers in the hardware's (and the map's) order. */
static void gprs(const struct kvm_regs *r, uint64_t g[16])
{
	uint64_t v[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
			   r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };

	memcpy(g, v, sizeof(v));
}

static void expect_seg_eq(const char *name, const struct kvm_segment *a,
			  const struct kvm_segment *b)
{
	TEST_ASSERT(a->selector == b->selector && a->base == b->base && a->limit == b->limit &&
		    a->type == b->type && a->present == b->present && a->dpl == b->dpl &&
		    a->db == b->db && a->s == b->s && a->l == b->l && a->g == b->g,
		    "%s after RSM: sel %#x base %#llx limit %#x type %u p %u dpl %u db %u s %u "
		    "l %u g %u; before: sel %#x base %#llx limit %#x type %u p %u dpl %u db %u "
		    "s %u l %u g %u", name, a->selector, a->base, a->limit, a->type, a->present,
		    a->dpl, a->db, a->s, a->l, a->g, b->selector, b->base, b->limit, b->type,
		    b->present, b->dpl, b->db, b->s, b->l, b->g);
}

/* The state after RSM is the state before the SMI. */
static void expect_state_back(struct kvm_vcpu *vcpu, const struct kvm_regs *r0,
			      const struct kvm_sregs *s0, uint64_t rip, int nr_gprs)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	uint64_t g[16], g0[16];

	vcpu_regs_get(vcpu, &r);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(r.rip, rip);
	TEST_ASSERT_EQ(r.rflags, r0->rflags);
	gprs(&r, g);
	gprs(r0, g0);
	for (int i = 0; i < nr_gprs; i++)
		TEST_ASSERT(g[i] == g0[i], "%s after RSM: %#" PRIx64 ", before the SMI %#" PRIx64,
			    gpr_names[i], g[i], g0[i]);
	TEST_ASSERT_EQ(s.cr0, s0->cr0);
	TEST_ASSERT_EQ(s.cr3, s0->cr3);
	TEST_ASSERT_EQ(s.cr4, s0->cr4);
	TEST_ASSERT_EQ(s.efer, s0->efer);
	TEST_ASSERT_EQ(s.gdt.base, s0->gdt.base);
	TEST_ASSERT_EQ(s.gdt.limit, s0->gdt.limit);
	TEST_ASSERT_EQ(s.idt.base, s0->idt.base);
	TEST_ASSERT_EQ(s.idt.limit, s0->idt.limit);
	expect_seg_eq("cs", &s.cs, &s0->cs);
	expect_seg_eq("ss", &s.ss, &s0->ss);
	expect_seg_eq("ds", &s.ds, &s0->ds);
	expect_seg_eq("tr", &s.tr, &s0->tr);
}

TEST(smi_round_trip_long_mode)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_regs, &vm, &smram, 0);
	uint8_t *ram = vm->slots[0].hva;
	uint64_t ram_page = vm_alloc_pages(vm, 1), b = SMBASE_RESET, g0[16];
	struct kvm_vcpu_events ev;
	struct kvm_regs r0;
	struct kvm_sregs s0;

	load_handler(smram, b, smm_main, smm_main_end);
	memcpy(smram + b - SMRAM_GPA + 0x7008, &ram_page, 4);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_RESET);

	expect_hlt(vcpu, false);
	vcpu_regs_get(vcpu, &r0);
	vcpu_sregs_get(vcpu, &s0);
	TEST_ASSERT_EQ(r0.rip, (uint64_t)smm_guest_regs_resume);
	expect_smi_state(vcpu, 0, 0);

	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_smi_state(vcpu, 0, 1);
	expect_hlt(vcpu, true);
	expect_smm_entry_state(vcpu, b, s0.cr0, true);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(ev.smi.pending, 0);
	TEST_ASSERT_EQ(ev.smi.smm_inside_nmi, 0);
	TEST_ASSERT_EQ(ev.nmi.masked, 1);

	/* The state save map, in SMRAM. */
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7efc), SMM_REV_64);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7f00), b);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7f78), (uint64_t)smm_guest_regs_resume);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7f70), r0.rflags);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7f58), s0.cr0);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7f50), s0.cr3);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7f48), s0.cr4);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7ed0), s0.efer);
	gprs(&r0, g0);
	for (int i = 0; i < 16; i++)
		TEST_ASSERT(MAP64(smram, b, 0x7ff8 - 8 * i) == g0[i],
			    "map's %s at %#x: %#" PRIx64 ", expected %#" PRIx64, gpr_names[i],
			    0x7ff8 - 8 * i, MAP64(smram, b, 0x7ff8 - 8 * i), g0[i]);
	/* CS: selector, attributes (descriptor bits 8-23 >> 8), limit, base. */
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7e10) & 0xffff, s0.cs.selector);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7e10) >> 16, 0xa09b);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7e14), s0.cs.limit);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7e18), s0.cs.base);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7e64), s0.gdt.limit);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7e68), s0.gdt.base);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7e84), s0.idt.limit);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7e88), s0.idt.base);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7e90) & 0xffff, s0.tr.selector);
	TEST_ASSERT_EQ(MAP64(smram, b, 0x7e98), s0.tr.base);
	/* Nothing of it went to address space 0's RAM under SMRAM. */
	for (unsigned int off = 0xfe00; off < 0x10000; off += 8)
		TEST_ASSERT(*(uint64_t *)(ram + b + off) == 0,
			    "the map leaked into address space 0 at %#" PRIx64, b + off);

	/* The handler's writes: SMRAM, and RAM through address space 1. */
	expect_out(vcpu, PORT_SMM2, true);
	TEST_ASSERT_EQ(*(uint32_t *)(smram + b - SMRAM_GPA + 0x7000), MARKER_SMRAM);
	TEST_ASSERT_EQ(*(uint32_t *)(ram + b + 0x7000), 0);
	TEST_ASSERT_EQ(*(uint32_t *)gpa2hva(vm, ram_page), MARKER_RAM);
	expect_smi_state(vcpu, 1, 0);

	/* RSM: back where the guest was, every register as it was. */
	expect_hlt(vcpu, false);
	expect_state_back(vcpu, &r0, &s0, (uint64_t)smm_guest_regs_resume + 1, 16);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 0);
	TEST_ASSERT_EQ(ev.smi.pending, 0);
	TEST_ASSERT_EQ(ev.nmi.masked, 0);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_RESET);
	vm_free(vm);
}

TEST(smi_held_while_in_smm)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_loop, &vm, &smram, 0);
	struct kvm_regs r;

	load_handler(smram, SMBASE_RESET, smm_hlt, smm_hlt_end);
	expect_hlt(vcpu, false);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	/* A second SMI waits: the handler goes on instead of starting over. */
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_smi_state(vcpu, 1, 1);
	expect_out(vcpu, PORT_SMM2, true);
	expect_smi_state(vcpu, 1, 1);
	/*
	 * RSM, then at once the second SMI, with the guest's state in the map
	 * again.  RSM does not read the revision field: clear it to see it
	 * written again.
	 */
	memset(smram + SMBASE_RESET - SMRAM_GPA + 0xfefc, 0, 4);
	expect_hlt(vcpu, true);
	expect_smi_state(vcpu, 1, 0);
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rip, 0x8001);
	TEST_ASSERT_EQ(MAP32(smram, SMBASE_RESET, 0x7efc), SMM_REV_64);
	TEST_ASSERT_EQ(MAP64(smram, SMBASE_RESET, 0x7f78), (uint64_t)smm_guest_loop_next);
	expect_out(vcpu, PORT_SMM2, true);
	expect_hlt(vcpu, false);
	expect_smi_state(vcpu, 0, 0);
	vcpu_regs_get(vcpu, &r);
	TEST_ASSERT_EQ(r.rip, (uint64_t)smm_guest_loop_next);
	vm_free(vm);
}

static volatile uint64_t nmi_count;

static void guest_nmi_handler(struct ex_regs *regs)
{
	(void)regs;
	nmi_count++;
}

static void guest_nmi_after_smm(void)
{
	GUEST_SYNC(1);
	/* The SMI came before this; the NMI is taken right after RSM. */
	GUEST_SYNC_ARGS(2, nmi_count, 0, 0);
}

TEST(nmi_blocked_in_smm_until_rsm)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, (const char *)guest_nmi_after_smm, &vm,
				       &smram, 0);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	vm_install_exception_handler(vm, 2, guest_nmi_handler);
	load_handler(smram, SMBASE_RESET, smm_plain, smm_plain_end);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_out(vcpu, PORT_SMM1, true);
	vcpu_ioctl(vcpu, KVM_NMI, NULL, "KVM_NMI");
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.nmi.pending, 1);
	TEST_ASSERT_EQ(ev.nmi.masked, 1);
	/* Delivered here, with the IDT limit 0, the NMI would shut the vCPU down. */
	expect_out(vcpu, PORT_SMM2, true);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.nmi.pending, 1);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(vcpu->run->flags & KVM_RUN_X86_SMM, 0);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.nmi.pending, 0);
	TEST_ASSERT_EQ(ev.nmi.masked, 0);
	vm_free(vm);
}

TEST(smbase_relocation_by_handler)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_loop, &vm, &smram, 0);
	uint32_t new_base = SMBASE_RELOC;
	struct kvm_sregs s, s0;

	load_handler(smram, SMBASE_RESET, smm_reloc, smm_reloc_end);
	load_handler(smram, SMBASE_RELOC, smm_hlt, smm_hlt_end);
	memcpy(smram + SMBASE_RESET - SMRAM_GPA + 0x7000, &new_base, 4);

	expect_hlt(vcpu, false);
	vcpu_sregs_get(vcpu, &s0);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_out(vcpu, PORT_SMM1, true);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cs.base, SMBASE_RESET);
	TEST_ASSERT_EQ(MAP32(smram, SMBASE_RESET, 0x7f00), SMBASE_RELOC);
	/* SMBASE changes at RSM, not when the map is written. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_RESET);
	expect_hlt(vcpu, false);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_RELOC);

	/* The next SMI enters at the new base and saves there. */
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	expect_smm_entry_state(vcpu, SMBASE_RELOC, s0.cr0, true);
	TEST_ASSERT_EQ(MAP32(smram, SMBASE_RELOC, 0x7efc), SMM_REV_64);
	TEST_ASSERT_EQ(MAP32(smram, SMBASE_RELOC, 0x7f00), SMBASE_RELOC);
	TEST_ASSERT_EQ(MAP64(smram, SMBASE_RELOC, 0x7f78), (uint64_t)smm_guest_loop_next);
	expect_out(vcpu, PORT_SMM2, true);
	expect_hlt(vcpu, false);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_RELOC);
	vm_free(vm);
}

TEST(smbase_set_by_host)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_loop, &vm, &smram, 0);
	struct kvm_sregs s;

	load_handler(smram, SMBASE_HOST, smm_hlt, smm_hlt_end);
	vcpu_set_msr(vcpu, MSR_IA32_SMBASE, SMBASE_HOST);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_HOST);
	expect_hlt(vcpu, false);
	vcpu_sregs_get(vcpu, &s);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	expect_smm_entry_state(vcpu, SMBASE_HOST, s.cr0, true);
	TEST_ASSERT_EQ(MAP32(smram, SMBASE_HOST, 0x7f00), SMBASE_HOST);
	TEST_ASSERT_EQ(MAP32(smram, SMBASE_RESET, 0x7efc), 0xf4f4f4f4);	/* untouched */
	expect_out(vcpu, PORT_SMM2, true);
	expect_hlt(vcpu, false);
	vm_free(vm);
}

static volatile uint64_t ud_count, ud_rip;

static void guest_ud_handler(struct ex_regs *regs)
{
	ud_count++;
	ud_rip = regs->rip;
	regs->rip += 2;
}

static void __attribute__((noinline)) guest_rsm(void)
{
	asm volatile(".globl smm_rsm_insn\n"
		     "smm_rsm_insn: rsm" ::: "memory");
	GUEST_SYNC_ARGS(1, ud_count, ud_rip, 0);
}

TEST(rsm_outside_smm_ud)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_rsm);
	extern char smm_rsm_insn[];
	struct ucall uc;

	vm_install_exception_handler(vm, 6, guest_ud_handler);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], (uint64_t)smm_rsm_insn);
	TEST_ASSERT_EQ(vcpu->run->flags & KVM_RUN_X86_SMM, 0);
	expect_smi_state(vcpu, 0, 0);
	vm_free(vm);
}

static void guest_smbase_msr(void)
{
	bool rd = guest_rdmsr_faults(MSR_IA32_SMBASE);
	bool wr = guest_wrmsr_faults(MSR_IA32_SMBASE, 0x40000);

	GUEST_SYNC_ARGS(1, rd, wr, guest_msr_gp_count);
}

TEST(smbase_msr_guest_gp_and_index_list)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_smbase_msr);
	struct kvm_msr_list probe = { .nmsrs = 0 }, *list;
	bool listed = false;
	struct ucall uc;

	vm_install_exception_handler(vm, 13, guest_msr_gp_handler);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 1);
	TEST_ASSERT_EQ(uc.args[2], 1);
	TEST_ASSERT_EQ(uc.args[3], 2);
	/* The guest's WRMSR changed nothing; userspace's does. */
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), SMBASE_RESET);
	vcpu_set_msr(vcpu, MSR_IA32_SMBASE, 0x40000);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_IA32_SMBASE), 0x40000);

	TEST_ASSERT_ERRNO(ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe), E2BIG);
	list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(list->indices[0]));
	TEST_ASSERT(list, "out of memory");
	list->nmsrs = probe.nmsrs;
	TEST_ASSERT_EQ(ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list), 0);
	for (uint32_t i = 0; i < list->nmsrs; i++)
		listed |= list->indices[i] == MSR_IA32_SMBASE;
	TEST_ASSERT(listed, "MSR_IA32_SMBASE is not in KVM_GET_MSR_INDEX_LIST (%u MSRs)",
		    list->nmsrs);
	free(list);
	vm_free(vm);
}

TEST(smi_pending_via_set_vcpu_events)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_loop, &vm, &smram, 0);
	struct kvm_vcpu_events ev;
	struct kvm_sregs s;

	load_handler(smram, SMBASE_RESET, smm_hlt, smm_hlt_end);
	expect_hlt(vcpu, false);
	vcpu_sregs_get(vcpu, &s);
	get_events(vcpu, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.pending = 1;
	set_events(vcpu, &ev);
	expect_smi_state(vcpu, 0, 1);
	expect_hlt(vcpu, true);
	expect_smm_entry_state(vcpu, SMBASE_RESET, s.cr0, true);
	TEST_ASSERT_EQ(MAP64(smram, SMBASE_RESET, 0x7f78), (uint64_t)smm_guest_loop_next);

	/* In SMM: smi.smm = 1 round-trips and changes nothing. */
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(ev.smi.pending, 0);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	set_events(vcpu, &ev);
	expect_smi_state(vcpu, 1, 0);
	expect_out(vcpu, PORT_SMM2, true);
	expect_hlt(vcpu, false);
	expect_smi_state(vcpu, 0, 0);
	vm_free(vm);
}

TEST(smm_flag_set_by_events_round_trips)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_loop, &vm, &smram, 0);
	struct kvm_vcpu_events ev;

	expect_hlt(vcpu, false);
	get_events(vcpu, &ev);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.smm = 1;
	ev.smi.smm_inside_nmi = 1;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(ev.smi.smm_inside_nmi, 1);
	TEST_ASSERT_EQ(ev.smi.pending, 0);
	/* The vCPU now runs in SMM's address space, which maps the same RAM here. */
	expect_hlt(vcpu, true);
	/* Without VALID_SMM the SMM state is left alone. */
	ev.flags = 0;
	ev.smi.smm = 0;
	ev.smi.smm_inside_nmi = 0;
	set_events(vcpu, &ev);
	expect_smi_state(vcpu, 1, 0);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	set_events(vcpu, &ev);
	get_events(vcpu, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 0);
	TEST_ASSERT_EQ(ev.smi.smm_inside_nmi, 0);
	expect_hlt(vcpu, false);
	vm_free(vm);
}

TEST(smi_32bit_map_without_long_mode)
{
	struct kvm_vm *vm = vm_create(VM_MODE_PROT32);
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0x80000001, 0);
	uint8_t *smram = smm_setup(vm, 0);
	uint64_t b = SMBASE_RESET, g0[16];
	struct kvm_vcpu *vcpu;
	struct kvm_regs r0;
	struct kvm_sregs s0;

	TEST_ASSERT(e, "no CPUID 0x80000001");
	e->edx &= ~(1u << 29);		/* no long mode */
	vm_load_blob(vm, GUEST_CODE16_GPA, smm_guest32, smm_guest32_end);
	vcpu = vm_vcpu_add_at(vm, 0, GUEST_CODE16_GPA);
	load_handler(smram, b, smm_hlt, smm_hlt_end);

	expect_hlt(vcpu, false);
	vcpu_regs_get(vcpu, &r0);
	/* The 32-bit map has no R8-R15: RSM must leave them as they are. */
	r0.r8 = 0x0808080808080808ULL; r0.r9 = 0x0909090909090909ULL;
	r0.r10 = 0x1010101010101010ULL; r0.r11 = 0x1111111111111111ULL;
	r0.r12 = 0x1212121212121212ULL; r0.r13 = 0x1313131313131313ULL;
	r0.r14 = 0x1414141414141414ULL; r0.r15 = 0x1515151515151515ULL;
	vcpu_regs_set(vcpu, &r0);
	vcpu_sregs_get(vcpu, &s0);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	expect_smm_entry_state(vcpu, b, s0.cr0, true);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7efc), SMM_REV_32);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ef8), b);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ffc), s0.cr0);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ff8), s0.cr3);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ff4), r0.rflags);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ff0),
		       GUEST_CODE16_GPA + (smm_guest32_resume - smm_guest32));
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7f14), s0.cr4);
	/* EAX, ECX, ... EDI upwards from 0x7fd0, as KVM lays them out. */
	gprs(&r0, g0);
	for (int i = 0; i < 8; i++)
		TEST_ASSERT(MAP32(smram, b, 0x7fd0 + 4 * i) == (uint32_t)g0[i],
			    "map's %s at %#x: %#" PRIx64 ", expected %#" PRIx64, gpr_names[i],
			    0x7fd0 + 4 * i, MAP32(smram, b, 0x7fd0 + 4 * i), g0[i]);
	/* Nothing in the 64-bit layout's places. */
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7f00), 0);
	expect_out(vcpu, PORT_SMM2, true);
	expect_hlt(vcpu, false);
	expect_state_back(vcpu, &r0, &s0,
			  GUEST_CODE16_GPA + (smm_guest32_resume - smm_guest32) + 1, 16);
	expect_smi_state(vcpu, 0, 0);
	vm_free(vm);
}

/*
 * A vCPU whose CPUID has no long mode, put in long mode by KVM_SET_SREGS
 * (which KVM does not check against the CPUID): the SMI saves the 32-bit
 * map, and CR0.PG cleared at SMM entry leaves long mode, so EFER.LMA is
 * clear in SMM while EFER.LME stays (KVM clears EFER at entry only for a
 * CPUID with long mode).
 */
TEST(smi_long_mode_without_cpuid_lm)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_cpuid_entry2 *e = cpuid_find(vm->cpuid, 0x80000001, 0);
	uint8_t *smram = smm_setup(vm, 0);
	uint64_t b = SMBASE_RESET;
	struct kvm_vcpu *vcpu;
	struct kvm_sregs s0, s;
	struct kvm_regs r0;

	TEST_ASSERT(e, "no CPUID 0x80000001");
	e->edx &= ~(1u << 29);		/* no long mode */
	vcpu = vm_vcpu_add_at(vm, 0, (uint64_t)smm_guest_loop);
	load_handler(smram, b, smm_hlt, smm_hlt_end);

	expect_hlt(vcpu, false);
	vcpu_regs_get(vcpu, &r0);
	vcpu_sregs_get(vcpu, &s0);
	TEST_ASSERT_EQ(s0.efer, EFER_LME | EFER_LMA);
	TEST_ASSERT_EQ(s0.cs.l, 1);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	expect_smm_entry_state(vcpu, b, s0.cr0, true);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.cr0 & CR0_PG, 0);
	TEST_ASSERT_EQ(s.efer, EFER_LME);
	expect_smi_state(vcpu, 1, 0);
	/* The 32-bit map, with the state of the 64-bit guest cut to 32 bits. */
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7efc), SMM_REV_32);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ef8), b);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ffc), s0.cr0);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ff8), (uint32_t)s0.cr3);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7ff0), (uint32_t)r0.rip);
	TEST_ASSERT_EQ(MAP32(smram, b, 0x7f14), s0.cr4);
	/* The handler goes on in SMM. */
	expect_out(vcpu, PORT_SMM2, true);
	vcpu_sregs_get(vcpu, &s);
	TEST_ASSERT_EQ(s.efer, EFER_LME);
	vm_free(vm);
}

static void guest_self_smi(void)
{
	xapic_enable();
	GUEST_SYNC(1);
	xapic_icr(0, ICR_SELF | ICR_ASSERT | ICR_SMI);
	GUEST_SYNC(2);
}

TEST(smi_ipi_to_self)
{
	struct kvm_vm *vm = vm_create_irqchip();
	uint8_t *smram = smm_setup(vm, 0);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_self_smi);
	struct kvm_sregs s;
	struct ucall uc;

	load_handler(smram, SMBASE_RESET, smm_plain, smm_plain_end);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	vcpu_sregs_get(vcpu, &s);
	expect_out(vcpu, PORT_SMM1, true);
	expect_smm_entry_state(vcpu, SMBASE_RESET, s.cr0, false);
	expect_smi_state(vcpu, 1, 0);
	expect_out(vcpu, PORT_SMM2, true);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(vcpu->run->flags & KVM_RUN_X86_SMM, 0);
	expect_smi_state(vcpu, 0, 0);
	vm_free(vm);
}

static void guest_bsp_idle(void)
{
	xapic_enable();
	for (;;)
		GUEST_SYNC(1);
}

static void guest_send_init_to_bsp(void)
{
	xapic_enable();
	xapic_icr(0, ICR_INIT | ICR_ASSERT);
	GUEST_SYNC(2);
}

TEST(init_latched_in_smm_until_rsm)
{
	struct kvm_vm *vm = vm_create_irqchip();
	uint8_t *smram = smm_setup(vm, 0);
	struct kvm_vcpu *bsp = vm_vcpu_add(vm, 0, guest_bsp_idle);
	struct kvm_vcpu *ap = vm_vcpu_add(vm, 1, guest_send_init_to_bsp);
	uint8_t *reset = vm_add_memslot(vm, 3, 0, 0xffff0000, 0x10000);
	struct kvm_vcpu_events ev;
	struct kvm_sregs s;
	struct ucall uc;

	memcpy(reset + 0xfff0, reset_code, reset_code_end - reset_code);
	load_handler(smram, SMBASE_RESET, smm_plain, smm_plain_end);
	vcpu_set_mp_state(ap, KVM_MP_STATE_RUNNABLE);

	TEST_ASSERT_EQ(vcpu_run_ucall(bsp, &uc), UCALL_SYNC);
	vcpu_ioctl(bsp, KVM_SMI, NULL, "KVM_SMI");
	expect_out(bsp, PORT_SMM1, true);

	/* The AP sends INIT to the BSP, which is in its SMI handler. */
	TEST_ASSERT_EQ(vcpu_run_ucall(ap, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	get_events(bsp, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(ev.smi.latched_init, 1);

	/* Latched: the handler goes on. */
	expect_out(bsp, PORT_SMM2, true);
	vcpu_sregs_get(bsp, &s);
	TEST_ASSERT_EQ(s.cs.base, SMBASE_RESET);
	TEST_ASSERT_EQ(vcpu_get_mp_state(bsp), KVM_MP_STATE_RUNNABLE);
	get_events(bsp, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(ev.smi.latched_init, 1);

	/* RSM, then the INIT: the BSP starts over at the reset vector. */
	expect_out(bsp, PORT_RESET, false);
	vcpu_sregs_get(bsp, &s);
	TEST_ASSERT_EQ(s.cs.selector, 0xf000);
	TEST_ASSERT_EQ(s.cs.base, 0xffff0000);
	TEST_ASSERT_EQ(s.cr0 & (CR0_PE | CR0_PG), 0);
	TEST_ASSERT_EQ(s.efer, 0);
	get_events(bsp, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 0);
	TEST_ASSERT_EQ(ev.smi.latched_init, 0);
	TEST_ASSERT_EQ(vcpu_get_mp_state(bsp), KVM_MP_STATE_RUNNABLE);
	vm_free(vm);
}

/* Firmware relocates each CPU's SMBASE once; the OS's INIT of its APs must not undo it. */
TEST(smbase_kept_across_init)
{
	struct kvm_vm *vm = vm_create_irqchip();
	struct kvm_vcpu *bsp = vm_vcpu_add(vm, 0, guest_bsp_idle);
	struct kvm_vcpu *ap = vm_vcpu_add(vm, 1, guest_send_init_to_bsp);
	uint8_t *reset = vm_add_memslot(vm, 3, 0, 0xffff0000, 0x10000);
	struct kvm_sregs s;
	struct ucall uc;

	memcpy(reset + 0xfff0, reset_code, reset_code_end - reset_code);
	vcpu_set_mp_state(ap, KVM_MP_STATE_RUNNABLE);
	vcpu_set_msr(bsp, MSR_IA32_SMBASE, SMBASE_HOST);
	TEST_ASSERT_EQ(vcpu_run_ucall(bsp, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(vcpu_run_ucall(ap, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	/* The INIT is taken: the BSP starts over at the reset vector, SMBASE unchanged. */
	expect_out(bsp, PORT_RESET, false);
	vcpu_sregs_get(bsp, &s);
	TEST_ASSERT_EQ(s.cs.base, 0xffff0000);
	TEST_ASSERT_EQ(vcpu_get_msr(bsp, MSR_IA32_SMBASE), SMBASE_HOST);
	vm_free(vm);
}

TEST(latched_init_round_trips_through_events)
{
	struct kvm_vm *vm = vm_create_irqchip();
	uint8_t *smram = smm_setup(vm, 0);
	struct kvm_vcpu *bsp = vm_vcpu_add(vm, 0, guest_bsp_idle);
	struct kvm_vcpu_events ev;
	struct ucall uc;

	load_handler(smram, SMBASE_RESET, smm_plain, smm_plain_end);
	TEST_ASSERT_EQ(vcpu_run_ucall(bsp, &uc), UCALL_SYNC);
	vcpu_ioctl(bsp, KVM_SMI, NULL, "KVM_SMI");
	expect_out(bsp, PORT_SMM1, true);
	get_events(bsp, &ev);
	TEST_ASSERT_EQ(ev.smi.latched_init, 0);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.latched_init = 1;
	set_events(bsp, &ev);
	get_events(bsp, &ev);
	TEST_ASSERT_EQ(ev.smi.smm, 1);
	TEST_ASSERT_EQ(ev.smi.latched_init, 1);
	ev.flags = KVM_VCPUEVENT_VALID_SMM;
	ev.smi.latched_init = 0;
	set_events(bsp, &ev);
	get_events(bsp, &ev);
	TEST_ASSERT_EQ(ev.smi.latched_init, 0);
	/* Cleared: RSM goes back to the guest, no INIT. */
	expect_out(bsp, PORT_SMM2, true);
	TEST_ASSERT_EQ(vcpu_run_ucall(bsp, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(bsp->run->flags & KVM_RUN_X86_SMM, 0);
	vm_free(vm);
}

/* A map the CPU cannot load (CR0.PG without PE) shuts the vCPU down at RSM, on both. */
TEST(rsm_invalid_map_shuts_down)
{
	struct kvm_vm *vm;
	uint8_t *smram;
	struct kvm_vcpu *vcpu = smm_vm(VM_MODE_LONG64, smm_guest_loop, &vm, &smram, 0);
	uint64_t b = SMBASE_RESET;

	load_handler(smram, b, smm_hlt, smm_hlt_end);
	expect_hlt(vcpu, false);
	vcpu_ioctl(vcpu, KVM_SMI, NULL, "KVM_SMI");
	expect_hlt(vcpu, true);
	*(uint64_t *)(smram + b - SMRAM_GPA + 0xff58) = 0x80000010ULL;	/* CR0 in the map */
	expect_out(vcpu, PORT_SMM2, true);
	vcpu_run(vcpu);
	TEST_ASSERT(vcpu->run->exit_reason == KVM_EXIT_SHUTDOWN,
		    "RSM of an invalid map: exit reason %u, not KVM_EXIT_SHUTDOWN",
		    vcpu->run->exit_reason);
	TEST_ASSERT_EQ(vcpu->run->flags & KVM_RUN_X86_SMM, 0);
	vm_free(vm);
}
