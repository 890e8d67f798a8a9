/* proxy_handoff.c — passing listening sockets from a running `v6 proxy` to
 * its replacement (proxy_handoff.h). Each message on the SOCK_SEQPACKET
 * connection is one JSON object {"listeners":[{"proto","address","port"}],
 * "more":bool} carrying the same number of descriptors (SCM_RIGHTS), in
 * order; the new proxy answers one "ready" message once it serves. Blocking
 * and small: a few hundred bytes per listener. Called by proxy_main.c. */
#include "proxy_handoff.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define HO_BATCH	64		/* descriptors per message (SCM_MAX_FD is 253) */
#define HO_MSG_MAX	(64 * 1024)
#define HO_TIMEOUT_S	10		/* a peer that stops answering */

static int
unix_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int
proxy_unix_listen(const char *path, int type)
{
	struct sockaddr_un sa;
	int fd, rc;
	mode_t old;

	if ((rc = unix_addr(path, &sa)) < 0)
		return rc;
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0 ? -errno : 0;
	umask(old);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

static void
set_timeouts(int sock)
{
	struct timeval tv = { .tv_sec = HO_TIMEOUT_S };

	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* One message: text and n descriptors. */
static int
send_batch(int sock, const char *text, const int *fds, size_t n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_BATCH)];
	struct iovec iov = { .iov_base = (void *)text, .iov_len = strlen(text) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (n > 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	while (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

struct batch {
	int sock;
	int rc;
	json_t *list;
	int fds[HO_BATCH];
	size_t n;
};

static int
batch_flush(struct batch *b, bool more)
{
	json_t *msg = json_pack("{s:O, s:b}", "listeners", b->list, "more", more);
	char *text = json_dumps(msg, JSON_COMPACT);
	int rc = strlen(text) < HO_MSG_MAX ? send_batch(b->sock, text, b->fds, b->n) : -EMSGSIZE;

	free(text);
	json_decref(msg);
	json_array_clear(b->list);
	b->n = 0;
	return rc;
}

static void
batch_add(void *arg, const char *proto, const char *address, int port, int fd)
{
	struct batch *b = arg;

	if (b->rc < 0)
		return;
	json_array_append_new(b->list, json_pack("{s:s, s:s, s:i}", "proto", proto,
	    "address", address, "port", port));
	b->fds[b->n++] = fd;
	if (b->n == HO_BATCH)
		b->rc = batch_flush(b, true);
}

int
proxy_handoff_send_each(int sock, proxy_listen_each_fn each, void *ctx)
{
	struct batch b = { .sock = sock, .list = json_array() };
	int fl = fcntl(sock, F_GETFL);

	fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	set_timeouts(sock);
	each(ctx, batch_add, &b);
	if (b.rc == 0)
		b.rc = batch_flush(&b, false);
	json_decref(b.list);
	fcntl(sock, F_SETFL, fl);
	return b.rc;
}

struct engine_src {
	struct proxy_engine *e;
	int admin_fd;
};

static void
engine_each(void *ctx, proxy_listen_fn fn, void *arg)
{
	struct engine_src *src = ctx;

	if (src->admin_fd >= 0)
		fn(arg, "ADMIN", "", 0, src->admin_fd);
	proxy_engine_listen_fds(src->e, fn, arg);
}

int
proxy_handoff_send(struct proxy_engine *e, int sock, int admin_fd)
{
	struct engine_src src = { .e = e, .admin_fd = admin_fd };

	return proxy_handoff_send_each(sock, engine_each, &src);
}

struct engine_dst {
	struct proxy_engine *e;
	int *admin_fd;
};

static void
inherit(void *arg, const char *proto, const char *address, int port, int fd)
{
	struct engine_dst *dst = arg;

	if (strcmp(proto, "ADMIN") == 0 && *dst->admin_fd < 0)
		*dst->admin_fd = fd;
	else if (!proxy_engine_inherit(dst->e, proto, address, port, fd))
		close(fd);
}

int
proxy_handoff_recv_one(int sock, proxy_listen_fn fn, void *arg)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_BATCH)];
	char *text = xmalloc(HO_MSG_MAX);
	struct iovec iov = { .iov_base = text, .iov_len = HO_MSG_MAX - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
		.msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fds[HO_BATCH];
	size_t nfds = 0, i;
	const json_t *list, *it;
	json_t *msg;
	ssize_t n;
	int more;

	while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR) {
			int rc = errno == EWOULDBLOCK ? -EAGAIN : -errno;
			free(text);
			return rc;
		}
	if (n == 0) {
		free(text);
		return -ECONNRESET;
	}
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
		}
	text[n] = '\0';
	msg = json_loads(text, 0, NULL);
	free(text);
	list = json_object_get(msg, "listeners");
	more = json_is_true(json_object_get(msg, "more"));
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || json_array_size(list) != nfds) {
		for (i = 0; i < nfds; i++)
			close(fds[i]);
		json_decref(msg);
		return -EPROTO;
	}
	json_array_foreach(list, i, it) {
		const char *proto = json_string_value(json_object_get(it, "proto"));
		const char *address = json_string_value(json_object_get(it, "address"));
		int port = (int)json_integer_value(json_object_get(it, "port"));

		if (proto && address)
			fn(arg, proto, address, port, fds[i]);
		else
			close(fds[i]);
	}
	json_decref(msg);
	return more;
}

int
proxy_unix_connect(const char *path, bool nonblock)
{
	struct sockaddr_un sa;
	int fd, rc;

	if ((rc = unix_addr(path, &sa)) < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		return -errno;
	if (!nonblock)
		set_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* A peer busy with another one (the server fetching the sockets, see
 * proxy_keep.c) hangs up before its first message: try again. */
#define HO_BUSY_TRIES	50
#define HO_BUSY_WAIT_US	10000

int
proxy_handoff_recv(struct proxy_engine *e, const char *path, int *admin_fd, int *sock)
{
	struct engine_dst dst = { .e = e, .admin_fd = admin_fd };
	int fd, rc;

	*admin_fd = *sock = -1;
	for (int tries = 0; ; tries++) {
		if ((fd = proxy_unix_connect(path, false)) < 0)
			return fd;
		rc = proxy_handoff_recv_one(fd, inherit, &dst);
		if (rc != -ECONNRESET || tries + 1 == HO_BUSY_TRIES)
			break;
		close(fd);
		usleep(HO_BUSY_WAIT_US);
	}
	while (rc > 0)
		rc = proxy_handoff_recv_one(fd, inherit, &dst);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*sock = fd;
	return 0;
}

int
proxy_handoff_note(int sock, const char *text)
{
	return send_batch(sock, text, NULL, 0);
}

void
proxy_handoff_ready(struct proxy_engine *e, int sock)
{
	proxy_engine_inherit_end(e);
	if (sock < 0)
		return;
	int rc = send_batch(sock, "{\"ready\":true}", NULL, 0);
	if (rc < 0)
		log_warn("proxy", "telling the old proxy to drain: %s", strerror(-rc));
	close(sock);
}
