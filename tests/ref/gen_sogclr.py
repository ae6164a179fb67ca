"""Reference for tests/test_sogclr.c: two-way (bimodal) SogCLR written from the spec
(docs/ALGORITHMS.md 2(b) with the project's semantics, first section items 1 and 3), in float64
torch with autograd. Run: cd tests/ref && /usr/bin/python3 gen_sogclr.py -> data/sogclr.safetensors

Semantics implemented here (not a port of the C code):
  S = zi zt^T;  D^I_ij = S_ij - S_ii;  D^T_ij = S_ji - S_ii;  negatives j != i.
  A = D / tau (row-wise tau);  b_new = max(b_old, max_j A_ij) (j = i included);
  ghat_i = mean_{j!=i} exp(D_ij / tau);  unshifted U = (1-gamma) U_old + gamma ghat, with a
  never-written sample (stored u == 0) taking U = ghat; state stored b-shifted u = U exp(-b_new),
  clamped at 1e-20, as float32 (the C state's storage type; the reference rounds it too).
  p_ij = exp(D_ij/tau) / U_i (detached); the surrogate
    L = (1/(2B(B-1))) sum_i sum_{j!=i} [p^I_ij D^I_ij + p^T_ij D^T_ij]
  is back-propagated (autograd) for dzi, dzt. Reported: loss = L, objective =
  (1/(2B)) sum_i [tau^I_i log U^I_i + tau^T_i log U^T_i].
Checks asserted here: U from the shifted recursion equals the unshifted one; the gradient equals
autograd of (1/(2B)) sum_i tau_i [ghat^I_i(x)/U^I_i + ghat^T_i(x)/U^T_i] with U frozen; at
gamma = 1 it equals tau * grad L_2way (the mini-batch two-way decoupled loss).

Scenarios (tensor name prefix <s>): const (gamma 0.6 constant, tau 0.1), cos (cosine gamma
1 -> 0.2 over 3 epochs with epoch changes mid-sequence, tau 0.07), small (tau 0.02, gamma 0.9:
exp(D/tau) up to e^100, exercises the b shift). Per scenario: <s>_cfg = [tau, gamma, schedule
(0 const, 1 cosine), decay_epochs, N, K, d], <s>_B (K) I64, <s>_epoch (K) I64; per step k:
<s>_<k>_zi, _zt (B, d), _idx (B) I64, _loss, _obj (1), _dzi, _dzt (B, d), state after the step
_u_img, _u_txt, _b_img, _b_txt (N). Identity case id_*: gamma = 1, tau 0.1: id_zi, id_zt, id_idx,
id_tau, id_dzi, id_dzt = tau * grad L_2way.
"""
import math

import torch
import torch.nn.functional as F

from refutil import save

torch.set_default_dtype(torch.float64)


def gamma_at(schedule, gamma, decay, epoch):
    if schedule == 0 or epoch >= decay:
        return gamma
    return (1.0 - gamma) * 0.5 * (1.0 + math.cos(math.pi * epoch / decay)) + gamma


def f32(x):
    """Round to float32 and back (state storage, C inputs)."""
    return x.float().double()


def one_side(D, tau, u_old, b_old, gamma):
    """One direction. D (B,B) with grad; tau (B,); u_old, b_old (B,) stored values.
    Returns p (detached, zero diagonal), u_new, b_new, U (unshifted), ghat."""
    B = D.shape[0]
    off = ~torch.eye(B, dtype=torch.bool)
    A = D.detach() / tau[:, None]
    b_new = torch.maximum(b_old, A.max(dim=1).values)
    E = torch.exp(A - b_new[:, None]) * off
    g_shift = E.sum(1) / (B - 1)
    fresh = u_old == 0
    u_new = torch.where(fresh, g_shift,
                        (1 - gamma) * u_old * torch.exp(b_old - b_new) + gamma * g_shift)
    u_new = u_new.clamp_min(1e-20)
    p = E / u_new[:, None]
    # unshifted recursion, for the record
    ghat = (torch.exp(A) * off).sum(1) / (B - 1)
    U_old = u_old * torch.exp(b_old)
    U = torch.where(fresh, ghat, (1 - gamma) * U_old + gamma * ghat)
    assert torch.allclose(U, u_new * torch.exp(b_new), rtol=1e-10, atol=0), "shift mismatch"
    return p, u_new, b_new, u_new * torch.exp(b_new)


def bimodal_step(zi32, zt32, idx, st, tau_i, tau_t, gamma):
    """One step of the bimodal GCL engine. st: dict of float64 (N,) tensors u_img, u_txt,
    b_img, b_txt (updated in place, rounded to float32). tau_i, tau_t: (B,) per-anchor tau.
    Returns dict with dzi, dzt, loss, obj, logU_img, logU_txt, pa_img, pa_txt, U_img, U_txt."""
    zi = zi32.double().clone().requires_grad_(True)
    zt = zt32.double().clone().requires_grad_(True)
    B = zi.shape[0]
    S = zi @ zt.t()
    dg = S.diagonal()
    DI = S - dg[:, None]
    DT = S.t() - dg[:, None]
    pI, uI, bI, UI = one_side(DI, tau_i, st["u_img"][idx], st["b_img"][idx], gamma)
    pT, uT, bT, UT = one_side(DT, tau_t, st["u_txt"][idx], st["b_txt"][idx], gamma)
    L = ((pI * DI).sum() + (pT * DT).sum()) / (2 * B * (B - 1))
    L.backward()
    out = {"dzi": zi.grad.clone(), "dzt": zt.grad.clone(), "loss": L.detach()}
    out["logU_img"], out["logU_txt"] = torch.log(UI), torch.log(UT)
    out["obj"] = (tau_i * out["logU_img"] + tau_t * out["logU_txt"]).sum() / (2 * B)
    out["pa_img"] = (pI * DI.detach() / tau_i[:, None]).sum(1) / (B - 1)
    out["pa_txt"] = (pT * DT.detach() / tau_t[:, None]).sum(1) / (B - 1)
    out["U_img"], out["U_txt"] = UI, UT
    # check: gradient of (1/(2B)) sum_i tau_i [ghat_i(x)/U_i] (both sides), U frozen
    xi = zi32.double().clone().requires_grad_(True)
    xt = zt32.double().clone().requires_grad_(True)
    S2 = xi @ xt.t()
    d2 = S2.diagonal()
    off = ~torch.eye(B, dtype=torch.bool)
    gI = (torch.exp((S2 - d2[:, None]) / tau_i[:, None]) * off).sum(1) / (B - 1)
    gT = (torch.exp((S2.t() - d2[:, None]) / tau_t[:, None]) * off).sum(1) / (B - 1)
    Psi = (tau_i * gI / UI + tau_t * gT / UT).sum() / (2 * B)
    Psi.backward()
    assert torch.allclose(xi.grad, out["dzi"], rtol=1e-9, atol=1e-14), "GCL estimator (img)"
    assert torch.allclose(xt.grad, out["dzt"], rtol=1e-9, atol=1e-14), "GCL estimator (txt)"
    for k, v in (("u_img", uI), ("u_txt", uT), ("b_img", bI), ("b_txt", bT)):
        st[k][idx] = f32(v)
    return out


def l2way(zi32, zt32, tau):
    """tau * grad of L_2way (the mini-batch two-way decoupled loss)."""
    zi = zi32.double().clone().requires_grad_(True)
    zt = zt32.double().clone().requires_grad_(True)
    B = zi.shape[0]
    S = zi @ zt.t() / tau
    off = ~torch.eye(B, dtype=torch.bool)
    neg = torch.full((B, B), -math.inf)
    li = -S.diagonal() + torch.logsumexp(torch.where(off, S, neg), dim=1)
    lt = -S.diagonal() + torch.logsumexp(torch.where(off, S.t(), neg), dim=1)
    L = 0.5 * (li.mean() + lt.mean())
    L.backward()
    return tau * zi.grad, tau * zt.grad


def features(B, d, gen, noise=0.6):
    zi = F.normalize(torch.randn(B, d, generator=gen), dim=1)
    zt = F.normalize(zi + noise * torch.randn(B, d, generator=gen), dim=1)
    return zi.float(), zt.float()


def batches(N, Bs, gen):
    """Index batches with overlaps and unseen -> seen transitions: each step takes about half
    of its ids from those already seen and the rest from unseen ones (when available)."""
    seen, out = [], []
    for B in Bs:
        perm_seen = [seen[i] for i in torch.randperm(len(seen), generator=gen).tolist()]
        unseen = [i for i in torch.randperm(N, generator=gen).tolist() if i not in seen]
        take = min(len(perm_seen), max(B // 2, B - len(unseen)))
        ids = perm_seen[:take] + unseen[:B - take]
        ids = [ids[i] for i in torch.randperm(len(ids), generator=gen).tolist()]
        out.append(torch.tensor(ids, dtype=torch.int64))
        seen += [i for i in ids if i not in seen]
    return out


def new_state(N):
    return {k: torch.zeros(N) for k in ("u_img", "u_txt", "b_img", "b_txt")}


def store_state(t, key, st):
    for k, v in st.items():
        t[f"{key}_{k}"] = v.clone()


def scenario(t, name, tau, gamma, schedule, decay, N, d, Bs, epochs, seed):
    gen = torch.Generator().manual_seed(seed)
    K = len(Bs)
    t[f"{name}_cfg"] = torch.tensor([tau, gamma, schedule, decay, N, K, d]).float()
    t[f"{name}_B"] = torch.tensor(Bs, dtype=torch.int64)
    t[f"{name}_epoch"] = torch.tensor(epochs, dtype=torch.int64)
    st = new_state(N)
    for k, (B, idx) in enumerate(zip(Bs, batches(N, Bs, gen))):
        zi, zt = features(B, d, gen)
        g = f32(torch.tensor(gamma_at(schedule, gamma, decay, epochs[k]))).item()
        tv = torch.full((B,), f32(torch.tensor(tau)).item())
        o = bimodal_step(zi, zt, idx, st, tv, tv, g)
        key = f"{name}_{k}"
        t[f"{key}_zi"], t[f"{key}_zt"], t[f"{key}_idx"] = zi, zt, idx
        t[f"{key}_loss"], t[f"{key}_obj"] = o["loss"].reshape(1), o["obj"].reshape(1)
        t[f"{key}_dzi"], t[f"{key}_dzt"] = o["dzi"], o["dzt"]
        store_state(t, key, st)
        if g == 1.0:  # the identity holds at every gamma = 1 step
            gi, gt = l2way(zi, zt, tv[0].item())
            assert torch.allclose(gi, o["dzi"], rtol=1e-9, atol=1e-14)
            assert torch.allclose(gt, o["dzt"], rtol=1e-9, atol=1e-14)


def main():
    t = {}
    scenario(t, "const", 0.1, 0.6, 0, 0, 30, 12, [6, 8, 5, 8, 7, 6], [0, 0, 1, 1, 2, 2], 11)
    scenario(t, "cos", 0.07, 0.2, 1, 3, 24, 13, [7, 5, 8, 6, 8, 5], [0, 0, 1, 2, 2, 4], 12)
    scenario(t, "small", 0.02, 0.9, 0, 0, 20, 16, [8, 6, 8, 7, 5], [0, 0, 0, 1, 1], 13)
    # gamma = 1 identity: grad = tau * grad L_2way (independent of the state)
    gen = torch.Generator().manual_seed(14)
    zi, zt = features(7, 11, gen)
    tau = f32(torch.tensor(0.1)).item()
    gi, gt = l2way(zi, zt, tau)
    st = new_state(10)
    st["u_img"][:] = 0.5  # seen samples: gamma = 1 must ignore the old state
    st["u_txt"][:] = 2.0
    tv = torch.full((7,), tau)
    o = bimodal_step(zi, zt, torch.arange(7), st, tv, tv, 1.0)
    assert torch.allclose(gi, o["dzi"], rtol=1e-9, atol=1e-14)
    assert torch.allclose(gt, o["dzt"], rtol=1e-9, atol=1e-14)
    t["id_zi"], t["id_zt"], t["id_idx"] = zi, zt, torch.arange(7)
    t["id_tau"] = torch.tensor([tau])
    t["id_dzi"], t["id_dzt"] = gi, gt
    save("sogclr", t)


if __name__ == "__main__":
    main()
