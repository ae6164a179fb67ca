"""Reference files for the loss replay tool (tools/loss_replay.c, tests/test_loss_replay.c).

Converts sequences already computed from the spec in float64 by gen_sogclr.py ("cos" scenario:
cosine gamma with epoch changes mid-sequence) and gen_fastclip.py (caller-changed tau) into the
replay contract (README "Loss replay"): inputs under step.<k>.* plus metadata, and the expected
outputs under expect.step.<k>.* / expect.state.*. Run after those generators:
    cd tests/ref && /usr/bin/python3 gen_replay.py
"""
import torch

from refutil import load, save


def sogclr():
    ref, _ = load("sogclr")
    tau, gamma, sched, decay, N, K, d = ref["cos_cfg"].tolist()
    t = {}
    epochs = ref["cos_epoch"]
    for k in range(int(K)):
        p = f"cos_{k}_"
        t[f"step.{k}.zi"], t[f"step.{k}.zt"] = ref[p + "zi"], ref[p + "zt"]
        t[f"step.{k}.index"] = ref[p + "idx"]
        t[f"step.{k}.epoch"] = epochs[k:k + 1]
        t[f"expect.step.{k}.loss"], t[f"expect.step.{k}.objective"] = ref[p + "loss"], ref[p + "obj"]
        t[f"expect.step.{k}.dzi"], t[f"expect.step.{k}.dzt"] = ref[p + "dzi"], ref[p + "dzt"]
    last = f"cos_{int(K) - 1}_"
    for s in ("u_img", "u_txt", "b_img", "b_txt"):
        t[f"expect.state.{s}"] = ref[last + s]
    meta = {"loss": "sogclr", "steps": int(K), "N": int(N), "tau": repr(tau), "gamma": repr(gamma),
            "gamma_schedule": "cosine" if sched == 1 else "constant",
            "gamma_decay_epochs": int(decay)}
    save("replay_sogclr", t, meta)


def fastclip():
    ref, _ = load("fastclip")
    gamma, sched, decay, N, K, d, rho = ref["cfg"].tolist()
    t = {}
    for k in range(int(K)):
        p = f"{k}_"
        t[f"step.{k}.zi"], t[f"step.{k}.zt"] = ref[p + "zi"], ref[p + "zt"]
        t[f"step.{k}.index"] = ref[p + "idx"]
        t[f"step.{k}.epoch"] = ref["epoch"][k:k + 1]
        t[f"step.{k}.tau"] = ref["tau"][k:k + 1]
        for a, b in (("loss", "loss"), ("objective", "obj"), ("dzi", "dzi"), ("dzt", "dzt"),
                     ("dtau", "dtau"), ("dlog_scale", "dlogp")):
            t[f"expect.step.{k}.{a}"] = ref[p + b]
    last = f"{int(K) - 1}_"
    for s in ("u_img", "u_txt", "b_img", "b_txt"):
        t[f"expect.state.{s}"] = ref[last + s]
    meta = {"loss": "fastclip", "steps": int(K), "N": int(N), "gamma": repr(gamma),
            "gamma_schedule": "cosine" if sched == 1 else "constant",
            "gamma_decay_epochs": int(decay), "rho": repr(rho)}
    save("replay_fastclip", t, meta)


def isogclr():
    ref, _ = load("isogclr")
    tau0, gamma, sched, decay, N, K, d, rho, eta, beta, tmin, tmax = ref["cfg"].tolist()[:12]
    t = {}
    for k in range(int(K)):
        p = f"{k}_"
        t[f"step.{k}.zi"], t[f"step.{k}.zt"] = ref[p + "zi"], ref[p + "zt"]
        t[f"step.{k}.index"] = ref[p + "idx"]
        t[f"step.{k}.epoch"] = ref["epoch"][k:k + 1]
        for a, b in (("loss", "loss"), ("objective", "obj"), ("dzi", "dzi"), ("dzt", "dzt")):
            t[f"expect.step.{k}.{a}"] = ref[p + b]
    last = f"{int(K) - 1}_"
    for s in ("u_img", "u_txt", "b_img", "b_txt", "tau_img", "tau_txt", "m_img", "m_txt"):
        t[f"expect.state.{s}"] = ref[last + s]
    meta = {"loss": "isogclr", "steps": int(K), "N": int(N), "tau": repr(tau0),
            "gamma": repr(gamma), "gamma_schedule": "cosine" if sched == 1 else "constant",
            "gamma_decay_epochs": int(decay), "rho": repr(rho), "eta": repr(eta),
            "beta": repr(beta), "tau_min": repr(tmin), "tau_max": repr(tmax)}
    save("replay_isogclr", t, meta)


def sogclr_uni():
    ref, _ = load("sogclr_uni")
    keys = ["N", "tau", "gamma", "schedule", "E", "iso", "tau_min", "tau_max", "rho", "eta",
            "beta", "steps", "d"]
    c = dict(zip(keys, ref["isocos_cfg"].tolist()))
    t = {}
    K = int(c["steps"])
    for k in range(K):
        p = f"isocos_s{k}_"
        t[f"step.{k}.za"], t[f"step.{k}.zb"] = ref[p + "za"], ref[p + "zb"]
        t[f"step.{k}.index"], t[f"step.{k}.epoch"] = ref[p + "idx"], ref[p + "epoch"]
        t[f"expect.step.{k}.loss"] = ref[p + "loss"]
        t[f"expect.step.{k}.dza"], t[f"expect.step.{k}.dzb"] = ref[p + "dza"], ref[p + "dzb"]
    last = f"isocos_s{K - 1}_"
    t["expect.state.u"], t["expect.state.tau"] = ref[last + "u"], ref[last + "tau"]
    t["expect.state.tau_m"] = ref[last + "m"]
    meta = {"loss": "sogclr_uni", "steps": K, "N": int(c["N"]), "isogclr": int(c["iso"]),
            "gamma_schedule": "cosine" if c["schedule"] == 1 else "constant",
            "gamma_decay_epochs": int(c["E"])}
    for k in ("tau", "gamma", "tau_min", "tau_max", "rho", "eta", "beta"):
        meta[k] = repr(c[k])
    save("replay_sogclr_uni", t, meta)


def baselines():
    ref, _ = load("clip_loss")
    t = {}
    for k, case in enumerate(("b7", "b16")):  # B changes between steps; no state
        t[f"step.{k}.zi"], t[f"step.{k}.zt"] = ref[case + "_zi"], ref[case + "_zt"]
        t[f"step.{k}.logit_scale"] = ref[case + "_p"].reshape(1)
        t[f"expect.step.{k}.loss"] = ref[case + "_loss"].reshape(1)
        t[f"expect.step.{k}.dzi"], t[f"expect.step.{k}.dzt"] = ref[case + "_dzi"], ref[case + "_dzt"]
        t[f"expect.step.{k}.dlog_scale"] = ref[case + "_dp"].reshape(1)
    save("replay_clip", t, {"loss": "clip", "steps": 2})
    ref, _ = load("simclr")
    t = {"step.0.za": ref["b16_za"], "step.0.zb": ref["b16_zb"],
         "expect.step.0.loss": ref["b16_loss"].reshape(1),
         "expect.step.0.dza": ref["b16_dza"], "expect.step.0.dzb": ref["b16_dzb"]}
    save("replay_simclr", t, {"loss": "simclr", "steps": 1, "tau": repr(ref["b16_tau"].item())})


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    sogclr()
    fastclip()
    isogclr()
    sogclr_uni()
    baselines()
