/* domxml/snapshot: parse and format are a pair that gives libvirt's files
 * back byte for byte, writes new ones exactly as libvirt would, and carries
 * what newer libvirt adds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain.h"
#include "domxml/snapshot.h"
#include "domxml/text.h"
#include "test_domxml_util.h"

static const char *const snapshot_fixtures[] = {
    "libvirt-9.0/02-snapshot-s1.xml",
    "libvirt-9.0/03-snapshot-s1-after-s2.xml",
    "libvirt-9.0/03-snapshot-s2.xml",
    "libvirt-9.0/04-snapshot-s2-after-s3.xml",
    "libvirt-9.0/04-snapshot-s3.xml",
    "libvirt-9.0/06-handmade-snapshot-s3-active0.xml",
    "libvirt-9.0/06-handmade-snapshot-s5.xml",
    "libvirt-9.0/08-snapshot-s6.xml",
    "newer/snapshot-s2-newer.xml",
};
#define NFIXTURES (sizeof snapshot_fixtures / sizeof snapshot_fixtures[0])

static domxml_snapshot *parse_text(const char *text, size_t len)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_msg(domxml_snapshot_parse(text, len, "snap.xml", &s, &e) == 0, "%s", err_text(&e));
    return s;
}

static domxml_snapshot *load(const char *fixture)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_msg(domxml_snapshot_load(fixture_path(fixture), &s, &e) == 0, "%s", err_text(&e));
    return s;
}

static char *format(const domxml_snapshot *s, size_t *len)
{
    es_err e = {0};
    char *out = NULL;
    ck_assert_msg(domxml_snapshot_format(s, &out, len, &e) == 0, "%s", err_text(&e));
    return out;
}

static void assert_formats_to(const domxml_snapshot *s, const char *fixture)
{
    size_t want_len, got_len;
    char *want = read_fixture(fixture, &want_len);
    char *got = format(s, &got_len);
    ck_assert_msg(got_len == want_len && memcmp(got, want, want_len) == 0,
                  "formatted text differs from %s:\n%s", fixture, got);
    free(want);
    free(got);
}

static void parse_fails(const char *text, const char *want)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_msg(domxml_snapshot_parse(text, strlen(text), "bad.xml", &s, &e) < 0,
                  "parsed, but should fail with '%s'", want);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
    ck_assert_str_eq(e.path, "bad.xml");
}

START_TEST(round_trip_every_fixture)
{
    const char *name = snapshot_fixtures[_i];
    domxml_snapshot *s = load(name);
    assert_formats_to(s, name);
    domxml_snapshot_free(s);
}
END_TEST

/* With the kept disk texts dropped, the formatter alone must still produce
 * libvirt's bytes: this is how new files are written. */
START_TEST(generated_form_matches_every_fixture)
{
    const char *name = snapshot_fixtures[_i];
    domxml_snapshot *s = load(name);
    for (size_t i = 0; i < s->ndisks; i++) {
        free(s->disks[i].orig_text);
        s->disks[i].orig_text = NULL;
    }
    for (size_t i = 0; i < s->nrevert_disks; i++) {
        free(s->revert_disks[i].orig_text);
        s->revert_disks[i].orig_text = NULL;
    }
    assert_formats_to(s, name);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(fields_of_s2)
{
    domxml_snapshot *s = load("libvirt-9.0/03-snapshot-s2.xml");
    ck_assert_str_eq(s->name, "s2");
    ck_assert_str_eq(s->description, "second snap");
    ck_assert_str_eq(s->state, "shutoff");
    ck_assert_str_eq(s->parent, "s1");
    ck_assert_int_eq(s->creation_time, 1795311975LL);
    ck_assert_int_eq(s->memory, DOMXML_SNAPSHOT_NO);
    ck_assert_ptr_null(s->memory_file);
    ck_assert(s->current);
    ck_assert_uint_eq(s->ndisks, 5);
    ck_assert_uint_eq(s->nrevert_disks, 0);
    const domxml_snap_disk *vda = &s->disks[0];
    ck_assert_str_eq(vda->name, "vda");
    ck_assert_int_eq(vda->snapshot, DOMXML_SNAPSHOT_EXTERNAL);
    ck_assert_int_eq(vda->type, DOMXML_STORAGE_FILE);
    ck_assert_str_eq(vda->driver_type, "qcow2");
    ck_assert_str_eq(vda->source, "/var/lib/libvirt/images/lvtest/vda.s2");
    ck_assert(!vda->delete_in_progress);
    const domxml_snap_disk *sda = domxml_snap_disk_find(s->disks, s->ndisks, "sda");
    ck_assert_int_eq(sda->snapshot, DOMXML_SNAPSHOT_NO);
    ck_assert_ptr_null(sda->source);
    ck_assert_ptr_null(sda->driver_type);

    /* the saved config: before s2, so the s1 overlays */
    ck_assert_ptr_nonnull(s->domain);
    ck_assert_str_eq(s->domain->name, "lvtest");
    ck_assert_str_eq(domxml_domain_disk(s->domain, "vda")->source,
                     "/var/lib/libvirt/images/lvtest/vda.s1");
    ck_assert_str_eq(domxml_domain_disk(s->domain, "vdd")->source,
                     "/var/lib/libvirt/images/lvtest/vdd-s1.qcow2");
    /* ...indented as a standalone file */
    ck_assert(strncmp(s->domain->text, "<domain type='qemu'>\n  <name>lvtest</name>\n", 43) == 0);
    ck_assert(strcmp(s->domain->text + s->domain->len - 10, "\n</domain>") == 0);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(embedded_domain_validates)
{
    domxml_snapshot *s = load("libvirt-9.0/02-snapshot-s1.xml");
    char path[4200];
    snprintf(path, sizeof path, "%s/dom.xml", scratch_dir("embedded"));
    write_all(path, s->domain->text, 0600);
    assert_validates(path, "domain");
    domxml_snapshot_free(s);
}
END_TEST

/* libvirt rewrote s1.xml with <active>0</active> when s2 became current. */
START_TEST(clearing_current_gives_libvirts_rewrite)
{
    domxml_snapshot *s = load("libvirt-9.0/02-snapshot-s1.xml");
    s->current = false;
    assert_formats_to(s, "libvirt-9.0/03-snapshot-s1-after-s2.xml");
    domxml_snapshot_free(s);
    s = load("libvirt-9.0/04-snapshot-s3.xml");
    s->current = false;
    assert_formats_to(s, "libvirt-9.0/06-handmade-snapshot-s3-active0.xml");
    domxml_snapshot_free(s);
}
END_TEST

/* A snapshot built field by field formats exactly like libvirt's file. */
START_TEST(built_from_scratch_matches_libvirt)
{
    domxml_snapshot *ref = load("libvirt-9.0/03-snapshot-s2.xml");
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_int_eq(domxml_snapshot_new("s2", &s, &e), 0);
    ck_assert_int_eq(domxml_set_string(&s->description, "second snap", &e), 0);
    ck_assert_int_eq(domxml_set_string(&s->parent, "s1", &e), 0);
    s->creation_time = 1795311975LL;
    s->current = true;
    for (size_t i = 0; i < ref->ndisks; i++) {
        domxml_snap_disk d = {
            .name = ref->disks[i].name,
            .snapshot = ref->disks[i].snapshot,
            .type = ref->disks[i].type,
            .driver_type = ref->disks[i].driver_type,
            .source = ref->disks[i].source,
        };
        ck_assert_int_eq(domxml_snap_disk_append(&s->disks, &s->ndisks, &d, &e), 0);
    }
    ck_assert_int_eq(domxml_snapshot_set_domain(s, ref->domain, &e), 0);
    assert_formats_to(s, "libvirt-9.0/03-snapshot-s2.xml");

    char path[4200];
    snprintf(path, sizeof path, "%s/s2.xml", scratch_dir("scratch"));
    size_t len;
    char *text = format(s, &len);
    write_all(path, text, 0600);
    assert_validates(path, "domainsnapshot");
    free(text);
    domxml_snapshot_free(s);
    domxml_snapshot_free(ref);
}
END_TEST

/* The comment block of a new file is libvirt's, as in the fixtures. */
START_TEST(new_file_header)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_int_eq(domxml_snapshot_new("x", &s, &e), 0);
    ck_assert_int_ge(s->creation_time, 1700000000LL); /* now */
    s->creation_time = 1795311964LL;
    size_t len, flen;
    char *text = format(s, &len);
    char *fixture = read_fixture("libvirt-9.0/02-snapshot-s1.xml", &flen);
    size_t hlen = 0;
    while (hlen < flen && strncmp(fixture + hlen, "<domainsnapshot>", 16) != 0)
        hlen++;
    ck_assert_uint_lt(hlen, flen);
    ck_assert_mem_eq(text, fixture, hlen);
    ck_assert(strcmp(text + hlen,
                     "<domainsnapshot>\n  <name>x</name>\n  <state>shutoff</state>\n"
                     "  <creationTime>1795311964</creationTime>\n"
                     "  <memory snapshot='no'/>\n  <active>0</active>\n</domainsnapshot>\n") == 0);
    free(text);
    free(fixture);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(newer_elements)
{
    domxml_snapshot *s = load("newer/snapshot-s2-newer.xml");
    ck_assert_uint_eq(s->nrevert_disks, 5);
    ck_assert_str_eq(s->revert_disks[0].source, "/var/lib/libvirt/images/lvtest/vda.1795400000");
    ck_assert(s->disks[1].delete_in_progress);
    ck_assert(!s->disks[0].delete_in_progress);

    /* Changing one disk rewrites it alone; the marker and everything not
     * interpreted stay where they were. */
    free(s->disks[1].source);
    s->disks[1].source = strdup("/var/lib/libvirt/images/lvtest/vdc.new");
    s->disks[1].delete_in_progress = false;
    domxml_snap_disks_clear(&s->revert_disks, &s->nrevert_disks);
    size_t len;
    char *got = format(s, &len);
    ck_assert_ptr_nonnull(strstr(got, "    <disk name='vdc' snapshot='external' type='file'>\n"
                                      "      <driver type='qcow2'/>\n"
                                      "      <source file='/var/lib/libvirt/images/lvtest/vdc.new'/>\n"
                                      "    </disk>\n"));
    ck_assert_ptr_null(strstr(got, "snapshotDeleteInProgress"));
    ck_assert_ptr_null(strstr(got, "revertDisks"));
    const char *dom = strstr(got, "  </domain>\n  <inactiveDomain type='qemu'>");
    const char *cookie = strstr(got, "  </inactiveDomain>\n  <cookie>\n");
    const char *active = strstr(got, "  </cookie>\n  <active>1</active>\n</domainsnapshot>\n");
    ck_assert(dom && cookie && active && dom < cookie && cookie < active);

    /* and the result reads back to the same thing */
    domxml_snapshot *again = parse_text(got, len);
    size_t len2;
    char *got2 = format(again, &len2);
    ck_assert_str_eq(got, got2);
    free(got);
    free(got2);
    domxml_snapshot_free(again);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(unknown_and_comments_kept_in_place)
{
    const char *text = "<domainsnapshot>\n"
                       "  <!-- kept -->\n"
                       "  <name>a</name>\n"
                       "  <future attr='1'>\n    <x/>\n  </future>\n"
                       "  <state>disk-snapshot</state>\n"
                       "  <creationTime>5</creationTime>\n"
                       "  <domain>\n    <uuid>ba0d9ea7-91f3-416e-a787-445c388b9128</uuid>\n  </domain>\n"
                       "  <active>0</active>\n"
                       "  <trailer/>\n"
                       "</domainsnapshot>";
    domxml_snapshot *s = parse_text(text, strlen(text));
    ck_assert_ptr_null(s->domain); /* a <domain> without type= is from old libvirt */
    ck_assert_int_eq(s->memory, DOMXML_SNAPSHOT_DEFAULT);
    size_t len;
    char *got = format(s, &len);
    ck_assert_str_eq(got, text);
    free(got);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(memory_defaults_as_libvirt)
{
    const char *base = "<domainsnapshot><name>a</name><state>%s</state><creationTime>1</creationTime>"
                       "<memory%s/><active>1</active></domainsnapshot>";
    char text[512];
    snprintf(text, sizeof text, base, "shutoff", "");
    domxml_snapshot *s = parse_text(text, strlen(text));
    ck_assert_int_eq(s->memory, DOMXML_SNAPSHOT_NO);
    domxml_snapshot_free(s);
    snprintf(text, sizeof text, base, "running", "");
    s = parse_text(text, strlen(text));
    ck_assert_int_eq(s->memory, DOMXML_SNAPSHOT_INTERNAL);
    domxml_snapshot_free(s);
    snprintf(text, sizeof text, base, "running", " file='/m.save'");
    s = parse_text(text, strlen(text));
    ck_assert_int_eq(s->memory, DOMXML_SNAPSHOT_EXTERNAL);
    ck_assert_str_eq(s->memory_file, "/m.save");
    domxml_snapshot_free(s);
    snprintf(text, sizeof text, base, "shutoff", " snapshot='internal'");
    parse_fails(text, "memory state cannot be saved with offline");
    snprintf(text, sizeof text, base, "running", " snapshot='manual'");
    parse_fails(text, "'manual' memory snapshot mode not supported");
    snprintf(text, sizeof text, base, "running", " file='rel'");
    parse_fails(text, "must be absolute");
}
END_TEST

#define HEAD "<domainsnapshot><name>a</name><state>shutoff</state><creationTime>1</creationTime>"
#define TAIL "<active>1</active></domainsnapshot>"

START_TEST(refused_like_libvirt)
{
    parse_fails("", "no root element");
    parse_fails("<domainsnapshot><name>a</name>", "never closed");
    parse_fails("<domain type='qemu'><name>a</name></domain>",
                "root element is <domain>, expected <domainsnapshot>");
    parse_fails("<domainsnapshot><state>shutoff</state><creationTime>1</creationTime>" TAIL,
                "a redefined snapshot must have a name");
    parse_fails("<domainsnapshot><name></name><state>shutoff</state><creationTime>1</creationTime>" TAIL,
                "must have a name");
    parse_fails("<domainsnapshot><name>a</name><state>shutoff</state>" TAIL,
                "missing creationTime");
    parse_fails("<domainsnapshot><name>a</name><state>shutoff</state><creationTime>12x</creationTime>" TAIL,
                "creationTime '12x' is not an integer");
    parse_fails("<domainsnapshot><name>a</name><creationTime>1</creationTime>" TAIL,
                "missing state");
    parse_fails("<domainsnapshot><name>a</name><state>weird</state><creationTime>1</creationTime>" TAIL,
                "Invalid state 'weird'");
    parse_fails("<domainsnapshot><name>a</name><state>nostate</state><creationTime>1</creationTime>" TAIL,
                "Invalid state");
    parse_fails(HEAD "</domainsnapshot>", "Could not find 'active' element");
    parse_fails(HEAD "<active>yes</active></domainsnapshot>", "<active> 'yes' is not an integer");
    parse_fails(HEAD "<disks><disk name='vda' snapshot='external'><source file='rel/x'/></disk></disks>" TAIL,
                "disk snapshot image path 'rel/x' must be absolute");
    parse_fails(HEAD "<disks><disk snapshot='no'/></disks>" TAIL, "missing name");
    parse_fails(HEAD "<disks><disk name='vda' type='dir'/></disks>" TAIL,
                "unsupported disk snapshot type 'dir'");
    parse_fails(HEAD "<disks><disk name='vda' type='bogus'/></disks>" TAIL, "invalid disk type");
    parse_fails(HEAD "<disks><disk name='vda' snapshot='sideways'/></disks>" TAIL,
                "invalid disk snapshot mode");
    parse_fails(HEAD "<disks><disk name='vda'><driver type='qcow9'/></disk></disks>" TAIL,
                "unknown disk snapshot driver 'qcow9'");
    parse_fails(HEAD "<domain type='qemu'><name>x</name><devices><disk type='bogus'>"
                "<target dev='vda'/></disk></devices></domain>" TAIL,
                "in the saved <domain>: line 1: invalid value");
    parse_fails(HEAD "<domain type='qemu'></domain>" TAIL, "missing domain name");
}
END_TEST

/* libvirt reads the first of two and the schema forbids the second: a
 * second one carried along became the first after a round trip (fuzz
 * finding: an empty first <disks>, dropped when formatted, let a second one
 * take its place). */
START_TEST(second_of_an_element_refused)
{
    parse_fails("<domainsnapshot><name>s</name><state>shutoff</state><disks>s</disks>"
                "<creationTime>4</creationTime><disks> </disks><active>1</active></domainsnapshot>",
                "line 1: a second <disks> element");
    parse_fails(HEAD "<name>b</name>" TAIL, "a second <name> element");
    parse_fails(HEAD "<active>1</active>" TAIL, "a second <active> element");
    parse_fails(HEAD "<description>x</description><description>y</description>" TAIL,
                "a second <description> element");
}
END_TEST

START_TEST(disk_defaults)
{
    const char *text = HEAD "<disks><disk name='vda'><source file='/a'/></disk>"
                            "<disk name='vdb'/><disk name='vdc' type='block'>"
                            "<source dev='/dev/x'/></disk></disks>" TAIL;
    domxml_snapshot *s = parse_text(text, strlen(text));
    ck_assert_int_eq(s->disks[0].snapshot, DOMXML_SNAPSHOT_EXTERNAL); /* implied by source */
    ck_assert_int_eq(s->disks[1].snapshot, DOMXML_SNAPSHOT_DEFAULT);
    ck_assert_int_eq(s->disks[2].type, DOMXML_STORAGE_BLOCK);
    ck_assert_str_eq(s->disks[2].source, "/dev/x");
    /* untouched disks keep their text (an implied snapshot='external' is no
     * change); a changed one is written libvirt's way */
    s->disks[0].snapshot = DOMXML_SNAPSHOT_EXTERNAL;
    ck_assert_int_eq(domxml_set_string(&s->disks[2].source, "/dev/y", NULL), 0);
    size_t len;
    char *got = format(s, &len);
    ck_assert_ptr_nonnull(strstr(got, "    <disk name='vda'><source file='/a'/></disk>\n"
                                      "    <disk name='vdb'/>\n"
                                      "    <disk name='vdc' snapshot='external' type='block'>\n"
                                      "      <source dev='/dev/y'/>\n"
                                      "    </disk>\n"));
    free(got);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(escaping)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_int_eq(domxml_snapshot_new("a&b", &s, &e), 0);
    ck_assert_int_eq(domxml_set_string(&s->description, "<it's \"quoted\">\n2nd line", &e), 0);
    size_t len;
    char *got = format(s, &len);
    ck_assert_ptr_nonnull(strstr(got, "<name>a&amp;b</name>"));
    ck_assert_ptr_nonnull(strstr(got,
                                 "<description>&lt;it&apos;s &quot;quoted&quot;&gt;\n2nd line</description>"));
    domxml_snapshot *back = parse_text(got, len);
    ck_assert_str_eq(back->name, "a&b");
    ck_assert_str_eq(back->description, "<it's \"quoted\">\n2nd line");
    free(got);
    domxml_snapshot_free(back);
    domxml_snapshot_free(s);
}
END_TEST

/* What a description may hold: what reads back as written. */
START_TEST(text_check)
{
    static const char *const good[] = {
        "", "plain", "tab\tand\nnewline", "\xc3\xa9t\xc3\xa9 \xe9\x9b\xaa \xf0\x9f\x98\x80",
        "<&>'\"", "\xef\xbf\xbd", NULL};
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"bell\a", "U+0007 at byte 4"},
        {"a\r\nb", "U+000D"},
        {"\x1b[1m", "U+001B"},
        {"del\x7f", "U+007F"},
        {"c1 \xc2\x85", "U+0085"},
        {"caf\xe9", "not valid UTF-8"},
        {"\xc0\xaf", "not valid UTF-8"},   /* overlong '/' */
        {"\xed\xa0\x80", "UTF-8"},        /* a surrogate */
        {"x\xef\xbf\xbe", "XML cannot carry"}, /* U+FFFE */
    };
    es_err e = {0};
    for (size_t i = 0; good[i]; i++)
        ck_assert_msg(domxml_check_text(good[i], "the description", &e) == 0, "'%s': %s",
                      good[i], e.msg);
    ck_assert_int_eq(domxml_check_text(NULL, "the description", &e), 0);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&e, 0, sizeof e);
        ck_assert_msg(domxml_check_text(bad[i].text, "the description", &e) < 0, "case %zu", i);
        ck_assert_msg(strstr(e.msg, bad[i].want) && strstr(e.msg, "the description"),
                      "case %zu: '%s' lacks '%s'", i, e.msg, bad[i].want);
    }
}
END_TEST

START_TEST(format_needs_a_name)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_int_eq(domxml_snapshot_new("x", &s, &e), 0);
    free(s->name);
    s->name = NULL;
    char *out = NULL;
    size_t len;
    ck_assert_int_lt(domxml_snapshot_format(s, &out, &len, &e), 0);
    ck_assert_ptr_null(out);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(truncations_never_crash)
{
    size_t len;
    char *text = read_fixture("newer/snapshot-s2-newer.xml", &len);
    for (size_t n = 0; n < len; n += 5) {
        es_err e = {0};
        domxml_snapshot *s = NULL;
        if (domxml_snapshot_parse(text, n, "cut.xml", &s, &e) == 0)
            domxml_snapshot_free(s);
        else
            ck_assert(e.msg[0] != '\0');
    }
    free(text);
}
END_TEST

static Suite *snapshot_suite(void)
{
    Suite *s = suite_create("domxml_snapshot");
    TCase *tc = tcase_create("snapshot");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, round_trip_every_fixture, 0, NFIXTURES);
    tcase_add_loop_test(tc, generated_form_matches_every_fixture, 0, NFIXTURES);
    tcase_add_test(tc, fields_of_s2);
    tcase_add_test(tc, embedded_domain_validates);
    tcase_add_test(tc, clearing_current_gives_libvirts_rewrite);
    tcase_add_test(tc, built_from_scratch_matches_libvirt);
    tcase_add_test(tc, new_file_header);
    tcase_add_test(tc, newer_elements);
    tcase_add_test(tc, unknown_and_comments_kept_in_place);
    tcase_add_test(tc, memory_defaults_as_libvirt);
    tcase_add_test(tc, refused_like_libvirt);
    tcase_add_test(tc, second_of_an_element_refused);
    tcase_add_test(tc, disk_defaults);
    tcase_add_test(tc, escaping);
    tcase_add_test(tc, text_check);
    tcase_add_test(tc, format_needs_a_name);
    tcase_add_test(tc, truncations_never_crash);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(snapshot_suite)
