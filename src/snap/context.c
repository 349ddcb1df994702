#include "snap/context.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domxml/store.h"
#include "util/fsutil.h"
#include "util/readfile.h"
#include "util/str.h"
#include "util/strv.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

void snap_ctx_note(const snap_ctx *c, const char *fmt, ...)
{
    if (c->env->quiet || !c->env->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(c->env->log, "extsnap: %s: ", c->env->cmd ? c->env->cmd : "snap");
    vfprintf(c->env->log, fmt, ap);
    fputc('\n', c->env->log);
    va_end(ap);
}

int snap_ctx_host(const snap_ctx *c, const char *path, char **out, es_err *e)
{
    return es_root_resolve(c->env->root, path, out, e);
}

void snap_ctx_close(snap_ctx *c)
{
    if (!c)
        return;
    snap_lock_release(&c->lock);
    domxml_domain_free(c->config);
    domxml_snapshot_list_free(c->snaps);
    free(c->name);
    free(c->config_path);
    free(c->config_host);
    free(c->snapshot_dir_host);
    free(c->domain_snap_dir);
    free(c->lock_path);
    free(c->journal_path);
    free(c->journal_tmp);
    free(c->recover_cmd);
    free(c);
}

/* The config file's path as seen under the root (what a journal records). */
static int logical_config_path(const snap_ctx *c, const char *arg, es_err *e)
{
    snap_ctx *m = (snap_ctx *)c;
    if (!es_looks_like_path(arg)) {
        const char *dir = c->paths.config_dir ? c->paths.config_dir : DOMXML_DEFAULT_CONFIG_DIR;
        return es_asprintf(&m->config_path, e, "%s/%s.xml", dir, c->name);
    }
    if (arg[0] == '/')
        return es_strdup(arg, &m->config_path, e);
    if (c->env->root && c->env->root[0]) /* relative paths are taken from the root */
        return es_asprintf(&m->config_path, e, "/%s", arg);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return es_err_set(e, errno, NULL, "cannot get the current directory");
    return es_asprintf(&m->config_path, e, "%s/%s", cwd, arg);
}

/* One word of a shell command line; quoted (double quotes, so that it can
 * stand inside a message's '...') when the shell would change it. */
static void put_word(FILE *f, const char *w)
{
    bool plain = *w != '\0';
    for (const char *q = w; *q && plain; q++)
        plain = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=,@+%-",
                       *q) != NULL;
    fputc(' ', f);
    if (plain) {
        fputs(w, f);
        return;
    }
    fputc('"', f);
    for (const char *q = w; *q; q++) {
        if (strchr("\"\\$`", *q))
            fputc('\\', f);
        fputc(*q, f);
    }
    fputc('"', f);
}

static void put_option(FILE *f, const char *name, const char *value)
{
    if (!value || !*value)
        return;
    put_word(f, name);
    put_word(f, value);
}

/* Everything that located the domain and its VM in this run: recover
 * reaches the same files and the same QEMU with it. */
static void make_recover_cmd(snap_ctx *c, const char *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    fputs("extsnap recover", f);
    put_option(f, "--root", c->env->root);
    put_option(f, "--config-dir", c->env->config_dir);
    put_option(f, "--snapshot-dir", c->env->snapshot_dir);
    put_option(f, "--run-dir", c->env->run_dir);
    put_option(f, "--swtpm-dir", c->env->swtpm_dir);
    put_option(f, "--qmp", c->env->qmp);
    put_word(f, es_looks_like_path(arg) ? c->config_path : c->name);
    if (fclose(f) == 0)
        c->recover_cmd = text;
    else
        free(text);
}

const char *snap_ctx_recover_cmd(const snap_ctx *c)
{
    return c->recover_cmd ? c->recover_cmd : "extsnap recover DOMAIN";
}

int snap_ctx_reload(snap_ctx *c, snap_load_mode mode, es_err *e)
{
    domxml_domain_free(c->config);
    c->config = NULL;
    domxml_snapshot_list_free(c->snaps);
    c->snaps = NULL;
    if (domxml_domain_load(c->config_host, &c->config, e) < 0)
        return -1;
    if (strcmp(c->config->name, c->name) != 0)
        return es_err_set(e, 0, c->config_host, "now defines domain '%s', not '%s'",
                          c->config->name, c->name);
    bool strict = mode != SNAP_LOAD_TOLERANT;
    unsigned check = DOMXML_CHECK_ALLOW_NO_CURRENT |
                     (mode == SNAP_LOAD_MARKERS ? DOMXML_CHECK_ALLOW_MANY_CURRENT : 0);
    if (domxml_snapshots_load(&c->paths, c->name, strict ? 0 : DOMXML_LOAD_SKIP_BAD, &c->snaps,
                              e) < 0)
        return -1;
    if (strict && domxml_snapshot_list_check(c->snaps, check, e) < 0)
        return es_err_prefix(e, "snapshot metadata of domain %s is inconsistent (fix it first, "
                                "e.g. with virsh snapshot-edit or by hand)",
                             c->name);
    return 0;
}

/* <snapshot-dir> must exist to hold the lock; libvirt creates it when it is
 * installed, so only its last component is made here. */
static int ensure_snapshot_dir(snap_ctx *c, es_err *e)
{
    struct stat st;
    if (es_fs_stat(c->snapshot_dir_host, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return es_err_set(e, ENOTDIR, c->snapshot_dir_host, "snapshot directory");
        return 0;
    }
    if (errno != ENOENT)
        return es_err_set(e, errno, c->snapshot_dir_host, "cannot stat the snapshot directory");
    if (es_fs_mkdir(c->snapshot_dir_host, 0755, e) < 0)
        return es_err_prefix(e, "cannot create the snapshot directory");
    char *parent = es_xstrdup(c->snapshot_dir_host);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    int r = es_fs_fsync_dir(parent, e);
    free(parent);
    return r;
}

static int set_paths(snap_ctx *c, es_err *e)
{
    if (es_root_resolve(c->env->root, c->snapshot_dir, &c->snapshot_dir_host, e) < 0 ||
        es_asprintf(&c->domain_snap_dir, e, "%s/%s", c->snapshot_dir, c->name) < 0 ||
        es_asprintf(&c->lock_path, e, "%s/%s.extsnap.lock", c->snapshot_dir_host, c->name) < 0 ||
        es_asprintf(&c->journal_path, e, "%s/%s.extsnap.journal", c->snapshot_dir_host,
                      c->name) < 0 ||
        es_asprintf(&c->journal_tmp, e, "%s/.%s.extsnap.journal.tmp", c->snapshot_dir_host,
                      c->name) < 0)
        return -1;
    return 0;
}

int snap_ctx_open_locked(const snap_env *env, const char *arg, bool writer, snap_ctx **out,
                         es_err *e)
{
    *out = NULL;
    snap_ctx *c = es_xcalloc(1, sizeof *c);
    c->env = env;
    c->paths = (domxml_paths){env->root, env->config_dir, env->snapshot_dir};
    c->snapshot_dir = env->snapshot_dir ? env->snapshot_dir : DOMXML_DEFAULT_SNAPSHOT_DIR;
    c->run_dir = env->run_dir ? env->run_dir : SNAP_DEFAULT_RUN_DIR;
    bool exclusive_now = writer && !env->dry_run;

    domxml_domain *d = NULL;
    if (domxml_domain_locate(&c->paths, arg, &d, &c->config_host, e) < 0)
        goto fail;
    c->config = d;
    if (es_strdup(d->name, &c->name, e) < 0 || logical_config_path(c, arg, e) < 0 ||
        set_paths(c, e) < 0)
        goto fail;
    make_recover_cmd(c, arg);
    if (exclusive_now && ensure_snapshot_dir(c, e) < 0)
        goto fail;
    /* A dry run is refused when the real run would be: it tries the writer's
     * lock too, but creates no lock file (nobody holds one that is not there). */
    bool exclusive = exclusive_now || (writer && es_path_exists(c->lock_path));
    if (snap_lock_take(c->lock_path, c->name, exclusive, &c->lock, e) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    snap_ctx_close(c);
    return -1;
}
