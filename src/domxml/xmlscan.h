/* A byte-exact scan of an XML document: where every tag, attribute name and
 * value, text run and comment lies in the original text. libxml2 gives the
 * meaning; this gives the positions, so an edit can be a precise splice that
 * leaves every other byte (quotes, attribute order, indentation, comments)
 * alone. The scan is strict and total: any input yields a result or an error,
 * and a document type declaration is refused (libvirt files never have one,
 * and refusing it rules out entity tricks). Internal to domxml. */
#ifndef ES_DOMXML_XMLSCAN_H
#define ES_DOMXML_XMLSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define XS_NONE ((size_t)-1)

typedef enum {
    XS_TEXT,    /* character data between markup */
    XS_STAG,    /* <name ...> */
    XS_ETAG,    /* </name> */
    XS_EMPTY,   /* <name .../> */
    XS_COMMENT, /* <!-- ... --> */
    XS_PI,      /* <? ... ?>, the XML declaration included */
    XS_CDATA,   /* <![CDATA[ ... ]]> */
} xs_kind;

typedef struct xs_token {
    xs_kind kind;
    size_t off, len;
    size_t elem; /* element index for tags, XS_NONE otherwise */
} xs_token;

typedef struct xs_attr {
    size_t name_off, name_len;
    size_t value_off, value_len; /* between the quotes, still escaped */
    char quote;                  /* ' or " */
} xs_attr;

typedef struct xs_elem {
    size_t name_off, name_len;
    size_t start;      /* the '<' of the start tag */
    size_t stag_end;   /* just past the start tag's '>' */
    size_t attrs_end;  /* just past the last attribute (or the name) */
    size_t etag_start; /* the '<' of the end tag; stag_end for <x/> */
    size_t end;        /* just past the end tag */
    size_t attr_first, nattrs;
    size_t parent, first_child, last_child, next_sibling; /* XS_NONE if none */
    size_t stag_token;
    bool empty;
} xs_elem;

typedef struct xs_doc {
    const char *text; /* not owned */
    size_t len;
    xs_token *tokens;
    size_t ntokens;
    xs_elem *elems; /* in document order; elems[0] is the root */
    size_t nelems;
    xs_attr *attrs;
    size_t nattrs;
} xs_doc;

/* Scan text[0..len). origin names the document in errors. */
int xs_scan(const char *text, size_t len, const char *origin, xs_doc *out, es_err *e);
void xs_free(xs_doc *d);

/* Helpers over a scanned document. */
bool xs_name_is(const xs_doc *d, const xs_elem *el, const char *name);
/* First child element called name, or XS_NONE. */
size_t xs_child(const xs_doc *d, size_t elem, const char *name);
/* The attribute called name on elem, or NULL. */
const xs_attr *xs_attr_find(const xs_doc *d, size_t elem, const char *name);
/* 1-based line number of offset (for messages). */
size_t xs_line_of(const char *text, size_t off);
/* The indentation (spaces and tabs) from the start of elem's line to elem,
 * or an empty span when other text precedes it on that line. */
void xs_indent_of(const xs_doc *d, size_t elem, size_t *off, size_t *len);

#endif
