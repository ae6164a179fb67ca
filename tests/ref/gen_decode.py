"""tests/ref/gen_decode.py — PIL reference decodes for tests/test_decode.c.

PIL (Debian python3-pil 9.4, linked against the same libjpeg-turbo 2.1.5 as libturbojpeg) is
the reference: Image.open(path).convert("RGB"); DCT-scaled decodes through Image.draft
(libjpeg scale_num/scale_denom = 1/k, the factor TurboJPEG uses too).

Stored per image NAME (shared-data photos are not copied, only checksums and a small crop):
  NAME.size  I64 [h, w]       NAME.sum   I64 [3] per-channel pixel sums
  NAME.wsum  I64 [1] sum of px[i] * (i % 65521 + 1) over the (h, w, 3) buffer (order-sensitive)
  NAME.crop  U8 [16, 16, 3] centre crop
Small generated files (PIL encodes them; bytes stored) for formats the photos lack:
  gen.NAME.bytes U8 [n] the encoded file, gen.NAME.rgb U8 [h, w, 3] PIL's decode.
Run: cd tests/ref && /usr/bin/python3 gen_decode.py
"""
import io
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image

import refutil

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")
PHOTOS = ["rocket.jpg", "hubble_deep_field.jpg", "retina.jpg", "astronaut.png", "chelsea.png",
          "coffee.png", "camera.png", "flickr8k_orig_1030985833_b0902ea560.jpg",
          "flickr8k_orig_1056359656_662cee0814.jpg", "flickr8k_orig_1024138940_f1fefbdce1.jpg",
          "flickr8k_orig_1084104085_3b06223afe.jpg"]
# Imagenette: an RGB and a grayscale (1-channel) 4:2:0 JPEG
EXTRA = {"inette_rgb": "imagenette/train/n01440764/ILSVRC2012_val_00016018.jpg",
         "inette_gray": "imagenette/train/n02102040/n02102040_173.jpg"}
# DCT-scaled decodes: (photo, k) -> PIL draft at 1/k
SCALED = [("retina.jpg", 2), ("retina.jpg", 4), ("retina.jpg", 8), ("hubble_deep_field.jpg", 2),
          ("rocket.jpg", 4), ("flickr8k_orig_1056359656_662cee0814.jpg", 8)]


def checksums(out, name, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    h, w, _ = a.shape
    flat = a.reshape(-1).astype(np.int64)
    wts = np.arange(flat.size, dtype=np.int64) % 65521 + 1
    out[name + ".size"] = torch.tensor([h, w], dtype=torch.int64)
    out[name + ".sum"] = torch.from_numpy(a.reshape(-1, 3).astype(np.int64).sum(0))
    out[name + ".wsum"] = torch.tensor([int((flat * wts).sum())], dtype=torch.int64)
    cy, cx = max(0, h // 2 - 8), max(0, w // 2 - 8)
    out[name + ".crop"] = torch.from_numpy(a[cy:cy + 16, cx:cx + 16].copy())


def gen_file(out, name, img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    raw = buf.getvalue()
    back = Image.open(io.BytesIO(raw))
    out["gen.%s.bytes" % name] = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy())
    out["gen.%s.rgb" % name] = torch.from_numpy(np.asarray(back.convert("RGB")).copy())
    return back.mode


def png_bytes(w, h, color_type, depth, rows):
    """A minimal PNG writer (PIL cannot write 16-bit RGB): rows (h, bytes) uint8."""
    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\0" + r.tobytes() for r in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def main():
    out = {}
    for p in PHOTOS:
        checksums(out, p, np.asarray(Image.open(os.path.join(DATA, "photos", p)).convert("RGB")))
    for k, p in EXTRA.items():
        im = Image.open(os.path.join(DATA, p))
        checksums(out, k, np.asarray(im.convert("RGB")))
    for p, k in SCALED:
        im = Image.open(os.path.join(DATA, "photos", p))
        w, h = im.size
        im.draft("RGB", (w // k, h // k))
        a = np.asarray(im.convert("RGB"))
        assert a.shape[:2] == ((h + k - 1) // k, (w + k - 1) // k), (p, k, a.shape)
        checksums(out, "%s@1_%d" % (p, k), a)

    # Small generated files from a 48x40 crop of chelsea.png
    src = Image.open(os.path.join(DATA, "photos", "chelsea.png")).convert("RGB")
    src = src.crop((200, 100, 248, 140))
    modes = {}
    modes["cmyk"] = gen_file(out, "cmyk", src.convert("CMYK"), "JPEG", quality=90)
    modes["rgba"] = gen_file(out, "rgba", src.convert("RGBA"), "PNG")
    modes["la"] = gen_file(out, "la", src.convert("LA"), "PNG")
    modes["pal"] = gen_file(out, "pal", src.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG")
    rgb16 = np.asarray(src).astype(">u2") * 257 + 3  # 16-bit RGB, big-endian samples
    raw = png_bytes(48, 40, 2, 16, rgb16.reshape(40, -1).view(np.uint8))
    out["gen.rgb16.bytes"] = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy())
    back = Image.open(io.BytesIO(raw))
    modes["rgb16"] = back.mode
    out["gen.rgb16.rgb"] = torch.from_numpy(np.asarray(back.convert("RGB")).copy())
    print("generated modes:", modes)
    refutil.save("decode", out, {"generator": "gen_decode.py", "pil": Image.__version__})


if __name__ == "__main__":
    main()
