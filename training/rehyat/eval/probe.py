"""Print what a model's objects do, frame by frame: centroid and area tracks of each named object.

    python3 -m rehyat.eval.probe --checkpoint DIR/checkpoint.pt [--model student|teacher] [--seconds 2] [PROMPT ...]

The accuracies of :mod:`rehyat.eval.run` say *whether* motion is right; this says *what* the
objects do instead (e.g. "moves right" drifting 4 px in 2 s), with the detector's motion verdict.
"""
from __future__ import annotations

import argparse

import torch

from ..world import parse_prompt
from .detect import NAMES, Detector, _features, labels
from .run import eval_device, generate

PROBES = ["a red circle moves right on a blue background", "a green square moves up on a black background",
          "a yellow star moves left slowly on a purple background", "a white diamond stays still on a gray background"]


def main(argv=None):
    from ..train import load_checkpoint
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--model", default="student", choices=("student", "teacher"))
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--every", type=int, default=4, help="print every n-th frame")
    ap.add_argument("prompts", nargs="*")
    a = ap.parse_args(argv)
    device = eval_device()
    _, tok, vae, text, teacher, student = load_checkpoint(a.checkpoint, device)
    model = student if a.model == "student" else teacher
    prompts = a.prompts or PROBES
    det = Detector(size=8 * model.cfg.latent_height, device=device, calib=20)
    frames = generate(model, vae, text, tok, prompts, 4 * a.seconds, seed=555, device=device, batch=len(prompts))
    for p, f in zip(prompts, frames):
        lab = labels(f.to(device).float())
        for o in parse_prompt(p).objects:
            area, cx, cy, _, touch = _features(lab == NAMES.index(o.color))
            verdict = det.motion_of(area >= det.min_area, cx, cy, area, touch)
            heading = det.direction_of(area >= det.min_area, cx, cy, touch)
            print(f"{a.model} | {p} | {o.color} {o.shape}: asked {o.motion}, detected {verdict} (net travel: {heading})")
            print("   cx  ", [round(float(x)) for x in cx[::a.every]])
            print("   cy  ", [round(float(x)) for x in cy[::a.every]])
            print("   area", [int(x) for x in area[::a.every]])


if __name__ == "__main__":
    main()
