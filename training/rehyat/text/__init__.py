"""Word-level tokenizer and small transformer text encoder."""
from .tokenizer import Tokenizer
from .encoder import TextEncoder, TextConfig

__all__ = ["Tokenizer", "TextEncoder", "TextConfig"]
