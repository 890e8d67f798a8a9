/* cli_portforward.c — `v6 port-forward TARGET [LOCAL:]REMOTE...`: listens
 * on 127.0.0.1:LOCAL (0 or empty: a free port, printed as kubectl prints
 * it) and joins each accepted connection to REMOTE in the pod through its
 * own WebSocket to .../pods/NAME/portforward?ports=REMOTE
 * (v4.channel.k8s.io: channel 0 data, 1 errors, each opened by the port
 * in 2 bytes). TARGET is a pod (NAME, pod/NAME) or svc/NAME and
 * deploy/NAME, resolved here to a running pod of their selector (a
 * Service port to its targetPort), as kubectl does. Runs until SIGINT or
 * SIGTERM. */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PF_MAX_LISTEN	16
#define PF_MAX_CONNS	256

struct fwd {
	int fd;				/* the listening socket */
	int local, remote;		/* ports */
};

struct pair {
	int fd;				/* the local connection */
	struct cli_ws *ws;
	int remote;
	bool seen[2];			/* channel 0 / 1 opened (the port prefix) */
	bool dead;
};

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* A running pod of the selector at path (a Service's spec.selector, a
 * workload's spec.selector.matchLabels); caller frees. */
static char *
pod_of_selector(const struct cli_opts *o, const json_t *sel)
{
	struct buf s = BUF_INIT, q = BUF_INIT;
	const char *k;
	json_t *v, *list = NULL;
	json_object_foreach((json_t *)sel, k, v)
		buf_printf(&s, "%s%s=%s", s.len ? "," : "", k, json_string_value(v));
	if (!s.len) {
		buf_free(&s);
		return NULL;
	}
	cli_query_add(&q, "labelSelector", s.data);
	char *path = cli_path(kind_find_gvk("v1", "Pod"), cli_ns(o), NULL, q.data);
	char *name = NULL;
	if (cli_get_json(path, &list) == 0) {
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(list, "items"), i, p)
			if (!name && strcmp(obj_str_at(p, "status.phase"), "Running") == 0)
				name = xstrdup(obj_str_at(p, "metadata.name"));
	}
	json_decref(list);
	free(path);
	buf_free(&s);
	buf_free(&q);
	return name;
}

/* The port a Service port maps to in its pods (a named targetPort is
 * taken as the pod's container port of that name by the server's own
 * Endpoints; here only numbers are followed). */
static int
service_target(const json_t *svc, int port)
{
	size_t i;
	json_t *p;
	json_array_foreach(obj_get_path(svc, "spec.ports"), i, p) {
		if (obj_int_at(p, "port", 0) != port)
			continue;
		json_t *t = json_object_get(p, "targetPort");
		return json_is_integer(t) ? (int)json_integer_value(t) : port;
	}
	return -1;
}

/* Resolves TARGET to a pod; for a Service, maps the remote ports. */
static char *
resolve(const struct cli_opts *o, struct fwd *f, size_t nf)
{
	const char *t = o->args[0], *slash = strchr(t, '/');
	if (!slash || strncmp(t, "pod/", 4) == 0 || strncmp(t, "pods/", 5) == 0)
		return xstrdup(slash ? slash + 1 : t);
	static const struct { const char *prefix, *api, *kind, *sel; } kinds[] = {
		{ "svc/", "v1", "Service", "spec.selector" },
		{ "service/", "v1", "Service", "spec.selector" },
		{ "deploy/", "apps/v1", "Deployment", "spec.selector.matchLabels" },
		{ "deployment/", "apps/v1", "Deployment", "spec.selector.matchLabels" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (strncmp(t, kinds[i].prefix, strlen(kinds[i].prefix)) != 0)
			continue;
		json_t *obj = NULL;
		char *path = cli_path(kind_find_gvk(kinds[i].api, kinds[i].kind), cli_ns(o),
		    slash + 1, NULL);
		int rc = cli_get_json(path, &obj);
		free(path);
		if (rc < 0)
			return NULL;
		char *pod = pod_of_selector(o, obj_get_path(obj, kinds[i].sel));
		for (size_t j = 0; pod && strcmp(kinds[i].kind, "Service") == 0 && j < nf; j++) {
			int to = service_target(obj, f[j].remote);
			if (to < 0) {
				cli_err("service %s does not have a service port %d", slash + 1,
				    f[j].remote);
				free(pod);
				pod = NULL;
			} else {
				f[j].remote = to;
			}
		}
		if (!pod && rc == 0)
			cli_err("no running pod for %s", t);
		json_decref(obj);
		return pod;
	}
	cli_err("cannot forward to %s: a pod (NAME, pod/NAME), svc/NAME or deploy/NAME", t);
	return NULL;
}

static int
listen_on(struct fwd *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)f->local) };
	socklen_t len = sizeof sa;
	int one = 1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	f->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(f->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(f->fd, 64) < 0 || getsockname(f->fd, (struct sockaddr *)&sa, &len) < 0)
		return cli_err("unable to listen on 127.0.0.1:%d: %s", f->local, strerror(errno));
	f->local = ntohs(sa.sin_port);
	printf("Forwarding from 127.0.0.1:%d -> %d\n", f->local, f->remote);
	fflush(stdout);
	return 0;
}

static void
on_message(void *arg, const char *data, size_t len)
{
	struct pair *p = arg;
	if (len == 0 || (unsigned char)data[0] > 1)
		return;
	int ch = data[0];
	data++;
	len--;
	if (!p->seen[ch]) {		/* the port, as the channel opens */
		p->seen[ch] = true;
		data += len < 2 ? len : 2;
		len -= len < 2 ? len : 2;
	}
	if (ch == 0)
		fd_write_all(p->fd, data, len);
	else if (len) {
		fprintf(stderr, "an error occurred forwarding -> %d: %.*s\n", p->remote,
		    (int)len, data);
		p->dead = true;
	}
}

static void
pair_close(struct pair *p)
{
	cli_ws_close(p->ws);
	close(p->fd);
	memset(p, 0, sizeof *p);
	p->fd = -1;
}

static void
accept_one(const struct cli_opts *o, const char *pod, const struct fwd *f, struct pair *p)
{
	int fd = accept4(f->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	printf("Handling connection for %d\n", f->local);
	fflush(stdout);
	char *base = cli_path(kind_find_gvk("v1", "Pod"), cli_ns(o), pod, NULL);
	char *path = xasprintf("%s/portforward?ports=%d", base, f->remote);
	struct cli_ws *ws = cli_ws_open(path, "v4.channel.k8s.io");
	free(base);
	free(path);
	if (!ws) {
		close(fd);
		return;
	}
	*p = (struct pair){ .fd = fd, .ws = ws, .remote = f->remote };
}

/* One turn: a connection's bytes either way, or its end. */
static void
pair_pump(struct pair *p, const struct pollfd *local)
{
	if (cli_ws_read(p->ws, on_message, p) != 0 || p->dead) {
		pair_close(p);
		return;
	}
	if (!(local->revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	char chunk[32768];
	ssize_t n = read(p->fd, chunk, sizeof chunk);
	if (n > 0)
		cli_ws_send(p->ws, 0, chunk, (size_t)n);
	else if (n == 0 || errno != EINTR)
		pair_close(p);		/* v4 has no half-close: the end of both */
}

static int
parse_ports(const struct cli_opts *o, struct fwd *f, size_t *nf)
{
	*nf = 0;
	for (size_t i = 1; i < o->nargs && *nf < PF_MAX_LISTEN; i++) {
		const char *a = o->args[i], *colon = strchr(a, ':');
		char *end = (char *)colon;
		long local = colon ? (colon == a ? 0 : strtol(a, &end, 10)) : -1;
		bool bad = colon && end != colon;
		long remote = strtol(colon ? colon + 1 : a, &end, 10);
		if (bad || *end || remote < 1 || remote > 65535 || local > 65535 ||
		    (colon && local < 0))
			return cli_err("invalid port %s: [LOCAL]:REMOTE or REMOTE", a);
		f[*nf].local = local < 0 ? (int)remote : (int)local;
		f[*nf].remote = (int)remote;
		(*nf)++;
	}
	return *nf ? 0 : cli_err("v6 port-forward needs a port: TARGET [LOCAL:]REMOTE...");
}

int
cli_port_forward(struct cli_opts *o)
{
	struct fwd f[PF_MAX_LISTEN];
	static struct pair pairs[PF_MAX_CONNS];
	size_t nf;
	if (o->nargs < 2 || parse_ports(o, f, &nf))
		return o->nargs < 2 ? cli_err("v6 port-forward needs a target and a port: "
		    "v6 port-forward TARGET [LOCAL:]REMOTE...") : 1;
	char *pod = resolve(o, f, nf);
	if (!pod)
		return 1;
	for (size_t i = 0; i < nf; i++)
		f[i].fd = -1;
	int rc = 0;
	for (size_t i = 0; i < nf && rc == 0; i++)
		rc = listen_on(&f[i]);
	for (size_t i = 0; i < PF_MAX_CONNS; i++)
		pairs[i].fd = -1;
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (rc == 0 && !stopping) {
		struct pollfd p[PF_MAX_LISTEN + 2 * PF_MAX_CONNS];
		size_t n = 0;
		for (size_t i = 0; i < nf; i++)
			p[n++] = (struct pollfd){ .fd = f[i].fd, .events = POLLIN };
		for (size_t i = 0; i < PF_MAX_CONNS; i++) {
			p[n++] = (struct pollfd){ .fd = pairs[i].fd, .events = POLLIN };
			p[n++] = (struct pollfd){ .fd = pairs[i].fd >= 0 ? cli_ws_fd(pairs[i].ws) : -1,
				.events = POLLIN };
		}
		if (poll(p, n, 100) < 0 && errno != EINTR)
			break;
		for (size_t i = 0; i < PF_MAX_CONNS; i++)
			if (pairs[i].fd >= 0)
				pair_pump(&pairs[i], &p[nf + 2 * i]);
		for (size_t i = 0; i < nf; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			size_t j = 0;
			while (j < PF_MAX_CONNS && pairs[j].fd >= 0)
				j++;
			if (j < PF_MAX_CONNS)
				accept_one(o, pod, &f[i], &pairs[j]);
		}
	}
	for (size_t i = 0; i < PF_MAX_CONNS; i++)
		if (pairs[i].fd >= 0)
			pair_close(&pairs[i]);
	for (size_t i = 0; i < nf; i++)
		if (f[i].fd >= 0)
			close(f[i].fd);
	free(pod);
	return rc;
}
