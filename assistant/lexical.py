"""Lexical: BM25 (bm25s) over chunk texts, each prefixed with its article's title | outlet | date.

Words are lowercased, English stopwords dropped and Snowball-stemmed (PyStemmer), the same way
for chunks and questions. Scores are computed for every chunk at once (a numpy array), so filters
and sub-queries are plain boolean masks over the same index. Persisted with `save`/`load`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

_WORD = re.compile(r"(?u)\b\w\w+\b")


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """Lowercased, stopword-free, stemmed word tokens."""
    stop = _stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in stop]
    return list(_stemmer().stemWords(words))


class LexicalIndex:
    """BM25 scores of every chunk for a query."""

    def __init__(self, bm25: Any, size: int) -> None:
        self.bm25, self.size = bm25, size
        if size:  # plain ndarray views of memory-mapped arrays: np.memmap's indexing is slower per call
            scores = bm25.scores
            scores.update({k: np.asarray(scores[k]) for k in ("data", "indices", "indptr")})
        self.vocab: dict[str, int] = dict(bm25.vocab_dict) if size else {}

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        if texts:
            bm25.index([tokenize(t) or ["\x00"] for t in texts], show_progress=False)
        return cls(bm25, len(texts))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of each chunk (zeros when no query word is in the index)."""
        tokens = [t for t in tokenize(query) if t in self.vocab]
        if not tokens or not self.size:
            return np.zeros(self.size, np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def postings(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(row, score) of every posting of the query's words — each word as often as `scores` counts
        it — so a caller can score just the rows that match; their sum per row is `scores`' value."""
        spans = self.spans(query)
        if not spans:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        index = self.bm25.scores
        return (np.concatenate([index["indices"][a:b] for a, b in spans]).astype(np.int64, copy=False),
                np.concatenate([index["data"][a:b] for a, b in spans]).astype(np.float32, copy=False))

    def spans(self, query: str) -> list[tuple[int, int]]:
        """Where each of the query's words has its postings (start, end in the index's posting arrays)."""
        ids = [self.vocab[t] for t in tokenize(query) if t in self.vocab]
        if not ids or not self.size:
            return []
        indptr = self.bm25.scores["indptr"]
        return [(int(indptr[i]), int(indptr[i + 1])) for i in ids]

    def idf(self) -> dict[str, float]:
        """Inverse document frequency of every indexed word (BM25's own formula)."""
        if not self.size:
            return {}
        df = np.diff(np.asarray(self.bm25.scores["indptr"]))
        n = float(self.size)
        return {word: float(np.log(1 + (n - df[i] + 0.5) / (df[i] + 0.5)))
                for word, i in self.vocab.items() if i < len(df)}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.size:
            self.bm25.save(str(folder), show_progress=False)
        (folder / "size.json").write_text(json.dumps({"size": self.size}))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        size = int(json.loads((folder / "size.json").read_text())["size"])
        if not size:
            return cls.build([])
        # memory-mapped: a query reads the postings of its own words, not the whole index
        return cls(bm25s.BM25.load(str(folder), mmap=True, show_progress=False), size)
