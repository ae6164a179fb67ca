/*
 * tools/cmd_eval.c — `sogclip eval zeroshot|retrieval`: evaluate a checkpoint (training
 * checkpoint or weights-only export) on an ImageNet-style folder or a captions CSV/TSV.
 *   sogclip eval zeroshot --checkpoint C --data DIR [--classnames F|imagenet1k]
 *                         [--templates F|openai80|simple7]
 *   sogclip eval retrieval --checkpoint C --data F.tsv|KARPATHY.json [--image-key K]
 *                          [--caption-key K] [--split test]
 *   sogclip eval linear-probe --checkpoint C --train DIR --val DIR [--epochs 90]
 *                             [--probe-batch 1024] [--lr 0.4] [--wd auto|VALUE]
 *   common: [--tokenizer M.model] [--batch 128] [--threads N] [--json OUT.json]
 *           [--device cpu|cuda|cuda:N] (zeroshot, retrieval; the linear probe runs on the CPU)
 * Prints a results table; --json writes CLIP_benchmark's schema. Exit codes: 0, 1 runtime
 * failure, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "eval/clip_eval.h"
#include "eval/linear_probe.h"

int sg_cmd_eval(int argc, char **argv);

static int eval_usage(void)
{
    fprintf(
        stderr,
        "usage: sogclip eval zeroshot --checkpoint C --data DIR [--classnames F|imagenet1k] "
        "[--templates F|openai80|simple7]\n"
        "       sogclip eval retrieval --checkpoint C --data F.tsv|KARPATHY.json [--image-key K] "
        "[--caption-key K] [--split test]\n"
        "       sogclip eval linear-probe --checkpoint C --train DIR --val DIR [--epochs 90]\n"
        "                                 [--probe-batch 1024] [--lr 0.4] [--wd auto|VALUE]\n"
        "  common options: [--tokenizer M.model] [--batch 128] [--threads N] [--json OUT]\n"
        "                  [--device cpu|cuda|cuda:N] (zeroshot and retrieval)\n");
    return 2;
}

struct eval_args {
    const char *task, *ckpt, *data, *classnames, *templates, *tok, *json, *image_key, *caption_key;
    const char *train, *val, *wd, *split;
    int batch, threads, epochs, probe_batch;
    int device, device_id; /* enum sg_device, CUDA ordinal */
    float lr;
};

/* "cpu", "cuda" or "cuda:N". */
static int parse_device(const char *v, int *dev, int *id)
{
    char *end;
    *id = 0;
    if (!strcmp(v, "cpu")) {
        *dev = SG_DEVICE_CPU;
        return 0;
    }
    if (strncmp(v, "cuda", 4)) return -1;
    *dev = SG_DEVICE_CUDA;
    if (!v[4]) return 0;
    if (v[4] != ':') return -1;
    long n = strtol(v + 5, &end, 10);
    if (end == v + 5 || *end || n < 0 || n > 64) return -1;
    *id = (int)n;
    return 0;
}

static int parse_eval(struct eval_args *a, int argc, char **argv)
{
    *a = (struct eval_args){
        .batch = 128, .epochs = 90, .probe_batch = 1024, .lr = 0.4f, .wd = "auto"};
    if (argc < 1) return -1;
    a->task = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return -1;
        i++;
        if (!strcmp(k, "--checkpoint"))
            a->ckpt = v;
        else if (!strcmp(k, "--data"))
            a->data = v;
        else if (!strcmp(k, "--classnames"))
            a->classnames = v;
        else if (!strcmp(k, "--templates"))
            a->templates = v;
        else if (!strcmp(k, "--tokenizer"))
            a->tok = v;
        else if (!strcmp(k, "--json"))
            a->json = v;
        else if (!strcmp(k, "--image-key"))
            a->image_key = v;
        else if (!strcmp(k, "--caption-key"))
            a->caption_key = v;
        else if (!strcmp(k, "--batch"))
            a->batch = atoi(v);
        else if (!strcmp(k, "--threads"))
            a->threads = atoi(v);
        else if (!strcmp(k, "--split"))
            a->split = v;
        else if (!strcmp(k, "--train"))
            a->train = v;
        else if (!strcmp(k, "--val"))
            a->val = v;
        else if (!strcmp(k, "--wd"))
            a->wd = v;
        else if (!strcmp(k, "--epochs"))
            a->epochs = atoi(v);
        else if (!strcmp(k, "--probe-batch"))
            a->probe_batch = atoi(v);
        else if (!strcmp(k, "--lr"))
            a->lr = (float)atof(v);
        else if (!strcmp(k, "--device")) {
            if (parse_device(v, &a->device, &a->device_id)) return -1;
        } else
            return -1;
    }
    int lp = !strcmp(a->task, "linear-probe");
    if (lp && a->device != SG_DEVICE_CPU) {
        fprintf(stderr, "sogclip eval: linear-probe runs on the CPU (drop --device)\n");
        return -1;
    }
    return a->ckpt && (lp ? a->train && a->val : a->data != NULL) && a->batch >= 1 ? 0 : -1;
}

static int linear_probe(const struct eval_args *a)
{
    struct sg_linear_probe_opts o = {.checkpoint = a->ckpt,
                                     .train_dir = a->train,
                                     .val_dir = a->val,
                                     .tokenizer = a->tok,
                                     .batch = a->batch,
                                     .threads = a->threads,
                                     .workers = 2};
    sg_linprobe_config_default(&o.probe);
    o.probe.epochs = a->epochs;
    o.probe.batch_size = a->probe_batch;
    o.probe.lr = a->lr;
    o.choose_wd = !strcmp(a->wd, "auto");
    if (!o.choose_wd) o.probe.weight_decay = (float)atof(a->wd);
    struct sg_results r;
    sg_results_init(&r, "linear_probe", a->val, a->ckpt, "sogclip");
    int rc = sg_linear_probe_run(&o, &r);
    if (rc == 0) sg_results_print(&r, stdout);
    if (rc == 0 && a->json) rc = sg_results_write_json(&r, a->json);
    if (rc) fprintf(stderr, "sogclip eval: %s\n", sg_last_error());
    sg_results_free(&r);
    return rc ? 1 : 0;
}

int sg_cmd_eval(int argc, char **argv)
{
    struct eval_args a;
    if (parse_eval(&a, argc, argv)) return eval_usage();
    int zs = !strcmp(a.task, "zeroshot"), rt = !strcmp(a.task, "retrieval");
    if (!strcmp(a.task, "linear-probe")) return linear_probe(&a);
    if (!zs && !rt) return eval_usage();
    struct sg_eval_model em;
    struct sg_results r;
    sg_results_init(&r, zs ? "zeroshot_classification" : "zeroshot_retrieval", a.data, a.ckpt,
                    "sogclip");
    int rc = sg_eval_model_load_on(&em, a.ckpt, a.tok, a.batch, a.threads, (enum sg_device)a.device,
                                   a.device_id);
    if (rc == 0 && zs) rc = sg_eval_zeroshot(&em, a.data, a.classnames, a.templates, &r);
    em.split = a.split;
    if (rc == 0 && rt) rc = sg_eval_retrieval(&em, a.data, a.image_key, a.caption_key, &r);
    if (rc == 0) sg_results_print(&r, stdout);
    if (rc == 0 && a.json) rc = sg_results_write_json(&r, a.json);
    if (rc) fprintf(stderr, "sogclip eval: %s\n", sg_last_error());
    sg_eval_model_free(&em);
    sg_results_free(&r);
    return rc ? 1 : 0;
}
