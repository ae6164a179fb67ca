/*
 * model/clip.c — CLIP model assembly: towers, logit scale, activation plan, forward/backward
 * with feature normalisation (see model/clip.h).
 */
#include "model/clip.h"

#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ops/elementwise.h"

#define NORM_EPS 1e-12f /* torch.nn.functional.normalize's default */

static void vision_init(struct sg_clip *m)
{
    const struct sg_clip_config *cfg = &m->cfg;
    const struct sg_clip_vision_config *v = &cfg->vision;
    switch (v->arch) {
    case SG_VISION_VIT: {
        struct sg_vit_config vc = {.image_size = v->image_size,
                                   .patch = v->patch_size,
                                   .width = v->width,
                                   .layers = v->layers[0],
                                   .heads = v->width / v->head_width,
                                   .embed_dim = cfg->embed_dim,
                                   .quick_gelu = cfg->quick_gelu};
        sg_vit_init(&m->vit, &vc, &m->ps, "visual");
        m->vit.tr.recompute = cfg->grad_checkpointing;
        break;
    }
    case SG_VISION_MODIFIED_RESNET: {
        struct sg_mrn_config mc = {.width = v->width,
                                   .heads = 32 * v->width / v->head_width,
                                   .output_dim = cfg->embed_dim,
                                   .image_size = v->image_size};
        memcpy(mc.layers, v->layers, sizeof mc.layers);
        sg_mrn_init(&m->mrn, &mc, &m->ps, "visual");
        break;
    }
    case SG_VISION_RESNET: {
        struct sg_resnet_config rc = {.base_width = v->width,
                                      .num_classes = cfg->embed_dim,
                                      .cifar_stem = v->cifar_stem,
                                      .bottleneck = v->bottleneck};
        memcpy(rc.layers, v->layers, sizeof rc.layers);
        sg_resnet_init(&m->rn, &rc, &m->ps, "visual");
        break;
    }
    default:
        SG_PANIC("clip: unknown vision arch %d", (int)v->arch);
    }
}

static void text_init(struct sg_clip *m)
{
    const struct sg_clip_text_config *t = &m->cfg.text;
    struct sg_text_encoder_config tc = {.vocab = t->vocab_size,
                                        .context = t->context_length,
                                        .width = t->width,
                                        .layers = t->layers,
                                        .heads = t->heads,
                                        .embed_dim = m->cfg.embed_dim,
                                        .quick_gelu = m->cfg.quick_gelu,
                                        .eot_token = t->eot_token};
    sg_text_encoder_init(&m->text, &tc, &m->ps, "");
    m->text.tr.recompute = m->cfg.grad_checkpointing;
}

void sg_clip_create(struct sg_clip *m, const struct sg_clip_config *cfg, struct sg_ctx *c,
                    int with_optim, uint64_t seed)
{
    SG_CHECK(cfg->embed_dim > 0, "clip: embed_dim %d", cfg->embed_dim);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    sg_params_init(&m->ps);
    vision_init(m);
    text_init(m);
    m->logit_scale =
        sg_params_add(&m->ps, "logit_scale", 0, NULL, SG_PARAM_INIT_CONST | SG_PARAM_TEMPERATURE,
                      cfg->init_logit_scale);
    sg_params_alloc(&m->ps, c, with_optim);
    struct sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_params_init_values(&m->ps, &rng);
}

void sg_clip_destroy(struct sg_clip *m)
{
    sg_text_encoder_free(&m->text);
    if (m->act.base) sg_arena_free(&m->act);
    sg_params_free(&m->ps);
    memset(m, 0, sizeof *m);
}

static size_t vision_plan(struct sg_clip *m, int B)
{
    int S = m->cfg.vision.image_size;
    switch (m->cfg.vision.arch) {
    case SG_VISION_VIT:
        return sg_vit_plan(&m->vit, B);
    case SG_VISION_MODIFIED_RESNET:
        return sg_mrn_plan(&m->mrn, B);
    default:
        return sg_resnet_plan(&m->rn, B, S, S);
    }
}

static void vision_bind(struct sg_clip *m)
{
    switch (m->cfg.vision.arch) {
    case SG_VISION_VIT:
        sg_vit_bind(&m->vit, &m->act);
        break;
    case SG_VISION_MODIFIED_RESNET:
        sg_mrn_bind(&m->mrn, &m->act);
        break;
    default:
        sg_resnet_bind(&m->rn, &m->act);
    }
}

/* The model's own buffers: raw features, normalized features, norms (both towers). */
static size_t head_bytes(int B, int E)
{
    return 4 * sg_arena_round((size_t)B * E * sizeof(float)) +
           2 * sg_arena_round((size_t)B * sizeof(float));
}

size_t sg_clip_plan(struct sg_clip *m, int B)
{
    int E = m->cfg.embed_dim;
    SG_CHECK(B >= 1, "clip_plan: B %d", B);
    if (m->act.base) sg_arena_free(&m->act);
    m->B = B;
    m->act_image = vision_plan(m, B);
    m->act_text = sg_text_encoder_plan(&m->text, B);
    size_t total = m->act_image + m->act_text + head_bytes(B, E);
    sg_arena_init(&m->act, m->ps.ctx, total, "clip activations");
    vision_bind(m);
    sg_text_encoder_bind(&m->text, &m->act);
    size_t be = (size_t)B * E;
    m->fi = sg_arena_floats(&m->act, be);
    m->ft = sg_arena_floats(&m->act, be);
    m->zi = sg_arena_floats(&m->act, be);
    m->zt = sg_arena_floats(&m->act, be);
    m->ni = sg_arena_floats(&m->act, (size_t)B);
    m->nt = sg_arena_floats(&m->act, (size_t)B);
    return total;
}

static double mib(size_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

void sg_clip_print_plan(const struct sg_clip *m, FILE *f)
{
    const char *arch[] = {"vit", "modified_resnet", "resnet"};
    size_t pbytes = m->ps.total * sizeof(float);
    int slots = m->ps.m ? 4 : 2;
    fprintf(f, "model %s: image %s %dpx, text %d layers x %d wide, embed %d\n", m->cfg.name,
            arch[m->cfg.vision.arch], m->cfg.vision.image_size, m->cfg.text.layers,
            m->cfg.text.width, m->cfg.embed_dim);
    fprintf(f, "  parameters      %10.2f M  (%8.1f MiB weights, %8.1f MiB grads + optimizer)\n",
            (double)sg_params_count(&m->ps, 1) / 1e6, mib(pbytes), mib(pbytes * (slots - 1)));
    fprintf(f, "  activations B=%-4d image %8.1f MiB, text %8.1f MiB%s\n", m->B, mib(m->act_image),
            mib(m->act_text), m->cfg.grad_checkpointing ? " (transformer blocks recomputed)" : "");
    fprintf(f, "  total planned   %10.1f MiB\n", mib(pbytes * slots + m->act.cap));
}

static const float *vision_forward(struct sg_clip *m, struct sg_ctx *c, const float *img,
                                   int training)
{
    switch (m->cfg.vision.arch) {
    case SG_VISION_VIT:
        return sg_vit_forward(&m->vit, c, img);
    case SG_VISION_MODIFIED_RESNET:
        return sg_mrn_forward(&m->mrn, c, img, training);
    default:
        return sg_resnet_forward(&m->rn, c, img, training);
    }
}

const float *sg_clip_encode_image(struct sg_clip *m, struct sg_ctx *c, const float *img,
                                  int training)
{
    int B = m->B, E = m->cfg.embed_dim;
    SG_CHECK(m->fi != NULL, "clip: encode before plan");
    const float *f = vision_forward(m, c, img, training);
    sg_memcpy_d2d(c, m->fi, f, (size_t)B * E * sizeof(float));
    op_l2norm_forward(c, m->zi, m->ni, m->fi, B, E, NORM_EPS);
    m->training = training;
    return m->zi;
}

const float *sg_clip_encode_text(struct sg_clip *m, struct sg_ctx *c, const int32_t *ids)
{
    int B = m->B, E = m->cfg.embed_dim;
    SG_CHECK(m->ft != NULL, "clip: encode before plan");
    const float *f = sg_text_encoder_forward(&m->text, c, ids);
    sg_memcpy_d2d(c, m->ft, f, (size_t)B * E * sizeof(float));
    op_l2norm_forward(c, m->zt, m->nt, m->ft, B, E, NORM_EPS);
    return m->zt;
}

void sg_clip_forward(struct sg_clip *m, struct sg_ctx *c, const float *img, const int32_t *ids,
                     int training)
{
    sg_clip_encode_image(m, c, img, training);
    sg_clip_encode_text(m, c, ids);
}

void sg_clip_backward(struct sg_clip *m, struct sg_ctx *c, const float *dzi, const float *dzt)
{
    int B = m->B, E = m->cfg.embed_dim, tr = m->training;
    /* the raw-feature buffers become the gradients w.r.t. the raw features */
    op_l2norm_backward(c, m->fi, dzi, m->zi, m->ni, B, E, NORM_EPS);
    op_l2norm_backward(c, m->ft, dzt, m->zt, m->nt, B, E, NORM_EPS);
    switch (m->cfg.vision.arch) {
    case SG_VISION_VIT:
        sg_vit_backward(&m->vit, c, NULL, m->fi);
        break;
    case SG_VISION_MODIFIED_RESNET:
        sg_mrn_backward(&m->mrn, c, NULL, m->fi, tr);
        break;
    default:
        sg_resnet_backward(&m->rn, c, NULL, m->fi, tr);
    }
    sg_text_encoder_backward(&m->text, c, m->ft);
}
