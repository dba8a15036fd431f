"""Evaluate: score retrieval and answers over a fixed question set, by MultiHop-RAG's own rules.

`load_queries` reads MultiHop-RAG's JSON queries or our hand-written YAML/JSONL questions into `EvalQuery`
records; `run_eval` runs the caller's retrieve (and optionally answer) function over them and returns an
`EvalResult`: one `QueryRow` per query and a `summary()` of the metrics. `assistant.report` writes it out.

Retrieval (queries with gold facts; must-refuse queries are skipped): a retrieved passage is a hit when a
gold fact occurs in it after removing spaces and newlines (`assistant.metrics`). The summary keys are
literally "hits@4", "hits@10", ... but "@10" means the cut-off `k` given to `run_eval`.
Answers: correct when the answer shares a lowercase word (`\\w+`) with the gold answer; a must-refuse
query is correct iff refused, and a refusal of any other query is wrong.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from assistant import metrics
from assistant.schema import Answer, Passage

MULTIHOP = "multihop-rag"
NULL_TYPE = "null_query"
DEFAULT_TYPE = "question"
RETRIEVAL_KEYS = ("hits@4", "hits@10", "mrr@10", "map@10", "recall@10", "complete@10")
ANSWER_KEYS = ("accuracy", "refusal_rate_null", "false_refusal_rate", "citation_validity")
ANSWER_CHARS = 300
_WORD = re.compile(r"\w+")

Retrieve = Callable[[str, int], list[Passage]]
AnswerFn = Callable[[str], Answer]
Progress = Callable[[int], None]


class EvalQuery(BaseModel):
    """One question: its gold facts (for retrieval) and gold answer, or that it must be refused."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    answer: str | None = None  # gold answer; None: answers to it are not graded (unless must_refuse)
    type: str = DEFAULT_TYPE  # e.g. "comparison_query"; "null_query" for MultiHop-RAG's unanswerable ones
    facts: list[str] = Field(default_factory=list)  # gold evidence, each a substring of some article
    must_refuse: bool = False
    dataset: str = ""  # "multihop-rag" when taken from MultiHop-RAG (its licence asks for attribution)

    @field_validator("facts")
    @classmethod
    def _facts_not_blank(cls, facts: list[str]) -> list[str]:
        if any(not metrics.squash(f).strip() for f in facts):
            raise ValueError("a fact is blank (it would match every passage)")
        return facts

    @model_validator(mode="after")
    def _facts_or_refuse(self) -> EvalQuery:
        if self.must_refuse and self.facts:
            raise ValueError("a question that must be refused cannot have facts")
        if not self.must_refuse and not self.facts:
            raise ValueError("needs at least one fact (or refuse: true)")
        return self


class _Written(BaseModel):
    """A hand-written question as our YAML/JSONL files spell it."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    question: str
    facts: list[str] = Field(default_factory=list)
    answer: str | None = None
    type: str | None = None
    refuse: bool = False

    def to_query(self) -> EvalQuery:
        kind = self.type or (NULL_TYPE if self.refuse else DEFAULT_TYPE)
        return EvalQuery(question=self.question, answer=self.answer, type=kind, facts=self.facts,
                         must_refuse=self.refuse)


class _Evidence(BaseModel):
    fact: str


class _MultiHop(BaseModel):
    """A MultiHop-RAG query record (fields we do not use are ignored)."""

    query: str
    answer: str | None = None
    question_type: str
    evidence_list: list[_Evidence] = Field(default_factory=list)

    def to_query(self) -> EvalQuery:
        null = self.question_type == NULL_TYPE
        return EvalQuery(question=self.query, answer=self.answer, type=self.question_type,
                         facts=[] if null else [e.fact for e in self.evidence_list], must_refuse=null,
                         dataset=MULTIHOP)


# --- loading ---------------------------------------------------------------------------------------------


def _errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{'.'.join(map(str, e['loc']))}: {msg}" if e["loc"] else msg)
    return "; ".join(parts)


def _list_of_items(data: Any, path: Path) -> list[tuple[str, Any]]:
    if isinstance(data, dict) and "questions" in data:
        data = data["questions"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of questions (or a mapping with `questions:`), "
                         f"got {type(data).__name__}")
    return [(f"item {n}", item) for n, item in enumerate(data, start=1)]


def _jsonl_items(text: str, path: Path) -> list[tuple[str, Any]]:
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                items.append((f"line {n}", json.loads(line)))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {n}: not valid JSON: {e}") from e
    return items


def _read_items(path: Path) -> list[tuple[str, Any]]:
    """(where, raw item) pairs from a YAML, JSONL or JSON file, chosen by its suffix."""
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _jsonl_items(text, path)
    try:
        data = yaml.safe_load(text) if suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid {'YAML' if suffix in ('.yaml', '.yml') else 'JSON'}: {e}") from e
    return _list_of_items(data, path)


def _parse_item(item: Any) -> EvalQuery:
    if not isinstance(item, dict):
        raise ValueError(f"expected a mapping, got {type(item).__name__}")
    model = _MultiHop if "query" in item or "evidence_list" in item else _Written
    try:
        return model.model_validate(item).to_query()
    except ValidationError as e:
        raise ValueError(_errors(e)) from None


def load_queries(path: str | Path) -> list[EvalQuery]:
    """Queries from MultiHop-RAG's JSON list, or our hand-written YAML (`.yaml`/`.yml`) or JSONL (`.jsonl`).

    Raises ValueError naming the file and the item (or line) for anything malformed.
    """
    path = Path(path)
    queries = []
    for where, item in _read_items(path):
        try:
            queries.append(_parse_item(item))
        except ValueError as e:
            raise ValueError(f"{path}: {where}: {e}") from None
    if not queries:
        raise ValueError(f"{path}: no questions found")
    return queries


# --- scoring ---------------------------------------------------------------------------------------------


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def answer_matches(text: str, gold: str) -> bool:
    """MultiHop-RAG's answer rule: the answer shares at least one lowercase word with the gold answer."""
    return bool(words(text) & words(gold))


def grade(query: EvalQuery, answer: Answer) -> bool | None:
    """Whether `answer` is correct for `query`; None when there is no gold answer to grade it by."""
    if query.must_refuse:
        return answer.refused
    if answer.refused:
        return False
    return None if query.answer is None else answer_matches(answer.answer, query.answer)


class QueryRow(BaseModel):
    """What happened to one query. Retrieval fields are None when it was not scored (must refuse)."""

    question: str
    type: str
    must_refuse: bool
    n_facts: int
    hits: list[bool] | None = None  # hit flag of each retrieved passage (top k), in rank order
    first_hit: int | None = None  # 1-based rank of the first hit; None when nothing in the top k hit
    recall: float | None = None  # share of the gold facts found in the top k
    refused: bool | None = None  # None when answers were not evaluated
    correct: bool | None = None
    n_citations: int = 0
    n_supported: int = 0
    answer: str = ""  # the first ANSWER_CHARS characters
    retrieve_ms: float = 0.0
    answer_ms: float = 0.0


def _row_scores(row: QueryRow, k: int) -> dict[str, float]:
    flags = row.hits or []
    return {"hits@4": metrics.hits_at(flags, 4), "hits@10": metrics.hits_at(flags, k),
            "mrr@10": metrics.mrr_at(flags, k), "map@10": metrics.map_at(flags, row.n_facts, k),
            "recall@10": row.recall or 0.0, "complete@10": float(row.recall == 1.0)}


def _mean(values: Sequence[float | bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def retrieval_scores(rows: Sequence[QueryRow], k: int) -> dict[str, Any]:
    """The six retrieval means over the scored rows (None when there are none), plus their count "n"."""
    scores = [_row_scores(r, k) for r in rows if r.hits is not None]
    return {**{key: _mean([s[key] for s in scores]) for key in RETRIEVAL_KEYS}, "n": len(scores)}


def answer_scores(rows: Sequence[QueryRow]) -> dict[str, float | None]:
    answered = [r for r in rows if r.refused is not None]
    cited = sum(r.n_citations for r in answered)
    return {
        "accuracy": _mean([r.correct for r in answered if r.correct is not None]),
        "refusal_rate_null": _mean([bool(r.refused) for r in answered if r.must_refuse]),
        "false_refusal_rate": _mean([bool(r.refused) for r in answered if not r.must_refuse]),
        "citation_validity": round(sum(r.n_supported for r in answered) / cited, 4) if cited else None,
    }


class EvalResult(BaseModel):
    """Every query's row, the cut-off k and the datasets the queries came from."""

    rows: list[QueryRow]
    k: int = 10
    datasets: list[str] = Field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        overall = retrieval_scores(self.rows, self.k)
        del overall["n"]
        by_type: dict[str, list[QueryRow]] = defaultdict(list)
        for row in self.rows:
            if row.hits is not None:
                by_type[row.type].append(row)
        overall["by_type"] = {t: retrieval_scores(by_type[t], self.k) for t in sorted(by_type)}
        return {"n": len(self.rows), "retrieval": overall, "answers": answer_scores(self.rows)}


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


def evaluate_query(query: EvalQuery, retrieve: Retrieve, answer: AnswerFn | None, k: int) -> QueryRow:
    row = QueryRow(question=query.question, type=query.type, must_refuse=query.must_refuse,
                   n_facts=len(query.facts))
    if not query.must_refuse:
        start = time.perf_counter()
        texts = [p.text for p in retrieve(query.question, k)[:k]]
        row.retrieve_ms = _ms_since(start)
        row.hits = metrics.hit_flags(query.facts, texts)
        row.first_hit = next((rank for rank, hit in enumerate(row.hits, start=1) if hit), None)
        row.recall = metrics.fact_recall(query.facts, texts)
    if answer is not None:
        start = time.perf_counter()
        got = answer(query.question)
        row.answer_ms = _ms_since(start)
        row.refused, row.correct, row.answer = got.refused, grade(query, got), got.answer[:ANSWER_CHARS]
        row.n_citations = len(got.citations)
        row.n_supported = sum(c.supported for c in got.citations)
    return row


def run_eval(queries: Sequence[EvalQuery], retrieve: Retrieve, answer: AnswerFn | None = None, k: int = 10,
             progress: Progress | None = None) -> EvalResult:
    """Run every query through `retrieve(question, k)` (unless it must be refused) and, when given,
    `answer(question)`; `progress(1)` is called after each query."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rows = []
    for query in queries:
        rows.append(evaluate_query(query, retrieve, answer, k))
        if progress is not None:
            progress(1)
    datasets = sorted({q.dataset for q in queries if q.dataset})
    return EvalResult(rows=rows, k=k, datasets=datasets)
