"""Quotes: attribute the direct and reported speech of an article body to named speakers.

`extract_quotes` pairs quotation marks (straight or curly double quotes; ‘single’ ones only in a paragraph
without double ones) and finds who said the words: `"…," X said`, `"…," said X`, `X said: "…"`, `X said
that "…"`, `According to X, "…"`. A pronoun ("he added") goes to the last named person who spoke or was a
sentence's subject, skipping one whose sex the text showed to differ; a bare title ("the visiting Foreign
Minister") goes to the last person introduced with that title; a quote opening the sentence after an
attributed one in its paragraph continues it. Sentences like "Qureshi reiterated Pakistan's resolve …" or
"<clause>, Satloff said." give kind="reported" quotes of the clause. A quote's text is the words inside the
marks (a trailing comma dropped). Precision over recall: a quote whose speaker is unclear is left out;
organisations speak only when named ("the Kremlin said"), never as a pronoun's antecedent. `QuoteIndex`
keeps the quotes of many articles and finds them by a name as a question asks it (`speaker_matches`).
"""

from __future__ import annotations

import bisect
import functools
import json
import re
import unicodedata
from typing import NamedTuple

from assistant.schema import Quote


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_VERBS = _words("""said says say added adds told tells stressed stresses noted notes warned warns
explained explains wrote writes asked asks continued recalled recalls admitted admits acknowledged
acknowledges argued argues claimed claims insisted insists declared declares stated remarked commented
replied replies responded responds answered observed suggested suggests reiterated reiterates emphasised
emphasises emphasized emphasizes underscored underscores underlined announced announces urged urges
predicted predicts conceded concedes concluded confirmed confirms revealed reveals joked jokes quipped
quips tweeted posted testified testifies reflected mused cautioned cautions maintained maintains contended
contends affirmed reaffirmed reaffirms assured assures promised promises vowed vows pledged pledges
alleged alleges expressed expresses exclaimed boasted complained complains lamented""")
_NOT_REPORTED = _words("asked asks continued joked jokes quipped quips mused reflected exclaimed")
_NEEDS_THAT = _words("""added adds claimed claims told tells wrote writes posted tweeted replied replies
responded responds answered observed maintained maintains concluded assured assures""")
_ADV = _words("""also further then later again previously earlier once recently reportedly has had have
would will was""")
_TITLES = _words("""ag pm vp mr mrs ms miss dr prof sir dame lord lady sen rep gov gen lt col capt sgt rev
president vice minister prime foreign secretary chancellor premier governor mayor senator representative
congressman congresswoman ambassador chairman chairwoman chair chief ceo cfo coo cto executive officer
director founder owner spokesman spokeswoman spokesperson king queen prince princess pope sheikh general
commander admiral judge justice attorney prosecutor coach manager captain professor deputy speaker leader
head state affairs defense defence interior finance commerce treasury energy health education trade home
economy security labor labour agriculture transport""")
_SURNAMES = _words("king head general justice chair speaker leader judge coach state home trade")
_ROLES = _TITLES | _words("""forward striker midfielder defender goalkeeper quarterback player star singer
actor actress rapper lawmaker envoy diplomat candidate nominee author researcher scientist doctor boss
counterpart head promoter analyst economist pastor bishop rabbi imam""")
_MODS = _words("""the a an his her their its former then current visiting acting senior top new interim
outgoing""")
_ROLES_MODS = _ROLES | _MODS
_FEMALE = _words("mrs ms miss dame lady queen princess spokeswoman chairwoman congresswoman actress")
_MALE = _words("mr sir lord king prince spokesman chairman congressman")
_STOP = _words("""another the a an this that these those it its he she they we i you his her their our my
your who what when where why how there here some many most several both all other such each every few no
not one officials police experts analysts researchers critics sources others people reports documents data
statement monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec today
yesterday tomorrow but and or so yet however meanwhile still if as while after before in on at for of with
by from though although because given using like during under despite since unlike following without
across until unless once whether""")
_ORG = _words("""inc corp corporation co company group office house ministry department agency bank
university college school council commission association news times post journal reuters party court
government committee institute foundation center centre service services network league club fc united
city studios labs capital partners ltd llc board union organization organisation federation authority
administration airlines motors media press tv radio magazine daily street county state states republic
kingdom new san los las santa north south east west central fort saint lake river island airport hospital
church museum stadium park project summit conference cup series festival awards pipeline research average
index""")
_PARTICLES = _words("bin ibn al de da del der di du dos la le van von el of for")
_LEAD = _words("but and so yet however meanwhile still now instead later earlier")
_PREP = _words("in on at during via through after before last this earlier to")
_LEAD_IN = [[w] for w in _PREP - {"this", "last", "earlier"}]
_ABBREV = _words("""mr mrs ms dr prof sr jr st gen col lt sgt capt gov sen rep rev inc ltd co corp vs no
u.s u.k u.n""")
_PRONOUNS = {"he": "m", "she": "f", "they": ""}
_SOURCE = -2  # the "verb offset" of `according to X`: X must be a person, not a newspaper
_UP = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x250)) if c.isupper())
_LO = "a-z" + "".join(c for c in map(chr, range(0xC0, 0x250)) if c.islower())

_BY_LETTER: dict[str, list[str]] = {}
for _w in sorted(_VERBS | {"pointed out", "points out", "called for", "calls for"}, key=len, reverse=True):
    _BY_LETTER.setdefault(_w[0], []).append(_w[1:].replace(" ", r"\s+"))
_VERB = "(?:" + "|".join(f"{c}(?:{'|'.join(ws)})" for c, ws in _BY_LETTER.items()) + ")"  # fast: by letter
_VERB_RE = re.compile(rf"\b{_VERB}\b")
_TOKEN = re.compile(rf"(?:Mr|Mrs|Ms|Dr|Prof|Sen|Rep|Gov|Gen|Lt|Col|Capt|Sgt|Rev|St|Jr|Sr)\."
                    rf"|[{_UP}]\.(?:[{_UP}]\.)*|(?:[{_LO}]{{1,3}}-)?[{_UP}][\w’'\-]*")
_RUN = re.compile(rf"\b(?=[{_UP}a-z])(?:{_TOKEN.pattern})(?:[ \t]+(?:(?:bin|ibn|al|de|da|del|van|von|of|for)"
                  rf"[ \t]+)?(?:{_TOKEN.pattern}))*")
_NAMELIKE = re.compile(rf"(?:Mc|Mac|De|Di|Da|Du|La|Le|O['’])?[{_UP}](?:[{_LO}'’\-]|-[{_UP}])+|[{_UP}]\.?")
_SUBJECT = re.compile(rf"(?:[^,\"“”\n]{{1,60}},\s+|(?:But|And|Still|Later|Now|Then)\s+)?"
                      rf"(?P<run>{_RUN.pattern})\s+(?:(?:also|still|later|then|now|even|again|never|often|has|had|was|is)\s+)*"
                      rf"(?:[a-z]+ed|is|was|has|had|{_VERB})\b")
_MIDCAP = re.compile(rf"(?<=[\w,;)]) ([{_UP}][\w’'\-]*)")
_SENT_END = re.compile(rf"[.!?…]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[{_UP}0-9])|\n+")
_LAST_WORD = re.compile(r"(?<![^\s.])([\w.]+)$")
_AFTER = re.compile(rf"[,.]?\s+(?:(?P<v1>{_VERB})\s+(?P<w1>[^,;:!?()\"“”‘\n—–]+)"
                    rf"|according to\s+(?P<w3>[^,;:!?()\"“”\n—–]+)"
                    rf"|(?P<w2>[^,;:!?\"“”\n]{{1,60}}?)(?:,[^\"“”\n]{{1,100}}?,)?"
                    rf"\s+(?:(?:also|then|later|again|has|had)\s+)?(?P<v2>{_VERB})\b)")
_BEFORE = re.compile(rf"(?:\b[Aa]ccording to\s+(?P<w3>[^,;:\"“”]{{1,60}}),"
                     rf"|\b(?P<v>{_VERB})(?:\s+that|\s+the|\s*[,:]|\s+[^\"“”,.;:]{{1,40}}:)?)\s*$")
_CUT = re.compile(r"\s+(?:in|on|at|during|after|before|while|when|who|as|from|to|with|about|last|this|told)"
                  r"\b.*")
_TRAIL = re.compile(rf",\s+(?P<who>[^,;:\"“”]{{1,60}}?)\s+(?:also\s+)?(?P<v>{_VERB})"
                    rf"(?:\s+(?:on|in|at|during|last|this|earlier)\b[^,;:\"“”]{{0,40}})?[.!]?\s*$")
_THAT = re.compile(r"\s+(?:that\s+|(?P<pre>(?:[\w’',-]+\s+){1,10}?)that\s+)")


class _Span(NamedTuple):
    open: int  # offset of the opening mark
    close: int  # offset of the closing mark, or the paragraph's end when the quote runs on
    closed: bool
    para: int


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


class QuoteIndex:
    """Quotes by article, in the order articles were first added; found by a speaker's name."""

    def __init__(self) -> None:
        self._quotes: dict[str, list[Quote]] = {}

    def add(self, article_id: str, quotes: list[Quote]) -> None:
        """Set an article's quotes (replacing any it had; it keeps its place in the order)."""
        self._quotes[article_id] = sorted(quotes, key=lambda q: (q.start, q.end))

    def remove(self, article_id: str) -> None:
        """Forget an article's quotes (nothing happens for an unknown article)."""
        self._quotes.pop(article_id, None)

    def find(self, asked_name: str) -> list[tuple[str, Quote]]:
        """(article_id, quote) for each quote whose speaker the name refers to, in article then text order."""
        return [(aid, q) for aid, qs in self._quotes.items() for q in qs
                if speaker_matches(asked_name, q.speaker)]

    def speakers(self) -> set[str]:
        return {q.speaker for qs in self._quotes.values() for q in qs}

    def article_ids(self) -> list[str]:
        return list(self._quotes)

    def __len__(self) -> int:
        """The number of quotes held, over all articles."""
        return sum(len(qs) for qs in self._quotes.values())

    def to_json(self) -> str:
        articles = [{"id": aid, "quotes": [q.model_dump() for q in qs]} for aid, qs in self._quotes.items()]
        return json.dumps({"articles": articles}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> QuoteIndex:
        index = cls()
        for article in json.loads(text)["articles"]:
            index.add(article["id"], [Quote.model_validate(q) for q in article["quotes"]])
        return index
