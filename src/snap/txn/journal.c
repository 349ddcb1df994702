#include "snap/txn/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "snap/txn/jsonfile.h"
#include "snap/txn/plan_json.h"
#include "util/atomic_file.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/xalloc.h"

/* Journals hold a few XML files; anything far larger is not one of ours. */
#define SNAP_JOURNAL_MAX (64u << 20)

static const char *const phase_names[] = {"prepare", "merge", "committed"};

const char *snap_phase_name(snap_phase p)
{
    return phase_names[p];
}

int snap_journal_exists(const snap_journal *j, bool *exists, es_err *e)
{
    struct stat st;
    *exists = false;
    if (es_fs_lstat(j->path, &st) == 0) {
        *exists = true;
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    return es_err_set(e, errno, j->path, "cannot stat the journal");
}

int snap_journal_write(const snap_journal *j, const snap_plan *p, snap_phase phase, es_err *e)
{
    json_object *plan = NULL;
    if (snap_plan_to_json(p, true, &plan, e) < 0)
        return -1;
    json_object *o = es_xcheck(json_object_new_object());
    json_object_object_add(o, "extsnap-journal", json_object_new_int(SNAP_JOURNAL_VERSION));
    json_object_object_add(o, "pid", json_object_new_int64((long long)getpid()));
    json_object_object_add(o, "started", json_object_new_int64((long long)time(NULL)));
    json_object_object_add(o, "phase", json_object_new_string(snap_phase_name(phase)));
    json_object_object_add(o, "plan", plan);
    size_t len = 0;
    const char *text =
        json_object_to_json_string_length(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE,
                                          &len);
    es_xcheck(text);
    /* A trailing newline, like every text file. */
    char *buf = es_xmalloc(len + 2);
    memcpy(buf, text, len);
    buf[len] = '\n';
    int rc = es_atomic_replace(j->path, j->tmp, buf, len + 1, 0600, e);
    if (rc < 0)
        es_err_prefix(e, "cannot write the journal");
    free(buf);
    json_object_put(o);
    return rc;
}

int snap_journal_read(const snap_journal *j, snap_plan **p, snap_phase *phase, es_err *e)
{
    *p = NULL;
    bool exists = false;
    json_object *o = NULL, *v = NULL;
    if (snap_read_json(j->path, SNAP_JOURNAL_MAX, "the journal",
                       "it was not written by this extsnap: inspect it, then move it away by hand",
                       &o, &exists, e) < 0)
        return -1;
    if (!exists)
        return es_err_set(e, ENOENT, j->path, "no journal");
    int rc = -1;
    if (!json_object_object_get_ex(o, "extsnap-journal", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int(v) != SNAP_JOURNAL_VERSION) {
        es_err_set(e, 0, j->path, "not an extsnap journal of version %d", SNAP_JOURNAL_VERSION);
        goto out;
    }
    if (!json_object_object_get_ex(o, "phase", &v) || !json_object_is_type(v, json_type_string)) {
        es_err_set(e, 0, j->path, "journal: missing phase");
        goto out;
    }
    const char *ph = json_object_get_string(v);
    size_t k = 0;
    while (k < 3 && strcmp(ph, phase_names[k]) != 0)
        k++;
    if (k == 3) {
        es_err_set(e, 0, j->path, "journal: unknown phase '%s'", ph);
        goto out;
    }
    *phase = (snap_phase)k;
    if (!json_object_object_get_ex(o, "plan", &v)) {
        es_err_set(e, 0, j->path, "journal: missing plan");
        goto out;
    }
    rc = snap_plan_from_json(v, j->path, p, e);
out:
    json_object_put(o);
    return rc;
}

int snap_journal_remove(const snap_journal *j, es_err *e)
{
    if (es_unlink_if_exists(j->tmp, e) < 0)
        return -1;
    if (es_unlink_if_exists(j->path, e) < 0)
        return es_err_prefix(e, "cannot remove the journal");
    return es_fsync_parent(j->path, e);
}
