import numpy as np
import torch

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
    for k in ("color", "shape", "background", "motion", "flicker", "boundary_ratio", "psnr_vs_teacher_db"):
        assert k in r
    assert res["ground_truth"]["in_distribution"]["background"] >= 50.0
