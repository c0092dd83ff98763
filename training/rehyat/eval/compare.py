"""Paired comparison of two evaluations of the same prompt sets and noise.

    python3 -m rehyat.eval.compare BASE.json NEW.json [--model student_stage2] [--base-model M]
        [--metrics color,shape,...] [--within 3] [--first N] [--lengths 1x:16x] [--out diff.json]

``rehyat.eval.run`` samples every model from the same prompts and the same noise, and records
each video's own score (``per_video``). Two evaluations of one prompt set can therefore be
compared video by video: the difference of the means comes with a 95% confidence interval from a
paired bootstrap over the videos, much tighter than comparing two means whose prompts differ
from video to video in difficulty. A row's verdict is "better" or "worse" when the interval
leaves 0 out (in the metric's good direction: accuracies up; area drift, wander and flicker down;
boundary_ratio "higher"/"lower"), else "within noise".

BASE and NEW may be the same file with two models, e.g. ``--base-model teacher --model
student_stage2``: with ``--within 3`` each row also says whether the new model is within 3 points
of the base ("yes" when the whole interval lies above -3, "no" when it lies below, else
"undecided"), issue 3's "student within 3 points of the teacher". Only the scores in % get this
check (PERCENT); area drift, wander, flicker and the boundary ratio are on other scales.

``--first N`` compares the first N videos of every set and length (fewer where a list is shorter,
e.g. the long lengths' ``n_prompts_long``), so that evaluations of different sizes pair up: the
prompt sets are prefix-stable (the first k of ``prompt_sets(n)`` are ``prompt_sets(k)``) and the
noise is drawn per batch of NOISE_BATCH videos, so two prefixes hold the same videos whenever
they are whole batches. Without it, evaluations of different sizes are refused.

``--lengths A:B`` pairs BASE's length A with NEW's length B on the same prompts (e.g. ``1x:16x``,
with ``--first`` where the long lengths have fewer prompts): issue 3's "no decay beyond 5 points at
16x" is then ``--lengths 1x:16x --within 5``, one file against itself or two.
"""
from __future__ import annotations

import argparse
import json
import math
from typing import Dict, List, Optional

import numpy as np

METRICS = ("color", "shape", "background", "motion", "direction", "area_drift", "area_trend", "wander",
           "flicker", "boundary_ratio")
# +1: higher is better, -1: lower is better, 0: neither (reported as higher / lower)
GOOD = {"color": 1, "shape": 1, "background": 1, "motion": 1, "direction": 1, "area_drift": -1, "wander": -1,
        "flicker": -1, "boundary_ratio": 0, "area_trend": 0}
SETS = ("in_distribution", "held_out")
# scores in % (points): --within P applies to these only; area drift, wander, flicker and the boundary ratio
# are not on a 0-100 scale, so "within 3 points" says nothing about them
PERCENT = ("color", "shape", "background", "motion", "direction")
# rehyat.eval.run.generate draws its noise per batch of this many videos (seed + batch start): a prefix
# of whole batches of a larger evaluation holds the same videos as a smaller one
NOISE_BATCH = 16


class CompareError(ValueError):
    """Two evaluations that cannot be compared video by video (the message says why)."""


def _scores(ev: dict, name: str, model: str) -> Dict[str, Dict[str, dict]]:
    if "runs" in ev and model not in ev:
        raise CompareError(f"{name} is a sampler sweep (rehyat.eval.sweep), not an evaluation (rehyat.eval.run)")
    if model not in ev:
        have = ", ".join(k for k in ("teacher", "student_stage1", "student_stage2") if k in ev) or "no model"
        raise CompareError(f"{name} has no {model!r} (it has: {have})")
    for sname, by_len in ev[model].items():
        for length, r in by_len.items():
            if "per_video" not in r:
                raise CompareError(f"{name}'s {model} {sname} {length} has no per-video scores (evaluated before "
                                   "rehyat.eval.run recorded them): evaluate the checkpoint again")
    return ev[model]


def _same_prompts(a: dict, b: dict, na: str, nb: str, first: Optional[int] = None):
    sa, sb = a.get("settings", {}), b.get("settings", {})
    sizes = ("n_prompts", "n_prompts_long")  # with --first, only the prefix both hold is compared
    for k in ("prompt_seeds", "noise_seed") + (() if first is not None else sizes):
        if k in sa and k in sb and sa[k] != sb[k]:
            hint = " (--first N compares the first N videos of both)" if k in sizes else ""
            raise CompareError(f"{na} and {nb} sampled different videos: settings.{k} is {sa[k]} against {sb[k]}; "
                               f"a paired comparison needs the same prompt sets and noise{hint}")


def _prefix(base: list, new: list, first: Optional[int], where: str):
    """Both lists cut to their common first ``first`` videos (whole noise batches, or both lists whole)."""
    if first is None:
        return base, new
    k = min(first, len(base), len(new))
    if k % NOISE_BATCH and not (k == len(base) == len(new)):
        raise CompareError(f"{where}: the first {k} videos are not whole noise batches of {NOISE_BATCH}, so the two "
                           "evaluations' videos there may differ; pick N (or n_prompts_long) a multiple of "
                           f"{NOISE_BATCH}")
    return base[:k], new[:k]


def paired(base: List[Optional[float]], new: List[Optional[float]], resamples: int = 5000, seed: int = 0) -> dict:
    """Mean difference new - base over the videos both score, and its paired-bootstrap 95% interval."""
    if len(base) != len(new):
        raise CompareError(f"{len(base)} videos against {len(new)}: not the same prompt set")
    pairs = [(x, y) for x, y in zip(base, new) if x is not None and y is not None
             and not (isinstance(x, float) and math.isnan(x)) and not (isinstance(y, float) and math.isnan(y))]
    out = {"n": len(pairs)}
    if not pairs:
        return {**out, "base": None, "new": None, "diff": None, "ci95": None}
    b = np.array([p[0] for p in pairs], dtype=np.float64)
    n = np.array([p[1] for p in pairs], dtype=np.float64)
    d = n - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return {**out, "base": round(float(b.mean()), 3), "new": round(float(n.mean()), 3),
            "diff": round(float(d.mean()), 3), "ci95": [round(float(lo), 3), round(float(hi), 3)]}


def verdict(metric: str, ci) -> str:
    if ci is None:
        return "no videos"
    lo, hi = ci
    if lo <= 0 <= hi:
        return "within noise"
    up = lo > 0
    g = GOOD.get(metric, 0)
    if g == 0:
        return "higher" if up else "lower"
    return "better" if up == (g > 0) else "worse"


def compare(base_ev: dict, new_ev: dict, model: str = "student_stage2", base_model: Optional[str] = None,
            metrics=METRICS, within: Optional[float] = None, resamples: int = 5000, names=("BASE", "NEW"),
            first: Optional[int] = None, lengths: Optional[tuple] = None) -> dict:
    base_model = base_model or model
    if first is not None and (first < 1 or first % NOISE_BATCH):
        raise CompareError(f"--first {first}: it must be a positive multiple of {NOISE_BATCH} (the noise batch)")
    _same_prompts(base_ev, new_ev, *names, first=first)
    a, b = _scores(base_ev, names[0], base_model), _scores(new_ev, names[1], model)
    rows = []
    for sname in SETS:
        if sname not in a or sname not in b:
            continue
        if lengths is not None:  # BASE's length A against NEW's length B (decay with length)
            pairs = [(lengths[0], lengths[1])] if lengths[0] in a[sname] and lengths[1] in b[sname] else []
        else:
            pairs = [(x, x) for x in sorted(set(a[sname]) & set(b[sname]), key=lambda s: int(s.rstrip("x")))]
        for la, lb in pairs:
            ra, rb = a[sname][la], b[sname][lb]
            length = la if la == lb else f"{la}->{lb}"
            for m in metrics:
                if m not in ra["per_video"] or m not in rb["per_video"]:
                    continue
                pa, pb = _prefix(ra["per_video"][m], rb["per_video"][m], first, f"{sname} {length}")
                row = {"set": sname, "length": length, "metric": m, **paired(pa, pb, resamples)}
                row["verdict"] = verdict(m, row["ci95"])
                if within is not None and m in PERCENT and row["ci95"] is not None:
                    lo, hi = row["ci95"]
                    row[f"within_{within:g}"] = "yes" if lo >= -within else "no" if hi < -within else "undecided"
                rows.append(row)
    if not rows:
        what = ("share no prompt set and length" if lengths is None
                else f"have no prompt set with {lengths[0]} in BASE and {lengths[1]} in NEW")
        raise CompareError(f"{names[0]}'s {base_model} and {names[1]}'s {model} {what}")
    return {"base": {"file": names[0], "model": base_model}, "new": {"file": names[1], "model": model},
            "resamples": resamples, "within": within, "first": first,
            "lengths": None if lengths is None else list(lengths), "rows": rows}


def table(res: dict) -> str:
    w = res["within"]
    head = ["set", "length", "metric", "n", "base", "new", "diff", "95% CI", "verdict"] + ([f"within {w:g}"] if w is not None else [])
    lines = [f"base: {res['base']['file']} ({res['base']['model']}); new: {res['new']['file']} ({res['new']['model']})",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in res["rows"]:
        ci = "" if r["ci95"] is None else f"[{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}]"
        cells = [r["set"], r["length"], r["metric"], str(r["n"]), _f(r["base"]), _f(r["new"]),
                 "" if r["diff"] is None else f"{r['diff']:+.2f}", ci, r["verdict"]]
        if w is not None:
            cells.append(r.get(f"within_{w:g}", ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _f(x) -> str:
    return "" if x is None else f"{x:.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description="paired comparison of two rehyat.eval.run evaluations")
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--model", default="student_stage2", help="the model of NEW (and of BASE without --base-model)")
    ap.add_argument("--base-model", default=None, help="the model of BASE (e.g. teacher)")
    ap.add_argument("--metrics", default=",".join(METRICS))
    ap.add_argument("--within", type=float, default=None, metavar="POINTS",
                    help="also say whether NEW is within POINTS of BASE on each score in %% (accuracies, direction)")
    ap.add_argument("--resamples", type=int, default=5000)
    ap.add_argument("--first", type=int, default=None, metavar="N",
                    help=f"compare the first N videos of every set and length (a multiple of {NOISE_BATCH}), so that "
                         "evaluations of different sizes pair up")
    ap.add_argument("--out", default=None, help="write the rows as JSON too")
    ap.add_argument("--lengths", default=None, metavar="A:B",
                    help="pair BASE's length A with NEW's length B on the same prompts, e.g. 1x:16x (decay with "
                         "length; use --first where the lengths have different numbers of prompts)")
    a = ap.parse_args(argv)
    lengths = None
    if a.lengths is not None:
        lengths = tuple(a.lengths.split(":"))
        if len(lengths) != 2 or not all(x.endswith("x") and x[:-1].isdigit() for x in lengths):
            ap.error(f"--lengths {a.lengths}: expected A:B such as 1x:16x")
    metrics = [m for m in a.metrics.split(",") if m]
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        ap.error(f"unknown metric(s) {', '.join(unknown)} (known: {', '.join(METRICS)})")
    if a.resamples < 100:
        ap.error("--resamples must be at least 100")
    evs = []
    for path in (a.base, a.new):
        try:
            with open(path) as f:
                evs.append(json.load(f))
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"cannot read {path}: {e}")
    try:
        res = compare(evs[0], evs[1], a.model, a.base_model, metrics, a.within, a.resamples, (a.base, a.new),
                      a.first, lengths)
    except CompareError as e:
        raise SystemExit(f"rehyat.eval.compare: {e}")
    print(table(res))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
