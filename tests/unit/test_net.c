/* test_net.c — net_send on real loopback TCP streams: two buffers go to the
 * kernel in one call and arrive in order, a peer that reset the connection
 * is a negative errno (never SIGPIPE, whatever the process's disposition),
 * and what the kernel does not take is queued and written later. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "net.h"
#include "util.h"

#define BIG	(8u << 20)	/* more than any loopback socket buffers */

/* A connected pair: client is a libuv stream, peer a plain blocking fd. */
struct fx {
	uv_loop_t loop;
	uv_tcp_t client;
	int peer;
	unsigned queued;
	int done;		/* write callbacks run */
};

static int
setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof *fx);
	struct sockaddr_in a = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(l >= 0 && c >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, al), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, al), 0);
	fx->peer = accept(l, NULL, NULL);
	assert_true(fx->peer >= 0);
	close(l);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(uv_tcp_init(&fx->loop, &fx->client), 0);
	assert_int_equal(uv_tcp_open(&fx->client, c), 0);
	fx->client.data = fx;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->peer >= 0)
		close(fx->peer);
	uv_close((uv_handle_t *)&fx->client, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	free(fx);
	return 0;
}

static void
on_written(uv_write_t *req, int status)
{
	struct net_write *w = (struct net_write *)req;
	struct fx *fx = w->owner;

	assert_int_equal(status, 0);
	fx->queued--;
	fx->done++;
	free(w);
}

static void
test_two_buffers_are_written_at_once_in_order(void **state)
{
	struct fx *fx = *state;
	char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", body[] = "ok\n";
	uv_buf_t b[2] = { uv_buf_init(head, sizeof head - 1), uv_buf_init(body, 3) };
	char got[128];
	size_t want = sizeof head - 1 + 3;
	ssize_t n = 0, r;

	assert_int_equal(net_send((uv_stream_t *)&fx->client, b, 2, &fx->queued,
	    on_written, fx, 0), (int)want);
	assert_int_equal(fx->queued, 0);
	while ((size_t)n < want && (r = read(fx->peer, got + n, sizeof got - (size_t)n)) > 0)
		n += r;
	assert_int_equal(n, (ssize_t)want);
	assert_memory_equal(got, head, sizeof head - 1);
	assert_memory_equal(got + sizeof head - 1, "ok\n", 3);
}

/* The proxy writes to clients that may have gone: the write must fail with
 * an errno, not kill the process, even where SIGPIPE is not ignored. */
static void
test_reset_peer_is_an_error_not_sigpipe(void **state)
{
	struct fx *fx = *state;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);
	char x[] = "GET / HTTP/1.1\r\n\r\n";
	uv_buf_t b = uv_buf_init(x, sizeof x - 1);
	int r1, r2;

	assert_int_equal(setsockopt(fx->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(fx->peer);	/* an RST to the client */
	fx->peer = -1;
	usleep(10000);
	/* the first write reports the reset, the next one writes to a dead
	 * socket: the case where write(2) raises SIGPIPE */
	r1 = net_send((uv_stream_t *)&fx->client, &b, 1, &fx->queued, on_written, fx, 0);
	r2 = net_send((uv_stream_t *)&fx->client, &b, 1, &fx->queued, on_written, fx, 0);
	signal(SIGPIPE, old);
	assert_int_equal(r1, UV_ECONNRESET);
	assert_int_equal(r2, UV_EPIPE);
	assert_int_equal(fx->queued, 0);
}

static void
test_what_the_kernel_refuses_is_queued_and_sent_later(void **state)
{
	struct fx *fx = *state;
	char *big = xmalloc(BIG), *got = xmalloc(BIG);
	uv_buf_t b = uv_buf_init(big, BIG);
	size_t n = 0;
	ssize_t r;
	int sent;
	uint64_t deadline = uv_hrtime() + 10 * (uint64_t)1000000000;

	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)(i * 31 + 7);
	sent = net_send((uv_stream_t *)&fx->client, &b, 1, &fx->queued, on_written, fx, 0);
	assert_true(sent >= 0 && (size_t)sent < BIG);
	assert_int_equal(fx->queued, 1);
	memset(big, 0, BIG);	/* the caller's memory is free once net_send returns */
	while (n < BIG) {
		assert_true(uv_hrtime() < deadline);
		uv_run(&fx->loop, UV_RUN_NOWAIT);
		r = recv(fx->peer, got + n, BIG - n, MSG_DONTWAIT);
		if (r > 0)
			n += (size_t)r;
		else
			assert_true(r < 0);
	}
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(fx->done, 1);
	assert_int_equal(fx->queued, 0);
	for (size_t i = 0; i < BIG; i++)
		if (got[i] != (char)(i * 31 + 7))
			fail_msg("byte %zu differs", i);
	free(big);
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_buffers_are_written_at_once_in_order,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_peer_is_an_error_not_sigpipe,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_what_the_kernel_refuses_is_queued_and_sent_later,
		    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
