/* obs_loki.c — the Loki log shipper (obs_loki.h). One read round at a time
 * runs on the thread pool: it finds the log files, reads what is new from
 * each (a rotated file is finished before the next one), turns CRI records
 * into entries, encodes them and gzips the batch. The loop keeps a FIFO of
 * batches (the spool), sends the oldest one at a time, retries it with
 * back-off on 429 / 5xx / errors, drops it on another 4xx. Each batch with
 * lines is also written to the on-disk spool (DATA/node/loki/spool, fsync)
 * by the round that made it; then its files' positions (inode, offset) are
 * written with fsync, so a restart resends the spool and resumes reading
 * right after it: nothing lost even when Loki was away while the files
 * rotated. A batch leaves the spool when Loki acknowledged or refused it,
 * or when the spool is past its size (the oldest go first). */
#include "obs_loki.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "http.h"
#include "log.h"

#define LOKI_PATH		"/loki/api/v1/push"
#define HASH_BUCKETS		4096
#define READ_CHUNK		(256 * 1024)
#define SINK_MAX_BYTES		(4u << 20)	/* own log lines waiting for a round */
#define MAX_ROTATED		64

/* ---- the encoder: streams and their entries ------------------------------ */

struct loki_stream {
	char *labels;			/* JSON object text: the identity */
	int64_t last_ts;		/* ns of the newest entry given out */
	struct buf values;		/* this batch's ["ts","line"] items */
	size_t n;
	unsigned refs;			/* families bound to it */
	struct loki_stream *hnext, *used_next;
};

struct loki_enc {
	struct loki_stream *bucket[HASH_BUCKETS];
	struct loki_stream *used;	/* streams with entries, newest first */
	struct loki_stream **used_tail;
	size_t nstreams;
};

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

struct loki_enc *
obs_loki__enc_new(void)
{
	struct loki_enc *e = xcalloc(1, sizeof *e);
	e->used_tail = &e->used;
	return e;
}

void
obs_loki__enc_free(struct loki_enc *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < HASH_BUCKETS; i++)
		for (struct loki_stream *s = e->bucket[i], *n; s; s = n) {
			n = s->hnext;
			free(s->labels);
			buf_free(&s->values);
			free(s);
		}
	free(e);
}

struct loki_stream *
obs_loki__enc_stream(struct loki_enc *e, const char *labels)
{
	uint32_t h = hash_str(labels) % HASH_BUCKETS;
	for (struct loki_stream *s = e->bucket[h]; s; s = s->hnext)
		if (strcmp(s->labels, labels) == 0)
			return s;
	struct loki_stream *s = xcalloc(1, sizeof *s);
	s->labels = xstrdup(labels);
	s->hnext = e->bucket[h];
	e->bucket[h] = s;
	e->nstreams++;
	return s;
}

/* A family lets go of s; the last one frees it (it has no entries
 * waiting: families go only between rounds, after their batches). */
static void
enc_release(struct loki_enc *e, struct loki_stream *s)
{
	if (s == NULL || --s->refs > 0 || s->n > 0)
		return;
	struct loki_stream **pp = &e->bucket[hash_str(s->labels) % HASH_BUCKETS];
	while (*pp != s)
		pp = &(*pp)->hnext;
	*pp = s->hnext;
	e->nstreams--;
	free(s->labels);
	buf_free(&s->values);
	free(s);
}

void
obs_loki__enc_seen(struct loki_stream *s, int64_t ts_ns)
{
	if (ts_ns > s->last_ts)
		s->last_ts = ts_ns;
}

int64_t
obs_loki__enc_add(struct loki_enc *e, struct loki_stream *s, int64_t ts_ns,
    const char *line, size_t len)
{
	if (ts_ns <= s->last_ts)
		ts_ns = s->last_ts + 1;
	s->last_ts = ts_ns;
	if (s->n++ == 0) {
		s->used_next = NULL;
		*e->used_tail = s;
		e->used_tail = &s->used_next;
	} else {
		buf_putc(&s->values, ',');
	}
	buf_printf(&s->values, "[\"%lld\",", (long long)ts_ns);
	utf8_json_quote(&s->values, line, len);
	buf_putc(&s->values, ']');
	return ts_ns;
}

size_t
obs_loki__enc_take(struct loki_enc *e, struct buf *b)
{
	size_t total = 0;
	buf_puts(b, "{\"streams\":[");
	for (struct loki_stream *s = e->used; s; s = s->used_next) {
		if (s != e->used)
			buf_putc(b, ',');
		buf_printf(b, "{\"stream\":%s,\"values\":[", s->labels);
		buf_append(b, s->values.data, s->values.len);
		buf_puts(b, "]}");
		total += s->n;
		s->n = 0;
		buf_reset(&s->values);
	}
	buf_puts(b, "]}");
	e->used = NULL;
	e->used_tail = &e->used;
	return total;
}

/* ---- small pure helpers ---------------------------------------------------- */

int64_t
obs_loki__backoff_ms(unsigned attempt, int64_t min_ms, int64_t max_ms, uint32_t rnd)
{
	int64_t d = min_ms;
	for (unsigned i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	int64_t half = d / 2;
	return d - half + (int64_t)(rnd % (uint32_t)(half + 1));
}

int
obs_loki__parse_pod_dir(const char *name, char **ns, char **pod, char **uid)
{
	const char *a = strchr(name, '_'), *b = strrchr(name, '_');
	if (a == NULL || a == b || a == name || b[1] == '\0' || b == a + 1)
		return -EINVAL;
	*ns = xstrndup(name, (size_t)(a - name));
	*pod = xstrndup(a + 1, (size_t)(b - a - 1));
	*uid = xstrdup(b + 1);
	return 0;
}

/* "2026-11-28T19:00:00.123456789Z" -> ns since the epoch. */
static int
parse_ts_ns(const char *s, size_t len, int64_t *out)
{
	int v[6], n = 0;
	static const int width[6] = { 4, 2, 2, 2, 2, 2 };
	static const char sep[6] = { '-', '-', 'T', ':', ':', 0 };
	size_t i = 0;
	for (n = 0; n < 6; n++) {
		v[n] = 0;
		for (int w = 0; w < width[n]; w++, i++) {
			if (i >= len || s[i] < '0' || s[i] > '9')
				return -EINVAL;
			v[n] = v[n] * 10 + (s[i] - '0');
		}
		if (sep[n]) {
			if (i >= len || s[i] != sep[n])
				return -EINVAL;
			i++;
		}
	}
	int64_t frac = 0;
	int digits = 0;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			if (digits < 9) {
				frac = frac * 10 + (s[i] - '0');
				digits++;
			}
	for (; digits < 9; digits++)
		frac *= 10;
	if (i >= len || s[i] != 'Z')
		return -EINVAL;
	struct tm tm = { .tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2],
		.tm_hour = v[3], .tm_min = v[4], .tm_sec = v[5] };
	*out = (int64_t)timegm(&tm) * 1000000000 + frac;
	return 0;
}

int
obs_loki__parse_cri(const char *line, size_t len, int64_t *ts_ns, int *stream,
    bool *partial, const char **text, size_t *text_len)
{
	const char *sp1 = memchr(line, ' ', len);
	if (sp1 == NULL || parse_ts_ns(line, (size_t)(sp1 - line), ts_ns) < 0)
		return -EINVAL;
	const char *p = sp1 + 1, *end = line + len;
	if (end - p >= 7 && memcmp(p, "stdout ", 7) == 0)
		*stream = 0;
	else if (end - p >= 7 && memcmp(p, "stderr ", 7) == 0)
		*stream = 1;
	else
		return -EINVAL;
	p += 7;
	if (end - p < 1 || (*p != 'P' && *p != 'F'))
		return -EINVAL;
	*partial = *p == 'P';
	p++;
	if (p < end && *p == ' ')
		p++;
	*text = p;
	*text_len = (size_t)(end - p);
	return 0;
}

void
obs_loki__labels(struct buf *b, const char *const *names, const char *const *values,
    size_t n)
{
	bool done[16] = { 0 };
	BUG_ON(n > ARRAY_SIZE(done));
	buf_putc(b, '{');
	bool first = true;
	for (size_t k = 0; k < n; k++) {
		size_t best = n;
		for (size_t i = 0; i < n; i++)
			if (!done[i] && (best == n || strcmp(names[i], names[best]) < 0))
				best = i;
		done[best] = true;
		if (values[best] == NULL || values[best][0] == '\0')
			continue;
		if (!first)
			buf_putc(b, ',');
		first = false;
		utf8_json_quote(b, names[best], strlen(names[best]));
		buf_putc(b, ':');
		utf8_json_quote(b, values[best], strlen(values[best]));
	}
	buf_putc(b, '}');
}

size_t
obs_loki__cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	/* step back over continuation bytes, at most 3 */
	for (int i = 0; i < 3 && k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80; i++)
		k--;
	return k > 0 ? k : max;
}

/* ---- the shipper ------------------------------------------------------------ */

enum fam_kind { FAM_CRI, FAM_RAW };

/* A log "family": a live file and its rotated predecessors (PATH.1 ...). */
struct fam {
	char *key;			/* relative to state_dir: the position key */
	char *path;
	enum fam_kind kind;
	char *ns, *pod, *ctr;		/* FAM_CRI */
	bool ready;			/* labels bound (the loop resolved app) */
	bool seen, gone;
	/* reader side (the worker, or the loop between rounds) */
	uint64_t ino;			/* the file being read; 0: none yet */
	int64_t off;			/* next byte to read in it */
	int64_t safe_off;		/* after the last entry fully given out */
	int64_t last_ts;
	struct buf partial;		/* P records of the line being joined */
	int64_t partial_ts;
	int partial_stream;
	size_t partial_pieces;
	struct loki_stream *st[2];	/* stdout, stderr (FAM_RAW: st[0]) */
	bool touched;			/* its position moved this round */
	/* committed: acknowledged by Loki (or dropped), the loop's */
	bool c_known;
	uint64_t c_ino;
	int64_t c_off, c_ts;
	struct fam *next, *hnext;
};

struct pos {
	struct fam *f;
	uint64_t ino;
	int64_t off, ts;
};

struct batch {
	char *body;			/* gzipped; NULL when no entries */
	size_t body_len;
	uint64_t seq;			/* its spool file's number; 0: not on disk */
	bool committed;			/* its positions are written already */
	size_t lines;
	struct pos *pos;
	size_t npos;
	struct batch *next;
};

struct sink_line {
	int64_t ts_ms;
	char component[32];
	size_t len;
	struct sink_line *next;
	char line[];
};

struct obs_loki {
	uv_loop_t *loop;
	struct obs_loki_config cfg;
	char *url, *host_header, *path, *state_dir, *node_name, *proxy_log, *pos_path;
	char *spool_dir;
	uint64_t spool_seq;		/* the newest spool file's number (round thread) */
	struct sockaddr_storage addr;
	/* families and streams */
	struct fam *fams;
	struct fam *fbucket[HASH_BUCKETS];
	struct loki_enc *enc;
	json_t *saved;			/* positions read at start, by key */
	/* own log lines */
	pthread_mutex_t sink_mu;
	struct sink_line *sink_head, **sink_tail;
	size_t sink_bytes;
	uint64_t sink_dropped;
	/* the read round */
	uv_work_t work;
	bool reading, more;
	struct batch *round;		/* what the round made */
	uint64_t r_lines, r_split, r_lost;
	uv_timer_t tick;
	/* the spool and the push */
	struct batch *queue, **queue_tail;
	struct http_client_req *req;
	bool sending;
	unsigned attempt;
	uv_timer_t retry;
	/* positions */
	bool pos_dirty, pos_writing;
	uv_work_t pos_work;
	char *pos_text;
	struct obs_loki_stats st;
	bool stopping;
	int closing;
};

static void round_start(struct obs_loki *l);
static void on_tick(uv_timer_t *t);
static void send_next(struct obs_loki *l);
static void maybe_free(struct obs_loki *l);
static void save_positions(struct obs_loki *l);

static struct fam *
fam_find(struct obs_loki *l, const char *key)
{
	for (struct fam *f = l->fbucket[hash_str(key) % HASH_BUCKETS]; f; f = f->hnext)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* A new family; its saved position (if any) is where reading resumes. */
static struct fam *
fam_add(struct obs_loki *l, const char *key, enum fam_kind kind)
{
	struct fam *f = xcalloc(1, sizeof *f);
	f->key = xstrdup(key);
	f->path = key[0] == '/' ? xstrdup(key) : xasprintf("%s/%s", l->state_dir, key);
	f->kind = kind;
	json_t *p = json_object_get(l->saved, key);
	if (p) {
		f->c_known = true;
		f->ino = f->c_ino = (uint64_t)json_integer_value(json_object_get(p, "inode"));
		f->off = f->safe_off = f->c_off = json_integer_value(json_object_get(p, "offset"));
		f->last_ts = f->c_ts = json_integer_value(json_object_get(p, "ts"));
	}
	uint32_t h = hash_str(key) % HASH_BUCKETS;
	f->hnext = l->fbucket[h];
	l->fbucket[h] = f;
	f->next = l->fams;
	l->fams = f;
	return f;
}

static void
fam_free(struct fam *f)
{
	free(f->key);
	free(f->path);
	free(f->ns);
	free(f->pod);
	free(f->ctr);
	buf_free(&f->partial);
	free(f);
}

/* Worker: finds pods/NS_POD_UID/CTR/N.log families; marks the rest gone. */
static void
discover(struct obs_loki *l)
{
	for (struct fam *f = l->fams; f; f = f->next)
		f->seen = f->kind == FAM_RAW;
	char *root = xasprintf("%s/pods", l->state_dir);
	DIR *d = opendir(root);
	struct dirent *pe;
	while (d && (pe = readdir(d)) != NULL) {
		char *ns, *pod, *uid;
		if (pe->d_name[0] == '.' || obs_loki__parse_pod_dir(pe->d_name, &ns, &pod, &uid) < 0)
			continue;
		char *pdir = xasprintf("%s/%s", root, pe->d_name);
		DIR *cd = opendir(pdir);
		struct dirent *ce;
		while (cd && (ce = readdir(cd)) != NULL) {
			if (ce->d_name[0] == '.')
				continue;
			char *cdir = xasprintf("%s/%s", pdir, ce->d_name);
			DIR *fd = opendir(cdir);
			struct dirent *fe;
			while (fd && (fe = readdir(fd)) != NULL) {
				char *end;
				long attempt = strtol(fe->d_name, &end, 10);
				if (end == fe->d_name || strcmp(end, ".log") != 0 || attempt < 0)
					continue;
				char *key = xasprintf("pods/%s/%s/%s", pe->d_name, ce->d_name, fe->d_name);
				struct fam *f = fam_find(l, key);
				if (f == NULL) {
					f = fam_add(l, key, FAM_CRI);
					f->ns = xstrdup(ns);
					f->pod = xstrdup(pod);
					f->ctr = xstrdup(ce->d_name);
				}
				f->seen = true;
				free(key);
			}
			if (fd)
				closedir(fd);
			free(cdir);
		}
		if (cd)
			closedir(cd);
		free(pdir);
		free(ns);
		free(pod);
		free(uid);
	}
	if (d)
		closedir(d);
	free(root);
	for (struct fam *f = l->fams; f; f = f->next)
		if (!f->seen)
			f->gone = true;
}

/* Worker: gives one entry (a line or a piece of one) to the batch. */
static void
emit(struct obs_loki *l, struct fam *f, int stream, int64_t ts, const char *text, size_t len)
{
	struct loki_stream *s = f->st[stream] ? f->st[stream] : f->st[0];
	f->last_ts = obs_loki__enc_add(l->enc, s, ts, text, len);
	l->r_lines++;
}

static void
flush_partial(struct obs_loki *l, struct fam *f)
{
	if (f->partial.len > 0 || f->partial_pieces > 0)
		emit(l, f, f->partial_stream, f->partial_ts + (int64_t)f->partial_pieces,
		    f->partial.data ? f->partial.data : "", f->partial.len);
	buf_reset(&f->partial);
	f->partial_pieces = 0;
}

/* The time of one of V6's own log lines: the "time" field that starts a
 * JSON line, or the first word of a text line; else now. Taken from the
 * line so that a line sent again after a restart is the same entry. */
static int64_t
own_line_ts(const char *line, size_t len)
{
	static const char key[] = "{\"time\":\"";
	int64_t ts;
	const char *p = line, *end;
	if (len > sizeof key && memcmp(line, key, sizeof key - 1) == 0)
		p = line + sizeof key - 1;
	end = memchr(p, p == line ? ' ' : '"', len - (size_t)(p - line));
	if (end && parse_ts_ns(p, (size_t)(end - p), &ts) == 0)
		return ts;
	return time_now_ms() * 1000000;
}

/* Worker: one line of a file (without "\n"). */
static void
take_line(struct obs_loki *l, struct fam *f, const char *line, size_t len)
{
	size_t max = l->cfg.max_line_bytes;
	int64_t ts;
	int stream = 0;
	bool partial = false;
	const char *text = line;
	size_t tlen = len;
	if (f->kind == FAM_RAW ||
	    obs_loki__parse_cri(line, len, &ts, &stream, &partial, &text, &tlen) < 0) {
		ts = f->kind == FAM_RAW ? own_line_ts(line, len) : f->last_ts;
		text = line;
		tlen = len;
		partial = false;
		stream = f->partial.len ? f->partial_stream : 0;
	}
	if (f->partial.len == 0 && f->partial_pieces == 0) {
		f->partial_ts = ts;
		f->partial_stream = stream;
	}
	buf_append(&f->partial, text, tlen);
	while (f->partial.len > max) {
		size_t k = obs_loki__cut(f->partial.data, f->partial.len, max);
		if (f->partial_pieces == 0)
			l->r_split++;
		emit(l, f, f->partial_stream, f->partial_ts + (int64_t)f->partial_pieces,
		    f->partial.data, k);
		f->partial_pieces++;
		memmove(f->partial.data, f->partial.data + k, f->partial.len - k);
		f->partial.len -= k;
		f->partial.data[f->partial.len] = '\0';
	}
	if (!partial)
		flush_partial(l, f);
}

struct rfile {
	uint64_t ino;
	char *path;
};

/* The family's files, oldest first (PATH.K ... PATH.1, PATH). */
static size_t
list_files(struct fam *f, struct rfile *out)
{
	size_t n = 0;
	struct stat st;
	int k = 1;
	while (k <= MAX_ROTATED) {
		char *p = xasprintf("%s.%d", f->path, k);
		bool ok = stat(p, &st) == 0;
		free(p);
		if (!ok)
			break;
		k++;
	}
	for (int i = k - 1; i >= 0; i--) {
		char *p = i ? xasprintf("%s.%d", f->path, i) : xstrdup(f->path);
		if (stat(p, &st) == 0) {
			out[n].ino = (uint64_t)st.st_ino;
			out[n++].path = p;
		} else {
			free(p);
		}
	}
	return n;
}

/* Worker: reads what is new in f up to the round's budget. */
static void
read_fam(struct obs_loki *l, struct fam *f, size_t *budget)
{
	struct rfile files[MAX_ROTATED + 1];
	size_t n = list_files(f, files), idx = 0;
	if (n == 0)
		goto out;
	if (f->ino != 0) {
		while (idx < n && files[idx].ino != f->ino)
			idx++;
		if (idx == n) {
			log_warn("loki", "%s: the file being shipped was rotated away before it "
			    "was read to its end; going on with the oldest one left", f->key);
			l->r_lost++;
			idx = 0;
			f->ino = 0;
		}
	}
	if (f->ino == 0) {
		f->ino = files[idx].ino;
		f->off = f->safe_off = 0;
		f->touched = true;
	}
	char *chunk = xmalloc(READ_CHUNK);
	for (;;) {
		int fd = open(files[idx].path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_ino != f->ino) {
			if (fd >= 0)
				close(fd);
			break;		/* rotated under us: the next round sorts it out */
		}
		if (st.st_size < f->off)
			f->off = f->safe_off = 0;	/* truncated */
		bool eof = false;
		while (*budget > 0) {
			ssize_t r = pread(fd, chunk, READ_CHUNK, f->off);
			if (r <= 0) {
				eof = true;
				break;
			}
			size_t used = 0;
			while (used < (size_t)r) {
				char *nl = memchr(chunk + used, '\n', (size_t)r - used);
				if (nl == NULL)
					break;
				size_t len = (size_t)(nl - (chunk + used));
				take_line(l, f, chunk + used, len);
				used += len + 1;
				if (*budget > len + 1)
					*budget -= len + 1;
				else
					*budget = 0;
				if (*budget == 0)
					break;
			}
			if (used == 0 && (size_t)r == READ_CHUNK) {
				/* a line longer than the chunk (a writer that is not the
				 * shim): take it in pieces */
				take_line(l, f, chunk, (size_t)r);
				used = (size_t)r;
				*budget = *budget > used ? *budget - used : 0;
			} else if (used == 0) {
				eof = true;	/* only an unfinished line */
				break;
			}
			f->off += (int64_t)used;
			if (f->partial.len == 0 && f->partial_pieces == 0)
				f->safe_off = f->off;
			f->touched = true;
		}
		close(fd);
		if (!eof || idx + 1 >= n)
			break;
		/* a rotated file is done: go on with the next one from its start */
		flush_partial(l, f);
		idx++;
		f->ino = files[idx].ino;
		f->off = f->safe_off = 0;
		f->touched = true;
	}
	free(chunk);
out:
	for (size_t i = 0; i < n; i++)
		free(files[i].path);
}

/* A label set for f's stream (stream "stdout"/"stderr"), or V6's own. */
static char *
labels_for(struct obs_loki *l, const char *ns, const char *pod, const char *ctr,
    const char *app, const char *stream, const char *component)
{
	const char *names[] = { "namespace", "pod", "container", "app", "node", "stream",
		"component", "job" };
	const char *values[] = { ns, pod, ctr, app, l->node_name, stream, component,
		component ? "v6" : "pods" };
	struct buf b = BUF_INIT;
	obs_loki__labels(&b, names, values, ARRAY_SIZE(names));
	return buf_steal(&b);
}

/* Worker: V6's own lines logged since the last round. */
static void
take_sink(struct obs_loki *l, size_t *budget)
{
	pthread_mutex_lock(&l->sink_mu);
	struct sink_line *s = l->sink_head;
	l->sink_head = NULL;
	l->sink_tail = &l->sink_head;
	l->sink_bytes = 0;
	pthread_mutex_unlock(&l->sink_mu);
	while (s) {
		struct sink_line *next = s->next;
		char *labels = labels_for(l, NULL, NULL, NULL, NULL, "stderr", s->component);
		struct loki_stream *st = obs_loki__enc_stream(l->enc, labels);
		free(labels);
		size_t len = s->len < l->cfg.max_line_bytes ? s->len : l->cfg.max_line_bytes;
		obs_loki__enc_add(l->enc, st, s->ts_ms * 1000000, s->line, len);
		l->r_lines++;
		*budget = *budget > len ? *budget - len : 0;
		free(s);
		s = next;
	}
}

static void
gzip_body(const char *in, size_t len, char **out, size_t *out_len)
{
	z_stream z = { 0 };
	BUG_ON(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK);
	size_t cap = deflateBound(&z, len);
	char *o = xmalloc(cap);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)o;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	BUG_ON(rc != Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	*out = o;
}

/* ---- the on-disk spool ------------------------------------------------------ */
/* One file per batch, SPOOL/%016llx.batch: "v6-loki-spool 1 LINES\n" and
 * the gzipped push body. */
#define SPOOL_MAGIC "v6-loki-spool 1 "

static char *
spool_path(const struct obs_loki *l, uint64_t seq)
{
	return xasprintf("%s/%016llx.batch", l->spool_dir, (unsigned long long)seq);
}

/* Pool thread: writes b durably (the file, then its directory). */
static void
spool_write(struct obs_loki *l, struct batch *b)
{
	struct buf f = BUF_INIT;
	uint64_t seq = l->spool_seq + 1;
	char *path = spool_path(l, seq);
	buf_printf(&f, SPOOL_MAGIC "%zu\n", b->lines);
	buf_append(&f, b->body, b->body_len);
	int rc = file_write_atomic(path, f.data, f.len, true);
	if (rc == 0) {
		int dfd = open(l->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0 && fsync(dfd) < 0)
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (rc == 0)
		b->seq = l->spool_seq = seq;
	else
		log_warn("loki", "spooling a batch to %s: %s (it waits in memory only)", path,
		    strerror(-rc));
	free(path);
	buf_free(&f);
}

static void
spool_remove(struct obs_loki *l, struct batch *b)
{
	if (!b->seq)
		return;
	char *path = spool_path(l, b->seq);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("loki", "removing %s: %s", path, strerror(errno));
	free(path);
	b->seq = 0;
}

static int
spool_name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
spool_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n == 16 + 6 && strcmp(d->d_name + 16, ".batch") == 0;
}

static void spool_trim(struct obs_loki *l);

/* At start: the batches a previous run spooled and Loki never took, oldest
 * first, ahead of anything read now (their positions were written). */
static void
spool_load(struct obs_loki *l)
{
	struct dirent **names = NULL;
	int n = scandir(l->spool_dir, &names, spool_file, spool_name_cmp);
	size_t loaded = 0, lines = 0;

	for (int i = 0; i < n; i++) {
		uint64_t seq = strtoull(names[i]->d_name, NULL, 16);
		char *path = spool_path(l, seq), *text = NULL;
		size_t len = 0, nl;
		unsigned long long nlines;
		int hdr = 0;
		if (file_read_all(path, &text, &len) == 0 && len > strlen(SPOOL_MAGIC) &&
		    sscanf(text, SPOOL_MAGIC "%llu%n", &nlines, &hdr) == 1 &&
		    (nl = (size_t)hdr) < len && text[nl] == '\n' && nlines > 0) {
			struct batch *b = xcalloc(1, sizeof *b);
			b->body_len = len - nl - 1;
			b->body = xmalloc(b->body_len);
			memcpy(b->body, text + nl + 1, b->body_len);
			b->lines = (size_t)nlines;
			b->seq = seq;
			b->committed = true;
			*l->queue_tail = b;
			l->queue_tail = &b->next;
			l->st.spool_bytes += b->body_len;
			l->st.spool_batches++;
			loaded++;
			lines += b->lines;
		} else {
			log_warn("loki", "dropping unreadable spool file %s", path);
			unlink(path);
		}
		if (seq > l->spool_seq)
			l->spool_seq = seq;
		free(text);
		free(path);
		free(names[i]);
	}
	free(names);
	if (loaded)
		log_info("loki", "resending %zu spooled batches (%zu lines)", loaded, lines);
	spool_trim(l);
}

static void
round_work(uv_work_t *w)
{
	struct obs_loki *l = w->data;
	size_t budget = l->cfg.batch_bytes;
	discover(l);
	take_sink(l, &budget);
	l->more = false;
	for (struct fam *f = l->fams; f; f = f->next) {
		if (!f->ready || f->gone)
			continue;
		if (budget == 0) {
			l->more = true;
			break;
		}
		read_fam(l, f, &budget);
	}
	if (budget == 0)
		l->more = true;
	struct batch *b = xcalloc(1, sizeof *b);
	struct buf j = BUF_INIT;
	b->lines = obs_loki__enc_take(l->enc, &j);
	if (b->lines > 0)
		gzip_body(j.data, j.len, &b->body, &b->body_len);
	buf_free(&j);
	size_t np = 0;
	for (struct fam *f = l->fams; f; f = f->next)
		np += f->touched;
	b->pos = np ? xcalloc(np, sizeof *b->pos) : NULL;
	for (struct fam *f = l->fams; f; f = f->next)
		if (f->touched) {
			b->pos[b->npos++] = (struct pos){ f, f->ino, f->safe_off, f->last_ts };
			f->touched = false;
		}
	if (b->lines > 0)
		spool_write(l, b);
	l->round = b;
}

static void
batch_free(struct batch *b)
{
	free(b->body);
	free(b->pos);
	free(b);
}

/* Loop: the batch is durable (spooled) or done (acknowledged or given up):
 * its positions hold. */
static void
commit(struct obs_loki *l, struct batch *b)
{
	if (b->committed)
		return;		/* when it was spooled: positions never go back */
	b->committed = true;
	for (size_t i = 0; i < b->npos; i++) {
		struct fam *f = b->pos[i].f;
		f->c_known = true;
		f->c_ino = b->pos[i].ino;
		f->c_off = b->pos[i].off;
		f->c_ts = b->pos[i].ts;
	}
	if (b->npos)
		l->pos_dirty = true;
}

static void
pos_work(uv_work_t *w)
{
	struct obs_loki *l = w->data;
	int rc = file_write_atomic(l->pos_path, l->pos_text, strlen(l->pos_text), true);
	if (rc < 0)
		log_warn("loki", "writing %s: %s", l->pos_path, strerror(-rc));
}

static void
pos_done(uv_work_t *w, int status)
{
	(void)status;
	struct obs_loki *l = w->data;
	l->pos_writing = false;
	free(l->pos_text);
	l->pos_text = NULL;
	if (l->stopping) {
		maybe_free(l);
		return;
	}
	save_positions(l);
}

/* Loop, with no round running: writes the committed positions (fsync). */
static void
save_positions(struct obs_loki *l)
{
	if (!l->pos_dirty || l->pos_writing || l->reading)
		return;
	json_t *files = json_object();
	for (struct fam *f = l->fams; f; f = f->next)
		if (f->c_known && !f->gone)
			json_object_set_new(files, f->key, json_pack("{s:I, s:I, s:I}", "inode",
			    (json_int_t)f->c_ino, "offset", (json_int_t)f->c_off, "ts",
			    (json_int_t)f->c_ts));
	json_t *doc = json_pack("{s:i, s:o}", "version", 1, "files", files);
	l->pos_text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	l->pos_dirty = false;
	l->pos_writing = true;
	l->pos_work.data = l;
	BUG_ON(uv_queue_work(l->loop, &l->pos_work, pos_work, pos_done) != 0);
}

/* Loop: drops the oldest batches past the spool's size; their positions
 * move to the batch after them, so positions never go back. */
static void
spool_trim(struct obs_loki *l)
{
	struct batch **pp = &l->queue;
	if (l->sending && *pp)
		pp = &(*pp)->next;	/* the one on the wire stays */
	while (l->st.spool_bytes > l->cfg.spool_bytes && *pp && (*pp)->next) {
		struct batch *b = *pp, *n = b->next;
		size_t np = n->npos + b->npos;
		n->pos = xrealloc(n->pos, (np ? np : 1) * sizeof *n->pos);
		/* older positions first: the newer ones of n, read later, win */
		memmove(n->pos + b->npos, n->pos, n->npos * sizeof *n->pos);
		memcpy(n->pos, b->pos, b->npos * sizeof *b->pos);
		n->npos = np;
		l->st.spool_bytes -= b->body_len;
		l->st.spool_batches--;
		l->st.lines_dropped += b->lines;
		l->st.batches_dropped++;
		log_warn("loki", "spool full (%zu bytes): dropped the oldest batch of %zu lines",
		    l->cfg.spool_bytes, b->lines);
		*pp = n;
		spool_remove(l, b);
		batch_free(b);
	}
	struct batch *last = l->queue;
	while (last && last->next)
		last = last->next;
	l->queue_tail = last ? &last->next : &l->queue;
}

static void
round_done(uv_work_t *w, int status)
{
	(void)status;
	struct obs_loki *l = w->data;
	l->reading = false;
	struct batch *b = l->round;
	l->round = NULL;
	if (b->lines == 0 && b->npos == 0) {
		batch_free(b);
		b = NULL;
	}
	l->st.lines_read += l->r_lines;
	l->st.lines_split += l->r_split;
	l->st.files_lost += l->r_lost;
	l->r_lines = l->r_split = l->r_lost = 0;
	/* bind the labels of new families (the pod's app label, on the loop) */
	for (struct fam *f = l->fams; f; f = f->next) {
		if (f->ready || f->gone)
			continue;
		char app[256] = "";
		if (f->kind == FAM_CRI && l->cfg.app)
			l->cfg.app(l->cfg.app_arg, f->ns, f->pod, app, sizeof app);
		for (int s = 0; s < 2; s++) {
			char *lb = f->kind == FAM_CRI ?
			    labels_for(l, f->ns, f->pod, f->ctr, app, s ? "stderr" : "stdout", NULL) :
			    labels_for(l, NULL, NULL, NULL, NULL, "stderr", "proxy");
			f->st[s] = obs_loki__enc_stream(l->enc, lb);
			f->st[s]->refs++;
			obs_loki__enc_seen(f->st[s], f->last_ts);
			free(lb);
		}
		f->ready = true;
		l->more = true;		/* read it now */
	}
	if (b) {
		if (b->seq || b->lines == 0)
			commit(l, b);	/* on disk, or nothing to lose */
		*l->queue_tail = b;
		l->queue_tail = &b->next;
		l->st.spool_bytes += b->body_len;
		l->st.spool_batches++;
		spool_trim(l);
	}
	if (l->stopping) {
		maybe_free(l);
		return;
	}
	send_next(l);
	uv_timer_start(&l->tick, on_tick, l->more ? 0 : (uint64_t)l->cfg.batch_wait_ms, 0);
}

static void
on_tick(uv_timer_t *t)
{
	round_start(t->data);
}

/* Loop, no round running and no batch left: forgets the families whose
 * pod is gone (no batch refers to them any more). */
static void
prune_gone(struct obs_loki *l)
{
	if (l->reading || l->queue)
		return;
	for (struct fam **pp = &l->fams; *pp;) {
		struct fam *f = *pp;
		if (!f->gone) {
			pp = &f->next;
			continue;
		}
		*pp = f->next;
		struct fam **hp = &l->fbucket[hash_str(f->key) % HASH_BUCKETS];
		while (*hp != f)
			hp = &(*hp)->hnext;
		*hp = f->hnext;
		l->pos_dirty = true;
		enc_release(l->enc, f->st[0]);
		enc_release(l->enc, f->st[1]);
		fam_free(f);
	}
}

static void
round_start(struct obs_loki *l)
{
	if (l->reading || l->stopping)
		return;
	l->reading = true;
	l->work.data = l;
	BUG_ON(uv_queue_work(l->loop, &l->work, round_work, round_done) != 0);
}

/* ---- the push ---------------------------------------------------------------- */

static void on_pushed(int rc, const struct http_response *res, void *arg);

static void
retry_fire(uv_timer_t *t)
{
	struct obs_loki *l = t->data;
	send_next(l);
}

static void
send_next(struct obs_loki *l)
{
	while (!l->sending && !l->stopping && l->queue && !uv_is_active((uv_handle_t *)&l->retry)) {
		struct batch *b = l->queue;
		if (b->lines > 0) {
			static const char hdrs[] = "Content-Type: application/json\r\n"
			    "Content-Encoding: gzip\r\nUser-Agent: v6-loki-shipper\r\n";
			struct http_client_opts o = { .method = "POST", .path = l->path,
				.host = l->host_header, .headers = hdrs, .body = b->body,
				.body_len = b->body_len, .timeout_ms = (unsigned)l->cfg.timeout_ms,
				.max_body = 64 * 1024 };
			l->sending = true;
			http_client_request(l->loop, (struct sockaddr *)&l->addr, &o, on_pushed, l,
			    &l->req);
			return;
		}
		commit(l, b);
		l->queue = b->next;
		if (l->queue == NULL)
			l->queue_tail = &l->queue;
		l->st.spool_batches--;
		batch_free(b);
	}
	prune_gone(l);
	save_positions(l);
}

static void
batch_done(struct obs_loki *l, bool sent)
{
	struct batch *b = l->queue;
	if (sent) {
		l->st.lines_sent += b->lines;
		l->st.bytes_sent += b->body_len;
		l->st.batches_sent++;
	} else {
		l->st.lines_dropped += b->lines;
		l->st.batches_dropped++;
	}
	commit(l, b);
	spool_remove(l, b);
	l->queue = b->next;
	if (l->queue == NULL)
		l->queue_tail = &l->queue;
	l->st.spool_bytes -= b->body_len;
	l->st.spool_batches--;
	batch_free(b);
	l->attempt = 0;
}

static void
on_pushed(int rc, const struct http_response *res, void *arg)
{
	struct obs_loki *l = arg;
	l->sending = false;
	l->req = NULL;
	int status = rc == 0 ? res->status : 0;
	if (status >= 200 && status < 300) {
		batch_done(l, true);
	} else if (status >= 400 && status < 500 && status != 429) {
		log_warn("loki", "push refused with %d, dropping %zu lines: %.200s", status,
		    l->queue->lines, res->body);
		batch_done(l, false);
	} else {
		l->attempt++;
		l->st.retries++;
		int64_t delay = obs_loki__backoff_ms(l->attempt, l->cfg.backoff_min_ms,
		    l->cfg.backoff_max_ms, util_random32());
		const char *ra = status == 429 ? http_response_header(res, "Retry-After") : NULL;
		if (ra && atoll(ra) > 0 && atoll(ra) * 1000 > delay)
			delay = atoll(ra) * 1000 < l->cfg.backoff_max_ms ? atoll(ra) * 1000 :
			    l->cfg.backoff_max_ms;
		if (l->attempt == 1 || l->attempt % 10 == 0) {
			char why[64];
			if (status)
				snprintf(why, sizeof why, "HTTP %d", status);
			else
				snprintf(why, sizeof why, "%s", strerror(-rc));
			log_warn("loki", "push of %zu lines failed (%s), attempt %u, retrying in "
			    "%lld ms", l->queue->lines, why, l->attempt, (long long)delay);
		}
		uv_timer_start(&l->retry, retry_fire, (uint64_t)delay, 0);
	}
	send_next(l);
}

/* ---- own log lines (any thread) ------------------------------------------------ */

static void
on_log_line(void *arg, enum log_level level, const char *component, int64_t time_ms,
    const char *line, size_t len)
{
	(void)level;
	struct obs_loki *l = arg;
	struct sink_line *s = xmalloc(sizeof *s + len + 1);
	s->ts_ms = time_ms;
	snprintf(s->component, sizeof s->component, "%s", component);
	s->len = len;
	memcpy(s->line, line, len);
	s->line[len] = '\0';
	s->next = NULL;
	pthread_mutex_lock(&l->sink_mu);
	if (l->sink_bytes + len > SINK_MAX_BYTES) {
		l->sink_dropped++;
		free(s);
	} else {
		*l->sink_tail = s;
		l->sink_tail = &s->next;
		l->sink_bytes += len;
	}
	pthread_mutex_unlock(&l->sink_mu);
}

/* ---- start / stop ------------------------------------------------------------- */

static int
parse_url(struct obs_loki *l, const char *url)
{
	if (!str_has_prefix(url, "http://"))
		return -EINVAL;
	const char *h = url + 7, *slash = strchr(h, '/');
	char *hostport = slash ? xstrndup(h, (size_t)(slash - h)) : xstrdup(h);
	l->path = xstrdup(slash && slash[1] ? slash : LOKI_PATH);
	l->host_header = xstrdup(hostport);
	char *host = hostport, *port = NULL;
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		if (close == NULL) {
			free(hostport);
			return -EINVAL;
		}
		*close = '\0';
		host++;
		port = close[1] == ':' ? close + 2 : NULL;
	} else if ((port = strrchr(host, ':')) != NULL) {
		*port++ = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc = getaddrinfo(host, port && *port ? port : "80", &hints, &ai);
	if (rc == 0 && ai) {
		memcpy(&l->addr, ai->ai_addr, ai->ai_addrlen);
		freeaddrinfo(ai);
	}
	free(hostport);
	return rc == 0 ? 0 : -EINVAL;
}

static void
load_positions(struct obs_loki *l)
{
	json_error_t je;
	json_t *doc = json_load_file(l->pos_path, 0, &je);
	json_t *files = json_object_get(doc, "files");
	l->saved = json_is_object(files) ? json_incref(files) : json_object();
	if (doc == NULL && access(l->pos_path, F_OK) == 0)
		log_warn("loki", "ignoring %s: %s", l->pos_path, je.text);
	json_decref(doc);
}

int
obs_loki_start(uv_loop_t *loop, const struct obs_loki_config *cfg, struct obs_loki **out)
{
	struct obs_loki *l = xcalloc(1, sizeof *l);
	l->loop = loop;
	l->cfg = *cfg;
	if (!l->cfg.batch_bytes)
		l->cfg.batch_bytes = 1u << 20;
	if (!l->cfg.batch_wait_ms)
		l->cfg.batch_wait_ms = 1000;
	if (!l->cfg.spool_bytes)
		l->cfg.spool_bytes = 64u << 20;
	if (!l->cfg.max_line_bytes)
		l->cfg.max_line_bytes = 256 * 1024;
	if (!l->cfg.timeout_ms)
		l->cfg.timeout_ms = 10000;
	if (!l->cfg.backoff_min_ms)
		l->cfg.backoff_min_ms = 500;
	if (!l->cfg.backoff_max_ms)
		l->cfg.backoff_max_ms = 30000;
	if (parse_url(l, cfg->url) < 0) {
		free(l->path);
		free(l->host_header);
		free(l);
		return -EINVAL;
	}
	l->url = xstrdup(cfg->url);
	l->state_dir = xstrdup(cfg->state_dir);
	l->node_name = xstrdup(cfg->node_name ? cfg->node_name : "");
	l->cfg.url = l->url;
	l->cfg.state_dir = l->state_dir;
	l->cfg.node_name = l->node_name;
	char *dir = xasprintf("%s/loki", l->state_dir);
	mkdir(dir, 0750);
	l->pos_path = xasprintf("%s/positions.json", dir);
	l->spool_dir = xasprintf("%s/spool", dir);
	mkdir(l->spool_dir, 0750);
	free(dir);
	load_positions(l);
	l->enc = obs_loki__enc_new();
	if (cfg->proxy_log) {
		l->proxy_log = xstrdup(cfg->proxy_log);
		fam_add(l, l->proxy_log, FAM_RAW);	/* an absolute key */
	}
	pthread_mutex_init(&l->sink_mu, NULL);
	l->sink_tail = &l->sink_head;
	l->queue_tail = &l->queue;
	spool_load(l);
	uv_timer_init(loop, &l->tick);
	uv_timer_init(loop, &l->retry);
	l->tick.data = l->retry.data = l;
	log_set_sink(on_log_line, l);
	log_info("loki", "shipping pod logs and V6's own logs to %s", l->url);
	round_start(l);
	*out = l;
	return 0;
}

void
obs_loki_get_stats(const struct obs_loki *l, struct obs_loki_stats *out)
{
	*out = l->st;
	out->lines_dropped += l->sink_dropped;
}

static void
on_closed(uv_handle_t *h)
{
	struct obs_loki *l = h->data;
	l->closing--;
	maybe_free(l);
}

static void
maybe_free(struct obs_loki *l)
{
	if (l->closing > 0 || l->reading || l->pos_writing)
		return;
	if (l->pos_dirty) {
		save_positions(l);	/* one last write of what was acknowledged */
		return;
	}
	while (l->queue) {
		struct batch *b = l->queue;
		l->queue = b->next;
		batch_free(b);
	}
	while (l->fams) {
		struct fam *f = l->fams;
		l->fams = f->next;
		fam_free(f);
	}
	while (l->sink_head) {
		struct sink_line *s = l->sink_head;
		l->sink_head = s->next;
		free(s);
	}
	pthread_mutex_destroy(&l->sink_mu);
	obs_loki__enc_free(l->enc);
	json_decref(l->saved);
	free(l->url);
	free(l->host_header);
	free(l->path);
	free(l->state_dir);
	free(l->node_name);
	free(l->proxy_log);
	free(l->pos_path);
	free(l->spool_dir);
	free(l);
}

void
obs_loki_stop(struct obs_loki *l)
{
	if (l == NULL)
		return;
	log_set_sink(NULL, NULL);
	l->stopping = true;
	if (l->req) {
		http_client_cancel(l->req);
		l->req = NULL;
		l->sending = false;
	}
	l->closing = 2;
	uv_close((uv_handle_t *)&l->tick, on_closed);
	uv_close((uv_handle_t *)&l->retry, on_closed);
}
