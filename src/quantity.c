/* quantity.c — the one Kubernetes quantity parser (see quantity.h): a
 * decimal mantissa kept exactly in 128 bits and its scale (a power of ten
 * and of 1024, from the suffix or a decimal exponent), read once, then
 * given as a double or as an exact scaled integer. */
#include "quantity.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *suffix;
	int exp10;
	int pow1024;
} suffixes[] = {
	{ "n", -9, 0 }, { "u", -6, 0 }, { "m", -3, 0 }, { "", 0, 0 }, { "k", 3, 0 },
	{ "M", 6, 0 }, { "G", 9, 0 }, { "T", 12, 0 }, { "P", 15, 0 }, { "E", 18, 0 },
	{ "Ki", 0, 1 }, { "Mi", 0, 2 }, { "Gi", 0, 3 }, { "Ti", 0, 4 }, { "Pi", 0, 5 },
	{ "Ei", 0, 6 },
};

#define Q_MAX ((__int128)1 << 100)	/* far beyond int64, far below overflow */

struct qty {
	__int128 mant;		/* the digits; past Q_MAX the rest count in exp10 */
	int exp10, pow1024;
	bool neg;
};

/* "e3", "E-2", "e+5": a decimal exponent of one to five digits. */
static int
exponent_suffix(const char *s, int *exp10)
{
	const char *d = s + 1 + (s[1] == '+' || s[1] == '-');
	size_t n = strspn(d, "0123456789");
	if ((s[0] != 'e' && s[0] != 'E') || n == 0 || n > 5 || d[n] != '\0')
		return -EINVAL;
	*exp10 = (int)strtol(s + 1, NULL, 10);
	return 0;
}

static int
parse_suffix(const char *s, int *exp10, int *pow1024)
{
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
		if (strcmp(s, suffixes[i].suffix) == 0) {
			*exp10 = suffixes[i].exp10;
			*pow1024 = suffixes[i].pow1024;
			return 0;
		}
	*pow1024 = 0;
	return exponent_suffix(s, exp10);
}

/* Reads s whole: sign, digits, optional fraction, suffix or exponent. */
static int
quantity_read(const char *s, struct qty *q)
{
	int sexp;
	bool digits = false;
	*q = (struct qty){ .neg = *s == '-' };
	if (*s == '-' || *s == '+')
		s++;
	for (; *s >= '0' && *s <= '9'; s++, digits = true)
		if (q->mant < Q_MAX)
			q->mant = q->mant * 10 + (*s - '0');
		else
			q->exp10++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, digits = true)
			if (q->mant < Q_MAX)
				q->mant = q->mant * 10 + (*s - '0'), q->exp10--;
	if (!digits || parse_suffix(s, &sexp, &q->pow1024) < 0)
		return -EINVAL;
	q->exp10 += sexp;
	return 0;
}

int
quantity_parse(const char *s, double *out)
{
	struct qty q;
	if (quantity_read(s, &q) < 0)
		return -EINVAL;
	double v = (double)q.mant * pow(1024, q.pow1024);
	/* dividing by an exact power of ten keeps "1.5" exactly 1.5 */
	v = q.exp10 < 0 ? v / pow(10, -q.exp10) : v * pow(10, q.exp10);
	if (!isfinite(v))
		return -EINVAL;
	*out = q.neg ? -v : v;
	return 0;
}

int
quantity_scaled(const char *s, int scale, int64_t *out)
{
	struct qty q;
	if (quantity_read(s, &q) < 0)
		return -EINVAL;
	__int128 v = q.mant;
	int exp10 = q.exp10 - scale, pow1024 = q.pow1024;
	for (; pow1024 > 0 && v < Q_MAX; pow1024--)
		v *= 1024;
	for (; exp10 > 0 && v < Q_MAX; exp10--)
		v *= 10;
	if (v >= Q_MAX && (pow1024 > 0 || exp10 > 0))
		return -ERANGE;
	for (; exp10 < 0 && v > 1; exp10++)
		v = v / 10 + (v % 10 != 0);	/* rounds up, as ScaledValue does */
	if (v > INT64_MAX)
		return -ERANGE;
	*out = q.neg ? -(int64_t)v : (int64_t)v;
	return 0;
}
