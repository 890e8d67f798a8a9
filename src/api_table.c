/* api_table.c — server-side printing: lists, objects and watch events as
 * meta.k8s.io/v1 Tables (column definitions by priority, typed cells, the
 * object per includeObject), from the one column table of obj_print.c.
 * Pure functions of their inputs; api_server.c decides when to call them. */
#include "api_table.h"
#include "obj_print.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One media range of an Accept header: "application/json;as=Table;v=v1;
 * g=meta.k8s.io". Returns the Table's apiVersion or NULL. */
static const char *
range_table(const char *r, size_t len)
{
	char *s = xstrndup(r, len), *save = NULL;
	bool json = false, table = false, group = false;
	const char *version = NULL;
	int i = 0;
	for (char *t = strtok_r(s, ";", &save); t; t = strtok_r(NULL, ";", &save), i++) {
		while (*t == ' ')
			t++;
		char *end = t + strlen(t);
		while (end > t && end[-1] == ' ')
			*--end = '\0';
		if (i == 0)
			json = strcmp(t, "application/json") == 0;
		else if (strcmp(t, "as=Table") == 0)
			table = true;
		else if (strcmp(t, "g=meta.k8s.io") == 0)
			group = true;
		else if (strcmp(t, "v=v1") == 0)
			version = "meta.k8s.io/v1";
		else if (strcmp(t, "v=v1beta1") == 0)
			version = "meta.k8s.io/v1beta1";
	}
	free(s);
	return json && table && group ? version : NULL;
}

const char *
table_accept(const char *accept)
{
	while (accept && *accept) {
		size_t n = strcspn(accept, ",");
		const char *v = range_table(accept, n);
		if (v)
			return v;
		accept += n;
		accept += *accept == ',';
	}
	return NULL;
}

int
table_include_parse(const char *s, enum table_include *out)
{
	static const struct {
		const char *name;
		enum table_include v;
	} names[] = { { "", TABLE_INCLUDE_METADATA }, { "Metadata", TABLE_INCLUDE_METADATA },
		{ "Object", TABLE_INCLUDE_OBJECT }, { "None", TABLE_INCLUDE_NONE } };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s ? s : "", names[i].name) == 0) {
			*out = names[i].v;
			return 0;
		}
	return -EINVAL;
}

static json_t *
columns_json(const struct print_col *cols, size_t n)
{
	json_t *defs = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct print_col *c = &cols[i];
		if (c->who == PRINT_V6)
			continue;
		json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", c->name, "type", c->type,
		    "format", c->cell ? "" : "name", "description",
		    c->description ? c->description : "", "priority", c->priority);
		json_array_append_new(defs, d);
	}
	return defs;
}

/* A cell as the printers type it: a number, a boolean, null or a string. */
static json_t *
cell_json(const struct print_col *c, const json_t *obj, int64_t now_ms)
{
	struct buf b = BUF_INIT;
	json_t *v;
	print_cell(c, obj, now_ms, &b);
	buf_putc(&b, '\0');
	const char *s = b.data;
	char *end = NULL;
	long long n = strtoll(s, &end, 10);
	bool is_int = *s && end && *end == '\0';
	switch (c->cell_type) {
	case PRINT_INT:
		v = is_int ? json_integer(n) : json_string(s);
		break;
	case PRINT_OPT_INT:
		v = is_int ? json_integer(n) : *s ? json_string(s) : json_null();
		break;
	case PRINT_BOOL:
		v = json_boolean(strcmp(s, "True") == 0);
		break;
	case PRINT_OPT:
		v = *s ? json_string(s) : json_null();
		break;
	default:
		v = json_string(s);
	}
	buf_free(&b);
	return v ? v : json_string("");
}

static json_t *
row_object(const json_t *obj, enum table_include inc)
{
	if (inc == TABLE_INCLUDE_OBJECT)
		return json_deep_copy(obj);
	json_t *meta = json_deep_copy(json_object_get(obj, "metadata"));
	json_object_del(meta, "managedFields");
	return json_pack("{s:s, s:s, s:o}", "kind", "PartialObjectMetadata", "apiVersion",
	    "meta.k8s.io/v1", "metadata", meta ? meta : json_object());
}

json_t *
table_build(const struct kind *k, const char *api_version, const json_t *items,
    enum table_include inc, bool with_columns, const char *rv, const char *cont,
    int64_t remaining, int64_t now_ms)
{
	size_t n, i;
	const struct print_col *cols = print_columns(k->kind, &n);
	const json_t *obj;
	json_t *rows = json_array(), *meta = json_object();
	json_array_foreach(items, i, obj) {
		json_t *cells = json_array();
		for (size_t c = 0; c < n; c++)
			if (cols[c].who != PRINT_V6)
				json_array_append_new(cells, cell_json(&cols[c], obj, now_ms));
		json_t *row = json_pack("{s:o}", "cells", cells);
		if (inc != TABLE_INCLUDE_NONE)
			json_object_set_new(row, "object", row_object(obj, inc));
		json_array_append_new(rows, row);
	}
	if (rv && *rv)
		json_object_set_new(meta, "resourceVersion", json_string(rv));
	if (cont && *cont)
		json_object_set_new(meta, "continue", json_string(cont));
	if (remaining >= 0)
		json_object_set_new(meta, "remainingItemCount", json_integer(remaining));
	json_t *t = json_pack("{s:s, s:s, s:o}", "kind", "Table", "apiVersion", api_version,
	    "metadata", meta);
	if (with_columns)
		json_object_set_new(t, "columnDefinitions", columns_json(cols, n));
	json_object_set_new(t, "rows", rows);
	return t;
}
