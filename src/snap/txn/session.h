/* How every command on a domain starts: open its context (snap/context.h)
 * and, as the command's kind asks, check the preconditions and finish or
 * undo an operation an earlier run left in the journal, so that the
 * command sees the domain at rest. Recovery is a step of the session, not
 * of opening a context: the context knows nothing of journals. */
#ifndef ES_SNAP_SESSION_H
#define ES_SNAP_SESSION_H

#include <stdbool.h>

#include "snap/context.h"
#include "util/err.h"

typedef enum {
    SNAP_OPEN_READ,    /* list, disks: shared lock, no checks, bad files tolerated */
    SNAP_OPEN_WRITE,   /* mutating commands: lock, preconditions, recovery first */
    SNAP_OPEN_WRITE_MARKERS, /* 'current': WRITE, but several snapshots marked current
                                are accepted (it repairs that) */
    SNAP_OPEN_RECOVER, /* recover: lock and preconditions; the caller recovers */
    SNAP_OPEN_ONLINE,  /* lock only: the caller checks the preconditions (the VM may
                          run: src/online), recovers and reloads */
} snap_open_mode;

/* Open the domain arg (a name in the config dir, or a path to its XML) for
 * a command of kind mode. */
int snap_session_begin(const snap_env *env, const char *arg, snap_open_mode mode, snap_ctx **out,
                       es_err *e);

/* An ONLINE context whose VM turned out to be stopped becomes a WRITE one
 * under the same lock: the offline preconditions, recovery of a leftover
 * journal, and the files loaded (what snap_session_begin does for WRITE). */
int snap_session_go_offline(snap_ctx *c, es_err *e);

/* For the readers' reports (list --output=json), as the changing commands
 * would find them: is an interrupted operation's journal waiting to be
 * finished or undone, and does the VM run (run dir, QEMU's image locks)? */
bool snap_session_pending(const snap_ctx *c);
bool snap_session_vm_running(const snap_ctx *c);

#endif
