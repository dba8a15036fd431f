"""Pipeline: read → skip unchanged → detect duplicates → chunk → embed → commit, one article at a time.

Articles are planned in input order. Unchanged ones (same id and content hash as the store) are
skipped before any chunking or embedding. The rest are chunked and queued; when a window of chunks
is full it is embedded in one call (length-sorted batches) and handed to one writer thread, which
commits the window's articles (see `assistant.store`) while the next window is planned and embedded.
Windows are committed in order and originals before their duplicates, so a duplicate never points
at an article that is not yet stored."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from assistant.embed import Embedder
from assistant.settings import Settings
from assistant.store import DUPLICATE, INDEXED, Pending, Store
from ingest import dedup
from ingest.chunk import chunk_article
from ingest.models import Article, Chunk, Failure, IngestReport
from ingest.read import read_inputs

Progress = Callable[[int], None]


@dataclass
class _Job:
    article: Article
    signature: str
    chunks: list[Chunk] = field(default_factory=list)
    duplicate_of: str | None = None


def embed_texts(article: Article, chunks: list[Chunk]) -> list[str]:
    """What the embedder sees for each chunk: the article header line, then the chunk text."""
    header = article.header()
    return [f"{header}\n\n{c.text}" if header else c.text for c in chunks]


_Stage = Future["Future[None] | None"]  # a window's embedding, whose result is its commit (or none)


class Ingestor:
    """Ingests articles into one store with one embedder."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        # window: chunks embedded per call (enough to sort by length), committed together
        self.store, self.embedder, self.settings = store, embedder, settings
        self.window = settings.ingest_window
        self.index = dedup.DuplicateIndex(settings.duplicate_threshold, store.body)
        for article_id, meta, _ in store.all_records():
            if meta.get("status") == INDEXED and meta.get("minhash"):
                self.index.add(article_id, dedup.from_hex(meta["minhash"]))

    def run(self, articles: list[Article], report: IngestReport, progress: Progress | None = None) -> None:
        known = self.store.records([a.id for a in articles])
        seen: dict[str, Article] = {}
        queue: list[_Job] = []
        # Three stages, each window through them in order: planned here (dedup, chunking), embedded on one
        # thread, committed on another — window N+1 is planned while N is embedded and N-1 committed.
        # Windows are committed strictly in order (each waits for the one before), so crash-safety holds.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsqa-embed-window") as embedding, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsqa-commit") as writer:
            last: _Stage | None = None
            for article in articles:
                job = self._plan(article, known, seen, report)
                if job is not None:
                    queue.append(job)
                elif progress:
                    progress(1)
                if sum(len(j.chunks) for j in queue) >= self.window:
                    last = embedding.submit(self._flush, queue, writer, last, progress)
                    queue = []
            last = embedding.submit(self._flush, queue, writer, last, progress)
            committed = last.result()
            if committed is not None:
                committed.result()

    def _plan(self, article: Article, known: dict, seen: dict[str, Article],
              report: IngestReport) -> _Job | None:
        if (first := seen.get(article.id)) is not None:
            if first.content_hash == article.content_hash:
                report.unchanged += 1
            else:
                report.failed.append(Failure(path=article.origin, error=(
                    f"article id {article.id} already read from {first.origin} in this run with different "
                    "content; kept the first (ingest this one on its own to replace it)")))
            return None
        seen[article.id] = article
        previous = known.get(article.id)
        if previous is not None and previous.get("content_hash") == article.content_hash and not (
                previous.get("status") == DUPLICATE and previous.get("duplicate_of") not in self.index):
            report.unchanged += 1  # (a duplicate whose original is gone is planned afresh)
            return None
        if previous is not None:  # this id's stored version is about to be replaced
            self.index.discard(article.id)
        shingle_set = dedup.shingles(article.body)
        sig = dedup.signature(shingle_set)
        job = _Job(article, dedup.to_hex(sig))
        job.duplicate_of = self.index.find(article.id, sig, shingle_set)
        if job.duplicate_of is not None:
            report.duplicates += 1
            return job
        if previous is None:
            report.added += 1
        else:
            report.updated += 1
        self.index.add(article.id, sig, shingle_set)
        job.chunks = chunk_article(article, self.settings.chunk_tokens, self.settings.chunk_overlap)
        return job

    def _flush(self, queue: list[_Job], writer: ThreadPoolExecutor, previous: _Stage | None,
               progress: Progress | None) -> Future[None] | None:
        """Embed a window (on the embedding thread), then hand it to the writer once the previous window
        is committed. Returns the commit's future; a failure of any earlier window is re-raised here,
        before anything later is written."""
        before = previous.result() if previous is not None else None  # the previous window's commit
        if not queue:
            return before
        texts = [t for job in queue if job.duplicate_of is None for t in embed_texts(job.article, job.chunks)]
        vectors = self.embedder.embed(texts) if texts else np.zeros((0, 1), np.float32)
        pending, offset = [], 0
        for job in queue:
            n = len(job.chunks)
            pending.append(Pending(job.article, job.signature, job.chunks, vectors[offset : offset + n],
                                   job.duplicate_of))
            offset += n
        if before is not None:
            before.result()  # re-raises a failed commit here, before anything later is written

        def commit() -> None:
            self.store.commit_batch(pending)
            if progress:
                progress(len(pending))

        return writer.submit(commit)


def read_all(targets: Iterable[str], settings: Settings, report: IngestReport,
             allow_private: bool = True) -> list[Article]:
    """Every article the inputs hold; failures go into the report."""
    articles: list[Article] = []
    for found, failures in read_inputs(list(targets), settings.fetch_timeout_s, settings.max_input_bytes,
                                       allow_private):
        articles.extend(found)
        report.failed.extend(failures)
    return articles


def ingest(targets: Iterable[str], store: Store, embedder: Embedder, settings: Settings,
           progress_factory: Callable[[int], Progress] | None = None,
           allow_private: bool = True) -> IngestReport:
    """Ingest every article the targets hold; return the summary. `allow_private=False` (URLs that
    came over HTTP) refuses to fetch from loopback/private addresses."""
    report = IngestReport()
    articles = read_all(targets, settings, report, allow_private)
    progress = progress_factory(len(articles)) if progress_factory else None
    Ingestor(store, embedder, settings).run(articles, report, progress)
    stats = store.stats()
    report.articles, report.chunks = stats["articles"], stats["chunks"]
    return report
