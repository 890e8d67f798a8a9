/* cron.c — the cron schedule parser and next-time function of cron.h,
 * following robfig/cron v3 (the library kube-controller-manager's CronJob
 * controller uses): field syntax, day-of-month / day-of-week OR rule when
 * both are restricted, and the walk over wall-clock minutes in a zone. */
#include "cron.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct field {
	int min, max;
	const char *const *names;	/* names[i] is value min + i (NULL: none) */
};

static const char *const months[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
	"aug", "sep", "oct", "nov", "dec", NULL };
static const char *const days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const struct field fields[5] = {
	{ 0, 59, NULL }, { 0, 23, NULL }, { 1, 31, NULL }, { 1, 12, months }, { 0, 6, days },
};

static const struct { const char *name, *spec; } macros[] = {
	{ "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" },
	{ "@monthly", "0 0 1 * *" }, { "@weekly", "0 0 * * 0" },
	{ "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" }, { "@hourly", "0 * * * *" },
};

/* A number or a name of f; -1 when neither. */
static int
value(const char *s, size_t n, const struct field *f)
{
	if (n == 0)
		return -1;
	if (f->names)
		for (int i = 0; f->names[i]; i++)
			if (strlen(f->names[i]) == n && strncasecmp(s, f->names[i], n) == 0)
				return f->min + i;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > 1000)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* One comma-separated part: *, ?, A, A-B, with /STEP. */
static int
part(const char *s, size_t n, const struct field *f, uint64_t *bits, bool *star,
    const char **err)
{
	const char *slash = memchr(s, '/', n);
	size_t rn = slash ? (size_t)(slash - s) : n;
	int lo, hi, step = 1;
	if (rn == 1 && (*s == '*' || *s == '?')) {
		lo = f->min;
		hi = f->max;
		*star = !slash;
	} else {
		const char *dash = memchr(s, '-', rn);
		lo = value(s, dash ? (size_t)(dash - s) : rn, f);
		hi = dash ? value(dash + 1, rn - (size_t)(dash + 1 - s), f) : lo;
		if (lo < 0 || hi < 0) {
			*err = "failed to parse int";
			return -EINVAL;
		}
		if (slash && !dash)
			hi = f->max;	/* "N/S" means N-max/S */
	}
	if (slash) {
		step = value(slash + 1, n - rn - 1, f);
		if (step <= 0) {
			*err = "step of range should be a positive number";
			return -EINVAL;
		}
	}
	if (lo < f->min || hi > f->max) {
		*err = "value out of range";
		return -EINVAL;
	}
	if (lo > hi) {
		*err = "beginning of range after end";
		return -EINVAL;
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ull << v;
	return 0;
}

static int
parse_field(const char *s, size_t n, const struct field *f, uint64_t *bits, bool *star,
    const char **err)
{
	*bits = 0;
	*star = false;
	while (n > 0) {
		const char *comma = memchr(s, ',', n);
		size_t pn = comma ? (size_t)(comma - s) : n;
		bool st = false;
		int rc = part(s, pn, f, bits, &st, err);
		if (rc < 0)
			return rc;
		*star |= st;
		if (!comma)
			return 0;
		s += pn + 1;
		n -= pn + 1;
		if (n == 0) {
			*err = "empty list item";
			return -EINVAL;
		}
	}
	*err = "empty field";
	return -EINVAL;
}

int
cron_parse(const char *spec, struct cron *c, const char **err)
{
	memset(c, 0, sizeof *c);
	while (*spec == ' ' || *spec == '\t')
		spec++;
	if (*spec == '@') {
		for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
			if (strcmp(spec, macros[i].name) == 0)
				return cron_parse(macros[i].spec, c, err);
		*err = "unrecognized descriptor";
		return -EINVAL;
	}
	if (strncmp(spec, "TZ=", 3) == 0 || strncmp(spec, "CRON_TZ=", 8) == 0) {
		*err = "TZ/CRON_TZ in schedule is not supported, use the timeZone field";
		return -EINVAL;
	}
	uint64_t *bits[5] = { &c->minute, &c->hour, &c->dom, &c->month, &c->dow };
	bool stars[5];
	int nf = 0;
	const char *p = spec;
	while (*p) {
		size_t n = strcspn(p, " \t");
		if (nf == 5) {
			*err = "expected exactly 5 fields";
			return -EINVAL;
		}
		int rc = parse_field(p, n, &fields[nf], bits[nf], &stars[nf], err);
		if (rc < 0)
			return rc;
		nf++;
		p += n;
		p += strspn(p, " \t");
	}
	if (nf != 5) {
		*err = "expected exactly 5 fields";
		return -EINVAL;
	}
	/* Sunday is 0; robfig/cron also accepts 7 nowhere: 0-6 only. */
	c->dom_star = stars[2];
	c->dow_star = stars[4];
	return 0;
}

/* The zone's TZ file exists (tzset falls back to UTC silently). */
bool
cron_zone_valid(const char *zone)
{
	if (!zone || !*zone || strcmp(zone, "UTC") == 0)
		return true;
	if (zone[0] == '/' || strstr(zone, "..") || strlen(zone) > 200)
		return false;
	char path[256];
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char magic[4] = { 0 };
	bool ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return ok;
}

/* Runs the conversions in zone: TZ set for the call, restored after (the
 * loop is single-threaded; localtime_r reads TZ through tzset). */
struct tzswap {
	char *saved;
	bool had;
};

static void
tz_enter(struct tzswap *s, const char *zone)
{
	const char *cur = getenv("TZ");
	s->had = cur != NULL;
	s->saved = cur ? strdup(cur) : NULL;
	if (zone && *zone)
		setenv("TZ", zone, 1);
	tzset();
}

static void
tz_leave(struct tzswap *s)
{
	if (s->had && s->saved)
		setenv("TZ", s->saved, 1);
	else
		unsetenv("TZ");
	free(s->saved);
	tzset();
}

static bool
day_matches(const struct cron *c, const struct tm *tm)
{
	bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
	if (c->dom_star || c->dow_star)
		return dom && dow;
	return dom || dow;
}

/* Walks time in the zone as robfig/cron's Next does: months and days by
 * the calendar (to local midnight), hours and minutes by adding real time.
 * So a wall time a DST jump skips never fires, and one the fall-back
 * repeats fires twice (once per instant), as on Kubernetes. */
int64_t
cron_next(const struct cron *c, const char *zone, int64_t t_s)
{
	struct tzswap sw;
	tz_enter(&sw, zone);
	int64_t result = -1;
	time_t t = (time_t)(t_s - ((t_s % 60) + 60) % 60 + 60);	/* next whole minute */
	time_t limit = t + (time_t)5 * 366 * 86400;
	while (t <= limit) {
		struct tm tm;
		localtime_r(&t, &tm);
		time_t n;
		if (!(c->month >> (tm.tm_mon + 1) & 1) || !day_matches(c, &tm)) {
			if (!(c->month >> (tm.tm_mon + 1) & 1)) {
				tm.tm_mon++;
				tm.tm_mday = 1;
			} else {
				tm.tm_mday++;
			}
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			tm.tm_isdst = -1;
			n = mktime(&tm);
			if (n <= t)	/* midnight skipped by a jump */
				n = t + 3600;
		} else if (!(c->hour >> tm.tm_hour & 1)) {
			n = t - tm.tm_min * 60 - tm.tm_sec + 3600;
		} else if (!(c->minute >> tm.tm_min & 1)) {
			n = t + 60;
		} else {
			result = (int64_t)t;
			break;
		}
		t = n - ((n % 60) + 60) % 60;
	}
	tz_leave(&sw);
	return result;
}
