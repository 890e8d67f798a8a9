/* bench/proxy/idle.c — holds N idle HTTP/1.1 keep-alive connections to one
 * address for the proxy benchmark: opens them (a bounded number of connects
 * in flight), sends one GET on each and reads its response so that each is
 * an established keep-alive connection through the proxy, prints one "ready"
 * JSON line, then holds them idle until stdin closes or the hold time ends,
 * and closes them with a reset (no TIME_WAIT left on loopback). Built and
 * driven by bench/proxy/run.sh and proxy_bench.py.
 *
 * Usage: idle HOST PORT COUNT SETUP_S HOLD_S [PATH] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTING	256	/* connects in flight at once */
#define RESP_MAX	8192	/* response head + body we accept */

enum cstate { C_NEW, C_CONNECTING, C_READING, C_IDLE, C_FAILED, C_CLOSED };

struct cl {
	int fd;
	enum cstate st;
	size_t len;
	char *buf;
};

static struct cl *cls;
static int ncl, epfd;
static struct sockaddr_in addr;
static char req[512];
static size_t req_len;
static int connecting, idle, failed, closed_by_peer;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
cl_fail(struct cl *c)
{
	struct linger lg = { 1, 0 };

	if (c->st == C_CONNECTING)
		connecting--;
	if (c->st == C_IDLE)
		idle--;
	if (c->fd >= 0) {
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->fd);
	}
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->st = C_FAILED;
	failed++;
}

static void
cl_start(struct cl *c)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.ptr = c };

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		cl_fail(c);
		return;
	}
	c->st = C_CONNECTING;
	connecting++;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 &&
	    errno != EINPROGRESS) {
		cl_fail(c);
		return;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		cl_fail(c);
}

/* True once buf holds a whole response: head, then Content-Length bytes
 * (or the end of a chunked body). */
static bool
resp_complete(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *p = buf;
	size_t head, clen = 0;

	if (end == NULL)
		return false;
	head = (size_t)(end - buf) + 4;
	while (p != NULL && p < end) {
		if (strncasecmp(p, "content-length:", 15) == 0)
			clen = strtoul(p + 15, NULL, 10);
		if (strncasecmp(p, "transfer-encoding:", 18) == 0)
			return memmem(buf + head, len - head, "0\r\n\r\n", 5) != NULL;
		if ((p = memchr(p, '\n', (size_t)(end - p))) != NULL)
			p++;
	}
	return len >= head + clen;
}

static void
cl_event(struct cl *c, uint32_t events)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
	ssize_t n;
	int err = 0;
	socklen_t elen = sizeof(err);
	char sink[256];

	switch (c->st) {
	case C_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
			cl_fail(c);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		connecting--;
		if (send(c->fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
			c->st = C_READING;
			cl_fail(c);
			return;
		}
		c->st = C_READING;
		c->buf = malloc(RESP_MAX);
		epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
		return;
	case C_READING:
		n = recv(c->fd, c->buf + c->len, RESP_MAX - c->len, 0);
		if (n <= 0) {
			if (n < 0 && errno == EAGAIN)
				return;
			cl_fail(c);
			return;
		}
		c->len += (size_t)n;
		if (resp_complete(c->buf, c->len)) {
			free(c->buf);
			c->buf = NULL;
			c->st = C_IDLE;
			idle++;
		} else if (c->len == RESP_MAX)
			cl_fail(c);
		return;
	case C_IDLE:
		/* anything now is the proxy closing an idle connection */
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n < 0 && errno == EAGAIN)
			return;
		closed_by_peer++;
		cl_fail(c);
		failed--;
		c->st = C_CLOSED;
		return;
	default:
		return;
	}
}

static void
pump(int timeout_ms)
{
	struct epoll_event evs[512];
	int i, n = epoll_wait(epfd, evs, 512, timeout_ms);

	for (i = 0; i < n; i++)
		cl_event(evs[i].data.ptr, evs[i].events);
}

static void
raise_nofile(int need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	double setup_s, hold_s, t0, deadline;
	int i, next = 0;
	struct pollfd pin = { .fd = 0, .events = POLLIN };
	char b[64];

	if (argc < 6) {
		fprintf(stderr, "usage: idle HOST PORT COUNT SETUP_S HOLD_S [PATH]\n");
		return 2;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "idle: bad address %s\n", argv[1]);
		return 2;
	}
	ncl = atoi(argv[3]);
	setup_s = atof(argv[4]);
	hold_s = atof(argv[5]);
	req_len = (size_t)snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: v6-bench-idle\r\n\r\n",
	    argc > 6 ? argv[6] : "/");
	raise_nofile(ncl + 64);
	cls = calloc((size_t)ncl, sizeof(*cls));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cls == NULL || epfd < 0)
		return 2;

	/* setup: every connection established with one answered request */
	t0 = now_s();
	deadline = t0 + setup_s;
	while (now_s() < deadline && idle + failed < ncl) {
		while (next < ncl && connecting < MAX_CONNECTING)
			cl_start(&cls[next++]);
		pump(20);
	}
	for (i = 0; i < ncl; i++)
		if (cls[i].st != C_IDLE && cls[i].st != C_FAILED && cls[i].st != C_CLOSED)
			cl_fail(&cls[i]);
	printf("{\"ready\": true, \"wanted\": %d, \"idle\": %d, \"failed\": %d, "
	    "\"setup_s\": %.2f}\n", ncl, idle, failed, now_s() - t0);
	fflush(stdout);

	/* hold: until stdin closes or hold_s passes */
	deadline = now_s() + hold_s;
	while (now_s() < deadline) {
		pump(0);
		if (poll(&pin, 1, 50) > 0 && (read(0, b, sizeof(b)) <= 0))
			break;
	}
	pump(0);
	printf("{\"done\": true, \"idle_at_end\": %d, \"closed_by_peer\": %d}\n",
	    idle, closed_by_peer);
	fflush(stdout);
	for (i = 0; i < ncl; i++)
		if (cls[i].fd >= 0)
			cl_fail(&cls[i]);
	return 0;
}
