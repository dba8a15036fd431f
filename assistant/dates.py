"""Date phrases in a question: the publication range each implies, read against the store's catalog.

Reads days, months and years ("October 2, 2023", "in March", "2024"), ranges ("between ... and ..."),
relative dates ("last week", counted from the newest stored article, never from today's clock), "latest"
and anchors ("published after the X report on Y": the date of that stored article).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from assistant.outlets import _Q, _Mention

if TYPE_CHECKING:
    from assistant.query import ArticleRef, Catalog

LATEST_DAYS = 14
_STOP = frozenset(re.findall(r"\w+", """a an the of on in at to for and or but by from with about as is was
    are were be been its his her their this that these those which who what how did does do has have had
    report reports reported article articles piece story published news"""))


def _words(text: str) -> set[str]:
    """Content words, lower-cased and without a plural or possessive "s"."""
    found = re.findall(r"[a-z0-9]+(?:['’][a-z]+)?", text.lower())
    return {re.sub(r"(?:['’]s|s)$", "", w) for w in found} - _STOP


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
