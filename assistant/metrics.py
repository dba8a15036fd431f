"""Metrics: MultiHop-RAG's own retrieval scoring rule, shared by benchmarks and `newsqa eval`.

A retrieved chunk is a hit when a gold fact occurs in it as a substring after removing spaces and
newlines. Hits@k: share of queries with at least one hit in the top k. MRR@10: mean reciprocal
rank of the first hit. MAP@10: average precision over the top 10, divided by
min(number of gold facts, 10), capped at 1. Null queries (no evidence) are skipped by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SPACE = re.compile(r"[ \n]+")


def squash(text: str) -> str:
    return _SPACE.sub("", text)


def hit_flags(facts: Sequence[str], chunks: Sequence[str]) -> list[bool]:
    """For each retrieved chunk (in rank order), whether some gold fact occurs in it."""
    gold = [squash(f) for f in facts]
    return [any(g in squash(c) for g in gold) for c in chunks]


def hits_at(flags: Sequence[bool], k: int) -> float:
    return 1.0 if any(flags[:k]) else 0.0


def mrr_at(flags: Sequence[bool], k: int = 10) -> float:
    for rank, hit in enumerate(flags[:k], start=1):
        if hit:
            return 1.0 / rank
    return 0.0


def map_at(flags: Sequence[bool], n_facts: int, k: int = 10) -> float:
    found, total = 0, 0.0
    for rank, hit in enumerate(flags[:k], start=1):
        if hit:
            found += 1
            total += found / rank
    # Capped at 1: with overlapping chunks one fact can hit twice, which the plain rule would count twice.
    return min(1.0, total / min(n_facts, k)) if n_facts else 0.0


def fact_recall(facts: Sequence[str], chunks: Sequence[str]) -> float:
    """Share of the gold facts found in some chunk of `chunks`."""
    squashed = [squash(c) for c in chunks]
    found = sum(any(squash(f) in c for c in squashed) for f in facts)
    return found / len(facts) if facts else 0.0
