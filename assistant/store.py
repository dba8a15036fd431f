"""Store: articles and their chunks in Chroma, committed in batches, each article crash-safe.

Two collections per embedder (so changing the embedder never mixes vector spaces):
`{prefix}-chunks-{embedder}` holds one record per chunk (text, vector, article metadata, position);
`{prefix}-articles-{embedder}` holds one record per article (body, metadata, content hash, chunk
count, MinHash signature, and a status: `indexed`, or `duplicate` of an earlier article).

Committing an article is crash-safe without transactions: (0) a stored version about to be replaced
first loses its content hash, chunk ids carry the content hash, so (1) upserting the new chunks is
idempotent, (2) deleting the article's chunks with any other hash removes stale ones, and (3) the
article record, written last, marks the version as done. A run killed anywhere in between leaves a
state that the next ingest of the article completes exactly — of the same input, or of the version
stored before (step 0: it is no longer "unchanged", although step 2 may have deleted its chunks).
Works the same on a local `PersistentClient` and on a Chroma server (`HttpClient`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from assistant.settings import Settings
from ingest.models import Article, Chunk

INDEXED, DUPLICATE = "indexed", "duplicate"
_GENERATION = "generation"


@dataclass
class Pending:
    """An article ready to commit: its chunks and their vectors, or the id of the article it copies."""

    article: Article
    signature: str  # MinHash, hex
    chunks: list[Chunk] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), np.float32))
    duplicate_of: str | None = None


def make_client(settings: Settings) -> Any:
    """A Chroma client: a server when `chroma_host` is set, else a local store under the data dir."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                   ssl=settings.chroma_ssl, settings=chroma_settings)
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def _article_meta(article: Article) -> dict[str, Any]:
    """Metadata shared by an article's record and its chunks.

    A key whose value is None is left out of a new record and removed from an existing one (Chroma's
    upsert merges metadata, so a key the new version lacks must be cleared explicitly).
    """
    return {
        "title": article.title, "source": article.source, "author": article.author, "url": article.url,
        "category": article.category, "place": article.place, "published_at": article.published_iso,
        "published_ts": article.published_ts, "content_hash": article.content_hash,
    }


class Store:
    """The article and chunk collections of one embedder."""

    def __init__(self, client: Any, embedder_name: str, prefix: str = "newsqa") -> None:
        self.client = client
        space = {"hnsw": {"space": "cosine"}}
        self.chunks = client.get_or_create_collection(
            f"{prefix}-chunks-{embedder_name}", embedding_function=None, configuration=space)
        self.articles = client.get_or_create_collection(
            f"{prefix}-articles-{embedder_name}", embedding_function=None, configuration=space)
        self.batch = max(1, min(1000, client.get_max_batch_size()))
        self._state = client.get_or_create_collection(
            f"{prefix}-state-{embedder_name}", embedding_function=None, configuration=space)

    # --- change marker -------------------------------------------------------------------------
    def generation(self) -> str | None:
        """A token every write replaces, at its start and its end (None: never written by this version).
        One small read, so readers can check for changes often; equal tokens mean nothing changed
        (a write killed midway leaves its start token, which no index was built at before it)."""
        got = self._state.get(ids=[_GENERATION], include=["metadatas"])
        return str(got["metadatas"][0]["token"]) if got["ids"] and got["metadatas"] else None

    def _bump(self) -> None:
        self._state.upsert(ids=[_GENERATION], embeddings=[[1.0]], metadatas=[{"token": uuid.uuid4().hex}])

    # --- reads -------------------------------------------------------------------------------
    def records(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Metadata of the article records with these ids (absent ids are left out)."""
        out: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(ids))  # Chroma rejects a get with repeated ids
        for start in range(0, len(ids), self.batch):
            got = self.articles.get(ids=list(ids[start : start + self.batch]), include=["metadatas"])
            out.update(zip(got["ids"], got["metadatas"], strict=True))
        return out

    def all_records(self, include_body: bool = False) -> Iterable[tuple[str, dict[str, Any], str | None]]:
        """(id, metadata, body or None) of every article record, paged."""
        include = ["metadatas", "documents"] if include_body else ["metadatas"]
        offset = 0
        while True:
            got = self.articles.get(include=include, limit=self.batch, offset=offset)
            if not got["ids"]:
                return
            docs = got["documents"] if include_body else [None] * len(got["ids"])
            yield from zip(got["ids"], got["metadatas"], docs, strict=True)
            offset += len(got["ids"])

    def bodies(self, ids: Sequence[str]) -> Iterator[tuple[str, str | None]]:
        """(id, body or None when absent) of these article records, in the order given, read a page at a
        time (never all of them at once)."""
        for start in range(0, len(ids), self.batch):
            part = list(dict.fromkeys(ids[start : start + self.batch]))
            got = self.articles.get(ids=part, include=["documents"])
            found = dict(zip(got["ids"], got["documents"], strict=True))
            yield from ((i, found.get(i)) for i in ids[start : start + self.batch])

    def body(self, article_id: str) -> str | None:
        got = self.articles.get(ids=[article_id], include=["documents"])
        return got["documents"][0] if got["ids"] else None

    def chunk_ids(self) -> list[str]:
        ids: list[str] = []
        while page := self.chunks.get(include=[], limit=self.batch * 10, offset=len(ids))["ids"]:
            ids.extend(page)
        return sorted(ids)

    def stats(self) -> dict[str, Any]:
        """Indexed articles, chunks, distinct outlets, and the earliest and latest publication dates.

        Dates are compared as instants (`published_ts`), not as ISO strings, whose UTC offsets differ.
        """
        indexed = [m for _, m, _ in self.all_records() if m.get("status") == INDEXED]
        dates = [m["published_at"] for m in sorted(
            (m for m in indexed if m.get("published_at") and m.get("published_ts") is not None),
            key=lambda m: m["published_ts"])]
        return {
            "articles": len(indexed), "chunks": self.chunks.count(),
            "sources": len({m["source"] for m in indexed if m.get("source")}),
            "first_date": dates[0] if dates else None, "last_date": dates[-1] if dates else None,
        }

    # --- writes ------------------------------------------------------------------------------
    def commit_batch(self, items: Sequence[Pending]) -> None:
        """Commit several articles in a few steps (few round trips), each article still crash-safe:
        0. blank the content hash of the stored versions being replaced; 1. upsert every new chunk;
        2. delete every chunk of these articles not of their new version; 3. write the records —
        originals before the duplicates that may point at them."""
        self._bump()
        self._unmark_replaced({p.article.id: p.article.content_hash for p in items})
        indexed = [p for p in items if p.duplicate_of is None]
        rows = [(p, c, v) for p in indexed for c, v in zip(p.chunks, p.vectors, strict=True)]
        for start in range(0, len(rows), self.batch):
            part = rows[start : start + self.batch]
            self.chunks.upsert(
                ids=[c.id for _, c, _ in part], embeddings=np.stack([v for _, _, v in part]),
                documents=[c.text for _, c, _ in part],
                metadatas=[{**_article_meta(p.article), "article_id": p.article.id, "chunk_index": c.index,
                            "char_start": c.char_start, "char_end": c.char_end, "tokens": c.tokens}
                           for p, c, _ in part],
            )
        self._delete_stale_chunks(items)
        means = {p.article.id: _unit(p.vectors.mean(axis=0)) for p in indexed}
        self._write_records([(p, means[p.article.id]) for p in indexed])
        copies = [p for p in items if p.duplicate_of is not None]
        missing = [p.duplicate_of for p in copies if p.duplicate_of not in means]
        if missing:
            got = self.articles.get(ids=list(dict.fromkeys(missing)), include=["embeddings"])
            means.update(zip(got["ids"], (np.asarray(e, dtype=np.float32) for e in got["embeddings"]),
                             strict=True))
        self._write_records([(p, means[p.duplicate_of]) for p in copies if p.duplicate_of])
        self._bump()

    def delete(self, article_id: str) -> bool:
        """Remove an article, all its chunks and the records of its syndicated copies.

        False when there was no such article. A copy ingested again later is then indexed on its own.
        """
        existed = bool(self.articles.get(ids=[article_id], include=[])["ids"])
        self._bump()
        self._unmark_replaced({article_id: None})  # a crash from here on: a re-ingest is not "unchanged"
        self._delete_chunks(article_id)  # chunks first: a crash leaves the record, so delete can be rerun
        self.articles.delete(where={"duplicate_of": article_id})
        self.articles.delete(ids=[article_id])
        self._bump()
        return existed

    def _unmark_replaced(self, new_hashes: dict[str, str | None]) -> None:
        """Blank the content hash of stored records whose version is about to change (new hash given,
        or None: deleted), so that no later ingest takes a half-replaced article for unchanged."""
        changing = [i for i, m in self.records(list(new_hashes)).items()
                    if m.get("content_hash") and m.get("content_hash") != new_hashes[i]]
        for start in range(0, len(changing), self.batch):
            part = changing[start : start + self.batch]
            self.articles.update(ids=part, metadatas=[{"content_hash": ""} for _ in part])

    def _delete_stale_chunks(self, items: Sequence[Pending]) -> None:
        """Delete the stored chunks of these articles that are not of their new version (all of a
        duplicate's). One `$in` lookup per 100 articles, compared here: a `$or` of per-article
        conditions made Chroma scan the whole metadata table (its cost grew with the store)."""
        keep = {p.article.id: p.article.content_hash if p.duplicate_of is None else None for p in items}
        ids = list(keep)
        for start in range(0, len(ids), 100):
            part = ids[start : start + 100]
            got = self.chunks.get(where={"article_id": {"$in": part}}, include=["metadatas"])
            metas = got["metadatas"] or []
            stale = [i for i, m in zip(got["ids"], metas, strict=True)
                     if (want := keep[str(m["article_id"])]) is None or m.get("content_hash") != want]
            if stale:
                self.chunks.delete(ids=stale)

    def _delete_chunks(self, article_id: str) -> None:
        self.chunks.delete(where={"article_id": article_id})

    def _write_records(self, items: Sequence[tuple[Pending, np.ndarray]]) -> None:
        if not items:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        metas = [{**_article_meta(p.article), "status": DUPLICATE if p.duplicate_of else INDEXED,
                  "duplicate_of": p.duplicate_of, "n_chunks": len(p.chunks), "minhash": p.signature,
                  "summary": p.article.summary, "origin": p.article.origin[:500], "ingested_at": now}
                 for p, _ in items]
        for start in range(0, len(items), self.batch):
            part = slice(start, start + self.batch)
            self.articles.upsert(ids=[p.article.id for p, _ in items[part]],
                                 embeddings=np.stack([v for _, v in items[part]]),
                                 documents=[p.article.body for p, _ in items[part]], metadatas=metas[part])


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)
