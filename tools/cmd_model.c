/*
 * tools/cmd_model.c — `sogclip model`: inspect and initialise CLIP models from their configs.
 *   sogclip model info NAME|FILE.yaml [--batch B] [--recompute]
 *       resolved config, parameter count and the activation plan for batch B (default 64)
 *   sogclip model init NAME|FILE.yaml -o OUT.safetensors [--seed S]
 *       open_clip-named weights with sogclip's initialisation (loads into open_clip by name)
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/clip.h"
#include "model/clip_config.h"

int sg_cmd_model(int argc, char **argv);

static int model_usage(void)
{
    fprintf(stderr, "usage: sogclip model info NAME|FILE.yaml [--batch B] [--recompute]\n"
                    "       sogclip model init NAME|FILE.yaml -o OUT.safetensors [--seed S]\n"
                    "  NAME is a file stem of configs/models (e.g. ViT-B-32, RN50, tiny-vit)\n");
    return 2;
}

struct model_args {
    const char *verb, *model, *out;
    int batch, recompute;
    unsigned long long seed;
};

static int parse_model_args(struct model_args *a, int argc, char **argv)
{
    *a = (struct model_args){NULL, NULL, NULL, 64, 0, 0};
    if (argc < 2) return -1;
    a->verb = argv[0];
    a->model = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--recompute"))
            a->recompute = 1;
        else if (i + 1 >= argc)
            return -1;
        else if (!strcmp(k, "--batch"))
            a->batch = atoi(argv[++i]);
        else if (!strcmp(k, "-o"))
            a->out = argv[++i];
        else if (!strcmp(k, "--seed"))
            a->seed = strtoull(argv[++i], NULL, 10);
        else
            return -1;
    }
    return a->batch >= 1 ? 0 : -1;
}

int sg_cmd_model(int argc, char **argv)
{
    struct model_args a;
    if (parse_model_args(&a, argc, argv)) return model_usage();
    int info = !strcmp(a.verb, "info"), init = !strcmp(a.verb, "init");
    if ((!info && !init) || (init && !a.out)) return model_usage();
    struct sg_clip_config cfg;
    if (sg_clip_config_load(&cfg, a.model)) {
        fprintf(stderr, "sogclip model: %s\n", sg_last_error());
        return 2;
    }
    cfg.grad_checkpointing = a.recompute;
    struct sg_ctx c;
    if (sg_ctx_init(&c, SG_DEVICE_CPU, 0, 0)) {
        fprintf(stderr, "sogclip model: %s\n", sg_last_error());
        return 1;
    }
    struct sg_clip *m = sg_xcalloc(1, sizeof *m);
    sg_clip_create(m, &cfg, &c, info, a.seed);
    int rc = 0;
    if (info) {
        sg_clip_config_dump(stdout, &cfg, 0);
        sg_clip_plan(m, a.batch);
        sg_clip_print_plan(m, stdout);
    } else if (sg_params_save(&m->ps, a.out, NULL)) {
        fprintf(stderr, "sogclip model: %s\n", sg_last_error());
        rc = 1;
    } else {
        printf("sogclip model: wrote %s (%lld parameters, seed %llu)\n", a.out,
               (long long)sg_params_count(&m->ps, 0), a.seed);
    }
    sg_clip_destroy(m);
    free(m);
    sg_ctx_free(&c);
    return rc;
}
