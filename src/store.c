/* store.c — the durable object store (see store.h): one SQLite database in
 * WAL mode holding the objects, the global resourceVersion counter and the
 * journal of change events; group commit, journal compaction and watch
 * delivery. Called from the loop thread by the API server and controllers;
 * the connection belongs to that thread alone. */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>
#include "log.h"
#include "obs_metrics.h"
#include "store_crypt.h"
#include "util.h"

#define STORE_SCHEMA_VERSION	2
#define STORE_JOURNAL_DEFAULT	100000
#define STORE_JOURNAL_MIN	10
/* Time-bounded retention, as kube-apiserver compacts etcd every 5 minutes
 * (--etcd-compaction-interval): changes older than this go, except the
 * newest STORE_KEEP_DEFAULT (kube-apiserver's --default-watch-cache-size),
 * which a watch resuming after a short disconnect in a quiet cluster still
 * finds. Kept small so that under churn the time bounds the journal. */
#define STORE_RETENTION_DEFAULT_MS	(5 * 60 * 1000)
#define STORE_KEEP_DEFAULT	100
#define STORE_MARKS		64	/* rv_marks kept, one per retention/32 */
#define STORE_BUSY_MS		5000
/* Rounds of hearing and draining before a commit (store_watch_staged): a
 * Deployment's chain (Deployment -> ReplicaSet -> Pods, then their status)
 * settles in 4; what is left is heard after the commit, as by any watch. */
#define STORE_STAGED_ROUNDS	8

/*
 * The connection runs in EXCLUSIVE locking mode: SQLite then keeps the WAL
 * index in heap memory instead of a mmapped -shm file, so reads touch no
 * file at all (an idle server writes nothing) and a second server on the
 * same directory fails with -EBUSY instead of sharing the database.
 * journal_size_limit truncates the WAL back to 4 MB after a checkpoint.
 */
static const char store_pragmas[] =
	"PRAGMA locking_mode = EXCLUSIVE;"
	"PRAGMA journal_mode = WAL;"
	"PRAGMA synchronous = FULL;"
	"PRAGMA cache_size = -2048;"
	"PRAGMA journal_size_limit = 4194304;";

/* migrations[v] brings a database from user_version v to v + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	"CREATE TABLE objects (res TEXT NOT NULL, ns TEXT NOT NULL,"
	"  name TEXT NOT NULL, rv INTEGER NOT NULL, data TEXT NOT NULL,"
	"  PRIMARY KEY (res, ns, name));"
	"CREATE TABLE journal (rv INTEGER PRIMARY KEY, type TEXT NOT NULL,"
	"  res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,"
	"  data TEXT NOT NULL);"
	"CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('rv', 0), ('compacted', 0);",
	/* v2: paged lists read an object's state at an older rv (store_list_page). */
	"CREATE INDEX journal_key ON journal (res, ns, name, rv);",
};

/* Every statement the store runs, prepared once at open. */
enum stmt_kind {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_GET, S_LIST_NS, S_LIST_ALL,
	S_INSERT, S_UPDATE, S_DELETE, S_JOURNAL,
	S_REPLAY, S_COMPACT, S_META_GET, S_META_SET,
	S_MAX_RV, S_PAGE, S_CHANGED, S_FIRST_AFTER, S_LAST_UPTO, S_COUNT_REST,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN]	= "BEGIN IMMEDIATE",
	[S_COMMIT]	= "COMMIT",
	[S_ROLLBACK]	= "ROLLBACK",
	[S_GET]		= "SELECT rv, data FROM objects"
			  " WHERE res = ?1 AND ns = ?2 AND name = ?3",
	[S_LIST_NS]	= "SELECT data, ns, name FROM objects WHERE res = ?1 AND ns = ?2"
			  " ORDER BY res, ns, name",
	[S_LIST_ALL]	= "SELECT data, ns, name FROM objects WHERE res = ?1"
			  " ORDER BY res, ns, name",
	[S_INSERT]	= "INSERT INTO objects (res, ns, name, rv, data)"
			  " VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_UPDATE]	= "UPDATE objects SET rv = ?4, data = ?5"
			  " WHERE res = ?1 AND ns = ?2 AND name = ?3",
	[S_DELETE]	= "DELETE FROM objects"
			  " WHERE res = ?1 AND ns = ?2 AND name = ?3",
	[S_JOURNAL]	= "INSERT INTO journal (res, ns, name, rv, data, type)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_REPLAY]	= "SELECT rv, type, res, data, ns, name FROM journal"
			  " WHERE rv > ?1 AND rv <= ?2"
			  " AND (?3 IS NULL OR res = ?3) AND (?4 IS NULL OR ns = ?4)"
			  " ORDER BY rv",
	[S_COMPACT]	= "DELETE FROM journal WHERE rv <= ?1",
	[S_META_GET]	= "SELECT v FROM meta WHERE k = ?1",
	[S_META_SET]	= "UPDATE meta SET v = ?2 WHERE k = ?1",
	[S_MAX_RV]	= "SELECT max(coalesce((SELECT max(rv) FROM journal), 0),"
			  " coalesce((SELECT max(rv) FROM objects), 0))",
	/* ?1 res, ?2 ns or NULL, (?3, ?4) the last key returned, ?5 the list's rv */
	[S_PAGE]	= "SELECT ns, name, data FROM objects WHERE res = ?1"
			  " AND (?2 IS NULL OR ns = ?2) AND (ns, name) > (?3, ?4)"
			  " AND rv <= ?5 ORDER BY res, ns, name",
	[S_CHANGED]	= "SELECT DISTINCT ns, name FROM journal WHERE rv > ?5"
			  " AND res = ?1 AND (?2 IS NULL OR ns = ?2)"
			  " AND (ns, name) > (?3, ?4) ORDER BY ns, name",
	/* ?1 res, ?2 ns, ?3 name, ?4 rv */
	[S_FIRST_AFTER]	= "SELECT type FROM journal WHERE res = ?1 AND ns = ?2"
			  " AND name = ?3 AND rv > ?4 ORDER BY rv LIMIT 1",
	[S_LAST_UPTO]	= "SELECT type, data FROM journal WHERE res = ?1 AND ns = ?2"
			  " AND name = ?3 AND rv <= ?4 ORDER BY rv DESC LIMIT 1",
	[S_COUNT_REST]	= "SELECT count(*) FROM objects WHERE res = ?1"
			  " AND (?2 IS NULL OR ns = ?2) AND (ns, name) > (?3, ?4)",
};

/* Watch event names as stored in journal.type (Kubernetes spelling). */
static const char *const event_names[] = {
	[STORE_ADDED]		= "ADDED",
	[STORE_MODIFIED]	= "MODIFIED",
	[STORE_DELETED]		= "DELETED",
};

/* A change staged in the open transaction, or committed and waiting to be
 * delivered. data is the stored JSON text. */
struct ev {
	struct ev *next;
	int64_t rv;
	enum store_event type;
	char *res;
	char *ns;
	char *data;
	size_t len;
	json_t *obj;	/* data parsed, once a watch got it: heard, then delivered */
};

struct evq {
	struct ev *head;
	struct ev **tail;
};

struct store_watch {
	struct store_watch *next;
	struct store *st;
	char *res;		/* NULL = every resource */
	char *ns;		/* NULL = every namespace */
	store_watch_fn fn;
	void *arg;
	int64_t last_rv;	/* newest rv this watch has been given */
	void (*drain)(void *arg);	/* a staged watch's (store_watch_staged) */
	bool heard;		/* a staged watch heard writes not yet drained */
	bool stopped;		/* freed once no callback is running */
	bool linked;		/* on st->watches (false while replaying) */
};

/* At t_ms (monotonic) the newest committed rv was rv: every change <= rv is
 * at least as old as t_ms. */
struct rv_mark {
	int64_t t_ms;
	int64_t rv;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[S_COUNT];
	int64_t rv;		/* newest rv, staged writes included */
	int64_t committed_rv;
	int64_t delivered_rv;	/* newest event handed to the watchers */
	int64_t compacted;	/* the journal holds every event > compacted */
	int64_t journal_limit;	/* most changes kept */
	int64_t retention_ms;	/* changes older than this go; 0: count only */
	int64_t keep_min;	/* fewest changes kept whatever their age */
	struct rv_mark marks[STORE_MARKS];	/* oldest first */
	int nmarks;
	struct rv_mark newest;		/* the last commit, whether marked or not */
	bool in_txn;
	int batch_err;		/* a staged write failed half-way: fail the batch */
	struct evq staged;	/* in the open transaction, rv order */
	struct ev *heard;	/* the last of staged the staged watches heard */
	uint64_t staged_gen;	/* + 1 whenever staged is emptied */
	bool hearing;		/* staged watches are hearing (store_flush) */
	struct evq outq;	/* committed, not yet delivered, rv order */
	struct store_watch *watches;
	int cb_depth;		/* callbacks running (deliveries or replays) */
	bool delivering;
	bool reap;		/* a watch was stopped during a callback */
	const struct store_crypt *crypt;	/* encryption at rest; NULL: none */
};

/* ---- SQLite plumbing ------------------------------------------------- */

static const struct {
	int code;
	int err;
} sqlite_errnos[] = {
	{ SQLITE_BUSY,		EBUSY },
	{ SQLITE_LOCKED,	EBUSY },
	{ SQLITE_NOMEM,		ENOMEM },
	{ SQLITE_READONLY,	EROFS },
	{ SQLITE_FULL,		ENOSPC },
	{ SQLITE_CANTOPEN,	EACCES },
	{ SQLITE_PERM,		EACCES },
	{ SQLITE_AUTH,		EACCES },
	{ SQLITE_TOOBIG,	EFBIG },
	{ SQLITE_CONSTRAINT,	EEXIST },
};

/* A negative errno for an SQLite result code (-EIO when nothing fits). */
static int
sql_errno(int rc)
{
	for (size_t i = 0; i < ARRAY_SIZE(sqlite_errnos); i++)
		if ((rc & 0xff) == sqlite_errnos[i].code)
			return -sqlite_errnos[i].err;
	return -EIO;
}

static int
sql_fail(struct store *st, const char *what, int rc)
{
	log_warn("store", "%s: %s (%d)", what, sqlite3_errmsg(st->db), rc);
	return sql_errno(rc);
}

/* The cached statement of kind k, or a fresh copy when the cached one is
 * in the middle of a scan (a callback re-entering the store). Give it back
 * with stmt_put(). */
static sqlite3_stmt *
stmt_get(struct store *st, enum stmt_kind k)
{
	sqlite3_stmt *s = st->stmts[k];

	if (!sqlite3_stmt_busy(s))
		return s;
	if (sqlite3_prepare_v2(st->db, stmt_sql[k], -1, &s, NULL) != SQLITE_OK)
		return NULL;
	return s;
}

static void
stmt_put(struct store *st, enum stmt_kind k, sqlite3_stmt *s)
{
	if (s != st->stmts[k]) {
		sqlite3_finalize(s);
		return;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Runs a statement that returns no row; resets it. Returns an SQLite code. */
static int
stmt_run(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static void
bind_key(sqlite3_stmt *s, const char *res, const char *ns, const char *name)
{
	bind_text(s, 1, res);
	bind_text(s, 2, ns);
	bind_text(s, 3, name);
}

/* ---- encryption at rest (store_crypt.c) -------------------------------- */

/* The authenticated data of a sealed value: the object's key, as the
 * apiserver's etcd key "/registry/secrets/NS/NAME". */
static char *
crypt_aad(const char *res, const char *ns, const char *name)
{
	return *ns ? xasprintf("/registry/%s/%s/%s", res, ns, name)
	    : xasprintf("/registry/%s/%s", res, name);
}

/* Binds data, the JSON of res ns/name, at i in the form it is stored:
 * sealed when the configuration covers res. Returns 0 or -EIO. */
static int
bind_data(struct store *st, sqlite3_stmt *s, int i, const char *res, const char *ns,
    const char *name, const char *data)
{
	unsigned char *sealed;
	size_t n;
	char *aad;
	int rc;

	if (!store_crypt_covers(st->crypt, res)) {
		bind_text(s, i, data);
		return 0;
	}
	aad = crypt_aad(res, ns, name);
	rc = store_crypt_seal(st->crypt, res, aad, data, strlen(data), &sealed, &n);
	free(aad);
	if (rc < 0) {
		log_error("store", "%s %s/%s: encrypting failed", res, ns, name);
		return rc;
	}
	sqlite3_bind_blob64(s, i, sealed, n, free);
	return 0;
}

/* The JSON text of the data column col of res ns/name: borrowed from the
 * row, or opened into *tmp (caller frees). NULL when it cannot be opened,
 * logged with the reason (the provider and key it was sealed with). */
static const char *
col_data(struct store *st, sqlite3_stmt *s, int col, const char *res, const char *ns,
    const char *name, char **tmp, size_t *len)
{
	const char *v = sqlite3_column_blob(s, col);
	char *aad, *err;
	int rc;

	*tmp = NULL;
	*len = (size_t)sqlite3_column_bytes(s, col);
	if (!st->crypt && (*len == 0 || v[0] == '{'))
		return (const char *)sqlite3_column_text(s, col);	/* plain JSON */
	aad = crypt_aad(res, ns, name);
	rc = store_crypt_open(st->crypt, res, aad, v, *len, tmp, len, &err);
	free(aad);
	if (rc < 0) {
		log_error("store", "%s %s/%s: cannot read: %s", res, ns, name, err);
		free(err);
		return NULL;
	}
	return *tmp;
}

/* The rowids of table's rows of res. *ids is malloc'd. */
static int
reseal_rows(struct store *st, const char *table, const char *res, int64_t **ids,
    size_t *n)
{
	char *sql = xasprintf("SELECT rowid FROM %s WHERE res = ?1", table);
	sqlite3_stmt *s;
	size_t cap = 0;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	free(sql);
	*ids = NULL;
	*n = 0;
	if (rc != SQLITE_OK)
		return sql_fail(st, "reencrypt", rc);
	bind_text(s, 1, res);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			*ids = xrealloc(*ids, cap * sizeof **ids);
		}
		(*ids)[(*n)++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : sql_fail(st, "reencrypt", rc);
}

/* Rewrites row id of table in the form new writes of res take, unless it
 * is in it already. Returns 1 when rewritten, 0 when not, or -errno (an
 * unreadable row is logged and left as it is: its reads fail the same). */
static int
reseal_one(struct store *st, sqlite3_stmt *get, sqlite3_stmt *put, const char *res,
    int64_t id)
{
	char *tmp = NULL, *ns = NULL, *name = NULL;
	const char *data;
	size_t len;
	int rc;

	sqlite3_bind_int64(get, 1, id);
	if ((rc = sqlite3_step(get)) != SQLITE_ROW) {
		sqlite3_reset(get);
		return rc == SQLITE_DONE ? 0 : sql_fail(st, "reencrypt", rc);
	}
	if (store_crypt_current(st->crypt, res, sqlite3_column_blob(get, 0),
	    (size_t)sqlite3_column_bytes(get, 0))) {
		sqlite3_reset(get);
		return 0;
	}
	ns = xstrdup((const char *)sqlite3_column_text(get, 1));
	name = xstrdup((const char *)sqlite3_column_text(get, 2));
	data = col_data(st, get, 0, res, ns, name, &tmp, &len);
	rc = 0;
	if (data && bind_data(st, put, 1, res, ns, name, tmp ? tmp : data) == 0) {
		sqlite3_bind_int64(put, 2, id);
		rc = stmt_run(put);
		rc = rc == SQLITE_OK ? 1 : sql_fail(st, "reencrypt", rc);
	}
	sqlite3_reset(get);
	free(tmp);
	free(ns);
	free(name);
	return rc;
}

/* Every row of res, in objects and in the journal, in the current form. */
static int
reseal_res(struct store *st, const char *res, int64_t *count)
{
	static const char *const tables[] = { "objects", "journal" };
	int rc = 0;

	for (size_t t = 0; t < ARRAY_SIZE(tables) && rc >= 0; t++) {
		char *qget = xasprintf("SELECT data, ns, name FROM %s WHERE rowid = ?1",
		    tables[t]);
		char *qput = xasprintf("UPDATE %s SET data = ?1 WHERE rowid = ?2", tables[t]);
		sqlite3_stmt *get = NULL, *put = NULL;
		int64_t *ids;
		size_t n;
		if ((rc = reseal_rows(st, tables[t], res, &ids, &n)) == 0 &&
		    ((rc = sqlite3_prepare_v2(st->db, qget, -1, &get, NULL)) != SQLITE_OK ||
		    (rc = sqlite3_prepare_v2(st->db, qput, -1, &put, NULL)) != SQLITE_OK))
			rc = sql_fail(st, "reencrypt", rc);
		for (size_t i = 0; i < n && rc >= 0; i++)
			if ((rc = reseal_one(st, get, put, res, ids[i])) > 0)
				(*count)++;
		sqlite3_finalize(get);
		sqlite3_finalize(put);
		free(ids);
		free(qget);
		free(qput);
	}
	return rc < 0 ? rc : 0;
}

int
store_set_crypt(struct store *st, const struct store_crypt *c)
{
	const char *res;
	int64_t count = 0;
	int rc;

	BUG_ON(st->in_txn);
	st->crypt = c;
	/* Old forms (plaintext) must not linger in freed space of the file:
	 * SQLite zeroes what the rewrite frees, and the checkpoint below
	 * leaves no old page in the WAL. */
	if (sqlite3_exec(st->db, "PRAGMA secure_delete = ON; BEGIN IMMEDIATE", NULL, NULL,
	    NULL) != SQLITE_OK)
		return sql_fail(st, "reencrypt", sqlite3_errcode(st->db));
	for (size_t i = 0; (res = store_crypt_resource(c, i)); i++) {
		int64_t before = count;
		if ((rc = reseal_res(st, res, &count)) < 0) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		if (count > before)
			log_info("store", "rewrote %" PRId64 " stored %s (objects and journal "
			    "rows) with %s", count - before, res, store_crypt_writer(c, res));
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = sql_fail(st, "reencrypt", sqlite3_errcode(st->db));
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	if (count && sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL,
	    NULL) != SQLITE_OK)
		return sql_fail(st, "reencrypt checkpoint", sqlite3_errcode(st->db));
	sqlite3_exec(st->db, "PRAGMA secure_delete = OFF", NULL, NULL, NULL);
	return 0;
}

static int
meta_get(struct store *st, const char *k, int64_t *v)
{
	sqlite3_stmt *s = st->stmts[S_META_GET];
	int rc;

	bind_text(s, 1, k);
	rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	stmt_put(st, S_META_GET, s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sql_fail(st, "meta", rc);
}

static int
meta_set(struct store *st, const char *k, int64_t v)
{
	sqlite3_stmt *s = st->stmts[S_META_SET];
	int rc;

	bind_text(s, 1, k);
	sqlite3_bind_int64(s, 2, v);
	rc = stmt_run(s);
	return rc == SQLITE_OK ? 0 : sql_fail(st, "meta", rc);
}

/* ---- open and close -------------------------------------------------- */

/* mkdir -p with mode 0700 for the directories it creates. */
static int
mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int rc = 0;

	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static int
schema_migrate(struct store *st)
{
	sqlite3_stmt *s;
	int version, rc;
	char *sql;

	rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(st, "schema", rc);
	rc = sqlite3_step(s);
	version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return sql_fail(st, "schema", rc);
	if (version > STORE_SCHEMA_VERSION) {
		log_error("store", "database schema %d is newer than this binary (%d)",
		    version, STORE_SCHEMA_VERSION);
		return -ENOTSUP;
	}
	for (; version < STORE_SCHEMA_VERSION; version++) {
		sql = xasprintf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
		    migrations[version], version + 1);
		rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
		free(sql);
		if (rc != SQLITE_OK) {
			rc = sql_fail(st, "schema migration", rc);
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
		log_info("store", "database schema migrated to version %d", version + 1);
	}
	return 0;
}

/* Reads the counters. The rv never goes backwards even when meta was lost:
 * it is at least every rv still stored. */
static int
counters_load(struct store *st)
{
	sqlite3_stmt *s = st->stmts[S_MAX_RV];
	int64_t max_rv = 0;
	int rc;

	if ((rc = meta_get(st, "rv", &st->rv)) < 0 ||
	    (rc = meta_get(st, "compacted", &st->compacted)) < 0)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		max_rv = sqlite3_column_int64(s, 0);
	stmt_put(st, S_MAX_RV, s);
	if (rc != SQLITE_ROW)
		return sql_fail(st, "counters", rc);
	if (max_rv > st->rv)
		st->rv = max_rv;
	if (st->compacted > st->rv)
		st->compacted = st->rv;
	st->committed_rv = st->delivered_rv = st->rv;
	return 0;
}

static int
db_open(struct store *st, const char *path)
{
	int rc;

	rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, store__timed_vfs());
	if (rc != SQLITE_OK)
		return st->db ? sql_fail(st, path, rc) : -ENOMEM;
	sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
	rc = sqlite3_exec(st->db, store_pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(st, path, rc);
	if ((rc = schema_migrate(st)) < 0)
		return rc;
	for (int k = 0; k < S_COUNT; k++) {
		rc = sqlite3_prepare_v3(st->db, stmt_sql[k], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->stmts[k], NULL);
		if (rc != SQLITE_OK)
			return sql_fail(st, stmt_sql[k], rc);
	}
	return counters_load(st);
}

int
store_open(const char *dir, struct store **out)
{
	struct store *st;
	char *path = NULL;
	int rc;

	*out = NULL;
	if ((rc = mkdir_p(dir)) < 0) {
		log_error("store", "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	st = xcalloc(1, sizeof(*st));
	st->journal_limit = STORE_JOURNAL_DEFAULT;
	st->retention_ms = STORE_RETENTION_DEFAULT_MS;
	st->keep_min = STORE_KEEP_DEFAULT;
	st->staged.tail = &st->staged.head;
	st->outq.tail = &st->outq.head;
	path = xasprintf("%s/v6.db", dir);
	if ((rc = db_open(st, path)) < 0)
		goto fail;
	/* The journal's rows have no time: they count as written now. */
	st->marks[st->nmarks++] = (struct rv_mark){ time_mono_ms(), st->rv };
	st->newest = st->marks[0];
	log_info("store", "opened %s at resourceVersion %" PRId64, path, st->rv);
	free(path);
	*out = st;
	return 0;
fail:
	log_error("store", "cannot open %s: %s", path, strerror(-rc));
	free(path);
	store_close(st);
	return rc;
}

static void
ev_free(struct ev *e)
{
	free(e->res);
	free(e->ns);
	free(e->data);
	json_decref(e->obj);
	free(e);
}

static void
evq_clear(struct evq *q)
{
	struct ev *e;

	while ((e = q->head)) {
		q->head = e->next;
		ev_free(e);
	}
	q->tail = &q->head;
}

static void
watch_free(struct store_watch *w)
{
	free(w->res);
	free(w->ns);
	free(w);
}

void
store_close(struct store *st)
{
	struct store_watch *w;
	int rc;

	if (!st)
		return;
	BUG_ON(st->cb_depth > 0);
	if (st->in_txn && (rc = store_flush(st)) < 0)
		log_error("store", "final flush failed: %s", strerror(-rc));
	while ((w = st->watches)) {
		st->watches = w->next;
		watch_free(w);
	}
	evq_clear(&st->staged);
	evq_clear(&st->outq);
	for (int k = 0; k < S_COUNT; k++)
		sqlite3_finalize(st->stmts[k]);
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_error("store", "close: %s", sqlite3_errmsg(st->db));
	free(st);
}

void
store_set_journal_limit(struct store *st, int64_t n)
{
	st->journal_limit = n < STORE_JOURNAL_MIN ? STORE_JOURNAL_MIN : n;
}

void
store_set_journal_retention(struct store *st, int64_t ms, int64_t keep_min)
{
	if (ms >= 0)
		st->retention_ms = ms;
	if (keep_min >= 0)
		st->keep_min = keep_min;
}

int64_t
store_current_rv(const struct store *st)
{
	return st->rv;
}

int64_t
store_oldest_rv(const struct store *st)
{
	return st->compacted;
}

bool
store_dirty(const struct store *st)
{
	return st->in_txn;
}

/* ---- reads ------------------------------------------------------------ */

/* The stored row: its rv and (if obj) the parsed object. */
static int
row_get(struct store *st, const char *res, const char *ns, const char *name,
    int64_t *rv, json_t **obj)
{
	sqlite3_stmt *s = st->stmts[S_GET];
	json_error_t jerr = { .text = "" };
	const char *data = NULL;
	char *tmp = NULL;
	size_t len;
	int rc;

	bind_key(s, res, ns, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*rv = sqlite3_column_int64(s, 0);
		if (obj && (data = col_data(st, s, 1, res, ns, name, &tmp, &len)))
			*obj = json_loadb(data, len, 0, &jerr);
	}
	stmt_put(st, S_GET, s);
	free(tmp);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return sql_fail(st, "get", rc);
	if (obj && !data) {
		*obj = NULL;
		return -EIO;	/* logged by col_data */
	}
	if (obj && !*obj) {
		log_error("store", "%s %s/%s: stored JSON unreadable: %s", res, ns,
		    name, jerr.text);
		return -EIO;
	}
	return 0;
}

int
store_get(struct store *st, const char *res, const char *ns, const char *name,
    json_t **out)
{
	int64_t rv;

	*out = NULL;
	return row_get(st, res, ns ? ns : "", name, &rv, out);
}

int
store_list_each(struct store *st, const char *res, const char *ns,
    store_each_fn fn, void *arg, int64_t *rv)
{
	enum stmt_kind k = ns ? S_LIST_NS : S_LIST_ALL;
	sqlite3_stmt *s = stmt_get(st, k);
	int src, rc = 0;

	if (!s)
		return sql_fail(st, "list", sqlite3_errcode(st->db));
	if (rv)
		*rv = st->rv;
	bind_text(s, 1, res);
	bind_text(s, 2, ns);
	while ((src = sqlite3_step(s)) == SQLITE_ROW) {
		char *tmp;
		size_t len;
		const char *data = col_data(st, s, 0, res,
		    (const char *)sqlite3_column_text(s, 1),
		    (const char *)sqlite3_column_text(s, 2), &tmp, &len);
		rc = data ? fn(arg, data, len) : -EIO;
		free(tmp);
		if (rc != 0)
			break;
	}
	if (rc == 0 && src != SQLITE_DONE)
		rc = sql_fail(st, "list", src);
	stmt_put(st, k, s);
	return rc;
}

/* ---- paged lists at a resourceVersion ------------------------------- */

static enum store_event event_parse(const char *s);

/* One object's key and its JSON text at the page's rv. */
struct page_row {
	char *ns, *name;
};

struct page {
	struct store *st;
	const char *res, *ns;
	int64_t at_rv;
	struct page_row *changed;	/* keys written after at_rv, key order */
	size_t nchanged, next_changed;
};

static int
key_cmp(const char *ans, const char *aname, const char *bns, const char *bname)
{
	int c = strcmp(ans, bns);
	return c ? c : strcmp(aname, bname);
}

static void
page_bind(sqlite3_stmt *s, const struct page *p, const char *after_ns,
    const char *after_name)
{
	bind_text(s, 1, p->res);
	bind_text(s, 2, p->ns);
	bind_text(s, 3, after_ns);
	bind_text(s, 4, after_name);
	sqlite3_bind_int64(s, 5, p->at_rv);
}

/* The keys of res written after at_rv (bounded by the writes since). */
static int
page_changed(struct page *p, const char *after_ns, const char *after_name)
{
	struct store *st = p->st;
	sqlite3_stmt *s = stmt_get(st, S_CHANGED);
	size_t cap = 0;
	int rc;

	if (!s)
		return sql_fail(st, "list", sqlite3_errcode(st->db));
	page_bind(s, p, after_ns, after_name);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (p->nchanged == cap) {
			cap = cap ? 2 * cap : 16;
			p->changed = xrealloc(p->changed, cap * sizeof *p->changed);
		}
		p->changed[p->nchanged++] = (struct page_row){
			xstrdup((const char *)sqlite3_column_text(s, 0)),
			xstrdup((const char *)sqlite3_column_text(s, 1)) };
	}
	stmt_put(st, S_CHANGED, s);
	return rc == SQLITE_DONE ? 0 : sql_fail(st, "list", rc);
}

/* The JSON of ns/name as it was at at_rv, from the journal: *json NULL when
 * it did not exist then. -ERANGE when the journal no longer reaches back to
 * its state at at_rv. Caller frees *json. */
static int
page_state_at(struct page *p, const char *ns, const char *name, char **json, size_t *len)
{
	struct store *st = p->st;
	sqlite3_stmt *s = st->stmts[S_FIRST_AFTER];
	int rc;
	bool existed;

	*json = NULL;
	bind_key(s, p->res, ns, name);
	sqlite3_bind_int64(s, 4, p->at_rv);
	rc = sqlite3_step(s);
	existed = rc == SQLITE_ROW && event_parse((const char *)sqlite3_column_text(s, 0)) !=
	    STORE_ADDED;
	stmt_put(st, S_FIRST_AFTER, s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_fail(st, "list", rc);
	if (!existed)
		return 0;	/* created after at_rv (or never there) */
	s = st->stmts[S_LAST_UPTO];
	bind_key(s, p->res, ns, name);
	sqlite3_bind_int64(s, 4, p->at_rv);
	rc = sqlite3_step(s);
	bool unreadable = false;
	if (rc == SQLITE_ROW && event_parse((const char *)sqlite3_column_text(s, 0)) !=
	    STORE_DELETED) {
		char *tmp;
		const char *data = col_data(st, s, 1, p->res, ns, name, &tmp, len);
		*json = tmp ? tmp : data ? xstrndup(data, *len) : NULL;
		unreadable = !data;
	}
	stmt_put(st, S_LAST_UPTO, s);
	if (rc == SQLITE_DONE)
		return -ERANGE;	/* its last write before at_rv was compacted */
	if (unreadable)
		return -EIO;
	return rc == SQLITE_ROW ? 0 : sql_fail(st, "list", rc);
}

/* Remembers ns/name as the last key examined: where the next page starts. */
static void
page_mark(struct store_page *out, const char *ns, const char *name)
{
	free(out->next_ns);
	free(out->next_name);
	out->next_ns = xstrdup(ns);
	out->next_name = xstrdup(name);
}

/* Gives fn one object; counts it when fn says it was taken. */
static int
page_give(struct store_page *out, store_page_fn fn, void *arg, const char *ns,
    const char *name, const char *json, size_t len)
{
	int rc = fn(arg, json, len);
	if (rc < 0)
		return rc;
	out->count += (size_t)rc;
	page_mark(out, ns, name);
	return 0;
}

static bool
page_full(const struct store_page *out, size_t limit)
{
	return limit && out->count >= limit;
}

/* Emits the changed keys before (ns, name) (all when ns is NULL). */
static int
page_emit_changed(struct page *p, const char *ns, const char *name, size_t limit,
    store_page_fn fn, void *arg, struct store_page *out)
{
	int rc = 0;

	while (p->next_changed < p->nchanged && !page_full(out, limit)) {
		struct page_row *r = &p->changed[p->next_changed];
		char *json;
		size_t len;
		if (ns && key_cmp(r->ns, r->name, ns, name) >= 0)
			break;
		p->next_changed++;
		if ((rc = page_state_at(p, r->ns, r->name, &json, &len)) < 0)
			return rc;
		if (json) {
			rc = page_give(out, fn, arg, r->ns, r->name, json, len);
			free(json);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int
store_list_page(struct store *st, const char *res, const char *ns, int64_t at_rv,
    const char *after_ns, const char *after_name, size_t limit, store_page_fn fn,
    void *arg, struct store_page *out)
{
	struct page p = { .st = st, .res = res, .ns = ns, .at_rv = at_rv };
	sqlite3_stmt *s = NULL;
	int src = SQLITE_DONE, rc;

	memset(out, 0, sizeof *out);
	if (at_rv < st->compacted || at_rv > st->rv)
		return -ERANGE;
	after_ns = after_ns ? after_ns : "";
	after_name = after_name ? after_name : "";
	if ((rc = page_changed(&p, after_ns, after_name)) < 0)
		goto out;
	if (!(s = stmt_get(st, S_PAGE))) {
		rc = sql_fail(st, "list", sqlite3_errcode(st->db));
		goto out;
	}
	page_bind(s, &p, after_ns, after_name);
	while (!page_full(out, limit) && (src = sqlite3_step(s)) == SQLITE_ROW) {
		const char *rns = (const char *)sqlite3_column_text(s, 0);
		const char *rname = (const char *)sqlite3_column_text(s, 1);
		if ((rc = page_emit_changed(&p, rns, rname, limit, fn, arg, out)) < 0)
			break;
		if (page_full(out, limit)) {
			out->more = true;	/* this row is the next page's */
			break;
		}
		char *tmp;
		size_t len;
		const char *data = col_data(st, s, 2, res, rns, rname, &tmp, &len);
		rc = data ? page_give(out, fn, arg, rns, rname, data, len) : -EIO;
		free(tmp);
		if (rc < 0)
			break;
	}
	if (rc == 0 && src == SQLITE_ROW && !out->more)
		out->more = (src = sqlite3_step(s)) == SQLITE_ROW;
	if (rc == 0 && src != SQLITE_DONE && src != SQLITE_ROW)
		rc = sql_fail(st, "list", src);
	stmt_put(st, S_PAGE, s);
	if (rc == 0)
		rc = page_emit_changed(&p, NULL, NULL, limit, fn, arg, out);
	if (rc == 0 && p.next_changed < p.nchanged)
		out->more = true;
out:
	for (size_t i = 0; i < p.nchanged; i++) {
		free(p.changed[i].ns);
		free(p.changed[i].name);
	}
	free(p.changed);
	if (rc < 0 || !out->more) {
		free(out->next_ns);
		free(out->next_name);
		out->next_ns = out->next_name = NULL;
	}
	return rc;
}

int64_t
store_count_after(struct store *st, const char *res, const char *ns, const char *after_ns,
    const char *after_name)
{
	sqlite3_stmt *s = stmt_get(st, S_COUNT_REST);
	int64_t n = -1;

	if (!s)
		return -1;
	bind_text(s, 1, res);
	bind_text(s, 2, ns);
	bind_text(s, 3, after_ns ? after_ns : "");
	bind_text(s, 4, after_name ? after_name : "");
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	stmt_put(st, S_COUNT_REST, s);
	return n;
}

static int
list_append(void *arg, const char *json, size_t len)
{
	json_t *obj = json_loadb(json, len, 0, NULL);

	if (!obj)
		return -EIO;
	json_array_append_new(arg, obj);
	return 0;
}

int
store_list(struct store *st, const char *res, const char *ns, json_t **items,
    int64_t *rv)
{
	int rc;

	*items = json_array();
	rc = store_list_each(st, res, ns, list_append, *items, rv);
	if (rc != 0) {
		json_decref(*items);
		*items = NULL;
	}
	return rc;
}

/* ---- writes ----------------------------------------------------------- */

/* The namespace ("" when absent) and name of obj; -EINVAL without a name. */
static int
obj_key(const json_t *obj, const char **ns, const char **name)
{
	json_t *meta = json_object_get(obj, "metadata");

	*ns = json_string_value(json_object_get(meta, "namespace"));
	*name = json_string_value(json_object_get(meta, "name"));
	if (!*ns)
		*ns = "";
	return *name && **name ? 0 : -EINVAL;
}

/* Sets metadata.resourceVersion; returns the previous value (a reference,
 * NULL when absent) so a failed write can put it back. */
static json_t *
rv_set(json_t *obj, int64_t rv)
{
	json_t *meta = json_object_get(obj, "metadata");
	json_t *old = json_incref(json_object_get(meta, "resourceVersion"));
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, rv);
	json_object_set_new(meta, "resourceVersion", json_string(buf));
	return old;
}

static void
rv_restore(json_t *obj, json_t *old)
{
	json_t *meta = json_object_get(obj, "metadata");

	if (old)
		json_object_set_new(meta, "resourceVersion", old);
	else
		json_object_del(meta, "resourceVersion");
}

static int
txn_begin(struct store *st)
{
	int rc;

	if (st->batch_err)
		return st->batch_err;
	if (st->in_txn)
		return 0;
	rc = stmt_run(st->stmts[S_BEGIN]);
	if (rc != SQLITE_OK)
		return sql_fail(st, "begin", rc);
	st->in_txn = true;
	return 0;
}

/* A statement of the batch failed after changing rows: the batch can no
 * longer be committed as a whole, so store_flush() will roll it back. */
static int
batch_fail(struct store *st, const char *what, int rc)
{
	st->batch_err = sql_fail(st, what, rc);
	return st->batch_err;
}

/* Writes the objects row (S_INSERT, S_UPDATE or S_DELETE). */
static int
row_write(struct store *st, enum stmt_kind k, const char *res, const char *ns,
    const char *name, int64_t rv, const char *data)
{
	sqlite3_stmt *s = st->stmts[k];

	bind_key(s, res, ns, name);
	if (k != S_DELETE) {
		sqlite3_bind_int64(s, 4, rv);
		if (bind_data(st, s, 5, res, ns, name, data) < 0) {
			sqlite3_clear_bindings(s);
			return SQLITE_ERROR;
		}
	}
	return stmt_run(s);
}

/* Journals the change whose objects row was just written, takes the next
 * rv and queues the event for delivery after commit. Takes data. */
static int
stage(struct store *st, enum store_event type, const char *res, const char *ns,
    const char *name, char *data)
{
	sqlite3_stmt *s = st->stmts[S_JOURNAL];
	struct ev *e;
	int rc;

	bind_key(s, res, ns, name);
	sqlite3_bind_int64(s, 4, st->rv + 1);
	bind_text(s, 6, event_names[type]);
	if (bind_data(st, s, 5, res, ns, name, data) < 0) {
		sqlite3_clear_bindings(s);
		rc = SQLITE_ERROR;
	} else {
		rc = stmt_run(s);
	}
	if (rc != SQLITE_OK) {
		free(data);
		return batch_fail(st, "journal", rc);
	}
	e = xmalloc(sizeof(*e));
	e->next = NULL;
	e->rv = ++st->rv;
	e->type = type;
	e->res = xstrdup(res);
	e->ns = xstrdup(ns);
	e->data = data;
	e->len = strlen(data);
	e->obj = NULL;
	*st->staged.tail = e;
	st->staged.tail = &e->next;
	return 0;
}

/* Creates (S_INSERT) or replaces (S_UPDATE) the row for obj at the next rv. */
static int
obj_write(struct store *st, enum stmt_kind k, const char *res, json_t *obj,
    const char *ns, const char *name)
{
	json_t *old = rv_set(obj, st->rv + 1);
	char *data = json_dumps(obj, JSON_COMPACT);
	int rc;

	if (!data) {
		rv_restore(obj, old);
		return -ENOMEM;
	}
	rc = row_write(st, k, res, ns, name, st->rv + 1, data);
	if (rc != SQLITE_OK) {
		rv_restore(obj, old);
		free(data);
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			return -EEXIST;
		return batch_fail(st, res, rc);
	}
	json_decref(old);
	return stage(st, k == S_INSERT ? STORE_ADDED : STORE_MODIFIED, res, ns,
	    name, data);
}

int
store_create(struct store *st, const char *res, json_t *obj)
{
	const char *ns, *name;
	int rc;

	if ((rc = obj_key(obj, &ns, &name)) < 0 || (rc = txn_begin(st)) < 0)
		return rc;
	return obj_write(st, S_INSERT, res, obj, ns, name);
}

int
store_update(struct store *st, const char *res, json_t *obj, int64_t expect_rv)
{
	const char *ns, *name;
	int64_t rv;
	int rc;

	if ((rc = obj_key(obj, &ns, &name)) < 0 || (rc = txn_begin(st)) < 0)
		return rc;
	if ((rc = row_get(st, res, ns, name, &rv, NULL)) < 0)
		return rc;
	if (expect_rv > 0 && expect_rv != rv)
		return -ESTALE;
	return obj_write(st, S_UPDATE, res, obj, ns, name);
}

int
store_delete(struct store *st, const char *res, const char *ns, const char *name,
    int64_t expect_rv, json_t **deleted)
{
	json_t *obj = NULL;
	char *data;
	int64_t rv;
	int rc;

	if (deleted)
		*deleted = NULL;
	ns = ns ? ns : "";
	if ((rc = txn_begin(st)) < 0)
		return rc;
	if ((rc = row_get(st, res, ns, name, &rv, &obj)) < 0)
		return rc;
	if (expect_rv > 0 && expect_rv != rv) {
		json_decref(obj);
		return -ESTALE;
	}
	json_decref(rv_set(obj, st->rv + 1));
	if (!(data = json_dumps(obj, JSON_COMPACT))) {
		json_decref(obj);
		return -ENOMEM;
	}
	rc = row_write(st, S_DELETE, res, ns, name, 0, NULL);
	if (rc != SQLITE_OK) {
		free(data);
		json_decref(obj);
		return batch_fail(st, res, rc);
	}
	if ((rc = stage(st, STORE_DELETED, res, ns, name, data)) == 0 && deleted)
		*deleted = json_incref(obj);
	json_decref(obj);
	return rc;
}

/* ---- commit ----------------------------------------------------------- */

/* Notes that the changes up to rv were committed by now_ms, at most one
 * mark per retention/32 (a change's age is known to that precision). */
static void
mark_note(struct store *st, int64_t now_ms, int64_t rv)
{
	struct rv_mark *last = st->nmarks ? &st->marks[st->nmarks - 1] : NULL;

	if (st->retention_ms == 0)
		return;
	st->newest = (struct rv_mark){ now_ms, rv };
	if (last && (last->rv == rv || now_ms - last->t_ms < st->retention_ms / 32))
		return;
	if (st->nmarks == STORE_MARKS) {
		/* the oldest goes: its changes are then cut with the next mark's */
		memmove(st->marks, st->marks + 1, sizeof(st->marks[0]) * --st->nmarks);
	}
	st->marks[st->nmarks++] = (struct rv_mark){ now_ms, rv };
}

/* The newest rv whose changes are all older than the retention (0: none),
 * and drops the marks it passes. */
static int64_t
marks_expired(struct store *st, int64_t now_ms)
{
	int64_t rv = 0;
	int n = 0;

	if (st->retention_ms == 0)
		return 0;
	while (n < st->nmarks && st->marks[n].t_ms <= now_ms - st->retention_ms)
		rv = st->marks[n++].rv;
	/* commits skipped by mark_note are bounded by the newest one's time */
	if (n == st->nmarks && st->newest.t_ms <= now_ms - st->retention_ms &&
	    st->newest.rv > rv)
		rv = st->newest.rv;
	/* keep the last expired mark: the cut may have been held by keep_min */
	if (n > 1) {
		memmove(st->marks, st->marks + n - 1, sizeof(st->marks[0]) * (st->nmarks - n + 1));
		st->nmarks -= n - 1;
	}
	return rv;
}

/* Where the journal may be cut: changes past journal_limit (once 10% over,
 * so the DELETE runs once per limit/10 writes), and changes older than the
 * retention except the newest keep_min (once keep_min/10 of them are due). */
static int64_t
journal_cut(struct store *st, int64_t now_ms)
{
	int64_t slack = st->journal_limit / 10, cut = st->compacted, t;

	if (st->rv - st->compacted > st->journal_limit + slack)
		cut = st->rv - st->journal_limit;
	t = marks_expired(st, now_ms);
	if (t > st->rv - st->keep_min)
		t = st->rv - st->keep_min;
	if (t - st->compacted >= (st->keep_min / 10 > 1 ? st->keep_min / 10 : 1) && t > cut)
		cut = t;
	return cut;
}

/* Trims the journal when due (journal_cut), inside the open write batch:
 * an idle store never compacts, so it writes nothing. Sets *compacted to
 * the new boundary (unchanged when not due). */
static int
journal_compact(struct store *st, int64_t *compacted)
{
	sqlite3_stmt *s = st->stmts[S_COMPACT];
	int64_t cut = journal_cut(st, time_mono_ms());
	int rc;

	*compacted = st->compacted;
	if (cut <= st->compacted)
		return 0;
	sqlite3_bind_int64(s, 1, cut);
	if ((rc = stmt_run(s)) != SQLITE_OK)
		return sql_fail(st, "compact", rc);
	*compacted = cut;
	return meta_set(st, "compacted", cut);
}

static void deliver(struct store *st);
static void hear_staged(struct store *st);

/* Throws the open batch away and puts the counters back. */
static void
batch_abort(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		stmt_run(st->stmts[S_ROLLBACK]);
	st->in_txn = false;
	st->batch_err = 0;
	evq_clear(&st->staged);
	st->heard = NULL;
	st->staged_gen++;
	/* A watch started from a list that showed the rolled-back writes must
	 * not skip the rvs that the next writes will reuse. */
	for (struct store_watch *w = st->watches; w; w = w->next)
		if (w->last_rv > st->committed_rv)
			w->last_rv = st->committed_rv;
	log_warn("store", "rolled back resourceVersions %" PRId64 "..%" PRId64,
	    st->committed_rv + 1, st->rv);
	st->rv = st->committed_rv;
}

/* One integer from a pragma or query, -1 on failure. */
static int64_t
query_int(struct store *st, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

void
store_stats(struct store *st, int64_t *db_bytes, int64_t *journal_rows)
{
	int64_t pages = query_int(st, "PRAGMA page_count");
	int64_t size = query_int(st, "PRAGMA page_size");

	*db_bytes = pages >= 0 && size >= 0 ? pages * size : -1;
	*journal_rows = query_int(st, "SELECT count(*) FROM journal");
}

int
store_flush(struct store *st)
{
	int64_t compacted = st->compacted;
	int rc;

	if (st->in_txn && !st->hearing)
		hear_staged(st);
	if (!st->in_txn) {
		deliver(st);
		return 0;
	}
	rc = st->batch_err;
	if (rc == 0)
		rc = journal_compact(st, &compacted);
	if (rc == 0 && st->rv != st->committed_rv)
		rc = meta_set(st, "rv", st->rv);
	uint64_t t0 = uv_hrtime();
	if (rc == 0 && (rc = stmt_run(st->stmts[S_COMMIT])) != SQLITE_OK)
		rc = sql_fail(st, "commit", rc);
	if (rc == 0)
		obs_store_commit((double)(uv_hrtime() - t0) / 1e9);
	if (rc < 0) {
		batch_abort(st);
		return rc;
	}
	st->in_txn = false;
	st->committed_rv = st->rv;
	st->compacted = compacted;
	mark_note(st, time_mono_ms(), st->rv);
	if (st->staged.head) {
		*st->outq.tail = st->staged.head;
		st->outq.tail = st->staged.tail;
		st->staged.head = NULL;
		st->staged.tail = &st->staged.head;
	}
	st->heard = NULL;
	st->staged_gen++;
	deliver(st);
	return 0;
}

/* ---- watches ---------------------------------------------------------- */

static bool
watch_match(const struct store_watch *w, const char *res, const char *ns)
{
	return (!w->res || strcmp(w->res, res) == 0) &&
	    (!w->ns || strcmp(w->ns, ns) == 0);
}

/* Frees the watches stopped during callbacks, once none is running. */
static void
watch_reap(struct store *st)
{
	struct store_watch **pw = &st->watches, *w;

	if (st->cb_depth > 0 || !st->reap)
		return;
	st->reap = false;
	while ((w = *pw)) {
		if (w->stopped) {
			*pw = w->next;
			watch_free(w);
		} else {
			pw = &w->next;
		}
	}
}

/* Hands e to the watches that have not had it (only the staged ones when
 * staged_only: the write is not committed yet). Returns true when one of
 * those heard it. */
static bool
deliver_one(struct store *st, struct ev *e, bool staged_only)
{
	bool heard = false;

	for (struct store_watch *w = st->watches; w; w = w->next) {
		if (w->stopped || e->rv <= w->last_rv || !watch_match(w, e->res, e->ns) ||
		    (staged_only && !w->drain))
			continue;
		/* watch objects are never changed: one parse serves both passes */
		if (!e->obj && !(e->obj = json_loadb(e->data, e->len, 0, NULL)))
			return heard;
		w->last_rv = e->rv;
		if (w->drain)
			w->heard = heard = true;
		w->fn(w->arg, e->type, e->res, e->obj, e->rv);
	}
	return heard;
}

/* Before a commit: the staged watches hear the writes staged since they
 * last heard, in rv order, then each one that heard something is drained
 * (a controller runs what it queued); the writes those stage are heard in
 * the next round. A flush from inside a callback (staged_gen moves) has
 * committed and delivered everything: the rounds end there. */
static void
hear_staged(struct store *st)
{
	st->hearing = true;
	st->cb_depth++;
	for (int round = 0; round < STORE_STAGED_ROUNDS && st->in_txn; round++) {
		uint64_t gen = st->staged_gen;
		bool heard = false;
		struct ev *e;
		while (gen == st->staged_gen && !st->batch_err &&
		    (e = st->heard ? st->heard->next : st->staged.head)) {
			st->heard = e;
			heard |= deliver_one(st, e, true);
		}
		for (struct store_watch *w = st->watches; w && gen == st->staged_gen; w = w->next) {
			if (w->stopped || !w->heard)
				continue;
			w->heard = false;
			w->drain(w->arg);
		}
		if (!heard || gen != st->staged_gen || st->batch_err)
			break;
	}
	st->cb_depth--;
	st->hearing = false;
	watch_reap(st);
}

/* Hands the committed events to the watchers in rv order. A flush from
 * inside a callback only queues its events: the outer loop sends them. */
static void
deliver(struct store *st)
{
	struct ev *e;

	if (st->delivering)
		return;
	st->delivering = true;
	st->cb_depth++;
	while ((e = st->outq.head)) {
		st->outq.head = e->next;
		if (!st->outq.head)
			st->outq.tail = &st->outq.head;
		st->delivered_rv = e->rv;
		deliver_one(st, e, false);
		ev_free(e);
	}
	st->cb_depth--;
	st->delivering = false;
	watch_reap(st);
}

static enum store_event
event_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(event_names); i++)
		if (strcmp(event_names[i], s) == 0)
			return (enum store_event)i;
	return STORE_MODIFIED;
}

/* Sends w the journal's events in (w->last_rv, upto]. */
static int
watch_replay(struct store *st, struct store_watch *w, int64_t upto)
{
	sqlite3_stmt *s = stmt_get(st, S_REPLAY);
	json_t *obj;
	int rc = SQLITE_DONE;

	if (!s)
		return sql_fail(st, "replay", sqlite3_errcode(st->db));
	sqlite3_bind_int64(s, 1, w->last_rv);
	sqlite3_bind_int64(s, 2, upto);
	bind_text(s, 3, w->res);
	bind_text(s, 4, w->ns);
	while (!w->stopped && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		char *tmp;
		size_t len;
		const char *data = col_data(st, s, 3, (const char *)sqlite3_column_text(s, 2),
		    (const char *)sqlite3_column_text(s, 4),
		    (const char *)sqlite3_column_text(s, 5), &tmp, &len);
		obj = data ? json_loadb(data, len, 0, NULL) : NULL;
		free(tmp);
		if (!obj)
			continue;	/* unreadable: logged */
		w->fn(w->arg, event_parse((const char *)sqlite3_column_text(s, 1)),
		    (const char *)sqlite3_column_text(s, 2), obj,
		    sqlite3_column_int64(s, 0));
		json_decref(obj);
	}
	stmt_put(st, S_REPLAY, s);
	if (!w->stopped && rc != SQLITE_DONE)
		return sql_fail(st, "replay", rc);
	w->last_rv = upto;
	return 0;
}

/* The watch joins the delivery list only after its replay, so live events
 * never interleave with replayed ones; events delivered to the others
 * meanwhile are picked up by replaying again up to delivered_rv. If a
 * callback stops the watch during the replay, *out is NULL on return. */
int
store_watch_start(struct store *st, const char *res, const char *ns,
    int64_t from_rv, store_watch_fn fn, void *arg, struct store_watch **out)
{
	struct store_watch *w;
	int rc = 0;

	*out = NULL;
	if (from_rv < 0 || !fn)
		return -EINVAL;
	if (from_rv > 0 && from_rv < st->compacted)
		return -ERANGE;
	w = xcalloc(1, sizeof(*w));
	w->st = st;
	w->res = res ? xstrdup(res) : NULL;
	w->ns = ns ? xstrdup(ns) : NULL;
	w->fn = fn;
	w->arg = arg;
	w->last_rv = from_rv > 0 ? from_rv : st->delivered_rv;
	*out = w;
	st->cb_depth++;
	while (rc == 0 && !w->stopped && w->last_rv < st->delivered_rv)
		rc = watch_replay(st, w, st->delivered_rv);
	st->cb_depth--;
	if (rc < 0 || w->stopped) {
		watch_free(w);
		*out = NULL;
	} else {
		struct store_watch **pw = &st->watches;
		while (*pw)
			pw = &(*pw)->next;
		*pw = w;
		w->linked = true;
	}
	watch_reap(st);
	return rc;
}

/* From now, staged writes included: they are in what the caller read when
 * it started (its reads see them), and hearing a later one first would
 * skip them (last_rv). */
int
store_watch_staged(struct store *st, const char *res, store_watch_fn fn,
    void (*drain)(void *arg), void *arg, struct store_watch **out)
{
	int rc = store_watch_start(st, res, NULL, 0, fn, arg, out);
	if (rc == 0 && *out) {
		(*out)->drain = drain;
		(*out)->last_rv = st->rv;
	}
	return rc;
}

void
store_watch_stop(struct store_watch *w)
{
	struct store *st;
	struct store_watch **pw;

	if (!w || w->stopped)
		return;
	st = w->st;
	w->stopped = true;
	if (!w->linked)
		return;		/* replaying: store_watch_start frees it */
	if (st->cb_depth > 0) {
		st->reap = true;
		return;
	}
	for (pw = &st->watches; *pw != w; pw = &(*pw)->next)
		;
	*pw = w->next;
	watch_free(w);
}
