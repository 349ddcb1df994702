/* Connecting to a QMP UNIX socket by path, with errors that say what is
 * wrong: missing, not a socket, nobody listening, backlog full. */
#ifndef ES_QMP_SOCKET_H
#define ES_QMP_SOCKET_H

#include "util/err.h"

/* Connected non-blocking, close-on-exec descriptor, or -1. Paths longer
 * than sun_path allows are reached through /proc/self/fd of their directory. */
int qmp_socket_connect(const char *path, es_err *e);

#endif
