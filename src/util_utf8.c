/* util_utf8.c — UTF-8 checks for text that must become JSON: the API
 * server refuses request paths and queries that are not UTF-8 and quotes
 * client text through utf8_sanitize (jansson refuses invalid UTF-8). Kept
 * out of util.c so the static v6-shim does not carry it. */
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s[0, n), or 0 (RFC 3629). */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 :
	    s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
		return 0;	/* overlong, surrogate, above U+10FFFF */
	return len;
}

bool
utf8_valid(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0, l; i < n; i += l)
		if ((l = utf8_seq(u + i, n - i)) == 0)
			return false;
	return true;
}

static int
hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

bool
utf8_valid_pct(const char *s)
{
	size_t n = strlen(s), o = 0;
	char *d = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			d[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			d[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	bool ok = utf8_valid(d, o);
	free(d);
	return ok;
}

char *
utf8_sanitize(const char *s)
{
	struct buf b = BUF_INIT;
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0, l; i < n; i += l ? l : 1) {
		if ((l = utf8_seq(u + i, n - i)) != 0)
			buf_append(&b, s + i, l);
		else
			buf_puts(&b, "\xef\xbf\xbd");
	}
	return buf_steal(&b);
}

void
utf8_json_quote(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	buf_putc(b, '"');
	size_t i = 0;
	while (i < n) {
		unsigned char c = u[i];
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			size_t r = i + 1;
			while (r < n && u[r] >= 0x20 && u[r] < 0x80 && u[r] != '"' && u[r] != '\\')
				r++;
			buf_append(b, s + i, r - i);
			i = r;
		} else if (c >= 0x80) {
			size_t l = utf8_seq(u + i, n - i);
			if (l)
				buf_append(b, s + i, l);
			else
				buf_puts(b, "\xef\xbf\xbd");
			i += l ? l : 1;
		} else {
			char esc[7] = { '\\', c, 0 };
			if (c == '\n' || c == '\r' || c == '\t')
				esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			else if (c < 0x20)
				memcpy(esc + 1, (char[]){ 'u', '0', '0', hex[c >> 4], hex[c & 15] }, 5);
			buf_puts(b, esc);
			i++;
		}
	}
	buf_putc(b, '"');
}
