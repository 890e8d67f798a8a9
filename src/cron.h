/* cron.h — standard 5-field cron schedules (robfig/cron's standard parser,
 * as the CronJob controller uses): minute hour day-of-month month
 * day-of-week with *, ranges, steps, lists, month and day names, and the
 * @yearly/@monthly/@weekly/@daily/@hourly macros; next times in an IANA
 * zone through the system's TZ files. Pure; cron.c. */
#ifndef V6_CRON_H
#define V6_CRON_H

#include <stdbool.h>
#include <stdint.h>

struct cron {
	uint64_t minute, hour, dom, month, dow;	/* bit sets */
	bool dom_star, dow_star;		/* the field was * (or ?) */
};
/* Parses spec into *c. Returns 0, or -EINVAL with *err (static text). */
int cron_parse(const char *spec, struct cron *c, const char **err);
/* Whether zone names a zone of the system's TZ database ("" and "UTC"
 * always do). */
bool cron_zone_valid(const char *zone);
/* The first time strictly after t_s (seconds since the epoch) that c
 * fires in zone (NULL or "": the local zone of the server, as upstream;
 * V6 runs in UTC unless TZ says otherwise). A time that a DST jump skips
 * does not fire; one in a repeated wall-clock hour fires at both instants
 * (robfig/cron walks hours and minutes in real time).
 * Returns -1 when none within 5 years. */
int64_t cron_next(const struct cron *c, const char *zone, int64_t t_s);

#endif
