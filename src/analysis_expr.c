/* analysis_expr.c — the expression language of Argo Rollouts'
 * successCondition / failureCondition: a compatible subset of expr-lang,
 * lexed and parsed by recursive descent to an AST, then evaluated over the
 * jansson value bound to `result`. Pure: no I/O, no global state; every
 * allocation lives in a per-call arena. Called by ctrl_analysis.c and the
 * AnalysisTemplate validation (aexpr_check). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "util.h"

/* Limits that keep untrusted conditions cheap: source length, nesting
 * (both syntactic and AST height, so neither the parser nor the evaluator
 * recurses deeper), evaluation steps and bytes made while evaluating. */
#define AEXPR_MAX_LEN   4096
#define AEXPR_MAX_DEPTH 64
#define AEXPR_MAX_STEPS 1000000L
#define AEXPR_MAX_MEM   ((size_t)64 << 20)

/* ---- arena ---------------------------------------------------------- */

union ablk {
	struct {
		union ablk *next;
		size_t used, cap;
	} h;
	max_align_t align;
};

struct arena {
	union ablk *head;
	size_t total;
	size_t limit;	/* 0 = unlimited */
};

/* Returns n bytes aligned for any type, or NULL when the arena's limit
 * would be exceeded. */
static void *
arena_alloc(struct arena *a, size_t n)
{
	const size_t al = _Alignof(max_align_t);
	void *p;

	if (n > AEXPR_MAX_MEM)
		return NULL;
	n = n ? (n + al - 1) & ~(al - 1) : al;
	if (a->head == NULL || a->head->h.cap - a->head->h.used < n) {
		size_t cap = n > 8192 ? n : 8192;
		union ablk *b;
		if (a->limit && a->total + cap > a->limit)
			return NULL;
		b = xmalloc(sizeof(*b) + cap);
		b->h.next = a->head;
		b->h.used = 0;
		b->h.cap = cap;
		a->head = b;
		a->total += cap;
	}
	p = (char *)(a->head + 1) + a->head->h.used;
	a->head->h.used += n;
	return p;
}

static void
arena_free(struct arena *a)
{
	while (a->head) {
		union ablk *next = a->head->h.next;
		free(a->head);
		a->head = next;
	}
	a->total = 0;
}

/* Records the first error only, as "column N: message". */
static int fail_at(char **err, int col, const char *fmt, ...) V6_PRINTF(3, 4);
static int
fail_at(char **err, int col, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (*err != NULL)
		return -EINVAL;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	*err = xasprintf("column %d: %s", col, msg);
	free(msg);
	return -EINVAL;
}

/* ---- values --------------------------------------------------------- */

enum vkind { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_MAP };

struct val {
	enum vkind k;
	union {
		bool b;
		int64_t i;
		double f;
		struct { const char *p; size_t n; } s;
		/* a JSON array from offset off, or n values in the arena */
		struct { const json_t *j; size_t off; const struct val *v; size_t n; } l;
		const json_t *m;
	} u;
};

static const char *const vkind_names[] = {
	[V_NIL] = "nil", [V_BOOL] = "bool", [V_INT] = "number",
	[V_FLOAT] = "number", [V_STR] = "string", [V_LIST] = "array",
	[V_MAP] = "object",
};

static const char *
vname(const struct val *v)
{
	return vkind_names[v->k];
}

static bool
is_num(const struct val *v)
{
	return v->k == V_INT || v->k == V_FLOAT;
}

static double
num_f(const struct val *v)
{
	return v->k == V_INT ? (double)v->u.i : v->u.f;
}

/* JSON cannot carry non-finite reals, so a string spelled as Prometheus
 * spells them ("NaN", "+Inf", "-Inf") is read as that float. */
static void
val_from_json(const json_t *j, struct val *out)
{
	static const struct { const char *s; double f; } specials[] = {
		{ "NaN", NAN }, { "+Inf", INFINITY }, { "-Inf", -INFINITY },
	};

	memset(out, 0, sizeof(*out));
	switch (j ? json_typeof(j) : JSON_NULL) {
	case JSON_OBJECT:
		out->k = V_MAP;
		out->u.m = j;
		break;
	case JSON_ARRAY:
		out->k = V_LIST;
		out->u.l.j = j;
		out->u.l.n = json_array_size(j);
		break;
	case JSON_STRING:
		for (size_t i = 0; i < ARRAY_SIZE(specials); i++) {
			if (strcmp(json_string_value(j), specials[i].s) == 0 &&
			    json_string_length(j) == strlen(specials[i].s)) {
				out->k = V_FLOAT;
				out->u.f = specials[i].f;
				return;
			}
		}
		out->k = V_STR;
		out->u.s.p = json_string_value(j);
		out->u.s.n = json_string_length(j);
		break;
	case JSON_INTEGER:
		out->k = V_INT;
		out->u.i = json_integer_value(j);
		break;
	case JSON_REAL:
		out->k = V_FLOAT;
		out->u.f = json_real_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		out->k = V_BOOL;
		out->u.b = json_is_true(j);
		break;
	case JSON_NULL:
		out->k = V_NIL;
		break;
	}
}

static void
list_get(const struct val *l, size_t i, struct val *out)
{
	if (l->u.l.j)
		val_from_json(json_array_get(l->u.l.j, l->u.l.off + i), out);
	else
		*out = l->u.l.v[i];
}

static bool
val_equal(const struct val *a, const struct val *b)
{
	if (is_num(a) && is_num(b)) {
		if (a->k == V_INT && b->k == V_INT)
			return a->u.i == b->u.i;
		return num_f(a) == num_f(b);
	}
	if (a->k != b->k)
		return false;
	switch (a->k) {
	case V_NIL:
		return true;
	case V_BOOL:
		return a->u.b == b->u.b;
	case V_STR:
		return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
	case V_LIST:
		if (a->u.l.n != b->u.l.n)
			return false;
		for (size_t i = 0; i < a->u.l.n; i++) {
			struct val x, y;
			list_get(a, i, &x);
			list_get(b, i, &y);
			if (!val_equal(&x, &y))
				return false;
		}
		return true;
	case V_MAP:
		return json_equal(a->u.m, b->u.m);
	default:
		return false;
	}
}

/* ---- lexer ---------------------------------------------------------- */

enum tkind { T_EOF, T_INT, T_FLOAT, T_STR, T_IDENT, T_PUNCT };

struct token {
	enum tkind k;
	int col;
	const char *p;	/* source text */
	size_t n;
	int64_t i;
	double f;
	char *s;	/* unescaped string literal */
	size_t slen;
};

/* Longest first, so "**" wins over "*". */
static const char *const puncts[] = {
	"**", "??", "?.", "==", "!=", "<=", ">=", "&&", "||",
	"+", "-", "*", "/", "%", "^", "!", "<", ">", "?", ":", ".", ",",
	"(", ")", "[", "]", "{", "}", "#",
};

struct lexer {
	const char *src;
	size_t len, pos;
	struct arena *ar;
	char **err;
};

static bool
is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t
utf8_put(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

static const struct { char c; char v; } simple_escapes[] = {
	{ 'n', '\n' }, { 't', '\t' }, { 'r', '\r' }, { 'a', '\a' }, { 'b', '\b' },
	{ 'f', '\f' }, { 'v', '\v' }, { '\\', '\\' }, { '\'', '\'' }, { '"', '"' },
	{ '`', '`' },
};

/* One escape after a backslash at *i (pointing past the '\'); appends to
 * o and advances *i. */
static int
lex_escape(struct lexer *lx, size_t *i, char *o, size_t *on, int col)
{
	const char *s = lx->src;
	char c = s[*i];
	int digits = 0, base = 16;
	uint32_t cp = 0;

	for (size_t k = 0; k < ARRAY_SIZE(simple_escapes); k++) {
		if (simple_escapes[k].c == c) {
			o[(*on)++] = simple_escapes[k].v;
			(*i)++;
			return 0;
		}
	}
	if (c == 'x')
		digits = 2;
	else if (c == 'u')
		digits = 4;
	else if (c == 'U')
		digits = 8;
	else if (c >= '0' && c <= '7') {
		digits = 3;
		base = 8;
		(*i)--;	/* the first octal digit is part of the value */
	} else
		return fail_at(lx->err, col, "invalid escape \\%c in string", c ? c : '0');
	(*i)++;
	for (int d = 0; d < digits; d++, (*i)++) {
		int v = hexval(s[*i]);
		if (v < 0 || v >= base)
			return fail_at(lx->err, col, "invalid escape in string");
		cp = cp * (uint32_t)base + (uint32_t)v;
	}
	if (c == 'x' || base == 8) {
		if (cp > 0xFF)
			return fail_at(lx->err, col, "invalid escape in string");
		o[(*on)++] = (char)cp;
		return 0;
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return fail_at(lx->err, col, "invalid unicode escape in string");
	*on += utf8_put(o + *on, cp);
	return 0;
}

static int
lex_string(struct lexer *lx, struct token *t)
{
	const char *s = lx->src;
	char q = s[lx->pos];
	size_t i = lx->pos + 1, on = 0;
	/* an escape never makes the text longer than its source */
	char *o = arena_alloc(lx->ar, lx->len - lx->pos + 1);

	for (;;) {
		if (i >= lx->len)
			return fail_at(lx->err, t->col, "unterminated string");
		if (s[i] == q)
			break;
		if (s[i] == '\\' && q != '`') {
			i++;
			if (lex_escape(lx, &i, o, &on, (int)i) < 0)
				return -EINVAL;
			continue;
		}
		o[on++] = s[i++];
	}
	o[on] = '\0';
	t->k = T_STR;
	t->s = o;
	t->slen = on;
	lx->pos = i + 1;
	return 0;
}

static int
lex_number(struct lexer *lx, struct token *t)
{
	const char *s = lx->src;
	size_t i = lx->pos, on = 0;
	char *o = arena_alloc(lx->ar, lx->len - lx->pos + 1);
	bool isfloat = false;
	char *end;

	for (; i < lx->len && (is_digit(s[i]) || s[i] == '_'); i++)
		if (s[i] != '_')
			o[on++] = s[i];
	if (i + 1 < lx->len && s[i] == '.' && is_digit(s[i + 1])) {
		isfloat = true;
		o[on++] = s[i++];
		for (; i < lx->len && (is_digit(s[i]) || s[i] == '_'); i++)
			if (s[i] != '_')
				o[on++] = s[i];
	}
	if (i < lx->len && (s[i] == 'e' || s[i] == 'E')) {
		isfloat = true;
		o[on++] = s[i++];
		if (i < lx->len && (s[i] == '+' || s[i] == '-'))
			o[on++] = s[i++];
		if (i >= lx->len || !is_digit(s[i]))
			return fail_at(lx->err, t->col, "invalid number");
		for (; i < lx->len && is_digit(s[i]); i++)
			o[on++] = s[i];
	}
	if (i < lx->len && (is_ident_start(s[i]) || is_digit(s[i])))
		return fail_at(lx->err, t->col, "invalid number");
	o[on] = '\0';
	errno = 0;
	if (isfloat) {
		t->k = T_FLOAT;
		t->f = strtod(o, &end);
		if (isinf(t->f))
			return fail_at(lx->err, t->col, "float literal is too large");
	} else {
		long long v = strtoll(o, &end, 10);
		if (errno == ERANGE)
			return fail_at(lx->err, t->col, "integer literal is too large");
		t->k = T_INT;
		t->i = v;
	}
	lx->pos = i;
	return 0;
}

static int
lex_one(struct lexer *lx, struct token *t)
{
	const char *s = lx->src;
	char c;

	while (lx->pos < lx->len && strchr(" \t\r\n", s[lx->pos]) && s[lx->pos])
		lx->pos++;
	memset(t, 0, sizeof(*t));
	t->col = (int)lx->pos + 1;
	t->p = s + lx->pos;
	if (lx->pos >= lx->len) {
		t->k = T_EOF;
		return 0;
	}
	c = s[lx->pos];
	if (c == '"' || c == '\'' || c == '`') {
		if (lex_string(lx, t) < 0)
			return -EINVAL;
	} else if (is_digit(c)) {
		if (lex_number(lx, t) < 0)
			return -EINVAL;
	} else if (is_ident_start(c)) {
		while (lx->pos < lx->len && (is_ident_start(s[lx->pos]) || is_digit(s[lx->pos])))
			lx->pos++;
		t->k = T_IDENT;
	} else {
		size_t k;
		for (k = 0; k < ARRAY_SIZE(puncts); k++) {
			size_t n = strlen(puncts[k]);
			if (lx->len - lx->pos >= n && memcmp(s + lx->pos, puncts[k], n) == 0)
				break;
		}
		if (k == ARRAY_SIZE(puncts))
			return fail_at(lx->err, t->col, "unexpected character '%c'",
			    (c >= 0x20 && c < 0x7f) ? c : '?');
		/* "a ? .5" is not optional chaining */
		if (strcmp(puncts[k], "?.") == 0 && lx->pos + 2 < lx->len &&
		    is_digit(s[lx->pos + 2]))
			while (strcmp(puncts[k], "?") != 0)
				k++;
		lx->pos += strlen(puncts[k]);
		t->k = T_PUNCT;
	}
	t->n = (size_t)(s + lx->pos - t->p);
	return 0;
}

/* ---- AST ------------------------------------------------------------ */

enum ntype {
	N_LIT, N_RESULT, N_ELEM, N_ARRAY, N_UNARY, N_BINARY, N_COND,
	N_MEMBER, N_INDEX, N_SLICE, N_CALL,
};

enum uop { U_NOT, U_NEG, U_PLUS };

enum bop {
	B_OR, B_AND, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE, B_IN, B_CONTAINS,
	B_STARTS, B_ENDS, B_MATCHES, B_ADD, B_SUB, B_MUL, B_DIV, B_MOD, B_POW,
	B_COALESCE,
};

struct node {
	enum ntype t;
	int op;		/* enum uop / enum bop / index into funcs[] */
	int col;
	int height;
	bool optional;	/* ?. */
	bool negate;	/* not in, not contains, ... */
	const char *optext;
	struct val lit;
	struct node *a, *b, *c;
	struct node **args;
	size_t nargs;
};

/* expr-lang's operator table: precedence, associativity, comparisons
 * chain (a < b < c means a < b && b < c). */
static const struct binop {
	const char *text;
	enum bop op;
	int prec;
	bool right;
	bool cmp;
	bool negatable;
} binops[] = {
	{ "||", B_OR, 10, false, false, false },
	{ "or", B_OR, 10, false, false, false },
	{ "&&", B_AND, 15, false, false, false },
	{ "and", B_AND, 15, false, false, false },
	{ "==", B_EQ, 20, false, true, false },
	{ "!=", B_NE, 20, false, true, false },
	{ "<", B_LT, 20, false, true, false },
	{ "<=", B_LE, 20, false, true, false },
	{ ">", B_GT, 20, false, true, false },
	{ ">=", B_GE, 20, false, true, false },
	{ "in", B_IN, 20, false, true, true },
	{ "contains", B_CONTAINS, 20, false, true, true },
	{ "startsWith", B_STARTS, 20, false, true, true },
	{ "endsWith", B_ENDS, 20, false, true, true },
	{ "matches", B_MATCHES, 20, false, true, true },
	{ "+", B_ADD, 30, false, false, false },
	{ "-", B_SUB, 30, false, false, false },
	{ "*", B_MUL, 60, false, false, false },
	{ "/", B_DIV, 60, false, false, false },
	{ "%", B_MOD, 60, false, false, false },
	{ "**", B_POW, 100, true, false, false },
	{ "^", B_POW, 100, true, false, false },
	{ "??", B_COALESCE, 500, false, false, false },
};

static const struct unop {
	const char *text;
	enum uop op;
	int prec;
} unops[] = {
	{ "not", U_NOT, 50 }, { "!", U_NOT, 50 }, { "-", U_NEG, 90 }, { "+", U_PLUS, 90 },
};

struct ectx;
typedef int (*afunc_fn)(struct ectx *c, const struct node *n, struct val *args,
    size_t nargs, struct val *out);

enum pred { P_NONE, P_ALL, P_ANY, P_NONE_OF, P_ONE, P_FILTER, P_MAP, P_COUNT };

static int fn_len(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_abs(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_int(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_float(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_string(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_isnan(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_isinf(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_isnil(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_default(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_minmax(struct ectx *, const struct node *, struct val *, size_t, struct val *);
static int fn_round(struct ectx *, const struct node *, struct val *, size_t, struct val *);

/* The functions: expr-lang builtins plus Argo Rollouts' own (asInt,
 * asFloat, isNaN, isInf, isNil, default). Arity is checked when parsing. */
static const struct afunc {
	const char *name;
	int min, max;	/* max -1: variadic */
	enum pred pred;
	afunc_fn fn;
} funcs[] = {
	{ "len", 1, 1, P_NONE, fn_len },
	{ "abs", 1, 1, P_NONE, fn_abs },
	{ "int", 1, 1, P_NONE, fn_int },
	{ "asInt", 1, 1, P_NONE, fn_int },
	{ "float", 1, 1, P_NONE, fn_float },
	{ "asFloat", 1, 1, P_NONE, fn_float },
	{ "string", 1, 1, P_NONE, fn_string },
	{ "isNaN", 1, 1, P_NONE, fn_isnan },
	{ "isInf", 1, 1, P_NONE, fn_isinf },
	{ "isNil", 1, 1, P_NONE, fn_isnil },
	{ "default", 2, 2, P_NONE, fn_default },
	{ "min", 1, -1, P_NONE, fn_minmax },
	{ "max", 1, -1, P_NONE, fn_minmax },
	{ "ceil", 1, 1, P_NONE, fn_round },
	{ "floor", 1, 1, P_NONE, fn_round },
	{ "round", 1, 1, P_NONE, fn_round },
	{ "all", 2, 2, P_ALL, NULL },
	{ "any", 2, 2, P_ANY, NULL },
	{ "none", 2, 2, P_NONE_OF, NULL },
	{ "one", 2, 2, P_ONE, NULL },
	{ "filter", 2, 2, P_FILTER, NULL },
	{ "map", 2, 2, P_MAP, NULL },
	{ "count", 2, 2, P_COUNT, NULL },
};

/* ---- parser --------------------------------------------------------- */

struct parser {
	struct arena *ar;
	struct token *toks;
	size_t ntok, pos;
	int depth;	/* parse_expr nesting */
	int pred;	/* inside a predicate: # is defined */
	char **err;
};

static struct node *parse_expr(struct parser *p, int prec);

static const struct token *
cur(const struct parser *p)
{
	return &p->toks[p->pos];
}

static void
advance(struct parser *p)
{
	if (p->pos + 1 < p->ntok)
		p->pos++;
}

static bool
tok_is(const struct token *t, const char *text)
{
	return (t->k == T_PUNCT || t->k == T_IDENT) && t->n == strlen(text) &&
	    memcmp(t->p, text, t->n) == 0;
}

static struct node *
perr(struct parser *p, int col, const char *msg)
{
	fail_at(p->err, col, "%s", msg);
	return NULL;
}

static struct node *
unexpected(struct parser *p)
{
	const struct token *t = cur(p);

	if (t->k == T_EOF)
		return perr(p, t->col, "unexpected end of expression");
	fail_at(p->err, t->col, "unexpected token %.*s", (int)(t->n > 40 ? 40 : t->n), t->p);
	return NULL;
}

static bool
expect(struct parser *p, const char *text)
{
	if (tok_is(cur(p), text)) {
		advance(p);
		return true;
	}
	unexpected(p);
	return false;
}

static int
kid_height(const struct node *k)
{
	return k ? k->height : 0;
}

/* Allocates a node and enforces the AST height cap. */
static struct node *
mk(struct parser *p, enum ntype t, int col, struct node *a, struct node *b, struct node *c)
{
	struct node *n = arena_alloc(p->ar, sizeof(*n));
	int h = kid_height(a);

	memset(n, 0, sizeof(*n));
	n->t = t;
	n->col = col;
	n->a = a;
	n->b = b;
	n->c = c;
	if (kid_height(b) > h)
		h = kid_height(b);
	if (kid_height(c) > h)
		h = kid_height(c);
	n->height = h + 1;
	if (n->height > AEXPR_MAX_DEPTH) {
		fail_at(p->err, col, "expression nested deeper than %d levels", AEXPR_MAX_DEPTH);
		return NULL;
	}
	return n;
}

static const struct binop *
find_binop(const struct token *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(binops); i++)
		if (tok_is(t, binops[i].text))
			return &binops[i];
	return NULL;
}

static const struct unop *
find_unop(const struct token *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(unops); i++)
		if (tok_is(t, unops[i].text))
			return &unops[i];
	return NULL;
}

static struct node *
mk_binary(struct parser *p, const struct binop *b, int col, bool negate,
    struct node *l, struct node *r)
{
	struct node *n;

	if (l == NULL || r == NULL)
		return NULL;
	if (b->op == B_MATCHES)
		return perr(p, col, "operator matches is not supported by v6");
	n = mk(p, N_BINARY, col, l, r, NULL);
	if (n) {
		n->op = (int)b->op;
		n->optext = b->text;
		n->negate = negate;
	}
	return n;
}

/* a < b < c is (a < b) && (b < c), b shared. */
static struct node *
parse_comparison(struct parser *p, struct node *left, const struct binop *b,
    int col, bool negate)
{
	static const struct binop and_op = { "&&", B_AND, 15, false, false, false };
	struct node *root = NULL;

	for (;;) {
		struct node *right = parse_expr(p, b->prec + 1);
		struct node *cmp = mk_binary(p, b, col, negate, left, right);
		if (cmp == NULL)
			return NULL;
		root = root ? mk_binary(p, &and_op, col, false, root, cmp) : cmp;
		if (root == NULL)
			return NULL;
		left = right;
		b = find_binop(cur(p));
		if (b == NULL || !b->cmp)
			return root;
		col = cur(p)->col;
		negate = false;
		advance(p);
	}
}

static struct node *
parse_conditional(struct parser *p, struct node *n)
{
	while (n && tok_is(cur(p), "?")) {
		int col = cur(p)->col;
		struct node *a, *b;
		advance(p);
		if (tok_is(cur(p), ":"))
			return perr(p, cur(p)->col, "the ?: shorthand is not supported by v6");
		a = parse_expr(p, 0);
		if (a == NULL || !expect(p, ":"))
			return NULL;
		b = parse_expr(p, 0);
		if (b == NULL)
			return NULL;
		n = mk(p, N_COND, col, n, a, b);
	}
	return n;
}

static struct node *parse_primary(struct parser *p);

static struct node *
parse_expr(struct parser *p, int prec)
{
	struct node *left;

	if (++p->depth > AEXPR_MAX_DEPTH) {
		p->depth--;
		fail_at(p->err, cur(p)->col, "expression nested deeper than %d levels", AEXPR_MAX_DEPTH);
		return NULL;
	}
	left = parse_primary(p);
	while (left != NULL) {
		const struct token *t = cur(p);
		const struct binop *b;
		bool negate = false;
		int col = t->col;

		if (tok_is(t, "not")) {
			b = find_binop(&p->toks[p->pos + 1]);	/* the sentinel keeps this in bounds */
			if (b == NULL || !b->negatable) {
				left = unexpected(p);
				break;
			}
			if (b->prec < prec)
				break;
			advance(p);
			negate = true;
			t = cur(p);
		}
		b = find_binop(t);
		if (b == NULL || b->prec < prec)
			break;
		advance(p);
		if (b->cmp)
			left = parse_comparison(p, left, b, col, negate);
		else
			left = mk_binary(p, b, col, false, left,
			    parse_expr(p, b->right ? b->prec : b->prec + 1));
	}
	if (left && prec == 0)
		left = parse_conditional(p, left);
	p->depth--;
	return left;
}

static struct node *parse_postfix(struct parser *p, struct node *n);

static struct node *
parse_call(struct parser *p, const struct token *name)
{
	const struct afunc *f = NULL;
	struct node *n, *args[2] = { NULL, NULL };
	struct node **v = NULL;
	size_t nv = 0, cap = 0;

	for (size_t i = 0; i < ARRAY_SIZE(funcs); i++)
		if (strlen(funcs[i].name) == name->n && memcmp(funcs[i].name, name->p, name->n) == 0)
			f = &funcs[i];
	if (f == NULL) {
		fail_at(p->err, name->col, "unknown function %.*s", (int)name->n, name->p);
		return NULL;
	}
	advance(p);	/* the name */
	advance(p);	/* ( */
	if (f->pred != P_NONE) {
		bool brace;
		args[0] = parse_expr(p, 0);
		if (args[0] == NULL || !expect(p, ","))
			return NULL;
		brace = tok_is(cur(p), "{");
		if (brace)
			advance(p);
		p->pred++;
		args[1] = parse_expr(p, 0);
		p->pred--;
		if (args[1] == NULL || (brace && !expect(p, "}")))
			return NULL;
		if (tok_is(cur(p), ","))
			advance(p);
		if (!expect(p, ")"))
			return NULL;
		n = mk(p, N_CALL, name->col, args[0], args[1], NULL);
		if (n)
			n->op = (int)(f - funcs);
		return n;
	}
	while (!tok_is(cur(p), ")")) {
		struct node *a;
		if (nv > 0 && !expect(p, ","))
			return NULL;
		if (nv > 0 && tok_is(cur(p), ")"))
			break;
		a = parse_expr(p, 0);
		if (a == NULL)
			return NULL;
		if (nv == cap) {
			struct node **nw = arena_alloc(p->ar, (cap = cap ? cap * 2 : 4) * sizeof(*v));
			if (nv)
				memcpy(nw, v, nv * sizeof(*v));
			v = nw;
		}
		v[nv++] = a;
	}
	advance(p);	/* ) */
	if ((int)nv < f->min || (f->max >= 0 && (int)nv > f->max)) {
		fail_at(p->err, name->col, "%s expects %s%d argument%s, got %zu", f->name,
		    f->max < 0 ? "at least " : "", f->min, f->min == 1 ? "" : "s", nv);
		return NULL;
	}
	n = mk(p, N_CALL, name->col, NULL, NULL, NULL);
	if (n == NULL)
		return NULL;
	for (size_t i = 0; i < nv; i++) {
		if (v[i]->height + 1 > n->height)
			n->height = v[i]->height + 1;
	}
	n->op = (int)(f - funcs);
	n->args = v;
	n->nargs = nv;
	return n;
}

static struct node *
parse_array(struct parser *p)
{
	int col = cur(p)->col;
	struct node *n = mk(p, N_ARRAY, col, NULL, NULL, NULL);
	size_t cap = 0;

	advance(p);	/* [ */
	while (n && !tok_is(cur(p), "]")) {
		struct node *a;
		if (n->nargs > 0 && !expect(p, ","))
			return NULL;
		if (n->nargs > 0 && tok_is(cur(p), "]"))
			break;
		a = parse_expr(p, 0);
		if (a == NULL)
			return NULL;
		if (n->nargs == cap) {
			struct node **nw = arena_alloc(p->ar, (cap = cap ? cap * 2 : 4) * sizeof(*nw));
			if (n->nargs)
				memcpy(nw, n->args, n->nargs * sizeof(*nw));
			n->args = nw;
		}
		n->args[n->nargs++] = a;
		if (a->height + 1 > n->height)
			n->height = a->height + 1;
	}
	if (n == NULL || !expect(p, "]"))
		return NULL;
	return n;
}

static struct node *
parse_literal(struct parser *p, const struct token *t)
{
	struct node *n = mk(p, N_LIT, t->col, NULL, NULL, NULL);

	if (n == NULL)
		return NULL;
	switch (t->k) {
	case T_INT:
		n->lit.k = V_INT;
		n->lit.u.i = t->i;
		break;
	case T_FLOAT:
		n->lit.k = V_FLOAT;
		n->lit.u.f = t->f;
		break;
	case T_STR:
		n->lit.k = V_STR;
		n->lit.u.s.p = t->s;
		n->lit.u.s.n = t->slen;
		break;
	default:
		if (tok_is(t, "true") || tok_is(t, "false")) {
			n->lit.k = V_BOOL;
			n->lit.u.b = tok_is(t, "true");
		} else {
			n->lit.k = V_NIL;
		}
		break;
	}
	advance(p);
	return n;
}

static struct node *
parse_secondary(struct parser *p)
{
	const struct token *t = cur(p);
	struct node *n;

	if (t->k == T_INT || t->k == T_FLOAT || t->k == T_STR)
		return parse_postfix(p, parse_literal(p, t));
	if (tok_is(t, "true") || tok_is(t, "false") || tok_is(t, "nil"))
		return parse_literal(p, t);
	if (t->k == T_IDENT) {
		if (tok_is(&p->toks[p->pos + 1], "("))
			return parse_postfix(p, parse_call(p, t));
		if (!tok_is(t, "result")) {
			fail_at(p->err, t->col, "unknown name %.*s (only result is defined)",
			    (int)t->n, t->p);
			return NULL;
		}
		n = mk(p, N_RESULT, t->col, NULL, NULL, NULL);
		advance(p);
		return parse_postfix(p, n);
	}
	if (tok_is(t, "["))
		return parse_postfix(p, parse_array(p));
	if (tok_is(t, "{"))
		return perr(p, t->col, "map literals are not supported by v6");
	return unexpected(p);
}

static struct node *
parse_primary(struct parser *p)
{
	const struct token *t = cur(p);
	const struct unop *u = find_unop(t);
	struct node *n;

	if (u) {
		advance(p);
		n = parse_expr(p, u->prec);
		n = n ? mk(p, N_UNARY, t->col, n, NULL, NULL) : NULL;
		if (n) {
			n->op = (int)u->op;
			n->optext = u->text;
		}
		return parse_postfix(p, n);
	}
	if (tok_is(t, "(")) {
		advance(p);
		n = parse_expr(p, 0);
		if (n == NULL || !expect(p, ")"))
			return NULL;
		return parse_postfix(p, n);
	}
	if (tok_is(t, "#") || (tok_is(t, ".") && p->pred > 0)) {
		if (p->pred == 0)
			return perr(p, t->col, "cannot use # outside a predicate such as all(result, {# > 0})");
		n = mk(p, N_ELEM, t->col, NULL, NULL, NULL);
		if (tok_is(t, "#")) {
			advance(p);
			if (cur(p)->k == T_IDENT && cur(p)->col == t->col + 1 && !find_binop(cur(p)))
				return perr(p, t->col, "named pointers (#name) are not supported by v6");
		}
		return parse_postfix(p, n);
	}
	return parse_secondary(p);
}

static struct node *
parse_index(struct parser *p, struct node *base, int col, bool optional)
{
	struct node *from = NULL, *to = NULL, *n;

	advance(p);	/* [ */
	if (!tok_is(cur(p), ":")) {
		from = parse_expr(p, 0);
		if (from == NULL)
			return NULL;
	}
	if (tok_is(cur(p), ":")) {
		advance(p);
		if (!tok_is(cur(p), "]") && (to = parse_expr(p, 0)) == NULL)
			return NULL;
		if (!expect(p, "]"))
			return NULL;
		return mk(p, N_SLICE, col, base, from, to);
	}
	if (!expect(p, "]"))
		return NULL;
	n = mk(p, N_INDEX, col, base, from, NULL);
	if (n)
		n->optional = optional;
	return n;
}

static struct node *
parse_postfix(struct parser *p, struct node *n)
{
	while (n) {
		const struct token *t = cur(p);
		bool optional = tok_is(t, "?.");
		const struct token *name;

		if (tok_is(t, "[")) {
			n = parse_index(p, n, t->col, false);
			continue;
		}
		if (!optional && !tok_is(t, "."))
			break;
		advance(p);
		if (optional && tok_is(cur(p), "[")) {
			n = parse_index(p, n, cur(p)->col, true);
			continue;
		}
		name = cur(p);
		if (name->k != T_IDENT)
			return perr(p, name->col, "expected a field name after .");
		advance(p);
		if (tok_is(cur(p), "("))
			return perr(p, name->col, "method calls are not supported by v6");
		n = mk(p, N_MEMBER, name->col, n, NULL, NULL);
		if (n) {
			n->optional = optional;
			n->lit.k = V_STR;
			n->lit.u.s.p = name->p;
			n->lit.u.s.n = name->n;
		}
	}
	return n;
}

/* Lexes and parses expr into an AST in ar; NULL with *err on error. */
static struct node *
aexpr_parse(const char *expr, struct arena *ar, char **err)
{
	struct lexer lx = { expr, 0, 0, ar, err };
	struct parser p = { ar, NULL, 0, 0, 0, 0, err };
	struct node *root;
	size_t cap;

	*err = NULL;
	if (expr == NULL)
		expr = lx.src = "";
	lx.len = strnlen(expr, AEXPR_MAX_LEN + 1);
	if (lx.len > AEXPR_MAX_LEN) {
		fail_at(err, AEXPR_MAX_LEN + 1, "expression longer than %d bytes", AEXPR_MAX_LEN);
		return NULL;
	}
	cap = lx.len + 2;
	p.toks = arena_alloc(ar, cap * sizeof(*p.toks));
	do {
		if (lex_one(&lx, &p.toks[p.ntok]) < 0)
			return NULL;
	} while (p.toks[p.ntok++].k != T_EOF);
	/* a sentinel EOF after the EOF keeps one-token look-ahead in bounds */
	p.toks[p.ntok] = p.toks[p.ntok - 1];
	if (p.toks[0].k == T_EOF) {
		fail_at(err, 1, "empty expression");
		return NULL;
	}
	root = parse_expr(&p, 0);
	if (root && cur(&p)->k != T_EOF)
		return unexpected(&p);
	return root;
}

/* ---- evaluator ------------------------------------------------------ */

struct ectx {
	struct arena ar;	/* values made while evaluating, capped */
	const json_t *result;
	const struct val *elem;	/* # of the innermost predicate */
	long steps;
	char **err;
};

static int eval(struct ectx *c, const struct node *n, struct val *out);

static void *
ealloc(struct ectx *c, const struct node *n, size_t size)
{
	void *p = arena_alloc(&c->ar, size);

	if (p == NULL)
		fail_at(c->err, n->col, "expression needs more than %zu MiB", AEXPR_MAX_MEM >> 20);
	return p;
}

static int
need_bool(struct ectx *c, const struct node *n, const struct val *v, const char *what)
{
	if (v->k == V_BOOL)
		return 0;
	return fail_at(c->err, n->col, "%s needs a bool, got %s", what, vname(v));
}

static int
eval_unary(struct ectx *c, const struct node *n, struct val *out)
{
	struct val v;

	if (eval(c, n->a, &v) < 0)
		return -EINVAL;
	switch ((enum uop)n->op) {
	case U_NOT:
		if (v.k != V_BOOL)
			return fail_at(c->err, n->col, "operator %s needs a bool, got %s",
			    n->optext, vname(&v));
		out->k = V_BOOL;
		out->u.b = !v.u.b;
		return 0;
	case U_NEG:
	case U_PLUS:
		if (!is_num(&v))
			return fail_at(c->err, n->col, "operator %s needs a number, got %s",
			    n->optext, vname(&v));
		*out = v;
		if (n->op == U_NEG && v.k == V_INT)
			out->u.i = (int64_t)(0 - (uint64_t)v.u.i);
		else if (n->op == U_NEG)
			out->u.f = -v.u.f;
		return 0;
	}
	return -EINVAL;
}

/* <, <=, >, >= on two numbers or two strings: -1, 0, 1, or 2 when
 * unordered (NaN), so every comparison with NaN is false. */
static int
compare(struct ectx *c, const struct node *n, const struct val *a, const struct val *b,
    int *out)
{
	if (is_num(a) && is_num(b)) {
		if (a->k == V_INT && b->k == V_INT) {
			*out = (a->u.i > b->u.i) - (a->u.i < b->u.i);
		} else {
			double x = num_f(a), y = num_f(b);
			*out = isnan(x) || isnan(y) ? 2 : (x > y) - (x < y);
		}
		return 0;
	}
	if (a->k == V_STR && b->k == V_STR) {
		size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
		int r = memcmp(a->u.s.p, b->u.s.p, m);
		*out = r ? (r > 0) - (r < 0) : (a->u.s.n > b->u.s.n) - (a->u.s.n < b->u.s.n);
		return 0;
	}
	return fail_at(c->err, n->col, "cannot compare %s and %s", vname(a), vname(b));
}

static int
eval_in(struct ectx *c, const struct node *n, const struct val *a, const struct val *b,
    bool *out)
{
	if (b->k == V_LIST) {
		*out = false;
		for (size_t i = 0; i < b->u.l.n && !*out; i++) {
			struct val e;
			list_get(b, i, &e);
			*out = val_equal(a, &e);
		}
		return 0;
	}
	if (b->k == V_MAP) {
		if (a->k != V_STR)
			return fail_at(c->err, n->col, "an object key must be a string, got %s", vname(a));
		*out = json_object_getn(b->u.m, a->u.s.p, a->u.s.n) != NULL;
		return 0;
	}
	return fail_at(c->err, n->col, "operator in needs an array or object on its right, got %s",
	    vname(b));
}

static int
eval_strop(struct ectx *c, const struct node *n, const struct val *a, const struct val *b,
    bool *out)
{
	const char *s, *t;
	size_t sn, tn;

	if (a->k != V_STR || b->k != V_STR)
		return fail_at(c->err, n->col, "operator %s needs strings, got %s and %s",
		    n->optext, vname(a), vname(b));
	s = a->u.s.p, sn = a->u.s.n, t = b->u.s.p, tn = b->u.s.n;
	switch ((enum bop)n->op) {
	case B_CONTAINS:
		*out = tn == 0 || (sn >= tn && memmem(s, sn, t, tn) != NULL);
		break;
	case B_STARTS:
		*out = sn >= tn && memcmp(s, t, tn) == 0;
		break;
	default:
		*out = sn >= tn && memcmp(s + sn - tn, t, tn) == 0;
		break;
	}
	return 0;
}

static int
eval_concat(struct ectx *c, const struct node *n, const struct val *a, const struct val *b,
    struct val *out)
{
	char *p = ealloc(c, n, a->u.s.n + b->u.s.n + 1);

	if (p == NULL)
		return -EINVAL;
	memcpy(p, a->u.s.p, a->u.s.n);
	memcpy(p + a->u.s.n, b->u.s.p, b->u.s.n);
	p[a->u.s.n + b->u.s.n] = '\0';
	out->k = V_STR;
	out->u.s.p = p;
	out->u.s.n = a->u.s.n + b->u.s.n;
	return 0;
}

/* + - * / % ** on numbers: int with int stays int (wrapping as Go does),
 * anything with a float is float, / and ** are always float. */
static int
eval_arith(struct ectx *c, const struct node *n, const struct val *a, const struct val *b,
    struct val *out)
{
	enum bop op = (enum bop)n->op;

	if (op == B_ADD && a->k == V_STR && b->k == V_STR)
		return eval_concat(c, n, a, b, out);
	if (!is_num(a) || !is_num(b))
		return fail_at(c->err, n->col, "cannot apply %s to %s and %s", n->optext,
		    vname(a), vname(b));
	if (op == B_MOD) {
		if (a->k != V_INT || b->k != V_INT)
			return fail_at(c->err, n->col, "operator %% needs integers");
		if (b->u.i == 0)
			return fail_at(c->err, n->col, "integer divide by zero");
		out->k = V_INT;
		out->u.i = b->u.i == -1 ? 0 : a->u.i % b->u.i;
		return 0;
	}
	if (a->k == V_INT && b->k == V_INT && op != B_DIV && op != B_POW) {
		uint64_t x = (uint64_t)a->u.i, y = (uint64_t)b->u.i;
		out->k = V_INT;
		out->u.i = (int64_t)(op == B_ADD ? x + y : op == B_SUB ? x - y : x * y);
		return 0;
	}
	out->k = V_FLOAT;
	switch (op) {
	case B_ADD: out->u.f = num_f(a) + num_f(b); break;
	case B_SUB: out->u.f = num_f(a) - num_f(b); break;
	case B_MUL: out->u.f = num_f(a) * num_f(b); break;
	case B_DIV: out->u.f = num_f(a) / num_f(b); break;
	default: out->u.f = pow(num_f(a), num_f(b)); break;
	}
	return 0;
}

static int
eval_logic(struct ectx *c, const struct node *n, struct val *out)
{
	struct val v;
	bool is_and = n->op == B_AND;

	if (eval(c, n->a, &v) < 0)
		return -EINVAL;
	if (v.k != V_BOOL)
		return fail_at(c->err, n->col, "operator %s needs bool operands, got %s",
		    n->optext, vname(&v));
	if (v.u.b != is_and) {	/* false && ..., true || ... */
		*out = v;
		return 0;
	}
	if (eval(c, n->b, &v) < 0)
		return -EINVAL;
	if (v.k != V_BOOL)
		return fail_at(c->err, n->col, "operator %s needs bool operands, got %s",
		    n->optext, vname(&v));
	*out = v;
	return 0;
}

static int
eval_binary(struct ectx *c, const struct node *n, struct val *out)
{
	struct val a, b;
	int r = 0;
	bool t = false;

	if (n->op == B_AND || n->op == B_OR)
		return eval_logic(c, n, out);
	if (eval(c, n->a, &a) < 0)
		return -EINVAL;
	if (n->op == B_COALESCE) {
		if (a.k != V_NIL) {
			*out = a;
			return 0;
		}
		return eval(c, n->b, out);
	}
	if (eval(c, n->b, &b) < 0)
		return -EINVAL;
	switch ((enum bop)n->op) {
	case B_EQ:
		t = val_equal(&a, &b);
		break;
	case B_NE:
		t = !val_equal(&a, &b);
		break;
	case B_LT: case B_LE: case B_GT: case B_GE:
		if (compare(c, n, &a, &b, &r) < 0)
			return -EINVAL;
		t = r != 2 && (n->op == B_LT ? r < 0 : n->op == B_LE ? r <= 0 :
		    n->op == B_GT ? r > 0 : r >= 0);
		break;
	case B_IN:
		if (eval_in(c, n, &a, &b, &t) < 0)
			return -EINVAL;
		break;
	case B_CONTAINS: case B_STARTS: case B_ENDS:
		if (eval_strop(c, n, &a, &b, &t) < 0)
			return -EINVAL;
		break;
	default:
		return eval_arith(c, n, &a, &b, out);
	}
	out->k = V_BOOL;
	out->u.b = n->negate ? !t : t;
	return 0;
}

static int
eval_member(struct ectx *c, const struct node *n, struct val *out)
{
	struct val base;

	if (eval(c, n->a, &base) < 0)
		return -EINVAL;
	if (base.k == V_NIL && n->optional) {
		*out = base;
		return 0;
	}
	if (base.k != V_MAP)
		return fail_at(c->err, n->col, "cannot read field %.*s of %s",
		    (int)n->lit.u.s.n, n->lit.u.s.p, vname(&base));
	val_from_json(json_object_getn(base.u.m, n->lit.u.s.p, n->lit.u.s.n), out);
	return 0;
}

/* An index or slice bound as an integer; floats are truncated as expr's
 * ToInt does, when they fit. */
static int
to_index(struct ectx *c, const struct node *n, const struct val *v, int64_t *out)
{
	if (v->k == V_INT) {
		*out = v->u.i;
		return 0;
	}
	if (v->k == V_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) {
		*out = (int64_t)v->u.f;
		return 0;
	}
	return fail_at(c->err, n->col, "an array index must be an integer, got %s",
	    v->k == V_FLOAT ? "a non-finite or huge number" : vname(v));
}

static int
eval_index(struct ectx *c, const struct node *n, struct val *out)
{
	struct val base, key;
	int64_t i = 0, len;

	if (eval(c, n->a, &base) < 0)
		return -EINVAL;
	if (base.k == V_NIL && n->optional) {
		*out = base;
		return 0;
	}
	if (eval(c, n->b, &key) < 0)
		return -EINVAL;
	if (base.k == V_MAP) {
		if (key.k != V_STR)
			return fail_at(c->err, n->col, "an object key must be a string, got %s",
			    vname(&key));
		val_from_json(json_object_getn(base.u.m, key.u.s.p, key.u.s.n), out);
		return 0;
	}
	if (base.k != V_LIST)
		return fail_at(c->err, n->col, "cannot index %s", vname(&base));
	if (to_index(c, n, &key, &i) < 0)
		return -EINVAL;
	len = (int64_t)base.u.l.n;
	if ((i < 0 ? i + len : i) < 0 || (i < 0 ? i + len : i) >= len)
		return fail_at(c->err, n->col, "index %" PRId64 " out of range (len %" PRId64 ")",
		    i, len);
	list_get(&base, (size_t)(i < 0 ? i + len : i), out);
	return 0;
}

static int
slice_bound(struct ectx *c, const struct node *n, const struct node *e, int64_t len,
    int64_t dflt, int64_t *out)
{
	struct val v;

	*out = dflt;
	if (e == NULL)
		return 0;
	if (eval(c, e, &v) < 0 || to_index(c, n, &v, out) < 0)
		return -EINVAL;
	if (*out < 0)
		*out += len;
	*out = *out < 0 ? 0 : *out > len ? len : *out;
	return 0;
}

static int
eval_slice(struct ectx *c, const struct node *n, struct val *out)
{
	struct val base;
	int64_t from = 0, to = 0, len;

	if (eval(c, n->a, &base) < 0)
		return -EINVAL;
	if (base.k != V_LIST)
		return fail_at(c->err, n->col, "cannot slice %s", vname(&base));
	len = (int64_t)base.u.l.n;
	if (slice_bound(c, n, n->b, len, 0, &from) < 0 ||
	    slice_bound(c, n, n->c, len, len, &to) < 0)
		return -EINVAL;
	*out = base;
	out->u.l.n = to > from ? (size_t)(to - from) : 0;
	if (base.u.l.j)
		out->u.l.off += (size_t)from;
	else
		out->u.l.v += from;
	return 0;
}

static int
eval_array(struct ectx *c, const struct node *n, struct val *out)
{
	struct val *v = ealloc(c, n, n->nargs * sizeof(*v));

	if (v == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n->nargs; i++)
		if (eval(c, n->args[i], &v[i]) < 0)
			return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->k = V_LIST;
	out->u.l.v = v;
	out->u.l.n = n->nargs;
	return 0;
}

/* all / any / none / one / count / filter / map: the body runs once per
 * element with # bound to it; bool bodies stop as early as they can. */
static int
eval_predicate(struct ectx *c, const struct node *n, struct val *out)
{
	const struct afunc *f = &funcs[n->op];
	const struct val *saved = c->elem;
	struct val list, *acc = NULL;
	size_t hits = 0, nacc = 0;
	int rc = 0;

	if (eval(c, n->a, &list) < 0)
		return -EINVAL;
	if (list.k != V_LIST)
		return fail_at(c->err, n->col, "%s needs an array, got %s", f->name, vname(&list));
	if ((f->pred == P_FILTER || f->pred == P_MAP) &&
	    (acc = ealloc(c, n, list.u.l.n * sizeof(*acc))) == NULL)
		return -EINVAL;
	for (size_t i = 0; i < list.u.l.n; i++) {
		struct val e, r;
		list_get(&list, i, &e);
		c->elem = &e;
		rc = eval(c, n->b, &r);
		c->elem = saved;
		if (rc < 0)
			return -EINVAL;
		if (f->pred == P_MAP) {
			acc[nacc++] = r;
			continue;
		}
		if (r.k != V_BOOL)
			return fail_at(c->err, n->b->col, "the predicate of %s must return a bool, got %s",
			    f->name, vname(&r));
		if (r.u.b && f->pred == P_FILTER)
			acc[nacc++] = e;
		hits += r.u.b;
		if ((f->pred == P_ALL && !r.u.b) || ((f->pred == P_ANY || f->pred == P_NONE_OF) && r.u.b))
			break;
	}
	memset(out, 0, sizeof(*out));
	switch (f->pred) {
	case P_FILTER:
	case P_MAP:
		out->k = V_LIST;
		out->u.l.v = acc;
		out->u.l.n = nacc;
		return 0;
	case P_COUNT:
		out->k = V_INT;
		out->u.i = (int64_t)hits;
		return 0;
	default:
		out->k = V_BOOL;
		/* all stopped at its first false, so it held iff every one hit */
		out->u.b = f->pred == P_ALL ? hits == list.u.l.n :
		    f->pred == P_ANY ? hits > 0 :
		    f->pred == P_NONE_OF ? hits == 0 : hits == 1;
		return 0;
	}
}

static int
eval_call(struct ectx *c, const struct node *n, struct val *out)
{
	const struct afunc *f = &funcs[n->op];
	struct val *args;

	if (f->pred != P_NONE)
		return eval_predicate(c, n, out);
	args = ealloc(c, n, n->nargs * sizeof(*args));
	if (args == NULL)
		return -EINVAL;
	for (size_t i = 0; i < n->nargs; i++)
		if (eval(c, n->args[i], &args[i]) < 0)
			return -EINVAL;
	memset(out, 0, sizeof(*out));
	return f->fn(c, n, args, n->nargs, out);
}

static int
eval(struct ectx *c, const struct node *n, struct val *out)
{
	if (++c->steps > AEXPR_MAX_STEPS)
		return fail_at(c->err, n->col, "expression needs more than %ld steps", AEXPR_MAX_STEPS);
	switch (n->t) {
	case N_LIT:
		*out = n->lit;
		return 0;
	case N_RESULT:
		val_from_json(c->result, out);
		return 0;
	case N_ELEM:
		BUG_ON(c->elem == NULL);
		*out = *c->elem;
		return 0;
	case N_ARRAY:
		return eval_array(c, n, out);
	case N_UNARY:
		return eval_unary(c, n, out);
	case N_BINARY:
		return eval_binary(c, n, out);
	case N_COND:
		if (eval(c, n->a, out) < 0 || need_bool(c, n, out, "the condition of ?:") < 0)
			return -EINVAL;
		return eval(c, out->u.b ? n->b : n->c, out);
	case N_MEMBER:
		return eval_member(c, n, out);
	case N_INDEX:
		return eval_index(c, n, out);
	case N_SLICE:
		return eval_slice(c, n, out);
	case N_CALL:
		return eval_call(c, n, out);
	}
	return -EINVAL;
}

/* ---- functions ------------------------------------------------------ */

static int
fn_len(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)na;
	out->k = V_INT;
	switch (a->k) {
	case V_STR:
		out->u.i = 0;
		for (size_t i = 0; i < a->u.s.n; i++)	/* runes, as expr counts */
			out->u.i += ((unsigned char)a->u.s.p[i] & 0xC0) != 0x80;
		return 0;
	case V_LIST:
		out->u.i = (int64_t)a->u.l.n;
		return 0;
	case V_MAP:
		out->u.i = (int64_t)json_object_size(a->u.m);
		return 0;
	default:
		return fail_at(c->err, n->col, "len needs a string, array or object, got %s",
		    vname(a));
	}
}

static int
need_num(struct ectx *c, const struct node *n, const struct val *a)
{
	if (is_num(a))
		return 0;
	return fail_at(c->err, n->col, "%s needs a number, got %s", funcs[n->op].name, vname(a));
}

static int
fn_abs(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)na;
	if (need_num(c, n, a) < 0)
		return -EINVAL;
	*out = *a;
	if (a->k == V_INT && a->u.i < 0)
		out->u.i = (int64_t)(0 - (uint64_t)a->u.i);
	else if (a->k == V_FLOAT)
		out->u.f = fabs(a->u.f);
	return 0;
}

/* Parses the whole of s[0..n) as a number (no surrounding blanks). */
static bool
parse_num_str(const struct val *s, bool integer, int64_t *i, double *f)
{
	char buf[128], *end;

	if (s->u.s.n == 0 || s->u.s.n >= sizeof(buf) || strchr(" \t\r\n\v\f", s->u.s.p[0]))
		return false;
	memcpy(buf, s->u.s.p, s->u.s.n);
	buf[s->u.s.n] = '\0';
	if (strlen(buf) != s->u.s.n)
		return false;
	errno = 0;
	if (integer)
		*i = strtoll(buf, &end, 10);
	else
		*f = strtod(buf, &end);
	return *end == '\0' && errno != ERANGE;
}

static int
fn_int(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)na;
	out->k = V_INT;
	if (a->k == V_INT) {
		out->u.i = a->u.i;
		return 0;
	}
	if (a->k == V_FLOAT && isfinite(a->u.f) && a->u.f > -9.2e18 && a->u.f < 9.2e18) {
		out->u.i = (int64_t)a->u.f;
		return 0;
	}
	if (a->k == V_STR && parse_num_str(a, true, &out->u.i, NULL))
		return 0;
	if (a->k == V_STR)
		return fail_at(c->err, n->col, "cannot convert \"%.*s\" to int",
		    (int)(a->u.s.n > 40 ? 40 : a->u.s.n), a->u.s.p);
	return fail_at(c->err, n->col, "cannot convert %s%s to int", vname(a),
	    a->k == V_FLOAT ? " (NaN, Inf or too large)" : "");
}

static int
fn_float(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)na;
	out->k = V_FLOAT;
	if (is_num(a)) {
		out->u.f = num_f(a);
		return 0;
	}
	if (a->k == V_STR && parse_num_str(a, false, NULL, &out->u.f))
		return 0;
	if (a->k == V_STR)
		return fail_at(c->err, n->col, "cannot convert \"%.*s\" to float",
		    (int)(a->u.s.n > 40 ? 40 : a->u.s.n), a->u.s.p);
	return fail_at(c->err, n->col, "cannot convert %s to float", vname(a));
}

/* Go's %v for a float64: the shortest digits that read back the same,
 * in %e form when the exponent is < -4 or >= 6 (strconv's rule for the
 * shortest 'g' format). */
static void
fmt_float(struct buf *b, double f)
{
	char tmp[64];
	int prec, exp;

	if (isnan(f)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(f)) {
		buf_puts(b, f > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
		if (strtod(tmp, NULL) == f)
			break;
	}
	snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, f);
	exp = atoi(strchr(tmp, 'e') + 1);
	if (exp < -4 || exp >= 6)
		buf_puts(b, tmp);
	else
		buf_printf(b, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, f);
}

static int
cmp_keys(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Go's fmt %v of the value: [1 2 3], map[a:1 b:x], <nil>. Stops (false)
 * once the text would exceed the memory cap. */
static bool
fmt_val(struct buf *b, const struct val *v)
{
	struct val e;
	const char **keys;
	const char *k;
	json_t *x;
	size_t i = 0;

	if (b->len > AEXPR_MAX_MEM)
		return false;
	switch (v->k) {
	case V_NIL: buf_puts(b, "<nil>"); break;
	case V_BOOL: buf_puts(b, v->u.b ? "true" : "false"); break;
	case V_INT: buf_printf(b, "%" PRId64, v->u.i); break;
	case V_FLOAT: fmt_float(b, v->u.f); break;
	case V_STR: buf_append(b, v->u.s.p, v->u.s.n); break;
	case V_LIST:
		buf_putc(b, '[');
		for (i = 0; i < v->u.l.n; i++) {
			if (i)
				buf_putc(b, ' ');
			list_get(v, i, &e);
			if (!fmt_val(b, &e))
				return false;
		}
		buf_putc(b, ']');
		break;
	case V_MAP:
		keys = xmalloc((json_object_size(v->u.m) + 1) * sizeof(*keys));
		json_object_foreach((json_t *)v->u.m, k, x)
			keys[i++] = k;
		qsort(keys, i, sizeof(*keys), cmp_keys);
		buf_puts(b, "map[");
		for (size_t j = 0; j < i; j++) {
			buf_printf(b, "%s%s:", j ? " " : "", keys[j]);
			val_from_json(json_object_get(v->u.m, keys[j]), &e);
			if (!fmt_val(b, &e)) {
				free(keys);
				return false;
			}
		}
		buf_putc(b, ']');
		free(keys);
		break;
	}
	return true;
}

static int
fn_string(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	struct buf b = BUF_INIT;
	char *p;
	bool ok;

	(void)na;
	if (a->k == V_STR) {
		*out = *a;
		return 0;
	}
	ok = fmt_val(&b, a);
	p = ok ? ealloc(c, n, b.len + 1) : NULL;
	if (!ok)
		fail_at(c->err, n->col, "expression needs more than %zu MiB", AEXPR_MAX_MEM >> 20);
	if (p) {
		memcpy(p, b.data ? b.data : "", b.len + 1);
		out->k = V_STR;
		out->u.s.p = p;
		out->u.s.n = b.len;
	}
	buf_free(&b);
	return p ? 0 : -EINVAL;
}

static int
fn_isnan(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)na;
	if (need_num(c, n, a) < 0)
		return -EINVAL;
	out->k = V_BOOL;
	out->u.b = a->k == V_FLOAT && isnan(a->u.f);
	return 0;
}

static int
fn_isinf(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)na;
	if (need_num(c, n, a) < 0)
		return -EINVAL;
	out->k = V_BOOL;
	out->u.b = a->k == V_FLOAT && isinf(a->u.f);
	return 0;
}

static int
fn_isnil(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)c, (void)n, (void)na;
	out->k = V_BOOL;
	out->u.b = a->k == V_NIL;
	return 0;
}

static int
fn_default(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	(void)c, (void)n, (void)na;
	*out = a[0].k == V_NIL ? a[1] : a[0];
	return 0;
}

/* min(a, b, ...) / max(...) of numbers, or of one array of numbers; the
 * chosen argument is returned as it is (an int stays an int). */
static int
fn_minmax(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	bool is_max = funcs[n->op].name[1] == 'a';
	struct val list = { 0 }, e;
	size_t cnt = na;

	if (na == 1 && a[0].k == V_LIST) {
		list = a[0];
		cnt = list.u.l.n;
		if (cnt == 0)
			return fail_at(c->err, n->col, "%s of an empty array", funcs[n->op].name);
	}
	for (size_t i = 0; i < cnt; i++) {
		if (list.k == V_LIST)
			list_get(&list, i, &e);
		else
			e = a[i];
		if (!is_num(&e))
			return fail_at(c->err, n->col, "%s needs numbers, got %s",
			    funcs[n->op].name, vname(&e));
		if (i == 0 || (is_max ? num_f(&e) > num_f(out) : num_f(&e) < num_f(out)) ||
		    (e.k == V_INT && out->k == V_INT && (is_max ? e.u.i > out->u.i : e.u.i < out->u.i)))
			*out = e;
	}
	return 0;
}

static int
fn_round(struct ectx *c, const struct node *n, struct val *a, size_t na, struct val *out)
{
	static const struct { const char *name; double (*fn)(double); } rounders[] = {
		{ "ceil", ceil }, { "floor", floor }, { "round", round },
	};

	(void)na;
	if (need_num(c, n, a) < 0)
		return -EINVAL;
	*out = *a;
	for (size_t i = 0; a->k == V_FLOAT && i < ARRAY_SIZE(rounders); i++)
		if (strcmp(rounders[i].name, funcs[n->op].name) == 0)
			out->u.f = rounders[i].fn(a->u.f);
	return 0;
}

/* ---- API ------------------------------------------------------------ */

int
aexpr_check(const char *expr, char **err)
{
	struct arena ar = { NULL, 0, 0 };
	char *e = NULL;
	int rc = aexpr_parse(expr, &ar, &e) ? 0 : -EINVAL;

	arena_free(&ar);
	if (err)
		*err = e;
	else
		free(e);
	return rc;
}

int
aexpr_eval_bool(const char *expr, const json_t *result, bool *out, char **err)
{
	struct arena ar = { NULL, 0, 0 };
	char *e = NULL;
	struct node *root = aexpr_parse(expr, &ar, &e);
	int rc = -EINVAL;

	*out = false;
	if (root) {
		struct ectx c = { { NULL, 0, AEXPR_MAX_MEM }, result, NULL, 0, &e };
		struct val v;
		if (eval(&c, root, &v) == 0) {
			if (v.k == V_BOOL) {
				*out = v.u.b;
				rc = 0;
			} else {
				fail_at(&e, 1, "the condition must be a bool, got %s "
				    "(write a comparison such as result >= 0.95)", vname(&v));
			}
		}
		arena_free(&c.ar);
	}
	arena_free(&ar);
	if (err)
		*err = e;
	else
		free(e);
	return rc;
}
