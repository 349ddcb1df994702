/* Command table: one file per command under src/cmd, dispatched by name. */
#ifndef ES_CMD_CMD_H
#define ES_CMD_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cmd/optable.h"
#include "util/err.h"

/* Exit codes (the table in README.md): a usage error exits 1 as in qemu-img,
 * never the code of "problems found" (verify and img check: 2, 3). */
#define ES_EXIT_OK 0
#define ES_EXIT_FAIL 1
#define ES_EXIT_USAGE 1
#define ES_EXIT_SIGNAL_BASE 128 /* a shell reports 130 after SIGINT, 143 after SIGTERM */

/* A command: its name, its texts and its option table (cmd/optable.h),
 * from which its parsing, --help, man page and completion are made. */
typedef struct es_cmd {
    const char *name;     /* "img info", "create", ... */
    const char *summary;  /* one line for `extsnap help` (and the man page's NAME) */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    const char *synopsis;    /* what follows "extsnap NAME": "[OPTIONS] IMAGE"; several
                              * forms: one per line, '\n' between */
    const char *description; /* one paragraph for --help, lines wrapped, '\n'-ended */
    const char *details;     /* the rest of the story (man page DESCRIPTION after the
                              * paragraph, `extsnap help NAME`): paragraphs of wrapped
                              * lines, blank lines between; NULL: none */
    const char *exit_status; /* "0 done, 1 failed, ...": one line, no '\n' */
    const es_opt *opts;      /* ends with ES_OPT_END */
    unsigned parse;          /* ES_PARSE_* */
    int usage_status;        /* exit status of a usage error; 0: ES_EXIT_USAGE */
    es_operand_kind operands;
} es_cmd;

/* Every command, in help order, NULL-terminated (commands.def). */
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

/* Parse argv by cmd's option table into opts (the command's options
 * struct, zeroed or preset with defaults by the caller). Returns -1 when
 * parsed (operands start at argv[optind]), else the exit status to return
 * (a usage error is printed). */
int es_opt_parse(const es_cmd *cmd, int argc, char **argv, void *opts);
/* --help: usage line, description, options; full adds the details. */
void es_cmd_print_help(FILE *out, const es_cmd *cmd, bool full);
/* The usage status of cmd (its usage_status, else ES_EXIT_USAGE). */
int es_cmd_usage_status(const es_cmd *cmd);

/* SIGINT/SIGTERM end a command as uncaught signals do (status 130/143 in a
 * shell; offline commands are crash-safe and simply stop). Commands that
 * catch them (the online path cancels QEMU's jobs first) return a failure:
 * then this ends the process by that signal; else it returns rc. */
int es_cmd_exit_status(int rc);

/* Parse a size like 64M, 1G, 512, 2T (binary units, as qemu-img). */
int es_parse_size(const char *s, unsigned long long *out);

/* --output=FMT in an option table: the int `field` of `type` becomes 0
 * (human) or 1 (json); `bad` is the usage error's format. */
extern const char *const es_output_choices[];
#define ES_OUTPUT_OPT(type, field, bad_fmt)                                                    \
    {.name = "output", .kind = ES_OPT_ENUM, .arg = "FMT", .offset = offsetof(type, field),     \
     .choices = es_output_choices, .bad = bad_fmt, .help = "human (default) or json"}

#endif
