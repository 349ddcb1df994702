/* The options every domain command takes (--root, --config-dir,
 * --snapshot-dir, --run-dir, --dry-run, -q, -v, --output), and the common
 * end of a mutating command: print the plan (--dry-run) or execute it and
 * report. Each command puts ES_DOMAIN_LONGOPTS in its getopt_long table and
 * passes unknown option codes to es_domain_opt. */
#ifndef ES_CMD_DOMAIN_OPTS_H
#define ES_CMD_DOMAIN_OPTS_H

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "cmd/cmd.h"
#include "snap/context.h"
#include "snap/txn/plan.h"

/* getopt_long codes of --qmp and the QMP settings (clear of ES_OPT_* and the
 * commands' own); es_domain_opt handles all but --qmp. */
#define ES_OPT_QMP 0x1800
#define ES_OPT_QMP_TIMEOUT 0x1801
#define ES_OPT_SPEED 0x1802
#define ES_OPT_STALL 0x1803
#define ES_ONLINE_NLONGOPTS 4
#define ES_ONLINE_LONGOPTS                                                                     \
    {"qmp", required_argument, NULL, ES_OPT_QMP},                                              \
        {"qmp-timeout", required_argument, NULL, ES_OPT_QMP_TIMEOUT},                          \
        {"speed", required_argument, NULL, ES_OPT_SPEED},                                      \
        {"stall", required_argument, NULL, ES_OPT_STALL}

enum {
    ES_OPT_ROOT = 0x1000,
    ES_OPT_CONFIG_DIR,
    ES_OPT_SNAPSHOT_DIR,
    ES_OPT_RUN_DIR,
    ES_OPT_DRY_RUN,
    ES_OPT_OUTPUT,
};

#define ES_DOMAIN_LONGOPTS                                                                     \
    {"root", required_argument, NULL, ES_OPT_ROOT},                                            \
        {"config-dir", required_argument, NULL, ES_OPT_CONFIG_DIR},                            \
        {"snapshot-dir", required_argument, NULL, ES_OPT_SNAPSHOT_DIR},                        \
        {"run-dir", required_argument, NULL, ES_OPT_RUN_DIR},                                  \
        {"dry-run", no_argument, NULL, ES_OPT_DRY_RUN},                                        \
        {"output", required_argument, NULL, ES_OPT_OUTPUT},                                    \
        {"quiet", no_argument, NULL, 'q'}, {"verbose", no_argument, NULL, 'v'}

#define ES_DOMAIN_SHORTOPTS "qv"

/* Usage text of the global options, for the commands' --help. */
#define ES_DOMAIN_OPTS_USAGE                                                                   \
    "DOMAIN is a domain name (its config is <config-dir>/DOMAIN.xml) or the path\n"            \
    "of a domain XML file.\n"                                                                  \
    "\n"                                                                                       \
    "Global options:\n"                                                                        \
    "  --root=DIR          take every libvirt path and every absolute image path\n"           \
    "                      (backing file names included) under DIR, e.g. the host's\n"       \
    "                      root mounted in a rescue shell; nothing may escape DIR\n"          \
    "                      through '..' or symlinks\n"                                        \
    "  --config-dir=DIR    domain configs (default /etc/libvirt/qemu)\n"                      \
    "  --snapshot-dir=DIR  snapshot metadata (default /var/lib/libvirt/qemu/snapshot)\n"      \
    "  --run-dir=DIR       libvirt's QEMU run dir, to see whether the VM runs\n"              \
    "                      (default /run/libvirt/qemu)\n"                                     \
    "  --dry-run           print the plan, change nothing (refused when and as the\n"        \
    "                      real run would be)\n"                                             \
    "  --output=FMT        human (default) or json\n"                                         \
    "  -q, --quiet         print nothing but errors\n"                                        \
    "  -v, --verbose       also print the plan before carrying it out\n"                     \
    "  -h, --help          this text\n"                                                       \
    "The directories are paths as seen under --root.\n"

/* Text shared by the mutating commands' --help. */
#define ES_DOMAIN_SAFETY_USAGE                                                                 \
    "Safety: one extsnap at a time per domain (<snapshot-dir>/DOMAIN.extsnap.lock);\n"         \
    "refused while libvirtd or virtqemud runs on that root (it would overwrite the\n"          \
    "files: stop it, or use virsh) or while the VM runs (run dir, QEMU's image\n"              \
    "locks). An operation left half done by a crash is finished or undone first\n"             \
    "(see 'extsnap recover'). All disks switch together or not at all.\n"                      \
    "Left-over files: the lock file is removed by the command that holds it and\n"             \
    "one a crash left by the next command that changes the domain; so is\n"                    \
    "DOMAIN.extsnap-pending/ (libvirtd mode) once libvirt's files say what it holds.\n"

#define ES_PLAN_JSON_USAGE                                                                     \
    "JSON output (--output=json): an object with operation, domain, summary,\n"              \
    "dry-run (true: nothing was changed), overlays[] {disk, filename,\n"                      \
    "backing-filename, backing-filename-format, existed-empty, uid, gid, mode},\n"           \
    "merges[] {disk, top, base}, rebases[] {filename, backing-filename,\n"                    \
    "backing-filename-format, old-backing-filename, old-backing-filename-format},\n"        \
    "xml-files[] {kind (snapshot|config), filename, domain, snapshot, action\n"              \
    "(create|update|remove), summary}, deletes[] {filename, reason}, notes[],\n"            \
    "snapshot-dir-created.\n"

typedef struct es_domain_opts {
    snap_env env;
    bool json;
} es_domain_opts;

void es_domain_opts_init(es_domain_opts *o, const es_cmd *cmd);
/* Handle one option code of getopt_long: 1 handled, 0 not a global
 * option, -1 a usage error (already printed). */
int es_domain_opt(const es_cmd *cmd, es_domain_opts *o, int c, const char *arg);
/* Check the options once parsed (e.g. --root is a directory). */
int es_domain_opts_check(const es_cmd *cmd, const es_domain_opts *o);
/* The whole command line of a command that takes only the global domain
 * options and exactly nargs operands (named in `expect` for the usage
 * error), which then start at argv[optind]. Returns -1 when parsed and
 * checked, else the exit status to return. */
int es_domain_parse_plain(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv, int nargs,
                          const char *expect);
/* The same, also accepting one switch --FLAG (into *value; none when
 * flag is NULL). */
int es_domain_parse_flag(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv, int nargs,
                         const char *expect, const char *flag, bool *value);
/* The same, also accepting --qmp PATH (into *qmp) unless qmp is NULL: the
 * commands that work on a running VM. */
int es_domain_parse(const es_cmd *cmd, es_domain_opts *o, int argc, char **argv, int nargs,
                    const char *expect, const char *flag, bool *value, const char **qmp);

/* Dry run: print the plan. Otherwise execute it and print what was done
 * (unless -q). Returns the exit status. */
int es_domain_run_plan(const es_cmd *cmd, const es_domain_opts *o, snap_ctx *c,
                       const snap_plan *p);

/* Print a plan as the commands do (human or JSON), with the dry-run flag. */
void es_domain_print_plan(const es_domain_opts *o, const snap_plan *p, const char *title,
                          bool dry_run);

/* Add key: val, or key: null when val is NULL (json_out's helpers take a
 * NULL value for an allocation failure). */
void es_json_add_str_or_null(json_object *o, const char *key, const char *val);

/* The usual error for getopt_long's '?' (unknown option / missing argument). */
int es_domain_bad_option(const es_cmd *cmd, char **argv);

#endif
