/* cli_client.c — the CLI's HTTP client: one libcurl easy handle talking JSON
 * to the API server (Kubernetes REST paths), watch streams split into
 * events, and kubectl-style printing of Status errors. Used by every verb. */
#include "cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CURL *curl;
static struct cli_conn conn;
static char *auth_header;	/* "Authorization: Bearer ..." */

void
cli_client_init(struct cli_conn *c)
{
	size_t n = strlen(c->server);
	while (n > 0 && c->server[n - 1] == '/')
		n--;
	c->server[n] = '\0';
	conn = *c;
	memset(c, 0, sizeof(*c));
	if (conn.token)
		auth_header = xasprintf("Authorization: Bearer %s", conn.token);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "error: %s\n", curl_easy_strerror(CURLE_FAILED_INIT));
		exit(1);
	}
}

void
cli_client_close(void)
{
	if (curl)
		curl_easy_cleanup(curl);
	curl = NULL;
	curl_global_cleanup();
	cli_conn_free(&conn);
	free(auth_header);
	auth_header = NULL;
}

const char *
cli_server_url(void)
{
	return conn.server;
}

static void
set_blob(CURL *h, CURLoption opt, char *data, size_t len)
{
	struct curl_blob b = { .data = data, .len = len, .flags = CURL_BLOB_COPY };

	if (data)
		curl_easy_setopt(h, opt, &b);
}

struct curl_slist *
cli_curl_prepare(void *h, const char *path, struct curl_slist *hdrs)
{
	char *url = xasprintf("%s%s", conn.server, path);

	curl_easy_setopt(h, CURLOPT_URL, url);
	free(url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	set_blob(h, CURLOPT_CAINFO_BLOB, conn.ca, conn.ca_len);
	set_blob(h, CURLOPT_SSLCERT_BLOB, conn.cert, conn.cert_len);
	set_blob(h, CURLOPT_SSLKEY_BLOB, conn.key, conn.key_len);
	if (conn.skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	hdrs = curl_slist_append(hdrs, "User-Agent: v6/" V6_VERSION);
	if (auth_header)
		hdrs = curl_slist_append(hdrs, auth_header);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	return hdrs;
}

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	buf_append(arg, p, size * n);
	return size * n;
}

void
cli_transport_error(int rc, const char *errbuf)
{
	const char *why = rc == CURLE_COULDNT_CONNECT ? "Connection refused"
	    : errbuf[0] ? errbuf : curl_easy_strerror((CURLcode)rc);
	const char *hint = "is `v6 server` running? set --server, V6_SERVER or a kubeconfig";

	if (rc == CURLE_PEER_FAILED_VERIFICATION)
		hint = "the server's certificate is not signed by the CA in use: "
		    "certificate-authority-data must be the server's DATA/pki/ca.crt "
		    "(`v6 kubeconfig` writes it)";
	else if (strstr(why, "alert unknown ca") || strstr(why, "alert bad certificate") ||
	    strstr(why, "alert certificate"))
		hint = "the TLS handshake failed: the server refused the client certificate, "
		    "which must be signed by the server's CA (DATA/pki/ca.crt)";
	else if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_SSL_CERTPROBLEM)
		hint = "the TLS handshake failed: a client certificate or key that does not "
		    "load, or not a TLS port";
	fprintf(stderr, "error: cannot reach the v6 server at %s%s%s: %s (%s)\n", conn.server,
	    conn.source ? " from " : "", conn.source ? conn.source : "", why, hint);
}

static CURL *
handle(const char *method, const char *path, struct curl_slist **hdrs, const char *ctype,
    char *errbuf)
{
	if (curl == NULL)
		curl = curl_easy_init();
	BUG_ON(curl == NULL);
	curl_easy_reset(curl);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = '\0';
	*hdrs = curl_slist_append(NULL, "Accept: application/json");
	char *ct = xasprintf("Content-Type: %s", ctype ? ctype : "application/json");
	*hdrs = curl_slist_append(*hdrs, ct);
	free(ct);
	*hdrs = cli_curl_prepare(curl, path, *hdrs);
	return curl;
}

int
cli_http(const char *method, const char *path, const char *ctype, const json_t *body,
    struct cli_resp *out)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs;
	struct buf resp = BUF_INIT;
	char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
	CURL *c = handle(method, path, &hdrs, ctype, errbuf);
	memset(out, 0, sizeof *out);
	if (data) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	free(data);
	if (rc != CURLE_OK) {
		cli_transport_error(rc, errbuf);
		buf_free(&resp);
		return -EIO;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	out->raw = buf_steal(&resp);
	out->body = json_loads(out->raw, 0, NULL);
	return 0;
}

int
cli_get_json(const char *path, json_t **out)
{
	struct cli_resp r;
	int rc = cli_http("GET", path, NULL, NULL, &r);
	if (rc < 0)
		return rc;
	if (r.status != 200 || !json_is_object(r.body)) {
		cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return -EPROTO;
	}
	*out = json_incref(r.body);
	cli_resp_free(&r);
	return 0;
}

void
cli_resp_free(struct cli_resp *r)
{
	json_decref(r->body);
	free(r->raw);
	memset(r, 0, sizeof *r);
}

const char *
cli_resp_reason(const struct cli_resp *r)
{
	const char *s = json_string_value(json_object_get(r->body, "reason"));
	return s ? s : "";
}

static const char *
reason_for_code(long code)
{
	static const struct { long code; const char *reason; } map[] = {
		{ 400, "BadRequest" }, { 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "NotFound" }, { 405, "MethodNotAllowed" }, { 409, "Conflict" },
		{ 410, "Gone" }, { 415, "UnsupportedMediaType" }, { 422, "Invalid" },
		{ 429, "TooManyRequests" }, { 500, "InternalError" },
		{ 503, "ServiceUnavailable" }, { 504, "Timeout" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].code == code)
			return map[i].reason;
	return "Unknown";
}

void
cli_print_error(const struct cli_resp *r, const char *when)
{
	const char *reason = cli_resp_reason(r);
	const char *msg = json_string_value(json_object_get(r->body, "message"));
	if (!reason[0])
		reason = reason_for_code(r->status);
	if (msg == NULL)
		msg = r->raw && r->raw[0] ? r->raw : "the server returned no message";
	fprintf(stderr, "Error from server (%s): %s%s%s\n", reason, when ? when : "",
	    when ? ": " : "", msg);
	json_t *causes = json_object_get(json_object_get(r->body, "details"), "causes");
	if (strcmp(reason, "Invalid") != 0)
		return;
	size_t i;
	json_t *c;
	/* V6's Invalid message already lists every cause; print them again
	 * only for a server whose message does not. */
	json_array_foreach(causes, i, c) {
		const char *m = json_string_value(json_object_get(c, "message"));
		if (m && !strstr(msg, m))
			break;
	}
	if (i == json_array_size(causes))
		return;
	json_array_foreach(causes, i, c) {
		const char *f = json_string_value(json_object_get(c, "field"));
		const char *m = json_string_value(json_object_get(c, "message"));
		fprintf(stderr, "* %s%s%s\n", f ? f : "", f && *f ? ": " : "", m ? m : "");
	}
}

/* ---- watch ------------------------------------------------------------ */

struct watch_state {
	struct buf line;
	cli_watch_cb cb;
	void *arg;
	int cb_rc;
	int64_t deadline;
	bool timed_out;
};

static int
watch_line(struct watch_state *w, const char *s)
{
	json_t *ev = json_loads(s, 0, NULL);
	if (ev == NULL)
		return 0;
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	int rc;
	if (type == NULL && strcmp(obj_kind(ev), "Status") == 0) {
		/* the server refused the watch (410 Gone, 400, ...) */
		struct cli_resp r = { json_integer_value(json_object_get(ev, "code")), ev, NULL };
		cli_print_error(&r, NULL);
		rc = -EIO;
	} else {
		rc = w->cb(type ? type : "", obj, w->arg);
	}
	json_decref(ev);
	return rc;
}

static size_t
watch_write(char *p, size_t size, size_t n, void *arg)
{
	struct watch_state *w = arg;
	size_t total = size * n;
	for (size_t i = 0; i < total; i++) {
		if (p[i] != '\n') {
			buf_putc(&w->line, p[i]);
			continue;
		}
		if (w->line.len > 0)
			w->cb_rc = watch_line(w, w->line.data);
		buf_reset(&w->line);
		if (w->cb_rc)
			return 0;	/* aborts the transfer */
	}
	return total;
}

static int
watch_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	struct watch_state *w = arg;
	if (w->deadline && time_mono_ms() >= w->deadline) {
		w->timed_out = true;
		return 1;
	}
	return 0;
}

int
cli_watch(const char *path, int64_t deadline_mono_ms, cli_watch_cb cb, void *arg)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs;
	struct watch_state w = { .cb = cb, .arg = arg, .deadline = deadline_mono_ms };
	CURL *c = handle("GET", path, &hdrs, NULL, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &w);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_OK && w.line.len > 0 && w.cb_rc == 0)
		w.cb_rc = watch_line(&w, w.line.data);
	buf_free(&w.line);
	if (w.cb_rc)
		return w.cb_rc;
	if (w.timed_out)
		return -ETIMEDOUT;
	if (rc != CURLE_OK) {
		cli_transport_error(rc, errbuf);
		return -EIO;
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return status >= 400 ? -EIO : 0;
}

/* ---- paths ------------------------------------------------------------ */

char *
cli_path(const struct kind *k, const char *ns, const char *name, const char *query)
{
	struct buf b = BUF_INIT;
	if (k->group[0])
		buf_printf(&b, "/apis/%s/%s", k->group, k->version);
	else
		buf_printf(&b, "/api/%s", k->version);
	if (k->namespaced && ns)
		buf_printf(&b, "/namespaces/%s", ns);
	buf_printf(&b, "/%s", k->plural);
	if (name)
		buf_printf(&b, "/%s", name);
	if (query && query[0])
		buf_printf(&b, "?%s", query);
	return buf_steal(&b);
}

void
cli_query_add(struct buf *q, const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	buf_printf(q, "%s%s=%s", q->len ? "&" : "", key, esc ? esc : "");
	curl_free(esc);
}
