// SPDX-License-Identifier: GPL-2.0
/*
 * MOV to CR8 for the in-kernel local APIC.  The guest writes CR8 without an
 * exit, except while an interrupt waits only because of the TPR: then the
 * write is intercepted so that lowering the TPR lets the interrupt in at
 * once (SDM vol. 3 10.8.6.1).  When the hardware does not say which
 * register the value is in, the instruction is decoded here: prefixes, an
 * optional REX, 0F 22 /r with a register operand (SDM vol. 2 MOV-Control
 * Registers; AMD also encodes CR8 as LOCK MOV CR0).
 */
#include <asm/traps.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

static bool legacy_prefix(u8 b)
{
	switch (b) {
	case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
	case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
		return true;
	default:
		return false;
	}
}

/* The source GPR and length of a MOV to CR8 at RIP, or -1. */
static int decode_mov_cr8(struct mkvm_vcpu *vcpu, unsigned int *len)
{
	u8 b[MKVM_MAX_INSN_LEN];
	struct kvm_sregs s;
	unsigned int i = 0, n, cr;
	bool lock = false;
	u8 rex = 0, modrm;

	mkvm_x86->get_sregs(vcpu, &s);
	n = mkvm_fetch_insn(vcpu, &s, b);
	while (i < n && legacy_prefix(b[i]))
		lock |= b[i++] == 0xf0;
	if (i < n && (b[i] & 0xf0) == 0x40 && (s.efer & EFER_LMA) && s.cs.l)
		rex = b[i++];
	if (i + 3 > n || b[i] != 0x0f || b[i + 1] != 0x22)
		return -1;
	modrm = b[i + 2];
	cr = ((rex >> 2) & 1) << 3 | ((modrm >> 3) & 7);
	if (lock && cr == 0)
		cr = 8;
	if ((modrm >> 6) != 3 || cr != 8)
		return -1;
	*len = i + 3;
	return ((rex & 1) << 3) | (modrm & 7);
}

/**
 * mkvm_emulate_cr8_write() - complete an intercepted MOV to CR8
 * @vcpu: the vCPU, with slots_sem held
 * @gpr: the source register if the hardware said, else -1
 * @len: the instruction's length if known, else 0
 *
 * Return: 1 to enter again, 0 with kvm_run reporting an emulation failure.
 */
int mkvm_emulate_cr8_write(struct mkvm_vcpu *vcpu, int gpr, unsigned int len)
{
	unsigned int dlen = 0;
	u64 val;
	int r;

	r = decode_mov_cr8(vcpu, &dlen);
	if (gpr < 0)
		gpr = r;
	if (!len)
		len = dlen;
	if (gpr < 0 || !len) {
		vcpu->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
		vcpu->run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
		vcpu->run->internal.ndata = 0;
		return 0;
	}
	val = vcpu->arch.regs[gpr];
	/* CR8[63:4] are reserved (SDM vol. 3 2.5). */
	if (val & ~0xfULL) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
	mkvm_x86->set_cr8(vcpu, val);
	if (vcpu->arch.lapic)
		mkvm_lapic_sync_tpr_from_guest(vcpu);
	mkvm_rip_past_insn(vcpu, vcpu->arch.rip + len);
	return 1;
}
