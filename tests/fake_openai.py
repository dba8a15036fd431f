"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests: real HTTP, no model.

    with FakeOpenAIServer() as server:
        server.script("first answer", Fault.status(429), "second answer")
        OpenAILLM("m", base_url=server.base_url)...

Implements POST /v1/chat/completions (JSON, or server-sent events when `stream` is true: one chunk per
word in `choices[0].delta.content`, then `data: [DONE]`, in a chunked body) and GET /v1/models.
Each request consumes one scripted step: a reply text, or a `Fault`. With the script empty, the step
comes from `server.default(messages)` (a text, or a Fault). Every request body is kept in
`server.requests`, its headers in `server.headers`. Responses close their connection, and `stop()` wakes
any delayed reply, so the server shuts down promptly and leaves nothing open.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one request."""

    kind: str
    status_code: int = 200
    retry_after: float = 0.0
    seconds: float = 0.0
    text: str = ""
    content_type: str = "application/json"

    @classmethod
    def status(cls, code: int, retry_after: float = 0.0) -> Fault:
        """An error status with an OpenAI-style error body; Retry-After (and retry-after-ms) if > 0."""
        return cls("status", status_code=code, retry_after=retry_after)

    @classmethod
    def delay(cls, seconds: float, then: str = "late answer") -> Fault:
        """Wait `seconds` (e.g. past the client's timeout) before answering `then`."""
        return cls("delay", seconds=seconds, text=then)

    @classmethod
    def malformed(cls, content_type: str = "application/json") -> Fault:
        """200 with a body that is not JSON (in a stream: an event whose data is not JSON)."""
        return cls("malformed", content_type=content_type)

    @classmethod
    def empty(cls) -> Fault:
        """200 with `choices: []` (in a stream: chunks without choices)."""
        return cls("empty")

    @classmethod
    def drop_mid_stream(cls, text: str) -> Fault:
        """Send the first half of `text` and then close the connection without ending the body."""
        return cls("drop", text=text)

    @classmethod
    def stall_mid_stream(cls, text: str, seconds: float) -> Fault:
        """In a stream: the first half of `text`, silence for `seconds`, then the rest (without a
        stream: like `delay`)."""
        return cls("stall", text=text, seconds=seconds)

    @classmethod
    def trickle(cls, text: str, seconds: float) -> Fault:
        """Answer `text` slowly: each streamed delta (without a stream: each tenth of the body) after a
        pause of `seconds`, so no single read waits long but the whole answer takes long."""
        return cls("trickle", text=text, seconds=seconds)


Step = str | Fault


def words(text: str) -> list[str]:
    """`text` cut into word-sized deltas that join back to it."""
    return re.findall(r"\S+\s*|\s+", text)


def _echo(messages: list[dict[str, Any]]) -> str:
    last = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return f"You asked: {last}"


class FakeOpenAIServer:
    """The scripted server; `base_url` ends in /v1, as OpenAI clients expect."""

    def __init__(self, port: int = 0) -> None:
        self._port = port  # 0: any free port
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.default: Callable[[list[dict[str, Any]]], Step] = _echo
        self._steps: deque[Step] = deque()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    def next_step(self, body: dict[str, Any]) -> Step:
        with self._lock:
            self.requests.append(body)
            return self._steps.popleft() if self._steps else self.default(body.get("messages") or [])

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._httpd = _HTTPServer(("127.0.0.1", self._port), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-openai",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()  # joins the request threads
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # request threads are joined by server_close()
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):  # the client went away
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # a silent client cannot hold a request thread (and so stop()) for long
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/") != "/v1/models":
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model",
                                                     "created": 0, "owned_by": "tests"}]})

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            return self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request"}})
        fake = self.server.fake
        fake.headers.append({k.lower(): v for k, v in self.headers.items()})
        step = fake.next_step(body)
        if _kind(step) == "delay" or (_kind(step) == "stall" and not body.get("stream")):
            assert isinstance(step, Fault)
            if fake.stopping.wait(step.seconds):
                return  # stopping: nobody is waiting for this answer any more
            step = step.text
        if isinstance(step, Fault) and step.kind == "status":
            return self._status(step)
        if body.get("stream"):
            return self._stream(body, step)
        if isinstance(step, Fault) and step.kind == "malformed":
            return self._raw(200, b"<html>this is not JSON", step.content_type)
        choices = [] if _kind(step) == "empty" else [_choice(_text(step))]
        data = json.dumps(_completion(body, "chat.completion", choices)).encode()
        pause = step.seconds if isinstance(step, Fault) and step.kind == "trickle" else 0.0
        self._raw(200, data, "application/json", cut=_kind(step) == "drop", pause=pause)

    def _status(self, fault: Fault) -> None:
        kind = {429: "rate_limit_error"}.get(fault.status_code, "server_error")
        headers = {}
        if fault.retry_after > 0:
            headers = {"Retry-After": str(max(1, round(fault.retry_after))),
                       "retry-after-ms": str(int(fault.retry_after * 1000))}
        self._json(fault.status_code, {"error": {"message": f"scripted HTTP {fault.status_code}",
                                                 "type": kind, "code": None}}, headers)

    def _stream(self, body: dict[str, Any], step: Step) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        events = list(_events(body, step))
        for i, event in enumerate(events):
            if self._pause_before(step, i, len(events)):
                return  # stopping: nobody is waiting for the rest
            self._chunk(f"data: {event}\n\n".encode())
        if _kind(step) == "drop":
            return  # no terminating chunk: the client sees the body cut short
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _pause_before(self, step: Step, i: int, count: int) -> bool:
        """Wait as a trickle or stall fault says before streamed event `i`; True if the server stops."""
        if not isinstance(step, Fault) or step.kind not in ("trickle", "stall"):
            return False
        if (step.kind == "trickle" and i > 0) or (step.kind == "stall" and i == count // 2):
            return self.server.fake.stopping.wait(step.seconds)
        return False

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._raw(code, json.dumps(payload).encode(), "application/json", headers)

    def _raw(self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None,
             cut: bool = False, pause: float = 0.0) -> None:
        """Send a whole body (or, `cut`, announce it whole and send half of it; with `pause`, in ten
        pieces, each after that many seconds)."""
        self.send_response(code)
        for name, value in {"Content-Type": content_type, "Content-Length": str(len(data)),
                            "Connection": "close", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        data = data[: len(data) // 2] if cut else data
        step = max(1, -(-len(data) // 10)) if pause else len(data) or 1
        for start in range(0, len(data), step):
            if pause and self.server.fake.stopping.wait(pause):
                return
            self.wfile.write(data[start : start + step])
            self.wfile.flush()


def _events(body: dict[str, Any], step: Step) -> Iterator[str]:
    """The SSE data lines of one streamed answer (or of its scripted fault)."""
    kind = _kind(step)
    if kind == "malformed":
        yield "{this is not json"
        return
    if kind == "empty":
        yield json.dumps(_completion(body, "chat.completion.chunk", []))
        return
    deltas = words(_text(step))
    if kind == "drop":
        deltas = deltas[: max(1, len(deltas) // 2)]
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    yield json.dumps(_completion(body, "chat.completion.chunk", [first]))
    for delta in deltas:
        choice = {"index": 0, "delta": {"content": delta}, "finish_reason": None}
        yield json.dumps(_completion(body, "chat.completion.chunk", [choice]))
    if kind != "drop":
        last = {"index": 0, "delta": {}, "finish_reason": "stop"}
        yield json.dumps(_completion(body, "chat.completion.chunk", [last]))


def _kind(step: Step) -> str:
    return step.kind if isinstance(step, Fault) else "text"


def _text(step: Step) -> str:
    return step.text if isinstance(step, Fault) else step


def _choice(text: str) -> dict[str, Any]:
    return {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}


def _completion(body: dict[str, Any], kind: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": kind, "created": int(time.time()),
            "model": body.get("model", "fake-model"), "choices": choices}
