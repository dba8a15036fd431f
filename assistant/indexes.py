"""Indexes: the search structures derived from the store — BM25, the quote index, chunk metadata, catalog,
the chunk vectors and their clusters.

Chroma is the source of truth. Everything here is rebuilt from it and persisted under
`DATA_DIR/index/{prefix}-{embedder}/` together with a fingerprint of the store (every article id
with its content hash, status and chunk count: a committed version's chunk ids follow from its record)
and the store's change token. `Indexes.open`
loads the saved copy when that token is still the store's (nothing written since: no need to read
the store) or its fingerprint matches the store, and rebuilds it otherwise, so the indexes follow
every ingest, update and delete — also one killed half-way, or made by another process (e.g. on a
shared Chroma server).
Only committed article versions are indexed: chunks whose article record is missing or holds another
content hash (what a commit killed before its record was written leaves) are left out until a rerun
completes them. A build writes each index into a new folder as soon as it is built (not all of them
held in memory at once), loads that folder and swaps it in with two renames, so the index folder is
always either absent or one complete build — a process killed while building never leaves a torn one —
and the process that built serves the same memory-mapped files as one that loads them later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from array import array
from collections.abc import Iterable, Iterator, MutableSequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from assistant.chunkread import VERSION_FIELDS, read_chunks, release_freed_memory
from assistant.chunktable import ChunkTable, Positions, article_header
from assistant.dense import Dense
from assistant.ivf import MIN_ROWS, Ivf
from assistant.lexical import LexicalIndex
from assistant.query import Catalog
from assistant.sentence_scores import SentenceView, Zeros
from assistant.store import Store
from ingest.quoteindex import QuoteIndex
from ingest.quotes import extract_quotes

log = logging.getLogger("newsqa.indexes")
VERSION = 6


def _store_fingerprint(records: list[tuple[str, dict[str, Any]]]) -> str:
    digest = hashlib.sha256(f"v{VERSION}".encode())
    for aid, meta in sorted(records, key=lambda r: r[0]):
        digest.update(f"{aid}\x1f{meta.get('content_hash')}\x1f{meta.get('status')}\x1f"
                      f"{meta.get('n_chunks')}\n".encode())
    return digest.hexdigest()


def fingerprint(store: Store) -> str:
    """A hash of what the store holds for the indexes: every article record's id, content hash, status
    and chunk count. The indexes hold only committed versions, whose chunk ids follow from their records
    (`committed_chunk_ids`), so the chunk ids themselves are never listed: paging through a million of
    them took 173 s and 2 GB of Chroma's heap, at every check after a write."""
    return _store_fingerprint(version_records(store))


def version_records(store: Store) -> list[tuple[str, dict[str, Any]]]:
    """(id, its version's content hash, status and chunk count) of every article record: all the build
    and the fingerprint need of them (whole records, with their MinHash signatures and summaries, held
    ~0.3 GB through a 1M-chunk build)."""
    return [(i, {k: m.get(k) for k in VERSION_FIELDS}) for i, m, _ in store.all_records()]


def catalog_of(table: ChunkTable) -> Catalog:
    """The catalog (outlets, categories, date range, article refs) of the indexed articles, in table order
    (the same whether the indexes were just built or loaded)."""
    return Catalog.from_records({**a, "id": a["article_id"]} for a in table.articles)


class Indexes:
    """BM25 over the chunks, the quote index and the catalog of one store, kept in step with it."""

    def __init__(self, table: ChunkTable, lexical: LexicalIndex, articles: LexicalIndex,
                 sentences: tuple[np.ndarray, LexicalIndex], quotes: QuoteIndex, catalog: Catalog,
                 fingerprint: str, vectors: np.ndarray, vector_order: np.ndarray,
                 ivf: Ivf | None = None) -> None:
        self.table, self.lexical, self.articles, self.quotes = table, lexical, articles, quotes
        self.catalog, self.fingerprint = catalog, fingerprint
        self.generation: str | None = None  # the store's change token these match (None: unknown)
        self.position = Positions(table.ids)
        self.dense = Dense(vectors, order=vector_order, ivf=ivf)
        self.article_ids = article_order(table)
        self.article_index = {a: n for n, a in enumerate(self.article_ids)}
        self.chunk_article = table.article.astype(np.int64)
        # each article's chunk rows in reading order (chunk_index), split at the article boundaries
        order = np.lexsort((table.meta.numbers[:, 0], self.chunk_article))
        counts = np.bincount(self.chunk_article, minlength=len(self.article_ids))
        self.article_chunks: list[np.ndarray] = np.split(order, np.cumsum(counts)[:-1]) if counts.size else []
        self.sentence_chunk, self.sentences = sentences
        if len(self.sentence_chunk) != self.sentences.size or (np.diff(self.sentence_chunk) < 0).any():
            raise ValueError("sentence index out of step with its chunks (not one row per sentence in "
                             "chunk order)")  # `open` rebuilds a saved copy that fails this
        # sentences are stored in chunk order: chunk c's are sentence_start[c]:sentence_start[c + 1]
        self.sentence_start = np.searchsorted(self.sentence_chunk, np.arange(len(table.ids) + 1))
        self.sentence_sums = Zeros(self.sentences.size)  # scratch arrays of per-sentence sums

    def counts(self) -> dict[str, int]:
        """Articles and chunks these indexes serve."""
        return {"articles": len(self.article_ids), "chunks": len(self.table.ids)}

    def chunks_of(self, article_id: str, content_hash: str) -> list[tuple[str, dict[str, Any]]] | None:
        """(chunk id, metadata) of an article's chunks in reading order, when these indexes hold the
        version with this content hash (chunk ids carry its first 10 characters); None otherwise.
        Reading them from Chroma instead loads its vector index into the process (2 GB at 1M chunks)."""
        n = self.article_index.get(article_id)
        if n is None:
            return None
        rows = [int(r) for r in self.article_chunks[n]]
        ids = [self.table.ids[r] for r in rows]
        prefix = f"{article_id}:{content_hash[:10]}:"
        return [(i, self.table.meta[r]) for i, r in zip(ids, rows, strict=True)] if all(
            i.startswith(prefix) for i in ids) else None

    def best_sentence(self, text: str, chunks: np.ndarray | None = None) -> np.ndarray:
        """Per chunk, the BM25 score of its best-matching sentence for `text` — computed from the postings
        of the text's words only, not over every sentence; with `chunks` (a mask), for those chunks only
        (0 elsewhere)."""
        return SentenceView(self, chunks).best(text)

    @staticmethod
    def folder(data_dir: Path, store: Store) -> Path:
        return data_dir / "index" / store.chunks.name

    @classmethod
    def open(cls, store: Store, data_dir: Path) -> Indexes:
        """The saved indexes when they match the store, else freshly built ones (saved for next time).

        A saved copy tagged with the store's current change token is loaded without reading the store
        (at 100k chunks, reading every id and record to fingerprint them took ~4 s and ~350 MB; the
        fingerprint reads the article records only now: 1M chunks, 14-16 s);
        otherwise the store's fingerprint decides."""
        token = store.generation()  # read first: a write from here on moves it, and the next check sees it
        folder = cls.folder(data_dir, store)
        _remove_leftovers(folder)
        saved: dict[str, Any] = {}
        try:
            saved = json.loads((folder / "meta.json").read_text())
            if token is not None and saved.get("generation") == token and saved.get("version") == VERSION:
                return cls._load(folder, str(saved["fingerprint"])).at(token)
        except FileNotFoundError:
            pass  # never saved: build below
        except Exception as err:  # a damaged copy is only a cache: rebuild it
            log.warning("rebuilding the indexes in %s: %s: %s", folder, type(err).__name__, err)
            saved = {}
        records = version_records(store)
        current = _store_fingerprint(records)
        if saved.get("fingerprint") == current:
            try:
                return cls._load(folder, current).at(token)
            except Exception as err:
                log.warning("rebuilding the indexes in %s: %s: %s", folder, type(err).__name__, err)
        return cls._build_saved(store, records, current, token, folder)

    def at(self, token: str | None) -> Indexes:
        """Tag these indexes with the store's change token read before they were built or checked."""
        self.generation = token
        return self

    def is_current(self, store: Store) -> bool:
        """Whether the store still holds what these indexes were built from. The store's change token
        is checked first (one small read); only when it moved are the article records read and
        fingerprinted."""
        token = store.generation()
        if token is not None and token == self.generation:
            return True
        current = fingerprint(store) == self.fingerprint
        if current:
            self.generation = token
        return current

    @classmethod
    def build(cls, store: Store, records: list[tuple[str, dict[str, Any]]], fp: str) -> Indexes:
        """Indexes of what the store holds (`records`: its article records), built into a temporary folder
        and loaded from it (the folder is removed; the loaded files stay readable until closed)."""
        with tempfile.TemporaryDirectory(prefix="newsqa-index-") as tmp:
            _write_build(store, records, fp, None, Path(tmp))
            return cls._load(Path(tmp), fp)

    @classmethod
    def _build_saved(cls, store: Store, records: list[tuple[str, dict[str, Any]]], fp: str,
                     token: str | None, folder: Path) -> Indexes:
        """Build into a new folder beside `folder`, load it, and swap it in (old one renamed aside, new one
        renamed in). A build killed at any point leaves `folder` absent or complete, plus leftovers that
        the next open removes; when another process swaps in its build at the same moment, that one is
        kept (this process serves its own, loaded before the swap). Served memory-mapped, like a copy
        loaded later: the build's arrays are not held by the process that built them."""
        tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp, old = folder.with_name(f"{folder.name}.tmp-{tag}"), folder.with_name(f"{folder.name}.old-{tag}")
        tmp.mkdir(parents=True)
        try:
            _write_build(store, records, fp, token, tmp)
            built = cls._load(tmp, fp).at(token)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            if folder.exists():
                folder.rename(old)
            tmp.rename(folder)
        except OSError as err:
            log.info("index folder %s was swapped by another process (%s): keeping that one", folder, err)
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        return built

    @classmethod
    def _load(cls, folder: Path, fp: str) -> Indexes:
        table = ChunkTable.load(folder)
        quotes = QuoteIndex.load(folder / "quotes.jsonl")
        lexical = LexicalIndex.load(folder / "bm25")
        articles = LexicalIndex.load(folder / "bm25-articles")
        sentences = (np.load(folder / "sentence-chunk.npy"), LexicalIndex.load(folder / "bm25-sentences"))
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")  # paged in as the scans touch it
        order = np.load(folder / "vector-order.npy")
        if len(vectors) != len(table.ids) or not np.array_equal(np.sort(order), np.arange(len(table.ids))):
            raise ValueError(f"{len(vectors)} vectors / {len(order)} order for {len(table.ids)} chunks")
        ivf = Ivf.load(folder)
        if ivf is None and (ivf := _clusters(vectors)) is not None:  # saved before the clusters existed
            try:
                ivf.save(folder)
            except OSError as err:
                log.warning("could not save the vector clusters in %s: %s", folder, err)
        return cls(table, lexical, articles, sentences, quotes, catalog_of(table), fp, vectors, order, ivf)


def _write_build(store: Store, records: list[tuple[str, dict[str, Any]]], fp: str, token: str | None,
                 folder: Path) -> None:
    """Build every index from the store into `folder`, each written and dropped as soon as it is built
    (held all at once, a 1M-chunk build peaked at 15 GB): the chunk table and its vectors (texts and
    vectors spilled to files as they are read, then written in order: vectors by outlet and date), their
    clusters, chunk BM25, article BM25 with the quotes (read from the bodies as it passes), sentence
    BM25; `meta.json`, written last, holds the store's fingerprint and the change token read before the
    build (equal later: nothing changed)."""
    table, vectors = read_chunks(store, records, folder)  # the table, texts and vectors: in `folder`
    texts = table.texts  # memory-mapped; read below with plain file reads
    ivf = _clusters(vectors)
    if ivf is not None:
        ivf.save(folder)
    del vectors, ivf
    release_freed_memory()
    chunk_texts = enumerate(texts.read(folder / "texts.bin"))
    LexicalIndex.build(f"{table.header(i)}\n\n{t}" for i, t in chunk_texts).save(folder / "bm25")
    release_freed_memory()
    with (folder / "quotes.jsonl").open("w", encoding="utf-8") as quotes:  # written as the bodies are read
        LexicalIndex.build(_article_texts(store, table, quotes)).save(folder / "bm25-articles")
    release_freed_memory()
    owner = array("q")  # filled as the sentences are read (the sentence index streams them): 8 bytes each
    LexicalIndex.build(sentence_rows(texts.read(folder / "texts.bin"), owner)).save(folder / "bm25-sentences")
    np.save(folder / "sentence-chunk.npy", np.frombuffer(owner, np.int64))
    meta = {"fingerprint": fp, "version": VERSION, "generation": token}
    (folder / "meta.json").write_text(json.dumps(meta))


def _remove_leftovers(folder: Path) -> None:
    """Delete the `.tmp-PID-*`/`.old-PID-*` siblings of `folder` left by processes killed while building
    or swapping them in."""
    if not folder.parent.is_dir():
        return
    prefix = folder.name + "."
    for path in folder.parent.iterdir():
        if not path.name.startswith(prefix):
            continue
        kind, _, rest = path.name[len(prefix):].partition("-")
        pid = rest.split("-", 1)[0]
        legacy = kind == "tmp" and not rest  # the single `.tmp` folder of older versions
        if legacy or (kind in ("tmp", "old") and pid.isdigit() and not _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sentence_rows(texts: Iterable[str], owner: MutableSequence[int]) -> Iterator[str]:
    """Every sentence of every chunk text, in order (for sentence-level BM25); the chunk (row) of each is
    appended to `owner` as it is yielded."""
    from assistant.cite import split_sentences

    for i, text in enumerate(texts):
        for sentence in split_sentences(text):
            owner.append(i)
            yield sentence


def _clusters(vectors: np.ndarray) -> Ivf | None:
    """The approximate-search clusters of a store big enough to need them."""
    return Ivf.build(vectors) if len(vectors) >= MIN_ROWS else None


def article_order(table: ChunkTable) -> list[str]:
    """Article ids in the order of their first chunk: the rows of the article-level index."""
    return [a["article_id"] for a in table.articles]


def _article_texts(store: Store, table: ChunkTable, quotes: TextIO) -> Iterator[str]:
    """Header line and whole body of each article in table order, for article-level BM25. The bodies are
    read a page at a time, and each one's quotes written to `quotes` (the quote index's lines) as it
    passes: all bodies and their texts held at once were ~450 MB at 100k chunks."""
    order = article_order(table)
    for article, (article_id, body) in zip(table.articles, store.bodies(order), strict=True):
        if body:
            quotes.write(QuoteIndex.line(article_id, extract_quotes(body)) + "\n")
        yield f"{article_header(article)}\n\n{body or ''}"
