/* The comment block libvirt puts at the top of the files it writes
 * (virXMLSaveFile), so that files extsnap creates look like libvirt's own. */
#ifndef ES_DOMXML_HEADER_H
#define ES_DOMXML_HEADER_H

#include "util/err.h"

/* "<!--\nWARNING: ...\n  virsh <command>[ <name>]\n...\n-->\n\n" (malloc'd).
 * libvirt uses ("edit", domain name) for domain configs and
 * ("snapshot-edit", NULL) for snapshot metadata. */
int domxml_libvirt_header(const char *command, const char *name, char **out, es_err *e);

#endif
