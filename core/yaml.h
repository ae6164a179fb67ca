/*
 * core/yaml.h — YAML files as a plain tree (libyaml's event parser), plus command-line overrides.
 *
 * A document is a tree of three node kinds: scalars (text), mappings (ordered keys -> nodes) and
 * sequences. Every node and every mapping key keeps its 1-based line and column, so that callers
 * (core/config.h binds trees onto C structs) can point at the offending text. No typing happens
 * here: `width: 768` is the scalar "768"; `quoted` records whether it was written quoted (or as
 * a `|`/`>` block, or tagged `!!str`), so that "null" and '"null"' can be told apart.
 *
 * Accepted: YAML 1.1 as libyaml reads it, one document per file whose top level is a mapping
 * (an empty file, or one with only comments, is an empty mapping). Rejected with a message:
 * anchors/aliases, tags other than !!str, complex (non-scalar) mapping keys, duplicate keys,
 * several documents, scalars holding a NUL character, nesting deeper than SG_YAML_MAX_DEPTH.
 *
 * Errors: functions return -1 and set sg_err() (core/common.h) to a message that starts with a
 * location, "PATH:LINE:COL: message" (PATH is the file name, or the name given for a string),
 * for example
 *     configs/x.yaml:3:7: did not find expected key (while parsing a block mapping at 1:1)
 *     configs/x.yaml:9:1: duplicate key 'text_cfg.width' (first defined on line 4)
 * Nodes created by sg_yaml_set() have line 0 / col 0 and remember their override text, and
 * their messages start with "override a.b.c=value: " instead. sg_yaml_err() and
 * sg_yaml_err_key() format messages the same way for callers that check values.
 *
 * Ownership: a struct sg_ydoc owns its path, the whole tree and every string in it; sg_yaml_free()
 * frees everything and leaves the doc empty (freeing an empty or zeroed doc is a no-op). Node
 * pointers stay valid until sg_yaml_free(), except a value that sg_yaml_set() replaces.
 * Not thread-safe per document; separate documents are independent.
 */
#ifndef SG_YAML_H
#define SG_YAML_H

#include <stddef.h>

/* Deepest nesting of mappings/sequences accepted (the loader and sg_yaml_free recurse). */
#define SG_YAML_MAX_DEPTH 64

enum sg_ykind { SG_Y_SCALAR, SG_Y_MAP, SG_Y_SEQ };

struct sg_ynode {
    enum sg_ykind kind;
    int line, col;           /* 1-based position of the node's first character; 0 from overrides */
    char *str;               /* SG_Y_SCALAR: the text (NUL-terminated, UTF-8); NULL otherwise */
    int n;                   /* SG_Y_MAP: number of keys; SG_Y_SEQ: number of items */
    char **keys;             /* SG_Y_MAP: keys[n], in file order, all different */
    int *key_line, *key_col; /* SG_Y_MAP: position of each key (0 when made by an override) */
    struct sg_ynode **items; /* SG_Y_MAP: the value of keys[i]; SG_Y_SEQ: the items */
    int quoted;              /* SG_Y_SCALAR: written quoted, as a block scalar or tagged !!str */
    char *src;               /* override text "a.b.c=value" this node came from; NULL from files */
    int cap;                 /* internal: allocated length of keys/items */
};

struct sg_ydoc {
    char *path;            /* file name (or the name given to sg_yaml_load_string) */
    struct sg_ynode *root; /* always a SG_Y_MAP after a successful load */
};

/* Load a file / a NUL-terminated string (`name` is used in messages; NULL: "<string>").
 * On failure `d` is left empty (safe to sg_yaml_free) and sg_err is set. */
int sg_yaml_load_file(struct sg_ydoc *d, const char *path);
int sg_yaml_load_string(struct sg_ydoc *d, const char *text, const char *name);
void sg_yaml_free(struct sg_ydoc *d);

/* Value of `key` in a mapping; NULL when absent or when `map` is NULL or not a mapping. */
const struct sg_ynode *sg_ymap_get(const struct sg_ynode *map, const char *key);

/* Unquoted scalar "", "~", "null", "Null" or "NULL" (YAML's null): a key with no value. */
int sg_ynode_is_null(const struct sg_ynode *node);

/* Command-line override `dotted_key=value`: sets the value at `a.b.c`, creating missing
 * mappings on the way. The value is a plain scalar taken verbatim, except that a value starting
 * with '[' is read as a YAML flow sequence (`layers=[3, 4, 6, 3]`) and one starting with a quote
 * as a quoted YAML scalar (`name=""`). Errors ("override a.b.c=value: ..."): an empty key
 * component, a path through a scalar or a sequence, replacing a whole mapping by a value, and
 * a malformed [...] or quoted value. */
int sg_yaml_set(struct sg_ydoc *d, const char *dotted_key, const char *value);

/* Location prefix of a node / of the i-th key of a mapping: "PATH:LINE:COL" for nodes from a
 * file, "override a.b=v" for nodes from sg_yaml_set. Writes at most n bytes (NUL included). */
void sg_yaml_where(const struct sg_ydoc *d, const struct sg_ynode *node, char *buf, size_t n);
void sg_yaml_key_where(const struct sg_ydoc *d, const struct sg_ynode *map, int i, char *buf,
                       size_t n);
/* sg_err("<where>: <fmt...>") for a node / for the i-th key of a mapping; return -1. */
int sg_yaml_err(const struct sg_ydoc *d, const struct sg_ynode *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sg_yaml_err_key(const struct sg_ydoc *d, const struct sg_ynode *map, int i, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* Dotted path of `node` inside d's tree ("" for the root, "text_cfg", "vision_cfg.layers[2]").
 * Returns 0, or -1 (buf = "?") when the node is not in the tree. For messages. */
int sg_yaml_path(const struct sg_ydoc *d, const struct sg_ynode *node, char *buf, size_t n);

#endif
