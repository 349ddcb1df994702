/* One command's man page body (SYNOPSIS, DESCRIPTION, OPTIONS ...) and the
 * global options section of extsnap(1), from the command tables. */
#ifndef ES_DOCGEN_MAN_COMMAND_H
#define ES_DOCGEN_MAN_COMMAND_H

#include <stdio.h>

#include "cmd/cmd.h"

void man_write_command(FILE *out, const es_cmd *c);
void man_write_global_options(FILE *out);

#endif
