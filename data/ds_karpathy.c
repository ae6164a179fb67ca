/*
 * data/ds_karpathy.c — Karpathy's split JSON files (dataset_coco.json, dataset_flickr8k.json,
 * dataset_flickr30k.json from neuraltalk2 / "Deep Visual-Semantic Alignments", the standard
 * COCO 5k / Flickr 1k retrieval test splits): {"images": [{"filepath"?, "filename", "split",
 * "sentences": [{"raw": ...}, ...]}, ...]}. The whole file is read into memory (at most 1 GiB)
 * and walked with data/json.h; the images of the chosen split become the samples (file order),
 * their sentences' raw strings the captions. Contract: data/dataset.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/json.h"

#define KP_MAX_BYTES  (1ll << 30)
#define KP_MAX_SPLITS 16 /* distinct split names remembered for the "no images" hint */

struct arena {
    char *p;
    size_t n, cap;
};

static int64_t arena_add(struct arena *a, const char *s, size_t n)
{
    if (a->n + n + 1 > a->cap) {
        a->cap = SG_MAX(a->cap * 2, a->n + n + 1 + 4096);
        a->p = sg_xrealloc(a->p, a->cap);
    }
    int64_t off = (int64_t)a->n;
    memcpy(a->p + off, s, n);
    a->p[off + (int64_t)n] = 0;
    a->n += n + 1;
    return off;
}

struct i64vec {
    int64_t *v;
    int64_t n, cap;
};

static void vec_push(struct i64vec *v, int64_t x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->v = sg_xrealloc(v->v, sizeof(int64_t) * (size_t)v->cap);
    }
    v->v[v->n++] = x;
}

struct kp_state {
    const char *path, *data; /* JSON file name and contents (for messages and offsets) */
    const char *want;        /* split list, or "all" */
    struct arena paths, caps;
    struct i64vec path_off, cap_off, cap_start;
    int64_t dropped, seen;
    char *split_name[KP_MAX_SPLITS];
    int64_t split_count[KP_MAX_SPLITS];
    int nsplits;
};

static void state_free(struct kp_state *st)
{
    free(st->paths.p);
    free(st->caps.p);
    free(st->path_off.v);
    free(st->cap_off.v);
    free(st->cap_start.v);
    for (int i = 0; i < st->nsplits; i++) free(st->split_name[i]);
}

static int bad_json(const struct kp_state *st, const char *at, int64_t image, const char *what)
{
    if (image < 0)
        return sg_err("%s: malformed JSON at byte %lld: %s\n---> HINT: expected Karpathy's "
                      "split format {\"images\": [{\"filename\", \"split\", \"sentences\"}, ...]}",
                      st->path, (long long)(at - st->data), what);
    return sg_err("%s: image %lld (byte %lld): %s\n---> HINT: expected {\"filepath\"?, "
                  "\"filename\", \"split\", \"sentences\": [{\"raw\": ...}]}",
                  st->path, (long long)image, (long long)(at - st->data), what);
}

/* ---- one image -------------------------------------------------------------------------- */

struct span {
    const char *s, *e; /* NULL when absent */
};

struct img_fields {
    struct span filepath, filename, split, sentences;
};

static int img_member(void *user, const char *key, const char *vs, const char *ve)
{
    struct img_fields *f = user;
    struct span v = {vs, ve};
    if (strcmp(key, "filepath") == 0) f->filepath = v;
    if (strcmp(key, "filename") == 0) f->filename = v;
    if (strcmp(key, "split") == 0) f->split = v;
    if (strcmp(key, "sentences") == 0) f->sentences = v;
    return 0;
}

/* Decode a string field; NULL (with *ok = 0) when it is not a JSON string. */
static char *field_str(struct span v, size_t *len, int *ok)
{
    *ok = 1;
    if (!v.s) return NULL;
    char *s = *v.s == '"' ? sg_json_decode(v.s, v.e, len) : NULL;
    if (!s) *ok = 0;
    return s;
}

static int split_wanted(const char *want, const char *split)
{
    if (strcmp(want, "all") == 0) return 1;
    size_t n = strlen(split);
    for (const char *p = want;;) {
        const char *c = strchr(p, ',');
        size_t k = c ? (size_t)(c - p) : strlen(p);
        if (k == n && memcmp(p, split, n) == 0) return 1;
        if (!c) return 0;
        p = c + 1;
    }
}

static void count_split(struct kp_state *st, const char *split)
{
    for (int i = 0; i < st->nsplits; i++)
        if (strcmp(st->split_name[i], split) == 0) {
            st->split_count[i]++;
            return;
        }
    if (st->nsplits == KP_MAX_SPLITS) return;
    st->split_name[st->nsplits] = sg_xstrdup(split);
    st->split_count[st->nsplits++] = 1;
}

static void add_caption(struct kp_state *st, const char *s, size_t n)
{
    int blank = 1;
    for (size_t i = 0; i < n && blank; i++)
        blank = s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n';
    if (blank || !sg_utf8_valid(s, n) || memchr(s, 0, n))
        st->dropped++;
    else
        vec_push(&st->cap_off, arena_add(&st->caps, s, n));
}

/* One element of "sentences": {"raw": "..."} (a bare string is accepted too). */
static void add_sentence(struct kp_state *st, const char *es, const char *ee)
{
    const char *vs = es, *ve = ee;
    if (*es == '{' && sg_json_find(es, (size_t)(ee - es), "raw", &vs, &ve) != 1) vs = NULL;
    size_t len;
    char *s = vs && *vs == '"' ? sg_json_decode(vs, ve, &len) : NULL;
    if (!s) {
        st->dropped++;
        return;
    }
    add_caption(st, s, len);
    free(s);
}

static int add_sentences(struct kp_state *st, struct span v, int64_t image)
{
    if (!v.s) return 0;
    if (*v.s != '[') return bad_json(st, v.s, image, "\"sentences\" is not an array");
    struct sg_json_cur j = {v.s + 1, v.e};
    sg_json_ws(&j);
    if (j.p < j.end && *j.p == ']') return 0;
    for (;;) {
        sg_json_ws(&j);
        const char *es = j.p;
        if (sg_json_skip_value(&j, 1) != 0) return bad_json(st, j.p, image, "bad sentence");
        add_sentence(st, es, j.p);
        sg_json_ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            continue;
        }
        if (j.p < j.end && *j.p == ']') return 0;
        return bad_json(st, j.p, image, "expected ',' or ']' in \"sentences\"");
    }
}

/* Append the image path "filepath/filename" (filepath optional) to the path arena. */
static int add_path(struct kp_state *st, const struct img_fields *f, const char *es, int64_t image)
{
    size_t nl = 0, pl = 0;
    int ok1, ok2;
    char *name = field_str(f->filename, &nl, &ok1);
    char *dir = field_str(f->filepath, &pl, &ok2);
    int rc = 0;
    if (!name || !ok2 || nl == 0 || memchr(name, 0, nl) || (dir && memchr(dir, 0, pl)))
        rc = bad_json(st, f->filename.s ? f->filename.s : es, image,
                      name ? "empty or invalid \"filename\" / \"filepath\""
                           : "no \"filename\" string");
    if (rc == 0) {
        char *full = sg_xmalloc(pl + nl + 2);
        if (dir && pl)
            snprintf(full, pl + nl + 2, "%s/%s", dir, name);
        else
            memcpy(full, name, nl + 1);
        vec_push(&st->path_off, arena_add(&st->paths, full, strlen(full)));
        free(full);
    }
    free(name);
    free(dir);
    return rc;
}

static int add_image(struct kp_state *st, const char *es, const char *ee, int64_t image)
{
    if (*es != '{') return bad_json(st, es, image, "not an object");
    struct img_fields f;
    memset(&f, 0, sizeof(f));
    size_t off = 0;
    if (sg_json_members_at(es, (size_t)(ee - es), img_member, &f, &off) != 0)
        return bad_json(st, es + off, image, "malformed object");
    size_t sl = 0;
    int ok;
    char *split = field_str(f.split, &sl, &ok);
    if (!ok) return bad_json(st, f.split.s, image, "\"split\" is not a string");
    st->seen++;
    count_split(st, split ? split : "");
    int keep = split_wanted(st->want, split ? split : "");
    free(split);
    if (!keep) return 0;
    if (add_path(st, &f, es, image) != 0) return -1;
    vec_push(&st->cap_start, st->cap_off.n);
    return add_sentences(st, f.sentences, image);
}

/* ---- the file --------------------------------------------------------------------------- */

static int top_member(void *user, const char *key, const char *vs, const char *ve)
{
    struct span *images = user;
    if (strcmp(key, "images") != 0) return 0;
    images->s = vs;
    images->e = ve;
    return 1;
}

static int walk_images(struct kp_state *st, size_t len)
{
    struct span v = {NULL, NULL};
    size_t off = 0;
    if (sg_json_members_at(st->data, len, top_member, &v, &off) != 0)
        return bad_json(st, st->data + off, -1, "not a JSON object with an \"images\" array");
    if (!v.s || *v.s != '[')
        return bad_json(st, v.s ? v.s : st->data, -1, "no \"images\" array at the top level");
    struct sg_json_cur j = {v.s + 1, v.e};
    sg_json_ws(&j);
    if (j.p < j.end && *j.p == ']') return 0;
    for (int64_t i = 0;; i++) {
        sg_json_ws(&j);
        const char *es = j.p;
        if (sg_json_skip_value(&j, 1) != 0) return bad_json(st, j.p, i, "malformed value");
        if (add_image(st, es, j.p, i) != 0) return -1;
        sg_json_ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            continue;
        }
        if (j.p < j.end && *j.p == ']') return 0;
        return bad_json(st, j.p, -1, "expected ',' or ']' in \"images\"");
    }
}

static int no_images_error(const struct kp_state *st)
{
    char have[512];
    size_t k = 0;
    have[0] = 0;
    for (int i = 0; i < st->nsplits && k + 8 < sizeof(have); i++)
        k += (size_t)snprintf(have + k, sizeof(have) - k, "%s'%s' %lld", i ? ", " : "",
                              st->split_name[i], (long long)st->split_count[i]);
    return sg_err("%s: no images in split '%s' (%lld images: %s)\n---> HINT: choose the split "
                  "(spec split / --split): test, val, train, restval or all",
                  st->path, st->want, (long long)st->seen, st->seen ? have : "none");
}

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return sg_xstrdup(".");
    if (slash == path) return sg_xstrdup("/");
    char *d = sg_xmalloc((size_t)(slash - path) + 1);
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = 0;
    return d;
}

static int read_json(const char *path, char **data, size_t *len)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > KP_MAX_BYTES)
        return sg_err("%s: %.2f GiB is over the 1 GiB limit for a Karpathy split file\n---> "
                      "HINT: dataset_coco.json is about 150 MB; is this the right file?",
                      path, (double)sb.st_size / (double)(1 << 30));
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) return sg_err("%s: not a regular file", path);
    return sg_read_file(path, data, len);
}

static struct sg_dataset *make_dataset(const struct sg_dataset_spec *spec, struct kp_state *st)
{
    struct sg_captable *im = sg_xcalloc(1, sizeof(*im));
    im->base = spec->image_root ? sg_xstrdup(spec->image_root) : dirname_of(spec->path);
    im->paths = st->paths.p;
    im->path_off = st->path_off.v;
    im->caps = st->caps.p ? st->caps.p : sg_xcalloc(1, 1);
    vec_push(&st->cap_start, st->cap_off.n);
    im->cap_start = st->cap_start.v;
    im->cap_off = st->cap_off.v;
    struct sg_dataset *ds = sg_xcalloc(1, sizeof(*ds));
    ds->ops = &sg_captable_ops;
    ds->kind = "karpathy";
    ds->path = sg_xstrdup(spec->path);
    ds->n = st->path_off.n;
    ds->ncaptions = st->cap_off.n;
    ds->dropped_captions = st->dropped;
    ds->impl = im;
    memset(&st->paths, 0, sizeof(st->paths));
    memset(&st->caps, 0, sizeof(st->caps));
    memset(&st->path_off, 0, sizeof(st->path_off));
    memset(&st->cap_off, 0, sizeof(st->cap_off));
    memset(&st->cap_start, 0, sizeof(st->cap_start));
    return ds;
}

int sg_dataset_open_karpathy(const struct sg_dataset_spec *spec, struct sg_dataset **out)
{
    struct kp_state st = {.path = spec->path, .want = spec->split ? spec->split : "test"};
    if (!st.want[0]) return sg_err("empty split name\n---> HINT: use test, val, train or all");
    char *data;
    size_t len;
    if (read_json(spec->path, &data, &len) != 0) return -1;
    st.data = data;
    int rc = walk_images(&st, len);
    if (rc == 0 && st.path_off.n == 0) rc = no_images_error(&st);
    if (rc == 0) *out = make_dataset(spec, &st);
    state_free(&st);
    free(data);
    return rc;
}
