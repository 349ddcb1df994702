#include "docgen/man_command.h"

#include <stdbool.h>
#include <string.h>

#include "docgen/roff.h"

/* Blocks of a text as man(7) wants them: lines at the margin are running
 * text (refilled; a blank line starts a new paragraph), a line "  - item"
 * and the more indented lines after it a bullet, any other indented line
 * kept as laid out. */
enum block { B_NONE, B_TEXT, B_BULLET, B_PRE };

static void flush_block(FILE *out, enum block b, const char *buf, bool *in_pre)
{
    if (b != B_PRE && *in_pre) {
        fputs(".fi\n.RE\n", out);
        *in_pre = false;
    }
    if (b == B_TEXT) {
        fputs(".PP\n", out);
        roff_paragraph(out, buf);
    } else if (b == B_BULLET) {
        fputs(".IP \\(bu 2\n", out);
        roff_paragraph(out, buf);
    }
}

static void write_text(FILE *out, const char *text)
{
    char buf[8192] = "";
    enum block cur = B_NONE;
    bool in_pre = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char l[1024];
        snprintf(l, sizeof l, "%.*s", (int)(n < sizeof l ? n : sizeof l - 1), line);
        line = nl ? nl + 1 : NULL;
        size_t lead = strspn(l, " ");
        enum block b = !l[lead] ? B_NONE
                       : strncmp(l, "  - ", 4) == 0 ? B_BULLET
                       : cur == B_BULLET && lead > 2 ? B_BULLET
                       : lead ? B_PRE
                       : B_TEXT;
        bool starts = b != cur || strncmp(l, "  - ", 4) == 0;
        if (starts || b == B_NONE) {
            flush_block(out, cur, buf, &in_pre);
            buf[0] = '\0';
        }
        if (b == B_NONE && in_pre) {
            fputs(".fi\n.RE\n", out);
            in_pre = false;
        }
        cur = b;
        if (b == B_PRE) {
            if (!in_pre)
                fputs(".PP\n.RS 2\n.nf\n", out);
            in_pre = true;
            roff_line(out, l);
        } else if (b != B_NONE) {
            strncat(buf, b == B_BULLET && starts ? l + 4 : l, sizeof buf - strlen(buf) - 2);
            strcat(buf, " ");
        }
    }
    flush_block(out, cur, buf, &in_pre);
    if (in_pre)
        fputs(".fi\n.RE\n", out);
}

/* \fB\-f\fR, \fB\-\-format\fR=\fIFMT\fR */
static void write_label(FILE *out, const es_opt *o)
{
    if (o->letter)
        fprintf(out, "\\fB\\-%c\\fR", o->letter);
    if (o->letter && o->name)
        fputs(", ", out);
    if (o->name) {
        fputs("\\fB\\-\\-", out);
        roff_inline(out, o->name);
        fputs("\\fR", out);
    }
    if (o->arg && (o->flags & ES_OPTF_OPTIONAL)) {
        fputs(o->name ? "[=\\fI" : "[\\fI", out);
        roff_inline(out, o->arg);
        fputs("\\fR]", out);
    } else if (o->arg) {
        fputs(o->name ? "=\\fI" : " \\fI", out);
        roff_inline(out, o->arg);
        fputs("\\fR", out);
    }
    fputc('\n', out);
}

static void write_option(FILE *out, const es_opt *o)
{
    fputs(".TP\n", out);
    write_label(out, o);
    roff_paragraph(out, o->help ? o->help : "");
}

static bool in_section(const es_opt *o, const char *section)
{
    return section ? o->section && strcmp(o->section, section) == 0 : !o->section;
}

/* The options of one section (NULL: the command's own), none hidden. */
static void write_section(FILE *out, const es_opt *opts, const char *section)
{
    for (const es_opt *o = opts; !es_opt_is_end(o); o++)
        if (!(o->flags & ES_OPTF_HIDDEN) && in_section(o, section))
            write_option(out, o);
}

static bool section_seen(const es_opt *opts, const es_opt *upto)
{
    for (const es_opt *o = opts; o < upto; o++)
        if (o->section && strcmp(o->section, upto->section) == 0)
            return true;
    return false;
}

void man_write_command(FILE *out, const es_cmd *c)
{
    fputs(".SH SYNOPSIS\n.B extsnap ", out);
    roff_line(out, c->name);
    roff_line(out, c->synopsis);
    fputs(".SH DESCRIPTION\n", out);
    write_text(out, c->description);
    if (c->details)
        write_text(out, c->details);
    fputs(".SH OPTIONS\n", out);
    write_section(out, c->opts, NULL);
    fputs(".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nthe short form of this page.\n", out);
    for (const es_opt *o = c->opts; !es_opt_is_end(o); o++) {
        if (!o->section || (o->flags & ES_OPTF_HIDDEN) || section_seen(c->opts, o))
            continue;
        fputs(".SS ", out);
        roff_line(out, o->section);
        write_section(out, c->opts, o->section);
    }
    if (c->exit_status) {
        fputs(".SH EXIT STATUS\n", out);
        roff_paragraph(out, c->exit_status);
    }
}

static bool same_opt(const es_opt *a, const es_opt *b)
{
    return a->name && b->name ? strcmp(a->name, b->name) == 0
                              : !a->name && !b->name && a->letter == b->letter;
}

/* The options a table flags ES_OPTF_GLOBAL (accepted before the command
 * too), each once. */
void man_write_global_options(FILE *out)
{
    const es_opt *seen[64];
    size_t n = 0;
    for (size_t i = 0; es_commands[i]; i++) {
        for (const es_opt *o = es_commands[i]->opts; !es_opt_is_end(o); o++) {
            if (!(o->flags & ES_OPTF_GLOBAL) || (o->flags & ES_OPTF_HIDDEN))
                continue;
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = same_opt(seen[j], o);
            if (dup || n == sizeof seen / sizeof seen[0])
                continue;
            if (!n)
                fputs("These options of the domain commands may also come before the command\n"
                      "(\\fBextsnap \\-\\-root /mnt/sysimage list\\fR \\fIDOMAIN\\fR).\n"
                      "Each command's page lists all the options it takes.\n",
                      out);
            seen[n++] = o;
            write_option(out, o);
        }
    }
    if (!n)
        fputs("Each command's page lists the options it takes.\n", out);
}
