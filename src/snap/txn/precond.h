/* What must hold before extsnap changes a domain's files: no libvirt daemon
 * on that root (it keeps its own copy of every file and would overwrite
 * extsnap's changes), and the VM not running (its images are being
 * written). Pid files live under the root; the processes they name are
 * looked up in this system's /proc. */
#ifndef ES_SNAP_PRECOND_H
#define ES_SNAP_PRECOND_H

#include <stdbool.h>
#include <stddef.h>

#include "domxml/domain.h"
#include "util/err.h"

/* Refuse while libvirtd or virtqemud runs: a pid file (<run-dir>/driver.pid,
 * the QEMU driver's own; and when run_dir is the system's /run/libvirt/qemu,
 * /run/libvirtd.pid, /run/virtqemud.pid, /run/libvirt/virtqemud.pid) names
 * a live process called libvirtd/virtqemud. */
int snap_check_no_libvirtd(const char *root, const char *run_dir, es_err *e);

/* Refuse while the VM runs: <run-dir>/<name>.pid names a live process,
 * <run-dir>/<name>.xml (libvirt's status file of a running domain) exists,
 * or a process holds QEMU's image locks on one of its disks' images. */
int snap_check_vm_stopped(const char *root, const char *run_dir, const domxml_domain *config,
                          es_err *e);

/* Refuse (naming the process: pid and command line) when another process
 * holds any of QEMU's image locks on the file at host path: a VM, a backup
 * job or qemu-img uses it, and would see it change or vanish. what is the
 * operation ("delete snapshot s1 ..."), role what it does to the file.
 * A file that cannot be opened passes (reported where it is needed). */
int snap_check_image_unused(const char *host, const char *what, const char *role, es_err *e);

/* The pid in a pid file (host path), or 0 when there is no readable one. */
long snap_read_pid_file(const char *path);
/* Whether process pid lives; its /proc comm (or "") goes to comm. */
bool snap_process_alive(long pid, char *comm, size_t len);

#endif
