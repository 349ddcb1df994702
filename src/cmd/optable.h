/* One declarative option table per command: what each option is called,
 * what it takes, what it means and where its value goes. The same table
 * drives the parser (optable_parse.c: getopt_long), --help (optable_help.c)
 * and the generated man pages and bash completion, so none of them can
 * drift from the code.
 *
 * A command's table is an array of es_opt ending with ES_OPT_END. Each
 * entry stores its value at `offset` in the command's own options struct
 * (the `opts` passed to es_opt_parse); shared groups (the domain options
 * of domain_opts.h, the image commands' --root of img_root.h) are macros
 * that expand to entries, given where their struct sits in the command's. */
#ifndef ES_CMD_OPTABLE_H
#define ES_CMD_OPTABLE_H

#include <stddef.h>

struct es_cmd;

typedef enum es_opt_kind {
    ES_OPT_FLAG,   /* no argument: bool field = true */
    ES_OPT_COUNT,  /* no argument: int field += 1 (-v -v) */
    ES_OPT_STRING, /* const char * field = the argument (the last one given wins) */
    ES_OPT_INT,    /* int field: a non-negative decimal number */
    ES_OPT_SIZE,   /* unsigned long long field: 512, 64K, 1G ... (es_parse_size) */
    ES_OPT_MSEC,   /* int field: seconds (decimal, 0 < s <= 86400) as milliseconds */
    ES_OPT_ENUM,   /* int field = index of the argument in `choices` */
    ES_OPT_CALL,   /* `call` gets the argument (NULL when the option takes none) */
    ES_OPT_IGNORE, /* accepted and ignored (arg NULL: no argument) */
} es_opt_kind;

/* What es_opt.call returns. */
enum {
    ES_OPT_OK = 0,    /* taken, go on */
    ES_OPT_USAGE = 1, /* a usage error, already printed (es_cmd_usage_error) */
    ES_OPT_DONE = 2,  /* the option did the whole job (e.g. `-o help`): exit 0 */
    ES_OPT_FAIL = 3,  /* a failure, already printed (out of memory): exit 1 */
};

/* es_opt.flags */
enum {
    ES_OPTF_REPEAT = 1 << 0, /* may be given several times, each one counts */
    ES_OPTF_HIDDEN = 1 << 1, /* accepted but not documented (--help, man, completion) */
    ES_OPTF_FILE = 1 << 2,   /* the argument is a file name (completion) */
    ES_OPTF_DIR = 1 << 3,    /* the argument is a directory (completion) */
    ES_OPTF_ABSOLUTE = 1 << 4, /* the argument must start with '/' (else `bad`) */
    ES_OPTF_GLOBAL = 1 << 5, /* also accepted before the command: extsnap --root R list D */
    ES_OPTF_OPTIONAL = 1 << 6, /* the argument may be left out (--progress, --progress=json);
                                * ES_OPT_ENUM then stores choice 0 */
};

typedef struct es_opt {
    const char *name;    /* long name without "--"; NULL: a short option only */
    char letter;         /* short option letter; 0: none */
    es_opt_kind kind;
    const char *arg;     /* the argument's name in help ("DIR"); NULL: takes none */
    const char *help;    /* one or two sentences, no newline (wrapped when printed) */
    size_t offset;       /* of the target field in the command's options struct */
    const char *const *choices; /* ES_OPT_ENUM: allowed values, NULL-terminated */
    const char *bad;     /* usage error for a bad argument: printf format with one %s
                          * (the argument); NULL: "invalid --NAME '%s'" */
    int (*call)(const struct es_cmd *cmd, void *opts, const char *arg); /* ES_OPT_CALL */
    unsigned flags;      /* ES_OPTF_* */
    const char *section; /* NULL: the command's own options; else a shared group's
                          * heading ("Global options"), printed after them */
} es_opt;

#define ES_OPT_END {NULL, 0, ES_OPT_FLAG, NULL, NULL, 0, NULL, NULL, NULL, 0, NULL}
#define es_opt_is_end(o) (!(o)->name && !(o)->letter)

/* What the operands are, for completion. */
typedef enum es_operand_kind {
    ES_OPERANDS_NONE,
    ES_OPERANDS_IMAGE,  /* image files */
    ES_OPERANDS_DOMAIN, /* a domain name (<config-dir>/NAME.xml) or its XML file, then names */
} es_operand_kind;

/* es_cmd.parse */
enum {
    ES_PARSE_IN_ORDER = 1 << 0, /* options end at the first operand (qemu-img's order) */
};

/* Iterate every command: for (const es_cmd *const *c = es_commands; *c; c++)
 * (cmd/cmd.h: the struct with its synopsis, description, details,
 * exit_status and opts), and each table: for (const es_opt *o = (*c)->opts;
 * !es_opt_is_end(o); o++).
 * `extsnap help --options` prints every table, one option a line. */

#endif
