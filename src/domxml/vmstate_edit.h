/* Writing extsnap's VM-state record (vmstate.h) into a domain's
 * <metadata>: an edit of the domain text, kept apart from the record
 * itself, which the domain parser fills. */
#ifndef ES_DOMXML_VMSTATE_EDIT_H
#define ES_DOMXML_VMSTATE_EDIT_H

#include "domxml/domain.h"
#include "domxml/vmstate.h"
#include "util/err.h"

/* A new domain: d with its record replaced by v (v NULL or with nothing
 * saved: removed, and an empty <metadata> extsnap made with it too). Every
 * other byte stays; the result is parsed again. */
int domxml_domain_set_vmstate(const domxml_domain *d, const domxml_vmstate *v,
                              domxml_domain **out, es_err *e);

#endif
