/* Which free texts (a snapshot's <description>) libvirt's files can hold so
 * that they read back as written: UTF-8 (the files' encoding), characters
 * XML 1.0 allows, and no control characters but tab and newline (a
 * carriage return would come back as a newline: XML parsers normalise it).
 * What is then written is escaped by the formatter and parsed back with
 * libxml2 before it goes into a plan (snap/txn/plan_xml.c). */
#ifndef ES_DOMXML_TEXT_H
#define ES_DOMXML_TEXT_H

#include "util/err.h"

/* 0 when text may be written as element content; else -1 with an error
 * naming `what` ("description") and the offending byte offset. */
int domxml_check_text(const char *text, const char *what, es_err *e);

#endif
