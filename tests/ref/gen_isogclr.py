"""Reference for tests/test_isogclr.c: bimodal iSogCLR (per-sample learnable temperatures),
written from the spec (docs/ALGORITHMS.md 2(b) "individual_learnable", with the project's
semantics) in float64 torch with autograd. Run: cd tests/ref && /usr/bin/python3 gen_isogclr.py
-> data/isogclr.safetensors. The two-way GCL step itself (u, b, p, surrogate, feature gradient)
is gen_sogclr.bimodal_step with per-anchor temperatures tau^I_i = tau_img[idx_i],
tau^T_i = tau_txt[idx_i] (pre-update values).

Temperature gradient per anchor: G_i = d/dtau_i of the frozen-U surrogate
  tau_i (log sg(U_i) + rho) + sg(tau_i) ghat_i(tau_i) / sg(U_i)
computed by AUTOGRAD (ghat_i(t) = mean_{j!=i} exp(D_ij / t)); it is asserted equal to the closed
form log U_i + rho - (1/(B-1)) sum_{j!=i} p_ij D_ij / tau_i. Then m <- (1-beta) m + beta G,
tau <- clip(tau - eta m, tau_min, tau_max); states stored as float32.
Reported objective: (1/(2B)) sum_i [tau^I_i (log U^I_i + rho) + tau^T_i (log U^T_i + rho)].

Tensors: cfg = [tau_init, gamma, schedule, decay_epochs, N, K, d, rho, eta, beta, tau_min,
tau_max], B (K) I64, epoch (K) I64; per step k: <k>_zi, _zt, _idx, _loss, _obj, _dzi, _dzt,
_G_img, _G_txt (B), and the state after the step: _u_img, _u_txt, _b_img, _b_txt, _tau_img,
_tau_txt, _m_img, _m_txt (N).
"""
import torch

from gen_sogclr import batches, bimodal_step, f32, features, gamma_at, new_state, store_state
from refutil import save

torch.set_default_dtype(torch.float64)


def tau_grad(zi32, zt32, tau_i, tau_t, U_i, U_t, rho):
    """Autograd of the frozen-U RGCL surrogate w.r.t. the per-anchor temperatures."""
    S = zi32.double() @ zt32.double().t()
    B = S.shape[0]
    off = ~torch.eye(B, dtype=torch.bool)
    dg = S.diagonal()
    out = []
    for D, tau, U in ((S - dg[:, None], tau_i, U_i), (S.t() - dg[:, None], tau_t, U_t)):
        t = tau.clone().requires_grad_(True)
        ghat = (torch.exp(D / t[:, None]) * off).sum(1) / (B - 1)
        phi = (t * (torch.log(U) + rho) + t.detach() * ghat / U).sum()
        phi.backward()
        out.append(t.grad)
    return out


def main():
    N, d, Bs, epochs = 24, 12, [6, 8, 5, 8, 7, 6], [0, 0, 1, 1, 2, 3]
    tau0, gamma, schedule, decay = 0.1, 0.3, 1, 2
    rho, eta, beta, tmin, tmax = 2.0, 0.02, 0.9, 0.06, 0.2
    t = {"cfg": torch.tensor([tau0, gamma, schedule, decay, N, len(Bs), d, rho, eta, beta, tmin,
                              tmax]).float(),
         "B": torch.tensor(Bs, dtype=torch.int64), "epoch": torch.tensor(epochs, dtype=torch.int64)}
    gen = torch.Generator().manual_seed(21)
    st = new_state(N)
    tau0 = f32(torch.tensor(tau0)).item()
    taus = {"tau_img": torch.full((N,), tau0), "tau_txt": torch.full((N,), tau0),
            "m_img": torch.zeros(N), "m_txt": torch.zeros(N)}
    rho, eta, beta = (f32(torch.tensor(v)).item() for v in (rho, eta, beta))
    tmin, tmax = f32(torch.tensor(tmin)).item(), f32(torch.tensor(tmax)).item()
    clipped = 0
    for k, (B, idx) in enumerate(zip(Bs, batches(N, Bs, gen))):
        zi, zt = features(B, d, gen)
        g = f32(torch.tensor(gamma_at(schedule, gamma, decay, epochs[k]))).item()
        ti, tt = taus["tau_img"][idx].clone(), taus["tau_txt"][idx].clone()
        o = bimodal_step(zi, zt, idx, st, ti, tt, g)
        Gi, Gt = tau_grad(zi, zt, ti, tt, o["U_img"], o["U_txt"], rho)
        assert torch.allclose(Gi, o["logU_img"] + rho - o["pa_img"], rtol=1e-10, atol=1e-12)
        assert torch.allclose(Gt, o["logU_txt"] + rho - o["pa_txt"], rtol=1e-10, atol=1e-12)
        obj = (ti * (o["logU_img"] + rho) + tt * (o["logU_txt"] + rho)).sum() / (2 * B)
        for side, G in (("img", Gi), ("txt", Gt)):
            m = (1 - beta) * taus[f"m_{side}"][idx] + beta * G
            tau = taus[f"tau_{side}"][idx] - eta * m
            clipped += int(((tau < tmin) | (tau > tmax)).sum())
            taus[f"m_{side}"][idx] = f32(m)
            taus[f"tau_{side}"][idx] = f32(tau.clamp(tmin, tmax))
        key = str(k)
        t[f"{key}_zi"], t[f"{key}_zt"], t[f"{key}_idx"] = zi, zt, idx
        t[f"{key}_loss"], t[f"{key}_obj"] = o["loss"].reshape(1), obj.reshape(1)
        t[f"{key}_dzi"], t[f"{key}_dzt"] = o["dzi"], o["dzt"]
        t[f"{key}_G_img"], t[f"{key}_G_txt"] = Gi, Gt
        store_state(t, key, st)
        store_state(t, key, taus)
    print("temperature range", float(taus["tau_img"].min()), float(taus["tau_img"].max()),
          "clipped updates", clipped)
    assert clipped > 0, "the sequence should exercise the clip"
    save("isogclr", t)


if __name__ == "__main__":
    main()
