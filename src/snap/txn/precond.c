#include "snap/txn/precond.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "snap/context.h"
#include "util/fileio.h"
#include "util/imglock.h"
#include "util/rootpath.h"
#include "util/str.h"
#include "util/strv.h"

/* The pid in a pid file (host path), or 0 when there is no readable one. */
long snap_read_pid_file(const char *path)
{
    es_file *f = NULL;
    if (es_file_open(&f, path, O_RDONLY, 0, NULL) < 0)
        return 0;
    char buf[32] = {0};
    size_t got = 0;
    int r = es_file_pread_some(f, buf, sizeof buf - 1, 0, &got, NULL);
    es_file_close(f);
    if (r < 0)
        return 0;
    buf[got] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    if (pid <= 0 || (*end && *end != '\n'))
        return 0;
    return pid;
}

/* Is pid alive? Then *comm gets its name (/proc/PID/comm). */
bool snap_process_alive(long pid, char *comm, size_t len)
{
    comm[0] = '\0';
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return false;
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return errno != ENOENT;
    if (fgets(comm, (int)len, fp))
        comm[strcspn(comm, "\n")] = '\0';
    fclose(fp);
    return true;
}

static int resolve_in(const char *root, const char *dir, const char *name, char **out, es_err *e)
{
    char *logical;
    if (es_path_join(dir, name, &logical, e) < 0)
        return -1;
    int r = es_root_resolve(root, logical, out, e);
    free(logical);
    return r;
}

/* Is dir the system daemon's QEMU run dir (/run/libvirt/qemu) under root?
 * Compared as files (device and inode), so that another spelling of it
 * (/var/run/..., a doubled slash, a trailing "/.", a symlink) is it too;
 * by name, trailing slashes and /var/run aside, when either is missing. */
static bool system_run_dir(const char *root, const char *dir)
{
    char *a = NULL, *b = NULL;
    es_err ignored;
    struct stat sa, sb;
    bool same = false, known = false;
    if (es_root_resolve(root, dir, &a, &ignored) == 0 &&
        es_root_resolve(root, SNAP_DEFAULT_RUN_DIR, &b, &ignored) == 0 && stat(a, &sa) == 0 &&
        stat(b, &sb) == 0) {
        known = true;
        same = sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    }
    free(a);
    free(b);
    if (known)
        return same;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n >= 8 && strncmp(dir, "/var/run", 8) == 0) {
        dir += 4;
        n -= 4;
    }
    return n == strlen(SNAP_DEFAULT_RUN_DIR) && strncmp(dir, SNAP_DEFAULT_RUN_DIR, n) == 0;
}

int snap_check_no_libvirtd(const char *root, const char *run_dir, es_err *e)
{
    static const char *const daemons[] = {"libvirtd", "virtqemud"};
    /* The driver's pid file first: the daemon that owns run_dir's files, in
     * system and session mode alike. The system daemons' own pid files
     * only for the system's files: the system libvirtd leaves a session
     * daemon's (another --run-dir) alone. */
    const char *files[] = {NULL, "/run/libvirtd.pid", "/run/virtqemud.pid",
                           "/run/libvirt/virtqemud.pid"};
    size_t nfiles = system_run_dir(root, run_dir) ? 4 : 1;
    char *driver_pid = NULL;
    if (es_path_join(run_dir, "driver.pid", &driver_pid, e) < 0)
        return -1;
    files[0] = driver_pid;
    int rc = 0;
    for (size_t i = 0; i < nfiles && rc == 0; i++) {
        char *host;
        if (es_root_resolve(root, files[i], &host, e) < 0) {
            rc = -1;
            break;
        }
        long pid = snap_read_pid_file(host);
        char comm[64];
        if (pid && snap_process_alive(pid, comm, sizeof comm)) {
            for (size_t d = 0; d < 2; d++) {
                if (strcmp(comm, daemons[d]) != 0)
                    continue;
                /* A session daemon is the user's own process, not a
                 * service: it ends by itself when idle (or is killed). */
                char how[80];
                if (nfiles > 1)
                    snprintf(how, sizeof how, "systemctl stop %s", daemons[d]);
                else
                    snprintf(how, sizeof how, "kill %ld, or wait for it to exit when idle", pid);
                rc = es_err_set(e, 0, host,
                                "%s is running (pid %ld): it keeps its own copy of the domain "
                                "and snapshot files and would overwrite what extsnap writes; "
                                "stop it first (%s) or use virsh",
                                daemons[d], pid, how);
                break;
            }
        }
        free(host);
    }
    free(driver_pid);
    return rc;
}

/* A live process named by <run-dir>/<name>.pid, or libvirt's status file. */
static int check_run_dir(const char *root, const char *run_dir, const char *name, es_err *e)
{
    char *file, *host = NULL;
    if (es_asprintf(&file, e, "%s.pid", name) < 0)
        return -1;
    int rc = resolve_in(root, run_dir, file, &host, e);
    free(file);
    if (rc < 0)
        return -1;
    long pid = snap_read_pid_file(host);
    char comm[64];
    if (pid && snap_process_alive(pid, comm, sizeof comm)) {
        rc = es_err_set(e, 0, host, "domain %s is running (pid %ld, %s); shut it down first", name,
                        pid, comm[0] ? comm : "?");
        free(host);
        return rc;
    }
    free(host);
    host = NULL;
    if (es_asprintf(&file, e, "%s.xml", name) < 0)
        return -1;
    rc = resolve_in(root, run_dir, file, &host, e);
    free(file);
    if (rc < 0)
        return -1;
    struct stat st;
    if (es_fs_lstat(host, &st) == 0)
        rc = es_err_set(e, 0, host,
                        "domain %s has a libvirt status file, so it is running (or libvirt was "
                        "stopped while it ran); shut it down first, or remove the file if the "
                        "VM is certainly not running",
                        name);
    free(host);
    return rc;
}

/* A process holding QEMU's locks on one of the domain's images. */
static int check_image_locks(const char *root, const domxml_domain *d, es_err *e)
{
    for (size_t i = 0; i < d->ndisks; i++) {
        const domxml_disk *k = &d->disks[i];
        if (k->type != DOMXML_STORAGE_FILE || !k->source)
            continue;
        char *host;
        if (es_root_resolve(root, k->source, &host, e) < 0)
            return es_err_prefix(e, "disk %s", k->target_dev);
        es_file *f = NULL;
        if (es_file_open(&f, host, O_RDONLY, 0, NULL) < 0) {
            free(host); /* a missing image is reported where it is needed */
            continue;
        }
        es_lock_holder h = {0};
        es_err le = {0};
        int r = es_imglock_probe_write(f->fd, host, &h, &le);
        es_file_close(f);
        if (r < 0 && h.conflict) {
            if (h.pid)
                r = es_err_set(e, 0, host,
                               "domain %s is running: disk %s is in use by process %ld (%s); "
                               "shut the VM down first",
                               d->name, k->target_dev, (long)h.pid, h.cmdline);
            else
                r = es_err_set(e, 0, host,
                               "domain %s is running: disk %s is locked by another process; "
                               "shut the VM down first",
                               d->name, k->target_dev);
            free(host);
            return r;
        }
        free(host);
        /* A probe that failed for another reason (no OFD locks on this file
         * system) proves nothing either way. */
    }
    return 0;
}

int snap_check_vm_stopped(const char *root, const char *run_dir, const domxml_domain *config,
                          es_err *e)
{
    if (check_run_dir(root, run_dir, config->name, e) < 0)
        return -1;
    return check_image_locks(root, config, e);
}

int snap_check_image_unused(const char *host, const char *what, const char *role, es_err *e)
{
    es_file *f = NULL;
    if (es_file_open(&f, host, O_RDONLY, 0, NULL) < 0)
        return 0; /* a missing image is reported where it is needed */
    es_lock_holder h = {0};
    es_err le = {0};
    /* Every byte QEMU locks: any user at all, reader or writer. */
    int r = es_imglock_probe(f->fd, host, ES_PERM_ALL, ES_PERM_ALL, &h, &le);
    es_file_close(f);
    if (r == 0 || !h.conflict)
        return 0; /* no OFD locks on this file system proves nothing either way */
    if (h.pid)
        return es_err_set(e, 0, host,
                          "cannot %s: %s is in use by process %ld (%s); stop it first; "
                          "nothing was changed",
                          what, role, (long)h.pid, h.cmdline[0] ? h.cmdline : "?");
    return es_err_set(e, 0, host,
                      "cannot %s: %s is in use by another process (it holds QEMU's image "
                      "locks on it); stop it first; nothing was changed",
                      what, role);
}
