"""Wan-like DiT: teacher (full softmax) and ReHyAt student (hybrid attention everywhere)."""
from .model import DiTConfig, DiT, stack_states, empty_states

__all__ = ["DiTConfig", "DiT", "stack_states", "empty_states"]
