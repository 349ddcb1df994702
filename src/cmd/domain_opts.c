#include "cmd/domain_opts.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd_env.h"
#include "cmd/json_out.h"
#include "snap/txn/merge.h"

static void es_domain_opts_init(es_domain_opts *o, const es_cmd *cmd)
{
    memset(o, 0, sizeof *o);
    o->env.log = stderr;
    o->env.cmd = cmd->name;
    o->env.merge = snap_merge_qcow2;
    es_env_qmp_settings(&o->env); /* the options below win */
}

int es_domain_opts_check(const es_cmd *cmd, es_domain_opts *o)
{
    es_progress_meter_init(&o->meter, es_progress_opt_mode(o->progress, o->env.quiet), stderr);
    o->env.progress = es_progress_meter_sink(&o->meter);
    if (o->env.qmp_speed > (unsigned long long)INT64_MAX) {
        es_cmd_usage_error(cmd, "invalid --speed '%llu'", o->env.qmp_speed);
        return -1;
    }
    if (o->env.root && o->env.root[0]) {
        struct stat st;
        if (stat(o->env.root, &st) < 0 || !S_ISDIR(st.st_mode)) {
            es_cmd_errorf(cmd->name, "--root %s: not a directory", o->env.root);
            return -1;
        }
    }
    return 0;
}

void es_domain_progress_end(const es_domain_opts *o)
{
    if (o->env.progress.opaque)
        es_progress_meter_end(o->env.progress.opaque);
}

void es_json_add_str_or_null(json_object *o, const char *key, const char *val)
{
    if (val)
        es_json_add_str(o, key, val);
    else
        json_object_object_add(o, key, NULL);
}

int es_domain_parse(const es_cmd *cmd, es_domain_opts *d, void *opts, int argc, char **argv,
                    int nargs, const char *expect)
{
    es_domain_opts_init(d, cmd);
    int r = es_opt_parse(cmd, argc, argv, opts);
    if (r >= 0)
        return r;
    if (nargs < 0)
        return -1; /* the caller counts the operands, then checks */
    if (argc - optind != nargs)
        return es_cmd_usage_error(cmd, "expected %s", expect);
    if (es_domain_opts_check(cmd, d) < 0)
        return ES_EXIT_FAIL;
    return -1;
}
