"""Prompts: render the Jinja2 templates in `prompts/` into chat messages for the answer and condense steps.

Templates are rendered with StrictUndefined, so a missing variable raises instead of leaving a hole.
Passage text is fenced in <passage n="k"> tags, and anything tag-like inside it is defused (`</passage>`,
`<question>`, `<script>`, chat-template tokens such as `<|im_start|>`), as are citation markers
(`[2]` becomes `(2)`), so an article can neither close its fence and speak as the user nor pass off
its own text as another numbered passage. `condense_offline` rewrites a follow-up question
for retrieval without a model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, Literal

import jinja2
from pydantic import BaseModel

from assistant.cite import MARKER_RUN, REFUSAL, STOPWORDS, UNVERIFIED
from assistant.resources import resource_dir
from assistant.schema import Passage

MAX_HISTORY_TURNS = 6  # the last three exchanges
MAX_TURN_CHARS = 1200
MAX_SALIENT_WORDS = 8

_FENCE_TAG = re.compile(r"<(\s*/?\s*[A-Za-z!?|])")
_TEXT_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]")
_STALE_MARKS = re.compile(rf"[ \t]*(?:{MARKER_RUN.pattern}|{re.escape(UNVERIFIED)})")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORD = re.compile(r"[^\W_][\w'’-]*")
_PRONOUNS = frozenset(("it", "its", "they", "them", "their", "theirs", "he", "him", "his", "she", "her",
                       "hers", "this", "these", "those"))
_FOLLOW_UP_OPENINGS = ("what about", "how about", "and ", "what else", "also ")
_FILLER = frozenset(("tell", "know", "else", "happen", "happened", "happens", "think", "mean", "meant"))


class Turn(BaseModel):
    """One earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(resource_dir("prompts")), undefined=jinja2.StrictUndefined,
        autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def render(name: str, **variables: Any) -> str:
    """Render `prompts/{name}.j2`; raises jinja2.UndefinedError if the template uses a missing variable."""
    return _environment().get_template(f"{name}.j2").render(**variables)


def _defuse(text: str) -> str:
    """Neutralise tags that could close a passage's fence ("</passage>" becomes "&lt;/passage>"; any
    other tag or "<|token|>" alike) and [n] markers that could pass for a passage's number ("(2)")."""
    return _TEXT_MARKER.sub(r"(\1)", _FENCE_TAG.sub(r"&lt;\1", text))


def _passage_view(n: int, passage: Passage) -> dict[str, Any]:
    """What the user template shows of a passage: its number, "Title — Outlet — YYYY-MM-DD", its text."""
    day = _ISO_DAY.match(passage.published_at.strip())
    parts = [passage.title.strip() or "Untitled", passage.source.strip(), day.group() if day else ""]
    return {"n": n, "header": _defuse(" — ".join(part for part in parts if part)),
            "text": _defuse(passage.text.strip())}


def _clip(text: str, limit: int = MAX_TURN_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _recent(history: Sequence[Turn]) -> list[Turn]:
    """The last few turns, starting with a user turn, clipped; old [n] markers removed from answers
    (they point at passages the model no longer sees)."""
    turns = list(history)[-MAX_HISTORY_TURNS:]
    while turns and turns[0].role != "user":
        turns.pop(0)
    out = []
    for turn in turns:
        content = turn.content
        if turn.role == "assistant":
            content = _STALE_MARKS.sub("", content)
        if content.strip():
            out.append(Turn(role=turn.role, content=_clip(content.strip())))
    return out


def answer_messages(question: str, passages: Sequence[Passage], history: Sequence[Turn] = (),
                    today: str | None = None) -> list[dict[str, str]]:
    """System prompt, the recent conversation, then the numbered passages and the question."""
    system = render("answer_system", refusal=REFUSAL, today=today)
    views = [_passage_view(n, passage) for n, passage in enumerate(passages, start=1)]
    user = render("answer_user", question=question.strip(), passages=views)
    turns = [{"role": turn.role, "content": turn.content} for turn in _recent(history)]
    return [{"role": "system", "content": system}, *turns, {"role": "user", "content": user}]


def condense_messages(question: str, history: Sequence[Turn]) -> list[dict[str, str]]:
    """Messages asking a model to rewrite a follow-up `question` as a standalone question."""
    content = render("condense", question=question.strip(), history=_recent(history))
    return [{"role": "user", "content": content}]


def is_follow_up(question: str) -> bool:
    """Whether `question` likely leans on the conversation: a pronoun, "what about ...", "and ...?",
    or three words or fewer ("that" counts only when it ends a clause, as in "why was that?")."""
    lowered = question.strip().lower()
    words = [w.strip("'’") for w in _WORD.findall(lowered)]
    dangling_that = re.search(r"\bthat\s*(?:[?.!,]|$)", lowered) is not None
    return (len(words) <= 3 or lowered.startswith(_FOLLOW_UP_OPENINGS) or dangling_that
            or any(word in _PRONOUNS for word in words))


def _salient(text: str) -> list[str]:
    """Names (capitalised words) first, then other content words and numbers, in order, deduplicated."""
    names: list[str] = []
    others: list[str] = []
    for word in _WORD.findall(text):
        word = re.sub(r"['’]s$", "", word)
        lowered = word.lower()
        if lowered in STOPWORDS or lowered in _FILLER:
            continue
        if word[0].isupper():
            names.append(word)
        elif len(word) > 3 or word.isdigit():
            others.append(word)
    return list(dict.fromkeys(names + others))


def condense_offline(question: str, history: Sequence[Turn]) -> str:
    """A standalone version of `question` for retrieval, without a model.

    A follow-up gets the salient words of the last user turn prepended (and of the one before it
    when the last was itself a follow-up); any other question is returned unchanged.
    """
    users = [turn.content for turn in history if turn.role == "user" and turn.content.strip()]
    if not users or not is_follow_up(question):
        return question
    sources = users[-2:] if len(users) > 1 and is_follow_up(users[-1]) else users[-1:]
    asked = {w.lower() for w in _WORD.findall(question)}
    words = [w for w in _salient(" ".join(reversed(sources))) if w.lower() not in asked]
    words = list(dict.fromkeys(words))[:MAX_SALIENT_WORDS]
    return " ".join([*words, question.strip()]) if words else question
