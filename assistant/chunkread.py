"""Chunk read: the index build's read of every committed chunk out of Chroma — in a process of its own
when the store is local and big.

Any read of a local Chroma collection loads the collection's HNSW index into the reading process (1M
chunks: its own float32 copy of every vector plus the graph, 2 GB) and keeps it there. The build reads
every chunk once (text, metadata, vector), and the process that builds is usually the one that then
serves — which never queries Chroma's vectors (assistant/ivf.py). So the chunks of a big local store
are read by a child process (`python -m assistant.chunkread FOLDER`): it writes the chunk table, its
texts and its vectors into the build folder (assistant/tablebuild.py) and exits, handing that memory
back; the builder loads them memory-mapped. A Chroma server keeps its HNSW itself: its chunks (and a
small store's) are read in process, through the same code.

Chunks are asked for by id: a committed version's ids follow from its article record (`n_chunks`
ids carrying its article id and content hash), so the chunk collection is never listed (paging through
a million ids took 173 s and 2 GB of Chroma's heap).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.chunktable import ChunkTable
from assistant.store import INDEXED
from assistant.tablebuild import Page, table_from_pages
from ingest.chunk import chunk_id

SEPARATE_MIN = 20_000  # committed chunks from which a local store's chunks are read by a child process
REQUEST = ".chunkread.pickle"  # what the child is asked to read, left in the build folder
PROJECT = Path(__file__).resolve().parents[1]

Records = list[tuple[str, dict[str, Any]]]


def committed_chunk_ids(records: Records) -> list[str]:
    """The chunk ids of every committed article version (an `indexed` record with a content hash),
    sorted: each version's `n_chunks` ids carry its article id and content hash."""
    return sorted(chunk_id(aid, str(m["content_hash"]), n) for aid, m in records
                  if m.get("status") == INDEXED and m.get("content_hash")
                  for n in range(int(m.get("n_chunks") or 0)))


def clustered_order(table: ChunkTable) -> np.ndarray:
    """Table rows by outlet, then publication time, then row: the order the chunk vectors are stored in,
    so an outlet or date filter allows a few contiguous runs of them."""
    return np.lexsort((np.arange(len(table.ids)), table.ts, table.sources.codes))


def read_chunks(store: Any, records: Records, folder: Path) -> tuple[ChunkTable, np.ndarray]:
    """Every chunk of a committed article version (`records`: the store's article records), by id, and
    its embedding (rows of one float32 matrix in `clustered_order`), both written into `folder` and
    loaded back memory-mapped. A local store of `SEPARATE_MIN` committed chunks or more is read by a
    child process."""
    chunks = sum(int(m.get("n_chunks") or 0) for _, m in records if m.get("status") == INDEXED)
    chroma = store.client.get_settings()
    if chunks < SEPARATE_MIN or not chroma.is_persistent:
        read_into(store.chunks, store.batch, records, folder)
    else:
        _read_in_child(chroma, store.chunks.name, store.batch, records, folder)
    return ChunkTable.load(folder), np.load(folder / "vectors.npy", mmap_mode="r")


def read_into(collection: Any, batch: int, records: Records, folder: Path) -> None:
    """Read the committed chunks from `collection` a page at a time, reduce each page as it arrives
    (assistant/tablebuild.py) and write the table, its texts, its vectors and their order into `folder`.
    A chunk whose metadata names another version than its record's is left out."""
    committed = {i: m.get("content_hash") for i, m in records if m.get("status") == INDEXED}
    ids, page = committed_chunk_ids(records), batch * 5

    def pages() -> Iterator[Page]:
        for start in range(0, len(ids), page):
            got = collection.get(ids=ids[start : start + page],
                                 include=["documents", "metadatas", "embeddings"])
            yield got["ids"], got["documents"], got["metadatas"], got["embeddings"]

    def keep(m: dict[str, Any]) -> bool:
        aid = m.get("article_id")
        return aid in committed and committed[aid] == m.get("content_hash")

    table, _ = table_from_pages(pages(), keep, folder, release_freed_memory, arrange=clustered_order)
    table.save(folder)
    np.save(folder / "vector-order.npy", clustered_order(table))


def _read_in_child(chroma: Any, collection: str, batch: int, records: Records, folder: Path) -> None:
    wanted = ("content_hash", "status", "n_chunks")
    request = {"chroma": chroma, "collection": collection, "batch": batch,
               "records": [(i, {k: m.get(k) for k in wanted}) for i, m in records]}
    with (folder / REQUEST).open("wb") as f:
        pickle.dump(request, f)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH"))
                                                      if p)}
    done = subprocess.run([sys.executable, "-m", "assistant.chunkread", str(folder)], env=env,
                          capture_output=True, text=True, check=False)
    (folder / REQUEST).unlink(missing_ok=True)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the child process reading the chunks failed (status {done.returncode}): {tail}")


def main(folder: Path) -> None:
    """The child: read what `folder/REQUEST` asks for from the local store it names."""
    import chromadb

    with (folder / REQUEST).open("rb") as f:
        request = pickle.load(f)  # written by the parent, in a folder only it and this child use
    chroma = request["chroma"]
    client = chromadb.PersistentClient(path=chroma.persist_directory, settings=chroma)
    collection = client.get_collection(request["collection"], embedding_function=None)
    read_into(collection, request["batch"], request["records"], folder)


@cache
def _malloc_trim() -> Any:
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory() -> None:
    """Hand the C heap's freed memory back to the OS. Each page of Chroma's `get` is built in the C
    heap and freed, but glibc keeps the freed space: reading a 10k-chunk store held ~150 MB that way
    (malloc_trim gave back 115 MB of it), and the 100k build peaked at 2.6 GB mostly from this."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
