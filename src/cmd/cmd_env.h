/* The environment variables extsnap honours, read here and nowhere else:
 * the library reads no environment, the command line turns these into
 * option fields (the options of the same name win) and installs the test
 * fault hooks. */
#ifndef ES_CMD_CMD_ENV_H
#define ES_CMD_CMD_ENV_H

#include <stdbool.h>

#include "snap/context.h"

/* EXTSNAP_FAULT, EXTSNAP_FAULT_TRACE (util/fileio.h) and EXTSNAP_QMP_FAULT
 * (qmp/qmp_fault.h): tests' fault injection, installed once at start. */
void es_cmd_install_faults(void);

/* Seconds (fractions allowed, 0 < s <= 86400) as milliseconds (at least 1):
 * 0, or -1 when s is not such a number. */
int es_parse_seconds_ms(const char *s, int *ms);

/* EXTSNAP_QMP_TIMEOUT (seconds): each wait for QEMU's replies; 0 when unset
 * or invalid (QMP's default). */
int es_env_qmp_timeout_ms(void);

/* The online commands' QMP settings from the environment: EXTSNAP_QMP_TIMEOUT,
 * EXTSNAP_QMP_STALL (seconds) and EXTSNAP_QMP_SPEED (bytes per second);
 * invalid values are ignored (the defaults stay). */
void es_env_qmp_settings(snap_env *env);

/* EXTSNAP_SKIP_SPACE_CHECK=1 (tests: img commit without its free-space check). */
bool es_env_skip_space_check(void);

#endif
