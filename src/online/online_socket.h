/* Where extsnap finds a QMP socket for a running domain.
 *
 * QEMU serves one QMP client per socket, and libvirt's own monitor socket
 * (<run-dir>/domain-N-NAME/monitor.sock, /var/lib/libvirt/qemu/domain-N-NAME/
 * monitor.sock) is held by libvirtd for as long as the VM runs, so extsnap
 * needs a socket of its own:
 *   - --qmp PATH on the command line, or
 *   - the domain config's <qemu:commandline> passing QEMU either
 *       -qmp unix:PATH,server=on,wait=off            (also -qmp-pretty), or
 *       -chardev socket,id=X,path=PATH,server=on,...  used by
 *       -mon chardev=X,mode=control                   (or -qmp chardev:X).
 * Sockets that are not server-side UNIX sockets (tcp, server=off) are not
 * usable and the message says why. */
#ifndef ES_SNAP_ONLINE_SOCKET_H
#define ES_SNAP_ONLINE_SOCKET_H

#include <stddef.h>

#include "domxml/domain.h"
#include "util/err.h"

typedef struct snap_qmp_socket {
    char *path;            /* socket to connect to (host path), NULL when none */
    char *origin;          /* where it came from, for messages: "--qmp",
                              "<qemu:commandline> -qmp unix:/x,server=on" ... */
    char *unusable;        /* when path is NULL: why the QMP options found in
                              <qemu:commandline> cannot be used, else NULL */
    char *libvirt_monitor; /* libvirt's monitor socket of this domain, when one
                              exists (host path; informative: never usable) */
} snap_qmp_socket;

/* The QMP socket of the domain config (cli_path, when given, wins; it is a
 * path on this system). Paths from the config are resolved under root.
 * run_dir is libvirt's QEMU run dir as seen under root (NULL: the default).
 * Finding nothing is not an error: out->path stays NULL. */
int snap_qmp_socket_find(const domxml_domain *config, const char *cli_path, const char *root,
                         const char *run_dir, snap_qmp_socket *out, es_err *e);
void snap_qmp_socket_clear(snap_qmp_socket *s);

/* The error for a running domain without a usable socket: what the domain
 * has (libvirt's monitor, unusable options) and how to give it one.
 * holder names the VM's process ("pid 123 (qemu-system-x86)"), or NULL. */
int snap_qmp_socket_missing(const snap_qmp_socket *s, const char *domain, const char *holder,
                            es_err *e);

/* The parser behind snap_qmp_socket_find, on QEMU's arguments (exposed for
 * tests): *path (malloc'd) is the first usable QMP socket; else NULL and
 * *unusable (malloc'd, or NULL when there was no QMP option at all) says
 * why. *origin describes the options used. */
int snap_qmp_socket_from_args(char *const *args, size_t n, char **path, char **origin,
                              char **unusable, es_err *e);

#endif
