#include "docgen/roff.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

void roff_inline(FILE *out, const char *s)
{
    char prev = ' ';
    for (; *s; prev = *s++) {
        if (*s == '\\')
            fputs("\\e", out);
        else if (*s == '-' && (isspace((unsigned char)prev) || strchr("[(|-=,", prev)))
            fputs("\\-", out);
        else
            fputc(*s, out);
    }
}

void roff_line(FILE *out, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", out);
    roff_inline(out, s);
    fputc('\n', out);
}

void roff_paragraph(FILE *out, const char *s)
{
    bool line_open = false;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        size_t n = strcspn(s, " \t\n");
        char word[512];
        if (n >= sizeof word)
            n = sizeof word - 1;
        memcpy(word, s, n);
        word[n] = '\0';
        s += n;
        if (!line_open && (word[0] == '.' || word[0] == '\''))
            fputs("\\&", out);
        else if (line_open)
            fputc(' ', out);
        roff_inline(out, word);
        line_open = true;
        /* A sentence ends the output line (not "e.g." or "i.e."). */
        if (n > 1 && strchr(".:;?!", word[n - 1]) && !memchr(word, '.', n - 1) && *s) {
            fputc('\n', out);
            line_open = false;
        }
    }
    if (line_open)
        fputc('\n', out);
}
