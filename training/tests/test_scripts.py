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


def test_gpu_release_trains_one_data_parallel_student_then_evaluates_it_over_every_gpu(tmp_path):
    # STUDENT_NPROC=2: part A and the student both on 2 ranks (the repo's launcher, as torchrun of
    # Debian's torch 1.13 fails on Python 3.11), then gpu_eval.sh on the student; start + poll as on the device
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "out"), "RUN_DIR": str(tmp_path / "run"),
           "PRESET": "tiny", "NPROC": "2", "STUDENT_NPROC": "2", "LAUNCHER": "rehyat", "VARIANTS": "m=32:2",
           "EVAL_ARGS": "--n 2 --n-long 1 --lengths 1", "SWEEP_ARGS": "--n 2", "SWEEP_GUIDANCE": "4",
           "SWEEP_STEPS": "2,3"}
    script = os.path.join(REPO, "training", "scripts", "gpu_release.sh")
    for verb in (["start"], ["poll", "500"]):
        r = subprocess.run(["bash", script, *verb], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "DONE: 0" in r.stdout, r.stdout[-3000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["b0-checkpoint.pt", "results.tgz"]
    m = json.load(open(tmp_path / "run" / "b0" / "metrics.json"))
    assert m["teacher"]["ranks"] == 2 and m["stage2"]["ranks"] == 2 and m["stage2"]["long_clip_frames"] == 32
    assert "eval" not in m  # evaluated by gpu_eval.sh instead, below
    s = json.load(open(tmp_path / "run" / "b0" / "sweep-student.json"))
    assert [(x["steps"], x["guidance"]) for x in s["runs"]] == [(2, 4.0), (3, 4.0)]
    with tarfile.open(tmp_path / "out" / "results.tgz") as t:
        names = {os.path.basename(n) for n in t.getnames()}
    assert {"eval-g4.json", "eval-g2.5.json", "sweep-student.json", "sweep-teacher.json", "metrics.json",
            "eval-status.txt", "pipeline.log"} <= names


def test_gpu_refit_variants_refits_the_encoder_evaluates_the_release_and_continues_each_variant(tmp_path):
    ck = _recovered_release(tmp_path)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "out"), "RUN_DIR": str(tmp_path / "run"),
           "CK": ck, "PRESET": "tiny", "VARIANTS": "fm=0 kd=0.5", "STAGE2_LONG": "32:2", "ENCODER_CYCLE": "2",
           "EVAL_ARGS": "--n 2 --n-long 1 --lengths 1"}
    script = os.path.join(REPO, "training", "scripts", "gpu_refit_variants.sh")
    for verb in (["start"], ["poll", "500"]):
        r = subprocess.run(["bash", script, *verb], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "DONE: 0" in r.stdout, r.stdout[-3000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["results.tgz", "v0-checkpoint.pt", "v1-checkpoint.pt"]
    run = tmp_path / "run"
    refit = json.load(open(run / "enc" / "metrics.json"))["vae_encoder_refit"]
    assert refit["steps"] == 1 and refit["cycle"]["weight"] == 2.0 and refit["cycle"]["held_out"] == 1
    base = json.load(open(run / "base" / "eval-g4.json"))
    assert base["settings"]["vae_encoder"] == "missing" and "teacher" in base and "student_stage2" in base
    for i, w in ((0, 0.0), (1, 0.5)):
        ck = torch.load(run / f"v{i}" / "checkpoint.pt", map_location="cpu")
        assert ck["vae_encoder"] == "refit"
        m = ck["metrics"]
        assert "recovered" in m and m["stage2"]["long_clip_frames"] == 32
        assert (m["stage2"].get("distill") or {}).get("weight", 0.0) == w
        e = json.load(open(run / f"v{i}" / "eval-g4.json"))
        assert e["settings"]["vae_encoder"] == "refit" and "psnr_vs_teacher_db" in e["student_stage2"]["held_out"]["1x"]
        # video by video against its teacher (1x: where the variant's evaluation samples it) and the release
        vt = json.load(open(run / f"v{i}" / "vs-teacher.json"))
        assert vt["base"]["model"] == "teacher" and {r["length"] for r in vt["rows"]} == {"1x"}
        assert all("within_3" in r for r in vt["rows"] if r["metric"] == "motion" and r["ci95"] is not None)
        vb = json.load(open(run / f"v{i}" / "vs-base.json"))
        assert vb["base"]["model"] == vb["new"]["model"] == "student_stage2" and vb["rows"]
        assert "| held_out | 1x | motion |" in open(run / f"v{i}" / "vs-base.txt").read()
    with tarfile.open(tmp_path / "out" / "results.tgz") as t:
        names = set(t.getnames())
    assert {"./base/eval-g4.json", "./v0/eval-g4.json", "./v1/eval-g4.json", "./enc/train.log",
            "./v1/variant.txt", "./pipeline.log", "./v0/vs-base.json", "./v1/vs-teacher.txt"} <= names


def _recovered_release(tmp_path):
    from rehyat.export.onnx_export import export_all
    from rehyat.export.parity import write_fixtures
    from rehyat.export.recover import main as recover_main
    train.run_all(train.preset("tiny"), str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None)
    _, tok, vae, text, teacher, student = train.load_checkpoint(str(tmp_path / "a" / "checkpoint.pt"))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # one training step leaves equal-valued weights, which the exporter merges
        for m in (vae, text, teacher, student):
            for t in m.parameters():
                t.add_(torch.randn(t.shape, generator=g) * 0.05)
    rel = str(tmp_path / "release")
    export_all(rel, tok, vae, text, teacher, student)
    write_fixtures(os.path.join(rel, "parity"), tok, vae, text, teacher, student)
    recover_main(["--model", rel, "--preset", "tiny", "--out", str(tmp_path / "rec.pt")])
    return str(tmp_path / "rec.pt")


def test_gpu_refit_variants_runs_trajectory_variants_without_the_encoder_and_queues_past_per_gpu(tmp_path):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "out"), "RUN_DIR": str(tmp_path / "run"),
           "CK": _recovered_release(tmp_path), "PRESET": "tiny", "ENCODER_S": "0", "BASE_EVAL": "0",
           "TRAJ_PROMPTS": "2", "VARIANTS": "tt=traj:teacher ts=traj:student",
           # no teacher sampled (its evaluation elsewhere): the variants get no vs-teacher, and that is no failure
           "EVAL_ARGS": "--n 2 --n-long 1 --lengths 1 --teacher-lengths="}
    script = os.path.join(REPO, "training", "scripts", "gpu_refit_variants.sh")
    for verb in (["start"], ["poll", "500"]):
        r = subprocess.run(["bash", script, *verb], env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "DONE: 0" in r.stdout, r.stdout[-3000:]
    run = tmp_path / "run"
    assert not (run / "enc" / "checkpoint.pt").exists() and not (run / "base" / "eval-g4.json").exists()
    for i, who in ((0, "teacher"), (1, "student")):
        ck = torch.load(run / f"v{i}" / "checkpoint.pt", map_location="cpu")
        assert ck["vae_encoder"] == "missing"  # nothing was encoded
        m = ck["metrics"]["stage2"]
        assert m["trajectories"]["sampler"] == who and m["trajectories"]["prompts"] == 2
        assert "long_clip_frames" not in m  # long clips need the encoder
        e = json.load(open(run / f"v{i}" / "eval-g4.json"))
        assert "student_stage2" in e and "teacher" not in e
        assert not (run / f"v{i}" / "vs-teacher.json").exists() and not (run / f"v{i}" / "vs-base.json").exists()
    # one GPU, trajectory variants, so PER_GPU defaults to 1: the second starts only once the first is done
    pipeline = open(run / "pipeline.log").read()
    assert "(at most 1 per GPU at once)" in pipeline
    assert "v1 (ts): no teacher sampled (EVAL_ARGS), no vs-teacher" in pipeline
    log = [s for s in pipeline.splitlines() if s.startswith("[refit] v") and not s.startswith("[refit] variants")
           and "no vs-teacher" not in s]
    assert [s.split(" (")[0] + (" starts" if "starts" in s else " done") for s in log] == \
        ["[refit] v0 starts", "[refit] v0 done", "[refit] v1 starts", "[refit] v1 done"], log


def test_gpu_refit_variants_refuses_a_bad_variant_before_training(tmp_path):
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"never read")
    for i, (variants, enc, msg) in enumerate((("x=traj:nobody", "150", "bad variant spec: traj:nobody"),
                                              ("x=traj:student:lots", "150", "bad variant spec: traj:student:lots"),
                                              ("x=traj:student:3:big", "150", "bad variant spec: traj:student:3:big"),
                                              ("kd=1", "0", "needs the encoder refit"),
                                              ("x=traj:student:3", "0", "needs the encoder refit"))):
        run = tmp_path / f"run{i}"
        env = {**os.environ, "OUT": str(tmp_path / "out"), "RUN_DIR": str(run), "CK": str(ck),
               "ENCODER_S": enc, "VARIANTS": variants}
        script = os.path.join(REPO, "training", "scripts", "gpu_refit_variants.sh")
        for verb in (["start"], ["poll", "60"]):
            r = subprocess.run(["bash", script, *verb], env=env, capture_output=True, text=True, timeout=120)
        assert "DONE: 2" in r.stdout, r.stdout
        assert msg in open(run / "pipeline.log").read()
        assert not (run / "v0").exists()


def test_gpu_refit_variants_refuses_two_trajectory_runs_per_80gb_gpu_before_training(tmp_path):
    # two trajectory variants side by side ran an H100 out of memory while both sampled: the job
    # must refuse PER_GPU=2 there at once rather than spend device time on a run that cannot finish
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"never read")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    smi = bin_ / "nvidia-smi"   # a test double of the driver's tool: one 80 GB GPU
    smi.write_text('#!/bin/sh\ncase "$*" in *-L*) echo "GPU 0: NVIDIA H100 80GB HBM3";; *) echo 81559;; esac\n')
    smi.chmod(0o755)
    run = tmp_path / "run"
    env = {**os.environ, "PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}", "OUT": str(tmp_path / "out"),
           "RUN_DIR": str(run), "CK": str(ck), "PER_GPU": "2", "VARIANTS": "a=traj:student:3 b=traj:student:3:1"}
    script = os.path.join(REPO, "training", "scripts", "gpu_refit_variants.sh")
    for verb in (["start"], ["poll", "60"]):
        r = subprocess.run(["bash", script, *verb], env=env, capture_output=True, text=True, timeout=120)
    assert "DONE: 2" in r.stdout, r.stdout
    assert "use PER_GPU=1" in open(run / "pipeline.log").read()
    assert not (run / "enc" / "train.log").exists() and not (run / "v0").exists()


def test_gpu_refit_variants_turns_each_spec_into_its_training_flags():
    script = os.path.join(REPO, "training", "scripts", "gpu_refit_variants.sh")

    def flags(spec, **env):
        r = subprocess.run(["bash", "-c", f'source <(sed -n "/^variant_flags()/,/^}}/p" {script}); variant_flags "$0"', spec],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert flags("traj:student:3", TRAJ_PROMPTS="2048") == \
        "--stage2-traj student --stage2-long 512:2048 --stage2-distill 3 --stage2-traj-prompts 2048".split()
    # traj:WHO:W:A: the area term on the long clips beside the teacher's velocity
    assert flags("traj:student:3:0.5") == \
        "--stage2-traj student --stage2-long 512:2048 --stage2-distill 3 --stage2-area 0.5".split()
    # traj:WHO:W:A:S: the self-consistency term on the student's long trajectories (A = 0: no area term)
    assert flags("traj:student:3:0:5", SELF_PROMPTS="128") == ("--stage2-traj student --stage2-long 512:2048 "
                                                             "--stage2-distill 3 --stage2-self 5 --stage2-self-prompts 128").split()
    assert flags("traj:student:3:10:5") == \
        "--stage2-traj student --stage2-long 512:2048 --stage2-distill 3 --stage2-area 10 --stage2-self 5".split()
    for bad in ("traj:student:3:1:x", "traj:student:3:1:"):
        r = subprocess.run(["bash", "-c", f'source <(sed -n "/^variant_flags()/,/^}}/p" {script}); variant_flags "$0"', bad],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "bad variant spec" in r.stderr, bad
    assert flags("0.5") == "--stage2-distill 0.5 --stage2-long 512:2048".split()


def test_gpu_refit_variants_poll_says_at_once_when_the_machine_holds_no_run(tmp_path):
    # a device machine given back between two calls takes the background job with it: the next
    # call's poll must say so and exit, not wait out its seconds for a DONE that cannot come
    env = {**os.environ, "OUT": str(tmp_path / "out"), "RUN_DIR": str(tmp_path / "never-started")}
    script = os.path.join(REPO, "training", "scripts", "gpu_refit_variants.sh")
    r = subprocess.run(["bash", script, "poll", "300"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "not started on this machine" in r.stdout
