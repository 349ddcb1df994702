/* extsnap --version: the version and what it supports. */
#ifndef ES_CMD_VERSION_H
#define ES_CMD_VERSION_H

#include <stdio.h>

void es_print_version(FILE *out);

#endif
