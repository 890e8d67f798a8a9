/* cli_env.c — environments (docs/environments.md): namespaces labelled
 * environment.v6.dev/name. `v6 env ls` shows each environment, its policy
 * and how its workloads differ from the others'; `v6 promote KIND/NAME
 * --from ENV --to ENV` copies the exact pod template (images pinned to the
 * digests the source runs) and the ConfigMaps it names into the target,
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

/* ---- v6 env ls ------------------------------------------------------------ */

static const char *
policy_of(const json_t *ns, char *out, size_t len)
{
	bool prod = !strcmp(env_of(ns), "prod") || !strcmp(env_of(ns), "production");
	const char *p = obj_annotation(ns, "environment.v6.dev/require-probes");
	const char *l = obj_annotation(ns, "environment.v6.dev/require-limits");
	const char *m = obj_annotation(ns, "environment.v6.dev/min-replicas");
	snprintf(out, len, "%s%s%s%s", (p ? !strcmp(p, "true") : prod) ? "probes," : "",
	    (l ? !strcmp(l, "true") : prod) ? "limits," : "",
	    m ? "replicas>=" : prod ? "replicas>=2" : "", m ? m : "");
	size_t n = strlen(out);
	if (n && out[n - 1] == ',')
		out[n - 1] = '\0';
	if (!*out)
		snprintf(out, len, "-");
	return out;
}

static int
env_ls(const struct cli_opts *o)
{
	(void)o;
	json_t *list = NULL, *ns, *images = json_object();
	size_t i;
	if (cli_get_json("/api/v1/namespaces?labelSelector=" ENV_LABEL, &list) < 0)
		return 1;
	json_t *items = json_object_get(list, "items");
	if (json_array_size(items) == 0) {
		printf("No environments: label namespaces with %s=dev|test|staging|prod|dr\n",
		    ENV_LABEL);
		json_decref(list);
		json_decref(images);
		return 0;
	}
	printf("%-12s %-16s %-28s %-14s %s\n", "ENVIRONMENT", "NAMESPACE", "POLICY",
	    "PROMOTE-FROM", "WORKLOADS");
	json_array_foreach(items, i, ns) {
		char pol[96], *path = xasprintf("/apis/apps/v1/namespaces/%s/deployments",
		    obj_name(ns));
		json_t *deps = NULL, *d;
		size_t j, n = 0;
		const char *from = obj_annotation(ns, ENV_FROM);
		for (size_t c = 0; !from && c < ARRAY_SIZE(chain); c++)
			if (!strcmp(env_of(ns), chain[c][0]))
				from = chain[c][1];
		if (cli_get_json(path, &deps) == 0)
			json_array_foreach(json_object_get(deps, "items"), j, d) {
				n++;
				json_t *row = json_object_get(images, obj_name(d));
				if (!row) {
					row = json_object();
					json_object_set_new(images, obj_name(d), row);
				}
				json_object_set_new(row, env_of(ns), json_string(obj_str_at(
				    json_array_get(obj_get_path(d, "spec.template.spec.containers"), 0),
				    "image")));
			}
		json_decref(deps);
		free(path);
		printf("%-12s %-16s %-28s %-14s %zu\n", env_of(ns), obj_name(ns),
		    policy_of(ns, pol, sizeof pol), from ? from : "-", n);
	}
	/* what differs: each Deployment's image per environment */
	printf("\n%-20s", "DEPLOYMENT");
	json_array_foreach(items, i, ns)
		printf(" %-36s", env_of(ns));
	printf(" %s\n", "SAME");
	const char *name;
	json_t *row;
	json_object_foreach(images, name, row) {
		printf("%-20s", name);
		const char *first = NULL;
		bool same = true;
		json_array_foreach(items, i, ns) {
			const char *img = json_string_value(json_object_get(row, env_of(ns)));
			printf(" %-36s", img ? img : "-");
			if (!img || (first && strcmp(first, img) != 0))
				same = false;
			if (!first)
				first = img;
		}
		printf(" %s\n", same ? "yes" : "no");
	}
	json_decref(images);
	json_decref(list);
	return 0;
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

/* Adds the name of each ConfigMap the pod template uses to names. */
static void
configmap_ref(const char *kind, json_t *holder, const char *field, void *names)
{
	if (!strcmp(kind, "ConfigMap"))
		json_object_set_new(names, json_string_value(json_object_get(holder, field)),
		    json_true());
}

/* PUTs (or POSTs) obj at path/name; prints what happened. */
static int
put_or_create(const char *coll, const char *name, json_t *obj, const char *what)
{
	struct cli_resp r = { 0 };
	char *path = xasprintf("%s/%s", coll, name);
	int rc = cli_http("GET", path, NULL, NULL, &r);
	bool exists = rc == 0 && r.status == 200;
	if (exists)
		json_object_set(obj_child(obj, "metadata"), "resourceVersion",
		    obj_get_path(r.body, "metadata.resourceVersion"));
	cli_resp_free(&r);
	if (rc == 0)
		rc = cli_http(exists ? "PUT" : "POST", exists ? path : coll, NULL, obj, &r);
	if (rc == 0 && r.status >= 300) {
		cli_print_error(&r, NULL);
		rc = -1;
	} else if (rc == 0) {
		printf("%s %s\n", what, exists ? "configured" : "created");
	}
	cli_resp_free(&r);
	free(path);
	return rc;
}

static int
promote(struct cli_opts *o)
{
	if (o->nargs != 1 || !strchr(o->args[0], '/') || !o->from || !o->to)
		return cli_err("usage: v6 promote KIND/NAME --from ENV --to ENV");
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
	bool wait = o->wait && strcmp(o->wait, "false") != 0;
	int64_t wms = wait ? cli_timeout_ms(o, 5 * 60 * 1000) : 0;
	int grc = wms < 0 ? -1 : cli_promote_git(k, tracked, tpl, obj_name(src), o->from, o->to,
	    wms > 0 ? time_mono_ms() + wms : 0, wait);
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
			if (put_or_create(coll, cm, copy, what) < 0)
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
	    sizeof ref)) < 0)
		rc = 1;
	free(coll);
	free(tpath);
	json_decref(target);
	if (rc == 0 && o->wait && strcmp(o->wait, "false") != 0 && cli_rollout_waits_for(k)) {
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
