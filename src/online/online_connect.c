#include "online/online_connect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qmp/qmp_client.h"

/* QEMU binds the socket a moment before it listens on it. */
#define REFUSED_RETRY_MS 2000
#define REFUSED_STEP_MS 20

volatile sig_atomic_t snap_online_interrupted;

static struct sigaction old_int, old_term;
static int caught;

static void on_signal(int sig)
{
    snap_online_interrupted = sig;
}

void snap_online_signals_catch(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked poll returns at once */
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    caught = 1;
}

void snap_online_signals_restore(void)
{
    if (!caught)
        return;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    caught = 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int snap_online_connect(const char *path, int timeout_ms, qmp_client **out, es_err *e)
{
    qmp_client_opts o = {
        .timeout_ms = timeout_ms, /* <= 0: the client's default */
        .interrupt = &snap_online_interrupted,
    };
    *out = NULL;
    for (int waited = 0;; waited += REFUSED_STEP_MS) {
        es_err ce;
        es_err_clear(&ce);
        if (qmp_client_connect(out, path, &o, &ce) == 0)
            return 0;
        if (ce.errnum != ECONNREFUSED || waited >= REFUSED_RETRY_MS || snap_online_interrupted) {
            if (e)
                *e = ce;
            if (strstr(ce.msg, "timed out") && strstr(ce.msg, "greeting"))
                es_err_prefix(e, "QEMU is not answering on its QMP socket (stopped, hung, or "
                                 "another client is connected: QEMU serves one at a time)");
            return -1;
        }
        sleep_ms(REFUSED_STEP_MS);
    }
}
