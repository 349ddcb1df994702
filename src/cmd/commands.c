/* The dispatch table: every command extsnap knows, in help order. */
#include "cmd/cmd.h"

#include <stddef.h>

#define ES_COMMAND(sym) extern const es_cmd sym;
#include "cmd/commands.def"
#undef ES_COMMAND

const es_cmd *const es_commands[] = {
#define ES_COMMAND(sym) &sym,
#include "cmd/commands.def"
#undef ES_COMMAND
    NULL,
};
