#include "qmp/qmp_fault.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

#define POINTS_MAX 8

static const char *const point_names[] = {"finalize", "transaction-done", "bitmaps"};
#define NPOINTS (sizeof point_names / sizeof point_names[0])

static struct {
    unsigned long count[NPOINTS];
    struct {
        size_t point;
        unsigned long nth;
        bool kill;
    } faults[POINTS_MAX];
    size_t nfaults;
} hook;

static size_t point_index(const char *name)
{
    for (size_t i = 0; i < NPOINTS; i++)
        if (strcmp(name, point_names[i]) == 0)
            return i;
    return NPOINTS;
}

int qmp_fault_install(const char *spec)
{
    if (!spec || !*spec)
        return 0;
    char *copy = es_xstrdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && hook.nfaults < POINTS_MAX;
         tok = strtok_r(NULL, ",", &save)) {
        char point[32], action[16];
        unsigned long n;
        if (sscanf(tok, "%31[a-z-]:%lu:%15[a-z]", point, &n, action) != 3)
            continue;
        size_t p = point_index(point);
        if (p == NPOINTS || n == 0 || (strcmp(action, "kill") && strcmp(action, "error")))
            continue;
        hook.faults[hook.nfaults].point = p;
        hook.faults[hook.nfaults].nth = n;
        hook.faults[hook.nfaults].kill = strcmp(action, "kill") == 0;
        hook.nfaults++;
    }
    free(copy);
    return 0;
}

int qmp_fault_point(const char *point, es_err *e)
{
    size_t p = point_index(point);
    if (p == NPOINTS || !hook.nfaults)
        return 0;
    unsigned long n = ++hook.count[p];
    for (size_t i = 0; i < hook.nfaults; i++) {
        if (hook.faults[i].point != p || hook.faults[i].nth != n)
            continue;
        if (hook.faults[i].kill) {
            raise(SIGKILL);
        }
        return es_err_set(e, 0, NULL, "injected fault at %s #%lu", point, n);
    }
    return 0;
}
