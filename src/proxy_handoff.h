/* proxy_handoff.h — a seamless proxy restart: the running proxy hands its
 * listening sockets (SCM_RIGHTS over STATE/handoff.sock, a unix
 * SOCK_SEQPACKET socket) to the proxy that replaces it, so no connection is
 * ever refused, then drains. Used by proxy_main.c on both sides. */
#ifndef V6_PROXY_HANDOFF_H
#define V6_PROXY_HANDOFF_H

#include <stdbool.h>

#include "proxy.h"

/* proxy_engine.c — the engine's side */
typedef void (*proxy_listen_fn)(void *arg, const char *proto, const char *address, int port,
    int fd);
/* Calls fn for each listening socket ("HTTP" or "TCP"); the engine keeps
 * them. */
void proxy_engine_listen_fds(struct proxy_engine *e, proxy_listen_fn fn, void *arg);
/* Keeps fd (inherited) for the listener of (proto, address, port) a
 * snapshot opens next; false (fd not taken) for an unknown proto. */
bool proxy_engine_inherit(struct proxy_engine *e, const char *proto, const char *address,
    int port, int fd);
/* Closes the inherited sockets no listener took. */
void proxy_engine_inherit_end(struct proxy_engine *e);

/* proxy_handoff.c */
/* A unix socket of type (SOCK_STREAM, SOCK_SEQPACKET) listening on path
 * (mode 0600, non-blocking, close-on-exec), replacing any file there.
 * Returns the fd or negative errno. */
int proxy_unix_listen(const char *path, int type);
/* Old side: sends every listening socket of e, and admin_fd when >= 0, to
 * the process connected on sock, in batches. The sockets stay e's too.
 * Returns 0 or negative errno. */
int proxy_handoff_send(struct proxy_engine *e, int sock, int admin_fd);
/* Calls fn(arg, ...) once for each socket a sender passes. */
typedef void (*proxy_listen_each_fn)(void *ctx, proxy_listen_fn fn, void *arg);
/* Sends the sockets each(ctx, ...) lists (proto "ADMIN": the admin
 * listener) to the process connected on sock, in batches, blocking (with a
 * timeout). The sockets stay the caller's too. 0 or negative errno. */
int proxy_handoff_send_each(int sock, proxy_listen_each_fn each, void *ctx);
/* Receives one message on sock, calling fn for each socket in it (fn owns
 * the fd). 1 when more messages follow, 0 after the last, -EAGAIN when
 * none waits on a non-blocking sock, -ECONNRESET when the peer hung up, or
 * negative errno. */
int proxy_handoff_recv_one(int sock, proxy_listen_fn fn, void *arg);
/* A SOCK_SEQPACKET connection to the unix socket path (close-on-exec;
 * non-blocking, or blocking with a timeout). The fd or negative errno. */
int proxy_unix_connect(const char *path, bool nonblock);
/* Sends the message text, no descriptors. 0 or negative errno. */
int proxy_handoff_note(int sock, const char *text);
/* New side: connects to path and receives the sockets; the engine's
 * listeners take them as they open (same protocol, address and port),
 * *admin_fd gets the admin listener's or -1, *sock the connection, on
 * which proxy_handoff_ready() tells the old proxy to drain. Returns 0,
 * -ENOENT or -ECONNREFUSED when no proxy listens at path, or negative
 * errno. */
int proxy_handoff_recv(struct proxy_engine *e, const char *path, int *admin_fd, int *sock);
/* New side, once serving: closes inherited sockets no listener took and
 * tells the old proxy (sock, then closed; -1: none) that it may drain. */
void proxy_handoff_ready(struct proxy_engine *e, int sock);

#endif
