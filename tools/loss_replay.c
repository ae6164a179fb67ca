/* tools/loss_replay.c — see loss_replay.h. One adapter per loss family maps the file contract
 * onto the family's C API; the driver loop, metadata parsing and I/O are shared. */
#include "tools/loss_replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "losses/clip.h"
#include "losses/fastclip.h"
#include "losses/isogclr.h"
#include "losses/simclr.h"
#include "losses/sogclr.h"
#include "losses/sogclr_uni.h"

/* Everything one step needs, read from the input file. */
struct replay_step {
    int k, B, d;
    int64_t epoch;
    float *zi, *zt;    /* (B, d): image/text features, or views a/b (unimodal, simclr) */
    int64_t *idx;      /* (B), NULL for stateless losses */
    float tau;         /* fastclip: step.<k>.tau */
    float logit_scale; /* clip: step.<k>.logit_scale (p = log of the scale) */
};

struct replay_result {
    float loss, objective, dtau, dlog_scale;
    float *dzi, *dzt; /* (B, d) */
};

enum replay_outputs {
    OUT_OBJECTIVE = 1,  /* step.<k>.objective */
    OUT_TAU_GRAD = 2,   /* step.<k>.dtau and step.<k>.dlog_scale */
    OUT_SCALE_GRAD = 4, /* step.<k>.dlog_scale only (clip) */
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
    const char *f1, *f2; /* feature tensor names: "zi"/"zt" or "za"/"zb" */
    int needs_index;     /* per-sample state: step.<k>.index required */
    unsigned outputs;    /* enum replay_outputs */
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
    struct bi_meta m = {0};
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
    struct bi_meta m = {0};
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

/* ---- isogclr adapter (bimodal, per-sample temperatures) ---------------------------------------
 */

static int isogclr_a_init(void **obj, const struct sg_st_file *in)
{
    struct bi_meta m = {0};
    double eta = 0, beta = 0, tmin = 0, tmax = 0;
    if (read_bi_meta(in, &m, 1) || meta_double(in, "eta", 0.01, 0, &eta) ||
        meta_double(in, "beta", 0.9, 0, &beta) || meta_double(in, "tau_min", 0.005, 0, &tmin) ||
        meta_double(in, "tau_max", 0.05, 0, &tmax))
        return -1;
    struct isogclr_config cfg = {(int64_t)m.N, (float)m.tau, (float)m.gamma, m.schedule,
                                 (int)m.decay, (float)m.rho, (float)eta,     (float)beta,
                                 (float)tmin,  (float)tmax};
    struct isogclr *l = sg_xcalloc(1, sizeof *l);
    if (isogclr_init(l, &cfg) != 0) {
        free(l);
        return -1;
    }
    *obj = l;
    return 0;
}

static int isogclr_a_epoch(void *obj, int64_t e)
{
    return isogclr_set_epoch(obj, e);
}

static int isogclr_a_step(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                          struct replay_result *r)
{
    struct isogclr_out o;
    int rc = use_ref ? isogclr_step_ref(obj, s->zi, s->zt, s->idx, s->B, s->d, r->dzi, r->dzt, &o)
                     : isogclr_step(c, obj, s->zi, s->zt, s->idx, s->B, s->d, r->dzi, r->dzt, &o);
    r->loss = o.loss;
    r->objective = o.objective;
    return rc;
}

static int isogclr_a_save(const void *obj, struct sg_st_writer *w, const char *prefix)
{
    return isogclr_state_save(obj, w, prefix);
}

static int isogclr_a_load(void *obj, const struct sg_st_file *f, const char *prefix)
{
    return isogclr_state_load(obj, f, prefix);
}

static void isogclr_a_destroy(void *obj)
{
    isogclr_free(obj);
    free(obj);
}

/* ---- sogclr_uni adapter (two views; metadata isogclr = 1 for per-sample tau) ------------------
 */

static int uni_a_init(void **obj, const struct sg_st_file *in)
{
    struct sogclr_uni_config cfg;
    double N = 0, v[8] = {0}, iso = 0;
    if (meta_double(in, "N", 0, 1, &N)) return -1;
    sogclr_uni_config_default(&cfg, (int64_t)N);
    const char *keys[8] = {"tau", "gamma", "gamma_decay_epochs", "tau_min", "tau_max", "rho",
                           "eta", "beta"};
    float defs[8] = {cfg.tau, cfg.gamma, 0, cfg.tau_min, cfg.tau_max, cfg.rho, cfg.eta, cfg.beta};
    for (int i = 0; i < 8; i++)
        if (meta_double(in, keys[i], defs[i], 0, &v[i])) return -1;
    int sched = 0;
    if (meta_schedule(in, &sched) || meta_double(in, "isogclr", 0, 0, &iso)) return -1;
    cfg.tau = (float)v[0];
    cfg.gamma = (float)v[1];
    cfg.gamma_decay_epochs = (int)v[2];
    cfg.tau_min = (float)v[3];
    cfg.tau_max = (float)v[4];
    cfg.rho = (float)v[5];
    cfg.eta = (float)v[6];
    cfg.beta = (float)v[7];
    cfg.schedule =
        sched == GCL_BI_GAMMA_COSINE ? SOGCLR_UNI_GAMMA_COSINE : SOGCLR_UNI_GAMMA_CONSTANT;
    cfg.isogclr = iso != 0;
    struct sogclr_uni *l = sg_xcalloc(1, sizeof *l);
    if (sogclr_uni_init(l, &cfg) != 0) {
        free(l);
        return -1;
    }
    *obj = l;
    return 0;
}

static int uni_a_epoch(void *obj, int64_t e)
{
    return sogclr_uni_set_epoch(obj, (int)e);
}

static int uni_a_step(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                      struct replay_result *r)
{
    return use_ref ? sogclr_uni_forward_backward_ref(obj, s->zi, s->zt, s->idx, s->B, s->d,
                                                     &r->loss, r->dzi, r->dzt)
                   : sogclr_uni_forward_backward(obj, c, s->zi, s->zt, s->idx, s->B, s->d, &r->loss,
                                                 r->dzi, r->dzt);
}

static int uni_a_save(const void *obj, struct sg_st_writer *w, const char *prefix)
{
    return sogclr_uni_state_save(obj, w, prefix);
}

static int uni_a_load(void *obj, const struct sg_st_file *f, const char *prefix)
{
    return sogclr_uni_state_load(obj, f, prefix);
}

static void uni_a_destroy(void *obj)
{
    sogclr_uni_free(obj);
    free(obj);
}

/* ---- stateless baselines: clip (logit scale per step) and simclr (metadata tau) -------------- */

static int none_epoch(void *obj, int64_t e)
{
    SG_UNUSED(obj);
    SG_UNUSED(e);
    return 0;
}

static int none_save(const void *obj, struct sg_st_writer *w, const char *prefix)
{
    SG_UNUSED(obj);
    SG_UNUSED(w);
    SG_UNUSED(prefix);
    return 0;
}

static int none_load(void *obj, const struct sg_st_file *f, const char *prefix)
{
    SG_UNUSED(obj);
    SG_UNUSED(prefix);
    return sg_err("%s: this loss has no state; remove the state.* tensors", f->path);
}

static int clip_a_init(void **obj, const struct sg_st_file *in)
{
    SG_UNUSED(in);
    struct sg_clip_loss *l = sg_xcalloc(1, sizeof *l);
    sg_clip_loss_init(l);
    *obj = l;
    return 0;
}

static int clip_a_step(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                       struct replay_result *r)
{
    r->dlog_scale = 0.0f; /* dp accumulates */
    if (!use_ref)
        return sg_clip_loss_compute(obj, c, s->zi, s->zt, s->B, s->d, s->logit_scale, &r->loss,
                                    r->dzi, r->dzt, &r->dlog_scale);
    double loss;
    int rc = sg_clip_loss_ref(s->zi, s->zt, s->B, s->d, s->logit_scale, &loss, r->dzi, r->dzt,
                              &r->dlog_scale);
    r->loss = (float)loss;
    return rc;
}

static void clip_a_destroy(void *obj)
{
    sg_clip_loss_free(obj);
    free(obj);
}

static int simclr_a_init(void **obj, const struct sg_st_file *in)
{
    double tau = 0;
    if (meta_double(in, "tau", 0, 1, &tau)) return -1;
    struct sg_simclr_loss *l = sg_xcalloc(1, sizeof *l);
    if (sg_simclr_loss_init(l, (float)tau) != 0) {
        free(l);
        return -1;
    }
    *obj = l;
    return 0;
}

static int simclr_a_step(struct sg_ctx *c, void *obj, const struct replay_step *s, int use_ref,
                         struct replay_result *r)
{
    struct sg_simclr_loss *l = obj;
    if (!use_ref)
        return sg_simclr_loss_compute(l, c, s->zi, s->zt, s->B, s->d, &r->loss, r->dzi, r->dzt);
    double loss;
    int rc = sg_simclr_loss_ref(s->zi, s->zt, s->B, s->d, l->tau, &loss, r->dzi, r->dzt);
    r->loss = (float)loss;
    return rc;
}

static void simclr_a_destroy(void *obj)
{
    sg_simclr_loss_free(obj);
    free(obj);
}

static const struct replay_family families[] = {
    {"sogclr", sogclr_a_init, sogclr_a_epoch, sogclr_a_step, sogclr_a_save, sogclr_a_load,
     sogclr_a_destroy, "zi", "zt", 1, OUT_OBJECTIVE},
    {"isogclr", isogclr_a_init, isogclr_a_epoch, isogclr_a_step, isogclr_a_save, isogclr_a_load,
     isogclr_a_destroy, "zi", "zt", 1, OUT_OBJECTIVE},
    {"fastclip", fastclip_a_init, fastclip_a_epoch, fastclip_a_step, fastclip_a_save,
     fastclip_a_load, fastclip_a_destroy, "zi", "zt", 1, OUT_OBJECTIVE | OUT_TAU_GRAD},
    {"sogclr_uni", uni_a_init, uni_a_epoch, uni_a_step, uni_a_save, uni_a_load, uni_a_destroy, "za",
     "zb", 1, 0},
    {"clip", clip_a_init, none_epoch, clip_a_step, none_save, none_load, clip_a_destroy, "zi", "zt",
     0, OUT_SCALE_GRAD},
    {"simclr", simclr_a_init, none_epoch, simclr_a_step, none_save, none_load, simclr_a_destroy,
     "za", "zb", 0, 0},
};

#define SG_REPLAY_LOSSES "sogclr, isogclr, fastclip, sogclr_uni, clip, simclr"

/* ---- driver ---------------------------------------------------------------------------------- */

static const struct replay_family *find_family(const struct sg_st_file *in)
{
    const char *name = sg_st_meta(in, "loss");
    if (!name) {
        sg_err("%s: metadata key 'loss' is missing (one of: " SG_REPLAY_LOSSES ")", in->path);
        return NULL;
    }
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].name, name) == 0) return &families[i];
    sg_err("%s: loss '%s' is not supported by the replay tool (supported: " SG_REPLAY_LOSSES ")",
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

/* Optional scalar tensor step.<k>.<what> into *dst (unchanged when absent). */
static int read_opt_f32(const struct sg_st_file *in, int k, const char *what, float *dst)
{
    char name[64];
    snprintf(name, sizeof name, "step.%d.%s", k, what);
    return sg_st_find(in, name) ? sg_st_read_f32(in, name, dst, 1) : 0;
}

/* Loads step.<k>.<what> as a [B, d] matrix. */
static float *read_features(const struct sg_st_file *in, int k, const char *what, int64_t *shape)
{
    char name[64];
    int nd = 0;
    snprintf(name, sizeof name, "step.%d.%s", k, what);
    float *x = sg_st_load_f32(in, name, NULL, &nd, shape);
    if (x && nd != 2) {
        sg_err("%s: step %d: %s must be [B, d]", in->path, k, name);
        sg_afree(x);
        return NULL;
    }
    return x;
}

/* Reads step k's tensors; shapes must agree (B x d features, B indices). */
static int step_read(const struct sg_st_file *in, const struct replay_family *fam, int k,
                     int64_t prev_epoch, struct replay_step *s)
{
    char name[64];
    int64_t shape[SG_MAX_DIMS], shape2[SG_MAX_DIMS];
    memset(s, 0, sizeof *s);
    s->k = k;
    s->zi = read_features(in, k, fam->f1, shape);
    s->zt = s->zi ? read_features(in, k, fam->f2, shape2) : NULL;
    if (!s->zi || !s->zt) goto fail;
    if (shape[0] != shape2[0] || shape[1] != shape2[1]) {
        sg_err("%s: step %d: %s and %s must have the same [B, d] shape", in->path, k, fam->f1,
               fam->f2);
        goto fail;
    }
    s->B = (int)shape[0];
    s->d = (int)shape[1];
    if (fam->needs_index) {
        s->idx = sg_xmalloc(sizeof(int64_t) * (size_t)(s->B ? s->B : 1));
        snprintf(name, sizeof name, "step.%d.index", k);
        if (sg_st_read_i64(in, name, s->idx, s->B)) goto fail;
    }
    s->epoch = prev_epoch;
    snprintf(name, sizeof name, "step.%d.epoch", k);
    if (sg_st_find(in, name) && sg_st_read_i64(in, name, &s->epoch, 1)) goto fail;
    if (read_opt_f32(in, k, "tau", &s->tau) || read_opt_f32(in, k, "logit_scale", &s->logit_scale))
        goto fail;
    return 0;
fail:
    step_free(s);
    return -1;
}

static void add_scalar(struct sg_st_writer *w, int k, const char *what, float v)
{
    char name[64];
    int64_t one = 1;
    snprintf(name, sizeof name, "step.%d.%s", k, what);
    sg_stw_add_f32(w, name, 1, &one, &v);
}

static void write_step(struct sg_st_writer *w, const struct replay_family *fam,
                       const struct replay_step *s, const struct replay_result *r)
{
    char name[64];
    int64_t bd[2] = {s->B, s->d};
    add_scalar(w, s->k, "loss", r->loss);
    if (fam->outputs & OUT_OBJECTIVE) add_scalar(w, s->k, "objective", r->objective);
    snprintf(name, sizeof name, "step.%d.d%s", s->k, fam->f1);
    sg_stw_add_f32(w, name, 2, bd, r->dzi);
    snprintf(name, sizeof name, "step.%d.d%s", s->k, fam->f2);
    sg_stw_add_f32(w, name, 2, bd, r->dzt);
    if (fam->outputs & OUT_TAU_GRAD) add_scalar(w, s->k, "dtau", r->dtau);
    if (fam->outputs & (OUT_TAU_GRAD | OUT_SCALE_GRAD))
        add_scalar(w, s->k, "dlog_scale", r->dlog_scale);
}

/* Runs one step: epoch, loss, outputs into w. */
static int run_step(struct sg_ctx *c, const struct sg_st_file *in, const struct replay_family *fam,
                    void *obj, int k, int64_t *epoch, int use_ref, struct sg_st_writer *w)
{
    struct replay_step s;
    if (step_read(in, fam, k, *epoch, &s)) return -1;
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
