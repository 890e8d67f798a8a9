/* store_vfs.c — a pass-through SQLite VFS over the default one that times
 * every xSync (the fsyncs of the database, its WAL and journal) into
 * v6_store_fsync_duration_seconds. store.c opens its database through it;
 * nothing else changes about how SQLite reads or writes. */
#include "obs_metrics.h"
#include "store.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define TIMED_VFS_NAME "v6-timed"

/* Our file: the real one follows in the same allocation (szOsFile). */
struct timed_file {
	sqlite3_file base;
	sqlite3_file *real;
};

static sqlite3_vfs timed_vfs;
static sqlite3_io_methods timed_io;

#define REAL(f) (((struct timed_file *)(f))->real)

static int
t_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int
t_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}

static int
t_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}

static int
t_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int
t_sync(sqlite3_file *f, int flags)
{
	uint64_t t0 = uv_hrtime();
	int rc = REAL(f)->pMethods->xSync(REAL(f), flags);

	obs_store_fsync((double)(uv_hrtime() - t0) / 1e9);
	return rc;
}

static int
t_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int
t_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int
t_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int
t_check(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int
t_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int
t_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int
t_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int
t_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int
t_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void
t_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int
t_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int
t_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	if (REAL(f)->pMethods->iVersion < 3) {
		*pp = NULL;	/* no memory map: SQLite reads instead */
		return SQLITE_OK;
	}
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int
t_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	if (REAL(f)->pMethods->iVersion < 3)
		return SQLITE_OK;
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static sqlite3_io_methods timed_io = {
	3, t_close, t_read, t_write, t_truncate, t_sync, t_size, t_lock, t_unlock,
	t_check, t_fcntl, t_sector, t_devchar, t_shm_map, t_shm_lock, t_shm_barrier,
	t_shm_unmap, t_fetch, t_unfetch,
};

static int
t_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	sqlite3_vfs *real = vfs->pAppData;
	struct timed_file *tf = (struct timed_file *)f;
	int rc;

	tf->real = (sqlite3_file *)(tf + 1);
	rc = real->xOpen(real, name, tf->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set: mirror the real one */
	tf->base.pMethods = tf->real->pMethods ? &timed_io : NULL;
	return rc;
}

/* Everything but xOpen goes straight to the real VFS. */
static int
t_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xDelete(real, name, sync_dir);
}

static int
t_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xAccess(real, name, flags, out);
}

static int
t_fullpath(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xFullPathname(real, name, n, out);
}

static int
t_random(sqlite3_vfs *vfs, int n, char *out)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xRandomness(real, n, out);
}

static int
t_sleep(sqlite3_vfs *vfs, int us)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xSleep(real, us);
}

static int
t_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xCurrentTime(real, out);
}

static int
t_lasterr(sqlite3_vfs *vfs, int n, char *out)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xGetLastError(real, n, out);
}

static int
t_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	sqlite3_vfs *real = vfs->pAppData;
	return real->xCurrentTimeInt64(real, out);
}

/* Wraps whatever VFS is the default at this open (a test may install a
 * fault-injecting one): files already open keep the one they were opened
 * with, since each carries its real file's methods. */
const char *
store__timed_vfs(void)
{
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);
	bool registered = sqlite3_vfs_find(TIMED_VFS_NAME) != NULL;

	if (!real || real->iVersion < 2 || !real->xCurrentTimeInt64)
		return NULL;
	if (registered) {
		/* pNext is SQLite's list link: touch only what the real VFS sets */
		timed_vfs.pAppData = real;
		timed_vfs.szOsFile = (int)sizeof(struct timed_file) + real->szOsFile;
		timed_vfs.mxPathname = real->mxPathname;
		return TIMED_VFS_NAME;
	}
	timed_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct timed_file) + real->szOsFile,
		.mxPathname = real->mxPathname,
		.zName = TIMED_VFS_NAME,
		.pAppData = real,
		.xOpen = t_open, .xDelete = t_delete, .xAccess = t_access,
		.xFullPathname = t_fullpath,
		.xRandomness = t_random, .xSleep = t_sleep, .xCurrentTime = t_time,
		.xGetLastError = t_lasterr, .xCurrentTimeInt64 = t_time64,
	};
	return sqlite3_vfs_register(&timed_vfs, 0) == SQLITE_OK ? TIMED_VFS_NAME : NULL;
}
