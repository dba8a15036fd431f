"""Probes: split a multi-hop question into clauses, each describing one fact to find.

MultiHop-style questions chain descriptions of several facts ("Who is the individual under 30,
previously reported by TechCrunch as the world's richest in that age group, who is now facing a
criminal trial ..., and is accused of ..."). Each clause is searched on its own (inside the outlet
it names, if any), so every fact the question needs gets a place in the top k.
"""

from __future__ import annotations

import re

from assistant.lexical import tokenize
from assistant.query import Catalog, SubQuery, outlet_mentions

_SPLIT = re.compile(
    r"\s*(?:[,;:]|\?|\s(?:and|while|whereas|but|as well as|who|which|whose|where|after|before|"
    r"compared to|in contrast to|than)\s)\s*", re.IGNORECASE)
MIN_WORDS = 3
_FILLER = frozenset(tokenize("who what which is was are were did does the report reported article articles "
                             "according published news story as by from in also both"))


def _content(text: str, catalog: Catalog) -> int:
    for m in reversed(outlet_mentions(text, catalog)):
        text = text[: m.start] + " " + text[m.end :]
    return len([w for w in tokenize(text) if w not in _FILLER])


def probes(question: str, catalog: Catalog, max_probes: int = 6) -> list[SubQuery]:
    """Clauses of the question with ≥ MIN_WORDS content words, each with the outlets it names."""
    parts = [p.strip() for p in _SPLIT.split(question) if p and p.strip()]
    merged: list[str] = []
    for part in parts:
        if merged and _content(merged[-1], catalog) < MIN_WORDS:
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    if len(merged) > 1 and _content(merged[-1], catalog) < MIN_WORDS:
        last = merged.pop()
        merged[-1] = f"{merged[-1]} {last}"
    if len(merged) < 2:
        return []
    out = []
    for text in merged[:max_probes]:
        sources = [s for m in outlet_mentions(text, catalog) for s in m.sources]
        out.append(SubQuery(text=text, sources=list(dict.fromkeys(sources))))
    return out
