"""The device scripts, run on the CPU with the tiny preset: what they start, write and return."""
import json
import os
import subprocess
import sys
import tarfile

import torch

from rehyat import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_gpu_continue_continues_stage2_then_evaluates_and_sweeps(tmp_path):
    train.run_all(train.preset("tiny"), str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "OMP_NUM_THREADS": "1", "CK": str(tmp_path / "a" / "checkpoint.pt"), "OUT": str(tmp_path / "out"),
           "RUN_DIR": str(tmp_path / "run"), "PRESET": "tiny", "STAGE2_LONG": "32:2",
           "EVAL_ARGS": "--n 2 --n-long 1 --lengths 1", "SWEEP_ARGS": "--n 2", "SWEEP_GUIDANCE": "4"}
    r = subprocess.run(["bash", os.path.join(REPO, "training", "scripts", "gpu_continue.sh")], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["c-checkpoint.pt", "results.tgz"]
    m = json.load(open(tmp_path / "run" / "c" / "metrics.json"))
    assert [s["steps"] for s in m["stage2"]["segments"]] == [1, 1] and m["stage2"]["long_clip_frames"] == 32
    with tarfile.open(tmp_path / "out" / "results.tgz") as t:
        names = {os.path.basename(n) for n in t.getnames()}
    assert {"eval-g4.json", "eval-g2.5.json", "sweep-student.json", "sweep-teacher.json", "metrics.json"} <= names
    e = json.load(open(tmp_path / "run" / "eval-g2.5.json"))
    assert e["settings"]["guidance"] == 2.5 and "student_stage2" in e
    s = json.load(open(tmp_path / "run" / "sweep-student.json"))
    assert s["model"] == "student" and s["settings"]["prompt_seeds"] == [2024, 2025]
