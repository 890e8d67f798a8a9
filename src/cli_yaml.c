/* cli_yaml.c — JSON to YAML for `-o yaml`: block style as kubectl prints it
 * (sorted keys, list items at their parent key's indentation, literal blocks
 * for multi-line strings) with every string that YAML would read as something
 * else quoted, so the output parses back to the same JSON. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const yaml_words[] = {
	"y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
	".inf", "-.inf", "+.inf", ".nan",
};

static bool
is_word(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(yaml_words); i++)
		if (strcasecmp(s, yaml_words[i]) == 0)
			return true;
	return false;
}

/* Anything a YAML 1.1 or 1.2 reader could take as a number or a date:
 * strtod/strtoll reads it whole, 0o/0x/0b forms, sexagesimal 1:30, and
 * 2024-01-02. */
static bool
is_numberish(const char *s)
{
	char *end;
	errno = 0;
	(void)strtod(s, &end);
	if (end != s && *end == '\0')
		return true;
	const char *p = s + (*s == '-' || *s == '+');
	if (!isdigit((unsigned char)*p) && *p != '.')
		return false;
	bool only = true;
	for (const char *q = p; *q; q++)
		if (!isdigit((unsigned char)*q) && !strchr("_:.-", *q))
			only = false;
	if (only && (strchr(p, '_') || strchr(p, ':') || strchr(p, '-')))
		return true;
	/* a date or timestamp: 2024-01-02... */
	if (strlen(s) >= 8 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[3]) &&
	    s[4] == '-' && isdigit((unsigned char)s[5]) && strchr(s + 6, '-'))
		return true;
	return p[0] == '0' && p[1] && strchr("oObBxX", p[1]) != NULL;
}

static bool
has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

bool
cli_yaml_needs_quotes(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || is_word(s) || is_numberish(s))
		return true;
	if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0]) && !(s[0] == '-' && n > 1 && s[1] != ' ' &&
	    !isdigit((unsigned char)s[1]) && s[1] != '.'))
		return true;
	if (s[n - 1] == ' ' || s[n - 1] == ':')
		return true;
	if (strstr(s, ": ") || strstr(s, " #") || strchr(s, '\t'))
		return true;
	return has_control(s);
}

static void
indent(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_putc(b, ' ');
}

static void
put_double_quoted(struct buf *b, const char *s)
{
	buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\r': buf_puts(b, "\\r"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				buf_printf(b, "\\x%02x", *p);
			else
				buf_putc(b, (char)*p);
		}
	}
	buf_putc(b, '"');
}

static void
put_single_quoted(struct buf *b, const char *s)
{
	buf_putc(b, '\'');
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			buf_putc(b, '\'');
		buf_putc(b, *p);
	}
	buf_putc(b, '\'');
}

/* A literal block keeps multi-line text readable; it cannot carry other
 * control characters, trailing spaces on a line, or a leading space. */
static bool
literal_ok(const char *s)
{
	if (strchr(s, '\n') == NULL || s[0] == ' ' || s[0] == '\n')
		return false;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\n')
			return false;
		if (*p == ' ' && (p[1] == '\n' || p[1] == '\0'))
			return false;
	}
	return true;
}

static void
put_literal(struct buf *b, const char *s, int ind)
{
	size_t n = strlen(s), trail = 0;
	while (trail < n && s[n - 1 - trail] == '\n')
		trail++;
	buf_puts(b, trail == 0 ? "|-" : trail == 1 ? "|" : "|+");
	buf_putc(b, '\n');
	const char *p = s;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len) {
			indent(b, ind);
			buf_append(b, p, len);
		}
		buf_putc(b, '\n');
		p += len + (nl ? 1 : 0);
	}
}

/* A string after "key: " or "- "; ind is the block indentation. Ends with
 * a newline. */
static void
put_string(struct buf *b, const char *s, int ind)
{
	if (literal_ok(s)) {
		put_literal(b, s, ind);
		return;
	}
	if (!cli_yaml_needs_quotes(s))
		buf_puts(b, s);
	else if (has_control(s) || !strpbrk(s, "\"\\"))
		put_double_quoted(b, s);
	else
		put_single_quoted(b, s);
	buf_putc(b, '\n');
}

static void
put_real(struct buf *b, double d)
{
	char tmp[40];
	if (isnan(d) || isinf(d)) {
		buf_puts(b, isnan(d) ? ".nan" : d > 0 ? ".inf" : "-.inf");
		return;
	}
	snprintf(tmp, sizeof tmp, "%.15g", d);
	if (strtod(tmp, NULL) != d)
		snprintf(tmp, sizeof tmp, "%.17g", d);
	buf_puts(b, tmp);
	if (!strpbrk(tmp, ".eE"))
		buf_puts(b, ".0");
}

static void emit_value(struct buf *b, const json_t *v, int ind);

static void
put_scalar(struct buf *b, const json_t *v, int ind)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		put_string(b, json_string_value(v), ind);
		return;
	case JSON_INTEGER:
		buf_printf(b, "%lld\n", (long long)json_integer_value(v));
		return;
	case JSON_REAL:
		put_real(b, json_real_value(v));
		buf_putc(b, '\n');
		return;
	case JSON_TRUE:
		buf_puts(b, "true\n");
		return;
	case JSON_FALSE:
		buf_puts(b, "false\n");
		return;
	case JSON_NULL:
		buf_puts(b, "null\n");
		return;
	case JSON_OBJECT:
		buf_puts(b, "{}\n");
		return;
	case JSON_ARRAY:
		buf_puts(b, "[]\n");
		return;
	}
}

static bool
is_block(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v) > 0) ||
	    (json_is_array(v) && json_array_size(v) > 0);
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* cli_yaml_dump_titled's key, NULL for plain sorted order. */
static const char *first_key;

static void
put_key(struct buf *b, const char *k)
{
	if (cli_yaml_needs_quotes(k))
		put_double_quoted(b, k);
	else
		buf_puts(b, k);
	buf_putc(b, ':');
}

/* Emits the entries of a non-empty object, the first one without its
 * indentation when first_inline (it follows "- "). */
static void
emit_object(struct buf *b, const json_t *obj, int ind, bool first_inline)
{
	size_t n = json_object_size(obj), i = 0;
	const char **keys = xmalloc(n * sizeof *keys);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v)
		keys[i++] = k;
	qsort(keys, n, sizeof *keys, key_cmp);
	for (i = 1; first_key && i < n; i++)	/* the title key leads */
		if (!strcmp(keys[i], first_key)) {
			const char *t = keys[i];
			memmove(keys + 1, keys, i * sizeof *keys);
			keys[0] = t;
		}
	for (i = 0; i < n; i++) {
		if (i > 0 || !first_inline)
			indent(b, ind);
		put_key(b, keys[i]);
		v = json_object_get(obj, keys[i]);
		if (json_is_object(v) && is_block(v)) {
			buf_putc(b, '\n');
			emit_object(b, v, ind + 2, false);
		} else if (is_block(v)) {
			buf_putc(b, '\n');
			emit_value(b, v, ind);	/* list items at the key's indentation */
		} else {
			buf_putc(b, ' ');
			put_scalar(b, v, ind + 2);
		}
	}
	free(keys);
}

static void
emit_array(struct buf *b, const json_t *arr, int ind)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		indent(b, ind);
		buf_puts(b, "- ");
		if (json_is_object(v) && is_block(v))
			emit_object(b, v, ind + 2, true);
		else if (is_block(v)) {
			buf_putc(b, '\n');
			emit_array(b, v, ind + 2);
		} else
			put_scalar(b, v, ind + 2);
	}
}

static void
emit_value(struct buf *b, const json_t *v, int ind)
{
	if (json_is_object(v) && is_block(v))
		emit_object(b, v, ind, false);
	else if (is_block(v))
		emit_array(b, v, ind);
	else
		put_scalar(b, v, ind + 2);
}

char *
cli_yaml_dump(const json_t *v)
{
	struct buf b = BUF_INIT;
	emit_value(&b, v, 0);
	return buf_steal(&b);
}

char *
cli_yaml_dump_titled(const json_t *v, const char *first)
{
	first_key = first;
	char *s = cli_yaml_dump(v);
	first_key = NULL;
	return s;
}
