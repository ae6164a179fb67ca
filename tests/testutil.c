/* tests/testutil.c — see testutil.h. */
#include "tests/testutil.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/synth.h"
#include "data/transforms.h"
#include "ops/input.h"
#include "text/tokenizer.h"

#ifndef SG_REF_DIR
#error "SG_REF_DIR must point at tests/ref/data"
#endif

static int n_pass, n_fail;

int sg_test_failures(void)
{
    return n_fail;
}

int sg_test_close(const char *label, const float *got, const float *ref, int64_t n, float atol,
                  float rtol)
{
    int64_t bad = 0;
    double maxdiff = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        int ok = d <= atol + rtol * fabs((double)ref[i]) && !isnan(got[i]);
        if ((isnan(ref[i]) && isnan(got[i])) || got[i] == ref[i]) ok = 1;
        if (got[i] == ref[i]) d = 0.0;
        if (d > maxdiff || isnan(got[i])) maxdiff = isnan(got[i]) ? INFINITY : d;
        if (!ok) {
            if (bad < 5)
                fprintf(stderr, "  %s[%lld]: got %.9g, ref %.9g (diff %.3g)\n", label, (long long)i,
                        got[i], ref[i], d);
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "FAIL %s: %lld of %lld elements differ (max diff %.3g, atol %g, rtol %g)\n",
                label, (long long)bad, (long long)n, maxdiff, atol, rtol);
        n_fail++;
        return 0;
    }
    printf("ok   %s (%lld elements, max diff %.3g)\n", label, (long long)n, maxdiff);
    n_pass++;
    return 1;
}

int sg_test_true(const char *label, int cond)
{
    if (cond) {
        printf("ok   %s\n", label);
        n_pass++;
    } else {
        fprintf(stderr, "FAIL %s\n", label);
        n_fail++;
    }
    return cond;
}

void sg_test_ref_open(struct sg_st_file *f, const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SG_REF_DIR, file);
    if (sg_st_open(f, path) != 0) {
        fprintf(stderr,
                "FAIL: cannot load reference file: %s\n---> HINT: reference files are "
                "committed; regenerate with /usr/bin/python3 tests/ref/gen_*.py\n",
                sg_last_error());
        exit(1);
    }
}

float *sg_test_ref(const struct sg_st_file *f, const char *name, int64_t numel)
{
    int64_t have = 0;
    float *x = sg_st_load_f32(f, name, &have, NULL, NULL);
    if (!x || (numel >= 0 && have != numel)) {
        fprintf(stderr, "FAIL: reference tensor '%s': %s (expected %lld elements, file has %lld)\n",
                name, x ? "wrong size" : sg_last_error(), (long long)numel, (long long)have);
        exit(1);
    }
    return x;
}

float sg_test_ref_scalar(const struct sg_st_file *f, const char *name)
{
    float *x = sg_test_ref(f, name, 1);
    float v = x[0];
    sg_afree(x);
    return v;
}

int64_t *sg_test_ref_i64(const struct sg_st_file *f, const char *name, int64_t numel)
{
    int64_t *x = sg_xmalloc((size_t)(numel > 0 ? numel : 1) * sizeof(int64_t));
    if (sg_st_read_i64(f, name, x, numel) != 0) {
        fprintf(stderr, "FAIL: reference tensor '%s': %s\n", name, sg_last_error());
        exit(1);
    }
    return x;
}

int sg_test_fd(const char *label, sg_test_loss_fn fn, void *user, float *x, int64_t n,
               const float *grad, int samples, float eps, float atol, float rtol)
{
    int64_t step = n <= samples ? 1 : n / samples;
    int64_t bad = 0, checked = 0;
    double maxdiff = 0.0;
    for (int64_t i = 0; i < n && checked < samples; i += step, checked++) {
        int64_t k = (i * 7919) % n; /* spread the probes over the tensor */
        float orig = x[k];
        x[k] = orig + eps;
        double lp = fn(user, x);
        x[k] = orig - eps;
        double lm = fn(user, x);
        x[k] = orig;
        double num = (lp - lm) / (2.0 * (double)eps);
        double d = fabs(num - (double)grad[k]);
        if (d > maxdiff) maxdiff = d;
        if (d > atol + rtol * fabs(num)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%lld]: analytic %.7g, numeric %.7g\n", label, (long long)k,
                        grad[k], num);
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "FAIL %s (finite differences): %lld of %lld probes differ (max %.3g)\n",
                label, (long long)bad, (long long)checked, maxdiff);
        n_fail++;
        return 0;
    }
    printf("ok   %s (finite differences, %lld probes, max diff %.3g)\n", label, (long long)checked,
           maxdiff);
    n_pass++;
    return 1;
}

void sg_test_fill(float *x, int64_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

double sg_test_dot(const float *x, const float *w, int64_t n)
{
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += (double)x[i] * (double)w[i];
    return acc;
}

int sg_test_expect_abort(const char *label, void (*fn)(void), const char *want)
{
    int fds[2];
    SG_CHECK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    SG_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    char msg[1024] = {0};
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof msg && (r = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0)
        len += (size_t)r;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(msg, want) != NULL;
    if (!ok) fprintf(stderr, "  child stderr: %s\n", msg);
    return sg_test_true(label, ok);
}

void sg_test_load_params(struct sg_params *ps, const struct sg_st_file *f, const char *prefix)
{
    char key[512];
    for (int i = 0; i < ps->n; i++) {
        struct sg_param *q = ps->items[i];
        snprintf(key, sizeof key, "%s%s", prefix, q->name);
        float *v = sg_test_ref(f, key, q->numel);
        memcpy(q->data, v, (size_t)q->numel * sizeof(float));
        sg_afree(v);
    }
}

static int skipped(const char *key, const char *const *skip)
{
    for (int i = 0; skip && skip[i]; i++) {
        size_t n = strlen(skip[i]);
        int is_prefix = n && (skip[i][n - 1] == '.' || skip[i][n - 1] == '_');
        if (is_prefix ? strncmp(key, skip[i], n) == 0 : strcmp(key, skip[i]) == 0) return 1;
    }
    return 0;
}

int sg_test_check_param_names(const struct sg_params *ps, const struct sg_st_file *f,
                              const char *prefix, const char *const *skip, const char *label)
{
    size_t lp = strlen(prefix);
    int nref = 0, missing = 0;
    for (int i = 0; i < f->n; i++) {
        const char *nm = f->entries[i].name;
        if (strncmp(nm, prefix, lp) != 0 || skipped(nm + lp, skip)) continue;
        nref++;
        if (!sg_params_find(ps, nm + lp)) {
            fprintf(stderr, "  %s: torch key %s not registered\n", label, nm + lp);
            missing++;
        }
    }
    char msg[256];
    snprintf(msg, sizeof msg, "%s names: %d torch keys == %d registered", label, nref, ps->n);
    return sg_test_true(msg, missing == 0 && nref == ps->n);
}

int sg_test_summary(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, n_pass, n_fail);
    return n_fail ? 1 : 0;
}

void sg_test_clip_fixture(const char *tag, char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/%s_XXXXXX", tag);
    SG_CHECK(mkdtemp(dir), "mkdtemp %s", dir);
    char data[400], corpus[420], prefix[420];
    snprintf(data, sizeof data, "%s/data", dir);
    struct sg_synth_opts o;
    struct sg_synth_stats st;
    sg_synth_opts_default(&o);
    o.dir = data;
    o.size = 16;
    o.ntrain = 96;
    o.nval = 8;
    SG_CHECK(sg_synth_generate(&o, &st) == 0, "%s", sg_last_error());
    snprintf(corpus, sizeof corpus, "%s/captions.txt", data);
    snprintf(prefix, sizeof prefix, "%s/tok", data);
    struct sg_tokenizer_train_opts to = {.vocab_size = 100};
    SG_CHECK(sg_tokenizer_train(corpus, prefix, &to) == 0, "%s", sg_last_error());
}

float *sg_test_rand(int64_t n, uint64_t seed, float lo, float hi)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    sg_test_fill(x, n, seed, lo, hi);
    return x;
}

float *sg_test_nan(int64_t n)
{
    float *x = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

float *sg_test_host_copy(const float *x, int64_t n)
{
    if (!x) return NULL;
    float *y = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    memcpy(y, x, sizeof(float) * (size_t)n);
    return y;
}

float *sg_test_to_dev(struct sg_ctx *g, const float *h, int64_t n)
{
    if (!h) return NULL;
    float *d = sg_dev_alloc(g, sizeof(float) * (size_t)(n ? n : 1));
    if (n) sg_memcpy_h2d(g, d, h, sizeof(float) * (size_t)n);
    return d;
}

float *sg_test_from_dev(struct sg_ctx *g, const float *d, int64_t n)
{
    float *h = sg_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    if (n) sg_memcpy_d2h(g, h, d, sizeof(float) * (size_t)n);
    return h;
}

static int64_t ulp_distance(float a, float b)
{
    int32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    if (x < 0) x = INT32_MIN - x; /* sign-magnitude -> two's complement order */
    if (y < 0) y = INT32_MIN - y;
    return x > y ? (int64_t)x - y : (int64_t)y - x;
}

int64_t sg_test_u8_vs_float(struct sg_ctx *g, const char *tsv, int preset, int views, uint64_t seed,
                            int *batches)
{
    struct sg_dataset_spec spec = {.path = tsv, .image_key = "image", .caption_key = "caption"};
    struct sg_dataset *ds;
    SG_CHECK(sg_dataset_open(&spec, &ds) == 0, "%s", sg_last_error());
    struct sg_aug_config aug;
    sg_aug_preset(&aug, (enum sg_aug_preset)preset, 16);
    struct sg_loader_config lc;
    sg_loader_default_config(&lc);
    lc.batch = 16;
    lc.seed = seed;
    lc.aug = &aug;
    lc.views = views;
    struct sg_loader *lf, *lu;
    SG_CHECK(sg_loader_open(&lc, ds, &lf) == 0, "%s", sg_last_error());
    lc.u8 = 1;
    SG_CHECK(sg_loader_open(&lc, ds, &lu) == 0, "%s", sg_last_error());
    sg_loader_start_epoch(lf, 1);
    sg_loader_start_epoch(lu, 1);
    int64_t n = (int64_t)16 * views * 3 * 16 * 16, worst = 0;
    uint8_t *d8 = sg_dev_alloc(g, (size_t)n);
    float *df = sg_dev_alloc(g, sizeof(float) * (size_t)n);
    float *got = sg_xmalloc(sizeof(float) * (size_t)n);
    struct sg_batch *bf, *bu;
    *batches = 0;
    while (worst >= 0 && sg_loader_next(lf, &bf) == 1) {
        SG_CHECK(sg_loader_next(lu, &bu) == 1, "the uint8 loader ended early");
        if (bu->img || !bu->img_u8 || memcmp(bu->idx, bf->idx, 16 * sizeof(int64_t))) worst = -1;
        if (worst >= 0) {
            sg_memcpy_h2d(g, d8, bu->img_u8, (size_t)n);
            op_normalize_u8(g, df, d8, 16 * views, 16 * 16, aug.mean, aug.std);
            sg_memcpy_d2h(g, got, df, sizeof(float) * (size_t)n);
            for (int64_t i = 0; i < n; i++) {
                int64_t u = ulp_distance(got[i], bf->img[i]);
                if (u > worst) worst = u;
            }
        }
        (*batches)++;
        sg_loader_release(lf, bf);
        sg_loader_release(lu, bu);
    }
    sg_dev_free(g, d8);
    sg_dev_free(g, df);
    free(got);
    sg_loader_close(lf);
    sg_loader_close(lu);
    sg_dataset_free(ds);
    return worst;
}

int sg_test_same_tensors(const char *a, const char *b)
{
    return sg_test_same_tensors_except(a, b, NULL);
}

int sg_test_same_tensors_except(const char *a, const char *b, const char *skip)
{
    struct sg_st_file fa, fb;
    if (sg_st_open(&fa, a)) return 0;
    if (sg_st_open(&fb, b)) {
        sg_st_close(&fa);
        return 0;
    }
    int same = fa.n == fb.n;
    for (int i = 0; same && i < fa.n; i++) {
        const struct sg_st_entry *ea = &fa.entries[i], *eb = sg_st_find(&fb, ea->name);
        if (skip && !strcmp(ea->name, skip)) continue;
        size_t n = ea->end - ea->begin;
        same = eb && eb->end - eb->begin == n && !memcmp(sg_st_raw(&fa, ea), sg_st_raw(&fb, eb), n);
        if (!same) fprintf(stderr, "  differs: %s\n", ea->name);
    }
    sg_st_close(&fa);
    sg_st_close(&fb);
    return same;
}
