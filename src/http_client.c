/* http_client.c — V6's one HTTP/1.1 client (http.h): a single request on
 * a fresh connection of the server's loop, its response read with
 * http-parser (Content-Length, chunked, or delimited by the close), bounded
 * by a deadline and a size. Serves the node's httpGet probes (node_probe.c)
 * and the traffic scrape of the proxy's /metrics (obs_traffic.c). */
#include "http.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define CLIENT_MAX_HEADERS	64

struct http_client_req {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_timer_t timer;
	http_parser parser;
	char *request;
	size_t request_len;
	size_t max_body;
	bool head_only;
	http_client_fn fn;		/* NULL once finished or cancelled */
	void *arg;
	int closing;			/* handles still to close */
	int fail_rc;			/* a connect that failed at once */
	bool done;
	/* the response */
	struct http_response res;
	struct http_header headers[CLIENT_MAX_HEADERS];
	struct buf field, value;	/* the header being read */
	bool in_value;
	struct buf body;
	bool complete;
};

static void
req_closed(uv_handle_t *h)
{
	struct http_client_req *r = h->data;
	if (--r->closing > 0)
		return;
	for (size_t i = 0; i < r->res.nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	buf_free(&r->field);
	buf_free(&r->value);
	buf_free(&r->body);
	free(r->request);
	free(r);
}

/* Reports rc (0: a complete response) once, then closes everything. */
static void
finish(struct http_client_req *r, int rc)
{
	if (r->done)
		return;
	r->done = true;
	if (r->fn) {
		r->res.body = r->body.data ? r->body.data : "";
		r->res.body_len = r->body.len;
		r->res.headers = r->headers;
		r->fn(rc, &r->res, r->arg);
	}
	r->fn = NULL;
	r->closing = 2;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, req_closed);
	uv_close((uv_handle_t *)&r->tcp, req_closed);
}

/* ---- parser callbacks --------------------------------------------------- */

static void
header_done(struct http_client_req *r)
{
	if (r->field.len == 0)
		return;
	if (r->res.nheaders < CLIENT_MAX_HEADERS) {
		struct http_header *h = &r->headers[r->res.nheaders++];
		h->name = buf_steal(&r->field);
		h->value = r->value.data ? buf_steal(&r->value) : xstrdup("");
	}
	buf_reset(&r->field);
	buf_reset(&r->value);
	r->in_value = false;
}

static int
on_field(http_parser *p, const char *at, size_t len)
{
	struct http_client_req *r = p->data;
	if (r->in_value)
		header_done(r);
	buf_append(&r->field, at, len);
	return 0;
}

static int
on_value(http_parser *p, const char *at, size_t len)
{
	struct http_client_req *r = p->data;
	r->in_value = true;
	buf_append(&r->value, at, len);
	return 0;
}

static int
on_headers_complete(http_parser *p)
{
	struct http_client_req *r = p->data;
	header_done(r);
	r->res.status = p->status_code;
	if (r->head_only) {
		r->complete = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct http_client_req *r = p->data;
	if (r->body.len + len > r->max_body)
		return -1;	/* HPE_CB_body: too big */
	buf_append(&r->body, at, len);
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct http_client_req *r = p->data;
	r->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- the connection ----------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	static char scratch[65536];	/* consumed before the next read */
	b->base = scratch;
	b->len = sizeof scratch;
}

/* Feeds bytes (len 0: the end of the stream) to the parser. */
static void
feed(struct http_client_req *r, const char *data, size_t len)
{
	size_t n = http_parser_execute(&r->parser, &settings, data, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
	if (r->complete)
		finish(r, 0);
	else if (e == HPE_CB_body)
		finish(r, -EFBIG);
	else if (len == 0)	/* the connection ended before the response did */
		finish(r, r->res.status ? -ECONNRESET : -EPROTO);
	else if (e != HPE_OK || n != len)
		finish(r, -EPROTO);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct http_client_req *r = s->data;
	if (r->done)
		return;
	if (n == UV_EOF)
		feed(r, NULL, 0);
	else if (n < 0)
		finish(r, (int)n);
	else if (n > 0)
		feed(r, b->base, (size_t)n);
}

static void
on_written(uv_write_t *w, int status)
{
	struct http_client_req *r = w->data;
	if (status < 0 && status != UV_ECANCELED)
		finish(r, status);
}

static void
on_connect(uv_connect_t *c, int status)
{
	struct http_client_req *r = c->data;
	int rc;
	if (r->done)
		return;
	if (status < 0) {
		finish(r, status);
		return;
	}
	r->res.connected = true;
	uv_buf_t b = uv_buf_init(r->request, (unsigned)r->request_len);
	r->write.data = r;
	if ((rc = uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_written)) < 0 ||
	    (rc = uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read)) < 0)
		finish(r, rc);
}

static void
on_timeout(uv_timer_t *t)
{
	finish(t->data, -ETIMEDOUT);
}

static void
on_fail_soon(uv_timer_t *t)
{
	struct http_client_req *r = t->data;
	finish(r, r->fail_rc);
}

int
http_client_request(uv_loop_t *loop, const struct sockaddr *addr,
    const struct http_client_opts *o, http_client_fn fn, void *arg,
    struct http_client_req **out)
{
	struct http_client_req *r = xcalloc(1, sizeof *r);
	struct buf req = BUF_INIT;
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n",
	    o->method ? o->method : "GET", o->path && *o->path ? o->path : "/",
	    o->host ? o->host : "localhost", o->headers ? o->headers : "");
	if (o->body) {
		/* the headers' blank line moves after Content-Length */
		req.len -= 2;
		buf_printf(&req, "Content-Length: %zu\r\n\r\n", o->body_len);
		buf_append(&req, o->body, o->body_len);
	}
	r->request_len = req.len;
	r->request = buf_steal(&req);
	r->max_body = o->max_body ? o->max_body : HTTP_CLIENT_MAX_BODY;
	r->head_only = o->head_only;
	r->fn = fn;
	r->arg = arg;
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
	uv_tcp_init(loop, &r->tcp);
	uv_timer_init(loop, &r->timer);
	r->tcp.data = r->timer.data = r->connect.data = r;
	*out = r;
	int rc = uv_tcp_connect(&r->connect, &r->tcp, addr, on_connect);
	if (rc < 0) {
		/* Reported from the loop, never from inside this call. */
		r->fail_rc = rc;
		uv_timer_start(&r->timer, on_fail_soon, 0, 0);
		return 0;
	}
	uv_timer_start(&r->timer, on_timeout, o->timeout_ms ? o->timeout_ms : 10000, 0);
	return 0;
}

void
http_client_cancel(struct http_client_req *r)
{
	if (r == NULL || r->done)
		return;
	r->fn = NULL;
	finish(r, -ECANCELED);
}

const char *
http_response_header(const struct http_response *res, const char *name)
{
	for (size_t i = 0; i < res->nheaders; i++)
		if (strcasecmp(res->headers[i].name, name) == 0)
			return res->headers[i].value;
	return NULL;
}

int
http_client_parse_url(const char *url, struct sockaddr_storage *addr, char **host,
    char **prefix)
{
	if (!str_has_prefix(url, "http://"))
		return -EINVAL;
	const char *hp_start = url + 7;
	size_t hp_len = strcspn(hp_start, "/?#");
	char *hp = xstrndup(hp_start, hp_len), *colon = strrchr(hp, ':');
	int rc = -EINVAL;
	if (colon && colon[1]) {
		*colon = '\0';
		char *end;
		long port = strtol(colon + 1, &end, 10);
		bool v6 = hp[0] == '[';
		if (*end || port <= 0 || port > 65535)
			rc = -EINVAL;
		else if (v6 && colon[-1] == ']') {
			colon[-1] = '\0';
			rc = uv_ip6_addr(hp + 1, (int)port, (struct sockaddr_in6 *)addr);
		} else if (!v6) {
			rc = uv_ip4_addr(hp, (int)port, (struct sockaddr_in *)addr);
		}
	}
	free(hp);
	if (rc < 0)
		return -EINVAL;
	if (host)
		*host = xstrndup(hp_start, hp_len);
	if (prefix) {
		const char *p = hp_start + hp_len;
		size_t n = strcspn(p, "?#");
		while (n > 0 && p[n - 1] == '/')
			n--;
		*prefix = xstrndup(p, n);
	}
	return 0;
}
