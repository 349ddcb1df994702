/* --help made from a command's table: the usage line, the one-paragraph
 * description, the options (the command's own, then each shared group
 * under its heading), the exit status; the full form adds the details. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

#define HELP_WIDTH 79
#define HELP_COLUMN 22 /* where an option's help starts */

static void opt_label(const es_opt *o, char *buf, size_t len)
{
    char arg[64] = "";
    if (o->arg && (o->flags & ES_OPTF_OPTIONAL))
        snprintf(arg, sizeof arg, o->name ? "[=%s]" : "[%s]", o->arg);
    else if (o->arg)
        snprintf(arg, sizeof arg, o->name ? "=%s" : " %s", o->arg);
    if (o->name && o->letter)
        snprintf(buf, len, "-%c, --%s%s", o->letter, o->name, arg);
    else if (o->name)
        snprintf(buf, len, "--%s%s", o->name, arg);
    else
        snprintf(buf, len, "-%c%s", o->letter, arg);
}

/* text wrapped at HELP_WIDTH, continuation lines indented by `indent`;
 * the first line starts at column `at`. */
static void wrap(FILE *out, const char *text, int at, int indent)
{
    int col = at;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (!w)
            break;
        if (col > indent && col + 1 + (int)w > HELP_WIDTH) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', out);
            col++;
        }
        fwrite(p, 1, w, out);
        col += (int)w;
        p += w;
    }
    fputc('\n', out);
}

static void print_opt(FILE *out, const es_opt *o)
{
    char label[128];
    opt_label(o, label, sizeof label);
    int len = fprintf(out, "  %s", label);
    if (len + 1 > HELP_COLUMN) {
        fprintf(out, "\n%*s", HELP_COLUMN, "");
    } else {
        fprintf(out, "%*s", HELP_COLUMN - len, "");
    }
    wrap(out, o->help ? o->help : "", HELP_COLUMN, HELP_COLUMN);
}

/* The options of one section (NULL: the command's own). */
static void print_section(FILE *out, const es_cmd *cmd, const char *section)
{
    for (const es_opt *o = cmd->opts; !es_opt_is_end(o); o++) {
        if (o->flags & ES_OPTF_HIDDEN)
            continue;
        bool same = section ? o->section && strcmp(o->section, section) == 0 : !o->section;
        if (same)
            print_opt(out, o);
    }
}

/* Whether section's heading was already printed (an earlier entry has it). */
static bool seen_before(const es_cmd *cmd, const es_opt *upto)
{
    for (const es_opt *o = cmd->opts; o < upto; o++)
        if (o->section && strcmp(o->section, upto->section) == 0)
            return true;
    return false;
}

void es_cmd_print_help(FILE *out, const es_cmd *cmd, bool full)
{
    const char *form = cmd->synopsis;
    for (int i = 0; form; i++) {
        const char *nl = strchr(form, '\n');
        int len = nl ? (int)(nl - form) : (int)strlen(form);
        fprintf(out, "%s extsnap %s %.*s\n", i ? "      " : "usage:", cmd->name, len, form);
        form = nl ? nl + 1 : NULL;
    }
    fputc('\n', out);
    fputs(cmd->description, out);
    fputs("\nOptions:\n", out);
    print_section(out, cmd, NULL);
    fprintf(out, "  %-*s%s\n", HELP_COLUMN - 2, "-h, --help", "this text");
    for (const es_opt *o = cmd->opts; !es_opt_is_end(o); o++) {
        if (!o->section || (o->flags & ES_OPTF_HIDDEN) || seen_before(cmd, o))
            continue;
        fprintf(out, "\n%s:\n", o->section);
        print_section(out, cmd, o->section);
    }
    if (full && cmd->details) {
        fputc('\n', out);
        fputs(cmd->details, out);
    }
    if (cmd->exit_status)
        fprintf(out, "\nExit status: %s\n", cmd->exit_status);
    if (!full && cmd->details) {
        char page[64];
        snprintf(page, sizeof page, "extsnap-%s", cmd->name);
        for (char *p = page; *p; p++)
            if (*p == ' ')
                *p = '-';
        fprintf(out, "\nThe whole story: 'extsnap help %s' or 'man %s'.\n", cmd->name, page);
    }
}
