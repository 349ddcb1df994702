#include "cmd/progress_opt.h"

#include <string.h>
#include <unistd.h>

int es_progress_opt(const es_cmd *cmd, const char *arg, bool quiet, es_progress_mode *mode)
{
    bool tty = isatty(STDERR_FILENO);
    if (!arg || strcmp(arg, "auto") == 0) {
        *mode = tty && !quiet ? ES_PROGRESS_BAR : ES_PROGRESS_NONE;
        return 0;
    }
    if (es_progress_mode_parse(arg, tty, mode) < 0)
        return es_cmd_usage_error(cmd, "--progress is auto, bar, json or none, not '%s'", arg);
    return 0;
}
