/* spdy.h — the server side of a SPDY/3.1 session, the framing kubectl
 * port-forward speaks (plain after an `Upgrade: SPDY/3.1`, or tunnelled in
 * WebSocket binary messages). Transport-agnostic: bytes in through
 * spdy_input, out through ops->write. Used by node_portforward.c. */
#ifndef V6_SPDY_H
#define V6_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spdy;

/* One header of a stream (names lower-case, the first value only). */
struct spdy_header {
	const char *name, *value;
};

struct spdy_ops {
	/* Bytes for the peer, in order. */
	void (*write)(void *arg, const char *data, size_t len);
	/* The client opened stream id (SYN_STREAM); headers valid during
	 * the call. The owner answers with spdy_reply or spdy_reset. */
	void (*stream)(struct spdy *s, uint32_t id, const struct spdy_header *h, size_t n,
	    void *arg);
	/* Data of stream id; fin: the client's half is done (len may be 0). */
	void (*data)(struct spdy *s, uint32_t id, const char *data, size_t len, bool fin,
	    void *arg);
	/* The client reset stream id. */
	void (*reset)(struct spdy *s, uint32_t id, void *arg);
};

struct spdy *spdy_new(const struct spdy_ops *ops, void *arg);
void spdy_free(struct spdy *s);
/* Feeds the client's bytes. Returns 0, or -EPROTO for a session error
 * (bad framing, a header block that does not inflate, GOAWAY): the owner
 * ends the session. */
int spdy_input(struct spdy *s, const char *data, size_t len);
/* SYN_REPLY without headers; fin: nothing will be sent on it. */
void spdy_reply(struct spdy *s, uint32_t id, bool fin);
/* Data frames (split as needed); fin half-closes our side. */
void spdy_data(struct spdy *s, uint32_t id, const char *data, size_t len, bool fin);
/* RST_STREAM with status (1 PROTOCOL_ERROR, 3 REFUSED_STREAM, 5 CANCEL). */
void spdy_reset(struct spdy *s, uint32_t id, uint32_t status);
/* The SPDY/3 header compression dictionary (its 1423 bytes). */
const unsigned char *spdy_dictionary(size_t *len);

#endif
