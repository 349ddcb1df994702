/* Facts about libvirt's files that their reader and their writer share. */
#ifndef ES_DOMXML_FILES_H
#define ES_DOMXML_FILES_H

/* Largest XML file read: libvirt's own limit is 10 MiB; a bit of room. */
#define DOMXML_FILE_MAX (16u * 1024 * 1024)

/* Mode libvirt gives the files it creates. */
#define DOMXML_FILE_MODE 0600
/* Mode of a domain's snapshot directory when libvirt creates it. */
#define DOMXML_SNAPSHOT_DIR_MODE 0755

#endif
