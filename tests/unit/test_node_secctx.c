/* test_node_secctx.c — the pure half of securityContext (node_secctx.c):
 * containerd's capability arithmetic, the pod / container merge, the
 * identity a container gets on a root and a non-root node, kubelet's
 * runAsNonRoot messages, the admission table per runtime, and the round
 * trip through spec.json. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node_secctx.h"
#include "obj.h"
#include "util.h"

#define ALL40		((UINT64_C(1) << 41) - 1)
#define DEFAULT_CAPS	UINT64_C(0xa80425fb)	/* Docker / containerd's, as /proc shows */
#define BIT(n)		(UINT64_C(1) << (n))

static json_t *
J(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s: %s", e.text, s);
	return j;
}

static uint64_t
caps_of(const char *csc)
{
	json_t *j = J(csc);
	uint64_t caps = 0;
	char *err = NULL;
	assert_int_equal(secctx_caps(j, ALL40, &caps, &err), 0);
	assert_null(err);
	json_decref(j);
	return caps;
}

static void
test_capability_sets(void **state)
{
	(void)state;
	assert_int_equal(secctx_cap_number("NET_BIND_SERVICE"), 10);
	assert_int_equal(secctx_cap_number("cap_sys_admin"), 21);
	assert_int_equal(secctx_cap_number("CHECKPOINT_RESTORE"), 40);
	assert_int_equal(secctx_cap_number("NOPE"), -1);
	assert_true(caps_of("{}") == DEFAULT_CAPS);
	assert_true(caps_of("{\"capabilities\":{\"drop\":[\"ALL\"]}}") == 0);
	/* drop ALL then add: only the added one (the common hardened form) */
	assert_true(caps_of("{\"capabilities\":{\"drop\":[\"ALL\"],\"add\":[\"NET_BIND_SERVICE\"]}}")
	    == BIT(10));
	/* a named drop wins over the same add */
	assert_true(caps_of("{\"capabilities\":{\"drop\":[\"KILL\"],\"add\":[\"KILL\",\"NET_ADMIN\"]}}")
	    == ((DEFAULT_CAPS & ~BIT(5)) | BIT(12)));
	assert_true(caps_of("{\"capabilities\":{\"add\":[\"ALL\"],\"drop\":[\"SYS_ADMIN\"]}}")
	    == (ALL40 & ~BIT(21)));
	assert_true(caps_of("{\"privileged\":true,\"capabilities\":{\"drop\":[\"ALL\"]}}") == ALL40);

	json_t *bad = J("{\"capabilities\":{\"add\":[\"NET_FLY\"]}}");
	uint64_t caps;
	char *err = NULL;
	assert_int_equal(secctx_caps(bad, ALL40, &caps, &err), -EINVAL);
	assert_string_equal(err, "unknown capability \"NET_FLY\" in securityContext.capabilities.add");
	free(err);
	json_decref(bad);
}

static void
test_merge_container_wins(void **state)
{
	(void)state;
	json_t *spec = J("{\"securityContext\":{\"runAsUser\":1000,\"runAsNonRoot\":true,"
	    "\"fsGroup\":7,\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}}");
	json_t *c = J("{\"name\":\"c\",\"securityContext\":{\"runAsUser\":65534,"
	    "\"readOnlyRootFilesystem\":true}}");
	json_t *m = secctx_merge(spec, c);
	assert_int_equal(json_integer_value(json_object_get(m, "runAsUser")), 65534);
	assert_true(json_is_true(json_object_get(m, "runAsNonRoot")));
	assert_true(json_is_true(json_object_get(m, "readOnlyRootFilesystem")));
	assert_non_null(json_object_get(m, "seccompProfile"));
	assert_null(json_object_get(m, "fsGroup"));	/* pod-only: not merged */
	json_decref(m);
	json_decref(spec);
	json_decref(c);
}

static json_t *
pod_with(const char *spec)
{
	char *s = xasprintf("{\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\","
	    "\"uid\":\"u-1\"},\"spec\":%s}", spec);
	json_t *p = J(s);
	free(s);
	return p;
}

static void
test_identity_on_a_root_node(void **state)
{
	(void)state;
	json_t *pod = pod_with("{\"securityContext\":{\"runAsUser\":65534,"
	    "\"supplementalGroups\":[10,20],\"fsGroup\":20},\"containers\":[{\"name\":\"c\","
	    "\"securityContext\":{\"allowPrivilegeEscalation\":false,\"capabilities\":"
	    "{\"drop\":[\"ALL\"],\"add\":[\"NET_BIND_SERVICE\"]}}}]}");
	const json_t *c = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	struct secctx s;
	char *err = NULL;
	assert_int_equal(secctx_build(pod, c, 0, 0, 40, &s, &err), 0);
	assert_true(s.set_ids && s.set_caps && s.pid_ns && s.ipc_ns && s.no_new_privs);
	assert_false(s.read_only_root);
	assert_int_equal(s.uid, 65534);
	assert_int_equal(s.gid, 0);		/* containerd: a uid without passwd entry */
	assert_int_equal(s.n_groups, 2);	/* fsGroup 20 is listed once */
	assert_int_equal(s.groups[0], 10);
	assert_int_equal(s.groups[1], 20);
	assert_true(s.cap_bounding == BIT(10) && s.cap_effective == BIT(10));
	/* non-root: ambient, or exec would clear them */
	assert_true(s.cap_ambient == BIT(10) && s.cap_inheritable == BIT(10));

	/* root in the container: no ambient set; hostPID / hostIPC: no namespace */
	json_t *root = pod_with("{\"hostPID\":true,\"hostIPC\":true,\"containers\":[{\"name\":\"c\"}]}");
	c = json_array_get(obj_get_path(root, "spec.containers"), 0);
	assert_int_equal(secctx_build(root, c, 0, 0, 40, &s, &err), 0);
	assert_int_equal(s.uid, 0);
	assert_true(s.cap_bounding == DEFAULT_CAPS && s.cap_ambient == 0 && s.cap_inheritable == 0);
	assert_false(s.pid_ns || s.ipc_ns || s.no_new_privs);

	/* the spec.json round trip the shim reads */
	json_t *j = secctx_to_json(&s);
	struct secctx back;
	assert_int_equal(secctx_from_json(j, &back), 0);
	assert_memory_equal(&s, &back, sizeof s);
	json_decref(j);
	json_decref(root);
	json_decref(pod);
}

static void
test_identity_on_a_non_root_node(void **state)
{
	(void)state;
	struct secctx s;
	char *err = NULL;
	json_t *pod = pod_with("{\"containers\":[{\"name\":\"c\",\"securityContext\":"
	    "{\"capabilities\":{\"drop\":[\"ALL\"]}}}]}");
	const json_t *c = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	assert_int_equal(secctx_build(pod, c, 1000, 1000, 40, &s, &err), 0);
	assert_false(s.set_ids || s.set_caps || s.pid_ns);
	assert_int_equal(s.uid, 1000);
	json_decref(pod);

	pod = pod_with("{\"containers\":[{\"name\":\"c\",\"securityContext\":"
	    "{\"runAsUser\":65534}}]}");
	c = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	assert_int_equal(secctx_build(pod, c, 1000, 1000, 40, &s, &err), -EPERM);
	assert_non_null(strstr(err, "securityContext.runAsUser"));
	assert_non_null(strstr(err, "not root"));
	free(err);
	json_decref(pod);
}

static void
test_run_as_non_root_messages(void **state)
{
	(void)state;
	json_t *pod = pod_with("{\"securityContext\":{\"runAsNonRoot\":true},"
	    "\"containers\":[{\"name\":\"c\"}]}");
	const json_t *c = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	char *m = secctx_check_non_root(pod, c, 0);
	assert_string_equal(m, "container has runAsNonRoot and image will run as root "
	    "(pod: \"web_prod(u-1)\", container: c)");
	free(m);
	assert_null(secctx_check_non_root(pod, c, 1000));	/* a non-root node's uid */
	json_decref(pod);

	pod = pod_with("{\"securityContext\":{\"runAsNonRoot\":true},\"containers\":"
	    "[{\"name\":\"c\",\"securityContext\":{\"runAsUser\":0}}]}");
	c = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	m = secctx_check_non_root(pod, c, 1000);
	assert_string_equal(m, "container's runAsUser breaks non-root policy "
	    "(pod: \"web_prod(u-1)\", container: c)");
	free(m);
	json_decref(pod);

	pod = pod_with("{\"containers\":[{\"name\":\"c\",\"securityContext\":"
	    "{\"runAsUser\":5,\"runAsNonRoot\":true}}]}");
	c = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	assert_null(secctx_check_non_root(pod, c, 0));
	json_decref(pod);
}

static void
admit(const char *spec, const char *runtime, const char *const *want_fields)
{
	json_t *s = J(spec);
	struct errlist errs = { 0 };
	secctx_admit(s, runtime, "spec", &errs);
	size_t n = 0;
	while (want_fields[n])
		n++;
	for (size_t i = 0; i < errs.n; i++)
		if (i >= n || strcmp(errs.v[i].field, want_fields[i]) != 0)
			fail_msg("%s: unexpected error %s: %s", runtime, errs.v[i].field,
			    errs.v[i].message);
	assert_int_equal(errs.n, n);
	errlist_free(&errs);
	json_decref(s);
}

static void
test_admission_table(void **state)
{
	(void)state;
	const char *spec = "{\"hostPID\":true,\"shareProcessNamespace\":true,"
	    "\"securityContext\":{\"runAsUser\":5,\"sysctls\":[{\"name\":\"a\",\"value\":\"1\"}],"
	    "\"seccompProfile\":{\"type\":\"Unconfined\"}},"
	    "\"initContainers\":[{\"name\":\"i\",\"securityContext\":{\"procMount\":\"Default\"}}],"
	    "\"containers\":[{\"name\":\"c\",\"securityContext\":{\"seccompProfile\":"
	    "{\"type\":\"Localhost\",\"localhostProfile\":\"x\"},\"capabilities\":{\"drop\":"
	    "[\"ALL\"]},\"seLinuxOptions\":{\"level\":\"s0\"}}}]}";
	const char *const process[] = {
		"spec.securityContext.sysctls", "spec.shareProcessNamespace",
		"spec.containers[0].securityContext.seccompProfile",
		"spec.containers[0].securityContext.seLinuxOptions", NULL,
	};
	admit(spec, "process", process);
	/* runc enforces hostPID and runs unconfined (seccomp Unconfined ok) in
	 * the host's user namespace with each container's own PID namespace */
	const char *const runc[] = {
		"spec.securityContext.sysctls", "spec.shareProcessNamespace",
		"spec.containers[0].securityContext.seccompProfile",
		"spec.containers[0].securityContext.seLinuxOptions", NULL,
	};
	admit(spec, "runc", runc);
	const char *const none[] = { NULL };
	admit("{\"hostUsers\":true,\"containers\":[{\"name\":\"c\"}]}", "process", none);
	/* a terminal: both runtimes give one (runc: --console-socket) */
	admit("{\"containers\":[{\"name\":\"c\",\"tty\":true}]}", "process", none);
	admit("{\"containers\":[{\"name\":\"c\",\"tty\":true}]}", "runc", none);
	admit("{\"containers\":[{\"name\":\"c\",\"tty\":false}]}", "runc", none);
	const char *const users[] = { "spec.hostUsers", NULL };
	admit("{\"hostUsers\":false,\"containers\":[{\"name\":\"c\"}]}", "process", users);

	const char *const esc[] = { "spec.containers[0].securityContext",
		"spec.containers[0].securityContext", NULL };
	admit("{\"containers\":[{\"name\":\"c\",\"securityContext\":{\"privileged\":true,"
	    "\"allowPrivilegeEscalation\":false,\"capabilities\":{\"add\":[\"SYS_ADMIN\"]}}}]}",
	    "process", esc);

	/* every row names a field of the schema, once per runtime */
	for (size_t i = 0; i < secctx_n_fields; i++) {
		const struct secctx_field *f = &secctx_fields[i];
		assert_true(f->process != SECCTX_VALUES || f->ok_values);
		assert_true(f->process == SECCTX_ENFORCED || f->why);
	}
}

static void
test_image_error(void **state)
{
	(void)state;
	json_t *c = J("{\"name\":\"web\",\"image\":\"nginx:1.25\"}");
	char *m = secctx_image_error(c);
	assert_non_null(strstr(m, "process runtime"));
	assert_non_null(strstr(m, "runtimeClassName: runc"));
	assert_non_null(strstr(m, "\"nginx:1.25\""));
	free(m);
	json_object_set_new(c, "command", J("[\"nginx\"]"));
	assert_null(secctx_image_error(c));
	json_decref(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capability_sets),
		cmocka_unit_test(test_merge_container_wins),
		cmocka_unit_test(test_identity_on_a_root_node),
		cmocka_unit_test(test_identity_on_a_non_root_node),
		cmocka_unit_test(test_run_as_non_root_messages),
		cmocka_unit_test(test_admission_table),
		cmocka_unit_test(test_image_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
