/* image_ref.c — image references and manifest choice, pure functions:
 * Docker's normalisation rules (nginx = docker.io/library/nginx:latest,
 * "@sha256:" digests), the node's platform, and picking this platform's
 * manifest out of an OCI index or a Docker manifest list. Used by the
 * store, the registry client, the agent and the unit tests. */
#include "image_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define DOCKER_HUB "docker.io"

bool
img_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
			return false;
	return true;
}

/* One path component: [a-z0-9]+ joined by ".", "_", "__" or "-"+. */
static bool
component_valid(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (isupper((unsigned char)c))
			return false;
		if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-'))
			return false;
		if (c == '.' && (s[i + 1] == '.' || s[i + 1] == '_' || s[i + 1] == '-'))
			return false;
	}
	return true;
}

static bool
repo_valid(const char *repo)
{
	const char *p = repo;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!component_valid(p, n))
			return false;
		if (!slash)
			return strlen(repo) <= 255;
		p = slash + 1;
	}
}

static bool
tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

static bool
registry_valid(const char *r)
{
	if (!*r)
		return false;
	for (const char *p = r; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr(".-:[]", *p)))
			return false;
	return true;
}

static int
ref_fail(struct img_ref *r, char **msg, const char *s, const char *why)
{
	img_ref_free(r);
	*msg = xasprintf("invalid image reference \"%s\": %s", s, why);
	return -EINVAL;
}

int
img_ref_parse(const char *s, struct img_ref *out, char **msg)
{
	struct img_ref r = { 0 };
	char *rest;

	*out = r;
	if (!s || !*s)
		return ref_fail(&r, msg, s ? s : "", "empty");
	rest = xstrdup(s);
	char *at = strchr(rest, '@');
	if (at) {
		*at = '\0';
		r.digest = xstrdup(at + 1);
		if (!img_digest_valid(r.digest)) {
			free(rest);
			return ref_fail(&r, msg, s, "the digest must be sha256: and 64 hex digits");
		}
	}
	/* The first component names a registry when it looks like a host. */
	char *path = rest, *slash = strchr(rest, '/');
	if (slash && (memchr(rest, '.', (size_t)(slash - rest)) ||
	    memchr(rest, ':', (size_t)(slash - rest)) ||
	    ((size_t)(slash - rest) == strlen("localhost") && !strncmp(rest, "localhost", 9)))) {
		*slash = '\0';
		r.registry = xstrdup(rest);
		path = slash + 1;
	} else {
		r.registry = xstrdup(DOCKER_HUB);
	}
	if (strcmp(r.registry, "index.docker.io") == 0) {
		free(r.registry);
		r.registry = xstrdup(DOCKER_HUB);
	}
	char *colon = strrchr(path, ':');
	if (colon && !strchr(colon, '/')) {
		*colon = '\0';
		r.tag = xstrdup(colon + 1);
	}
	if (strcmp(r.registry, DOCKER_HUB) == 0 && !strchr(path, '/'))
		r.repo = xasprintf("library/%s", path);
	else
		r.repo = xstrdup(path);
	free(rest);
	if (!registry_valid(r.registry))
		return ref_fail(&r, msg, s, "bad registry host");
	if (!repo_valid(r.repo))
		return ref_fail(&r, msg, s, "repository names are lowercase letters, digits "
		    "and separators (. _ -) between them");
	if (r.tag && !tag_valid(r.tag))
		return ref_fail(&r, msg, s, "a tag is up to 128 letters, digits, _ . -");
	if (!r.tag && !r.digest) {
		r.tag = xstrdup("latest");
		r.tag_implied = true;
	}
	*out = r;
	return 0;
}

char *
img_ref_string(const struct img_ref *r)
{
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s/%s", r->registry, r->repo);
	if (r->tag)
		buf_printf(&b, ":%s", r->tag);
	if (r->digest)
		buf_printf(&b, "@%s", r->digest);
	return buf_steal(&b);
}

void
img_ref_free(struct img_ref *r)
{
	free(r->registry);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof *r);
}

/* uname machine -> OCI architecture and variant (the Go names). */
static const struct {
	const char *machine, *arch, *variant;
} archs[] = {
	{ "x86_64", "amd64", "" },
	{ "aarch64", "arm64", "v8" },
	{ "armv7l", "arm", "v7" },
	{ "armv6l", "arm", "v6" },
	{ "i686", "386", "" },
	{ "ppc64le", "ppc64le", "" },
	{ "s390x", "s390x", "" },
	{ "riscv64", "riscv64", "" },
};

void
img_platform(const char **os, const char **arch, const char **variant)
{
	static struct utsname u;
	static int done;

	if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
		uname(&u);
		__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	}
	*os = "linux";
	*arch = u.machine;
	*variant = "";
	for (size_t i = 0; i < ARRAY_SIZE(archs); i++)
		if (strcmp(u.machine, archs[i].machine) == 0) {
			*arch = archs[i].arch;
			*variant = archs[i].variant;
		}
}

const json_t *
img_index_select(const json_t *index, const char *os, const char *arch, const char *variant)
{
	const json_t *ms = json_object_get(index, "manifests"), *m, *best = NULL;
	size_t i;

	json_array_foreach(ms, i, m) {
		const json_t *p = json_object_get(m, "platform");
		const char *pos = json_string_value(json_object_get(p, "os"));
		const char *parch = json_string_value(json_object_get(p, "architecture"));
		const char *pvar = json_string_value(json_object_get(p, "variant"));
		if (!pos || !parch || strcmp(pos, os) != 0 || strcmp(parch, arch) != 0)
			continue;
		if (*variant && pvar && strcmp(pvar, variant) != 0)
			continue;
		/* An exact variant match beats an entry without one. */
		if (!best || (pvar && *variant && strcmp(pvar, variant) == 0))
			best = m;
	}
	return best;
}

bool
img_is_index(const json_t *doc, const char *content_type)
{
	const char *mt = json_string_value(json_object_get(doc, "mediaType"));
	if (!mt || !*mt)
		mt = content_type;
	if (mt && (strcmp(mt, IMG_MT_OCI_INDEX) == 0 || strcmp(mt, IMG_MT_DOCKER_LIST) == 0))
		return true;
	if (mt && (strcmp(mt, IMG_MT_OCI_MANIFEST) == 0 || strcmp(mt, IMG_MT_DOCKER_MANIFEST) == 0))
		return false;
	return json_is_array(json_object_get(doc, "manifests"));
}

enum img_pull_policy
img_default_policy(const char *ref)
{
	struct img_ref r;
	char *msg = NULL;
	enum img_pull_policy p = IMG_PULL_IF_NOT_PRESENT;

	if (img_ref_parse(ref, &r, &msg) == 0 && r.tag && strcmp(r.tag, "latest") == 0)
		p = IMG_PULL_ALWAYS;
	img_ref_free(&r);
	free(msg);
	return p;
}
