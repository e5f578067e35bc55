#!/usr/bin/env python3
"""The same language model as a rill config, written in plain eager PyTorch as a user would
write it, timed the way bench_lm times rill: training steps (forward, backward, clipping, AdamW;
batch 16 x 128 random bytes, the recurrent state carried and detached between steps) and
one-stream generation in the step form. bench/versus_pytorch.sh runs it beside bench_lm.

What it covers: linear_attention mixers (feature map elu1 or relu, the normaliser or an RMS output
norm, decay none/retnet/learned/input, local "shift"), pre-norm blocks with layer norm, a GELU
MLP and tied byte embeddings: the models of configs/default.json and configs/linear.json. Within
a 128-token segment the attention is the quadratic masked form with the carried state added:
at this length that is the fastest thing eager PyTorch offers (one batched product instead of a
Python loop over chunks).

Usage: pytorch_lm.py CONFIG [--threads N] [--steps N] [--tokens N]
"""
import argparse
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, SEQ, VOCAB = 16, 128, 256


class LinearAttention(nn.Module):
    def __init__(self, d, c):
        super().__init__()
        self.h = c.get("heads", 4)
        self.dh = d // self.h
        self.feature = c.get("feature_map", "elu1")
        self.normalize = c.get("normalize", True)
        self.decay = c.get("decay", "none")
        self.eps = c.get("eps", 1e-6)
        self.shift = c.get("local") == "shift"
        if c.get("local") not in (None, "shift"):
            raise SystemExit(f"pytorch_lm.py: local {c['local']!r} is not written here")
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        if not self.normalize:
            self.out_gain = nn.Parameter(torch.ones(self.dh))
        g = torch.tensor([math.log1p(-2.0 ** (-5 - i)) for i in range(self.h)])
        theta = torch.log(torch.expm1(-g))
        if self.decay == "retnet":
            self.register_buffer("log_decay", g)
        elif self.decay == "learned":
            self.theta = nn.Parameter(theta)
        elif self.decay == "input":
            self.gate = nn.Linear(d, self.h)
            with torch.no_grad():
                self.gate.bias.copy_(theta)
        if self.shift:
            self.mix = nn.Parameter((torch.arange(d) + 0.5) / d)

    def phi(self, x):
        return F.elu(x) + 1 if self.feature == "elu1" else F.relu(x)

    def log_decay(self, x):  # [B, H, T] (or [1, H, 1])
        if self.decay == "retnet":
            return self.log_decay.view(1, -1, 1)
        if self.decay == "learned":
            return -F.softplus(self.theta).view(1, -1, 1)
        return -F.softplus(self.gate(x)).transpose(1, 2)

    def readout(self, num):
        if self.normalize:
            return num[..., :-1] / (num[..., -1:] + self.eps)
        return num * torch.rsqrt(num.pow(2).mean(-1, keepdim=True) + 1e-5) * self.out_gain

    def forward(self, x, state):  # x [B, T, D]; state: {"S": [B, H, dh, dv], "prev": [B, 1, D]}
        B, T, D = x.shape
        if self.shift:
            prev = torch.cat([state["prev"], x[:, :-1]], 1)
            state["prev"] = x[:, -1:]
            x = self.mix * x + (1 - self.mix) * prev
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)  # [B,H,T,dh]
        q, k = self.phi(q), self.phi(k)
        if self.normalize:
            v = torch.cat([v, v.new_ones(B, self.h, T, 1)], -1)
        S0 = state["S"]
        scores = q @ k.transpose(-1, -2)  # [B, H, T, T]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        if self.decay == "none":
            num = (scores * causal) @ v + q @ S0
            S = S0 + k.transpose(-1, -2) @ v
        else:
            G = torch.cumsum(self.log_decay(x).expand(B, self.h, T), -1)  # [B, H, T]
            diff = (G.unsqueeze(-1) - G.unsqueeze(-2)).masked_fill(~causal, -math.inf)
            num = (scores * diff.exp()) @ v + G.exp().unsqueeze(-1) * (q @ S0)
            tail = (G[..., -1:] - G).exp().unsqueeze(-1)  # [B, H, T, 1]
            S = G[..., -1].exp()[..., None, None] * S0 + (k * tail).transpose(-1, -2) @ v
        state["S"] = S
        o = self.readout(num).transpose(1, 2).reshape(B, T, D)
        return self.out(o)

    def step(self, x, state):  # x [B, D]
        B, D = x.shape
        if self.shift:
            prev, state["prev"] = state["prev"][:, 0], x.unsqueeze(1)
            x = self.mix * x + (1 - self.mix) * prev
        q, k, v = self.qkv(x).view(B, 3, self.h, self.dh).unbind(1)  # [B, H, dh]
        q, k = self.phi(q), self.phi(k)
        if self.normalize:
            v = torch.cat([v, v.new_ones(B, self.h, 1)], -1)
        S = state["S"]
        if self.decay != "none":
            S = self.log_decay(x.unsqueeze(1)).reshape(-1, self.h).exp()[..., None, None] * S
        S = S + k.unsqueeze(-1) * v.unsqueeze(-2)
        state["S"] = S
        num = (q.unsqueeze(-2) @ S).squeeze(-2)
        return self.out(self.readout(num).reshape(B, D))

    def init_state(self, B):
        dv = self.dh + (1 if self.normalize else 0)
        return {"S": torch.zeros(B, self.h, self.dh, dv), "prev": torch.zeros(B, 1, self.h * self.dh)}


class Block(nn.Module):
    def __init__(self, d, hidden, mixer):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.mixer = LinearAttention(d, mixer)
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x, state, step=False):
        h = self.norm1(x)
        x = x + (self.mixer.step(h, state) if step else self.mixer(h, state))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class LM(nn.Module):
    def __init__(self, m):
        super().__init__()
        for key, want in (("norm", "layer"), ("mlp", "gelu"), ("tie_embeddings", True)):
            if m.get(key, want) != want:
                raise SystemExit(f"pytorch_lm.py: model {key} {m[key]!r} is not written here")
        mixers = m["mixers"]
        if any(c["type"] != "linear_attention" for c in mixers):
            raise SystemExit("pytorch_lm.py: only linear_attention mixers are written here")
        d = m["d_model"]
        self.emb = nn.Embedding(VOCAB, d)
        self.blocks = nn.ModuleList(
            Block(d, m["mlp_hidden"], mixers[i % len(mixers)]) for i in range(m["n_layers"]))
        self.norm = nn.LayerNorm(d)

    def forward(self, ids, states, step=False):
        x = self.emb(ids)
        for b, s in zip(self.blocks, states):
            x = b(x, s, step)
        return self.norm(x) @ self.emb.weight.t()

    def init_state(self, B):
        return [b.mixer.init_state(B) for b in self.blocks]


def median_seconds(fn, steps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=400)
    a = ap.parse_args()
    torch.manual_seed(1)
    model = LM(json.load(open(a.config))["model"])
    params = sum(p.numel() for p in model.parameters())

    torch.set_num_threads(a.threads)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "emb" not in n else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ))
    targets = torch.randint(0, VOCAB, (BATCH, SEQ))
    states = model.init_state(BATCH)
    model.train()

    def train_step():
        for s in states:
            for key in s:
                s[key] = s[key].detach()
        opt.zero_grad(set_to_none=True)
        logits = model(ids, states)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    train_tps = BATCH * SEQ / median_seconds(train_step, a.steps)

    torch.set_num_threads(1)
    model.eval()
    with torch.no_grad():
        gen_states = model.init_state(1)
        token = torch.tensor([7])
        for _ in range(8):
            model(token, gen_states, step=True)
        t0 = time.perf_counter()
        for _ in range(a.tokens):
            model(token, gen_states, step=True)
        gen_tps = a.tokens / (time.perf_counter() - t0)

    print(json.dumps({"torch": torch.__version__, "parameters": params, "threads": a.threads,
                      "train_tokens_per_s": round(train_tps, 1),
                      "generate_1_stream_tokens_per_s": round(gen_tps, 1)}))


if __name__ == "__main__":
    main()
