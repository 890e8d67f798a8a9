/* log.c — JSON-lines logger behind log_info()/log_warn()/... (see log.h). */
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum log_level log_min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

void
log_set_level(enum log_level level)
{
	log_min_level = level;
}

int
log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

void
log__write(enum log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);

	int64_t now = time_now_ms();
	char ts[40], sec[32];
	time_format_rfc3339((time_t)(now / 1000), sec);
	snprintf(ts, sizeof ts, "%.19s.%03dZ", sec, (int)(now % 1000));

	json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
	    level_names[level], "component", component, "msg", msg);
	char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text) {
		fprintf(stderr, "%s\n", text);
		free(text);
	}
	json_decref(line);
	free(msg);
}
