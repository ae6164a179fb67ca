/*
 * core/config.h — typed configuration: bind a YAML mapping (core/yaml.h) onto a C struct through
 * a key table, and dump a struct back as YAML.
 *
 * Each module describes its options once, as a table of struct sg_cfg_key ending with {NULL}:
 *
 *     struct vision_cfg { int arch; int image_size; int layers[4], n_layers; float ls_init; };
 *     static const char *const archs[] = {"vit", "modified_resnet", "resnet", NULL};
 *     static const struct sg_cfg_key vision_keys[] = {
 *         {.key = "arch", .type = SG_CFG_ENUM, .offset = offsetof(struct vision_cfg, arch),
 *          .choices = archs, .help = "image tower"},
 *         {.key = "image_size", .type = SG_CFG_INT, .offset = offsetof(struct vision_cfg,
 *          image_size), .min = 1, .max = 4096, .help = "input resolution (pixels)"},
 *         {.key = "layers", .type = SG_CFG_INT_LIST, .offset = offsetof(struct vision_cfg,
 *          layers), .offset_count = offsetof(struct vision_cfg, n_layers), .cap = 4, .min = 1,
 *          .max = 128, .help = "ViT depth, or blocks per ResNet stage"},
 *         {NULL}};
 *
 * The caller fills defaults, then binds: keys absent from the YAML keep their value, so the
 * defaults live in one place. Binding walks the YAML mapping in file order; the first problem
 * stops it (return -1, sg_err set) and `out` may then hold the values bound before it.
 *
 * C types per key type (at `offset` in the struct):
 *   SG_CFG_INT       int. Decimal integers only ([+-]digits): 1.5, 1e3, 0x10 and values outside
 *                    int are rejected.
 *   SG_CFG_FLOAT     float. Decimal numbers (7, -2.5, .5, 1e-3); range checked on the decimal
 *                    value before rounding to float; inf/nan always rejected.
 *   SG_CFG_BOOL      int 0/1. true/false, yes/no, on/off in any case.
 *   SG_CFG_STRING    char[cap], NUL-terminated; longer strings are an error (never truncated).
 *   SG_CFG_ENUM      int: index into `choices` (exact, case-sensitive names).
 *   SG_CFG_INT_LIST  int[cap] plus an int count at `offset_count`. A flow or block list of
 *                    integers; a single integer is a list of one (so `layers: 12` and
 *                    `layers: [3, 4, 6, 3]` share a key); each element range-checked.
 *   SG_CFG_SECTION   the nested struct at `offset`, described by `sub`; YAML value a mapping.
 * Ranges: [min, max] inclusive for INT, FLOAT and INT_LIST elements; min > max, or min == max
 * == 0 (designated initializers leave both 0), means no range. Quoted scalars ("768") are
 * strings: rejected for INT/FLOAT/BOOL/INT_LIST. Numbers assume the "C" LC_NUMERIC locale.
 *
 * Messages: "<where>: <dotted key>: <problem>", where <where> is the key's or value's
 * "PATH:LINE:COL" or "override a.b=v" (see yaml.h), and the dotted key is the full path from
 * the document root. Exactly:
 *     x.yaml:5:3: vision_cfg.widht: unknown key (did you mean 'width'?)
 *     x.yaml:5:3: vision_cfg.foo: unknown key (valid keys: arch, image_size, layers)
 *     x.yaml:7:11: text_cfg.layers: expected an integer, got 'twelve'
 *     x.yaml:7:11: text_cfg.layers: expected an integer, got '768' (quoted: remove the quotes)
 *     ...: value 0 out of range [1, 4096]          (INT range, or the int limits)
 *     ...: expected a number, got 'abc'          ...: expected a finite number, got '.inf'
 *     ...: expected true or false, got 'maybe'
 *     ...: expected one of vit, modified_resnet, resnet, got 'vitt'
 *     ...: expected a list of integers, got 'x'   ...: expected a list of integers
 *     ...: vision_cfg.layers[2]: expected an integer, got 'x'   ...: at most 4 elements
 *     ...: expected a mapping                     ...: longer than 63 bytes (got 70)
 *     ...: missing value                          (null, ~ or nothing after the colon)
 * Values shown in messages are cut to 48 bytes ("...").
 *
 * Programmer errors in tables (unknown type, missing choices/sub/cap, a key that is not
 * [A-Za-z0-9_-]+, duplicate keys, a help text with a newline) abort via SG_CHECK.
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "core/yaml.h"

enum sg_cfg_type {
    SG_CFG_INT,
    SG_CFG_FLOAT,
    SG_CFG_BOOL,
    SG_CFG_STRING,
    SG_CFG_ENUM,
    SG_CFG_INT_LIST,
    SG_CFG_SECTION
};

struct sg_cfg_key {
    const char *key; /* YAML key; NULL ends the table */
    enum sg_cfg_type type;
    size_t offset;                /* offsetof the field in the target struct */
    double min, max;              /* INT/FLOAT/INT_LIST elements: inclusive range (see above) */
    const char *const *choices;   /* ENUM: NULL-terminated names; stored as int index */
    int cap;                      /* STRING: char[cap]; INT_LIST: int[cap] */
    size_t offset_count;          /* INT_LIST: offsetof the int element count */
    const struct sg_cfg_key *sub; /* SECTION: key table of the nested struct (at offset) */
    const char *help;             /* one-line description (written as a comment by the dump) */
};

/* Binds `map` (NULL: the document root) onto `out` through `keys`. Returns 0, or -1 with
 * sg_err set as described above. When `map` is a sub-mapping of d, key paths in messages still
 * start from the document root. */
int sg_cfg_bind(const struct sg_ydoc *d, const struct sg_ynode *map, const struct sg_cfg_key *keys,
                void *out);

/* Writes `in` as YAML, one "key: value  # help" line per key, nested sections indented by two
 * more spaces, starting at `indent` spaces. The output binds back to identical values: floats in
 * the shortest of %.6g..%.9g that reads back to the same float, strings double-quoted (with
 * escapes) whenever a plain scalar could read differently, lists in flow style [a, b].
 * Non-finite floats are written as .inf/-.inf/.nan (valid YAML, but the binder rejects them).
 * Returns 0, or -1 with sg_err set on an invalid enum index / list count or a write error. */
int sg_cfg_dump(FILE *f, const struct sg_cfg_key *keys, const void *in, int indent);

#endif
