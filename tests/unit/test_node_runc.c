/* test_node_runc.c — the runc container's config.json as a pure function:
 * Kubernetes' Entrypoint/Cmd/command/args rules, env order, working dir,
 * image user vs runAsUser/runAsGroup (names from the image's /etc/passwd),
 * runAsNonRoot refused as kubelet refuses it, capabilities add/drop over
 * containerd's defaults, privileged, readOnlyRootFilesystem, resources,
 * namespaces and mounts. Then the runtime with the real runc: a bundle over
 * a busybox layer run through the shim (node_runtime.c, BUILD/v6-shim):
 * exit code and CRI log, runAsUser, a read-only rootfs, OOMKilled,
 * `runc exec` into it, SIGKILL, and runc's state gone after each. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "node_runc.h"
#include "obj.h"
#include "util.h"

static json_t *
parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s (%s)", e.text, s);
	return j;
}

/* The pod around one container spec (JSON text). */
static json_t *
pod_with(const char *ctr, const char *pod_spec_extra)
{
	char *s = xasprintf("{\"metadata\": {\"name\": \"web\", \"namespace\": \"ns1\", "
	    "\"uid\": \"u-1\"}, \"spec\": {%s%s\"containers\": [%s]}}",
	    pod_spec_extra ? pod_spec_extra : "", pod_spec_extra ? ", " : "", ctr);
	json_t *j = parse(s);
	free(s);
	return j;
}

struct run {
	json_t *config;
	const char *reason;
	char *err;
	int rc;
};

static struct run
make(const struct img_config *img, const char *ctr, const char *pod_extra,
    char *const *env, char *const *layers)
{
	json_t *pod = pod_with(ctr, pod_extra);
	struct nrunc_in in = { .img = img, .layers = layers, .pod = pod,
		.cspec = json_array_get(obj_get_path(pod, "spec.containers"), 0), .env = env,
		.cgroups_path = "v6/u-1/app" };
	struct run r = { 0 };
	r.rc = nrunc_config(&in, &r.config, &r.reason, &r.err);
	json_decref(pod);
	return r;
}

static void
run_free(struct run *r)
{
	json_decref(r->config);
	free(r->err);
}

/* The JSON array at path, as one space-separated string. */
static char *
joined(const json_t *o, const char *path)
{
	json_t *a = obj_get_path(o, path);
	char *s = xstrdup("");
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x) {
		char *t = xasprintf("%s%s%s", s, i ? " " : "", json_string_value(x));
		free(s);
		s = t;
	}
	return s;
}

static void
assert_args(const struct img_config *img, const char *ctr, const char *want)
{
	struct run r = make(img, ctr, NULL, NULL, NULL);
	assert_int_equal(r.rc, 0);
	char *got = joined(r.config, "process.args");
	if (strcmp(got, want) != 0)
		fail_msg("%s: args \"%s\", want \"%s\"", ctr, got, want);
	free(got);
	run_free(&r);
}

static void
test_command_and_args_rules(void **state)
{
	(void)state;
	char *ep[] = { "/bin/server", "--flag", NULL }, *cmd[] = { "serve", "8080", NULL };
	struct img_config img = { .entrypoint = ep, .cmd = cmd };
	/* neither: Entrypoint + Cmd */
	assert_args(&img, "{\"name\": \"app\"}", "/bin/server --flag serve 8080");
	/* args only: Entrypoint + args (Cmd replaced) */
	assert_args(&img, "{\"name\": \"app\", \"args\": [\"x\"]}", "/bin/server --flag x");
	/* command only: Entrypoint replaced and Cmd dropped */
	assert_args(&img, "{\"name\": \"app\", \"command\": [\"/bin/sh\"]}", "/bin/sh");
	/* both */
	assert_args(&img, "{\"name\": \"app\", \"command\": [\"/bin/sh\"], \"args\": "
	    "[\"-c\", \"true\"]}", "/bin/sh -c true");
	/* Cmd alone (no Entrypoint) */
	struct img_config cmd_only = { .cmd = cmd };
	assert_args(&cmd_only, "{\"name\": \"app\"}", "serve 8080");
	assert_args(&cmd_only, "{\"name\": \"app\", \"args\": [\"a\"]}", "a");

	/* nothing to run at all */
	struct img_config empty = { 0 };
	struct run r = make(&empty, "{\"name\": \"app\"}", NULL, NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.reason, "CreateContainerError");
	assert_non_null(strstr(r.err, "no command specified"));
	run_free(&r);
}

static void
test_args_expand_container_env(void **state)
{
	(void)state;
	char *env[] = { "GREETING=hi", NULL };
	struct run r = make(NULL, "{\"name\": \"app\", \"command\": [\"echo\", "
	    "\"$(GREETING)\", \"$$(GREETING)\", \"$(NOPE)\"]}", NULL, env, NULL);
	assert_int_equal(r.rc, 0);
	char *got = joined(r.config, "process.args");
	assert_string_equal(got, "echo hi $(GREETING) $(NOPE)");
	free(got);
	run_free(&r);
}

static void
test_env_order_and_override(void **state)
{
	(void)state;
	char *ienv[] = { "PATH=/image/bin", "A=image", "B=image", NULL };
	char *penv[] = { "B=pod", "C=pod", NULL };
	struct img_config img = { .env = ienv, .cmd = (char *[]){ "x", NULL } };
	struct run r = make(&img, "{\"name\": \"app\"}", NULL, penv, NULL);
	assert_int_equal(r.rc, 0);
	char *got = joined(r.config, "process.env");
	assert_string_equal(got, "PATH=/image/bin HOSTNAME=web A=image B=pod C=pod");
	free(got);
	run_free(&r);
	/* an image without PATH gets the default one */
	struct img_config bare = { .cmd = (char *[]){ "x", NULL } };
	r = make(&bare, "{\"name\": \"app\"}", NULL, NULL, NULL);
	got = joined(r.config, "process.env");
	assert_string_equal(got, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
	    "/sbin:/bin HOSTNAME=web");
	free(got);
	run_free(&r);
}

static void
test_working_dir(void **state)
{
	(void)state;
	struct img_config img = { .cmd = (char *[]){ "x", NULL }, .working_dir = "/srv" };
	struct run r = make(&img, "{\"name\": \"app\"}", NULL, NULL, NULL);
	assert_string_equal(json_string_value(obj_get_path(r.config, "process.cwd")), "/srv");
	run_free(&r);
	r = make(&img, "{\"name\": \"app\", \"workingDir\": \"/data\"}", NULL, NULL, NULL);
	assert_string_equal(json_string_value(obj_get_path(r.config, "process.cwd")), "/data");
	run_free(&r);
	struct img_config none = { .cmd = (char *[]){ "x", NULL } };
	r = make(&none, "{\"name\": \"app\"}", NULL, NULL, NULL);
	assert_string_equal(json_string_value(obj_get_path(r.config, "process.cwd")), "/");
	run_free(&r);
}

/* A layer dir with etc/passwd and etc/group. */
static char *
make_layer(void)
{
	char tmpl[] = "/tmp/v6-runc-test-XXXXXX";
	char *d = xstrdup(mkdtemp(tmpl));
	char *etc = xasprintf("%s/etc", d), *pw = xasprintf("%s/passwd", etc);
	char *gr = xasprintf("%s/group", etc);
	mkdir(etc, 0755);
	const char *p = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/sh\n"
	    "app:x:1000:1000::/home/app:/bin/sh\n";
	const char *g = "root:x:0:\nstaff:x:50:\n";
	assert_int_equal(file_write_atomic(pw, p, strlen(p), false), 0);
	assert_int_equal(file_write_atomic(gr, g, strlen(g), false), 0);
	free(etc);
	free(pw);
	free(gr);
	return d;
}

static void
assert_user(const char *image_user, const char *ctr, const char *pod_extra,
    long long uid, long long gid)
{
	char *layer = make_layer();
	char *layers[] = { layer, NULL };
	struct img_config img = { .cmd = (char *[]){ "x", NULL }, .user = (char *)image_user };
	struct run r = make(&img, ctr, pod_extra, NULL, layers);
	if (r.rc != 0)
		fail_msg("user %s: %s", image_user, r.err);
	assert_int_equal(json_integer_value(obj_get_path(r.config, "process.user.uid")), uid);
	assert_int_equal(json_integer_value(obj_get_path(r.config, "process.user.gid")), gid);
	run_free(&r);
	util_remove_tree(layer);
	free(layer);
}

static void
test_user_rules(void **state)
{
	(void)state;
	const char *c = "{\"name\": \"app\"}";
	assert_user("", c, NULL, 0, 0);
	assert_user("33", c, NULL, 33, 34);		/* gid from passwd */
	assert_user("4242", c, NULL, 4242, 0);		/* unknown uid: gid 0 */
	assert_user("www", c, NULL, 33, 34);
	assert_user("app:staff", c, NULL, 1000, 50);
	assert_user("1000:7", c, NULL, 1000, 7);
	/* runAsUser wins over the image user; runAsGroup over its group */
	assert_user("www", "{\"name\": \"app\", \"securityContext\": {\"runAsUser\": 1000}}",
	    NULL, 1000, 1000);
	assert_user("www", "{\"name\": \"app\", \"securityContext\": {\"runAsUser\": 5, "
	    "\"runAsGroup\": 6}}", NULL, 5, 6);
	/* the pod's securityContext applies when the container's does not say */
	assert_user("", c, "\"securityContext\": {\"runAsUser\": 77, \"runAsGroup\": 78}",
	    77, 78);
	assert_user("", "{\"name\": \"app\", \"securityContext\": {\"runAsUser\": 9}}",
	    "\"securityContext\": {\"runAsUser\": 77}", 9, 0);

	/* a name the image does not know */
	struct img_config img = { .cmd = (char *[]){ "x", NULL }, .user = "nobody-here" };
	struct run r = make(&img, c, NULL, NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.reason, "CreateContainerConfigError");
	assert_non_null(strstr(r.err, "unable to find user nobody-here"));
	run_free(&r);
}

static void
test_run_as_non_root(void **state)
{
	(void)state;
	struct img_config root = { .cmd = (char *[]){ "x", NULL }, .user = "" };
	struct run r = make(&root, "{\"name\": \"app\", \"securityContext\": "
	    "{\"runAsNonRoot\": true}}", NULL, NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.reason, "CreateContainerConfigError");
	assert_string_equal(r.err, "container has runAsNonRoot and image will run as root "
	    "(pod: \"web_ns1(u-1)\", container: app)");
	run_free(&r);
	/* set at the pod level, image user "0:0" */
	struct img_config zero = { .cmd = (char *[]){ "x", NULL }, .user = "0:0" };
	r = make(&zero, "{\"name\": \"app\"}", "\"securityContext\": {\"runAsNonRoot\": true}",
	    NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	run_free(&r);
	/* a named image user cannot be verified */
	struct img_config named = { .cmd = (char *[]){ "x", NULL }, .user = "www" };
	r = make(&named, "{\"name\": \"app\", \"securityContext\": {\"runAsNonRoot\": true}}",
	    NULL, NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	assert_non_null(strstr(r.err, "image has non-numeric user (www)"));
	run_free(&r);
	/* runAsUser 0 breaks it; a non-zero runAsUser or image uid passes */
	r = make(&root, "{\"name\": \"app\", \"securityContext\": {\"runAsNonRoot\": true, "
	    "\"runAsUser\": 0}}", NULL, NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	assert_non_null(strstr(r.err, "runAsUser breaks non-root policy"));
	run_free(&r);
	r = make(&root, "{\"name\": \"app\", \"securityContext\": {\"runAsNonRoot\": true, "
	    "\"runAsUser\": 1000}}", NULL, NULL, NULL);
	assert_int_equal(r.rc, 0);
	run_free(&r);
	struct img_config nonroot = { .cmd = (char *[]){ "x", NULL }, .user = "1000" };
	r = make(&nonroot, "{\"name\": \"app\", \"securityContext\": {\"runAsNonRoot\": true}}",
	    NULL, NULL, NULL);
	assert_int_equal(r.rc, 0);
	run_free(&r);
}

static bool
has(const json_t *a, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x)
		if (strcmp(json_string_value(x), s) == 0)
			return true;
	return false;
}

static void
test_capabilities(void **state)
{
	(void)state;
	struct img_config img = { .cmd = (char *[]){ "x", NULL } };
	struct run r = make(&img, "{\"name\": \"app\"}", NULL, NULL, NULL);
	json_t *b = obj_get_path(r.config, "process.capabilities.bounding");
	assert_int_equal(json_array_size(b), 14);
	assert_true(has(b, "CAP_NET_BIND_SERVICE"));
	assert_false(has(b, "CAP_SYS_ADMIN"));
	assert_true(json_equal(b, obj_get_path(r.config, "process.capabilities.effective")));
	assert_null(obj_get_path(r.config, "process.capabilities.inheritable"));
	run_free(&r);

	r = make(&img, "{\"name\": \"app\", \"securityContext\": {\"capabilities\": "
	    "{\"add\": [\"NET_ADMIN\", \"CAP_SYS_TIME\"], \"drop\": [\"CHOWN\"]}}}",
	    NULL, NULL, NULL);
	b = obj_get_path(r.config, "process.capabilities.bounding");
	assert_int_equal(json_array_size(b), 15);
	assert_true(has(b, "CAP_NET_ADMIN"));
	assert_true(has(b, "CAP_SYS_TIME"));
	assert_false(has(b, "CAP_CHOWN"));
	run_free(&r);

	/* drop ALL then add one: just that one */
	r = make(&img, "{\"name\": \"app\", \"securityContext\": {\"capabilities\": "
	    "{\"add\": [\"NET_BIND_SERVICE\"], \"drop\": [\"ALL\"]}}}", NULL, NULL, NULL);
	b = obj_get_path(r.config, "process.capabilities.bounding");
	assert_int_equal(json_array_size(b), 1);
	assert_true(has(b, "CAP_NET_BIND_SERVICE"));
	run_free(&r);

	r = make(&img, "{\"name\": \"app\", \"securityContext\": {\"capabilities\": "
	    "{\"add\": [\"MAKE_COFFEE\"]}}}", NULL, NULL, NULL);
	assert_int_equal(r.rc, -EINVAL);
	assert_string_equal(r.reason, "CreateContainerError");
	assert_non_null(strstr(r.err, "MAKE_COFFEE"));
	run_free(&r);
}

static void
test_privileged_and_read_only(void **state)
{
	(void)state;
	struct img_config img = { .cmd = (char *[]){ "x", NULL } };
	struct run r = make(&img, "{\"name\": \"app\", \"securityContext\": {\"privileged\": "
	    "true}}", NULL, NULL, NULL);
	assert_true(json_array_size(obj_get_path(r.config, "process.capabilities.bounding"))
	    > 30);
	assert_null(obj_get_path(r.config, "linux.maskedPaths"));
	assert_true(json_is_true(json_object_get(json_array_get(obj_get_path(r.config, "linux.resources.devices"), 0), "allow")));
	assert_false(json_is_true(obj_get_path(r.config, "process.noNewPrivileges")));
	run_free(&r);

	r = make(&img, "{\"name\": \"app\", \"securityContext\": {\"readOnlyRootFilesystem\": "
	    "true, \"allowPrivilegeEscalation\": false}}", NULL, NULL, NULL);
	assert_true(json_is_true(obj_get_path(r.config, "root.readonly")));
	assert_string_equal(json_string_value(obj_get_path(r.config, "root.path")), "rootfs");
	assert_true(json_is_true(obj_get_path(r.config, "process.noNewPrivileges")));
	assert_true(has(obj_get_path(r.config, "linux.maskedPaths"), "/proc/kcore"));
	assert_false(json_is_true(json_object_get(json_array_get(obj_get_path(r.config, "linux.resources.devices"), 0), "allow")));
	run_free(&r);

	r = make(&img, "{\"name\": \"app\"}", NULL, NULL, NULL);
	assert_false(json_is_true(obj_get_path(r.config, "root.readonly")));
	assert_false(json_is_true(obj_get_path(r.config, "process.noNewPrivileges")));
	run_free(&r);
}

static void
test_resources_namespaces_mounts(void **state)
{
	(void)state;
	json_t *pod = pod_with("{\"name\": \"app\"}", "\"hostname\": \"h1\"");
	struct img_config img = { .cmd = (char *[]){ "x", NULL } };
	struct rt_mount vols[] = { { "/var/lib/v6/data", "/data", true },
		{ "/host/resolv", "/etc/resolv.conf", false } };
	struct nrunc_in in = { .img = &img, .pod = pod,
		.cspec = json_array_get(obj_get_path(pod, "spec.containers"), 0),
		.mounts = vols, .n_mounts = 2, .etc_dir = "/state/pods/u-1/etc",
		.netns_path = "/run/netns/p1", .ipc_path = "/state/pods/u-1/ipc",
		.shm_dir = "/state/pods/u-1/shm", .cgroups_path = "v6/u-1/app",
		.memory_limit = 64 << 20, .cpu_limit_millis = 250, .cpu_request_millis = 100,
		.pids_limit = 50 };
	json_t *c = NULL;
	const char *reason;
	char *err = NULL;
	assert_int_equal(nrunc_config(&in, &c, &reason, &err), 0);
	assert_int_equal(json_integer_value(obj_get_path(c, "linux.resources.memory.limit")),
	    64 << 20);
	assert_int_equal(json_integer_value(obj_get_path(c, "linux.resources.cpu.quota")),
	    25000);
	assert_int_equal(json_integer_value(obj_get_path(c, "linux.resources.cpu.period")),
	    100000);
	assert_int_equal(json_integer_value(obj_get_path(c, "linux.resources.cpu.shares")),
	    102);
	assert_int_equal(json_integer_value(obj_get_path(c, "linux.resources.pids.limit")), 50);
	assert_string_equal(json_string_value(obj_get_path(c, "linux.cgroupsPath")),
	    "v6/u-1/app");
	assert_string_equal(json_string_value(obj_get_path(c, "hostname")), "h1");
	char *ns = xstrdup("");
	size_t i;
	json_t *x;
	json_array_foreach(obj_get_path(c, "linux.namespaces"), i, x) {
		char *t = xasprintf("%s %s%s%s", ns, json_string_value(json_object_get(x, "type")),
		    json_object_get(x, "path") ? "=" : "", json_string_value(json_object_get(x,
		    "path")) ?: "");
		free(ns);
		ns = t;
	}
	assert_string_equal(ns, " pid ipc=/state/pods/u-1/ipc uts mount network=/run/netns/p1");
	free(ns);
	/* /etc/hosts and /etc/hostname from the pod's dir; the volume at
	 * /etc/resolv.conf replaces the pod's file; the volume is read-only */
	int hosts = 0, resolv = 0, data = 0, shm = 0;
	json_array_foreach(obj_get_path(c, "mounts"), i, x) {
		const char *d = json_string_value(json_object_get(x, "destination"));
		const char *s = json_string_value(json_object_get(x, "source"));
		if (strcmp(d, "/dev/shm") == 0) {	/* the pod's, shared */
			shm++;
			assert_string_equal(s, "/state/pods/u-1/shm");
			assert_true(has(json_object_get(x, "options"), "rbind"));
			assert_true(has(json_object_get(x, "options"), "nodev"));
		}
		if (strcmp(d, "/etc/hosts") == 0 && strcmp(s, "/state/pods/u-1/etc/hosts") == 0)
			hosts++;
		if (strcmp(d, "/etc/resolv.conf") == 0) {
			resolv++;
			assert_string_equal(s, "/host/resolv");
		}
		if (strcmp(d, "/data") == 0) {
			data++;
			assert_true(has(json_object_get(x, "options"), "ro"));
		}
	}
	assert_int_equal(hosts, 1);
	assert_int_equal(resolv, 1);
	assert_int_equal(data, 1);
	assert_int_equal(shm, 1);
	json_decref(c);
	json_decref(pod);

	/* hostIPC: no ipc namespace, the host's /dev/shm, even with the pod's */
	pod = pod_with("{\"name\": \"app\"}", "\"hostIPC\": true");
	in.pod = pod;
	in.cspec = json_array_get(obj_get_path(pod, "spec.containers"), 0);
	assert_int_equal(nrunc_config(&in, &c, &reason, &err), 0);
	json_array_foreach(obj_get_path(c, "linux.namespaces"), i, x)
		assert_string_not_equal(json_string_value(json_object_get(x, "type")), "ipc");
	json_array_foreach(obj_get_path(c, "mounts"), i, x)
		if (strcmp(json_string_value(json_object_get(x, "destination")), "/dev/shm") == 0)
			assert_string_equal(json_string_value(json_object_get(x, "source")),
			    "/dev/shm");
	json_decref(c);
	json_decref(pod);

	/* hostNetwork: no network or uts namespace; no limits: cpu.shares 2 */
	struct run r = make(&img, "{\"name\": \"app\"}", "\"hostNetwork\": true", NULL, NULL);
	json_array_foreach(obj_get_path(r.config, "linux.namespaces"), i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		assert_true(strcmp(t, "network") != 0 && strcmp(t, "uts") != 0);
	}
	assert_int_equal(json_integer_value(obj_get_path(r.config,
	    "linux.resources.cpu.shares")), 2);
	assert_null(obj_get_path(r.config, "linux.resources.memory"));
	run_free(&r);
	/* no pod network: the host's network (its own uts), as a process pod */
	r = make(&img, "{\"name\": \"app\"}", NULL, NULL, NULL);
	json_t *nss = obj_get_path(r.config, "linux.namespaces");
	assert_int_equal(json_array_size(nss), 4);
	json_array_foreach(nss, i, x)
		assert_string_not_equal(json_string_value(json_object_get(x, "type")), "network");
	run_free(&r);
}

static void
test_pod_files(void **state)
{
	(void)state;
	json_t *pod = pod_with("{\"name\": \"app\"}", "\"hostAliases\": [{\"ip\": \"10.1.2.3\", "
	    "\"hostnames\": [\"db\", \"db.local\"]}]");
	json_t *f = nrunc_pod_files(pod, "10.88.0.7");
	const char *hosts = json_string_value(json_object_get(f, "hosts"));
	assert_non_null(strstr(hosts, "127.0.0.1\tlocalhost\n"));
	assert_non_null(strstr(hosts, "10.88.0.7\tweb\n"));
	assert_non_null(strstr(hosts, "10.1.2.3\tdb db.local\n"));
	assert_string_equal(json_string_value(json_object_get(f, "hostname")), "web\n");
	assert_non_null(json_object_get(f, "resolv.conf"));
	json_decref(f);
	json_decref(pod);
	char *id = nrunc_id("u-1", "app", 3);
	assert_string_equal(id, "u-1-app-3");
	free(id);
}

/* ---- the runtime, with the real runc ------------------------------------ */

struct fx {
	char dir[64];
	char *layer;
	uv_loop_t loop;
	struct rt *rt;
};

struct done {
	bool called;
	struct rt_status st;
};

static int run_id;

static char *
shell(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = xvasprintf(fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	buf[n] = '\0';
	if (f)
		pclose(f);
	free(cmd);
	return xstrdup(buf);
}

static int
rt_setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof *fx);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	assert_true(n > 0);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';		/* BUILD/unit */
	*strrchr(self, '/') = '\0';		/* BUILD: rt finds BUILD/v6-shim */
	char *exe = xasprintf("%s/v6", self);
	snprintf(fx->dir, sizeof fx->dir, "/tmp/v6-runc-test.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	/* one layer: busybox and its applets, an /etc/passwd */
	fx->layer = xasprintf("%s/layer", fx->dir);
	free(shell("mkdir -p %s/bin %s/etc %s/tmp && cp /bin/busybox %s/bin/ && "
	    "for a in sh id cat echo sleep touch dd; do ln -s busybox %s/bin/$a; done && "
	    "echo 'root:x:0:0:root:/root:/bin/sh' > %s/etc/passwd", fx->layer, fx->layer,
	    fx->layer, fx->layer, fx->layer, fx->layer));
	uv_loop_init(&fx->loop);
	assert_int_equal(rt_open(&fx->loop, fx->dir, exe, &fx->rt), 0);
	free(exe);
	run_id = (int)getpid();
	*state = fx;
	return 0;
}

static int
rt_teardown(void **state)
{
	struct fx *fx = *state;
	char *left = shell("runc --root %s/runc list -q", fx->dir);
	for (char *id = strtok(left, "\n"); id; id = strtok(NULL, "\n"))
		free(shell("runc --root %s/runc delete -f %s", fx->dir, id));
	free(left);
	char *root = xasprintf("%s/containers", fx->dir);
	free(shell("ls %s", root));
	char *uids = shell("ls %s", root);
	for (char *u = strtok(uids, "\n"); u; u = strtok(NULL, "\n"))
		rt_remove_pod(fx->rt, u);
	free(uids);
	free(root);
	rt_close(fx->rt);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	if (!getenv("V6_TEST_DEBUG"))
		util_remove_tree(fx->dir);
	free(fx->layer);
	free(fx);
	return 0;
}

static void
on_exit_cb(void *arg, struct rt_ctr *c, const struct rt_status *st)
{
	struct done *d = arg;
	(void)c;
	d->called = true;
	d->st = *st;
}

static void
on_deadline(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

static void
run_until(struct fx *fx, const bool *flag, int ms)
{
	uv_timer_t t;
	bool expired = false;
	uv_timer_init(&fx->loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_deadline, (uint64_t)ms, 0);
	while (!*flag && !expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* Starts container ctr (JSON) of a pod over the busybox layer. */
static struct rt_ctr *
start_runc(struct fx *fx, const char *uid_name, const char *ctr, int64_t memory,
    struct done *d)
{
	char *uid = xasprintf("%s-%d", uid_name, run_id);
	char *pod_json = xasprintf("{\"metadata\": {\"name\": \"web\", \"namespace\": "
	    "\"default\", \"uid\": \"%s\"}, \"spec\": {\"containers\": [%s]}}", uid, ctr);
	json_t *pod = parse(pod_json);
	char *layers[] = { fx->layer, NULL };
	char *cg = xasprintf("v6/%s/app", uid), *etc = xasprintf("%s/pods/%s/etc", fx->dir, uid);
	struct nrunc_in in = { .layers = layers, .pod = pod,
		.cspec = json_array_get(obj_get_path(pod, "spec.containers"), 0),
		.cgroups_path = cg, .etc_dir = etc, .memory_limit = memory,
		.env = (char *[]){ "X=y", NULL } };
	json_t *config = NULL;
	const char *reason;
	char *err = NULL;
	assert_int_equal(nrunc_config(&in, &config, &reason, &err), 0);
	char *text = json_dumps(config, JSON_COMPACT);
	if (getenv("V6_TEST_DEBUG"))
		print_message("%s\n", text);
	json_t *files = nrunc_pod_files(pod, "");
	struct rt_runc r = { .config = text, .layers = layers, .etc_dir = etc,
		.etc_files = files };
	struct rt_spec spec = { .pod_uid = uid, .pod_namespace = "default", .pod_name = "web",
		.name = "app", .memory_limit = memory, .runc = &r };
	struct rt_ctr *c = NULL;
	int rc = rt_start(fx->rt, &spec, on_exit_cb, d, &c, &err);
	if (rc < 0)
		fail_msg("rt_start: %s", err);
	json_decref(files);
	json_decref(config);
	json_decref(pod);
	free(text);
	free(cg);
	free(etc);
	free(pod_json);
	free(uid);
	return c;
}

static char *
log_of(struct fx *fx, const char *uid_name)
{
	char *uid = xasprintf("%s-%d", uid_name, run_id);
	char *path = rt_log_path(fx->rt, "default", "web", uid, "app", 0);
	char *text = shell("cat %s", path);
	free(path);
	free(uid);
	return text;
}

static void
assert_runc_forgot(struct fx *fx)
{
	char *left = shell("runc --root %s/runc list -q", fx->dir);
	assert_string_equal(left, "");
	free(left);
}

static void
test_runc_runs_image_logs_exit_code_user(void **state)
{
	struct fx *fx = *state;
	struct done d = { 0 };
	struct rt_ctr *c = start_runc(fx, "run", "{\"name\": \"app\", \"command\": "
	    "[\"sh\", \"-c\", \"echo hello from $HOSTNAME; id -u; cat /etc/hostname; "
	    "exit 3\"], \"securityContext\": {\"runAsUser\": 1234}}", 0, &d);
	assert_true(rt_is_runc(c));
	run_until(fx, &d.called, 20000);
	assert_true(d.called);
	char *log = log_of(fx, "run");
	if (d.st.exit_code != 3)
		fail_msg("exit %d (%s: %s), log: %s", d.st.exit_code, d.st.reason, d.st.message,
		    log);
	assert_string_equal(d.st.reason, "Error");
	assert_non_null(strstr(log, " stdout F hello from web\n"));
	assert_non_null(strstr(log, " stdout F 1234\n"));
	assert_non_null(strstr(log, " stdout F web\n"));
	free(log);
	rt_release(c);
	assert_runc_forgot(fx);
}

static void
test_runc_read_only_rootfs(void **state)
{
	struct fx *fx = *state;
	struct done d = { 0 };
	struct rt_ctr *c = start_runc(fx, "ro", "{\"name\": \"app\", \"command\": "
	    "[\"sh\", \"-c\", \"touch /tmp/x && echo wrote\"], \"securityContext\": "
	    "{\"readOnlyRootFilesystem\": true}}", 0, &d);
	run_until(fx, &d.called, 20000);
	char *log = log_of(fx, "ro");
	assert_true(d.called);
	assert_int_not_equal(d.st.exit_code, 0);
	assert_non_null(strstr(log, "Read-only file system"));
	assert_null(strstr(log, "wrote"));
	free(log);
	rt_release(c);
	/* the same without readOnlyRootFilesystem writes (to its upper dir) */
	struct done d2 = { 0 };
	c = start_runc(fx, "rw", "{\"name\": \"app\", \"command\": [\"sh\", \"-c\", "
	    "\"touch /tmp/x && echo wrote\"]}", 0, &d2);
	run_until(fx, &d2.called, 20000);
	assert_int_equal(d2.st.exit_code, 0);
	assert_string_equal(d2.st.reason, "Completed");
	rt_release(c);
	/* the layer itself is untouched */
	char *p = xasprintf("%s/tmp/x", fx->layer);
	assert_int_not_equal(access(p, F_OK), 0);
	free(p);
}

static void
test_runc_memory_limit_oom_killed(void **state)
{
	struct fx *fx = *state;
	struct done d = { 0 };
	struct rt_ctr *c = start_runc(fx, "oom", "{\"name\": \"app\", \"command\": "
	    "[\"dd\", \"if=/dev/zero\", \"of=/dev/null\", \"bs=64M\", \"count=1\"]}",
	    16 << 20, &d);
	run_until(fx, &d.called, 20000);
	assert_true(d.called);
	assert_int_equal(d.st.exit_code, 137);
	assert_true(d.st.oom_killed);
	assert_string_equal(d.st.reason, "OOMKilled");
	rt_release(c);
	assert_runc_forgot(fx);
}

static void
test_runc_exec_and_kill(void **state)
{
	struct fx *fx = *state;
	struct done d = { 0 };
	struct rt_ctr *c = start_runc(fx, "exec", "{\"name\": \"app\", \"command\": "
	    "[\"sleep\", \"1000\"], \"env\": [{\"name\": \"X\", \"value\": \"y\"}], "
	    "\"workingDir\": \"/etc\"}", 0, &d);
	json_t *argv = rt_enter_argv(c);
	assert_string_equal(json_string_value(json_array_get(argv, 0)), "runc");
	json_array_append_new(argv, json_string("sh"));
	json_array_append_new(argv, json_string("-c"));
	json_array_append_new(argv, json_string("echo $X $(pwd) $(id -u)"));
	char *line = xstrdup("");
	size_t k;
	json_t *a;
	json_array_foreach(argv, k, a) {
		char *l = xasprintf("%s '%s'", line, json_string_value(a));
		free(line);
		line = l;
	}
	/* runc exec works once the container runs: retried for a few seconds */
	char *out = NULL;
	for (int i = 0; i < 100; i++) {
		uv_run(&fx->loop, UV_RUN_NOWAIT);
		free(out);
		out = shell("%s 2>&1", line);
		if (strcmp(out, "y /etc 0\n") == 0)
			break;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
	assert_string_equal(out, "y /etc 0\n");
	free(out);
	free(line);
	json_decref(argv);
	assert_int_equal(rt_signal(c, SIGKILL), 0);
	run_until(fx, &d.called, 20000);
	assert_true(d.called);
	assert_int_equal(d.st.exit_code, 137);
	rt_release(c);
	assert_runc_forgot(fx);
}

/* The pod's IPC namespace and /dev/shm: made once (STATE/pods made for the
 * first pod), found again by a later call (a restart, an adoption: the
 * same namespace), gone after nrunc_pod_release. Needs root, as runc. */
static bool
is_mount_point(const char *path)
{
	char line[4096], mnt[PATH_MAX];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");
	while (f && fgets(line, sizeof line, f))
		found |= sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && !strcmp(mnt, path);
	if (f)
		fclose(f);
	return found;
}

static int
mount_count(const char *path)
{
	char line[4096], mnt[PATH_MAX];
	int n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");
	while (f && fgets(line, sizeof line, f))
		n += sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && !strcmp(mnt, path);
	if (f)
		fclose(f);
	return n;
}

static void *
sandbox_thread(void *dir)
{
	return (void *)(intptr_t)nrunc_pod_sandbox(dir);
}

/* The start's job makes the sandbox on the thread pool: the starts of a
 * pod's containers, at once, make one namespace and one tmpfs between
 * them, not one each stacked on the same paths. */
static void
test_pod_sandbox_concurrent_starts(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/v6-podsbx.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *dir = xasprintf("%s/pods/u-2", tmpl);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, sandbox_thread, dir), 0);
	for (int i = 0; i < 4; i++) {
		void *rc = NULL;
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_int_equal((int)(intptr_t)rc, 0);
	}
	char *ipc = xasprintf("%s/ipc", dir), *shm = xasprintf("%s/shm", dir);
	assert_int_equal(mount_count(ipc), 1);
	assert_int_equal(mount_count(shm), 1);
	nrunc_pod_release(dir);
	assert_int_equal(mount_count(ipc) + mount_count(shm), 0);
	assert_int_equal(util_remove_tree(tmpl), 0);
	free(ipc);
	free(shm);
	free(dir);
}

static void
test_pod_ipc_namespace_and_shm(void **state)
{
	(void)state;
	char tmpl[] = "/tmp/v6-podipc.XXXXXX";
	assert_non_null(mkdtemp(tmpl));
	char *dir = xasprintf("%s/pods/u-1", tmpl), *ipc = NULL, *shm = NULL;
	assert_int_equal(nrunc_pod_ipc(dir, &ipc, &shm), 0);
	char *want = xasprintf("%s/ipc", dir);
	assert_string_equal(ipc, want);
	free(want);
	assert_true(is_mount_point(ipc) && is_mount_point(shm));
	struct stat a, b;
	assert_int_equal(stat(ipc, &a), 0);
	char *ipc2 = NULL, *shm2 = NULL;
	assert_int_equal(nrunc_pod_ipc(dir, &ipc2, &shm2), 0);
	assert_int_equal(stat(ipc2, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);		/* the same namespace */
	char *df = xasprintf("df -k %s | awk 'NR==2 {print $2}'", shm);
	FILE *p = popen(df, "r");
	char kb[32] = "";
	assert_non_null(fgets(kb, sizeof kb, p));
	pclose(p);
	assert_int_equal(atoi(kb), 65536);		/* Kubernetes' 64 MiB */
	free(df);
	nrunc_pod_release(dir);
	assert_false(is_mount_point(ipc) || is_mount_point(shm));
	assert_int_equal(access(ipc, F_OK), -1);
	nrunc_pod_release(dir);				/* twice, or a process pod: fine */
	assert_int_equal(util_remove_tree(tmpl), 0);
	free(ipc);
	free(shm);
	free(ipc2);
	free(shm2);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_and_args_rules),
		cmocka_unit_test(test_args_expand_container_env),
		cmocka_unit_test(test_env_order_and_override),
		cmocka_unit_test(test_working_dir),
		cmocka_unit_test(test_user_rules),
		cmocka_unit_test(test_run_as_non_root),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_privileged_and_read_only),
		cmocka_unit_test(test_resources_namespaces_mounts),
		cmocka_unit_test(test_pod_files),
		cmocka_unit_test(test_pod_ipc_namespace_and_shm),
		cmocka_unit_test(test_pod_sandbox_concurrent_starts),
		cmocka_unit_test_setup_teardown(test_runc_runs_image_logs_exit_code_user,
		    rt_setup, rt_teardown),
		cmocka_unit_test_setup_teardown(test_runc_read_only_rootfs, rt_setup,
		    rt_teardown),
		cmocka_unit_test_setup_teardown(test_runc_memory_limit_oom_killed, rt_setup,
		    rt_teardown),
		cmocka_unit_test_setup_teardown(test_runc_exec_and_kill, rt_setup, rt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
