"""Structured formats: JSON / JSONL article records, HTML pages (trafilatura) and RSS/Atom feeds.

Each parser returns the articles it could read and, for collections, a failure per bad item,
so one bad record never costs the good ones beside it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from ingest.models import Article, Failure, stable_id
from ingest.textfmt import derive_title, parse_date

Parsed = tuple[list[Article], list[Failure]]
_BODY_KEYS = ("body", "text", "content")
_DATE_KEYS = ("published_at", "published", "date", "pubDate", "datePublished")


class BadInput(ValueError):
    """A whole input that cannot be read as articles; the message says why."""


def _validation_message(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def article_from_record(record: Any, origin: str, name: str = "") -> Article:
    """One article from a JSON object with the MultiHop-RAG fields (body/text/content aliases)."""
    if not isinstance(record, dict):
        raise BadInput(f"expected a JSON object for an article, got {type(record).__name__}")
    body = next((record[k] for k in _BODY_KEYS if record.get(k) is not None), None)
    if body is None or not isinstance(body, str):
        raise BadInput("article has no text (no 'body', 'text' or 'content' string)")
    fields = {k: record.get(k) for k in ("title", "source", "author", "url", "category")}
    text = {k: v.strip() if isinstance(v, str) else "" for k, v in fields.items()}
    date_value = next((record[k] for k in _DATE_KEYS if record.get(k)), None)
    published = parse_date(date_value)
    title = text["title"] or derive_title(body.strip().split("\n", 1)[0])
    explicit = record.get("id")
    if explicit is not None and str(explicit).strip():
        art_id = stable_id("id", str(explicit))
    elif text["url"]:
        art_id = stable_id(text["url"])
    elif text["title"]:
        art_id = stable_id(text["source"], text["title"], published.isoformat() if published else "")
    else:
        art_id = stable_id("file", name, origin.rsplit("#", 1)[-1])
    try:
        return Article(id=art_id, title=title, body=body, published_at=published, origin=origin,
                       **{k: v for k, v in text.items() if k != "title"})
    except ValidationError as err:
        raise BadInput(_validation_message(err)) from err


def _collect(records: list[tuple[str, Any]], name: str) -> Parsed:
    articles, failures = [], []
    for origin, record in records:
        try:
            articles.append(article_from_record(record, origin, name))
        except BadInput as err:
            failures.append(Failure(path=origin, error=str(err)))
    return articles, failures


def parse_json(text: str, origin: str, name: str) -> Parsed:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadInput(f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}") from err
    except RecursionError as err:
        raise BadInput("malformed JSON: nested too deeply") from err
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        data = data["articles"]
    if isinstance(data, list):
        if not data:
            raise BadInput("JSON list holds no articles")
        return _collect([(f"{origin}#{i}", r) for i, r in enumerate(data)], name)
    return _collect([(origin, data)], name)


def parse_jsonl(text: str, origin: str, name: str) -> Parsed:
    records: list[tuple[str, Any]] = []
    failures = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"{origin}:{lineno}", json.loads(line)))
        except (json.JSONDecodeError, RecursionError) as err:
            msg = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
            failures.append(Failure(path=f"{origin}:{lineno}", error=f"malformed JSON line: {msg}"))
    if not records and not failures:
        raise BadInput("JSONL file holds no articles")
    articles, bad = _collect(records, name)
    return articles, failures + bad


def parse_html(html: str, origin: str, name: str, url: str = "") -> Parsed:
    import trafilatura

    doc = trafilatura.bare_extraction(html, url=url or None, with_metadata=True, include_comments=False,
                                      include_tables=True, as_dict=True)
    if not isinstance(doc, dict) or not (doc.get("text") or "").strip():
        raise BadInput("no article text found in the HTML page")
    page_url = doc.get("url") or url or ""
    categories = doc.get("categories") or []
    record = {
        "title": doc.get("title") or "", "body": doc["text"], "author": doc.get("author") or "",
        "source": doc.get("sitename") or doc.get("hostname") or "", "url": page_url,
        "published_at": doc.get("date") or "",
        "category": categories[0] if isinstance(categories, list) and categories else "",
    }
    if not page_url:
        record["id"] = f"file:{name}"
    return _collect([(origin, record)], name)


def _html_to_text(fragment: str) -> str:
    if "<" not in fragment:
        return fragment
    import lxml.html

    try:
        root = lxml.html.fromstring(fragment)
    except (ValueError, lxml.etree.ParserError):
        return fragment
    for bad in root.xpath("//script|//style|//iframe"):
        bad.drop_tree()
    for block in root.xpath("//p|//br|//div|//li|//h1|//h2|//h3|//h4"):
        block.tail = "\n\n" + (block.tail or "")
    return root.text_content()


def parse_feed(data: bytes, origin: str, name: str) -> Parsed:
    import feedparser

    feed = feedparser.parse(data, resolve_relative_uris=False, sanitize_html=True)
    if not feed.entries:
        reason = f": {feed.bozo_exception}" if feed.get("bozo") else ""
        raise BadInput(f"feed has no entries{reason}")
    outlet = feed.feed.get("title", "")
    records = []
    for i, entry in enumerate(feed.entries):
        content = entry.get("content") or []
        html = content[0].get("value", "") if content else entry.get("summary", "")
        date = entry.get("published") or entry.get("updated") or ""
        record = {
            "title": entry.get("title", ""), "body": _html_to_text(html), "url": entry.get("link", ""),
            "author": entry.get("author", ""), "source": outlet, "published_at": date,
            "category": (entry.get("tags") or [{}])[0].get("term", "") or "",
        }
        if entry.get("id") and not record["url"]:
            record["id"] = entry["id"]
        records.append((f"{origin}#{i}", record))
    return _collect(records, name)
