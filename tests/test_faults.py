"""Model faults over real HTTP: the API (real uvicorn) answering with a chat model at the scripted
OpenAI-compatible server (tests/fake_openai.py) that is down, slow past its timeout, stalls or trickles
mid-stream, rate-limits with a long Retry-After, fails with 5xx, returns broken JSON, no choices,
garbage, or citations to passages that don't exist. /ask still answers (200) with the cited extractive
answer and says it fell back; /ask/stream ends with `answer` and `done`, never an `error`. Small budgets
(llm_timeout_s=0.5, answer_timeout_s=1.2) keep it quick; wall times go to stress/faults.py."""

from __future__ import annotations

import dataclasses
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from conftest import SEED, shortest_records, write_articles
from fake_openai import FakeOpenAIServer, Fault
from test_api import events, make_settings, no_traceback, served

from assistant.answer import Answerer
from assistant.llm import LLMError, OpenAILLM, make_llm
from assistant.schema import Answer
from assistant.service import Service, open_service, open_store
from assistant.settings import Settings
from ingest.pipeline import ingest

QURESHI = "What did Qureshi say about Russia?"
CLAIM = "Qureshi reiterated Pakistan's resolve to build a strong multifaceted relationship with Russia"
REPLY = f"{CLAIM} [1]."  # what a failing server would have said (never seen)
K = 3
BUDGET = {"llm_timeout_s": 0.5, "answer_timeout_s": 1.2, "llm_max_retries": 2, "model": "fake-model"}
LONG = 30.0  # far past every budget: the server is woken by its stop()

# fault id → (what the server does on every request, words the fallback reason must hold)
FAULTS: dict[str, tuple[str | Fault, str]] = {
    "delay-past-timeout": (Fault.delay(LONG, then=REPLY), "timeout"),
    "stall-mid-stream": (Fault.stall_mid_stream(REPLY, LONG), r"time(?:out|d out)"),
    "trickle-past-budget": (Fault.trickle(REPLY, 0.3), "timeout"),
    "429-long-retry-after": (Fault.status(429, retry_after=LONG), "HTTP 429"),
    "500-every-time": (Fault.status(500), "HTTP 500"),
    "503-every-time": (Fault.status(503), "HTTP 503"),
    "malformed-json": (Fault.malformed(), "malformed"),
    "html-page": (Fault.malformed("text/html"), "malformed"),
    "empty-choices": (Fault.empty(), "malformed"),
    "drop-mid-stream": (Fault.drop_mid_stream(REPLY), r"broke off|malformed|connection"),
    "garbage-no-citations": ("Lorem ipsum dolor sit amet, banana quartz umbrella.", "cited no retrieved"),
    "citation-to-passage-7-of-3": (f"{CLAIM} [7].", "cited no retrieved passage"),
    "claims-no-passage-supports": ("Zebras took over the Karachi stock exchange on Tuesday [1][2].",
                                   "cited no retrieved passage that supports"),
}


@pytest.fixture(scope="module")
def budget(tmp_path_factory) -> Settings:
    """Settings with a model and small budgets, over a store in a temp dir."""
    return make_settings(tmp_path_factory.mktemp("faults") / "data").model_copy(update=BUDGET)


@pytest.fixture(scope="module")
def offline(budget, small_embedder, tmp_path_factory) -> Service:
    """The seed and three short corpus articles, answered without a model."""
    articles = write_articles(tmp_path_factory.mktemp("corpus") / "corpus.json", shortest_records(3))
    report = ingest([str(SEED), str(articles)], open_store(budget), small_embedder, budget)
    assert (report.failed, report.articles) == ([], 4)
    return open_service(budget.model_copy(update={"model": None}), embedder=small_embedder)


@pytest.fixture(scope="module")
def reference(offline) -> Answer:
    """The offline extractive answer every fallback must equal."""
    answer = offline.answerer.ask(QURESHI, k=K)
    assert answer.model == "extractive" and answer.citations and not answer.fallback
    return answer


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@contextmanager
def with_model(offline: Service, settings: Settings, base_url: str) -> Iterator[httpx.Client]:
    """The app over the same store, its model built from the settings as `newsqa serve` builds it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", base_url)
        llm = make_llm(settings)
    assert isinstance(llm, OpenAILLM) and llm.budget_s == settings.answer_timeout_s
    with llm:
        answerer = Answerer(offline.retriever, offline.answerer.extractive, llm, settings.answer_timeout_s)
        with served(settings, dataclasses.replace(offline, answerer=answerer)) as client:
            yield client


@pytest.fixture(scope="module")
def client(offline, budget, llm_server) -> Iterator[httpx.Client]:
    with with_model(offline, budget, llm_server.base_url) as c:
        yield c


@pytest.fixture(scope="module")
def reply(offline) -> str:
    """A true claim citing the passage that holds it: what a working model answers."""
    passages = offline.retriever.retrieve(QURESHI, k=K).passages
    n = next(i for i, p in enumerate(passages, start=1) if "multifaceted" in p.text)
    return f"{CLAIM} [{n}]."


@pytest.fixture
def fault(llm_server) -> Iterator[FakeOpenAIServer]:
    """The server, its default step reset afterwards."""
    default = llm_server.default
    yield llm_server
    llm_server.default = default


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_fallback(answer: dict, reference: Answer, says: str) -> None:
    """The answer is the offline extractive one, with valid citations, and says why it fell back."""
    assert answer["model"] == "extractive" and not answer["refused"]
    assert answer["fallback"] and re.search(says, answer["fallback"]), answer["fallback"]
    assert (answer["answer"], answer["citations"]) == (reference.answer,
                                                       [c.model_dump() for c in reference.citations])
    citations = answer["citations"]
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])} == {c["n"] for c in citations}
    assert all(c["quote"] and c["quote"] in c["passage"] for c in citations)
    assert "127.0.0.1" not in answer["fallback"] and "scripted" not in answer["fallback"]


def ask_both(client: httpx.Client) -> tuple[httpx.Response, httpx.Response]:
    body = {"question": QURESHI, "k": K}
    return client.post("/ask", json=body), client.post("/ask/stream", json=body)


def check_both(asked: httpx.Response, streamed: httpx.Response, reference: Answer, says: str) -> None:
    assert asked.status_code == 200, asked.text
    check_fallback(asked.json(), reference, says)
    assert streamed.status_code == 200
    got = events(streamed)
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "sources" and kinds[-2:] == ["answer", "done"] and "error" not in kinds, kinds
    assert set(kinds[1:-2]) <= {"token"}
    check_fallback(got[-2][1], reference, says)
    for response in (asked, streamed):
        no_traceback(response)


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_falls_back_to_the_cited_extractive_answer(name, client, fault, reference):
    step, says = FAULTS[name]
    fault.default = lambda messages: step  # every attempt (retries included) meets the fault
    asked, streamed = ask_both(client)
    check_both(asked, streamed, reference, says)


def test_model_server_down_falls_back(offline, budget, reference):
    with with_model(offline, budget, f"http://127.0.0.1:{closed_port()}/v1") as client:
        asked, streamed = ask_both(client)
    check_both(asked, streamed, reference, "connection to the model server failed")


def test_429_with_a_retry_after_past_the_budget_is_not_waited_for(client, fault, reference):
    fault.script(Fault.status(429, retry_after=LONG))
    before = len(fault.requests)
    asked = client.post("/ask", json={"question": QURESHI, "k": K})
    check_fallback(asked.json(), reference, r"HTTP 429 .*1 attempt.*budget is spent")
    assert len(fault.requests) == before + 1  # no retry was started


@pytest.mark.parametrize("first", [Fault.status(500), Fault.status(429, retry_after=0.2)],
                         ids=["500", "429-short-retry-after"])
def test_a_fault_retried_within_the_budget_gives_the_model_answer(first, client, fault, reply):
    fault.script(first, reply, first, reply)
    asked, streamed = ask_both(client)
    for answer in (asked.json(), events(streamed)[-2][1]):
        assert (answer["model"], answer["fallback"]) == ("fake-model", None), answer
        assert answer["answer"] == f"{CLAIM} [1]." and [c["n"] for c in answer["citations"]] == [1]
        assert answer["citations"][0]["supported"]


@pytest.mark.parametrize(("budget_s", "attempts"), [(0.6, 1), (None, 2)], ids=["budget", "no-budget"])
def test_the_client_starts_no_retry_its_budget_cannot_hold(fault, budget_s, attempts):
    """0.5 s timeouts, one retry allowed: a 0.6 s budget leaves no room for the second attempt."""
    fault.default = lambda messages: Fault.delay(LONG)
    before = len(fault.requests)
    with OpenAILLM("m", base_url=fault.base_url, timeout_s=0.5, max_retries=1, budget_s=budget_s) as llm, \
            pytest.raises(LLMError, match="timeout") as caught:
        llm.complete([{"role": "user", "content": "hi"}])
    assert len(fault.requests) - before == attempts
    assert ("budget is spent" in caught.value.public) == (budget_s is not None)


def test_a_stream_trickling_past_the_budget_ends_in_the_client_itself(fault):
    fault.default = lambda messages: Fault.trickle(" ".join(["word"] * 40), 0.1)
    with OpenAILLM("m", base_url=fault.base_url, timeout_s=0.5, max_retries=0, budget_s=0.5) as llm:
        received: list[str] = []
        with pytest.raises(LLMError, match=r"ran past the 0\.5 s answer budget"):
            received.extend(llm.stream([{"role": "user", "content": "hi"}]))
    assert 0 < len(received) < 40
