#include "docgen/completion_opts.h"

#include <string.h>

/* Until the commands have option tables: no options, operands by group. */
void completion_write_command(FILE *out, const es_cmd *c)
{
    fprintf(out, "    '%s') _es_operands=%s ;;\n", c->name,
            strncmp(c->name, "img ", 4) == 0 ? "image" : "domain");
}

void completion_write_global_options(FILE *out)
{
    fputs("_extsnap_global_opts='--version --help'\n_extsnap_global_args=' '\n", out);
}
