/* Planning 'create': an external disk-only snapshot of a shut-off domain,
 * exactly as libvirt 9.0's snapshot-create-as --disk-only makes it
 * (reference libvirt.md §2-3, fixtures 02-04). */
#ifndef ES_SNAP_CREATE_H
#define ES_SNAP_CREATE_H

#include <stdbool.h>

#include "snap/context.h"
#include "snap/txn/plan.h"
#include "util/err.h"
#include "util/str.h"
#include "util/strv.h"

typedef struct snap_create_args {
    const char *name;        /* NULL: the creation time in Unix seconds, as libvirt */
    const char *description; /* NULL: none */
    const es_strv *disks;  /* --disk: snapshot only these targets (NULL or empty: all) */
    bool no_metadata;        /* overlays and config only, as --no-metadata */
    long long now;           /* creation time */
    bool no_vm_state;        /* --no-vm-state: keep no NVRAM copy (snap/ops/vmstate.h) */
    bool vm_running;         /* the VM runs (the disks go through QEMU): VM state is
                                refused, being consistent only while QEMU is stopped */
} snap_create_args;

/* Every writable disk with a local file gets an overlay named as libvirt
 * names it (naming.h), over its current image (absolute backing name as in
 * the config, backing format set, owner and mode of that image); readonly
 * disks, cdroms, empty disks and snapshot='no' disks are left out. Refused:
 * invalid or taken names, block/network disks (libvirt refuses to name
 * their overlays), unknown formats, missing or broken images, an overlay
 * name two disks would share, an existing non-empty overlay file. */
int snap_plan_create(snap_ctx *c, const snap_create_args *a, snap_plan **out, es_err *e);

#endif
