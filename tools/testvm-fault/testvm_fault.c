// SPDX-License-Identifier: GPL-2.0
/*
 * testvm_fault: a module that breaks the kernel on purpose, so that
 * tools/testvm-selftest can prove the runner notices.  Never load it
 * anywhere but the test machine.
 *
 *   insmod testvm_fault.ko mode=warn    a WARN_ON splat, the kernel goes on
 *   insmod testvm_fault.ko mode=oops    a NULL pointer dereference (Oops)
 */
#include <linux/module.h>
#include <linux/bug.h>

static char *mode = "warn";
module_param(mode, charp, 0444);

static int __init testvm_fault_init(void)
{
	if (!strcmp(mode, "oops")) {
		/* volatile: the compiler must not see through the NULL store. */
		int * volatile p = NULL;

		*p = 1;
	} else {
		WARN_ON(1);
	}
	return 0;
}

static void __exit testvm_fault_exit(void)
{
}

module_init(testvm_fault_init);
module_exit(testvm_fault_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Deliberate kernel faults for the test-machine runner's self-test");
