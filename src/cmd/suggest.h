/* "Did you mean": the command name closest to a mistyped one. */
#ifndef ES_CMD_SUGGEST_H
#define ES_CMD_SUGGEST_H

#include <stddef.h>

/* The name of es_commands (or a group of them, "img") closest to word,
 * when close enough to be a typo; NULL otherwise. */
const char *es_cmd_suggest(const char *word);

#endif
