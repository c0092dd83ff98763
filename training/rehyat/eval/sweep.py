"""Sampler sweep: the evaluation's 1x accuracies of one model under several sampler settings.

    python3 -m rehyat.eval.sweep --checkpoint DIR/checkpoint.pt --out sweep.json \
        [--model teacher|student] [--guidance 1.5,2.5,4,6] [--steps 16,32] [--shift 3] [--n 48] [--seeds 1234,4321]

The release's sampler defaults (steps, shift, guidance in the manifest) were set once for
rehyat-1. This measures what each setting does to colour, shape, motion and the diagnostics on
the evaluation's fixed prompt sets (same prompts and noise as ``rehyat.eval.run``), with
``area_drift`` (``rehyat.eval.detect.score_video``, in every evaluation row): for objects asked not
to grow or shrink, the mean |log(area at the end / area at the start)| of each 2 s window (0 for the
renderer's own translations; the motion accuracy calls an object "grow"/"shrink" once its area
trend passes ~0.8% per frame, i.e. ~0.26 over a window).
"""
from __future__ import annotations

import argparse
import json
import time

from .detect import Detector
from .run import NOISE_SEED, base_latent_frames, checkpoint_preset_name, eval_device, generate, prompt_sets, score_set, summary


def sweep(model, vae, text, tok, device, guidances, steps_list, shift=3.0, n=48, preset_name="full", log=print,
          seeds=(1234, 4321)):
    """``seeds``: prompt-set seeds; choose settings on sets other than the evaluation's (1234, 4321)."""
    det = Detector(size=8 * model.cfg.latent_height, device=device, calib=30)
    sets = prompt_sets(n, seeds)
    chunk_frames = 4 * model.cfg.tc
    lat = base_latent_frames(preset_name)
    res = {"settings": {"n_prompts": n, "shift": shift, "latent_frames": lat, "prompt_seeds": list(seeds),
                        "noise_seed": NOISE_SEED}, "runs": []}
    t0 = time.time()
    for steps in steps_list:
        for g in guidances:
            row = {"steps": steps, "guidance": g, "shift": shift}
            for sname, prompts in sets.items():
                fr = generate(model, vae, text, tok, prompts, lat, seed=NOISE_SEED, device=device,
                              steps=steps, shift=shift, guidance=g)
                r = score_set(det, fr, prompts, chunk_frames, device)
                row[sname] = r
            res["runs"].append(row)
            shown = {k: summary(v) if isinstance(v, dict) else v for k, v in row.items()}
            log(f"[sweep] steps {steps} guidance {g}: {json.dumps(shown)} t={time.time() - t0:.0f}s")
    res["seconds"] = round(time.time() - t0, 1)
    return res


def main(argv=None):
    from ..train import load_checkpoint
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="teacher", choices=("teacher", "student"))
    ap.add_argument("--guidance", default="1.5,2.5,4,6")
    ap.add_argument("--steps", default="16,32")
    ap.add_argument("--shift", type=float, default=3.0)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--seeds", default="1234,4321",
                    help="prompt-set seeds (in-distribution,held-out); the evaluation's sets by default")
    a = ap.parse_args(argv)
    device = eval_device()
    ck, tok, vae, text, teacher, student = load_checkpoint(a.checkpoint, device)
    model = teacher if a.model == "teacher" else student
    if model is None:
        raise SystemExit(f"{a.checkpoint} holds no {a.model}")
    preset_name = checkpoint_preset_name(ck)
    res = sweep(model, vae, text, tok, device, [float(x) for x in a.guidance.split(",")],
                [int(x) for x in a.steps.split(",")], a.shift, a.n, preset_name, log=lambda s: print(s, flush=True),
                seeds=tuple(int(x) for x in a.seeds.split(",")))
    res["model"] = a.model
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
