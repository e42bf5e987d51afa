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
#include <asm/processor.h>

#include <minikvm/core.h>

/*
 * Feature masks (SDM vol. 2A CPUID, APM vol. 3 appendix E).  Missing on
 * purpose for now: APIC, x2APIC and TSC-deadline (no in-kernel LAPIC yet),
 * MCE/MCA and MTRR (their MSRs), XSAVE and everything it enables (AVX...),
 * MONITOR, VMX/SVM (nested), RDTSCP (TSC_AUX), PCID, and the debug-store and
 * performance-monitoring bits.
 */
#define LEAF1_EDX (BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(8) | \
		   BIT(11) | BIT(13) | BIT(15) | BIT(16) | BIT(17) | BIT(19) | BIT(23) | \
		   BIT(24) | BIT(25) | BIT(26))
#define LEAF1_ECX (BIT(0) | BIT(1) | BIT(9) | BIT(13) | BIT(19) | BIT(20) | BIT(22) | \
		   BIT(23) | BIT(25) | BIT(30))
/* FSGSBASE, BMI1, BMI2, ERMS, ADX, CLFLUSHOPT, SHA. */
#define LEAF7_EBX (BIT(0) | BIT(3) | BIT(8) | BIT(9) | BIT(19) | BIT(23) | BIT(29))
/* Leaf 0x80000001 EDX repeats leaf 1's low bits on AMD; plus SYSCALL, NX, MMXEXT, FFXSR, 1G pages, LM. */
#define EXT1_EDX ((LEAF1_EDX & 0x0183ffff) | BIT(11) | BIT(20) | BIT(22) | BIT(25) | BIT(26) | \
		  BIT(29))
/* LAHF/SAHF in 64-bit mode, ABM, SSE4A, MISALIGNSSE, 3DNOWPREFETCH. */
#define EXT1_ECX (BIT(0) | BIT(5) | BIT(6) | BIT(7) | BIT(8))

static struct kvm_cpuid_entry2 supported[16];
static int nr_supported;

static void add_leaf(u32 fn, u32 eax_mask, u32 ebx_mask, u32 ecx_mask, u32 edx_mask)
{
	struct kvm_cpuid_entry2 *e = &supported[nr_supported++];

	e->function = fn;
	cpuid_count(fn, 0, &e->eax, &e->ebx, &e->ecx, &e->edx);
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

	add_leaf(0, ~0u, ~0u, ~0u, ~0u);
	supported[0].eax = min(max_basic, 7u);
	/* Leaf 1 EBX: keep brand index and CLFLUSH size; the VMM sets the APIC id. */
	add_leaf(1, ~0u, 0xffff, LEAF1_ECX, LEAF1_EDX);
	if (max_basic >= 7) {
		add_leaf(7, 0, LEAF7_EBX, 0, 0);
		e = &supported[nr_supported - 1];
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	}
	add_leaf(0x80000000, ~0u, ~0u, ~0u, ~0u);
	supported[nr_supported - 1].eax = min(max_ext, 0x80000008u);
	add_leaf(0x80000001, ~0u, ~0u, EXT1_ECX, EXT1_EDX);
	for (u32 fn = 0x80000002; fn <= min(max_ext, 0x80000006u); fn++)
		add_leaf(fn, ~0u, ~0u, ~0u, ~0u);	/* brand string, cache geometry */
	if (max_ext >= 0x80000008) {
		add_leaf(0x80000008, 0xffff, 0, 0, 0);	/* physical and linear address sizes */
		/* Nested paging has 4 levels: guest-physical addresses end at bit 47. */
		e = &supported[nr_supported - 1];
		if ((e->eax & 0xff) > 48)
			e->eax = (e->eax & ~0xffu) | 48;
	}
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
 * mkvm_vcpu_set_cpuid2() - KVM_SET_CPUID2
 * @vcpu: the vCPU
 * @arg: the user's struct kvm_cpuid2
 *
 * Return: 0, -E2BIG for more than 256 entries, -EFAULT, -ENOMEM.
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
	kfree(vcpu->arch.cpuid);
	vcpu->arch.cpuid = entries;
	vcpu->arch.cpuid_nent = hdr.nent;
	/* "AuthenticAMD" or "HygonGenuine": EBX starts "Auth" or "Hygo". */
	leaf0 = find_entry(vcpu, 0, 0);
	vcpu->arch.amd_guest = !leaf0 || leaf0->ebx == 0x68747541 || leaf0->ebx == 0x6f677948;
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

/**
 * mkvm_emulate_cpuid() - execute CPUID for the guest from its table
 * @vcpu: the vCPU; EAX and ECX hold the leaf and subleaf
 *
 * A leaf missing from the table reads as zeros, as on AMD.  The caller
 * advances RIP.
 */
void mkvm_emulate_cpuid(struct mkvm_vcpu *vcpu)
{
	unsigned long *r = vcpu->arch.regs;
	struct kvm_cpuid_entry2 *e = find_entry(vcpu, r[REG_RAX], r[REG_RCX]);

	r[REG_RAX] = e ? e->eax : 0;
	r[REG_RBX] = e ? e->ebx : 0;
	r[REG_RCX] = e ? e->ecx : 0;
	r[REG_RDX] = e ? e->edx : 0;
}
