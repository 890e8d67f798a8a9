/* api_table.h — meta.k8s.io Table responses (what kubectl's `get` asks for
 * with Accept: application/json;as=Table;v=v1;g=meta.k8s.io): the columns
 * and cells of obj_print.h, built by api_table.c for api_server.c. */
#ifndef V6_API_TABLE_H
#define V6_API_TABLE_H

#include "obj.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum table_include {
	TABLE_INCLUDE_METADATA,	/* rows carry a PartialObjectMetadata (the default) */
	TABLE_INCLUDE_OBJECT,	/* rows carry the whole object */
	TABLE_INCLUDE_NONE,	/* rows carry no object */
};

/* api_table.c */
/* The Table apiVersion the Accept header asks for ("meta.k8s.io/v1" or
 * "meta.k8s.io/v1beta1", the first acceptable in the header's order), or
 * NULL when it does not ask for a Table. */
const char *table_accept(const char *accept);
/* The ?includeObject= value; -EINVAL for anything but None / Metadata /
 * Object ("" or NULL: Metadata). */
int table_include_parse(const char *s, enum table_include *out);
/* A Table of api_version for objects of kind k (items: an array, borrowed);
 * columns only when with_columns; rv / cont / remaining (< 0: unknown) go
 * to its metadata. now_ms is the clock of ages. Caller owns the result. */
json_t *table_build(const struct kind *k, const char *api_version, const json_t *items,
    enum table_include inc, bool with_columns, const char *rv, const char *cont,
    int64_t remaining, int64_t now_ms);

#endif
