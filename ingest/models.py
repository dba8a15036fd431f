"""Models: the pydantic records that cross stage boundaries (Article, Chunk, ingest reports)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import UTC, datetime

from pydantic import BaseModel, Field, computed_field, field_validator

MAX_BODY_CHARS = 500_000  # ~7x the longest MultiHop-RAG article; a bigger body is not one news article
MAX_TITLE_CHARS = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # C0 controls and DEL, except whitespace
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Text safe to hash and store: lone surrogates (from JSON `\\ud800` escapes) become U+FFFD and
    control characters (NUL, escape sequences…) are dropped."""
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", value))


def printable_path(value: str) -> str:
    """A path for reports: undecodable file-name bytes (surrogate escapes) shown as `\\xNN`."""
    if not _SURROGATE.search(value):
        return value
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return _SURROGATE.sub("\ufffd", value)


def stable_id(*parts: str) -> str:
    """A short stable id from identifying strings (a url, or outlet + title + date, or a file name)."""
    key = "\x1f".join(unicodedata.normalize("NFC", p).strip().lower() for p in parts)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class Article(BaseModel):
    """One news article as read from any input format."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    title: str
    body: str
    published_at: datetime | None = None
    source: str = ""
    author: str = ""
    url: str = ""
    category: str = ""
    place: str = ""  # dateline place, e.g. "Islamabad"
    summary: str = ""
    origin: str = ""  # the file or URL it was read from (with #n for the n-th item of a collection)

    @field_validator("body")
    @classmethod
    def _has_text(cls, body: str) -> str:
        if len(body) > MAX_BODY_CHARS:
            raise ValueError(f"article body too large ({len(body):,} characters, limit {MAX_BODY_CHARS:,})")
        body = clean_text(body.replace("\r\n", "\n").replace("\r", "\n")).strip()
        if not body:
            raise ValueError("article has no text")
        if not any(ch.isalnum() for ch in body):
            raise ValueError("article has no text (no letters or digits, only spaces, marks or punctuation)")
        return body

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        title = re.sub(r"\s+", " ", clean_text(value)).strip()
        if len(title) > MAX_TITLE_CHARS:
            raise ValueError(f"title too long ({len(title):,} characters, limit {MAX_TITLE_CHARS:,})")
        return title

    @field_validator("source", "author", "url", "category", "place", "summary")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return re.sub(r"\s+", " ", clean_text(value[:4000] if value else "")).strip()[:1000]

    @field_validator("origin")
    @classmethod
    def _origin(cls, value: str) -> str:
        return printable_path(value)

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """Hash of everything that is indexed: a change in any of it makes the article 'updated'."""
        fields = [self.title, self.body, self.published_iso, self.source, self.author, self.url,
                  self.category, self.place, self.summary]
        return hashlib.sha256("\x1e".join(fields).encode()).hexdigest()

    @property
    def published_iso(self) -> str:
        return self.published_at.isoformat() if self.published_at else ""

    @property
    def published_ts(self) -> int | None:
        return int(self.published_at.timestamp()) if self.published_at else None

    def header(self) -> str:
        """The short line each chunk is embedded with, so retrieval sees what the article is."""
        date = self.published_at.date().isoformat() if self.published_at else ""
        return " | ".join(p for p in (self.title, self.source, date) if p)


class Chunk(BaseModel):
    """A passage of an article: its text, position and token count."""

    id: str
    article_id: str
    index: int = Field(ge=0)
    text: str
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)
    tokens: int = Field(ge=0)


class Failure(BaseModel):
    """An input (or one item of it) that could not be ingested, and why."""

    path: str
    error: str

    @field_validator("path", "error")
    @classmethod
    def _printable(cls, value: str) -> str:
        return clean_text(printable_path(value))


class IngestReport(BaseModel):
    """The summary `newsqa ingest --json` prints."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    failed: list[Failure] = Field(default_factory=list)
    articles: int = 0
    chunks: int = 0
