import pytest
import torch

from rehyat.attention import (FeatureMap, hybrid_attention_chunked, hybrid_attention_naive,
                              hybrid_attention_recurrent, hybrid_attention_step, empty_state)


def make(b, h, frames, p, d, dp, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = frames * p
    q, k, v = (torch.randn(b, h, n, d, generator=g) for _ in range(3))
    fmq, fmk = FeatureMap(h, d, dp), FeatureMap(h, d, dp)
    with torch.no_grad():
        fq, fk = fmq(q), fmk(k)
    return q, k, v, fq, fk


CASES = [
    # (frames, tokens/frame, Tc, To)
    (6, 3, 2, 1),
    (6, 3, 2, 0),
    (7, 2, 3, 1),   # partial last chunk
    (9, 2, 3, 2),
    (5, 4, 1, 0),   # Tc = 1: pure frame-causal
    (4, 3, 5, 2),   # one-chunk video (shorter than a chunk)
    (3, 3, 3, 1),   # exactly one chunk
    (8, 1, 4, 3),
]


@pytest.mark.parametrize("frames,p,tc,to", CASES)
def test_three_forms_agree(frames, p, tc, to):
    q, k, v, fq, fk = make(2, 3, frames, p, 8, 6, seed=frames * 31 + tc)
    ref = hybrid_attention_naive(q, k, v, fq, fk, p, tc, to)
    ch = hybrid_attention_chunked(q, k, v, fq, fk, p, tc, to)
    rec, _ = hybrid_attention_recurrent(q, k, v, fq, fk, p, tc, to)
    assert torch.allclose(ch, ref, atol=1e-5, rtol=1e-5), (ch - ref).abs().max()
    assert torch.allclose(rec, ref, atol=1e-5, rtol=1e-5), (rec - ref).abs().max()


def test_first_chunk_is_window_softmax_only():
    p, tc, to = 3, 2, 1
    q, k, v, fq, fk = make(1, 2, 2, p, 8, 6, seed=3)
    y = hybrid_attention_naive(q, k, v, fq, fk, p, tc, to)
    soft = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1) @ v
    assert torch.allclose(y, soft, atol=1e-6)
    st = empty_state(1, 2, 8, 6)
    y1, s, z, kt, vt, fkt = hybrid_attention_step(q, k, v, fq, fk, *st, tail_tokens=to * p)
    assert torch.allclose(y1, soft, atol=1e-6)
    # state absorbs only the frames that leave the window (first Tc - To frames)
    n_leave = (tc - to) * p
    assert torch.allclose(s, fk[:, :, :n_leave].transpose(-1, -2) @ v[:, :, :n_leave], atol=1e-6)
    assert torch.allclose(z, fk[:, :, :n_leave].sum(2), atol=1e-6)
    assert kt.shape[2] == to * p and torch.equal(kt, k[:, :, -to * p:])


def test_future_chunks_invisible():
    p, tc, to = 2, 2, 1
    q, k, v, fq, fk = make(1, 1, 6, p, 4, 4, seed=5)
    y = hybrid_attention_chunked(q, k, v, fq, fk, p, tc, to)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 8:] += 3.0
    v2[:, :, 8:] -= 2.0
    y2 = hybrid_attention_chunked(q, k2, v2, fq, fk, p, tc, to)
    assert torch.allclose(y[:, :, :8], y2[:, :, :8], atol=1e-6)


def test_feature_map_positive_and_shapes():
    fm = FeatureMap(4, 16, 10, hidden=12)
    x = torch.randn(2, 4, 7, 16) * 5
    f = fm(x)
    assert f.shape == (2, 4, 7, 10)
    assert bool((f[..., :5] > 0).all()) and bool((f[..., 5:] >= 0).all())


def test_bad_config_rejected():
    q, k, v, fq, fk = make(1, 1, 4, 2, 4, 4)
    with pytest.raises(ValueError):
        hybrid_attention_chunked(q, k, v, fq, fk, 2, 2, 2)
    with pytest.raises(ValueError):
        hybrid_attention_naive(q, k, v, fq, fk, 3, 2, 1)
