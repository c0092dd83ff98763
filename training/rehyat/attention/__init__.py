"""Hybrid attention (ReHyAt) in three equivalent forms plus the learnable feature maps.

- :mod:`naive`: obvious loops over queries, the numerical ground truth.
- :mod:`chunked`: chunk-parallel form used for training (all chunks at once).
- :mod:`recurrent`: one chunk at a time with explicit state (S, z, K/V/phi_k tails); the exact
  math of the ``ai.rehyat::HybridAttention`` op.
"""
from .naive import hybrid_attention_naive
from .chunked import hybrid_attention_chunked
from .recurrent import hybrid_attention_step, hybrid_attention_recurrent, empty_state
from .feature_map import FeatureMap

__all__ = [
    "hybrid_attention_naive",
    "hybrid_attention_chunked",
    "hybrid_attention_step",
    "hybrid_attention_recurrent",
    "empty_state",
    "FeatureMap",
]
