/* net.h — libuv stream helpers shared by V6's network code: the HTTP
 * server (http.c), the proxy's upstream client (proxy_upstream.c) and its
 * TCP splice (proxy_tcp.c). */
#ifndef V6_NET_H
#define V6_NET_H

#include <uv.h>

/* A write request queued by net_send; its callback gets it back through
 * the uv_write_t (the first member) and frees it. */
struct net_write {
	uv_write_t req;
	void *owner;		/* what the caller passed */
	int tag;		/* the caller's own (e.g. which side of a splice) */
	char data[];
};

/* net.c */
/* Writes bufs after anything already queued on s: straight to the kernel
 * (uv_try_write) when *queued is 0, the rest copied into one uv_write whose
 * completion calls cb — so callers may pass stack memory. *queued counts
 * the caller's write requests in flight: incremented here, decremented by
 * the caller in cb. Returns the bytes written at once (>= 0), or a negative
 * errno (nothing queued). */
int net_send(uv_stream_t *s, const uv_buf_t *bufs, unsigned n, unsigned *queued,
    uv_write_cb cb, void *owner, int tag);
/* A uv_alloc_cb giving a fresh buffer of the suggested size; the read
 * callback frees b->base. For the proxy's control socket, both ends. */
void net_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);

#endif
