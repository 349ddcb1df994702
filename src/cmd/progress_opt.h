/* The commands' progress option: -p / --progress[=MODE], MODE one of auto
 * (the default: a bar on stderr when it is a terminal), bar, json (lines on
 * stderr, README "Progress") or none. -q silences auto, not an explicit
 * bar or json. */
#ifndef ES_CMD_PROGRESS_OPT_H
#define ES_CMD_PROGRESS_OPT_H

#include <stdbool.h>
#include <stddef.h>

#include "cmd/optable.h"
#include "util/progress_meter.h"

/* auto, bar, json, none: the choice's index is what the option stores
 * (0, auto, also when given without MODE or not at all). */
extern const char *const es_progress_choices[];

/* The option's table entry; field: an int in the command's options struct. */
#define ES_PROGRESS_OPT(type, field, sect)                                                     \
    {.name = "progress", .letter = 'p', .kind = ES_OPT_ENUM, .arg = "MODE",                    \
     .offset = offsetof(type, field), .choices = es_progress_choices,                          \
     .flags = ES_OPTF_OPTIONAL, .section = sect,                                               \
     .bad = "--progress is auto, bar, json or none, not '%s'",                                 \
     .help = "progress of long work on stderr: auto (the default: a bar with bytes, rate "     \
             "and ETA when stderr is a terminal, else nothing), bar, json (one JSON object "   \
             "per line, see README \"Progress\") or none"}

/* The mode the option's choice means here (auto: a bar when stderr is a
 * terminal and not quiet). */
es_progress_mode es_progress_opt_mode(int choice, bool quiet);

#endif
