/* A command's option table run through getopt_long: the long and short
 * option lists are built from the table, each value stored as its kind
 * says, and every usage error worded the same way for every command. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/cmd_env.h"
#include "util/xalloc.h"

/* getopt_long's code of an option with no letter: this plus its index. */
#define LONG_ONLY_BASE 0x100

static size_t count_opts(const es_opt *t)
{
    size_t n = 0;
    while (!es_opt_is_end(&t[n]))
        n++;
    return n;
}

static bool takes_arg(const es_opt *o)
{
    return o->arg != NULL;
}

static const es_opt *by_code(const es_opt *t, size_t n, int code)
{
    if (code >= LONG_ONLY_BASE && (size_t)(code - LONG_ONLY_BASE) < n)
        return &t[code - LONG_ONLY_BASE];
    for (size_t i = 0; i < n; i++)
        if (t[i].letter && t[i].letter == code)
            return &t[i];
    return NULL;
}

/* The usage error for a bad argument: the option's own words or the default. */
static int bad_arg(const es_cmd *cmd, const es_opt *o, const char *arg)
{
    char msg[512];
    if (o->bad) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(msg, sizeof msg, o->bad, arg);
#pragma GCC diagnostic pop
    } else if (o->name) {
        snprintf(msg, sizeof msg, "invalid --%s '%s'", o->name, arg);
    } else {
        snprintf(msg, sizeof msg, "invalid -%c '%s'", o->letter, arg);
    }
    es_cmd_usage_error(cmd, "%s", msg);
    return es_cmd_usage_status(cmd);
}

static int parse_int(const char *s, int *out)
{
    if (!s[0] || s[0] < '0' || s[0] > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v > 0x7fffffff)
        return -1;
    *out = (int)v;
    return 0;
}

/* Store one option's value. Returns -1 when taken, else the exit status. */
static int store(const es_cmd *cmd, const es_opt *o, void *opts, const char *arg)
{
    char *field = (char *)opts + o->offset;
    if ((o->flags & ES_OPTF_ABSOLUTE) && arg && arg[0] != '/')
        return bad_arg(cmd, o, arg);
    switch (o->kind) {
    case ES_OPT_FLAG:
        *(bool *)field = true;
        return -1;
    case ES_OPT_COUNT:
        (*(int *)field)++;
        return -1;
    case ES_OPT_STRING:
        *(const char **)field = arg;
        return -1;
    case ES_OPT_INT:
        return parse_int(arg, (int *)field) < 0 ? bad_arg(cmd, o, arg) : -1;
    case ES_OPT_SIZE:
        return es_parse_size(arg, (unsigned long long *)field) < 0 ? bad_arg(cmd, o, arg) : -1;
    case ES_OPT_MSEC:
        return es_parse_seconds_ms(arg, (int *)field) < 0 ? bad_arg(cmd, o, arg) : -1;
    case ES_OPT_ENUM:
        if (!arg) { /* an optional argument left out */
            *(int *)field = 0;
            return -1;
        }
        for (int i = 0; o->choices && o->choices[i]; i++) {
            if (strcmp(o->choices[i], arg) == 0) {
                *(int *)field = i;
                return -1;
            }
        }
        return bad_arg(cmd, o, arg);
    case ES_OPT_CALL:
        switch (o->call(cmd, opts, arg)) {
        case ES_OPT_OK: return -1;
        case ES_OPT_DONE: return ES_EXIT_OK;
        case ES_OPT_FAIL: return ES_EXIT_FAIL;
        default: return es_cmd_usage_status(cmd);
        }
    case ES_OPT_IGNORE:
        return -1;
    }
    return -1;
}

/* getopt_long's '?' and ':' as one line naming the option as it was given. */
static int getopt_error(const es_cmd *cmd, int code, int argc, char **argv)
{
    const char *word = optind >= 1 && optind <= argc ? argv[optind - 1] : "";
    bool is_long = strncmp(word, "--", 2) == 0;
    if (code == ':') {
        if (is_long)
            es_cmd_usage_error(cmd, "option '%s' needs an argument", word);
        else
            es_cmd_usage_error(cmd, "option '-%c' needs an argument", optopt);
    } else if (is_long && optopt && strchr(word, '=')) {
        es_cmd_usage_error(cmd, "option '%.*s' takes no argument", (int)(strchr(word, '=') - word),
                           word);
    } else if (!is_long && optopt && optopt < LONG_ONLY_BASE) {
        es_cmd_usage_error(cmd, "unknown option '-%c'", optopt);
    } else {
        es_cmd_usage_error(cmd, "unknown option '%s'", word);
    }
    return es_cmd_usage_status(cmd);
}

int es_opt_parse(const es_cmd *cmd, int argc, char **argv, void *opts)
{
    const es_opt *t = cmd->opts;
    size_t n = count_opts(t);
    struct option *lo = es_xcalloc(n + 1, sizeof *lo);
    char *so = es_xmalloc(3 * n + 3);
    size_t nl = 0, ns = 0;
    if (cmd->parse & ES_PARSE_IN_ORDER)
        so[ns++] = '+';
    so[ns++] = ':'; /* a missing argument is ':', not '?' */
    for (size_t i = 0; i < n; i++) {
        int code = t[i].letter ? t[i].letter : LONG_ONLY_BASE + (int)i;
        if (t[i].name)
            lo[nl++] = (struct option){t[i].name,
                                       !takes_arg(&t[i])                 ? no_argument
                                       : t[i].flags & ES_OPTF_OPTIONAL ? optional_argument
                                                                         : required_argument,
                                       NULL, code};
        if (t[i].letter) {
            so[ns++] = t[i].letter;
            if (takes_arg(&t[i]))
                so[ns++] = ':';
            if (takes_arg(&t[i]) && (t[i].flags & ES_OPTF_OPTIONAL))
                so[ns++] = ':';
        }
    }
    so[ns] = '\0';
    optind = 1;
    opterr = 0;
    int status = -1, c;
    while (status < 0 && (c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        const es_opt *o = c == '?' || c == ':' ? NULL : by_code(t, n, c);
        status = o ? store(cmd, o, opts, optarg) : getopt_error(cmd, c, argc, argv);
    }
    free(lo);
    free(so);
    return status;
}
