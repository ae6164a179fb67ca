/*
 * core/yaml.c — see yaml.h. Builds the tree from libyaml's event stream (yaml_parser_parse):
 * one recursive-descent function per node kind, bounded by SG_YAML_MAX_DEPTH. Partial trees are
 * always attached to their parent, so on error freeing the root frees everything.
 * Reference: libyaml 0.2.5 <yaml.h> (events, marks are 0-based, parser.problem/context).
 */
#include "core/yaml.h"

#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/common.h"

/* A mapping or sequence longer than this is not a configuration (and keeps n within int). */
#define SG_YAML_MAX_ITEMS (1 << 24)

/* ---- nodes --------------------------------------------------------------------------------- */

static struct sg_ynode *node_new(enum sg_ykind kind, int line, int col)
{
    struct sg_ynode *nd = sg_xcalloc(1, sizeof *nd);
    nd->kind = kind;
    nd->line = line;
    nd->col = col;
    return nd;
}

static void node_free(struct sg_ynode *nd)
{
    if (!nd) return;
    for (int i = 0; i < nd->n; i++) {
        if (nd->keys) free(nd->keys[i]);
        node_free(nd->items[i]);
    }
    free(nd->keys);
    free(nd->key_line);
    free(nd->key_col);
    free(nd->items);
    free(nd->str);
    free(nd->src);
    free(nd);
}

/* Appends an entry (key and its position for mappings, NULL key for sequences), taking
 * ownership of key and item; returns its index. The caller checks SG_YAML_MAX_ITEMS. */
static int node_push(struct sg_ynode *nd, char *key, int kline, int kcol, struct sg_ynode *item)
{
    if (nd->n == nd->cap) {
        size_t cap = nd->cap ? 2 * (size_t)nd->cap : 8;
        nd->items = sg_xrealloc(nd->items, cap * sizeof *nd->items);
        if (nd->kind == SG_Y_MAP) {
            nd->keys = sg_xrealloc(nd->keys, cap * sizeof *nd->keys);
            nd->key_line = sg_xrealloc(nd->key_line, cap * sizeof *nd->key_line);
            nd->key_col = sg_xrealloc(nd->key_col, cap * sizeof *nd->key_col);
        }
        nd->cap = (int)cap;
    }
    int i = nd->n++;
    nd->items[i] = item;
    if (nd->kind == SG_Y_MAP) {
        nd->keys[i] = key;
        nd->key_line[i] = kline;
        nd->key_col[i] = kcol;
    }
    return i;
}

static int map_find(const struct sg_ynode *map, const char *key)
{
    if (!map || map->kind != SG_Y_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0) return i;
    return -1;
}

const struct sg_ynode *sg_ymap_get(const struct sg_ynode *map, const char *key)
{
    int i = map_find(map, key);
    return i < 0 ? NULL : map->items[i];
}

int sg_ynode_is_null(const struct sg_ynode *nd)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (!nd || nd->kind != SG_Y_SCALAR || nd->quoted) return 0;
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++)
        if (strcmp(nd->str, nulls[i]) == 0) return 1;
    return 0;
}

/* ---- locations and messages ---------------------------------------------------------------- */

void sg_yaml_where(const struct sg_ydoc *d, const struct sg_ynode *node, char *buf, size_t n)
{
    if (node && node->src)
        snprintf(buf, n, "override %s", node->src);
    else
        snprintf(buf, n, "%s:%d:%d", d && d->path ? d->path : "<string>", node ? node->line : 0,
                 node ? node->col : 0);
}

void sg_yaml_key_where(const struct sg_ydoc *d, const struct sg_ynode *map, int i, char *buf,
                       size_t n)
{
    if (map->key_line[i] == 0 && map->items[i] && map->items[i]->src)
        sg_yaml_where(d, map->items[i], buf, n);
    else
        snprintf(buf, n, "%s:%d:%d", d && d->path ? d->path : "<string>", map->key_line[i],
                 map->key_col[i]);
}

static int err_at(const char *where, const char *fmt, va_list ap)
{
    char msg[1536];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return sg_err("%s: %s", where, msg);
}

int sg_yaml_err(const struct sg_ydoc *d, const struct sg_ynode *node, const char *fmt, ...)
{
    char where[512];
    va_list ap;
    sg_yaml_where(d, node, where, sizeof where);
    va_start(ap, fmt);
    err_at(where, fmt, ap);
    va_end(ap);
    return -1;
}

int sg_yaml_err_key(const struct sg_ydoc *d, const struct sg_ynode *map, int i, const char *fmt,
                    ...)
{
    char where[512];
    va_list ap;
    sg_yaml_key_where(d, map, i, where, sizeof where);
    va_start(ap, fmt);
    err_at(where, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends printf output at buf[*len] (clamped: never past n-1). */
static void append(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t n, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if (w > 0) *len = SG_MIN(*len + (size_t)w, n - 1);
}

/* Depth-first search for target below cur; on success buf holds the dotted path. */
static int path_find(const struct sg_ynode *cur, const struct sg_ynode *target, char *buf, size_t n,
                     size_t len)
{
    if (cur == target) return 1;
    if (cur->kind == SG_Y_SCALAR) return 0;
    for (int i = 0; i < cur->n; i++) {
        size_t l2 = len;
        if (cur->kind == SG_Y_MAP)
            append(buf, n, &l2, "%s%s", len ? "." : "", cur->keys[i]);
        else
            append(buf, n, &l2, "[%d]", i);
        if (cur->items[i] && path_find(cur->items[i], target, buf, n, l2)) return 1;
        buf[len] = 0;
    }
    return 0;
}

int sg_yaml_path(const struct sg_ydoc *d, const struct sg_ynode *node, char *buf, size_t n)
{
    SG_CHECK(n > 1, "path buffer too small");
    buf[0] = 0;
    if (d && d->root && node && path_find(d->root, node, buf, n, 0)) return 0;
    snprintf(buf, n, "?");
    return -1;
}

/* ---- loader -------------------------------------------------------------------------------- */

struct loader {
    yaml_parser_t p;
    const char *name;          /* file name for messages */
    const char *override;      /* sg_yaml_set source text: messages say "override ..." */
    const unsigned char *text; /* the input, for positions of reader errors */
    size_t len;
    struct { /* keys / indices from the root to the current node */
        const char *key;
        int idx;
    } stk[SG_YAML_MAX_DEPTH + 1];
};

/* sg_err("<location>: <fmt...>") with a 1-based position in the loader's input. */
static int lerr(const struct loader *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int lerr(const struct loader *L, int line, int col, const char *fmt, ...)
{
    char where[512];
    va_list ap;
    if (L->override)
        snprintf(where, sizeof where, "override %s", L->override);
    else
        snprintf(where, sizeof where, "%s:%d:%d", L->name, line, col);
    va_start(ap, fmt);
    err_at(where, fmt, ap);
    va_end(ap);
    return -1;
}

#define MARK(m) (int)SG_MIN((m).line + 1, INT_MAX), (int)SG_MIN((m).column + 1, INT_MAX)

/* Dotted path of the node being parsed at `depth` (entries 1..depth-1 of the stack) plus key. */
static void stack_path(const struct loader *L, int depth, const char *key, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 1; i < depth; i++) {
        if (L->stk[i].key)
            append(buf, n, &len, "%s%s", len ? "." : "", L->stk[i].key);
        else
            append(buf, n, &len, "[%d]", L->stk[i].idx);
    }
    append(buf, n, &len, "%s%s", len ? "." : "", key);
}

static int parser_error(const struct loader *L)
{
    const yaml_parser_t *p = &L->p;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR) SG_PANIC("libyaml: out of memory parsing %s", L->name);
    if (p->error == YAML_READER_ERROR) {
        /* Encoding errors carry a byte offset, not a mark. */
        int line = 1, col = 1;
        for (size_t i = 0; i < p->problem_offset && i < L->len; i++, col++)
            if (L->text[i] == '\n') line++, col = 0;
        if (p->problem_value >= 0)
            return lerr(L, line, col, "%s (0x%X)", problem, (unsigned)p->problem_value);
        return lerr(L, line, col, "%s", problem);
    }
    if (p->context)
        return lerr(L, MARK(p->problem_mark), "%s (%s at %d:%d)", problem, p->context,
                    MARK(p->context_mark));
    return lerr(L, MARK(p->problem_mark), "%s", problem);
}

static int next_event(struct loader *L, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&L->p, ev)) return parser_error(L);
    return 0;
}

/* Rejects anchors and tags (only !!str is meaningful to us); sets *is_str for !!str. */
static int check_props(const struct loader *L, const yaml_event_t *ev, const yaml_char_t *anchor,
                       const yaml_char_t *tag, int *is_str)
{
    *is_str = 0;
    if (anchor)
        return lerr(L, MARK(ev->start_mark),
                    "anchors and aliases (&%s / *%s) are not supported; repeat the value", anchor,
                    anchor);
    if (!tag) return 0;
    if (strcmp((const char *)tag, YAML_STR_TAG) == 0) {
        *is_str = 1;
        return 0;
    }
    return lerr(L, MARK(ev->start_mark), "tag '%s' is not supported (only !!str)", tag);
}

/* Copies a scalar's text (rejecting embedded NULs, which C strings cannot hold). */
static int scalar_text(const struct loader *L, const yaml_event_t *ev, char **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (memchr(v, 0, len))
        return lerr(L, MARK(ev->start_mark), "a NUL character in a scalar is not supported");
    *out = sg_xmalloc(len + 1);
    memcpy(*out, v, len);
    (*out)[len] = 0;
    return 0;
}

static int parse_node(struct loader *L, yaml_event_t *ev, int depth, struct sg_ynode **out);

static int parse_scalar(struct loader *L, yaml_event_t *ev, struct sg_ynode **out)
{
    int is_str;
    if (check_props(L, ev, ev->data.scalar.anchor, ev->data.scalar.tag, &is_str)) return -1;
    struct sg_ynode *nd = node_new(SG_Y_SCALAR, MARK(ev->start_mark));
    *out = nd;
    nd->quoted = is_str || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    return scalar_text(L, ev, &nd->str);
}

struct key_ref {
    const char *key;
    int i;
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

/* Duplicate keys (sorted, O(n log n)): reports the repeat that comes first in the file. */
static int check_duplicates(const struct loader *L, const struct sg_ynode *map, int depth)
{
    if (map->n < 2) return 0;
    struct key_ref *r = sg_xmalloc((size_t)map->n * sizeof *r);
    for (int i = 0; i < map->n; i++) r[i] = (struct key_ref){map->keys[i], i};
    qsort(r, (size_t)map->n, sizeof *r, key_ref_cmp);
    int first = -1, dup = -1;
    for (int i = 1, g = 0; i < map->n; i++) {
        if (strcmp(r[i].key, r[g].key) != 0) {
            g = i;
            continue;
        }
        if (dup < 0 || r[i].i < dup) dup = r[i].i, first = r[g].i;
    }
    free(r);
    if (dup < 0) return 0;
    char path[1024];
    stack_path(L, depth, map->keys[dup], path, sizeof path);
    return lerr(L, map->key_line[dup], map->key_col[dup],
                "duplicate key '%s' (first defined on line %d)", path, map->key_line[first]);
}

static int too_many(const struct loader *L, const yaml_event_t *ev)
{
    return lerr(L, MARK(ev->start_mark), "more than %d entries in one mapping or sequence",
                SG_YAML_MAX_ITEMS);
}

/* Reads one mapping key event into a new entry of map; returns its index or -1. */
static int parse_key(struct loader *L, struct sg_ynode *map, yaml_event_t *ev)
{
    int is_str;
    char *key = NULL;
    if (ev->type != YAML_SCALAR_EVENT)
        return lerr(L, MARK(ev->start_mark), "mapping keys must be scalars, not %s",
                    ev->type == YAML_ALIAS_EVENT ? "aliases" : "collections");
    if (map->n >= SG_YAML_MAX_ITEMS) return too_many(L, ev);
    if (check_props(L, ev, ev->data.scalar.anchor, ev->data.scalar.tag, &is_str) ||
        scalar_text(L, ev, &key))
        return -1;
    return node_push(map, key, MARK(ev->start_mark), NULL);
}

/* Entries up to MAPPING_END; `depth` is the mapping's own depth. */
static int parse_map(struct loader *L, struct sg_ynode *map, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(L, &ev)) return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return check_duplicates(L, map, depth);
        }
        int i = parse_key(L, map, &ev);
        yaml_event_delete(&ev);
        if (i < 0) return -1;
        L->stk[depth].key = map->keys[i];
        if (next_event(L, &ev) || parse_node(L, &ev, depth + 1, &map->items[i])) return -1;
    }
}

static int parse_seq(struct loader *L, struct sg_ynode *seq, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(L, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (seq->n >= SG_YAML_MAX_ITEMS) {
            too_many(L, &ev);
            yaml_event_delete(&ev);
            return -1;
        }
        int i = node_push(seq, NULL, 0, 0, NULL);
        L->stk[depth].key = NULL;
        L->stk[depth].idx = i;
        if (parse_node(L, &ev, depth + 1, &seq->items[i])) return -1;
    }
}

/* Builds the node that starts with event *ev (consumed) at nesting `depth` (root: 1). */
static int parse_node(struct loader *L, yaml_event_t *ev, int depth, struct sg_ynode **out)
{
    int rc = -1, is_str;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    enum sg_ykind kind = SG_Y_MAP;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        rc = parse_scalar(L, ev, out);
        yaml_event_delete(ev);
        return rc;
    case YAML_ALIAS_EVENT:
        rc = lerr(L, MARK(ev->start_mark),
                  "anchors and aliases (*%s) are not supported; repeat the value",
                  ev->data.alias.anchor);
        yaml_event_delete(ev);
        return rc;
    case YAML_SEQUENCE_START_EVENT:
        kind = SG_Y_SEQ;
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        SG_PANIC("libyaml: unexpected event %d inside a document", (int)ev->type);
    }
    if (depth > SG_YAML_MAX_DEPTH)
        rc = lerr(L, MARK(ev->start_mark), "nesting deeper than %d levels", SG_YAML_MAX_DEPTH);
    else if (check_props(L, ev, anchor, tag, &is_str) == 0)
        rc = 0;
    if (rc == 0) *out = node_new(kind, MARK(ev->start_mark));
    yaml_event_delete(ev);
    if (rc) return rc;
    return kind == SG_Y_MAP ? parse_map(L, *out, depth) : parse_seq(L, *out, depth);
}

/* Stream -> one document -> root mapping (an empty stream or a null document: empty mapping). */
static int parse_stream(struct loader *L, struct sg_ynode **root)
{
    yaml_event_t ev;
    if (next_event(L, &ev)) return -1; /* STREAM_START */
    yaml_event_delete(&ev);
    if (next_event(L, &ev)) return -1;
    int empty = ev.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (empty) {
        *root = node_new(SG_Y_MAP, 1, 1);
        return 0;
    }
    if (next_event(L, &ev) || parse_node(L, &ev, 1, root)) return -1;
    if (next_event(L, &ev)) return -1; /* DOCUMENT_END */
    yaml_event_delete(&ev);
    if (next_event(L, &ev)) return -1;
    int more = ev.type == YAML_DOCUMENT_START_EVENT;
    yaml_mark_t mark = ev.start_mark;
    yaml_event_delete(&ev);
    if (more)
        return lerr(L, MARK(mark), "several YAML documents (---) in one input are not supported");
    if (sg_ynode_is_null(*root)) {
        struct sg_ynode *empty_map = node_new(SG_Y_MAP, (*root)->line, (*root)->col);
        node_free(*root);
        *root = empty_map;
    }
    return 0;
}

/* Parses text[0, len) into d (root of any kind when L->override, else a mapping). */
static int load_buf(struct sg_ydoc *d, const char *text, size_t len, const char *name,
                    const char *override)
{
    memset(d, 0, sizeof *d);
    struct loader *L = sg_xcalloc(1, sizeof *L);
    L->name = name ? name : "<string>";
    L->override = override;
    L->text = (const unsigned char *)text;
    L->len = len;
    if (!yaml_parser_initialize(&L->p)) SG_PANIC("libyaml: out of memory");
    yaml_parser_set_input_string(&L->p, L->text, len);
    d->path = sg_xstrdup(L->name);
    int rc = parse_stream(L, &d->root);
    if (rc == 0 && !override && d->root->kind != SG_Y_MAP)
        rc = lerr(L, d->root->line, d->root->col,
                  "the top level must be a mapping (key: value lines)");
    yaml_parser_delete(&L->p);
    free(L);
    if (rc) sg_yaml_free(d);
    return rc;
}

int sg_yaml_load_string(struct sg_ydoc *d, const char *text, const char *name)
{
    return load_buf(d, text, strlen(text), name, NULL);
}

int sg_yaml_load_file(struct sg_ydoc *d, const char *path)
{
    char *buf;
    size_t len;
    memset(d, 0, sizeof *d);
    if (sg_read_file(path, &buf, &len)) return -1;
    int rc = load_buf(d, buf, len, path, NULL);
    free(buf);
    return rc;
}

void sg_yaml_free(struct sg_ydoc *d)
{
    if (!d) return;
    node_free(d->root);
    free(d->path);
    d->root = NULL;
    d->path = NULL;
}

/* ---- overrides ----------------------------------------------------------------------------- */

/* Marks a subtree as coming from override `src` (no file positions). */
static void mark_override(struct sg_ynode *nd, const char *src)
{
    nd->line = nd->col = 0;
    nd->src = sg_xstrdup(src);
    for (int i = 0; i < nd->n; i++) {
        if (nd->kind == SG_Y_MAP) nd->key_line[i] = nd->key_col[i] = 0;
        if (nd->items[i]) mark_override(nd->items[i], src);
    }
}

/* The value node of an override: verbatim plain scalar, or YAML for "[..." and quoted text. */
static int override_value(const char *src, const char *value, struct sg_ynode **out)
{
    if (value[0] != '[' && value[0] != '"' && value[0] != '\'') {
        *out = node_new(SG_Y_SCALAR, 0, 0);
        (*out)->str = sg_xstrdup(value);
        (*out)->src = sg_xstrdup(src);
        return 0;
    }
    size_t n = strlen(value);
    char *text = sg_xmalloc(n + 4);
    memcpy(text, "v: ", 3);
    memcpy(text + 3, value, n + 1);
    struct sg_ydoc tmp;
    int rc = load_buf(&tmp, text, n + 3, NULL, src);
    free(text);
    if (rc) return -1;
    enum sg_ykind want = value[0] == '[' ? SG_Y_SEQ : SG_Y_SCALAR;
    if (tmp.root->kind != SG_Y_MAP || tmp.root->n != 1 || tmp.root->items[0]->kind != want) {
        sg_yaml_free(&tmp);
        return sg_err("override %s: the value must be one %s", src,
                      want == SG_Y_SEQ ? "flow list like [3, 4, 6, 3]" : "quoted string");
    }
    *out = tmp.root->items[0];
    tmp.root->items[0] = NULL;
    sg_yaml_free(&tmp);
    mark_override(*out, src);
    return 0;
}

/* Stores val (owned) under key (owned) in map: new entry, or replacing a non-mapping value. */
static int override_store(const struct sg_ydoc *d, struct sg_ynode *map, char *key,
                          struct sg_ynode *val, const char *src, const char *dotted_key)
{
    int i = map_find(map, key);
    if (i < 0) {
        node_push(map, key, 0, 0, val);
        return 0;
    }
    free(key);
    if (map->items[i]->kind == SG_Y_MAP) {
        char where[512];
        sg_yaml_where(d, map->items[i], where, sizeof where);
        node_free(val);
        return sg_err("override %s: '%s' is a mapping (%s); set its keys one by one "
                      "(%s.KEY=VALUE)",
                      src, dotted_key, where, dotted_key);
    }
    node_free(map->items[i]);
    map->items[i] = val;
    return 0;
}

int sg_yaml_set(struct sg_ydoc *d, const char *dotted_key, const char *value)
{
    SG_CHECK(d && d->root && d->root->kind == SG_Y_MAP, "sg_yaml_set needs a loaded document");
    size_t klen = strlen(dotted_key), vlen = strlen(value);
    char *src = sg_xmalloc(klen + vlen + 2);
    memcpy(src, dotted_key, klen);
    src[klen] = '=';
    memcpy(src + klen + 1, value, vlen + 1);

    struct sg_ynode *val = NULL, *map = d->root;
    int rc = 0;
    if (klen == 0 || dotted_key[0] == '.' || dotted_key[klen - 1] == '.' ||
        strstr(dotted_key, ".."))
        rc = sg_err("override %s: empty key component (write a.b.c=VALUE)", src);
    else
        rc = override_value(src, value, &val);
    for (const char *p = dotted_key; rc == 0;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char *key = sg_xmalloc(n + 1);
        memcpy(key, p, n);
        key[n] = 0;
        if (!dot) {
            rc = override_store(d, map, key, val, src, dotted_key);
            val = NULL;
            break;
        }
        int i = map_find(map, key);
        if (i < 0) {
            struct sg_ynode *m = node_new(SG_Y_MAP, 0, 0);
            m->src = sg_xstrdup(src);
            i = node_push(map, key, 0, 0, m);
        } else {
            free(key);
        }
        if (map->items[i]->kind != SG_Y_MAP) {
            char where[512];
            sg_yaml_where(d, map->items[i], where, sizeof where);
            rc = sg_err("override %s: '%.*s' is a %s (%s), not a mapping", src,
                        (int)(p - dotted_key + n), dotted_key,
                        map->items[i]->kind == SG_Y_SEQ ? "list" : "scalar", where);
            break;
        }
        map = map->items[i];
        p = dot + 1;
    }
    node_free(val);
    free(src);
    return rc;
}
