/* cli_env.c — environments (docs/environments.md): namespaces labelled
 * environment.v6.dev/name. `v6 env ls` shows each environment, its policy
 * and how its workloads differ from the others'; `v6 promote KIND/NAME
 * --from ENV --to ENV` copies the exact pod template (images pinned to the
 * digests the source runs) and the ConfigMaps it names into the target
 * (--dry-run: the diff it would make, nothing written or pushed),
 * whose own release strategy then rolls it out. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENV_LABEL	"environment.v6.dev/name"
#define ENV_FROM	"environment.v6.dev/promote-from"

/* The default promotion chain: each environment takes from the one before;
 * dr from prod. */
static const char *const chain[][2] = {
	{ "test", "dev" }, { "staging", "test" }, { "prod", "staging" }, { "dr", "prod" },
};

static const char *
env_of(const json_t *ns)
{
	return json_string_value(json_object_get(obj_labels(ns), ENV_LABEL)) ?: "";
}

/* The namespace of environment (labelled with it), else the namespace of
 * that name; NULL with the error printed. New reference. */
static json_t *
find_env(const char *env)
{
	json_t *list = NULL, *ns, *found = NULL;
	size_t i;
	char *path = xasprintf("/api/v1/namespaces?labelSelector=" ENV_LABEL "%%3D%s", env);
	if (cli_get_json(path, &list) < 0) {
		free(path);
		return NULL;
	}
	free(path);
	json_array_foreach(json_object_get(list, "items"), i, ns) {
		if (found) {
			cli_err("environment %s is the label of more than one namespace (%s, %s)",
			    env, obj_name(found), obj_name(ns));
			json_decref(found);
			json_decref(list);
			return NULL;
		}
		found = json_incref(ns);
	}
	json_decref(list);
	if (found)
		return found;
	path = xasprintf("/api/v1/namespaces/%s", env);
	struct cli_resp r = { 0 };
	if (cli_http("GET", path, NULL, NULL, &r) == 0 && r.status == 200)
		found = json_incref(r.body);
	else if (r.status == 404)
		cli_err("no environment %s: no namespace is labelled %s=%s and none is named so",
		    env, ENV_LABEL, env);
	cli_resp_free(&r);
	free(path);
	return found;
}

/* Whether target accepts a promotion from source (annotation, else the
 * default chain; a namespace outside the chain accepts any). */
static bool
may_promote(const json_t *src, const json_t *dst, char *why, size_t len)
{
	const char *from = env_of(src), *to = env_of(dst);
	const char *allowed = obj_annotation(dst, ENV_FROM);
	if (!*from)
		from = obj_name(src);
	if (allowed) {
		size_t n = strlen(from);
		for (const char *p = allowed; *p;) {
			p += strspn(p, " ,");
			size_t m = strcspn(p, " ,");
			if (m == n && !strncmp(p, from, n))
				return true;
			p += m;
		}
		snprintf(why, len, "namespace %s accepts promotions only from %s (annotation %s)",
		    obj_name(dst), allowed, ENV_FROM);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(chain); i++)
		if (!strcmp(to, chain[i][0])) {
			if (!strcmp(from, chain[i][1]))
				return true;
			snprintf(why, len, "environment %s takes promotions from %s, not %s "
			    "(set the annotation %s on namespace %s to change that)", to,
			    chain[i][1], from, ENV_FROM, obj_name(dst));
			return false;
		}
	return true;
}

/* Adds the name of each ConfigMap the pod template uses to names. */
static void
configmap_ref(const char *kind, json_t *holder, const char *field, void *names)
{
	if (!strcmp(kind, "ConfigMap"))
		json_object_set_new(names, json_string_value(json_object_get(holder, field)),
		    json_true());
}

/* ---- v6 env ls ------------------------------------------------------------ */

#define IMG_POLICY	"image-policy.v6.io/"

static void
policy_add(char *out, size_t len, const char *what)
{
	size_t n = strlen(out);
	snprintf(out + n, len - n, "%s%s", n ? "," : "", what);
}

/* The environment's own rules (api_policy.c: probes, limits, replicas). */
static const char *
policy_of(const json_t *ns, char *out, size_t len)
{
	bool prod = !strcmp(env_of(ns), "prod") || !strcmp(env_of(ns), "production");
	const char *p = obj_annotation(ns, "environment.v6.dev/require-probes");
	const char *l = obj_annotation(ns, "environment.v6.dev/require-limits");
	const char *m = obj_annotation(ns, "environment.v6.dev/min-replicas");
	char rep[64];
	*out = '\0';
	if (p ? !strcmp(p, "true") : prod)
		policy_add(out, len, "probes");
	if (l ? !strcmp(l, "true") : prod)
		policy_add(out, len, "limits");
	if (m || prod) {
		snprintf(rep, sizeof rep, "replicas>=%s", m ? m : "2");
		policy_add(out, len, rep);
	}
	return *out ? out : "-";
}

/* The namespace's image policy (api_policy.c's image-policy.v6.io/ rules):
 * the boolean rules set to true by name, the valued ones as name=value
 * (registries joined by '|'). */
static const char *
image_policy_of(const json_t *ns, char *out, size_t len)
{
	static const char *const flags[] = { "deny-latest", "require-digest",
		"require-run-as-non-root" };
	static const char *const valued[] = { "allowed-registries", "max-image-size" };
	char key[96];
	*out = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		snprintf(key, sizeof key, IMG_POLICY "%s", flags[i]);
		const char *v = obj_annotation(ns, key);
		if (v && !strcmp(v, "true"))
			policy_add(out, len, flags[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(valued); i++) {
		snprintf(key, sizeof key, IMG_POLICY "%s", valued[i]);
		const char *v = obj_annotation(ns, key);
		if (!v)
			continue;
		struct buf b = BUF_INIT;
		buf_printf(&b, "%s=", valued[i]);
		for (const char *q = v; *q;) {
			q += strspn(q, " ,");
			size_t n = strcspn(q, " ,");
			if (n)
				buf_printf(&b, "%s%.*s", b.data[b.len - 1] == '=' ? "" : "|", (int)n, q);
			q += n;
		}
		policy_add(out, len, b.data);
		buf_free(&b);
	}
	return *out ? out : "-";
}

/* The names of the objects of a namespaced collection ("a,b"), or "-". */
static char *
names_in(const char *ns, const char *plural)
{
	char *path = xasprintf("/api/v1/namespaces/%s/%s", ns, plural);
	json_t *list = NULL, *it;
	struct buf b = BUF_INIT;
	size_t i;
	if (cli_get_json(path, &list) == 0)
		json_array_foreach(json_object_get(list, "items"), i, it)
			buf_printf(&b, "%s%s", b.len ? "," : "", obj_name(it));
	json_decref(list);
	free(path);
	if (!b.len)
		buf_printf(&b, "-");
	return b.data;
}

/* One compared value: diffs[workload \t field][env] = value. */
static void
diff_set(json_t *diffs, const char *wl, const char *field, const char *env, const char *v)
{
	char *key = xasprintf("%s\t%s", wl, field);
	json_t *row = json_object_get(diffs, key);
	if (!row) {
		row = json_object();
		json_object_set_new(diffs, key, row);
	}
	json_object_set_new(row, env, json_string(v));
	free(key);
}

struct wl_ctx {
	json_t *diffs;
	const char *wl, *env, *ns;
	json_t *cms;	/* ConfigMap names the template uses */
};

/* What an env entry says: its value, or where the value comes from. */
static char *
env_value(const json_t *e)
{
	static const char *const srcs[][3] = {
		{ "configMapKeyRef", "name", "key" }, { "secretKeyRef", "name", "key" },
		{ "fieldRef", "fieldPath", NULL }, { "resourceFieldRef", "resource", NULL },
	};
	const json_t *from = json_object_get(e, "valueFrom");
	if (!from)
		return xstrdup(obj_str(e, "value"));
	for (size_t i = 0; i < ARRAY_SIZE(srcs); i++) {
		const json_t *s = json_object_get(from, srcs[i][0]);
		if (s)
			return srcs[i][2] ? xasprintf("%s:%s/%s", srcs[i][0], obj_str(s, srcs[i][1]),
			    obj_str(s, srcs[i][2])) : xasprintf("%s:%s", srcs[i][0],
			    obj_str(s, srcs[i][1]));
	}
	return xstrdup("valueFrom");
}

/* The fields of one workload that env ls compares: replicas, each
 * container's image and env, and the data of each ConfigMap it uses. */
static void
workload_fields(struct wl_ctx *x, const json_t *w)
{
	static const char *const lists[][2] = { { "initContainers", "init:" },
		{ "containers", "" } };
	const json_t *rep = obj_get_path(w, "spec.replicas");
	char num[32];
	snprintf(num, sizeof num, "%lld", rep ? (long long)json_integer_value(rep) : 1LL);
	diff_set(x->diffs, x->wl, "replicas", x->env, num);
	json_t *tpl = json_deep_copy(obj_get_path(w, "spec.template"));
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
		size_t i, j;
		json_t *c, *e;
		json_array_foreach(obj_get_path(tpl, "spec")
		    ? json_object_get(obj_get_path(tpl, "spec"), lists[l][0]) : NULL, i, c) {
			char *f = xasprintf("image[%s%s]", lists[l][1], obj_str(c, "name"));
			diff_set(x->diffs, x->wl, f, x->env, obj_str(c, "image"));
			free(f);
			json_array_foreach(json_object_get(c, "env"), j, e) {
				char *v = env_value(e);
				f = xasprintf("env[%s%s].%s", lists[l][1], obj_str(c, "name"),
				    obj_str(e, "name"));
				diff_set(x->diffs, x->wl, f, x->env, v);
				free(f);
				free(v);
			}
		}
	}
	json_object_clear(x->cms);
	cli_tpl_refs(tpl, configmap_ref, x->cms);
	json_decref(tpl);
	const char *cm;
	json_t *unused;
	json_object_foreach(x->cms, cm, unused) {
		char *p = xasprintf("/api/v1/namespaces/%s/configmaps/%s", x->ns, cm);
		struct cli_resp r = { 0 };
		char *f;
		if (cli_http("GET", p, NULL, NULL, &r) == 0 && r.status == 200) {
			const char *key;
			json_t *v;
			json_object_foreach(json_object_get(r.body, "data"), key, v) {
				f = xasprintf("configmap/%s[%s]", cm, key);
				diff_set(x->diffs, x->wl, f, x->env, json_string_value(v) ?: "");
				free(f);
			}
		} else {
			f = xasprintf("configmap/%s", cm);
			diff_set(x->diffs, x->wl, f, x->env, "(missing)");
			free(f);
		}
		cli_resp_free(&r);
		free(p);
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The workload kinds whose templates env ls compares. */
static const char *const wl_kinds[] = { "deployment", "statefulset", "rollout" };

static int
env_ls(const struct cli_opts *o)
{
	const char *out = o->output ? o->output : "";
	if (*out && strcmp(out, "json") && strcmp(out, "yaml"))
		return cli_err("v6 env ls: unknown output format %s (json or yaml)", out);
	json_t *list = NULL, *ns, *diffs = json_object(), *envs = json_array();
	size_t i;
	if (cli_get_json("/api/v1/namespaces?labelSelector=" ENV_LABEL, &list) < 0) {
		json_decref(diffs);
		json_decref(envs);
		return 1;
	}
	json_t *items = json_object_get(list, "items");
	struct wl_ctx x = { .diffs = diffs, .cms = json_object() };
	json_array_foreach(items, i, ns) {
		char pol[256], ipol[1024];
		const char *from = obj_annotation(ns, ENV_FROM);
		size_t n = 0;
		for (size_t c = 0; !from && c < ARRAY_SIZE(chain); c++)
			if (!strcmp(env_of(ns), chain[c][0]))
				from = chain[c][1];
		x.env = env_of(ns);
		x.ns = obj_name(ns);
		for (size_t k = 0; k < ARRAY_SIZE(wl_kinds); k++) {
			const struct kind *kd = cli_kind(wl_kinds[k]);
			char *path = kd ? cli_path(kd, obj_name(ns), NULL, NULL) : NULL;
			json_t *ws = NULL, *w;
			size_t j;
			if (path && cli_get_json(path, &ws) == 0)
				json_array_foreach(json_object_get(ws, "items"), j, w) {
					char ref[256];
					n++;
					x.wl = cli_obj_ref(kd, obj_name(w), ref, sizeof ref);
					workload_fields(&x, w);
				}
			json_decref(ws);
			free(path);
		}
		char *quota = names_in(obj_name(ns), "resourcequotas");
		char *lr = names_in(obj_name(ns), "limitranges");
		json_array_append_new(envs, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
		    "environment", env_of(ns), "namespace", obj_name(ns), "policy",
		    policy_of(ns, pol, sizeof pol), "imagePolicy",
		    image_policy_of(ns, ipol, sizeof ipol), "resourceQuota", quota,
		    "limitRange", lr, "promoteFrom", from ? from : "-", "workloads",
		    (json_int_t)n));
		free(quota);
		free(lr);
	}
	json_decref(x.cms);
	/* what differs: every compared field, per environment */
	size_t nk = json_object_size(diffs), k = 0;
	const char **keys = xcalloc(nk ? nk : 1, sizeof *keys);
	const char *key;
	json_t *row, *dl = json_array();
	json_object_foreach(diffs, key, row)
		keys[k++] = key;
	qsort(keys, nk, sizeof *keys, cmp_str);
	for (k = 0; k < nk; k++) {
		row = json_object_get(diffs, keys[k]);
		const char *first = NULL;
		bool same = true;
		/* the same in every environment that runs the workload (has its
		 * replicas row); "" stands for a field one of them lacks */
		size_t tab = strcspn(keys[k], "\t");
		char *rkey = xasprintf("%.*s\treplicas", (int)tab, keys[k]);
		const json_t *runs = json_object_get(diffs, rkey);
		free(rkey);
		json_array_foreach(items, i, ns) {
			if (!json_object_get(runs, env_of(ns)))
				continue;
			const char *v = json_string_value(json_object_get(row, env_of(ns)));
			if (!v)
				v = "";
			if (first && strcmp(first, v) != 0)
				same = false;
			if (!first)
				first = v;
		}
		json_t *d = json_pack("{s:s%, s:s, s:O, s:b}", "workload", keys[k], tab, "field",
		    keys[k] + tab + 1, "values", row, "same", same);
		json_array_append_new(dl, d);
	}
	free(keys);
	int rc = 0;
	if (*out) {
		json_t *doc = json_pack("{s:O, s:O}", "environments", envs, "differences", dl);
		char *s = !strcmp(out, "json") ? cli_json_dump(doc) : cli_yaml_dump(doc);
		fputs(s, stdout);
		free(s);
		json_decref(doc);
	} else if (json_array_size(envs) == 0) {
		printf("No environments: label namespaces with %s=dev|test|staging|prod|dr\n",
		    ENV_LABEL);
	} else {
		static const char *const cols[][2] = {
			{ "ENVIRONMENT", "environment" }, { "NAMESPACE", "namespace" },
			{ "POLICY", "policy" }, { "IMAGE-POLICY", "imagePolicy" },
			{ "QUOTA", "resourceQuota" }, { "LIMITRANGE", "limitRange" },
			{ "PROMOTE-FROM", "promoteFrom" },
		};
		json_t *rows = json_array(), *r = json_array(), *e;
		for (size_t c = 0; c < ARRAY_SIZE(cols); c++)
			json_array_append_new(r, json_string(cols[c][0]));
		json_array_append_new(r, json_string("WORKLOADS"));
		json_array_append_new(rows, r);
		json_array_foreach(envs, i, e) {
			char num[32];
			r = json_array();
			for (size_t c = 0; c < ARRAY_SIZE(cols); c++)
				json_array_append_new(r, json_string(obj_str(e, cols[c][1])));
			snprintf(num, sizeof num, "%lld", (long long)json_integer_value(
			    json_object_get(e, "workloads")));
			json_array_append_new(r, json_string(num));
			json_array_append_new(rows, r);
		}
		cli_print_rows(rows);
		json_decref(rows);
		if (json_array_size(dl)) {
			rows = json_array();
			r = json_pack("[s,s]", "WORKLOAD", "FIELD");
			json_array_foreach(items, i, ns)
				json_array_append_new(r, json_string(env_of(ns)));
			json_array_append_new(r, json_string("SAME"));
			json_array_append_new(rows, r);
			json_t *d;
			json_array_foreach(dl, i, d) {
				r = json_pack("[s,s]", obj_str(d, "workload"), obj_str(d, "field"));
				size_t j;
				json_array_foreach(items, j, ns) {
					const char *v = json_string_value(json_object_get(json_object_get(
					    d, "values"), env_of(ns)));
					char cell[48];
					/* long values (config files) cut; -o json has them whole */
					snprintf(cell, sizeof cell, "%.*s%s", (int)strcspn(v ? v : "-", "\n"),
					    v ? v : "-", v && strcspn(v, "\n") < strlen(v) ? "..." : "");
					if (strlen(cell) == sizeof cell - 1)
						memcpy(cell + sizeof cell - 4, "...", 3);
					json_array_append_new(r, json_string(cell));
				}
				json_array_append_new(r, json_string(json_is_true(json_object_get(d,
				    "same")) ? "yes" : "no"));
				json_array_append_new(rows, r);
			}
			putchar('\n');
			cli_print_rows(rows);
			json_decref(rows);
		}
	}
	json_decref(dl);
	json_decref(envs);
	json_decref(diffs);
	json_decref(list);
	return rc;
}

/* ---- v6 promote ---------------------------------------------------------------- */

/* The digest each container of the source runs: from a running pod of
 * the workload whose container runs the template's image. "" when none. */
static const char *
running_digest(const json_t *pods, const char *container, const char *image)
{
	size_t i, j;
	json_t *p, *cs;
	json_array_foreach(pods, i, p)
		json_array_foreach(obj_get_path(p, "status.containerStatuses"), j, cs) {
			const char *id = obj_str(cs, "imageID"), *at = strchr(id, '@');
			if (!strcmp(obj_str(cs, "name"), container) && !strcmp(obj_str(cs, "image"),
			    image) && at && json_is_true(json_object_get(cs, "ready")))
				return at + 1;
		}
	return "";
}

/* PUTs (or POSTs) obj at coll/name; prints what happened. A dry run
 * first prints the diff of field (a dotted path: what a promotion changes)
 * between the live object and obj, then writes nothing (client) or asks
 * the server to check the write without storing it (server). */
static int
put_or_create(const char *coll, const char *name, json_t *obj, const char *what,
    enum cli_dry dry, const char *field)
{
	struct cli_resp r = { 0 };
	char *path = xasprintf("%s/%s", coll, name);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	bool exists = rc == 0 && r.status == 200;
	if (exists)
		json_object_set(obj_child(obj, "metadata"), "resourceVersion",
		    obj_get_path(r.body, "metadata.resourceVersion"));
	if (rc == 0 && dry != CLI_DRY_NONE) {
		const json_t *was = exists ? obj_get_path(r.body, field) : NULL;
		const json_t *will = obj_get_path(obj, field);
		char *a = was ? cli_yaml_dump(was) : xstrdup("");
		char *b = will ? cli_yaml_dump(will) : xstrdup("");
		char *label = xasprintf("%s/%s", what, field);
		if (cli_text_diff(label, a, b) > 1)
			rc = -1;
		free(label);
		free(a);
		free(b);
	}
	cli_resp_free(&r);
	char *target = xasprintf("%s%s", exists ? path : coll, dry == CLI_DRY_SERVER ?
	    "?dryRun=All" : "");
	if (rc == 0 && dry != CLI_DRY_CLIENT)
		rc = cli_http(exists ? "PUT" : "POST", target, NULL, obj, &r);
	if (rc == 0 && dry != CLI_DRY_CLIENT && r.status >= 300) {
		cli_print_error(&r, NULL);
		rc = -1;
	} else if (rc == 0) {
		printf("%s %s%s\n", what, exists ? "configured" : "created", cli_dry_said[dry]);
	}
	cli_resp_free(&r);
	free(target);
	free(path);
	return rc;
}

static int
promote(struct cli_opts *o)
{
	if (o->nargs != 1 || !strchr(o->args[0], '/') || !o->from || !o->to)
		return cli_err("usage: v6 promote KIND/NAME --from ENV --to ENV "
		    "[--dry-run=client|server|none]");
	enum cli_dry dry;
	if (cli_dry_run(o, &dry) < 0)
		return 1;
	char *kname = xstrndup(o->args[0], strcspn(o->args[0], "/"));
	const char *name = strchr(o->args[0], '/') + 1;
	const struct kind *k = cli_kind(kname);
	free(kname);
	if (!k)
		return 1;
	if (strcmp(k->kind, "Deployment") && strcmp(k->kind, "StatefulSet") &&
	    strcmp(k->kind, "Rollout"))
		return cli_err("v6 promote takes a Deployment, StatefulSet or Rollout, not %s",
		    k->kind);
	json_t *src = find_env(o->from), *dst = src ? find_env(o->to) : NULL;
	char why[512];
	int rc = 1;
	json_t *from_obj = NULL, *pods = NULL, *cms = json_object();
	if (!src || !dst)
		goto out;
	if (!may_promote(src, dst, why, sizeof why)) {
		cli_err("cannot promote from %s to %s: %s", o->from, o->to, why);
		goto out;
	}
	char *path = cli_path(k, obj_name(src), name, NULL);
	if (cli_get_json(path, &from_obj) < 0) {
		free(path);
		goto out;
	}
	free(path);
	/* the exact template, images pinned to what the source runs */
	json_t *tpl = json_deep_copy(obj_get_path(from_obj, "spec.template"));
	char *sel = NULL;
	const json_t *ml = obj_get_path(from_obj, "spec.selector.matchLabels");
	struct buf q = BUF_INIT;
	const char *lk;
	json_t *lv;
	json_object_foreach((json_t *)ml, lk, lv)
		buf_printf(&q, "%s%s=%s", q.len ? "," : "", lk, json_string_value(lv));
	struct buf qs = BUF_INIT;
	cli_query_add(&qs, "labelSelector", q.data ? q.data : "");
	sel = xasprintf("/api/v1/namespaces/%s/pods?%s", obj_name(src), qs.data);
	buf_free(&q);
	buf_free(&qs);
	json_t *plist = NULL;
	if (cli_get_json(sel, &plist) == 0)
		pods = json_incref(json_object_get(plist, "items"));
	json_decref(plist);
	free(sel);
	size_t i;
	json_t *c;
	json_array_foreach(obj_get_path(tpl, "spec.containers"), i, c) {
		const char *img = obj_str(c, "image");
		const char *d = strchr(img, '@') ? "" : running_digest(pods, obj_str(c, "name"), img);
		if (*d) {
			char *pinned = xasprintf("%s@%s", img, d);
			printf("%s: %s pinned to %s\n", obj_str(c, "name"), img, d);
			json_object_set_new(c, "image", json_string(pinned));
			free(pinned);
		}
	}
	/* a target that an Application syncs is promoted through its git */
	char *tpath0 = cli_path(k, obj_name(dst), name, NULL);
	json_t *tracked = NULL;
	struct cli_resp r0 = { 0 };
	if (cli_http("GET", tpath0, NULL, NULL, &r0) == 0 && r0.status == 200)
		tracked = json_incref(r0.body);
	cli_resp_free(&r0);
	free(tpath0);
	bool wait = o->wait && strcmp(o->wait, "false") != 0 && dry == CLI_DRY_NONE;
	int64_t wms = wait ? cli_timeout_ms(o, 5 * 60 * 1000) : 0;
	int grc = wms < 0 ? -1 : cli_promote_git(k, tracked, tpl, obj_name(src), o->from, o->to,
	    wms > 0 ? time_mono_ms() + wms : 0, wait, dry != CLI_DRY_NONE);
	json_decref(tracked);
	if (grc != 1) {
		json_decref(tpl);
		rc = grc != 0;
		goto out;
	}
	/* the ConfigMaps it names, copied as they are in the source */
	cli_tpl_refs(tpl, configmap_ref, cms);
	const char *cm;
	json_t *unused;
	rc = 0;
	json_object_foreach(cms, cm, unused) {
		char *p = xasprintf("/api/v1/namespaces/%s/configmaps/%s", obj_name(src), cm);
		json_t *obj = NULL;
		if (cli_get_json(p, &obj) == 0) {
			json_t *labels = obj_labels(obj) ? json_incref(obj_labels(obj)) : json_object();
			json_t *copy = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}}", "apiVersion", "v1",
			    "kind", "ConfigMap", "metadata", "name", cm, "namespace", obj_name(dst),
			    "labels", labels);
			json_t *data = json_object_get(obj, "data");
			if (data)
				json_object_set(copy, "data", data);
			char *coll = xasprintf("/api/v1/namespaces/%s/configmaps", obj_name(dst));
			char *what = xasprintf("configmap/%s", cm);
			if (put_or_create(coll, cm, copy, what, dry, "data") < 0)
				rc = 1;
			free(coll);
			free(what);
			json_decref(copy);
		}
		json_decref(obj);
		free(p);
	}
	/* the target: its own replicas and strategy, the source's template */
	char *tpath = cli_path(k, obj_name(dst), name, NULL);
	json_t *target = NULL;
	struct cli_resp r = { 0 };
	if (rc == 0 && cli_http("GET", tpath, NULL, NULL, &r) == 0 && r.status == 200)
		target = json_deep_copy(r.body);
	cli_resp_free(&r);
	if (!target) {
		target = json_deep_copy(from_obj);
		json_t *m = json_pack("{s:s, s:s}", "name", name, "namespace", obj_name(dst));
		if (obj_labels(from_obj))
			json_object_set(m, "labels", obj_labels(from_obj));
		json_object_set_new(target, "metadata", m);
		json_object_del(target, "status");
	}
	json_object_set(json_object_get(target, "spec"), "template", tpl);
	json_decref(tpl);
	json_object_set_new(obj_child(obj_child(target, "metadata"), "annotations"),
	    "environment.v6.dev/promoted-from", json_string(obj_name(src)));
	char ref[256];
	char *coll = cli_path(k, obj_name(dst), NULL, NULL);
	if (rc == 0 && put_or_create(coll, name, target, cli_obj_ref(k, name, ref,
	    sizeof ref), dry, "spec.template") < 0)
		rc = 1;
	free(coll);
	free(tpath);
	json_decref(target);
	if (rc == 0 && wait && cli_rollout_waits_for(k)) {
		/* --timeout as apply --wait's: default 5m, 0 waits for ever */
		int64_t ms = cli_timeout_ms(o, 5 * 60 * 1000);
		rc = ms < 0 || cli_rollout_wait(k, obj_name(dst), name,
		    ms ? time_mono_ms() + ms : 0) != 0;
	}
out:
	json_decref(from_obj);
	json_decref(pods);
	json_decref(cms);
	json_decref(src);
	json_decref(dst);
	return rc;
}

int
cli_env(struct cli_opts *o)
{
	if (o->nargs >= 1 && (!strcmp(o->args[0], "ls") || !strcmp(o->args[0], "list")))
		return env_ls(o);
	return cli_err("v6 env needs a subcommand: ls");
}

int
cli_promote(struct cli_opts *o)
{
	return promote(o);
}
