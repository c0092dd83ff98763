import copy

import torch

from rehyat.dit import DiT, DiTConfig, empty_states
from rehyat.sampling import sample_chunk_major, sample_parallel
from rehyat.text import TextConfig, TextEncoder, Tokenizer
from rehyat.vae import CausalVideoVAE, VAEConfig

TINY_VAE = VAEConfig(latent_channels=4, enc_channels=(8, 8, 8, 8), dec_channels=(8, 8, 8, 8))


def tiny_dit(**kw):
    base = dict(latent_channels=4, latent_height=4, latent_width=4, dim=32, layers=2, heads=2,
                text_dim=16, feature_dim=8, feature_hidden=8)
    base.update(kw)
    return DiTConfig(**base)


def randomize(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def test_vae_shapes_and_chunked_decode_equals_whole():
    torch.manual_seed(0)
    vae = CausalVideoVAE(TINY_VAE).eval()
    x = torch.rand(2, 3, 24, 32, 32) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x)
        assert z.shape == (2, 4, 6, 4, 4)
        whole, _ = vae.decode(z)
        assert whole.shape == (2, 3, 24, 32, 32)
        for tc in (1, 2, 4):
            chunked = vae.decode_chunks(z, tc)
            assert torch.allclose(chunked, whole, atol=1e-5), (tc, (chunked - whole).abs().max())


def test_vae_decoder_is_causal():
    torch.manual_seed(1)
    vae = CausalVideoVAE(TINY_VAE).eval()
    z = torch.randn(1, 4, 4, 4, 4)
    z2 = z.clone()
    z2[:, :, 2:] += 1.0
    with torch.no_grad():
        a, _ = vae.decode(z)
        b, _ = vae.decode(z2)
    assert torch.allclose(a[:, :, :8], b[:, :, :8], atol=1e-6)
    assert not torch.allclose(a[:, :, 8:], b[:, :, 8:])


def test_tokenizer_and_text_encoder():
    tok = Tokenizer(max_len=12)
    ids = tok.encode("A small red circle slowly drifts left over a blue background")
    assert len(ids) == 12 and ids[0] == 2 and 1 not in ids
    assert tok.encode("")[:2] == [2, 0]
    assert tok.encode("zebra")[1] == 1
    enc = TextEncoder(TextConfig(vocab_size=tok.vocab_size, max_len=12, dim=16, layers=1, heads=2))
    out = enc(tok.batch(["a red circle", ""]))
    assert out.shape == (2, 12, 16)
    assert Tokenizer.from_json(tok.to_json()).itos == tok.itos


def _student(tc, to, seed=0):
    torch.manual_seed(seed)
    teacher = DiT(tiny_dit())
    randomize(teacher)
    student = copy.deepcopy(teacher).to_student(tc, to)
    return teacher, student.eval()


def test_student_parallel_equals_chunk_recurrent():
    for tc, to in ((2, 1), (2, 0), (3, 2), (1, 0)):
        _, student = _student(tc, to)
        x = torch.randn(2, 4, 6, 4, 4)
        t = torch.tensor([0.3, 0.8])
        ctx = torch.randn(2, 5, 16)
        with torch.no_grad():
            par = student(x, t, ctx)
            states = empty_states(student.cfg, 2)
            outs = []
            for f0 in range(0, 6, tc):
                v, states = student.forward_step(x[:, :, f0:f0 + tc], t, ctx, f0, states)
                outs.append(v)
            rec = torch.cat(outs, dim=2)
        assert torch.allclose(par, rec, atol=1e-5), (tc, to, (par - rec).abs().max())
        assert states[2].shape == (2, 2, 2, to * 4, 16)


def test_student_softmax_mode_equals_teacher():
    teacher, student = _student(2, 1)
    x = torch.randn(1, 4, 4, 4, 4)
    t = torch.tensor([0.5])
    ctx = torch.randn(1, 5, 16)
    with torch.no_grad():
        assert torch.allclose(teacher(x, t, ctx), student(x, t, ctx, softmax=True), atol=1e-6)


def test_chunk_major_sampling_equals_parallel():
    _, student = _student(2, 1, seed=3)
    noise = torch.randn(1, 4, 6, 4, 4)
    ctx, unc = torch.randn(1, 5, 16), torch.randn(1, 5, 16)
    seen = []
    a = sample_parallel(student, ctx, unc, noise, steps=4, shift=2.0, guidance=3.0)
    b = sample_chunk_major(student, ctx, unc, noise, steps=4, shift=2.0, guidance=3.0,
                           on_chunk=lambda i, x: seen.append(i))
    assert seen == [0, 1, 2]
    assert (a - b).abs().max().item() <= 1e-4


def test_sample_parallels_step_hook_sees_every_state_and_the_unguided_velocity():
    # on_step(i, x, v): x is the state at schedule[i] before its update, v the model's velocity there with
    # [cond; uncond] along the batch (cond alone at guidance 1); replaying the guided Euler steps from them
    # reaches the sampler's output. The training caches (train.TrajectoryCache, LongTrajectoryCache) record
    # their trajectories through this hook.
    from rehyat.sampling import schedule
    _, student = _student(2, 1, seed=3)
    noise = torch.randn(2, 4, 4, 4, 4)
    ctx, unc = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    ts = schedule(3, 2.0)
    for g, rows in ((3.0, 4), (1.0, 2)):
        seen = []
        out = sample_parallel(student, ctx, unc, noise, steps=3, shift=2.0, guidance=g,
                              on_step=lambda i, x, v: seen.append((i, x.clone(), v.clone())))
        assert [i for i, _, _ in seen] == [0, 1, 2] and all(v.shape[0] == rows for _, _, v in seen)
        assert torch.equal(seen[0][1], noise)
        x = noise
        for i, xi, v in seen:
            assert torch.allclose(xi, x, atol=1e-6)
            tt = torch.full((rows,), ts[i])
            with torch.no_grad():
                want = student(torch.cat([x, x]) if rows == 4 else x, tt, torch.cat([ctx, unc]) if rows == 4 else ctx)
            assert torch.allclose(v, want, atol=1e-5)
            guided = v[2:] + g * (v[:2] - v[2:]) if rows == 4 else v
            x = x + (ts[i + 1] - ts[i]) * guided
        assert torch.allclose(x, out, atol=1e-5)
