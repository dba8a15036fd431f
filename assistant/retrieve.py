"""Retrieve: rank the passages that answer a question — hybrid, news-aware, multi-hop.

1. Plan (`assistant.query`): hard filters (explicit, or read from the question: "according to X",
   "in October 2023", "latest"), one sub-query per article a multi-hop question describes, a speaker.
2. Main ranking: every allowed chunk scored by BM25 (title | outlet | date-prefixed chunks) plus
   the BM25 of its best-matching sentence, fused by reciprocal rank with dense similarity
   (`assistant.dense`: an exact scan of the allowed chunks' vectors, or the nearest clusters' members
   when they are many).
3. Hops: each sub-query's best articles inside its own outlet/dates, and their best passages.
4. Probes (`assistant.probes`): each clause of the question ranked on its own — multi-hop questions
   describe one fact per clause.
5. All rankings fused by reciprocal rank with a small constant, so each list's first places count;
   the chunks holding the asked speaker's quotes go first; at most `per_article` passages per article.
The constants were measured on the MultiHop-RAG dev queries (see README).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

import numpy as np

from assistant.embed import Embedder
from assistant.indexes import Indexes
from assistant.lexical import tokenize
from assistant.probes import probes
from assistant.query import QueryPlan, SubQuery, plan
from assistant.schema import Filters, Passage
from assistant.sentence_scores import SentenceView, candidates
from assistant.store import Store
from assistant.tuning import Tuning

__all__ = ["Ranked", "Retrieval", "Retriever", "Tuning"]

Ranked = list[tuple[int, float]]  # (position in the chunk table, score), best first


@dataclass
class Retrieval:
    passages: list[Passage]
    plan: QueryPlan
    query: str  # the text that was searched (the question, condensed with history)
    best_bm25: float = 0.0  # top BM25 score of the whole question among allowed chunks
    allowed: int = 0  # chunks the hard filters allow
    timings_ms: dict[str, float] = field(default_factory=dict)

    def filters_report(self) -> dict[str, Any]:
        f = self.plan.filters
        return {"since": f.since.isoformat() if f.since else None,
                "until": f.until.isoformat() if f.until else None,
                "sources": f.sources, "categories": f.categories,
                "from_question": self.plan.applied,
                "subqueries": [s.model_dump(mode="json") for s in self.plan.subqueries],
                "unknown_sources": self.plan.unknown_sources, "speaker": self.plan.speaker}


def _day_bounds(since: date | None, until: date | None) -> tuple[float | None, float | None]:
    lo = datetime.combine(since, dtime.min, UTC).timestamp() if since else None
    hi = datetime.combine(until, dtime.max, UTC).timestamp() if until else None
    return lo, hi


class Retriever:
    """Hybrid retrieval over one store and its derived indexes."""

    def __init__(self, store: Store, embedder: Embedder, indexes: Indexes, tuning: Tuning | None = None):
        self.store, self.embedder, self.indexes = store, embedder, indexes
        self.tuning = tuning or Tuning()
        # per text, keyed by its bag of words (what BM25 sees): "Which ...?" and its sub-query "Which ..."
        # are scored once (~5 % of a question's texts at 100k)
        self._scored: dict[tuple[str, ...], np.ndarray] = {}
        self._masks: dict[tuple[Any, ...], np.ndarray] = {}
        self._allowed: np.ndarray | None = None  # what the question's filters allow (None: everything)
        self._own: dict[tuple[str, ...], np.ndarray] = {}  # chunk BM25 per text
        self._view: SentenceView | None = None  # best-sentence scoring shared by a question's texts

    def retrieve(self, question: str, k: int = 10, filters: Filters | None = None,
                 query: str | None = None) -> Retrieval:
        """The passages for a question, ranked. Pinned to the indexes current when it starts: a refresh
        (another thread) may swap `self.indexes` meanwhile, and one ranking must not mix two of them."""
        pinned = copy.copy(self)
        pinned._scored, pinned._masks, pinned._own = {}, {}, {}  # per text / filter: this retrieval only
        return pinned._retrieve(question, k, filters, query)

    def _retrieve(self, question: str, k: int, filters: Filters | None, query: str | None) -> Retrieval:
        t0 = time.perf_counter()
        the_plan = plan(question, self.indexes.catalog, filters)
        text = query or question
        f = the_plan.filters
        mask = self._mask(f.sources, f.categories, f.since, f.until)
        if self.tuning.prefer_mentioned and the_plan.mentioned_sources and not f.sources:
            named = mask & self._mask(the_plan.mentioned_sources, [], None, None)
            mask = named if named.any() else mask
        self._allowed = None if mask.all() else mask  # sentence candidates are picked among these
        clauses = probes(question, self.indexes.catalog)
        t1 = time.perf_counter()
        dense_texts = [text] + ([c.text for c in clauses] if self.tuning.clause_dense else [])
        vectors = self.embedder.embed(dense_texts)
        t2 = time.perf_counter()
        bm25 = self._chunk_bm25(text)
        scoped = [self._clause_scope(clause, mask) for clause in clauses]
        self._view = self._sentence_view([text, *(s.text for s in the_plan.subqueries),
                                          *(c.text for c, _ in scoped)])
        dense_masks = [mask, *(own for _, own in scoped)][: len(vectors)]
        # the whole question's list is fused at `depth`; a clause's enters the final fusion at `list_depth`
        depths = [self.tuning.depth] + [self.tuning.list_depth] * (len(dense_masks) - 1)
        dense = self.indexes.dense.rank(vectors, dense_masks, depths)
        lists = [(self._main(text, bm25, dense[0], mask), 1.0)]
        for sub in the_plan.subqueries:
            hop_mask = mask & self._mask(sub.sources, [], sub.since, sub.until)
            lists.append((self._hop(sub.text, hop_mask, bm25), self.tuning.hop_weight))
        for n, (clause, own) in enumerate(scoped, start=1):
            lists.append((self._clause(clause.text, own, bm25), self.tuning.probe_weight))
            if n < len(dense):
                lists.append(([(i, 0.0) for i in dense[n]], self.tuning.clause_dense))
        order = self._merge(self._quote_chunks(the_plan, mask), lists, k)
        t3 = time.perf_counter()
        allowed = int(mask.sum())
        best = float(bm25[mask].max()) if allowed else 0.0
        passages = [self._passage(i, s) for i, s in order]
        return Retrieval(passages, the_plan, text, best, allowed, {
            "plan": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "rank": (t3 - t2) * 1e3})

    # --- ranking ------------------------------------------------------------------------------
    def _mask(self, sources: list[str], categories: list[str], since: date | None,
              until: date | None) -> np.ndarray:
        """The chunks these filters allow (memoised per retrieval: clauses and hops repeat them)."""
        key = (tuple(sources), tuple(categories), since, until)
        if key not in self._masks:
            self._masks[key] = self._filter(sources, categories, since, until)
        return self._masks[key]

    def _filter(self, sources: list[str], categories: list[str], since: date | None,
                until: date | None) -> np.ndarray:
        table = self.indexes.table
        mask = np.ones(len(table.ids), dtype=bool)
        if sources:
            mask &= table.sources.isin(sources)
        if categories:
            mask &= table.categories.isin(categories)
        lo, hi = _day_bounds(since, until)
        with np.errstate(invalid="ignore"):
            if lo is not None:
                mask &= table.ts >= lo
            if hi is not None:
                mask &= table.ts <= hi
        return mask

    def _main(self, text: str, bm25: np.ndarray, dense: list[int], mask: np.ndarray) -> Ranked:
        """Lexical (chunk + best sentence) and dense rankings of the whole question, fused by rank."""
        if not mask.any():
            return []
        tune = self.tuning
        fused: dict[int, float] = {}
        for rank, (i, _) in enumerate(self._clause(text, mask, bm25, 0.0, tune.depth)):
            fused[i] = 1.0 / (tune.dense_rrf + rank)
        if tune.dense_weight > 0:
            for rank, i in enumerate(dense):
                fused[i] = fused.get(i, 0.0) + tune.dense_weight / (tune.dense_rrf + rank)
        return sorted(fused.items(), key=lambda kv: -kv[1])

    def _clause(self, text: str, mask: np.ndarray, question_bm25: np.ndarray,
                question_weight: float | None = None, depth: int | None = None) -> Ranked:
        """Chunks for one clause: its own chunk+sentence score plus a share of the whole question's."""
        everything = bool(mask.all())  # no filter: the score arrays as they are, no gather of every row
        allowed = None if everything else np.flatnonzero(mask)
        if allowed is not None and not allowed.size:
            return []
        weight = self.tuning.question_weight if question_weight is None else question_weight
        own, whole = self._chunk_scores(text), question_bm25
        if allowed is not None:
            own, whole = own[allowed], whole[allowed]
        key = own / max(float(own.max()), 1e-9) + weight * whole / max(float(whole.max()), 1e-9)
        top = _top(key, depth or self.tuning.list_depth)
        rows = top if allowed is None else allowed[top]
        return [(int(i), float(key[j])) for i, j in zip(rows, top, strict=True) if key[j] > 0]

    def _clause_scope(self, clause: SubQuery, mask: np.ndarray) -> tuple[SubQuery, np.ndarray]:
        """A clause and the chunks it is ranked among: inside the outlets it names (all, if none allowed)."""
        own = mask & self._mask(clause.sources, [], None, None) if clause.sources else mask
        return (clause, own) if own.any() else (clause.model_copy(update={"sources": []}), mask)

    def _chunk_scores(self, text: str) -> np.ndarray:
        """Chunk BM25 plus the BM25 of the chunk's best-matching sentence (both max-normalised)."""
        key = _bag(text)
        if key in self._scored:  # a question's clauses and hops repeat some texts
            return self._scored[key]
        own = self._chunk_bm25(text)
        if not self.tuning.sentence_weight:
            return own
        assert self._view is not None  # made by `_retrieve` whenever sentences are weighed
        best = self._view.best(text)
        self._scored[key] = (own / max(float(own.max()), 1e-9)
                              + self.tuning.sentence_weight * best / max(float(best.max()), 1e-9))
        return self._scored[key]

    def _chunk_bm25(self, text: str) -> np.ndarray:
        """Chunk BM25 of a text, computed once per retrieval (the question's is also the main ranking's)."""
        key = _bag(text)
        if key not in self._own:
            self._own[key] = self.indexes.lexical.scores(text)
        return self._own[key]

    def _sentence_view(self, texts: list[str]) -> SentenceView | None:
        """Sentence scoring for all of a question's texts at once, over the union of each text's
        candidate chunks (so each word's postings are filtered once)."""
        if not self.tuning.sentence_weight:
            return None
        chosen: np.ndarray | None = None
        for text in {_bag(t): t for t in texts}.values():
            mine = candidates(self._chunk_bm25(text), self.tuning.sentence_candidates, self._allowed)
            if mine is None:  # a small store: every chunk
                return SentenceView(self.indexes, None)
            chosen = mine if chosen is None else chosen | mine
        return SentenceView(self.indexes, chosen)

    def _hop(self, text: str, mask: np.ndarray, question_bm25: np.ndarray) -> Ranked:
        """One sub-query: its best articles (article-level BM25 inside its outlet/dates), and in each the
        passages that best match the sub-query (then the whole question); interleaved article by article."""
        idx, tune = self.indexes, self.tuning
        present = np.zeros(len(idx.article_ids), bool)  # no sort: np.unique of 100k rows cost ~0.4 ms
        present[idx.chunk_article[mask]] = True
        allowed_articles = np.flatnonzero(present)
        if not allowed_articles.size:
            return []
        article_scores = idx.articles.scores(text)[allowed_articles]
        best = allowed_articles[np.argsort(-article_scores, kind="stable")][: tune.hop_articles]
        chunk_scores = self._chunk_scores(text)
        top_question = max(float(question_bm25.max()), 1e-9)
        per_article = []
        for a in best.tolist():
            rows = idx.article_chunks[a]
            rows = rows[mask[rows]]
            key = chunk_scores[rows] + tune.question_weight * question_bm25[rows] / top_question
            per_article.append([(int(i), float(key[j])) for j, i in
                                sorted(enumerate(rows), key=lambda x: -key[x[0]])][: tune.hop_chunks])
        out = []
        for round_ in range(tune.hop_chunks):
            for ranked in per_article:
                if round_ < len(ranked):
                    out.append(ranked[round_])
        return out

    def _quote_chunks(self, the_plan: QueryPlan, mask: np.ndarray) -> Ranked:
        """Chunks holding the asked speaker's quotes, those sharing most words with the topic first."""
        if not the_plan.speaker:
            return []
        table, found = self.indexes.table, []
        topic = set(tokenize(the_plan.topic or ""))
        for article_id, quote in self.indexes.quotes.find(the_plan.speaker):
            n = self.indexes.article_index.get(article_id)
            for i in self.indexes.article_chunks[n].tolist() if n is not None else []:
                m = table.meta[i]
                if mask[i] and m["char_start"] <= quote.start < m["char_end"]:
                    overlap = len(topic & set(tokenize(quote.sentence or quote.text)))
                    found.append((i, 1.0 + overlap))
                    break
        found.sort(key=lambda x: -x[1])
        return _dedup(found)

    def _merge(self, quoted: Ranked, lists: list[tuple[Ranked, float]], k: int) -> Ranked:
        """Quote chunks first, then every ranking fused by reciprocal rank; per-article cap."""
        tune = self.tuning
        fused: dict[int, float] = {}
        for ranked, weight in lists:
            for rank, (i, _) in enumerate(ranked[: tune.list_depth]):
                fused[i] = fused.get(i, 0.0) + weight / (tune.fuse_c + rank)
        out: Ranked = []
        per_article: dict[str, int] = {}
        quoted = [(i, s + max(fused.values(), default=0.0)) for i, s in quoted]  # scores stay descending
        for i, score in [*quoted, *sorted(fused.items(), key=lambda kv: -kv[1])]:
            article = self.indexes.table.meta[i]["article_id"]
            if per_article.get(article, 0) >= tune.per_article or any(i == j for j, _ in out):
                continue
            per_article[article] = per_article.get(article, 0) + 1
            out.append((i, score))
            if len(out) >= k:
                break
        return out

    def _passage(self, i: int, score: float) -> Passage:
        table = self.indexes.table
        m = table.meta[i]
        return Passage(chunk_id=table.ids[i], text=table.texts[i], score=round(float(score), 6),
                       article_id=m["article_id"], title=m["title"], source=m["source"],
                       published_at=m["published_at"], url=m["url"], category=m["category"],
                       char_start=m["char_start"], char_end=m["char_end"])


def _top(key: np.ndarray, n: int) -> np.ndarray:
    """Positions of the `n` highest values, highest first, ties in position order — a stable argsort's
    first `n`, without sorting all of `key` (one partition, then a sort of the few candidates)."""
    if n < key.size:
        kth = np.partition(key, key.size - n)[key.size - n]
        above = np.flatnonzero(key >= kth)
    else:
        above = np.arange(key.size)
    return above[np.lexsort((above, -key[above]))][:n]


def _bag(text: str) -> tuple[str, ...]:
    """A text's words as BM25 counts them (order aside): texts with equal bags score alike."""
    return tuple(sorted(tokenize(text)))


def _dedup(items: Ranked) -> Ranked:
    best: dict[int, float] = {}
    for i, s in items:
        best.setdefault(i, s)
    return list(best.items())
