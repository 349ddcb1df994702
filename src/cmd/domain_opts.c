#include "cmd/domain_opts.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd_env.h"
#include "cmd/json_out.h"
#include "snap/txn/exec.h"
#include "snap/txn/merge.h"
#include "snap/txn/plan_check.h"
#include "snap/txn/plan_json.h"
#include "snap/txn/plan_print.h"

void es_domain_opts_init(es_domain_opts *o, const es_cmd *cmd)
{
    memset(o, 0, sizeof *o);
    o->env.log = stderr;
    o->env.cmd = cmd->name;
    o->env.merge = snap_merge_qcow2;
    es_env_qmp_settings(&o->env); /* the options below win */
}

int es_domain_opt(const es_cmd *cmd, es_domain_opts *o, int c, const char *arg)
{
    switch (c) {
    case ES_OPT_ROOT:
        o->env.root = arg;
        return 1;
    case ES_OPT_CONFIG_DIR:
    case ES_OPT_SNAPSHOT_DIR:
    case ES_OPT_RUN_DIR:
        if (arg[0] != '/')
            return es_cmd_usage_error(cmd, "directories are absolute paths (as seen under "
                                           "--root), not '%s'",
                                      arg),
                   -1;
        if (c == ES_OPT_CONFIG_DIR)
            o->env.config_dir = arg;
        else if (c == ES_OPT_SNAPSHOT_DIR)
            o->env.snapshot_dir = arg;
        else
            o->env.run_dir = arg;
        return 1;
    case ES_OPT_DRY_RUN:
        o->env.dry_run = true;
        return 1;
    case ES_OPT_OUTPUT: {
        int out = es_parse_output(arg);
        if (out < 0)
            return es_cmd_usage_error(cmd, "--output is human or json, not '%s'", arg), -1;
        o->json = out == 1;
        return 1;
    }
    case ES_OPT_QMP_TIMEOUT:
    case ES_OPT_STALL:
        if (es_parse_seconds_ms(arg, c == ES_OPT_STALL ? &o->env.qmp_stall_ms
                                                       : &o->env.qmp_timeout_ms) < 0)
            return es_cmd_usage_error(cmd, "invalid %s '%s' (seconds)",
                                      c == ES_OPT_STALL ? "--stall" : "--qmp-timeout", arg),
                   -1;
        return 1;
    case ES_OPT_SPEED:
        if (es_parse_size(arg, &o->env.qmp_speed) < 0 ||
            o->env.qmp_speed > (unsigned long long)INT64_MAX)
            return es_cmd_usage_error(cmd, "invalid --speed '%s'", arg), -1;
        return 1;
    case 'q':
        o->env.quiet = true;
        return 1;
    case 'v':
        o->env.verbose++;
        return 1;
    default:
        return 0;
    }
}

int es_domain_opts_check(const es_cmd *cmd, const es_domain_opts *o)
{
    if (o->env.root && o->env.root[0]) {
        struct stat st;
        if (stat(o->env.root, &st) < 0 || !S_ISDIR(st.st_mode)) {
            es_cmd_errorf(cmd->name, "--root %s: not a directory", o->env.root);
            return -1;
        }
    }
    return 0;
}

int es_domain_bad_option(const es_cmd *cmd, char **argv)
{
    if (optopt && optopt < 0x1000)
        return es_cmd_usage_error(cmd, "invalid option or missing argument: -%c", optopt);
    return es_cmd_usage_error(cmd, "invalid option or missing argument: %s", argv[optind - 1]);
}

void es_domain_print_plan(const es_domain_opts *o, const snap_plan *p, const char *title,
                          bool dry_run)
{
    if (!o->json) {
        snap_plan_print(stdout, p, title);
        return;
    }
    json_object *j = NULL;
    es_err e = {0};
    if (snap_plan_to_json(p, false, &j, &e) < 0) {
        es_cmd_error(o->env.cmd, &e);
        return;
    }
    json_object_object_add(j, "dry-run", json_object_new_boolean(dry_run));
    es_json_print(stdout, j);
    fputc('\n', stdout);
    json_object_put(j);
}

int es_domain_run_plan(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c,
                       const snap_plan *p)
{
    es_err e = {0};
    if (o->env.dry_run) {
        /* The refusals the real run makes before its journal. */
        if (snap_plan_check(c, p, &e) < 0) {
            es_cmd_error(cmd->name, &e);
            return ES_EXIT_FAIL;
        }
        if (!o->env.quiet)
            es_domain_print_plan(o, p, "Plan (dry run, nothing changed):", true);
        return ES_EXIT_OK;
    }
    if (o->env.verbose && !o->json)
        snap_plan_print(stderr, p, "Plan:");
    if (snap_execute(c, p, &e) < 0) {
        es_cmd_error(cmd->name, &e);
        return ES_EXIT_FAIL;
    }
    if (!o->env.quiet)
        es_domain_print_plan(o, p, "Done:", false);
    return ES_EXIT_OK;
}

void es_json_add_str_or_null(json_object *o, const char *key, const char *val)
{
    if (val)
        es_json_add_str(o, key, val);
    else
        json_object_object_add(o, key, NULL);
}

int es_domain_parse_plain(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv, int nargs,
                          const char *expect)
{
    return es_domain_parse(cmd, o, argc, argv, nargs, expect, NULL, NULL, NULL);
}

int es_domain_parse_flag(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv, int nargs,
                         const char *expect, const char *flag, bool *value)
{
    return es_domain_parse(cmd, o, argc, argv, nargs, expect, flag, value, NULL);
}

int es_domain_parse(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv, int nargs,
                    const char *expect, const char *flag, bool *value, const char **qmp)
{
    enum { OPT_FLAG = 0x2000 };
    static const struct option online[ES_ONLINE_NLONGOPTS] = {ES_ONLINE_LONGOPTS};
    struct option longopts[] = {ES_DOMAIN_LONGOPTS, {0}, {0}, {0}, {0}, {0}, {0}};
    size_t n = sizeof longopts / sizeof *longopts - 2 - ES_ONLINE_NLONGOPTS;
    if (flag)
        longopts[n++] = (struct option){flag, no_argument, NULL, OPT_FLAG};
    for (size_t i = 0; qmp && i < ES_ONLINE_NLONGOPTS; i++)
        longopts[n++] = online[i];
    es_domain_opts_init(o, cmd);
    if (value)
        *value = false;
    if (qmp)
        *qmp = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ES_DOMAIN_SHORTOPTS, longopts, NULL)) != -1) {
        if (c == OPT_FLAG && value) {
            *value = true;
            continue;
        }
        if (c == ES_OPT_QMP && qmp) {
            *qmp = o->env.qmp = optarg;
            continue;
        }
        int h = es_domain_opt(cmd, o, c, optarg);
        if (h < 0)
            return ES_EXIT_USAGE;
        if (h == 0)
            return es_domain_bad_option(cmd, argv);
    }
    if (argc - optind != nargs)
        return es_cmd_usage_error(cmd, "expected %s", expect);
    if (es_domain_opts_check(cmd, o) < 0)
        return ES_EXIT_FAIL;
    return -1;
}
