"""Structured formats: JSON / JSONL article records, HTML pages (trafilatura) and RSS/Atom feeds.

Each parser returns the articles it could read and, for collections, a failure per bad item,
so one bad record never costs the good ones beside it.
"""

from __future__ import annotations

import html as htmllib
import json
import re
from typing import Any

from pydantic import ValidationError

from ingest.models import MAX_BODY_CHARS, Article, Failure, stable_id
from ingest.textfmt import dateline, explicit_id, parse_date, title_from_body

Parsed = tuple[list[Article], list[Failure]]
_BODY_KEYS = ("body", "text", "content")
_DATE_KEYS = ("published_at", "published", "date", "pubDate", "datePublished")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "true/false", type(None): "null"}
_SPACES = re.compile(r"\s+")
_AUTHOR_EMAIL = re.compile(r"^[^\s@]+@\S+\s*\((?P<name>[^)]+)\)$")  # RSS `news@site.example (Name)`
_MAX_ELEMENTS = 50_000  # a heavy news page has a few thousand
_FIRST_ELEMENT = re.compile(rb"<\w")  # as feedparser splits off the prolog
_BOILERPLATE = "//script|//style|//noscript|//template|//nav|//header|//footer|//aside|//head"


class BadInput(ValueError):
    """A whole input that cannot be read as articles; the message says why."""


def validation_message(err: ValidationError) -> str:
    """The first problem pydantic found, as `field: message`."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "a value")


def _body(record: dict[str, Any]) -> str:
    """The first non-empty text under body/text/content; BadInput saying what is wrong otherwise."""
    present = [k for k in _BODY_KEYS if record.get(k) is not None]
    for key in present:
        if isinstance(record[key], str) and record[key].strip():
            return str(record[key])
    if not present:
        raise BadInput("article has no text (no 'body', 'text' or 'content' field)")
    value = record[present[0]]
    if isinstance(value, str):
        raise BadInput(f"article has no text ('{present[0]}' is empty)")
    raise BadInput(f"article has no text ('{present[0]}' is {_json_type(value)}, not text)")


def _record_id(record: dict[str, Any], text: dict[str, str], published: str, name: str, origin: str) -> str:
    explicit = record.get("id")
    if explicit is not None and str(explicit).strip():
        return explicit_id(explicit)
    if text["url"]:
        return stable_id(text["url"])
    if text["title"]:
        return stable_id(text["source"], text["title"], published)
    return stable_id("file", name, origin.rsplit("#", 1)[-1])


def article_from_record(record: Any, origin: str, name: str = "") -> Article:
    """One article from a JSON object with the MultiHop-RAG fields (body/text/content aliases)."""
    if not isinstance(record, dict):
        raise BadInput(f"expected a JSON object for an article, got {_json_type(record)}")
    body = _body(record)
    fields = {k: record.get(k) for k in ("title", "source", "author", "url", "category", "place")}
    text = {k: v.strip() if isinstance(v, str) else "" for k, v in fields.items()}
    published = parse_date(next((record[k] for k in _DATE_KEYS if record.get(k)), None))
    place, agency, _ = dateline(body.strip())
    text["place"], text["source"] = text["place"] or place, text["source"] or agency
    art_id = _record_id(record, text, published.isoformat() if published else "", name, origin)
    try:
        return Article(id=art_id, title=text.pop("title") or title_from_body(body), body=body,
                       published_at=published, origin=origin, **text)
    except ValidationError as err:
        raise BadInput(validation_message(err)) from err


def _collect(records: list[tuple[str, Any]], name: str) -> Parsed:
    articles, failures = [], []
    for origin, record in records:
        try:
            articles.append(article_from_record(record, origin, name))
        except BadInput as err:
            failures.append(Failure(path=origin, error=str(err)))
    return articles, failures


def _number_error(err: ValueError) -> str:
    return "a number has too many digits" if "digits" in str(err) else str(err)


def parse_json(text: str, origin: str, name: str) -> Parsed:
    """Articles from a JSON object, a list of objects, or `{"articles": [...]}`; one failure per bad item."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}") from err
    except RecursionError as err:
        raise BadInput("malformed JSON: nested too deeply") from err
    except ValueError as err:  # an integer literal over Python's 4300-digit limit
        raise BadInput(f"malformed JSON: {_number_error(err)}") from err
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, list):
        if not data:
            raise BadInput("JSON list holds no articles")
        return _collect([(f"{origin}#{i}", r) for i, r in enumerate(data)], name)
    return _collect([(origin, data)], name)


def parse_jsonl(text: str, origin: str, name: str) -> Parsed:
    """Articles from JSON Lines; a malformed or bad line becomes a failure at `origin:LINE`."""
    records: list[tuple[str, Any]] = []
    failures = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"{origin}:{lineno}", json.loads(line)))
        except (ValueError, RecursionError) as err:
            msg = (err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
                   if isinstance(err, RecursionError) else _number_error(err))
            failures.append(Failure(path=f"{origin}:{lineno}", error=f"malformed JSON line: {msg}"))
    if not records and not failures:
        raise BadInput("JSONL file holds no articles")
    articles, bad = _collect(records, name)
    return articles, failures + bad


def _visible_chars(html: str) -> int | None:
    """Characters of text outside scripts, navigation, header, footer and sidebars (None: unparseable).
    Refuses a page too big to extract in bounded time (trafilatura's time grows with its size)."""
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None  # let trafilatura judge
    if (elements := sum(1 for _ in root.iter())) > _MAX_ELEMENTS:
        raise BadInput(f"HTML page too complex for one article ({elements:,} elements, "
                       f"limit {_MAX_ELEMENTS:,})")
    for node in root.xpath(_BOILERPLATE):
        node.drop_tree()
    return len(root.text_content().strip())


def parse_html(html: str, origin: str, name: str, url: str = "") -> Parsed:
    """One article from an HTML page: main text and metadata (title, date, author, site) by trafilatura."""
    import trafilatura

    visible = _visible_chars(html)
    if visible is not None and visible > 2 * MAX_BODY_CHARS:
        raise BadInput(f"HTML page has too much text for one article ({visible:,} characters, "
                       f"limit {2 * MAX_BODY_CHARS:,})")
    found = trafilatura.bare_extraction(html, url=url or None, with_metadata=True, include_comments=False,
                                        include_tables=True)
    doc = found.as_dict() if found is not None and not isinstance(found, dict) else found
    if not doc or not (doc.get("text") or "").strip() or visible == 0:
        raise BadInput("no article text found in the HTML page")
    title, body = doc.get("title") or "", doc["text"].strip()
    if title and body.startswith(title + "\n"):  # the page's <h1> repeats the title
        body = body[len(title) + 1:]
    page_url = doc.get("url") or url or ""
    categories = doc.get("categories") or []
    record = {
        "title": title, "body": body, "author": doc.get("author") or "",
        "source": doc.get("sitename") or doc.get("hostname") or "", "url": page_url,
        "published_at": doc.get("date") or "",
        "category": categories[0] if isinstance(categories, list) and categories else "",
    }
    if not page_url:
        record["id"] = f"file:{name}"
    return _collect([(origin, record)], name)


def _html_to_text(fragment: str) -> str:
    """Plain text of a feed entry's HTML: blocks become paragraphs, scripts and styles are dropped."""
    if "<" not in fragment:
        return htmllib.unescape(fragment)
    import lxml.html

    try:
        root = lxml.html.fromstring(fragment)
    except (ValueError, lxml.etree.ParserError):
        return fragment
    for bad in root.xpath("//script|//style|//iframe"):
        bad.drop_tree()
    for node in root.iter():  # HTML whitespace: any run is one space
        node.text = _SPACES.sub(" ", node.text) if node.text else node.text
        node.tail = _SPACES.sub(" ", node.tail) if node.tail else node.tail
    for br in root.xpath("//br"):
        br.tail = "\n" + (br.tail or "")
    for block in root.xpath("//p|//div|//li|//h1|//h2|//h3|//h4|//h5|//h6|//blockquote|//pre"):
        block.tail = "\n\n" + (block.tail or "")
    text = re.sub(r" *\n *", "\n", root.text_content())
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _entry_record(entry: Any, outlet: str) -> dict[str, str]:
    content = entry.get("content") or []
    html = content[0].get("value", "") if content else entry.get("summary", "")
    link = entry.get("link", "")
    author = entry.get("author", "")
    if len(author) < 500 and (match := _AUTHOR_EMAIL.match(author)):
        author = match.group("name")
    record = {
        "title": entry.get("title", ""), "body": _html_to_text(html), "author": author, "source": outlet,
        "url": link if link.startswith(("http://", "https://")) else "",
        "published_at": entry.get("published") or entry.get("updated") or "",
        "category": (entry.get("tags") or [{}])[0].get("term", "") or "",
    }
    if entry.get("id") and not record["url"]:
        record["id"] = entry["id"]
    return record


def _declares_entities(data: bytes) -> bool:
    """Whether the prolog (what precedes the first element, where a DOCTYPE lives) declares entities."""
    if b"\x00" in data[:1024]:  # UTF-16/32: compare the ASCII letters only
        data = data[: 1 << 22].replace(b"\x00", b"")
    first = _FIRST_ELEMENT.search(data)
    return b"<!ENTITY" in data[: first.start() if first else len(data)]


def parse_feed(data: bytes, origin: str, name: str) -> Parsed:
    """Articles from an RSS or Atom feed: one per entry, its HTML content or summary turned into text."""
    import feedparser

    if _declares_entities(data):
        raise BadInput("feed declares XML entities (<!ENTITY> in a DOCTYPE): refused, as entity expansion "
                       "(billion laughs) and external entities (file:// reads) are unsafe")
    feed = feedparser.parse(data, resolve_relative_uris=False, sanitize_html=True)
    if not feed.entries:
        reason = f": {feed.bozo_exception}" if feed.get("bozo") else ""
        raise BadInput(f"feed has no entries{reason}")
    outlet = feed.feed.get("title", "")
    return _collect([(f"{origin}#{i}", _entry_record(e, outlet)) for i, e in enumerate(feed.entries)], name)
