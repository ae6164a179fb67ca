/*
 * bench/flops.h — analytic FLOP counts of one CLIP forward pass, for MFU figures. Counted as
 * 2 x multiply-accumulates of the matrix work (linear layers, convolutions, attention products);
 * norms, activations, pooling and the loss are left out (the usual MFU convention, as in
 * PaLM's appendix B and llm.c). A training step is taken as 3x forward (backward = 2x).
 *
 * Transformer layer, per token: qkv 6C^2 + out proj 2C^2 + MLP 16C^2 = 24C^2, attention
 * q k^T and att v 4 T C (T = tokens actually run: the text tower runs up to the batch's
 * last EOT, see text/text_encoder.c). ModifiedResNet (CLIP RN50): every convolution
 * 2 Cin Cout k^2 Hout Wout, the attention pool (q for token 0 only, as open_clip) and c_proj.
 */
#ifndef SG_BENCH_FLOPS_H
#define SG_BENCH_FLOPS_H

#include "model/clip.h"

static inline double flops_transformer(double tokens_per_seq, double seqs, double C, double L)
{
    return seqs * tokens_per_seq * L * (24.0 * C * C + 4.0 * tokens_per_seq * C);
}

static inline double flops_conv(double cin, double cout, double k, double hout)
{
    return 2.0 * cin * cout * k * k * hout * hout;
}

/* ModifiedResNet: 3-conv stem at S/2, avgpool to S/4, bottleneck stages (1x1, 3x3, avgpool
 * stride, 1x1 x4; downsample avgpool + 1x1), attention pool over (S/32)^2 + 1 tokens. */
static inline double flops_modified_resnet(const struct sg_clip_config *c, double B)
{
    double w = c->vision.width, S = c->vision.image_size, H = S / 2, f = 0;
    f += flops_conv(3, w / 2, 3, H) + flops_conv(w / 2, w / 2, 3, H) + flops_conv(w / 2, w, 3, H);
    H /= 2;
    double inpl = w;
    for (int L = 0; L < 4; L++) {
        double planes = w * (1 << L);
        for (int i = 0; i < c->vision.layers[L]; i++) {
            int stride = (i == 0 && L > 0) ? 2 : 1;
            double Ho = H / stride;
            f += flops_conv(inpl, planes, 1, H) + flops_conv(planes, planes, 3, H);
            f += flops_conv(planes, 4 * planes, 1, Ho);
            if (i == 0) f += flops_conv(inpl, 4 * planes, 1, Ho); /* downsample */
            inpl = 4 * planes;
            H = Ho;
        }
    }
    double D = 32 * w, T = H * H + 1, E = c->embed_dim;
    f += 2.0 * T * D * D * 2 + 2.0 * D * D + 4.0 * T * D + 2.0 * D * E;
    return B * f;
}

static inline double flops_resnet(const struct sg_clip_config *c, double B)
{
    /* torchvision BasicBlock ResNet-18/34 layout (vision/resnet.c), 7x7 stem, maxpool */
    double w = c->vision.width, S = c->vision.image_size, H = S / 2, f = 0;
    f += flops_conv(3, w, 7, H);
    H /= 2;
    double inpl = w;
    for (int L = 0; L < 4; L++) {
        double planes = w * (1 << L);
        for (int i = 0; i < c->vision.layers[L]; i++) {
            int stride = (i == 0 && L > 0) ? 2 : 1;
            double Ho = H / stride;
            f += flops_conv(inpl, planes, 3, Ho) + flops_conv(planes, planes, 3, Ho);
            if (i == 0 && (stride > 1 || inpl != planes)) f += flops_conv(inpl, planes, 1, Ho);
            inpl = planes;
            H = Ho;
        }
    }
    return B * (f + 2.0 * inpl * c->embed_dim);
}

static inline double flops_image(const struct sg_clip_config *c, double B)
{
    const struct sg_clip_vision_config *v = &c->vision;
    if (v->arch == SG_VISION_MODIFIED_RESNET) return flops_modified_resnet(c, B);
    if (v->arch == SG_VISION_RESNET) return flops_resnet(c, B);
    double G = v->image_size / v->patch_size, P = G * G, C = v->width;
    return B * 2.0 * P * 3.0 * v->patch_size * v->patch_size * C +
           flops_transformer(P + 1, B, C, v->layers[0]) + B * 2.0 * C * c->embed_dim;
}

/* Te: tokens per caption actually run (max EOT + 1). */
static inline double flops_text(const struct sg_clip_config *c, double B, double Te)
{
    double C = c->text.width;
    return flops_transformer(Te, B, C, c->text.layers) + B * 2.0 * C * c->embed_dim;
}

#endif
