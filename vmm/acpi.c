// SPDX-License-Identifier: GPL-2.0
/*
 * Minimal ACPI tables (ACPI 6.4 spec, chapter 5): RSDP, XSDT, FADT with
 * FACS, MADT, and a DSDT holding the PCI host bridge and the S5 (soft-off)
 * sleep type. That is what Debian's kernel needs to find every vCPU and the
 * IOAPIC, enumerate PCI, and power off.
 */
#include <string.h>

#include "vmm.h"

#define OEM_ID		"MINKVM"
#define OEM_TABLE_ID	"MINIKVM "

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* Generic Address Structure (ACPI 5.2.3.2). */
struct acpi_gas {
	uint8_t space_id;		/* 1: system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;		/* 1: byte */
	uint64_t address;
} __attribute__((packed));

/* ACPI 5.2.9, FADT revision 6. */
struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl, dsdt;
	uint8_t reserved0, pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk;
	uint32_t pm_tmr_blk, gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len;
	uint8_t gpe1_base, cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl, x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk, x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg, sleep_status_reg;
	uint64_t hypervisor_vendor;
} __attribute__((packed));

#define FADT_WBINVD		(1u << 0)
#define FADT_PWR_BUTTON		(1u << 4)	/* no fixed-feature power button */
#define FADT_SLP_BUTTON		(1u << 5)	/* no fixed-feature sleep button */
#define FADT_RESET_REG_SUP	(1u << 10)
#define BOOT_ARCH_LEGACY_DEVICES (1u << 0)
#define BOOT_ARCH_NO_VGA	(1u << 2)

/* ACPI 5.2.10: 64 bytes, 64-byte aligned. */
struct acpi_facs {
	char signature[4];
	uint32_t length, hardware_signature, waking_vector, global_lock, flags;
	uint64_t x_waking_vector;
	uint8_t version, reserved[3];
	uint32_t ospm_flags;
	uint8_t reserved2[24];
} __attribute__((packed));

struct acpi_rsdp {
	char signature[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

/* MADT (ACPI 5.2.12) entries. */
struct madt_lapic {
	uint8_t type, length, processor_id, apic_id;
	uint32_t flags;			/* bit 0: enabled */
} __attribute__((packed));

struct madt_ioapic {
	uint8_t type, length, ioapic_id, reserved;
	uint32_t address, gsi_base;
} __attribute__((packed));

struct madt_override {
	uint8_t type, length, bus, source;
	uint32_t gsi;
	uint16_t flags;
} __attribute__((packed));

struct madt_lapic_nmi {
	uint8_t type, length, processor_id;
	uint16_t flags;
	uint8_t lint;
} __attribute__((packed));

/* Where the next table goes. */
static uint64_t next_gpa = ACPI_TABLES_GPA;

static uint8_t checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return -sum;
}

static void *alloc_table(size_t len, size_t align)
{
	uint64_t gpa = (next_gpa + align - 1) & ~(uint64_t)(align - 1);
	void *p;

	if (gpa + len > ACPI_TABLES_END)
		vmm_die("the ACPI tables do not fit below 1 MiB (too many vCPUs?)");
	p = gpa_to_hva(gpa, len);
	memset(p, 0, len);
	next_gpa = gpa + len;
	return p;
}

static uint64_t gpa_of(const void *p)
{
	const uint8_t *base = gpa_to_hva(ACPI_TABLES_GPA, 1);

	return ACPI_TABLES_GPA + ((const uint8_t *)p - base);
}

static void finish_table(struct acpi_header *h, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	memcpy(h->oem_id, OEM_ID, 6);
	memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
	h->oem_revision = 1;
	memcpy(h->creator_id, "MKVM", 4);
	h->creator_revision = 1;
	h->checksum = checksum(h, len);
}

/* --- AML (ACPI 20.2), just the few terms the DSDT uses ------------------- */

struct aml {
	uint8_t b[1024];
	size_t n;
};

static void aml_bytes(struct aml *a, const void *p, size_t len)
{
	if (a->n + len > sizeof(a->b))
		vmm_die("internal error: the DSDT outgrew its buffer");
	memcpy(a->b + a->n, p, len);
	a->n += len;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/*
 * An opcode, its PkgLength (20.2.4), then an optional NameString and the body.
 * The length counts its own bytes, the name and the body.
 */
static void aml_pkg(struct aml *a, const uint8_t *op, size_t oplen, const char *name,
		    const struct aml *body)
{
	size_t namelen = name ? strlen(name) : 0;
	size_t len = namelen + body->n + 1;

	aml_bytes(a, op, oplen);
	if (len <= 0x3f) {
		aml_byte(a, len);
	} else if (len + 1 <= 0xfff) {
		len += 1;
		aml_byte(a, 0x40 | (len & 0xf));
		aml_byte(a, len >> 4);
	} else {
		len += 2;
		aml_byte(a, 0x80 | (len & 0xf));
		aml_byte(a, len >> 4);
		aml_byte(a, len >> 12);
	}
	aml_bytes(a, name, namelen);
	aml_bytes(a, body->b, body->n);
}

static void aml_name(struct aml *a, const char *seg)
{
	aml_byte(a, 0x08);		/* NameOp */
	aml_bytes(a, seg, 4);
}

static void aml_dword(struct aml *a, uint32_t v)
{
	aml_byte(a, 0x0c);		/* DWordPrefix */
	aml_bytes(a, &v, 4);
}

static void aml_integer(struct aml *a, uint8_t v)
{
	if (v == 0) {
		aml_byte(a, 0x00);	/* ZeroOp */
	} else {
		aml_byte(a, 0x0a);	/* BytePrefix */
		aml_byte(a, v);
	}
}

/* Word Address Space Descriptor (ACPI 6.4.3.5.3): a bus-number or I/O window. */
static void res_word(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	uint16_t f[5] = { 0, min, max, 0, (uint16_t)(max - min + 1) };

	aml_bytes(a, (uint8_t[]){ 0x88, 13, 0, type, 0x0c, tflags }, 6);
	aml_bytes(a, f, sizeof(f));
}

/* DWord Address Space Descriptor (6.4.3.5.2): a memory window, read-write, uncached. */
static void res_dword_mem(struct aml *a, uint32_t min, uint32_t max)
{
	uint32_t f[5] = { 0, min, max, 0, max - min + 1 };

	aml_bytes(a, (uint8_t[]){ 0x87, 23, 0, 0, 0x0c, 0x01 }, 6);
	aml_bytes(a, f, sizeof(f));
}

static void build_pci0(struct aml *sb)
{
	struct aml dev = { 0 }, crs = { 0 }, buf = { 0 };

	aml_name(&dev, "_HID");
	aml_dword(&dev, 0x030ad041);	/* EisaId("PNP0A03"): a PCI host bridge */
	aml_name(&dev, "_UID");
	aml_integer(&dev, 0);
	aml_name(&dev, "_ADR");
	aml_integer(&dev, 0);

	/* _CRS: bus 0-255, the configuration ports, the I/O and MMIO windows. */
	res_word(&crs, 2, 0, 0, 0xff);
	aml_bytes(&crs, (uint8_t[]){ 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 }, 8);
	res_word(&crs, 1, 0x03, 0x0000, 0x0cf7);
	res_word(&crs, 1, 0x03, 0x0d00, 0xffff);
	res_dword_mem(&crs, PCI_MMIO_START, PCI_MMIO_END - 1);
	aml_bytes(&crs, (uint8_t[]){ 0x79, 0x00 }, 2);	/* End Tag */
	aml_byte(&buf, 0x0a);		/* BufferSize: BytePrefix */
	aml_byte(&buf, crs.n);
	aml_bytes(&buf, crs.b, crs.n);
	aml_name(&dev, "_CRS");
	aml_pkg(&dev, (uint8_t[]){ 0x11 }, 1, NULL, &buf);	/* BufferOp */

	aml_pkg(sb, (uint8_t[]){ 0x5b, 0x82 }, 2, "PCI0", &dev);	/* DeviceOp */
}

static struct acpi_header *build_dsdt(void)
{
	struct aml body = { 0 }, sb = { 0 }, s5 = { 0 };
	struct acpi_header *h;

	/* \_S5: SLP_TYP 5 for soft-off, which vmm/pm.c recognizes in PM1_CNT. */
	aml_byte(&s5, 4);		/* NumElements */
	aml_integer(&s5, 5);
	aml_integer(&s5, 5);
	aml_integer(&s5, 0);
	aml_integer(&s5, 0);
	aml_name(&body, "_S5_");
	aml_pkg(&body, (uint8_t[]){ 0x12 }, 1, NULL, &s5);	/* PackageOp */

	build_pci0(&sb);
	aml_pkg(&body, (uint8_t[]){ 0x10 }, 1, "\\_SB_", &sb);	/* ScopeOp */

	h = alloc_table(sizeof(*h) + body.n, 16);
	memcpy(h + 1, body.b, body.n);
	finish_table(h, "DSDT", sizeof(*h) + body.n, 2);
	return h;
}

static struct acpi_fadt *build_fadt(struct acpi_header *dsdt)
{
	struct acpi_facs *facs = alloc_table(sizeof(*facs), 64);
	struct acpi_fadt *f;

	memcpy(facs->signature, "FACS", 4);
	facs->length = sizeof(*facs);
	facs->version = 2;

	f = alloc_table(sizeof(*f), 16);
	f->firmware_ctrl = gpa_of(facs);
	f->dsdt = gpa_of(dsdt);
	f->x_dsdt = f->dsdt;
	f->sci_int = IRQ_SCI;
	/* No SMI command port: the machine is always in ACPI mode (ACPI 4.8.4.1.1). */
	f->pm1a_evt_blk = PM1_EVT_PORT;
	f->pm1_evt_len = 4;
	f->pm1a_cnt_blk = PM1_CNT_PORT;
	f->pm1_cnt_len = 2;
	f->century = 0x32;		/* vmm/rtc.c keeps it there */
	/* No 8042 for Linux to probe: the reset port is all there is of it. */
	f->iapc_boot_arch = BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_NO_VGA;
	f->flags = FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP;
	/* Reset through the keyboard controller, like a PC's 8042 pulse. */
	f->reset_reg = (struct acpi_gas){ .space_id = 1, .bit_width = 8, .access_size = 1,
					  .address = 0x64 };
	f->reset_value = 0xfe;
	f->minor_version = 4;
	finish_table(&f->h, "FACP", sizeof(*f), 6);
	return f;
}

static struct acpi_header *build_madt(int ncpus)
{
	size_t len = sizeof(struct acpi_header) + 8 + ncpus * sizeof(struct madt_lapic) +
		     sizeof(struct madt_ioapic) + 2 * sizeof(struct madt_override) +
		     sizeof(struct madt_lapic_nmi);
	struct acpi_header *h = alloc_table(len, 16);
	uint8_t *p = (uint8_t *)(h + 1);
	struct madt_ioapic io = {
		/* KVM's IOAPIC powers up with id 0; say the same. */
		.type = 1, .length = sizeof(io), .ioapic_id = 0, .address = IOAPIC_GPA,
	};
	/* ISA IRQ 0 (the PIT) is on IOAPIC pin 2; the SCI is level-triggered, active high. */
	struct madt_override irq0 = { .type = 2, .length = sizeof(irq0), .source = 0, .gsi = 2 };
	struct madt_override sci = {
		.type = 2, .length = sizeof(sci), .source = IRQ_SCI, .gsi = IRQ_SCI, .flags = 0xd,
	};
	struct madt_lapic_nmi nmi = { .type = 4, .length = sizeof(nmi), .processor_id = 0xff,
				      .lint = 1 };
	uint32_t lapic = LAPIC_GPA, flags = 1;	/* PCAT_COMPAT: there are 8259s too */

	memcpy(p, &lapic, 4);
	memcpy(p + 4, &flags, 4);
	p += 8;
	for (int i = 0; i < ncpus; i++) {
		struct madt_lapic l = {
			.type = 0, .length = sizeof(l), .processor_id = i, .apic_id = i, .flags = 1,
		};

		memcpy(p, &l, sizeof(l));
		p += sizeof(l);
	}
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	memcpy(p, &irq0, sizeof(irq0));
	p += sizeof(irq0);
	memcpy(p, &sci, sizeof(sci));
	p += sizeof(sci);
	memcpy(p, &nmi, sizeof(nmi));
	finish_table(h, "APIC", len, 5);
	return h;
}

/**
 * acpi_build_tables() - write the ACPI tables at ACPI_TABLES_GPA
 * @v: the VM, with ncpus set
 *
 * The RSDP comes first, 16-byte aligned inside 0xe0000-0xfffff, where Linux
 * also finds it without the zero page's acpi_rsdp_addr.
 */
void acpi_build_tables(struct vmm *v)
{
	size_t xlen = sizeof(struct acpi_header) + 2 * 8;
	struct acpi_header *dsdt, *madt, *xsdt;
	struct acpi_rsdp *rsdp;
	struct acpi_fadt *fadt;
	uint64_t entries[2];

	next_gpa = ACPI_TABLES_GPA;
	rsdp = alloc_table(sizeof(*rsdp), 16);
	dsdt = build_dsdt();
	fadt = build_fadt(dsdt);
	madt = build_madt(v->ncpus);
	xsdt = alloc_table(xlen, 16);
	entries[0] = gpa_of(fadt);
	entries[1] = gpa_of(madt);

	memcpy(xsdt + 1, entries, sizeof(entries));
	finish_table(xsdt, "XSDT", xlen, 1);

	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, OEM_ID, 6);
	rsdp->revision = 2;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt = gpa_of(xsdt);
	rsdp->checksum = checksum(rsdp, 20);
	rsdp->ext_checksum = checksum(rsdp, sizeof(*rsdp));
}
