/* What the domxml layer keeps about a parsed domain besides the public
 * fields: the scan of its text, so edits can splice precisely. */
#ifndef ES_DOMXML_DOMAIN_PRIV_H
#define ES_DOMXML_DOMAIN_PRIV_H

#include "domxml/domain.h"
#include "domxml/xmlscan.h"

struct domxml_domain_priv {
    xs_doc scan;       /* over domxml_domain.text */
    size_t *disk_elem; /* scan element of each disk, parallel to disks[] */
    size_t metadata_elem; /* scan element of <metadata>, XS_NONE if none */
    size_t vmstate_elem;  /* of extsnap's record in it (vmstate.h), XS_NONE if none */
};

/* domxml_domain_parse for a <domain> cut out of a bigger file whose line
 * first_line it started on: messages and disk lines count in that file. */
int dx_domain_parse_at(const char *text, size_t len, const char *origin, size_t first_line,
                       domxml_domain **out, es_err *e);

#endif
