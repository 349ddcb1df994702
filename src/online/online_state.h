/* Is the domain's VM running, and who runs it? The same signs the offline
 * preconditions (precond.h) refuse on, returned instead of refused on, so a
 * mutating command can go through QEMU when the VM runs:
 *   - <run-dir>/<name>.pid names a live process, or libvirt's status file
 *     <run-dir>/<name>.xml exists;
 *   - a process holds QEMU's write locks on one of the disks' images;
 *   - libvirtd or virtqemud runs on that root (then libvirt runs the VM,
 *     and extsnap must not touch libvirt's files). */
#ifndef ES_SNAP_ONLINE_STATE_H
#define ES_SNAP_ONLINE_STATE_H

#include <stdbool.h>

#include "snap/context.h"
#include "util/err.h"

typedef struct snap_vm_state {
    bool running;
    long pid;             /* the VM's process, 0 when unknown */
    char holder[320];     /* "pid 123 (qemu-system-x86)", "" when unknown */
    char sign[512];       /* what showed it runs, for messages */
    bool libvirtd;        /* libvirtd or virtqemud runs on that root */
    es_err libvirtd_err;  /* precond.h's refusal, when libvirtd */
} snap_vm_state;

int snap_online_vm_state(const snap_ctx *c, snap_vm_state *st, es_err *e);

#endif
