/* extsnap show: one snapshot, as 'virsh snapshot-info' and (--xml)
 * 'virsh snapshot-dumpxml' show it, with its disks and their images. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/json_out.h"
#include "cmd/table_out.h"
#include "snap/context.h"
#include "snap/graph/parent_disks.h"
#include "snap/ops/inexact.h"
#include "snap/query.h"
#include "snap/txn/session.h"

static int run(int argc, char **argv);

typedef struct show_opts {
    es_domain_opts d;
    bool xml;
} show_opts;

static const es_opt show_table[] = {
    {.name = "xml", .kind = ES_OPT_FLAG, .offset = offsetof(show_opts, xml),
     .help = "print the snapshot's metadata file exactly as stored, byte for byte (what 'virsh snapshot-dumpxml' shows, with libvirt's comment block and <active>)"},
    ES_DOMAIN_OPTS(show_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_show = {
    .name = "show",
    .summary = "show one snapshot (virsh snapshot-info and snapshot-dumpxml)",
    .synopsis = "[OPTIONS] DOMAIN NAME [--xml]",
    .description =
        "Show snapshot NAME of a domain from its libvirt metadata: what 'virsh\n"
        "snapshot-info' prints (Name, Domain, Current, State, Location, Parent,\n"
        "Children, Descendants, Metadata), its creation time and description, and\n"
        "per disk the frozen image (the state at the snapshot, from the saved\n"
        "<domain>) and the overlay (<disks>: the changes after it). With --xml,\n"
        "the metadata file as stored. Changes nothing.\n",
    .details =
        "\n" ES_DOMAIN_ARG_USAGE "\n"
        "Children counts the snapshots whose parent is NAME, Descendants all below\n"
        "it. Location is external when the memory or a disk is an external\n"
        "snapshot, else internal (libvirt's rule).\n"
        "\n"
        "JSON output (--output=json; field names are stable, as in 'extsnap list'):\n"
        "  {domain, name, description (or null), creation-time (Unix seconds), state\n"
        "   (or null), parent (or null), current (bool), location (external|internal),\n"
        "   metadata (true), children [names], descendants [names] (oldest first;\n"
        "   virsh's counts are their lengths), has-domain (bool), inexact (bool),\n"
        "   inexact-reason (or null), disks: [{name, snapshot (external|no|...),\n"
        "   driver-type, source (the overlay), frozen-image, frozen-image-format\n"
        "   (null when the snapshot did not freeze the disk or has no <domain>)}],\n"
        "   revert-disks: [{name, snapshot, driver-type, source}]}\n"
        "--xml and --output=json do not go together.\n",
    .exit_status = "0 shown, 1 failed (no such domain or snapshot), 1 also for a usage error.",
    .opts = show_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

/* What show prints about one snapshot. */
typedef struct show_facts {
    const snap_ctx *c;
    const domxml_snapshot *s;
    domxml_snapshot **kids, **desc;
    size_t nkids, ndesc;
    const snap_inexact_entry *inexact;
    char why[2048];
} show_facts;

/* The image s froze of disk target (its saved <domain>'s source), or NULL
 * when it did not freeze that disk or has no saved <domain>. */
static const domxml_disk *frozen_disk(const domxml_snapshot *s, const char *target)
{
    return snap_froze_disk(s, target) ? snap_query_saved_disk(s, target) : NULL;
}

static json_object *names_json(domxml_snapshot **v, size_t n)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < n; i++)
        es_json_append(a, es_json_str(v[i]->name));
    return a;
}

static json_object *disks_json(const domxml_snapshot *s, const domxml_snap_disk *v, size_t n,
                               bool frozen)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *d = es_json_new_object();
        es_json_add_str(d, "name", v[i].name);
        es_json_add_str(d, "snapshot", snap_query_snap_disk_mode(&v[i]));
        es_json_add_str_or_null(d, "driver-type", v[i].driver_type);
        es_json_add_str_or_null(d, "source", v[i].source);
        if (frozen) {
            const domxml_disk *k = frozen_disk(s, v[i].name);
            es_json_add_str_or_null(d, "frozen-image", k ? k->source : NULL);
            es_json_add_str_or_null(d, "frozen-image-format", k ? k->driver_type : NULL);
        }
        es_json_append(a, d);
    }
    return a;
}

static void print_json(const show_facts *f)
{
    const domxml_snapshot *s = f->s;
    json_object *o = es_json_new_object();
    es_json_add_str(o, "domain", f->c->name);
    es_json_add_str(o, "name", s->name);
    es_json_add_str_or_null(o, "description", s->description);
    es_json_add_i64(o, "creation-time", s->creation_time);
    es_json_add_str_or_null(o, "state", s->state);
    es_json_add_str_or_null(o, "parent", s->parent);
    es_json_add_bool(o, "current", s->current);
    es_json_add_str(o, "location", snap_query_location(s));
    es_json_add_bool(o, "metadata", 1);
    es_json_add(o, "children", names_json(f->kids, f->nkids));
    es_json_add(o, "descendants", names_json(f->desc, f->ndesc));
    es_json_add_bool(o, "has-domain", s->domain != NULL);
    es_json_add_bool(o, "inexact", f->inexact != NULL);
    es_json_add_str_or_null(o, "inexact-reason", f->inexact ? f->why : NULL);
    es_json_add(o, "disks", disks_json(s, s->disks, s->ndisks, true));
    es_json_add(o, "revert-disks", disks_json(s, s->revert_disks, s->nrevert_disks, false));
    es_json_print(stdout, o);
    fputc('\n', stdout);
    json_object_put(o);
}

/* virsh snapshot-info's layout: the label left-aligned in 15 columns. */
static void field(const char *label, const char *value)
{
    printf("%-15s %s\n", label, value);
}

/* A text of several lines: the next ones indented under the first. */
static void field_lines(const char *label, const char *value)
{
    printf("%-15s ", label);
    for (const char *p = value; *p; p++) {
        putchar(*p);
        if (*p == '\n' && p[1])
            printf("%-15s ", "");
    }
    putchar('\n');
}

static void print_human(const show_facts *f)
{
    const domxml_snapshot *s = f->s;
    char buf[64];
    field("Name:", s->name);
    field("Domain:", f->c->name);
    field("Current:", s->current ? "yes" : "no");
    field("State:", s->state ? s->state : "-");
    field("Location:", snap_query_location(s));
    field("Parent:", s->parent ? s->parent : "-");
    snprintf(buf, sizeof buf, "%zu", f->nkids);
    field("Children:", buf);
    snprintf(buf, sizeof buf, "%zu", f->ndesc);
    field("Descendants:", buf);
    field("Metadata:", "yes");
    time_t tt = (time_t)s->creation_time;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm))
        snprintf(buf, sizeof buf, "%lld", s->creation_time);
    field("Creation Time:", buf);
    field_lines("Description:", s->description ? s->description : "-");
    field("Saved domain:", s->domain ? "yes" : "no (cannot be reverted to)");
    if (f->inexact)
        field_lines("Inexact:", f->why);
    if (!s->ndisks)
        return;
    putchar('\n');
    bool rd = s->nrevert_disks > 0;
    es_table t;
    es_table_init(&t, rd ? 5 : 4);
    es_table_add(&t, (const char *const[]){"Disk", "Snapshot", "Frozen image", "Overlay",
                                           "Revert overlay"});
    for (size_t i = 0; i < s->ndisks; i++) {
        const domxml_snap_disk *d = &s->disks[i];
        const domxml_disk *k = frozen_disk(s, d->name);
        const domxml_snap_disk *r =
            rd ? domxml_snap_disk_find(s->revert_disks, s->nrevert_disks, d->name) : NULL;
        es_table_add(&t, (const char *const[]){
                             d->name, snap_query_snap_disk_mode(d),
                             k && k->source ? k->source : "-", d->source ? d->source : "-",
                             r && r->source ? r->source : "-"});
    }
    es_table_print(stdout, &t);
    es_table_free(&t);
}

static int show(const es_cmd *cmd, const es_domain_opts *o, const snap_ctx *ctx,
                const char *name, bool xml)
{
    es_err e = {0};
    const domxml_snapshot *s = snap_query_find(ctx, name, &e);
    if (!s) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (xml) {
        char *text = NULL;
        size_t len = 0;
        if (snap_query_snapshot_text(ctx, s, &text, &len, &e) < 0) {
            es_cmd_error(cmd->name, &e);
            return ES_EXIT_FAIL;
        }
        fwrite(text, 1, len, stdout);
        free(text);
        return ES_EXIT_OK;
    }
    show_facts f = {.c = ctx, .s = s};
    snap_query_children(ctx, s, false, &f.kids, &f.nkids);
    snap_query_children(ctx, s, true, &f.desc, &f.ndesc);
    snap_inexact marks;
    es_err me = {0};
    bool have_marks = snap_inexact_load(ctx, &marks, &me) == 0;
    if (!have_marks) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
        es_cmd_errorf(cmd->name, "warning: %s", es_err_str(&me, buf, sizeof buf));
    } else if ((f.inexact = snap_inexact_find(ctx, &marks, s->name))) {
        snap_inexact_describe(f.inexact, f.why, sizeof f.why);
    }
    if (o->json)
        print_json(&f);
    else
        print_human(&f);
    if (have_marks)
        snap_inexact_clear(&marks);
    free(f.kids);
    free(f.desc);
    return ES_EXIT_OK;
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_show;
    show_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 2, "DOMAIN NAME");
    es_domain_opts o = all.d;
    if (r >= 0)
        return r;
    if (all.xml && o.json)
        return es_cmd_usage_error(cmd, "--xml and --output=json do not go together");
    es_err e = {0};
    snap_ctx *ctx = NULL;
    if (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_READ, &ctx, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    int status = show(cmd, &o, ctx, argv[optind + 1], all.xml);
    snap_ctx_close(ctx);
    return status;
}
