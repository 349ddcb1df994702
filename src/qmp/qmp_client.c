#include "qmp/qmp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qmp/qmp_json.h"
#include "qmp/qmp_socket.h"
#include "util/xalloc.h"

/* Waits poll in slices this long so a cancellation flag set by a signal
 * delivered to another thread is still noticed quickly. */
#define POLL_SLICE_MS 100

struct qmp_client {
    int fd;
    char *name;
    char *rbuf; /* bytes received, not yet consumed */
    size_t rlen, rcap;
    size_t max_line;
    int timeout_ms;
    volatile sig_atomic_t *interrupt;
    bool interrupt_held;
    bool dead;           /* peer closed or stream unusable: no more I/O */
    char dead_reason[160];
    unsigned long long next_id;
    qmp_msg *ev_head, *ev_tail;
    size_t ev_count, ev_dropped;
    int ver_major, ver_minor, ver_micro;
    char last_error_class[64];
};

/* ---- time ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *qmp_format_seconds(int ms, char *buf, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%d s", ms / 1000);
    else
        snprintf(buf, len, "%g s", ms / 1000.0);
    return buf;
}

static int fail_timeout(qmp_client *c, int ms, const char *what, es_err *e)
{
    char secs[32];
    return es_err_set(e, 0, c->name, "timed out after %s waiting for %s",
                      qmp_format_seconds(ms, secs, sizeof secs), what);
}

static int fail_dead(qmp_client *c, const char *what, es_err *e)
{
    return es_err_set(e, 0, c->name, "%s while waiting for %s", c->dead_reason, what);
}

static void mark_dead(qmp_client *c, const char *reason)
{
    if (!c->dead)
        snprintf(c->dead_reason, sizeof c->dead_reason, "%s", reason);
    c->dead = true;
}

bool qmp_client_interrupt_pending(const qmp_client *c)
{
    return c->interrupt && *c->interrupt;
}

static bool interrupted(const qmp_client *c)
{
    return !c->interrupt_held && qmp_client_interrupt_pending(c);
}

static int fail_interrupted(qmp_client *c, const char *what, es_err *e)
{
    return es_err_set(e, 0, c->name, "interrupted while waiting for %s", what);
}

/* Wait until fd is ready for `events` or the deadline passes.
 * Returns 1 ready, 0 deadline passed, -1 error (interrupt included). */
static int wait_fd(qmp_client *c, short events, int64_t deadline, const char *what, es_err *e)
{
    for (;;) {
        if (interrupted(c))
            return fail_interrupted(c, what, e);
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, left < POLL_SLICE_MS ? (int)left : POLL_SLICE_MS);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return es_err_set(e, errno, c->name, "poll on QMP socket");
        }
        if (r > 0)
            return 1; /* POLLHUP/POLLERR: the read or write reports it */
    }
}

/* Name the socket and what we waited for in an error from a lower layer. */
static int add_context(qmp_client *c, const char *what, es_err *e)
{
    if (!e)
        return -1;
    size_t len = strlen(e->msg);
    snprintf(e->msg + len, sizeof e->msg - len, " (while waiting for %s)", what);
    snprintf(e->path, sizeof e->path, "%s", c->name);
    return -1;
}

/* ---- sending ---- */

static int send_all(qmp_client *c, const char *buf, size_t len, int64_t deadline,
                    const char *what, es_err *e)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = send(c->fd, buf + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(c, POLLOUT, deadline, what, e);
            if (r < 0)
                return -1;
            if (r == 0)
                return fail_timeout(c, c->timeout_ms, what, e);
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            mark_dead(c, "QEMU closed the QMP connection");
            return fail_dead(c, what, e);
        }
        return es_err_set(e, n < 0 ? errno : EIO, c->name, "sending to QMP socket");
    }
    return 0;
}

/* ---- receiving ---- */

/* Move the first complete line out of the buffer: *line points into rbuf and
 * stays valid until the next read. Returns 1 when a line was found. */
static int take_line(qmp_client *c, size_t *consumed, size_t *line_len)
{
    char *nl = c->rlen ? memchr(c->rbuf, '\n', c->rlen) : NULL;
    if (!nl)
        return 0;
    *line_len = (size_t)(nl - c->rbuf);
    *consumed = *line_len + 1;
    return 1;
}

static void drop_front(qmp_client *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

static int fill_buffer(qmp_client *c, int64_t deadline, const char *what, int *timed_out,
                       es_err *e)
{
    *timed_out = 0;
    if (c->rlen >= c->max_line) {
        mark_dead(c, "QMP stream unusable after an over-long message");
        return es_err_set(e, 0, c->name,
                          "QMP message longer than %zu bytes while waiting for %s", c->max_line,
                          what);
    }
    if (c->rcap - c->rlen < 4096) {
        size_t cap = c->rcap ? c->rcap * 2 : 65536;
        if (cap > c->max_line + 1)
            cap = c->max_line + 1;
        if (cap > c->rcap) {
            c->rbuf = es_xrealloc(c->rbuf, cap);
            c->rcap = cap;
        }
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 0;
        }
        if (n == 0) {
            mark_dead(c, c->rlen ? "QEMU closed the QMP connection in the middle of a message"
                                 : "QEMU closed the QMP connection");
            return fail_dead(c, what, e);
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int r = wait_fd(c, POLLIN, deadline, what, e);
            if (r < 0)
                return -1;
            if (r == 0) {
                *timed_out = 1;
                return 0;
            }
            continue;
        }
        if (errno == ECONNRESET) {
            mark_dead(c, "QEMU reset the QMP connection");
            return fail_dead(c, what, e);
        }
        return es_err_set(e, errno, c->name, "reading from QMP socket");
    }
}

/* Read the next message. Returns 1 with *out, 0 on deadline, -1 on error. */
static int read_message(qmp_client *c, int64_t deadline, const char *what, qmp_msg **out,
                        es_err *e)
{
    *out = NULL;
    if (c->dead)
        return fail_dead(c, what, e);
    for (;;) {
        size_t consumed, line_len;
        while (take_line(c, &consumed, &line_len)) {
            if (line_len > c->max_line) {
                drop_front(c, consumed);
                return es_err_set(e, 0, c->name,
                                  "QMP message longer than %zu bytes while waiting for %s",
                                  c->max_line, what);
            }
            bool blank = true;
            for (size_t i = 0; i < line_len && blank; i++)
                blank = c->rbuf[i] == ' ' || c->rbuf[i] == '\r' || c->rbuf[i] == '\t';
            if (blank) {
                drop_front(c, consumed);
                continue;
            }
            int rc = qmp_msg_parse(c->rbuf, line_len, out, e);
            drop_front(c, consumed);
            if (rc < 0) /* lines are the framing, so the stream stays in sync */
                return add_context(c, what, e);
            return 1;
        }
        if (interrupted(c))
            return fail_interrupted(c, what, e);
        int timed_out;
        if (fill_buffer(c, deadline, what, &timed_out, e) < 0)
            return -1;
        if (timed_out)
            return 0;
    }
}

/* ---- event queue ---- */

static void queue_event(qmp_client *c, qmp_msg *ev)
{
    if (c->ev_count >= QMP_EVENT_QUEUE_MAX) {
        qmp_msg *old = c->ev_head;
        c->ev_head = old->next;
        if (!c->ev_head)
            c->ev_tail = NULL;
        qmp_msg_free(old);
        c->ev_count--;
        c->ev_dropped++;
    }
    ev->next = NULL;
    if (c->ev_tail)
        c->ev_tail->next = ev;
    else
        c->ev_head = ev;
    c->ev_tail = ev;
    c->ev_count++;
}

static qmp_msg *dequeue_event(qmp_client *c)
{
    qmp_msg *ev = c->ev_head;
    if (!ev)
        return NULL;
    c->ev_head = ev->next;
    if (!c->ev_head)
        c->ev_tail = NULL;
    c->ev_count--;
    ev->next = NULL;
    return ev;
}

size_t qmp_client_events_dropped(const qmp_client *c)
{
    return c->ev_dropped;
}

int qmp_next_event(qmp_client *c, int timeout_ms, qmp_msg **ev, es_err *e)
{
    *ev = dequeue_event(c);
    if (*ev)
        return 1;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        qmp_msg *m;
        int r = read_message(c, deadline, "a QMP event", &m, e);
        if (r <= 0)
            return r;
        if (m->kind == QMP_MSG_EVENT) {
            *ev = m;
            return 1;
        }
        /* A reply nobody waits for (its command timed out earlier): drop it. */
        qmp_msg_free(m);
    }
}

/* ---- commands ---- */

const char *qmp_client_last_error_class(const qmp_client *c)
{
    return c->last_error_class;
}

static char *build_request(const char *command, json_object *args, const char *id)
{
    json_object *req = es_xcheck(json_object_new_object());
    json_object_object_add(req, "execute", json_object_new_string(command));
    if (args)
        json_object_object_add(req, "arguments", json_object_get(args));
    json_object_object_add(req, "id", json_object_new_string(id));
    const char *text = es_xcheck(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
    char *line = es_xasprintf("%s\n", text);
    json_object_put(req);
    return line;
}

/* Is m the reply to the request with this id? QEMU echoes our id; a reply
 * without one means QEMU could not parse the request, which can only be ours. */
static bool reply_matches(const qmp_msg *m, const char *id)
{
    if (!m->has_id)
        return true;
    return m->id && strcmp(m->id, id) == 0;
}

int qmp_execute(qmp_client *c, const char *command, json_object *args, json_object **ret,
                es_err *e)
{
    if (ret)
        *ret = NULL;
    c->last_error_class[0] = '\0';
    char what[160];
    snprintf(what, sizeof what, "the reply to %s", command);
    if (c->dead)
        return fail_dead(c, what, e);

    char id[32];
    snprintf(id, sizeof id, "extsnap-%llu", ++c->next_id);
    char *line = build_request(command, args, id);
    int64_t deadline = now_ms() + c->timeout_ms;
    int rc = send_all(c, line, strlen(line), deadline, what, e);
    free(line);
    if (rc < 0)
        return -1;

    for (;;) {
        qmp_msg *m;
        int r = read_message(c, deadline, what, &m, e);
        if (r < 0)
            return -1;
        if (r == 0)
            return fail_timeout(c, c->timeout_ms, what, e);
        if (m->kind == QMP_MSG_EVENT) {
            queue_event(c, m);
            continue;
        }
        if (m->kind == QMP_MSG_GREETING || !reply_matches(m, id)) {
            qmp_msg_free(m); /* stale reply to an abandoned command */
            continue;
        }
        if (m->kind == QMP_MSG_ERROR) {
            snprintf(c->last_error_class, sizeof c->last_error_class, "%s", m->error_class);
            es_err_set(e, 0, c->name, "QMP command %s failed: %s: %s", command, m->error_class,
                       m->error_desc);
            qmp_msg_free(m);
            return -1;
        }
        if (ret)
            *ret = json_object_get(m->value);
        qmp_msg_free(m);
        return 0;
    }
}

/* ---- connection setup ---- */

static qmp_client *client_new(int fd, const char *name, const qmp_client_opts *opts)
{
    qmp_client *c = es_xcalloc(1, sizeof *c);
    c->name = es_xstrdup(name ? name : "QMP");
    c->fd = fd;
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : QMP_DEFAULT_TIMEOUT_MS;
    c->max_line = opts && opts->max_line ? opts->max_line : QMP_DEFAULT_MAX_LINE;
    c->interrupt = opts ? opts->interrupt : NULL;
    return c;
}

static int handshake(qmp_client *c, es_err *e)
{
    qmp_msg *m;
    int64_t deadline = now_ms() + c->timeout_ms;
    for (;;) {
        int r = read_message(c, deadline, "the QMP greeting", &m, e);
        if (r < 0)
            return -1;
        if (r == 0)
            return fail_timeout(c, c->timeout_ms,
                                "the QMP greeting (QEMU serves one QMP client at a time: is "
                                "another client connected?)",
                                e);
        /* A client that connects while QEMU starts up can get an event (e.g.
         * RESUME) before the greeting [seen with 7.2]: keep it, go on. */
        if (m->kind != QMP_MSG_EVENT)
            break;
        queue_event(c, m);
    }
    if (m->kind != QMP_MSG_GREETING) {
        es_err_set(e, 0, c->name, "expected the QMP greeting, got a QMP %s",
                   qmp_msg_kind_name(m->kind));
        qmp_msg_free(m);
        return -1;
    }
    c->ver_major = m->version_major;
    c->ver_minor = m->version_minor;
    c->ver_micro = m->version_micro;
    qmp_msg_free(m);
    return qmp_execute(c, "qmp_capabilities", NULL, NULL, e);
}

int qmp_client_open_fd(qmp_client **out, int fd, const char *name,
                       const qmp_client_opts *opts, es_err *e)
{
    *out = NULL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int err = errno;
        close(fd);
        return es_err_set(e, err, name, "setting up QMP socket");
    }
    qmp_client *c = client_new(fd, name, opts);
    if (handshake(c, e) < 0) {
        qmp_client_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

int qmp_client_connect(qmp_client **out, const char *path, const qmp_client_opts *opts,
                       es_err *e)
{
    *out = NULL;
    int fd = qmp_socket_connect(path, e);
    if (fd < 0)
        return -1;
    return qmp_client_open_fd(out, fd, path, opts, e);
}

void qmp_client_close(qmp_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    qmp_msg *ev;
    while ((ev = dequeue_event(c)))
        qmp_msg_free(ev);
    free(c->rbuf);
    free(c->name);
    free(c);
}

/* ---- accessors ---- */

void qmp_client_version(const qmp_client *c, int *major, int *minor, int *micro)
{
    if (major)
        *major = c->ver_major;
    if (minor)
        *minor = c->ver_minor;
    if (micro)
        *micro = c->ver_micro;
}

const char *qmp_client_name(const qmp_client *c)
{
    return c->name;
}

bool qmp_client_is_connected(const qmp_client *c)
{
    return !c->dead;
}

void qmp_client_set_timeout(qmp_client *c, int timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : QMP_DEFAULT_TIMEOUT_MS;
}

int qmp_client_timeout(const qmp_client *c)
{
    return c->timeout_ms;
}

void qmp_client_set_interrupt(qmp_client *c, volatile sig_atomic_t *flag)
{
    c->interrupt = flag;
}

void qmp_client_hold_interrupt(qmp_client *c, bool hold)
{
    c->interrupt_held = hold;
}
