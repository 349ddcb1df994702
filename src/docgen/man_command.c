#include "docgen/man_command.h"

#include <string.h>

#include "docgen/roff.h"

/* The --help text as it is, unfilled. */
void man_write_command(FILE *out, const es_cmd *c)
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

void man_write_global_options(FILE *out)
{
    fputs("Each command's page lists the options it takes.\n", out);
}
