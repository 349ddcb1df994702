#include "qmp/qmp_msg.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_json.h"
#include "util/xalloc.h"

#define EXCERPT_MAX 80

static int parse_fail(es_err *e, const char *bytes, size_t len, const char *why)
{
    char ex[EXCERPT_MAX];
    return es_err_set(e, 0, NULL, "malformed QMP message from QEMU: %s (received \"%s\")", why,
                      qmp_json_excerpt(bytes, len, ex, sizeof ex));
}

/* Decode the JSON text; exactly one value, nothing but blanks after it. */
static json_object *decode_json(const char *bytes, size_t len, es_err *e)
{
    if (len > (size_t)INT_MAX - 1) {
        parse_fail(e, bytes, len, "message too long");
        return NULL;
    }
    if (memchr(bytes, '\0', len)) {
        parse_fail(e, bytes, len, "NUL byte in message");
        return NULL;
    }
    /* json-c needs a terminator to finish a trailing number, so parse a copy. */
    char *copy = es_xmalloc(len + 1);
    memcpy(copy, bytes, len);
    copy[len] = '\0';

    json_tokener *tok = es_xcheck(json_tokener_new_ex(QMP_JSON_MAX_DEPTH));
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *obj = json_tokener_parse_ex(tok, copy, (int)len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_success && !obj) {
        parse_fail(e, bytes, len, "not a JSON object"); /* the literal null */
    } else if (jerr != json_tokener_success) {
        bool incomplete = jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof;
        parse_fail(e, bytes, len, incomplete ? "incomplete JSON" : json_tokener_error_desc(jerr));
        json_object_put(obj);
        obj = NULL;
    }
    json_tokener_free(tok);
    free(copy);
    return obj;
}

static size_t trim_length(const char *bytes, size_t len)
{
    while (len > 0) {
        char c = bytes[len - 1];
        if (c != '\n' && c != '\r' && c != ' ' && c != '\t')
            break;
        len--;
    }
    return len;
}

static int int_member(json_object *obj, const char *key, int *out)
{
    json_object *v = qmp_json_member(obj, key, json_type_int);
    if (!v)
        return -1;
    int64_t x = json_object_get_int64(v);
    if (x < 0 || x > INT_MAX)
        return -1;
    *out = (int)x;
    return 0;
}

static int classify_greeting(qmp_msg *m, json_object *qmp, const char *b, size_t n, es_err *e)
{
    json_object *version = qmp_json_member(qmp, "version", json_type_object);
    json_object *qemu = qmp_json_member(version, "qemu", json_type_object);
    if (!qemu || int_member(qemu, "major", &m->version_major) < 0 ||
        int_member(qemu, "minor", &m->version_minor) < 0 ||
        int_member(qemu, "micro", &m->version_micro) < 0)
        return parse_fail(e, b, n, "greeting without version.qemu.{major,minor,micro}");
    m->kind = QMP_MSG_GREETING;
    m->value = qmp;
    return 0;
}

static int classify_event(qmp_msg *m, json_object *root, const char *b, size_t n, es_err *e)
{
    m->event = qmp_json_str(root, "event");
    if (!m->event)
        return parse_fail(e, b, n, "event name is not a string");
    json_object *data = NULL;
    if (json_object_object_get_ex(root, "data", &data) &&
        !json_object_is_type(data, json_type_object))
        return parse_fail(e, b, n, "event data is not an object");
    m->value = data;
    m->ts_seconds = m->ts_microseconds = -1;
    json_object *ts = qmp_json_member(root, "timestamp", json_type_object);
    json_object *sec = qmp_json_member(ts, "seconds", json_type_int);
    json_object *usec = qmp_json_member(ts, "microseconds", json_type_int);
    if (sec && usec) {
        m->ts_seconds = json_object_get_int64(sec);
        m->ts_microseconds = json_object_get_int64(usec);
    }
    m->kind = QMP_MSG_EVENT;
    return 0;
}

static int classify(qmp_msg *m, const char *b, size_t n, es_err *e)
{
    json_object *root = m->root, *v = NULL;
    if (!json_object_is_type(root, json_type_object))
        return parse_fail(e, b, n, "not a JSON object");

    json_object *id = NULL;
    if (json_object_object_get_ex(root, "id", &id)) {
        m->has_id = true;
        if (json_object_is_type(id, json_type_string))
            m->id = json_object_get_string(id);
    }

    bool has_return = json_object_object_get_ex(root, "return", &v);
    json_object *err = NULL;
    bool has_error = json_object_object_get_ex(root, "error", &err);
    if (has_return && has_error)
        return parse_fail(e, b, n, "reply has both return and error");
    if (has_return) {
        m->kind = QMP_MSG_RETURN;
        m->value = v;
        return 0;
    }
    if (has_error) {
        m->error_class = qmp_json_str(err, "class");
        m->error_desc = qmp_json_str(err, "desc");
        if (!m->error_class || !m->error_desc)
            return parse_fail(e, b, n, "error reply without class and desc strings");
        m->kind = QMP_MSG_ERROR;
        return 0;
    }
    if (json_object_object_get_ex(root, "event", &v))
        return classify_event(m, root, b, n, e);
    if (json_object_object_get_ex(root, "QMP", &v)) {
        if (!json_object_is_type(v, json_type_object))
            return parse_fail(e, b, n, "QMP greeting member is not an object");
        return classify_greeting(m, v, b, n, e);
    }
    return parse_fail(e, b, n, "neither a reply, an event nor a greeting");
}

int qmp_msg_parse(const char *bytes, size_t len, qmp_msg **out, es_err *e)
{
    *out = NULL;
    if (!bytes && len)
        return es_err_set(e, 0, NULL, "malformed QMP message from QEMU: no data");
    len = trim_length(bytes, len);
    if (len == 0)
        return es_err_set(e, 0, NULL, "malformed QMP message from QEMU: empty message");

    json_object *root = decode_json(bytes, len, e);
    if (!root)
        return -1;
    qmp_msg *m = es_xcalloc(1, sizeof *m);
    m->root = root;
    if (classify(m, bytes, len, e) < 0) {
        qmp_msg_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void qmp_msg_free(qmp_msg *m)
{
    if (!m)
        return;
    json_object_put(m->root);
    free(m);
}

const char *qmp_msg_kind_name(qmp_msg_kind kind)
{
    switch (kind) {
    case QMP_MSG_GREETING: return "greeting";
    case QMP_MSG_RETURN:   return "return";
    case QMP_MSG_ERROR:    return "error";
    case QMP_MSG_EVENT:    return "event";
    }
    return "unknown";
}
