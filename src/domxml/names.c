#include "domxml/names.h"

#include <string.h>

/* NAME_MAX minus the ".xml" suffix and the ".<dom>-" / ".tmp" parts of the
 * temporary name are not all counted here; 200 leaves room for them. */
#define DOMXML_NAME_MAX 200

int domxml_check_snapshot_name(const char *name, es_err *e)
{
    if (!name || !*name)
        return es_err_set(e, 0, NULL, "invalid snapshot name: empty");
    if (strchr(name, '/'))
        return es_err_set(e, 0, NULL, "invalid snapshot name '%s': name can't contain '/'", name);
    if (name[0] == '.')
        return es_err_set(e, 0, NULL, "invalid snapshot name '%s': name can't start with '.'",
                          name);
    if (strcmp(name, "base") == 0)
        return es_err_set(e, 0, NULL,
                          "invalid snapshot name 'base': reserved for the image below all snapshots");
    if (strlen(name) > DOMXML_NAME_MAX)
        return es_err_set(e, 0, NULL, "invalid snapshot name '%.40s...': longer than %d bytes",
                          name, DOMXML_NAME_MAX);
    return 0;
}

int domxml_check_domain_name(const char *name, es_err *e)
{
    if (!name || !*name)
        return es_err_set(e, 0, NULL, "invalid domain name: empty");
    if (strchr(name, '/'))
        return es_err_set(e, 0, NULL, "invalid domain name '%s': name can't contain '/'", name);
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return es_err_set(e, 0, NULL, "invalid domain name '%s'", name);
    if (strlen(name) > DOMXML_NAME_MAX)
        return es_err_set(e, 0, NULL, "invalid domain name '%.40s...': longer than %d bytes", name,
                          DOMXML_NAME_MAX);
    return 0;
}
