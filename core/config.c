/*
 * core/config.c — see config.h. Binding is one switch over the key type per YAML entry;
 * scalars are parsed by hand-checked grammars before strtoll/strtod (which alone would accept
 * "0x10", " 5", "inf" or "1e3" for an int). Unknown keys get a suggestion from the optimal
 * string alignment distance (edit distance counting a transposition as one) or a shared prefix.
 */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/common.h"

#define SHOW_MAX 48 /* bytes of a value quoted in a message */

/* ---- key tables ---------------------------------------------------------------------------- */

static int key_name_ok(const char *k)
{
    if (!*k) return 0;
    for (; *k; k++)
        if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-') return 0;
    return 1;
}

/* Programmer errors in a table abort here, before any YAML is looked at. */
static void check_table(const struct sg_cfg_key *keys)
{
    SG_CHECK(keys, "NULL key table");
    for (const struct sg_cfg_key *k = keys; k->key; k++) {
        SG_CHECK(key_name_ok(k->key), "config key '%s' must be [A-Za-z0-9_-]+", k->key);
        SG_CHECK(!k->help || !strchr(k->help, '\n'), "help of '%s' has a newline", k->key);
        for (const struct sg_cfg_key *j = keys; j < k; j++)
            SG_CHECK(strcmp(j->key, k->key) != 0, "config key '%s' appears twice", k->key);
        switch (k->type) {
        case SG_CFG_INT:
        case SG_CFG_FLOAT:
        case SG_CFG_BOOL:
            break;
        case SG_CFG_STRING:
            SG_CHECK(k->cap > 0, "string key '%s' needs cap", k->key);
            break;
        case SG_CFG_ENUM:
            SG_CHECK(k->choices && k->choices[0], "enum '%s' needs choices", k->key);
            break;
        case SG_CFG_INT_LIST:
            SG_CHECK(k->cap > 0, "list key '%s' needs cap", k->key);
            break;
        case SG_CFG_SECTION:
            SG_CHECK(k->sub, "section '%s' needs sub", k->key);
            check_table(k->sub);
            break;
        default:
            SG_PANIC("config key '%s' has unknown type %d", k->key, (int)k->type);
        }
    }
}

static const struct sg_cfg_key *find_key(const struct sg_cfg_key *keys, const char *name)
{
    for (const struct sg_cfg_key *k = keys; k->key; k++)
        if (strcmp(k->key, name) == 0) return k;
    return NULL;
}

static int has_range(const struct sg_cfg_key *k)
{
    return k->min <= k->max && !(k->min == 0 && k->max == 0);
}

/* ---- messages ------------------------------------------------------------------------------ */

/* The scalar's text, cut to SHOW_MAX bytes (on a UTF-8 boundary) or the first newline. */
static const char *cut_text(const struct sg_ynode *v, char *buf, size_t n)
{
    size_t len = strcspn(v->str, "\n"), cut = SG_MIN(len, (size_t)SHOW_MAX);
    while (cut < len && cut > 0 && ((unsigned char)v->str[cut] & 0xC0) == 0x80) cut--;
    snprintf(buf, n, "%.*s%s", (int)cut, v->str, v->str[cut] ? "..." : "");
    return buf;
}

/* "'text'" (cut_text), "a mapping" or "a list". */
static const char *shown(const struct sg_ynode *v, char *buf, size_t n)
{
    if (v->kind != SG_Y_SCALAR) return v->kind == SG_Y_MAP ? "a mapping" : "a list";
    char text[SHOW_MAX + 4];
    snprintf(buf, n, "'%s'", cut_text(v, text, sizeof text));
    return buf;
}

/* "<where>: <path>: expected <what>, got <value>[ (quoted: remove the quotes)]" */
static int err_expected(const struct sg_ydoc *d, const struct sg_ynode *v, const char *path,
                        const char *what)
{
    char buf[SHOW_MAX + 8];
    int quoted = v->kind == SG_Y_SCALAR && v->quoted;
    return sg_yaml_err(d, v, "%s: expected %s, got %s%s", path, what, shown(v, buf, sizeof buf),
                       quoted ? " (quoted: remove the quotes)" : "");
}

/* Optimal string alignment distance; strings longer than 64 bytes count as far apart. */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64) return INT_MAX;
    int d[65][65];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++) {
        for (int j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            c = SG_MIN(c, SG_MIN(d[i - 1][j], d[i][j - 1]) + 1);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                c = SG_MIN(c, d[i - 2][j - 2] + 1);
            d[i][j] = c;
        }
    }
    return d[la][lb];
}

static size_t common_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    return n;
}

/* The closest valid key: edit distance <= 2 (and below the typo's length), else the longest
 * shared prefix of at least 4 bytes (3 when one key is a prefix of the other); NULL if none. */
static const char *suggest(const struct sg_cfg_key *keys, const char *typo)
{
    const char *best = NULL;
    int best_d = 3;
    size_t best_p = 0, lt = strlen(typo);
    for (const struct sg_cfg_key *k = keys; k->key; k++) {
        int dist = edit_distance(typo, k->key);
        if (dist < best_d && (size_t)dist < lt) best_d = dist, best = k->key;
    }
    if (best) return best;
    for (const struct sg_cfg_key *k = keys; k->key; k++) {
        size_t p = common_prefix(typo, k->key);
        int whole = p == lt || p == strlen(k->key);
        if (p > best_p && (p >= 4 || (p >= 3 && whole))) best_p = p, best = k->key;
    }
    return best;
}

static int err_unknown(const struct sg_ydoc *d, const struct sg_ynode *map, int i,
                       const struct sg_cfg_key *keys, const char *path)
{
    const char *s = suggest(keys, map->keys[i]);
    if (s) return sg_yaml_err_key(d, map, i, "%s: unknown key (did you mean '%s'?)", path, s);
    char list[1024];
    size_t len = 0;
    list[0] = 0;
    for (const struct sg_cfg_key *k = keys; k->key && len + 1 < sizeof list; k++) {
        int w = snprintf(list + len, sizeof list - len, "%s%s", k == keys ? "" : ", ", k->key);
        len = SG_MIN(len + (size_t)SG_MAX(w, 0), sizeof list - 1);
    }
    return sg_yaml_err_key(d, map, i, "%s: unknown key (valid keys: %s)", path, list);
}

/* ---- scalars ------------------------------------------------------------------------------- */

/* [+-]digits */
static int is_int_text(const char *s)
{
    if (*s == '+' || *s == '-') s++;
    if (!isdigit((unsigned char)*s)) return 0;
    while (isdigit((unsigned char)*s)) s++;
    return *s == 0;
}

/* [+-](digits[.digits*] | .digits)([eE][+-]digits) */
static int is_decimal_text(const char *s)
{
    int digits = 0;
    if (*s == '+' || *s == '-') s++;
    for (; isdigit((unsigned char)*s); s++) digits++;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++) digits++;
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == 0;
}

/* inf, .inf, infinity, nan, .nan with optional sign, any case. */
static int is_nonfinite_text(const char *s)
{
    static const char *const words[] = {"inf", ".inf", "infinity", "nan", ".nan"};
    if (*s == '+' || *s == '-') s++;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0) return 1;
    return 0;
}

/* A plain scalar for INT/FLOAT/BOOL: non-scalars and quoted strings fail with `what`. */
static int need_plain(const struct sg_ydoc *d, const struct sg_ynode *v, const char *path,
                      const char *what)
{
    if (v->kind == SG_Y_SCALAR && !v->quoted) return 0;
    return err_expected(d, v, path, what);
}

/* Integer in the key's range (or int's): element `path` of a key `k`. */
static int parse_int(const struct sg_ydoc *d, const struct sg_ynode *v, const struct sg_cfg_key *k,
                     const char *path, int *out)
{
    if (need_plain(d, v, path, "an integer")) return -1;
    if (!is_int_text(v->str)) return err_expected(d, v, path, "an integer");
    double lo = INT_MIN, hi = INT_MAX;
    if (has_range(k)) lo = SG_MAX(lo, ceil(k->min)), hi = SG_MIN(hi, floor(k->max));
    errno = 0;
    long long x = strtoll(v->str, NULL, 10);
    if (errno == ERANGE || (double)x < lo || (double)x > hi) {
        char buf[SHOW_MAX + 8];
        return sg_yaml_err(d, v, "%s: value %s out of range [%lld, %lld]", path,
                           cut_text(v, buf, sizeof buf), (long long)lo, (long long)hi);
    }
    *out = (int)x;
    return 0;
}

static int bind_float(const struct sg_ydoc *d, const struct sg_ynode *v, const struct sg_cfg_key *k,
                      const char *path, float *out)
{
    if (need_plain(d, v, path, "a number")) return -1;
    if (is_nonfinite_text(v->str)) return err_expected(d, v, path, "a finite number");
    if (!is_decimal_text(v->str)) return err_expected(d, v, path, "a number");
    /* Range on the exact decimal (as a double), the stored float rounded once by strtof. */
    double x = strtod(v->str, NULL);
    float xf = strtof(v->str, NULL);
    if (!isfinite(x)) return err_expected(d, v, path, "a finite number");
    double lo = -FLT_MAX, hi = FLT_MAX;
    if (has_range(k)) lo = k->min, hi = k->max;
    if ((has_range(k) && (x < lo || x > hi)) || isinf(xf)) {
        char buf[SHOW_MAX + 8];
        return sg_yaml_err(d, v, "%s: value %s out of range [%.9g, %.9g]", path,
                           cut_text(v, buf, sizeof buf), SG_MAX(lo, -FLT_MAX), SG_MIN(hi, FLT_MAX));
    }
    *out = xf;
    return 0;
}

static int bind_bool(const struct sg_ydoc *d, const struct sg_ynode *v, const char *path, int *out)
{
    static const char *const words[] = {"false", "true", "no", "yes", "off", "on"};
    if (need_plain(d, v, path, "true or false")) return -1;
    for (int i = 0; i < 6; i++) {
        if (strcasecmp(v->str, words[i]) == 0) {
            *out = i & 1;
            return 0;
        }
    }
    return err_expected(d, v, path, "true or false");
}

static int bind_string(const struct sg_ydoc *d, const struct sg_ynode *v,
                       const struct sg_cfg_key *k, const char *path, char *out)
{
    if (v->kind != SG_Y_SCALAR) return err_expected(d, v, path, "a string");
    size_t len = strlen(v->str);
    if (len >= (size_t)k->cap)
        return sg_yaml_err(d, v, "%s: longer than %d bytes (got %zu)", path, k->cap - 1, len);
    memcpy(out, v->str, len + 1);
    return 0;
}

static int bind_enum(const struct sg_ydoc *d, const struct sg_ynode *v, const struct sg_cfg_key *k,
                     const char *path, int *out)
{
    if (v->kind == SG_Y_SCALAR) {
        for (int i = 0; k->choices[i]; i++) {
            if (strcmp(v->str, k->choices[i]) == 0) {
                *out = i;
                return 0;
            }
        }
    }
    char what[1024];
    size_t len = 0;
    len += (size_t)snprintf(what, sizeof what, "one of ");
    for (int i = 0; k->choices[i] && len + 1 < sizeof what; i++) {
        int w = snprintf(what + len, sizeof what - len, "%s%s", i ? ", " : "", k->choices[i]);
        len = SG_MIN(len + (size_t)SG_MAX(w, 0), sizeof what - 1);
    }
    char buf[SHOW_MAX + 8];
    return sg_yaml_err(d, v, "%s: expected %s, got %s", path, what, shown(v, buf, sizeof buf));
}

/* A list of integers, or one integer as a list of one; stored only when all are valid. */
static int bind_int_list(const struct sg_ydoc *d, const struct sg_ynode *v,
                         const struct sg_cfg_key *k, const char *path, char *base)
{
    int *dst = (int *)(base + k->offset), *count = (int *)(base + k->offset_count);
    if (v->kind == SG_Y_SCALAR) {
        if (v->quoted || !is_int_text(v->str))
            return err_expected(d, v, path, "a list of integers");
        if (parse_int(d, v, k, path, dst)) return -1;
        *count = 1;
        return 0;
    }
    if (v->kind != SG_Y_SEQ) return sg_yaml_err(d, v, "%s: expected a list of integers", path);
    if (v->n > k->cap) return sg_yaml_err(d, v, "%s: at most %d elements", path, k->cap);
    int *tmp = sg_xmalloc(sizeof(int) * (size_t)SG_MAX(v->n, 1));
    for (int i = 0; i < v->n; i++) {
        char elem[1100];
        snprintf(elem, sizeof elem, "%s[%d]", path, i);
        if (parse_int(d, v->items[i], k, elem, &tmp[i])) {
            free(tmp);
            return -1;
        }
    }
    memcpy(dst, tmp, sizeof(int) * (size_t)v->n);
    *count = v->n;
    free(tmp);
    return 0;
}

/* ---- binding ------------------------------------------------------------------------------- */

static int bind_map(const struct sg_ydoc *d, const struct sg_ynode *map,
                    const struct sg_cfg_key *keys, char *out, const char *prefix);

static int bind_value(const struct sg_ydoc *d, const struct sg_ynode *v, const struct sg_cfg_key *k,
                      char *out, const char *path)
{
    void *field = out + k->offset;
    if (sg_ynode_is_null(v)) return sg_yaml_err(d, v, "%s: missing value", path);
    switch (k->type) {
    case SG_CFG_INT:
        return parse_int(d, v, k, path, field);
    case SG_CFG_FLOAT:
        return bind_float(d, v, k, path, field);
    case SG_CFG_BOOL:
        return bind_bool(d, v, path, field);
    case SG_CFG_STRING:
        return bind_string(d, v, k, path, field);
    case SG_CFG_ENUM:
        return bind_enum(d, v, k, path, field);
    case SG_CFG_INT_LIST:
        return bind_int_list(d, v, k, path, out);
    case SG_CFG_SECTION:
        if (v->kind != SG_Y_MAP) return sg_yaml_err(d, v, "%s: expected a mapping", path);
        return bind_map(d, v, k->sub, field, path);
    }
    SG_PANIC("config key '%s' has unknown type %d", k->key, (int)k->type);
}

static int bind_map(const struct sg_ydoc *d, const struct sg_ynode *map,
                    const struct sg_cfg_key *keys, char *out, const char *prefix)
{
    for (int i = 0; i < map->n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", map->keys[i]);
        const struct sg_cfg_key *k = find_key(keys, map->keys[i]);
        if (!k) return err_unknown(d, map, i, keys, path);
        if (bind_value(d, map->items[i], k, out, path)) return -1;
    }
    return 0;
}

int sg_cfg_bind(const struct sg_ydoc *d, const struct sg_ynode *map, const struct sg_cfg_key *keys,
                void *out)
{
    check_table(keys);
    SG_CHECK(d && d->root && out, "sg_cfg_bind needs a loaded document and an output struct");
    if (!map) map = d->root;
    char prefix[1024] = "";
    if (map != d->root) sg_yaml_path(d, map, prefix, sizeof prefix);
    if (map->kind != SG_Y_MAP) {
        if (sg_ynode_is_null(map)) return sg_yaml_err(d, map, "%s: missing value", prefix);
        return sg_yaml_err(d, map, "%s: expected a mapping", prefix);
    }
    return bind_map(d, map, keys, out, prefix);
}

/* ---- dump ---------------------------------------------------------------------------------- */

/* Whether a string must be double-quoted to read back as the same string (and as a string in
 * other YAML readers: no null/bool/number look-alikes). */
static int needs_quotes(const char *s)
{
    static const char *const words[] = {"null", "~",   "true", "false", "yes", "no",
                                        "on",   "off", "y",    "n",     "nan", "inf"};
    size_t len = strlen(s);
    if (len == 0 || strchr("-?:,[]{}#&*!|>'\"%@`+.~ 0123456789", s[0]) || s[len - 1] == ' ' ||
        s[len - 1] == ':' || strstr(s, ": ") || strstr(s, " #"))
        return 1;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0) return 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 1;
    return 0;
}

static void dump_string(FILE *f, const char *s)
{
    if (!needs_quotes(s)) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void dump_float(FILE *f, float x)
{
    if (isnan(x)) {
        fputs(".nan", f);
        return;
    }
    if (isinf(x)) {
        fputs(x > 0 ? ".inf" : "-.inf", f);
        return;
    }
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        if (strtof(buf, NULL) == x) break;
    }
    fputs(buf, f);
}

static int dump_value(FILE *f, const struct sg_cfg_key *k, const char *in)
{
    const void *field = in + k->offset;
    switch (k->type) {
    case SG_CFG_INT:
        fprintf(f, " %d", *(const int *)field);
        return 0;
    case SG_CFG_FLOAT:
        fputc(' ', f);
        dump_float(f, *(const float *)field);
        return 0;
    case SG_CFG_BOOL:
        fputs(*(const int *)field ? " true" : " false", f);
        return 0;
    case SG_CFG_STRING:
        if (!memchr(field, 0, (size_t)k->cap))
            return sg_err("dumping config key '%s': string not NUL-terminated in its %d bytes",
                          k->key, k->cap);
        fputc(' ', f);
        dump_string(f, field);
        return 0;
    case SG_CFG_ENUM: {
        int idx = *(const int *)field, n = 0;
        while (k->choices[n]) n++;
        if (idx < 0 || idx >= n)
            return sg_err("dumping config key '%s': enum index %d not in [0, %d)", k->key, idx, n);
        fprintf(f, " %s", k->choices[idx]);
        return 0;
    }
    case SG_CFG_INT_LIST: {
        const int *a = field, n = *(const int *)(in + k->offset_count);
        if (n < 0 || n > k->cap)
            return sg_err("dumping config key '%s': count %d not in [0, %d]", k->key, n, k->cap);
        fputs(" [", f);
        for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", a[i]);
        fputc(']', f);
        return 0;
    }
    case SG_CFG_SECTION:
        if (!k->sub[0].key) fputs(" {}", f); /* an empty section must not read back as null */
        return 0;
    }
    SG_PANIC("config key '%s' has unknown type %d", k->key, (int)k->type);
}

static int dump_table(FILE *f, const struct sg_cfg_key *keys, const char *in, int indent)
{
    for (const struct sg_cfg_key *k = keys; k->key; k++) {
        fprintf(f, "%*s%s:", indent, "", k->key);
        if (dump_value(f, k, in)) return -1;
        if (k->help && k->help[0]) fprintf(f, "  # %s", k->help);
        fputc('\n', f);
        if (k->type == SG_CFG_SECTION && dump_table(f, k->sub, in + k->offset, indent + 2))
            return -1;
    }
    return 0;
}

int sg_cfg_dump(FILE *f, const struct sg_cfg_key *keys, const void *in, int indent)
{
    check_table(keys);
    SG_CHECK(f && in && indent >= 0, "sg_cfg_dump: bad arguments");
    if (dump_table(f, keys, in, indent)) return -1;
    if (ferror(f)) return sg_err("writing the configuration failed (disk full?)");
    return 0;
}
