/* The journal of a running operation: <snapshot-dir>/<domain>.extsnap.journal,
 * a JSON document (json-c) holding the whole plan (XML texts included) and
 * the phase reached. It is replaced atomically at each phase change and
 * removed when the operation is complete, so its presence alone says that
 * an operation was interrupted, and its content says how to finish or undo
 * it (recover.h).
 *
 *   {"extsnap-journal": 1, "pid": N, "started": UNIX-SECONDS,
 *    "phase": "prepare" | "merge" | "committed", "plan": {plan_json.h}} */
#ifndef ES_SNAP_JOURNAL_H
#define ES_SNAP_JOURNAL_H

#include <stdbool.h>

#include "snap/txn/plan.h"
#include "util/err.h"

#define SNAP_JOURNAL_VERSION 1

typedef enum {
    SNAP_PHASE_PREPARE,   /* before the commit point: roll back */
    SNAP_PHASE_MERGE,     /* merging: roll forward only */
    SNAP_PHASE_COMMITTED, /* every file written: finish the clean-up */
} snap_phase;

const char *snap_phase_name(snap_phase p);

/* Host paths of the journal and of its temporary file (same directory). */
typedef struct snap_journal {
    const char *path;
    const char *tmp;
} snap_journal;

int snap_journal_exists(const snap_journal *j, bool *exists, es_err *e);
/* Write (replace) the journal: plan + phase, flushed and renamed in place. */
int snap_journal_write(const snap_journal *j, const snap_plan *p, snap_phase phase, es_err *e);
/* Read it back. A journal that does not parse is an error that says so:
 * nothing is guessed. */
int snap_journal_read(const snap_journal *j, snap_plan **p, snap_phase *phase, es_err *e);
/* Remove it (and a stale temporary file) and sync the directory. */
int snap_journal_remove(const snap_journal *j, es_err *e);

#endif
