/* auth_token.c — static bearer tokens from a file (--token-auth-file), in
 * Kubernetes' CSV format: token,user,uid,"group1,group2" per line (groups
 * optional). Tokens are kept only as SHA-256 digests, looked up by digest,
 * so a wrong token takes the same path wherever it differs. Loaded once at
 * start by api_auth.c. */
#include "auth.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct token_user {
	struct auth_user user;
	char *name, *uid;
	char **groups;
};

struct auth_tokens {
	json_t *by_digest;	/* hex SHA-256 of the token -> index into users */
	struct token_user *users;
	size_t n;
};

static void
digest_hex(const char *token, char out[65])
{
	unsigned char md[32];
	unsigned len = 0;
	EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Splits one CSV line into at most max fields (quotes as RFC 4180, leading
 * blanks trimmed as Go's csv.Reader with TrimLeadingSpace). Fields point
 * into line, which is modified. Returns the count, or -1 on a bad quote. */
static int
csv_split(char *line, char **f, int max)
{
	int n = 0;
	char *r = line, *w;
	while (n < max) {
		while (*r == ' ' || *r == '\t')
			r++;
		f[n++] = w = r;
		if (*r == '"') {
			r++;
			for (;;) {
				if (!*r)
					return -1;
				if (*r == '"' && r[1] == '"')
					*w++ = '"', r += 2;
				else if (*r == '"')
					break;
				else
					*w++ = *r++;
			}
			r++;
			if (*r && *r != ',')
				return -1;
		} else {
			while (*r && *r != ',')
				*w++ = *r++;
		}
		bool more = *r == ',';
		*w = '\0';
		if (!more)
			return n;
		r++;
	}
	return n;
}

static void
user_fill(struct token_user *tu, const char *name, const char *uid, const char *groups)
{
	size_t n = 0, cap = 2;
	tu->name = xstrdup(name);
	tu->uid = xstrdup(uid);
	for (const char *p = groups; *p; p++)
		cap += *p == ',';
	tu->groups = xcalloc(cap, sizeof *tu->groups);
	for (const char *p = groups; *p;) {
		size_t len = strcspn(p, ",");
		if (len)
			tu->groups[n++] = xstrndup(p, len);
		p += len + (p[len] == ',');
	}
	tu->groups[n++] = xstrdup("system:authenticated");
	tu->user = (struct auth_user){ tu->name, tu->uid,
		(const char *const *)tu->groups, n };
}

int
auth_tokens_load(const char *path, struct auth_tokens **out, char **err)
{
	char *text = NULL, *line, *save = NULL;
	size_t len, lineno = 0;
	int rc = file_read_all(path, &text, &len);
	struct auth_tokens *t;

	*out = NULL;
	if (rc < 0) {
		*err = xasprintf("%s: %s", path, strerror(-rc));
		return rc;
	}
	t = xcalloc(1, sizeof *t);
	t->by_digest = json_object();
	t->users = xcalloc(len / 4 + 1, sizeof *t->users);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4], hex[65];
		lineno++;
		line[strcspn(line, "\r")] = '\0';
		if (!*line || *line == '#')
			continue;
		int nf = csv_split(line, f, 4);
		if (nf < 3 || !*f[0] || !*f[1]) {
			*err = xasprintf("%s:%zu: expected token,user,uid[,\"group1,group2\"] "
			    "(a token and a user name)", path, lineno);
			rc = -EINVAL;
			goto fail;
		}
		digest_hex(f[0], hex);
		struct token_user *tu = &t->users[t->n];
		user_fill(tu, f[1], f[2], nf > 3 ? f[3] : "");
		json_object_set_new(t->by_digest, hex, json_integer((json_int_t)t->n++));
	}
	free(text);
	*out = t;
	return 0;
fail:
	free(text);
	auth_tokens_free(t);
	return rc;
}

const struct auth_user *
auth_tokens_find(const struct auth_tokens *t, const char *token)
{
	char hex[65];
	if (!t)
		return NULL;
	digest_hex(token, hex);
	const json_t *i = json_object_get(t->by_digest, hex);
	return i ? &t->users[json_integer_value(i)].user : NULL;
}

void
auth_tokens_free(struct auth_tokens *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->users[i].name);
		free(t->users[i].uid);
		for (size_t j = 0; j < t->users[i].user.ngroups; j++)
			free(t->users[i].groups[j]);
		free(t->users[i].groups);
	}
	free(t->users);
	json_decref(t->by_digest);
	free(t);
}
