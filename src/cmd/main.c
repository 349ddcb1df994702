/* extsnap entry point: global options, then dispatch through es_commands. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/cmd_env.h"

static void print_overview(FILE *out)
{
    fprintf(out, "usage: extsnap [--version] [help [COMMAND]] COMMAND [ARGS...]\n\n"
                 "Manage external qcow2 snapshot chains without libvirtd or QEMU.\n\n"
                 "Commands:\n");
    for (size_t i = 0; es_commands[i]; i++)
        fprintf(out, "  %-14s %s\n", es_commands[i]->name, es_commands[i]->summary);
    fprintf(out, "\nRun 'extsnap help COMMAND' or 'extsnap COMMAND --help' for details.\n");
}

/* Commands may be two words ("img info"): join argv[1] and argv[2] if that
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

static int help(int argc, char **argv)
{
    if (argc == 0) {
        print_overview(stdout);
        return ES_EXIT_OK;
    }
    int words;
    const es_cmd *c = lookup(argc, argv, &words);
    if (!c) {
        fprintf(stderr, "extsnap: help: unknown command '%s'\n", argv[0]);
        return ES_EXIT_USAGE;
    }
    fputs(c->usage, stdout);
    return ES_EXIT_OK;
}

int main(int argc, char **argv)
{
    es_cmd_install_faults();
    if (argc < 2) {
        print_overview(stderr);
        return ES_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("extsnap %s\n", ES_VERSION);
        return ES_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return help(argc - 2, argv + 2);
    if (argv[1][0] == '-') {
        fprintf(stderr, "extsnap: unknown option '%s'\nTry 'extsnap help'.\n", argv[1]);
        return ES_EXIT_USAGE;
    }
    int words;
    const es_cmd *c = lookup(argc - 1, argv + 1, &words);
    if (!c) {
        if (is_group(argv[1]) && argc >= 3 && argv[2][0] != '-')
            fprintf(stderr, "extsnap: unknown command '%s %s'\nTry 'extsnap help'.\n", argv[1], argv[2]);
        else if (is_group(argv[1]))
            fprintf(stderr, "extsnap: '%s' needs a subcommand\nTry 'extsnap help'.\n", argv[1]);
        else
            fprintf(stderr, "extsnap: unknown command '%s'\nTry 'extsnap help'.\n", argv[1]);
        return ES_EXIT_USAGE;
    }
    /* argv for the command starts at its (last) name word. */
    int cargc = argc - words;
    char **cargv = argv + words;
    if (es_cmd_wants_help(c, cargc, cargv))
        return ES_EXIT_OK;
    return es_cmd_exit_status(c->run(cargc, cargv));
}
