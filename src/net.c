/* net.c — libuv stream helpers shared by the HTTP server and the proxy
 * (see net.h). */
#include "net.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void
net_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(hint);
	b->len = hint;
}

int
net_send(uv_stream_t *s, const uv_buf_t *bufs, unsigned n, unsigned *queued,
    uv_write_cb cb, void *owner, int tag)
{
	size_t total = 0, done = 0, off = 0, skip, take;
	int r;

	for (unsigned i = 0; i < n; i++)
		total += bufs[i].len;
	if (*queued == 0) {
		r = uv_try_write(s, bufs, n);
		if (r >= 0)
			done = (size_t)r;
		else if (r != UV_EAGAIN)
			return r;
	}
	if (done == total)
		return (int)done;
	struct net_write *w = xmalloc(sizeof(*w) + total - done);
	w->owner = owner;
	w->tag = tag;
	skip = done;
	for (unsigned i = 0; i < n; i++) {
		if (skip >= bufs[i].len) {
			skip -= bufs[i].len;
			continue;
		}
		take = bufs[i].len - skip;
		memcpy(w->data + off, bufs[i].base + skip, take);
		off += take;
		skip = 0;
	}
	uv_buf_t b = uv_buf_init(w->data, (unsigned)(total - done));
	if ((r = uv_write(&w->req, s, &b, 1, cb)) < 0) {
		free(w);
		return r;
	}
	(*queued)++;
	return (int)done;
}
