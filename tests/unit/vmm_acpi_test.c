// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's ACPI tables: structure and checksums, checked here, and the
 * DSDT's AML, checked by disassembling it with ACPICA's iasl.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "vmm.h"

struct vmm vm;
static uint8_t mem[0x100000];

void *gpa_to_hva(uint64_t gpa, uint64_t len)
{
	return gpa < sizeof(mem) && len <= sizeof(mem) - gpa ? mem + gpa : NULL;
}

void vmm_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	exit(1);
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

static uint32_t get32(uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, mem + gpa, 4);
	return v;
}

static uint64_t get64(uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, mem + gpa, 8);
	return v;
}

/* A table at @gpa with signature @sig, a length inside the area and a zero checksum. */
static uint32_t check_table(uint64_t gpa, const char *sig)
{
	uint32_t len;

	TEST_ASSERT(gpa >= ACPI_TABLES_GPA && gpa < ACPI_TABLES_END, "%s at %#lx", sig,
		    (unsigned long)gpa);
	TEST_ASSERT(!memcmp(mem + gpa, sig, 4), "expected %s at %#lx", sig, (unsigned long)gpa);
	len = get32(gpa + 4);
	TEST_ASSERT(gpa + len <= ACPI_TABLES_END, "%s runs past the area", sig);
	TEST_ASSERT_EQ(sum(mem + gpa, len), 0);
	return len;
}

static uint64_t build(int ncpus, uint64_t *madt, uint64_t *dsdt)
{
	uint64_t rsdp = ACPI_TABLES_GPA, xsdt, fadt = 0;
	uint32_t xlen;

	memset(mem, 0, sizeof(mem));
	memset(&vm, 0, sizeof(vm));
	vm.ncpus = ncpus;
	acpi_build_tables(&vm);

	TEST_ASSERT(!memcmp(mem + rsdp, "RSD PTR ", 8), "no RSDP at the start of the area");
	TEST_ASSERT_EQ(sum(mem + rsdp, 20), 0);
	TEST_ASSERT_EQ(sum(mem + rsdp, 36), 0);
	TEST_ASSERT_EQ(mem[rsdp + 15], 2);		/* revision: ACPI 2.0+, has an XSDT */
	xsdt = get64(rsdp + 24);
	xlen = check_table(xsdt, "XSDT");
	*madt = 0;
	for (uint32_t off = 36; off < xlen; off += 8) {
		uint64_t t = get64(xsdt + off);

		if (!memcmp(mem + t, "FACP", 4))
			fadt = t;
		if (!memcmp(mem + t, "APIC", 4))
			*madt = t;
	}
	TEST_ASSERT(fadt && *madt, "the XSDT lists no FADT or no MADT");
	check_table(fadt, "FACP");
	check_table(*madt, "APIC");
	*dsdt = get32(fadt + 40);
	TEST_ASSERT_EQ(get64(fadt + 140), *dsdt);	/* X_DSDT agrees */
	check_table(*dsdt, "DSDT");
	/* FACS: 64-byte aligned (ACPI 5.2.10); PM1 blocks where vmm/pm.c listens. */
	TEST_ASSERT_EQ(get32(fadt + 36) % 64, 0);
	TEST_ASSERT(!memcmp(mem + get32(fadt + 36), "FACS", 4), "no FACS");
	TEST_ASSERT_EQ(get32(fadt + 56), PM1_EVT_PORT);
	TEST_ASSERT_EQ(get32(fadt + 64), PM1_CNT_PORT);
	TEST_ASSERT_EQ(get32(fadt + 46) & 0xffff, IRQ_SCI);
	return fadt;
}

static void count_madt(uint64_t madt, int *lapics, int *ioapics)
{
	uint32_t len = get32(madt + 4);

	*lapics = *ioapics = 0;
	TEST_ASSERT_EQ(get32(madt + 36), LAPIC_GPA);
	for (uint32_t off = 44; off < len; off += mem[madt + off + 1]) {
		TEST_ASSERT(mem[madt + off + 1] >= 2, "a MADT entry of length %u",
			    mem[madt + off + 1]);
		if (mem[madt + off] == 0) {
			TEST_ASSERT_EQ(mem[madt + off + 3], *lapics);	/* APIC id = vCPU id */
			TEST_ASSERT_EQ(get32(madt + off + 4) & 1, 1);	/* enabled */
			(*lapics)++;
		}
		if (mem[madt + off] == 1) {
			TEST_ASSERT_EQ(get32(madt + off + 4), IOAPIC_GPA);
			(*ioapics)++;
		}
	}
}

TEST(one_cpu_tables)
{
	uint64_t madt, dsdt;
	int lapics, ioapics;

	build(1, &madt, &dsdt);
	count_madt(madt, &lapics, &ioapics);
	TEST_ASSERT_EQ(lapics, 1);
	TEST_ASSERT_EQ(ioapics, 1);
}

TEST(max_cpus_fit)
{
	uint64_t madt, dsdt;
	int lapics, ioapics;

	build(MAX_VCPUS, &madt, &dsdt);
	count_madt(madt, &lapics, &ioapics);
	TEST_ASSERT_EQ(lapics, MAX_VCPUS);
	TEST_ASSERT_EQ(ioapics, 1);
}

/* iasl -d must read the DSDT without errors and find the PCI root and \_S5. */
TEST(dsdt_disassembles)
{
	char dir[] = "/tmp/acpi_test.XXXXXX", cmd[512], line[512];
	uint64_t madt, dsdt;
	bool pci0 = false, s5 = false, crs = false;
	FILE *f;

	if (system("command -v iasl >/dev/null 2>&1"))
		TEST_ASSERT(0, "iasl is missing: install acpica-tools (make deps)");
	build(2, &madt, &dsdt);
	TEST_ASSERT(mkdtemp(dir), "mkdtemp");
	snprintf(cmd, sizeof(cmd), "%s/dsdt.dat", dir);
	f = fopen(cmd, "wb");
	TEST_ASSERT(f && fwrite(mem + dsdt, get32(dsdt + 4), 1, f) == 1, "writing the DSDT");
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd %s && iasl -d dsdt.dat >iasl.log 2>&1", dir);
	TEST_ASSERT_EQ(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/dsdt.dsl", dir);
	f = fopen(cmd, "r");
	TEST_ASSERT(f, "iasl wrote no dsdt.dsl");
	while (fgets(line, sizeof(line), f)) {
		TEST_ASSERT(!strstr(line, "Error") && !strstr(line, "Unknown"), "iasl: %s", line);
		pci0 |= strstr(line, "Device (PCI0)") != NULL;
		s5 |= strstr(line, "Name (_S5, Package (0x04)") != NULL;
		crs |= strstr(line, "0xFEBFFFFF,         // Range Maximum") != NULL;
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	TEST_ASSERT_EQ(system(cmd), 0);
	TEST_ASSERT(pci0 && s5 && crs, "PCI0 %d, _S5 %d, the MMIO window %d", pci0, s5, crs);
}
