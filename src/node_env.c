/* node_env.c — a container's environment and command line, resolved the
 * way kubelet does: Service variables (hook), envFrom ConfigMaps / Secrets
 * with prefix and optional, env with $(VAR) expansion, valueFrom (downward
 * API fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), then PATH
 * and HOSTNAME. Lookups go through a callback; node_agent.c passes api_get. */
#include "node_pod.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "obj_schema.h"

#define SYSTEM_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* An ordered NAME -> value list where a later set replaces the value. */
struct envl {
	char **v;		/* "NAME=value" */
	size_t n, cap;
};

static size_t
name_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static void
envl_set(struct envl *e, const char *name, const char *value)
{
	size_t nl = strlen(name);
	char *kv = xasprintf("%s=%s", name, value);
	for (size_t i = 0; i < e->n; i++)
		if (name_len(e->v[i]) == nl && strncmp(e->v[i], name, nl) == 0) {
			free(e->v[i]);
			e->v[i] = kv;
			return;
		}
	if (e->n + 2 > e->cap) {
		e->cap = e->cap ? e->cap * 2 : 16;
		e->v = xrealloc(e->v, e->cap * sizeof *e->v);
	}
	e->v[e->n++] = kv;
	e->v[e->n] = NULL;
}

static void
envl_set_cb(void *arg, const char *name, const char *value)
{
	envl_set(arg, name, value);
}

static char **
envl_steal(struct envl *e)
{
	if (!e->v)
		return xcalloc(1, sizeof(char *));
	return e->v;
}

void
nenv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

const char *
nenv_get(char *const *envp, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; envp && envp[i]; i++)
		if (name_len(envp[i]) == nl && strncmp(envp[i], name, nl) == 0)
			return envp[i] + nl + 1;
	return NULL;
}

/* Kubernetes' third_party expansion: $$ is an escaped $, $(NAME) is
 * replaced when NAME is defined and kept as written otherwise, an
 * unterminated $( and a $ before anything else stay as they are. */
char *
nenv_expand(const char *s, char *const *envp)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "");
	for (const char *p = s; *p; p++) {
		if (p[0] != '$' || p[1] == '\0') {
			buf_putc(&b, *p);
			continue;
		}
		if (p[1] == '$') {
			buf_putc(&b, '$');
			p++;
			continue;
		}
		const char *close = p[1] == '(' ? strchr(p + 2, ')') : NULL;
		if (!close) {
			buf_putc(&b, '$');
			buf_putc(&b, p[1]);
			p++;
			continue;
		}
		char *name = xstrndup(p + 2, (size_t)(close - p - 2));
		const char *v = nenv_get(envp, name);
		if (v)
			buf_puts(&b, v);
		else
			buf_printf(&b, "$(%s)", name);
		free(name);
		p = close;
	}
	return buf_steal(&b);
}

static bool
env_name_ok(const char *s)
{
	if (!*s || isdigit((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

static int
b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 decoded with its length; NULL when s is not base64. */
char *
nenv_b64_decode_len(const char *s, size_t *len)
{
	struct buf b = BUF_INIT;
	unsigned acc = 0;
	int bits = 0;
	buf_puts(&b, "");
	for (const char *p = s; *p && *p != '='; p++) {
		int v = b64_val((unsigned char)*p);
		if (v < 0) {
			buf_free(&b);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf_putc(&b, (char)((acc >> bits) & 0xff));
		}
	}
	*len = b.len;
	return buf_steal(&b);
}

/* Secret data is base64; undecodable input is used as is. */
char *
nenv_b64_decode(const char *s)
{
	size_t n;
	char *d = nenv_b64_decode_len(s, &n);
	return d ? d : xstrdup(s);
}

struct res_ctx {
	const struct nenv_ctx *ctx;
	char *err;
};

static const char *
kind_word(const char *kind)
{
	return strcmp(kind, "Secret") == 0 ? "secret" : "configmap";
}

/* Value of key in a ConfigMap / Secret (decoded); NULL when absent. */
static char *
source_value(const json_t *src, const char *kind, const char *key)
{
	const char *v = json_string_value(json_object_get(json_object_get(src, "data"), key));
	if (!v)
		return NULL;
	return strcmp(kind, "Secret") == 0 ? nenv_b64_decode(v) : xstrdup(v);
}

static json_t *
lookup(struct res_ctx *r, const char *kind, const char *name)
{
	return r->ctx->lookup ? r->ctx->lookup(r->ctx->lookup_arg, kind,
	    obj_namespace(r->ctx->pod), name) : NULL;
}

static int
env_from(struct res_ctx *r, struct envl *e, const json_t *ef)
{
	static const char *const refs[][2] = { { "configMapRef", "ConfigMap" },
		{ "secretRef", "Secret" } };
	const char *prefix = json_string_value(json_object_get(ef, "prefix"));
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
		const json_t *ref = json_object_get(ef, refs[i][0]);
		if (!json_is_object(ref))
			continue;
		const char *name = json_string_value(json_object_get(ref, "name"));
		json_t *src = lookup(r, refs[i][1], name ? name : "");
		if (!src) {
			if (json_is_true(json_object_get(ref, "optional")))
				continue;
			r->err = xasprintf("%s \"%s\" not found", kind_word(refs[i][1]),
			    name ? name : "");
			return -ENOENT;
		}
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(src, "data"), k, v) {
			char *full = xasprintf("%s%s", prefix ? prefix : "", k);
			char *val = source_value(src, refs[i][1], k);
			if (env_name_ok(full) && val)
				envl_set(e, full, val);
			free(val);
			free(full);
		}
		json_decref(src);
	}
	return 0;
}

/* metadata.labels['app'] -> the label value. */
static const char *
subscript(const json_t *pod, const char *path, const char *field)
{
	size_t fl = strlen(field);
	if (strncmp(path, field, fl) != 0 || path[fl] != '[')
		return NULL;
	const char *k = path + fl + 1;
	char q = *k == '\'' || *k == '"' ? *k++ : 0;
	const char *end = q ? strchr(k, q) : strchr(k, ']');
	if (!end)
		return NULL;
	char *key = xstrndup(k, (size_t)(end - k));
	const char *v = json_string_value(json_object_get(obj_get_path(pod, field), key));
	free(key);
	return v ? v : "";
}

static char *
field_ref(struct res_ctx *r, const json_t *ref)
{
	const json_t *pod = r->ctx->pod;
	const char *path = json_string_value(json_object_get(ref, "fieldPath"));
	if (!path)
		path = "";
	static const char *const direct[] = { "metadata.name", "metadata.namespace",
		"metadata.uid", "spec.nodeName", "spec.serviceAccountName" };
	for (size_t i = 0; i < ARRAY_SIZE(direct); i++)
		if (strcmp(path, direct[i]) == 0) {
			const char *v = json_string_value(obj_get_path(pod, path));
			if (!v && i == 3)
				v = r->ctx->node_name;
			if (!v && i == 4)
				v = "default";
			return xstrdup(v ? v : "");
		}
	if (!strcmp(path, "status.podIP") || !strcmp(path, "status.podIPs"))
		return xstrdup(r->ctx->pod_ip ? r->ctx->pod_ip : "");
	if (!strcmp(path, "status.hostIP") || !strcmp(path, "status.hostIPs"))
		return xstrdup("127.0.0.1");
	const char *v = subscript(pod, path, "metadata.labels");
	if (!v)
		v = subscript(pod, path, "metadata.annotations");
	if (v)
		return xstrdup(v);
	r->err = xasprintf("unsupported fieldRef fieldPath \"%s\"", path);
	return NULL;
}

static double
qty(const json_t *v, double def)
{
	double d;
	if (json_is_number(v))
		return json_number_value(v);
	return json_is_string(v) && quantity_parse(json_string_value(v), &d) == 0 ? d : def;
}

static const json_t *
container_named(const json_t *pod, const char *name)
{
	static const char *const lists[] = { "spec.containers", "spec.initContainers" };
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i;
		json_t *c;
		json_array_foreach(obj_get_path(pod, lists[l]), i, c)
			if (!strcmp(json_string_value(json_object_get(c, "name")) ?: "", name))
				return c;
	}
	return NULL;
}

static char *
resource_ref(struct res_ctx *r, const json_t *ref)
{
	const char *cn = json_string_value(json_object_get(ref, "containerName"));
	const json_t *c = cn && *cn ? container_named(r->ctx->pod, cn) : r->ctx->container;
	const char *res = json_string_value(json_object_get(ref, "resource"));
	if (!c || !res || !strchr(res, '.')) {
		r->err = xasprintf("resourceFieldRef: cannot resolve \"%s\" of container "
		    "\"%s\"", res ? res : "", cn ? cn : "");
		return NULL;
	}
	const char *what = strchr(res, '.') + 1;
	bool cpu = strcmp(what, "cpu") == 0;
	double node = cpu ? (double)r->ctx->node_cpu_millis / 1000 :
	    (double)r->ctx->node_memory_bytes;
	json_t *res_obj = json_object_get(c, "resources");
	double lim = qty(json_object_get(json_object_get(res_obj, "limits"), what), node);
	double val = str_has_prefix(res, "limits.") ? lim :
	    qty(json_object_get(json_object_get(res_obj, "requests"), what), 0);
	double div = qty(json_object_get(ref, "divisor"), 1);
	if (div <= 0)
		div = 1;
	return xasprintf("%.0f", ceil(val / div - 1e-9));
}

/* metadata.labels / metadata.annotations as a downwardAPI volume file:
 * key="value" lines, sorted by key (Go's %q quoting of the value). */
static char *
map_file(const json_t *m)
{
	const char **keys = xcalloc(json_object_size(m) + 1, sizeof *keys);
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)m, k, v)
		keys[n++] = k;
	qsort(keys, n, sizeof *keys, str_pcmp);
	struct buf b = BUF_INIT;
	buf_puts(&b, "");
	for (size_t i = 0; i < n; i++) {
		const char *val = json_string_value(json_object_get(m, keys[i])) ?: "";
		buf_printf(&b, "%s%s=\"", i ? "\n" : "", keys[i]);
		for (const char *p = val; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_printf(&b, "\\%c", *p);
			else if (*p == '\n')
				buf_puts(&b, "\\n");
			else
				buf_putc(&b, *p);
		}
		buf_putc(&b, '"');
	}
	free(keys);
	return buf_steal(&b);
}

char *
nenv_downward(const struct nenv_ctx *ctx, const json_t *item, char **err)
{
	struct res_ctx r = { ctx, NULL };
	const json_t *fr = json_object_get(item, "fieldRef");
	const char *path = json_string_value(json_object_get(fr, "fieldPath"));
	char *v = NULL;
	if (path && (!strcmp(path, "metadata.labels") || !strcmp(path, "metadata.annotations")))
		v = map_file(obj_get_path(ctx->pod, path));
	else if (fr)
		v = field_ref(&r, fr);
	else if (json_object_get(item, "resourceFieldRef"))
		v = resource_ref(&r, json_object_get(item, "resourceFieldRef"));
	else
		r.err = xstrdup("downwardAPI item without fieldRef or resourceFieldRef");
	*err = r.err;
	return v;
}

static char *
key_ref(struct res_ctx *r, const json_t *ref, const char *kind, bool *skip)
{
	const char *name = json_string_value(json_object_get(ref, "name"));
	const char *key = json_string_value(json_object_get(ref, "key"));
	bool optional = json_is_true(json_object_get(ref, "optional"));
	json_t *src = lookup(r, kind, name ? name : "");
	char *v = src ? source_value(src, kind, key ? key : "") : NULL;
	json_decref(src);
	if (v || optional) {
		*skip = !v;
		return v;
	}
	if (!src)
		r->err = xasprintf("%s \"%s\" not found", kind_word(kind), name ? name : "");
	else
		r->err = xasprintf("couldn't find key %s in %s %s/%s", key ? key : "", kind,
		    obj_namespace(r->ctx->pod), name ? name : "");
	return NULL;
}

/* The value of one env entry; NULL with *skip for a missing optional one,
 * NULL with r->err on error. */
static char *
env_value(struct res_ctx *r, struct envl *e, const json_t *ev, bool *skip)
{
	*skip = false;
	const json_t *vf = json_object_get(ev, "valueFrom");
	if (!json_is_object(vf)) {
		const char *v = json_string_value(json_object_get(ev, "value"));
		return nenv_expand(v ? v : "", e->v);
	}
	json_t *x;
	if ((x = json_object_get(vf, "fieldRef")))
		return field_ref(r, x);
	if ((x = json_object_get(vf, "resourceFieldRef")))
		return resource_ref(r, x);
	if ((x = json_object_get(vf, "configMapKeyRef")))
		return key_ref(r, x, "ConfigMap", skip);
	if ((x = json_object_get(vf, "secretKeyRef")))
		return key_ref(r, x, "Secret", skip);
	r->err = xstrdup("unsupported valueFrom");
	return NULL;
}

char **
nenv_resolve(const struct nenv_ctx *ctx, char **err)
{
	struct res_ctx r = { ctx, NULL };
	struct envl e = { 0 };
	for (size_t i = 0; ctx->extra_env && ctx->extra_env[i]; i++) {
		const char *kv = ctx->extra_env[i];
		char *name = xstrndup(kv, name_len(kv));
		envl_set(&e, name, kv[strlen(name)] ? kv + strlen(name) + 1 : "");
		free(name);
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(ctx->container, "envFrom"), i, x)
		if (env_from(&r, &e, x) < 0)
			goto fail;
	json_array_foreach(json_object_get(ctx->container, "env"), i, x) {
		bool skip;
		const char *name = json_string_value(json_object_get(x, "name"));
		char *v = env_value(&r, &e, x, &skip);
		if (!v && !skip)
			goto fail;
		if (v && name)
			envl_set(&e, name, v);
		free(v);
	}
	nenv_otel(ctx->pod, ctx->otlp_endpoint, e.v, envl_set_cb, &e);
	if (!nenv_get(e.v, "PATH") && !ctx->image_env) {
		char *path = ctx->bin_dir ? xasprintf("%s:%s", ctx->bin_dir, SYSTEM_PATH) :
		    xstrdup(SYSTEM_PATH);
		envl_set(&e, "PATH", path);
		free(path);
	}
	if (!nenv_get(e.v, "HOSTNAME")) {
		const char *h = json_string_value(obj_get_path(ctx->pod, "spec.hostname"));
		envl_set(&e, "HOSTNAME", h && *h ? h : obj_name(ctx->pod));
	}
	*err = NULL;
	return envl_steal(&e);
fail:
	nenv_free(e.v);
	*err = r.err ? r.err : xstrdup("cannot resolve the environment");
	return NULL;
}

/* ---- Service links (kubelet's envvars.FromServices) ------------------ */

static bool
service_ip_set(const json_t *svc)
{
	const char *ip = json_string_value(obj_get_path(svc, "spec.clusterIP"));
	return ip && *ip && strcmp(ip, "None") != 0;
}

/* "my-svc" -> "MY_SVC" */
static char *
link_name(const char *s)
{
	char *n = xstrdup(s);
	for (char *p = n; *p; p++)
		*p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	return n;
}

static void
link_port_vars(struct envl *e, const char *prefix, const char *ip, const json_t *sp,
    bool first)
{
	const char *proto = json_string_value(json_object_get(sp, "protocol"));
	char *up = link_name(proto && *proto ? proto : "TCP");
	char *low = xstrdup(up);
	for (char *p = low; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	long long port = (long long)json_integer_value(json_object_get(sp, "port"));
	char *url = xasprintf("%s://%s:%lld", low, ip, port);
	char *pp = xasprintf("%s_PORT_%lld_%s", prefix, port, up);
	char *name;
	if (first) {
		name = xasprintf("%s_PORT", prefix);
		envl_set(e, name, url);
		free(name);
	}
	envl_set(e, pp, url);
	static const char *const parts[] = { "_PROTO", "_PORT", "_ADDR" };
	char num[24];
	snprintf(num, sizeof num, "%lld", port);
	const char *vals[] = { low, num, ip };
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		name = xasprintf("%s%s", pp, parts[i]);
		envl_set(e, name, vals[i]);
		free(name);
	}
	free(pp);
	free(url);
	free(low);
	free(up);
}

static void
link_vars(struct envl *e, const json_t *svc)
{
	const json_t *ports = obj_get_path(svc, "spec.ports");
	const char *ip = json_string_value(obj_get_path(svc, "spec.clusterIP"));
	if (!json_array_size(ports))
		return;
	char *prefix = link_name(obj_name(svc));
	char *host = xasprintf("%s_SERVICE_HOST", prefix);
	char *port = xasprintf("%s_SERVICE_PORT", prefix);
	char num[24];
	envl_set(e, host, ip);
	snprintf(num, sizeof num, "%lld",
	    (long long)json_integer_value(json_object_get(json_array_get(ports, 0), "port")));
	envl_set(e, port, num);
	size_t i;
	json_t *sp;
	json_array_foreach(ports, i, sp) {
		const char *pn = json_string_value(json_object_get(sp, "name"));
		if (!pn || !*pn)
			continue;
		char *up = link_name(pn);
		char *name = xasprintf("%s_%s", port, up);
		snprintf(num, sizeof num, "%lld",
		    (long long)json_integer_value(json_object_get(sp, "port")));
		envl_set(e, name, num);
		free(name);
		free(up);
	}
	json_array_foreach(ports, i, sp)
		link_port_vars(e, prefix, ip, sp, i == 0);
	free(port);
	free(host);
	free(prefix);
}

static int
cmp_svc_name(const void *a, const void *b)
{
	return strcmp(obj_name(*(json_t *const *)a), obj_name(*(json_t *const *)b));
}

char **
nenv_service_env(const json_t *pod, const json_t *services)
{
	const char *ns = obj_namespace(pod);
	bool links = !json_is_false(obj_get_path(pod, "spec.enableServiceLinks"));
	json_t *chosen = json_object();	/* name -> service */
	size_t i;
	json_t *svc;
	json_array_foreach(services, i, svc) {
		if (!service_ip_set(svc))
			continue;
		const char *sns = obj_namespace(svc), *name = obj_name(svc);
		if (!strcmp(sns, "default") && !strcmp(name, "kubernetes")) {
			if (!json_object_get(chosen, name))
				json_object_set(chosen, name, svc);
		} else if (!strcmp(sns, ns) && links) {
			json_object_set(chosen, name, svc);
		}
	}
	size_t n = json_object_size(chosen), k = 0;
	json_t **v = xcalloc(n + 1, sizeof *v);
	const char *name;
	json_object_foreach(chosen, name, svc)
		v[k++] = svc;
	qsort(v, n, sizeof *v, cmp_svc_name);
	struct envl e = { 0 };
	for (k = 0; k < n; k++)
		link_vars(&e, v[k]);
	free(v);
	json_decref(chosen);
	return envl_steal(&e);
}

char **
nenv_argv(const json_t *container, char *const *envp)
{
	const json_t *cmd = json_object_get(container, "command");
	size_t n = json_array_size(cmd) + json_array_size(json_object_get(container, "args"));
	char **v = xcalloc(n + 2, sizeof *v);
	size_t k = 0, i;
	json_t *x;
	if (json_array_size(cmd) == 0)
		v[k++] = xstrdup(json_string_value(json_object_get(container, "image")) ?: "");
	json_array_foreach(cmd, i, x)
		v[k++] = nenv_expand(json_string_value(x) ?: "", envp);
	json_array_foreach(json_object_get(container, "args"), i, x)
		v[k++] = nenv_expand(json_string_value(x) ?: "", envp);
	v[k] = NULL;
	return v;
}

/* ---- OpenTelemetry SDK variables ------------------------------------------- */

/* Label key of pod, NULL when absent or empty. */
static const char *
label(const json_t *pod, const char *key)
{
	const char *v = json_string_value(json_object_get(obj_labels(pod), key));

	return v && *v ? v : NULL;
}

/* The name of the workload that owns pod: a ReplicaSet's owner, from its
 * name without the pod-template-hash suffix. NULL when none. */
static char *
owner_workload(const json_t *pod)
{
	const json_t *refs = obj_get_path(pod, "metadata.ownerReferences"), *r;
	const char *hash = label(pod, "pod-template-hash");
	size_t i;

	if (!hash)
		hash = label(pod, "rollouts-pod-template-hash");
	json_array_foreach(refs, i, r) {
		const char *kind = obj_str(r, "kind"), *name = obj_str(r, "name");
		size_t n, h;
		if (!kind || !name || !json_is_true(json_object_get(r, "controller")))
			continue;
		n = strlen(name);
		h = hash ? strlen(hash) : 0;
		if (!strcmp(kind, "ReplicaSet") && h && n > h + 1 && name[n - h - 1] == '-' &&
		    !strcmp(name + n - h, hash))
			return xstrndup(name, n - h - 1);
		return xstrdup(name);
	}
	return NULL;
}

/* A value for OTEL_RESOURCE_ATTRIBUTES (W3C baggage octets): ',', '=',
 * '%', spaces and non-ASCII percent-encoded. */
static void
put_baggage(struct buf *b, const char *key, const char *v)
{
	if (b->len)
		buf_putc(b, ',');
	buf_printf(b, "%s=", key);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || *p == ',' || *p == '=' || *p == '%' ||
		    *p == ';' || *p == '"' || *p == '\\')
			buf_printf(b, "%%%02X", *p);
		else
			buf_putc(b, (char)*p);
	}
}

void
nenv_otel(const json_t *pod, const char *endpoint, char *const *env,
    void (*set)(void *arg, const char *name, const char *value), void *arg)
{
	static const char *const rev_labels[] = { "rollouts-pod-template-hash",
		"pod-template-hash", "controller-revision-hash" };
	const char *name = obj_annotation(pod, "resource.opentelemetry.io/service.name");
	const char *rev = NULL, *uid = obj_uid(pod);
	char *owner = NULL;
	struct buf b = BUF_INIT;
	const char *var = endpoint && str_has_suffix(endpoint, "/v1/traces") ?
	    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT";
	/* env may move once set() adds: look everything up first */
	bool has_name = nenv_get(env, "OTEL_SERVICE_NAME") != NULL;
	bool has_res = nenv_get(env, "OTEL_RESOURCE_ATTRIBUTES") != NULL;
	bool has_ep = nenv_get(env, var) != NULL;

	if (!name || !*name)
		name = label(pod, "app.kubernetes.io/name");
	if (!name)
		name = label(pod, "app");
	if (!name || !*name)
		name = owner = owner_workload(pod);
	if (!name || !*name)
		name = obj_name(pod);
	if (!has_name && name)
		set(arg, "OTEL_SERVICE_NAME", name);
	for (size_t i = 0; i < ARRAY_SIZE(rev_labels) && !rev; i++)
		rev = label(pod, rev_labels[i]);
	if (!has_res) {
		put_baggage(&b, "k8s.namespace.name", obj_namespace(pod));
		put_baggage(&b, "k8s.pod.name", obj_name(pod));
		if (uid && *uid)
			put_baggage(&b, "k8s.pod.uid", uid);
		if (rev)
			put_baggage(&b, "service.version", rev);
		set(arg, "OTEL_RESOURCE_ATTRIBUTES", b.data);
	}
	if (endpoint && *endpoint && !has_ep)
		set(arg, var, endpoint);
	buf_free(&b);
	free(owner);
}
