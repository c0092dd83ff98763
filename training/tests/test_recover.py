"""Recovering a checkpoint from a released model folder, refitting its VAE encoder, and stage 2's
teacher term: tiny preset, on the CPU."""
import copy
import os
import shutil

import onnx
import pytest
import torch
from onnx import numpy_helper

from rehyat import train
from rehyat.dit import DiT
from rehyat.export.onnx_export import export_all
from rehyat.export.parity import write_fixtures
from rehyat.export.recover import RecoverError, main as recover_main, recover
from rehyat.text import TextEncoder, Tokenizer
from rehyat.vae import CausalVideoVAE


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A tiny 'release' (graphs, vocab, parity fixtures) of random non-trivial weights, and its models."""
    torch.manual_seed(0)
    p = train.preset("tiny")
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    vae, text, teacher = CausalVideoVAE(p.vae), TextEncoder(p.text), DiT(copy.deepcopy(p.dit))
    student = copy.deepcopy(teacher)
    student.cfg = copy.deepcopy(teacher.cfg)
    student.to_student(p.tc, p.to)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # zero- and one-initialised tensors would match anything
        for m in (vae, text, teacher, student):
            for t in list(m.parameters()) + list(m.buffers()):
                t.add_(torch.randn(t.shape, generator=g) * 0.05)
        vae.lat_std.abs_().add_(0.5)
    out = str(tmp_path_factory.mktemp("release"))
    export_all(out, tok, vae, text, teacher, student)  # rounds the weights to fp16, as a release does
    write_fixtures(os.path.join(out, "parity"), tok, vae, text, teacher, student)
    return out, {"vae": vae, "text": text, "teacher": teacher, "student": student}


def test_recover_gives_back_every_released_weight_exactly(release):
    out, ref = release
    _, tok, vae, text, teacher, student, report = recover(out, "tiny", log=lambda s: None)
    got = {"vae": vae, "text": text, "teacher": teacher, "student": student}
    for k, m in got.items():
        want = ref[k].state_dict()
        for n, v in m.state_dict().items():
            if k == "vae" and n.startswith("encoder."):
                continue  # not released
            assert torch.equal(v, want[n]), f"{k}.{n}"
    assert all(w <= 1.0 for w in report["parity_worst_over_tolerance"].values())
    assert set(report["tensors"]) == {"text_encoder", "vae_decoder", "teacher_dit", "dit_step"}


def test_recover_refuses_another_preset_and_altered_weights(release, tmp_path):
    out, _ = release
    with pytest.raises(RecoverError, match="differ from a fresh export"):
        recover(out, "full", log=lambda s: None)
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    m = onnx.load(str(bad / "teacher_dit.onnx"))
    init = max(m.graph.initializer, key=lambda i: numpy_helper.to_array(i).size)
    a = numpy_helper.to_array(init).copy()
    a.reshape(-1)[: a.size // 2] *= 1.5
    init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(m, str(bad / "teacher_dit.onnx"))
    with pytest.raises(RecoverError, match="parity fixtures.*teacher_dit"):
        recover(str(bad), "tiny", log=lambda s: None)


def test_recovered_checkpoint_needs_its_encoder_refit_before_stage2(release, tmp_path):
    out, _ = release
    ck = str(tmp_path / "rec.pt")
    recover_main(["--model", out, "--preset", "tiny", "--out", ck])
    c, _, vae, _, _, _ = train.load_checkpoint(ck)
    assert c["vae_encoder"] == "missing" and vae.encoder_state == "missing"
    assert c["metrics"]["recovered"]["preset"] == "tiny"
    p = train.preset("tiny")
    with pytest.raises(train.EncoderMissing, match="run the encoder stage first"):
        train.run_all(p, str(tmp_path / "x"), torch.device("cpu"), seed=1, log=lambda s: None,
                      stages=("stage2",), resume=ck)
    # stage 2 on sampling trajectories encodes nothing: it runs on the missing encoder, unless long
    # clips (encoded videos) are asked for too
    pt = train.preset("tiny")
    pt.stage2_traj, pt.stage2_traj_prompts, pt.stage2_traj_steps = "teacher", 2, 2
    mt = train.run_all(pt, str(tmp_path / "t"), torch.device("cpu"), seed=1, log=lambda s: None,
                       stages=("stage2",), resume=ck)
    assert mt["stage2"]["trajectories"]["sampler"] == "teacher"
    assert train.load_checkpoint(str(tmp_path / "t" / "checkpoint.pt"))[0]["vae_encoder"] == "missing"
    pl = train.preset("tiny")
    pl.stage2_traj, pl.stage2_long_frames, pl.stage2_long_cache = "teacher", 16, 1
    with pytest.raises(train.EncoderMissing, match="run the encoder stage first"):
        train.run_all(pl, str(tmp_path / "l"), torch.device("cpu"), seed=1, log=lambda s: None,
                      stages=("stage2",), resume=ck)
    dec_before = {k: v.clone() for k, v in vae.decoder.state_dict().items()}
    m = train.run_all(train.preset("tiny"), str(tmp_path / "y"), torch.device("cpu"), seed=1, log=lambda s: None,
                      stages=("encoder", "stage2"), resume=ck)
    r = m["vae_encoder_refit"]
    assert r["steps"] == 1 and "recon_psnr_db" in r and len(r["latent_std_range"]) == 2
    c2, _, vae2, _, _, _ = train.load_checkpoint(str(tmp_path / "y" / "checkpoint.pt"))
    assert c2["vae_encoder"] == "refit"
    # the decoder and its latent statistics are the release's: only the encoder moved
    for k, v in vae2.decoder.state_dict().items():
        assert torch.equal(v, dec_before[k]), k
    assert torch.equal(vae2.lat_mean, vae.lat_mean) and torch.equal(vae2.lat_std, vae.lat_std)
    assert m["stage2"]["steps"] == 1


def test_evaluation_skips_the_reconstruction_ceiling_without_an_encoder(release, tmp_path):
    from rehyat.eval.run import eval_models
    out, _ = release
    _, tok, vae, text, teacher, student, _ = recover(out, "tiny", log=lambda s: None)
    vae.encoder_state = "missing"
    res = eval_models(tok, vae, text, teacher, None, student, torch.device("cpu"), log=lambda s: None,
                      preset_name="tiny", n=2, lengths=(1,), n_long=1)
    assert res["settings"]["vae_encoder"] == "missing"
    assert "skipped" in res["vae_reconstruction"]
    assert set(res["ground_truth"]) == {"in_distribution", "held_out"} and "student_stage2" in res


def test_evaluation_samples_the_teacher_alone_when_no_student_length_is_asked(release):
    # a teacher-only run beside an earlier student-only one of the same prompts and noise
    # (rehyat.eval.run --student-lengths ''): only the teacher's rows, and no PSNR without a student
    from rehyat.eval.run import eval_models
    out, _ = release
    _, tok, vae, text, teacher, student, _ = recover(out, "tiny", log=lambda s: None)
    res = eval_models(tok, vae, text, teacher, None, student, torch.device("cpu"), log=lambda s: None,
                      preset_name="tiny", n=2, lengths=(1, 4), teacher_lengths=(1,), student_lengths=(), n_long=1)
    assert "student_stage2" not in res and set(res["teacher"]["held_out"]) == {"1x"}
    assert "motion" in res["teacher"]["held_out"]["1x"] and "psnr_vs_teacher_db" not in res["teacher"]["held_out"]["1x"]
    res = eval_models(tok, vae, text, teacher, None, student, torch.device("cpu"), log=lambda s: None,
                      preset_name="tiny", n=2, lengths=(1, 4), teacher_lengths=(), student_lengths=(4,), n_long=1)
    assert "teacher" not in res and set(res["student_stage2"]["held_out"]) == {"4x"}


def test_chunk_causal_student_output_on_a_clip_start_equals_its_output_on_that_start_alone():
    # what stage 2's teacher term relies on: the student's velocity on the first f latent frames
    # of a longer clip does not depend on the later frames
    torch.manual_seed(3)
    p = train.preset("tiny")
    s = DiT(copy.deepcopy(p.dit))
    s.to_student(p.tc, p.to)
    with torch.no_grad():
        for prm in s.parameters():
            prm.add_(torch.randn_like(prm) * 0.05)
    c = s.cfg
    x = torch.randn(2, c.latent_channels, 3 * c.tc, c.latent_height, c.latent_width)
    t = torch.tensor([0.3, 0.8])
    ctx = torch.randn(2, 5, c.text_dim)
    with torch.no_grad():
        full = s(x, t, ctx)
        start = s(x[:, :, :c.tc], t, ctx)
    assert torch.allclose(full[:, :, :c.tc], start, atol=1e-5)


def test_stage2_distill_adds_the_teacher_term_and_reports_it(tmp_path):
    p1 = train.preset("tiny")
    train.run_all(p1, str(tmp_path / "a"), torch.device("cpu"), seed=0, log=lambda s: None, stages=("vae", "teacher"))
    p2 = train.preset("tiny")
    p2.stage2_distill = 0.5
    p2.max_steps["stage2"] = 2
    m = train.run_all(p2, str(tmp_path / "b"), torch.device("cpu"), seed=2, log=lambda s: None,
                      stages=("stage1", "stage2"), resume=str(tmp_path / "a" / "checkpoint.pt"))
    d = m["stage2"]["distill"]
    # the teacher's training clip: 8 pixel frames = 2 latent frames (one chunk of the tiny student)
    assert d["weight"] == 0.5 and d["latent_frames"] == 2 and d["measured_steps"] == 1
    assert d["mean_distill_loss"] >= 0 and d["mean_fm_loss"] > 0  # zero-initialised heads: both velocities 0


def test_distill_terms_sum_as_documented():
    p = train.preset("tiny")
    tok = Tokenizer(max_len=p.text.max_len)
    p.text.vocab_size = tok.vocab_size
    torch.manual_seed(0)
    vae, text, teacher = CausalVideoVAE(p.vae), TextEncoder(p.text), DiT(copy.deepcopy(p.dit))
    student = copy.deepcopy(teacher)
    student.cfg = copy.deepcopy(teacher.cfg)
    student.to_student(p.tc, p.to)
    with torch.no_grad():
        for prm in list(student.parameters()) + list(teacher.parameters()):
            prm.add_(torch.randn_like(prm) * 0.05)
    net = train.FlowNet(student, text)
    kd = train.Distill(teacher, text, 2.0, 2, p.tc)
    import numpy as np
    torch.manual_seed(5)
    plain = train._fm_loss(net, vae, tok, p, torch.device("cpu"), np.random.default_rng(9), batch=2, frames=16)
    torch.manual_seed(5)
    both = train._fm_loss(net, vae, tok, p, torch.device("cpu"), np.random.default_rng(9), batch=2, frames=16,
                          distill=kd, measure=True)
    rec = kd.metrics()
    assert rec["measured_steps"] == 1 and abs(rec["mean_fm_loss"] - float(plain)) < 1e-4
    assert abs(float(both) - (float(plain) + 2.0 * rec["mean_distill_loss"])) < 1e-3
    with pytest.raises(ValueError, match="whole chunks"):
        train.Distill(teacher, text, 1.0, 3, 2)


def test_stage2_distill_flag_is_checked():
    with pytest.raises(SystemExit, match="--stage2-distill"):
        train.main(["--preset", "tiny", "--out", "/tmp/never", "--stage2-distill", "-1"])


def test_encoder_refit_cycle_term_maps_the_teachers_samples_back(release, tmp_path):
    """The cycle term (--encoder-cycle) trains the encoder to map videos decoded from the teacher's
    samples back onto those latents: its held-out cycle error falls, and ends below a
    reconstruction-only refit's of the same steps and data. Without a teacher it is refused, and so
    is a negative weight."""
    out, _ = release
    ck = str(tmp_path / "rec.pt")
    recover_main(["--model", out, "--preset", "tiny", "--out", ck])
    runs = {}
    for w in (0.0, 10.0):
        p = train.preset("tiny")
        p.encoder_cycle, p.encoder_cycle_latents, p.stage2_traj_steps, p.vae_batch = w, 64, 4, 8
        p.max_steps["encoder"] = 150
        runs[w] = train.run_all(p, str(tmp_path / f"w{w}"), torch.device("cpu"), seed=3, log=lambda s: None,
                                stages=("encoder",), resume=ck)["vae_encoder_refit"]["cycle"]
    assert runs[10.0]["latents"] == 56 and runs[10.0]["held_out"] == 8
    assert runs[0.0]["weight"] == 0.0 and runs[0.0]["latents"] == 0 and runs[0.0]["held_out"] == 8
    assert runs[0.0]["mse_before"] == runs[10.0]["mse_before"], runs  # the same held-out samples
    # the fixture's random decoder loses most of a latent, so the fall is small, but it is the term's
    assert runs[10.0]["mse_after"] < 0.97 * runs[10.0]["mse_before"], runs
    assert runs[10.0]["mse_after"] < runs[0.0]["mse_after"] - 0.03, runs
    c, tok, vae, text, _, _ = train.load_checkpoint(ck)
    p = train.preset("tiny")
    p.encoder_cycle = 1.0
    with pytest.raises(ValueError, match="samples latents with the teacher"):
        train.refit_encoder(vae, p, torch.device("cpu"), __import__("numpy").random.default_rng(0), log=lambda s: None)
    with pytest.raises(SystemExit, match="--encoder-cycle: expected a weight >= 0"):
        train.main(["--preset", "tiny", "--out", str(tmp_path / "bad"), "--resume", ck, "--stages", "encoder",
                    "--encoder-cycle", "-1"])
    with pytest.raises(SystemExit, match="--encoder-cycle-latents: expected N >= 2"):
        train.main(["--preset", "tiny", "--out", str(tmp_path / "bad"), "--resume", ck, "--stages", "encoder",
                    "--encoder-cycle-latents", "1"])
