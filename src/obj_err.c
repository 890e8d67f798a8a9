/* obj_err.c — lists of field errors (struct errlist) that validation, the
 * parser and the API server fill, and their "file:line:col: field: msg"
 * rendering for the CLI. */
#include "obj.h"

#include <stdlib.h>
#include <string.h>

static void
errlist_vadd(struct errlist *e, int line, int col, const char *field,
    const char *reason, const char *fmt, va_list ap)
{
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 8;
		e->v = xrealloc(e->v, e->cap * sizeof *e->v);
	}
	struct field_err *fe = &e->v[e->n++];
	fe->field = xstrdup(field ? field : "");
	fe->reason = xstrdup(reason);
	fe->message = xvasprintf(fmt, ap);
	fe->line = line;
	fe->col = col;
}

void
errlist_add(struct errlist *e, const char *field, const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errlist_vadd(e, 0, 0, field, reason, fmt, ap);
	va_end(ap);
}

void
errlist_add_at(struct errlist *e, int line, int col, const char *field,
    const char *reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	errlist_vadd(e, line, col, field, reason, fmt, ap);
	va_end(ap);
}

void
errlist_free(struct errlist *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].field);
		free(e->v[i].reason);
		free(e->v[i].message);
	}
	free(e->v);
	e->v = NULL;
	e->n = e->cap = 0;
}

char *
field_err_format(const struct field_err *fe, const char *file)
{
	struct buf b = BUF_INIT;
	if (file && *file) {
		buf_puts(&b, file);
		if (fe->line > 0) {
			buf_printf(&b, ":%d", fe->line);
			if (fe->col > 0)
				buf_printf(&b, ":%d", fe->col);
		}
		buf_puts(&b, ": ");
	} else if (fe->line > 0) {
		buf_printf(&b, "line %d:%d: ", fe->line, fe->col);
	}
	if (fe->field[0])
		buf_printf(&b, "%s: ", fe->field);
	buf_puts(&b, fe->message);
	return buf_steal(&b);
}
