"""Dedup: recognise syndicated copies (the same wire story from two outlets) before indexing.

Each article body is reduced to its set of word 5-grams; a 64-value MinHash signature estimates the
Jaccard similarity of two sets cheaply. Candidates whose estimate comes near the threshold are
confirmed on the exact 5-gram sets, so a false match needs the texts themselves to overlap.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

import numpy as np

_PRIME = np.uint64(4294967311)  # > 2**32
_RNG = np.random.default_rng(20240115)
_A = _RNG.integers(1, 2**32 - 1, size=64, dtype=np.uint64)
_B = _RNG.integers(0, 2**32 - 1, size=64, dtype=np.uint64)
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 5) -> set[int]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {zlib.crc32(" ".join(words).encode())}
    return {zlib.crc32(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)}


def signature(shingle_set: set[int]) -> np.ndarray:
    x = np.fromiter(shingle_set, dtype=np.uint64, count=len(shingle_set))
    return ((np.outer(x, _A) + _B) % _PRIME).min(axis=0).astype(np.uint32)


def to_hex(sig: np.ndarray) -> str:
    return sig.astype(">u4").tobytes().hex()


def from_hex(text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), dtype=">u4").astype(np.uint32)


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class DuplicateIndex:
    """Signatures of the indexed articles; finds the first article a new body nearly repeats."""

    def __init__(self, threshold: float, body_of: Callable[[str], str | None]) -> None:
        self.threshold = threshold
        self._body_of = body_of  # loads a stored body to confirm a candidate exactly
        self._ids: list[str] = []
        self._matrix = np.zeros((64, 64), dtype=np.uint32)  # one signature a row, grown by doubling
        self._alive = np.zeros(64, dtype=bool)
        self._sets: dict[str, set[int]] = {}

    def __contains__(self, article_id: object) -> bool:
        return any(self._alive[row] for row, other in enumerate(self._ids) if other == article_id)

    def add(self, article_id: str, sig: np.ndarray, shingle_set: set[int] | None = None) -> None:
        row = len(self._ids)
        if row == len(self._matrix):
            self._matrix = np.vstack([self._matrix, np.zeros_like(self._matrix)])
            self._alive = np.concatenate([self._alive, np.zeros_like(self._alive)])
        self._ids.append(article_id)
        self._matrix[row], self._alive[row] = sig, True
        if shingle_set is not None:
            self._sets[article_id] = shingle_set

    def discard(self, article_id: str) -> None:
        """Forget an article: its indexed version is being replaced, so nothing may match it any more."""
        for row, other in enumerate(self._ids):
            if other == article_id:
                self._alive[row] = False
        self._sets.pop(article_id, None)

    def find(self, article_id: str, sig: np.ndarray, shingle_set: set[int]) -> str | None:
        """Id of the earliest indexed article this one duplicates, or None."""
        n = len(self._ids)
        estimates = (self._matrix[:n] == sig).mean(axis=1)
        for row in np.flatnonzero((estimates >= self.threshold - 0.15) & self._alive[:n]):
            other = self._ids[row]
            if other == article_id:
                continue
            other_set = self._sets.get(other)
            if other_set is None:
                body = self._body_of(other)
                other_set = self._sets[other] = shingles(body) if body else set()
            if jaccard(shingle_set, other_set) >= self.threshold:
                return other
        return None
