/* flags.h — the flag tables of the programs that parse their own flags
 * (`v6 server`, `v6 proxy`, `v6 reset`): one usage printer and one
 * `--name=value` / `--name value` splitter instead of a copy in each. */
#ifndef V6_FLAGS_H
#define V6_FLAGS_H

#include <stddef.h>
#include <stdio.h>

/* One flag: its name ("--data-dir"), its argument's placeholder ("DIR";
 * NULL for a flag without a value) and one line of help. */
struct flag_def {
	const char *name, *arg, *help;
};

/* Prints "  NAME ARG   help" for each of the n flags of table to f, the
 * flag column width characters wide. */
void flags_usage(FILE *f, const struct flag_def *table, size_t n, int width);

/* The entry of table named name (argv[*i] up to any '='), or NULL. When
 * the entry takes a value, *val points at it: after the '=', else at the
 * next argument (and *i moves past it), else NULL (the caller reports the
 * missing value). name receives the flag's name for messages. */
const struct flag_def *flags_next(const struct flag_def *table, size_t n, int argc,
    char **argv, int *i, char *name, size_t name_size, const char **val);

#endif
