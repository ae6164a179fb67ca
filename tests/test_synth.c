/*
 * tests/test_synth.c — the synthetic shapes dataset (data/synth.h, `sogclip data synth`).
 * No reference file: the checks are against the generator's own description of every image
 * (sg_synth_sample), with the word lists and position regions written out here independently:
 *  - descriptions: ranges, positions inside their named region, two objects with different
 *    colours and positions that do not overlap, backgrounds far from object colours, balanced
 *    val classes, the class index = folder sort order;
 *  - captions (API, 3000 images x 4): distinct, mention the colour and shape of every object,
 *    and no colour / shape / size / position that is not in the image;
 *  - files (40 train / 10 val at 64 px): every file present, TSV rows and captions.txt equal to
 *    the API's captions, zero-shot folders = the single-object val images (byte copies),
 *    classnames.txt in folder order, both read back through sg_dataset_open (tsv and folder);
 *  - pixels of the decoded JPEGs: the object's colour at its centre (ring: on its band), the
 *    centroid of pixels of that colour inside the named region, the decoded image close to the
 *    raw render;
 *  - determinism: re-running is a no-op (.complete), a fresh folder is byte-identical, a damaged
 *    folder (missing, corrupt, stale files) is repaired to the same bytes, another seed differs,
 *    the CLI writes the same bytes; bad options and a foreign folder are rejected.
 */
#define _GNU_SOURCE /* nftw */
#include <ctype.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/synth.h"
#include "tests/testutil.h"

int sg_cmd_synth(int argc, char **argv); /* tools/cmd_synth.c */

static char tmp[256];

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
    static char buf[8][1024];
    static int k;
    k = (k + 1) % 8;
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, rel);
    return buf[k];
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- word lists (the caption contract, written out independently) ---------------------- */

static int colour_of_word(const char *w)
{
    static const char *const v[] = {"red",    "green", "blue",  "yellow", "purple",
                                    "orange", "white", "black", "violet"};
    for (int k = 0; k < 9; k++)
        if (strcmp(w, v[k]) == 0) return k == 8 ? SG_COL_PURPLE : k;
    return -1;
}

static int shape_of_word(const char *w)
{
    static const struct {
        const char *w;
        int s;
    } v[] = {
        {"circle", SG_SHAPE_CIRCLE},     {"disk", SG_SHAPE_CIRCLE}, {"square", SG_SHAPE_SQUARE},
        {"triangle", SG_SHAPE_TRIANGLE}, {"star", SG_SHAPE_STAR},   {"cross", SG_SHAPE_CROSS},
        {"plus", SG_SHAPE_CROSS},        {"ring", SG_SHAPE_RING},   {"donut", SG_SHAPE_RING}};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        if (strcmp(w, v[k].w) == 0) return v[k].s;
    return -1;
}

static int size_of_word(const char *w)
{
    if (!strcmp(w, "small") || !strcmp(w, "little") || !strcmp(w, "tiny")) return SG_SIZE_SMALL;
    if (!strcmp(w, "large") || !strcmp(w, "big")) return SG_SIZE_LARGE;
    return -1;
}

static int pos_of_word(const char *w)
{
    if (!strcmp(w, "left")) return SG_POS_LEFT;
    if (!strcmp(w, "right")) return SG_POS_RIGHT;
    if (!strcmp(w, "top") || !strcmp(w, "upper")) return SG_POS_TOP;
    if (!strcmp(w, "bottom") || !strcmp(w, "lower")) return SG_POS_BOTTOM;
    if (!strcmp(w, "center") || !strcmp(w, "middle")) return SG_POS_CENTER;
    return -1;
}

/* Checks one caption against d; returns 1 when consistent (prints the first problems). */
static int caption_ok(const struct sg_synth_desc *d, const char *cap)
{
    int seen_col[2] = {0, 0}, seen_shape[2] = {0, 0}, bad = 0;
    char w[64];
    const char *p = cap;
    while (*p) {
        while (*p && !isalpha((unsigned char)*p)) p++;
        size_t n = 0;
        while (isalpha((unsigned char)p[n]) && n + 1 < sizeof w) {
            w[n] = (char)tolower((unsigned char)p[n]);
            n++;
        }
        w[n] = 0;
        p += n;
        if (n == 0) break;
        int c = colour_of_word(w), s = shape_of_word(w), z = size_of_word(w), q = pos_of_word(w);
        int match = 0;
        for (int k = 0; k < d->nobj; k++) {
            const struct sg_synth_object *o = &d->obj[k];
            if (c >= 0 && o->colour == c) seen_col[k] = match = 1;
            if (s >= 0 && o->shape == s) seen_shape[k] = match = 1;
            if ((z >= 0 && o->size == z) || (q >= 0 && o->pos == q)) match = 1;
        }
        if ((c >= 0 || s >= 0 || z >= 0 || q >= 0) && !match) bad = 1;
    }
    for (int k = 0; k < d->nobj; k++) bad |= !seen_col[k] || !seen_shape[k];
    if (bad)
        printf("  caption '%s' does not fit image %lld (%s %s %s %s%s%s)\n", cap,
               (long long)d->index, sg_synth_size_name(d->obj[0].size),
               sg_synth_colour_name(d->obj[0].colour), sg_synth_shape_name(d->obj[0].shape),
               sg_synth_pos_name(d->obj[0].pos), d->nobj == 2 ? " + " : "",
               d->nobj == 2 ? sg_synth_colour_name(d->obj[1].colour) : "");
    return !bad;
}

/* ---- descriptions and captions through the API ---------------------------------------- */

static int in_region(int pos, float x, float y, float margin)
{
    switch (pos) {
    case SG_POS_LEFT:
        return x < 0.5f - margin && fabsf(y - 0.5f) < margin;
    case SG_POS_RIGHT:
        return x > 0.5f + margin && fabsf(y - 0.5f) < margin;
    case SG_POS_TOP:
        return y < 0.5f - margin && fabsf(x - 0.5f) < margin;
    case SG_POS_BOTTOM:
        return y > 0.5f + margin && fabsf(x - 0.5f) < margin;
    default:
        return fabsf(x - 0.5f) < margin && fabsf(y - 0.5f) < margin;
    }
}

static int dist2(const uint8_t *a, const uint8_t *b)
{
    int s = 0;
    for (int c = 0; c < 3; c++) s += ((int)a[c] - b[c]) * ((int)a[c] - b[c]);
    return s;
}

/* Bounding radius of a shape in units of r: triangle circumradius 1.15, star 1.1, square
 * corner 0.82 * sqrt(2), cross corner |(1, 0.32)|. */
static float extent(int shape)
{
    switch (shape) {
    case SG_SHAPE_TRIANGLE:
        return 1.15f;
    case SG_SHAPE_STAR:
        return 1.1f;
    case SG_SHAPE_SQUARE:
        return 0.82f * sqrtf(2.0f);
    case SG_SHAPE_CROSS:
        return sqrtf(1.0f + 0.32f * 0.32f);
    default:
        return 1.0f;
    }
}

static void test_classes(void)
{
    char names[SG_SYNTH_NCLASSES][64];
    int ok = 1, seen[SG_SYNTH_NCLASSES] = {0};
    for (int c = 0; c < SG_SYNTH_NCOLOURS; c++)
        for (int s = 0; s < SG_SYNTH_NSHAPES; s++) {
            int k = sg_synth_class(c, s), c2 = -1, s2 = -1;
            ok &= k >= 0 && k < SG_SYNTH_NCLASSES && !seen[k];
            if (k < 0 || k >= SG_SYNTH_NCLASSES) continue;
            seen[k] = 1;
            snprintf(names[k], sizeof names[k], "%s_%s", sg_synth_colour_name(c),
                     sg_synth_shape_name(s));
            sg_synth_class_attrs(k, &c2, &s2);
            ok &= c2 == c && s2 == s;
            char got[64];
            sg_synth_class_name(k, '_', got, sizeof got);
            ok &= strcmp(got, names[k]) == 0;
        }
    sg_test_true("class index is a bijection onto 0..47 with inverse and names", ok);
    int sorted = 1;
    for (int k = 0; k + 1 < SG_SYNTH_NCLASSES; k++) sorted &= strcmp(names[k], names[k + 1]) < 0;
    sg_test_true("class index = strcmp order of the folder names", sorted);
}

static void test_descriptions(void)
{
    int ok_range = 1, ok_region = 1, ok_pair = 1, ok_bg = 1, ok_label = 1, ok_val = 1;
    int npairs = 0, shapes[SG_SYNTH_NSHAPES] = {0}, cols[SG_SYNTH_NCOLOURS] = {0};
    for (int split = 0; split < 2; split++)
        for (int64_t i = 0; i < 3000; i++) {
            struct sg_synth_desc d, d2;
            sg_synth_sample(7, split, i, &d);
            sg_synth_sample(7, split, i, &d2);
            ok_range &= memcmp(&d, &d2, sizeof d) == 0;
            ok_range &= d.nobj == 1 || d.nobj == 2;
            for (int k = 0; k < d.nobj; k++) {
                const struct sg_synth_object *o = &d.obj[k];
                ok_range &= o->shape >= 0 && o->shape < SG_SYNTH_NSHAPES && o->colour >= 0 &&
                            o->colour < SG_SYNTH_NCOLOURS && o->size >= 0 && o->size < 2 &&
                            o->pos >= 0 && o->pos < SG_SYNTH_NPOS;
                ok_range &= o->size == SG_SIZE_LARGE ? o->r >= 0.17f : o->r <= 0.14f;
                ok_region &= in_region(o->pos, o->cx, o->cy, 0.15f);
                ok_bg &= dist2(sg_synth_bg_rgb(d.bg), sg_synth_colour_rgb(o->colour)) >= 10000;
                shapes[o->shape]++;
                cols[o->colour]++;
            }
            if (d.nobj == 2) {
                npairs++;
                const struct sg_synth_object *a = &d.obj[0], *b = &d.obj[1];
                float dx = a->cx - b->cx, dy = a->cy - b->cy;
                float need = extent(a->shape) * a->r + extent(b->shape) * b->r;
                ok_pair &=
                    a->colour != b->colour && a->pos != b->pos && dx * dx + dy * dy >= need * need;
            }
            ok_label &= d.nobj == 1 ? d.label == sg_synth_class(d.obj[0].colour, d.obj[0].shape)
                                    : d.label == -1;
            if (split == SG_SYNTH_VAL) {
                int c, s;
                sg_synth_class_attrs((int)(i % SG_SYNTH_NCLASSES), &c, &s);
                (void)c;
                ok_val &= d.obj[0].colour == (int)(i % SG_SYNTH_NCLASSES) / SG_SYNTH_NSHAPES &&
                          d.obj[0].shape == (int)(i % SG_SYNTH_NCLASSES) % SG_SYNTH_NSHAPES;
            }
        }
    sg_test_true("descriptions deterministic, attributes in range, sizes separated", ok_range);
    sg_test_true("object centres inside their named position region", ok_region);
    sg_test_true("two objects: different colours and positions, no overlap", ok_pair);
    sg_test_true("background RGB distance >= 100 from every object colour", ok_bg);
    sg_test_true("label = class of the single object, -1 for two objects", ok_label);
    sg_test_true("val cycles through the classes (balanced zero-shot split)", ok_val);
    sg_test_true("about 30% of images have two objects",
                 npairs > 6000 * 0.25 && npairs < 6000 * 0.35);
    int all = 1;
    for (int k = 0; k < SG_SYNTH_NSHAPES; k++) all &= shapes[k] > 800;
    for (int k = 0; k < SG_SYNTH_NCOLOURS; k++) all &= cols[k] > 600;
    sg_test_true("every shape and colour occurs often", all);
    struct sg_synth_desc a, b;
    sg_synth_sample(0, 0, 5, &a);
    sg_synth_sample(1, 0, 5, &b);
    int differ = memcmp(&a.obj, &b.obj, sizeof a.obj) != 0;
    sg_synth_sample(0, 1, 5, &b);
    differ &= memcmp(&a.obj, &b.obj, sizeof a.obj) != 0;
    sg_test_true("seed and split change the description", differ);
}

static void test_captions(void)
{
    int ok = 1, distinct = 1, nbad = 0;
    char caps[4][SG_SYNTH_CAPTION_MAX], again[4][SG_SYNTH_CAPTION_MAX];
    int templates_seen = 0;
    char first_words[64][16] = {{0}};
    for (int64_t i = 0; i < 3000; i++) {
        struct sg_synth_desc d;
        sg_synth_sample(3, (int)(i % 2), i, &d);
        sg_synth_captions(&d, 4, caps);
        sg_synth_captions(&d, 4, again);
        for (int k = 0; k < 4; k++) ok &= strcmp(caps[k], again[k]) == 0;
        for (int k = 0; k < 4; k++) {
            if (!caption_ok(&d, caps[k]) && ++nbad > 5) ok = 0;
            if (nbad > 0) ok = 0;
            ok &= strlen(caps[k]) > 4 && !strchr(caps[k], '\t') && !strchr(caps[k], '\n');
            for (int j = 0; j < k; j++) distinct &= strcmp(caps[j], caps[k]) != 0;
            char fw[16] = {0};
            sscanf(caps[k], "%15s", fw);
            int found = 0;
            for (int t = 0; t < templates_seen; t++) found |= strcmp(first_words[t], fw) == 0;
            if (!found && templates_seen < 64) strcpy(first_words[templates_seen++], fw);
        }
    }
    sg_test_true("captions deterministic and consistent with their image", ok);
    sg_test_true("captions of an image are distinct", distinct);
    sg_test_true("captions vary (many different opening words)", templates_seen >= 10);
}

/* ---- files ------------------------------------------------------------------------------- */

static void opts_small(struct sg_synth_opts *o, const char *dir, uint64_t seed)
{
    sg_synth_opts_default(o);
    o->dir = dir;
    o->size = 64;
    o->ntrain = 40;
    o->nval = 10;
    o->seed = seed;
}

static int generate(const struct sg_synth_opts *o, struct sg_synth_stats *st)
{
    int rc = sg_synth_generate(o, st);
    if (rc != 0) printf("  generate %s failed: %s\n", o->dir, sg_last_error());
    return rc;
}

/* Tree checksum: FNV-1a over sorted relative paths and contents. */
struct tree {
    char **names;
    int n, cap;
};
static struct tree *g_tree;
static size_t g_root_len;

static int tree_visit(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)f;
    if (type != FTW_F) return 0;
    if (g_tree->n == g_tree->cap) {
        g_tree->cap = g_tree->cap ? 2 * g_tree->cap : 256;
        g_tree->names = sg_xrealloc(g_tree->names, sizeof(char *) * (size_t)g_tree->cap);
    }
    g_tree->names[g_tree->n++] = sg_xstrdup(path + g_root_len + 1);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* Returns the checksum; *nfiles the number of files. */
static uint64_t tree_hash(const char *root, int *nfiles)
{
    struct tree t = {0};
    g_tree = &t;
    g_root_len = strlen(root);
    SG_CHECK(nftw(root, tree_visit, 16, FTW_PHYS) == 0, "nftw %s", root);
    qsort(t.names, (size_t)t.n, sizeof(char *), cmp_str);
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < t.n; i++) {
        char path[1024], *data = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", root, t.names[i]);
        SG_CHECK(sg_read_file(path, &data, &len) == 0, "%s", sg_last_error());
        h = fnv(h, t.names[i], strlen(t.names[i]) + 1);
        h = fnv(h, data, len);
        free(data);
        free(t.names[i]);
    }
    free(t.names);
    *nfiles = t.n;
    return h;
}

static int count_lines(const char *path, char ***lines)
{
    char *data = NULL;
    size_t len = 0;
    if (sg_read_file(path, &data, &len) != 0) return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++) n += data[i] == '\n';
    char **v = sg_xcalloc((size_t)n + 1, sizeof(char *));
    char *p = data;
    for (int k = 0; k < n; k++) {
        char *e = strchr(p, '\n');
        *e = 0;
        v[k] = sg_xstrdup(p);
        p = e + 1;
    }
    free(data);
    *lines = v;
    return n;
}

static void free_lines(char **v, int n)
{
    for (int k = 0; k < n; k++) free(v[k]);
    free(v);
}

static int count_jpgs(const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.jpg$'", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f && fscanf(f, "%d", &n) != 1) n = -1;
    if (f) pclose(f);
    return n;
}

/* TSV rows and captions.txt equal the API's captions, images exist. */
static void check_tsv(const char *dir, int split, int64_t nimg, uint64_t seed, char **train_caps)
{
    const char *name = split == SG_SYNTH_TRAIN ? "train" : "val";
    char path[512], **rows = NULL;
    snprintf(path, sizeof path, "%s/%s.tsv", dir, name);
    int n = count_lines(path, &rows);
    int ok = n == 1 + 2 * nimg && strcmp(rows[0], "image\tcaption") == 0;
    for (int64_t i = 0; ok && i < nimg; i++) {
        struct sg_synth_desc d;
        char caps[2][SG_SYNTH_CAPTION_MAX], want[600];
        sg_synth_sample(seed, split, i, &d);
        sg_synth_captions(&d, 2, caps);
        for (int k = 0; k < 2; k++) {
            snprintf(want, sizeof want, "images/%s/%06lld.jpg\t%s", name, (long long)i, caps[k]);
            if (strcmp(rows[1 + 2 * i + k], want) != 0) {
                printf("  %s row %lld: '%s', want '%s'\n", name, (long long)(2 * i + k),
                       rows[1 + 2 * i + k], want);
                ok = 0;
            }
            if (train_caps) ok &= strcmp(train_caps[2 * i + k], caps[k]) == 0;
            ok &= caption_ok(&d, caps[k]);
        }
        snprintf(path, sizeof path, "%s/images/%s/%06lld.jpg", dir, name, (long long)i);
        ok &= exists(path);
    }
    char label[128];
    snprintf(label, sizeof label, "%s.tsv: header, %lld rows = API captions, images exist%s", name,
             (long long)(2 * nimg), train_caps ? ", captions.txt equal" : "");
    sg_test_true(label, ok);
    if (n > 0) free_lines(rows, n);
}

static void check_zeroshot(const char *dir, int64_t nval, uint64_t seed)
{
    int ok = 1, expected = 0, npresent = 0;
    char present[SG_SYNTH_NCLASSES][64];
    for (int c = 0; c < SG_SYNTH_NCLASSES; c++) {
        char cls[64], path[512];
        sg_synth_class_name(c, '_', cls, sizeof cls);
        snprintf(path, sizeof path, "%s/zeroshot/val/%s", dir, cls);
        int want = 0;
        for (int64_t i = 0; i < nval; i++) {
            struct sg_synth_desc d;
            sg_synth_sample(seed, SG_SYNTH_VAL, i, &d);
            if (d.label != c) continue;
            want++;
            char a[600], b[600], *da = NULL, *db = NULL;
            size_t la = 0, lb = 0;
            snprintf(a, sizeof a, "%s/%06lld.jpg", path, (long long)i);
            snprintf(b, sizeof b, "%s/images/val/%06lld.jpg", dir, (long long)i);
            if (sg_read_file(a, &da, &la) != 0 || sg_read_file(b, &db, &lb) != 0) {
                printf("  %s\n", sg_last_error());
                ok = 0;
            } else {
                ok &= la == lb && memcmp(da, db, la) == 0;
            }
            free(da);
            free(db);
        }
        int got = want ? count_jpgs(path) : exists(path) ? -1 : 0;
        if (got != want) printf("  %s: %d files, want %d\n", path, got, want);
        ok &= got == want;
        expected += want;
        if (want) sg_synth_class_name(c, ' ', present[npresent++], sizeof present[0]);
    }
    sg_test_true("zeroshot/val: a folder per class present, holding exactly the single-object "
                 "val images (byte copies)",
                 ok && expected > 0);
    char **lines = NULL, path[512];
    snprintf(path, sizeof path, "%s/zeroshot/classnames.txt", dir);
    int n = count_lines(path, &lines), ok2 = n == npresent;
    for (int c = 0; ok2 && c < n; c++) ok2 &= strcmp(lines[c], present[c]) == 0;
    sg_test_true("classnames.txt: '<colour> <shape>' per class folder, in folder order", ok2);
    if (n > 0) free_lines(lines, n);
    snprintf(path, sizeof path, "%s/zeroshot/templates.txt", dir);
    n = count_lines(path, &lines);
    ok2 = n >= 2;
    for (int k = 0; k < n; k++) ok2 &= strstr(lines[k], "{}") != NULL;
    sg_test_true("templates.txt: prompt templates with {}", ok2);
    if (n > 0) free_lines(lines, n);
    /* Read back through the dataset layer. */
    struct sg_dataset *ds = NULL;
    struct sg_dataset_spec spec = {0};
    spec.path = path;
    snprintf(path, sizeof path, "%s/zeroshot/val", dir);
    int rc = sg_dataset_open(&spec, &ds);
    if (rc != 0) printf("  %s\n", sg_last_error());
    int ok3 = rc == 0 && ds->nclasses == npresent && ds->classnames && ds->n == expected;
    struct sg_raw_sample r = {0};
    for (int64_t i = 0; ok3 && i < ds->n; i++) {
        ok3 &= sg_dataset_read(ds, i, &r) == 0;
        int64_t idx = strtoll(strchr(r.where, '/') + 1, NULL, 10);
        struct sg_synth_desc d;
        sg_synth_sample(seed, SG_SYNTH_VAL, idx, &d);
        ok3 &= r.label >= 0 && r.label < ds->nclasses && d.label >= 0;
        if (!ok3) break;
        char want[64];
        sg_synth_class_name(d.label, ' ', want, sizeof want);
        ok3 &= strcmp(ds->classnames[r.label], want) == 0;
    }
    sg_test_true("zeroshot/val opens as a folder dataset: labels and class names match", ok3);
    sg_raw_sample_free(&r);
    if (ds) sg_dataset_free(ds);
    snprintf(path, sizeof path, "%s/train.tsv", dir);
    rc = sg_dataset_open(&spec, &ds);
    if (rc != 0) printf("  %s\n", sg_last_error());
    int ok4 = rc == 0 && ds->n == 40 && ds->ncaptions == 80;
    for (int64_t i = 0; ok4 && i < ds->n; i++) {
        ok4 &= sg_dataset_read(ds, i, &r) == 0 && r.ncaptions == 2 && r.img_len > 100;
        ok4 &= r.img[0] == 0xFF && r.img[1] == 0xD8;
    }
    sg_test_true("train.tsv opens as a csv dataset: 40 images with 2 captions each", ok4);
    sg_raw_sample_free(&r);
    if (ds) sg_dataset_free(ds);
}

/* Nearest of the palette colours and the image's background colour: a colour index, or -1 for
 * the background. */
static int nearest_colour(const struct sg_synth_desc *d, const float *m)
{
    int best = -1;
    float bd = 0;
    for (int c = -1; c < SG_SYNTH_NCOLOURS; c++) {
        const uint8_t *ref = c < 0 ? d->bg_rgb : sg_synth_colour_rgb(c);
        float s = 0;
        for (int k = 0; k < 3; k++) s += (m[k] - ref[k]) * (m[k] - ref[k]);
        if (c == -1 || s < bd) {
            bd = s;
            best = c;
        }
    }
    return best;
}

/* The decoded image shows each object's colour at its position. Returns 1 when it does. */
static int pixels_ok(const struct sg_synth_desc *d, const struct sg_image *im)
{
    int ok = 1;
    for (int k = 0; k < d->nobj; k++) {
        const struct sg_synth_object *o = &d->obj[k];
        float cx = o->cx * (float)im->w, cy = o->cy * (float)im->h, rad = o->r * (float)im->w;
        float lo = o->shape == SG_SHAPE_RING ? 0.68f * rad : 0.0f;
        float hi = o->shape == SG_SHAPE_RING ? 0.87f * rad : SG_MAX(0.3f * rad, 0.75f);
        float m[3] = {0, 0, 0}, cnt = 0;
        for (int y = 0; y < im->h; y++)
            for (int x = 0; x < im->w; x++) {
                float dx = (float)x + 0.5f - cx, dy = (float)y + 0.5f - cy;
                float r = sqrtf(dx * dx + dy * dy);
                if (r < lo || r > hi) continue;
                const uint8_t *p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
                for (int c = 0; c < 3; c++) m[c] += p[c];
                cnt++;
            }
        for (int c = 0; c < 3; c++) m[c] /= SG_MAX(cnt, 1.0f);
        int got = cnt > 0 ? nearest_colour(d, m) : -2;
        /* Centroid of the pixels classified as this object's colour. */
        double sx = 0, sy = 0, n = 0;
        for (int y = 0; y < im->h; y++)
            for (int x = 0; x < im->w; x++) {
                const uint8_t *p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
                if (dist2(p, o->rgb) > 60 * 60) continue;
                sx += x + 0.5;
                sy += y + 0.5;
                n++;
            }
        int region =
            n > 0 && in_region(o->pos, (float)(sx / n / im->w), (float)(sy / n / im->h), 0.12f);
        if (got != o->colour || !region) {
            printf("  image %lld object %d (%s %s %s): centre colour %s (%.0f,%.0f,%.0f), "
                   "centroid of its colour (%.2f, %.2f) from %.0f pixels\n",
                   (long long)d->index, k, sg_synth_colour_name(o->colour),
                   sg_synth_shape_name(o->shape), sg_synth_pos_name(o->pos),
                   got >= 0 ? sg_synth_colour_name(got) : "background", m[0], m[1], m[2],
                   n > 0 ? sx / n / im->w : -1.0, n > 0 ? sy / n / im->h : -1.0, n);
            ok = 0;
        }
    }
    return ok;
}

static void check_pixels(const char *dir, int64_t ntrain, int64_t nval, uint64_t seed, int size)
{
    struct sg_decoder *dec = sg_decoder_new();
    struct sg_image im = {0};
    uint8_t *raw = sg_xmalloc((size_t)size * (size_t)size * 3);
    int ok = 1, ok_close = 1, nimg = 0;
    double worst = 0;
    for (int split = 0; split < 2; split++)
        for (int64_t i = 0; i < (split ? nval : ntrain); i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/images/%s/%06lld.jpg", dir, split ? "val" : "train",
                     (long long)i);
            if (sg_decode_file(dec, path, NULL, &im) != 0) {
                printf("  %s\n", sg_last_error());
                ok = 0;
                continue;
            }
            struct sg_synth_desc d;
            sg_synth_sample(seed, split, i, &d);
            ok &= im.w == size && im.h == size && pixels_ok(&d, &im);
            sg_synth_render(&d, size, size, raw);
            double mad = 0;
            for (int64_t k = 0; k < (int64_t)size * size * 3; k++)
                mad += fabs((double)im.px[k] - raw[k]);
            mad /= (double)size * size * 3;
            worst = SG_MAX(worst, mad);
            ok_close &= mad < 6.0;
            nimg++;
        }
    printf("  decoded vs raw render: worst mean |diff| %.2f over %d images\n", worst, nimg);
    sg_test_true("decoded JPEGs: object colours at their positions", ok && nimg == ntrain + nval);
    sg_test_true("decoded JPEGs: mean |JPEG - raw render| < 6", ok_close);
    /* The raw render too, at the default size: exact fill colour at a solid shape's centre. */
    int ok_raw = 1;
    uint8_t *big = sg_xmalloc(64 * 64 * 3);
    for (int64_t i = 0; i < 500; i++) {
        struct sg_synth_desc d;
        sg_synth_sample(seed, SG_SYNTH_TRAIN, i, &d);
        sg_synth_render(&d, 64, 64, big);
        struct sg_image bi = {64, 64, big, 0};
        ok_raw &= pixels_ok(&d, &bi);
        const struct sg_synth_object *o = &d.obj[0];
        if (o->shape == SG_SHAPE_RING) continue;
        int x = (int)(o->cx * 64), y = (int)(o->cy * 64);
        ok_raw &= memcmp(big + ((size_t)y * 64 + (size_t)x) * 3, o->rgb, 3) == 0;
    }
    sg_test_true("raw 64 px renders: fill colour exact at the centre, colours at positions",
                 ok_raw);
    free(big);
    free(raw);
    sg_image_free(&im);
    sg_decoder_free(dec);
}

static void test_files(void)
{
    char a[300], b[300], c[300], e[300];
    snprintf(a, sizeof a, "%s/a", tmp);
    snprintf(b, sizeof b, "%s/b/nested", tmp);
    snprintf(c, sizeof c, "%s/c", tmp);
    snprintf(e, sizeof e, "%s/cli", tmp);
    struct sg_synth_opts o;
    struct sg_synth_stats st;
    opts_small(&o, a, 0);
    int zs = 0;
    for (int64_t i = 0; i < 10; i++) {
        struct sg_synth_desc d;
        sg_synth_sample(0, SG_SYNTH_VAL, i, &d);
        zs += d.nobj == 1;
    }
    int rc = generate(&o, &st);
    sg_test_true("generate 40/10 at 64 px", rc == 0 && !st.skipped);
    printf("  %lld files written, %lld zero-shot images, %.3f s\n", (long long)st.written,
           (long long)st.zeroshot_images, st.seconds);
    sg_test_true("stats: images written, captions and zero-shot images counted",
                 st.written == 50 + zs && st.kept == 0 && st.removed == 0 &&
                     st.train_captions == 80 && st.val_captions == 20 && st.zeroshot_images == zs);
    const char *files[] = {"train.tsv",
                           "val.tsv",
                           "captions.txt",
                           "README.txt",
                           ".complete",
                           ".synth",
                           "zeroshot/classnames.txt",
                           "zeroshot/templates.txt"};
    int ok = 1;
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++)
        if (!exists(P("a/%s", files[k]))) {
            printf("  missing %s\n", files[k]);
            ok = 0;
        }
    sg_test_true("all text files present", ok);
    sg_test_true("40 train and 10 val images",
                 count_jpgs(P("a/images/train")) == 40 && count_jpgs(P("a/images/val")) == 10);
    char **caps = NULL;
    int ncap = count_lines(P("a/captions.txt"), &caps);
    sg_test_true("captions.txt: 80 lines", ncap == 80);
    if (ncap == 80) check_tsv(a, SG_SYNTH_TRAIN, 40, 0, caps);
    if (ncap > 0) free_lines(caps, ncap);
    check_tsv(a, SG_SYNTH_VAL, 10, 0, NULL);
    check_zeroshot(a, 10, 0);
    check_pixels(a, 40, 10, 0, 64);

    /* Determinism and idempotence. */
    int na = 0, nb = 0;
    uint64_t ha = tree_hash(a, &na);
    rc = generate(&o, &st);
    int na2 = 0;
    sg_test_true("re-run with the same options is skipped (.complete)",
                 rc == 0 && st.skipped && tree_hash(a, &na2) == ha && na2 == na);
    o.force = 1;
    rc = generate(&o, &st);
    sg_test_true("--force re-run rewrites nothing (all bytes already right)",
                 rc == 0 && !st.skipped && st.written == 0 && st.kept == 50 + zs &&
                     tree_hash(a, &na2) == ha);
    o.force = 0;
    opts_small(&o, b, 0);
    rc = generate(&o, &st);
    sg_test_true("fresh folder (nested path) with the same options is byte-identical",
                 rc == 0 && tree_hash(b, &nb) == ha && nb == na);
    /* Damage b: no .complete, one image missing, one corrupt, stale and temp files. */
    unlink(P("b/nested/.complete"));
    unlink(P("b/nested/images/train/000003.jpg"));
    FILE *f = fopen(P("b/nested/images/val/000001.jpg"), "wb");
    fputs("garbage", f);
    fclose(f);
    f = fopen(P("b/nested/images/train/000999.jpg"), "wb");
    fclose(f);
    f = fopen(P("b/nested/images/train/000005.jpg.tmp"), "wb");
    fclose(f);
    f = fopen(P("b/nested/zeroshot/val/red_circle/000002.jpg"), "wb");
    fclose(f);
    rc = generate(&o, &st);
    printf("  repair: %lld written, %lld kept, %lld removed\n", (long long)st.written,
           (long long)st.kept, (long long)st.removed);
    int good_zs2 = 0;
    {
        struct sg_synth_desc d;
        sg_synth_sample(0, SG_SYNTH_VAL, 2, &d);
        good_zs2 = d.label == sg_synth_class(SG_COL_RED, SG_SHAPE_CIRCLE);
    }
    sg_test_true("damaged folder repaired to the same bytes (resume)",
                 rc == 0 && st.written == 2 + good_zs2 && st.removed == 3 - good_zs2 &&
                     tree_hash(b, &nb) == ha && nb == na);
    /* Fewer val images in the same folder: stale ones are removed. */
    o.nval = 4;
    rc = generate(&o, &st);
    sg_test_true("smaller val count: stale val and zero-shot images removed",
                 rc == 0 && count_jpgs(P("b/nested/images/val")) == 4 && st.removed >= 6);
    /* Another seed. */
    opts_small(&o, c, 1);
    rc = generate(&o, &st);
    char *x = NULL, *y = NULL;
    size_t lx = 0, ly = 0;
    int differ = rc == 0 && sg_read_file(P("a/train.tsv"), &x, &lx) == 0 &&
                 sg_read_file(P("c/train.tsv"), &y, &ly) == 0 && (lx != ly || memcmp(x, y, lx));
    free(x);
    free(y);
    int nc = 0;
    sg_test_true("another seed gives other captions and images", differ && tree_hash(c, &nc) != ha);
    /* The command line. */
    char *argv[] = {e, "--size", "64", "--train", "40", "--val", "10", "--quiet"};
    rc = sg_cmd_synth(8, argv);
    int ne = 0;
    sg_test_true("sogclip data synth (CLI) writes the same bytes",
                 rc == 0 && tree_hash(e, &ne) == ha && ne == na);
    char *bad1[] = {e, "--size"}, *bad2[] = {e, "--bogus", "3"}, *bad3[] = {"--seed", "-1", e};
    sg_test_true("CLI usage errors exit 2",
                 sg_cmd_synth(2, bad1) == 2 && sg_cmd_synth(3, bad2) == 2 &&
                     sg_cmd_synth(3, bad3) == 2 && sg_cmd_synth(0, NULL) == 2);
}

static void test_errors(void)
{
    struct sg_synth_opts o;
    struct sg_synth_stats st;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/foreign", tmp);
    mkdir(dir, 0755);
    FILE *f = fopen(P("foreign/notes.txt"), "wb");
    fputs("mine", f);
    fclose(f);
    opts_small(&o, dir, 0);
    int rc = sg_synth_generate(&o, &st);
    sg_test_true("a non-empty folder that is not a synth dataset is refused",
                 rc == -1 && strstr(sg_last_error(), "not a synth dataset") != NULL);
    sg_test_true("the foreign folder is untouched", !exists(P("foreign/images")));
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    opts_small(&o, dir, 0);
    o.size = 8;
    rc = sg_synth_generate(&o, &st);
    sg_test_true("image size 8 rejected", rc == -1 && strstr(sg_last_error(), "size") != NULL);
    o.size = 32;
    o.ncaptions = 9;
    rc = sg_synth_generate(&o, &st);
    sg_test_true("9 captions rejected", rc == -1 && strstr(sg_last_error(), "captions") != NULL);
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/sg_test_synth_XXXXXX");
    SG_CHECK(mkdtemp(tmp), "mkdtemp");
    test_classes();
    test_descriptions();
    test_captions();
    test_files();
    test_errors();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmp);
    return sg_test_summary("test_synth");
}
