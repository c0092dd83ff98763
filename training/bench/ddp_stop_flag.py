"""Cost of the per-step stop-flag broadcast of data-parallel training (rehyat.train._loop).

    cd training && python3 -m rehyat.launch --nproc 2 -m bench.ddp_stop_flag bench/ddp_stop_flag.out.json

Two ranks. (1) latency of one ``ddp.broadcast_floats`` (2 float64 through gloo, what a synced loop adds
at each decision); (2) the tiny preset's DDP teacher step through ``_loop`` with the flag every step,
every 4 steps (the default, STOP_SYNC_EVERY) and without it (sync=False: equal step caps keep the ranks
in step), alternating rounds of 60 steps, same run; the ratios are what the flag costs here. (3) the flag's latency against the
teacher step of rehyat-2's GPU recipe (9,850 steps in 810 s on one H200 = 82 ms/step, from its model
card, in git history: ``git show 76c47d4:models/rehyat-2/README.md``): the projected overhead there
(the broadcast is CPU-only, gloo over TCP on the host, and does not wait for the GPU).
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

from bench.machine import cpu_name
from rehyat import ddp, train


def main(out):
    load0 = round(os.getloadavg()[0], 2)
    ddp.init()
    r = ddp.rank()
    for _ in range(200):
        ddp.broadcast_floats([0.0, 0.5])
    n = 3000
    t = time.perf_counter()
    for _ in range(n):
        ddp.broadcast_floats([0.0, 0.5])
    flag_us = (time.perf_counter() - t) / n * 1e6

    p = train.preset("tiny")
    device = torch.device("cpu")
    torch.manual_seed(0)
    from rehyat.dit import DiT
    from rehyat.text import TextEncoder, Tokenizer
    from rehyat.vae import CausalVideoVAE
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    vae, text, dit = CausalVideoVAE(p.vae), TextEncoder(p.text), DiT(p.dit)
    rng = np.random.default_rng(r)
    cache = train.LatentCache(vae, p, device, rng, 8)
    fwd = train.Forward(train.FlowNet(dit, text), False, log=lambda s: None)
    opt = torch.optim.AdamW(list(dit.parameters()) + list(text.parameters()), lr=1e-4)
    steps = 60
    p.max_steps["teacher"] = steps
    fn = lambda _: train._fm_loss(fwd, vae, tok, p, device, rng, cache=cache)
    modes = {"every_step": (True, 1), "every_4_steps": (True, 4), "every_16_steps": (True, 16), "no_flag": (False, 1)}
    per = {k: [] for k in modes}
    train._loop("teacher", p, fn, opt, 1e-4, lambda s: None, fwd=fwd, sync=True)  # warm-up
    for _ in range(5):
        for k, (sync, every) in modes.items():
            train.STOP_SYNC_EVERY = every
            ddp.barrier()
            t = time.perf_counter()
            train._loop("teacher", p, fn, opt, 1e-4, lambda s: None, fwd=fwd, sync=sync)
            per[k].append((time.perf_counter() - t) / steps)
    med = {k: statistics.median(v) for k, v in per.items()}
    gpu_step_s = 810.0 / 9850
    res = {
        "machine": f"{cpu_name()}, {os.cpu_count()} cores (shared with other work), CPU only, 2 ranks (gloo)",
        "torch": torch.__version__,
        "load_average_1m_start_end": [load0, round(os.getloadavg()[0], 2)],
        "note": "on a loaded 2-core machine the step ratios are noise (rounds vary by tens of %); the flag's "
                "latency is the robust number, and the projection divides it by the GPU recipe's step",
        "flag_broadcast_us": round(flag_us, 1),
        "tiny_teacher_step_s_median_of_5x60": {k: round(v, 5) for k, v in med.items()},
        "step_ratio_vs_no_flag": {k: round(v / med["no_flag"], 3) for k, v in med.items()},
        "flag_latency_over_tiny_step": round(flag_us * 1e-6 / med["no_flag"], 4),
        "gpu_teacher_step_s_reference": round(gpu_step_s, 4),
        "projected_overhead_on_gpu_teacher_step": {"every_step": round(flag_us * 1e-6 / gpu_step_s, 5),
                                                   "every_4_steps": round(flag_us * 1e-6 / gpu_step_s / 4, 5),
                                                   "every_16_steps": round(flag_us * 1e-6 / gpu_step_s / 16, 6)},
    }
    if r == 0:
        with open(out, "w") as f:
            json.dump(res, f, indent=1)
        print(json.dumps(res, indent=1))
    ddp.finish()


if __name__ == "__main__":
    main(sys.argv[1])
