"""The chat model client against a real HTTP server on loopback (tests/fake_openai.py): answers, streams,
retries, and every way a call can fail turning into an LLMError that says why."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from fake_openai import FakeOpenAIServer, Fault

from assistant.llm import LLM, LLMError, OpenAILLM, ScriptedLLM, make_llm

MESSAGES = [
    {"role": "system", "content": "Answer only from the numbered passages and cite them like [1]."},
    {"role": "user",
     "content": "[1] The council approved the new bridge on Monday.\n\nQuestion: What was approved?"},
]
ANSWER = "The council approved the new bridge [1]."


@pytest.fixture
def llm(fake_llm_server: FakeOpenAIServer) -> Iterator[OpenAILLM]:
    """A client with fast retries (each wait capped at 50 ms) and a short timeout."""
    with OpenAILLM("fake-model", base_url=fake_llm_server.base_url, timeout_s=5, max_retries=2,
                   temperature=0.3, max_tokens=64, max_retry_wait_s=0.05) as client:
        yield client


def closed_port() -> int:
    """A loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_complete_returns_the_answer(llm, fake_llm_server):
    fake_llm_server.script(ANSWER)
    assert llm.complete(MESSAGES) == ANSWER
    assert llm.name == "fake-model"


def test_request_carries_model_messages_and_sampling(llm, fake_llm_server):
    llm.complete(MESSAGES)
    [body] = fake_llm_server.requests
    assert body["model"] == "fake-model"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == 0.3
    assert body["max_tokens"] == 64
    assert not body.get("stream")


def test_default_reply_function_is_used_when_the_script_is_empty(llm, fake_llm_server):
    fake_llm_server.default = lambda messages: f"{len(messages)} messages"
    assert llm.complete(MESSAGES) == "2 messages"


def test_stream_yields_deltas_that_join_to_the_answer(llm, fake_llm_server):
    fake_llm_server.script(ANSWER)
    deltas = list(llm.stream(MESSAGES))
    assert len(deltas) >= 2
    assert "".join(deltas) == ANSWER
    assert fake_llm_server.requests[0]["stream"] is True


def test_rate_limit_is_retried_then_succeeds(llm, fake_llm_server):
    fake_llm_server.script(Fault.status(429), ANSWER)
    assert llm.complete(MESSAGES) == ANSWER
    assert len(fake_llm_server.requests) == 2


def test_retry_after_is_honoured(fake_llm_server):
    fake_llm_server.script(Fault.status(429, retry_after=0.6), ANSWER)
    with OpenAILLM("m", base_url=fake_llm_server.base_url, max_retries=1) as client:
        start = time.monotonic()
        assert client.complete(MESSAGES) == ANSWER
    assert time.monotonic() - start >= 0.55


def test_long_retry_after_is_capped(fake_llm_server):
    fake_llm_server.script(Fault.status(429, retry_after=60), ANSWER)
    with OpenAILLM("m", base_url=fake_llm_server.base_url, max_retries=1, max_retry_wait_s=0.2) as client:
        start = time.monotonic()
        assert client.complete(MESSAGES) == ANSWER
    assert time.monotonic() - start < 5


def test_rate_limit_after_all_retries_is_an_llm_error(llm, fake_llm_server):
    fake_llm_server.script(*[Fault.status(429)] * 3)
    with pytest.raises(LLMError, match=r"HTTP 429.*3 attempt"):
        llm.complete(MESSAGES)


def test_server_error_every_time_gives_up_after_the_retries(llm, fake_llm_server):
    fake_llm_server.default = lambda messages: Fault.status(500)
    with pytest.raises(LLMError, match="HTTP 500"):
        llm.complete(MESSAGES)
    assert len(fake_llm_server.requests) == 1 + llm.max_retries


def test_timeout_is_an_llm_error_and_bounded(fake_llm_server):
    fake_llm_server.script(Fault.delay(5, then=ANSWER))
    with OpenAILLM("m", base_url=fake_llm_server.base_url, timeout_s=0.5, max_retries=0) as client:
        start = time.monotonic()
        with pytest.raises(LLMError, match="timeout"):
            client.complete(MESSAGES)
    assert time.monotonic() - start < 3
    assert len(fake_llm_server.requests) == 1


def test_slow_answer_within_the_timeout_arrives(llm, fake_llm_server):
    fake_llm_server.script(Fault.delay(0.3, then=ANSWER))
    assert llm.complete(MESSAGES) == ANSWER


@pytest.mark.parametrize("fault", [Fault.malformed(), Fault.malformed("text/html"), Fault.empty()],
                         ids=["broken-json", "html-page", "no-choices"])
def test_malformed_answer_is_an_llm_error(llm, fake_llm_server, fault):
    fake_llm_server.script(fault)
    with pytest.raises(LLMError, match="malformed"):
        llm.complete(MESSAGES)


@pytest.mark.parametrize("fault", [Fault.malformed(), Fault.empty()], ids=["not-json", "no-choices"])
def test_malformed_stream_is_an_llm_error(llm, fake_llm_server, fault):
    fake_llm_server.script(fault)
    with pytest.raises(LLMError, match="malformed"):
        list(llm.stream(MESSAGES))


def test_empty_answer_is_an_llm_error(llm, fake_llm_server):
    fake_llm_server.script("")
    with pytest.raises(LLMError, match="empty answer"):
        llm.complete(MESSAGES)


def test_stream_dropped_midway_is_an_llm_error_after_the_first_deltas(llm, fake_llm_server):
    fake_llm_server.script(Fault.drop_mid_stream(ANSWER))
    received = []
    with pytest.raises(LLMError, match=r"broke off.*peer closed connection"):
        for delta in llm.stream(MESSAGES):
            received.append(delta)
    assert received
    assert ANSWER.startswith("".join(received))
    assert "".join(received) != ANSWER


def test_stream_error_status_is_an_llm_error(llm, fake_llm_server):
    fake_llm_server.script(*[Fault.status(503)] * 3)
    with pytest.raises(LLMError, match="HTTP 503"):
        next(iter(llm.stream(MESSAGES)))


def test_connection_refused_is_an_llm_error():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with OpenAILLM("m", base_url=url, max_retries=0) as client, pytest.raises(LLMError) as caught:
        client.complete(MESSAGES)
    assert "connection" in str(caught.value) and "refused" in str(caught.value).lower()


def test_api_key_explicit_else_environment_else_placeholder(fake_llm_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for key in ("sk-explicit", None):
        with OpenAILLM("m", base_url=fake_llm_server.base_url, api_key=key) as client:
            client.complete(MESSAGES)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with OpenAILLM("m", base_url=fake_llm_server.base_url) as client:
        client.complete(MESSAGES)
    seen = [h["authorization"] for h in fake_llm_server.headers]
    assert seen == ["Bearer sk-explicit", "Bearer not-needed", "Bearer sk-from-env"]


def test_no_key_and_no_base_url_is_an_llm_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LLMError, match=r"(?i)api.key"):
        OpenAILLM("m")


def test_make_llm_is_none_without_a_model(settings):
    assert settings.model is None
    assert make_llm(settings) is None


def test_make_llm_talks_to_the_base_url_from_the_environment(settings, fake_llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm_server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    configured = settings.model_copy(update={"model": "local-chat", "llm_temperature": 0.7,
                                             "llm_max_retries": 0, "llm_timeout_s": 7})
    llm = make_llm(configured)
    assert isinstance(llm, OpenAILLM)
    try:
        assert (llm.name, llm.max_retries, llm.timeout_s) == ("local-chat", 0, 7)
        fake_llm_server.script(ANSWER)
        assert llm.complete(MESSAGES) == ANSWER
    finally:
        llm.close()
    body = fake_llm_server.requests[0]
    assert (body["model"], body["temperature"]) == ("local-chat", 0.7)


def test_scripted_llm_replies_in_order_and_records_calls():
    boom = LLMError("HTTP 429 after 3 attempt(s)")
    llm: LLM = ScriptedLLM(["one answer", boom, ValueError("bad"), "a streamed answer"])
    assert llm.complete(MESSAGES) == "one answer"
    with pytest.raises(LLMError) as caught:
        llm.complete(MESSAGES)
    assert caught.value is boom
    with pytest.raises(LLMError, match="bad"):
        llm.complete(MESSAGES)
    deltas = list(llm.stream([{"role": "user", "content": "again"}]))
    assert deltas == ["a ", "streamed ", "answer"]
    assert isinstance(llm, ScriptedLLM)
    assert len(llm.calls) == 4
    assert llm.calls[0] == MESSAGES and llm.calls[3] == [{"role": "user", "content": "again"}]
    with pytest.raises(LookupError, match="ran out"):
        llm.complete(MESSAGES)
