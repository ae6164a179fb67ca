/* core/safetensors.c — see safetensors.h. The JSON parser below accepts exactly the subset
 * safetensors headers use (an object of objects, strings, integer arrays) and checks every read
 * against the header's end. */
#define _GNU_SOURCE
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"

#define ST_MAX_HEADER (100u << 20) /* same cap as the reference implementation */
#define ST_HINT                                                                                    \
    "\n---> HINT: the file is not a valid safetensors file (truncated or corrupt?); "              \
    "re-export it"

/* ---------------------------------------------------------------------------------------- */
/* Minimal bounded JSON scanner                                                              */

struct json {
    const char *p, *end;
    const char *label;
};

static int jerr(struct json *j, const char *what)
{
    return sg_err("%s: bad safetensors header: %s", j->label, what);
}

static void skip_ws(struct json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int expect(struct json *j, char c)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p != c) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected '%c' at byte %ld", c, (long)(j->p - (j->end - 0)));
        return jerr(j, msg);
    }
    j->p++;
    return 0;
}

static int peek(struct json *j, char c)
{
    skip_ws(j);
    return j->p < j->end && *j->p == c;
}

static void put_utf8(char *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (char)(0xc0 | (cp >> 6));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (char)(0xe0 | (cp >> 12));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (char)(0xf0 | (cp >> 18));
        out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int hex4(struct json *j, uint32_t *v)
{
    if (j->end - j->p < 4) return jerr(j, "truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) return jerr(j, "bad \\u escape");
        *v = (*v << 4) | (uint32_t)d;
    }
    return 0;
}

static int parse_escape(struct json *j, char *s, size_t *n)
{
    if (j->p >= j->end) return jerr(j, "truncated escape");
    char c = *j->p++;
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *k = strchr(from, c);
    if (c && k) {
        s[(*n)++] = to[k - from];
        return 0;
    }
    if (c != 'u') return jerr(j, "unknown escape");
    uint32_t cp, lo;
    if (hex4(j, &cp)) return -1;
    if (cp >= 0xd800 && cp < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
        j->p += 2;
        if (hex4(j, &lo)) return -1;
        if (lo < 0xdc00 || lo > 0xdfff) return jerr(j, "bad surrogate pair");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    put_utf8(s, n, cp);
    return 0;
}

/* Parses a string; returns a malloc'd, NUL-terminated copy. */
static int parse_string(struct json *j, char **out)
{
    if (expect(j, '"')) return -1;
    const char *start = j->p;
    size_t cap = 16;
    while (j->p < j->end && *j->p != '"') j->p += (*j->p == '\\' && j->p + 1 < j->end) ? 2 : 1;
    if (j->p >= j->end) return jerr(j, "unterminated string");
    cap += (size_t)(j->p - start) * 2;
    char *s = sg_xmalloc(cap);
    size_t n = 0;
    j->p = start;
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20) {
            free(s);
            return jerr(j, "control character in string");
        }
        if (c != '\\') {
            s[n++] = (char)c;
        } else if (parse_escape(j, s, &n)) {
            free(s);
            return -1;
        }
    }
    j->p++;
    s[n] = 0;
    *out = s;
    return 0;
}

static int parse_u64(struct json *j, uint64_t *v)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return jerr(j, "expected a non-negative integer");
    uint64_t x = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        uint64_t d = (uint64_t)(*j->p++ - '0');
        if (x > (UINT64_MAX - d) / 10) return jerr(j, "integer overflow");
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* [a, b, ...] of non-negative integers, at most maxn of them. */
static int parse_u64_array(struct json *j, uint64_t *vals, int maxn, int *count)
{
    if (expect(j, '[')) return -1;
    *count = 0;
    if (peek(j, ']')) {
        j->p++;
        return 0;
    }
    for (;;) {
        if (*count >= maxn) return jerr(j, "array too long");
        if (parse_u64(j, &vals[(*count)++])) return -1;
        if (peek(j, ',')) {
            j->p++;
            continue;
        }
        return expect(j, ']');
    }
}

/* Skips any JSON value (used for unknown keys), bounded depth. */
static int skip_value(struct json *j, int depth)
{
    if (depth > 16) return jerr(j, "nesting too deep");
    skip_ws(j);
    if (j->p >= j->end) return jerr(j, "truncated value");
    char c = *j->p;
    if (c == '"') {
        char *s;
        if (parse_string(j, &s)) return -1;
        free(s);
        return 0;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (peek(j, close)) {
            j->p++;
            return 0;
        }
        for (;;) {
            if (c == '{') {
                char *k;
                if (parse_string(j, &k)) return -1;
                free(k);
                if (expect(j, ':')) return -1;
            }
            if (skip_value(j, depth + 1)) return -1;
            if (peek(j, ',')) {
                j->p++;
                continue;
            }
            return expect(j, close);
        }
    }
    while (j->p < j->end && strchr(",}] \t\r\n", *j->p) == NULL) j->p++; /* number/literal */
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Header → entries                                                                          */

static void file_reset(struct sg_st_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->entries[i].name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->entries);
    free(f->meta_keys);
    free(f->meta_vals);
    f->entries = NULL;
    f->meta_keys = f->meta_vals = NULL;
    f->n = f->nmeta = 0;
}

static int parse_metadata(struct json *j, struct sg_st_file *f)
{
    if (expect(j, '{')) return -1;
    if (peek(j, '}')) {
        j->p++;
        return 0;
    }
    for (;;) {
        char *k, *v;
        if (parse_string(j, &k)) return -1;
        if (expect(j, ':') || parse_string(j, &v)) {
            free(k);
            return jerr(j, "__metadata__ values must be strings");
        }
        f->meta_keys = sg_xrealloc(f->meta_keys, sizeof(char *) * (size_t)(f->nmeta + 1));
        f->meta_vals = sg_xrealloc(f->meta_vals, sizeof(char *) * (size_t)(f->nmeta + 1));
        f->meta_keys[f->nmeta] = k;
        f->meta_vals[f->nmeta++] = v;
        if (peek(j, ',')) {
            j->p++;
            continue;
        }
        return expect(j, '}');
    }
}

static int parse_entry_field(struct json *j, struct sg_st_entry *e, int *seen)
{
    char *key;
    if (parse_string(j, &key)) return -1;
    int rc = expect(j, ':');
    if (rc == 0 && strcmp(key, "dtype") == 0) {
        char *dt = NULL;
        rc = parse_string(j, &dt);
        if (rc == 0 && sg_dtype_parse(dt, strlen(dt), &e->dtype) != 0)
            rc = sg_err("%s: tensor '%s' has unsupported dtype '%s' (supported: F32, F16, BF16, "
                        "I32, I64, U8)",
                        j->label, e->name, dt);
        free(dt);
        *seen |= 1;
    } else if (rc == 0 && strcmp(key, "shape") == 0) {
        uint64_t dims[SG_MAX_DIMS];
        rc = parse_u64_array(j, dims, SG_MAX_DIMS, &e->ndim);
        for (int i = 0; rc == 0 && i < e->ndim; i++) {
            if (dims[i] > (1ull << 40)) rc = jerr(j, "dimension too large");
            e->shape[i] = (int64_t)dims[i];
        }
        *seen |= 2;
    } else if (rc == 0 && strcmp(key, "data_offsets") == 0) {
        uint64_t off[2];
        int cnt = 0;
        rc = parse_u64_array(j, off, 2, &cnt);
        if (rc == 0 && cnt != 2) rc = jerr(j, "data_offsets must have two entries");
        e->begin = off[0];
        e->end = off[1];
        *seen |= 4;
    } else if (rc == 0) {
        rc = skip_value(j, 0);
    }
    free(key);
    return rc;
}

static int parse_entry(struct json *j, struct sg_st_entry *e)
{
    int seen = 0;
    if (expect(j, '{')) return -1;
    while (!peek(j, '}')) {
        if (parse_entry_field(j, e, &seen)) return -1;
        if (peek(j, ','))
            j->p++;
        else if (!peek(j, '}'))
            return jerr(j, "expected ',' or '}' in tensor entry");
    }
    j->p++;
    if (seen != 7)
        return sg_err("%s: tensor '%s' lacks dtype, shape or data_offsets" ST_HINT, j->label,
                      e->name);
    return 0;
}

/* Checks sizes and offsets of every entry against the data buffer; rejects overlaps/holes. */
static int validate_entries(struct sg_st_file *f, const char *label)
{
    uint64_t covered = 0;
    for (int i = 0; i < f->n; i++) {
        struct sg_st_entry *e = &f->entries[i];
        uint64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] != 0 && numel > UINT64_MAX / (uint64_t)e->shape[d] / 8)
                return sg_err("%s: tensor '%s': shape overflows" ST_HINT, label, e->name);
            numel *= (uint64_t)e->shape[d];
        }
        uint64_t bytes = numel * sg_dtype_size(e->dtype);
        if (e->end < e->begin || e->end > f->data_len)
            return sg_err("%s: tensor '%s': data_offsets [%llu, %llu] outside the %zu-byte data "
                          "buffer" ST_HINT,
                          label, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                          f->data_len);
        if (e->end - e->begin != bytes)
            return sg_err(
                "%s: tensor '%s': %llu bytes at data_offsets but shape x %s needs %llu" ST_HINT,
                label, e->name, (unsigned long long)(e->end - e->begin), sg_dtype_name(e->dtype),
                (unsigned long long)bytes);
        covered += bytes;
    }
    /* Sort-free overlap check: total bytes must not exceed the buffer and no two intervals of
     * non-zero size may overlap (O(n^2) only for small files; else rely on the total). */
    if (covered > f->data_len)
        return sg_err("%s: tensors overlap (%llu bytes claimed in a %zu-byte buffer)" ST_HINT,
                      label, (unsigned long long)covered, f->data_len);
    if (f->n <= 4096) {
        for (int a = 0; a < f->n; a++)
            for (int b = a + 1; b < f->n; b++) {
                const struct sg_st_entry *x = &f->entries[a], *y = &f->entries[b];
                if (x->end > x->begin && y->end > y->begin && x->begin < y->end &&
                    y->begin < x->end)
                    return sg_err("%s: tensors '%s' and '%s' overlap" ST_HINT, label, x->name,
                                  y->name);
            }
    }
    return 0;
}

static int parse_header(struct sg_st_file *f, const char *hdr, size_t len, const char *label)
{
    struct json j = {hdr, hdr + len, label};
    if (expect(&j, '{')) return -1;
    while (!peek(&j, '}')) {
        char *name;
        if (parse_string(&j, &name)) return -1;
        if (expect(&j, ':')) {
            free(name);
            return -1;
        }
        if (strcmp(name, "__metadata__") == 0) {
            free(name);
            if (parse_metadata(&j, f)) return -1;
        } else {
            if (sg_st_find(f, name)) {
                sg_err("%s: duplicate tensor name '%s'" ST_HINT, label, name);
                free(name);
                return -1;
            }
            f->entries = sg_xrealloc(f->entries, sizeof(*f->entries) * (size_t)(f->n + 1));
            struct sg_st_entry *e = &f->entries[f->n++];
            memset(e, 0, sizeof *e);
            e->name = name;
            if (parse_entry(&j, e)) return -1;
        }
        if (peek(&j, ','))
            j.p++;
        else if (!peek(&j, '}'))
            return jerr(&j, "expected ',' or '}' after an entry");
    }
    j.p++;
    skip_ws(&j);
    if (j.p != j.end) return jerr(&j, "trailing bytes after the header object");
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Opening                                                                                   */

static int validate_image(struct sg_st_file *f, const char *label)
{
    if (f->map_len < 8)
        return sg_err("%s: %zu bytes is too short for a safetensors file" ST_HINT, label,
                      f->map_len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i];
    if (hlen > ST_MAX_HEADER || hlen > f->map_len - 8)
        return sg_err(
            "%s: header length %llu exceeds the file (%zu bytes) or the 100 MiB cap" ST_HINT, label,
            (unsigned long long)hlen, f->map_len);
    f->data = f->map + 8 + hlen;
    f->data_len = f->map_len - 8 - (size_t)hlen;
    if (parse_header(f, (const char *)f->map + 8, (size_t)hlen, label)) return -1;
    return validate_entries(f, label);
}

static int finish_open(struct sg_st_file *f, const char *label)
{
    f->path = sg_xstrdup(label);
    if (validate_image(f, label) == 0) return 0;
    sg_st_close(f);
    return -1;
}

int sg_st_open_buffer(struct sg_st_file *f, uint8_t *buf, size_t len, const char *label)
{
    memset(f, 0, sizeof *f);
    f->map = buf;
    f->map_len = len;
    return finish_open(f, label);
}

int sg_st_open(struct sg_st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return sg_err("cannot open '%s': %s\n---> HINT: check the path", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sg_err("'%s' is not a regular file", path);
    }
    f->map_len = (size_t)st.st_size;
    if (f->map_len > 0) {
        void *m = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return sg_err("cannot map '%s': %s", path, strerror(errno));
        }
        f->map = m;
        f->mapped = 1;
    }
    close(fd);
    return finish_open(f, path);
}

void sg_st_close(struct sg_st_file *f)
{
    file_reset(f);
    if (f->mapped)
        munmap(f->map, f->map_len);
    else
        free(f->map);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const struct sg_st_entry *sg_st_find(const struct sg_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

const void *sg_st_raw(const struct sg_st_file *f, const struct sg_st_entry *e)
{
    return f->data + e->begin;
}

const char *sg_st_meta(const struct sg_st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

static const struct sg_st_entry *find_sized(const struct sg_st_file *f, const char *name,
                                            int64_t numel)
{
    const struct sg_st_entry *e = sg_st_find(f, name);
    if (!e) {
        sg_err("%s: no tensor named '%s'\n---> HINT: the file was written for another model or "
               "version; list its names with `sogclip inspect`",
               f->path, name);
        return NULL;
    }
    int64_t have = sg_shape_numel(e->ndim, e->shape);
    if (numel >= 0 && have != numel) {
        char sb[128];
        sg_err("%s: tensor '%s' has shape %s (%lld elements), expected %lld elements", f->path,
               name, sg_shape_str(e->ndim, e->shape, sb, sizeof sb), (long long)have,
               (long long)numel);
        return NULL;
    }
    return e;
}

static double element_as_double(const uint8_t *p, enum sg_dtype t, int64_t i)
{
    uint16_t h;
    int32_t i32;
    int64_t i64;
    float f;
    switch (t) {
    case SG_F32:
        memcpy(&f, p + 4 * i, 4);
        return f;
    case SG_F16:
        memcpy(&h, p + 2 * i, 2);
        return sg_f16_to_f32(h);
    case SG_BF16:
        memcpy(&h, p + 2 * i, 2);
        return sg_bf16_to_f32(h);
    case SG_I32:
        memcpy(&i32, p + 4 * i, 4);
        return i32;
    case SG_I64:
        memcpy(&i64, p + 8 * i, 8);
        return (double)i64;
    case SG_U8:
        return p[i];
    default:
        return 0;
    }
}

int sg_st_read_f32(const struct sg_st_file *f, const char *name, float *dst, int64_t numel)
{
    const struct sg_st_entry *e = find_sized(f, name, numel);
    if (!e) return -1;
    const uint8_t *p = sg_st_raw(f, e);
    if (e->dtype == SG_F32) {
        memcpy(dst, p, (size_t)numel * 4);
        return 0;
    }
    for (int64_t i = 0; i < numel; i++) dst[i] = (float)element_as_double(p, e->dtype, i);
    return 0;
}

int sg_st_read_i64(const struct sg_st_file *f, const char *name, int64_t *dst, int64_t numel)
{
    const struct sg_st_entry *e = find_sized(f, name, numel);
    if (!e) return -1;
    if (e->dtype != SG_I32 && e->dtype != SG_I64 && e->dtype != SG_U8)
        return sg_err("%s: tensor '%s' is %s, expected an integer dtype (I64, I32 or U8)", f->path,
                      name, sg_dtype_name(e->dtype));
    const uint8_t *p = sg_st_raw(f, e);
    for (int64_t i = 0; i < numel; i++) {
        if (e->dtype == SG_I64)
            memcpy(&dst[i], p + 8 * i, 8);
        else
            dst[i] = (int64_t)element_as_double(p, e->dtype, i);
    }
    return 0;
}

float *sg_st_load_f32(const struct sg_st_file *f, const char *name, int64_t *numel, int *ndim,
                      int64_t *shape)
{
    const struct sg_st_entry *e = find_sized(f, name, -1);
    if (!e) return NULL;
    int64_t n = sg_shape_numel(e->ndim, e->shape);
    float *buf = sg_xmalloc_aligned((size_t)(n ? n : 1) * sizeof(float));
    if (sg_st_read_f32(f, name, buf, n) != 0) {
        sg_afree(buf);
        return NULL;
    }
    if (numel) *numel = n;
    if (ndim) *ndim = e->ndim;
    if (shape) memcpy(shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
    return buf;
}

/* ---------------------------------------------------------------------------------------- */
/* Writer                                                                                    */

void sg_stw_init(struct sg_st_writer *w)
{
    memset(w, 0, sizeof *w);
}

void sg_stw_add(struct sg_st_writer *w, const char *name, enum sg_dtype dtype, int ndim,
                const int64_t *shape, const void *data)
{
    SG_CHECK(ndim >= 0 && ndim <= SG_MAX_DIMS, "tensor '%s' has %d dims", name, ndim);
    SG_CHECK(strcmp(name, "__metadata__") != 0, "reserved name");
    for (int i = 0; i < w->n; i++)
        SG_CHECK(strcmp(w->entries[i].name, name) != 0, "duplicate tensor name '%s'", name);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->entries = sg_xrealloc(w->entries, sizeof(*w->entries) * (size_t)w->cap);
        w->datas = sg_xrealloc(w->datas, sizeof(void *) * (size_t)w->cap);
    }
    struct sg_st_entry *e = &w->entries[w->n];
    memset(e, 0, sizeof *e);
    e->name = sg_xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    size_t bytes = (size_t)sg_shape_numel(ndim, shape) * sg_dtype_size(dtype);
    e->end = bytes; /* size for now; offsets assigned at serialization */
    w->datas[w->n] = sg_xmalloc(bytes);
    if (bytes) memcpy(w->datas[w->n], data, bytes);
    w->n++;
}

void sg_stw_add_f32(struct sg_st_writer *w, const char *name, int ndim, const int64_t *shape,
                    const float *data)
{
    sg_stw_add(w, name, SG_F32, ndim, shape, data);
}

void sg_stw_meta(struct sg_st_writer *w, const char *key, const char *value)
{
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_vals[i]);
            w->meta_vals[i] = sg_xstrdup(value);
            return;
        }
    if (w->nmeta == w->capmeta) {
        w->capmeta = w->capmeta ? 2 * w->capmeta : 8;
        w->meta_keys = sg_xrealloc(w->meta_keys, sizeof(char *) * (size_t)w->capmeta);
        w->meta_vals = sg_xrealloc(w->meta_vals, sizeof(char *) * (size_t)w->capmeta);
    }
    w->meta_keys[w->nmeta] = sg_xstrdup(key);
    w->meta_vals[w->nmeta++] = sg_xstrdup(value);
}

/* Growable string for the header. */
struct sbuf {
    char *s;
    size_t n, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = sg_xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_printf(struct sbuf *b, const char *fmt, long long a, long long c)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, fmt, a, c);
    sb_put(b, tmp, (size_t)n);
}

static void sb_json_string(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void build_header(const struct sg_st_writer *w, struct sbuf *b)
{
    uint64_t off = 0;
    sb_put(b, "{", 1);
    if (w->nmeta) {
        sb_put(b, "\"__metadata__\":{", 16);
        for (int i = 0; i < w->nmeta; i++) {
            if (i) sb_put(b, ",", 1);
            sb_json_string(b, w->meta_keys[i]);
            sb_put(b, ":", 1);
            sb_json_string(b, w->meta_vals[i]);
        }
        sb_put(b, "}", 1);
    }
    for (int i = 0; i < w->n; i++) {
        const struct sg_st_entry *e = &w->entries[i];
        if (i || w->nmeta) sb_put(b, ",", 1);
        sb_json_string(b, e->name);
        sb_put(b, ":{\"dtype\":\"", 11);
        sb_put(b, sg_dtype_name(e->dtype), strlen(sg_dtype_name(e->dtype)));
        sb_put(b, "\",\"shape\":[", 11);
        for (int d = 0; d < e->ndim; d++) sb_printf(b, d ? ",%lld" : "%lld", e->shape[d], 0);
        sb_printf(b, "],\"data_offsets\":[%lld,%lld]}", (long long)off, (long long)(off + e->end));
        off += e->end;
    }
    sb_put(b, "}", 1);
    while ((b->n + 8) % 8 != 0) sb_put(b, " ", 1); /* data starts 8-byte aligned */
}

int sg_stw_serialize(const struct sg_st_writer *w, uint8_t **out, size_t *out_len)
{
    struct sbuf b = {0};
    build_header(w, &b);
    size_t data = 0;
    for (int i = 0; i < w->n; i++) data += w->entries[i].end;
    size_t total = 8 + b.n + data;
    uint8_t *buf = sg_xmalloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(((uint64_t)b.n >> (8 * i)) & 0xff);
    memcpy(buf + 8, b.s, b.n);
    size_t off = 8 + b.n;
    for (int i = 0; i < w->n; i++) {
        if (w->entries[i].end) memcpy(buf + off, w->datas[i], w->entries[i].end);
        off += w->entries[i].end;
    }
    free(b.s);
    *out = buf;
    *out_len = total;
    return 0;
}

int sg_stw_save(const struct sg_st_writer *w, const char *path)
{
    uint8_t *buf;
    size_t len;
    sg_stw_serialize(w, &buf, &len);
    int rc = sg_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

void sg_stw_free(struct sg_st_writer *w)
{
    for (int i = 0; i < w->n; i++) {
        free(w->entries[i].name);
        free(w->datas[i]);
    }
    for (int i = 0; i < w->nmeta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_vals[i]);
    }
    free(w->entries);
    free(w->datas);
    free(w->meta_keys);
    free(w->meta_vals);
    memset(w, 0, sizeof *w);
}
