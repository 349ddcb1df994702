/* What the completion script knows of each command's options and operands,
 * written as bash from the command's option table. */
#ifndef ES_DOCGEN_COMPLETION_OPTS_H
#define ES_DOCGEN_COMPLETION_OPTS_H

#include <stdio.h>

#include "cmd/cmd.h"

/* One case branch of _extsnap_cmd for c. */
void completion_write_command(FILE *out, const es_cmd *c);
/* _extsnap_global_opts and _extsnap_global_args: what extsnap takes before
 * the command. */
void completion_write_global_options(FILE *out);

#endif
