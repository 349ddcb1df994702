/* libFuzzer harness, extsnap's own JSON state files, read back after a
 * crash: the input is written both as a domain's journal and as its record
 * of inexact snapshots, and each reader runs on it. What a reader accepts
 * is written again by its writer and must read back the same: the plan
 * (as JSON, XML texts included) and phase of a journal, every field of
 * every inexact entry. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "snap/context.h"
#include "snap/ops/inexact.h"
#include "snap/txn/journal.h"
#include "snap/txn/plan.h"
#include "snap/txn/plan_json.h"

/* The plan as the journal stores it (malloc'd). */
static char *plan_text(const snap_plan *p)
{
    json_object *o = NULL;
    es_err e = {0};
    int r = snap_plan_to_json(p, true, &o, &e);
    FZ_ASSERT(r == 0, "a plan read from a journal does not convert back: %s", e.msg);
    char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    FZ_ASSERT(s, "out of memory");
    return s;
}

static void journal(const uint8_t *data, size_t size)
{
    fz_write("d.extsnap.journal", data, size);
    snap_journal j = {fz_path(0, "d.extsnap.journal"), fz_path(1, ".d.extsnap.journal.tmp")};
    snap_plan *p = NULL, *p2 = NULL;
    snap_phase ph = SNAP_PHASE_PREPARE, ph2 = SNAP_PHASE_PREPARE;
    es_err e = {0};
    int r = snap_journal_read(&j, &p, &ph, &e);
    fz_expect(r, &e, "snap_journal_read");
    if (r < 0) {
        snap_plan_free(p);
        return;
    }
    char *t1 = plan_text(p);
    r = snap_journal_write(&j, p, ph, &e);
    FZ_ASSERT(r == 0, "a journal that was read cannot be written: %s", e.msg);
    r = snap_journal_read(&j, &p2, &ph2, &e);
    FZ_ASSERT(r == 0, "a journal as written does not read: %s", e.msg);
    char *t2 = plan_text(p2);
    FZ_ASSERT(ph == ph2 && strcmp(t1, t2) == 0, "the journal reads back differently:\n%s\n%s", t1,
              t2);
    free(t1);
    free(t2);
    snap_plan_free(p);
    snap_plan_free(p2);
}

static bool str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void entries_same(const snap_inexact *a, const snap_inexact *b)
{
    FZ_ASSERT(a->n == b->n, "%zu inexact entries written, %zu read back", a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const snap_inexact_entry *x = &a->v[i], *y = &b->v[i];
        FZ_ASSERT(str_eq(x->name, y->name) && x->creation_time == y->creation_time &&
                      x->state == y->state && x->since == y->since &&
                      str_eq(x->operation, y->operation) && str_eq(x->command, y->command) &&
                      str_eq(x->reason, y->reason) && x->images.n == y->images.n,
                  "inexact entry %zu reads back differently", i);
        for (size_t k = 0; k < x->images.n; k++)
            FZ_ASSERT(str_eq(x->images.v[k], y->images.v[k]), "entry %zu image %zu", i, k);
    }
}

static void inexact(const uint8_t *data, size_t size)
{
    /* A context as far as the record needs one: its directory and name. */
    snap_ctx c;
    memset(&c, 0, sizeof c);
    c.name = "d";
    c.snapshot_dir_host = (char *)fz_dir();
    fz_write("d.extsnap.inexact", data, size);
    snap_inexact m, m2;
    es_err e = {0};
    int r = snap_inexact_load(&c, &m, &e);
    fz_expect(r, &e, "snap_inexact_load");
    if (r == 0) {
        r = snap_inexact_save(&c, &m, &e);
        FZ_ASSERT(r == 0, "a record that was read cannot be written: %s", e.msg);
        r = snap_inexact_load(&c, &m2, &e);
        FZ_ASSERT(r == 0, "a record as written does not read: %s", e.msg);
        entries_same(&m, &m2);
        snap_inexact_clear(&m2);
    }
    snap_inexact_clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    journal(data, size);
    inexact(data, size);
    return 0;
}
