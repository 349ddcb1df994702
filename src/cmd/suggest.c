#include "cmd/suggest.h"

#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"

#define MAX_WORD 64

/* Edit distance of a and b (insert, delete, substitute, swap two
 * neighbours: one each), case-sensitive. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > MAX_WORD || m > MAX_WORD)
        return (size_t)-1;
    /* d[i][j]: distance of a's first i and b's first j characters. */
    size_t d[MAX_WORD + 1][MAX_WORD + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* Close enough to be a typo: at most 2 edits, and fewer than half the word. */
static bool close_enough(const char *word, size_t dist)
{
    return dist <= 2 && dist * 2 < strlen(word) + 1;
}

static void consider(const char *word, const char *name, size_t len, const char **best,
                     size_t *best_dist, char *buf, size_t buflen)
{
    if (len >= buflen)
        return;
    char cand[MAX_WORD + 1];
    memcpy(cand, name, len);
    cand[len] = '\0';
    size_t dist = edit_distance(word, cand);
    if (dist < *best_dist && close_enough(word, dist)) {
        *best_dist = dist;
        memcpy(buf, cand, len + 1);
        *best = buf;
    }
}

const char *es_cmd_suggest(const char *word)
{
    static char buf[MAX_WORD + 1];
    const char *best = NULL;
    size_t best_dist = (size_t)-1;
    bool two_words = strchr(word, ' ') != NULL;
    for (size_t i = 0; es_commands[i]; i++) {
        const char *name = es_commands[i]->name;
        const char *space = strchr(name, ' ');
        /* A one-word typo is compared with one-word names and group names. */
        if (two_words || !space)
            consider(word, name, strlen(name), &best, &best_dist, buf, sizeof buf);
        else
            consider(word, name, (size_t)(space - name), &best, &best_dist, buf, sizeof buf);
    }
    return best;
}
