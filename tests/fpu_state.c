// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's x87, SSE and AVX registers and XCR0: KVM_GET/SET_FPU,
 * KVM_GET/SET_XSAVE, KVM_GET_XSAVE2, KVM_GET/SET_XCRS, the guest's XSETBV
 * and XGETBV, and XSAVE in the guest's CPUID.
 *
 * Register contents are moved in assembly (guest_regs_*), between two port
 * writes, so that no compiled guest code can touch them in between.
 */
#include <sys/ioctl.h>

#include "kvm_util.h"

#define PORT_SET 0x80		/* the host now sets the registers */
#define PORT_GET 0x81		/* the guest has loaded new ones: the host reads them */
#define XSAVE_YMM_OFFSET 576	/* standard format, SDM vol. 1 13.4 (CPUID 0xD.2 EBX) */
#define XSAVE_XMM_OFFSET 160
#define XSAVE_MXCSR_OFFSET 24
#define XSAVE_HDR_OFFSET 512
#define XFEATURE_YMM 4

/* Out: 16 XMM (or YMM) registers and the x87 control word and ST0 as a double. */
static uint8_t regs_seen[16 * 32 + 16] __attribute__((aligned(64)));
/* In: what the guest loads before PORT_GET. */
static uint8_t regs_new[16 * 32] __attribute__((aligned(64)));

/*
 * guest_regs_sse(seen, new): out PORT_SET; store XMM0-15, FCW and ST0 (popped)
 * to seen; load XMM0-15 from new and FCW 0x37b; out PORT_GET.
 */
void guest_regs_sse(void *seen, const void *new);
asm(".text\n"
    ".global guest_regs_sse\n"
    "guest_regs_sse:\n"
    "	mov $0x80, %dx\n"
    "	out %al, %dx\n"
    "	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
    "	movdqu %xmm\\n, \\n*16(%rdi)\n"
    "	movdqu \\n*16(%rsi), %xmm\\n\n"
    "	.endr\n"
    "	fnstcw 512(%rdi)\n"
    "	fstpl 520(%rdi)\n"
    "	movw $0x37b, 528(%rdi)\n"
    "	fldcw 528(%rdi)\n"
    "	mov $0x81, %dx\n"
    "	out %al, %dx\n"
    "	ret\n");

/* The same with YMM0-15 (needs CR4.OSXSAVE and XCR0.YMM). */
void guest_regs_avx(void *seen, const void *new);
asm(".text\n"
    ".global guest_regs_avx\n"
    "guest_regs_avx:\n"
    "	mov $0x80, %dx\n"
    "	out %al, %dx\n"
    "	.irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
    "	vmovdqu %ymm\\n, \\n*32(%rdi)\n"
    "	vmovdqu \\n*32(%rsi), %ymm\\n\n"
    "	.endr\n"
    "	mov $0x81, %dx\n"
    "	out %al, %dx\n"
    "	ret\n");

static uint64_t guest_xgetbv(uint32_t index)
{
	uint32_t lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(index));
	return lo | (uint64_t)hi << 32;
}

static void guest_enable_xsave(void)
{
	uint64_t cr4;

	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	asm volatile("mov %0, %%cr4" :: "r"(cr4 | (1ULL << 18)));	/* OSXSAVE */
}

static void guest_xsetbv(uint32_t index, uint64_t value)
{
	asm volatile("xsetbv" :: "c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

static void guest_sse(void)
{
	/* Run once first: the state then exists as the guest left it. */
	GUEST_SYNC(1);
	guest_regs_sse(regs_seen, regs_new);
	GUEST_SYNC(2);
}

static void run_to_port(struct kvm_vcpu *vcpu, uint16_t port)
{
	vcpu_run(vcpu);
	TEST_ASSERT_EXIT(vcpu, KVM_EXIT_IO);
	TEST_ASSERT_EQ(vcpu->run->io.port, port);
}

static uint8_t pattern(int reg, int byte, int salt)
{
	return (uint8_t)(reg * 16 + byte + salt * 0x55);
}

TEST(fpu_round_trip_with_guest)
{
	struct kvm_vm *vm = vm_create(VM_MODE_LONG64);
	struct kvm_vcpu *vcpu = vm_vcpu_add(vm, 0, guest_sse);
	uint8_t *seen = gva2hva(vm, (uint64_t)regs_seen), *new = gva2hva(vm, (uint64_t)regs_new);
	/* 1.0 as an 80-bit real: mantissa 1 << 63, exponent 0x3fff. */
	static const uint8_t one[10] = { 0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f };
	struct kvm_fpu fpu;
	struct ucall uc;
	double st0;

	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 16; b++)
			new[r * 16 + b] = pattern(r, b, 2);
	run_to_port(vcpu, PORT_SET);

	vcpu_ioctl(vcpu, KVM_GET_FPU, &fpu, "KVM_GET_FPU");
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 16; b++)
			fpu.xmm[r][b] = pattern(r, b, 1);
	fpu.fcw = 0x27f;		/* double precision */
	fpu.fsw = 7 << 11;		/* TOP = 7: ST0 is physical register 7 */
	fpu.ftwx = 0x80;		/* ... and it is valid */
	memset(fpu.fpr, 0, sizeof(fpu.fpr));
	memcpy(fpu.fpr[0], one, sizeof(one));
	vcpu_ioctl(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");

	run_to_port(vcpu, PORT_GET);
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 16; b++)
			TEST_ASSERT(seen[r * 16 + b] == pattern(r, b, 1),
				    "guest xmm%d byte %d: %#x", r, b, seen[r * 16 + b]);
	TEST_ASSERT_EQ(*(uint16_t *)(seen + 512), 0x27f);
	memcpy(&st0, seen + 520, sizeof(st0));
	TEST_ASSERT(st0 == 1.0, "guest ST0 %g", st0);

	vcpu_ioctl(vcpu, KVM_GET_FPU, &fpu, "KVM_GET_FPU");
	for (int r = 0; r < 16; r++)
		TEST_ASSERT(!memcmp(fpu.xmm[r], new + r * 16, 16), "host sees xmm%d wrong", r);
	TEST_ASSERT_EQ(fpu.fcw, 0x37b);
	TEST_ASSERT_EQ(fpu.ftwx, 0);	/* the guest popped ST0 */
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	vm_free(vm);
}

static void guest_avx(void)
{
	uint32_t a, b, c, d;

	guest_cpuid(1, 0, &a, &b, &c, &d);
	GUEST_ASSERT(!(c & (1u << 27)));	/* OSXSAVE follows CR4 */
	guest_enable_xsave();
	guest_cpuid(1, 0, &a, &b, &c, &d);
	GUEST_ASSERT(c & (1u << 27));
	GUEST_ASSERT_EQ(guest_xgetbv(0), 1);	/* x87 only at reset */
	/*
	 * XCR0 is set from the host: QEMU's TCG does not intercept XSETBV for
	 * a nested guest, so a guest's own XSETBV would not reach KVM either.
	 */
	GUEST_SYNC(1);
	guest_cpuid(0xd, 0, &a, &b, &c, &d);
	GUEST_SYNC_ARGS(2, guest_xgetbv(0), b, 0);
	guest_cpuid(0xd, 0, &a, &b, &c, &d);
	GUEST_SYNC_ARGS(3, guest_xgetbv(0), b, 0);
	guest_regs_avx(regs_seen, regs_new);
	GUEST_SYNC(4);
}

static struct kvm_vcpu *avx_vcpu(struct kvm_vm **vm, void (*guest)(void))
{
	struct kvm_cpuid_entry2 *e;

	*vm = vm_create(VM_MODE_LONG64);
	e = cpuid_find((*vm)->cpuid, 1, 0);
	if (!e || !(e->ecx & (1u << 26)) || !(e->ecx & (1u << 28)))
		SKIP("no XSAVE or AVX in KVM_GET_SUPPORTED_CPUID");
	return vm_vcpu_add(*vm, 0, guest);
}

static void set_xcr0(struct kvm_vcpu *vcpu, uint64_t value)
{
	struct kvm_xcrs x = { .nr_xcrs = 1, .xcrs[0] = { .xcr = 0, .value = value } };

	vcpu_ioctl(vcpu, KVM_SET_XCRS, &x, "KVM_SET_XCRS");
}

TEST(xcr0_and_ymm_round_trip_with_guest)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = avx_vcpu(&vm, guest_avx);
	uint8_t *seen = gva2hva(vm, (uint64_t)regs_seen), *new = gva2hva(vm, (uint64_t)regs_new);
	int size = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	struct kvm_xsave *xs;
	struct kvm_xcrs x;
	struct ucall uc;
	uint8_t *img;

	TEST_ASSERT(size >= (int)sizeof(struct kvm_xsave), "KVM_CAP_XSAVE2 %d", size);
	xs = calloc(1, size);
	img = (uint8_t *)xs->region;
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 1);
	memset(&x, 0xaa, sizeof(x));
	vcpu_ioctl(vcpu, KVM_GET_XCRS, &x, "KVM_GET_XCRS");
	TEST_ASSERT_EQ(x.nr_xcrs, 1);
	TEST_ASSERT_EQ(x.flags, 0);
	TEST_ASSERT_EQ(x.xcrs[0].xcr, 0);
	TEST_ASSERT_EQ(x.xcrs[0].value, 1);
	/* CPUID 0xD.0 EBX is the XSAVE area for the XCR0 of the moment. */
	set_xcr0(vcpu, 3);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 2);
	TEST_ASSERT_EQ(uc.args[1], 3);
	TEST_ASSERT_EQ(uc.args[2], 576);
	set_xcr0(vcpu, 7);
	vcpu_ioctl(vcpu, KVM_GET_XCRS, &x, "KVM_GET_XCRS");
	TEST_ASSERT_EQ(x.xcrs[0].value, 7);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 3);
	TEST_ASSERT_EQ(uc.args[1], 7);
	TEST_ASSERT_EQ(uc.args[2], 832);

	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 32; b++)
			new[r * 32 + b] = pattern(r, b, 3);
	run_to_port(vcpu, PORT_SET);
	vcpu_ioctl(vcpu, KVM_GET_XSAVE, xs, "KVM_GET_XSAVE");
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 16; b++) {
			img[XSAVE_XMM_OFFSET + r * 16 + b] = pattern(r, b, 4);
			img[XSAVE_YMM_OFFSET + r * 16 + b] = pattern(r, b + 16, 4);
		}
	img[XSAVE_HDR_OFFSET] |= 7;
	vcpu_ioctl(vcpu, KVM_SET_XSAVE, xs, "KVM_SET_XSAVE");

	run_to_port(vcpu, PORT_GET);
	for (int r = 0; r < 16; r++)
		for (int b = 0; b < 32; b++)
			TEST_ASSERT(seen[r * 32 + b] == pattern(r, b, 4),
				    "guest ymm%d byte %d: %#x", r, b, seen[r * 32 + b]);

	memset(xs, 0, size);
	vcpu_ioctl(vcpu, KVM_GET_XSAVE2, xs, "KVM_GET_XSAVE2");
	TEST_ASSERT(img[XSAVE_HDR_OFFSET] & XFEATURE_YMM, "XSTATE_BV %#x", img[XSAVE_HDR_OFFSET]);
	for (int r = 0; r < 16; r++) {
		TEST_ASSERT(!memcmp(img + XSAVE_XMM_OFFSET + r * 16, new + r * 32, 16),
			    "host sees xmm%d wrong", r);
		TEST_ASSERT(!memcmp(img + XSAVE_YMM_OFFSET + r * 16, new + r * 32 + 16, 16),
			    "host sees the upper half of ymm%d wrong", r);
	}
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[0], 4);
	free(xs);
	vm_free(vm);
}

static volatile uint64_t faults, fault_vector;

static void guest_skip_xsetbv(struct ex_regs *regs)
{
	faults++;
	fault_vector = regs->vector;
	regs->rip += 3;		/* XSETBV is 0f 01 d1 */
}

static void guest_bad_xsetbv(void)
{
	/* Without CR4.OSXSAVE both raise #UD. */
	guest_xsetbv(0, 7);
	guest_xgetbv(0);
	GUEST_SYNC_ARGS(1, faults, fault_vector, 0);
}

/*
 * The guest's own XSETBV with bad values.  (On QEMU's TCG the #GP comes from
 * QEMU itself, XSETBV not being intercepted there; on hardware from the
 * hypervisor's XSETBV exit.)
 */
static void guest_bad_xcr0(void)
{
	static const uint64_t bad[] = {
		0,			/* no x87 */
		2 | 4,			/* no x87 */
		1 | 4,			/* AVX without SSE */
		1 | 2 | (1 << 9),	/* protection keys: not offered */
	};

	guest_enable_xsave();
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		faults = 0;
		guest_xsetbv(0, bad[i]);
		GUEST_ASSERT_EQ(faults, 1);
		GUEST_ASSERT_EQ(fault_vector, 13);
		GUEST_ASSERT_EQ(guest_xgetbv(0), 1);
	}
	faults = 0;
	guest_xsetbv(1, 1);		/* no XCR1 to write */
	GUEST_ASSERT_EQ(faults, 1);
	GUEST_ASSERT_EQ(fault_vector, 13);
	/*
	 * Where XSETBV is not intercepted (QEMU's SVM), an exit between the
	 * write and the read makes the reference KVM reload its stale copy of
	 * XCR0 (testing.rst): write again then.  A hypervisor that refuses the
	 * value still fails, with a fault count above 1 or XCR0 still 1.
	 */
	for (int tries = 0; tries < 5; tries++) {
		guest_xsetbv(0, 3);
		if (guest_xgetbv(0) == 3)
			break;
	}
	GUEST_SYNC_ARGS(1, guest_xgetbv(0), faults, 0);
}

TEST(xsetbv_bad_values_gp)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = avx_vcpu(&vm, guest_bad_xcr0);
	struct ucall uc;

	vm_install_exception_handler(vm, 13, guest_skip_xsetbv);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 3);
	TEST_ASSERT_EQ(uc.args[2], 1);
	vm_free(vm);
}

TEST(xsetbv_without_osxsave_ud)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = avx_vcpu(&vm, guest_bad_xsetbv);
	struct ucall uc;

	vm_install_exception_handler(vm, 6, guest_skip_xsetbv);
	vm_install_exception_handler(vm, 13, guest_skip_xsetbv);
	TEST_ASSERT_EQ(vcpu_run_ucall(vcpu, &uc), UCALL_SYNC);
	TEST_ASSERT_EQ(uc.args[1], 2);		/* the XSETBV, then the XGETBV */
	TEST_ASSERT_EQ(uc.args[2], 6);
	vm_free(vm);
}

static void guest_nothing(void)
{
	GUEST_SYNC(1);
}

TEST(bad_xsave_and_xcrs_einval)
{
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu = avx_vcpu(&vm, guest_nothing);
	struct kvm_xsave *xs = calloc(1, sizeof(*xs)), *good = calloc(1, sizeof(*good));
	struct kvm_xcrs x;

	vcpu_ioctl(vcpu, KVM_GET_XSAVE, good, "KVM_GET_XSAVE");
	/* MXCSR's reserved upper half (checked only when the image has SSE state). */
	*xs = *good;
	xs->region[XSAVE_HDR_OFFSET / 4] |= 2;
	xs->region[XSAVE_MXCSR_OFFSET / 4] |= 1u << 31;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XSAVE, xs), EINVAL);
	/* A component that cannot be enabled (protection keys). */
	*xs = *good;
	xs->region[XSAVE_HDR_OFFSET / 4] |= 1u << 9;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XSAVE, xs), EINVAL);
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XSAVE, (void *)8), EFAULT);
	vcpu_ioctl(vcpu, KVM_SET_XSAVE, good, "KVM_SET_XSAVE");

	memset(&x, 0, sizeof(x));
	x.nr_xcrs = 1;
	x.xcrs[0].value = 0;		/* no x87 */
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
	x.xcrs[0].value = 5;		/* AVX without SSE */
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
	x.xcrs[0].value = 3;
	x.flags = 1;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
	x.flags = 0;
	x.nr_xcrs = KVM_MAX_XCRS + 1;
	TEST_ASSERT_ERRNO(__vcpu_ioctl(vcpu, KVM_SET_XCRS, &x), EINVAL);
	/* An XCR other than XCR0 is skipped, not refused. */
	x.nr_xcrs = 1;
	x.xcrs[0].xcr = 1;
	x.xcrs[0].value = 0;
	vcpu_ioctl(vcpu, KVM_SET_XCRS, &x, "KVM_SET_XCRS with XCR1 only");
	vcpu_ioctl(vcpu, KVM_GET_XCRS, &x, "KVM_GET_XCRS");
	TEST_ASSERT_EQ(x.xcrs[0].value, 1);
	TEST_ASSERT_EQ(ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE), 1);
	TEST_ASSERT_EQ(ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS), 1);
	free(xs);
	free(good);
	vm_free(vm);
}
