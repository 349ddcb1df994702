/* libFuzzer harness, libvirt snapshot metadata XML: the input is one
 * document. A document that parses formats, the formatted text parses
 * again, and formatting that gives the same bytes (parse -> format is a
 * fixed point after one round). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domxml/snapshot.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    domxml_snapshot *s = NULL, *s2 = NULL;
    es_err e = {0};
    int r = domxml_snapshot_parse((const char *)data, size, "fuzz", &s, &e);
    fz_expect(r, &e, "domxml_snapshot_parse");
    if (r < 0)
        return 0;
    char *t1 = NULL, *t2 = NULL;
    size_t n1 = 0, n2 = 0;
    r = domxml_snapshot_format(s, &t1, &n1, &e);
    FZ_ASSERT(r == 0, "a parsed snapshot does not format: %s", e.msg);
    r = domxml_snapshot_parse(t1, n1, "formatted", &s2, &e);
    FZ_ASSERT(r == 0, "the formatted snapshot does not parse: %s\n%.*s", e.msg, (int)n1, t1);
    FZ_ASSERT(strcmp(s->name, s2->name) == 0 && s->creation_time == s2->creation_time &&
                  s->current == s2->current && s->ndisks == s2->ndisks &&
                  (s->domain != NULL) == (s2->domain != NULL),
              "the formatted snapshot reads back differently");
    r = domxml_snapshot_format(s2, &t2, &n2, &e);
    FZ_ASSERT(r == 0, "the re-parsed snapshot does not format: %s", e.msg);
    FZ_ASSERT(n1 == n2 && memcmp(t1, t2, n1) == 0,
              "format(parse(format(x))) differs from format(x):\n%.*s\n----\n%.*s", (int)n1, t1,
              (int)n2, t2);
    free(t1);
    free(t2);
    domxml_snapshot_free(s2);
    domxml_snapshot_free(s);
    return 0;
}
