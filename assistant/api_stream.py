"""API stream: an answer as Server-Sent Events — sources, tokens, the final answer, then done.

Any failure once the stream has started becomes an `error` event followed by `done`, so a client
never sees a dropped connection or a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from assistant.answer import Answerer
from assistant.prompts import Turn
from assistant.schema import Answer, Filters, Passage

log = logging.getLogger("newsqa.api")


def sse(event: str, data: Any) -> str:
    """One SSE message; `data` is JSON text (a str is sent as is) on a single line."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"event: {event}\ndata: {text}\n\n"


def answer_events(answerer: Answerer, question: str, history: list[Turn], filters: Filters | None,
                  k: int) -> Iterator[str]:
    """The SSE messages of one streamed answer (a sync generator: run in a worker thread)."""
    try:
        for event in answerer.stream(question, history, filters, k):
            if event.kind == "sources":
                passages: list[Passage] = event.data
                yield sse("sources", {"passages": [p.model_dump() for p in passages]})
            elif event.kind == "token":
                yield sse("token", {"text": event.data})
            elif event.kind == "answer":
                answer: Answer = event.data
                yield sse("answer", answer.model_dump_json())
    except Exception:  # the response has started: report the failure in the stream, log the details
        log.exception("streamed answer failed")
        yield sse("error", {"message": "the answer failed (internal error); please try again"})
    yield sse("done", {})
