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


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    sogclr()
    fastclip()
