/*
 * vision/resnet.h — torchvision's ResNet (BasicBlock: ResNet-18/34) as an image encoder,
 * forward (training mode: batch statistics, running stats updated) and backward.
 *
 * Parameter names are exactly torchvision's state_dict keys under `prefix`:
 *   conv1.weight, bn1.{weight,bias,running_mean,running_var}, layerL.I.conv{1,2}.weight,
 *   layerL.I.bn{1,2}.*, layerL.I.downsample.0.weight, layerL.I.downsample.1.*, fc.{weight,bias}
 *   (num_batches_tracked is not registered; see nn/layers.h).
 * Bottleneck (ResNet-50/101/152, torchvision v1.5: stride on the 3x3): conv1 1x1 (C -> planes),
 * conv2 3x3/stride, conv3 1x1 (planes -> 4*planes), bn1..bn3; zero_init_residual zeroes bn3.
 * Structure: stem conv1 7x7/2 pad 3 + bn1 + relu + maxpool 3x3/2 pad 1 (ImageNet), or the CIFAR
 * stem conv1 3x3/1 pad 1 + bn1 + relu, no maxpool. Four stages of blocks with widths
 * base_width * {1,2,4,8}, stride 1,2,2,2 (first block of a stage), downsample = conv1x1(stride)
 * + bn when stride != 1 or channels change; then adaptive average pool to (B, 8*base_width)
 * features and fc (omitted when num_classes == 0: the output is the features).
 *
 * Reference: torchvision.models.resnet.ResNet / BasicBlock (tests/ref/gen_resnet.py rebuilds it
 * in plain torch with the same module names).
 *
 * Memory: sg_resnet_plan(B, H, W) returns the activation bytes (arena-rounded);
 * sg_resnet_bind(arena) carves them. forward/backward never allocate.
 * Gradient contract: backward ACCUMULATES into every parameter's grad, OVERWRITES dinp (NULL
 * skips the input gradient).
 */
#ifndef SG_VISION_RESNET_H
#define SG_VISION_RESNET_H

#include <stdint.h>

#include "core/arena.h"
#include "core/ctx.h"
#include "core/params.h"
#include "nn/layers.h"

#define SG_RESNET_MAX_BLOCKS 64

struct sg_resnet_config {
    int layers[4];          /* blocks per stage: {2,2,2,2} ResNet-18, {3,4,6,3} ResNet-34 */
    int base_width;         /* 64 for torchvision */
    int num_classes;        /* 0: no fc, the output is the pooled features */
    int cifar_stem;         /* 3x3/1 conv, no maxpool */
    int zero_init_residual; /* last bn of every block (bn2 / bn3) initialised to 0 */
    int bottleneck;         /* 0: BasicBlock, 1: Bottleneck (expansion 4) */
};

struct sg_resnet_block {
    struct sg_conv2d conv1, conv2, conv3, down_conv;
    struct sg_batchnorm2d bn1, bn2, bn3, down_bn;
    int has_down, bottleneck;
    int C, P, OC, H, W, OH, OW; /* input (C,H,W) -> output (OC,OH,OW); P inner width */
    /* activations (bound): input pointer (the previous output), conv outputs, bn stats */
    const float *inp; /* (B,C,H,W), set by forward */
    /* basic: c1, a1, c2 (B,OC,OH,OW) = conv1, relu(bn1), conv2.
     * bottleneck: c1, a1 (B,P,H,W); c2, a2 (B,P,OH,OW); c3 (B,OC,OH,OW).
     * cd (B,OC,OH,OW) the downsample conv; out (B,OC,OH,OW) the block output. */
    float *c1, *a1, *c2, *a2, *c3, *cd, *out;
    float *mean1, *rstd1, *mean2, *rstd2, *mean3, *rstd3, *meand, *rstdd; /* per channel */
};

struct sg_resnet {
    struct sg_resnet_config cfg;
    struct sg_conv2d conv1;
    struct sg_batchnorm2d bn1;
    struct sg_linear fc;
    struct sg_resnet_block blocks[SG_RESNET_MAX_BLOCKS];
    int nblocks;
    int feat_dim; /* 8 * base_width (* 4 for bottleneck) */
    int out_dim;  /* num_classes or feat_dim */
    /* planned sizes */
    int B, H, W, SH, SW, PH, PW; /* input, stem conv output, after maxpool */
    /* activations */
    const float *inp;               /* (B,3,H,W) set by forward */
    float *c0, *a0, *mean0, *rstd0; /* stem conv out, relu(bn1) (B,w,SH,SW), stats (w) */
    float *p0;                      /* maxpool out (B,w,PH,PW); == a0 for the CIFAR stem */
    int32_t *argmax;                /* (B,w,PH,PW) */
    float *feat, *logits, *dfeat;   /* (B,feat_dim), (B,num_classes), (B,feat_dim) */
    float *g0, *g1, *t0, *t1;       /* gradient ping-pong and scratch, max activation each */
};

void sg_resnet_init(struct sg_resnet *m, const struct sg_resnet_config *cfg, struct sg_params *ps,
                    const char *prefix);
/* Activation bytes for input (B,3,H,W); remembers the shape. */
size_t sg_resnet_plan(struct sg_resnet *m, int B, int H, int W);
/* Carves the planned activations from a (host or device arena of the ctx's device). */
void sg_resnet_bind(struct sg_resnet *m, struct sg_arena *a);
/* inp (B,3,H,W) as planned; returns the output (B,out_dim) (inside the bound activations).
 * inp must stay valid until backward. training: batch statistics + running-stat update. */
float *sg_resnet_forward(struct sg_resnet *m, struct sg_ctx *c, const float *inp, int training);
/* dout (B,out_dim); dinp (B,3,H,W) overwritten, NULL to skip. */
void sg_resnet_backward(struct sg_resnet *m, struct sg_ctx *c, float *dinp, const float *dout,
                        int training);

#endif
