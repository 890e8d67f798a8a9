/* test_api_uid.c — object uids (api_new_uid): RFC 4122 version 4 strings,
 * lower-case hex in 8-4-4-4-12 groups, and no two alike. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api.h"

#define N_UIDS 1000

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_uids_are_version_4_and_distinct(void **state)
{
	(void)state;
	char *uids[N_UIDS];
	for (int n = 0; n < N_UIDS; n++) {
		json_t *u = api_new_uid();
		const char *s = json_string_value(u);
		assert_non_null(s);
		assert_int_equal(strlen(s), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(s[i], '-');
			else
				assert_non_null(strchr("0123456789abcdef", s[i]));
		}
		assert_int_equal(s[14], '4');
		assert_non_null(strchr("89ab", s[19]));
		uids[n] = strdup(s);
		json_decref(u);
	}
	qsort(uids, N_UIDS, sizeof uids[0], cmp_str);
	for (int n = 1; n < N_UIDS; n++)
		assert_string_not_equal(uids[n - 1], uids[n]);
	for (int n = 0; n < N_UIDS; n++)
		free(uids[n]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uids_are_version_4_and_distinct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
