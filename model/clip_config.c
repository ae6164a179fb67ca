/*
 * model/clip_config.c — model config key tables, name resolution and validation (see
 * model/clip_config.h).
 */
#include "model/clip_config.h"

#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/config.h"

#ifndef SG_MODEL_DIR
#define SG_MODEL_DIR "configs/models"
#endif

static const char *const arch_names[] = {"vit", "modified_resnet", "resnet", NULL};

#define VKEY(k, t, f, lo, hi, h)                                                                   \
    {                                                                                              \
        .key = k, .type = t, .offset = offsetof(struct sg_clip_vision_config, f), .min = lo,       \
        .max = hi, .help = h                                                                       \
    }
#define TKEY(k, f, lo, hi, h)                                                                      \
    {                                                                                              \
        .key = k, .type = SG_CFG_INT, .offset = offsetof(struct sg_clip_text_config, f),           \
        .min = lo, .max = hi, .help = h                                                            \
    }

/* vision_cfg; `layers: 12` (vit) binds as a one-element list (core/config.h). */
static const struct sg_cfg_key vision_keys[] = {
    {.key = "arch",
     .type = SG_CFG_ENUM,
     .offset = offsetof(struct sg_clip_vision_config, arch),
     .choices = arch_names,
     .help = "image tower: vit | modified_resnet | resnet"},
    VKEY("image_size", SG_CFG_INT, image_size, 8, 4096, "input resolution (square)"),
    VKEY("patch_size", SG_CFG_INT, patch_size, 0, 256, "vit patch side (0: not a vit)"),
    VKEY("width", SG_CFG_INT, width, 1, 16384, "vit width, or resnet base width"),
    {.key = "layers",
     .type = SG_CFG_INT_LIST,
     .offset = offsetof(struct sg_clip_vision_config, layers),
     .offset_count = offsetof(struct sg_clip_vision_config, nlayers),
     .cap = 4,
     .min = 1,
     .max = 64,
     .help = "vit: depth; resnets: blocks per stage [s1, s2, s3, s4]"},
    VKEY("head_width", SG_CFG_INT, head_width, 1, 4096, "attention head width"),
    VKEY("cifar_stem", SG_CFG_BOOL, cifar_stem, 1, 0, "resnet: 3x3 stride-1 stem, no max-pool"),
    VKEY("bottleneck", SG_CFG_BOOL, bottleneck, 1, 0, "resnet: Bottleneck blocks"),
    {0}};

static const struct sg_cfg_key text_keys[] = {
    TKEY("context_length", context_length, 2, 4096, "tokens per caption"),
    TKEY("vocab_size", vocab_size, 2, 1 << 24, "token vocabulary size"),
    TKEY("width", width, 1, 16384, "transformer width"),
    TKEY("heads", heads, 1, 1024, "attention heads"),
    TKEY("layers", layers, 1, 64, "transformer depth"),
    TKEY("eot_token", eot_token, -1, 1 << 24,
         "pooled token id; -1: the largest id of each row (open_clip)"),
    {0}};

#define MKEY(k, t, f, lo, hi, h)                                                                   \
    {                                                                                              \
        .key = k, .type = t, .offset = offsetof(struct sg_clip_config, f), .min = lo, .max = hi,   \
        .help = h                                                                                  \
    }

static const struct sg_cfg_key model_keys[] = {
    MKEY("embed_dim", SG_CFG_INT, embed_dim, 1, 65536, "joint embedding width"),
    MKEY("quick_gelu", SG_CFG_BOOL, quick_gelu, 1, 0, "QuickGELU activations (OpenAI weights)"),
    MKEY("init_logit_scale", SG_CFG_FLOAT, init_logit_scale, -10, 10,
         "initial logit scale (log of 1/temperature)"),
    MKEY("grad_checkpointing", SG_CFG_BOOL, grad_checkpointing, 1, 0,
         "recompute transformer blocks in backward"),
    {.key = "vision_cfg",
     .type = SG_CFG_SECTION,
     .offset = offsetof(struct sg_clip_config, vision),
     .sub = vision_keys,
     .help = "image tower"},
    {.key = "text_cfg",
     .type = SG_CFG_SECTION,
     .offset = offsetof(struct sg_clip_config, text),
     .sub = text_keys,
     .help = "text tower"},
    {0}};

void sg_clip_config_defaults(struct sg_clip_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->init_logit_scale = logf(1.0f / 0.07f);
    cfg->vision.head_width = 64;
    cfg->text.eot_token = -1;
}

/* Where a key of the file sits, for validation messages ("file:line:col: "). */
static void where(char *buf, size_t n, const struct sg_ydoc *d, const struct sg_ynode *map,
                  const char *section, const char *key)
{
    const struct sg_ynode *s = section ? sg_ymap_get(map, section) : map;
    const struct sg_ynode *v = s ? sg_ymap_get(s, key) : NULL;
    const struct sg_ynode *at = v ? v : (s ? s : map);
    snprintf(buf, n, "%s:%d:%d", d->path ? d->path : "<config>", at ? at->line : 0,
             at ? at->col : 0);
}

static int fail(const struct sg_ydoc *d, const struct sg_ynode *map, const char *section,
                const char *key, const char *msg)
{
    char loc[512];
    where(loc, sizeof loc, d, map, section, key);
    sg_err("%s: %s%s%s: %s", loc, section ? section : "", section ? "." : "", key, msg);
    return -1;
}

static int validate_vision(const struct sg_clip_config *cfg, const struct sg_ydoc *d,
                           const struct sg_ynode *map)
{
    const struct sg_clip_vision_config *v = &cfg->vision;
    const char *s = "vision_cfg";
    char msg[160];
    if (!sg_ymap_get(map, s)) return fail(d, map, NULL, s, "missing (the image tower)");
    if (v->image_size <= 0) return fail(d, map, s, "image_size", "missing");
    if (v->width <= 0) return fail(d, map, s, "width", "missing");
    if (v->arch == SG_VISION_VIT) {
        if (v->nlayers != 1) return fail(d, map, s, "layers", "vit takes one integer depth");
        if (v->patch_size <= 0 || v->image_size % v->patch_size) {
            snprintf(msg, sizeof msg, "patch_size %d must divide image_size %d", v->patch_size,
                     v->image_size);
            return fail(d, map, s, "patch_size", msg);
        }
        if (v->width % v->head_width) return fail(d, map, s, "head_width", "must divide width");
        return 0;
    }
    if (v->nlayers != 4) return fail(d, map, s, "layers", "resnets take [s1, s2, s3, s4]");
    if (v->arch == SG_VISION_MODIFIED_RESNET) {
        if (v->image_size % 32) return fail(d, map, s, "image_size", "must be a multiple of 32");
        if ((32 * v->width) % v->head_width)
            return fail(d, map, s, "head_width", "must divide 32 * width");
    }
    return 0;
}

static int validate(const struct sg_clip_config *cfg, const struct sg_ydoc *d,
                    const struct sg_ynode *map)
{
    const struct sg_clip_text_config *t = &cfg->text;
    if (cfg->embed_dim <= 0) return fail(d, map, NULL, "embed_dim", "missing");
    if (validate_vision(cfg, d, map)) return -1;
    if (!sg_ymap_get(map, "text_cfg")) return fail(d, map, NULL, "text_cfg", "missing");
    const char *s = "text_cfg";
    if (t->context_length <= 0) return fail(d, map, s, "context_length", "missing");
    if (t->vocab_size <= 0) return fail(d, map, s, "vocab_size", "missing");
    if (t->layers <= 0) return fail(d, map, s, "layers", "missing");
    if (t->width <= 0 || t->heads <= 0 || t->width % t->heads)
        return fail(d, map, s, "heads", "heads must divide width (both required)");
    return 0;
}

int sg_clip_config_bind(struct sg_clip_config *cfg, const struct sg_ydoc *d,
                        const struct sg_ynode *map)
{
    if (sg_cfg_bind(d, map, model_keys, cfg)) return -1;
    return validate(cfg, d, map);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* "available: a, b, c" listing of a model directory (sorted by readdir order is fine). */
static void list_models(const char *dir, char *out, size_t n)
{
    DIR *dp = opendir(dir);
    size_t used = 0;
    out[0] = 0;
    if (!dp) return;
    struct dirent *e;
    while ((e = readdir(dp)) && used + 2 < n) {
        if (!has_suffix(e->d_name, ".yaml")) continue;
        int w = snprintf(out + used, n - used, "%s%.*s", used ? ", " : "",
                         (int)(strlen(e->d_name) - 5), e->d_name);
        if (w < 0) break;
        used += (size_t)w;
    }
    closedir(dp);
}

static const char *model_dir(void)
{
    const char *env = getenv("SOGCLIP_MODEL_DIR");
    return env && env[0] ? env : SG_MODEL_DIR;
}

int sg_clip_config_load(struct sg_clip_config *cfg, const char *name_or_path)
{
    char path[1024];
    int is_path = strchr(name_or_path, '/') || has_suffix(name_or_path, ".yaml");
    if (is_path)
        snprintf(path, sizeof path, "%s", name_or_path);
    else
        snprintf(path, sizeof path, "%s/%s.yaml", model_dir(), name_or_path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        char avail[1024];
        list_models(model_dir(), avail, sizeof avail);
        if (is_path) return sg_err("model config %s: cannot open", path), -1;
        sg_err("unknown model '%s' (no %s; available: %s)", name_or_path, path,
               avail[0] ? avail : "none");
        return -1;
    }
    fclose(f);
    struct sg_ydoc d;
    if (sg_yaml_load_file(&d, path)) return -1;
    sg_clip_config_defaults(cfg);
    int rc = d.root->kind == SG_Y_MAP ? sg_clip_config_bind(cfg, &d, d.root) : -1;
    if (d.root->kind != SG_Y_MAP) sg_err("%s: a model config is a mapping", path);
    if (rc == 0) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        snprintf(cfg->name, sizeof cfg->name, "%.*s",
                 (int)(strlen(base) - 5 * has_suffix(base, ".yaml")), base);
    }
    sg_yaml_free(&d);
    return rc;
}

int sg_clip_config_dump(FILE *f, const struct sg_clip_config *cfg, int indent)
{
    return sg_cfg_dump(f, model_keys, cfg, indent);
}
