/*
 * data/ds_wds.c — WebDataset tar shards with random access (FIELD.md 5.3). Every shard's tar
 * headers are indexed at open (data/tar.h); members are grouped by webdataset's
 * tariterators.base_plus_ext rule (the name up to the first dot of the file name, consecutive
 * members; files without an extension ignored; a field repeated inside a sample is an error, as
 * webdataset's group_by_keys); samples without an image field are dropped (open_clip's
 * filter_no_caption_or_no_image). The global index comes from the json "key" (img2dataset /
 * FastCLIP) or the shard order. The per-sample json and sizes.json are read with data/json.h.
 * Contract: data/dataset.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/json.h"
#include "data/tar.h"

#define KEEP_OPEN_MAX 256 /* shards beyond this are opened per read (file descriptor limits) */
#define JSON_MAX      (1 << 20)

enum img_fmt { IMG_NONE, IMG_OK, IMG_WEBP };

struct wds_rec {
    int64_t img_off, txt_off, json_off, cls_off;
    uint32_t img_len, txt_len, json_len, cls_len;
    int64_t name_off; /* sample key (tar name prefix) in the names arena */
    int32_t shard;
    uint8_t fmt, has_txt, has_json, has_cls;
};

struct wds_impl {
    struct sg_tar **shards; /* (nshards) */
    int nshards;
    struct wds_rec *recs; /* (n) in global-index order */
    char *names;          /* arena of NUL-terminated sample keys */
    char *caption_key;    /* json caption key */
    int prefer_json;      /* caption_key given explicitly: json caption before txt */
};

/* ---- shard list and sizes.json ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int64_t list_tars(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d) return sg_err("cannot open folder '%s': %s", dir, strerror(errno));
    char **v = NULL;
    int64_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || strcmp(e->d_name + len - 4, ".tar") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = sg_xrealloc(v, sizeof(char *) * (size_t)cap);
        }
        v[n] = sg_xmalloc(strlen(dir) + len + 2);
        sprintf(v[n++], "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n == 0) {
        free(v);
        return sg_err("folder '%s' has no .tar shards", dir);
    }
    qsort(v, (size_t)n, sizeof(char *), cmp_str);
    *out = v;
    return n;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

struct sizes {
    char **name;
    int64_t *count;
    int n, cap, bad;
};

static int sizes_fn(void *user, const char *key, const char *vs, const char *ve)
{
    struct sizes *s = user;
    int64_t v;
    if (sg_json_int(vs, ve, &v) != 0 || *vs == '"') {
        s->bad = 1;
        return 1;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->name = sg_xrealloc(s->name, sizeof(char *) * (size_t)s->cap);
        s->count = sg_xrealloc(s->count, sizeof(int64_t) * (size_t)s->cap);
    }
    s->name[s->n] = sg_xstrdup(key);
    s->count[s->n++] = v;
    return 0;
}

static void sizes_free(struct sizes *s)
{
    for (int i = 0; i < s->n; i++) free(s->name[i]);
    free(s->name);
    free(s->count);
}

/* sizes.json in the folder of the first shard, when present. */
static int load_sizes(const char *first_shard, struct sizes *s)
{
    const char *b = base_name(first_shard);
    size_t dl = (size_t)(b - first_shard);
    char *path = sg_xmalloc(dl + 16);
    memcpy(path, first_shard, dl);
    strcpy(path + dl, "sizes.json");
    struct stat st;
    int rc = 0;
    if (stat(path, &st) == 0) {
        char *data;
        size_t len;
        rc = sg_read_file(path, &data, &len);
        if (rc == 0) {
            if (sg_json_members(data, len, sizes_fn, s) != 0 || s->bad)
                rc = sg_err("%s: not a JSON object of shard name -> sample count\n---> HINT: "
                            "fix or delete it",
                            path);
            free(data);
        }
    }
    free(path);
    return rc;
}

/* ---- indexing --------------------------------------------------------------------------- */

struct index_state {
    struct wds_rec *recs;
    int64_t n, cap;
    char *names;
    size_t names_len, names_cap;
};

static int64_t add_name(struct index_state *st, const char *s, size_t n)
{
    if (st->names_len + n + 1 > st->names_cap) {
        st->names_cap = SG_MAX(st->names_cap * 2, st->names_len + n + 1 + 4096);
        st->names = sg_xrealloc(st->names, st->names_cap);
    }
    int64_t off = (int64_t)st->names_len;
    memcpy(st->names + off, s, n);
    st->names[off + (int64_t)n] = 0;
    st->names_len += n + 1;
    return off;
}

static void push_rec(struct index_state *st, const struct wds_rec *r)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 1024;
        st->recs = sg_xrealloc(st->recs, sizeof(*st->recs) * (size_t)st->cap);
    }
    st->recs[st->n++] = *r;
}

/* Split a member name into the sample prefix (dir + file name up to the first dot) and the
 * field (after that dot). Returns 0 when the file name has no extension (ignored). */
static int split_name(const char *name, size_t *prefix_len, const char **field)
{
    const char *slash = strrchr(name, '/');
    const char *file = slash ? slash + 1 : name;
    const char *dot = strchr(file, '.');
    if (!dot || dot == file || !dot[1]) return 0;
    *prefix_len = (size_t)(dot - name);
    *field = dot + 1;
    return 1;
}

static int set_field(struct wds_rec *r, const char *field, const struct sg_tar_member *m,
                     const char *shard)
{
    if (m->size > UINT32_MAX) return sg_err("'%s': member '%s' is over 4 GiB", shard, m->name);
    uint32_t len = (uint32_t)m->size;
    int img = strcasecmp(field, "jpg") == 0 || strcasecmp(field, "jpeg") == 0 ||
              strcasecmp(field, "png") == 0;
    int webp = strcasecmp(field, "webp") == 0;
    if (img || webp) {
        if (r->fmt == IMG_OK) return 0; /* first image field wins (open_clip's "jpg;png;...") */
        r->fmt = img ? IMG_OK : IMG_WEBP;
        r->img_off = m->offset, r->img_len = len;
    } else if (strcmp(field, "txt") == 0) {
        r->has_txt = 1, r->txt_off = m->offset, r->txt_len = len;
    } else if (strcmp(field, "json") == 0) {
        r->has_json = 1, r->json_off = m->offset, r->json_len = len;
    } else if (strcmp(field, "cls") == 0) {
        r->has_cls = 1, r->cls_off = m->offset, r->cls_len = len;
    }
    return 0;
}

static int index_shard(const struct sg_tar *t, int32_t shard, struct index_state *st)
{
    struct wds_rec cur;
    size_t cur_len = 0;
    const char *cur_name = NULL;
    char seen[8][16]; /* fields of the current sample, for the duplicate check */
    int nseen = 0;
    for (int64_t i = 0; i <= t->n; i++) {
        size_t plen = 0;
        const char *field = NULL;
        if (i < t->n && !split_name(t->members[i].name, &plen, &field)) continue;
        int same = i < t->n && cur_name && plen == cur_len &&
                   memcmp(cur_name, t->members[i].name, plen) == 0;
        if (!same && cur_name) { /* close the current sample */
            if (cur.fmt != IMG_NONE) {
                cur.name_off = add_name(st, cur_name, cur_len);
                push_rec(st, &cur);
            }
            cur_name = NULL;
        }
        if (i == t->n) break;
        if (!cur_name) {
            memset(&cur, 0, sizeof(cur));
            cur.shard = shard;
            cur_name = t->members[i].name;
            cur_len = plen;
            nseen = 0;
        }
        for (int k = 0; k < nseen; k++)
            if (strcmp(seen[k], field) == 0)
                return sg_err("'%s': duplicate field '%s' in sample '%.*s'\n---> HINT: members "
                              "of one sample must have distinct extensions",
                              t->path, field, (int)plen, t->members[i].name);
        if (nseen < 8 && strlen(field) < 16) strcpy(seen[nseen++], field);
        if (set_field(&cur, field, &t->members[i], t->path) != 0) return -1;
    }
    return 0;
}

/* Reorder recs by json key when every sample has one. */
static int apply_json_keys(struct wds_impl *im, int64_t n, char *names)
{
    int64_t *key = sg_xmalloc(sizeof(int64_t) * (size_t)SG_MAX(n, 1));
    int64_t with = 0, first_without = -1, first_with = -1;
    char *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        struct wds_rec *r = &im->recs[i];
        key[i] = -1;
        const char *shard = im->shards[r->shard]->path;
        if (r->has_json && r->json_len <= JSON_MAX) {
            if (r->json_len + 1 > cap) {
                cap = r->json_len + 1;
                buf = sg_xrealloc(buf, cap);
            }
            if (sg_tar_pread(im->shards[r->shard], r->json_off, r->json_len, buf) != 0) {
                rc = -1;
                break;
            }
            const char *vs, *ve;
            int f = sg_json_find(buf, r->json_len, "key", &vs, &ve);
            if (f < 0) {
                rc = sg_err("'%s': sample '%s': malformed json", shard, names + r->name_off);
                break;
            }
            if (f == 1 && sg_json_int(vs, ve, &key[i]) != 0) {
                rc = sg_err("'%s': sample '%s': json key %.*s is not a non-negative integer\n"
                            "---> HINT: set ignore_json_key to number samples in shard order",
                            shard, names + r->name_off, (int)SG_MIN(ve - vs, 40), vs);
                break;
            }
        }
        if (key[i] >= 0) {
            with++;
            if (first_with < 0) first_with = i;
        } else if (first_without < 0) {
            first_without = i;
        }
    }
    free(buf);
    if (rc == 0 && with > 0 && with < n) {
        int64_t i = first_without;
        rc = sg_err("'%s': sample '%s' has no json key but '%s' has\n---> HINT: set "
                    "ignore_json_key to number samples in shard order",
                    im->shards[im->recs[i].shard]->path, names + im->recs[i].name_off,
                    names + im->recs[first_with].name_off);
    }
    if (rc == 0 && with == n && n > 0) {
        struct wds_rec *sorted = sg_xmalloc(sizeof(*sorted) * (size_t)n);
        uint8_t *used = sg_xcalloc((size_t)n, 1);
        for (int64_t i = 0; i < n && rc == 0; i++) {
            const struct wds_rec *r = &im->recs[i];
            const char *shard = im->shards[r->shard]->path;
            if (key[i] >= n)
                rc = sg_err("'%s': sample '%s': json key %lld is outside [0, %lld)\n---> HINT: "
                            "keys must number the samples 0..N-1; set ignore_json_key to "
                            "number them in shard order",
                            shard, names + r->name_off, (long long)key[i], (long long)n);
            else if (used[key[i]])
                rc = sg_err("'%s': sample '%s': json key %lld is used twice\n---> HINT: set "
                            "ignore_json_key to number samples in shard order",
                            shard, names + r->name_off, (long long)key[i]);
            else
                used[key[i]] = 1, sorted[key[i]] = *r;
        }
        free(used);
        if (rc == 0) {
            free(im->recs);
            im->recs = sorted;
        } else {
            free(sorted);
        }
    }
    free(key);
    return rc;
}

static int wds_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out);
static void wds_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n);
static void wds_free(struct sg_dataset *ds);
static const struct sg_dataset_ops wds_ops = {wds_read, wds_where, wds_free};

static int check_sizes(const struct sizes *sz, const char *shard, int64_t counted)
{
    for (int k = 0; k < sz->n; k++)
        if (strcmp(sz->name[k], base_name(shard)) == 0 && sz->count[k] != counted)
            return sg_err("'%s' has %lld samples but sizes.json says %lld\n---> HINT: the shard "
                          "is truncated or sizes.json is stale; regenerate it",
                          shard, (long long)counted, (long long)sz->count[k]);
    return 0;
}

int sg_dataset_open_wds(const struct sg_dataset_spec *spec, struct sg_dataset **out)
{
    char **paths = NULL;
    struct stat st;
    int64_t np = stat(spec->path, &st) == 0 && S_ISDIR(st.st_mode)
                     ? list_tars(spec->path, &paths)
                     : sg_expand_braces(spec->path, &paths);
    if (np < 0) return -1;
    if (np > INT32_MAX) return sg_err("too many shards (%lld)", (long long)np);
    struct sizes sz = {0};
    struct wds_impl *im = sg_xcalloc(1, sizeof(*im));
    im->shards = sg_xcalloc((size_t)np, sizeof(struct sg_tar *));
    im->nshards = (int)np;
    struct index_state ist = {0};
    int rc = load_sizes(paths[0], &sz);
    for (int64_t s = 0; s < np && rc == 0; s++) {
        rc = sg_tar_open(paths[s], np <= KEEP_OPEN_MAX, &im->shards[s]);
        int64_t before = ist.n;
        if (rc == 0) rc = index_shard(im->shards[s], (int32_t)s, &ist);
        if (rc == 0) rc = check_sizes(&sz, paths[s], ist.n - before);
    }
    im->recs = ist.recs;
    if (rc == 0 && ist.n == 0)
        rc = sg_err("no samples with a jpg/jpeg/png/webp image in %lld shard(s)", (long long)np);
    if (rc == 0 && !spec->ignore_json_key) rc = apply_json_keys(im, ist.n, ist.names);
    for (int64_t s = 0; s < np; s++) free(paths[s]);
    free(paths);
    sizes_free(&sz);
    im->names = ist.names;
    im->caption_key = sg_xstrdup(spec->caption_key ? spec->caption_key : "caption");
    im->prefer_json = spec->caption_key != NULL;
    struct sg_dataset *ds = sg_xcalloc(1, sizeof(*ds));
    ds->ops = &wds_ops;
    ds->kind = "wds";
    ds->path = sg_xstrdup(spec->path);
    ds->n = ist.n;
    ds->ncaptions = -1;
    ds->impl = im;
    if (rc != 0) {
        sg_dataset_free(ds);
        return -1;
    }
    *out = ds;
    return 0;
}

/* ---- read ------------------------------------------------------------------------------- */

/* Add caption candidates, dropping empty / whitespace-only / invalid UTF-8 ones. */
static void add_checked(struct sg_raw_sample *out, const char *s, size_t n)
{
    int blank = 1;
    for (size_t i = 0; i < n && blank; i++)
        blank = s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n';
    if (blank || !sg_utf8_valid(s, n) || memchr(s, 0, n))
        out->ndropped++;
    else
        sg_raw_add_caption(out, s, n);
}

static void captions_from_txt(struct sg_raw_sample *out, const char *t, size_t n)
{
    size_t i = 0;
    int any = 0;
    while (i < n) {
        const char *nl = memchr(t + i, '\n', n - i);
        size_t len = nl ? (size_t)(nl - (t + i)) : n - i;
        size_t l2 = len;
        if (l2 && t[i + l2 - 1] == '\r') l2--;
        if (l2) add_checked(out, t + i, l2), any = 1;
        i += len + 1;
    }
    if (!any) out->ndropped++; /* an empty txt is an empty caption */
}

/* 1 when captions were found under the json caption key, 0 when absent, -1 malformed. */
static int captions_from_json(struct sg_raw_sample *out, const char *js, size_t n, const char *key)
{
    const char *vs, *ve;
    int f = sg_json_find(js, n, key, &vs, &ve);
    if (f <= 0) return f;
    struct sg_json_cur j = {vs, ve};
    if (*vs == '"') {
        size_t len;
        char *s = sg_json_decode(vs, ve, &len);
        if (!s) return -1;
        add_checked(out, s, len);
        free(s);
        return 1;
    }
    if (*vs != '[') return 0;
    j.p++;
    for (;;) {
        sg_json_ws(&j);
        if (j.p >= j.end || *j.p == ']') break;
        const char *es = j.p;
        if (sg_json_skip_value(&j, 0) != 0) return -1;
        if (*es == '"') {
            size_t len;
            char *s = sg_json_decode(es, j.p, &len);
            if (!s) return -1;
            add_checked(out, s, len);
            free(s);
        }
        sg_json_ws(&j);
        if (j.p < j.end && *j.p == ',') j.p++;
    }
    return 1;
}

static int read_small(const struct sg_tar *t, int64_t off, uint32_t len, char **buf)
{
    if (len > JSON_MAX)
        return sg_err("'%s': text member at %lld is over 1 MiB", t->path, (long long)off);
    *buf = sg_xmalloc((size_t)len + 1);
    if (sg_tar_pread(t, off, len, *buf) != 0) {
        free(*buf);
        return -1;
    }
    (*buf)[len] = 0;
    return 0;
}

static int read_captions(const struct wds_impl *im, const struct wds_rec *r,
                         struct sg_raw_sample *out)
{
    const struct sg_tar *t = im->shards[r->shard];
    char *buf = NULL;
    if (r->has_json && (im->prefer_json || !r->has_txt)) {
        if (read_small(t, r->json_off, r->json_len, &buf) != 0) return -1;
        int f = captions_from_json(out, buf, r->json_len, im->caption_key);
        free(buf);
        if (f < 0) return sg_err("%s: malformed json", out->where);
        if (f > 0 || !r->has_txt) return 0;
    }
    if (r->has_txt) {
        if (read_small(t, r->txt_off, r->txt_len, &buf) != 0) return -1;
        captions_from_txt(out, buf, r->txt_len);
        free(buf);
    }
    return 0;
}

static int wds_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out)
{
    const struct wds_impl *im = ds->impl;
    const struct wds_rec *r = &im->recs[index];
    const struct sg_tar *t = im->shards[r->shard];
    snprintf(out->where, sizeof(out->where), "%s:%s", base_name(t->path), im->names + r->name_off);
    if (r->fmt == IMG_WEBP)
        return sg_err("%s: webp images are not supported\n---> HINT: re-encode as JPEG",
                      out->where);
    if ((size_t)r->img_len + 1 > out->img_cap) {
        free(out->img);
        out->img_cap = (size_t)r->img_len + 1 + r->img_len / 4;
        out->img = sg_xmalloc(out->img_cap);
    }
    if (sg_tar_pread(t, r->img_off, r->img_len, out->img) != 0) return -1;
    out->img_len = r->img_len;
    if (read_captions(im, r, out) != 0) return -1;
    if (r->has_cls) {
        char *buf = NULL;
        if (read_small(t, r->cls_off, r->cls_len, &buf) != 0) return -1;
        char *end;
        long v = strtol(buf, &end, 10);
        if (end != buf && v >= 0 && v <= INT32_MAX) out->label = (int32_t)v;
        free(buf);
    }
    return 0;
}

static void wds_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n)
{
    const struct wds_impl *im = ds->impl;
    const struct wds_rec *r = &im->recs[index];
    snprintf(buf, n, "%s:%s", base_name(im->shards[r->shard]->path), im->names + r->name_off);
}

static void wds_free(struct sg_dataset *ds)
{
    struct wds_impl *im = ds->impl;
    if (!im) return;
    for (int i = 0; i < im->nshards; i++) sg_tar_close(im->shards[i]);
    free(im->shards);
    free(im->recs);
    free(im->names);
    free(im->caption_key);
    free(im);
}
