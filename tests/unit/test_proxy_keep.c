/* test_proxy_keep.c — the server's copies of the proxy's listening sockets
 * (proxy_keep.c) over the handoff protocol (proxy_handoff.c): a fetch from a
 * stand-in proxy on handoff.sock (more sockets than one message carries),
 * a connection to a port whose proxy closed its socket waiting in the
 * backlog until a new proxy takes the copy from keeper.sock, and a drop
 * letting the port go. Real sockets on loopback, one libuv loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy_handoff.h"
#include "proxy_keep.h"
#include "util.h"

#define NSOCKS	70		/* past one message of 64 */

struct socks {
	int fd[NSOCKS];
	int port[NSOCKS];
	size_t n;
};

static int
listen_loopback(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void
socks_each(void *ctx, proxy_listen_fn fn, void *arg)
{
	struct socks *s = ctx;

	for (size_t i = 0; i < s->n; i++)
		fn(arg, "HTTP", "127.0.0.1", s->port[i], s->fd[i]);
}

static void
socks_take(void *arg, const char *proto, const char *address, int port, int fd)
{
	struct socks *s = arg;

	assert_string_equal(proto, "HTTP");
	assert_string_equal(address, "127.0.0.1");
	assert_true(s->n < NSOCKS);
	s->port[s->n] = port;
	s->fd[s->n++] = fd;
}

/* Runs the loop until fd is readable (at most ~5 s). */
static void
run_until_readable(uv_loop_t *loop, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (int i = 0; i < 5000 && poll(&p, 1, 0) == 0; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_true(p.revents & POLLIN);
}

/* A new proxy: takes whatever keeper.sock hands over, answers "ready". */
static void
take_from_keeper(uv_loop_t *loop, const char *path, struct socks *got)
{
	int fd = proxy_unix_connect(path, true);
	int rc;

	assert_true(fd >= 0);
	got->n = 0;
	run_until_readable(loop, fd);
	while ((rc = proxy_handoff_recv_one(fd, socks_take, got)) == 1 || rc == -EAGAIN)
		if (rc == -EAGAIN)
			run_until_readable(loop, fd);
	assert_int_equal(rc, 0);
	assert_int_equal(proxy_handoff_note(fd, "{\"ready\":true}"), 0);
	close(fd);
	uv_run(loop, UV_RUN_NOWAIT);
}

static int
connect_port(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? fd : -errno;
}

static void
test_kept_sockets_outlive_the_proxy_and_go_to_the_next(void **state)
{
	char dir[] = "/tmp/v6-keep-XXXXXX", *ho_path, answer[64];
	struct socks proxy = { .n = 0 }, got = { .n = 0 };
	struct proxy_keep *k = NULL;
	uv_loop_t loop;
	int ho, conn, c, a, fd;
	ssize_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	uv_loop_init(&loop);
	for (size_t i = 0; i < NSOCKS; i++)
		proxy.fd[proxy.n++] = listen_loopback(&proxy.port[i]);
	ho_path = xasprintf("%s/handoff.sock", dir);
	assert_true((ho = proxy_unix_listen(ho_path, SOCK_SEQPACKET)) >= 0);
	assert_int_equal(proxy_keep_start(&loop, dir, &k), 0);

	/* the proxy applied a change of listeners: the keeper fetches copies */
	proxy_keep_refresh(k);
	run_until_readable(&loop, ho);
	assert_true((conn = accept4(ho, NULL, NULL, SOCK_CLOEXEC)) >= 0);
	assert_int_equal(proxy_handoff_send_each(conn, socks_each, &proxy), 0);
	run_until_readable(&loop, conn);
	n = recv(conn, answer, sizeof(answer) - 1, 0);
	assert_true(n > 0);
	answer[n] = '\0';
	assert_non_null(strstr(answer, "kept"));
	close(conn);

	/* kill -9: the proxy's sockets close, the copies keep the ports */
	for (size_t i = 0; i < proxy.n; i++)
		close(proxy.fd[i]);
	c = connect_port(proxy.port[NSOCKS - 1]);
	assert_true(c >= 0);		/* waits in the backlog, not refused */
	assert_int_equal(send(c, "GET /", 5, MSG_NOSIGNAL), 5);

	/* the next proxy takes the copies and accepts what waited */
	take_from_keeper(&loop, proxy_keep_path(k), &got);
	assert_int_equal(got.n, NSOCKS);
	for (size_t i = 0; i < got.n; i++)
		assert_int_equal(got.port[i], proxy.port[i]);
	assert_true((a = accept4(got.fd[NSOCKS - 1], NULL, NULL, SOCK_CLOEXEC)) >= 0);
	assert_int_equal(recv(a, answer, sizeof(answer), 0), 5);
	close(a);
	close(c);

	/* a change of listeners is coming: the copies let the ports go */
	proxy_keep_drop(k);
	for (size_t i = 0; i < got.n; i++)
		close(got.fd[i]);
	assert_int_equal(connect_port(got.port[0]), -ECONNREFUSED);
	take_from_keeper(&loop, proxy_keep_path(k), &got);
	assert_int_equal(got.n, 0);

	proxy_keep_stop(k);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	close(ho);
	unlink(ho_path);
	assert_int_equal(rmdir(dir), 0);	/* keeper.sock removed */
	free(ho_path);
	fd = connect_port(proxy.port[1]);
	assert_int_equal(fd, -ECONNREFUSED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kept_sockets_outlive_the_proxy_and_go_to_the_next),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
