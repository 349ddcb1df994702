/* "Did you mean": the command name closest to a mistyped one. */
#ifndef ES_CMD_SUGGEST_H
#define ES_CMD_SUGGEST_H

#include <stddef.h>

/* Edit distance of a and b (insert, delete, substitute, swap two
 * neighbours: one each), case-sensitive. */
size_t es_edit_distance(const char *a, const char *b);

/* The name of es_commands (or a group of them, "img") closest to word,
 * when close enough to be a typo; NULL otherwise. */
const char *es_cmd_suggest(const char *word);

#endif
