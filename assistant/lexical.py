"""Lexical: BM25 (bm25s) over chunk texts, each prefixed with its article's title | outlet | date.

Words are lowercased, English stopwords dropped and Snowball-stemmed (PyStemmer), the same way
for chunks and questions. Scores are computed for every chunk at once (a numpy array), so filters
and sub-queries are plain boolean masks over the same index. Persisted with `save`/`load`.
"""

from __future__ import annotations

import json
import re
from array import array
from collections import Counter
from collections.abc import Iterable
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
    def build(cls, texts: Iterable[str], k1: float = 1.2, b: float = 0.75) -> LexicalIndex:
        """BM25 (bm25s' default "lucene" variant) over `texts`, built as bm25s would but streamed: each
        text becomes (word id, count) arrays as it is read, never a list of word strings — at 100k chunks
        bm25s' own `index` held ~50M token strings and peaked over 3 GB. Saved and loaded by bm25s."""
        import bm25s

        vocab: dict[str, int] = {}
        words, counts, lengths = array("i"), array("i"), array("i")
        for text in texts:
            tokens = tokenize(text) or ["\x00"]  # an empty text still takes a row
            tally = Counter(vocab.setdefault(t, len(vocab)) for t in tokens)
            words.extend(tally.keys())
            counts.extend(tally.values())
            lengths.append(len(tally))
            lengths.append(len(tokens))
        bm25 = bm25s.BM25(k1=k1, b=b)
        n = len(lengths) // 2
        if not n:
            return cls(bm25, 0)
        sizes = np.frombuffer(lengths, np.int32).reshape(n, 2)
        bm25.scores = _postings(np.frombuffer(words, np.int32), np.frombuffer(counts, np.int32), sizes,
                                len(vocab), k1, b)
        bm25.vocab_dict, bm25.nonoccurrence_array = vocab, None
        return cls(bm25, n)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of each chunk (zeros when no query word is in the index): the postings of the
        query's words summed per row."""
        out = np.zeros(self.size, np.float32)
        for span, times in Counter(self.spans(query)).items():  # word by word: nothing concatenated
            rows, values = self.word_postings(span)
            np.add.at(out, rows, values * np.float32(times) if times > 1 else values)
        return out

    def postings(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """(row, score) of every posting of the query's words, a word said n times weighing n times (as
        BM25 counts it), so a caller can score just the rows that match; their sum per row is `scores`'
        value. Each word's postings are read once: questions repeat their words (a third of the postings
        of some MultiHop-RAG questions were repeats)."""
        spans = self.spans(query)
        if not spans:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return weighted([(self.word_postings(span), times) for span, times in Counter(spans).items()])

    def word_postings(self, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of one word's postings, given where they are (see `spans`)."""
        a, b = span
        return self.bm25.scores["indices"][a:b], self.bm25.scores["data"][a:b]

    def spans(self, query: str) -> list[tuple[int, int]]:
        """Where each of the query's words has its postings (start, end in the index's posting arrays),
        once per time the word is said."""
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


def weighted(parts: list[tuple[tuple[np.ndarray, np.ndarray], int]]) -> tuple[np.ndarray, np.ndarray]:
    """Words' postings ((rows, scores), times said) as one (rows, scores) pair, each word's scores times
    the number of times it was said."""
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    rows = np.concatenate([r for (r, _), _ in parts])  # int32 from the index: fine as indices
    values = np.concatenate([v * np.float32(t) if t > 1 else v for (_, v), t in parts])
    return rows, values.astype(np.float32, copy=False)


BLOCK = 1 << 20  # postings computed and placed per step of `_postings`


def _postings(word: np.ndarray, tf: np.ndarray, sizes: np.ndarray, vocab: int, k1: float, b: float
              ) -> dict[str, Any]:
    """bm25s' CSC score matrix (word by word, rows ascending within a word) from the postings in text
    order (`word`, `tf`: one per distinct word of each text; `sizes`: per text, its distinct words and
    its length). Computed and placed a block of postings at a time (a counting sort by word, stable, so
    each word's rows stay ascending): the whole-array version held ~60 bytes per posting at once (float64
    temporaries and an int64 argsort) — 1M chunks have ~130M postings. Values are bit-identical to it."""
    n = len(sizes)
    df = np.bincount(word, minlength=vocab)
    indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    ends = np.cumsum(sizes[:, 0], dtype=np.int64)  # where each text's postings end
    mean = sizes[:, 1].mean()
    data, indices = np.empty(len(word), np.float32), np.empty(len(word), np.int32)
    cursor = indptr[:-1].copy()  # next free slot of each word
    for start in range(0, len(word), BLOCK):
        w = word[start : start + BLOCK]
        doc = np.searchsorted(ends, np.arange(start, start + len(w)), side="right").astype(np.int32)
        f = tf[start : start + len(w)].astype(np.float32)
        value = (idf[w] * (f / (k1 * ((1 - b) + b * sizes[doc, 1] / mean) + f))).astype(np.float32)
        order = np.argsort(w, kind="stable")
        by_word = w[order]
        first = np.r_[True, by_word[1:] != by_word[:-1]]
        run_start = np.maximum.accumulate(np.where(first, np.arange(len(w)), 0))
        slot = cursor[by_word] + (np.arange(len(w)) - run_start)
        data[slot], indices[slot] = value[order], doc[order]
        cursor += np.bincount(w, minlength=vocab)
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": n}
