"""Fuzz: schemathesis drives every operation of the API's own OpenAPI spec against a real uvicorn server.

The store is real (the seed article and a few MultiHop-RAG articles, real minilm-l3); the answers come from
the offline extractive answerer, then from the scripted model server (tests/fake_openai.py). Every phase
runs (coverage, fuzzing, stateful via inferred links, unsupported methods) with every built-in check —
no 5xx, responses and status codes and content types as documented — plus our own: a stream ends with
exactly one `done` and every event's data is the documented JSON, no response shows a traceback, and an
ingest failure names its reason. /ingest is fuzzed with the token, without it (401 only) and on a server
without a configured token (403 only). The rate limit is off (NEWSQA_ASK_RATE_PER_MINUTE=0) so answers are
fuzzed rather than 429s; URL ingests fail fast (fetch timeout 1 s; fuzzed host names do not resolve).
`stress/fuzz.py` runs the same harness with many more examples; this file keeps the budget small.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import SEED, shortest_records, write_articles
from fake_openai import FakeOpenAIServer
from schemathesis.engine import events, from_schema
from test_api import make_settings, served

from assistant.answer import Answerer
from assistant.api_models import STREAM_EVENTS, ArticleDetail
from assistant.llm import OpenAILLM
from assistant.schema import Answer, Passage
from assistant.service import Service, open_service, open_store
from assistant.settings import Settings
from ingest.pipeline import ingest

TOKEN = "fuzz-token"
EXAMPLES = 15  # per operation and phase; stress/fuzz.py runs 500
QUESTION = "What did Qureshi say about Russia?"


# --- checks of our own, on top of schemathesis' built-in ones -----------------------------------------------


def _header(response: Any, name: str) -> str:
    values = response.headers.get(name) or response.headers.get(name.title()) or [""]
    return values[0] if isinstance(values, list) else str(values)


@schemathesis.check
def sse_stream_is_complete(ctx: Any, response: Any, case: Any) -> bool | None:
    """A streamed answer: events in order (sources, token…, answer | error), exactly one `done`, last;
    every `data` the documented JSON; no `error` (nothing here may fail)."""
    if not _header(response, "content-type").startswith("text/event-stream"):
        return None
    blocks = [b for b in response.content.decode("utf-8").split("\n\n") if b]
    got = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        assert set(fields) == {"event", "data"}, f"malformed SSE block {block[:200]!r}"
        got.append((fields["event"], json.loads(fields["data"])))
    kinds = [kind for kind, _ in got]
    assert kinds and kinds[-1] == "done" and kinds.count("done") == 1, f"stream does not end in done: {kinds}"
    assert set(kinds) <= set(STREAM_EVENTS) and "error" not in kinds, f"stream reported a failure: {got[-2:]}"
    assert kinds[0] == "sources" and kinds[-2] == "answer", f"events out of order: {kinds}"
    assert set(kinds[1:-2]) <= {"token"}, f"events out of order: {kinds}"
    for kind, data in got:
        if kind == "sources":
            [Passage.model_validate(p) for p in data["passages"]]
        elif kind == "token":
            assert isinstance(data["text"], str)
        elif kind == "answer":
            Answer.model_validate(data)
    return True


@schemathesis.check
def no_traceback(ctx: Any, response: Any, case: Any) -> bool | None:
    """No response shows a Python traceback or source path."""
    text = response.content.decode("utf-8", "replace")
    assert "Traceback (most recent call last)" not in text and 'File "/' not in text, text[:300]
    return True


@schemathesis.check
def ingest_failures_are_named(ctx: Any, response: Any, case: Any) -> bool | None:
    """An ingest report names what failed and why (no temp upload paths)."""
    if case.operation.path != "/ingest" or response.status_code != 200:
        return None
    for failure in json.loads(response.content)["failed"]:
        assert failure["error"].strip(), f"a failure without a reason: {failure}"
        assert "newsqa-upload-" not in failure["path"], f"a temp path leaked: {failure}"
    return True


@schemathesis.check
def article_chunks_slice_the_body(ctx: Any, response: Any, case: Any) -> bool | None:
    """An article's chunk boundaries lie within its body."""
    if case.operation.path != "/articles/{article_id}" or response.status_code != 200:
        return None
    article = ArticleDetail.model_validate_json(response.content)
    assert all(0 <= c.char_start < c.char_end <= len(article.body) for c in article.chunks), article.chunks
    return True


# --- the harness (stress/fuzz.py uses it too) ------------------------------------------------------------


@dataclasses.dataclass
class FuzzRun:
    """What one schemathesis run saw."""

    cases: int = 0
    statuses: Counter[tuple[str, int]] = dataclasses.field(default_factory=Counter)
    failures: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def report(self) -> str:
        """The failures (check, title, a curl to reproduce) and engine errors, readable in an assert."""
        lines = [f"{op} [{check}] {title}\n    {curl[:800]}"
                 for (op, check, title), curl in self.failures.items()]
        return "\n".join(lines + [f"engine error: {e}" for e in self.errors]) or "no failures"


def fuzz_settings(data_dir: Path, **extra: Any) -> Settings:
    """Settings for fuzzing: the rate limit off (else mostly 429s), the token on, URL fetches cut short."""
    values: dict[str, Any] = {"ask_rate_per_minute": 0, "api_token": TOKEN, "fetch_timeout_s": 1.0, **extra}
    return make_settings(data_dir, **values)


def build_service(root: Path, embedder: Any, articles: int = 5, **extra: Any) -> Service:
    """A real store in `root` with the seed article and `articles` short corpus articles."""
    settings = fuzz_settings(root / "data", **extra)
    root.mkdir(parents=True, exist_ok=True)
    corpus = write_articles(root / "corpus.json", shortest_records(articles))
    report = ingest([str(SEED), str(corpus)], open_store(settings), embedder, settings)
    assert report.failed == [] and report.articles == articles + 1, report
    return open_service(settings, embedder=embedder)


def fuzz(base_url: str, examples: int, *, token: str | None = TOKEN, paths: list[str] | None = None,
         skip_checks: tuple[str, ...] = (), question_prefix: str = "", seed: int | None = None) -> FuzzRun:
    """Run every phase and check of schemathesis against the server at `base_url`; collect what it saw.
    `question_prefix` goes before each generated question (so that it retrieves passages and reaches
    the model: a question nothing covers is refused before any model is called). Without a `seed` the
    run is deterministic (Hypothesis derandomized); with one, it is random but reproducible."""
    config: dict[str, Any] = {
        "base-url": base_url, "seed": seed or 0, "max-stream-events": 100_000, "request-timeout": 120,
        "generation": {"max-examples": examples, "deterministic": seed is None, "database": "none"},
        "checks": {"enabled": True}, "cache": {"enabled": False}, "continue-on-failure": True,
        "auth": {"auto-signup": False, **({"openapi": {"HTTPBearer": {"bearer": token}}} if token else {})},
        # Which URLs /ingest takes is Python's `urlsplit`, which no JSON Schema pattern matches exactly:
        # there, "schema-valid is accepted / schema-invalid is rejected" cannot hold; every other check does.
        "operations": [{"include-path": "/ingest", "checks": {
            "positive_data_acceptance": {"enabled": False}, "negative_data_rejection": {"enabled": False}}}],
    }
    if paths:  # (not `schema.include`: with `operations` configured it would select every operation)
        config["operations"].append({"exclude-path": paths, "enabled": False})
    for check in skip_checks:
        config["checks"][check] = {"enabled": False}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json",
                                           config=schemathesis.Config.from_dict(config))
    if question_prefix:
        def map_body(context: Any, body: Any) -> Any:
            # a blank question stays blank: it may be a schema-violating case, which must still be rejected
            # (prefixed, it became a valid question, and the "negative data rejected" check failed)
            if isinstance(body, dict) and isinstance(body.get("question"), str) and body["question"].strip():
                return {**body, "question": f"{question_prefix} {body['question']}"}
            return body

        schema.hook(map_body)
    run = FuzzRun()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            _record(run, event)
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            run.errors.append(str(getattr(event, "value", None) or getattr(event, "exception", event)))
    return run


def _record(run: FuzzRun, event: events.ScenarioFinished) -> None:
    recorder = event.recorder
    for case_id, interaction in recorder.interactions.items():
        run.cases += 1
        status = interaction.response.status_code if interaction.response is not None else 0
        node = recorder.cases.get(case_id)
        path = node.value.operation.path if node is not None else recorder.label
        run.statuses[(f"{interaction.request.method} {path}", status)] += 1
    for checks in recorder.checks.values():
        for check in checks:
            if check.failure_info is not None:
                failure = check.failure_info.failure
                key = (failure.operation or recorder.label, check.name, f"{failure.title}: {failure.message}")
                run.failures.setdefault(key, check.failure_info.code_sample)


# --- the tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory, small_embedder) -> Service:
    return build_service(tmp_path_factory.mktemp("fuzz"), small_embedder)


@pytest.fixture(scope="module")
def base_url(service) -> Iterator[str]:
    with served(service.settings, service) as client:
        yield str(client.base_url).rstrip("/")


def test_every_operation_offline_no_5xx_and_as_documented(base_url):
    run = fuzz(base_url, EXAMPLES)
    assert not run.failures and not run.errors, run.report()
    assert run.server_errors == 0
    operations = {op for op, _ in run.statuses}
    assert {"POST /ask", "POST /ask/stream", "GET /articles", "GET /articles/{article_id}", "GET /health",
            "POST /ingest"} <= operations, operations
    ok = {op for (op, status), _ in run.statuses.items() if status == 200}
    assert {"POST /ask", "POST /ask/stream", "GET /articles", "GET /articles/{article_id}",
            "POST /ingest"} <= ok, run.statuses  # the fuzzer got through, not only 4xx


def test_ingest_without_the_token_is_401_and_without_a_configured_token_403(tmp_path, base_url, service):
    run = fuzz(base_url, EXAMPLES, token=None, paths=["/ingest"])
    assert not run.failures and not run.errors, run.report()
    assert {status for (op, status) in run.statuses if op == "POST /ingest"} <= {401, 405, 413}, run.statuses
    assert run.statuses[("POST /ingest", 401)] >= EXAMPLES
    settings = fuzz_settings(tmp_path / "d", api_token=None)
    with served(settings, service) as client:  # 403 whatever is sent: "missing header → 401" cannot hold
        off = fuzz(str(client.base_url).rstrip("/"), EXAMPLES, paths=["/ingest"],
                   skip_checks=("missing_required_header",))
    assert not off.failures and not off.errors, off.report()
    assert {status for (op, status) in off.statuses if op == "POST /ingest"} <= {403, 405, 413}, off.statuses
    assert off.statuses[("POST /ingest", 403)] >= EXAMPLES


def test_answers_from_the_scripted_model_no_5xx_and_as_documented(service):
    with FakeOpenAIServer() as llm_server:
        llm_server.default = lambda messages: f"{_last_user(messages)[:300]} [1] [2] [99]."
        with OpenAILLM("fake-model", base_url=llm_server.base_url, timeout_s=5, max_retries=0) as llm:
            answerer = Answerer(service.retriever, service.answerer.extractive, llm)
            with served(service.settings, dataclasses.replace(service, answerer=answerer)) as client:
                run = fuzz(str(client.base_url).rstrip("/"), 10, paths=["/ask", "/ask/stream"],
                           question_prefix=QUESTION)
        assert llm_server.requests, "the model was never asked"
    assert not run.failures and not run.errors, run.report()
    assert run.statuses[("POST /ask", 200)] and run.statuses[("POST /ask/stream", 200)], run.statuses


def test_the_harness_catches_a_5xx_and_a_stream_that_fails(service):
    class Broken(Answerer):
        def ask(self, *args: Any, **kwargs: Any) -> Answer:
            raise RuntimeError("broken on purpose")

        def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            yield from list(service.answerer.stream(QUESTION))[:1]
            raise RuntimeError("broken on purpose")

    broken = dataclasses.replace(service, answerer=Broken(service.retriever, service.answerer.extractive))
    with served(service.settings, broken) as client:
        run = fuzz(str(client.base_url).rstrip("/"), 3, paths=["/ask", "/ask/stream"])
    assert run.server_errors > 0 and run.statuses[("POST /ask/stream", 200)] > 0, run.statuses
    found = {(op, check) for op, check, _ in run.failures}
    assert ("POST /ask", "not_a_server_error") in found, found
    assert ("POST /ask/stream", "sse_stream_is_complete") in found, found


def _last_user(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")


# --- regressions: what the fuzzer found, pinned ----------------------------------------------------------


def test_fuzz_findings_stay_fixed(base_url):
    auth = {"authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base_url, timeout=60) as c:
        for query in ({"since": "0"}, {"until": "20210408"}, {"since": "2021-04-08T00:00:00"}):
            r = c.get("/articles", params=query)  # was 200: `0` read as 1970-01-01
            assert r.status_code == 422 and "YYYY-MM-DD" in r.json()["message"], (query, r.text)
        for key in ("since", "until"):  # was 200 (both routes)
            for route in ("/ask", "/ask/stream"):
                r = c.post(route, json={"question": QUESTION, "filters": {key: 0}})
                assert r.status_code == 422 and f"filters.{key}" in r.json()["message"], r.text
        r = c.post("/ingest", json={"urls": ["http://a\x7fb/x", "http://a/b c"]}, headers=auth)  # was 500
        assert r.status_code == 422 and "control characters" in r.json()["message"], r.text
        r = c.post("/ingest", json={"urls": ["https://a:S\u00cdr8/x"]}, headers=auth)  # was 500
        assert r.status_code == 422 and "port" in r.json()["message"], r.text
        r = c.post("/ingest", json={"urls": ["  HTTP://no-such-host.invalid/a"]}, headers=auth)
        [failure] = r.json()["failed"]  # was read as a server path: "no such file or directory"
        assert failure["path"] == "http://no-such-host.invalid/a"
        assert failure["error"].startswith("cannot fetch"), failure
        r = c.post("/ask", content=b'{"question": "\xff"}', headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["detail"]


def test_the_spec_documents_every_response_the_api_gives(base_url):
    spec = httpx.get(f"{base_url}/openapi.json").json()
    responses = {(path, status) for path, ops in spec["paths"].items() for op in ops.values()
                 for status in op["responses"]}
    assert {("/ask", "400"), ("/ask", "413"), ("/ask", "422"), ("/ask", "429"), ("/ask/stream", "429"),
            ("/articles/{article_id}", "404"), ("/health", "503"), ("/ingest", "401"), ("/ingest", "403"),
            ("/ingest", "413"), ("/ingest", "415"), ("/ingest", "422")} <= responses
    stream = spec["paths"]["/ask/stream"]["post"]["responses"]["200"]["content"]
    assert list(stream) == ["text/event-stream"]
    assert stream["text/event-stream"]["schema"]["properties"]["event"]["enum"] == list(STREAM_EVENTS)
    assert spec["paths"]["/ingest"]["post"]["security"] == [{"HTTPBearer": []}]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    question = spec["components"]["schemas"]["AskRequest"]["properties"]["question"]
    assert question["minLength"] == 1 and re.search(question["pattern"], "\x1c\u3000 x")
    assert not re.search(question["pattern"], " \t\x1c\x85\u3000")  # what `str.strip()` removes
