/* test_util_utf8.c — unit tests of the UTF-8 checks of src/util.c that keep
 * request text that is not UTF-8 out of the API server's JSON (issue 9: one
 * such request crashed the server). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util.h"

static bool
valid(const char *s)
{
	return utf8_valid(s, strlen(s));
}

static void
test_utf8_valid_follows_rfc3629(void **state)
{
	(void)state;
	assert_true(valid(""));
	assert_true(valid("app=web"));
	assert_true(valid("caf\xc3\xa9"));		/* é */
	assert_true(valid("\xe2\x82\xac"));		/* € */
	assert_true(valid("\xf0\x9f\x98\x80"));		/* U+1F600 */
	assert_true(valid("\xf4\x8f\xbf\xbf"));		/* U+10FFFF */
	assert_false(valid("caf\xe9"));			/* Latin-1 */
	assert_false(valid("\xff\xfe"));
	assert_false(valid("\xc0\xaf"));		/* overlong '/' */
	assert_false(valid("\xe0\x80\xaf"));		/* overlong, 3 bytes */
	assert_false(valid("\xed\xa0\x80"));		/* a surrogate */
	assert_false(valid("\xf4\x90\x80\x80"));	/* above U+10FFFF */
	assert_false(valid("\xe2\x82"));		/* cut short */
	assert_false(valid("\x80"));			/* a lone continuation */
	assert_true(utf8_valid("a\0b", 3));		/* NUL is a character */
}

static void
test_utf8_valid_pct_decodes_first(void **state)
{
	(void)state;
	assert_true(utf8_valid_pct("labelSelector=app%3Dcaf%C3%A9"));
	assert_false(utf8_valid_pct("labelSelector=a%3D%FF"));
	assert_false(utf8_valid_pct("x=%C3%28"));
	assert_true(utf8_valid_pct("x=%zz&y=%"));	/* malformed escapes stay literal */
	assert_true(utf8_valid_pct("a+b=%20"));
	assert_false(utf8_valid_pct("a=caf\xe9"));	/* raw bytes too */
}

static void
test_utf8_sanitize_replaces_bad_bytes(void **state)
{
	(void)state;
	char *s = utf8_sanitize("caf\xe9 \xc3\xa9");
	assert_string_equal(s, "caf\xef\xbf\xbd \xc3\xa9");
	assert_true(valid(s));
	free(s);
	s = utf8_sanitize("ok");
	assert_string_equal(s, "ok");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_valid_follows_rfc3629),
		cmocka_unit_test(test_utf8_valid_pct_decodes_first),
		cmocka_unit_test(test_utf8_sanitize_replaces_bad_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
