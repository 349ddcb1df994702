#include "online/online_settle.h"

#include <stdio.h>

#include "snap/ops/inexact.h"
#include "util/err.h"

void snap_online_settle(snap_ctx *c, const snap_plan *p)
{
    es_err e = {0};
    if (snap_inexact_forget(c, p, &e) == 0 || !c->env->log)
        return;
    /* Harmless: entries of snapshots that no longer exist are ignored. */
    char buf[ES_ERR_MSG_MAX + ES_ERR_PATH_MAX + 64];
    fprintf(c->env->log,
            "extsnap: %s: warning: %s (its entries of removed snapshots are ignored)\n",
            c->env->cmd ? c->env->cmd : "snap", es_err_str(&e, buf, sizeof buf));
}
