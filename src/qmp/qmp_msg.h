/* One QMP message from QEMU, parsed from the bytes of one line.
 * qmp_msg_parse takes raw bytes (no NUL needed) so a fuzz target can call it
 * directly; it never aborts on input and rejects anything that is not one
 * well-formed QMP greeting, reply or event. */
#ifndef ES_QMP_MSG_H
#define ES_QMP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util/err.h"

/* json-c's default nesting limit (32) is too low for query-block on a long
 * backing chain (each image nests its backing-image one level deeper). */
#define QMP_JSON_MAX_DEPTH 1024

typedef enum qmp_msg_kind {
    QMP_MSG_GREETING = 1, /* {"QMP": {"version": ..., "capabilities": [...]}} */
    QMP_MSG_RETURN,       /* {"return": value, "id": ...} */
    QMP_MSG_ERROR,        /* {"error": {"class": ..., "desc": ...}, "id": ...} */
    QMP_MSG_EVENT,        /* {"event": name, "data": {...}, "timestamp": {...}} */
} qmp_msg_kind;

typedef struct qmp_msg {
    qmp_msg_kind kind;
    json_object *root;       /* owns everything the pointers below point into */
    bool has_id;             /* reply carried an "id" member */
    const char *id;          /* the id when it is a string, else NULL */
    json_object *value;      /* RETURN: return value; EVENT: data (NULL if absent) */
    const char *error_class; /* ERROR */
    const char *error_desc;  /* ERROR */
    const char *event;       /* EVENT: name */
    int64_t ts_seconds;      /* EVENT: timestamp, -1 when absent */
    int64_t ts_microseconds;
    int version_major;       /* GREETING: QEMU version */
    int version_minor;
    int version_micro;
    struct qmp_msg *next;    /* link used by the client's event queue */
} qmp_msg;

/* Parse one message from bytes[0..len). Trailing CR/LF and blanks are ignored.
 * On success *out is a new message (free with qmp_msg_free). */
int qmp_msg_parse(const char *bytes, size_t len, qmp_msg **out, es_err *e);

void qmp_msg_free(qmp_msg *m);

const char *qmp_msg_kind_name(qmp_msg_kind kind);

#endif
