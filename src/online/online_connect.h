/* Opening the QMP connection of the online commands, and the SIGINT /
 * SIGTERM handling that lets them cancel QEMU's jobs cleanly instead of
 * dying with a job half run. */
#ifndef ES_SNAP_ONLINE_CONNECT_H
#define ES_SNAP_ONLINE_CONNECT_H

#include <signal.h>

#include "qmp/qmp_client.h"
#include "util/err.h"

/* Set (to the signal number) by the handlers snap_online_signals_catch installs. */
extern volatile sig_atomic_t snap_online_interrupted;

/* Catch SIGINT and SIGTERM (without SA_RESTART) into snap_online_interrupted;
 * snap_online_signals_restore puts the previous handlers back. */
void snap_online_signals_catch(void);
void snap_online_signals_restore(void);

/* Connect to the QMP socket at path with timeout_ms per reply (<= 0:
 * QMP_DEFAULT_TIMEOUT_MS) and snap_online_interrupted as the interrupt flag. A
 * refused connection is retried for a moment (QEMU creates the socket file
 * just before it listens). A silent QEMU gets an error saying so. */
int snap_online_connect(const char *path, int timeout_ms, qmp_client **out, es_err *e);

#endif
