/* Writing roff for man(7): text escaped so that groff prints it as written. */
#ifndef ES_DOCGEN_ROFF_H
#define ES_DOCGEN_ROFF_H

#include <stdio.h>

/* Text inside a line: backslashes escaped, and every '-' that starts an
 * option name (at a word's start or after another '-') written as \- so
 * that it copies and searches as a hyphen-minus. */
void roff_inline(FILE *out, const char *s);
/* The same for a whole output line: one starting with '.' or '\'' (which
 * roff would take for a request) gets \& in front. */
void roff_line(FILE *out, const char *s);
/* A paragraph of running text: the words refilled one sentence per output
 * line (as man pages are written, so groff sets the space after a full stop). */
void roff_paragraph(FILE *out, const char *s);

#endif
