import numpy as np
import pytest
import torch

from rehyat.world import (HELDOUT_COLOR_SHAPE, HELDOUT_SHAPE_MOTION, PromptError, Scene,
                          ObjectSpec, describe, is_heldout, parse_prompt, render, sample_scene)


def key(s):
    return (s.background, [(o.color, o.shape, o.motion, o.speed, o.size) for o in s.objects])


def test_phrasing_roundtrips_through_parser():
    rng = np.random.default_rng(0)
    for _ in range(1500):
        s = sample_scene(rng, "any")
        assert key(parse_prompt(describe(s, rng))) == key(s)


def test_issue_examples_parse():
    s = parse_prompt("A small red circle slowly drifts left over a blue background")
    assert key(s) == ("blue", [("red", "circle", "left", "slow", "small")])
    s = parse_prompt("a red circle and a blue square")
    assert [(o.color, o.shape) for o in s.objects] == [("red", "circle"), ("blue", "square")]
    with pytest.raises(PromptError):
        parse_prompt("nothing to see here")


def test_heldout_split():
    rng = np.random.default_rng(1)
    for _ in range(300):
        assert not is_heldout(sample_scene(rng, "exclude"))
        assert is_heldout(sample_scene(rng, "only"))
    assert len(HELDOUT_COLOR_SHAPE) >= 3 and len(HELDOUT_SHAPE_MOTION) >= 3


def test_render_deterministic_and_sane():
    rng = np.random.default_rng(2)
    scenes = [sample_scene(rng) for _ in range(3)]
    a = render(scenes, 6)
    b = render(scenes, 6)
    assert a.shape == (3, 6, 128, 128, 3)
    assert torch.equal(a, b) and bool(torch.isfinite(a).all())
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    # rendering frames [3, 6) directly equals the tail of a longer render
    c = render(scenes, 3, frame_offset=3)
    assert torch.allclose(a[:, 3:], c, atol=1e-5)


def test_motion_moves_object():
    s = Scene("black", [ObjectSpec("white", "circle", "right", "normal", "medium", 40, 64, 0.0)])
    fr = render([s], 17)[0]
    def cx(f):
        m = f[..., 0] > 0.5
        xs = torch.nonzero(m)[:, 1].float()
        return xs.mean().item()
    assert cx(fr[16]) - cx(fr[0]) == pytest.approx(20.0, abs=1.0)  # 20 px/s at normal speed
