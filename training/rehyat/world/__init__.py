"""The synthetic video world: vocabulary, scenes, renderer, phrasings, prompt parser."""
from .vocab import COLORS, SHAPES, MOTIONS, SPEEDS, SIZES, FPS, RESOLUTION
from .scene import ObjectSpec, Scene, sample_scene, is_heldout, HELDOUT_COLOR_SHAPE, HELDOUT_SHAPE_MOTION
from .render import render
from .phrasing import describe
from .parse import parse_prompt, PromptError

__all__ = [
    "COLORS", "SHAPES", "MOTIONS", "SPEEDS", "SIZES", "FPS", "RESOLUTION",
    "ObjectSpec", "Scene", "sample_scene", "is_heldout", "HELDOUT_COLOR_SHAPE",
    "HELDOUT_SHAPE_MOTION", "render", "describe", "parse_prompt", "PromptError",
]
