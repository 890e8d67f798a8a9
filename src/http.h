/* http.h — V6's HTTP/1.1 server and client on libuv + http-parser. The
 * server (http.c; the API server, the proxy, testapp) owns connections,
 * parsing, limits (431 / 413 / 408 / 400 without ever crashing), keep-alive
 * and pipelining (one request at a time per connection, in order),
 * streaming (chunked) responses for watches, and optional TLS (OpenSSL,
 * cfg.tls_ctx) with the client certificate's identity on each request.
 *
 * A handler receives each complete request and must finish it exactly once
 * with http_respond() or http_stream_end(), now or later: a request stays
 * valid until then, even if the client went away. The client
 * (http_client.c; probes, the traffic scrape) sends one request per
 * connection. */
#ifndef V6_HTTP_H
#define V6_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct ssl_ctx_st;

struct http_header {
	char *name;
	char *value;
};

struct http_req {
	const char *method;	/* "GET", "POST", ... */
	const char *target;	/* raw request-target, "/api/v1/pods?watch=1" */
	const char *path;	/* percent-decoded path without the query */
	const char *query;	/* raw query string after '?', "" if none */
	const struct http_header *headers;
	size_t nheaders;
	const char *body;	/* NUL-terminated; "" when empty */
	size_t body_len;
	const char *remote_addr;	/* "127.0.0.1:53412" */
	void *user;		/* free for the handler */

	/* For handlers that frame responses themselves (the proxy). */
	bool keep_alive;	/* the client allows another request after this one */
	bool http10;		/* HTTP/1.0 client */
	bool upgrade;		/* Upgrade + "Connection: upgrade" (or CONNECT) */
	bool chunked;		/* body framed by Transfer-Encoding: chunked */
	int64_t content_length;	/* -1 when none */
	bool body_follows;	/* cfg.stream_body: the body comes via http_req_body() */

	/* Transport identity (issue 15). tls: the request came over TLS. When
	 * the client presented a certificate that chains to the server's client
	 * CA: its subject CN and O values (Kubernetes' X.509 user and groups),
	 * valid as long as the request; NULL / 0 otherwise. */
	bool tls;
	const char *client_cn;
	const char *const *client_orgs;
	size_t client_norgs;
	/* The caller's identity once the API authenticated it (api_auth.c
	 * owns and frees it; see auth.h). */
	void *auth;
};

typedef void (*http_handler_fn)(struct http_req *req, void *arg);
/* A request was finished by its handler: status of the response (0 if none
 * was sent), ns since it was dispatched. req is still readable. */
typedef void (*http_done_fn)(struct http_req *req, int status, uint64_t ns, void *arg);

/* Renders the body of an error the server answers by itself (400, 408, 413,
 * 431, 503): returns a malloc'ed body and sets *content_type. */
typedef char *(*http_error_fn)(int status, const char *message, const char **content_type);

struct http_config {
	size_t max_header_bytes;	/* request line + headers; 431 past it (default 64 KiB) */
	size_t max_body_bytes;		/* 413 past it (default 3 MiB) */
	unsigned header_timeout_ms;	/* 408 if headers are not complete (default 10 s) */
	unsigned idle_timeout_ms;	/* close idle keep-alive connections (default 120 s) */
	unsigned max_connections;	/* 503 past it (default 10000) */
	http_handler_fn handler;
	void *handler_arg;
	http_error_fn error_body;	/* NULL: text/plain */
	http_done_fn done;		/* NULL: none; gets handler_arg (request metrics) */
	/* The handler runs as soon as the head of a request with a body is
	 * read (req->body_follows); the body is not buffered nor limited by
	 * max_body_bytes, it streams through http_req_body(). Requests without
	 * a body are dispatched as usual. For the proxy. */
	bool stream_body;
	/* TLS (OpenSSL's SSL_CTX; tls.c builds V6's): NULL serves plain HTTP.
	 * The server takes a reference. The handshake must finish within
	 * header_timeout_ms; a verified client certificate fills req->client_*. */
	struct ssl_ctx_st *tls_ctx;
};

/* http.c */
/* Listens on host:port (port 0 picks one). Returns 0 or negative errno. */
int http_server_start(uv_loop_t *loop, const char *host, int port,
    const struct http_config *cfg, struct http_server **out);
int http_server_port(const struct http_server *srv);
/* New connections use ctx from now on (a renewed certificate); open ones
 * keep theirs. NULL: plain HTTP. Takes a reference. */
void http_server_set_tls(struct http_server *srv, struct ssl_ctx_st *ctx);
/* Stops listening and closes every connection; requests still held by a
 * handler stay valid until finished. */
void http_server_stop(struct http_server *srv);
/* Stops accepting connections (closes the listening socket) while the open
 * connections and their requests go on: a graceful drain. Call
 * http_server_stop() afterwards as usual. */
void http_server_unlisten(struct http_server *srv);
/* Serves on fd, a socket already bound and listening (inherited from
 * another process); listens again on it. fd is the server's in every case
 * (closed on failure). Returns 0 or negative errno. */
int http_server_open(uv_loop_t *loop, uv_os_sock_t fd, const struct http_config *cfg,
    struct http_server **out);
/* The listening socket (for handing it to another process), or -EBADF once
 * unlistened. The server keeps it. */
int http_server_fd(const struct http_server *srv);
/* A graceful drain: stops accepting; each request in progress or arriving
 * on an open connection within a short grace (1 s) is answered with
 * Connection: close; a connection idle that long is closed. done(arg) runs
 * once no connection is left, possibly from inside this call or any other
 * http_* call: it should only schedule work. Call http_server_stop() after. */
void http_server_drain(struct http_server *srv, void (*done)(void *), void *arg);

/* Case-insensitive; NULL when absent. */
const char *http_req_header(const struct http_req *req, const char *name);
/* Value of key in a query string, percent-decoded; NULL when absent ("" for
 * a bare "key"). Caller frees. */
char *http_query_get(const char *query, const char *key);
/* A boolean query parameter as Kubernetes reads one: present bare, "true"
 * or "1" is on. */
bool http_query_bool(const char *query, const char *key);

/* Extra response headers for the next http_respond/http_stream_start on
 * req, "Name: value" lines without CRLF. */
void http_add_header(struct http_req *req, const char *name, const char *value);
/* Sends a complete response (copies body) and finishes req. */
void http_respond(struct http_req *req, int status, const char *content_type,
    const char *body, size_t len);
/* Starts a chunked response; then http_stream_write any number of times and
 * http_stream_end once. */
void http_stream_start(struct http_req *req, int status, const char *content_type);
/* Returns 0, or -EPIPE when the client is gone (keep calling end). */
int http_stream_write(struct http_req *req, const char *data, size_t len);
/* Bytes written but not yet taken by the kernel (for backpressure). */
size_t http_stream_pending(const struct http_req *req);
void http_stream_end(struct http_req *req);
/* Ends a streamed response short: no final chunk, and the connection
 * closes, so the client sees a broken response, never a clean end of an
 * incomplete body (a list that failed half-way). */
void http_stream_abort(struct http_req *req);
/* cb runs once if the client disconnects before req is finished. */
void http_req_on_abort(struct http_req *req, void (*cb)(struct http_req *, void *),
    void *arg);
/* True once the client of req has disconnected. */
bool http_req_aborted(const struct http_req *req);

/* ---- for the proxy (additive): streamed bodies, raw responses, upgrades */

/* With cfg.stream_body and req->body_follows: cb gets the body's raw bytes
 * as they arrive (chunk framing included when req->chunked: it was checked
 * strictly), then once with end=true and len 0. data is only valid during
 * the call. Register before the handler returns; bytes read while no
 * callback is set are dropped. Finishing req before the end of its body
 * closes the connection after the response. */
typedef void (*http_body_fn)(struct http_req *req, const char *data, size_t len,
    bool end, void *arg);
void http_req_body(struct http_req *req, http_body_fn cb, void *arg);
/* Stops (true) or resumes (false) reading the body: backpressure. Bytes
 * already buffered are delivered on resume, possibly before this returns. */
void http_req_body_pause(struct http_req *req, bool pause);
/* Sends bytes exactly as given (the caller frames the whole response:
 * status line, headers, body); copies what the kernel does not take at
 * once. Returns 0 or -EPIPE when the client is gone. */
int http_raw_write(struct http_req *req, const uv_buf_t *bufs, unsigned n);
/* Finishes a raw response; keep_alive false closes the connection after
 * it (the response was delimited by the close, or cut short). */
void http_raw_end(struct http_req *req, bool keep_alive);
/* cb runs each time the write queue of req's connection empties, while
 * the handler holds req (resume reading the other side). */
void http_req_on_drain(struct http_req *req, void (*cb)(struct http_req *, void *),
    void *arg);
/* Takes the client's connection out of the server for a protocol switch:
 * *fd is a new descriptor of the socket (caller owns it, e.g. for
 * uv_tcp_open), *rest (malloc'ed, caller frees) the bytes already read past
 * the request. Finishes req. Returns 0, -EBUSY while a response is being
 * written, -EPIPE if the client is gone (req is then still to be finished). */
int http_req_detach(struct http_req *req, uv_os_sock_t *fd, char **rest, size_t *rest_len);
/* After a protocol switch answered with http_raw_write (a 101), the
 * client's bytes past the request (decrypted under TLS) go to cb as they
 * arrive, the first ones possibly before this returns; data is valid
 * during the call only. The end of the connection is the abort callback.
 * For WebSocket (ws.c). */
typedef void (*http_tunnel_fn)(struct http_req *req, const char *data, size_t len,
    void *arg);
void http_req_tunnel(struct http_req *req, http_tunnel_fn cb, void *arg);
/* Stops (true) or resumes (false) reading the tunnel: backpressure. */
void http_req_tunnel_pause(struct http_req *req, bool pause);
/* Open client connections. */
unsigned http_server_connections(const struct http_server *srv);

/* ---- http_client.c: one request on a fresh connection ------------------ */

#define HTTP_CLIENT_MAX_BODY	(4u << 20)

struct http_client_req;

struct http_client_opts {
	const char *method;		/* NULL: "GET" */
	const char *path;		/* NULL or "": "/" */
	const char *host;		/* the Host header ("127.0.0.1:8080") */
	const char *headers;		/* extra "Name: value\r\n" lines, or NULL */
	const char *body;		/* sent with Content-Length, or NULL */
	size_t body_len;
	unsigned timeout_ms;		/* the whole exchange; 0: 10 s */
	size_t max_body;		/* 0: HTTP_CLIENT_MAX_BODY */
	bool head_only;			/* done once the head is read (probes) */
};

struct http_response {
	int status;			/* 0 until a status line was read */
	const struct http_header *headers;
	size_t nheaders;
	const char *body;		/* NUL-terminated, "" when none */
	size_t body_len;
	bool connected;			/* the connect succeeded */
};

/* Runs once on the loop: rc 0 and a complete response (body framed by
 * Content-Length, chunked encoding or the close), or a negative errno:
 * the connect's error (res->connected false), -ETIMEDOUT, -EFBIG (body
 * past max_body), -EPROTO (not HTTP), -ECONNRESET (cut short). res and
 * everything in it is valid during the call only. */
typedef void (*http_client_fn)(int rc, const struct http_response *res, void *arg);
/* Sends one request with "Connection: close" to addr. fn runs later, never
 * from inside this call; *out is for http_client_cancel until fn ran.
 * Returns 0. */
int http_client_request(uv_loop_t *loop, const struct sockaddr *addr,
    const struct http_client_opts *o, http_client_fn fn, void *arg,
    struct http_client_req **out);
/* fn will not run; the connection closes. NULL or finished: nothing. */
void http_client_cancel(struct http_client_req *r);
/* "http://IP:PORT[/PREFIX]" (IPv4 or [IPv6]; no names, no TLS) -> addr,
 * the Host header's value and the path prefix without its trailing '/'
 * ("" when none), both malloc'ed (either pointer may be NULL). -EINVAL for
 * anything else. */
struct sockaddr_storage;
int http_client_parse_url(const char *url, struct sockaddr_storage *addr, char **host,
    char **prefix);
/* Case-insensitive; NULL when absent. */
const char *http_response_header(const struct http_response *res, const char *name);

#endif
