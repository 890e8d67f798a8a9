/* fuzz_aexpr.c — libFuzzer target for the analysis expression language
 * (src/analysis_expr.c): aexpr_check and aexpr_eval_bool on arbitrary text,
 * as the API server and the analysis controller run them on user conditions.
 * The first byte picks one of a few fixed results. Build: tests/fuzz/Makefile. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const results[] = {
	"[0.97, 0.5, \"NaN\", 1, -2, [1, 2], {\"a\": true}]",
	"{\"successRate\": 0.995, \"p99\": 120, \"name\": \"web\", \"none\": null,"
	" \"nested\": {\"a\": [1, 2]}, \"list\": [\"+Inf\", \"-Inf\", \"x\"]}",
	"\"NaN\"",
	"0.97",
	"[]",
	"null",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static json_t *parsed[sizeof(results) / sizeof(results[0])];
	const size_t nres = sizeof(results) / sizeof(results[0]);
	char *expr, *cerr = NULL, *err = NULL, *err2 = NULL;
	bool out = false, out2 = false;
	json_t *result;
	int crc, rc, rc2;

	if (size == 0 || size > 8192)
		return 0;
	if (parsed[0] == NULL)
		for (size_t i = 0; i < nres; i++)
			parsed[i] = json_loads(results[i], JSON_DECODE_ANY, NULL);
	result = parsed[data[0] % nres];
	expr = malloc(size);
	memcpy(expr, data + 1, size - 1);
	expr[size - 1] = '\0';

	crc = aexpr_check(expr, &cerr);
	rc = aexpr_eval_bool(expr, result, &out, &err);
	rc2 = aexpr_eval_bool(expr, result, &out2, &err2);
	/* errors come with a message and a column, successes without */
	if ((crc != 0) != (cerr != NULL) || (rc != 0) != (err != NULL))
		abort();
	if (err && strncmp(err, "column ", 7) != 0)
		abort();
	/* a syntax error is reported the same by both entry points */
	if (crc != 0 && (rc == 0 || strcmp(cerr, err) != 0))
		abort();
	/* evaluation is deterministic */
	if (rc != rc2 || out != out2 || (err && strcmp(err, err2) != 0))
		abort();
	free(cerr);
	free(err);
	free(err2);
	free(expr);
	return 0;
}
