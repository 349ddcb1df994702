#include "online/online_socket.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/qemu_cmdline.h"
#include "snap/context.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/xalloc.h"

/* libvirt names a running domain's private directories domain-<id>-<name>,
 * the name cut to this many bytes (virDomainDefGetShortName). */
#define LIBVIRT_SHORT_NAME_MAX 20
#define LIBVIRT_LIB_DIR "/var/lib/libvirt/qemu"

void snap_qmp_socket_clear(snap_qmp_socket *s)
{
    if (!s)
        return;
    free(s->path);
    free(s->origin);
    free(s->unusable);
    free(s->libvirt_monitor);
    memset(s, 0, sizeof *s);
}

/* ---- QEMU's option syntax (QemuOpts): key=value pairs split at ',',
 * ",," a literal comma, a first bare value belonging to an implied key,
 * "flag" meaning flag=on and "noflag" flag=off. The last value of a key
 * wins, as in QEMU. ---- */

/* Next comma-separated piece of *p, unescaped (malloc'd); NULL at the end. */
static char *next_piece(const char **p)
{
    const char *s = *p;
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *out = es_xmalloc(len + 1);
    size_t o = 0;
    for (;;) {
        if (*s == ',' && s[1] == ',') {
            out[o++] = ',';
            s += 2;
        } else if (*s == ',' || *s == '\0') {
            break;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    *p = *s == ',' ? s + 1 : NULL;
    return out;
}

/* Value of key in spec (malloc'd), or NULL. implied: key of a first bare piece. */
static char *opt_get(const char *spec, const char *implied, const char *key)
{
    const char *p = spec;
    char *found = NULL;
    bool first = true;
    char *piece;
    while ((piece = next_piece(&p))) {
        char *eq = strchr(piece, '=');
        const char *k = piece, *v = NULL;
        if (eq) {
            *eq = '\0';
            v = eq + 1;
        } else if (first && implied) {
            k = implied;
            v = piece;
        } else if (strncmp(piece, "no", 2) == 0 && strcmp(piece + 2, key) == 0) {
            k = key;
            v = "off";
        } else {
            v = "on";
        }
        if (strcmp(k, key) == 0) {
            free(found);
            found = es_xstrdup(v);
        }
        first = false;
        free(piece);
    }
    return found;
}

static bool bool_on(const char *v)
{
    return v && (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
                 strcmp(v, "y") == 0);
}

/* ---- candidates ---- */

typedef struct chardev {
    const char *spec;
    char *id;
} chardev;

typedef struct finder {
    char *const *args;
    size_t n;
    chardev *devs;
    size_t ndevs;
    es_strv why; /* reasons for unusable candidates */
} finder;

static bool is_opt(const char *arg, const char *name)
{
    if (arg[0] != '-')
        return false;
    arg += arg[1] == '-' ? 2 : 1; /* QEMU takes -opt and --opt alike */
    return strcmp(arg, name) == 0;
}

static const chardev *find_chardev(const finder *f, const char *id)
{
    for (size_t i = 0; i < f->ndevs; i++)
        if (f->devs[i].id && strcmp(f->devs[i].id, id) == 0)
            return &f->devs[i];
    return NULL;
}

/* Record why a candidate is not usable. */
__attribute__((format(printf, 3, 4))) static int why(finder *f, es_err *e, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return es_strv_add(&f->why, buf, e);
}

/* A usable socket path from the options of a socket chardev (spec in
 * QemuOpts form, implied: its implied key): *path set, or a reason
 * recorded. what describes the option for messages. */
static int socket_path(finder *f, const char *spec, const char *implied, const char *what,
                       char **path, es_err *e)
{
    *path = NULL;
    char *p = opt_get(spec, implied, "path");
    char *server = opt_get(spec, implied, "server");
    int rc = 0;
    if (!p || !p[0])
        rc = why(f, e, "%s is not a UNIX socket (extsnap speaks QMP over UNIX sockets only)",
                 what);
    else if (!bool_on(server))
        rc = why(f, e,
                 "%s has no server=on: QEMU connects out to %s instead of listening on it", what,
                 p);
    else if (p[0] != '/')
        rc = why(f, e,
                 "%s names the relative path %s, which QEMU resolved against its own "
                 "working directory",
                 what, p);
    else {
        *path = p;
        p = NULL;
    }
    free(p);
    free(server);
    return rc;
}

static int from_chardev(finder *f, const char *id, const char *what, char **path, es_err *e)
{
    const chardev *d = find_chardev(f, id);
    if (!d)
        return why(f, e, "%s uses chardev %s, which no -chardev defines", what, id);
    char *backend = opt_get(d->spec, "backend", "backend");
    char desc[512];
    snprintf(desc, sizeof desc, "%s (-chardev %s)", what, d->spec);
    int rc;
    if (!backend || strcmp(backend, "socket") != 0)
        rc = why(f, e, "%s is not a socket chardev", desc);
    else
        rc = socket_path(f, d->spec, "backend", desc, path, e);
    free(backend);
    return rc;
}

/* One QMP monitor option: -qmp SPEC or -mon SPEC. */
static int try_monitor(finder *f, const char *opt, const char *spec, char **path, char **origin,
                       es_err *e)
{
    char what[512];
    snprintf(what, sizeof what, "%s %s", opt, spec);
    int rc = 0;
    if (strcmp(opt, "-mon") == 0) {
        char *mode = opt_get(spec, "chardev", "mode");
        char *dev = opt_get(spec, "chardev", "chardev");
        if (!mode || strcmp(mode, "control") != 0)
            rc = 0; /* a human monitor (HMP), not QMP: not a candidate */
        else if (!dev)
            rc = why(f, e, "%s names no chardev", what);
        else
            rc = from_chardev(f, dev, what, path, e);
        free(mode);
        free(dev);
    } else if (strncmp(spec, "chardev:", 8) == 0) {
        rc = from_chardev(f, spec + 8, what, path, e);
    } else if (strncmp(spec, "unix:", 5) == 0) {
        /* QEMU's legacy form: unix:PATH,opts = socket with an implied path. */
        rc = socket_path(f, spec + 5, "path", what, path, e);
    } else {
        rc = why(f, e, "%s is not a UNIX socket (extsnap speaks QMP over UNIX sockets only)",
                 what);
    }
    if (rc == 0 && *path && es_asprintf(origin, e, "<qemu:commandline> %s", what) < 0) {
        free(*path);
        *path = NULL;
        return -1;
    }
    return rc;
}

int snap_qmp_socket_from_args(char *const *args, size_t n, char **path, char **origin,
                              char **unusable, es_err *e)
{
    *path = *origin = *unusable = NULL;
    finder f = {.args = args, .n = n};
    int rc = 0;
    bool any = false;
    /* Chardevs first: a monitor may name one defined after it. */
    for (size_t i = 0; i + 1 < n && rc == 0; i++) {
        if (!is_opt(args[i], "chardev"))
            continue;
        chardev *nd = f.devs = es_xreallocarray(f.devs, f.ndevs + 1, sizeof *nd);
        nd[f.ndevs].spec = args[i + 1];
        nd[f.ndevs].id = opt_get(args[i + 1], "backend", "id");
        f.ndevs++;
        i++;
    }
    for (size_t i = 0; i + 1 < n && rc == 0 && !*path; i++) {
        const char *opt = NULL;
        if (is_opt(args[i], "qmp") || is_opt(args[i], "qmp-pretty"))
            opt = "-qmp";
        else if (is_opt(args[i], "mon"))
            opt = "-mon";
        if (!opt)
            continue;
        size_t before = f.why.n;
        rc = try_monitor(&f, opt, args[i + 1], path, origin, e);
        any |= *path != NULL || f.why.n != before;
        i++;
    }
    if (rc == 0 && !*path && any && f.why.n) {
        size_t len = 1;
        for (size_t i = 0; i < f.why.n; i++)
            len += strlen(f.why.v[i]) + 2;
        *unusable = es_xmalloc(len);
        (*unusable)[0] = '\0';
        for (size_t i = 0; i < f.why.n; i++) {
            if (i)
                strcat(*unusable, "; ");
            strcat(*unusable, f.why.v[i]);
        }
    }
    for (size_t i = 0; i < f.ndevs; i++)
        free(f.devs[i].id);
    free(f.devs);
    es_strv_free(&f.why);
    if (rc < 0) {
        free(*path);
        free(*origin);
        free(*unusable);
        *path = *origin = *unusable = NULL;
    }
    return rc;
}

/* ---- libvirt's own monitor ---- */

/* Is entry "domain-<digits>-<short name>"? */
static bool is_domain_dir(const char *entry, const char *name)
{
    if (strncmp(entry, "domain-", 7) != 0)
        return false;
    const char *p = entry + 7;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p++ != '-')
        return false;
    size_t nl = strlen(name);
    if (nl > LIBVIRT_SHORT_NAME_MAX)
        nl = LIBVIRT_SHORT_NAME_MAX;
    return strlen(p) == nl && strncmp(p, name, nl) == 0;
}

/* libvirt's monitor.sock for the domain under dir (host path), if any. */
static int monitor_in(const char *root, const char *dir, const char *name, char **out, es_err *e)
{
    char *host;
    if (es_root_resolve(root, dir, &host, e) < 0)
        return -1;
    DIR *d = es_fs_opendir(host);
    if (!d) {
        free(host);
        return 0;
    }
    struct dirent *de;
    int rc = 0;
    while (!*out && rc == 0 && (de = readdir(d))) {
        if (!is_domain_dir(de->d_name, name))
            continue;
        char *sock;
        if (es_asprintf(&sock, e, "%s/%s/monitor.sock", host, de->d_name) < 0) {
            rc = -1;
            break;
        }
        struct stat st;
        if (es_fs_lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode))
            *out = sock;
        else
            free(sock);
    }
    closedir(d);
    free(host);
    return rc;
}

int snap_qmp_socket_find(const domxml_domain *config, const char *cli_path, const char *root,
                         const char *run_dir, snap_qmp_socket *out, es_err *e)
{
    memset(out, 0, sizeof *out);
    if (cli_path) {
        if (es_strdup(cli_path, &out->path, e) < 0 || es_strdup("--qmp", &out->origin, e) < 0)
            goto fail;
        return 0;
    }
    char **args = NULL;
    size_t n = 0;
    if (domxml_qemu_cmdline_args(config->text, config->len, config->origin, &args, &n, e) < 0)
        goto fail;
    char *path = NULL;
    int rc = snap_qmp_socket_from_args(args, n, &path, &out->origin, &out->unusable, e);
    domxml_qemu_args_free(args);
    if (rc < 0)
        goto fail;
    if (path) {
        /* The config names the socket as the VM's host sees it. */
        rc = es_root_resolve(root, path, &out->path, e);
        free(path);
        if (rc < 0)
            goto fail;
        return 0;
    }
    const char *dirs[] = {run_dir ? run_dir : SNAP_DEFAULT_RUN_DIR, LIBVIRT_LIB_DIR};
    for (size_t i = 0; i < 2 && !out->libvirt_monitor; i++)
        if (monitor_in(root, dirs[i], config->name, &out->libvirt_monitor, e) < 0)
            goto fail;
    return 0;
fail:
    snap_qmp_socket_clear(out);
    return -1;
}

int snap_qmp_socket_missing(const snap_qmp_socket *s, const char *domain, const char *holder,
                            es_err *e)
{
    char running[256];
    snprintf(running, sizeof running, "domain %s is running%s%s%s", domain,
             holder ? " (" : "", holder ? holder : "", holder ? ")" : "");
    static const char hint[] =
        "give it a QMP socket of its own (<qemu:commandline> with -qmp "
        "unix:PATH,server=on,wait=off, or --qmp PATH), or shut it down first";
    if (s->unusable)
        return es_err_set(e, 0, NULL, "%s and its QMP socket is not usable: %s; %s", running,
                          s->unusable, hint);
    if (s->libvirt_monitor)
        return es_err_set(e, 0, s->libvirt_monitor,
                          "%s and its only QMP socket is libvirt's monitor, which libvirtd "
                          "holds (QEMU serves one client per socket); %s",
                          running, hint);
    return es_err_set(e, 0, NULL, "%s and has no QMP socket extsnap can use; %s", running, hint);
}
