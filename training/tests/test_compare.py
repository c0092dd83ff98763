"""rehyat.eval.compare: paired comparison of two evaluations on synthetic per-video scores."""
import json

import pytest

from rehyat.eval.compare import CompareError, compare, main, paired


def _ev(motion, drift, model="student_stage2", seeds=(1234, 4321), per_video=True):
    def row(m, d):
        r = {"motion": sum(m) / len(m), "area_drift": sum(d) / len(d)}
        if per_video:
            r["per_video"] = {"motion": list(m), "area_drift": list(d)}
        return r
    return {"settings": {"prompt_seeds": list(seeds), "n_prompts": len(motion), "n_prompts_long": 1, "noise_seed": 555},
            model: {"in_distribution": {"1x": row(motion, drift)}, "held_out": {"1x": row(motion, drift)}}}


BASE_M = [0.0, 50.0, 100.0, 25.0, 75.0, 50.0, 0.0, 100.0] * 4
BASE_D = [0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2] * 4


def test_a_consistent_gain_is_better_and_a_drift_rise_worse_even_across_uneven_prompts():
    # every video gains 10 points of motion: a clear gain, though the videos' scores spread 0-100
    new = _ev([m + 10 for m in BASE_M], [d + 0.05 for d in BASE_D])
    res = compare(_ev(BASE_M, BASE_D), new, within=3)
    rows = {(r["set"], r["metric"]): r for r in res["rows"]}
    mot = rows[("held_out", "motion")]
    assert mot["diff"] == pytest.approx(10) and mot["ci95"] == [pytest.approx(10), pytest.approx(10)]
    assert mot["verdict"] == "better" and mot["within_3"] == "yes"
    drift = rows[("held_out", "area_drift")]
    assert drift["verdict"] == "worse"  # area drift: lower is better
    assert "within_3" not in drift  # not a score in %: "within 3 points" says nothing about it


def test_noise_without_a_shift_is_within_noise_and_a_large_loss_is_not_within():
    flip = [m + (10 if i % 2 else -10) for i, m in enumerate(BASE_M)]
    res = compare(_ev(BASE_M, BASE_D), _ev(flip, BASE_D), metrics=("motion",), within=3)
    assert all(r["verdict"] == "within noise" for r in res["rows"])
    assert all(r["within_3"] == "undecided" for r in res["rows"])
    worse = compare(_ev(BASE_M, BASE_D), _ev([m - 20 for m in BASE_M], BASE_D), metrics=("motion",), within=3)
    assert all(r["verdict"] == "worse" and r["within_3"] == "no" for r in worse["rows"])


def test_videos_without_a_score_are_left_out_of_the_pairs():
    r = paired([None, 1.0, 2.0, float("nan")], [5.0, 2.0, None, 3.0])
    assert r["n"] == 1 and r["diff"] == 1.0
    assert paired([None], [1.0])["ci95"] is None


def test_what_cannot_be_paired_is_refused_with_the_reason():
    base = _ev(BASE_M, BASE_D)
    with pytest.raises(CompareError, match="prompt_seeds"):
        compare(base, _ev(BASE_M, BASE_D, seeds=(1, 2)))
    with pytest.raises(CompareError, match="no per-video scores"):
        compare(base, _ev(BASE_M, BASE_D, per_video=False))
    with pytest.raises(CompareError, match=r"has no 'teacher' \(it has: student_stage2\)"):
        compare(base, base, base_model="teacher")
    with pytest.raises(CompareError, match="sampler sweep"):
        compare(base, {"settings": {}, "runs": []})
    with pytest.raises(CompareError, match="not the same prompt set"):
        paired([1.0, 2.0], [1.0])


def test_the_command_prints_a_table_and_writes_the_rows(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_ev(BASE_M, BASE_D)))
    b.write_text(json.dumps(_ev([m + 10 for m in BASE_M], BASE_D)))
    main([str(a), str(b), "--metrics", "motion", "--out", str(tmp_path / "d.json"), "--within", "3"])
    out = capsys.readouterr().out
    assert "| held_out | 1x | motion | 32 |" in out and "better" in out and "within 3" in out
    assert len(json.load(open(tmp_path / "d.json"))["rows"]) == 2
    with pytest.raises(SystemExit):  # argparse's usage error, exit status 2
        main([str(a), str(b), "--metrics", "speed"])
    assert "unknown metric(s) speed" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="cannot read"):
        main([str(a), str(tmp_path / "missing.json")])


def test_first_n_pairs_a_larger_evaluation_with_a_smaller_one_on_their_common_videos():
    small = _ev(BASE_M, BASE_D)                                  # 32 videos
    big = _ev([m + 10 for m in BASE_M] + [0.0] * 32, BASE_D * 2)   # 64: the same 32 first, then others
    with pytest.raises(CompareError, match=r"n_prompts is 32 against 64.*--first N"):
        compare(small, big)                                      # sizes differ: refused without --first
    res = compare(small, big, metrics=("motion",), first=32)
    assert all(r["n"] == 32 and r["diff"] == pytest.approx(10) for r in res["rows"])
    assert res["first"] == 32
    # N beyond the shorter list: both are cut to the shorter one's length (32, two whole batches)
    assert all(r["n"] == 32 for r in compare(small, big, metrics=("motion",), first=48)["rows"])
    assert compare(big, big, metrics=("motion",), first=16)["rows"][0]["n"] == 16


def test_first_n_refuses_prefixes_that_are_not_whole_noise_batches():
    small, big = _ev(BASE_M[:24], BASE_D[:24]), _ev(BASE_M * 2, BASE_D * 2)
    with pytest.raises(CompareError, match="positive multiple of 16"):
        compare(small, big, first=20)
    with pytest.raises(CompareError, match="first 24 videos are not whole noise batches"):
        compare(small, big, first=32)                             # 24 videos on one side: a part batch
    with pytest.raises(CompareError, match="prompt_seeds"):       # --first never pairs other prompt sets
        compare(small, _ev(BASE_M, BASE_D, seeds=(1, 2)), first=16)


def _by_length(rows):
    return {"settings": {"prompt_seeds": [1234, 4321], "n_prompts": 32, "n_prompts_long": 16, "noise_seed": 555},
            "student_stage2": {s: {k: {"motion": 0.0, "per_video": {"motion": v}} for k, v in rows.items()}
                               for s in ("in_distribution", "held_out")}}


def test_lengths_pairs_one_length_with_another_on_the_same_prompts_for_the_decay_target():
    ev = _by_length({"1x": BASE_M, "16x": [m - 20 for m in BASE_M[:16]]})
    with pytest.raises(CompareError, match="32 videos against 16"):  # the long length has fewer prompts
        compare(ev, ev, metrics=("motion",), lengths=("1x", "16x"))
    res = compare(ev, ev, metrics=("motion",), lengths=("1x", "16x"), first=16, within=5)
    assert [(r["length"], r["n"], r["diff"], r["within_5"]) for r in res["rows"]] == [("1x->16x", 16, -20.0, "no")] * 2
    assert res["lengths"] == ["1x", "16x"]
    with pytest.raises(CompareError, match="have no prompt set with 1x in BASE and 4x in NEW"):
        compare(ev, ev, lengths=("1x", "4x"), first=16)


def test_the_command_refuses_a_malformed_lengths_pair(tmp_path, capsys):
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_by_length({"1x": BASE_M})))
    with pytest.raises(SystemExit):
        main([str(a), str(a), "--lengths", "1x-16x"])
    assert "expected A:B such as 1x:16x" in capsys.readouterr().err
