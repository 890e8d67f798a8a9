/* gitops.h — GitOps (issue 14, docs/gitops.md): Argo CD's Application on
 * V6. git.c fetches repositories with libgit2 into a cache and checks
 * commits out; ctrl_app_render.c turns a checked-out path into objects;
 * ctrl_app_health.c judges live objects; ctrl_app.c is the controller on
 * the core; cli_app.c is `v6 app`. */
#ifndef V6_GITOPS_H
#define V6_GITOPS_H

#include "ctrl.h"

/* Argo CD's annotations and labels. */
#define APP_TRACKING_ID "argocd.argoproj.io/tracking-id"
#define APP_SYNC_WAVE "argocd.argoproj.io/sync-wave"
#define APP_HOOK "argocd.argoproj.io/hook"
#define APP_HOOK_DELETE "argocd.argoproj.io/hook-delete-policy"
#define APP_SECRET_TYPE "argocd.argoproj.io/secret-type"
#define APP_FINALIZER "resources-finalizer.argocd.argoproj.io"
/* Which operation made a hook object (V6's own). */
#define APP_HOOK_OP "v6.dev/sync-operation"

/* ---- git.c ------------------------------------------------------------- */

/* Credentials for one repository (from a repository Secret); any may be
 * NULL. Never logged. */
struct git_creds {
	char *username, *password, *ssh_key;
	char *known_hosts;	/* OpenSSH known_hosts lines for ssh host keys */
	bool insecure;		/* Argo's insecure: "true": any TLS certificate */
};
void git_creds_free(struct git_creds *c);
/* Adds known_hosts lines (OpenSSH's format: plain or hashed host
 * patterns, [host]:port, @revoked) to c. An ssh fetch or push accepts the
 * server only when a line for its host (and port) has its key: an unknown
 * host or a changed key fails with an error saying which. */
void git_known_hosts_add(struct git_creds *c, const char *text);
/* 0 when the known_hosts text has key (the raw blob, as in the lines'
 * base64) for host at port, else -1 with the reason in msg: an unknown
 * host, a changed key, a revoked one (with the key's SHA256 fingerprint). */
int git_known_host_check(const char *known, const char *host, int port,
    const unsigned char *key, size_t klen, char *msg, size_t mlen);
/* Adds $HOME/.ssh/known_hosts, when there is one (the CLI's user). */
void git_known_hosts_user(struct git_creds *c);
/* The ConfigMap Argo CD keeps known hosts in, and its key. */
#define APP_KNOWN_HOSTS_CM "argocd-ssh-known-hosts-cm"
#define APP_KNOWN_HOSTS_KEY "ssh_known_hosts"

/* Fetches url (file://, a local path, http(s) smart protocol, ssh://,
 * user@host:path) into a bare clone under cache_dir (one per URL; every
 * branch, tag and HEAD, deleted branches pruned), resolves rev (a branch,
 * a tag, a commit SHA or prefix, "HEAD" or "" for the remote's HEAD) to a
 * commit and checks its tree out into cache_dir/trees/SHA (kept: a later
 * call for the same commit reuses it). Blocking: call it from the thread
 * pool; calls are serialised. Returns 0 with sha (40 hex) and *tree
 * (malloc'ed), or a negative errno with *err (malloc'ed, Argo CD's
 * wording, without credentials). */
int git_checkout(const char *cache_dir, const char *url, const char *rev,
    const struct git_creds *creds, char sha[41], char **tree, char **err);
/* One file of a commit: its path in the repository and its new content. */
struct git_file {
	const char *path;
	const char *data;
	size_t len;
};
/* Commits files (added or replaced) on top of parent_sha, a commit that
 * git_checkout put in cache_dir's clone of url, and pushes the commit to
 * branch (fast-forward only). The author is $GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL>,
 * else "v6 <v6@localhost>". Blocking. Returns 0 with sha, -EAGAIN when the
 * remote refused (the branch moved: fetch and retry) or another negative
 * errno, with *err (malloc'ed). */
int git_commit_push(const char *cache_dir, const char *url, const char *branch,
    const struct git_creds *creds, const char parent_sha[41],
    const struct git_file *files, size_t nfiles, const char *message, char sha[41],
    char **err);
/* Credentials for url from secrets (a JSON array of Secrets): one labelled
 * argocd.argoproj.io/secret-type=repository whose url is the same repo, or
 * =repo-creds whose url is a prefix of it (Argo CD's credential templates),
 * with its sshKnownHosts. out is left empty when none matches. */
void git_creds_find(const json_t *secrets, const char *url, struct git_creds *out);
/* Checked-out trees (trees/SHA under the cache) are a cache: beyond keep
 * of them, those not checked out again for min_age_s go, oldest first, so
 * the data directory does not grow by a tree per commit for ever. */
void git_prune_trees(const char *trees_dir, size_t keep, int64_t min_age_s);
/* The form repo URLs are compared in: no scheme, user, ".git" or trailing
 * "/", host lowercase ("https://GitHub.com/a/b.git" -> "github.com/a/b").
 * Caller frees. */
char *git_url_normalize(const char *url);

/* ---- ctrl_app_render.c ------------------------------------------------- */

/* Renders the application source src (spec.source) checked out at tree:
 * a kustomization (source.kustomize set, or a kustomization file in the
 * path) through kustomize_build, else the directory's YAML and JSON files
 * (directory.recurse, include / exclude globs, "{a,b}" alternatives),
 * each document validated as the API would. Objects come in file order
 * (sorted paths). Returns APP_DIRECTORY or APP_KUSTOMIZE (the source type)
 * and *out (new array), or -EINVAL with *err
 * ("PATH/FILE:LINE:COL: FIELD: message", the path relative to the repo). */
enum { APP_DIRECTORY, APP_KUSTOMIZE };
int app_render(const char *tree, const json_t *src, json_t **out, char **err);

/* ---- ctrl_app_health.c ------------------------------------------------- */

/* Argo CD's health of a live object (NULL: Missing): "Healthy",
 * "Progressing", "Degraded", "Suspended", or NULL when its kind has no
 * health check (ConfigMap, ...). *msg (may be NULL) gets a static or
 * borrowed reason. */
const char *app_health_of(const json_t *live, const char **msg);
/* The worse of two health states in Argo CD's order (Healthy < Suspended
 * < Progressing < Missing < Degraded < Unknown); NULL counts for nothing. */
const char *app_health_worse(const char *a, const char *b);

/* ---- ctrl_app.c -------------------------------------------------------- */

struct app_config {
	const char *cache_dir;		/* DATA/gitops */
	int64_t resync_ms;		/* --app-resync-period; 0: 3 minutes */
};
struct ctrl_app;
/* Starts the Application controller and serves /api/webhook. */
int ctrl_app_start(struct api *api, const struct app_config *cfg, struct ctrl_app **out);
void ctrl_app_stop(struct ctrl_app *a);

/* ---- cli_yedit.c ------------------------------------------------------ */

/* In-place edits of YAML text (malloc'ed; each call replaces *text) that
 * keep comments, key order, quoting and style: doc is the 0-based document,
 * path a JSON array of segments: "key", an index, or {"k": v} (the list
 * item whose k is v). yedit_set sets the value at path, adding the missing
 * keys (and list items, for {"k": v} segments); yedit_append adds item to
 * the list at path (made when missing); yedit_delete removes the key or
 * item (0 when absent). 0, or -ENOENT / -EINVAL (no such document, not
 * YAML, a path through a scalar). */
int yedit_set(char **text, size_t doc, const json_t *path, const json_t *value);
int yedit_append(char **text, size_t doc, const json_t *path, const json_t *item);
int yedit_delete(char **text, size_t doc, const json_t *path);
/* Document doc as JSON (YAML 1.2 core scalars), or NULL. New reference. */
json_t *yedit_json(const char *text, size_t doc);

#endif
