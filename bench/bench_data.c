/*
 * bench/bench_data.c — data pipeline throughput on one thread: JPEG decode (data/image.c) and
 * augmentation (data/transforms.c) of the Imagenette train JPEGs (224x224, 4:2:0), files read
 * into memory first so the disk is not measured. The torchvision/PIL peer is
 * bench/torch_data.py (same files, same presets).
 *
 *   bench_data [--dir DIR] [--limit N] [--reps R] [--size 224]
 * DIR defaults to ../shared/data/imagenette/train (SG_SHARED_DATA_DIR). Prints images/s for
 * decode only, decode + each preset (SIMCLR, CLIP, EVAL), and augmentation only.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/transforms.h"

#ifndef SG_SHARED_DATA_DIR
#define SG_SHARED_DATA_DIR "../shared/data"
#endif

struct file {
    uint8_t *buf;
    size_t len;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads every *.jpg under dir/<class>/ (sorted) into memory, at most limit files. */
static int load_files(const char *dir, int limit, struct file **out)
{
    DIR *d = opendir(dir);
    if (!d) return sg_err("cannot open %s", dir);
    char **classes = NULL;
    int nc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        classes = sg_xrealloc(classes, sizeof(char *) * (size_t)(nc + 1));
        classes[nc++] = sg_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(classes, (size_t)nc, sizeof(char *), cmp_str);
    struct file *files = NULL;
    int n = 0;
    char path[4096];
    for (int c = 0; c < nc && n < limit; c++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes[c]);
        DIR *cd = opendir(path);
        if (!cd) continue;
        char **names = NULL;
        int nn = 0;
        while ((e = readdir(cd))) {
            size_t l = strlen(e->d_name);
            if (l < 4 || strcmp(e->d_name + l - 4, ".jpg")) continue;
            names = sg_xrealloc(names, sizeof(char *) * (size_t)(nn + 1));
            names[nn++] = sg_xstrdup(e->d_name);
        }
        closedir(cd);
        qsort(names, (size_t)nn, sizeof(char *), cmp_str);
        for (int i = 0; i < nn; i++) {
            if (n < limit) {
                snprintf(path, sizeof path, "%s/%s/%s", dir, classes[c], names[i]);
                char *buf;
                size_t len;
                if (sg_read_file(path, &buf, &len) == 0) {
                    files = sg_xrealloc(files, sizeof(struct file) * (size_t)(n + 1));
                    files[n].buf = (uint8_t *)buf;
                    files[n++].len = len;
                }
            }
            free(names[i]);
        }
        free(names);
    }
    for (int c = 0; c < nc; c++) free(classes[c]);
    free(classes);
    *out = files;
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = SG_SHARED_DATA_DIR "/imagenette/train";
    int limit = 3000, reps = 1, size = 224;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--limit"))
            limit = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_data [--dir DIR] [--limit N] [--reps R] [--size S]\n");
            return 2;
        }
    }
    struct file *files = NULL;
    int n = load_files(dir, limit, &files);
    if (n <= 0) {
        fprintf(stderr, "bench_data: no JPEGs (%s)\n", n < 0 ? sg_last_error() : dir);
        return 1;
    }
    printf("bench_data: %d JPEGs from %s, %d rep(s), output %dpx, 1 thread\n", n, dir, reps, size);
    struct sg_decoder *dec = sg_decoder_new();
    struct sg_aug_scratch *s = sg_aug_scratch_new();
    struct sg_image im = {0};
    float *out = sg_xmalloc(sizeof(float) * 3 * (size_t)size * size);
    double sink = 0;

    /* decode only */
    double t0 = sg_time_now();
    int bad = 0;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++) bad += sg_decode(dec, files[i].buf, files[i].len, NULL, &im);
    double dt = sg_time_now() - t0;
    printf("decode                 %8.0f images/s  (%.3f ms/image%s)\n", n * reps / dt,
           1e3 * dt / (n * reps), bad ? ", some failed" : "");

    static const struct {
        const char *name;
        enum sg_aug_preset p;
    } presets[] = {{"SIMCLR", SG_AUG_SIMCLR}, {"CLIP", SG_AUG_CLIP}, {"EVAL", SG_AUG_EVAL}};
    for (int k = 0; k < 3; k++) {
        struct sg_aug_config cfg;
        sg_aug_preset(&cfg, presets[k].p, size);
        struct sg_rng rng;
        sg_rng_seed(&rng, 1234);
        t0 = sg_time_now();
        for (int r = 0; r < reps; r++)
            for (int i = 0; i < n; i++) {
                if (sg_decode(dec, files[i].buf, files[i].len, NULL, &im)) continue;
                sg_augment(&cfg, &rng, &im, out, s);
                sink += out[0];
            }
        dt = sg_time_now() - t0;
        printf("decode + %-13s %8.0f images/s  (%.3f ms/image)\n", presets[k].name, n * reps / dt,
               1e3 * dt / (n * reps));
    }
    /* augmentation only (SIMCLR) on one decoded image */
    struct sg_aug_config cfg;
    sg_aug_preset(&cfg, SG_AUG_SIMCLR, size);
    struct sg_rng rng;
    sg_rng_seed(&rng, 99);
    SG_CHECK(sg_decode(dec, files[0].buf, files[0].len, NULL, &im) == 0, "%s", sg_last_error());
    int m = SG_MAX(n, 500);
    t0 = sg_time_now();
    for (int i = 0; i < m; i++) {
        sg_augment(&cfg, &rng, &im, out, s);
        sink += out[1];
    }
    dt = sg_time_now() - t0;
    printf("SIMCLR augment only    %8.0f images/s  (%.3f ms/image)\n", m / dt, 1e3 * dt / m);
    printf("(checksum %g)\n", sink);

    free(out);
    sg_image_free(&im);
    sg_aug_scratch_free(s);
    sg_decoder_free(dec);
    for (int i = 0; i < n; i++) free(files[i].buf);
    free(files);
    return 0;
}
