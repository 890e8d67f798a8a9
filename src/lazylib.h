/* lazylib.h — libraries v6 loads on first use (dlopen) instead of at start:
 * libcurl, libarchive and libgit2. Callers keep calling the libraries' own
 * functions (lazylib.c defines each one as a forwarder, which returns the
 * library's failure value when it cannot be loaded); lazylib_load() lets an
 * entry point say up front that a library is missing, and why. */
#ifndef V6_LAZYLIB_H
#define V6_LAZYLIB_H

#include <stdbool.h>

enum lazylib {
	LAZYLIB_CURL,		/* outbound HTTP: registries, Alertmanager, Loki, OTLP, the CLI */
	LAZYLIB_ARCHIVE,	/* image layers */
	LAZYLIB_GIT2,		/* GitOps */
	LAZYLIB_COUNT
};

/* lazylib.c */
/* Loads LIB (once; thread-safe). 0, or -ENOENT with *err (if not NULL) set
 * to a static message naming the library, what needs it and dlerror()'s
 * reason. A failure is final for the life of the process. */
int lazylib_load(enum lazylib lib, const char **err);
/* Why LIB could not be loaded (static), or NULL if it is loaded or was
 * never tried. */
const char *lazylib_error(enum lazylib lib);
/* Whether LIB is loaded in this process (tests, diagnostics). */
bool lazylib_loaded(enum lazylib lib);
/* dlopen(SONAME) with the message lazylib_load() gives: the handle, or NULL
 * and *err (xmalloc'd, the caller frees) saying that WHAT needs SONAME. */
void *lazylib__open(const char *soname, const char *what, char **err);

#endif
