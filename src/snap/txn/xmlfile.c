#include "snap/txn/xmlfile.h"

#include <stdlib.h>

#include "domxml/writer.h"
#include "util/rootpath.h"

int snap_xml_put(const char *root, const snap_xml_write *w, bool forward, es_err *e)
{
    char *host = NULL;
    if (es_root_resolve(root, w->path, &host, e) < 0)
        return -1;
    domxml_file f = {
        .kind = w->kind == SNAP_XML_CONFIG ? DOMXML_FILE_CONFIG : DOMXML_FILE_SNAPSHOT,
        .host = host,
        .domain = w->domain,
        .snapshot = w->snapshot,
    };
    int rc = forward ? domxml_file_put(&f, w->new_text, w->new_len, e)
                     : domxml_file_put(&f, w->old_text, w->old_len, e);
    free(host);
    return rc;
}
