#include "snap/ops/vmstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/vmstate.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/rootpath.h"
#include "util/str.h"

const char *snap_vmstate_nvram_copy(const domxml_snapshot *s)
{
    if (!s->domain || !domxml_vmstate_owned(&s->domain->vmstate, s->name, s->creation_time))
        return NULL;
    return s->domain->vmstate.nvram_copy;
}

/* s->domain with its record replaced by v (NULL: none). */
static int set_record(domxml_snapshot *s, const domxml_vmstate *v, es_err *e)
{
    if (!s || !s->domain || (!v && !s->domain->vmstate.present))
        return 0;
    domxml_domain *nd = NULL;
    if (domxml_domain_set_vmstate(s->domain, v, &nd, e) < 0)
        return -1;
    domxml_domain_free(s->domain);
    s->domain = nd;
    return 0;
}

/* A regular file at path (under the root)? *exists false when nothing is
 * there; anything else there is an error. */
static int regular_file(const snap_ctx *c, const char *path, const char *what, bool *exists,
                        es_err *e)
{
    char *host = NULL;
    *exists = false;
    if (es_root_resolve(c->env->root, path, &host, e) < 0)
        return -1;
    struct stat st;
    int r = 0;
    if (es_fs_stat(host, &st) < 0) {
        if (errno != ENOENT)
            r = es_err_set(e, errno, host, "cannot examine %s", what);
    } else if (!S_ISREG(st.st_mode)) {
        r = es_err_set(e, 0, host, "%s is not a regular file", what);
    } else {
        *exists = true;
    }
    free(host);
    return r;
}

/* <directory of the first overlay>/<domain>.<snapshot>.nvram */
static int copy_name(const snap_ctx *c, const snap_plan *p, const char *name, char **out,
                     es_err *e)
{
    const char *first = p->overlays[0].path, *slash = strrchr(first, '/');
    return es_asprintf(out, e, "%.*s/%s.%s.nvram", (int)(slash - first), first, c->name, name);
}

int snap_vmstate_plan_save(snap_ctx *c, const char *name, domxml_snapshot *s, bool skip,
                           bool running, snap_plan *p, es_err *e)
{
    const domxml_domain *cfg = c->config;
    /* Whatever the config carried (a record copied from some snapshot's
     * <domain>) is not this snapshot's. */
    if (set_record(s, NULL, e) < 0)
        return -1;
    if (!cfg->nvram && !cfg->nvram_not_file)
        return 0;
    if (skip)
        return es_strv_addf(&p->notes, e,
                            "--no-vm-state: the NVRAM (UEFI variables) is not saved with "
                            "snapshot %s",
                            name);
    if (cfg->nvram_not_file)
        return es_err_set(e, 0, c->config_host,
                          "domain %s keeps its NVRAM (UEFI variables) in something other than "
                          "a local file (<nvram type=...>), which extsnap cannot save; take a "
                          "disk-only snapshot with --no-vm-state",
                          c->name);
    if (running)
        return es_err_set(e, 0, NULL,
                          "domain %s is running: its NVRAM (%s) is consistent only while QEMU "
                          "is stopped; shut it down, or take a disk-only snapshot with "
                          "--no-vm-state",
                          c->name, cfg->nvram);
    if (!s)
        return es_strv_addf(&p->notes, e,
                            "--no-metadata: the NVRAM (UEFI variables) is not saved (no "
                            "snapshot metadata to record it in)");
    bool exists = false;
    if (cfg->nvram[0] != '/')
        return es_err_set(e, 0, c->config_host, "the NVRAM path '%s' is not absolute",
                          cfg->nvram);
    if (regular_file(c, cfg->nvram, "the NVRAM file", &exists, e) < 0)
        return -1;
    if (!exists)
        return es_err_set(e, 0, cfg->nvram,
                          "the NVRAM file of domain %s does not exist (libvirt makes it from "
                          "its template when the VM first starts); start the VM once, or take "
                          "a disk-only snapshot with --no-vm-state",
                          c->name);
    char *copy = NULL;
    if (copy_name(c, p, name, &copy, e) < 0)
        return -1;
    int r = regular_file(c, copy, "the NVRAM copy's name", &exists, e);
    if (r == 0 && exists)
        r = es_err_set(e, 0, copy,
                       "the NVRAM copy of snapshot %s would go here, but a file is in the way; "
                       "move it, or use --no-vm-state",
                       name);
    snap_vmcopy v = {.what = "nvram", .from = cfg->nvram, .to = copy, .restore = false};
    if (r == 0)
        r = snap_plan_add_vmcopy(p, &v, e);
    domxml_vmstate rec = {.present = true, .snapshot = (char *)name,
                          .creation_time = s->creation_time, .nvram = cfg->nvram,
                          .nvram_copy = copy};
    if (r == 0)
        r = set_record(s, &rec, e);
    free(copy);
    return r;
}

int snap_vmstate_plan_restore(snap_ctx *c, const domxml_snapshot *t, bool skip, snap_plan *p,
                              es_err *e)
{
    const char *copy = snap_vmstate_nvram_copy(t);
    const char *nvram = t->domain ? t->domain->nvram : NULL;
    if (!copy) {
        if (!nvram)
            return 0;
        return es_strv_addf(&p->notes, e,
                            "snapshot %s has no saved NVRAM (taken without it, or not by "
                            "extsnap): %s is left as it is",
                            t->name, nvram);
    }
    const domxml_vmstate *rec = &t->domain->vmstate;
    if (skip)
        return es_strv_addf(&p->notes, e,
                            "--no-vm-state: the NVRAM %s is left as it is (snapshot %s's copy "
                            "%s is not put back)",
                            rec->nvram, t->name, copy);
    bool exists = false;
    if (regular_file(c, copy, "the saved NVRAM copy", &exists, e) < 0)
        return -1;
    if (!exists)
        return es_err_set(e, 0, copy,
                          "snapshot %s's saved NVRAM copy is missing; to go back to its disks "
                          "and leave the NVRAM as it is, use --no-vm-state",
                          t->name);
    snap_vmcopy v = {.what = "nvram", .from = (char *)copy, .to = rec->nvram, .restore = true};
    return snap_plan_add_vmcopy(p, &v, e);
}

int snap_vmstate_plan_drop(snap_ctx *c, const domxml_snapshot *s, snap_plan *p, es_err *e)
{
    (void)c;
    const char *copy = snap_vmstate_nvram_copy(s);
    if (!copy)
        return 0;
    char *reason = NULL;
    if (es_asprintf(&reason, e, "snapshot %s's saved NVRAM (its state is gone with it)",
                    s->name) < 0)
        return -1;
    int r = snap_plan_add_delete(p, copy, reason, e);
    free(reason);
    return r;
}
