/* extsnap img doctor: diagnose an image's backing chain, print the repair
 * plan, and with --fix carry it out (qcow2/doctor.h decides; this prints). */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/img_root.h"
#include "cmd/doctor_out.h"
#include "cmd/json_out.h"
#include "qcow2/doctor.h"
#include "util/strv.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);
static int add_search(const es_cmd *cmd, void *opts, const char *arg);

/* Exit statuses (README, exit codes). */
#define DOCTOR_EXIT_PROBLEMS 2

typedef struct doctor_opts {
    es_strv search;
    bool fix;
    int json;
    const char *root;
} doctor_opts;

static const es_opt doctor_table[] = {
    {.name = "search", .kind = ES_OPT_CALL, .arg = "DIR", .call = add_search,
     .flags = ES_OPTF_REPEAT | ES_OPTF_DIR,
     .help = "look for a missing backing file in DIR (may be repeated; not recursive); "
             "default: the directory of the image naming it and the directory its name "
             "points into"},
    {.name = "fix", .kind = ES_OPT_FLAG, .offset = offsetof(doctor_opts, fix),
     .help = "carry out the repair plan (rebase -u of each image concerned), then diagnose "
             "again: exit 0 only when no error remains"},
    ES_OUTPUT_OPT(doctor_opts, json, "invalid --output '%s' (human or json)"),
    ES_IMG_ROOT_OPT(doctor_opts, root),
    ES_OPT_END,
};

const es_cmd es_cmd_img_doctor = {
    .name = "img doctor",
    .summary = "find what is broken or risky in an image's backing chain, and repair it",
    .run = run,
    .synopsis = "[--search DIR]... [--fix] [--output=FMT] [--root=DIR] IMAGE",
    .description =
        "Walk IMAGE's backing chain one header at a time and report every break and\n"
        "risk: a missing backing file, a missing or wrong backing format, a loop, a\n"
        "relative or protocol backing name, one written from a rescue shell under\n"
        "--root. For a missing backing file, look for it in the search directories\n"
        "and rank what is there by evidence (the headers, then content); print the\n"
        "repair plan (rebase -u to the file found, backing format added). --fix\n"
        "carries it out.\n",
    .details =
        "Findings are printed one a line: severity (error: QEMU cannot open the chain\n"
        "as meant; warning: a risk), image, kind, what, and the repair (planned, or\n"
        "by hand). Kinds: missing-backing, missing-backing-format,\n"
        "wrong-backing-format, unreadable-backing, backing-loop, chain-too-deep,\n"
        "root-prefixed-backing-name (errors), relative-backing-name,\n"
        "protocol-backing (warnings).\n"
        "\n"
        "A missing backing file: every regular file of the search directories that\n"
        "opens as an image is considered (only the directories named, not their\n"
        "subdirectories). Never proposed: a file whose own backing chain contains the\n"
        "image (a loop), a file whose virtual size is not the image's (an overlay\n"
        "made with qemu-img create -b, as libvirt's snapshots are, has its backing's\n"
        "size; QEMU accepts a smaller backing file, but then the size is no evidence\n"
        "and the choice is left to you), a file of another format than the image\n"
        "names. With no backing format named only qcow2 files are considered (any\n"
        "file opens as raw). Evidence among the rest: the missing file's name (2\n"
        "points), the image's cluster size (1). When several tie at the top, their\n"
        "content decides: where the guest wrote part of a cluster, QEMU copied the\n"
        "rest of it from the backing file, so the image's data clusters hold the\n"
        "true backing file's bytes around what the guest wrote. At most 64 of them\n"
        "(and at most 16 MiB), spread over the image, are compared with each tied\n"
        "candidate's guest view, one 512-byte sector at a time; sectors zero on both\n"
        "sides are no evidence and not counted. A candidate wins with at least 8\n"
        "equal sectors and at least twice the runner-up's; copies of one file, and\n"
        "zero-only evidence, stay a tie (at most 8 tied candidates are read). Only a\n"
        "single best candidate is chosen; on a tie every candidate is listed and\n"
        "nothing is planned for that image. The new name keeps the old one's style:\n"
        "a relative name stays relative when the file found is in the image's\n"
        "directory, else the host's absolute name is written.\n"
        "\n"
        "With --root DIR, a backing name that starts with DIR itself (a tool run in\n"
        "the rescue shell wrote the path it saw there) opens in the rescue system\n"
        "but names nothing on the host: when the name without DIR is a file, it is\n"
        "reported (root-prefixed-backing-name) and the repair planned is rebase -u\n"
        "to that host name (the format kept, or qcow2 added when none is named and\n"
        "the file is qcow2).\n"
        "\n"
        "A missing backing format: the backing file is probed; a qcow2 header means\n"
        "qcow2 and the format is planned; anything else could be raw or a format\n"
        "extsnap does not read, so nothing is guessed. A format that contradicts the\n"
        "file is reported, never changed: which format the overlay was written\n"
        "against decides what the guest sees.\n"
        "\n"
        "Headers (and the content sample) are read without taking the images'\n"
        "locks (a running VM's chain can be diagnosed). --fix rewrites each header\n"
        "with rebase -u's single atomic write under the image's write lock (refused\n"
        "while QEMU holds the image), after checking that the header still says\n"
        "what the diagnosis read.\n"
        "The guest's data is not touched.\n"
        "\n"
        "--output=json prints one object: image, errors, warnings, findings (each:\n"
        "severity, kind, image, backing-filename, backing-filename-format, message,\n"
        "repair, plan-step, candidates: filename, format, virtual-size,\n"
        "cluster-size, score, evidence, rejected, chosen, content), plan (each: image,\n"
        "backing-filename, backing-filename-format, old-backing-filename,\n"
        "old-backing-filename-format); with --fix also applied (steps done) and\n"
        "after (errors, warnings, findings of the second diagnosis). content is null\n"
        "unless the content was compared: measured, allocated-clusters (the image's\n"
        "clusters with data), max-sampled-clusters (the bound), sampled-clusters,\n"
        "sector-size, compared-sectors (not zero on both sides), matching-sectors\n"
        "(the score), matching-clusters, unreadable (why not measured, or null).\n",
    .exit_status = "0 no error (warnings allowed; with --fix: none left), 1 could not diagnose "
                   "or repair, or a usage error, 2 errors found and not (all) repaired.",
    .opts = doctor_table,
    .operands = ES_OPERANDS_IMAGE,
};

static int add_search(const es_cmd *cmd, void *opts, const char *arg)
{
    doctor_opts *o = opts;
    if (!arg[0]) {
        es_cmd_usage_error(cmd, "--search needs a directory (it is empty)");
        return ES_OPT_USAGE;
    }
    es_err e;
    if (es_strv_add(&o->search, arg, &e) < 0)
        return ES_OPT_FAIL;
    return ES_OPT_OK;
}

static void print_summary(const qcow2_doctor_report *r, const char *image)
{
    if (!r->nfindings)
        printf("%s: chain of %zu image%s is healthy\n", image, r->chain_length,
               r->chain_length == 1 ? "" : "s");
    else
        printf("%s: %zu error%s, %zu warning%s\n", image, r->errors, r->errors == 1 ? "" : "s",
               r->warnings, r->warnings == 1 ? "" : "s");
}

static int diagnose(const es_cmd *c, const char *name, const qcow2_doctor_opts *o,
                    qcow2_doctor_report *r)
{
    es_err err;
    es_err_clear(&err);
    if (qcow2_doctor_diagnose(name, o, r, &err) < 0) {
        char *open_path = NULL;
        es_err ignored;
        if (es_img_root_open_path(o->root, name, &open_path, &ignored) < 0)
            open_path = NULL;
        es_img_root_fix_err(&err, o->root, open_path, name);
        free(open_path);
        es_cmd_error(c->name, &err);
        return -1;
    }
    return 0;
}

static int run(int argc, char **argv)
{
    const es_cmd *c = &es_cmd_img_doctor;
    doctor_opts dopt = {0};
    int rc = es_opt_parse(c, argc, argv, &dopt);
    if (rc >= 0)
        goto out_opts;
    if (argc - optind != 1) {
        rc = es_cmd_usage_error(c, argc - optind < 1 ? "IMAGE is missing" : "too many arguments");
        goto out_opts;
    }
    rc = es_img_root_check(c, dopt.root, ES_EXIT_FAIL);
    if (rc >= 0)
        goto out_opts;
    rc = ES_EXIT_FAIL;
    es_err err;
    es_err_clear(&err);
    char *name = NULL;
    es_strv dirs = {0};
    for (size_t i = 0; i < dopt.search.n; i++) {
        char *d = NULL;
        es_img_root_name(dopt.root, dopt.search.v[i], &d, &err);
        es_strv_add(&dirs, d, &err);
        free(d);
    }
    qcow2_doctor_opts o = {.root = dopt.root, .search = (const char *const *)dirs.v,
                           .nsearch = dirs.n};
    qcow2_doctor_report r = {0}, after = {0};
    bool have_after = false;
    size_t applied = 0;
    es_img_root_name(dopt.root, argv[optind], &name, &err);
    if (diagnose(c, name, &o, &r) < 0)
        goto out;
    json_object *doc = NULL;
    if (dopt.json) {
        doc = es_json_new_object();
        es_json_add_str(doc, "image", name);
        es_json_add_u64(doc, "errors", r.errors);
        es_json_add_u64(doc, "warnings", r.warnings);
        es_json_add(doc, "findings", es_doctor_findings_json(&r));
        es_json_add(doc, "plan", es_doctor_plan_json(&r));
    } else {
        es_doctor_print_findings(&r, "");
        es_doctor_print_plan(&r, "");
        print_summary(&r, name);
    }
    int fix_failed = 0;
    if (dopt.fix && r.nsteps) {
        if (qcow2_doctor_apply(&r, dopt.root, &applied, &err) < 0) {
            es_cmd_error(c->name, &err);
            fix_failed = 1;
        }
        if (!dopt.json)
            printf("Applied %zu of %zu repairs.\n", applied, r.nsteps);
        if (diagnose(c, name, &o, &after) == 0) {
            have_after = true;
            if (!dopt.json) {
                printf("After the repair:\n");
                es_doctor_print_findings(&after, "");
                print_summary(&after, name);
            }
        } else {
            fix_failed = 1;
        }
    } else if (!dopt.json && r.nsteps) {
        printf("Nothing changed: --fix carries out the plan.\n");
    }
    if (doc && dopt.fix) {
        es_json_add_u64(doc, "applied", applied);
        if (have_after) {
            json_object *a = es_json_new_object();
            es_json_add_u64(a, "errors", after.errors);
            es_json_add_u64(a, "warnings", after.warnings);
            es_json_add(a, "findings", es_doctor_findings_json(&after));
            es_json_add(doc, "after", a);
        }
    }
    if (doc) {
        es_json_print(stdout, doc);
        printf("\n");
        json_object_put(doc);
    }
    const qcow2_doctor_report *last = have_after ? &after : &r;
    if (fix_failed)
        rc = ES_EXIT_FAIL;
    else if (last->errors)
        rc = DOCTOR_EXIT_PROBLEMS;
    else
        rc = ES_EXIT_OK;
    if (rc == DOCTOR_EXIT_PROBLEMS && last->unrepaired_errors) {
        fflush(stdout);
        es_cmd_errorf(c->name, "%s: %zu error%s without a safe automatic repair (see above)",
                      name, last->unrepaired_errors, last->unrepaired_errors == 1 ? "" : "s");
    }
out:
    qcow2_doctor_report_free(&r);
    qcow2_doctor_report_free(&after);
    es_strv_free(&dirs);
    free(name);
out_opts:
    es_strv_free(&dopt.search);
    return rc;
}
