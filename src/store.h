/* store.h — the durable object store: SQLite in WAL mode holding every
 * object, one global monotonic resourceVersion, and a journal of change
 * events that watches replay from. Owned by the server process; the API
 * server and the controllers call it from the loop thread.
 *
 * Writes are group-committed: store_create/update/delete stage changes in an
 * open transaction and return at once; store_flush() commits them (fsync)
 * and only then delivers the watch events. A caller must not acknowledge a
 * write to a client before store_flush() returned 0. */
#ifndef V6_STORE_H
#define V6_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct store_watch;

enum store_event { STORE_ADDED, STORE_MODIFIED, STORE_DELETED };

/* Resources are named by a key "GROUP/PLURAL" ("apps/deployments") or just
 * "PLURAL" for the core group ("pods"); namespaces by name, "" for
 * cluster-scoped objects. */

/* store.c */
/* Opens (creating if needed) DIR/v6.db. Returns 0 or negative errno. The
 * store holds an exclusive lock on the database while open: a second open
 * (another server on the same DIR, or the sqlite3 shell) gets -EBUSY after
 * a 5 s wait. */
int store_open(const char *dir, struct store **out);
/* Flushes pending writes, stops every watch, closes the database. */
void store_close(struct store *st);
/* Keep at most n events in the journal (default 100000, minimum 10). */
void store_set_journal_limit(struct store *st, int64_t n);
/* Also drop the changes older than ms (default 5 minutes, as Kubernetes
 * compacts etcd; 0 = by count only), except the newest keep_min (default
 * 100); a negative value leaves that setting as it is. Compaction runs inside write batches: an idle store writes nothing.
 * A watch or continue token from a dropped rv gets -ERANGE (410 Expired). */
void store_set_journal_retention(struct store *st, int64_t ms, int64_t keep_min);
/* Newest resourceVersion written (committed or staged). */
int64_t store_current_rv(const struct store *st);
/* Oldest resourceVersion a watch can still resume from. */
int64_t store_oldest_rv(const struct store *st);

/* *out is a new reference. Returns 0, -ENOENT. */
int store_get(struct store *st, const char *res, const char *ns, const char *name,
    json_t **out);
/* Calls fn for every object of res in ns (NULL = all namespaces), ordered by
 * namespace then name, with the stored JSON text. Stops early and returns
 * fn's value when it is non-zero. *rv (if not NULL) is the list's
 * resourceVersion. */
typedef int (*store_each_fn)(void *arg, const char *json, size_t len);
int store_list_each(struct store *st, const char *res, const char *ns,
    store_each_fn fn, void *arg, int64_t *rv);
/* Convenience: every object (parsed) as a new JSON array. */
int store_list(struct store *st, const char *res, const char *ns, json_t **items,
    int64_t *rv);

/* A page of a list: fn gets each object's JSON text and returns 1 when it
 * took the object (it counts against the limit), 0 when it skipped it (a
 * selector), or a negative errno that stops the page. */
typedef int (*store_page_fn)(void *arg, const char *json, size_t len);
struct store_page {
	size_t count;		/* objects fn took */
	bool more;		/* objects may follow: continue after next_* */
	char *next_ns, *next_name;	/* the last key examined, when more; caller frees */
};
/* The objects of res in ns (NULL = all namespaces) after the key
 * (after_ns, after_name) (NULL, NULL = from the start), in key order, as
 * they were at resourceVersion at_rv: objects written since are read back
 * from the journal, so pages of one list are one consistent snapshot
 * (Kubernetes' continue tokens). Stops once fn took limit objects (0 = no
 * limit). Returns 0, -ERANGE when the journal no longer reaches back to
 * at_rv (410 Expired), or a negative errno. */
int store_list_page(struct store *st, const char *res, const char *ns, int64_t at_rv,
    const char *after_ns, const char *after_name, size_t limit, store_page_fn fn,
    void *arg, struct store_page *out);
/* How many objects of res in ns (NULL = all) sort after the key now, or -1
 * (remainingItemCount). */
int64_t store_count_after(struct store *st, const char *res, const char *ns,
    const char *after_ns, const char *after_name);

/* Stages a new object; sets metadata.resourceVersion in obj.
 * Returns 0, -EEXIST. */
int store_create(struct store *st, const char *res, json_t *obj);
/* Stages a replacement of an existing object (namespace/name from obj). If
 * expect_rv > 0 and the stored resourceVersion differs, returns -ESTALE
 * (409 Conflict). Sets metadata.resourceVersion in obj. Returns 0, -ENOENT,
 * -ESTALE. */
int store_update(struct store *st, const char *res, json_t *obj, int64_t expect_rv);
/* Stages removal. *deleted (if not NULL) receives the last state, with the
 * resourceVersion of the deletion. Returns 0, -ENOENT, -ESTALE. */
int store_delete(struct store *st, const char *res, const char *ns, const char *name,
    int64_t expect_rv, json_t **deleted);

/* The database's size (pages in use times page size) and the journal's
 * row count, for /metrics; -1 when unreadable. */
void store_stats(struct store *st, int64_t *db_bytes, int64_t *journal_rows);
/* store_vfs.c: the name of the fsync-timing VFS (registered on first
 * call), NULL to use SQLite's default. */
const char *store__timed_vfs(void);

/* Encrypts the resources c covers at rest from now on (store_crypt.h; c
 * must outlive the store, NULL: none) and rewrites, in place and without
 * new resourceVersions or events, every stored row of them (objects and
 * journal) not yet in the form new writes take: a new first key, or
 * encryption turned on or off (identity first), takes effect on the whole
 * store at start. Rows it cannot open are logged with the key they need and
 * left as they are. Call with no write staged. Returns 0 or negative errno. */
struct store_crypt;
int store_set_crypt(struct store *st, const struct store_crypt *c);

/* True when writes are staged but not yet committed. */
bool store_dirty(const struct store *st);
/* Lets the staged watches hear the staged writes (store_watch_staged),
 * commits them and theirs durably, compacts the journal when due, then
 * delivers their events to watchers. Returns 0, or negative errno when the
 * commit failed (the staged writes are rolled back and no event is sent). */
int store_flush(struct store *st);

/* fn is called for each event with rv > from_rv on res (NULL = every
 * resource) in ns (NULL = every namespace): first the journal's events,
 * synchronously inside store_watch_start, then live events after each
 * store_flush. obj is borrowed for the call. from_rv 0 means "from now".
 * Returns 0, or -ERANGE when from_rv is older than the journal reaches
 * (410 Gone). *out is set before the replay, so a replay callback may stop
 * the watch; *out is then NULL on return. Events are never repeated: a
 * watch from a list's rv does not get the staged writes that list showed. */
typedef void (*store_watch_fn)(void *arg, enum store_event ev, const char *res,
    const json_t *obj, int64_t rv);
int store_watch_start(struct store *st, const char *res, const char *ns,
    int64_t from_rv, store_watch_fn fn, void *arg, struct store_watch **out);
/* A staged watch of res (NULL: every resource), from now: fn hears of each
 * write when store_flush is about to commit it, before the COMMIT instead
 * of after it; then drain(arg) runs, once per round in which the watch
 * heard something. What fn and drain stage joins the same commit and is
 * heard in the next round (a few rounds; the rest before the next commit).
 * So a controller that writes the children of what it heard commits them
 * with their parent, in one fsync: a child is never durable without its
 * parent, and the other watches (every client's) hear of all of them only
 * once they are durable. A staged watch hears each write once, even when
 * it is then rolled back (a failed commit): it must keep nothing but what
 * it reads again from the store, such as queued keys. */
int store_watch_staged(struct store *st, const char *res, store_watch_fn fn,
    void (*drain)(void *arg), void *arg, struct store_watch **out);
/* Safe to call from inside the watch's own callback. */
void store_watch_stop(struct store_watch *w);

#endif
