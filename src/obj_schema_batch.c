/* obj_schema_batch.c — schemas, semantic checks and defaults of the batch/v1
 * kinds (Job, CronJob), as Kubernetes' batch validation and strategy: the
 * generated selector (manualSelector false), restartPolicy Never/OnFailure,
 * podFailurePolicy rules, the cron schedule and time zone (cron.c). The
 * table of kinds (obj_kind.c) points here. */
#include "cron.h"
#include "obj_schema.h"

#include <stdlib.h>
#include <string.h>

static void
check_nonneg(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_integer_value(v) > INT32_MAX)
		schema_err_invalid(errs, path, v, "must be less than or equal to %d", INT32_MAX);
	else if (json_integer_value(v) < 0)
		schema_err_invalid(errs, path, v, "must be greater than or equal to 0");
}

static void
check_positive(const json_t *v, const char *path, struct errlist *errs)
{
	if (json_integer_value(v) <= 0)
		schema_err_invalid(errs, path, v, "must be greater than 0");
}

static const char *const completion_modes[] = { "NonIndexed", "Indexed", NULL };
static const char *const pfp_actions[] = { "FailJob", "FailIndex", "Ignore", "Count", NULL };
static const char *const pfp_operators[] = { "In", "NotIn", NULL };
static const char *const replacement_policies[] = { "TerminatingOrFailed", "Failed", NULL };
static const char *const concurrency_policies[] = { "Allow", "Forbid", "Replace", NULL };

static const struct schema_field pfp_exit_codes[] = {
	F_STR("containerName"),
	F_STR("operator", .enums = pfp_operators, .flags = SF_REQUIRED),
	F_ARR("values", ST_INT, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field pfp_condition[] = {
	F_STR("type", .flags = SF_REQUIRED),
	F_STR("status"),
	F_END
};

static const struct schema_field pfp_rule[] = {
	F_STR("action", .enums = pfp_actions, .flags = SF_REQUIRED),
	F_OBJ("onExitCodes", pfp_exit_codes),
	F_AOBJ("onPodConditions", pfp_condition),
	F_END
};

static const struct schema_field pod_failure_policy[] = {
	F_AOBJ("rules", pfp_rule, .flags = SF_REQUIRED),
	F_END
};

/* The template's shape; restartPolicy is checked in job_validate_spec. */
static const struct schema_field job_spec[] = {
	F_INT("parallelism", .check = check_nonneg),
	F_INT("completions", .check = check_nonneg),
	F_INT("activeDeadlineSeconds", .check = check_positive),
	F_OBJ("podFailurePolicy", pod_failure_policy),
	F_UNSUP("successPolicy"),
	F_INT("backoffLimit", .check = check_nonneg),
	F_UNSUP("backoffLimitPerIndex"),
	F_UNSUP("maxFailedIndexes"),
	F_OBJ("selector", schema_label_selector),
	F_BOOL("manualSelector"),
	F_OBJ("template", schema_pod_template, .flags = SF_REQUIRED),
	F_INT("ttlSecondsAfterFinished", .check = check_nonneg),
	F_STR("completionMode", .enums = completion_modes),
	F_BOOL("suspend"),
	F_STR("podReplacementPolicy", .enums = replacement_policies),
	F_UNSUP("managedBy"),
	F_END
};

const struct schema_field schema_job[] = {
	F_OBJ("spec", job_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

static const struct schema_field job_template[] = {
	F_OBJ("metadata", schema_object_meta),
	F_OBJ("spec", job_spec, .flags = SF_REQUIRED),
	F_END
};

static const struct schema_field cronjob_spec[] = {
	F_STR("schedule", .flags = SF_REQUIRED),
	F_STR("timeZone"),
	F_INT("startingDeadlineSeconds", .check = check_nonneg),
	F_STR("concurrencyPolicy", .enums = concurrency_policies),
	F_BOOL("suspend"),
	F_OBJ("jobTemplate", job_template, .flags = SF_REQUIRED),
	F_INT("successfulJobsHistoryLimit", .check = check_nonneg),
	F_INT("failedJobsHistoryLimit", .check = check_nonneg),
	F_END
};

const struct schema_field schema_cronjob[] = {
	F_OBJ("spec", cronjob_spec, .flags = SF_REQUIRED),
	F_MAPA("status"),
	F_END
};

/* ---- the generated selector -------------------------------------------- */

/* generateSelector (pkg/registry/batch/job/strategy.go): the template gets
 * job-name and controller-uid labels under both the legacy and the
 * batch.kubernetes.io/ names (a label the user set stays: a conflict fails
 * validation), the selector matches batch.kubernetes.io/controller-uid.
 * Only with a uid (the API sets it before validating a create). */
void
batch_job_generate_selector(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	const char *uid = obj_uid(obj);
	if (!json_is_object(spec) || !*uid ||
	    json_is_true(json_object_get(spec, "manualSelector")))
		return;
	json_t *tmpl = obj_child(spec, "template");
	json_t *labels = obj_child(obj_child(tmpl, "metadata"), "labels");
	static const char *const name_keys[] = { "job-name", "batch.kubernetes.io/job-name" };
	static const char *const uid_keys[] = { "controller-uid",
		"batch.kubernetes.io/controller-uid" };
	for (size_t i = 0; i < 2; i++) {
		if (!json_object_get(labels, name_keys[i]))
			json_object_set_new(labels, name_keys[i], json_string(obj_name(obj)));
		if (!json_object_get(labels, uid_keys[i]))
			json_object_set_new(labels, uid_keys[i], json_string(uid));
	}
	json_t *ml = obj_child(obj_child(spec, "selector"), "matchLabels");
	if (!json_object_get(ml, uid_keys[1]))
		json_object_set_new(ml, uid_keys[1], json_string(uid));
}

/* ---- semantic checks ---------------------------------------------------- */

static void
validate_pod_failure_policy(const json_t *spec, const char *path, struct errlist *errs)
{
	const json_t *rules = obj_get_path(spec, "podFailurePolicy.rules"), *r;
	size_t i;
	const char *rp = json_string_value(obj_get_path(spec, "template.spec.restartPolicy"));
	if (rules && rp && strcmp(rp, "Never"))
		errlist_add(errs, "spec.template.spec.restartPolicy", "FieldValueInvalid",
		    "Invalid value: \"%s\": only \"Never\" is supported when podFailurePolicy "
		    "is specified", rp);
	json_array_foreach(rules, i, r) {
		char *p = xasprintf("%s.podFailurePolicy.rules[%zu]", path, i);
		const json_t *ec = json_object_get(r, "onExitCodes");
		const json_t *pc = json_object_get(r, "onPodConditions");
		if ((ec != NULL) == (json_array_size(pc) > 0))
			errlist_add(errs, p, "FieldValueInvalid", "specifying one of "
			    "OnExitCodes and OnPodConditions is required");
		const char *act = json_string_value(json_object_get(r, "action"));
		if (act && strcmp(act, "FailIndex") == 0)
			errlist_add(errs, p, "FieldValueInvalid", "action FailIndex needs "
			    "backoffLimitPerIndex, which V6 does not serve");
		const json_t *vals = json_object_get(ec, "values"), *v;
		size_t j;
		const char *op = json_string_value(json_object_get(ec, "operator"));
		json_array_foreach(vals, j, v)
			if (json_integer_value(v) == 0 && op && strcmp(op, "In") == 0)
				errlist_add(errs, p, "FieldValueInvalid", "Invalid value: 0: must "
				    "not be 0 for the In operator");
		free(p);
	}
}

static void
validate_job_spec(const json_t *spec, const char *path, struct errlist *errs)
{
	const json_t *rpv = obj_get_path(spec, "template.spec.restartPolicy");
	const char *rp = json_string_value(rpv);
	char *rpp = xasprintf("%s.template.spec.restartPolicy", path);
	if (!rp || (strcmp(rp, "Never") && strcmp(rp, "OnFailure")))
		errlist_add(errs, rpp, "FieldValueNotSupported", "Unsupported value: \"%s\": "
		    "supported values: \"OnFailure\", \"Never\"", rp ? rp : "Always");
	free(rpp);
	const char *mode = json_string_value(json_object_get(spec, "completionMode"));
	if (mode && strcmp(mode, "Indexed") == 0 && !json_is_integer(json_object_get(spec,
	    "completions")))
		errlist_add(errs, "spec.completions", "FieldValueRequired",
		    "Required value: when completion mode is Indexed");
	validate_pod_failure_policy(spec, path, errs);
}

/* The selector and labels as the create will store them: a selector the
 * user wrote with manualSelector unset must still be the generated one. */
void
batch_job_validate(const json_t *obj, struct errlist *errs)
{
	json_t *copy = json_deep_copy(obj);
	batch_job_generate_selector(copy);
	const json_t *spec = json_object_get(copy, "spec");
	validate_job_spec(spec, "spec", errs);
	const json_t *sel = json_object_get(spec, "selector");
	bool generated = !json_is_true(json_object_get(spec, "manualSelector"));
	if (generated && !*obj_uid(obj))
		;	/* checked on the server, which makes the selector (the CLI's check) */
	else if (!sel)
		errlist_add(errs, "spec.selector", "FieldValueRequired", "Required value");
	else if (!schema_selector_matches(sel, obj_get_path(spec, "template.metadata.labels")))
		schema_err_invalid(errs, "spec.template.metadata.labels",
		    obj_get_path(spec, "template.metadata.labels"),
		    "`selector` does not match template `labels`");
	json_decref(copy);
}

/* Kubernetes lets an update change only these spec fields; the template
 * is immutable (upstream lets a suspended Job change its scheduling
 * directives; V6 does not). Compared as stored: defaulted, with the
 * generated selector. */
void
batch_job_update(const json_t *old, const json_t *obj, struct errlist *errs)
{
	static const char *const mutable[] = { "parallelism", "activeDeadlineSeconds",
		"suspend", "ttlSecondsAfterFinished", "backoffLimit", "completions" };
	json_t *oa = json_deep_copy(old), *ob = json_deep_copy(obj);
	batch_job_defaults(oa);
	batch_job_defaults(ob);
	json_t *a = json_object_get(oa, "spec"), *b = json_object_get(ob, "spec");
	if (!json_equal(json_object_get(a, "template"), json_object_get(b, "template")))
		errlist_add(errs, "spec.template", "FieldValueInvalid", "Invalid value: "
		    "core.PodTemplateSpec{...}: field is immutable");
	json_object_del(a, "template");
	json_object_del(b, "template");
	for (size_t i = 0; i < ARRAY_SIZE(mutable); i++) {
		json_object_del(a, mutable[i]);
		json_object_del(b, mutable[i]);
	}
	if (!json_equal(a, b))
		errlist_add(errs, "spec", "FieldValueForbidden", "field is immutable");
	json_decref(oa);
	json_decref(ob);
}

static void
job_spec_defaults(json_t *spec)
{
	schema_default_int(spec, "parallelism", 1);
	schema_default_int(spec, "backoffLimit", 6);
	schema_default_str(spec, "completionMode", "NonIndexed");
	schema_default_str(spec, "podReplacementPolicy", "TerminatingOrFailed");
	if (!json_object_get(spec, "suspend"))
		json_object_set_new(spec, "suspend", json_false());
	if (!json_object_get(spec, "manualSelector"))
		json_object_set_new(spec, "manualSelector", json_false());
	pod_template_defaults(json_object_get(spec, "template"));
}

void
batch_job_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	bool had_completions = json_object_get(spec, "completions") != NULL;
	bool had_parallelism = json_object_get(spec, "parallelism") != NULL;
	/* SetDefaults_Job: both unset -> 1 and 1; only parallelism set ->
	 * completions stays nil (a work queue). */
	if (!had_completions && !had_parallelism)
		json_object_set_new(spec, "completions", json_integer(1));
	job_spec_defaults(spec);
	batch_job_generate_selector(obj);
}

void
batch_cronjob_validate(const json_t *obj, struct errlist *errs)
{
	const json_t *spec = json_object_get(obj, "spec");
	const json_t *sv = json_object_get(spec, "schedule");
	const char *s = json_string_value(sv), *err = NULL;
	struct cron c;
	if (s && cron_parse(s, &c, &err) < 0)
		schema_err_invalid(errs, "spec.schedule", sv, "unparseable schedule: %s", err);
	const json_t *tz = json_object_get(spec, "timeZone");
	if (json_is_string(tz) && !cron_zone_valid(json_string_value(tz)))
		schema_err_invalid(errs, "spec.timeZone", tz, "unknown time zone %s",
		    json_string_value(tz));
	const json_t *js = obj_get_path(spec, "jobTemplate.spec");
	if (js) {
		validate_job_spec(js, "spec.jobTemplate.spec", errs);
		if (json_is_true(json_object_get(js, "manualSelector")) &&
		    !schema_selector_matches(json_object_get(js, "selector"),
		    obj_get_path(js, "template.metadata.labels")))
			errlist_add(errs, "spec.jobTemplate.spec.selector", "FieldValueInvalid",
			    "`selector` does not match template `labels`");
	}
	if (strlen(obj_name(obj)) > 52)
		schema_err_invalid(errs, "metadata.name", json_object_get(obj_metadata(
		    (json_t *)obj), "name"), "must be no more than 52 characters");
}

void
batch_cronjob_defaults(json_t *obj)
{
	json_t *spec = json_object_get(obj, "spec");
	if (!json_is_object(spec))
		return;
	schema_default_str(spec, "concurrencyPolicy", "Allow");
	schema_default_int(spec, "successfulJobsHistoryLimit", 3);
	schema_default_int(spec, "failedJobsHistoryLimit", 1);
	if (!json_object_get(spec, "suspend"))
		json_object_set_new(spec, "suspend", json_false());
	/* The job template is defaulted as a Job is, but keeps completions and
	 * parallelism unset (upstream defaults them when the Job is made). */
	json_t *js = obj_get_path(spec, "jobTemplate.spec");
	if (json_is_object(js))
		pod_template_defaults(json_object_get(js, "template"));
}
