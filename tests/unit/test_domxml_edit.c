/* domxml/domain_edit: disk edits change only the bytes they must, checked
 * against the files libvirt itself wrote after each snapshot. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/domain.h"
#include "domxml/domain_edit.h"
#include "domxml/snapshot.h"
#include "test_domxml_util.h"

#define IMG "/var/lib/libvirt/images/lvtest/"
#define CUSTOM "/var/lib/libvirt/images/lvtest-custom/"

static domxml_domain *load(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "libvirt-9.0/%s", name);
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_msg(domxml_domain_load(fixture_path(rel), &d, &e) == 0, "%s", err_text(&e));
    return d;
}

static domxml_domain *parse_text(const char *text)
{
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_msg(domxml_domain_parse(text, strlen(text), "t.xml", &d, &e) == 0, "%s",
                  err_text(&e));
    return d;
}

static domxml_domain *change(const domxml_domain *d, const domxml_disk_change *c, size_t n)
{
    es_err e = {0};
    domxml_domain *out = NULL;
    ck_assert_msg(domxml_domain_change_disks(d, c, n, &out, &e) == 0, "%s", err_text(&e));
    return out;
}

static void change_fails(const domxml_domain *d, const domxml_disk_change *c, size_t n,
                         const char *want)
{
    es_err e = {0};
    domxml_domain *out = NULL;
    ck_assert_int_lt(domxml_domain_change_disks(d, c, n, &out, &e), 0);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
}

/* Applying the changes of one libvirt snapshot step to the config before it
 * gives libvirt's config after it, byte for byte. */
static void expect_same_as(const domxml_domain *got, const char *fixture)
{
    char rel[256];
    snprintf(rel, sizeof rel, "libvirt-9.0/%s", fixture);
    size_t len;
    char *want = read_fixture(rel, &len);
    ck_assert_msg(got->len == len && memcmp(got->text, want, len) == 0,
                  "edited text differs from %s:\n%s", fixture, got->text);
    free(want);
}

START_TEST(edit_one_source_changes_one_attribute)
{
    domxml_domain *d = load("01-domain-defined.xml");
    domxml_disk_change c = {.target = "vda", .source_file = IMG "vda.s1"};
    domxml_domain *got = change(d, &c, 1);
    ck_assert_int_eq(differing_lines(d->text, got->text), 1);
    /* the one line differs only inside the attribute value */
    const char *old_line = strstr(d->text, "<source file='" IMG "vda.qcow2'/>");
    const char *new_line = strstr(got->text, "<source file='" IMG "vda.s1'/>");
    ck_assert_ptr_nonnull(old_line);
    ck_assert_ptr_nonnull(new_line);
    ck_assert_uint_eq((size_t)(old_line - d->text), (size_t)(new_line - got->text));
    ck_assert_uint_eq(got->len, d->len - strlen("qcow2") + strlen("s1"));
    ck_assert_str_eq(domxml_domain_disk(got, "vda")->source, IMG "vda.s1");
    ck_assert_str_eq(domxml_domain_disk(got, "vda")->driver_type, "qcow2");
    /* the source domain is untouched */
    ck_assert_str_eq(domxml_domain_disk(d, "vda")->source, IMG "vda.qcow2");
    domxml_domain_free(d);
    domxml_domain_free(got);
}
END_TEST

START_TEST(libvirt_s1_step_block_to_file)
{
    domxml_domain *d = load("01-domain-defined.xml");
    domxml_disk_change c[] = {
        {.target = "vda", .source_file = IMG "vda.s1", .driver_type = "qcow2"},
        {.target = "vdc", .source_file = IMG "vdc.s1", .driver_type = "qcow2"},
        {.target = "vdd", .source_file = IMG "vdd-s1.qcow2", .driver_type = "qcow2"},
        {.target = "sdb", .source_file = IMG "sdb.s1", .driver_type = "qcow2"},
    };
    domxml_domain *got = change(d, c, 4);
    expect_same_as(got, "02-domain-after-s1.xml");
    const domxml_disk *vdd = domxml_domain_disk(got, "vdd");
    ck_assert_int_eq(vdd->type, DOMXML_STORAGE_FILE);
    ck_assert_str_eq(vdd->source, IMG "vdd-s1.qcow2");
    domxml_domain_free(d);
    domxml_domain_free(got);
}
END_TEST

START_TEST(libvirt_later_steps)
{
    struct step {
        const char *before, *after;
        domxml_disk_change c[4];
        size_t n;
    } steps[] = {
        {"02-domain-after-s1.xml", "03-domain-after-s2.xml",
         {{.target = "vda", .source_file = IMG "vda.s2", .driver_type = "qcow2"},
          {.target = "vdc", .source_file = IMG "vdc.s2", .driver_type = "qcow2"},
          {.target = "vdd", .source_file = IMG "vdd-s1.s2", .driver_type = "qcow2"},
          {.target = "sdb", .source_file = IMG "sdb.s2", .driver_type = "qcow2"}}, 4},
        {"03-domain-after-s2.xml", "04-domain-after-s3.xml",
         {{.target = "vda", .source_file = CUSTOM "vda-custom.qcow2", .driver_type = "qcow2"},
          {.target = "vdd", .source_file = IMG "vdd-s1.s3", .driver_type = "qcow2"},
          {.target = "sdb", .source_file = IMG "sdb.s3", .driver_type = "qcow2"}}, 3},
        {"04-domain-after-s3.xml", "05-domain-after-s4-nometadata.xml",
         {{.target = "vda", .source_file = CUSTOM "vda-custom.s4"},
          {.target = "vdc", .source_file = IMG "vdc.s4"},
          {.target = "vdd", .source_file = IMG "vdd-s1.s4"},
          {.target = "sdb", .source_file = IMG "sdb.s4"}}, 4},
        {"06-handmade-domain.xml", "07-domain-after-9.0-delete-s5.xml",
         {{.target = "sdb", .source_file = IMG "sdb.s4", .driver_type = "qcow2"},
          {.target = "vda", .source_file = CUSTOM "vda-custom.s4", .driver_type = "qcow2"},
          {.target = "vdd", .source_file = IMG "vdd-s1.s4", .driver_type = "qcow2"},
          {.target = "vdc", .source_file = IMG "vdc.s4", .driver_type = "qcow2"}}, 4},
        {"07-domain-after-9.0-delete-s5.xml", "08-domain-after-s6.xml",
         {{.target = "vda", .source_file = CUSTOM "vda-custom.s6", .driver_type = "qcow2"},
          {.target = "vdc", .source_file = IMG "vdc.s6", .driver_type = "qcow2"},
          {.target = "vdd", .source_file = IMG "vdd-s1.s6", .driver_type = "qcow2"},
          {.target = "sdb", .source_file = IMG "sdb.s6", .driver_type = "qcow2"}}, 4},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        domxml_domain *d = load(steps[i].before);
        domxml_domain *got = change(d, steps[i].c, steps[i].n);
        expect_same_as(got, steps[i].after);
        domxml_domain_free(d);
        domxml_domain_free(got);
    }
}
END_TEST

START_TEST(quote_style_and_escaping_kept)
{
    domxml_domain *d = parse_text(
        "<domain type=\"qemu\">\n  <name>q</name>\n  <devices>\n"
        "    <disk type=\"file\" device=\"disk\">\n"
        "      <driver name=\"qemu\" type=\"raw\" cache=\"none\"/>\n"
        "      <source file=\"/img/a&amp;b.raw\"/>\n"
        "      <target dev=\"vda\" bus=\"virtio\"/>\n"
        "    </disk>\n  </devices>\n</domain>\n");
    domxml_disk_change c = {.target = "vda", .source_file = "/img/it's <new> & \"x\".qcow2",
                            .driver_type = "qcow2"};
    domxml_domain *got = change(d, &c, 1);
    ck_assert_ptr_nonnull(strstr(got->text, "<driver name=\"qemu\" type=\"qcow2\" cache=\"none\"/>"));
    ck_assert_ptr_nonnull(strstr(
        got->text, "<source file=\"/img/it&apos;s &lt;new&gt; &amp; &quot;x&quot;.qcow2\"/>"));
    ck_assert_str_eq(got->disks[0].source, "/img/it's <new> & \"x\".qcow2");
    ck_assert_int_eq(differing_lines(d->text, got->text), 2);
    domxml_domain_free(d);
    domxml_domain_free(got);
}
END_TEST

START_TEST(missing_driver_and_source_are_added)
{
    domxml_domain *d = parse_text(
        "<domain type='kvm'>\n  <name>e</name>\n  <devices>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <target dev='hdc' bus='ide'/>\n"
        "      <readonly/>\n"
        "    </disk>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <driver name='qemu'/>\n"
        "      <source startupPolicy='optional'/>\n"
        "      <target dev='hdd' bus='ide'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <target dev='vdb'/>\n"
        "    </disk>\n"
        "  </devices>\n</domain>\n");
    domxml_disk_change c[] = {
        {.target = "hdc", .source_file = "/iso/a.iso", .driver_type = "raw"},
        {.target = "hdd", .source_file = "/iso/b.iso", .driver_type = "raw"},
        {.target = "vdb", .source_file = "/img/vdb.qcow2", .driver_type = "qcow2"},
    };
    domxml_domain *got = change(d, c, 3);
    const char *want =
        "<domain type='kvm'>\n  <name>e</name>\n  <devices>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='/iso/a.iso'/>\n"
        "      <target dev='hdc' bus='ide'/>\n"
        "      <readonly/>\n"
        "    </disk>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='/iso/b.iso' startupPolicy='optional'/>\n"
        "      <target dev='hdd' bus='ide'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='qcow2'/>\n"
        "      <source file='/img/vdb.qcow2'/>\n"
        "      <target dev='vdb'/>\n"
        "    </disk>\n"
        "  </devices>\n</domain>\n";
    ck_assert_str_eq(got->text, want);
    domxml_domain_free(d);
    domxml_domain_free(got);
}
END_TEST

START_TEST(backing_store_dropped_on_request)
{
    const char *text =
        "<domain type='qemu'>\n  <name>b</name>\n  <devices>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='qcow2'/>\n"
        "      <source file='/img/top.qcow2'/>\n"
        "      <backingStore type='file'>\n"
        "        <format type='raw'/>\n"
        "        <source file='/img/base.raw'/>\n"
        "        <backingStore/>\n"
        "      </backingStore>\n"
        "      <target dev='vda' bus='virtio'/>\n"
        "    </disk>\n  </devices>\n</domain>\n";
    domxml_domain *d = parse_text(text);
    ck_assert(d->disks[0].has_backing_store);
    domxml_disk_change keep = {.target = "vda", .source_file = "/img/new.qcow2"};
    domxml_domain *kept = change(d, &keep, 1);
    ck_assert(kept->disks[0].has_backing_store);
    domxml_disk_change drop = {.target = "vda", .source_file = "/img/new.qcow2",
                               .drop_backing_store = true};
    domxml_domain *got = change(d, &drop, 1);
    ck_assert_str_eq(got->text, "<domain type='qemu'>\n  <name>b</name>\n  <devices>\n"
                                "    <disk type='file' device='disk'>\n"
                                "      <driver name='qemu' type='qcow2'/>\n"
                                "      <source file='/img/new.qcow2'/>\n"
                                "      <target dev='vda' bus='virtio'/>\n"
                                "    </disk>\n  </devices>\n</domain>\n");
    domxml_domain_free(d);
    domxml_domain_free(kept);
    domxml_domain_free(got);
}
END_TEST

/* A new overlay over a disk whose config spells out its chain: the old
 * source and chain move below it, as libvirt 9.0 writes them; the disk's
 * startupPolicy stays on top; an empty <backingStore/> goes. */
START_TEST(backing_store_moves_below_new_image)
{
    const char *text =
        "<domain type='qemu'>\n  <name>b</name>\n  <devices>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='qcow2'/>\n"
        "      <source file='/img/top.qcow2' startupPolicy='optional'>\n"
        "        <seclabel model='dac' relabel='no'/>\n"
        "      </source>\n"
        "      <backingStore type='file'>\n"
        "        <format type='raw'/>\n"
        "        <source file='/img/base.raw'/>\n"
        "        <backingStore/>\n"
        "      </backingStore>\n"
        "      <target dev='vda' bus='virtio'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='/img/b.raw'/>\n"
        "      <backingStore/>\n"
        "      <target dev='vdb' bus='virtio'/>\n"
        "    </disk>\n  </devices>\n</domain>\n";
    domxml_domain *d = parse_text(text);
    domxml_disk_change c[] = {{.target = "vda", .source_file = "/img/top.s1",
                               .driver_type = "qcow2", .old_image_below = true},
                              {.target = "vdb", .source_file = "/img/b.s1",
                               .driver_type = "qcow2", .old_image_below = true}};
    domxml_domain *got = change(d, c, 2);
    ck_assert_str_eq(got->text,
                     "<domain type='qemu'>\n  <name>b</name>\n  <devices>\n"
                     "    <disk type='file' device='disk'>\n"
                     "      <driver name='qemu' type='qcow2'/>\n"
                     "      <source file='/img/top.s1' startupPolicy='optional'>\n"
                     "        <seclabel model='dac' relabel='no'/>\n"
                     "      </source>\n"
                     "      <backingStore type='file'>\n"
                     "        <format type='qcow2'/>\n"
                     "        <source file='/img/top.qcow2'>\n"
                     "          <seclabel model='dac' relabel='no'/>\n"
                     "        </source>\n"
                     "        <backingStore type='file'>\n"
                     "          <format type='raw'/>\n"
                     "          <source file='/img/base.raw'/>\n"
                     "          <backingStore/>\n"
                     "        </backingStore>\n"
                     "      </backingStore>\n"
                     "      <target dev='vda' bus='virtio'/>\n"
                     "    </disk>\n"
                     "    <disk type='file' device='disk'>\n"
                     "      <driver name='qemu' type='qcow2'/>\n"
                     "      <source file='/img/b.s1'/>\n"
                     "      <target dev='vdb' bus='virtio'/>\n"
                     "    </disk>\n  </devices>\n</domain>\n");
    ck_assert(got->disks[0].has_backing_store && !got->disks[1].has_backing_store);
    domxml_domain_free(d);
    domxml_domain_free(got);
}
END_TEST

START_TEST(refused_changes)
{
    domxml_domain *d = load("01-domain-defined.xml");
    domxml_disk_change c = {.target = "vdz", .source_file = "/x"};
    change_fails(d, &c, 1, "no disk with target 'vdz'");
    c = (domxml_disk_change){.target = "vda", .source_file = "rel/x.qcow2"};
    change_fails(d, &c, 1, "must be absolute");
    c = (domxml_disk_change){.target = "vda", .source_file = NULL};
    change_fails(d, &c, 1, "must be absolute");
    c = (domxml_disk_change){.target = "vda", .source_file = "/x", .driver_type = "qcow9"};
    change_fails(d, &c, 1, "unknown image format");
    domxml_disk_change twice[] = {{.target = "vda", .source_file = "/x"},
                                  {.target = "vda", .source_file = "/y"}};
    change_fails(d, twice, 2, "changed twice");
    domxml_domain_free(d);

    d = parse_text("<domain type='qemu'><name>n</name><devices>"
                   "<disk type='network'><driver type='raw'/><source protocol='nbd' name='e'/>"
                   "<target dev='vda'/></disk>"
                   "<disk type='block' device='lun'><driver type='raw'/><source dev='/dev/sdx'/>"
                   "<target dev='sda'/></disk>"
                   "<disk><target dev='hda'/></disk>"
                   "</devices></domain>");
    c = (domxml_disk_change){.target = "vda", .source_file = "/x", .driver_type = "qcow2"};
    change_fails(d, &c, 1, "type 'network' disks are not supported");
    c = (domxml_disk_change){.target = "sda", .source_file = "/x", .driver_type = "qcow2"};
    change_fails(d, &c, 1, "'lun'");
    c = (domxml_disk_change){.target = "hda", .source_file = "/x"};
    change_fails(d, &c, 1, "no image format");
    domxml_domain_free(d);
}
END_TEST

START_TEST(edited_config_validates)
{
    domxml_domain *d = load("01-domain-defined.xml");
    domxml_disk_change c[] = {
        {.target = "vda", .source_file = IMG "vda.s1", .driver_type = "qcow2"},
        {.target = "vdd", .source_file = IMG "vdd-s1.qcow2", .driver_type = "qcow2"},
    };
    domxml_domain *got = change(d, c, 2);
    char path[4200];
    snprintf(path, sizeof path, "%s/lvtest.xml", scratch_dir("edit"));
    write_all(path, got->text, 0600);
    assert_validates(path, "domain");
    domxml_domain_free(d);
    domxml_domain_free(got);
}
END_TEST

/* Revert: the config file keeps its comment block and takes the <domain>
 * saved in the snapshot metadata. */
START_TEST(replace_root_with_saved_domain)
{
    domxml_domain *config = load("08-domain-after-s6.xml");
    size_t len;
    char *text = read_fixture("libvirt-9.0/08-snapshot-s6.xml", &len);
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_msg(domxml_snapshot_parse(text, len, "s6.xml", &s, &e) == 0, "%s", err_text(&e));
    domxml_domain *got = NULL;
    ck_assert_msg(domxml_domain_replace_root(config, s->domain, &got, &e) == 0, "%s", err_text(&e));

    size_t off, rlen;
    domxml_domain_root_span(config, &off, &rlen);
    ck_assert_mem_eq(got->text, config->text, off); /* the comment block */
    ck_assert(strncmp(got->text + off, s->domain->text, s->domain->len) == 0);
    ck_assert_str_eq(got->text + off + s->domain->len, "\n");
    for (size_t i = 0; i < got->ndisks; i++)
        ck_assert_str_eq(got->disks[i].source, s->domain->disks[i].source);
    ck_assert_str_eq(domxml_domain_disk(got, "vda")->source, CUSTOM "vda-custom.s4");

    char path[4200];
    snprintf(path, sizeof path, "%s/lvtest.xml", scratch_dir("revert"));
    write_all(path, got->text, 0600);
    assert_validates(path, "domain");

    /* a saved domain of another VM is refused */
    domxml_domain *other = parse_text("<domain type='qemu'><name>other</name></domain>");
    domxml_domain *bad = NULL;
    ck_assert_int_lt(domxml_domain_replace_root(config, other, &bad, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "'other'"));
    domxml_domain *uuid = parse_text("<domain type='qemu'><name>lvtest</name>"
                                     "<uuid>00000000-0000-0000-0000-000000000001</uuid></domain>");
    ck_assert_int_lt(domxml_domain_replace_root(config, uuid, &bad, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "uuid"));

    domxml_domain_free(uuid);
    domxml_domain_free(other);
    domxml_domain_free(got);
    domxml_snapshot_free(s);
    domxml_domain_free(config);
    free(text);
}
END_TEST

static Suite *edit_suite(void)
{
    Suite *s = suite_create("domxml_edit");
    TCase *tc = tcase_create("edit");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, edit_one_source_changes_one_attribute);
    tcase_add_test(tc, libvirt_s1_step_block_to_file);
    tcase_add_test(tc, libvirt_later_steps);
    tcase_add_test(tc, quote_style_and_escaping_kept);
    tcase_add_test(tc, missing_driver_and_source_are_added);
    tcase_add_test(tc, backing_store_dropped_on_request);
    tcase_add_test(tc, backing_store_moves_below_new_image);
    tcase_add_test(tc, refused_changes);
    tcase_add_test(tc, edited_config_validates);
    tcase_add_test(tc, replace_root_with_saved_domain);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(edit_suite)
