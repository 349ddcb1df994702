/* --version: the version, then the qcow2 and libvirt features, taken from
 * the constants the code works with so that the list follows the code. */
#include "cmd/version.h"

#include <stdint.h>

#include "cmd/cmd.h"
#include "qcow2/format.h"

static const struct {
    uint64_t bit;
    const char *name;
    int supported; /* 0: recognised and refused */
} incompat[] = {
    {QCOW2_INCOMPAT_DIRTY, "dirty bit", 1},
    {QCOW2_INCOMPAT_CORRUPT, "corrupt bit", 1},
    {QCOW2_INCOMPAT_DATA_FILE, "external data file", 0},
    {QCOW2_INCOMPAT_COMPRESSION, "compression type", 1},
    {QCOW2_INCOMPAT_EXTL2, "extended L2 entries", 1},
};

/* A feature bit added to QCOW2_INCOMPAT_KNOWN must get a line above. */
_Static_assert((QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DATA_FILE |
                QCOW2_INCOMPAT_COMPRESSION | QCOW2_INCOMPAT_EXTL2) == QCOW2_INCOMPAT_KNOWN,
               "every known qcow2 incompatible feature is listed in --version");

static const char *const compression[] = {
    [QCOW2_COMPRESSION_ZLIB] = "zlib",
    [QCOW2_COMPRESSION_ZSTD] = "zstd",
};

static void print_list(FILE *out, int want_supported)
{
    const char *sep = "";
    for (size_t i = 0; i < sizeof incompat / sizeof *incompat; i++) {
        if (incompat[i].supported != want_supported)
            continue;
        fprintf(out, "%s%s", sep, incompat[i].name);
        sep = ", ";
    }
}

/* The commands of a group ("img") or the one-word ones (group NULL). */
static void print_commands(FILE *out, int images)
{
    const char *sep = "";
    for (size_t i = 0; es_commands[i]; i++) {
        const char *name = es_commands[i]->name;
        int is_img = name[0] == 'i' && name[1] == 'm' && name[2] == 'g' && name[3] == ' ';
        if (is_img != images)
            continue;
        fprintf(out, "%s%s", sep, images ? name + 4 : name);
        sep = ", ";
    }
}

void es_print_version(FILE *out)
{
    fprintf(out, "extsnap %s\n", ES_VERSION);
    fprintf(out, "qcow2: versions 2 (compat=0.10) and 3 (compat=1.1); cluster sizes %u to %u "
                 "bytes; refcount widths 1 to %u bits; compression ",
            1u << QCOW2_MIN_CLUSTER_BITS, 1u << QCOW2_MAX_CLUSTER_BITS,
            1u << QCOW2_MAX_REFCOUNT_ORDER);
    for (size_t i = 0; i < sizeof compression / sizeof *compression; i++)
        fprintf(out, "%s%s", i ? ", " : "", compression[i]);
    fputs("; incompatible features ", out);
    print_list(out, 1);
    fputs(" (refused: ", out);
    print_list(out, 0);
    fputs("); persistent bitmaps kept as they are\n", out);
    fputs("qcow2 commands (img): ", out);
    print_commands(out, 1);
    fputs("\nlibvirt: domain XML and snapshot metadata as libvirt writes them, without "
          "libvirtd; external disk-only snapshots: ",
          out);
    print_commands(out, 0);
    fputs("; running VMs through QEMU's QMP socket\n", out);
}
