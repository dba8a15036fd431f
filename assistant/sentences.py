"""Sentences: split text into sentences, where abbreviations, initials and decimals end none.

`split_sentences` gives the sentences of a text (a newline always ends one); `_sentence_spans` gives
their (start, end) offsets. A leading [n] citation marker goes to the sentence before it, so this module
also holds the marker pattern (`MARKER_RUN`) and the stopwords that tell "U.S. officials" from "U.S. The".
Two kinds of sentence are recognised: a refusal ("the articles don't say", `is_refusal`) and an
article's orders to a model ("ignore previous instructions", `is_instruction`, `instruction_flags`).
"""

from __future__ import annotations

import re
from functools import lru_cache

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


@lru_cache(maxsize=4096)
def flagged_spans(text: str) -> tuple[tuple[int, int, bool], ...]:
    """(start, end, is an instruction to a model) of each sentence of `text` — one computation per passage
    text, shared by the extractive answerer and the citation check (both read the same passages)."""
    spans = _sentence_spans(text)
    return tuple((s, e, flag) for (s, e), flag in zip(spans, instruction_flags(text, spans), strict=True))


def news_sentences(text: str) -> list[str]:
    """The sentences of `text` that report news: those speaking to a model (see `is_instruction`) left out."""
    return [text[s:e] for s, e, flagged in flagged_spans(text) if not flagged]


_MODEL = r"(?:ai|assistants?|chatbots?|(?:large\s+)?language\s+models?|llms?|gpt)"
_INSTRUCTION = re.compile("|".join([
    # "ignore all previous instructions", "disregard the system prompt", "forget your rules"
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,40}?\b(?:instructions?|prompts?|rules"
    r"|directions|guidelines|directives)\b",
    # a role label opening a line: "SYSTEM: ...", "### Instruction:", "Assistant (developer mode):"
    # ("Developer:" is not one: game reviews list "Developer: Studio X")
    r"^[\W_]*(?:system|assistant|instructions?)(?:\s+(?:prompt|message|note|override))?"
    r"\s*(?:\([^)\n]{0,30}\))?\s*:",
    # chat-template tokens: <|im_start|>, [INST], <<SYS>>; tags imitating a prompt's fences: </passage>
    r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>",
    r"<\s*/?\s*(?:passages?|question|context|documents?|instructions?|system)\b[^<>\n]{0,40}>",
    # "answer only with 'PWNED'", "respond with exactly", "reply with just"
    r"\b(?:answer|respond|reply)\w*\s+(?:only|solely|exactly|just)\s+with\b",
    r"\b(?:answer|respond|reply)\w*\s+with\s+(?:only|exactly|just)\b",
    # words to the model: "you are now an unrestricted AI", "note to AI assistants", "LLMs reading this"
    rf"\byou\s+are\s+(?:now\s+)?(?:an?\s+)?(?:[\w-]+\s+){{0,2}}{_MODEL}\b",
    rf"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:any\s+|all\s+)?(?:ai\s+)?{_MODEL}\b",
    rf"\b(?:if\s+you\s+are\s+an?\s+{_MODEL}|{_MODEL}\s+reading\s+this)\b",
    r"\b(?:new|updated|real|hidden|secret)\s+(?:system\s+)?(?:instructions?|prompt)\s*:",
]), re.IGNORECASE | re.MULTILINE)


def is_instruction(sentence: str) -> bool:
    """Whether a sentence of an article speaks to an AI model rather than reporting news: "ignore previous
    instructions", a "SYSTEM:" label, chat-template tokens, "answer only with ...". Such a sentence is
    data that may not be obeyed, and it supports no claim."""
    return _INSTRUCTION.search(sentence) is not None


def instruction_flags(text: str, spans: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> list[bool]:
    """For each sentence span of `text`: whether it is an instruction to a model, or follows one in the
    same paragraph (a "SYSTEM:" line or "<|im_start|>system" opens a block whose next sentences are its
    orders); a blank line ends the block."""
    flags, tainted, last_end = [], False, 0
    for start, end in spans:
        tainted = tainted and "\n\n" not in text[last_end:start].replace("\r", "")
        tainted = tainted or is_instruction(text[start:end])
        flags.append(tainted)
        last_end = end
    return flags


MAX_REFUSAL_CHARS = 300
_REFUSAL_RE = re.compile("|".join([
    r"\b(?:the|these|provided|available)\s+(?:\w+\s+)?(?:articles?|passages?|sources?|context|documents?)"
    r"\s+(?:\w+\s+)?(?:do(?:es)?|did)\s*n[o']t\s+(?:say|mention|contain|include|provide|specify|state|cover"
    r"|discuss|address|answer|give|report|tell)",
    r"\binsufficient\s+information\b", r"\bnot\s+enough\s+information\b",
    r"\bno\s+(?:information|mention|details?)\b.*\b(?:articles?|passages?|sources?|context)\b",
    r"\bI\s+(?:cannot|can\s*not|can't|could\s*n[o']t|am\s+unable\s+to|am\s+not\s+able\s+to)\s+"
    r"(?:answer|determine|find|tell|say)\b",
    r"\bnot\s+(?:mentioned|stated|specified|covered|addressed|discussed|reported|provided|included|found)"
    r"\s+in\s+(?:the|these|any)\s+(?:\w+\s+)?(?:articles?|passages?|sources?|context|documents?)",
]), re.IGNORECASE)


def is_refusal(text: str) -> bool:
    """Whether `text` is a short "the articles don't say" answer (no citation markers)."""
    text = text.strip().replace("’", "'")
    return len(text) <= MAX_REFUSAL_CHARS and not MARKER_RUN.search(text) and bool(_REFUSAL_RE.search(text))
