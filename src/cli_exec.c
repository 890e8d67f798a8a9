/* cli_exec.c — `v6 exec POD [-c C] [-i] -- CMD ARGS`: POST
 * .../pods/NAME/exec?container=C&command=CMD&command=ARG...[&stdin=true]
 * with stdin (read to its end) as the body, then reads V6's exec framing
 * (node_exec.c: [channel][4-byte length][payload]; 1 stdout, 2 stderr,
 * 3 {"exitCode": N}) and exits with the command's exit code. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct exec_rx {
	CURL *h;
	long status;
	struct buf in;			/* bytes not yet a whole frame */
	struct buf err;			/* body of a failed response */
	int exit_code;			/* -1 until the exit frame */
};

/* Hands out the whole frames of rx->in. */
static void
frames(struct exec_rx *rx)
{
	size_t off = 0;
	const unsigned char *p = (const unsigned char *)rx->in.data;
	while (rx->in.len - off >= 5) {
		size_t len = (size_t)p[off + 1] << 24 | (size_t)p[off + 2] << 16 |
		    (size_t)p[off + 3] << 8 | p[off + 4];
		if (rx->in.len - off - 5 < len)
			break;
		const char *data = rx->in.data + off + 5;
		if (p[off] == 1 || p[off] == 2) {
			FILE *f = p[off] == 1 ? stdout : stderr;
			fwrite(data, 1, len, f);
			fflush(f);
		} else if (p[off] == 3) {
			char *text = xstrndup(data, len);
			json_t *j = json_loads(text, 0, NULL);
			rx->exit_code = (int)json_integer_value(json_object_get(j, "exitCode"));
			json_decref(j);
			free(text);
		}
		off += 5 + len;
	}
	memmove(rx->in.data, rx->in.data + off, rx->in.len - off);
	rx->in.len -= off;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct exec_rx *rx = arg;
	size_t len = size * n;
	if (rx->status == 0)
		curl_easy_getinfo(rx->h, CURLINFO_RESPONSE_CODE, &rx->status);
	if (rx->status >= 300) {
		buf_append(&rx->err, p, len);
		return len;
	}
	buf_append(&rx->in, p, len);
	frames(rx);
	return len;
}

static char *
exec_path(const struct cli_opts *o, const char *pod)
{
	struct buf q = BUF_INIT;
	if (o->container)
		buf_printf(&q, "container=%s&", o->container);
	for (size_t i = 1; i < o->nargs; i++) {
		char *esc = curl_easy_escape(NULL, o->args[i], 0);
		buf_printf(&q, "command=%s&", esc);
		curl_free(esc);
	}
	buf_printf(&q, "stdin=%s", o->stdin_ ? "true" : "false");
	char *path = cli_path(kind_find_gvk("v1", "Pod"), cli_ns(o), pod, NULL);
	char *full = xasprintf("%s/exec?%s", path, q.data);
	free(path);
	buf_free(&q);
	return full;
}

int
cli_exec(struct cli_opts *o)
{
	if (o->nargs < 2)
		return cli_err("v6 exec needs a pod and a command: v6 exec POD -- COMMAND [ARGS...]");
	const char *pod = o->args[0];
	if (strncmp(pod, "pod/", 4) == 0 || strncmp(pod, "pods/", 5) == 0)
		pod = strchr(pod, '/') + 1;
	struct buf input = BUF_INIT;
	if (o->stdin_) {
		char chunk[65536];
		size_t n;
		while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
			buf_append(&input, chunk, n);
	}
	char *path = exec_path(o, pod);
	struct exec_rx rx = { .exit_code = -1 };
	rx.h = curl_easy_init();
	BUG_ON(rx.h == NULL);
	struct curl_slist *hdrs = cli_curl_prepare(rx.h, path,
	    curl_slist_append(NULL, "Content-Type: application/octet-stream"));
	curl_easy_setopt(rx.h, CURLOPT_POST, 1L);
	curl_easy_setopt(rx.h, CURLOPT_POSTFIELDS, input.data ? input.data : "");
	curl_easy_setopt(rx.h, CURLOPT_POSTFIELDSIZE, (long)input.len);
	curl_easy_setopt(rx.h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(rx.h, CURLOPT_WRITEDATA, &rx);
	CURLcode res = curl_easy_perform(rx.h);
	int rc;
	if (res != CURLE_OK) {
		cli_transport_error(res, "");
		rc = 1;
	} else if (rx.status >= 300 || rx.status == 0) {
		curl_easy_getinfo(rx.h, CURLINFO_RESPONSE_CODE, &rx.status);
		struct cli_resp r = { rx.status, NULL, rx.err.data ? rx.err.data : (char *)"" };
		r.body = json_loads(r.raw, 0, NULL);
		cli_print_error(&r, NULL);
		json_decref(r.body);
		rc = 1;
	} else if (rx.exit_code < 0) {
		fprintf(stderr, "error: the exec stream ended before the command's exit status\n");
		rc = 1;
	} else {
		rc = rx.exit_code > 255 ? 255 : rx.exit_code;
	}
	curl_easy_cleanup(rx.h);
	curl_slist_free_all(hdrs);
	buf_free(&rx.in);
	buf_free(&rx.err);
	buf_free(&input);
	free(path);
	return rc;
}
