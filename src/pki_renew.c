/* pki_renew.c — the API server's certificates while it runs: made (or
 * reused) at start, checked by a timer and renewed before they expire with
 * the new serving certificate swapped into the listener without a restart
 * (open connections keep theirs), `POST /v6/certs/rotate` to renew now
 * (`v6 certs rotate`; RBAC keeps it to admins), and the expiry metric.
 * server.c starts it. */
#include "pki_renew.h"

#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "obs_metrics.h"
#include "util.h"

#define RENEW_CHECK_MAX_MS	(60 * 60 * 1000)	/* at least hourly */
#define RENEW_CHECK_MIN_MS	1000
#define RENEW_RETRY_MS		(60 * 1000)	/* after a failed renewal */

struct pki_renew {
	struct pki_opts o;
	char *dir;
	char **sans;
	uv_timer_t timer;
	struct api *api;
	SSL_CTX *ctx;		/* the current one, until handed to the API */
};

static void on_renew_timer(uv_timer_t *);
static void pki_renew_free(struct pki_renew *);

static void
renew_metrics(const struct pki_renew *p)
{
	struct pki_info in;

	for (enum pki_cert w = 0; w < PKI_NCERTS; w++)
		if (pki_info_read(p->dir, w, &in) == 0)
			obs_cert_expiry(pki_name(w), (double)in.not_after);
}

/* The serving certificate on disk becomes the listener's. */
static int
renew_reload(struct pki_renew *p, char **err)
{
	SSL_CTX *ctx = tls_server_ctx(p->dir, err);
	struct pki_info in;

	if (ctx == NULL)
		return -EIO;
	if (p->api)
		api_set_tls(p->api, ctx);
	SSL_CTX_free(p->ctx);
	p->ctx = ctx;
	renew_metrics(p);
	if (pki_info_read(p->dir, PKI_SERVER, &in) == 0) {
		char until[32];
		time_format_rfc3339(in.not_after, until);
		log_info("tls", "serving certificate %s, serial %s, valid until %s", in.subject,
		    in.serial, until);
	}
	return 0;
}

/* Renews what is due (everything with force). Returns how many were
 * renewed, or a negative errno with *err set. */
static int
renew_run(struct pki_renew *p, bool force, char **err)
{
	int n = pki_ensure(&p->o, force, err);

	if (n > 0 && renew_reload(p, err) < 0)
		return -EIO;
	return n;
}

/* Next check: when the first certificate is due, between a second and an
 * hour from now (a clock that jumps is caught within the hour). */
static void
renew_schedule(struct pki_renew *p)
{
	time_t at = pki_renew_at(p->dir), now = time(NULL);
	int64_t ms = at > now ? (int64_t)(at - now) * 1000 : RENEW_CHECK_MIN_MS;

	if (ms > RENEW_CHECK_MAX_MS)
		ms = RENEW_CHECK_MAX_MS;
	if (ms < RENEW_CHECK_MIN_MS)
		ms = RENEW_CHECK_MIN_MS;
	uv_timer_start(&p->timer, on_renew_timer, (uint64_t)ms, 0);
}

static void
on_renew_timer(uv_timer_t *t)
{
	struct pki_renew *p = t->data;
	char *err = NULL;
	int n = renew_run(p, false, &err);

	if (n < 0) {
		/* retried each minute, not each second, while it fails */
		log_error("tls", "certificate renewal failed: %s", err);
		free(err);
		uv_timer_start(&p->timer, on_renew_timer, RENEW_RETRY_MS, 0);
		return;
	}
	if (n > 0)
		log_info("tls", "renewed %d certificate(s) in %s", n, p->dir);
	renew_schedule(p);
}

/* POST /v6/certs/rotate: renews the serving and admin certificates now. */
static void
serve_rotate(void *arg, struct http_req *req)
{
	struct pki_renew *p = arg;
	struct pki_info in;
	char *err = NULL;

	if (strcmp(req->method, "POST") != 0) {
		http_add_header(req, "Allow", "POST");
		api_respond_status(req, 405, "POST renews the certificates");
		return;
	}
	if (renew_run(p, true, &err) < 0) {
		log_error("tls", "certificate rotation failed: %s", err);
		api_respond_status(req, 500, err);
		free(err);
		return;
	}
	log_info("tls", "certificates rotated on request of %s", req->remote_addr);
	renew_schedule(p);
	json_t *out = json_object();
	for (enum pki_cert w = PKI_SERVER; w < PKI_NCERTS; w++)
		if (pki_info_read(p->dir, w, &in) == 0)
			json_object_set_new(out, pki_name(w), json_pack("{s:s, s:I}", "serial",
			    in.serial, "notAfter", (json_int_t)in.not_after));
	api_respond_json(req, 200, out);
}

int
pki_renew_init(const char *data_dir, const char *listen_host, int64_t lifetime_s,
    struct pki_renew **out, struct ssl_ctx_st **ctx, char **err)
{
	struct pki_renew *p = xcalloc(1, sizeof(*p));
	int rc = 0, made;

	p->dir = xasprintf("%s/" PKI_DIR, data_dir);
	p->sans = xcalloc(1, sizeof(char *));
	p->sans[0] = xstrdup(listen_host ? listen_host : "");
	p->o = (struct pki_opts){ .dir = p->dir, .sans = (const char *const *)p->sans,
		.nsans = 1, .lifetime_s = lifetime_s };
	if ((made = pki_ensure(&p->o, false, err)) < 0 || (rc = renew_reload(p, err)) < 0) {
		pki_renew_free(p);
		return made < 0 ? made : rc;
	}
	if (made > 0)
		log_info("tls", "issued %d certificate(s) in %s", made, p->dir);
	*ctx = p->ctx;
	*out = p;
	return 0;
}

void
pki_renew_start(struct pki_renew *p, uv_loop_t *loop, struct api *api)
{
	p->api = api;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	api_register_path(api, "/v6/certs/rotate", serve_rotate, p);
	renew_schedule(p);
}

static void
renew_free_cb(uv_handle_t *h)
{
	pki_renew_free(h->data);
}

void
pki_renew_stop(struct pki_renew *p)
{
	if (p == NULL)
		return;
	if (p->api == NULL) {
		pki_renew_free(p);
		return;
	}
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, renew_free_cb);
}

static void
pki_renew_free(struct pki_renew *p)
{
	SSL_CTX_free(p->ctx);
	free(p->sans[0]);
	free(p->sans);
	free(p->dir);
	free(p);
}
