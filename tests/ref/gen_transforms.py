"""tests/ref/gen_transforms.py — torchvision 0.14 references for tests/test_transforms.c.

The deterministic cores are torchvision.transforms.functional on uint8 CHW tensors (the tensor
backend: float resampling through torch.nn.functional.interpolate, rounding back to uint8);
the random parts are RandomResizedCrop.get_params, ColorJitter's torch.randperm(4) and whole
torchvision Compose pipelines under torch.manual_seed, which sg_augment reproduces draw for
draw with the torch-identical core/rng.

Inputs are small crops of real photos (../shared/data/photos, read with PIL), stored in the
reference file as U8 (h, w, 3) so the C test needs no shared data.
Run: cd tests/ref && /usr/bin/python3 gen_transforms.py
"""
import math
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

import refutil

PHOTOS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                      "data", "photos")
IMNET_MEAN, IMNET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BILINEAR, BICUBIC = T.InterpolationMode.BILINEAR, T.InterpolationMode.BICUBIC


def f32(x):
    """A Python float that is exactly representable in float32 (the C API takes float)."""
    return float(np.float32(x))


def crop(name, left, top, w, h):
    im = Image.open(os.path.join(PHOTOS, name)).convert("RGB")
    return torch.from_numpy(np.asarray(im)[top:top + h, left:left + w].copy())  # (h, w, 3)


def chw(hwc):
    return hwc.permute(2, 0, 1).contiguous()


def hwc(chw_):
    return chw_.permute(1, 2, 0).contiguous()


def synth(h, w):
    """Textured (h, w, 3) uint8 image from a formula (also in test_transforms.c)."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = (x * x * 7 + y * y * 13 + x * y * 5 + c * 71 + (x ^ y) * 3) % 256
    return torch.from_numpy(v.astype(np.uint8))


def main():
    out, meta = {}, {"generator": "gen_transforms.py", "torch": torch.__version__,
                     "torchvision": torchvision.__version__}
    inputs = {"a": crop("chelsea.png", 180, 90, 48, 40),    # 40x48 cat face, fur
              "b": crop("rocket.jpg", 290, 150, 37, 53),    # 53x37 odd sizes, sky + rocket
              "c": crop("coffee.png", 250, 120, 44, 40)}    # 40x44 saturated colours
    for k, v in inputs.items():
        out["in." + k] = v

    # resized_crop: (input, top, left, h, w, out_h, out_w, interp (0 bilinear, 1 bicubic), aa)
    rc = []
    for inp, box, size in [("a", (0, 0, 40, 48), (17, 23)), ("a", (3, 5, 31, 37), (13, 11)),
                           ("a", (2, 1, 30, 40), (61, 75)), ("b", (0, 0, 53, 37), (24, 24)),
                           ("b", (7, 3, 29, 31), (45, 20)), ("c", (1, 2, 38, 41), (32, 32)),
                           ("c", (0, 0, 40, 44), (7, 9)), ("c", (10, 10, 20, 20), (20, 20)),
                           ("b", (5, 5, 11, 13), (40, 41))]:
        for interp in (0, 1):
            for aa in (0, 1):
                rc.append((inp,) + box + size + (interp, aa))
    for i, (inp, top, left, h, w, oh, ow, interp, aa) in enumerate(rc):
        x = chw(inputs[inp])
        y = F.resized_crop(x, top, left, h, w, [oh, ow], BICUBIC if interp else BILINEAR,
                           antialias=bool(aa))
        out["rc.%d.params" % i] = torch.tensor([ord(inp) - ord("a"), top, left, h, w, oh, ow,
                                                interp, aa], dtype=torch.int64)
        out["rc.%d.out" % i] = hwc(y)
    meta["rc_count"] = len(rc)

    # heavy downscaling of a synthetic textured image (many taps, every rounding case); the C
    # test builds the same input from the formula, only outputs are stored
    big = synth(193, 257)
    for i, (interp, aa) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        y = F.resize(chw(big), [47, 61], BICUBIC if interp else BILINEAR, antialias=bool(aa))
        out["synth.%d" % i] = hwc(y)

    # resize shorter side + center crop (the eval transform)
    ev = [("a", 20, 20, 0), ("b", 29, 24, 1), ("c", 36, 33, 0), ("b", 37, 37, 1), ("a", 64, 56, 1)]
    for i, (inp, shorter, csize, interp) in enumerate(ev):
        x = chw(inputs[inp])
        r = F.resize(x, shorter, BICUBIC if interp else BILINEAR, antialias=True)
        y = F.center_crop(r, [csize, csize])
        out["ev.%d.params" % i] = torch.tensor([ord(inp) - ord("a"), shorter, csize, interp],
                                               dtype=torch.int64)
        out["ev.%d.resized" % i] = hwc(r)
        out["ev.%d.out" % i] = hwc(y)
    meta["ev_count"] = len(ev)
    # center_crop larger than the image in one or both sides (zero padding)
    out["cc.b45"] = hwc(F.center_crop(chw(inputs["b"]), [45, 45]))
    out["cc.a41"] = hwc(F.center_crop(chw(inputs["a"]), [41, 41]))
    out["cc.c60"] = hwc(F.center_crop(chw(inputs["c"]), [60, 60]))

    # colour ops: (op, factor) on every input
    ops = [("brightness", f) for f in (0.0, 0.6, 0.8371, 1.4)]
    ops += [("contrast", f) for f in (0.0, 0.6, 0.9137, 2.5)]
    ops += [("saturation", f) for f in (0.0, 0.6, 1.1719, 3.0)]
    ops += [("hue", f) for f in (-0.5, -0.1, -0.0371, 0.05, 0.33, 0.5)]
    fns = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
           "saturation": F.adjust_saturation, "hue": F.adjust_hue}
    names = sorted(fns)
    for i, (op, f) in enumerate(ops):
        out["color.%d.params" % i] = torch.tensor([names.index(op), f32(f)], dtype=torch.float32)
        for k in ("a", "c"):
            out["color.%d.%s" % (i, k)] = hwc(fns[op](chw(inputs[k]), f32(f)))
    meta["color_count"] = len(ops)
    meta["color_ops"] = ",".join(names)

    for k in inputs:
        x = chw(inputs[k])
        out["gray." + k] = hwc(F.rgb_to_grayscale(x, num_output_channels=3))
        out["hflip." + k] = hwc(F.hflip(x))
        out["solarize128." + k] = hwc(F.solarize(x, 128))
        out["solarize200." + k] = hwc(F.solarize(x, 200))

    out["norm.a"] = F.normalize(chw(inputs["a"]).float() / 255, IMNET_MEAN, IMNET_STD)  # (3,h,w)

    blurs = [(3, 0.7), (23, 1.9), (5, 0.1), (7, 2.0), (23, 0.5)]
    for i, (ks, s) in enumerate(blurs):
        out["blur.%d.params" % i] = torch.tensor([ks, f32(s)], dtype=torch.float32)
        for k in inputs:
            out["blur.%d.%s" % (i, k)] = hwc(F.gaussian_blur(chw(inputs[k]), [ks, ks],
                                                            [f32(s), f32(s)]))
    meta["blur_count"] = len(blurs)

    # RandomResizedCrop.get_params under manual_seed: (seed, H, W, scale0, scale1, r0, r1)
    rrc = [(0, 375, 500, 0.08, 1.0, 3 / 4, 4 / 3), (1, 224, 224, 0.08, 1.0, 3 / 4, 4 / 3),
           (2, 427, 640, 0.9, 1.0, 3 / 4, 4 / 3), (3, 50, 500, 0.9, 1.0, 3 / 4, 4 / 3),
           (4, 500, 40, 0.5, 1.0, 3 / 4, 4 / 3), (5, 32, 32, 0.08, 1.0, 3 / 4, 4 / 3),
           (6, 300, 300, 0.99, 1.0, 1.0, 1.0), (7, 1, 1, 0.08, 1.0, 3 / 4, 4 / 3)]
    for i, (seed, H, W, s0, s1, r0, r1) in enumerate(rrc):
        torch.manual_seed(seed)
        dummy = torch.empty(3, H, W, dtype=torch.uint8)
        boxes = [T.RandomResizedCrop.get_params(dummy, [f32(s0), f32(s1)], [f32(r0), f32(r1)])
                 for _ in range(50)]
        out["rrc.%d.params" % i] = torch.tensor([seed, H, W, f32(s0), f32(s1), f32(r0), f32(r1)],
                                                dtype=torch.float64).float()
        out["rrc.%d.boxes" % i] = torch.tensor(boxes, dtype=torch.int64)  # (50, 4): i j h w
    meta["rrc_count"] = len(rrc)

    torch.manual_seed(11)
    out["randperm4"] = torch.stack([torch.randperm(4) for _ in range(64)])

    # Whole pipelines: sg_augment presets vs torchvision Compose on uint8 tensors, stored as the
    # uint8 result before ToTensor/Normalize (the C test normalizes it; normalize is checked
    # on its own above)
    def simclr(size, blur):
        k = int(0.1 * size)
        k += 1 - k % 2
        t = [T.RandomResizedCrop(size, scale=(0.08, 1.0), interpolation=BILINEAR, antialias=True),
             T.RandomHorizontalFlip(0.5),
             T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
             T.RandomGrayscale(0.2)]
        if blur:
            t.append(T.RandomApply([T.GaussianBlur(k, (0.1, 2.0))], p=0.5))
        return T.Compose(t)

    def clip(size):
        return T.Compose([T.RandomResizedCrop(size, scale=(0.9, 1.0), interpolation=BICUBIC,
                                              antialias=True)])

    def evaluation(size):
        return T.Compose([T.Resize(int(size / 0.875), BILINEAR, antialias=True),
                          T.CenterCrop(size)])

    # (name, pipeline, input, size, blur flag); 16 seeds each
    pipes = [("simclr", simclr(32, True), "c", 32, 1), ("simclr_noblur", simclr(24, False), "a", 24, 0),
             ("clip", clip(28), "b", 28, 0), ("eval", evaluation(28), "c", 28, 0)]
    for name, pipe, inp, size, blur in pipes:
        x = chw(inputs[inp])
        res = []
        for seed in range(16):
            torch.manual_seed(seed)
            res.append(hwc(pipe(x)))
        out["pipe.%s" % name] = torch.stack(res)  # (16, size, size, 3) uint8
        out["pipe.%s.params" % name] = torch.tensor([ord(inp) - ord("a"), size, blur],
                                                    dtype=torch.int64)
    meta["pipes"] = ",".join(p[0] for p in pipes)
    refutil.save("transforms", out, meta)


if __name__ == "__main__":
    main()
