/* node_log.c — reading and following CRI log files (node_log.h). Files are
 * opened newest first and de-duplicated by inode, so a rotation during the
 * read neither loses nor repeats a file; they are mapped, scanned backwards
 * for a tail, and formatted forwards. */
#include "node_log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define MAX_FILES	64
#define FOLLOW_MS	200
#define CHUNK		(64 * 1024)

struct lfile {
	int fd;
	dev_t dev;
	ino_t ino;
	size_t size;			/* up to the last complete record */
	const char *map;
};

/* Output state: one logical line may span several P records and files. */
struct fmt {
	struct log_opts o;
	log_out_fn fn;
	void *arg;
	bool in_line;			/* the previous record was P */
	bool skip;			/* the current line is older than since */
	bool done;			/* limit reached */
	int64_t left;			/* bytes still allowed; < 0: no limit */
};

struct log_follower {
	uv_timer_t timer;
	char *path;
	struct fmt f;
	int fd;
	dev_t dev;
	ino_t ino;
	off_t off;
};

/* ---- records ------------------------------------------------------------ */

int
log_parse_time(const char *s, size_t len, int64_t *ms)
{
	char buf[64];
	struct tm tm = { 0 };
	int frac_ms = 0, n = 0;
	if (len >= sizeof buf)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EINVAL;
	if (buf[n] == '.')
		for (int i = 1, scale = 100; buf[n + i] >= '0' && buf[n + i] <= '9'; i++, scale /= 10)
			frac_ms += (buf[n + i] - '0') * scale;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ms = (int64_t)timegm(&tm) * 1000 + frac_ms;
	return 0;
}

struct rec {
	const char *ts, *stream, *text;
	size_t ts_len, stream_len, text_len;
	bool partial;
};

/* "TS STREAM TAG TEXT" (without its "\n"). */
static int
parse_rec(const char *p, size_t len, struct rec *r)
{
	const char *end = p + len, *s1 = memchr(p, ' ', len);
	const char *s2 = s1 ? memchr(s1 + 1, ' ', (size_t)(end - s1 - 1)) : NULL;
	if (s2 == NULL || s2 + 1 >= end)
		return -EINVAL;
	const char *s3 = memchr(s2 + 1, ' ', (size_t)(end - s2 - 1));
	r->ts = p;
	r->ts_len = (size_t)(s1 - p);
	r->stream = s1 + 1;
	r->stream_len = (size_t)(s2 - s1 - 1);
	r->partial = s2[1] == 'P';
	r->text = s3 ? s3 + 1 : end;
	r->text_len = (size_t)(end - r->text);
	return 0;
}

static bool
rec_is_partial(const char *p, size_t len)
{
	struct rec r;
	return parse_rec(p, len, &r) == 0 && r.partial;
}

static void
out(struct fmt *f, const char *p, size_t n)
{
	if (f->done || n == 0)
		return;
	if (f->left >= 0 && (int64_t)n >= f->left) {
		n = (size_t)f->left;
		f->done = true;
	}
	if (f->left >= 0)
		f->left -= (int64_t)n;
	if (n)
		f->fn(f->arg, p, n);
	if (f->done)
		f->fn(f->arg, NULL, 0);
}

static void
fmt_record(struct fmt *f, const char *p, size_t len)
{
	struct rec r;
	int64_t ms;
	if (parse_rec(p, len, &r) < 0)
		return;
	if (f->o.stream && (r.stream_len != strlen(f->o.stream) ||
	    memcmp(r.stream, f->o.stream, r.stream_len) != 0))
		return;		/* the other stream's lines go on around this one's */
	if (!f->in_line) {
		f->skip = f->o.since_ms > 0 &&
		    (log_parse_time(r.ts, r.ts_len, &ms) < 0 || ms < f->o.since_ms);
		if (!f->skip && f->o.timestamps) {
			out(f, r.ts, r.ts_len);
			out(f, " ", 1);
		}
	}
	if (!f->skip) {
		out(f, r.text, r.text_len);
		if (!r.partial)
			out(f, "\n", 1);
	}
	f->in_line = r.partial;
}

/* Formats the complete records of p[0..len); returns the bytes consumed. */
static size_t
fmt_records(struct fmt *f, const char *p, size_t len)
{
	size_t off = 0;
	while (off < len && !f->done) {
		const char *nl = memchr(p + off, '\n', len - off);
		if (nl == NULL)
			break;
		fmt_record(f, p + off, (size_t)(nl - p - off));
		off = (size_t)(nl - p) + 1;
	}
	return off;
}

/* ---- the files of one log ----------------------------------------------- */

static char *
rotated_name(const char *path, int i)
{
	return i == 0 ? xstrdup(path) : xasprintf("%s.%d", path, i);
}

/* Opens path, path.1, ... newest first; returns them oldest first in fs[]. */
static int
open_files(const char *path, struct lfile *fs)
{
	struct lfile tmp[MAX_FILES];
	int n = 0;
	for (int i = 0; i < MAX_FILES; i++) {
		char *p = rotated_name(path, i);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		free(p);
		struct stat st;
		if (fd < 0 && i > 0 && errno == ENOENT)
			break;
		if (fd < 0)
			continue;
		fstat(fd, &st);
		bool dup = false;
		for (int k = 0; k < n; k++)
			dup |= tmp[k].dev == st.st_dev && tmp[k].ino == st.st_ino;
		if (dup) {
			close(fd);
			continue;
		}
		tmp[n++] = (struct lfile){ fd, st.st_dev, st.st_ino, (size_t)st.st_size, NULL };
	}
	for (int k = 0; k < n; k++)
		fs[k] = tmp[n - 1 - k];
	return n;
}

static void
map_file(struct lfile *lf)
{
	if (lf->size == 0)
		return;
	void *m = mmap(NULL, lf->size, PROT_READ, MAP_PRIVATE, lf->fd, 0);
	if (m == MAP_FAILED) {
		lf->size = 0;
		return;
	}
	lf->map = m;
	/* A record still being written is not read. */
	const char *nl = memrchr(lf->map, '\n', lf->size);
	lf->size = nl ? (size_t)(nl - lf->map) + 1 : 0;
}

static void
close_files(struct lfile *fs, int n, int keep)
{
	for (int i = 0; i < n; i++) {
		if (fs[i].map)
			munmap((void *)fs[i].map, fs[i].size ? fs[i].size : 1);
		if (i != keep)
			close(fs[i].fd);
	}
}

/* Where the last n lines start: (file, offset). A line ends with an F
 * record, or is the trailing run of P records. */
static void
tail_start(const struct lfile *fs, int nf, int64_t n, int *file, size_t *off)
{
	int64_t lines = 0;
	bool last = true;
	*file = 0;
	*off = 0;
	for (int i = nf - 1; i >= 0; i--) {
		size_t end = fs[i].size;
		while (end > 0) {
			const char *m = fs[i].map;
			const char *nl = end > 1 ? memrchr(m, '\n', end - 1) : NULL;
			size_t start = nl ? (size_t)(nl - m) + 1 : 0;
			if ((last || !rec_is_partial(m + start, end - 1 - start)) && ++lines > n) {
				*file = i;
				*off = end;
				return;
			}
			last = false;
			end = start;
		}
	}
}

static void
fmt_init(struct fmt *f, const struct log_opts *o, log_out_fn fn, void *arg)
{
	memset(f, 0, sizeof *f);
	f->o = *o;
	f->fn = fn;
	f->arg = arg;
	f->left = o->limit_bytes > 0 ? o->limit_bytes : -1;
}

/* The shared first pass of log_read and log_follow_start; returns the
 * index of the newest file (its fd left open when keep_newest), or < 0. */
static int
read_all(const char *path, struct fmt *f, bool keep_newest, struct lfile *newest)
{
	struct lfile fs[MAX_FILES];
	int nf = open_files(path, fs), file;
	size_t off;
	if (nf == 0)
		return -ENOENT;
	for (int i = 0; i < nf; i++)
		map_file(&fs[i]);
	if (f->o.tail_lines >= 0)
		tail_start(fs, nf, f->o.tail_lines, &file, &off);
	else
		file = 0, off = 0;
	for (int i = file; i < nf && !f->done; i++) {
		fmt_records(f, fs[i].map + off, fs[i].size - off);
		off = 0;
	}
	*newest = fs[nf - 1];
	close_files(fs, nf, keep_newest ? nf - 1 : -1);
	return 0;
}

int
log_read(const char *path, const struct log_opts *o, log_out_fn fn, void *arg)
{
	struct fmt f;
	struct lfile newest;
	fmt_init(&f, o, fn, arg);
	return read_all(path, &f, false, &newest);
}

/* ---- follow ------------------------------------------------------------- */

/* Reads the follower's file from its offset to the end. */
static void
follow_drain(struct log_follower *lf)
{
	static char buf[CHUNK];
	if (lf->fd < 0)
		return;		/* no file yet */
	for (;;) {
		ssize_t n = pread(lf->fd, buf, sizeof buf, lf->off);
		if (n <= 0)
			return;
		size_t used = fmt_records(&lf->f, buf, (size_t)n);
		lf->off += (off_t)used;
		if (used == 0 || lf->f.done)
			return;
	}
}

/* The file written after ours: the one after it in rotation order, or the
 * oldest left when ours was already deleted. Returns an fd or -1. */
static int
follow_next(struct log_follower *lf, struct stat *next)
{
	struct lfile fs[MAX_FILES];
	int nf = open_files(lf->path, fs), pick = -1;
	bool found = false;
	for (int i = 0; i < nf; i++) {
		if (found && pick < 0)
			pick = i;
		found |= fs[i].dev == lf->dev && fs[i].ino == lf->ino;
	}
	if (!found && nf > 0)
		pick = 0;
	for (int i = 0; i < nf; i++)
		if (i != pick)
			close(fs[i].fd);
	if (pick < 0)
		return -1;
	next->st_dev = fs[pick].dev;
	next->st_ino = fs[pick].ino;
	return fs[pick].fd;
}

void
log_follow_poll(struct log_follower *lf)
{
	struct stat st, next;
	while (!lf->f.done) {
		follow_drain(lf);
		if (stat(lf->path, &st) == 0 && st.st_dev == lf->dev && st.st_ino == lf->ino)
			return;		/* still the current file */
		/* Rotated: every write to our file came before the rename. */
		follow_drain(lf);
		int fd = follow_next(lf, &next);
		if (fd < 0)
			return;
		if (lf->fd >= 0)
			close(lf->fd);
		lf->fd = fd;
		lf->dev = next.st_dev;
		lf->ino = next.st_ino;
		lf->off = 0;
	}
}

static void
on_follow_timer(uv_timer_t *t)
{
	struct log_follower *lf = t->data;
	log_follow_poll(lf);
	if (lf->f.done)
		uv_timer_stop(t);
}

int
log_follow_start(uv_loop_t *loop, const char *path, const struct log_opts *o,
    log_out_fn fn, void *arg, struct log_follower **out)
{
	struct log_follower *lf = xcalloc(1, sizeof *lf);
	struct lfile newest;
	fmt_init(&lf->f, o, fn, arg);
	int rc = read_all(path, &lf->f, true, &newest);
	if (rc == -ENOENT) {
		/* Nothing written yet: the shim makes the file with the first
		 * output; the first poll that finds it reads it whole. */
		newest = (struct lfile){ .fd = -1 };
	} else if (rc < 0) {
		free(lf);
		return rc;
	}
	lf->path = xstrdup(path);
	lf->fd = newest.fd;
	lf->dev = newest.dev;
	lf->ino = newest.ino;
	lf->off = (off_t)newest.size;
	uv_timer_init(loop, &lf->timer);
	lf->timer.data = lf;
	if (!lf->f.done)
		uv_timer_start(&lf->timer, on_follow_timer, FOLLOW_MS, FOLLOW_MS);
	*out = lf;
	return 0;
}

static void
on_follower_closed(uv_handle_t *h)
{
	struct log_follower *lf = h->data;
	if (lf->fd >= 0)
		close(lf->fd);
	free(lf->path);
	free(lf);
}

void
log_follow_stop(struct log_follower *lf)
{
	uv_close((uv_handle_t *)&lf->timer, on_follower_closed);
}
