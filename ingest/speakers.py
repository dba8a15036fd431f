"""Speakers: who a phrase of an article names, for `ingest.quotes`.

`_parse_who` reads a speaker phrase ("he", "the visiting Foreign Minister", "Amo CEO Antoine Martin");
`_State` walks a body's persons (names, titles, sex as the text shows it) and resolves a phrase to the
speaker it names: the last person for a pronoun, the last one introduced with that title for a title.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from ingest.quote_words import (
    _FEMALE,
    _MALE,
    _MIDCAP,
    _MODS,
    _NAMELIKE,
    _ORG,
    _PARTICLES,
    _PRONOUNS,
    _ROLES,
    _ROLES_MODS,
    _RUN,
    _STOP,
    _SURNAMES,
    _TITLES,
    _TOKEN,
)


class _Who(NamedTuple):
    kind: str  # "name", "pronoun" or "title"
    name: str
    title: tuple[str, ...]


def _low(word: str) -> str:
    return word.lower().rstrip(".").removeprefix("co-")


@functools.lru_cache(maxsize=8192)
def _parse_who(text: str) -> _Who | None:
    """A speaker phrase: "he", "the visiting Foreign Minister", "Amo CEO Antoine Martin", "the Kremlin"."""
    words = text.rstrip(".").split()
    owner = max((k + 1 for k, w in enumerate(words[:-1]) if w.endswith(("'", "’", "'s", "’s"))), default=0)
    words = words[owner:]  # "MIT’s Julie Shah", "the Washington Institute’s Satloff"
    if not words or len(words) > 8:
        return None
    if len(words) == 1 and words[0].lower() in _PRONOUNS:
        return _Who("pronoun", words[0].lower(), ())
    i = len(words)
    while i > 0 and (_TOKEN.fullmatch(words[i - 1]) or (words[i - 1] in _PARTICLES and i < len(words))):
        i -= 1
    while i < len(words) and (words[i] in _PARTICLES or _low(words[i]) in ("the", "a", "an")):
        i += 1
    prefix, run = words[:i], [w.removesuffix("’s").removesuffix("'s") for w in words[i:]]
    if any(_low(w) not in _MODS and _low(w) not in _ROLES and not _TOKEN.fullmatch(w) for w in prefix):
        return None
    title, low = [_low(w) for w in prefix], [_low(w) for w in run]
    if not run or all(w in _TITLES or w in _PARTICLES for w in low) or low[-1] in _TITLES - _SURNAMES:
        title += low
        return _Who("title", "", tuple(title)) if title and title[-1] in _ROLES else None
    cut = max((k + 1 for k, w in enumerate(low[:-1]) if w in _ROLES), default=0)
    name = run[cut:]
    if cut and name[0] in ("of", "for"):
        name = name[-2:]  # "Head of Public Policy Karina Newton"
    name = name[: next((k for k, w in enumerate(name) if w in ("of", "for")), len(name))]
    if not name or len(name) > 4 or _low(name[0]) in _STOP or all(_low(w) in _ORG for w in name) or (
            len(name) == 1 and len(name[0]) < 3):
        return None
    return _Who("name", " ".join(name), tuple(title + low[:cut]))


class _State:
    """What a walk through a body knows: who looks like a person, titles, the persons met so far."""

    def __init__(self, body: str) -> None:
        self.midcaps = set(_MIDCAP.findall(body))
        self.person_tokens: set[str] = set()
        self.titled: list[tuple[int, frozenset[str], str]] = []  # (offset, title words, name) as introduced
        self.recent: list[str] = []
        self.gender: dict[str, str] = {}
        for m in _RUN.finditer(body):
            i, roles = m.start(), []
            if i > 1 and body[i - 2].islower() and body[body.rfind(" ", 0, i - 1) + 1 : i - 1] in _ROLES_MODS:
                roles = [w for w in body[max(0, i - 30) : i].split()[-2:] if w in _ROLES or w in _MODS]
            if " " in m.group() or roles:
                self._introduce(body, m, _parse_who(" ".join([*roles, m.group()])))

    def _introduce(self, body: str, m: re.Match[str], who: _Who | None) -> None:
        """Note a person: a name of 2-3 words ("Taylor Swift"), or one with a title ("coach Dennis Allen")."""
        toks = who.name.split() if who and who.kind == "name" else []
        if not who or not toks or not all(_NAMELIKE.fullmatch(t) for t in toks):
            return
        roles = frozenset(who.title) - _MODS
        if roles & _ROLES:
            self.titled.append((m.start(), roles, who.name))
            self._sex(who.name, who.title)
        elif not 2 <= len(toks) <= 3 or any(_low(t) in _ORG for t in toks) or re.search(
                r"^[Tt]he |['’]s\s", body[max(0, m.start() - 4) : m.end()]):  # "the Beatles", "Google’s Bard"
            return
        self.person_tokens.update(t for t in toks if _low(t) not in ("jr", "sr"))

    def _sex(self, name: str, title: tuple[str, ...]) -> None:
        for sex, words in (("f", _FEMALE), ("m", _MALE)):
            if words.intersection(title):
                self.gender[name] = sex

    def is_person(self, who: _Who, speaking: bool) -> bool:
        toks = [t for t in who.name.split() if t not in _PARTICLES]
        if (frozenset(who.title) - _MODS) & _ROLES:
            return True
        if not toks or "the" in who.title or any(_low(t) in _ORG or not _NAMELIKE.fullmatch(t) for t in toks):
            return False
        return (speaking and 2 <= len(toks) <= 3) or toks[-1] in self.person_tokens

    def resolve(self, who: _Who | None, pos: int, at_start: bool, person: bool = False, speaking: bool = True
                ) -> str | None:
        """The speaker a phrase names (the last person for a pronoun, the titled one for a title), noted."""
        if who is None:
            return None
        if who.kind == "pronoun":
            avoid = {"he": "f", "she": "m"}.get(who.name, "?")
            name = next((n for n in reversed(self.recent) if self.gender.get(n) != avoid), None)
            if name and who.name != "they":
                self.gender.setdefault(name, _PRONOUNS[who.name])
            return name
        if who.kind == "title":
            want = frozenset(who.title) - _MODS
            name = next((n for at, roles, n in reversed(self.titled) if at < pos and want <= roles), None)
        elif at_start and " " not in who.name and who.name not in self.midcaps:
            return None  # a capitalised word opening a sentence need not be a name
        elif self.is_person(who, speaking):
            name = who.name
            self._sex(name, who.title)
            self.person_tokens.update(name.split())
        else:
            return None if person else who.name  # an organisation can speak, but is no pronoun's antecedent
        if name:
            self.recent.append(name)
        return name

