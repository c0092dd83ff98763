"""Stage 2 on sampling trajectories (--stage2-traj): the cache replays the service's sampler and
keeps the teacher's velocities as targets; tiny preset, on the CPU."""
import copy

import numpy as np
import pytest
import torch

from rehyat import train
from rehyat.dit import DiT
from rehyat.sampling import sample_parallel, schedule
from rehyat.text import TextEncoder, Tokenizer
from rehyat.vae import CausalVideoVAE

CPU = torch.device("cpu")


def tiny_stage2(tmp_path, steps, **fields):
    """Train a tiny VAE and teacher (seed 0), then stage 1 and `steps` stage-2 steps of a tiny student with
    the preset's `fields` set (seed 2); returns (the stage-2 preset, the metrics)."""
    train.run_all(train.preset("tiny"), str(tmp_path / "a"), CPU, seed=0, log=lambda s: None,
                  stages=("vae", "teacher"))
    p = train.preset("tiny")
    for k, v in fields.items():
        assert hasattr(p, k), k
        setattr(p, k, v)
    p.max_steps["stage2"] = steps
    return p, train.run_all(p, str(tmp_path / "b"), CPU, seed=2, log=lambda s: None,
                            stages=("stage1", "stage2"), resume=str(tmp_path / "a" / "checkpoint.pt"))


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    p = train.preset("tiny")
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    vae, text, teacher = CausalVideoVAE(p.vae), TextEncoder(p.text), DiT(copy.deepcopy(p.dit))
    student = copy.deepcopy(teacher)
    student.cfg = copy.deepcopy(teacher.cfg)
    student.to_student(p.tc, p.to)
    with torch.no_grad():  # zero-initialised heads would make every velocity 0
        for m in (vae, text, teacher, student):
            for t in m.parameters():
                t.add_(torch.randn_like(t) * 0.05)
    for m in (vae, text, teacher, student):
        m.eval()
    return p, tok, vae, text, teacher, student


def _cache(models, sampler, n=3, **kw):
    p, tok, vae, text, teacher, student = models
    p = copy.deepcopy(p)
    for k, v in kw.items():
        setattr(p, k, v)
    torch.manual_seed(7)
    c = train.TrajectoryCache({"teacher": teacher, "student": student}[sampler], teacher, text, tok, vae, p, CPU,
                              np.random.default_rng(3), n, batch=2)
    return p, c


def test_teacher_trajectories_replay_the_services_sampler_and_keep_the_teachers_velocities(models):
    p, tok, vae, text, teacher, _ = models
    p, c = _cache(models, "teacher", n=3)
    steps = p.stage2_traj_steps
    assert len(c) == 3 and c.x.shape[:2] == (3, steps) and c.x.shape[3] == p.frames // 4
    ts = schedule(steps, p.stage2_traj_shift)
    assert c.ts == ts
    with torch.no_grad():
        ctx = text(tok.batch(c.prompts))
        unc = text(tok.batch([""] * 3))
        # the first state is the noise, and the sampler from it reaches what the last step gives
        x_end = sample_parallel(teacher, ctx, unc, c.x[:, 0], steps=steps, shift=p.stage2_traj_shift,
                                guidance=p.stage2_traj_guidance)
        last = c.x[:, -1] + (ts[-1] - ts[-2]) * (c.vu[:, -1] + p.stage2_traj_guidance * (c.vc[:, -1] - c.vu[:, -1]))
        assert torch.allclose(last, x_end, atol=1e-4)
        for s in (0, steps // 2, steps - 1):
            tt = torch.full((3,), ts[s])
            assert torch.allclose(c.vc[:, s], teacher(c.x[:, s], tt, ctx), atol=1e-5)
            assert torch.allclose(c.vu[:, s], teacher(c.x[:, s], tt, unc), atol=1e-5)
    assert c.cells is None  # the tiny preset's loss is the plain MSE


def test_student_trajectories_follow_the_student_and_still_target_the_teacher(models):
    p, tok, vae, text, teacher, student = models
    p, c = _cache(models, "student", n=2)
    _, ct = _cache(models, "teacher", n=2)
    assert torch.equal(c.x[:, 0], ct.x[:, 0]) and c.prompts == ct.prompts  # same noise, same prompts
    assert not torch.allclose(c.x[:, -1], ct.x[:, -1], atol=1e-3)  # the student goes elsewhere
    ts, g = c.ts, p.stage2_traj_guidance
    with torch.no_grad():
        ctx2 = torch.cat([text(tok.batch(c.prompts)), text(tok.batch([""] * 2))])
        for s in (1, p.stage2_traj_steps - 1):
            tt = torch.full((4,), ts[s])
            xx = torch.cat([c.x[:, s - 1]] * 2)
            vs = student(xx, torch.full((4,), ts[s - 1]), ctx2)
            step = c.x[:, s - 1] + (ts[s] - ts[s - 1]) * (vs[2:] + g * (vs[:2] - vs[2:]))
            assert torch.allclose(c.x[:, s], step, atol=1e-5)
            vt = teacher(torch.cat([c.x[:, s]] * 2), tt, ctx2)
            assert torch.allclose(c.vc[:, s], vt[:2], atol=1e-5) and torch.allclose(c.vu[:, s], vt[2:], atol=1e-5)


def test_draws_pair_each_state_with_the_velocity_of_its_own_prompt_or_the_unconditional_one(models):
    _, c = _cache(models, "teacher", n=3)
    rng = np.random.default_rng(0)
    x, t, prompts, target, cells = c.draw(rng, 64, drop=0.5)
    assert x.shape == target.shape and t.shape == (64,) and cells is None
    n_unc = 0
    for j in range(64):
        i = next(i for i in range(len(c)) for s in range(len(c.ts) - 1)
                 if torch.equal(c.x[i, s], x[j]) and abs(c.ts[s] - float(t[j])) < 1e-6)
        s = next(s for s in range(len(c.ts) - 1) if torch.equal(c.x[i, s], x[j]))
        if prompts[j] == "":
            n_unc += 1
            assert torch.equal(target[j], c.vu[i, s])
        else:
            assert prompts[j] == c.prompts[i] and torch.equal(target[j], c.vc[i, s])
    assert 10 < n_unc < 54


def test_object_weighted_trajectories_mark_cells_from_the_decoded_final_latent(models):
    p, tok, vae, *_ = models
    p, c = _cache(models, "teacher", n=2, fm_object_weight=4.0)
    px, _ = vae.decode(c.x[:, -1] + (c.ts[-1] - c.ts[-2]) * (c.vu[:, -1] + p.stage2_traj_guidance
                                                               * (c.vc[:, -1] - c.vu[:, -1])))
    want = train.object_cells(px, c.x.shape[3:])
    assert c.cells.shape == (2, 1) + tuple(c.x.shape[3:]) and torch.equal(c.cells, want)
    assert c.draw(np.random.default_rng(1), 4)[4].shape == (4, 1) + tuple(c.x.shape[3:])


def test_cells_are_decoded_a_few_videos_at_a_time_with_the_same_result(models, monkeypatch):
    # decoding a whole sampling batch at once held ~35 GB for long4 (256 videos): the cache decodes
    # DECODE_BATCH videos at a time, and the cells must not depend on it
    whole = _cache(models, "teacher", n=3, fm_object_weight=4.0)[1].cells
    monkeypatch.setattr(train.TrajectoryCache, "DECODE_BATCH", 1)
    p, tok, vae, *_ = models
    seen = []
    real = vae.decode
    monkeypatch.setattr(vae, "decode", lambda z, caches=None: (seen.append(z.shape[0]), real(z, caches))[1])
    one = _cache(models, "teacher", n=3, fm_object_weight=4.0)[1].cells
    assert seen == [1, 1, 1] and torch.equal(one, whole)


def test_stage2_on_trajectories_trains_and_records_where_its_data_came_from(tmp_path):
    p2, m = tiny_stage2(tmp_path, 2, stage2_traj="student", stage2_traj_prompts=2, stage2_traj_steps=3)
    r = m["stage2"]
    assert r["steps"] == 2 and np.isfinite(r["final_loss_ema"])
    assert r["trajectories"]["sampler"] == "student" and r["trajectories"]["prompts"] == 2
    # teacher-length clips, as many tokens per step as the preset's short clips
    assert r["clip_frames"] == p2.frames and r["batch"] == p2.stage2_batch * p2.stage2_frames // p2.frames
    assert m["stage2_trajectories"]["sampler"] == "student"


def test_trajectories_with_long_clips_anchor_the_long_clips_on_the_teacher(tmp_path):
    # --stage2-traj with --stage2-long and --stage2-distill W: the short steps are trajectory steps,
    # the long (odd) steps add W x the teacher's velocity on the long clip's first teacher-length frames
    p2, m = tiny_stage2(tmp_path, 2, stage2_traj="student", stage2_traj_prompts=2, stage2_traj_steps=3,
                        stage2_long_frames=16, stage2_long_cache=2, stage2_distill=3.0)
    r = m["stage2"]
    assert r["steps"] == 2 and r["long_clip_frames"] == 16 and r["trajectories"]["sampler"] == "student"
    d = r["distill"]
    # step 1, the one long step, took the teacher term (it is the measured step); before the long
    # steps took it, a trajectory run never measured one
    assert d["weight"] == 3.0 and d["latent_frames"] == 2 and d["measured_steps"] == 1
    assert d["mean_fm_loss"] > 0


def test_trajectory_flags_are_checked():
    with pytest.raises(SystemExit, match="it needs --stage2-long"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-traj", "teacher", "--stage2-distill", "1"])
    with pytest.raises(SystemExit, match="--stage2-traj-prompts"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-traj", "teacher", "--stage2-traj-prompts", "0"])
    with pytest.raises(SystemExit):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-traj", "nobody"])
