"""API models: the pydantic bodies the HTTP API (`assistant.api`) accepts and returns.

`Answer` (what /ask returns) and `Passage` (the stream's sources) live in `assistant.schema`, shared with
the command line; `IngestReport` in `ingest.models`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.prompts import Turn
from assistant.schema import Filters


class AskRequest(BaseModel):
    """A question, the earlier turns of the conversation, optional filters and how many passages to use."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question (its length is limited by NEWSQA_MAX_QUESTION_CHARS).")
    history: list[Turn] = Field(default_factory=list, max_length=50, description="Earlier turns, oldest 1st.")
    filters: Filters | None = Field(default=None, description="Restrict retrieval to these articles.")
    k: int | None = Field(default=None, ge=1, le=50, description="Passages to use (default: NEWSQA_TOP_K)")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be empty")
        return value.strip()


class UrlIngest(BaseModel):
    """Web pages or feeds to fetch and ingest: http(s) URLs only, never server-side paths."""

    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(min_length=1, max_length=100, description="http:// or https:// URLs.")

    @field_validator("urls")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        for url in urls:
            parts = urlsplit(url.strip())
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ValueError(f"only http:// and https:// URLs can be ingested, not {url[:200]!r}")
        return [url.strip() for url in urls]


class ArticleMeta(BaseModel):
    """The metadata every article view shows."""

    id: str
    title: str = ""
    source: str = ""
    published_at: str = ""
    url: str = ""
    category: str = ""


class ArticleItem(ArticleMeta):
    """One row of the article list."""

    status: str = ""

    @classmethod
    def from_record(cls, article_id: str, meta: dict[str, Any]) -> ArticleItem:
        """The row for an article record's metadata (as `assistant.store` writes it)."""
        return cls(id=article_id, **{k: str(meta.get(k) or "") for k in
                                     ("title", "source", "published_at", "url", "category", "status")})


class ArticleList(BaseModel):
    """A page of the article list: `total` matching articles, `items` of them from `offset`."""

    total: int
    items: list[ArticleItem]


class ChunkInfo(BaseModel):
    """Where one chunk sits in its article's body (`body[char_start:char_end]`)."""

    chunk_id: str
    index: int
    char_start: int
    char_end: int

    @classmethod
    def from_meta(cls, chunk_id: str, meta: dict[str, Any]) -> ChunkInfo:
        """The boundaries a chunk's metadata records."""
        return cls(chunk_id=chunk_id, index=int(meta["chunk_index"]), char_start=int(meta["char_start"]),
                   char_end=int(meta["char_end"]))


class ArticleDetail(ArticleMeta):
    """One article with its body and its chunk boundaries."""

    author: str = ""
    body: str
    chunks: list[ChunkInfo]


class Health(BaseModel):
    """Whether the store answers, how much it holds, and which models answer and embed."""

    status: str
    articles: int = 0
    chunks: int = 0
    model: str | None = None
    embedder: str = ""
    reason: str | None = None
