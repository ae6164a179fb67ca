/*
 * eval/clip_eval.c — CLIP model evaluation: embeddings, zero-shot, retrieval (see
 * eval/clip_eval.h).
 *
 * Devices: the model runs on em->ctx. On a CUDA context each loader batch travels as uint8
 * pixels (the loader's u8 option) and is normalised on the GPU (op_normalize_u8: the same floats
 * as the CPU's transform), token ids stay on the host (the text encoder uploads them), and the
 * embeddings of every batch come back with one device-to-host copy.
 */
#define _POSIX_C_SOURCE 200809L
#include "eval/clip_eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "core/yaml.h"
#include "data/loader.h"
#include "data/transforms.h"
#include "model/clip_config.h"
#include "ops/input.h"
#include "train/checkpoint.h"
#include "train/config.h"

/* ---- loading ------------------------------------------------------------------------------ */

static int model_from_meta(struct sg_clip_config *cfg, const char *yaml, const char *path)
{
    struct sg_ydoc d;
    if (!yaml) return sg_err("%s: no model_config in the metadata (not a sogclip file?)", path);
    if (sg_yaml_load_string(&d, yaml, path)) return -1;
    sg_clip_config_defaults(cfg);
    int rc = sg_clip_config_bind(cfg, &d, d.root);
    sg_yaml_free(&d);
    return rc;
}

int sg_eval_model_load(struct sg_eval_model *em, const char *checkpoint, const char *tokenizer_path,
                       int batch, int threads)
{
    return sg_eval_model_load_on(em, checkpoint, tokenizer_path, batch, threads, SG_DEVICE_CPU, 0);
}

int sg_eval_model_load_on(struct sg_eval_model *em, const char *checkpoint,
                          const char *tokenizer_path, int batch, int threads, enum sg_device dev,
                          int device_id)
{
    struct sg_st_file f;
    struct sg_clip_config cfg;
    char tok[1024];
    memset(em, 0, sizeof *em);
    em->workers = 2;
    em->owned = 1;
    em->ctx = &em->own_ctx;
    em->model = &em->own_model;
    if (sg_st_open(&f, checkpoint)) return -1;
    const char *fmt = sg_st_meta(&f, "format");
    int is_ckpt = fmt && !strcmp(fmt, "sogclip-checkpoint-1");
    int rc = model_from_meta(&cfg, sg_st_meta(&f, "model_config"), checkpoint);
    if (rc == 0 && sg_ctx_init(em->ctx, dev, device_id, threads)) rc = -1;
    if (rc == 0) {
        sg_clip_create(em->model, &cfg, em->ctx, 0, 0);
        rc = sg_ckpt_read_arena(&f, &em->model->ps, em->model->ps.data, is_ckpt ? "model." : "", 1);
    }
    /* the tokenizer and its settings as the model was trained (the training config) */
    struct sg_train_config tc;
    const char *train_yaml = sg_st_meta(&f, "config");
    int have_tc = train_yaml && sg_train_config_load_string(&tc, train_yaml, checkpoint) == 0;
    snprintf(tok, sizeof tok, "%s", have_tc ? tc.tokenizer.model : "");
    sg_st_close(&f);
    if (rc) return -1;
    if (tokenizer_path) snprintf(tok, sizeof tok, "%s", tokenizer_path);
    if (!tok[0]) return sg_err("%s: no tokenizer recorded: pass --tokenizer MODEL", checkpoint);
    struct sg_tokenizer_opts o;
    sg_tokenizer_default_opts(&o);
    o.lower = have_tc && tc.tokenizer.lower;
    o.clean_ws = have_tc && tc.tokenizer.clean_ws;
    if (sg_tokenizer_load(tok, &o, &em->tok)) return -1;
    sg_clip_plan(em->model, batch);
    return 0;
}

void sg_eval_model_wrap(struct sg_eval_model *em, struct sg_ctx *c, struct sg_clip *m,
                        struct sg_tokenizer *tok, int workers)
{
    memset(em, 0, sizeof *em);
    em->ctx = c;
    em->model = m;
    em->tok = tok;
    em->workers = workers;
}

void sg_eval_model_free(struct sg_eval_model *em)
{
    if (!em->owned) return;
    if (em->tok) sg_tokenizer_free(em->tok);
    if (em->own_model.ps.items) sg_clip_destroy(&em->own_model);
    sg_ctx_free(&em->own_ctx);
}

/* ---- embeddings --------------------------------------------------------------------------- */

int sg_embed_dataset_images(struct sg_eval_model *em, const struct sg_dataset *ds, float *out,
                            int32_t *labels)
{
    struct sg_clip *m = em->model;
    struct sg_ctx *c = em->ctx;
    int B = m->B, E = m->cfg.embed_dim, S = m->cfg.vision.image_size;
    int gpu = c->dev != SG_DEVICE_CPU;
    size_t px = (size_t)3 * S * S; /* values per image */
    struct sg_aug_config aug;
    sg_aug_preset(&aug, SG_AUG_CLIP_EVAL, S);
    struct sg_loader_config lc;
    sg_loader_default_config(&lc);
    lc.batch = B;
    lc.workers = em->workers;
    lc.shuffle = 0;
    lc.aug = &aug;
    lc.max_bad_fraction = 0.0;
    lc.u8 = gpu;
    struct sg_loader *l;
    if (sg_loader_open(&lc, ds, &l)) return -1;
    sg_loader_start_epoch(l, 0);
    /* img (B,3,S,S) float on the device (rows past a short last batch keep older images: their
     * embeddings are dropped); GPU: px8 (B,3,S,S) uint8 device, zh (B,E) host */
    float *img = sg_dev_alloc(c, (size_t)B * px * sizeof(float));
    sg_memset_zero(c, img, (size_t)B * px * sizeof(float));
    uint8_t *px8 = gpu ? sg_dev_alloc(c, (size_t)B * px) : NULL;
    float *zh = gpu ? sg_xmalloc((size_t)B * E * sizeof(float)) : NULL;
    struct sg_batch *b;
    int rc = 0;
    int64_t done = 0;
    while ((rc = sg_loader_next(l, &b)) == 1) {
        if (gpu) {
            sg_memcpy_h2d(c, px8, b->img_u8, (size_t)b->n * px);
            op_normalize_u8(c, img, px8, b->n, (int64_t)S * S, aug.mean, aug.std);
        } else {
            memcpy(img, b->img, (size_t)b->n * px * sizeof(float));
        }
        const float *z = sg_clip_encode_image(m, c, img, 0);
        if (gpu) {
            sg_memcpy_d2h(c, zh, z, (size_t)b->n * E * sizeof(float));
            z = zh;
        }
        for (int r = 0; r < b->n; r++) {
            memcpy(out + (size_t)b->idx[r] * E, z + (size_t)r * E, (size_t)E * sizeof(float));
            if (labels) labels[b->idx[r]] = b->labels[r];
        }
        done += b->n;
        sg_loader_release(l, b);
    }
    int64_t seen, bad;
    sg_loader_stats(l, &seen, &bad);
    sg_loader_close(l);
    sg_dev_free(c, img);
    if (px8) sg_dev_free(c, px8);
    free(zh);
    if (rc < 0) return -1;
    if (done != ds->n)
        return sg_err("%s: %lld of %lld images unreadable (run sogclip data verify)", ds->path,
                      (long long)(ds->n - done), (long long)ds->n);
    return 0;
}

int sg_embed_texts(struct sg_eval_model *em, const char *const *texts, int64_t n, float *out)
{
    struct sg_clip *m = em->model;
    int B = m->B, E = m->cfg.embed_dim, T = m->cfg.text.context_length;
    int32_t *ids = sg_xcalloc((size_t)B * T, sizeof(int32_t)); /* host: the encoder uploads */
    int rc = 0;
    for (int64_t s = 0; s < n && rc == 0; s += B) {
        int k = (int)(n - s < B ? n - s : B);
        for (int r = 0; r < B && rc == 0; r++) {
            const char *txt = texts[s + (r < k ? r : 0)];
            if (sg_tokenizer_encode(em->tok, txt, ids + (size_t)r * T, T) < 0) rc = -1;
        }
        if (rc) break;
        const float *z = sg_clip_encode_text(m, em->ctx, ids);
        sg_memcpy_d2h(em->ctx, out + (size_t)s * E, z, (size_t)k * E * sizeof(float));
    }
    free(ids);
    return rc;
}

/* ---- zero-shot ------------------------------------------------------------------------------ */

/* Non-empty lines of a text file (malloc'd array of malloc'd strings). -1 on error. */
static int read_lines(const char *path, char ***out)
{
    FILE *f = fopen(path, "r");
    if (!f) return sg_err("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    int n = 0, ncap = 0;
    *out = NULL;
    for (ssize_t len; (len = getline(&line, &cap, f)) >= 0;) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (n == ncap)
            *out = sg_xrealloc(*out, sizeof(char *) * (size_t)(ncap = ncap ? 2 * ncap : 64));
        (*out)[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    return n;
}

static void free_lines(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* "a photo of a {}." with the class name substituted (malloc'd). */
static char *fill_template(const char *tpl, const char *name)
{
    const char *at = strstr(tpl, "{}");
    size_t n = strlen(tpl) + strlen(name) + 1;
    char *s = sg_xmalloc(n);
    if (!at)
        snprintf(s, n, "%s %s", tpl, name);
    else
        snprintf(s, n, "%.*s%s%s", (int)(at - tpl), tpl, name, at + 2);
    return s;
}

static int class_weights(struct sg_eval_model *em, char **names, int C, char **tpls, int P,
                         float *W)
{
    int E = em->model->cfg.embed_dim;
    char **prompts = sg_xmalloc(sizeof(char *) * (size_t)C * P);
    for (int c = 0; c < C; c++)
        for (int p = 0; p < P; p++) prompts[c * P + p] = fill_template(tpls[p], names[c]);
    float *emb = sg_xmalloc(sizeof(float) * (size_t)C * P * E);
    int rc = sg_embed_texts(em, (const char *const *)prompts, (int64_t)C * P, emb);
    if (rc == 0) rc = sg_zeroshot_classifier(emb, C, P, E, W);
    free(emb);
    free_lines(prompts, C * P);
    return rc;
}

#ifndef SG_SOURCE_DIR
#define SG_SOURCE_DIR "."
#endif

const char *sg_zeroshot_file(const char *name_or_path, char *buf, size_t n)
{
    if (!name_or_path || strchr(name_or_path, '/') || strchr(name_or_path, '.'))
        return name_or_path;
    snprintf(buf, n, "%s/configs/zeroshot/%s.txt", SG_SOURCE_DIR, name_or_path);
    return buf;
}

int sg_eval_zeroshot(struct sg_eval_model *em, const char *folder, const char *classnames_arg,
                     const char *templates_arg, struct sg_results *r)
{
    char tbuf[1024], cbuf[1024];
    const char *templates = sg_zeroshot_file(templates_arg, tbuf, sizeof tbuf);
    const char *classnames = sg_zeroshot_file(classnames_arg, cbuf, sizeof cbuf);
    char **names = NULL, **tpls = NULL;
    static const char *default_tpl = "a photo of a {}.";
    struct sg_dataset_spec spec = {.kind = "folder", .path = folder, .classnames = classnames};
    struct sg_dataset *ds;
    if (sg_dataset_open(&spec, &ds)) return -1;
    int C = ds->nclasses, E = em->model->cfg.embed_dim, P = 1, rc = 0;
    int nn = classnames ? read_lines(classnames, &names) : -1;
    if (classnames && nn != C)
        rc = sg_err("%s: %d class names for %d class folders in %s", classnames, nn, C, folder);
    if (rc == 0 && templates) {
        P = read_lines(templates, &tpls);
        if (P < 0) rc = -1; /* cannot open (message set) */
        if (P == 0) rc = sg_err("%s: no templates", templates);
    }
    if (rc == 0 && !tpls) tpls = (char **)&default_tpl;
    char **cls = names ? names : (ds->classnames ? ds->classnames : ds->class_ids);
    float *W = sg_xmalloc(sizeof(float) * (size_t)C * E);
    float *img = sg_xmalloc(sizeof(float) * (size_t)ds->n * E);
    int32_t *labels = sg_xmalloc(sizeof(int32_t) * (size_t)ds->n);
    if (rc == 0) rc = class_weights(em, cls, C, tpls, P, W);
    if (rc == 0) rc = sg_embed_dataset_images(em, ds, img, labels);
    struct sg_cls_metrics m;
    if (rc == 0) rc = sg_zeroshot_eval(img, ds->n, W, C, E, labels, &m, NULL);
    if (rc == 0) sg_results_add_zeroshot(r, &m);
    if (names) free_lines(names, nn);
    if (tpls && tpls != (char **)&default_tpl) free_lines(tpls, P);
    free(W);
    free(img);
    free(labels);
    sg_dataset_free(ds);
    return rc;
}

/* ---- retrieval ------------------------------------------------------------------------------ */

/* Every caption of every image, and the image of each caption. */
int64_t sg_dataset_all_captions(const struct sg_dataset *ds, char ***texts, int32_t **t2i)
{
    struct sg_raw_sample s;
    memset(&s, 0, sizeof s);
    int64_t n = 0, cap = 0;
    *texts = NULL;
    *t2i = NULL;
    for (int64_t i = 0; i < ds->n; i++) {
        if (sg_dataset_read(ds, i, &s)) {
            sg_raw_sample_free(&s);
            return -1;
        }
        for (int k = 0; k < s.ncaptions; k++) {
            if (n == cap) {
                cap = cap ? 2 * cap : 256;
                *texts = sg_xrealloc(*texts, sizeof(char *) * (size_t)cap);
                *t2i = sg_xrealloc(*t2i, sizeof(int32_t) * (size_t)cap);
            }
            (*texts)[n] = strdup(s.captions[k]);
            (*t2i)[n++] = (int32_t)i;
        }
    }
    sg_raw_sample_free(&s);
    return n;
}

int sg_eval_retrieval(struct sg_eval_model *em, const char *csv, const char *image_key,
                      const char *caption_key, struct sg_results *r)
{
    struct sg_dataset_spec spec = {
        .path = csv, .image_key = image_key, .caption_key = caption_key, .split = em->split};
    struct sg_dataset *ds;
    if (sg_dataset_open(&spec, &ds)) return -1;
    char **texts;
    int32_t *t2i;
    int E = em->model->cfg.embed_dim;
    int64_t nt = sg_dataset_all_captions(ds, &texts, &t2i);
    int rc = nt > 0 ? 0 : (nt == 0 ? sg_err("%s: no captions", csv) : -1);
    float *zi = sg_xmalloc(sizeof(float) * (size_t)ds->n * E);
    float *zt = sg_xmalloc(sizeof(float) * (size_t)(nt > 0 ? nt : 1) * E);
    if (rc == 0) rc = sg_embed_dataset_images(em, ds, zi, NULL);
    if (rc == 0) rc = sg_embed_texts(em, (const char *const *)texts, nt, zt);
    struct sg_retrieval_metrics m;
    if (rc == 0) rc = sg_retrieval_eval(zi, ds->n, zt, nt, E, t2i, &m, NULL, NULL);
    if (rc == 0) sg_results_add_retrieval(r, &m);
    if (nt > 0) free_lines(texts, (int)nt);
    free(t2i);
    free(zi);
    free(zt);
    sg_dataset_free(ds);
    return rc;
}
