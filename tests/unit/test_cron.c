/* Unit tests of cron.c: the schedule parser (fields, ranges, steps, lists,
 * names, macros, errors) and cron_next in UTC and in IANA zones across the
 * DST jumps (a skipped wall time does not fire, a repeated one fires at both
 * instants, as robfig/cron on Kubernetes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "util.h"

/* "2026-03-08T06:59:00Z" -> seconds */
static int64_t
at(const char *s)
{
	time_t t;
	assert_int_equal(time_parse_rfc3339(s, &t), 0);
	return (int64_t)t;
}

static void
assert_next(const char *spec, const char *zone, const char *from, const char *want)
{
	struct cron c;
	const char *err = NULL;
	assert_int_equal(cron_parse(spec, &c, &err), 0);
	int64_t got = cron_next(&c, zone, at(from));
	char b[32];
	time_format_rfc3339((time_t)got, b);
	if (strcmp(b, want)) {
		print_error("%s in %s after %s: got %s want %s\n", spec, zone ? zone : "UTC",
		    from, b, want);
		fail();
	}
}

static void
test_parse_fields(void **state)
{
	(void)state;
	struct cron c;
	const char *err = NULL;
	assert_int_equal(cron_parse("*/15 9-17 * JAN-mar,dec mon-fri", &c, &err), 0);
	assert_true(c.minute == (1ull << 0 | 1ull << 15 | 1ull << 30 | 1ull << 45));
	assert_true(c.hour == ((1ull << 18) - 1) - ((1ull << 9) - 1));
	assert_true(c.month == (1ull << 1 | 1ull << 2 | 1ull << 3 | 1ull << 12));
	assert_true(c.dow == 0x3e);
	assert_true(c.dom_star && !c.dow_star);
	assert_int_equal(cron_parse("5/20 0 1,15 * ?", &c, &err), 0);
	assert_true(c.minute == (1ull << 5 | 1ull << 25 | 1ull << 45));
	assert_true(c.dow_star);
	assert_int_equal(cron_parse("@hourly", &c, &err), 0);
	assert_true(c.minute == 1 && c.hour == (1ull << 24) - 1);
	static const char *const bad[] = { "", "* * * *", "* * * * * *", "60 * * * *",
		"* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "5-1 * * * *",
		"*/0 * * * *", "a * * * *", "1,,2 * * * *", "@every 5m", "TZ=UTC * * * * *",
		"* * * foo *" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = NULL;
		if (cron_parse(bad[i], &c, &err) == 0) {
			print_error("accepted \"%s\"\n", bad[i]);
			fail();
		}
		assert_non_null(err);
	}
}

static void
test_next_utc(void **state)
{
	(void)state;
	assert_next("* * * * *", "UTC", "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z");
	assert_next("* * * * *", "UTC", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z");
	assert_next("*/15 * * * *", NULL, "2026-01-01T10:16:00Z", "2026-01-01T10:30:00Z");
	assert_next("0 0 29 2 *", "UTC", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z");
	assert_next("@monthly", "", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z");
	assert_next("@yearly", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z");
	/* 2026-01-01 is a Thursday; both day fields restricted: either day */
	assert_next("0 12 15 * mon", "UTC", "2026-01-01T00:00:00Z", "2026-01-05T12:00:00Z");
	assert_next("0 12 15 * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-15T12:00:00Z");
	assert_next("30 23 * * sun", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T23:30:00Z");
	/* never (31 February): none within the horizon */
	struct cron c;
	const char *err;
	assert_int_equal(cron_parse("0 0 31 2 *", &c, &err), 0);
	assert_true(cron_next(&c, "UTC", at("2026-01-01T00:00:00Z")) == -1);
}

static void
test_next_in_zone_and_dst(void **state)
{
	(void)state;
	/* 09:00 in New York: EST (UTC-5) in January, EDT (UTC-4) in July */
	assert_next("0 9 * * *", "America/New_York", "2026-01-10T00:00:00Z",
	    "2026-01-10T14:00:00Z");
	assert_next("0 9 * * *", "America/New_York", "2026-07-10T00:00:00Z",
	    "2026-07-10T13:00:00Z");
	/* 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist that
	 * day, the next one is on 03-09 at 02:30 EDT */
	assert_next("30 2 * * *", "America/New_York", "2026-03-08T06:00:00Z",
	    "2026-03-09T06:30:00Z");
	/* hourly across the jump: 01:00 EST, then 03:00 EDT */
	assert_next("0 * * * *", "America/New_York", "2026-03-08T06:00:00Z",
	    "2026-03-08T07:00:00Z");
	/* 2026-11-01 01:00-01:59 happens twice: 01:30 EDT (UTC-4), then
	 * 01:30 EST (UTC-5), then 11-02 at 01:30 EST */
	assert_next("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z",
	    "2026-11-01T05:30:00Z");
	assert_next("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z",
	    "2026-11-01T06:30:00Z");
	assert_next("30 1 * * *", "America/New_York", "2026-11-01T06:30:00Z",
	    "2026-11-02T06:30:00Z");
	/* a daily 00:30 in a zone whose jump is at midnight (Santiago,
	 * 2026-09-06 00:00 -> 01:00): that day has no 00:30 */
	assert_next("30 0 * * *", "America/Santiago", "2026-09-05T12:00:00Z",
	    "2026-09-07T03:30:00Z");
	/* Berlin: midnight CET (UTC+1) */
	assert_next("@daily", "Europe/Berlin", "2026-01-10T12:00:00Z", "2026-01-10T23:00:00Z");
	/* TZ is restored */
	assert_null(getenv("TZ"));
	assert_true(cron_zone_valid("Europe/Berlin"));
	assert_true(cron_zone_valid("UTC"));
	assert_false(cron_zone_valid("Mars/Olympus"));
	assert_false(cron_zone_valid("../etc/passwd"));
}

int
main(void)
{
	unsetenv("TZ");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_next_utc),
		cmocka_unit_test(test_next_in_zone_and_dst),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
