"""Data-parallel training on CPU: 2 ranks, gloo, tiny preset, started by rehyat.launch (torchrun's
environment; the Debian torch 1.13 torchrun fails under Python 3.11). Every launch has a timeout, so a
deadlock fails the test instead of hanging CI."""
import json
import os
import subprocess
import sys

import pytest
import torch

from rehyat import ddp, train

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(TRAINING, "tests")
TIMEOUT = 150

pytestmark = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch.distributed with gloo is needed")


def _launch(module, *args, nproc=2):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([TRAINING, TESTS]))
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "rehyat.launch", "--nproc", str(nproc), "--timeout", str(TIMEOUT),
           "-m", module, *[str(a) for a in args]]
    return subprocess.run(cmd, cwd=TRAINING, env=env, capture_output=True, text=True, timeout=TIMEOUT + 30)


def _ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def test_two_ranks_train_the_teacher_then_resume_the_student_stages(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    r = _launch("rehyat.train", "--preset", "tiny", "--out", a, "--stages", "vae,teacher",
                "--max-steps", "vae=3", "--max-steps", "teacher=3")
    _ok(r)
    m = json.loads((a / "metrics.json").read_text())
    assert m["data_parallel"]["world_size"] == 2
    assert m["data_parallel"]["lr_scale"] == pytest.approx(2 ** 0.5, abs=1e-4)
    assert m["latent_cache"]["per_rank"] == train.preset("tiny").latent_cache // 2
    for stage in ("vae", "teacher"):
        assert m[stage]["steps"] == 3 and m[stage]["ranks"] == 2, stage
        c = m[stage]["rank_checksums"]
        assert len(c) == 2 and c[0] == c[1], (stage, c)  # DDP kept the ranks' weights identical
    assert sorted(os.listdir(a)) == ["checkpoint.pt", "metrics.json"]  # rank 0 alone wrote
    ck, *_ = train.load_checkpoint(str(a / "checkpoint.pt"))
    assert ck["student"] is None

    r = _launch("rehyat.train", "--preset", "tiny", "--out", b, "--resume", a / "checkpoint.pt", "--seed", "2",
                "--stages", "sweep,stage1,stage2", "--max-steps", "stage2=3")
    _ok(r)
    m2 = json.loads((b / "metrics.json").read_text())
    assert m2["stage1"]["steps"] == 1 and "ranks" not in m2["stage1"]  # rank 0 alone
    assert set(m2["tc_to_sweep"]) == {"Tc1_To0", "Tc2_To1"}
    assert m2["stage2"]["steps"] == 3 and m2["stage2"]["ranks"] == 2
    c = m2["stage2"]["rank_checksums"]
    assert c[0] == c[1], c
    assert len(m2["calls"]) == 2 and m2["teacher"] == m["teacher"]
    _, _, _, _, teacher, student = train.load_checkpoint(str(b / "checkpoint.pt"))
    assert student.cfg.hybrid
    ref = train.load_checkpoint(str(a / "checkpoint.pt"))[4]
    for x, y in zip(teacher.parameters(), ref.parameters()):
        assert torch.equal(x, y)


def test_rank_zero_decides_when_every_rank_stops(tmp_path):
    # rank 0 may train for 1 s, rank 1 for 0 s and no step cap: deciding alone, rank 1 would stop at
    # once and rank 0 would wait forever in its first gradient all-reduce
    r = _launch("ddp_worker", "stop", tmp_path)
    _ok(r)
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["steps"] == r1["steps"] >= 1
    assert r0["rank_checksums"][0] == r0["rank_checksums"][1]  # same steps at the same learning rates


def test_a_compile_failure_on_one_rank_puts_every_rank_back_on_eager(tmp_path):
    r = _launch("ddp_worker", "compile-fail", tmp_path)
    _ok(r)
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["steps"] == r1["steps"] == 3
    assert r0["compiled_calls"] == r1["compiled_calls"] == 1  # the first step only, then eager
    assert r0["rank_checksums"][0] == r0["rank_checksums"][1]


def test_a_failing_rank_stops_the_launch_instead_of_hanging(tmp_path):
    r = _launch("ddp_worker", "crash", tmp_path)
    assert r.returncode not in (0, 124), r.stderr[-2000:]
    assert "rank 1 fails on purpose" in r.stderr


def test_single_process_helpers_are_no_ops():
    assert not ddp.is_on() and ddp.world() == 1 and ddp.rank() == 0 and ddp.is_main()
    assert ddp.broadcast_floats([1.0, 2.5]) == [1.0, 2.5]
    assert ddp.any_true(True) and not ddp.any_true(False)
    assert ddp.share(5) == 5 and ddp.share(0) == 0
    lin = torch.nn.Linear(2, 2)
    assert ddp.rank_checksums(lin) == [f"{ddp.checksum(lin):016x}"]
    assert train.lr_mult(train.preset("tiny")) == 1.0
