#include "cmd/progress_opt.h"

#include <unistd.h>

const char *const es_progress_choices[] = {"auto", "bar", "json", "none", NULL};

es_progress_mode es_progress_opt_mode(int choice, bool quiet)
{
    bool tty = isatty(STDERR_FILENO);
    es_progress_mode mode = ES_PROGRESS_NONE;
    if (choice == 0)
        return tty && !quiet ? ES_PROGRESS_BAR : ES_PROGRESS_NONE;
    es_progress_mode_parse(es_progress_choices[choice], tty, &mode); /* one of the choices */
    return mode;
}
