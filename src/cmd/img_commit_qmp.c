/* extsnap img commit --qmp: block-commit through a running QEMU. */
#include "cmd/img_commit_qmp.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd_env.h"
#include "cmd/domain_opts.h"
#include "cmd/json_out.h"
#include "cmd/progress_opt.h"
#include "qmp/qmp_job.h"
#include "online/online_bitmaps.h"
#include "online/online_exports.h"
#include "online/online_chain.h"
#include "online/online_connect.h"
#include "util/xalloc.h"

/* One object per line, paths without escaped slashes. */
#define JSON_LINE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

typedef struct qmp_commit_cli {
    const char *socket, *device, *node, *base, *top;
    unsigned long long speed;
    int timeout_ms;
    int stall_ms; /* 0: the reply timeout */
    int progress; /* -p / --progress[=MODE]: index in es_progress_choices (0: auto) */
    bool quiet, json;
} qmp_commit_cli;

/* What only the online commit refuses, and its operands. */
static int check_args(const es_cmd *cmd, const es_img_commit_opts *in, int argc, char **argv,
                      qmp_commit_cli *o)
{
    /* QEMU knows each image's format: accept only what it agrees with. */
    if (in->format && strcmp(in->format, "qcow2") != 0)
        return es_cmd_usage_error(cmd, "--qmp: TOP is a qcow2 image in QEMU's chain, not '%s'",
                                  in->format);
    if (in->keep_top)
        return es_cmd_usage_error(cmd, "-d has no meaning with --qmp: QEMU never empties TOP");
    if (in->speed > (unsigned long long)INT64_MAX)
        return es_cmd_usage_error(cmd, "invalid --speed '%llu'", in->speed);
    *o = (qmp_commit_cli){.socket = in->socket, .device = in->device, .node = in->node,
                          .base = in->base, .speed = in->speed, .timeout_ms = in->timeout_ms ? in->timeout_ms : es_env_qmp_timeout_ms(),
                          .stall_ms = in->stall_ms, .progress = in->progress,
                          .quiet = in->quiet, .json = in->json == 1};
    if (argc - optind != 1)
        return es_cmd_usage_error(cmd, argc - optind < 1 ? "TOP is missing" : "too many arguments");
    o->top = argv[optind];
    if (!o->socket || !o->socket[0])
        return es_cmd_usage_error(cmd, "--qmp needs the path of QEMU's QMP socket");
    if (!!o->device == !!o->node)
        return es_cmd_usage_error(cmd, "--qmp needs exactly one of --device and --node");
    return ES_EXIT_OK;
}

/* ---- progress ---- */

typedef struct progress_out {
    const qmp_commit_cli *o;
    es_progress_meter meter; /* the bar or JSON lines on stderr */
    bool shown;
    uint64_t last_offset, last_len; /* last sample printed: repeats are skipped */
    qmp_client *qmp;                 /* for the bitmap merge before finalize */
    const snap_online_commit *oc;
} progress_out;

static void show_progress(void *opaque, const qmp_job_progress *s)
{
    progress_out *p = opaque;
    if (p->shown && s->offset == p->last_offset && s->len == p->last_len)
        return;
    p->shown = true;
    p->last_offset = s->offset;
    p->last_len = s->len;
    if (p->o->json) {
        json_object *l = es_json_new_object();
        es_json_add_str(l, "type", "progress");
        es_json_add_str(l, "job-id", s->job_id);
        es_json_add_str(l, "device", s->device);
        es_json_add_str(l, "status", s->status);
        es_json_add_u64(l, "offset", s->offset);
        es_json_add_u64(l, "len", s->len);
        es_json_add_u64(l, "remaining", s->remaining);
        es_json_add_u64(l, "rate", s->rate);
        es_json_add_u64(l, "speed", s->speed);
        printf("%s\n", json_object_to_json_string_ext(l, JSON_LINE_FLAGS));
        fflush(stdout);
        json_object_put(l);
    }
    es_progress pr = {"commit", s->device, p->o->top, s->offset < s->len ? s->offset : s->len,
                      s->len};
    es_progress_meter_update(&p->meter, &pr);
}

static void show_notice(void *opaque, const char *msg)
{
    progress_out *p = opaque;
    if (p->o->json) {
        json_object *l = es_json_new_object();
        es_json_add_str(l, "type", "notice");
        es_json_add_str(l, "message", msg);
        printf("%s\n", json_object_to_json_string_ext(l, JSON_LINE_FLAGS));
        fflush(stdout);
        json_object_put(l);
    }
    if (p->meter.mode != ES_PROGRESS_NONE)
        es_progress_meter_notice(&p->meter, "extsnap: img commit: note: ", msg);
    else if (!p->o->quiet && !p->o->json)
        fprintf(stderr, "extsnap: img commit: note: %s\n", msg);
}

/* ---- result ---- */

typedef struct merged_file {
    const char *filename;
    snap_file_use use;
    char *node;
} merged_file;

static void print_result_json(const snap_online_commit *oc, const char *status, const es_err *err,
                              const merged_file *files, size_t nfiles, const qmp_commit_cli *o)
{
    json_object *r = es_json_new_object();
    es_json_add_str(r, "type", "result");
    es_json_add_str(r, "status", status);
    es_json_add_str(r, "device", o->device ? o->device : o->node);
    if (oc && oc->chain.n) {
        es_json_add_str(r, "mode", oc->active ? "active" : "intermediate");
        es_json_add_str_or_null(r, "top", oc->chain.nodes[oc->top].filename);
        es_json_add_str_or_null(r, "base", oc->chain.nodes[oc->base].filename);
        es_json_add_str_or_null(r, "backing-filename", oc->backing_file);
    }
    json_object *arr = es_json_new_array();
    for (size_t i = 0; i < nfiles; i++) {
        json_object *f = es_json_new_object();
        es_json_add_str(f, "filename", files[i].filename);
        es_json_add_str(f, "qemu-use", snap_file_use_name(files[i].use));
        es_json_add_str_or_null(f, "node", files[i].node);
        es_json_append(arr, f);
    }
    es_json_add(r, "files", arr);
    if (err) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
        es_json_add_str(r, "error", es_err_str(err, buf, sizeof buf));
    }
    printf("%s\n", json_object_to_json_string_ext(r, JSON_LINE_FLAGS));
    json_object_put(r);
}

static void print_result_human(const snap_online_commit *oc, const merged_file *files,
                               size_t nfiles, const qmp_commit_cli *o)
{
    const char *dev = o->device ? o->device : o->node;
    if (oc->active)
        printf("Image committed: %s now runs on %s.\n", dev, oc->chain.nodes[oc->base].filename);
    else
        printf("Image committed: %s now has backing file %s.\n",
               oc->chain.nodes[oc->top - 1].filename, oc->backing_file);
    bool any_closed = false;
    for (size_t i = 0; i < nfiles; i++)
        any_closed |= files[i].use == SNAP_FILE_CLOSED;
    if (any_closed) {
        printf("No longer used by QEMU (not deleted):");
        for (size_t i = 0; i < nfiles; i++)
            if (files[i].use == SNAP_FILE_CLOSED)
                printf(" %s", files[i].filename);
        printf("\n");
    }
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i].use == SNAP_FILE_IDLE)
            printf("Still open in QEMU as node %s, but nothing uses it (blockdev-del "
                   "releases it): %s\n",
                   files[i].node ? files[i].node : "?", files[i].filename);
        else if (files[i].use == SNAP_FILE_IN_USE)
            printf("Still in use by QEMU (another chain reads it): %s\n", files[i].filename);
    }
}

/* Once the job is pending: no export of the disk appeared while QEMU copied
 * (online_exports.h), then BASE gets TOP's dirty bitmaps (online_bitmaps.h). */
static int merge_bitmaps(void *opaque, es_err *e)
{
    progress_out *p = opaque;
    if (snap_online_exports_refuse_pending(p->qmp, p->oc, 1, e) < 0)
        return -1;
    return snap_online_bitmaps_merge(p->qmp, p->oc, 1, e);
}

static int run_commit(const qmp_commit_cli *o, qmp_client *c, snap_online_commit *oc,
                      merged_file **files, size_t *nfiles, es_err *e)
{
    snap_online_commit_args a = {
        .device = o->device ? o->device : o->node,
        .top = o->top,
        .base = o->base,
        .speed = o->speed,
    };
    if (snap_online_commit_plan(c, &a, oc, e) < 0 ||
        snap_online_bitmaps_refuse(&oc->chain, oc->top, oc->base, a.device, e) < 0 ||
        snap_online_exports_refuse(c, &oc->chain, oc->base, a.device, e) < 0)
        return -1;
    progress_out p = {.o = o};
    es_progress_mode mode = es_progress_opt_mode(o->progress, o->quiet);
    if (o->progress == 0 && o->json)
        mode = ES_PROGRESS_NONE; /* stdout carries the progress lines */
    es_progress_meter_init(&p.meter, mode, stderr);
    bool written = false;
    qmp_job_opts jo = {
        .progress = (mode != ES_PROGRESS_NONE || o->json) ? show_progress : NULL,
        .opaque = &p,
        .poll_interval_ms = 250,
        .stall_ms = o->stall_ms,
        .base_written = &written,
        .notice = show_notice,
        .before_finalize = merge_bitmaps,
    };
    p.qmp = c;
    p.oc = oc;
    int rc = qmp_commit_run(c, &oc->spec, 1, &jo, e);
    es_progress_meter_end(&p.meter);
    if (rc < 0 && written) {
        size_t len = strlen(e->msg);
        snprintf(e->msg + len, sizeof e->msg - len,
                 "; QEMU does not undo a cancelled commit: %s already holds part of the data "
                 "(the images above hide it from the chain's users)",
                 oc->chain.nodes[oc->base].filename ? oc->chain.nodes[oc->base].filename
                                                    : "BASE");
    }
    if (rc < 0)
        return -1;
    size_t first, last;
    snap_online_commit_merged(oc, &first, &last);
    *files = es_xcalloc(last - first + 1, sizeof **files);
    for (size_t i = first; i < last; i++) {
        merged_file *f = &(*files)[(*nfiles)++];
        f->filename = oc->chain.nodes[i].filename;
        if (!f->filename)
            continue;
        if (snap_online_file_use(c, f->filename, NULL, &f->use, &f->node, e) < 0)
            return es_err_prefix(e, "the commit succeeded, but asking QEMU what it still uses "
                                    "failed");
    }
    return 0;
}

int es_img_commit_qmp_run(const es_cmd *cmd, const es_img_commit_opts *in, int argc, char **argv)
{
    qmp_commit_cli o;
    int urc = check_args(cmd, in, argc, argv, &o);
    if (urc != ES_EXIT_OK)
        return urc;
    es_err err;
    es_err_clear(&err);
    snap_online_commit oc;
    memset(&oc, 0, sizeof oc);
    merged_file *files = NULL;
    size_t nfiles = 0;
    qmp_client *c = NULL;

    snap_online_interrupted = 0;
    snap_online_signals_catch();
    int rc = snap_online_connect(o.socket, o.timeout_ms, &c, &err);
    if (rc == 0)
        rc = run_commit(&o, c, &oc, &files, &nfiles, &err);
    qmp_client_close(c);
    snap_online_signals_restore();

    if (o.json)
        print_result_json(&oc, rc == 0 ? "completed"
                               : snap_online_interrupted ? "interrupted"
                                                         : "failed",
                          rc == 0 ? NULL : &err, files, nfiles, &o);
    if (rc < 0)
        es_cmd_error(cmd->name, &err);
    else if (!o.quiet && !o.json)
        print_result_human(&oc, files, nfiles, &o);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i].node);
    free(files);
    snap_online_commit_clear(&oc);
    return rc == 0 ? ES_EXIT_OK : ES_EXIT_FAIL;
}
