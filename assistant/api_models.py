"""API models: the pydantic bodies the HTTP API (`assistant.api`) accepts and returns.

`Answer` (what /ask returns) and `Passage` (the stream's sources) live in `assistant.schema`, shared with
the command line; `IngestReport` in `ingest.models`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.prompts import Turn
from assistant.schema import Filters

# Exactly the characters `str.isspace()` knows, spelled so JSON Schema (ECMA 262) regexes read them alike.
BLANK = "\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK = f"[^{BLANK}]"


class AskRequest(BaseModel):
    """A question, the earlier turns of the conversation, optional filters and how many passages to use."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "What did Qureshi say about Russia?"},
        {"question": "What did Lavrov discuss?", "filters": {"since": "2021-04-01", "sources": ["IANS"]},
         "k": 5}]})

    question: str = Field(description="The question (its length is limited by NEWSQA_MAX_QUESTION_CHARS).",
                          json_schema_extra={"minLength": 1, "pattern": NOT_BLANK})
    history: list[Turn] = Field(default_factory=list, max_length=50, description="Earlier turns, oldest 1st.")
    filters: Filters | None = Field(default=None, description="Restrict retrieval to these articles.")
    k: int | None = Field(default=None, ge=1, le=50, description="Passages to use (default: NEWSQA_TOP_K)")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be empty")
        return value.strip()


# What a URL to ingest starts with (the full rule, Python's `urlsplit`, is not expressible in JSON Schema).
URL_PATTERN = "^\\s*[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s]"


class UrlIngest(BaseModel):
    """Web pages or feeds to fetch and ingest: http(s) URLs only, never server-side paths."""

    model_config = ConfigDict(extra="forbid")

    urls: list[str] = Field(min_length=1, max_length=100, description="http:// or https:// URLs.",
                            json_schema_extra={"items": {"type": "string", "pattern": URL_PATTERN}})

    @field_validator("urls")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        """Each URL stripped, its scheme lower-cased (`HTTP://x` is a URL, never a server path); no spaces or
        control characters inside, a numeric port if any."""
        out = []
        for url in urls:
            parts = urlsplit(url.strip())
            if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
                raise ValueError(f"only http:// and https:// URLs can be ingested, not {url[:200]!r}")
            if re.search(r"[\x00-\x20\x7f]", url.strip()):  # http.client refuses them in a request line
                raise ValueError(f"a URL may not contain spaces or control characters (percent-encode them): "
                                 f"{url[:200]!r}")
            try:
                parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
            except ValueError:
                raise ValueError(f"the port of {url[:200]!r} is not a number from 0 to 65535") from None
            out.append(parts._replace(scheme=parts.scheme.lower()).geturl())
        return out


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


class ErrorDetail(BaseModel):
    """An error response: what was wrong, in words (never a stack trace)."""

    detail: str


class FieldError(BaseModel):
    """One invalid field: where (`["body", "question"]`), what is wrong, and the kind of error."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """A 422: every invalid field, and one `message` naming them all."""

    detail: list[FieldError]
    message: str


ERRORS = {400: "The body cannot be parsed (not UTF-8, malformed multipart), or too many files.",
          401: "Missing or wrong bearer token.",
          403: "Ingest over HTTP is disabled (no NEWSQA_API_TOKEN configured).",
          404: "No such article.",
          413: "Request body over NEWSQA_MAX_BODY_BYTES.",
          415: "Neither multipart/form-data nor application/json.",
          429: "Too many questions from this client; see the Retry-After header."}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for a route's error statuses, each a JSON `{"detail": "..."}`
    (a 422: `ValidationErrors`)."""
    return {code: {"model": ValidationErrors, "description": "Invalid fields, each named."} if code == 422
            else {"model": ErrorDetail, "description": ERRORS[code]} for code in codes}


STREAM_EVENTS = ("sources", "token", "answer", "error", "done")
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "Server-Sent Events, each `data` one line of JSON: `sources` {passages: [Passage]}, "
                   "`token`… {text}, `answer` (an Answer), `error` {message} on a failure after the start; "
                   "always `done` {} last.",
    "content": {"text/event-stream": {"schema": {  # before OpenAPI 3.2, `schema` describes one event
        "type": "object", "required": ["event", "data"],
        "properties": {"event": {"type": "string", "enum": list(STREAM_EVENTS)},
                       "data": {"type": "string", "contentMediaType": "application/json"}}}}}}}
