"""Stage 2's self-consistency term (--stage2-self, train.SelfConsistency) on the student's own long
sampling trajectories (train.LongTrajectoryCache); tiny preset, on the CPU."""
import math

import numpy as np
import pytest
import torch

from rehyat import train
from rehyat.world import ObjectSpec, Scene, render

from test_area import FrameVAE
from test_trajectories import tiny_stage2

CPU = torch.device("cpu")


def _latent(frames_by_size, motion="still", xs=None):
    """A clip in the FrameVAE's latent space: per latent frame a yellow circle of the given size
    (and x position) on blue; -> (latent [1, 3, T, 64, 64], colours, kinds)."""
    lat = []
    for i, size in enumerate(frames_by_size):
        x = 40.0 if xs is None else xs[i]
        sc = Scene("blue", [ObjectSpec("yellow", "circle", "still", "normal", size, x, 64.0, 0.0)])
        lat.append(render([sc], 1, size=64).permute(0, 4, 1, 2, 3).mul(2).sub(1))
    sc = Scene("blue", [ObjectSpec("yellow", "circle", motion, "normal", "medium", 40.0, 64.0, 0.0)])
    return torch.cat(lat, dim=2), train.object_colors([sc]), train.object_kinds([sc])


def _term_of(x0_hat, colors, kinds, t=0.25, seed=0):
    """The term at a state whose velocity predicts exactly ``x0_hat``; -> (value, velocity)."""
    t = torch.tensor([t])
    xt = (1 - t) * x0_hat + t * torch.randn_like(x0_hat)
    v = ((xt - x0_hat) / t).requires_grad_(True)
    sc = train.SelfConsistency(FrameVAE(), 1.0, 2, 2, eps=0.0)
    return sc, sc.loss(v, xt, t, colors, kinds, np.random.default_rng(seed), measure=True), v


def test_an_object_that_keeps_its_size_and_place_costs_nothing():
    x0, colors, kinds = _latent(["medium"] * 6)
    for k in (train.SELF_KEEP, train.SELF_NO_GROWTH, train.SELF_STILL):
        _, out, _ = _term_of(x0, colors, torch.full_like(kinds, k))
        assert float(out) == pytest.approx(0.0, abs=1e-5)


def test_a_still_object_that_grows_pays_the_log_area_ratio_weighted_by_one_minus_t():
    # reference window (latent frames 0-1) medium; every later window large
    x0, colors, kinds = _latent(["medium"] * 2 + ["large"] * 4)
    assert int(kinds[0, 0]) == train.SELF_STILL and int(kinds[0, 1]) == train.SELF_SKIP
    sc, out, v = _term_of(x0, colors, kinds)
    assert float(out) == pytest.approx(0.75 * 2 * math.log(20 / 14), rel=0.06)
    out.backward()
    assert float(v.grad.abs().sum()) > 0          # the gradient reaches the velocity
    m = sc.metrics()
    assert m["measured_steps"] == 1 and m["mean_travel_loss"] == pytest.approx(0.0, abs=1e-3)
    assert m["mean_area_loss"] == pytest.approx(m["mean_self_loss"], rel=1e-3)


def test_a_translating_object_pays_for_growth_only_and_grow_shrink_pay_nothing():
    grows, colors, _ = _latent(["medium"] * 2 + ["large"] * 4, motion="right")
    shrinks, _, kinds = _latent(["medium"] * 2 + ["small"] * 4, motion="right")
    assert int(kinds[0, 0]) == train.SELF_NO_GROWTH
    assert float(_term_of(grows, colors, kinds)[1]) == pytest.approx(0.75 * 2 * math.log(20 / 14), rel=0.06)
    assert float(_term_of(shrinks, colors, kinds)[1]) == pytest.approx(0.0, abs=1e-5)  # the borders clip
    # a bouncing or orbiting object may not shrink either
    _, _, keep = _latent(["medium"], motion="orbit")
    a = train.AreaMatch(FrameVAE(), 1.0, 2, 2).soft_areas(shrinks)[0, int(colors[0, 0])]  # per latent frame
    assert float(_term_of(shrinks, colors, keep)[1]) == pytest.approx(0.75 * math.log(a[0] / a[-1]), rel=0.02)
    _, _, sawtooth = _latent(["medium"], motion="grow")
    assert int(sawtooth[0, 0]) == train.SELF_SKIP
    assert float(_term_of(grows, colors, sawtooth)[1]) == 0.0


def test_a_still_object_that_wanders_pays_its_travel_in_radii():
    # same size (medium: radius 7 px in the 64 px frame), moved 7 px to the right: one radius
    x0, colors, kinds = _latent(["medium"] * 6, xs=[40.0] * 2 + [54.0] * 4)
    sc, out, _ = _term_of(x0, colors, kinds)
    r = math.sqrt(math.pi) * 7.0 / 64        # sqrt(area) of the radius-7 circle in frame units
    assert float(out) == pytest.approx(0.75 * (7.0 / 64) / r, rel=0.08)
    assert sc.metrics()["mean_area_loss"] == pytest.approx(0.0, abs=0.01)
    # a bouncing object moves by design: no travel term
    _, _, keep = _latent(["medium"], motion="bounce")
    assert float(_term_of(x0, colors, keep)[1]) == pytest.approx(0.0, abs=0.01)


def test_an_object_missing_from_the_reference_counts_nothing_and_short_clips_are_refused():
    x0, colors, kinds = _latent(["medium"] * 6)
    assert float(_term_of(x0, torch.full_like(colors, -1), kinds)[1]) == 0.0
    with pytest.raises(ValueError, match="at least 4 latent frames"):
        _term_of(x0[:, :, :3], colors, kinds)


def test_the_long_trajectory_cache_keeps_every_state_with_its_scene():
    p = train.preset("tiny")
    from rehyat.dit import DiT
    from rehyat.text import TextEncoder, Tokenizer
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    p.stage2_traj_steps = 3
    student = DiT(p.dit)
    student.to_student(p.tc, p.to)
    c = train.LongTrajectoryCache(student.eval(), TextEncoder(p.text).eval(), tok, p, CPU, np.random.default_rng(0),
                                  n=3, frames=16, batch=2)
    assert len(c) == 3 and c.x.shape == (3, 3, p.dit.latent_channels, 4, p.dit.latent_height, p.dit.latent_width)
    xt, t, prompts, colors, kinds = c.draw(np.random.default_rng(1), 5)
    assert xt.shape[0] == 5 and len(prompts) == 5 and all(prompts)
    assert all(any(abs(u - w) < 1e-6 for w in c.ts[1:-1]) for u in t.tolist())  # t < 1: the term's weight is 1 - t
    assert colors.shape == kinds.shape == (5, 2)
    # the first state is pure noise, and each scene's colours and kinds are its objects'
    assert float(c.x[:, 0].std()) == pytest.approx(1.0, abs=0.2)
    assert torch.equal(c.colors, train.object_colors(c.scenes)) and torch.equal(c.kinds, train.object_kinds(c.scenes))


def test_stage2_with_the_self_consistency_term(tmp_path):
    # 4 stage-2 steps: 0, 2 trajectories; 1 a long clip; 3 a long trajectory
    _, m = tiny_stage2(tmp_path, 4, stage2_traj="student", stage2_traj_prompts=2, stage2_traj_steps=3,
                       stage2_long_frames=16, stage2_long_cache=2, stage2_distill=3.0,
                       stage2_self=2.0, stage2_self_prompts=2, stage2_area_frames=2)
    r = m["stage2"]["self_consistency"]
    assert m["stage2"]["steps"] == 4 and r["weight"] == 2.0 and r["measured_steps"] == 1 and r["prompts"] == 2
    # (the tiny untrained decoder makes the value meaningless; the arithmetic is tested above)
    assert math.isfinite(r["mean_self_loss"]) and r["mean_self_loss"] >= 0
    assert m["stage2_long_trajectories"]["prompts"] == 2 and m["stage2_long_trajectories"]["frames"] == 16
    assert "area" not in m["stage2"]   # the self term alone: no area term was asked for


def test_stage2_self_flags_are_checked():
    with pytest.raises(SystemExit, match="it needs --stage2-long"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-self", "1"])
    with pytest.raises(SystemExit, match="--stage2-self: expected"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-self", "-1"])
    with pytest.raises(SystemExit, match="at least 32 frames"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-long", "16:2", "--stage2-self", "1"])
    with pytest.raises(SystemExit, match="--stage2-self-prompts"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-self-prompts", "0"])
