/* node_probe.c — probe and lifecycle-hook handlers for the node agent, all
 * asynchronous on the server's loop: httpGet (a GET by the HTTP client of
 * http_client.c, done at the response's head; 2xx and 3xx succeed),
 * tcpSocket (a connect),
 * exec (the command in the container's environment, exit 0 succeeds,
 * killed with its process group on timeout) and sleep (hooks only). */
#include "node_pod.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"

enum run_kind { RUN_HTTP, RUN_TCP, RUN_EXEC, RUN_SLEEP };

struct nprobe_run {
	enum run_kind kind;
	nprobe_done_fn done;
	void *arg;
	uv_timer_t timer;
	uv_tcp_t tcp;
	uv_connect_t conn;
	struct http_client_req *http;	/* RUN_HTTP, until it answered */
	uv_process_t proc;
	int handles;		/* open handles; freed at 0 */
	bool tcp_open, proc_open, proc_exited;
	bool finished, cancelled;
	char *headers;			/* httpHeaders + defaults, "Name: v\r\n" lines */
	char target[128];	/* "http://127.1.0.2:8080/healthz" / "127.1.0.2:8080" */
	bool pending_ok;	/* result to report from the timer (sync failures) */
	char pending_msg[256];
};

static void
on_closed(uv_handle_t *h)
{
	struct nprobe_run *r = h->data;
	if (--r->handles > 0)
		return;
	free(r->headers);
	free(r);
}

static void
close_handle(uv_handle_t *h, bool *open)
{
	if (!*open)
		return;
	*open = false;
	uv_close(h, on_closed);
}

static void
finish(struct nprobe_run *r, bool ok, const char *msg)
{
	if (r->finished)
		return;
	r->finished = true;
	if (!r->cancelled)
		r->done(r->arg, ok, msg ? msg : "");
	uv_close((uv_handle_t *)&r->timer, on_closed);
	http_client_cancel(r->http);
	r->http = NULL;
	close_handle((uv_handle_t *)&r->tcp, &r->tcp_open);
	if (r->proc_open && !r->proc_exited)
		kill(-r->proc.pid, SIGKILL);	/* closed by on_exit */
	else
		close_handle((uv_handle_t *)&r->proc, &r->proc_open);
}

static void
on_timeout(uv_timer_t *t)
{
	struct nprobe_run *r = t->data;
	if (r->pending_msg[0] || r->pending_ok) {
		finish(r, r->pending_ok, r->pending_msg);
		return;
	}
	if (r->kind == RUN_SLEEP) {
		finish(r, true, "");
		return;
	}
	char msg[256];
	if (r->kind == RUN_EXEC)
		snprintf(msg, sizeof msg, "command timed out");
	else
		snprintf(msg, sizeof msg, "%s: context deadline exceeded", r->target);
	finish(r, false, msg);
}

/* Reports a result from the next loop iteration (never from inside start). */
static void
finish_soon(struct nprobe_run *r, bool ok, const char *msg)
{
	r->pending_ok = ok;
	snprintf(r->pending_msg, sizeof r->pending_msg, "%s", msg);
	uv_timer_start(&r->timer, on_timeout, 0, 0);
}

/* ---- TCP and HTTP ---------------------------------------------------- */

static void
on_http_response(int rc, const struct http_response *res, void *arg)
{
	struct nprobe_run *r = arg;
	char msg[256];
	r->http = NULL;
	if (rc == 0 && res->status >= 200 && res->status < 400) {
		finish(r, true, "");
		return;
	}
	if (rc == 0)
		snprintf(msg, sizeof msg, "HTTP probe failed with statuscode: %d", res->status);
	else if (!res->connected)
		snprintf(msg, sizeof msg, "dial tcp %s: connect: %s", r->target, uv_strerror(rc));
	else if (rc == -ETIMEDOUT)
		snprintf(msg, sizeof msg, "%s: context deadline exceeded", r->target);
	else if (rc == -EPROTO || rc == -ECONNRESET)
		snprintf(msg, sizeof msg, "%s: malformed HTTP response", r->target);
	else
		snprintf(msg, sizeof msg, "%s: read: %s", r->target, uv_strerror(rc));
	finish(r, false, msg);
}

static void
on_connect(uv_connect_t *c, int status)
{
	struct nprobe_run *r = c->data;
	if (r->finished)
		return;
	if (status < 0) {
		char msg[256];
		snprintf(msg, sizeof msg, "dial tcp %s: connect: %s", r->target,
		    uv_strerror(status));
		finish(r, false, msg);
		return;
	}
	finish(r, true, "");
}

/* Port by number or by the name of one of the container's ports. */
static int
resolve_port(const json_t *port, const json_t *container)
{
	if (json_is_integer(port))
		return (int)json_integer_value(port);
	const char *name = json_string_value(port);
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(container, "ports"), i, p)
		if (name && !strcmp(json_string_value(json_object_get(p, "name")) ?: "", name))
			return (int)json_integer_value(json_object_get(p, "containerPort"));
	return name ? atoi(name) : 0;
}

static int
start_tcp(struct nprobe_run *r, uv_loop_t *loop, const json_t *h, const json_t *container,
    const char *pod_ip, int timeout_ms)
{
	const char *host = json_string_value(json_object_get(h, "host"));
	if (!host || !*host)
		host = pod_ip && *pod_ip ? pod_ip : "127.0.0.1";
	if (!strcmp(host, "localhost"))
		host = "127.0.0.1";
	int port = resolve_port(json_object_get(h, "port"), container);
	struct sockaddr_in sa;
	if (port <= 0 || port > 65535 || uv_ip4_addr(host, port, &sa) < 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "cannot probe host \"%.60s\" port %d (IPv4 address "
		    "and port, or a named container port, expected)", host, port);
		finish_soon(r, false, msg);
		return 0;
	}
	if (r->kind == RUN_HTTP) {
		const char *path = json_string_value(json_object_get(h, "path"));
		if (!path || !*path)
			path = "/";
		snprintf(r->target, sizeof r->target, "http://%s:%d%s", host, port, path);
		struct buf req = BUF_INIT;
		bool ua = false, accept = false;
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(h, "httpHeaders"), i, x) {
			const char *n = json_string_value(json_object_get(x, "name")) ?: "";
			ua |= !strcasecmp(n, "User-Agent");
			accept |= !strcasecmp(n, "Accept");
			buf_printf(&req, "%s: %s\r\n", n,
			    json_string_value(json_object_get(x, "value")) ?: "");
		}
		if (!ua)
			buf_puts(&req, "User-Agent: kube-probe/1.31\r\n");
		if (!accept)
			buf_puts(&req, "Accept: */*\r\n");
		r->headers = buf_steal(&req);
		char hostport[80];
		snprintf(hostport, sizeof hostport, "%s:%d", host, port);
		/* The probe's own timer ends it first, with kubelet's message. */
		struct http_client_opts o = { .path = path, .host = hostport,
			.headers = r->headers, .timeout_ms = (unsigned)timeout_ms + 1000,
			.head_only = true };
		return http_client_request(loop, (const struct sockaddr *)&sa, &o,
		    on_http_response, r, &r->http);
	} else {
		snprintf(r->target, sizeof r->target, "%s:%d", host, port);
	}
	uv_tcp_init(loop, &r->tcp);
	r->tcp.data = r;
	r->tcp_open = true;
	r->handles++;
	r->conn.data = r;
	int rc = uv_tcp_connect(&r->conn, &r->tcp, (const struct sockaddr *)&sa, on_connect);
	if (rc < 0) {
		char msg[256];
		snprintf(msg, sizeof msg, "dial tcp %s: %s", r->target, uv_strerror(rc));
		finish_soon(r, false, msg);
	}
	return 0;
}

/* ---- exec ------------------------------------------------------------ */

static void
on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct nprobe_run *r = p->data;
	r->proc_exited = true;
	if (!r->finished) {
		char msg[128];
		if (sig)
			snprintf(msg, sizeof msg, "command killed by signal %d", sig);
		else
			snprintf(msg, sizeof msg, "command exited with %lld", (long long)status);
		finish(r, status == 0 && sig == 0, msg);
	}
	close_handle((uv_handle_t *)&r->proc, &r->proc_open);
}

static int
start_exec(struct nprobe_run *r, uv_loop_t *loop, const json_t *h, char *const *envp,
    const char *cwd)
{
	const json_t *cmd = json_object_get(h, "command");
	size_t n = json_array_size(cmd);
	if (n == 0) {
		finish_soon(r, false, "exec: empty command");
		return 0;
	}
	char **argv = xcalloc(n + 1, sizeof *argv);
	for (size_t i = 0; i < n; i++)
		argv[i] = (char *)(json_string_value(json_array_get(cmd, i)) ?: "");
	uv_stdio_container_t stdio[3] = { { .flags = UV_IGNORE }, { .flags = UV_IGNORE },
		{ .flags = UV_IGNORE } };
	uv_process_options_t o = {
		.exit_cb = on_proc_exit, .file = argv[0], .args = argv, .env = (char **)envp,
		.cwd = cwd, .flags = UV_PROCESS_DETACHED, .stdio_count = 3, .stdio = stdio,
	};
	r->proc.data = r;
	/* argv[0] is looked up in the PATH of envp (libuv's execvpe). */
	int rc = uv_spawn(loop, &r->proc, &o);
	r->handles++;
	if (rc == 0) {
		r->proc_open = true;
	} else {
		char msg[256];
		snprintf(msg, sizeof msg, "exec %s: %s", argv[0], uv_strerror(rc));
		uv_close((uv_handle_t *)&r->proc, on_closed);
		finish_soon(r, false, msg);
	}
	free(argv);
	return 0;
}

int
nprobe_start(uv_loop_t *loop, const json_t *h, const json_t *container, const char *pod_ip,
    char *const *envp, const char *cwd, int timeout_ms, nprobe_done_fn done, void *arg,
    struct nprobe_run **out)
{
	struct nprobe_run *r = xcalloc(1, sizeof *r);
	r->done = done;
	r->arg = arg;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	r->handles = 1;
	*out = r;
	json_t *x;
	if ((x = json_object_get(h, "sleep"))) {
		r->kind = RUN_SLEEP;
		uv_timer_start(&r->timer, on_timeout,
		    (uint64_t)json_integer_value(json_object_get(x, "seconds")) * 1000, 0);
		return 0;
	}
	uv_timer_start(&r->timer, on_timeout, timeout_ms > 0 ? (uint64_t)timeout_ms : 1000, 0);
	if ((x = json_object_get(h, "exec"))) {
		r->kind = RUN_EXEC;
		return start_exec(r, loop, x, envp, cwd);
	}
	if ((x = json_object_get(h, "httpGet"))) {
		r->kind = RUN_HTTP;
		const char *scheme = json_string_value(json_object_get(x, "scheme"));
		if (scheme && strcmp(scheme, "HTTP") != 0) {
			finish_soon(r, false, "scheme HTTPS is not supported by v6 probes "
			    "(use HTTP or tcpSocket)");
			return 0;
		}
		return start_tcp(r, loop, x, container, pod_ip, timeout_ms);
	}
	if ((x = json_object_get(h, "tcpSocket"))) {
		r->kind = RUN_TCP;
		return start_tcp(r, loop, x, container, pod_ip, timeout_ms);
	}
	finish_soon(r, false, "unsupported handler (grpc is not supported by v6)");
	return 0;
}

void
nprobe_cancel(struct nprobe_run *r)
{
	if (!r || r->finished)
		return;
	r->cancelled = true;
	finish(r, false, "");
}
