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
  generate CONFIG.json NEW_TOKENS PROMPT_IDS FILE...
                    greedy generation with a KV cache, batch 1, from the loaded weights: a
                    GPT-2, OPT or LLaMA decoder written here in plain torch with the math of
                    transformers' eager modules (the same products, norms and activations; the
                    logits of the last position only, as `generate()` does). One warm-up run,
                    then a timed one, with one thread and with every core (the faster counts). Prints {"tokensPerSecond", "ids"}.
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


def read_state(paths):
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
    return state


def load(paths):
    started = time.perf_counter()
    state = read_state(paths)
    seconds = time.perf_counter() - started
    total = sum(t.numel() for t in state.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peakRssBytes": rss, "parameters": total, "torch": torch.__version__}))


def _layer_norm(x, state, name, eps=1e-5):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], state[name + ".weight"], state[name + ".bias"], eps)


def _rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _attend(q, k, v, heads, kv_heads, cache, i, scale):
    """q [T, H*d], k/v [T, Hkv*d] (rotated if needed) → [T, H*d]; appends k, v to cache[i]."""
    t = q.shape[0]
    d = q.shape[1] // heads
    q = q.view(t, heads, d).transpose(0, 1)
    k = k.view(t, kv_heads, d).transpose(0, 1)
    v = v.view(t, kv_heads, d).transpose(0, 1)
    if cache[i] is not None:
        k = torch.cat([cache[i][0], k], dim=1)
        v = torch.cat([cache[i][1], v], dim=1)
    cache[i] = (k, v)
    if kv_heads != heads:
        k = k.repeat_interleave(heads // kv_heads, dim=0)
        v = v.repeat_interleave(heads // kv_heads, dim=0)
    scores = torch.matmul(q, k.transpose(1, 2)) * scale
    s = k.shape[1]
    if t > 1:
        causal = torch.ones(t, s, dtype=torch.bool).tril(s - t)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    return torch.matmul(torch.softmax(scores, dim=-1), v).transpose(0, 1).reshape(t, heads * d)


def _step_gpt2(c, state, ids, past, cache):
    linear = lambda x, n: torch.addmm(state[n + ".bias"], x, state[n + ".weight"])  # Conv1D
    x = state["transformer.wte.weight"][ids] + state["transformer.wpe.weight"][past : past + len(ids)]
    heads = c["n_head"]
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        h = _layer_norm(x, state, p + "ln_1")
        q, k, v = linear(h, p + "attn.c_attn").split(c["n_embd"], dim=-1)
        x = x + linear(_attend(q, k, v, heads, heads, cache, i, (c["n_embd"] // heads) ** -0.5), p + "attn.c_proj")
        h = _layer_norm(x, state, p + "ln_2")
        x = x + linear(torch.nn.functional.gelu(linear(h, p + "mlp.c_fc"), approximate="tanh"), p + "mlp.c_proj")
    x = _layer_norm(x[-1:], state, "transformer.ln_f")
    return torch.matmul(x, state.get("lm_head.weight", state["transformer.wte.weight"]).t())


def _step_opt(c, state, ids, past, cache):
    linear = lambda x, n: torch.nn.functional.linear(x, state[n + ".weight"], state[n + ".bias"])
    d = "model.decoder."
    x = state[d + "embed_tokens.weight"][ids] + state[d + "embed_positions.weight"][past + 2 : past + 2 + len(ids)]
    heads = c["num_attention_heads"]
    scale = (c["hidden_size"] // heads) ** -0.5
    for i in range(c["num_hidden_layers"]):
        p = f"{d}layers.{i}."
        h = _layer_norm(x, state, p + "self_attn_layer_norm")
        q = linear(h, p + "self_attn.q_proj") * scale
        a = _attend(q, linear(h, p + "self_attn.k_proj"), linear(h, p + "self_attn.v_proj"), heads, heads, cache, i, 1.0)
        x = x + linear(a, p + "self_attn.out_proj")
        h = _layer_norm(x, state, p + "final_layer_norm")
        x = x + linear(torch.relu(linear(h, p + "fc1")), p + "fc2")
    x = _layer_norm(x[-1:], state, d + "final_layer_norm")
    return torch.matmul(x, state.get("lm_head.weight", state[d + "embed_tokens.weight"]).t())


def _rotate(x, pos, d, theta):
    """Rotary embedding (transformers' rotate_half layout) of x [T, heads*d] at positions pos."""
    t = x.shape[0]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    freqs = torch.outer(pos.float(), inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    x = x.view(t, -1, d)
    half = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], dim=-1)
    return (x * cos + half * sin).reshape(t, -1)


def _step_llama(c, state, ids, past, cache):
    w = lambda n: state[n + ".weight"]
    linear = lambda x, n: torch.nn.functional.linear(x, w(n))
    x = w("model.embed_tokens")[ids]
    heads = c["num_attention_heads"]
    kv = c.get("num_key_value_heads", heads)
    d = c["hidden_size"] // heads
    eps = c.get("rms_norm_eps", 1e-6)
    theta = c.get("rope_theta", 10000.0)
    pos = torch.arange(past, past + len(ids))
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = _rms_norm(x, w(p + "input_layernorm"), eps)
        q = _rotate(linear(h, p + "self_attn.q_proj"), pos, d, theta)
        k = _rotate(linear(h, p + "self_attn.k_proj"), pos, d, theta)
        x = x + linear(_attend(q, k, linear(h, p + "self_attn.v_proj"), heads, kv, cache, i, d ** -0.5), p + "self_attn.o_proj")
        h = _rms_norm(x, w(p + "post_attention_layernorm"), eps)
        x = x + linear(torch.nn.functional.silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = _rms_norm(x[-1:], w("model.norm"), eps)
    return torch.matmul(x, state.get("lm_head.weight", w("model.embed_tokens")).t())


STEPS = {"gpt2": _step_gpt2, "opt": _step_opt, "llama": _step_llama}


def generate(config_path, new_tokens, prompt, paths):
    c = json.load(open(config_path))
    state = read_state(paths)
    step = STEPS[c["model_type"]]
    layers = c.get("n_layer", c.get("num_hidden_layers"))
    prompt = [int(t) for t in prompt.split(",")]

    def run():
        cache = [None] * layers
        ids, past, out = torch.tensor(prompt), 0, []
        for _ in range(new_tokens):
            logits = step(c, state, ids, past, cache)
            past += len(ids)
            token = int(logits[-1].argmax())
            out.append(token)
            ids = torch.tensor([token])
        return out

    # The faster of one thread and every core (the native matMul uses every core; on a busy
    # machine PyTorch's OpenMP threads can be slower than one).
    best = None
    for threads in sorted({1, os.cpu_count()}):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            run()  # warm-up
            started = time.perf_counter()
            ids = run()
            seconds = time.perf_counter() - started
        if best is None or seconds < best[0]:
            best = (seconds, ids, threads)
    seconds, ids, threads = best
    print(json.dumps({"tokensPerSecond": new_tokens / seconds, "ids": ids, "threads": threads}))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    elif sys.argv[1] == "load":
        load(sys.argv[2:])
    elif sys.argv[1] == "generate":
        generate(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:])
    else:
        sys.exit(__doc__)
