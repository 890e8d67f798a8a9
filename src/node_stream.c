/* node_stream.c — the client side of a remote command's stream, as
 * kubectl speaks it to pods/exec and pods/attach: the channels stdin (0),
 * stdout (1), stderr (2), the end's Status (3) and resize (4) carried in
 * one of two framings:
 * - WebSocket, subprotocol v5.channel.k8s.io or v4.channel.k8s.io: one
 *   binary message [channel][data] per write, 255 [0] (v5) the end of
 *   stdin;
 * - SPDY/3.1 after `Upgrade: SPDY/3.1` with X-Stream-Protocol-Version
 *   v4.channel.k8s.io (kubectl's fallback when the WebSocket upgrade
 *   fails, or KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false): the client opens
 *   one stream per channel, named by its streamType header (stdin, stdout,
 *   stderr, error, resize); output waits for its stream, resizes are one
 *   JSON object per line, and the session ends only once the client
 *   opened every stream its request announced (client-go waits for the
 *   reply to each one it creates: a session ended before that is an EOF
 *   to it).
 * node_exec.c and node_attach.c own what runs behind it. */
#include "node_pod.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "spdy.h"
#include "util.h"
#include "ws.h"

enum { CH_STDIN = NSTREAM_STDIN, CH_STDOUT = NSTREAM_STDOUT, CH_STDERR = NSTREAM_STDERR,
	CH_STATUS = NSTREAM_STATUS, CH_RESIZE = NSTREAM_RESIZE, NCH, CH_CLOSE = 255 };

/* The SPDY fallback's protocol: v4 (kubectl offers v4, v3, v2, v1 in that
 * order; v4's error stream carries the Status the owner sends). */
#define NSTREAM_SPDY_PROTO	"v4.channel.k8s.io"
/* After the end, how long a SPDY client has to open the streams it
 * announced before the session is closed all the same */
#define NSTREAM_OPEN_WAIT_MS	2000

struct nstream {
	const struct nstream_ops *ops;
	void *arg;			/* the owner's, until nstream_end */
	struct ws *ws;			/* WebSocket framing, else SPDY: */
	struct http_req *req;		/* until the session is finished */
	struct spdy *spdy;
	uint32_t sid[NCH];		/* each channel's stream, 0: not opened */
	struct buf pend[NCH];		/* output waiting for its stream */
	struct buf resize_line;		/* the resize stream's partial line */
	unsigned want;			/* 1 << ch of each stream announced */
	bool ending;			/* nstream_end called: no more callbacks */
	bool gone;			/* the client left or broke the session */
	bool finished;			/* SPDY: the connection is closed */
	bool in_input;			/* SPDY: inside spdy_input (s is freed after) */
	uv_timer_t wait;		/* SPDY: NSTREAM_OPEN_WAIT_MS after the end */
};

static void
nstream_free(struct nstream *s)
{
	spdy_free(s->spdy);
	for (int i = 0; i < NCH; i++)
		buf_free(&s->pend[i]);
	buf_free(&s->resize_line);
	free(s);
}

/* The client is gone: the owner hears it once (it ends the stream). */
static void
client_gone(struct nstream *s)
{
	if (s->gone)
		return;
	s->gone = true;
	if (!s->ending && s->ops->gone)
		s->ops->gone(s->arg);
}

/* ---- WebSocket ---------------------------------------------------------- */

static void
on_ws_message(struct ws *w, const char *data, size_t len, void *arg)
{
	struct nstream *s = arg;
	(void)w;
	if (len == 0 || s->ending)
		return;
	switch ((unsigned char)data[0]) {
	case CH_STDIN:
		s->ops->stdin_data(s->arg, data + 1, len - 1);
		break;
	case CH_RESIZE:
		s->ops->resize(s->arg, data + 1, len - 1);
		break;
	case CH_CLOSE:
		if (len >= 2 && data[1] == CH_STDIN)
			s->ops->stdin_end(s->arg);
		break;
	default:
		break;
	}
}

static void
on_ws_closed(struct ws *w, void *arg)
{
	(void)w;
	client_gone(arg);
}

static const struct ws_ops nstream_ws_ops = { on_ws_message, on_ws_closed };

static void
on_ws_drained(void *arg)
{
	struct nstream *s = arg;
	if (!s->ending && s->ops->drained)
		s->ops->drained(s->arg);
}

/* ---- SPDY --------------------------------------------------------------- */

static void
on_spdy_write(void *arg, const char *data, size_t len)
{
	struct nstream *s = arg;
	if (s->gone || !s->req || http_req_aborted(s->req))
		return;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	http_raw_write(s->req, &b, 1);
}

static void
on_wait_closed(uv_handle_t *h)
{
	nstream_free(h->data);
}

/* Every stream gets our end, the connection closes, s is freed (once
 * spdy_input, if it is under way, returned). */
static void
spdy_finish(struct nstream *s)
{
	if (s->finished)
		return;
	s->finished = true;
	for (int ch = 0; ch < NCH; ch++)
		if (s->sid[ch] && !s->gone)
			spdy_data(s->spdy, s->sid[ch], NULL, 0, true);
	http_raw_end(s->req, false);
	s->req = NULL;
	if (!s->in_input)
		uv_close((uv_handle_t *)&s->wait, on_wait_closed);
}

/* After the end: finished once the client has every stream it announced
 * (or is gone). */
static void
spdy_maybe_finish(struct nstream *s)
{
	if (!s->ending || s->finished)
		return;
	for (int ch = 0; ch < NCH && !s->gone; ch++)
		if ((s->want & 1u << ch) && !s->sid[ch])
			return;
	spdy_finish(s);
}

static void
on_spdy_stream(struct spdy *sp, uint32_t id, const struct spdy_header *h, size_t n,
    void *arg)
{
	static const char *const types[NCH] = { [CH_STDIN] = "stdin",
		[CH_STDOUT] = "stdout", [CH_STDERR] = "stderr", [CH_STATUS] = "error",
		[CH_RESIZE] = "resize" };
	struct nstream *s = arg;
	const char *type = "";
	for (size_t i = 0; i < n; i++)
		if (!strcmp(h[i].name, "streamtype"))
			type = h[i].value;
	int ch = -1;
	for (int i = 0; i < NCH; i++)
		if (!strcmp(type, types[i]) && !s->sid[i])
			ch = i;
	if (ch < 0) {
		spdy_reset(sp, id, 3);	/* REFUSED_STREAM: unknown or twice */
		return;
	}
	s->sid[ch] = id;
	/* every stream stays open on our side until the end, stdin too:
	 * kubectl closes its stdin stream as soon as ours ends (client-go's
	 * v2 copyStdin waits on it), even with stdin data still to send */
	spdy_reply(sp, id, false);
	if (s->pend[ch].len) {
		spdy_data(sp, id, s->pend[ch].data, s->pend[ch].len, false);
		buf_free(&s->pend[ch]);
	}
	spdy_maybe_finish(s);
}

/* The resize stream: one JSON object per line ({"Width":W,"Height":H}). */
static void
resize_lines(struct nstream *s, const char *data, size_t len)
{
	struct buf *l = &s->resize_line;
	char *nl;
	buf_append(l, data, len);
	while (l->len && (nl = memchr(l->data, '\n', l->len))) {
		size_t k = (size_t)(nl - l->data);
		s->ops->resize(s->arg, l->data, k);
		if (s->ending)
			return;
		memmove(l->data, nl + 1, l->len - k - 1);
		l->len -= k + 1;
	}
	if (l->len > 4096)
		l->len = 0;		/* not a resize message */
}

static void
on_spdy_data(struct spdy *sp, uint32_t id, const char *data, size_t len, bool fin,
    void *arg)
{
	struct nstream *s = arg;
	(void)sp;
	if (s->ending)
		return;
	if (id == s->sid[CH_STDIN]) {
		if (len)
			s->ops->stdin_data(s->arg, data, len);
		if (fin && !s->ending)
			s->ops->stdin_end(s->arg);
	} else if (id == s->sid[CH_RESIZE]) {
		resize_lines(s, data, len);
	}
}

static void
on_spdy_reset(struct spdy *sp, uint32_t id, void *arg)
{
	struct nstream *s = arg;
	(void)sp;
	if (!s->ending && id == s->sid[CH_STDIN])
		s->ops->stdin_end(s->arg);
}

static const struct spdy_ops nstream_spdy_ops = { on_spdy_write, on_spdy_stream,
	on_spdy_data, on_spdy_reset };

/* After the end the session is closed at once; before it the owner is
 * told, and its nstream_end closes it. */
static void
spdy_client_gone(struct nstream *s)
{
	if (s->ending) {
		s->gone = true;
		spdy_maybe_finish(s);
	} else {
		client_gone(s);
	}
}

static void
on_tunnel(struct http_req *req, const char *data, size_t len, void *arg)
{
	struct nstream *s = arg;
	(void)req;
	if (s->finished || s->gone)
		return;
	s->in_input = true;
	int rc = spdy_input(s->spdy, data, len);
	s->in_input = false;
	if (s->finished)
		uv_close((uv_handle_t *)&s->wait, on_wait_closed);	/* ended meanwhile */
	else if (rc < 0)
		spdy_client_gone(s);	/* a broken session ends what runs */
}

static void
on_abort(struct http_req *req, void *arg)
{
	(void)req;
	spdy_client_gone(arg);
}

static void
on_spdy_drained(struct http_req *req, void *arg)
{
	(void)req;
	on_ws_drained(arg);
}

static void
on_wait(uv_timer_t *t)
{
	spdy_finish(t->data);	/* a client that never opens them is given up on */
}

/* ---- the owner's side --------------------------------------------------- */

int
nstream_check(struct http_req *req, const char *what, const char **proto)
{
	static const char *const ours[] = { "v5.channel.k8s.io", "v4.channel.k8s.io" };
	char why[256];
	*proto = NULL;
	if (req->upgrade && !ws_wanted(req)) {
		const char *up = http_req_header(req, "Upgrade");
		bool v4 = false;	/* offered in one of the repeated headers */
		for (size_t i = 0; i < req->nheaders; i++)
			v4 |= !strcasecmp(req->headers[i].name, "X-Stream-Protocol-Version") &&
			    strstr(req->headers[i].value, NSTREAM_SPDY_PROTO) != NULL;
		if (up && !strcasecmp(up, "SPDY/3.1") && v4) {
			*proto = NSTREAM_SPDY;
			return 0;
		}
		snprintf(why, sizeof why, "v6 serves %s over WebSocket (v5.channel.k8s.io, "
		    "v4.channel.k8s.io) or SPDY/3.1 with X-Stream-Protocol-Version "
		    NSTREAM_SPDY_PROTO, what);
		ws_refuse(req, why);
		return 1;
	}
	if (ws_wanted(req) && !(*proto = ws_pick(req, ours, ARRAY_SIZE(ours)))) {
		ws_refuse(req, "one of the subprotocols v5.channel.k8s.io, "
		    "v4.channel.k8s.io is required");
		return 1;
	}
	return 0;
}

struct nstream *
nstream_open(uv_loop_t *loop, struct http_req *req, const char *proto,
    const struct nstream_ops *ops, void *arg)
{
	struct nstream *s = xcalloc(1, sizeof *s);
	s->ops = ops;
	s->arg = arg;
	if (strcmp(proto, NSTREAM_SPDY)) {
		s->ws = ws_open(req, proto, &nstream_ws_ops, s);
		if (s->ws == NULL) {		/* answered 400 */
			free(s);
			return NULL;
		}
		ws_on_drain(s->ws, on_ws_drained, s);
		return s;
	}
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
	    "X-Stream-Protocol-Version: " NSTREAM_SPDY_PROTO "\r\n\r\n";
	uv_buf_t b = uv_buf_init((char *)head, sizeof head - 1);
	bool tty = http_query_bool(req->query, "tty");
	s->req = req;
	s->spdy = spdy_new(&nstream_spdy_ops, s);
	uv_timer_init(loop, &s->wait);
	s->wait.data = s;
	/* client-go opens error always, and stdin, stdout, stderr (not with
	 * a terminal) and resize (with one) as the query says */
	s->want = 1u << CH_STATUS;
	s->want |= http_query_bool(req->query, "stdin") ? 1u << CH_STDIN : 0;
	s->want |= http_query_bool(req->query, "stdout") ? 1u << CH_STDOUT : 0;
	s->want |= http_query_bool(req->query, "stderr") && !tty ? 1u << CH_STDERR : 0;
	s->want |= tty ? 1u << CH_RESIZE : 0;
	http_raw_write(req, &b, 1);
	http_req_on_abort(req, on_abort, s);
	http_req_on_drain(req, on_spdy_drained, s);
	if (http_req_aborted(req))
		s->gone = true;		/* the owner is told nothing: it ends at once */
	else
		http_req_tunnel(req, on_tunnel, s);
	return s;
}

void
nstream_send(struct nstream *s, int ch, const char *data, size_t len)
{
	if (s->ending || s->gone || ch < 0 || ch >= NCH)
		return;
	if (s->ws)
		ws_send(s->ws, ch, data, len);
	else if (s->sid[ch])
		spdy_data(s->spdy, s->sid[ch], data, len, false);
	else if (s->want & 1u << ch)	/* else it has no stream to wait for */
		buf_append(&s->pend[ch], data, len);
}

size_t
nstream_pending(const struct nstream *s)
{
	if (s->gone)
		return 0;
	return s->ws ? ws_pending(s->ws) : http_stream_pending(s->req);
}

void
nstream_pause(struct nstream *s, bool pause)
{
	if (s->ending || s->gone)
		return;
	if (s->ws)
		ws_pause(s->ws, pause);
	else
		http_req_tunnel_pause(s->req, pause);
}

bool
nstream_gone(const struct nstream *s)
{
	return s->gone;
}

void
nstream_end(struct nstream *s, const char *status)
{
	if (status)
		nstream_send(s, CH_STATUS, status, strlen(status));
	s->ending = true;
	if (s->ws) {
		ws_end(s->ws);
		free(s);
		return;
	}
	/* the Status waits in pend[] for an error stream not opened yet */
	uv_timer_start(&s->wait, on_wait, NSTREAM_OPEN_WAIT_MS, 0);
	spdy_maybe_finish(s);
}
