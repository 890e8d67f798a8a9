/* node_exec.c — one exec (the pods/exec subresource): runs a command
 * line the agent made (`runc exec ID CMD` for a runc container, the command
 * in the container's env, cwd and namespaces for a process one) and streams
 * its output back in one of two framings:
 * - V6's (`v6 exec`), documented in docs/architecture.md: frames of
 *   [channel byte][4-byte big-endian length][payload], channel 1 stdout,
 *   2 stderr, 3 the end ({"exitCode": N} as JSON); the request body is the
 *   command's stdin when stdin=true;
 * - Kubernetes' WebSocket subprotocols v5.channel.k8s.io / v4.channel.k8s.io
 *   when the request asks for a WebSocket upgrade (stock kubectl exec):
 *   binary messages [channel][data], channel 3 the metav1.Status of the end
 *   (NonZeroExitCode with an ExitCode cause). stdin there is refused (400)
 *   until client messages are read; a TTY is not allocated.
 * Called by node_agent.c. */
#include "node_pod.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	bool ws;			/* WebSocket framing (kubectl), not V6's */
	int64_t code;
	char *input;			/* stdin: a copy of the body */
};

/* One unmasked server-to-client WebSocket message (RFC 6455 5.2) of
 * opcode op: [channel][data] for binary ones (ch < 0: data alone). */
static void
ws_message(struct nexec *x, int op, int ch, const char *data, size_t len)
{
	unsigned char h[11];
	size_t n = 0, plen = len + (ch >= 0);
	h[n++] = (unsigned char)(0x80 | op);
	if (plen < 126) {
		h[n++] = (unsigned char)plen;
	} else if (plen <= 0xffff) {
		h[n++] = 126;
		h[n++] = (unsigned char)(plen >> 8);
		h[n++] = (unsigned char)plen;
	} else {
		h[n++] = 127;
		for (int i = 7; i >= 0; i--)
			h[n++] = (unsigned char)((uint64_t)plen >> (8 * i));
	}
	if (ch >= 0)
		h[n++] = (unsigned char)ch;
	uv_buf_t b[2] = { uv_buf_init((char *)h, (unsigned)n),
		uv_buf_init((char *)data, (unsigned)len) };
	http_raw_write(x->req, b, len ? 2 : 1);
}

static void
frame(struct nexec *x, int ch, const char *data, size_t len)
{
	unsigned char h[5] = { (unsigned char)ch, (unsigned char)(len >> 24),
		(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len };
	if (x->aborted)
		return;
	if (x->ws) {
		ws_message(x, 0x2, ch, data, len);
		return;
	}
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
	char st[320];
	if (x->ws && x->code == 0)
		snprintf(st, sizeof st, "{\"metadata\":{},\"status\":\"Success\"}");
	else if (x->ws)
		snprintf(st, sizeof st, "{\"metadata\":{},\"status\":\"Failure\",\"message\":"
		    "\"command terminated with non-zero exit code: exit status %lld\",\"reason\":"
		    "\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\","
		    "\"message\":\"%lld\"}]}}", (long long)x->code, (long long)x->code);
	else
		snprintf(st, sizeof st, "{\"exitCode\":%lld}", (long long)x->code);
	frame(x, CH_EXIT, st, strlen(st));
	if (x->ws) {
		if (!x->aborted)
			ws_message(x, 0x8, -1, "\x03\xe8", 2);	/* close, 1000 */
		http_raw_end(x->req, false);
	} else {
		http_stream_end(x->req);	/* also after an abort: that finishes req */
	}
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

/* Answers 400 with a Status whose message starts as kubectl expects of a
 * failed upgrade. */
static void
refuse_upgrade(struct http_req *req, const char *why)
{
	char *msg = xasprintf("unable to upgrade connection: %s", why);
	json_t *st = json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:i}", "kind", "Status",
	    "apiVersion", "v1", "metadata", "status", "Failure", "message", msg, "reason",
	    "BadRequest", "code", 400);
	char *body = json_dumps(st, JSON_COMPACT);
	http_respond(req, 400, "application/json", body, strlen(body));
	free(body);
	json_decref(st);
	free(msg);
}

/* The subprotocol kubectl offered that V6 speaks (v5 first), or NULL. */
static const char *
ws_protocol(const struct http_req *req)
{
	static const char *const ours[] = { "v5.channel.k8s.io", "v4.channel.k8s.io" };
	const char *offered = http_req_header(req, "Sec-WebSocket-Protocol");
	for (size_t i = 0; offered && i < ARRAY_SIZE(ours); i++) {
		const char *p = strstr(offered, ours[i]);
		size_t n = strlen(ours[i]);
		if (p && (p == offered || p[-1] == ' ' || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return ours[i];
	}
	return NULL;
}

/* Answers the WebSocket handshake (101). Returns 0, or -1 with a 400
 * answered when the request is not one V6 can switch. */
static int
ws_accept(struct http_req *req)
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	const char *key = http_req_header(req, "Sec-WebSocket-Key");
	const char *proto = ws_protocol(req);
	unsigned char digest[SHA_DIGEST_LENGTH];
	char accept[64], *in;
	if (!key || !proto || strlen(key) > 64) {
		refuse_upgrade(req, "a WebSocket key and one of the subprotocols "
		    "v5.channel.k8s.io, v4.channel.k8s.io are required");
		return -1;
	}
	in = xasprintf("%s%s", key, guid);
	SHA1((const unsigned char *)in, strlen(in), digest);
	EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
	free(in);
	char *head = xasprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s"
	    "\r\n\r\n", accept, proto);
	uv_buf_t b = uv_buf_init(head, (unsigned)strlen(head));
	http_raw_write(req, &b, 1);
	free(head);
	return 0;
}

static bool
wants_websocket(const struct http_req *req)
{
	const char *up = http_req_header(req, "Upgrade");
	return req->upgrade && up && strcasecmp(up, "websocket") == 0;
}

int
nexec_start(uv_loop_t *loop, struct http_req *req, char *const *argv, char *const *envp,
    const char *cwd, bool with_stdin, char **err)
{
	bool ws = wants_websocket(req);
	if (req->upgrade && !ws) {
		/* SPDY/3.1: kubectl's fallback when the WebSocket attempt failed */
		refuse_upgrade(req, "v6 serves exec over WebSocket (v5.channel.k8s.io) only, "
		    "and without stdin (kubectl exec -i) yet");
		return 0;
	}
	if (ws && !ws_protocol(req)) {
		ws_accept(req);		/* answers 400 */
		return 0;
	}
	if (ws && with_stdin) {
		/* Refused rather than run with stdin at EOF: a silent wrong result. */
		refuse_upgrade(req, "stdin (kubectl exec -i / -it) is not supported by v6 yet; "
		    "run the command without -i, or use v6 exec -i");
		return 0;
	}
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
	x->ws = ws;
	if (ws)
		ws_accept(req);
	else
		http_stream_start(req, 200, "application/vnd.v6.exec-stream");
	http_req_on_abort(req, on_abort, x);
	uv_read_start((uv_stream_t *)&x->out[0], on_alloc, on_read);
	uv_read_start((uv_stream_t *)&x->out[1], on_alloc, on_read);
	if (!ws && with_stdin && req->body_len > 0) {
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
