"""The answerer on a real store (the seed article and five short MultiHop-RAG articles, real minilm-l3):
the offline extractive answer and its refusals, the model path against the scripted OpenAI-compatible
server over real HTTP (verified, renumbered citations; every failure falling back), streaming, follow-ups."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from conftest import SEED, shortest_records, write_articles
from fake_openai import FakeOpenAIServer, Fault

from assistant.answer import Answerer
from assistant.cite import REFUSAL, UNVERIFIED
from assistant.llm import OpenAILLM
from assistant.prompts import Turn
from assistant.schema import Answer, Passage
from assistant.service import Service, open_service, open_store
from assistant.settings import Settings
from ingest.pipeline import ingest

QURESHI = "What did Qureshi say about Russia?"
POINTS = ("strong multifaceted relationship", "new approach and mindset", "geographic proximity",
          "factor of stability in the region and the world")
TRUE_CLAIM = "Qureshi reiterated Pakistan's resolve to build a strong multifaceted relationship with Russia"
MARKER = re.compile(r"\[(\d+)\]")
CITATION_FIELDS = {"article_id", "title", "source", "published_at", "url"}


def flat(text: str) -> str:
    return " ".join(text.split())


def passage_no(passages: list[Passage], needle: str) -> int:
    """The [n] of the one passage holding `needle`."""
    [n] = [n for n, p in enumerate(passages, start=1) if needle in p.text]
    return n


@pytest.fixture(scope="module")
def service(tmp_path_factory, small_embedder) -> Service:
    root = tmp_path_factory.mktemp("answer")
    with pytest.MonkeyPatch.context() as mp:  # no NEWSQA_* variable (nor .env) may change the store
        for key in [k for k in os.environ if k.startswith("NEWSQA_")]:
            mp.delenv(key)
        settings = Settings(_env_file=None, data_dir=root / "data", embedder="minilm-l3", model=None)
    articles = write_articles(root / "corpus.json", shortest_records(5))
    report = ingest([str(SEED), str(articles)], open_store(settings), small_embedder, settings)
    assert (report.failed, report.articles) == ([], 6)
    return open_service(settings, embedder=small_embedder)


@pytest.fixture(scope="module")
def seed(service) -> SimpleNamespace:
    [article_id] = [i for i, meta, _ in service.store.all_records() if meta["source"] == "IANS"]
    return SimpleNamespace(id=article_id, body=service.store.body(article_id))


@pytest.fixture(scope="module")
def offline(service) -> Answer:
    return service.answerer.ask(QURESHI)


@pytest.fixture(scope="module")
def history(offline) -> list[Turn]:
    return [Turn(role="user", content=QURESHI), Turn(role="assistant", content=offline.answer)]


@pytest.fixture
def make_answerer(service, fake_llm_server: FakeOpenAIServer) -> Iterator[Callable[..., Answerer]]:
    """Answerers over the shared store whose model is the scripted server (clients closed afterwards)."""
    clients: list[OpenAILLM] = []

    def make(max_retries: int = 0, timeout_s: float = 5.0) -> Answerer:
        clients.append(OpenAILLM("fake-model", base_url=fake_llm_server.base_url, timeout_s=timeout_s,
                                 max_retries=max_retries, max_retry_wait_s=0.05))
        return Answerer(service.retriever, service.answerer.extractive, clients[-1])

    yield make
    for client in clients:
        client.close()


# --- offline: the extractive answerer ------------------------------------------------------------------


def test_seed_question_gets_all_four_points_from_the_seed_article_only(offline, seed):
    assert not offline.refused and offline.model == "extractive" and offline.fallback is None
    text = flat(offline.answer)
    assert [point for point in POINTS if point not in text] == []
    assert offline.citations and {c.article_id for c in offline.citations} == {seed.id}
    assert {int(n) for n in MARKER.findall(offline.answer)} == {c.n for c in offline.citations}
    assert [c.n for c in offline.citations] == list(range(1, len(offline.citations) + 1))
    assert offline.unsupported == [] and UNVERIFIED not in offline.answer
    body = flat(seed.body)
    sentences = [flat(s) for s in re.split(r"\s*\[\d+\]\s*", offline.answer) if s.strip()]
    assert len(sentences) >= 3 and [s for s in sentences if s not in body] == []  # no claim not in it
    for c in offline.citations:
        assert c.supported and c.quote and c.quote in c.passage and flat(c.passage) in body
        assert (c.source, c.published_at[:10]) == ("IANS", "2021-04-08")


@pytest.mark.parametrize("question", [
    "What is the population of Antarctica's penguin colonies?",
    "How much does a Tesla Cybertruck cost?",
    "What did the Federal Reserve decide about interest rates?",
])
def test_question_on_a_topic_absent_from_the_store_is_refused_before_the_model(
        question, make_answerer, fake_llm_server):
    answer = make_answerer().ask(question)
    assert (answer.refused, answer.answer, answer.citations) == (True, REFUSAL, [])
    assert answer.filters["refusal"].startswith("coverage")
    assert fake_llm_server.requests == []  # low coverage refuses without calling the model


def test_statement_the_seed_does_not_report_is_refused(service):
    answer = service.answerer.ask("What did Lavrov say about the United States?")
    assert answer.refused and answer.citations == []


def test_question_naming_an_outlet_not_in_the_store_is_refused_with_the_outlet(make_answerer,
                                                                               fake_llm_server):
    answer = make_answerer().ask("What did Bloomberg report about Lavrov's visit to Pakistan?")
    assert answer.refused and answer.citations == [] and answer.answer.startswith(REFUSAL)
    assert "Bloomberg" in answer.answer and answer.filters["refusal"] == "unknown outlet"
    assert answer.filters["unknown_sources"] == ["Bloomberg"]
    assert fake_llm_server.requests == []


# --- the model path, against the scripted server over HTTP ---------------------------------------------


def test_model_answer_gets_structured_renumbered_citations_and_the_request_is_grounded(
        service, make_answerer, fake_llm_server):
    passages = service.retriever.retrieve(QURESHI).passages
    claims = sorted([(passage_no(passages, "Imran Khan"),
                      "Lavrov met Prime Minister Imran Khan and Foreign Minister Shah Mahmood Qureshi"),
                     (passage_no(passages, "multifaceted"), TRUE_CLAIM)], reverse=True)
    assert claims[0][0] != claims[1][0]  # two passages, the later one cited first: renumbering shows
    fake_llm_server.script(" ".join(f"{claim} [{n}]." for n, claim in claims))
    answer = make_answerer().ask(QURESHI)
    assert (answer.model, answer.refused, answer.fallback) == ("fake-model", False, None)
    assert answer.unsupported == []
    assert answer.answer == " ".join(f"{claim} [{i}]." for i, (_, claim) in enumerate(claims, start=1))
    assert [c.n for c in answer.citations] == [1, 2]
    for citation, (old, _) in zip(answer.citations, claims, strict=True):
        p = passages[old - 1]
        assert citation.model_dump(include=CITATION_FIELDS | {"passage"}) == {
            **p.model_dump(include=CITATION_FIELDS), "passage": p.text}
        assert citation.supported and citation.quote and citation.quote in p.text
    assert "multifaceted" in answer.citations[1].quote and answer.timings_ms["model"] > 0

    [body] = fake_llm_server.requests
    assert body["model"] == "fake-model" and not body.get("stream")
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    system, user = (m["content"] for m in body["messages"])
    assert REFUSAL in system and "Answer only from the numbered passages" in system
    assert f"Question: {QURESHI}" in user and user.count("<passage n=") == len(passages)
    at = [user.index(f'<passage n="{n}">\n[{n}] {p.title}') for n, p in enumerate(passages, start=1)]
    assert at == sorted(at) and all(p.text.strip() in user for p in passages)


def test_reply_citing_only_a_missing_passage_falls_back_to_the_extractive_answer(
        service, make_answerer, fake_llm_server):
    fake_llm_server.script("Qureshi praised Russia's new approach and mindset [9].")
    answer = make_answerer().ask(QURESHI, k=4)  # there is no passage 9
    offline = service.answerer.ask(QURESHI, k=4)
    assert answer.model == "extractive" and answer.fallback == "model answer cited no retrieved passage"
    assert (answer.answer, answer.citations) == (offline.answer, offline.citations)
    assert not answer.refused and "[9]" not in answer.answer


@pytest.mark.parametrize(("steps", "retries", "says"), [
    ((Fault.status(500), Fault.status(500)), 1, ("HTTP 500", "after 2 attempt(s)")),
    ((Fault.delay(5),), 0, ("timeout", "0.5 s")),
    ((Fault.malformed(),), 0, ("malformed response",)),
    ((Fault.empty(),), 0, ("malformed response", "no choices")),
], ids=["http-500", "timeout", "malformed", "empty"])
def test_model_failure_still_answers_extractively_and_says_why(
        steps, retries, says, make_answerer, fake_llm_server, offline):
    fake_llm_server.script(*steps)
    answer = make_answerer(max_retries=retries, timeout_s=0.5).ask(QURESHI)
    assert answer.fallback and answer.fallback.startswith("model failed: ")
    assert [word for word in says if word not in answer.fallback] == []
    assert answer.model == "extractive" and not answer.refused
    assert (answer.answer, answer.citations) == (offline.answer, offline.citations)
    assert len(fake_llm_server.requests) == 1 + retries


def test_model_refusal_is_a_refusal(make_answerer, fake_llm_server):
    fake_llm_server.script("The articles don't say.")
    answer = make_answerer().ask(QURESHI)
    assert (answer.refused, answer.answer, answer.citations) == (True, REFUSAL, [])
    assert answer.model == "fake-model" and answer.fallback is None


def test_fabricated_claim_is_listed_unsupported_and_marked_unverified(
        service, make_answerer, fake_llm_server, seed):
    n = passage_no(service.retriever.retrieve(QURESHI).passages, "multifaceted")
    fabricated = "Qureshi also said Pakistan will buy forty submarines from Russia by 2030"
    fake_llm_server.script(f"{TRUE_CLAIM} [{n}]. {fabricated} [{n}].")
    answer = make_answerer().ask(QURESHI)
    assert answer.unsupported == [f"{fabricated} [1]."]
    assert answer.answer == f"{TRUE_CLAIM} [1]. {fabricated} [1] {UNVERIFIED}."
    [citation] = answer.citations
    assert citation.article_id == seed.id and not citation.supported
    assert answer.model == "fake-model" and not answer.refused


def test_stream_yields_sources_then_tokens_then_the_answer(service, make_answerer, fake_llm_server):
    passages = service.retriever.retrieve(QURESHI).passages
    reply = f"{TRUE_CLAIM} [{passage_no(passages, 'multifaceted')}]."
    fake_llm_server.script(reply)
    events = list(make_answerer().stream(QURESHI))
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"token"}
    assert [p.chunk_id for p in events[0].data] == [p.chunk_id for p in passages]
    assert "".join(e.data for e in events[1:-1]) == reply
    final = events[-1].data
    assert (final.model, final.answer, final.fallback) == ("fake-model", f"{TRUE_CLAIM} [1].", None)
    assert fake_llm_server.requests[0]["stream"] is True


def test_stream_cut_mid_answer_ends_with_the_extractive_answer(make_answerer, fake_llm_server, offline):
    reply = f"{TRUE_CLAIM} [1]. There is a new approach and mindset in Pakistan [1]."
    fake_llm_server.script(Fault.drop_mid_stream(reply))
    events = list(make_answerer().stream(QURESHI))  # no exception escapes
    kinds = [e.kind for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"token"}
    streamed = "".join(e.data for e in events[1:-1])
    assert streamed and reply.startswith(streamed) and streamed != reply
    final = events[-1].data
    assert final.fallback and final.fallback.startswith("model failed: ") and "broke off" in final.fallback
    assert final.model == "extractive" and final.answer == offline.answer


# --- follow-ups --------------------------------------------------------------------------------------


def test_follow_up_is_condensed_with_the_earlier_question_for_retrieval(service, history, seed):
    assert service.answerer.ask("Why?").refused  # alone it names nothing to look for
    why = service.answerer.ask("Why?", history)
    assert not why.refused and {c.article_id for c in why.citations} == {seed.id} and "Qureshi" in why.answer
    events = list(service.answerer.stream("What about Lavrov?", history))
    sources, final = events[0].data, events[-1].data
    assert sources[0].article_id == seed.id and "Lavrov" in sources[0].text
    assert {c.article_id for c in final.citations} == {seed.id}
    assert "Russia" in final.answer or "Pakistan" in final.answer


def test_offline_follow_up_answer_is_about_the_new_subject(service, history):
    assert "Lavrov" in service.answerer.ask("What about Lavrov?", history).answer


def test_follow_up_request_to_the_model_carries_the_conversation(make_answerer, fake_llm_server, history,
                                                                 seed):
    stream = make_answerer().stream("What about Lavrov?", history)
    sources = next(stream)  # sources come before the model is called
    n = passage_no(sources.data, "counter-terrorism")
    fake_llm_server.script(f"Lavrov said his country is ready to further build counter-terrorism "
                           f"cooperation with Pakistan [{n}].")
    final = list(stream)[-1].data
    assert final.model == "fake-model" and final.unsupported == [] and "Lavrov" in final.answer
    assert [c.article_id for c in final.citations] == [seed.id]
    [body] = fake_llm_server.requests
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == QURESHI
    assert "multifaceted" in messages[2]["content"] and not MARKER.search(messages[2]["content"])
    assert "Question: What about Lavrov?" in messages[3]["content"]
