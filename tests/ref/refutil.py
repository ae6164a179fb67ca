"""tests/ref/refutil.py — write PyTorch reference tensors as safetensors (no extra packages).

Run the generators with Debian's torch: /usr/bin/python3 tests/ref/gen_<family>.py
Outputs go to tests/ref/data/<family>.safetensors and are committed so CI needs no torch.
"""
import json
import os
import struct

import torch

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8",
}


def save(name, tensors, metadata=None):
    """tensors: dict name -> torch.Tensor (float tensors are stored as F32 unless already
    another supported dtype). Returns the path written."""
    os.makedirs(DATA_DIR, exist_ok=True)
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for key, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.float64:
            t = t.float()
        dt = _DTYPES[t.dtype]
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[key] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    path = os.path.join(DATA_DIR, name + ".safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    print("wrote", path, off, "bytes of data")
    return path


def rand(*shape, seed=0, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * (hi - lo) + lo


def load(name):
    """Reads tests/ref/data/<name>.safetensors: returns (dict name -> torch tensor, metadata)."""
    import numpy as np
    path = os.path.join(DATA_DIR, name + ".safetensors")
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    np_types = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64,
                "U8": np.uint8}
    out = {}
    for key, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + end], dtype=np_types[e["dtype"]])
        out[key] = torch.from_numpy(arr.copy()).reshape(e["shape"])
    return out, meta
