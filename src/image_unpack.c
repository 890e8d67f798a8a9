/* image_unpack.c — unpacks a tar (plain, gzip or zstd; libarchive reads it)
 * into a directory without ever writing outside it: every entry is created
 * relative to a directory fd walked with O_NOFOLLOW, names with ".." or a
 * leading "/" are refused, and nothing is followed through a symlink. For a
 * layer (overlay mode) OCI whiteouts become overlayfs whiteouts. Called by
 * image_store.c (layers) and image_import.c (archives), on worker threads. */
#include "image_int.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

int
img__path_clean(const char *name, char *out, size_t len)
{
	size_t o = 0;
	const char *p = name;

	if (*p == '/')
		return -EPERM;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EPERM;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o + n + 2 > len)
				return -ENAMETOOLONG;
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[o] = '\0';
	return 0;
}

enum img_wh
img__whiteout(const char *base, const char **target)
{
	if (strcmp(base, WH_OPAQUE) == 0)
		return IMG_WH_OPAQUE;
	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
		*target = base + strlen(WH_PREFIX);
		if (**target == '\0' || strcmp(*target, ".") == 0 || strcmp(*target, "..") == 0)
			return IMG_WH_INVALID;
		return IMG_WH_FILE;
	}
	return IMG_WH_NONE;
}

/* Opens the directory holding clean path rel (relative to root), creating
 * missing directories (mode 0755) when create; *base points at the last
 * component in rel. Never follows a symlink: a component that is not a
 * real directory fails with ENOTDIR or ELOOP. Returns an fd or -errno. */
static int
open_parent(int root, const char *rel, bool create, const char **base)
{
	char comp[NAME_MAX + 1];
	int fd = dup(root);
	const char *p = rel;

	if (fd < 0)
		return -errno;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			break;
		size_t n = (size_t)(slash - p);
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
				int e = -errno;
				close(fd);
				return e;
			}
			fchmodat(fd, comp, 0755, 0);	/* not the server's umask 077 */
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		int e = -errno;
		close(fd);
		if (next < 0)
			return e == -ENOTDIR || e == -ELOOP ? -ELOOP : e;
		fd = next;
		p = slash + 1;
	}
	*base = p;
	return fd;
}

/* Removes whatever is at dirfd/name, a directory only when it is not the
 * kind of entry coming (a directory over a directory is merged). Returns
 * 1 when it removed a directory, 0, or -errno. */
static int
clear_name(int dirfd, const char *name, mode_t type)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode)) {
		if (type == S_IFDIR)
			return 0;
		int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		close(fd);
		char path[PATH_MAX];
		snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
		char real[PATH_MAX];
		if (!realpath(path, real))
			return -errno;
		int rc = util_remove_tree(real);
		return rc < 0 ? rc : 1;
	}
	return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

static int
write_data(struct archive *a, int fd)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		const char *p = buf;
		while (size > 0) {
			ssize_t w = pwrite(fd, p, size, off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			p += w, off += w, size -= (size_t)w;
		}
	}
	if (r != ARCHIVE_EOF)
		return -EIO;
	/* A sparse file may end in a hole: give it its full size. */
	return 0;
}

static void
set_meta(int dirfd, const char *name, int fd, struct archive_entry *e, bool link)
{
	struct timespec ts[2] = {
		{ archive_entry_atime(e), archive_entry_atime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
	};
	if (!archive_entry_atime_is_set(e))
		ts[0] = ts[1];
	uid_t uid = (uid_t)archive_entry_uid(e);
	gid_t gid = (gid_t)archive_entry_gid(e);
	mode_t mode = archive_entry_perm(e);

	/* Ownership first: chown clears the set-id bits chmod sets. Failures
	 * are not fatal (an unprivileged unpack keeps its own uid). */
	if (fd >= 0) {
		if (fchown(fd, uid, gid) < 0) { /* unprivileged */ }
		if (fchmod(fd, mode) < 0) { /* best effort */ }
		futimens(fd, ts);
		return;
	}
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) { /* unprivileged */ }
	if (!link && fchmodat(dirfd, name, mode, 0) < 0) { /* best effort */ }
	utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static void
set_xattrs(int fd, struct archive_entry *e)
{
	const char *name;
	const void *val;
	size_t size;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &size) == ARCHIVE_OK) {
		/* Only the namespaces an image may carry; never overlay's own. */
		if (str_has_prefix(name, "user.") || str_has_prefix(name, "security.capability"))
			fsetxattr(fd, name, val, size, 0);
	}
}

struct unpack {
	struct archive *a;
	int root;
	/* The parent directory of the last plain file, reused by the next
	 * file in the same directory (tars list a directory's files in a
	 * row): it was walked with O_NOFOLLOW, and any entry that could
	 * change what that path names (not a plain file, or a file replacing
	 * a directory) drops it. */
	int cache_fd;
	char cache[PATH_MAX];
	bool dir_removed;
	bool overlay;
	char *msg;
	char path[PATH_MAX];
};

static int fail(struct unpack *u, int err, const char *fmt, ...) V6_PRINTF(3, 4);

static int
fail(struct unpack *u, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(u->msg);
	u->msg = xvasprintf(fmt, ap);
	va_end(ap);
	return err < 0 ? err : -EIO;
}

static int
entry_whiteout(struct unpack *u, int dirfd, const char *base)
{
	const char *target = NULL;
	switch (img__whiteout(base, &target)) {
	case IMG_WH_NONE:
		return 1;
	case IMG_WH_INVALID:
		return fail(u, -EPERM, "invalid whiteout entry \"%s\"", u->path);
	case IMG_WH_OPAQUE:
		/* The directory hides what lower layers have in it. */
		if (fsetxattr(dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return fail(u, -errno, "cannot mark \"%s\" opaque (overlay needs "
			    "trusted.* xattrs: run as root)", u->path);
		return 0;
	case IMG_WH_FILE: {
		int rc = clear_name(dirfd, target, S_IFCHR);
		if (rc >= 0)
			rc = mknodat(dirfd, target, S_IFCHR | 0000, makedev(0, 0)) < 0 ? -errno : 0;
		if (rc < 0)
			return fail(u, rc, "cannot create the whiteout for \"%s\" (needs "
			    "CAP_MKNOD: run as root)", u->path);
		return 0;
	}
	}
	return 1;
}

static int
entry_create(struct unpack *u, struct archive_entry *e, int dirfd, const char *base)
{
	mode_t type = archive_entry_filetype(e);
	const char *hl = archive_entry_hardlink(e);
	int rc, fd = -1;

	if (hl) {
		char clean[PATH_MAX];
		const char *tbase;
		if (img__path_clean(hl, clean, sizeof clean) < 0 || !*clean)
			return fail(u, -EPERM, "hard link target of \"%s\" escapes the root",
			    u->path);
		int tdir = open_parent(u->root, clean, false, &tbase);
		if (tdir < 0)
			return fail(u, tdir, "hard link target of \"%s\" is not inside the "
			    "root (through a symlink or missing)", u->path);
		rc = clear_name(dirfd, base, S_IFREG);
		if (rc >= 0)
			rc = linkat(tdir, tbase, dirfd, base, 0) < 0 ? -errno : 0;
		close(tdir);
		return rc < 0 ? fail(u, rc, "cannot link \"%s\"", u->path) : 0;
	}
	if ((rc = clear_name(dirfd, base, type)) < 0)
		return fail(u, rc, "cannot replace \"%s\"", u->path);
	u->dir_removed = rc > 0;
	rc = 0;
	switch (type) {
	case AE_IFDIR:
		if (mkdirat(dirfd, base, 0755) < 0 && errno != EEXIST)
			return fail(u, -errno, "cannot create directory \"%s\"", u->path);
		fd = openat(dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		break;
	case AE_IFREG:
		fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd >= 0 && (rc = write_data(u->a, fd)) == 0 &&
		    ftruncate(fd, archive_entry_size(e)) < 0)
			rc = -errno;
		if (rc < 0) {
			close(fd);
			return fail(u, rc, "cannot write \"%s\": %s", u->path,
			    rc == -EIO ? archive_error_string(u->a) : strerror(-rc));
		}
		break;
	case AE_IFLNK:
		if (symlinkat(archive_entry_symlink(e) ? archive_entry_symlink(e) : "", dirfd,
		    base) < 0)
			return fail(u, -errno, "cannot create symlink \"%s\"", u->path);
		set_meta(dirfd, base, -1, e, true);
		return 0;
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		if (mknodat(dirfd, base, type | archive_entry_perm(e),
		    archive_entry_rdev(e)) < 0)
			return fail(u, -errno, "cannot create device \"%s\"", u->path);
		set_meta(dirfd, base, -1, e, false);
		return 0;
	default:
		return fail(u, -EPERM, "unsupported entry type for \"%s\"", u->path);
	}
	if (fd < 0)
		return fail(u, -errno, "cannot open \"%s\"", u->path);
	set_xattrs(fd, e);
	set_meta(dirfd, base, fd, e, false);
	close(fd);
	return 0;
}

static void
cache_drop(struct unpack *u)
{
	if (u->cache_fd >= 0)
		close(u->cache_fd);
	u->cache_fd = -1;
}

static int
unpack_entry(struct unpack *u, struct archive_entry *e)
{
	const char *name = archive_entry_pathname(e);
	const char *base;
	int dirfd;

	/* An entry's leading "/" names the image's root, as containerd reads
	 * it (`umoci insert DIR /` writes "/" and "/bin/..."); a ".." never
	 * passes, and hard-link targets stay strict (below). */
	const char *rel = name;
	while (rel && *rel == '/')
		rel++;
	if (!rel || img__path_clean(rel, u->path, sizeof u->path) < 0)
		return fail(u, -EPERM, "entry \"%s\" escapes the root (..)",
		    name ? name : "");
	if (!*u->path)
		return 0;	/* "./": the root itself keeps its mode */
	const char *slash = strrchr(u->path, '/');
	size_t plen = slash ? (size_t)(slash - u->path) : 0;
	if (u->cache_fd >= 0 && strlen(u->cache) == plen && !memcmp(u->cache, u->path, plen)) {
		dirfd = u->cache_fd;
		base = slash ? slash + 1 : u->path;
	} else {
		cache_drop(u);
		dirfd = open_parent(u->root, u->path, true, &base);
		if (dirfd < 0)
			return fail(u, dirfd, "entry \"%s\" would be written through a symlink "
			    "or a non-directory", u->path);
		memcpy(u->cache, u->path, plen);
		u->cache[plen] = '\0';
		u->cache_fd = dirfd;
	}
	u->dir_removed = false;
	int rc = u->overlay ? entry_whiteout(u, dirfd, base) : 1;
	bool plain = rc > 0 && archive_entry_filetype(e) == AE_IFREG &&
	    !archive_entry_hardlink(e);
	if (rc > 0)
		rc = entry_create(u, e, dirfd, base);
	if (!plain || rc < 0 || u->dir_removed)
		cache_drop(u);
	return rc;
}

int
img__unpack_archive(struct archive *a, const char *dir, bool overlay, char **msg)
{
	struct unpack u = { .a = a, .overlay = overlay, .cache_fd = -1 };
	struct archive_entry *e;
	int rc = 0, r;

	u.root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u.root < 0) {
		*msg = xasprintf("cannot open %s: %s", dir, strerror(errno));
		return -errno;
	}
	while (rc == 0 && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		if (r < ARCHIVE_WARN) {
			rc = fail(&u, -EIO, "bad archive: %s", archive_error_string(a));
			break;
		}
		rc = unpack_entry(&u, e);
	}
	cache_drop(&u);
	close(u.root);
	if (rc < 0)
		*msg = u.msg ? u.msg : xasprintf("unpack failed: %s", strerror(-rc));
	else
		free(u.msg);
	return rc;
}

struct archive *
img__archive_reader(void)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_filter_none(a);
	archive_read_support_format_tar(a);
	return a;
}

int
img__unpack_file(const char *tar, const char *dir, bool overlay, char **msg)
{
	struct archive *a = img__archive_reader();
	int rc;

	if (archive_read_open_filename(a, tar, 1 << 16) != ARCHIVE_OK) {
		*msg = xasprintf("cannot read %s: %s", tar, archive_error_string(a));
		rc = -EIO;
	} else {
		rc = img__unpack_archive(a, dir, overlay, msg);
	}
	archive_read_free(a);
	return rc;
}
