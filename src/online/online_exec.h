/* Running a domain plan (commit, delete, create) on a running VM: QEMU
 * changes the live chains through QMP, extsnap then writes the libvirt
 * files and the metadata exactly as the offline path does (same plan, same
 * journal), and removes merged files once QEMU no longer uses them.
 *
 * QEMU's part, per plan item:
 *   merge top -> base, top the disk's active layer: block-commit with pivot;
 *   top deeper in a QEMU chain: intermediate block-commit, QEMU writing into
 *     the image above top the backing name the plan's rebase gives it
 *     (the offline absolute rule);
 *   top not open in QEMU (another branch): the offline merge, as offline;
 *   overlay of create: made by extsnap (the img create engine), then every
 *     disk switched in one QMP transaction (blockdev-snapshot-sync, mode
 *     existing), all or nothing.
 * Several disks commit all or nothing (qmp_commit_run: every job pending
 * before any is finalized). Persistent dirty bitmaps go along as libvirt
 * keeps them (online_bitmaps.h): added to the new overlays in the snapshot
 * transaction; merged into BASE once every job is pending, before the
 * journal's phase "merge".
 *
 * Journal (snap/journal.h), so that an interrupted run is undone or finished
 * by the next command, online or offline:
 *   - while QEMU copies, phase "prepare" holds the plan without its merges
 *     and rebases: QEMU killed (or extsnap stopped) then means the chains on
 *     disk are as they were (nothing pivoted, no backing name rewritten) and
 *     recovery only undoes metadata;
 *   - once every job is pending (BASE holds everything, the disks are
 *     drained) and before QEMU changes any graph, phase "merge" holds the
 *     plan without QEMU's merges: recovery finishes the metadata and the
 *     backing names, with no second copy that could undo the VM's newer
 *     writes into BASE;
 *   - an online recovery (the VM still running) first cancels (prepare) or
 *     finalizes (merge) the jobs extsnap left in QEMU.
 * QEMU does not undo a cancelled commit: BASE keeps what was already copied
 * (the chain above it hides it, so the VM sees no change), so the snapshots
 * being removed, whose saved state BASE is, are recorded as inexact before
 * the jobs start and stay so unless QEMU is known to have copied nothing
 * (snap/inexact.h: revert refuses them, verify reports them).
 *
 * When libvirtd runs (and so runs the VM), libvirt's files are never
 * written: the QMP work is done, the files that would have been written go
 * to <snapshot-dir>/<domain>.extsnap-pending/, and the virsh commands that
 * bring libvirt's persistent view in line are listed; merged files are kept
 * while libvirt's files still name them. */
#ifndef ES_SNAP_ONLINE_EXEC_H
#define ES_SNAP_ONLINE_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "online/online_socket.h"
#include "online/online_state.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_job.h"
#include "snap/context.h"
#include "snap/txn/journal.h"
#include "snap/txn/plan.h"
#include "snap/txn/recover.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

typedef enum {
    SNAP_ONLINE_ACTIVE_COMMIT,       /* block-commit of the active layer, pivot */
    SNAP_ONLINE_INTERMEDIATE_COMMIT, /* block-commit below it, backing name rewritten */
    SNAP_ONLINE_OFFLINE_MERGE,       /* files QEMU does not have open */
    SNAP_ONLINE_SNAPSHOT,            /* blockdev-snapshot-sync in the transaction */
} snap_online_kind;

/* What QEMU is asked to do for one plan item. */
typedef struct snap_online_action {
    snap_online_kind kind;
    char *disk;
    char *node;         /* QEMU's root node of the disk's chain (block-commit device,
                           snapshot node-name); NULL for an offline merge */
    char *top, *base;   /* merges: host paths */
    char *backing_file; /* intermediate: the name QEMU writes */
    char *overlay;      /* snapshot: the new image, as QEMU opens it (host path; with
                           --root, libvirt's path when QEMU sees only those) */
    size_t item;        /* index of the merge (commits) or overlay (snapshot) in the plan */
    size_t rebase;      /* intermediate: index of the rebase QEMU performs, else (size_t)-1 */
    es_strv bitmaps;    /* the dirty-bitmap actions that go with it (online_bitmaps.h),
                           as planned from QEMU's state when mapped */
} snap_online_action;

typedef struct snap_online {
    qmp_client *qmp;
    snap_vm_state vm;
    snap_qmp_socket sock;
    bool libvirt_mode;       /* libvirtd runs the VM: its files are not written */
    snap_online_action *actions;
    size_t nactions;
    char *pending_dir;       /* libvirt mode: where the files went (host path) */
    es_strv virsh;         /* libvirt mode: commands for the user, in order */
    es_strv unknown;       /* libvirt mode: what libvirt does not know yet */
    es_strv kept;          /* files the plan removes but that stay ("path: why") */
    es_strv notes;         /* anything else the user should know */
    bool recovered;          /* an interrupted operation was finished or undone first */
    bool rolled_back;
    char *recovered_summary;
    snap_plan *recovered_plan;   /* the interrupted operation (journal) */
    snap_phase recovered_phase;  /* where it had got to */
    /* Set by the command before snap_online_execute (all optional): */
    qmp_job_progress_fn progress;             /* commit jobs' progress */
    void (*notice)(void *opaque, const char *msg); /* e.g. a speed limit lifted (also
                                                     added to notes) */
    void *progress_opaque;
} snap_online;

/* Open domain dom for a mutating command that can run on a running VM.
 * VM not running: *ol = NULL and *ctx is what snap_session_begin(SNAP_OPEN_WRITE)
 * gives (same refusals, same recovery). VM running: connect to its QMP
 * socket (cli_socket, else the config's: online_socket.h), finish or undo
 * an interrupted operation (QEMU's jobs included), reload; *ol set.
 * Refused, naming the VM's process: no usable socket (libvirt's own monitor
 * is not), QEMU not answering. */
int snap_online_open(const snap_env *env, const char *dom, const char *cli_socket,
                     snap_ctx **ctx, snap_online **ol, es_err *e);
void snap_online_close(snap_online *ol);

/* 'extsnap recover' on a domain whose VM may run. VM shut off: *ctx NULL,
 * nothing done (the caller recovers offline). VM running: connect to its
 * QMP socket (env->qmp, else the config's), finish or undo the interrupted
 * operation as snap_online_open does (QEMU's jobs included; with dry_run
 * only read the journal, refused where the real run would be), fill r, and
 * return the domain in *ctx (locked; caller closes). */
int snap_online_recover_domain(const snap_env *env, const char *dom, snap_ctx **ctx,
                               snap_recovery *r, es_err *e);

/* Work out QEMU's part of p (ol->actions) and check it can be done: every
 * file QEMU has open is changed only by QEMU, every disk found in QEMU. */
int snap_online_map(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e);

/* Carry out p (mapped by snap_online_map) as described above. */
int snap_online_execute(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e);

const char *snap_online_kind_name(snap_online_kind k);

#endif
