// SPDX-License-Identifier: GPL-2.0
/*
 * The guest's FPU, SSE and AVX state and XCR0: KVM_GET/SET_FPU,
 * KVM_GET/SET_XSAVE, KVM_GET_XSAVE2, KVM_GET/SET_XCRS, the guest's XSETBV,
 * and XCR0 switched around guest entry.
 *
 * The register contents live in the kernel's guest fpstate
 * (fpu_alloc_guest_fpstate), loaded into the CPU for the whole of KVM_RUN
 * and saved in memory outside it, where these ioctls (which hold the vCPU
 * mutex, so KVM_RUN is not running) read and write them.
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/fpu/xcr.h>
#include <asm/pkru.h>

#include <minikvm/core.h>

/* What minikvm lets a guest enable in XCR0: x87, SSE and AVX (SDM vol. 1 13.1). */
#define MKVM_XCR0_MASK (XFEATURE_MASK_FP | XFEATURE_MASK_SSE | XFEATURE_MASK_YMM)

static u64 host_xcr0;
static u64 supported_xcr0;

/**
 * mkvm_fpu_init() - find the host's XCR0, at module load
 */
void mkvm_fpu_init(void)
{
	if (boot_cpu_has(X86_FEATURE_OSXSAVE)) {
		host_xcr0 = xgetbv(XCR_XFEATURE_ENABLED_MASK);
		supported_xcr0 = host_xcr0 & MKVM_XCR0_MASK;
	}
}

/**
 * mkvm_supported_xcr0() - the XCR0 bits a guest may set
 *
 * Return: a subset of x87 | SSE | AVX, 0 when the host has no XSAVE.
 */
u64 mkvm_supported_xcr0(void)
{
	return supported_xcr0;
}

/**
 * mkvm_xsave_size() - bytes of the standard XSAVE area for some components
 * @xcr0: the components
 *
 * Return: the size XSAVE needs, as CPUID leaf 0xD reports it for XCR0 = @xcr0.
 */
u32 mkvm_xsave_size(u64 xcr0)
{
	u32 size = 512 + 64;	/* legacy area and header (SDM vol. 1 13.4) */
	u32 eax, ebx, ecx, edx;

	for (int i = 2; i < 64; i++) {
		if (!(xcr0 & BIT_ULL(i)))
			continue;
		cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx);
		size = max(size, ebx + eax);
	}
	return size;
}

/**
 * mkvm_set_xcr() - XSETBV's checks and effect (SDM vol. 2 XSETBV, vol. 1 13.3)
 * @vcpu: the vCPU
 * @index: the XCR, only 0 exists
 * @value: its new value
 *
 * Return: 0, or 1 for a value the CPU would refuse with #GP.
 */
int mkvm_set_xcr(struct mkvm_vcpu *vcpu, u32 index, u64 value)
{
	if (index != XCR_XFEATURE_ENABLED_MASK)
		return 1;
	/* x87 is always on; AVX needs SSE; nothing the guest's CPUID does not offer. */
	if (!(value & XFEATURE_MASK_FP))
		return 1;
	if ((value & XFEATURE_MASK_YMM) && !(value & XFEATURE_MASK_SSE))
		return 1;
	if (value & ~(vcpu->arch.guest_xcr0_mask | XFEATURE_MASK_FP))
		return 1;
	vcpu->arch.xcr0 = value;
	return 0;
}

/**
 * mkvm_load_guest_xcr0() - switch to the guest's XCR0 just before entry
 * @vcpu: the vCPU, with interrupts disabled
 *
 * VMRUN does not switch XCR0.  The host's XCR0 never has fewer bits than
 * the guest's, so the guest's registers, loaded under the host's XCR0, are
 * all there.  XCR0 does not matter to a guest with CR4.OSXSAVE clear.
 */
void mkvm_load_guest_xcr0(struct mkvm_vcpu *vcpu)
{
	if (host_xcr0 && vcpu->arch.xcr0 != host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vcpu->arch.xcr0);
}

/**
 * mkvm_load_host_xcr0() - back to the host's XCR0 just after the exit
 * @vcpu: the vCPU, with interrupts still disabled
 *
 * XSETBV is intercepted (APM 15.9, SDM 25.1.2), yet XCR0 is read back
 * rather than trusted: a CPU that lacks the intercept, such as QEMU's
 * emulated SVM, lets the guest write XCR0 itself.  Trusting minikvm's copy
 * would then lose the guest's write at the next exit, or leave the guest's
 * value in force for the host when the copy equals the host's.  A value
 * the CPU accepted and the guest's CPUID allows becomes the guest's XCR0.
 */
void mkvm_load_host_xcr0(struct mkvm_vcpu *vcpu)
{
	u64 cur;

	if (!host_xcr0)
		return;
	cur = xgetbv(XCR_XFEATURE_ENABLED_MASK);
	if (cur != vcpu->arch.xcr0 && !(cur & ~(vcpu->arch.guest_xcr0_mask | XFEATURE_MASK_FP)))
		vcpu->arch.xcr0 = cur;
	if (cur != host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, host_xcr0);
}

/**
 * mkvm_save_host_pkru() - note the host thread's PKRU before the entry
 * @vcpu: the vCPU, interrupts off
 *
 * Neither VMRUN nor VM entry switches PKRU, and the guest writes it without
 * an exit: it could leave its own protection keys to the VMM thread.
 */
void mkvm_save_host_pkru(struct mkvm_vcpu *vcpu)
{
	vcpu->arch.host_pkru = read_pkru();
}

/**
 * mkvm_load_host_pkru() - the host thread's PKRU back, just after the exit
 * @vcpu: the vCPU, before anything of the host's can run (an NMI)
 */
void mkvm_load_host_pkru(struct mkvm_vcpu *vcpu)
{
	if (vcpu->arch.host_pkru != read_pkru())
		write_pkru(vcpu->arch.host_pkru);
}

static struct fxregs_state *guest_fxsave(struct mkvm_vcpu *vcpu)
{
	return &vcpu->arch.fpu.fpstate->regs.fxsave;
}

static void get_fpu(struct mkvm_vcpu *vcpu, struct kvm_fpu *f)
{
	const struct fxregs_state *fx = guest_fxsave(vcpu);

	/* The same fields as KVM: MXCSR is not among them (KVM_GET_XSAVE has it). */
	memset(f, 0, sizeof(*f));
	memcpy(f->fpr, fx->st_space, sizeof(f->fpr));
	f->fcw = fx->cwd;
	f->fsw = fx->swd;
	f->ftwx = fx->twd;
	f->last_opcode = fx->fop;
	f->last_ip = fx->rip;
	f->last_dp = fx->rdp;
	memcpy(f->xmm, fx->xmm_space, sizeof(f->xmm));
}

static void set_fpu(struct mkvm_vcpu *vcpu, const struct kvm_fpu *f)
{
	struct fxregs_state *fx = guest_fxsave(vcpu);

	memcpy(fx->st_space, f->fpr, sizeof(f->fpr));
	fx->cwd = f->fcw;
	fx->swd = f->fsw;
	fx->twd = f->ftwx;
	fx->fop = f->last_opcode;
	fx->rip = f->last_ip;
	fx->rdp = f->last_dp;
	memcpy(fx->xmm_space, f->xmm, sizeof(f->xmm));
	/*
	 * XRSTOR puts a component whose XSTATE_BV bit is clear in its initial
	 * state (SDM vol. 1 13.8.1), whatever the legacy area says: mark x87
	 * and SSE as given, or state set before the guest first ran is lost.
	 */
	if (boot_cpu_has(X86_FEATURE_XSAVE))
		vcpu->arch.fpu.fpstate->regs.xsave.header.xfeatures |= XFEATURE_MASK_FPSSE;
}

static int get_xsave(struct mkvm_vcpu *vcpu, void __user *argp, unsigned int size)
{
	void *buf = kzalloc(size, GFP_KERNEL_ACCOUNT);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	/* Only what the guest's CPUID offers, so that the image restores elsewhere. */
	fpu_copy_guest_fpstate_to_uabi(&vcpu->arch.fpu, buf, size,
				       vcpu->arch.guest_xcr0_mask | XFEATURE_MASK_FPSSE, 0);
	if (copy_to_user(argp, buf, size))
		r = -EFAULT;
	kfree(buf);
	return r;
}

static int set_xsave(struct mkvm_vcpu *vcpu, void __user *argp)
{
	void *buf = memdup_user(argp, vcpu->arch.fpu.uabi_size);
	u32 pkru = 0;	/* protection keys are not offered */
	int r;

	if (IS_ERR(buf))
		return PTR_ERR(buf);
	/* -EINVAL for components outside supported_xcr0 or reserved MXCSR bits. */
	r = fpu_copy_uabi_to_guest_fpstate(&vcpu->arch.fpu, buf,
					   supported_xcr0 | XFEATURE_MASK_FPSSE, &pkru);
	kfree(buf);
	return r;
}

static int get_xcrs(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_xcrs x = {};

	if (host_xcr0) {
		x.nr_xcrs = 1;
		x.xcrs[0].xcr = XCR_XFEATURE_ENABLED_MASK;
		x.xcrs[0].value = vcpu->arch.xcr0;
	}
	return copy_to_user(argp, &x, sizeof(x)) ? -EFAULT : 0;
}

static int set_xcrs(struct mkvm_vcpu *vcpu, void __user *argp)
{
	struct kvm_xcrs x;

	if (copy_from_user(&x, argp, sizeof(x)))
		return -EFAULT;
	if (!host_xcr0 || x.nr_xcrs > KVM_MAX_XCRS || x.flags)
		return -EINVAL;
	/* As in KVM: the first entry for XCR0 counts, other XCRs are skipped. */
	for (u32 i = 0; i < x.nr_xcrs; i++)
		if (x.xcrs[i].xcr == XCR_XFEATURE_ENABLED_MASK)
			return mkvm_set_xcr(vcpu, x.xcrs[i].xcr, x.xcrs[i].value) ? -EINVAL : 0;
	return 0;
}

/**
 * mkvm_fpu_ioctl() - KVM_GET/SET_FPU, _XSAVE, KVM_GET_XSAVE2, KVM_GET/SET_XCRS
 * @vcpu: the vCPU, with its mutex held
 * @ioctl: the ioctl
 * @argp: its argument
 *
 * Return: 0; -EINVAL for a bad XSAVE image or XCR value, or for
 * KVM_GET_XSAVE when the state does not fit struct kvm_xsave; -EFAULT;
 * -ENOMEM.
 */
long mkvm_fpu_ioctl(struct mkvm_vcpu *vcpu, unsigned int ioctl, void __user *argp)
{
	struct kvm_fpu f;

	switch (ioctl) {
	case KVM_GET_FPU:
		get_fpu(vcpu, &f);
		return copy_to_user(argp, &f, sizeof(f)) ? -EFAULT : 0;
	case KVM_SET_FPU:
		if (copy_from_user(&f, argp, sizeof(f)))
			return -EFAULT;
		set_fpu(vcpu, &f);
		return 0;
	case KVM_GET_XSAVE:
		if (vcpu->arch.fpu.uabi_size > sizeof(struct kvm_xsave))
			return -EINVAL;
		return get_xsave(vcpu, argp, sizeof(struct kvm_xsave));
	case KVM_GET_XSAVE2:
		return get_xsave(vcpu, argp, vcpu->arch.fpu.uabi_size);
	case KVM_SET_XSAVE:
		return set_xsave(vcpu, argp);
	case KVM_GET_XCRS:
		return get_xcrs(vcpu, argp);
	case KVM_SET_XCRS:
		return set_xcrs(vcpu, argp);
	default:
		return -EINVAL;
	}
}

/**
 * mkvm_xsave2_size() - KVM_CAP_XSAVE2: the buffer KVM_GET_XSAVE2 fills
 *
 * Return: the size of the XSAVE image of everything a guest may enable,
 * at least sizeof(struct kvm_xsave) as in KVM.
 */
long mkvm_xsave2_size(void)
{
	return max_t(long, mkvm_xsave_size(supported_xcr0), sizeof(struct kvm_xsave));
}
