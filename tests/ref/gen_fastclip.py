"""Reference for tests/test_fastclip.c: FastCLIP-v3 (RGCL-g, global learnable temperature),
written from the spec (docs/ALGORITHMS.md 2(c), first section item 4) in float64 torch with
autograd. Run: cd tests/ref && /usr/bin/python3 gen_fastclip.py -> data/fastclip.safetensors.

Objective (normalisation of losses/fastclip.h: half of the README's RGCL-g):
  F(w, tau) = (tau/(2n)) sum_i [log g^I_i + log g^T_i] + rho tau.
The moving averages U are gen_sogclr.bimodal_step at this step's tau (global). The gradients are
AUTOGRAD of the frozen-U surrogate
  Phi(w, tau) = (1/(2B)) sum_i [tau log sg(U^I_i) + sg(tau) ghat^I_i(w, tau) / sg(U^I_i)
                + (same for T)] + rho tau,
  ghat_i(w, tau) = mean_{j!=i} exp(D_ij / tau):
dPhi/dw is asserted equal to the feature gradient of bimodal_step, dPhi/dtau (stored as dtau) is
asserted equal to the closed form rho + mean(log U^I + log U^T)/2 - mean(pa^I + pa^T)/2, and at
gamma = 1 steps (U = ghat) it is asserted equal to d/dtau of the mini-batch objective itself,
(tau/(2B)) sum_i [log ghat^I_i(tau) + log ghat^T_i(tau)] + rho tau.
dlog_scale = dF/dp with p = -log(tau) is autograd through tau = exp(-p).

The caller's temperature changes between steps (taus list). Tensors: cfg = [gamma, schedule,
decay_epochs, N, K, d, rho], B (K) I64, epoch (K) I64, tau (K); per step k: <k>_zi, _zt, _idx,
_loss, _obj, _dzi, _dzt, _dtau, _dlogp (1), state after the step _u_img, _u_txt, _b_img, _b_txt.
"""
import math

import torch

from gen_sogclr import batches, bimodal_step, f32, features, gamma_at, new_state, store_state
from refutil import save

torch.set_default_dtype(torch.float64)


def ghat(D, tau):
    B = D.shape[0]
    off = ~torch.eye(B, dtype=torch.bool)
    return (torch.exp(D / tau) * off).sum(1) / (B - 1)


def phi_grads(zi32, zt32, tau, UI, UT, rho):
    zi = zi32.double().clone().requires_grad_(True)
    zt = zt32.double().clone().requires_grad_(True)
    p = torch.tensor(-math.log(tau), requires_grad=True)  # p = log(logit_scale)
    t = torch.exp(-p)
    t.retain_grad()
    S = zi @ zt.t()
    B = S.shape[0]
    dg = S.diagonal()
    DI, DT = S - dg[:, None], S.t() - dg[:, None]
    phi = (t * torch.log(UI) + t.detach() * ghat(DI, t) / UI
           + t * torch.log(UT) + t.detach() * ghat(DT, t) / UT).sum() / (2 * B) + rho * t
    phi.backward()
    return zi.grad, zt.grad, t.grad.item(), p.grad.item()


def true_dtau(zi32, zt32, tau, rho):
    S = zi32.double() @ zt32.double().t()
    B = S.shape[0]
    dg = S.diagonal()
    t = torch.tensor(tau, requires_grad=True)
    F = t * (torch.log(ghat(S - dg[:, None], t)) + torch.log(ghat(S.t() - dg[:, None], t))).sum()
    F = F / (2 * B) + rho * t
    F.backward()
    return t.grad.item()


def main():
    N, d, Bs, epochs = 26, 13, [7, 8, 5, 8, 6, 7], [0, 0, 1, 2, 2, 3]
    gamma, schedule, decay, rho = 0.2, 1, 2, 6.5
    taus = [0.07, 0.066, 0.06, 0.05, 0.055, 0.04]
    rho = f32(torch.tensor(rho)).item()
    taus = [f32(torch.tensor(v)).item() for v in taus]
    t = {"cfg": torch.tensor([gamma, schedule, decay, N, len(Bs), d, rho]).float(),
         "B": torch.tensor(Bs, dtype=torch.int64), "epoch": torch.tensor(epochs, dtype=torch.int64),
         "tau": torch.tensor(taus).float()}
    gen = torch.Generator().manual_seed(31)
    st = new_state(N)
    for k, (B, idx) in enumerate(zip(Bs, batches(N, Bs, gen))):
        zi, zt = features(B, d, gen)
        g = f32(torch.tensor(gamma_at(schedule, gamma, decay, epochs[k]))).item()
        tau = taus[k]
        tv = torch.full((B,), tau)
        o = bimodal_step(zi, zt, idx, st, tv, tv, g)
        gi, gt, dtau, dlogp = phi_grads(zi, zt, tau, o["U_img"], o["U_txt"], rho)
        assert torch.allclose(gi, o["dzi"], rtol=1e-9, atol=1e-14)
        assert torch.allclose(gt, o["dzt"], rtol=1e-9, atol=1e-14)
        closed = rho + (o["logU_img"] + o["logU_txt"]).mean() / 2 \
            - (o["pa_img"] + o["pa_txt"]).mean() / 2
        assert abs(closed.item() - dtau) <= 1e-9 * max(1.0, abs(dtau)), (closed, dtau)
        assert abs(dlogp + tau * dtau) <= 1e-9 * max(1.0, abs(dlogp))
        if g == 1.0:
            tr = true_dtau(zi, zt, tau, rho)
            assert abs(tr - dtau) <= 1e-9 * max(1.0, abs(tr)), (tr, dtau)
        obj = tau * (o["logU_img"] + o["logU_txt"]).mean() / 2 + rho * tau
        key = str(k)
        t[f"{key}_zi"], t[f"{key}_zt"], t[f"{key}_idx"] = zi, zt, idx
        t[f"{key}_loss"], t[f"{key}_obj"] = o["loss"].reshape(1), obj.reshape(1)
        t[f"{key}_dzi"], t[f"{key}_dzt"] = o["dzi"], o["dzt"]
        t[f"{key}_dtau"], t[f"{key}_dlogp"] = torch.tensor([dtau]), torch.tensor([dlogp])
        store_state(t, key, st)
        print(f"step {k}: gamma {g:.3f} tau {tau:.4f} dtau {dtau:.6f} dlogp {dlogp:.6f}")
    save("fastclip", t)


if __name__ == "__main__":
    main()
