/* fuzz_selector.c — libFuzzer target for the text a request's URL carries
 * into the API server: query decoding (http_query_get), the UTF-8 gate of
 * api_server.c (utf8_valid, utf8_valid_pct, utf8_sanitize) and the label and
 * field selector parsers and matchers of src/obj_selector.c.
 * Build and run: tests/fuzz/Makefile, docs/fuzzing.md.
 *
 * Input: the bytes are a URL query string. Its labelSelector and
 * fieldSelector values are parsed as the API server does; the raw input is
 * also parsed directly as a label selector and as a field selector.
 *
 * Oracle besides the sanitizers: utf8_valid agrees with jansson (the JSON
 * layer the gate protects); utf8_sanitize always gives valid UTF-8 and keeps
 * valid text unchanged; a query that passes utf8_valid_pct yields only UTF-8
 * values; a parsed label selector's canonical form parses back to the same
 * form and the same matches; every message a parser returns becomes JSON. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "obj.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *labels_sets[4];
static json_t *objects[2];

static void
check(bool ok, const char *what, const char *s)
{
	if (!ok) {
		fprintf(stderr, "fuzz_selector: %s broken for \"%s\"\n", what, s);
		abort();
	}
}

static void
setup(void)
{
	if (labels_sets[0])
		return;
	labels_sets[0] = json_pack("{}");
	labels_sets[1] = json_pack("{s:s, s:s}", "app", "web", "tier", "a");
	labels_sets[2] = json_pack("{s:s, s:s, s:s}", "app", "db", "x.io/k", "", "legacy", "1");
	labels_sets[3] = json_pack("{s:s}", "caf\xc3\xa9", "\xc3\xa9");
	objects[0] = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}, s:{s:s}}", "apiVersion",
	    "v1", "kind", "Pod", "metadata", "name", "web-1", "namespace", "default", "spec",
	    "nodeName", "n1", "status", "phase", "Running");
	objects[1] = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
	    "ConfigMap", "metadata", "name", "x");
}

/* Every message must be JSON-able: the API server quotes it in a Status. */
static void
check_message(const char *msg)
{
	char *clean = utf8_sanitize(msg);
	json_t *j = json_string(clean);
	check(j != NULL, "sanitized message", msg);
	json_decref(j);
	free(clean);
}

static void
fuzz_label(const char *s)
{
	struct selector *sel = NULL, *again = NULL;
	char *err = NULL, *err2 = NULL;
	if (selector_parse(s, &sel, &err) < 0) {
		check(err != NULL, "error message", s);
		check_message(err);
		free(err);
		return;
	}
	char *f = selector_format(sel);
	check(selector_parse(f, &again, &err2) == 0, "format parses back", f);
	char *f2 = selector_format(again);
	check(strcmp(f, f2) == 0, "format is canonical", s);
	for (size_t i = 0; i < ARRAY_SIZE(labels_sets); i++)
		check(selector_matches(sel, labels_sets[i]) ==
		    selector_matches(again, labels_sets[i]), "matches after round trip", s);
	check(!selector_empty(sel) || f[0] == '\0', "empty selector formats as \"\"", s);
	free(f);
	free(f2);
	selector_free(sel);
	selector_free(again);
}

static void
fuzz_field(const char *s)
{
	struct field_selector *fs = NULL;
	char *err = NULL;
	static const char *const kinds[] = { "Pod", "ConfigMap", "Event", "Secret" };
	if (field_selector_parse(s, &fs, &err) < 0) {
		check(err != NULL, "error message", s);
		check_message(err);
		free(err);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (field_selector_check_kind(fs, kinds[i], &err) < 0) {
			check_message(err);
			free(err);
			err = NULL;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(objects); i++)
		(void)field_selector_matches(fs, objects[i]);
	field_selector_free(fs);
}

/* raw[0, n) is the input; s its NUL-terminated copy (up to the first NUL). */
static void
fuzz_utf8(const char *raw, size_t n, const char *s)
{
	json_t *j = json_stringn(raw, n);
	check(utf8_valid(raw, n) == (j != NULL), "utf8_valid agrees with jansson", s);
	json_decref(j);
	char *clean = utf8_sanitize(s);
	check(utf8_valid(clean, strlen(clean)), "utf8_sanitize gives UTF-8", s);
	if (utf8_valid(s, strlen(s)))
		check(strcmp(clean, s) == 0, "utf8_sanitize keeps valid text", s);
	free(clean);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "labelSelector", "fieldSelector", "limit",
		"continue", "watch", "resourceVersion", "" };
	setup();
	char *q = xstrndup((const char *)data, size);
	size_t qlen = strlen(q);
	fuzz_utf8((const char *)data, size, q);
	bool gate = utf8_valid_pct(q);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char *v = http_query_get(q, keys[i]);
		if (!v)
			continue;
		if (gate)
			check(utf8_valid(v, strlen(v)), "gate covers query values", q);
		if (gate && i == 0)
			fuzz_label(v);
		else if (gate && i == 1)
			fuzz_field(v);
		free(v);
	}
	if (utf8_valid(q, qlen)) {
		fuzz_label(q);
		fuzz_field(q);
	}
	free(q);
	return 0;
}
