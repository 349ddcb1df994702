/* --root DIR for the image commands (info, map, compare, check, commit,
 * rebase): DIR holds a host's root file system, e.g. mounted at
 * /mnt/sysimage in a rescue shell. IMAGE arguments and backing file names
 * are the host's paths; they are opened under DIR (util/rootpath.h) and
 * shown as the host sees them, as qemu-img on the host would show them. */
#ifndef ES_CMD_IMG_ROOT_H
#define ES_CMD_IMG_ROOT_H

#include "cmd/cmd.h"
#include "util/err.h"

#include <stddef.h>

/* --root in an image command's option table (cmd/optable.h): the value
 * goes to the const char * `field` of the command's options struct `type`. */
#define ES_IMG_ROOT_OPT(type, field)                                                           \
    {.name = "root", .kind = ES_OPT_STRING, .arg = "DIR", .offset = offsetof(type, field),     \
     .flags = ES_OPTF_DIR,                                                                     \
     .help = "DIR holds a host's root file system (a rescue shell's /mnt/sysimage): IMAGE "   \
             "and every backing file name are the host's paths, opened under DIR (a "          \
             "relative IMAGE is taken from DIR, i.e. from the host's /); '..' and symlinks "   \
             "may not lead out of DIR. Names are shown as the host sees them."}

/* Check --root's argument after parsing. root NULL (option not given):
 * nothing to do. "" is a usage error (an unset variable must not silently
 * mean the rescue system's own files); a DIR that is not a directory is an
 * error message and `fail_status`. Returns -1 when fine, else the exit
 * status to return. */
int es_img_root_check(const es_cmd *cmd, const char *root, int fail_status);

/* IMAGE as the host sees it (*out, malloc'd): arg as given; with a root, a
 * relative arg is taken from the host's '/' (as es_root_resolve takes it),
 * and shown that way. */
int es_img_root_name(const char *root, const char *arg, char **out, es_err *e);

/* Path to open for a host name under root (*out, malloc'd; a copy of name
 * without a root). Errors name `name`. */
int es_img_root_open_path(const char *root, const char *name, char **out, es_err *e);

/* An error the engine reported about the path opened under the root
 * (open_path) is about `name` as the host sees it: rename it. When the file
 * does not exist and name already starts with DIR, say that IMAGE is a host
 * path (the likeliest mistake in a rescue shell). */
void es_img_root_fix_err(es_err *e, const char *root, const char *open_path, const char *name);

#endif
