/* proxy_upstream.h — the proxy's HTTP/1.1 client side (proxy_upstream.c):
 * per-endpoint keep-alive pools, forwarding one downstream request to an
 * endpoint with retries, and streaming the response back. Called by
 * proxy_engine.c's request handler and snapshot apply. */
#ifndef V6_PROXY_UPSTREAM_H
#define V6_PROXY_UPSTREAM_H

#include "proxy_int.h"

/* Proxies req, received on l and matched to route of table t, and finishes
 * it (now or later): the answer is the upstream's response, or 502/503/504
 * with a short text body. Takes a reference on t and an in-flight count on
 * l for as long as it runs. */
void px_forward(struct proxy_engine *e, struct px_listener *l, struct px_table *t,
    struct px_route *route, struct http_req *req);
/* Answers req on l with a short text error without any upstream (404 when
 * no route matched), counted in metrics. */
void px_answer_local(struct proxy_engine *e, struct px_stat *st, struct http_req *req,
    int status, const char *msg);
/* Closes ep's idle pooled connections (ep left every cluster; busy ones
 * close when their request ends). */
void px_pool_close_idle(struct px_endpoint *ep);
/* Frees the engine's cache of request objects. */
void px_upstream_free_cache(struct proxy_engine *e);

#endif
