/* A QMP proxy that alters what QEMU says, for the online e2e tests
 * (t_online_trust.sh): extsnap connects to LISTEN, the proxy to QEMU's
 * UPSTREAM socket (one client at a time, as QEMU), and lines pass through
 * unchanged except where a rule applies:
 *
 *   reply:CMD:N:JSON    the Nth CMD request is not passed on: the proxy
 *                       answers it with JSON (an object, e.g. {"return": {}}
 *                       or {"error": {...}}), plus the request's id
 *   after:CMD:N:EVENTS  after QEMU's reply to the Nth CMD, the proxy sends
 *                       EVENTS (event objects separated by '|'), with $JOB
 *                       replaced by the request's job-id argument
 *   sleep:CMD:N:MS      the Nth CMD is handled MS milliseconds late
 *
 * N counts from 1 over the proxy's life (connections included). Every
 * request's command name is appended to LOG, one per line.
 * Usage: qmp_proxy LISTEN UPSTREAM LOG [RULE...] */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#define MAX_RULES 16
#define MAX_LINE (1 << 20)

typedef enum { RULE_REPLY, RULE_AFTER, RULE_SLEEP } rule_kind;

typedef struct rule {
    rule_kind kind;
    char cmd[64];
    unsigned long nth, seen;
    const char *text;
} rule;

static rule rules[MAX_RULES];
static size_t nrules;
static FILE *log_fp;

/* Events waiting for QEMU's reply with this id. */
static char inject_id[256];
static char *inject_text;

typedef struct conn {
    int fd;
    char *buf;
    size_t len;
} conn;

static void die(const char *what)
{
    fprintf(stderr, "qmp_proxy: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the other side went: noticed by poll */
        s += w;
        n -= (size_t)w;
    }
}

static void send_line(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
    send_all(fd, "\r\n", 2);
}

static int unix_socket(const char *path, bool listen_on)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (fd < 0 || strlen(path) >= sizeof sa.sun_path)
        die(path);
    strcpy(sa.sun_path, path);
    if (listen_on) {
        unlink(path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0)
            die(path);
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_events(int fd, const char *text, const char *job)
{
    char *copy = strdup(text), *save = NULL;
    for (char *ev = strtok_r(copy, "|", &save); ev; ev = strtok_r(NULL, "|", &save)) {
        char out[4096];
        size_t n = 0;
        for (const char *p = ev; *p && n + 200 < sizeof out;) {
            if (strncmp(p, "$JOB", 4) == 0) {
                n += (size_t)snprintf(out + n, sizeof out - n, "%s", job);
                p += 4;
            } else {
                out[n++] = *p++;
            }
        }
        out[n] = '\0';
        send_line(fd, out);
    }
    free(copy);
}

/* A request from extsnap: pass it on, or answer it here. */
static void on_request(const char *line, int client, int upstream)
{
    json_object *req = json_tokener_parse(line), *v, *id = NULL, *args = NULL;
    const char *cmd = req && json_object_object_get_ex(req, "execute", &v)
                          ? json_object_get_string(v)
                          : "";
    json_object_object_get_ex(req, "id", &id);
    json_object_object_get_ex(req, "arguments", &args);
    fprintf(log_fp, "%s\n", cmd);
    fflush(log_fp);
    for (size_t i = 0; i < nrules; i++) {
        rule *r = &rules[i];
        if (strcmp(r->cmd, cmd) != 0 || ++r->seen != r->nth)
            continue;
        if (r->kind == RULE_SLEEP) {
            usleep((useconds_t)atoi(r->text) * 1000);
            continue;
        }
        if (r->kind == RULE_REPLY) {
            json_object *ans = json_tokener_parse(r->text);
            if (ans && id)
                json_object_object_add(ans, "id", json_object_get(id));
            send_line(client, ans ? json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PLAIN)
                                  : r->text);
            json_object_put(ans);
            json_object_put(req);
            return;
        }
        const char *job = args && json_object_object_get_ex(args, "job-id", &v)
                              ? json_object_get_string(v)
                              : "";
        snprintf(inject_id, sizeof inject_id, "%s", id ? json_object_get_string(id) : "");
        free(inject_text);
        size_t len = strlen(r->text) + 1;
        inject_text = malloc(len + strlen(job) * 8 + 1);
        /* $JOB is replaced when sent; keep the job id alongside. */
        snprintf(inject_text, len + strlen(job) * 8 + 1, "%s%c%s", job, '\0', r->text);
    }
    send_line(upstream, line);
    json_object_put(req);
}

/* A line from QEMU: pass it on, then the events waiting for this reply. */
static void on_qemu_line(const char *line, int client)
{
    send_line(client, line);
    if (!inject_text)
        return;
    json_object *o = json_tokener_parse(line), *id;
    if (o && json_object_object_get_ex(o, "id", &id) &&
        strcmp(json_object_get_string(id), inject_id) == 0) {
        const char *job = inject_text;
        send_events(client, inject_text + strlen(job) + 1, job);
        free(inject_text);
        inject_text = NULL;
    }
    json_object_put(o);
}

/* Read what is there; hand over each complete line. 0 when the peer closed. */
static int pump(conn *c, void (*each)(const char *, int, int), int a, int b)
{
    if (c->len + 65536 > MAX_LINE)
        return 0;
    ssize_t n = read(c->fd, c->buf + c->len, 65536);
    if (n <= 0)
        return 0;
    c->len += (size_t)n;
    char *nl;
    while ((nl = memchr(c->buf, '\n', c->len))) {
        size_t l = (size_t)(nl - c->buf);
        c->buf[l] = '\0';
        if (l && c->buf[l - 1] == '\r')
            c->buf[l - 1] = '\0';
        each(c->buf, a, b);
        memmove(c->buf, nl + 1, c->len - l - 1);
        c->len -= l + 1;
    }
    return 1;
}

static void request_cb(const char *l, int client, int upstream) { on_request(l, client, upstream); }
static void qemu_cb(const char *l, int client, int unused) { (void)unused; on_qemu_line(l, client); }

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: qmp_proxy LISTEN UPSTREAM LOG [RULE...]\n");
        return 2;
    }
    for (int i = 4; i < argc && nrules < MAX_RULES; i++) {
        rule *r = &rules[nrules];
        char kind[16];
        int off = 0;
        if (sscanf(argv[i], "%15[a-z]:%63[a-z_-]:%lu:%n", kind, r->cmd, &r->nth, &off) != 3 ||
            !off || (strcmp(kind, "reply") && strcmp(kind, "after") && strcmp(kind, "sleep"))) {
            fprintf(stderr, "qmp_proxy: bad rule '%s'\n", argv[i]);
            return 2;
        }
        r->kind = strcmp(kind, "reply") == 0   ? RULE_REPLY
                  : strcmp(kind, "after") == 0 ? RULE_AFTER
                                               : RULE_SLEEP;
        r->text = argv[i] + off;
        nrules++;
    }
    log_fp = fopen(argv[3], "a");
    if (!log_fp)
        die(argv[3]);
    int lfd = unix_socket(argv[1], true);
    conn cl = {.buf = malloc(MAX_LINE)}, up = {.buf = malloc(MAX_LINE)};
    for (;;) {
        cl.fd = accept(lfd, NULL, NULL);
        if (cl.fd < 0) {
            if (errno == EINTR)
                continue;
            die("accept");
        }
        up.fd = unix_socket(argv[2], false);
        cl.len = up.len = 0;
        while (up.fd >= 0) {
            struct pollfd p[2] = {{cl.fd, POLLIN, 0}, {up.fd, POLLIN, 0}};
            if (poll(p, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                die("poll");
            }
            if (p[0].revents && !pump(&cl, request_cb, cl.fd, up.fd))
                break;
            if (p[1].revents && !pump(&up, qemu_cb, cl.fd, 0))
                break;
        }
        close(cl.fd);
        if (up.fd >= 0)
            close(up.fd);
    }
}
