/* human-monitor-command passthrough (HMP command lines over QMP). */
#ifndef ES_QMP_HMP_H
#define ES_QMP_HMP_H

#include "qmp/qmp_client.h"
#include "util/err.h"

/* Run one HMP command line; *output (if non-NULL) receives what the monitor
 * printed (caller frees). HMP reports most failures as text, not as QMP
 * errors: output starting with "Error: " or "unknown command" is turned
 * into a failure carrying that text.
 * Note: `qemu-io` prints its own results (including "Pattern verification
 * failed") on QEMU's stdout, not into the monitor output, so only its
 * "Error: ..." lines (unknown device, bad arguments) are seen here. */
int qmp_hmp(qmp_client *c, const char *command_line, char **output, es_err *e);

#endif
