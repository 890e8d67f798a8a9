/* Unit tests of the dashboard's embedded assets (web/embed.py -> ui.h's
 * table, looked up by ui.c): every file is there once, its gzip form
 * inflates to the same bytes, and its ETag names its content. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ui.h"

static void
test_index_and_scripts_are_served_under_ui(void **state)
{
	(void)state;
	static const char *const want[] = { "/ui/", "/ui/app.js", "/ui/api.js", "/ui/app.css" };
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct ui_asset *a = ui_asset_find(want[i]);
		assert_non_null(a);
		assert_true(a->len > 0);
	}
	assert_string_equal(ui_asset_find("/ui/")->content_type, "text/html; charset=utf-8");
	assert_null(ui_asset_find("/ui/index.html"));	/* one name per file */
	assert_null(ui_asset_find("/ui/embed.py"));
	assert_null(ui_asset_find("/ui"));
	assert_null(ui_asset_find(""));
}

static void
test_gzip_inflates_to_the_file(void **state)
{
	(void)state;
	for (size_t i = 0; i < ui_nassets; i++) {
		const struct ui_asset *a = &ui_assets[i];
		unsigned char *out = malloc(a->len + 1);
		z_stream z = { 0 };
		assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
		z.next_in = (unsigned char *)a->gz;
		z.avail_in = (uInt)a->gz_len;
		z.next_out = out;
		z.avail_out = (uInt)a->len + 1;
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, a->len);
		assert_memory_equal(out, a->data, a->len);
		assert_true(a->gz_len < a->len);
		inflateEnd(&z);
		free(out);
	}
}

static void
test_etags_are_quoted_and_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < ui_nassets; i++) {
		const char *e = ui_assets[i].etag;
		assert_int_equal(strlen(e), 22);	/* '"' + 20 hex + '"' */
		assert_int_equal(e[0], '"');
		assert_int_equal(e[21], '"');
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(e, ui_assets[j].etag);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_and_scripts_are_served_under_ui),
		cmocka_unit_test(test_gzip_inflates_to_the_file),
		cmocka_unit_test(test_etags_are_quoted_and_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
