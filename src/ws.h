/* ws.h — the server side of WebSocket (RFC 6455) on an upgraded API
 * request: handshake with a subprotocol, the client's masked and
 * fragmented messages, pings, close. Used by pods/exec and attach
 * (channel.k8s.io, node_exec.c) and pods/portforward (SPDY tunnelled,
 * node_portforward.c). */
#ifndef V6_WS_H
#define V6_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_req;
struct ws;

struct ws_ops {
	/* A whole binary or text message; data valid during the call. */
	void (*message)(struct ws *w, const char *data, size_t len, void *arg);
	/* The client closed or went away: no message follows; the owner
	 * calls ws_end (now or later). */
	void (*closed)(struct ws *w, void *arg);
};

/* True when req asks for a WebSocket upgrade. */
bool ws_wanted(const struct http_req *req);
/* The first of ours (n names) the client offered in
 * Sec-WebSocket-Protocol, or NULL. */
const char *ws_pick(const struct http_req *req, const char *const *ours, size_t n);
/* Answers 400 with a Status whose message starts as kubectl expects of a
 * failed upgrade ("unable to upgrade connection: why"), finishing req. */
void ws_refuse(struct http_req *req, const char *why);
/* Answers the handshake (101, subprotocol proto) and starts reading the
 * client's messages; NULL with req answered 400 when the request lacks
 * a key. The ws owns req until ws_end. */
struct ws *ws_open(struct http_req *req, const char *proto, const struct ws_ops *ops,
    void *arg);
/* One binary message: [ch] then data (ch < 0: data alone). Returns 0 or
 * -EPIPE once the client is gone. */
int ws_send(struct ws *w, int ch, const char *data, size_t len);
/* Bytes queued to the client not yet taken by the kernel. */
size_t ws_pending(const struct ws *w);
/* cb runs when the queue to the client empties (resume the producer). */
void ws_on_drain(struct ws *w, void (*cb)(void *), void *arg);
/* Stops (true) or resumes reading the client: backpressure. */
void ws_pause(struct ws *w, bool pause);
/* Sends a close frame (code 1000) when the client is still there,
 * finishes the request and frees w. */
void ws_end(struct ws *w);

/* The framing both ends share (cli_ws.c is the client). */
struct ws_head {
	int op;				/* opcode */
	bool fin;
	const unsigned char *mask;	/* the 4-byte key, NULL when unmasked */
	uint64_t len;			/* payload length */
	size_t size;			/* the head's bytes, key included */
};
/* Parses the frame head at p (avail bytes): 0, or -EAGAIN while it is
 * incomplete. */
int ws_parse_head(const unsigned char *p, size_t avail, struct ws_head *h);
/* Writes the head of a final frame (opcode op, payload plen, masked with
 * key unless NULL) into h (14 bytes); returns its length. */
size_t ws_make_head(unsigned char *h, int op, uint64_t plen, const unsigned char *key);

#endif
