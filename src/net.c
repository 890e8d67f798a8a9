/* net.c — libuv stream helpers shared by the HTTP server and the proxy
 * (see net.h). */
#include "net.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

void
net_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	b->base = xmalloc(hint);
	b->len = hint;
}

/* uv_try_write for a TCP stream with nothing queued, without the VFS:
 * write(2) and writev(2) pass through vfs_write (fdget_pos, permission and
 * fsnotify hooks) before reaching the socket; send(2) and sendmsg(2) go to
 * it directly, as HAProxy's sendto does. The proxy writes twice per request,
 * so this is on its hottest path. A socket still connecting answers EAGAIN
 * (the caller then queues behind libuv's connect, as before). */
static int
tcp_try_send(uv_stream_t *s, const uv_buf_t *bufs, unsigned n)
{
	uv_os_fd_t fd;
	ssize_t r;

	if (uv_fileno((uv_handle_t *)s, &fd) < 0 ||
	    uv_stream_get_write_queue_size(s) != 0)
		return UV_EAGAIN;
	if (n == 1) {
		r = send(fd, bufs[0].base, bufs[0].len, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else {
		struct msghdr m = { .msg_iov = (struct iovec *)bufs,
		    .msg_iovlen = n };
		r = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (r >= 0)
		return (int)r;
	return errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
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
		r = s->type == UV_TCP ? tcp_try_send(s, bufs, n) :
		    uv_try_write(s, bufs, n);
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
