/* Where libvirt keeps its files, and reading and saving them there: the
 * domain config <config-dir>/<name>.xml and the snapshot metadata
 * <snapshot-dir>/<domain>/<snap>.xml. Every path goes through --root when
 * there is one. Saves are verified by parsing the text again first and go
 * through domxml/writer.h (atomic, temporary files libvirt never reads). */
#ifndef ES_DOMXML_STORE_H
#define ES_DOMXML_STORE_H

#include "domxml/domain.h"
#include "domxml/files.h"
#include "domxml/snapshot.h"
#include "domxml/snapshot_list.h"
#include "util/err.h"

#define DOMXML_DEFAULT_CONFIG_DIR "/etc/libvirt/qemu"
#define DOMXML_DEFAULT_SNAPSHOT_DIR "/var/lib/libvirt/qemu/snapshot"


typedef struct domxml_paths {
    const char *root;         /* --root DIR, NULL for none */
    const char *config_dir;   /* as seen under root; NULL: the default */
    const char *snapshot_dir; /* as seen under root; NULL: the default */
} domxml_paths;

/* Host paths (malloc'd) of a domain's config file, its snapshot directory,
 * and one snapshot file. Names are checked (domxml/names.h) first. */
int domxml_config_path(const domxml_paths *p, const char *domain, char **out, es_err *e);
int domxml_snapshot_dir_path(const domxml_paths *p, const char *domain, char **out, es_err *e);
int domxml_snapshot_file_path(const domxml_paths *p, const char *domain, const char *snap,
                              char **out, es_err *e);

/* The config of domain name: <config-dir>/<name>.xml, which must define
 * that name (libvirt would write a second file for a mismatched one). */
int domxml_domain_load_named(const domxml_paths *p, const char *name, domxml_domain **out,
                             es_err *e);
/* arg is a domain name, or a path to an XML file when it contains '/' or
 * ends in ".xml" (resolved under root like any path). *path_out (optional,
 * malloc'd) receives the host path read, for saving back. */
int domxml_domain_locate(const domxml_paths *p, const char *arg, domxml_domain **out,
                         char **path_out, es_err *e);

/* Save d at host path (through path.new; nothing is written when the file
 * already holds the text). A new file gets mode 0600; an existing one keeps
 * owner and mode. */
int domxml_domain_save_file(const char *path, const domxml_domain *d, es_err *e);
/* Save d as <config-dir>/<d->name>.xml. */
int domxml_domain_save(const domxml_paths *p, const domxml_domain *d, es_err *e);

/* All snapshots of a domain (see snapshot_list.h for flags). */
int domxml_snapshots_load(const domxml_paths *p, const char *domain, unsigned flags,
                          domxml_snapshot_list **out, es_err *e);
/* Write s as <snapshot-dir>/<domain>/<s->name>.xml (creating the domain's
 * directory, mode 0755, if needed). The text is formatted, parsed and
 * formatted again: both must agree before anything is written. */
int domxml_snapshot_save(const domxml_paths *p, const char *domain, const domxml_snapshot *s,
                         es_err *e);
/* Remove <snapshot-dir>/<domain>/<snap>.xml and sync the directory. */
int domxml_snapshot_remove(const domxml_paths *p, const char *domain, const char *snap,
                           es_err *e);

#endif
