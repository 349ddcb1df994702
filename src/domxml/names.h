/* Which domain and snapshot names are acceptable. Both become file names
 * (<name>.xml, snapshot/<domain>/), so these rules also keep paths inside
 * their directories. */
#ifndef ES_DOMXML_NAMES_H
#define ES_DOMXML_NAMES_H

#include "util/err.h"

/* libvirt's rules (no '/', not starting with '.') plus extsnap's: not empty,
 * not "base" (the word commands use for the image below every snapshot),
 * and short enough to be a file name with ".xml" appended. */
int domxml_check_snapshot_name(const char *name, es_err *e);

/* libvirt forbids '/' in domain names; ".", ".." and "" would make paths
 * leave the config or snapshot directory. */
int domxml_check_domain_name(const char *name, es_err *e);

#endif
