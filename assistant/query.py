"""Question analysis: turns a question into a retrieval plan (hard filters, sub-queries, speaker, topic).

Outlets, dates and "latest" are read against a `Catalog` of what the store holds, so names resolve to
sources as stored and relative dates count from the newest article (never from today's clock).
A question naming several outlets is split into one sub-query per mention, each with its own dates.
"""

from __future__ import annotations

import calendar
import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import BaseModel, Field

from assistant.schema import Filters

LATEST_DAYS = 14
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
_STOP = frozenset(re.findall(r"\w+", """a an the of on in at to for and or but by from with about as is was
    are were be been its his her their this that these those which who what how did does do has have had
    report reports reported article articles piece story published news"""))


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


def _words(text: str) -> set[str]:
    """Content words, lower-cased and without a plural or possessive "s"."""
    found = re.findall(r"[a-z0-9]+(?:['’][a-z]+)?", text.lower())
    return {re.sub(r"(?:['’]s|s)$", "", w) for w in found} - _STOP


# --- outlets ------------------------------------------------------------------------------------------


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


# --- dates --------------------------------------------------------------------------------------------

_MONTH = (r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December"
          r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\b\.?")
_DAY, _YEAR = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?", r"(?P<year>(?:19|20)\d\d)"
_PRE = r"(?P<pre>\b(?i:in|by|of|during|since|after|before|until|through)\s+)"
_DATE_FORMS = (  # (pattern, granularity): earlier forms win where matches overlap
    (rf"\b{_YEAR}-(?P<mon>[01]\d)-(?P<day>[0-3]\d)(?:T[\d:.]+(?:Z|[+-][\d:]+)?)?", "day"),
    (rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+{_YEAR}\b)?", "day"),
    (rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}\b(?:,?\s+{_YEAR}\b)?", "day"),
    (rf"\b{_MONTH}\s+(?:of\s+)?{_YEAR}\b", "month"),
    (rf"{_PRE}{_MONTH}\b", "month"),
    (rf"{_PRE}{_YEAR}\b(?!-)", "year"),
    (r"\b(?P<rel>(?i:(?:this|last|past)\s+(?:week|month)|today|yesterday))\b", "relative"),
)
_LATEST = re.compile(r"\b(?:latest|most\s+recent(?:ly)?|newest)\b(?=\s*(?:[?.]|$|(?:on|about|regarding|from|"
                     r"in|updates?|developments?)\b|(?:\w+\s+)?(?:news|articles?|reports?|stor(?:y|ies)|"
                     r"coverage|headlines)\b))", re.IGNORECASE)  # not "the latest product launch"


@dataclass(frozen=True)
class _Dated:
    """A date phrase of the question and the publication range it implies."""

    start: int
    end: int
    since: date | None
    until: date | None
    note: str
    latest: bool = False


def _bounds(dated: list[_Dated]) -> tuple[date | None, date | None]:
    """The range covering every date phrase (open-ended if one of them is)."""
    if not dated:
        return None, None
    sinces, untils = [d.since for d in dated], [d.until for d in dated]
    return (None if None in sinces else min(filter(None, sinces)),
            None if None in untils else max(filter(None, untils)))


def _range(m: re.Match[str], form: str, catalog: Catalog) -> tuple[date, date] | None:
    ref = catalog.newest or catalog.oldest
    if form == "relative":
        return _relative(re.sub(r"\s+", " ", m.group("rel").lower()), catalog.newest)
    g = m.groupdict()
    month = int(g["mon"]) if g.get("mon") else "janfebmaraprmayjunjulaugsepoctnovdec".index(
        g["month"][:3].lower()) // 3 + 1 if g.get("month") else 1
    day = int(g.get("day") or 1)
    year = int(g["year"]) if g.get("year") else None if ref is None else (  # the last such date in the store
        ref.year - (catalog.newest is not None and (month, day) > (ref.month, ref.day)))
    if year is None or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    first = date(year, month, day)
    if form == "day":
        return first, first
    last_day = calendar.monthrange(year, month)[1]
    return first, date(year, 12, 31) if form == "year" else first.replace(day=last_day)


def _relative(phrase: str, newest: date | None) -> tuple[date, date] | None:
    if newest is None:
        return None
    if phrase in ("today", "yesterday"):
        day = newest - timedelta(days=phrase == "yesterday")
        return day, day
    if phrase.endswith("week"):
        end = newest - timedelta(days=0 if phrase.startswith("this") else 7)
        return end - timedelta(days=6), end
    first = newest.replace(day=1)
    previous = first - timedelta(days=1)
    return (first, newest) if phrase.startswith("this") else (previous.replace(day=1), previous)


def _date_phrases(question: str, catalog: Catalog, taken: list[tuple[int, int]]) -> list[_Dated]:
    """Every date phrase with its range, read with "between/since/after/before"; none outside the store.
    "after/before <day>" keeps that day: a local date is often the next or previous day in UTC."""
    raw: list[tuple[int, int, date, date]] = []
    for pattern, form in _DATE_FORMS:
        for m in re.finditer(pattern, question):
            start = m.end("pre") if m.groupdict().get("pre") else m.start()
            span = _range(m, form, catalog)
            if span and not any(start < e and s < m.end() for s, e in taken):
                taken.append((start, m.end()))
                raw.append((start, m.end(), *span))
    raw.sort()
    dated, i = [], 0
    while i < len(raw):
        (start, end, first, last), nxt = raw[i], raw[i + 1] if i + 1 < len(raw) else None
        lead = re.search(r"\b(?:between|from|since|after|before|until|through|by)\s+$", question[:start],
                         re.IGNORECASE)
        word = lead.group(0).strip().lower() if lead else ""
        slack = timedelta(days=first != last)
        since, until = {"after": (last + slack, None), "since": (first, None),
                        "before": (None, first - slack)}.get(word, (first, last))
        if word in ("until", "through", "by"):
            since = None
        elif word in ("between", "from") and nxt and re.fullmatch(r",?\s*(?:and|to|through|until|-|–)\s*",
                                                                  question[end: nxt[0]], re.IGNORECASE):
            end, until, i = nxt[1], nxt[3], i + 1
        shown = (str(since) if since == until else f"{since}..{until}") if since and until else (
            f"since {since}" if since else f"until {until}")
        intro = re.search(r"\b(?:in|on|during|of)\s+$", question[:start], re.IGNORECASE) or lead
        phrase = question[intro.start() if intro else start: end]
        if not ((catalog.oldest and until and until < catalog.oldest)  # an event date, not a publication
                or (catalog.newest and since and since > catalog.newest)):
            dated.append(_Dated(start, end, since, until, f"published {shown} (from '{phrase}')"))
        i += 1
    return dated


def _latest(question: str, catalog: Catalog, taken: list[tuple[int, int]]) -> list[_Dated]:
    if catalog.newest is None:
        return []
    since = catalog.newest - timedelta(days=LATEST_DAYS)
    note = f"latest: since {since} (newest article {catalog.newest})"
    return [_Dated(m.start(), m.end(), since, None, note, True) for m in _LATEST.finditer(question)
            if not any(m.start() < e and s < m.end() for s, e in taken)]


def _anchors(question: str, catalog: Catalog, mentions: list[_Mention]) -> tuple[list[_Dated], set[int]]:
    """ "published after the Sporting News report on <topic>": the date of its best-matching title, and
    where such outlets are named (they name no article to retrieve, resolved or not)."""
    found, named = [], set()
    for m in mentions:
        head = re.search(r"\b(?:published|posted|released|written|articles?|reports?|stories|news|coverage)"
                         rf"\s+(?P<dir>after|since|before)\s+(?:the\s+)?[{_Q}]?$", question[: m.start], re.I)
        tail = re.match(rf"[{_Q}]?(?:['’]s)?\s+(?:report|article|story|piece|coverage)\s+(?:on|about|of|"
                        r"regarding|concerning)\s+(?P<topic>[^,?;]+?)(?=\s+published\b|[,?;]|$)",
                        question[m.end:], re.IGNORECASE)
        if not (head and tail):
            continue
        named.add(m.start)
        ref = _best_title(tail.group("topic"), m.sources, catalog)
        if ref and ref.published:
            after, day = head.group("dir").lower() != "before", ref.published
            note = (f"published {head.group('dir').lower()} '{ref.title}' ({ref.source}, {day}): "
                    f"{'since' if after else 'until'} {day}")
            found.append(_Dated(head.start("dir"), m.end + tail.end(), day if after else None,
                                None if after else day, note))
    return found, named


def _best_title(topic: str, sources: tuple[str, ...], catalog: Catalog) -> ArticleRef | None:
    wanted = _words(topic)
    scored = [(len(wanted & _words(a.title)), a) for a in catalog.articles if a.source in sources]
    best = max(scored, key=lambda x: x[0], default=(0, None))
    return best[1] if wanted and best[0] >= min(2, len(wanted)) else None


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


outlet_mentions = _mentions  # public name for other modules (assistant.probes)
