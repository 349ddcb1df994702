#include "domxml/vmstate.h"

#include <stdlib.h>
#include <string.h>


void domxml_vmstate_clear(domxml_vmstate *v)
{
    free(v->snapshot);
    free(v->nvram);
    free(v->nvram_copy);
    free(v->tpm);
    free(v->tpm_copy);
    memset(v, 0, sizeof *v);
}

bool domxml_vmstate_owned(const domxml_vmstate *v, const char *name, long long creation_time)
{
    return v->present && v->snapshot && name && strcmp(v->snapshot, name) == 0 &&
           v->creation_time == creation_time;
}
