/* obj_schema_node.c — node.k8s.io/v1 RuntimeClass: its schema and checks.
 * V6 runs two handlers, "runc" and "process" (node_runc.c, node_runtime.c);
 * any other handler is valid upstream and refused here as not supported by
 * v6. The table of kinds (obj_kind.c) points here; the server creates the
 * objects runc and process at start-up. */
#include "obj_schema.h"

#include <string.h>

static const char *const v6_handlers[] = { "runc", "process", NULL };

static void
check_handler(const json_t *v, const char *path, struct errlist *errs)
{
	const char *s = json_string_value(v);
	const char *msg = name_check_dns1123_label(s);
	if (msg) {
		schema_err_invalid(errs, path, v, "%s", msg);
		return;
	}
	for (const char *const *h = v6_handlers; *h; h++)
		if (strcmp(*h, s) == 0)
			return;
	errlist_add(errs, path, "FieldValueNotSupported", "unsupported value \"%s\": not "
	    "supported by v6 (its handlers: runc, process)", s);
}

static const struct schema_field runtimeclass_overhead[] = {
	F_UNSUP("podFixed"),
	F_END
};

static const struct schema_field runtimeclass_scheduling[] = {
	F_UNSUP("nodeSelector"),
	F_UNSUP("tolerations"),
	F_END
};

const struct schema_field schema_runtimeclass[] = {
	F_STR("handler", .flags = SF_REQUIRED, .check = check_handler),
	F_OBJ("overhead", runtimeclass_overhead),
	F_OBJ("scheduling", runtimeclass_scheduling),
	F_END
};

/* handler is immutable (as upstream). */
void
node_runtimeclass_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	if (!json_equal(json_object_get(old, "handler"), json_object_get(obj, "handler")))
		errlist_add(errs, "handler", "FieldValueInvalid",
		    "field is immutable");
}
