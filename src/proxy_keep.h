/* proxy_keep.h — the server's copies of the proxy's listening sockets
 * (proxy_keep.c): a proxy killed with SIGKILL leaves its connections
 * waiting in the backlog for the next one instead of refused. Used by
 * proxy_feed.c. */
#ifndef V6_PROXY_KEEP_H
#define V6_PROXY_KEEP_H

#include <uv.h>

struct proxy_keep;
/* Listens on DIR/keeper.sock, where a new proxy (`--inherit` that path)
 * gets copies of the sockets held. 0 or negative errno. */
int proxy_keep_start(uv_loop_t *loop, const char *dir, struct proxy_keep **out);
/* The proxy's listeners changed (or a proxy was started or adopted): fetch
 * its listening sockets from DIR/handoff.sock soon; changes within 100 ms
 * make one fetch. NULL: nothing. */
void proxy_keep_refresh(struct proxy_keep *k);
/* Lets the held sockets go (and a fetch under way): called before the
 * proxy is sent a change of its listeners, which may close a socket to
 * bind its port again. NULL: nothing. */
void proxy_keep_drop(struct proxy_keep *k);
/* DIR/keeper.sock, or NULL for NULL. */
const char *proxy_keep_path(const struct proxy_keep *k);
/* Lets the sockets go (the proxy keeps its own) and frees k once its
 * handles closed. NULL: nothing. */
void proxy_keep_stop(struct proxy_keep *k);

#endif
