/* extsnap img create: a new qcow2 (or raw) image, as qemu-img create. */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "qcow2/create.h"
#include "qcow2/format.h"
#include "util/xalloc.h"

static int run(int argc, char **argv);

typedef struct create_opts {
    qcow2_create_opts q;
    const char *format;
    bool any_o; /* some -o given (refused for raw) */
} create_opts;

static int take_options(const es_cmd *cmd, void *opts, const char *arg);

static const es_opt create_table[] = {
    {.name = "format", .letter = 'f', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(create_opts, format), .help = "qcow2 (default) or raw (a sparse file)"},
    {.name = "backing", .letter = 'b', .kind = ES_OPT_STRING, .arg = "BACKING",
     .flags = ES_OPTF_FILE, .offset = offsetof(create_opts, q.backing_file),
     .help = "backing file, written into the header as given; a relative name is relative "
             "to FILE's directory"},
    {.name = "backing-format", .letter = 'F', .kind = ES_OPT_STRING, .arg = "FMT",
     .offset = offsetof(create_opts, q.backing_format),
     .help = "format of the backing file: qcow2 or raw (required with -b); it must match "
             "what the file is"},
    {.name = "unsafe", .letter = 'u', .kind = ES_OPT_FLAG, .offset = offsetof(create_opts, q.unsafe),
     .help = "do not open the backing file (SIZE is then required)"},
    {.name = "options", .letter = 'o', .kind = ES_OPT_CALL, .arg = "OPTS", .call = take_options,
     .flags = ES_OPTF_REPEAT,
     .help = "comma-separated qcow2 options (may be repeated): cluster_size=SIZE (power of "
             "two from 512 to 2M, default 64K), compat=1.1|0.10 (qcow2 version 3, the "
             "default, or 2; also v3, v2), refcount_bits=N (1, 2, 4, 8, 16 (default), 32 or "
             "64), extended_l2=on|off (32 subclusters per cluster, needs 16K clusters), "
             "lazy_refcounts=on|off (set the lazy refcounts feature bit), "
             "compression_type=zlib|zstd; '-o help' lists them"},
    {.name = "quiet", .letter = 'q', .kind = ES_OPT_IGNORE,
     .help = "accepted for qemu-img compatibility (no output anyway)"},
    ES_OPT_END,
};

const es_cmd es_cmd_img_create = {
    .name = "img create",
    .summary = "create a new qcow2 or raw image, optionally over a backing file",
    .run = run,
    .synopsis = "[-f qcow2|raw] [-b BACKING -F FMT] [-u] [-o OPTIONS] FILE [SIZE]",
    .description =
        "Create a new disk image. The qcow2 file is byte for byte what 'qemu-img create'\n"
        "writes with the same options. SIZE is in bytes or with a suffix K, M, G, T, P,\n"
        "E (powers of 1024), rounded up to a multiple of 512; with a backing file it\n"
        "defaults to the backing file's virtual size.\n",
    .details =
        "Without -u the backing file and its whole chain are opened to check that\n"
        "they exist and that -F is right.\n"
        "\n"
        "FILE must not exist or must be an empty file; nothing else is overwritten.\n"
        "The header is written last, after all other metadata is on disk, and a\n"
        "failed create removes what it created.\n",
    .exit_status = "0 created, 1 failed or a usage error.",
    .opts = create_table,
    .operands = ES_OPERANDS_IMAGE,
};

static const char *const option_help =
    "Supported options:\n"
    "  cluster_size=SIZE          qcow2 cluster size (512 .. 2M, default 64K)\n"
    "  compat=1.1|0.10            compatibility level (qcow2 version 3 or 2)\n"
    "  refcount_bits=N            width of a reference count entry in bits\n"
    "  extended_l2=on|off         extended L2 tables (subclusters)\n"
    "  lazy_refcounts=on|off      postpone refcount updates\n"
    "  compression_type=zlib|zstd compression method for compressed clusters\n";

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = false;
        return 0;
    }
    return -1;
}

/* Apply one key=value of -o. Returns 0, or -1 after printing a usage error. */
static int apply_option(const char *key, const char *val, qcow2_create_opts *o)
{
    const es_cmd *c = &es_cmd_img_create;
    unsigned long long n;
    if (!strcmp(key, "cluster_size")) {
        if (es_parse_size(val, &n) < 0 || n > UINT32_MAX)
            return es_cmd_usage_error(c, "invalid cluster_size '%s'", val), -1;
        o->cluster_size = (uint32_t)n;
    } else if (!strcmp(key, "compat")) {
        if (!strcmp(val, "1.1") || !strcmp(val, "v3"))
            o->version = 3;
        else if (!strcmp(val, "0.10") || !strcmp(val, "v2"))
            o->version = 2;
        else
            return es_cmd_usage_error(c, "invalid compat '%s' (1.1 or 0.10)", val), -1;
    } else if (!strcmp(key, "refcount_bits")) {
        char *end;
        n = strtoull(val, &end, 10);
        if (!*val || *end || n > 64 || val[0] == '-')
            return es_cmd_usage_error(c, "invalid refcount_bits '%s'", val), -1;
        o->refcount_bits = (uint32_t)n;
    } else if (!strcmp(key, "extended_l2")) {
        if (parse_bool(val, &o->extended_l2) < 0)
            return es_cmd_usage_error(c, "extended_l2 expects 'on' or 'off', not '%s'", val), -1;
    } else if (!strcmp(key, "lazy_refcounts")) {
        if (parse_bool(val, &o->lazy_refcounts) < 0)
            return es_cmd_usage_error(c, "lazy_refcounts expects 'on' or 'off', not '%s'", val),
                   -1;
    } else if (!strcmp(key, "compression_type")) {
        if (!strcmp(val, "zlib"))
            o->compression_type = QCOW2_COMPRESSION_ZLIB;
        else if (!strcmp(val, "zstd"))
            o->compression_type = QCOW2_COMPRESSION_ZSTD;
        else
            return es_cmd_usage_error(c, "invalid compression_type '%s' (zlib or zstd)", val),
                   -1;
    } else {
        return es_cmd_usage_error(c, "unknown -o option '%s' (try '-o help')", key), -1;
    }
    return 0;
}

/* Parse "k=v,k=v". Returns 0, 1 when help was printed, -1 on a usage error. */
static int parse_options(const char *arg, qcow2_create_opts *o, bool *any)
{
    if (!strcmp(arg, "help") || !strcmp(arg, "?")) {
        fputs(option_help, stdout);
        return 1;
    }
    char *copy = es_xstrdup(arg);
    int r = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && r == 0; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            es_cmd_usage_error(&es_cmd_img_create, "-o option '%s' needs a value", tok);
            r = -1;
            break;
        }
        *eq = '\0';
        r = apply_option(tok, eq + 1, o);
        *any = true;
    }
    free(copy);
    return r;
}

/* -o OPTS: into the qcow2 options; `-o help` lists them and ends the command. */
static int take_options(const es_cmd *cmd, void *opts, const char *arg)
{
    (void)cmd;
    create_opts *co = opts;
    int r = parse_options(arg, &co->q, &co->any_o);
    return r > 0 ? ES_OPT_DONE : r < 0 ? ES_OPT_USAGE : ES_OPT_OK;
}

static int run(int argc, char **argv)
{
    const es_cmd *c = &es_cmd_img_create;
    create_opts co = {.format = "qcow2"};
    qcow2_create_opts_init(&co.q);
    int r = es_opt_parse(c, argc, argv, &co);
    if (r >= 0)
        return r;
    qcow2_create_opts o = co.q;
    const char *format = co.format;
    bool any_o = co.any_o;
    int rest = argc - optind;
    if (rest < 1 || rest > 2)
        return es_cmd_usage_error(c, rest < 1 ? "FILE is missing" : "too many arguments");
    const char *file = argv[optind];
    if (rest == 2) {
        unsigned long long n;
        if (es_parse_size(argv[optind + 1], &n) < 0)
            return es_cmd_usage_error(c, "invalid size '%s'", argv[optind + 1]);
        o.size = n;
        o.size_set = true;
    }
    es_err err;
    es_err_clear(&err);
    if (!strcmp(format, "raw")) {
        if (o.backing_file || o.backing_format || any_o)
            return es_cmd_usage_error(c, "raw images take no backing file and no -o options");
        if (!o.size_set)
            return es_cmd_usage_error(c, "SIZE is required for a raw image");
        if (raw_create(file, o.size, &err) < 0) {
            es_cmd_error(c->name, &err);
            return ES_EXIT_FAIL;
        }
        return ES_EXIT_OK;
    }
    if (strcmp(format, "qcow2") != 0)
        return es_cmd_usage_error(c, "unsupported format '%s' (qcow2 or raw)", format);
    if (o.backing_file && !o.backing_file[0])
        o.backing_file = NULL;
    if (qcow2_create_check_opts(&o, &err) < 0)
        return es_cmd_usage_error(c, "%s", err.msg);
    if (qcow2_create(file, &o, &err) < 0) {
        es_cmd_error(c->name, &err);
        return ES_EXIT_FAIL;
    }
    return ES_EXIT_OK;
}
