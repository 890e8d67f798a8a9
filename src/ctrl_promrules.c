/* ctrl_promrules.c — PrometheusRule objects delivered to a Prometheus, as
 * the Prometheus operator does: admission runs `promtool check rules` on
 * every group (promrules_admit, from api_objects.c); the controller writes
 * each selected object as a rule file DIR/NS_NAME.yaml (atomically), asks
 * the Prometheus at --prometheus-url to reload (debounced), reads back its
 * /api/v1/rules and writes on each object the annotation v6.io/rules-loaded
 * saying which Prometheus loaded it, or why not. Started by server.c. */
#include "ctrl.h"
#include "http.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROMTOOL_TIMEOUT_MS	10000
#define RELOAD_DEBOUNCE_MS	500
#define RELOAD_RETRY_MS		5000
#define RULES_ANNOTATION	"v6.io/rules-loaded"

extern char **environ;

/* ---- the rule file: what Prometheus reads ------------------------------ */

/* {"groups": [...]} for a PrometheusRule: JSON is YAML, so Prometheus and
 * promtool read it as is. expr as a string (the CRD's int-or-string);
 * partial_response_strategy is Thanos' and Prometheus refuses it. */
static json_t *
rule_file(const json_t *obj)
{
	json_t *groups = json_array(), *g;
	size_t i;
	json_array_foreach(obj_get_path(obj, "spec.groups"), i, g) {
		json_t *copy = json_deep_copy(g), *r;
		size_t j;
		json_object_del(copy, "partial_response_strategy");
		json_array_foreach(json_object_get(copy, "rules"), j, r) {
			json_t *e = json_object_get(r, "expr");
			if (json_is_integer(e))
				json_object_set_new(r, "expr", json_sprintf("%" JSON_INTEGER_FORMAT,
				    json_integer_value(e)));
		}
		if (!json_object_get(copy, "rules"))
			json_object_set_new(copy, "rules", json_array());
		json_array_append_new(groups, copy);
	}
	return json_pack("{s:o}", "groups", groups);
}

static char *
rule_file_text(const json_t *obj)
{
	json_t *f = rule_file(obj);
	char *s = json_dumps(f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(f);
	return s;
}

/* ---- admission: promtool check rules ----------------------------------- */

/* Runs promtool check rules on path, its output (stdout and stderr) in
 * *out. A synchronous, bounded call: the API's write path answers from
 * inside api_create, and promtool takes ~50 ms. Returns promtool's exit
 * status, or a negative errno (-ENOENT: no promtool, -ETIMEDOUT). */
static int
promtool_run(const char *path, char **out)
{
	char outpath[] = "/tmp/v6-promtool-XXXXXX";
	int fd = mkstemp(outpath);
	if (fd < 0)
		return -errno;
	char *argv[] = { "promtool", "check", "rules", (char *)path, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fd, 1);
	posix_spawn_file_actions_adddup2(&fa, fd, 2);
	pid_t pid;
	int rc = -posix_spawnp(&pid, "promtool", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fd);
	int64_t deadline = time_mono_ms() + PROMTOOL_TIMEOUT_MS;
	int st = 0;
	while (rc == 0) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid) {
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : -EIO;
			break;
		}
		if (w < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (time_mono_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			rc = -ETIMEDOUT;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	}
	size_t len = 0;
	if (file_read_all(outpath, out, &len) < 0)
		*out = xstrdup("");
	unlink(outpath);
	return rc;
}

/* Which field of a rule promtool's message is about. */
static const struct {
	const char *says, *field;
} msg_fields[] = {
	{ "could not parse expression", "expr" },
	{ "invalid recording rule name", "record" },
	{ "invalid label name", "labels" },
	{ "invalid annotation name", "annotations" },
	{ "template", "annotations" },
	{ "field 'for'", "for" },
	{ "keep_firing_for", "keep_firing_for" },
};

/* One line of promtool's output, "FILE: L:C: group "G", rule N, "X": MSG",
 * as an error at the rule's path (spec.groups[i].rules[N-1].expr). */
static void
promtool_line(const json_t *obj, const char *file, const char *line, struct errlist *errs)
{
	size_t flen = strlen(file);
	if (strncmp(line, file, flen) != 0 || strncmp(line + flen, ": ", 2) != 0)
		return;
	const char *msg = line + flen + 2;
	int l, c, n = 0;
	if (sscanf(msg, "%d:%d: %n", &l, &c, &n) == 2 && n > 0)
		msg += n;
	char *path = xstrdup("spec.groups");
	const char *gq = strstr(msg, "group \"");
	if (gq) {
		const char *name = gq + 7, *end = strchr(name, '"');
		const json_t *g;
		size_t i;
		json_array_foreach(obj_get_path(obj, "spec.groups"), i, g)
			if (end && strlen(obj_str(g, "name")) == (size_t)(end - name) &&
			    !strncmp(obj_str(g, "name"), name, (size_t)(end - name))) {
				free(path);
				path = xasprintf("spec.groups[%zu]", i);
				int rule;
				if (sscanf(end, "\", rule %d", &rule) == 1 && rule > 0) {
					char *p = xasprintf("%s.rules[%d]", path, rule - 1);
					free(path);
					path = p;
					for (size_t k = 0; k < ARRAY_SIZE(msg_fields); k++)
						if (strstr(msg, msg_fields[k].says)) {
							p = xasprintf("%s.%s", path, msg_fields[k].field);
							free(path);
							path = p;
							break;
						}
				}
				break;
			}
	}
	errlist_add(errs, path, "FieldValueInvalid", "promtool check rules: %s", msg);
	free(path);
}

int
promrules_admit(const json_t *obj, const json_t *old, struct errlist *errs)
{
	if (old && json_equal(obj_get_path(obj, "spec"), obj_get_path(old, "spec")))
		return 0;	/* metadata only (the controller's annotation) */
	char path[] = "/tmp/v6-promrule-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	if (fd < 0)
		return -errno;
	close(fd);
	char *text = rule_file_text(obj), *out = NULL;
	int rc = file_write_atomic(path, text, strlen(text), false);
	free(text);
	if (rc == 0)
		rc = promtool_run(path, &out);
	if (rc > 0) {
		size_t before = errs->n;
		char *save = NULL;
		for (char *ln = strtok_r(out, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save))
			promtool_line(obj, path, ln, errs);
		if (errs->n == before)
			errlist_add(errs, "spec.groups", "FieldValueInvalid",
			    "promtool check rules failed: %s", out);
		rc = -EINVAL;
	} else if (rc == -ENOENT) {
		log_warn("promrules", "promtool not found: PrometheusRule %s/%s accepted "
		    "unchecked", obj_namespace(obj), obj_name(obj));
		rc = 0;
	} else if (rc < 0) {
		errlist_add(errs, "spec.groups", "InternalError", "promtool check rules: %s",
		    strerror(-rc));
		rc = -EINVAL;
	}
	free(out);
	unlink(path);
	return rc;
}

/* ---- the controller: files, reload, what Prometheus loaded --------------- */

struct ctrl_promrules {
	struct ctrl *core;
	struct promrules_config cfg;	/* strings owned */
	struct selector *rule_sel, *ns_sel;
	struct sockaddr_storage addr;
	uv_timer_t timer;		/* the debounced reload */
	struct http_client_req *http;
	bool reloading, again;		/* a change came during a reload */
	json_t *written;		/* "NS/NAME" -> generation in its file */
	json_t *status;			/* "NS/NAME" -> the annotation's value */
	bool discovered;		/* cfg.url is the addon's Prometheus (no flag) */
};

/* Without --prometheus-url, the Prometheus of `v6 addon enable
 * observability` (the Service v6-system/prometheus) when there is one; it
 * is looked up before every reload, so it can come and go. */
static void
discover(struct ctrl_promrules *p)
{
	json_t *svc = NULL;
	const char *ip = NULL;
	if (store_get(ctrl_store(p->core), "services", "v6-system", "prometheus", &svc) == 0 &&
	    strcmp(json_string_value(json_object_get(obj_labels(svc),
	    "addon.v6.dev/name")) ?: "", "observability") == 0)
		ip = obj_str_at(svc, "spec.clusterIP");
	char *url = ip && *ip ? xasprintf("http://%s:9090", ip) : NULL;
	if (!url || !p->cfg.url || strcmp(url, p->cfg.url) != 0) {
		free((char *)p->cfg.url);
		p->cfg.url = url && http_client_parse_url(url, &p->addr, NULL, NULL) == 0 ? url :
		    NULL;
		if (p->cfg.url)
			log_info("promrules", "rules go to the addon's Prometheus at %s", url);
		else
			free(url);
	} else {
		free(url);
	}
	json_decref(svc);
}

static char *
file_path(const struct ctrl_promrules *p, const char *ns, const char *name)
{
	return xasprintf("%s/%s_%s.yaml", p->cfg.dir, ns, name);
}

static void reload_now(uv_timer_t *t);

static void
schedule_reload(struct ctrl_promrules *p, int64_t delay_ms)
{
	if (p->reloading) {
		p->again = true;
		return;
	}
	uv_timer_start(&p->timer, reload_now, (uint64_t)delay_ms, 0);
}

/* Is obj selected (ruleSelector on its labels, ruleNamespaceSelector on
 * its namespace's)? NULL when it is, else why not (static). */
static const char *
not_selected(struct ctrl_promrules *p, const json_t *obj)
{
	if (p->rule_sel && !selector_matches(p->rule_sel, obj_labels(obj)))
		return "not selected: labels do not match --prometheus-rule-selector";
	if (!p->ns_sel)
		return NULL;
	json_t *ns = NULL;
	store_get(ctrl_store(p->core), "namespaces", "", obj_namespace(obj), &ns);
	bool ok = ns && selector_matches(p->ns_sel, obj_labels(ns));
	json_decref(ns);
	return ok ? NULL : "not selected: namespace labels do not match "
	    "--prometheus-rule-namespace-selector";
}

/* Writes (or removes) the file of key; true when the file changed. */
static bool
sync_file(struct ctrl_promrules *p, const json_t *obj, bool want, const char *key)
{
	char *path = file_path(p, obj_namespace(obj), obj_name(obj));
	bool changed = false;
	if (!want) {
		changed = unlink(path) == 0;
		json_object_del(p->written, key);
	} else {
		char *text = rule_file_text(obj);
		size_t len = 0;
		char *cur = NULL;
		if (file_read_all(path, &cur, &len) < 0)
			cur = NULL;
		if (!cur || strcmp(cur, text) != 0) {
			int rc = file_write_atomic(path, text, strlen(text), true);
			if (rc == 0 && chmod(path, 0644) < 0)	/* Prometheus may be */
				rc = -errno;			/* another user */
			if (rc < 0)
				log_error("promrules", "writing %s: %s", path, strerror(-rc));
			changed = rc == 0;
		}
		json_object_set_new(p->written, key, json_integer(obj_int_at(obj,
		    "metadata.generation", 0)));
		free(cur);
		free(text);
	}
	free(path);
	return changed;
}

static int
promrules_decide(struct ctrl *c, const json_t *obj, int64_t now_ms, struct ctrl_writes *out)
{
	(void)now_ms;
	struct ctrl_promrules *p = ctrl_data(c);
	char key[512];
	snprintf(key, sizeof key, "%s/%s", obj_namespace(obj), obj_name(obj));
	bool exists = *obj_uid(obj) != '\0';
	const char *why = exists ? not_selected(p, obj) : "gone";
	if (sync_file(p, obj, why == NULL, key))
		schedule_reload(p, RELOAD_DEBOUNCE_MS);
	if (!exists) {
		json_object_del(p->status, key);
		return 0;
	}
	char *want = why ? xasprintf("no: %s", why) : NULL;
	const char *have = obj_annotation(obj, RULES_ANNOTATION);
	if (!want && json_is_string(json_object_get(p->status, key)))
		want = xstrdup(json_string_value(json_object_get(p->status, key)));
	if (want && (!have || strcmp(have, want) != 0)) {
		json_t *upd = json_deep_copy(obj);
		obj_set_annotation(upd, RULES_ANNOTATION, want);
		ctrl_writes_push(out, CTRL_UPDATE, NULL, upd, 0);
	}
	free(want);
	return 0;
}

/* Every written file gets the status st (a printf of the file's
 * basename), or for those Prometheus loaded, the Prometheus and when. */
static void
set_statuses(struct ctrl_promrules *p, const json_t *loaded, const char *fail)
{
	char now[32], *val;
	time_format_rfc3339(time(NULL), now);
	const char *key;
	json_t *gen;
	json_object_foreach(p->written, key, gen) {
		char file[600];
		snprintf(file, sizeof file, "%.*s_%s.yaml", (int)strcspn(key, "/"), key,
		    strchr(key, '/') + 1);
		if (fail)
			val = xasprintf("no: %s", fail);
		else if (!p->cfg.url)
			val = xasprintf("no: written to %s/%s; no --prometheus-url to load it",
			    p->cfg.dir, file);
		else if (json_object_get(loaded, file))
			val = xasprintf("prometheus %s at %s (generation %" JSON_INTEGER_FORMAT ")",
			    p->cfg.url, now, json_integer_value(gen));
		else
			val = xasprintf("no: %s did not load %s/%s after a reload (do its "
			    "rule_files include %s/*.yaml?)", p->cfg.url, p->cfg.dir, file,
			    p->cfg.dir);
		json_object_set_new(p->status, key, json_string(val));
		free(val);
		ctrl_enqueue_key(p->core, key);
	}
}

static void
reload_finish(struct ctrl_promrules *p, const json_t *loaded, const char *fail)
{
	p->http = NULL;
	p->reloading = false;
	set_statuses(p, loaded, fail);
	/* A failure is retried while there are rules to deliver. */
	if ((fail && json_object_size(p->written) > 0) || p->again) {
		p->again = false;
		schedule_reload(p, fail ? RELOAD_RETRY_MS : RELOAD_DEBOUNCE_MS);
	}
}

/* The rule files of /api/v1/rules, by basename: {"NS_NAME.yaml": true}. */
static void
on_rules(int rc, const struct http_response *res, void *arg)
{
	struct ctrl_promrules *p = arg;
	json_t *doc = rc == 0 && res->status == 200 ? json_loads(res->body, 0, NULL) : NULL;
	json_t *loaded = json_object(), *g;
	size_t i;
	json_array_foreach(obj_get_path(doc, "data.groups"), i, g) {
		const char *f = obj_str(g, "file"), *base = strrchr(f, '/');
		json_object_set_new(loaded, base ? base + 1 : f, json_true());
	}
	char *fail = doc ? NULL : xasprintf("reading %s/api/v1/rules failed: %s",
	    p->cfg.url, rc < 0 ? strerror(-rc) : "not a JSON answer");
	reload_finish(p, loaded, fail);
	free(fail);
	json_decref(loaded);
	json_decref(doc);
}

static void
request(struct ctrl_promrules *p, const char *method, const char *path, http_client_fn fn)
{
	struct http_client_opts o = { .method = method, .path = path,
		.host = p->cfg.url + strlen("http://"), .timeout_ms = 30000,
		.headers = "Accept: application/json\r\n" };
	http_client_request(api_loop(ctrl_api(p->core)), (struct sockaddr *)&p->addr, &o, fn,
	    p, &p->http);
}

static void
on_reloaded(int rc, const struct http_response *res, void *arg)
{
	struct ctrl_promrules *p = arg;
	if (rc == 0 && res->status == 200) {
		log_info("promrules", "%s reloaded its rules", p->cfg.url);
		request(p, "GET", "/api/v1/rules", on_rules);
		return;
	}
	char *fail = rc < 0 ? xasprintf("reload of %s failed: %s", p->cfg.url, strerror(-rc)) :
	    xasprintf("reload of %s failed: HTTP %d %.200s%s", p->cfg.url, res->status, res->body,
	    res->status == 403 ? " (start it with --web.enable-lifecycle)" : "");
	log_warn("promrules", "%s", fail);
	reload_finish(p, NULL, fail);
	free(fail);
}

static void
reload_now(uv_timer_t *t)
{
	struct ctrl_promrules *p = t->data;
	if (p->discovered)
		discover(p);
	if (!p->cfg.url) {
		set_statuses(p, NULL, NULL);
		return;
	}
	p->reloading = true;
	request(p, "POST", "/-/reload", on_reloaded);
}

/* Every PrometheusRule, and the keys of files left by objects deleted
 * while the server was away (NS_NAME.yaml: '_' is in no name). */
static void
promrules_seed(struct ctrl *c)
{
	struct ctrl_promrules *p = ctrl_data(c);
	json_t *items = NULL, *o;
	size_t i;
	if (store_list(ctrl_store(c), "monitoring.coreos.com/prometheusrules", NULL, &items,
	    NULL) == 0)
		json_array_foreach(items, i, o)
			ctrl_enqueue(c, obj_namespace(o), obj_name(o));
	json_decref(items);
	DIR *d = opendir(p->cfg.dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char *us = strchr(e->d_name, '_');
		if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0 || !us)
			continue;
		char *ns = xstrndup(e->d_name, (size_t)(us - e->d_name));
		char *name = xstrndup(us + 1, (size_t)(e->d_name + n - 5 - us - 1));
		ctrl_enqueue(c, ns, name);
		free(ns);
		free(name);
	}
	if (d)
		closedir(d);
}

/* Deleted ones too: their file goes. */
static void
promrules_on_rule(struct ctrl *c, enum store_event ev, const json_t *obj)
{
	(void)ev;
	ctrl_enqueue(c, obj_namespace(obj), obj_name(obj));
}

/* A namespace's labels changed: its rules may be (de)selected. */
static void
promrules_on_namespace(struct ctrl *c, enum store_event ev, const json_t *ns)
{
	(void)ev;
	ctrl_enqueue_selecting(c, obj_name(ns), NULL);
}

static const struct ctrl_desc promrules_desc = {
	.name = "promrules", .component = "promrules-controller",
	.api_version = "monitoring.coreos.com/v1", .kind = "PrometheusRule",
	.res = "monitoring.coreos.com/prometheusrules",
	.sources = {
		{ "monitoring.coreos.com/prometheusrules", promrules_on_rule },
		{ "namespaces", promrules_on_namespace },
	},
	.decide = promrules_decide, .seed = promrules_seed, .on_gone = true,
};

static void
free_cfg(struct promrules_config *c)
{
	free((char *)c->dir);
	free((char *)c->url);
	free((char *)c->rule_selector);
	free((char *)c->namespace_selector);
}

int
ctrl_promrules_start(struct api *api, const struct promrules_config *cfg,
    struct ctrl_promrules **out)
{
	struct ctrl_promrules *p = xcalloc(1, sizeof *p);
	char *err = NULL;
	int rc = -EINVAL;
	p->cfg.dir = xstrdup(cfg->dir);
	p->cfg.url = cfg->url ? xstrdup(cfg->url) : NULL;
	p->discovered = !cfg->url;
	p->cfg.rule_selector = cfg->rule_selector ? xstrdup(cfg->rule_selector) : NULL;
	p->cfg.namespace_selector = cfg->namespace_selector ?
	    xstrdup(cfg->namespace_selector) : NULL;
	p->written = json_object();
	p->status = json_object();
	if (p->cfg.url && http_client_parse_url(p->cfg.url, &p->addr, NULL, NULL) < 0) {
		log_error("promrules", "--prometheus-url %s: expected http://IP:PORT", p->cfg.url);
		goto fail;
	}
	if ((p->cfg.rule_selector && selector_parse(p->cfg.rule_selector, &p->rule_sel,
	    &err) < 0) || (p->cfg.namespace_selector &&
	    selector_parse(p->cfg.namespace_selector, &p->ns_sel, &err) < 0)) {
		log_error("promrules", "rule selector: %s", err ? err : "invalid");
		goto fail;
	}
	if (mkdir(p->cfg.dir, 0755) == 0)
		chmod(p->cfg.dir, 0755);	/* read by Prometheus, not the server's umask */
	else if (errno != EEXIST) {
		rc = -errno;
		log_error("promrules", "--prometheus-rules-dir %s: %s", p->cfg.dir, strerror(errno));
		goto fail;
	}
	uv_timer_init(api_loop(api), &p->timer);
	p->timer.data = p;
	if ((rc = ctrl_start(api, &promrules_desc, p, &p->core)) < 0) {
		ctrl_promrules_stop(p);
		return rc;
	}
	/* Once at start even when no file changes: the annotations then say
	 * what this Prometheus (maybe another than before) has loaded. */
	schedule_reload(p, RELOAD_DEBOUNCE_MS);
	log_info("promrules", "PrometheusRules go to %s%s%s", p->cfg.dir,
	    p->cfg.url ? ", reloading " : "", p->cfg.url ? p->cfg.url : "");
	*out = p;
	return 0;
fail:
	free(err);
	selector_free(p->rule_sel);
	selector_free(p->ns_sel);
	free_cfg(&p->cfg);
	json_decref(p->written);
	json_decref(p->status);
	free(p);
	return rc;
}

static void
timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void
ctrl_promrules_stop(struct ctrl_promrules *p)
{
	if (!p)
		return;
	if (p->core)
		ctrl_stop(p->core);
	http_client_cancel(p->http);
	selector_free(p->rule_sel);
	selector_free(p->ns_sel);
	free_cfg(&p->cfg);
	json_decref(p->written);
	json_decref(p->status);
	uv_close((uv_handle_t *)&p->timer, timer_closed);
}
