/* Printing and running a domain plan on a running VM. */
#include "cmd/online_domain.h"

#include <stdio.h>
#include <string.h>

#include "cmd/json_out.h"
#include "cmd/plan_out.h"
#include "online/online_connect.h"
#include "online/online_settle.h"
#include "snap/txn/plan_json.h"
#include "snap/txn/plan_print.h"

static const char *action_text(const snap_online_action *a, char *buf, size_t len)
{
    switch (a->kind) {
    case SNAP_ONLINE_ACTIVE_COMMIT:
        snprintf(buf, len, "%s: block-commit %s into %s, then switch the disk to it (node %s)",
                 a->disk, a->top, a->base, a->node);
        break;
    case SNAP_ONLINE_INTERMEDIATE_COMMIT:
        snprintf(buf, len, "%s: block-commit %s into %s (node %s); QEMU writes backing file %s",
                 a->disk, a->top, a->base, a->node, a->backing_file);
        break;
    case SNAP_ONLINE_OFFLINE_MERGE:
        snprintf(buf, len, "%s: merge %s into %s here (QEMU does not have them open)", a->disk,
                 a->top, a->base);
        break;
    case SNAP_ONLINE_SNAPSHOT:
        snprintf(buf, len, "%s: switch node %s to the new overlay %s (one transaction)", a->disk,
                 a->node, a->overlay);
        break;
    }
    return buf;
}

static void print_list(const char *title, const es_strv *v)
{
    if (!v->n)
        return;
    printf("%s\n", title);
    for (size_t i = 0; i < v->n; i++)
        printf("  %s\n", v->v[i]);
}

static void print_human(const snap_online *ol, bool dry_run)
{
    char buf[8192];
    printf("Through QEMU (%s, QMP socket %s):\n", ol->vm.holder[0] ? ol->vm.holder : "running",
           ol->sock.path);
    for (size_t i = 0; i < ol->nactions; i++) {
        printf("  %s\n", action_text(&ol->actions[i], buf, sizeof buf));
        for (size_t k = 0; k < ol->actions[i].bitmaps.n; k++)
            printf("    %s\n", ol->actions[i].bitmaps.v[k]);
    }
    if (dry_run)
        return;
    print_list("Kept (not deleted):", &ol->kept);
    if (ol->libvirt_mode) {
        printf("libvirtd runs this VM, so extsnap did not touch libvirt's files.\n");
        print_list("libvirt does not know yet:", &ol->unknown);
        printf("The files it needs are in %s; bring libvirt in line with:\n", ol->pending_dir);
        for (size_t i = 0; i < ol->virsh.n; i++)
            printf("  %s\n", ol->virsh.v[i]);
    }
    print_list("Notes:", &ol->notes);
}

static json_object *strv_json(const es_strv *v)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < v->n; i++)
        es_json_append(a, es_json_str(v->v[i]));
    return a;
}

static json_object *online_json(const snap_online *ol, bool dry_run)
{
    json_object *o = es_json_new_object();
    es_json_add_str(o, "qmp-socket", ol->sock.path);
    es_json_add_str_or_null(o, "qemu-process", ol->vm.holder[0] ? ol->vm.holder : NULL);
    json_object *acts = es_json_new_array();
    for (size_t i = 0; i < ol->nactions; i++) {
        const snap_online_action *a = &ol->actions[i];
        json_object *j = es_json_new_object();
        es_json_add_str(j, "disk", a->disk);
        es_json_add_str(j, "action", snap_online_kind_name(a->kind));
        es_json_add_str_or_null(j, "node", a->node);
        es_json_add_str_or_null(j, "top", a->top);
        es_json_add_str_or_null(j, "base", a->base);
        es_json_add_str_or_null(j, "backing-filename", a->backing_file);
        es_json_add_str_or_null(j, "overlay", a->overlay);
        es_json_add(j, "bitmaps", strv_json(&a->bitmaps));
        es_json_append(acts, j);
    }
    es_json_add(o, "actions", acts);
    if (!dry_run) {
        es_json_add(o, "kept", strv_json(&ol->kept));
        es_json_add_bool(o, "libvirtd", ol->libvirt_mode);
        es_json_add_str_or_null(o, "pending-dir", ol->pending_dir);
        es_json_add(o, "virsh-commands", strv_json(&ol->virsh));
        es_json_add(o, "libvirt-does-not-know", strv_json(&ol->unknown));
        es_json_add(o, "notes", strv_json(&ol->notes));
    }
    return o;
}

static void print_result(const es_domain_opts *o, const snap_plan *p, const snap_online *ol,
                         const char *title, bool dry_run)
{
    if (!o->json) {
        if (!dry_run && es_plan_printed_before(o))
            snap_plan_print_title(stdout, p, title);
        else
            snap_plan_print(stdout, p, title);
        print_human(ol, dry_run);
        return;
    }
    json_object *j = es_plan_json(o, p, dry_run);
    if (!j)
        return;
    es_json_add(j, "online", online_json(ol, dry_run));
    es_json_print(stdout, j);
    fputc('\n', stdout);
    json_object_put(j);
}

/* A run to its end changes the domain's state beyond the plan's files: the
 * operation layer decides how (online_settle.h). */
static int settle(const es_domain_opts *o, snap_ctx *c, const snap_plan *p, int status)
{
    if (status == ES_EXIT_OK && !o->env.dry_run)
        snap_online_settle(c, p);
    return status;
}

/* The commit jobs' progress, into the command's progress meter: phase
 * "commit" of the disk, bytes copied of QEMU's len (which grows while the
 * guest writes). */
typedef struct job_progress {
    const snap_online *ol;
    es_progress_meter *meter;
} job_progress;

static void show_progress(void *opaque, const qmp_job_progress *s)
{
    job_progress *t = opaque;
    const char *disk = s->device, *image = NULL;
    for (size_t i = 0, k = 0; i < t->ol->nactions; i++) {
        const snap_online_action *a = &t->ol->actions[i];
        if (a->kind != SNAP_ONLINE_ACTIVE_COMMIT && a->kind != SNAP_ONLINE_INTERMEDIATE_COMMIT)
            continue;
        if (k++ == s->index) {
            disk = a->disk;
            image = a->top;
        }
    }
    es_progress p = {"commit", disk, image, s->offset < s->len ? s->offset : s->len, s->len};
    es_progress_meter_update(t->meter, &p);
}

static void show_notice(void *opaque, const char *msg)
{
    job_progress *t = opaque;
    es_progress_meter_notice(t->meter, "  note: ", msg);
}

int es_online_run_plan(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c, snap_online *ol,
                       const snap_plan *p)
{
    if (!ol)
        return settle(o, c, p, es_domain_run_plan(cmd, o, c, p));
    es_err e = {0};
    if (snap_online_map(c, ol, p, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (o->env.dry_run) {
        if (!o->env.quiet)
            print_result(o, p, ol, "Plan (dry run, nothing changed):", true);
        return ES_EXIT_OK;
    }
    es_plan_print_before(o, p);
    job_progress tp = {.ol = ol, .meter = o->env.progress.opaque};
    if (tp.meter) {
        ol->progress = show_progress;
        ol->notice = show_notice;
        ol->progress_opaque = &tp;
    }
    snap_online_interrupted = 0;
    snap_online_signals_catch();
    int rc = snap_online_execute(c, ol, p, &e);
    snap_online_signals_restore();
    es_domain_progress_end(o);
    if (rc < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (!o->env.quiet)
        print_result(o, p, ol,
                     !ol->libvirt_mode ? "Done:"
                     : es_plan_printed_before(o)
                         ? "Done in QEMU only (libvirtd runs: the libvirt files of the plan "
                           "above were NOT written, see the end):"
                         : "Done in QEMU only (libvirtd runs: the libvirt files below were NOT "
                           "written, see the end):",
                     false);
    return settle(o, c, p, ES_EXIT_OK);
}
