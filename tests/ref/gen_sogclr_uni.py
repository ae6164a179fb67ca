"""Reference for tests/test_sogclr_uni.c: unimodal SogCLR (LibAUC GCLoss_v1 semantics) and its
iSogCLR option, written from docs/ALGORITHMS.md 2(a) plus the project rules of its first section
(unseen samples start per sample: u == 0 -> u takes the fresh estimate g; constant gamma means
gamma in every epoch; cosine 1 -> gamma_min over gamma_decay_epochs).
Run: cd tests/ref && /usr/bin/python3 gen_sogclr_uni.py  -> data/sogclr_uni.safetensors

The loss is computed as the spec describes it (LibAUC layout, not the C layout): four B x B
blocks s_ab, s_aa, s_bb, s_ba, self-similarities pushed to -1e9, logits L^a = [s_ab | s_aa],
L^b = [s_ba | s_bb], the positive removed with a one-hot negative mask; float64 autograd of the
surrogate with p detached.

Sequence cases <c> (multi-step, state carried in float64):
  <c>_cfg F32 [13] = N, tau, gamma, schedule (0 const, 1 cosine), gamma_decay_epochs, isogclr,
                     tau_min, tau_max, rho, eta, beta, steps, d
  <c>_s<k>_{za,zb} (B,d) F32 inputs (L2-normalised in float64, rounded to float32; the reference
                     uses exactly these float32 values), <c>_s<k>_idx I64 (B), <c>_s<k>_epoch I64,
  <c>_s<k>_{loss, dza, dzb, u} outputs and the state after the step; iSogCLR: <c>_s<k>_{tau, m}.
Identity cases (gamma = 1): id_<c>_{cfg, za, zb, idx, tau0 (per-sample tau before the step, iso),
  grad_a, grad_b} where grad = tau * grad (1/B) sum_i (DCL^a_i + DCL^b_i) (per-anchor tau_i for
  iSogCLR), computed directly from the DCL formula by autograd; the surrogate gradient is asserted
  equal here, and the C test compares its gradient to it.
"""
import math

import torch

from refutil import save

torch.set_default_dtype(torch.float64)
LARGE_NUM = 1e9
EPS = 1e-8
T = {}


def cfg_vec(N, tau, gamma, schedule=0, E=0, iso=0, tau_min=0.05, tau_max=0.7, rho=0.3, eta=0.01,
            beta=0.9, steps=0, d=0):
    return dict(N=N, tau=tau, gamma=gamma, schedule=schedule, E=E, iso=iso, tau_min=tau_min,
                tau_max=tau_max, rho=rho, eta=eta, beta=beta, steps=steps, d=d)


def cfg_tensor(c):
    keys = ["N", "tau", "gamma", "schedule", "E", "iso", "tau_min", "tau_max", "rho", "eta",
            "beta", "steps", "d"]
    return torch.tensor([float(c[k]) for k in keys], dtype=torch.float32)


def f32(x):
    """Round to float32 (C's storage) and back to float64."""
    return torch.tensor(x, dtype=torch.float32).double().item()


def gamma_for_epoch(c, e):
    if c["schedule"] == 0 or e >= c["E"]:
        return c["gamma"]
    gmin = c["gamma"]
    return (1 - gmin) * 0.5 * (1 + math.cos(math.pi * e / c["E"])) + gmin


def blocks(za, zb):
    """LibAUC v1: logits of view a = [s_ab | s_aa], of view b = [s_ba | s_bb], diag(s_aa/s_bb)
    -1e9; returns (La, Lb, neg_mask) with neg_mask removing the positive (column i)."""
    B = za.shape[0]
    eye = torch.eye(B)
    s_ab, s_ba = za @ zb.T, zb @ za.T
    s_aa, s_bb = za @ za.T - LARGE_NUM * eye, zb @ zb.T - LARGE_NUM * eye
    La = torch.cat([s_ab, s_aa], 1)
    Lb = torch.cat([s_ba, s_bb], 1)
    neg_mask = 1 - torch.cat([eye, torch.zeros(B, B)], 1)
    return La, Lb, neg_mask


def step(c, state, za, zb, idx, gamma):
    """One step on float64 leaves za, zb; mutates state; returns loss and the u^a, u^b used."""
    B = za.shape[0]
    K = 2 * (B - 1)
    La, Lb, neg_mask = blocks(za, zb)
    tau = state["tau"][idx][:, None] if c["iso"] else torch.full((B, 1), c["tau"])
    ea = torch.exp(La.detach() / tau) * neg_mask
    eb = torch.exp(Lb.detach() / tau) * neg_mask
    ga, gb = ea.sum(1) / K, eb.sum(1) / K
    u_old = state["u"][idx]
    ua = torch.where(u_old == 0, ga, (1 - gamma) * u_old + gamma * ga)
    ub = torch.where(u_old == 0, gb, (1 - gamma) * u_old + gamma * gb)
    pa = (ea / ua.clamp(min=EPS)[:, None]).detach()
    pb = (eb / ub.clamp(min=EPS)[:, None]).detach()
    pos = (za * zb).sum(1)
    la = -pos + (pa * La * neg_mask).sum(1) / K
    lb = -pos + (pb * Lb * neg_mask).sum(1) / K
    loss = (la + lb).mean()
    if c["iso"]:
        t = tau[:, 0]
        Ga = torch.log(ua) + c["rho"] - (pa * La.detach() * neg_mask).sum(1) / K / t
        Gb = torch.log(ub) + c["rho"] - (pb * Lb.detach() * neg_mask).sum(1) / K / t
        m = (1 - c["beta"]) * state["m"][idx] + c["beta"] * (Ga + Gb) / 2
        state["m"][idx] = m
        state["tau"][idx] = (state["tau"][idx] - c["eta"] * m).clamp(c["tau_min"], c["tau_max"])
    state["u"][idx] = ((ua + ub) / 2).detach()
    return loss, ua.detach(), ub.detach(), tau[:, 0]


def dcl_total(za, zb, tau):
    """(1/B) sum_i tau_i (DCL^a_i + DCL^b_i) with DCL over the 2B-2 in-batch negatives."""
    La, Lb, neg_mask = blocks(za, zb)
    pos = (za * zb).sum(1)
    t = tau[:, None]
    # the -1e9 self entries underflow to exactly 0 inside exp; the positive is masked out
    da = -pos / tau + torch.log((torch.exp(La / t) * neg_mask).sum(1))
    db = -pos / tau + torch.log((torch.exp(Lb / t) * neg_mask).sum(1))
    return (tau * (da + db)).mean()


def psi(za, zb, ua, ub, tau):
    """Psi = (1/B) sum_i [-2 s_pos + tau_i (g^a_i/u^a_i + g^b_i/u^b_i)], u frozen."""
    B = za.shape[0]
    La, Lb, neg_mask = blocks(za, zb)
    t = tau[:, None]
    ga = (torch.exp(La / t) * neg_mask).sum(1) / (2 * (B - 1))
    gb = (torch.exp(Lb / t) * neg_mask).sum(1) / (2 * (B - 1))
    pos = (za * zb).sum(1)
    return (-2 * pos + tau * (ga / ua.clamp(min=EPS) + gb / ub.clamp(min=EPS))).mean()


def features(gen, base, idx, noise):
    """Two views around a per-sample base direction, L2-normalised, rounded to float32."""
    B, d = idx.shape[0], base.shape[1]
    out = []
    for _ in range(2):
        z = base[idx] + noise * torch.randn(B, d, generator=gen)
        out.append(torch.nn.functional.normalize(z, dim=1).float())
    return out


def grad_close(a, b, what):
    err = (a - b).abs().max().item()
    scale = b.abs().max().item()
    assert err <= 1e-10 * max(scale, 1e-300), f"{what}: {err} vs scale {scale}"


def sequence(name, c, batches, epochs, seed, noise=0.7, shared=0.0):
    """shared > 0 pulls every sample towards one direction (negatives with s close to 1)."""
    gen = torch.Generator().manual_seed(seed)
    N, d = c["N"], c["d"]
    base = torch.randn(N, d, generator=gen) + shared * torch.ones(d) / math.sqrt(d)
    c = dict(c, steps=len(batches), tau=f32(c["tau"]), gamma=f32(c["gamma"]))
    for k in ("tau_min", "tau_max", "rho", "eta", "beta"):
        c[k] = f32(c[k])
    state = {"u": torch.zeros(N), "tau": torch.full((N,), c["tau"]), "m": torch.zeros(N)}
    T[f"{name}_cfg"] = cfg_tensor(c)
    for k, (idx, e) in enumerate(zip(batches, epochs)):
        idx = torch.tensor(idx, dtype=torch.int64)
        za32, zb32 = features(gen, base, idx, noise)
        za = za32.double().requires_grad_(True)
        zb = zb32.double().requires_grad_(True)
        gamma = f32(gamma_for_epoch(c, e))
        u_before = state["u"].clone()
        loss, ua, ub, tau = step(c, state, za, zb, idx, gamma)
        loss.backward()
        # any gamma: surrogate gradient = grad of Psi with u frozen (spec 2(a) identities)
        za2 = za32.double().requires_grad_(True)
        zb2 = zb32.double().requires_grad_(True)
        psi(za2, zb2, ua, ub, tau).backward()
        grad_close(za.grad, za2.grad, f"{name} step {k} psi a")
        grad_close(zb.grad, zb2.grad, f"{name} step {k} psi b")
        seen = (u_before[idx] != 0).sum().item()
        print(f"{name} step {k}: B={len(idx)} epoch={e} gamma={gamma:.4f} seen={seen} "
              f"loss={loss.item():.6f} u[max]={state['u'].max().item():.4g}"
              + (f" tau in [{state['tau'].min().item():.4f}, {state['tau'].max().item():.4f}]"
                 if c["iso"] else ""))
        p = f"{name}_s{k}_"
        T[p + "za"], T[p + "zb"] = za32, zb32
        T[p + "idx"] = idx
        T[p + "epoch"] = torch.tensor([e], dtype=torch.int64)
        T[p + "loss"] = loss.detach().reshape(1)
        T[p + "dza"], T[p + "dzb"] = za.grad, zb.grad
        T[p + "u"] = state["u"].clone()
        if c["iso"]:
            T[p + "tau"] = state["tau"].clone()
            T[p + "m"] = state["m"].clone()


def identity(name, c, B, seed):
    """gamma = 1: surrogate gradient == tau * grad (1/B) sum (DCL^a + DCL^b)."""
    gen = torch.Generator().manual_seed(seed)
    N, d = c["N"], c["d"]
    c = dict(c, steps=1, gamma=1.0, tau=f32(c["tau"]))
    base = torch.randn(N, d, generator=gen)
    idx = torch.randperm(N, generator=gen)[:B]
    za32, zb32 = features(gen, base, idx, 0.6)
    tau0 = torch.full((N,), c["tau"])
    if c["iso"]:
        lo, hi = c["tau_min"], c["tau_max"]
        tau0 = (lo + (hi - lo) * torch.rand(N, generator=gen)).float().double()
    # a seen state (u0 > 0, rounded to float32): gamma = 1 must ignore it
    u0 = (torch.rand(N, generator=gen) * 5).float().double()
    state = {"u": u0.clone(), "tau": tau0.clone(), "m": torch.zeros(N)}
    za = za32.double().requires_grad_(True)
    zb = zb32.double().requires_grad_(True)
    loss, _, _, tau = step(c, state, za, zb, idx, 1.0)
    loss.backward()
    za2 = za32.double().requires_grad_(True)
    zb2 = zb32.double().requires_grad_(True)
    dcl_total(za2, zb2, tau).backward()
    grad_close(za.grad, za2.grad, f"identity {name} a")
    grad_close(zb.grad, zb2.grad, f"identity {name} b")
    if c["iso"]:
        # G at gamma = 1 is d/dtau_i of tau_i (log g_i(tau_i) + rho), averaged over the views
        # (checked on the pre-update tau; state["m"] = beta * G since m started at 0)
        t = tau.clone().requires_grad_(True)
        La, Lb, neg_mask = blocks(za32.double(), zb32.double())
        K = 2 * (B - 1)
        ga = (torch.exp(La / t[:, None]) * neg_mask).sum(1) / K
        gb = (torch.exp(Lb / t[:, None]) * neg_mask).sum(1) / K
        obj = (t * (torch.log(ga) + c["rho"]) + t * (torch.log(gb) + c["rho"])).sum() / 2
        obj.backward()
        G = state["m"][idx] / c["beta"]
        grad_close(G, t.grad, f"identity {name} RGCL tau gradient")
    p = f"id_{name}_"
    T[p + "cfg"] = cfg_tensor(c)
    T[p + "za"], T[p + "zb"], T[p + "idx"] = za32, zb32, idx
    T[p + "u0"] = u0
    T[p + "tau0"] = tau0
    T[p + "grad_a"], T[p + "grad_b"] = za2.grad, zb2.grad
    print(f"identity {name}: ok (B={B}, max |grad| {za2.grad.abs().max().item():.4g})")


# 1. constant gamma, B = 6, d = 12: unseen -> seen, overlapping and repeated indices
sequence("const", cfg_vec(30, 0.2, 0.9, d=12),
         [[0, 1, 2, 3, 4, 5], [3, 4, 6, 7, 8, 9], [0, 9, 10, 11, 2, 29], [5, 6, 7, 12, 13, 0],
          [29, 28, 1, 3, 14, 15], [0, 1, 2, 3, 4, 5]], [0, 0, 0, 1, 1, 2], seed=11)
# 2. cosine gamma 1 -> 0.3 over 3 epochs, odd B = 5, d = 9; epoch changes mid-sequence
sequence("cos", cfg_vec(24, 0.1, 0.3, schedule=1, E=3, d=9),
         [[0, 1, 2, 3, 4], [5, 6, 7, 1, 2], [0, 8, 23, 6, 3], [9, 10, 11, 0, 5], [1, 2, 3, 4, 5],
          [23, 22, 0, 9, 12]], [0, 0, 1, 1, 2, 4], seed=12)
# 3. iSogCLR, batch size changing every step (workspace growth), eta 0.05 so the clip engages
sequence("iso", cfg_vec(20, 0.1, 0.8, iso=1, eta=0.05, d=16),
         [[0, 1, 2, 3], [4, 5, 0, 1, 6, 7, 8], [2, 3, 9, 10, 11], [0, 1, 2, 3, 4, 5, 19],
          [12, 13, 0, 19, 7, 6], [0, 1, 2, 3]], [0] * 6, seed=13)
# 4. iSogCLR with cosine gamma, defaults otherwise, B = 8, d = 8
sequence("isocos", cfg_vec(40, 0.3, 0.5, schedule=1, E=2, iso=1, d=8),
         [list(range(0, 8)), list(range(4, 12)), [0, 2, 4, 6, 8, 10, 12, 39],
          list(range(32, 40)), [1, 3, 5, 7, 9, 11, 13, 15], list(range(0, 8))],
         [0, 0, 1, 1, 3, 3], seed=14)
# 5. tau at the float32 floor 0.0125 with every sample near one direction: negatives at
#    s ~ 0.95..0.99, exp(s/tau) ~ e^76..e^79 (u ~ 1e33, close to float32's range)
sequence("smalltau", cfg_vec(16, 0.0125, 0.9, d=8),
         [[0, 1, 2, 3], [2, 3, 4, 5], [0, 1, 4, 5], [6, 7, 0, 2]], [0, 0, 1, 1], seed=15,
         noise=0.05, shared=12.0)
# 6. one larger batch: 2B = 74 rows spans two 64-row tiles of the C fast path
sequence("big", cfg_vec(64, 0.15, 0.9, d=20), [list(range(5, 42))], [0], seed=16)

identity("sog", cfg_vec(30, 0.2, 1.0, d=12), B=7, seed=21)
identity("iso", cfg_vec(30, 0.2, 1.0, iso=1, d=10), B=6, seed=22)

save("sogclr_uni", T, metadata={"generator": "tests/ref/gen_sogclr_uni.py",
                                "torch": torch.__version__})
