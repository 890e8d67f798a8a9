/* kustomize_gen.c — configMapGenerator and secretGenerator (literals,
 * files, env files; behavior create / merge / replace; generatorOptions),
 * and the content hash kustomize appends to generated names: sha256 of
 * Go's json.Marshal of {kind, name: "", data, ...}, 10 hex digits with
 * 0,1,3,a,e mapped to g,h,k,m,t. */
#include "kustomize_int.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "obj.h"
#include "util.h"

/* ---- the hash ---------------------------------------------------------- */

/* A JSON string as Go's encoding/json writes it (HTML-safe escapes). */
static void
go_json_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			buf_putc(b, '\\');
			buf_putc(b, (char)c);
		} else if (c == '\n') {
			buf_puts(b, "\\n");
		} else if (c == '\r') {
			buf_puts(b, "\\r");
		} else if (c == '\t') {
			buf_puts(b, "\\t");
		} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			buf_printf(b, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
		} else if (c == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
			buf_printf(b, "\\u202%c", p[2] == 0xa8 ? '8' : '9');
			p += 2;
		} else {
			buf_putc(b, (char)c);
		}
	}
	buf_putc(b, '"');
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Go's json.Marshal of a value decoded into interface{}: maps with sorted
 * keys, strings escaped as above. */
static void
go_json(struct buf *b, const json_t *v)
{
	if (json_is_object(v)) {
		size_t n = json_object_size(v), i = 0;
		const char **keys = xcalloc(n + 1, sizeof *keys);
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x)
			keys[i++] = k;
		qsort(keys, n, sizeof *keys, key_cmp);
		buf_putc(b, '{');
		for (i = 0; i < n; i++) {
			if (i)
				buf_putc(b, ',');
			go_json_string(b, keys[i]);
			buf_putc(b, ':');
			go_json(b, json_object_get(v, keys[i]));
		}
		buf_putc(b, '}');
		free(keys);
	} else if (json_is_string(v)) {
		go_json_string(b, json_string_value(v));
	} else {
		char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		buf_puts(b, s ? s : "null");
		free(s);
	}
}

char *
kz_hash(const json_t *obj)
{
	bool secret = !strcmp(obj_kind(obj), "Secret");
	json_t *m = json_object();
	json_object_set_new(m, "kind", json_string(obj_kind(obj)));
	/* kustomize looks the name up as one field called "metadata/name",
	 * which never exists: every hash is of an empty name. */
	json_object_set_new(m, "name", json_string(""));
	json_t *data = json_object_get(obj, "data");
	json_object_set_new(m, "data", json_is_object(data) ? json_incref(data) : json_string(""));
	const char *extra = secret ? "stringData" : "binaryData";
	if (json_is_object(json_object_get(obj, extra)))
		json_object_set(m, extra, json_object_get(obj, extra));
	if (secret)
		json_object_set_new(m, "type", json_string(obj_str(obj, "type")));
	struct buf b = { 0 };
	go_json(&b, m);
	json_decref(m);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_Digest(b.data, b.len, md, &mdlen, EVP_sha256(), NULL);
	buf_free(&b);
	static const char hex[] = "0123456789abcdef";
	char *out = xmalloc(11);
	for (int i = 0; i < 10; i++) {
		char c = hex[(md[i / 2] >> (i % 2 ? 0 : 4)) & 15];
		static const char from[] = "013ae", to[] = "ghkmt";
		const char *p = strchr(from, c);
		out[i] = p ? to[p - from] : c;
	}
	out[10] = 0;
	return out;
}

void
kz_add_hashes(struct kresmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		struct kres *r = &m->v[i];
		if (!r->hash)
			continue;
		char *h = kz_hash(r->obj);
		char *name = xasprintf("%s-%s", obj_name(r->obj), h);
		kz_store_prev(r);
		json_object_set_new(obj_metadata(r->obj), "name", json_string(name));
		free(name);
		free(h);
	}
}

/* ---- the generators ---------------------------------------------------- */

/* "k=v" into data; kustomize trims one pair of surrounding quotes. */
static int
add_literal(json_t *data, const char *lit, const char *file, char **err)
{
	const char *eq = strchr(lit, '=');
	if (!eq || eq == lit) {
		*err = xasprintf("%s: invalid literal source %s, expected key=value", file, lit);
		return -EINVAL;
	}
	char *key = xstrndup(lit, (size_t)(eq - lit));
	const char *v = eq + 1;
	size_t n = strlen(v);
	char *val = n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]
	    ? xstrndup(v + 1, n - 2) : xstrdup(v);
	json_object_set_new(data, key, json_string(val));
	free(key);
	free(val);
	return 0;
}

static const char *
base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static char *
base64(const char *s, size_t n)
{
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	return out;
}

/* A file's content: a string in data, or (not UTF-8) base64 in bin, which
 * becomes binaryData of a ConfigMap and data of a Secret, as kustomize. */
static int
add_file(json_t *data, json_t *bin, const struct kust *k, const char *spec, char **err)
{
	const char *eq = strchr(spec, '=');
	char *key = eq ? xstrndup(spec, (size_t)(eq - spec)) : xstrdup(base_name(spec));
	const char *path = eq ? eq + 1 : spec;
	char *text;
	size_t len;
	int rc = kz_read(k->dir, path, &text, &len, err);
	if (rc == 0) {
		if (json_object_get(data, key) || json_object_get(bin, key)) {
			*err = xasprintf("%s: configmap/secret generator: key %s already exists",
			    k->file, key);
			rc = -EEXIST;
		} else if (utf8_valid(text, len)) {
			json_object_set_new(data, key, json_stringn(text, len));
		} else {
			char *b = base64(text, len);
			json_object_set_new(bin, key, json_string(b));
			free(b);
		}
		free(text);
	}
	free(key);
	return rc;
}

/* An env file: KEY=VALUE lines, # comments and blank lines skipped. */
static int
add_env(json_t *data, const struct kust *k, const char *path, char **err)
{
	char *text;
	size_t len;
	int rc = kz_read(k->dir, path, &text, &len, err);
	if (rc < 0)
		return rc;
	char *save = NULL;
	int lineno = 0;
	for (char *line = strtok_r(text, "\n", &save); line && rc == 0;
	    line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		size_t n = strlen(line);
		if (n && line[n - 1] == '\r')
			line[--n] = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line || *line == '#')
			continue;
		char *eq = strchr(line, '=');
		if (!eq) {
			const char *env = getenv(line);
			if (env)
				json_object_set_new(data, line, json_string(env));
			continue;
		}
		*eq = 0;
		json_object_set_new(data, line, json_string(eq + 1));
	}
	free(text);
	return rc;
}

static json_t *
string_list(const json_t *g, const char *field)
{
	json_t *v = json_object_get(g, field);
	return json_is_array(v) ? v : NULL;
}

/* The data map of one generator entry g. */
static int
gen_data(const struct kust *k, const json_t *g, json_t *data, json_t *bin, char **err)
{
	size_t i;
	json_t *e;
	int rc = 0;
	json_array_foreach(string_list(g, "envs"), i, e)
		if (rc == 0)
			rc = add_env(data, k, json_string_value(e), err);
	if (rc == 0 && json_is_string(json_object_get(g, "env")))
		rc = add_env(data, k, obj_str(g, "env"), err);
	json_array_foreach(string_list(g, "literals"), i, e)
		if (rc == 0)
			rc = add_literal(data, json_string_value(e), k->file, err);
	json_array_foreach(string_list(g, "files"), i, e)
		if (rc == 0)
			rc = add_file(data, bin, k, json_string_value(e), err);
	return rc;
}

static void
merge_strings(json_t *dst_parent, const char *key, const json_t *src)
{
	if (!json_is_object(src) || !json_object_size(src))
		return;
	json_t *dst = obj_child(dst_parent, key);
	json_object_update(dst, (json_t *)src);
}

/* Applies options {labels, annotations, disableNameSuffixHash, immutable};
 * a disableNameSuffixHash: true at either level wins. */
static void
apply_options(json_t *obj, const json_t *opts, bool *no_hash)
{
	if (!json_is_object(opts))
		return;
	merge_strings(obj_metadata(obj), "labels", json_object_get(opts, "labels"));
	merge_strings(obj_metadata(obj), "annotations", json_object_get(opts, "annotations"));
	if (json_is_true(json_object_get(opts, "disableNameSuffixHash")))
		*no_hash = true;
	if (json_is_true(json_object_get(opts, "immutable")))
		json_object_set_new(obj, "immutable", json_true());
}

static void
base64_values(json_t *data)
{
	const char *key;
	json_t *v;
	json_object_foreach(data, key, v) {
		char *out = base64(json_string_value(v), json_string_length(v));
		json_object_set_new(data, key, json_string(out));
		free(out);
	}
}

/* The resource of that kind once or now named name in namespace ns. */
static ssize_t
find_existing(const struct kresmap *m, const char *kind, const char *name, const char *ns)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(obj_kind(m->v[i].obj), kind) && kz_had_id(&m->v[i], name, ns))
			return (ssize_t)i;
	return -1;
}

/* kustomize's appendReplaceOrMerge: the generated obj replaces the
 * resource r, keeping r's name, namespace and name history, with labels
 * and annotations of both (obj's win); merge also keeps r's data and
 * binaryData keys that obj does not set. */
static void
combine(struct kres *r, json_t *obj, bool merge, bool hash)
{
	static const char *const maps[] = { "data", "binaryData" };
	json_t *old = r->obj;
	json_t *md = obj_metadata(obj), *omd = obj_metadata(old);
	for (size_t i = 0; merge && i < ARRAY_SIZE(maps); i++) {
		json_t *o = json_object_get(old, maps[i]);
		if (!json_is_object(o) || !json_object_size(o))
			continue;
		json_t *d = json_deep_copy(o);
		json_object_update(d, json_object_get(obj, maps[i]));
		json_object_set_new(obj, maps[i], d);
	}
	static const char *const meta[] = { "labels", "annotations" };
	for (size_t i = 0; i < ARRAY_SIZE(meta); i++) {
		json_t *o = json_object_get(omd, meta[i]);
		if (!json_is_object(o) || !json_object_size(o))
			continue;
		json_t *d = json_deep_copy(o);
		json_object_update(d, json_object_get(md, meta[i]));
		json_object_set_new(md, meta[i], d);
	}
	json_object_set(md, "name", json_object_get(omd, "name"));
	json_object_del(md, "namespace");
	if (*obj_namespace(old))
		json_object_set(md, "namespace", json_object_get(omd, "namespace"));
	r->obj = obj;
	r->hash = r->hash && hash;
	json_decref(old);
}

static int
generate_one(const struct kust *k, const json_t *g, bool secret, struct kresmap *m,
    char **err)
{
	const char *name = obj_str(g, "name");
	if (!name[0]) {
		*err = xasprintf("%s: a %s needs a name", k->file,
		    secret ? "secretGenerator" : "configMapGenerator");
		return -EINVAL;
	}
	json_t *data = json_object(), *bin = json_object();
	int rc = gen_data(k, g, data, bin, err);
	if (rc < 0) {
		json_decref(data);
		json_decref(bin);
		return rc;
	}
	json_t *obj = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
	    secret ? "Secret" : "ConfigMap", "metadata", "name", name);
	const char *ns = obj_str(g, "namespace");
	if (ns[0])
		json_object_set_new(obj_metadata(obj), "namespace", json_string(ns));
	if (secret) {
		base64_values(data);
		json_object_update(data, bin);
		const char *type = obj_str(g, "type");
		json_object_set_new(obj, "type", json_string(type[0] ? type : "Opaque"));
	} else if (json_object_size(bin)) {
		json_object_set(obj, "binaryData", bin);
	}
	json_decref(bin);
	if (json_object_size(data))
		json_object_set_new(obj, "data", data);
	else
		json_decref(data);
	bool off = false;
	apply_options(obj, json_object_get(k->k, "generatorOptions"), &off);
	apply_options(obj, json_object_get(g, "options"), &off);
	bool hash = !off;
	const char *behavior = obj_str(g, "behavior");
	if (!behavior[0])
		behavior = "create";
	ssize_t at = find_existing(m, obj_kind(obj), name, ns);
	if (!strcmp(behavior, "create")) {
		if (at >= 0) {
			*err = xasprintf("%s: may not add resource with an already registered id: "
			    "%s/%s (use behavior: merge or replace)", k->file, obj_kind(obj), name);
			json_decref(obj);
			return -EEXIST;
		}
		kz_add(m, obj);
		m->v[m->n - 1].hash = hash;
		m->v[m->n - 1].generated = true;
		return 0;
	}
	if (strcmp(behavior, "merge") && strcmp(behavior, "replace")) {
		*err = xasprintf("%s: unknown generator behavior \"%s\"", k->file, behavior);
		json_decref(obj);
		return -EINVAL;
	}
	if (at < 0) {
		*err = xasprintf("%s: id %s/%s does not exist; cannot merge or replace", k->file,
		    obj_kind(obj), name);
		json_decref(obj);
		return -ENOENT;
	}
	combine(&m->v[at], obj, !strcmp(behavior, "merge"), hash);
	return 0;
}

int
kz_generate(const struct kust *k, struct kresmap *m, char **err)
{
	static const struct { const char *field; bool secret; } gens[] = {
		{ "configMapGenerator", false }, { "secretGenerator", true },
	};
	for (size_t gi = 0; gi < ARRAY_SIZE(gens); gi++) {
		size_t i;
		json_t *g;
		json_array_foreach(json_object_get(k->k, gens[gi].field), i, g) {
			int rc = generate_one(k, g, gens[gi].secret, m, err);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
