#include "domxml/header.h"

#include "domxml/strbuf.h"

int domxml_libvirt_header(const char *command, const char *name, char **out, es_err *e)
{
    dx_buf b = {0};
    dx_buf_adds(&b, "<!--\n"
                    "WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n"
                    "OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n"
                    "  virsh ");
    dx_buf_adds(&b, command);
    if (name) {
        dx_buf_adds(&b, " ");
        dx_buf_adds(&b, name);
    }
    dx_buf_adds(&b, "\n"
                    "or other application using the libvirt API.\n"
                    "-->\n"
                    "\n");
    return dx_buf_take(&b, out, NULL, e);
}
