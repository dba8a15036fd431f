"""Settings: the one typed configuration, read from `NEWSQA_*` environment variables and `.env`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EmbedderName = Literal["minilm-l6-int8", "minilm-l3", "openai", "hash"]


class Settings(BaseSettings):
    """Everything newsqa can be configured with. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSQA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("./data"), description="Where the local Chroma store and indexes live.")
    chroma_host: str | None = Field(None, description="Chroma server host; unset means a local store.")
    chroma_port: int = Field(8000, ge=1, le=65535, description="Chroma server port.")
    chroma_ssl: bool = Field(False, description="Use HTTPS to reach the Chroma server.")
    collection_prefix: str = Field(
        "newsqa", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,40}$", description="Chroma collection name prefix."
    )
    embedder: EmbedderName = Field("minilm-l6-int8", description="Embedding model.")
    embed_batch_size: int = Field(8, ge=1, le=1024, description="Chunks per embedding batch.")
    ingest_window: int = Field(128, ge=1, le=100_000, description="Chunks embedded and committed together.")
    embed_threads: int = Field(0, ge=0, le=64, description="onnxruntime threads (0 = all cores).")
    openai_embedding_model: str = Field("text-embedding-3-small", description="Model for embedder=openai.")
    chunk_tokens: int = Field(256, ge=32, le=4096, description="Chunk size in tiktoken cl100k tokens.")
    chunk_overlap: int = Field(32, ge=0, le=1024, description="Overlap between chunks, in tokens.")
    duplicate_threshold: float = Field(
        0.8, gt=0, le=1, description="Word 5-gram Jaccard similarity at which an article is a duplicate."
    )
    fetch_timeout_s: float = Field(20.0, gt=0, description="Timeout for fetching a URL to ingest.")
    max_input_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest single input read.")
    model: str | None = Field(None, description="Chat model (OPENAI_BASE_URL); unset = offline.")
    llm_timeout_s: float = Field(30.0, gt=0, description="Timeout of one request to the chat model.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries of a failed request to the chat model.")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature of the chat model.")
    top_k: int = Field(10, ge=1, le=100, description="Passages retrieved for a question.")
    api_token: str | None = Field(None, description="Bearer token for POST /ingest; unset = ingest disabled.")
    max_question_chars: int = Field(2000, ge=1, le=100_000, description="Longest question the API accepts.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest HTTP request body accepted.")
    answer_timeout_s: float = Field(
        45.0, gt=0, description="Whole budget of one model answer (all retries), then extractive."
    )
    ask_rate_per_minute: float = Field(
        60.0, ge=0, description="Questions per minute one client may ask (/ask, /ask/stream); 0 = no limit."
    )
    ask_rate_burst: int = Field(20, ge=1, le=100_000, description="Questions a client may ask at once.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser; empty = none."
    )
    allow_private_urls: bool = Field(
        False, description="Let POST /ingest fetch URLs on loopback/private/link-local addresses."
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                             f"chunk_tokens ({self.chunk_tokens})")
        return self
