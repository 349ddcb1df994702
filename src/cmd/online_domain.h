/* The domain commands that also work on a running VM (create, delete,
 * commit): their common end when the VM runs (snap/online_exec.h does the
 * work), and the --qmp option they take. */
#ifndef ES_CMD_ONLINE_DOMAIN_H
#define ES_CMD_ONLINE_DOMAIN_H

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "online/online_exec.h"

/* --qmp: ES_ONLINE_OPT in cmd/domain_opts.h. */

#define ES_ONLINE_USAGE                                                                        \
    "Running VM: when the VM runs (libvirt's run dir, QEMU's image locks), the\n"            \
    "disks' chains are changed through QEMU's QMP socket, then the config and\n"            \
    "the metadata are written as offline (same plan, same journal): merges are\n"           \
    "block-commit jobs (active commit with pivot for the active layer), new\n"              \
    "overlays are made by extsnap and switched to in one QMP transaction; all\n"            \
    "disks switch together or none does; merged files are deleted once QEMU no\n"           \
    "longer has them open. The socket: --qmp=PATH, else the config's\n"                     \
    "<qemu:commandline> (-qmp unix:PATH,server=on,wait=off, or -chardev\n"                  \
    "socket,id=X,path=PATH,server=on with -mon chardev=X,mode=control); libvirt's\n"         \
    "own monitor socket is held by libvirtd and is not usable. When libvirtd runs\n"        \
    "the VM, libvirt's files are not touched: the files are written to\n"                   \
    "<snapshot-dir>/DOMAIN.extsnap-pending/ and the virsh commands that load them\n"         \
    "are printed. SIGINT/SIGTERM while QEMU copies cancel the jobs and undo the\n"          \
    "operation, but QEMU keeps what it already copied into BASE (hidden by the\n"           \
    "images above it): the snapshots being removed are then recorded as inexact\n"          \
    "(<snapshot-dir>/DOMAIN.extsnap.inexact; revert/refresh to them refused\n"              \
    "without --force, verify reports inexact-snapshot) until the same command\n"            \
    "runs again. Progress on a terminal. Persistent dirty bitmaps are kept as\n"           \
    "libvirt keeps them: each new overlay gets the recording ones of the image\n"          \
    "below (in the snapshot's transaction), and a commit merges TOP's into BASE\n"         \
    "before the disk switches; refused when a bitmap of an image involved is\n"            \
    "inconsistent or in use (busy).\n"                                                      \
    "With --output=json the plan object gets \"online\": {qmp-socket, qemu-process,\n"       \
    "actions[] {disk, action (active-commit, intermediate-commit, offline-merge,\n"          \
    "snapshot), node, top, base, backing-filename, overlay, bitmaps[]}, kept[],\n"           \
    "libvirtd, pending-dir, virsh-commands[], libvirt-does-not-know[], notes[]}.\n"

/* ctx was opened by snap_online_open: ol NULL means the VM is shut off and
 * this is es_domain_run_plan. Otherwise: dry run prints the plan and QEMU's
 * part; else executes it through QEMU and prints what was done, and what
 * libvirt does not know yet when libvirtd runs. Returns the exit status. */
int es_online_run_plan(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c, snap_online *ol,
                       const snap_plan *p);

#endif
