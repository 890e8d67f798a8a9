/* node_exec.c — one exec (the pods/exec subresource): runs a command
 * line the agent made (`runc exec ID CMD` for a runc container, the command
 * in the container's env, cwd and namespaces for a process one) and streams
 * it in one of two framings:
 * - Kubernetes' WebSocket subprotocols v5.channel.k8s.io / v4.channel.k8s.io
 *   when the request asks for a WebSocket upgrade (stock kubectl exec, and
 *   `v6 exec`): binary messages [channel][data]; from the client 0 stdin,
 *   4 a terminal resize ({"Width":W,"Height":H}), 255 [0] (v5) the end of
 *   stdin; to it 1 stdout, 2 stderr, 3 the metav1.Status of the end
 *   (NonZeroExitCode with an ExitCode cause). With tty=true the command
 *   gets a pseudo-terminal as its controlling terminal (setsid -c): the
 *   process runtime's is ours; `runc exec -t` makes one in the container
 *   and copies it to ours, following its size on SIGWINCH;
 * - the same channels as SPDY/3.1 streams after `Upgrade: SPDY/3.1` with
 *   X-Stream-Protocol-Version v4.channel.k8s.io (kubectl's fallback when
 *   the WebSocket upgrade fails, or KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false);
 *   both kubectl framings are node_stream.c's, shared with pods/attach;
 * - V6's own (`v6 exec` of older CLIs; documented in docs/architecture.md):
 *   frames of [channel byte][4-byte big-endian length][payload], 1 stdout,
 *   2 stderr, 3 {"exitCode": N}; the request body is the stdin.
 * A terminal's command is started once the client's first size arrived
 * (or EXEC_SIZE_WAIT_MS passed without one), so that its first look at the
 * terminal (stty size, a shell's prompt) sees the client's size, not a
 * default the resize then replaces.
 * Called by node_agent.c. */
#include "node_pod.h"

#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "net.h"
#include "util.h"

/* V6's framing numbers its channels as kubectl's do */
enum { CH_STDOUT = NSTREAM_STDOUT, CH_STDERR = NSTREAM_STDERR, CH_EXIT = NSTREAM_STATUS };

/* stdin bytes queued to the command past which the client is not read */
#define EXEC_STDIN_HIGH		(256u << 10)
/* output queued to the client past which the command is not read */
#define EXEC_OUT_HIGH		(1u << 20)
/* after the command exits, how long its output may stay open (a process
 * it left in the background holding the pipes or the terminal) */
#define EXEC_DRAIN_MS		2000
/* how long a terminal's command waits for the client's first size (kubectl
 * and `v6 exec -t` send it as soon as the stream is up) */
#define EXEC_SIZE_WAIT_MS	2000

struct nexec {
	struct http_req *req;
	struct nstream *ns;		/* kubectl's framings, else V6's (req) */
	uv_loop_t *loop;
	uv_process_t proc;		/* a live handle once spawned */
	uv_timer_t drain;		/* EXEC_DRAIN_MS after the exit */
	uv_timer_t size_wait;		/* a terminal's wait for the first size */
	bool spawned, size_waiting;
	uv_stdio_container_t stdio[3];
	int slave;			/* the pty's slave until the spawn, else -1 */
	char **argv, **envp, *cwd;	/* copies, until the spawn */
	json_t *process;		/* runc exec --process's base, or NULL */
	char *process_file;		/* written at the spawn, removed at the end */
	unsigned short rows, cols;	/* the client's last size, 0: none yet */
	uv_pipe_t in, out[2];		/* tty: out[0] is the terminal's master */
	int nout;			/* output streams: 1 with a tty, else 2 */
	int master;			/* the pty's master fd, -1 without a tty */
	int open;			/* handles not yet closed */
	int eofs;			/* output streams at EOF */
	bool tty;
	bool in_open;			/* stdin (x->in) still to be closed */
	bool exited, ended, client_gone, paused;
	int64_t code;
	unsigned in_writes;		/* stdin writes in flight (net_send) */
};

static void
frame(struct nexec *x, int ch, const char *data, size_t len)
{
	unsigned char h[5] = { (unsigned char)ch, (unsigned char)(len >> 24),
		(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len };
	if (x->client_gone || !x->req)
		return;
	if (x->ns) {
		nstream_send(x->ns, ch, data, len);
		return;
	}
	http_stream_write(x->req, (const char *)h, sizeof h);
	if (len)
		http_stream_write(x->req, data, len);
}

static void
nexec_free(struct nexec *x)
{
	json_decref(x->process);
	if (x->process_file)
		unlink(x->process_file);
	free(x->process_file);
	free(x);
}

static void
on_closed(uv_handle_t *h)
{
	struct nexec *x = h->data;
	if (--x->open > 0)
		return;
	nexec_free(x);
}

static void
close_stdin(struct nexec *x)
{
	if (!x->in_open)
		return;
	x->in_open = false;
	if (!x->tty)	/* a terminal's input is its master, closed as output */
		uv_close((uv_handle_t *)&x->in, on_closed);
}

/* Done once the process exited and its output is drained; a client that
 * went away ends it too (the process was killed). */
static void
maybe_end(struct nexec *x)
{
	if (x->ended || !x->exited || x->eofs < x->nout)
		return;
	x->ended = true;
	char st[320];
	bool k8s = x->ns != NULL;
	if (k8s && x->code == 0)
		snprintf(st, sizeof st, "{\"metadata\":{},\"status\":\"Success\"}");
	else if (k8s)
		snprintf(st, sizeof st, "{\"metadata\":{},\"status\":\"Failure\",\"message\":"
		    "\"command terminated with non-zero exit code: exit status %lld\",\"reason\":"
		    "\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\","
		    "\"message\":\"%lld\"}]}}", (long long)x->code, (long long)x->code);
	else
		snprintf(st, sizeof st, "{\"exitCode\":%lld}", (long long)x->code);
	if (x->ns) {
		nstream_end(x->ns, st);
		x->ns = NULL;
		x->req = NULL;
	} else if (x->req) {
		frame(x, CH_EXIT, st, strlen(st));
		http_stream_end(x->req);	/* also after an abort: that finishes req */
	}
	close_stdin(x);
	if (x->spawned)
		uv_close((uv_handle_t *)&x->proc, on_closed);
	uv_close((uv_handle_t *)&x->drain, on_closed);
}

static void
on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(size);
	b->len = size;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* Output backpressure: the command is not read while the client lags. */
static void
out_pause(struct nexec *x, bool pause)
{
	if (x->paused == pause)
		return;
	x->paused = pause;
	for (int i = 0; i < x->nout; i++) {
		if (uv_is_closing((uv_handle_t *)&x->out[i]))
			continue;
		if (pause)
			uv_read_stop((uv_stream_t *)&x->out[i]);
		else
			uv_read_start((uv_stream_t *)&x->out[i], on_alloc, on_read);
	}
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct nexec *x = s->data;
	int ch = s == (uv_stream_t *)&x->out[0] ? CH_STDOUT : CH_STDERR;
	if (n > 0)
		frame(x, ch, b->base, (size_t)n);
	free(b->base);
	if (n < 0) {
		/* EOF, or EIO from a terminal's master once the last
		 * process holding its slave is gone */
		if (s == (uv_stream_t *)&x->out[0] && x->tty)
			x->in_open = false;	/* the master was stdin too */
		uv_close((uv_handle_t *)s, on_closed);
		x->eofs++;
		maybe_end(x);
	} else if (x->ns && !x->client_gone && nstream_pending(x->ns) > EXEC_OUT_HIGH) {
		out_pause(x, true);
	}
}

/* The command exited long ago: outputs still open are closed, so a
 * background process cannot hold the stream open. */
static void
on_drain_timer(uv_timer_t *t)
{
	struct nexec *x = t->data;
	for (int i = 0; i < x->nout; i++) {
		if (uv_is_closing((uv_handle_t *)&x->out[i]))
			continue;
		if (i == 0 && x->tty)
			x->in_open = false;
		uv_close((uv_handle_t *)&x->out[i], on_closed);
		x->eofs++;
	}
	maybe_end(x);
}

static void
on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct nexec *x = p->data;
	x->exited = true;
	x->code = sig ? 128 + sig : status;
	uv_timer_start(&x->drain, on_drain_timer, EXEC_DRAIN_MS, 0);
	maybe_end(x);
}

/* ---- the spawn ------------------------------------------------------ */

static char **
strv_dup(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	if (v == NULL)
		return NULL;
	char **c = xcalloc(n + 1, sizeof *c);
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static void
stop_size_wait(struct nexec *x)
{
	if (!x->size_waiting)
		return;
	x->size_waiting = false;
	uv_close((uv_handle_t *)&x->size_wait, on_closed);
}

/* runc exec --tty ID CMD -> runc exec --tty --process FILE ID: FILE is
 * the container's process with args CMD, a terminal and the client's
 * size (runc sizes its console before the command runs; without it the
 * command may see 0 0 until runc's first resize). 0 or -errno. */
static int
runc_process_argv(struct nexec *x)
{
	size_t t = 0;
	while (x->argv[t] && strcmp(x->argv[t], "--tty"))
		t++;
	if (!x->argv[t] || !x->argv[t + 1] || !x->argv[t + 2])
		return -EINVAL;		/* no --tty ID CMD */
	json_t *args = json_array();
	for (size_t i = t + 2; x->argv[i]; i++)
		json_array_append_new(args, json_string(x->argv[i]));
	json_object_set_new(x->process, "args", args);
	json_object_set_new(x->process, "terminal", json_true());
	if (x->rows && x->cols)
		json_object_set_new(x->process, "consoleSize", json_pack("{s:i, s:i}", "height",
		    (int)x->rows, "width", (int)x->cols));
	char path[] = "/tmp/v6-exec-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	int rc = json_dumpfd(x->process, fd, JSON_COMPACT) < 0 ? -EIO : 0;
	close(fd);
	x->process_file = xstrdup(path);
	if (rc < 0)
		return rc;
	free(x->argv[t + 2]);	/* ... --tty --process FILE ID */
	x->argv[t + 2] = x->argv[t + 1];
	x->argv[t + 1] = xstrdup(path);
	for (size_t i = t + 3; x->argv[i]; i++) {
		free(x->argv[i]);
		x->argv[i] = NULL;
	}
	char **v = xrealloc(x->argv, (t + 5) * sizeof *v);
	memmove(v + t + 2, v + t + 1, 2 * sizeof *v);
	v[t + 1] = xstrdup("--process");
	v[t + 4] = NULL;
	x->argv = v;
	return 0;
}

/* Starts the command with the stdio set up; 0 or a negative errno with
 * *err. The handle counts (and is closed by maybe_end) either way. */
static int
spawn(struct nexec *x, char **err)
{
	if (x->process && runc_process_argv(x) < 0)
		log_warn("exec", "runc exec --process: falling back to --tty alone");
	uv_process_options_t o = { .exit_cb = on_exit_cb, .file = x->argv[0],
		.args = x->argv, .env = x->envp, .cwd = x->cwd, .stdio_count = 3,
		.stdio = x->stdio };
	stop_size_wait(x);
	x->spawned = true;
	x->open++;
	int rc = uv_spawn(x->loop, &x->proc, &o);
	if (rc < 0)
		*err = xasprintf("exec %s: %s", x->argv[0], uv_strerror(rc));
	if (x->slave >= 0)
		close(x->slave);	/* the master reads EIO once the command's are gone */
	x->slave = -1;
	nenv_free(x->argv);
	nenv_free(x->envp);
	free(x->cwd);
	x->argv = x->envp = NULL;
	x->cwd = NULL;
	return rc;
}

/* The command never runs (the client left while it waited for the first
 * size): done as if it had been killed. */
static void
never_spawned(struct nexec *x)
{
	stop_size_wait(x);
	nenv_free(x->argv);
	nenv_free(x->envp);
	free(x->cwd);
	x->argv = x->envp = NULL;
	x->cwd = NULL;
	if (x->slave >= 0)
		close(x->slave);
	x->slave = -1;
	on_exit_cb(&x->proc, 0, SIGKILL);
}

static void
kill_cmd(struct nexec *x)
{
	if (x->spawned && !x->exited)
		uv_process_kill(&x->proc, SIGKILL);
	else if (!x->spawned && !x->exited)
		never_spawned(x);
}

/* A terminal's command, once its first size is known (or never comes). */
static void
spawn_deferred(struct nexec *x)
{
	char *err = NULL;
	if (spawn(x, &err) < 0) {
		/* the stream is up: the error goes where the command's would */
		char *line = xasprintf("%s\r\n", err);
		frame(x, CH_STDOUT, line, strlen(line));
		free(line);
		x->exited = true;
		x->code = 126;
		uv_timer_start(&x->drain, on_drain_timer, EXEC_DRAIN_MS, 0);
		maybe_end(x);
	}
	free(err);
}

static void
on_size_wait(uv_timer_t *t)
{
	spawn_deferred(t->data);
}

/* ---- the client's messages (WebSocket) --------------------------------- */

static uv_stream_t *
stdin_stream(struct nexec *x)
{
	if (x->tty)
		return x->eofs == 0 && x->in_open ? (uv_stream_t *)&x->out[0] : NULL;
	return x->in_open ? (uv_stream_t *)&x->in : NULL;
}

static void
on_in_written(uv_write_t *req, int status)
{
	struct net_write *w = (struct net_write *)req;
	struct nexec *x = w->owner;
	uv_stream_t *s = req->handle;
	(void)status;
	free(w);
	x->in_writes--;
	if (x->ns && !x->client_gone &&
	    uv_stream_get_write_queue_size(s) < EXEC_STDIN_HIGH / 2)
		nstream_pause(x->ns, false);
	if (--x->open == 0)
		nexec_free(x);
}

static void
write_stdin(struct nexec *x, const char *data, size_t len)
{
	uv_stream_t *s = stdin_stream(x);
	if (!s || len == 0)
		return;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	unsigned before = x->in_writes;
	if (net_send(s, &b, 1, &x->in_writes, on_in_written, x, 0) < 0)
		return;
	x->open += (int)(x->in_writes - before);	/* a queued write holds x */
	if (x->ns && uv_stream_get_write_queue_size(s) > EXEC_STDIN_HIGH)
		nstream_pause(x->ns, true);
}

static void
on_in_shutdown(uv_shutdown_t *sr, int status)
{
	struct nexec *x = sr->data;
	(void)status;
	free(sr);
	close_stdin(x);
	if (--x->open == 0)
		nexec_free(x);
}

/* The client's stdin ended: EOF after what is queued (a terminal gets
 * its EOF character, ^D, as a typed one would). */
static void
end_stdin(struct nexec *x)
{
	if (x->tty) {
		write_stdin(x, "\x04", 1);
		return;
	}
	if (!x->in_open)
		return;
	uv_shutdown_t *sr = xmalloc(sizeof *sr);
	sr->data = x;
	if (uv_shutdown(sr, (uv_stream_t *)&x->in, on_in_shutdown) < 0) {
		free(sr);
		close_stdin(x);
		return;
	}
	x->open++;
}

int
nexec_parse_size(const char *data, size_t len, unsigned short *rows, unsigned short *cols)
{
	json_t *j = json_loadb(data, len, 0, NULL);
	json_int_t w = json_integer_value(json_object_get(j, "Width"));
	json_int_t h = json_integer_value(json_object_get(j, "Height"));
	json_decref(j);
	if (w <= 0 || h <= 0 || w > 0xffff || h > 0xffff)
		return -EINVAL;
	*rows = (unsigned short)h;
	*cols = (unsigned short)w;
	return 0;
}

static void
resize(struct nexec *x, const char *data, size_t len)
{
	struct winsize ws = { 0 };
	if (x->master < 0 || x->eofs > 0 ||
	    nexec_parse_size(data, len, &ws.ws_row, &ws.ws_col) < 0)
		return;
	x->rows = ws.ws_row;
	x->cols = ws.ws_col;
	ioctl(x->master, TIOCSWINSZ, &ws);	/* the foreground group gets SIGWINCH */
	if (x->size_waiting)
		spawn_deferred(x);		/* the first size: the command may start */
}

static void
on_stdin_data(void *arg, const char *data, size_t len)
{
	struct nexec *x = arg;
	if (!x->ended)
		write_stdin(x, data, len);
}

static void
on_stdin_end(void *arg)
{
	struct nexec *x = arg;
	if (!x->ended)
		end_stdin(x);
}

static void
on_resize(void *arg, const char *data, size_t len)
{
	struct nexec *x = arg;
	if (!x->ended)
		resize(x, data, len);
}

/* The client went away (or broke the session): the command is killed,
 * as the kubelet does when the stream breaks. */
static void
on_client_gone(void *arg)
{
	struct nexec *x = arg;
	x->client_gone = true;
	out_pause(x, false);
	kill_cmd(x);
}

static void
on_client_drained(void *arg)
{
	out_pause(arg, false);
}

static const struct nstream_ops exec_stream_ops = { on_stdin_data, on_stdin_end, on_resize,
	on_client_gone, on_client_drained };

static void
on_abort(struct http_req *req, void *arg)
{
	struct nexec *x = arg;
	(void)req;
	x->client_gone = true;
	kill_cmd(x);
}

/* ---- start ---------------------------------------------------------- */

char **
nexec_argv(const json_t *enter, bool runc, bool tty, char *const *cmd, size_t nc)
{
	char **argv = xcalloc(json_array_size(enter) + nc + 5, sizeof *argv);
	size_t k = 0, j;
	json_t *v;
	if (tty) {
		/* a session whose controlling terminal is the pty (stdin) */
		argv[k++] = xstrdup(access("/usr/bin/setsid", X_OK) == 0 ? "/usr/bin/setsid" :
		    "setsid");
		argv[k++] = xstrdup("-cw");
	}
	json_array_foreach(enter, j, v) {
		argv[k++] = xstrdup(json_string_value(v));
		if (runc && tty && strcmp(json_string_value(v), "exec") == 0)
			argv[k++] = xstrdup("--tty");
	}
	for (j = 0; j < nc; j++)
		argv[k++] = xstrdup(cmd[j]);
	return argv;
}

/* The command's stdio (x->stdio): a pty (slave on 0-2, x->slave until
 * the spawn, x->master kept) with tty, else pipes. Returns 0 or a
 * negative errno. */
static int
setup_stdio(struct nexec *x, uv_loop_t *loop)
{
	uv_stdio_container_t *stdio = x->stdio;
	x->slave = -1;
	x->master = -1;
	if (x->tty) {
		struct winsize ws = { .ws_row = 24, .ws_col = 80 };
		if (openpty(&x->master, &x->slave, NULL, NULL, &ws) < 0)
			return -errno;
		fcntl(x->master, F_SETFD, FD_CLOEXEC);
		fcntl(x->slave, F_SETFD, FD_CLOEXEC);
		for (int i = 0; i < 3; i++) {
			stdio[i].flags = UV_INHERIT_FD;
			stdio[i].data.fd = x->slave;
		}
		uv_pipe_init(loop, &x->out[0], 0);
		uv_pipe_open(&x->out[0], x->master);
		x->out[0].data = x;
		x->open = 1;
		x->nout = 1;
		return 0;
	}
	uv_pipe_init(loop, &x->in, 0);
	uv_pipe_init(loop, &x->out[0], 0);
	uv_pipe_init(loop, &x->out[1], 0);
	x->in.data = x->out[0].data = x->out[1].data = x;
	x->open = 3;
	x->nout = 2;
	x->in_open = true;
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&x->in;
	for (int i = 1; i < 3; i++) {
		stdio[i].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
		stdio[i].data.stream = (uv_stream_t *)&x->out[i - 1];
	}
	return 0;
}

int
nexec_start(uv_loop_t *loop, struct http_req *req, char *const *argv, char *const *envp,
    const char *cwd, bool with_stdin, bool tty, const json_t *runc_process, char **err)
{
	const char *proto;
	if (nstream_check(req, "exec", &proto))
		return 0;
	struct nexec *x = xcalloc(1, sizeof *x);
	int rc;
	x->req = req;
	x->loop = loop;
	x->tty = tty && proto;		/* V6's framing has no terminal */
	x->proc.data = x;
	if ((rc = setup_stdio(x, loop)) < 0) {
		*err = xasprintf("allocating a terminal: %s", strerror(-rc));
		free(x);
		return rc;
	}
	x->in_open = x->in_open || x->tty;
	x->argv = strv_dup(argv);
	x->envp = strv_dup(envp);
	x->cwd = cwd ? xstrdup(cwd) : NULL;
	x->process = x->tty && runc_process ? json_deep_copy(runc_process) : NULL;
	uv_timer_init(loop, &x->drain);
	x->drain.data = x;
	x->open++;
	if (x->tty) {
		/* the command starts with the client's first size */
		uv_timer_init(loop, &x->size_wait);
		x->size_wait.data = x;
		uv_timer_start(&x->size_wait, on_size_wait, EXEC_SIZE_WAIT_MS, 0);
		x->size_waiting = true;
		x->open++;
	} else if ((rc = spawn(x, err)) < 0) {
		x->in_open = false;
		if (!x->tty)
			uv_close((uv_handle_t *)&x->in, on_closed);
		for (int i = 0; i < x->nout; i++)
			uv_close((uv_handle_t *)&x->out[i], on_closed);
		uv_close((uv_handle_t *)&x->proc, on_closed);
		uv_close((uv_handle_t *)&x->drain, on_closed);
		return rc;
	}
	if (proto) {
		x->ns = nstream_open(loop, req, proto, &exec_stream_ops, x);
		if (!x->ns)
			x->req = NULL;		/* answered 400 */
		if (!x->ns || nstream_gone(x->ns)) {
			x->client_gone = true;
			kill_cmd(x);
		}
	} else {
		http_stream_start(req, 200, "application/vnd.v6.exec-stream");
		http_req_on_abort(req, on_abort, x);
	}
	for (int i = 0; i < x->nout; i++)
		uv_read_start((uv_stream_t *)&x->out[i], on_alloc, on_read);
	if (!proto && with_stdin && req->body_len > 0) {
		write_stdin(x, req->body, req->body_len);
		end_stdin(x);
	} else if (!with_stdin) {
		if (x->tty)
			x->in_open = false;
		else
			close_stdin(x);		/* EOF at once */
	} else if (!proto) {
		close_stdin(x);
	}
	return 0;
}
