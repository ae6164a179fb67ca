"""Reference for tests/test_optim.c: torch.optim.AdamW / SGD, the moco-v3 (SogCLR) LARS and
clip_grad_norm_ over 5 steps on a small parameter table, plus open_clip's cosine_lr values.
Run: /usr/bin/python3 tests/ref/gen_optim.py

Stored (every "flat" vector is the trainable params concatenated in registration order, the
buffer excluded):
  init                      F32 [N]   parameters before the first step
  grad.<k>                  F32 [N]   gradients fed at step k (k = 0..4)
  <opt>.lr                  F32 [5]   learning rate of each step (float32-exact values)
  <opt>.lr_tau              F32 [5]   the logit_scale group's learning rate (the *_tau cases)
  <opt>.norm                F32 [5]   pre-clipping global grad norm of each step
  <opt>.<k>                 F32 [N]   parameters after step k
  adamw.exp_avg, adamw.exp_avg_sq, sgd.momentum_buffer, lars.mu   F32 [N]  final optimizer state
  cosine.args               F32 [C,5] (base_lr, lr_min, warmup, total, step)
  cosine.lr                 F32 [C]   open_clip cosine_lr (with the lr_min floor) in double
"""
import math

import numpy as np
import torch

from refutil import save

STEPS = 5

# name, shape, decay (SG_PARAM_DECAY), buffer, init kind
PARAMS = [
    ("conv.weight", (8, 3, 3, 3), True, False, "normal"),
    ("fc1.weight", (37, 23), True, False, "normal"),
    ("fc1.bias", (37,), False, False, "normal"),
    ("fc2.weight", (32, 32), True, False, "normal"),
    ("ln.weight", (32,), False, False, "one"),
    ("bn.running_mean", (32,), False, True, "normal"),
    ("zero.weight", (5, 7), True, False, "zero"),    # ||p|| = 0: LARS ratio 1 at step 0
    ("frozen.weight", (6, 4), True, False, "normal"),  # grads always 0: decay only
    ("logit_scale", (), False, False, "logit"),
]
GRAD_SCALE = [1.0, 0.05, 1.0, 0.02, 1.0]  # steps 1 and 3 stay under the clip norm

# name, kind, base lr, warmup, extra hyperparameters (as in tests/test_optim.c)
OPTS = [
    ("adamw", "adamw", 1e-2, 2, dict(wd=0.1, betas=(0.9, 0.999), eps=1e-8, clip=0.0)),
    ("sgd", "sgd", 0.1, 2, dict(wd=0.01, momentum=0.9, nesterov=False)),
    ("sgd_nesterov", "sgd", 0.1, 0, dict(wd=0.01, momentum=0.9, nesterov=True)),
    ("lars", "lars", 1.2, 2, dict(wd=0.05, momentum=0.9, trust=0.001)),
    ("adamw_clip", "adamw", 5e-3, 1, dict(wd=0.2, betas=(0.9, 0.98), eps=1e-6, clip=5.0)),
    # FastCLIP's third param group {logit_scale: wd 0, lr = lr_tau}, lr_tau given per step
    ("adamw_tau", "adamw", 1e-2, 2, dict(wd=0.1, betas=(0.9, 0.98), eps=1e-6, clip=5.0,
                                         lr_tau=[3e-3, 1e-3, 1e-3 / 3, 0.0, 2e-3])),
    ("sgd_tau", "sgd", 0.1, 2, dict(wd=0.01, momentum=0.9, nesterov=False,
                                    lr_tau=[0.05, 0.02, 0.0, 0.01, 0.03])),
]


class LARS(torch.optim.Optimizer):
    """LARS as in moco-v3 / SogCLR sogclr/optimizer.py: no rate scaling or weight decay for
    parameters <= 1D."""

    def __init__(self, params, lr=0, weight_decay=0, momentum=0.9, trust_coefficient=0.001):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        trust_coefficient=trust_coefficient)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g['params']:
                dp = p.grad

                if dp is None:
                    continue

                if p.ndim > 1:  # if not normalization gamma/beta or bias
                    dp = dp.add(p, alpha=g['weight_decay'])
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0.,
                                    torch.where(update_norm > 0,
                                                (g['trust_coefficient'] * param_norm / update_norm),
                                                one),
                                    one)
                    dp = dp.mul(q)

                param_state = self.state[p]
                if 'mu' not in param_state:
                    param_state['mu'] = torch.zeros_like(p)
                mu = param_state['mu']
                mu.mul_(g['momentum']).add_(dp)
                p.add_(mu, alpha=-g['lr'])


def cosine_lr(base_lr, lr_min, warmup, total, step):
    """open_clip cosine_lr (+ FastCLIP's lr_min floor), in double."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    e, es = step - warmup, total - warmup
    return lr_min + 0.5 * (1 + np.cos(np.pi * e / es)) * (base_lr - lr_min)


def f32(x):
    return float(np.float32(x))


def make_params():
    g = torch.Generator().manual_seed(0)
    ps = []
    for name, shape, decay, buffer, init in PARAMS:
        if init == "normal":
            t = torch.randn(shape, generator=g) * 0.5
        elif init == "one":
            t = torch.ones(shape) + 0.1 * torch.randn(shape, generator=g)
        elif init == "zero":
            t = torch.zeros(shape)
        else:
            t = torch.ones(shape) * math.log(1 / 0.07)
        ps.append(torch.nn.Parameter(t, requires_grad=not buffer))
    return ps


def make_grads():
    g = torch.Generator().manual_seed(1)
    steps = []
    for k in range(STEPS):
        gr = []
        for name, shape, _, _, _ in PARAMS:
            t = (torch.rand(shape, generator=g) * 2 - 1) * GRAD_SCALE[k]
            gr.append(torch.zeros(shape) if name == "frozen.weight" else t)
        steps.append(gr)
    return steps


def flat(ts):
    return torch.cat([t.detach().reshape(-1) for t, p in zip(ts, PARAMS) if not p[3]])


def make_optimizer(kind, hp, ps):
    """Param groups {decay: wd}, {no decay: 0}, and with lr_tau FastCLIP's third group
    {logit_scale: wd 0} (its lr set per step)."""
    tau = "lr_tau" in hp
    train = [(p, d, n) for p, (n, _, d, b, _) in zip(ps, PARAMS) if not b]
    dec = [p for p, d, _ in train if d]
    nodec = [p for p, d, n in train if not d and not (tau and n == "logit_scale")]
    groups = [{"params": dec, "weight_decay": hp["wd"]}, {"params": nodec, "weight_decay": 0.0}]
    if tau:
        groups.append({"params": [p for p, _, n in train if n == "logit_scale"],
                       "weight_decay": 0.0})
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=0.0, betas=hp["betas"], eps=hp["eps"],
                                 foreach=False)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=0.0, momentum=hp["momentum"],
                               nesterov=hp["nesterov"], foreach=False)
    return LARS([p for p, _, _ in train], lr=0.0, weight_decay=hp["wd"], momentum=hp["momentum"],
                trust_coefficient=hp["trust"])


def run(name, kind, base_lr, warmup, hp, grads, out):
    ps = make_params()
    trainable = [p for p, q in zip(ps, PARAMS) if not q[3]]
    opt = make_optimizer(kind, hp, ps)
    lrs, lrs_tau, norms = [], [], []
    for k in range(STEPS):
        lr = f32(cosine_lr(base_lr, 0.0, warmup, STEPS, k))
        lr_tau = f32(hp["lr_tau"][k]) if "lr_tau" in hp else lr
        for p, gr in zip(ps, grads[k]):
            p.grad = gr.clone() if p.requires_grad else None
        if hp.get("clip", 0.0) > 0:
            norm = torch.nn.utils.clip_grad_norm_(trainable, hp["clip"])
        else:
            norm = torch.norm(torch.stack([torch.norm(p.grad) for p in trainable]))
        for gi, gr in enumerate(opt.param_groups):
            gr["lr"] = lr_tau if gi == 2 else lr
        opt.step()
        lrs.append(lr)
        lrs_tau.append(lr_tau)
        norms.append(norm.item())
        out[f"{name}.{k}"] = flat(ps)
    out[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float32)
    if "lr_tau" in hp:
        out[f"{name}.lr_tau"] = torch.tensor(lrs_tau, dtype=torch.float32)
    out[f"{name}.norm"] = torch.tensor(norms, dtype=torch.float32)
    return opt, ps


def state(opt, ps, key):
    return flat([opt.state[p][key] if key in opt.state[p] else torch.zeros_like(p)
                 for p in ps])


def main():
    out = {"init": flat(make_params())}
    grads = make_grads()
    for k in range(STEPS):
        out[f"grad.{k}"] = flat(grads[k])
    for name, kind, base_lr, warmup, hp in OPTS:
        opt, ps = run(name, kind, base_lr, warmup, hp, grads, out)
        if name == "adamw":
            out["adamw.exp_avg"] = state(opt, ps, "exp_avg")
            out["adamw.exp_avg_sq"] = state(opt, ps, "exp_avg_sq")
        elif name == "sgd":
            out["sgd.momentum_buffer"] = state(opt, ps, "momentum_buffer")
        elif name == "lars":
            out["lars.mu"] = state(opt, ps, "mu")
    args = [(5e-4, 0.0, 10, 100, s) for s in (0, 4, 9, 10, 11, 37, 55, 99)]
    args += [(1.2, 1e-5, 0, 800, s) for s in (0, 1, 400, 799)]
    args += [(0.3, 0.01, 3, 7, s) for s in range(7)]
    out["cosine.args"] = torch.tensor(args, dtype=torch.float32)
    out["cosine.lr"] = torch.tensor([cosine_lr(*[f32(x) for x in a]) for a in args],
                                    dtype=torch.float32)
    save("optim", out, {"generator": "tests/ref/gen_optim.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
