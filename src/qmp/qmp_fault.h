/* Fault points of the online path, for tests: stop extsnap (SIGKILL, as
 * if killed) or fail a QMP step at a chosen moment, in the spirit of
 * util/fileio.h's EXTSNAP_FAULT (which only sees file I/O).
 *
 *   EXTSNAP_QMP_FAULT=POINT:N:ACTION[,POINT:N:ACTION...]
 *     POINT  finalize          before the Nth job-finalize is sent (the
 *                              graph of the earlier jobs changed already)
 *            transaction-done  after the Nth QMP transaction succeeded
 *                              (QEMU switched, nothing recorded yet)
 *            bitmaps           before the Nth transaction merging dirty
 *                              bitmaps into BASE (commit jobs pending)
 *     N      1-based count of that point in this process
 *     ACTION kill   SIGKILL to itself: no clean-up, like kill -9
 *            error  the step fails with "injected fault at POINT #N"
 * Unset in normal use: every point is then a no-op. The extsnap binary
 * installs the environment's spec (qmp_fault_install); the library reads
 * no environment. */
#ifndef ES_QMP_FAULT_H
#define ES_QMP_FAULT_H

#include "util/err.h"

/* Count one pass through point; returns -1 (e set) for an injected error,
 * never returns for kill, else 0. */
int qmp_fault_point(const char *point, es_err *e);

/* Add the fault points of spec (the syntax above; NULL or "": none;
 * malformed entries ignored). -1 only when out of memory. */
int qmp_fault_install(const char *spec);

#endif
