"""One rank of a data-parallel test scenario, started by rehyat.launch (see test_distributed.py).

    python3 -m rehyat.launch --nproc 2 -m ddp_worker MODE OUT_DIR

Writes OUT_DIR/rank<r>.json with what the test checks. Modes:
  stop          vae stage with a time budget of 1 s on rank 0 and 0 s on rank 1, no step cap
  compile-fail  teacher stage whose "compiled" DiT raises at its first call on rank 1 only
  crash         rank 1 raises while rank 0 waits at a barrier (the launcher must stop rank 0)
"""
import json
import os
import sys

import torch

from rehyat import ddp, train


def main(mode, out):
    ddp.init()
    r = ddp.rank()
    res = {"rank": r, "world": ddp.world()}
    p = train.preset("tiny")
    if mode == "stop":
        p.budgets["vae"] = 1.0 if r == 0 else 0.0
        p.max_steps["vae"] = 10 ** 9
        m = train.run_all(p, out, torch.device("cpu"), seed=0, log=lambda s: None, stages=("vae",))
        res.update(steps=m["vae"]["steps"], rank_checksums=m["vae"]["rank_checksums"])
    elif mode == "compile-fail":
        calls = {"n": 0}
        orig = train.Forward.__init__

        def fake_compile(self, net, want_compile, log=print):
            orig(self, net, False, log)
            if hasattr(net, "dit"):
                dit = net.dit

                def compiled(*a, **kw):
                    calls["n"] += 1
                    if r == 1:
                        raise RuntimeError("simulated torch.compile failure on rank 1")
                    return dit(*a, **kw)

                self.compiled = compiled
                net.__dict__["fast"] = compiled

        train.Forward.__init__ = fake_compile
        p.max_steps.update(vae=1, teacher=3)
        m = train.run_all(p, out, torch.device("cpu"), seed=0, log=lambda s: None, stages=("vae", "teacher"))
        res.update(steps=m["teacher"]["steps"], rank_checksums=m["teacher"]["rank_checksums"],
                   compiled_calls=calls["n"])
    elif mode == "crash":
        if r == 1:
            raise RuntimeError("rank 1 fails on purpose")
        ddp.barrier()
    else:
        raise SystemExit(f"unknown mode {mode}")
    with open(os.path.join(out, f"rank{r}.json"), "w") as f:
        json.dump(res, f)
    ddp.finish()


if __name__ == "__main__":
    os.makedirs(sys.argv[2], exist_ok=True)
    main(sys.argv[1], sys.argv[2])
