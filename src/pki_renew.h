/* pki_renew.h — the running API server's certificates (pki_renew.c): made
 * or reused at start, renewed online before they expire, rotated on
 * request (POST /v6/certs/rotate). server.c's hook. */
#ifndef V6_PKI_RENEW_H
#define V6_PKI_RENEW_H

#include <stdint.h>
#include <uv.h>

#include "api.h"
#include "pki.h"

struct pki_renew;

/* Makes or reuses DATA/pki (listen_host becomes a SAN of the serving
 * certificate; lifetime_s 0: a year) and builds the TLS context *ctx for
 * the API (valid while *out lives). Returns 0, or a negative errno with
 * *err set (caller frees). */
int pki_renew_init(const char *data_dir, const char *listen_host, int64_t lifetime_s,
    struct pki_renew **out, struct ssl_ctx_st **ctx, char **err);
/* Starts the renewal timer and serves /v6/certs/rotate on api. */
void pki_renew_start(struct pki_renew *p, uv_loop_t *loop, struct api *api);
/* Stops and frees (after the timer's close; NULL: nothing). */
void pki_renew_stop(struct pki_renew *p);

#endif
