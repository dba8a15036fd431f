"""Sentence scores: each chunk's best-matching sentence (BM25), for the chunks worth it.

`candidates` picks, per text, about the top N chunks by chunk BM25 inside the question's filters; a
`SentenceView` scores the sentences of the union of a question's candidates from the postings of each
text's words, filtering each word's postings to those chunks once for all the question's texts.
"""

from __future__ import annotations

import threading
from collections import Counter
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from assistant.chunktable import expand_ranges
from assistant.lexical import weighted

if TYPE_CHECKING:
    from assistant.indexes import Indexes


def candidates(chunk_bm25: np.ndarray, n: int, allowed: np.ndarray | None) -> np.ndarray | None:
    """The chunks worth a sentence-level score: about the top `n` by chunk BM25 among those the question's
    filters allow (`allowed`; None: all) — a chunk without the words has no sentence with them. None: all
    of them (a store no bigger than `n`). Among many, the cut-off is read from a fixed random sample of the
    allowed chunks holding ~400 of the top (a full partition of 100k scores cost ~1 ms per text; before
    the sample was drawn from the allowed chunks only, a narrow filter left it empty and fell back to that
    partition); the count then varies by about 5 % — ties at the cut-off that would take over 1.5× as
    many fall back to the exact top."""
    size = chunk_bm25.size
    if not n or size <= n:
        return None
    pool = None if allowed is None else np.flatnonzero(allowed)
    scores = chunk_bm25 if pool is None else chunk_bm25[pool]
    top = _top(scores, n)
    chosen = np.zeros(size, bool)
    chosen[top if pool is None else pool[top]] = True
    return chosen


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of about the `n` highest scores (all those above 0 when they are fewer)."""
    if scores.size <= n:
        return np.flatnonzero(scores > 0)
    step = n // 400 if scores.size >= 4 * n else 0  # a sample of ~400 of the top, from 1,600 or more
    if step >= 2:
        sample = scores[_sample_positions(scores.size, scores.size // step)]
        keep = max(1, round(sample.size * n / scores.size))
        cut = float(np.partition(sample, sample.size - keep)[sample.size - keep])
        chosen = np.flatnonzero(scores >= cut if cut > 0 else scores > 0)
        if chosen.size <= 1.5 * n:
            return chosen
    return np.argpartition(scores, scores.size - n)[scores.size - n :]


@lru_cache(maxsize=8)
def _sample_positions(size: int, m: int) -> np.ndarray:
    """`m` distinct positions of `size`, sorted, the same every time (a fixed seed: rankings must not vary
    between runs or processes)."""
    return np.sort(np.random.default_rng(0).choice(size, m, replace=False))


class SentenceView:
    """Best-sentence scoring restricted to some chunks, for all the texts of one question: each word's
    sentence postings are filtered to those chunks once and reused (a question's clauses and hops repeat
    its words: at 100k chunks ~775k postings were touched per question, ~265k of them distinct)."""

    def __init__(self, indexes: Indexes, chunks: np.ndarray | None) -> None:
        self.indexes, self.wanted = indexes, None
        self._words: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        if chunks is not None:
            # the chosen chunks' sentences (contiguous runs: sentences are stored in chunk order) as a
            # bitmap, 1 byte per sentence: cheaper to look postings up in than the sentence→chunk array
            starts = indexes.sentence_start
            self.wanted = np.zeros(indexes.sentences.size, bool)
            self.wanted[expand_ranges(starts[:-1][chunks], starts[1:][chunks])] = True

    def best(self, text: str) -> np.ndarray:
        """Per chunk, the BM25 score of its best-matching sentence for `text` (0 outside the chunks)."""
        ix = self.indexes
        spans = Counter(ix.sentences.spans(text))
        rows, values = weighted([(self._word(span), times) for span, times in spans.items()])
        best = np.zeros(len(ix.table.ids), np.float32)
        if rows.size:
            per_sentence = ix.sentence_sums.take()
            np.add.at(per_sentence, rows, values)
            summed = per_sentence[rows]
            per_sentence[rows] = 0
            ix.sentence_sums.give(per_sentence)  # zeroed again (lost, not given back, if anything failed)
            np.maximum.at(best, ix.sentence_chunk[rows], summed)
        return best

    def _word(self, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if span not in self._words:
            rows, values = self.indexes.sentences.word_postings(span)
            if self.wanted is not None:
                keep = self.wanted[rows]
                rows, values = rows[keep], values[keep]
            self._words[span] = (rows, values)
        return self._words[span]


class Zeros:
    """Zeroed float32 arrays of one size, lent and given back zeroed: a text's postings are summed per
    sentence in one, and allocating and zeroing a fresh one per text cost more than the sums (1M chunks,
    10M sentences: ~8 of ~10 ms). One per retrieval running at once."""

    def __init__(self, size: int) -> None:
        self.size, self._free, self._lock = size, list[np.ndarray](), threading.Lock()

    def take(self) -> np.ndarray:
        with self._lock:
            if self._free:
                return self._free.pop()
        return np.zeros(self.size, np.float32)

    def give(self, zeroed: np.ndarray) -> None:
        with self._lock:
            self._free.append(zeroed)

