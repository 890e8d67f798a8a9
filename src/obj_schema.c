/* obj_schema.c — the schema engine (walks an object against its field
 * tables and collects every error with its Kubernetes field path), the
 * shapes every kind shares (ObjectMeta, LabelSelector), name and label
 * rules, and obj_validate / obj_validate_update / obj_default, which the API
 * server and the CLI call. Per-kind tables live in obj_schema_<group>.c. */
#include "obj_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names and labels ------------------------------------------------ */

static bool
is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..n) */
static bool
dns_label_ok(const char *s, size_t n)
{
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

const char *
name_check_dns1123_label(const char *s)
{
	if (strlen(s) > 63)
		return "must be no more than 63 characters";
	if (!dns_label_ok(s, strlen(s)))
		return "a lowercase RFC 1123 label must consist of lower case "
		    "alphanumeric characters or '-', and must start and end with an "
		    "alphanumeric character (e.g. 'my-name', or '123-abc', regex used "
		    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
	return NULL;
}

const char *
name_check_dns1123_subdomain(const char *s)
{
	static const char msg[] = "a lowercase RFC 1123 subdomain must consist of "
	    "lower case alphanumeric characters, '-' or '.', and must start and end "
	    "with an alphanumeric character (e.g. 'example.com', regex used for "
	    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
	size_t n = strlen(s);
	if (n > 253)
		return "must be no more than 253 characters";
	if (n == 0)
		return msg;
	for (const char *p = s;;) {
		size_t part = strcspn(p, ".");
		if (!dns_label_ok(p, part))
			return msg;
		if (!p[part])
			return NULL;
		p += part + 1;
	}
}

const char *
name_check_dns1035_label(const char *s)
{
	if (strlen(s) > 63)
		return "must be no more than 63 characters";
	if (!dns_label_ok(s, strlen(s)) || !(s[0] >= 'a' && s[0] <= 'z'))
		return "a DNS-1035 label must consist of lower case alphanumeric "
		    "characters or '-', start with an alphabetic character, and end "
		    "with an alphanumeric character (e.g. 'my-name', or 'abc-123', "
		    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
	return NULL;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n) */
static bool
qualified_part_ok(const char *s, size_t n)
{
	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

const char *
label_check_key(const char *s)
{
	const char *slash = strchr(s, '/');
	const char *name = slash ? slash + 1 : s;
	if (slash) {
		char prefix[256];
		size_t pn = (size_t)(slash - s);
		if (pn == 0)
			return "prefix part must be non-empty";
		if (pn > 253)
			return "prefix part must be no more than 253 characters";
		memcpy(prefix, s, pn);
		prefix[pn] = '\0';
		if (name_check_dns1123_subdomain(prefix))
			return "prefix part a lowercase RFC 1123 subdomain must consist "
			    "of lower case alphanumeric characters, '-' or '.', and must "
			    "start and end with an alphanumeric character (e.g. 'example.com')";
	}
	if (!*name)
		return "name part must be non-empty";
	if (strlen(name) > 63)
		return "name part must be no more than 63 characters";
	if (!qualified_part_ok(name, strlen(name)) || strchr(name, '/'))
		return "name part must consist of alphanumeric characters, '-', '_' "
		    "or '.', and must start and end with an alphanumeric character "
		    "(e.g. 'MyName', or 'my.name', or '123-abc', regex used for "
		    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
	return NULL;
}

const char *
label_check_value(const char *s)
{
	size_t n = strlen(s);
	if (n > 63)
		return "must be no more than 63 characters";
	if (n > 0 && !qualified_part_ok(s, n))
		return "a valid label must be an empty string or consist of "
		    "alphanumeric characters, '-', '_' or '.', and must start and end "
		    "with an alphanumeric character (e.g. 'MyValue', or 'my_value', or "
		    "'12345', regex used for validation is "
		    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
	return NULL;
}

const char *
name_check_iana_svc(const char *s)
{
	size_t n = strlen(s);
	bool letter = false;
	if (n == 0 || n > 15)
		return "must be no more than 15 characters";
	for (size_t i = 0; i < n; i++) {
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return "must contain only alpha-numeric characters (a-z, 0-9), "
			    "and hyphens (-)";
		letter |= s[i] >= 'a' && s[i] <= 'z';
	}
	if (!letter)
		return "must contain at least one letter (a-z)";
	if (strstr(s, "--"))
		return "must not contain consecutive hyphens";
	if (s[0] == '-' || s[n - 1] == '-')
		return "must not begin or end with a hyphen";
	return NULL;
}

/* ---- errors ---------------------------------------------------------- */

void
schema_err_invalid(struct errlist *errs, const char *path, const json_t *v,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *detail = xvasprintf(fmt, ap);
	va_end(ap);
	char *val = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	if (val && strlen(val) > 200)
		strcpy(val + 190, "...");
	errlist_add(errs, path, "FieldValueInvalid", "Invalid value: %s: %s",
	    val ? val : "null", detail);
	free(val);
	free(detail);
}

static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:	return "object";
	case JSON_ARRAY:	return "array";
	case JSON_STRING:	return "string";
	case JSON_INTEGER:	return "integer";
	case JSON_REAL:		return "number";
	case JSON_TRUE:
	case JSON_FALSE:	return "boolean";
	default:		return "null";
	}
}

static const char *const type_names[] = {
	[ST_ANY] = "any value", [ST_STRING] = "string", [ST_INT] = "integer",
	[ST_BOOL] = "boolean", [ST_NUMBER] = "number", [ST_OBJECT] = "object",
	[ST_ARRAY] = "array", [ST_MAP_STRING] = "object of strings",
	[ST_MAP_ANY] = "object", [ST_INT_OR_STRING] = "integer or string",
	[ST_QUANTITY] = "quantity (string or number)",
};

/* ---- the engine ------------------------------------------------------ */

static bool
type_ok(enum schema_type t, const json_t *v)
{
	double d;
	switch (t) {
	case ST_ANY:		return true;
	case ST_STRING:		return json_is_string(v);
	case ST_INT:		return json_is_integer(v);
	case ST_BOOL:		return json_is_boolean(v);
	case ST_NUMBER:		return json_is_number(v);
	case ST_OBJECT:
	case ST_MAP_ANY:	return json_is_object(v);
	case ST_ARRAY:		return json_is_array(v);
	case ST_MAP_STRING:	return json_is_object(v);
	case ST_INT_OR_STRING:	return json_is_integer(v) || json_is_string(v);
	case ST_QUANTITY:
		return json_is_number(v) ||
		    (json_is_string(v) && quantity_parse(json_string_value(v), &d) == 0);
	}
	return false;
}

static bool
str_listed(const char *s, const char *const *list)
{
	for (; list && *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static void
check_enum(const struct schema_field *f, const json_t *v, const char *path,
    struct errlist *errs)
{
	const char *s = json_string_value(v);
	if (!s || (!f->enums && !f->unsupported))
		return;
	if (str_listed(s, f->unsupported)) {
		errlist_add(errs, path, "FieldValueNotSupported",
		    "unsupported value \"%s\": not supported by v6", s);
		return;
	}
	if (!f->enums || str_listed(s, f->enums))
		return;
	struct buf b = BUF_INIT;
	for (const char *const *e = f->enums; *e; e++)
		buf_printf(&b, "%s\"%s\"", e == f->enums ? "" : ", ", *e);
	errlist_add(errs, path, "FieldValueNotSupported",
	    "unsupported value \"%s\": supported values: %s", s, b.data);
	buf_free(&b);
}

static void validate_value(const struct schema_field *f, enum schema_type t,
    const json_t *v, const char *path, struct errlist *errs);

static void
validate_map_string(const json_t *v, const char *path, struct errlist *errs)
{
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		if (json_is_string(x))
			continue;
		char *p = schema_path_key(path, k);
		errlist_add(errs, p, "FieldValueTypeInvalid",
		    "expected string, got %s", json_type_name(x));
		free(p);
	}
}

static void
validate_array(const struct schema_field *f, const json_t *v, const char *path,
    struct errlist *errs)
{
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x) {
		char *p = schema_path_index(path, i);
		if (json_is_null(x))
			errlist_add(errs, p, "FieldValueTypeInvalid",
			    "expected %s, got null", type_names[f->item]);
		else
			validate_value(f, f->item, x, p, errs);
		free(p);
	}
}

/* v (not null) against field f read as type t (t differs from f->type for
 * array items). */
static void
validate_value(const struct schema_field *f, enum schema_type t, const json_t *v,
    const char *path, struct errlist *errs)
{
	if (!type_ok(t, v)) {
		if (t == ST_QUANTITY && json_is_string(v))
			schema_err_invalid(errs, path, v, "must be a quantity such as "
			    "'100m', '128Mi' or '1.5'");
		else
			errlist_add(errs, path, "FieldValueTypeInvalid",
			    "expected %s, got %s", type_names[t], json_type_name(v));
		return;
	}
	if (t == ST_ARRAY) {
		validate_array(f, v, path, errs);
		return;
	}
	if (t == ST_OBJECT)
		schema_validate_fields(f->children, v, path, errs);
	else if (t == ST_MAP_STRING)
		validate_map_string(v, path, errs);
	check_enum(f, v, path, errs);
	if (f->check)
		f->check(v, path, errs);
}

static const struct schema_field *
field_find(const struct schema_field *fields, const char *name)
{
	for (const struct schema_field *f = fields; f && f->name; f++)
		if (!strcmp(f->name, name))
			return f;
	return NULL;
}

void
schema_validate_fields(const struct schema_field *fields, const json_t *obj,
    const char *path, struct errlist *errs)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		const struct schema_field *f = field_find(fields, k);
		char *p = schema_path_key(path, k);
		if (!f)
			errlist_add(errs, p, "FieldValueUnknown", "unknown field \"%s\"", k);
		else if (json_is_null(v))
			;	/* null means absent, as in Kubernetes */
		else if (f->flags & SF_UNSUPPORTED)
			errlist_add(errs, p, "FieldValueForbidden", "not supported by v6");
		else
			validate_value(f, f->type, v, p, errs);
		free(p);
	}
	for (const struct schema_field *f = fields; f && f->name; f++) {
		if (!(f->flags & SF_REQUIRED))
			continue;
		json_t *x = json_object_get(obj, f->name);
		if (x && !json_is_null(x))
			continue;
		char *p = schema_path_key(path, f->name);
		errlist_add(errs, p, "FieldValueRequired", "required");
		free(p);
	}
}

/* ---- ObjectMeta and LabelSelector ------------------------------------ */

static void
check_label_map(const json_t *v, const char *path, struct errlist *errs, bool values)
{
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		char *p = schema_path_key(path, k);
		const char *msg = label_check_key(k);
		if (msg) {
			json_t *key = json_string(k);
			schema_err_invalid(errs, p, key, "%s", msg);
			json_decref(key);
		}
		if (values && json_is_string(x) && (msg = label_check_value(json_string_value(x))))
			schema_err_invalid(errs, p, x, "%s", msg);
		free(p);
	}
}

static void
check_labels(const json_t *v, const char *path, struct errlist *errs)
{
	check_label_map(v, path, errs, true);
}

#define ANNOTATIONS_MAX (256 * 1024)

static void
check_annotations(const json_t *v, const char *path, struct errlist *errs)
{
	check_label_map(v, path, errs, false);
	size_t total = 0;
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x)
		total += strlen(k) + json_string_length(x);
	if (total > ANNOTATIONS_MAX)
		errlist_add(errs, path, "FieldValueTooLong",
		    "may not have more than %d bytes in all (has %zu)", ANNOTATIONS_MAX, total);
}

static void
check_qualified_name(const json_t *v, const char *path, struct errlist *errs)
{
	const char *msg = label_check_key(json_string_value(v));
	if (msg)
		schema_err_invalid(errs, path, v, "%s", msg);
}

static const char *const selector_ops[] = { "In", "NotIn", "Exists", "DoesNotExist", NULL };

static void
check_selector_expr(const json_t *v, const char *path, struct errlist *errs)
{
	const char *op = json_string_value(json_object_get(v, "operator"));
	size_t nvalues = json_array_size(json_object_get(v, "values"));
	if (!op)
		return;
	char *p = schema_path_key(path, "values");
	bool set_op = !strcmp(op, "In") || !strcmp(op, "NotIn");
	if (set_op && nvalues == 0)
		errlist_add(errs, p, "FieldValueRequired",
		    "required: must be specified when `operator` is 'In' or 'NotIn'");
	else if (!set_op && nvalues > 0)
		errlist_add(errs, p, "FieldValueForbidden",
		    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
	free(p);
}

static const struct schema_field selector_expr_fields[] = {
	F_STR("key", .flags = SF_REQUIRED, .check = check_qualified_name),
	F_STR("operator", .flags = SF_REQUIRED, .enums = selector_ops),
	F_ARR("values", ST_STRING),
	F_END
};

const struct schema_field schema_label_selector[] = {
	F_MAPS("matchLabels", .check = check_labels),
	F_AOBJ("matchExpressions", selector_expr_fields, .check = check_selector_expr),
	F_END
};

static const struct schema_field owner_ref_fields[] = {
	F_STR("apiVersion", .flags = SF_REQUIRED),
	F_STR("kind", .flags = SF_REQUIRED),
	F_STR("name", .flags = SF_REQUIRED),
	F_STR("uid", .flags = SF_REQUIRED),
	F_BOOL("controller"),
	F_BOOL("blockOwnerDeletion"),
	F_END
};

const struct schema_field schema_object_meta[] = {
	F_STR("name"),
	F_STR("generateName"),
	F_STR("namespace"),
	F_MAPS("labels", .check = check_labels),
	F_MAPS("annotations", .check = check_annotations),
	F_AOBJ("ownerReferences", owner_ref_fields),
	F_ARR("finalizers", ST_STRING, .check = check_qualified_name),
	F_STR("uid"),
	F_STR("resourceVersion"),
	F_INT("generation"),
	F_STR("creationTimestamp"),
	F_STR("deletionTimestamp"),
	F_INT("deletionGracePeriodSeconds"),
	F_ARR("managedFields", ST_ANY),
	F_STR("selfLink"),
	F_END
};

static bool
expr_matches(const json_t *e, const json_t *labels)
{
	const char *key = json_string_value(json_object_get(e, "key"));
	const char *op = json_string_value(json_object_get(e, "operator"));
	if (!key || !op)
		return false;
	const char *have = json_string_value(json_object_get(labels, key));
	bool in = false;
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(e, "values"), i, x)
		if (have && json_is_string(x) && !strcmp(have, json_string_value(x)))
			in = true;
	if (!strcmp(op, "In"))
		return in;
	if (!strcmp(op, "NotIn"))
		return !in;
	if (!strcmp(op, "Exists"))
		return have != NULL;
	if (!strcmp(op, "DoesNotExist"))
		return have == NULL;
	return false;
}

bool
schema_selector_matches(const json_t *selector, const json_t *labels)
{
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(selector, "matchLabels"), k, v) {
		const char *have = json_string_value(json_object_get(labels, k));
		if (!have || !json_is_string(v) || strcmp(have, json_string_value(v)))
			return false;
	}
	size_t i;
	json_array_foreach(json_object_get(selector, "matchExpressions"), i, v)
		if (!expr_matches(v, labels))
			return false;
	return true;
}

void
schema_default_str(json_t *o, const char *key, const char *v)
{
	json_t *x = json_object_get(o, key);
	if (json_is_object(o) && (!x || json_is_null(x)))
		json_object_set_new(o, key, json_string(v));
}

void
schema_default_int(json_t *o, const char *key, json_int_t v)
{
	json_t *x = json_object_get(o, key);
	if (json_is_object(o) && (!x || json_is_null(x)))
		json_object_set_new(o, key, json_integer(v));
}

/* ---- whole objects --------------------------------------------------- */

static void
validate_name(const struct kind *k, const json_t *meta, struct errlist *errs)
{
	const char *(*check)(const char *) = k->name_check ? k->name_check :
	    name_check_dns1123_subdomain;
	const json_t *name = json_object_get(meta, "name");
	const json_t *gen = json_object_get(meta, "generateName");
	const char *msg;
	if (json_is_string(name)) {
		if ((msg = check(json_string_value(name))))
			schema_err_invalid(errs, "metadata.name", name, "%s", msg);
	} else if (json_is_string(gen)) {
		/* generateName is a prefix: check it with its trailing '-'
		 * masked, as Kubernetes does. */
		char *prefix = xstrdup(json_string_value(gen));
		size_t n = strlen(prefix);
		if (n && prefix[n - 1] == '-')
			prefix[n - 1] = 'a';
		if ((msg = check(prefix)))
			schema_err_invalid(errs, "metadata.generateName", gen, "%s", msg);
		free(prefix);
	} else if (!name || json_is_null(name)) {
		errlist_add(errs, "metadata.name", "FieldValueRequired",
		    "required: name or generateName is required");
	}
	const json_t *ns = json_object_get(meta, "namespace");
	if (json_is_string(ns) && (msg = name_check_dns1123_label(json_string_value(ns))))
		schema_err_invalid(errs, "metadata.namespace", ns, "%s", msg);
}

static const struct schema_field meta_field = F_OBJ("metadata", schema_object_meta);

static void
validate_top(const struct kind *k, const json_t *obj, struct errlist *errs)
{
	json_t *rest = json_copy((json_t *)obj);
	json_object_del(rest, "apiVersion");
	json_object_del(rest, "kind");
	json_object_del(rest, "metadata");
	schema_validate_fields(k->fields, rest, "", errs);
	json_decref(rest);
	const json_t *meta = json_object_get(obj, "metadata");
	if (!meta || json_is_null(meta)) {
		errlist_add(errs, "metadata.name", "FieldValueRequired", "required");
		return;
	}
	validate_value(&meta_field, ST_OBJECT, meta, "metadata", errs);
	if (json_is_object(meta))
		validate_name(k, meta, errs);
}

static const struct kind *
validate_gvk(const json_t *obj, struct errlist *errs)
{
	const json_t *av = json_object_get(obj, "apiVersion");
	const json_t *kd = json_object_get(obj, "kind");
	bool ok = true;
	if (!json_is_string(kd) || !*json_string_value(kd)) {
		errlist_add(errs, "kind", "FieldValueRequired", "required");
		ok = false;
	}
	if (!json_is_string(av) || !*json_string_value(av)) {
		errlist_add(errs, "apiVersion", "FieldValueRequired", "required");
		ok = false;
	}
	if (!ok)
		return NULL;
	const struct kind *k = kind_find_gvk(json_string_value(av), json_string_value(kd));
	if (!k)
		errlist_add(errs, "kind", "FieldValueNotSupported",
		    "no kind \"%s\" is registered for version \"%s\"",
		    json_string_value(kd), json_string_value(av));
	return k;
}

int
obj_validate(const json_t *obj, struct errlist *errs)
{
	size_t before = errs->n;
	if (!json_is_object(obj)) {
		errlist_add(errs, "", "FieldValueTypeInvalid", "expected object, got %s",
		    obj ? json_type_name(obj) : "nothing");
		return -EINVAL;
	}
	const struct kind *k = validate_gvk(obj, errs);
	if (!k)
		return -EINVAL;
	validate_top(k, obj, errs);
	/* Semantic checks assume the shapes are right. */
	if (errs->n == before && k->validate)
		k->validate(obj, errs);
	return errs->n > before ? -EINVAL : 0;
}

int
obj_validate_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	size_t before = errs->n;
	const struct kind *k = kind_find_gvk(obj_api_version(obj), obj_kind(obj));
	if (!k) {
		errlist_add(errs, "kind", "FieldValueNotSupported",
		    "no kind \"%s\" is registered for version \"%s\"",
		    obj_kind(obj), obj_api_version(obj));
		return -EINVAL;
	}
	if (strcmp(obj_kind(old), obj_kind(obj)))
		errlist_add(errs, "kind", "FieldValueInvalid",
		    "field is immutable (was \"%s\")", obj_kind(old));
	else if (k->validate_update)
		k->validate_update(old, obj, errs);
	return errs->n > before ? -EINVAL : 0;
}

/* null means absent: drop null members so defaulting and every reader see
 * one shape. */
static void
prune_nulls(json_t *v, int depth)
{
	if (depth > 200)
		return;
	if (json_is_object(v)) {
		const char *k;
		json_t *x;
		void *tmp;
		json_object_foreach_safe(v, tmp, k, x) {
			if (json_is_null(x))
				json_object_del(v, k);
			else
				prune_nulls(x, depth + 1);
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
			prune_nulls(x, depth + 1);
	}
}

void
obj_prune_nulls(json_t *v)
{
	prune_nulls(v, 0);
}

void
obj_default(json_t *obj)
{
	const struct kind *k = kind_find_gvk(obj_api_version(obj), obj_kind(obj));
	if (!k)
		return;
	prune_nulls(obj, 0);
	if (k->defaults)
		k->defaults(obj);
}
