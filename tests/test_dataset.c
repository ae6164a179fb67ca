/*
 * tests/test_dataset.c — datasets (data/dataset.h) on small files written by the test:
 * TSV with several captions per image, a bad-UTF-8 and an empty caption (dropped, counted), a
 * caption starting with a quote (literal in TSV), CRLF lines; CSV with RFC-4180 quoting and an
 * image root; header errors (comma file read as TSV, missing column, unclosed quote); missing
 * image at read; ImageFolder order (sorted classes, sorted walk) with classnames.txt; flat folder
 * + labels file (names, wnids.txt, integer labels); WebDataset shards with json keys, brace
 * expansion, "::" lists, a folder of shards, sizes.json (consistent / stale), the grouping rule,
 * bad json keys, ignore_json_key; brace expansion and UTF-8 validation units. Image payloads are
 * arbitrary bytes here (datasets return encoded bytes; decoding is tested in test_decode).
 * With ../shared/data (SG_SHARED_DATA_DIR): flickr8k/captions_train.tsv (1600 images x 5
 * captions) and imagenette/train (10 classes, 3000 images); skipped with a message otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/tar.h"
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

static void mkdirs(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp, rel);
    for (char *p = path + strlen(tmp) + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    mkdir(path, 0755);
}

static void put(const char *rel, const char *data)
{
    FILE *f = fopen(P(rel), "wb");
    SG_CHECK(f, "%s", P(rel));
    fwrite(data, 1, strlen(data), f);
    fclose(f);
}

static int open_spec(struct sg_dataset_spec *s, struct sg_dataset **ds)
{
    int rc = sg_dataset_open(s, ds);
    if (rc != 0) printf("  open failed: %s\n", sg_last_error());
    return rc;
}

static int caption_is(const struct sg_raw_sample *r, int k, const char *want)
{
    if (k >= r->ncaptions || strcmp(r->captions[k], want) != 0) {
        printf("  caption %d: '%s', want '%s'\n", k, k < r->ncaptions ? r->captions[k] : "(none)",
               want);
        return 0;
    }
    return 1;
}

static int bytes_are(const struct sg_raw_sample *r, const char *want)
{
    return r->img_len == strlen(want) && memcmp(r->img, want, r->img_len) == 0;
}

static void expect_open_error(const char *label, struct sg_dataset_spec *s, const char *want)
{
    struct sg_dataset *ds = NULL;
    int rc = sg_dataset_open(s, &ds);
    int ok = rc == -1 && !ds && strstr(sg_last_error(), want);
    if (!sg_test_true(label, ok)) printf("  rc %d, error: %s\n", rc, rc ? sg_last_error() : "");
    if (rc == 0) sg_dataset_free(ds);
}

/* ---- CSV / TSV ---------------------------------------------------------------------------- */

static void test_tsv(void)
{
    mkdirs("tsv/images");
    put("tsv/images/a.jpg", "IMG-A");
    put("tsv/images/b.jpg", "IMG-B");
    put("tsv/images/c.jpg", "IMG-C");
    put("tsv/captions.tsv", "image\tcaption\n"
                            "images/b.jpg\tA dog runs .\n"
                            "images/a.jpg\tA cat sits .\r\n"
                            "images/b.jpg\tbad \xff\xfe utf8\n"
                            "\n"
                            "images/b.jpg\t   \n"
                            "images/a.jpg\t\"Quoted\" start, and a comma\n"
                            "images/b.jpg\tThe dog is brown . caf\xc3\xa9\n"
                            "images/c.jpg\tOnly one\n"
                            "images/missing.jpg\tno file\n");
    struct sg_dataset_spec s = {.path = P("tsv/captions.tsv")};
    struct sg_dataset *ds;
    if (open_spec(&s, &ds) != 0) return;
    sg_test_true("tsv: kind sniffed", strcmp(ds->kind, "csv") == 0);
    sg_test_true("tsv: 4 images (grouped)", ds->n == 4);
    sg_test_true("tsv: 6 captions kept", ds->ncaptions == 6);
    sg_test_true("tsv: 2 dropped (bad UTF-8, blank)", ds->dropped_captions == 2);
    struct sg_raw_sample r = {0};
    sg_test_true("tsv: sample 0 = first-appearing image b",
                 sg_dataset_read(ds, 0, &r) == 0 && bytes_are(&r, "IMG-B") &&
                     strcmp(r.where, "images/b.jpg") == 0 && r.label == -1);
    sg_test_true("tsv: b has 2 captions in file order",
                 r.ncaptions == 2 && caption_is(&r, 0, "A dog runs .") &&
                     caption_is(&r, 1, "The dog is brown . caf\xc3\xa9"));
    sg_test_true("tsv: a (CRLF stripped, quote kept literally)",
                 sg_dataset_read(ds, 1, &r) == 0 && bytes_are(&r, "IMG-A") && r.ncaptions == 2 &&
                     caption_is(&r, 0, "A cat sits .") &&
                     caption_is(&r, 1, "\"Quoted\" start, and a comma"));
    sg_test_true("tsv: c", sg_dataset_read(ds, 2, &r) == 0 && caption_is(&r, 0, "Only one"));
    int rc = sg_dataset_read(ds, 3, &r);
    sg_test_true("tsv: missing image -> error naming it",
                 rc == -1 && strstr(sg_last_error(), "images/missing.jpg") &&
                     strcmp(r.where, "images/missing.jpg") == 0);
    char w[64];
    sg_dataset_where(ds, 2, w, sizeof(w));
    sg_test_true("tsv: where", strcmp(w, "images/c.jpg") == 0);
    sg_raw_sample_free(&r);
    sg_dataset_free(ds);
}

static void test_csv(void)
{
    mkdirs("csv/root/x");
    put("csv/root/x/a.jpg", "CA");
    put("csv/root/b.jpg", "CB");
    put("csv/list.csv", "id,filepath,title,extra\n"
                        "1,x/a.jpg,\"hello, world\",z\n"
                        "2,\"b.jpg\",\"multi\nline \"\"quoted\"\"\",z\n"
                        "3,x/a.jpg,plain,z\n"
                        "4,b.jpg,,z\n");
    struct sg_dataset_spec s = {.path = P("csv/list.csv"), .image_root = P("csv/root")};
    struct sg_dataset *ds;
    if (open_spec(&s, &ds) != 0) return;
    sg_test_true("csv: 2 images, 3 captions, 1 empty dropped",
                 ds->n == 2 && ds->ncaptions == 3 && ds->dropped_captions == 1);
    struct sg_raw_sample r = {0};
    sg_test_true("csv: quoted comma, image root",
                 sg_dataset_read(ds, 0, &r) == 0 && bytes_are(&r, "CA") && r.ncaptions == 2 &&
                     caption_is(&r, 0, "hello, world") && caption_is(&r, 1, "plain"));
    sg_test_true("csv: quoted newline and doubled quotes",
                 sg_dataset_read(ds, 1, &r) == 0 && bytes_are(&r, "CB") &&
                     caption_is(&r, 0, "multi\nline \"quoted\""));
    sg_raw_sample_free(&r);
    sg_dataset_free(ds);

    /* explicit keys and separator on a semicolon file, paths relative to the file's folder */
    mkdirs("csv2");
    put("csv2/i.png", "PNG");
    put("csv2/d.txt", "path;text\ni.png;semi colon caption\n");
    struct sg_dataset_spec s2 = {.path = P("csv2/d.txt"),
                                 .kind = "csv",
                                 .separator = ";",
                                 .image_key = "path",
                                 .caption_key = "text"};
    if (open_spec(&s2, &ds) == 0) {
        sg_test_true("csv: custom separator and keys, relative to the file",
                     sg_dataset_read(ds, 0, &r) == 0 && bytes_are(&r, "PNG") &&
                         caption_is(&r, 0, "semi colon caption"));
        sg_dataset_free(ds);
    }
    sg_raw_sample_free(&r);

    /* errors */
    put("csv2/comma.tsv", "filepath,title\na.jpg,x\n");
    struct sg_dataset_spec e1 = {.path = P("csv2/comma.tsv")};
    expect_open_error("csv: comma file read as TSV -> separator hint", &e1,
                      "looks like a comma-separated file");
    put("csv2/nocol.csv", "file,title\na.jpg,x\n");
    struct sg_dataset_spec e2 = {.path = P("csv2/nocol.csv")};
    expect_open_error("csv: missing image column lists the columns", &e2,
                      "no image column 'filepath' or 'image' in the header (columns: 'file', "
                      "'title')");
    put("csv2/open.csv", "filepath,title\na.jpg,x\nb.jpg,\"never closed\n\n");
    struct sg_dataset_spec e3 = {.path = P("csv2/open.csv")};
    expect_open_error("csv: unclosed quote names the line", &e3, "line 3: quoted field never");
    put("csv2/empty.csv", "");
    struct sg_dataset_spec e4 = {.path = P("csv2/empty.csv")};
    expect_open_error("csv: empty file", &e4, "empty file");
    struct sg_dataset_spec e5 = {.path = P("csv2/none.csv")};
    expect_open_error("csv: missing file", &e5, "none.csv");
    struct sg_dataset_spec e6 = {.path = P("csv2/d.txt"), .separator = "ab"};
    expect_open_error("csv: bad separator", &e6, "one character");
}

/* ---- folders ---------------------------------------------------------------------------- */

static void test_folder(void)
{
    mkdirs("inet/train/classB");
    mkdirs("inet/train/classA/sub");
    put("inet/train/classB/x.png", "XB");
    put("inet/train/classA/b.jpg", "AB");
    put("inet/train/classA/a.JPEG", "AA");
    put("inet/train/classA/sub/c.jpg", "AC");
    put("inet/train/classA/readme.txt", "not an image");
    put("inet/classnames.txt", "class a\nclass b\n");
    struct sg_dataset_spec s = {.path = P("inet/train")};
    struct sg_dataset *ds;
    if (open_spec(&s, &ds) != 0) return;
    sg_test_true("folder: kind sniffed", strcmp(ds->kind, "folder") == 0);
    sg_test_true("folder: 4 images, 2 classes", ds->n == 4 && ds->nclasses == 2);
    sg_test_true("folder: class ids sorted", strcmp(ds->class_ids[0], "classA") == 0 &&
                                                 strcmp(ds->class_ids[1], "classB") == 0);
    sg_test_true("folder: classnames.txt from the parent",
                 ds->classnames && strcmp(ds->classnames[1], "class b") == 0);
    const char *order[] = {"classA/a.JPEG", "classA/b.jpg", "classA/sub/c.jpg", "classB/x.png"};
    const char *bytes[] = {"AA", "AB", "AC", "XB"};
    const int labels[] = {0, 0, 0, 1};
    struct sg_raw_sample r = {0};
    for (int i = 0; i < 4; i++) {
        char label[64];
        snprintf(label, sizeof(label), "folder: sample %d = %s", i, order[i]);
        sg_test_true(label, sg_dataset_read(ds, i, &r) == 0 && strcmp(r.where, order[i]) == 0 &&
                                bytes_are(&r, bytes[i]) && r.label == labels[i] &&
                                r.ncaptions == 0);
    }
    sg_dataset_free(ds);

    mkdirs("inet/bad/empty_class");
    mkdirs("inet/bad/full");
    put("inet/bad/full/a.jpg", "x");
    struct sg_dataset_spec e = {.path = P("inet/bad"), .kind = "folder"};
    expect_open_error("folder: class without images", &e, "empty_class");

    /* flat val folder + labels file with class names, then with wnids.txt, then integers */
    mkdirs("flat/val");
    put("flat/val/v1.jpg", "V1");
    put("flat/val/v2.jpg", "V2");
    put("flat/val/v3.jpg", "V3");
    put("flat/labels.txt", "v2.jpg classB\nv1.jpg\tclassA\n\n# comment\nv3.jpg   classA\n");
    struct sg_dataset_spec f = {.path = P("flat/val"), .labels = P("flat/labels.txt")};
    if (open_spec(&f, &ds) == 0) {
        int ok = ds->n == 3 && ds->nclasses == 2 && strcmp(ds->class_ids[1], "classB") == 0;
        int lab[3] = {-2, -2, -2};
        for (int i = 0; i < 3 && ok; i++) {
            ok = sg_dataset_read(ds, i, &r) == 0;
            lab[i] = r.label;
        }
        sg_test_true("flat: sorted files, sorted class names",
                     ok && lab[0] == 0 && lab[1] == 1 && lab[2] == 0);
        sg_dataset_free(ds);
    }
    put("flat/wnids.txt", "classC\nclassB\nclassA\n");
    if (open_spec(&f, &ds) == 0) {
        sg_test_true("flat: classes from wnids.txt (sorted)",
                     ds->nclasses == 3 && strcmp(ds->class_ids[2], "classC") == 0 &&
                         sg_dataset_read(ds, 1, &r) == 0 && r.label == 1);
        sg_dataset_free(ds);
    }
    put("flat/labels_int.txt", "v3.jpg 7\nv1.jpg 2\nv2.jpg 0\n");
    struct sg_dataset_spec fi = {.path = P("flat/val"), .labels = P("flat/labels_int.txt")};
    if (open_spec(&fi, &ds) == 0) {
        sg_test_true("flat: integer labels", ds->nclasses == 8 && sg_dataset_read(ds, 0, &r) == 0 &&
                                                 r.label == 2 && sg_dataset_read(ds, 2, &r) == 0 &&
                                                 r.label == 7);
        sg_dataset_free(ds);
    }
    put("flat/labels_bad.txt", "v1.jpg classZ\n");
    struct sg_dataset_spec fb = {.path = P("flat/val"), .labels = P("flat/labels_bad.txt")};
    expect_open_error("flat: unknown class with wnids.txt", &fb, "classZ");
    put("flat/labels_dup.txt", "v1.jpg 1\nv1.jpg 2\n");
    struct sg_dataset_spec fd = {.path = P("flat/val"), .labels = P("flat/labels_dup.txt")};
    expect_open_error("flat: file listed twice", &fd, "listed twice");
    /* unlabelled flat folder */
    struct sg_dataset_spec fu = {.path = P("flat/val")};
    if (open_spec(&fu, &ds) == 0) {
        sg_test_true("flat: unlabelled folder", ds->n == 3 && ds->nclasses == 0 &&
                                                    sg_dataset_read(ds, 2, &r) == 0 &&
                                                    bytes_are(&r, "V3") && r.label == -1);
        sg_dataset_free(ds);
    }
    sg_raw_sample_free(&r);
}

/* ---- WebDataset ------------------------------------------------------------------------- */

static void add(struct sg_tar_writer *w, const char *name, const char *data)
{
    SG_CHECK(sg_tar_writer_add(w, name, data, strlen(data)) == 0, "%s", sg_last_error());
}

/* Two shards of 3 samples; sample s (shard order) has json key 5 - s, image "IMG<key>",
 * captions "cap <key> a\ncap <key> b". Extra members exercise the grouping rule. */
static void write_shards(const char *dir, int with_keys)
{
    mkdirs(dir);
    int s = 0;
    for (int shard = 0; shard < 2; shard++) {
        char path[512], name[64], data[128];
        snprintf(path, sizeof(path), "%s/%s/%05d.tar", tmp, dir, shard);
        struct sg_tar_writer *w = sg_tar_writer_open(path);
        SG_CHECK(w, "%s", sg_last_error());
        if (shard == 1) add(w, "README", "no extension: ignored");
        for (int k = 0; k < 3; k++, s++) {
            int key = 5 - s;
            snprintf(name, sizeof(name), "d/smp%d.jpg", s);
            snprintf(data, sizeof(data), "IMG%d", key);
            add(w, name, data);
            snprintf(name, sizeof(name), "d/smp%d.seg.png", s);
            add(w, name, "a segmentation mask, not the image");
            snprintf(name, sizeof(name), "d/smp%d.txt", s);
            snprintf(data, sizeof(data), "cap %d a\ncap %d b\n", key, key);
            add(w, name, data);
            if (with_keys) {
                snprintf(name, sizeof(name), "d/smp%d.json", s);
                snprintf(data, sizeof(data), "{\"url\": \"x\", \"key\": \"%d\", \"n\": [1, {}]}",
                         key);
                add(w, name, data);
            }
            if (shard == 0 && k == 1) add(w, "d/noimage.txt", "a sample without image");
        }
        SG_CHECK(sg_tar_writer_finish(w) == 0, "%s", sg_last_error());
    }
}

static void check_wds(const char *label, const char *spec_path, int expect_keys)
{
    struct sg_dataset_spec s = {.path = spec_path};
    struct sg_dataset *ds;
    char l[128];
    snprintf(l, sizeof(l), "wds %s: opens with 6 samples", label);
    if (!sg_test_true(l, open_spec(&s, &ds) == 0 && ds->n == 6)) {
        if (ds) sg_dataset_free(ds);
        return;
    }
    struct sg_raw_sample r = {0};
    int ok = 1;
    for (int i = 0; i < 6 && ok; i++) {
        char img[16], c0[32], c1[32];
        int key = expect_keys ? i : 5 - i; /* without keys: shard order */
        snprintf(img, sizeof(img), "IMG%d", key);
        snprintf(c0, sizeof(c0), "cap %d a", key);
        snprintf(c1, sizeof(c1), "cap %d b", key);
        ok = sg_dataset_read(ds, i, &r) == 0 && bytes_are(&r, img) && r.ncaptions == 2 &&
             caption_is(&r, 0, c0) && caption_is(&r, 1, c1) && r.ndropped == 0;
        if (!ok) printf("  sample %d: where %s\n", i, r.where);
    }
    snprintf(l, sizeof(l), "wds %s: image, captions by %s", label,
             expect_keys ? "json key" : "shard order");
    sg_test_true(l, ok);
    char w[128];
    sg_dataset_where(ds, 0, w, sizeof(w));
    snprintf(l, sizeof(l), "wds %s: where names shard and key", label);
    sg_test_true(l, strcmp(w, expect_keys ? "00001.tar:d/smp5" : "00000.tar:d/smp0") == 0);
    sg_raw_sample_free(&r);
    sg_dataset_free(ds);
}

static void test_wds(void)
{
    write_shards("wds", 1);
    check_wds("braces", P("wds/{00000..00001}.tar"), 1);
    char both[600];
    snprintf(both, sizeof(both), "%s::%s", P("wds/00000.tar"), P("wds/00001.tar"));
    check_wds("'::' list", both, 1);
    check_wds("folder", P("wds"), 1);
    put("wds/sizes.json", "{\"00000.tar\": 3, \"00001.tar\": 3, \"other.tar\": 9}");
    check_wds("sizes.json consistent", P("wds/{00000..00001}.tar"), 1);
    put("wds/sizes.json", "{\"00000.tar\": 3, \"00001.tar\": 4}");
    struct sg_dataset_spec st = {.path = P("wds/{00000..00001}.tar")};
    expect_open_error("wds: stale sizes.json names the shard", &st,
                      "00001.tar' has 3 samples but sizes.json says 4");
    put("wds/sizes.json", "[1, 2]");
    expect_open_error("wds: malformed sizes.json", &st, "sizes.json: not a JSON object");
    unlink(P("wds/sizes.json"));

    struct sg_dataset_spec ig = {.path = P("wds/{00000..00001}.tar"), .ignore_json_key = 1};
    struct sg_dataset *ds;
    struct sg_raw_sample r = {0};
    if (open_spec(&ig, &ds) == 0) {
        sg_test_true("wds: ignore_json_key -> shard order",
                     sg_dataset_read(ds, 0, &r) == 0 && bytes_are(&r, "IMG5"));
        sg_dataset_free(ds);
    }
    write_shards("wds_nokey", 0);
    check_wds("no json", P("wds_nokey/{00000..00001}.tar"), 0);

    /* bad keys: duplicate, out of range, not an integer, missing in some samples */
    const char *bad_json[] = {"{\"key\": 0}", "{\"key\": 6}",   "{\"key\": \"0x1\"}",
                              "{}",           "{\"key\": 1.5}", "{\"key\": "};
    const char *want[] = {"used twice",
                          "outside [0, 6)",
                          "not a non-negative integer",
                          "has no json key",
                          "not a non-negative integer",
                          "malformed json"};
    for (int t = 0; t < 6; t++) {
        mkdirs("wds_bad");
        char path[512];
        snprintf(path, sizeof(path), "%s/wds_bad/00000.tar", tmp);
        struct sg_tar_writer *w = sg_tar_writer_open(path);
        for (int s = 0; s < 6; s++) {
            char name[32], data[64];
            snprintf(name, sizeof(name), "%03d.jpg", s);
            add(w, name, "IMG");
            snprintf(name, sizeof(name), "%03d.json", s);
            snprintf(data, sizeof(data), "{\"key\": %d}", s);
            add(w, name, s == 3 ? bad_json[t] : data);
        }
        sg_tar_writer_finish(w);
        struct sg_dataset_spec b = {.path = path};
        char label[96];
        snprintf(label, sizeof(label), "wds: bad json key '%s' names the shard", bad_json[t]);
        expect_open_error(label, &b, want[t]);
        sg_test_true("wds: ... and the sample", strstr(sg_last_error(), "wds_bad/00000.tar") &&
                                                    strstr(sg_last_error(), "003"));
    }

    /* duplicate field, txt with invalid UTF-8, json caption key, cls label, webp */
    char path[512];
    snprintf(path, sizeof(path), "%s/wds_misc.tar", tmp);
    struct sg_tar_writer *w = sg_tar_writer_open(path);
    add(w, "a.jpg", "A");
    add(w, "a.txt", "good\nbad \xc0\xaf\n   \n");
    add(w, "a.cls", "3");
    add(w, "b.png", "B");
    add(w, "b.json", "{\"caption\": [\"j\\u00e9 one\", \"two \\ud83d\\ude00\"], \"key\": 9}");
    add(w, "c.webp", "C");
    sg_tar_writer_finish(w);
    struct sg_dataset_spec m = {.path = path, .ignore_json_key = 1};
    if (open_spec(&m, &ds) == 0) {
        sg_test_true("wds misc: 3 samples", ds->n == 3);
        sg_test_true("wds misc: txt lines, bad ones dropped, cls label",
                     sg_dataset_read(ds, 0, &r) == 0 && r.ncaptions == 1 &&
                         caption_is(&r, 0, "good") && r.ndropped == 2 && r.label == 3);
        sg_test_true("wds misc: json caption array with \\u escapes",
                     sg_dataset_read(ds, 1, &r) == 0 && bytes_are(&r, "B") && r.ncaptions == 2 &&
                         caption_is(&r, 0, "j\xc3\xa9 one") &&
                         caption_is(&r, 1, "two \xf0\x9f\x98\x80"));
        sg_test_true("wds misc: webp -> read error",
                     sg_dataset_read(ds, 2, &r) == -1 && strstr(sg_last_error(), "webp"));
        sg_dataset_free(ds);
    }
    w = sg_tar_writer_open(path);
    add(w, "a.jpg", "A");
    add(w, "a.jpg", "A again");
    sg_tar_writer_finish(w);
    expect_open_error("wds: duplicate field", &m, "duplicate field 'jpg'");
    struct sg_dataset_spec miss = {.path = P("wds/{00000..00003}.tar")};
    expect_open_error("wds: missing shard", &miss, "00002.tar");
    sg_raw_sample_free(&r);
}

/* ---- units ------------------------------------------------------------------------------ */

static int expands_to(const char *spec, const char *const *want, int n)
{
    char **v;
    int64_t k = sg_expand_braces(spec, &v);
    int ok = k == n;
    for (int64_t i = 0; i < k; i++) {
        if (ok && strcmp(v[i], want[i]) != 0) {
            printf("  %s [%lld] = '%s', want '%s'\n", spec, (long long)i, v[i], want[i]);
            ok = 0;
        }
        free(v[i]);
    }
    if (k > 0) free(v);
    if (k != n) printf("  %s: %lld names, want %d\n", spec, (long long)k, n);
    return ok;
}

static void test_units(void)
{
    const char *a[] = {"s/00008.tar", "s/00009.tar", "s/00010.tar"};
    sg_test_true("braces: zero-padded range", expands_to("s/{00008..00010}.tar", a, 3));
    const char *b[] = {"a1x", "a2x", "b1x", "b2x"};
    sg_test_true("braces: alternatives x range", expands_to("{a,b}{1..2}x", b, 4));
    const char *c[] = {"p", "q/3", "q/2", "z"};
    sg_test_true("braces: '::' and descending", expands_to("p::q/{3..2}::z", c, 4));
    const char *d[] = {"xa", "xb", "xc"};
    sg_test_true("braces: nested", expands_to("x{a,{b,c}}", d, 3));
    char **v;
    sg_test_true("braces: unbalanced", sg_expand_braces("a{1..2", &v) == -1);
    sg_test_true("braces: stray }", sg_expand_braces("a}b", &v) == -1);
    sg_test_true("braces: huge range refused", sg_expand_braces("{0..99999999}", &v) == -1);
    sg_test_true("utf8: ascii and 4-byte", sg_utf8_valid("ab\xf0\x9f\x98\x80", 6));
    sg_test_true("utf8: overlong", !sg_utf8_valid("\xc0\x80", 2));
    sg_test_true("utf8: surrogate", !sg_utf8_valid("\xed\xa0\x80", 3));
    sg_test_true("utf8: past U+10FFFF", !sg_utf8_valid("\xf4\x90\x80\x80", 4));
    sg_test_true("utf8: truncated", !sg_utf8_valid("\xe2\x82", 2));
    struct sg_dataset_spec k = {.path = "x", .kind = "parquet"};
    expect_open_error("unknown kind", &k, "unknown dataset kind 'parquet'");
}

/* ---- shared data ------------------------------------------------------------------------ */

static void test_shared(void)
{
#ifdef SG_SHARED_DATA_DIR
    const char *dir = SG_SHARED_DATA_DIR;
    char path[1024];
    snprintf(path, sizeof(path), "%s/flickr8k/captions_train.tsv", dir);
    if (access(path, R_OK) != 0) {
        printf("  %s not found: shared-data checks skipped\n", path);
        return;
    }
    struct sg_dataset_spec s = {.path = path};
    struct sg_dataset *ds;
    struct sg_raw_sample r = {0};
    if (open_spec(&s, &ds) == 0) {
        sg_test_true("flickr8k train: 1600 images, 8000 captions, none dropped",
                     ds->n == 1600 && ds->ncaptions == 8000 && ds->dropped_captions == 0);
        int ok = 1;
        for (int64_t i = 0; i < ds->n && ok; i += 97)
            ok = sg_dataset_read(ds, i, &r) == 0 && r.ncaptions == 5 && r.img_len > 1000 &&
                 r.img[0] == 0xff && r.img[1] == 0xd8;
        sg_test_true("flickr8k train: JPEG bytes and 5 captions per image", ok);
        sg_dataset_free(ds);
    }
    snprintf(path, sizeof(path), "%s/imagenette/train", dir);
    struct sg_dataset_spec f = {.path = path};
    if (open_spec(&f, &ds) == 0) {
        sg_test_true("imagenette train: 3000 images, 10 classes",
                     ds->n == 3000 && ds->nclasses == 10);
        sg_test_true("imagenette: wnids and class names",
                     strcmp(ds->class_ids[0], "n01440764") == 0 && ds->classnames &&
                         strcmp(ds->classnames[0], "tench") == 0 &&
                         strcmp(ds->classnames[9], "parachute") == 0);
        sg_test_true("imagenette: first and last labels",
                     sg_dataset_read(ds, 0, &r) == 0 && r.label == 0 &&
                         sg_dataset_read(ds, 2999, &r) == 0 && r.label == 9);
        sg_dataset_free(ds);
    }
    sg_raw_sample_free(&r);
#else
    printf("  SG_SHARED_DATA_DIR not defined: shared-data checks skipped\n");
#endif
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/sg_test_dataset_XXXXXX");
    SG_CHECK(mkdtemp(tmp), "mkdtemp");
    test_units();
    test_tsv();
    test_csv();
    test_folder();
    test_wds();
    test_shared();
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmp);
    return sg_test_summary("test_dataset");
}
