"""Concurrent load over the real HTTP API (seed + 20 short MultiHop-RAG articles, real minilm-l3, real
uvicorn on loopback, the scripted model of tests/fake_openai.py): ten clients at once on /ask and on
/articles get no error, and an ingest over HTTP while clients ask and browse leaves no torn read —
every listed or cited article fetchable with chunks slicing its body, /health counts never going
down, every new article listed afterwards. The checks are those of `stress/load.py` (imported), which
runs the same load at 50 clients for minutes and measures it; nothing here is timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SEED, shortest_records, write_articles
from fake_openai import FakeOpenAIServer
from test_api import make_settings, served

from assistant.llm import OpenAILLM
from assistant.service import open_service, open_store
from ingest.pipeline import ingest
from stress import load
from stress.load_checks import Checker, Recorder, chunk_problem


@pytest.fixture(scope="module")
def api(tmp_path_factory, small_embedder) -> Iterator[dict[str, Any]]:
    """The served store, the articles held back for ingest, and questions about the stored ones."""
    root = tmp_path_factory.mktemp("load")
    records = shortest_records(24)
    initial, held = records[:20], records[20:]
    settings = make_settings(root / "data", api_token=load.TOKEN, ask_rate_per_minute=0)
    report = ingest([str(SEED), str(write_articles(root / "initial.json", initial))],
                    open_store(settings), small_embedder, settings)
    assert (report.failed, report.articles) == ([], 21)
    questions = [f"What did {r['source']} report in \"{r['title']}\"?" for r in records]
    with FakeOpenAIServer() as llm_server:
        llm_server.default = load.scripted_reply
        with OpenAILLM("scripted", base_url=llm_server.base_url, timeout_s=30, max_retries=0) as llm:
            service = open_service(settings, llm=llm, embedder=small_embedder)
            with served(settings, service) as client:
                yield {"base_url": str(client.base_url), "held": held, "records": records,
                       "questions": questions, "llm": llm_server, "service": service, "settings": settings}


def checker(api: dict[str, Any]) -> Any:
    vocab = sorted({w.lower() for r in api["records"] for w in r["title"].split() if len(w) > 3})
    sources = sorted({r["source"] for r in api["records"]})
    return Checker(Recorder(), list(api["questions"]), vocab, sources, model="scripted")


def failures(c: Any) -> str:
    return f"errors/violations {c.rec.violations} {c.rec.samples}"


def test_ten_clients_ask_and_browse_without_errors(api):
    asking, browsing = checker(api), checker(api)
    asyncio.run(load.timed_phase(api["base_url"], [asking.ask] * 10, 2.0))
    asyncio.run(load.verify_cited(api["base_url"], asking, {}))
    asyncio.run(load.timed_phase(api["base_url"], [browsing.articles] * 10, 2.0))
    assert asking.rec.failures == 0 and browsing.rec.failures == 0, failures(asking) + failures(browsing)
    asked, listed = asking.rec.stats["ask"], browsing.rec.stats["articles"]
    assert len(asked.latencies) >= 10 and len(listed.latencies) >= 10
    assert asking.cited  # answers cited articles, each fetched after the phase:
    assert len(asking.rec.stats["article(cited, after)"].latencies) == len(asking.cited)
    assert "article" in browsing.rec.stats  # list items were fetched and their chunks checked
    assert len(api["llm"].requests) > 0  # the scripted model wrote answers


def test_ingest_while_serving_leaves_no_torn_read(api):
    c = checker(api)
    base = asyncio.run(_health(api["base_url"]))
    held = api["held"]
    _, report = asyncio.run(load.mixed_phase(api["base_url"], c, 6, [held[:2], held[2:]],
                                                   min_seconds=2, tail_s=1))
    after = asyncio.run(load.findable(api["base_url"], c, held, base["articles"], report))
    assert c.rec.failures == 0, failures(c)
    assert report == {"added": 4, "duplicates": 0, "updated": 0, "unchanged": 0, "failed": 0}
    assert after == {"listed": 4, "health_articles": base["articles"] + 4}
    assert len(c.rec.stats["ask"].latencies) > 0 and len(c.rec.stats["articles"].latencies) > 0
    assert c.last_health[0] == base["articles"] + 4 and c.last_health[1] > base["chunks"]
    assert c.verified  # cited articles were fetched while the ingest ran


def test_chunk_problem_names_what_is_torn():
    body = "First sentence here. Second one there."
    whole = {"id": "a", "body": body, "chunks": [{"index": 0, "char_start": 0, "char_end": 20},
                                                 {"index": 1, "char_start": 21, "char_end": len(body)}]}
    assert chunk_problem(whole) is None
    assert "no chunks" in chunk_problem({**whole, "chunks": []})
    gap = {**whole, "chunks": [whole["chunks"][1]]}
    assert "indexes [1]" in chunk_problem(gap)
    past = {**whole, "body": body[:10]}
    assert "outside a body of 10" in chunk_problem(past)


async def _health(base_url: str) -> dict[str, Any]:
    async with load.async_client(base_url, 1) as client:
        return (await client.get("/health")).json()


def test_questions_during_index_swaps_never_mix_two_indexes(tmp_path, small_embedder):
    """Answers asked in threads while another thread keeps swapping the service's indexes between two
    versions of the store (as `Service.refresh` does after an ingest): each ranking uses one version."""
    import threading

    from conftest import SEED, shortest_records, write_articles

    from assistant.indexes import Indexes
    from assistant.service import open_service, open_store
    from assistant.settings import Settings
    from ingest.pipeline import ingest

    settings = Settings(_env_file=None, data_dir=tmp_path / "data", embedder="minilm-l3")  # type: ignore[call-arg]
    records = shortest_records(24)
    ingest([str(SEED), str(write_articles(tmp_path / "a.json", records[:16]))], open_store(settings),
           small_embedder, settings)
    service = open_service(settings, embedder=small_embedder)
    before = service.indexes
    ingest([str(write_articles(tmp_path / "b.json", records[16:]))], service.store, small_embedder, settings)
    after = Indexes.open(service.store, settings.data_dir)
    assert len(after.table.texts) > len(before.table.texts)
    questions = [f"What did {r['source']} report in \"{r['title']}\"?" for r in records]
    errors: list[str] = []
    stop = threading.Event()

    def ask(n: int) -> None:
        while not stop.is_set():
            n += 1
            try:
                service.answerer.ask(questions[n % len(questions)])
            except Exception as err:  # any error is the finding
                errors.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for n in range(400):  # swap as fast as a refresh could, far more often than one ever would
        service.retriever.indexes = after if n % 2 == 0 else before
        threading.Event().wait(0.005)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_requests_do_not_wait_for_another_requests_refresh(api):
    """While one request is checking the store / rebuilding the indexes, others go on with the current
    ones (only an ingest's forced refresh waits)."""
    import threading

    from assistant.api_holder import ServiceHolder

    holder = ServiceHolder(api["settings"], api["service"])
    holder._checked = 0.0  # a refresh is due
    holder._refresh_lock.acquire()  # ...and another request is doing it
    try:
        done = threading.Event()
        threading.Thread(target=lambda: (holder.fresh(), holder.records(), done.set()), daemon=True).start()
        assert done.wait(20), "a request waited for another request's refresh"
        forced = threading.Event()
        threading.Thread(target=lambda: (holder.fresh(force=True), forced.set()), daemon=True).start()
        assert not forced.wait(0.5)  # the ingest's forced refresh does wait its turn
    finally:
        holder._refresh_lock.release()
    assert forced.wait(20)


def test_a_due_check_refreshes_in_the_background_and_finds_another_writers_articles(tmp_path, small_embedder):
    """Another process (here: a direct ingest) adds an article; the next request past the check interval
    starts a background refresh, which swaps in indexes that hold the new article."""
    import threading

    from assistant.api_holder import ServiceHolder

    settings = make_settings(tmp_path / "data")
    ingest([str(SEED)], open_store(settings), small_embedder, settings)
    holder = ServiceHolder(settings, open_service(settings, embedder=small_embedder))
    before = holder.get().indexes.fingerprint
    record = shortest_records(1)[0]
    new = write_articles(tmp_path / "new.json", [record])
    ingest([str(new)], open_store(settings), small_embedder, settings)
    assert holder.fresh().indexes.fingerprint == before  # not yet due: nothing checked
    holder._checked = 0.0
    holder.fresh()  # due: the check starts in a background thread
    for _ in range(600):
        if holder.get().indexes.fingerprint != before:
            break
        threading.Event().wait(0.05)
    titles = {m["title"] for _, m in holder.records()}
    assert holder.get().indexes.fingerprint != before and record["title"] in titles
    found = holder.get().retriever.retrieve(record["title"])
    assert found.passages and found.passages[0].title == record["title"]
