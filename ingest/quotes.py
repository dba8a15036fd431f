"""Quotes: attribute the direct and reported speech of an article body to named speakers.

`extract_quotes` pairs quotation marks (straight or curly double quotes; ‘single’ ones only in a paragraph
without double ones) and finds who said the words: `"…," X said`, `"…," said X`, `X said: "…"`, `X said
that "…"`, `According to X, "…"`. A pronoun ("he added") goes to the last named person who spoke or was a
sentence's subject, skipping one whose sex the text showed to differ; a bare title ("the visiting Foreign
Minister") goes to the last person introduced with that title; a quote opening the sentence after an
attributed one in its paragraph continues it. Sentences like "Qureshi reiterated Pakistan's resolve …" or
"<clause>, Satloff said." give kind="reported" quotes of the clause. A quote's text is the words inside the
marks (a trailing comma dropped). Precision over recall: a quote whose speaker is unclear is left out;
organisations speak only when named ("the Kremlin said"), never as a pronoun's antecedent.
`ingest.quoteindex.QuoteIndex` keeps the quotes of many articles and finds them by a name as a question
asks it (`speaker_matches`).
Word lists and patterns are in `ingest.quote_words`; who a speaker phrase names is read by `ingest.speakers`.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from typing import NamedTuple

from assistant.schema import Quote
from ingest.quote_words import (
    _ABBREV,
    _ADV,
    _AFTER,
    _BEFORE,
    _CUT,
    _LAST_WORD,
    _LEAD,
    _LEAD_IN,
    _NEEDS_THAT,
    _NOT_REPORTED,
    _PREP,
    _SENT_END,
    _SOURCE,
    _SUBJECT,
    _SURNAMES,
    _THAT,
    _TITLES,
    _TRAIL,
    _VERB_RE,
)
from ingest.speakers import _parse_who, _State, _Who


class _Span(NamedTuple):
    open: int  # offset of the opening mark
    close: int  # offset of the closing mark, or the paragraph's end when the quote runs on
    closed: bool
    para: int


def _quote_spans(body: str) -> list[_Span]:
    spans: list[_Span] = []
    pos = 0
    for para, line in enumerate(body.split("\n")):
        double, opened = any(c in line for c in '"“”'), -1
        for m in re.finditer(r'["“”]' if double else r"[‘’]", line):
            i, c = m.start(), m.group()
            before, after = line[i - 1 : i] or " ", line[i + 1 : i + 2] or " "
            if opened < 0 and (c == "“" or (c in "\"‘" and (before.isspace() or before in "([{—–-/:")
                                            and not after.isspace())):
                opened = i
            elif opened >= 0 and ((c in '”"' and not before.isspace()) or (
                    c == "’" and before in ",.!?…" and not after.isalpha())):
                spans.append(_Span(pos + opened, pos + i, True, para))
                opened = -1
        if opened >= 0 and double and len(line) - opened > 12:
            spans.append(_Span(pos + opened, pos + len(line.rstrip()), False, para))
        pos += len(line) + 1
    return spans


def _sentences(body: str, spans: list[_Span]) -> list[tuple[int, int]]:
    """Sentence spans; none ends inside quotation marks, after an abbreviation or before `"…!" X said`."""
    opens, out, start = [sp.open for sp in spans], [], 0
    for m in _SENT_END.finditer(body):
        if "\n" not in m.group():
            gap = m.start() + len(m.group().rstrip())
            k = bisect.bisect_left(opens, gap) - 1
            inside = k >= 0 and spans[k].open < gap < spans[k].close
            exclaimed = k >= 0 and spans[k].close == gap - 1 and body[gap - 2] in "!?"  # "…!" Smith said.
            if inside or (exclaimed and _AFTER.match(body, gap)):
                continue
            word = _LAST_WORD.search(body, max(0, m.start() - 12), m.start())
            last = word.group(1) if word else ""
            if last.lower() in _ABBREV or re.fullmatch(r"[^\W\d_]", last.split(".")[-1]):
                continue
        out.append((start, m.start() + len(m.group().rstrip())))
        start = m.end()
    out.append((start, len(body)))
    return [(a, b) for a, b in out if body[a:b].strip()]


def _segment(body: str, s: int, verb: int) -> tuple[str, bool]:
    """The words before a speech verb back to the clause's start (past an appositive); at sentence start?"""
    text = body[s:verb].rstrip()
    if text.endswith(","):
        comma = text.rfind(",", 0, len(text) - 1)
        if comma >= 0 and len(text[comma:].split()) <= 12:
            text = text[:comma]
    cut = max(text.rfind(c) for c in ',;:"“”(—–')
    words = text[cut + 1 :].split()
    while words and words[-1].lower() in _ADV:
        words.pop()
    while cut < 0 and words and words[0].lower().rstrip(",") in _LEAD:
        words.pop(0)
    return " ".join(words), cut < 0


def _attribution(body: str, s: int, e: int, sp: _Span) -> tuple[_Who | None, int, bool]:
    """Who the words right after or right before a quote attribute it to, their verb's offset, at start?"""
    inner = body[sp.open + 1 : sp.close].rstrip()
    m = _AFTER.match(body, sp.close + 1, e) if sp.closed else None
    if m and (inner[-1:] in ",!?—–-…" or body[sp.close + 1 : sp.close + 2] == "," or (
            inner[-1:] == "." and re.match(r"\s+[a-z]", body[sp.close + 1 : sp.close + 4]))):
        if m.group("w2") is not None:
            return _parse_who(m.group("w2")), m.start("v2"), False
        verb = m.start("v1") if m.group("v1") else _SOURCE
        return _parse_who(_CUT.sub("", m.group("w1") or m.group("w3"))), verb, False
    b = _BEFORE.search(body, max(s, sp.open - 80), sp.open)
    if b is None or b.group("w3"):
        return (_parse_who(b.group("w3")) if b else None), _SOURCE, False
    text, at_start = _segment(body, s, b.start("v"))
    return _parse_who(text), b.start("v"), at_start


def _clause(body: str, e: int, verb: re.Match[str]) -> tuple[int, int] | None:
    """Span of the clause a speech verb introduces ("that" and a lead-in like "in a statement" skipped)."""
    a = verb.end()
    m = _THAT.match(body, a, e)
    pre = m.group("pre") if m else None
    if m and (pre is None or verb.group() in _NEEDS_THAT or pre.split()[0].lower() in _PREP):
        a = m.end()
    elif verb.group() in _NEEDS_THAT or body[a:e].split(maxsplit=1)[:1] in _LEAD_IN:
        return None  # "testified to …", "said during demo day"
    a, b = _strip(body, a, e, ".;")
    return (a, b) if a < b and body[a].isalnum() and len(body[a:b].split()) >= 3 else None


def _reported(body: str, s: int, e: int, mine: list[_Span], used: set[int], state: _State) -> Quote | None:
    """The sentence's reported speech: "X said (that) <clause>" or "<clause>, X said", X a person or title."""
    found: tuple[_Who | None, int, bool, tuple[int, int] | None] | None = None
    t = None if mine else _TRAIL.search(body, s, e)
    if t and t.start("v") not in used:
        a, b = _strip(body, s, t.start())
        found = (_parse_who(t.group("who")), t.start("v"), False,
                 (a, b) if body.count(" ", a, b) > 2 else None)
    for v in () if found else _VERB_RE.finditer(body, s, e):
        if v.start() in used or v.group() in _NOT_REPORTED or any(p.open < v.start() < p.close for p in mine):
            continue
        who = _parse_who((seg := _segment(body, s, v.start()))[0])
        if who is not None and who.kind != "pronoun":
            found = (who, v.start(), seg[1], _clause(body, e, v))
            break
    if not found or not found[3] or not found[0] or found[0].kind == "pronoun":
        return None
    (a, b), speaker = found[3], state.resolve(found[0], found[1], found[2], person=True)
    if not speaker:
        return None
    return Quote(speaker=speaker, text=body[a:b], start=a, end=b, sentence=body[s:e], kind="reported")


def _strip(body: str, a: int, b: int, tail: str = ",") -> tuple[int, int]:
    while a < b and body[a].isspace():
        a += 1
    while b > a and (body[b - 1].isspace() or body[b - 1] in tail):
        b -= 1
    return a, b


def extract_quotes(body: str) -> list[Quote]:
    """The attributed quotes of `body`, in order of position; `body[q.start:q.end] == q.text` for each."""
    spans = _quote_spans(body)
    opens, state, out = [sp.open for sp in spans], _State(body), []
    prev: tuple[_Span, str, int] | None = None  # the last attributed quote, its speaker, its sentence number
    for n, (s, e) in enumerate(_sentences(body, spans)):
        lead = _SUBJECT.match(body, s, e)
        if lead:
            who = _parse_who(lead.group("run"))
            state.resolve(who, s, lead.start("run") == s, person=True, speaking=False)
        if body.startswith(("He ", "She "), s) and state.recent:
            state.gender.setdefault(state.recent[-1], "m" if body[s] == "H" else "f")
        mine = spans[bisect.bisect_left(opens, s) : bisect.bisect_left(opens, e)]
        used = set()
        for sp in mine:
            who, verb, at_start = _attribution(body, s, e, sp)
            speaker = state.resolve(who, sp.open, at_start, person=verb == _SOURCE)
            if speaker is None and prev and sp.open == s and prev[2] == n - 1 and (
                    prev[0].para == sp.para or not prev[0].closed):
                speaker = prev[1]  # "…," he said. "More words."
            a, b = _strip(body, sp.open + 1, sp.close)
            if speaker and a < b:
                out.append(Quote(speaker=speaker, text=body[a:b], start=a, end=b, sentence=body[s:e]))
                prev = (sp, speaker, n)
                used.add(verb)
        reported = _reported(body, s, e, mine, used, state)
        if reported:
            out.append(reported)
    return sorted(out, key=lambda q: q.start)


def _name_tokens(name: str) -> list[str]:
    text = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    text = re.sub(r"['’]s\b|['’]$", "", text.casefold().replace(".", ""))
    return [t for t in re.findall(r"[\w-]+", text) if t not in _TITLES - _SURNAMES]


def speaker_matches(asked: str, speaker: str) -> bool:
    """Does a name as a question asks it ("qureshi", "Lavrov's", "Sergei Lavrov") refer to this speaker?"""
    a, b = _name_tokens(asked), _name_tokens(speaker)
    return bool(a and b) and (set(a) <= set(b) or set(b) <= set(a) or a[-1] == b[-1])

