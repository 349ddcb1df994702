/* QMP client over a UNIX stream socket: greeting, capability negotiation,
 * commands matched to replies by id, events queued for the caller.
 *
 * Every wait is bounded (poll with a deadline) and checks an optional
 * cancellation flag that the caller sets from a SIGINT/SIGTERM handler.
 * Nothing QEMU sends can crash the client: lines are bounded, and malformed,
 * non-object or incomplete messages become errors.
 *
 * Errors name the socket as their path, e.g.
 *   "/run/vm.qmp: timed out after 30 s waiting for the reply to query-block". */
#ifndef ES_QMP_CLIENT_H
#define ES_QMP_CLIENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "qmp/qmp_msg.h"
#include "util/err.h"

#define QMP_DEFAULT_TIMEOUT_MS 30000
/* query-named-block-nodes on a large VM can be a few MiB; anything longer
 * than this is treated as a broken peer. */
#define QMP_DEFAULT_MAX_LINE (64u * 1024 * 1024)
/* Events kept for the caller; beyond this the oldest are dropped (counted). */
#define QMP_EVENT_QUEUE_MAX 4096

typedef struct qmp_client qmp_client;

typedef struct qmp_client_opts {
    int timeout_ms;                 /* per wait; <= 0 means QMP_DEFAULT_TIMEOUT_MS */
    size_t max_line;                /* 0 means QMP_DEFAULT_MAX_LINE */
    volatile sig_atomic_t *interrupt; /* non-zero = stop waiting ("interrupted"); may be NULL */
} qmp_client_opts;

/* Connect to the QMP socket at path, read the greeting and negotiate
 * capabilities. opts may be NULL. Clear errors for a missing path, a path
 * that is not a socket, a refused connection and a silent peer (QEMU serves
 * one client at a time: a second client never gets a greeting). */
int qmp_client_connect(qmp_client **out, const char *path, const qmp_client_opts *opts,
                       es_err *e);

/* Same over an already connected descriptor (taken over, closed on failure);
 * name is used in messages. For tests and socket activation. */
int qmp_client_open_fd(qmp_client **out, int fd, const char *name,
                       const qmp_client_opts *opts, es_err *e);

void qmp_client_close(qmp_client *c);

/* QEMU version from the greeting. */
void qmp_client_version(const qmp_client *c, int *major, int *minor, int *micro);
const char *qmp_client_name(const qmp_client *c);

/* False once QEMU closed the connection or the stream became unusable. */
bool qmp_client_is_connected(const qmp_client *c);

void qmp_client_set_timeout(qmp_client *c, int timeout_ms);
int qmp_client_timeout(const qmp_client *c);
void qmp_client_set_interrupt(qmp_client *c, volatile sig_atomic_t *flag);
/* True when the caller's interrupt flag is set. */
bool qmp_client_interrupt_pending(const qmp_client *c);
/* While held, waits ignore the interrupt flag: the job driver holds it while
 * it cancels jobs after an interrupt, so the cleanup itself can finish. */
void qmp_client_hold_interrupt(qmp_client *c, bool hold);

/* Run `command` with optional arguments (borrowed; NULL for none). On success
 * *ret (if ret is non-NULL) receives a new reference to the return value.
 * A QMP error reply fails with "QMP command X failed: Class: desc"; its class
 * stays available through qmp_client_last_error_class until the next command. */
int qmp_execute(qmp_client *c, const char *command, json_object *args, json_object **ret,
                es_err *e);

/* Class of the last QMP error reply ("" when the last command did not get one). */
const char *qmp_client_last_error_class(const qmp_client *c);

/* Next event: from the queue, else read until one arrives. Returns 1 with
 * *ev set (free with qmp_msg_free), 0 when timeout_ms passed without one
 * (timeout_ms = 0: only check what is already buffered), -1 on error. */
int qmp_next_event(qmp_client *c, int timeout_ms, qmp_msg **ev, es_err *e);

/* Events dropped because the queue was full. */
size_t qmp_client_events_dropped(const qmp_client *c);

/* Render a duration for messages: "30 s", "0.25 s". */
const char *qmp_format_seconds(int ms, char *buf, size_t len);

#endif
