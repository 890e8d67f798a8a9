/* cli_yedit.c — edits of a YAML file in place, for `v6 promote` through git
 * (cli_promote_git.c): a value set, a key or list item added or removed,
 * by byte ranges that libyaml reports, so everything else in the file (its
 * comments, key order, quoting, flow or block style) stays as the user
 * wrote it. Each call parses the text again: files are small. */
#include "cli.h"
#include "gitops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* A node of the document with its byte range in the text. */
struct yn {
	char type;		/* 'm'apping, 's'equence, 'v'alue (scalar or alias) */
	bool flow, quoted;
	size_t start, end;	/* block collections end where their last child does */
	int col;		/* 0-based column of start */
	char *val;		/* scalar text */
	struct yn *kids;	/* mapping: key, value, key, value, ... */
	size_t n;
};

static void
yn_free(struct yn *n)
{
	for (size_t i = 0; i < n->n; i++)
		yn_free(&n->kids[i]);
	free(n->kids);
	free(n->val);
}

/* Builds the node whose first event is ev (consumed). */
static int
yn_build(yaml_parser_t *p, yaml_event_t *ev, struct yn *out)
{
	*out = (struct yn){ .start = ev->start_mark.index, .col = (int)ev->start_mark.column,
		.end = ev->end_mark.index };
	yaml_event_type_t endt;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		out->type = 'v';
		out->val = xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
		out->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		yaml_event_delete(ev);
		return 0;
	case YAML_ALIAS_EVENT:
		out->type = 'v';
		out->val = xstrdup("");
		yaml_event_delete(ev);
		return 0;
	case YAML_MAPPING_START_EVENT:
		out->type = 'm';
		out->flow = ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE;
		endt = YAML_MAPPING_END_EVENT;
		break;
	case YAML_SEQUENCE_START_EVENT:
		out->type = 's';
		out->flow = ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
		endt = YAML_SEQUENCE_END_EVENT;
		break;
	default:
		yaml_event_delete(ev);
		return -EINVAL;
	}
	yaml_event_delete(ev);
	for (size_t guard = 0; guard < 10000000; guard++) {
		yaml_event_t e;
		if (!yaml_parser_parse(p, &e))
			return -EINVAL;
		if (e.type == endt) {
			out->end = out->flow || !out->n ? e.end_mark.index : out->kids[out->n - 1].end;
			if (!out->flow && !out->n)
				out->end = out->start;
			yaml_event_delete(&e);
			return 0;
		}
		out->kids = xrealloc(out->kids, (out->n + 1) * sizeof *out->kids);
		int rc = yn_build(p, &e, &out->kids[out->n]);
		out->n++;
		if (rc < 0)
			return rc;
	}
	return -EINVAL;
}

/* The root node of document doc of text. */
static int
yn_parse(const char *text, size_t doc, struct yn *root)
{
	yaml_parser_t p;
	yaml_event_t e;
	int rc = -ENOENT;
	size_t d = 0;
	*root = (struct yn){ 0 };
	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
	for (size_t guard = 0; guard < 100000; guard++) {
		if (!yaml_parser_parse(&p, &e)) {
			rc = -EINVAL;
			break;
		}
		yaml_event_type_t t = e.type;
		if (t == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&e);
			break;
		}
		if (t == YAML_DOCUMENT_START_EVENT && d++ == doc) {
			yaml_event_delete(&e);
			if (!yaml_parser_parse(&p, &e)) {
				rc = -EINVAL;
				break;
			}
			rc = yn_build(&p, &e, root);
			break;
		}
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	if (rc < 0)
		yn_free(root);
	return rc;
}

/* A plain scalar as YAML 1.2's core schema reads it. */
static json_t *
scalar_json(const struct yn *n)
{
	const char *s = n->val;
	char *end;
	if (n->quoted)
		return json_string(s);
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null"))
		return json_null();
	if (!strcmp(s, "true") || !strcmp(s, "false"))
		return json_boolean(s[0] == 't');
	long long i = strtoll(s, &end, 10);
	if (!*end)
		return json_integer(i);
	double d = strtod(s, &end);
	if (!*end)
		return json_real(d);
	return json_string(s);
}

static json_t *
yn_json(const struct yn *n)
{
	if (n->type == 'v')
		return scalar_json(n);
	json_t *out = n->type == 'm' ? json_object() : json_array();
	for (size_t i = 0; i < n->n; i += n->type == 'm' ? 2 : 1) {
		if (n->type == 's')
			json_array_append_new(out, yn_json(&n->kids[i]));
		else if (i + 1 < n->n)
			json_object_set_new(out, n->kids[i].val ? n->kids[i].val : "",
			    yn_json(&n->kids[i + 1]));
	}
	return out;
}

/* The text a path segment selects an item by ({"name": "web"} -> "web"). */
static char *
seg_text(const json_t *v)
{
	return json_is_string(v) ? xstrdup(json_string_value(v)) :
	    json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
}

/* The child of n that seg names (a key, an index, {"k": v}); *key gets the
 * key node of a mapping's child, *idx its index in kids. */
static struct yn *
yn_child(struct yn *n, const json_t *seg, struct yn **key, size_t *idx)
{
	*key = NULL;
	if (json_is_string(seg) && n->type == 'm') {
		for (size_t i = 0; i + 1 < n->n; i += 2)
			if (n->kids[i].val && !strcmp(n->kids[i].val, json_string_value(seg))) {
				*key = &n->kids[i];
				*idx = i + 1;
				return &n->kids[i + 1];
			}
	} else if (json_is_integer(seg) && n->type == 's') {
		json_int_t i = json_integer_value(seg);
		if (i >= 0 && (size_t)i < n->n) {
			*idx = (size_t)i;
			return &n->kids[i];
		}
	} else if (json_is_object(seg) && json_object_size(seg) == 1 && n->type == 's') {
		const char *k = json_object_iter_key(json_object_iter((json_t *)seg));
		char *want = seg_text(json_object_get(seg, k));
		for (size_t i = 0; i < n->n; i++) {
			struct yn *it = &n->kids[i];
			for (size_t m = 0; it->type == 'm' && m + 1 < it->n; m += 2)
				if (it->kids[m].val && !strcmp(it->kids[m].val, k) &&
				    it->kids[m + 1].type == 'v' && !strcmp(it->kids[m + 1].val, want)) {
					free(want);
					*idx = i;
					return it;
				}
		}
		free(want);
	}
	return NULL;
}

/* Walks path from root as far as it exists: returns the deepest node, its
 * depth, and its parent (NULL at the root) with the node's key / index. */
struct ywalk {
	struct yn *node, *parent, *key;
	size_t depth, idx;
};

static void
yn_walk(struct yn *root, const json_t *path, struct ywalk *w)
{
	*w = (struct ywalk){ .node = root };
	for (size_t i = 0; i < json_array_size(path); i++) {
		struct yn *k = NULL;
		size_t idx = 0;
		struct yn *c = yn_child(w->node, json_array_get(path, i), &k, &idx);
		if (!c)
			return;
		w->parent = w->node;
		w->key = k;
		w->idx = idx;
		w->node = c;
		w->depth = i + 1;
	}
}

/* ---- rendering values ---------------------------------------------------- */

static void
put_scalar(struct buf *b, const json_t *v)
{
	if (json_is_string(v) && !cli_yaml_needs_quotes(json_string_value(v)) &&
	    !strchr(json_string_value(v), '\n')) {
		buf_puts(b, json_string_value(v));
		return;
	}
	char *s = json_dumps(v, JSON_ENCODE_ANY);
	buf_puts(b, s ? s : "null");
	free(s);
}

static bool
is_block(const json_t *v)
{
	return (json_is_object(v) && json_object_size(v)) ||
	    (json_is_array(v) && json_array_size(v));
}

/* v in block style, every line but the first indented by ind; ends with a
 * newline. */
static void
put_block(struct buf *b, const json_t *v, int ind)
{
	char *d = cli_yaml_dump_titled(v, "name");
	for (char *p = d; *p;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		if (p != d && len > 1)
			buf_printf(b, "%*s", ind, "");
		buf_append(b, p, len);
		p += len;
	}
	free(d);
}

/* A value after "key:", ind the key's column; ends with a newline. */
static void
put_value(struct buf *b, const json_t *v, int ind)
{
	if (!is_block(v)) {
		buf_putc(b, ' ');
		if (json_is_object(v) || json_is_array(v))
			buf_puts(b, json_is_object(v) ? "{}" : "[]");
		else
			put_scalar(b, v);
		buf_putc(b, '\n');
		return;
	}
	buf_putc(b, '\n');
	int sub = json_is_object(v) ? ind + 2 : ind;
	buf_printf(b, "%*s", sub, "");
	put_block(b, v, sub);
}

static void
put_key(struct buf *b, const char *k)
{
	json_t *s = json_string(k);
	put_scalar(b, s);
	json_decref(s);
	buf_putc(b, ':');
}

/* ---- text surgery ---------------------------------------------------------- */

static void
text_splice(char **text, size_t at, size_t len, const char *with, size_t wlen)
{
	size_t n = strlen(*text);
	struct buf b = BUF_INIT;
	buf_append(&b, *text, at);
	buf_append(&b, with, wlen);
	buf_append(&b, *text + at + len, n - at - len);
	free(*text);
	*text = buf_steal(&b);
}

/* The offset just after the line holding offset off (its newline included). */
static size_t
line_after(const char *text, size_t off)
{
	if (off > 0 && text[off - 1] == '\n')
		return off;
	const char *nl = strchr(text + off, '\n');
	return nl ? (size_t)(nl - text) + 1 : strlen(text);
}

/* The start of the line of off when only blanks (and, with dash, the "- "
 * of a list item) precede off on it, else off. */
static size_t
line_start(const char *text, size_t off, bool dash)
{
	size_t s = off;
	while (s > 0 && text[s - 1] == ' ')
		s--;
	if (dash && s > 0 && text[s - 1] == '-')
		for (s--; s > 0 && text[s - 1] == ' ';)
			s--;
	return s == 0 || text[s - 1] == '\n' ? s : off;
}

/* Inserts a line at the end of block collection n (text must end the
 * previous line). */
static void
insert_after(char **text, const struct yn *n, const char *line)
{
	size_t at = line_after(*text, n->end);
	if (at > 0 && (*text)[at - 1] != '\n') {
		char *l = xasprintf("\n%s", line);
		text_splice(text, at, 0, l, strlen(l));
		free(l);
	} else {
		text_splice(text, at, 0, line, strlen(line));
	}
}

/* Replaces node n (a value of a mapping when key, else an item or the
 * root) with v. */
static void
replace_node(char **text, const struct yn *n, const struct yn *key, const json_t *v)
{
	struct buf b = BUF_INIT;
	size_t start = n->start, end = n->end;
	if (n->flow || !is_block(v)) {
		if (is_block(v)) {
			char *s = json_dumps(v, JSON_ENCODE_ANY);
			buf_puts(&b, s);
			free(s);
		} else if (json_is_object(v) || json_is_array(v)) {
			buf_puts(&b, json_is_object(v) ? "{}" : "[]");
		} else {
			put_scalar(&b, v);
		}
		if (n->type == 'v' && end > start && (*text)[end - 1] == '\n')
			buf_putc(&b, '\n');	/* a block scalar took its newline */
	} else if (n->type != 'v') {
		put_block(&b, v, n->col);
		if ((*text)[end - 1] != '\n')
			b.data[--b.len] = '\0';
	} else if (key) {
		/* key: scalar -> key:\n  block */
		while (start > 0 && (*text)[start - 1] == ' ')
			start--;
		put_value(&b, v, key->col);
		if (end == 0 || (*text)[end - 1] != '\n')
			b.data[--b.len] = '\0';
	} else {
		put_block(&b, v, n->col);
		if ((*text)[end - 1] != '\n')
			b.data[--b.len] = '\0';
	}
	text_splice(text, start, end - start, b.data, b.len);
	buf_free(&b);
}

/* Adds key: v at the end of mapping m. */
static void
map_add(char **text, struct yn *m, const char *k, const json_t *v)
{
	if (m->flow || !m->n || m->type != 'm') {
		json_t *j = m->type == 'm' ? yn_json(m) : json_object();
		json_object_set(j, k, (json_t *)v);
		replace_node(text, m, NULL, j);
		json_decref(j);
		return;
	}
	struct buf b = BUF_INIT;
	int col = m->kids[0].col;
	buf_printf(&b, "%*s", col, "");
	put_key(&b, k);
	put_value(&b, v, col);
	insert_after(text, m, b.data);
	buf_free(&b);
}

/* Appends item to sequence s; an object's key first (its merge key, or
 * NULL; "name" leads anyway: "- name: web" reads as the item's title). */
static void
seq_add(char **text, struct yn *s, const json_t *item, const char *first)
{
	if (s->flow || !s->n || s->type != 's') {
		json_t *j = s->type == 's' ? yn_json(s) : json_array();
		json_array_append(j, (json_t *)item);
		replace_node(text, s, NULL, j);
		json_decref(j);
		return;
	}
	struct buf b = BUF_INIT;
	int col = s->col;
	buf_printf(&b, "%*s- ", col, "");
	json_t *head = first ? json_object_get(item, first) : NULL;
	if (head && json_is_object(item) && !is_block(head) && json_object_size(item) > 1 &&
	    strcmp(first, "name")) {
		json_t *rest = json_deep_copy(item);
		json_object_del(rest, first);
		put_key(&b, first);
		put_value(&b, head, col + 2);
		buf_printf(&b, "%*s", col + 2, "");
		put_block(&b, rest, col + 2);
		json_decref(rest);
	} else if (is_block(item)) {
		put_block(&b, item, col + 2);
	} else {
		put_scalar(&b, item);
		buf_putc(&b, '\n');
	}
	insert_after(text, s, b.data);
	buf_free(&b);
}

/* The value path[from..] builds on its own: {"a": {"b": v}}, or for
 * {"name": "x"} segments a list item holding the rest. NULL for an index. */
static json_t *
build_rest(const json_t *path, size_t from, const json_t *v)
{
	if (from == json_array_size(path))
		return json_deep_copy(v);
	const json_t *seg = json_array_get(path, from);
	json_t *rest = build_rest(path, from + 1, v);
	if (!rest)
		return NULL;
	if (json_is_string(seg))
		return json_pack("{s:o}", json_string_value(seg), rest);
	if (json_is_object(seg)) {
		json_t *item = json_is_object(rest) ? rest : json_object();
		if (item != rest)
			json_decref(rest);
		json_object_update(item, (json_t *)seg);
		return json_pack("[o]", item);
	}
	json_decref(rest);
	return NULL;
}

/* Document doc of text parsed, and path walked in it. */
static int
yn_open(const char *text, size_t doc, const json_t *path, struct yn *root, struct ywalk *w)
{
	int rc = yn_parse(text, doc, root);
	if (rc == 0)
		yn_walk(root, path, w);
	return rc;
}

int
yedit_set(char **text, size_t doc, const json_t *path, const json_t *value)
{
	struct yn root;
	struct ywalk w;
	int rc = yn_open(*text, doc, path, &root, &w);
	if (rc < 0)
		return rc;
	size_t n = json_array_size(path);
	if (w.depth == n) {
		replace_node(text, w.node, w.key, value);
	} else {
		const json_t *seg = json_array_get(path, w.depth);
		json_t *rest = build_rest(path, w.depth + 1, value);
		if (json_is_string(seg) && rest && (w.node->type == 'm' ||
		    (w.node->type == 'v' && !w.node->quoted && !*w.node->val))) {
			if (w.node->type == 'm') {
				map_add(text, w.node, json_string_value(seg), rest);
			} else {
				json_t *m = json_pack("{s:O}", json_string_value(seg), rest);
				replace_node(text, w.node, w.key, m);
				json_decref(m);
			}
		} else if (json_is_object(seg) && rest && w.node->type == 's') {
			json_t *item = json_is_object(rest) ? json_incref(rest) : json_object();
			json_object_update(item, (json_t *)seg);
			seq_add(text, w.node, item, json_object_iter_key(json_object_iter(
			    (json_t *)seg)));
			json_decref(item);
		} else {
			rc = -ENOENT;
		}
		json_decref(rest);
	}
	yn_free(&root);
	return rc;
}

int
yedit_append(char **text, size_t doc, const json_t *path, const json_t *item)
{
	struct yn root;
	struct ywalk w;
	int rc = yn_open(*text, doc, path, &root, &w);
	if (rc < 0)
		return rc;
	if (w.depth == json_array_size(path) && w.node->type == 's') {
		seq_add(text, w.node, item, NULL);
	} else {
		json_t *list = json_pack("[O]", item);
		yn_free(&root);
		rc = yedit_set(text, doc, path, list);
		json_decref(list);
		return rc;
	}
	yn_free(&root);
	return rc;
}

int
yedit_delete(char **text, size_t doc, const json_t *path)
{
	struct yn root;
	struct ywalk w;
	int rc = yn_open(*text, doc, path, &root, &w);
	if (rc < 0)
		return rc;
	if (w.depth != json_array_size(path) || !w.parent) {
		yn_free(&root);
		return w.depth == json_array_size(path) ? -EINVAL : 0;
	}
	struct yn *p = w.parent;
	size_t items = p->type == 'm' ? p->n / 2 : p->n;
	if (p->flow || items == 1) {
		json_t *j = yn_json(p);
		if (p->type == 'm')
			json_object_del(j, w.key->val);
		else
			json_array_remove(j, w.idx);
		replace_node(text, p, NULL, j);
		json_decref(j);
	} else if (w.key && line_start(*text, w.key->start, false) == w.key->start &&
	    w.idx + 1 < p->n) {
		/* the first key of a list item: the next key moves up after "- " */
		text_splice(text, w.key->start, p->kids[w.idx + 1].start - w.key->start, "", 0);
	} else {
		size_t from = line_start(*text, w.key ? w.key->start : w.node->start, !w.key);
		size_t to = line_after(*text, w.node->end);
		text_splice(text, from, to - from, "", 0);
	}
	yn_free(&root);
	return 0;
}

json_t *
yedit_json(const char *text, size_t doc)
{
	struct yn root;
	if (yn_parse(text, doc, &root) < 0)
		return NULL;
	json_t *j = yn_json(&root);
	yn_free(&root);
	return j;
}
