"""Cite: parse, renumber and verify the [n] citations of a model's answer against the retrieved passages.

`cite()` turns a model's raw answer into what a reader may trust: markers renumbered 1..m in order of
first appearance, markers to passages that do not exist dropped, links to anything but the cited
articles removed (images, HTML tags and scripts too), and every sentence checked lexically against the
passages it cites. A sentence the passages do not support (or a sentence citing nothing that says more
than glue words the passages hold) is listed in `unsupported` and tagged " [unverified]" in the text.
A passage's sentences that speak to a model ("ignore previous instructions", a "SYSTEM:" block:
`sentences.instruction_flags`) support nothing, so an answer obeying them fails verification.
`support()` is the lexical check.
Sentences are split by `assistant.sentences` (`split_sentences` is re-exported here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from datetime import date
from functools import lru_cache
from typing import NamedTuple

import Stemmer
from pydantic import BaseModel, Field

from assistant.markup import plain_claim, strip_links, url_key
from assistant.schema import Citation, Passage
from assistant.sentences import MARKER_RUN, STOPWORDS, _sentence_spans, flagged_spans
from assistant.sentences import is_refusal as is_refusal
from assistant.sentences import split_sentences as split_sentences

REFUSAL = "The articles don't say."
UNVERIFIED = "[unverified]"
NUMBER_CAP = 0.25  # the most a claim scores when one of its numbers is missing from the passage

_MARKER_WITH_SPACE = re.compile(rf"([ \t]*)({MARKER_RUN.pattern})")
_GLUE_WORDS = (  # words that frame a claim without adding to it
    "yes", "summary", "short", "overall", "answer", "however", "note", "first", "second", "finally",
    "sources", "source", "articles", "article", "passages", "passage", "report", "reported", "reports",
    "wrote", "writes", "published", "see", "also", "meanwhile", "additionally", "further", "furthermore",
    "moreover", "both", "including", "while", "mentioned", "described", "explained", "details")
_TOKEN = re.compile(r"[^\W_]+(?:['’.][^\W_]+|,\d+)*")
_NUMBER_WORDS = {word: str(i) for i, word in enumerate(
    ("zero", "", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")) if word}
_NUMBER_WORDS |= {word: str(10 * i) for i, word in enumerate(
    ("thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), start=3)}

_STEMMER = Stemmer.Stemmer("english")
_Scored = tuple[float, str]  # a score and the span of a passage it was reached on
_Spans = list[tuple[int, int]]
_Quotes = dict[int, _Scored]


class Cited(BaseModel):
    """A verified answer: the cleaned text, its citations (n = 1..m) and what failed verification."""

    text: str
    citations: list[Citation] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list)
    dropped: list[int] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)  # each supported cited sentence, then its spans
    removed: list[str] = Field(default_factory=list)  # unsupported sentences citing nothing, if dropped
    refused: bool = False


@lru_cache(maxsize=65536)
def _normalise(token: str) -> str:
    """The comparable form of a token: "" for stopwords; numbers as digits; other words stemmed."""
    word = token.lower().replace("’", "'")
    word = word[:-2] if word.endswith("'s") else word
    if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
        return ""
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    if any(c.isdigit() for c in word):
        number = re.fullmatch(r"(\d+)(?:st|nd|rd|th|s)?", word.replace(",", ""))
        return str(int(number.group(1))) if number else word.replace(",", "")
    return word if "." in word else _STEMMER.stemWord(word)


_GLUE_TERMS = frozenset(map(_normalise, _GLUE_WORDS))


def _terms(text: str, names: frozenset[str] = frozenset()) -> dict[str, str]:
    """Content terms of `text`, each with its kind: "num", "name" (capitalised) or "word".

    A capitalised first word is a name only if `names` (terms seen only capitalised in the passage) has it.
    """
    terms: dict[str, str] = {}
    for i, match in enumerate(_TOKEN.finditer(text)):
        raw, term = match.group(), _normalise(match.group())
        if not term or term in terms:
            continue
        if any(c.isdigit() for c in term):
            terms[term] = "num"
        else:
            terms[term] = "name" if raw[0].isupper() and (i > 0 or term in names) else "word"
    return terms


class _Doc(NamedTuple):
    """A passage's sentences (spans), each sentence's terms, and the terms it only ever capitalises."""

    spans: tuple[tuple[int, int], ...]
    sets: tuple[frozenset[str], ...]
    names: frozenset[str]


@lru_cache(maxsize=512)
def _doc(text: str) -> _Doc:
    flagged = flagged_spans(text)
    caps: set[str] = set()
    lower: set[str] = set()
    for match in _TOKEN.finditer(text):
        (caps if match.group()[0].isupper() else lower).add(_normalise(match.group()))
    # a model's orders are no evidence
    sets = tuple(frozenset() if bad else frozenset(_terms(text[s:e])) for s, e, bad in flagged)
    return _Doc(tuple((s, e) for s, e, _ in flagged), sets, frozenset(caps - lower))


def _windows(doc: _Doc) -> Iterator[tuple[int, int, frozenset[str]]]:
    """Each sentence, then each pair of adjacent sentences: (start, end, terms)."""
    yield from ((s, e, terms) for (s, e), terms in zip(doc.spans, doc.sets, strict=True))
    for i in range(len(doc.spans) - 1):
        yield doc.spans[i][0], doc.spans[i + 1][1], doc.sets[i] | doc.sets[i + 1]


def _score(terms: dict[str, str], found: frozenset[str]) -> tuple[float, float]:
    """(score, uncapped score): the geometric mean of the share of all terms found and the share of
    non-name words found. Names alone can't carry a claim ("Qureshi said Russia will invade Pakistan"
    shares every name with the article); a number that is not found caps the score at NUMBER_CAP.
    """
    if not terms:
        return 0.0, 0.0
    hits = {term for term in terms if term in found}
    share = len(hits) / len(terms)
    words = [term for term, kind in terms.items() if kind == "word"]
    word_share = sum(term in hits for term in words) / len(words) if words else share
    score = math.sqrt(share * word_share)
    if any(kind == "num" and term not in hits for term, kind in terms.items()):
        return min(score, NUMBER_CAP), score
    return score, score


def _best(terms: dict[str, str], doc: _Doc, extra: frozenset[str]) -> tuple[float, int, int, frozenset[str]]:
    """The best-supporting window of `doc`: (score, start, end, its terms). Among windows capped alike
    the uncapped score decides; remaining ties go to the earlier, then shorter, window."""
    best: tuple[float, int, int, frozenset[str]] = (0.0, 0, 0, frozenset())
    best_key = (0.0, 0.0)
    for start, end, window in _windows(doc):
        key = _score(terms, window | extra)
        if key > best_key:
            best, best_key = (key[0], start, end, window), key
    return best


def support(claim: str, passage: str, context: str = "") -> tuple[float, str]:
    """How well `passage` supports `claim`, in [0, 1], and the supporting span (an exact substring).

    Terms are content words (stopwords and [n] markers removed, Snowball-stemmed) and numbers (which must
    match exactly; "two" == "2"). Words of `context` (e.g. the article's title, outlet, date) count as
    found anywhere. The window is the best sentence or pair of adjacent sentences of the passage.
    """
    doc = _doc(passage)
    terms = _terms(MARKER_RUN.sub(" ", claim), doc.names)
    score, start, end, _ = _best(terms, doc, frozenset(_terms(context)))
    return score, passage[start:end]


def _numbers(markers: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", markers)]


def _renumber(text: str, mapping: dict[int, int]) -> str:
    """Rewrite each marker run as "[a][b]" in new numbers (sorted, distinct); runs left empty vanish."""

    def rewrite(run: re.Match[str]) -> str:
        new = sorted({mapping[n] for n in _numbers(run.group(2)) if n in mapping})
        return run.group(1) + "".join(f"[{n}]" for n in new) if new else ""

    return _MARKER_WITH_SPACE.sub(rewrite, text)


def _context(passage: Passage) -> frozenset[str]:
    return _metadata_terms(passage.title, passage.source, passage.published_at)


@lru_cache(maxsize=512)
def _metadata_terms(title: str, source: str, published_at: str) -> frozenset[str]:
    """Terms a claim may take from the article's metadata: title, outlet and publication date."""
    words = f"{title} {source}"
    try:
        day = date.fromisoformat(published_at[:10])
        words += f" {day.year} {day.month} {day.day} {day:%B %b %A}"
    except ValueError:
        pass
    return frozenset(_terms(words))


def _unverified_at(text: str, start: int, end: int) -> int:
    """Where " [unverified]" goes: before the sentence's final . ! ? (unless a quote closes it), or last."""
    closing = re.search(r"[.!?…]+$", text[start:end])
    return start + closing.start() if closing else end


def _claim_ok(claim: str, cited: dict[int, Passage], threshold: float) -> tuple[bool, dict[int, _Scored]]:
    """Whether a sentence citing `cited` is supported by them jointly, and each one's (score, quote).

    Windows are picked greedily, the best-supporting passage first, each next window for what the
    ones before left uncovered, so "X and Y [1][2]" passes when [1] says X and [2] says Y. What the
    claim adds to the articles' titles must be found in the windows on its own: a headline's words
    cannot carry "the ferry service has been cancelled" when only the headline says "ferry service".
    """
    docs = {n: _doc(p.text) for n, p in cited.items()}
    terms = _terms(claim, frozenset().union(*(d.names for d in docs.values())))
    if not terms:
        return True, {}
    contexts = {n: _context(p) for n, p in cited.items()}
    alone = {n: _best(terms, docs[n], contexts[n])[0] for n in cited}
    found: frozenset[str] = frozenset()
    said: frozenset[str] = frozenset()  # what the windows themselves hold
    quotes: dict[int, _Scored] = {}
    for n in sorted(cited, key=lambda n: -alone[n]):
        _, start, end, window = _best(terms, docs[n], contexts[n] | found)
        found, said = found | window | contexts[n], said | window
        quotes[n] = (_score(terms, window | contexts[n])[0], cited[n].text[start:end])
    rest = {term: kind for term, kind in terms.items()
            if term not in _GLUE_TERMS and not any(term in c for c in contexts.values())}
    return _score(terms, found)[0] >= threshold and (not rest or _score(rest, said)[0] >= threshold), quotes


def overlaps(text: str, other: str) -> bool:
    """Whether two texts share a content term (stemmed word, name or number)."""
    return not _terms(text).keys().isdisjoint(_terms(other).keys())


def _glue(claim: str, vocabulary: frozenset[str]) -> bool:
    """Whether an uncited sentence is glue, not a claim: a refusal, a lead-in ending in ":", or under
    three content terms, each a glue word or found in the cited passages ("PWNED." is not glue)."""
    terms = _terms(claim)
    return (is_refusal(claim) or claim.rstrip().endswith(":")
            or (len(terms) < 3 and all(t in vocabulary or t in _GLUE_TERMS for t in terms)))


def _verify(text: str, by_new: dict[int, Passage], threshold: float) -> tuple[_Spans, set[int], _Quotes,
                                                                            list[str]]:
    """Check each sentence: (spans of unsupported ones, numbers they cite, best (score, quote) per n,
    the evidence of the supported cited ones)."""
    quotes: dict[int, _Scored] = {}
    failed: set[int] = set()
    unsupported: list[tuple[int, int]] = []
    evidence: list[str] = []
    sets = [terms for p in by_new.values() for terms in (*_doc(p.text).sets, _context(p))]
    vocabulary: frozenset[str] = frozenset().union(*sets)
    for start, end in _sentence_spans(text):
        numbers = sorted({n for run in MARKER_RUN.findall(text[start:end]) for n in _numbers(run)})
        claim = plain_claim(text[start:end])
        if numbers:
            ok, scored = _claim_ok(claim, {n: by_new[n] for n in numbers}, threshold)
            if ok:
                evidence.append(" ".join([claim, *(quote for _, quote in scored.values())]))
        else:
            ok, scored = _glue(claim, vocabulary), {}
        if not ok:
            failed.update(numbers)
            unsupported.append((start, end))
        for n, (score, quote) in scored.items():
            if n not in quotes or score > quotes[n][0]:
                quotes[n] = (score, quote)
    return unsupported, failed, quotes, evidence


def cite(answer_text: str, passages: Sequence[Passage], threshold: float = 0.5,
         drop_uncited: bool = False) -> Cited:
    """Renumber, clean and verify the citations of `answer_text` against `passages` (cited as [1..k]).
    Unsupported sentences are marked [unverified]; with `drop_uncited`, those citing nothing (a model's
    unsourced aside: "PWNED.") are removed from the text instead, and listed in `removed`."""
    text = answer_text.strip()
    numbers = [n for run in MARKER_RUN.findall(text) for n in _numbers(run)]
    order = list(dict.fromkeys(n for n in numbers if 1 <= n <= len(passages)))
    dropped = list(dict.fromkeys(n for n in numbers if not 1 <= n <= len(passages)))
    mapping = {old: new for new, old in enumerate(order, start=1)}
    by_new = {new: passages[old - 1] for old, new in mapping.items()}
    text = _renumber(strip_links(text, {url_key(p.url) for p in by_new.values() if p.url}), mapping)
    unsupported, failed, quotes, evidence = _verify(text, by_new, threshold)
    marked, removed = text, list[str]()
    for start, end in reversed(unsupported):
        if drop_uncited and not MARKER_RUN.search(text, start, end):
            removed.insert(0, text[start:end])
            marked = marked[:start].rstrip(" \t") + marked[end:]
            continue
        at = _unverified_at(marked, start, end)
        marked = f"{marked[:at]} {UNVERIFIED}{marked[at:]}"
    unsupported = [(s, e) for s, e in unsupported if text[s:e] not in removed]
    citations = [Citation(n=n, passage=p.text, quote=quotes.get(n, (0.0, ""))[1], supported=n not in failed,
                          **p.model_dump(include={"article_id", "title", "source", "published_at", "url"}))
                 for n, p in by_new.items()]
    return Cited(text=marked.strip(), citations=citations, unsupported=[text[s:e] for s, e in unsupported],
                 dropped=dropped, evidence=evidence, removed=removed,
                 refused=not citations and is_refusal(text))
