/* The options every domain command takes (--root, --config-dir,
 * --snapshot-dir, --run-dir, --dry-run, -q, -v, --output); the common end
 * of a mutating command is in cmd/plan_out.h. Each command puts ES_DOMAIN_OPTS in its option table
 * (cmd/optable.h) and parses with es_domain_parse. */
#ifndef ES_CMD_DOMAIN_OPTS_H
#define ES_CMD_DOMAIN_OPTS_H

#include <stddef.h>
#include <json-c/json.h>
#include <stdbool.h>

#include "cmd/cmd.h"
#include "cmd/progress_opt.h"
#include "snap/context.h"
#include "snap/txn/plan.h"

/* The global options in a domain command's table (cmd/optable.h): the
 * es_domain_opts `member` of the command's options struct `type` receives
 * them. */
#define ES_DOMAIN_SECTION "Global options"
#define ES_DOMAIN_BAD_DIR "directories are absolute paths (as seen under --root), not '%s'"
#define ES_DOMAIN_OPTS(type, member)                                                           \
    {.name = "root", .kind = ES_OPT_STRING, .arg = "DIR",                                      \
     .offset = offsetof(type, member.env.root), .flags = ES_OPTF_DIR | ES_OPTF_GLOBAL,         \
     .section = ES_DOMAIN_SECTION,                                                             \
     .help = "take every libvirt path and every absolute image path (backing file names "     \
             "included) under DIR, e.g. the host's root mounted in a rescue shell; nothing "   \
             "may escape DIR through '..' or symlinks. The directories below are paths as "    \
             "seen under --root."},                                                            \
    {.name = "config-dir", .kind = ES_OPT_STRING, .arg = "DIR",                                \
     .offset = offsetof(type, member.env.config_dir),                                          \
     .flags = ES_OPTF_DIR | ES_OPTF_ABSOLUTE | ES_OPTF_GLOBAL, .bad = ES_DOMAIN_BAD_DIR,       \
     .section = ES_DOMAIN_SECTION, .help = "domain configs (default /etc/libvirt/qemu)"},      \
    {.name = "snapshot-dir", .kind = ES_OPT_STRING, .arg = "DIR",                              \
     .offset = offsetof(type, member.env.snapshot_dir),                                        \
     .flags = ES_OPTF_DIR | ES_OPTF_ABSOLUTE | ES_OPTF_GLOBAL, .bad = ES_DOMAIN_BAD_DIR,       \
     .section = ES_DOMAIN_SECTION,                                                             \
     .help = "snapshot metadata (default /var/lib/libvirt/qemu/snapshot)"},                   \
    {.name = "run-dir", .kind = ES_OPT_STRING, .arg = "DIR",                                   \
     .offset = offsetof(type, member.env.run_dir),                                             \
     .flags = ES_OPTF_DIR | ES_OPTF_ABSOLUTE | ES_OPTF_GLOBAL, .bad = ES_DOMAIN_BAD_DIR,       \
     .section = ES_DOMAIN_SECTION,                                                             \
     .help = "libvirt's QEMU run dir, to see whether the VM and its libvirt daemon run "       \
             "(default /run/libvirt/qemu)"},                                                   \
    {.name = "swtpm-dir", .kind = ES_OPT_STRING, .arg = "DIR",                                 \
     .offset = offsetof(type, member.env.swtpm_dir),                                           \
     .flags = ES_OPTF_DIR | ES_OPTF_ABSOLUTE | ES_OPTF_GLOBAL, .bad = ES_DOMAIN_BAD_DIR,       \
     .section = ES_DOMAIN_SECTION,                                                             \
     .help = "where libvirt keeps a vTPM's state, DIR/UUID (default /var/lib/libvirt/swtpm; "  \
             "a session domain's: ~/.config/libvirt/qemu/swtpm)"},                             \
    {.name = "dry-run", .kind = ES_OPT_FLAG, .offset = offsetof(type, member.env.dry_run),     \
     .section = ES_DOMAIN_SECTION,                                                             \
     .help = "print the plan, change nothing (refused when and as the real run would be)"},   \
    {.name = "output", .kind = ES_OPT_ENUM, .arg = "FMT", .offset = offsetof(type, member.json), \
     .choices = es_output_choices, .bad = "--output is human or json, not '%s'",               \
     .section = ES_DOMAIN_SECTION, .help = "human (default) or json"},                         \
    {.name = "quiet", .letter = 'q', .kind = ES_OPT_FLAG,                                      \
     .offset = offsetof(type, member.env.quiet), .flags = ES_OPTF_GLOBAL,                      \
     .section = ES_DOMAIN_SECTION, .help = "print nothing but errors"},                        \
    {.name = "verbose", .letter = 'v', .kind = ES_OPT_COUNT,                                   \
     .offset = offsetof(type, member.env.verbose), .flags = ES_OPTF_GLOBAL,                    \
     .section = ES_DOMAIN_SECTION, .help = "also print the plan before carrying it out (then only its summary after 'Done:')"}, \
    ES_PROGRESS_OPT(type, member.progress, ES_DOMAIN_SECTION)

/* --qmp and the QMP settings in the table of a command that works on a
 * running VM (the environment's EXTSNAP_QMP_* are their defaults:
 * cmd/cmd_env.h). */
#define ES_ONLINE_SECTION "Running VM"
#define ES_ONLINE_OPT(type, member)                                                            \
    {.name = "qmp", .kind = ES_OPT_STRING, .arg = "PATH",                                      \
     .offset = offsetof(type, member.env.qmp), .flags = ES_OPTF_FILE,                          \
     .section = ES_ONLINE_SECTION,                                                             \
     .help = "QEMU's QMP socket (a path on this system), when the VM runs"},                  \
    {.name = "qmp-timeout", .kind = ES_OPT_MSEC, .arg = "SECONDS",                                \
     .offset = offsetof(type, member.env.qmp_timeout_ms), .section = ES_ONLINE_SECTION,        \
     .bad = "invalid --qmp-timeout '%s' (seconds)",                                            \
     .help = "how long to wait for each QMP reply (default 30; env EXTSNAP_QMP_TIMEOUT)"},     \
    {.name = "speed", .kind = ES_OPT_SIZE, .arg = "BYTES",                                     \
     .offset = offsetof(type, member.env.qmp_speed), .section = ES_ONLINE_SECTION,             \
     .bad = "invalid --speed '%s'",                                                            \
     .help = "rate limit of the commit jobs in bytes per second (suffixes K, M, G; default "   \
             "none; env EXTSNAP_QMP_SPEED)"},                                                  \
    {.name = "stall", .kind = ES_OPT_MSEC, .arg = "SECONDS",                                      \
     .offset = offsetof(type, member.env.qmp_stall_ms), .section = ES_ONLINE_SECTION,          \
     .bad = "invalid --stall '%s' (seconds)",                                                  \
     .help = "commits whose amount left to copy stops shrinking this long (the guest writes "  \
             "faster than the copy) get their rate limit lifted, then are cancelled (default: " \
             "the QMP timeout; env EXTSNAP_QMP_STALL)"}

/* What DOMAIN is, for the details of every domain command. */
#define ES_DOMAIN_ARG_USAGE                                                                    \
    "DOMAIN is a domain name (its config is <config-dir>/DOMAIN.xml) or the path\n"            \
    "of a domain XML file.\n"

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
    "merges[] {disk, top, base, images[] (every image merged into base, top\n"                \
    "first)}, rebases[] {filename, backing-filename, backing-filename-format,\n"               \
    "old-backing-filename, old-backing-filename-format},\n"                                   \
    "xml-files[] {kind (snapshot|config), filename, domain, snapshot, action\n"              \
    "(create|update|remove), summary}, vm-state[] {what (nvram|tpm),\n"                   \
    "action (save|restore), from, filename}, deletes[] {filename, reason},\n"               \
    "notes[], snapshot-dir-created.\n"

typedef struct es_domain_opts {
    snap_env env;
    int json; /* --output: 0 human, 1 json */
    int progress;            /* --progress: index in es_progress_choices */
    es_progress_meter meter; /* env.progress feeds it (es_domain_opts_check) */
} es_domain_opts;

/* Check the options once parsed (e.g. --root is a directory) and set up
 * the progress meter. */
int es_domain_opts_check(const es_cmd *cmd, es_domain_opts *o);
/* The long work is over (or an error is to be printed): end the progress
 * line. */
void es_domain_progress_end(const es_domain_opts *o);
/* The whole command line of a domain command: d (the es_domain_opts inside
 * the command's options struct opts) initialised, argv parsed by cmd's
 * table, nargs operands (named in `expect` for the usage error), which then
 * start at argv[optind], and the options checked (es_domain_opts_check).
 * nargs < 0: only parsed; the caller counts the operands, then checks.
 * Returns -1 when parsed (and checked), else the exit status. */
int es_domain_parse(const es_cmd *cmd, es_domain_opts *d, void *opts, int argc, char **argv,
                    int nargs, const char *expect);

/* Add key: val, or key: null when val is NULL (json_out's helpers take a
 * NULL value for an allocation failure). */
void es_json_add_str_or_null(json_object *o, const char *key, const char *val);

#endif
