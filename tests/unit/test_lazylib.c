/* Unit tests of lazylib.c, the libraries loaded at first use: nothing is
 * mapped before it is used; the forwarders hand every kind of argument on
 * (curl's long, pointer, callback and off_t options, archive_set_error's
 * format); the first use from several threads loads once; and a library
 * that cannot be loaded (libgit2 under a name that does not exist, below)
 * gives its forwarders' failure values and a message naming it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The module itself, with libgit2 under a soname nobody has. */
#undef LAZY_GIT2_SONAME
#define LAZY_GIT2_SONAME "libv6-test-missing.so.0"
#include "lazylib.c"

static bool
mapped(const char *soname)
{
	void *h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
	if (h)
		dlclose(h);	/* drops only the reference NOLOAD took */
	return h != NULL;
}

/* First in the list: no test has used a library yet. */
static void
test_nothing_mapped_before_first_use(void **state)
{
	(void)state;
	assert_false(mapped(LAZY_CURL_SONAME));
	assert_false(mapped(LAZY_ARCHIVE_SONAME));
	for (int i = 0; i < LAZYLIB_COUNT; i++) {
		assert_false(lazylib_loaded(i));
		assert_null(lazylib_error(i));
	}
}

static void *
archive_user(void *arg)
{
	struct archive *a = archive_read_new();
	(void)arg;
	if (a == NULL)
		return (void *)1;
	archive_read_free(a);
	return NULL;
}

static void
test_first_use_from_threads_loads_once(void **state)
{
	pthread_t t[8];
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		assert_int_equal(pthread_create(&t[i], NULL, archive_user, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		void *rc;
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
	}
	assert_true(lazylib_loaded(LAZYLIB_ARCHIVE));
	assert_true(mapped(LAZY_ARCHIVE_SONAME));
	assert_false(mapped(LAZY_CURL_SONAME));
}

static void
test_archive_set_error_formats(void **state)
{
	(void)state;
	struct archive *a = archive_read_new();
	assert_non_null(a);
	archive_set_error(a, EIO, "HTTP %ld from %s", 404L, "the registry");
	assert_string_equal(archive_error_string(a), "HTTP 404 from the registry");
	archive_read_free(a);
}

static size_t
count_bytes(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	*(size_t *)arg += size * n;
	return size * n;
}

static void
test_curl_options_of_every_type(void **state)
{
	(void)state;
	char path[] = "/tmp/v6-lazylib-XXXXXX";
	int fd = mkstemp(path);
	static char data[10000];
	assert_true(fd >= 0);
	memset(data, 'x', sizeof data);
	assert_int_equal(write(fd, data, sizeof data), (ssize_t)sizeof data);
	close(fd);
	char *url = xasprintf("file://%s", path);

	CURL *h = curl_easy_init();
	assert_non_null(h);
	assert_true(mapped(LAZY_CURL_SONAME));
	size_t got = 0;
	assert_int_equal(curl_easy_setopt(h, CURLOPT_URL, url), CURLE_OK);	/* pointer */
	assert_int_equal(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);	/* long */
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, count_bytes), CURLE_OK);
	assert_int_equal(curl_easy_setopt(h, CURLOPT_WRITEDATA, &got), CURLE_OK);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	assert_int_equal(got, sizeof data);

	/* an off_t option, read back through an off_t getinfo */
	got = 0;
	assert_int_equal(curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)9000),
			 CURLE_OK);
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	assert_int_equal(got, 1000);
	curl_off_t n = 0;
	assert_int_equal(curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &n), CURLE_OK);
	assert_int_equal(n, 1000);
	assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
	curl_easy_cleanup(h);
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	curl_global_cleanup();
	unlink(path);
	free(url);
}

static void
test_missing_library_fails_softly(void **state)
{
	(void)state;
	const char *err = NULL;
	assert_int_equal(lazylib_load(LAZYLIB_GIT2, &err), -ENOENT);
	assert_non_null(err);
	assert_non_null(strstr(err, "GitOps"));
	assert_non_null(strstr(err, "needs libv6-test-missing.so.0, which cannot be loaded: "));
	assert_ptr_equal(lazylib_error(LAZYLIB_GIT2), err);
	assert_false(lazylib_loaded(LAZYLIB_GIT2));

	/* the library's own failure values, and its error says why */
	assert_int_equal(git_libgit2_init(), -1);
	git_repository *repo = NULL;
	assert_int_equal(git_repository_open_bare(&repo, "/nonexistent"), -1);
	assert_null(repo);
	const git_error *e = git_error_last();
	assert_non_null(e);
	assert_string_equal(e->message, err);
	git_repository_free(NULL);

	/* the others are unaffected */
	assert_true(lazylib_loaded(LAZYLIB_CURL));
	assert_null(lazylib_error(LAZYLIB_CURL));
}

static void
test_open_error_names_library_and_user(void **state)
{
	(void)state;
	char *err = NULL;
	assert_null(lazylib__open("libv6-no-such.so.7", "the test", &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "the test needs libv6-no-such.so.7, which cannot be loaded: "));
	assert_non_null(strstr(err, "No such file"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_mapped_before_first_use),
		cmocka_unit_test(test_first_use_from_threads_loads_once),
		cmocka_unit_test(test_archive_set_error_formats),
		cmocka_unit_test(test_curl_options_of_every_type),
		cmocka_unit_test(test_missing_library_fails_softly),
		cmocka_unit_test(test_open_error_names_library_and_user),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
