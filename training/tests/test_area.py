"""Stage 2's area term (--stage2-area, train.AreaMatch): the objects' soft areas in the decoded
predicted clean video against the decoded clip's; tiny preset, on the CPU."""
import math

import numpy as np
import pytest
import torch

from rehyat import train
from rehyat.world import COLORS, ObjectSpec, Scene, render

from test_trajectories import tiny_stage2

CPU = torch.device("cpu")


class FrameVAE:
    """Unit-test double of the VAE's decoder: a 'latent' frame is 4 pixel frames' RGB itself, so a
    test can place known videos in latent space (causal warm-up frames decode like any other)."""

    def decode(self, z, caches=None):
        return z[:, :3].repeat_interleave(4, dim=2), None


def _video(size: str, frames=16, motion="right"):
    sc = Scene("blue", [ObjectSpec("yellow", "circle", motion, "normal", size, 40.0, 64.0, 0.0)])
    x = render([sc], frames, size=64).permute(0, 4, 1, 2, 3).mul(2).sub(1)  # [1, 3, F, 64, 64]
    return sc, x


def test_soft_areas_measure_each_colour_like_the_renderers_masks():
    am = train.AreaMatch(FrameVAE(), 1.0, 2, 2)
    sc, x = _video("medium")
    a = am.soft_areas(x)  # [1, K, F]
    yellow, blue = int(train.object_colors([sc])[0, 0]), list(COLORS).index("blue")
    assert int(train.object_colors([sc])[0, 1]) == -1
    r = 14.0 * 64 / 128
    want = math.pi * r * r / (64 * 64)
    assert torch.allclose(a[0, yellow], torch.full_like(a[0, yellow], want), rtol=0.1)
    assert torch.allclose(a[0, yellow] + a[0, blue], torch.ones_like(a[0, yellow]), atol=0.01)
    _, xl = _video("large")
    assert float(am.soft_areas(xl)[0, yellow].mean() / a[0, yellow].mean()) == pytest.approx((20 / 14) ** 2, rel=0.05)


def test_the_term_is_the_log_area_ratio_weighted_by_one_minus_t_and_reaches_the_velocity():
    sc, x = _video("medium")
    _, big = _video("large")
    colors = train.object_colors([sc])
    x0 = x[:, :, ::4]                 # 4 latent frames of the double's space
    x0_hat = big[:, :, ::4]
    t = torch.tensor([0.25])
    eps = torch.randn_like(x0)
    xt = (1 - t) * x0 + t * eps
    v = ((xt - x0_hat) / t).requires_grad_(True)   # the velocity whose predicted x0 is the large object
    am = train.AreaMatch(FrameVAE(), 1.0, 2, 2, eps=0.0)
    out = am.loss(v, xt, x0, t, colors, np.random.default_rng(0), measure=True)
    assert float(out) == pytest.approx(0.75 * 2 * math.log(20 / 14), rel=0.06)
    out.backward()
    assert v.grad is not None and float(v.grad.abs().sum()) > 0
    assert am.metrics()["measured_steps"] == 1
    # the exact velocity: no area error; an absent object (-1) counts nothing
    exact = am.loss((xt - x0) / t, xt, x0, t, colors, np.random.default_rng(0))
    assert float(exact) == pytest.approx(0.0, abs=1e-6)
    assert float(am.loss(v, xt, x0, t, torch.full_like(colors, -1), np.random.default_rng(0))) == 0.0


def test_the_window_is_whole_chunks_and_is_checked():
    with pytest.raises(ValueError, match="whole chunks"):
        train.AreaMatch(FrameVAE(), 1.0, 3, 2)


def test_stage2_on_trajectories_with_the_area_term_on_long_clips(tmp_path):
    _, m = tiny_stage2(tmp_path, 2, stage2_traj="student", stage2_traj_prompts=2, stage2_traj_steps=3,
                       stage2_long_frames=16, stage2_long_cache=2, stage2_distill=3.0, stage2_area=0.5,
                       stage2_area_frames=2)
    r = m["stage2"]
    assert r["steps"] == 2 and r["area"]["weight"] == 0.5 and r["area"]["measured_steps"] == 1
    # (the tiny untrained decoder barely depends on its input, so the term's value says nothing here;
    # its arithmetic is the test above)
    assert math.isfinite(r["area"]["mean_area_loss"]) and r["area"]["mean_area_loss"] >= 0
    # the term is recorded apart from flow matching: the distillation's fm mean is flow matching alone
    assert r["distill"]["measured_steps"] == 1


def test_stage2_area_without_encoded_clips_is_refused():
    with pytest.raises(SystemExit, match="it needs --stage2-long"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-traj", "student", "--stage2-area", "1"])
    with pytest.raises(SystemExit, match="--stage2-area"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-area", "-1"])


def test_stage2_with_the_area_term_but_no_encoded_clips_says_so():
    # without trajectories and without a latent cache the short steps render fresh videos, which keep
    # no scenes' colours, and there are no long clips: the term has nothing to run on
    import copy
    from rehyat.dit import DiT
    from rehyat.text import TextEncoder, Tokenizer
    from rehyat.vae import CausalVideoVAE
    p = train.preset("tiny")
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    p.stage2_area = 1.0
    student = DiT(copy.deepcopy(p.dit))
    student.to_student(p.tc, p.to)
    with pytest.raises(ValueError, match="stage2_area needs encoded clips"):
        train.finetune_stage2(student, TextEncoder(p.text), CausalVideoVAE(p.vae), tok, p, CPU,
                              np.random.default_rng(0), log=lambda s: None, cache=None, long_cache=None)
