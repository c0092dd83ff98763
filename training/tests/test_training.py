import math
import pytest
import numpy as np
import torch
import torch.nn.functional as F

from rehyat import train


def test_every_stage_runs_one_step_on_tiny_config(tmp_path):
    p = train.preset("tiny")
    m = train.run_all(p, str(tmp_path), torch.device("cpu"), seed=0, log=lambda s: None)
    for stage in ("vae", "teacher", "stage1", "stage2"):
        assert m[stage]["steps"] == 1, stage
        assert np.isfinite(m[stage]["final_loss_ema"]), stage
    assert len(m["stage1"]["block_l1_after"]) == p.dit.layers
    ck, tok, vae, text, teacher, student = train.load_checkpoint(str(tmp_path / "checkpoint.pt"))
    assert student.cfg.hybrid and not teacher.cfg.hybrid
    assert ck["metrics"]["stage2"]["steps"] == 1


def test_eval_runs_on_tiny_models(tmp_path):
    from rehyat.eval.run import eval_models
    p = train.preset("tiny")
    train.run_all(p, str(tmp_path), torch.device("cpu"), seed=0, log=lambda s: None)
    _, tok, vae, text, teacher, student = train.load_checkpoint(str(tmp_path / "checkpoint.pt"))
    res = eval_models(tok, vae, text, teacher, student, student, torch.device("cpu"), log=lambda s: None,
                      preset_name="tiny", n=2, lengths=(1, 4), teacher_lengths=(1,), n_long=1)
    r = res["student_stage2"]["held_out"]["1x"]
    for k in ("color", "shape", "background", "motion", "flicker", "boundary_ratio", "psnr_vs_teacher_db", "area_drift"):
        assert k in r
    assert res["ground_truth"]["in_distribution"]["background"] >= 50.0
    assert set(res["vae_reconstruction"]) == {"in_distribution", "held_out"}
    assert "motion" in res["vae_reconstruction"]["held_out"]
    # the detector's ceiling at the longer lengths, on the same prompts the models get there
    assert set(res["ground_truth_long"]["held_out"]) == {"4x"} and "motion" in res["ground_truth_long"]["held_out"]["4x"]
    # every row keeps each video's score, in the prompts' order, and the standard error of its mean
    for length, n in (("1x", 2), ("4x", 1)):
        r = res["student_stage2"]["held_out"][length]
        assert set(r["per_video"]) >= {"color", "shape", "background", "motion", "area_drift", "flicker", "boundary_ratio"}
        assert all(len(v) == n for v in r["per_video"].values())
        have = [x for x in r["per_video"]["motion"] if x is not None]
        assert r["motion"] == pytest.approx(sum(have) / len(have), abs=1e-3)
        assert set(r["stderr"]) == set(r["per_video"])
    assert res["settings"]["noise_seed"] == 555
    # the same file, teacher against student, video by video (rehyat.eval.compare)
    from rehyat.eval.compare import compare
    c = compare(res, res, "student_stage2", "teacher", within=3)
    assert {(r["set"], r["length"]) for r in c["rows"]} == {("in_distribution", "1x"), ("held_out", "1x")}
    same = compare(res, res)
    assert all(r["diff"] in (0, None) and r["verdict"] in ("within noise", "no videos") for r in same["rows"])


def test_a_recipe_split_over_calls_resumes_from_the_teacher_checkpoint(tmp_path):
    p = train.preset("tiny")
    m1 = train.run_all(p, str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None,
                       stages=("vae", "teacher"))
    assert "stage2" not in m1
    ck, _, _, _, teacher, student = train.load_checkpoint(str(tmp_path / "a" / "checkpoint.pt"))
    assert student is None and ck["student"] is None
    p2 = train.preset("tiny")
    m2 = train.run_all(p2, str(tmp_path / "b"), torch.device("cpu"), seed=1, log=lambda s: None,
                       stages=("teacher",), resume=str(tmp_path / "a" / "checkpoint.pt"))
    assert m2["teacher"]["steps"] == 2 and len(m2["teacher"]["segments"]) == 2
    assert m2["vae"] == m1["vae"]  # carried over from the first call
    p3 = train.preset("tiny")
    m3 = train.run_all(p3, str(tmp_path / "c"), torch.device("cpu"), seed=2, log=lambda s: None,
                       stages=("stage1", "stage2"), resume=str(tmp_path / "b" / "checkpoint.pt"))
    assert m3["stage2"]["steps"] == 1 and m3["stage2"]["clip_frames"] == p3.stage2_frames
    assert len(m3["calls"]) == 3
    _, _, _, _, teacher3, student3 = train.load_checkpoint(str(tmp_path / "c" / "checkpoint.pt"))
    assert student3.cfg.hybrid
    # the teacher is the resumed one, untouched by the student stages
    ref = train.load_checkpoint(str(tmp_path / "b" / "checkpoint.pt"))[4]
    for a, b in zip(teacher3.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_unknown_stage_or_missing_resume_is_a_clear_error(tmp_path):
    import pytest
    with pytest.raises(ValueError, match="unknown stages"):
        train.run_all(train.preset("tiny"), str(tmp_path), torch.device("cpu"), stages=("teacher", "nope"))
    with pytest.raises(ValueError, match="must start with vae"):
        train.run_all(train.preset("tiny"), str(tmp_path), torch.device("cpu"), stages=("teacher",))


def test_ema_keeps_an_average_of_the_weights():
    lin = torch.nn.Linear(2, 2)
    ema = train.EMA(lin, 0.5)
    w0 = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update()
    ema.copy_to_module()
    d = min(0.5, 2 / 11)
    assert torch.allclose(lin.weight, w0 + (1 - d) * 1.0)


def test_eval_lengths_count_from_the_teachers_training_clip_for_every_full_size_preset():
    # regression: preset "long" was evaluated at 0.5 s / 2 s / 8 s instead of 2 s / 8 s / 32 s
    from rehyat.eval.run import base_latent_frames
    for name in ("full", "long"):
        assert base_latent_frames(name) * 4 == train.preset(name).frames
    assert base_latent_frames("tiny") * 4 == train.preset("tiny").frames


def test_long3_is_long_plus_the_two_rehyat3_changes_and_long_stays_rehyat2():
    from rehyat.train import preset

    long, long3 = preset("long"), preset("long3")
    assert (long.vae_grad_loss, long.dit.rope_theta) == (0.0, 10000.0)  # rehyat-2's recipe, reproducible
    assert (long3.vae_grad_loss, long3.dit.rope_theta) == (1.0, 100.0)
    for f in ("dit_batch", "latent_cache", "ema", "compile", "stage2_frames", "budgets", "teacher_lr"):
        assert getattr(long, f) == getattr(long3, f), f


def test_vae_gradient_difference_loss_sees_motion_that_pixels_average_away():
    from rehyat.train import vae_loss

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 16, 16, generator=g) * 2 - 1
    z = torch.zeros(2, 4, 2, 2, 2)
    assert float(vae_loss(x, x, z, 1.0)) == 0.0
    frozen = x[:, :, :1].expand_as(x)  # the first frame held still: every temporal difference lost
    plain, with_grad = float(vae_loss(frozen, x, z, 0.0)), float(vae_loss(frozen, x, z, 1.0))
    assert with_grad > plain > 0
    # a uniform brightness offset changes pixels but no difference at all: the extra terms stay 0
    assert abs(float(vae_loss(x + 0.1, x, z, 1.0)) - float(vae_loss(x + 0.1, x, z, 0.0))) < 1e-6


def test_direction_diagnostic_counts_travel_that_motion_accuracy_calls_grow():
    from rehyat.eval.detect import Detector, score_video
    from rehyat.world import ObjectSpec, Scene, render

    det = Detector(size=128, calib=4)
    # the renderer's own translations: both the accuracy and the diagnostic are right
    for m in ("left", "right", "up", "down"):
        sc = Scene("blue", [ObjectSpec("red", "square", m, "normal", "medium", 64.0, 64.0, 0.0)])
        r = score_video(det, render([sc], 32, size=128)[0], sc)
        assert r["motion"] == 1.0 and r["direction"] == 1.0, (m, r)
        assert r["motion_confusion"] == {m: {m: 1}}, (m, r["motion_confusion"])
    # a red square that travels right while it grows 2 px a frame (a generated-looking drift)
    fr = torch.zeros(32, 128, 128, 3)
    fr[..., 2] = 1.0  # blue background
    for t in range(32):
        x0, half = 30 + t, 8 + t // 4
        fr[t, 64 - half:64 + half, x0 - half:x0 + half] = torch.tensor([1.0, 0.0, 0.0])
    sc = Scene("blue", [ObjectSpec("red", "square", "right", "normal", "medium", 30.0, 64.0, 0.0)])
    r = score_video(det, fr, sc)
    assert r["motion"] == 0.0 and r["direction"] == 1.0, r
    assert r["motion_confusion"] == {"right": {"grow": 1}}, r["motion_confusion"]  # the failure is named
    # no translation asked: the diagnostic has nothing to say
    still = Scene("blue", [ObjectSpec("red", "square", "still", "normal", "medium", 64.0, 64.0, 0.0)])
    assert math.isnan(score_video(det, render([still], 32, size=128)[0], still)["direction"])


def test_stage2_alternates_long_clips_with_the_same_tokens_per_step(tmp_path):
    p = train.preset("long")
    p.stage2_long_frames = 512
    assert train.stage2_long_batch(p) == 8  # 64 clips x 64 frames = 8 clips x 512 frames
    p.stage2_long_frames = 4096
    assert train.stage2_long_batch(p) == 1
    p1 = train.preset("tiny")
    train.run_all(p1, str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None,
                  stages=("vae", "teacher"))
    p2 = train.preset("tiny")
    p2.stage2_long_frames, p2.stage2_long_cache = 32, 2
    p2.max_steps["stage2"] = 2  # one short step, one long step
    seen = []
    orig = train._fm_loss

    def spy(*a, **kw):
        seen.append((kw["batch"], kw["frames"], kw["cache"].lat.shape[2]))
        return orig(*a, **kw)

    train._fm_loss = spy
    try:
        m = train.run_all(p2, str(tmp_path / "b"), torch.device("cpu"), seed=2, log=lambda s: None,
                          stages=("stage1", "stage2"), resume=str(tmp_path / "a" / "checkpoint.pt"))
    finally:
        train._fm_loss = orig
    # short clips: 16 frames = 4 latent frames, batch 2; long: 32 frames = 8 latent frames, batch 1
    assert seen == [(2, 16, 4), (1, 32, 8)]
    assert m["stage2"]["long_clip_frames"] == 32 and m["stage2"]["long_batch"] == 1
    assert m["stage2_long_cache"] == {"videos": 2, "frames": 32, "seconds": m["stage2_long_cache"]["seconds"]}


def test_stage2_long_flag_is_checked():
    with pytest.raises(SystemExit, match="multiple of 8"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-long", "12:4"])
    with pytest.raises(SystemExit, match="expected FRAMES:VIDEOS"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-long", "512"])


@pytest.mark.parametrize("name", train._WEIGHT_FLAGS)
def test_every_weight_flag_refuses_a_negative_weight_and_names_itself(name):
    assert hasattr(train.preset("tiny"), name)
    with pytest.raises(SystemExit, match=f"{train._flag(name)}: expected a weight >= 0, got -1"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", train._flag(name), "-1"])
    with pytest.raises(SystemExit, match=f"{train._flag(name)}: expected a weight >= 0, got nan"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", train._flag(name), "nan"])


@pytest.mark.parametrize("name,least", sorted(train._COUNT_FLAGS.items()))
def test_every_count_flag_refuses_a_count_below_its_least(name, least):
    assert hasattr(train.preset("tiny"), name)
    with pytest.raises(SystemExit, match=f"{train._flag(name)}: expected N >= {least}, got {least - 1}"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", train._flag(name), str(least - 1)])


def test_sampler_sweep_scores_each_setting_and_area_drift_is_zero_on_rendered_translations(tmp_path):
    from rehyat.eval import sweep
    from rehyat.world import render, parse_prompt
    p = train.preset("tiny")
    train.run_all(p, str(tmp_path), torch.device("cpu"), seed=0, log=lambda s: None)
    ck = str(tmp_path / "checkpoint.pt")
    sweep.main(["--checkpoint", ck, "--out", str(tmp_path / "s.json"), "--guidance", "1,4", "--steps", "2", "--n", "2"])
    import json
    res = json.load(open(tmp_path / "s.json"))
    assert [(r["steps"], r["guidance"]) for r in res["runs"]] == [(2, 1.0), (2, 4.0)]
    assert set(res["runs"][0]["held_out"]) >= {"color", "shape", "motion", "area_drift"}
    from rehyat.eval.detect import Detector
    from rehyat.eval.run import score_set
    prompts = ["a red circle moves right on a blue background", "a white square grows on a black background"]
    gt = render([parse_prompt(x) for x in prompts], 32)
    det, cpu = Detector(size=128, calib=4), torch.device("cpu")
    # the translating circle keeps its area; the growing square is not counted
    assert score_set(det, gt, prompts, 8, cpu)["area_drift"] < 0.02
    assert score_set(det, gt[1:], prompts[1:], 8, cpu)["area_drift"] is None
    # the verdicts are summed over the set's videos, per asked motion
    both = score_set(det, torch.cat([gt, gt]), prompts * 2, 8, cpu)["motion_confusion"]
    assert both == {"grow": {"grow": 2}, "right": {"right": 2}}, both
    assert set(res["runs"][0]["held_out"]["motion_confusion"]) <= {"left", "right", "up", "down", "bounce",
                                                                   "orbit", "grow", "shrink", "still"}


def test_stage2_alone_continues_the_checkpoints_student(tmp_path):
    p = train.preset("tiny")
    train.run_all(p, str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None)
    p2 = train.preset("tiny")
    p2.max_steps["stage2"] = 0  # no step: the continued student must come out as it went in
    logs = []
    m = train.run_all(p2, str(tmp_path / "b"), torch.device("cpu"), seed=3, log=logs.append,
                      stages=("stage2",), resume=str(tmp_path / "a" / "checkpoint.pt"))
    assert any("continues the checkpoint's student" in s for s in logs)
    assert [s["steps"] for s in m["stage2"]["segments"]] == [1, 0] and m["stage2"]["steps"] == 1
    assert "stage1" in m  # the first call's record is kept
    before = train.load_checkpoint(str(tmp_path / "a" / "checkpoint.pt"))[5]
    after = train.load_checkpoint(str(tmp_path / "b" / "checkpoint.pt"))[5]
    for a, b in zip(before.state_dict().values(), after.state_dict().values()):
        assert torch.equal(a, b)
    # with stage 1 asked for, the student is distilled afresh from the teacher (segments start over)
    m3 = train.run_all(train.preset("tiny"), str(tmp_path / "c"), torch.device("cpu"), seed=3, log=lambda s: None,
                       stages=("stage1", "stage2"), resume=str(tmp_path / "a" / "checkpoint.pt"))
    assert "segments" not in m3["stage2"]


def test_long4_is_long3_plus_the_object_weighted_flow_matching_loss_and_a_bigger_cache():
    long3, long4 = train.preset("long3"), train.preset("long4")
    assert (long3.fm_object_weight, long4.fm_object_weight) == (0.0, 4.0)  # rehyat-3 stays reproducible
    assert (long3.latent_cache, long4.latent_cache) == (49152, 98304)
    for f in ("dit_batch", "ema", "compile", "stage2_frames", "budgets", "teacher_lr",
              "vae_grad_loss", "dit", "vae", "text"):
        assert getattr(long3, f) == getattr(long4, f), f


def test_object_cells_mark_the_latent_cells_an_object_covers_over_the_frames_they_encode():
    from rehyat.world import ObjectSpec, Scene, render

    # a still red square centred at (x=20, y=100), radius 14 px: pixels 6-34 and 86-114, cells 0-4 and 10-14
    still = Scene("blue", [ObjectSpec("red", "square", "still", "normal", "medium", 20.0, 100.0, 0.0)])
    x = render([still], 8, size=128).permute(0, 4, 1, 2, 3).mul(2).sub(1)
    cells = train.object_cells(x, (2, 16, 16))
    assert cells.shape == (1, 1, 2, 16, 16) and cells.dtype == torch.bool
    ys, xs = torch.nonzero(cells[0, 0, 0], as_tuple=True)
    assert 0 < len(ys) <= 25 and xs.max() <= 4 and ys.min() >= 10 and ys.max() <= 14
    assert torch.equal(cells[0, 0, 0], cells[0, 0, 1])  # still: the same cells in both latent frames
    # a moving object: a latent frame's cells are the union over its 4 frames (the path it sweeps)
    mover = Scene("blue", [ObjectSpec("red", "square", "right", "fast", "medium", 40.0, 64.0, 0.0)])
    xm = render([mover], 8, size=128).permute(0, 4, 1, 2, 3).mul(2).sub(1)
    per_frame = train.object_cells(xm, (8, 16, 16))
    union = per_frame[:, :, :4].any(dim=2)
    assert torch.equal(train.object_cells(xm, (2, 16, 16))[:, :, 0], union)
    assert int(union.sum()) > int(per_frame[:, :, 0].sum())
    # nothing but background: no cells
    empty = Scene("green", [])
    xe = render([empty], 8, size=128).permute(0, 4, 1, 2, 3).mul(2).sub(1)
    assert not train.object_cells(xe, (2, 16, 16)).any()


def test_weighted_mse_weighs_object_cells_and_is_the_plain_mse_without_them():
    g = torch.Generator().manual_seed(0)
    v, target = torch.randn(2, 4, 3, 4, 4, generator=g), torch.randn(2, 4, 3, 4, 4, generator=g)
    cells = torch.zeros(2, 1, 3, 4, 4, dtype=torch.bool)
    plain = F.mse_loss(v, target)
    assert torch.allclose(train.weighted_mse(v, target), plain)
    assert torch.allclose(train.weighted_mse(v, target, cells, 4.0), plain)  # no objects: plain MSE
    cells[:, :, :, :2, :2] = True
    assert torch.allclose(train.weighted_mse(v, target, cells, 0.0), plain)  # weight 0: plain MSE
    # an error only on object cells costs more than the same error only on background cells
    on_obj = torch.where(cells.expand_as(v), torch.ones_like(v), torch.zeros_like(v))
    on_bg = torch.where(cells.expand_as(v), torch.zeros_like(v), torch.ones_like(v))
    n_obj, n_bg = cells.expand_as(v).sum(), (~cells).expand_as(v).sum()
    zero = torch.zeros_like(v)
    lo, lb = train.weighted_mse(on_obj, zero, cells, 4.0), train.weighted_mse(on_bg, zero, cells, 4.0)
    assert torch.allclose(lo / n_obj, 5 * lb / n_bg)
    # normalised: a uniform error gives the plain value whatever the weighting
    assert torch.allclose(train.weighted_mse(zero + 0.5, zero, cells, 4.0), torch.tensor(0.25))


def test_object_weighted_training_keeps_cells_beside_every_cached_latent(tmp_path):
    p1 = train.preset("tiny")
    p1.fm_object_weight = 4.0
    seen = []
    orig = train.weighted_mse

    def spy(v, target, cells=None, weight=0.0):
        seen.append((tuple(v.shape), None if cells is None else tuple(cells.shape), weight))
        return orig(v, target, cells, weight)

    train.weighted_mse = spy
    try:
        train.run_all(p1, str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None,
                      stages=("vae", "teacher"))
        p2 = train.preset("tiny")
        p2.fm_object_weight = 4.0
        p2.stage2_long_frames, p2.stage2_long_cache = 32, 2
        p2.max_steps["stage2"] = 2
        train.run_all(p2, str(tmp_path / "b"), torch.device("cpu"), seed=2, log=lambda s: None,
                      stages=("stage1", "stage2"), resume=str(tmp_path / "a" / "checkpoint.pt"))
    finally:
        train.weighted_mse = orig
    # teacher (8 frames = 2 latent frames), stage 2 short (16 frames) and long (32 frames): every
    # loss got the cells of its own latents
    assert seen == [((2, 4, 2, 4, 4), (2, 1, 2, 4, 4), 4.0), ((2, 4, 4, 4, 4), (2, 1, 4, 4, 4), 4.0),
                    ((1, 4, 8, 4, 4), (1, 1, 8, 4, 4), 4.0)]


def test_area_trend_has_the_sign_of_the_size_change_of_objects_that_should_keep_their_size():
    # frames of a growing (then a shrinking) circle, scored against a prompt that asks it to stay still:
    # area_drift is the same size either way, area_trend says which way it went
    from rehyat.eval.detect import Detector, score_video
    from rehyat.world import ObjectSpec, Scene, parse_prompt, render
    det = Detector(size=128, calib=4)
    still = parse_prompt("a red circle stays still on a blue background")
    res = {}
    for m in ("grow", "shrink"):
        sc = Scene("blue", [ObjectSpec("red", "circle", m, "slow", "medium", 64.0, 64.0, 0.0)])
        res[m] = score_video(det, render([sc], 32)[0], still)
    assert res["grow"]["area_trend"] > 0.2 and res["shrink"]["area_trend"] < -0.2, res
    assert res["grow"]["area_drift"] == pytest.approx(res["grow"]["area_trend"])
    assert res["shrink"]["area_drift"] == pytest.approx(-res["shrink"]["area_trend"])
    sc = Scene("blue", [ObjectSpec("red", "circle", "still", "normal", "medium", 64.0, 64.0, 0.0)])
    assert score_video(det, render([sc], 32)[0], still)["area_trend"] == pytest.approx(0.0, abs=1e-6)


def test_every_evaluation_row_measures_area_drift_and_it_is_zero_on_long_rendered_translations():
    # area_drift is in score_set, so rehyat.eval.run reports it at 4x / 16x too (8 s here: 4 windows)
    from rehyat.eval.detect import Detector
    from rehyat.eval.run import ground_truth_frames, score_set
    prompts = ["a red circle moves right on a blue background", "a yellow square moves up on a black background",
               "a green star grows on a white background"]
    det = Detector(size=128, calib=4)
    r = score_set(det, ground_truth_frames(prompts, 128, 128, None), prompts, 8, torch.device("cpu"))
    assert r["area_drift"] is not None and r["area_drift"] < 0.02, r
    # motion accuracy per asked motion, in %, only for the motions the prompts ask for
    assert {k for k in r if k.startswith("motion:")} == {"motion:right", "motion:up", "motion:grow"}, r
    assert all(0.0 <= r[k] <= 100.0 for k in r if k.startswith("motion:"))


def test_fm_object_weight_flag_overrides_the_preset_and_is_recorded(tmp_path):
    with pytest.raises(SystemExit, match="weight >= 0"):
        train.main(["--preset", "tiny", "--out", str(tmp_path / "never"), "--fm-object-weight", "-1"])
    import json
    train.main(["--preset", "tiny", "--out", str(tmp_path / "a"), "--stages", "vae,teacher", "--fm-object-weight", "2.5"])
    m = json.load(open(tmp_path / "a" / "metrics.json"))
    assert m["teacher"]["fm_object_weight"] == 2.5


def test_ground_truth_renders_in_batches_the_same_videos_as_at_once():
    # rendered NOISE_BATCH at a time (GPU memory stays bounded at 800 prompts or 16x): same frames, same order
    from rehyat.eval.run import ground_truth_frames, prompt_sets
    ps = prompt_sets(5)["held_out"]
    whole = ground_truth_frames(ps, 6, 32, None, batch=len(ps))
    parts = ground_truth_frames(ps, 6, 32, None, batch=2)
    assert parts.shape == (5, 6, 32, 32, 3) and torch.equal(parts, whole)


def test_wander_is_the_net_travel_off_the_asked_path_and_zero_on_the_renderers_own_frames():
    # a circle that moves up at normal speed (20 px/s at 16 fps: 1.25 px per frame) travels 31 steps x 1.25 px
    # = 38.75 px per 32-frame window; asked to stay still or to move right, all of that is off the path
    from rehyat.eval.detect import Detector, score_video
    from rehyat.world import ObjectSpec, Scene, parse_prompt, render
    det = Detector(size=128, calib=4)
    up = Scene("blue", [ObjectSpec("red", "circle", "up", "normal", "medium", 64.0, 100.0, 0.0)])
    frames = render([up], 32)[0]
    for asked in ("a red circle stays still on a blue background", "a red circle moves right on a blue background"):
        assert score_video(det, frames, parse_prompt(asked))["wander"] == pytest.approx(38.75, abs=0.5), asked
    assert score_video(det, frames, parse_prompt("a red circle moves up on a blue background"))["wander"] \
        == pytest.approx(0.0, abs=1e-3)
    for m in ("still", "left", "right", "down"):
        sc = Scene("blue", [ObjectSpec("red", "circle", m, "normal", "medium", 64.0, 64.0, 0.0)])
        prompt = "a red circle " + ("stays still" if m == "still" else f"moves {m}") + " on a blue background"
        assert score_video(det, render([sc], 32)[0], parse_prompt(prompt))["wander"] == pytest.approx(0.0, abs=1e-3), m
    # motions that leave the path free (orbit, bounce, grow, shrink) get no wander
    orbit = Scene("blue", [ObjectSpec("red", "circle", "orbit", "normal", "medium", 64.0, 64.0, 0.0)])
    assert math.isnan(score_video(det, render([orbit], 32)[0], parse_prompt("a red circle orbits on a blue background"))["wander"])
