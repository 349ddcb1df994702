/* es_docgen: writes extsnap's man pages and bash completion at build time
 * from the command tables the binary itself is built from.
 *   es_docgen man TEMPLATE OUTDIR VERSION
 *   es_docgen completion TEMPLATE OUTFILE */
#include <stdio.h>
#include <string.h>

#include "docgen/completion.h"
#include "docgen/man_pages.h"

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "man") == 0)
        return man_write_all(argv[2], argv[3], argv[4]) < 0;
    if (argc == 4 && strcmp(argv[1], "completion") == 0)
        return completion_write(argv[2], argv[3]) < 0;
    fprintf(stderr, "usage: es_docgen man TEMPLATE OUTDIR VERSION\n"
                    "       es_docgen completion TEMPLATE OUTFILE\n");
    return 2;
}
