"""Evaluation of the teacher and the student (after stage 1 and after stage 2).

    python3 -m rehyat.eval.run --checkpoint DIR/checkpoint.pt --out DIR/eval.json [--n 48]

Prompt sets: in-distribution (training compositions) and held-out compositions, fixed seeds.
For each model and length (1x, 4x, 16x the 2 s training length): colour, shape, background and
motion accuracy (per 2 s window, averaged), the diagnostic "direction" (objects asked to move
left/right/up/down whose net travel goes that way, area ignored), motion accuracy per asked motion
("motion:still", "motion:orbit", ... over the videos that ask for it), what the motion rule called each asked
motion ("motion_confusion": asked -> verdict -> count), the diagnostic "area_drift" (how much
the area of objects that should keep their size changes per 2 s window, see detect.score_video),
the diagnostic "wander" (how far objects asked to stay still or to translate travel off that path
per 2 s window, px at 128 px),
background flicker, chunk-boundary discontinuity
(frame difference across chunk boundaries / within chunks), and teacher-student PSNR from the
same noise. The detector's ceiling is measured on the renderer's ground truth of the same prompts.
Every row also holds the standard error of each mean over the set's videos ("stderr") and each
video's own score ("per_video"), for paired comparisons of two evaluations (rehyat.eval.compare).
"""
from __future__ import annotations

import argparse
import json
import math
from collections import Counter
import time
from typing import Dict, List

import numpy as np
import torch

from ..sampling import sample_parallel
from ..world import describe, parse_prompt, render, sample_scene
from .compare import NOISE_BATCH
from .detect import Detector, boundary_ratio, score_video

STEPS, SHIFT, GUIDANCE = 16, 3.0, 4.0
NOISE_SEED = 555  # every model of every evaluation starts from the same noise (paired comparisons)


def eval_device() -> torch.device:
    """The GPU if there is one, with TF32 matmuls on exactly as ``rehyat.train`` sets them, so a
    standalone evaluation samples with the same numerics as the one training runs in-process."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def prompt_set(kind: str, n: int, seed: int) -> List[str]:
    rng = np.random.default_rng(seed)
    return [describe(sample_scene(rng, kind), rng) for _ in range(n)]


def prompt_sets(n: int, seeds=(1234, 4321)) -> Dict[str, List[str]]:
    """The two prompt sets: in-distribution and held-out compositions, ``n`` each, from ``seeds``
    (the defaults are the evaluation's fixed sets; other seeds give validation sets)."""
    return {"in_distribution": prompt_set("exclude", n, seeds[0]), "held_out": prompt_set("only", n, seeds[1])}


def checkpoint_preset_name(ck: dict) -> str:
    """The preset family a loaded checkpoint was trained with, as the evaluation's lengths need it."""
    return "full" if ck["preset"]["size"] == 128 else "tiny"


def _amp(device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def generate(model, vae, text, tok, prompts, latent_frames, seed, device, batch=NOISE_BATCH, softmax=False,
             steps=STEPS, shift=SHIFT, guidance=GUIDANCE):
    """-> frames [B, F, H, W, 3] in [0, 1] (CPU float16 to keep memory small)."""
    c = model.cfg
    out = []
    for i in range(0, len(prompts), batch):
        ps = prompts[i:i + batch]
        g = torch.Generator().manual_seed(seed + i)
        noise = torch.randn(len(ps), c.latent_channels, latent_frames, c.latent_height, c.latent_width,
                            generator=g).to(device)
        ctx = text(tok.batch(ps).to(device))
        unc = text(tok.batch([""] * len(ps)).to(device))
        with _amp(device):
            z = sample_parallel(model, ctx, unc, noise, steps, shift, guidance)
        z = z.float()
        frames = []
        cache = None
        for f0 in range(0, latent_frames, 8):
            x, cache = vae.decode(z[:, :, f0:f0 + 8], cache)
            frames.append(((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1).half().cpu())
        out.append(torch.cat(frames, dim=1))
    return torch.cat(out)


@torch.no_grad()
def reconstruct(vae, frames, batch=8):
    """frames [B, F, H, W, 3] in [0, 1] -> the VAE's encode -> decode of them, same layout (float16, CPU)."""
    out = []
    dev = next(vae.parameters()).device
    for i in range(0, frames.shape[0], batch):
        x = frames[i:i + batch].to(dev).float().permute(0, 4, 1, 2, 3).mul(2).sub(1)
        y, _ = vae.decoder(vae.encoder(x))
        out.append(((y.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1).half().cpu())
    return torch.cat(out)


def score_set(det, frames, prompts, chunk_frames, device) -> Dict[str, float]:
    acc: Dict[str, list] = {}
    confusion: Dict[str, Counter] = {}
    for f, p in zip(frames, prompts):
        fr = f.to(device).float()
        r = score_video(det, fr, parse_prompt(p))
        for asked, verdicts in r.pop("motion_confusion").items():
            confusion.setdefault(asked, Counter()).update(verdicts)
        r["boundary_ratio"] = boundary_ratio(fr, chunk_frames)
        for k, v in r.items():
            acc.setdefault(k, []).append(v)
    pct = ("color", "shape", "background", "motion", "direction")
    res, per_video, stderr = {}, {}, {}
    for k, v in acc.items():
        scale = 100.0 if k in pct or k.startswith("motion:") else 1.0
        m = float(np.nanmean(v)) if any(not math.isnan(x) for x in v) else float("nan")
        res[k] = None if math.isnan(m) else round(m * scale, 3)
        if k.startswith("motion:"):  # asked by some videos only: no per-video list
            continue
        per_video[k] = [None if math.isnan(x) else round(x * scale, 4) for x in v]
        have = [x * scale for x in v if not math.isnan(x)]
        stderr[k] = round(float(np.std(have, ddof=1) / math.sqrt(len(have))), 3) if len(have) > 1 else None
    # summed over the set's videos, each asked motion's verdicts most frequent first
    res["motion_confusion"] = {a: dict(v.most_common()) for a, v in sorted(confusion.items())}
    # the standard error of each mean over the set's videos, and every video's own score (in the
    # prompts' order, None where it has none), so that two evaluations of the same prompt set and
    # noise can be compared video by video (rehyat.eval.compare)
    res["stderr"] = stderr
    res["per_video"] = per_video
    return res


def summary(r: dict) -> dict:
    """A score_set result without its per-video lists (for log lines)."""
    return {k: v for k, v in r.items() if k != "per_video"}


def ground_truth_frames(prompts, frames: int, size: int, device, batch: int = NOISE_BATCH) -> torch.Tensor:
    """The renderer's videos of the prompts (layout from a fixed seed): the detector's ceiling.
    Rendered ``batch`` videos at a time on ``device`` and kept on the CPU (float32, as rendered), so
    that 800 prompts at 1x or 64 at 16x do not hold every frame in GPU memory at once."""
    scenes = [parse_prompt(p) for p in prompts]
    rng = np.random.default_rng(99)
    for s in scenes:
        for o in s.objects:
            o.x, o.y, o.phase = float(rng.uniform(30, 98)), float(rng.uniform(30, 98)), float(rng.random())
    return torch.cat([render(scenes[i:i + batch], frames, size=size, device=device).cpu()
                      for i in range(0, len(scenes), batch)])


def ground_truth_long(det, sets, mults, n_long, base_latent, size, chunk_frames, device) -> dict:
    """The detector's ceiling at the longer lengths (the same first ``n_long`` prompts the models get):
    over 8-32 s objects that translate leave the frame and wrap around, and grow/shrink saw back."""
    out: dict = {}
    for sname, prompts in sets.items():
        for mult in mults:
            ps = prompts[:n_long]
            out.setdefault(sname, {})[f"{mult}x"] = score_set(
                det, ground_truth_frames(ps, base_latent * 4 * mult, size, device), ps, chunk_frames, device)
    return out


def base_latent_frames(preset_name: str) -> int:
    """Latent frames of 1x = the teacher's training clip: 8 (2 s) for every full-size preset."""
    return 2 if preset_name == "tiny" else 8


def psnr(a, b) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return round(10 * math.log10(1.0 / max(mse, 1e-10)), 2)


def eval_models(tok, vae, text, teacher, stage1, student, device, log=print, preset_name="full", n=48,
                lengths=(1, 4, 16), teacher_lengths=(1, 4, 16), n_long=16, deadline=None,
                steps=STEPS, shift=SHIFT, guidance=GUIDANCE, seeds=(1234, 4321), student_lengths=None) -> dict:
    """``seeds``: the prompt sets' seeds (in-distribution, held-out); the defaults are the
    evaluation's fixed sets, other seeds give validation sets for choosing settings. The teacher is
    sampled at ``teacher_lengths`` and the students at ``student_lengths`` (None: all of ``lengths``),
    each only where ``lengths`` has that length too (stage 1's student at 1x only)."""
    student_lengths = lengths if student_lengths is None else student_lengths
    t0 = time.time()
    size = 8 * teacher.cfg.latent_height
    base_latent = base_latent_frames(preset_name)
    chunk_frames = 4 * student.cfg.tc
    det = Detector(size=size, device=device, calib=30)
    sets = prompt_sets(n, seeds)
    res: dict = {"settings": {"steps": steps, "shift": shift, "guidance": guidance, "prompt_seeds": list(seeds),
                              "n_prompts": n,
                              "n_prompts_long": n_long, "noise_seed": NOISE_SEED, "window_frames": 32, "chunk_frames": chunk_frames}}
    res["settings"]["vae_encoder"] = getattr(vae, "encoder_state", "trained")
    # detector ceiling on ground truth renders
    for sname, prompts in sets.items():
        gt = ground_truth_frames(prompts, base_latent * 4, size, device)
        res.setdefault("ground_truth", {})[sname] = score_set(det, gt, prompts, chunk_frames, device)
        # the autoencoder's ceiling: the same videos through encode -> decode (not where the encoder is
        # missing, a checkpoint recovered from a release; settings.vae_encoder says which encoder it is)
        if res["settings"]["vae_encoder"] == "missing":
            res["vae_reconstruction"] = {"skipped": "the checkpoint's VAE encoder is missing (recovered from a release)"}
            continue
        res.setdefault("vae_reconstruction", {})[sname] = score_set(det, reconstruct(vae, gt), prompts,
                                                                     chunk_frames, device)
    res["ground_truth_long"] = ground_truth_long(det, sets, [m for m in lengths if m != 1], n_long, base_latent,
                                                 size, chunk_frames, device)
    models = {"teacher": teacher, "student_stage1": stage1, "student_stage2": student}
    if stage1 is None:  # e.g. a released checkpoint, which holds only the final student
        del models["student_stage1"]
    res["settings"]["base_latent_frames"] = base_latent
    for sname, prompts in sets.items():
        for mult in lengths:
            ps = prompts if mult == 1 else prompts[:n_long]
            tf = base_latent * mult
            frames = {}
            for mname, model in models.items():
                if mname == "teacher" and mult not in teacher_lengths:
                    continue
                if mname != "teacher" and mult not in student_lengths:
                    continue
                if mname == "student_stage1" and mult != 1:
                    continue
                if deadline is not None and time.time() > deadline:
                    res.setdefault("skipped_for_time", []).append(f"{mname}/{sname}/{mult}x")
                    continue
                frames[mname] = generate(model, vae, text, tok, ps, tf, seed=NOISE_SEED, device=device,
                                         steps=steps, shift=shift, guidance=guidance)
                r = score_set(det, frames[mname], ps, chunk_frames, device)
                if mname != "teacher" and "teacher" in frames:
                    r["psnr_vs_teacher_db"] = psnr(frames[mname], frames["teacher"])
                res.setdefault(mname, {}).setdefault(sname, {})[f"{mult}x"] = r
                log(f"[eval] {mname} {sname} {mult}x {summary(r)} t={time.time() - t0:.0f}s")
    res["seconds"] = round(time.time() - t0, 1)
    return res


def main(argv=None):
    from ..train import load_checkpoint
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--n-long", type=int, default=16)
    ap.add_argument("--lengths", default="1,4,16")
    ap.add_argument("--teacher-lengths", default=None,
                    help="lengths at which the teacher is sampled too (default: --lengths; '' = none, e.g. a "
                         "student-only run at 16x on the CPU, where full softmax over 32 s is slow)")
    ap.add_argument("--student-lengths", default=None,
                    help="lengths at which the student is sampled (default: --lengths; '' = none, e.g. the "
                         "teacher alone beside an earlier student-only run of the same prompts)")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--shift", type=float, default=SHIFT)
    ap.add_argument("--guidance", type=float, default=GUIDANCE)
    ap.add_argument("--seeds", default="1234,4321", help="prompt-set seeds (in-distribution,held-out)")
    ap.add_argument("--ceilings-only", action="store_true",
                    help="only the detector's ceilings: ground truth and VAE reconstruction (no sampling)")
    a = ap.parse_args(argv)
    device = eval_device()
    ck, tok, vae, text, teacher, student = load_checkpoint(a.checkpoint, device)
    lengths = tuple(int(x) for x in a.lengths.split(",")) if not a.ceilings_only else ()
    teacher_lengths, student_lengths = (lengths if arg is None else tuple(int(x) for x in arg.split(",") if x)
                                        for arg in (a.teacher_lengths, a.student_lengths))
    preset_name = checkpoint_preset_name(ck)
    res = eval_models(tok, vae, text, teacher, None, student, device, preset_name=preset_name, n=a.n,
                      lengths=lengths, teacher_lengths=teacher_lengths, n_long=a.n_long, steps=a.steps, shift=a.shift,
                      guidance=a.guidance, seeds=tuple(int(x) for x in a.seeds.split(",")),
                      student_lengths=student_lengths,
                      log=lambda s: print(s, flush=True))
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
