#!/usr/bin/python3
"""
Loads a @vlm/train checkpoint folder into PyTorch, as a user who trained in TF.js and continues
in PyTorch would: model.safetensors into make_train_golden.py's TinyNet with
load_state_dict(strict=True), optimizer.safetensors as torch.optim.AdamW state (exp_avg,
exp_avg_sq, step from trainer_state.json), then one AdamW step on a given batch.

    /usr/bin/python3 golden/scripts/load_train_checkpoint.py CHECKPOINT_DIR X.json

X.json: {"x": [[...6 floats], ...], "y": [[...3 floats], ...], "lr": float, "weight_decay": float}.
Prints JSON: {"out": forward(x) before the step, "weights": state_dict after one AdamW step}.
(safetensors is parsed by hand: the `safetensors` package is not needed.)
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_train_golden import TinyNet  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for key, e in header.items():
        assert e["dtype"] == "F32", (key, e["dtype"])
        b, end = e["data_offsets"]
        out[key] = torch.from_numpy(np.frombuffer(data[8 + n + b:8 + n + end], dtype="<f4").copy().reshape(e["shape"]))
    return out


def main():
    ckpt, batch_path = sys.argv[1], sys.argv[2]
    batch = json.load(open(batch_path))
    net = TinyNet()
    net.load_state_dict(read_safetensors(os.path.join(ckpt, "model.safetensors")), strict=True)
    state = json.load(open(os.path.join(ckpt, "trainer_state.json")))
    moments = read_safetensors(os.path.join(ckpt, "optimizer.safetensors"))
    x, y = torch.tensor(batch["x"]), torch.tensor(batch["y"])
    with torch.no_grad():
        out = net(x)
    opt = torch.optim.AdamW(net.parameters(), lr=batch["lr"], weight_decay=batch["weight_decay"])
    for name, p in net.named_parameters():
        opt.state[p] = {
            "step": torch.tensor(float(state["optimizer"]["steps"][name])),
            "exp_avg": moments[f"{name}.exp_avg"].clone(),
            "exp_avg_sq": moments[f"{name}.exp_avg_sq"].clone(),
        }
    loss = torch.mean((net(x) - y) ** 2)
    loss.backward()
    opt.step()
    print(json.dumps({"out": out.tolist(), "weights": {k: v.reshape(-1).tolist() for k, v in net.state_dict().items()}}))


if __name__ == "__main__":
    main()
