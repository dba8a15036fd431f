"""Sentences: split text into sentences, where abbreviations, initials and decimals end none.

`split_sentences` gives the sentences of a text (a newline always ends one); `_sentence_spans` gives
their (start, end) offsets. A leading [n] citation marker goes to the sentence before it, so this module
also holds the marker pattern (`MARKER_RUN`) and the stopwords that tell "U.S. officials" from "U.S. The".
"""

from __future__ import annotations

import re

_MARKER = r"\[\s*\d{1,3}(?:\s*,\s*\d{1,3})*\s*\](?!\()"
MARKER_RUN = re.compile(rf"{_MARKER}(?:[ \t]*{_MARKER})*")
_END = re.compile(r"[.!?…]+[\"'”’)]*(?=\s|$)|\n")
_PREV_WORD = re.compile(r"[A-Za-z][A-Za-z.]*$")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up us very was
we were what when where which while who whom why will with would you your yours yourself may might must
shall one ones said says say saying told added according noted stated mr mrs ms dr don't doesn't didn't
isn't wasn't aren't weren't won't can't couldn't wouldn't shouldn't it's he's she's that's there's they're
""")
_TITLES = _words("mr mrs ms dr prof gen sen rep gov lt col capt sgt st rev hon pres messrs")
_ABBREVIATIONS = _words("etc inc corp ltd co jr sr vs no approx dept est jan feb mar apr jun jul aug sep "
                        "sept oct nov dec")


def _is_boundary(text: str, end: re.Match[str]) -> bool:
    """Whether the punctuation matched by `end` closes a sentence (not "Mr.", "U.S. officials", "J. Doe")."""
    rest = text[end.end():].lstrip()
    if end.group() == "\n" or not rest:
        return True
    if rest[0].islower():
        return False
    if end.group() != ".":
        return True
    prev = _PREV_WORD.search(text, max(0, end.start() - 24), end.start())
    word = prev.group() if prev else ""
    if word.lower() in _TITLES or (len(word) == 1 and word.isupper()):
        return False
    if word.lower() in _ABBREVIATIONS or "." in word:  # "U.S. officials" goes on; "U.S. The" ends
        follower = re.match(r"[A-Za-z']+", rest)
        return rest[0] in "[\"'“‘" or bool(follower and follower.group().lower() in STOPWORDS)
    return True


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace-trimmed; leading [n] markers go to the sentence before."""
    raw, start = [], 0
    for end in _END.finditer(text):
        if _is_boundary(text, end):
            raw.append((start, end.end()))
            start = end.end()
    raw.append((start, len(text)))
    spans: list[tuple[int, int]] = []
    for s, e in raw:
        s, e = s + len(text[s:e]) - len(text[s:e].lstrip()), s + len(text[s:e].rstrip())
        lead = MARKER_RUN.match(text, s)
        if lead and spans:
            spans[-1] = (spans[-1][0], lead.end())
            s = lead.end() + len(text[lead.end():e]) - len(text[lead.end():e].lstrip())
        if s < e:
            spans.append((s, e))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` (newlines always end one); abbreviations, initials and decimals don't."""
    return [text[s:e] for s, e in _sentence_spans(text)]
