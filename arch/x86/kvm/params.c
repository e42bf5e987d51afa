// SPDX-License-Identifier: GPL-2.0
/*
 * The vendors' module parameters, named as kvm_amd's and kvm_intel's.  All
 * are read-only once loaded: /sys/module/minikvm/parameters shows what is
 * in use, so the vendor that was not picked shows its own as N
 * (mkvm_params_pick()), and a vendor clears what its CPU cannot do.
 */
#include <linux/moduleparam.h>

#include <minikvm/x86.h>

bool mkvm_param_npt = true;
module_param_named(npt, mkvm_param_npt, bool, 0444);
MODULE_PARM_DESC(npt, "SVM: use nested paging (NPT) if the CPU has it; 0: the shadow MMU");

bool mkvm_param_ept = true;
module_param_named(ept, mkvm_param_ept, bool, 0444);
MODULE_PARM_DESC(ept, "VMX: use EPT if the CPU has it");

bool mkvm_param_vpid = true;
module_param_named(vpid, mkvm_param_vpid, bool, 0444);
MODULE_PARM_DESC(vpid, "VMX: tag the guest's TLB entries with a VPID if the CPU can");

bool mkvm_param_unrestricted_guest = true;
module_param_named(unrestricted_guest, mkvm_param_unrestricted_guest, bool, 0444);
MODULE_PARM_DESC(unrestricted_guest, "VMX: run real-mode and unpaged guests natively");

bool mkvm_param_preemption_timer = true;
module_param_named(preemption_timer, mkvm_param_preemption_timer, bool, 0444);
MODULE_PARM_DESC(preemption_timer,
		 "VMX: end a running guest's entry at its LAPIC timer's expiry (preemption timer)");

/**
 * mkvm_params_pick() - the other vendor's parameters are not in use
 * @svm: SVM was picked, else VMX
 */
void mkvm_params_pick(bool svm)
{
	if (svm) {
		mkvm_param_ept = mkvm_param_vpid = mkvm_param_unrestricted_guest = false;
		mkvm_param_preemption_timer = false;
	} else {
		mkvm_param_npt = false;
	}
}
