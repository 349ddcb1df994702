/* extsnap entry point: global options, then dispatch through es_commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/cmd_env.h"
#include "cmd/suggest.h"
#include "cmd/version.h"

/* The commands whose name starts with `group` and a space ("img"), or all
 * when group is NULL. */
static void print_commands(FILE *out, const char *group)
{
    size_t n = group ? strlen(group) : 0;
    for (size_t i = 0; es_commands[i]; i++) {
        const char *name = es_commands[i]->name;
        if (!group || (strncmp(name, group, n) == 0 && name[n] == ' '))
            fprintf(out, "  %-14s %s\n", name, es_commands[i]->summary);
    }
}

static void print_overview(FILE *out)
{
    fprintf(out, "usage: extsnap [--version] [help [COMMAND]] [GLOBAL OPTIONS] COMMAND [ARGS...]\n\n"
                 "Manage external qcow2 snapshot chains without libvirtd or QEMU.\n\n"
                 "Commands:\n");
    print_commands(out, NULL);
    fprintf(out, "\nGlobal options (--root, --config-dir, --snapshot-dir, --run-dir, --swtpm-dir,\n"
                 "-q, -v) may also come before the command.\n"
                 "Run 'extsnap help COMMAND' or 'extsnap COMMAND --help' for details.\n");
}

static void print_group(FILE *out, const char *group)
{
    fprintf(out, "usage: extsnap %s COMMAND [ARGS...]\n\nCommands:\n", group);
    print_commands(out, group);
    fprintf(out, "\nRun 'extsnap help %s COMMAND' or 'extsnap %s COMMAND --help' for details.\n",
            group, group);
}

/* Commands may be two words ("img info"): join argv[0] and argv[1] if that
 * names a command. Returns the number of argv words consumed. */
static const es_cmd *lookup(int argc, char **argv, int *words)
{
    if (argc >= 2) {
        char two[128];
        snprintf(two, sizeof two, "%s %s", argv[0], argv[1]);
        const es_cmd *c = es_cmd_find(two);
        if (c) {
            *words = 2;
            return c;
        }
    }
    *words = 1;
    return es_cmd_find(argv[0]);
}

static bool is_group(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; es_commands[i]; i++)
        if (strncmp(es_commands[i]->name, name, n) == 0 && es_commands[i]->name[n] == ' ')
            return true;
    return false;
}

static bool is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* where: "" or "help: ". */
static int unknown_command(const char *where, const char *what)
{
    const char *near = es_cmd_suggest(what);
    if (near)
        fprintf(stderr, "extsnap: %sunknown command '%s'; did you mean '%s'?\n", where, what, near);
    else
        fprintf(stderr, "extsnap: %sunknown command '%s'\n", where, what);
    fprintf(stderr, "Try 'extsnap help'.\n");
    return ES_EXIT_USAGE;
}

/* Every command's option table, one option a line, for tools and tests:
 * COMMAND <tab> --LONG or - <tab> -L or - <tab> ARG or - <tab> kind
 * <tab> hidden|shown. */
static void print_tables(FILE *out)
{
    for (size_t i = 0; es_commands[i]; i++) {
        for (const es_opt *o = es_commands[i]->opts; !es_opt_is_end(o); o++)
            fprintf(out, "%s\t%s%s\t%s%c\t%s\t%d\t%s\n", es_commands[i]->name,
                    o->name ? "--" : "-", o->name ? o->name : "", o->letter ? "-" : "",
                    o->letter ? o->letter : '-', o->arg ? o->arg : "-", (int)o->kind,
                    (o->flags & ES_OPTF_HIDDEN) ? "hidden" : "shown");
    }
}

static int help(int argc, char **argv)
{
    if (argc == 0) {
        print_overview(stdout);
        return ES_EXIT_OK;
    }
    if (strcmp(argv[0], "--options") == 0) {
        print_tables(stdout);
        return ES_EXIT_OK;
    }
    int words;
    const es_cmd *c = lookup(argc, argv, &words);
    if (c) {
        es_cmd_print_help(stdout, c, true);
        return ES_EXIT_OK;
    }
    if (is_group(argv[0]) && argc == 1) {
        print_group(stdout, argv[0]);
        return ES_EXIT_OK;
    }
    char two[128];
    snprintf(two, sizeof two, "%s %s", argv[0], argc > 1 ? argv[1] : "");
    return unknown_command("help: ", is_group(argv[0]) ? two : argv[0]);
}

/* A global option any command's table flags ES_OPTF_GLOBAL, by its long
 * name (up to '=') or its letter. */
static const es_opt *find_global(const char *name, size_t len, char letter)
{
    for (size_t i = 0; es_commands[i]; i++) {
        for (const es_opt *o = es_commands[i]->opts; !es_opt_is_end(o); o++) {
            if (!(o->flags & ES_OPTF_GLOBAL))
                continue;
            if (letter ? o->letter == letter
                       : o->name && strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
        }
    }
    return NULL;
}

/* The global options before the command: argv[1 .. *end - 1] (a "--"
 * that ends them is skipped, not counted). Returns -1 when fine, else the
 * exit status (the error printed). */
static int leading_globals(int argc, char **argv, int *end, int *count)
{
    int i = 1;
    while (i < argc && argv[i][0] == '-' && argv[i][1]) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            *count = i - 1;
            *end = i + 1;
            return -1;
        }
        if (a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            const es_opt *o = find_global(a + 2, len, 0);
            if (!o || (!o->arg && eq)) {
                fprintf(stderr, "extsnap: unknown option '%s'\nTry 'extsnap help'.\n", a);
                return ES_EXIT_USAGE;
            }
            if (o->arg && !eq && ++i >= argc) {
                fprintf(stderr, "extsnap: option '%s' needs an argument\n", a);
                return ES_EXIT_USAGE;
            }
        } else {
            for (const char *l = a + 1; *l; l++) {
                const es_opt *o = find_global(NULL, 0, *l);
                if (!o || o->arg) {
                    fprintf(stderr, "extsnap: unknown option '-%c'\nTry 'extsnap help'.\n", *l);
                    return ES_EXIT_USAGE;
                }
            }
        }
        i++;
    }
    *count = i - 1;
    *end = i;
    return -1;
}

int main(int argc, char **argv)
{
    es_cmd_install_faults();
    if (argc < 2) {
        print_overview(stderr);
        return ES_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        es_print_version(stdout);
        return ES_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0 || is_help(argv[1]))
        return help(argc - 2, argv + 2);
    int start, nglobal;
    int rc = leading_globals(argc, argv, &start, &nglobal);
    if (rc >= 0)
        return rc;
    if (start >= argc) {
        print_overview(stderr);
        return ES_EXIT_USAGE;
    }
    int words;
    const es_cmd *c = lookup(argc - start, argv + start, &words);
    if (!c) {
        const char *word = argv[start];
        if (!is_group(word))
            return unknown_command("", word);
        if (start + 1 < argc && is_help(argv[start + 1])) {
            print_group(stdout, word);
            return ES_EXIT_OK;
        }
        if (start + 1 < argc && argv[start + 1][0] != '-') {
            char two[128];
            snprintf(two, sizeof two, "%s %s", word, argv[start + 1]);
            return unknown_command("", two);
        }
        fprintf(stderr, "extsnap: '%s' needs a subcommand\n", word);
        print_group(stderr, word);
        return ES_EXIT_USAGE;
    }
    /* The command's argv: its (last) name word, the global options given
     * before it, then the rest. */
    int cargc = argc - start - words + 1 + nglobal;
    char **cargv = calloc((size_t)cargc + 1, sizeof *cargv);
    if (!cargv) {
        fprintf(stderr, "extsnap: out of memory\n");
        return ES_EXIT_FAIL;
    }
    cargv[0] = argv[start + words - 1];
    memcpy(cargv + 1, argv + 1, (size_t)nglobal * sizeof *cargv);
    memcpy(cargv + 1 + nglobal, argv + start + words,
           (size_t)(argc - start - words) * sizeof *cargv);
    if (es_cmd_wants_help(c, cargc, cargv)) {
        free(cargv);
        return ES_EXIT_OK;
    }
    rc = es_cmd_exit_status(c->run(cargc, cargv));
    free(cargv);
    return rc;
}
