/* util.c — allocation, buffers, clocks and durations shared by every module
 * (see util.h). */
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <ftw.h>
#include <unistd.h>

void
util_bug(const char *file, int line, const char *what)
{
	fprintf(stderr, "v6: BUG at %s:%d: %s\n", file, line, what);
	abort();
}

static void *
oom(size_t n)
{
	fprintf(stderr, "v6: out of memory allocating %zu bytes\n", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	return p ? p : oom(n);
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : oom(n * size);
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	return q ? q : oom(n);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	BUG_ON(n < 0);
	char *p = xmalloc((size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

static void
buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	BUG_ON(n < 0);
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	va_end(ap);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data ? b->data : xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

bool
str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
str_has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int
str_pcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int64_t
time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
time_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
time_format_rfc3339(time_t t, char *out)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
time_parse_rfc3339(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (end == NULL)
		return -EINVAL;
	if (*end == '.')
		for (end++; isdigit((unsigned char)*end); end++)
			;
	if (strcmp(end, "Z") != 0)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

int
duration_parse(const char *s, int64_t *ms)
{
	int64_t total = 0;
	const char *p = s;
	if (*p == '\0')
		return -EINVAL;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (errno || end == p)
			return -EINVAL;
		p = end;
		double unit;
		if (*p == '\0' && p == s + strlen(s) && total == 0)
			unit = 1000;			/* bare number: seconds */
		else if (str_has_prefix(p, "ms"))
			unit = 1, p += 2;
		else if (*p == 'h')
			unit = 3600000, p++;
		else if (*p == 'm')
			unit = 60000, p++;
		else if (*p == 's')
			unit = 1000, p++;
		else
			return -EINVAL;
		if (v * unit > 9e15)
			return -EINVAL;
		total += (int64_t)(v * unit);
	}
	*ms = total;
	return 0;
}

/* kubectl's HumanDuration: the two most significant units, dropping zeros. */
void
duration_format_age(int64_t ms, char *out)
{
	long long s = ms < 0 ? 0 : ms / 1000, m = s / 60, h = s / 3600, d = s / 86400;
	if (s < 120)
		snprintf(out, 32, "%llds", s);
	else if (m < 10 && s % 60)
		snprintf(out, 32, "%lldm%llds", m, s % 60);
	else if (h < 3)
		snprintf(out, 32, "%lldm", m);
	else if (h < 8 && m % 60)
		snprintf(out, 32, "%lldh%lldm", h, m % 60);
	else if (h < 48)
		snprintf(out, 32, "%lldh", h);
	else if (h < 192 && h % 24)
		snprintf(out, 32, "%lldd%lldh", d, h % 24);
	else if (d < 730)
		snprintf(out, 32, "%lldd", d);
	else
		snprintf(out, 32, "%lldy%lldd", d / 365, d % 365);
}

int
file_read_all(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL)
		return -errno;
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_append(&b, chunk, n);
	int err = ferror(f) ? -EIO : 0;
	if (f != stdin)
		fclose(f);
	if (err) {
		buf_free(&b);
		return err;
	}
	if (len)
		*len = b.len;
	*out = buf_steal(&b);
	return 0;
}

int
file_write_atomic(const char *path, const char *data, size_t len, bool sync)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)gettid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (write(fd, data, len) != (ssize_t)len || (sync && fsync(fd) < 0))
		rc = errno ? -errno : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int
util_ipv4_cidr(const char *s, uint32_t *base, unsigned *prefix)
{
	unsigned a, b, c, d, p;
	char end;
	if (!s || sscanf(s, "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &p, &end) != 5 ||
	    a > 255 || b > 255 || c > 255 || d > 255 || p < 16 || p > 24)
		return -EINVAL;
	uint32_t net = a << 24 | b << 16 | c << 8 | d;
	if ((net & ((1u << (32 - p)) - 1)) != 0)
		return -EINVAL;
	*base = net;
	*prefix = p;
	return 0;
}

int
util_loopback_cidr(const char *s, uint32_t *base, unsigned *prefix)
{
	uint32_t net;
	unsigned p;
	if (util_ipv4_cidr(s, &net, &p) < 0 || net >> 24 != 127 || ((net >> 16) & 255) == 0)
		return -EINVAL;
	*base = net;
	*prefix = p;
	return 0;
}

uint32_t
util_random32(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
		v = (uint32_t)time_mono_ms() * 2654435761u;
	return v;
}

/* ---- files ---------------------------------------------------------------- */

static _Thread_local int remove_err;

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT &&
	    remove_err == 0)
		remove_err = -errno;
	return 0;
}

int
util_remove_tree(const char *path)
{
	remove_err = 0;
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return -errno;
	return remove_err;
}


bool
util_host_is_loopback(const char *hostport)
{
	char h[256];
	struct in_addr a4;
	struct in6_addr a6;

	snprintf(h, sizeof h, "%s", hostport);
	if (h[0] == '[') {
		char *end = strchr(h, ']');
		if (!end || (end[1] && end[1] != ':'))
			return false;
		*end = '\0';
		return inet_pton(AF_INET6, h + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	if (inet_pton(AF_INET6, h, &a6) == 1)	/* a bare IPv6 address */
		return IN6_IS_ADDR_LOOPBACK(&a6);
	char *colon = strchr(h, ':');
	if (colon)
		*colon = '\0';
	if (!strcmp(h, "localhost"))
		return true;
	/* An address literal in 127.0.0.0/8, not a name that starts so. */
	return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

void
fd_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}
