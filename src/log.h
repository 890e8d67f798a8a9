/* log.h — structured logging: one JSON object per line on stderr with ts,
 * level, component and msg. The level is checked before any formatting. */
#ifndef V6_LOG_H
#define V6_LOG_H

#include "util.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern enum log_level log_min_level;

/* log.c */
void log_set_level(enum log_level level);
int log_parse_level(const char *s, enum log_level *out);
void log__write(enum log_level level, const char *component, const char *fmt, ...)
    V6_PRINTF(3, 4);

#define log__at(lvl, comp, ...) \
	do { if ((lvl) >= log_min_level) log__write((lvl), (comp), __VA_ARGS__); } while (0)
#define log_debug(comp, ...) log__at(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  log__at(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log__at(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log__at(LOG_ERROR, comp, __VA_ARGS__)

#endif
