/* test_tls.c — http.c's TLS over a real loopback socket with certificates
 * pki.c made in a temporary directory: the client certificate's CN and O
 * reach the handler, a client without one is served without identity, a
 * certificate of another CA and an oversized chain fail the handshake,
 * TLS 1.1 is refused, a slow handshake is closed at the header timeout
 * while others are served, large bodies cross both ways, plain HTTP gets a
 * plain 400, and pki_ensure reuses, renews and adds SANs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "pki.h"
#include "util.h"

#define BIG (3u << 20)

struct fx {
	uv_loop_t loop;
	uv_async_t done;
	struct http_server *srv;
	pthread_t thread;
	void (*client)(struct fx *);
	char dir[64], other[64];
	int port;
	int ok;
};

static char tmpl[] = "/tmp/v6-tls-XXXXXX";

/* ---- server side: echoes the transport identity and the body length ---- */

/* /later: answered from a timer, so that pipelined requests pile up behind
 * it (the read buffer fills, reading stops, OpenSSL keeps the rest). */
static void
on_timer_closed(uv_handle_t *h)
{
	free(h);
}

static void
on_later(uv_timer_t *t)
{
	struct http_req *req = t->data;

	http_respond(req, 200, "text/plain", "later", 5);
	uv_close((uv_handle_t *)t, on_timer_closed);
}

static void
handler(struct http_req *req, void *arg)
{
	struct buf b = BUF_INIT;
	struct fx *fx = arg;

	if (strcmp(req->path, "/later") == 0) {
		uv_timer_t *t = xmalloc(sizeof(*t));
		uv_timer_init(&fx->loop, t);
		t->data = req;
		uv_timer_start(t, on_later, 1, 0);
		return;
	}
	if (strcmp(req->path, "/big") == 0) {
		char *body = xmalloc(BIG);
		memset(body, 'x', BIG);
		http_respond(req, 200, "text/plain", body, BIG);
		free(body);
		return;
	}
	buf_printf(&b, "tls=%d cn=%s body=%zu", req->tls, req->client_cn ? req->client_cn : "-",
	    req->body_len);
	for (size_t i = 0; i < req->client_norgs; i++)
		buf_printf(&b, " o=%s", req->client_orgs[i]);
	http_respond(req, 200, "text/plain", b.data, b.len);
	buf_free(&b);
}

static void *
client_main(void *arg)
{
	struct fx *fx = arg;

	fx->client(fx);
	uv_async_send(&fx->done);
	return NULL;
}

static void
on_done(uv_async_t *a)
{
	struct fx *fx = a->data;

	http_server_stop(fx->srv);
	uv_close((uv_handle_t *)a, NULL);
}

static void
run(struct fx *fx, unsigned header_timeout_ms, void (*client)(struct fx *))
{
	char *err = NULL;
	struct pki_opts o = { .dir = fx->dir };
	SSL_CTX *ctx;
	struct http_config cfg = { .handler = handler, .handler_arg = fx,
		.header_timeout_ms = header_timeout_ms };

	assert_true(pki_ensure(&o, false, &err) >= 0);
	ctx = tls_server_ctx(fx->dir, &err);
	assert_non_null(ctx);
	cfg.tls_ctx = ctx;
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(http_server_start(&fx->loop, "127.0.0.1", 0, &cfg, &fx->srv), 0);
	SSL_CTX_free(ctx);	/* the server holds its own reference */
	fx->port = http_server_port(fx->srv);
	uv_async_init(&fx->loop, &fx->done, on_done);
	fx->done.data = fx;
	fx->client = client;
	assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	pthread_join(fx->thread, NULL);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
}

/* ---- client side (its own thread, blocking OpenSSL) -------------------- */

static int
tcp_connect(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A client context trusting dir's CA, presenting cert_dir's admin
 * certificate when cert_dir is not NULL. */
static SSL_CTX *
client_ctx(const char *dir, const char *cert_dir, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char path[128];

	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	SSL_CTX_load_verify_locations(ctx, path, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (max_version) {
		SSL_CTX_set_min_proto_version(ctx, max_version);
		SSL_CTX_set_max_proto_version(ctx, max_version);
		SSL_CTX_set_security_level(ctx, 0);
	}
	if (cert_dir) {
		snprintf(path, sizeof(path), "%s/admin.crt", cert_dir);
		SSL_CTX_use_certificate_chain_file(ctx, path);
		snprintf(path, sizeof(path), "%s/admin.key", cert_dir);
		SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
	}
	return ctx;
}

struct tconn {
	int fd;
	SSL *ssl;
};

/* Connects and completes the handshake (the server's verdict on our
 * certificate comes with its first answer in TLS 1.3). 0 or -1. */
static int
tconn_open(struct tconn *t, SSL_CTX *ctx, int port)
{
	t->ssl = NULL;
	if ((t->fd = tcp_connect(port)) < 0)
		return -1;
	t->ssl = SSL_new(ctx);
	SSL_set_fd(t->ssl, t->fd);
	SSL_set_tlsext_host_name(t->ssl, "localhost");
	SSL_set1_host(t->ssl, "localhost");
	return SSL_connect(t->ssl) == 1 ? 0 : -1;
}

static void
tconn_close(struct tconn *t)
{
	SSL_free(t->ssl);
	if (t->fd >= 0)
		close(t->fd);
	ERR_clear_error();
}

/* Sends req and reads until the response (Content-Length framed) is
 * complete; returns the body (static) or NULL. */
static const char *
tconn_roundtrip(struct tconn *t, const char *req, size_t reqlen, size_t *body_len)
{
	static char *buf;
	static size_t cap;
	size_t len = 0;
	char *hend, *cl;
	int n;

	if (SSL_write(t->ssl, req, (int)reqlen) != (int)reqlen)
		return NULL;
	if (buf == NULL) {
		cap = BIG + 4096;
		buf = xmalloc(cap + 1);
	}
	for (;;) {
		buf[len] = '\0';
		if ((hend = strstr(buf, "\r\n\r\n")) != NULL &&
		    (cl = strcasestr(buf, "Content-Length: ")) != NULL && cl < hend) {
			size_t want = (size_t)(hend + 4 - buf) + strtoul(cl + 16, NULL, 10);
			if (len >= want) {
				*body_len = want - (size_t)(hend + 4 - buf);
				return hend + 4;
			}
		}
		if (len == cap || (n = SSL_read(t->ssl, buf + len, (int)(cap - len))) <= 0)
			return NULL;
		len += (size_t)n;
	}
}

static const char *
get(struct tconn *t, const char *path)
{
	char req[256];
	size_t n;
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);

	return tconn_roundtrip(t, req, (size_t)len, &n);
}

/* ---- tests -------------------------------------------------------------- */

static void
c_identity(struct fx *fx)
{
	SSL_CTX *admin = client_ctx(fx->dir, fx->dir, 0), *anon = client_ctx(fx->dir, NULL, 0);
	struct tconn t;
	const char *b;

	/* two requests on one connection: keep-alive over TLS */
	if (tconn_open(&t, admin, fx->port) == 0 && (b = get(&t, "/a")) &&
	    strcmp(b, "tls=1 cn=v6-admin body=0 o=system:masters") == 0 &&
	    (b = get(&t, "/b")) && strcmp(b, "tls=1 cn=v6-admin body=0 o=system:masters") == 0)
		fx->ok |= 1;
	tconn_close(&t);
	if (tconn_open(&t, anon, fx->port) == 0 && (b = get(&t, "/a")) &&
	    strcmp(b, "tls=1 cn=- body=0") == 0)
		fx->ok |= 2;
	tconn_close(&t);
	SSL_CTX_free(admin);
	SSL_CTX_free(anon);
}

static void
test_client_certificate_identity_reaches_the_handler(void **state)
{
	struct fx *fx = *state;

	run(fx, 0, c_identity);
	assert_int_equal(fx->ok, 3);
}

static void
c_refused(struct fx *fx)
{
	char *err = NULL;
	struct pki_opts o = { .dir = fx->other };
	SSL_CTX *stranger, *old;
	struct tconn t;

	/* a certificate of another CA: the handshake fails (as Kubernetes') */
	if (pki_ensure(&o, false, &err) >= 0) {
		stranger = client_ctx(fx->dir, fx->other, 0);
		if (tconn_open(&t, stranger, fx->port) < 0 || get(&t, "/a") == NULL)
			fx->ok |= 1;
		tconn_close(&t);
		SSL_CTX_free(stranger);
	}
	/* TLS 1.1 is refused */
	old = client_ctx(fx->dir, NULL, TLS1_1_VERSION);
	if (tconn_open(&t, old, fx->port) < 0)
		fx->ok |= 2;
	tconn_close(&t);
	SSL_CTX_free(old);
	/* the server is fine afterwards */
	old = client_ctx(fx->dir, fx->dir, 0);
	if (tconn_open(&t, old, fx->port) == 0 && get(&t, "/a") != NULL)
		fx->ok |= 4;
	tconn_close(&t);
	SSL_CTX_free(old);
}

static void
test_foreign_certificate_and_old_tls_are_refused(void **state)
{
	struct fx *fx = *state;

	run(fx, 0, c_refused);
	assert_int_equal(fx->ok, 7);
}

/* A client certificate padded past the server's 16 KiB chain limit with a
 * long subjectAltName, signed by the right CA. */
static void
make_big_cert(struct fx *fx)
{
	char path[128];
	FILE *f;
	X509 *ca, *x = X509_new();
	EVP_PKEY *ca_key, *k = EVP_EC_gen("P-256");
	X509V3_CTX v3;
	struct buf san = BUF_INIT;

	snprintf(path, sizeof(path), "%s/ca.crt", fx->dir);
	f = fopen(path, "r");
	ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	snprintf(path, sizeof(path), "%s/ca.key", fx->dir);
	f = fopen(path, "r");
	ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	for (int i = 0; i < 1200; i++)
		buf_printf(&san, "%sDNS:host-%04d.example.com", i ? "," : "", i);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
	    (const unsigned char *)"big", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san.data);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	X509_sign(x, ca_key, EVP_sha256());
	snprintf(path, sizeof(path), "%s/admin.crt", fx->other);
	f = fopen(path, "w");
	PEM_write_X509(f, x);
	fclose(f);
	snprintf(path, sizeof(path), "%s/admin.key", fx->other);
	f = fopen(path, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	assert_true(i2d_X509(x, NULL) > 16 * 1024);
	buf_free(&san);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ca_key);
}

static void
c_big_cert(struct fx *fx)
{
	SSL_CTX *big = client_ctx(fx->dir, fx->other, 0), *ok = client_ctx(fx->dir, fx->dir, 0);
	struct tconn t;

	if (tconn_open(&t, big, fx->port) < 0 || get(&t, "/a") == NULL)
		fx->ok |= 1;
	tconn_close(&t);
	if (tconn_open(&t, ok, fx->port) == 0 && get(&t, "/a") != NULL)
		fx->ok |= 2;
	tconn_close(&t);
	SSL_CTX_free(big);
	SSL_CTX_free(ok);
}

static void
test_oversized_client_certificate_is_refused(void **state)
{
	struct fx *fx = *state;
	char *err = NULL;
	struct pki_opts o = { .dir = fx->dir };

	assert_true(pki_ensure(&o, false, &err) >= 0);
	mkdir(fx->other, 0700);
	make_big_cert(fx);
	run(fx, 0, c_big_cert);
	assert_int_equal(fx->ok, 3);
}

static void
c_slow(struct fx *fx)
{
	SSL_CTX *ctx = client_ctx(fx->dir, fx->dir, 0);
	struct tconn t;
	char byte;
	int slow = tcp_connect(fx->port), idle = tcp_connect(fx->port);

	/* half a record header, then nothing: a slowloris on the TLS port */
	send(slow, "\x16\x03", 2, MSG_NOSIGNAL);
	if (tconn_open(&t, ctx, fx->port) == 0 && get(&t, "/a") != NULL)
		fx->ok |= 1;	/* another client is served meanwhile */
	tconn_close(&t);
	/* both are closed by the header timeout (300 ms), long before 5 s */
	if (recv(slow, &byte, 1, 0) == 0)
		fx->ok |= 2;
	if (recv(idle, &byte, 1, 0) == 0)
		fx->ok |= 4;
	close(slow);
	close(idle);
	SSL_CTX_free(ctx);
}

static void
test_slow_handshake_is_closed_at_the_header_timeout(void **state)
{
	struct fx *fx = *state;

	run(fx, 300, c_slow);
	assert_int_equal(fx->ok, 7);
}

static void
c_big_bodies(struct fx *fx)
{
	SSL_CTX *ctx = client_ctx(fx->dir, fx->dir, 0);
	struct tconn t;
	size_t n, len = (2u << 20);
	char *req = xmalloc(len + 256), expect[64];
	int hl = sprintf(req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", len);
	const char *b;

	memset(req + hl, 'y', len);
	snprintf(expect, sizeof(expect), "tls=1 cn=v6-admin body=%zu o=system:masters", len);
	if (tconn_open(&t, ctx, fx->port) == 0) {
		if ((b = tconn_roundtrip(&t, req, (size_t)hl + len, &n)) && strcmp(b, expect) == 0)
			fx->ok |= 1;
		if ((b = tconn_roundtrip(&t, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", 30, &n)) &&
		    n == BIG && b[0] == 'x' && b[BIG - 1] == 'x')
			fx->ok |= 2;
	}
	tconn_close(&t);
	free(req);
	SSL_CTX_free(ctx);
}

static void
test_large_bodies_cross_tls_both_ways(void **state)
{
	struct fx *fx = *state;

	run(fx, 0, c_big_bodies);
	assert_int_equal(fx->ok, 3);
}

static void
c_pipelined(struct fx *fx)
{
	SSL_CTX *ctx = client_ctx(fx->dir, fx->dir, 0);
	static const char one[] = "GET /later HTTP/1.1\r\nHost: x\r\nX-Pad: "
	    "................................................................\r\n\r\n";
	enum { N = 300 };
	struct buf reqs = BUF_INIT, in = BUF_INIT;
	struct tconn t;
	char chunk[16384];
	int n, got = 0;

	for (int i = 0; i < N; i++)
		buf_puts(&reqs, one);
	/* 30 KiB of pipelined requests in one write: far past the 4 KiB read
	 * buffer while each waits for its answer */
	if (tconn_open(&t, ctx, fx->port) == 0 &&
	    SSL_write(t.ssl, reqs.data, (int)reqs.len) == (int)reqs.len) {
		while (got < N && (n = SSL_read(t.ssl, chunk, sizeof(chunk))) > 0) {
			buf_append(&in, chunk, (size_t)n);
			got = 0;
			for (char *p = in.data; (p = memmem(p, in.len - (size_t)(p - in.data),
			    "\r\n\r\nlater", 9)) != NULL; p += 9)
				got++;
		}
	}
	if (got == N)
		fx->ok = 1;
	tconn_close(&t);
	buf_free(&reqs);
	buf_free(&in);
	SSL_CTX_free(ctx);
}

static void
test_pipelined_requests_behind_a_slow_answer_all_get_theirs(void **state)
{
	struct fx *fx = *state;

	run(fx, 0, c_pipelined);
	assert_int_equal(fx->ok, 1);
}

static void
c_plain(struct fx *fx)
{
	int fd = tcp_connect(fx->port);
	char buf[512] = "";
	size_t len = 0;
	ssize_t n;

	send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, MSG_NOSIGNAL);
	while (len < sizeof(buf) - 1 && (n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.1 400", 12) == 0 &&
	    strstr(buf, "Client sent an HTTP request to an HTTPS server."))
		fx->ok = 1;
	close(fd);
}

static void
test_plain_http_on_the_tls_port_gets_a_plain_400(void **state)
{
	struct fx *fx = *state;

	run(fx, 0, c_plain);
	assert_int_equal(fx->ok, 1);
}

/* ---- pki ------------------------------------------------------------------ */

static void
test_pki_reuses_renews_and_adds_sans(void **state)
{
	struct fx *fx = *state;
	char *err = NULL, path[128];
	const char *sans[] = { "10.1.2.3", "api.example.com" };
	struct pki_opts o = { .dir = fx->dir };
	struct pki_info a, b;
	struct stat st;

	assert_int_equal(pki_ensure(&o, false, &err), 3);	/* CA, server, admin */
	assert_int_equal(stat(fx->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/server.key", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(pki_info_read(fx->dir, PKI_SERVER, &a), 0);
	assert_non_null(strstr(a.sans, "IP:127.0.0.1"));
	assert_non_null(strstr(a.sans, "DNS:localhost"));
	assert_int_equal(pki_ensure(&o, false, &err), 0);	/* all reused */
	assert_int_equal(pki_info_read(fx->dir, PKI_SERVER, &b), 0);
	assert_string_equal(a.serial, b.serial);
	o.sans = sans;		/* a new --listen address: a new serving certificate */
	o.nsans = 2;
	assert_int_equal(pki_ensure(&o, false, &err), 1);
	assert_int_equal(pki_info_read(fx->dir, PKI_SERVER, &b), 0);
	assert_string_not_equal(a.serial, b.serial);
	assert_non_null(strstr(b.sans, "IP:10.1.2.3"));
	assert_non_null(strstr(b.sans, "DNS:api.example.com"));
	assert_int_equal(pki_ensure(&o, true, &err), 2);	/* rotate: server + admin */
	/* a 9 s certificate is due once less than 3 s are left: not yet */
	o.lifetime_s = 9;
	assert_int_equal(pki_ensure(&o, true, &err), 2);
	assert_int_equal(pki_ensure(&o, false, &err), 0);
	assert_true(pki_renew_at(fx->dir) > time(NULL) + 4);
	assert_true(pki_renew_at(fx->dir) <= time(NULL) + 7);
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char *d = mkdtemp(strcpy(xmalloc(sizeof(tmpl)), tmpl));

	assert_non_null(d);
	snprintf(fx->dir, sizeof(fx->dir), "%s/pki", d);
	snprintf(fx->other, sizeof(fx->other), "%s/other", d);
	free(d);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	*strrchr(fx->dir, '/') = '\0';
	util_remove_tree(fx->dir);
	free(fx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_client_certificate_identity_reaches_the_handler,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_certificate_and_old_tls_are_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_client_certificate_is_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_handshake_is_closed_at_the_header_timeout,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_bodies_cross_tls_both_ways, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_pipelined_requests_behind_a_slow_answer_all_get_theirs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_http_on_the_tls_port_gets_a_plain_400,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_pki_reuses_renews_and_adds_sans, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
