#include "docgen/man_command.h"

#include <stdbool.h>
#include <string.h>

#include "docgen/roff.h"

/* A text's paragraphs (separated by blank lines), each as man(7) wants it:
 * running text refilled; a list of "  - item" lines as bullets; any other
 * indented block kept as it is laid out. */
static void write_text(FILE *out, const char *text)
{
    const char *p = text;
    while (*p) {
        while (*p == '\n')
            p++;
        if (!*p)
            break;
        const char *end = strstr(p, "\n\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char para[8192];
        if (n >= sizeof para)
            n = sizeof para - 1;
        memcpy(para, p, n);
        para[n] = '\0';
        p += n;
        if (strncmp(para, "  - ", 4) == 0) {
            /* Bullets: each item runs to the next "  - " line. */
            char *item = para;
            while (item) {
                char *next = strstr(item + 1, "\n  - ");
                if (next)
                    *next = '\0';
                fputs(".IP \\(bu 2\n", out);
                roff_paragraph(out, item + 4);
                item = next ? next + 1 : NULL;
            }
        } else if (para[0] == ' ') {
            fputs(".PP\n.RS 2\n.nf\n", out);
            for (char *line = strtok(para, "\n"); line; line = strtok(NULL, "\n"))
                roff_line(out, line);
            fputs(".fi\n.RE\n", out);
        } else {
            fputs(".PP\n", out);
            roff_paragraph(out, para);
        }
    }
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
    if (o->arg) {
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

/* A command not yet on a table: its --help text as it is. */
static void write_legacy(FILE *out, const es_cmd *c)
{
    fputs(".SH DESCRIPTION\n.nf\n", out);
    const char *s = c->usage;
    while (*s) {
        size_t n = strcspn(s, "\n");
        char line[1024];
        if (n >= sizeof line)
            n = sizeof line - 1;
        memcpy(line, s, n);
        line[n] = '\0';
        roff_line(out, line);
        s += n;
        if (*s == '\n')
            s++;
    }
    fputs(".fi\n", out);
}

void man_write_command(FILE *out, const es_cmd *c)
{
    if (c->usage) {
        write_legacy(out, c);
        return;
    }
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

/* The options in the section "Global options" of any command, each once. */
void man_write_global_options(FILE *out)
{
    bool any = false;
    for (size_t i = 0; es_commands[i]; i++) {
        const es_cmd *c = es_commands[i];
        if (c->usage)
            continue;
        for (const es_opt *o = c->opts; !es_opt_is_end(o); o++) {
            if (!o->section || strcmp(o->section, "Global options") != 0 ||
                (o->flags & ES_OPTF_HIDDEN))
                continue;
            bool dup = false;
            for (size_t j = 0; j < i && !dup; j++) {
                const es_cmd *d = es_commands[j];
                for (const es_opt *q = d->usage ? NULL : d->opts; q && !es_opt_is_end(q) && !dup; q++)
                    dup = q->section && strcmp(q->section, "Global options") == 0 &&
                          ((q->name && o->name && strcmp(q->name, o->name) == 0) ||
                           (!q->name && !o->name && q->letter == o->letter));
            }
            for (const es_opt *q = c->opts; q < o && !dup; q++)
                dup = q->section && strcmp(q->section, "Global options") == 0 && q->name &&
                      o->name && strcmp(q->name, o->name) == 0;
            if (dup)
                continue;
            if (!any)
                fputs("The domain commands take these options, before the command or after it:\n",
                      out);
            any = true;
            write_option(out, o);
        }
    }
    if (!any)
        fputs("Each command's page lists the options it takes.\n", out);
}
