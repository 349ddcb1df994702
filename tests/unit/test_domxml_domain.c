/* domxml/domain: reading libvirt domain configs, and refusing bad ones
 * clearly (never a crash). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain.h"
#include "domxml/header.h"
#include "domxml/image_props.h"
#include "test_domxml_util.h"

static domxml_domain *parse_ok(const char *text)
{
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_msg(domxml_domain_parse(text, strlen(text), "test.xml", &d, &e) == 0, "%s",
                  err_text(&e));
    return d;
}

/* Parsing fails with a message containing want, naming the document. */
static void parse_fails(const char *text, const char *want)
{
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_msg(domxml_domain_parse(text, strlen(text), "test.xml", &d, &e) < 0,
                  "parsed but should fail with '%s'", want);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    ck_assert_str_eq(e.path, "test.xml");
}

/* What <source> and the older <disk><encryption> say about the image file
 * (image_props.h), and a vhostvdpa disk's device as its source. */
START_TEST(image_only_properties)
{
    domxml_domain *d = parse_ok(
        "<domain type='kvm'><name>p</name><devices>"
        "<disk type='file'><driver name='qemu' type='raw' cache='none'/>"
        "<source file='/i/a.luks'><encryption format='luks'><secret type='passphrase' "
        "uuid='0f6f4c1e-5a43-4c2e-9d39-7e0e8f2a5b11'/></encryption></source>"
        "<target dev='vda'/></disk>"
        "<disk type='file'><driver type='qcow2'/><source file='/i/b.qcow2'/>"
        "<encryption format='qcow'/><target dev='vdb'/></disk>"
        "<disk type='file'><driver type='raw'/><source file='/i/c.raw'><slices>"
        "<slice type='storage' offset='512' size='1024'/></slices></source>"
        "<target dev='vdc'/></disk>"
        "<disk type='file'><driver type='raw'/><source file='/i/d.raw' fdgroup='g'/>"
        "<target dev='vdd'/></disk>"
        "<disk type='file'><driver type='qcow2' discard='unmap'/><source file='/i/e.qcow2' "
        "startupPolicy='optional'><seclabel model='dac' relabel='no'/></source>"
        "<target dev='vde'/></disk>"
        "<disk type='vhostvdpa'><driver type='raw'/><source dev='/dev/vhost-vdpa-0'/>"
        "<target dev='vdf'/></disk>"
        "</devices></domain>");
    char what[128], why[512];
    ck_assert_str_eq(d->disks[0].encryption_format, "luks");
    ck_assert(domxml_disk_image_only(&d->disks[0], what, sizeof what, why, sizeof why));
    ck_assert_str_eq(what, "LUKS encryption (<encryption format='luks'>)");
    ck_assert_ptr_nonnull(strstr(why, "the guest would see the LUKS container"));
    ck_assert_str_eq(d->disks[1].encryption_format, "qcow");
    ck_assert(domxml_disk_image_only(&d->disks[1], what, sizeof what, why, sizeof why));
    ck_assert(d->disks[2].has_slices && !d->disks[2].encryption_format);
    ck_assert(domxml_disk_image_only(&d->disks[2], what, sizeof what, why, sizeof why));
    ck_assert_str_eq(what, "a storage slice (<source><slices>)");
    ck_assert(d->disks[3].has_fdgroup);
    ck_assert(domxml_disk_image_only(&d->disks[3], what, sizeof what, why, sizeof why));
    /* The disk's own policies stay with it: nothing image-only. */
    ck_assert(!domxml_disk_image_only(&d->disks[4], what, sizeof what, why, sizeof why));
    ck_assert(!domxml_disk_image_props_equal(&d->disks[0], &d->disks[4]));
    ck_assert(domxml_disk_image_props_equal(&d->disks[4], &d->disks[5]));
    ck_assert_str_eq(d->disks[5].source, "/dev/vhost-vdpa-0");
    domxml_domain_free(d);
}
END_TEST

START_TEST(parses_defined_domain)
{
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_msg(domxml_domain_load(fixture_path("libvirt-9.0/01-domain-defined.xml"), &d, &e) == 0,
                  "%s", err_text(&e));
    ck_assert_str_eq(d->name, "lvtest");
    ck_assert_str_eq(d->uuid, "ba0d9ea7-91f3-416e-a787-445c388b9128");
    ck_assert_str_eq(d->type, "qemu");
    ck_assert_uint_eq(d->ndisks, 5);
    static const char *targets[] = {"vda", "vdc", "vdd", "sda", "sdb"};
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(d->disks[i].target_dev, targets[i]);

    const domxml_disk *vda = domxml_domain_disk(d, "vda");
    ck_assert_int_eq(vda->device, DOMXML_DEVICE_DISK);
    ck_assert_int_eq(vda->type, DOMXML_STORAGE_FILE);
    ck_assert_str_eq(vda->driver_name, "qemu");
    ck_assert_str_eq(vda->driver_type, "qcow2");
    ck_assert_str_eq(vda->source, "/var/lib/libvirt/images/lvtest/vda.qcow2");
    ck_assert_str_eq(vda->target_bus, "virtio");
    ck_assert(!vda->readonly);
    ck_assert_int_eq(vda->snapshot, DOMXML_SNAPSHOT_DEFAULT);
    ck_assert(!vda->has_backing_store);

    const domxml_disk *vdd = domxml_domain_disk(d, "vdd");
    ck_assert_int_eq(vdd->type, DOMXML_STORAGE_BLOCK);
    ck_assert_str_eq(vdd->source, "/dev/loop0");
    ck_assert_str_eq(vdd->driver_type, "raw");

    const domxml_disk *sda = domxml_domain_disk(d, "sda");
    ck_assert_int_eq(sda->device, DOMXML_DEVICE_CDROM);
    ck_assert(sda->readonly);
    ck_assert_str_eq(sda->target_bus, "sata");
    ck_assert_ptr_null(domxml_domain_disk(d, "vdz"));

    /* the exact bytes are kept */
    size_t len;
    char *text = read_fixture("libvirt-9.0/01-domain-defined.xml", &len);
    ck_assert_uint_eq(d->len, len);
    ck_assert_mem_eq(d->text, text, len);
    free(text);
    domxml_domain_free(d);
}
END_TEST

START_TEST(parses_every_domain_fixture)
{
    static const char *files[] = {
        "00-define-input.xml", "01-domain-defined.xml", "02-domain-after-s1.xml",
        "03-domain-after-s2.xml", "04-domain-after-s3.xml", "05-domain-after-s4-nometadata.xml",
        "06-handmade-domain.xml", "07-domain-after-9.0-delete-s5.xml",
        "08-domain-after-9.0-delete-s6.xml", "08-domain-after-s6.xml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char name[256];
        snprintf(name, sizeof name, "libvirt-9.0/%s", files[i]);
        es_err e = {0};
        domxml_domain *d = NULL;
        ck_assert_msg(domxml_domain_load(fixture_path(name), &d, &e) == 0, "%s", err_text(&e));
        ck_assert_uint_eq(d->ndisks, 5);
        domxml_domain_free(d);
    }
}
END_TEST

START_TEST(root_only_drops_the_comment)
{
    es_err e = {0};
    domxml_domain *d = NULL, *r = NULL;
    ck_assert_int_eq(domxml_domain_load(fixture_path("libvirt-9.0/01-domain-defined.xml"), &d, &e), 0);
    ck_assert_int_eq(domxml_domain_root_only(d, &r, &e), 0);
    ck_assert(strncmp(r->text, "<domain type='qemu'>\n", 21) == 0);
    ck_assert(r->text[r->len - 1] == '>');
    size_t off, len;
    domxml_domain_root_span(d, &off, &len);
    ck_assert_uint_eq(len, r->len);
    ck_assert_mem_eq(d->text + off, r->text, len);
    domxml_domain_free(d);
    domxml_domain_free(r);
}
END_TEST

START_TEST(optional_parts)
{
    domxml_domain *d = parse_ok(
        "<domain type=\"kvm\"><name>x</name>\n"
        "<devices>\n"
        " <disk device=\"cdrom\"><target dev=\"hdc\"/><readonly/></disk>\n"
        " <disk type=\"network\"><driver type=\"raw\"/><source protocol=\"nbd\" name=\"exp\"/>"
        "<target dev=\"vdb\"/></disk>\n"
        " <disk snapshot=\"no\"><source file=\"/a\"/><backingStore/><shareable/><target dev=\"vdc\"/></disk>\n"
        "</devices></domain>");
    ck_assert_ptr_null(d->uuid);
    ck_assert_uint_eq(d->ndisks, 3);
    ck_assert_int_eq(d->disks[0].type, DOMXML_STORAGE_FILE); /* default */
    ck_assert_ptr_null(d->disks[0].source);                  /* empty drive */
    ck_assert_ptr_null(d->disks[0].driver_type);
    ck_assert_ptr_null(d->disks[0].target_bus);
    ck_assert_str_eq(d->disks[1].source, "exp");
    ck_assert_str_eq(d->disks[1].source_protocol, "nbd");
    ck_assert_int_eq(d->disks[2].snapshot, DOMXML_SNAPSHOT_NO);
    ck_assert(d->disks[2].has_backing_store);
    ck_assert(d->disks[2].shareable);
    domxml_domain_free(d);
}
END_TEST

START_TEST(utf8_bom_and_declaration)
{
    domxml_domain *d = parse_ok("\xEF\xBB\xBF<?xml version='1.0' encoding='UTF-8'?>\n"
                                "<domain type='qemu'><name>b\xC3\xA9</name></domain>\n");
    ck_assert_str_eq(d->name, "b\xC3\xA9");
    domxml_domain_free(d);
}
END_TEST

START_TEST(malformed_is_an_error)
{
    parse_fails("", "no root element");
    parse_fails("<domain type='qemu'><name>x</name>", "never closed");
    parse_fails("<domain type='qemu'><name>x</nam></domain>", "does not match");
    parse_fails("<domain type='qemu'><name>x</name></domain><domain/>", "more than one root");
    parse_fails("<domain type='qemu' a='1' a='2'><name>x</name></domain>", "malformed XML");
    parse_fails("<domain type='qemu'><name>x &bogus;</name></domain>", "malformed XML");
    parse_fails("<domain type=qemu><name>x</name></domain>", "quoted");
    parse_fails("junk<domain/>", "outside the root");
    parse_fails("<domain type='qemu'><name>\xff\xfe</name></domain>", "malformed XML");
}
END_TEST

/* libxml2 puts the bytes of an encoding error on a second line: the message
 * stays one line (t_malformed_xml.sh: cfg-latin1-bytes). */
START_TEST(encoding_error_is_one_line)
{
    es_err e = {0};
    domxml_domain *d = NULL;
    const char *text = "<domain type='qemu'><name>x</name>\n<description>caf\xe9</description></domain>";
    ck_assert_int_lt(domxml_domain_parse(text, strlen(text), "test.xml", &d, &e), 0);
    ck_assert_msg(strstr(e.msg, "not proper UTF-8") != NULL, "%s", e.msg);
    ck_assert_msg(strchr(e.msg, '\n') == NULL, "two lines: %s", e.msg);
}
END_TEST

START_TEST(second_name_refused)
{
    parse_fails("<domain type='qemu'><name>a</name>\n<name>b</name></domain>",
                "line 2: a second <name> element ('a' is the first)");
}
END_TEST

/* libxml2 goes on after a namespace error with the names as written, which
 * the scan reads otherwise: refused as libvirt does (fuzz finding
 * finding-60c29fd2..., "internal error: XML scan disagrees" before). */
START_TEST(namespace_errors_refused)
{
    parse_fails("<domain type='qemu'><name>a</name>\n<devices><disk xmlns:-x='urn:x'/></devices>"
                "</domain>",
                "malformed XML at line 2: Failed to parse QName 'xmlns:'");
    parse_fails("<domain type='qemu'><name>a</name><metadata>\n<my:app/></metadata></domain>",
                "malformed XML at line 2: Namespace prefix my on app is not defined");
    parse_fails("<domain type='qemu'><name>a</name><metadata><my:app xmlns:my='urn:x' "
                "my:a='1' my:a='2'/></metadata></domain>",
                "malformed XML at line 1: ");
}
END_TEST

START_TEST(dtd_and_entities_refused)
{
    parse_fails("<!DOCTYPE domain [<!ENTITY a 'aaaa'>]><domain type='qemu'><name>&a;</name></domain>",
                "document type");
    parse_fails("<!DOCTYPE domain SYSTEM 'http://example.invalid/x.dtd'><domain/>",
                "document type");
}
END_TEST

START_TEST(other_encodings_refused)
{
    parse_fails("<?xml version='1.0' encoding='ISO-8859-1'?><domain type='qemu'><name>x</name></domain>",
                "encoding");
}
END_TEST

START_TEST(wrong_root)
{
    size_t len;
    char *text = read_fixture("libvirt-9.0/02-snapshot-s1.xml", &len);
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_int_lt(domxml_domain_parse(text, len, "s1.xml", &d, &e), 0);
    ck_assert_str_eq(e.msg, "root element is <domainsnapshot>, expected <domain>");
    free(text);
}
END_TEST

START_TEST(missing_elements)
{
    parse_fails("<domain><name>x</name></domain>", "missing domain type attribute");
    parse_fails("<domain type='qemu'></domain>", "missing domain name");
    parse_fails("<domain type='qemu'><name></name></domain>", "missing domain name");
    parse_fails("<domain type='qemu'><name>a/b</name></domain>", "can't contain '/'");
    parse_fails("<domain type='qemu'><name>x</name><uuid>nope</uuid></domain>", "malformed uuid");
    parse_fails("<domain type='qemu'><name>x</name><devices><disk><source file='/a'/></disk>"
                "</devices></domain>",
                "no <target dev");
}
END_TEST

START_TEST(bad_enums_and_duplicates)
{
    parse_fails("<domain type='qemu'><name>x</name><devices>\n<disk device='cdromx'>"
                "<target dev='a'/></disk></devices></domain>",
                "line 2: invalid value for attribute 'device' in element 'disk': 'cdromx'");
    parse_fails("<domain type='qemu'><name>x</name><devices><disk type='bogus'>"
                "<target dev='a'/></disk></devices></domain>",
                "attribute 'type'");
    parse_fails("<domain type='qemu'><name>x</name><devices><disk type='none'>"
                "<target dev='a'/></disk></devices></domain>",
                "attribute 'type'");
    parse_fails("<domain type='qemu'><name>x</name><devices><disk snapshot='default'>"
                "<target dev='a'/></disk></devices></domain>",
                "attribute 'snapshot'");
    parse_fails("<domain type='qemu'><name>x</name><devices><disk><driver type='qcow3'/>"
                "<target dev='a'/></disk></devices></domain>",
                "unknown driver format value 'qcow3'");
    parse_fails("<domain type='qemu'><name>x</name><devices>\n<disk><target dev='a'/></disk>\n"
                "<disk><target dev='a'/></disk></devices></domain>",
                "target 'a' duplicated");
}
END_TEST

/* Every prefix of a real file is either parsed or refused cleanly. */
START_TEST(truncations_never_crash)
{
    size_t len;
    char *text = read_fixture("libvirt-9.0/01-domain-defined.xml", &len);
    for (size_t n = 0; n < len; n += 7) {
        es_err e = {0};
        domxml_domain *d = NULL;
        int rc = domxml_domain_parse(text, n, "cut.xml", &d, &e);
        if (rc == 0)
            domxml_domain_free(d);
        else
            ck_assert(e.msg[0] != '\0');
    }
    free(text);
}
END_TEST

/* A value read from a text with one byte changed (to c): the original's,
 * the original's with one byte replaced by c, or absent (a '<' that became
 * text took its element along). */
static void same_but_one_byte(const char *what, size_t at, const char *orig, const char *got, char c)
{
    if (!got)
        return;
    if (!orig) {
        ck_assert_msg(orig == got, "mutation at %zu: %s %s, was %s", at, what, got ? got : "absent",
                      orig ? orig : "absent");
        return;
    }
    if (strcmp(orig, got) == 0)
        return;
    size_t n = strlen(orig), diff = 0;
    ck_assert_msg(strlen(got) == n, "mutation at %zu: %s '%s', was '%s'", at, what, got, orig);
    for (size_t k = 0; k < n; k++)
        if (orig[k] != got[k]) {
            /* (XML reads a newline in an attribute value as a space) */
            ck_assert_msg(got[k] == c || (c == '\n' && got[k] == ' '), "mutation at %zu: %s '%s', was '%s'", at, what, got, orig);
            diff++;
        }
    ck_assert_msg(diff == 1, "mutation at %zu: %s '%s', was '%s'", at, what, got, orig);
}

/* Flipping single bytes to markup characters: each mutated text is either
 * refused with a message naming it, or parsed into what the original gives
 * except for that one byte; never a crash. */
START_TEST(mutations_never_crash)
{
    size_t len;
    char *text = read_fixture("libvirt-9.0/01-domain-defined.xml", &len);
    es_err e = {0};
    domxml_domain *o = NULL;
    ck_assert_int_eq(domxml_domain_parse(text, len, "orig.xml", &o, &e), 0);
    static const char subst[] = "<>&'\"/=! \n";
    size_t refused = 0, parsed = 0;
    for (size_t i = 0; i < len; i += 3) {
        char saved = text[i], c = subst[i % (sizeof subst - 1)];
        text[i] = c;
        es_err_clear(&e);
        domxml_domain *d = NULL;
        if (domxml_domain_parse(text, len, "mut.xml", &d, &e) < 0) {
            ck_assert_ptr_null(d);
            ck_assert_msg(e.msg[0] != '\0', "mutation at %zu: refused without a message", i);
            ck_assert_msg(strcmp(e.path, "mut.xml") == 0, "mutation at %zu: error names '%s'", i,
                          e.path);
            refused++;
        } else if (saved != c) {
            ck_assert_ptr_nonnull(d);
            ck_assert_uint_eq(d->len, len);
            ck_assert_msg(memcmp(d->text, text, len) == 0, "mutation at %zu: text not kept", i);
            same_but_one_byte("name", i, o->name, d->name, c);
            same_but_one_byte("uuid", i, o->uuid, d->uuid, c);
            same_but_one_byte("type", i, o->type, d->type, c);
            ck_assert_msg(d->ndisks == o->ndisks, "mutation at %zu: %zu disks, was %zu", i, d->ndisks,
                          o->ndisks);
            for (size_t k = 0; k < d->ndisks; k++) {
                same_but_one_byte("disk target", i, o->disks[k].target_dev, d->disks[k].target_dev, c);
                same_but_one_byte("disk source", i, o->disks[k].source, d->disks[k].source, c);
                same_but_one_byte("disk format", i, o->disks[k].driver_type, d->disks[k].driver_type,
                                  c);
                ck_assert_ptr_eq(domxml_domain_disk(d, d->disks[k].target_dev), &d->disks[k]);
            }
            parsed++;
        }
        domxml_domain_free(d);
        text[i] = saved;
    }
    /* Markup characters break most places of a document. */
    ck_assert_msg(refused > parsed, "%zu mutations refused, %zu parsed", refused, parsed);
    domxml_domain_free(o);
    free(text);
}
END_TEST

START_TEST(deep_nesting_refused)
{
    size_t depth = 100000;
    char *text = malloc(depth * 7 + 64);
    ck_assert_ptr_nonnull(text);
    char *p = text + sprintf(text, "<domain type='qemu'>");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "<a>");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "</a>");
    sprintf(p, "</domain>");
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_int_lt(domxml_domain_parse(text, strlen(text), "deep.xml", &d, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "malformed XML"));
    free(text);
}
END_TEST

/* libvirt's comment block, as at the top of its domain config. */
START_TEST(libvirt_header_for_configs)
{
    es_err e = {0};
    char *header = NULL;
    ck_assert_int_eq(domxml_libvirt_header("edit", "lvtest", &header, &e), 0);
    char *text = read_fixture("libvirt-9.0/01-domain-defined.xml", NULL);
    ck_assert(strncmp(text, header, strlen(header)) == 0);
    ck_assert(strncmp(text + strlen(header), "<domain ", 8) == 0);
    free(header);
    free(text);
}
END_TEST

START_TEST(missing_file)
{
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_int_lt(domxml_domain_load("/nonexistent/x.xml", &d, &e), 0);
    ck_assert_str_eq(e.path, "/nonexistent/x.xml");
    ck_assert_int_ne(e.errnum, 0);
}
END_TEST

static Suite *domain_suite(void)
{
    Suite *s = suite_create("domxml_domain");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, parses_defined_domain);
    tcase_add_test(tc, parses_every_domain_fixture);
    tcase_add_test(tc, root_only_drops_the_comment);
    tcase_add_test(tc, optional_parts);
    tcase_add_test(tc, utf8_bom_and_declaration);
    tcase_add_test(tc, malformed_is_an_error);
    tcase_add_test(tc, encoding_error_is_one_line);
    tcase_add_test(tc, second_name_refused);
    tcase_add_test(tc, namespace_errors_refused);
    tcase_add_test(tc, dtd_and_entities_refused);
    tcase_add_test(tc, other_encodings_refused);
    tcase_add_test(tc, wrong_root);
    tcase_add_test(tc, missing_elements);
    tcase_add_test(tc, bad_enums_and_duplicates);
    tcase_add_test(tc, truncations_never_crash);
    tcase_add_test(tc, mutations_never_crash);
    tcase_add_test(tc, deep_nesting_refused);
    tcase_add_test(tc, libvirt_header_for_configs);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, image_only_properties);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(domain_suite)
