/* obs_otlp_pb.c — OTLP's binary protobuf encoding of an
 * ExportTraceServiceRequest (opentelemetry-proto: collector/trace/v1,
 * trace/v1, common/v1, resource/v1), written from the .proto field numbers
 * and the protobuf wire format. It transcodes the request obs_otlp.c builds
 * in the JSON mapping (hex ids, 64-bit integers as decimal strings, enum
 * integers), so the span builders stay one: a pull parser walks the JSON
 * text once and writes protobuf as it goes (nested lengths patched in
 * place, no tree, no allocation per value). Called on the exporter's pool
 * thread when the protocol is http/protobuf (OTLP's default). */
#include "obs_otlp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- protobuf writer ---------------------------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static void
pb_varint(struct buf *b, uint64_t v)
{
	char t[10];
	size_t n = 0;
	do {
		t[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	buf_append(b, t, n);
}

static void
pb_tag(struct buf *b, unsigned field, int wt)
{
	pb_varint(b, (uint64_t)field << 3 | (unsigned)wt);
}

static void
pb_fixed(struct buf *b, unsigned field, uint64_t v, int bytes)
{
	char t[8];
	pb_tag(b, field, bytes == 8 ? WT_I64 : WT_I32);
	for (int i = 0; i < bytes; i++)
		t[i] = (char)(v >> (8 * i));		/* little-endian */
	buf_append(b, t, (size_t)bytes);
}

static void
pb_len(struct buf *b, unsigned field, const void *p, size_t n)
{
	pb_tag(b, field, WT_LEN);
	pb_varint(b, n);
	buf_append(b, p, n);
}

/* A nested message: its tag and a one-byte length slot now; pb_end writes
 * the length, moving the content when it needs more bytes. */
static size_t
pb_begin(struct buf *b, unsigned field)
{
	pb_tag(b, field, WT_LEN);
	buf_putc(b, 0);
	return b->len - 1;
}

static void
pb_end(struct buf *b, size_t slot)
{
	size_t len = b->len - slot - 1, vlen = 1;
	char t[10] = { 0 };
	for (uint64_t v = len; v > 0x7f; v >>= 7)
		vlen++;
	if (vlen > 1) {
		buf_append(b, t, vlen - 1);	/* room */
		memmove(b->data + slot + vlen, b->data + slot + 1, len);
	}
	for (size_t i = 0; i < vlen; i++, len >>= 7)
		b->data[slot + i] = (char)((len & 0x7f) | (i + 1 < vlen ? 0x80 : 0));
}

/* ---- JSON pull parser --------------------------------------------------------- */

struct jp {
	const char *p, *end;
	int err;
	const char *sp;			/* the last string read: in the input when */
	size_t sn;			/* it had no escapes, else in dec */
	struct buf dec;
};

static void
jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' ||
	    *j->p == '\t'))
		j->p++;
}

static bool
jp_peek(struct jp *j, char c)
{
	jp_ws(j);
	return j->p < j->end && *j->p == c;
}

static bool
jp_eat(struct jp *j, char c)
{
	if (!jp_peek(j, c)) {
		j->err = -EINVAL;
		return false;
	}
	j->p++;
	return true;
}

static int
hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static unsigned
jp_u4(struct jp *j)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = j->p < j->end ? hexval(*j->p++) : -1;
		if (h < 0) {
			j->err = -EINVAL;
			return 0;
		}
		v = v << 4 | (unsigned)h;
	}
	return v;
}

static void
put_utf8(struct buf *b, unsigned cp)
{
	char t[4];
	size_t n;
	if (cp < 0x80)
		t[0] = (char)cp, n = 1;
	else if (cp < 0x800)
		t[0] = (char)(0xc0 | cp >> 6), t[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	else if (cp < 0x10000)
		t[0] = (char)(0xe0 | cp >> 12), t[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
		t[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	else
		t[0] = (char)(0xf0 | cp >> 18), t[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
		t[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), t[3] = (char)(0x80 | (cp & 0x3f)),
		n = 4;
	buf_append(b, t, n);
}

/* A string: j->sp, j->sn (not NUL-terminated). */
static bool
jp_string(struct jp *j)
{
	static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
	if (!jp_eat(j, '"'))
		return false;
	/* the common case: no escape, the string is the input itself */
	const char *q = memchr(j->p, '"', (size_t)(j->end - j->p));
	if (q && !memchr(j->p, '\\', (size_t)(q - j->p))) {
		j->sp = j->p;
		j->sn = (size_t)(q - j->p);
		j->p = q + 1;
		return true;
	}
	j->dec.len = 0;
	while (j->p < j->end && *j->p != '"') {
		const char *run = j->p;
		while (j->p < j->end && *j->p != '"' && *j->p != '\\')
			j->p++;
		buf_append(&j->dec, run, (size_t)(j->p - run));
		if (j->p >= j->end || *j->p != '\\')
			continue;
		if (++j->p >= j->end)
			break;
		const char *e = strchr(esc_in, *j->p);
		if (*j->p == 'u') {
			j->p++;
			unsigned cp = jp_u4(j);
			if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
			    j->p[1] == 'u') {
				j->p += 2;
				unsigned lo = jp_u4(j);
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			put_utf8(&j->dec, cp);
		} else if (e && *j->p) {
			buf_putc(&j->dec, esc_out[e - esc_in]);
			j->p++;
		} else {
			j->err = -EINVAL;
			return false;
		}
	}
	j->sp = j->dec.data ? j->dec.data : "";
	j->sn = j->dec.len;
	return jp_eat(j, '"') && j->err == 0;
}

/* Object members: jp_obj_begin, then jp_key until it returns false (the
 * '}' is eaten); the key is in j->s, the value is next. */
static bool
jp_key(struct jp *j, bool *first)
{
	if (jp_peek(j, '}')) {
		j->p++;
		return false;
	}
	if (!*first && !jp_eat(j, ','))
		return false;
	*first = false;
	return jp_string(j) && jp_eat(j, ':');
}

static bool
jp_elem(struct jp *j, bool *first)
{
	if (jp_peek(j, ']')) {
		j->p++;
		return false;
	}
	if (!*first && !jp_eat(j, ','))
		return false;
	*first = false;
	return j->err == 0;
}

static bool
key_is_n(const struct jp *j, const char *k, size_t n)
{
	return j->sn == n && memcmp(j->sp, k, n) == 0;
}
#define key_is(j, lit) key_is_n(j, lit, sizeof lit - 1)

/* Skips any value. */
static void
jp_skip(struct jp *j)
{
	bool first = true;
	jp_ws(j);
	if (j->p >= j->end) {
		j->err = -EINVAL;
	} else if (*j->p == '{') {
		j->p++;
		while (j->err == 0 && jp_key(j, &first))
			jp_skip(j);
	} else if (*j->p == '[') {
		j->p++;
		while (j->err == 0 && jp_elem(j, &first))
			jp_skip(j);
	} else if (*j->p == '"') {
		jp_string(j);
	} else {
		while (j->p < j->end && strchr("-+.0123456789eEtruefalsn", *j->p))
			j->p++;
	}
}

/* A number or a string holding one (the JSON mapping's int64) as u64
 * (two's complement for a negative one). */
static uint64_t
jp_u64(struct jp *j)
{
	char t[32], *end;
	size_t n;
	jp_ws(j);
	if (jp_peek(j, '"')) {
		if (!jp_string(j))
			return 0;
		n = j->sn;
		if (n == 0 || n >= sizeof t) {
			j->err = -EINVAL;
			return 0;
		}
		memcpy(t, j->sp, n);
	} else {
		const char *s = j->p;
		while (j->p < j->end && (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')))
			j->p++;
		n = (size_t)(j->p - s);
		if (n == 0 || n >= sizeof t) {
			j->err = -EINVAL;
			return 0;
		}
		memcpy(t, s, n);
	}
	t[n] = '\0';
	uint64_t v = t[0] == '-' ? (uint64_t)strtoll(t, &end, 10) : strtoull(t, &end, 10);
	if (*end)
		j->err = -EINVAL;
	return v;
}

static double
jp_double(struct jp *j)
{
	char t[64], *end;
	size_t n = 0;
	jp_ws(j);
	while (j->p + n < j->end && n < sizeof t - 1 && strchr("-+.0123456789eE", j->p[n]))
		n++;
	memcpy(t, j->p, n);
	t[n] = '\0';
	double d = strtod(t, &end);
	if (n == 0 || *end)
		j->err = -EINVAL;
	j->p += n;
	return d;
}

/* ---- the messages --------------------------------------------------------------- */

/* proto3: "" is not written. */
static void
str_field(struct jp *j, struct buf *b, unsigned field)
{
	if (jp_string(j) && j->sn)
		pb_len(b, field, j->sp, j->sn);
}

/* An id: hex of exactly bytes bytes, or "" (not written). */
static void
id_field(struct jp *j, struct buf *b, unsigned field, size_t bytes)
{
	unsigned char id[16];
	if (!jp_string(j) || j->sn == 0)
		return;
	if (j->sn != 2 * bytes) {
		j->err = -EINVAL;
		return;
	}
	for (size_t i = 0; i < bytes; i++) {
		int hi = hexval(j->sp[2 * i]), lo = hexval(j->sp[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			j->err = -EINVAL;
			return;
		}
		id[i] = (unsigned char)(hi << 4 | lo);
	}
	pb_len(b, field, id, bytes);
}

static void
u64_field(struct jp *j, struct buf *b, unsigned field, int fixed_bytes)
{
	uint64_t v = jp_u64(j);
	if (j->err || v == 0)
		return;
	if (fixed_bytes)
		pb_fixed(b, field, v, fixed_bytes);
	else {
		pb_tag(b, field, WT_VARINT);
		pb_varint(b, v);
	}
}

static void enc_kvs(struct jp *j, struct buf *b, unsigned field);

/* common.v1.AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6 */
static void
enc_any(struct jp *j, struct buf *b)
{
	bool first = true;
	if (!jp_eat(j, '{'))
		return;
	while (j->err == 0 && jp_key(j, &first)) {
		if (key_is(j, "stringValue")) {
			if (jp_string(j))
				pb_len(b, 1, j->sp, j->sn);
		} else if (key_is(j, "boolValue")) {
			jp_ws(j);
			bool t = j->end - j->p >= 4 && memcmp(j->p, "true", 4) == 0;
			jp_skip(j);
			pb_tag(b, 2, WT_VARINT);
			pb_varint(b, t);
		} else if (key_is(j, "intValue")) {
			uint64_t v = jp_u64(j);
			pb_tag(b, 3, WT_VARINT);
			pb_varint(b, v);	/* int64: two's complement, 10 bytes if < 0 */
		} else if (key_is(j, "doubleValue")) {
			double d = jp_double(j);
			uint64_t u;
			memcpy(&u, &d, sizeof u);
			pb_fixed(b, 4, u, 8);
		} else if (key_is(j, "arrayValue") || key_is(j, "kvlistValue")) {
			bool kv = key_is(j, "kvlistValue"), f2 = true;
			size_t m = pb_begin(b, kv ? 6 : 5);
			if (!jp_eat(j, '{'))
				return;
			while (j->err == 0 && jp_key(j, &f2)) {
				if (!key_is(j, "values")) {
					jp_skip(j);
					continue;
				}
				if (kv) {
					enc_kvs(j, b, 1);
					continue;
				}
				bool f3 = true;
				if (!jp_eat(j, '['))
					return;
				while (j->err == 0 && jp_elem(j, &f3)) {
					size_t e = pb_begin(b, 1);
					enc_any(j, b);
					pb_end(b, e);
				}
			}
			pb_end(b, m);
		} else {
			j->err = -EINVAL;	/* bytesValue: V6 sends none */
		}
	}
}

/* repeated common.v1.KeyValue (key 1, value 2) as field number field. */
static void
enc_kvs(struct jp *j, struct buf *b, unsigned field)
{
	bool first = true;
	if (!jp_eat(j, '['))
		return;
	while (j->err == 0 && jp_elem(j, &first)) {
		bool f2 = true;
		size_t m = pb_begin(b, field);
		if (!jp_eat(j, '{'))
			return;
		while (j->err == 0 && jp_key(j, &f2)) {
			if (key_is(j, "key")) {
				str_field(j, b, 1);
			} else if (key_is(j, "value")) {
				size_t v = pb_begin(b, 2);
				enc_any(j, b);
				pb_end(b, v);
			} else {
				jp_skip(j);
			}
		}
		pb_end(b, m);
	}
}

/* Calls fn for each element of an array, each as a nested message field. */
static void
each_msg(struct jp *j, struct buf *b, unsigned field, void (*fn)(struct jp *, struct buf *))
{
	bool first = true;
	if (!jp_eat(j, '['))
		return;
	while (j->err == 0 && jp_elem(j, &first)) {
		size_t m = pb_begin(b, field);
		fn(j, b);
		pb_end(b, m);
	}
}

/* Walks an object: fn gets each key (in j->s) and reads its value. */
#define FOR_MEMBERS(j, first) \
	for (bool first = (jp_eat(j, '{'), true); (j)->err == 0 && jp_key(j, &first);)

/* trace.v1.Span.Event: time 1 (fixed64), name 2, attributes 3, dropped 4 */
static void
enc_event(struct jp *j, struct buf *b)
{
	FOR_MEMBERS(j, f) {
		if (key_is(j, "timeUnixNano"))
			u64_field(j, b, 1, 8);
		else if (key_is(j, "name"))
			str_field(j, b, 2);
		else if (key_is(j, "attributes"))
			enc_kvs(j, b, 3);
		else if (key_is(j, "droppedAttributesCount"))
			u64_field(j, b, 4, 0);
		else
			jp_skip(j);
	}
}

/* trace.v1.Status: message 2, code 3 */
static void
enc_status(struct jp *j, struct buf *b)
{
	FOR_MEMBERS(j, f) {
		if (key_is(j, "message"))
			str_field(j, b, 2);
		else if (key_is(j, "code"))
			u64_field(j, b, 3, 0);
		else
			jp_skip(j);
	}
}

/* trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 * name 5, kind 6, start 7, end 8 (fixed64), attributes 9, dropped 10,
 * events 11, status 15, flags 16 (fixed32). */
static void
enc_span(struct jp *j, struct buf *b)
{
	static const struct { const char *key; unsigned field; int kind; } tab[] = {
		{ "traceId", 1, 16 }, { "spanId", 2, 8 }, { "parentSpanId", 4, 8 },
		{ "traceState", 3, 's' }, { "name", 5, 's' }, { "kind", 6, 0 },
		{ "startTimeUnixNano", 7, 'f' }, { "endTimeUnixNano", 8, 'f' },
		{ "droppedAttributesCount", 10, 0 }, { "droppedEventsCount", 12, 0 },
		{ "flags", 16, '4' },
	};
	FOR_MEMBERS(j, f) {
		size_t i = 0;
		while (i < ARRAY_SIZE(tab) && !key_is_n(j, tab[i].key, strlen(tab[i].key)))
			i++;
		if (i < ARRAY_SIZE(tab)) {
			int k = tab[i].kind;
			if (k == 16 || k == 8)
				id_field(j, b, tab[i].field, (size_t)k);
			else if (k == 's')
				str_field(j, b, tab[i].field);
			else
				u64_field(j, b, tab[i].field, k == 'f' ? 8 : k == '4' ? 4 : 0);
		} else if (key_is(j, "attributes")) {
			enc_kvs(j, b, 9);
		} else if (key_is(j, "events")) {
			each_msg(j, b, 11, enc_event);
		} else if (key_is(j, "status")) {
			size_t m = pb_begin(b, 15);
			enc_status(j, b);
			pb_end(b, m);
		} else {
			jp_skip(j);
		}
	}
}

/* InstrumentationScope: name 1, version 2, attributes 3 */
static void
enc_scope(struct jp *j, struct buf *b)
{
	FOR_MEMBERS(j, f) {
		if (key_is(j, "name"))
			str_field(j, b, 1);
		else if (key_is(j, "version"))
			str_field(j, b, 2);
		else if (key_is(j, "attributes"))
			enc_kvs(j, b, 3);
		else
			jp_skip(j);
	}
}

/* ScopeSpans: scope 1, spans 2, schema_url 3 */
static void
enc_scope_spans(struct jp *j, struct buf *b)
{
	FOR_MEMBERS(j, f) {
		if (key_is(j, "scope")) {
			size_t m = pb_begin(b, 1);
			enc_scope(j, b);
			pb_end(b, m);
		} else if (key_is(j, "spans")) {
			each_msg(j, b, 2, enc_span);
		} else if (key_is(j, "schemaUrl")) {
			str_field(j, b, 3);
		} else {
			jp_skip(j);
		}
	}
}

/* Resource: attributes 1 */
static void
enc_resource(struct jp *j, struct buf *b)
{
	FOR_MEMBERS(j, f) {
		if (key_is(j, "attributes"))
			enc_kvs(j, b, 1);
		else
			jp_skip(j);
	}
}

/* ResourceSpans: resource 1, scope_spans 2, schema_url 3 */
static void
enc_resource_spans(struct jp *j, struct buf *b)
{
	FOR_MEMBERS(j, f) {
		if (key_is(j, "resource")) {
			size_t m = pb_begin(b, 1);
			enc_resource(j, b);
			pb_end(b, m);
		} else if (key_is(j, "scopeSpans")) {
			each_msg(j, b, 2, enc_scope_spans);
		} else if (key_is(j, "schemaUrl")) {
			str_field(j, b, 3);
		} else {
			jp_skip(j);
		}
	}
}

/* ExportTraceServiceRequest: resource_spans 1 */
int
otlp_pb_from_json(const char *json, size_t len, struct buf *out)
{
	struct jp j = { json, json + len, 0, "", 0, BUF_INIT };

	buf_reset(out);
	FOR_MEMBERS(&j, f) {
		if (key_is(&j, "resourceSpans"))
			each_msg(&j, out, 1, enc_resource_spans);
		else
			jp_skip(&j);
	}
	jp_ws(&j);
	if (j.err == 0 && j.p != j.end)
		j.err = -EINVAL;
	buf_free(&j.dec);
	return j.err;
}
