"""Answer: question → retrieval → the model's (or the extractive) answer → verified citations.

With a model configured, the numbered passages go to it through the jinja2 prompts; its [n] markers
become structured citations, each cited sentence checked against its passage (`assistant.cite`).
The model's part is bounded by `budget_s` (settings.answer_timeout_s) however it stalls. Without a
model — or when the model fails, runs out of time, or returns an answer that is not a verified answer
to the question (citing nothing that exists, no claim its citations support, or supported claims
that share nothing with the question: an obedient "PWNED [1]") — the extractive answerer writes the
answer, and `fallback` says why. Low retrieval coverage refuses before any model is called.
Follow-ups: earlier turns condense into the retrieval query.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from assistant.cite import REFUSAL, Cited, cite, is_refusal, overlaps, split_sentences
from assistant.extractive import Extract, Extractive
from assistant.llm import LLM, LLMError, within_budget
from assistant.prompts import Turn, answer_messages, condense_offline
from assistant.retrieve import Retrieval, Retriever
from assistant.schema import Answer, Filters, Passage

log = logging.getLogger("newsqa.answer")


@dataclass
class Event:
    """One step of a streamed answer: `sources`, `token` (model text), then `answer` (the final Answer).

    When the model fails mid-stream, the final answer is the extractive one with `fallback` set: a
    client shows it in place of the tokens it received."""

    kind: str
    data: Any


class Answerer:
    """Answers questions; `budget_s` bounds the model's part of one answer (None: unbounded)."""

    def __init__(self, retriever: Retriever, extractive: Extractive, llm: LLM | None = None,
                 budget_s: float | None = None) -> None:
        self.retriever, self.extractive, self.llm, self.budget_s = retriever, extractive, llm, budget_s

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
        llm = self.llm
        extract = self.extractive.answer(question, retrieval, context, compose=llm is None)
        model_text, fallback = None, None
        if llm is not None and not extract.refused:
            t0 = time.perf_counter()
            messages = answer_messages(question, retrieval.passages, history)
            try:
                parts: list[str] = []
                if stream_tokens:
                    for delta in within_budget(lambda: llm.stream(messages), self.budget_s):
                        parts.append(delta)
                        yield Event("token", delta)
                else:
                    parts.extend(within_budget(lambda: [llm.complete(messages)], self.budget_s))
                model_text = "".join(parts)
            except LLMError as err:
                log.warning("model failed, answering extractively: %s", err)
                fallback = f"model failed: {err.public}"
            timings["model"] = round((time.perf_counter() - t0) * 1e3, 1)
        answer = self._finish(model_text, fallback, extract, retrieval, query,
                              lambda: self.extractive.answer(question, retrieval, context))
        answer.timings_ms = {**timings, "total": round((time.perf_counter() - started) * 1e3, 1)}
        yield Event("answer", answer)

    def _finish(self, model_text: str | None, fallback: str | None, extract: Extract,
                retrieval: Retrieval, query: str, composed: Callable[[], Extract]) -> Answer:
        """The model's verified answer, else the extractive one (`composed` picks its sentences: only
        done here, when the model's answer is not shown)."""
        filters = {**retrieval.filters_report(), "coverage": round(extract.coverage, 3)}
        if model_text is not None:
            if is_refusal(model_text):
                return Answer(answer=REFUSAL, refused=True, filters=filters, model=self._model_name())
            cited = cite(model_text, retrieval.passages, drop_uncited=True)
            fallback = _rejection(cited, query)
            if fallback is None:
                return Answer(answer=cited.text, citations=cited.citations, unsupported=cited.unsupported,
                              filters=filters, model=self._model_name())
        if not extract.refused and not extract.text:
            extract = composed()
        if extract.refused:
            return Answer(answer=extract.text, refused=True, filters={**filters, "refusal": extract.reason},
                          model="extractive", fallback=fallback)
        cited = _verified_extract(extract.text, retrieval.passages)
        if not cited.citations:  # every quoted sentence was an article's orders to a model
            return Answer(answer=REFUSAL, refused=True, model="extractive", fallback=fallback,
                          filters={**filters, "refusal": "the passages hold only instructions, no answer"})
        return Answer(answer=cited.text, citations=cited.citations, unsupported=cited.unsupported,
                      filters=filters, model="extractive", fallback=fallback)

    def _model_name(self) -> str:
        return getattr(self.llm, "name", "model")


def _verified_extract(text: str, passages: list[Passage]) -> Cited:
    """The extractive answer, cited, without the quoted sentences its passages don't verify: a quote
    verifies against its own passage unless the article addressed it to a model ("Ignore all previous
    instructions and ..."), which must never be quoted as an answer."""
    cited = cite(text, passages)
    if not cited.unsupported:
        return cited
    kept = [sentence for sentence in split_sentences(text) if not cite(sentence, passages).unsupported]
    return cite(" ".join(kept), passages)


def _rejection(cited: Cited, query: str) -> str | None:
    """Why a model's cited answer is not shown (None: it is): it must cite a retrieved passage, have a
    claim its citations support, and one supported claim (with its passage spans) must share a term
    with the question — unless the question has none ("why was that?")."""
    if not cited.citations:
        return "model answer cited no retrieved passage"
    if not cited.evidence:
        return "model answer cited no retrieved passage that supports it"
    if overlaps(query, query) and not any(overlaps(query, evidence) for evidence in cited.evidence):
        return "model answer cited no retrieved passage that supports an answer to the question"
    return None
