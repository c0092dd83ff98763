"""Prompt -> scene attributes (no layout). Used by evaluation and by the tokenizer tests.

Rules: words are lower-cased runs of letters. "<colour> background|backdrop" sets the
background; "[size] <colour> <shape>" starts an object; motion, speed and size words after an
object belong to it. Unknown words are ignored. A prompt with no object is an error.
"""
from __future__ import annotations

import re
from typing import List

from .scene import ObjectSpec, Scene
from .vocab import COLORS, SHAPES

DEFAULT_BACKGROUND = "black"
_SIZE = {"small": "small", "tiny": "small", "little": "small", "large": "large", "big": "large",
         "huge": "large"}
_SPEED = {"slowly": "slow", "gently": "slow", "slow": "slow", "quickly": "fast", "fast": "fast",
          "rapidly": "fast", "quick": "fast"}
_DIRS = {"left", "right", "up", "upward", "upwards", "down", "downward", "downwards"}
_MOTION = {"bounces": "bounce", "bouncing": "bounce", "bounce": "bounce",
           "orbits": "orbit", "orbit": "orbit", "orbiting": "orbit", "circles": "orbit",
           "grows": "grow", "growing": "grow", "bigger": "grow", "expands": "grow",
           "shrinks": "shrink", "shrinking": "shrink", "smaller": "shrink", "contracts": "shrink",
           "still": "still", "rests": "still", "motionless": "still", "stationary": "still"}


class PromptError(ValueError):
    pass


def words(prompt: str) -> List[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def parse_prompt(prompt: str) -> Scene:
    w = words(prompt)
    bg = None
    objs: List[ObjectSpec] = []
    pending_size = "medium"
    i = 0
    while i < len(w):
        tok = w[i]
        if tok in COLORS:
            nxt = w[i + 1] if i + 1 < len(w) else ""
            if nxt in ("background", "backdrop"):
                bg = tok
                i += 2
                continue
            if nxt in SHAPES:
                objs.append(ObjectSpec(tok, nxt, "still", "normal", pending_size))
                pending_size = "medium"
                i += 2
                continue
        elif tok in _SIZE:
            nxt = w[i + 1] if i + 1 < len(w) else ""
            if nxt in COLORS:
                pending_size = _SIZE[tok]
            elif objs:
                objs[-1].size = _SIZE[tok]
        elif objs and tok in _SPEED:
            objs[-1].speed = _SPEED[tok]
        elif objs and tok in _MOTION:
            if objs[-1].motion not in ("bounce", "orbit", "grow", "shrink"):
                objs[-1].motion = _MOTION[tok]
        elif objs and tok in _DIRS:
            if objs[-1].motion == "still":
                objs[-1].motion = tok.rstrip("s").replace("ward", "")
        elif tok == "not" and objs and i + 1 < len(w) and w[i + 1] in ("move", "moving"):
            objs[-1].motion = "still"
            i += 2
            continue
        i += 1
    if not objs:
        raise PromptError("prompt names no object: use '<colour> <shape>', e.g. 'a red circle'")
    for o in objs:
        if o.motion == "still":
            o.speed = "normal"
    return Scene(bg or DEFAULT_BACKGROUND, objs)
