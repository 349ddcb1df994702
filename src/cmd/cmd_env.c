#include "cmd/cmd_env.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "qmp/qmp_fault.h"
#include "util/fileio.h"

void es_cmd_install_faults(void)
{
    /* Out of memory at start: the run goes on without the test's faults. */
    (void)es_fault_install(getenv("EXTSNAP_FAULT"), getenv("EXTSNAP_FAULT_TRACE"));
    (void)qmp_fault_install(getenv("EXTSNAP_QMP_FAULT"));
}

int es_parse_seconds_ms(const char *s, int *ms)
{
    if (!s || !*s)
        return -1;
    char *end;
    double sec = strtod(s, &end);
    if (end == s || *end || !(sec > 0) || sec > 86400)
        return -1;
    int v = (int)(sec * 1000 + 0.5);
    *ms = v > 0 ? v : 1;
    return 0;
}

/* The variable name as milliseconds, 0 when unset or invalid. */
static int env_ms(const char *name)
{
    int ms;
    return es_parse_seconds_ms(getenv(name), &ms) == 0 ? ms : 0;
}

int es_env_qmp_timeout_ms(void)
{
    return env_ms("EXTSNAP_QMP_TIMEOUT");
}

void es_env_qmp_settings(snap_env *env)
{
    env->qmp_timeout_ms = es_env_qmp_timeout_ms();
    env->qmp_stall_ms = env_ms("EXTSNAP_QMP_STALL");
    unsigned long long speed;
    const char *v = getenv("EXTSNAP_QMP_SPEED");
    env->qmp_speed = v && es_parse_size(v, &speed) == 0 && speed <= (unsigned long long)INT64_MAX
                         ? speed
                         : 0;
}

bool es_env_skip_space_check(void)
{
    const char *v = getenv("EXTSNAP_SKIP_SPACE_CHECK");
    return v && strcmp(v, "1") == 0;
}
