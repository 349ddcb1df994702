#include "docgen/man_pages.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "docgen/man_command.h"
#include "docgen/roff.h"

/* "img info" -> "extsnap-img-info" */
static void page_name(char *buf, size_t len, const es_cmd *c)
{
    snprintf(buf, len, "extsnap-%s", c->name);
    for (char *p = buf; *p; p++)
        if (*p == ' ')
            *p = '-';
}

static void write_command_list(FILE *out)
{
    for (size_t i = 0; es_commands[i]; i++) {
        char page[128];
        page_name(page, sizeof page, es_commands[i]);
        fputs(".TP\n.B ", out);
        roff_line(out, es_commands[i]->name);
        roff_paragraph(out, es_commands[i]->summary);
        fputs("(see\n.BR ", out);
        roff_inline(out, page);
        fputs(" (1))\n", out);
    }
}

static void write_see_also(FILE *out)
{
    for (size_t i = 0; es_commands[i]; i++) {
        char page[128];
        page_name(page, sizeof page, es_commands[i]);
        fputs(".BR ", out);
        roff_inline(out, page);
        fputs(" (1),\n", out);
    }
    fputs(".BR qemu\\-img (1),\n.BR virsh (1)\n", out);
}

/* Copy the template, replacing @VERSION@ inside lines and the lines that
 * are a placeholder alone. */
static int write_main_page(const char *template_path, FILE *out, const char *version)
{
    FILE *in = fopen(template_path, "r");
    if (!in) {
        fprintf(stderr, "es_docgen: %s: %s\n", template_path, strerror(errno));
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, in)) {
        if (strcmp(line, "@COMMANDS@\n") == 0) {
            write_command_list(out);
        } else if (strcmp(line, "@GLOBAL_OPTIONS@\n") == 0) {
            man_write_global_options(out);
        } else if (strcmp(line, "@SEE_ALSO@\n") == 0) {
            write_see_also(out);
        } else {
            char *v = strstr(line, "@VERSION@");
            if (v) {
                fwrite(line, 1, (size_t)(v - line), out);
                fputs(version, out);
                fputs(v + strlen("@VERSION@"), out);
            } else {
                fputs(line, out);
            }
        }
    }
    int bad = ferror(in);
    fclose(in);
    if (bad) {
        fprintf(stderr, "es_docgen: %s: read error\n", template_path);
        return -1;
    }
    return 0;
}

static int write_command_page(const es_cmd *c, FILE *out, const char *version)
{
    char page[128], upper[128];
    page_name(page, sizeof page, c);
    size_t i = 0;
    for (; page[i] && i + 1 < sizeof upper; i++)
        upper[i] = (char)(page[i] >= 'a' && page[i] <= 'z' ? page[i] - 'a' + 'A' : page[i]);
    upper[i] = '\0';
    fputs(".TH ", out);
    roff_inline(out, upper);
    fprintf(out, " 1 \"\" \"extsnap %s\" \"User Commands\"\n.SH NAME\n", version);
    roff_inline(out, page);
    fputs(" \\- ", out);
    roff_line(out, c->summary);
    man_write_command(out, c);
    fputs(".SH SEE ALSO\n.BR extsnap (1)\n", out);
    return 0;
}

static int write_file(const char *outdir, const char *base, const es_cmd *c,
                      const char *template_path, const char *version)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.1", outdir, base);
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "es_docgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int r = c ? write_command_page(c, out, version) : write_main_page(template_path, out, version);
    if (fclose(out) != 0 && r == 0) {
        fprintf(stderr, "es_docgen: %s: %s\n", path, strerror(errno));
        r = -1;
    }
    return r;
}

int man_write_all(const char *template_path, const char *outdir, const char *version)
{
    if (write_file(outdir, "extsnap", NULL, template_path, version) < 0)
        return -1;
    for (size_t i = 0; es_commands[i]; i++) {
        char page[128];
        page_name(page, sizeof page, es_commands[i]);
        if (write_file(outdir, page, es_commands[i], template_path, version) < 0)
            return -1;
    }
    return 0;
}
