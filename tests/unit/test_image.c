/* test_image.c — unit tests of the image store's pure parts and its
 * unpacker: reference normalisation (Docker Hub rules), the default pull
 * policy, picking this platform out of an index, path cleaning, whiteout
 * names, and unpacking tars built here in memory: whiteouts become overlay
 * whiteouts, and no entry (../, absolute, through a symlink, a hard link
 * out) writes outside the root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/evp.h>

#include "image_int.h"

static char *
norm(const char *s)
{
	struct img_ref r;
	char *msg = NULL;
	if (img_ref_parse(s, &r, &msg) < 0) {
		free(msg);
		return NULL;
	}
	char *out = img_ref_string(&r);
	img_ref_free(&r);
	return out;
}

static void
expect_norm(const char *in, const char *want)
{
	char *got = norm(in);
	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void
test_ref_follows_docker_hub_rules(void **state)
{
	(void)state;
	expect_norm("nginx", "docker.io/library/nginx:latest");
	expect_norm("nginx:1.25", "docker.io/library/nginx:1.25");
	expect_norm("user/app", "docker.io/user/app:latest");
	expect_norm("index.docker.io/library/nginx:1", "docker.io/library/nginx:1");
	expect_norm("docker.io/nginx", "docker.io/library/nginx:latest");
	expect_norm("localhost/app", "localhost/app:latest");
	expect_norm("127.0.0.1:5000/a/b:v2", "127.0.0.1:5000/a/b:v2");
	expect_norm("quay.io/x/y", "quay.io/x/y:latest");
	expect_norm("nginx@sha256:" D64, "docker.io/library/nginx@sha256:" D64);
	expect_norm("nginx:1@sha256:" D64, "docker.io/library/nginx:1@sha256:" D64);
	expect_norm("reg:5000/app", "reg:5000/app:latest");
	/* Refused: uppercase repository, bad digest, empty, bad tag. */
	expect_norm("Nginx", NULL);
	expect_norm("nginx@sha256:abc", NULL);
	expect_norm("", NULL);
	expect_norm("nginx:-x", NULL);
	expect_norm("a//b", NULL);
}

static void
test_default_pull_policy_is_kubernetes(void **state)
{
	(void)state;
	assert_int_equal(img_default_policy("nginx"), IMG_PULL_ALWAYS);
	assert_int_equal(img_default_policy("nginx:latest"), IMG_PULL_ALWAYS);
	assert_int_equal(img_default_policy("nginx:1.25"), IMG_PULL_IF_NOT_PRESENT);
	assert_int_equal(img_default_policy("nginx@sha256:" D64), IMG_PULL_IF_NOT_PRESENT);
}

static void
test_index_selects_this_platform(void **state)
{
	(void)state;
	json_t *idx = json_loads("{\"manifests\": ["
	    "{\"digest\": \"sha256:aa\", \"platform\": {\"os\": \"linux\", \"architecture\": \"arm\", \"variant\": \"v7\"}},"
	    "{\"digest\": \"sha256:bb\", \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\"}},"
	    "{\"digest\": \"sha256:cc\", \"platform\": {\"os\": \"linux\", \"architecture\": \"arm64\", \"variant\": \"v8\"}},"
	    "{\"digest\": \"sha256:dd\", \"platform\": {\"os\": \"windows\", \"architecture\": \"amd64\"}},"
	    "{\"digest\": \"sha256:ee\", \"platform\": {\"os\": \"linux\", \"architecture\": \"amd64\"}},"
	    "{\"digest\": \"sha256:ff\", \"platform\": {\"os\": \"unknown\", \"architecture\": \"unknown\"}}"
	    "]}", 0, NULL);
	const json_t *m = img_index_select(idx, "linux", "amd64", "");
	assert_string_equal(json_string_value(json_object_get(m, "digest")), "sha256:ee");
	m = img_index_select(idx, "linux", "arm64", "v8");
	assert_string_equal(json_string_value(json_object_get(m, "digest")), "sha256:cc");
	m = img_index_select(idx, "linux", "arm", "v7");
	assert_string_equal(json_string_value(json_object_get(m, "digest")), "sha256:aa");
	assert_null(img_index_select(idx, "linux", "arm", "v6"));
	assert_null(img_index_select(idx, "linux", "s390x", ""));
	assert_true(img_is_index(idx, NULL));
	json_t *man = json_pack("{s:s}", "mediaType", IMG_MT_DOCKER_MANIFEST);
	assert_false(img_is_index(man, NULL));
	json_decref(man);
	json_decref(idx);
}

static void
test_path_clean_refuses_escapes(void **state)
{
	char out[256];
	(void)state;
	assert_int_equal(img__path_clean("./etc//passwd", out, sizeof out), 0);
	assert_string_equal(out, "etc/passwd");
	assert_int_equal(img__path_clean("./", out, sizeof out), 0);
	assert_string_equal(out, "");
	assert_int_equal(img__path_clean("a/./b/", out, sizeof out), 0);
	assert_string_equal(out, "a/b");
	assert_int_equal(img__path_clean("../etc", out, sizeof out), -EPERM);
	assert_int_equal(img__path_clean("a/../../b", out, sizeof out), -EPERM);
	assert_int_equal(img__path_clean("a/..", out, sizeof out), -EPERM);
	assert_int_equal(img__path_clean("/etc/passwd", out, sizeof out), -EPERM);
	assert_int_equal(img__path_clean("a..b/c", out, sizeof out), 0);
}

static void
test_whiteout_names(void **state)
{
	const char *t = NULL;
	(void)state;
	assert_int_equal(img__whiteout(".wh..wh..opq", &t), IMG_WH_OPAQUE);
	assert_int_equal(img__whiteout(".wh.gone", &t), IMG_WH_FILE);
	assert_string_equal(t, "gone");
	assert_int_equal(img__whiteout(".wh..", &t), IMG_WH_INVALID);
	assert_int_equal(img__whiteout(".wh.", &t), IMG_WH_INVALID);
	assert_int_equal(img__whiteout("file.wh.x", &t), IMG_WH_NONE);
}

/* ---- unpacking tars built in memory ------------------------------------ */

struct tarb {
	struct archive *a;
	char buf[1 << 16];
	size_t used;
};

static void
tar_begin(struct tarb *t)
{
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	archive_write_add_filter_gzip(t->a);
	assert_int_equal(archive_write_open_memory(t->a, t->buf, sizeof t->buf, &t->used),
	    ARCHIVE_OK);
}

static void
tar_add(struct tarb *t, const char *name, mode_t type, const char *data, const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
	assert_int_equal(archive_write_header(t->a, e), ARCHIVE_OK);
	if (data)
		archive_write_data(t->a, data, strlen(data));
	archive_entry_free(e);
}

/* Closes the tar and unpacks it into dir; returns img__unpack_archive's rc. */
static int
tar_unpack(struct tarb *t, const char *dir, bool overlay)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	struct archive *r = img__archive_reader();
	assert_int_equal(archive_read_open_memory(r, t->buf, t->used), ARCHIVE_OK);
	char *msg = NULL;
	int rc = img__unpack_archive(r, dir, overlay, &msg);
	archive_read_free(r);
	if (rc < 0)
		assert_non_null(msg);
	free(msg);
	return rc;
}

struct dirs {
	char base[64];
	char root[96];
	char outside[96];
};

static void
dirs_make(struct dirs *d)
{
	strcpy(d->base, "/tmp/v6-test-image-XXXXXX");
	assert_non_null(mkdtemp(d->base));
	snprintf(d->root, sizeof d->root, "%s/root", d->base);
	snprintf(d->outside, sizeof d->outside, "%s/outside", d->base);
	assert_int_equal(mkdir(d->root, 0755), 0);
	assert_int_equal(mkdir(d->outside, 0755), 0);
}

static bool
exists(const char *dir, const char *rel)
{
	char p[256];
	struct stat st;
	snprintf(p, sizeof p, "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

static void
test_unpack_converts_whiteouts_for_overlay(void **state)
{
	struct tarb t;
	struct dirs d;
	struct stat st;
	char p[256], val[8];
	(void)state;

	dirs_make(&d);
	tar_begin(&t);
	tar_add(&t, "./etc/", AE_IFDIR, NULL, NULL);
	tar_add(&t, "etc/.wh.gone", AE_IFREG, "", NULL);
	tar_add(&t, "data/", AE_IFDIR, NULL, NULL);
	tar_add(&t, "data/.wh..wh..opq", AE_IFREG, "", NULL);
	tar_add(&t, "data/new", AE_IFREG, "n", NULL);
	tar_add(&t, "bin/sh", AE_IFLNK, NULL, "/bin/busybox");
	tar_add(&t, "bin/busybox", AE_IFREG, "elf", NULL);
	tar_add(&t, "bin/ash", AE_IFREG, NULL, "bin/busybox");
	assert_int_equal(tar_unpack(&t, d.root, true), 0);

	snprintf(p, sizeof p, "%s/etc/gone", d.root);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_false(exists(d.root, "etc/.wh.gone"));
	snprintf(p, sizeof p, "%s/data", d.root);
	assert_int_equal(getxattr(p, "trusted.overlay.opaque", val, sizeof val), 1);
	assert_int_equal(val[0], 'y');
	assert_false(exists(d.root, "data/.wh..wh..opq"));
	assert_true(exists(d.root, "data/new"));
	snprintf(p, sizeof p, "%s/bin/sh", d.root);
	char target[64] = "";
	assert_int_equal(readlink(p, target, sizeof target - 1), strlen("/bin/busybox"));
	snprintf(p, sizeof p, "%s/bin/ash", d.root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	util_remove_tree(d.base);
}

static void
test_unpack_zstd_layer(void **state)
{
	struct tarb t;
	struct dirs d;
	(void)state;
	dirs_make(&d);
	t.a = archive_write_new();
	archive_write_set_format_pax_restricted(t.a);
	assert_int_equal(archive_write_add_filter_zstd(t.a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(t.a, t.buf, sizeof t.buf, &t.used),
	    ARCHIVE_OK);
	tar_add(&t, "etc/hello", AE_IFREG, "zstd", NULL);
	tar_add(&t, "etc/.wh.old", AE_IFREG, "", NULL);
	assert_int_equal(tar_unpack(&t, d.root, true), 0);
	assert_true(exists(d.root, "etc/hello"));
	assert_true(exists(d.root, "etc/old"));
	util_remove_tree(d.base);
}

static void
test_unpack_plain_keeps_whiteout_names(void **state)
{
	struct tarb t;
	struct dirs d;
	(void)state;
	dirs_make(&d);
	tar_begin(&t);
	tar_add(&t, "etc/.wh.gone", AE_IFREG, "", NULL);
	assert_int_equal(tar_unpack(&t, d.root, false), 0);
	assert_true(exists(d.root, "etc/.wh.gone"));
	util_remove_tree(d.base);
}

/* ---- the store: a removal decided on the loop, done on the pool ---------- */

struct blobs {
	const char *digest[2];
	const void *data[2];
	size_t len[2];
};

static int
blobs_fetch(void *arg, const char *digest, const char *tmp, char **msg)
{
	struct blobs *b = arg;
	for (size_t i = 0; i < 2; i++)
		if (!strcmp(b->digest[i], digest))
			return file_write_atomic(tmp, b->data[i], b->len[i], false);
	*msg = xasprintf("no blob %s", digest);
	return -ENOENT;
}

/* The image GC and `v6 image rm` decide on the loop that an image is
 * unused and remove it on the pool; a pod that looked the image up in
 * between (it is starting with it) keeps it. */
static void
test_removal_spares_an_image_looked_up_since_it_was_picked(void **state)
{
	(void)state;
	static const char ref[] = "localhost/app:1";
	struct dirs d;
	struct tarb t;
	uv_loop_t loop;
	struct img_store *s;
	struct img_info *info;
	char cfg_d[80], layer_d[80], path[256], *msg = NULL, *removed = NULL;

	dirs_make(&d);
	tar_begin(&t);
	tar_add(&t, "hello", AE_IFREG, "hi", NULL);
	archive_write_close(t.a);
	archive_write_free(t.a);
	static const char cfg[] = "{\"config\":{\"Cmd\":[\"/hello\"]}}";
	img__digest_bytes(cfg, strlen(cfg), cfg_d);
	img__digest_bytes(t.buf, t.used, layer_d);
	char *manifest = xasprintf("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":"
	    "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
	    "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar"
	    "+gzip\",\"digest\":\"%s\",\"size\":%zu}]}", IMG_MT_OCI_MANIFEST, cfg_d, strlen(cfg),
	    layer_d, t.used);
	struct blobs b = { { cfg_d, layer_d }, { cfg, t.buf }, { strlen(cfg), t.used } };
	struct img_source src = { blobs_fetch, NULL, &b, 0, NULL, NULL };

	assert_int_equal(uv_loop_init(&loop), 0);
	snprintf(path, sizeof path, "%s/store", d.base);
	assert_int_equal(img_store_open(&loop, path, &s), 0);
	assert_int_equal(img__store_put(s, ref, manifest, strlen(manifest), NULL, &src, &msg), 0);

	/* picked while unused (the GC reads the stamp from its list) */
	json_t *list = img__list_used(s);
	json_int_t stamp = json_integer_value(json_object_get(json_array_get(list, 0),
	    "useStamp"));
	json_decref(list);
	assert_int_equal(stamp, img__use_stamp(s, ref));
	/* a pod starts with it */
	assert_int_equal(img_lookup(s, ref, &info), 0);
	img_info_free(info);
	assert_int_equal(img__remove_unused(s, ref, stamp, &removed, &msg), -EBUSY);
	assert_non_null(strstr(msg, "came into use while it was being removed"));
	free(msg);
	msg = NULL;
	assert_null(removed);
	assert_int_equal(img_lookup(s, ref, &info), 0);	/* still whole */
	snprintf(path, sizeof path, "%s/hello", info->layers[0]);
	assert_int_equal(access(path, F_OK), 0);
	img_info_free(info);

	/* picked again, nobody looks it up: it goes, with its layer */
	stamp = img__use_stamp(s, ref);
	assert_int_equal(img__remove_unused(s, ref, stamp, &removed, &msg), 0);
	assert_string_equal(removed, ref);
	free(removed);
	assert_int_equal(img_lookup(s, ref, &info), -ENOENT);
	assert_int_equal(access(path, F_OK), -1);

	img_store_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(manifest);
	util_remove_tree(d.base);
}

static void
ensure_ended(void *arg, int err, const char *message, struct img_info *info)
{
	(void)err, (void)message;
	img_info_free(info);
	*(bool *)arg = true;
}

static void
stop_loop(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* The GC never takes an image a pull is bringing to a pod (an Always pull
 * of a present image, here hanging on a registry that never answers): the
 * pod learns the image only when the pull ends. Thresholds 0: the disk is
 * always "full". */
static void
test_gc_spares_an_image_a_pull_is_bringing(void **state)
{
	(void)state;
	struct dirs d;
	struct tarb t;
	uv_loop_t loop;
	uv_timer_t stop;
	struct img_store *s;
	struct img_gc *gc;
	struct img_info *info;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof sa;
	char cfg_d[80], layer_d[80], path[256], ref[64], *msg = NULL;
	bool ended = false;

	/* a registry that accepts connections and never says a word */
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(ref, sizeof ref, "127.0.0.1:%d/app:1", ntohs(sa.sin_port));

	dirs_make(&d);
	tar_begin(&t);
	tar_add(&t, "hello", AE_IFREG, "hi", NULL);
	archive_write_close(t.a);
	archive_write_free(t.a);
	static const char cfg[] = "{\"config\":{}}";
	img__digest_bytes(cfg, strlen(cfg), cfg_d);
	img__digest_bytes(t.buf, t.used, layer_d);
	char *manifest = xasprintf("{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\","
	    "\"size\":%zu},\"layers\":[{\"digest\":\"%s\",\"size\":%zu}]}", cfg_d, strlen(cfg),
	    layer_d, t.used);
	struct blobs b = { { cfg_d, layer_d }, { cfg, t.buf }, { strlen(cfg), t.used } };
	struct img_source src = { blobs_fetch, NULL, &b, 0, NULL, NULL };
	assert_int_equal(uv_loop_init(&loop), 0);
	snprintf(path, sizeof path, "%s/store", d.base);
	assert_int_equal(img_store_open(&loop, path, &s), 0);
	assert_int_equal(img__store_put(s, ref, manifest, strlen(manifest), NULL, &src, &msg), 0);

	assert_int_equal(img_ensure(s, ref, IMG_PULL_ALWAYS, NULL, 0, ensure_ended, &ended), 0);
	assert_true(img__pull_pending(s, ref));
	struct img_gc_config gcc = { .high = 0, .low = 0, .min_age_ms = 0, .period_ms = 10 };
	assert_int_equal(img_gc_start(s, &gcc, &gc), 0);
	uv_timer_init(&loop, &stop);
	uv_timer_start(&stop, stop_loop, 300, 0);
	uv_run(&loop, UV_RUN_DEFAULT);	/* thirty GC periods */
	assert_false(ended);
	assert_int_equal(img_lookup(s, ref, &info), 0);
	img_info_free(info);

	img_gc_stop(gc);
	uv_close((uv_handle_t *)&stop, NULL);
	img_store_close(s);	/* the hanging pull gives up */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	close(lfd);
	free(manifest);
	util_remove_tree(d.base);
}

/* Each archive tries one way out; each is refused and outside stays empty. */
static void
test_unpack_never_writes_outside_the_root(void **state)
{
	struct dirs d;
	(void)state;
	dirs_make(&d);
	char abs_out[128];
	snprintf(abs_out, sizeof abs_out, "%s/pwned", d.outside);

	for (int i = 0; i < 6; i++) {
		struct tarb t;
		tar_begin(&t);
		tar_add(&t, "ok", AE_IFREG, "fine", NULL);
		switch (i) {
		case 0:
			tar_add(&t, "../outside/pwned", AE_IFREG, "x", NULL);
			break;
		case 1:	/* an absolute name: stays inside (checked below) */
			tar_add(&t, abs_out, AE_IFREG, "x", NULL);
			break;
		case 2:	/* an absolute symlink, then a file through it */
			tar_add(&t, "link", AE_IFLNK, NULL, d.outside);
			tar_add(&t, "link/pwned", AE_IFREG, "x", NULL);
			break;
		case 3:	/* a relative symlink climbing out, then through it */
			tar_add(&t, "up", AE_IFLNK, NULL, "../outside");
			tar_add(&t, "up/pwned", AE_IFREG, "x", NULL);
			break;
		case 4:	/* a hard link to a file outside */
			tar_add(&t, "hl", AE_IFREG, NULL, "../outside/victim");
			break;
		case 5:	/* a hard link through an absolute symlink */
			tar_add(&t, "link2", AE_IFLNK, NULL, d.outside);
			tar_add(&t, "hl2", AE_IFREG, NULL, "link2/victim");
			break;
		}
		char victim[160];
		snprintf(victim, sizeof victim, "%s/victim", d.outside);
		FILE *f = fopen(victim, "w");
		fputs("secret", f);
		fclose(f);
		if (i == 1) {
			/* an absolute name is read inside the root, as containerd does */
			char inside[320];
			struct stat in_st;
			snprintf(inside, sizeof inside, "%s%s", d.root, abs_out);
			assert_int_equal(tar_unpack(&t, d.root, true), 0);
			assert_int_equal(stat(inside, &in_st), 0);
		} else {
			assert_int_not_equal(tar_unpack(&t, d.root, true), 0);
		}
		assert_false(exists(d.outside, "pwned"));
		struct stat st;
		assert_int_equal(stat(victim, &st), 0);
		assert_int_equal(st.st_nlink, 1);
		unlink(victim);
	}
	/* The cached parent of consecutive files is dropped when the path
	 * changes meaning: a directory replaced by a link out, then a file
	 * "through" the old directory's name. */
	for (int i = 0; i < 2; i++) {
		struct tarb t;
		tar_begin(&t);
		tar_add(&t, "d/a", AE_IFREG, "a", NULL);
		if (i == 0)
			tar_add(&t, "d", AE_IFLNK, NULL, d.outside);
		else
			tar_add(&t, "d", AE_IFREG, "now a file", NULL);
		tar_add(&t, "d/pwned", AE_IFREG, "x", NULL);
		assert_int_not_equal(tar_unpack(&t, d.root, true), 0);
		assert_false(exists(d.outside, "pwned"));
		util_remove_tree(d.root);
		mkdir(d.root, 0755);
	}
	/* A symlink pointing out is itself fine (images have them); writing a
	 * regular file of that name replaces the link, never its target. */
	struct tarb t;
	tar_begin(&t);
	tar_add(&t, "etc", AE_IFLNK, NULL, d.outside);
	tar_add(&t, "etc", AE_IFREG, "x", NULL);
	assert_int_equal(tar_unpack(&t, d.root, true), 0);
	struct stat st;
	char p[160];
	snprintf(p, sizeof p, "%s/etc", d.root);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	util_remove_tree(d.base);
}

static void
test_plain_http_only_for_loopback_or_insecure(void **state)
{
	char *list[] = { "reg.lan:5000", NULL };
	(void)state;
	assert_true(img_plain_http_allowed("127.0.0.1:5000", NULL));
	assert_true(img_plain_http_allowed("127.5.6.7", NULL));
	assert_true(img_plain_http_allowed("localhost:5000", NULL));
	assert_true(img_plain_http_allowed("localhost", NULL));
	assert_true(img_plain_http_allowed("[::1]:5000", NULL));
	assert_false(img_plain_http_allowed("docker.io", NULL));
	assert_false(img_plain_http_allowed("reg.lan:5000", NULL));
	assert_true(img_plain_http_allowed("reg.lan:5000", list));
	assert_false(img_plain_http_allowed("reg.lan:5001", list));
	assert_false(img_plain_http_allowed("reg.lan", list));
	assert_false(img_plain_http_allowed("localhost.evil.com:5000", NULL));
	assert_false(img_plain_http_allowed("127.0.0.1.nip.io", NULL));
}

static json_t *
secret_of(void *arg, const char *ns, const char *name)
{
	const json_t *all = arg;
	char key[128];
	snprintf(key, sizeof key, "%s/%s", ns, name);
	json_t *s = json_object_get(all, key);
	return s ? json_incref(s) : NULL;
}

static json_t *
dockercfg(const char *type, const char *json)
{
	unsigned char b64[512];
	EVP_EncodeBlock(b64, (const unsigned char *)json, (int)strlen(json));
	return json_pack("{s:s, s:{s:s}}", "type", type, "data", ".dockerconfigjson", b64);
}

/* imagePullSecrets: dockerconfigjson Secrets merged, the first naming a
 * registry wins; missing or other types skipped. imagePullPolicy default. */
static void
test_pull_secrets_and_policy(void **state)
{
	(void)state;
	json_t *all = json_object();
	json_object_set_new(all, "ns/a", dockercfg("kubernetes.io/dockerconfigjson",
	    "{\"auths\": {\"reg:5000\": {\"auth\": \"YTpi\"}}}"));
	json_object_set_new(all, "ns/b", dockercfg("kubernetes.io/dockerconfigjson",
	    "{\"auths\": {\"reg:5000\": {\"auth\": \"other\"}, \"q.io\": {\"auth\": \"cQ==\"}}}"));
	json_object_set_new(all, "ns/opaque", dockercfg("Opaque",
	    "{\"auths\": {\"x.io\": {\"auth\": \"eA==\"}}}"));
	json_t *pod = json_loads("{\"metadata\": {\"namespace\": \"ns\"}, \"spec\": "
	    "{\"imagePullSecrets\": [{\"name\": \"a\"}, {\"name\": \"missing\"}, "
	    "{\"name\": \"opaque\"}, {\"name\": \"b\"}]}}", 0, NULL);
	json_t *auths = img_pull_auths(pod, secret_of, all);
	assert_non_null(auths);
	assert_string_equal(json_string_value(json_object_get(json_object_get(auths,
	    "reg:5000"), "auth")), "YTpi");
	assert_non_null(json_object_get(auths, "q.io"));
	assert_null(json_object_get(auths, "x.io"));
	json_decref(auths);
	json_object_del(json_object_get(pod, "spec"), "imagePullSecrets");
	assert_null(img_pull_auths(pod, secret_of, all));
	json_decref(pod);
	json_decref(all);

	json_t *c = json_pack("{s:s}", "image", "nginx");
	assert_int_equal(img_policy_of(c), IMG_PULL_ALWAYS);
	json_object_set_new(c, "image", json_string("nginx:1.25"));
	assert_int_equal(img_policy_of(c), IMG_PULL_IF_NOT_PRESENT);
	json_object_set_new(c, "imagePullPolicy", json_string("Never"));
	assert_int_equal(img_policy_of(c), IMG_PULL_NEVER);
	json_object_set_new(c, "imagePullPolicy", json_string("Always"));
	assert_int_equal(img_policy_of(c), IMG_PULL_ALWAYS);
	json_decref(c);
}

/* Kubelet's image GC choice: nothing under the high threshold; above it,
 * LRU first until used drops to low%, never an image in use or younger
 * than the minimum age. */
static void
test_gc_selects_lru_unused_until_low(void **state)
{
	(void)state;
	const int64_t now = 1000000000, min_age = 120000;
	struct img_gc_image imgs[] = {
		{ "a", 30, now - 500000, false },	/* oldest */
		{ "b", 30, now - 400000, true },	/* in use */
		{ "c", 30, now - 300000, false },
		{ "d", 30, now - 200000, false },
		{ "e", 30, now - 1000, false },		/* too young */
	};
	size_t out[5];
	/* 84% full: under 85, nothing. */
	assert_int_equal(img_gc_select(imgs, 5, 1000, 160, 85, 80, now, min_age, out), 0);
	/* 90% full: 100 bytes to free to reach 80%: a, c, d (b in use). */
	size_t n = img_gc_select(imgs, 5, 1000, 100, 85, 80, now, min_age, out);
	assert_int_equal(n, 3);
	assert_string_equal(imgs[out[0]].ref, "a");
	assert_string_equal(imgs[out[1]].ref, "c");
	assert_string_equal(imgs[out[2]].ref, "d");
	/* 86% full: 60 bytes: a and c suffice. */
	n = img_gc_select(imgs, 5, 1000, 140, 85, 80, now, min_age, out);
	assert_int_equal(n, 2);
	assert_string_equal(imgs[out[1]].ref, "c");
	/* Everything eligible is not enough: all of it, never b or e. */
	n = img_gc_select(imgs, 5, 1000, 0, 85, 10, now, min_age, out);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_true(strcmp(imgs[out[i]].ref, "b") && strcmp(imgs[out[i]].ref, "e"));
	assert_int_equal(img_gc_select(imgs, 5, 0, 0, 85, 80, now, min_age, out), 0);
}

/* ---- a pull's layers, three at a time ------------------------------------ */

#define NL 5
struct slow_blobs {
	char digest[NL + 1][80];	/* [NL]: the config */
	struct tarb tar[NL];
	const char *cfg;
	unsigned delay_ms[NL];
	bool fail[NL];
	int inflight, most, fetches[NL];
};

static int
slow_fetch(void *arg, const char *digest, const char *tmp, char **msg)
{
	struct slow_blobs *b = arg;
	if (!strcmp(digest, b->digest[NL]))
		return file_write_atomic(tmp, b->cfg, strlen(b->cfg), false);
	for (int i = 0; i < NL; i++) {
		if (strcmp(digest, b->digest[i]))
			continue;
		int now = __atomic_add_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
		int most = __atomic_load_n(&b->most, __ATOMIC_SEQ_CST);
		while (now > most && !__atomic_compare_exchange_n(&b->most, &most, now, false,
		    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			;
		__atomic_add_fetch(&b->fetches[i], 1, __ATOMIC_SEQ_CST);
		usleep(b->delay_ms[i] * 1000);
		__atomic_sub_fetch(&b->inflight, 1, __ATOMIC_SEQ_CST);
		if (b->fail[i]) {
			*msg = xasprintf("layer %d refused", i);
			return -EIO;
		}
		return file_write_atomic(tmp, b->tar[i].buf, b->tar[i].used, false);
	}
	*msg = xasprintf("no blob %s", digest);
	return -ENOENT;
}

static void *
slow_clone(void *arg)
{
	return arg;		/* shared: its counters are atomic */
}

static void
slow_release(void *arg)
{
	(void)arg;
}

/* The manifest of b's layers in order (layer 0 listed twice). */
static char *
slow_manifest(struct slow_blobs *b)
{
	struct buf m = BUF_INIT;
	buf_printf(&m, "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":%zu},"
	    "\"layers\":[", b->digest[NL], strlen(b->cfg));
	for (int i = 0; i <= NL; i++)
		buf_printf(&m, "%s{\"digest\":\"%s\",\"size\":%zu}", i ? "," : "",
		    b->digest[i % NL], b->tar[i % NL].used);
	buf_printf(&m, "]}");
	return buf_steal(&m);
}

/* Layers are fetched and unpacked by up to three threads at once, each
 * distinct layer once; with failures the error is the first failing
 * layer's in manifest order, whichever failed first in time. */
static void
test_pull_layers_three_at_a_time_first_failure_in_order(void **state)
{
	(void)state;
	static struct slow_blobs b;	/* ~5 x 64 KiB of tars */
	struct dirs d;
	uv_loop_t loop;
	struct img_store *s;
	struct img_info *info;
	char path[256], *msg = NULL;

	dirs_make(&d);
	memset(&b, 0, sizeof b);
	b.cfg = "{\"config\":{\"Cmd\":[\"/l0\"]}}";
	img__digest_bytes(b.cfg, strlen(b.cfg), b.digest[NL]);
	for (int i = 0; i < NL; i++) {
		char name[8];
		snprintf(name, sizeof name, "l%d", i);
		tar_begin(&b.tar[i]);
		tar_add(&b.tar[i], name, AE_IFREG, name, NULL);
		archive_write_close(b.tar[i].a);
		archive_write_free(b.tar[i].a);
		img__digest_bytes(b.tar[i].buf, b.tar[i].used, b.digest[i]);
		b.delay_ms[i] = 150;
	}
	char *manifest = slow_manifest(&b);
	struct img_source src = { slow_fetch, NULL, &b, 0, slow_clone, slow_release };
	assert_int_equal(uv_loop_init(&loop), 0);
	snprintf(path, sizeof path, "%s/store", d.base);
	assert_int_equal(img_store_open(&loop, path, &s), 0);

	/* failures: layer 3 fails at once, layer 1 later; 1 is the error */
	b.fail[1] = b.fail[3] = true;
	b.delay_ms[0] = 200;	/* then its thread takes 3 */
	b.delay_ms[1] = 900;
	b.delay_ms[2] = 500;	/* then its thread finds the failure */
	b.delay_ms[3] = 0;
	assert_int_equal(img__store_put(s, "localhost/five:1", manifest, strlen(manifest), NULL,
	    &src, &msg), -EIO);
	assert_string_equal(msg, "layer 1 refused");
	free(msg);
	msg = NULL;
	assert_int_equal(b.fetches[3], 1);		/* it did fail first */
	assert_int_equal(b.fetches[4], 0);		/* nothing started after a failure */
	assert_int_equal(img_lookup(s, "localhost/five:1", &info), -ENOENT);

	/* all fine: three at a time, each layer once, all of them unpacked */
	memset(b.fetches, 0, sizeof b.fetches);
	b.most = 0;
	for (int i = 0; i < NL; i++) {
		b.fail[i] = false;
		b.delay_ms[i] = 400;	/* long enough for every thread to be up */
	}
	assert_int_equal(img__store_put(s, "localhost/five:1", manifest, strlen(manifest), NULL,
	    &src, &msg), 0);
	assert_int_equal(b.most, 3);
	assert_int_equal(b.fetches[0], 0);		/* present since the failed pull */
	assert_int_equal(b.fetches[1] + b.fetches[2] + b.fetches[3] + b.fetches[4], 3);
	assert_int_equal(img_lookup(s, "localhost/five:1", &info), 0);
	assert_int_equal(info->n_layers, NL + 1);
	for (int i = 0; i < NL; i++) {
		char f[8];
		snprintf(f, sizeof f, "l%d", i);
		assert_true(exists(info->layers[i], f));
	}
	img_info_free(info);

	img_store_close(s);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(manifest);
	util_remove_tree(d.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_follows_docker_hub_rules),
		cmocka_unit_test(test_default_pull_policy_is_kubernetes),
		cmocka_unit_test(test_index_selects_this_platform),
		cmocka_unit_test(test_path_clean_refuses_escapes),
		cmocka_unit_test(test_whiteout_names),
		cmocka_unit_test(test_unpack_converts_whiteouts_for_overlay),
		cmocka_unit_test(test_unpack_plain_keeps_whiteout_names),
		cmocka_unit_test(test_unpack_never_writes_outside_the_root),
		cmocka_unit_test(test_gc_selects_lru_unused_until_low),
		cmocka_unit_test(test_removal_spares_an_image_looked_up_since_it_was_picked),
		cmocka_unit_test(test_gc_spares_an_image_a_pull_is_bringing),
		cmocka_unit_test(test_plain_http_only_for_loopback_or_insecure),
		cmocka_unit_test(test_pull_secrets_and_policy),
		cmocka_unit_test(test_unpack_zstd_layer),
		cmocka_unit_test(test_pull_layers_three_at_a_time_first_failure_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
