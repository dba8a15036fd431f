"""Text formats: plain text and Markdown articles, including the seed's wire-story layout.

Recognised, in order: optional front matter (`---` / `key: value` lines / `---`); the seed's first
line ` date YYYY-MM-DD <one-sentence summary>`; a Markdown `# Title`; a dateline opening the body
(`Islamabad, April 8 (IANS)`, `WASHINGTON (Reuters) -`) giving the place and, if none is set, the
outlet; a trailing wire sign-off (`--IANS`, `ksk/`). With no title line, a readable title is derived
from the summary or the first sentence. A text file's identity is its `id` if given (kept when it is
a valid id, else hashed), else its url, else its file name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ingest.chunk import sentence_spans
from ingest.models import Article, stable_id

_SEED_FIRST = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*(.*)$")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATELINE = re.compile(
    rf"^(?P<place>[A-Z][A-Za-z.' -]{{1,40}}?(?:,\s*[A-Z][A-Za-z.' -]{{1,30}}?)?)"
    rf"(?P<date>,\s*{_MONTHS}\s+\d{{1,2}})?\s*"
    rf"\((?P<agency>[A-Z][A-Za-z&. -]{{1,30}})\)\s*(?P<dash>[-–—:]\s*)?"
)
_SIGNOFF = re.compile(r"^(?:--\s*(?P<agency>[A-Z][A-Za-z]{1,20})|[a-z]{2,5}/[a-z/]*)\s*$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")  # as Article.id
_ATTRIBUTION = re.compile(  # `, reports Xinhua news agency` / `, officials said`
    r",\s*(?:(?:reports?|said|says?|according\s+to)\s+[^,]{1,60}|(?:[\w.'’-]+\s+){1,4}(?:said|says?|reported))$",
    re.I,
)


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
    """(`key: value` pairs of a leading `---` block, lower-cased keys; the text after it)."""
    match = _FRONT.match(text)
    if not match:
        return {}, text
    meta = {}
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[match.end():]


def derive_title(sentence: str, limit: int = 100) -> str:
    """A readable headline from a summary or first sentence."""
    title = re.sub(r"\s+", " ", sentence).strip().rstrip(".")
    title = _ATTRIBUTION.sub("", title) or title
    if len(title) > limit:
        title = title[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return title


def explicit_id(value: object) -> str:
    """The article id for an id the input gives: kept as is when it is a valid id, else hashed."""
    text = str(value).strip()
    return text if _ID.match(text) else stable_id("id", text)


def _strip_signoff(body: str) -> tuple[str, str]:
    lines, agency = body.rstrip().split("\n"), ""
    while lines and (m := _SIGNOFF.match(lines[-1].strip()) if lines[-1].strip() else True):
        if isinstance(m, re.Match) and m.group("agency"):
            agency = agency or m.group("agency")
        lines.pop()
    return "\n".join(lines), agency


def dateline(body: str) -> tuple[str, str, str]:
    """(place, agency, rest of the body) for a body opening with a wire dateline, else ("", "", body).

    The place must be in capitals (`WASHINGTON (Reuters)`), or be followed by a date
    (`Islamabad, April 8 (IANS)`) or a dash, so `The World Health Organization (WHO) said` is no dateline.
    """
    match = _DATELINE.match(body)
    if not match or not (match.group("place").isupper() or match.group("date") or match.group("dash")):
        return "", "", body
    place = match.group("place").split(",")[0].strip()
    return place.title() if place.isupper() else place, match.group("agency").strip(), body[match.end():]


def first_sentence(text: str) -> str:
    """The first sentence of the first paragraph (abbreviations such as `U.S.` do not end it)."""
    first = text.strip().split("\n\n", 1)[0]
    spans = sentence_spans(first)
    return first[spans[0][0]:spans[0][1]] if spans else first


def title_from_body(body: str) -> str:
    """A title for an article that has none: the first sentence after any dateline."""
    return derive_title(first_sentence(dateline(body)[2] or body))


def heading(line: str) -> str | None:
    """The title of a Markdown `# Title` (or `# Title #`) line, else None. Parsed by hand: the regex
    this replaces took cubic time on a heading followed by a long run of spaces."""
    text = line.lstrip()
    if len(line) - len(text) > 3 or len(text) < 2 or text[0] != "#" or not text[1].isspace():
        return None
    text = text[1:].strip()
    closed = text.rstrip("#")
    if closed != text and (not closed or closed[-1].isspace()):  # a closing `#` run after a space
        text = closed.rstrip() or text
    return text or None


def _first_line(lines: list[str]) -> int | None:
    return next((i for i, line in enumerate(lines) if line.strip()), None)


def _headers(rest: str, meta: dict[str, str], markdown: bool) -> tuple[str, str, str, str]:
    """(title, summary, date, remaining text) after the seed's ` date …` line and a `# Title` line."""
    lines = rest.split("\n")
    summary, date = meta.get("summary", ""), meta.get("date") or meta.get("published_at") or ""
    first = _first_line(lines)
    if first is not None and (seed := _SEED_FIRST.match(lines[first])):
        date, summary = date or seed.group(1), summary or seed.group(2).strip()
        lines = lines[first + 1:]
    title = meta.get("title", "")
    first = _first_line(lines)
    if (markdown or not title) and first is not None and (found := heading(lines[first])):
        title = title or found
        lines = lines[first + 1:]
    return title, summary, date, "\n".join(lines)


def parse_text(text: str, name: str, origin: str, markdown: bool = False, url: str = "") -> Article:
    """One article from a text or Markdown file's content (`url`: where it was fetched from, if anywhere)."""
    meta, rest = parse_front_matter(text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"))
    title, summary, date, rest = _headers(rest, meta, markdown)
    body, signoff_agency = _strip_signoff(rest.strip())
    place, agency, lead = dateline(body)
    place, source = meta.get("place") or place, meta.get("source") or agency or signoff_agency
    title = title or derive_title(summary or first_sentence(lead or body))
    url = meta.get("url") or url
    art_id = explicit_id(meta["id"]) if meta.get("id") else stable_id(url) if url else stable_id("file", name)
    return Article(
        id=art_id, title=title, body=body, published_at=parse_date(date), source=source,
        author=meta.get("author", ""), url=url, category=meta.get("category", ""), place=place,
        summary=summary, origin=origin,
    )


def parse_date(value: object) -> datetime | None:
    """An ISO 8601 / RFC 2822 date or a Unix timestamp (s or ms); None when absent or unparseable."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
