#include "qcow2/prefetch.h"

#include "qcow2/map_status.h"
#include "util/fileio.h"

void es_image_prefetch(es_image *img, uint64_t off, uint64_t len)
{
    uint64_t end = off + len;
    if (end > img->virtual_size || end < off)
        end = img->virtual_size;
    /* Adjacent host extents of one file go as one request. */
    es_file *pend_file = NULL;
    uint64_t pend_off = 0, pend_len = 0;
    while (off < end) {
        es_map_status st;
        es_err ignored;
        if (es_map_status_get(img, off, end - off, &st, &ignored) < 0 || st.len == 0)
            break;
        if (st.data && st.has_offset) {
            es_file *f = st.layer->file;
            if (f == pend_file && pend_off + pend_len == st.offset) {
                pend_len += st.len;
            } else {
                if (pend_file)
                    es_file_prefetch(pend_file, pend_off, pend_len);
                pend_file = f;
                pend_off = st.offset;
                pend_len = st.len;
            }
        }
        off += st.len;
    }
    if (pend_file)
        es_file_prefetch(pend_file, pend_off, pend_len);
}
