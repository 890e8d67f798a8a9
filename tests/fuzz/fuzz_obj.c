/* fuzz_obj.c — libFuzzer target for the manifest input path: obj_parse,
 * then obj_validate, obj_default and json_dumps on every document, as the
 * CLI and the API server run them on untrusted bytes. Build: tests/fuzz/Makefile. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "obj.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct obj_docs docs = { NULL, 0 };
	struct errlist errs = { NULL, 0, 0 };
	/* the kustomization file's YAML 1.1 reading, on the same bytes */
	obj_parse_yaml11((const char *)data, size, &docs, &errs);
	obj_docs_free(&docs);
	errlist_free(&errs);
	obj_parse((const char *)data, size, &docs, &errs);
	for (size_t i = 0; i < errs.n; i++)
		free(field_err_format(&errs.v[i], "fuzz.yaml"));
	errlist_free(&errs);
	for (size_t i = 0; i < docs.n; i++) {
		struct errlist verrs = { NULL, 0, 0 };
		json_t *obj = docs.v[i].obj;
		int rc = obj_validate(obj, &verrs);
		obj_pos_annotate(docs.v[i].pos, &verrs);
		errlist_free(&verrs);
		/* Defaulting must survive any shape, valid or not. */
		json_t *copy = json_deep_copy(obj);
		obj_default(copy);
		if (rc == 0) {
			/* defaulting is idempotent and keeps a valid object valid */
			json_t *again = json_deep_copy(copy);
			obj_default(again);
			if (!json_equal(again, copy))
				abort();
			if (obj_validate(copy, &verrs) != 0)
				abort();
			errlist_free(&verrs);
			obj_validate_update(obj, copy, &verrs);
			errlist_free(&verrs);
			json_decref(again);
		}
		free(json_dumps(copy, JSON_COMPACT));
		json_decref(copy);
	}
	obj_docs_free(&docs);
	return 0;
}
