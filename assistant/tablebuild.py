"""Table build: the chunk table and its vectors from Chroma's pages of rows, reduced page by page.

Chroma hands the chunks back in pages, in its own order. Each page is reduced as it arrives — texts to
UTF-8 bytes, metadata to an article row (article fields kept once per article) and three numbers, vectors
copied into one growing float32 matrix — and dropped, so a million chunks never sit in memory as a million
metadata dicts, strings and per-page vector blocks at once. At the end the kept rows are put in chunk-id
order, the table's one order (articles numbered by their first chunk in it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chunktable import ARTICLE_FIELDS, CHUNK_FIELDS, ChunkTable, MetaColumn, TextColumn

Page = tuple[list[str], list[str], list[dict[str, Any]], Any]  # ids, documents, metadatas, embeddings
WRITE_BLOCK = 16_384  # rows per write of `_Growing.write`


class _Growing:
    """Rows of a 2-D array appended in blocks; capacity doubled when full (a count given up front
    usually makes it the right size at once)."""

    def __init__(self, capacity: int, dtype: Any) -> None:
        self.capacity, self.dtype, self.n = max(1, capacity), dtype, 0
        self.data: np.ndarray | None = None

    def add(self, block: np.ndarray) -> None:
        if self.data is None:
            self.data = np.empty((self.capacity, *block.shape[1:]), self.dtype)
        if self.n + len(block) > len(self.data):
            grown = np.empty((max(2 * len(self.data), self.n + len(block)), *block.shape[1:]), self.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : self.n + len(block)] = block
        self.n += len(block)

    def write(self, path: Path, order: np.ndarray, width: int) -> None:
        """The rows in `order` written to `path` as one .npy array, a block of rows at a time."""
        with path.open("wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(self.dtype)), "fortran_order": False,
                      "shape": (len(order), width)}
            np.lib.format.write_array_header_1_0(f, header)
            for start in range(0, len(order), WRITE_BLOCK):
                if self.data is not None:
                    f.write(np.ascontiguousarray(self.data[order[start : start + WRITE_BLOCK]]).tobytes())

    def take(self, order: np.ndarray, width: int) -> np.ndarray:
        """The rows in `order` (`width` columns when nothing was ever added)."""
        return np.zeros((0, width), self.dtype) if self.data is None else self.data[order]


def table_from_pages(pages: Iterable[Page], keep: Callable[[dict[str, Any]], bool],
                     expected: int = 0, after_page: Callable[[], None] | None = None,
                     arrange: Callable[[ChunkTable], np.ndarray] | None = None, write_to: Path | None = None
                     ) -> tuple[ChunkTable, np.ndarray]:
    """The rows `keep` accepts, sorted by chunk id, as a table and the matrix of their vectors (in table
    order, or with `arrange`, in the order of the table rows it returns: one gather from the rows as read,
    not two copies). `expected`: about how many rows come (sizes the vector matrix); `after_page`: called
    once each page is reduced (e.g. to hand freed memory back). With `write_to`, the vectors are written
    there (.npy) a block at a time and come back memory-mapped from it: no second copy in memory."""
    ids: list[str] = []
    texts: list[bytes] = []
    articles: list[dict[str, Any]] = []
    row_of: dict[str, int] = {}
    article: list[int] = []
    numbers, vectors = _Growing(expected, np.int64), _Growing(expected, np.float32)
    dim = 0
    for page_ids, documents, metadatas, embeddings in pages:
        kept = [j for j, m in enumerate(metadatas) if keep(m)]
        block = np.asarray(embeddings, dtype=np.float32)
        dim = block.shape[1] if block.ndim == 2 else dim
        for j in kept:
            m = metadatas[j]
            aid = m.get("article_id", "")
            if aid not in row_of:
                row_of[aid] = len(articles)
                ts = m.get("published_ts")
                articles.append({**{k: m.get(k, "") for k in ARTICLE_FIELDS},
                                 "published_ts": float(ts) if ts is not None else None})
            article.append(row_of[aid])
            ids.append(page_ids[j])
            texts.append(documents[j].encode("utf-8", "surrogatepass"))
        if kept:
            numbers.add(np.array([[int(metadatas[j].get(k, 0)) for k in CHUNK_FIELDS] for j in kept],
                                 np.int64))
            vectors.add(block[kept])
        del block, page_ids, documents, metadatas, embeddings
        if after_page:
            after_page()
    order = np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)
    sorted_ids = [ids[i] for i in order]
    del ids
    column = TextColumn.of_encoded([texts[i] for i in order])
    del texts
    by_chunk = np.asarray(article, dtype=np.int64)[order]
    # articles numbered in the order of their first chunk in the table
    firsts = np.unique(by_chunk, return_index=True)[1]
    renumber = np.zeros(len(articles), np.int32)
    appearance = by_chunk[np.sort(firsts)]
    renumber[appearance] = np.arange(len(appearance), dtype=np.int32)
    meta = MetaColumn([articles[a] for a in appearance.tolist()], renumber[by_chunk],
                      numbers.take(order, len(CHUNK_FIELDS)))
    table = ChunkTable.of(sorted_ids, column, meta)
    rows = order if arrange is None else order[arrange(table)]
    if write_to is None:
        return table, vectors.take(rows, dim)
    vectors.write(write_to, rows, dim)
    return table, np.load(write_to, mmap_mode="r")
