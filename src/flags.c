/* flags.c — usage printing and flag splitting over a program's flag table
 * (see flags.h); the callers keep their own meaning of each flag. */
#include "flags.h"

#include <string.h>

void
flags_usage(FILE *f, const struct flag_def *table, size_t n, int width)
{
	for (size_t i = 0; i < n; i++) {
		char left[96];
		snprintf(left, sizeof left, "%s%s%s", table[i].name, table[i].arg ? " " : "",
		    table[i].arg ? table[i].arg : "");
		fprintf(f, "  %-*s %s\n", width, left, table[i].help);
	}
}

const struct flag_def *
flags_next(const struct flag_def *table, size_t n, int argc, char **argv, int *i,
    char *name, size_t name_size, const char **val)
{
	const char *a = argv[*i];
	const char *eq = strchr(a, '=');
	snprintf(name, name_size, "%.*s", eq ? (int)(eq - a) : (int)strlen(a), a);
	*val = NULL;
	for (size_t j = 0; j < n; j++) {
		if (strcmp(table[j].name, name) != 0)
			continue;
		if (table[j].arg)
			*val = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
		return &table[j];
	}
	return NULL;
}
