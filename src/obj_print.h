/* obj_print.h — kubectl's columns for every kind V6 serves, as one table:
 * the server's meta.k8s.io Table responses (api_table.c) and the v6 CLI's
 * tables (cli_print.c) both read it, so both show what kubectl shows. */
#ifndef V6_OBJ_PRINT_H
#define V6_OBJ_PRINT_H

#include "util.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct print_ctx {
	const json_t *obj;
	int64_t now;		/* ms since the epoch, the clock of every age */
	struct buf *out;
};

typedef void (*print_cell_fn)(const struct print_ctx *c);

enum print_cell_type {
	PRINT_STR,		/* the text as written */
	PRINT_INT,		/* the text is an integer: a JSON number in a Table */
	PRINT_BOOL,		/* "True" / "False": a JSON boolean in a Table */
	PRINT_OPT,		/* a string; nothing written -> null ("<none>") */
	PRINT_OPT_INT,		/* an integer; nothing written -> null */
};

struct print_col {
	const char *name;	/* the Table column name: "Name", "Up-to-date" */
	const char *type;	/* the column definition's type: string, integer, date... */
	int priority;		/* 0: always shown; 1: with -o wide */
	print_cell_fn cell;	/* NULL: metadata.name */
	enum print_cell_type cell_type;
	enum print_for {
		PRINT_BOTH,	/* the v6 CLI and the API's Tables */
		PRINT_V6,	/* the v6 CLI's own column (kubectl's printer has none) */
		PRINT_KUBE,	/* only in Tables (the CLI shows its own form) */
	} who;
	const char *description;
};

/* obj_print.c */
/* The columns of kind ("Deployment"; an unknown kind gets Name and Age);
 * *n is set to their number. The table is static. */
const struct print_col *print_columns(const char *kind, size_t *n);
/* Writes the cell of column c for obj into out (empty: nothing to show). */
void print_cell(const struct print_col *c, const json_t *obj, int64_t now_ms,
    struct buf *out);
/* kubectl's age of an RFC 3339 timestamp ("<unknown>" if absent); out >= 32. */
void print_age(const char *ts, int64_t now_ms, char *out);
/* A label map as kubectl prints it: "a=1,b=2" sorted by key, "<none>" if empty. */
void print_labels(struct buf *b, const json_t *map);

/* obj_print_hpa.c */
/* An HPA's TARGETS cell: "cpu: 45%/50%", three at most then "+ N more...",
 * "<none>" without metrics. */
void print_hpa_targets(const json_t *hpa, struct buf *out);
/* The i-th metric of hpa: its describe label and "current / target" value
 * (caller frees both); false past the last. */
bool print_hpa_metric_line(const json_t *hpa, size_t i, char **label, char **value);

#endif
