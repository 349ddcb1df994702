/* libvirtd runs the VM: extsnap did the QMP work but must not write
 * libvirt's files (libvirtd keeps its own copy and would overwrite them).
 * The files it would have written go to <snapshot-dir>/<dom>.extsnap-pending/
 * and the user gets the virsh commands that load them into libvirt. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domxml/snapshot.h"
#include "online/online_priv.h"
#include "util/atomic_file.h"
#include "util/fileio.h"

static int write_pending(const char *dir, const char *name, const char *text, size_t len,
                         char **path, es_err *e)
{
    char *tmp = NULL;
    if (es_asprintf(path, e, "%s/%s.xml", dir, name) < 0 ||
        es_asprintf(&tmp, e, "%s/.%s.xml.tmp", dir, name) < 0)
        return -1;
    int rc = es_atomic_replace(*path, tmp, text, len, 0600, e);
    free(tmp);
    return rc;
}

/* A shell word for the commands shown (paths and names are quoted when
 * they need it). */
static const char *shell_word(const char *s, char *buf, size_t len)
{
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+=:,@",
                       *p) != NULL;
    if (plain) {
        snprintf(buf, len, "%s", s);
        return buf;
    }
    size_t o = 0;
    if (o + 1 < len)
        buf[o++] = '\'';
    for (const char *p = s; *p && o + 5 < len; p++) {
        if (*p == '\'') {
            memcpy(buf + o, "'\\''", 4);
            o += 4;
        } else {
            buf[o++] = *p;
        }
    }
    if (o + 1 < len)
        buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

int snap_online_libvirt_pending(snap_ctx *c, snap_online *ol, const snap_plan *p, es_err *e)
{
    if (es_asprintf(&ol->pending_dir, e, "%s/%s.extsnap-pending", c->snapshot_dir_host,
                      c->name) < 0)
        return -1;
    struct stat st;
    if (es_fs_stat(ol->pending_dir, &st) < 0 && es_fs_mkdir(ol->pending_dir, 0700, e) < 0)
        return es_err_prefix(e, "cannot create the directory for libvirt's pending files");
    char dom[512], w1[4096], w2[512];
    shell_word(c->name, dom, sizeof dom);
    const char *config_file = NULL;
    char *config_path = NULL;
    int rc = 0;
    /* Snapshots removed first, then those (re)defined, the config last. */
    for (size_t i = 0; rc == 0 && i < p->nxml; i++) {
        const snap_xml_write *w = &p->xml[i];
        if (w->kind == SNAP_XML_SNAPSHOT && !w->new_text)
            rc = es_strv_addf(&ol->virsh, e, "virsh snapshot-delete %s %s --metadata", dom,
                                shell_word(w->snapshot, w2, sizeof w2));
    }
    for (size_t i = 0; rc == 0 && i < p->nxml; i++) {
        const snap_xml_write *w = &p->xml[i];
        if (w->summary)
            rc = es_strv_add(&ol->unknown, w->summary, e);
        if (rc < 0 || !w->new_text)
            continue;
        char *path = NULL;
        if (w->kind == SNAP_XML_CONFIG) {
            rc = write_pending(ol->pending_dir, c->name, w->new_text, w->new_len, &path, e);
            free(config_path);
            config_path = path;
            config_file = path;
            continue;
        }
        rc = write_pending(ol->pending_dir, w->snapshot, w->new_text, w->new_len, &path, e);
        domxml_snapshot *s = NULL;
        if (rc == 0)
            rc = domxml_snapshot_parse(w->new_text, w->new_len, path, &s, e);
        if (rc == 0)
            rc = es_strv_addf(&ol->virsh, e, "virsh snapshot-create %s %s --redefine%s", dom,
                                shell_word(path, w1, sizeof w1), s->current ? " --current" : "");
        domxml_snapshot_free(s);
        free(path);
    }
    if (rc == 0 && config_file)
        rc = es_strv_addf(&ol->virsh, e, "virsh define %s",
                            shell_word(config_file, w1, sizeof w1));
    free(config_path);
    /* libvirt's files still name the merged images: they stay until then. */
    for (size_t i = 0; rc == 0 && i < p->ndeletes; i++)
        rc = es_strv_addf(&ol->kept, e, "%s: libvirt's files still name it; delete it once "
                                          "the virsh commands ran",
                            p->deletes[i].path);
    if (rc == 0)
        rc = es_strv_add(&ol->unknown,
                           "the running VM's live definition (virsh dumpxml) shows the old "
                           "images until the VM is restarted",
                           e);
    return rc;
}
