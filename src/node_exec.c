/* node_exec.c — one `v6 exec` (the pods/exec subresource): runs a command
 * line the agent made (`runc exec ID CMD` for a runc container, the command
 * in the container's env, cwd and namespaces for a process one) and streams
 * its output back in V6's exec framing, documented in docs/architecture.md:
 * frames of [channel byte][4-byte big-endian length][payload], channel 1
 * stdout, 2 stderr, 3 the end ({"exitCode": N} as JSON). The request body is
 * the command's stdin when stdin=true. Called by node_agent.c. */
#include "node_pod.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

enum { CH_STDOUT = 1, CH_STDERR = 2, CH_EXIT = 3 };

struct nexec {
	struct http_req *req;
	uv_process_t proc;
	uv_pipe_t in, out[2];
	uv_write_t write;
	int open;			/* handles not yet closed */
	int eofs;			/* output pipes at EOF */
	bool exited, aborted;
	int64_t code;
	char *input;			/* stdin: a copy of the body */
};

static void
frame(struct nexec *x, int ch, const char *data, size_t len)
{
	unsigned char h[5] = { (unsigned char)ch, (unsigned char)(len >> 24),
		(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len };
	if (x->aborted)
		return;
	http_stream_write(x->req, (const char *)h, sizeof h);
	if (len)
		http_stream_write(x->req, data, len);
}

static void
on_closed(uv_handle_t *h)
{
	struct nexec *x = h->data;
	if (--x->open > 0)
		return;
	free(x->input);
	free(x);
}

/* Done once the process exited and both pipes are drained. */
static void
maybe_end(struct nexec *x)
{
	if (!x->exited || x->eofs < 2)
		return;
	char st[64];
	snprintf(st, sizeof st, "{\"exitCode\":%lld}", (long long)x->code);
	frame(x, CH_EXIT, st, strlen(st));
	http_stream_end(x->req);	/* also after an abort: that finishes req */
	uv_close((uv_handle_t *)&x->proc, on_closed);
}

static void
on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(size);
	b->len = size;
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
		uv_close((uv_handle_t *)s, on_closed);
		x->eofs++;
		maybe_end(x);
	}
}

static void
on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct nexec *x = p->data;
	x->exited = true;
	x->code = sig ? 128 + sig : status;
	maybe_end(x);
}

static void
on_written(uv_write_t *w, int status)
{
	struct nexec *x = w->data;
	(void)status;
	uv_close((uv_handle_t *)&x->in, on_closed);
}

static void
on_abort(struct http_req *req, void *arg)
{
	struct nexec *x = arg;
	(void)req;
	x->aborted = true;
	if (!x->exited)
		uv_process_kill(&x->proc, SIGKILL);
}

int
nexec_start(uv_loop_t *loop, struct http_req *req, char *const *argv, char *const *envp,
    const char *cwd, bool with_stdin, char **err)
{
	struct nexec *x = xcalloc(1, sizeof *x);
	x->req = req;
	uv_pipe_init(loop, &x->in, 0);
	uv_pipe_init(loop, &x->out[0], 0);
	uv_pipe_init(loop, &x->out[1], 0);
	x->in.data = x->out[0].data = x->out[1].data = x->proc.data = x;
	x->open = 3;
	uv_stdio_container_t stdio[3] = {
		{ .flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&x->in },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&x->out[0] },
		{ .flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		  .data.stream = (uv_stream_t *)&x->out[1] },
	};
	uv_process_options_t o = { .exit_cb = on_exit_cb, .file = argv[0],
		.args = (char **)argv, .env = (char **)envp, .cwd = cwd, .stdio_count = 3,
		.stdio = stdio };
	int rc = uv_spawn(loop, &x->proc, &o);
	if (rc < 0) {
		*err = xasprintf("exec %s: %s", argv[0], uv_strerror(rc));
		uv_close((uv_handle_t *)&x->in, on_closed);
		uv_close((uv_handle_t *)&x->out[0], on_closed);
		uv_close((uv_handle_t *)&x->out[1], on_closed);
		x->open++;		/* the process handle too */
		uv_close((uv_handle_t *)&x->proc, on_closed);
		return rc;
	}
	x->open++;
	http_stream_start(req, 200, "application/vnd.v6.exec-stream");
	http_req_on_abort(req, on_abort, x);
	uv_read_start((uv_stream_t *)&x->out[0], on_alloc, on_read);
	uv_read_start((uv_stream_t *)&x->out[1], on_alloc, on_read);
	if (with_stdin && req->body_len > 0) {
		x->input = xmalloc(req->body_len);
		memcpy(x->input, req->body, req->body_len);
		uv_buf_t b = uv_buf_init(x->input, (unsigned)req->body_len);
		x->write.data = x;
		if (uv_write(&x->write, (uv_stream_t *)&x->in, &b, 1, on_written) < 0)
			uv_close((uv_handle_t *)&x->in, on_closed);
	} else {
		uv_close((uv_handle_t *)&x->in, on_closed);	/* EOF at once */
	}
	return 0;
}
