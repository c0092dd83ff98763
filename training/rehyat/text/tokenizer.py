"""Word-level tokenizer over the world's vocabulary (exported as vocab.json for the TS runtime).

Rule (the TS side must do exactly this): lower-case, take the runs of ASCII letters
(regex ``[a-z]+``), map each to its id (unknown words -> <unk>), prepend <bos>, truncate to
``max_len`` tokens, pad with <pad> to ``max_len``. The empty prompt (<bos> then padding) is the
unconditional input for classifier-free guidance.
"""
from __future__ import annotations

import json
import re
from typing import Dict, List

from ..world import phrasing, parse, vocab

PAD, UNK, BOS = "<pad>", "<unk>", "<bos>"


def _world_words() -> List[str]:
    ws = set(vocab.COLORS) | set(vocab.SHAPES) | {"background", "backdrop", "and", "while", "as",
                                                     "a", "an", "one", "the", "on", "over", "against",
                                                     "in", "front", "of", "two", "with", "is"}
    texts = list(phrasing.MOVE_VERBS) + [p for v in phrasing.DIR_WORDS.values() for p in v]
    texts += [p for v in phrasing.OTHER_MOTIONS.values() for p in v]
    texts += [p for v in phrasing.SPEED_WORDS.values() for p in v]
    texts += [p for v in phrasing.SIZE_WORDS.values() for p in v] + phrasing.BG_PHRASES
    texts += list(parse._SIZE) + list(parse._SPEED) + list(parse._DIRS) + list(parse._MOTION)
    texts += ["move", "moving", "not"]
    for t in texts:
        ws |= set(re.findall(r"[a-z]+", t.lower()))
    return sorted(ws)


class Tokenizer:
    def __init__(self, words: List[str] = None, max_len: int = 24):
        words = words if words is not None else _world_words()
        self.itos = [PAD, UNK, BOS] + list(words)
        self.stoi: Dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.max_len = max_len

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> List[int]:
        ids = [self.stoi[BOS]] + [self.stoi.get(w, self.stoi[UNK]) for w in re.findall(r"[a-z]+", text.lower())]
        ids = ids[: self.max_len]
        return ids + [self.stoi[PAD]] * (self.max_len - len(ids))

    def batch(self, texts: List[str]):
        import torch
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)

    def to_json(self) -> dict:
        return {"type": "word-level", "lowercase": True, "pattern": "[a-z]+", "max_len": self.max_len,
                "pad_id": 0, "unk_id": 1, "bos_id": 2, "vocab": self.itos}

    @classmethod
    def from_json(cls, d: dict) -> "Tokenizer":
        t = cls(d["vocab"][3:], d["max_len"])
        assert t.itos == d["vocab"]
        return t
