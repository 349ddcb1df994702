#include "online/online_bitmaps.h"

int snap_online_refuse_bitmaps(const qmp_chain *ch, size_t first, size_t last, const char *disk,
                               es_err *e)
{
    for (size_t i = first; i <= last && i < ch->n; i++)
        if (ch->nodes[i].persistent_bitmaps)
            return es_err_set(e, 0, ch->nodes[i].filename ? ch->nodes[i].filename : "",
                              "disk %s: QEMU holds persistent dirty bitmaps of this image, which "
                              "extsnap keeps only while the VM is shut down; shut it down first",
                              disk);
    return 0;
}
