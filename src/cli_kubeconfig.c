/* cli_kubeconfig.c — where the CLI connects and as whom: a kubeconfig
 * (--kubeconfig, $KUBECONFIG, ~/.kube/config) as kubectl reads one, or the
 * default data dir's admin certificate; and the local verbs on DATA/pki:
 * `v6 kubeconfig` writes the admin kubeconfig, `v6 certs status` shows the
 * certificates, `v6 certs rotate` asks the running server to renew them. */
#include "cli.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pki.h"
#include "server.h"

#define KUBECONFIG_CLUSTER	"v6"
#define KUBECONFIG_CONTEXT	PKI_ADMIN_CN "@" KUBECONFIG_CLUSTER

void
cli_conn_free(struct cli_conn *c)
{
	free(c->server);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->token);
	free(c->source);
	memset(c, 0, sizeof(*c));
}

static char *
b64_encode(const char *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
	return out;
}

/* Standard base64 (whitespace ignored) into a NUL-terminated buffer, or
 * NULL when it is not base64. */
static char *
b64_decode(const char *s, size_t *len)
{
	size_t n = 0, pad = 0;
	char *clean = xmalloc(strlen(s) + 1), *out;
	int m;

	for (const char *p = s; *p; p++)
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			clean[n++] = *p;
	clean[n] = '\0';
	if (n == 0 || n % 4) {
		free(clean);
		return NULL;
	}
	pad = (clean[n - 1] == '=') + (clean[n - 2] == '=');
	out = xmalloc(n / 4 * 3 + 1);
	m = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)clean, (int)n);
	free(clean);
	if (m < 0) {
		free(out);
		return NULL;
	}
	*len = (size_t)m - pad;
	out[*len] = '\0';
	return out;
}

/* The item named name of a kubeconfig list ("clusters", ...): its body
 * under key ("cluster", ...). */
static json_t *
named(json_t *cfg, const char *list, const char *key, const char *name)
{
	size_t i;
	json_t *it;

	json_array_foreach(json_object_get(cfg, list), i, it) {
		const char *n = json_string_value(json_object_get(it, "name"));
		if (n && name && strcmp(n, name) == 0)
			return json_object_get(it, key);
	}
	return NULL;
}

/* PEM material of a kubeconfig entry: FIELD-data (base64) or FIELD (a file,
 * relative to the kubeconfig's directory). 0, or -EINVAL with the error
 * printed. */
static int
material(json_t *obj, const char *field, const char *dir, char **out, size_t *len)
{
	char key[64];
	const char *v;

	snprintf(key, sizeof(key), "%s-data", field);
	if ((v = json_string_value(json_object_get(obj, key))) != NULL) {
		if ((*out = b64_decode(v, len)) == NULL)
			return cli_fail("kubeconfig: %s is not base64", key);
		return 0;
	}
	if ((v = json_string_value(json_object_get(obj, field))) == NULL)
		return 0;
	char *path = v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", dir, v);
	int rc = file_read_all(path, out, len);
	if (rc < 0)
		cli_err("kubeconfig: %s %s: %s", field, path, strerror(-rc));
	free(path);
	return rc < 0 ? -EINVAL : 0;
}

/* Reads a kubeconfig's current context into c. 0 or -EINVAL (printed). */
static int
kubeconfig_load(const char *path, struct cli_conn *c)
{
	char *text = NULL, *slash, *dir;
	size_t len;
	struct obj_docs docs = { 0 };
	struct errlist errs = { 0 };
	int rc = file_read_all(path, &text, &len);

	if (rc < 0)
		return cli_fail("kubeconfig %s: %s", path, strerror(-rc));
	rc = obj_parse(text, len, &docs, &errs);
	free(text);
	if (rc < 0 || docs.n != 1) {
		errlist_free(&errs);
		obj_docs_free(&docs);
		return cli_fail("kubeconfig %s: not a kubeconfig (YAML with clusters, users, "
		    "contexts)", path);
	}
	json_t *cfg = docs.v[0].obj;
	const char *cur = json_string_value(json_object_get(cfg, "current-context"));
	json_t *ctx = named(cfg, "contexts", "context", cur);
	if (ctx == NULL && json_array_size(json_object_get(cfg, "contexts")) == 1)
		ctx = json_object_get(json_array_get(json_object_get(cfg, "contexts"), 0),
		    "context");
	json_t *cl = named(cfg, "clusters", "cluster",
	    json_string_value(json_object_get(ctx, "cluster")));
	json_t *user = named(cfg, "users", "user",
	    json_string_value(json_object_get(ctx, "user")));
	const char *server = json_string_value(json_object_get(cl, "server"));
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	c->source = xasprintf("kubeconfig %s", path);
	if (server == NULL) {
		rc = cli_fail("kubeconfig %s: no server for context \"%s\"", path, cur ? cur : "");
	} else {
		c->server = xstrdup(server);
		c->skip_verify = json_is_true(json_object_get(cl, "insecure-skip-tls-verify"));
		const char *tok = json_string_value(json_object_get(user, "token"));
		c->token = tok ? xstrdup(tok) : NULL;
		rc = material(cl, "certificate-authority", dir, &c->ca, &c->ca_len);
		if (rc == 0)
			rc = material(user, "client-certificate", dir, &c->cert, &c->cert_len);
		if (rc == 0)
			rc = material(user, "client-key", dir, &c->key, &c->key_len);
	}
	free(dir);
	errlist_free(&errs);
	obj_docs_free(&docs);
	return rc;
}

/* "https://HOST:PORT" of DIR/server.address (a wildcard address becomes
 * loopback), or NULL. */
static char *
data_dir_url(const char *dir, bool tls)
{
	char *path = xasprintf("%s/server.address", dir), *text = NULL, *url = NULL;
	size_t len;

	if (file_read_all(path, &text, &len) == 0 && len > 1 && text[len - 1] == '\n') {
		text[len - 1] = '\0';
		char *colon = strrchr(text, ':');
		if (colon) {
			*colon = '\0';
			const char *h = text;
			if (!strcmp(h, "0.0.0.0") || !*h)
				h = "127.0.0.1";
			else if (!strcmp(h, "::"))
				h = "::1";
			url = xasprintf("%s://%s%s%s:%s", tls ? "https" : "http",
			    strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", colon + 1);
		}
	}
	free(text);
	free(path);
	return url;
}

/* The admin identity of a data dir: its CA, admin certificate and key. */
static bool
data_dir_admin(const char *dir, struct cli_conn *c)
{
	char *pki = xasprintf("%s/" PKI_DIR, dir);

	c->ca = pki_read_pem(pki, PKI_CA, "crt", &c->ca_len);
	c->cert = pki_read_pem(pki, PKI_ADMIN, "crt", &c->cert_len);
	c->key = pki_read_pem(pki, PKI_ADMIN, "key", &c->key_len);
	free(pki);
	return c->ca && c->cert && c->key;
}

int
cli_conn_resolve(const struct cli_opts *o, struct cli_conn *c)
{
	const char *server = o->server ? o->server : getenv("V6_SERVER");
	const char *kc = o->kubeconfig ? o->kubeconfig : getenv("KUBECONFIG");
	const char *home = getenv("HOME");
	char *path = NULL;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	if (server && !*server)
		server = NULL;
	if (kc && *kc) {
		path = xstrndup(kc, strcspn(kc, ":"));	/* the first of a list */
	} else if (server == NULL && home) {
		path = xasprintf("%s/.kube/config", home);
		if (access(path, R_OK) != 0) {
			free(path);
			path = NULL;
		}
	}
	if (path)
		rc = kubeconfig_load(path, c);
	free(path);
	if (rc < 0) {
		cli_conn_free(c);
		return rc;
	}
	if (server) {
		free(c->server);
		c->server = xstrdup(server);
	}
	if (c->server == NULL) {
		char *dir = o->data_dir ? xstrdup(o->data_dir) : server_default_data_dir();
		bool tls = data_dir_admin(dir, c);
		c->server = data_dir_url(dir, tls);
		if (c->server)
			c->source = xasprintf("data dir %s", dir);
		free(dir);
	}
	if (c->server == NULL)
		c->server = xstrdup("http://127.0.0.1:6443");
	return 0;
}

/* ---- v6 kubeconfig ------------------------------------------------------ */

static char *
kubeconfig_text(const char *server, const struct cli_conn *m)
{
	char *ca = b64_encode(m->ca, m->ca_len), *crt = b64_encode(m->cert, m->cert_len);
	char *key = b64_encode(m->key, m->key_len);
	char *out = xasprintf(
	    "apiVersion: v1\n"
	    "kind: Config\n"
	    "clusters:\n"
	    "- name: " KUBECONFIG_CLUSTER "\n"
	    "  cluster:\n"
	    "    server: %s\n"
	    "    certificate-authority-data: %s\n"
	    "contexts:\n"
	    "- name: " KUBECONFIG_CONTEXT "\n"
	    "  context:\n"
	    "    cluster: " KUBECONFIG_CLUSTER "\n"
	    "    user: " PKI_ADMIN_CN "\n"
	    "current-context: " KUBECONFIG_CONTEXT "\n"
	    "preferences: {}\n"
	    "users:\n"
	    "- name: " PKI_ADMIN_CN "\n"
	    "  user:\n"
	    "    client-certificate-data: %s\n"
	    "    client-key-data: %s\n", server, ca, crt, key);
	free(ca);
	free(crt);
	free(key);
	return out;
}

int
cli_kubeconfig(struct cli_opts *o)
{
	char *dir = o->data_dir ? xstrdup(o->data_dir) : server_default_data_dir();
	struct cli_conn m = { 0 };
	char *server = NULL, *text = NULL;
	int rc = 1;

	if (o->nargs > 0) {
		cli_err("kubeconfig takes no arguments");
		goto out;
	}
	/* right after `v6 server &` the files may be a moment away: up to 10 s */
	for (int i = 0; ; i++) {
		bool have = data_dir_admin(dir, &m);
		if (have && !o->server && !server)
			server = data_dir_url(dir, true);
		if ((have && (o->server || server)) || i == 100)
			break;
		cli_conn_free(&m);
		usleep(100 * 1000);
	}
	if (m.ca == NULL || m.cert == NULL || m.key == NULL) {
		cli_err("no admin certificate in %s/" PKI_DIR " (the server makes it at its "
		    "first start without --insecure-http; give --data-dir)", dir);
		goto out;
	}
	if (o->server)
		server = xstrdup(o->server);
	if (server == NULL) {
		cli_err("no %s/server.address: start the server first, or give --server", dir);
		goto out;
	}
	text = kubeconfig_text(server, &m);
	if (o->out == NULL) {
		fputs(text, stdout);
		rc = 0;
	} else if ((rc = file_write_atomic(o->out, text, strlen(text), true)) < 0) {
		cli_err("writing %s: %s", o->out, strerror(-rc));
		rc = 1;
	} else {
		chmod(o->out, 0600);	/* it holds the admin's private key */
		fprintf(stderr, "wrote %s (context " KUBECONFIG_CONTEXT ", server %s)\n",
		    o->out, server);
	}
out:
	free(text);
	free(server);
	cli_conn_free(&m);
	free(dir);
	return rc;
}

/* ---- v6 certs ----------------------------------------------------------- */

static int
certs_status(const struct cli_opts *o)
{
	char *dir = o->data_dir ? xstrdup(o->data_dir) : server_default_data_dir();
	char *pki = xasprintf("%s/" PKI_DIR, dir), when[32];
	struct pki_info in;
	time_t now = time(NULL);
	int rc = 0;

	if (!o->no_headers)
		printf("%-8s %-36s %-22s %-10s %s\n", "NAME", "SUBJECT", "NOT AFTER", "DAYS LEFT",
		    "SANS");
	for (enum pki_cert w = 0; w < PKI_NCERTS; w++) {
		if (pki_info_read(pki, w, &in) < 0) {
			rc = cli_err("%s/%s.crt: missing or unreadable", pki, pki_name(w));
			continue;
		}
		time_format_rfc3339(in.not_after, when);
		printf("%-8s %-36s %-22s %-10.1f %s\n", pki_name(w), in.subject, when,
		    (double)(in.not_after - now) / 86400.0, in.sans[0] ? in.sans : "<none>");
	}
	free(pki);
	free(dir);
	return rc;
}

static int
certs_rotate(struct cli_opts *o)
{
	(void)o;
	struct cli_resp r;
	int rc = cli_http("POST", "/v6/certs/rotate", NULL, NULL, &r);

	if (rc < 0)
		return 1;
	if (r.status != 200) {
		cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return 1;
	}
	const char *k;
	json_t *v;
	json_object_foreach(r.body, k, v) {
		char when[32];
		time_format_rfc3339((time_t)json_integer_value(json_object_get(v, "notAfter")),
		    when);
		printf("%s: renewed, serial %s, valid until %s\n", k,
		    json_string_value(json_object_get(v, "serial")), when);
	}
	cli_resp_free(&r);
	return 0;
}

int
cli_certs(struct cli_opts *o)
{
	const char *sub = o->nargs ? o->args[0] : "";

	if (o->nargs == 1 && strcmp(sub, "status") == 0)
		return certs_status(o);
	if (o->nargs == 1 && strcmp(sub, "rotate") == 0)
		return cli_run_connected(o, certs_rotate);
	return cli_err("usage: v6 certs status [--data-dir DIR] | v6 certs rotate");
}
