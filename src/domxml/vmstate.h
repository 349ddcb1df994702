/* The VM state outside the disks that a domain config names, and extsnap's
 * record of the copies kept with a snapshot.
 *
 * UEFI variables: <os><nvram>PATH</nvram> (or <nvram type='file'><source
 * file='PATH'/></nvram>). vTPM: <tpm><backend type='emulator'>, whose state
 * swtpm keeps in a directory (domain.h). The record of a snapshot's saved
 * copies lives in the <domain> of its metadata, in <metadata>, libvirt's
 * place for applications' own elements, which it keeps when it parses and
 * rewrites a domain (the schema accepts them: virt-xml-validate passes):
 *
 *   <metadata>
 *     <extsnap:vmstate xmlns:extsnap='urn:extsnap:vmstate:1' snapshot='s1'
 *                      creationTime='1795311975'>
 *       <extsnap:nvram path='/var/lib/libvirt/qemu/nvram/vm_VARS.fd'
 *                      copy='/var/lib/libvirt/images/vm/vm.s1.nvram'/>
 *       <extsnap:tpm path='/var/lib/libvirt/swtpm/UUID'
 *                    copy='/var/lib/libvirt/images/vm/vm.s1.tpm'/>
 *     </extsnap:vmstate>
 *   </metadata>
 *
 * snapshot= and creationTime= say whose state it is: a config copied from
 * a snapshot's <domain> (newer libvirt's revert does that) carries the
 * element along, and another snapshot made from it must not take it for
 * its own (domxml_vmstate_owned). */
#ifndef ES_DOMXML_VMSTATE_H
#define ES_DOMXML_VMSTATE_H

#include <stdbool.h>

#include "util/err.h"

#define DOMXML_VMSTATE_NS "urn:extsnap:vmstate:1"

typedef struct domxml_vmstate {
    bool present;            /* the element is there */
    char *snapshot;          /* snapshot=: the snapshot it belongs to */
    long long creation_time; /* creationTime= of that snapshot */
    char *nvram;             /* <nvram path=>: the VM's NVRAM file; NULL: none saved */
    char *nvram_copy;        /* <nvram copy=>: the copy */
    char *tpm;               /* <tpm path=>: swtpm's state directory; NULL: none saved */
    char *tpm_copy;          /* <tpm copy=>: the copy (a directory) */
} domxml_vmstate;

void domxml_vmstate_clear(domxml_vmstate *v);

/* Is v the record of the snapshot called name, created at creation_time? */
bool domxml_vmstate_owned(const domxml_vmstate *v, const char *name, long long creation_time);

#endif
