/*
 * bench/bench_data.c — data pipeline throughput: JPEG decode (data/image.c) + RandomResizedCrop
 * (224, scale (0.08, 1), ratio (3/4, 4/3), bilinear, antialias) + RandomHorizontalFlip +
 * ToTensor/Normalize (ImageNet mean/std) (data/transforms.c), through the real loader
 * (data/loader.h: worker threads, batches of 32, prefetch 2), with 1 and 2 worker threads.
 * Peer: bench/torch_data.py (PIL + torchvision, torch DataLoader); bench/data_compare.py runs
 * both and prints the ratio table.
 *
 *   bench_data [--data DIR[,DIR...]] [--limit N] [--reps R] [--threads 1,2] [--batch B]
 *              [--size S]
 * DIR defaults to ../shared/data/imagenette/train,../shared/data/imagenette/val. Every *.jpg
 * below the DIRs (two levels deep at most) is listed, all sorted by path, and N of them taken
 * evenly spaced (file floor(i * total / N)); torch_data.py takes the same files. The files are
 * read into memory first (an in-memory sg_dataset serves them), so the disk is not measured.
 * Per thread count T it measures (each the best of R epochs after one warm-up epoch; 3R for
 * raw, whose epochs are the shortest):
 *   raw       TurboJPEG full-size decode to RGB alone (tjDecompress2, ISLOW as PIL), T threads
 *             each decoding every T-th file (the ceiling for a full-resolution pipeline)
 *   pipeline  the loader, T workers: decode + augment into (B, 3, S, S) batches
 *   direct    a plain per-thread loop (decode + sg_augment, no loader) for comparison
 * Output: human-readable lines and "RESULT<TAB>what<TAB>T<TAB>images/s" lines.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/transforms.h"

#ifndef SG_SHARED_DATA_DIR
#define SG_SHARED_DATA_DIR "../shared/data"
#endif

#define MAX_THREADS 16

struct file {
    uint8_t *buf;
    size_t len;
};

struct files {
    struct file *f; /* (n) encoded JPEGs in memory */
    int n;
};

/* ---- file list --------------------------------------------------------------------------- */

struct names {
    char **p;
    int n;
};

static void names_add(struct names *l, const char *s)
{
    l->p = sg_xrealloc(l->p, sizeof(char *) * (size_t)(l->n + 1));
    l->p[l->n++] = sg_xstrdup(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends every *.jpg under dir (depth <= 2) to l. */
static void list_jpegs(const char *dir, int depth, struct names *l)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        size_t len = strlen(e->d_name);
        if (S_ISDIR(st.st_mode)) {
            if (depth < 2) list_jpegs(path, depth + 1, l);
        } else if (len > 4 && !strcmp(e->d_name + len - 4, ".jpg")) {
            names_add(l, path);
        }
    }
    closedir(d);
}

/* The DIRs of a comma list, their JPEGs sorted by path, `limit` of them evenly spaced. */
static int load_files(const char *dirs, int limit, struct files *out, int *total)
{
    struct names all = {0};
    char *list = sg_xstrdup(dirs), *save = NULL;
    for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save))
        list_jpegs(d, 0, &all);
    free(list);
    qsort(all.p, (size_t)all.n, sizeof(char *), cmp_str);
    *total = all.n;
    int n = limit > 0 && limit < all.n ? limit : all.n;
    out->f = sg_xcalloc((size_t)(n > 0 ? n : 1), sizeof(struct file));
    out->n = n;
    int rc = n > 0 ? 0 : sg_err("no *.jpg files under %s", dirs);
    for (int i = 0; i < n && rc == 0; i++) {
        const char *p = all.p[(int64_t)i * all.n / n];
        char *buf;
        if (sg_read_file(p, &buf, &out->f[i].len) != 0)
            rc = -1;
        else
            out->f[i].buf = (uint8_t *)buf;
    }
    for (int i = 0; i < all.n; i++) free(all.p[i]);
    free(all.p);
    return rc;
}

/* ---- in-memory dataset ------------------------------------------------------------------- */

static int mem_read(const struct sg_dataset *ds, int64_t index, struct sg_raw_sample *out)
{
    const struct files *fs = ds->impl;
    const struct file *f = &fs->f[index];
    sg_raw_reset(out);
    if (f->len > out->img_cap) {
        free(out->img);
        out->img = sg_xmalloc(f->len);
        out->img_cap = f->len;
    }
    memcpy(out->img, f->buf, f->len);
    out->img_len = f->len;
    out->label = -1;
    snprintf(out->where, sizeof out->where, "file %lld", (long long)index);
    return 0;
}

static void mem_where(const struct sg_dataset *ds, int64_t index, char *buf, size_t n)
{
    (void)ds;
    snprintf(buf, n, "file %lld", (long long)index);
}

static void mem_free(struct sg_dataset *ds)
{
    (void)ds;
}

static const struct sg_dataset_ops mem_ops = {mem_read, mem_where, mem_free};

/* ---- the measured work ------------------------------------------------------------------- */

/* RandomResizedCrop(size, (0.08, 1), (3/4, 4/3), bilinear, antialias) + RandomHorizontalFlip
 * + ToTensor + Normalize(ImageNet) */
static void bench_aug(struct sg_aug_config *cfg, int size)
{
    sg_aug_preset(cfg, SG_AUG_SIMCLR, size);
    cfg->jitter_p = cfg->gray_p = cfg->blur_p = cfg->solarize_p = 0.0f;
}

struct job {
    const struct files *fs;
    const struct sg_aug_config *aug;
    int t, T, bad;
    double sink;
};

static void *raw_thread(void *arg)
{
    struct job *j = arg;
    tjhandle h = tjInitDecompress();
    SG_CHECK(h != NULL, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    uint8_t *px = NULL;
    size_t cap = 0;
    for (int i = j->t; i < j->fs->n; i += j->T) {
        const struct file *f = &j->fs->f[i];
        int w, hh, ss, cs;
        if (tjDecompressHeader3(h, f->buf, (unsigned long)f->len, &w, &hh, &ss, &cs) != 0) {
            j->bad++;
            continue;
        }
        size_t need = (size_t)w * hh * 3;
        if (need > cap) {
            free(px);
            px = sg_xmalloc(need);
            cap = need;
        }
        if (tjDecompress2(h, f->buf, (unsigned long)f->len, px, w, 0, hh, TJPF_RGB,
                          TJFLAG_ACCURATEDCT) != 0)
            j->bad++;
        j->sink += px[0];
    }
    free(px);
    tjDestroy(h);
    return NULL;
}

/* Per-thread loop: decode + sg_augment of every T-th file, per-sample rng as the loader's. */
static void *direct_thread(void *arg)
{
    struct job *j = arg;
    struct sg_decoder *dec = sg_decoder_new();
    struct sg_aug_scratch *s = sg_aug_scratch_new();
    struct sg_image im = {0};
    float *out = sg_xmalloc(sizeof(float) * 3 * (size_t)j->aug->size * j->aug->size);
    for (int i = j->t; i < j->fs->n; i += j->T) {
        const struct file *f = &j->fs->f[i];
        if (sg_decode(dec, f->buf, f->len, NULL, &im) != 0) {
            j->bad++;
            continue;
        }
        struct sg_rng rng;
        sg_rng_seed(&rng, sg_loader_sample_seed(0, 0, i));
        (void)sg_rng_u32(&rng); /* the caption pick */
        sg_augment(j->aug, &rng, &im, out, s);
        j->sink += out[0];
    }
    free(out);
    sg_image_free(&im);
    sg_aug_scratch_free(s);
    sg_decoder_free(dec);
    return NULL;
}

/* Runs fn on T threads over the files; returns the seconds taken, adds failures to *bad. */
static double run_threads(void *(*fn)(void *), const struct files *fs,
                          const struct sg_aug_config *aug, int T, int *bad, double *sink)
{
    struct job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    double t0 = sg_time_now();
    for (int t = 0; t < T; t++) {
        jobs[t] = (struct job){fs, aug, t, T, 0, 0.0};
        SG_CHECK(pthread_create(&th[t], NULL, fn, &jobs[t]) == 0, "pthread_create failed");
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        *bad += jobs[t].bad;
        *sink += jobs[t].sink;
    }
    return sg_time_now() - t0;
}

/* One epoch through the loader; returns seconds, adds the images seen to *imgs. */
static double loader_epoch(struct sg_loader *l, int64_t epoch, int64_t *imgs, double *sink)
{
    double t0 = sg_time_now();
    sg_loader_start_epoch(l, epoch);
    struct sg_batch *b;
    int rc;
    while ((rc = sg_loader_next(l, &b)) == 1) {
        *imgs += b->n;
        *sink += b->img[0];
        sg_loader_release(l, b);
    }
    SG_CHECK(rc == 0, "loader: %s", sg_last_error());
    return sg_time_now() - t0;
}

static void report(const char *what, int T, double best_s, int n, const char *note)
{
    double ips = n / best_s;
    printf("%-9s %d thread%s %8.0f images/s  (%.3f ms/image/thread)%s\n", what, T,
           T > 1 ? "s" : " ", ips, 1e3 * T / ips, note);
    printf("RESULT\t%s\t%d\t%.1f\n", what, T, ips);
    fflush(stdout);
}

static void bench_threads(const struct files *fs, struct sg_dataset *ds,
                          const struct sg_aug_config *aug, int T, int reps, int batch, double *sink)
{
    int bad = 0;
    double best = 1e30;
    for (int r = 0; r <= 3 * reps; r++) { /* r = 0: warm-up; raw epochs are short: 3x more */
        double dt = run_threads(raw_thread, fs, aug, T, &bad, sink);
        if (r > 0) best = SG_MIN(best, dt);
    }
    report("raw", T, best, fs->n, bad ? "  SOME FAILED" : "");

    struct sg_loader_config lc;
    sg_loader_default_config(&lc);
    lc.batch = batch;
    lc.workers = T;
    lc.aug = aug;
    struct sg_loader *l;
    SG_CHECK(sg_loader_open(&lc, ds, &l) == 0, "%s", sg_last_error());
    best = 1e30;
    int64_t imgs = 0;
    for (int r = 0; r <= reps; r++) {
        double dt = loader_epoch(l, r, &imgs, sink);
        if (r > 0) best = SG_MIN(best, dt);
    }
    int64_t seen, nbad;
    sg_loader_stats(l, &seen, &nbad);
    sg_loader_close(l);
    report("pipeline", T, best, fs->n, nbad ? "  SOME FAILED" : "  (loader)");

    best = 1e30;
    bad = 0;
    for (int r = 0; r <= reps; r++) {
        double dt = run_threads(direct_thread, fs, aug, T, &bad, sink);
        if (r > 0) best = SG_MIN(best, dt);
    }
    report("direct", T, best, fs->n, bad ? "  SOME FAILED" : "  (plain loop, no loader)");
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_data [--data DIR[,DIR...]] [--limit N] [--reps R] "
                    "[--threads 1,2] [--batch B] [--size S]\n");
}

int main(int argc, char **argv)
{
    const char *dirs = SG_SHARED_DATA_DIR "/imagenette/train," SG_SHARED_DATA_DIR "/imagenette/val";
    const char *threads = "1,2";
    int limit = 600, reps = 3, size = 224, batch = 32;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            usage();
            return 2;
        }
        if (!strcmp(argv[i], "--data"))
            dirs = argv[i + 1];
        else if (!strcmp(argv[i], "--limit"))
            limit = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = argv[i + 1];
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[i + 1]);
        else {
            usage();
            return 2;
        }
    }
    if (reps < 1 || size < 1 || batch < 1) {
        usage();
        return 2;
    }
    struct files fs;
    int total = 0;
    if (load_files(dirs, limit, &fs, &total) != 0) {
        fprintf(stderr, "bench_data: %s\n", sg_last_error());
        return 1;
    }
    struct sg_aug_config aug;
    bench_aug(&aug, size);
    printf("bench_data: %d of %d JPEGs from %s; RandomResizedCrop(%d) + flip + normalize; "
           "batch %d; best of %d epochs\n",
           fs.n, total, dirs, size, batch, reps);
    struct sg_dataset ds = {.ops = &mem_ops, .kind = "memory", .n = fs.n, .impl = &fs};
    double sink = 0;
    char *list = sg_xstrdup(threads), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int T = atoi(t);
        if (T < 1 || T > MAX_THREADS) {
            usage();
            return 2;
        }
        bench_threads(&fs, &ds, &aug, T, reps, batch, &sink);
    }
    free(list);
    printf("(checksum %g)\n", sink);
    for (int i = 0; i < fs.n; i++) free(fs.f[i].buf);
    free(fs.f);
    return 0;
}
