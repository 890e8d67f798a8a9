/* obj_parse.c — manifests (multi-document YAML or JSON, v1 Lists expanded)
 * into jansson trees plus a field path -> [line, col] map, for the CLI
 * (apply -f) and the API server (YAML bodies). libyaml event API, YAML 1.2
 * core schema; limits: depth 100, 100000 nodes through aliases; merge keys
 * ("<<: *base") are supported and explicit keys win over merged ones. */
#include "obj_schema.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define PARSE_MAX_DEPTH		100
#define PARSE_MAX_ALIAS_NODES	100000

#define TAG_PREFIX "tag:yaml.org,2002:"

struct frame {
	json_t *node;		/* object or array being built */
	size_t path_len;	/* path of this node in parser.path */
	int line, col;		/* start of the node */
	char *anchor;
	size_t nodes_at_start;
	/* mappings: the key waiting for its value */
	char *key;
	size_t key_len;
	int key_line, key_col;
	bool key_is_merge;
	json_t *merges;		/* mappings from "<<" keys, applied at the end */
	size_t index;		/* sequences: index of the next item */
};

struct anchor {
	char *name;
	json_t *value;
	size_t nodes;
};

struct parser {
	yaml_parser_t yp;
	struct errlist *errs;
	struct buf path;
	struct frame stack[PARSE_MAX_DEPTH];
	int depth;
	json_t *root;
	int root_line, root_col;
	json_t *pos;
	struct anchor *anchors;
	size_t nanchors, anchors_cap;
	size_t nodes;		/* nodes of this document, aliases expanded */
	size_t alias_nodes;
	bool doc_failed;	/* a non-fatal error in this document */
	bool fatal;		/* stop parsing */
	bool syntax_error;	/* libyaml itself rejected the input */
	bool positions_only;	/* fallback pass: do not report errors */
	bool yaml11_bools;	/* y, yes, on, n, no, off... are bools (YAML 1.1) */
	struct obj_docs *out;
	size_t out_cap;
	json_t *item_pos;	/* positions inside a List's items, see pos_record() */
	json_t *line_int;	/* see pos_int() */
	int line_val;
	json_t *col_ints[128];
};

/* ---- errors ---------------------------------------------------------- */

static void V6_PRINTF(5, 6)
perr(struct parser *p, const yaml_mark_t *m, const char *field, const char *reason,
    const char *fmt, ...)
{
	p->doc_failed = true;
	if (p->positions_only)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	errlist_add_at(p->errs, (int)m->line + 1, (int)m->column + 1, field,
	    reason, "%s", msg);
	free(msg);
}

static void
perr_fatal_syntax(struct parser *p)
{
	yaml_parser_t *y = &p->yp;
	p->fatal = p->syntax_error = true;
	if (p->positions_only)
		return;
	const char *problem = y->problem ? y->problem : "invalid YAML";
	if (y->context)
		errlist_add_at(p->errs, (int)y->problem_mark.line + 1,
		    (int)y->problem_mark.column + 1, "", "FieldValueInvalid",
		    "%s (%s at line %d)", problem, y->context,
		    (int)y->context_mark.line + 1);
	else
		errlist_add_at(p->errs, (int)y->problem_mark.line + 1,
		    (int)y->problem_mark.column + 1, "", "FieldValueInvalid",
		    "%s", problem);
}

/* ---- paths and positions --------------------------------------------- */

/* Field names are plain words; map keys with anything else ('.', '/',
 * spaces, ...) are written in brackets, as Kubernetes writes map keys. */
static bool
key_needs_brackets(const char *k, size_t n)
{
	if (n == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		char c = k[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '$'))
			return true;
	}
	return false;
}

static void
path_append_key(struct buf *b, const char *k, size_t n)
{
	if (key_needs_brackets(k, n)) {
		buf_putc(b, '[');
		buf_append(b, k, n);
		buf_putc(b, ']');
	} else {
		if (b->len)
			buf_putc(b, '.');
		buf_append(b, k, n);
	}
}

static void
path_append_index(struct buf *b, size_t i)
{
	char tmp[24], *e = tmp + sizeof tmp, *q = e;
	*--q = ']';
	do
		*--q = (char)('0' + i % 10);
	while ((i /= 10) > 0);
	*--q = '[';
	buf_append(b, q, (size_t)(e - q));
}

char *
schema_path_key(const char *path, const char *key)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, path);
	path_append_key(&b, key, strlen(key));
	return buf_steal(&b);
}

char *
schema_path_index(const char *path, size_t i)
{
	return xasprintf("%s[%zu]", path, i);
}

static void
path_truncate(struct buf *b, size_t len)
{
	b->len = len;
	if (b->data)
		b->data[len] = '\0';
}

static const char *
path_str(struct parser *p)
{
	return p->path.data ? p->path.data : "";
}

static json_t *
pos_pair(int line, int col)
{
	json_t *a = json_array();
	json_array_append_new(a, json_integer(line));
	json_array_append_new(a, json_integer(col));
	return a;
}

/* Integers are shared between pairs (they are never modified): most nodes
 * share a line with their neighbour and a column with many others, and this
 * saves two allocations per node on large manifests. */
static json_t *
pos_int(struct parser *p, int v, bool is_line)
{
	if (is_line) {
		if (!p->line_int || p->line_val != v) {
			json_decref(p->line_int);
			p->line_int = json_integer(v);
			p->line_val = v;
		}
		return json_incref(p->line_int);
	}
	if (v < 0 || v >= (int)ARRAY_SIZE(p->col_ints))
		return json_integer(v);
	if (!p->col_ints[v])
		p->col_ints[v] = json_integer(v);
	return json_incref(p->col_ints[v]);
}

static void
pos_ints_free(struct parser *p)
{
	json_decref(p->line_int);
	p->line_int = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(p->col_ints); i++) {
		json_decref(p->col_ints[i]);
		p->col_ints[i] = NULL;
	}
}

/* Positions under a top-level "items" sequence go straight into one object
 * per item, relative to the item, so a large List is not split afterwards.
 * Returns the object to record into and the path to use there. */
static json_t *
pos_target(struct parser *p, const char **path)
{
	*path = path_str(p);
	if (p->depth < 2 || !json_is_array(p->stack[1].node) || !p->stack[0].key ||
	    p->stack[0].key_is_merge || strcmp(p->stack[0].key, "items"))
		return p->pos;
	const char *rel = strchr(*path + p->stack[1].path_len, ']');
	if (!rel)
		return p->pos;
	rel++;
	if (*rel == '.')
		rel++;
	*path = rel;
	if (!p->item_pos)
		p->item_pos = json_array();
	while (json_array_size(p->item_pos) <= p->stack[1].index)
		json_array_append_new(p->item_pos, json_object());
	return json_array_get(p->item_pos, p->stack[1].index);
}

static void
pos_record(struct parser *p, int line, int col)
{
	json_t *a = json_array();
	json_array_append_new(a, pos_int(p, line, true));
	json_array_append_new(a, pos_int(p, col, false));
	const char *path;
	json_t *target = pos_target(p, &path);
	json_object_set_new(target, path, a);
}

/* Puts item positions back under "items[i]" (the document was no List). */
static void
pos_merge_items(json_t *pos, const json_t *item_pos)
{
	size_t i;
	json_t *ip;
	struct buf b = BUF_INIT;
	json_array_foreach(item_pos, i, ip) {
		const char *k;
		json_t *v;
		json_object_foreach(ip, k, v) {
			buf_reset(&b);
			buf_printf(&b, "items[%zu]%s%s", i, *k && *k != '[' ? "." : "", k);
			json_object_set(pos, b.data, v);
		}
	}
	buf_free(&b);
}

/* Strips the last component: "a.b[0]" -> "a.b" -> "a" -> "". */
static size_t
path_parent_len(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	if (s[n - 1] == ']') {
		for (size_t i = n - 1; i > 0; i--)
			if (s[i - 1] == '[')
				return i - 1;
		return 0;
	}
	for (size_t i = n; i > 0; i--)
		if (s[i - 1] == '.' || s[i - 1] == ']')
			return s[i - 1] == '.' ? i - 1 : i;
	return 0;
}

void
obj_pos_lookup(const json_t *pos, const char *field, int *line, int *col)
{
	*line = *col = 0;
	if (!pos || !field)
		return;
	size_t n = strlen(field);
	for (;;) {
		json_t *a = json_object_getn(pos, field, n);
		if (json_is_array(a)) {
			*line = (int)json_integer_value(json_array_get(a, 0));
			*col = (int)json_integer_value(json_array_get(a, 1));
			return;
		}
		if (n == 0)
			return;
		n = path_parent_len(field, n);
	}
}

void
obj_pos_annotate(const json_t *pos, struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		struct field_err *fe = &errs->v[i];
		if (fe->line == 0)
			obj_pos_lookup(pos, fe->field, &fe->line, &fe->col);
	}
}

/* ---- scalars --------------------------------------------------------- */

static bool
all_in(const char *s, size_t n, const char *set)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr(set, s[i]) || s[i] == '\0')
			return false;
	return true;
}

static bool
str_in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static const char *const null_words[] = { "", "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "true", "True", "TRUE", NULL };
static const char *const false_words[] = { "false", "False", "FALSE", NULL };
/* YAML 1.1's other bool words, as go-yaml v2 (sigs.k8s.io/yaml) reads them */
static const char *const true_words11[] = { "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
	NULL };
static const char *const false_words11[] = { "n", "N", "no", "No", "NO", "off", "Off", "OFF",
	NULL };
static const char *const inf_nan_words[] = { ".inf", ".Inf", ".INF", "+.inf",
	"+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL };

#define DIGITS "0123456789"

static bool
is_core_int(const char *s, size_t n)
{
	if (n > 2 && s[0] == '0' && s[1] == 'o')
		return all_in(s + 2, n - 2, "01234567");
	if (n > 2 && s[0] == '0' && s[1] == 'x')
		return all_in(s + 2, n - 2, DIGITS "abcdefABCDEF");
	if (n > 0 && (s[0] == '-' || s[0] == '+'))
		s++, n--;
	return all_in(s, n, DIGITS);
}

/* [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
static bool
is_core_float(const char *s)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	size_t ip = strspn(p, DIGITS);
	p += ip;
	size_t fp = 0;
	if (*p == '.') {
		p++;
		fp = strspn(p, DIGITS);
		p += fp;
	}
	if (ip == 0 && fp == 0)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		size_t ep = strspn(p, DIGITS);
		if (ep == 0)
			return false;
		p += ep;
	}
	return *p == '\0';
}

static json_t *
parse_int(struct parser *p, const yaml_mark_t *m, const char *s)
{
	int base = 10;
	const char *digits = s;
	bool neg = false;
	if (s[0] == '0' && s[1] == 'o')
		base = 8, digits = s + 2;
	else if (s[0] == '0' && s[1] == 'x')
		base = 16, digits = s + 2;
	else if (s[0] == '-' || s[0] == '+')
		neg = s[0] == '-', digits = s + 1;
	errno = 0;
	char *end;
	unsigned long long u = strtoull(digits, &end, base);
	unsigned long long lim = neg ? (unsigned long long)INT64_MAX + 1 : (unsigned long long)INT64_MAX;
	if (errno == ERANGE || u > lim || *end) {
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "integer %s is out of range (64-bit signed)", s);
		return json_null();
	}
	if (neg)
		return json_integer(u == lim ? INT64_MIN : -(json_int_t)u);
	return json_integer((json_int_t)u);
}

static json_t *
parse_float(struct parser *p, const yaml_mark_t *m, const char *s)
{
	double d = strtod(s, NULL);
	if (!isfinite(d)) {
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "number %s is out of range", s);
		return json_null();
	}
	return json_real(d);
}

static json_t *
scalar_string(struct parser *p, const yaml_mark_t *m, const char *s, size_t n)
{
	json_t *v = json_stringn(s, n);
	if (!v) {
		perr(p, m, path_str(p), "FieldValueInvalid", "invalid UTF-8 in string");
		return json_null();
	}
	return v;
}

/* A plain scalar under the YAML 1.2 core schema. */
static json_t *
resolve_plain(struct parser *p, const yaml_mark_t *m, const char *s, size_t n)
{
	/* Most scalars are words: only these first bytes can start a null,
	 * a bool or a number. NUL inside: only a string can hold it. */
	if (p->yaml11_bools && str_in(s, true_words11))
		return json_true();
	if (p->yaml11_bools && str_in(s, false_words11))
		return json_false();
	if ((n && !strchr("~nNtTfF0123456789+-.", s[0])) || strlen(s) != n)
		return scalar_string(p, m, s, n);
	if (str_in(s, null_words))
		return json_null();
	if (str_in(s, true_words))
		return json_true();
	if (str_in(s, false_words))
		return json_false();
	if (is_core_int(s, n))
		return parse_int(p, m, s);
	if (is_core_float(s))
		return parse_float(p, m, s);
	if (str_in(s, inf_nan_words)) {
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "%s: infinity and NaN cannot be represented in JSON; quote it for a string", s);
		return json_null();
	}
	return scalar_string(p, m, s, n);
}

static json_t *
resolve_tagged(struct parser *p, const yaml_mark_t *m, const char *tag,
    const char *s, size_t n)
{
	const char *t = str_has_prefix(tag, TAG_PREFIX) ? tag + strlen(TAG_PREFIX) : NULL;
	if (!strcmp(tag, "!") || (t && !strcmp(t, "str")))
		return scalar_string(p, m, s, n);
	bool clean = strlen(s) == n;
	if (t && !strcmp(t, "null") && clean && str_in(s, null_words))
		return json_null();
	if (t && !strcmp(t, "bool") && clean && (str_in(s, true_words) || str_in(s, false_words)))
		return str_in(s, true_words) ? json_true() : json_false();
	if (t && !strcmp(t, "int") && clean && is_core_int(s, n))
		return parse_int(p, m, s);
	if (t && !strcmp(t, "float") && clean && (is_core_float(s) || is_core_int(s, n)))
		return parse_float(p, m, s);
	if (t && (!strcmp(t, "null") || !strcmp(t, "bool") || !strcmp(t, "int") ||
	    !strcmp(t, "float"))) {
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "cannot read \"%s\" as !!%s", s, t);
		return json_null();
	}
	perr(p, m, path_str(p), "FieldValueInvalid",
	    "unsupported YAML tag \"%s\" (only the core schema tags are allowed)", tag);
	return json_null();
}

/* ---- building the tree ----------------------------------------------- */

static struct frame *
top(struct parser *p)
{
	return p->depth ? &p->stack[p->depth - 1] : NULL;
}

static bool
expecting_key(struct parser *p)
{
	struct frame *f = top(p);
	return f && json_is_object(f->node) && !f->key;
}

/* A node starts at m: set the path for it (sequence items) and record its
 * position. Mapping values already have theirs (the key's). */
static void
node_begin(struct parser *p, const yaml_mark_t *m)
{
	struct frame *f = top(p);
	if (!f) {
		p->root_line = (int)m->line + 1;
		p->root_col = (int)m->column + 1;
		path_truncate(&p->path, 0);
		pos_record(p, p->root_line, p->root_col);
		return;
	}
	if (json_is_array(f->node)) {
		path_truncate(&p->path, f->path_len);
		path_append_index(&p->path, f->index);
		pos_record(p, (int)m->line + 1, (int)m->column + 1);
	}
}

static void
set_key(struct parser *p, const yaml_mark_t *m, const char *k, size_t n, bool merge)
{
	struct frame *f = top(p);
	f->key = xstrndup(k, n);
	f->key_len = n;
	f->key_line = (int)m->line + 1;
	f->key_col = (int)m->column + 1;
	f->key_is_merge = merge;
	path_truncate(&p->path, f->path_len);
	if (!merge) {
		path_append_key(&p->path, k, n);
		pos_record(p, f->key_line, f->key_col);
	}
}

static void
add_merge(struct parser *p, struct frame *f, json_t *v)
{
	yaml_mark_t m = { 0, (size_t)f->key_line - 1, (size_t)f->key_col - 1 };
	size_t n = json_is_array(v) ? json_array_size(v) : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *src = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_object(src)) {
			perr(p, &m, path_str(p), "FieldValueInvalid",
			    "a merge key (<<) needs a mapping or a list of mappings");
			break;
		}
		if (!f->merges)
			f->merges = json_array();
		json_array_append(f->merges, src);
	}
	json_decref(v);
}

/* A finished node v (reference stolen) goes into its parent. */
static void
node_attach(struct parser *p, json_t *v)
{
	struct frame *f = top(p);
	if (!f) {
		json_decref(p->root);
		p->root = v;
		return;
	}
	if (json_is_array(f->node)) {
		json_array_append_new(f->node, v);
		f->index++;
		return;
	}
	if (!f->key) {
		/* A non-scalar key: the scalar case never gets here. */
		yaml_mark_t m = { 0, (size_t)f->line - 1, (size_t)f->col - 1 };
		if (json_is_string(v)) {
			set_key(p, &m, json_string_value(v), json_string_length(v), false);
		} else {
			perr(p, &m, path_str(p), "FieldValueInvalid",
			    "mapping keys must be strings");
			set_key(p, &m, "", 0, true);	/* swallow its value */
		}
		json_decref(v);
		return;
	}
	if (f->key_is_merge) {
		if (f->key_len == 2)
			add_merge(p, f, v);
		else
			json_decref(v);
	} else if (json_object_getn(f->node, f->key, f->key_len)) {
		yaml_mark_t m = { 0, (size_t)f->key_line - 1, (size_t)f->key_col - 1 };
		perr(p, &m, path_str(p), "FieldValueDuplicate",
		    "duplicate key \"%s\"", f->key);
		json_decref(v);
	} else {
		json_object_setn_new(f->node, f->key, f->key_len, v);
	}
	free(f->key);
	f->key = NULL;
}

static void
anchor_add(struct parser *p, const char *name, json_t *v, size_t nodes)
{
	if (p->nanchors == p->anchors_cap) {
		p->anchors_cap = p->anchors_cap ? p->anchors_cap * 2 : 8;
		p->anchors = xrealloc(p->anchors, p->anchors_cap * sizeof *p->anchors);
	}
	struct anchor *a = &p->anchors[p->nanchors++];
	a->name = xstrdup(name);
	a->value = json_incref(v);
	a->nodes = nodes;
}

static void
anchors_clear(struct parser *p)
{
	for (size_t i = 0; i < p->nanchors; i++) {
		free(p->anchors[i].name);
		json_decref(p->anchors[i].value);
	}
	p->nanchors = 0;
	p->alias_nodes = 0;
}

static void
on_alias(struct parser *p, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const yaml_mark_t *m = &ev->start_mark;
	struct anchor *a = NULL;
	for (size_t i = p->nanchors; i > 0 && !a; i--)
		if (!strcmp(p->anchors[i - 1].name, name))
			a = &p->anchors[i - 1];
	node_begin(p, m);
	if (!a) {
		perr(p, m, path_str(p), "FieldValueInvalid", "unknown anchor \"%s\"", name);
		node_attach(p, json_null());
		return;
	}
	p->alias_nodes += a->nodes;
	p->nodes += a->nodes;
	if (p->alias_nodes > PARSE_MAX_ALIAS_NODES) {
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "aliases expand to more than %d nodes", PARSE_MAX_ALIAS_NODES);
		p->fatal = true;
		return;
	}
	node_attach(p, json_deep_copy(a->value));
}

static void
on_scalar(struct parser *p, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	const yaml_mark_t *m = &ev->start_mark;
	p->nodes++;
	if (expecting_key(p)) {
		if (memchr(s, '\0', n)) {
			perr(p, m, path_str(p), "FieldValueInvalid",
			    "mapping keys must not contain NUL");
			set_key(p, m, "", 0, true);
		} else if (plain && !tag && str_in(s, null_words)) {
			perr(p, m, path_str(p), "FieldValueInvalid",
			    "mapping keys must be strings, not null");
			set_key(p, m, "", 0, true);
		} else {
			set_key(p, m, s, n, plain && !tag && !strcmp(s, "<<"));
		}
		json_t *k = ev->data.scalar.anchor ? json_stringn(s, n) : NULL;
		if (k)
			anchor_add(p, (const char *)ev->data.scalar.anchor, k, 1);
		json_decref(k);
		return;
	}
	node_begin(p, m);
	json_t *v;
	if (tag)
		v = resolve_tagged(p, m, tag, s, n);
	else if (plain)
		v = resolve_plain(p, m, s, n);
	else
		v = scalar_string(p, m, s, n);
	if (ev->data.scalar.anchor)
		anchor_add(p, (const char *)ev->data.scalar.anchor, v, 1);
	node_attach(p, v);
}

static void
on_collection_start(struct parser *p, const yaml_event_t *ev, bool mapping)
{
	const yaml_mark_t *m = &ev->start_mark;
	const char *tag = (const char *)(mapping ? ev->data.mapping_start.tag :
	    ev->data.sequence_start.tag);
	const char *anchor = (const char *)(mapping ? ev->data.mapping_start.anchor :
	    ev->data.sequence_start.anchor);
	p->nodes++;
	if (p->depth == PARSE_MAX_DEPTH) {
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "nesting is deeper than %d levels", PARSE_MAX_DEPTH);
		p->fatal = true;
		return;
	}
	bool key_pos = expecting_key(p);
	if (!key_pos)
		node_begin(p, m);
	if (tag && strcmp(tag, "!") &&
	    strcmp(tag, mapping ? TAG_PREFIX "map" : TAG_PREFIX "seq"))
		perr(p, m, path_str(p), "FieldValueInvalid",
		    "unsupported YAML tag \"%s\" on a %s", tag,
		    mapping ? "mapping" : "sequence");
	struct frame *f = &p->stack[p->depth++];
	memset(f, 0, sizeof *f);
	f->node = mapping ? json_object() : json_array();
	f->path_len = p->path.len;
	f->line = (int)m->line + 1;
	f->col = (int)m->column + 1;
	f->anchor = anchor ? xstrdup(anchor) : NULL;
	f->nodes_at_start = p->nodes;
}

static void
apply_merges(struct frame *f)
{
	size_t i;
	json_t *src;
	json_array_foreach(f->merges, i, src) {
		const char *k;
		size_t kn;
		json_t *v;
		void *tmp;
		json_object_keylen_foreach_safe(src, tmp, k, kn, v)
			if (!json_object_getn(f->node, k, kn))
				json_object_setn(f->node, k, kn, v);
	}
}

static void
frame_free(struct frame *f)
{
	free(f->key);
	free(f->anchor);
	json_decref(f->merges);
	json_decref(f->node);
}

static void
on_collection_end(struct parser *p)
{
	struct frame *f = top(p);
	if (f->merges)
		apply_merges(f);
	json_t *v = json_incref(f->node);
	if (f->anchor)
		anchor_add(p, f->anchor, v, p->nodes - f->nodes_at_start + 1);
	frame_free(f);
	p->depth--;
	path_truncate(&p->path, f->path_len);
	node_attach(p, v);
}

/* ---- documents ------------------------------------------------------- */

static void
docs_push(struct parser *p, json_t *obj, json_t *pos, int line)
{
	struct obj_docs *d = p->out;
	if (d->n == p->out_cap) {
		p->out_cap = p->out_cap ? p->out_cap * 2 : 4;
		d->v = xrealloc(d->v, p->out_cap * sizeof *d->v);
	}
	d->v[d->n].obj = obj;
	d->v[d->n].pos = pos;
	d->v[d->n].line = line;
	d->n++;
}

static bool
is_list(const json_t *obj)
{
	return !strcmp(obj_kind(obj), "List") && json_is_array(json_object_get(obj, "items"));
}

/* Splits pos of a List into one pos per item: "items[3].spec" -> item 3's
 * "spec". One pass over pos. */
static json_t *
list_split_pos(const json_t *pos, size_t nitems)
{
	json_t *out = json_array();
	for (size_t i = 0; i < nitems; i++)
		json_array_append_new(out, json_object());
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)pos, k, v) {
		if (!str_has_prefix(k, "items["))
			continue;
		char *end;
		unsigned long i = strtoul(k + 6, &end, 10);
		if (*end != ']' || i >= nitems)
			continue;
		const char *rest = end + 1;
		if (*rest == '.')
			rest++;
		json_object_set(json_array_get(out, i), rest, v);
	}
	return out;
}

/* item_pos: positions per item (stolen), or NULL to split them from pos. */
static void
expand_list(struct parser *p, json_t *obj, json_t *pos, json_t *item_pos)
{
	json_t *items = json_object_get(obj, "items");
	size_t n = json_array_size(items);
	json_t *ipos_all = item_pos ? item_pos : list_split_pos(pos, n);
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(items, i);
		json_t *ipos = json_array_get(ipos_all, i);
		ipos = ipos ? json_incref(ipos) : json_object();
		int line, col;
		obj_pos_lookup(ipos, "", &line, &col);
		if (!json_is_object(it)) {
			yaml_mark_t m = { 0, (size_t)(line ? line - 1 : 0), (size_t)(col ? col - 1 : 0) };
			char *f = schema_path_index("items", i);
			perr(p, &m, f, "FieldValueTypeInvalid",
			    "list items must be mappings (objects)");
			free(f);
			json_decref(ipos);
			continue;
		}
		docs_push(p, json_incref(it), ipos, line);
	}
	json_decref(ipos_all);
	json_decref(obj);
	json_decref(pos);
}

/* A whole document (obj, pos and item_pos stolen) is done. */
static void
doc_finish(struct parser *p, json_t *obj, json_t *pos, json_t *item_pos, int line, int col)
{
	bool expand = is_list(obj) && !p->positions_only;
	if (item_pos && !expand) {
		pos_merge_items(pos, item_pos);
		json_decref(item_pos);
		item_pos = NULL;
	}
	if (!obj || json_is_null(obj)) {
		json_decref(obj);
		json_decref(pos);
		return;
	}
	if (!json_is_object(obj)) {
		yaml_mark_t m = { 0, (size_t)line - 1, (size_t)col - 1 };
		perr(p, &m, "", "FieldValueTypeInvalid", "document must be a mapping (an object)");
		json_decref(obj);
		json_decref(pos);
		return;
	}
	if (expand)
		expand_list(p, obj, pos, item_pos);
	else
		docs_push(p, obj, pos, line);
}

static void
doc_reset(struct parser *p)
{
	while (p->depth)
		frame_free(&p->stack[--p->depth]);
	json_decref(p->root);
	json_decref(p->pos);
	json_decref(p->item_pos);
	p->item_pos = NULL;
	p->root = NULL;
	p->pos = json_object();
	p->nodes = 0;
	path_truncate(&p->path, 0);
	anchors_clear(p);
}

static void
on_document_end(struct parser *p)
{
	json_t *root = p->root, *pos = p->pos, *item_pos = p->item_pos;
	p->root = p->pos = p->item_pos = NULL;
	doc_finish(p, root, pos, item_pos, p->root_line, p->root_col);
	doc_reset(p);
}

static void
on_event(struct parser *p, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		doc_reset(p);
		break;
	case YAML_DOCUMENT_END_EVENT:
		on_document_end(p);
		break;
	case YAML_ALIAS_EVENT:
		on_alias(p, ev);
		break;
	case YAML_SCALAR_EVENT:
		on_scalar(p, ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
		on_collection_start(p, ev, false);
		break;
	case YAML_MAPPING_START_EVENT:
		on_collection_start(p, ev, true);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		on_collection_end(p);
		break;
	default:
		break;
	}
}

static void
parse_yaml(struct parser *p, const char *text, size_t len)
{
	yaml_parser_initialize(&p->yp);
	yaml_parser_set_input_string(&p->yp, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&p->yp, YAML_UTF8_ENCODING);
	p->pos = json_object();
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p->yp, &ev)) {
			perr_fatal_syntax(p);
			break;
		}
		bool end = ev.type == YAML_STREAM_END_EVENT;
		on_event(p, &ev);
		yaml_event_delete(&ev);
		if (end || p->fatal)
			break;
	}
	doc_reset(p);
	json_decref(p->pos);
	p->pos = NULL;
	free(p->anchors);
	p->anchors = NULL;
	p->anchors_cap = 0;
	buf_free(&p->path);
	pos_ints_free(p);
	yaml_parser_delete(&p->yp);
}

/* ---- JSON fallback --------------------------------------------------- */

static bool
looks_like_json(const char *text, size_t len)
{
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", text[i]) && text[i])
		i++;
	return i < len && (text[i] == '{' || text[i] == '[');
}

/* libyaml refuses some valid JSON (surrogate-pair escapes, keys longer than
 * 1024 bytes). Values then come from jansson; positions from libyaml on a
 * copy whose surrogate escapes are replaced by same-length ones. */
static json_t *
json_fallback_pos(const char *text, size_t len)
{
	char *copy = xstrndup(text, len);
	for (size_t i = 0; i + 5 < len; i++) {
		if (copy[i] == '\\' && (copy[i + 1] == 'u') &&
		    (copy[i + 2] == 'd' || copy[i + 2] == 'D') &&
		    strchr("89abcdefABCDEF", copy[i + 3]) && copy[i + 3])
			memcpy(copy + i + 2, "0041", 4);
		else if (copy[i] == '\\')
			i++;
	}
	struct obj_docs docs = { NULL, 0 };
	struct errlist errs = { NULL, 0, 0 };
	struct parser p;
	memset(&p, 0, sizeof p);
	p.errs = &errs;
	p.out = &docs;
	p.positions_only = true;
	parse_yaml(&p, copy, len);
	json_t *pos = NULL;
	if (!p.syntax_error && docs.n == 1)
		pos = json_incref(docs.v[0].pos);
	obj_docs_free(&docs);
	errlist_free(&errs);
	free(copy);
	if (!pos) {
		pos = json_object();
		json_object_set_new(pos, "", pos_pair(1, 1));
	}
	return pos;
}

/* Returns 0, -EINVAL (a JSON document with errors, in p->errs) or
 * -ENOENT when jansson cannot read it either. */
static int
parse_json(struct parser *p, const char *text, size_t len)
{
	json_error_t je;
	json_t *obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!obj)
		return -ENOENT;
	json_t *pos = json_fallback_pos(text, len);
	int line, col;
	obj_pos_lookup(pos, "", &line, &col);
	doc_finish(p, obj, pos, NULL, line, col);
	return p->doc_failed ? -EINVAL : 0;
}

/* ---- entry points ---------------------------------------------------- */

void
obj_docs_free(struct obj_docs *docs)
{
	for (size_t i = 0; i < docs->n; i++) {
		json_decref(docs->v[i].obj);
		json_decref(docs->v[i].pos);
	}
	free(docs->v);
	docs->v = NULL;
	docs->n = 0;
}

static int
parse_docs(const char *text, size_t len, bool yaml11, struct obj_docs *out,
    struct errlist *errs)
{
	struct errlist yerrs = { NULL, 0, 0 };
	struct parser p;
	memset(&p, 0, sizeof p);
	p.yaml11_bools = yaml11;
	p.errs = &yerrs;
	p.out = out;
	out->v = NULL;
	out->n = 0;
	parse_yaml(&p, text, len);
	bool failed = p.fatal || p.doc_failed || yerrs.n > 0;
	if (failed && p.syntax_error && looks_like_json(text, len)) {
		obj_docs_free(out);
		memset(&p, 0, sizeof p);
		p.errs = errs;
		p.out = out;
		int rc = parse_json(&p, text, len);
		if (rc < 0)
			obj_docs_free(out);
		if (rc != -ENOENT) {
			errlist_free(&yerrs);
			return rc;
		}
	}
	for (size_t i = 0; i < yerrs.n; i++) {
		struct field_err *fe = &yerrs.v[i];
		errlist_add_at(errs, fe->line, fe->col, fe->field, fe->reason, "%s", fe->message);
	}
	errlist_free(&yerrs);
	if (failed) {
		obj_docs_free(out);
		return -EINVAL;
	}
	return 0;
}

int
obj_parse(const char *text, size_t len, struct obj_docs *out, struct errlist *errs)
{
	return parse_docs(text, len, false, out, errs);
}

int
obj_parse_yaml11(const char *text, size_t len, struct obj_docs *out, struct errlist *errs)
{
	return parse_docs(text, len, true, out, errs);
}
