// SPDX-License-Identifier: GPL-2.0
/*
 * MOV to CR8 for the in-kernel local APIC.  The guest writes CR8 without an
 * exit, except while an interrupt waits only because of the TPR: then the
 * write is intercepted so that lowering the TPR lets the interrupt in at
 * once (SDM vol. 3 10.8.6.1).  When the hardware does not say which
 * register the value is in, the shared decoder reads the instruction.
 */
#include <asm/traps.h>

#include <minikvm/core.h>
#include <minikvm/irqchip.h>

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
	struct mkvm_insn insn;
	struct kvm_sregs s;
	unsigned int cr;
	bool wide;
	u64 val;
	int r;

	if (!mkvm_decode_intercepted(vcpu, &s, &insn, &gpr, &len, &r))
		return r;
	if (insn.kind != INSN_UNKNOWN) {
		/* AMD also encodes CR8 as LOCK MOV CR0 (APM vol. 3 MOV CRn). */
		cr = insn.reg == 0 && insn.lock ? 8 : insn.reg;
		if (insn.kind != INSN_MOV_TO_CR || cr != 8)
			return mkvm_emulation_failed(vcpu, NULL, 0);
	}
	/* The source is 64 bits in 64-bit mode, else 32 (SDM vol. 2 MOV-Control Registers). */
	wide = (s.efer & EFER_LMA) && s.cs.l;
	val = wide ? vcpu->arch.regs[gpr] : (u32)vcpu->arch.regs[gpr];
	/* CR8[63:4] are reserved (SDM vol. 3 2.5). */
	if (val & ~0xfULL) {
		mkvm_queue_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	}
	mkvm_x86->set_cr8(vcpu, val);
	if (vcpu->arch.lapic)
		mkvm_lapic_sync_tpr_from_guest(vcpu);
	mkvm_rip_past_insn(vcpu, wide ? vcpu->arch.rip + len : (u32)(vcpu->arch.rip + len));
	return 1;
}
