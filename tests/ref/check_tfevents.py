#!/usr/bin/env python3
"""tests/ref/check_tfevents.py — independent check of sogclip's TensorBoard event files.

Usage:  python3 tests/ref/check_tfevents.py RUN_DIR_OR_EVENT_FILE... [--quiet]

For a run folder, every events.out.tfevents.* file in it is checked, and metrics.jsonl (when
present) is parsed with the json module (strict: NaN/Infinity literals are rejected; sogclip
writes null and lists the tag under "nonfinite").

Per event file: the TFRecord framing (uint64 LE length, masked CRC-32C of the length bytes,
payload, masked CRC-32C of the payload) with a CRC-32C written here in pure Python, and a
minimal protobuf decoder for Event / Summary.Value.simple_value / SessionLog. It prints the
tags with their number of points and the first/last (step, value).

If the `tensorboard` package is importable, the same file is also read with TensorBoard's own
EventFileLoader and every scalar is compared. Debian has no python3-tensorboard package and this
project does not depend on it; `pip install tensorboard` in a virtual environment works.
Not run by CI (the C test covers the same ground); exit status 1 on any failure.
"""
import glob
import json
import math
import os
import struct
import sys

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283 and crc32c(bytes(32)) == 0x8A9136AA


def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift >= 64:
            raise ValueError("varint too long")


def fields(buf):
    """Yields (field, wire, value) of a protobuf message; value is int, bytes or raw fixed."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(buf, i)
        elif w == 1:
            v, i = buf[i:i + 8], i + 8
        elif w == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif w == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % w)
        if i > len(buf):
            raise ValueError("field runs past the message end")
        yield f, w, v


def parse_event(payload):
    ev = {"wall_time": 0.0, "step": 0, "scalars": [], "version": None, "start": False}
    for f, w, v in fields(payload):
        if f == 1 and w == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif f == 2 and w == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif f == 3 and w == 2:
            ev["version"] = v.decode()
        elif f == 5 and w == 2:
            for f2, w2, val in fields(v):
                if f2 != 1 or w2 != 2:
                    continue
                tag, x = None, None
                for f3, w3, v3 in fields(val):
                    if f3 == 1 and w3 == 2:
                        tag = v3.decode()
                    elif f3 == 2 and w3 == 5:
                        x = struct.unpack("<f", v3)[0]
                if x is not None:
                    ev["scalars"].append((tag, x))
        elif f == 7 and w == 2:  # session_log (6 is the deprecated log_message)
            ev["start"] = any(f4 == 1 and v4 == 1 for f4, _, v4 in fields(v))
    return ev


def read_events(path):
    data = open(path, "rb").read()
    off, rec, events = 0, 0, []
    while off < len(data):
        where = "%s: record %d at byte offset %d" % (path, rec, off)
        if len(data) - off < 12:
            raise ValueError(where + ": truncated header")
        head = data[off:off + 8]
        (n,) = struct.unpack("<Q", head)
        if struct.unpack("<I", data[off + 8:off + 12])[0] != masked(head):
            raise ValueError(where + ": length CRC mismatch")
        if off + 16 + n > len(data):
            raise ValueError(where + ": truncated record")
        payload = data[off + 12:off + 12 + n]
        if struct.unpack("<I", data[off + 12 + n:off + 16 + n])[0] != masked(payload):
            raise ValueError(where + ": payload CRC mismatch")
        events.append(parse_event(payload))
        off += 16 + n
        rec += 1
    return events


def scalars_of(events):
    out = []
    for ev in events:
        for tag, x in ev["scalars"]:
            out.append((tag, ev["step"], x))
    return out


def same(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))


def check_with_tensorboard(path, mine):
    try:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    except ImportError:
        print("  tensorboard not installed: TensorBoard's own loader not run")
        return True
    theirs, version = [], None
    for ev in EventFileLoader(path).Load():  # migrates simple_value to tensors
        if ev.HasField("file_version"):
            version = ev.file_version
        for v in ev.summary.value:
            if v.HasField("simple_value"):
                x = v.simple_value
            else:
                from tensorboard.util import tensor_util
                x = float(tensor_util.make_ndarray(v.tensor).item())
            theirs.append((v.tag, ev.step, x))
    ok = version == "brain.Event:2" and len(theirs) == len(mine) and all(
        t[0] == m[0] and t[1] == m[1] and same(t[2], m[2]) for t, m in zip(theirs, mine))
    print("  tensorboard EventFileLoader: %d scalars, %s" % (len(theirs), "equal" if ok else
                                                             "MISMATCH"))
    return ok


def check_file(path, quiet):
    try:
        events = read_events(path)
    except (ValueError, IndexError, UnicodeDecodeError) as e:
        print("FAIL", e)
        return False
    ok = bool(events) and events[0]["version"] == "brain.Event:2"
    sc = scalars_of(events)
    starts = [ev["step"] for ev in events if ev["start"]]
    print("%s: %d records, %d scalars%s%s" % (path, len(events), len(sc),
                                             ", session START at %s" % starts if starts else "",
                                             "" if ok else ", FIRST RECORD IS NOT brain.Event:2"))
    if not quiet:
        tags = {}
        for tag, step, x in sc:
            tags.setdefault(tag, []).append((step, x))
        for tag, pts in tags.items():
            print("  %-40s %6d points  first %s  last %s" % (tag, len(pts), pts[0], pts[-1]))
    return check_with_tensorboard(path, sc) and ok


def check_jsonl(path):
    def no_constants(name):
        raise ValueError("non-JSON constant " + name)
    n = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                obj = json.loads(line, parse_constant=no_constants)
                assert isinstance(obj, dict) and isinstance(obj.get("step"), int)
                for k in obj.get("nonfinite", []):
                    assert obj[k] is None, "nonfinite tag %s is not null" % k
            except (ValueError, AssertionError) as e:
                print("FAIL %s line %d: %s" % (path, n, e))
                return False
    print("%s: %d valid lines" % (path, n))
    return True


def main(argv):
    quiet = "--quiet" in argv
    paths = [a for a in argv if a != "--quiet"]
    if not paths:
        print(__doc__)
        return 2
    ok = True
    for p in paths:
        files = sorted(glob.glob(os.path.join(p, "*tfevents*"))) if os.path.isdir(p) else [p]
        if os.path.isdir(p) and os.path.exists(os.path.join(p, "metrics.jsonl")):
            ok &= check_jsonl(os.path.join(p, "metrics.jsonl"))
        if not files:
            print("no event files in", p)
            ok = False
        for f in files:
            ok &= check_file(f, quiet)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
