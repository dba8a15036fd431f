"""Answer: question → retrieval → the model's (or the extractive) answer → verified citations.

With a model configured, the numbered passages go to it through the jinja2 prompts; its [n] markers
become structured citations, each cited sentence checked against its passage (`assistant.cite`).
Without a model — or when the model fails, times out, or returns an answer citing nothing that
exists — the extractive answerer writes the answer, and `fallback` says why. Low retrieval coverage
refuses before any model is called. Follow-ups: earlier turns condense into the retrieval query.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from assistant.cite import REFUSAL, cite, is_refusal
from assistant.extractive import Extract, Extractive
from assistant.llm import LLM, LLMError
from assistant.prompts import Turn, answer_messages, condense_offline
from assistant.retrieve import Retrieval, Retriever
from assistant.schema import Answer, Filters


@dataclass
class Event:
    """One step of a streamed answer: `sources`, `token` (model text), then `answer` (the final Answer).

    When the model fails mid-stream, the final answer is the extractive one with `fallback` set: a
    client shows it in place of the tokens it received."""

    kind: str
    data: Any


class Answerer:
    def __init__(self, retriever: Retriever, extractive: Extractive, llm: LLM | None = None) -> None:
        self.retriever, self.extractive, self.llm = retriever, extractive, llm

    def ask(self, question: str, history: list[Turn] | None = None, filters: Filters | None = None,
            k: int = 10) -> Answer:
        final: Answer | None = None
        for event in self.stream(question, history, filters, k, stream_tokens=False):
            if event.kind == "answer":
                final = event.data
        assert final is not None
        return final

    def stream(self, question: str, history: list[Turn] | None = None, filters: Filters | None = None,
               k: int = 10, stream_tokens: bool = True) -> Iterator[Event]:
        """Sources first, then answer tokens (from the model), then the final verified Answer."""
        started = time.perf_counter()
        history = history or []
        query = condense_offline(question, history)
        retrieval = self.retriever.retrieve(question, k=k, filters=filters, query=query)
        timings = {f"retrieve_{key}": round(v, 1) for key, v in retrieval.timings_ms.items()}
        yield Event("sources", retrieval.passages)
        context = " ".join(t.content for t in history if t.role == "user")
        extract = self.extractive.answer(question, retrieval, context)
        model_text, fallback = None, None
        if self.llm is not None and not extract.refused:
            t0 = time.perf_counter()
            messages = answer_messages(question, retrieval.passages, history)
            try:
                parts: list[str] = []
                if stream_tokens:
                    for delta in self.llm.stream(messages):
                        parts.append(delta)
                        yield Event("token", delta)
                else:
                    parts.append(self.llm.complete(messages))
                model_text = "".join(parts)
            except LLMError as err:
                fallback = f"model failed: {err}"
            timings["model"] = round((time.perf_counter() - t0) * 1e3, 1)
        answer = self._finish(model_text, fallback, extract, retrieval)
        answer.timings_ms = {**timings, "total": round((time.perf_counter() - started) * 1e3, 1)}
        yield Event("answer", answer)

    def _finish(self, model_text: str | None, fallback: str | None, extract: Extract,
                retrieval: Retrieval) -> Answer:
        filters = {**retrieval.filters_report(), "coverage": round(extract.coverage, 3)}
        if model_text is not None:
            if is_refusal(model_text):
                return Answer(answer=REFUSAL, refused=True, filters=filters, model=self._model_name())
            cited = cite(model_text, retrieval.passages)
            if cited.citations:
                return Answer(answer=cited.text, citations=cited.citations, unsupported=cited.unsupported,
                              filters=filters, model=self._model_name())
            fallback = "model answer cited no retrieved passage"
        if extract.refused:
            return Answer(answer=extract.text, refused=True, filters={**filters, "refusal": extract.reason},
                          model="extractive", fallback=fallback)
        cited = cite(extract.text, retrieval.passages)
        return Answer(answer=cited.text, citations=cited.citations, unsupported=cited.unsupported,
                      filters=filters, model="extractive", fallback=fallback)

    def _model_name(self) -> str:
        return getattr(self.llm, "name", "model")
