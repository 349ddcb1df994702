#include "snap/ops/vmstate.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/vmstate_edit.h"
#include "util/fileio.h"
#include "util/fsutil.h"
#include "util/rootpath.h"
#include "util/str.h"

/* Where the system libvirt keeps swtpm's state: <this>/<uuid> (qemu_conf.c,
 * swtpmStorageDir; a session daemon's is $XDG_CONFIG_HOME/libvirt/qemu/swtpm,
 * given with --swtpm-dir; the emulator's <source> of libvirt >= 10.10
 * overrides it, 9.0 has none). */
#define SNAP_SWTPM_STORAGE_DIR "/var/lib/libvirt/swtpm"

/* The two kinds of state, as the plan, the record and messages name them. */
typedef struct vm_item {
    const char *what;   /* plan step kind: "nvram", "tpm" */
    const char *name;   /* for people */
    const char *suffix; /* of the copy: DOMAIN.SNAPSHOT<suffix> */
    bool dir;
} vm_item;

static const vm_item NVRAM = {"nvram", "NVRAM (UEFI variables)", ".nvram", false};
static const vm_item TPM = {"tpm", "vTPM state (swtpm's directory)", ".tpm", true};

void snap_vmstate_copies(const domxml_snapshot *s, const char **nvram, const char **tpm)
{
    *nvram = *tpm = NULL;
    if (!s->domain || !domxml_vmstate_owned(&s->domain->vmstate, s->name, s->creation_time))
        return;
    *nvram = s->domain->vmstate.nvram_copy;
    *tpm = s->domain->vmstate.tpm_copy;
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

/* Is there a file (a directory for it->dir) at path, under the root?
 * *exists false when nothing is; anything else there is an error. */
static int present(const snap_ctx *c, const vm_item *it, const char *path, const char *what,
                   bool *exists, es_err *e)
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
    } else if (it->dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        r = es_err_set(e, 0, host, "%s is not a %s", what, it->dir ? "directory" : "regular file");
    } else {
        *exists = true;
    }
    free(host);
    return r;
}

/* libvirt's form of a uuid (virUUIDFormat): lower case, dashes 8-4-4-4-12. */
static int uuid_format(const char *in, char out[37], es_err *e)
{
    char hex[33];
    size_t n = 0;
    for (const char *p = in; *p && n <= 32; p++)
        if (isxdigit((unsigned char)*p))
            hex[n++] = (char)tolower((unsigned char)*p);
    if (n != 32)
        return es_err_set(e, 0, NULL, "malformed uuid '%s'", in);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return 0;
}

/* The live path of item it in the config, NULL when the domain has none;
 * refusals for what extsnap cannot save. */
static int live_path(const snap_ctx *c, const vm_item *it, char **out, es_err *e)
{
    const domxml_domain *cfg = c->config;
    *out = NULL;
    if (it == &NVRAM) {
        if (cfg->nvram_not_file)
            return es_err_set(e, 0, c->config_host,
                              "domain %s keeps its NVRAM (UEFI variables) in something other "
                              "than a local file (<nvram type=...>), which extsnap cannot save; "
                              "take a disk-only snapshot with --no-vm-state",
                              c->name);
        return cfg->nvram ? es_strdup(cfg->nvram, out, e) : 0;
    }
    if (!cfg->tpm_emulator)
        return 0;
    if (cfg->tpm_source_not_dir)
        return es_err_set(e, 0, c->config_host,
                          "domain %s's vTPM keeps its state in something other than a "
                          "directory (<backend><source type=...>), which extsnap cannot save; "
                          "take a disk-only snapshot with --no-vm-state",
                          c->name);
    if (cfg->tpm_dir)
        return es_strdup(cfg->tpm_dir, out, e);
    char uuid[37];
    if (!cfg->uuid)
        return es_err_set(e, 0, c->config_host,
                          "domain %s has a vTPM but no <uuid>, which names swtpm's state "
                          "directory; take a disk-only snapshot with --no-vm-state",
                          c->name);
    if (uuid_format(cfg->uuid, uuid, e) < 0)
        return -1;
    const char *dir = c->env->swtpm_dir ? c->env->swtpm_dir : SNAP_SWTPM_STORAGE_DIR;
    return es_asprintf(out, e, "%s/%s", dir, uuid);
}

/* One item of create: checks, the copy's name, the plan step; *path and
 * *copy (malloc'd) for the record, NULL when the domain has no such state. */
static int save_item(snap_ctx *c, const vm_item *it, const char *name, snap_plan *p,
                     char **path, char **copy, es_err *e)
{
    *copy = NULL;
    if (live_path(c, it, path, e) < 0)
        return -1;
    if (!*path)
        return 0;
    bool exists = false;
    if ((*path)[0] != '/')
        return es_err_set(e, 0, c->config_host, "the %s path '%s' is not absolute", it->name,
                          *path);
    if (present(c, it, *path, it->dir ? "the vTPM state directory" : "the NVRAM file", &exists,
                e) < 0)
        return -1;
    if (!exists)
        return es_err_set(e, 0, *path,
                          "the %s of domain %s does not exist (libvirt makes it when the VM "
                          "first starts); start the VM once, or take a disk-only snapshot with "
                          "--no-vm-state",
                          it->name, c->name);
    /* Next to the snapshot's images: the first overlay's directory. */
    const char *first = p->overlays[0].path, *slash = strrchr(first, '/');
    if (es_asprintf(copy, e, "%.*s/%s.%s%s", (int)(slash - first), first, c->name, name,
                    it->suffix) < 0)
        return -1;
    char *host = NULL;
    if (es_root_resolve(c->env->root, *copy, &host, e) < 0)
        return -1;
    bool taken = es_path_exists(host);
    free(host);
    if (taken)
        return es_err_set(e, 0, *copy,
                          "the %s of snapshot %s would be copied here, but something is in the "
                          "way; move it, or use --no-vm-state",
                          it->name, name);
    snap_vmcopy v = {.what = (char *)it->what, .from = *path, .to = *copy, .restore = false};
    return snap_plan_add_vmcopy(p, &v, e);
}

int snap_vmstate_plan_save(snap_ctx *c, const char *name, domxml_snapshot *s, bool skip,
                           bool running, snap_plan *p, es_err *e)
{
    const domxml_domain *cfg = c->config;
    /* Whatever the config carried (a record copied from some snapshot's
     * <domain>) is not this snapshot's. */
    if (set_record(s, NULL, e) < 0)
        return -1;
    bool has_nvram = cfg->nvram || cfg->nvram_not_file;
    if (!has_nvram && !cfg->tpm_emulator)
        return 0;
    const char *what = has_nvram && cfg->tpm_emulator ? "NVRAM (UEFI variables) and vTPM state"
                       : has_nvram                    ? "NVRAM (UEFI variables)"
                                                      : "vTPM state";
    if (skip)
        return es_strv_addf(&p->notes, e, "--no-vm-state: the %s is not saved with snapshot %s",
                            what, name);
    if (running)
        return es_err_set(e, 0, NULL,
                          "domain %s is running: its %s is consistent only while QEMU and "
                          "swtpm are stopped; shut it down, or take a disk-only snapshot with "
                          "--no-vm-state",
                          c->name, what);
    if (!s)
        return es_strv_addf(&p->notes, e,
                            "--no-metadata: the %s is not saved (no snapshot metadata to "
                            "record it in)",
                            what);
    domxml_vmstate rec = {.present = true, .snapshot = (char *)name,
                          .creation_time = s->creation_time};
    int r = save_item(c, &NVRAM, name, p, &rec.nvram, &rec.nvram_copy, e);
    if (r == 0)
        r = save_item(c, &TPM, name, p, &rec.tpm, &rec.tpm_copy, e);
    if (r == 0)
        r = set_record(s, &rec, e);
    rec.snapshot = NULL;
    domxml_vmstate_clear(&rec);
    return r;
}

static int restore_item(snap_ctx *c, const vm_item *it, const domxml_snapshot *t,
                        const char *path, const char *copy, bool has_state, bool skip,
                        snap_plan *p, es_err *e)
{
    if (!copy) {
        if (!has_state)
            return 0;
        return es_strv_addf(&p->notes, e,
                            "snapshot %s has no saved %s (taken without it, or not by "
                            "extsnap): it is left as it is",
                            t->name, it->name);
    }
    if (skip)
        return es_strv_addf(&p->notes, e,
                            "--no-vm-state: the %s %s is left as it is (snapshot %s's copy %s "
                            "is not put back)",
                            it->name, path, t->name, copy);
    bool exists = false;
    if (present(c, it, copy, it->dir ? "the saved vTPM state" : "the saved NVRAM copy", &exists,
                e) < 0)
        return -1;
    if (!exists)
        return es_err_set(e, 0, copy,
                          "snapshot %s's saved %s is missing; to go back to its disks and leave "
                          "the %s as it is, use --no-vm-state",
                          t->name, it->name, it->dir ? "vTPM state" : "NVRAM");
    snap_vmcopy v = {.what = (char *)it->what, .from = (char *)copy, .to = (char *)path,
                     .restore = true};
    return snap_plan_add_vmcopy(p, &v, e);
}

int snap_vmstate_plan_restore(snap_ctx *c, const domxml_snapshot *t, bool skip, snap_plan *p,
                              es_err *e)
{
    const char *nvram_copy, *tpm_copy;
    snap_vmstate_copies(t, &nvram_copy, &tpm_copy);
    const domxml_domain *d = t->domain;
    const domxml_vmstate *rec = d ? &d->vmstate : NULL;
    if (!d)
        return 0;
    if (restore_item(c, &NVRAM, t, rec->nvram, nvram_copy, d->nvram || d->nvram_not_file, skip,
                     p, e) < 0)
        return -1;
    return restore_item(c, &TPM, t, rec->tpm, tpm_copy, d->tpm_emulator, skip, p, e);
}

static int drop_one(const domxml_snapshot *s, const char *copy, const char *what, snap_plan *p,
                    es_err *e)
{
    if (!copy)
        return 0;
    char *reason = NULL;
    if (es_asprintf(&reason, e, "snapshot %s's saved %s, gone with the snapshot", s->name,
                    what) < 0)
        return -1;
    int r = snap_plan_add_delete(p, copy, reason, e);
    free(reason);
    return r;
}

int snap_vmstate_plan_drop(snap_ctx *c, const domxml_snapshot *s, snap_plan *p, es_err *e)
{
    (void)c;
    const char *nvram_copy, *tpm_copy;
    snap_vmstate_copies(s, &nvram_copy, &tpm_copy);
    if (drop_one(s, nvram_copy, NVRAM.name, p, e) < 0)
        return -1;
    return drop_one(s, tpm_copy, TPM.name, p, e);
}

int snap_vmstate_note_kept(const domxml_snapshot *s, snap_plan *p, es_err *e)
{
    const char *nvram_copy, *tpm_copy;
    snap_vmstate_copies(s, &nvram_copy, &tpm_copy);
    if (nvram_copy && es_strv_addf(&p->notes, e, "--metadata: snapshot %s's saved %s %s stays",
                                   s->name, NVRAM.name, nvram_copy) < 0)
        return -1;
    if (tpm_copy && es_strv_addf(&p->notes, e, "--metadata: snapshot %s's saved %s %s stays",
                                 s->name, TPM.name, tpm_copy) < 0)
        return -1;
    return 0;
}
