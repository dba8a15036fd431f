"""Schema: the pydantic records that cross the answer layer's boundaries (filters, passages, answers)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

ISO_DAY = r"\d{4}-\d{2}-\d{2}"


def _iso_date(value: object) -> object:
    """Only `YYYY-MM-DD` text is a date here (pydantic alone would also read `0` as 1970-01-01)."""
    if not isinstance(value, date) and not (isinstance(value, str) and re.fullmatch(ISO_DAY, value)):
        raise ValueError(f"expected a date as YYYY-MM-DD, not {str(value)[:40]!r}")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class Filters(BaseModel):
    """Restrictions on which articles may be retrieved. Empty lists and None mean 'any'."""

    model_config = ConfigDict(extra="forbid")

    since: IsoDate | None = Field(default=None, description="Earliest publication date (inclusive).")
    until: IsoDate | None = Field(default=None, description="Latest publication date (inclusive).")
    sources: list[str] = Field(default_factory=list, description="Outlets, as stored (e.g. 'TechCrunch').")
    categories: list[str] = Field(default_factory=list, description="Categories, as stored.")

    def is_empty(self) -> bool:
        return not (self.since or self.until or self.sources or self.categories)


class Passage(BaseModel):
    """A retrieved chunk with its article's metadata and its retrieval score."""

    chunk_id: str
    article_id: str
    title: str = ""
    source: str = ""
    published_at: str = ""  # ISO 8601, "" when unknown
    url: str = ""
    category: str = ""
    text: str
    score: float = 0.0
    char_start: int = 0
    char_end: int = 0


class Quote(BaseModel):
    """A direct quote found in an article body, with the speaker it is attributed to."""

    speaker: str  # the name as written in the article, e.g. "Shah Mahmood Qureshi" or "Qureshi"
    text: str  # the words inside the quotation marks
    start: int = Field(ge=0)  # char offsets of the quoted words in the body
    end: int = Field(ge=0)
    sentence: str = ""  # the whole sentence the quote is in (what an answer cites)
    kind: str = "direct"  # "direct" (words in quotation marks) or "reported" ("Qureshi reiterated that ...")


class Citation(BaseModel):
    """One numbered source of an answer: the passage it points to and the span that supports it."""

    n: int = Field(ge=1)
    article_id: str
    title: str = ""
    source: str = ""
    published_at: str = ""
    url: str = ""
    passage: str
    quote: str = ""  # the span of the passage that supports the cited sentence(s)
    supported: bool = True  # False when a sentence citing it is not supported by the passage


class Answer(BaseModel):
    """What `newsqa ask --json` prints and `/ask` returns."""

    answer: str
    refused: bool = False
    citations: list[Citation] = Field(default_factory=list)
    unsupported: list[str] = Field(default_factory=list, description="Sentences that failed verification.")
    filters: dict = Field(default_factory=dict, description="Filters applied and their origin.")
    model: str = "extractive"
    fallback: str | None = Field(default=None, description="Why the extractive answer replaced the model.s.")
    timings_ms: dict[str, float] = Field(default_factory=dict)
