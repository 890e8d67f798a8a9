/* util.h — small helpers every module uses: allocation that aborts on
 * out-of-memory, a growable byte buffer, clocks and durations.
 * Nothing here does I/O except the clocks. */
#ifndef V6_UTIL_H
#define V6_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifndef V6_VERSION
#define V6_VERSION "0.1.0"
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define V6_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* BUG_ON(): an invariant that, if broken, means the program is wrong. */
#define BUG_ON(cond) do { if (cond) util_bug(__FILE__, __LINE__, #cond); } while (0)
_Noreturn void util_bug(const char *file, int line, const char *what);

/* util.c */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) V6_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) V6_PRINTF(1, 0);

/* A growable buffer, always NUL-terminated once anything was appended. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
#define BUF_INIT { NULL, 0, 0 }
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) V6_PRINTF(2, 3);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Returns the NUL-terminated contents (never NULL) and empties b; caller frees. */
char *buf_steal(struct buf *b);

bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* qsort / bsearch comparison of two char * (strcmp of what they point to). */
int str_pcmp(const void *a, const void *b);
/* rm -rf path without crossing into other file systems (bind mounts stay
 * untouched). Returns 0 (also when path is missing) or the first failure as
 * a negative errno; it goes on past failures. */
int util_remove_tree(const char *path);

/* Wall clock and monotonic clock in milliseconds. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/* RFC 3339 UTC with second precision, "2026-11-28T18:35:28Z". out >= 32 bytes. */
void time_format_rfc3339(time_t t, char *out);
int time_parse_rfc3339(const char *s, time_t *out);
/* "1h2m3s", "500ms", "30s", "2m" -> milliseconds; plain number = seconds.
 * Returns 0 or -EINVAL. */
int duration_parse(const char *s, int64_t *ms);
/* Kubernetes-style age: "5s", "3m12s", "4h", "12d". out >= 32 bytes. */
void duration_format_age(int64_t ms, char *out);

/* 32 random bits from the kernel (getrandom), for non-cryptographic uses
 * such as where an allocator starts. */
uint32_t util_random32(void);
/* Parses "10.96.0.0/16" into the network address (host order) and the
 * prefix length: a prefix from 16 to 24 and no host bits. 0 or -EINVAL. */
int util_ipv4_cidr(const char *s, uint32_t *base, unsigned *prefix);
/* util_ipv4_cidr, accepting only a range inside 127.0.0.0/8 that leaves out
 * 127.0.0.0/16: V6's process pods and (without the pod network) Service
 * addresses live on loopback. 0 or -EINVAL. */
int util_loopback_cidr(const char *s, uint32_t *base, unsigned *prefix);
/* Docker's rule for "this host only": HOST[:PORT] is localhost, an address
 * in 127.0.0.0/8, or ::1 (bare or in brackets). */
bool util_host_is_loopback(const char *hostport);

/* Reads a whole file ("-" = stdin). Returns 0 or negative errno; *out is
 * NUL-terminated, caller frees. */
/* Writes all n bytes to fd (a blocking one), retrying after EINTR; stops
 * at the first error. */
void fd_write_all(int fd, const char *p, size_t n);
int file_read_all(const char *path, char **out, size_t *len);
/* Writes PATH.tmpTID then renames it over path, so a reader sees the old
 * or the new content, never a part (fsync before the rename when sync).
 * TID (the thread's id; the pid on the main thread): two threads may write
 * the same file at once (the start jobs of a pod's containers, its files).
 * The file is made mode 0600 (V6's state is private; chmod to share it).
 * Returns 0 or negative errno. */
int file_write_atomic(const char *path, const char *data, size_t len, bool sync);

/* util_utf8.c */
/* Whether s[0, n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), the rule jansson applies to every string. */
bool utf8_valid(const char *s, size_t n);
/* The same for the percent-decoded form of a URL query or path ("%C3%A9"
 * and '+' decoded; a malformed escape is taken literally). */
bool utf8_valid_pct(const char *s);
/* A copy of s with every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD; caller frees. For text that must become JSON. */
char *utf8_sanitize(const char *s);
/* Appends s[0, n) to b as a quoted JSON string: '"', '\\' and control
 * bytes escaped, every byte that is not well-formed UTF-8 replaced by
 * U+FFFD, NUL bytes kept as \u0000. */
void utf8_json_quote(struct buf *b, const char *s, size_t n);

#endif
