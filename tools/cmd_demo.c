/*
 * tools/cmd_demo.c — `sogclip demo`: the embedded end-to-end example.
 *   1. `sogclip data synth` the captioned shapes dataset into <out>/demo-data (skipped when it
 *      is already complete), and train a SentencePiece tokenizer on its captions;
 *   2. train the demo CLIP (configs/demo.yaml: configs/models/demo-rn.yaml, two-way SogCLR,
 *      AdamW) — a previous demo run continues from its latest checkpoint;
 *   3. the trainer evaluates zero-shot classification (48 colour-shape classes) and image-text
 *      retrieval on the validation split every 5 epochs and at the end (configs/demo.yaml's eval
 *      section); the final results are printed (and written as JSON into the run folder) with
 *      the path of report.html.
 * Options: --out DIR (default runs), --epochs N, --threads N. Exit codes as `sogclip train`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "data/synth.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"

#ifndef SG_SOURCE_DIR
#define SG_SOURCE_DIR "."
#endif

int sg_cmd_demo(int argc, char **argv);

struct demo {
    char out[SG_PATH_MAX], data[SG_PATH_MAX + 16], tok[SG_PATH_MAX + 32];
    int epochs, threads;
};

static int demo_usage(void)
{
    fprintf(stderr, "usage: sogclip demo [--out DIR] [--epochs N] [--threads N]\n"
                    "  generates synthetic captioned shapes, trains a small CLIP with two-way\n"
                    "  SogCLR and evaluates zero-shot classification and retrieval\n");
    return 2;
}

static int prepare_data(const struct demo *d)
{
    struct sg_synth_opts o;
    struct sg_synth_stats st;
    sg_synth_opts_default(&o);
    o.dir = d->data;
    o.size = 32;
    o.ntrain = 4000;
    o.nval = 500;
    printf("[1/3] data: %s\n", d->data);
    if (sg_synth_generate(&o, &st)) return -1;
    if (access(d->tok, R_OK) == 0) return 0;
    char corpus[SG_PATH_MAX + 32], prefix[SG_PATH_MAX + 32];
    snprintf(corpus, sizeof corpus, "%s/captions.txt", d->data);
    snprintf(prefix, sizeof prefix, "%s/tok", d->data);
    struct sg_tokenizer_train_opts to = {.vocab_size = 256};
    return sg_tokenizer_train(corpus, prefix, &to);
}

static int train(const struct demo *d, struct sg_train_result *res)
{
    char cfg_path[SG_PATH_MAX + 32], o1[2 * SG_PATH_MAX], o2[2 * SG_PATH_MAX];
    char o3[2 * SG_PATH_MAX], o4[64], o5[64], run_dir[2 * SG_PATH_MAX], latest[3 * SG_PATH_MAX];
    snprintf(cfg_path, sizeof cfg_path, "%s/configs/demo.yaml", SG_SOURCE_DIR);
    snprintf(o1, sizeof o1, "data.train=%s/train.tsv", d->data);
    snprintf(o2, sizeof o2, "tokenizer.model=%s", d->tok);
    snprintf(o3, sizeof o3, "run.output_dir=%s", d->out);
    snprintf(o4, sizeof o4, "train.epochs=%d", d->epochs);
    snprintf(o5, sizeof o5, "run.threads=%d", d->threads);
    char e1[2 * SG_PATH_MAX], e2[2 * SG_PATH_MAX], e3[2 * SG_PATH_MAX], e4[2 * SG_PATH_MAX];
    snprintf(e1, sizeof e1, "eval.zeroshot_dir=%s/zeroshot/val", d->data);
    snprintf(e2, sizeof e2, "eval.zeroshot_classnames=%s/zeroshot/classnames.txt", d->data);
    snprintf(e3, sizeof e3, "eval.zeroshot_templates=%s/zeroshot/templates.txt", d->data);
    snprintf(e4, sizeof e4, "eval.retrieval=%s/val.tsv", d->data);
    const char *over[9] = {o1, o2, o3, e1, e2, e3, e4};
    int n = 7;
    if (d->epochs > 0) over[n++] = o4;
    if (d->threads > 0) over[n++] = o5;
    struct sg_train_config cfg;
    if (sg_train_config_load(&cfg, cfg_path, over, n)) {
        fprintf(stderr, "sogclip demo: %s\n", sg_last_error());
        return SG_TRAIN_CONFIG;
    }
    snprintf(run_dir, sizeof run_dir, "%s/%s", d->out, cfg.run.name);
    struct sg_train_opts opts = {0};
    if (sg_ckpt_latest(run_dir, latest, sizeof latest) == 0) opts.resume = "latest";
    printf("[2/3] training %s (%s) on %s\n", cfg.model.name, cfg_path, cfg.data.train);
    return sg_train_run(&cfg, &opts, res);
}

/* The trainer evaluated the final model (configs/demo.yaml's eval section) and wrote
 * eval_zeroshot.json / eval_retrieval.json into the run folder. */
static void report(const struct sg_train_result *res)
{
    printf("[3/3] evaluation of %s\n", res->checkpoint);
    if (res->has_zeroshot) sg_results_print(&res->zeroshot, stdout);
    if (res->has_retrieval) sg_results_print(&res->retrieval, stdout);
    printf("chance: zero-shot top-1 %.1f%%, retrieval R@1 %.1f%%\n", 100.0 / 48, 100.0 / 500);
    printf("results: %s/eval_zeroshot.json, %s/eval_retrieval.json\n", res->run_dir, res->run_dir);
    printf("report: %s\n", res->report);
}

int sg_cmd_demo(int argc, char **argv)
{
    struct demo d = {.epochs = 0, .threads = 0};
    snprintf(d.out, sizeof d.out, "runs");
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc) return demo_usage();
        if (!strcmp(argv[i], "--out"))
            snprintf(d.out, sizeof d.out, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--epochs"))
            d.epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads"))
            d.threads = atoi(argv[++i]);
        else
            return demo_usage();
    }
    snprintf(d.data, sizeof d.data, "%s/demo-data", d.out);
    snprintf(d.tok, sizeof d.tok, "%s/tok.model", d.data);
    if (prepare_data(&d)) {
        fprintf(stderr, "sogclip demo: %s\n", sg_last_error());
        return 1;
    }
    struct sg_train_result res;
    int rc = train(&d, &res);
    if (rc == SG_TRAIN_OK) report(&res);
    sg_train_result_free(&res);
    return rc;
}
