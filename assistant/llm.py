"""LLM: the chat model that writes answers, behind one small interface.

An `LLM` has a `name`, `complete(messages) -> str` and `stream(messages) -> Iterator[str]` (text deltas).
Every failure it cannot recover from is an `LLMError` whose message says why, so callers can fall back.
- `OpenAILLM`: any OpenAI-compatible `/v1/chat/completions` server (OpenAI, llama.cpp, vLLM, Ollama...)
  through the `openai` package, which does the timeouts and the retries (429, 5xx, connection errors,
  with backoff; a server's Retry-After is honoured but each wait is capped so the total stays bounded).
- `ScriptedLLM`: an in-process fake that replies from a list, for tests of the layers above.
- `make_llm(settings)`: the configured model, or None when `NEWSQA_MODEL` is unset (offline answers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from assistant.settings import Settings

if TYPE_CHECKING:
    import openai

Messages = list[dict[str, str]]
NO_KEY = "not-needed"  # local OpenAI-compatible servers ignore the key, but the client insists on one


class LLMError(Exception):
    """The model could not give an answer; str(err) says why (timeout, HTTP 429 after retries,
    connection refused, malformed response)."""


class LLM(Protocol):
    name: str

    def complete(self, messages: Messages) -> str: ...

    def stream(self, messages: Messages) -> Iterator[str]: ...


@cache
def _client_class() -> type[openai.OpenAI]:
    """openai.OpenAI with each retry wait capped (it honours a server's Retry-After up to two minutes)."""
    import openai

    class BoundedOpenAI(openai.OpenAI):
        max_retry_wait_s = 8.0

        def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
            return min(super()._calculate_retry_timeout(*args, **kwargs), self.max_retry_wait_s)

    return BoundedOpenAI


class OpenAILLM:
    """A chat model at an OpenAI-compatible server. `base_url` defaults to OPENAI_BASE_URL (else OpenAI);
    `api_key` to OPENAI_API_KEY, else a placeholder when a base URL is set (local servers need none)."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 30, max_retries: int = 2, temperature: float = 0.0,
                 max_tokens: int = 800, max_retry_wait_s: float = 8.0) -> None:
        import openai

        self.name, self.timeout_s, self.max_retries = model, timeout_s, max_retries
        self._params: dict[str, Any] = {"model": model, "temperature": temperature, "max_tokens": max_tokens}
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or (NO_KEY if base_url else None)
        try:
            self._client = _client_class()(base_url=base_url, api_key=api_key, timeout=timeout_s,
                                           max_retries=max_retries)
        except openai.OpenAIError as err:
            raise LLMError(f"cannot set up the chat model client: {err}") from err
        self._client.max_retry_wait_s = max_retry_wait_s  # type: ignore[attr-defined]
        self.base_url = str(self._client.base_url)

    def complete(self, messages: Messages) -> str:
        import openai

        try:
            response = self._client.chat.completions.create(messages=_as_params(messages), **self._params)
        except (openai.OpenAIError, ValueError) as err:
            raise self._error(err) from err
        return self._content(response)

    def stream(self, messages: Messages) -> Iterator[str]:
        import openai

        answered = 0
        try:
            with self._client.chat.completions.create(messages=_as_params(messages), stream=True,
                                                      **self._params) as chunks:
                for chunk in chunks:
                    for choice in chunk.choices or ():
                        text = choice.delta.content if choice.delta else None
                        if text:
                            answered += 1
                            yield text
        except (openai.OpenAIError, ValueError) as err:
            if not answered:
                raise self._error(err) from err
            raise LLMError(f"the answer stream from {self.base_url} broke off after {answered} "
                           f"delta(s): {_cause(err)}") from err
        if not answered:
            raise LLMError(f"malformed response from {self.base_url}: the stream carried no text")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAILLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _content(self, response: Any) -> str:
        """The answer text of a chat completion, or an LLMError saying what is wrong with it."""
        if isinstance(response, str | bytes):  # a 200 that was not JSON at all (an HTML page, say)
            snippet = _short(str(response), 80)
            raise LLMError(f"malformed response from {self.base_url}: not JSON: {snippet!r}")
        try:
            choice = response.choices[0]
            content, finish = choice.message.content, choice.finish_reason
        except (AttributeError, IndexError, TypeError) as err:
            raise LLMError(f"malformed response from {self.base_url}: no choices") from err
        if not isinstance(content, str) or not content.strip():
            raise LLMError(f"malformed response from {self.base_url}: empty answer "
                           f"(finish_reason={finish!r})")
        return content

    def _error(self, err: Exception) -> LLMError:
        """An LLMError saying in plain words what went wrong with one call."""
        import openai

        tries = f"{1 + self.max_retries} attempt(s)"
        if isinstance(err, openai.APITimeoutError):
            return LLMError(f"timeout: {self.base_url} gave no answer within {self.timeout_s:g} s ({tries})")
        if isinstance(err, openai.APIConnectionError):
            return LLMError(f"connection to {self.base_url} failed: {_cause(err)} ({tries})")
        if isinstance(err, openai.APIStatusError):
            retryable = err.status_code in (408, 409, 429) or err.status_code >= 500
            retried = f" after {tries}" if retryable else ""
            body = err.body if isinstance(err.body, dict) else {}
            return LLMError(f"HTTP {err.status_code} from {self.base_url}{retried}: "
                            f"{_short(str(body.get('message') or err.message))}")
        if isinstance(err, openai.APIResponseValidationError | ValueError):
            return LLMError(f"malformed response from {self.base_url}: {_short(str(err))}")
        return LLMError(f"the chat model call failed: {_short(str(err))}")


def _as_params(messages: Messages) -> Any:
    return [dict(m) for m in messages]


def _cause(err: BaseException) -> str:
    """The innermost reason of a chained error (e.g. '[Errno 111] Connection refused')."""
    for _ in range(20):  # chains are short; the bound only guards against a cycle
        inner = err.__cause__ or err.__context__
        if inner is None:
            break
        err = inner
    return _short(str(err)) or type(err).__name__


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ScriptedLLM:
    """A fake LLM that gives the scripted replies in order; an exception in the script is raised
    (as an LLMError) at its turn. `calls` records the messages of every call. Running out of replies
    is a test bug and raises LookupError, never LLMError (which a caller might quietly handle)."""

    def __init__(self, replies: Iterable[str | Exception], name: str = "scripted") -> None:
        self.name = name
        self._replies = list(replies)
        self.calls: list[Messages] = []

    def complete(self, messages: Messages) -> str:
        self.calls.append([dict(m) for m in messages])
        if not self._replies:
            raise LookupError(f"ScriptedLLM ran out of replies after {len(self.calls) - 1} call(s)")
        reply = self._replies.pop(0)
        if isinstance(reply, LLMError):
            raise reply
        if isinstance(reply, Exception):
            raise LLMError(str(reply)) from reply
        return reply

    def stream(self, messages: Messages) -> Iterator[str]:
        """The next reply in word-sized deltas (whitespace kept, so they join back to the reply)."""
        yield from re.findall(r"\S+\s*|\s+", self.complete(messages))

    def close(self) -> None:
        pass


def make_llm(settings: Settings) -> LLM | None:
    """The chat model the settings name (at OPENAI_BASE_URL), or None to answer offline."""
    if not settings.model:
        return None
    return OpenAILLM(settings.model, timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
                     temperature=settings.llm_temperature)
