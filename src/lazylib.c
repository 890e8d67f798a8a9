/* lazylib.c — libcurl, libarchive and libgit2 loaded with dlopen at their
 * first use. Linked at build time they and their ~30 dependencies (GnuTLS,
 * Kerberos, LDAP, libxml2, ICU, libstdc++, mbedTLS, libssh2, ...) cost every
 * v6 process about 6 MB of RSS from the start (every page the loader touches
 * to relocate them counts), yet a server needs them only to pull an image,
 * notify or push telemetry, or sync GitOps. Each function below has the
 * library's own name and prototype (its header is included, so the compiler
 * checks they agree), resolves the real one once and calls it; callers are
 * unchanged (lazylib.h). A library that cannot be loaded is logged once, and
 * its forwarders then return the library's own failure value (NULL,
 * CURLE_FAILED_INIT, ARCHIVE_FATAL, -1 with git_error_last() saying why), so
 * every caller's existing error path reports it. */
#define CURL_DISABLE_TYPECHECK	/* the real prototypes, not curl's macros */
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <git2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lazylib.h"
#include "log.h"
#include "util.h"

/* The sonames this build's headers belong to (Makefile: from the linker's
 * libNAME.so); the defaults are Debian 12's. */
#ifndef LAZY_CURL_SONAME
#define LAZY_CURL_SONAME "libcurl.so.4"
#endif
#ifndef LAZY_ARCHIVE_SONAME
#define LAZY_ARCHIVE_SONAME "libarchive.so.13"
#endif
#ifndef LAZY_GIT2_SONAME
#define LAZY_GIT2_SONAME "libgit2.so.1.5"
#endif

typedef void (*lz_fn)(void);	/* any function: casts to and from it are checked */

struct lz_lib {
	const char *soname;
	const char *what;		/* for the message when it cannot be loaded */
	int (*after)(void *handle);	/* once, right after the load; may be NULL */
	void *handle;			/* set once, under lz_mu */
	char *err;			/* set once, under lz_mu, when the load failed */
};

static pthread_mutex_t lz_mu = PTHREAD_MUTEX_INITIALIZER;

static lz_fn
lz_dlsym(void *handle, const char *name)
{
	void *p = dlsym(handle, name);
	lz_fn f;

	memcpy(&f, &p, sizeof f);	/* POSIX: a function's address as void * */
	return f;
}

/* curl_global_init() must run before any other curl call and not beside
 * another one: done here, under lz_mu, by whichever thread loads libcurl. */
static int
lz_curl_after(void *handle)
{
	CURLcode (*init)(long) = (CURLcode (*)(long))lz_dlsym(handle, "curl_global_init");
	return init && init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

static struct lz_lib lz_libs[LAZYLIB_COUNT] = {
	[LAZYLIB_CURL] = { LAZY_CURL_SONAME,
			   "outbound HTTP (image registries, Alertmanager, Loki, OTLP, the CLI)",
			   lz_curl_after, NULL, NULL },
	[LAZYLIB_ARCHIVE] = { LAZY_ARCHIVE_SONAME, "image layers", NULL, NULL, NULL },
	[LAZYLIB_GIT2] = { LAZY_GIT2_SONAME, "GitOps (Applications, promotion)", NULL, NULL, NULL },
};

void *
lazylib__open(const char *soname, const char *what, char **err)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	*err = h ? NULL : xasprintf("%s needs %s, which cannot be loaded: %s", what, soname,
				    dlerror());
	return h;
}

int
lazylib_load(enum lazylib lib, const char **err)
{
	struct lz_lib *l = &lz_libs[lib];

	BUG_ON(lib >= LAZYLIB_COUNT);
	if (__atomic_load_n(&l->handle, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&lz_mu);
	if (!l->handle && !l->err) {
		void *h = lazylib__open(l->soname, l->what, &l->err);
		if (h && l->after && l->after(h) < 0)
			l->err = xasprintf("%s: %s did not initialise", l->what, l->soname);
		else if (h)
			__atomic_store_n(&l->handle, h, __ATOMIC_RELEASE);
		/* A library that failed to initialise stays mapped: dlclose()
		 * could run its destructors over half-made state. */
		if (l->err)
			log_error("lazylib", "%s", l->err);
	}
	pthread_mutex_unlock(&lz_mu);
	if (err)
		*err = l->err;
	return l->handle ? 0 : -ENOENT;
}

bool
lazylib_loaded(enum lazylib lib)
{
	return __atomic_load_n(&lz_libs[lib].handle, __ATOMIC_ACQUIRE) != NULL;
}

const char *
lazylib_error(enum lazylib lib)
{
	BUG_ON(lib >= LAZYLIB_COUNT);
	return lazylib_loaded(lib) ? NULL : lz_libs[lib].err;
}

/* NAME in LIB, loading LIB first; NULL when it cannot be loaded (logged
 * once) or lacks NAME (logged each time: another version than the one v6
 * was built for). */
static lz_fn
lz_sym(enum lazylib lib, const char *name, lz_fn *cache)
{
	lz_fn f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);

	if (f || lazylib_load(lib, NULL) < 0)
		return f;
	if (!(f = lz_dlsym(lz_libs[lib].handle, name)))
		log_error("lazylib", "%s has no %s: not the version v6 was built for",
			  lz_libs[lib].soname, name);
	__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	return f;
}

/* The reason LIB is missing, for the libraries' own error-string functions. */
static const char *
lz_why(enum lazylib lib)
{
	const char *e = lazylib_error(lib);
	return e ? e : "the library lacks a function v6 needs (see the log)";
}

/* NAME forwarded with the library's prototype; FAIL is what it returns when
 * the library (or NAME in it) is missing: the library's own error value. */
#define LZ_FN(lib, ret, name, params, args, fail)			\
	ret name params							\
	{								\
		static lz_fn cache;					\
		lz_fn f = lz_sym(lib, #name, &cache);			\
		return f ? ((ret (*) params)f) args : (fail);		\
	}
#define LZ_VOID(lib, name, params, args)				\
	void name params						\
	{								\
		static lz_fn cache;					\
		lz_fn f = lz_sym(lib, #name, &cache);			\
		if (f)							\
			((void (*) params)f) args;			\
	}

/* libcurl */
#define C LAZYLIB_CURL
LZ_FN(C, CURL *, curl_easy_init, (void), (), NULL)
LZ_VOID(C, curl_easy_cleanup, (CURL *h), (h))
LZ_VOID(C, curl_easy_reset, (CURL *h), (h))
LZ_FN(C, CURLcode, curl_easy_perform, (CURL *h), (h), CURLE_FAILED_INIT)
LZ_FN(C, const char *, curl_easy_strerror, (CURLcode c), (c), lz_why(LAZYLIB_CURL))
LZ_FN(C, char *, curl_easy_escape, (CURL *h, const char *s, int n), (h, s, n), NULL)
LZ_FN(C, CURLcode, curl_easy_send, (CURL *h, const void *b, size_t n, size_t *sent),
      (h, b, n, sent), CURLE_FAILED_INIT)
LZ_FN(C, CURLcode, curl_easy_recv, (CURL *h, void *b, size_t n, size_t *got), (h, b, n, got), CURLE_FAILED_INIT)
LZ_VOID(C, curl_free, (void *p), (p))
LZ_FN(C, struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s), (l, s), NULL)
LZ_VOID(C, curl_slist_free_all, (struct curl_slist *l), (l))
LZ_FN(C, CURLM *, curl_multi_init, (void), (), NULL)
LZ_FN(C, CURLMcode, curl_multi_cleanup, (CURLM *m), (m), CURLM_INTERNAL_ERROR)
LZ_FN(C, CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *h), (m, h), CURLM_INTERNAL_ERROR)
LZ_FN(C, CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *h), (m, h), CURLM_INTERNAL_ERROR)
LZ_FN(C, CURLMcode, curl_multi_perform, (CURLM *m, int *running), (m, running), CURLM_INTERNAL_ERROR)
LZ_FN(C, CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left), NULL)
LZ_FN(C, CURLMcode, curl_multi_poll,
      (CURLM *m, struct curl_waitfd fds[], unsigned int nfds, int ms, int *ret),
      (m, fds, nfds, ms, ret), CURLM_INTERNAL_ERROR)

/* Loading initialises the library once (lz_curl_after); the callers' own
 * init / cleanup pairs are counted by curl above that, serialised here
 * because curl's are not thread-safe. */
CURLcode
curl_global_init(long flags)
{
	static lz_fn cache;
	CURLcode rc;

	lz_fn f = lz_sym(C, "curl_global_init", &cache);

	if (!f)
		return CURLE_FAILED_INIT;
	pthread_mutex_lock(&lz_mu);
	rc = ((CURLcode (*)(long))f)(flags);
	pthread_mutex_unlock(&lz_mu);
	return rc;
}

void
curl_global_cleanup(void)
{
	static lz_fn cache;

	lz_fn f = lazylib_loaded(C) ? lz_sym(C, "curl_global_cleanup", &cache) : NULL;

	if (!f)
		return;
	pthread_mutex_lock(&lz_mu);
	((void (*)(void))f)();
	pthread_mutex_unlock(&lz_mu);
}

/* The value's type follows from the option's number, as in curl itself. */
CURLcode
curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
	static lz_fn cache;
	CURLcode (*f)(CURL *, CURLoption, ...) =
		(CURLcode (*)(CURL *, CURLoption, ...))lz_sym(C, "curl_easy_setopt", &cache);
	va_list ap;
	CURLcode rc;

	if (!f)
		return CURLE_FAILED_INIT;
	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		rc = f(h, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		rc = f(h, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		rc = f(h, opt, va_arg(ap, lz_fn));
	else if (opt < CURLOPTTYPE_BLOB)
		rc = f(h, opt, va_arg(ap, curl_off_t));
	else
		rc = f(h, opt, va_arg(ap, struct curl_blob *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO takes a pointer to where the answer goes. */
CURLcode
curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
	static lz_fn cache;
	CURLcode (*f)(CURL *, CURLINFO, ...) =
		(CURLcode (*)(CURL *, CURLINFO, ...))lz_sym(C, "curl_easy_getinfo", &cache);
	va_list ap;
	CURLcode rc;

	if (!f)
		return CURLE_FAILED_INIT;
	va_start(ap, info);
	rc = f(h, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}
#undef C

/* libarchive */
#define A LAZYLIB_ARCHIVE
LZ_FN(A, struct archive *, archive_read_new, (void), (), NULL)
LZ_FN(A, int, archive_read_free, (struct archive *a), (a), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_support_filter_gzip, (struct archive *a), (a), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_support_filter_zstd, (struct archive *a), (a), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_support_filter_none, (struct archive *a), (a), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_support_format_tar, (struct archive *a), (a), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_open,
      (struct archive *a, void *data, archive_open_callback *o, archive_read_callback *r,
       archive_close_callback *c),
      (a, data, o, r, c), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_open_filename, (struct archive *a, const char *path, size_t block),
      (a, path, block), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e), ARCHIVE_FATAL)
LZ_FN(A, int, archive_read_data_block,
      (struct archive *a, const void **buf, size_t *size, la_int64_t *off), (a, buf, size, off), ARCHIVE_FATAL)
LZ_FN(A, const char *, archive_error_string, (struct archive *a), (a), lz_why(LAZYLIB_ARCHIVE))
LZ_FN(A, time_t, archive_entry_atime, (struct archive_entry *e), (e), 0)
LZ_FN(A, int, archive_entry_atime_is_set, (struct archive_entry *e), (e), ARCHIVE_FATAL)
LZ_FN(A, long, archive_entry_atime_nsec, (struct archive_entry *e), (e), 0)
LZ_FN(A, time_t, archive_entry_mtime, (struct archive_entry *e), (e), 0)
LZ_FN(A, long, archive_entry_mtime_nsec, (struct archive_entry *e), (e), 0)
LZ_FN(A, __LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e), 0)
LZ_FN(A, __LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e), 0)
LZ_FN(A, la_int64_t, archive_entry_uid, (struct archive_entry *e), (e), 0)
LZ_FN(A, la_int64_t, archive_entry_gid, (struct archive_entry *e), (e), 0)
LZ_FN(A, la_int64_t, archive_entry_size, (struct archive_entry *e), (e), 0)
LZ_FN(A, dev_t, archive_entry_rdev, (struct archive_entry *e), (e), 0)
LZ_FN(A, const char *, archive_entry_pathname, (struct archive_entry *e), (e), NULL)
LZ_FN(A, const char *, archive_entry_hardlink, (struct archive_entry *e), (e), NULL)
LZ_FN(A, const char *, archive_entry_symlink, (struct archive_entry *e), (e), NULL)
LZ_FN(A, int, archive_entry_xattr_reset, (struct archive_entry *e), (e), ARCHIVE_FATAL)
LZ_FN(A, int, archive_entry_xattr_next,
      (struct archive_entry *e, const char **name, const void **value, size_t *size),
      (e, name, value, size), ARCHIVE_FATAL)

/* Formatted here: a va_list cannot be handed on to a variadic function. */
void
archive_set_error(struct archive *a, int err, const char *fmt, ...)
{
	static lz_fn cache;
	void (*f)(struct archive *, int, const char *, ...) =
		(void (*)(struct archive *, int, const char *, ...))lz_sym(A, "archive_set_error",
									   &cache);
	va_list ap;

	if (!f)
		return;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	f(a, err, "%s", msg);
	free(msg);
}
#undef A

/* libgit2 */
#define G LAZYLIB_GIT2
/* What git_error_last() says when libgit2 cannot be loaded. */
static const git_error *
lz_git_error(void)
{
	static git_error e;
	e.message = (char *)lz_why(G);
	e.klass = GIT_ERROR_NONE;
	return &e;
}

LZ_FN(G, int, git_libgit2_init, (void), (), -1)
LZ_FN(G, int, git_libgit2_shutdown, (void), (), -1)
LZ_FN(G, const git_error *, git_error_last, (void), (), lz_git_error())
LZ_FN(G, int, git_error_set_str, (int klass, const char *msg), (klass, msg), -1)
LZ_FN(G, int, git_repository_init, (git_repository **out, const char *path, unsigned bare),
      (out, path, bare), -1)
LZ_FN(G, int, git_repository_open_bare, (git_repository **out, const char *path), (out, path), -1)
LZ_VOID(G, git_repository_free, (git_repository *r), (r))
LZ_FN(G, int, git_remote_create_options_init, (git_remote_create_options *o, unsigned int v),
      (o, v), -1)
LZ_FN(G, int, git_remote_create_with_opts,
      (git_remote **out, const char *url, const git_remote_create_options *o), (out, url, o), -1)
LZ_FN(G, int, git_remote_fetch,
      (git_remote *r, const git_strarray *specs, const git_fetch_options *o, const char *msg),
      (r, specs, o, msg), -1)
LZ_FN(G, int, git_remote_push,
      (git_remote *r, const git_strarray *specs, const git_push_options *o), (r, specs, o), -1)
LZ_FN(G, int, git_remote_ls, (const git_remote_head ***out, size_t *n, git_remote *r),
      (out, n, r), -1)
LZ_VOID(G, git_remote_free, (git_remote *r), (r))
LZ_FN(G, int, git_fetch_options_init, (git_fetch_options *o, unsigned int v), (o, v), -1)
LZ_FN(G, int, git_push_options_init, (git_push_options *o, unsigned int v), (o, v), -1)
LZ_FN(G, int, git_checkout_options_init, (git_checkout_options *o, unsigned int v), (o, v), -1)
LZ_FN(G, int, git_checkout_tree,
      (git_repository *r, const git_object *treeish, const git_checkout_options *o),
      (r, treeish, o), -1)
LZ_FN(G, int, git_credential_userpass_plaintext_new,
      (git_credential **out, const char *user, const char *password), (out, user, password), -1)
LZ_FN(G, int, git_credential_username_new, (git_credential **out, const char *user),
      (out, user), -1)
LZ_FN(G, int, git_credential_ssh_key_memory_new,
      (git_credential **out, const char *user, const char *pub, const char *priv,
       const char *pass),
      (out, user, pub, priv, pass), -1)
LZ_FN(G, int, git_reference_name_to_id, (git_oid *out, git_repository *r, const char *name),
      (out, r, name), -1)
LZ_FN(G, int, git_reference_create,
      (git_reference **out, git_repository *r, const char *name, const git_oid *id, int force,
       const char *msg),
      (out, r, name, id, force, msg), -1)
LZ_VOID(G, git_reference_free, (git_reference *ref), (ref))
LZ_FN(G, int, git_revparse_single, (git_object **out, git_repository *r, const char *spec),
      (out, r, spec), -1)
LZ_FN(G, int, git_object_peel, (git_object **out, const git_object *o, git_object_t type),
      (out, o, type), -1)
LZ_VOID(G, git_object_free, (git_object *o), (o))
LZ_FN(G, int, git_commit_lookup, (git_commit **out, git_repository *r, const git_oid *id),
      (out, r, id), -1)
LZ_FN(G, int, git_commit_tree, (git_tree **out, const git_commit *c), (out, c), -1)
LZ_FN(G, const git_oid *, git_commit_id, (const git_commit *c), (c), NULL)
LZ_FN(G, int, git_commit_create,
      (git_oid *id, git_repository *r, const char *ref, const git_signature *author,
       const git_signature *committer, const char *encoding, const char *msg,
       const git_tree *tree, size_t nparents, const git_commit *parents[]),
      (id, r, ref, author, committer, encoding, msg, tree, nparents, parents), -1)
LZ_VOID(G, git_commit_free, (git_commit *c), (c))
LZ_FN(G, int, git_tree_lookup, (git_tree **out, git_repository *r, const git_oid *id),
      (out, r, id), -1)
LZ_FN(G, int, git_tree_create_updated,
      (git_oid *out, git_repository *r, git_tree *base, size_t n, const git_tree_update *up),
      (out, r, base, n, up), -1)
LZ_VOID(G, git_tree_free, (git_tree *t), (t))
LZ_FN(G, int, git_blob_create_from_buffer,
      (git_oid *id, git_repository *r, const void *buf, size_t len), (id, r, buf, len), -1)
LZ_FN(G, int, git_signature_now, (git_signature **out, const char *name, const char *email),
      (out, name, email), -1)
LZ_VOID(G, git_signature_free, (git_signature *s), (s))
LZ_FN(G, int, git_oid_fromstr, (git_oid *out, const char *str), (out, str), -1)
LZ_FN(G, char *, git_oid_tostr, (char *out, size_t n, const git_oid *id), (out, n, id), NULL)
LZ_FN(G, int, git_oid_cpy, (git_oid *out, const git_oid *src), (out, src), -1)
LZ_FN(G, int, git_oid_equal, (const git_oid *a, const git_oid *b), (a, b), -1)
#undef G
