/* extsnap verify: check that domains' chains, images and snapshot metadata
 * hold together (for CI). */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/domain_opts.h"
#include "cmd/json_out.h"
#include "snap/context.h"
#include "snap/query.h"
#include "snap/txn/session.h"
#include "util/str.h"
#include "util/strv.h"
#include "snap/ops/verify.h"
#include "util/fileio.h"
#include "util/rootpath.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);

typedef struct verify_opts {
    es_domain_opts d;
    bool all, strict;
} verify_opts;

static const es_opt verify_table[] = {
    {.name = "all", .kind = ES_OPT_FLAG, .offset = offsetof(verify_opts, all),
     .help = "every domain of the config directory; a last line counts them: \"N domains "
             "checked: C clean, P with problems, F could not be checked\", or \"0 domains "
             "checked\" (exit 0: nothing is wrong, but an empty config directory is visible in "
             "the log; with --output=json an empty array)"},
    {.name = "strict", .kind = ES_OPT_FLAG, .offset = offsetof(verify_opts, strict),
     .help = "warnings count as problems (exit 2)"},
    ES_DOMAIN_OPTS(verify_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_verify = {
    .name = "verify",
    .summary = "check domains' disk chains, images and snapshot metadata (for CI)",
    .synopsis = "[OPTIONS] DOMAIN... | --all",
    .description =
        "Check, without changing anything (shared lock), that each domain's state\n"
        "holds together: journal, metadata, images and their chains, backing links.\n",
    .details =
        "  - no interrupted extsnap operation is pending (journal);\n"
        "  - every file of the snapshot directory loads as libvirt loads it; names\n"
        "    are unique and match their files; parents exist and do not loop; at\n"
        "    most one snapshot is current (none: a warning);\n"
        "  - every image the domain needs exists and opens with its whole backing\n"
        "    chain: the config's disks, each snapshot's saved images, <revertDisks>,\n"
        "    the current snapshot's live <disks>;\n"
        "  - every qcow2 image the domain's files name passes the image check\n"
        "    (qemu-img check's rules: corruption is an error, leaked clusters a\n"
        "    warning);\n"
        "  - each snapshot's overlay has the snapshot's frozen image (its saved\n"
        "    <domain> source) as backing file; a snapshot's frozen image lies above\n"
        "    its parent's; the config's disks are the current snapshot's live\n"
        "    overlays or above them; no disk is marked <snapshotDeleteInProgress/>;\n"
        "  - no snapshot's saved state is recorded as inexact (an online delete or\n"
        "    commit of it was cancelled after QEMU had started merging into its saved\n"
        "    images, which QEMU does not undo: run it again to finish);\n"
        "  - no qcow2 image in the directories holding the domain's images is\n"
        "    unnamed by every libvirt file of every domain (a warning; reported,\n"
        "    never deleted);\n"
        "  - every copy of VM state a snapshot records (create keeps the NVRAM and\n"
        "    the vTPM's directory with each snapshot) exists, as a regular file or a\n"
        "    directory.\n"
        "\n"
        "\n" ES_DOMAIN_ARG_USAGE "\n"
        "Problem codes: pending-journal, bad-metadata, metadata-tree,\n"
        "multiple-current, no-current (warning), no-saved-domain (warning),\n"
        "missing-image, unreadable-image, broken-chain, corrupt-image, check-failed,\n"
        "leaked-clusters (warning), wrong-backing, tree-mismatch, config-off-current,\n"
        "current-misplaced, "
        "delete-in-progress, inexact-snapshot, missing-vm-state, unreferenced-image\n"
        "(warning), "
"image-in-use (warning: a running VM writes it, so it was not checked),\n"
        "encryption-mismatch, encrypted-backing, slice-on-overlay (a disk's\n"
        "<encryption> or <slices> that its image file does not match).\n"
        "\n"
        "JSON output (--output=json): an array with one object per domain:\n"
        "  {domain, result (clean | problems | failed), error (why it could not be\n"
        "   checked, or null), snapshots, images-checked, errors, warnings,\n"
        "   problems: [{code, severity (error|warning), file, message}]}\n",
    .exit_status = "0 clean (warnings allowed unless --strict), 2 problems found, 1 a domain "
                   "could not be checked (or a usage error).",
    .opts = verify_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

typedef struct result {
    char *name;
    char *error;           /* could not check */
    snap_verify_report rep;
    size_t errors, warnings;
} result;

static void check_one(const es_domain_opts *o, const char *arg, result *r)
{
    es_err e = {0};
    snap_ctx *c = NULL;
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    snap_env env = o->env;
    env.quiet = true; /* pending journals are reported as problems */
    if (snap_session_begin(&env, arg, SNAP_OPEN_READ, &c, &e) < 0 ||
        snap_verify(c, &r->rep, &e) < 0) {
        r->error = es_xstrdup(es_err_str(&e, buf, sizeof buf));
    }
    r->name = es_xstrdup(c ? c->name : arg);
    for (size_t i = 0; i < r->rep.n; i++) {
        if (r->rep.v[i].severity == SNAP_SEV_ERROR)
            r->errors++;
        else
            r->warnings++;
    }
    snap_ctx_close(c);
}

static const char *result_word(const result *r, bool strict)
{
    if (r->error)
        return "failed";
    return r->errors || (strict && r->warnings) ? "problems" : "clean";
}

static void print_json(const result *v, size_t n, bool strict)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < n; i++) {
        const result *r = &v[i];
        json_object *d = es_json_new_object();
        es_json_add_str_or_null(d, "domain", r->name);
        es_json_add_str(d, "result", result_word(r, strict));
        es_json_add_str_or_null(d, "error", r->error);
        es_json_add_u64(d, "snapshots", r->rep.nsnapshots);
        es_json_add_u64(d, "images-checked", r->rep.nimages);
        es_json_add_u64(d, "errors", r->errors);
        es_json_add_u64(d, "warnings", r->warnings);
        json_object *ps = es_json_new_array();
        for (size_t k = 0; k < r->rep.n; k++) {
            const snap_problem *p = &r->rep.v[k];
            json_object *j = es_json_new_object();
            es_json_add_str(j, "code", p->code);
            es_json_add_str(j, "severity", snap_severity_name(p->severity));
            es_json_add_str_or_null(j, "file", p->file);
            es_json_add_str_or_null(j, "message", p->message);
            es_json_append(ps, j);
        }
        es_json_add(d, "problems", ps);
        es_json_append(a, d);
    }
    es_json_print(stdout, a);
    fputc('\n', stdout);
    json_object_put(a);
}

static void print_human(const result *v, size_t n, bool strict, bool quiet)
{
    for (size_t i = 0; i < n; i++) {
        const result *r = &v[i];
        if (r->error) {
            fprintf(stderr, "extsnap: verify: %s: could not check: %s\n",
                    r->name ? r->name : "?", r->error);
            continue;
        }
        if (quiet && !r->errors && !(strict && r->warnings))
            continue;
        if (!r->rep.n)
            printf("%s: clean (%zu snapshot%s, %zu image%s checked)\n", r->name,
                   r->rep.nsnapshots, r->rep.nsnapshots == 1 ? "" : "s", r->rep.nimages,
                   r->rep.nimages == 1 ? "" : "s");
        else
            printf("%s: %s: %zu error%s, %zu warning%s (%zu snapshot%s, %zu image%s "
                   "checked)\n",
                   r->name, result_word(r, strict), r->errors, r->errors == 1 ? "" : "s",
                   r->warnings, r->warnings == 1 ? "" : "s", r->rep.nsnapshots,
                   r->rep.nsnapshots == 1 ? "" : "s", r->rep.nimages,
                   r->rep.nimages == 1 ? "" : "s");
        for (size_t k = 0; k < r->rep.n; k++) {
            const snap_problem *p = &r->rep.v[k];
            /* one line a problem, whatever the file's name holds */
            char file[4 * ES_ERR_PATH_MAX], msg[4 * ES_ERR_MSG_MAX + 4 * ES_ERR_PATH_MAX];
            es_str_escape_ctl(file, sizeof file, p->file ? p->file : "");
            es_str_escape_ctl(msg, sizeof msg, p->message);
            printf("  %-7s %-18s %s%s%s\n", snap_severity_name(p->severity), p->code, file,
                   p->file ? ": " : "", msg);
        }
    }
}

/* --all: how many domains there were, so that none (an empty or wrong
 * config dir) is not mistaken for a check that passed unseen. */
static void print_all_summary(const result *v, size_t n, bool strict)
{
    size_t count[3] = {0}; /* clean, problems, failed */
    for (size_t i = 0; i < n; i++)
        count[v[i].error ? 2 : strcmp(result_word(&v[i], strict), "clean") ? 1 : 0]++;
    printf("%zu domain%s checked", n, n == 1 ? "" : "s");
    if (n)
        printf(": %zu clean, %zu with problems, %zu could not be checked", count[0], count[1],
               count[2]);
    putchar('\n');
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_verify;
    verify_opts vo = {0};
    int r = es_domain_parse(cmd, &vo.d, &vo, argc, argv, -1, NULL);
    if (r >= 0)
        return r;
    es_domain_opts o = vo.d;
    bool all = vo.all, strict = vo.strict;
    if (all == (argc - optind > 0))
        return es_cmd_usage_error(cmd, all ? "--all takes no DOMAIN" : "expected DOMAIN... or --all");
    if (es_domain_opts_check(cmd, &o) < 0)
        return ES_EXIT_FAIL;
    es_strv names = {0};
    es_err e = {0};
    if (all && snap_query_domains(&o.env, &names, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    for (int i = optind; !all && i < argc; i++)
        if (es_strv_add(&names, argv[i], &e) < 0) {
            es_cmd_error(cmd->name, &e);
            es_strv_free(&names);
            return ES_EXIT_FAIL;
        }
    result *v = es_xcalloc(names.n + 1, sizeof *v);
    bool failed = false, problems = false;
    for (size_t i = 0; i < names.n; i++) {
        check_one(&o, names.v[i], &v[i]);
        failed |= v[i].error != NULL;
        problems |= v[i].errors || (strict && v[i].warnings);
    }
    es_domain_progress_end(&o);
    if (o.json)
        print_json(v, names.n, strict);
    else
        print_human(v, names.n, strict, o.env.quiet);
    if (all && !o.json && !o.env.quiet)
        print_all_summary(v, names.n, strict);
    for (size_t i = 0; i < names.n; i++) {
        free(v[i].name);
        free(v[i].error);
        snap_verify_report_free(&v[i].rep);
    }
    free(v);
    es_strv_free(&names);
    return failed ? ES_EXIT_FAIL : problems ? 2 : ES_EXIT_OK;
}
