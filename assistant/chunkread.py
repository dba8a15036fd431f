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
import logging
import os
import pickle
import signal
import subprocess
import sys
import sysconfig
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
VERSION_FIELDS = ("content_hash", "status", "n_chunks")  # all the build needs of an article record
PROJECT = Path(__file__).resolve().parents[1]
log = logging.getLogger("newsqa.chunkread")

Records = list[tuple[str, dict[str, Any]]]


def committed(record: dict[str, Any]) -> bool:
    """Whether an article record marks a committed version: `indexed`, with a content hash (blanked
    while a version is being replaced or deleted)."""
    return record.get("status") == INDEXED and bool(record.get("content_hash"))


def committed_chunk_ids(records: Records) -> list[str]:
    """The chunk ids of every committed article version, sorted: each version's `n_chunks` ids carry
    its article id and content hash."""
    return sorted(chunk_id(aid, str(m["content_hash"]), n) for aid, m in records if committed(m)
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
    chunks = sum(int(m.get("n_chunks") or 0) for _, m in records if committed(m))
    chroma = store.client.get_settings()
    if chunks < SEPARATE_MIN or not chroma.is_persistent:
        read_into(store.chunks, store.batch, records, folder)
    else:
        before = store.generation()
        _read_in_child(chroma, store.chunks.name, store.batch, records, folder)
        if store.generation() != before:  # written meanwhile (by this process, say): read it again later
            raise RuntimeError("the store was written while a child process read its chunks: build again")
    return ChunkTable.load(folder), np.load(folder / "vectors.npy", mmap_mode="r")


def read_into(collection: Any, batch: int, records: Records, folder: Path) -> None:
    """Read the committed chunks from `collection` a page at a time, reduce each page as it arrives
    (assistant/tablebuild.py) and write the table, its texts, its vectors and their order into `folder`.
    A chunk whose metadata names another version than its record's is left out."""
    versions = {i: m["content_hash"] for i, m in records if committed(m)}
    ids, page = committed_chunk_ids(records), batch * 5

    def pages() -> Iterator[Page]:
        for start in range(0, len(ids), page):
            got = collection.get(ids=ids[start : start + page],
                                 include=["documents", "metadatas", "embeddings"])
            yield got["ids"], got["documents"], got["metadatas"], got["embeddings"]

    def keep(m: dict[str, Any]) -> bool:
        version = versions.get(str(m.get("article_id")))
        return version is not None and version == m.get("content_hash")

    table, _ = table_from_pages(pages(), keep, folder, release_freed_memory, arrange=clustered_order)
    if len(table.ids) != len(ids):  # (in a child, logged to its stderr: the parent logs that)
        log.warning("%d of the %d chunks the article records name are missing from the store (or hold "
                    "another version): their articles are indexed without them", len(ids) - len(table.ids),
                    len(ids))
    table.save(folder)
    np.save(folder / "vector-order.npy", clustered_order(table))


def _read_in_child(chroma: Any, collection: str, batch: int, records: Records, folder: Path) -> None:
    """Run the child on `folder` (the request goes on its stdin) and wait for it; it is killed if this
    process stops waiting (an exception), and dies with this process (see `main`)."""
    request = pickle.dumps({"chroma": chroma, "collection": collection, "batch": batch,
                            "records": [(i, {k: m.get(k) for k in VERSION_FIELDS}) for i, m in records]})
    env = dict(os.environ)
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if PROJECT not in installed:  # a source checkout: the child imports the same code (not site-packages)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT), env.get("PYTHONPATH")) if p)
    # -P: the current directory is not put on the child's path (a folder named `assistant` there would win)
    child = subprocess.Popen([sys.executable, "-P", "-m", "assistant.chunkread", str(folder)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = child.communicate(request)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    said = err.decode("utf-8", "replace").strip()
    if child.returncode != 0:
        status = (f"killed by signal {-child.returncode}" if child.returncode < 0
                  else f"status {child.returncode}")
        tail = "\n".join(said.splitlines()[-5:])
        raise RuntimeError(f"the child process reading the chunks failed ({status}): {tail}")
    for line in said.splitlines():
        log.warning("chunk reader: %s", line)


def main(folder: Path) -> None:
    """The child: read what the request on stdin asks for from the local store it names, into `folder`.
    Dies with its parent (Linux), which would otherwise leave it reading into a folder the next start
    removes as a leftover."""
    _die_with_parent()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    request = pickle.loads(sys.stdin.buffer.read())  # from the parent process, through a pipe
    import chromadb

    chroma = request["chroma"]
    client = chromadb.PersistentClient(path=chroma.persist_directory, settings=chroma)
    collection = client.get_collection(request["collection"], embedding_function=None)
    read_into(collection, request["batch"], request["records"], folder)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: an orphan finishes its read and exits
        return
    if os.getppid() == 1:  # the parent died before the call above
        os._exit(1)


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
