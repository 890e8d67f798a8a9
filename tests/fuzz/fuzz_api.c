/* fuzz_api.c — libFuzzer target for the API server's request path: the real
 * api_server.c (routing a path to a kind, namespace, name and subresource,
 * the UTF-8 gate, query options, selectors, lists, gets, watches, dry-run
 * writes, discovery, Status rendering) over http.c on loopback, with a real
 * store in a temporary directory seeded with a few objects.
 * Build and run: tests/fuzz/Makefile, docs/fuzzing.md.
 *
 * Input: byte 0 picks the method (GET, HEAD, DELETE, PUT, PATCH, POST; bits
 * 3-6 == 1 adds ?watch=true, read for 50 ms, then the client hangs up); the bytes up to the first '\n' are the request target,
 * where every byte a request line cannot hold (controls, space, DEL, 0x80+)
 * is sent percent-encoded, so the server decodes arbitrary bytes; the rest
 * is the body. Writes always carry dryRun=All so the store stays the same.
 * The API server's loop runs in a second thread; the fuzzer is its client.
 *
 * Oracle besides the sanitizers: every answer is an HTTP/1.1 response with a
 * status below 500; a JSON answer parses, and an error is a Kubernetes
 * Status whose code is the HTTP status. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "api.h"
#include "log.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RESP (1 << 20)

static int port;
static char store_dir[] = "/tmp/fuzz-api-XXXXXX";

/* The store's directory goes with the process (libFuzzer ends by exit()). */
static void
remove_store_dir(void)
{
	util_remove_tree(store_dir);
}

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_api: %s: %.2000s\n", what, detail);
	abort();
}

static void
seed(struct api *api, const char *kind, const char *api_version, const char *ns,
    const char *name, const char *label)
{
	const struct kind *k = kind_find_gvk(api_version, kind);
	struct api_error err = { 0 };
	json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", api_version, "kind", kind,
	    "metadata", "name", name);
	if (label)
		json_object_set_new(json_object_get(o, "metadata"), "labels",
		    json_pack("{s:s}", "app", label));
	if (strcmp(kind, "Pod") == 0)
		json_object_set_new(o, "spec", json_pack("{s:s, s:[{s:s, s:s}]}", "nodeName",
		    "n1", "containers", "name", "c", "image", "busybox"));
	if (strcmp(kind, "Deployment") == 0)
		json_object_set_new(o, "spec", json_pack("{s:{s:{s:s}}, s:{s:{s:{s:s}}, "
		    "s:{s:[{s:s, s:s}]}}}", "selector", "matchLabels", "app", label,
		    "template", "metadata", "labels", "app", label, "spec", "containers",
		    "name", "c", "image", "busybox"));
	if (api_create(api, k, ns, o, 0, NULL, &err) < 0)
		die("seeding", err.message);
	api_error_clear(&err);
}

static void *
serve(void *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	return NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static uv_loop_t loop;
	static struct store *st;
	static struct api *api;
	static pthread_t thread;
	log_set_level(LOG_ERROR);
	if (!mkdtemp(store_dir) || store_open(store_dir, &st) < 0)
		die("store", store_dir);
	atexit(remove_store_dir);
	uv_loop_init(&loop);
	struct api_config ac = { .listen_host = "127.0.0.1", .listen_port = 0,
		.max_body_bytes = 65536 };
	if (api_start(&loop, st, &ac, &api) < 0)
		die("api_start", "127.0.0.1:0");
	seed(api, "Namespace", "v1", "", "default", NULL);
	seed(api, "ConfigMap", "v1", "default", "web", "web");
	seed(api, "ConfigMap", "v1", "default", "db", "db");
	seed(api, "Pod", "v1", "default", "web-1", "web");
	seed(api, "Deployment", "apps/v1", "default", "web", "web");
	api_flush(api);
	port = api_port(api);
	pthread_create(&thread, NULL, serve, &loop);
	return 0;
}

static bool
is_watch(uint8_t b)
{
	return (b & 0x78) == 0x08;
}

/* The request: method, the target with unsafe bytes escaped, dryRun on writes. */
static char *
build_request(const uint8_t *data, size_t size, size_t *len)
{
	static const char *const methods[] = { "GET", "HEAD", "DELETE", "PUT", "PATCH",
		"POST", "GET", "GET" };
	const char *m = methods[data[0] & 7];
	const uint8_t *p = data + 1, *end = data + size;
	const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
	const uint8_t *tend = nl ? nl : end;
	struct buf t = BUF_INIT;
	for (; p < tend; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == '#')
			buf_printf(&t, "%%%02X", *p);
		else
			buf_putc(&t, (char)*p);
	}
	if (t.len == 0 || t.data[0] != '/')
		buf_puts(&t, "/");
	bool write = strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
	const char *sep = memchr(t.data, '?', t.len) ? "&" : "?";
	if (write)
		buf_printf(&t, "%sdryRun=All", sep), sep = "&";
	if (is_watch(data[0]))
		buf_printf(&t, "%swatch=true&timeoutSeconds=1", sep);
	const uint8_t *body = nl ? nl + 1 : end;
	size_t blen = (size_t)(end - body);
	struct buf r = BUF_INIT;
	buf_printf(&r, "%s %.*s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	    "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", m, (int)t.len, t.data,
	    strcmp(m, "PATCH") == 0 ? "application/merge-patch+json" : "application/json",
	    blen);
	buf_append(&r, body, blen);
	buf_free(&t);
	*len = r.len;
	return buf_steal(&r);
}

static void
check_response(const char *req, char *resp, size_t n, bool head)
{
	int status;
	if (n < 12 || sscanf(resp, "HTTP/1.1 %3d ", &status) != 1)
		die("not an HTTP/1.1 response", req);
	if (status >= 500)
		die("5xx answer", resp);
	char *eoh = strstr(resp, "\r\n\r\n");
	if (!eoh)
		die("no end of head", resp);
	*eoh = '\0';
	bool json = strstr(resp, "Content-Type: application/json") != NULL;
	bool chunked = strstr(resp, "Transfer-Encoding: chunked") != NULL;
	char *body = eoh + 4;
	size_t blen = n - (size_t)(body - resp);
	if (!json || chunked || head || status == 204 || status == 304)
		return;
	json_error_t e;
	json_t *j = json_loadb(body, blen, 0, &e);
	if (!j)
		die("JSON answer does not parse", req);
	if (status >= 400 && (!json_is_string(json_object_get(j, "kind")) ||
	    strcmp(json_string_value(json_object_get(j, "kind")), "Status") != 0 ||
	    json_integer_value(json_object_get(j, "code")) != status))
		die("error answer is not a Status with its code", req);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	size_t len;
	char *req = build_request(data, size, &len);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = is_watch(data[0]) ? 0 : 5,
		.tv_usec = is_watch(data[0]) ? 50000 : 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	/* libFuzzer's timers interrupt system calls: EINTR means again. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		/* an interrupted connect goes on in the background: wait for it */
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = errno, rc;
		socklen_t elen = sizeof err;
		while (err == EINTR && (rc = poll(&pfd, 1, 5000)) != 1)
			if (rc == 0 || errno != EINTR)
				die("connect", "no answer");
		if (err == EINTR && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 &&
		    err == 0)
			err = 0;
		if (err)
			die("connect", strerror(err));
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* the server may answer and close before the body */
		off += (size_t)w;
	}
	char *resp = xmalloc(MAX_RESP + 1);
	size_t n = 0;
	for (ssize_t r; n < MAX_RESP;) {
		r = recv(fd, resp + n, MAX_RESP - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	resp[n] = '\0';
	close(fd);
	if (n == 0 && is_watch(data[0]))
		n = 0;	/* a watch may say nothing within 50 ms */
	else
		check_response(req, resp, n, data[0] % 8 == 1);
	free(resp);
	free(req);
	return 0;
}
