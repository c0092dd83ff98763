"""Scenes: what a video shows, sampled reproducibly from a seed."""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import List, Optional

import numpy as np

from .vocab import COLORS, MOTIONS, SHAPES, SIZES, SPEEDS

# Attribute combinations never shown in training (held-out compositions).
HELDOUT_COLOR_SHAPE = [("red", "star"), ("blue", "triangle"), ("green", "diamond"),
                       ("yellow", "circle"), ("purple", "square")]
HELDOUT_SHAPE_MOTION = [("triangle", "orbit"), ("circle", "shrink"), ("square", "bounce"),
                        ("star", "left")]


@dataclass
class ObjectSpec:
    color: str
    shape: str
    motion: str = "still"
    speed: str = "normal"
    size: str = "medium"
    # layout (not expressed in words): start position in pixels and phase in [0, 1)
    x: float = 64.0
    y: float = 64.0
    phase: float = 0.0


@dataclass
class Scene:
    background: str
    objects: List[ObjectSpec] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def is_heldout(scene: Scene) -> bool:
    for o in scene.objects:
        if (o.color, o.shape) in HELDOUT_COLOR_SHAPE or (o.shape, o.motion) in HELDOUT_SHAPE_MOTION:
            return True
    return False


def _sample_once(rng: np.random.Generator, size: int) -> Scene:
    colors = list(COLORS)
    n_obj = 1 if rng.random() < 0.6 else 2
    picked = rng.choice(len(colors), size=n_obj + 1, replace=False)
    bg = colors[picked[0]]
    objs = []
    for i in range(n_obj):
        motion = MOTIONS[rng.integers(len(MOTIONS))]
        speed = "normal" if motion == "still" else list(SPEEDS)[rng.integers(3)]
        sz = list(SIZES)[rng.integers(3)] if rng.random() < 0.6 else "medium"
        r = SIZES[sz]
        lo, hi = r + 4, size - r - 4
        if n_obj == 2:  # keep the two objects apart: left / right halves
            xlo, xhi = (lo, size / 2 - r / 2) if i == 0 else (size / 2 + r / 2, hi)
        else:
            xlo, xhi = lo, hi
        x = float(rng.uniform(xlo, max(xlo + 1, xhi)))
        y = float(rng.uniform(lo, hi))
        if motion == "orbit":
            x = float(np.clip(x, 28 + r, size - 28 - r)) if n_obj == 1 else x
        objs.append(ObjectSpec(colors[picked[i + 1]], SHAPES[rng.integers(len(SHAPES))], motion,
                               speed, sz, x, y, float(rng.random())))
    return Scene(bg, objs)


def sample_scene(rng: np.random.Generator, heldout: str = "exclude", size: int = 128) -> Scene:
    """heldout: 'exclude' (training), 'only' (held-out compositions), 'any'."""
    if heldout not in ("exclude", "only", "any"):
        raise ValueError(f"heldout must be exclude|only|any, got {heldout!r}")
    for _ in range(10000):
        s = _sample_once(rng, size)
        h = is_heldout(s)
        if heldout == "any" or (heldout == "exclude" and not h) or (heldout == "only" and h):
            return s
    raise RuntimeError("could not sample a scene")
