"""LLM: the chat model that writes answers, behind one small interface.

An `LLM` has a `name`, `complete(messages) -> str` and `stream(messages) -> Iterator[str]` (text deltas).
Every failure it cannot recover from is an `LLMError` whose message says why, so callers can fall back.
- `OpenAILLM`: any OpenAI-compatible `/v1/chat/completions` server (OpenAI, llama.cpp, vLLM, Ollama...)
  through the `openai` package. Retries (429, 5xx, timeouts, connection errors; a server's Retry-After
  honoured, each wait capped) are done here, under one deadline per call: with `budget_s`, each attempt's
  timeout is min(timeout_s, what is left), no retry starts once the budget is spent, and a stream
  that runs past it ends with an LLMError.
- `within_budget(make, budget_s)`: a hard bound for any LLM — the call runs in a worker thread and the
  caller gets an LLMError("timeout: ...") when the budget ends first (a stalled stream included).
- `ScriptedLLM`: an in-process fake that replies from a list, for tests of the layers above.
- `make_llm(settings)`: the configured model, or None when `NEWSQA_MODEL` is unset (offline answers).
"""

from __future__ import annotations

import email.utils
import math
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from assistant.settings import Settings

Messages = list[dict[str, str]]
NO_KEY = "not-needed"  # local OpenAI-compatible servers ignore the key, but the client insists on one
MIN_ATTEMPT_S = 0.1  # no retry is started with less of the budget left than this


class LLMError(Exception):
    """The model could not give an answer; str(err) says why (timeout, HTTP 429 after retries,
    connection refused, malformed response), with the server's url and words in brackets; `public`
    says it without them (what an API client may be shown: no internal host, no echo of a key)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(f"{message} [{detail}]" if detail else message)
        self.public = message


class LLM(Protocol):
    name: str

    def complete(self, messages: Messages) -> str: ...

    def stream(self, messages: Messages) -> Iterator[str]: ...


class OpenAILLM:
    """A chat model at an OpenAI-compatible server. `base_url` defaults to OPENAI_BASE_URL (else OpenAI);
    `api_key` to OPENAI_API_KEY, else a placeholder when a base URL is set (local servers need none).
    `budget_s` bounds one call (all its attempts and waits); None leaves only the per-attempt timeout."""

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 30, max_retries: int = 2, temperature: float = 0.0,
                 max_tokens: int = 800, max_retry_wait_s: float = 8.0, budget_s: float | None = None) -> None:
        import openai

        self.name, self.timeout_s, self.max_retries = model, timeout_s, max_retries
        self.max_retry_wait_s, self.budget_s = max_retry_wait_s, budget_s
        self._params: dict[str, Any] = {"model": model, "temperature": temperature, "max_tokens": max_tokens}
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or (NO_KEY if base_url else None)
        try:  # the retries are ours (under the deadline), not the client's
            self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)
        except openai.OpenAIError as err:
            raise LLMError(f"cannot set up the chat model client: {err}") from err
        self.base_url = str(self._client.base_url)

    def complete(self, messages: Messages) -> str:
        return self._content(self._request(messages, self._deadline(), stream=False))

    def stream(self, messages: Messages) -> Iterator[str]:
        import httpx
        import openai

        deadline = self._deadline()
        chunks = self._request(messages, deadline, stream=True)
        answered = 0
        try:
            with chunks:
                for chunk in chunks:
                    for choice in chunk.choices or ():
                        text = choice.delta.content if choice.delta else None
                        if text:
                            answered += 1
                            yield text
                    if time.monotonic() > deadline:
                        raise LLMError(f"timeout: the answer stream ran past the {self.budget_s:g} s "
                                       f"answer budget after {answered} delta(s)", self.base_url)
        except (openai.OpenAIError, httpx.HTTPError, ValueError) as err:
            if not answered:
                raise self._error(err, 1, self.timeout_s) from err
            stalled = isinstance(err, httpx.TimeoutException | openai.APITimeoutError)
            raise LLMError(f"{'timeout: ' if stalled else ''}the answer stream broke off after {answered} "
                           f"delta(s)", f"{self.base_url}: {_cause(err)}") from err
        if not answered:
            raise LLMError("malformed response: the stream carried no text", self.base_url)

    def _deadline(self) -> float:
        return time.monotonic() + self.budget_s if self.budget_s else math.inf

    def _request(self, messages: Messages, deadline: float, stream: bool) -> Any:
        """The response of the first attempt that succeeds, retrying what can be retried while the
        deadline allows; else the LLMError of the last attempt."""
        import openai

        attempt = 0
        while True:
            attempt += 1
            timeout = min(self.timeout_s, deadline - time.monotonic())
            params: dict[str, Any] = {**self._params, "timeout": timeout}
            if stream:
                params["stream"] = True
            try:
                return self._client.chat.completions.create(messages=_as_params(messages), **params)
            except (openai.OpenAIError, ValueError) as err:
                wait = _retry_wait(err, attempt, self.max_retry_wait_s)
                if wait is None or attempt > self.max_retries:
                    raise self._error(err, attempt, timeout) from err
                if time.monotonic() + wait + MIN_ATTEMPT_S > deadline:
                    raise self._error(err, attempt, timeout, spent=True) from err
                time.sleep(wait)

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
            raise LLMError("malformed response: not JSON", f"{self.base_url}: {snippet!r}")
        try:
            choice = response.choices[0]
            content, finish = choice.message.content, choice.finish_reason
        except (AttributeError, IndexError, TypeError) as err:
            raise LLMError("malformed response: no choices", self.base_url) from err
        if not isinstance(content, str) or not content.strip():
            raise LLMError(f"malformed response: empty answer (finish_reason={_short(str(finish), 40)!r})",
                           self.base_url)
        return content

    def _error(self, err: Exception, attempts: int, timeout: float, spent: bool = False) -> LLMError:
        """An LLMError saying in plain words what went wrong with a call (after `attempts` attempts)."""
        import openai

        tries = f"{attempts} attempt(s)" + (f"; the {self.budget_s:g} s budget is spent" if spent else "")
        if isinstance(err, openai.APITimeoutError):
            return LLMError(f"timeout: the model server gave no answer within {timeout:.3g} s ({tries})",
                            self.base_url)
        if isinstance(err, openai.APIConnectionError):
            return LLMError(f"connection to the model server failed ({tries})",
                            f"{self.base_url}: {_cause(err)}")
        if isinstance(err, openai.APIStatusError):
            retried = f" after {tries}" if _retryable(err) else ""
            body = err.body if isinstance(err.body, dict) else {}
            return LLMError(f"HTTP {err.status_code} from the model server{retried}",
                            f"{self.base_url}: {_short(str(body.get('message') or err.message))}")
        if isinstance(err, openai.APIResponseValidationError | ValueError):
            return LLMError("malformed response", f"{self.base_url}: {_short(str(err))}")
        return LLMError("the chat model call failed", _short(str(err)))


def _retryable(err: Exception) -> bool:
    """Whether a failed attempt may be retried: timeouts, connection errors, 408, 409, 429 and 5xx."""
    import openai

    if isinstance(err, openai.APIStatusError):
        return err.status_code in (408, 409, 429) or err.status_code >= 500
    return isinstance(err, openai.APIConnectionError)  # APITimeoutError is one


def _retry_wait(err: Exception, attempt: int, cap: float) -> float | None:
    """How long to wait before the next attempt (None: don't retry): the server's Retry-After, else
    exponential backoff from 0.5 s with jitter; either capped at `cap`."""
    import openai

    if not _retryable(err):
        return None
    wait = None
    if isinstance(err, openai.APIStatusError):
        wait = _retry_after(err.response.headers)
    if wait is None or wait < 0:
        wait = min(0.5 * 2 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())
    return min(wait, cap)


def _retry_after(headers: Any) -> float | None:
    """Seconds a response asks to wait: retry-after-ms, else Retry-After (seconds or an HTTP date)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name) or "nan") / scale
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    when = email.utils.parsedate_tz(headers.get("retry-after") or "")
    return float(email.utils.mktime_tz(when) - time.time()) if when else None


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


def within_budget(make: Callable[[], Iterable[str]], budget_s: float | None) -> Iterator[str]:
    """The items of `make()` (a model call), produced in a worker thread, until `budget_s` seconds have
    passed: then LLMError("timeout: ..."), even if the call is stuck. The worker is told to stop and is
    left to end on its own (its requests have their own timeouts). None: no bound, no thread."""
    if budget_s is None:
        yield from make()
        return
    deadline = time.monotonic() + budget_s
    items: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            produced = iter(make())
            try:
                for item in produced:
                    items.put(("item", item))
                    if stop.is_set():
                        break
            finally:
                getattr(produced, "close", lambda: None)()
            items.put(("end", None))
        except BaseException as err:  # handed to the caller, never lost in the thread
            items.put(("error", err))

    threading.Thread(target=work, name="llm-call", daemon=True).start()
    try:
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                kind, value = items.get(timeout=remaining)
            except queue.Empty:
                raise LLMError(f"timeout: no complete answer within the {budget_s:g} s budget") from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def make_llm(settings: Settings) -> LLM | None:
    """The chat model the settings name (at OPENAI_BASE_URL), or None to answer offline."""
    if not settings.model:
        return None
    return OpenAILLM(settings.model, timeout_s=settings.llm_timeout_s, max_retries=settings.llm_max_retries,
                     temperature=settings.llm_temperature, budget_s=settings.answer_timeout_s)
