// SPDX-License-Identifier: GPL-2.0
/*
 * CPUID: what minikvm can virtualize (KVM_GET_SUPPORTED_CPUID), each vCPU's
 * table (KVM_SET/GET_CPUID2), and the CPUID instruction's emulation.
 *
 * Every feature bit offered here must work in a guest: a bit is only added
 * together with whatever makes it true (MSRs, CR4 bits, XSAVE state, ...).
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/fpu/xstate.h>
#include <asm/processor.h>

#include <minikvm/core.h>

/*
 * Feature masks (SDM vol. 2A CPUID, APM vol. 3 appendix E).  APIC and
 * x2APIC are offered as KVM offers them, for VMMs that create the in-kernel
 * irqchip; TSC-deadline is not, as in KVM: it is KVM_CAP_TSC_DEADLINE_TIMER.
 * MTRR, MCE and MCA have their MSRs in mtrr.c and mce.c, RDTSCP and RDPID
 * their TSC_AUX in tsc_aux.c.  SVM, with its leaf 0x8000000A, only with the
 * nested parameter (svm/nested.c).  Missing on purpose for now: MONITOR,
 * VMX, PCID, XSAVES (IA32_XSS), AVX-512 and protection keys, and the
 * debug-store and performance-monitoring bits.  XSAVE, AVX and what needs
 * AVX (FMA, F16C, AVX2) are offered when the host has them: fpu.c switches
 * XCR0 and saves their state.  OSXSAVE follows the guest's CR4.
 */
#define LEAF1_EDX (BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) | \
		   BIT(8) | BIT(9) | BIT(11) | BIT(12) | BIT(13) | BIT(14) | BIT(15) | BIT(16) | \
		   BIT(17) | BIT(19) | BIT(23) | BIT(24) | BIT(25) | BIT(26))
#define LEAF1_ECX (BIT(0) | BIT(1) | BIT(9) | BIT(12) | BIT(13) | BIT(19) | BIT(20) | \
		   BIT(21) | BIT(22) | BIT(23) | BIT(25) | BIT(26) | BIT(28) | BIT(29) | BIT(30))
#define LEAF1_ECX_OSXSAVE BIT(27)
#define LEAF1_EDX_APIC BIT(9)
#define LEAF1_ECX_X2APIC BIT(21)
#define LEAF1_ECX_XSAVE BIT(26)
/*
 * FSGSBASE, BMI1, AVX2, SMEP, BMI2, ERMS, ADX, SMAP, CLFLUSHOPT, SHA; SMEP and
 * SMAP are CR4 bits the guest sets without an exit, enforced by the CPU.
 */
#define LEAF7_EBX (BIT(0) | BIT(3) | BIT(5) | BIT(7) | BIT(8) | BIT(9) | BIT(19) | BIT(20) | \
		   BIT(23) | BIT(29))
/* Leaf 0xD subleaf 1: XSAVEOPT and XGETBV with ECX=1, which need no more state. */
#define LEAFD1_EAX (BIT(0) | BIT(2))
/*
 * Leaf 0x80000001 EDX repeats leaf 1's low bits on AMD; plus SYSCALL, NX,
 * MMXEXT, FFXSR, 1G pages, LM.
 */
#define EXT1_EDX ((LEAF1_EDX & 0x0183ffff) | BIT(11) | BIT(20) | BIT(22) | BIT(25) | BIT(26) | \
		  BIT(29))
/* RDTSCP: the guest's own TSC_AUX is loaded for it (tsc_aux.c). */
#define EXT1_EDX_RDTSCP BIT(27)
/* RDPID, likewise. */
#define LEAF7_ECX_RDPID BIT(22)
/* LAHF/SAHF in 64-bit mode, ABM, SSE4A, MISALIGNSSE, 3DNOWPREFETCH. */
#define EXT1_ECX (BIT(0) | BIT(5) | BIT(6) | BIT(7) | BIT(8))
#define EXT1_ECX_SVM BIT(2)
/* Leaf 0x8000000A: SVM revision 1, and the ASIDs a guest hypervisor may use (APM vol. 3 E.4.9). */
#define SVM_LEAF 0x8000000a
#define NESTED_SVM_REVISION 1
#define NESTED_SVM_ASIDS 16

static struct kvm_cpuid_entry2 supported[24];
static int nr_supported;

static void add_leaf(u32 fn, u32 eax_mask, u32 ebx_mask, u32 ecx_mask, u32 edx_mask)
{
	struct kvm_cpuid_entry2 *e = &supported[nr_supported];
	/* A second entry of a leaf is its next subleaf. */
	u32 index = nr_supported && e[-1].function == fn ? e[-1].index + 1 : 0;

	nr_supported++;
	e->function = fn;
	e->index = index;
	cpuid_count(fn, index, &e->eax, &e->ebx, &e->ecx, &e->edx);
	e->eax &= eax_mask;
	e->ebx &= ebx_mask;
	e->ecx &= ecx_mask;
	e->edx &= edx_mask;
}

/**
 * mkvm_cpuid_init() - build the supported CPUID table, once, at module load
 */
void mkvm_cpuid_init(void)
{
	u32 max_basic = cpuid_eax(0), max_ext = cpuid_eax(0x80000000);
	struct kvm_cpuid_entry2 *e;

	u64 xcr0 = mkvm_supported_xcr0();

	add_leaf(0, ~0u, ~0u, ~0u, ~0u);
	supported[0].eax = min(max_basic, xcr0 ? 0xdu : 7u);
	/* Leaf 1 EBX: keep brand index and CLFLUSH size; the VMM sets the APIC id. */
	add_leaf(1, ~0u, 0xffff, LEAF1_ECX, LEAF1_EDX);
	/* The in-kernel local APIC has x2APIC mode whatever the host has. */
	supported[1].ecx |= LEAF1_ECX_X2APIC;
	if (!xcr0)
		supported[1].ecx &= ~(LEAF1_ECX_XSAVE | BIT(12) | BIT(28) | BIT(29));
	if (max_basic >= 7) {
		add_leaf(7, 0, LEAF7_EBX, boot_cpu_has(X86_FEATURE_RDPID) ? LEAF7_ECX_RDPID : 0, 0);
		e = &supported[nr_supported - 1];
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		if (!(xcr0 & XFEATURE_MASK_YMM))
			e->ebx &= ~BIT(5);
		/* IA32_TSC_ADJUST is emulated (tsc.c), whatever the host has. */
		e->ebx |= BIT(1);
		/* CR4 bits the host kernel turned off (nosmep, ...) are refused in sregs. */
		if (!boot_cpu_has(X86_FEATURE_FSGSBASE))
			e->ebx &= ~BIT(0);
		if (!boot_cpu_has(X86_FEATURE_SMEP))
			e->ebx &= ~BIT(7);
		if (!boot_cpu_has(X86_FEATURE_SMAP))
			e->ebx &= ~BIT(20);
	}
	if (xcr0 && max_basic >= 0xd) {
		/* XSAVE: the components (EAX, EDX), the largest area (ECX), each component. */
		add_leaf(0xd, 0, 0, 0, 0);
		e = &supported[nr_supported - 1];
		e->eax = (u32)xcr0;
		e->edx = xcr0 >> 32;
		e->ecx = mkvm_xsave_size(xcr0);
		e->ebx = e->ecx;
		add_leaf(0xd, LEAFD1_EAX, 0, 0, 0);
		supported[nr_supported - 1].index = 1;
		if (xcr0 & XFEATURE_MASK_YMM) {
			e = &supported[nr_supported++];
			e->function = 0xd;
			e->index = 2;
			cpuid_count(0xd, 2, &e->eax, &e->ebx, &e->ecx, &e->edx);
		}
		for (e = &supported[nr_supported - 1]; e->function == 0xd; e--)
			e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	}
	add_leaf(0x80000000, ~0u, ~0u, ~0u, ~0u);
	supported[nr_supported - 1].eax = min(max_ext, mkvm_nested ? SVM_LEAF : 0x80000008u);
	/* RDTSCP and RDPID only where tsc_aux.c switches TSC_AUX for them. */
	add_leaf(0x80000001, ~0u, ~0u, EXT1_ECX | (mkvm_nested ? EXT1_ECX_SVM : 0),
		 EXT1_EDX | (boot_cpu_has(X86_FEATURE_RDTSCP) ? EXT1_EDX_RDTSCP : 0));
	for (u32 fn = 0x80000002; fn <= min(max_ext, 0x80000006u); fn++)
		add_leaf(fn, ~0u, ~0u, ~0u, ~0u);	/* brand string, cache geometry */
	if (max_ext >= 0x80000008) {
		/* Physical and linear address sizes. */
		add_leaf(0x80000008, 0xffff, 0, 0, 0);
		/* Nested paging has 4 levels: guest-physical addresses end at bit 47. */
		e = &supported[nr_supported - 1];
		if ((e->eax & 0xff) > 48)
			e->eax = (e->eax & ~0xffu) | 48;
	}
	if (mkvm_nested && max_ext >= SVM_LEAF) {
		/* What a guest hypervisor gets from the SVM minikvm emulates for it. */
		e = &supported[nr_supported++];
		*e = (struct kvm_cpuid_entry2){ .function = SVM_LEAF, .eax = NESTED_SVM_REVISION,
						.ebx = NESTED_SVM_ASIDS,
						.edx = mkvm_nested_svm_features };
	}
	/* KVM's paravirtual leaves, 0x40000000 and 0x40000001 (kvmclock.c). */
	nr_supported += mkvm_kvmclock_cpuid(&supported[nr_supported]);
}

/**
 * mkvm_dev_get_supported_cpuid() - KVM_GET_SUPPORTED_CPUID
 * @arg: the user's struct kvm_cpuid2
 *
 * Return: 0, -E2BIG when nent is too small (nent is then left as it was,
 * as KVM does), -EFAULT.
 */
int mkvm_dev_get_supported_cpuid(struct kvm_cpuid2 __user *arg)
{
	struct kvm_cpuid2 hdr;

	if (copy_from_user(&hdr, arg, sizeof(hdr)))
		return -EFAULT;
	if (hdr.nent < nr_supported)
		return -E2BIG;
	if (copy_to_user(arg->entries, supported, nr_supported * sizeof(supported[0])))
		return -EFAULT;
	hdr.nent = nr_supported;
	return copy_to_user(arg, &hdr, sizeof(hdr)) ? -EFAULT : 0;
}

static struct kvm_cpuid_entry2 *find_entry(struct mkvm_vcpu *vcpu, u32 fn, u32 index)
{
	for (int i = 0; i < vcpu->arch.cpuid_nent; i++) {
		struct kvm_cpuid_entry2 *e = &vcpu->arch.cpuid[i];

		if (e->function == fn &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

/**
 * mkvm_find_cpuid_entry() - a leaf of the vCPU's CPUID table
 * @vcpu: the vCPU
 * @fn: leaf
 * @index: subleaf, for leaves that have them
 *
 * Return: the entry, or NULL when the table has no such leaf.
 */
struct kvm_cpuid_entry2 *mkvm_find_cpuid_entry(struct mkvm_vcpu *vcpu, u32 fn, u32 index)
{
	return find_entry(vcpu, fn, index);
}

/**
 * mkvm_guest_maxphyaddr() - the guest's physical address width
 * @vcpu: the vCPU
 *
 * Return: leaf 0x80000008 EAX[7:0], or 36 when the table has no such leaf
 * (SDM vol. 3 4.1.4).
 */
unsigned int mkvm_guest_maxphyaddr(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = find_entry(vcpu, 0x80000008, 0);

	return e && (e->eax & 0xff) ? min(e->eax & 0xff, 52u) : 36;
}

/**
 * mkvm_cpuid_apic_changed() - leaf 1's APIC bit follows IA32_APIC_BASE's enable
 * @vcpu: the vCPU
 *
 * As on hardware (SDM 10.4.3) and in KVM, also in KVM_GET_CPUID2.
 */
void mkvm_cpuid_apic_changed(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *e = find_entry(vcpu, 1, 0);

	if (!e)
		return;
	e->edx &= ~LEAF1_EDX_APIC;
	if (vcpu->arch.apic_base & MSR_IA32_APICBASE_ENABLE)
		e->edx |= LEAF1_EDX_APIC;
}

/* What XSETBV may enable: leaf 0xD's components, with XSAVE in leaf 1, that minikvm supports. */
static u64 guest_xcr0_mask(struct mkvm_vcpu *vcpu)
{
	struct kvm_cpuid_entry2 *leaf1 = find_entry(vcpu, 1, 0), *leafd = find_entry(vcpu, 0xd, 0);

	if (!leaf1 || !(leaf1->ecx & LEAF1_ECX_XSAVE) || !leafd)
		return 0;
	return ((leafd->eax | (u64)leafd->edx << 32) & mkvm_supported_xcr0()) | XFEATURE_MASK_FP;
}

/*
 * Is @e, a table for a vCPU that has run, the one it has?  As KVM 6.1
 * decides: the same entries in the same order, where the bits that follow
 * the vCPU's state (the APIC bit, OSXSAVE, OSPKE, the XSAVE sizes) do not
 * count.
 */
static bool cpuid_same(struct mkvm_vcpu *vcpu, const struct kvm_cpuid_entry2 *e, u32 nent)
{
	if (nent != vcpu->arch.cpuid_nent)
		return false;
	for (u32 i = 0; i < nent; i++) {
		struct kvm_cpuid_entry2 a = e[i], b = vcpu->arch.cpuid[i];

		if (a.function == 1) {
			a.edx &= ~LEAF1_EDX_APIC;
			b.edx &= ~LEAF1_EDX_APIC;
			a.ecx &= ~LEAF1_ECX_OSXSAVE;
			b.ecx &= ~LEAF1_ECX_OSXSAVE;
		} else if (a.function == 7 && a.index == 0) {
			a.ecx &= ~BIT(4);	/* OSPKE */
			b.ecx &= ~BIT(4);
		} else if (a.function == 0xd && a.index <= 1) {
			a.ebx = b.ebx = 0;
		}
		if (a.function != b.function || a.index != b.index || a.flags != b.flags ||
		    a.eax != b.eax || a.ebx != b.ebx || a.ecx != b.ecx || a.edx != b.edx)
			return false;
	}
	return true;
}

/**
 * mkvm_vcpu_set_cpuid2() - KVM_SET_CPUID2
 * @vcpu: the vCPU
 * @arg: the user's struct kvm_cpuid2
 *
 * Once the vCPU has run, its CPU model stays: as in KVM, only the table it
 * has is accepted again (VMMs reuse vCPUs for hotplug and set it again).
 *
 * Return: 0, -E2BIG for more than 256 entries, -EFAULT, -ENOMEM; -EINVAL
 * for a different table after the vCPU ran.
 */
int mkvm_vcpu_set_cpuid2(struct mkvm_vcpu *vcpu, struct kvm_cpuid2 __user *arg)
{
	struct kvm_cpuid_entry2 *entries, *leaf0;
	struct kvm_cpuid2 hdr;

	if (copy_from_user(&hdr, arg, sizeof(hdr)))
		return -EFAULT;
	if (hdr.nent > MKVM_MAX_CPUID_ENTRIES)
		return -E2BIG;
	entries = hdr.nent ? memdup_user(arg->entries, hdr.nent * sizeof(*entries)) : NULL;
	if (IS_ERR(entries))
		return PTR_ERR(entries);
	if (vcpu->arch.entered) {
		bool same = cpuid_same(vcpu, entries, hdr.nent);

		kfree(entries);
		return same ? 0 : -EINVAL;
	}
	kfree(vcpu->arch.cpuid);
	vcpu->arch.cpuid = entries;
	vcpu->arch.cpuid_nent = hdr.nent;
	/* "AuthenticAMD" or "HygonGenuine": EBX starts "Auth" or "Hygo". */
	leaf0 = find_entry(vcpu, 0, 0);
	vcpu->arch.amd_guest = !leaf0 || leaf0->ebx == 0x68747541 || leaf0->ebx == 0x6f677948;
	vcpu->arch.guest_xcr0_mask = guest_xcr0_mask(vcpu);
	mkvm_cpuid_apic_changed(vcpu);
	return 0;
}

/**
 * mkvm_vcpu_get_cpuid2() - KVM_GET_CPUID2
 * @vcpu: the vCPU
 * @arg: the user's struct kvm_cpuid2
 *
 * As in KVM, nent is not written back, neither on success nor on -E2BIG.
 *
 * Return: 0, -E2BIG, -EFAULT.
 */
int mkvm_vcpu_get_cpuid2(struct mkvm_vcpu *vcpu, struct kvm_cpuid2 __user *arg)
{
	struct kvm_cpuid2 hdr;

	if (copy_from_user(&hdr, arg, sizeof(hdr)))
		return -EFAULT;
	if (hdr.nent < vcpu->arch.cpuid_nent)
		return -E2BIG;
	if (copy_to_user(arg->entries, vcpu->arch.cpuid,
			 vcpu->arch.cpuid_nent * sizeof(*vcpu->arch.cpuid)))
		return -EFAULT;
	return 0;
}

/*
 * A leaf the table lacks: zeros on AMD (APM vol. 3 CPUID); on Intel, a leaf
 * above its range's maximum reads as the highest basic leaf (SDM vol. 2A
 * CPUID, "If a value entered for CPUID.EAX is higher than the maximum..."),
 * as KVM does for a guest whose vendor is not AMD or Hygon.
 */
static struct kvm_cpuid_entry2 *out_of_range_entry(struct mkvm_vcpu *vcpu, u32 *fn, u32 index)
{
	struct kvm_cpuid_entry2 *basic = find_entry(vcpu, 0, 0), *range;

	if (!basic || vcpu->arch.amd_guest)
		return NULL;
	if (*fn >= 0x40000000 && *fn <= 0x4fffffff)
		range = find_entry(vcpu, *fn & 0xffffff00, 0);
	else if (*fn >= 0xc0000000)
		range = find_entry(vcpu, 0xc0000000, 0);
	else
		range = find_entry(vcpu, *fn & 0x80000000, 0);
	if (range && *fn <= range->eax)
		return NULL;
	*fn = basic->eax;
	return find_entry(vcpu, *fn, index);
}

/**
 * mkvm_emulate_cpuid() - execute CPUID for the guest from its table
 * @vcpu: the vCPU; EAX and ECX hold the leaf and subleaf
 *
 * A leaf missing from the table reads as zeros, as on AMD, or for an
 * Intel guest above its range as the highest basic leaf.  Two values
 * follow the guest's state, as on hardware: OSXSAVE (leaf 1 ECX[27]) is
 * CR4.OSXSAVE, and leaf 0xD.0 EBX is the XSAVE area for the current XCR0
 * (SDM vol. 2A CPUID).  The caller advances RIP.
 */
void mkvm_emulate_cpuid(struct mkvm_vcpu *vcpu)
{
	unsigned long *r = vcpu->arch.regs;
	u32 fn = r[REG_RAX], index = r[REG_RCX];
	struct kvm_cpuid_entry2 *e = find_entry(vcpu, fn, index);
	struct kvm_sregs sregs;

	if (!e)
		e = out_of_range_entry(vcpu, &fn, index);

	r[REG_RAX] = e ? e->eax : 0;
	r[REG_RBX] = e ? e->ebx : 0;
	r[REG_RCX] = e ? e->ecx : 0;
	r[REG_RDX] = e ? e->edx : 0;
	if (e && fn == 1 && (e->ecx & LEAF1_ECX_XSAVE)) {
		mkvm_x86->get_sregs(vcpu, &sregs);
		r[REG_RCX] &= ~LEAF1_ECX_OSXSAVE;
		if (sregs.cr4 & X86_CR4_OSXSAVE)
			r[REG_RCX] |= LEAF1_ECX_OSXSAVE;
	}
	if (e && fn == 0xd && index == 0)
		r[REG_RBX] = mkvm_xsave_size(vcpu->arch.xcr0);
}
