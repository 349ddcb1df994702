/* Tables for people: columns as wide as their widest cell in terminal
 * columns (util/text_width.h), not in bytes, so that names in any script
 * (accents, CJK) keep the columns aligned. */
#ifndef ES_CMD_TABLE_OUT_H
#define ES_CMD_TABLE_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct es_table {
    size_t ncols, nrows;
    char **cells; /* row-major, the header is row 0 */
} es_table;

void es_table_init(es_table *t, size_t ncols);
/* Append a row of ncols cells (copied; NULL is an empty cell). The first
 * row added is the header. */
void es_table_add(es_table *t, const char *const *cells);
/* " a   b   c" per row, a rule of dashes under the header, the last column
 * not padded, no trailing blanks. */
void es_table_print(FILE *out, const es_table *t);
void es_table_free(es_table *t);

/* Text made fit for one cell (malloc'd): its first
 * line, runs of blanks and control characters as one space, trimmed, at most
 * max columns, ending in "..." when anything was left out. */
char *es_cell_clip(const char *s, size_t max);

#endif
