/* Command table: one file per command under src/cmd, dispatched by name. */
#ifndef ES_CMD_CMD_H
#define ES_CMD_CMD_H

#include <stdbool.h>

#include "util/err.h"

/* Exit codes (the table in README.md): a usage error exits 1 as in qemu-img,
 * never the code of "problems found" (verify and img check: 2, 3). */
#define ES_EXIT_OK 0
#define ES_EXIT_FAIL 1
#define ES_EXIT_USAGE 1
#define ES_EXIT_SIGNAL_BASE 128 /* a shell reports 130 after SIGINT, 143 after SIGTERM */

typedef struct es_cmd {
    const char *name;     /* "img info", "create", ... */
    const char *summary;  /* one line for `extsnap help` */
    const char *usage;    /* full --help text */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} es_cmd;

extern const es_cmd *const es_commands[];

const es_cmd *es_cmd_find(const char *name);

/* Print "extsnap: CMD: <error>" on stderr. */
void es_cmd_error(const char *cmd, const es_err *e);
/* Print "extsnap: CMD: message" on stderr (printf style). */
void es_cmd_errorf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Usage error: message + hint, returns ES_EXIT_USAGE. */
int es_cmd_usage_error(const es_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Handles --help/-h anywhere before "--": prints usage and returns true. */
bool es_cmd_wants_help(const es_cmd *cmd, int argc, char **argv);

/* SIGINT/SIGTERM end a command as uncaught signals do (status 130/143 in a
 * shell; offline commands are crash-safe and simply stop). Commands that
 * catch them (the online path cancels QEMU's jobs first) return a failure:
 * then this ends the process by that signal; else it returns rc. */
int es_cmd_exit_status(int rc);

/* Parse a size like 64M, 1G, 512, 2T (binary units, as qemu-img). */
int es_parse_size(const char *s, unsigned long long *out);
/* --output=human|json: returns 0 human, 1 json, -1 invalid. */
int es_parse_output(const char *s);

#endif
