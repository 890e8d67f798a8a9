/* obs_otlp_pb.c — OTLP's binary protobuf encoding of an
 * ExportTraceServiceRequest (opentelemetry-proto: collector/trace/v1,
 * trace/v1, common/v1, resource/v1), written from the .proto field numbers
 * and the protobuf wire format. It transcodes the request obs_otlp.c builds
 * in the JSON mapping (hex ids, 64-bit integers as decimal strings, enum
 * integers), so the span builders stay one; called on the exporter's pool
 * thread when the protocol is http/protobuf (OTLP's default). */
#include "obs_otlp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* Wire types */
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

/* A nested message: its bytes, then freed. */
static void
pb_msg(struct buf *b, unsigned field, struct buf *inner)
{
	pb_len(b, field, inner->data ? inner->data : "", inner->len);
	buf_free(inner);
}

/* proto3: a string field equal to "" is not written. */
static void
pb_str(struct buf *b, unsigned field, const json_t *s)
{
	const char *v = json_string_value(s);
	if (v && *v)
		pb_len(b, field, v, json_string_length(s));
}

/* A 64-bit integer of the JSON mapping: a decimal string or a number. */
static int
json_u64(const json_t *j, uint64_t *out)
{
	char *end;
	if (json_is_integer(j)) {
		*out = (uint64_t)json_integer_value(j);
		return 0;
	}
	if (!json_is_string(j) || json_string_length(j) == 0)
		return -EINVAL;
	const char *s = json_string_value(j);
	*out = *s == '-' ? (uint64_t)strtoll(s, &end, 10) : strtoull(s, &end, 10);
	return *end ? -EINVAL : 0;
}

static int
unhex(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* An id: hex of exactly bytes bytes, or absent / "" (not written). */
static int
pb_id(struct buf *b, unsigned field, const json_t *j, size_t bytes)
{
	const char *s = json_string_value(j);
	unsigned char id[16];

	if (!s || !*s)
		return j && !json_is_string(j) ? -EINVAL : 0;
	if (strlen(s) != 2 * bytes)
		return -EINVAL;
	for (size_t i = 0; i < bytes; i++) {
		int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		id[i] = (unsigned char)(hi << 4 | lo);
	}
	pb_len(b, field, id, bytes);
	return 0;
}

static int enc_attrs(struct buf *b, unsigned field, const json_t *list);

/* common.v1.AnyValue: string 1, bool 2, int 3, double 4, array 5, kvlist 6 */
static int
enc_any(struct buf *b, const json_t *v)
{
	const json_t *x;
	uint64_t u;
	int rc = 0;

	if ((x = json_object_get(v, "stringValue")) != NULL) {
		if (!json_is_string(x))
			return -EINVAL;
		pb_len(b, 1, json_string_value(x), json_string_length(x));
	} else if ((x = json_object_get(v, "boolValue")) != NULL) {
		pb_tag(b, 2, WT_VARINT);
		pb_varint(b, json_is_true(x));
	} else if ((x = json_object_get(v, "intValue")) != NULL) {
		if ((rc = json_u64(x, &u)) < 0)
			return rc;
		pb_tag(b, 3, WT_VARINT);
		pb_varint(b, u);		/* int64: two's complement, 10 bytes if < 0 */
	} else if ((x = json_object_get(v, "doubleValue")) != NULL) {
		double d = json_number_value(x);
		if (!json_is_number(x))
			return -EINVAL;
		memcpy(&u, &d, sizeof u);
		pb_fixed(b, 4, u, 8);
	} else if ((x = json_object_get(v, "arrayValue")) != NULL) {
		struct buf arr = BUF_INIT;
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(x, "values"), i, e) {
			struct buf one = BUF_INIT;
			if ((rc = enc_any(&one, e)) < 0) {
				buf_free(&one);
				break;
			}
			pb_msg(&arr, 1, &one);
		}
		if (rc == 0)
			pb_msg(b, 5, &arr);
		else
			buf_free(&arr);
	} else if ((x = json_object_get(v, "kvlistValue")) != NULL) {
		struct buf kv = BUF_INIT;
		if ((rc = enc_attrs(&kv, 1, json_object_get(x, "values"))) == 0)
			pb_msg(b, 6, &kv);
		else
			buf_free(&kv);
	} else if (json_object_size(v) != 0) {
		return -EINVAL;		/* bytesValue: V6 sends none */
	}
	return rc;
}

/* repeated common.v1.KeyValue (key 1, value 2) as field number field. */
static int
enc_attrs(struct buf *b, unsigned field, const json_t *list)
{
	size_t i;
	json_t *kv;
	int rc;

	json_array_foreach(list, i, kv) {
		struct buf one = BUF_INIT, val = BUF_INIT;
		pb_str(&one, 1, json_object_get(kv, "key"));
		if ((rc = enc_any(&val, json_object_get(kv, "value"))) < 0) {
			buf_free(&one);
			buf_free(&val);
			return rc;
		}
		pb_msg(&one, 2, &val);
		pb_msg(b, field, &one);
	}
	return 0;
}

static int
enc_u64_field(struct buf *b, unsigned field, const json_t *j, int fixed_bytes)
{
	uint64_t v;
	if (!j)
		return 0;
	if (json_u64(j, &v) < 0)
		return -EINVAL;
	if (v == 0)
		return 0;
	if (fixed_bytes)
		pb_fixed(b, field, v, fixed_bytes);
	else {
		pb_tag(b, field, WT_VARINT);
		pb_varint(b, v);
	}
	return 0;
}

/* trace.v1.Span.Event: time 1 (fixed64), name 2, attributes 3 */
static int
enc_event(struct buf *b, const json_t *ev)
{
	int rc = enc_u64_field(b, 1, json_object_get(ev, "timeUnixNano"), 8);
	pb_str(b, 2, json_object_get(ev, "name"));
	if (rc == 0)
		rc = enc_attrs(b, 3, json_object_get(ev, "attributes"));
	if (rc == 0)
		rc = enc_u64_field(b, 4, json_object_get(ev, "droppedAttributesCount"), 0);
	return rc;
}

/* trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 * name 5, kind 6, start 7, end 8 (fixed64), attributes 9, dropped 10,
 * events 11, status 15 (message 2, code 3), flags 16 (fixed32). */
static int
enc_span(struct buf *b, const json_t *sp)
{
	int rc = pb_id(b, 1, json_object_get(sp, "traceId"), 16);
	size_t i;
	json_t *ev;

	if (rc == 0)
		rc = pb_id(b, 2, json_object_get(sp, "spanId"), 8);
	pb_str(b, 3, json_object_get(sp, "traceState"));
	if (rc == 0)
		rc = pb_id(b, 4, json_object_get(sp, "parentSpanId"), 8);
	pb_str(b, 5, json_object_get(sp, "name"));
	if (rc == 0)
		rc = enc_u64_field(b, 6, json_object_get(sp, "kind"), 0);
	if (rc == 0)
		rc = enc_u64_field(b, 7, json_object_get(sp, "startTimeUnixNano"), 8);
	if (rc == 0)
		rc = enc_u64_field(b, 8, json_object_get(sp, "endTimeUnixNano"), 8);
	if (rc == 0)
		rc = enc_attrs(b, 9, json_object_get(sp, "attributes"));
	if (rc == 0)
		rc = enc_u64_field(b, 10, json_object_get(sp, "droppedAttributesCount"), 0);
	json_array_foreach(json_object_get(sp, "events"), i, ev) {
		struct buf one = BUF_INIT;
		if (rc == 0 && (rc = enc_event(&one, ev)) == 0)
			pb_msg(b, 11, &one);
		else
			buf_free(&one);
	}
	const json_t *st = json_object_get(sp, "status");
	if (rc == 0 && st) {
		struct buf s = BUF_INIT;
		pb_str(&s, 2, json_object_get(st, "message"));
		rc = enc_u64_field(&s, 3, json_object_get(st, "code"), 0);
		pb_msg(b, 15, &s);
	}
	if (rc == 0)
		rc = enc_u64_field(b, 16, json_object_get(sp, "flags"), 4);
	return rc;
}

/* ScopeSpans: scope 1 (name 1, version 2, attributes 3), spans 2,
 * schema_url 3. */
static int
enc_scope_spans(struct buf *b, const json_t *ss)
{
	const json_t *scope = json_object_get(ss, "scope");
	size_t i;
	json_t *sp;
	int rc = 0;

	if (scope) {
		struct buf s = BUF_INIT;
		pb_str(&s, 1, json_object_get(scope, "name"));
		pb_str(&s, 2, json_object_get(scope, "version"));
		rc = enc_attrs(&s, 3, json_object_get(scope, "attributes"));
		pb_msg(b, 1, &s);
	}
	json_array_foreach(json_object_get(ss, "spans"), i, sp) {
		struct buf one = BUF_INIT;
		if (rc == 0 && (rc = enc_span(&one, sp)) == 0)
			pb_msg(b, 2, &one);
		else
			buf_free(&one);
	}
	pb_str(b, 3, json_object_get(ss, "schemaUrl"));
	return rc;
}

/* ExportTraceServiceRequest: resource_spans 1; ResourceSpans: resource 1
 * (attributes 1), scope_spans 2, schema_url 3. */
int
otlp_pb_from_json(const char *json, size_t len, struct buf *out)
{
	json_t *req = json_loadb(json, len, 0, NULL), *rs, *ss;
	size_t i, k;
	int rc = req && json_is_object(req) ? 0 : -EINVAL;

	buf_reset(out);
	json_array_foreach(json_object_get(req, "resourceSpans"), i, rs) {
		struct buf one = BUF_INIT;
		const json_t *res = json_object_get(rs, "resource");
		if (rc == 0 && res) {
			struct buf r = BUF_INIT;
			rc = enc_attrs(&r, 1, json_object_get(res, "attributes"));
			pb_msg(&one, 1, &r);
		}
		json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss) {
			struct buf s = BUF_INIT;
			if (rc == 0 && (rc = enc_scope_spans(&s, ss)) == 0)
				pb_msg(&one, 2, &s);
			else
				buf_free(&s);
		}
		pb_str(&one, 3, json_object_get(rs, "schemaUrl"));
		if (rc == 0)
			pb_msg(out, 1, &one);
		else
			buf_free(&one);
	}
	json_decref(req);
	return rc;
}
