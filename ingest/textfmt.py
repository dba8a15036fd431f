"""Text formats: plain text and Markdown articles, including the seed's wire-story layout.

Recognised, in order: optional front matter (`---` / `key: value` lines / `---`); the seed's first
line ` date YYYY-MM-DD <one-sentence summary>`; a Markdown `# Title`; a dateline opening the body
(`Islamabad, April 8 (IANS)`, `WASHINGTON (Reuters) -`) giving the place and, if none is set, the
outlet; a trailing wire sign-off (`--IANS`, `ksk/`). With no title line, a readable title is derived
from the summary or the first sentence. A text file's identity is its url or `id` if given, else
its file name.
"""

from __future__ import annotations

import re
from datetime import datetime

from ingest.models import Article, stable_id

_SEED_FIRST = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\b[ \t]*(.*)$")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$")
_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATELINE = re.compile(
    rf"^(?P<place>[A-Z][A-Za-z.' -]{{1,40}}?(?:,\s*[A-Z][A-Za-z.' -]{{1,30}}?)?)"
    rf"(?:,\s*{_MONTHS}\s+\d{{1,2}})?\s*\((?P<agency>[A-Z][A-Za-z&. -]{{1,30}})\)\s*(?:[-–—:]\s*)?"
)
_SIGNOFF = re.compile(r"^(?:--\s*(?P<agency>[A-Z][A-Za-z]{1,20})|[a-z]{2,5}/[a-z/]*)\s*$")
_ATTRIBUTION = re.compile(r",\s*(?:reports?|said|says|according to)\s+[^,]{1,60}$", re.I)


def parse_front_matter(text: str) -> tuple[dict[str, str], str]:
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
    title = _ATTRIBUTION.sub("", title)
    if len(title) > limit:
        title = title[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return title


def _strip_signoff(body: str) -> tuple[str, str]:
    lines, agency = body.rstrip().split("\n"), ""
    while lines and (m := _SIGNOFF.match(lines[-1].strip()) if lines[-1].strip() else True):
        if isinstance(m, re.Match) and m.group("agency"):
            agency = agency or m.group("agency")
        lines.pop()
    return "\n".join(lines), agency


def _first_sentence(body: str) -> str:
    first = body.strip().split("\n", 1)[0]
    match = re.search(r"^(.+?[.!?])(?:\s|$)", first)
    return match.group(1) if match else first


def parse_text(text: str, name: str, origin: str, markdown: bool = False) -> Article:
    """One article from a text or Markdown file's content."""
    meta, rest = parse_front_matter(text.lstrip("\ufeff"))
    lines = rest.split("\n")
    summary, date = meta.get("summary", ""), meta.get("date") or meta.get("published_at") or ""
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and (seed := _SEED_FIRST.match(lines[first])):
        date, summary = date or seed.group(1), summary or seed.group(2).strip()
        lines = lines[first + 1:]
    title = meta.get("title", "")
    if markdown or not title:
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is not None and (heading := _HEADING.match(lines[first])):
            title = title or heading.group(1)
            lines = lines[first + 1:]
    body, signoff_agency = _strip_signoff("\n".join(lines).strip())
    place, source = meta.get("place", ""), meta.get("source", "")
    if dateline := _DATELINE.match(body):
        place = place or dateline.group("place").split(",")[0].strip().title()
        source = source or dateline.group("agency").strip()
    source = source or signoff_agency
    if not title:
        lead = _DATELINE.sub("", body, count=1) if dateline else body
        title = derive_title(summary or _first_sentence(lead))
    url = meta.get("url", "")
    art_id = meta.get("id") or (stable_id(url) if url else stable_id("file", name))
    return Article(
        id=art_id, title=title, body=body, published_at=parse_date(date), source=source,
        author=meta.get("author", ""), url=url, category=meta.get("category", ""), place=place,
        summary=summary, origin=origin,
    )


def parse_date(value: object) -> datetime | None:
    """An ISO 8601 or RFC 2822 date, or None when absent or unparseable."""
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
