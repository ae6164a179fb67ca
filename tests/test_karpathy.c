/*
 * tests/test_karpathy.c — Karpathy split JSON datasets (data/ds_karpathy.c) and the shared JSON
 * helpers (data/json.h). A small dataset_coco-style file (test images with 1 and 5 sentences,
 * a train image with 0, a val image with 4 of which a blank, an invalid-UTF-8 and a \u0000 one
 * are dropped, a restval image; \u escapes with a surrogate pair; filepath present and absent)
 * plus tiny JPEGs (sg_encode_jpeg) in a temp folder: counts per split, captions, paths, image
 * bytes, kind sniffing, image_root; malformed files (truncated, wrong types, deep nesting, bad
 * escapes) fail with the file and byte offset; every truncation and single-byte corruption of the
 * file opens or fails without crashing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/json.h"
#include "tests/testutil.h"

static char tmp[256];

static const char *P(const char *rel)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmp, rel);
    return buf[k];
}

static void put_bytes(const char *rel, const void *data, size_t n)
{
    FILE *f = fopen(P(rel), "wb");
    SG_CHECK(f, "%s", P(rel));
    SG_CHECK(fwrite(data, 1, n, f) == n, "write %s", rel);
    fclose(f);
}

static void put(const char *rel, const char *s)
{
    put_bytes(rel, s, strlen(s));
}

/* The five test images: a distinct solid colour each; their JPEG bytes kept for comparison. */
static const char *img_rel[5] = {"val2014/a.jpg", "b.jpg", "train2014/c.jpg", "val2014/d.jpg",
                                 "val2014/e.jpg"};
static uint8_t *jpg[5];
static size_t jpg_len[5];

static void write_images(void)
{
    mkdir(P("val2014"), 0755);
    mkdir(P("train2014"), 0755);
    struct sg_decoder *d = sg_decoder_new();
    struct sg_image im = {.w = 8, .h = 6};
    im.px = sg_xmalloc(8 * 6 * 3); /* (6, 8, 3) */
    for (int i = 0; i < 5; i++) {
        for (int p = 0; p < 8 * 6 * 3; p++) im.px[p] = (uint8_t)(40 * i + p % 3 * 50);
        SG_CHECK(sg_encode_jpeg(d, &im, 90, &jpg[i], &jpg_len[i]) == 0, "%s", sg_last_error());
        put_bytes(img_rel[i], jpg[i], jpg_len[i]);
    }
    free(im.px);
    sg_decoder_free(d);
}

/* Karpathy's layout (extra keys such as tokens / imgid / sentid / cocoid are ignored). */
static const char *good_json =
    "{\"images\": [\n"
    " {\"filepath\": \"val2014\", \"sentids\": [0], \"filename\": \"a.jpg\", \"imgid\": 0,\n"
    "  \"split\": \"test\", \"sentences\": [{\"tokens\": [\"a\", \"caf\\u00e9\"], \"raw\": \"A "
    "caf\\u00e9 by the sea.\", \"imgid\": 0, \"sentid\": 0}], \"cocoid\": 42},\n"
    " {\"filename\": \"b.jpg\", \"split\": \"test\", \"sentences\": [{\"raw\": \"one\"},\n"
    "  {\"raw\": \"two \\ud83d\\ude00\"}, {\"raw\": \"say \\\"three\\\"\"}, {\"raw\": \"four\\/"
    "4\"},\n  {\"raw\": \"\\u65e5\\u672c five\"}]},\n"
    " {\"split\": \"train\", \"filepath\": \"train2014\", \"filename\": \"c.jpg\", "
    "\"sentences\": []},\n"
    " {\"filepath\": \"val2014\", \"filename\": \"d.jpg\", \"split\": \"val\", \"sentences\": [\n"
    "  {\"raw\": \"  \"}, {\"raw\": \"bad \xff utf8\"}, {\"raw\": \"x\\u0000y\"}, {\"raw\": "
    "\"ok val\"}]},\n"
    " {\"filepath\": \"val2014\", \"filename\": \"e.jpg\", \"split\": \"restval\", "
    "\"sentences\": [{\"raw\": \"restval caption\"}]}\n"
    "], \"dataset\": \"coco\"}\n";

static struct sg_dataset *open_split(const char *split, const char *root)
{
    struct sg_dataset_spec s = {.path = P("dataset_coco.json"), .split = split, .image_root = root};
    struct sg_dataset *ds = NULL;
    if (sg_dataset_open(&s, &ds) != 0) printf("  open failed: %s\n", sg_last_error());
    return ds;
}

/* Read sample i and compare path, captions and bytes with image `img`. */
static void check_sample(const struct sg_dataset *ds, int64_t i, int img, const char *const *caps,
                         int ncaps)
{
    struct sg_raw_sample r = {0};
    char label[128], where[512];
    snprintf(label, sizeof(label), "%s sample %lld (%s)", ds->kind, (long long)i, img_rel[img]);
    int rc = sg_dataset_read(ds, i, &r);
    if (rc != 0) printf("  read: %s\n", sg_last_error());
    sg_test_true(label, rc == 0);
    sg_dataset_where(ds, i, where, sizeof(where));
    sg_test_true("  where", strcmp(r.where, img_rel[img]) == 0 && strcmp(where, img_rel[img]) == 0);
    sg_test_true("  image bytes", r.img_len == jpg_len[img] && !memcmp(r.img, jpg[img], r.img_len));
    sg_test_true("  label -1", r.label == -1);
    int same = r.ncaptions == ncaps;
    for (int k = 0; same && k < ncaps; k++) same = strcmp(r.captions[k], caps[k]) == 0;
    if (!same)
        for (int k = 0; k < r.ncaptions; k++)
            printf("    got caption %d: '%s'\n", k, r.captions[k]);
    sg_test_true("  captions", same);
    sg_raw_sample_free(&r);
}

static void test_splits(void)
{
    static const char *a_caps[] = {"A caf\xc3\xa9 by the sea."};
    static const char *b_caps[] = {"one", "two \xf0\x9f\x98\x80", "say \"three\"", "four/4",
                                   "\xe6\x97\xa5\xe6\x9c\xac five"};
    static const char *d_caps[] = {"ok val"};
    static const char *e_caps[] = {"restval caption"};
    struct sg_dataset *ds = open_split(NULL, NULL); /* default: test */
    sg_test_true("test split: sniffed karpathy, 2 images, 6 captions, 0 dropped",
                 ds && !strcmp(ds->kind, "karpathy") && ds->n == 2 && ds->ncaptions == 6 &&
                     ds->dropped_captions == 0 && ds->nclasses == 0);
    if (ds) check_sample(ds, 0, 0, a_caps, 1), check_sample(ds, 1, 1, b_caps, 5);
    sg_dataset_free(ds);
    ds = open_split("train", NULL);
    sg_test_true("train split: 1 image, 0 captions", ds && ds->n == 1 && ds->ncaptions == 0);
    if (ds) check_sample(ds, 0, 2, NULL, 0);
    sg_dataset_free(ds);
    ds = open_split("val", NULL);
    sg_test_true("val split: 1 image, 1 caption, 3 dropped (blank, bad UTF-8, NUL)",
                 ds && ds->n == 1 && ds->ncaptions == 1 && ds->dropped_captions == 3);
    if (ds) check_sample(ds, 0, 3, d_caps, 1);
    sg_dataset_free(ds);
    ds = open_split("train,restval", NULL);
    sg_test_true("train,restval: 2 images", ds && ds->n == 2 && ds->ncaptions == 1);
    if (ds) check_sample(ds, 0, 2, NULL, 0), check_sample(ds, 1, 4, e_caps, 1);
    sg_dataset_free(ds);
    ds = open_split("all", tmp);
    sg_test_true("all (explicit image_root): 5 images, 8 captions, 3 dropped",
                 ds && ds->n == 5 && ds->ncaptions == 8 && ds->dropped_captions == 3);
    for (int i = 0; ds && i < 5; i++) {
        struct sg_raw_sample r = {0};
        sg_test_true("  all: read", sg_dataset_read(ds, i, &r) == 0 &&
                                        !strcmp(r.where, img_rel[i]) && r.img_len == jpg_len[i]);
        sg_raw_sample_free(&r);
    }
    sg_dataset_free(ds);
}

static int error_has(const char *label, int rc, const char *want)
{
    const char *e = rc != 0 ? sg_last_error() : "";
    int ok = rc != 0 && strstr(e, want) != NULL;
    if (!ok) printf("  %s: rc %d, error '%s' (want '%s')\n", label, rc, e, want);
    return sg_test_true(label, ok);
}

static void test_errors(void)
{
    struct sg_dataset *ds = NULL;
    struct sg_dataset_spec s = {.path = P("dataset_coco.json"), .split = "nope"};
    error_has("unknown split lists the splits", sg_dataset_open(&s, &ds), "'test' 2");
    s.split = "";
    error_has("empty split", sg_dataset_open(&s, &ds), "empty split");
    s = (struct sg_dataset_spec){.path = P("missing.json")};
    error_has("missing file names it", sg_dataset_open(&s, &ds), "missing.json");
    s = (struct sg_dataset_spec){.path = P("dataset_coco.json"), .image_root = P("nowhere")};
    int rc = sg_dataset_open(&s, &ds);
    sg_test_true("wrong image_root opens", rc == 0);
    if (rc == 0) {
        struct sg_raw_sample r = {0};
        error_has("  read names the missing image", sg_dataset_read(ds, 0, &r),
                  "nowhere/val2014/a.jpg");
        sg_test_true("  where set on failure", !strcmp(r.where, "val2014/a.jpg"));
        sg_raw_sample_free(&r);
        sg_dataset_free(ds);
    }
}

struct bad_case {
    const char *json, *want;
};

static void test_malformed(void)
{
    static char deep[400];
    strcpy(deep, "{\"images\": [");
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    static const struct bad_case cases[] = {
        {"", "malformed JSON at byte 0"},
        {"[1, 2]", "malformed JSON at byte 0"},
        {"{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"test\"",
         "malformed JSON at byte 49"},
        {"{\"images\": [{\"filename\": \"a\", \"split\": \"test\"} x]}",
         "malformed JSON at byte 47"},
        {"{\"images\": [\"\\", "malformed JSON at byte 14"},
        {"{\"imgs\": []}", "no \"images\" array"},
        {"{\"images\": 5}", "no \"images\" array"},
        {"{\"images\": [5]}", "image 0 (byte 12): not an object"},
        {"{\"images\": [{\"split\": \"test\"}]}", "image 0 (byte 12): no \"filename\" string"},
        {"{\"images\": [{\"filename\": 3, \"split\": \"test\"}]}", "no \"filename\" string"},
        {"{\"images\": [{\"filename\": \"\", \"split\": \"test\"}]}", "invalid \"filename\""},
        {"{\"images\": [{\"filename\": \"a\\u0000b\", \"split\": \"test\"}]}", "invalid"},
        {"{\"images\": [{\"filename\": \"a\\u00zz\", \"split\": \"test\"}]}", "no \"filename\""},
        {"{\"images\": [{\"filename\": \"a\", \"filepath\": [], \"split\": \"test\"}]}",
         "invalid \"filename\" / \"filepath\""},
        {"{\"images\": [{\"filename\": \"a\", \"split\": 7}]}", "\"split\" is not a string"},
        {"{\"images\": [{\"filename\": \"a\", \"split\": \"test\", \"sentences\": {}}]}",
         "\"sentences\" is not an array"},
        {"{\"images\": [{}, {\"filename\": \"a\", \"split\": \"test\"}, 1]}", "image 2"},
        {"{\"images\": []}", "no images in split 'test' (0 images: none)"},
        {deep, "malformed JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put("bad.json", cases[i].json);
        struct sg_dataset_spec s = {.path = P("bad.json")};
        struct sg_dataset *ds = NULL;
        char label[64];
        snprintf(label, sizeof(label), "malformed case %zu", i);
        error_has(label, sg_dataset_open(&s, &ds), cases[i].want);
        if (!strstr(sg_last_error(), "bad.json")) error_has("  names the file", 1, "bad.json");
    }
}

/* Every prefix and every single-byte corruption of the good file: open (and read all) or fail
 * with a message; never crash (run under ASan/UBSan with -DSOGCLIP_SANITIZE=ON). */
static void test_fuzz(void)
{
    size_t n = strlen(good_json);
    char *buf = sg_xmalloc(n + 1);
    const char subst[] = "\"\\{]:0";
    int64_t opened = 0, failed = 0, silent = 0;
    for (size_t len = 0; len <= n; len++) {
        for (size_t pos = 0; pos < (len == n ? n : 1); pos++) {
            for (size_t c = 0; c < (len == n ? sizeof(subst) - 1 : 1); c++) {
                memcpy(buf, good_json, n);
                if (len == n) buf[pos] = subst[c];
                put_bytes("fuzz.json", buf, len);
                struct sg_dataset_spec s = {.path = P("fuzz.json"), .split = "all"};
                struct sg_dataset *ds = NULL;
                if (sg_dataset_open(&s, &ds) != 0) {
                    failed++;
                    silent += sg_last_error()[0] == 0;
                    continue;
                }
                opened++;
                struct sg_raw_sample r = {0};
                for (int64_t i = 0; i < ds->n; i++) (void)sg_dataset_read(ds, i, &r);
                sg_raw_sample_free(&r);
                sg_dataset_free(ds);
            }
        }
    }
    free(buf);
    printf("  fuzz: %lld opened, %lld failed cleanly\n", (long long)opened, (long long)failed);
    sg_test_true("fuzz: no crash, every failure has a message", silent == 0 && opened > 0);
}

/* The shared helpers directly: decode, members with error offsets, int. */
static void test_json_units(void)
{
    const char *s = "\"a\\u00e9\\ud83d\\ude00\\ud800x\\n\"";
    size_t len = 0;
    char *d = sg_json_decode(s, s + strlen(s), &len);
    sg_test_true("decode: escapes, pair, lone surrogate -> U+FFFD",
                 d && len == 12 && !memcmp(d, "a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx\n", 12));
    free(d);
    const char *u = "\"ab";
    sg_test_true("decode: unterminated -> NULL", !sg_json_decode(u, u + 3, &len));
    const char *obj = "{\"k\": [1, {\"x\": \"]\"}], \"key\": \"0012\"}";
    const char *vs, *ve;
    int64_t v = -1;
    sg_test_true("find + int (string of digits)",
                 sg_json_find(obj, strlen(obj), "key", &vs, &ve) == 1 &&
                     sg_json_int(vs, ve, &v) == 0 && v == 12);
    sg_test_true("find: absent -> 0", sg_json_find(obj, strlen(obj), "nope", &vs, &ve) == 0);
    struct sg_json_cur j = {"\"ab\\", NULL};
    j.end = j.p + 4;
    sg_test_true("skip_string: trailing backslash stays in bounds",
                 sg_json_skip_string(&j) == -1 && j.p == j.end);
}

static int count_fn(void *user, const char *key, const char *vs, const char *ve)
{
    (void)key, (void)vs, (void)ve;
    ++*(int *)user;
    return 0;
}

static void test_members_offset(void)
{
    const char *bad = "{\"a\": 1, \"b\" 2}";
    size_t off = 0;
    int n = 0;
    int rc = sg_json_members_at(bad, strlen(bad), count_fn, &n, &off);
    sg_test_true("members_at: one member visited, error at byte 13",
                 rc == -1 && n == 1 && off == 13);
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/sg_test_karpathy_XXXXXX");
    SG_CHECK(mkdtemp(tmp), "mkdtemp");
    write_images();
    put("dataset_coco.json", good_json);
    test_json_units();
    test_members_offset();
    test_splits();
    test_errors();
    test_malformed();
    test_fuzz();
    for (int i = 0; i < 5; i++) free(jpg[i]);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmp);
    return sg_test_summary("test_karpathy");
}
