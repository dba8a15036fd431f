"""Table build: the chunk table and its vectors from Chroma's pages of rows, reduced page by page.

Chroma hands the chunks back in pages, in its own order. Each page is reduced as it arrives — metadata to
an article row (article fields kept once per article) and three numbers, texts (UTF-8) and vectors
appended to spill files beside the table — and dropped, so a million chunks never sit in memory as a
million metadata dicts, strings and vector blocks (held until the end, texts and vectors made the
1M-chunk build peak at 6.7 GB while the table was put together). At the end the kept rows are put in
chunk-id order, the table's one order (articles numbered by their first chunk in it): the texts and the
vectors are copied from the spill files in that order, a row at a time with pread, into the table's
`texts.bin` and `vectors.npy`, and come back memory-mapped.
"""

from __future__ import annotations

import io
import os
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chunktable import ARTICLE_FIELDS, CHUNK_FIELDS, ChunkTable, MetaColumn, TextColumn

Page = tuple[list[str], list[str], list[dict[str, Any]], Any]  # ids, documents, metadatas, embeddings


class _Spill:
    """Byte records appended to a file as they come, then copied to another file in any order."""

    def __init__(self, path: Path) -> None:
        self.path, self.file = path, path.open("wb")
        self.starts = array("q", [0])  # record i is bytes starts[i]:starts[i + 1]

    def add(self, data: bytes, sizes: Iterable[int]) -> None:
        """Records whose bytes, one after the other, are `data` (their lengths: `sizes`)."""
        self.file.write(data)
        end = self.starts[-1]
        for size in sizes:
            end += size
            self.starts.append(end)

    def copy(self, order: np.ndarray, out: Path, header: bytes = b"") -> np.ndarray:
        """Write `header`, then the records in `order`, to `out`; remove the spill file. Returns the
        records' lengths in that order."""
        self.file.close()
        starts = np.frombuffer(self.starts, np.int64)
        sizes = np.diff(starts)[order]
        with self.path.open("rb") as src, out.open("wb") as dst:
            dst.write(header)
            fd = src.fileno()
            for i, size in zip(order.tolist(), sizes.tolist(), strict=True):
                dst.write(os.pread(fd, size, int(starts[i])))
        self.path.unlink()
        return sizes


def table_from_pages(pages: Iterable[Page], keep: Callable[[dict[str, Any]], bool], folder: Path,
                     after_page: Callable[[], None] | None = None,
                     arrange: Callable[[ChunkTable], np.ndarray] | None = None
                     ) -> tuple[ChunkTable, np.ndarray]:
    """The rows `keep` accepts, sorted by chunk id, as a table (its texts in `folder/texts.bin`) and the
    matrix of their vectors (`folder/vectors.npy`), both memory-mapped: the vectors in table order, or
    with `arrange`, in the order of the table rows it returns. `after_page`: called once each page is
    reduced (e.g. to hand freed memory back)."""
    ids: list[str] = []
    articles: list[dict[str, Any]] = []
    row_of: dict[str, int] = {}
    article, numbers = array("q"), array("q")
    texts, vectors = _Spill(folder / ".texts.spill"), _Spill(folder / ".vectors.spill")
    dim = 0
    for page_ids, documents, metadatas, embeddings in pages:
        kept = [j for j, m in enumerate(metadatas) if keep(m)]
        block = np.asarray(embeddings, dtype=np.float32)
        dim = block.shape[1] if block.ndim == 2 else dim
        encoded = []
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
            numbers.extend(int(m.get(k, 0)) for k in CHUNK_FIELDS)
            encoded.append(documents[j].encode("utf-8", "surrogatepass"))
        texts.add(b"".join(encoded), map(len, encoded))
        if kept:
            vectors.add(np.ascontiguousarray(block[kept]).tobytes(), [block.shape[1] * 4] * len(kept))
        del block, page_ids, documents, metadatas, embeddings, encoded
        if after_page:
            after_page()
    order = np.array(sorted(range(len(ids)), key=ids.__getitem__), dtype=np.int64)
    sorted_ids = [ids[i] for i in order]
    del ids
    offsets = np.zeros(len(order) + 1, np.int64)
    np.cumsum(texts.copy(order, folder / "texts.bin"), out=offsets[1:])
    blob = (np.memmap(folder / "texts.bin", dtype=np.uint8, mode="r") if offsets[-1]
            else np.zeros(0, dtype=np.uint8))
    by_chunk = np.frombuffer(article, np.int64)[order]
    # articles numbered in the order of their first chunk in the table
    firsts = np.unique(by_chunk, return_index=True)[1]
    renumber = np.zeros(len(articles), np.int32)
    appearance = by_chunk[np.sort(firsts)]
    renumber[appearance] = np.arange(len(appearance), dtype=np.int32)
    meta = MetaColumn([articles[a] for a in appearance.tolist()], renumber[by_chunk],
                      np.frombuffer(numbers, np.int64).reshape(-1, len(CHUNK_FIELDS))[order])
    table = ChunkTable.of(sorted_ids, TextColumn(blob, offsets), meta)
    rows = order if arrange is None else order[arrange(table)]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (len(rows), dim)})
    vectors.copy(rows, folder / "vectors.npy", header.getvalue())
    return table, np.load(folder / "vectors.npy", mmap_mode="r")
