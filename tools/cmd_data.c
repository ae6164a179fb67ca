/*
 * tools/cmd_data.c — `sogclip data` (data/dataset.h, data/tar.h, data/image.h):
 *   sogclip data verify DATASET [dataset options] [--list N]
 *       opens the dataset, reads and decodes every image; prints counts (images, captions,
 *       classes), caption length statistics (words: min / median / max) and every bad file
 *       with its reason (first N, default 50). Exit 1 when any file is bad.
 *   sogclip data shards DATASET --out DIR [--shard-size 1000] [--resize 256] [--quality 90]
 *                       [dataset options]
 *       writes WebDataset shards DIR/00000.tar ... with members <key>.jpg, <key>.txt
 *       (captions, one per line; absent without captions), <key>.cls (label, when the dataset
 *       has classes) and <key>.json ({"key": global index, "caption": first caption,
 *       "source": ..., "width", "height"}),
 *       plus DIR/sizes.json. Images are decoded, resized (shorter side to --resize when larger;
 *       0 keeps the size; bicubic with antialias) and JPEG-encoded; a JPEG that needs no resize
 *       is copied byte for byte. Unreadable images are skipped and listed; keys number the
 *       written samples 0..N-1 in dataset order (FastCLIP-style global indices). Each shard is
 *       written to a temporary file and renamed.
 *   dataset options: --kind csv|tsv|wds|folder --image-root DIR --image-key COL
 *                    --caption-key COL --sep S --labels FILE --classnames FILE --ignore-json-key
 * Returns a process exit code: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/tar.h"
#include "data/transforms.h"

int sg_cmd_data(int argc, char **argv);

#define MAX_WORDS 1024 /* histogram bins for caption lengths; longer ones share the last bin */

static int data_usage(void)
{
    fprintf(stderr,
            "usage: sogclip data verify DATASET [options] [--list N]\n"
            "       sogclip data shards DATASET --out DIR [--shard-size 1000] [--resize 256]\n"
            "                           [--quality 90] [options]\n"
            "  DATASET: a .csv/.tsv file, WebDataset shards ('dir/{00000..00012}.tar', a\n"
            "  folder of .tar), or an ImageNet-style folder\n"
            "  options: --kind csv|tsv|wds|folder --image-root DIR --image-key COL\n"
            "           --caption-key COL --sep S --labels FILE --classnames FILE\n"
            "           --ignore-json-key\n");
    return 2;
}

/* Parses a dataset option at argv[*i]; returns 1 when consumed, 0 when not a dataset option. */
static int dataset_option(int argc, char **argv, int *i, struct sg_dataset_spec *s)
{
    const char *a = argv[*i];
    int more = *i + 1 < argc;
    const char **dst = NULL;
    if (strcmp(a, "--ignore-json-key") == 0) {
        s->ignore_json_key = 1;
        return 1;
    }
    if (strcmp(a, "--kind") == 0) dst = &s->kind;
    if (strcmp(a, "--image-root") == 0) dst = &s->image_root;
    if (strcmp(a, "--image-key") == 0) dst = &s->image_key;
    if (strcmp(a, "--caption-key") == 0) dst = &s->caption_key;
    if (strcmp(a, "--sep") == 0) dst = &s->separator;
    if (strcmp(a, "--labels") == 0) dst = &s->labels;
    if (strcmp(a, "--classnames") == 0) dst = &s->classnames;
    if (!dst || !more) return 0;
    *dst = argv[++*i];
    return 1;
}

static int count_words(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

/* ---- verify ----------------------------------------------------------------------------- */

struct verify_acc {
    int64_t hist[MAX_WORDS + 1];
    int64_t ncap, dropped, no_caption;
    int maxw;
};

static int64_t hist_quantile(const int64_t *hist, int64_t total, double q)
{
    int64_t want = (int64_t)(q * (double)(total - 1)), seen = 0;
    for (int w = 0; w <= MAX_WORDS; w++) {
        seen += hist[w];
        if (seen > want) return w;
    }
    return MAX_WORDS;
}

static void print_summary(const struct sg_dataset *ds, const struct verify_acc *a,
                          const int64_t *per_class, int nclasses, int64_t nbad)
{
    printf("dataset: %s (%s)\n", ds->path, ds->kind);
    printf("images: %lld\n", (long long)ds->n);
    printf("captions: %lld (dropped: %lld empty or invalid UTF-8; images without a caption: "
           "%lld)\n",
           (long long)a->ncap, (long long)(a->dropped + ds->dropped_captions),
           (long long)a->no_caption);
    if (a->ncap > 0) {
        int minw = 0;
        while (minw < MAX_WORDS && a->hist[minw] == 0) minw++;
        printf("caption words: min %d / median %lld / max %d\n", minw,
               (long long)hist_quantile(a->hist, a->ncap, 0.5), a->maxw);
    }
    printf("classes: %d%s\n", nclasses, nclasses > ds->nclasses ? " (from the labels read)" : "");
    if (nclasses > 0) {
        int64_t lo = INT64_MAX, hi = 0;
        for (int c = 0; c < nclasses; c++) {
            lo = SG_MIN(lo, per_class[c]);
            hi = SG_MAX(hi, per_class[c]);
        }
        printf("images per class: min %lld / max %lld%s\n", (long long)lo, (long long)hi,
               ds->classnames ? " (class names found)" : "");
    }
    printf("bad files: %lld\n", (long long)nbad);
}

static int cmd_verify(int argc, char **argv)
{
    struct sg_dataset_spec spec = {0};
    int list = 50;
    for (int i = 0; i < argc; i++) {
        if (dataset_option(argc, argv, &i, &spec)) continue;
        if (strcmp(argv[i], "--list") == 0 && i + 1 < argc)
            list = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !spec.path)
            spec.path = argv[i];
        else
            return data_usage();
    }
    if (!spec.path) return data_usage();
    struct sg_dataset *ds;
    if (sg_dataset_open(&spec, &ds) != 0) {
        fprintf(stderr, "sogclip data verify: %s\n", sg_last_error());
        return 1;
    }
    char **bad = sg_xcalloc((size_t)ds->n, sizeof(char *));
    int32_t *label = sg_xmalloc(sizeof(int32_t) * (size_t)ds->n);
    struct verify_acc total = {0};
#pragma omp parallel
    {
        struct verify_acc acc = {0};
        struct sg_decoder *dec = sg_decoder_new();
        struct sg_raw_sample raw = {0};
        struct sg_image img = {0};
        struct sg_decode_opts o = {0, 0};
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < ds->n; i++) {
            label[i] = -1;
            int rc = sg_dataset_read(ds, i, &raw);
            if (rc == 0) rc = sg_decode(dec, raw.img, raw.img_len, &o, &img);
            if (rc != 0) {
                char msg[1024];
                const char *e = sg_last_error();
                if (raw.where[0] && !strstr(e, raw.where))
                    snprintf(msg, sizeof(msg), "%s: %s", raw.where, e);
                else
                    snprintf(msg, sizeof(msg), "%s", e);
                bad[i] = sg_xstrdup(msg);
                continue;
            }
            label[i] = raw.label;
            acc.ncap += raw.ncaptions;
            acc.dropped += raw.ndropped;
            if (raw.ncaptions == 0 && (ds->ncaptions != 0)) acc.no_caption++;
            for (int c = 0; c < raw.ncaptions; c++) {
                int w = count_words(raw.captions[c]);
                acc.hist[SG_MIN(w, MAX_WORDS)]++;
                acc.maxw = SG_MAX(acc.maxw, w);
            }
        }
#pragma omp critical
        {
            for (int w = 0; w <= MAX_WORDS; w++) total.hist[w] += acc.hist[w];
            total.ncap += acc.ncap;
            total.dropped += acc.dropped;
            total.no_caption += acc.no_caption;
            total.maxw = SG_MAX(total.maxw, acc.maxw);
        }
        sg_image_free(&img);
        sg_raw_sample_free(&raw);
        sg_decoder_free(dec);
    }
    int nclasses = ds->nclasses; /* wds: classes seen in the cls fields */
    for (int64_t i = 0; i < ds->n; i++) nclasses = SG_MAX(nclasses, label[i] + 1);
    int64_t *per_class = sg_xcalloc((size_t)SG_MAX(nclasses, 1), sizeof(int64_t));
    int64_t nbad = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        if (label[i] >= 0) per_class[label[i]]++;
        if (!bad[i]) continue;
        if (nbad < list) printf("bad: %s\n", bad[i]);
        nbad++;
        free(bad[i]);
    }
    if (nbad > list) printf("... and %lld more bad files\n", (long long)(nbad - list));
    print_summary(ds, &total, per_class, nclasses, nbad);
    free(per_class);
    free(bad);
    free(label);
    sg_dataset_free(ds);
    return nbad > 0 ? 1 : 0;
}

/* ---- shards ----------------------------------------------------------------------------- */

struct encoded {
    uint8_t *jpg; /* malloc'd, or NULL when the sample is bad */
    size_t len;
    int copied; /* jpg points into a copy of the source bytes */
    int w, h;
    int32_t label;
    char *text; /* captions joined by '\n' (newlines inside a caption become spaces) */
    char *first;
    char *where;
    char *err;
};

static void encoded_free(struct encoded *e)
{
    free(e->jpg);
    free(e->text);
    free(e->first);
    free(e->where);
    free(e->err);
    memset(e, 0, sizeof(*e));
}

static char *join_captions(const struct sg_raw_sample *raw)
{
    size_t n = 1;
    for (int c = 0; c < raw->ncaptions; c++) n += strlen(raw->captions[c]) + 1;
    char *s = sg_xmalloc(n), *p = s;
    for (int c = 0; c < raw->ncaptions; c++) {
        if (c) *p++ = '\n';
        for (const char *q = raw->captions[c]; *q; q++)
            *p++ = (*q == '\n' || *q == '\r') ? ' ' : *q;
    }
    *p = 0;
    return s;
}

struct shard_opts {
    int shard_size, resize, quality;
    const char *out;
};

static void encode_one(const struct sg_dataset *ds, int64_t i, const struct shard_opts *so,
                       struct sg_decoder *dec, struct sg_raw_sample *raw, struct sg_image *img,
                       struct sg_image *small, struct encoded *e)
{
    struct sg_decode_opts o = {0, 0};
    int rc = sg_dataset_read(ds, i, raw);
    e->where = sg_xstrdup(raw->where);
    if (rc == 0) rc = sg_decode(dec, raw->img, raw->img_len, &o, img);
    if (rc != 0) {
        e->err = sg_xstrdup(sg_last_error());
        return;
    }
    const struct sg_image *src = img;
    int need = so->resize > 0 && SG_MIN(img->w, img->h) > so->resize;
    if (need) {
        sg_tf_resize_shorter(img, so->resize, SG_INTERP_BICUBIC, 1, small);
        src = small;
    }
    int is_jpeg = raw->img_len > 3 && raw->img[0] == 0xff && raw->img[1] == 0xd8;
    if (!need && is_jpeg) {
        e->jpg = sg_xmalloc(raw->img_len);
        memcpy(e->jpg, raw->img, raw->img_len);
        e->len = raw->img_len;
        e->copied = 1;
    } else if (sg_encode_jpeg(dec, src, so->quality, &e->jpg, &e->len) != 0) {
        e->err = sg_xstrdup(sg_last_error());
        e->jpg = NULL;
        return;
    }
    e->w = src->w;
    e->h = src->h;
    e->label = raw->label;
    e->text = join_captions(raw);
    e->first = sg_xstrdup(raw->ncaptions > 0 ? raw->captions[0] : "");
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int write_sample(struct sg_tar_writer *w, int64_t key, const struct encoded *e,
                        int has_classes)
{
    char name[64];
    snprintf(name, sizeof(name), "%09lld.jpg", (long long)key);
    if (sg_tar_writer_add(w, name, e->jpg, e->len) != 0) return -1;
    snprintf(name, sizeof(name), "%09lld.txt", (long long)key);
    if (e->text[0] && sg_tar_writer_add(w, name, e->text, strlen(e->text)) != 0) return -1;
    if (has_classes && e->label >= 0) {
        char cls[24];
        int k = snprintf(cls, sizeof(cls), "%d", e->label);
        snprintf(name, sizeof(name), "%09lld.cls", (long long)key);
        if (sg_tar_writer_add(w, name, cls, (size_t)k) != 0) return -1;
    }
    char *js = NULL;
    size_t jn = 0;
    FILE *f = open_memstream(&js, &jn);
    SG_CHECK(f, "open_memstream");
    fprintf(f, "{\"key\": %lld, ", (long long)key);
    if (e->text[0]) { /* no "caption" without captions (it would read as an empty one) */
        fprintf(f, "\"caption\": ");
        json_str(f, e->first);
        fprintf(f, ", ");
    }
    fprintf(f, "\"source\": ");
    json_str(f, e->where);
    fprintf(f, ", \"width\": %d, \"height\": %d}", e->w, e->h);
    fclose(f);
    snprintf(name, sizeof(name), "%09lld.json", (long long)key);
    int rc = sg_tar_writer_add(w, name, js, jn);
    free(js);
    return rc;
}

struct shard_state {
    struct sg_tar_writer *w;
    int shard;
    int64_t in_shard, written;
    int64_t *sizes; /* (shard count so far) */
    int sizes_cap;
};

static int shard_finish(struct shard_state *st)
{
    if (!st->w) return 0;
    int rc = sg_tar_writer_finish(st->w);
    st->w = NULL;
    if (st->shard == st->sizes_cap) {
        st->sizes_cap = st->sizes_cap ? st->sizes_cap * 2 : 64;
        st->sizes = sg_xrealloc(st->sizes, sizeof(int64_t) * (size_t)st->sizes_cap);
    }
    st->sizes[st->shard++] = st->in_shard;
    st->in_shard = 0;
    return rc;
}

static int shard_add(struct shard_state *st, const struct shard_opts *so, const struct encoded *e,
                     int has_classes)
{
    if (!st->w) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%05d.tar", so->out, st->shard);
        st->w = sg_tar_writer_open(path);
        if (!st->w) return -1;
    }
    if (write_sample(st->w, st->written, e, has_classes) != 0) {
        sg_tar_writer_abort(st->w);
        st->w = NULL;
        return -1;
    }
    st->written++;
    if (++st->in_shard == so->shard_size) return shard_finish(st);
    return 0;
}

static int write_sizes(const char *out, const struct shard_state *st)
{
    char *js = NULL;
    size_t jn = 0;
    FILE *f = open_memstream(&js, &jn);
    SG_CHECK(f, "open_memstream");
    fprintf(f, "{");
    for (int s = 0; s < st->shard; s++)
        fprintf(f, "%s\n  \"%05d.tar\": %lld", s ? "," : "", s, (long long)st->sizes[s]);
    fprintf(f, "\n}\n");
    fclose(f);
    char path[4096];
    snprintf(path, sizeof(path), "%s/sizes.json", out);
    int rc = sg_write_file_atomic(path, js, jn);
    free(js);
    return rc;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    }
    return sg_err("cannot create folder '%s': %s", path, strerror(errno));
}

/* Decode/resize/encode one chunk in parallel, then append its good samples in order. */
static int shards_run(const struct sg_dataset *ds, const struct shard_opts *so,
                      struct shard_state *st, int64_t *nbad)
{
    int64_t chunk = SG_MAX(so->shard_size, 256);
    struct encoded *enc = sg_xcalloc((size_t)chunk, sizeof(struct encoded));
    int rc = 0;
    for (int64_t c0 = 0; c0 < ds->n && rc == 0; c0 += chunk) {
        int64_t cn = SG_MIN(chunk, ds->n - c0);
#pragma omp parallel
        {
            struct sg_decoder *dec = sg_decoder_new();
            struct sg_raw_sample raw = {0};
            struct sg_image img = {0}, small = {0};
#pragma omp for schedule(dynamic, 8)
            for (int64_t k = 0; k < cn; k++)
                encode_one(ds, c0 + k, so, dec, &raw, &img, &small, &enc[k]);
            sg_image_free(&img);
            sg_image_free(&small);
            sg_raw_sample_free(&raw);
            sg_decoder_free(dec);
        }
        for (int64_t k = 0; k < cn; k++) {
            if (rc == 0 && enc[k].err) {
                fprintf(stderr, "skipped: %s: %s\n", enc[k].where, enc[k].err);
                (*nbad)++;
            } else if (rc == 0) {
                rc = shard_add(st, so, &enc[k], ds->nclasses > 0);
            }
            encoded_free(&enc[k]);
        }
    }
    free(enc);
    return rc;
}

static int cmd_shards(int argc, char **argv)
{
    struct sg_dataset_spec spec = {0};
    struct shard_opts so = {1000, 256, 90, NULL};
    for (int i = 0; i < argc; i++) {
        int more = i + 1 < argc;
        if (dataset_option(argc, argv, &i, &spec)) continue;
        if (strcmp(argv[i], "--out") == 0 && more)
            so.out = argv[++i];
        else if (strcmp(argv[i], "--shard-size") == 0 && more)
            so.shard_size = atoi(argv[++i]);
        else if (strcmp(argv[i], "--resize") == 0 && more)
            so.resize = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quality") == 0 && more)
            so.quality = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !spec.path)
            spec.path = argv[i];
        else
            return data_usage();
    }
    if (!spec.path || !so.out || so.shard_size < 1 || so.resize < 0 || so.quality < 1 ||
        so.quality > 100)
        return data_usage();
    struct sg_dataset *ds;
    if (sg_dataset_open(&spec, &ds) != 0 || make_dir(so.out) != 0) {
        fprintf(stderr, "sogclip data shards: %s\n", sg_last_error());
        return 1;
    }
    struct shard_state st = {0};
    int64_t nbad = 0;
    int rc = shards_run(ds, &so, &st, &nbad);
    if (rc == 0) rc = shard_finish(&st);
    if (rc == 0 && st.written == 0) rc = sg_err("no readable images: nothing written");
    if (rc == 0) rc = write_sizes(so.out, &st);
    if (rc != 0) {
        sg_tar_writer_abort(st.w);
        fprintf(stderr, "sogclip data shards: %s\n", sg_last_error());
    } else {
        printf("sogclip data shards: wrote %lld samples in %d shards to %s (%lld skipped)\n",
               (long long)st.written, st.shard, so.out, (long long)nbad);
    }
    free(st.sizes);
    sg_dataset_free(ds);
    return rc != 0 ? 1 : 0;
}

int sg_cmd_data(int argc, char **argv)
{
    if (argc < 1) return data_usage();
    if (strcmp(argv[0], "verify") == 0) return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[0], "shards") == 0) return cmd_shards(argc - 1, argv + 1);
    return data_usage();
}
