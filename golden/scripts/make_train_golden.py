#!/usr/bin/python3
"""
Golden of @vlm/train against real PyTorch: 30 optimizer steps of torch.optim.AdamW with two
parameter groups, Hugging Face's get_cosine_schedule_with_warmup (re-implemented below, same
formula; transformers is not needed), torch.nn.utils.clip_grad_norm_(1.0) and gradient
accumulation over 2 micro-batches, on a small module with fixed data. The weights after EVERY
step, the loss, the gradient norm before clipping and each group's learning rate are stored.

    /usr/bin/python3 golden/scripts/make_train_golden.py [--out golden/train]

Writes <out>/adamw_groups_cosine_clip_accum.{json,safetensors}, and a second case,
<out>/adam_sgd_linear_constant.{json,safetensors}: torch.optim.Adam with the linear warm-up
schedule, torch.optim.SGD (momentum, dampening, weight decay) with the constant warm-up schedule,
and Nesterov SGD. `pnpm golden` runs both through @vlm/train's Trainer
(tools/golden/src/adapters/train.ts).

Key naming in the case file
    param.<name>                  initial weights (PyTorch layout)
    input.x, input.y              the micro-batches in the order they are used: [60, 4, 6], [60, 4, 3]
                                  (step s uses micro-batches 2s and 2s+1)
    output.weights.<name>         the weights after each step, stacked: [30, ...shape]
    output.loss                   [30] mean of the step's two micro-batch losses
    output.grad_norm              [30] total gradient norm before clipping (clip_grad_norm_'s return)
    output.lr                     [30, 2] the learning rate of each group in the step
The computation is float32 (PyTorch's default); torch_f32_vs_f64 in the sidecar records how far
the float32 trajectory is from the same run in float64.
"""
import argparse
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = "adamw_groups_cosine_clip_accum"
STEPS, ACCUM, MICRO, N_IN, N_HID, N_OUT = 30, 2, 4, 6, 8, 3
WARMUP = 5
GROUPS = [
    {"name": "decay", "params": ["fc1.weight", "fc2.weight"], "lr": 2e-2, "weight_decay": 0.1},
    {"name": "no_decay", "params": ["gate", "fc1.bias", "norm.weight", "norm.bias", "fc2.bias"], "lr": 1e-2, "weight_decay": 0.0},
]
# eps large enough that its placement (after the square root and the bias correction) shows in the weights
ADAM = {"betas": (0.9, 0.98), "eps": 1e-4}
MAX_NORM = 1.0


class TinyNet(nn.Module):
    """fc1 → LayerNorm → tanh → fc2, scaled by tanh(gate): a matrix, biases, a norm and a gate."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Parameter(torch.tensor([0.5]))
        self.fc1 = nn.Linear(N_IN, N_HID)
        self.norm = nn.LayerNorm(N_HID)
        self.fc2 = nn.Linear(N_HID, N_OUT)

    def forward(self, x):
        return self.fc2(torch.tanh(self.norm(self.fc1(x)))) * torch.tanh(self.gate)


def cosine_schedule_with_warmup(step, warmup, total, num_cycles=0.5):
    # transformers.optimization.get_cosine_schedule_with_warmup's lr_lambda
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def linear_schedule_with_warmup(step, warmup, total):
    # transformers.optimization.get_linear_schedule_with_warmup's lr_lambda
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def constant_schedule_with_warmup(step, warmup):
    # transformers.optimization.get_constant_schedule_with_warmup's lr_lambda
    if step < warmup:
        return float(step) / float(max(1.0, warmup))
    return 1.0


def run(dtype, init, xs, ys, make_opt, lr_lambda, steps, accum, max_norm):
    """Trains a TinyNet from `init`; step s uses micro-batches accum*s … accum*s+accum-1."""
    torch.set_default_dtype(dtype)
    net = TinyNet()
    net.load_state_dict({k: v.to(dtype) for k, v in init.items()})
    named = dict(net.named_parameters())
    opt = make_opt(named)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    out = {"loss": [], "grad_norm": [], "lr": [], "weights": {n: [] for n in named}}
    for step in range(steps):
        opt.zero_grad()
        loss_sum = 0.0
        for a in range(accum):
            k = step * accum + a
            loss = torch.mean((net(xs[k].to(dtype)) - ys[k].to(dtype)) ** 2)
            (loss / accum).backward()
            loss_sum += loss.item()
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm)
        out["lr"].append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
        out["loss"].append(loss_sum / accum)
        out["grad_norm"].append(float(norm))
        for n, p in named.items():
            out["weights"][n].append(p.detach().clone())
    torch.set_default_dtype(torch.float32)
    return out


def adamw_groups(named):
    return torch.optim.AdamW(
        [{"params": [named[n] for n in g["params"]], "lr": g["lr"], "weight_decay": g["weight_decay"]} for g in GROUPS],
        betas=ADAM["betas"], eps=ADAM["eps"],
    )


def max_rel(f32, f64):
    worst = 0.0
    for n in f32["weights"]:
        a = torch.stack(f32["weights"][n]).double()
        b = torch.stack(f64["weights"][n])
        worst = max(worst, float(((a - b).abs() / b.abs().clamp_min(1e-6)).max()))
    return worst


# The second case: plain Adam (L2 weight decay) with the linear schedule, SGD with momentum
# with the constant schedule, Nesterov SGD; full batches of one micro-batch, no clipping
# (clip_grad_norm_ at infinity only measures).
OTHERS = {
    "adam": {
        "make": lambda named: torch.optim.Adam(named.values(), lr=1e-2, weight_decay=0.01),
        "torch": {"class": "torch.optim.Adam", "lr": 1e-2, "weight_decay": 0.01},
        "schedule": {"kind": "linear", "warmup_steps": 3, "training_steps": 12},
    },
    "sgd": {
        "make": lambda named: torch.optim.SGD(named.values(), lr=5e-2, momentum=0.9, dampening=0.1, weight_decay=0.01),
        "torch": {"class": "torch.optim.SGD", "lr": 5e-2, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "nesterov": False},
        "schedule": {"kind": "constant", "warmup_steps": 4},
    },
    "sgd_nesterov": {
        "make": lambda named: torch.optim.SGD(named.values(), lr=5e-2, momentum=0.9, nesterov=True),
        "torch": {"class": "torch.optim.SGD", "lr": 5e-2, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": True},
        "schedule": {"kind": "constant", "warmup_steps": 0},
    },
}
OTHER_STEPS = 12


def lambda_of(sc, total):
    if sc["kind"] == "linear":
        return lambda s: linear_schedule_with_warmup(s, sc["warmup_steps"], sc["training_steps"])
    if sc["kind"] == "constant":
        return lambda s: constant_schedule_with_warmup(s, sc["warmup_steps"])
    return lambda s: cosine_schedule_with_warmup(s, sc["warmup_steps"], total)


def write_safetensors(path, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        a = np.ascontiguousarray(tensors[key].detach().cpu().numpy().astype("<f4"))
        b = a.tobytes()
        header[key] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_case(out_dir, name, tensors, sidecar):
    write_safetensors(os.path.join(out_dir, f"{name}.safetensors"), tensors, {"format": "pt"})
    sidecar["keys"] = [{"key": k, "dtype": "F32", "shape": list(v.shape)} for k, v in sorted(tensors.items())]
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(sidecar, f, indent=1)
        f.write("\n")


TOLERANCE = {"forward": {"atol": 1e-6, "rtol": 1e-5}, "grad": {"atol": 1e-6, "rtol": 1e-5}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "..", "train"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(1234)
    init = {k: v.detach().clone() for k, v in TinyNet().state_dict().items()}
    g = torch.Generator().manual_seed(99)
    xs = torch.randn(STEPS * ACCUM, MICRO, N_IN, generator=g)
    a = torch.randn(N_IN, N_OUT, generator=g)
    # a learnable target, large enough that clipping is active in some steps and not in others
    ys = 1.5 * torch.tanh(xs @ a) + 0.1 * torch.randn(STEPS * ACCUM, MICRO, N_OUT, generator=g)
    base = {f"param.{k}": v for k, v in init.items()}
    base["input.x"] = xs
    base["input.y"] = ys
    config = {"in": N_IN, "hidden": N_HID, "out": N_OUT, "micro_batch": MICRO}
    loss_doc = "mean((net(x) - y)^2) per micro-batch; backward of loss / accumulation_steps"

    # Case 1: AdamW, two groups, warm-up + cosine, clipping at 1.0, accumulation 2.
    cos = lambda s: cosine_schedule_with_warmup(s, WARMUP, STEPS)
    f32 = run(torch.float32, init, xs, ys, adamw_groups, cos, STEPS, ACCUM, MAX_NORM)
    f64 = run(torch.float64, init, xs, ys, adamw_groups, cos, STEPS, ACCUM, MAX_NORM)
    tensors = dict(base)
    for n, ws in f32["weights"].items():
        tensors[f"output.weights.{n}"] = torch.stack(ws)
    tensors["output.loss"] = torch.tensor(f32["loss"])
    tensors["output.grad_norm"] = torch.tensor(f32["grad_norm"])
    tensors["output.lr"] = torch.tensor(f32["lr"])
    clipped = sum(1 for v in f32["grad_norm"] if v > MAX_NORM)
    write_case(args.out, CASE, tensors, {
        "case": CASE,
        "module": "TrainerAdamW",
        "description": "30 steps of torch.optim.AdamW, two parameter groups, warm-up + cosine (Hugging Face), clip_grad_norm_(1.0), accumulation 2, on TinyNet (fc1 → LayerNorm → tanh → fc2, × tanh(gate)); weights after every step",
        "torch_version": torch.__version__,
        "config": config,
        "train": {
            "steps": STEPS,
            "accumulation_steps": ACCUM,
            "max_grad_norm": MAX_NORM,
            "optimizer": {"class": "torch.optim.AdamW", "betas": list(ADAM["betas"]), "eps": ADAM["eps"], "amsgrad": False},
            "param_groups": GROUPS,
            "schedule": {"kind": "cosine", "warmup_steps": WARMUP, "training_steps": STEPS, "num_cycles": 0.5},
            "loss": loss_doc,
        },
        "steps_clipped": clipped,
        "torch_f32_vs_f64": {"max_rel_weight_diff": max_rel(f32, f64)},
        "tolerance": TOLERANCE,
        "tolerance_rule": "|actual - golden| <= atol + rtol * |golden| elementwise, for every output.* key",
    })
    print(f"{CASE}: {clipped}/{STEPS} steps clipped, loss {f32['loss'][0]:.4f} -> {f32['loss'][-1]:.4f}, float32 vs float64 max rel weight diff {max_rel(f32, f64):.2e}")

    # Case 2: Adam + linear schedule, SGD (momentum, dampening, L2) + constant schedule, Nesterov SGD.
    name = "adam_sgd_linear_constant"
    tensors = dict(base)
    runs = {}
    for key, o in OTHERS.items():
        lam = lambda_of(o["schedule"], OTHER_STEPS)
        r32 = run(torch.float32, init, xs, ys, o["make"], lam, OTHER_STEPS, 1, float("inf"))
        r64 = run(torch.float64, init, xs, ys, o["make"], lam, OTHER_STEPS, 1, float("inf"))
        for n, ws in r32["weights"].items():
            tensors[f"output.{key}.weights.{n}"] = torch.stack(ws)
        tensors[f"output.{key}.loss"] = torch.tensor(r32["loss"])
        tensors[f"output.{key}.lr"] = torch.tensor([lrs[0] for lrs in r32["lr"]])
        runs[key] = {"optimizer": o["torch"], "schedule": o["schedule"], "torch_f32_vs_f64": {"max_rel_weight_diff": max_rel(r32, r64)}}
        print(f"{name}/{key}: loss {r32['loss'][0]:.4f} -> {r32['loss'][-1]:.4f}, float32 vs float64 {max_rel(r32, r64):.2e}")
    write_case(args.out, name, tensors, {
        "case": name,
        "module": "TrainerOptimizers",
        "description": f"{OTHER_STEPS} steps each of torch.optim.Adam (L2 weight decay) with the linear warm-up schedule, torch.optim.SGD (momentum, dampening, weight decay) with the constant warm-up schedule, and Nesterov SGD; one micro-batch per step (the first {OTHER_STEPS} of input.x), no clipping",
        "torch_version": torch.__version__,
        "config": config,
        "train": {"steps": OTHER_STEPS, "accumulation_steps": 1, "loss": loss_doc, "runs": runs},
        "tolerance": TOLERANCE,
        "tolerance_rule": "|actual - golden| <= atol + rtol * |golden| elementwise, for every output.* key",
    })


if __name__ == "__main__":
    main()
