/* bench/store/load.c — HTTP/1.1 keep-alive load generator for the store
 * benchmark: creates COUNT ConfigMaps (the same ~1 KB JSON body for every
 * target) over CONNS connections, or times full lists, and prints one JSON
 * line of figures. Built and driven by bench/store/run.sh; C because Python's
 * http.client tops out near the rate the benchmark has to measure. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum target { T_V6, T_ETCD, T_RAW };

struct opts {
	const char	*host;
	int		 port;
	enum target	 target;
	const char	*op;		/* "apply" or "list" */
	const char	*ns;		/* namespace the objects go to */
	const char	*prefix;	/* object names are PREFIX-%06d */
	long		 count;
	int		 conns;
	int		 reps;		/* lists to time */
	double		 limit_s;	/* whole run bounded by this */
};

struct conn {
	int	 fd;
	char	*buf;
	size_t	 len, cap, pos;	/* bytes in buf, allocated, consumed */
};

struct resp {
	int	 status;
	size_t	 body_len;
	char	*body;		/* points into conn buf until the next call */
	int	 close;		/* server asked to close */
};

#define STATUS_MAX 600

static struct opts o = {
	.host = "127.0.0.1", .target = T_V6, .op = "apply", .ns = "default",
	.prefix = "bench", .count = 10000, .conns = 16, .reps = 5,
	.limit_s = 300,
};

static long		 next_index;
static long		 done_count;
static int64_t		*lat_ns;	/* per request index, -1 if failed */
static long		 status_count[STATUS_MAX];
static char		 first_error[512];
static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static double		 deadline;

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- bodies ------------------------------------------------------------ */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of src[0..n) and a NUL to dst (room: 4*(n+2)/3+1). */
static size_t
b64_encode(char *dst, const char *src, size_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i, j = 0;

	for (i = 0; i + 2 < n; i += 3) {
		dst[j++] = b64chars[s[i] >> 2];
		dst[j++] = b64chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		dst[j++] = b64chars[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)];
		dst[j++] = b64chars[s[i + 2] & 63];
	}
	if (i + 1 == n) {
		dst[j++] = b64chars[s[i] >> 2];
		dst[j++] = b64chars[(s[i] & 3) << 4];
		dst[j++] = '=';
		dst[j++] = '=';
	} else if (i + 2 == n) {
		dst[j++] = b64chars[s[i] >> 2];
		dst[j++] = b64chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
		dst[j++] = b64chars[(s[i + 1] & 15) << 2];
		dst[j++] = '=';
	}
	dst[j] = '\0';
	return j;
}

/*
 * A ConfigMap as an application team would write it: labels, annotations,
 * a properties file, a JSON feature-flag file and a few env-style keys.
 * About 1 KB of JSON; only the name and index vary.
 */
static int
configmap_json(char *dst, size_t cap, long i)
{
	return snprintf(dst, cap,
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
	    "\"name\":\"%s-%06ld\",\"namespace\":\"%s\",\"labels\":{"
	    "\"app.kubernetes.io/name\":\"checkout\","
	    "\"app.kubernetes.io/part-of\":\"shop\","
	    "\"app.kubernetes.io/managed-by\":\"v6\","
	    "\"tier\":\"backend\",\"shard\":\"s%02ld\"},"
	    "\"annotations\":{\"bench.v6.dev/purpose\":"
	    "\"store benchmark object, safe to delete\","
	    "\"bench.v6.dev/index\":\"%ld\"}},"
	    "\"data\":{"
	    "\"application.properties\":\"server.port=8080\\n"
	    "server.shutdown=graceful\\nspring.datasource.url=jdbc:postgresql:"
	    "//db.shop.svc:5432/checkout\\nspring.datasource.pool.max=20\\n"
	    "cache.ttl.seconds=300\\nretry.max-attempts=3\\n"
	    "retry.backoff.ms=250\\nlogging.level.root=info\\n"
	    "logging.level.shop.checkout=debug\\n\","
	    "\"feature-flags.json\":\"{\\\"newCheckout\\\":true,"
	    "\\\"expressShipping\\\":false,\\\"giftWrap\\\":true,"
	    "\\\"recommendations\\\":{\\\"enabled\\\":true,"
	    "\\\"model\\\":\\\"v3\\\",\\\"limit\\\":12}}\","
	    "\"LOG_FORMAT\":\"json\",\"LOG_LEVEL\":\"info\","
	    "\"OTEL_EXPORTER_OTLP_ENDPOINT\":\"http://otel-collector.observability"
	    ".svc:4317\",\"OTEL_SERVICE_NAME\":\"checkout\","
	    "\"PAYMENT_GATEWAY_URL\":\"https://payments.example.com/api/v2\","
	    "\"PAYMENT_TIMEOUT_MS\":\"4000\",\"REGION\":\"eu-west-1\","
	    "\"INSTANCE_INDEX\":\"%ld\"}}",
	    o.prefix, i, o.ns, i % 16, i, i);
}

/* The etcd key Kubernetes would use for the object. */
static int
etcd_key(char *dst, size_t cap, long i)
{
	if (i < 0)
		return snprintf(dst, cap, "/registry/configmaps/%s/", o.ns);
	return snprintf(dst, cap, "/registry/configmaps/%s/%s-%06ld", o.ns,
	    o.prefix, i);
}

/* Builds the whole request (headers and body) for creating object i. */
static size_t
apply_request(char *dst, size_t cap, long i)
{
	char cm[2048], body[8192], key[256], k64[400], v64[3000];
	int n;

	n = configmap_json(cm, sizeof cm, i);
	if (n < 0 || (size_t)n >= sizeof cm)
		die("configmap body too large");
	if (o.target == T_ETCD) {
		etcd_key(key, sizeof key, i);
		b64_encode(k64, key, strlen(key));
		b64_encode(v64, cm, (size_t)n);
		n = snprintf(body, sizeof body,
		    "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
		n = snprintf(dst, cap, "POST /v3/kv/put HTTP/1.1\r\n"
		    "Host: %s:%d\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n%s", o.host, o.port, n, body);
	} else
		n = snprintf(dst, cap,
		    "POST /api/v1/namespaces/%s/configmaps HTTP/1.1\r\n"
		    "Host: %s:%d\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n%s", o.ns, o.host, o.port, n, cm);
	if (n < 0 || (size_t)n >= cap)
		die("request too large");
	return (size_t)n;
}

static size_t
list_request(char *dst, size_t cap)
{
	char key[256], end[256], k64[400], e64[400], body[1024];
	size_t kl;
	int n;

	if (o.target != T_ETCD)
		n = snprintf(dst, cap,
		    "GET /api/v1/namespaces/%s/configmaps HTTP/1.1\r\n"
		    "Host: %s:%d\r\nAccept: application/json\r\n\r\n",
		    o.ns, o.host, o.port);
	else {
		/* range_end = prefix with its last byte + 1: the whole prefix */
		etcd_key(key, sizeof key, -1);
		kl = strlen(key);
		memcpy(end, key, kl + 1);
		end[kl - 1]++;
		b64_encode(k64, key, kl);
		b64_encode(e64, end, kl);
		n = snprintf(body, sizeof body,
		    "{\"key\":\"%s\",\"range_end\":\"%s\"}", k64, e64);
		n = snprintf(dst, cap, "POST /v3/kv/range HTTP/1.1\r\n"
		    "Host: %s:%d\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n\r\n%s", o.host, o.port, n, body);
	}
	if (n < 0 || (size_t)n >= cap)
		die("request too large");
	return (size_t)n;
}

/* ---- connection and response reading ----------------------------------- */

static int
conn_open(struct conn *c)
{
	struct sockaddr_in sa;
	struct timeval tv = { .tv_sec = 30 };
	int one = 1;

	c->len = c->pos = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -errno;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)o.port);
	if (inet_pton(AF_INET, o.host, &sa.sin_addr) != 1)
		die("bad host %s (IPv4 literal expected)", o.host);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = -errno;
		close(c->fd);
		c->fd = -1;
		return e;
	}
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more bytes into c->buf; 0 on progress, negative on EOF/error. */
static int
fill(struct conn *c)
{
	ssize_t r;

	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 262144;
		c->buf = realloc(c->buf, c->cap);
		if (c->buf == NULL)
			die("out of memory");
	}
	do
		r = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r == 0 ? -ECONNRESET : -errno;
	c->len += (size_t)r;
	c->buf[c->len] = '\0';
	return 0;
}

/* Position just past the next CRLF at or after off, filling as needed. */
static int
line_end(struct conn *c, size_t off, size_t *end)
{
	for (;;) {
		char *p = c->len > off ? memmem(c->buf + off, c->len - off,
		    "\r\n", 2) : NULL;
		if (p != NULL) {
			*end = (size_t)(p - c->buf) + 2;
			return 0;
		}
		if (fill(c) < 0)
			return -EIO;
	}
}

static int
need(struct conn *c, size_t upto)
{
	while (c->len < upto)
		if (fill(c) < 0)
			return -EIO;
	return 0;
}

/*
 * Decodes a chunked body in place: chunks are moved down so the body is
 * contiguous from c->buf + start. Returns its length or negative.
 */
static long
read_chunked(struct conn *c, size_t start)
{
	size_t out = start, off = start, eol;

	for (;;) {
		unsigned long sz;

		if (line_end(c, off, &eol) < 0)
			return -EIO;
		sz = strtoul(c->buf + off, NULL, 16);
		if (need(c, eol + sz + 2) < 0)
			return -EIO;
		memmove(c->buf + out, c->buf + eol, sz);
		out += sz;
		off = eol + sz + 2;
		if (sz == 0)
			break;
	}
	/* trailers end with an empty line; chunk 0's CRLF was the first */
	c->pos = off;
	return (long)(out - start);
}

static int
header_is(const char *line, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncasecmp(line, name, n) != 0 || line[n] != ':')
		return 0;
	*val = line + n + 1;
	while (**val == ' ')
		(*val)++;
	return 1;
}

/* Reads one response off c into r. The buffer holds nothing else after. */
static int
read_response(struct conn *c, struct resp *r)
{
	size_t off = 0, eol;
	long clen = -1;
	int chunked = 0;
	const char *v;

	/* no pipelining: anything left over from before is garbage */
	c->len = c->pos = 0;
	memset(r, 0, sizeof *r);
	if (line_end(c, 0, &eol) < 0)
		return -EIO;
	if (sscanf(c->buf, "HTTP/1.%*d %d", &r->status) != 1)
		return -EPROTO;
	for (off = eol;; off = eol) {
		if (line_end(c, off, &eol) < 0)
			return -EIO;
		if (eol == off + 2)
			break;
		c->buf[eol - 2] = '\0';
		if (header_is(c->buf + off, "content-length", &v))
			clen = atol(v);
		else if (header_is(c->buf + off, "transfer-encoding", &v))
			chunked = strcasestr(v, "chunked") != NULL;
		else if (header_is(c->buf + off, "connection", &v))
			r->close = strcasestr(v, "close") != NULL;
	}
	if (chunked) {
		long n = read_chunked(c, eol);
		if (n < 0)
			return -EIO;
		r->body_len = (size_t)n;
	} else if (clen >= 0) {
		if (need(c, eol + (size_t)clen) < 0)
			return -EIO;
		r->body_len = (size_t)clen;
	} else {
		while (fill(c) == 0)
			;
		r->body_len = c->len - eol;
		r->close = 1;
	}
	r->body = c->buf + eol;
	return 0;
}

/* ---- apply ------------------------------------------------------------- */

static void
note_error(int status, const char *what, size_t n)
{
	pthread_mutex_lock(&mu);
	if (first_error[0] == '\0')
		snprintf(first_error, sizeof first_error, "status %d: %.*s",
		    status, (int)(n > 300 ? 300 : n), what);
	pthread_mutex_unlock(&mu);
}

/* Creates must answer 201 from V6 (200 would mean "updated"); lists 200. */
static int
success(int status)
{
	if (o.target == T_V6 && strcmp(o.op, "apply") == 0)
		return status == 201;
	return status >= 200 && status < 300;
}

static void *
apply_worker(void *arg)
{
	struct conn c = { .fd = -1 };
	char *req = xmalloc(16384);
	struct resp r;

	(void)arg;
	for (;;) {
		long i = __atomic_fetch_add(&next_index, 1, __ATOMIC_RELAXED);
		size_t n;
		int64_t t0;

		if (i >= o.count || now_s() > deadline)
			break;
		n = apply_request(req, 16384, i);
		if (c.fd < 0 && conn_open(&c) < 0) {
			__atomic_fetch_add(&status_count[0], 1, __ATOMIC_RELAXED);
			note_error(0, "connect failed", 14);
			usleep(10000);
			continue;
		}
		t0 = now_ns();
		if (send_all(c.fd, req, n) < 0 || read_response(&c, &r) < 0) {
			__atomic_fetch_add(&status_count[0], 1, __ATOMIC_RELAXED);
			note_error(0, "connection lost", 15);
			conn_close(&c);
			continue;
		}
		lat_ns[i] = now_ns() - t0;
		__atomic_fetch_add(&status_count[r.status < STATUS_MAX &&
		    r.status > 0 ? r.status : 0], 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&done_count, 1, __ATOMIC_RELAXED);
		if (!success(r.status)) {
			lat_ns[i] = -1;
			note_error(r.status, r.body, r.body_len);
		}
		if (r.close)
			conn_close(&c);
	}
	conn_close(&c);
	free(c.buf);
	free(req);
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n), in milliseconds. */
static double
pct_ms(const int64_t *v, long n, double p)
{
	long k;

	if (n == 0)
		return -1;
	k = (long)(p * (double)n + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return (double)v[k] / 1e6;
}

static void
print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void
print_status_counts(void)
{
	int s, first = 1;

	printf("\"status\":{");
	for (s = 0; s < STATUS_MAX; s++)
		if (status_count[s]) {
			printf("%s\"%d\":%ld", first ? "" : ",", s,
			    status_count[s]);
			first = 0;
		}
	printf("}");
}

static int
run_apply(void)
{
	pthread_t *th = xmalloc(sizeof *th * (size_t)o.conns);
	int64_t *ok = xmalloc(sizeof *ok * (size_t)o.count);
	long i, nok = 0;
	double t0, el;
	int64_t sum = 0;
	char sample[2048];
	int k;

	lat_ns = xmalloc(sizeof *lat_ns * (size_t)o.count);
	for (i = 0; i < o.count; i++)
		lat_ns[i] = -1;
	t0 = now_s();
	for (k = 0; k < o.conns; k++)
		if (pthread_create(&th[k], NULL, apply_worker, NULL) != 0)
			die("pthread_create failed");
	for (k = 0; k < o.conns; k++)
		pthread_join(th[k], NULL);
	el = now_s() - t0;
	for (i = 0; i < o.count; i++)
		if (lat_ns[i] >= 0) {
			ok[nok++] = lat_ns[i];
			sum += lat_ns[i];
		}
	qsort(ok, (size_t)nok, sizeof *ok, cmp_i64);
	printf("{\"op\":\"apply\",\"count\":%ld,\"conns\":%d,\"ok\":%ld,"
	    "\"errors\":%ld,\"elapsed_s\":%.4f,\"rate\":%.1f,"
	    "\"body_bytes\":%d,\"lat_ms\":{\"mean\":%.3f,\"p50\":%.3f,"
	    "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},",
	    o.count, o.conns, nok, o.count - nok, el, (double)nok / el,
	    configmap_json(sample, sizeof sample, 0),
	    nok ? (double)sum / (double)nok / 1e6 : -1.0,
	    pct_ms(ok, nok, .50), pct_ms(ok, nok, .90), pct_ms(ok, nok, .99),
	    pct_ms(ok, nok, .999), pct_ms(ok, nok, 1));
	print_status_counts();
	printf(",\"first_error\":");
	print_json_string(first_error);
	printf("}\n");
	free(th);
	free(ok);
	free(lat_ns);
	return nok == o.count ? 0 : 1;
}

/* ---- list -------------------------------------------------------------- */

static int
run_list(void)
{
	struct conn c = { .fd = -1 };
	int64_t *t = xmalloc(sizeof *t * (size_t)o.reps);
	char req[2048];
	size_t n = list_request(req, sizeof req), bytes = 0;
	struct resp r = { 0 };
	int k, done = 0, status = 0;

	for (k = 0; k < o.reps && now_s() < deadline; k++) {
		int64_t t0;

		/* a fresh connection per list, as a client listing would */
		if (conn_open(&c) < 0)
			die("connect to %s:%d failed", o.host, o.port);
		t0 = now_ns();
		if (send_all(c.fd, req, n) < 0 || read_response(&c, &r) < 0)
			die("list: connection lost");
		t[done++] = now_ns() - t0;
		status = r.status;
		bytes = r.body_len;
		if (!success(status))
			note_error(status, r.body, r.body_len);
		conn_close(&c);
	}
	qsort(t, (size_t)done, sizeof *t, cmp_i64);
	printf("{\"op\":\"list\",\"reps\":%d,\"status\":%d,\"bytes\":%zu,"
	    "\"ms\":{\"min\":%.2f,\"median\":%.2f,\"max\":%.2f},"
	    "\"first_error\":", done, status, bytes, pct_ms(t, done, 0),
	    pct_ms(t, done, .5), pct_ms(t, done, 1));
	print_json_string(first_error);
	printf("}\n");
	free(c.buf);
	free(t);
	return first_error[0] ? 1 : 0;
}

/* ---- main -------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: load -p PORT [-H HOST] [-t v6|etcd|raw] [-o apply|list]\n"
	    "            [-n COUNT] [-c CONNS] [-N NAMESPACE] [-P PREFIX]\n"
	    "            [-r LIST_REPS] [-l LIMIT_SECONDS]\n"
	    "Prints one JSON line of figures; exit 1 if any request failed.\n");
	exit(2);
}

static enum target
parse_target(const char *s)
{
	static const struct { const char *name; enum target t; } tab[] = {
		{ "v6", T_V6 }, { "etcd", T_ETCD }, { "raw", T_RAW },
	};
	size_t i;

	for (i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(s, tab[i].name) == 0)
			return tab[i].t;
	usage();
	return T_V6;
}

int
main(int argc, char **argv)
{
	int ch;

	while ((ch = getopt(argc, argv, "H:p:t:o:n:c:N:P:r:l:")) != -1) {
		switch (ch) {
		case 'H': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 't': o.target = parse_target(optarg); break;
		case 'o': o.op = optarg; break;
		case 'n': o.count = atol(optarg); break;
		case 'c': o.conns = atoi(optarg); break;
		case 'N': o.ns = optarg; break;
		case 'P': o.prefix = optarg; break;
		case 'r': o.reps = atoi(optarg); break;
		case 'l': o.limit_s = atof(optarg); break;
		default: usage();
		}
	}
	if (o.port <= 0 || o.count <= 0 || o.conns <= 0 || o.reps <= 0 ||
	    o.count > 10000000 || o.conns > 1024)
		usage();
	deadline = now_s() + o.limit_s;
	if (strcmp(o.op, "apply") == 0)
		return run_apply();
	if (strcmp(o.op, "list") == 0)
		return run_list();
	usage();
	return 2;
}
