"""The HTTP API over a real store (the seed article and three short MultiHop-RAG articles, real minilm-l3),
served by a real uvicorn server on loopback and called with httpx: answers and their validation, the SSE
stream (offline, with the scripted model, and with a model that drops mid-stream), the article browser,
health, body limits, and ingest over HTTP behind the bearer token."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import SEED, shortest_records, write_articles
from fake_openai import FakeOpenAIServer, Fault

from assistant.answer import Answerer
from assistant.api import create_app
from assistant.llm import OpenAILLM
from assistant.service import Service, open_service, open_store
from assistant.settings import Settings
from ingest.pipeline import ingest

QURESHI = "What did Qureshi say about Russia?"
POINTS = ("strong multifaceted relationship", "new approach and mindset", "geographic proximity",
          "factor of stability in the region and the world")
TOKEN = "s3cret-token"
LIMIT = 64 * 1024


def make_settings(data_dir: Path, **extra: object) -> Settings:
    with pytest.MonkeyPatch.context() as mp:  # no NEWSQA_* variable (nor .env) may change the store
        for key in [k for k in os.environ if k.startswith("NEWSQA_")]:
            mp.delenv(key)
        extra = {"ask_rate_per_minute": 0, **extra}  # the rate limit has its own tests (test_api_security)
        return Settings(_env_file=None, data_dir=data_dir, embedder="minilm-l3", model=None,  # type: ignore[call-arg]
                        max_body_bytes=LIMIT, **extra)


@contextmanager
def served(settings: Settings, service: Service | None) -> Iterator[httpx.Client]:
    """The app on a real uvicorn server (free loopback port, own thread), and a client for it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings, service), log_level="critical", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            threading.Event().wait(0.01)
        with httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, small_embedder) -> Service:
    root = tmp_path_factory.mktemp("api")
    settings = make_settings(root / "data")
    articles = write_articles(root / "corpus.json", shortest_records(3))
    report = ingest([str(SEED), str(articles)], open_store(settings), small_embedder, settings)
    assert (report.failed, report.articles) == ([], 4)
    return open_service(settings, embedder=small_embedder)


@pytest.fixture(scope="module")
def client(service) -> Iterator[httpx.Client]:
    with served(service.settings, service) as c:
        yield c


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def model_client(service, llm_server) -> Iterator[httpx.Client]:
    """The same store answered by the scripted model."""
    with OpenAILLM("fake-model", base_url=llm_server.base_url, timeout_s=5, max_retries=0) as llm:
        answerer = Answerer(service.retriever, service.answerer.extractive, llm)
        with served(service.settings, dataclasses.replace(service, answerer=answerer)) as c:
            yield c


def events(response: httpx.Response) -> list[tuple[str, dict]]:
    """The (event, data) pairs of an SSE body."""
    assert response.headers["content-type"].startswith("text/event-stream")
    out = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def no_traceback(response: httpx.Response) -> None:
    assert "Traceback" not in response.text and 'File "' not in response.text


def seed_id(client: httpx.Client) -> str:
    [item] = client.get("/articles", params={"source": "IANS"}).json()["items"]
    return item["id"]


# --- /ask ------------------------------------------------------------------------------------------------


def test_ask_answers_the_seed_question_citing_the_seed(client):
    r = client.post("/ask", json={"question": QURESHI})
    assert r.status_code == 200, r.text
    answer = r.json()
    text = " ".join(answer["answer"].split())
    assert not answer["refused"] and answer["model"] == "extractive"
    assert all(point in text for point in POINTS), text
    assert {c["article_id"] for c in answer["citations"]} == {seed_id(client)}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"question": ""}, "question", "must not be empty"),
    ({"question": " \n\t "}, "question", "must not be empty"),
    ({"question": "x" * 2001}, "question", "too long"),
    ({"question": QURESHI, "colour": "red"}, "colour", "Extra inputs"),
    ({"question": QURESHI, "filters": {"since": "2021-13-45"}}, "filters.since", "date"),
    ({"question": QURESHI, "k": 0}, "k", "greater than or equal to 1"),
])
def test_ask_rejects_bad_requests_naming_the_field(client, body, field, words):
    for route in ("/ask", "/ask/stream"):
        r = client.post(route, json=body)
        assert r.status_code == 422, r.text
        assert f"{field}: " in r.json()["message"] and words in r.json()["message"]
        assert [".".join(map(str, e["loc"][1:])) for e in r.json()["detail"]] == [field]
        no_traceback(r)


def test_bodies_over_the_limit_are_refused_by_length_and_when_streamed(client):
    big = json.dumps({"question": "x" * (LIMIT + 10)}).encode()
    assert client.post("/ask", content=big, headers={"content-type": "application/json"}).status_code == 413
    chunked = client.post("/ask", content=iter([big[:1000], big[1000:]]),
                          headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and "too large" in chunked.json()["detail"]


# --- /ask/stream -----------------------------------------------------------------------------------------


def test_stream_offline_sends_sources_answer_done(client):
    got = events(client.post("/ask/stream", json={"question": QURESHI, "k": 5}))
    assert [kind for kind, _ in got] == ["sources", "answer", "done"]
    assert 0 < len(got[0][1]["passages"]) <= 5 and got[2][1] == {}
    assert all(point in " ".join(got[1][1]["answer"].split()) for point in POINTS)


def test_stream_with_the_model_sends_its_tokens_then_the_verified_answer(service, model_client, llm_server):
    claim = "Qureshi reiterated Pakistan's resolve to build a strong multifaceted relationship with Russia"
    passages = service.retriever.retrieve(QURESHI, k=service.settings.top_k).passages
    n = next(i for i, p in enumerate(passages, 1) if "multifaceted" in p.text)
    llm_server.script(f"{claim} [{n}].")
    got = events(model_client.post("/ask/stream", json={"question": QURESHI}))
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "sources" and kinds[-2:] == ["answer", "done"] and set(kinds[1:-2]) == {"token"}
    assert "".join(d["text"] for k, d in got if k == "token") == f"{claim} [{n}]."
    answer = got[-2][1]
    assert (answer["model"], answer["fallback"], answer["answer"]) == ("fake-model", None, f"{claim} [1].")


def test_stream_model_dropping_mid_stream_still_ends_with_the_fallback_answer(model_client, llm_server):
    llm_server.script(Fault.drop_mid_stream("Qureshi said many things about Russia and Pakistan [1]."))
    got = events(model_client.post("/ask/stream", json={"question": QURESHI}))
    assert [k for k, _ in got][-2:] == ["answer", "done"] and "error" not in [k for k, _ in got]
    answer = got[-2][1]
    assert answer["model"] == "extractive" and answer["fallback"].startswith("model failed")
    assert all(point in " ".join(answer["answer"].split()) for point in POINTS)


def test_stream_failure_after_start_is_an_error_event_then_done(service):
    class Broken(Answerer):
        def stream(self, *args, **kwargs):
            yield from list(service.answerer.stream(QURESHI))[:1]
            raise RuntimeError("secret internal detail")

    broken = dataclasses.replace(service, answerer=Broken(service.retriever, service.answerer.extractive))
    with served(service.settings, broken) as c:
        r = c.post("/ask/stream", json={"question": QURESHI})
    assert [k for k, _ in events(r)] == ["sources", "error", "done"]
    assert "secret" not in r.text and events(r)[1][1]["message"]
    no_traceback(r)


# --- /articles, /health ----------------------------------------------------------------------------------


def test_articles_pages_newest_first_and_filters(client, service):
    full = client.get("/articles").json()
    assert full["total"] == 4 and len(full["items"]) == 4
    dates = [i["published_at"] for i in full["items"]]
    assert dates == sorted(dates, reverse=True) and {i["status"] for i in full["items"]} == {"indexed"}
    page = client.get("/articles", params={"offset": 1, "limit": 2}).json()
    assert (page["total"], page["items"]) == (4, full["items"][1:3])
    word = full["items"][0]["title"].split()[0]
    found = client.get("/articles", params={"q": word.upper()}).json()["items"]
    assert full["items"][0] in found and all(word.lower() in i["title"].lower() for i in found)
    seed = client.get("/articles", params={"since": "2021-04-01", "until": "2021-04-30"}).json()
    assert [i["source"] for i in seed["items"]] == ["IANS"]
    assert client.get("/articles", params={"limit": 101}).status_code == 422
    assert client.get("/articles", params={"since": "April"}).status_code == 422


def test_article_detail_chunks_slice_the_body(client):
    article = client.get(f"/articles/{seed_id(client)}").json()
    assert article["source"] == "IANS" and "Qureshi" in article["body"]
    chunks = article["chunks"]
    assert [c["index"] for c in chunks] == list(range(len(chunks))) and len(chunks) >= 2
    assert chunks[0]["char_start"] == 0 and chunks[-1]["char_end"] == len(article["body"])
    assert all(a["char_start"] < b["char_start"] < a["char_end"] for a, b in itertools.pairwise(chunks))
    missing = client.get("/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["detail"]
    assert client.get("/no/such/route").status_code == 404


def test_health_reports_the_store(client, service):
    health = client.get("/health").json()
    assert health == {"status": "ok", "articles": 4, "chunks": service.store.chunks.count(), "model": None,
                      "embedder": "minilm-l3", "reason": None}
    assert health["chunks"] > 4


class NoChunkReads:
    """Stands in for the chunk collection: any read fails the request (it would load Chroma's vector
    index into the serving process)."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the chunk collection was read ({name})")


def test_health_and_an_indexed_article_are_served_without_reading_the_chunk_collection(client, service,
                                                                                      monkeypatch):
    before = (client.get("/health").json(), client.get(f"/articles/{seed_id(client)}").json())
    monkeypatch.setattr(service.store, "chunks", NoChunkReads())
    assert (client.get("/health").json(), client.get(f"/articles/{seed_id(client)}").json()) == before
    # a version the indexes do not hold (say, updated by another process a moment ago): Chroma's chunks
    record = service.store.records([seed_id(client)])[seed_id(client)]
    assert service.indexes.chunks_of(seed_id(client), "0" * 64) is None
    assert service.indexes.chunks_of(seed_id(client), record["content_hash"]) is not None
    assert service.indexes.chunks_of("no-such-article", record["content_hash"]) is None
    monkeypatch.setattr(service.indexes, "chunks_of", lambda *_: None)
    # it did go to the collection (a request of its own: the server drops a connection whose app raised)
    failed = client.get(f"/articles/{seed_id(client)}", headers={"connection": "close"})
    assert failed.status_code == 500


# --- /ingest ---------------------------------------------------------------------------------------------


def test_ingest_is_disabled_without_a_token(client):
    r = client.post("/ingest", json={"urls": ["https://example.com/a"]},
                    headers={"authorization": "Bearer x"})
    assert r.status_code == 403 and "NEWSQA_API_TOKEN" in r.json()["detail"]


def test_ingest_with_the_token_uploads_an_article_that_then_answers(tmp_path, small_embedder):
    settings = make_settings(tmp_path / "data", api_token=TOKEN)
    article = ("# Lighthouse keepers of Vardø vote to automate the beacon\n\nVARDØ (Wire) - The lighthouse "
               "keepers of Vardø voted on Monday to automate the harbour beacon, said Ingrid Solberg, who "
               "leads the keepers' guild. \"The beacon will run on solar power from next spring,\" Solberg "
               "said.\n")
    with served(settings, open_service(settings, embedder=small_embedder)) as c:
        files = {"files": ("vardo.txt", article.encode(), "text/plain")}
        assert c.post("/ingest", files=files).status_code == 401
        wrong = c.post("/ingest", files=files, headers={"authorization": "Bearer wrong"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        auth = {"authorization": f"Bearer {TOKEN}"}
        for bad in ("file:///etc/passwd", "/etc/passwd", "ftp://example.com/a"):
            r = c.post("/ingest", json={"urls": [bad]}, headers=auth)
            assert r.status_code == 422 and "only http:// and https://" in r.json()["message"], r.text
            no_traceback(r)
        r = c.post("/ingest", files=files, headers=auth)
        assert r.status_code == 200, r.text
        assert (r.json()["added"], r.json()["failed"], r.json()["articles"]) == (1, [], 1)
        answer = c.post("/ask", json={"question": "What did Solberg say about the beacon?"}).json()
        assert not answer["refused"] and "solar power" in answer["answer"]
        assert c.get("/health").json()["articles"] == 1


def test_unreachable_store_is_503_on_health_and_a_clean_500_elsewhere(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(tmp_path / "data", chroma_host="127.0.0.1", chroma_port=port)
    with served(settings, None) as c:  # the service is opened lazily, and fails
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert health.json()["reason"]
        r = c.post("/ask", json={"question": QURESHI})
        assert (r.status_code, r.json()) == (500, {"detail": "internal error"})
        for response in (health, r):
            no_traceback(response)


def test_docs_and_pages_are_served(client):
    assert client.get("/docs").status_code == 200
    assert {"/ask", "/ask/stream", "/articles", "/articles/{article_id}", "/health", "/ingest"} <= set(
        client.get("/openapi.json").json()["paths"])
    for page in ("/", "/browse"):  # the templates are the UI's; without them: clean JSON, no traceback
        r = client.get(page)
        assert (r.status_code, r.headers["content-type"].split(";")[0]) in {
            (200, "text/html"), (500, "application/json")}
        no_traceback(r)


def test_security_headers_on_pages_api_errors_and_docs(client):
    page, api, missing = client.get("/"), client.post("/ask", json={"question": " "}), client.get("/nope")
    for r in (page, api, missing):
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    docs = client.get("/docs")  # FastAPI's docs page needs its inline bootstrap: only the framing rule
    assert docs.status_code == 200 and docs.headers["content-security-policy"] == "frame-ancestors 'none'"
