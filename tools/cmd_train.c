/*
 * tools/cmd_train.c — `sogclip train -c CONFIG.yaml [key=value ...] [--resume latest|PATH]`.
 * Exit codes: 0 done, 1 runtime failure, 2 usage or configuration error, 130 interrupted
 * (SIGINT/SIGTERM; a checkpoint was written, continue with --resume latest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "train/config.h"
#include "train/trainer.h"

int sg_cmd_train(int argc, char **argv);

static int train_usage(void)
{
    fprintf(stderr,
            "usage: sogclip train -c CONFIG.yaml [key=value ...] [--resume latest|PATH]\n"
            "  key=value overrides a config key by its dotted path, e.g. optim.lr=1e-4\n"
            "  --resume latest continues the run's newest checkpoint (bit-identical on CPU)\n"
            "  configs/*.yaml are the recipes; every key is listed in train/config.h\n");
    return 2;
}

int sg_cmd_train(int argc, char **argv)
{
    const char *config = NULL;
    struct sg_train_opts opts = {0};
    const char **over = sg_xcalloc((size_t)argc + 1, sizeof(char *));
    int nover = 0;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc)
            opts.resume = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return free(over), train_usage();
        else if (strchr(argv[i], '=') && argv[i][0] != '-')
            over[nover++] = argv[i];
        else
            return free(over), train_usage();
    }
    if (!config) return free(over), train_usage();
    struct sg_train_config cfg;
    if (sg_train_config_load(&cfg, config, over, nover)) {
        fprintf(stderr, "sogclip train: %s\n", sg_last_error());
        free(over);
        return 2;
    }
    free(over);
    struct sg_train_result res;
    int rc = sg_train_run(&cfg, &opts, &res);
    if ((rc == SG_TRAIN_OK || rc == SG_TRAIN_INTERRUPTED) && res.rank == 0) {
        printf("run folder: %s\nlast checkpoint: %s\n", res.run_dir, res.checkpoint);
        if (res.report[0]) printf("report: %s\n", res.report);
        if (rc == SG_TRAIN_INTERRUPTED)
            printf("interrupted at step %lld: continue with --resume latest\n",
                   (long long)res.steps);
    }
    sg_train_result_free(&res);
    return rc;
}
