/* libvirt's QEMU passthrough: the <qemu:commandline> element of a domain
 * config (namespace http://libvirt.org/schemas/domain/qemu/1.0), whose
 * <qemu:arg value='...'/> children libvirt appends to QEMU's command line.
 * extsnap reads it to find a QMP socket of its own (snap/online_socket.h). */
#ifndef ES_DOMXML_QEMU_CMDLINE_H
#define ES_DOMXML_QEMU_CMDLINE_H

#include <stddef.h>

#include "util/err.h"

#define DOMXML_QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

/* The values of every <qemu:arg> under <qemu:commandline> children of the
 * root <domain> of text, in document order (libvirt allows several
 * <qemu:commandline> elements; it concatenates them). *args is a
 * NULL-terminated malloc'd vector (free with domxml_qemu_args_free); *n may
 * be 0. The prefix bound to the namespace does not matter, only the URI.
 * An <qemu:arg> without value= is an error, as libvirt rejects it. */
int domxml_qemu_cmdline_args(const char *text, size_t len, const char *origin, char ***args,
                             size_t *n, es_err *e);
void domxml_qemu_args_free(char **args);

#endif
