/*
 * tests/test_loader.c — the data loader (data/loader.h) on synthetic WebDataset shards written
 * by the test: sample i is a solid-colour 16x16 JPEG whose colour encodes i (R, G = 16 * digit +
 * 8 in base 16), with json key i stored in a shuffled shard order and 1..3 captions
 * "cap <i> <k>". Checks (DESIGN.md 2.5, llm.c test_dataloader):
 *   - every index exactly once per epoch, batch sizes, drop_last, different orders per epoch;
 *   - the decoded pixels of each row encode batch.idx (eval augmentation, mean 0 / std 1);
 *   - chosen captions are valid and their token ids equal sg_tokenizer_encode of that caption;
 *   - identical batches (idx, caption choice, labels, pixel and id hashes) with 1 and 4 workers
 *     and different prefetch depths, with the random SimCLR augmentation and two views;
 *   - resume: position after batch 3, a new loader seeks there and yields exactly the rest;
 *   - bad samples (truncated JPEG, empty member, garbage) skipped and counted the same way for
 *     any worker count; the bad-fraction limit aborts with its message after the same batches;
 *   - config errors; closing mid-epoch while batches are held; start_epoch while holding one
 *     aborts (programmer error).
 * SG_LOADER_BENCH=1 also measures throughput on ../shared/data/imagenette/train (2 workers,
 * SimCLR preset, 224 px), for the README.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/loader.h"
#include "data/tar.h"
#include "tests/testutil.h"
#include "text/tokenizer.h"

static char tmp[256];
static struct sg_tokenizer *tok;

/* ---- synthetic shards ------------------------------------------------------------------- */

enum { BAD_NONE, BAD_TRUNC, BAD_EMPTY, BAD_GARBAGE };

static int ncaps_of(int64_t i)
{
    return 1 + (int)(i % 3);
}

static void jpeg_of(struct sg_decoder *d, int64_t i, uint8_t **out, size_t *len)
{
    struct sg_image img = {16, 16, NULL, 0};
    img.px = sg_xmalloc(16 * 16 * 3);
    img.cap = 16 * 16 * 3;
    for (int p = 0; p < 16 * 16; p++) {
        img.px[p * 3 + 0] = (uint8_t)(16 * (i % 16) + 8);
        img.px[p * 3 + 1] = (uint8_t)(16 * ((i / 16) % 16) + 8);
        img.px[p * 3 + 2] = 128;
    }
    SG_CHECK(sg_encode_jpeg(d, &img, 95, out, len) == 0, "%s", sg_last_error());
    sg_image_free(&img);
}

/* n samples in `shards` shards under tmp/dir; json keys are a fixed permutation of 0..n-1;
 * bad(i) says how sample i's image is broken. Returns the shard spec. */
static const char *write_shards(const char *dir, int64_t n, int shards, int (*bad)(int64_t))
{
    static char spec[512];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp, dir);
    mkdir(path, 0755);
    struct sg_decoder *d = sg_decoder_new();
    int64_t per = (n + shards - 1) / shards, s = 0;
    for (int sh = 0; sh < shards; sh++) {
        snprintf(path, sizeof(path), "%s/%s/%05d.tar", tmp, dir, sh);
        struct sg_tar_writer *w = sg_tar_writer_open(path);
        SG_CHECK(w, "%s", sg_last_error());
        for (int64_t k = 0; k < per && s < n; k++, s++) {
            int64_t key = (s * 37 + 11) % n; /* n is not a multiple of 37 in these tests */
            char name[64], text[256];
            uint8_t *jpg;
            size_t len;
            jpeg_of(d, key, &jpg, &len);
            int b = bad ? bad(key) : BAD_NONE;
            if (b == BAD_TRUNC) len /= 2;
            if (b == BAD_EMPTY) len = 0;
            if (b == BAD_GARBAGE) memset(jpg, 'x', len);
            snprintf(name, sizeof(name), "%06lld.jpg", (long long)s);
            SG_CHECK(sg_tar_writer_add(w, name, jpg, len) == 0, "add");
            free(jpg);
            size_t t = 0;
            for (int c = 0; c < ncaps_of(key); c++)
                t += (size_t)snprintf(text + t, sizeof(text) - t, "cap %lld %d\n", (long long)key,
                                      c);
            snprintf(name, sizeof(name), "%06lld.txt", (long long)s);
            sg_tar_writer_add(w, name, text, t);
            snprintf(text, sizeof(text), "{\"key\": %lld}", (long long)key);
            snprintf(name, sizeof(name), "%06lld.json", (long long)s);
            sg_tar_writer_add(w, name, text, strlen(text));
        }
        SG_CHECK(sg_tar_writer_finish(w) == 0, "%s", sg_last_error());
    }
    sg_decoder_free(d);
    snprintf(spec, sizeof(spec), "%s/%s/{00000..%05d}.tar", tmp, dir, shards - 1);
    return spec;
}

static struct sg_dataset *open_ds(const char *spec)
{
    struct sg_dataset_spec s = {.path = spec};
    struct sg_dataset *ds = NULL;
    SG_CHECK(sg_dataset_open(&s, &ds) == 0, "%s", sg_last_error());
    return ds;
}

/* ---- runs ------------------------------------------------------------------------------- */

struct run {
    int nb, rc;       /* batches; last sg_loader_next result (0 or -1) */
    int64_t nsamples; /* rows in all batches */
    int sizes[256];
    int64_t idx[4096];
    int32_t cap[4096], label[4096];
    uint64_t img_hash[256], ids_hash[256];
    char err[512];
};

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void record(struct run *r, const struct sg_batch *b)
{
    SG_CHECK(r->nb < 256 && r->nsamples + b->n <= 4096, "run too long");
    size_t per = (size_t)b->views * 3 * b->size * b->size;
    r->sizes[r->nb] = b->n;
    r->img_hash[r->nb] = fnv(b->img, sizeof(float) * per * (size_t)b->n, 1469598103934665603ull);
    r->ids_hash[r->nb] =
        b->ids ? fnv(b->ids, sizeof(int32_t) * (size_t)b->T * (size_t)b->n, 1469598103934665603ull)
               : 0;
    for (int i = 0; i < b->n; i++) {
        r->idx[r->nsamples + i] = b->idx[i];
        r->cap[r->nsamples + i] = b->caption[i];
        r->label[r->nsamples + i] = b->labels[i];
    }
    r->nsamples += b->n;
    r->nb++;
}

/* Run (the rest of) the current epoch; max_batches < 0: all. */
static void drain_epoch(struct sg_loader *l, struct run *r, int max_batches)
{
    struct sg_batch *b;
    while (max_batches < 0 || r->nb < max_batches) {
        r->rc = sg_loader_next(l, &b);
        if (r->rc != 1) {
            if (r->rc < 0) snprintf(r->err, sizeof(r->err), "%s", sg_last_error());
            break;
        }
        record(r, b);
        sg_loader_release(l, b);
    }
}

static int same_runs(const struct run *a, const struct run *b, int from_batch)
{
    int64_t off = 0;
    for (int k = 0; k < from_batch; k++) off += a->sizes[k];
    if (a->nb - from_batch != b->nb || a->rc != b->rc) {
        printf("  batches %d vs %d, rc %d vs %d\n", a->nb - from_batch, b->nb, a->rc, b->rc);
        return 0;
    }
    for (int k = 0; k < b->nb; k++)
        if (a->sizes[from_batch + k] != b->sizes[k] ||
            a->img_hash[from_batch + k] != b->img_hash[k] ||
            a->ids_hash[from_batch + k] != b->ids_hash[k]) {
            printf("  batch %d differs (size %d/%d)\n", k, a->sizes[from_batch + k], b->sizes[k]);
            return 0;
        }
    for (int64_t i = 0; i < b->nsamples; i++)
        if (a->idx[off + i] != b->idx[i] || a->cap[off + i] != b->cap[i] ||
            a->label[off + i] != b->label[i]) {
            printf("  row %lld differs: idx %lld/%lld\n", (long long)i, (long long)a->idx[off + i],
                   (long long)b->idx[i]);
            return 0;
        }
    return 1;
}

static struct sg_aug_config aug_eval, aug_simclr;

static void base_config(struct sg_loader_config *c, int workers, int batch)
{
    sg_loader_default_config(c);
    c->batch = batch;
    c->workers = workers;
    c->seed = 1234;
    c->aug = &aug_eval;
    c->tok = tok;
    c->context_length = 16;
}

static struct run *run_epoch(const struct sg_dataset *ds, const struct sg_loader_config *c,
                             int64_t epoch)
{
    struct run *r = sg_xcalloc(1, sizeof(*r));
    struct sg_loader *l;
    SG_CHECK(sg_loader_open(c, ds, &l) == 0, "%s", sg_last_error());
    sg_loader_start_epoch(l, epoch);
    drain_epoch(l, r, -1);
    sg_loader_close(l);
    return r;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Data-parallel shards: W loaders with batch B, rank r, concatenate batch by batch (rank order)
 * to a single loader with batch W*B (drop_last: the tail that fills no global batch is dropped);
 * shards are disjoint; per-sample images and captions equal the single loader's rows. */
static void test_shards(const struct sg_dataset *ds, int W, int B)
{
    struct sg_loader_config c1, cw;
    base_config(&c1, 2, W * B);
    c1.drop_last = 1;
    struct run *one = run_epoch(ds, &c1, 1);
    struct run *part[4];
    for (int r = 0; r < W; r++) {
        base_config(&cw, 1 + r % 2, B);
        cw.shard_rank = r;
        cw.shard_world = W;
        part[r] = run_epoch(ds, &cw, 1);
    }
    int ok = 1;
    for (int r = 0; r < W; r++) ok &= part[r]->nb == one->nb && part[r]->rc == one->rc;
    for (int k = 0; ok && k < one->nb; k++)
        for (int r = 0; r < W; r++)
            for (int i = 0; i < B; i++) {
                int64_t g = (int64_t)k * W * B + (int64_t)r * B + i, l = (int64_t)k * B + i;
                ok &= part[r]->idx[l] == one->idx[g] && part[r]->cap[l] == one->cap[g];
            }
    char label[160];
    snprintf(label, sizeof label,
             "%d shards of batch %d concatenate to the batch-%d loader (%d batches, ids and "
             "captions)",
             W, B, W * B, one->nb);
    sg_test_true(label, ok && one->nb == (int)(ds->n / (W * B)));
    for (int r = 0; r < W; r++) free(part[r]);
    free(one);
}

#define N_MAIN 103

static void test_epochs(const struct sg_dataset *ds)
{
    struct sg_loader_config c;
    base_config(&c, 3, 8);
    struct sg_loader *l;
    SG_CHECK(sg_loader_open(&c, ds, &l) == 0, "%s", sg_last_error());
    int64_t first[N_MAIN];
    for (int64_t e = 0; e < 2; e++) {
        sg_loader_start_epoch(l, e);
        struct run *r = sg_xcalloc(1, sizeof(*r));
        struct sg_batch *b;
        int payload_ok = 1, ids_ok = 1, meta_ok = 1;
        int32_t *want = sg_xmalloc(sizeof(int32_t) * 16);
        while ((r->rc = sg_loader_next(l, &b)) == 1) {
            meta_ok &=
                b->epoch == e && b->step == r->nb && b->views == 1 && b->size == 8 && b->T == 16;
            for (int i = 0; i < b->n; i++) {
                const float *px = b->img + (size_t)i * 3 * 64;
                int rr = (int)(px[0] * 255.f + 0.5f), gg = (int)(px[64] * 255.f + 0.5f);
                int64_t got = rr / 16 + 16 * (gg / 16);
                if (got != b->idx[i] % 256) payload_ok = 0;
                int k = b->caption[i];
                if (k < 0 || k >= ncaps_of(b->idx[i])) {
                    ids_ok = 0;
                    continue;
                }
                char text[64];
                snprintf(text, sizeof(text), "cap %lld %d", (long long)b->idx[i], k);
                sg_tokenizer_encode(tok, text, want, 16);
                if (memcmp(want, b->ids + (size_t)i * 16, sizeof(int32_t) * 16) != 0) ids_ok = 0;
                if (b->labels[i] != -1) meta_ok = 0;
            }
            record(r, b);
            sg_loader_release(l, b);
        }
        free(want);
        int count[N_MAIN] = {0}, once = r->nsamples == N_MAIN;
        for (int64_t i = 0; i < r->nsamples; i++) {
            if (r->idx[i] < 0 || r->idx[i] >= N_MAIN) {
                once = 0;
                continue;
            }
            count[r->idx[i]]++;
        }
        for (int i = 0; i < N_MAIN; i++) once &= count[i] == 1;
        char label[96];
        snprintf(label, sizeof(label), "epoch %lld: every index exactly once", (long long)e);
        sg_test_true(label, once && r->rc == 0);
        snprintf(label, sizeof(label), "epoch %lld: 12 batches of 8 + one of 7", (long long)e);
        sg_test_true(label, r->nb == 13 && r->sizes[0] == 8 && r->sizes[12] == 7);
        snprintf(label, sizeof(label), "epoch %lld: pixels encode batch.idx", (long long)e);
        sg_test_true(label, payload_ok);
        snprintf(label, sizeof(label), "epoch %lld: caption choice and token ids", (long long)e);
        sg_test_true(label, ids_ok);
        snprintf(label, sizeof(label), "epoch %lld: batch epoch/step/shape, labels -1",
                 (long long)e);
        sg_test_true(label, meta_ok);
        if (e == 0) memcpy(first, r->idx, sizeof(first));
        if (e == 1)
            sg_test_true("epochs 0 and 1 differ in order",
                         memcmp(first, r->idx, sizeof(first)) != 0);
        struct sg_batch *again;
        sg_test_true("next after the end: still 0", sg_loader_next(l, &again) == 0 && !again);
        free(r);
    }
    sg_loader_close(l);

    c.drop_last = 1;
    struct run *r = run_epoch(ds, &c, 0);
    sg_test_true("drop_last: 12 full batches", r->nb == 12 && r->nsamples == 96);
    free(r);
    c.drop_last = 0;
    c.shuffle = 0;
    r = run_epoch(ds, &c, 5);
    int ident = r->nsamples == N_MAIN;
    for (int64_t i = 0; i < r->nsamples && ident; i++) ident = r->idx[i] == i;
    sg_test_true("shuffle 0: index order", ident);
    free(r);
}

static void test_workers(const struct sg_dataset *ds)
{
    struct sg_loader_config c;
    base_config(&c, 1, 8);
    c.aug = &aug_simclr;
    c.views = 2;
    c.prefetch_batches = 1;
    struct run *r1 = run_epoch(ds, &c, 3);
    c.workers = 4;
    c.prefetch_batches = 3;
    struct run *r4 = run_epoch(ds, &c, 3);
    sg_test_true("1 vs 4 workers: identical batches (idx, captions, pixels, ids)",
                 same_runs(r1, r4, 0));
    c.seed = 99;
    struct run *rs = run_epoch(ds, &c, 3);
    sg_test_true("another seed: different pixels",
                 rs->img_hash[0] != r1->img_hash[0] && rs->idx[0] != r1->idx[0]);
    /* two views differ (random augmentation), one epoch to the next too */
    free(r1);
    free(r4);
    free(rs);
}

static void test_resume(const struct sg_dataset *ds, int workers_a, int workers_b,
                        const char *label)
{
    struct sg_loader_config c;
    base_config(&c, workers_a, 8);
    c.aug = &aug_simclr;
    c.max_bad_fraction = 0.5;
    struct run *full = run_epoch(ds, &c, 2);
    struct sg_loader *l;
    SG_CHECK(sg_loader_open(&c, ds, &l) == 0, "%s", sg_last_error());
    sg_loader_start_epoch(l, 2);
    struct run *head = sg_xcalloc(1, sizeof(*head));
    drain_epoch(l, head, 3);
    struct sg_loader_pos pos;
    sg_loader_position(l, &pos);
    sg_loader_close(l);
    c.workers = workers_b;
    SG_CHECK(sg_loader_open(&c, ds, &l) == 0, "%s", sg_last_error());
    char lab[128];
    snprintf(lab, sizeof(lab), "%s: seek accepted", label);
    sg_test_true(lab, sg_loader_seek(l, &pos) == 0);
    struct run *tail = sg_xcalloc(1, sizeof(*tail));
    drain_epoch(l, tail, -1);
    int64_t seen, bad;
    sg_loader_stats(l, &seen, &bad);
    sg_loader_close(l);
    snprintf(lab, sizeof(lab), "%s: position after batch 3", label);
    sg_test_true(lab, pos.epoch == 2 && pos.step == 3 && pos.cursor >= 24);
    snprintf(lab, sizeof(lab), "%s: resumed batches equal the uninterrupted run", label);
    sg_test_true(lab, same_runs(full, tail, 3));
    snprintf(lab, sizeof(lab), "%s: counts continue (seen = dataset size)", label);
    sg_test_true(lab, seen == ds->n);
    free(full);
    free(head);
    free(tail);
}

static int bad_some(int64_t i)
{
    return i == 5    ? BAD_TRUNC
           : i == 17 ? BAD_EMPTY
           : i == 18 ? BAD_GARBAGE
           : i == 40 ? BAD_TRUNC
                     : BAD_NONE;
}

static int bad_many(int64_t i)
{
    return i % 12 == 7 ? BAD_TRUNC : BAD_NONE;
}

static void test_bad(void)
{
    struct sg_dataset *ds = open_ds(write_shards("bad", 60, 2, bad_some));
    struct sg_loader_config c;
    base_config(&c, 1, 8);
    c.max_bad_fraction = 0.5;
    struct run *r1 = run_epoch(ds, &c, 0);
    c.workers = 4;
    struct run *r4 = run_epoch(ds, &c, 0);
    int count[60] = {0}, ok = r1->nsamples == 56 && r1->rc == 0;
    for (int64_t i = 0; i < r1->nsamples; i++) count[r1->idx[i]]++;
    for (int i = 0; i < 60; i++) ok &= count[i] == (bad_some(i) ? 0 : 1);
    sg_test_true("bad samples: the 56 good ones exactly once, bad ones never", ok);
    sg_test_true("bad samples: 7 batches of 8", r1->nb == 7 && r1->sizes[6] == 8);
    sg_test_true("bad samples: identical with 1 and 4 workers", same_runs(r1, r4, 0));
    struct sg_loader *l;
    sg_loader_open(&c, ds, &l);
    sg_loader_start_epoch(l, 0);
    struct run *r = sg_xcalloc(1, sizeof(*r));
    drain_epoch(l, r, -1);
    int64_t seen, bad;
    sg_loader_stats(l, &seen, &bad);
    sg_test_true("bad samples: counted (4 of 60)", seen == 60 && bad == 4);
    int nb = sg_loader_bad_count(l), reasons = nb == 4;
    for (int i = 0; i < nb; i++) {
        int64_t idx;
        const char *m = sg_loader_bad(l, i, &idx);
        printf("  skipped %lld: %s\n", (long long)idx, m);
        reasons &= bad_some(idx) != BAD_NONE && strstr(m, ".tar:") != NULL;
    }
    sg_test_true("bad samples: remembered with shard:key and reason", reasons);
    sg_loader_close(l);
    free(r);
    free(r1);
    free(r4);
    sg_dataset_free(ds);

    /* 12 of 150 bad (8%) with a 5% limit: aborts after the same batches for any workers */
    ds = open_ds(write_shards("many", 150, 3, bad_many));
    base_config(&c, 1, 8);
    c.max_bad_fraction = 0.05;
    r1 = run_epoch(ds, &c, 0);
    c.workers = 4;
    r4 = run_epoch(ds, &c, 0);
    printf("  abort after %d batches: %s\n", r1->nb, r1->err);
    sg_test_true("bad fraction: -1 with the message",
                 r1->rc == -1 && strstr(r1->err, "samples unreadable (") &&
                     strstr(r1->err, "% > 5%): first: ") && strstr(r1->err, ".tar:"));
    sg_test_true("bad fraction: the batches before the error are returned",
                 r1->nb >= 10 && r1->nb < 19);
    sg_test_true("bad fraction: same batches and error with 4 workers",
                 same_runs(r1, r4, 0) && strcmp(r1->err, r4->err) == 0);
    free(r1);
    free(r4);
    c.max_bad_fraction = 0.1;
    r1 = run_epoch(ds, &c, 0);
    if (!sg_test_true("bad fraction under the limit: full epoch",
                      r1->rc == 0 && r1->nsamples == 150 - 12))
        printf("  rc %d, %lld samples: %s\n", r1->rc, (long long)r1->nsamples, r1->err);
    free(r1);
    sg_dataset_free(ds);
}

static const struct sg_dataset *abort_ds;

static void start_while_holding(void)
{
    struct sg_loader_config c;
    base_config(&c, 2, 8);
    struct sg_loader *l;
    sg_loader_open(&c, abort_ds, &l);
    sg_loader_start_epoch(l, 0);
    struct sg_batch *b;
    sg_loader_next(l, &b);
    sg_loader_start_epoch(l, 1); /* b not released: programmer error */
}

static void test_misc(const struct sg_dataset *ds)
{
    struct sg_loader_config c;
    struct sg_loader *l = NULL;
    base_config(&c, 2, 8);
    c.views = 3;
    sg_test_true("config: views 3 refused", sg_loader_open(&c, ds, &l) == -1 && !l);
    base_config(&c, 2, 0);
    sg_test_true("config: batch 0 refused", sg_loader_open(&c, ds, &l) == -1);
    base_config(&c, 2, 8);
    c.aug = NULL;
    sg_test_true("config: aug required", sg_loader_open(&c, ds, &l) == -1);
    base_config(&c, 2, 8);
    struct sg_loader_pos far = {0, ds->n + 1, 0, 0, 0};
    SG_CHECK(sg_loader_open(&c, ds, &l) == 0, "%s", sg_last_error());
    sg_test_true("seek: position past the dataset refused", sg_loader_seek(l, &far) == -1);
    sg_loader_close(l); /* never started */

    /* close mid-epoch while holding a batch; start_epoch restarts cleanly */
    c.workers = 4;
    c.prefetch_batches = 2;
    SG_CHECK(sg_loader_open(&c, ds, &l) == 0, "%s", sg_last_error());
    sg_loader_start_epoch(l, 0);
    struct sg_batch *b, *b2;
    sg_test_true("hold two batches", sg_loader_next(l, &b) == 1 && sg_loader_next(l, &b2) == 1);
    int64_t first = b->idx[0];
    sg_loader_release(l, b);
    sg_loader_release(l, b2);
    sg_loader_start_epoch(l, 0);
    sg_test_true("restart the epoch: same first sample",
                 sg_loader_next(l, &b) == 1 && b->idx[0] == first);
    sg_loader_close(l); /* b still held, workers busy: must join cleanly */
    sg_test_true("close mid-epoch", 1);
    abort_ds = ds;
    sg_test_expect_abort("start_epoch while holding a batch aborts", start_while_holding,
                         "release every batch");
}

static void bench_imagenette(void)
{
#ifdef SG_SHARED_DATA_DIR
    if (!getenv("SG_LOADER_BENCH")) return;
    char path[1024];
    snprintf(path, sizeof(path), "%s/imagenette/train", SG_SHARED_DATA_DIR);
    struct sg_dataset_spec s = {.path = path};
    struct sg_dataset *ds;
    if (sg_dataset_open(&s, &ds) != 0) {
        printf("  bench skipped: %s\n", sg_last_error());
        return;
    }
    struct sg_aug_config a;
    sg_aug_preset(&a, SG_AUG_SIMCLR, 224);
    int workers = getenv("SG_LOADER_WORKERS") ? atoi(getenv("SG_LOADER_WORKERS")) : 2;
    struct sg_loader_config c;
    sg_loader_default_config(&c);
    c.batch = 64;
    c.workers = workers;
    c.aug = &a;
    struct sg_loader *l;
    SG_CHECK(sg_loader_open(&c, ds, &l) == 0, "%s", sg_last_error());
    sg_loader_start_epoch(l, 0);
    double t0 = sg_time_now();
    struct sg_batch *b;
    int64_t n = 0;
    while (sg_loader_next(l, &b) == 1) {
        n += b->n;
        sg_loader_release(l, b);
    }
    double dt = sg_time_now() - t0;
    printf("  bench: imagenette train, %lld images, %d workers, SimCLR 224, batch 64: %.1f "
           "images/s\n",
           (long long)n, workers, (double)n / dt);
    sg_loader_close(l);
    sg_dataset_free(ds);
#endif
}

int main(void)
{
    snprintf(tmp, sizeof(tmp), "/tmp/sg_test_loader_XXXXXX");
    SG_CHECK(mkdtemp(tmp), "mkdtemp");
    if (sg_tokenizer_load(SG_REF_DIR "/tokenizer_test.model", NULL, &tok) != 0) {
        printf("tokenizer: %s\n", sg_last_error());
        return 1;
    }
    sg_aug_preset(&aug_eval, SG_AUG_EVAL, 8);
    for (int ch = 0; ch < 3; ch++) aug_eval.mean[ch] = 0.f, aug_eval.std[ch] = 1.f;
    sg_aug_preset(&aug_simclr, SG_AUG_SIMCLR, 8);
    struct sg_dataset *ds = open_ds(write_shards("main", N_MAIN, 3, NULL));
    test_epochs(ds);
    test_workers(ds);
    test_resume(ds, 2, 2, "resume");
    test_resume(ds, 1, 4, "resume with other worker count");
    test_misc(ds);
    test_shards(ds, 2, 8);
    test_shards(ds, 3, 5);
    sg_dataset_free(ds);
    test_bad();
    {
        struct sg_dataset *bds = open_ds(write_shards("bad2", 60, 2, bad_some));
        test_resume(bds, 3, 1, "resume over bad samples");
        sg_dataset_free(bds);
    }
    bench_imagenette();
    sg_tokenizer_free(tok);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    if (system(cmd) != 0) printf("  could not remove %s\n", tmp);
    return sg_test_summary("test_loader");
}
