/* Snapshots whose saved state is no longer exact, and what may still be
 * done with them.
 *
 * QEMU 7.2 does not undo a cancelled block-commit: BASE keeps the clusters
 * the job already copied. The images above BASE hide them, so the VM sees
 * no change, but BASE is the saved state of the snapshots the cancelled
 * delete or commit was removing (their frozen images are the merge
 * targets), and a revert to one of them would show a mix of its state and
 * the newer data. QEMU offers no sound way to put BASE back while the VM
 * runs (docs/online.md), so extsnap records those snapshots here and
 * enforces it: revert and refresh to them are refused (unless --force),
 * verify reports them (inexact-snapshot), list marks them. Finishing the
 * operation (the same delete or commit again) removes the snapshots and
 * their record; so does delete --metadata.
 *
 * The record is written before the first commit job starts (state
 * "copying"), so a run killed with QEMU copying leaves it behind; a run
 * that ends knowing the jobs copied nothing puts the previous record back.
 *
 * File: <snapshot-dir>/<domain>.extsnap.inexact, beside the journal (never
 * in <snapshot-dir>/<domain>/, whose every entry libvirt parses), JSON,
 * replaced atomically (temporary file .<domain>.extsnap.inexact.tmp):
 *   {"extsnap-inexact": 1, "snapshots": [{"name", "creation-time",
 *    "state": "copying"|"cancelled", "since" (Unix seconds), "operation",
 *    "command" (delete|commit), "reason" (or null), "images": [merge targets,
 *    as libvirt names them]}]}
 * An entry counts only while a snapshot of that name and creation time
 * exists: a crash between removing the metadata and the record leaves a
 * stale entry, which is ignored (and dropped at the next write). */
#ifndef ES_SNAP_INEXACT_H
#define ES_SNAP_INEXACT_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/snapshot.h"
#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

#define SNAP_INEXACT_VERSION 1

typedef enum {
    SNAP_INEXACT_COPYING,   /* recorded before QEMU copied; the run never said how it ended */
    SNAP_INEXACT_CANCELLED, /* the run ended after QEMU had copied into the images */
} snap_inexact_state;

typedef struct snap_inexact_entry {
    char *name;
    long long creation_time;
    snap_inexact_state state;
    long long since;
    char *operation; /* "the online delete of snapshot s4" */
    char *command;   /* what finishes it: "delete" or "commit" */
    char *reason;    /* why it was cancelled; NULL: not known */
    es_strv images;
} snap_inexact_entry;

typedef struct snap_inexact {
    char *path, *tmp; /* host paths */
    snap_inexact_entry *v;
    size_t n;
} snap_inexact;

/* Read the domain's record (every entry as written; a missing file gives
 * none). A file that does not parse is an error that says so. */
int snap_inexact_load(const snap_ctx *c, snap_inexact *m, es_err *e);
void snap_inexact_clear(snap_inexact *m);

/* Write m (entries that are not valid for c's snapshots, when c has them
 * loaded, are dropped); no entries: the file is removed. */
int snap_inexact_save(const snap_ctx *c, snap_inexact *m, es_err *e);

/* Does x apply to one of c's snapshots (same name and creation time)? */
bool snap_inexact_valid(const snap_ctx *c, const snap_inexact_entry *x);

/* The valid entry for snapshot name, or NULL. */
const snap_inexact_entry *snap_inexact_find(const snap_ctx *c, const snap_inexact *m,
                                            const char *name);

/* Add x (copied), replacing an entry of the same snapshot. */
int snap_inexact_put(snap_inexact *m, const snap_inexact_entry *x, es_err *e);

/* Copy of every entry of src into dst (dst cleared first; paths kept). */
int snap_inexact_copy(snap_inexact *dst, const snap_inexact *src, es_err *e);

/* "the online delete of snapshot s4 was cancelled (reason) after QEMU had
 * started copying into /a, /b, and QEMU does not undo that". */
void snap_inexact_describe(const snap_inexact_entry *x, char *buf, size_t len);

/* After p succeeded: forget the snapshots it removed (and stale entries).
 * Changes nothing when the record holds none of them. */
int snap_inexact_forget(const snap_ctx *c, const snap_plan *p, es_err *e);

/* revert/refresh to t (its saved <domain> supplies the images; target is
 * what the user named, "base" included): refused when t is recorded,
 * unless force (then a note on c's log). */
int snap_inexact_check_revert(const snap_ctx *c, const char *op, const char *target,
                              const domxml_snapshot *t, bool force, es_err *e);

/* Names of the snapshots p removes (metadata files p deletes). */
int snap_plan_removed_snapshots(const snap_plan *p, es_strv *out, es_err *e);

#endif
