/*
 * model/clip_config.h — CLIP model configs: configs/models/<name>.yaml, open_clip's
 * model_configs JSON layout in YAML:
 *
 *   embed_dim: 512                 E, the joint embedding width
 *   quick_gelu: false              QuickGELU in both towers' transformers (OpenAI weights)
 *   init_logit_scale: 2.6592       log(1/0.07) when absent
 *   vision_cfg:
 *     arch: vit                    vit | modified_resnet | resnet
 *     image_size: 224
 *     patch_size: 32               vit only
 *     width: 768                   vit: transformer width; resnets: base width (64)
 *     layers: 12                   vit: an integer; resnets: [3, 4, 6, 3]
 *     head_width: 64               vit heads = width/head_width; attnpool heads = 32 width/hw
 *     cifar_stem: false            resnet: 3x3/1 stem, no max-pool
 *     bottleneck: false            resnet: Bottleneck blocks (ResNet-50) instead of BasicBlock
 *   text_cfg:
 *     context_length: 77
 *     vocab_size: 49408
 *     width: 512
 *     heads: 8
 *     layers: 12
 *     eot_token: -1                pooled token: -1 = each row's largest id (open_clip's CLIP
 *                                  BPE, EOT 49407); a SentencePiece model's eos id otherwise
 *
 * Every key is known and typed; errors read "file:line:col: key: message" (core/config.h).
 * Names resolve to <dir>/<name>.yaml where dir is $SOGCLIP_MODEL_DIR, else the source tree's
 * configs/models; an argument containing '/' or ending in .yaml is a path.
 */
#ifndef SG_MODEL_CLIP_CONFIG_H
#define SG_MODEL_CLIP_CONFIG_H

#include <stdio.h>

#include "core/yaml.h"
#include "model/clip.h"

/* Defaults: no towers (callers must give vision_cfg and text_cfg), logit scale log(1/0.07). */
void sg_clip_config_defaults(struct sg_clip_config *cfg);
/* Load a model by name or path. Returns 0, or -1 with sg_err. */
int sg_clip_config_load(struct sg_clip_config *cfg, const char *name_or_path);
/* Bind a YAML mapping (a whole model file, or the `model:` section of a training config) onto
 * cfg (which holds defaults), then validate the combination. Returns 0 or -1 with sg_err. */
int sg_clip_config_bind(struct sg_clip_config *cfg, const struct sg_ydoc *d,
                        const struct sg_ynode *map);
/* Write cfg as YAML that loads back to the same model. */
int sg_clip_config_dump(FILE *f, const struct sg_clip_config *cfg, int indent);

#endif
