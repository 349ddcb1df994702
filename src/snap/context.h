/* A domain as the snapshot manager sees it: where its files are, its
 * config, its snapshots and the per-domain lock. Opening one locates the
 * domain and takes the lock, nothing more: the preconditions and the
 * recovery of an interrupted operation are the session's
 * (snap/txn/session.h), which is how every command on a domain starts. */
#ifndef ES_SNAP_CONTEXT_H
#define ES_SNAP_CONTEXT_H

#include <stdbool.h>
#include <stdio.h>

#include "domxml/domain.h"
#include "domxml/snapshot_list.h"
#include "domxml/store.h"
#include "snap/lock.h"
#include "util/err.h"
#include "util/progress.h"

#define SNAP_DEFAULT_RUN_DIR "/run/libvirt/qemu"

struct snap_merge; /* snap/txn/plan.h */

/* The global options of the domain commands. Directories are as seen under
 * root; NULL means libvirt's default. */
typedef struct snap_env {
    const char *root;
    const char *config_dir;
    const char *snapshot_dir;
    const char *run_dir;
    const char *swtpm_dir; /* swtpm's state directories, <dir>/<uuid> (NULL: the system's) */
    const char *qmp;    /* --qmp: the running VM's QMP socket (NULL: the config's) */
    int qmp_timeout_ms; /* --qmp-timeout: each wait for QEMU's replies (<= 0: QMP's default) */
    int qmp_stall_ms;   /* --stall: commit jobs making no progress this long get their
                           speed limit lifted once, then are cancelled (<= 0: the
                           reply timeout) */
    unsigned long long qmp_speed; /* --speed: commit jobs' rate limit, bytes/s (0: none) */
    /* The merge engine of plans with merges (snap/txn/exec.h's snap_merge_fn;
     * the commands pass snap/txn/merge.h's qcow2 engine, tests their own).
     * NULL: such plans are refused before anything is written. */
    int (*merge)(const char *root, const struct snap_merge *m, const es_progress_sink *pr,
                 es_err *e);
    bool dry_run;
    bool quiet;
    int verbose;
    FILE *log;          /* where recovery and warnings are reported (stderr) */
    const char *cmd;    /* command name, to prefix those messages */
    es_progress_sink progress; /* long work (merges, copies) reports here */
} snap_env;

typedef struct snap_ctx {
    const snap_env *env;
    domxml_paths paths;
    const char *snapshot_dir;   /* with the default applied (under root) */
    const char *run_dir;
    char *name;                 /* the domain's name */
    char *config_path;          /* its config file, as seen under root */
    char *config_host;          /* the same, on this system */
    domxml_domain *config;
    domxml_snapshot_list *snaps;
    char *snapshot_dir_host;    /* <snapshot-dir> on this system */
    char *domain_snap_dir;      /* <snapshot-dir>/<name>, as seen under root */
    char *lock_path;            /* <snapshot-dir>/<name>.extsnap.lock */
    char *journal_path;         /* <snapshot-dir>/<name>.extsnap.journal */
    char *journal_tmp;          /* <snapshot-dir>/.<name>.extsnap.journal.tmp */
    char *recover_cmd;          /* snap_ctx_recover_cmd's text */
    snap_lock lock;
} snap_ctx;

/* Locate the domain arg (a name in the config dir, or a path to its XML),
 * load its config and take its lock: shared for a reader; for a writer
 * exclusive, the snapshot directory made if missing (a dry run creates
 * nothing: it takes the exclusive lock only when the lock file exists,
 * so that it is refused when the real run would be). The snapshots are
 * not loaded yet (snap_ctx_reload). */
int snap_ctx_open_locked(const snap_env *env, const char *arg, bool writer, snap_ctx **out,
                         es_err *e);
/* How snap_ctx_reload checks the snapshots. */
typedef enum snap_load_mode {
    SNAP_LOAD_TOLERANT, /* files libvirt would reject recorded (readers), tree unchecked */
    SNAP_LOAD_STRICT,   /* such files and an inconsistent tree refused (writers) */
    SNAP_LOAD_MARKERS,  /* STRICT, but several current markers accepted: the state
                           'current' repairs */
} snap_load_mode;

/* Read the config and the snapshots again (after recovery changed them). */
int snap_ctx_reload(snap_ctx *c, snap_load_mode mode, es_err *e);
void snap_ctx_close(snap_ctx *c);

/* Host path of a path as seen under the root. */
int snap_ctx_host(const snap_ctx *c, const char *path, char **out, es_err *e);

/* The 'extsnap recover' command line that reaches this domain as this run
 * did (its --root, directories, --qmp and domain argument), for the
 * messages that tell the user to run it. */
const char *snap_ctx_recover_cmd(const snap_ctx *c);

/* Print "extsnap: CMD: " + message on env->log unless quiet. */
void snap_ctx_note(const snap_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
