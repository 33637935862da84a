"""Checkpoints for `pnpm bench:load`, with PyTorch alone (transformers is not needed).

  write SPEC.json   writes random real-sized safetensors checkpoints: the spec lists, per file,
                    the tensors (name, dtype, shape) in order, plus config.json and an optional
                    model.safetensors.index.json. Weights are N(0, 0.02), written as the file's
                    dtype (F32, F16 or BF16). The safetensors format is written by hand (8-byte
                    header length, JSON header, raw little-endian data).
  load FILE...      PyTorch's eager load of those files: parse each header, then read every
                    tensor into a preallocated torch tensor and upcast F16/BF16 to float32 (what
                    `from_pretrained(..., torch_dtype=torch.float32)` materialises, without
                    transformers' module construction). Prints {"seconds", "peakRssBytes"}.
"""
import json
import os
import resource
import struct
import sys
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def write(spec_path):
    spec = json.load(open(spec_path))
    out = spec["dir"]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for name, tensors in spec["files"].items():
        header, offset = {}, 0
        for t in tensors:
            n = 1
            for d in t["shape"]:
                n *= d
            size = n * SIZES[t["dtype"]]
            header[t["name"]] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [offset, offset + size]}
            offset += size
        text = json.dumps(header, separators=(",", ":"))
        text += " " * ((8 - len(text) % 8) % 8)
        path = os.path.join(out, name)
        with open(path + ".part", "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text.encode())
            for t in tensors:
                x = torch.empty(t["shape"], dtype=torch.float32).normal_(0, 0.02, generator=gen).to(DTYPES[t["dtype"]])
                # bytes of the tensor as stored (bf16 through a 16-bit view)
                raw = x.contiguous().view(torch.int16 if t["dtype"] != "F32" else torch.int32).numpy().tobytes()
                f.write(raw)
        os.replace(path + ".part", path)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(spec["config"], f)
    if spec.get("index"):
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump(spec["index"], f)


def load(paths):
    started = time.perf_counter()
    state = {}
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            start = 8 + n
            for key, e in header.items():
                if key == "__metadata__":
                    continue
                b, end = e["data_offsets"]
                stored = torch.empty(e["shape"], dtype=DTYPES[e["dtype"]])
                f.seek(start + b)
                if end > b:
                    f.readinto(memoryview(stored.reshape(-1).view(torch.uint8).numpy()))
                state[key] = stored.float() if stored.dtype != torch.float32 else stored
    seconds = time.perf_counter() - started
    total = sum(t.numel() for t in state.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peakRssBytes": rss, "parameters": total, "torch": torch.__version__}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    elif sys.argv[1] == "load":
        load(sys.argv[2:])
    else:
        sys.exit(__doc__)
