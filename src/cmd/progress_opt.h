/* The commands' progress option: -p / --progress[=MODE], MODE one of auto
 * (the default: a bar on stderr when it is a terminal), bar, json (lines on
 * stderr, README "Progress") or none. -q silences auto, not an explicit
 * bar or json. */
#ifndef ES_CMD_PROGRESS_OPT_H
#define ES_CMD_PROGRESS_OPT_H

#include <stdbool.h>

#include "cmd/cmd.h"
#include "util/progress_meter.h"

#define ES_PROGRESS_OPT_USAGE                                                                  \
    "  -p, --progress[=MODE]  progress on stderr: auto (default: a bar with bytes,\n"          \
    "                    rate and ETA when stderr is a terminal, else nothing),\n"          \
    "                    bar, json (one JSON object per line, see README\n"                 \
    "                    \"Progress\") or none\n"

/* *arg: the MODE given (NULL: -p or --progress alone, or not given).
 * Returns 0, or the usage error's exit status. */
int es_progress_opt(const es_cmd *cmd, const char *arg, bool quiet, es_progress_mode *mode);

#endif
