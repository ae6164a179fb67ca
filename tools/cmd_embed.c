/*
 * tools/cmd_embed.c — `sogclip embed`: image and/or text embeddings of a dataset, for users' own
 * analyses. Output (safetensors): "image" F32 (N, E) normalized image embeddings in dataset
 * order, "label" I32 (N) when the dataset is labelled, "text" F32 (Nt, E) caption embeddings
 * and "text_image" I32 (Nt) the image of each caption (CSV/TSV and WebDataset captions);
 * metadata: checkpoint, data.
 *   sogclip embed --checkpoint C --data D -o OUT.safetensors [--images-only|--texts-only]
 *                 [--image-key K] [--caption-key K] [--tokenizer M] [--batch 128] [--threads N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/safetensors.h"
#include "eval/clip_eval.h"

int sg_cmd_embed(int argc, char **argv);

static int embed_usage(void)
{
    fprintf(stderr, "usage: sogclip embed --checkpoint C --data D -o OUT.safetensors "
                    "[--images-only|--texts-only]\n"
                    "                     [--image-key K] [--caption-key K] [--tokenizer M] "
                    "[--batch 128] [--threads N]\n");
    return 2;
}

struct embed_args {
    const char *ckpt, *data, *out, *image_key, *caption_key, *tok;
    int images, texts, batch, threads;
};

static int parse_embed(struct embed_args *a, int argc, char **argv)
{
    *a = (struct embed_args){.images = 1, .texts = 1, .batch = 128};
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "--images-only")) {
            a->texts = 0;
            continue;
        }
        if (!strcmp(k, "--texts-only")) {
            a->images = 0;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(k, "--checkpoint"))
            a->ckpt = v;
        else if (!strcmp(k, "--data"))
            a->data = v;
        else if (!strcmp(k, "-o"))
            a->out = v;
        else if (!strcmp(k, "--image-key"))
            a->image_key = v;
        else if (!strcmp(k, "--caption-key"))
            a->caption_key = v;
        else if (!strcmp(k, "--tokenizer"))
            a->tok = v;
        else if (!strcmp(k, "--batch"))
            a->batch = atoi(v);
        else if (!strcmp(k, "--threads"))
            a->threads = atoi(v);
        else
            return -1;
    }
    return a->ckpt && a->data && a->out && a->batch >= 1 && (a->images || a->texts) ? 0 : -1;
}

static int add_images(struct sg_eval_model *em, const struct sg_dataset *ds, struct sg_st_writer *w)
{
    int E = em->model->cfg.embed_dim;
    float *z = sg_xmalloc(sizeof(float) * (size_t)ds->n * E);
    int32_t *labels = sg_xmalloc(sizeof(int32_t) * (size_t)ds->n);
    int rc = sg_embed_dataset_images(em, ds, z, labels);
    if (rc == 0) {
        int64_t shape[2] = {ds->n, E};
        sg_stw_add_f32(w, "image", 2, shape, z);
        if (ds->nclasses > 0) sg_stw_add(w, "label", SG_I32, 1, shape, labels);
    }
    free(z);
    free(labels);
    return rc;
}

static int add_texts(struct sg_eval_model *em, const struct sg_dataset *ds, struct sg_st_writer *w)
{
    char **texts;
    int32_t *t2i;
    int E = em->model->cfg.embed_dim;
    int64_t nt = sg_dataset_all_captions(ds, &texts, &t2i);
    if (nt <= 0) return nt == 0 ? 0 : -1; /* no captions: images only */
    float *z = sg_xmalloc(sizeof(float) * (size_t)nt * E);
    int rc = sg_embed_texts(em, (const char *const *)texts, nt, z);
    if (rc == 0) {
        int64_t shape[2] = {nt, E};
        sg_stw_add_f32(w, "text", 2, shape, z);
        sg_stw_add(w, "text_image", SG_I32, 1, shape, t2i);
    }
    for (int64_t i = 0; i < nt; i++) free(texts[i]);
    free(texts);
    free(t2i);
    free(z);
    return rc;
}

int sg_cmd_embed(int argc, char **argv)
{
    struct embed_args a;
    if (parse_embed(&a, argc, argv)) return embed_usage();
    struct sg_dataset_spec spec = {
        .path = a.data, .image_key = a.image_key, .caption_key = a.caption_key};
    struct sg_dataset *ds = NULL;
    struct sg_eval_model em;
    struct sg_st_writer w;
    sg_stw_init(&w);
    int rc = sg_eval_model_load(&em, a.ckpt, a.tok, a.batch, a.threads);
    if (rc == 0) rc = sg_dataset_open(&spec, &ds);
    if (rc == 0 && a.images) rc = add_images(&em, ds, &w);
    if (rc == 0 && a.texts) rc = add_texts(&em, ds, &w);
    if (rc == 0) {
        sg_stw_meta(&w, "checkpoint", a.ckpt);
        sg_stw_meta(&w, "data", a.data);
        rc = sg_stw_save(&w, a.out);
    }
    if (rc == 0)
        printf("sogclip embed: wrote %s (%d tensors)\n", a.out, w.n);
    else
        fprintf(stderr, "sogclip embed: %s\n", sg_last_error());
    sg_stw_free(&w);
    if (ds) sg_dataset_free(ds);
    sg_eval_model_free(&em);
    return rc ? 1 : 0;
}
