"""Question analysis: turns a question into a retrieval plan (hard filters, sub-queries, speaker, topic).

Outlets (`assistant.outlets`), dates and "latest" (`assistant.dates`) are read against a `Catalog` of what
the store holds, so names resolve to sources as stored and relative dates count from the newest article
(never from today's clock). A question naming several outlets is split into one sub-query per mention,
each with its own dates; a speaker ("What did X say about Y?") is read here too.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, Field

from assistant.dates import LATEST_DAYS as LATEST_DAYS
from assistant.dates import _anchors, _bounds, _date_phrases, _Dated, _latest, _words
from assistant.outlets import _Q, _hard_sources, _Mention, _mentions
from assistant.outlets import outlet_mentions as outlet_mentions
from assistant.schema import Filters


@dataclass(frozen=True)
class ArticleRef:
    """An article of the store, enough to resolve "after the X report on Y"."""

    id: str
    title: str
    source: str
    published: date | None = None


@dataclass(frozen=True)
class Catalog:
    """What the store holds, to resolve outlet names and relative dates."""

    sources: tuple[str, ...]
    categories: tuple[str, ...] = ()
    newest: date | None = None
    oldest: date | None = None
    articles: tuple[ArticleRef, ...] = ()

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> Catalog:
        """A catalog of article records with title, source, published_at (ISO) and category."""
        rows = list(records)
        refs = tuple(ArticleRef(str(r.get("id") or r.get("url") or i), str(r.get("title", "")),
                                str(r.get("source", "")), _iso_day(str(r.get("published_at") or "")))
                     for i, r in enumerate(rows))
        days = [a.published for a in refs if a.published]
        return cls(tuple(sorted({a.source for a in refs if a.source})),
                   tuple(sorted({str(r["category"]) for r in rows if r.get("category")})),
                   max(days, default=None), min(days, default=None), refs)


class SubQuery(BaseModel):
    """One hop of a multi-hop question: the clause about one article, with the outlet and dates it names."""

    text: str
    sources: list[str] = Field(default_factory=list)
    since: date | None = None
    until: date | None = None


class QueryPlan(BaseModel):
    """How to retrieve for a question: hard filters, notes on where they came from, and sub-queries."""

    question: str
    filters: Filters
    applied: list[str] = Field(default_factory=list)
    subqueries: list[SubQuery] = Field(default_factory=list)
    mentioned_sources: list[str] = Field(default_factory=list)
    unknown_sources: list[str] = Field(default_factory=list)
    speaker: str | None = None
    topic: str | None = None
    latest: bool = False


def plan(question: str, catalog: Catalog, explicit: Filters | None = None) -> QueryPlan:
    """The retrieval plan of a question; explicit filters win over those read from the question."""
    explicit = explicit or Filters()
    mentions = _mentions(question, catalog)
    anchors, anchored = _anchors(question, catalog, mentions)
    taken = [(m.start, m.end) for m in mentions] + [(d.start, d.end) for d in anchors]
    dated = _date_phrases(question, catalog, taken) + anchors + _latest(question, catalog, taken)
    hops = [m for m in mentions if m.start not in anchored]
    subqueries, own_dates = _subqueries(question, hops, dated)
    if explicit.since or explicit.until:
        own_dates = []
    since, until = _bounds(own_dates)
    sources, notes = (explicit.sources, []) if explicit.sources else _hard_sources(question, hops)
    speaker, topic = _speaker(question, mentions)
    filters = Filters(since=explicit.since or since, until=explicit.until or until, sources=list(sources),
                      categories=list(explicit.categories))
    return QueryPlan(question=question, filters=filters, applied=notes + [d.note for d in own_dates],
                     subqueries=subqueries, speaker=speaker, topic=topic, latest=any(d.latest for d in dated),
                     mentioned_sources=list(dict.fromkeys(s for m in mentions for s in m.sources)),
                     unknown_sources=list(dict.fromkeys(m.unknown for m in mentions if m.unknown)))


def _iso_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


# --- clauses ------------------------------------------------------------------------------------------

_OPENER = (r"[,;]\s+(?:and\s+|or\s+|but\s+|so\s+)?(?:(?:was|were|is|are|did|does|do|has|have|had|can|could|"
           r"would|will|should)\s+(?:there|the|a|an|this|these|those|it|they|both|any|all|(?-i:[A-Z])\w*)|thus|"
           r"hence|whether|indicating\s+whether|which news source)\b")
_CUTS = (r"[,;]\s+(?:and|or|but|while|whereas|compared|in contrast|unlike|then)\b", r"[,;]\s+",
         r"\s(?:while|whereas|compared (?:to|with)|in contrast to|unlike|similar to|than|before|after|but|"
         r"or the|and (?:the|another|a|is|was|are|were|has|had|have|also|then))\b")
_ENDS_CLAUSE = rf"[{_Q}]?(?:['’]s)?(?:[,;?.]|\s+(?:and|but)\b|$)"
_ATTRIBUTION = rf"\b(?:by|according to|per|from|in)\s+(?:the\s+|an?\s+)?[{_Q}]?$"
_LIST_GAP = rf"(?:['’]s)?[\s,{_Q}]*(?:(?:and|or|as well as|both|the)\b[\s,{_Q}]*)*"
_LEAD = re.compile(rf"^(?:[\s,;:({_Q}]+|(?:and|or|but|while|whereas|between|after|before|following|than|"
                   r"compared|to|with|in|contrast|unlike|similar|then|thus|also|both|does|did|do|is|was|are|"
                   r"were|has|have|had|the|a|an|from|by|of|as|how)\b)+", re.IGNORECASE)
_TRAIL = re.compile(rf"(?:[\s,;:?.!){_Q}]+|\b(?:and|or|but|the|a|an|in|of|by|from|to|with|while|whereas|"
                    r"than|as)\b)+$", re.IGNORECASE)


def _subqueries(question: str, hops: list[_Mention], dated: list[_Dated]
                ) -> tuple[list[SubQuery], list[_Dated]]:
    """One sub-query per outlet mention when the question names two or more, and the dates left for the
    whole question: all of them for a single clause, else those in its stem or before the first outlet."""
    if len(hops) < 2 or not any(m.sources for m in hops):
        return [], dated
    groups = _groups(question, hops)
    bounds, shared = _split(question, groups, [(d.start, d.end) for d in dated])
    names = [question[m.start: m.end] for m in hops]
    stem = " ".join(question[s:e] for s, e in shared)
    stem = re.sub(r"^[\s,;]*(?:(?:and|or|but|so)\s+)?|[\s?.!]+$", "", stem)
    whole = [any(s <= d.start < e for s, e in shared)  # in the stem, or leading: "In October, did X and Y"
             or (d.end <= hops[0].start and question[d.end:][:1] == ",") for d in dated]
    out: list[SubQuery] = []
    for group, (start, end) in zip(groups, bounds, strict=True):
        text = _clean(question[start:end], names)
        if len(_words(text) - {w.lower() for n in names for w in n.split()}) < 3:
            text = _clean(question, names)  # "... mentioned in the TalkSport article": too little to go on
        elif stem and stem not in text:
            text = f"{text}; {stem}"
        own = [d for d, w in zip(dated, whole, strict=True) if not w and start <= d.start < end]
        since, until = _bounds(own)
        for m in group:
            sub = SubQuery(text=text, sources=list(m.sources), since=since, until=until)
            if m.sources and sub not in out:
                out.append(sub)
    return out, [d for d, w in zip(dated, whole, strict=True) if w]


def _groups(question: str, mentions: list[_Mention]) -> list[list[_Mention]]:
    """Mentions in runs ("from Fortune, CNBC and TechCrunch") that share one clause."""
    groups: list[list[_Mention]] = []
    for m in mentions:
        if groups and re.fullmatch(_LIST_GAP, question[groups[-1][-1].end: m.start], re.IGNORECASE):
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


def _split(question: str, groups: list[list[_Mention]], dates: list[tuple[int, int]]
           ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """One (start, end) clause per group, and the spans of shared text (the question's own stem)."""
    def free(pos: int) -> bool:  # not a comma inside "October 2, 2023"
        return not any(s <= pos < e for s, e in dates)

    bounds, shared, start = [], [], 0
    for left, right in itertools.pairwise(groups):
        lo, hi = left[-1].end, right[0].start
        gap = question[lo:hi]
        trail = _TRAIL.search(gap)
        head = lo + (trail.start() if trail else len(gap))
        opener = [lo + m.start() for m in re.finditer(_OPENER, gap, re.IGNORECASE)
                  if free(lo + m.start()) and len(_words(question[lo + m.end(): head])) >= 3]
        if opener:  # "..., was there consistency in the X article": the stem sits between two clauses
            bounds.append((start, opener[-1]))
            shared.append((opener[-1], head))
            start = head
            continue
        cuts = [lo + c.start() for pat in _CUTS for c in reversed(list(re.finditer(pat, gap, re.IGNORECASE)))
                if free(lo + c.start())]
        if cuts and re.match(_ENDS_CLAUSE, gap):  # "... according to X, ...": X's clause ends at X
            end = min(cuts)
        elif re.search(_ATTRIBUTION, gap) and re.match(_ENDS_CLAUSE, question[right[-1].end:]):
            # "..., as reported by Y,": Y's clause is the words before it
            end = next((c for c in cuts if len(_words(question[c:head])) >= 2), cuts[0] if cuts else head)
        else:
            end = cuts[0] if cuts else head
        bounds.append((start, end))
        start = end
    tail_from = groups[-1][-1].end
    tail = [tail_from + m.start() for m in re.finditer(_OPENER, question[tail_from:], re.IGNORECASE)]
    end = next((p for p in tail if free(p)), len(question))
    bounds.append((start, end))
    return bounds, shared + ([(end, len(question))] if end < len(question) else [])


def _clean(text: str, names: list[str]) -> str:
    """The clause without connectives at its ends, nor quotes around outlet names."""
    for name in names:
        text = re.sub(rf"[{_Q}]({re.escape(name)})[{_Q}]?(?![s\w])", r"\1", text)
    text = re.sub(r"\s+", " ", text)
    first = min((i for i in (text.find(n) for n in names) if i >= 0), default=len(text))
    if first == len(text):
        return _TRAIL.sub("", _LEAD.sub("", text)).strip()
    return (_LEAD.sub("", text[:first]) + _TRAIL.sub("", text[first:])).strip()


# --- speaker ------------------------------------------------------------------------------------------

_NAME = r"(?P<name>(?-i:[A-Z])[\w.'’-]*(?:\s+(?:(?-i:[A-Z])[\w.'’-]*|de|van|von|al|bin|da|di|le|del)){0,4})"
_SPEAKER = (
    rf"\bwhat\s+(?:did|does|do|has|have|had)\s+{_NAME}\s+(?:say|said|tell|told|think|thought|claim|claimed|"
    r"state|stated|mean|meant)\b(?:\s+(?:about|on|regarding|concerning|of)\s+(?P<topic>[^?]+))?",
    rf"\bwhat\s+(?:were|are|was|is)\s+{_NAME}['’]s\s+(?:comments?|remarks?|views?|thoughts?|statements?|"
    r"words|opinions?|position|stance|take|reaction)\b(?:\s+(?:on|about|regarding|concerning|to)\s+"
    r"(?P<topic>[^?]+))?",
    rf"\bhow\s+(?:did|does|do|has|have|had)\s+{_NAME}\s+(?:describe|characteri[sz]e|view|see|explain|"
    r"portray|react to|respond to|feel about)\s+(?P<topic>[^?]+)",
    rf"\baccording\s+to\s+{_NAME}(?![\w.'’-])",
)
_NOT_NAMES = frozenset(re.findall(r"\w+", "the a an this that these those it he she they we i you its her"))


def _speaker(question: str, mentions: list[_Mention]) -> tuple[str | None, str | None]:
    """("Qureshi", "Russia") from "What did Qureshi say about Russia?"; an outlet is never a speaker."""
    for pattern in _SPEAKER:
        for m in re.finditer(pattern, question, re.IGNORECASE):
            name = m.group("name")
            if name.split()[0].lower() in _NOT_NAMES or any(
                    x.start < m.end("name") and m.start("name") < x.end for x in mentions):
                continue
            topic = m.groupdict().get("topic")
            topic = re.split(r",|\s+according to\s+", topic)[0].strip(" .!" + _Q) if topic else None
            return name, topic or None
    return None, None
