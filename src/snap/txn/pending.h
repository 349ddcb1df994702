/* <snapshot-dir>/<domain>.extsnap-pending/: when libvirtd runs the VM,
 * extsnap writes there what libvirt's files should become (snap/online_libvirt.c)
 * and lists the virsh commands that load them. Once they ran, libvirt's
 * files say what the pending files say and the directory is done with. */
#ifndef ES_SNAP_PENDING_H
#define ES_SNAP_PENDING_H

#include "snap/context.h"

/* Remove the pending directory of c's domain when every file in it is
 * already what libvirt's file of the same name (the config <domain>.xml,
 * a snapshot <name>.xml) says, header comments aside. Best effort: a
 * directory not yet applied, with anything else in it, or that cannot be
 * removed, stays (it holds no state extsnap needs). For writers, under the
 * domain lock. */
void snap_pending_tidy(const snap_ctx *c);

#endif
