#include "online/online_state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snap/txn/precond.h"
#include "util/fileio.h"
#include "util/imglock.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/strv.h"

static int run_dir_file(const snap_ctx *c, const char *suffix, char **host, es_err *e)
{
    char *logical;
    if (es_asprintf(&logical, e, "%s/%s%s", c->run_dir, c->name, suffix) < 0)
        return -1;
    int r = es_root_resolve(c->env->root, logical, host, e);
    free(logical);
    return r;
}

static int check_run_dir(const snap_ctx *c, snap_vm_state *st, es_err *e)
{
    char *host;
    if (run_dir_file(c, ".pid", &host, e) < 0)
        return -1;
    long pid = snap_read_pid_file(host);
    char comm[64];
    if (pid && snap_process_alive(pid, comm, sizeof comm)) {
        st->running = true;
        st->pid = pid;
        snprintf(st->holder, sizeof st->holder, "pid %ld (%s)", pid, comm[0] ? comm : "?");
        snprintf(st->sign, sizeof st->sign, "%s names live process %ld", host, pid);
    }
    free(host);
    if (st->running)
        return 0;
    if (run_dir_file(c, ".xml", &host, e) < 0)
        return -1;
    struct stat sb;
    if (es_fs_lstat(host, &sb) == 0) {
        st->running = true;
        snprintf(st->sign, sizeof st->sign, "libvirt's status file %s exists", host);
    }
    free(host);
    return 0;
}

static int check_locks(const snap_ctx *c, snap_vm_state *st, es_err *e)
{
    const domxml_domain *d = c->config;
    for (size_t i = 0; i < d->ndisks && !st->pid; i++) {
        const domxml_disk *k = &d->disks[i];
        if (k->type != DOMXML_STORAGE_FILE || !k->source)
            continue;
        char *host;
        if (es_root_resolve(c->env->root, k->source, &host, e) < 0)
            return -1;
        es_file *f = NULL;
        if (es_file_open(&f, host, O_RDONLY, 0, NULL) == 0) {
            es_lock_holder h = {0};
            es_err le = {0};
            if (es_imglock_probe_write(f->fd, host, &h, &le) < 0 && h.conflict) {
                st->running = true;
                st->pid = h.pid;
                if (h.pid)
                    snprintf(st->holder, sizeof st->holder, "pid %ld (%s)", (long)h.pid,
                             h.cmdline);
                snprintf(st->sign, sizeof st->sign, "disk %s (%s) is locked by %s",
                         k->target_dev, host, h.pid ? st->holder : "another process");
            }
            es_file_close(f);
        }
        free(host);
    }
    return 0;
}

int snap_online_vm_state(const snap_ctx *c, snap_vm_state *st, es_err *e)
{
    memset(st, 0, sizeof *st);
    es_err le;
    es_err_clear(&le);
    if (snap_check_no_libvirtd(c->env->root, c->run_dir, &le) < 0) {
        if (!strstr(le.msg, " is running (pid ")) { /* could not tell: a real error */
            if (e)
                *e = le;
            return -1;
        }
        st->libvirtd = true;
        st->libvirtd_err = le;
    }
    if (check_run_dir(c, st, e) < 0)
        return -1;
    /* The locks also name the process when the pid file does not. */
    if (!st->pid && check_locks(c, st, e) < 0)
        return -1;
    return 0;
}
