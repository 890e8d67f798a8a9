/* obj_selector.c — label selectors (the string form of ?labelSelector= and
 * LabelSelector objects) and field selectors (?fieldSelector=), with the
 * syntax and semantics of Kubernetes' labels and fields packages. The API
 * server filters lists and watches with them; controllers use label
 * selectors to find the pods a workload owns. */
#include "obj.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label key and value syntax --------------------------------------- */

#define LABEL_NAME_MAX	63
#define DNS_SUBDOMAIN_MAX	253

static const char msg_name[] =
    "must be 63 characters or less, consist of alphanumeric characters, "
    "'-', '_' or '.', and start and end with an alphanumeric character";
static const char msg_prefix[] =
    "prefix before '/' must be a lowercase DNS-1123 subdomain of at most "
    "253 characters";

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 characters. */
static bool
label_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > LABEL_NAME_MAX || !isalnum((unsigned char)s[0]) ||
	    !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

static bool
dns_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Lowercase DNS-1123 subdomain: dot-separated labels of [a-z0-9-] that
 * start and end with [a-z0-9]. */
static bool
dns_subdomain_ok(const char *s, size_t n)
{
	if (n == 0 || n > DNS_SUBDOMAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
		if (s[i] == '.' ? edge : !(dns_char(s[i]) || (!edge && s[i] == '-')))
			return false;
	}
	return true;
}

/* NULL when s is a valid label key, else why not. */
static const char *
key_problem(const char *s)
{
	const char *slash = strchr(s, '/');
	if (slash == NULL)
		return label_name_ok(s, strlen(s)) ? NULL : msg_name;
	if (!dns_subdomain_ok(s, (size_t)(slash - s)))
		return msg_prefix;
	if (strchr(slash + 1, '/') != NULL ||
	    !label_name_ok(slash + 1, strlen(slash + 1)))
		return msg_name;
	return NULL;
}

static const char *
value_problem(const char *s)
{
	return (*s == '\0' || label_name_ok(s, strlen(s))) ? NULL : msg_name;
}

/* ---- selectors --------------------------------------------------------- */

enum req_op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS, OP_GT, OP_LT };

struct requirement {
	char *key;
	enum req_op op;
	char **vals;	/* a set: no duplicates */
	size_t nvals;
};

struct selector {
	bool nothing;
	struct requirement *reqs;
	size_t n;
};

static struct selector *
selector_new(void)
{
	return xcalloc(1, sizeof(struct selector));
}

struct selector *
selector_nothing(void)
{
	struct selector *sel = selector_new();
	sel->nothing = true;
	return sel;
}

bool
selector_is_nothing(const struct selector *sel)
{
	return sel->nothing;
}

bool
selector_empty(const struct selector *sel)
{
	return !sel->nothing && sel->n == 0;
}

void
selector_free(struct selector *sel)
{
	if (sel == NULL)
		return;
	for (size_t i = 0; i < sel->n; i++) {
		struct requirement *r = &sel->reqs[i];
		for (size_t j = 0; j < r->nvals; j++)
			free(r->vals[j]);
		free(r->vals);
		free(r->key);
	}
	free(sel->reqs);
	free(sel);
}

static struct requirement *
req_add(struct selector *sel, const char *key, size_t keylen, enum req_op op)
{
	struct requirement *r;

	sel->reqs = xrealloc(sel->reqs, (sel->n + 1) * sizeof(*sel->reqs));
	r = &sel->reqs[sel->n++];
	r->key = xstrndup(key, keylen);
	r->op = op;
	r->vals = NULL;
	r->nvals = 0;
	return r;
}

static void
req_add_value(struct requirement *r, const char *v, size_t n)
{
	for (size_t i = 0; i < r->nvals; i++)
		if (strlen(r->vals[i]) == n && memcmp(r->vals[i], v, n) == 0)
			return;
	r->vals = xrealloc(r->vals, (r->nvals + 1) * sizeof(*r->vals));
	r->vals[r->nvals++] = xstrndup(v, n);
}

static bool
req_has_value(const struct requirement *r, const char *v)
{
	for (size_t i = 0; i < r->nvals; i++)
		if (strcmp(r->vals[i], v) == 0)
			return true;
	return false;
}

static bool
parse_int64(const char *s, long long *out)
{
	char *end;

	if (*s == '\0' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && *end == '\0';
}

static bool
req_matches(const struct requirement *r, const json_t *labels)
{
	const char *v = json_string_value(json_object_get(labels, r->key));
	long long have, want;

	switch (r->op) {
	case OP_EQ:
	case OP_IN:
		return v != NULL && req_has_value(r, v);
	case OP_NE:
	case OP_NOTIN:
		return v == NULL || !req_has_value(r, v);
	case OP_EXISTS:
		return v != NULL;
	case OP_NOTEXISTS:
		return v == NULL;
	case OP_GT:
	case OP_LT:
		if (v == NULL || !parse_int64(v, &have) || !parse_int64(r->vals[0], &want))
			return false;
		return r->op == OP_GT ? have > want : have < want;
	}
	return false;
}

bool
selector_matches(const struct selector *sel, const json_t *labels)
{
	if (sel->nothing)
		return false;
	if (!json_is_object(labels))
		labels = NULL;
	for (size_t i = 0; i < sel->n; i++)
		if (!req_matches(&sel->reqs[i], labels))
			return false;
	return true;
}

/* ---- the string syntax ------------------------------------------------- */

enum tok {
	T_END, T_IDENT, T_COMMA, T_EQ, T_DEQ, T_NEQ, T_NOT, T_LPAREN, T_RPAREN,
	T_IN, T_NOTIN, T_GT, T_LT
};

/* Operators and punctuation, longest first so "==" wins over "=". */
static const struct {
	const char *text;
	enum tok tok;
} symbols[] = {
	{ "==", T_DEQ }, { "!=", T_NEQ }, { "=", T_EQ }, { "!", T_NOT },
	{ "(", T_LPAREN }, { ")", T_RPAREN }, { ",", T_COMMA },
	{ ">", T_GT }, { "<", T_LT },
};

struct token {
	enum tok tok;
	const char *text;
	size_t len;
	size_t col;	/* 1-based */
};

struct lexer {
	const char *src;
	struct token *v;
	size_t n, at;
};

static bool
special_char(char c)
{
	return strchr("=!(),<>", c) != NULL;
}

static void
lex_push(struct lexer *lx, enum tok tok, const char *p, size_t len)
{
	lx->v = xrealloc(lx->v, (lx->n + 1) * sizeof(*lx->v));
	lx->v[lx->n++] = (struct token){ tok, p, len, (size_t)(p - lx->src) + 1 };
}

/* Splits the whole string into tokens; the list always ends with T_END. */
static void
lex_all(struct lexer *lx, const char *s)
{
	const char *p = s;

	lx->src = s;
	for (;;) {
		size_t i, n = 0;

		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		for (i = 0; i < ARRAY_SIZE(symbols); i++) {
			n = strlen(symbols[i].text);
			if (strncmp(p, symbols[i].text, n) == 0)
				break;
		}
		if (i < ARRAY_SIZE(symbols)) {
			lex_push(lx, symbols[i].tok, p, n);
			p += n;
			continue;
		}
		while (p[n] && !isspace((unsigned char)p[n]) && !special_char(p[n]))
			n++;
		lex_push(lx, n == 2 && !strncmp(p, "in", 2) ? T_IN :
		    n == 5 && !strncmp(p, "notin", 5) ? T_NOTIN : T_IDENT, p, n);
		p += n;
	}
	lex_push(lx, T_END, p, 0);
}

static const struct token *
lex_peek(const struct lexer *lx)
{
	return &lx->v[lx->at];
}

static const struct token *
lex_next(struct lexer *lx)
{
	const struct token *t = &lx->v[lx->at];
	if (t->tok != T_END)
		lx->at++;
	return t;
}

/* Values may be spelled like the keywords: "env in (in, notin)". */
static bool
tok_is_word(const struct token *t)
{
	return t->tok == T_IDENT || t->tok == T_IN || t->tok == T_NOTIN;
}

static char *
syntax_err(const struct token *t, const char *expected)
{
	if (t->tok == T_END)
		return xasprintf("unable to parse requirement: found end of string "
		    "at column %zu, expected: %s", t->col, expected);
	return xasprintf("unable to parse requirement: found '%.*s' at column %zu, "
	    "expected: %s", (int)t->len, t->text, t->col, expected);
}

static char *
check_key_tok(const struct token *t)
{
	char *key = xstrndup(t->text, t->len);
	const char *why = key_problem(key);
	char *err = why ? xasprintf("invalid label key \"%s\" at column %zu: %s",
	    key, t->col, why) : NULL;
	free(key);
	return err;
}

static char *
check_values(const struct requirement *r)
{
	long long n;

	for (size_t i = 0; i < r->nvals; i++) {
		const char *why = value_problem(r->vals[i]);
		if (why)
			return xasprintf("invalid label value \"%s\" for key \"%s\": %s",
			    r->vals[i], r->key, why);
		if ((r->op == OP_GT || r->op == OP_LT) && !parse_int64(r->vals[i], &n))
			return xasprintf("for '>' and '<' operators the value must be "
			    "an integer, got \"%s\" for key \"%s\"", r->vals[i], r->key);
	}
	return NULL;
}

/* "(a, b, )": values separated by commas, each possibly empty. */
static char *
parse_value_list(struct lexer *lx, struct requirement *r)
{
	const struct token *t = lex_next(lx);

	if (t->tok != T_LPAREN)
		return syntax_err(t, "'('");
	for (;;) {
		bool word = tok_is_word(lex_peek(lx));
		t = word ? lex_next(lx) : NULL;
		req_add_value(r, t ? t->text : "", t ? t->len : 0);
		t = lex_next(lx);
		if (t->tok == T_RPAREN)
			return NULL;
		if (t->tok != T_COMMA)
			return syntax_err(t, word ? "',' or ')'" : "identifier, ',' or ')'");
	}
}

static char *
parse_single_value(struct lexer *lx, struct requirement *r)
{
	const struct token *t = lex_peek(lx);

	if (tok_is_word(t)) {
		req_add_value(r, t->text, t->len);
		lex_next(lx);
	} else if (t->tok == T_END || t->tok == T_COMMA) {
		req_add_value(r, "", 0);	/* "a=" selects a="" */
	} else {
		return syntax_err(t, "identifier");
	}
	return NULL;
}

static char *
parse_requirement(struct lexer *lx, struct selector *sel)
{
	static const struct {
		enum tok tok;
		enum req_op op;
	} ops[] = {
		{ T_EQ, OP_EQ }, { T_DEQ, OP_EQ }, { T_NEQ, OP_NE }, { T_IN, OP_IN },
		{ T_NOTIN, OP_NOTIN }, { T_GT, OP_GT }, { T_LT, OP_LT },
	};
	const struct token *t = lex_next(lx), *key;
	struct requirement *r;
	char *err;
	size_t i;

	if (t->tok == T_NOT) {
		key = lex_next(lx);
		if (key->tok != T_IDENT)
			return syntax_err(key, "identifier");
		if ((err = check_key_tok(key)) != NULL)
			return err;
		req_add(sel, key->text, key->len, OP_NOTEXISTS);
		return NULL;
	}
	if (t->tok != T_IDENT)
		return syntax_err(t, "!, identifier");
	if ((err = check_key_tok(t)) != NULL)
		return err;
	key = t;
	t = lex_peek(lx);
	if (t->tok == T_END || t->tok == T_COMMA) {
		req_add(sel, key->text, key->len, OP_EXISTS);
		return NULL;
	}
	for (i = 0; i < ARRAY_SIZE(ops) && ops[i].tok != t->tok; i++)
		;
	if (i == ARRAY_SIZE(ops))
		return syntax_err(t, "=, ==, !=, in, notin, >, <, ',' or end of string");
	lex_next(lx);
	r = req_add(sel, key->text, key->len, ops[i].op);
	err = (r->op == OP_IN || r->op == OP_NOTIN) ? parse_value_list(lx, r) :
	    parse_single_value(lx, r);
	return err ? err : check_values(r);
}

int
selector_parse(const char *s, struct selector **out, char **err)
{
	struct lexer lx = { 0 };
	struct selector *sel = selector_new();
	const struct token *t;
	char *msg = NULL;

	lex_all(&lx, s ? s : "");
	while (lex_peek(&lx)->tok != T_END) {
		if ((msg = parse_requirement(&lx, sel)) != NULL)
			goto fail;
		t = lex_next(&lx);
		if (t->tok == T_END)
			break;
		if (t->tok != T_COMMA) {
			msg = syntax_err(t, "',' or end of string");
			goto fail;
		}
		t = lex_peek(&lx);
		if (t->tok != T_IDENT && t->tok != T_NOT) {
			msg = syntax_err(t, "identifier after ','");
			goto fail;
		}
	}
	free(lx.v);
	*out = sel;
	return 0;
fail:
	free(lx.v);
	selector_free(sel);
	*out = NULL;
	if (err)
		*err = msg;
	else
		free(msg);
	return -EINVAL;
}

/* ---- LabelSelector objects -------------------------------------------- */

static const struct {
	const char *name;
	enum req_op op;
	bool needs_values;
} json_ops[] = {
	{ "In", OP_IN, true },
	{ "NotIn", OP_NOTIN, true },
	{ "Exists", OP_EXISTS, false },
	{ "DoesNotExist", OP_NOTEXISTS, false },
};

static char *
add_match_labels(struct selector *sel, const json_t *ml)
{
	const char *key, *why;
	json_t *v;

	if (ml == NULL || json_is_null(ml))
		return NULL;
	if (!json_is_object(ml))
		return xstrdup("matchLabels: must be an object");
	json_object_foreach((json_t *)ml, key, v) {
		if (!json_is_string(v))
			return xasprintf("matchLabels[%s]: must be a string", key);
		if ((why = key_problem(key)) != NULL)
			return xasprintf("matchLabels: invalid label key \"%s\": %s", key, why);
		if ((why = value_problem(json_string_value(v))) != NULL)
			return xasprintf("matchLabels[%s]: invalid value \"%s\": %s", key,
			    json_string_value(v), why);
		req_add_value(req_add(sel, key, strlen(key), OP_EQ),
		    json_string_value(v), json_string_length(v));
	}
	return NULL;
}

static char *
add_expression(struct selector *sel, const json_t *e, size_t idx)
{
	const char *key = json_string_value(json_object_get(e, "key"));
	const char *op = json_string_value(json_object_get(e, "operator"));
	const json_t *vals = json_object_get(e, "values"), *v;
	struct requirement *r;
	const char *why;
	size_t i, j;

	if (!json_is_object(e))
		return xasprintf("matchExpressions[%zu]: must be an object", idx);
	if (key == NULL)
		return xasprintf("matchExpressions[%zu].key: required", idx);
	if ((why = key_problem(key)) != NULL)
		return xasprintf("matchExpressions[%zu].key: invalid value \"%s\": %s",
		    idx, key, why);
	for (i = 0; op && i < ARRAY_SIZE(json_ops) && strcmp(op, json_ops[i].name); i++)
		;
	if (op == NULL || i == ARRAY_SIZE(json_ops))
		return xasprintf("matchExpressions[%zu].operator: unsupported value "
		    "\"%s\": supported values: \"In\", \"NotIn\", \"Exists\", "
		    "\"DoesNotExist\"", idx, op ? op : "");
	if (vals != NULL && !json_is_null(vals) && !json_is_array(vals))
		return xasprintf("matchExpressions[%zu].values: must be a list", idx);
	if (json_ops[i].needs_values != (json_array_size(vals) > 0))
		return xasprintf(json_ops[i].needs_values ?
		    "matchExpressions[%zu].values: must be specified when `operator` "
		    "is 'In' or 'NotIn'" :
		    "matchExpressions[%zu].values: may not be specified when "
		    "`operator` is 'Exists' or 'DoesNotExist'", idx);
	r = req_add(sel, key, strlen(key), json_ops[i].op);
	json_array_foreach(vals, j, v) {
		if (!json_is_string(v))
			return xasprintf("matchExpressions[%zu].values[%zu]: must be a "
			    "string", idx, j);
		if ((why = value_problem(json_string_value(v))) != NULL)
			return xasprintf("matchExpressions[%zu].values[%zu]: invalid "
			    "value \"%s\": %s", idx, j, json_string_value(v), why);
		req_add_value(r, json_string_value(v), json_string_length(v));
	}
	return NULL;
}

int
selector_from_json(const json_t *ls, struct selector **out, char **err)
{
	const json_t *me, *e;
	struct selector *sel;
	char *msg = NULL;
	size_t i;

	*out = NULL;
	if (ls == NULL || json_is_null(ls)) {
		*out = selector_nothing();
		return 0;
	}
	sel = selector_new();
	if (!json_is_object(ls)) {
		msg = xstrdup("label selector must be an object");
		goto fail;
	}
	if ((msg = add_match_labels(sel, json_object_get(ls, "matchLabels"))) != NULL)
		goto fail;
	me = json_object_get(ls, "matchExpressions");
	if (me != NULL && !json_is_null(me) && !json_is_array(me)) {
		msg = xstrdup("matchExpressions: must be a list");
		goto fail;
	}
	json_array_foreach(me, i, e)
		if ((msg = add_expression(sel, e, i)) != NULL)
			goto fail;
	*out = sel;
	return 0;
fail:
	selector_free(sel);
	if (err)
		*err = msg;
	else
		free(msg);
	return -EINVAL;
}

/* ---- canonical string form --------------------------------------------- */

static int
cmp_req(const void *a, const void *b)
{
	const struct requirement *x = *(const struct requirement *const *)a;
	const struct requirement *y = *(const struct requirement *const *)b;
	int c = strcmp(x->key, y->key);
	/* Equal keys keep their parse order (qsort is not stable). */
	return c ? c : (x < y ? -1 : x > y);
}

static void
req_format(const struct requirement *r, struct buf *b)
{
	static const char *const opstr[] = {
		[OP_EQ] = "=", [OP_NE] = "!=", [OP_IN] = " in ", [OP_NOTIN] = " notin ",
		[OP_EXISTS] = "", [OP_NOTEXISTS] = "", [OP_GT] = ">", [OP_LT] = "<",
	};
	char **vals = xmalloc((r->nvals + 1) * sizeof(*vals));

	for (size_t i = 0; i < r->nvals; i++)
		vals[i] = r->vals[i];
	qsort(vals, r->nvals, sizeof(*vals), str_pcmp);
	buf_printf(b, "%s%s%s", r->op == OP_NOTEXISTS ? "!" : "", r->key, opstr[r->op]);
	if (r->op == OP_IN || r->op == OP_NOTIN)
		buf_putc(b, '(');
	for (size_t i = 0; i < r->nvals; i++)
		buf_printf(b, "%s%s", i ? "," : "", vals[i]);
	if (r->op == OP_IN || r->op == OP_NOTIN)
		buf_putc(b, ')');
	free(vals);
}

char *
selector_format(const struct selector *sel)
{
	const struct requirement **v = xmalloc((sel->n + 1) * sizeof(*v));
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < sel->n; i++)
		v[i] = &sel->reqs[i];
	qsort(v, sel->n, sizeof(*v), cmp_req);
	for (size_t i = 0; i < sel->n; i++) {
		if (i)
			buf_putc(&b, ',');
		req_format(v[i], &b);
	}
	free(v);
	return buf_steal(&b);
}

static bool
prom_label_ok(const char *k)
{
	if (!(*k == '_' || (*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z')))
		return false;
	return strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
	    strlen(k);
}

char *
selector_promql(const struct selector *sel)
{
	static const char *const op[] = { [OP_EQ] = "=", [OP_NE] = "!=", [OP_IN] = "=~",
		[OP_NOTIN] = "!~", [OP_EXISTS] = "!=", [OP_NOTEXISTS] = "=" };
	struct buf b = BUF_INIT;

	buf_putc(&b, '{');
	for (size_t i = 0; i < sel->n; i++) {
		const struct requirement *r = &sel->reqs[i];
		if (r->op == OP_GT || r->op == OP_LT || !prom_label_ok(r->key)) {
			buf_free(&b);
			return NULL;
		}
		buf_printf(&b, "%s%s%s\"", i ? "," : "", r->key, op[r->op]);
		for (size_t k = 0; k < r->nvals; k++) {
			if (k)
				buf_putc(&b, '|');
			/* label values are [A-Za-z0-9._-]: only '.' means more in a regex */
			for (const char *c = r->vals[k]; *c; c++)
				buf_printf(&b, "%s%c", *c == '.' && r->op >= OP_IN ? "\\\\" : "", *c);
		}
		buf_putc(&b, '"');
	}
	buf_putc(&b, '}');
	return buf_steal(&b);
}

/* ---- field selectors --------------------------------------------------- */

/* The field labels V6 serves, where each lives in the object, and which
 * kinds serve it (NULL: every kind). */
static const struct field_label {
	const char *label;
	const char *path;
	const char *kinds;
} field_labels[] = {
	{ "metadata.name", "metadata.name", NULL },
	{ "metadata.namespace", "metadata.namespace", NULL },
	{ "status.phase", "status.phase", "Pod,Namespace" },
	{ "spec.nodeName", "spec.nodeName", "Pod" },
	{ "spec.restartPolicy", "spec.restartPolicy", "Pod" },
	{ "spec.schedulerName", "spec.schedulerName", "Pod" },
	{ "spec.serviceAccountName", "spec.serviceAccountName", "Pod" },
	{ "status.podIP", "status.podIP", "Pod" },
	{ "type", "type", "Secret,Event" },
	{ "reason", "reason", "Event" },
	{ "involvedObject.kind", "involvedObject.kind", "Event" },
	{ "involvedObject.namespace", "involvedObject.namespace", "Event" },
	{ "involvedObject.name", "involvedObject.name", "Event" },
	{ "involvedObject.uid", "involvedObject.uid", "Event" },
	{ "involvedObject.apiVersion", "involvedObject.apiVersion", "Event" },
	{ "involvedObject.resourceVersion", "involvedObject.resourceVersion", "Event" },
	{ "involvedObject.fieldPath", "involvedObject.fieldPath", "Event" },
	{ "source", "source.component", "Event" },
	{ "reportingComponent", "reportingComponent", "Event" },
};

struct field_req {
	const struct field_label *fl;
	bool negate;
	char *value;
};

struct field_selector {
	struct field_req *v;
	size_t n;
};

void
field_selector_free(struct field_selector *sel)
{
	if (sel == NULL)
		return;
	for (size_t i = 0; i < sel->n; i++)
		free(sel->v[i].value);
	free(sel->v);
	free(sel);
}

static const struct field_label *
field_label_find(const char *s, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(field_labels); i++)
		if (strlen(field_labels[i].label) == n &&
		    memcmp(field_labels[i].label, s, n) == 0)
			return &field_labels[i];
	return NULL;
}

/* Undoes the escaping of fields.EscapeValue: "\\", "\," and "\=". An
 * unescaped ',' cannot occur (terms are split on it); an unescaped '='
 * is an error. */
static char *
unescape_value(const char *s, size_t n, char **value)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, "");
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=') {
			buf_free(&b);
			return xasprintf("invalid field selector value \"%.*s\": "
			    "unescaped '='", (int)n, s);
		}
		if (s[i] == '\\') {
			if (i + 1 == n || !strchr("\\,=", s[i + 1])) {
				buf_free(&b);
				return xasprintf("invalid field selector value \"%.*s\": "
				    "invalid escape sequence", (int)n, s);
			}
			i++;
		}
		buf_putc(&b, s[i]);
	}
	*value = buf_steal(&b);
	return NULL;
}

static void
trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s))
		(*s)++, (*n)--;
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static char *
field_term_parse(struct field_selector *sel, const char *t, size_t n)
{
	static const char *const ops[] = { "!=", "==", "=" };
	const char *lhs = t, *rhs;
	size_t i, k, lhslen, rhslen;
	struct field_req *r;
	char *msg;

	for (i = 0; i < n; i++) {
		for (k = 0; k < ARRAY_SIZE(ops); k++)
			if (n - i >= strlen(ops[k]) && !strncmp(t + i, ops[k], strlen(ops[k])))
				break;
		if (k < ARRAY_SIZE(ops))
			break;
	}
	if (i == n)
		return xasprintf("invalid field selector: '%.*s'; expected "
		    "field=value, field==value or field!=value", (int)n, t);
	lhslen = i;
	rhs = t + i + strlen(ops[k]);
	rhslen = n - i - strlen(ops[k]);
	trim(&lhs, &lhslen);
	trim(&rhs, &rhslen);
	sel->v = xrealloc(sel->v, (sel->n + 1) * sizeof(*sel->v));
	r = &sel->v[sel->n];
	if ((r->fl = field_label_find(lhs, lhslen)) == NULL)
		return xasprintf("field label not supported: %.*s", (int)lhslen, lhs);
	r->negate = k == 0;
	if ((msg = unescape_value(rhs, rhslen, &r->value)) != NULL)
		return msg;
	sel->n++;
	return NULL;
}

int
field_selector_parse(const char *s, struct field_selector **out, char **err)
{
	struct field_selector *sel = xcalloc(1, sizeof(*sel));
	const char *p = s ? s : "", *start = p;
	char *msg = NULL;

	for (;; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p != ',' && *p != '\0')
			continue;
		if (p > start && (msg = field_term_parse(sel, start, (size_t)(p - start))))
			goto fail;
		if (*p == '\0')
			break;
		start = p + 1;
	}
	*out = sel;
	return 0;
fail:
	field_selector_free(sel);
	*out = NULL;
	if (err)
		*err = msg;
	else
		free(msg);
	return -EINVAL;
}

/* The field as the string a selector compares with; "" when absent. */
static char *
field_value(const json_t *obj, const char *path)
{
	const json_t *v = obj_get_path(obj, path);

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	if (json_is_real(v))
		return xasprintf("%.17g", json_real_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "true" : "false");
	return xstrdup("");
}

bool
field_selector_matches(const struct field_selector *sel, const json_t *obj)
{
	for (size_t i = 0; i < sel->n; i++) {
		char *v = field_value(obj, sel->v[i].fl->path);
		bool eq = strcmp(v, sel->v[i].value) == 0;
		free(v);
		if (eq == sel->v[i].negate)
			return false;
	}
	return true;
}

static bool
kind_in_list(const char *kind, const char *list)
{
	size_t n = strlen(kind);
	const char *p = list;

	for (;;) {
		if (strncmp(p, kind, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return true;
		if ((p = strchr(p, ',')) == NULL)
			return false;
		p++;
	}
}

int
field_selector_check_kind(const struct field_selector *sel, const char *kind,
    char **err)
{
	for (size_t i = 0; i < sel->n; i++) {
		const struct field_label *fl = sel->v[i].fl;
		if (fl->kinds != NULL && !kind_in_list(kind, fl->kinds)) {
			if (err)
				*err = xasprintf("field label not supported: %s", fl->label);
			return -EINVAL;
		}
	}
	return 0;
}
