"""Chunk table: every indexed chunk's id, text and article metadata, in the one order (by chunk id) that
all the indexes share — held as columns, so a million chunks cost tens of MB rather than gigabytes of
Python objects.

Texts are one UTF-8 blob with offsets (memory-mapped once saved: only the passages shown are read),
per-chunk numbers are int arrays, article fields are stored once per article. `meta[i]` still gives the
familiar dict of one chunk, built when asked.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, overload

import numpy as np

ARTICLE_FIELDS = ("article_id", "title", "source", "published_at", "url", "category")
CHUNK_FIELDS = ("chunk_index", "char_start", "char_end")


READ_ROWS = 65_536  # texts per slice of offsets turned into Python ints by `TextColumn.read`


class TextColumn(Sequence[str]):
    """Strings kept as one UTF-8 byte array and n+1 offsets."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self.blob, self.offsets = blob, offsets

    @classmethod
    def of_encoded(cls, encoded: Sequence[bytes]) -> TextColumn:
        """From the texts already encoded as UTF-8 (surrogates passed through)."""
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return bytes(self.blob[self.offsets[i] : self.offsets[i + 1]]).decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def read(self, path: Path, block: int = 1 << 22) -> Iterator[str]:
        """The texts, in order, read from this column's saved blob (`path`) with plain file reads, a block
        at a time: iterating a memory-mapped blob leaves every page it touched in the process (a build
        reading all 1M texts once would hold the whole blob)."""
        with path.open("rb") as f:
            buf, base = b"", 0  # buf holds the blob's bytes [base, base + len(buf))
            for first in range(0, len(self), READ_ROWS):  # offsets as Python ints a slice at a time
                bounds = self.offsets[first : first + READ_ROWS + 1].tolist()
                for a, b in pairwise(bounds):
                    if b > base + len(buf):
                        buf = buf[a - base :] + f.read(max(block, b - base - len(buf)))
                        base = a
                    yield buf[a - base : b - base].decode("utf-8", "surrogatepass")


class MetaColumn(Sequence[dict[str, Any]]):
    """Each chunk's metadata dict, made from its article's fields and its own numbers."""

    def __init__(self, articles: list[dict[str, Any]], article: np.ndarray, numbers: np.ndarray) -> None:
        self.articles, self.article, self.numbers = articles, article, numbers

    def __len__(self) -> int:
        return len(self.article)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        a = self.articles[int(self.article[i])]
        row = self.numbers[i]
        return {**{k: a[k] for k in ARTICLE_FIELDS},
                "chunk_index": int(row[0]), "char_start": int(row[1]), "char_end": int(row[2])}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))


class Positions:
    """Chunk id -> row, by binary search over the sorted ids (no million-entry dict)."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def get(self, chunk_id: str, default: int | None = None, /) -> int | None:
        i = bisect.bisect_left(self.ids, chunk_id)
        return i if i < len(self.ids) and self.ids[i] == chunk_id else default


@dataclass
class Codes:
    """A string column as small integer codes (one per chunk) and the code of each distinct value."""

    codes: np.ndarray
    index: dict[str, int]

    @classmethod
    def of(cls, per_article: list[str], article: np.ndarray) -> Codes:
        index: dict[str, int] = {}
        article_codes = np.array([index.setdefault(v, len(index)) for v in per_article], dtype=np.int32)
        return cls(article_codes[article] if per_article else np.zeros(0, np.int32), index)

    def isin(self, values: Sequence[str]) -> np.ndarray:
        """Which rows hold one of `values` (a boolean mask)."""
        lookup = np.zeros(len(self.index) + 1, bool)  # one flag per code: a gather, not np.isin's sort
        lookup[[self.index[v] for v in values if v in self.index]] = True
        return lookup[self.codes]


@dataclass
class ChunkTable:
    ids: list[str]  # sorted; chunks of one article are contiguous
    texts: TextColumn
    meta: MetaColumn
    ts: np.ndarray  # publication instants (epoch seconds; NaN when unknown)
    sources: Codes  # outlet of each chunk
    categories: Codes

    @property
    def articles(self) -> list[dict[str, Any]]:
        """Article fields (+ published_ts), one per article, in the order of their first chunk."""
        return self.meta.articles

    @property
    def article(self) -> np.ndarray:
        """The article row of each chunk."""
        return self.meta.article

    @classmethod
    def of(cls, ids: list[str], texts: TextColumn, meta: MetaColumn) -> ChunkTable:
        arts, pick = meta.articles, meta.article
        ts = np.array([np.nan if a["published_ts"] is None else a["published_ts"] for a in arts], np.float64)
        return cls(ids, texts, meta, ts[pick] if arts else np.zeros(0),
                   Codes.of([a["source"] for a in arts], pick), Codes.of([a["category"] for a in arts], pick))

    def header(self, i: int) -> str:
        return article_header(self.articles[int(self.article[i])])

    def save(self, folder: Path) -> None:
        (folder / "chunk-ids.json").write_text(json.dumps(self.ids))
        (folder / "articles.json").write_text(json.dumps(self.articles))
        np.save(folder / "text-offsets.npy", self.texts.offsets)
        blob, path = self.texts.blob, folder / "texts.bin"
        if not _mapped_from(blob, path):
            blob.tofile(path)
        np.save(folder / "chunk-article.npy", self.meta.article)
        np.save(folder / "chunk-numbers.npy", self.meta.numbers)

    @classmethod
    def load(cls, folder: Path) -> ChunkTable:
        ids = json.loads((folder / "chunk-ids.json").read_text())
        articles = json.loads((folder / "articles.json").read_text())
        blob_path = folder / "texts.bin"
        blob = (np.memmap(blob_path, dtype=np.uint8, mode="r") if blob_path.stat().st_size
                else np.zeros(0, dtype=np.uint8))
        texts = TextColumn(blob, np.load(folder / "text-offsets.npy"))
        article, numbers = np.load(folder / "chunk-article.npy"), np.load(folder / "chunk-numbers.npy")
        sizes = {len(ids), len(texts), len(article), len(numbers)}
        beyond = bool(len(article)) and int(article.max()) >= len(articles)
        if len(sizes) != 1 or int(texts.offsets[-1]) != len(blob) or beyond:
            raise ValueError(f"chunk table in {folder} is inconsistent (a torn or truncated copy)")
        return cls.of(ids, texts, MetaColumn(articles, article, numbers))


def _mapped_from(blob: np.ndarray, path: Path) -> bool:
    """Whether `blob` is the whole of `path`, memory-mapped (then it is already saved there)."""
    if not (isinstance(blob, np.memmap) and blob.filename and path.exists()):
        return False
    try:
        return os.path.samefile(str(blob.filename), path) and blob.nbytes == path.stat().st_size
    except FileNotFoundError:  # its file was removed
        return False


def article_header(a: dict[str, Any]) -> str:
    """`title | outlet | day` of an article (prefixed to its chunks for BM25)."""
    return " | ".join(p for p in (a["title"], a["source"], str(a["published_at"])[:10]) if p)


def expand_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Every integer of the ranges [starts[i], ends[i]), in order (one vectorised np.arange per range)."""
    lengths = ends - starts
    if not lengths.size or not lengths.sum():
        return np.zeros(0, np.int64)
    offsets = np.cumsum(lengths)
    return np.repeat(starts - (offsets - lengths), lengths) + np.arange(offsets[-1])
