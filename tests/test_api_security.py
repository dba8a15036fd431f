"""API security over a real server: the per-client rate limit on questions, CORS closed by default (and
open only to configured origins), and URL ingest refusing loopback/private addresses (SSRF)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from conftest import SEED
from test_api import TOKEN, make_settings, served

from assistant.api_security import RateLimiter
from assistant.service import Service, open_service, open_store
from ingest.netguard import is_public
from ingest.pipeline import ingest

QUESTION = {"question": "What did Qureshi say about Russia?"}
EVIL, GOOD = "https://evil.example", "https://news.example.org"


@pytest.fixture(scope="module")
def service(tmp_path_factory, small_embedder) -> Service:
    settings = make_settings(tmp_path_factory.mktemp("sec") / "data")
    assert ingest([str(SEED)], open_store(settings), small_embedder, settings).articles == 1
    return open_service(settings, embedder=small_embedder)


def limited(service: Service, **extra: object) -> Iterator[httpx.Client]:
    settings = make_settings(service.settings.data_dir, **extra)
    return served(settings, service)  # type: ignore[return-value]


def test_rate_limiter_spends_a_burst_then_refills_at_the_rate():
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.take("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=100.0) == pytest.approx(1.0)  # one token a second
    assert limiter.take("b", now=100.0) == 0.0  # other clients keep their own bucket
    assert limiter.take("a", now=100.5) == pytest.approx(0.5)  # a refused try spends nothing
    assert limiter.take("a", now=101.0) == 0.0
    assert limiter.take("a", now=101.0) > 0
    assert [limiter.take("a", now=200.0) for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled, capped at 3
    assert limiter.take("a", now=200.0) > 0


def test_rate_limiter_off_at_zero_and_bounded_in_clients():
    assert all(RateLimiter(0, 1).take("a") == 0.0 for _ in range(100))
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=50)
    for n in range(500):
        limiter.take(f"client-{n}", now=0.0)
    assert len(limiter._buckets) == 50
    assert limiter.take("client-0", now=0.0) == 0.0  # forgotten (oldest) clients start afresh


def test_questions_past_the_limit_get_429_per_client(service):
    with limited(service, ask_rate_per_minute=1, ask_rate_burst=2) as client:
        base = str(client.base_url)
        assert client.post("/ask", json=QUESTION).status_code == 200
        assert client.post("/ask/stream", json=QUESTION).status_code == 200  # one bucket for both routes
        r = client.post("/ask", json=QUESTION)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "too many questions from 127.0.0.1" in r.json()["detail"]
        assert client.post("/ask/stream", json=QUESTION).status_code == 429
        assert client.get("/articles").status_code == 200  # browsing is not limited
        other = httpx.HTTPTransport(local_address="127.0.0.2")  # another client: source 127.0.0.2
        with httpx.Client(base_url=base, transport=other) as second:
            assert second.post("/ask", json=QUESTION).status_code == 200


def test_cors_is_closed_by_default(service):
    with limited(service) as client:
        preflight = client.options("/ask", headers={"origin": EVIL, "access-control-request-method": "POST",
                                                    "access-control-request-headers": "content-type"})
        assert "access-control-allow-origin" not in preflight.headers
        simple = client.get("/articles", headers={"origin": EVIL})
        assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


def test_cors_opens_only_to_configured_origins(service):
    with limited(service, cors_origins=[GOOD]) as client:
        ok = client.options("/ask", headers={"origin": GOOD, "access-control-request-method": "POST",
                                             "access-control-request-headers": "content-type"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == GOOD
        bad = client.options("/ask", headers={"origin": EVIL, "access-control-request-method": "POST"})
        assert bad.status_code == 400 and "access-control-allow-origin" not in bad.headers
        allowed = client.get("/articles", headers={"origin": GOOD})
        assert allowed.headers["access-control-allow-origin"] == GOOD
        assert "access-control-allow-origin" not in client.get("/articles", headers={"origin": EVIL}).headers


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("192.168.0.10", False), ("172.16.5.4", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("100.64.0.1", False), ("::1", False),
    ("fe80::1", False), ("fd00::1", False), ("::ffff:127.0.0.1", False), ("224.0.0.1", False),
    ("8.8.8.8", True), ("93.184.216.34", True), ("2606:4700:4700::1111", True)])
def test_public_addresses_are_told_from_internal_ones(address, public):
    assert is_public(address) is public


class _Article(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Article.hits.append(self.path)
        body = b"# Internal memo\n\nThe admin password of the intranet is hunter2, the memo said on Monday.\n"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def internal_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Article)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Article.hits.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_url_ingest_refuses_internal_addresses_unless_allowed(tmp_path, small_embedder, internal_site):
    auth = {"authorization": f"Bearer {TOKEN}"}
    port = internal_site.rsplit(":", 1)[1]
    urls = [f"{internal_site}/memo.txt", f"http://localhost:{port}/memo2.txt"]
    settings = make_settings(tmp_path / "closed", api_token=TOKEN)
    with served(settings, open_service(settings, embedder=small_embedder)) as client:
        report = client.post("/ingest", json={"urls": urls}, headers=auth).json()
        assert report["added"] == 0 and [f["path"] for f in report["failed"]] == urls
        assert all("not a public address" in f["error"] and "NEWSQA_ALLOW_PRIVATE_URLS" in f["error"]
                   for f in report["failed"])
        assert _Article.hits == []  # refused after connecting, before any request was sent
    settings = make_settings(tmp_path / "open", api_token=TOKEN, allow_private_urls=True)
    with served(settings, open_service(settings, embedder=small_embedder)) as client:
        report = client.post("/ingest", json={"urls": urls[:1]}, headers=auth).json()
        assert (report["added"], report["failed"]) == (1, []) and _Article.hits == ["/memo.txt"]


@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nshort",
                                   b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n"])
def test_a_malformed_http_reply_is_a_named_failure(reply):
    import socket

    from ingest.read import fetch_url

    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/story.txt"
    articles, failures = fetch_url(url, timeout=5, max_bytes=1 << 20)
    thread.join(5)
    listener.close()
    assert articles == [] and len(failures) == 1 and failures[0].path == url
    assert failures[0].error.startswith("cannot fetch: malformed HTTP response"), failures[0].error
