"""Outlet names in a question: which stored sources (or well-known outlets the store lacks) it mentions.

A stored source is matched by its name and aliases (its head before " | ", " - " or ": ", without a
leading "The", ...); a well-known outlet the store has none of is reported by its usual name. Also reads
whether a mention restricts the question to that outlet ("according to X"), for a hard source filter.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.query import Catalog

_Q = "'\"‘’“”"  # quote marks
# Well-known outlets, to tell a reader that the store has none of their articles. Surfaces as written.
_WELL_KNOWN = (
    ("Forbes",), ("Bloomberg",), ("Reuters",), ("The Wall Street Journal", "Wall Street Journal", "WSJ"),
    ("The New York Times", "New York Times", "NYT", "NY Times"), ("The Washington Post", "Washington Post"),
    ("BBC", "BBC News"), ("BBC Sport", "BBC Sports"), ("CNN",), ("CNBC",), ("Fox News",), ("Fox Business",),
    ("NBC News",), ("CBS News",), ("ABC News",), ("NPR",), ("Financial Times",), ("The Economist",),
    ("Associated Press", "AP News"), ("Gizmodo",), ("Wired",), ("The Guardian",), ("The Atlantic",),
    ("Politico",), ("Axios",), ("Business Insider",), ("USA Today",), ("Los Angeles Times", "LA Times"),
    ("The Times of India", "Times of India"), ("Hindustan Times",), ("The Hindu",),
    ("The Economic Times", "Economic Times"), ("Business Standard",), ("ESPN",), ("Sports Illustrated",),
    ("Variety",), ("The Hollywood Reporter", "Hollywood Reporter"), ("Rolling Stone",), ("Billboard",),
    ("Architectural Digest",), ("Newsweek",), ("Daily Mail",), ("Al Jazeera",), ("Ars Technica",), ("CNET",),
    ("MarketWatch",), ("Yahoo Finance",), ("HuffPost", "Huffington Post"), ("Sky News",), ("The Athletic",),
    ("Bleacher Report",), ("TechCrunch",), ("The Verge",), ("Engadget",),
)


@dataclass(frozen=True)
class _Outlet:
    sources: tuple[str, ...]  # as stored; () when the store does not have it
    unknown: str  # its usual name, when the store does not have it
    plain: bool  # ordinary words ("Fortune", "The Age"): an outlet only when capitalised


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    sources: tuple[str, ...]
    unknown: str = ""


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\s*([|:-])\s*", r" \1 ", name)).strip().casefold()


def _plain(text: str) -> bool:
    words = [w for w in text.split() if any(c.isalpha() for c in w)]
    return all(w.isalpha() and w[:1].isupper() and w[1:].islower() for w in words)


def _aliases(source: str) -> set[str]:
    """The stored name, its head before " | ", " - " or ": " (and a long tail after " | "), each without
    a leading "The", and "FOX" of "FOX News"."""
    heads = {source, *(source.split(sep)[0] for sep in (" | ", " - ", ": ") if sep in source),
             *(tail for tail in source.split(" | ")[1:] if len(tail.split()) >= 3)}
    heads |= {h[4:] for h in heads if h.startswith("The ") and len(h) > 7}
    heads |= {h[:-5] for h in heads if h.endswith(" News") and h[:-5].isupper() and len(h) > 7}
    return heads | {h[:-4] for h in heads if h.endswith(".com")}


@functools.lru_cache(maxsize=16)
def _matcher(sources: tuple[str, ...]) -> tuple[re.Pattern[str], dict[str, _Outlet]]:
    table: dict[str, _Outlet] = {}
    for source in sources:
        for alias in _aliases(source):
            known = table[_norm(alias)].sources if _norm(alias) in table else ()
            table[_norm(alias)] = _Outlet((*known, source), "", _plain(alias))
    for names in _WELL_KNOWN:
        surfaces = {*names, *(f"The {n}" for n in names if not n.startswith("The "))}
        stored = next((table[_norm(s)].sources for s in surfaces if _norm(s) in table), ())
        for surface in set(names) if stored else surfaces:  # "NYT" finds a stored "The New York Times"
            table.setdefault(_norm(surface), _Outlet(stored, "" if stored else names[0], _plain(surface)))
    body = "|".join(re.escape(s).replace(r"\ ", r"\s*") for s in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w.&])(?:{body})(?![\w&])(?!\s+\d{{3}}\b)", re.IGNORECASE), table


def _mentions(question: str, catalog: Catalog) -> list[_Mention]:
    pattern, table = _matcher(tuple(catalog.sources))
    found = []
    for m in pattern.finditer(question):
        outlet = table[_norm(m.group(0))]
        if not (outlet.plain and m.group(0).split()[-1][:1].islower()):  # "the age of 16" is no outlet
            found.append(_Mention(m.start(), m.end(), outlet.sources, outlet.unknown))
    return found


def _outlet_phrase(question: str, m: _Mention) -> str | None:
    """The words that restrict a question to one outlet ("according to X"); "" if none, None if negated."""
    before, after = question[: m.start].rstrip(_Q + " "), question[m.end:]
    if re.search(r"\b(?:not|other than|besides|except|apart from|unlike|excluding|rather than|instead of)"
                 r"(?:\s+(?:by|from|in|the|an?))*$", before, re.IGNORECASE):
        return None
    lead = re.search(r"\b(?:according to|(?:reported|written|published|covered) (?:by|in)|in|from|"
                     r"(?:articles?|reports?|stories|coverage|pieces?|news) (?:from|by|in))"
                     r"(?:\s+(?:the|an?))?$", before, re.IGNORECASE)
    tail = re.match(rf"[{_Q}]?(?:['’]s)?\s+(?:\w+\s+)?(?:reported|reports?|wrote|writes?|said|says?|"
                    r"published|articles?|pieces?|stor(?:y|ies)|coverage)\b", after, re.IGNORECASE)
    if not (lead or tail):
        return ""
    asks = re.search(r"\bwhat\s+(?:did|does|has|have)$", before, re.IGNORECASE)
    start = lead.start() if lead else asks.start() if asks else m.start
    return re.sub(f"[{_Q}](?!s)", "", question[start: m.end + (tail.end() if tail else 0)]).strip()


def _hard_sources(question: str, hops: list[_Mention]) -> tuple[list[str], list[str]]:
    """A source filter only for a question naming one outlet, in explicit phrasing and never negated."""
    if len({m.sources or m.unknown for m in hops}) != 1 or not hops[0].sources:
        return [], []
    phrases = [_outlet_phrase(question, m) for m in hops]
    if None in phrases or not any(phrases):
        return [], []
    sources = list(hops[0].sources)
    return sources, [f"source = {', '.join(sources)} (from '{next(p for p in phrases if p)}')"]


outlet_mentions = _mentions  # public name for other modules (assistant.probes)
