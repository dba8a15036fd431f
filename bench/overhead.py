"""/ask overhead benchmark: latency beyond the model's own time, and time to first streamed byte/token.

A real uvicorn server (tests/test_api.py `served`, in this process) over two real stores — the seed
article, and the first N MultiHop-RAG articles (real minilm-l3, built in a temp dir) — answers with the
scripted model (tests/fake_openai.py, replying at once with a cited sentence of passage [1]) through
OpenAILLM. One client asks the questions in turn. For POST /ask: client latency, the model's time as
the answerer measured it (`timings_ms.model`: the OpenAI SDK call to the fake server), overhead = latency −
model, and the per-stage breakdown from `timings_ms`. For POST /ask/stream: time to the first byte and to
the first `token` event, each measured against the instant the fake server wrote its first token.
`--profile` also runs the answer path under pyinstrument and lists the hot spots.
Progress on stderr; ONE JSON object on the last stdout line. `--quick`: small store, fewer questions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import fake_openai  # noqa: E402
from conftest import SEED, corpus_records, write_articles  # noqa: E402
from test_api import make_settings, served  # noqa: E402

from assistant.answer import Answerer  # noqa: E402
from assistant.embed import OnnxEmbedder  # noqa: E402
from assistant.llm import OpenAILLM  # noqa: E402
from assistant.service import Service, open_service, open_store  # noqa: E402
from ingest.pipeline import ingest  # noqa: E402

QUERIES = ROOT.parent / "shared" / "data" / "multihop-rag" / "queries-dev.json"
SEED_QUESTIONS = ["What did Qureshi say about Russia?", "What did Lavrov discuss with Imran Khan?",
                  "Why is Russia important to Pakistan according to Qureshi?",
                  "What did the foreign minister say about regional stability?"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _TimedHandler(fake_openai._Handler):
    """The fake server's handler, noting when each streamed answer's first content token is written."""

    def _chunk(self, data: bytes) -> None:
        super()._chunk(data)
        if b'"content": "' in data and b'"content": ""' not in data and not getattr(self, "_noted", False):
            self._noted = True
            self.server.fake.first_token_at.append(time.perf_counter())


class TimedFakeServer(fake_openai.FakeOpenAIServer):
    def __init__(self) -> None:
        super().__init__()
        self.first_token_at: list[float] = []

    def start(self) -> TimedFakeServer:
        super().start()
        assert self._httpd is not None
        self._httpd.RequestHandlerClass = _TimedHandler
        return self


def multihop_set(articles: int) -> tuple[list[dict], list[str]]:
    """Up to `articles` corpus records holding the evidence of whole dev queries, and those queries."""
    by_title = {r["title"]: r for r in corpus_records()}
    chosen: dict[str, dict] = {}
    questions: list[str] = []
    for q in json.loads(QUERIES.read_text()):
        titles = {e["title"] for e in q["evidence_list"]}
        if not titles or not titles <= by_title.keys():
            continue
        if len(chosen.keys() | titles) > articles:
            break
        chosen.update({t: by_title[t] for t in titles})
        questions.append(q["query"])
    return list(chosen.values()), questions


def build_store(root: Path, records: list[dict], embedder: OnnxEmbedder) -> Service:
    root.mkdir(parents=True, exist_ok=True)
    settings = make_settings(root / "data")
    targets = [str(SEED)]
    if records:
        targets.append(str(write_articles(root / "corpus.json", records)))
    t0 = time.perf_counter()
    report = ingest(targets, open_store(settings), embedder, settings)
    assert not report.failed, report.failed
    log(f"built a store of {report.articles} articles in {time.perf_counter() - t0:.1f} s")
    return open_service(settings, embedder=embedder)


def script(fake: TimedFakeServer, service: Service, question: str) -> None:
    """Queue the model's reply to `question` (only: a refused question never calls the model)."""
    with fake._lock:
        fake._steps.clear()
    fake.script(reply_for(service, question))


def reply_for(service: Service, question: str) -> str:
    """A model answer citing passage [1] with its first sentence (so the answer is verified, not rejected)."""
    passages = service.retriever.retrieve(question, k=service.settings.top_k).passages
    if not passages:
        return "I cannot answer from these articles."
    first = re.split(r"(?<=[.!?])\s+", passages[0].text.strip())[0]
    return f"{first.rstrip('.')} [1]."


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 1), "p95": pct(values, 0.95),
            "max": round(max(values), 1)}


def measure_ask(client: Any, fake: TimedFakeServer, service: Service, questions: list[str]) -> dict[str, Any]:
    rows: list[dict[str, float]] = []
    for question in questions:
        script(fake, service, question)
        t0 = time.perf_counter()
        response = client.post("/ask", json={"question": question})
        latency = (time.perf_counter() - t0) * 1e3
        assert response.status_code == 200, response.text
        timings = response.json()["timings_ms"]
        model = timings.get("model", 0.0)
        retrieve = sum(v for k, v in timings.items() if k.startswith("retrieve_"))
        rows.append({"latency": latency, "model": model, "overhead": latency - model,
                     "http_and_serialization": latency - timings["total"],
                     "extract_cite_finish": timings["total"] - retrieve - model,
                     **{k: v for k, v in timings.items() if k.startswith("retrieve_")},
                     "answered_by_model": float(response.json()["model"] != "extractive")})
    keys = [k for k in rows[0] if k != "answered_by_model"]
    out: dict[str, Any] = {k: stats([r[k] for r in rows]) for k in keys}
    out["answered_by_model_share"] = round(sum(r["answered_by_model"] for r in rows) / len(rows), 2)
    return out


def measure_stream(client: Any, fake: TimedFakeServer, service: Service,
                   questions: list[str]) -> dict[str, Any]:
    rows: list[dict[str, float]] = []
    for question in questions:
        script(fake, service, question)
        fake.first_token_at.clear()
        t0 = time.perf_counter()
        first_byte = first_token = None
        with client.stream("POST", "/ask/stream", json={"question": question}) as response:
            assert response.status_code == 200
            buffer = ""
            for chunk in response.iter_text():
                now = time.perf_counter()
                first_byte = first_byte or now
                buffer += chunk
                if first_token is None and "event: token" in buffer:
                    first_token = now
        assert first_byte is not None
        if first_token is None or not fake.first_token_at:  # refused before any model call
            continue
        model_first = fake.first_token_at[0]
        rows.append({"ttfb": (first_byte - t0) * 1e3, "first_token_event": (first_token - t0) * 1e3,
                     "model_first_token": (model_first - t0) * 1e3,
                     "token_event_after_model_token": (first_token - model_first) * 1e3,
                     "total": (time.perf_counter() - t0) * 1e3})
    return {k: stats([r[k] for r in rows]) for k in rows[0]} | {"streams_with_tokens": len(rows)}


def profile(service: Service, llm: OpenAILLM, fake: TimedFakeServer, questions: list[str]) -> dict[str, Any]:
    """The answer path (retrieve → model → cite → JSON) under pyinstrument: top frames by own time."""
    from pyinstrument import Profiler

    answerer = Answerer(service.retriever, service.answerer.extractive, llm,
                        budget_s=service.settings.answer_timeout_s)
    replies = [reply_for(service, q) for q in questions]
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for question, reply in zip(questions, replies, strict=True):
        with fake._lock:
            fake._steps.clear()
        fake.script(reply)
        answerer.ask(question).model_dump_json()
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    own: dict[str, float] = {}
    cumulative: dict[str, float] = {}

    def walk(frame: Any, key: str) -> None:
        if frame.is_synthetic:  # pyinstrument's "[self]" leaf: the parent's own time
            own[key] = own.get(key, 0.0) + frame.time
            return
        key = f"{frame.function} ({Path(frame.file_path or '?').name}:{frame.line_no})"
        if "assistant" in (frame.file_path or "") or "ingest" in (frame.file_path or ""):
            cumulative[key] = cumulative.get(key, 0.0) + frame.time
        if not frame.children:
            own[key] = own.get(key, 0.0) + frame.time
        for child in frame.children:
            walk(child, key)

    root = session.root_frame()
    if root is not None:
        walk(root, "root")
    total = root.time if root is not None else 1.0
    log(profiler.output_text(unicode=False, color=False, show_all=False))

    def top(table: dict[str, float], n: int) -> list[dict]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:n]
        return [{"frame": k, "ms": round(v * 1e3, 1), "share": round(v / total, 3)} for k, v in ranked]

    return {"questions": len(questions), "total_ms": round(total * 1e3, 1), "self_top": top(own, 12),
            "newsqa_cumulative_top": top(cumulative, 15)}


def run_store(name: str, service: Service, fake: TimedFakeServer, questions: list[str],
              do_profile: bool) -> dict[str, Any]:
    with OpenAILLM("fake-model", base_url=fake.base_url, timeout_s=10, max_retries=0) as llm:
        answerer = Answerer(service.retriever, service.answerer.extractive, llm,
                        budget_s=service.settings.answer_timeout_s)
        modeled = dataclasses.replace(service, answerer=answerer)
        direct = []
        for _ in range(max(5, len(questions) // 2)):  # the model's own round trip through the SDK, no newsqa
            fake.script("ok [1].")
            t0 = time.perf_counter()
            llm.complete([{"role": "user", "content": "hi"}])
            direct.append((time.perf_counter() - t0) * 1e3)
        with served(service.settings, modeled) as client:
            for question in questions[:3]:  # warm up (first-request costs belong to startup.py)
                script(fake, service, question)
                client.post("/ask", json={"question": question})
            ask = measure_ask(client, fake, service, questions)
            log(f"{name} /ask: {json.dumps(ask)}")
            stream = measure_stream(client, fake, service, questions)
            log(f"{name} /ask/stream: {json.dumps(stream)}")
        result = {"questions": len(questions), "chunks": len(service.indexes.table.ids),
                  "model_direct_roundtrip_ms": stats(direct), "ask_ms": ask, "stream_ms": stream}
        if do_profile:
            result["profile"] = profile(service, llm, fake, questions)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 20-article store and fewer questions (< 1 min)")
    ap.add_argument("--articles", type=int, default=0, help="MultiHop-RAG articles in the big store (100)")
    ap.add_argument("--questions", type=int, default=0, help="questions per store (40; quick 12)")
    ap.add_argument("--profile", action="store_true", help="profile the big store's answer path")
    args = ap.parse_args()
    articles = args.articles or (20 if args.quick else 100)
    n = args.questions or (12 if args.quick else 40)
    embedder = OnnxEmbedder("minilm-l3", batch_size=32)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="newsqa-bench-overhead-") as tmp, TimedFakeServer() as fake:
        records, multihop_questions = multihop_set(articles)
        seed_questions = [SEED_QUESTIONS[i % len(SEED_QUESTIONS)] for i in range(n)]
        for name, chosen, questions in (("seed", [], seed_questions),
                                        (f"multihop{len(records)}", records, multihop_questions[:n])):
            service = build_store(Path(tmp) / name, chosen, embedder)
            results[name] = run_store(name, service, fake, questions, args.profile and bool(chosen))
    ask_p50 = max(r["ask_ms"]["overhead"]["p50"] for r in results.values())
    token_p50 = max(r["stream_ms"]["token_event_after_model_token"]["p50"] for r in results.values())
    results["goals"] = {"overhead_p50_ms": ask_p50, "overhead_p50_le_30ms": ask_p50 <= 30,
                        "first_token_after_model_p50_ms": token_p50, "first_token_le_50ms": token_p50 <= 50}
    results["loadavg"] = os.getloadavg()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
