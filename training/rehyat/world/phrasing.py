"""Scene -> varied English prompt ("A small red circle slowly drifts left over a blue background")."""
from __future__ import annotations

import numpy as np

from .scene import ObjectSpec, Scene

MOVE_VERBS = ["moves", "drifts", "slides", "glides", "travels"]
DIR_WORDS = {"left": ["left", "to the left"], "right": ["right", "to the right"],
             "up": ["up", "upward"], "down": ["down", "downward"]}
OTHER_MOTIONS = {
    "bounce": ["bounces", "is bouncing", "keeps bouncing"],
    "orbit": ["orbits", "circles around", "goes round in orbit"],
    "grow": ["grows", "gets bigger", "expands"],
    "shrink": ["shrinks", "gets smaller", "contracts"],
    "still": ["stays still", "sits still", "rests", "does not move"],
}
SPEED_WORDS = {"slow": ["slowly", "gently"], "fast": ["quickly", "fast", "rapidly"]}
SIZE_WORDS = {"small": ["small", "tiny", "little"], "large": ["large", "big", "huge"], "medium": [""]}
BG_PHRASES = ["on a {} background", "over a {} background", "against a {} backdrop",
              "in front of a {} background"]


def _pick(rng, xs):
    return xs[int(rng.integers(len(xs)))]


def _noun(o: ObjectSpec, rng) -> str:
    size = _pick(rng, SIZE_WORDS[o.size])
    art = _pick(rng, ["a", "a", "one"])
    return " ".join(w for w in (art, size, o.color, o.shape) if w)


def _motion(o: ObjectSpec, rng) -> str:
    if o.motion in DIR_WORDS:
        core = f"{_pick(rng, MOVE_VERBS)} {_pick(rng, DIR_WORDS[o.motion])}"
    else:
        core = _pick(rng, OTHER_MOTIONS[o.motion])
    if o.speed in SPEED_WORDS and o.motion != "still":
        sw = _pick(rng, SPEED_WORDS[o.speed])
        if rng.random() < 0.5 and not core.startswith(("is ", "keeps ", "goes ", "does ")):
            return f"{sw} {core}"
        return f"{core} {sw}"
    return core


def describe(scene: Scene, rng: np.random.Generator) -> str:
    bg = _pick(rng, BG_PHRASES).format(scene.background)
    parts = [f"{_noun(o, rng)} {_motion(o, rng)}" for o in scene.objects]
    if len(parts) == 1:
        body = parts[0]
    else:
        body = f"{parts[0]}{_pick(rng, [' and ', ', while ', ' as '])}{parts[1]}"
    if rng.random() < 0.25:
        text = f"{bg}, {body}"
    else:
        text = f"{body} {bg}"
    text = text[0].upper() + text[1:] if rng.random() < 0.6 else text
    return text + ("." if rng.random() < 0.5 else "")
