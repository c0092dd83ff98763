"""Training batches rendered on the fly (GPU or CPU): prompts + videos in [-1, 1]."""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch

from .world import describe, render, sample_scene


def make_batch(rng: np.random.Generator, batch: int, frames: int, size: int, device=None,
               heldout: str = "exclude") -> Tuple[torch.Tensor, List[str]]:
    scenes = [sample_scene(rng, heldout, size=128) for _ in range(batch)]
    prompts = [describe(s, rng) for s in scenes]
    video = render(scenes, frames, size=size, device=device)  # [B, F, H, W, 3]
    return video.permute(0, 4, 1, 2, 3).mul(2).sub(1).contiguous(), prompts
