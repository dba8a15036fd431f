"""Tuning: the fusion weights and depths of retrieval (assistant/retrieve.py), in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Tuning:
    """Fusion weights and depths (measured on the MultiHop-RAG dev queries, see README)."""

    dense_weight: float = 0.3  # weight of the dense ranking against BM25's 1.0 in the main ranking
    dense_rrf: int = 60  # reciprocal-rank constant of the main BM25/dense fusion
    sentence_weight: float = 1.0  # best-sentence BM25 added to chunk BM25 (both max-normalised)
    sentence_candidates: int = 2000  # best-sentence BM25 only for this many top chunks by chunk BM25 (0: all)
    question_weight: float = 0.3  # whole-question BM25 added when ranking for one clause or hop
    depth: int = 60  # candidates taken from the main ranking
    list_depth: int = 20  # candidates taken from each ranking into the final fusion
    fuse_c: float = 1.5  # reciprocal-rank constant of the final fusion (small: first places count)
    hop_weight: float = 1.0  # weight of each sub-query's ranking in the final fusion (main: 1.0)
    probe_weight: float = 1.0  # weight of each clause's ranking in the final fusion
    clause_dense: float = 0.5  # weight of each clause's dense ranking in the final fusion
    prefer_mentioned: bool = True  # a question naming outlets searches them first (all, if none match)
    hop_articles: int = 2  # articles each sub-query draws passages from
    hop_chunks: int = 3  # passages per article a sub-query offers
    per_article: int = 5  # diversity: at most this many passages of one article
