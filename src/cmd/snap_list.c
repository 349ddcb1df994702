/* extsnap list: a domain's snapshots, as a table or a tree, or JSON. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/json_out.h"
#include "cmd/table_out.h"
#include "snap/context.h"
#include "snap/query.h"
#include "snap/txn/session.h"
#include "snap/ops/inexact.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);

typedef struct list_opts {
    es_domain_opts d;
    bool tree;
} list_opts;

static const es_opt list_table[] = {
    {.name = "tree", .kind = ES_OPT_FLAG, .offset = offsetof(list_opts, tree),
     .help = "show the snapshots as a tree, line for line as 'virsh snapshot-list --tree' prints it (children by name); the current snapshot is marked '(current)'"},
    ES_DOMAIN_OPTS(list_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_list = {
    .name = "list",
    .summary = "list a domain's snapshots (table, tree or JSON)",
    .synopsis = "[OPTIONS] DOMAIN [--tree]",
    .description =
        "List the snapshots of a domain from its libvirt metadata (what 'virsh\n"
        "snapshot-list' shows), oldest first: name, creation time, state, parent,\n"
        "whether it is the current snapshot, the disks it has overlays for, and\n"
        "its description (first line, cut to 40 columns; whole in the JSON).\n"
        "Columns are aligned by terminal width (CJK characters take two).\n"
        "Files in the snapshot directory that libvirt could not load are reported\n"
        "on stderr. Changes nothing.\n",
    .details =
        "\n" ES_DOMAIN_ARG_USAGE "\n"
        "JSON output (--output=json; field names are stable):\n"
        "  {domain, current (name or null), snapshots: [{name, description (or null),\n"
        "   creation-time (Unix seconds), state, parent (or null), current (bool),\n"
        "   inexact (bool: a cancelled online delete or commit left its saved state\n"
        "   inexact; see 'extsnap verify'), inexact-reason (or null),\n"
        "   children [names], has-domain (bool: a saved <domain>, needed to revert),\n"
        "   disks: [{name, snapshot (external|no|...), driver-type, source}],\n"
        "   revert-disks: [same]}], bad-files: [{filename, error}],\n"
        "   pending-journal (bool: an interrupted operation waits for 'extsnap\n"
        "   recover', or the next changing command, to finish or undo it),\n"
        "   running (bool: the VM runs, as the changing commands see it: libvirt's\n"
        "   run dir, QEMU's image locks)}\n",
    .exit_status = "0 listed, 1 failed, 1 also for a usage error.",
    .opts = list_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

/* The domain's record of inexact snapshots (snap/inexact.h), for the marks. */
static const snap_ctx *list_ctx;
static const snap_inexact *list_marks;

static const snap_inexact_entry *inexact(const domxml_snapshot *s)
{
    return list_marks ? snap_inexact_find(list_ctx, list_marks, s->name) : NULL;
}

static json_object *disks_json(const domxml_snap_disk *v, size_t n)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < n; i++) {
        json_object *d = es_json_new_object();
        es_json_add_str(d, "name", v[i].name);
        es_json_add_str(d, "snapshot", snap_query_snap_disk_mode(&v[i]));
        es_json_add_str_or_null(d, "driver-type", v[i].driver_type);
        es_json_add_str_or_null(d, "source", v[i].source);
        es_json_append(a, d);
    }
    return a;
}

static void print_json(const snap_ctx *c, domxml_snapshot **v, size_t n)
{
    json_object *o = es_json_new_object();
    es_json_add_str(o, "domain", c->name);
    const domxml_snapshot *cur = snap_query_current(c);
    es_json_add_str_or_null(o, "current", cur ? cur->name : NULL);
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < n; i++) {
        const domxml_snapshot *s = v[i];
        json_object *j = es_json_new_object();
        es_json_add_str(j, "name", s->name);
        es_json_add_str_or_null(j, "description", s->description);
        es_json_add_i64(j, "creation-time", s->creation_time);
        es_json_add_str_or_null(j, "state", s->state);
        es_json_add_str_or_null(j, "parent", s->parent);
        es_json_add_bool(j, "current", s->current);
        const snap_inexact_entry *x = inexact(s);
        es_json_add_bool(j, "inexact", x != NULL);
        char why[2048];
        if (x)
            snap_inexact_describe(x, why, sizeof why);
        es_json_add_str_or_null(j, "inexact-reason", x ? why : NULL);
        json_object *kids = es_json_new_array();
        for (size_t k = 0; k < n; k++)
            if (v[k]->parent && strcmp(v[k]->parent, s->name) == 0)
                es_json_append(kids, es_json_str(v[k]->name));
        es_json_add(j, "children", kids);
        es_json_add_bool(j, "has-domain", s->domain != NULL);
        es_json_add(j, "disks", disks_json(s->disks, s->ndisks));
        es_json_add(j, "revert-disks", disks_json(s->revert_disks, s->nrevert_disks));
        es_json_append(a, j);
    }
    es_json_add(o, "snapshots", a);
    json_object *bad = es_json_new_array();
    for (size_t i = 0; i < c->snaps->nbad; i++) {
        json_object *b = es_json_new_object();
        es_json_add_str(b, "filename", c->snaps->bad_files[i]);
        es_json_add_str(b, "error", c->snaps->bad_errors[i]);
        es_json_append(bad, b);
    }
    es_json_add(o, "bad-files", bad);
    es_json_add_bool(o, "pending-journal", snap_session_pending(c));
    es_json_add_bool(o, "running", snap_session_vm_running(c));
    es_json_print(stdout, o);
    fputc('\n', stdout);
    json_object_put(o);
}

static void format_time(long long t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm))
        snprintf(buf, len, "%lld", t);
}

/* The disks a snapshot has overlays for: "vda vdb". */
static void disk_names(const domxml_snapshot *s, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t at = 0;
    for (size_t i = 0; i < s->ndisks && at < len; i++) {
        if (!s->disks[i].source)
            continue;
        int n = snprintf(buf + at, len - at, "%s%s", at ? " " : "", s->disks[i].name);
        if (n < 0)
            break;
        at += (size_t)n;
    }
}

static const char *state_or_dash(const domxml_snapshot *s)
{
    return s->state ? s->state : "-";
}

/* Columns as wide as their longest value on a terminal (names in any
 * script): a state can be any libvirt writes ("disk-snapshot",
 * "pmsuspended" ...), names and parents any length; descriptions are cut
 * to their first line and ES_LIST_DESCRIPTION_MAX columns. */
#define ES_LIST_DESCRIPTION_MAX 40

static void print_table(domxml_snapshot **v, size_t n)
{
    es_table t;
    es_table_init(&t, 8);
    es_table_add(&t, (const char *const[]){"Name", "Creation Time", "State", "Parent", "Current",
                                           "Disks", "Description", ""});
    for (size_t i = 0; i < n; i++) {
        char tm[64], disks[256];
        format_time(v[i]->creation_time, tm, sizeof tm);
        disk_names(v[i], disks, sizeof disks);
        char *desc = es_cell_clip(v[i]->description ? v[i]->description : "",
                                  ES_LIST_DESCRIPTION_MAX);
        es_table_add(&t, (const char *const[]){
                             v[i]->name, tm, state_or_dash(v[i]),
                             v[i]->parent ? v[i]->parent : "-", v[i]->current ? "yes" : "",
                             disks, desc, inexact(v[i]) ? "(inexact: see 'extsnap verify')" : ""});
        free(desc);
    }
    es_table_print(stdout, &t);
    es_table_free(&t);
}

/* virsh's order of snapshots (virshSnapSorter): by name, ignoring case. */
static int by_name(const void *a, const void *b)
{
    const domxml_snapshot *x = *(domxml_snapshot *const *)a, *y = *(domxml_snapshot *const *)b;
    int r = strcasecmp(x->name, y->name);
    return r ? r : strcmp(x->name, y->name);
}

static bool is_child(const domxml_snapshot *c, const domxml_snapshot *s)
{
    return c->parent && strcmp(c->parent, s->name) == 0;
}

/* One node of 'virsh snapshot-list --tree', line for line as virsh prints
 * it (vshTreePrint): the name after "+- " (roots bare), a "|" line above a
 * node's children, "|" rails down the siblings still to come, and a line of
 * only the indentation after a leaf that is the last of its siblings.
 * indent[0..len) is this node's indentation; cap its room. */
static void print_node(domxml_snapshot **v, size_t n, const domxml_snapshot *s, char *indent,
                       size_t len, size_t cap, bool root, bool last, size_t depth)
{
    printf("%.*s%s%s%s%s\n", (int)len, indent, root ? "" : "+- ", s->name,
           s->current ? " (current)" : "", inexact(s) ? " (inexact)" : "");
    if (!root && len + 2 <= cap) {
        indent[len++] = last ? ' ' : '|';
        indent[len++] = ' ';
    }
    size_t lastkid = n;
    for (size_t i = 0; i < n; i++)
        if (is_child(v[i], s))
            lastkid = i;
    if (lastkid == n) {
        if (last)
            printf("%.*s\n", (int)len, indent);
        return;
    }
    printf("%.*s  |\n", (int)len, indent);
    if (depth > n || len + 2 > cap) /* a loop in the metadata, or absurdly deep: stop */
        return;
    indent[len] = indent[len + 1] = ' ';
    for (size_t i = 0; i < n; i++)
        if (is_child(v[i], s))
            print_node(v, n, v[i], indent, len + 2, cap, false, i == lastkid, depth + 1);
}

static void print_tree(domxml_snapshot *const *all, size_t n)
{
    domxml_snapshot **v = es_xcalloc(n ? n : 1, sizeof *v);
    memcpy(v, all, n * sizeof *v);
    qsort(v, n, sizeof *v, by_name);
    char indent[1024];
    for (size_t i = 0; i < n; i++)
        if (snap_query_is_root(v, n, v[i]))
            print_node(v, n, v[i], indent, 0, sizeof indent, true, true, 0);
    free(v);
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_list;
    list_opts all = {0};
    int r = es_domain_parse(cmd, &all.d, &all, argc, argv, 1, "DOMAIN");
    es_domain_opts o = all.d;
    bool tree = all.tree;
    if (r >= 0)
        return r;
    es_err e = {0};
    snap_ctx *ctx = NULL;
    if (snap_session_begin(&o.env, argv[optind], SNAP_OPEN_READ, &ctx, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    size_t n = 0;
    domxml_snapshot **v = NULL;
    snap_query_snapshots(ctx, &v, &n);
    for (size_t i = 0; i < ctx->snaps->nbad; i++)
        es_cmd_errorf(cmd->name, "warning: %s: libvirt would not load this file: %s",
                      ctx->snaps->bad_files[i], ctx->snaps->bad_errors[i]);
    es_err chk = {0};
    if (snap_query_check_tree(ctx, &chk) < 0)
        es_cmd_errorf(cmd->name, "warning: %s", es_err_str(&chk, (char[2048]){0}, 2048));
    snap_inexact marks;
    es_err me = {0};
    if (snap_inexact_load(ctx, &marks, &me) < 0) {
        char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX];
        es_cmd_errorf(cmd->name, "warning: %s", es_err_str(&me, buf, sizeof buf));
    } else {
        list_ctx = ctx;
        list_marks = &marks;
    }
    for (size_t i = 0; list_marks && i < n; i++) {
        const snap_inexact_entry *x = inexact(v[i]);
        char why[2048];
        if (!x)
            continue;
        snap_inexact_describe(x, why, sizeof why);
        es_cmd_errorf(cmd->name,
                      "warning: snapshot %s's saved state is inexact: %s; run the same %s "
                      "again to finish it",
                      x->name, why, x->command ? x->command : "delete");
    }
    if (o.json)
        print_json(ctx, v, n);
    else if (tree)
        print_tree(v, n);
    int status = ES_EXIT_OK;
    if (!o.json && !tree)
        print_table(v, n);
    list_marks = NULL;
    list_ctx = NULL;
    snap_inexact_clear(&marks);
    free(v);
    snap_ctx_close(ctx);
    return status;
}
