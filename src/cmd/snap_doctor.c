/* extsnap doctor: the chain doctor over every chain of a domain, with the
 * domain's own findings; --fix repairs through the journal. */
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/doctor_out.h"
#include "cmd/domain_opts.h"
#include "cmd/plan_out.h"
#include "cmd/json_out.h"
#include "snap/context.h"
#include "snap/ops/doctor.h"
#include "snap/query.h"
#include "snap/txn/session.h"
#include "util/strv.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);
static int add_search(const es_cmd *cmd, void *opts, const char *arg);

#define DOCTOR_EXIT_PROBLEMS 2

typedef struct doctor_opts {
    es_domain_opts d;
    bool all, fix;
    es_strv search;
} doctor_opts;

static const es_opt doctor_table[] = {
    {.name = "all", .kind = ES_OPT_FLAG, .offset = offsetof(doctor_opts, all),
     .help = "every domain of the config directory"},
    {.name = "search", .kind = ES_OPT_CALL, .arg = "DIR", .call = add_search,
     .flags = ES_OPTF_REPEAT | ES_OPTF_DIR | ES_OPTF_ABSOLUTE, .bad = ES_DOMAIN_BAD_DIR,
     .help = "look for missing backing files in DIR, as seen under --root (may be repeated; "
             "not recursive); default: the directories holding the domain's images"},
    {.name = "fix", .kind = ES_OPT_FLAG, .offset = offsetof(doctor_opts, fix),
     .help = "carry out the repair plan (rebase -u of the images concerned) through the "
             "journal, as every domain operation (an interrupted operation is recovered "
             "first), then diagnose again: exit 0 only when no error remains"},
    ES_DOMAIN_OPTS(doctor_opts, d),
    ES_OPT_END,
};

const es_cmd es_cmd_snap_doctor = {
    .name = "doctor",
    .summary = "find what is broken or risky in a domain's chains, and repair the backing links",
    .synopsis = "[OPTIONS] DOMAIN... | --all",
    .description =
        "Run the chain doctor (the one of img doctor) on every chain the\n"
        "domain's files name (its disks, its snapshots' images and branches), and\n"
        "report what only the domain shows: leftovers of interrupted operations,\n"
        "images in its directories that nothing names, chains that reach into\n"
        "another domain's images.\n",
    .details =
        "Domain findings: pending-journal (error: an interrupted operation; --fix\n"
        "recovers it first, as every mutating command does), leftover-journal-tmp,\n"
        "pending-libvirt-files (warnings), missing-image (error: a file the\n"
        "snapshot model needs is not there, by verify's rule: the config's disks,\n"
        "what each snapshot froze, the current snapshot's overlays; not repaired),\n"
        "unreferenced-image\n"
        "(warning: in the domain's directories, named by no domain and used by no\n"
        "chain; a file chosen to repair a chain is not reported), shared-image\n"
        "(warning: a chain of this domain uses an image another domain names).\n"
        "root-prefixed-name (error: a file the domain's files name with the --root\n"
        "directory in it, written from the rescue system; the file without it\n"
        "exists; not repaired: libvirt's files are not changed).\n"
        "Chain findings and the rules for candidates are img doctor's; the search\n"
        "directories default to those holding the domain's images. The domain's\n"
        "snapshot metadata is evidence too: a snapshot's <domain> names the disk's\n"
        "image beneath the overlay its <disks> names; that file, as a candidate for\n"
        "the overlay's missing backing file, gets 4 points (more than the name and\n"
        "cluster size together).\n"
        "\n"
        "--fix makes one plan of the chains' header rewrites (rebase -u) and runs it\n"
        "like every domain operation: refused while libvirtd runs or the VM runs,\n"
        "recorded in the journal, undone as a whole on failure; --dry-run prints\n"
        "it. libvirt's files are not changed: a snapshot's metadata that names a\n"
        "moved file still names the old path (verify reports it).\n"
        "\n"
        "\n" ES_DOMAIN_ARG_USAGE "\n"
        "JSON output (--output=json): an array with one object per domain: domain,\n"
        "result (healthy | problems | failed), error, errors, warnings, findings\n"
        "[{severity, kind, file, message}], chains [{image, errors, warnings,\n"
        "findings, plan}] (img doctor's fields), and with --fix: fixed (steps\n"
        "carried out), after {errors, warnings, findings, chains}.\n",
    .exit_status = "0 no error (warnings allowed; with --fix: none left; with --fix --dry-run: the "
                   "plan repairs every error), 1 a domain could not "
                   "be diagnosed or repaired (or a usage error), 2 errors found and not (all) "
                   "repaired.",
    .opts = doctor_table,
    .operands = ES_OPERANDS_DOMAIN,
    .run = run,
};

static int add_search(const es_cmd *cmd, void *opts, const char *arg)
{
    doctor_opts *o = opts;
    if (!arg[0]) {
        es_cmd_usage_error(cmd, "--search needs a directory (it is empty)");
        return ES_OPT_USAGE;
    }
    es_err e;
    return es_strv_add(&o->search, arg, &e) < 0 ? ES_OPT_FAIL : ES_OPT_OK;
}

typedef struct result {
    char *name;
    char *error;
    snap_doctor_report before, after;
    bool have_after;
    size_t fixed;
} result;

static json_object *report_json(const snap_doctor_report *r)
{
    json_object *o = es_json_new_object();
    es_json_add_u64(o, "errors", r->errors);
    es_json_add_u64(o, "warnings", r->warnings);
    json_object *fs = es_json_new_array();
    for (size_t i = 0; i < r->domain.n; i++) {
        const snap_problem *p = &r->domain.v[i];
        json_object *j = es_json_new_object();
        es_json_add_str(j, "severity", snap_severity_name(p->severity));
        es_json_add_str(j, "kind", p->code);
        es_json_add_str_or_null(j, "file", p->file);
        es_json_add_str_or_null(j, "message", p->message);
        es_json_append(fs, j);
    }
    es_json_add(o, "findings", fs);
    json_object *cs = es_json_new_array();
    for (size_t i = 0; i < r->nchains; i++) {
        const snap_doctor_chain *ch = &r->chains[i];
        json_object *j = es_json_new_object();
        es_json_add_str(j, "image", ch->top);
        es_json_add_u64(j, "errors", ch->rep.errors);
        es_json_add_u64(j, "warnings", ch->rep.warnings);
        es_json_add(j, "findings", es_doctor_findings_json(&ch->rep));
        es_json_add(j, "plan", es_doctor_plan_json(&ch->rep));
        es_json_append(cs, j);
    }
    es_json_add(o, "chains", cs);
    return o;
}

static void print_report(const char *name, const snap_doctor_report *r, bool plan)
{
    if (!r->errors && !r->warnings)
        printf("%s: healthy (%zu chain%s)\n", name, r->nchains, r->nchains == 1 ? "" : "s");
    else
        printf("%s: %zu error%s, %zu warning%s (%zu chain%s)\n", name, r->errors,
               r->errors == 1 ? "" : "s", r->warnings, r->warnings == 1 ? "" : "s", r->nchains,
               r->nchains == 1 ? "" : "s");
    for (size_t i = 0; i < r->domain.n; i++) {
        const snap_problem *p = &r->domain.v[i];
        printf("  %-7s %s: %s: %s\n", snap_severity_name(p->severity), p->file ? p->file : "-",
               p->code, p->message);
    }
    for (size_t i = 0; i < r->nchains; i++) {
        es_doctor_print_findings(&r->chains[i].rep, "  ");
        if (plan)
            es_doctor_print_plan(&r->chains[i].rep, "  ");
    }
}

static size_t plan_steps(const snap_doctor_report *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nchains; i++)
        n += r->chains[i].rep.nsteps;
    return n;
}

static void set_error(result *res, const es_err *e)
{
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    res->error = es_xstrdup(es_err_str(e, buf, sizeof buf));
}

static void doctor_one(const es_cmd *cmd, const doctor_opts *dopt, const char *arg, result *res)
{
    const es_domain_opts *o = &dopt->d;
    bool json = o->json == 1;
    es_err e = {0};
    snap_ctx *c = NULL;
    snap_env env = o->env;
    if (!dopt->fix)
        env.quiet = true; /* a pending journal is a finding, not a note */
    if (snap_session_begin(&env, arg, dopt->fix ? SNAP_OPEN_WRITE : SNAP_OPEN_READ, &c, &e) < 0 ||
        snap_doctor(c, &dopt->search, &res->before, &e) < 0) {
        set_error(res, &e);
        res->name = es_xstrdup(c ? c->name : arg);
        snap_ctx_close(c);
        return;
    }
    res->name = es_xstrdup(c->name);
    bool quiet = o->env.quiet; /* -q: only domains with errors */
    if (!json && (!quiet || res->before.errors))
        print_report(res->name, &res->before, !dopt->fix);
    if (dopt->fix && plan_steps(&res->before)) {
        snap_plan *p = NULL;
        es_domain_opts plan_opts = *o;
        if (json)
            plan_opts.env.quiet = true; /* stdout holds one JSON document */
        if (snap_doctor_plan(c, &res->before, &p, &e) < 0) {
            set_error(res, &e);
        } else if (es_domain_run_plan(cmd, &plan_opts, c, p) != ES_EXIT_OK) {
            res->error = es_xstrdup("the repair plan failed (see above)");
        } else if (!o->env.dry_run) {
            res->fixed = p->nrebases;
            if (snap_doctor(c, &dopt->search, &res->after, &e) < 0)
                set_error(res, &e);
            else
                res->have_after = true;
            if (res->have_after && !json && (!quiet || res->after.errors)) {
                printf("After the repair:\n");
                print_report(res->name, &res->after, false);
            }
        }
        snap_plan_free(p);
    }
    snap_ctx_close(c);
}

static const snap_doctor_report *last(const result *r)
{
    return r->have_after ? &r->after : &r->before;
}

static void print_json(const result *v, size_t n, bool fix)
{
    json_object *a = es_json_new_array();
    for (size_t i = 0; i < n; i++) {
        const result *r = &v[i];
        json_object *d = report_json(&r->before);
        es_json_add_str_or_null(d, "domain", r->name);
        es_json_add_str(d, "result",
                        r->error ? "failed" : last(r)->errors ? "problems" : "healthy");
        es_json_add_str_or_null(d, "error", r->error);
        if (fix) {
            es_json_add_u64(d, "fixed", r->fixed);
            if (r->have_after)
                es_json_add(d, "after", report_json(&r->after));
        }
        es_json_append(a, d);
    }
    es_json_print(stdout, a);
    fputc('\n', stdout);
    json_object_put(a);
}

static int run(int argc, char **argv)
{
    const es_cmd *cmd = &es_cmd_snap_doctor;
    doctor_opts dopt = {0};
    int r = es_domain_parse(cmd, &dopt.d, &dopt, argc, argv, -1, NULL);
    if (r >= 0)
        goto out_opts;
    if (dopt.all == (argc - optind > 0)) {
        r = es_cmd_usage_error(cmd, dopt.all ? "--all takes no DOMAIN" : "expected DOMAIN... or --all");
        goto out_opts;
    }
    if (es_domain_opts_check(cmd, &dopt.d) < 0) {
        r = ES_EXIT_FAIL;
        goto out_opts;
    }
    es_strv names = {0};
    es_err e = {0};
    if (dopt.all && snap_query_domains(&dopt.d.env, &names, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        r = ES_EXIT_FAIL;
        goto out_opts;
    }
    for (int i = optind; !dopt.all && i < argc; i++)
        es_strv_add(&names, argv[i], &e);
    result *v = es_xcalloc(names.n + 1, sizeof *v);
    bool failed = false, problems = false;
    for (size_t i = 0; i < names.n; i++) {
        doctor_one(cmd, &dopt, names.v[i], &v[i]);
        if (v[i].error && dopt.d.json != 1)
            fflush(stdout), es_cmd_errorf(cmd->name, "%s: %s", v[i].name, v[i].error);
        failed |= v[i].error != NULL;
        /* A dry run changes nothing: its status is the real run's likely one. */
        problems |= dopt.fix && dopt.d.env.dry_run ? v[i].before.unrepaired > 0
                                                    : last(&v[i])->errors > 0;
        if (!v[i].error && last(&v[i])->unrepaired && dopt.d.json != 1) {
            fflush(stdout);
            es_cmd_errorf(cmd->name, "%s: %zu error%s without a safe automatic repair (see above)",
                          v[i].name, last(&v[i])->unrepaired,
                          last(&v[i])->unrepaired == 1 ? "" : "s");
        }
    }
    es_domain_progress_end(&dopt.d);
    if (dopt.d.json == 1)
        print_json(v, names.n, dopt.fix);
    for (size_t i = 0; i < names.n; i++) {
        free(v[i].name);
        free(v[i].error);
        snap_doctor_report_free(&v[i].before);
        snap_doctor_report_free(&v[i].after);
    }
    free(v);
    es_strv_free(&names);
    r = failed ? ES_EXIT_FAIL : problems ? DOCTOR_EXIT_PROBLEMS : ES_EXIT_OK;
out_opts:
    es_strv_free(&dopt.search);
    return r;
}
