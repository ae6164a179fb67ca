/* tools/loss_replay.c — see loss_replay.h. One adapter per loss family maps the file contract
 * onto the family's C API; the driver loop, metadata parsing and I/O are shared. */
#include "tools/loss_replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "losses/fastclip.h"
#include "losses/sogclr.h"

/* Everything one step needs, read from the input file. */
struct replay_step {
    int k, B, d;
    int64_t epoch;
    float *zi, *zt; /* (B, d) */
    int64_t *idx;   /* (B) */
    float tau;      /* fastclip only */
};

struct replay_result {
    float loss, objective, dtau, dlog_scale;
    float *dzi, *dzt; /* (B, d) */
};

/* A loss family behind the common driver. */
struct replay_family {
    const char *name;
    int (*init)(void **obj, const struct sg_st_file *in);
    int (*set_epoch)(void *obj, int64_t epoch);
    int (*step)(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                struct replay_result *r);
    int (*save)(const void *obj, struct sg_st_writer *w, const char *prefix);
    int (*load)(void *obj, const struct sg_st_file *f, const char *prefix);
    void (*destroy)(void *obj);
    int has_tau_grad;
};

/* ---- metadata helpers ------------------------------------------------------------------------ */

static int meta_double(const struct sg_st_file *f, const char *key, double def, int required,
                       double *out)
{
    const char *v = sg_st_meta(f, key);
    if (!v) {
        if (required)
            return sg_err("%s: metadata key '%s' is required by the loss replay contract", f->path,
                          key);
        *out = def;
        return 0;
    }
    char *end;
    *out = strtod(v, &end);
    if (end == v || *end != 0)
        return sg_err("%s: metadata '%s' = '%s' is not a number", f->path, key, v);
    return 0;
}

static int meta_schedule(const struct sg_st_file *f, int *out)
{
    const char *v = sg_st_meta(f, "gamma_schedule");
    if (!v || strcmp(v, "constant") == 0)
        *out = GCL_BI_GAMMA_CONSTANT;
    else if (strcmp(v, "cosine") == 0)
        *out = GCL_BI_GAMMA_COSINE;
    else
        return sg_err("%s: gamma_schedule '%s' is not 'constant' or 'cosine'", f->path, v);
    return 0;
}

/* Common bimodal hyperparameters: N, tau (sogclr), gamma, schedule, decay epochs, rho. */
struct bi_meta {
    double N, tau, gamma, decay, rho;
    int schedule;
};

static int read_bi_meta(const struct sg_st_file *f, struct bi_meta *m, int need_tau)
{
    if (meta_double(f, "N", 0, 1, &m->N) || meta_double(f, "tau", 0, need_tau, &m->tau) ||
        meta_double(f, "gamma", 0.9, 0, &m->gamma) ||
        meta_double(f, "gamma_decay_epochs", 0, 0, &m->decay) ||
        meta_double(f, "rho", 0, 0, &m->rho) || meta_schedule(f, &m->schedule))
        return -1;
    return 0;
}

/* ---- sogclr adapter -------------------------------------------------------------------------- */

static int sogclr_a_init(void **obj, const struct sg_st_file *in)
{
    struct bi_meta m;
    if (read_bi_meta(in, &m, 1)) return -1;
    struct sogclr_config cfg = {(int64_t)m.N, (float)m.tau, (float)m.gamma, m.schedule,
                                (int)m.decay};
    struct sogclr *l = sg_xcalloc(1, sizeof *l);
    if (sogclr_init(l, &cfg) != 0) {
        free(l);
        return -1;
    }
    *obj = l;
    return 0;
}

static int sogclr_a_epoch(void *obj, int64_t e)
{
    return sogclr_set_epoch(obj, e);
}

static int sogclr_a_step(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                         struct replay_result *r)
{
    struct sogclr_out o;
    int rc = use_ref ? sogclr_step_ref(obj, s->zi, s->zt, s->idx, s->B, s->d, r->dzi, r->dzt, &o)
                     : sogclr_step(c, obj, s->zi, s->zt, s->idx, s->B, s->d, r->dzi, r->dzt, &o);
    r->loss = o.loss;
    r->objective = o.objective;
    return rc;
}

static int sogclr_a_save(const void *obj, struct sg_st_writer *w, const char *prefix)
{
    return sogclr_state_save(obj, w, prefix);
}

static int sogclr_a_load(void *obj, const struct sg_st_file *f, const char *prefix)
{
    return sogclr_state_load(obj, f, prefix);
}

static void sogclr_a_destroy(void *obj)
{
    sogclr_free(obj);
    free(obj);
}

/* ---- fastclip adapter ------------------------------------------------------------------------ */

static int fastclip_a_init(void **obj, const struct sg_st_file *in)
{
    struct bi_meta m;
    if (read_bi_meta(in, &m, 0)) return -1;
    struct fastclip_config cfg = {(int64_t)m.N, (float)m.gamma, m.schedule, (int)m.decay,
                                  (float)m.rho};
    struct fastclip *l = sg_xcalloc(1, sizeof *l);
    if (fastclip_init(l, &cfg) != 0) {
        free(l);
        return -1;
    }
    *obj = l;
    return 0;
}

static int fastclip_a_epoch(void *obj, int64_t e)
{
    return fastclip_set_epoch(obj, e);
}

static int fastclip_a_step(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                           struct replay_result *r)
{
    struct fastclip_out o;
    int rc =
        use_ref
            ? fastclip_step_ref(obj, s->tau, s->zi, s->zt, s->idx, s->B, s->d, r->dzi, r->dzt, &o)
            : fastclip_step(c, obj, s->tau, s->zi, s->zt, s->idx, s->B, s->d, r->dzi, r->dzt, &o);
    r->loss = o.loss;
    r->objective = o.objective;
    r->dtau = o.dtau;
    r->dlog_scale = o.dlog_scale;
    return rc;
}

static int fastclip_a_save(const void *obj, struct sg_st_writer *w, const char *prefix)
{
    return fastclip_state_save(obj, w, prefix);
}

static int fastclip_a_load(void *obj, const struct sg_st_file *f, const char *prefix)
{
    return fastclip_state_load(obj, f, prefix);
}

static void fastclip_a_destroy(void *obj)
{
    fastclip_free(obj);
    free(obj);
}

static const struct replay_family families[] = {
    {"sogclr", sogclr_a_init, sogclr_a_epoch, sogclr_a_step, sogclr_a_save, sogclr_a_load,
     sogclr_a_destroy, 0},
    {"fastclip", fastclip_a_init, fastclip_a_epoch, fastclip_a_step, fastclip_a_save,
     fastclip_a_load, fastclip_a_destroy, 1},
};

/* ---- driver ---------------------------------------------------------------------------------- */

static const struct replay_family *find_family(const struct sg_st_file *in)
{
    const char *name = sg_st_meta(in, "loss");
    if (!name) {
        sg_err("%s: metadata key 'loss' is missing (one of: sogclr, fastclip)", in->path);
        return NULL;
    }
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].name, name) == 0) return &families[i];
    sg_err("%s: loss '%s' is not supported by the replay tool (supported: sogclr, fastclip)",
           in->path, name);
    return NULL;
}

static void step_free(struct replay_step *s)
{
    sg_afree(s->zi);
    sg_afree(s->zt);
    free(s->idx);
    memset(s, 0, sizeof *s);
}

/* Reads step k's tensors; shapes must agree (B x d features, B indices). */
static int step_read(const struct sg_st_file *in, int k, int64_t prev_epoch, struct replay_step *s)
{
    char name[64];
    int64_t shape[SG_MAX_DIMS], shape2[SG_MAX_DIMS];
    int nd = 0, nd2 = 0;
    memset(s, 0, sizeof *s);
    s->k = k;
    snprintf(name, sizeof name, "step.%d.zi", k);
    s->zi = sg_st_load_f32(in, name, NULL, &nd, shape);
    snprintf(name, sizeof name, "step.%d.zt", k);
    s->zt = s->zi ? sg_st_load_f32(in, name, NULL, &nd2, shape2) : NULL;
    if (!s->zi || !s->zt) goto fail;
    if (nd != 2 || nd2 != 2 || shape[0] != shape2[0] || shape[1] != shape2[1]) {
        sg_err("%s: step %d: zi and zt must both be [B, d]", in->path, k);
        goto fail;
    }
    s->B = (int)shape[0];
    s->d = (int)shape[1];
    s->idx = sg_xmalloc(sizeof(int64_t) * (size_t)(s->B ? s->B : 1));
    snprintf(name, sizeof name, "step.%d.index", k);
    if (sg_st_read_i64(in, name, s->idx, s->B)) goto fail;
    s->epoch = prev_epoch;
    snprintf(name, sizeof name, "step.%d.epoch", k);
    if (sg_st_find(in, name) && sg_st_read_i64(in, name, &s->epoch, 1)) goto fail;
    snprintf(name, sizeof name, "step.%d.tau", k);
    if (sg_st_find(in, name) && sg_st_read_f32(in, name, &s->tau, 1)) goto fail;
    return 0;
fail:
    step_free(s);
    return -1;
}

static void write_step(struct sg_st_writer *w, const struct replay_family *fam,
                       const struct replay_step *s, const struct replay_result *r)
{
    char name[64];
    int64_t one = 1, bd[2] = {s->B, s->d};
    snprintf(name, sizeof name, "step.%d.loss", s->k);
    sg_stw_add_f32(w, name, 1, &one, &r->loss);
    snprintf(name, sizeof name, "step.%d.objective", s->k);
    sg_stw_add_f32(w, name, 1, &one, &r->objective);
    snprintf(name, sizeof name, "step.%d.dzi", s->k);
    sg_stw_add_f32(w, name, 2, bd, r->dzi);
    snprintf(name, sizeof name, "step.%d.dzt", s->k);
    sg_stw_add_f32(w, name, 2, bd, r->dzt);
    if (!fam->has_tau_grad) return;
    snprintf(name, sizeof name, "step.%d.dtau", s->k);
    sg_stw_add_f32(w, name, 1, &one, &r->dtau);
    snprintf(name, sizeof name, "step.%d.dlog_scale", s->k);
    sg_stw_add_f32(w, name, 1, &one, &r->dlog_scale);
}

/* Runs one step: epoch, loss, outputs into w. */
static int run_step(struct sg_ctx *c, const struct sg_st_file *in, const struct replay_family *fam,
                    void *obj, int k, int64_t *epoch, int use_ref, struct sg_st_writer *w)
{
    struct replay_step s;
    if (step_read(in, k, *epoch, &s)) return -1;
    int rc = fam->set_epoch(obj, s.epoch);
    struct replay_result r = {0};
    r.dzi = sg_xmalloc_aligned(sizeof(float) * (size_t)s.B * (size_t)s.d + 4);
    r.dzt = sg_xmalloc_aligned(sizeof(float) * (size_t)s.B * (size_t)s.d + 4);
    if (rc == 0) rc = fam->step(c, obj, &s, use_ref, &r);
    if (rc == 0)
        write_step(w, fam, &s, &r);
    else
        sg_err_prefix("%s: step %d: ", in->path, k);
    *epoch = s.epoch;
    sg_afree(r.dzi);
    sg_afree(r.dzt);
    step_free(&s);
    return rc;
}

static void copy_metadata(const struct sg_st_file *in, struct sg_st_writer *w)
{
    for (int i = 0; i < in->nmeta; i++) sg_stw_meta(w, in->meta_keys[i], in->meta_vals[i]);
}

static int has_state(const struct sg_st_file *in)
{
    for (int i = 0; i < in->n; i++)
        if (strncmp(in->entries[i].name, "state.", 6) == 0) return 1;
    return 0;
}

static int replay(struct sg_ctx *c, const struct sg_st_file *in, const char *out_path, int use_ref)
{
    const struct replay_family *fam = find_family(in);
    double K = 0;
    void *obj = NULL;
    if (!fam || meta_double(in, "steps", 0, 1, &K) || fam->init(&obj, in)) return -1;
    int rc = has_state(in) ? fam->load(obj, in, "state.") : 0;
    struct sg_st_writer w;
    sg_stw_init(&w);
    copy_metadata(in, &w);
    int64_t epoch = 0;
    for (int k = 0; rc == 0 && k < (int)K; k++)
        rc = run_step(c, in, fam, obj, k, &epoch, use_ref, &w);
    if (rc == 0) rc = fam->save(obj, &w, "state.");
    if (rc == 0) rc = sg_stw_save(&w, out_path);
    sg_stw_free(&w);
    fam->destroy(obj);
    return rc;
}

int sg_loss_replay(const char *in_path, const char *out_path, int nthreads, int use_ref)
{
    struct sg_st_file in;
    struct sg_ctx c;
    if (sg_st_open(&in, in_path) != 0) return -1;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, nthreads) != 0) {
        sg_st_close(&in);
        return -1;
    }
    int rc = replay(&c, &in, out_path, use_ref);
    sg_ctx_free(&c);
    sg_st_close(&in);
    return rc;
}
