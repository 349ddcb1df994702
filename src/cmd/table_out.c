#include "cmd/table_out.h"

#include <stdlib.h>
#include <string.h>

#include "util/text_width.h"
#include "util/xalloc.h"

#define ES_TABLE_GAP "   "

void es_table_init(es_table *t, size_t ncols)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
}

void es_table_add(es_table *t, const char *const *cells)
{
    char **v = es_xreallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof *v);
    t->cells = v;
    char **row = v + t->nrows * t->ncols;
    for (size_t k = 0; k < t->ncols; k++) {
        row[k] = es_xstrdup(cells[k] ? cells[k] : "");
    }
    t->nrows++;
}

void es_table_free(es_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

/* One row into buf (sized for the widest), trailing blanks dropped;
 * returns its width in columns. */
static size_t format_row(const es_table *t, size_t r, const size_t *w, char *buf)
{
    size_t at = 0, cols = 0, end = 0, end_cols = 0;
    buf[at++] = ' ';
    cols++;
    for (size_t k = 0; k < t->ncols; k++) {
        const char *c = t->cells[r * t->ncols + k];
        size_t len = strlen(c), cw = es_text_width(c);
        if (k) {
            memcpy(buf + at, ES_TABLE_GAP, strlen(ES_TABLE_GAP));
            at += strlen(ES_TABLE_GAP);
            cols += strlen(ES_TABLE_GAP);
        }
        memcpy(buf + at, c, len);
        at += len;
        cols += cw;
        if (len) {
            end = at;
            end_cols = cols;
        }
        for (size_t pad = cw; k + 1 < t->ncols && pad < w[k]; pad++, cols++)
            buf[at++] = ' ';
    }
    buf[end] = '\0';
    return end_cols;
}

void es_table_print(FILE *out, const es_table *t)
{
    size_t *w = es_xcalloc(t->ncols ? t->ncols : 1, sizeof *w);
    size_t bytes = 1;
    for (size_t k = 0; k < t->ncols; k++) {
        size_t most = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            const char *c = t->cells[r * t->ncols + k];
            size_t cw = es_text_width(c), len = strlen(c);
            w[k] = cw > w[k] ? cw : w[k];
            most = len > most ? len : most;
        }
        /* Padding is at most w[k] bytes besides the longest cell. */
        bytes += most + w[k] + strlen(ES_TABLE_GAP);
    }
    char *buf = es_xmalloc(bytes + 1);
    size_t rule = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        size_t cols = format_row(t, r, w, buf);
        rule = cols > rule ? cols : rule;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        format_row(t, r, w, buf);
        fprintf(out, "%s\n", buf);
        if (r == 0) {
            for (size_t i = 0; i < rule; i++)
                fputc('-', out);
            fputc('\n', out);
        }
    }
    free(buf);
    free(w);
}

char *es_cell_clip(const char *s, size_t max)
{
    static const char more[] = "...";
    size_t n = strcspn(s, "\n"), out = 0, cols = 0, fit = 0;
    bool cut = s[n] != '\0', blank = false;
    char *r = es_xmalloc(n + sizeof more);
    /* Blanks and controls collapse to one space; the rest is copied whole
     * characters at a time, remembering where "..." would still fit. */
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t l = es_utf8_next(s + i, n - i, &cp);
        if (cp <= 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            blank = out > 0;
            i += l;
            continue;
        }
        size_t cw = (size_t)es_char_width(cp) + (blank ? 1 : 0);
        if (cols + cw > max) {
            cut = true;
            break;
        }
        if (blank)
            r[out++] = ' ';
        blank = false;
        memcpy(r + out, s + i, l);
        out += l;
        cols += cw;
        if (cols + strlen(more) <= max)
            fit = out;
        i += l;
    }
    if (cut) {
        if (cols + strlen(more) > max)
            out = fit;
        while (out && r[out - 1] == ' ')
            out--;
        memcpy(r + out, more, strlen(more));
        out += strlen(more);
    }
    r[out] = '\0';
    return r;
}
