/* cli_ws.c — the CLI's WebSocket client (RFC 6455) over a libcurl
 * CONNECT_ONLY connection, so TLS, the CA and client certificates are
 * every request's: the upgrade request with the CLI's headers, masked
 * binary messages out, whole messages in, pings answered. For v6 exec
 * (v5.channel.k8s.io) and v6 port-forward (v4.channel.k8s.io). */
#include "cli.h"
#include "ws.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define WS_HEAD_MAX	(64u << 10)

struct cli_ws {
	CURL *h;
	curl_socket_t fd;
	struct curl_slist *hdrs;
	struct buf in;			/* bytes not yet a whole frame */
	bool closed;
};

int
cli_ws_fd(const struct cli_ws *w)
{
	return (int)w->fd;
}

/* Sends all of data, waiting while the socket is full. */
static int
send_all(struct cli_ws *w, const char *data, size_t len)
{
	while (len > 0) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(w->h, data, len, &n);
		if (rc == CURLE_AGAIN) {
			struct pollfd p = { .fd = w->fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (rc != CURLE_OK)
			return -EPIPE;
		data += n;
		len -= n;
	}
	return 0;
}

/* Reads what is there into w->in: 1 when bytes came, 0 when none are
 * ready, -1 at the end of the connection. */
static int
fill(struct cli_ws *w)
{
	char chunk[65536];
	size_t n = 0;
	CURLcode rc = curl_easy_recv(w->h, chunk, sizeof chunk, &n);
	if (rc == CURLE_AGAIN)
		return 0;
	if (rc != CURLE_OK || n == 0)
		return -1;
	buf_append(&w->in, chunk, n);
	return 1;
}

static int
send_frame(struct cli_ws *w, int op, int ch, const void *data, size_t len)
{
	unsigned char h[15], key[4];
	size_t plen = len + (ch >= 0);
	if (getrandom(key, sizeof key, 0) != sizeof key)
		memset(key, 0x5a, sizeof key);
	size_t n = ws_make_head(h, op, plen, key);
	struct buf b = BUF_INIT;
	buf_append(&b, h, n);
	if (ch >= 0)
		buf_putc(&b, (char)ch);
	buf_append(&b, data, len);
	for (size_t i = 0; i < plen; i++)
		b.data[n + i] ^= (char)key[i & 3];
	int rc = send_all(w, b.data, b.len);
	buf_free(&b);
	return rc;
}

int
cli_ws_send(struct cli_ws *w, int ch, const void *data, size_t len)
{
	return w->closed ? -EPIPE : send_frame(w, 0x2, ch, data, len);
}

int
cli_ws_read(struct cli_ws *w, cli_ws_msg_fn fn, void *arg)
{
	int got;
	while (!w->closed && (got = fill(w)) != 0) {
		if (got < 0) {
			w->closed = true;
			break;
		}
		size_t off = 0;
		unsigned char *b = (unsigned char *)w->in.data;
		struct ws_head h;
		while (ws_parse_head(b + off, w->in.len - off, &h) == 0 &&
		    w->in.len - off - h.size >= h.len) {
			const char *p = (const char *)b + off + h.size;
			off += h.size + (size_t)h.len;
			if (h.op == 0x8) {
				send_frame(w, 0x8, -1, "\x03\xe8", 2);
				w->closed = true;
				break;
			} else if (h.op == 0x9) {
				send_frame(w, 0xa, -1, p, (size_t)h.len);
			} else if (h.op <= 0x2) {
				fn(arg, p, (size_t)h.len);
			}
		}
		memmove(w->in.data, w->in.data + off, w->in.len - off);
		w->in.len -= off;
	}
	return w->closed ? 1 : 0;
}

/* The answer to the upgrade: 0 at 101 (bytes past the head stay in
 * w->in), else -1 with the error printed as kubectl prints Statuses. */
static int
read_head(struct cli_ws *w)
{
	char *end;
	for (;;) {
		if (w->in.len && (end = memmem(w->in.data, w->in.len, "\r\n\r\n", 4)))
			break;
		if (w->in.len > WS_HEAD_MAX)
			return cli_err("the server's answer to the upgrade is too long"), -1;
		struct pollfd p = { .fd = w->fd, .events = POLLIN };
		if (fill(w) < 0 || (w->in.len == 0 && poll(&p, 1, 30000) == 0))
			return cli_err("the server closed the connection during the upgrade"), -1;
	}
	size_t hlen = (size_t)(end - w->in.data) + 4;
	long status = strtol(w->in.data + 8, NULL, 10);
	if (strncmp(w->in.data, "HTTP/1.", 7) == 0 && status == 101) {
		memmove(w->in.data, w->in.data + hlen, w->in.len - hlen);
		w->in.len -= hlen;
		return 0;
	}
	/* an error: its body is a Status (Content-Length framed) */
	const char *cl = strcasestr(w->in.data, "\r\ncontent-length:");
	size_t want = hlen + (cl && cl < end ? (size_t)strtoul(cl + 17, NULL, 10) : 0);
	while (w->in.len < want && want < WS_HEAD_MAX) {
		struct pollfd p = { .fd = w->fd, .events = POLLIN };
		int got = fill(w);
		if (got < 0 || (got == 0 && poll(&p, 1, 10000) == 0))
			break;
	}
	buf_putc(&w->in, '\0');
	struct cli_resp r = { status, NULL, w->in.data + hlen };
	r.body = json_loads(r.raw, 0, NULL);
	cli_print_error(&r, NULL);
	json_decref(r.body);
	return -1;
}

struct cli_ws *
cli_ws_open(const char *path, const char *proto)
{
	struct cli_ws *w = xcalloc(1, sizeof *w);
	char errbuf[CURL_ERROR_SIZE] = "", *url = NULL, *host;
	unsigned char nonce[16];
	char key[32];
	w->h = curl_easy_init();
	BUG_ON(w->h == NULL);
	w->hdrs = cli_curl_prepare(w->h, path, NULL);
	curl_easy_setopt(w->h, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(w->h, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode rc = curl_easy_perform(w->h);
	if (rc != CURLE_OK) {
		cli_transport_error(rc, errbuf);
		cli_ws_close(w);
		return NULL;
	}
	curl_easy_getinfo(w->h, CURLINFO_ACTIVESOCKET, &w->fd);
	curl_easy_getinfo(w->h, CURLINFO_EFFECTIVE_URL, &url);
	host = xstrdup(strstr(url, "://") ? strstr(url, "://") + 3 : url);
	host[strcspn(host, "/")] = '\0';
	if (getrandom(nonce, sizeof nonce, 0) != sizeof nonce)
		memset(nonce, 0x33, sizeof nonce);
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
	struct buf req = BUF_INIT;
	buf_printf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	    "Sec-WebSocket-Protocol: %s\r\n", path, host, key, proto);
	for (struct curl_slist *l = w->hdrs; l; l = l->next)
		buf_printf(&req, "%s\r\n", l->data);
	buf_puts(&req, "\r\n");
	free(host);
	int bad = send_all(w, req.data, req.len) < 0;
	buf_free(&req);
	if (bad) {
		cli_err("cannot send the upgrade request to %s", cli_server_url());
		cli_ws_close(w);
		return NULL;
	}
	if (read_head(w) < 0) {
		cli_ws_close(w);
		return NULL;
	}
	return w;
}

void
cli_ws_close(struct cli_ws *w)
{
	if (!w)
		return;
	if (!w->closed && w->fd > 0)
		send_frame(w, 0x8, -1, "\x03\xe8", 2);
	curl_easy_cleanup(w->h);
	curl_slist_free_all(w->hdrs);
	buf_free(&w->in);
	free(w);
}
