/* The plan of a mutating domain operation: everything it will do to files,
 * computed before anything is touched. --dry-run prints it; execution
 * records it in the journal (journal.h) and carries it out (exec.h); an
 * interrupted run is finished or undone from it (recover.h).
 *
 * Paths are as seen under --root (the paths libvirt's files name), so a
 * journal stays valid however the root is mounted when it is recovered.
 *
 * Order of execution (see docs/snap-design.md):
 *   overlays -> vm-state saved -> [phase merge] merges -> rebases -> xml
 *   (config last) -> [phase committed] vm-state restored -> deletes.
 * Before the commit point everything can be undone: overlays are removed,
 * backing pointers and XML files get their old values back. Merges change
 * an image that is kept, so once the first one starts the operation only
 * rolls forward. */
#ifndef ES_SNAP_PLAN_H
#define ES_SNAP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

/* A new qcow2 overlay, created over the image below it. */
typedef struct snap_overlay {
    char *disk;            /* target dev (vda) */
    char *path;            /* the new file */
    char *backing;         /* backing name written into its header (absolute) */
    char *backing_format;  /* qcow2 or raw */
    bool existed_empty;    /* an empty file was there (libvirt pre-creates them);
                              rollback empties it again instead of removing it */
    long long uid, gid;    /* owner to give it (from the image below); -1: leave */
    long long mode;        /* permission bits to give it; -1: leave */
} snap_overlay;

/* Copy everything top holds into base (which survives). Executed by the
 * merge engine (snap_env.merge, exec.h); must be idempotent, as recovery repeats it. */
typedef struct snap_merge {
    char *disk;
    char *top;
    char *base;
    es_strv images;  /* every image whose data goes into base, top first (base
                          not included): what the plan shows. Empty in a journal
                          written before it was recorded. */
} snap_merge;

/* Rewrite the backing file name of an image (qemu-img rebase -u). */
typedef struct snap_rebase {
    char *path;
    char *backing;            /* new name and format */
    char *backing_format;
    char *old_backing;        /* for rollback; NULL: it had none */
    char *old_backing_format;
} snap_rebase;

typedef enum { SNAP_XML_SNAPSHOT, SNAP_XML_CONFIG } snap_xml_kind;

/* One libvirt file written atomically. Texts are kept in full, so both
 * directions can be replayed byte for byte. */
typedef struct snap_xml_write {
    snap_xml_kind kind;
    char *path;         /* the file */
    char *domain;       /* domain name (temporary file name of metadata) */
    char *snapshot;     /* SNAPSHOT: its name */
    char *old_text;     /* NULL: the file did not exist */
    size_t old_len;
    char *new_text;     /* NULL: the file is removed */
    size_t new_len;
    char *summary;      /* what changes, for people ("vda -> /x/vda.s2") */
} snap_xml_write;

/* A file of the VM's state besides its disks (its NVRAM, its vTPM's directory:
 * snap/ops/vmstate.h) copied whole, through a temporary name beside `to` that
 * is renamed over it (util/filecopy.h, util/filetree.h):
 *   - saved with a new snapshot (restore false): `to` is a new copy, made
 *     right after the overlays, before the commit point; rollback removes it;
 *   - put back by revert/refresh (restore true): `to` is the VM's own file,
 *     replaced after the commit point (the old contents are the state being
 *     discarded); recovery repeats it: the copy it reads is never changed. */
typedef struct snap_vmcopy {
    char *what;   /* "nvram" (a file) or "tpm" (swtpm's directory, copied whole) */
    char *from;
    char *to;
    bool restore;
} snap_vmcopy;

/* A file (or a directory tree: a saved vTPM state) removed once the
 * operation is committed. */
typedef struct snap_delete {
    char *path;
    char *reason;
} snap_delete;

typedef struct snap_plan {
    char *op;           /* "create", "revert", ... */
    char *domain;
    char *summary;      /* one line: "create snapshot s2 of domain demo" */
    snap_overlay *overlays;
    size_t noverlays;
    snap_merge *merges;
    size_t nmerges;
    snap_rebase *rebases;
    size_t nrebases;
    snap_xml_write *xml;
    size_t nxml;
    snap_vmcopy *vmcopies;
    size_t nvmcopies;
    snap_delete *deletes;
    size_t ndeletes;
    es_strv notes;     /* things the user should know (kept files ...) */
    char *snapshot_dir_created; /* <snapshot-dir>/<dom> when the plan creates it
                                   (removed again on rollback if empty), else NULL */
} snap_plan;

int snap_plan_new(const char *op, const char *domain, snap_plan **out, es_err *e);
void snap_plan_free(snap_plan *p);

/* Append a copy of each item (strings duplicated). */
int snap_plan_add_overlay(snap_plan *p, const snap_overlay *o, es_err *e);
int snap_plan_add_merge(snap_plan *p, const snap_merge *m, es_err *e);
int snap_plan_add_rebase(snap_plan *p, const snap_rebase *r, es_err *e);
int snap_plan_add_xml(snap_plan *p, const snap_xml_write *w, es_err *e);
int snap_plan_add_vmcopy(snap_plan *p, const snap_vmcopy *c, es_err *e);
int snap_plan_add_delete(snap_plan *p, const char *path, const char *reason, es_err *e);

/* True when nothing would change. */
bool snap_plan_empty(const snap_plan *p);

#endif
