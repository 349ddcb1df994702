#include "cmd/cmd.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "online/online_connect.h"
#include "util/str.h"

const es_cmd *es_cmd_find(const char *name)
{
    for (size_t i = 0; es_commands[i]; i++)
        if (strcmp(es_commands[i]->name, name) == 0)
            return es_commands[i];
    return NULL;
}

void es_cmd_error(const char *cmd, const es_err *e)
{
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 128];
    fprintf(stderr, "extsnap: %s: %s\n", cmd, es_err_str(e, buf, sizeof buf));
}

/* One line: names and values from files may hold control characters. */
void es_cmd_errorf(const char *cmd, const char *fmt, ...)
{
    char raw[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 2048], line[4 * sizeof raw];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    es_str_escape_ctl(line, sizeof line, raw);
    fprintf(stderr, "extsnap: %s: %s\n", cmd, line);
}

int es_cmd_usage_error(const es_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "extsnap: %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'extsnap %s --help'.\n", cmd->name);
    va_end(ap);
    return es_cmd_usage_status(cmd);
}

bool es_cmd_wants_help(const es_cmd *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            es_cmd_print_help(stdout, cmd, false);
            return true;
        }
    }
    return false;
}

int es_cmd_usage_status(const es_cmd *cmd)
{
    return cmd->usage_status ? cmd->usage_status : ES_EXIT_USAGE;
}

int es_cmd_exit_status(int rc)
{
    int sig = snap_online_interrupted;
    if (rc == ES_EXIT_OK || !sig)
        return rc;
    /* End by the signal itself, as an uncaught one would: the shell reports
     * 128 + sig and a calling script stops too (it would go on after a
     * plain exit 130). */
    fflush(stdout);
    fflush(stderr);
    signal(sig, SIG_DFL);
    raise(sig);
    return ES_EXIT_SIGNAL_BASE + sig;
}

int es_parse_size(const char *s, unsigned long long *out)
{
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'B': shift = 0; end++; break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    case 'P': shift = 50; end++; break;
    case 'E': shift = 60; end++; break;
    default: return -1;
    }
    if (*end)
        return -1;
    if (shift && v > (~0ull >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

const char *const es_output_choices[] = {"human", "json", NULL};

