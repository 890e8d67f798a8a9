/* store_crypt.h — encryption of stored objects at rest, configured by a
 * Kubernetes EncryptionConfiguration file (apiserver.config.k8s.io/v1):
 * per resource an ordered list of providers (aesgcm, secretbox, identity);
 * the first seals new writes, every one listed opens. The stored form is
 * the apiserver's: "k8s:enc:aesgcm:v1:KEY:" + nonce + ciphertext + tag.
 * Used by store.c on every read and write of a covered resource. */
#ifndef V6_STORE_CRYPT_H
#define V6_STORE_CRYPT_H

#include <stdbool.h>
#include <stddef.h>

struct store_crypt;

/* store_crypt.c */
/* Parses the configuration (YAML or JSON). Returns 0, or -EINVAL with *err
 * a message naming the field (caller frees). Key values never appear in
 * messages. */
int store_crypt_parse(const char *text, size_t len, struct store_crypt **out, char **err);
/* Reads and parses the file at path; as store_crypt_parse. */
int store_crypt_load(const char *path, struct store_crypt **out, char **err);
void store_crypt_free(struct store_crypt *c);
/* The i-th resource the configuration covers, NULL past the last. */
const char *store_crypt_resource(const struct store_crypt *c, size_t i);
/* True when res ("secrets", "apps/deployments") has providers configured. */
bool store_crypt_covers(const struct store_crypt *c, const char *res);
/* "aesgcm key \"k1\"" or "identity": what new writes of res use (static
 * storage in c; NULL when res is not covered). */
const char *store_crypt_writer(const struct store_crypt *c, const char *res);
/* The stored form of plaintext pt for res under the first provider; aad
 * (the object's key, "/registry/secrets/NS/NAME") is authenticated by
 * aesgcm. *out is malloc'd, caller frees. Returns 0 or -EIO. */
int store_crypt_seal(const struct store_crypt *c, const char *res, const char *aad,
    const void *pt, size_t len, unsigned char **out, size_t *outlen);
/* The plaintext of a stored value of res (c NULL: no configuration). A
 * value without the "k8s:enc:" prefix is plaintext, readable when no
 * configuration covers res or its providers include identity. *out is
 * malloc'd and NUL-terminated. Returns 0, or -EIO with *err saying why and
 * naming the provider and key (caller frees). */
int store_crypt_open(const struct store_crypt *c, const char *res, const char *aad,
    const void *in, size_t len, char **out, size_t *outlen, char **err);
/* True when a stored value of res is already in the form new writes take
 * (same provider and key): it need not be rewritten. */
bool store_crypt_current(const struct store_crypt *c, const char *res, const void *in,
    size_t len);

#endif
