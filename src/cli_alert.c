/* cli_alert.c — `v6 get alerts|silences`, `v6 describe alert NAME|FINGERPRINT`
 * and `v6 silence create|ls|expire`: Alertmanager's alerts and silences
 * through the server's alerts.v6.dev API (alert_api.c), so the CLI talks
 * only to V6. get and describe hand alert resources here (cli_get.c,
 * cli_describe.c). */
#include "alert.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE "/apis/" ALERT_GROUP_VERSION

/* The resource words this file serves, singular and plural. */
static const struct {
	const char *word, *res;
} resources[] = {
	{ "alerts", "alerts" }, { "alert", "alerts" },
	{ "silences", "silences" }, { "silence", "silences" },
};

static const char *
resource_of(const char *arg, const char **name)
{
	size_t n = strcspn(arg, "/");
	*name = arg[n] == '/' ? arg + n + 1 : NULL;
	for (size_t i = 0; i < ARRAY_SIZE(resources); i++)
		if (strlen(resources[i].word) == n && !strncmp(arg, resources[i].word, n))
			return resources[i].res;
	return NULL;
}

bool
cli_alert_resource(const char *arg)
{
	const char *name;
	return resource_of(arg, &name) != NULL;
}

/* The alerts of -n NS (given), else of every namespace. */
static char *
alerts_path(const struct cli_opts *o, const char *name)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, BASE);
	if (cli_flag_given(o, "namespace") && !o->all_ns)
		buf_printf(&b, "/namespaces/%s", o->ns);
	buf_puts(&b, "/alerts");
	if (name)
		buf_printf(&b, "/%s", name);
	return buf_steal(&b);
}

static int
fetch(const char *path, json_t **out)
{
	return cli_get_json(path, out) < 0 ? 1 : 0;
}

static int
print_doc(const char *output, const json_t *doc)
{
	char *s = !strcmp(output, "json") ? cli_json_dump(doc) : cli_yaml_dump(doc);
	fputs(s, stdout);
	free(s);
	return 0;
}

static const char *
str(const json_t *o, const char *path)
{
	const char *s = obj_str_at(o, path);
	return *s ? s : "<none>";
}

/* Rows (arrays of strings) as kubectl prints tables: columns as wide as
 * their widest cell, three spaces apart, the last one unpadded. */
static void
print_table(const json_t *rows, bool header)
{
	size_t w[16] = { 0 }, i, j, ncol = json_array_size(json_array_get(rows, 0));
	const json_t *r, *c;
	json_array_foreach(rows, i, r)
		json_array_foreach(r, j, c)
			if (j < ARRAY_SIZE(w) && strlen(json_string_value(c)) > w[j])
				w[j] = strlen(json_string_value(c));
	json_array_foreach(rows, i, r) {
		if (i == 0 && !header)
			continue;
		json_array_foreach(r, j, c) {
			if (j + 1 < ncol && j < ARRAY_SIZE(w))
				printf("%-*s   ", (int)w[j], json_string_value(c));
			else
				printf("%s\n", json_string_value(c));
		}
	}
}

static void
row_add(json_t *rows, const char *const *cells, size_t n)
{
	json_t *r = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(r, json_string(cells[i] ? cells[i] : ""));
	json_array_append_new(rows, r);
}

/* "2026-12-07T09:33:13Z" from Alertmanager's times with milliseconds. */
static void
short_time(const char *ts, char *out, size_t len)
{
	size_t n = strcspn(ts, ".");
	snprintf(out, len, "%.*s%s", (int)n, ts, ts[n] ? "Z" : "");
}

static void
print_alerts(const struct cli_opts *o, const json_t *items, int64_t now)
{
	bool wide = o->output && !strcmp(o->output, "wide");
	const json_t *a;
	size_t i;
	json_t *rows = json_array();
	static const char *const head[] = { "ALERTNAME", "SEVERITY", "NAMESPACE", "TARGET",
		"STATE", "SINCE", "FINGERPRINT", "SUMMARY" };
	size_t ncol = wide ? 8 : 6;
	row_add(rows, head, ncol);
	json_array_foreach(items, i, a) {
		char since[32];
		cli_age(obj_str(a, "startsAt"), now, since);
		const char *cells[] = { str(a, "labels.alertname"), str(a, "labels.severity"),
			str(a, "labels.namespace"), *obj_str(a, "target") ? obj_str(a, "target") :
			"<none>", obj_str(a, "state"), since, obj_name(a),
			obj_str_at(a, "annotations.summary") };
		row_add(rows, cells, ncol);
	}
	print_table(rows, !o->no_headers);
	json_decref(rows);
}

static void
matchers_text(const json_t *ms, struct buf *b)
{
	const json_t *m;
	size_t i;
	json_array_foreach(ms, i, m) {
		bool eq = !json_is_false(json_object_get(m, "isEqual"));
		bool re = json_is_true(json_object_get(m, "isRegex"));
		buf_printf(b, "%s%s%s%s\"%s\"", i ? " " : "", obj_str(m, "name"), eq ? "" : "!",
		    re ? "=~" : "=", obj_str(m, "value"));
	}
}

/* Active and pending silences; expired ones too with --all. */
static void
print_silences(const struct cli_opts *o, const json_t *items)
{
	const json_t *s;
	size_t i;
	json_t *rows = json_array();
	static const char *const head[] = { "ID", "STATE", "ENDS", "CREATED BY", "MATCHERS",
		"COMMENT" };
	row_add(rows, head, 6);
	json_array_foreach(items, i, s) {
		if (!o->all && !strcmp(obj_str(s, "state"), "expired"))
			continue;
		struct buf b = BUF_INIT;
		char ends[40];
		matchers_text(json_object_get(s, "matchers"), &b);
		short_time(obj_str(s, "endsAt"), ends, sizeof ends);
		const char *cells[] = { obj_name(s), obj_str(s, "state"), ends,
			obj_str(s, "createdBy"), b.data ? b.data : "", obj_str(s, "comment") };
		row_add(rows, cells, 6);
		buf_free(&b);
	}
	if (json_array_size(rows) == 1)
		fprintf(stderr, "No silences%s\n", o->all ? "" : " active (--all shows expired "
		    "ones)");
	else
		print_table(rows, !o->no_headers);
	json_decref(rows);
}

int
cli_alert_get(struct cli_opts *o)
{
	const char *name = NULL, *res = resource_of(o->args[0], &name);
	json_t *doc = NULL;
	if (o->watch)
		return cli_err("--watch is not supported for %s: Alertmanager has no watch; "
		    "poll 'v6 get %s'", res, res);
	if (!name && o->nargs > 1)
		name = o->args[1];
	bool alerts = !strcmp(res, "alerts");
	char *path = alerts ? alerts_path(o, name) : xstrdup(BASE "/silences");
	int rc = fetch(path, &doc);
	free(path);
	if (rc)
		return rc;
	json_t *items = json_object_get(doc, "items");
	if (!alerts && name) {		/* one silence: filtered here */
		json_t *keep = json_array(), *s;
		size_t i;
		json_array_foreach(items, i, s)
			if (!strcmp(obj_name(s), name))
				json_array_append(keep, s);
		json_object_set_new(doc, "items", keep);
		items = keep;
		if (!json_array_size(keep)) {
			json_decref(doc);
			return cli_err("silence \"%s\" not found", name);
		}
	}
	if (o->output && (!strcmp(o->output, "json") || !strcmp(o->output, "yaml")))
		rc = print_doc(o->output, doc);
	else if (o->output && !strcmp(o->output, "name")) {
		const json_t *a;
		size_t i;
		json_array_foreach(items, i, a)
			printf("%s.%s/%s\n", res, ALERT_GROUP, obj_name(a));
	} else if (!alerts)
		print_silences(o, items);
	else if (json_array_size(items) == 0)
		fprintf(stderr, "No alerts firing\n");
	else
		print_alerts(o, items, time_now_ms());
	json_decref(doc);
	return rc;
}

/* ---- describe ------------------------------------------------------------ */

static void
print_map(const char *title, const json_t *m)
{
	const char *k;
	const json_t *v;
	bool first = true;
	printf("%-14s", title);
	json_object_foreach((json_t *)m, k, v) {
		if (!strcmp(k, ALERT_CAUSES_ANNOTATION))
			continue;	/* shown below as the table */
		printf("%s%s=%s\n", first ? "" : "              ", k, json_string_value(v) ?: "");
		first = false;
	}
	if (first)
		printf("<none>\n");
}

static void
describe_alert(const json_t *a, int64_t now)
{
	char since[32];
	const json_t *s, *c;
	size_t i;
	cli_age(obj_str(a, "startsAt"), now, since);
	printf("Name:         %s\n", obj_str_at(a, "labels.alertname"));
	printf("Fingerprint:  %s\n", obj_name(a));
	printf("Namespace:    %s\n", str(a, "labels.namespace"));
	printf("Target:       %s\n", *obj_str(a, "target") ? obj_str(a, "target") : "<none>");
	printf("State:        %s\n", obj_str(a, "state"));
	printf("Since:        %s (%s ago)\n", obj_str(a, "startsAt"), since);
	print_map("Labels:", json_object_get(a, "labels"));
	print_map("Annotations:", json_object_get(a, "annotations"));
	printf("Silences:     %s\n", json_array_size(json_object_get(a, "silences")) ? "" :
	    "<none>");
	json_array_foreach(json_object_get(a, "silences"), i, s) {
		struct buf b = BUF_INIT;
		matchers_text(json_object_get(s, "matchers"), &b);
		printf("  %s until %s by %s: %s (%s)\n", obj_name(s), obj_str(s, "endsAt"),
		    obj_str(s, "createdBy"), obj_str(s, "comment"), b.data ? b.data : "");
		buf_free(&b);
	}
	const json_t *n = json_object_get(a, "notifications");
	if (n)
		printf("Notified:     %s, %s at %s%s%s\n", obj_str(n, "status"),
		    obj_str(n, "handling"), obj_str(n, "lastNotified"),
		    json_object_get(n, "flapCount") ? ", flapping: fired " : "",
		    json_object_get(n, "flapCount") ? str(n, "annotations.v6_flapping") + 6 : "");
	const json_t *pc = json_object_get(a, "probableCause");
	printf("Probable Cause:%s\n", json_array_size(pc) ? "" : " <none found: V6 made no "
	    "change to the workloads its labels name in the hour before>");
	if (json_array_size(pc))
		printf("  %-20s  %-18s  %-28s  %s\n", "TIME", "CHANGE", "OBJECT", "DETAIL");
	json_array_foreach(pc, i, c) {
		printf("  %-20s  %-18s  %-28s  %s\n", obj_str(c, "time"), obj_str(c, "change"),
		    obj_str(c, "object"), obj_str(c, "detail"));
		printf("  %-20s  see: %s\n", "", obj_str(c, "ref"));
	}
}

int
cli_alert_describe(struct cli_opts *o)
{
	const char *name = NULL, *res = resource_of(o->args[0], &name);
	int rc = 0;
	if (strcmp(res, "alerts") != 0)
		return cli_err("describe: only alerts; list silences with 'v6 silence ls'");
	size_t first = name ? 0 : 1;
	if (!name && o->nargs < 2)
		return cli_err("usage: v6 describe alert NAME|FINGERPRINT");
	for (size_t i = first; i < o->nargs; i++) {
		const char *n = i == 0 ? name : o->args[i];
		char *path = alerts_path(o, n);
		json_t *doc = NULL, *a;
		size_t j;
		rc |= fetch(path, &doc);
		free(path);
		json_array_foreach(json_object_get(doc, "items"), j, a) {
			if (i > first || j)
				putchar('\n');
			describe_alert(a, time_now_ms());
		}
		json_decref(doc);
	}
	return rc;
}

/* ---- silence ------------------------------------------------------------- */

/* "name=value", "name!=value", "name=~re", "name!~re" (value may be quoted)
 * as Alertmanager's matcher; NULL when it is none of those. */
static json_t *
parse_matcher(const char *s)
{
	size_t n = strcspn(s, "=!~");
	if (n == 0 || !s[n])
		return NULL;
	const char *op = s + n;
	bool eq = true, re = false;
	if (!strncmp(op, "!=", 2))
		eq = false, op += 2;
	else if (!strncmp(op, "=~", 2))
		re = true, op += 2;
	else if (!strncmp(op, "!~", 2))
		eq = false, re = true, op += 2;
	else if (*op == '=')
		op += 1;
	else
		return NULL;
	char *name = xstrndup(s, n), *val = xstrdup(op);
	size_t vl = strlen(val);
	if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
		memmove(val, val + 1, vl - 2);
		val[vl - 2] = '\0';
	}
	json_t *m = json_pack("{s:s, s:s, s:b, s:b}", "name", name, "value", val, "isRegex", re,
	    "isEqual", eq);
	free(name);
	free(val);
	return m;
}

static int
silence_create(const struct cli_opts *o)
{
	enum cli_dry dry;
	if (cli_dry_run(o, &dry) < 0)
		return 1;
	json_t *ms = json_array();
	for (size_t i = 0; i < o->nmatchers + o->nargs - 1; i++) {
		const char *s = i < o->nmatchers ? o->matchers[i] : o->args[1 + i - o->nmatchers];
		json_t *m = parse_matcher(s);
		if (!m) {
			json_decref(ms);
			return cli_err("matcher \"%s\": expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX "
			    "or NAME!~REGEX", s);
		}
		json_array_append_new(ms, m);
	}
	if (!json_array_size(ms)) {
		json_decref(ms);
		return cli_err("at least one --matcher NAME=VALUE is required");
	}
	if (!o->comment || !*o->comment) {
		json_decref(ms);
		return cli_err("--comment is required: say why the alerts are silenced");
	}
	if (dry == CLI_DRY_CLIENT) {	/* no id: Alertmanager gives it */
		json_decref(ms);
		printf("silence.%s created%s\n", ALERT_GROUP, cli_dry_said[dry]);
		return 0;
	}
	const char *user = getenv("USER");
	json_t *body = json_pack("{s:o, s:s, s:s, s:s}", "matchers", ms, "duration",
	    o->duration ? o->duration : "1h", "comment", o->comment, "createdBy",
	    user ? user : "v6");
	struct cli_resp r = { 0 };
	int rc = cli_http("POST", dry ? BASE "/silences?dryRun=All" : BASE "/silences", NULL,
	    body, &r);
	json_decref(body);
	if (rc < 0)
		return 1;
	if (r.status != 201) {
		cli_print_error(&r, NULL);
		cli_resp_free(&r);
		return 1;
	}
	if (dry)
		printf("silence.%s created%s\n", ALERT_GROUP, cli_dry_said[dry]);
	else
		printf("silence.%s/%s created\n", ALERT_GROUP, obj_name(r.body));
	cli_resp_free(&r);
	return 0;
}

static int
silence_expire(const struct cli_opts *o)
{
	int rc = 0;
	enum cli_dry dry;
	if (o->nargs < 2)
		return cli_err("usage: v6 silence expire ID...");
	if (cli_dry_run(o, &dry) < 0)
		return 1;
	for (size_t i = 1; i < o->nargs; i++) {
		if (dry == CLI_DRY_CLIENT) {
			printf("silence.%s/%s expired%s\n", ALERT_GROUP, o->args[i],
			    cli_dry_said[dry]);
			continue;
		}
		char *path = xasprintf(BASE "/silences/%s%s", o->args[i],
		    dry ? "?dryRun=All" : "");
		struct cli_resp r = { 0 };
		if (cli_http("DELETE", path, NULL, NULL, &r) < 0)
			rc = 1;
		else if (r.status != 200) {
			cli_print_error(&r, NULL);
			rc = 1;
		} else
			printf("silence.%s/%s expired%s\n", ALERT_GROUP, o->args[i],
			    cli_dry_said[dry]);
		cli_resp_free(&r);
		free(path);
	}
	return rc;
}

int
cli_silence(struct cli_opts *o)
{
	if (o->nargs == 0)
		return cli_err("usage: v6 silence create|ls|expire (see 'v6 silence --help')");
	const char *sub = o->args[0];
	if (!strcmp(sub, "create") || !strcmp(sub, "add"))
		return silence_create(o);
	if (!strcmp(sub, "expire"))
		return silence_expire(o);
	if (!strcmp(sub, "ls") || !strcmp(sub, "list") || !strcmp(sub, "query")) {
		o->args[0] = "silences";
		return cli_alert_get(o);
	}
	return cli_err("unknown silence command \"%s\": create, ls or expire", sub);
}
