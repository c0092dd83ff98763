"""Evaluation from generated frames alone: parse the prompt, detect objects, score."""
from .detect import score_video, Detector

__all__ = ["score_video", "Detector"]
