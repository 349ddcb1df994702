/* domxml/store and util/atomic_file: files land where libvirt looks, with
 * libvirt's modes, atomically: a failure or a crash at any step leaves the
 * old file or the new one, never a mix, and no temporary file where libvirt
 * reads. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "domxml/domain_edit.h"
#include "domxml/store.h"
#include "domxml/writer.h"
#include "util/atomic_file.h"
#include "util/fileio.h"
#include "test_domxml_util.h"

static char base[4096], confdir[4200], snapdir[4200], domdir[4300];
static domxml_paths paths;

static void setup(void)
{
    pathf(base, sizeof base, "%s", scratch_dir("store"));
    pathf(confdir, sizeof confdir, "%s/etc/libvirt/qemu", base);
    pathf(snapdir, sizeof snapdir, "%s/var/lib/libvirt/qemu/snapshot", base);
    pathf(domdir, sizeof domdir, "%s/lvtest", snapdir);
    mkdir_p(confdir);
    mkdir_p(snapdir);
    paths = (domxml_paths){.root = NULL, .config_dir = confdir, .snapshot_dir = snapdir};
    es_fault_reset();
}

static void put_config(const char *fixture, const char *as, mode_t mode)
{
    char path[8192];
    pathf(path, sizeof path, "%s/%s", confdir, as);
    char *text = read_fixture(fixture, NULL);
    write_all(path, text, mode);
    free(text);
}

static char *slurp(const char *path)
{
    return read_all(path, NULL);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static domxml_domain *edited_config(const domxml_domain *d)
{
    es_err e = {0};
    domxml_domain *out = NULL;
    domxml_disk_change c = {.target = "vda", .source_file = "/var/lib/libvirt/images/lvtest/vda.s1"};
    ck_assert_msg(domxml_domain_change_disks(d, &c, 1, &out, &e) == 0, "%s", err_text(&e));
    return out;
}

START_TEST(paths_and_names)
{
    es_err e = {0};
    char *p;
    ck_assert_int_eq(domxml_config_path(&paths, "lvtest", &p, &e), 0);
    char want[8192];
    pathf(want, sizeof want, "%s/lvtest.xml", confdir);
    ck_assert_str_eq(p, want);
    free(p);
    ck_assert_int_eq(domxml_snapshot_file_path(&paths, "lvtest", "s1", &p, &e), 0);
    pathf(want, sizeof want, "%s/lvtest/s1.xml", snapdir);
    ck_assert_str_eq(p, want);
    free(p);
    ck_assert_int_lt(domxml_config_path(&paths, "..", &p, &e), 0);
    ck_assert_int_lt(domxml_config_path(&paths, "a/b", &p, &e), 0);
    ck_assert_int_lt(domxml_snapshot_file_path(&paths, "lvtest", "../x", &p, &e), 0);
    ck_assert_int_lt(domxml_snapshot_file_path(&paths, "lvtest", "base", &p, &e), 0);

    /* defaults, under a root */
    domxml_paths under = {.root = base};
    ck_assert_int_eq(domxml_config_path(&under, "lvtest", &p, &e), 0);
    pathf(want, sizeof want, "%s/etc/libvirt/qemu/lvtest.xml", base);
    ck_assert_str_eq(p, want);
    free(p);
    ck_assert_int_eq(domxml_snapshot_dir_path(&under, "lvtest", &p, &e), 0);
    pathf(want, sizeof want, "%s/var/lib/libvirt/qemu/snapshot/lvtest", base);
    ck_assert_str_eq(p, want);
    free(p);
}
END_TEST

START_TEST(load_by_name_and_path)
{
    put_config("libvirt-9.0/01-domain-defined.xml", "lvtest.xml", 0600);
    put_config("libvirt-9.0/01-domain-defined.xml", "other.xml", 0600);
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_msg(domxml_domain_load_named(&paths, "lvtest", &d, &e) == 0, "%s", err_text(&e));
    ck_assert_str_eq(d->name, "lvtest");
    domxml_domain_free(d);

    ck_assert_int_lt(domxml_domain_load_named(&paths, "other", &d, &e), 0);
    ck_assert_str_eq(e.msg, "defines domain 'lvtest', not 'other'");
    ck_assert_int_lt(domxml_domain_load_named(&paths, "nosuch", &d, &e), 0);
    ck_assert_str_eq(e.msg, "no domain 'nosuch' is defined (no config file)");

    char *where = NULL, path[8192];
    pathf(path, sizeof path, "%s/other.xml", confdir);
    ck_assert_int_eq(domxml_domain_locate(&paths, path, &d, &where, &e), 0);
    ck_assert_str_eq(where, path);
    domxml_domain_free(d);
    free(where);
    ck_assert_int_eq(domxml_domain_locate(&paths, "lvtest", &d, &where, &e), 0);
    pathf(path, sizeof path, "%s/lvtest.xml", confdir);
    ck_assert_str_eq(where, path);
    domxml_domain_free(d);
    free(where);

    /* through --root: the config dir as the guest sees it */
    domxml_paths under = {.root = base};
    ck_assert_msg(domxml_domain_locate(&under, "/etc/libvirt/qemu/other.xml", &d, NULL, &e) == 0,
                  "%s", err_text(&e));
    domxml_domain_free(d);
    ck_assert_int_eq(domxml_domain_load_named(&under, "lvtest", &d, &e), 0);
    domxml_domain_free(d);
}
END_TEST

START_TEST(domain_save_keeps_mode_and_owner)
{
    put_config("libvirt-9.0/01-domain-defined.xml", "lvtest.xml", 0640);
    char path[8192];
    pathf(path, sizeof path, "%s/lvtest.xml", confdir);
    bool root = geteuid() == 0;
    if (root)
        ck_assert_int_eq(chown(path, 1234, 4321), 0);

    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_int_eq(domxml_domain_load_named(&paths, "lvtest", &d, &e), 0);
    domxml_domain *nd = edited_config(d);
    ck_assert_msg(domxml_domain_save(&paths, nd, &e) == 0, "%s", err_text(&e));

    char *text = slurp(path);
    ck_assert_str_eq(text, nd->text);
    free(text);
    ck_assert_int_eq(mode_of(path), 0640);
    if (root) {
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_uid, 1234);
        ck_assert_int_eq(st.st_gid, 4321);
    } else {
        tu_skip_note("not root: owner preservation not tested"); /* exit 77 */
    }
    ck_assert_uint_eq(count_entries(confdir), 1); /* no lvtest.xml.new left */
    assert_validates(path, "domain");
    domxml_domain_free(d);
    domxml_domain_free(nd);
}
END_TEST

START_TEST(new_domain_file_is_0600)
{
    put_config("libvirt-9.0/01-domain-defined.xml", "src.xml", 0644);
    char src[8192], dst[8192];
    pathf(src, sizeof src, "%s/src.xml", confdir);
    pathf(dst, sizeof dst, "%s/copy.xml", confdir);
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_int_eq(domxml_domain_load(src, &d, &e), 0);
    mode_t old = umask(0);
    ck_assert_int_eq(domxml_domain_save_file(dst, d, &e), 0);
    umask(old);
    ck_assert_int_eq(mode_of(dst), 0600);
    domxml_domain_free(d);
}
END_TEST

static domxml_snapshot *fixture_snapshot(const char *fixture)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_msg(domxml_snapshot_load(fixture_path(fixture), &s, &e) == 0, "%s", err_text(&e));
    return s;
}

START_TEST(snapshot_save_layout)
{
    es_err e = {0};
    domxml_snapshot *s = fixture_snapshot("libvirt-9.0/02-snapshot-s1.xml");
    ck_assert_msg(domxml_snapshot_save(&paths, "lvtest", s, &e) == 0, "%s", err_text(&e));
    char path[8192];
    pathf(path, sizeof path, "%s/s1.xml", domdir);
    struct stat st;
    ck_assert_int_eq(stat(domdir, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0755);
    ck_assert_int_eq(mode_of(path), 0600);
    char *got = slurp(path), *want = read_fixture("libvirt-9.0/02-snapshot-s1.xml", NULL);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    ck_assert_uint_eq(count_entries(snapdir), 1); /* only lvtest/: no temporary file */
    ck_assert_uint_eq(count_entries(domdir), 1);
    assert_validates(path, "domainsnapshot");

    /* rewriting keeps a mode someone chose */
    ck_assert_int_eq(chmod(path, 0644), 0);
    s->current = false;
    ck_assert_int_eq(domxml_snapshot_save(&paths, "lvtest", s, &e), 0);
    got = slurp(path);
    want = read_fixture("libvirt-9.0/03-snapshot-s1-after-s2.xml", NULL);
    ck_assert_str_eq(got, want);
    ck_assert_int_eq(mode_of(path), 0644);
    free(got);
    free(want);

    /* and the directory loads as libvirt would */
    domxml_snapshot_list *l = NULL;
    ck_assert_int_eq(domxml_snapshots_load(&paths, "lvtest", 0, &l, &e), 0);
    ck_assert_uint_eq(l->n, 1);
    domxml_snapshot_list_free(l);

    ck_assert_int_eq(domxml_snapshot_remove(&paths, "lvtest", "s1", &e), 0);
    ck_assert_uint_eq(count_entries(domdir), 0);
    ck_assert_int_lt(domxml_snapshot_remove(&paths, "lvtest", "s1", &e), 0);
    domxml_snapshot_free(s);
}
END_TEST

/* The store saves through the same writer the transaction engine uses:
 * the temporary names are its, and a save of what the file already holds
 * changes nothing on disk (no new inode, not one mutating operation) but
 * still removes a stale temporary file. */
START_TEST(saves_go_through_the_one_writer)
{
    es_err e = {0};
    domxml_snapshot *s = fixture_snapshot("libvirt-9.0/02-snapshot-s1.xml");
    ck_assert_msg(domxml_snapshot_save(&paths, "lvtest", s, &e) == 0, "%s", err_text(&e));
    char path[8192], want_tmp[8192];
    pathf(path, sizeof path, "%s/s1.xml", domdir);
    pathf(want_tmp, sizeof want_tmp, "%s/.lvtest-s1.xml.tmp", snapdir);
    domxml_file f = {.kind = DOMXML_FILE_SNAPSHOT, .host = path, .domain = "lvtest",
                     .snapshot = "s1"};
    char *tmp = NULL;
    ck_assert_int_eq(domxml_file_tmp_path(&f, &tmp, &e), 0);
    ck_assert_str_eq(tmp, want_tmp);
    write_all(tmp, "stale", 0600);

    struct stat before, after;
    ck_assert_int_eq(stat(path, &before), 0);
    uint64_t writes = es_fault_count("write");
    ck_assert_int_eq(domxml_snapshot_save(&paths, "lvtest", s, &e), 0);
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_uint_eq(after.st_ino, before.st_ino);
    ck_assert_uint_eq(es_fault_count("write"), writes);
    ck_assert_int_ne(access(tmp, F_OK), 0); /* the stale one is gone */
    free(tmp);

    domxml_file cf = {.kind = DOMXML_FILE_CONFIG, .host = "/x/etc/vm.xml"};
    ck_assert_int_eq(domxml_file_tmp_path(&cf, &tmp, &e), 0);
    ck_assert_str_eq(tmp, "/x/etc/vm.xml.new");
    free(tmp);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(snapshot_save_refuses_bad_names)
{
    es_err e = {0};
    domxml_snapshot *s = NULL;
    ck_assert_int_eq(domxml_snapshot_new("base", &s, &e), 0);
    ck_assert_int_lt(domxml_snapshot_save(&paths, "lvtest", s, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "'base'"));
    ck_assert_int_eq(domxml_set_string(&s->name, ".x", &e), 0);
    ck_assert_int_lt(domxml_snapshot_save(&paths, "lvtest", s, &e), 0);
    ck_assert_int_lt(domxml_snapshot_save(&paths, "../etc", s, &e), 0);
    ck_assert_uint_eq(count_entries(snapdir), 0);
    domxml_snapshot_free(s);
}
END_TEST

/* Save once with a fault at mutating operation k; the file must hold the old
 * or the new text, and no temporary file may remain. */
typedef int (*save_fn)(const void *obj, es_err *e);

static int save_config(const void *obj, es_err *e)
{
    return domxml_domain_save(&paths, obj, e);
}

static int save_snapshot(const void *obj, es_err *e)
{
    return domxml_snapshot_save(&paths, "lvtest", obj, e);
}

static void check_faults(save_fn save, const void *obj, const char *path, const char *old_text,
                         const char *new_text, const char *tmp_dir, size_t tmp_dir_entries)
{
    es_err e = {0};
    /* how many mutating operations one save makes */
    write_all(path, old_text, 0600);
    es_fault_reset();
    ck_assert_int_eq(save(obj, &e), 0);
    uint64_t ops = es_fault_count("mutate");
    ck_assert_uint_ge(ops, 4); /* create, write, flush, rename, fsync dir ... */

    for (uint64_t k = 1; k <= ops; k++) {
        write_all(path, old_text, 0600);
        es_fault_reset();
        es_fault_set("mutate", k, ES_FAULT_EIO);
        int rc = save(obj, &e);
        es_fault_reset();
        char *now = slurp(path);
        bool is_old = strcmp(now, old_text) == 0, is_new = strcmp(now, new_text) == 0;
        ck_assert_msg(is_old || is_new, "fault at op %llu left a mixed file", (unsigned long long)k);
        ck_assert_msg(rc < 0 || is_new, "save reported success but the file is old");
        ck_assert_msg(rc < 0, "fault at op %llu was not reported", (unsigned long long)k);
        ck_assert_int_eq(e.errnum, EIO);
        ck_assert_uint_eq(count_entries(tmp_dir), tmp_dir_entries);
        free(now);
    }

    /* a crash (the process stops dead) at each step */
    for (uint64_t k = 1; k <= ops; k++) {
        write_all(path, old_text, 0600);
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            es_fault_reset();
            es_fault_set("mutate", k, ES_FAULT_STOP);
            es_err ce;
            _exit(save(obj, &ce) == 0 ? 0 : 1);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == ES_FAULT_STOP_STATUS);
        char *now = slurp(path);
        ck_assert_msg(strcmp(now, old_text) == 0 || strcmp(now, new_text) == 0,
                      "crash at op %llu left a mixed file", (unsigned long long)k);
        free(now);
        /* the next run copes with whatever temporary file the crash left */
        ck_assert_msg(save(obj, &e) == 0, "%s", err_text(&e));
        ck_assert_uint_eq(count_entries(tmp_dir), tmp_dir_entries);
        now = slurp(path);
        ck_assert_str_eq(now, new_text);
        free(now);
    }
}

START_TEST(config_save_faults)
{
    put_config("libvirt-9.0/01-domain-defined.xml", "lvtest.xml", 0600);
    char path[8192];
    pathf(path, sizeof path, "%s/lvtest.xml", confdir);
    es_err e = {0};
    domxml_domain *d = NULL;
    ck_assert_int_eq(domxml_domain_load(path, &d, &e), 0);
    domxml_domain *nd = edited_config(d);
    check_faults(save_config, nd, path, d->text, nd->text, confdir, 1);
    domxml_domain_free(d);
    domxml_domain_free(nd);
}
END_TEST

START_TEST(snapshot_save_faults)
{
    mkdir_p(domdir);
    char path[8192];
    pathf(path, sizeof path, "%s/s1.xml", domdir);
    domxml_snapshot *s = fixture_snapshot("libvirt-9.0/02-snapshot-s1.xml");
    char *old_text = read_fixture("libvirt-9.0/02-snapshot-s1.xml", NULL);
    char *new_text = read_fixture("libvirt-9.0/03-snapshot-s1-after-s2.xml", NULL);
    s->current = false;
    check_faults(save_snapshot, s, path, old_text, new_text, snapdir, 1);
    ck_assert_uint_eq(count_entries(domdir), 1);
    free(old_text);
    free(new_text);
    domxml_snapshot_free(s);
}
END_TEST

START_TEST(atomic_replace_basics)
{
    es_err e = {0};
    char target[8192], tmp[8192], link[8192];
    pathf(target, sizeof target, "%s/file", base);
    pathf(tmp, sizeof tmp, "%s/.file.tmp", base);
    pathf(link, sizeof link, "%s/link", base);

    /* new file: the given mode, whatever the umask */
    mode_t old = umask(077);
    ck_assert_int_eq(es_atomic_replace(target, tmp, "one", 3, 0644, &e), 0);
    umask(old);
    ck_assert_int_eq(mode_of(target), 0644);
    char *text = slurp(target);
    ck_assert_str_eq(text, "one");
    free(text);

    /* a stale temporary file is replaced, and nothing is left behind */
    write_all(tmp, "stale", 0600);
    ck_assert_int_eq(es_atomic_replace(target, tmp, "", 0, 0600, &e), 0);
    text = slurp(target);
    ck_assert_str_eq(text, "");
    free(text);
    ck_assert_int_eq(mode_of(target), 0644);
    ck_assert_int_ne(access(tmp, F_OK), 0);

    /* a symlink is not silently replaced by a file */
    ck_assert_int_eq(symlink(target, link), 0);
    ck_assert_int_lt(es_atomic_replace(link, tmp, "x", 1, 0600, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a regular file"));

    /* ENOSPC while writing: the old file stays, the temporary file goes */
    es_fault_reset();
    es_fault_set("write", 1, ES_FAULT_ENOSPC);
    ck_assert_int_lt(es_atomic_replace(target, tmp, "two", 3, 0600, &e), 0);
    es_fault_reset();
    ck_assert_int_eq(e.errnum, ENOSPC);
    text = slurp(target);
    ck_assert_str_eq(text, "");
    free(text);
    ck_assert_int_ne(access(tmp, F_OK), 0);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("domxml_store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, paths_and_names);
    tcase_add_test(tc, load_by_name_and_path);
    tcase_add_test(tc, domain_save_keeps_mode_and_owner);
    tcase_add_test(tc, new_domain_file_is_0600);
    tcase_add_test(tc, snapshot_save_layout);
    tcase_add_test(tc, saves_go_through_the_one_writer);
    tcase_add_test(tc, snapshot_save_refuses_bad_names);
    tcase_add_test(tc, config_save_faults);
    tcase_add_test(tc, snapshot_save_faults);
    tcase_add_test(tc, atomic_replace_basics);
    suite_add_tcase(s, tc);
    return s;
}

RUN_SUITE(store_suite)
