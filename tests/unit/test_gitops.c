/* Unit tests of the GitOps parts without a server: repo URL normalisation
 * (git.c), rendering a checked-out directory (ctrl_app_render.c: recurse,
 * include / exclude, errors with file, line and field), Argo CD's health
 * checks and their order (ctrl_app_health.c), and the Application schema
 * (obj_schema_argocd.c: unknown and unsupported fields refused). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gitops.h"

static void
test_url_normalize(void **state)
{
	(void)state;
	static const char *const same[][2] = {
		{ "https://GitHub.com/org/repo.git", "github.com/org/repo" },
		{ "https://user@github.com/org/repo/", "github.com/org/repo" },
		{ "git@github.com:org/repo.git", "github.com/org/repo" },
		{ "ssh://git@github.com/org/repo", "github.com/org/repo" },
		{ "file:///srv/git/Repo.git", "/srv/git/Repo" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(same); i++) {
		char *n = git_url_normalize(same[i][0]);
		assert_string_equal(n, same[i][1]);
		free(n);
	}
}

static char dir[64];

static void
put(const char *rel, const char *text)
{
	char *p = xasprintf("%s/%s", dir, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	char *cmd = xasprintf("mkdir -p '%s'", p);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	*slash = '/';
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static const char *
cm(const char *name)
{
	static char buf[256];
	snprintf(buf, sizeof buf, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n"
	    "data:\n  k: v\n", name);
	return buf;
}

static char *
names(const json_t *objs)
{
	char *s = xstrdup("");
	size_t i;
	const json_t *o;
	json_array_foreach(objs, i, o) {
		char *n = xasprintf("%s%s%s", s, *s ? "," : "", obj_name(o));
		free(s);
		s = n;
	}
	return s;
}

static void
render_expect(const char *src_json, const char *want)
{
	json_t *src = json_loads(src_json, 0, NULL), *out = NULL;
	char *err = NULL;
	assert_non_null(src);
	int rc = app_render(dir, src, &out, &err);
	if (rc < 0)
		print_error("%s: %s\n", src_json, err);
	assert_int_equal(rc, APP_DIRECTORY);
	char *got = names(out);
	if (strcmp(got, want))
		print_error("%s: got %s want %s\n", src_json, got, want);
	assert_string_equal(got, want);
	free(got);
	json_decref(out);
	json_decref(src);
}

static void
test_render_directory(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/v6-unit-gitops-XXXXXX");
	assert_non_null(mkdtemp(dir));
	put("app/b.yaml", cm("b"));
	put("app/a.yml", cm("a1"));
	char *c1 = xstrdup(cm("c1"));
	char *two = xasprintf("%s---\n%s", c1, cm("c2"));
	put("app/c.yaml", two);
	free(two);
	free(c1);
	put("app/notes.txt", "not a manifest");
	put("app/sub/d.json", "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", "
	    "\"metadata\": {\"name\": \"d\"}}");
	put("app/sub/deeper/e.yaml", cm("e"));
	render_expect("{\"path\": \"app\"}", "a1,b,c1,c2");
	render_expect("{\"path\": \"app\", \"directory\": {\"recurse\": true}}",
	    "a1,b,c1,c2,d,e");
	render_expect("{\"path\": \"app\", \"directory\": {\"recurse\": true, "
	    "\"include\": \"*.yaml\"}}", "b,c1,c2,e");
	render_expect("{\"path\": \"app\", \"directory\": {\"recurse\": true, "
	    "\"exclude\": \"{sub/*,c.yaml}\"}}", "a1,b,e");
	render_expect("{\"path\": \"app\", \"directory\": {\"recurse\": true, "
	    "\"include\": \"{a.yml,d.json}\"}}", "a1,d");

	/* a broken file: the whole render fails, naming file, line and field */
	put("app/z.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: w\n"
	    "spec:\n  replicas: two\n  selector: {matchLabels: {a: b}}\n");
	json_t *src = json_pack("{s:s}", "path", "app"), *out = NULL;
	char *err = NULL;
	assert_int_equal(app_render(dir, src, &out, &err), -EINVAL);
	assert_null(out);
	assert_non_null(strstr(err, "app/z.yaml:6:"));
	assert_non_null(strstr(err, "spec.replicas"));
	free(err);
	/* an unknown field, too */
	put("app/z.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: z\nbogus: 1\n");
	assert_int_equal(app_render(dir, src, &out, &err), -EINVAL);
	assert_non_null(strstr(err, "app/z.yaml:5:"));
	assert_non_null(strstr(err, "bogus"));
	free(err);
	json_decref(src);
	src = json_pack("{s:s}", "path", "nowhere");
	assert_int_equal(app_render(dir, src, &out, &err), -ENOENT);
	assert_non_null(strstr(err, "app path does not exist"));
	free(err);
	json_decref(src);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static const char *
health(const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	assert_non_null(o);
	const char *h = app_health_of(o, NULL);
	json_decref(o);
	return h;
}

#define DEP "{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", " \
	    "\"metadata\": {\"generation\": 2}, \"spec\": {\"replicas\": 2}, \"status\": " \
	    "{\"observedGeneration\": %d, \"replicas\": 2, \"updatedReplicas\": %d, " \
	    "\"availableReplicas\": %d}}"

static void
test_health(void **state)
{
	(void)state;
	assert_string_equal(app_health_of(NULL, NULL), "Missing");
	assert_null(health("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\"}"));
	char b[512];
	snprintf(b, sizeof b, DEP, 2, 2, 2);
	assert_string_equal(health(b), "Healthy");
	snprintf(b, sizeof b, DEP, 1, 2, 2);
	assert_string_equal(health(b), "Progressing");
	snprintf(b, sizeof b, DEP, 2, 2, 1);
	assert_string_equal(health(b), "Progressing");
	assert_string_equal(health("{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", "
	    "\"spec\": {\"paused\": true}}"), "Suspended");
	assert_string_equal(health("{\"apiVersion\": \"batch/v1\", \"kind\": \"Job\", "
	    "\"status\": {\"conditions\": [{\"type\": \"Failed\", \"status\": \"True\"}]}}"),
	    "Degraded");
	assert_string_equal(health("{\"apiVersion\": \"batch/v1\", \"kind\": \"Job\", "
	    "\"status\": {\"conditions\": [{\"type\": \"Complete\", \"status\": \"True\"}]}}"),
	    "Healthy");
	assert_string_equal(health("{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": "
	    "\"Rollout\", \"status\": {\"phase\": \"Paused\"}}"), "Suspended");
	assert_string_equal(health("{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": "
	    "\"Rollout\", \"status\": {\"phase\": \"Degraded\"}}"), "Degraded");
	/* a phase from before the last spec change (observedGeneration is a
	 * string in Argo Rollouts) is not the new revision's health */
	assert_string_equal(health("{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": "
	    "\"Rollout\", \"metadata\": {\"generation\": 3}, \"status\": {\"phase\": "
	    "\"Healthy\", \"observedGeneration\": \"2\"}}"), "Progressing");
	assert_string_equal(health("{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": "
	    "\"Rollout\", \"metadata\": {\"generation\": 3}, \"status\": {\"phase\": "
	    "\"Healthy\", \"observedGeneration\": \"3\"}}"), "Healthy");
	assert_string_equal(health("{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"status\": "
	    "{\"phase\": \"Running\", \"containerStatuses\": [{\"state\": {\"waiting\": "
	    "{\"reason\": \"CrashLoopBackOff\"}}}]}}"), "Degraded");
	assert_string_equal(health("{\"apiVersion\": \"v1\", \"kind\": "
	    "\"PersistentVolumeClaim\", \"status\": {\"phase\": \"Bound\"}}"), "Healthy");
	/* Healthy < Suspended < Progressing < Missing < Degraded */
	assert_string_equal(app_health_worse("Healthy", NULL), "Healthy");
	assert_string_equal(app_health_worse("Healthy", "Suspended"), "Suspended");
	assert_string_equal(app_health_worse("Missing", "Progressing"), "Missing");
	assert_string_equal(app_health_worse("Missing", "Degraded"), "Degraded");
}

static int
validate(const char *json, const char *want_field)
{
	json_t *o = json_loads(json, 0, NULL);
	assert_non_null(o);
	struct errlist errs = { 0 };
	int rc = obj_validate(o, &errs);
	bool found = !want_field;
	for (size_t i = 0; i < errs.n; i++)
		if (want_field && !strcmp(errs.v[i].field, want_field))
			found = true;
	if (!found)
		print_error("%s: no error at %s (%zu errors, first %s)\n", json, want_field,
		    errs.n, errs.n ? errs.v[0].field : "-");
	assert_true(found);
	errlist_free(&errs);
	json_decref(o);
	return rc;
}

#define APP_HEAD "{\"apiVersion\": \"argoproj.io/v1alpha1\", \"kind\": \"Application\", " \
	"\"metadata\": {\"name\": \"a\", \"namespace\": \"argocd\"}, "

static void
test_schema(void **state)
{
	(void)state;
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"project\": \"default\", \"source\": "
	    "{\"repoURL\": \"https://example.com/r.git\", \"targetRevision\": \"HEAD\", "
	    "\"path\": \"guestbook\", \"directory\": {\"recurse\": true}}, \"destination\": "
	    "{\"server\": \"https://kubernetes.default.svc\", \"namespace\": \"guestbook\"}, "
	    "\"syncPolicy\": {\"automated\": {\"prune\": true, \"selfHeal\": true}, "
	    "\"syncOptions\": [\"CreateNamespace=true\", \"PruneLast=true\"], \"retry\": "
	    "{\"limit\": 5, \"backoff\": {\"duration\": \"5s\", \"factor\": 2, "
	    "\"maxDuration\": \"3m\"}}}}}", NULL), 0);
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"source\": {\"repoURL\": \"r\"}, "
	    "\"destination\": {}, \"bogus\": 1}}", "spec.bogus"), -EINVAL);
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"source\": {\"repoURL\": \"r\", "
	    "\"helm\": {}}, \"destination\": {}}}", "spec.source.helm"), -EINVAL);
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"source\": {\"repoURL\": \"r\"}, "
	    "\"destination\": {\"server\": \"https://other:6443\"}}}",
	    "spec.destination.server"), -EINVAL);
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"source\": {\"repoURL\": \"r\"}, "
	    "\"destination\": {}, \"syncPolicy\": {\"syncOptions\": [\"Replace=true\"]}}}",
	    "spec.syncPolicy.syncOptions[0]"), -EINVAL);
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"source\": {\"repoURL\": \"r\", "
	    "\"path\": \"../x\"}, \"destination\": {}}}", "spec.source.path"), -EINVAL);
	assert_int_equal(validate(APP_HEAD "\"spec\": {\"source\": {\"repoURL\": \"r\"}, "
	    "\"destination\": {}, \"syncPolicy\": {\"retry\": {\"backoff\": {\"duration\": "
	    "\"soon\"}}}}}", "spec.syncPolicy.retry.backoff.duration"), -EINVAL);
}

/* git_checkout against a real repository made with the git CLI: a branch,
 * a tag, a commit prefix, HEAD; a revision that does not exist. */
static void
test_git_checkout(void **state)
{
	(void)state;
	char root[] = "/tmp/v6-unit-git-XXXXXX";
	assert_non_null(mkdtemp(root));
	char *cmd = xasprintf("cd %s && git init -q -b main work && cd work && "
	    "git -c user.name=t -c user.email=t@t commit -q --allow-empty -m one && "
	    "git tag v1 && mkdir app && echo 'a: 1' > app/x.yaml && git add app && "
	    "git -c user.name=t -c user.email=t@t commit -q -m two && "
	    "git clone -q --bare . ../origin.git", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	char *url = xasprintf("file://%s/origin.git", root);
	char *cache = xasprintf("%s/cache", root);
	static const char *const revs[] = { "main", "HEAD", "", "v1" };
	char sha[41], first[41] = "";
	for (size_t i = 0; i < ARRAY_SIZE(revs); i++) {
		char *tree = NULL, *err = NULL;
		int rc = git_checkout(cache, url, revs[i], NULL, sha, &tree, &err);
		if (rc < 0)
			print_error("%s: %s\n", revs[i], err);
		assert_int_equal(rc, 0);
		char *x = xasprintf("%s/app/x.yaml", tree);
		/* v1 is the first commit: no app/ yet */
		assert_int_equal(access(x, F_OK) == 0, strcmp(revs[i], "v1") != 0);
		if (i == 0)
			memcpy(first, sha, sizeof first);
		else if (i < 3)
			assert_string_equal(sha, first);
		else
			assert_string_not_equal(sha, first);
		free(x);
		free(tree);
	}
	char prefix[9], *tree = NULL, *err = NULL;
	memcpy(prefix, first, 8);
	prefix[8] = '\0';
	assert_int_equal(git_checkout(cache, url, prefix, NULL, sha, &tree, &err), 0);
	assert_string_equal(sha, first);
	free(tree);
	assert_int_equal(git_checkout(cache, url, "nope", NULL, sha, &tree, &err), -ENOENT);
	assert_string_equal(err, "unable to resolve 'nope' to a commit SHA");
	free(err);
	cmd = xasprintf("rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(url);
	free(cache);
}

/* Checked-out trees beyond the kept number go when unused long enough,
 * oldest first; recent ones and other names stay. */
static void
test_prune_trees(void **state)
{
	(void)state;
	char root[] = "/tmp/v6-unit-trees-XXXXXX";
	assert_non_null(mkdtemp(root));
	time_t now = time(NULL);
	char sha[41];
	for (int i = 0; i < 6; i++) {
		snprintf(sha, sizeof sha, "%040d", i);
		char *p = xasprintf("%s/%s", root, sha), *f = xasprintf("%s/x.yaml", p);
		assert_int_equal(mkdir(p, 0755), 0);
		assert_int_equal(file_write_atomic(f, "a: 1\n", 5, false), 0);
		/* 0..3 last used an hour ago (0 the oldest), 4 and 5 just now */
		struct timeval tv[2] = { { now - 4000 + i, 0 }, { now - 4000 + i, 0 } };
		if (i < 4)
			assert_int_equal(utimes(p, tv), 0);
		free(f);
		free(p);
	}
	char *tmp = xasprintf("%s/%040d.tmp42", root, 9);	/* a checkout under way */
	assert_int_equal(mkdir(tmp, 0755), 0);
	git_prune_trees(root, 3, 600);
	for (int i = 0; i < 6; i++) {
		snprintf(sha, sizeof sha, "%040d", i);
		char *p = xasprintf("%s/%s", root, sha);
		/* 6 trees, 3 kept: the three oldest old ones go */
		assert_int_equal(access(p, F_OK) == 0, i >= 3);
		free(p);
	}
	assert_int_equal(access(tmp, F_OK), 0);
	/* recent trees stay whatever their number */
	git_prune_trees(root, 0, 600);
	snprintf(sha, sizeof sha, "%040d", 4);
	char *p = xasprintf("%s/%s", root, sha);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	free(tmp);
	char *cmd = xasprintf("rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/* base64 of n bytes (static buffer). */
static const char *
b64(const unsigned char *p, size_t n)
{
	static unsigned char out[4][256];
	static int k;
	k = (k + 1) % 4;
	EVP_EncodeBlock(out[k], p, (int)n);
	return (const char *)out[k];
}

static int
check_host(const char *known, const char *host, int port, const unsigned char *key,
    char *msg)
{
	return git_known_host_check(known, host, port, key, 32, msg, 512);
}

static void
test_known_hosts(void **state)
{
	(void)state;
	unsigned char key[32], other[32], salt[20], mac[20];
	unsigned maclen = 0;
	char msg[512], known[2048];
	for (int i = 0; i < 32; i++) {
		key[i] = (unsigned char)i;
		other[i] = (unsigned char)(100 + i);
	}
	const char *k = b64(key, 32), *o = b64(other, 32);
	/* plain, a port, case, comments */
	snprintf(known, sizeof known, "# hosts\n\nExample.COM ssh-ed25519 %s a comment\n"
	    "[example.com]:2222 ssh-ed25519 %s\n", k, k);
	assert_int_equal(check_host(known, "example.com", 22, key, msg), 0);
	assert_int_equal(check_host(known, "example.com", 2222, key, msg), 0);
	assert_int_equal(check_host(known, "example.com", 2200, key, msg), -1);
	assert_non_null(strstr(msg, "[example.com]:2200 is not in known_hosts"));
	assert_non_null(strstr(msg, "SHA256:"));
	assert_int_equal(check_host(NULL, "example.com", 22, key, msg), -1);
	/* a changed key; a rotation (the old and the new key listed) passes */
	snprintf(known, sizeof known, "example.com ssh-ed25519 %s\n", o);
	assert_int_equal(check_host(known, "example.com", 22, key, msg), -1);
	assert_non_null(strstr(msg, "key mismatch"));
	snprintf(known, sizeof known, "example.com ssh-ed25519 %s\nexample.com ssh-ed25519 %s\n",
	    o, k);
	assert_int_equal(check_host(known, "example.com", 22, key, msg), 0);
	/* patterns: globs and a negation */
	snprintf(known, sizeof known, "*.example.com,!evil.example.com ssh-ed25519 %s\n", k);
	assert_int_equal(check_host(known, "git.example.com", 22, key, msg), 0);
	assert_int_equal(check_host(known, "evil.example.com", 22, key, msg), -1);
	assert_non_null(strstr(msg, "is not in known_hosts"));
	/* @revoked wins over a line that accepts the key */
	snprintf(known, sizeof known, "example.com ssh-ed25519 %s\n@revoked * ssh-ed25519 %s\n",
	    k, k);
	assert_int_equal(check_host(known, "example.com", 22, key, msg), -1);
	assert_non_null(strstr(msg, "@revoked"));
	/* hashed (ssh-keygen -H): HMAC-SHA1 of the host under the salt */
	for (int i = 0; i < 20; i++)
		salt[i] = (unsigned char)(7 * i);
	HMAC(EVP_sha1(), salt, 20, (const unsigned char *)"[10.0.0.1]:2222", 15, mac, &maclen);
	snprintf(known, sizeof known, "|1|%s|%s ecdsa-sha2-nistp256 %s\n", b64(salt, 20),
	    b64(mac, 20), k);
	assert_int_equal(check_host(known, "10.0.0.1", 2222, key, msg), 0);
	assert_int_equal(check_host(known, "10.0.0.2", 2222, key, msg), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_normalize),
		cmocka_unit_test(test_render_directory),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_git_checkout),
		cmocka_unit_test(test_prune_trees),
		cmocka_unit_test(test_known_hosts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
