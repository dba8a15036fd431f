"""Stress: what the load test (`stress/load.py`) records and checks — per-endpoint latencies and errors,
and the torn-read invariants (every listed or cited article fetchable, its chunks 0..n-1 slicing its
body in order, /health counts never decreasing).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


@dataclass
class Recorder:
    """Latency and errors per endpoint, and violated invariants (with a few samples of each)."""

    stats: dict[str, Stats] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def _sample(self, what: str) -> None:
        if len(self.samples) < 20:
            self.samples.append(what[:300])

    async def call(self, client: httpx.AsyncClient, name: str, method: str, url: str,
                   **kw: Any) -> httpx.Response | None:
        """The response if it succeeded (2xx), else None with the error counted."""
        stats = self.stats.setdefault(name, Stats())
        t0 = time.perf_counter()
        try:
            response = await client.request(method, url, **kw)
        except httpx.HTTPError as err:
            stats.errors += 1
            self._sample(f"{name}: {type(err).__name__}: {err}")
            return None
        stats.latencies.append(time.perf_counter() - t0)
        if not response.is_success:
            stats.errors += 1
            self._sample(f"{name} {url}: HTTP {response.status_code} {response.text[:200]}")
            return None
        return response

    def violation(self, invariant: str, why: str) -> None:
        self.violations[invariant] = self.violations.get(invariant, 0) + 1
        self._sample(f"{invariant}: {why}")

    def summary(self, seconds: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, s in sorted(self.stats.items()):
            ms = np.array(s.latencies) * 1e3 if s.latencies else np.zeros(1)
            p50, p95, p99 = (round(float(v), 1) for v in np.percentile(ms, [50, 95, 99]))
            out[name] = {"requests": len(s.latencies) + s.errors, "errors": s.errors,
                         "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": round(float(ms.max()), 1),
                         "req_per_s": round(len(s.latencies) / seconds, 2)}
        return out

    @property
    def failures(self) -> int:
        return sum(s.errors for s in self.stats.values()) + sum(self.violations.values())


def chunk_problem(detail: dict[str, Any]) -> str | None:
    """Why an /articles/{id} body is torn (chunks not 0..n-1 slicing its body), or None."""
    body, chunks = detail.get("body") or "", detail.get("chunks") or []
    if not chunks:
        return f"{detail.get('id')}: no chunks"
    if [c["index"] for c in chunks] != list(range(len(chunks))):
        return f"{detail.get('id')}: chunk indexes {[c['index'] for c in chunks]}"
    for c in chunks:
        start, end = c["char_start"], c["char_end"]
        if not (0 <= start < end <= len(body)) or not body[start:end].strip():
            return f"{detail.get('id')}: chunk {c['index']} [{start}:{end}] outside a body of {len(body)}"
    if any(a["char_start"] > b["char_start"] for a, b in itertools.pairwise(chunks)):
        return f"{detail.get('id')}: chunk starts out of order"
    return None


class Checker:
    """The load's requests and their invariants, shared by every phase (and by tests/test_load.py)."""

    def __init__(self, rec: Recorder, questions: list[str], vocab: list[str], sources: list[str],
                 model: str | None = None) -> None:
        self.rec, self.questions, self.vocab, self.sources, self.model = rec, questions, vocab, sources, model
        self.cited: set[str] = set()
        self.verified: set[str] = set()
        self.last_health = (0, 0)
        self.fallbacks: dict[str, int] = {}  # why the extractive answer replaced the model's (reported)

    async def article(self, client: httpx.AsyncClient, article_id: str, name: str = "article") -> bool:
        r = await self.rec.call(client, name, "GET", f"/articles/{quote(article_id, safe='')}")
        if r is None:
            self.rec.violation("article_fetchable", article_id)
            return False
        problem = chunk_problem(r.json())
        if problem:
            self.rec.violation("chunks_slice_body", problem)
        return problem is None

    async def ask(self, client: httpx.AsyncClient, rng: random.Random, verify: bool = False) -> None:
        r = await self.rec.call(client, "ask", "POST", "/ask", json={"question": rng.choice(self.questions)})
        if r is None:
            return
        body = r.json()
        reason = str(body.get("fallback") or "")
        if reason:
            key = reason.split(":")[0][:60]
            self.fallbacks[key] = self.fallbacks.get(key, 0) + 1
        if reason.startswith("model failed") or (self.model and not reason and not body["refused"]
                                                 and body["model"] != self.model):
            self.rec.violation("ask_by_model", f"model={body.get('model')} fallback={reason}")
        ids = {c["article_id"] for c in body["citations"]}
        self.cited |= ids
        for article_id in sorted(ids - self.verified) if verify else []:
            if await self.article(client, article_id, "article(cited)"):
                self.verified.add(article_id)

    async def articles(self, client: httpx.AsyncClient, rng: random.Random, detail: float = 0.5) -> None:
        limit = rng.randint(1, 100)
        params = {"q": rng.choice(self.vocab) if rng.random() < 0.5 else "", "limit": limit,
                  "source": rng.choice(self.sources) if rng.random() < 0.3 else "",
                  "offset": rng.choice([0, 0, rng.randint(0, 600)])}
        r = await self.rec.call(client, "articles", "GET", "/articles", params=params)
        if r is None:
            return
        page = r.json()
        items = page["items"]
        if len(items) > limit or len(items) > max(0, page["total"] - params["offset"]):
            self.rec.violation("articles_page", f"{params}: {len(items)} items of total {page['total']}")
        if items and rng.random() < detail:
            await self.article(client, rng.choice(items)["id"])

    async def health(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        r = await self.rec.call(client, "health", "GET", "/health")
        if r is not None:
            now = (r.json()["articles"], r.json()["chunks"])
            if now[0] < self.last_health[0] or now[1] < self.last_health[1]:
                self.rec.violation("health_monotonic", f"{self.last_health} -> {now}")
            self.last_health = (max(now[0], self.last_health[0]), max(now[1], self.last_health[1]))
        await asyncio.sleep(0.2)
